"""``warpd import-sets-warp PATH``: bring a SETS-WARP user's confirmed training data into warpd.

Why: players who used the predecessor already confirmed hundreds of crops by hand; that work
should not be lost when they switch. What is read (``shared/reference/sto-domain.md``, "The
predecessor's local data folder"):

* ``training_data/annotations.json``, in both layouts the predecessor wrote: a dict keyed by
  screenshot file name → list of records, and the newer ``{sha16: {"annotations": [...]}}``.
  Only ``state == "confirmed"`` records are training data; candidates, pending and skipped
  records are counted and left alone.
* each record's crop: ``crop_file`` / ``crop_name`` (relative to ``training_data``), else the
  predecessor's naming ``crops/<slot>__<name[:40]>__<ann_id>.png`` (lower case, spaces → ``_``),
  else ``crops/crop_index.json``. Confirmed crops listed only in ``crop_index.json`` (no record
  refers to them) are imported too: the index is the predecessor's own record of them.
* ``training_data/screen_types.json`` and the copies under ``screen_types/<TYPE>/<file>``.
* ``hub_token.txt`` (copied, 0600, when warpd has no token file yet; never printed) and
  ``knowledge/install_id.txt`` (reported only: warpd keeps its own install id).

Every record is validated as if it came from the network, because real files contain mistakes
(a warp core confirmed under slot Engines): the slot must be known (aliases normalised), the
Ship Name is never imported, the item must fit the slot in the catalogue, a Ship Tier must be a
tier and a Ship Type a catalogue ship. Skips are counted with their reason.

Crops: the predecessor stored raw bbox crops; an icon is stored as warpd's 64×64 canonical crop
(:func:`warpd.store.item_crop_png`), named by the sha256 of those PNG bytes. One exception keeps
the Hub free of duplicates: a crop that already is a 64×64 PNG whose bytes hash to the
predecessor's own 32- or 64-hex sha (a record's ``crop_sha256``, or the file's name) is kept
byte for byte under that sha, as the predecessor uploaded it. Ship Type / Ship Tier crops are
text-line crops: kept as they are (PNG), never squeezed to 64×64.

Idempotent: a crop warpd already holds an annotation for is not added again (same name:
"already in warpd"; another name: skipped, warpd's newer answer wins); a screen sample already
recorded is not recorded again. Importing twice adds nothing the second time.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import logging
import sys
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from warpd.catalog import Catalog, sanitize_equipment_name
from warpd.formats import FormatError, is_crop_sha, make_annotation, sha256_hex, validate_label
from warpd.load import ImageLoadError, load_image
from warpd.slots import (
    PRIMARY_SPECS,
    SCREEN_TYPES,
    SECONDARY_ONLY_SPECS,
    SHIP_NAME,
    SHIP_TIER,
    SHIP_TYPE,
    SLOT_GROUPS,
    TIERS,
    UnknownSlotError,
    normalize_slot,
)

log = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
ANNOTATIONS_JSON = "annotations.json"
CROP_INDEX_JSON = "crop_index.json"
SCREEN_TYPES_JSON = "screen_types.json"
TOKEN_FILE = "hub_token.txt"
OLD_INSTALL_ID = ("knowledge", "install_id.txt")
# Below this many records a progress bar is noise.
PROGRESS_MIN = 200
EXAMPLES_PER_REASON = 3
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")

# Skip reasons (stable strings: they are the keys of --json's "skipped").
R_SHIP_NAME = "Ship Name: never imported"
R_UNKNOWN_SLOT = "unknown slot"
R_BAD_RECORD = "record without a usable name"
R_WRONG_SLOT = "item does not fit the slot"
R_UNKNOWN_ITEM = "item not in the catalogue"
R_UNKNOWN_SHIP = "unknown ship type"
R_BAD_TIER = "not a ship tier"
R_NO_CROP = "crop file missing"
R_BAD_CROP = "crop file unreadable"
R_CONFLICT = "crop already confirmed with another name"
R_DUPLICATE = "same crop twice in the folder"
S_UNKNOWN_TYPE = "unknown screen type"
S_MISSING = "screen file missing"
S_UNREADABLE = "screen file unreadable"
S_DISAGREES = "folder and screen_types.json disagree"
S_CONFLICT = "screenshot already confirmed as another type"


class SourceError(ValueError):
    """PATH is not a SETS-WARP ``warp/`` or ``warp/training_data`` folder."""


# --------------------------------------------------------------------------------------------------
# the source folder
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Source:
    """Where the predecessor's files are: its ``warp/`` folder (if known) and ``training_data``."""

    warp_root: Path | None
    training_data: Path

    @property
    def crops(self) -> Path:
        return self.training_data / "crops"


def locate(path: str | Path) -> Source:
    """Accept both spellings users will type: ``.../warp`` and ``.../warp/training_data``."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise SourceError(f"{root} is not a folder")
    if (root / "training_data").is_dir():
        return Source(root, root / "training_data")
    if (root / ANNOTATIONS_JSON).is_file() or (root / "crops").is_dir() or root.name == "training_data":
        parent = root.parent
        warp = parent if (parent / TOKEN_FILE).is_file() or (parent / "knowledge").is_dir() \
            or root.name == "training_data" else None
        return Source(warp, root)
    raise SourceError(f"{root} holds neither training_data/ nor annotations.json: "
                      "point at SETS-WARP's warp/ folder or its warp/training_data folder")


def _read_json(path: Path) -> Any:
    """A JSON file of the predecessor, or None when absent; unreadable files are reported, not fatal."""
    try:
        with path.open(encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("cannot read %s: %s", path, exc)
        return None


@dataclass(frozen=True)
class SourceRecord:
    """One annotation record and the screenshot key it was filed under."""

    key: str  # screenshot file name (old layout) or sha16 (new layout)
    record: Mapping[str, Any]


def read_annotations(training_data: Path) -> tuple[list[SourceRecord], set[str]]:
    """All records of annotations.json in either layout; returns (records, layouts seen).

    Layouts are told apart per entry, so a file half-converted by a predecessor upgrade still reads.
    """
    data = _read_json(training_data / ANNOTATIONS_JSON)
    records: list[SourceRecord] = []
    layouts: set[str] = set()
    if not isinstance(data, Mapping):
        return records, layouts
    for key, value in data.items():
        if isinstance(value, list):
            layouts.add("by screenshot file")
            entries: Iterable[Any] = value
        elif isinstance(value, Mapping) and isinstance(value.get("annotations"), list):
            layouts.add("by screenshot sha")
            entries = value["annotations"]
        else:
            continue
        records.extend(SourceRecord(str(key), r) for r in entries if isinstance(r, Mapping))
    return records, layouts


def crop_file_name(slot: str, name: str, ann_id: str) -> str:
    """The predecessor's crop naming: ``<slot>__<name[:40]>__<ann_id>.png``, lower case, spaces → ``_``."""
    return f"{slot}__{name[:40]}__{ann_id}.png".lower().replace(" ", "_")


def record_ann_id(record: Mapping[str, Any]) -> str:
    """The record's ``ann_id``, or the predecessor's formula ``md5("x_y_w_h_slot")[:12]``."""
    ann_id = record.get("ann_id")
    if isinstance(ann_id, str) and ann_id:
        return ann_id
    bbox = record.get("bbox")
    if isinstance(bbox, list) and len(bbox) == 4:
        try:
            x, y, w, h = (int(v) for v in bbox)
        except (TypeError, ValueError):
            return ""
        return hashlib.md5(f"{x}_{y}_{w}_{h}_{record.get('slot')}".encode()).hexdigest()[:12]  # noqa: S324
    return ""


@dataclass
class CropIndex:
    """``crops/crop_index.json``: ``{fname: {slot, name, state, source}}``, looked up by ann_id."""

    entries: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    by_ann_id: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, crops: Path) -> "CropIndex":
        data = _read_json(crops / CROP_INDEX_JSON)
        index = cls()
        if isinstance(data, Mapping):
            for fname, meta in data.items():
                if isinstance(fname, str) and isinstance(meta, Mapping):
                    index.entries[fname] = meta
                    index.by_ann_id[ann_id_of_file(fname)] = fname
        return index


def ann_id_of_file(fname: str) -> str:
    """``warp_core__x__0123456789ab.png`` → ``0123456789ab``."""
    return Path(fname).stem.rsplit("__", 1)[-1]


def _inside(path: Path, folder: Path) -> bool:
    """A name from the file may not climb out of training_data (``../..``)."""
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def find_crop(source: Source, record: Mapping[str, Any], index: CropIndex) -> Path | None:
    """The record's crop file, trying every way the predecessor's versions recorded it."""
    for rel in (record.get("crop_file"), record.get("crop_name")):
        if isinstance(rel, str) and rel:
            for candidate in (source.training_data / rel, source.crops / rel):
                if _inside(candidate, source.training_data) and candidate.is_file():
                    return candidate
    ann_id = record_ann_id(record)
    name = record.get("name")
    if ann_id and isinstance(name, str):
        slots = [str(record.get("slot") or "")]
        try:
            slots.append(normalize_slot(slots[0]))
        except UnknownSlotError:
            pass
        for slot in dict.fromkeys(slots):
            candidate = source.crops / crop_file_name(slot, name, ann_id)
            if candidate.is_file():
                return candidate
    fname = index.by_ann_id.get(ann_id) if ann_id else None
    if fname and (source.crops / fname).is_file() and _inside(source.crops / fname, source.crops):
        return source.crops / fname
    return None


# --------------------------------------------------------------------------------------------------
# validation against the catalogue
# --------------------------------------------------------------------------------------------------
class Skip(Exception):
    """A record that is not imported; ``reason`` is one of the R_* strings."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(reason)
        self.reason, self.detail = reason, detail


def checked_slot(raw: object) -> str:
    """The canonical slot, or :class:`Skip` (unknown slot; Ship Name is never imported)."""
    try:
        slot = normalize_slot(str(raw or ""))
    except UnknownSlotError:
        raise Skip(R_UNKNOWN_SLOT, str(raw)[:40]) from None
    if slot == SHIP_NAME:
        raise Skip(R_SHIP_NAME)
    return slot


def checked_name(catalog: Catalog, slot: str, raw: object) -> str:
    """The item's name as warpd spells it, once the catalogue says it fits ``slot``; else :class:`Skip`."""
    try:
        name = validate_label(raw)
    except FormatError:
        raise Skip(R_BAD_RECORD) from None
    if slot == SHIP_TIER:
        tier = name.strip("[] ").upper()
        if tier not in TIERS:
            raise Skip(R_BAD_TIER, name)
        return tier
    if slot == SHIP_TYPE:
        try:
            return catalog.ship(name).name
        except KeyError:
            raise Skip(R_UNKNOWN_SHIP, name) from None
    group = SLOT_GROUPS[slot]
    if group.kind == "spec":
        allowed = PRIMARY_SPECS + (SECONDARY_ONLY_SPECS if slot.startswith("Secondary") else ())
        if name in allowed:
            return name
        raise Skip(R_WRONG_SLOT if name in PRIMARY_SPECS + SECONDARY_ONLY_SPECS else R_UNKNOWN_ITEM)
    environments = ("space", "ground") if group.kind == "boff" else (None,)
    spellings = dict.fromkeys((name, sanitize_equipment_name(name)))  # "X Mk XII" → "X"
    for spelling in spellings:
        if spelling and any(catalog.slot_accepts(slot, spelling, env) for env in environments):
            return spelling
    known = any(s in catalog.all_names for s in spellings)
    raise Skip(R_WRONG_SLOT if known else R_UNKNOWN_ITEM)


# --------------------------------------------------------------------------------------------------
# crops
# --------------------------------------------------------------------------------------------------
def legacy_shas(record: Mapping[str, Any], path: Path) -> list[str]:
    """The predecessor's own hashes for this crop (record fields, the file's name), lower case."""
    values = [record.get("crop_sha256"), record.get("crop_sha"), record.get("sha"), path.stem]
    return [v.lower() for v in values if isinstance(v, str) and is_crop_sha(v.lower())]


def stored_crop(path: Path, slot: str, record: Mapping[str, Any], max_pixels: int) -> tuple[str, bytes]:
    """(sha, PNG bytes) to store for this crop file; :class:`Skip` when it cannot be read.

    Text slots keep the text-line crop itself; icons become the 64×64 canonical crop, except a
    64×64 PNG the predecessor already hashed, which keeps its bytes and its (maybe 32-hex) sha.
    """
    from warpd.store import item_crop_png, png_bytes

    try:
        data = path.read_bytes()
        rgb = decode_crop(data, max_pixels)
    except (OSError, ValueError) as exc:
        raise Skip(R_BAD_CROP, f"{path.name}: {exc}") from None
    is_png = data[:8] == _PNG_MAGIC
    if slot in (SHIP_TYPE, SHIP_TIER):
        png = data if is_png else png_bytes(rgb)
        return sha256_hex(png), png
    if is_png and rgb.shape[:2] == (64, 64):
        digest = sha256_hex(data)
        for sha in legacy_shas(record, path):
            if digest.startswith(sha):
                return sha, data
    png = item_crop_png(rgb)
    return sha256_hex(png), png


def decode_crop(data: bytes, max_pixels: int) -> Any:
    """A crop file as an RGB array. Not :func:`warpd.load.load_image`: that one refuses anything
    smaller than a screenshot, and crops are icon-sized. The size is checked from the header first."""
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
            if width * height > max_pixels or not width or not height:
                raise ValueError(f"{width}x{height} pixels is not a crop")
            return np.ascontiguousarray(np.asarray(img.convert("RGB")))
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError) as exc:
        raise ValueError(f"not a readable image ({exc})") from None


def record_bbox(record: Mapping[str, Any]) -> list[int] | None:
    """The record's bbox when it is a sane ``[x, y, w, h]`` (kept locally, never uploaded)."""
    bbox = record.get("bbox")
    if not isinstance(bbox, list) or len(bbox) != 4:
        return None
    try:
        x, y, w, h = (int(round(float(v))) for v in bbox)
    except (TypeError, ValueError):
        return None
    return [x, y, w, h] if x >= 0 and y >= 0 and w > 0 and h > 0 else None


def record_ml_name(record: Mapping[str, Any], name: str) -> str:
    """What the predecessor's recogniser said, when it differs from the answer and is a sane label."""
    try:
        ml_name = validate_label(record.get("ml_name"), "ml_name")
    except FormatError:
        return ""
    return ml_name if ml_name != name else ""


# --------------------------------------------------------------------------------------------------
# the report
# --------------------------------------------------------------------------------------------------
@dataclass
class ImportReport:
    """What an import did (or, with ``dry_run``, would do); ``to_json`` is the ``--json`` output."""

    source: str
    dry_run: bool = False
    layouts: list[str] = field(default_factory=list)
    records: int = 0
    states: Counter[str] = field(default_factory=Counter)
    imported: int = 0
    imported_text: int = 0
    from_crop_index: int = 0
    already_present: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    screens_imported: int = 0
    screens_present: int = 0
    screens_skipped: Counter[str] = field(default_factory=Counter)
    token: str = "none found"
    old_install_id: bool = False

    def skip(self, reason: str, detail: str = "", counter: Counter[str] | None = None) -> None:
        (self.skipped if counter is None else counter)[reason] += 1
        if detail:
            shown = self.examples.setdefault(reason, [])
            if len(shown) < EXAMPLES_PER_REASON:
                shown.append(detail)

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "dry_run": self.dry_run, "layouts": sorted(self.layouts),
                "records": self.records, "states": dict(self.states), "imported": self.imported,
                "imported_text_crops": self.imported_text, "from_crop_index": self.from_crop_index,
                "already_present": self.already_present, "skipped": dict(self.skipped),
                "examples": self.examples,
                "screen_samples": {"imported": self.screens_imported, "already_present": self.screens_present,
                                   "skipped": dict(self.screens_skipped)},
                "token": self.token, "old_install_id_found": self.old_install_id}


# --------------------------------------------------------------------------------------------------
# the import
# --------------------------------------------------------------------------------------------------
@dataclass
class Importer:
    """One import run: validates, then stores through :class:`warpd.store.Store` (None = dry run)."""

    source: Source
    store: Any  # warpd.store.Store, or None for a dry run on a data folder that has no store yet
    catalog: Catalog
    report: ImportReport
    max_pixels: int = 50_000_000
    progress: bool = True
    dry_run: bool = False
    known: dict[str, str] = field(default_factory=dict)  # crop sha → name warpd holds
    added: set[str] = field(default_factory=set)  # crop shas this run imported

    def __post_init__(self) -> None:
        if self.store is not None:
            for _, annotation in self.store.annotations():
                self.known[annotation.crop_sha256] = annotation.name

    # ---------------------------------------------------------------- annotations
    def import_annotations(self) -> None:
        records, layouts = read_annotations(self.source.training_data)
        index = CropIndex.load(self.source.crops)
        self.report.layouts = sorted(layouts)
        self.report.records = len(records)
        referenced = {record_ann_id(r.record) for r in records} - {""}
        for item in self._bar(records, "annotations"):
            state = str(item.record.get("state") or "")
            self.report.states[state or "(none)"] += 1
            if state != "confirmed":
                continue
            self._one(item.record, f"{item.key}", lambda rec=item.record: find_crop(self.source, rec, index))
        for fname, meta in index.entries.items():
            if meta.get("state") != "confirmed" or ann_id_of_file(fname) in referenced:
                continue
            path = self.source.crops / fname
            if self._one(meta, fname, lambda p=path: p if p.is_file() and _inside(p, self.source.crops) else None):
                self.report.from_crop_index += 1

    def _one(self, record: Mapping[str, Any], where: str, crop_path: Any) -> bool:
        """Validate and store one confirmed record; True when it was (or would be) imported."""
        try:
            slot = checked_slot(record.get("slot"))
            name = checked_name(self.catalog, slot, record.get("name"))
            path = crop_path()
            if path is None:
                raise Skip(R_NO_CROP, f"{slot}: {name} ({where})")
            sha, png = stored_crop(path, slot, record, self.max_pixels)
            if self.known.get(sha, name) != name:
                raise Skip(R_CONFLICT, f"{name} vs {self.known[sha]} ({where})")
        except Skip as skip:
            detail = skip.detail
            if not detail and skip.reason != R_SHIP_NAME:  # a ship name is the player's own text: never shown
                detail = f"{record.get('slot')}: {record.get('name')} ({where})"
            self.report.skip(skip.reason, detail[:160])
            return False
        if sha in self.added:
            self.report.skip(R_DUPLICATE, f"{slot}: {name} ({where})")
            return False
        if sha in self.known:
            self.report.already_present += 1
            return False
        annotation = make_annotation(sha, name, slot, record_ml_name(record, name), record_bbox(record))
        if not self.dry_run:
            self.store.add_annotation(annotation, png)
        self.known[sha] = name
        self.added.add(sha)
        self.report.imported += 1
        self.report.imported_text += int(annotation.is_text)
        return True

    # ---------------------------------------------------------------- screen types
    def import_screen_types(self) -> None:
        """Screen-type copies → 224-px samples, recorded through a screen-type question.

        The store records a sample only as the answer to a question (``confirm_screen_type`` needs
        a pending id), so each import adds a screen-type question for the screenshot and answers it
        at once; it never shows as waiting. The predecessor kept full screenshots and no ship-name
        box, so the sample is the frame downscaled to 224 px only: at that size the ship name is a
        few pixels high, but it is not blacked out as warpd's own samples are.
        """
        from warpd.preprocess import screen_sample
        from warpd.store import png_bytes

        listed = _read_json(self.source.training_data / SCREEN_TYPES_JSON)
        listed = {str(k): str(v) for k, v in listed.items()} if isinstance(listed, Mapping) else {}
        folder = self.source.training_data / "screen_types"
        files = sorted(p for p in folder.glob("*/*") if p.is_file() and p.suffix.lower() in _IMAGE_SUFFIXES) \
            if folder.is_dir() else []
        seen = {(p.parent.name, p.name) for p in files}
        for name, stype in listed.items():
            if (stype, name) not in seen:
                self.report.skip(S_MISSING, f"{stype}/{name}", self.report.screens_skipped)
        for path in self._bar(files, "screen types"):
            stype = path.parent.name
            if stype not in SCREEN_TYPES:
                self.report.skip(S_UNKNOWN_TYPE, stype, self.report.screens_skipped)
                continue
            if listed.get(path.name, stype) != stype:
                self.report.skip(S_DISAGREES, f"{path.name}: {stype} vs {listed[path.name]}",
                                 self.report.screens_skipped)
                continue
            try:
                loaded = load_image(path, self.max_pixels)
            except (OSError, ImageLoadError) as exc:
                self.report.skip(S_UNREADABLE, f"{path.name}: {exc}", self.report.screens_skipped)
                continue
            self._screen(loaded.sha256, path.name, stype, png_bytes(screen_sample(loaded.rgb)))

    def _screen(self, shot_sha: str, file: str, stype: str, png: bytes) -> None:
        """Record one sample; the question made for it carries the sample, so even a crash between
        the two calls leaves a complete question (answerable with ``warpd confirm``)."""
        from warpd.store import StoreError

        if self.dry_run:
            self._screen_dry(stype, png)
            return
        pending_id = self.store.add_pending(shot_sha, kind="screen_type", file=file, crop=png,
                                            candidates=[[stype, 1.0]], ml_name=stype)
        asked = self.store.pending(pending_id)
        if asked is not None and asked.status == "confirmed":
            if asked.answer == stype:
                self.report.screens_present += 1
            else:
                self.report.skip(S_CONFLICT, f"{file}: {stype} vs {asked.answer} in warpd",
                                 self.report.screens_skipped)
            return
        # a question warpd asked itself keeps its own sample (made with the ship name blacked out)
        sample = asked.crop if asked is not None and asked.crop else png
        try:
            self.store.confirm_screen_type(pending_id, stype, sample)
        except StoreError as exc:
            self.report.skip(S_CONFLICT, f"{file}: {exc}", self.report.screens_skipped)
            return
        self.report.screens_imported += 1

    def _screen_dry(self, stype: str, png: bytes) -> None:
        """A dry run writes no question: a sample is present when its content-addressed file is."""
        if self.store is not None and (self.store.paths.screen_types / stype / f"{sha256_hex(png)}.png").is_file():
            self.report.screens_present += 1
        else:
            self.report.screens_imported += 1

    # ---------------------------------------------------------------- helpers
    def _bar(self, items: list[Any], what: str) -> Iterator[Any]:
        """A tqdm bar on stderr for big folders (only on a terminal; stdout stays clean for --json)."""
        if not self.progress or len(items) < PROGRESS_MIN:
            return iter(items)
        from tqdm import tqdm

        return iter(tqdm(items, desc=f"importing {what}", unit="rec", file=sys.stderr, disable=None))


def copy_token(source: Source, token_file: Path, dry_run: bool) -> str:
    """Take the predecessor's Hub token when warpd has none; says what happened (never the token)."""
    from warpd.hub import save_token

    old = source.warp_root / TOKEN_FILE if source.warp_root is not None else None
    if old is None or not old.is_file():
        return "none found"
    if token_file.exists():
        return f"not copied: warpd already has {token_file}"
    try:
        token = old.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return "not copied: hub_token.txt is unreadable"
    if dry_run:
        return f"would be copied to {token_file} (mode 0600)"
    try:
        save_token(token_file, token)
    except ValueError:
        return "not copied: hub_token.txt does not hold a token"
    return f"copied to {token_file} (mode 0600)"


def import_sets_warp(path: str | Path, cfg: Any, *, dry_run: bool = False, progress: bool = True,
                     catalog: Catalog | None = None) -> ImportReport:
    """The whole import; raises :class:`SourceError` when PATH is not a SETS-WARP folder."""
    from warpd.paths import catalog_dir, data_paths
    from warpd.store import Store, open_store

    source = locate(path)
    paths = data_paths(cfg)
    report = ImportReport(str(source.warp_root or source.training_data), dry_run=dry_run)
    catalog = catalog or Catalog.load(catalog_dir(cfg))
    store: Store | None = None
    if not dry_run or paths.state_db.exists():
        store = open_store(cfg)
    try:
        importer = Importer(source, store, catalog, report, max_pixels=int(cfg.recognition.max_pixels),
                            progress=progress, dry_run=dry_run)
        importer.import_annotations()
        importer.import_screen_types()
    finally:
        if store is not None:
            store.close()
    report.token = copy_token(source, paths.token_file, dry_run)
    if source.warp_root is not None:
        report.old_install_id = (source.warp_root.joinpath(*OLD_INSTALL_ID)).is_file()
    return report


# --------------------------------------------------------------------------------------------------
# the verb
# --------------------------------------------------------------------------------------------------
def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "import-sets-warp", help="import your confirmed crops and screen types from SETS-WARP",
        description="Read a SETS-WARP warp/ folder (or its warp/training_data folder): confirmed "
                    "annotations become warpd training data (each item checked against its slot in "
                    "the catalogue; mistakes are skipped and counted), screen-type copies become "
                    "224-px samples, and hub_token.txt is copied when warpd has no token. Running it "
                    "twice adds nothing the second time.")
    parser.add_argument("path", metavar="PATH", help="the SETS-WARP warp/ or warp/training_data folder")
    parser.add_argument("--dry-run", action="store_true", help="report what would be imported; change nothing")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, cfg: Any) -> int:
    try:
        report = import_sets_warp(args.path, cfg, dry_run=args.dry_run, progress=not args.json)
    except SourceError as exc:
        print(f"warpd import-sets-warp: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        print(json.dumps(report.to_json(), ensure_ascii=False))
    else:
        print(summary(report))
    return EXIT_OK


def summary(report: ImportReport) -> str:
    """The human summary: counts first, then each skip reason with a few examples."""
    verb = "would import" if report.dry_run else "imported"
    states = ", ".join(f"{n} {s}" for s, n in sorted(report.states.items())) or "none"
    lines = [f"SETS-WARP folder: {report.source} ({', '.join(report.layouts) or 'no annotations.json'})",
             f"annotation records: {report.records} ({states})",
             f"{verb}: {report.imported} crops ({report.imported_text} ship type/tier text crops"
             f", {report.from_crop_index} only in crop_index.json)",
             f"already in warpd: {report.already_present}",
             f"skipped: {sum(report.skipped.values())}"]
    lines += _reasons(report.skipped, report.examples)
    lines.append(f"screen samples: {verb} {report.screens_imported}, already in warpd {report.screens_present}, "
                 f"skipped {sum(report.screens_skipped.values())} (downscaled to 224 px; the old copies have "
                 "no ship-name box, so it is not blacked out)")
    lines += _reasons(report.screens_skipped, report.examples)
    lines.append(f"hub token: {report.token}")
    if report.old_install_id:
        lines.append("install id: SETS-WARP's old id was found and not adopted; warpd keeps its own")
    return "\n".join(lines)


def _reasons(counts: Counter[str], examples: Mapping[str, list[str]]) -> list[str]:
    out = []
    for reason, n in counts.most_common():
        shown = examples.get(reason)
        out.append(f"  {reason}: {n}" + (f" (e.g. {'; '.join(shown)})" if shown else ""))
    return out
