"""The screenshot watcher on real files with real watchdog observers (inotify here, and polling).

Every test writes files the way the game or a tool would (in chunks, via a temporary name, in
bursts, truncated) and checks what the daemon would see: each screenshot handed over exactly once,
after it is complete. Waiting is done by polling with a timeout, never by one long sleep; the
"nothing more happens" checks wait a few stability windows, taken from the config.
"""

from __future__ import annotations

import io
import os
import shutil
import sys
import threading
import time
from pathlib import Path, PurePosixPath, PureWindowsPath
from types import SimpleNamespace
from typing import Callable

import numpy as np
import pytest
from PIL import Image

from warpd.config import load_config
from warpd.watcher import (
    FolderSpec,
    Watcher,
    discover_screenshot_folders,
    find_screenshot_folders,
    is_network_folder,
)

STABLE_S = 0.1
POLL_S = 0.1


def watch_cfg(**extra: object) -> SimpleNamespace:
    """The real [watch] config with short intervals, plus keys the watcher reads with defaults."""
    cfg = load_config(overrides=[f"watch.stable_s={STABLE_S}", f"watch.polling_stable_s={2 * POLL_S}",
                                 f"watch.polling_interval_s={POLL_S}", "watch.reconcile_interval_s=60.0",
                                 "watch.decode_retries=3"])
    values = {**cfg.watch.as_dict(), "rearm_interval_s": 0.1, "max_backoff_s": 1.0, "close_wait_s": 1.0}
    values.update(extra)
    return SimpleNamespace(**values)


def png_bytes(seed: int = 0, size: tuple[int, int] = (400, 300), noise: bool = False) -> bytes:
    """A real PNG; ``noise`` makes it large (hundreds of KB) for chunked writes."""
    rng = np.random.default_rng(seed)
    w, h = size
    arr = np.zeros((h, w, 3), np.uint8)
    arr[..., 0] = np.linspace(0, 255, w, dtype=np.uint8)[None, :]
    if noise:
        arr[...] = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    else:
        arr[:16, :16] = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


class Recorder:
    """Collects on_ready / on_failed calls (from the watcher's thread) with the time they came."""

    def __init__(self) -> None:
        self.ready: list[tuple[Path, float]] = []
        self.failed: list[tuple[Path, str]] = []
        self._cond = threading.Condition()

    def on_ready(self, path: Path) -> None:
        with self._cond:
            self.ready.append((path, time.monotonic()))
            self._cond.notify_all()

    def on_failed(self, path: Path, reason: str) -> None:
        with self._cond:
            self.failed.append((path, reason))
            self._cond.notify_all()

    def names(self) -> list[str]:
        with self._cond:
            return sorted(p.name for p, _ in self.ready)

    def wait(self, predicate: Callable[["Recorder"], bool], timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True


def settle(cfg: SimpleNamespace, windows: float = 4.0) -> None:
    """Give the watcher a few stability windows to do anything it still would (for "no more" checks)."""
    time.sleep(windows * max(cfg.stable_s, cfg.polling_stable_s))


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0, step: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = tmp_path / "screenshots"
    folder.mkdir()
    return folder


@pytest.fixture
def make_watcher():
    made: list[Watcher] = []

    def _make(folders, rec: Recorder, cfg: SimpleNamespace | None = None, **kw) -> Watcher:
        w = Watcher(folders, rec.on_ready, cfg_watch=cfg or watch_cfg(), on_failed=rec.on_failed, **kw)
        made.append(w)
        w.start()
        return w

    yield _make
    for w in made:
        w.stop()


def write_chunks(path: Path, data: bytes, chunks: int, pause: float) -> float:
    """Write ``data`` in ``chunks`` pieces with ``pause`` between them; returns the close time."""
    step = -(-len(data) // chunks)
    with open(path, "wb") as fh:
        for i in range(0, len(data), step):
            fh.write(data[i:i + step])
            fh.flush()
            time.sleep(pause)
    return time.monotonic()


# ----------------------------------------------------------------------------- writing patterns
def test_progressive_write_is_emitted_once_after_close(shots: Path, make_watcher) -> None:
    rec = Recorder()
    cfg = watch_cfg()
    make_watcher([shots], rec, cfg)
    data = png_bytes(1, noise=True)
    # Pauses longer than two stability windows: a size/mtime check alone would fire mid-write.
    closed_at = write_chunks(shots / "Screenshot_1.png", data, chunks=5, pause=2.5 * cfg.stable_s)
    assert rec.wait(lambda r: len(r.ready) >= 1)
    settle(cfg)
    assert [p.name for p, _ in rec.ready] == ["Screenshot_1.png"]
    assert rec.ready[0][1] >= closed_at
    assert rec.failed == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="close-after-write events are inotify's")
def test_close_write_and_rename_skip_the_stability_window(shots: Path, make_watcher) -> None:
    rec = Recorder()
    cfg = watch_cfg(stable_s=3.0, polling_stable_s=3.0)
    make_watcher([shots], rec, cfg)
    closed_at = write_chunks(shots / "closed.png", png_bytes(30, noise=True), chunks=3, pause=0.02)
    assert rec.wait(lambda r: len(r.ready) >= 1, timeout=cfg.stable_s)
    tmp = shots / "renamed.tmp"
    tmp.write_bytes(png_bytes(31))
    renamed_at = time.monotonic()
    os.replace(tmp, shots / "renamed.png")
    assert rec.wait(lambda r: len(r.ready) >= 2, timeout=cfg.stable_s)
    # Well inside the 3 s window: the close / the rename made them ready, not the size/mtime check.
    assert rec.ready[0][1] - closed_at < cfg.stable_s / 2
    assert rec.ready[1][1] - renamed_at < cfg.stable_s / 2


def test_tmp_then_rename_emits_only_the_final_name(shots: Path, make_watcher) -> None:
    rec = Recorder()
    cfg = watch_cfg()
    make_watcher([shots], rec, cfg)
    tmp = shots / "shot.png.part"
    write_chunks(tmp, png_bytes(2, noise=True), chunks=3, pause=0.02)
    os.replace(tmp, shots / "shot.png")
    assert rec.wait(lambda r: len(r.ready) >= 1)
    settle(cfg)
    assert rec.names() == ["shot.png"]


def test_burst_of_200_files_each_emitted_exactly_once(shots: Path, make_watcher) -> None:
    rec = Recorder()
    cfg = watch_cfg()
    w = make_watcher([shots], rec, cfg)
    data = [png_bytes(i, size=(320, 200)) for i in range(200)]
    for i, blob in enumerate(data):
        (shots / f"burst_{i:03d}.png").write_bytes(blob)
    assert rec.wait(lambda r: len(r.ready) >= 200, timeout=15)
    w.scan_now()  # a rescan must not hand anything over again
    settle(cfg)
    names = rec.names()
    assert len(names) == 200 and len(set(names)) == 200
    assert rec.failed == []


def test_truncated_file_emitted_once_after_it_completes(shots: Path, make_watcher) -> None:
    rec = Recorder()
    cfg = watch_cfg(decode_retries=6)
    make_watcher([shots], rec, cfg)
    data = png_bytes(3, noise=True)
    path = shots / "slow.png"
    path.write_bytes(data[: len(data) // 2])  # closed, but no IEND yet
    settle(cfg, 3)
    assert rec.ready == []
    with open(path, "ab") as fh:
        fh.write(data[len(data) // 2:])
    assert rec.wait(lambda r: len(r.ready) >= 1)
    settle(cfg)
    assert rec.names() == ["slow.png"] and rec.failed == []


def test_file_that_never_decodes_is_reported_failed_once(shots: Path, make_watcher) -> None:
    rec = Recorder()
    cfg = watch_cfg(decode_retries=2)
    w = make_watcher([shots], rec, cfg)
    data = png_bytes(4)
    (shots / "broken.png").write_bytes(data[:-20])  # IEND never arrives
    assert rec.wait(lambda r: len(r.failed) >= 1)
    w.scan_now()
    settle(cfg, 6)
    assert [p.name for p, _ in rec.failed] == ["broken.png"]
    assert "broken.png" in rec.failed[0][1] and "take it again" in rec.failed[0][1]
    assert rec.ready == []


def test_duplicate_events_and_rescans_do_not_double_emit(shots: Path, make_watcher) -> None:
    rec = Recorder()
    cfg = watch_cfg()
    w = make_watcher([shots], rec, cfg)
    path = shots / "dup.png"
    path.write_bytes(png_bytes(5))
    assert rec.wait(lambda r: len(r.ready) >= 1)
    st = path.stat()
    for _ in range(3):  # open-for-write and close without writing: close-write events, same content
        with open(path, "ab"):
            pass
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    w.scan_now()
    settle(cfg)
    assert rec.names() == ["dup.png"]
    # A real re-save (new content) is a new screenshot and is handed over again.
    path.write_bytes(png_bytes(6))
    assert rec.wait(lambda r: len(r.ready) >= 2)
    settle(cfg)
    assert rec.names() == ["dup.png", "dup.png"]


# ----------------------------------------------------------------------------- folders and scans
def test_folder_removed_and_recreated_is_watched_again(shots: Path, make_watcher) -> None:
    rec = Recorder()
    cfg = watch_cfg()
    w = make_watcher([shots], rec, cfg)
    (shots / "before.png").write_bytes(png_bytes(7))
    assert rec.wait(lambda r: len(r.ready) >= 1)
    shutil.rmtree(shots)
    assert wait_until(lambda: w.folder_states()[shots] == "missing")
    time.sleep(3 * cfg.rearm_interval_s)  # a few "is it back?" checks find nothing: no crash, no spin
    assert w.folder_states()[shots] == "missing"
    shots.mkdir()
    assert wait_until(lambda: w.folder_states()[shots] == "native")
    (shots / "after.png").write_bytes(png_bytes(8))
    assert rec.wait(lambda r: len(r.ready) >= 2)
    settle(cfg)
    assert rec.names() == ["after.png", "before.png"]
    assert w.stats()["rearms"] >= 1


def test_folder_missing_at_start_is_picked_up_when_created(tmp_path: Path, make_watcher) -> None:
    rec = Recorder()
    folder = tmp_path / "Live" / "screenshots"
    w = make_watcher([folder], rec)
    assert w.folder_states()[folder] == "missing"
    folder.mkdir(parents=True)
    (folder / "first.png").write_bytes(png_bytes(9))  # may land before the watch: the rescan finds it
    assert rec.wait(lambda r: len(r.ready) >= 1)
    assert rec.names() == ["first.png"]


def test_reconciliation_emits_existing_files_and_known_hook_suppresses(shots: Path, make_watcher) -> None:
    for i in range(5):
        (shots / f"old_{i}.png").write_bytes(png_bytes(10 + i))
    (shots / "notes.txt").write_text("not a screenshot")
    seen: list[tuple[str, int]] = []

    def known(path: Path, st: os.stat_result) -> bool:
        seen.append((path.name, st.st_size))
        return path.name in {"old_0.png", "old_1.png"}

    rec = Recorder()
    cfg = watch_cfg()
    make_watcher([shots], rec, cfg, known=known)
    assert rec.wait(lambda r: len(r.ready) >= 3)
    settle(cfg)
    assert rec.names() == ["old_2.png", "old_3.png", "old_4.png"]
    assert ("old_0.png", (shots / "old_0.png").stat().st_size) in seen
    assert all(name != "notes.txt" for name, _ in seen)


def test_periodic_reconcile_finds_files_the_events_missed(shots: Path, make_watcher) -> None:
    rec = Recorder()
    cfg = watch_cfg(reconcile_interval_s=0.3)
    w = make_watcher([shots], rec, cfg)
    w.pause()  # events are recorded but nothing is handed over; resume rescans
    (shots / "missed.png").write_bytes(png_bytes(15))
    settle(cfg, 3)
    assert rec.ready == []
    w.resume()
    assert rec.wait(lambda r: len(r.ready) >= 1)
    before = w.stats()["scans"]
    assert wait_until(lambda: w.stats()["scans"] >= before + 2, timeout=3)
    assert rec.names() == ["missed.png"]


def test_polling_mode_emits_once(shots: Path, make_watcher) -> None:
    rec = Recorder()
    cfg = watch_cfg()
    w = make_watcher([FolderSpec(shots, polling=True)], rec, cfg)
    assert w.folder_states()[shots] == "polling"
    write_chunks(shots / "net.png", png_bytes(16, noise=True), chunks=4, pause=POLL_S)
    tmp = shots / "net2.tmp"
    tmp.write_bytes(png_bytes(17))
    os.replace(tmp, shots / "net2.png")
    assert rec.wait(lambda r: len(r.ready) >= 2)
    settle(cfg)
    assert rec.names() == ["net.png", "net2.png"]


def test_polling_folders_key_selects_polling(shots: Path, make_watcher) -> None:
    rec = Recorder()
    w = make_watcher([shots], rec, watch_cfg(polling_folders=[str(shots)]))
    assert w.folder_states()[shots] == "polling"


def test_pause_and_resume(shots: Path, make_watcher) -> None:
    rec = Recorder()
    # The daemon's own config object (keys the file does not have yet fall back to defaults).
    cfg = load_config(overrides=[f"watch.stable_s={STABLE_S}", f"watch.polling_stable_s={2 * POLL_S}"]).watch
    w = make_watcher([shots], rec, cfg)
    w.pause()
    (shots / "paused.png").write_bytes(png_bytes(18))
    settle(cfg)
    assert rec.ready == []
    w.resume()
    assert rec.wait(lambda r: len(r.ready) >= 1)
    settle(cfg)
    assert rec.names() == ["paused.png"]


def test_callback_exceptions_are_swallowed(shots: Path, make_watcher) -> None:
    rec = Recorder()
    calls: list[str] = []

    def on_ready(path: Path) -> None:
        calls.append(path.name)
        if path.name == "bad.png":
            raise RuntimeError("daemon bug")
        rec.on_ready(path)

    cfg = watch_cfg()
    w = Watcher([shots], on_ready, cfg_watch=cfg)
    w.start()
    try:
        (shots / "bad.png").write_bytes(png_bytes(19))
        assert wait_until(lambda: "bad.png" in calls)
        (shots / "good.png").write_bytes(png_bytes(20))
        assert rec.wait(lambda r: len(r.ready) >= 1)
        w.scan_now()
        settle(cfg)
        assert calls.count("bad.png") == 1 and rec.names() == ["good.png"]
    finally:
        w.stop()


def test_declined_file_is_offered_again_on_the_next_scan(shots: Path, make_watcher) -> None:
    offers: list[str] = []
    accept = threading.Event()

    def on_ready(path: Path) -> bool:
        offers.append(path.name)
        return accept.is_set()  # False: the daemon's queue is full

    cfg = watch_cfg()
    w = Watcher([shots], on_ready, cfg_watch=cfg)
    w.start()
    try:
        (shots / "queued.png").write_bytes(png_bytes(21))
        assert wait_until(lambda: len(offers) == 1)
        accept.set()
        w.scan_now()
        assert wait_until(lambda: len(offers) == 2)
        w.scan_now()
        settle(cfg)
        assert offers == ["queued.png", "queued.png"]
    finally:
        w.stop()


def test_stop_joins_threads_and_is_idempotent(shots: Path) -> None:
    before = set(threading.enumerate())
    w = Watcher([shots, FolderSpec(shots.parent / "other", polling=True)], lambda p: None, cfg_watch=watch_cfg())
    w.start()
    w.stop()
    w.stop()
    assert wait_until(lambda: not (set(threading.enumerate()) - before), timeout=3)
    with pytest.raises(RuntimeError):
        w.start()


# ----------------------------------------------------------------------------- folder discovery
STEAM_TAIL = ("steamapps", "common", "Star Trek Online", "Star Trek Online", "Live")


def test_discovery_windows_steam_and_library_folders() -> None:
    pf86 = PureWindowsPath(r"D:\Apps (x86)")
    steam_shots = pf86.joinpath("Steam", *STEAM_TAIL, "screenshots")
    lib_shots = PureWindowsPath(r"E:\Games\SteamLibrary").joinpath(*STEAM_TAIL, "screenshots")
    existing = {steam_shots, steam_shots.parent, lib_shots, lib_shots.parent}
    vdf = '"libraryfolders"\n{\n "1"\n {\n  "path"\t\t"E:\\\\Games\\\\SteamLibrary"\n }\n}\n'

    def read_text(p):
        return vdf if p == pf86 / "Steam" / "steamapps" / "libraryfolders.vdf" else None

    cands = discover_screenshot_folders("win32", {"ProgramFiles(x86)": str(pf86)}, r"C:\Users\kirk",
                                        existing.__contains__, read_text=read_text)
    chosen = [c for c in cands if c.chosen]
    assert [c.path for c in chosen] == [steam_shots, lib_shots]
    assert all(isinstance(c.path, PureWindowsPath) for c in cands)
    assert "Steam" in chosen[0].reason and "libraryfolders.vdf" in chosen[1].install
    assert any("Arc Games" in str(c.path) and not c.chosen for c in cands)


def test_discovery_windows_game_installed_without_screenshots_yet() -> None:
    live = PureWindowsPath(r"C:\Program Files (x86)\Arc Games\Star Trek Online\Star Trek Online_en\Star Trek Online\Live")
    cands = discover_screenshot_folders("win32", {}, r"C:\Users\kirk", {live}.__contains__)
    chosen = [c for c in cands if c.chosen]
    assert [c.path for c in chosen] == [live / "screenshots"]
    assert chosen[0].status == "game-installed" and "has not saved a screenshot yet" in chosen[0].reason


def test_discovery_linux_proton_and_lutris(tmp_path: Path) -> None:
    home = tmp_path / "home"
    proton = home.joinpath(".steam", "steam", *STEAM_TAIL, "screenshots")
    lutris = home.joinpath("Games", "star-trek-online", "drive_c", "Program Files (x86)", "Arc Games",
                           "Star Trek Online", "Star Trek Online_en", "Star Trek Online", "Live", "screenshots")
    bottle_live = home.joinpath(".local", "share", "bottles", "bottles", "sto", "drive_c", "Program Files",
                                "Cryptic Studios", "Star Trek Online", "Live")
    for p in (proton, lutris, bottle_live):
        p.mkdir(parents=True)
    listdir = lambda p: [e.name for e in os.scandir(p) if e.is_dir()] if os.path.isdir(p) else []  # noqa: E731
    cands = discover_screenshot_folders("linux", {}, home, lambda p: os.path.isdir(p), listdir=listdir)
    chosen = [c for c in cands if c.chosen]
    assert [Path(c.path) for c in chosen] == [proton, lutris]
    assert "Proton" in chosen[0].reason and "Lutris" in chosen[1].reason
    bottle = [c for c in cands if Path(c.path) == bottle_live / "screenshots"]
    assert bottle and bottle[0].status == "game-installed" and not bottle[0].chosen


def test_discovery_darwin_crossover_bottle() -> None:
    home = PurePosixPath("/Users/picard")
    bottles = home / "Library" / "Application Support" / "CrossOver" / "Bottles"
    shots = bottles.joinpath("STO", "drive_c", "Program Files (x86)", "Steam", *STEAM_TAIL, "screenshots")
    cands = discover_screenshot_folders("darwin", {}, home, {shots}.__contains__,
                                        listdir=lambda p: ["STO"] if p == bottles else [])
    chosen = [c for c in cands if c.chosen]
    assert [c.path for c in chosen] == [shots] and "CrossOver" in chosen[0].reason


def test_discovery_nothing_found_and_configured_folders_win(tmp_path: Path, caplog) -> None:
    cands = discover_screenshot_folders("linux", {}, "/nonexistent", lambda p: False)
    assert cands and not any(c.chosen for c in cands)
    empty = watch_cfg(folders=[])
    with caplog.at_level("WARNING", logger="warpd.watcher"):
        assert find_screenshot_folders(empty, platform="linux", env={}, home=tmp_path / "nohome") == []
    assert "Set watch.folders" in caplog.text
    configured = find_screenshot_folders(watch_cfg(folders=[str(tmp_path), str(tmp_path / "later")]))
    assert [c.path for c in configured] == [tmp_path, tmp_path / "later"]
    assert all(c.chosen and "watch.folders" in c.reason for c in configured)
    assert [c.status for c in configured] == ["exists", "absent"]


def test_find_screenshot_folders_discovers_on_this_machine(tmp_path: Path) -> None:
    shots = tmp_path.joinpath(".local", "share", "Steam", *STEAM_TAIL, "screenshots")
    shots.mkdir(parents=True)
    found = find_screenshot_folders(watch_cfg(folders=[]), env={}, home=tmp_path)
    assert [c.path for c in found] == [shots] and isinstance(found[0].path, Path)


def test_network_folder_detection() -> None:
    mounts = ("/dev/sda1 / ext4 rw 0 0\n"
              "server:/shots /mnt/nas nfs4 rw 0 0\n"
              "//pc/share /mnt/win\\040share cifs rw 0 0\n"
              "C:\\134 /mnt/c 9p rw 0 0\n")
    assert is_network_folder("/mnt/nas/sto/screenshots", platform="linux", mounts_text=mounts)
    assert is_network_folder("/mnt/win share/x", platform="linux", mounts_text=mounts)
    assert is_network_folder("/mnt/c/Program Files (x86)/Steam", platform="linux", mounts_text=mounts)
    assert not is_network_folder("/home/u/screenshots", platform="linux", mounts_text=mounts)
    assert not is_network_folder("/mnt/nasty", platform="linux", mounts_text=mounts)
    assert is_network_folder(r"\\nas\games\screenshots", platform="win32")
