"""Read the staging dataset at ONE pinned revision: every install's votes, crops and screen samples.

Why it looks like this (the predecessor's failures, ``shared/reference/community-pipeline.md``):

* **Pinned revision.** Clients keep committing while the trainer reads. :func:`collect` asks the Hub
  for the head commit once (``hub.head``) and lists and downloads everything at that commit id, so a
  batch committed mid-run is either wholly in (it was there at the pin) or wholly out.
* **Bounded parallel downloads.** Sequential per-file downloads took 1-2 s a crop and a
  ``snapshot_download`` once hung for an hour. Here every file is one ``hub.download`` call (the
  hub's own per-call timeout and transient retries apply), run by a ``ThreadPoolExecutor`` of
  ``workers`` threads; a file that still fails is retried a few more times with backoff, then
  counted as *missing*: its votes are dropped and reported, never trained on.
* **Everything is validated**, because everything comes from the network: paths through
  :func:`warpd.formats.parse_staging_path`, lines through :func:`warpd.formats.parse_annotation_lines`,
  labels against the item catalogue for their slot ("CLI Test Item" once reached production), ship
  types against the catalogue's ship lines, tiers against the valid tiers, PNGs by header before any
  pixel is decoded, and every crop's bytes against the sha256 in its file name (the predecessor's
  32-hex cut is accepted). Each refusal is counted under a short reason with a few examples.

Vote order ("first uploader"): the staging repo has no upload times, only the ``date`` field (a UTC
day) of each line. Votes are ordered by (date, the install's first appearance in the pinned listing,
the file, the line number); the listing is sorted by path, so installs appear in install-id order,
an arbitrary but stable tie-break. Within one install, ``annotations.jsonl`` (the predecessor's
append-only file) comes before the per-batch files, and batch files (named by their content hash)
by name. A line without a date sorts after every dated line: a missing date cannot make anyone
"first". ``Vote.order`` is the rank in that sort across the whole staging set.
"""

from __future__ import annotations

import io
import struct
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from warpd import formats
from warpd.formats import FormatError, StagingPath
from warpd.hub import Hub, HubError, HubNotFound, HubUnsafePath, RemoteFile
from warpd.preprocess import canonical_crop
from warpd.slots import SHIP_TIER, SHIP_TYPE, SLOT_GROUPS, TEXT_SLOTS_TRAINABLE, TIERS

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_NO_DATE = "9999-99-99"  # sorts after every real date


@dataclass
class CollectOptions:
    """How :func:`collect` reads the staging repo (central is configured by CLI flags mapped onto these)."""

    workers: int = 8
    """Parallel downloads. I/O bound: 8 keeps a 2-core runner busy without hammering the Hub."""
    max_pixels: int = 256 * 256
    """No image with more pixels is decoded (checked from the PNG header first)."""
    crop_min_side: int = 16
    """Crops smaller than this a side are refused (the daemon stores 64x64)."""
    crop_max_side: int = 256
    """Crops larger than this a side are refused before decoding."""
    screen_max_side: int = 256
    """Screen-type samples larger than this a side are refused (the daemon stores them <= 224)."""
    max_crop_bytes: int = 512 * 1024
    """A listed crop or screen sample larger than this is not even downloaded."""
    max_annotation_bytes: int = 32 * 1024 * 1024
    """A listed annotations file larger than this is not downloaded."""
    attempts: int = 3
    """Tries per file at this level (each ``hub.download`` already retries transient errors itself)."""
    backoff_s: float = 0.5
    """First wait between those tries; doubled each time."""
    max_examples: int = 3
    """Examples kept per rejection reason in the report."""
    repo_type: str = "dataset"
    """The staging repo's type on the Hub."""


@dataclass(frozen=True)
class Vote:
    """One install's label for one icon crop (a validated annotation line). ``order`` ranks it across
    the whole staging set (date, install's first appearance, file, line): lower is earlier."""

    install_id: str
    crop_sha: str
    name: str
    slot: str
    date: str
    line_no: int
    order: int


@dataclass(frozen=True)
class TextVote:
    """A Ship Type / Ship Tier confirmation: what OCR read (``ml_name``) and what the user said (``name``)."""

    install_id: str
    crop_sha: str
    name: str
    slot: str
    ml_name: str
    date: str
    line_no: int
    order: int


@dataclass(frozen=True)
class ScreenSample:
    """One screen-type sample: the type comes from its folder."""

    install_id: str
    sha: str
    rgb: np.ndarray


@dataclass
class CollectReport:
    """What a collection saw, kept, refused (by reason, with a few examples) and could not download."""

    revision: str = ""
    installs: int = 0
    files_listed: int = 0
    files_by_kind: Counter = field(default_factory=Counter)
    annotation_lines: int = 0
    votes: int = 0
    text_votes: int = 0
    crops: int = 0
    screens: int = 0
    downloads: int = 0
    retries: int = 0
    bytes: int = 0
    seconds: float = 0.0
    rejected: Counter = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)  # repo path -> why it could not be had

    @property
    def crops_per_s(self) -> float:
        """Crops and screen samples collected per second of wall time."""
        return (self.crops + self.screens) / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        """One line for the log."""
        top = ", ".join(f"{r}: {n}" for r, n in self.rejected.most_common(6))
        return (f"revision {self.revision[:12]}: {self.installs} installs, {self.files_listed} files, "
                f"{self.votes} votes, {self.text_votes} text votes, {self.crops} crops, {self.screens} screens, "
                f"{len(self.missing)} missing, {self.bytes / 1e6:.1f} MB in {self.seconds:.1f}s "
                f"({self.crops_per_s:.0f}/s); rejected: {top or 'none'}")


@dataclass
class Collected:
    """Everything read at one revision. ``crops`` holds only crops some kept vote refers to, each as a
    64x64 uint8 RGB array; ``votes`` only refer to crops present in ``crops``."""

    revision: str
    installs: list[str]
    votes: list[Vote]
    text_votes: list[TextVote]
    crops: dict[str, np.ndarray]
    screens: dict[str, list[ScreenSample]]
    report: CollectReport


class _Rejections:
    """Thread-safe counting of refusals: reason -> count, plus the first few examples."""

    def __init__(self, report: CollectReport, max_examples: int):
        self.report, self.max_examples = report, max_examples
        self._lock = threading.Lock()

    def add(self, reason: str, example: str) -> None:
        with self._lock:
            self.report.rejected[reason] += 1
            shown = self.report.examples.setdefault(reason, [])
            if len(shown) < self.max_examples:
                shown.append(example[:200])


@dataclass
class _Plan:
    """The pinned listing sorted into what to fetch, per install in first-appearance order."""

    installs: list[str] = field(default_factory=list)
    annotation_files: dict[str, list[RemoteFile]] = field(default_factory=lambda: defaultdict(list))
    crop_paths: dict[str, RemoteFile] = field(default_factory=dict)  # sha -> first listed copy
    crop_owners: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # sha -> installs
    screens: list[tuple[StagingPath, RemoteFile]] = field(default_factory=list)


# ------------------------------------------------------------------------------------ public API

def collect(hub: Hub, staging_repo: str, *, catalog: Any, revision: str | None = None, workers: int | None = None,
            max_pixels: int | None = None, options: CollectOptions | None = None,
            sleep: Callable[[float], None] = time.sleep) -> Collected:
    """Pin ``revision`` (default: the current head), read the whole staging set at it, validate it.

    ``catalog`` is a :class:`warpd.catalog.Catalog` (labels are checked against it). ``workers`` and
    ``max_pixels`` override ``options``. Raises :class:`warpd.hub.HubError` only when the pin or the
    listing fails (nothing can be read then); single files that fail are reported, not raised.
    """
    opts = options or CollectOptions()
    if workers is not None:
        opts = _replace(opts, workers=workers)
    if max_pixels is not None:
        opts = _replace(opts, max_pixels=max_pixels)
    started = time.monotonic()
    report = CollectReport()
    rejections = _Rejections(report, opts.max_examples)
    pinned = hub.head(staging_repo, repo_type=opts.repo_type, revision=revision or "main")
    report.revision = pinned
    listing = hub.list_files(staging_repo, formats.STAGING_ROOT, repo_type=opts.repo_type, revision=pinned)
    report.files_listed = len(listing)
    plan = plan_files(listing, rejections, opts)
    report.installs = len(plan.installs)
    report.files_by_kind.update(annotations=sum(len(v) for v in plan.annotation_files.values()),
                                crops=sum(len(v) for v in plan.crop_owners.values()), screens=len(plan.screens))
    fetcher = _Fetcher(hub, staging_repo, pinned, opts, report, sleep)
    with ThreadPoolExecutor(max_workers=max(1, opts.workers), thread_name_prefix="collect") as pool:
        raw_votes, raw_text = _read_annotations(plan, fetcher, pool, catalog, rejections, report)
        votes, text_votes = _assign_order(raw_votes, raw_text, plan.installs)
        crops = _fetch_crops({v.crop_sha for v in votes}, plan, fetcher, pool, rejections, opts)
        screens = _fetch_screens(plan, fetcher, pool, rejections, opts)
    kept = []
    for vote in votes:
        if vote.crop_sha in crops:
            kept.append(vote)
        else:
            reason = "crop missing" if vote.crop_sha in fetcher.failed else "crop not usable"
            if vote.crop_sha not in plan.crop_paths:
                reason = "crop not uploaded"
            rejections.add(f"vote dropped: {reason}", f"{vote.install_id}: {vote.crop_sha}")
    report.votes, report.text_votes = len(kept), len(text_votes)
    report.crops, report.screens = len(crops), sum(len(v) for v in screens.values())
    report.seconds = time.monotonic() - started
    return Collected(pinned, plan.installs, kept, text_votes, crops, screens, report)


def plan_files(listing: Iterable[RemoteFile], rejections: _Rejections, opts: CollectOptions) -> _Plan:
    """Sort listed paths into annotation files, crops and screen samples; refuse everything else.

    Hostile or malformed paths (``staging/../x``, a bad install id, upper-case hashes, unknown files)
    are counted as "bad path" and never fetched.
    """
    plan = _Plan()
    seen: set[str] = set()
    for remote in listing:
        try:
            parsed = formats.parse_staging_path(remote.path)
        except (FormatError, ValueError) as exc:
            rejections.add("bad path", f"{remote.path!r}: {exc}")
            continue
        if parsed.install_id not in seen:
            seen.add(parsed.install_id)
            plan.installs.append(parsed.install_id)
        limit = opts.max_annotation_bytes if parsed.kind in ("annotations", "batch") else opts.max_crop_bytes
        if remote.size > limit:
            rejections.add("file too large", f"{remote.path} ({remote.size} bytes)")
            continue
        if parsed.kind in ("annotations", "batch"):
            plan.annotation_files[parsed.install_id].append(remote)
        elif parsed.kind == "crop":
            plan.crop_owners[parsed.sha].add(parsed.install_id)
            plan.crop_paths.setdefault(parsed.sha, remote)
        else:
            plan.screens.append((parsed, remote))
    for files in plan.annotation_files.values():  # the legacy append-only file first, batches by name
        files.sort(key=lambda f: (not f.path.endswith("/" + formats.ANNOTATIONS_JSONL), f.path))
    return plan


def decode_png(data: bytes, *, min_side: int, max_side: int, max_pixels: int) -> np.ndarray:
    """PNG bytes -> uint8 RGB, refusing anything else. The size is read from the IHDR chunk and
    checked before a single pixel is decoded (a decompression bomb never allocates)."""
    if len(data) < 33 or not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR":
        raise ValueError("not a PNG")
    width, height = struct.unpack(">II", data[16:24])
    if width * height > max_pixels or max(width, height) > max_side:
        raise ValueError(f"too large ({width}x{height})")
    if min(width, height) < min_side:
        raise ValueError(f"too small ({width}x{height})")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None or image.shape[:2] != (height, width):
        raise ValueError("corrupt PNG")
    return np.ascontiguousarray(image[:, :, ::-1])


def sha_matches(data: bytes, sha: str) -> bool:
    """The file's bytes hash to its name: full sha256, or the predecessor's 32-hex prefix of it."""
    digest = formats.sha256_hex(data)
    return digest == sha if len(sha) == 64 else digest[:32] == sha


def encode_png(rgb: np.ndarray) -> bytes:
    """uint8 RGB -> PNG bytes (tests and tools build staging data with it)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buf, format="PNG")
    return buf.getvalue()


# ------------------------------------------------------------------------------------- fetching

class _Fetcher:
    """Downloads one file at the pinned revision, retrying failures with backoff; counts bytes."""

    def __init__(self, hub: Hub, repo: str, revision: str, opts: CollectOptions, report: CollectReport,
                 sleep: Callable[[float], None]):
        self.hub, self.repo, self.revision, self.opts, self.report = hub, repo, revision, opts, report
        self.sleep = sleep
        self.failed: set[str] = set()  # crop shas (or paths) that could not be had
        self._lock = threading.Lock()

    def get(self, path: str, key: str) -> bytes | None:
        """The file's bytes, or None after ``attempts`` failures (recorded in ``report.missing``)."""
        last = ""
        for attempt in range(max(1, self.opts.attempts)):
            try:
                data = self.hub.read_bytes(self.repo, path, repo_type=self.opts.repo_type, revision=self.revision)
            except (HubNotFound, HubUnsafePath) as exc:  # permanent at a pinned revision: no retry
                last = f"{type(exc).__name__}: {exc}"
                break
            except HubError as exc:
                last = f"{type(exc).__name__}: {exc}"
                if attempt + 1 < self.opts.attempts:
                    with self._lock:
                        self.report.retries += 1
                    self.sleep(self.opts.backoff_s * (2 ** attempt))
                continue
            with self._lock:
                self.report.downloads += 1
                self.report.bytes += len(data)
            return data
        with self._lock:
            self.failed.add(key)
            self.report.missing[path] = last[:300]
        return None


def _read_annotations(plan: _Plan, fetcher: _Fetcher, pool: ThreadPoolExecutor, catalog: Any,
                      rejections: _Rejections, report: CollectReport) -> tuple[list[tuple], list[tuple]]:
    """Download and parse every annotation file; returns sortable raw votes (order not yet assigned)."""
    jobs = [(iid, file_rank, remote) for iid in plan.installs
            for file_rank, remote in enumerate(plan.annotation_files.get(iid, []))]
    texts = pool.map(lambda job: fetcher.get(job[2].path, job[2].path), jobs)
    install_rank = {iid: rank for rank, iid in enumerate(plan.installs)}
    votes: list[tuple] = []
    text_votes: list[tuple] = []
    for (iid, file_rank, remote), text in zip(jobs, texts):
        if text is None:
            rejections.add("annotation file missing", remote.path)
            continue
        parsed = formats.parse_annotation_lines(text)
        report.annotation_lines += len(parsed.records) + len(parsed.rejected)
        for line_no, message in parsed.rejected:
            rejections.add(_line_reason(message), f"{remote.path}:{line_no}: {message}")
        numbers = _record_line_numbers(text, parsed)
        for record, line_no in zip(parsed.records, numbers):
            reason = check_label(record, catalog)
            where = f"{remote.path}:{line_no}: {record.slot} = {record.name!r}"
            if reason:
                rejections.add(reason, where)
                continue
            key = (record.date or _NO_DATE, install_rank[iid], file_rank, line_no)
            target = text_votes if record.slot in TEXT_SLOTS_TRAINABLE else votes
            target.append((key, iid, record, line_no))
    return votes, text_votes


def _record_line_numbers(text: bytes, parsed: formats.ParsedLines) -> list[int]:
    """Line numbers of the kept records (parse_annotation_lines keeps them in order, skipping blanks
    and refused lines)."""
    refused = {n for n, _ in parsed.rejected}
    lines = text.decode("utf-8", errors="replace").splitlines()
    return [n for n, line in enumerate(lines, start=1) if line.strip() and n not in refused]


def check_label(record: formats.Annotation, catalog: Any) -> str:
    """"" when the label is acceptable for its slot, else the reason it is not.

    Icon slots: the name must be an item the catalogue allows in that slot (boff seats in either
    environment). Ship Type: a ship type line of the catalogue. Ship Tier: a valid tier string.
    """
    if record.slot == SHIP_TYPE:
        return "" if record.name in catalog.ships else "unknown ship type"
    if record.slot == SHIP_TIER:
        return "" if record.name in TIERS else "unknown ship tier"
    if record.slot not in SLOT_GROUPS:
        return "slot not trainable"
    if catalog.slot_accepts(record.slot, record.name):
        return ""
    if SLOT_GROUPS[record.slot].kind == "boff" and catalog.slot_accepts(record.slot, record.name, "ground"):
        return ""
    if record.name not in catalog.all_names:
        return "label not in catalogue"
    return "label not valid for slot"


def _line_reason(message: str) -> str:
    """A short counter key for a line parse_annotation refused (the full message goes to the examples)."""
    lowered = message.lower()
    for needle, reason in (("ship name", "ship name line"), ("crop_sha256", "bad crop hash"),
                           ("slot", "bad slot"), ("date", "bad date"), ("expecting", "not json"),
                           ("json", "not json"), ("name", "bad label")):
        if needle in lowered:
            return reason
    return "bad line"


def _assign_order(raw_votes: list[tuple], raw_text: list[tuple], installs: list[str]
                  ) -> tuple[list[Vote], list[TextVote]]:
    """Sort every vote (icon and text together) by (date, install rank, file rank, line) and number them."""
    tagged = [(key, 0, i) for i, (key, *_rest) in enumerate(raw_votes)]
    tagged += [(key, 1, i) for i, (key, *_rest) in enumerate(raw_text)]
    tagged.sort()
    votes: list[Vote] = []
    text_votes: list[TextVote] = []
    for order, (key, is_text, index) in enumerate(tagged):
        _key, iid, rec, line_no = (raw_text if is_text else raw_votes)[index]
        if is_text:
            text_votes.append(TextVote(iid, rec.crop_sha256, rec.name, rec.slot, rec.ml_name, rec.date, line_no,
                                       order))
        else:
            votes.append(Vote(iid, rec.crop_sha256, rec.name, rec.slot, rec.date, line_no, order))
    return votes, text_votes


def _fetch_crops(wanted: set[str], plan: _Plan, fetcher: _Fetcher, pool: ThreadPoolExecutor,
                 rejections: _Rejections, opts: CollectOptions) -> dict[str, np.ndarray]:
    """Download each wanted crop once (whichever install's copy was listed first) and validate it."""
    shas = sorted(sha for sha in wanted if sha in plan.crop_paths)

    def one(sha: str) -> tuple[str, np.ndarray | None]:
        remote = plan.crop_paths[sha]
        data = fetcher.get(remote.path, sha)
        if data is None:
            return sha, None
        if not sha_matches(data, sha):
            rejections.add("crop hash mismatch", remote.path)
            return sha, None
        try:
            rgb = decode_png(data, min_side=opts.crop_min_side, max_side=opts.crop_max_side,
                             max_pixels=opts.max_pixels)
        except ValueError as exc:
            rejections.add(f"crop {str(exc).split(' (')[0]}", f"{remote.path}: {exc}")
            return sha, None
        return sha, canonical_crop(rgb)

    return {sha: rgb for sha, rgb in pool.map(one, shas) if rgb is not None}


def _fetch_screens(plan: _Plan, fetcher: _Fetcher, pool: ThreadPoolExecutor, rejections: _Rejections,
                   opts: CollectOptions) -> dict[str, list[ScreenSample]]:
    """Download and validate every screen-type sample; the same sha twice is kept once (first listed)."""
    unique: dict[str, tuple[StagingPath, RemoteFile]] = {}
    for parsed, remote in plan.screens:
        if parsed.sha in unique:
            rejections.add("screen sample duplicate", remote.path)
        else:
            unique[parsed.sha] = (parsed, remote)

    def one(item: tuple[StagingPath, RemoteFile]) -> tuple[StagingPath, np.ndarray | None]:
        parsed, remote = item
        data = fetcher.get(remote.path, remote.path)
        if data is None:
            return parsed, None
        if not sha_matches(data, parsed.sha):
            rejections.add("screen hash mismatch", remote.path)
            return parsed, None
        try:
            return parsed, decode_png(data, min_side=opts.crop_min_side, max_side=opts.screen_max_side,
                                      max_pixels=opts.max_pixels)
        except ValueError as exc:
            rejections.add(f"screen {str(exc).split(' (')[0]}", f"{remote.path}: {exc}")
            return parsed, None

    screens: dict[str, list[ScreenSample]] = defaultdict(list)
    for parsed, rgb in pool.map(one, list(unique.values())):
        if rgb is not None:
            screens[parsed.screen_type].append(ScreenSample(parsed.install_id, parsed.sha, rgb))
    return dict(screens)


def _replace(opts: CollectOptions, **changes: Any) -> CollectOptions:
    from dataclasses import replace

    return replace(opts, **changes)
