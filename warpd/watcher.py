"""Watch the Star Trek Online screenshot folder(s) and hand over each screenshot once, complete.

The game (or a tool the user runs) writes a screenshot in chunks, sometimes to a temporary name
that is renamed at the end; a user may paste hundreds at once; the folder may live on a network
share, disappear with an uninstall or a drive that was unplugged, or fill up while warpd was not
running. Whatever happens, each file is handed to ``on_ready`` exactly once, and only after it is
completely written:

* **When is a file written?** Linux (inotify) reports close-after-write, and a rename onto the
  final name means the writer finished the temporary file: both make a file ready at once.
  Elsewhere (Windows, macOS, polling) the file's size and mtime must stay unchanged for
  ``watch.stable_s`` (``watch.polling_stable_s`` on polled folders). Either way the file must then
  pass :func:`warpd.load.looks_complete` (PNG IEND / JPEG EOI trailer); one that does not is
  checked again with exponential backoff, ``watch.decode_retries`` times, and then reported once
  through ``on_failed``.
* **Exactly once:** emission is remembered per ``(path, size, mtime_ns)``, so duplicate events and
  rescans do not repeat it, while a re-saved file (new size or mtime) is handed over again. The
  ``known`` hook lets the daemon's persistent store suppress files it processed in an earlier run.
* **Nothing missed:** a reconciliation scan lists every folder at start, on ``scan_now()`` and
  every ``watch.reconcile_interval_s`` (files written while warpd was down, events the OS dropped,
  a polling thread that died). A folder that disappears is un-watched, checked for every
  ``rearm_interval_s`` and watched again (and rescanned) when it returns.
* **Idle is idle:** one worker thread sleeps on a condition variable until the earliest deadline:
  a pending file, the next rescan or the next check for a missing folder. With nothing pending it
  wakes once per rescan interval; inotify's own threads block in the kernel.

Callbacks run on the worker thread; any exception they raise is logged and swallowed, so one bad
file never stops the watcher. The folder-discovery part (:func:`discover_screenshot_folders`) is a
pure function of platform, environment, home folder and an existence check, so every platform's
rules are testable on any machine.
"""

from __future__ import annotations

import errno
import fnmatch
import heapq
import itertools
import logging
import os
import re
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path, PurePath, PurePosixPath, PureWindowsPath
from typing import Any, Callable, Iterable, Mapping, Sequence

from watchdog.events import (
    DirDeletedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

from warpd.load import looks_complete

log = logging.getLogger(__name__)

# Defaults for keys not (yet) in config/warpd.toml; read with getattr(cfg_watch, key, default).
DEFAULT_REARM_INTERVAL_S = 2.0
DEFAULT_POLLING_FOLDERS: tuple[str, ...] = ()
DEFAULT_MAX_BACKOFF_S = 30.0
DEFAULT_CLOSE_WAIT_S = 5.0

# Files checked per worker pass before it looks at stop requests and folder health again.
_BATCH = 64

Signature = tuple[int, int]  # (st_size, st_mtime_ns): what "the same file content" means here
OnReady = Callable[[Path], Any]
OnFailed = Callable[[Path, str], Any]
Known = Callable[[Path, os.stat_result], bool]

# File systems whose changes inotify does not see (changes made by other machines, or by Windows
# under WSL), so their folders must be polled.
NETWORK_FS_TYPES = frozenset({
    "nfs", "nfs4", "cifs", "smb3", "smbfs", "smb2", "fuse.sshfs", "sshfs", "9p", "v9fs", "drvfs",
    "afs", "ceph", "glusterfs", "fuse.glusterfs", "lustre", "fuse.rclone", "davfs", "fuse.davfs2",
    "fuse.gvfsd-fuse", "fuse.s3fs", "ncpfs", "coda",
})


# ============================================================================ folder discovery
@dataclass(frozen=True)
class FolderCandidate:
    """One place STO may save screenshots, and what was found there.

    ``status`` is ``"exists"`` (the screenshots folder is there), ``"game-installed"`` (the game's
    ``Live`` folder is there but the game has not saved a screenshot yet, so the folder will appear
    on the first one) or ``"absent"``. ``reason`` is the sentence the log shows.
    """

    path: PurePath
    install: str
    status: str
    chosen: bool
    reason: str


# Where STO keeps its "Live" folder below an install root, per launcher. Steam and Arc/PWE layouts
# are the ones public STO tools (combat-log parsers, demo-record helpers) look in.
_STEAM_GAME = ("steamapps", "common", "Star Trek Online", "Star Trek Online", "Live")
_WIN_LAYOUTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Steam", ("Steam",) + _STEAM_GAME),
    ("Arc Games", ("Arc Games", "Star Trek Online", "Star Trek Online_en", "Star Trek Online", "Live")),
    ("Arc Games", ("Arc Games", "Star Trek Online_en", "Star Trek Online", "Live")),
    ("Arc Games", ("Arc Games", "Star Trek Online", "Star Trek Online", "Live")),
    ("Perfect World", ("Perfect World Entertainment", "Star Trek Online_en", "Star Trek Online", "Live")),
    ("Arc (no launcher folder)", ("Star Trek Online_en", "Star Trek Online", "Live")),
    ("Cryptic launcher", ("Cryptic Studios", "Star Trek Online", "Live")),
    ("Cryptic launcher", ("Cryptic", "Star Trek Online", "Live")),
)
_SCREENSHOTS = "screenshots"
_STEAM_APP_ID = "9900"
_LIBRARY_PATH = re.compile(r'"path"\s+"([^"]+)"')


def _flavour(platform: str) -> type[PurePath]:
    return PureWindowsPath if platform.startswith("win") else PurePosixPath


def _steam_libraries(root: PurePath, read_text: Callable[[PurePath], str | None] | None) -> list[PurePath]:
    """Steam library folders named in ``<root>/steamapps/libraryfolders.vdf`` (games on other drives)."""
    if read_text is None:
        return []
    libraries: list[PurePath] = []
    for vdf in (root / "steamapps" / "libraryfolders.vdf", root / "config" / "libraryfolders.vdf"):
        try:
            text = read_text(vdf)
        except Exception:  # noqa: BLE001 - a file we cannot read just adds no library
            text = None
        for raw in _LIBRARY_PATH.findall(text or ""):
            libraries.append(type(root)(raw.replace("\\\\", "\\")))
    return libraries


def _win_roots(env: Mapping[str, str], flavour: type[PurePath]) -> list[PurePath]:
    """Program Files folders from the environment (with the usual defaults when unset)."""
    upper = {k.upper(): v for k, v in env.items()}
    roots = [upper.get("PROGRAMFILES(X86)", r"C:\Program Files (x86)"), upper.get("PROGRAMFILES", r"C:\Program Files"),
             upper.get("PROGRAMW6432", r"C:\Program Files")]
    return _unique(flavour(r) for r in roots if r)


def _unique(items: Iterable[Any]) -> list[Any]:
    seen: set[Any] = set()
    return [x for x in items if not (x in seen or seen.add(x))]


def _drive_c_layouts(drive_c: PurePath, where: str) -> list[tuple[str, PurePath]]:
    """The Windows install layouts inside a Wine/Proton prefix's ``drive_c``."""
    out: list[tuple[str, PurePath]] = []
    for pf in ("Program Files (x86)", "Program Files"):
        for install, parts in _WIN_LAYOUTS:
            out.append((f"{install} in {where}", drive_c.joinpath(pf, *parts)))
    return out


def _prefix_dirs(parent: PurePath, listdir: Callable[[PurePath], Sequence[str]] | None) -> list[PurePath]:
    """Sub-folders of ``parent`` (Wine prefixes of Lutris/Bottles/CrossOver); none without ``listdir``."""
    if listdir is None:
        return []
    try:
        return [parent / name for name in sorted(listdir(parent))]
    except Exception:  # noqa: BLE001 - a folder we cannot list holds no prefixes we can use
        return []


def _windows_lives(env: Mapping[str, str], home: PurePath,
                   read_text: Callable[[PurePath], str | None] | None) -> list[tuple[str, PurePath]]:
    flavour = type(home)
    lives: list[tuple[str, PurePath]] = []
    roots = _win_roots(env, flavour)
    steam_roots = [root / "Steam" for root in roots]
    for root in roots:
        for install, parts in _WIN_LAYOUTS:
            lives.append((f"{install} install under {root}", root.joinpath(*parts)))
    for steam in steam_roots:
        for lib in _steam_libraries(steam, read_text):
            lives.append((f"Steam library {lib} (from libraryfolders.vdf)", lib.joinpath(*_STEAM_GAME)))
    for drive in "CDEFG":
        for lib in (f"{drive}:\\SteamLibrary", f"{drive}:\\Steam", f"{drive}:\\Games\\Steam"):
            lives.append((f"Steam library {lib}", flavour(lib).joinpath(*_STEAM_GAME)))
    return lives


def _linux_lives(env: Mapping[str, str], home: PurePath, read_text: Callable[[PurePath], str | None] | None,
                 listdir: Callable[[PurePath], Sequence[str]] | None) -> list[tuple[str, PurePath]]:
    lives: list[tuple[str, PurePath]] = []
    data_home = PurePosixPath(env.get("XDG_DATA_HOME") or home / ".local" / "share")
    steam_roots = _unique([home / ".steam" / "steam", home / ".steam" / "root", data_home / "Steam",
                           home / ".local" / "share" / "Steam",
                           home / ".var" / "app" / "com.valvesoftware.Steam" / ".local" / "share" / "Steam",
                           home / "snap" / "steam" / "common" / ".local" / "share" / "Steam"])
    libraries: list[tuple[str, PurePath]] = [(f"Steam (Proton) in {r}", r) for r in steam_roots]
    for root in steam_roots:
        libraries += [(f"Steam (Proton) library {lib}", lib) for lib in _steam_libraries(root, read_text)]
    libraries = _unique(libraries)
    for where, lib in libraries:
        lives.append((where, lib.joinpath(*_STEAM_GAME)))
    for where, lib in libraries:  # Arc installed into Steam's own Proton prefix for STO
        lives += _drive_c_layouts(lib / "steamapps" / "compatdata" / _STEAM_APP_ID / "pfx" / "drive_c",
                                  f"the Proton prefix of Steam app {_STEAM_APP_ID} ({lib})")
        for prefix in _prefix_dirs(lib / "steamapps" / "compatdata", listdir):
            if prefix.name != _STEAM_APP_ID:  # Arc added to Steam as a non-Steam game
                lives += _drive_c_layouts(prefix / "pfx" / "drive_c", f"the Proton prefix {prefix}")
    prefixes: list[tuple[str, PurePath]] = []
    if env.get("WINEPREFIX"):
        prefixes.append(("WINEPREFIX", PurePosixPath(env["WINEPREFIX"])))
    prefixes += [("Lutris", home / "Games" / "star-trek-online"), ("Lutris", home / "Games" / "arc"),
                 ("Wine", home / ".wine")]
    prefixes += [("Lutris", p) for p in _prefix_dirs(home / "Games", listdir)]
    prefixes += [("Bottles", p) for p in _prefix_dirs(data_home / "bottles" / "bottles", listdir)]
    prefixes += [("Bottles", p) for p in _prefix_dirs(
        home / ".var" / "app" / "com.usebottles.bottles" / "data" / "bottles" / "bottles", listdir)]
    for kind, prefix in _unique(prefixes):
        lives += _drive_c_layouts(prefix / "drive_c", f"the {kind} prefix {prefix}")
    return lives


def _darwin_lives(env: Mapping[str, str], home: PurePath, read_text: Callable[[PurePath], str | None] | None,
                  listdir: Callable[[PurePath], Sequence[str]] | None) -> list[tuple[str, PurePath]]:
    support = home / "Library" / "Application Support"
    steam = support / "Steam"
    lives: list[tuple[str, PurePath]] = [(f"Steam in {steam}", steam.joinpath(*_STEAM_GAME))]
    lives += [(f"Steam library {lib}", lib.joinpath(*_STEAM_GAME)) for lib in _steam_libraries(steam, read_text)]
    bottles = [("CrossOver", p) for p in _prefix_dirs(support / "CrossOver" / "Bottles", listdir)]
    bottles += [("Whisky", p) for p in _prefix_dirs(
        home / "Library" / "Containers" / "com.isaacmarovitz.Whisky" / "Bottles", listdir)]
    if env.get("WINEPREFIX"):
        bottles.insert(0, ("WINEPREFIX", PurePosixPath(env["WINEPREFIX"])))
    for kind, bottle in bottles:
        lives += _drive_c_layouts(bottle / "drive_c", f"the {kind} bottle {bottle}")
    return lives


def discover_screenshot_folders(
    platform: str,
    env: Mapping[str, str],
    home: str | PurePath,
    exists: Callable[[PurePath], bool],
    *,
    listdir: Callable[[PurePath], Sequence[str]] | None = None,
    read_text: Callable[[PurePath], str | None] | None = None,
) -> list[FolderCandidate]:
    """Every place the usual STO installs save screenshots, in order of preference, each with a verdict.

    Pure: the file system is seen only through ``exists`` (and, optionally, ``listdir`` to find
    Wine/Proton prefixes and ``read_text`` to read Steam's ``libraryfolders.vdf``), so the rules for
    ``win32``, ``linux`` and ``darwin`` can all be tested on one machine with fake homes.

    Chosen: every candidate whose ``screenshots`` folder exists; when none does, every candidate
    whose game folder (``Live``) exists, since STO creates ``screenshots`` with the first screenshot.
    """
    flavour = _flavour(platform)
    home = flavour(home)
    if platform.startswith("win"):
        lives = _windows_lives(env, home, read_text)
    elif platform == "darwin":
        lives = _darwin_lives(env, home, read_text, listdir)
    else:
        lives = _linux_lives(env, home, read_text, listdir)
    candidates: list[tuple[str, PurePath, str]] = []
    seen: set[PurePath] = set()
    for install, live in lives:
        shots = live / _SCREENSHOTS
        if shots in seen:
            continue
        seen.add(shots)
        status = "exists" if _safe(exists, shots) else "game-installed" if _safe(exists, live) else "absent"
        candidates.append((install, shots, status))
    any_exists = any(status == "exists" for _, _, status in candidates)
    out = []
    for install, shots, status in candidates:
        chosen = status == "exists" or (status == "game-installed" and not any_exists)
        out.append(FolderCandidate(shots, install, status, chosen, _verdict(install, status, chosen)))
    return out


def _safe(exists: Callable[[PurePath], bool], path: PurePath) -> bool:
    try:
        return bool(exists(path))
    except Exception:  # noqa: BLE001 - an unreachable drive is a missing folder
        return False


def _verdict(install: str, status: str, chosen: bool) -> str:
    if status == "exists":
        return f"chosen: the screenshots folder of the {install} exists"
    if status == "game-installed":
        return (f"chosen: the game is installed ({install}) but has not saved a screenshot yet; watching "
                "for the folder to appear" if chosen else
                f"not chosen: the game is installed ({install}) but another install has screenshots")
    return f"not chosen: no {install}"


def _os_listdir(path: PurePath) -> list[str]:
    return [e.name for e in os.scandir(path) if e.is_dir()]


def _os_read_text(path: PurePath) -> str | None:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def find_screenshot_folders(cfg_watch: Any, *, platform: str = sys.platform,
                            env: Mapping[str, str] | None = None, home: str | PurePath | None = None,
                            exists: Callable[[PurePath], bool] | None = None) -> list[FolderCandidate]:
    """The folders to watch, each with why: ``watch.folders`` when set, else the discovered STO folders.

    Logs which folder was chosen and why, or what to do when none was found. On the running
    platform the returned paths are concrete :class:`~pathlib.Path` objects.
    """
    exists = exists or (lambda p: os.path.isdir(p))
    live_fs = platform == sys.platform
    configured = [os.path.expandvars(os.path.expanduser(f)) for f in getattr(cfg_watch, "folders", []) or []]
    if configured:
        out = []
        for raw in configured:
            path = Path(raw) if live_fs else _flavour(platform)(raw)
            found = _safe(exists, path)
            reason = "chosen: set in watch.folders" + ("" if found else " (it does not exist yet; watching for it)")
            out.append(FolderCandidate(path, "watch.folders", "exists" if found else "absent", True, reason))
            log.info("Watching %s for screenshots (%s).", path, reason)
        return out
    env = os.environ if env is None else env
    home = Path.home() if home is None else home
    candidates = discover_screenshot_folders(platform, env, home, exists,
                                             listdir=_os_listdir if live_fs else None,
                                             read_text=_os_read_text if live_fs else None)
    chosen = [c for c in candidates if c.chosen]
    if live_fs:
        chosen = [FolderCandidate(Path(c.path), c.install, c.status, c.chosen, c.reason) for c in chosen]
    for cand in chosen:
        log.info("Watching %s for screenshots (%s). Set watch.folders to use another folder.", cand.path, cand.reason)
    if not chosen:
        log.warning("No Star Trek Online screenshot folder was found in the usual install locations (%d places "
                    "checked). Set watch.folders to the game's Live\\screenshots folder, e.g. "
                    "warpd --set 'watch.folders=[\"/path/to/Star Trek Online/Live/screenshots\"]'.", len(candidates))
    return chosen


# ============================================================================ network folders
def _mount_fstype(path: str, mounts_text: str) -> str | None:
    """The file-system type of the longest mount point containing ``path`` (``/proc/mounts`` format)."""
    best, fstype = "", None
    for line in mounts_text.splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        point = parts[1].replace("\\040", " ").replace("\\011", "\t").replace("\\134", "\\")
        prefix = point.rstrip("/") + "/"
        if (path == point or path.startswith(prefix) or point == "/") and len(point) >= len(best):
            best, fstype = point, parts[2]
    return fstype


def is_network_folder(path: str | os.PathLike, *, platform: str = sys.platform,
                      mounts_text: str | None = None) -> bool:
    """Whether ``path`` is on a file system whose changes the native watcher cannot see.

    Linux: the mount's type in ``/proc/mounts`` (NFS, CIFS/SMB, SSHFS, WSL's 9p/drvfs ...).
    Windows: UNC paths (``\\\\server\\share``) and mapped network drives. Elsewhere: never (set
    the folder in ``watch.polling_folders`` instead).
    """
    text = os.fspath(path)
    if platform.startswith("win"):
        if text.startswith(("\\\\", "//")):
            return True
        return _windows_drive_is_remote(text)
    if platform.startswith("linux"):
        if mounts_text is None:  # the real machine: resolve symlinks to find the real mount
            text = os.path.realpath(text)
            try:
                with open("/proc/mounts", encoding="utf-8", errors="replace") as fh:
                    mounts_text = fh.read()
            except OSError:
                return False
        fstype = _mount_fstype(text, mounts_text)
        return fstype in NETWORK_FS_TYPES if fstype else False
    return False


def _windows_drive_is_remote(path: str) -> bool:
    """GetDriveTypeW(...) == DRIVE_REMOTE for a mapped drive letter (only callable on Windows)."""
    if sys.platform != "win32" or len(path) < 2 or path[1] != ":":
        return False
    try:
        import ctypes

        return ctypes.windll.kernel32.GetDriveTypeW(path[:2] + "\\") == 4  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - unknown means "not remote": the native watcher is tried
        return False


# ============================================================================ the watcher
@dataclass(frozen=True)
class FolderSpec:
    """A folder to watch; ``polling`` True/False forces the observer kind, None detects network folders."""

    path: Path
    polling: bool | None = None


@dataclass
class _Pending:
    """A file with events not yet settled: when to look next and what was seen last time."""

    folder: "_Folder"
    due: float
    sig: Signature | None = None  # signature at the previous check (stability is two equal looks)
    closed: bool = False  # close-after-write or rename seen since the last check: no window needed
    attempts: int = 0  # decode checks failed on the current signature
    first_fail: float | None = None


@dataclass
class _Folder:
    """One watched folder and its observer; ``gone`` is set by the observer thread, handled by the worker."""

    path: Path
    polling: bool
    observer: BaseObserver | None = None
    ident: tuple[int, int] | None = None  # (st_dev, st_ino) when armed: detects a replaced folder
    missing: bool = False
    gone: bool = False
    next_check: float = 0.0
    warned_missing: bool = False

    keys: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        self.refresh_keys()

    def refresh_keys(self) -> None:
        """The folder as given and with symlinks resolved: FSEvents reports real paths (/private/var...)."""
        self.keys = frozenset({_norm(self.path), _norm(os.path.realpath(self.path))})


def _norm(path: str | os.PathLike) -> str:
    return os.path.normcase(os.path.normpath(os.fspath(path)))


def _signature(path: Path) -> Signature | None:
    """(size, mtime_ns) of ``path``, or None when it cannot be stat'ed (gone, or not readable yet)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


class _Handler(FileSystemEventHandler):
    """Forwards watchdog events to the watcher; never lets an exception reach the observer thread."""

    def __init__(self, watcher: "Watcher", folder: _Folder):
        self._watcher, self._folder = watcher, folder

    def dispatch(self, event: FileSystemEvent) -> None:
        try:
            self._watcher._on_event(self._folder, event)
        except Exception:  # noqa: BLE001 - an observer thread that dies stops all watching
            log.exception("Ignoring a file event that could not be handled (%r).", event)


class Watcher:
    """Emits each complete screenshot in the watched folders once; see the module docstring for why.

    ``on_ready(path)`` is called on the watcher's worker thread; returning ``False`` means "not
    accepted now" (e.g. the daemon's queue is full): the file is left for the next rescan, which
    the daemon can bring forward with :meth:`scan_now`. ``on_failed(path, reason)`` is called once
    for a file that never became a complete image. ``known(path, stat)`` returning True suppresses
    a file the persistent store already processed. ``clock`` is the monotonic time source.
    """

    def __init__(self, folders: Iterable[str | os.PathLike | FolderSpec], on_ready: OnReady, *, cfg_watch: Any,
                 on_failed: OnFailed | None = None, known: Known | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self._cfg = cfg_watch
        self._on_ready, self._on_failed, self._known, self._clock = on_ready, on_failed, known, clock
        self._patterns = [p.lower() for p in cfg_watch.patterns]
        polling_folders = {os.path.normcase(os.path.normpath(os.path.expanduser(p)))
                           for p in getattr(cfg_watch, "polling_folders", DEFAULT_POLLING_FOLDERS)}
        self._folders: list[_Folder] = []
        for item in folders:
            spec = item if isinstance(item, FolderSpec) else FolderSpec(Path(os.fspath(item)).expanduser())
            path = Path(os.path.abspath(spec.path))
            polling = spec.polling
            if polling is None:
                polling = (os.path.normcase(str(path)) in polling_folders) or is_network_folder(path)
            self._folders.append(_Folder(path=path, polling=polling))
        self._by_key = {key: f for f in self._folders for key in f.keys}
        self._cond = threading.Condition(threading.RLock())
        self._pending: dict[Path, _Pending] = {}
        self._heap: list[tuple[float, int, Path]] = []
        self._seq = itertools.count()
        self._emitted: dict[Path, Signature] = {}
        self._failed: dict[Path, Signature] = {}
        self._paused = False
        self._stopping = False
        self._started = False
        self._scan_requested = False
        self._next_reconcile = 0.0
        self._thread: threading.Thread | None = None
        self._stats = {"emitted": 0, "failed": 0, "scans": 0, "rearms": 0, "wakeups": 0}

    # ------------------------------------------------------------------ public API
    @property
    def folders(self) -> list[Path]:
        return [f.path for f in self._folders]

    def folder_states(self) -> dict[Path, str]:
        """Each folder's state for ``warpd doctor`` and the log: "native", "polling" or "missing"."""
        return {f.path: "missing" if f.missing or f.observer is None else "polling" if f.polling else "native"
                for f in self._folders}

    def stats(self) -> dict[str, int]:
        """Counters for ``warpd doctor``, tests and the bench: emitted, failed, scans, rearms, wakeups, pending."""
        with self._cond:
            return {**self._stats, "pending": len(self._pending)}

    def start(self) -> None:
        """Arm every folder (so events are seen from now on), then start the worker, which scans at once."""
        with self._cond:
            if self._stopping:
                raise RuntimeError("a stopped Watcher cannot be started again; create a new one")
            if self._started:
                return
            self._started = True
        for folder in self._folders:
            self._arm(folder, initial=True)
        with self._cond:
            self._scan_requested = True
            self._next_reconcile = self._clock() + self._cfg.reconcile_interval_s
        self._thread = threading.Thread(target=self._run, name="warpd-watcher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = 10.0) -> None:
        """Stop the worker and every observer and wait for their threads; safe to call twice."""
        with self._cond:
            already = self._stopping
            self._stopping = True
            self._cond.notify_all()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        if already:
            return
        for folder in self._folders:
            self._disarm(folder)

    def pause(self) -> None:
        """Stop handing files over (events are still recorded, nothing is lost) until :meth:`resume`."""
        with self._cond:
            self._paused = True
        log.info("Screenshot watching paused; new screenshots are picked up on resume.")

    def resume(self) -> None:
        """Hand over what arrived while paused (a rescan makes sure nothing was missed)."""
        with self._cond:
            self._paused = False
            self._scan_requested = True
            self._cond.notify_all()
        log.info("Screenshot watching resumed.")

    def scan_now(self) -> None:
        """Ask for a reconciliation scan of every folder now (asynchronous: the worker runs it)."""
        with self._cond:
            self._scan_requested = True
            self._cond.notify_all()

    def __enter__(self) -> "Watcher":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ windows and thresholds
    def _window(self, folder: _Folder) -> float:
        """How long size+mtime must stay unchanged: longer on polled folders (coarse, late events)."""
        return float(self._cfg.polling_stable_s if folder.polling else self._cfg.stable_s)

    @staticmethod
    def _reports_close(folder: _Folder) -> bool:
        """Only inotify (Linux, native observer) reports close-after-write (watchdog's FileClosedEvent)."""
        return not folder.polling and sys.platform.startswith("linux")

    def _close_wait(self, folder: _Folder) -> float:
        """How long a file being written may go without a close before the size/mtime check takes over."""
        return max(self._window(folder), float(getattr(self._cfg, "close_wait_s", DEFAULT_CLOSE_WAIT_S)))

    def _backoff(self, folder: _Folder, attempts: int) -> float:
        """Delay before decode check ``attempts + 1``: doubling from the stability window, capped."""
        cap = float(getattr(self._cfg, "max_backoff_s", DEFAULT_MAX_BACKOFF_S))
        return min(self._window(folder) * (2 ** max(0, attempts - 1)), max(cap, self._window(folder)))

    def _matches(self, name: str) -> bool:
        """A screenshot name: one of watch.patterns, not a hidden or editor/temp name."""
        if name.startswith((".", "~")):
            return False
        low = name.lower()
        return any(fnmatch.fnmatchcase(low, pat) for pat in self._patterns)

    # ------------------------------------------------------------------ events (observer threads)
    def _on_event(self, folder: _Folder, event: FileSystemEvent) -> None:
        """Turn one watchdog event into pending-file bookkeeping; cheap, so bursts never back up."""
        src = os.fsdecode(event.src_path)
        if event.is_directory:
            if isinstance(event, (DirDeletedEvent, DirMovedEvent)) and _norm(src) in folder.keys:
                with self._cond:
                    folder.gone = True
                    self._cond.notify_all()
            return
        if isinstance(event, FileMovedEvent):
            self._forget(folder, src)
            if event.dest_path:
                dest = os.fsdecode(event.dest_path)
                target = self._by_key.get(_norm(os.path.dirname(os.path.abspath(dest))))
                if target is not None:
                    self._note(target, dest, closed=True)
        elif isinstance(event, FileClosedEvent):
            self._note(folder, src, closed=True)
        elif isinstance(event, FileModifiedEvent):
            self._note(folder, src, closed=False, writing=True)
        elif isinstance(event, FileCreatedEvent):
            self._note(folder, src, closed=False)
        elif isinstance(event, FileDeletedEvent):
            self._forget(folder, src)

    def _note(self, folder: _Folder, src: str, *, closed: bool, writing: bool = False) -> None:
        """Record activity on a file: check it now (closed/renamed) or once its window has passed.

        ``writing`` (a modification) on a folder whose observer reports close-after-write means a
        close event will follow, so the size/mtime check is only a late fallback (close_wait_s):
        a writer that pauses, or finishes and closes a little later, is not read early.
        """
        name = os.path.basename(src)
        if not self._matches(name) or _norm(os.path.dirname(src)) not in folder.keys:
            return
        path = folder.path / name  # one spelling per file, the same as the rescan's
        sig = None if closed else _signature(path)  # the first of the two equal looks, taken now
        with self._cond:
            now = self._clock()
            entry = self._pending.get(path)
            if entry is None:
                entry = self._pending[path] = _Pending(folder=folder, due=now)
            if sig is not None:
                entry.sig = sig
            # New activity starts the file afresh: a write after a close means it is open again.
            entry.closed, entry.attempts, entry.first_fail = closed, 0, None
            wait = self._close_wait(folder) if writing and self._reports_close(folder) else self._window(folder)
            entry.due = now if closed else now + wait
            heapq.heappush(self._heap, (entry.due, next(self._seq), path))
            self._cond.notify_all()

    def _forget(self, folder: _Folder, src: str) -> None:
        """A file deleted or renamed away: drop what is pending and what was remembered about it."""
        path = folder.path / os.path.basename(src)
        with self._cond:
            self._pending.pop(path, None)
            self._emitted.pop(path, None)
            self._failed.pop(path, None)

    # ------------------------------------------------------------------ worker
    def _run(self) -> None:
        """The worker loop: sleep until the next deadline, then do what is due. Never raises."""
        while True:
            try:
                work = self._next_work()
                if work is None:
                    return
                self._do(*work)
            except Exception:  # noqa: BLE001 - the watcher must outlive any one failure
                log.exception("Screenshot watcher hit an unexpected error; it keeps running.")
                with self._cond:
                    if self._stopping:
                        return
                    self._cond.wait(self._window_min())

    def _window_min(self) -> float:
        return float(min(self._cfg.stable_s, self._cfg.polling_stable_s)) or 0.1

    def _next_work(self) -> tuple[list[_Folder], bool, list[tuple[Path, _Pending]]] | None:
        """Wait (without spinning) until something is due; return (folders to fix, scan?, due files)."""
        batch = _BATCH
        with self._cond:
            while not self._stopping:
                now = self._clock()
                folders = [f for f in self._folders if f.gone or (f.missing and now >= f.next_check)]
                scan = not self._paused and (self._scan_requested or now >= self._next_reconcile)
                files = [] if self._paused else self._pop_due(now, batch)
                if folders or scan or files:
                    if scan:
                        self._scan_requested = False
                        self._next_reconcile = now + self._cfg.reconcile_interval_s
                    return folders, scan, files
                self._cond.wait(self._sleep_for(now))
                self._stats["wakeups"] += 1
            return None

    def _pop_due(self, now: float, limit: int) -> list[tuple[Path, _Pending]]:
        """Due pending files, taken out of the pending map (the worker owns them while it checks)."""
        out: list[tuple[Path, _Pending]] = []
        while self._heap and self._heap[0][0] <= now and len(out) < limit:
            due, _, path = heapq.heappop(self._heap)
            entry = self._pending.get(path)
            if entry is None or entry.due != due:
                continue  # a stale heap item: the file was re-noted or is gone
            del self._pending[path]
            out.append((path, entry))
        return out

    def _sleep_for(self, now: float) -> float | None:
        """Seconds until the earliest deadline; only pending files and missing folders add wake-ups."""
        deadlines: list[float] = []
        if not self._paused:  # paused: no rescans and no file checks, so no wake-ups for them
            deadlines.append(self._next_reconcile)
            while self._heap and self._pending.get(self._heap[0][2]) is None:
                heapq.heappop(self._heap)  # drop stale tops so an idle watcher does not wake for them
            if self._heap:
                deadlines.append(self._heap[0][0])
        deadlines += [f.next_check for f in self._folders if f.missing]
        return max(0.0, min(deadlines) - now) if deadlines else None

    def _do(self, folders: list[_Folder], scan: bool, files: list[tuple[Path, _Pending]]) -> None:
        for folder in folders:
            self._fix_folder(folder)
        if scan:
            self._reconcile()
        for path, entry in files:
            if self._stopping:
                return
            try:
                self._check(path, entry)
            except Exception:  # noqa: BLE001 - one bad file never stops the others
                log.exception("Checking %s failed unexpectedly; it is skipped until it changes.", path)

    # ------------------------------------------------------------------ one file
    def _check(self, path: Path, entry: _Pending) -> None:
        """Decide one pending file: wait longer, hand it over, retry its decode check, or give it up."""
        folder, now = entry.folder, self._clock()
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return  # deleted or renamed away before it settled
        except OSError as exc:
            log.debug("Cannot stat %s yet (%s); looking again later.", path, exc)
            return self._retry(path, entry, None, f"it cannot be read ({exc.strerror or exc})")
        sig = (st.st_size, st.st_mtime_ns)
        with self._cond:
            if self._emitted.get(path) == sig or self._failed.get(path) == sig:
                return  # a duplicate event or rescan of a file already handled
        if sig != entry.sig:  # first look, or changed since the last one: not stable (yet)
            if entry.sig is not None:
                entry.attempts, entry.first_fail = 0, None
            entry.sig = sig
            if not entry.closed:
                return self._reschedule(path, entry, now + self._window(folder))
        entry.closed = False
        if self._is_known(path, st):
            with self._cond:
                self._emitted[path] = sig
            return
        if not looks_complete(path):
            return self._retry(path, entry, sig, "it is still not a complete image (it ends early or cannot be "
                                                 "opened)")
        self._emit(path, sig)

    def _retry(self, path: Path, entry: _Pending, sig: Signature | None, why: str) -> None:
        """Another decode check after a backoff, or, once watch.decode_retries are spent, give up once."""
        now = self._clock()
        entry.attempts += 1
        if entry.first_fail is None:
            entry.first_fail = now
        if entry.attempts <= int(self._cfg.decode_retries):
            return self._reschedule(path, entry, now + self._backoff(entry.folder, entry.attempts))
        waited = now - entry.first_fail
        reason = (f"{path.name} was skipped: after {entry.attempts} checks over {waited:.1f} s {why}. If it is a "
                  "screenshot, take it again; it is tried again if the file changes.")
        with self._cond:
            if sig is not None:
                self._failed[path] = sig
            self._stats["failed"] += 1
        log.warning("%s", reason)
        self._call("on_failed", self._on_failed, path, reason)

    def _reschedule(self, path: Path, entry: _Pending, due: float) -> None:
        """Put a file back in the pending map unless newer events already did (theirs win)."""
        with self._cond:
            if path in self._pending:
                return
            entry.due = due
            self._pending[path] = entry
            heapq.heappush(self._heap, (due, next(self._seq), path))
            self._cond.notify_all()

    def _is_known(self, path: Path, st: os.stat_result) -> bool:
        if self._known is None:
            return False
        try:
            return bool(self._known(path, st))
        except Exception:  # noqa: BLE001 - a broken store must not hide screenshots
            log.exception("The 'known' check failed for %s; treating the file as new.", path)
            return False

    def _emit(self, path: Path, sig: Signature) -> None:
        """Hand the file over; remembered as done unless on_ready explicitly declined it (returned False)."""
        with self._cond:
            if self._emitted.get(path) == sig:
                return
        accepted = self._call("on_ready", self._on_ready, path)
        if accepted is False:
            log.debug("%s was not accepted now (queue full?); the next rescan offers it again.", path)
            return
        with self._cond:
            self._emitted[path] = sig
            self._failed.pop(path, None)
            self._stats["emitted"] += 1

    def _call(self, name: str, func: Callable[..., Any] | None, *args: Any) -> Any:
        """Run a callback; its exceptions are logged and swallowed (the file counts as handled)."""
        if func is None:
            return None
        try:
            return func(*args)
        except Exception:  # noqa: BLE001 - the daemon's bug must not stop the watcher
            log.exception("The %s callback raised for %s; the file is not offered again unless it changes.",
                          name, args[0])
            return None

    # ------------------------------------------------------------------ reconciliation
    def _reconcile(self) -> None:
        """List every armed folder: queue unseen files, forget files that are gone, check observers' health."""
        with self._cond:
            self._stats["scans"] += 1
        for folder in self._folders:
            if folder.missing or folder.gone or self._stopping:
                continue
            if not self._healthy(folder):
                self._fix_folder(folder, replaced=True)
                continue
            try:
                self._scan_folder(folder)
            except OSError as exc:
                log.warning("Cannot list the screenshot folder %s (%s); trying again in %.0f s.", folder.path,
                            exc.strerror or exc, self._cfg.reconcile_interval_s)

    def _scan_folder(self, folder: _Folder) -> None:
        now = self._clock()
        present: set[Path] = set()
        with os.scandir(folder.path) as it:
            entries = [e for e in it if self._matches(e.name)]
        for de in entries:
            try:
                if not de.is_file():
                    continue
                st = de.stat()
            except OSError:
                continue
            path = Path(folder.path, de.name)
            present.add(path)
            sig = (st.st_size, st.st_mtime_ns)
            with self._cond:
                if self._emitted.get(path) == sig or self._failed.get(path) == sig or path in self._pending:
                    continue
            if self._is_known(path, st):
                with self._cond:
                    self._emitted[path] = sig
                continue
            with self._cond:
                if path not in self._pending:
                    self._pending[path] = _Pending(folder=folder, due=now)
                    heapq.heappush(self._heap, (now, next(self._seq), path))
        with self._cond:  # keep memory bounded by what is in the folder
            for table in (self._emitted, self._failed):
                for path in [p for p in table if p.parent == folder.path and p not in present]:
                    del table[path]

    def _healthy(self, folder: _Folder) -> bool:
        """Still the same folder, and its observer threads still alive (PollingObserver can die silently)."""
        try:
            st = os.stat(folder.path)
        except OSError:
            return False
        if folder.ident is not None and (st.st_dev, st.st_ino) != folder.ident:
            return False
        obs = folder.observer
        return obs is not None and obs.is_alive() and all(e.is_alive() for e in obs.emitters)

    # ------------------------------------------------------------------ folder lifecycle (worker thread)
    def _fix_folder(self, folder: _Folder, replaced: bool = False) -> None:
        """A folder that went away, came back or lost its observer: un-watch it and watch it again."""
        with self._cond:
            was_gone, folder.gone = folder.gone, False
        if was_gone or replaced:
            self._disarm(folder)
            if os.path.isdir(folder.path):
                log.warning("Screenshot folder %s was replaced or its watch stopped; watching it again.",
                            folder.path)
            else:
                log.warning("Screenshot folder %s is gone; watching for it to come back (checked every %.0f s). "
                            "If it moved, set watch.folders to its new place.", folder.path, self._rearm_s())
                folder.warned_missing = True
        if not self._stopping and self._arm(folder, initial=False):
            with self._cond:
                self._stats["rearms"] += 1
            try:
                self._scan_folder(folder)  # what was written while it was not watched
            except OSError as exc:
                log.warning("Cannot list %s (%s); the next rescan tries again.", folder.path, exc)

    def _rearm_s(self) -> float:
        return float(getattr(self._cfg, "rearm_interval_s", DEFAULT_REARM_INTERVAL_S))

    def _arm(self, folder: _Folder, *, initial: bool) -> bool:
        """Start an observer on ``folder``; when it does not exist (yet), note it for a later check."""
        try:
            st = os.stat(folder.path)
            if not os.path.isdir(folder.path):
                raise NotADirectoryError(errno.ENOTDIR, "not a folder", str(folder.path))
            observer = self._start_observer(folder)
        except (FileNotFoundError, NotADirectoryError):
            self._mark_missing(folder, initial)
            return False
        except OSError as exc:
            if folder.polling:
                self._mark_missing(folder, initial, f"it cannot be watched ({exc.strerror or exc})")
                return False
            log.warning("Cannot watch %s natively (%s); polling it every %.1f s instead. On Linux, raising "
                        "fs.inotify.max_user_watches / max_user_instances lets it use inotify.",
                        folder.path, exc.strerror or exc, self._cfg.polling_interval_s)
            folder.polling = True
            return self._arm(folder, initial=initial)
        was_missing = folder.missing
        folder.refresh_keys()
        with self._cond:
            self._by_key.update({key: folder for key in folder.keys})
        folder.observer, folder.ident, folder.missing = observer, (st.st_dev, st.st_ino), False
        if was_missing and not initial:
            log.info("Screenshot folder %s is there (again); watching it and scanning for new files.", folder.path)
        folder.warned_missing = False
        kind = f"polling every {self._cfg.polling_interval_s:g} s" if folder.polling else "native events"
        log.info("Watching %s (%s).", folder.path, kind)
        return True

    def _start_observer(self, folder: _Folder) -> BaseObserver:
        observer: BaseObserver = (PollingObserver(timeout=float(self._cfg.polling_interval_s)) if folder.polling
                                  else Observer())
        observer.name = f"warpd-watch:{folder.path.name}"
        try:
            observer.schedule(_Handler(self, folder), str(folder.path), recursive=False)
            observer.start()
        except BaseException:
            observer.stop()  # also stops inotify's reader thread, started by the constructor
            raise
        return observer

    def _mark_missing(self, folder: _Folder, initial: bool, why: str = "it does not exist") -> None:
        folder.missing = True
        folder.next_check = self._clock() + self._rearm_s()
        if not folder.warned_missing:
            folder.warned_missing = True
            hint = " yet (STO creates it with the first screenshot)" if initial else ""
            log.warning("Screenshot folder %s cannot be watched: %s%s. Watching for it to appear (checked every "
                        "%.0f s); set watch.folders if the game saves elsewhere.", folder.path, why, hint,
                        self._rearm_s())

    def _disarm(self, folder: _Folder) -> None:
        obs, folder.observer, folder.ident = folder.observer, None, None
        if obs is None:
            return
        try:
            obs.stop()
            if obs.is_alive() and obs is not threading.current_thread():
                obs.join(timeout=5.0)
        except Exception:  # noqa: BLE001 - a broken observer is dropped either way
            log.debug("Stopping the observer of %s failed.", folder.path, exc_info=True)
