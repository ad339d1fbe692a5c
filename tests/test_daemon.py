"""The daemon on real files and real watchdog events: recognise, queue questions, answer, survive kill -9."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from tests.waiting import wait_for
from warpd.config import load_config
from warpd.daemon import Daemon, InstanceLock
from warpd.store import Store

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"


def _cfg(tmp_path: Path, **extra: str):
    overrides = [f"paths.data_dir={json.dumps(str(tmp_path / 'data'))}",
                 f"paths.icons_dir={json.dumps(str(EXAMPLES / 'icons'))}",
                 "watch.stable_s=0.2", "watch.reconcile_interval_s=1.0", "tray.enabled=false"]
    overrides += [f"{k.replace('__', '.')}={v}" for k, v in extra.items()]
    return load_config(None, overrides, env={})



def _variant(src: Path, dst: Path, k: int) -> None:
    """A copy with one pixel changed: new content (new hash), same screen."""
    img = cv2.imread(str(src), cv2.IMREAD_COLOR)
    img[0, k % img.shape[1]] = (k % 256, 7, 7)
    ok, data = cv2.imencode(".png", img, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    assert ok
    tmp = dst.with_suffix(".tmp")
    tmp.write_bytes(data.tobytes())
    os.replace(tmp, dst)


@pytest.fixture()
def daemon(tmp_path: Path):
    shots = tmp_path / "shots"
    shots.mkdir()
    # a strict auto band, as a careful user might set: the example screens, read almost entirely
    # "auto" at the default 0.75, still raise questions for the tests below to answer
    d = Daemon(_cfg(tmp_path, recognition__auto_accept="0.99"), folders=[shots], use_tray=False)
    d.start()
    yield d
    d.stop()
    d.store.close()


def test_new_screenshots_are_read_once_and_questions_queued(daemon: Daemon, tmp_path: Path) -> None:
    shots = daemon.folders[0]
    shutil.copy(EXAMPLES / "space_eq_000007.jpg", shots / "a.jpg")
    shutil.copy(EXAMPLES / "traits_000009.png", shots / "b.png")
    (shots / "notes.png").write_text("not an image")
    assert wait_for(lambda: daemon.counters.processed == 2)
    shutil.copy(EXAMPLES / "space_eq_000007.jpg", shots / "a-again.jpg")  # same content, new name
    assert wait_for(lambda: daemon.counters.duplicates == 1)
    assert daemon.counters.processed == 2 and daemon.store.screenshot_counts()["done"] == 2
    results = sorted((daemon.output / "results").glob("*.json"))
    assert [p.name.split(".")[0] for p in results] == ["a", "b"]
    assert list(daemon.output.glob("*.json")), "a build file is written"
    waiting = daemon.store.waiting()
    stored = [daemon.store.screenshot(s.screenshot_sha).result for s in waiting]
    for q, result in zip(waiting, stored):
        if q.kind == "item":
            entry = next(e for e in result["slots"] if e["slot"] == q.slot and e["index"] == q.index
                         and tuple(e["bbox"]) == q.bbox)
            assert entry["decision"] == "ask" and q.crop and q.candidates
    status = daemon.store.status()
    assert status["folders"] == [str(shots)] and status["counters"]["processed"] == 2


def test_an_answer_becomes_training_data_and_updates_the_result(daemon: Daemon) -> None:
    q = _first_question(daemon)
    name = q.candidates[0][0]
    before = len(daemon.engine().session)
    daemon.choose(q.id, name)
    assert len(daemon.engine().session) == before + 1  # the very next screenshot benefits
    crop = daemon.paths.crops / f"{q.crop_sha256}.png"
    assert crop.is_file()
    result = daemon.store.screenshot(q.screenshot_sha).result
    entry = next(e for e in result["slots"] if e["slot"] == q.slot and e["index"] == q.index
                 and tuple(e["bbox"]) == q.bbox)
    assert entry["item"] == name and entry["decision"] == "auto"
    assert all(p.id != q.id for p in daemon.store.waiting())


def _first_question(daemon: Daemon):
    """Drop the example SPACE_EQ screen and return the first item question it raised."""
    shutil.copy(EXAMPLES / "space_eq_000007.jpg", daemon.folders[0] / "a.jpg")
    assert wait_for(lambda: daemon.counters.processed == 1)
    items = [q for q in daemon.store.waiting() if q.kind == "item"]
    assert items, "the example screen raised no item question"
    return items[0]


def test_one_instance_per_user(tmp_path: Path) -> None:
    first, second = InstanceLock(tmp_path / "l"), InstanceLock(tmp_path / "l")
    assert first.acquire()
    try:
        code = subprocess.run([sys.executable, "-c", "import sys; from warpd.daemon import InstanceLock; "
                               f"sys.exit(0 if InstanceLock(__import__('pathlib').Path({str(tmp_path / 'l')!r}))"
                               ".acquire() else 3)"], timeout=60).returncode
        assert code == 3 and first.holder() == str(os.getpid())
    finally:
        first.release()
    assert second.acquire()
    second.release()


@pytest.mark.slow
def test_kill_9_in_a_burst_loses_nothing_and_reads_nothing_twice(tmp_path: Path) -> None:
    shots = tmp_path / "shots"
    shots.mkdir()
    env = dict(os.environ, WARPD_PATHS__DATA_DIR=str(tmp_path / "data"),
               WARPD_PATHS__ICONS_DIR=str(EXAMPLES / "icons"), WARPD_WATCH__STABLE_S="0.2",
               PYTHONPATH=str(REPO))
    sources = [EXAMPLES / n for n in ("traits_000009.png", "boffs_000010.png", "space_eq_000007.jpg")]
    n_files = 24
    for k in range(n_files):
        _variant(sources[k % len(sources)], shots / f"shot_{k:03d}.png", k)
    cmd = [sys.executable, "-m", "warpd", "run", "--no-tray", "--folder", str(shots)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = tmp_path / "data" / "state.sqlite3"
    try:
        assert wait_for(lambda: db.exists() and _done(db) >= 3, timeout=120), "the daemon processed nothing"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    killed_at = _done(db)
    assert killed_at < n_files, "the kill came too late to test anything"
    rerun = subprocess.run(cmd + ["--exit-when-idle"], env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    store = Store.__new__(Store)
    from warpd.paths import DataPaths

    store = Store(DataPaths(tmp_path / "data"))
    try:
        counts = store.screenshot_counts()
        assert counts["done"] == n_files and counts["queued"] == counts["processing"] == 0
        assert store.integrity_check() == "ok"
        results = list((tmp_path / "data" / "builds" / "results").glob("*.json"))
        assert len(results) == n_files  # each screenshot's result exactly once
        shas = {s.screenshot_sha for s in store.waiting()}
        questions = store.waiting()
        keys = [(q.screenshot_sha, q.kind, q.slot, q.index) for q in questions]
        assert len(keys) == len(set(keys)) and shas <= {p.stem.split(".")[1] for p in results} | shas
    finally:
        store.close()


def _die_once(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Make one Daemon step fail once, as a process killed at that very point would stop there."""
    real = getattr(Daemon, name)
    calls = []

    def dying(self, *args, **kwargs):
        if not calls:
            calls.append(1)
            raise RuntimeError(f"killed in {name}")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Daemon, name, dying)


def _run_until_idle(tmp_path: Path, expect_processed: int) -> Daemon:
    d = Daemon(_cfg(tmp_path), folders=[tmp_path / "shots"], use_tray=False)
    d.start()
    if expect_processed:
        assert wait_for(lambda: d.counters.processed + d.counters.duplicates >= expect_processed, timeout=120)
        assert wait_for(lambda: d.idle.is_set() and d.queue.empty())
    d.stop()
    d.store.close()
    return d


def test_a_process_dying_before_its_result_file_reads_the_screenshot_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "shots").mkdir()
    shutil.copy(EXAMPLES / "traits_000009.png", tmp_path / "shots" / "t.png")
    _die_once(monkeypatch, "_write_result_file")
    first = Daemon(_cfg(tmp_path), folders=[tmp_path / "shots"], use_tray=False)
    first.start()
    assert wait_for(lambda: first._last_error and first.idle.is_set(), timeout=120)
    first.stop()
    first.store.close()
    _run_until_idle(tmp_path, 1)  # the restart
    results = list((tmp_path / "data" / "builds" / "results").glob("t.*.json"))
    assert len(results) == 1, "a screenshot stored as done must have its result file"


def test_a_build_a_dead_process_did_not_rewrite_is_written_on_the_next_start(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "shots").mkdir()
    shutil.copy(EXAMPLES / "space_eq_000007.jpg", tmp_path / "shots" / "s.jpg")
    _die_once(monkeypatch, "write_build")
    _run_until_idle(tmp_path, 1)
    out = tmp_path / "data" / "builds"
    assert not list(out.glob("*.json")), "the first process died before writing the build"
    _run_until_idle(tmp_path, 0)
    assert list(out.glob("*.json")), "the restart writes the lagging build"
    store = Store(__import__("warpd.paths", fromlist=["DataPaths"]).DataPaths(tmp_path / "data"))
    try:
        from warpd.store import BUILD_TO_WRITE_KEY

        assert store.get_state(BUILD_TO_WRITE_KEY) is None
    finally:
        store.close()


def _done(db: Path) -> int:
    import sqlite3

    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return con.execute("SELECT COUNT(*) FROM screenshots WHERE status = 'done'").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return 0


def test_status_verb(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from warpd.cli import main

    monkeypatch.setenv("WARPD_PATHS__DATA_DIR", str(tmp_path / "data"))
    assert main(["status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["state"] == "never run"
    Store(__import__("warpd.paths", fromlist=["DataPaths"]).DataPaths(tmp_path / "data")).close()
    assert main(["status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["running"] is False and "pending" in status


def test_answers_from_warpd_confirm_in_another_process_reach_the_daemon(daemon: Daemon) -> None:
    q = _first_question(daemon)
    name = q.candidates[-1][0]
    env = dict(os.environ, WARPD_PATHS__DATA_DIR=str(daemon.paths.root), PYTHONPATH=str(REPO))
    done = subprocess.run([sys.executable, "-m", "warpd", "confirm", "--id", str(q.id), "--name", name],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    before = len(daemon.engine().session)
    assert daemon.apply_external_answers() == 1
    assert len(daemon.engine().session) == before + 1
    result = daemon.store.screenshot(q.screenshot_sha).result
    entry = next(e for e in result["slots"] if e["slot"] == q.slot and e["index"] == q.index
                 and tuple(e["bbox"]) == q.bbox)
    assert entry["item"] == name
    assert daemon.apply_external_answers() == 0  # applied once


def test_sigterm_stops_cleanly_and_a_second_start_is_refused(tmp_path: Path) -> None:
    shots = tmp_path / "shots"
    shots.mkdir()
    env = dict(os.environ, WARPD_PATHS__DATA_DIR=str(tmp_path / "data"), WARPD_SYNC__CHECK_UPDATES="false",
               PYTHONPATH=str(REPO))
    cmd = [sys.executable, "-m", "warpd", "run", "--no-tray", "--folder", str(shots)]
    first = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        db = tmp_path / "data" / "state.sqlite3"
        assert wait_for(lambda: db.exists() and "watching" in json.dumps(_status(tmp_path)), timeout=60)
        second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
        assert second.returncode == 3 and "already running" in second.stderr
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=60) == 0
    finally:
        if first.poll() is None:
            first.kill()
    assert _status(tmp_path)["state"] == "stopped"


def _status(tmp_path: Path) -> dict:
    from warpd.paths import DataPaths

    store = Store(DataPaths(tmp_path / "data"))
    try:
        return store.status()
    finally:
        store.close()
