"""warpd's persistent state: one SQLite file that survives kill -9, power loss and restarts.

What lives here, and why in one database: the screenshots seen (so nothing is processed twice and
nothing is lost when the daemon dies mid-queue), the items waiting for the user's confirmation,
the confirmed annotations (training data), the upload bookkeeping of the sync worker, a small
key/value area that ``warpd status`` reads from another process, and the latest recognition
result per ship. One file means one transaction can cover facts that must change together (a
screenshot done *and* its questions queued; an upload marked *and* the daily counter raised).

Durability decisions:

* **WAL mode** so readers (``warpd status``, the tray, ``warpd confirm``) never block the daemon's
  writes and vice versa, and a killed writer leaves the database consistent (the WAL is replayed
  or ignored on the next open).
* **synchronous=FULL**: with WAL, NORMAL already survives kill -9 of the process (committed pages
  sit in the OS cache), but a power loss or OS crash can roll back the last commits. The user's
  confirmations are human work, and the "sent" record of an upload batch must be on disk before
  the remote commit; one fsync per commit costs milliseconds at this app's write rate (a few
  commits a second at most). So FULL.
* **BEGIN IMMEDIATE** for every write: the write lock is taken up front, so two writers queue on
  ``busy_timeout`` instead of one failing with "database is locked" when it upgrades a read
  snapshot to a write.
* **One connection per thread** (``threading.local``), autocommit mode, short explicit
  transactions.
* **Files before rows**: a confirmed crop is written to ``training_data/crops/<sha>.png``
  atomically (temp file, fsync, rename, fsync of the folder) *before* the transaction that records
  it commits, so a committed annotation always has its crop. If the transaction fails the crop is
  removed again when this call created it; a kill -9 between the rename and the commit can leave
  an orphan crop file (harmless: content-addressed, reused by a later confirmation of the same
  crop, listed by :meth:`Store.orphan_crops`; never deleted automatically because the folder may
  also hold crops migrated from SETS-WARP).
* ``annotations.jsonl`` is a local mirror appended after commit; :meth:`Store.repair_mirror`
  regenerates it from the database when it is damaged or misses lines.

Sync idempotency (the sync worker is written elsewhere): :meth:`Store.unsynced` lists what to
upload, :meth:`Store.begin_batch` records the batch as *sent* (content-derived id) before the
remote commit, :meth:`Store.mark_synced` marks it done and raises the per-UTC-day counter in the
same transaction. A crash after the remote commit but before the mark leaves the batch open
(:meth:`Store.open_batches`); re-uploading it writes the same content-addressed paths, and
marking twice counts once.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from warpd.fsutil import write_atomic
from warpd.formats import (
    ANNOTATIONS_JSONL,
    MAX_LABEL_CHARS,
    Annotation,
    FormatError,
    format_utc,
    is_crop_sha,
    make_annotation,
    parse_annotation,
    parse_annotation_lines,
    sha256_hex,
    utc_date,
    utc_now,
    validate_label,
)
from warpd.paths import DataPaths
from warpd.slots import SCREEN_TYPES, SHIP_NAME, SHIP_TIER, SHIP_TYPE, TIERS, UnknownSlotError, normalize_slot

SCHEMA_VERSION = 1
DEFAULT_BUSY_TIMEOUT_MS = 10_000
DEFAULT_MAX_ATTEMPTS = 3
# A screen-type sample is a downscaled copy; anything larger is refused so a full screenshot can
# never end up in the training data (it would be uploaded).
SCREEN_SAMPLE_MAX_SIDE = 224
ITEM_CROP_SIZE = 64
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_TMP_MAX_AGE_S = 3600.0

SCREENSHOT_STATES = ("queued", "processing", "done", "failed")
PENDING_STATES = ("waiting", "confirmed", "skipped", "none")
PENDING_KINDS = ("item", "screen_type", "ship_type", "ship_tier")
_KIND_SLOT = {"ship_type": SHIP_TYPE, "ship_tier": SHIP_TIER}

# Well-known keys of the key/value area.
STATUS_KEY = "daemon_status"
LAST_ERROR_KEY = "last_error"
MODEL_VERSION_KEY = "model_version"
BUILD_TO_WRITE_KEY = "build_to_write"  # a ship whose build file lags its stored results (cleared once written)

Clock = Callable[[], dt.datetime]


class StoreError(RuntimeError):
    """A request the state cannot satisfy (unknown id, item already answered, newer schema)."""


# --------------------------------------------------------------------------------------------------
# schema
# --------------------------------------------------------------------------------------------------
# Each migration is a list of statements run in one transaction; never edit a released one, append.
MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        """CREATE TABLE screenshots (
            sha TEXT PRIMARY KEY,
            status TEXT NOT NULL CHECK (status IN ('queued', 'processing', 'done', 'failed')),
            result TEXT, error TEXT, screen_type TEXT, ship_key TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            first_seen TEXT NOT NULL, updated_at TEXT NOT NULL)""",
        "CREATE INDEX screenshots_status ON screenshots(status)",
        """CREATE TABLE screenshot_paths (
            path TEXT PRIMARY KEY,
            sha TEXT NOT NULL REFERENCES screenshots(sha),
            size INTEGER, mtime_ns INTEGER, seen_at TEXT NOT NULL)""",
        "CREATE INDEX screenshot_paths_sha ON screenshot_paths(sha)",
        """CREATE TABLE pending (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            screenshot_sha TEXT NOT NULL, file TEXT NOT NULL DEFAULT '',
            kind TEXT NOT NULL CHECK (kind IN ('item', 'screen_type', 'ship_type', 'ship_tier')),
            slot TEXT NOT NULL, idx INTEGER NOT NULL DEFAULT 0, bbox TEXT NOT NULL DEFAULT '',
            candidates TEXT NOT NULL DEFAULT '[]', ml_name TEXT NOT NULL DEFAULT '', ml_conf REAL,
            crop BLOB, created_at TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'waiting'
                CHECK (status IN ('waiting', 'confirmed', 'skipped', 'none')),
            answer TEXT NOT NULL DEFAULT '', answered_at TEXT,
            UNIQUE (screenshot_sha, kind, slot, idx, bbox))""",
        "CREATE INDEX pending_status ON pending(status, id)",
        """CREATE TABLE annotations (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            pending_id INTEGER UNIQUE REFERENCES pending(id),
            crop_sha TEXT NOT NULL, name TEXT NOT NULL, slot TEXT NOT NULL,
            record TEXT NOT NULL, confirmed_at TEXT NOT NULL)""",
        "CREATE INDEX annotations_crop ON annotations(crop_sha, id)",
        """CREATE TABLE screen_samples (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            pending_id INTEGER UNIQUE REFERENCES pending(id),
            sha TEXT NOT NULL, screen_type TEXT NOT NULL, confirmed_at TEXT NOT NULL)""",
        "CREATE INDEX screen_samples_sha ON screen_samples(sha, id)",
        # What the remote holds: per (kind, sha) the label last uploaded.
        """CREATE TABLE sync_items (
            kind TEXT NOT NULL, sha TEXT NOT NULL, label TEXT NOT NULL,
            batch_id TEXT NOT NULL, synced_at TEXT NOT NULL,
            PRIMARY KEY (kind, sha))""",
        """CREATE TABLE batches (
            batch_id TEXT PRIMARY KEY, day TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('sent', 'committed')),
            created_at TEXT NOT NULL, committed_at TEXT)""",
        """CREATE TABLE batch_items (
            batch_id TEXT NOT NULL REFERENCES batches(batch_id),
            kind TEXT NOT NULL, sha TEXT NOT NULL, label TEXT NOT NULL, ref_id INTEGER NOT NULL,
            done INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (batch_id, kind, sha))""",
        "CREATE TABLE upload_days (day TEXT PRIMARY KEY, n INTEGER NOT NULL)",
        "CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at TEXT NOT NULL)",
        """CREATE TABLE builds (
            ship_key TEXT NOT NULL, screen_type TEXT NOT NULL, screenshot_sha TEXT,
            taken_ns INTEGER, result TEXT NOT NULL, updated_at TEXT NOT NULL,
            PRIMARY KEY (ship_key, screen_type))""",
    ),
}


# --------------------------------------------------------------------------------------------------
# records
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Screenshot:
    """One screenshot content (by sha256) and everything known about it."""

    sha: str
    status: str
    paths: tuple[str, ...]
    result: dict[str, Any] | None
    error: str
    screen_type: str
    ship_key: str
    attempts: int
    first_seen: str
    updated_at: str


@dataclass(frozen=True)
class PendingItem:
    """A question for the user, as the daemon hands it over (see :meth:`Store.add_pending`)."""

    screenshot_sha: str
    slot: str = ""
    kind: str = "item"
    file: str = ""
    index: int = 0
    bbox: Sequence[int] | None = None
    candidates: Sequence[Sequence[Any]] = ()
    ml_name: str = ""
    ml_conf: float | None = None
    crop: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Pending:
    """A stored question: what was recognised, the crop, and the user's answer so far."""

    id: int
    screenshot_sha: str
    file: str
    kind: str
    slot: str
    index: int
    bbox: tuple[int, int, int, int] | None
    candidates: list[tuple[str, float]]
    ml_name: str
    ml_conf: float | None
    created_at: str
    status: str
    answer: str
    screen_type: str  # the screenshot's (recognised or confirmed) type: tells space from ground
    crop: bytes | None = field(default=None, repr=False)

    @property
    def crop_sha256(self) -> str:
        return sha256_hex(self.crop) if self.crop else ""

    def to_json(self) -> dict[str, Any]:
        """For ``warpd confirm --json``: everything but the crop bytes (their hash instead)."""
        return {"id": self.id, "kind": self.kind, "slot": self.slot, "index": self.index, "file": self.file,
                "screenshot_sha": self.screenshot_sha, "screen_type": self.screen_type,
                "bbox": list(self.bbox) if self.bbox else None,
                "candidates": [[n, s] for n, s in self.candidates], "ml_name": self.ml_name,
                "ml_conf": self.ml_conf, "created_at": self.created_at, "status": self.status,
                "crop_sha256": self.crop_sha256}


class Confirmed(NamedTuple):
    """What :meth:`Store.confirm` returns: the record, and the crop bytes for the session examples.

    The daemon hands ``crop_png`` (decode with cv2/PIL) and ``annotation.name``/``slot`` to the
    recogniser's session examples, so the very next screenshot benefits from the answer; the store
    does not import the recogniser (a CLI confirmation must not load models).
    """

    annotation: Annotation
    crop_png: bytes


@dataclass(frozen=True)
class ScreenSample:
    """A confirmed screen-type sample stored under ``screen_types/<TYPE>/<sha>.png``."""

    sha: str
    screen_type: str
    path: Path


@dataclass(frozen=True)
class SyncItem:
    """One thing to upload: a crop with its annotation line, or a screen-type sample."""

    kind: str  # "crop" | "screen"
    sha: str
    label: str  # the item name for a crop, the screen type for a screen sample
    path: Path  # the local file
    ref_id: int  # annotations.id or screen_samples.id
    annotation: Annotation | None = None

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.sha}:{self.label}"


@dataclass(frozen=True)
class Batch:
    """An upload batch recorded as sent; ``items`` still to be marked done."""

    batch_id: str
    day: str
    items: list[SyncItem]


# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------
def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR; ValueError when the bytes are not a PNG."""
    if not isinstance(data, (bytes, bytearray)) or len(data) < 24 or data[:8] != _PNG_MAGIC or data[12:16] != b"IHDR":
        raise ValueError("crop is not PNG data")
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def png_bytes(rgb: Any) -> bytes:
    """Encode an RGB array as PNG, deterministically (same pixels → same bytes → same sha)."""
    import cv2
    import numpy as np

    from warpd.preprocess import as_rgb

    ok, buf = cv2.imencode(".png", np.ascontiguousarray(as_rgb(rgb)[:, :, ::-1]),
                           [cv2.IMWRITE_PNG_COMPRESSION, 6])
    if not ok:  # pragma: no cover - cv2 fails only on impossible shapes
        raise ValueError("PNG encoding failed")
    return bytes(buf)


def item_crop_png(crop_rgb: Any) -> bytes:
    """The training-data crop of an icon: :func:`warpd.preprocess.canonical_crop` as PNG bytes."""
    from warpd.preprocess import canonical_crop

    return png_bytes(canonical_crop(crop_rgb))


def atomic_write(path: Path, data: bytes) -> bool:
    """Content-addressed files are written once: see :func:`warpd.fsutil.write_atomic`."""
    return write_atomic(path, data, skip_same=True)


def _check_sha(sha: str, what: str = "sha") -> str:
    """A content hash: 64 hex (sha256) or the predecessor's 32-hex cut; upper case is lowered."""
    value = sha.lower() if isinstance(sha, str) else sha
    if not is_crop_sha(value):
        raise ValueError(f"{what} {str(sha)[:70]!r} is not 32 or 64 hex characters")
    return value


def _clean_text(value: object) -> str:
    """A recognised name (OCR output may hold newlines or junk): valid label or ""."""
    if not value:
        return ""
    text = " ".join(str(value).split())[:MAX_LABEL_CHARS]
    try:
        return validate_label(text)
    except FormatError:
        return ""


def _candidates(value: Iterable[Sequence[Any]]) -> list[tuple[str, float]]:
    out = []
    for entry in value or ():
        name = _clean_text(entry[0])
        if name:
            out.append((name, float(entry[1]) if len(entry) > 1 and entry[1] is not None else 0.0))
    return out


def _bbox(value: Sequence[int] | None) -> tuple[int, int, int, int] | None:
    if value is None:
        return None
    x, y, w, h = (int(round(v)) for v in value)
    if x < 0 or y < 0 or w <= 0 or h <= 0:
        raise ValueError(f"bbox {[x, y, w, h]} has a negative origin or an empty size")
    return x, y, w, h


def scrub_ship_name(result: Mapping[str, Any]) -> dict[str, Any]:
    """A recognition result without any Ship Name text (only its bbox may be kept).

    The Ship Name is the player's own text: it is never stored. The recogniser should not emit it;
    this is the belt to that braces.
    """
    out = json.loads(json.dumps(result, default=str))
    ship = out.get("ship")
    if isinstance(ship, dict):
        for key in ("name", "ship_name", "name_text"):
            ship.pop(key, None)
    slots = out.get("slots")
    if isinstance(slots, list):
        for entry in slots:
            if isinstance(entry, dict) and _is_ship_name(entry.get("slot")):
                for key in ("item", "candidates", "text", "source"):
                    entry.pop(key, None)
    return out


def _is_ship_name(slot: object) -> bool:
    try:
        return isinstance(slot, str) and normalize_slot(slot) == SHIP_NAME
    except UnknownSlotError:
        return False


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


# --------------------------------------------------------------------------------------------------
# the store
# --------------------------------------------------------------------------------------------------
class Store:
    """The state database and the training-data files it vouches for.

    Thread-safe (one connection per thread) and multi-process safe (SQLite locking; the daemon,
    ``warpd confirm`` and ``warpd status`` may run at the same time).
    """

    def __init__(self, paths: DataPaths, *, clock: Clock = utc_now,
                 busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS, max_attempts: int = DEFAULT_MAX_ATTEMPTS,
                 db_path: Path | None = None):
        self.paths = paths
        self.db_path = Path(db_path) if db_path is not None else paths.state_db
        self.clock = clock
        self.busy_timeout_ms = int(busy_timeout_ms)
        self.max_attempts = int(max_attempts)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        self._migrate()

    # ------------------------------------------------------------ connections
    def _con(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = sqlite3.connect(self.db_path, timeout=self.busy_timeout_ms / 1000.0, isolation_level=None)
            con.row_factory = sqlite3.Row
            con.execute(f"PRAGMA busy_timeout = {self.busy_timeout_ms}")
            con.execute("PRAGMA synchronous = FULL")
            con.execute("PRAGMA foreign_keys = ON")
            self._local.con = con
            with self._all_lock:
                self._all.append(con)
        return con

    def close(self) -> None:
        """Close every thread's connection (the last close checkpoints the WAL)."""
        with self._all_lock:
            cons, self._all = self._all, []
        for con in cons:
            try:
                con.close()
            except sqlite3.ProgrammingError:  # pragma: no cover - closed from its thread already
                pass
        self._local = threading.local()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One short write transaction; the write lock is taken at BEGIN (see module doc)."""
        con = self._con()
        con.execute("BEGIN IMMEDIATE")
        try:
            yield con
            con.execute("COMMIT")
        except BaseException:
            if con.in_transaction:  # also when COMMIT itself failed (disk full, I/O error)
                con.execute("ROLLBACK")
            raise

    def _now(self) -> str:
        return format_utc(self.clock())

    def _migrate(self) -> None:
        con = self._con()
        mode = con.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":  # pragma: no cover - only on filesystems without shared memory
            raise StoreError(f"{self.db_path}: cannot switch to WAL mode (got {mode})")
        if self._stored_version(con) == SCHEMA_VERSION:
            return  # the usual case: no write lock, so `warpd status` never waits for the daemon
        with self._write() as con:
            con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = con.execute("SELECT version FROM schema_version").fetchone()
            current = row[0] if row else 0
            if current > SCHEMA_VERSION:
                raise StoreError(f"{self.db_path} was written by a newer warpd (schema {current}, "
                                 f"this one knows {SCHEMA_VERSION}); upgrade warpd")
            for version in sorted(v for v in MIGRATIONS if v > current):
                for statement in MIGRATIONS[version]:
                    con.execute(statement)
            if row is None:
                con.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
            elif current < SCHEMA_VERSION:
                con.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))

    @staticmethod
    def _stored_version(con: sqlite3.Connection) -> int | None:
        try:
            row = con.execute("SELECT version FROM schema_version").fetchone()
        except sqlite3.OperationalError:  # no such table: a new database
            return None
        return int(row[0]) if row else None

    def schema_version(self) -> int:
        return int(self._con().execute("SELECT version FROM schema_version").fetchone()[0])

    def integrity_check(self) -> str:
        """``PRAGMA integrity_check``: "ok" or the problems SQLite found."""
        return "; ".join(r[0] for r in self._con().execute("PRAGMA integrity_check").fetchall())

    # ------------------------------------------------------------ screenshots
    def known(self, path: str | os.PathLike[str], stat: os.stat_result) -> bool:
        """True when this path was seen with the same size and mtime: skip it without reading it."""
        row = self._con().execute("SELECT size, mtime_ns FROM screenshot_paths WHERE path = ?",
                                  (_path_key(path),)).fetchone()
        return row is not None and row["size"] == stat.st_size and row["mtime_ns"] == stat.st_mtime_ns

    def claim(self, sha: str, path: str | os.PathLike[str], stat: os.stat_result | None = None) -> bool:
        """Record that ``path`` holds content ``sha``; True only the first time the content is seen.

        Atomic across threads and processes: of two claims of the same content exactly one wins and
        queues the screenshot. The path is remembered either way (for :meth:`known`).
        """
        sha = _check_sha(sha)
        now = self._now()
        size = stat.st_size if stat is not None else None
        mtime = stat.st_mtime_ns if stat is not None else None
        with self._write() as con:
            cur = con.execute("INSERT OR IGNORE INTO screenshots (sha, status, first_seen, updated_at) "
                              "VALUES (?, 'queued', ?, ?)", (sha, now, now))
            con.execute("INSERT INTO screenshot_paths (path, sha, size, mtime_ns, seen_at) VALUES (?, ?, ?, ?, ?) "
                        "ON CONFLICT(path) DO UPDATE SET sha = excluded.sha, size = excluded.size, "
                        "mtime_ns = excluded.mtime_ns, seen_at = excluded.seen_at",
                        (_path_key(path), sha, size, mtime, now))
            return cur.rowcount == 1

    def start(self, sha: str) -> bool:
        """Mark a queued screenshot as being processed (counts the attempt); False if not queued."""
        with self._write() as con:
            cur = con.execute("UPDATE screenshots SET status = 'processing', attempts = attempts + 1, "
                              "updated_at = ? WHERE sha = ? AND status = 'queued'", (self._now(), _check_sha(sha)))
            return cur.rowcount == 1

    def finish(self, sha: str, result: Mapping[str, Any], *, ship_key: str | None = None,
               pending: Sequence[PendingItem] = (), taken_ns: int | None = None) -> list[int]:
        """Store a screenshot's result and, in the same transaction, its questions and build entry.

        The build entry also marks the ship's build file as to be written (BUILD_TO_WRITE_KEY):
        a process killed before it rewrote the file rewrites it on its next start.

        Why one transaction: were the questions added after the commit, a crash in between would
        lose them (the screenshot is done and will not be processed again). Re-finishing (a
        reprocess) does not duplicate questions: they are unique per (screenshot, kind, slot, index, bbox).
        Returns the pending ids (new or already present).
        """
        sha = _check_sha(sha)
        clean = scrub_ship_name(result)
        screen_type = str(clean.get("screen_type") or "")
        rows = [self._pending_row(p) for p in pending]
        now = self._now()
        with self._write() as con:
            self._require_screenshot(con, sha)
            con.execute("UPDATE screenshots SET status = 'done', result = ?, error = NULL, screen_type = ?, "
                        "ship_key = ?, updated_at = ? WHERE sha = ?",
                        (_json(clean), screen_type, ship_key or "", now, sha))
            ids = [self._insert_pending(con, row, now) for row in rows]
            if ship_key:
                self._put_build(con, ship_key, screen_type or "UNKNOWN", clean, sha, taken_ns, now)
                self._set_state(con, BUILD_TO_WRITE_KEY, ship_key, now)
            return ids

    def fail(self, sha: str, error: str) -> None:
        """Give a screenshot up with the reason (also kept as the daemon's last error)."""
        sha = _check_sha(sha)
        now = self._now()
        text = str(error)[:2000]
        with self._write() as con:
            self._require_screenshot(con, sha)
            con.execute("UPDATE screenshots SET status = 'failed', error = ?, updated_at = ? WHERE sha = ?",
                        (text, now, sha))
            self._set_state(con, LAST_ERROR_KEY, {"sha": sha, "error": text, "at": now}, now)

    def queued(self, limit: int | None = None) -> list[Screenshot]:
        """Screenshots waiting for recognition, oldest first."""
        return self._screenshots("status = 'queued'", (), limit)

    def resume(self) -> list[Screenshot]:
        """After a restart: screenshots a killed process left queued or processing, to process again.

        One that was already interrupted ``max_attempts`` times is marked failed instead: a file
        that crashes the process (a decoder bug) must not crash-loop the daemon.
        """
        now = self._now()
        with self._write() as con:
            con.execute("UPDATE screenshots SET status = 'failed', updated_at = ?, "
                        "error = 'processing was interrupted ' || attempts || ' times' "
                        "WHERE status = 'processing' AND attempts >= ?", (now, self.max_attempts))
            con.execute("UPDATE screenshots SET status = 'queued', updated_at = ? WHERE status = 'processing'",
                        (now,))
        return self.queued()

    def screenshot(self, sha: str) -> Screenshot | None:
        found = self._screenshots("sha = ?", (_check_sha(sha),), 1)
        return found[0] if found else None

    def screenshot_counts(self) -> dict[str, int]:
        """Screenshots per status (every status present, zero when none)."""
        return self._status_counts("screenshots", SCREENSHOT_STATES)

    def _status_counts(self, table: str, states: Sequence[str]) -> dict[str, int]:
        counts = dict.fromkeys(states, 0)
        for row in self._con().execute(f"SELECT status, COUNT(*) FROM {table} GROUP BY status"):
            counts[row[0]] = row[1]
        return counts

    def _screenshots(self, where: str, params: tuple[Any, ...], limit: int | None) -> list[Screenshot]:
        sql = f"SELECT * FROM screenshots WHERE {where} ORDER BY first_seen, rowid"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        con = self._con()
        out = []
        for row in con.execute(sql, params).fetchall():
            paths = tuple(r[0] for r in con.execute(
                "SELECT path FROM screenshot_paths WHERE sha = ? ORDER BY seen_at, path", (row["sha"],)))
            result = json.loads(row["result"]) if row["result"] else None
            out.append(Screenshot(row["sha"], row["status"], paths, result, row["error"] or "",
                                  row["screen_type"] or "", row["ship_key"] or "", row["attempts"],
                                  row["first_seen"], row["updated_at"]))
        return out

    @staticmethod
    def _require_screenshot(con: sqlite3.Connection, sha: str) -> None:
        if con.execute("SELECT 1 FROM screenshots WHERE sha = ?", (sha,)).fetchone() is None:
            raise StoreError(f"screenshot {sha[:12]} was never claimed")

    # ------------------------------------------------------------ pending confirmations
    def add_pending(self, screenshot_sha: str, slot: str = "", *, kind: str = "item", file: str = "",
                    index: int = 0, bbox: Sequence[int] | None = None,
                    candidates: Sequence[Sequence[Any]] = (), ml_name: str = "", ml_conf: float | None = None,
                    crop: bytes | None = None) -> int:
        """Queue one question for the user; returns its id (the existing id if already queued).

        ``kind``: "item" (``crop`` = the 64x64 PNG of :func:`item_crop_png`), "ship_type" /
        "ship_tier" (``crop`` = the text-line PNG), "screen_type" (``crop`` = the 224-px sample with
        the ship name blacked out, or given later to :meth:`confirm_screen_type`). The Ship Name
        is refused: it is never cropped or stored.
        """
        row = self._pending_row(PendingItem(screenshot_sha, slot, kind, file, index, bbox, candidates, ml_name,
                                            ml_conf, crop))
        now = self._now()
        with self._write() as con:
            return self._insert_pending(con, row, now)

    def _pending_row(self, item: PendingItem) -> dict[str, Any]:
        """Validate a question before any transaction starts."""
        if item.kind not in PENDING_KINDS:
            raise ValueError(f"kind {item.kind!r} is not one of {PENDING_KINDS}")
        slot = self._pending_slot(item)
        crop = bytes(item.crop) if item.crop is not None else None
        if crop is not None:
            width, height = png_size(crop)
            if item.kind == "item" and (width, height) != (ITEM_CROP_SIZE, ITEM_CROP_SIZE):
                raise ValueError(f"an item crop must be {ITEM_CROP_SIZE}x{ITEM_CROP_SIZE}, got {width}x{height}")
            if item.kind == "screen_type" and max(width, height) > SCREEN_SAMPLE_MAX_SIDE:
                raise ValueError(f"a screen sample is at most {SCREEN_SAMPLE_MAX_SIDE} px a side, got {width}x{height}")
        elif item.kind != "screen_type":
            raise ValueError(f"a {item.kind} question needs its crop")
        return {"screenshot_sha": _check_sha(item.screenshot_sha, "screenshot sha"), "file": str(item.file or ""),
                "kind": item.kind, "slot": slot, "idx": int(item.index),
                "bbox": _json(list(b)) if (b := _bbox(item.bbox)) else "",
                "candidates": _json([[n, s] for n, s in _candidates(item.candidates)]),
                "ml_name": _clean_text(item.ml_name),
                "ml_conf": float(item.ml_conf) if item.ml_conf is not None else None, "crop": crop}

    @staticmethod
    def _pending_slot(item: PendingItem) -> str:
        if item.kind == "screen_type":
            return ""
        try:
            slot = normalize_slot(item.slot or _KIND_SLOT.get(item.kind, ""))
        except UnknownSlotError as exc:
            raise ValueError(str(exc)) from None
        if slot == SHIP_NAME:
            raise ValueError("the Ship Name is never cropped or stored")
        expected = _KIND_SLOT.get(item.kind)
        if expected and slot != expected:
            raise ValueError(f"a {item.kind} question belongs to slot {expected!r}, not {slot!r}")
        if item.kind == "item" and slot in (SHIP_TYPE, SHIP_TIER):
            raise ValueError(f"slot {slot!r} takes kind {'ship_type' if slot == SHIP_TYPE else 'ship_tier'}")
        return slot

    @staticmethod
    def _insert_pending(con: sqlite3.Connection, row: dict[str, Any], now: str) -> int:
        con.execute("INSERT OR IGNORE INTO pending (screenshot_sha, file, kind, slot, idx, bbox, candidates, ml_name, "
                    "ml_conf, crop, created_at) VALUES (:screenshot_sha, :file, :kind, :slot, :idx, :bbox, "
                    ":candidates, :ml_name, :ml_conf, :crop, :now)", {**row, "now": now})
        # bbox is part of the key: two boff seats of one profession both have a "Boff Tactical" index 0
        found = con.execute("SELECT id FROM pending WHERE screenshot_sha = ? AND kind = ? AND slot = ? AND idx = ? "
                            "AND bbox = ?", (row["screenshot_sha"], row["kind"], row["slot"], row["idx"],
                                             row["bbox"])).fetchone()
        return int(found[0])

    def waiting(self, limit: int | None = None) -> list[Pending]:
        """Questions not answered yet, oldest first."""
        return self._pendings("p.status = 'waiting'", (), limit)

    def pending(self, pending_id: int) -> Pending | None:
        found = self._pendings("p.id = ?", (int(pending_id),), 1)
        return found[0] if found else None

    def counts(self) -> dict[str, int]:
        """Questions per status (every status present, zero when none)."""
        return self._status_counts("pending", PENDING_STATES)

    def _pendings(self, where: str, params: tuple[Any, ...], limit: int | None,
                  con: sqlite3.Connection | None = None) -> list[Pending]:
        sql = ("SELECT p.*, COALESCE(s.screen_type, '') AS screen_type FROM pending p "
               f"LEFT JOIN screenshots s ON s.sha = p.screenshot_sha WHERE {where} ORDER BY p.id")
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        rows = (con or self._con()).execute(sql, params).fetchall()
        return [Pending(r["id"], r["screenshot_sha"], r["file"], r["kind"], r["slot"], r["idx"],
                        _bbox(json.loads(r["bbox"])) if r["bbox"] else None,
                        [(n, float(s)) for n, s in json.loads(r["candidates"])], r["ml_name"], r["ml_conf"],
                        r["created_at"], r["status"], r["answer"], r["screen_type"],
                        bytes(r["crop"]) if r["crop"] is not None else None) for r in rows]

    # ------------------------------------------------------------ answers
    def confirm(self, pending_id: int, name: str, *, when: dt.datetime | None = None) -> Confirmed:
        """The user says item ``pending_id`` is ``name``: record the annotation and its crop.

        The crop file is written (atomically) before the transaction that marks the question and
        inserts the annotation commits; the local annotations.jsonl mirror is appended after. A
        question already confirmed with the same name returns the same record (idempotent); with
        another name it is an error (the first answer may be uploaded already).
        """
        return self._answer(pending_id, name, "confirmed", when)

    def none_of_these(self, pending_id: int, name: str | None = None, *,
                      when: dt.datetime | None = None) -> Confirmed | None:
        """None of the candidates is right. The question keeps its candidates (the record that they
        were wrong); with ``name`` the right answer is also recorded as training data."""
        if name:
            return self._answer(pending_id, name, "none", when)
        self._set_answer_status(pending_id, "none")
        return None

    def skip(self, pending_id: int) -> None:
        """Not now / cannot tell: the question leaves the waiting list without training data."""
        self._set_answer_status(pending_id, "skipped")

    def _set_answer_status(self, pending_id: int, status: str) -> None:
        with self._write() as con:
            row = self._pending_for_answer(con, pending_id)
            if row["status"] == "confirmed" or self._has_annotation(con, pending_id):
                raise StoreError(f"question {pending_id} is already answered ({row['answer']!r})")
            con.execute("UPDATE pending SET status = ?, answered_at = ? WHERE id = ?",
                        (status, self._now(), pending_id))

    def _answer(self, pending_id: int, name: str, status: str, when: dt.datetime | None) -> Confirmed:
        item = self.pending(pending_id)
        if item is None:
            raise StoreError(f"no question with id {pending_id}")
        if item.kind == "screen_type":
            raise StoreError(f"question {pending_id} is a screen type: use confirm_screen_type")
        if item.crop is None:  # pragma: no cover - refused at add_pending
            raise StoreError(f"question {pending_id} has no crop")
        name = validate_label(name)
        if item.kind == "ship_tier" and name not in TIERS:
            raise ValueError(f"{name!r} is not a ship tier ({', '.join(TIERS)})")
        when = when or self.clock()
        crop_sha = sha256_hex(item.crop)
        annotation = make_annotation(crop_sha, name, item.slot, item.ml_name if item.ml_name != name else "",
                                     item.bbox, when)
        crop_path = self.paths.crops / f"{crop_sha}.png"
        created = atomic_write(crop_path, item.crop)
        try:
            with self._write() as con:
                existing = self._existing_answer(con, pending_id, name)
                if existing is not None:
                    return Confirmed(existing, item.crop)
                con.execute("UPDATE pending SET status = ?, answer = ?, answered_at = ? WHERE id = ?",
                            (status, name, annotation.confirmed_at, pending_id))
                self._insert_annotation(con, annotation, pending_id)
                if not crop_path.is_file():  # a failed confirmation of the same crop removed it meanwhile
                    atomic_write(crop_path, item.crop)
        except BaseException:
            if created:
                self._discard_file(crop_path, "SELECT 1 FROM annotations WHERE crop_sha = ?", (crop_sha,))
            raise
        self._append_mirror(annotation)
        return Confirmed(annotation, item.crop)

    def _existing_answer(self, con: sqlite3.Connection, pending_id: int, name: str) -> Annotation | None:
        """Inside the write lock: the answer another caller committed first, or None."""
        row = self._pending_for_answer(con, pending_id)
        done = con.execute("SELECT record FROM annotations WHERE pending_id = ?", (pending_id,)).fetchone()
        if done is None:
            if row["status"] == "confirmed":  # pragma: no cover - confirmed rows always have a record
                raise StoreError(f"question {pending_id} is confirmed without a record")
            return None
        annotation = parse_annotation(json.loads(done[0]))
        if annotation.name != name:
            raise StoreError(f"question {pending_id} is already answered as {annotation.name!r}")
        return annotation

    @staticmethod
    def _pending_for_answer(con: sqlite3.Connection, pending_id: int) -> sqlite3.Row:
        row = con.execute("SELECT status, answer FROM pending WHERE id = ?", (int(pending_id),)).fetchone()
        if row is None:
            raise StoreError(f"no question with id {pending_id}")
        return row

    @staticmethod
    def _has_annotation(con: sqlite3.Connection, pending_id: int) -> bool:
        return con.execute("SELECT 1 FROM annotations WHERE pending_id = ?", (pending_id,)).fetchone() is not None

    def _insert_annotation(self, con: sqlite3.Connection, annotation: Annotation, pending_id: int | None) -> int:
        cur = con.execute("INSERT INTO annotations (pending_id, crop_sha, name, slot, record, confirmed_at) "
                          "VALUES (?, ?, ?, ?, ?, ?)",
                          (pending_id, annotation.crop_sha256, annotation.name, annotation.slot,
                           _json(annotation.to_json()), annotation.confirmed_at))
        return int(cur.lastrowid)

    def _discard_file(self, path: Path, referenced_sql: str, params: tuple[Any, ...]) -> None:
        """Remove a file this call wrote for a transaction that failed, unless a record uses it.

        Checked and removed under the write lock, and a confirming transaction re-checks its file
        before commit, so a concurrent confirmation of the same crop never commits without it.
        When the database itself fails here, the file stays (an orphan, see :meth:`orphan_crops`).
        """
        try:
            with self._write() as con:
                if con.execute(referenced_sql, params).fetchone() is None:
                    path.unlink(missing_ok=True)
        except sqlite3.Error:
            pass

    def add_annotation(self, annotation: Annotation, crop_png: bytes) -> int:
        """Record an annotation that came without a question (e.g. imported from SETS-WARP).

        The crop must hash to ``annotation.crop_sha256`` (the full sha256, or its first 32 hex
        characters as the predecessor cut it); the file is stored under that name.
        """
        annotation = parse_annotation(annotation.to_json())  # re-validate (Ship Name refused there)
        png_size(crop_png)
        digest = sha256_hex(crop_png)
        if digest[:len(annotation.crop_sha256)] != annotation.crop_sha256:
            raise ValueError(f"crop bytes hash to {digest[:12]}..., not {annotation.crop_sha256[:12]}...")
        crop_path = self.paths.crops / f"{annotation.crop_sha256}.png"
        atomic_write(crop_path, crop_png)
        with self._write() as con:
            new_id = self._insert_annotation(con, annotation, None)
        self._append_mirror(annotation)
        return new_id

    def confirm_screen_type(self, pending_id: int, screen_type: str, png: bytes | None = None) -> ScreenSample:
        """The user says the screenshot of question ``pending_id`` is ``screen_type``.

        Stores the sample (``png``, else the bytes given at :meth:`add_pending`: a 224-px copy
        with the ship name blacked out, made by the caller) under
        ``training_data/screen_types/<TYPE>/<sha>.png`` before the commit, and records the type
        on the screenshot so the daemon can recognise it again with the right layout.
        """
        if screen_type not in SCREEN_TYPES:
            raise ValueError(f"{screen_type!r} is not a screen type ({', '.join(SCREEN_TYPES)})")
        item = self.pending(pending_id)
        if item is None:
            raise StoreError(f"no question with id {pending_id}")
        if item.kind != "screen_type":
            raise StoreError(f"question {pending_id} is a {item.kind}, not a screen type")
        data = bytes(png) if png is not None else item.crop
        if data is None:
            raise ValueError("no screen sample: pass the PNG bytes")
        width, height = png_size(data)
        if max(width, height) > SCREEN_SAMPLE_MAX_SIDE:
            raise ValueError(f"a screen sample is at most {SCREEN_SAMPLE_MAX_SIDE} px a side, got {width}x{height}")
        sha = sha256_hex(data)
        path = self.paths.screen_types / screen_type / f"{sha}.png"
        created = atomic_write(path, data)
        now = self._now()
        try:
            with self._write() as con:
                self._pending_for_answer(con, pending_id)
                done = con.execute("SELECT screen_type, sha FROM screen_samples WHERE pending_id = ?",
                                   (pending_id,)).fetchone()
                if done is not None:
                    if done[0] != screen_type:
                        raise StoreError(f"question {pending_id} is already answered as {done[0]!r}")
                    return ScreenSample(done[1], done[0], self.paths.screen_types / done[0] / f"{done[1]}.png")
                con.execute("UPDATE pending SET status = 'confirmed', answer = ?, answered_at = ? WHERE id = ?",
                            (screen_type, now, pending_id))
                con.execute("INSERT INTO screen_samples (pending_id, sha, screen_type, confirmed_at) "
                            "VALUES (?, ?, ?, ?)", (pending_id, sha, screen_type, now))
                con.execute("UPDATE screenshots SET screen_type = ?, updated_at = ? WHERE sha = ?",
                            (screen_type, now, item.screenshot_sha))
                if not path.is_file():
                    atomic_write(path, data)
        except BaseException:
            if created:
                self._discard_file(path, "SELECT 1 FROM screen_samples WHERE sha = ? AND screen_type = ?",
                                   (sha, screen_type))
            raise
        return ScreenSample(sha, screen_type, path)

    def confirmed_name(self, crop_sha: str) -> str | None:
        """The name the user last gave this exact crop, if any (lets the daemon skip asking again)."""
        row = self._con().execute("SELECT name FROM annotations WHERE crop_sha = ? ORDER BY id DESC LIMIT 1",
                                  (_check_sha(crop_sha),)).fetchone()
        return row[0] if row else None

    def annotations(self, after_id: int = 0) -> list[tuple[int, Annotation]]:
        """Annotations with an id above ``after_id``, in order.

        The daemon polls this to feed confirmations made by ``warpd confirm`` in another process
        to its session examples (read the crop from ``paths.crops``).
        """
        rows = self._con().execute("SELECT id, record FROM annotations WHERE id > ? ORDER BY id",
                                   (int(after_id),)).fetchall()
        return [(r[0], parse_annotation(json.loads(r[1]))) for r in rows]

    def answers_after(self, annotation_id: int) -> list[tuple[int, Pending, Annotation]]:
        """Answered questions whose annotation id is above ``annotation_id``, in order.

        The running daemon applies answers given with ``warpd confirm`` in another process: the
        stored result and the ship's build follow, and the crop feeds its session examples.
        Imported annotations (no question) are not listed.
        """
        rows = self._con().execute("SELECT id, pending_id, record FROM annotations WHERE id > ? "
                                   "AND pending_id IS NOT NULL ORDER BY id", (int(annotation_id),)).fetchall()
        out = []
        for row in rows:
            item = self.pending(int(row["pending_id"]))
            if item is not None:
                out.append((int(row["id"]), item, parse_annotation(json.loads(row["record"]))))
        return out

    def last_annotation_id(self) -> int:
        row = self._con().execute("SELECT MAX(id) FROM annotations").fetchone()
        return int(row[0] or 0)

    # ------------------------------------------------------------ local files
    @property
    def mirror_path(self) -> Path:
        return self.paths.training_data / ANNOTATIONS_JSONL

    def _append_mirror(self, annotation: Annotation) -> None:
        """Append to the local annotations.jsonl (a mirror: :meth:`repair_mirror` rebuilds it)."""
        self.mirror_path.parent.mkdir(parents=True, exist_ok=True)
        line = _json(annotation.to_json()) + "\n"
        with open(self.mirror_path, "a", encoding="utf-8") as fh:
            fh.write(line)

    def repair_mirror(self) -> bool:
        """Rewrite annotations.jsonl from the database when a line is damaged or missing.

        Returns True when it was rewritten. Called at daemon start; cheap (one read of the file).
        """
        rows = self._con().execute("SELECT record FROM annotations ORDER BY id").fetchall()
        try:
            parsed = parse_annotation_lines(self.mirror_path.read_bytes())
            healthy = not parsed.rejected and len(parsed.records) == len(rows)
        except FileNotFoundError:
            healthy = not rows
        if healthy:
            return False
        text = "".join(_json(parse_annotation(json.loads(r[0])).to_json()) + "\n" for r in rows)
        atomic_write(self.mirror_path, text.encode("utf-8"))
        return True

    def orphan_crops(self) -> list[Path]:
        """Crop files no annotation refers to (a kill -9 between file and commit; migrated crops)."""
        if not self.paths.crops.is_dir():
            return []
        known = {r[0] for r in self._con().execute("SELECT DISTINCT crop_sha FROM annotations")}
        return sorted(p for p in self.paths.crops.glob("*.png") if p.stem not in known)

    def sweep_temp_files(self, max_age_s: float = _TMP_MAX_AGE_S) -> int:
        """Remove temp files a killed writer left (older than ``max_age_s``: not someone's live write)."""
        removed = 0
        now = time.time()
        for folder in (self.paths.crops, self.paths.screen_types, self.paths.training_data):
            if not folder.is_dir():
                continue
            for tmp in folder.rglob(".*.tmp"):
                try:
                    if now - tmp.stat().st_mtime > max_age_s:
                        tmp.unlink()
                        removed += 1
                except FileNotFoundError:
                    continue
        return removed

    # ------------------------------------------------------------ upload bookkeeping
    def unsynced(self, limit: int | None = None) -> list[SyncItem]:
        """What the sync worker should upload next, oldest first, at most ``limit`` items.

        Crops are deduplicated by hash: the same icon confirmed from several screenshots is one
        item (its latest name); a crop already uploaded under the same name is not listed again,
        under a new name it is (a later line of an install overwrites its vote). Items in an open
        (sent, not yet marked) batch are left out. Items whose local file vanished are skipped.
        """
        out: list[SyncItem] = []
        for kind, table, columns, sha, label, make in (
                ("crop", "annotations", "id, crop_sha, name, record", "crop_sha", "name", self._crop_item),
                ("screen", "screen_samples", "id, sha, screen_type", "sha", "screen_type", self._screen_item)):
            for row in self._con().execute(_UNSYNCED_SQL.format(columns=columns, table=table, sha=sha, label=label),
                                           (kind, kind)):
                if limit is not None and len(out) >= limit:
                    return out
                item = make(row)
                if item.path.is_file():
                    out.append(item)
        return out

    def _crop_item(self, row: sqlite3.Row) -> SyncItem:
        annotation = parse_annotation(json.loads(row["record"]))
        return SyncItem("crop", row["crop_sha"], row["name"], self.paths.crops / f"{row['crop_sha']}.png",
                        row["id"], annotation)

    def _screen_item(self, row: sqlite3.Row) -> SyncItem:
        return SyncItem("screen", row["sha"], row["screen_type"],
                        self.paths.screen_types / row["screen_type"] / f"{row['sha']}.png", row["id"])

    @staticmethod
    def batch_id_for(items: Iterable[SyncItem]) -> str:
        """A batch id derived from its content: the same items give the same id (and remote path)."""
        keys = sorted(item.key for item in items)
        return sha256_hex("\n".join(keys).encode("utf-8"))[:32]

    def begin_batch(self, items: Sequence[SyncItem], day: str | None = None) -> Batch:
        """Record ``items`` as sent in a batch, BEFORE the remote commit; returns the batch.

        The counter is not raised here: only :meth:`mark_synced` counts, exactly once per item.
        ``day`` (default: today, UTC) is the day the uploads will count against.
        """
        if not items:
            raise ValueError("an upload batch needs at least one item")
        batch_id = self.batch_id_for(items)
        day = day or utc_date(self.clock())
        with self._write() as con:
            con.execute("INSERT OR IGNORE INTO batches (batch_id, day, state, created_at) VALUES (?, ?, 'sent', ?)",
                        (batch_id, day, self._now()))
            for item in items:
                con.execute("INSERT OR IGNORE INTO batch_items (batch_id, kind, sha, label, ref_id) "
                            "VALUES (?, ?, ?, ?, ?)", (batch_id, item.kind, item.sha, item.label, item.ref_id))
            stored_day = con.execute("SELECT day FROM batches WHERE batch_id = ?", (batch_id,)).fetchone()[0]
        return Batch(batch_id, stored_day, list(items))

    def open_batches(self) -> list[Batch]:
        """Batches recorded as sent but not marked: after a crash, re-upload (idempotent) and mark."""
        con = self._con()
        out = []
        for batch in con.execute("SELECT batch_id, day FROM batches WHERE state = 'sent' ORDER BY created_at"):
            items = []
            for row in con.execute("SELECT kind, sha, label, ref_id FROM batch_items WHERE batch_id = ? AND done = 0 "
                                   "ORDER BY rowid", (batch[0],)).fetchall():
                items.append(self._batch_item(con, row))
            out.append(Batch(batch[0], batch[1], items))
        return out

    def _batch_item(self, con: sqlite3.Connection, row: sqlite3.Row) -> SyncItem:
        if row["kind"] == "crop":
            rec = con.execute("SELECT id, crop_sha, name, record FROM annotations WHERE id = ?",
                              (row["ref_id"],)).fetchone()
            return self._crop_item(rec)
        rec = con.execute("SELECT id, sha, screen_type FROM screen_samples WHERE id = ?", (row["ref_id"],)).fetchone()
        return self._screen_item(rec)

    def abort_batch(self, batch_id: str) -> int:
        """Forget a sent batch whose remote commit definitely failed: its items become unsynced."""
        with self._write() as con:
            n = con.execute("DELETE FROM batch_items WHERE batch_id = ? AND done = 0", (batch_id,)).rowcount
            if con.execute("SELECT 1 FROM batch_items WHERE batch_id = ?", (batch_id,)).fetchone() is None:
                con.execute("DELETE FROM batches WHERE batch_id = ?", (batch_id,))
            else:
                con.execute("UPDATE batches SET state = 'committed', committed_at = ? WHERE batch_id = ?",
                            (self._now(), batch_id))
            return n

    def mark_synced(self, shas: Iterable[str] | None, batch_id: str, *, day: str | None = None) -> int:
        """Mark items of ``batch_id`` as uploaded and count them for the day, in one transaction.

        ``shas=None`` marks the whole batch. A batch never begun (no :meth:`begin_batch`) is made
        from the currently unsynced items with those hashes. Idempotent: an item already marked is
        not counted again. Returns how many items were newly marked (= added to the day's count).
        """
        wanted = None if shas is None else {_check_sha(s) for s in shas}
        now = self._now()
        if wanted is not None and self._con().execute("SELECT 1 FROM batches WHERE batch_id = ?",
                                                      (batch_id,)).fetchone() is None:
            items = [i for i in self.unsynced() if i.sha in wanted]
            if not items:
                return 0
            self._begin_named(batch_id, items, day or utc_date(self.clock()))
        with self._write() as con:
            batch = con.execute("SELECT day FROM batches WHERE batch_id = ?", (batch_id,)).fetchone()
            if batch is None:
                raise StoreError(f"no upload batch {batch_id}")
            rows = con.execute("SELECT kind, sha, label FROM batch_items WHERE batch_id = ? AND done = 0",
                               (batch_id,)).fetchall()
            marked = 0
            for row in rows:
                if wanted is not None and row["sha"] not in wanted:
                    continue
                con.execute("UPDATE batch_items SET done = 1 WHERE batch_id = ? AND kind = ? AND sha = ?",
                            (batch_id, row["kind"], row["sha"]))
                con.execute("INSERT INTO sync_items (kind, sha, label, batch_id, synced_at) VALUES (?, ?, ?, ?, ?) "
                            "ON CONFLICT(kind, sha) DO UPDATE SET label = excluded.label, "
                            "batch_id = excluded.batch_id, synced_at = excluded.synced_at",
                            (row["kind"], row["sha"], row["label"], batch_id, now))
                marked += 1
            if con.execute("SELECT 1 FROM batch_items WHERE batch_id = ? AND done = 0", (batch_id,)).fetchone() is None:
                con.execute("UPDATE batches SET state = 'committed', committed_at = ? WHERE batch_id = ?",
                            (now, batch_id))
            if marked:
                self._add_uploads(con, day or batch[0], marked)
            return marked

    def _begin_named(self, batch_id: str, items: Sequence[SyncItem], day: str) -> None:
        with self._write() as con:
            con.execute("INSERT OR IGNORE INTO batches (batch_id, day, state, created_at) VALUES (?, ?, 'sent', ?)",
                        (batch_id, day, self._now()))
            for item in items:
                con.execute("INSERT OR IGNORE INTO batch_items (batch_id, kind, sha, label, ref_id) "
                            "VALUES (?, ?, ?, ?, ?)", (batch_id, item.kind, item.sha, item.label, item.ref_id))

    def is_synced(self, kind: str, sha: str) -> str | None:
        """The label the remote holds for this crop/screen sha (None if never uploaded)."""
        row = self._con().execute("SELECT label FROM sync_items WHERE kind = ? AND sha = ?",
                                  (kind, _check_sha(sha))).fetchone()
        return row[0] if row else None

    def uploads_on(self, day: str | dt.datetime | None = None) -> int:
        """Uploads counted on a UTC day (``YYYY-MM-DD`` or a datetime; default today)."""
        key = self._day(day)
        row = self._con().execute("SELECT n FROM upload_days WHERE day = ?", (key,)).fetchone()
        return int(row[0]) if row else 0

    def add_uploads(self, day: str | dt.datetime | None, n: int) -> int:
        """Add ``n`` to a day's upload count; returns the new count."""
        with self._write() as con:
            return self._add_uploads(con, self._day(day), n)

    def _add_uploads(self, con: sqlite3.Connection, day: str, n: int) -> int:
        con.execute("INSERT INTO upload_days (day, n) VALUES (?, ?) ON CONFLICT(day) DO UPDATE SET n = n + excluded.n",
                    (day, int(n)))
        return int(con.execute("SELECT n FROM upload_days WHERE day = ?", (day,)).fetchone()[0])

    def _day(self, day: str | dt.datetime | None) -> str:
        if day is None:
            return utc_date(self.clock())
        if isinstance(day, dt.datetime):
            return utc_date(day if day.tzinfo else day.replace(tzinfo=dt.timezone.utc))
        if not isinstance(day, str) or len(day) != 10:
            raise ValueError(f"day {day!r} is not YYYY-MM-DD")
        dt.date.fromisoformat(day)
        return day

    # ------------------------------------------------------------ key/value state
    def set_state(self, key: str, value: Any) -> None:
        """Store a JSON value under ``key`` (status snapshot, last error, model version...)."""
        now = self._now()
        with self._write() as con:
            self._set_state(con, key, value, now)

    @staticmethod
    def _set_state(con: sqlite3.Connection, key: str, value: Any, now: str) -> None:
        con.execute("INSERT INTO kv (key, value, updated_at) VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE SET "
                    "value = excluded.value, updated_at = excluded.updated_at", (key, _json(value), now))

    def get_state(self, key: str, default: Any = None) -> Any:
        row = self._con().execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def state_updated_at(self, key: str) -> str | None:
        """When ``key`` was last written (``warpd status`` tells a stale daemon snapshot by this)."""
        row = self._con().execute("SELECT updated_at FROM kv WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_status(self, snapshot: Mapping[str, Any]) -> None:
        """The daemon's status snapshot (watched folders, queue length, ...) for ``warpd status``."""
        self.set_state(STATUS_KEY, dict(snapshot))

    def status(self) -> dict[str, Any]:
        """The last snapshot with ``updated_at``, plus live counts from the tables."""
        snap = dict(self.get_state(STATUS_KEY, {}) or {})
        snap["updated_at"] = self.state_updated_at(STATUS_KEY)
        snap["screenshots"] = self.screenshot_counts()
        snap["pending"] = self.counts()
        snap["last_error"] = self.get_state(LAST_ERROR_KEY)
        snap["model_version"] = self.get_state(MODEL_VERSION_KEY)
        return snap

    # ------------------------------------------------------------ builds per ship
    def put_build(self, ship_key: str, screen_type: str, result: Mapping[str, Any], *,
                  screenshot_sha: str | None = None, taken_ns: int | None = None) -> bool:
        """Keep the latest result for (ship, screen type); older screenshots never replace newer.

        "Latest" is by the screenshot's time (``taken_ns``, e.g. its mtime) when known, so
        reprocessing an old file after a restart does not roll a build back. Returns whether stored.
        """
        now = self._now()
        with self._write() as con:
            return self._put_build(con, ship_key, screen_type, scrub_ship_name(result), screenshot_sha, taken_ns, now)

    @staticmethod
    def _put_build(con: sqlite3.Connection, ship_key: str, screen_type: str, result: Mapping[str, Any],
                   sha: str | None, taken_ns: int | None, now: str) -> bool:
        if not ship_key:
            raise ValueError("a build needs a ship key")
        cur = con.execute(
            "INSERT INTO builds (ship_key, screen_type, screenshot_sha, taken_ns, result, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(ship_key, screen_type) DO UPDATE SET "
            "screenshot_sha = excluded.screenshot_sha, taken_ns = excluded.taken_ns, result = excluded.result, "
            "updated_at = excluded.updated_at "
            "WHERE excluded.taken_ns IS NULL OR builds.taken_ns IS NULL OR excluded.taken_ns >= builds.taken_ns",
            (ship_key, screen_type, sha, taken_ns, _json(result), now))
        return cur.rowcount == 1

    def build(self, ship_key: str) -> dict[str, dict[str, Any]]:
        """The latest result per screen type of one ship (what the build writer merges)."""
        rows = self._con().execute("SELECT screen_type, result FROM builds WHERE ship_key = ? ORDER BY screen_type",
                                   (ship_key,)).fetchall()
        return {r[0]: json.loads(r[1]) for r in rows}

    def ships(self) -> list[tuple[str, str]]:
        """(ship key, last update) of every ship with a build, most recent first."""
        rows = self._con().execute("SELECT ship_key, MAX(updated_at) AS at FROM builds GROUP BY ship_key "
                                   "ORDER BY at DESC, ship_key").fetchall()
        return [(r[0], r[1]) for r in rows]


# The latest record per hash of one table (annotations or screen samples) that is neither uploaded
# under that label nor in a sent, unmarked batch; the same rule for crops and screen samples.
_UNSYNCED_SQL = (
    "SELECT {columns} FROM {table} x "
    "WHERE x.id = (SELECT MAX(y.id) FROM {table} y WHERE y.{sha} = x.{sha}) "
    "AND NOT EXISTS (SELECT 1 FROM sync_items s WHERE s.kind = ? AND s.sha = x.{sha} AND s.label = x.{label}) "
    "AND NOT EXISTS (SELECT 1 FROM batch_items bi JOIN batches bt ON bt.batch_id = bi.batch_id "
    "                WHERE bt.state = 'sent' AND bi.done = 0 AND bi.kind = ? AND bi.sha = x.{sha}) "
    "ORDER BY x.id")


def _path_key(path: str | os.PathLike[str]) -> str:
    """Paths are compared absolute, so a relative and an absolute spelling are one file."""
    return os.path.abspath(os.fspath(path))


def _section_value(cfg: Any, section: str, key: str, default: Any) -> Any:
    return getattr(getattr(cfg, section, None), key, default) if cfg is not None else default


def open_store(cfg: Any, *, clock: Clock = utc_now) -> Store:
    """The store of the configured data folder (``[state]`` keys read with defaults until added)."""
    from warpd.paths import data_paths

    return Store(data_paths(cfg), clock=clock,
                 busy_timeout_ms=_section_value(cfg, "state", "busy_timeout_ms", DEFAULT_BUSY_TIMEOUT_MS),
                 max_attempts=_section_value(cfg, "state", "max_attempts", DEFAULT_MAX_ATTEMPTS))
