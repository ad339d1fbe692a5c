"""``warpd run``: the background daemon that players start once and forget.

Data flows one way: the :class:`~warpd.watcher.Watcher` hands each complete screenshot to a
bounded queue; one worker thread decodes it, claims its content hash in the
:class:`~warpd.store.Store` (so nothing is processed twice), runs the recognition
:class:`~warpd.recognize.Engine`, and stores the result together with its questions in one
transaction; the ship's SETS build and a per-screenshot result file are rewritten; the tray (or
the log, without a display) tells the user that items wait. Answers come back from the tray menu
or ``warpd confirm`` and go through the store, which keeps them as training data; the
:mod:`warpd.sync` timers upload them and fetch community models.

Idle means no CPU: the worker blocks on its queue, the watcher on its events, the timers on an
event with a timeout. The engine (icon index, models, OCR) is built on the first screenshot.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import logging.handlers
import os
import queue
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from warpd.cli import EXIT_FAILURE, EXIT_OK, print_json

# "Already running" has its own exit code so a service manager does not retry it as a crash.
EXIT_ALREADY_RUNNING = 3
from warpd.fsutil import write_atomic
from warpd.load import ImageLoadError, LoadedImage, load_image
from warpd.paths import DataPaths, data_paths, output_dir
from warpd.preprocess import canonical_crop, clamp_bbox, crop_to_icon, screen_sample
from warpd.store import BUILD_TO_WRITE_KEY, PendingItem, Store, StoreError, open_store, png_bytes
from warpd.tray import TrayState, WaitingItem, open_folder

log = logging.getLogger("warpd.daemon")

LOG_FILE = "warpd.log"
LOCK_FILE = "warpd.lock"
RESULTS_DIR = "results"
CURRENT_SHIP_KEY = "current_ship"
_STOP = object()  # queue sentinel


# ------------------------------------------------------------------------------ one instance
class InstanceLock:
    """One daemon per user: an OS file lock (released by the OS when the process dies, even by kill -9)."""

    def __init__(self, path: Path):
        self.path = path
        self._fh: Any = None

    def acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+")  # noqa: SIM115 - held for the process's life
        try:
            if sys.platform == "win32":
                import msvcrt

                fh.seek(0)
                msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
            else:
                import fcntl

                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            return False
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        self._fh = fh
        return True

    def holder(self) -> str:
        """The pid written by the running instance, for the message to the user."""
        try:
            return self.path.read_text().strip() or "?"
        except OSError:
            return "?"

    def release(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def setup_file_logging(paths: DataPaths, cfg: Any) -> Path:
    """A rotating log file in the data folder (and the configured level on warpd's loggers)."""
    paths.logs.mkdir(parents=True, exist_ok=True)
    path = paths.logs / LOG_FILE
    handler = logging.handlers.RotatingFileHandler(path, maxBytes=int(cfg.logging.max_bytes),
                                                   backupCount=int(cfg.logging.backups), encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("warpd")
    root.addHandler(handler)
    root.setLevel(getattr(logging, str(cfg.logging.level).upper(), logging.INFO))
    # The file has everything; the terminal (or launchd's/systemd's capture of stderr) only what
    # needs attention, so a service's stderr log is not a second, never-rotated copy.
    console = logging.StreamHandler()
    console.setLevel(logging.WARNING)
    console.setFormatter(logging.Formatter("warpd: %(levelname)s %(message)s"))
    root.addHandler(console)
    root.propagate = False
    return path


# ------------------------------------------------------------------------------ the daemon
@dataclass
class Counters:
    processed: int = 0
    duplicates: int = 0
    unreadable: int = 0
    dropped: int = 0


class Daemon:
    """Watcher → worker → store → tray; implements the tray's :class:`~warpd.tray.TrayModel`."""

    def __init__(self, cfg: Any, *, folders: list[Path] | None = None, store: Store | None = None,
                 engine_factory: Callable[[], Any] | None = None, use_tray: bool = True,
                 exit_when_idle: bool = False):
        from warpd.watcher import Watcher, find_screenshot_folders

        self.cfg = cfg
        self.paths = data_paths(cfg)
        self.output = output_dir(cfg)
        self.store = store or open_store(cfg)
        self._engine_factory = engine_factory or (lambda: _default_engine(cfg))
        self._engine: Any = None
        self._engine_lock = threading.Lock()
        self.queue: queue.Queue[Any] = queue.Queue(maxsize=int(cfg.watch.queue_size))
        self.stopped = threading.Event()
        self.finished = threading.Event()  # set when stop() has done its work
        self.idle = threading.Event()
        self.counters = Counters()
        self.exit_when_idle = exit_when_idle
        self._busy_file: str | None = None
        self._paused = False
        self._last_error: str | None = None
        self._notified_error = False
        self.use_tray = use_tray
        self.tray: Any = None
        self.sync: Any = None  # set by warpd.sync when uploading/updating is configured
        if folders is None:
            folders = [c.path for c in find_screenshot_folders(cfg.watch)]
        self.folders = [Path(f) for f in folders]
        self.watcher = Watcher(self.folders, self.enqueue, cfg_watch=cfg.watch, on_failed=self._on_failed,
                               known=self.store.known)
        self._worker = threading.Thread(target=self._work, name="warpd-worker", daemon=True)
        self._housekeeper = threading.Thread(target=self._housekeeping, name="warpd-answers", daemon=True)
        self._answers_seen = self.store.last_annotation_id()
        self._applied: set[int] = set()

    # ---------------------------------------------------------------- engine
    def engine(self) -> Any:
        """The recognition engine, built on first use (idle daemons never load models)."""
        if self._engine is None:
            with self._engine_lock:
                if self._engine is None:
                    t0 = time.perf_counter()
                    self._engine = self._engine_factory()
                    log.info("Recognition engine ready in %.1f s", time.perf_counter() - t0)
        return self._engine

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> None:
        """Repair what a crash left, resume unfinished work, then start the worker and the watcher."""
        self.store.repair_mirror()
        self.store.sweep_temp_files()
        self._write_lagging_build()
        for shot in self.store.resume():
            for p in shot.paths:
                if Path(p).is_file():
                    self.enqueue(Path(p))
                    break
            else:
                self.store.fail(shot.sha, "the file is gone")
        self._worker.start()
        self._housekeeper.start()
        self.watcher.start()
        if self.sync is not None:
            self.sync.start()
        where = ", ".join(str(f) for f in self.folders) or "no folder (set [watch] folders)"
        log.info("Watching %s; results go to %s", where, self.output)
        self.publish_status()

    def stop(self) -> None:
        """Stop watching, let the worker finish the screenshot in hand, close the store."""
        if self.stopped.is_set():
            return
        self.stopped.set()
        log.info("Stopping")
        self.watcher.stop()
        if self.sync is not None:
            self.sync.stop()
        try:
            self.queue.put_nowait(_STOP)
        except queue.Full:
            pass
        if self._worker.is_alive() and threading.current_thread() is not self._worker:
            self._worker.join(timeout=30)
        if self.tray is not None:
            self.tray.stop()
        self.publish_status(state="stopped")
        self.finished.set()

    def enqueue(self, path: Path) -> bool:
        """The watcher's callback; False when the queue is full (the next rescan brings it back)."""
        if self.stopped.is_set():
            return False
        try:
            self.queue.put_nowait(Path(path))
        except queue.Full:
            self.counters.dropped += 1
            return False
        self.idle.clear()
        return True

    # ---------------------------------------------------------------- worker
    def _work(self) -> None:
        while True:
            try:
                item = self.queue.get(timeout=None if not self.exit_when_idle else 2.0)
            except queue.Empty:
                self._became_idle()
                continue
            if item is _STOP:
                return
            self._busy_file = str(item)
            self._refresh_tray()
            try:
                self.handle(item)
            except Exception as exc:  # noqa: BLE001 - never die on one file
                log.exception("Unexpected error on %s; the daemon goes on", item)
                self._last_error = f"{Path(item).name}: {exc}"
            finally:
                self._busy_file = None
            if self.queue.empty():
                self._became_idle()

    def _became_idle(self) -> None:
        self.publish_status()
        self._refresh_tray()
        self.idle.set()
        if self.exit_when_idle and self.queue.empty():
            threading.Thread(target=self.stop, daemon=True).start()

    def handle(self, path: Path) -> dict[str, Any] | None:
        """Process one screenshot file end to end; returns the result (None when skipped)."""
        try:
            stat = path.stat()
            loaded = load_image(path, int(self.cfg.recognition.max_pixels))
        except (ImageLoadError, OSError) as exc:
            self.counters.unreadable += 1
            log.warning("Skipped %s: %s", path.name, exc)
            return None
        sha = loaded.sha256
        self.store.claim(sha, path, stat)
        shot = self.store.screenshot(sha)
        if shot is None or shot.status != "queued" or not self.store.start(sha):
            self.counters.duplicates += 1
            log.info("%s has the content of a screenshot already read; skipped", path.name)
            return None
        try:
            result = self.engine().process_image(loaded.rgb, str(path), loaded=loaded)
        except Exception as exc:  # noqa: BLE001
            self.store.fail(sha, f"recognition failed: {exc}")
            raise
        self._finish(path, sha, loaded, result, stat.st_mtime_ns)
        return result

    def _finish(self, path: Path, sha: str, loaded: LoadedImage, result: dict[str, Any], taken_ns: int) -> None:
        questions = self._questions(sha, path, loaded.rgb, result)
        ship_key = self._ship_key(result)
        self._write_result_file(path, sha, result)  # before the commit: a kill in between re-reads the file
        self.store.finish(sha, result, ship_key=ship_key, pending=questions, taken_ns=taken_ns)
        self.counters.processed += 1
        if ship_key:
            self.write_build(ship_key)
        if self.exit_when_idle:  # a one-shot run shows its results as `warpd process` does
            from warpd.recognize import summary_line

            print(summary_line(result), flush=True)
        asked = sum(1 for q in questions if q.kind == "item")
        log.info("%s: %s, %d slots, %d to confirm", path.name, result["screen_type"], len(result["slots"]), asked)
        if questions:
            self._notify(len(questions), result["screen_type"])

    # ---------------------------------------------------------------- questions
    def _questions(self, sha: str, path: Path, rgb: np.ndarray, result: dict[str, Any]) -> list[PendingItem]:
        """What the user is asked: "ask" items, an uncertain screen type, an uncertain ship type."""
        out: list[PendingItem] = []
        for entry in result["slots"]:
            if entry["state"] != "item" or entry["decision"] != "ask":
                continue
            crop = png_bytes(canonical_crop(crop_to_icon(rgb, entry["bbox"])))
            ml_name = entry["item"] or (entry["candidates"][0][0] if entry["candidates"] else "")
            out.append(PendingItem(sha, entry["slot"], "item", path.name, entry["index"], entry["bbox"],
                                   entry["candidates"], ml_name, entry["confidence"], crop))
        if result["screen_type"] != "UNKNOWN" and result.get("screen_decision") == "ask":
            sample = png_bytes(screen_sample(rgb, [result["ship"].get("name_bbox")]))
            out.append(PendingItem(sha, "", "screen_type", path.name, 0, None,
                                   [[result["screen_type"], result["screen_confidence"]]], result["screen_type"],
                                   result["screen_confidence"], sample))
        ship = result.get("ship") or {}
        if ship.get("type_bbox") and ship.get("type_text") and ship["confidence"] < self.cfg.recognition.auto_accept:
            x, y, w, h = clamp_bbox(ship["type_bbox"], rgb.shape[1], rgb.shape[0])
            if w and h:
                text_crop = png_bytes(np.ascontiguousarray(rgb[y:y + h, x:x + w]))
                cands = [[ship["type"], ship["confidence"]]] if ship.get("type") else []
                out.append(PendingItem(sha, "Ship Type", "ship_type", path.name, 0, ship["type_bbox"], cands,
                                       ship["type_text"], ship["confidence"], text_crop))
        return out

    # ---------------------------------------------------------------- builds and files
    def _ship_key(self, result: dict[str, Any]) -> str:
        """Builds are per ship; screens without a ship line belong to the last ship seen."""
        ship = result.get("ship") or {}
        if ship.get("type"):
            key = f"{ship['type']}|{ship.get('tier') or ''}"
            self.store.set_state(CURRENT_SHIP_KEY, key)
            return key
        if result.get("error") or result["screen_type"] == "UNKNOWN":
            return ""
        return str(self.store.get_state(CURRENT_SHIP_KEY, "") or "unknown ship|")

    def write_build(self, ship_key: str) -> Path | None:
        """Rewrite one ship's SETS build from the latest result of each of its screen types."""
        from warpd.build import build_file_name, builds_from_results, write_build

        results = list(self.store.build(ship_key).values())
        if not results:
            self._build_written(ship_key)
            return None
        catalog = self.engine().catalog
        ship_type, _, tier = ship_key.partition("|")
        for result in results:  # ship-less screens join this ship's build
            if ship_type != "unknown ship" and not (result.get("ship") or {}).get("type"):
                result["ship"] = {"type": ship_type, "tier": tier or None, "confidence": 0.0, "name_bbox": None}
        builds = builds_from_results(results, catalog)
        self.output.mkdir(parents=True, exist_ok=True)
        target = None
        for (btype, btier), build in builds.items():
            target = self.output / build_file_name(btype, btier)
            write_build(build, target)
            log.info("Build updated: %s", target)
        self._build_written(ship_key)
        return target

    def _build_written(self, ship_key: str) -> None:
        if self.store.get_state(BUILD_TO_WRITE_KEY) == ship_key:
            self.store.set_state(BUILD_TO_WRITE_KEY, None)

    def _write_lagging_build(self) -> None:
        """A process killed between storing a result and rewriting its build left the file behind."""
        ship_key = self.store.get_state(BUILD_TO_WRITE_KEY)
        if not ship_key:
            return
        try:
            self.write_build(str(ship_key))
        except Exception:  # noqa: BLE001 - a build can be written later; the daemon must start
            log.exception("Could not rewrite the build of %s after a restart; the next screenshot of it will", ship_key)

    def _write_result_file(self, path: Path, sha: str, result: dict[str, Any]) -> None:
        folder = self.output / RESULTS_DIR
        folder.mkdir(parents=True, exist_ok=True)
        write_atomic(folder / f"{path.stem}.{sha[:8]}.json",
                     json.dumps(result, ensure_ascii=False, indent=1).encode("utf-8"))

    # ---------------------------------------------------------------- answers (tray and CLI)
    def _housekeeping(self) -> None:
        """Answers given with ``warpd confirm`` in another process reach this daemon within a few seconds."""
        interval = float(getattr(self.cfg.state, "answers_poll_s", 5.0))
        while not self.stopped.wait(interval):
            try:
                self.apply_external_answers()
            except Exception:  # noqa: BLE001 - housekeeping must not stop the daemon
                log.exception("Applying answers from 'warpd confirm' failed; tried again shortly")

    def apply_external_answers(self) -> int:
        """Apply answers recorded since the last look that this process did not make itself."""
        applied = 0
        for annotation_id, item, annotation in self.store.answers_after(self._answers_seen):
            self._answers_seen = max(self._answers_seen, annotation_id)
            if item.id in self._applied:
                continue
            self._applied.add(item.id)
            if item.kind == "item" and self._engine is not None and item.crop:
                self._engine.remember(annotation.name, annotation.slot, _decode_png(item.crop))
            self._apply_to_result(item, annotation.name)
            applied += 1
        if applied:
            log.info("Applied %d answer(s) given with 'warpd confirm'", applied)
            self._refresh_tray()
        return applied

    def answer(self, item_id: int, name: str | None, how: str = "choose") -> None:
        """Apply an answer: store it, teach the engine, update the stored result and the build."""
        item = self.store.pending(item_id)
        if item is None:
            raise StoreError(f"no question with id {item_id}")
        if how == "skip":
            self.store.skip(item_id)
        elif item.kind == "screen_type":
            if name:
                self.store.confirm_screen_type(item_id, name)
            else:
                self.store.skip(item_id)
        elif how == "none" and not name:
            self.store.none_of_these(item_id)
        else:
            confirmed = self.store.confirm(item_id, name or "") if how == "choose" else \
                self.store.none_of_these(item_id, name)
            if confirmed is not None and item.kind == "item" and self._engine is not None:
                self._engine.remember(confirmed.annotation.name, confirmed.annotation.slot,
                                      _decode_png(confirmed.crop_png))
        self._applied.add(item_id)
        if name and how != "skip":
            self._apply_to_result(item, name)
        self._refresh_tray()
        self.publish_status()

    def _apply_to_result(self, item: Any, name: str) -> None:
        """The user's answer replaces the reading in the stored result, then the build follows."""
        shot = self.store.screenshot(item.screenshot_sha)
        if shot is None or shot.result is None:
            return
        result = shot.result
        if item.kind == "item":
            for entry in result.get("slots", []):
                if entry["slot"] == item.slot and entry["index"] == item.index and list(entry["bbox"]) == list(
                        item.bbox or entry["bbox"]):
                    entry.update({"item": name, "confidence": 1.0, "decision": "auto", "source": "session"})
        elif item.kind == "screen_type":
            result["screen_type"], result["screen_confidence"] = name, 1.0
        elif item.kind == "ship_type":
            result.setdefault("ship", {}).update({"type": name, "confidence": 1.0})
        ship_key = self._ship_key(result)
        self.store.finish(item.screenshot_sha, result, ship_key=ship_key)
        if ship_key and self._engine is not None:
            self.write_build(ship_key)

    # ---------------------------------------------------------------- tray model
    def tray_state(self) -> TrayState:
        waiting = self.store.counts().get("waiting", 0)
        if self._last_error:
            kind = "error"
        elif self._busy_file or not self.queue.empty():
            kind = "working"
        elif waiting:
            kind = "waiting"
        else:
            kind = "idle"
        return TrayState(kind=kind, waiting=waiting, error=self._last_error, paused=self._paused)

    def waiting_items(self, limit: int) -> list[WaitingItem]:
        return [WaitingItem(p.id, p.slot or "Screen type", p.file, tuple(p.candidates), p.kind)
                for p in self.store.waiting(limit)]

    def choose(self, item_id: int, name: str) -> None:
        self.answer(item_id, name, "choose")

    def none_of_these(self, item_id: int) -> None:
        self.answer(item_id, None, "none")

    def skip(self, item_id: int) -> None:
        self.answer(item_id, None, "skip")

    def set_paused(self, paused: bool) -> None:
        self._paused = paused
        (self.watcher.pause if paused else self.watcher.resume)()
        log.info("Watching %s", "paused" if paused else "resumed")
        self._refresh_tray()

    def open_output_folder(self) -> None:
        self.output.mkdir(parents=True, exist_ok=True)
        open_folder(self.output)

    def sync_now(self) -> None:
        if self.sync is None:
            log.info("Sync is off: set [sync] enabled = true and a token to share confirmations")
            return
        self.sync.sync_now()

    def check_update(self) -> None:
        if self.sync is None:
            log.info("Model updates are off in this session")
            return
        self.sync.check_update(force=True)

    def quit(self) -> None:
        threading.Thread(target=self.stop, name="warpd-quit", daemon=True).start()

    # ---------------------------------------------------------------- status and notices
    def publish_status(self, state: str | None = None) -> None:
        """The snapshot ``warpd status`` reads from the store (another process may ask)."""
        snapshot = {
            "state": state or ("paused" if self._paused else ("working" if self._busy_file else "watching")),
            "pid": os.getpid(), "folders": [str(f) for f in self.folders], "output": str(self.output),
            "queue": self.queue.qsize(), "busy_file": self._busy_file, "counters": self.counters.__dict__,
            "last_error": self._last_error, "tray": bool(self.tray),
        }
        try:
            self.store.set_status(snapshot)
        except Exception:  # noqa: BLE001 - status is best effort
            log.debug("status snapshot failed", exc_info=True)

    def _notify(self, n: int, screen_type: str) -> None:
        label = screen_type.replace("_", " ").title()
        if self.tray is not None:
            self.tray.notify_waiting(n, label)
        else:
            log.info("%d item(s) from your %s screenshot need a look: run 'warpd confirm'", n, label)

    def _on_failed(self, path: Path, reason: str) -> None:
        self.counters.unreadable += 1
        log.warning("%s never became a readable image (%s); it is left alone", Path(path).name, reason)

    def _refresh_tray(self) -> None:
        if self.tray is not None:
            self.tray.refresh()

    # ---------------------------------------------------------------- running
    def run(self) -> int:
        """Start, then block (in the tray's loop when there is one) until stopped."""
        self.start()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                signal.signal(sig, lambda *_: self.quit())
            except ValueError:  # not the main thread (tests)
                pass
        if self.use_tray:
            self._start_tray()
        if self.tray is not None:
            try:
                self.tray.run()  # returns when the tray stops
            finally:
                self.stop()
        else:
            while not self.stopped.wait(1.0):
                pass
        self.finished.wait(timeout=60)
        return EXIT_OK

    def _start_tray(self) -> None:
        from warpd.tray import Tray, tray_available

        ok, why = tray_available(getattr(self.cfg.tray, "backend", "") or None)
        if not ok:
            log.info("No tray (%s): notifications go to the log %s; confirm with 'warpd confirm'", why,
                     self.paths.logs / LOG_FILE)
            return
        self.tray = Tray.from_config(self, self.cfg, log_location=str(self.paths.logs / LOG_FILE))


def _decode_png(data: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def _default_engine(cfg: Any) -> Any:
    from warpd.recognize import Engine

    return Engine.from_config(cfg)


# ------------------------------------------------------------------------------ CLI verbs
def register(sub: Any) -> None:
    p = sub.add_parser("run", help="watch the screenshot folder and recognise new screenshots (the daemon)",
                       description="Runs until stopped (tray menu Quit, Ctrl-C, SIGTERM). One instance per user.")
    p.add_argument("--no-tray", action="store_true", help="run without the tray icon (no display needed)")
    p.add_argument("--folder", action="append", default=None, metavar="DIR",
                   help="watch this folder instead of the configured/discovered ones (repeatable)")
    p.add_argument("--exit-when-idle", action="store_true",
                   help="process what is there (and what arrives meanwhile), then exit: for scripts and demos")
    p.set_defaults(func=run_daemon)
    s = sub.add_parser("status", help="what the daemon is doing: folders, queue, waiting items, last error")
    s.add_argument("--json", action="store_true", help="print the status as JSON")
    s.set_defaults(func=show_status)


def run_daemon(args: argparse.Namespace, cfg: Any) -> int:
    paths = data_paths(cfg)
    lock = InstanceLock(paths.root / LOCK_FILE)
    if not lock.acquire():
        print(f"warpd is already running (pid {lock.holder()}); 'warpd status' shows what it does",
              file=sys.stderr)
        return EXIT_ALREADY_RUNNING
    try:
        log_path = setup_file_logging(paths, cfg)
        folders = [Path(f) for f in args.folder] if args.folder else None
        use_tray = bool(cfg.tray.enabled) and not args.no_tray
        daemon = Daemon(cfg, folders=folders, use_tray=use_tray, exit_when_idle=args.exit_when_idle)
        if not daemon.folders:
            print("warpd: no screenshot folder found; set [watch] folders or pass --folder", file=sys.stderr)
            return EXIT_FAILURE
        _attach_sync(daemon, cfg)
        print(f"warpd: watching {', '.join(map(str, daemon.folders))}; log {log_path}", file=sys.stderr)
        code = daemon.run()
        c = daemon.counters
        print(f"warpd: stopped; {c.processed} screenshots read, {c.duplicates} duplicates, {c.unreadable} unreadable; "
              f"builds in {daemon.output}", file=sys.stderr)
        return code
    finally:
        lock.release()


def _attach_sync(daemon: Daemon, cfg: Any) -> None:
    """Upload and update timers, when the sync module is available (issue 5)."""
    try:
        from warpd.sync import attach
    except ImportError:
        return
    attach(daemon, cfg)


def show_status(args: argparse.Namespace, cfg: Any) -> int:
    paths = data_paths(cfg)
    if not paths.state_db.exists():
        status: dict[str, Any] = {"state": "never run", "data_dir": str(paths.root)}
    else:
        store = Store(paths)
        try:
            status = store.status()
        finally:
            store.close()
        probe = InstanceLock(paths.root / LOCK_FILE)
        running = not probe.acquire()
        probe.release()
        status["running"] = running
        if not running and status.get("state") not in ("stopped", None):
            status["state"] = "not running (it stopped without saying so)"
        elif not running:
            status["state"] = "not running"
    if args.json:
        print_json(status)
        return EXIT_OK
    print(f"state: {status.get('state')}")
    for key in ("folders", "output", "queue", "busy_file", "pending", "screenshots", "last_error", "model_version"):
        if status.get(key) not in (None, [], {}):
            print(f"{key}: {status[key]}")
    return EXIT_OK
