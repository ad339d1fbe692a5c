"""The community loop, client side: upload confirmations, install community models.

Uploads (opt-in, with a token): every ``sync.interval_s`` and on "Sync now", the store's unsynced
crops with their annotation lines and its screen-type samples go to
``staging/<install_id>/...`` in ONE commit per batch. A batch is recorded as sent before the
commit and marked after; every remote path is content-addressed (crops by hash, the batch's
annotation lines by the batch's own hash), so re-sending a batch after a crash rewrites the same
files: nothing is lost, nothing is duplicated. The daily cap counts marked items, persistently.

Updates (no token needed): 15 s after start and then at most every ``sync.update_interval_s``
(or when forced), ``models/model_version.json`` of the knowledge repo is read; when its
``trained_at`` is newer than the installed one (or the screen classifier is missing here), every
file it lists is downloaded at one pinned revision into a temporary folder, checked against the
listed sha256 and size, loaded and run (:func:`warpd.models.load_model_set` with ``strict``), and
only then swapped in for the models folder, the old one kept as ``models.prev`` for rollback; the
running engine reloads without a restart. Nothing downloaded is ever unpickled.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from warpd import formats
from warpd.formats import FormatError, ModelVersion
from warpd.hub import Hub, HubError, open_hub, resolve_token
from warpd.models import ModelError, load_model_set
from warpd.paths import DataPaths, data_paths, install_id

log = logging.getLogger(__name__)

LAST_CHECK_KEY = "last_update_check"
MODEL_VERSION_KEY = "model_version"
PREVIOUS_SUFFIX = ".prev"


class UpdateRefused(Exception):
    """A community model that failed verification; the installed models stay in place."""


# ------------------------------------------------------------------------------ uploads
@dataclass
class SyncReport:
    """What one upload tick did (for logs, tests and the bench)."""

    uploaded: int = 0
    batches: int = 0
    resent: int = 0
    capped: bool = False
    error: str | None = None


def batch_files(items: list[Any], iid: str, batch_id: str) -> dict[str, bytes | Path]:
    """The repo files of one batch: crops and screen samples by hash, the batch's annotation lines."""
    files: dict[str, bytes | Path] = {}
    lines = []
    for item in items:
        if item.kind == "crop":
            files[formats.staging_crop_path(iid, item.sha)] = item.path
            lines.append(item.annotation)
        else:
            files[formats.staging_screen_path(iid, item.label, item.sha)] = item.path
    if lines:
        text = formats.annotation_lines(lines).encode("utf-8")
        files[formats.staging_batch_annotations_path(iid, batch_id)] = text
    return files


class Uploader:
    """Sends the store's confirmations to the staging repo, batch by batch, within the daily cap."""

    def __init__(self, store: Any, hub: Hub, cfg: Any, iid: str):
        self.store, self.hub, self.cfg, self.iid = store, hub, cfg, iid
        self.repo = str(cfg.sync.staging_repo)
        self.batch_size = int(getattr(cfg.sync, "batch_size", 100))
        self._repo_ready = False

    def remaining_today(self) -> int:
        """Uploads left under the cap today (UTC), open batches included."""
        pending = sum(len(b.items) for b in self.store.open_batches())
        return max(0, int(self.cfg.sync.daily_cap) - self.store.uploads_on() - pending)

    def sync_once(self) -> SyncReport:
        """Re-send open batches, then upload new items up to the cap; a failure leaves them for next time."""
        report = SyncReport()
        try:
            self._ensure_repo()
            for batch in self.store.open_batches():
                if batch.items:
                    self._send(batch)
                    report.resent += len(batch.items)
                else:
                    self.store.mark_synced(None, batch.batch_id)
            while True:
                room = self.remaining_today()
                if room <= 0:
                    report.capped = bool(self.store.unsynced(limit=1))
                    break
                items = self.store.unsynced(limit=min(room, self.batch_size))
                if not items:
                    break
                batch = self.store.begin_batch(items)
                report.uploaded += self._send(batch)
                report.batches += 1
        except HubError as exc:
            report.error = str(exc)
            log.warning("Upload failed (%s); nothing is lost, it is retried at the next sync", exc)
        return report

    def _send(self, batch: Any) -> int:
        files = batch_files(batch.items, self.iid, batch.batch_id)
        self.hub.commit(self.repo, files, f"warpd: {len(batch.items)} confirmations from one install",
                        repo_type="dataset")
        return self.store.mark_synced(None, batch.batch_id)

    def _ensure_repo(self) -> None:
        if not self._repo_ready:
            self.hub.ensure_repo(self.repo, repo_type="dataset")
            self._repo_ready = True


# ------------------------------------------------------------------------------ updates
def installed_version(models_dir: Path) -> ModelVersion | None:
    """The model_version.json of the installed models, or None (none, or unreadable)."""
    path = models_dir / formats.MODEL_VERSION
    try:
        return formats.parse_model_version(path.read_bytes())
    except (OSError, FormatError):
        return None


def recover_models_dir(models_dir: Path) -> None:
    """Finish a swap a crash interrupted: no models folder but a previous one → put it back."""
    prev = models_dir.with_name(models_dir.name + PREVIOUS_SUFFIX)
    if not models_dir.exists() and prev.is_dir():
        os.replace(prev, models_dir)
        log.warning("Models folder restored from %s after an interrupted update", prev)


def local_name(remote: str) -> str:
    """Where a published file goes in the local models folder (flat: ``models/x`` and ``knowledge.json``)."""
    formats.validate_remote_path(remote)
    name = remote.split("/")[-1]
    if remote not in (formats.KNOWLEDGE_FILE, f"{formats.MODELS_DIR}/{name}"):
        raise UpdateRefused(f"{remote!r} is not a file the model repo publishes")
    return name


class Updater:
    """Checks the knowledge repo for newer models and installs them atomically."""

    def __init__(self, hub: Hub, cfg: Any, models_dir: Path, *, on_installed: Callable[[Path], Any] | None = None,
                 store: Any = None):
        self.hub, self.cfg, self.models_dir = hub, cfg, Path(models_dir)
        self.repo = str(cfg.sync.knowledge_repo)
        self.on_installed = on_installed
        self.store = store
        self.threads = int(getattr(cfg.recognition, "onnx_threads", 1))

    def check(self) -> ModelVersion | None:
        """Install the remote models when they are newer; returns the version installed (None if not)."""
        recover_models_dir(self.models_dir)
        revision = self.hub.head(self.repo, repo_type="model")
        raw = self.hub.read_bytes(self.repo, f"{formats.MODELS_DIR}/{formats.MODEL_VERSION}", repo_type="model",
                                  revision=revision)
        remote = formats.parse_model_version(raw)
        local = installed_version(self.models_dir)
        missing_screen = (f"{formats.MODELS_DIR}/{formats.SCREEN_ONNX}" in remote.files
                          and not (self.models_dir / formats.SCREEN_ONNX).is_file())
        if local is not None and not remote.is_newer_than(local) and not missing_screen:
            if remote.trained_at < local.trained_at:
                log.info("Community models (trained %s) are older than the installed ones (%s); kept ours",
                         formats.format_utc(remote.trained_at), formats.format_utc(local.trained_at))
            return None
        self.install(remote, raw, revision)
        return remote

    def install(self, version: ModelVersion, version_bytes: bytes, revision: str) -> None:
        """Download, verify, swap, reload; any failure raises :class:`UpdateRefused` and changes nothing."""
        if not version.files:
            raise UpdateRefused("model_version.json lists no files to install")
        parent = self.models_dir.parent
        parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".models-update-", dir=parent))
        try:
            for remote, meta in version.files.items():
                name = local_name(remote)
                with tempfile.TemporaryDirectory(dir=parent, prefix=".dl-") as tmp:
                    got = self.hub.download(self.repo, remote, Path(tmp), repo_type="model", revision=revision)
                    data = got.read_bytes()
                if len(data) != meta["size"] or hashlib.sha256(data).hexdigest() != meta["sha256"]:
                    raise UpdateRefused(f"{remote} does not match the size and sha256 model_version.json lists")
                (staging / name).write_bytes(data)
            (staging / formats.MODEL_VERSION).write_bytes(version_bytes)
            try:
                load_model_set(staging, self.threads, strict=True)
            except (ModelError, FormatError) as exc:
                raise UpdateRefused(f"the downloaded models do not load: {exc}") from exc
            self._swap(staging)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        log.info("Installed community models trained %s (%d files)", formats.format_utc(version.trained_at),
                 len(version.files))
        if self.store is not None:
            self.store.set_state(MODEL_VERSION_KEY, version.to_json())
        if self.on_installed is not None:
            self.on_installed(self.models_dir)

    def _swap(self, staging: Path) -> None:
        """models → models.prev, staging → models (a crash between is repaired by recover_models_dir)."""
        prev = self.models_dir.with_name(self.models_dir.name + PREVIOUS_SUFFIX)
        if self.models_dir.exists():
            shutil.rmtree(prev, ignore_errors=True)
            os.replace(self.models_dir, prev)
        os.replace(staging, self.models_dir)


# ------------------------------------------------------------------------------ the daemon's timers
class SyncService:
    """The daemon's upload and update timers; waits on an event, so idle costs nothing."""

    def __init__(self, daemon: Any, cfg: Any, hub_factory: Callable[[], Hub], *, uploads: bool):
        self.daemon, self.cfg = daemon, cfg
        self.paths: DataPaths = data_paths(cfg)
        self._hub_factory = hub_factory
        self._hub: Hub | None = None
        self.uploads = uploads
        self.updates = bool(getattr(cfg.sync, "check_updates", True))
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._force_update = False
        self._sync_requested = False
        self._thread = threading.Thread(target=self._loop, name="warpd-sync", daemon=True)
        self.last_report: SyncReport | None = None

    def hub(self) -> Hub:
        if self._hub is None:
            self._hub = self._hub_factory()
        return self._hub

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=30)

    def sync_now(self) -> None:
        self._sync_requested = True
        self._wake.set()

    def check_update(self, force: bool = True) -> None:
        self._force_update = force
        self._wake.set()

    def _loop(self) -> None:
        start = time.monotonic()
        next_sync = start + float(self.cfg.sync.interval_s)
        next_update = start + float(self.cfg.sync.update_first_check_s)
        while not self._stop.is_set():
            now = time.monotonic()
            if self.uploads and (self._sync_requested or now >= next_sync):
                self._sync_requested = False
                self.run_upload()
                next_sync = time.monotonic() + float(self.cfg.sync.interval_s)
            if self._force_update or (self.updates and now >= next_update):
                force, self._force_update = self._force_update, False
                self.run_update(force)
                next_update = time.monotonic() + float(self.cfg.sync.update_interval_s)
            timeout = max(0.05, min(next_sync if self.uploads else float("inf"),
                                     next_update if self.updates else float("inf")) - time.monotonic())
            if timeout == float("inf"):
                timeout = None
            self._wake.wait(timeout)
            self._wake.clear()

    def run_upload(self) -> SyncReport:
        iid = install_id(self.paths) or ""
        report = Uploader(self.daemon.store, self.hub(), self.cfg, iid).sync_once()
        self.last_report = report
        if report.uploaded:
            log.info("Uploaded %d confirmation(s) in %d batch(es)", report.uploaded, report.batches)
        if report.capped:
            log.info("Daily upload cap (%s) reached; the rest goes tomorrow (UTC)", self.cfg.sync.daily_cap)
        return report

    def run_update(self, force: bool) -> ModelVersion | None:
        """One update check, unless one ran within update_interval_s (persisted across restarts)."""
        store = self.daemon.store
        last = store.get_state(LAST_CHECK_KEY)
        if not force and last and time.time() - float(last) < float(self.cfg.sync.update_interval_s):
            return None
        updater = Updater(self.hub(), self.cfg, self.paths.models, on_installed=self._reload, store=store)
        try:
            installed = updater.check()
        except UpdateRefused as exc:
            log.warning("Community model update refused (%s); the installed models keep working", exc)
            installed = None
        except (HubError, FormatError) as exc:
            log.info("Model update check failed (%s); tried again later", exc)
            return None
        store.set_state(LAST_CHECK_KEY, time.time())
        return installed

    def _reload(self, folder: Path) -> None:
        engine = getattr(self.daemon, "_engine", None)
        if engine is not None:
            engine.reload_models(folder)


def attach(daemon: Any, cfg: Any) -> SyncService | None:
    """Give the daemon its sync timers; uploading only when opted in with a token (said once)."""
    paths = data_paths(cfg)
    recover_models_dir(paths.models)
    token = resolve_token(cfg, paths.token_file)
    uploads = bool(cfg.sync.enabled) and (token is not None or str(cfg.sync.endpoint).startswith("dir:"))
    if cfg.sync.enabled and not uploads:
        log.info("Sync is enabled but no token is set (WARPD_HF_TOKEN, [sync] token or %s): nothing is uploaded",
                 paths.token_file)
    elif not cfg.sync.enabled:
        log.info("Uploading confirmations is off ([sync] enabled = false); community models are still fetched")
    service = SyncService(daemon, cfg, lambda: open_hub(cfg, token), uploads=uploads)
    daemon.sync = service
    return service
