"""The formats the community loop shares: annotation records, staging paths, model files and their metadata.

Defined once, imported by both sides: the daemon writes and uploads these, ``central/`` reads them
back from the Hub and publishes models in them, and the daemon downloads those again. They keep the
predecessor's layout (``../shared/reference/community-pipeline.md``) so data already on the Hub stays
readable, and every reader validates, because everything here may come from the network:

* an annotation line must have a known slot, a sane label and a 32- or 64-hex crop hash;
* a staging path must be ``staging/<uuid4>/...`` with nothing that could climb out of a folder;
* ``trained_at`` is parsed as a time, never compared as a string;
* a label map must be ``{"0": name, ..., str(n-1): name}`` with no gaps.

Readers raise :class:`FormatError` (a ``ValueError``) with a message that says what was wrong.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from warpd.slots import SCREEN_TYPES, TEXT_SLOTS, UnknownSlotError, normalize_slot

# Repo layout (paths inside the repos).
STAGING_ROOT = "staging"
MODELS_DIR = "models"
KNOWLEDGE_FILE = "knowledge.json"
# Model files inside models/ (same names locally and on the Hub).
ICON_ONNX = "icon_classifier.onnx"
ICON_PT = "icon_classifier.pt"
ICON_META = "icon_classifier_meta.json"
LABEL_MAP = "label_map.json"
SCREEN_ONNX = "screen_classifier.onnx"
SCREEN_PT = "screen_classifier.pt"
SCREEN_LABELS = "screen_classifier_labels.json"
MODEL_VERSION = "model_version.json"
CORRECTIONS = "ship_type_corrections.json"
MANIFEST = "training_manifest.json"
ANNOTATIONS_JSONL = "annotations.jsonl"

# Limits on what the network may hand us.
MAX_LABEL_CHARS = 200
MAX_PATH_CHARS = 400

_HEX = re.compile(r"[0-9a-f]+")
_UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_PHASH = re.compile(r"[0-9a-f]{16}")
_SCREEN_TYPE_NAMES = frozenset(str(t) for t in SCREEN_TYPES)


class FormatError(ValueError):
    """Data that does not have the shared format; the message names the field and the problem."""


# --- small validators -----------------------------------------------------------------------------

def sha256_hex(data: bytes) -> str:
    """The crop id: sha256 of the PNG bytes, 64 lower-case hex characters."""
    return hashlib.sha256(data).hexdigest()


def is_crop_sha(value: object) -> bool:
    """True for a crop id: 64 hex, or the predecessor's 32-hex cut."""
    return isinstance(value, str) and len(value) in (32, 64) and bool(_HEX.fullmatch(value))


def is_install_id(value: object) -> bool:
    """True for the anonymous install id (a lower-case UUID4)."""
    return isinstance(value, str) and bool(_UUID4.fullmatch(value))


def validate_label(name: object, what: str = "name") -> str:
    """An item or ship label from the network: a non-empty printable string of sane length."""
    if not isinstance(name, str):
        raise FormatError(f"{what} must be a string, got {type(name).__name__}")
    text = name.strip()
    if not text:
        raise FormatError(f"{what} is empty")
    if len(text) > MAX_LABEL_CHARS:
        raise FormatError(f"{what} is {len(text)} characters long (at most {MAX_LABEL_CHARS})")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn") for ch in text):
        raise FormatError(f"{what} {text[:40]!r} contains control or unassigned characters")
    return text


def validate_remote_path(path: object) -> str:
    """A repo path from the network that is safe to join onto a local folder.

    Refused: absolute paths, ``..`` or ``.`` parts, backslashes, drive letters, NUL and control
    characters, empty parts and overlong names.
    """
    if not isinstance(path, str) or not path:
        raise FormatError("remote path is empty or not a string")
    if len(path) > MAX_PATH_CHARS:
        raise FormatError(f"remote path is {len(path)} characters long (at most {MAX_PATH_CHARS})")
    if "\\" in path or path.startswith("/") or re.match(r"^[A-Za-z]:", path):
        raise FormatError(f"remote path {path[:60]!r} is absolute or uses backslashes")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in path):
        raise FormatError(f"remote path {path[:60]!r} contains control characters")
    parts = path.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise FormatError(f"remote path {path[:60]!r} has an empty, '.' or '..' part")
    return path


# --- time ---------------------------------------------------------------------------------------

def utc_now() -> dt.datetime:
    """Now, timezone-aware UTC, without microseconds (what the files carry)."""
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def format_utc(when: dt.datetime) -> str:
    """ISO-8601 UTC with a ``Z``: ``2026-03-23T14:00:00Z``."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return when.astimezone(dt.timezone.utc).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_utc(value: object, what: str = "trained_at") -> dt.datetime:
    """An ISO-8601 time as aware UTC. ``Z`` and offsets are honoured; a naive time counts as UTC.

    The predecessor wrote non-ISO strings and compared them as text; here a value that is not a
    time is an error, so an update can never be chosen by string order.
    """
    if not isinstance(value, str) or not value.strip():
        raise FormatError(f"{what} is missing or not a string")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise FormatError(f"{what} {value[:40]!r} is not an ISO-8601 time") from exc
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return when.astimezone(dt.timezone.utc)


def utc_date(when: dt.datetime | None = None) -> str:
    """The ``date`` field of an annotation line: the UTC day, ``YYYY-MM-DD``."""
    return (when or utc_now()).astimezone(dt.timezone.utc).strftime("%Y-%m-%d")


# --- annotation records ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Annotation:
    """One confirmed crop: what the user said it is.

    ``slot`` is a canonical slot name (or "Ship Type" / "Ship Tier" for text crops); ``ml_name``
    is what recognition said before the user corrected it ("" when it was already right). The
    upload line carries ``crop_sha256, name, slot, date, ml_name``; the local record adds the
    screenshot-side facts (bbox, confirmed_at) that never leave the machine.
    """

    crop_sha256: str
    name: str
    slot: str
    date: str
    ml_name: str = ""
    bbox: tuple[int, int, int, int] | None = None
    confirmed_at: str = ""

    @property
    def is_text(self) -> bool:
        """Ship Type / Ship Tier text crops: for the OCR corrections map, not icon training."""
        return self.slot in TEXT_SLOTS

    def upload_line(self) -> str:
        """The annotations.jsonl line (no bbox or local times: nothing about the screenshot)."""
        record = {"crop_sha256": self.crop_sha256, "name": self.name, "slot": self.slot, "date": self.date,
                  "ml_name": self.ml_name}
        return json.dumps(record, ensure_ascii=False, sort_keys=True)

    def to_json(self) -> dict[str, Any]:
        """The local record (adds bbox and confirmed_at)."""
        data = asdict(self)
        data["bbox"] = list(self.bbox) if self.bbox is not None else None
        return data


def make_annotation(crop_sha256: str, name: str, slot: str, ml_name: str = "",
                    bbox: Sequence[int] | None = None, when: dt.datetime | None = None) -> Annotation:
    """A validated annotation for a confirmation made now (or at ``when``)."""
    when = when or utc_now()
    return parse_annotation({"crop_sha256": crop_sha256, "name": name, "slot": slot, "date": utc_date(when),
                             "ml_name": ml_name, "bbox": list(bbox) if bbox is not None else None,
                             "confirmed_at": format_utc(when)})


def parse_annotation(record: object) -> Annotation:
    """Validate one record (a parsed JSON object) into an :class:`Annotation`.

    Slot aliases are normalised; the Ship Name is refused outright (it is never stored).
    """
    if not isinstance(record, Mapping):
        raise FormatError("annotation is not a JSON object")
    sha = record.get("crop_sha256")
    if not is_crop_sha(sha):
        raise FormatError(f"crop_sha256 {str(sha)[:70]!r} is not 32 or 64 lower-case hex characters")
    slot_raw = validate_label(record.get("slot"), "slot")
    try:
        slot = normalize_slot(slot_raw)
    except UnknownSlotError as exc:
        raise FormatError(f"slot {slot_raw[:40]!r} is not a known slot") from exc
    if slot == "Ship Name":
        raise FormatError("Ship Name is never stored or uploaded")
    name = validate_label(record.get("name"))
    date = record.get("date", "")
    if not isinstance(date, str) or (date and not _DATE.fullmatch(date)):
        raise FormatError(f"date {str(date)[:20]!r} is not YYYY-MM-DD")
    ml_name = record.get("ml_name") or ""
    if ml_name:
        ml_name = validate_label(ml_name, "ml_name")
    bbox = _parse_bbox(record.get("bbox"))
    confirmed_at = record.get("confirmed_at") or ""
    if confirmed_at:
        confirmed_at = format_utc(parse_utc(confirmed_at, "confirmed_at"))
    return Annotation(sha, name, slot, date, ml_name, bbox, confirmed_at)


def _parse_bbox(value: object) -> tuple[int, int, int, int] | None:
    """``[x, y, w, h]`` of non-negative integers, or None."""
    if value is None:
        return None
    if (not isinstance(value, (list, tuple)) or len(value) != 4
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
        raise FormatError(f"bbox {str(value)[:40]} is not [x, y, w, h]")
    x, y, w, h = (int(round(v)) for v in value)
    if x < 0 or y < 0 or w <= 0 or h <= 0:
        raise FormatError(f"bbox {[x, y, w, h]} has a negative origin or an empty size")
    return x, y, w, h


@dataclass
class ParsedLines:
    """What :func:`parse_annotation_lines` kept, and what it refused with the reason."""

    records: list[Annotation] = field(default_factory=list)
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (line number, reason)


def parse_annotation_lines(text: str | bytes) -> ParsedLines:
    """An annotations.jsonl file: valid lines kept in order, bad ones counted with their reason."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    out = ParsedLines()
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            out.records.append(parse_annotation(json.loads(line)))
        except (ValueError, TypeError) as exc:  # JSONDecodeError and FormatError are ValueErrors
            out.rejected.append((number, str(exc)[:200]))
    return out


def annotation_lines(records: Iterable[Annotation]) -> str:
    """records → annotations.jsonl text (one line each, newline-terminated)."""
    return "".join(r.upload_line() + "\n" for r in records)


# --- staging paths --------------------------------------------------------------------------------

def staging_crop_path(install_id: str, crop_sha256: str) -> str:
    """``staging/<install_id>/crops/<sha>.png``."""
    _check_install_id(install_id)
    if not is_crop_sha(crop_sha256):
        raise FormatError(f"crop sha {crop_sha256[:70]!r} is not hex")
    return f"{STAGING_ROOT}/{install_id}/crops/{crop_sha256}.png"


def staging_annotations_path(install_id: str) -> str:
    """``staging/<install_id>/annotations.jsonl``."""
    _check_install_id(install_id)
    return f"{STAGING_ROOT}/{install_id}/{ANNOTATIONS_JSONL}"


def staging_batch_annotations_path(install_id: str, batch_id: str) -> str:
    """``staging/<install_id>/annotations/<batch>.jsonl``: one file per upload batch.

    Why not only the single annotations.jsonl: appending means read-modify-write of a remote file,
    which two batches (or a crash between commit and local mark) can get wrong. A batch file named
    by the hash of its content is idempotent: re-uploading the same batch rewrites the same file.
    Readers take both.
    """
    _check_install_id(install_id)
    if not re.fullmatch(r"[0-9a-f]{8,64}", batch_id):
        raise FormatError(f"batch id {batch_id[:70]!r} is not hex")
    return f"{STAGING_ROOT}/{install_id}/annotations/{batch_id}.jsonl"


def staging_screen_path(install_id: str, screen_type: str, sha: str) -> str:
    """``staging/<install_id>/screen_types/<TYPE>/<sha>.png``."""
    _check_install_id(install_id)
    if screen_type not in _SCREEN_TYPE_NAMES:
        raise FormatError(f"screen type {screen_type[:40]!r} is not one of {sorted(_SCREEN_TYPE_NAMES)}")
    if not is_crop_sha(sha):
        raise FormatError(f"screen sha {sha[:70]!r} is not hex")
    return f"{STAGING_ROOT}/{install_id}/screen_types/{screen_type}/{sha}.png"


@dataclass(frozen=True)
class StagingPath:
    """A parsed staging path: ``kind`` is "crop", "annotations", "batch" or "screen"."""

    install_id: str
    kind: str
    sha: str = ""
    screen_type: str = ""


def parse_staging_path(path: str) -> StagingPath:
    """Classify a path listed in the staging repo, refusing anything unexpected."""
    parts = validate_remote_path(path).split("/")
    if len(parts) < 3 or parts[0] != STAGING_ROOT:
        raise FormatError(f"{path[:80]!r} is not under {STAGING_ROOT}/<install_id>/")
    install_id = parts[1]
    _check_install_id(install_id)
    rest = parts[2:]
    if rest == [ANNOTATIONS_JSONL]:
        return StagingPath(install_id, "annotations")
    if len(rest) == 2 and rest[0] == "annotations" and rest[1].endswith(".jsonl"):
        batch = rest[1][:-len(".jsonl")]
        if re.fullmatch(r"[0-9a-f]{8,64}", batch):
            return StagingPath(install_id, "batch", sha=batch)
    if len(rest) == 2 and rest[0] == "crops" and rest[1].endswith(".png") and is_crop_sha(rest[1][:-4]):
        return StagingPath(install_id, "crop", sha=rest[1][:-4])
    if (len(rest) == 3 and rest[0] == "screen_types" and rest[1] in _SCREEN_TYPE_NAMES
            and rest[2].endswith(".png") and is_crop_sha(rest[2][:-4])):
        return StagingPath(install_id, "screen", sha=rest[2][:-4], screen_type=rest[1])
    raise FormatError(f"{path[:80]!r} is not a crop, annotations file or screen sample path")


def _check_install_id(install_id: str) -> None:
    if not is_install_id(install_id):
        raise FormatError(f"install id {str(install_id)[:50]!r} is not a lower-case UUID4")


# --- model files ----------------------------------------------------------------------------------

def read_json_object(data: str | bytes, what: str) -> dict[str, Any]:
    """Parse JSON that must be an object, with the file's name in the error."""
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise FormatError(f"{what} is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise FormatError(f"{what} is not a JSON object")
    return value


def label_map_json(names: Sequence[str]) -> dict[str, str]:
    """Class names in class order → ``{"0": name, ...}``."""
    return {str(i): name for i, name in enumerate(names)}


def parse_label_map(data: str | bytes | Mapping[str, Any], what: str = LABEL_MAP) -> list[str]:
    """``{"0": name, ...}`` → names in class order; keys must be exactly 0..n-1, names valid."""
    mapping = data if isinstance(data, Mapping) else read_json_object(data, what)
    try:
        keys = sorted(int(k) for k in mapping)
    except (TypeError, ValueError) as exc:
        raise FormatError(f"{what}: keys must be class numbers") from exc
    if keys != list(range(len(keys))):
        raise FormatError(f"{what}: keys are not 0..{len(keys) - 1} without gaps")
    names = [validate_label(mapping[str(i)], f"{what}[{i}]") for i in range(len(keys))]
    if len(set(names)) != len(names):
        raise FormatError(f"{what}: a class name appears twice")
    return names


def parse_screen_labels(data: str | bytes | Mapping[str, Any]) -> list[str]:
    """screen_classifier_labels.json: a label map whose names are screen types."""
    names = parse_label_map(data, SCREEN_LABELS)
    unknown = [n for n in names if n not in _SCREEN_TYPE_NAMES]
    if unknown:
        raise FormatError(f"{SCREEN_LABELS}: {unknown[:3]} are not screen types")
    return names


def parse_knowledge(data: str | bytes | Mapping[str, Any]) -> dict[str, str]:
    """knowledge.json → ``{16-hex pHash: item name}``; malformed entries are dropped, not fatal."""
    obj = data if isinstance(data, Mapping) else read_json_object(data, KNOWLEDGE_FILE)
    table = obj.get("knowledge", obj)
    if not isinstance(table, Mapping):
        raise FormatError(f"{KNOWLEDGE_FILE}: 'knowledge' is not an object")
    out: dict[str, str] = {}
    for key, name in table.items():
        if isinstance(key, str) and _PHASH.fullmatch(key.lower()):
            try:
                out[key.lower()] = validate_label(name)
            except FormatError:
                continue
    return out


def knowledge_json(table: Mapping[str, str], when: dt.datetime | None = None) -> dict[str, Any]:
    """``{"knowledge": {...}, "updated_at": ...}``."""
    return {"knowledge": dict(sorted(table.items())), "updated_at": format_utc(when or utc_now())}


def parse_corrections(data: str | bytes | Mapping[str, Any]) -> dict[str, str]:
    """ship_type_corrections.json → ``{ocr reading: corrected text}``; bad entries dropped."""
    obj = data if isinstance(data, Mapping) else read_json_object(data, CORRECTIONS)
    out: dict[str, str] = {}
    for key, value in obj.items():
        try:
            out[validate_label(key, "reading")] = validate_label(value, "correction")
        except FormatError:
            continue
    return out


@dataclass(frozen=True)
class ModelVersion:
    """model_version.json: what a published model set is, when it was trained, and its files.

    ``files`` maps a file name under models/ (or knowledge.json) to ``{"sha256", "size"}``; the
    client verifies every download against it before installing.
    """

    version: str
    trained_at: dt.datetime
    n_classes: int = 0
    val_acc: float | None = None
    n_samples: int = 0
    n_users: int = 0
    screen_trained_at: dt.datetime | None = None
    screen_val_acc: float | None = None
    screen_n_samples: int = 0
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = dict(self.extra)
        data.update({
            "version": self.version, "trained_at": format_utc(self.trained_at), "n_classes": self.n_classes,
            "val_acc": self.val_acc, "n_samples": self.n_samples, "n_users": self.n_users,
            "screen_trained_at": format_utc(self.screen_trained_at) if self.screen_trained_at else None,
            "screen_val_acc": self.screen_val_acc, "screen_n_samples": self.screen_n_samples,
            "files": self.files,
        })
        return data

    def is_newer_than(self, other: "ModelVersion | None") -> bool:
        """By the parsed ``trained_at`` time; anything is newer than nothing."""
        return other is None or self.trained_at > other.trained_at


_VERSION_FIELDS = ("version", "trained_at", "n_classes", "val_acc", "n_samples", "n_users", "screen_trained_at",
                   "screen_val_acc", "screen_n_samples", "files")


def parse_model_version(data: str | bytes | Mapping[str, Any]) -> ModelVersion:
    """Validate model_version.json; ``trained_at`` is required and must be an ISO-8601 time."""
    obj = data if isinstance(data, Mapping) else read_json_object(data, MODEL_VERSION)
    trained_at = parse_utc(obj.get("trained_at"))
    screen_at = obj.get("screen_trained_at")
    files = obj.get("files") or {}
    if not isinstance(files, Mapping):
        raise FormatError(f"{MODEL_VERSION}: 'files' is not an object")
    checked: dict[str, dict[str, Any]] = {}
    for name, meta in files.items():
        validate_remote_path(name)
        if (not isinstance(meta, Mapping) or not isinstance(meta.get("sha256"), str)
                or not re.fullmatch(r"[0-9a-f]{64}", meta["sha256"])
                or not isinstance(meta.get("size"), int) or meta["size"] < 0):
            raise FormatError(f"{MODEL_VERSION}: files[{name!r}] needs a 64-hex sha256 and a size")
        checked[name] = {"sha256": meta["sha256"], "size": meta["size"]}
    return ModelVersion(
        version=str(obj.get("version") or ""),
        trained_at=trained_at,
        n_classes=_int(obj.get("n_classes")),
        val_acc=_opt_float(obj.get("val_acc")),
        n_samples=_int(obj.get("n_samples")),
        n_users=_int(obj.get("n_users")),
        screen_trained_at=parse_utc(screen_at, "screen_trained_at") if screen_at else None,
        screen_val_acc=_opt_float(obj.get("screen_val_acc")),
        screen_n_samples=_int(obj.get("screen_n_samples")),
        files=checked,
        extra={k: v for k, v in obj.items() if k not in _VERSION_FIELDS},
    )


def file_entry(data: bytes) -> dict[str, Any]:
    """The ``files`` entry of model_version.json for one file's bytes."""
    return {"sha256": sha256_hex(data), "size": len(data)}


def manifest_json(crop_shas: Iterable[str], when: dt.datetime | None = None) -> dict[str, Any]:
    """training_manifest.json: the winning crop set of a run (the next run's skip check)."""
    shas = sorted(set(crop_shas))
    return {"crop_shas": shas, "updated_at": format_utc(when or utc_now()), "count": len(shas)}


def parse_manifest(data: str | bytes | Mapping[str, Any]) -> set[str]:
    """training_manifest.json → the set of crop hashes it lists."""
    obj = data if isinstance(data, Mapping) else read_json_object(data, MANIFEST)
    shas = obj.get("crop_shas", [])
    if not isinstance(shas, list):
        raise FormatError(f"{MANIFEST}: 'crop_shas' is not a list")
    return {s for s in shas if is_crop_sha(s)}


def _int(value: object) -> int:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


def _opt_float(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
