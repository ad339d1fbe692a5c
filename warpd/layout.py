"""Recognition stage 2: find the slot cells, rows and panels of a screenshot, from the image alone.

No panel sits at a fixed place and no resolution or UI scale is assumed (sto-domain.md, "Geometry"):
everything is measured from the pixels.

1. **Foreground.** On a copy no taller than :data:`WORK_MAX_HEIGHT` (cell gaps stay >= 2 px), each
   pixel is compared with the darkest colour of its neighbourhood (a min-pool, so the dark panel
   background between cells is the reference, not the icons). Icons, rarity frames, empty slots'
   frames and greyed locked slots all stand out; the panel's smooth background does not.
2. **Cells.** Connected components of that mask (their boxes from a contour tree: OpenCV's
   labelling with statistics costs ~10x more), with runs of touching cells split at the columns
   where the mask thins out, kept when their aspect fits a slot (w/h 0.5..0.97) and their size is
   plausible for a UI element.
3. **Rows and panels.** Cells of equal height on one line with a regular pitch form a row segment;
   segments stacked at a regular vertical pitch with a common right edge are an equipment panel
   (icons are right-justified), left-aligned stacks of <= 5 are traits, seats with a coloured
   marker bar are boffs, 3-wide trees are specialisations. Rows longer than any slot group
   (inventory grids, the combat tray) are refused. Cells a cursor hides are put back from the
   row's pitch, only between visible cells.
4. **State.** A colour check before any matching: dark, flat interior -> ``empty``; grey, flat,
   unsaturated -> ``locked``; else ``item``.
5. **Names.** Equipment rows are aligned to the canonical visual order with a DP over subsequences
   (max counts per row); OCR of the label left of each row (one stacked crop, English and German)
   is the DP's evidence. Trait grids are named by the header above them, boff seats by their
   marker colour. The ship text band above the first space row is OCR'd for type and tier; the
   ship name's box is reported, its text never read.
6. **Text gate.** Build screens always carry text. An equipment stack needs text labels left of
   most rows (one line, or two lines with a blank row between: a neighbouring grid's icons have
   none). With OCR, trait grids and boff seats on a screen with no equipment, no readable trait
   header, no seat/boff-header text and not both kinds together are dropped (game hotbars); such a
   grid with tree spacing is kept as a cell-less specialisation panel, and a grid whose header is a
   specialisation title becomes one.
"""

from __future__ import annotations

import csv
import re
import time
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Sequence

import cv2
import numpy as np
from rapidfuzz import fuzz

from warpd.slots import GROUND_EQUIPMENT, SLOT_GROUPS, SPACE_EQUIPMENT, TRAITS, SlotGroup, trait_slot_in

# ---------------------------------------------------------------- tunable thresholds
# Working copy height: at 1080 the thinnest cell gap the game draws (UI scale 0.8) is still >= 2 px.
WORK_MAX_HEIGHT = 1080
# Neighbourhood (work pixels) whose darkest colour is the local background reference.
BG_WINDOW_PX = 88
# Pooling step of the background estimate (work pixels); smaller keeps panel edges sharper.
BG_POOL_PX = 4
# A bright pixel must also rise this much above the local median level (0..255).
MEDIAN_MARGIN = 8
# A pixel brighter than the local background by this much (any channel, 0..255) is foreground.
FG_THRESHOLD = 24
# Cell size limits as fractions of the working image height.
MIN_CELL_H_FRAC = 0.022
MAX_CELL_H_FRAC = 0.17
MIN_CELL_H_PX = 14
# Width / height of a slot cell: equipment ~0.75, traits 0.55..0.95, boff abilities ~0.75.
MIN_ASPECT, MAX_ASPECT = 0.5, 1.1
# A slot row holds at most this many cells (Kit Modules 7); longer runs are inventory grids / trays.
MAX_ROW_CELLS = 7
# Cells of one row: heights within this ratio, centres within this fraction of the height.
ROW_H_TOL = 0.12
ROW_Y_TOL = 0.2
# cells chained into one row: found heights vary more than rows do (an empty frame with its glow,
# a dark icon found short)
CHAIN_H_TOL = 0.2
# a box this many times the typical cell's width and height (both) is a 2x2 block of cells
BLOCK_MIN, BLOCK_MAX = 1.85, 2.4
# rows stacked into one equipment panel: a row's median cell height within this share of the panel's
STACK_H_TOL = 0.2
# a cell found within this share of its panel's median cell size is redrawn at that size on its
# row's line (see _regular_box)
REGULAR_MAX_DEV = 0.3
# Neighbouring cells of one row are at most this many cell widths apart (edge to edge).
MAX_CELL_GAP_W = 0.6
# a run of touching cells (see _split_periodic): cell pitch / run height within these bounds, cut
# columns searched this many pixels either side of the even spacing, each cut's ink at most this
# share of the run's median column
SPLIT_MIN_ASPECT, SPLIT_MAX_ASPECT = 0.55, 1.15
SPLIT_SEARCH_PX = 3
SPLIT_MAX_DIP = 0.6
SPLIT_ROW_FILL = 0.6
SPLIT_MIN_FILL = 0.5
# a gap wider than this share of a cell is checked for a panel edge (a brightness step of at least
# BORDER_MIN_STEP levels down BORDER_MIN_RUN of a column reaching BORDER_REACH_H cell heights above
# and below the cells): cells on either side belong to different panels
BORDER_MIN_GAP_W = 0.3
BORDER_MIN_STEP = 14
BORDER_MIN_RUN = 0.85
BORDER_REACH_H = 0.4
# Pitch regularity: a step more than this off the row's pitch breaks the row.
PITCH_TOL = 0.15
# a step of two pitches means one hidden cell only when it is exactly two (boff seats are ~1.85 apart)
HIDDEN_CELL_TOL = 0.08
# Equipment rows carry a text label left of the panel: searched this many cell widths to the left,
# and at least this share of a stack's rows must show one (trait grids have bare panel there).
LABEL_SEARCH_W = 10.0  # short left-aligned labels of a wide panel (long German labels) stand far off
LABEL_MIN_SHARE = 0.6
# an equipment panel needs four stacked rows (LABEL_MIN_SHARE of them labelled), or this many with
# every one labelled: a tooltip can hide the rest
EQUIPMENT_MIN_ROWS_LABELLED = 3
# ... stacked at most this many cell heights apart (measured 1.16-1.24; boff seats ~1.45)
EQUIPMENT_MAX_STEP_H = 1.35
# a column lit over this share of the row's height is a frame line (even a broken one), not a label:
# two label lines with a gap cover at most about half of it
LABEL_FRAME_COV = 0.6
# the gap between two label lines holds at most this share of a text row's ink
LABEL_VALLEY = 0.15
# Equipment rows: right edges of one panel within this fraction of the cell width.
ALIGN_TOL_W = 0.3
# Rows of one panel are at most this many row heights apart (top to top).
MAX_ROW_STEP_H = 2.6
# ... or a whole number of the panel's row steps, with at most this many rows lost in between
MAX_MISSING_ROWS = 4  # a tooltip covers up to about four rows
# State check (interior statistics on 0..255 grey / saturation).
EMPTY_MAX_MEAN = 45.0
FLAT_MAX_STD = 8.0
LOCKED_MAX_SAT = 22.0
LOCKED_MAX_STD = 30.0
# grey spread of a locked frame outside its padlock (the middle half of the inner box): measured <= 14
# on locked slots, >= 24 on HDR-washed item icons that pass the two tests above
LOCKED_MAX_RING_STD = 18.0
# Boff marker bar: saturated or bright strip left of a seat's first cell.
MARKER_MIN_SAT = 45
# boff ability cells: h / w (other slots are ~1.17)
BOFF_MIN_HW = 1.24
BOFF_MAX_HW = 1.55
# specialisation tree nodes stand apart (gap / cell width); slot grids nearly touch
SPEC_MIN_GAP_W = 0.25
SPEC_MAX_GAP_W = 0.8  # wider: a row of slots with a cell missing
# a tree is 3 nodes wide; the primary and secondary trees stand side by side, and where the gap
# between them is no wider than a node gap their rows chain into one of 6
SPEC_MAX_ROW_CELLS = 6
MARKER_MIN_VAL = 70
MARKER_MIN_FRACTION = 0.45
# the left share of a marker's columns that shows the seat's profession (a specialist's stripe runs
# down its right edge; sto-domain.md)
MARKER_MAIN_ZONE = 0.6
# a marker pixel differs from the panel background by this much hue or value (OpenCV units)
MARKER_BG_HUE = 12.0
MARKER_BG_VAL = 30.0
# how far (saturation units) counts as one hue step of 10 when a marker's colour is matched: HDR
# washout and light themes pale every marker (a red one reads at saturation ~65, not ~190), while
# its hue holds; only Engineering and Universal share a hue, and they stay ~2 steps apart
MARKER_SAT_SCALE = 60.0
# a red or blue marker within this hue distance of Tactical's / Science's tells the screen's washout
MARKER_HUE_MATCH = 15.0
# saturation is restored by at most this factor (a red marker washed to a third of its saturation)
MARKER_MAX_GAIN = 3.5
# Label OCR: the line height passed to the OCR's upscaling, as a fraction of the row height; the real
# label line is ~0.25 of it, so 0.75 means "upscale only text smaller than a third of the OCR target".
LABEL_OCR_LINE_FACTOR = 0.75
# Label / header matching (rapidfuzz ratio 0..100).
LABEL_MIN_SCORE = 60.0
# rows named from counts alone with at least this confidence skip label OCR; the top rows are always read
OCR_SKIP_CONF = 0.9
OCR_TOP_ROWS = 2
# OCR whitelist for labels and headers (letters of English and German, space, hyphen, slash).
LABEL_WHITELIST = ("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyzÄÖÜäöüß -/")

UI_TRANSLATIONS = Path(__file__).resolve().parent / "data" / "catalog" / "ui_translations.csv"

TRAIT_HEADERS = {g.name for g in TRAITS}
SPEC_HEADERS = ("Primary Specialization", "Secondary Specialization")
BOFF_HEADERS = ("Space Stations", "Standard Away Team", "Bridge Officer")
# what a header above a left-aligned grid can say (a boff panel's grid looks like a trait grid when
# its markers are not seen)
TRAIT_PANEL_HEADERS = sorted(TRAIT_HEADERS) + list(SPEC_HEADERS) + list(BOFF_HEADERS)
BOFF_HEADER_MIN_SCORE = 0.85
# Boff seat marker colours measured on real screens (OpenCV HSV, H 0..179), sto-domain.md.
MARKER_PROFESSIONS: dict[str, tuple[int, int, int]] = {
    "Tactical": (0, 192, 106), "Engineering": (23, 155, 187), "Science": (108, 180, 150),
    "Universal": (26, 70, 213),
}


# ---------------------------------------------------------------- results
@dataclass
class Cell:
    """One slot cell in original-image pixels; ``index`` counts from 0 left to right."""

    bbox: tuple[int, int, int, int]
    state: str = "item"  # "item" | "empty" | "locked"
    index: int = 0
    inferred: bool = False  # put back from the row's pitch (hidden by a cursor or tooltip)


@dataclass
class Row:
    """One row of cells and its canonical slot name (``None`` when it cannot be named)."""

    slot: str | None
    name_confidence: float
    cells: list[Cell]
    label_text: str = ""

    @property
    def bbox(self) -> tuple[int, int, int, int]:
        return _union([c.bbox for c in self.cells])


@dataclass
class Panel:
    """A group of rows: ``kind`` equipment | traits | boffs | specs; ``environment`` space | ground | None."""

    kind: str
    environment: str | None
    rows: list[Row]
    header: str = ""

    @property
    def bbox(self) -> tuple[int, int, int, int]:
        return _union([r.bbox for r in self.rows])


@dataclass
class ShipTextRegion:
    """The SPACE_EQ ship band: the name's box (never read) and the raw type/tier lines for parse_type_tier."""

    name_bbox: tuple[int, int, int, int] | None
    type_bbox: tuple[int, int, int, int] | None
    lines: list[str] = field(default_factory=list)
    confidences: list[float] = field(default_factory=list)


@dataclass
class Layout:
    """Everything stage 2 found; ``scale`` is the median row pitch / image height."""

    panels: list[Panel]
    ship_text: ShipTextRegion | None
    scale: float
    timings: dict[str, float]
    texts: list[str] = field(default_factory=list)  # every label / header read, for the screen classifier

    @property
    def cells(self) -> list[Cell]:
        return [c for p in self.panels for r in p.rows for c in r.cells]


# ---------------------------------------------------------------- small helpers
def _union(boxes: Sequence[Sequence[int]]) -> tuple[int, int, int, int]:
    if not boxes:
        return (0, 0, 0, 0)
    x0 = min(b[0] for b in boxes)
    y0 = min(b[1] for b in boxes)
    x1 = max(b[0] + b[2] for b in boxes)
    y1 = max(b[1] + b[3] for b in boxes)
    return (int(x0), int(y0), int(x1 - x0), int(y1 - y0))


def fold_text(text: str) -> str:
    """Lower case, umlauts folded, only letters and single spaces: what label matching compares."""
    text = text.replace("ß", "ss")
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    text = re.sub(r"[^a-z]+", " ", text)
    return " ".join(text.split())


# ---------------------------------------------------------------- vocabulary
_CSV_CANONICAL = {"sec-def": "Secondary Deflector", "engines": "Impulse Engines", "impulse": "Impulse Engines",
                  "experimental": "Experimental Weapon", "singularity core": "Warp Core",
                  "singularity": "Warp Core", "shield": "Shields", "hangar": "Hangars"}


def _canonical_label(name: str) -> str | None:
    from warpd.slots import UnknownSlotError, normalize_slot

    low = name.strip().lower()
    if low in _CSV_CANONICAL:
        return _CSV_CANONICAL[low]
    try:
        return normalize_slot(name)
    except UnknownSlotError:
        for h in (*TRAIT_HEADERS, *SPEC_HEADERS, *BOFF_HEADERS):
            if h.lower() == low:
                return h
        return None


@lru_cache(maxsize=1)
def label_vocabulary() -> dict[str, tuple[str, ...]]:
    """Canonical name -> folded spellings (English label lines, aliases, German from ui_translations.csv)."""
    vocab: dict[str, set[str]] = {}

    def add(name: str | None, text: str) -> None:
        if name and fold_text(text):
            vocab.setdefault(name, set()).add(fold_text(text))

    for g in SPACE_EQUIPMENT + GROUND_EQUIPMENT:
        add(g.name, g.name)
        add(g.name, " ".join(g.label_lines))
    for alias, name in (("Shield", "Shields"), ("Hangar", "Hangars"), ("Impulse", "Impulse Engines"),
                        ("Engines", "Impulse Engines"), ("Experimental", "Experimental Weapon"),
                        ("Singularity Core", "Warp Core"), ("Weapon", "Weapons")):
        add(name, alias)
    for name in (*TRAIT_HEADERS, *SPEC_HEADERS, *BOFF_HEADERS):
        add(name, name)
    for name, variants in (("Space Reputation", ("Space Reputation Traits",)),
                           ("Active Space Rep", ("Active Space Reputation",)),
                           ("Ground Reputation", ("Ground Reputation Traits",)),
                           ("Active Ground Rep", ("Active Ground Reputation",))):
        for v in variants:
            add(name, v)
    try:
        with UI_TRANSLATIONS.open(encoding="utf-8") as fh:
            rows = [r for r in csv.reader(line for line in fh if not line.lstrip().startswith("#"))]
    except OSError:
        rows = []
    for r in rows[1:]:
        if len(r) >= 4 and r[0] in ("space_slot", "ground_slot", "screen_header"):
            add(_canonical_label(r[1]), r[3])
    return {k: tuple(sorted(v)) for k, v in vocab.items()}


def match_label(text: str, candidates: Iterable[str] | None = None) -> tuple[str | None, float]:
    """Best canonical name for an OCR'd label or header and a 0..1 score (two-line labels joined).

    Compares with and without spaces, so "Wissenschafts konsolen" and "Fore\\nWeapons" both match.
    """
    return _match_label(text, tuple(candidates) if candidates is not None else None)


@lru_cache(maxsize=4096)
def _match_label(text: str, candidates: tuple[str, ...] | None) -> tuple[str | None, float]:
    """Best canonical name for an OCR'd label or header and a 0..1 score (two-line labels joined).

    Compares with and without spaces, so "Wissenschafts konsolen" and "Fore\\nWeapons" both match.
    """
    folded = fold_text(text)
    if not folded:
        return None, 0.0
    vocab = label_vocabulary()
    names = list(candidates) if candidates is not None else list(vocab)
    best, best_score = None, 0.0
    squeezed = folded.replace(" ", "")
    for name in names:
        for variant in vocab.get(name, (fold_text(name),)):
            score = max(fuzz.ratio(folded, variant), fuzz.ratio(squeezed, variant.replace(" ", "")))
            if score > best_score:
                best, best_score = name, score
    if best_score < LABEL_MIN_SCORE:
        return None, best_score / 100.0
    return best, best_score / 100.0


# ---------------------------------------------------------------- row-order alignment
def align_rows(counts: Sequence[int], groups: Sequence[SlotGroup],
               scores: Sequence[Sequence[float]] | None = None,
               optional: Iterable[str] = ()) -> tuple[list[str | None], list[float], float]:
    """Name rows (top to bottom) by aligning them to the canonical order: a DP over subsequences.

    Row ``i`` may take group ``k`` only if ``counts[i] <= max_count`` and groups are used in
    increasing order. ``scores[i][k]`` (0..1, from label OCR; 0.5 = no evidence) rewards a naming;
    skipping a group costs a little, less for ``optional`` groups (rows a ship may lack). Returns
    names, per-row confidence (softmax margin of the max-marginals) and the best total.
    """
    n, K = len(counts), len(groups)
    if n == 0:
        return [], [], 0.0
    opt = set(optional)
    skip = [0.05 if g.name in opt else 0.35 for g in groups]
    NEG = -1e9

    # plain Python floats: the tables are ~13 x 14, where numpy's per-element indexing costs more
    # than the arithmetic (the DP runs several times per panel while labels are read)
    E = [[NEG if counts[i] > g.max_count else 2.0 * ((scores[i][k] if scores is not None else 0.5) - 0.5)
          for k, g in enumerate(groups)] for i in range(n)]
    cum_skip = [0.0]
    for sk in skip:
        cum_skip.append(cum_skip[-1] + sk)
    # forward: f[i][k] best score of rows 0..i with row i -> group k (groups before k skipped as needed)
    fl = [[NEG] * K for _ in range(n)]
    back = [[-1] * K for _ in range(n)]
    for k in range(K):
        fl[0][k] = E[0][k] - cum_skip[k]
    for i in range(1, n):
        fp, fi, bi, Ei = fl[i - 1], fl[i], back[i], E[i]
        for k in range(i, K):
            e = Ei[k]
            if e <= NEG / 2:
                continue
            best_j, best = 0, fp[0] - (cum_skip[k] - cum_skip[1])
            for j in range(1, k):
                v = fp[j] - (cum_skip[k] - cum_skip[j + 1])
                if v > best:
                    best_j, best = j, v
            fi[k] = best + e
            bi[k] = best_j
    # backward: b[i][k] best score of rows i+1.. given row i -> k (including trailing skips)
    bl = [[NEG] * K for _ in range(n)]
    for k in range(K):
        bl[n - 1][k] = -(cum_skip[K] - cum_skip[k + 1])
    for i in range(n - 2, -1, -1):
        En, bn, bi = E[i + 1], bl[i + 1], bl[i]
        for k in range(K):
            best = None
            for j in range(k + 1, K):
                f_e = En[j]
                if f_e > NEG / 2:
                    v = f_e + bn[j] - (cum_skip[j] - cum_skip[k + 1])
                    if best is None or v > best:
                        best = v
            bi[k] = best if best is not None else NEG
    f, b = np.array(fl), np.array(bl)
    marg = f + b
    total = float(marg[n - 1].max()) if n else 0.0
    k = int(np.argmax(f[n - 1] + b[n - 1]))
    path = [k]
    for i in range(n - 1, 0, -1):
        k = int(back[i][k])
        path.append(k)
    path.reverse()
    names: list[str | None] = []
    confs: list[float] = []
    for i, k in enumerate(path):
        if k < 0 or marg[i][k] <= NEG / 2:
            names.append(None)
            confs.append(0.0)
            continue
        names.append(groups[k].name)
        others = np.delete(marg[i], k)
        runner = float(others.max()) if others.size else NEG
        margin = float(marg[i][k] - runner)
        confs.append(float(1.0 / (1.0 + np.exp(-4.0 * margin))) if runner > NEG / 2 else 1.0)
    return names, confs, total


# ---------------------------------------------------------------- stage: foreground and cells
def _work_copy(rgb: np.ndarray) -> tuple[np.ndarray, float]:
    h = rgb.shape[0]
    if h <= WORK_MAX_HEIGHT:
        return rgb, 1.0
    f = WORK_MAX_HEIGHT / h
    return cv2.resize(rgb, None, fx=f, fy=f, interpolation=cv2.INTER_AREA), f


def foreground_masks(work: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two masks: things brighter than the local background, and things darker than it.

    Bright: a white top-hat (opening = min then max over a window larger than any cell) on the
    max-channel image finds what rises above the darkest nearby background, so the 2 px gaps of a
    dense icon grid stay background; it also has to rise above the local *median* level, otherwise
    a panel brighter than its dark empty slots (HDR washout, light panel themes) would light up as a
    whole. Dark: well below the local median (empty slots darker than their panel); it is kept
    separate because in a dense grid the gaps are below the median too. Both follow gradients.
    """
    v = _chan_max(work)
    h, w = v.shape
    step = BG_POOL_PX
    k = max(3, (BG_WINDOW_PX // step) | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (k, k))
    # per channel: a tinted tile (trait backgrounds, rarity-tinted icon fields) rises above the panel in
    # one channel only, which the max-channel image hides when the panel itself is bluish
    pooled = cv2.erode(work, cv2.getStructuringElement(cv2.MORPH_RECT, (step, step)))[step // 2::step, step // 2::step]
    opened = cv2.dilate(cv2.erode(pooled, kernel), kernel)
    # (the median on a coarser grid than the opening's is ~5 ms cheaper, but measured: it loses trait
    # cells next to bright panels on 1080p at UI scale 1.2, so both stay on one grid)
    mean_pool = cv2.resize(work, (pooled.shape[1], pooled.shape[0]), interpolation=cv2.INTER_AREA)
    median = cv2.medianBlur(mean_pool, k)
    opened = cv2.resize(opened, (w, h), interpolation=cv2.INTER_LINEAR)
    median = cv2.resize(median, (w, h), interpolation=cv2.INTER_LINEAR)
    # (OpenCV's saturating subtract and per-channel max: numpy's axis reductions on HxWx3 are ~20x slower)
    top = _chan_max(cv2.subtract(work, opened))
    above = _chan_max(cv2.subtract(work, median))
    bright = cv2.bitwise_and(cv2.threshold(top, FG_THRESHOLD, 1, cv2.THRESH_BINARY)[1],
                             cv2.threshold(above, MEDIAN_MARGIN, 1, cv2.THRESH_BINARY)[1])
    dark = cv2.threshold(cv2.subtract(_chan_max(median), v), FG_THRESHOLD, 1, cv2.THRESH_BINARY)[1]
    return bright, dark


def _chan_max(img: np.ndarray) -> np.ndarray:
    """Per-pixel maximum over the three channels."""
    c = cv2.split(img)
    return cv2.max(cv2.max(c[0], c[1]), c[2])


def _outer_boxes(mask: np.ndarray) -> np.ndarray:
    """Bounding boxes (N x 4: x, y, w, h) of the 8-connected components of a 0/1 mask.

    From the outer boundaries of a two-level contour tree, which names every component, those
    nested in another's hole included: ~1 ms at 1080p, where connectedComponentsWithStats takes
    7..13 ms (its statistics pass, not the labelling, is the cost).
    """
    contours, hier = cv2.findContours(mask, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    if hier is None or not contours:
        return np.zeros((0, 4), np.int32)
    outer = hier[0][:, 3] < 0
    return np.array([cv2.boundingRect(c) for c, o in zip(contours, outer) if o], np.int32).reshape(-1, 4)


def foreground_mask(work: np.ndarray) -> np.ndarray:
    """The bright foreground mask alone (labels, headers, icons)."""
    return foreground_masks(work)[0]


def _split_run(mask: np.ndarray, box: tuple[int, int, int, int], cell_h: int) -> list[tuple[int, int, int, int]]:
    """Split a component holding several touching cells at the columns where the mask thins out."""
    x, y, w, h = box
    cols = mask[y:y + h, x:x + w].sum(axis=0).astype(float)
    thresh = 0.25 * h
    out, start = [], None
    for i, v in enumerate(list(cols) + [0.0]):
        if v > thresh and start is None:
            start = i
        elif v <= thresh and start is not None:
            out.append((x + start, y, i - start, h))
            start = None
    return out


def _split_periodic(mask: np.ndarray, box: tuple[int, int, int, int], min_h: int) -> list[tuple[int, int, int, int]]:
    """Split a run of touching cells whose gaps never go dark (glowing gold frames, blur) at evenly
    spaced columns where the ink thins: the cell count whose boundaries fall on the clearest
    thinning wins, if the thinning is clear at all of them."""
    x, y, w, h = box
    cols = mask[y:y + h, x:x + w].sum(axis=0).astype(float)
    ref = float(np.median(cols))
    if ref <= 0:
        return []
    best: tuple[float, list[int]] | None = None
    for n in range(2, MAX_ROW_CELLS + 1):
        pitch = w / n
        if not SPLIT_MIN_ASPECT <= pitch / h <= SPLIT_MAX_ASPECT:
            continue
        cuts, score = [], 0.0
        for k in range(1, n):
            c = int(round(k * pitch))
            lo, hi = max(0, c - SPLIT_SEARCH_PX), min(w, c + SPLIT_SEARCH_PX + 1)
            j = lo + int(np.argmin(cols[lo:hi]))
            cuts.append(j)
            score = max(score, cols[j] / ref)
        if score < SPLIT_MAX_DIP and (best is None or score < best[0]):
            best = (score, cuts)
    if best is None:
        return []
    # the cells' own rows: where most of the run is lit (a decoration or glow above a frame is not)
    lit = np.flatnonzero(mask[y:y + h, x:x + w].mean(axis=1) >= SPLIT_ROW_FILL)
    if lit.size == 0:
        return []
    y, h = y + int(lit[0]), int(lit[-1] - lit[0] + 1)
    out = []
    edges = [0] + best[1] + [w]
    for a, b in zip(edges, edges[1:]):
        sx, sy, sw, sh = _tighten(mask, (x + a, y, b - a, h))
        # icons are solid: a hollow outline (a whole panel's frame) is not a run of cells
        if sh >= min_h and sw >= 2 and MIN_ASPECT <= sw / sh <= MAX_ASPECT and \
                float(mask[sy:sy + sh, sx:sx + sw].mean()) >= SPLIT_MIN_FILL:
            out.append((sx, sy, sw, sh))
    return out if len(out) == len(edges) - 1 else []


def _merge_fragments(mask: np.ndarray, max_h: int) -> np.ndarray:
    """Fill each small component's bounding box, so the pieces of one icon (frame, art, highlights)
    become one blob while neighbouring cells, separated by a background gap, stay apart."""
    st = _outer_boxes(mask)
    filled = np.zeros_like(mask)
    if not len(st):
        return filled
    # components of fewer than 3 pixels are specks: a component reaching 3 rows or columns has >= 3
    # pixels, and inside a box of at most 2x2 every lit pixel belongs to it, so its sum is its area
    small = (st[:, 2] < 3) & (st[:, 3] < 3)
    keep = (st[:, 3] <= max_h) & (st[:, 2] <= 2 * max_h)
    for i in np.flatnonzero(small & keep):
        x, y, w, h = st[i]
        keep[i] = int(mask[y:y + h, x:x + w].sum()) >= 3
    for x, y, w, h in st[keep]:
        filled[y:y + h, x:x + w] = 1
    return filled


def find_cells(work: np.ndarray, mask: np.ndarray | None = None) -> list[tuple[int, int, int, int]]:
    """Boxes (work pixels) of everything shaped like a slot cell."""
    dark = None
    if mask is None:
        mask, dark = foreground_masks(work)
    H = work.shape[0]
    min_h = max(MIN_CELL_H_PX, int(MIN_CELL_H_FRAC * H))
    max_h = int(MAX_CELL_H_FRAC * H)
    boxes = _cell_boxes(mask, min_h, max_h) + _edge_boxes(work, min_h, max_h)
    boxes += _tree_nodes(mask, min_h, max_h, boxes)
    if dark is not None:
        boxes += [b for b in _cell_boxes(dark, min_h, max_h, merge=False)]
    return boxes


# a specialisation tree's nodes are joined by thin connector lines, which make the whole tree one
# component too tall for a cell; a connector is at most this share of the smallest cell height wide
# (a 1..2 px line at any UI scale), and at least this share long (diamond outlines' diagonal edges
# are only a pixel or two tall per column, so they stay)
CONNECTOR_MAX_W = 0.2
CONNECTOR_MIN_LEN = 0.3
# only components this many max cell heights tall at most are cut (a whole panel frame is left alone)
CONNECTOR_MAX_H = 6
# a node left after the cut is a solid or outlined icon (measured >= ~0.3 of its box lit); the arcs of a
# ring (a minimap's rim) cut at its thin top, bottom and sides light only a few percent of theirs
CUT_MIN_FILL = 0.15
# components wider than any row and at most this many max cell heights tall are cut at their thin
# lines too (a separator line under or over a row of icons that touch it)
RULED_MAX_H = 2.0
# ... or at least this many times as wide as tall: a rule runs under the label column and the
# cells, so even a narrow panel's rule with its row of icons is >= ~5 heights wide (a row of
# touching cells alone, at most ~4.5, is left to _split_run)
RULED_MIN_ASPECT = 5.0
# in such a component only lines longer than this share of its height are cut
RULE_MIN_LEN_H = 1.5
# tree levels are a node plus a short connector apart (measured ~1.5 node heights), with margin;
# the pieces of one big shape cut at its thin parts stand much further apart
TREE_MAX_STEP_H = 2.0


def _tree_nodes(mask: np.ndarray, min_h: int, max_h: int,
                found: list[tuple[int, int, int, int]]) -> list[tuple[int, int, int, int]]:
    """Cells of components too big for a cell, found after their thin vertical and horizontal lines
    are removed: trees of nodes joined by connector lines (kept only where one component gives nodes
    on two or more levels), and a row's icons touching a separator line that runs across the panel
    (a component too wide for any row). None overlapping a cell found already."""
    st = _outer_boxes(mask)
    if not len(st):
        return []
    # too tall for a cell, or a column of nodes too narrow for one (small UI scale)
    is_tall = (((st[:, 3] > max_h) | ((st[:, 3] >= 2 * min_h) & (st[:, 2] < MIN_ASPECT * st[:, 3])))
               & (st[:, 3] <= CONNECTOR_MAX_H * max_h) & (st[:, 2] >= MIN_ASPECT * min_h)
               & (st[:, 2] <= CONNECTOR_MAX_H * max_h))
    # wider than any row of cells (what _merge_fragments leaves out) yet no taller than a few rows
    is_wide = (((st[:, 2] > 2 * max_h) | (st[:, 2] >= RULED_MIN_ASPECT * st[:, 3]))
               & (st[:, 3] >= min_h) & (st[:, 3] <= RULED_MAX_H * max_h))
    tall = st[is_tall | is_wide]
    wide = is_wide[is_tall | is_wide]
    thin = max(2, int(round(CONNECTOR_MAX_W * min_h))) + 1
    long = max(3, int(round(CONNECTOR_MIN_LEN * min_h)))
    out: list[tuple[int, int, int, int]] = []
    for (x, y, w, h), ruled in zip(tall.tolist(), wide.tolist()):
        sub = mask[y:y + h, x:x + w]
        n, lab = cv2.connectedComponents(sub, connectivity=8)
        # the component itself: the label most of its lit pixels carry
        own = (lab == np.bincount(lab[sub > 0]).argmax()).astype(np.uint8) if n > 2 else sub.copy()
        # a rule is longer than the row it touches is tall; an icon's own thin frame edges are not
        # (hollow icons, a console's dark screen, would otherwise fall apart)
        span = max(long, int(RULE_MIN_LEN_H * h)) if ruled else long
        vline = (own > _opened(own, (1, thin), ruled)) & (_opened(own, (span, 1), ruled) > 0)
        hline = (own > _opened(own, (thin, 1), ruled)) & (_opened(own, (1, span), ruled) > 0)
        cut = (own.astype(bool) & ~vline & ~hline).astype(np.uint8)
        # (fragments merged, and as they are: merging can fuse a 2x2 block of cells into one
        # cell-shaped box, which _dedupe later resolves into its parts)
        raw = list(dict.fromkeys(_cell_boxes(cut, min_h, max_h) + _cell_boxes(cut, min_h, max_h, merge=False)))
        nodes = [(bx + x, by + y, bw, bh) for bx, by, bw, bh in raw
                 if int(cut[by:by + bh, bx:bx + bw].sum()) >= CUT_MIN_FILL * bw * bh]
        nodes = [b for b in nodes if not any(_overlap(b, o) > 0 for o in found)]
        if not nodes:
            continue
        nh = _med([b[3] for b in nodes])
        if ruled or len(nodes) >= 2:
            # cells of a row (two or more of one height side by side) that touched a rule
            row = [b for b in nodes if any(o is not b and abs((o[1] + o[3] / 2) - (b[1] + b[3] / 2)) < ROW_Y_TOL * nh
                                           and abs(o[3] - b[3]) <= ROW_H_TOL * nh for o in nodes)]
            if ruled:
                out += [_trim_rows(cut, b, (x, y)) for b in nodes]
                continue
            if len(row) >= 2 and not _tree_levels(nodes, nh):
                out += [_trim_rows(cut, b, (x, y)) for b in row]
                continue
        if _tree_levels(nodes, nh):
            out += nodes
    return out


def _opened(own: np.ndarray, k: tuple[int, int], exact: bool) -> np.ndarray:
    """Morphological opening of a component's box by a k = (rows, cols) rectangle.

    ``exact`` (ruled components): the box is padded with background, so a rule along its top edge
    is a thin line too (a bare erosion takes the image border for more ink), and the dilation's
    anchor mirrors the erosion's, so an even kernel does not shift the result a pixel. Otherwise the
    plain erode/dilate pair that tree cuts were measured with: its one-pixel shift trims every solid
    shape's leading edge, which keeps a big rectangle's thick corners from passing for a row of cells.
    """
    ker = np.ones(k, np.uint8)
    if not exact:
        return cv2.dilate(cv2.erode(own, ker), ker)
    pad = max(k) + 1
    padded = cv2.copyMakeBorder(own, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
    mirrored = (k[1] - 1 - k[1] // 2, k[0] - 1 - k[0] // 2)
    return cv2.dilate(cv2.erode(padded, ker), ker, anchor=mirrored)[pad:-pad, pad:-pad]


def _trim_rows(cut: np.ndarray, box: tuple[int, int, int, int], origin: tuple[int, int]) -> tuple[int, int, int, int]:
    """A cell box less the rows at its top and bottom where little is lit (the stub of a rule it
    touched): an icon's outer rows, its frame, are mostly lit. Only the ends are trimmed: a hollow
    icon (a console's dark screen) has unlit rows inside."""
    bx, by, bw, bh = box
    sub = cut[by - origin[1]:by - origin[1] + bh, bx - origin[0]:bx - origin[0] + bw]
    if sub.size == 0:
        return box
    lit = np.flatnonzero(sub.mean(axis=1) >= SPLIT_ROW_FILL)
    if lit.size == 0:
        return box
    return (bx, by + int(lit[0]), bw, int(lit[-1] - lit[0] + 1))


def _tree_levels(nodes: list[tuple[int, int, int, int]], nh: float) -> bool:
    """Whether nodes stand on two or more levels a connector apart (a tree); the pieces of one big
    shape stand far apart."""
    levels: list[float] = []
    for c in sorted(b[1] + b[3] / 2 for b in nodes):
        if not levels or c - levels[-1] > 0.5 * nh:
            levels.append(c)
    return len(levels) >= 2 and all(b - a <= TREE_MAX_STEP_H * nh for a, b in zip(levels, levels[1:]))


EDGE_LOW, EDGE_HIGH = 30, 90
EDGE_MIN_FILL = 0.8


def _edge_boxes(work: np.ndarray, min_h: int, max_h: int) -> list[tuple[int, int, int, int]]:
    """Cell-shaped closed outlines in the edge map: every slot (item, empty, locked) is a framed
    rectangle with a sharp boundary, which survives where brightness masks merge touching cells
    (small UI scale, light frames) or lose them (HDR washout)."""
    edges = cv2.Canny(_chan_max(work), EDGE_LOW, EDGE_HIGH)
    contours, _ = cv2.findContours(edges, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return []
    rects = np.array([cv2.boundingRect(c) for c in contours], np.int32).reshape(-1, 4)
    w, h = rects[:, 2], rects[:, 3]
    ok = (h >= min_h) & (h <= max_h) & (w >= MIN_ASPECT * h) & (w <= MAX_ASPECT * h)
    out: list[tuple[int, int, int, int]] = []
    for i in np.flatnonzero(ok):
        x, y, bw, bh = (int(v) for v in rects[i])
        if cv2.contourArea(contours[i]) >= EDGE_MIN_FILL * bw * bh:
            out.append((x, y, bw, bh))
    return out


def _cell_boxes(mask: np.ndarray, min_h: int, max_h: int, merge: bool = True) -> list[tuple[int, int, int, int]]:
    """Cell-shaped components of one mask (fragments of one icon merged first)."""
    filled = _merge_fragments(mask, max_h) if merge else mask
    boxes: list[tuple[int, int, int, int]] = []
    st = _outer_boxes(filled)
    if not len(st):
        return boxes
    size_ok = (st[:, 3] >= min_h) & (st[:, 3] <= max_h) & (st[:, 2] >= min_h * MIN_ASPECT)
    for x, y, w, h in st[size_ok].tolist():
        # (the area test below counts the lit share of the box: a neighbour reaching into it counts
        # too, which only matters for L- and ring-shaped blobs)
        if w / h > MAX_ASPECT * 1.15:
            found = []
            for sub in _split_run(mask, (x, y, w, h), h):
                sx, sy, sw, sh = _tighten(mask, sub)
                if sh >= min_h and MIN_ASPECT <= sw / sh <= MAX_ASPECT:
                    found.append((sx, sy, sw, sh))
            if not found:
                found = _split_periodic(mask, (x, y, w, h), min_h)
            boxes.extend(found)
            continue
        if MIN_ASPECT <= w / h <= MAX_ASPECT and int(filled[y:y + h, x:x + w].sum()) >= 0.5 * w * h:
            boxes.append((x, y, w, h))
    return boxes


def _tighten(mask: np.ndarray, box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    x, y, w, h = box
    sub = mask[y:y + h, x:x + w]
    rows = np.flatnonzero(sub.any(axis=1))
    if rows.size == 0:
        return box
    return (x, y + int(rows[0]), w, int(rows[-1] - rows[0] + 1))


# ---------------------------------------------------------------- stage: rows
def _med(values: Iterable[float]) -> float:
    """Median of a short list: numpy's median costs ~15 us a call, and segments ask thousands of times."""
    v = sorted(values)
    n = len(v)
    if n == 0:
        return float("nan")
    return float(v[n // 2]) if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2.0


@dataclass
class _Seg:
    """A run of equally spaced, equally tall cells (work pixels)."""

    boxes: list[tuple[int, int, int, int]]
    inferred: list[bool]

    @property
    def h(self) -> float:
        return _med([b[3] for b in self.boxes])

    @property
    def w(self) -> float:
        return _med([b[2] for b in self.boxes])

    @property
    def x0(self) -> int:
        return self.boxes[0][0]

    @property
    def x1(self) -> int:
        return self.boxes[-1][0] + self.boxes[-1][2]

    @property
    def y0(self) -> float:
        return _med([b[1] for b in self.boxes])

    @property
    def yc(self) -> float:
        return _med([b[1] + b[3] / 2 for b in self.boxes])

    def pitch(self) -> float | None:
        if len(self.boxes) < 2:
            return None
        return float(np.median(np.diff([b[0] for b in self.boxes]) / np.maximum(
            1, np.round(np.diff([b[0] for b in self.boxes]) / max(1.0, self._unit())))))

    def _unit(self) -> float:
        steps = np.diff([b[0] for b in self.boxes])
        return float(steps.min()) if steps.size else self.w


# composite blobs (see _dedupe): parts at most this share of the blob's area, covering this share of it
COMPOSITE_PART_AREA = 0.5
COMPOSITE_MIN_COVER = 0.4


def _dedupe(boxes: list[tuple[int, int, int, int]]) -> list[tuple[int, int, int, int]]:
    """Drop boxes mostly inside a bigger one (an icon's inner frame next to its outer frame)."""
    boxes = sorted(set(boxes), key=lambda b: -b[2] * b[3])
    # a blob of several touching cells (a 2x2 block whose icons glow into each other) is cell-shaped
    # too: when two or more boxes of at most half its area lie inside it and cover most of it, it is
    # the union of those cells, not a bigger cell
    composite = set()
    for i, b in enumerate(boxes):
        area = b[2] * b[3]
        parts = [c for c in boxes[i + 1:] if c[2] * c[3] <= COMPOSITE_PART_AREA * area and _overlap(c, b) > 0.8]
        if len(parts) >= 2 and sum(c[2] * c[3] for c in parts) >= COMPOSITE_MIN_COVER * area:
            composite.add(i)
    boxes = [b for i, b in enumerate(boxes) if i not in composite]
    kept: list[tuple[int, int, int, int]] = []
    for b in boxes:
        if any(_overlap(b, k) > 0.6 for k in kept):
            continue
        kept.append(b)
    return kept


def _overlap(a: Sequence[int], b: Sequence[int]) -> float:
    """Intersection over the area of ``a``."""
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return ix * iy / max(1, a[2] * a[3])


def _split_at_seats(seg: _Seg, hsv: np.ndarray | None,
                    found: Sequence[tuple[int, int, int, int]] = ()) -> list[_Seg]:
    """Undo a hidden-cell fill where the 'hidden cell' is the gap between two boff seats (a marker bar
    stands just left of the next cell), and split rows too long for any panel at their inferred cells.
    A filled position where a cell-shaped box was found (an empty frame a little bigger than the
    icons beside it) is a cell, whatever stands beside it."""
    out: list[_Seg] = []
    cur_b: list[tuple[int, int, int, int]] = []
    cur_i: list[bool] = []
    n = len(seg.boxes)
    for k, (b, inf) in enumerate(zip(seg.boxes, seg.inferred)):
        if inf and 0 < k < n - 1 and not any(_overlap(b, o) > 0.5 for o in found) and (n > MAX_ROW_CELLS or (
                hsv is not None and _has_marker(hsv, _Seg([seg.boxes[k + 1]], [False]))[0])):
            out.append(_Seg(cur_b, cur_i))
            cur_b, cur_i = [], []
            continue
        cur_b.append(b)
        cur_i.append(inf)
    out.append(_Seg(cur_b, cur_i))
    return [s for s in out if s.boxes]


def _border_between(hsv: np.ndarray, a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    """Whether a panel edge runs between two cells of one line (from ``a``'s right edge to ``b``'s
    left edge, both excluded): a column whose brightness steps sharply above the cells, beside them
    and below them alike. Cells of one row share one panel background, so two panels side by side
    (a trait panel next to an equipment panel) must not make one row; an icon's own frame edge,
    even stacked over a grid's rows, stops at the gaps between the rows."""
    h = max(a[3], b[3])
    top, bottom = min(a[1], b[1]), max(a[1] + a[3], b[1] + b[3])
    y0 = int(max(0, top - BORDER_REACH_H * h))
    y1 = int(min(hsv.shape[0], bottom + BORDER_REACH_H * h))
    x0, x1 = int(a[0] + a[2]) + 1, int(b[0]) - 1
    if x1 - x0 < 2 or top - y0 < 2 or y1 - bottom < 2:
        return False
    v = hsv[y0:y1, x0:x1, 2].astype(np.int16)
    step = np.abs(np.diff(v, axis=1)) >= BORDER_MIN_STEP
    parts = (step[:top - y0], step[top - y0:bottom - y0], step[bottom - y0:])
    runs = np.minimum.reduce([p.mean(axis=0) for p in parts])
    return bool((runs >= BORDER_MIN_RUN).any())


def _split_blocks(boxes: list[tuple[int, int, int, int]]) -> list[tuple[int, int, int, int]]:
    """A 2x2 block of touching cells (glowing frames) is found as one cell-shaped box twice the size
    of the others: split it into its four cells. The typical cell size is the median of all boxes."""
    if len(boxes) < 6:
        return boxes
    mw, mh = _med([b[2] for b in boxes]), _med([b[3] for b in boxes])
    out = []
    for x, y, w, h in boxes:
        if BLOCK_MIN <= w / mw <= BLOCK_MAX and BLOCK_MIN <= h / mh <= BLOCK_MAX:
            gw, gh = max(1, int(round(0.04 * w))), max(1, int(round(0.04 * h)))
            cw, ch = (w - gw) // 2, (h - gh) // 2
            out += [(x + dx, y + dy, cw, ch) for dy in (0, h - ch) for dx in (0, w - cw)]
        else:
            out.append((x, y, w, h))
    return out


def build_segments(boxes: list[tuple[int, int, int, int]], hsv: np.ndarray | None = None) -> list[_Seg]:
    """Chain cells of equal height on one line into regularly spaced segments; refuse over-long ones."""
    boxes = sorted(_split_blocks(_dedupe(boxes)), key=lambda b: (b[0]))
    used = [False] * len(boxes)
    segs: list[_Seg] = []
    for i, b in enumerate(boxes):
        if used[i]:
            continue
        chain = [b]
        used[i] = True
        for j in range(i + 1, len(boxes)):
            if used[j]:
                continue
            c, last = boxes[j], chain[-1]
            if abs(c[3] - b[3]) > CHAIN_H_TOL * b[3] or abs((c[1] + c[3] / 2) - (b[1] + b[3] / 2)) > ROW_Y_TOL * b[3]:
                continue
            gap = c[0] - (last[0] + last[2])
            if gap < -0.2 * last[2]:
                continue
            if hsv is not None and gap > BORDER_MIN_GAP_W * last[2] and _border_between(hsv, last, c):
                break
            if gap > MAX_CELL_GAP_W * last[2] + 2.2 * last[2] * 0:
                # allow one hidden cell (cursor / tooltip) between two visible ones
                if gap > MAX_CELL_GAP_W * last[2] + last[2] * 1.25:
                    break
            chain.append(c)
            used[j] = True
        pieces: list[_Seg] = []
        for seg in _regularise(chain):
            pieces.extend(_split_at_seats(seg, hsv, boxes) if any(seg.inferred) else [seg])
        segs.extend(pieces)
    segs = [s for s in segs if len(s.boxes) <= MAX_ROW_CELLS]
    # a lone cell on a position a longer row already holds (an empty frame, taller than the icons
    # beside it, that the row filled in as a hidden cell) is that row's cell, not a row of its own
    rows = [s for s in segs if len(s.boxes) >= 2]
    return [s for s in segs if len(s.boxes) >= 2 or not any(
        _overlap(s.boxes[0], b) > 0.5 for r in rows for b in r.boxes)]


def _regularise(chain: list[tuple[int, int, int, int]]) -> list[_Seg]:
    """Split a chain where the pitch breaks; fill single hidden cells where the pitch says one is missing."""
    if len(chain) == 1:
        return [_Seg(chain, [False])]
    steps = np.diff([c[0] for c in chain])
    unit = float(np.median(steps[steps < 1.6 * steps.min() + 1])) if steps.size else 0
    out: list[_Seg] = []
    cur, inf = [chain[0]], [False]
    for c, st in zip(chain[1:], steps):
        ratio = st / max(1.0, unit)
        if abs(ratio - 1) <= PITCH_TOL:
            cur.append(c)
            inf.append(False)
        elif abs(ratio - 2) <= HIDDEN_CELL_TOL and len(chain) >= 3:
            prev = cur[-1]
            cur.append((int(prev[0] + unit), prev[1], prev[2], prev[3]))
            inf.append(True)
            cur.append(c)
            inf.append(False)
        else:
            out.append(_Seg(cur, inf))
            cur, inf = [c], [False]
    out.append(_Seg(cur, inf))
    return out


# ---------------------------------------------------------------- stage: panels
@dataclass
class _PanelDraft:
    kind: str
    segs: list[_Seg]


def marker_colour(hsv: np.ndarray, seg: _Seg) -> tuple[float, float, float] | None:
    """The (H, S, V) of a profession-coloured bar just left of the segment, or None when there is none.

    The seat's type is the marker's main zone; a specialist's stripe (another colour) runs down its
    right edge. Hue median taken around the commonest hue (red's hue wraps around 0: a plain median of
    2s and 178s lands between them), saturation and value plain medians.
    """
    x0 = seg.x0
    h = int(seg.h)
    y0 = int(seg.y0)
    w = int(seg.w)
    xs = max(0, x0 - int(0.55 * w))
    strip = hsv[y0 + h // 6:y0 + h - h // 6, xs:max(xs + 1, x0 - 1)]
    if strip.size == 0:
        return None
    sat, val = strip[:, :, 1], strip[:, :, 2]
    good = (val > MARKER_MIN_VAL) & ((sat > MARKER_MIN_SAT) | (val > 150))
    cols = np.flatnonzero(good.mean(axis=0) > 0.8)
    if cols.size > 0.4 * w and cols[0] == 0:
        # a washed-out panel is itself bright and coloured enough to pass: then the bar is what
        # stands out of the panel background at the strip's far left
        bg = np.median(strip[:, :2].reshape(-1, 3).astype(np.float32), axis=0)
        dh = np.abs(strip[:, :, 0].astype(np.float32) - bg[0])
        dh = np.minimum(dh, 180 - dh)
        good &= (dh > MARKER_BG_HUE) | (np.abs(val.astype(np.float32) - bg[2]) > MARKER_BG_VAL)
        cols = np.flatnonzero(good.mean(axis=0) > 0.8)
    if cols.size < 2 or cols.size > 0.4 * w:
        return None  # a seat marker is a narrow bar with background on its left
    if int(good[:, cols].sum()) < MARKER_MIN_FRACTION * strip.shape[0] * cols.size:
        return None
    main = cols[:max(1, int(np.ceil(MARKER_MAIN_ZONE * cols.size)))]
    px = strip[:, main][good[:, main]].astype(np.float64)
    peak = float(np.bincount((px[:, 0] // 10).astype(int) % 18, minlength=18).argmax() * 10 + 5)
    hh = (float(np.median((px[:, 0] - peak + 90.0) % 180.0)) + peak - 90.0) % 180.0
    return hh, float(np.median(px[:, 1])), float(np.median(px[:, 2]))


def _hue_dist(a: float, b: float) -> float:
    return min(abs(a - b), 180.0 - abs(a - b))


def marker_profession(colour: tuple[float, float, float], sat_gain: float = 1.0) -> str:
    """The profession whose measured marker colour is nearest; ``sat_gain`` undoes a screen-wide
    loss of saturation (see :func:`washout_gain`)."""
    hh, ss, vv = colour[0], colour[1] * sat_gain, colour[2]
    best, bd = "Universal", 1e9
    for prof, (ph, ps, pv) in MARKER_PROFESSIONS.items():
        d = (_hue_dist(hh, ph) / 10.0) ** 2 + ((ss - ps) / MARKER_SAT_SCALE) ** 2 + ((vv - pv) / 80.0) ** 2
        if d < bd:
            best, bd = prof, d
    return best


def washout_gain(colours: Iterable[tuple[float, float, float]]) -> float:
    """How much saturation the screen lost (HDR washout, a light theme), from its red and blue
    markers: their hues identify them whatever the washout, and their saturation should be the
    measured one. Engineering (saturated gold) and Universal (pale gold) share a hue and differ in
    saturation only, so a washed-out Engineering marker reads as Universal unless this is undone."""
    ratios = []
    for hh, ss, _vv in colours:
        prof = min(("Tactical", "Science"), key=lambda p: _hue_dist(hh, MARKER_PROFESSIONS[p][0]))
        if _hue_dist(hh, MARKER_PROFESSIONS[prof][0]) <= MARKER_HUE_MATCH:
            ratios.append(MARKER_PROFESSIONS[prof][1] / max(1.0, ss))
    return float(np.clip(np.median(ratios), 1.0, MARKER_MAX_GAIN)) if ratios else 1.0


def _has_marker(hsv: np.ndarray, seg: _Seg) -> tuple[bool, str | None]:
    """Whether a profession-coloured bar sits just left of the segment, and which profession it shows."""
    colour = marker_colour(hsv, seg)
    return (False, None) if colour is None else (True, marker_profession(colour))


def _seat_marker(hsv: np.ndarray, seg: _Seg) -> tuple[float, float, float] | None:
    """A seat's marker colour (None: no marker); boff ability icons are taller than other slots (h ~ 1.33
    w), so only such segments can be seats (a square trait icon's dim neighbour is no marker)."""
    if not BOFF_MIN_HW <= seg.h / max(1.0, seg.w) <= BOFF_MAX_HW:
        return None
    return marker_colour(hsv, seg)


def _label_left(mask: np.ndarray, seg: _Seg, left: float, hsv: np.ndarray | None = None) -> bool:
    """Whether a text label stands left of an equipment row: the nearest cluster of foreground left
    of the panel is one line (lower than about half the cell) or two lines with a blank row between
    them, where a neighbouring grid's icons fill the cell's height without a break. Columns that
    span the whole band are frame lines and are ignored. A label beyond a panel edge (given ``hsv``)
    belongs to another panel."""
    w, h = seg.w, seg.h
    x0, x1 = int(max(0, left - LABEL_SEARCH_W * w)), int(max(0, left - 0.12 * w))
    y0, y1 = int(max(0, seg.y0 + 0.03 * h)), int(seg.y0 + 0.97 * h)
    sub = mask[y0:y1, x0:x1]
    if sub.size == 0:
        return False
    cov = sub.mean(axis=0)
    cols = np.flatnonzero((cov > 0) & (cov < LABEL_FRAME_COV))
    if cols.size == 0:
        return False
    # the nearest cluster of ink at least a label's width (specks of a glowing row's spill, nearer,
    # are passed over)
    clusters: list[tuple[int, int]] = []
    for c in cols[::-1]:
        if clusters and clusters[-1][0] - c <= 0.9 * w:
            clusters[-1] = (int(c), clusters[-1][1])
        else:
            clusters.append((int(c), int(c)))
    wide = [(lo, right) for lo, right in clusters if right - lo >= 0.3 * h]
    if not wide:
        return False
    lo, right = wide[0]
    if hsv is not None and _border_between(hsv, (x0 + int(lo), y0, int(right - lo + 1), y1 - y0), seg.boxes[0]):
        return False
    part = sub[:, lo:right + 1].copy()
    part[:, cov[lo:right + 1] >= LABEL_FRAME_COV] = 0
    rows = np.flatnonzero(part.any(axis=1))
    ext_h = rows[-1] - rows[0] + 1
    if ext_h < 0.55 * h:
        return True
    # a (nearly) blank row between the two label lines: blur, JPEG and a broken frame line leave a
    # little ink in it, far less than in the lines
    dens = part.sum(axis=1)
    filled = (dens > max(1.0, LABEL_VALLEY * float(dens.max())))[rows[0]:rows[-1] + 1]
    return bool((~filled[int(0.2 * ext_h):int(0.8 * ext_h) + 1]).any())


def group_panels(segs: list[_Seg], hsv: np.ndarray,
                 mask: np.ndarray | None = None) -> list[tuple[str, list[_Seg], list[str | None]]]:
    """Group segments into panels and decide each panel's kind from alignment and markers."""
    remaining = sorted(segs, key=lambda s: (s.y0, s.x0))
    colours = {id(s): _seat_marker(hsv, s) for s in remaining}
    gain = washout_gain([c for c in colours.values() if c is not None])
    marker = {k: (False, None) if c is None else (True, marker_profession(c, gain)) for k, c in colours.items()}
    for s in remaining:  # a cell just left of the segment means it is part of a longer grid, not a seat
        if any(t is not s and abs(t.yc - s.yc) < ROW_Y_TOL * s.h and 0 <= s.x0 - t.x1 < 0.8 * s.w for t in remaining):
            marker[id(s)] = (False, None)
    panels: list[tuple[str, list[_Seg], list[str | None]]] = []
    # boff seats: every segment with a marker bar is a seat
    seats = [s for s in remaining if marker[id(s)][0] and len(s.boxes) <= 4]
    if seats:
        panels.append(("boffs", seats, [marker[id(s)][1] for s in seats]))
    rest = [s for s in remaining if not (marker[id(s)][0] and len(s.boxes) <= 4)]
    # equipment: stacks sharing a right edge
    used: set[int] = set()
    for s in sorted(rest, key=lambda s: s.y0):
        if id(s) in used:
            continue
        stack = [s]
        for t in sorted(rest, key=lambda s: s.y0):
            if id(t) in used or t is s or t.y0 <= stack[-1].y0:
                continue
            last = stack[-1]
            # against the stack's typical row, not just the last one (a dark icon is found short)
            ref_h = _med([u.h for u in stack])
            if abs(t.h - ref_h) > STACK_H_TOL * ref_h or abs(t.x1 - last.x1) > ALIGN_TOL_W * last.w:
                continue
            if t.y0 - last.y0 > MAX_ROW_STEP_H * last.h:
                # rows lost in between (cells merged into a blob, a washed-out row): a step of a
                # whole number of the stack's row steps still continues it
                steps = np.diff([u.y0 for u in stack])
                if not steps.size:
                    continue
                unit = float(steps.min())
                k = (t.y0 - last.y0) / max(1.0, unit)
                if k > MAX_MISSING_ROWS + 1.2 or abs(k - round(k)) > 0.15:
                    continue
            stack.append(t)
        lefts = [t.x0 for t in stack]
        counts = [len(t.boxes) for t in stack]
        sgaps = [(t.x1 - t.x0 - len(t.boxes) * t.w) / max(1, len(t.boxes) - 1) for t in stack if len(t.boxes) > 1]
        tree_like = bool(sgaps) and float(np.median(sgaps)) > SPEC_MIN_GAP_W * s.w  # spec nodes stand apart
        n_labels = len(stack) if mask is None else sum(_label_left(mask, t, min(lefts), hsv) for t in stack)
        # four rows, most labelled; or (a tooltip hiding the rest) three, every one labelled
        # (rows next to each other: boff seats stand further apart than equipment rows)
        tight = all(b.y0 - a.y0 <= EQUIPMENT_MAX_STEP_H * a.h for a, b in zip(stack, stack[1:]))
        enough = (len(stack) >= 4 and n_labels >= LABEL_MIN_SHARE * len(stack)) or \
            (len(stack) >= EQUIPMENT_MIN_ROWS_LABELLED and n_labels == len(stack) and tight)
        if enough and (max(lefts) - min(lefts)) > 0.5 * s.w and len(set(counts)) >= 2 and not tree_like:
            for t in stack:
                used.add(id(t))
            panels.append(("equipment", stack, [None] * len(stack)))
    rest = [s for s in rest if id(s) not in used]
    # traits / specs: left-aligned grids of short rows
    for grid in _left_stacks(rest):
        counts = [len(t.boxes) for t in grid]
        gaps = [(t.x1 - t.x0 - len(t.boxes) * t.w) / max(1, len(t.boxes) - 1) for t in grid if len(t.boxes) > 1]
        # a row longer than one tree's must itself be spaced like tree nodes (two trees chained)
        wide_ok = all(SPEC_MIN_GAP_W * t.w < (t.x1 - t.x0 - len(t.boxes) * t.w) / (len(t.boxes) - 1)
                      for t in grid if len(t.boxes) > 3)
        if max(counts) <= SPEC_MAX_ROW_CELLS and wide_ok and gaps \
                and SPEC_MIN_GAP_W * grid[0].w < np.median(gaps) < SPEC_MAX_GAP_W * grid[0].w:
            if len(grid) < 2:
                continue  # a tree has several levels
            panels.append(("specs", grid, [None] * len(grid)))
        elif max(counts) <= 5:
            if len(grid) == 1 and counts[0] < 2:
                continue
            panels.append(("traits", grid, [None] * len(grid)))
    return panels


PROBE_MIN_FILL = 0.35
# an equipment row grows leftwards only into positions this solidly lit (its labels stand there)
EQUIPMENT_LEFT_FILL = 0.6
# a lone row this many row steps above / below an equipment panel may still be one of its rows
ADOPT_MAX_STEPS = 4
# such a row's cells may be found this much taller or shorter than the panel's (a glowing frame's
# glow above it reaches about a third of a cell)
ADOPT_H_TOL = 0.35
TRAIT_ROW_CELLS = 5
SEAT_MAX_CELLS = 4
# named seats (marker colour or title) that keep a boff panel whose header could not be read
SEATS_WITHOUT_TEXT = 3
# a boff panel's two seat columns stand at most this many cell widths apart (marker bar and margin)
SEAT_COLUMN_MAX_GAP_W = 3.0
# a title word this close (rapidfuzz ratio) to a profession names the seat
SEAT_WORD_MIN_SCORE = 80
# margin (share of the found line's height) added around a seat title before it is read
SEAT_TITLE_MARGIN = 0.4
# where a trait header stands above its section's first row (cell heights): read when no clean text
# line was found there
HEADER_BAND_H = 0.8
# trait grids: rows of one section stand ~1.15 cell heights apart; a header between two sections
# makes the step ~1.9 h. Pieces of one grid are joined across at most SECTION_MAX_GAP_H of gap.
SECTION_MIN_STEP_H = 1.55
SECTION_MAX_GAP_H = 1.2
# an empty or locked frame is the whole cell; a round trait icon inside it is found ~15% smaller
GRID_PIECE_H_TOL = 0.25
NEAR_PITCH_W = 1.1  # pitch / cell width of a grid of (nearly) touching cells


def _probe(mask: np.ndarray, dark: np.ndarray, box: tuple[int, int, int, int], fill: float = PROBE_MIN_FILL) -> bool:
    """Whether a box at a grid position holds a slot: enough bright (icon, frame) or dark (empty) pixels."""
    x, y, w, h = box
    if x < 0 or y < 0 or x + w > mask.shape[1] or y + h > mask.shape[0] or w < 2 or h < 2:
        return False
    m = mask[y:y + h, x:x + w]
    d = dark[y:y + h, x:x + w]
    return max(float(m.mean()), float(d.mean())) >= fill


def _adopt_rows(drafts: list[tuple[str, list[_Seg], list[str | None]]], segs: list[_Seg], mask: np.ndarray,
                dark: np.ndarray) -> None:
    """Equipment rows the stacking missed: a leftover segment of the panel's cell height inside the
    panel's span (a row short of the right edge because its last cell was not found), and, where two
    rows stand two or more row steps apart, a slot-like cell at the right edge of each missing step."""
    taken = {id(s) for _k, st, _e in drafts for s in st}
    for kind, stack, extra in drafts:
        if kind != "equipment" or len(stack) < 2:
            continue
        # the left part of a long equipment row (kit modules, consoles) split off as a one-row grid
        for okind, ostack, oextra in drafts:
            if okind not in ("traits", "specs") or len(ostack) != 1:
                continue
            t = ostack[0]
            row = min(stack, key=lambda r: abs(r.yc - t.yc))
            if abs(row.yc - t.yc) < ROW_Y_TOL * row.h and abs(t.h - row.h) <= ROW_H_TOL * row.h and \
                    0 <= row.x0 - t.x1 < 3 * row.w and len(t.boxes) + len(row.boxes) <= MAX_ROW_CELLS:
                row.boxes[:0] = t.boxes
                row.inferred[:0] = t.inferred
                ostack.clear()
                oextra.clear()
        h = float(_med([s.h for s in stack]))
        w = float(_med([s.w for s in stack]))
        right = float(_med([s.x1 for s in stack]))
        left = min(s.x0 for s in stack)
        ys = sorted(s.y0 for s in stack)
        cs = sorted(s.yc for s in stack)
        diffs = np.diff(ys)
        step = float(np.median(diffs[diffs < 1.6 * diffs.min() + 1]))
        added: list[_Seg] = []
        for t in segs:
            if id(t) in taken or t.x0 < left - 0.5 * w or t.x1 > right + 0.5 * w:
                continue
            # a row found a little short (a dark icon) still counts when it ends on the right edge
            tol = GRID_PIECE_H_TOL if abs(t.x1 - right) <= ALIGN_TOL_W * w else ROW_H_TOL
            # (and as wide as the panel's cells: a sliver of glow between two rows is no row)
            if abs(t.h - h) > tol * h or abs(t.w - w) > GRID_PIECE_H_TOL * w:
                continue
            if not ys[0] - 1.2 * step <= t.y0 <= ys[-1] + 1.2 * step:
                continue
            if any(abs(t.y0 - y) < 0.5 * h for y in ys + [a.y0 for a in added]):
                continue
            added.append(t)
            taken.add(id(t))
        # rows a few steps above the top or below the bottom (the rows between were lost: cells merged
        # into one blob), kept apart as a one-row grid: on the panel's row grid, right of the panel's
        # labels, and labelled themselves
        if mask is not None:
            def on_grid(t: _Seg) -> bool:
                # (a row may reach further left than the panel's rows found so far: kit modules, six)
                pitch = _row_pitch([t])
                # (a row of glowing frames is found taller, its glow above it: heights within
                # ADOPT_H_TOL, and the row steps counted between centres)
                if abs(t.h - h) > ADOPT_H_TOL * h or t.x0 < min(left, right - MAX_ROW_CELLS * pitch) - 0.5 * w \
                        or t.x1 > right + 0.5 * w:
                    return False
                if not right - ALIGN_TOL_W * w - ADOPT_MAX_STEPS * pitch <= t.x1:
                    return False
                k = (t.yc - cs[0]) / step if t.yc < cs[0] else (t.yc - cs[-1]) / step
                if not 0.8 <= abs(k) <= ADOPT_MAX_STEPS + 0.2 or abs(abs(k) - round(abs(k))) > 0.2:
                    return False
                return _label_left(mask, t, min(left, t.x0))

            for okind, ostack, oextra in drafts:
                if okind not in ("traits", "specs") or not ostack or len(ostack) > ADOPT_MAX_STEPS:
                    continue
                if not all(on_grid(t) for t in ostack):
                    continue
                added.extend(ostack)
                ostack.clear()
                oextra.clear()
        allys = sorted(ys + [a.y0 for a in added])
        for y0, y1 in zip(allys, allys[1:]):
            k = int(round((y1 - y0) / step))
            if k < 2 or abs((y1 - y0) / step - k) > 0.2:
                continue
            for j in range(1, k):
                box = (int(round(right - w)), int(round(y0 + j * step)), int(round(w)), int(round(h)))
                if _probe(mask, dark, box):
                    added.append(_Seg([box], [True]))
        if added:
            stack.extend(added)
            stack.sort(key=lambda s: s.y0)
            extra[:] = [None] * len(stack)


PANEL_H_TOL = 0.3
# boff ability cells are about as tall as equipment cells (one UI scale): seats outside this range
# of the equipment cell height are not seats
SEAT_H_RANGE = (0.6, 1.6)
# a trait grid with this share of its box inside an equipment panel's cell area belongs to it
INSIDE_EQUIPMENT = 0.3


def _reclaim_edge_seats(drafts: list[tuple[str, list[_Seg], list[str | None]]]) -> None:
    """A 'seat' on an equipment panel's right edge, within its rows' span, is one of its rows whose
    label (washed out, coloured) or left neighbour looked like a marker bar. Done before the panel's
    missing rows are probed (which would take the seat's last cell and leave it off the edge) and
    again once the panels are complete."""
    boffs = next((d for d in drafts if d[0] == "boffs"), None)
    if boffs is None:
        return
    for host in [d for d in drafts if d[0] == "equipment" and len(d[1]) >= 2]:
        right = float(_med([r.x1 for r in host[1]]))
        top, bottom = min(r.y0 for r in host[1]), max(r.y0 + r.h for r in host[1])
        w = float(_med([r.w for r in host[1]]))
        # (within its rows' span, or the row just below its last: its last row's label taken for a marker)
        mine = [i for i, sg in enumerate(boffs[1]) if abs(sg.x1 - right) <= ALIGN_TOL_W * w
                and top - 0.5 * sg.h <= sg.y0 <= bottom + 0.5 * sg.h]
        if mine:
            _merge_into_rows(host, [boffs[1][i] for i in mine])
            boffs[1][:] = [sg for i, sg in enumerate(boffs[1]) if i not in mine]
            boffs[2][:] = [e for i, e in enumerate(boffs[2]) if i not in mine]


def _prune_panels(drafts: list[tuple[str, list[_Seg], list[str | None]]]) -> list[tuple[str, list[_Seg], list[str | None]]]:
    """Panel-level consistency: one UI scale per screenshot, so a trait or tree grid whose cells are
    far from the equipment / boff cell height is not a panel; a one-row 'trait' grid of boff-shaped
    cells next to a boff panel is a seat whose marker was not seen."""
    # (a lone 'seat' is weak evidence of the scale: a tree node fused with its connector looks like one)
    anchors = [s.h for k, st, _e in drafts if k == "equipment" or (k == "boffs" and len(st) >= 2) for s in st]
    ref = float(np.median(anchors)) if anchors else None
    eq_h = [s.h for k, st, _e in drafts if k == "equipment" for s in st]
    eq_ref = float(np.median(eq_h)) if eq_h else None
    eq_boxes = [_union([b for s in st for b in s.boxes]) for k, st, _e in drafts if k == "equipment"]
    boffs = next((d for d in drafts if d[0] == "boffs"), None)
    if boffs is not None and eq_ref is not None:
        # a 'seat' of cells far smaller or bigger than the equipment's (one UI scale) is an icon's
        # detail with a coloured stripe beside it, not a seat
        keep = [i for i, sg in enumerate(boffs[1]) if SEAT_H_RANGE[0] * eq_ref <= sg.h <= SEAT_H_RANGE[1] * eq_ref]
        boffs[1][:] = [boffs[1][i] for i in keep]
        boffs[2][:] = [boffs[2][i] for i in keep]
        _reclaim_edge_seats(drafts)
    out = []
    for kind, stack, extra in drafts:
        if not stack:
            continue
        if kind == "traits" and eq_boxes:
            # a grid inside an equipment panel's cell area is made of its rows' cells (a split row,
            # rows not stacked), not a trait panel
            box = _union([b for sg in stack for b in sg.boxes])
            inside = next((i for i, e in enumerate(eq_boxes) if _overlap(box, e) > INSIDE_EQUIPMENT), None)
            if inside is not None:
                host = [d for d in drafts if d[0] == "equipment"][inside]
                _merge_into_rows(host, stack)
                continue
            # rows right-justified on an equipment panel's right edge, continuing it just below or
            # overlapping it: the panel's lower rows, split off where the stacking broke
            host = next((d for d in drafts if d[0] == "equipment" and _continues(d[1], stack)), None)
            if host is not None:
                host[1].extend(stack)
                host[1].sort(key=lambda sg: sg.y0)
                host[2][:] = [None] * len(host[1])
                continue
        if kind in ("traits", "specs") and ref is not None:
            h = float(_med([s.h for s in stack]))
            if abs(h - ref) > PANEL_H_TOL * ref:
                continue
        if kind == "traits" and boffs is not None and all(
                BOFF_MIN_HW <= s.h / max(1.0, s.w) <= BOFF_MAX_HW and len(s.boxes) <= 4 for s in stack):
            boffs[1].extend(stack)
            boffs[2].extend([None] * len(stack))
            continue
        out.append((kind, stack, extra))
    return out


def _join_line_pieces(stack: list[_Seg], extra: list[str | None]) -> None:
    """One equipment row per line: pieces of a row split where a cursor hides a cell (or a gap
    broke the chain) join into one row, so the row count the names are aligned on is right."""
    i = 0
    while i + 1 < len(stack):
        a, b = stack[i], stack[i + 1]
        if abs(a.yc - b.yc) < ROW_Y_TOL * max(a.h, b.h) and len(a.boxes) + len(b.boxes) <= MAX_ROW_CELLS:
            pairs = sorted(zip(a.boxes + b.boxes, a.inferred + b.inferred), key=lambda p: p[0][0])
            a.boxes, a.inferred = [p[0] for p in pairs], [p[1] for p in pairs]
            del stack[i + 1]
            del extra[i + 1]
            continue
        i += 1


def _add_cells(row: _Seg, piece: _Seg, max_cells: int) -> bool:
    """Give a row the cells of a piece on its line that it does not already have, in x order; False,
    and nothing added, when the row would hold more than ``max_cells``."""
    new = [(b, i) for b, i in zip(piece.boxes, piece.inferred) if not any(_overlap(b, k) > 0.3 for k in row.boxes)]
    if len(row.boxes) + len(new) > max_cells:
        return False
    pairs = sorted(list(zip(row.boxes, row.inferred)) + new, key=lambda p: p[0][0])
    row.boxes, row.inferred = [p[0] for p in pairs], [p[1] for p in pairs]
    return True


def _merge_into_rows(host: tuple[str, list[_Seg], list[str | None]], segs: list[_Seg]) -> None:
    """Give an equipment panel the cells of segments found inside it: each joins the row on its line
    (cells it does not already have, up to a row's maximum), or becomes a row of its own."""
    rows = host[1]
    for sg in segs:
        row = min(rows, key=lambda r: abs(r.yc - sg.yc))
        if abs(row.yc - sg.yc) < ROW_Y_TOL * row.h:
            _add_cells(row, sg, MAX_ROW_CELLS)
        elif abs(sg.h - row.h) <= ROW_H_TOL * row.h:
            rows.append(sg)
    rows.sort(key=lambda r: r.y0)
    host[2][:] = [None] * len(rows)


def _continues(panel: list[_Seg], rows: list[_Seg]) -> bool:
    """Whether ``rows`` continue an equipment panel downwards: same cell height, every row ending at
    the panel's right edge, the first within two row steps below the panel's last row."""
    if len(panel) < 2:
        return False
    h, w = float(_med([s.h for s in panel])), float(_med([s.w for s in panel]))
    right = float(_med([s.x1 for s in panel]))
    ys = sorted(s.y0 for s in panel)
    step = float(np.min(np.diff(ys)))
    if any(abs(r.h - h) > ROW_H_TOL * h or abs(r.x1 - right) > ALIGN_TOL_W * w or len(r.boxes) > MAX_ROW_CELLS
           for r in rows):
        return False
    top = min(r.y0 for r in rows)
    if any(abs(r.y0 - y) < 0.5 * h for r in rows for y in ys):
        return False
    return ys[-1] < top <= ys[-1] + 2.2 * step


def _row_pitch(stack: list[_Seg]) -> float:
    """The horizontal cell pitch of a panel; a segment whose cells all stand two apart (every other
    cell lost) gives twice the pitch, so steps are divided by the whole number of cell widths in them."""
    w = float(_med([s.w for s in stack]))
    pitches = [p / max(1, round(p / (NEAR_PITCH_W * w))) for p in (s.pitch() for s in stack) if p]
    return float(np.median(pitches)) if pitches else NEAR_PITCH_W * w


def _complete_rows(drafts: list[tuple[str, list[_Seg], list[str | None]]], mask: np.ndarray,
                   dark: np.ndarray, hsv: np.ndarray | None = None) -> list[tuple[str, list[_Seg], list[str | None]]]:
    """Fill the grid positions a row's pitch says are there (icons merged with a neighbour, washed out
    by HDR) when the position holds slot-like pixels. Trait rows are left-aligned rows of five: they
    grow leftwards and rightwards while positions hold slots. An 'equipment' panel whose rows mostly
    continue leftwards with slot-like cells (where equipment rows have their labels) is a trait grid
    seen in pieces."""
    out_drafts = []
    for kind, stack, extra in drafts:
        pitch = _row_pitch(stack)

        def at(seg: _Seg, k: int) -> tuple[int, int, int, int]:
            return (int(round(seg.boxes[0][0] + k * pitch)), int(round(seg.y0)), int(round(seg.w)), int(round(seg.h)))

        if kind == "equipment":
            lefts = sum(_probe(mask, dark, at(s, -1)) and _probe(mask, dark, at(s, -2)) for s in stack)
            if lefts >= max(2, 0.5 * len(stack)):
                kind, extra = "traits", [None] * len(stack)
        right = float(_med([s.x1 for s in stack]))
        for seg in stack:
            have = {int(round((b[0] - seg.boxes[0][0]) / pitch)): (b, inf) for b, inf in zip(seg.boxes, seg.inferred)}
            lo, hi = min(have), max(have)
            if kind == "equipment":  # rows are right-justified: a row short of the panel's right edge
                hi = max(hi, hi + int(round((right - seg.x1) / pitch)))
            def outside_ok(k: int, probe: bool = True) -> bool:
                """A position beyond the row's cells holds a slot of this panel (no panel edge between)."""
                if probe and not _probe(mask, dark, at(seg, k)):
                    return False
                if hsv is None or min(have) <= k <= max(have):
                    return True
                # the edge may run through the probed position itself: search from its far side
                box = at(seg, k)
                if k < min(have):
                    a, b = (box[0] - 1, box[1], 0, box[3]), have[min(have)][0]
                else:
                    a, b = have[max(have)][0], (box[0] + box[2] + 1, box[1], 0, box[3])
                return not _border_between(hsv, a, b)

            if kind == "equipment":
                # cells merged into one blob left of the row's first found cell (glowing frames that
                # touch): positions the row's pitch puts there, solidly lit, no panel edge between
                while hi - lo < MAX_ROW_CELLS - 1 and _probe(mask, dark, at(seg, lo - 1), EQUIPMENT_LEFT_FILL) \
                        and outside_ok(lo - 1):
                    lo -= 1
            # a trait row with another row of its section just below is a full row of five: its
            # positions are slots even where the probe sees little (an empty frame on a dark panel)
            full = kind == "traits" and any(
                t is not seg and 0.5 * seg.h < t.y0 - seg.y0 < SECTION_MIN_STEP_H * seg.h
                and t.x0 < seg.x0 + TRAIT_ROW_CELLS * pitch and t.x1 > seg.x0 for t in stack)
            if kind == "traits":
                while hi - lo < TRAIT_ROW_CELLS - 1 and outside_ok(lo - 1):
                    lo -= 1
                hi = max(hi, lo + TRAIT_ROW_CELLS - 1)
            if kind == "boffs":
                # a seat holds up to four abilities; an empty one right of the found cells is probed,
                # never into the next seat (its cells, or the marker bar just left of them)
                others = [b for t in stack if t is not seg for b in t.boxes]
                while hi - lo < SEAT_MAX_CELLS - 1:
                    box = at(seg, hi + 1)
                    reach = (box[0], box[1], int(box[2] * 1.6), box[3])
                    if any(_overlap(reach, o) > 0 for o in others) or not outside_ok(hi + 1):
                        break
                    hi += 1
            out = []
            for k in range(lo, hi + 1):
                if k in have:
                    out.append(have[k])
                    continue
                box = at(seg, k)
                if outside_ok(k, probe=not full):
                    out.append((box, True))
                elif k > max(have):
                    break
            if len(out) > len(seg.boxes) and len(out) <= MAX_ROW_CELLS:
                seg.boxes = [b for b, _ in out]
                seg.inferred = [i for _, i in out]
        out_drafts.append((kind, stack, extra))
    # pieces of one grid completed into the same cells: keep each cell once, for the draft with the
    # most cells actually seen (a grid of leftover pieces grown into a row must not take its cells)
    seen: list[tuple[int, int, int, int]] = []
    result = []
    order = sorted(range(len(out_drafts)), key=lambda i: -_seen_cells(out_drafts[i][1]))
    for kind, stack, extra in (out_drafts[i] for i in order):
        keep_s, keep_e = [], []
        for seg, e in zip(stack, extra):
            pairs = [(b, i) for b, i in zip(seg.boxes, seg.inferred) if not any(_overlap(b, k) > 0.5 for k in seen)]
            if not pairs:
                continue
            seen.extend(b for b, _ in pairs)
            seg.boxes = [b for b, _ in pairs]
            seg.inferred = [i for _, i in pairs]
            keep_s.append(seg)
            keep_e.append(e)
        if keep_s:
            result.append((kind, keep_s, keep_e))
    return result


def _merge_trait_grids(drafts: list[tuple[str, list[_Seg], list[str | None]]]
                       ) -> list[tuple[str, list[_Seg], list[str | None]]]:
    """Join trait grids found in pieces (an empty frame taller than the icons beside it, an extra
    row of one locked cell): a piece joins a grid when it stands within the grid's columns, on its
    pitch, and no further than a section header from its rows. Rows on one line become one row (of
    at most a trait row's cells: two sections side by side stay apart); sections are split again
    by their headers afterwards."""
    # pieces move only towards grids with more cells seen (so nothing moves back and forth)
    grids = sorted((d for d in drafts if d[0] == "traits"), key=lambda d: -_seen_cells(d[1]))
    moved = True
    while moved:
        moved = False
        for ia, a in enumerate(grids):
            for b in grids[ia + 1:]:
                joined = [sg for sg in list(b[1]) if a[1] and _joins_grid(a[1], sg)]
                if joined:
                    b[1][:] = [sg for sg in b[1] if not any(sg is j for j in joined)]
                    a[1].sort(key=lambda r: r.y0)
                    a[2][:] = [None] * len(a[1])
                    b[2][:] = [None] * len(b[1])
                    moved = True
    return [d for d in drafts if d[1]]


def _seen_cells(stack: list[_Seg]) -> int:
    """Cells of a draft that were found, not inferred: which of two drafts has the better claim."""
    return sum(not inf for sg in stack for inf in sg.inferred)


def _joins_grid(grid: list[_Seg], sg: _Seg) -> bool:
    """Whether a row piece belongs to a trait grid; when it does it is added (to the row on its line,
    or as a row of its own) and True is returned."""
    h, w = float(_med([s.h for s in grid])), float(_med([s.w for s in grid]))
    if abs(sg.h - h) > GRID_PIECE_H_TOL * h:
        return False
    gx0, gx1 = min(s.x0 for s in grid), max(s.x1 for s in grid)
    pitch = _row_pitch(grid)
    off = (sg.x0 - gx0) / pitch
    if abs(off - round(off)) * pitch > ALIGN_TOL_W * w:
        return False
    row = min(grid, key=lambda r: abs(r.yc - sg.yc))
    if abs(row.yc - sg.yc) < ROW_Y_TOL * row.h:
        # the rest of a row on its line: next to it (a cell's gap at most), and the row no longer
        # than a trait row's five cells (two sections side by side stay apart)
        if max(sg.x0 - row.x1, row.x0 - sg.x1) > pitch + ALIGN_TOL_W * w:
            return False
        return _add_cells(row, sg, TRAIT_ROW_CELLS)
    if sg.x0 < gx0 - ALIGN_TOL_W * w or sg.x1 > gx1 + ALIGN_TOL_W * w:
        return False  # a row of its own stands within the grid's columns
    top, bottom = min(s.y0 for s in grid), max(s.y0 + s.h for s in grid)
    if sg.y0 - bottom < SECTION_MAX_GAP_H * h and top - (sg.y0 + sg.h) < SECTION_MAX_GAP_H * h:
        grid.append(sg)
        return True
    return False


def _trait_sections(drafts: list[tuple[str, list[_Seg], list[str | None]]]
                    ) -> list[tuple[str, list[_Seg], list[str | None]]]:
    """Split a trait grid where a header stands between its rows (a row step this much taller than
    a row): every section (Personal Space Traits, Starship Traits, ...) is named by its own header."""
    out = []
    for kind, stack, extra in drafts:
        if kind != "traits" or len(stack) < 2:
            out.append((kind, stack, extra))
            continue
        h = float(_med([s.h for s in stack]))
        for column in _columns(stack):
            cur: list[_Seg] = [column[0]]
            for prev, seg in zip(column, column[1:]):
                if seg.y0 - prev.y0 > SECTION_MIN_STEP_H * h:
                    out.append((kind, cur, [None] * len(cur)))
                    cur = []
                cur.append(seg)
            out.append((kind, cur, [None] * len(cur)))
    return out


def _columns(stack: list[_Seg]) -> list[list[_Seg]]:
    """Rows that share no column stand in different columns of sections (a panel laid out in two
    columns): groups of rows linked by overlapping x ranges, each top to bottom."""
    groups: list[list[_Seg]] = []
    for seg in sorted(stack, key=lambda s: s.x0):
        for g in groups:
            if any(min(seg.x1, t.x1) - max(seg.x0, t.x0) > 0.5 * seg.w for t in g):
                g.append(seg)
                break
        else:
            groups.append([seg])
    return [sorted(g, key=lambda s: s.y0) for g in groups]


def _left_stacks(segs: list[_Seg]) -> list[list[_Seg]]:
    """Left-aligned stacks of rows (trait grids), each row under the previous at a plausible step."""
    segs = sorted(segs, key=lambda s: s.y0)
    used: set[int] = set()
    out = []
    for s in segs:
        if id(s) in used:
            continue
        stack = [s]
        used.add(id(s))
        for t in segs:
            if id(t) in used:
                continue
            last = stack[-1]
            if t.y0 <= last.y0 or abs(t.h - last.h) > ROW_H_TOL * last.h:
                continue
            if t.y0 - last.y0 > MAX_ROW_STEP_H * last.h:
                continue
            # rows of one grid start on the same column; a row whose first cells were lost starts a
            # whole number of pitches to the right (or the left)
            off = (t.x0 - last.x0) / (NEAR_PITCH_W * last.w)
            k = round(off)
            if abs(k) > TRAIT_ROW_CELLS - 1 or abs(t.x0 - last.x0 - k * NEAR_PITCH_W * last.w) > ALIGN_TOL_W * last.w:
                continue
            stack.append(t)
            used.add(id(t))
        out.append(stack)
    return out


# ---------------------------------------------------------------- stage: state
def cell_state(rgb: np.ndarray, box: tuple[int, int, int, int]) -> str:
    """``empty`` (dark, flat interior), ``locked`` (grey, flat, unsaturated) or ``item``.

    Checked before any icon matching: without it every blank slot comes out as some item.
    """
    x, y, w, h = box
    ix, iy = int(0.2 * w), int(0.2 * h)
    inner = rgb[y + iy:y + h - iy, x + ix:x + w - ix]
    if inner.size == 0:
        return "item"
    grey = inner.astype(np.float32).mean(axis=2)
    mean, std = float(grey.mean()), float(grey.std())
    sat = float((inner.max(axis=2).astype(np.int16) - inner.min(axis=2)).mean())
    if sat < LOCKED_MAX_SAT and std < LOCKED_MAX_STD:
        # both blank kinds are unsaturated; an empty slot is flat (even when HDR lifts it), a locked
        # one carries its padlock glyph; item icons are coloured and busy
        if std < FLAT_MAX_STD or (mean < EMPTY_MAX_MEAN and std < 2 * FLAT_MAX_STD):
            return "empty"
        # a padlock is a small glyph in the middle of a flat frame; a washed-out (HDR) icon, just as
        # grey, has its detail out to the edges
        ih, iw = grey.shape
        ring = np.ones_like(grey, bool)
        ring[ih // 4:ih - ih // 4, iw // 4:iw - iw // 4] = False
        return "locked" if float(grey[ring].std()) < LOCKED_MAX_RING_STD else "item"
    return "item"


# ---------------------------------------------------------------- OCR helpers
def _text_extent(mask: np.ndarray, x0: int, x1: int, y0: int, y1: int,
                 max_gap: int) -> tuple[int, int, int, int] | None:
    """The text cluster nearest ``x1`` inside a box of the mask (work pixels): its tight box."""
    x0 = max(0, x0)
    sub = mask[max(0, y0):y1, x0:x1]
    if sub.size == 0:
        return None
    cols = np.flatnonzero(sub.any(axis=0))
    if cols.size == 0:
        return None
    right = cols[-1]
    left = right
    for c in cols[::-1]:
        if left - c > max_gap:
            break
        left = c
    rows = np.flatnonzero(sub[:, left:right + 1].any(axis=1))
    return (x0 + int(left), max(0, y0) + int(rows[0]), int(right - left + 1), int(rows[-1] - rows[0] + 1))


def _to_full(box: Sequence[float], f: float, shape: tuple[int, ...], pad: float = 0) -> tuple[int, int, int, int]:
    x, y, w, h = box
    x0 = max(0, int((x - pad) / f))
    y0 = max(0, int((y - pad) / f))
    x1 = min(shape[1], int(np.ceil((x + w + pad) / f)))
    y1 = min(shape[0], int(np.ceil((y + h + pad) / f)))
    return (x0, y0, max(0, x1 - x0), max(0, y1 - y0))


def _read_stacked(ocr: Any, rgb: np.ndarray, boxes: list[tuple[int, int, int, int]], line_h: float) -> list[str]:
    """OCR several small crops in ONE tesseract call: stacked vertically with dark gaps between.

    Why: a tesseract call has a fixed cost (~12 ms); twelve labels read one by one would spend the
    whole budget, stacked they cost about one.
    """
    crops = [rgb[y:y + h, x:x + w] for x, y, w, h in boxes]
    crops = [cv2.cvtColor(c, cv2.COLOR_RGB2GRAY) if c.size else np.zeros((1, 1), np.uint8) for c in crops]
    if not crops:
        return []
    gap = max(8, int(line_h))
    width = max(c.shape[1] for c in crops) + 2 * gap
    bgv = int(np.median(np.concatenate([c.ravel() for c in crops]))) if crops else 0
    parts, spans, yy = [], [], gap
    parts.append(np.full((gap, width), bgv, np.uint8))
    for c in crops:
        row = np.full((c.shape[0], width), bgv, np.uint8)
        row[:, gap:gap + c.shape[1]] = c
        parts.append(row)
        spans.append((yy, yy + c.shape[0]))
        yy += c.shape[0]
        parts.append(np.full((gap, width), bgv, np.uint8))
        yy += gap
    stacked = np.vstack(parts)
    try:
        words = ocr.read_block(stacked, psm=6, line_height=int(max(8, line_h)), whitelist=LABEL_WHITELIST)
    except Exception:  # noqa: BLE001 - OCR is evidence, never a reason to fail the layout
        return [""] * len(crops)
    texts: list[list[tuple[float, str]]] = [[] for _ in crops]
    for wd in words:
        cy = wd.bbox[1] + wd.bbox[3] / 2
        for i, (a, b) in enumerate(spans):
            if a - gap / 2 <= cy <= b + gap / 2:
                texts[i].append((wd.bbox[1] * 10000 + wd.bbox[0], wd.text))
                break
    return [" ".join(t for _, t in sorted(ws)) for ws in texts]


# ---------------------------------------------------------------- naming
SPACE_OPTIONAL = ("Experimental Weapon", "Secondary Deflector", "Universal Consoles", "Hangars")
GROUND_OPTIONAL = ()


def name_equipment(counts: list[int], texts: list[str]) -> tuple[str, list[str | None], list[float]]:
    """Environment and slot names of an equipment panel's rows (DP + label evidence, both vocabularies)."""
    best: tuple[float, str, list[str | None], list[float]] | None = None
    for env, groups, optional in (("space", SPACE_EQUIPMENT, SPACE_OPTIONAL), ("ground", GROUND_EQUIPMENT, ())):
        names = [g.name for g in groups]
        scores = []
        for t in texts:
            row = []
            for name in names:
                if not fold_text(t):
                    row.append(0.5)
                    continue
                _, s = match_label(t, [name])
                row.append(0.5 + 0.5 * (s - 0.6) / 0.4 if s >= 0.6 else 0.5 - 0.5 * (0.6 - s) / 0.6)
            scores.append(row)
        got, conf, total = align_rows(counts, groups, scores, optional)
        if len(counts) > len(groups):
            total -= 100
        if best is None or total > best[0]:
            best = (total, env, got, conf)
    assert best is not None
    return best[1], best[2], best[3]


# ---------------------------------------------------------------- main entry
def find_layout(rgb: np.ndarray, ocr: Any | None = None, *, cfg: Any = None) -> Layout:
    """Cells, rows, panels, names and the ship text band of one screenshot (RGB array)."""
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    work, f = _work_copy(np.ascontiguousarray(rgb[:, :, :3]))
    mask, dark = foreground_masks(work)
    boxes = find_cells(work, mask)
    boxes += _cell_boxes(dark, max(MIN_CELL_H_PX, int(MIN_CELL_H_FRAC * work.shape[0])),
                         int(MAX_CELL_H_FRAC * work.shape[0]), merge=False)
    timings["cells_ms"] = (time.perf_counter() - t0) * 1e3
    t1 = time.perf_counter()
    hsv = cv2.cvtColor(work, cv2.COLOR_RGB2HSV)
    segs = build_segments(boxes, hsv)
    drafts = group_panels(segs, hsv, mask)
    _reclaim_edge_seats(drafts)
    _adopt_rows(drafts, segs, mask, dark)
    drafts = [d for d in drafts if d[1]]
    drafts = _trait_sections(_prune_panels(_merge_trait_grids(_complete_rows(drafts, mask, dark, hsv))))
    for kind, stack, extra in drafts:
        if kind == "equipment":
            _join_line_pieces(stack, extra)
    timings["panels_ms"] = (time.perf_counter() - t1) * 1e3
    t2 = time.perf_counter()
    panels: list[Panel] = []
    texts: list[str] = []
    ship_text = None
    pitches: list[float] = []
    for kind, stack, extra in drafts:
        rows: list[Row] = []
        size = _panel_cell_size(stack)
        for seg in stack:
            cells = []
            for i, (b, inf) in enumerate(zip(seg.boxes, seg.inferred)):
                fb = _to_full(_regular_box(b, seg, size), f, rgb.shape)
                cells.append(Cell(fb, cell_state(rgb, fb), i, inf))
            rows.append(Row(None, 0.0, cells))
        if len(stack) >= 2:
            pitches.append(float(np.median(np.diff([s.y0 for s in stack]))) / f)
        panel = Panel(kind, None, rows)
        if kind == "equipment":
            _name_equipment_panel(panel, stack, work, mask, rgb, f, ocr, texts)
            if panel.environment == "space" and ship_text is None:
                ship_text = _ship_text(stack, work, mask, rgb, f, ocr)
        elif kind == "boffs":
            for seg, row, prof in zip(stack, rows, extra):
                # the seat's title names its profession outright (Operations and Universal share
                # a marker colour, and a washed-out marker drifts towards Universal)
                title = _seat_title(ocr, rgb, mask, seg, f) if ocr is not None else ""
                named = seat_profession(title)
                row.label_text = title
                prof = named or prof
                row.slot = f"Boff {prof}" if prof else None
                row.name_confidence = 0.95 if named else 0.8 if prof else 0.0
        elif kind == "traits":
            _name_trait_panel(panel, stack, work, mask, rgb, f, ocr, texts)
            if panel.kind in ("traits", "boffs") and ocr is not None and not any(r.slot for r in panel.rows):
                _seats_by_title(panel, stack, mask, rgb, f, ocr)
        elif kind == "specs":
            # tree nodes are not slots (the specialisations are read as text): keep the panel as
            # evidence of the screen, without cells
            panel.environment = "space"
            panel.rows = [Row(None, 0.0, []) for _ in rows]
        panels.append(panel)
    panels, drafts = _join_seat_columns(panels, drafts, hsv, mask, rgb, f, ocr)
    panels = _gate_by_text(panels, drafts, mask, rgb, f, ocr, texts)
    _one_trait_environment(panels)
    _one_section_each(panels)
    timings["names_ms"] = (time.perf_counter() - t2) * 1e3
    timings["total_ms"] = (time.perf_counter() - t0) * 1e3
    scale = float(np.median(pitches)) / rgb.shape[0] if pitches else 0.0
    return Layout(panels, ship_text, scale, timings, texts)


def _beside_on_lines(a: list[_Seg], b: list[_Seg], hsv: np.ndarray) -> bool:
    """Whether grid ``b`` stands beside grid ``a`` inside one panel: each of b's rows on one of a's
    lines, at a's cell height, a short gap away, and no panel edge between them."""
    for t in b:
        mate = [s for s in a if abs(s.yc - t.yc) < ROW_Y_TOL * s.h and abs(s.h - t.h) <= CHAIN_H_TOL * s.h]
        if not mate:
            return False
        s = min(mate, key=lambda s: min(abs(t.x0 - s.x1), abs(s.x0 - t.x1)))
        left, right = (s, t) if s.x1 <= t.x0 else (t, s)
        gap = right.x0 - left.x1
        if gap < 0 or gap > SEAT_COLUMN_MAX_GAP_W * s.w or \
                _border_between(hsv, left.boxes[-1], right.boxes[0]):
            return False
    return True


def _as_seat(seg: _Seg, row: Row, keep: int) -> None:
    """A trait-grid row taken for a seat: the cells its completion inferred at either end (trait rows
    are grown to five from the pitch, seats hold at most four) go while the row has more than
    ``keep`` cells (0: every inferred end cell)."""
    while len(row.cells) > max(keep, 1) and row.cells[0].inferred:
        row.cells.pop(0)
        seg.boxes.pop(0), seg.inferred.pop(0)
    while len(row.cells) > max(keep, 1) and row.cells[-1].inferred:
        row.cells.pop()
        seg.boxes.pop(), seg.inferred.pop()
    for k, c in enumerate(row.cells):
        c.index = k


def _join_seat_columns(panels: list[Panel], drafts: list, hsv: np.ndarray, mask: np.ndarray, rgb: np.ndarray,
                       f: float, ocr: Any) -> tuple[list[Panel], list]:
    """A boff panel shows its seats in two columns. When only one column's seats were recognised
    (its header above it, or its markers), an unnamed grid on the same lines beside it, in the same
    panel, is the other column: its rows become seats too (named by their titles, or later by their
    abilities' icons)."""
    gone: set[int] = set()
    for i, (p, (kind, stack, extra)) in enumerate(zip(panels, drafts)):
        if p.kind != "boffs" or i in gone:
            continue
        for j, (q, (_k2, other, _e2)) in enumerate(zip(panels, drafts)):
            # (a column of two or more seats: a lone strip beside a seat is as likely a stray row)
            if j == i or j in gone or q.kind != "traits" or len(q.rows) < 2 or any(r.slot for r in q.rows):
                continue
            if not _beside_on_lines(stack, other, hsv):
                continue
            for seg, row in zip(other, q.rows):
                _as_seat(seg, row, 0)
                _name_seat_by_title(row, _seat_title(ocr, rgb, mask, seg, f) if ocr is not None else "")
            p.rows += q.rows
            stack += other
            if isinstance(extra, list):
                extra += [None] * len(other)
            gone.add(j)
    keep = [k for k in range(len(panels)) if k not in gone]
    return [panels[k] for k in keep], [drafts[k] for k in keep]


def _one_trait_environment(panels: list[Panel]) -> None:
    """The game shows the space or the ground trait set, never a mix: a header misread as the other
    environment's ("Space Reputation" for "Ground Reputation") follows the majority of trait rows."""
    votes = Counter(SLOT_GROUPS[r.slot].environment for p in panels if p.kind == "traits"
                    for r in p.rows if r.slot in SLOT_GROUPS)
    if len(votes) < 2 or votes["space"] == votes["ground"]:
        return
    env = votes.most_common(1)[0][0]
    for p in panels:
        if p.kind != "traits":
            continue
        for r in p.rows:
            r.slot = trait_slot_in(r.slot, env)
        p.environment = env


# a trait section's header that contains another's whole name ("Active Space Reputation"): read
# with its first word hidden (a cursor, a tooltip's edge) it names the section above it
SECTION_SUPERSETS = {"Space Reputation": "Active Space Rep", "Ground Reputation": "Active Ground Rep"}


def _one_section_each(panels: list[Panel]) -> None:
    """A screen shows each trait section once: of two sections named "Space Reputation", the lower
    one is "Active Space Rep" when no section carries that name (the active section stands below)."""
    named = [p for p in panels if p.kind == "traits" and p.rows and p.rows[0].slot]
    have = {p.rows[0].slot for p in named}
    for name, other in SECTION_SUPERSETS.items():
        same = sorted((p for p in named if p.rows[0].slot == name), key=lambda p: p.bbox[1])
        if len(same) == 2 and other not in have:
            for row in same[1].rows:
                if row.slot == name:
                    row.slot = other


def _panel_cell_size(stack: list[_Seg]) -> tuple[float, float]:
    """The panel's cell size: the median over all its cells (one UI scale, one slot size)."""
    return (_med([b[2] for sg in stack for b in sg.boxes]), _med([b[3] for sg in stack for b in sg.boxes]))


def _regular_box(b: tuple[int, int, int, int], seg: _Seg, size: tuple[float, float]) -> tuple[int, int, int, int]:
    """A cell's box at the panel's cell size, centred where it was found and on its row's line: a box
    found with its glow, or short (a dark icon), would crop the icon off-centre or at another scale,
    and icon matching is far less sure on such crops."""
    w, h = size
    if not (w > 0 and h > 0) or abs(b[2] - w) > REGULAR_MAX_DEV * w or abs(b[3] - h) > REGULAR_MAX_DEV * h:
        return b  # far off the panel's size: not a cell of its grid; leave it as found
    cx = b[0] + b[2] / 2
    cy = seg.yc
    return (int(round(cx - w / 2)), int(round(cy - h / 2)), int(round(w)), int(round(h)))


def _name_equipment_panel(panel: Panel, stack: list[_Seg], work: np.ndarray, mask: np.ndarray,
                          rgb: np.ndarray, f: float, ocr: Any, texts: list[str]) -> None:
    left = min(s.x0 for s in stack)
    w = float(_med([s.w for s in stack]))
    label_texts = [""] * len(stack)
    if ocr is not None:
        # OCR only the rows the cell counts leave ambiguous (and the top rows, which carry the
        # space / ground evidence): one tesseract call costs about its pixel count
        counts = [len(s.boxes) for s in stack]
        _env, _names, confs0 = name_equipment(counts, [""] * len(stack))
        need = {i for i, c in enumerate(confs0) if c < OCR_SKIP_CONF} | set(range(min(OCR_TOP_ROWS, len(stack))))
        boxes, idx = [], []
        for i, s in enumerate(stack):
            if i not in need:
                continue
            ext = _text_extent(mask, int(left - LABEL_SEARCH_W * w), int(left - 0.15 * w), int(s.y0), int(s.y0 + s.h),
                               max_gap=int(0.9 * w))
            if ext is not None and ext[2] > 2 and ext[3] > 3:
                boxes.append(_to_full(ext, f, rgb.shape, pad=2))
                idx.append(i)
        # read labels near their own size: tesseract's cost grows with the pixels it is given, and
        # label text is legible from ~12 px lines (a 1080p label line is ~0.25 of the row height)
        line_h = LABEL_OCR_LINE_FACTOR * float(_med([s.h for s in stack])) / f
        for i, t in zip(idx, _read_stacked(ocr, rgb, boxes, line_h)):
            label_texts[i] = t
        texts.extend(t for t in label_texts if t)
    env, names, confs = name_equipment([len(s.boxes) for s in stack], label_texts)
    panel.environment = env
    for row, name, conf, t in zip(panel.rows, names, confs, label_texts):
        row.slot, row.name_confidence, row.label_text = name, conf, t


def _line_box(mask: np.ndarray, x0: float, x1: float, y0: float, y1: float,
              max_gap: float, min_h: float = 3, max_h: float = 1e9) -> tuple[int, int, int, int] | None:
    """The text line nearest the bottom of a search box (work pixels), starting from its left: frame
    lines (columns or rows of foreground across the whole box) are ignored. Its tight box, or None."""
    X0, Y0 = int(max(0, x0)), int(max(0, y0))
    X1, Y1 = int(max(X0, x1)), int(max(Y0, y1))
    sub = mask[Y0:Y1, X0:X1].astype(bool)
    if sub.size == 0 or not sub.any():
        return None
    sub = sub & (sub.mean(axis=0) < 0.9)[None, :] & (sub.mean(axis=1) < 0.9)[:, None]
    rows = sub.mean(axis=1) > 0.03  # speckle from textured backgrounds is not a text row
    if not rows.any():
        return None
    # runs of text rows (bridging 1-px breaks inside a line), the lowest one of a text line's height
    idx = np.flatnonzero(rows)
    runs, a, b = [], idx[0], idx[0]
    for r in idx[1:]:
        if r - b > 2:
            runs.append((a, b))
            a = r
        b = r
    runs.append((a, b))
    runs = [r for r in runs if min_h <= r[1] - r[0] + 1 <= max_h]
    if not runs:
        return None
    start, end = runs[-1]
    cols = np.flatnonzero(sub[start:end + 1].any(axis=0))
    lo = hi = cols[0]
    for c in cols[1:]:
        if c - hi > max_gap:
            break
        hi = c
    return (X0 + int(lo), Y0 + int(start), int(hi - lo + 1), int(end - start + 1))


def _below_rules(mask: np.ndarray, box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """The part of a box below its lowest frame line (a row lit across most of the box): a panel's
    top edge read with its header turns the line into garbage."""
    x, y, w, h = box
    x0, y0 = max(0, x), max(0, y)
    rows = mask[y0:y + h, x0:x + w].mean(axis=1) if w > 0 and h > 0 else np.zeros(0)
    lit = np.flatnonzero(rows[: len(rows) // 2] > 0.8)
    if lit.size:
        cut = int(lit[-1]) + 2  # a line and its antialiased edge
        return (x0, y0 + cut, x + w - x0, y + h - y0 - cut)
    return box


def _read_box(ocr: Any, rgb: np.ndarray, box: tuple[int, int, int, int] | None, f: float) -> str:
    if ocr is None or box is None or box[2] < 4:
        return ""
    fb = _to_full(box, f, rgb.shape, pad=2)
    try:
        return ocr.read_line(rgb[fb[1]:fb[1] + fb[3], fb[0]:fb[0] + fb[2]], LABEL_WHITELIST).text
    except Exception:  # noqa: BLE001 - OCR is evidence, never a reason to fail the layout
        return ""


def _name_trait_panel(panel: Panel, stack: list[_Seg], work: np.ndarray, mask: np.ndarray,
                      rgb: np.ndarray, f: float, ocr: Any, texts: list[str]) -> None:
    """Name a trait grid by the header line just above its first row (a specialisation title above
    it makes it a specialisation tree)."""
    top = stack[0]
    h, w = top.h, top.w
    header = ""
    if ocr is not None:
        box = _line_box(mask, top.x0 - 0.15 * w, top.x0 + 6 * w, top.y0 - 0.8 * h, top.y0 - 0.05 * h, 1.0 * w,
                        0.12 * h, 0.6 * h)
        header = _read_box(ocr, rgb, box, f)
        if not match_label(header, TRAIT_PANEL_HEADERS)[0] and not _is_spec_name(header):
            # a big bold header on a shaded band is not one clean line in the mask: read the band
            # where the header stands instead
            band = _below_rules(mask, (int(top.x0 - 0.15 * w), int(top.y0 - HEADER_BAND_H * h), int(6.15 * w),
                                       int((HEADER_BAND_H - 0.05) * h)))
            header = _read_box(ocr, rgb, band, f) or header
    if header:
        texts.append(header)
    name, score = match_label(header, TRAIT_PANEL_HEADERS) if header else (None, 0.0)
    panel.header = header
    if name in BOFF_HEADERS and score >= BOFF_HEADER_MIN_SCORE and not _is_spec_name(header):
        # a boff panel whose seat markers were not seen (washed out): its seats are named by their
        # titles or, failing those, by their abilities' icons
        panel.kind = "boffs"
        panel.environment = {"Space Stations": "space", "Standard Away Team": "ground"}.get(name)
        for seg, row in zip(stack, panel.rows):
            _as_seat(seg, row, SEAT_MAX_CELLS)
            row.slot, row.name_confidence, row.label_text = None, 0.0, header
        return
    if name in BOFF_HEADERS:
        name, score = None, 0.0  # a spec title ("Intelligence Officer") is not "Bridge Officer"
    if name in SPEC_HEADERS or (not name and header and _is_spec_name(header)):
        panel.kind, panel.environment = "specs", "space"
        panel.rows = [Row(None, 0.0, []) for _ in panel.rows]
        return
    panel.environment = ("ground" if name and "Ground" in name else "space") if name else None
    for row in panel.rows:
        row.slot, row.name_confidence, row.label_text = name, score, header


def _spec_names() -> tuple[str, ...]:
    names = {"command officer", "intelligence officer", "miracle worker", "pilot", "temporal operative",
             "constable", "commando", "strategist"}
    try:
        with UI_TRANSLATIONS.open(encoding="utf-8") as fh:
            for r in csv.reader(line for line in fh if not line.lstrip().startswith("#")):
                if len(r) >= 4 and r[0] == "spec_name":
                    names.add(fold_text(r[1]))
                    names.add(fold_text(r[3]))
    except OSError:
        pass
    return tuple(sorted(names))


SPEC_NAMES = _spec_names()


def _is_spec_name(text: str) -> bool:
    """A specialisation's title (the line above its tree), English or German."""
    folded = fold_text(text)
    return len(folded) >= 4 and any(fuzz.ratio(folded, n) >= 80 for n in SPEC_NAMES)


SEAT_WORDS = ("tactical", "engineering", "science", "operations", "universal", "intelligence", "command",
              "pilot", "miracle", "worker", "temporal", "ensign", "lieutenant", "commander",
              "taktik", "technik", "wissenschaft", "universell", "geheimdienst", "kommando", "fahnrich",
              "leutnant", "kommandant")


# profession words of a seat's title line ("Lt. Commander Universal / Command"), English and German;
# the first one names the seat (a specialisation after the slash only widens its abilities)
SEAT_PROFESSION_WORDS: dict[str, str] = {
    "tactical": "Tactical", "engineering": "Engineering", "science": "Science", "operations": "Operations",
    "universal": "Universal", "taktik": "Tactical", "technik": "Engineering", "wissenschaft": "Science",
    "universell": "Universal"}


def seat_profession(text: str) -> str | None:
    """The profession a seat's title names, or None (fuzzy per word: OCR drops or swaps a letter)."""
    for word in fold_text(text).split():
        if len(word) < 5:
            continue
        best = max(SEAT_PROFESSION_WORDS, key=lambda v: fuzz.ratio(word, v))
        if fuzz.ratio(word, best) >= SEAT_WORD_MIN_SCORE:
            return SEAT_PROFESSION_WORDS[best]
    return None


def _seat_title(ocr: Any, rgb: np.ndarray, mask: np.ndarray, seg: _Seg, f: float) -> str:
    """The text line just above a seat (its rank and profession), from its marker to its last cell."""
    w, h = seg.w, seg.h
    box = _line_box(mask, seg.x0 - 0.7 * w, seg.x1, seg.y0 - 0.75 * h, seg.y0 - 0.03 * h, 0.8 * w,
                    0.1 * h, 0.5 * h)
    if box is None:
        return ""
    # the mask's line is the small text's core: tesseract needs its ascenders and descenders too
    m = int(round(SEAT_TITLE_MARGIN * box[3]))
    return _read_box(ocr, rgb, (box[0] - m, box[1] - m, box[2] + 2 * m, box[3] + 2 * m), f)


def _seats_by_title(panel: Panel, stack: list[_Seg], mask: np.ndarray, rgb: np.ndarray, f: float, ocr: Any) -> None:
    """A headerless 'trait grid' whose rows carry seat titles ("Lieutenant Science") is a boff panel
    whose marker bars were too small or too faint to see."""
    titles = [_seat_title(ocr, rgb, mask, seg, f) for seg in stack]
    profs = [seat_profession(t) for t in titles]
    if not any(profs):
        return
    panel.kind, panel.environment = "boffs", None
    for seg, row, title in zip(stack, panel.rows, titles):
        _as_seat(seg, row, SEAT_MAX_CELLS)
        _name_seat_by_title(row, title)


def _name_seat_by_title(row: Row, title: str) -> None:
    """A seat named by its title line, or left unnamed (its abilities' icons name it later)."""
    prof = seat_profession(title)
    row.slot = f"Boff {prof}" if prof else None
    row.name_confidence = 0.95 if prof else 0.0
    row.label_text = title


def _is_boff_text(text: str) -> bool:
    """A seat's rank/profession line or a boff panel header (English or German)."""
    name, score = match_label(text, BOFF_HEADERS)
    if name and score >= 0.75:
        return True
    for word in fold_text(text).split():
        if len(word) >= 4 and any(fuzz.ratio(word, v) >= 80 or (len(word) >= 6 and v.startswith(word[:6]))
                                  for v in SEAT_WORDS):
            return True
    return False


def _gate_by_text(panels: list[Panel], drafts: list, mask: np.ndarray, rgb: np.ndarray, f: float,
                  ocr: Any, texts: list[str]) -> list[Panel]:
    """Build screens always carry text: row labels, trait headers, seat titles. Trait grids and boff
    seats with none of it (game hotbars, inventory strips) are not panels. Only applied with OCR."""
    if ocr is None:
        return panels
    named_traits = any(p.kind == "traits" and p.rows and p.rows[0].slot for p in panels)
    equipment = any(p.kind == "equipment" for p in panels)
    # boff seats AND trait grids side by side (several of each) is itself a build screen's structure,
    # where a washed-out theme may leave every header unread; a hotbar gives one kind or a couple of rows
    seats = sum(len(st) for k, st, _e in drafts if k == "boffs")
    trait_rows = sum(len(st) for k, st, _e in drafts if k == "traits")
    if seats >= 2 and trait_rows >= 3:
        named_traits = True
    out = []
    for p, (kind, stack, _e) in zip(panels, drafts):
        if p.kind == "traits" and not p.rows[0].slot and not equipment and not named_traits:
            # cells standing well apart (not a slot grid's near-touching ones): a specialisation tree
            # whose titles were not read; it carries no slots either way
            gaps = [(t.x1 - t.x0 - len(t.boxes) * t.w) / max(1, len(t.boxes) - 1) for t in stack
                    if len(t.boxes) > 1]
            if len(stack) >= 2 and gaps and _med(gaps) > SPEC_MIN_GAP_W * stack[0].w:
                p.kind, p.environment = "specs", "space"
                p.rows = [Row(None, 0.0, []) for _ in p.rows]
                out.append(p)
            continue
        if p.kind == "boffs":
            ymin = min(s.y0 for s in stack)
            top = min((s for s in stack if s.y0 - ymin < 0.5 * s.h), key=lambda s: s.x0)
            box = _line_box(mask, top.x0 - 0.8 * top.w, top.x0 + 6 * top.w, top.y0 - 0.9 * top.h,
                            top.y0 - 0.04 * top.h, 1.0 * top.w, 0.12 * top.h, 0.6 * top.h)
            text = _read_box(ocr, rgb, box, f)
            if text:
                texts.append(text)
            # seats stacked in two or more rows of a grid, several with a profession's marker,
            # are a boff panel even when its header is unreadable (a hotbar is one strip)
            levels = len({round(sg.y0 / max(1.0, sg.h)) for sg in stack})
            seated = sum(1 for r in p.rows if r.slot) >= SEATS_WITHOUT_TEXT and levels >= 2
            # (a lone seat beside named panels is too little: a locked trait cell under a trait
            # grid, a coloured neighbour for its marker, looks like one)
            if not _is_boff_text(text) and (len(p.rows) < 2 or not (named_traits or equipment or seated)):
                continue
        out.append(p)
    return out


# ---------------------------------------------------------------- ship text band
# The band above the first space equipment row: the ship NAME (larger, bold; position only, never
# read), then the TYPE line(s) ending with the "[T6-X2]" tier token (long types wrap onto a second
# line), then usually a separator line. All sizes relative to the panel's cell height h.
# how far above the first row the band is searched (name + up to 3 type lines + gaps is ~2.2 h)
SHIP_BAND_SEARCH_H = 3.4
# a text line is at least this tall (dots, speckle are less) and at most this tall (icons are more)
SHIP_LINE_MIN_H = 0.1
SHIP_LINE_MAX_H = 0.62
# the densest rows of a text line (its x-height) span at least this much (/ h); a rule's do not
SHIP_LINE_MIN_CORE = 0.07
# text strokes are thin: ink runs longer than this on average (/ h) are a solid block, not a line
SHIP_MAX_STROKE = 0.3
# a row of the band with this share of the panel width lit is a frame / separator line, not text
SHIP_RULE_FILL = 0.6
# a horizontal run of ink longer than this (/ h) is a rule: no glyph is that wide
SHIP_RULE_RUN_H = 1.2
# lines of one band are at most this far apart (gap / h): name-to-type and type-to-type spacing is
# ~0.05..0.3 h; what stands further above (tab strip, window title) is not the band
SHIP_LINE_MAX_GAP = 0.55
# words of one line are at most this far apart (gap / h); another panel stands further off
SHIP_WORD_MAX_GAP = 0.6
# band text may start this far (/ h) left of the row labels (right-aligned labels)
SHIP_LEFT_EXTRA_H = 3.0
# a phrase (words of a line) is at least this wide (/ h) and this share of its columns hold ink:
# frame corners, ticks and JPEG speckle are narrower or sparser
SHIP_PHRASE_MIN_W = 0.25
SHIP_PHRASE_MIN_COVER = 0.45
# type lines of the band: a type wraps onto two lines at most in practice; three is tolerated
SHIP_MAX_TYPE_LINES = 3
# OCR crop margin around a type line (/ its height), never into the neighbouring lines; the second
# reading (when the first does not parse) is upscaled this much and sharpened, with a wider margin
SHIP_OCR_MARGIN = 0.15
SHIP_OCR_RETRY_MARGIN = 0.3
SHIP_RETRY_UPSCALE = 3.0
# OCR characters of a type/tier line: letters (English, German), digits, brackets, hyphen, apostrophe
SHIP_WHITELIST = ("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyzÄÖÜäöüß0123456789 -'[]().:/")


@dataclass
class _TextLine:
    y0: int
    y1: int  # exclusive
    x0: int
    x1: int  # exclusive
    core: float  # height of the densest rows (x-height-like)
    stroke: float  # mean horizontal run length of its ink (bold text is thicker)


def _line_features(sub: np.ndarray) -> tuple[float, float]:
    """Core height (rows at least half as dense as the densest) and stroke width of one text line."""
    dens = sub.sum(axis=1).astype(float)
    core = float((dens >= 0.5 * dens.max()).sum()) if dens.size and dens.max() > 0 else 0.0
    flat = np.concatenate([np.zeros((sub.shape[0], 1), bool), sub.astype(bool), np.zeros((sub.shape[0], 1), bool)],
                          axis=1)
    d = np.diff(flat.astype(np.int8), axis=1)
    starts = int((d == 1).sum())
    stroke = float(sub.sum()) / max(1, starts)
    return core, stroke


def _band_lines(mask: np.ndarray, x0: int, x1: int, xa: int, xb: int, y0: int, y1: int,
                h: float) -> list[_TextLine]:
    """Text lines (top to bottom) in rows y0..y1 whose ink lies in columns x0..x1; each line's extent
    grows left and right through xa..xb while the next word is near (centred or long lines)."""
    H, W = mask.shape
    y0, y1 = max(0, y0), min(H, y1)
    xa, xb = max(0, xa), min(W, xb)
    x0, x1 = max(xa, x0), min(xb, x1)
    if y1 - y0 < 3 or x1 - x0 < 3:
        return []
    wide = mask[y0:y1, xa:xb]
    # frame and separator lines: ink in a vertical run longer than a line is tall, or a horizontal
    # run longer than any glyph, is not text
    vk = max(3, int(SHIP_LINE_MAX_H * h) + 1)
    hk = max(5, int(SHIP_RULE_RUN_H * h))
    # (a faint vertical line's mask is broken every few pixels: closed first)
    vert = cv2.morphologyEx(wide, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (1, 3)))
    rules = cv2.morphologyEx(vert, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (1, vk)))
    rules = cv2.dilate(rules, np.ones((1, 3), np.uint8)) | \
        cv2.morphologyEx(wide, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (hk, 1)))
    wide = (wide > 0) & (rules == 0)
    core = wide[:, x0 - xa:x1 - xa]
    dens = core.sum(axis=1)
    rule = dens >= SHIP_RULE_FILL * core.shape[1]
    textrow = (dens >= 1) & ~rule

    def row_runs(rows: np.ndarray) -> list[list[int]]:
        out: list[list[int]] = []
        for i in np.flatnonzero(rows):
            if out and i == out[-1][1]:
                out[-1][1] = i + 1
            else:
                out.append([int(i), int(i) + 1])
        return out

    runs = row_runs(textrow)
    # lines left of the label column only (a lone "[T6-X2]" at the panel's padding when the labels
    # are right-aligned): rows with ink there and none in the core
    lx = max(0, x0 - xa - int(SHIP_LEFT_EXTRA_H * h))
    near = cv2.dilate(textrow.astype(np.uint8), np.ones((3, 1), np.uint8)).ravel() > 0
    left_runs = {tuple(r) for r in row_runs((wide[:, lx:x0 - xa].sum(axis=1) >= 1) & ~near)}
    runs = sorted(runs + [list(r) for r in left_runs])
    # a run too tall for one line holds two lines touching (small UI scale): split at its thinnest row
    out_runs: list[tuple[int, int]] = []
    stack = [tuple(r) for r in runs]
    while stack:
        a, b = stack.pop(0)
        if b - a > SHIP_LINE_MAX_H * h and b - a <= 2.2 * SHIP_LINE_MAX_H * h:
            lo, hi = a + int(0.25 * (b - a)), b - int(0.25 * (b - a))
            cut = lo + int(np.argmin(dens[lo:hi])) if hi > lo else None
            if cut is not None and dens[cut] <= 0.25 * dens[a:b].max():
                stack[:0] = [(a, cut), (cut + 1, b)] if dens[cut] > 0 else [(a, cut), (cut, b)]
                continue
        out_runs.append((a, b))
    max_gap = SHIP_WORD_MAX_GAP * h
    cx0, cx1 = x0 - xa, x1 - xa
    phrases: list[tuple[int, int, list[tuple[int, int]]]] = []
    for a, b in out_runs:
        if not SHIP_LINE_MIN_H * h <= b - a <= SHIP_LINE_MAX_H * h:
            continue
        colink = wide[a:b].any(axis=0)
        cols = np.flatnonzero(colink)
        if cols.size == 0:
            continue
        # word clusters (phrases) across the wide range; a phrase is wide enough and mostly ink
        # columns (frame corners and speckle are not)
        clusters, s, e = [], cols[0], cols[0]
        for c in cols[1:]:
            if c - e > max_gap:
                clusters.append((int(s), int(e) + 1))
                s = c
            e = c
        clusters.append((int(s), int(e) + 1))
        phrases.append((a, b, [c for c in clusters if c[1] - c[0] >= SHIP_PHRASE_MIN_W * h
                               and colink[c[0]:c[1]].mean() >= SHIP_PHRASE_MIN_COVER]))

    def make(a: int, b: int, keep: list[tuple[int, int]]) -> _TextLine | None:
        lx0, lx1 = min(c[0] for c in keep), max(c[1] for c in keep)
        part = wide[a:b, lx0:lx1]
        rows = np.flatnonzero(part.any(axis=1))
        cf, sw = _line_features(part[rows[0]:rows[-1] + 1])
        if cf < max(2.0, SHIP_LINE_MIN_CORE * h) or sw > SHIP_MAX_STROKE * h:
            return None  # a rule's remnant (ink in one or two rows) or a solid block (a button, an icon)
        return _TextLine(y0 + a + int(rows[0]), y0 + a + int(rows[-1]) + 1, xa + lx0, xa + lx1, cf, sw)

    # pass 1: phrases reaching into the panel's label column; pass 2: a short line (a lone
    # "[T6-X2]") left of it, inside the text column the other lines start at
    lines: list[_TextLine] = []
    rest = []
    for a, b, cl in phrases:
        keep = [c for c in cl if c[1] > cx0 and c[0] < cx1] if (a, b) not in left_runs else []
        ln = make(a, b, keep) if keep else None
        if ln is not None:
            lines.append(ln)
        else:
            rest.append((a, b, cl))
    if lines:
        col0 = min(ln.x0 for ln in lines) - xa - SHIP_WORD_MAX_GAP * h
        for a, b, cl in rest:
            keep = [c for c in cl if c[0] >= col0 and c[1] <= cx1]
            ln = make(a, b, keep) if keep else None
            if ln is not None:
                lines.append(ln)
    return sorted(lines, key=lambda ln: ln.y0)


def _pick_band(lines: list[_TextLine], h: float) -> tuple[_TextLine | None, list[_TextLine]]:
    """From the lines above the first row (top to bottom): the name line and the type lines below it.

    Walks up from the row: lines closer than :data:`SHIP_LINE_MAX_GAP` belong to the band. The name
    is the band's biggest, boldest line (glyph core height x stroke width: the name is both larger
    and bold, so the product separates it better than either); the type lines are those below it.
    """
    if not lines:
        return None, []
    group = [lines[-1]]
    for ln in reversed(lines[:-1]):
        if group[-1].y0 - ln.y1 > SHIP_LINE_MAX_GAP * h:
            break
        group.append(ln)
    group.reverse()  # top to bottom
    if len(group) < 2:
        return None, group
    i = int(np.argmax([ln.core * ln.stroke for ln in group[:-1]]))
    return group[i], group[i + 1:][-SHIP_MAX_TYPE_LINES:]


def _sharpened(crop: np.ndarray) -> np.ndarray:
    """Grey crop upscaled (cubic) and unsharp-masked: blurred small text reads better."""
    g = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY) if crop.ndim == 3 else crop
    up = cv2.resize(g, None, fx=SHIP_RETRY_UPSCALE, fy=SHIP_RETRY_UPSCALE, interpolation=cv2.INTER_CUBIC)
    return cv2.addWeighted(up, 2.0, cv2.GaussianBlur(up, (0, 0), SHIP_RETRY_UPSCALE), -1.0, 0)


def _read_type_lines(ocr: Any, rgb: np.ndarray, f: float, name: _TextLine | None, type_lines: list[_TextLine],
                     margin: float, prep: Any) -> tuple[list[str], list[float]]:
    """OCR each type/tier line (never the name) from a crop with a margin: blur and HDR washout thin
    the mask at the glyphs' tops and bottoms, so a tight crop cuts them off; the margin stops at the
    neighbouring lines."""
    band = ([name] if name is not None else []) + type_lines
    texts, confs = [], []
    for ln in type_lines:
        k = band.index(ln)
        pad = margin * (ln.y1 - ln.y0)
        top = max(ln.y0 - pad - 1, band[k - 1].y1 if k > 0 else -1e9)
        bot = min(ln.y1 + pad + 1, band[k + 1].y0 if k + 1 < len(band) else 1e9)
        b = _to_full((ln.x0 - pad - 2, top, ln.x1 - ln.x0 + 2 * pad + 4, bot - top), f, rgb.shape)
        if b[2] < 4 or b[3] < 4:
            continue
        crop = rgb[b[1]:b[1] + b[3], b[0]:b[0] + b[2]]
        try:
            got = ocr.read_line(prep(crop) if prep else crop, SHIP_WHITELIST)
        except Exception:  # noqa: BLE001 - OCR is evidence, never a reason to fail the layout
            continue
        if got.text.strip():
            texts.append(got.text)
            confs.append(got.confidence)
    return texts, confs


def _ship_plausible(lines: list[str]) -> bool:
    """Whether the lines parse to a catalogue ship at a tier (the engine matches them again, with
    the user's corrections map; here only to decide whether a second reading is worth it)."""
    if not lines:
        return False
    try:
        from warpd.shiptext import default_matcher

        match = default_matcher().match_lines(lines)
    except Exception:  # noqa: BLE001 - no catalogue: take the first reading
        return True
    return bool(match.ship_name and match.tier)


def _ship_text(stack: list[_Seg], work: np.ndarray, mask: np.ndarray, rgb: np.ndarray, f: float,
               ocr: Any) -> ShipTextRegion | None:
    """Find the name and type/tier lines above the first space equipment row; OCR only the type/tier lines."""
    top = stack[0]
    h = float(_med([s.h for s in stack]))
    w = float(_med([s.w for s in stack]))
    right = int(max(s.x1 for s in stack))
    cells_left = min(s.x0 for s in stack)
    # the panel's text column: where the row labels start (left-aligned labels sit at the panel's
    # left padding, right-aligned ones a little further in)
    lefts = []
    for s in stack[:6]:
        ext = _text_extent(mask, int(cells_left - LABEL_SEARCH_W * w), int(cells_left - 0.12 * w), int(s.y0),
                           int(s.y0 + s.h), max_gap=int(0.9 * w))
        if ext is not None:
            lefts.append(ext[0])
    core_left = min(lefts) if lefts else int(cells_left - 3 * h)
    lines = _band_lines(mask, core_left, right, int(core_left - 8 * h), int(right + 0.5 * h),
                        int(top.y0 - SHIP_BAND_SEARCH_H * h), int(top.y0 - 0.02 * h), h)
    name, type_lines = _pick_band(lines, h)

    def full(ln: _TextLine) -> tuple[int, int, int, int]:
        return _to_full((ln.x0, ln.y0, ln.x1 - ln.x0, ln.y1 - ln.y0), f, rgb.shape, pad=2)

    name_bbox = full(name) if name is not None else None
    if not type_lines:
        return ShipTextRegion(name_bbox, None) if name_bbox else None
    boxes = [full(ln) for ln in type_lines]
    lines_txt: list[str] = []
    confs: list[float] = []
    if ocr is not None:
        lines_txt, confs = _read_type_lines(ocr, rgb, f, name, type_lines, SHIP_OCR_MARGIN, None)
        if not _ship_plausible(lines_txt):
            # blurred / washed-out text: read again upscaled and sharpened, keep what parses
            again = _read_type_lines(ocr, rgb, f, name, type_lines, SHIP_OCR_RETRY_MARGIN, _sharpened)
            if _ship_plausible(again[0]) or not lines_txt:
                lines_txt, confs = again
    return ShipTextRegion(name_bbox, _union(boxes), lines_txt, confs)
