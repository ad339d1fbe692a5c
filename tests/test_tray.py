"""The tray: menu → model wiring on pystray's dummy backend, one real xorg run under Xvfb, and
the no-display path.

The menu tests walk ``icon.menu`` the way a backend does (``MenuItem`` objects are callable with
the icon), so they exercise pystray's own Menu/MenuItem logic, not a copy of it.
"""

from __future__ import annotations

import gc
import importlib.util
import json
import logging
import os
import random
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

# Not importorskip: importing pystray without a display raises DisplayNameError, not ImportError.
if importlib.util.find_spec("pystray") is None:
    pytest.skip("pystray is not installed", allow_module_level=True)

from warpd import tray as tray_mod  # noqa: E402
from warpd.tray import Tray, TrayState, WaitingItem, open_folder, tray_available, waiting_message  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


# ------------------------------------------------------------------------------------------
# Fakes


class FakeModel:
    """A daemon stand-in that records every call; ``fail`` names methods that raise."""

    def __init__(self, items: list[WaitingItem], *, kind: str = "waiting", paused: bool = False):
        self.items = {it.id: it for it in items}
        self.kind, self.paused, self.error = kind, paused, None
        self.calls: list[tuple[Any, ...]] = []
        self.fail: set[str] = set()

    def _record(self, *call: Any) -> None:
        self.calls.append(call)
        if call[0] in self.fail:
            raise RuntimeError(f"{call[0]} exploded")

    def tray_state(self) -> TrayState:
        if "tray_state" in self.fail:
            raise RuntimeError("state exploded")
        kind = self.kind if self.kind != "waiting" or self.items else "idle"
        return TrayState(kind, len(self.items), self.error, self.paused)  # type: ignore[arg-type]

    def waiting_items(self, limit: int) -> list[WaitingItem]:
        return list(self.items.values())[:limit]

    def choose(self, item_id: int, name: str) -> None:
        self._record("choose", item_id, name)
        del self.items[item_id]

    def none_of_these(self, item_id: int) -> None:
        self._record("none_of_these", item_id)
        del self.items[item_id]

    def skip(self, item_id: int) -> None:
        self._record("skip", item_id)
        del self.items[item_id]

    def set_paused(self, paused: bool) -> None:
        self._record("set_paused", paused)
        self.paused = paused

    def open_output_folder(self) -> None:
        self._record("open_output_folder")

    def sync_now(self) -> None:
        self._record("sync_now")

    def check_update(self) -> None:
        self._record("check_update")

    def quit(self) -> None:
        self._record("quit")


def three_items() -> list[WaitingItem]:
    return [
        WaitingItem(11, "Fore Weapon 1", "shot_0001.png", (("Phaser Beam Array", 0.62), ("Phaser Dual Beam Bank", 0.21)), "equipment"),
        WaitingItem(12, "Deflector", "shot_0001.png", (("Elite Fleet Deflector", 0.55),), "equipment"),
        WaitingItem(13, "Personal Space Trait", "shot_0002.png", (("Fleet Coordinator", 0.48), ("Inspirational Leader", 0.3)), "trait"),
    ]


def texts(menu: Any) -> list[str]:
    return [item.text for item in menu]


def entry(menu: Any, prefix: str) -> Any:
    """The visible menu item whose text starts with prefix (the way a user finds it)."""
    found = [item for item in menu if item.text.startswith(prefix)]
    assert found, f"no {prefix!r} in {texts(menu)}"
    return found[0]


def waiting_submenus(tray: Tray) -> list[Any]:
    return list(entry(tray.icon.menu, "Waiting items").submenu)


@pytest.fixture
def dummy_icon_cls() -> type:
    """pystray's dummy Icon, loaded without needing a display."""
    return tray_mod._load_backend("dummy")[0]


@pytest.fixture
def model() -> FakeModel:
    return FakeModel(three_items())


@pytest.fixture
def tray(model: FakeModel) -> Tray:
    return Tray(model, backend="dummy")


@pytest.fixture
def recording_icon_cls(dummy_icon_cls: type) -> type:
    """The dummy Icon with a loop that runs and stops, and notifications that are recorded."""

    class RecordingIcon(dummy_icon_cls):  # type: ignore[misc, valid-type]
        HAS_NOTIFICATION = True

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.notes: list[tuple[str | None, str]] = []
            self.menu_updates = 0
            self._done = threading.Event()

        def _show(self) -> None: pass
        def _hide(self) -> None: pass
        def _update_icon(self) -> None: self._icon_valid = True
        def _update_title(self) -> None: pass
        def _update_menu(self) -> None: self.menu_updates += 1
        def _notify(self, message: str, title: str | None = None) -> None: self.notes.append((title, message))

        def _run(self) -> None:
            self._mark_ready()
            self._done.wait(10)

        def _stop(self) -> None:
            self._done.set()

    return RecordingIcon


@pytest.fixture
def running_tray(model: FakeModel, recording_icon_cls: type) -> Iterator[Tray]:
    t = Tray(model, backend=recording_icon_cls)
    t.run_detached()
    assert t.wait_ready(5), "recording backend never became ready"
    yield t
    assert t.stop(5)


# ------------------------------------------------------------------------------------------
# Menu on the dummy backend


def test_menu_lists_each_waiting_item_with_its_candidates(tray: Tray) -> None:
    top = texts(tray.icon.menu)
    assert top[0] == "3 items waiting"
    assert top[1] == "Waiting items (3)"
    assert top[2:] == ["- - - -", "Pause watching", "Open output folder", "Sync now", "Check for model update",
                       "- - - -", "Quit warpd"]
    subs = waiting_submenus(tray)
    assert [s.text for s in subs] == ["Fore Weapon 1 — shot_0001.png", "Deflector — shot_0001.png",
                                      "Personal Space Trait — shot_0002.png"]
    assert texts(subs[0].submenu) == ["Phaser Beam Array (62%)", "Phaser Dual Beam Bank (21%)", "- - - -",
                                      "None of these", "Skip"]


def test_choose_none_and_skip_reach_the_model_and_the_item_leaves_the_menu(tray: Tray, model: FakeModel) -> None:
    entry(waiting_submenus(tray)[0].submenu, "Phaser Dual Beam Bank")(tray.icon)
    assert model.calls == [("choose", 11, "Phaser Dual Beam Bank")]
    assert [s.text for s in waiting_submenus(tray)] == ["Deflector — shot_0001.png", "Personal Space Trait — shot_0002.png"]

    entry(waiting_submenus(tray)[0].submenu, "None of these")(tray.icon)
    entry(waiting_submenus(tray)[0].submenu, "Skip")(tray.icon)
    assert model.calls[1:] == [("none_of_these", 12), ("skip", 13)]
    assert texts(tray.icon.menu)[:2] == ["Watching", "No items waiting"]


def test_menu_follows_changes_the_daemon_reports_through_refresh(tray: Tray, model: FakeModel) -> None:
    """An item confirmed elsewhere (`warpd confirm`) disappears once the daemon calls refresh()."""
    del model.items[12]
    assert len(waiting_submenus(tray)) == 3  # the menu renders the last snapshot
    tray.refresh()
    assert [s.text for s in waiting_submenus(tray)] == ["Fore Weapon 1 — shot_0001.png", "Personal Space Trait — shot_0002.png"]


def test_pause_item_is_checked_from_the_model_and_toggles_it(tray: Tray, model: FakeModel) -> None:
    pause = entry(tray.icon.menu, "Pause watching")
    assert pause.checked is False
    pause(tray.icon)
    assert model.calls == [("set_paused", True)]
    assert entry(tray.icon.menu, "Pause watching").checked is True
    assert texts(tray.icon.menu)[0] == "3 items waiting (paused)"
    entry(tray.icon.menu, "Pause watching")(tray.icon)
    assert model.calls[-1] == ("set_paused", False)

    model.paused = True  # paused from the CLI: shown after refresh
    tray.refresh()
    assert entry(tray.icon.menu, "Pause watching").checked is True


def test_folder_sync_update_and_quit_reach_the_model(tray: Tray, model: FakeModel) -> None:
    for label in ("Open output folder", "Sync now", "Check for model update", "Quit warpd"):
        entry(tray.icon.menu, label)(tray.icon)
    assert model.calls == [("open_output_folder",), ("sync_now",), ("check_update",), ("quit",)]


def test_default_action_opens_the_output_folder(tray: Tray, model: FakeModel) -> None:
    """The xorg backend has no menu: a left click runs the default item, so it must be harmless."""
    tray.icon.menu(tray.icon)
    assert model.calls == [("open_output_folder",)]


def test_long_waiting_list_is_capped_with_a_pointer_to_the_cli(dummy_icon_cls: type) -> None:
    items = [WaitingItem(i, f"Slot {i}", f"s{i}.png", (("X", 0.5),)) for i in range(14)]
    t = Tray(FakeModel(items), backend="dummy", max_items=10)
    subs = waiting_submenus(t)
    assert len(subs) == 11
    assert subs[-1].text == "… and 4 more: run `warpd confirm`"
    assert subs[-1].enabled is False


def test_candidates_per_item_are_capped_and_long_labels_clipped() -> None:
    long_file = "Star Trek Online Screenshot 2025-01-01 12-00-00 very long name.png"
    cands = tuple((f"Candidate {i}", 0.9 - i / 10) for i in range(8))
    t = Tray(FakeModel([WaitingItem(1, "Aft Weapon 3", long_file, cands)]), backend="dummy", max_candidates=3)
    sub = waiting_submenus(t)[0]
    assert len(sub.text) <= tray_mod.LABEL_MAX and sub.text.endswith("name.png") and "…" in sub.text
    assert texts(sub.submenu) == ["Candidate 0 (90%)", "Candidate 1 (80%)", "Candidate 2 (70%)", "- - - -",
                                  "None of these", "Skip"]


def test_a_raising_callback_is_logged_not_propagated(tray: Tray, model: FakeModel, caplog: pytest.LogCaptureFixture) -> None:
    model.fail = {"sync_now", "choose"}
    with caplog.at_level(logging.ERROR, logger="warpd.tray"):
        entry(tray.icon.menu, "Sync now")(tray.icon)
        entry(waiting_submenus(tray)[0].submenu, "Phaser Beam Array")(tray.icon)
    assert ("sync_now",) in model.calls and ("choose", 11, "Phaser Beam Array") in model.calls
    assert "tray: sync now failed" in caplog.text and "tray: choose failed" in caplog.text
    assert len(waiting_submenus(tray)) == 3  # the failed choose left the item waiting

    model.fail = {"tray_state"}
    tray.refresh()  # a daemon bug here must not take the tray down either
    assert "reading the daemon's state failed" in caplog.text


# ------------------------------------------------------------------------------------------
# Icon and tooltip


def test_icon_image_and_tooltip_follow_the_state(tray: Tray, model: FakeModel) -> None:
    seen = {"waiting3": tray.icon.icon.tobytes()}
    assert tray.icon.title == "warpd: 3 items waiting"

    del model.items[11]
    tray.refresh()
    seen["waiting2"] = tray.icon.icon.tobytes()
    model.items.clear()
    model.kind = "working"
    tray.refresh()
    seen["working"] = tray.icon.icon.tobytes()
    assert tray.icon.title == "warpd: Working…"
    model.kind = "idle"
    tray.refresh()
    seen["idle"] = tray.icon.icon.tobytes()
    model.paused = True
    tray.refresh()
    seen["paused"] = tray.icon.icon.tobytes()
    model.kind, model.error = "error", "models folder is not writable"
    tray.refresh()
    seen["error"] = tray.icon.icon.tobytes()
    assert tray.icon.title == "warpd: Error: models folder is not writable (paused)"
    assert len(set(seen.values())) == len(seen), "two states share an icon"


def test_badge_is_drawn_top_right_only_when_items_wait() -> None:
    size = 64
    idle, waiting = tray_mod.icon_image("idle", 0, False, size), tray_mod.icon_image("waiting", 4, False, size)
    assert idle.size == waiting.size == (size, size)
    r, g, b, a = waiting.getpixel((int(size * .62), int(size * .12)))  # inside the badge, off the digit
    assert a == 255 and r > 180 and g < 80 and b < 80
    assert idle.getpixel((int(size * .62), int(size * .12)))[:3] != (r, g, b)
    assert tray_mod.badge_text(12) == "9+" and tray_mod.badge_text(0) == ""


# ------------------------------------------------------------------------------------------
# Loop and notifications (recording backend: pystray's base Icon with a trivial loop)


def test_quit_item_stops_a_detached_tray(running_tray: Tray, model: FakeModel) -> None:
    assert running_tray.icon.visible and running_tray.running
    thread = running_tray.run_detached()
    entry(running_tray.icon.menu, "Quit warpd")(running_tray.icon)
    thread.join(5)
    assert not thread.is_alive() and not running_tray.running
    assert model.calls == [("quit",)]
    running_tray.refresh()  # the daemon may still call this after quit: no effect, no hang


def test_refresh_pushes_the_menu_to_a_running_backend(running_tray: Tray, model: FakeModel) -> None:
    before = running_tray.icon.menu_updates
    del model.items[13]
    running_tray.refresh()
    assert running_tray.icon.menu_updates > before


def test_stop_before_the_loop_is_ready_still_ends_it(model: FakeModel, recording_icon_cls: type) -> None:
    """The daemon may quit while the tray is still starting; the loop must not outlive it."""
    early = Tray(model, backend=recording_icon_cls)
    early.stop()
    thread = early.run_detached()
    thread.join(5)
    assert not thread.is_alive() and not early.running

    racing = Tray(model, backend=recording_icon_cls)
    racing.run_detached()
    assert racing.stop(5), "the loop outlived stop() issued while it was starting"
    assert not racing.running


def test_notification_text_and_when_it_is_sent(running_tray: Tray) -> None:
    assert waiting_message(1, "Status") == "1 item from your Status screenshot needs a look"
    assert running_tray.notify_waiting(3, "Status") == "3 items from your Status screenshot need a look"
    assert running_tray.icon.notes == [("warpd", "3 items from your Status screenshot need a look")]
    assert running_tray.notify_waiting(0, "Status") is None  # nothing new arrived
    assert len(running_tray.icon.notes) == 1


def test_notify_flag_off_keeps_the_desktop_quiet(model: FakeModel, recording_icon_cls: type,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    t = Tray(model, backend=recording_icon_cls, notify=False)
    t.run_detached()
    try:
        assert t.wait_ready(5)
        with caplog.at_level(logging.INFO, logger="warpd.tray"):
            assert t.notify_waiting(2, "Space Traits") is None
        assert t.icon.notes == []
        assert "2 items from your Space Traits screenshot need a look" in caplog.text
    finally:
        assert t.stop(5)


def test_backend_without_notifications_is_logged_once(model: FakeModel, recording_icon_cls: type,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    no_notify = type("NoNotifyIcon", (recording_icon_cls,), {"HAS_NOTIFICATION": False})
    t = Tray(model, backend=no_notify, log_location="/tmp/warpd.log")
    t.run_detached()
    try:
        assert t.wait_ready(5)
        with caplog.at_level(logging.INFO, logger="warpd.tray"):
            assert t.notify_waiting(2, "Status") is None
            assert t.notify_waiting(1, "Status") is None
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1
        assert "cannot show notifications" in warnings[0] and "/tmp/warpd.log" in warnings[0]
        assert "warpd confirm" in warnings[0]
    finally:
        assert t.stop(5)


# ------------------------------------------------------------------------------------------
# Opening the output folder


@pytest.mark.skipif(sys.platform != "linux", reason="xdg-open is the Linux opener")
def test_open_folder_uses_xdg_open_and_survives_its_absence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bindir, record = tmp_path / "bin", tmp_path / "opened.txt"
    bindir.mkdir()
    (bindir / "xdg-open").write_text(f'#!/bin/sh\nprintf "%s" "$1" > "{record}"\n')
    (bindir / "xdg-open").chmod(0o755)
    target = tmp_path / "builds"
    monkeypatch.setenv("PATH", str(bindir))
    assert open_folder(target) is True
    deadline = time.monotonic() + 5
    while not record.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert record.read_text() == str(target) and target.is_dir()

    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert open_folder(target) is False


# ------------------------------------------------------------------------------------------
# No display / real X


def test_tray_available_without_a_display_reports_why(tmp_path: Path) -> None:
    """In a fresh process (pystray binds its backend at first import) with no display at all."""
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "PYSTRAY_BACKEND")}
    code = "import json; from warpd.tray import tray_available; print(json.dumps(tray_available()))"
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    ok, reason = json.loads(out.stdout.strip().splitlines()[-1])
    assert ok is False
    assert reason.startswith("pystray cannot start:")
    if sys.platform.startswith("linux"):
        assert "no $DISPLAY" in reason


def _start_xvfb() -> tuple[subprocess.Popen[bytes], str]:
    """Start Xvfb on a random high display number and wait until it accepts connections.

    Not ``-displayfd``: it scans up from :0, where other Xvfbs are (pytest-xvfb's, parallel
    runs; on a machine whose sandboxes share /tmp but not PIDs, Xvfb takes their lock files for
    stale and steals the socket), so the test could end up talking to someone else's server.
    """
    from Xlib import display as xdisplay

    rng = random.Random()
    for _ in range(5):
        number = rng.randrange(1000, 30000)
        if os.path.exists(f"/tmp/.X{number}-lock") or os.path.exists(f"/tmp/.X11-unix/X{number}"):
            continue
        name = f":{number}"
        # -noreset: by default Xvfb resets when its last client leaves (our probe, pystray's
        # import-time probe) and refuses connections while it does.
        proc = subprocess.Popen(["Xvfb", name, "-noreset", "-nolisten", "tcp", "-screen", "0", "320x240x24"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                xdisplay.Display(name).close()
                return proc, name
            except Exception:  # noqa: BLE001 - not listening yet
                time.sleep(0.05)
        proc.kill()
        proc.wait(5)
    pytest.fail("could not start Xvfb on a free display within 5 tries")


@pytest.fixture
def x_display(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A private 24-bit Xvfb; skipped only when Xvfb is not installed.

    Not pytest-xvfb's session display: its default depth is 16 bit, where pystray's xorg backend
    draws with PutImage in 24-bit form and the server answers BadMatch (real desktops are 24).
    """
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed (apt install xvfb); CI installs it")
    pytest.importorskip("Xlib")
    proc, name = _start_xvfb()
    monkeypatch.setenv("DISPLAY", name)
    yield name
    proc.terminate()
    proc.wait(5)


class FakeTrayHost:
    """Owns ``_NET_SYSTEM_TRAY_S<n>`` as a panel's notification area does and records dock requests.

    Without a selection owner pystray's xorg icon cannot dock and only logs errors; Xvfb has no
    panel, and trayer/stalonetray are not something every CI image has.
    """

    def __init__(self, display_name: str) -> None:
        from Xlib import X, display

        self.X = X
        self.display = display.Display(display_name)
        screen = self.display.screen()
        self.window = screen.root.create_window(0, 0, 1, 1, 0, screen.root_depth)
        self.selection = self.display.intern_atom(f"_NET_SYSTEM_TRAY_S{self.display.get_default_screen()}")
        self.opcode = self.display.intern_atom("_NET_SYSTEM_TRAY_OPCODE")
        self.window.set_selection_owner(self.selection, X.CurrentTime)
        self.display.sync()
        assert self.display.get_selection_owner(self.selection) == self.window

    def wait_dock_request(self, timeout: float) -> int | None:
        """The window id from the first SYSTEM_TRAY_REQUEST_DOCK message, or None."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            while self.display.pending_events():
                event = self.display.next_event()
                if event.type == self.X.ClientMessage and event.client_type == self.opcode and event.data[1][1] == 0:
                    return int(event.data[1][2])
            time.sleep(0.02)
        return None

    def window_name(self, window_id: int) -> tuple[Any, str | None]:
        win = self.display.create_resource_object("window", window_id)
        return win.get_wm_class(), win.get_wm_name()

    def close(self) -> None:
        self.window.destroy()
        self.display.close()


def wait_for(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return bool(predicate())


def test_xorg_tray_docks_under_xvfb_and_quits_cleanly(x_display: str, model: FakeModel,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    assert tray_available("xorg") == (True, "pystray backend xorg")
    host = FakeTrayHost(x_display)
    try:
        t = Tray(model, backend="xorg", log_location="the test log")
        assert t.backend == "xorg" and t.icon.HAS_MENU is False
        thread = t.run_detached()
        assert t.wait_ready(5) and t.icon.visible
        window_id = host.wait_dock_request(5)
        assert window_id, "the icon never asked the tray host to dock it"
        wm_class, _ = host.window_name(window_id)
        assert "warpd" in wm_class
        assert wait_for(lambda: host.window_name(window_id)[1] == "warpd: 3 items waiting", 5)

        del model.items[12]
        t.refresh()  # from this (non-loop) thread: pystray forwards it to its X loop
        assert wait_for(lambda: host.window_name(window_id)[1] == "warpd: 2 items waiting", 5)

        with caplog.at_level(logging.WARNING, logger="warpd.tray"):
            assert t.notify_waiting(2, "Status") is None  # xorg has no notifications
        assert "pystray's xorg backend cannot show notifications" in caplog.text

        started = time.monotonic()
        entry(t.icon.menu, "Quit warpd")(t.icon)
        thread.join(5)
        assert not thread.is_alive(), "the xorg loop did not end after Quit"
        assert time.monotonic() - started < 5
        assert ("quit",) in model.calls and not t.running
        assert "Failed to dock" not in caplog.text
    finally:
        host.close()
    # pystray's xorg Icon closes its X connection only when collected: do it while Xvfb is up.
    del t
    gc.collect()
