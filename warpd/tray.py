"""The system tray icon: a thin view over the daemon.

The daemon implements :class:`TrayModel`; :class:`Tray` only renders that state (icon, tooltip,
menu, notifications) and forwards menu clicks back to the model. Keeping all logic in the model
means the tray can be absent (no display, ``--no-tray``) without the daemon losing anything.

pystray is imported lazily, never at module top: on Linux without a display ``import pystray``
raises ``Xlib.error.DisplayNameError`` (not an ImportError), which would take the daemon down.
Call :func:`tray_available` first.

Threading: :meth:`Tray.run` blocks and must own the main thread on macOS. On Linux and Windows
:meth:`Tray.run_detached` runs the same loop in a thread. Menu callbacks run on the backend's loop
thread; :meth:`Tray.refresh` may be called from any thread.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Literal, Protocol, Sequence

from PIL import Image, ImageDraw, ImageFont

log = logging.getLogger(__name__)

StateKind = Literal["idle", "working", "waiting", "error"]

APP_TITLE = "warpd"
CONFIRM_HINT = "run `warpd confirm`"
# Windows truncates the tooltip at 127 characters (NOTIFYICONDATA.szTip is 128 wide).
TOOLTIP_MAX = 127
LABEL_MAX = 48
# Pixel size each backend is handed. pystray resizes whatever it gets, so these only make the
# first scaling step a good one: win32 writes an ICO (Pillow derives 16..64 from it and Windows
# picks the tray size), darwin wants the menu bar thickness at 2x (22 pt), appindicator/gtk load
# a PNG scaled to the panel (22-24 px, 44-48 on HiDPI), xorg scales to the embedder's geometry.
ICON_SIZES = {"win32": 64, "darwin": 44, "appindicator": 48, "gtk": 48, "xorg": 48, "dummy": 64}
DEFAULT_ICON_SIZE = 64


# --------------------------------------------------------------------------------------------
# The contract with the daemon


@dataclass(frozen=True)
class TrayState:
    """What the icon shows. ``waiting`` is the total count (the menu may show fewer)."""

    kind: StateKind = "idle"
    waiting: int = 0
    error: str | None = None
    paused: bool = False


@dataclass(frozen=True)
class WaitingItem:
    """One low-confidence recognition waiting for the user. ``candidates`` best first, scores 0..1."""

    id: int
    slot: str
    file: str
    candidates: Sequence[tuple[str, float]] = field(default_factory=tuple)
    kind: str = ""


class TrayModel(Protocol):
    """What the daemon offers the tray. Every method may be called from the tray's loop thread."""

    def tray_state(self) -> TrayState: ...

    def waiting_items(self, limit: int) -> list[WaitingItem]: ...

    def choose(self, item_id: int, name: str) -> None: ...

    def none_of_these(self, item_id: int) -> None: ...

    def skip(self, item_id: int) -> None: ...

    def set_paused(self, paused: bool) -> None: ...

    def open_output_folder(self) -> None: ...

    def sync_now(self) -> None: ...

    def check_update(self) -> None: ...

    def quit(self) -> None: ...


# --------------------------------------------------------------------------------------------
# pystray loading


@contextlib.contextmanager
def _env(name: str, value: str | None) -> Iterator[None]:
    """Set one environment variable for the duration of a block (pystray reads it at import).

    None leaves the environment untouched.
    """
    if value is None:
        yield
        return
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


def _load_backend(backend: str | None) -> tuple[type, type, type]:
    """(Icon class, Menu, MenuItem) for a backend name, or pystray's own choice for None.

    ``pystray/__init__`` binds ``pystray.Icon`` to one backend at first import and runs its
    backend probe even when only ``pystray._xorg`` is wanted, so a named backend is also put in
    ``PYSTRAY_BACKEND`` for that first import; after it the backend module is imported directly,
    which lets one process use two backends (the tests: dummy and xorg).
    """
    with _env("PYSTRAY_BACKEND", backend if "pystray" not in sys.modules else None):
        pystray = importlib.import_module("pystray")
    base = importlib.import_module("pystray._base")
    icon_cls = importlib.import_module(f"pystray._{backend}").Icon if backend else pystray.Icon
    return icon_cls, base.Menu, base.MenuItem


def backend_name(icon_cls: type) -> str:
    """'xorg' for pystray._xorg.Icon; the class's module tail otherwise."""
    return icon_cls.__module__.rsplit(".", 1)[-1].lstrip("_")


def tray_available(backend: str | None = None) -> tuple[bool, str]:
    """Whether a tray icon can be shown here, and why (not): never raises.

    Catches every exception, not only ImportError: without a display pystray's xorg probe raises
    ``Xlib.error.DisplayNameError``, and GTK may raise its own errors.
    """
    try:
        icon_cls, _, _ = _load_backend(backend)
    except Exception as exc:  # noqa: BLE001 - any failure means "no tray"
        hint = ""
        if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            hint = " (no $DISPLAY or $WAYLAND_DISPLAY: no graphical session)"
        return False, f"pystray cannot start: {type(exc).__name__}: {exc}{hint}"
    return True, f"pystray backend {backend_name(icon_cls)}"


# --------------------------------------------------------------------------------------------
# Icons


_COLOURS = {"idle": (59, 110, 165), "working": (42, 157, 143), "waiting": (59, 110, 165),
            "error": (193, 18, 31), "paused": (122, 122, 122)}
_BADGE = (214, 40, 40)
_WHITE = (255, 255, 255, 255)


def badge_text(waiting: int) -> str:
    """The badge's count; '9+' keeps it legible at 16-24 px."""
    return "" if waiting <= 0 else str(waiting) if waiting < 10 else "9+"


def _font(px: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """A scalable font where Pillow has FreeType, the bitmap default otherwise."""
    try:
        return ImageFont.load_default(size=px)
    except (TypeError, OSError, AttributeError):
        return ImageFont.load_default()


def _chevron(draw: ImageDraw.ImageDraw, s: int) -> None:
    """A white arrowhead (the warpd mark)."""
    draw.polygon([(s * .50, s * .18), (s * .76, s * .80), (s * .50, s * .64), (s * .24, s * .80)], fill=_WHITE)


def _glyph(draw: ImageDraw.ImageDraw, s: int, kind: str, paused: bool) -> None:
    """The centre glyph: '!' for errors, pause bars when paused, the mark (with a ring if working)."""
    if kind == "error":
        draw.rounded_rectangle([s * .44, s * .18, s * .56, s * .60], radius=s * .05, fill=_WHITE)
        draw.ellipse([s * .43, s * .68, s * .57, s * .82], fill=_WHITE)
    elif paused:
        draw.rectangle([s * .32, s * .28, s * .44, s * .72], fill=_WHITE)
        draw.rectangle([s * .56, s * .28, s * .68, s * .72], fill=_WHITE)
    else:
        _chevron(draw, s)
        if kind == "working":
            draw.arc([s * .10, s * .10, s * .90, s * .90], start=200, end=340, fill=_WHITE, width=max(1, s // 14))


def _badge(draw: ImageDraw.ImageDraw, s: int, text: str) -> None:
    """The red count badge, top right, large enough to read after downscaling to tray size."""
    box = [s * .50, 0, s - 1, s * .50 - 1]
    draw.ellipse(box, fill=_BADGE, outline=_WHITE, width=max(1, s // 32))
    font = _font(int(s * (.36 if len(text) == 1 else .28)))
    centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
    try:
        draw.text(centre, text, fill=_WHITE, font=font, anchor="mm")
    except ValueError:  # bitmap fonts (Pillow without FreeType) take no anchor
        draw.text((box[0] + s * .12, box[1] + s * .12), text, fill=_WHITE, font=font)


@functools.lru_cache(maxsize=64)
def icon_image(kind: str, waiting: int = 0, paused: bool = False, size: int = DEFAULT_ICON_SIZE) -> Image.Image:
    """The tray image for a state, drawn 4x and downscaled so edges stay smooth at small sizes.

    Cached and shared: callers must not modify the returned image.
    """
    s = size * 4
    img = Image.new("RGBA", (s, s), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    colour = _COLOURS["paused"] if paused and kind != "error" else _COLOURS.get(kind, _COLOURS["idle"])
    draw.ellipse([s * .04, s * .04, s * .96, s * .96], fill=colour + (255,))
    _glyph(draw, s, kind, paused)
    if badge_text(waiting):
        _badge(draw, s, badge_text(waiting))
    return img.resize((size, size), Image.LANCZOS)


# --------------------------------------------------------------------------------------------
# Texts


def waiting_message(n: int, screen_label: str = "") -> str:
    """'3 items from your Status screenshot need a look' (singular for one)."""
    what = f"your {screen_label} screenshot" if screen_label else "your screenshot"
    return f"{n} item from {what} needs a look" if n == 1 else f"{n} items from {what} need a look"


def status_line(state: TrayState) -> str:
    """One line of state, used for the tooltip and the menu's first (disabled) entry.

    AppIndicator shows no tooltip, so the menu line is the only place its users see the state.
    """
    if state.kind == "error":
        text = f"Error: {state.error or 'unknown'}"
    elif state.waiting:
        text = f"{state.waiting} item{'s' if state.waiting != 1 else ''} waiting"
    elif state.kind == "working":
        text = "Working…"
    else:
        text = "Watching"
    return f"{text} (paused)" if state.paused else text


def tooltip(state: TrayState) -> str:
    """The hover title, clipped to what Windows shows."""
    return _clip(f"{APP_TITLE}: {status_line(state)}", TOOLTIP_MAX)


def _clip(text: str, limit: int) -> str:
    """Shorten long labels in the middle, keeping both ends of a file name readable."""
    if len(text) <= limit:
        return text
    half = (limit - 1) // 2
    return text[:half] + "…" + text[len(text) - (limit - 1 - half):]


def _menu_text(text: str) -> str:
    """Win32 menus treat '&' as a mnemonic marker: double it there."""
    return text.replace("&", "&&") if sys.platform == "win32" else text


def item_label(item: WaitingItem) -> str:
    """'Fore Weapon 2 — screenshot_0042.png'."""
    return _menu_text(_clip(f"{item.slot} — {item.file}", LABEL_MAX))


def candidate_label(name: str, score: float) -> str:
    """'Phaser Beam Array Mk XII (87%)'."""
    pct = round(min(max(score, 0.0), 1.0) * 100)
    return _menu_text(_clip(f"{name} ({pct}%)", LABEL_MAX))


# --------------------------------------------------------------------------------------------
# Opening the output folder


def open_folder(path: str | os.PathLike[str]) -> bool:
    """Open a folder in the file manager; False (logged) instead of raising when that fails.

    Windows: os.startfile; macOS: `open`; elsewhere `xdg-open` (absent on minimal installs).
    """
    folder = Path(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if sys.platform == "win32":
            os.startfile(str(folder))  # type: ignore[attr-defined]  # noqa: S606
            return True
        opener = "open" if sys.platform == "darwin" else "xdg-open"
        exe = shutil.which(opener)
        if exe is None:
            log.warning("cannot open %s: %s is not installed", folder, opener)
            return False
        subprocess.Popen([exe, str(folder)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
        return True
    except Exception:  # noqa: BLE001 - a missing file manager must not stop the daemon
        log.exception("cannot open %s", folder)
        return False


# --------------------------------------------------------------------------------------------
# The tray


@dataclass(frozen=True)
class _Snapshot:
    """What the menu renders; replaced whole under a lock so the loop thread never sees half."""

    state: TrayState = TrayState()
    items: tuple[WaitingItem, ...] = ()


class Tray:
    """The tray icon over a :class:`TrayModel`.

    ``backend``: a pystray backend name ('appindicator', 'gtk', 'xorg', 'win32', 'darwin',
    'dummy'), None for pystray's choice (``PYSTRAY_BACKEND`` is honoured), or an Icon class.
    ``max_items`` caps the waiting-items submenu, ``max_candidates`` each item's candidates.
    ``log_location`` names where notifications go when the desktop cannot show them.
    """

    def __init__(self, model: TrayModel, *, notify: bool = True, backend: str | type | None = None,
                 max_items: int = 10, max_candidates: int = 5, log_location: str = "the warpd log") -> None:
        if isinstance(backend, type):
            icon_cls = backend
            _, menu_cls, item_cls = _load_backend("dummy")
        else:
            icon_cls, menu_cls, item_cls = _load_backend(backend)
        self._model = model
        self._notify_enabled = notify
        self._max_items = max(1, max_items)
        self._max_candidates = max(1, max_candidates)
        self._log_location = log_location
        self._Menu, self._MenuItem = menu_cls, item_cls
        self.backend = backend_name(icon_cls)
        self._size = ICON_SIZES.get(self.backend, DEFAULT_ICON_SIZE)
        self._lock = threading.Lock()
        self._snapshot = _Snapshot()
        self._image_key: tuple[Any, ...] | None = None
        self._running = False
        self._stop_requested = False
        self._ready = threading.Event()
        self._push_lock = threading.Lock()
        self._dirty = False
        self._loop_thread: threading.Thread | None = None
        self._thread: threading.Thread | None = None
        self._no_notify_logged = False
        self.icon = icon_cls(APP_TITLE, icon=icon_image("idle", size=self._size), title=APP_TITLE,
                             menu=menu_cls(self._menu_items))
        self.refresh()

    @classmethod
    def from_config(cls, model: TrayModel, cfg: Any, **kwargs: Any) -> Tray:
        """A tray from the ``[tray]`` config section (keys not yet in the defaults fall back)."""
        tray_cfg = cfg.tray
        backend = getattr(tray_cfg, "backend", "") or None
        if "log_location" not in kwargs:
            with contextlib.suppress(Exception):
                from warpd.paths import data_paths

                kwargs["log_location"] = f"the warpd log ({data_paths(cfg).logs})"
        return cls(model, notify=bool(getattr(tray_cfg, "notify", True)), backend=backend,
                   max_items=int(getattr(tray_cfg, "max_menu_items", 10)), **kwargs)

    # -- state ------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """True between the loop becoming ready and :meth:`stop`."""
        return self._running

    def refresh(self) -> None:
        """Re-read the model and update icon, tooltip and menu. Never raises (logged instead)."""
        try:
            state = self._model.tray_state()
            items = tuple(self._model.waiting_items(self._max_items)) if state.waiting else ()
        except Exception:  # noqa: BLE001
            log.exception("tray: reading the daemon's state failed")
            return
        with self._lock:
            self._snapshot = _Snapshot(state, items[: self._max_items])
        self._push()

    def _push(self) -> None:
        """Hand the latest snapshot to the backend, one thread at a time, never blocking.

        Two threads pushing at once interleave pystray's cross-thread calls (xorg shares one
        reply queue between them). Blocking instead would deadlock a menu callback on the loop
        thread against a daemon thread waiting for that loop. So: mark dirty, push only if
        nobody else is pushing, and whoever holds the lock re-pushes if it was marked meanwhile.
        """
        self._dirty = True
        while not self._stop_requested:
            if not self._push_lock.acquire(blocking=False):
                return
            try:
                self._dirty = False
                self._apply(self._snapshot.state)
                self._flush_x()
            except Exception:  # noqa: BLE001
                log.exception("tray: updating the icon failed")
            finally:
                self._push_lock.release()
            if not self._dirty:
                return

    def _apply(self, state: TrayState) -> None:
        """Push image, title and menu to the backend (which only forwards them while visible)."""
        key = (state.kind, badge_text(state.waiting), state.paused)
        if key != self._image_key:
            self.icon.icon = icon_image(state.kind, state.waiting, state.paused, self._size)
            self._image_key = key
        self.icon.title = tooltip(state)
        if self._running:
            self.icon.update_menu()

    # -- menu -------------------------------------------------------------------------------

    def _menu_items(self) -> list[Any]:
        """The top-level menu, rebuilt from the snapshot whenever pystray asks for it."""
        with self._lock:
            snap = self._snapshot
        MI, sep = self._MenuItem, self._Menu.SEPARATOR
        return [
            MI(_menu_text(_clip(status_line(snap.state), LABEL_MAX)), None, enabled=False),
            self._waiting_entry(snap),
            sep,
            MI("Pause watching", self._guard("pause", self._toggle_pause),
               checked=lambda _item: self._snapshot.state.paused),
            MI("Open output folder", self._guard("open output folder", self._model.open_output_folder), default=True),
            MI("Sync now", self._guard("sync now", self._model.sync_now)),
            MI("Check for model update", self._guard("check update", self._model.check_update)),
            sep,
            MI("Quit warpd", self._guard("quit", self._quit)),
        ]

    def _waiting_entry(self, snap: _Snapshot) -> Any:
        """'Waiting items (N)' with one submenu per item, or a disabled line when none wait."""
        MI = self._MenuItem
        if not snap.items:
            return MI("No items waiting", None, enabled=False)
        entries = [MI(item_label(it), self._Menu(*self._item_entries(it))) for it in snap.items]
        more = snap.state.waiting - len(snap.items)
        if more > 0:
            entries.append(MI(f"… and {more} more: {CONFIRM_HINT}", None, enabled=False))
        return MI(f"Waiting items ({snap.state.waiting})", self._Menu(*entries))

    def _item_entries(self, item: WaitingItem) -> list[Any]:
        """An item's top candidates, then 'None of these' and 'Skip'."""
        MI, iid = self._MenuItem, item.id
        entries = [MI(candidate_label(name, score), self._guard("choose", functools.partial(self._model.choose, iid, name)))
                   for name, score in list(item.candidates)[: self._max_candidates]]
        entries += [self._Menu.SEPARATOR,
                    MI("None of these", self._guard("none of these", functools.partial(self._model.none_of_these, iid))),
                    MI("Skip", self._guard("skip", functools.partial(self._model.skip, iid)))]
        return entries

    def _guard(self, what: str, action: Callable[[], object]) -> Callable[[Any, Any], None]:
        """Wrap a model call for pystray: log instead of raising into the backend, then refresh."""
        def callback(icon: Any, item: Any) -> None:
            try:
                action()
            except Exception:  # noqa: BLE001 - an exception here would kill the backend's loop
                log.exception("tray: %s failed", what)
            if not self._stop_requested:
                self.refresh()
        return callback

    def _toggle_pause(self) -> None:
        self._model.set_paused(not self._snapshot.state.paused)

    def _quit(self) -> None:
        """Tell the daemon, then stop the loop even if the daemon's quit raised."""
        try:
            self._model.quit()
        finally:
            self.stop()

    # -- notifications ----------------------------------------------------------------------

    def notify_waiting(self, n: int, screen_label: str = "") -> str | None:
        """Announce n newly arrived items; returns the text shown on the desktop, else None.

        Nothing for n <= 0 (only new arrivals are announced). The message is always logged; the
        desktop sees it only if ``notify`` is on, the loop runs and the backend supports it.
        """
        if n <= 0:
            return None
        message = waiting_message(n, screen_label)
        log.info("%s", message)
        if not self._notify_enabled or not self._running:
            return None
        if not getattr(self.icon, "HAS_NOTIFICATION", False):
            self._log_no_notifications(f"pystray's {self.backend} backend cannot show notifications")
            return None
        try:
            self.icon.notify(message, APP_TITLE)
        except Exception as exc:  # noqa: BLE001
            self._log_no_notifications(f"showing a notification failed ({type(exc).__name__}: {exc})")
            return None
        return message

    def _log_no_notifications(self, why: str) -> None:
        """Say once where notifications go instead, so the log is not spammed per screenshot."""
        if not self._no_notify_logged:
            self._no_notify_logged = True
            log.warning("%s; items that need a look are announced in %s and listed by `warpd confirm`",
                        why, self._log_location)

    # -- loop -------------------------------------------------------------------------------

    def run(self) -> None:
        """Run the tray loop in this thread until :meth:`stop` (macOS: must be the main thread)."""
        if sys.platform == "darwin" and threading.current_thread() is not threading.main_thread():
            raise RuntimeError("on macOS the tray must run on the main thread: call Tray.run() there")
        if self._stop_requested:
            return
        self._loop_thread = threading.current_thread()
        try:
            self.icon.run(setup=self._setup)
        finally:
            # However the loop ended (stop, or the X server going away), later pushes must not
            # wait for it: xorg's cross-thread calls would block forever.
            with self._lock:
                self._stop_requested, self._running = True, False
            self._ready.set()

    def run_detached(self) -> threading.Thread:
        """Run the loop in a daemon thread (Linux/Windows); returns it.

        Not pystray's own ``run_detached``: for gtk/appindicator that expects a GLib loop run by
        the caller, which warpd does not have. pystray's xorg and win32 backends run the loop in a
        thread themselves, and GTK does not care which thread it runs on so long as it is one.
        """
        if sys.platform == "darwin":
            raise RuntimeError("on macOS pystray must own the main thread: use Tray.run()")
        if self._thread is None:
            self._thread = threading.Thread(target=self._run_logged, name="warpd-tray", daemon=True)
            self._thread.start()
        return self._thread

    def _run_logged(self) -> None:
        """Thread body: a backend failing at start (no D-Bus, no X) leaves the daemon running."""
        try:
            self.run()
        except Exception:  # noqa: BLE001
            log.exception("tray: the %s backend stopped with an error; continuing without a tray", self.backend)

    def wait_ready(self, timeout: float) -> bool:
        """Wait until the icon is shown (or the loop ended); True if it is running."""
        self._ready.wait(timeout)
        return self._running

    def _setup(self, icon: Any) -> None:
        """pystray's setup callback (its own thread, after the loop is ready): show the icon."""
        # The xorg backend marks itself ready just before it records its loop thread, which its
        # cross-thread calls read; showing the icon in that gap raises AttributeError.
        deadline = time.monotonic() + 2.0
        while self.backend == "xorg" and not hasattr(icon, "_thread") and time.monotonic() < deadline:
            time.sleep(0.005)
        with self._push_lock:  # not the loop thread: blocking here cannot deadlock it
            with self._lock:
                self._running = not self._stop_requested
            if self._running:
                try:
                    icon.visible = True
                    # The title setter forwards only while visible, and xorg names its window at
                    # construction: a title set before showing would never reach the desktop.
                    icon._update_title()
                    self._flush_x()
                except Exception:  # noqa: BLE001
                    log.exception("tray: showing the icon failed")
        if self._running:
            self.refresh()  # what changed while the icon was being shown
        else:
            try:
                icon.stop()
                self._flush_x()
            except Exception:  # noqa: BLE001
                log.exception("tray: stopping the icon failed")
        self._ready.set()

    def _flush_x(self) -> None:
        """Send the X requests pystray's xorg loop queued (no-op on other backends).

        The xorg backend runs window changes on its loop thread and does not flush after most
        of them; python-xlib also skips a flush while another thread is sending. The request then
        sits unsent until the next X event: a new tooltip never shows, and a stop's window
        destroy never reaches the server, so the loop never ends. Flushing from the calling
        thread after pystray's cross-thread call has returned sends them.
        """
        display = getattr(self.icon, "_display", None) if self.backend == "xorg" else None
        if display is not None:
            display.flush()

    def stop(self, timeout: float = 5.0) -> bool:
        """Hide the icon and end the loop; idempotent, safe from any thread (the Quit item too).

        Returns whether the loop thread (if :meth:`run_detached` started one) has ended.
        """
        with self._lock:
            self._stop_requested = True
        # Wait out a push in progress (its cross-thread calls need the loop alive), except on
        # the loop thread itself, which that push may be waiting for.
        on_loop = threading.current_thread() is self._loop_thread
        locked = not on_loop and self._push_lock.acquire(timeout=timeout)
        try:
            with self._lock:
                was_running, self._running = self._running, False
            if was_running:
                for step in (lambda: setattr(self.icon, "visible", False), self.icon.stop, self._flush_x):
                    try:
                        step()
                    except Exception:  # noqa: BLE001
                        log.exception("tray: stopping the icon failed")
        finally:
            if locked:
                self._push_lock.release()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            return not thread.is_alive()
        return True
