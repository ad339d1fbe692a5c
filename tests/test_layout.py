"""Stage 2 (warpd.layout): label matching, row-order DP, degenerate images.

Accuracy on rendered screens (random capture options) is measured by bench/layout.py against the
targets of the brief (``--strict`` fails when one is missed).
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from warpd.layout import align_rows, find_layout, fold_text, match_label
from warpd.slots import GROUND_EQUIPMENT, SPACE_EQUIPMENT


@pytest.mark.parametrize("text,name", [
    ("Fore Weapons", "Fore Weapons"), ("Fore\nWeapons", "Fore Weapons"), ("F0re Weap0ns", "Fore Weapons"),
    ("Warp Core", "Warp Core"), ("Shield", "Shields"), ("Engines", "Impulse Engines"),
    ("Bug-Waffen", "Fore Weapons"), ("Heck Waffen", "Aft Weapons"), ("Wissenschafts konsolen", "Science Consoles"),
    ("Taktikkonsolen", "Tactical Consoles"), ("Geräte", "Devices"), ("Geraete", "Devices"),
    ("Personal Space Traits", "Personal Space Traits"), ("Raumschiffeigenschaften", "Starship Traits"),
    ("Active Space Reputation", "Active Space Rep"), ("Kit Modules", "Kit Modules"),
])
def test_match_label(text: str, name: str) -> None:
    got, score = match_label(text)
    assert got == name, (text, got, score)


def test_match_label_rejects_noise() -> None:
    assert match_label("lorem ipsum dolor")[0] is None
    assert match_label("")[0] is None
    assert fold_text("Sekundärer  Deflektor!") == "sekundarer deflektor"


def test_align_rows_counts_only() -> None:
    # fore 4, aft 3, then six single rows, devices 4, uni 2, eng 3, sci 3, tac 5: a full T6 layout
    counts = [4, 3, 1, 1, 1, 1, 1, 1, 4, 2, 3, 3, 5]
    names, confs, _ = align_rows(counts, SPACE_EQUIPMENT, optional=("Hangars",))
    assert names[:2] == ["Fore Weapons", "Aft Weapons"]
    assert names[8] == "Devices" and names[-1] == "Tactical Consoles"
    assert all(0.0 <= c <= 1.0 for c in confs)


def test_align_rows_label_evidence_decides_ambiguity() -> None:
    counts = [3, 3, 1, 1, 1, 1, 1, 3, 2, 2, 2]  # five singles: Experimental OR Secondary Deflector
    scores = [[0.5] * len(SPACE_EQUIPMENT) for _ in counts]
    sec = [g.name for g in SPACE_EQUIPMENT].index("Secondary Deflector")
    scores[3][sec] = 1.0
    names, _, _ = align_rows(counts, SPACE_EQUIPMENT, scores, optional=("Experimental Weapon",
                                                                         "Secondary Deflector", "Hangars",
                                                                         "Universal Consoles"))
    assert names[2] == "Deflector" and names[3] == "Secondary Deflector"


def test_align_rows_respects_max_counts() -> None:
    names, _, _ = align_rows([7, 1, 1, 1, 1, 2, 3], GROUND_EQUIPMENT)
    assert names == [g.name for g in GROUND_EQUIPMENT]
    names, _, _ = align_rows([2, 6], SPACE_EQUIPMENT)
    assert names[1] == "Devices"  # only Devices holds 6


# The accuracy targets on rendered screens (slot recall >= 0.99, state accuracy >= 0.98, no cells on
# UNKNOWN screens) live in bench/layout.py (run it with --strict) while recognition is below them.


def test_layout_on_blank_and_tiny_images() -> None:
    assert find_layout(np.zeros((720, 1280, 3), np.uint8)).panels == []
    assert find_layout(np.full((200, 320, 3), 255, np.uint8)).panels == []


# ---------------------------------------------------------------- rendered screens: every type, several sizes
RESOLUTIONS = [(1280, 720, 1.0), (1920, 1080, 1.0), (1920, 1200, 1.0), (2560, 1080, 1.0), (3840, 2160, 1.0),
               (1920, 1080, 0.8), (1920, 1080, 1.2)]
SCREEN_TYPES_ALL = ["SPACE_EQ", "GROUND_EQ", "TRAITS", "BOFFS", "SPECIALIZATIONS", "SPACE_MIXED", "GROUND_MIXED",
                    "UNKNOWN"]
# Known gaps (bench/layout.py tracks the aggregate figures): kept visible instead of dropped.
KNOWN_GAPS: dict[tuple, str] = {}


def _iou(a, b) -> float:
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return ix * iy / max(1, a[2] * a[3] + b[2] * b[3] - ix * iy)


@pytest.fixture(scope="module")
def ocr_engine():
    from warpd.ocr import OcrEngine

    eng = OcrEngine()
    if not eng.available():
        pytest.skip("tesseract not installed")
    return eng


@pytest.mark.slow
@pytest.mark.parametrize("screen_type", SCREEN_TYPES_ALL)
@pytest.mark.parametrize("width,height,ui", RESOLUTIONS)
def test_rendered_screen_cells_and_type(screen_type, width, height, ui, catalog, ocr_engine, request) -> None:
    from warpd.screen_type import classify
    from warpd.synth.screens import RenderOptions, render_screen

    gap = KNOWN_GAPS.get((screen_type, width, height, ui))
    if gap:
        request.applymarker(pytest.mark.xfail(reason=gap, strict=False))
    img, truth = render_screen(screen_type, 11, catalog, RenderOptions(width=width, height=height, ui_scale=ui))
    rgb = np.asarray(img)
    layout = find_layout(rgb, ocr_engine)
    got, conf, _ev = classify(rgb, layout)
    assert got.value == screen_type and 0.0 <= conf <= 1.0
    if screen_type == "UNKNOWN":
        assert layout.cells == []
        return
    slots = [s for s in truth["slots"] if not s["slot"].endswith("Specialization")]
    found = sum(any(_iou(c.bbox, s["bbox"]) >= 0.5 for c in layout.cells) for s in slots)
    assert found >= 0.85 * len(slots), (found, len(slots))
    assert all(c.state in ("item", "empty", "locked") for c in layout.cells)
    for p in layout.panels:  # cell boxes inside the image, rows named only with canonical names
        for r in p.rows:
            for c in r.cells:
                x, y, w, h = c.bbox
                assert x >= 0 and y >= 0 and x + w <= width and y + h <= height and w > 0 and h > 0


def test_line_box_skips_frame_lines() -> None:
    from warpd.layout import _line_box

    m = np.zeros((60, 200), np.uint8)
    m[5, :] = 1  # a frame line across the box
    m[30:42, 20:120:3] = 1  # a text line
    box = _line_box(m, 0, 200, 0, 60, max_gap=20, min_h=4, max_h=30)
    assert box is not None and box[1] == 30 and box[3] == 12 and box[0] == 20


def test_boff_and_spec_words() -> None:
    from warpd.layout import _is_boff_text, _is_spec_name

    assert _is_boff_text("Lt. Commander Engineering") and _is_boff_text("Standard Away Team")
    assert _is_boff_text("Raumstationen") and not _is_boff_text("lorem ipsum dolor")
    assert _is_spec_name("Miracle Worker") and _is_spec_name("Temporal Operative") and not _is_spec_name("Deflector")


# ---------------------------------------------------------------- the ship band (name / type / tier)
def _cover(a, b) -> float:
    """Share of box ``b`` inside box ``a``."""
    if a is None or b is None:
        return 0.0
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return ix * iy / max(1, b[2] * b[3])


def _band_mask(lines: list[tuple[str, float, int]], width: int = 700, rule: bool = True) -> np.ndarray:
    """A dark panel with text lines (text, font scale, thickness) top to bottom, a frame line above
    and a separator below, then a row of cells; returns the image (RGB)."""
    import cv2

    img = np.full((360, width, 3), (14, 18, 26), np.uint8)
    cv2.rectangle(img, (10, 8), (width - 10, 352), (90, 110, 130), 1)  # panel frame
    y = 40
    for text, scale, thick in lines:
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
        cv2.putText(img, text, (30, y + th), cv2.FONT_HERSHEY_SIMPLEX, scale, (225, 230, 240), thick, cv2.LINE_AA)
        y += th + base + 8
    if rule:
        cv2.line(img, (30, y + 6), (width - 30, y + 6), (80, 120, 150), 1)
    top = y + 22
    for k in range(5):  # a row of 5 cells, 45x60, right-justified
        x = width - 30 - (k + 1) * 49
        cv2.rectangle(img, (x, top), (x + 45, top + 60), (200, 120, 240), -1)
    return img, top


@pytest.mark.parametrize("type_lines", [["Fleet Support Cruiser [T6-X2]"],
                                        ["Kardashev Command Dyson Science", "Destroyer [T6-X2]"],
                                        ["Avenger Battle Cruiser", "[T6]"]])
def test_band_lines_name_is_the_big_bold_line(type_lines) -> None:
    """Geometry only (no renderer): the name is the big bold line, the type lines are those below."""
    from warpd.layout import _band_lines, _pick_band, foreground_mask

    img, top = _band_mask([("U.S.S. Enterprise", 1.0, 2)] + [(t, 0.6, 1) for t in type_lines])
    mask = foreground_mask(img)
    h = 60.0
    lines = _band_lines(mask, 30, 670, 10, 690, int(top - 3.4 * h), int(top - 1), h)
    name, types = _pick_band(lines, h)
    assert name is not None and name.y0 < 50 < name.y1, lines
    assert len(types) == len(type_lines)
    assert all(t.y0 >= name.y1 for t in types)


@pytest.mark.slow
def test_ship_band_on_rendered_screens(catalog, ocr_engine) -> None:
    """SPACE_EQ / SPACE_MIXED at several resolutions and UI scales, wrapped long types included: the
    parsed type and tier match the truth for most screens, the name box covers the truth's, and
    the name's text is never read into the type lines."""
    from rapidfuzz import fuzz

    from warpd.shiptext import ShipMatcher
    from warpd.synth.screens import RenderOptions, render_screen

    matcher = ShipMatcher(catalog)
    cases = [("SPACE_EQ", 1920, 1080, 1.0, (1, 4, 25)), ("SPACE_MIXED", 1920, 1080, 1.0, (1, 4, 7)),
             ("SPACE_EQ", 1280, 720, 0.9, (1, 3, 7)), ("SPACE_MIXED", 2560, 1440, 1.2, (1, 2, 5)),
             ("SPACE_EQ", 3840, 2160, 1.1, (2, 6)), ("SPACE_EQ", 2560, 1080, 0.8, (3, 8))]
    n = exact = named = wrapped = wrapped_ok = 0
    misses = []
    for st, width, height, ui, seeds in cases:
        for seed in seeds:
            img, truth = render_screen(st, seed, catalog, RenderOptions(width=width, height=height, ui_scale=ui))
            layout = find_layout(np.asarray(img), ocr_engine)
            ship, band = truth["ship"], layout.ship_text
            n += 1
            lines = band.lines if band else []
            match = matcher.match_lines(lines)
            ok = match.ship_name == ship["type"] and match.tier == ship["tier"]
            exact += ok
            if ship["type_lines"] >= 2:
                wrapped += 1
                wrapped_ok += ok
            named += band is not None and _cover(band.name_bbox, ship["name_bbox"]) >= 0.9
            if not ok:
                misses.append((st, width, height, ui, seed, lines, ship["type"], ship["tier"]))
            # the name is position only: its text never reaches the type lines
            bare = re.sub(r"^\s*(?:[A-Z]\.\s?){2,4}\s*", "", ship["name"]).strip() or ship["name"]
            for line in lines:
                assert fuzz.partial_ratio(bare.lower(), line.lower()) < 80 or bare.lower() in ship["type"].lower(), \
                    (ship["name"], line)
    print(f"ship band: {exact}/{n} exact, wrapped {wrapped_ok}/{wrapped}, name boxes {named}/{n}")
    assert wrapped >= 4
    assert exact >= 0.85 * n, misses
    assert wrapped_ok >= wrapped - 1, misses
    assert named >= 0.85 * n


def test_outer_boxes_match_connected_components() -> None:
    """The contour-based component boxes (the fast path of cell finding) name every 8-connected
    component, those inside another's hole included, with the same boxes as OpenCV's labelling."""
    import cv2

    from warpd.layout import _merge_fragments, _outer_boxes

    rng = np.random.default_rng(3)
    mask = (rng.random((120, 160)) > 0.93).astype(np.uint8)
    mask[10:60, 10:60] = 1
    mask[20:50, 20:50] = 0  # a ring with a hole ...
    mask[30:40, 30:40] = 1  # ... and a component inside it
    mask[0:5, 150:160] = 1  # touching the border
    n, _lab, stats, _c = cv2.connectedComponentsWithStats(mask, connectivity=8)
    want = sorted(tuple(int(v) for v in s[:4]) for s in stats[1:])
    assert sorted(tuple(int(v) for v in b) for b in _outer_boxes(mask)) == want
    assert _outer_boxes(np.zeros((5, 5), np.uint8)).shape == (0, 4)
    # fragment merging: specks under 3 pixels dropped, the rest filled to their boxes
    filled = _merge_fragments(mask, 100)
    for x, y, w, h, area in stats[1:]:
        inside = filled[y:y + h, x:x + w]
        assert inside.all() if area >= 3 and h <= 100 and w <= 200 else True


def _tree_image(node: int = 26, step: int = 41, levels: int = 4, cols: int = 3) -> np.ndarray:
    """A dark screen with one tree of square nodes joined by thin vertical connectors."""
    img = np.full((768, 1366, 3), 12, np.uint8)
    x0, y0 = 600, 200
    for c in range(cols):
        cx = x0 + c * (node + 18)
        for lv in range(levels):
            y = y0 + lv * step
            img[y:y + node, cx:cx + node] = 170
            if lv:
                mid = cx + node // 2
                img[y - (step - node):y, mid:mid + 2] = 170  # connector from the level above
    return img


def test_tree_nodes_joined_by_connectors_are_cells() -> None:
    from warpd.layout import find_cells

    boxes = find_cells(_tree_image())
    nodes = [b for b in boxes if 20 <= b[3] <= 32 and 20 <= b[2] <= 32]
    assert len(nodes) >= 10  # 12 nodes; the connectors no longer make the tree one tall blob


def test_tree_cut_leaves_rings_and_bars_alone() -> None:
    import cv2

    from warpd.layout import find_cells

    img = np.full((1080, 1920, 3), 12, np.uint8)
    cv2.circle(img, (1795, 125), 105, (170, 170, 170), 2)  # a minimap rim
    img[330:600, 1335:1425] = 170  # a tall solid bar
    assert find_cells(img) == []


def _cells_hsv(panels: list[tuple[int, int]], rows: int = 3, border: bool = True) -> tuple[np.ndarray, list]:
    """A dark screen with panels (x0, x1) of slot cells: bright frames, a lighter panel edge when
    ``border``; returns the HSV image and the cell boxes."""
    img = np.full((300, 600, 3), 20, np.uint8)
    boxes = []
    for x0, x1 in panels:
        img[20:280, x0:x1] = 45
        if border:
            img[20:280, [x0, x1 - 1]] = 160
        for r in range(rows):
            y = 40 + r * 70
            for x in range(x0 + 10, x1 - 50, 44):
                img[y:y + 50, x:x + 40] = 200
                img[y + 3:y + 47, x + 3:x + 37] = 90
                boxes.append((x, y, 40, 50))
    import cv2

    return cv2.cvtColor(img, cv2.COLOR_RGB2HSV), boxes


def test_rows_stop_at_a_panel_edge() -> None:
    """Two panels side by side: the cells on one line form two rows, not one across the gap;
    without a panel edge (one grid) a wide gap between stacked cells is no reason to split."""
    from warpd.layout import _border_between

    hsv, boxes = _cells_hsv([(10, 200), (250, 420)])
    line = sorted((b for b in boxes if b[1] == 40), key=lambda b: b[0])
    left = [b for b in line if b[0] < 200]
    right = [b for b in line if b[0] > 250]
    assert _border_between(hsv, left[-1], right[0])
    assert not _border_between(hsv, left[0], left[1])
    hsv2, boxes2 = _cells_hsv([(10, 420)], border=False)
    a = next(b for b in boxes2 if b[1] == 110 and b[0] == 10 + 10 + 44)
    c = next(b for b in boxes2 if b[1] == 110 and b[0] == 10 + 10 + 3 * 44)
    assert not _border_between(hsv2, a, c)  # frames stacked over rows stop at the row gaps


def test_seat_profession_from_title() -> None:
    from warpd.layout import seat_profession

    assert seat_profession("Lt. Commander Universal / Command") == "Universal"
    assert seat_profession("imander Tactical") == "Tactical"
    assert seat_profession("Commander Engineerinq") == "Engineering"
    assert seat_profession("Fähnrich Wissenschaft") == "Science"
    assert seat_profession("Ensign Operations") == "Operations"
    assert seat_profession("lorem ipsum dolor") is None and seat_profession("") is None


def _seg(x0: int, y: int, n: int, w: int = 40, h: int = 50, pitch: int = 44):
    from warpd.layout import _Seg

    return _Seg([(x0 + i * pitch, y, w, h) for i in range(n)], [False] * n)


def test_trait_pieces_join_their_grid_and_sections_split() -> None:
    """Pieces of one grid (a row's last cells, an extra row of one) join it; a piece of the section
    beside it does not; the grid then splits where a header stands between rows."""
    from warpd.layout import _merge_trait_grids, _trait_sections

    main = ("traits", [_seg(100, 100, 3), _seg(100, 160, 5), _seg(100, 320, 5)], [None] * 3)
    pieces = ("traits", [_seg(232, 100, 2), _seg(100, 220, 1)], [None] * 2)
    beside = ("traits", [_seg(400, 100, 5)], [None])
    out = _merge_trait_grids([pieces, main, beside])
    grid = next(d for d in out if len(d[1]) >= 3)
    assert [len(s.boxes) for s in grid[1]] == [5, 5, 1, 5]
    assert any(len(d[1]) == 1 and d[1][0].x0 == 400 for d in out)  # the other section stays apart
    sections = _trait_sections([grid])
    assert [[len(s.boxes) for s in d[1]] for d in sections] == [[5, 5, 1], [5]]


@pytest.mark.slow
@pytest.mark.parametrize("screen_type,seed", [("SPACE_MIXED", 22), ("SPACE_MIXED", 38), ("TRAITS", 3)])
def test_trait_sections_named_by_their_own_headers(screen_type, seed, catalog, ocr_engine) -> None:
    """Every trait cell is found under its own section's name (Personal Space Traits, Starship
    Traits, Space Reputation, Active Space Rep), not the name of the grid's first header."""
    import random

    from warpd.synth.screens import random_options, render_screen

    img, truth = render_screen(screen_type, seed, catalog, random_options(random.Random(seed)))
    layout = find_layout(np.asarray(img), ocr_engine)
    cells = [s for s in truth["slots"] if s["slot"] in {"Personal Space Traits", "Starship Traits",
                                                         "Space Reputation", "Active Space Rep"}
             and not s.get("occluded")]
    named = [(r.slot, c.bbox) for p in layout.panels for r in p.rows for c in r.cells]
    ok = sum(any(n == s["slot"] and _iou(b, s["bbox"]) >= 0.5 for n, b in named) for s in cells)
    assert cells and ok >= 0.9 * len(cells), (ok, len(cells))


def test_touching_glowing_cells_split_evenly() -> None:
    """Four cells whose glowing frames leave no dark gap (the ink only thins there) become four
    cells; a hollow outline of the same size (a panel frame) is not cut into 'cells'."""
    from warpd.layout import _split_periodic

    m = np.zeros((60, 200), np.uint8)
    for i in range(4):
        m[10:50, 10 + i * 34:10 + i * 34 + 32] = 1
    m[10:30, 10:146] = 1  # glow bridging the gaps in the top half
    cells = _split_periodic(m, (10, 10, 136, 40), 10)
    assert len(cells) == 4 and all(28 <= c[2] <= 36 and c[3] == 40 for c in cells)
    hollow = np.zeros((60, 200), np.uint8)
    hollow[10, 10:146] = hollow[49, 10:146] = 1
    hollow[10:50, [10, 145]] = 1
    assert _split_periodic(hollow, (10, 10, 136, 40), 10) == []


def test_cells_touching_a_rule_are_cells() -> None:
    """A separator line across the panel that a row's icons touch makes one component far too wide
    for a cell; cut at its thin line, the icons are cells again, their boxes without the line."""
    from warpd.layout import _tree_nodes

    m = np.zeros((200, 700), np.uint8)
    m[40, 20:680] = 1  # the rule
    for x in (400, 452, 504):
        m[41:101, x:x + 48] = 1  # icons hanging from it
    cells = _tree_nodes(m, 23, 170, [])
    assert sorted(c[0] for c in cells) == [400, 452, 504]
    assert all(40 <= c[1] <= 41 and 60 <= c[3] <= 61 and c[2] == 48 for c in cells)  # a 1-px stub at most


def test_washed_out_icon_is_an_item_not_locked() -> None:
    """A locked slot is a flat grey frame with a padlock in its middle; an HDR-washed item icon is
    just as grey and unsaturated but has detail out to its edges."""
    from warpd.layout import cell_state

    locked = np.full((60, 48, 3), 90, np.uint8)
    locked[24:38, 18:30] = 170  # the padlock glyph, small and central
    locked[26:30, 21:27] = 90
    assert cell_state(locked, (0, 0, 48, 60)) == "locked"
    rng = np.random.default_rng(3)
    washed = np.repeat(rng.integers(70, 150, (60, 48, 1), dtype=np.uint8), 3, axis=2)
    washed = np.ascontiguousarray(washed)
    washed[:, :, 0] = np.clip(washed[:, :, 0].astype(int) + 8, 0, 255)  # a trace of colour
    assert cell_state(washed, (0, 0, 48, 60)) == "item"


def test_one_trait_environment_per_screen() -> None:
    """A header misread as the other environment's follows the majority of the screen's trait rows."""
    from warpd.layout import Cell, Panel, Row, _one_trait_environment

    def panel(name, rows=1):
        return Panel("traits", None, [Row(name, 1.0, [Cell((0, 0, 8, 10), "item", 0)]) for _ in range(rows)])

    panels = [panel("Personal Ground Traits", 2), panel("Space Reputation"), panel("Active Ground Rep")]
    _one_trait_environment(panels)
    assert [p.rows[0].slot for p in panels] == ["Personal Ground Traits", "Ground Reputation", "Active Ground Rep"]
    tie = [panel("Personal Ground Traits"), panel("Space Reputation")]
    _one_trait_environment(tie)  # no majority: nothing is renamed
    assert [p.rows[0].slot for p in tie] == ["Personal Ground Traits", "Space Reputation"]


def test_a_short_row_does_not_split_an_equipment_panel() -> None:
    """One row found shorter than the rest (a dark icon) stays in its panel: rows are compared with
    the panel's typical height, not with the row above."""
    from warpd.layout import _adopt_rows, _Seg, group_panels

    rows = []
    for k, n in enumerate([3, 3, 1, 1, 1, 1, 2, 3, 3]):
        h = 72 if k == 5 else 88
        rows.append(_Seg([(500 - (i + 1) * 80, 100 + k * 111, 72, h) for i in range(n)][::-1], [False] * n))
    hsv = np.zeros((1200, 800, 3), np.uint8)
    drafts = group_panels(rows, hsv, None)
    blank = np.zeros((1200, 800), np.uint8)
    _adopt_rows(drafts, rows, blank, blank)  # the short row itself rejoins as a row inside the panel
    eq = [d for d in drafts if d[0] == "equipment"]
    assert len(eq) == 1 and len(eq[0][1]) == 9


def test_a_seat_on_an_equipment_panels_edge_is_its_row() -> None:
    """A 'seat' found on an equipment panel's right edge, inside its rows' span (a washed-out label
    taken for a marker bar), goes back to the panel as a row; seats elsewhere stay seats."""
    from warpd.layout import _prune_panels

    eq_rows = [_seg(500 - 44 * n, 100 + k * 60, n) for k, n in zip([0, 1, 2, 3, 5], [3, 3, 1, 1, 2])]
    stray = _seg(500 - 44 * 4, 100 + 4 * 60, 4)  # the row between the 4th and the 5th
    seat = _seg(900, 100, 4)
    drafts = [("boffs", [seat, stray], ["Science", "Science"]), ("equipment", eq_rows, [None] * 5)]
    out = {k: st for k, st, _e in _prune_panels(drafts)}
    assert [s.x0 for s in out["boffs"]] == [900]
    assert len(out["equipment"]) == 6 and out["equipment"][4] is stray
    # the row just below the panel's last row, its label taken for a marker, is the panel's too
    below = _seg(500 - 44 * 4, 100 + 6 * 60, 4)
    drafts = [("boffs", [seat, below], ["Science", "Science"]), ("equipment", list(eq_rows), [None] * 5)]
    out = {k: st for k, st, _e in _prune_panels(drafts)}
    assert [s.x0 for s in out["boffs"]] == [900] and out["equipment"][-1] is below



@pytest.mark.slow
def test_small_ui_ground_panel_with_ruled_rows(ocr_engine) -> None:
    """The bundled 1366x768, UI 0.85 ground screen: every row touches the panel's separator rules and
    the right column's cells form a 2x2 block once the rules are cut; the block must not fuse into
    one 'cell' (it did, and the screen came out UNKNOWN)."""
    import json
    from pathlib import Path

    from warpd.load import load_image
    from warpd.screen_type import classify

    root = Path(__file__).resolve().parent.parent / "examples"
    rgb = load_image(root / "ground_eq_000008.jpg", 10**9).rgb
    truth = json.loads((root / "ground_eq_000008.json").read_text())
    layout = find_layout(rgb, ocr_engine)
    assert classify(rgb, layout)[0].value == "GROUND_EQ"
    cells = [s for s in truth["slots"] if not s.get("occluded")]
    found = sum(any(_iou(c.bbox, s["bbox"]) >= 0.5 for c in layout.cells) for s in cells)
    assert found >= 0.8 * len(cells), (found, len(cells))


@pytest.mark.slow
def test_boff_panel_with_unreadable_header_is_kept(catalog, ocr_engine) -> None:
    """A dim German boff screen whose header OCR cannot read: five seats with profession markers
    in a grid of rows are a boff panel all the same (a game hotbar is a single strip)."""
    import random

    from warpd.screen_type import classify
    from warpd.synth.screens import random_options, render_screen

    img, truth = render_screen("BOFFS", 1060, catalog, random_options(random.Random(1060)))
    rgb = np.asarray(img)
    layout = find_layout(rgb, ocr_engine)
    assert classify(rgb, layout)[0].value == "BOFFS"
    assert sum(1 for p in layout.panels if p.kind == "boffs" for r in p.rows if r.slot) >= 3


def test_cell_boxes_are_redrawn_at_the_panels_cell_size() -> None:
    """A cell found with its glow (bigger) or short (a dark icon) is cropped at the panel's cell
    size, centred where it was found, on its row's line; a box far off that size is left alone."""
    from warpd.layout import _panel_cell_size, _regular_box, _Seg

    row = _Seg([(100, 50, 40, 50), (142, 46, 46, 58), (188, 56, 40, 40), (232, 50, 40, 50)], [False] * 4)
    size = _panel_cell_size([row])
    assert size == (40.0, 50.0)
    assert _regular_box(row.boxes[1], row, size) == (145, 50, 40, 50)  # the glowing one
    assert _regular_box(row.boxes[2], row, size) == (188, 50, 40, 50)  # the short one, on the line
    assert _regular_box((300, 0, 90, 120), row, size) == (300, 0, 90, 120)


@pytest.mark.slow
def test_trait_grid_does_not_take_the_first_equipment_row(catalog, ocr_engine) -> None:
    """A mixed screen where a trait grid beside the equipment panel is grown to five cells a row:
    it must not take the equipment panel's first row, whose top is where the ship text is read."""
    import random

    from warpd.synth.screens import random_options, render_screen

    img, truth = render_screen("SPACE_MIXED", 1006, catalog, random_options(random.Random(1006)))
    layout = find_layout(np.asarray(img), ocr_engine)
    fore = [c for p in layout.panels if p.kind == "equipment" for r in p.rows if r.slot == "Fore Weapons"
            for c in r.cells]
    assert len(fore) == sum(1 for s in truth["slots"] if s["slot"] == "Fore Weapons")
    assert layout.ship_text is not None and any("Valdore" in ln for ln in layout.ship_text.lines)


def test_a_two_by_two_block_of_cells_is_split() -> None:
    """Four touching cells found as one cell-shaped box twice the typical size become four cells;
    boxes of the typical size are left alone."""
    from warpd.layout import _split_blocks

    cells = [(100 + 55 * i, 400, 50, 62) for i in range(6)]
    block = (300, 100, 108, 130)
    out = _split_blocks(cells + [block])
    assert set(cells) <= set(out) and block not in out
    quarters = [b for b in out if b not in cells]
    assert len(quarters) == 4 and all(50 <= b[2] <= 54 and 60 <= b[3] <= 64 for b in quarters)
    assert {(b[0], b[1]) for b in quarters} == {(300, 100), (300 + 108 - quarters[0][2], 100),
                                                (300, 100 + 130 - quarters[0][3]),
                                                (300 + 108 - quarters[0][2], 100 + 130 - quarters[0][3])}


def test_trait_slot_in_an_environment() -> None:
    from warpd.slots import trait_slot_in

    assert trait_slot_in("Space Reputation", "ground") == "Ground Reputation"
    assert trait_slot_in("Personal Ground Traits", "space") == "Personal Space Traits"
    assert trait_slot_in("Starship Traits", "ground") == "Starship Traits"  # no ground counterpart
    assert trait_slot_in("Space Reputation", None) == "Space Reputation"
    assert trait_slot_in("Fore Weapons", "ground") == "Fore Weapons" and trait_slot_in(None, "space") is None


def test_hollow_icons_touching_the_rules_of_a_narrow_panel() -> None:
    """A narrow panel's separator rule (not wider than two tall cells) with consoles hanging from it:
    a console's dark screen leaves only thin frame strokes at its sides and top. Only lines longer
    than the row is tall are cut, so each console stays one whole cell, not a sliver under its screen."""
    from warpd.layout import _tree_nodes

    m = np.zeros((120, 420), np.uint8)
    m[20:23, 10:370] = 1  # the rule, 360 px: less than 2 x max_h (2 x 183 at 1080p)
    for x in (280, 322):
        m[23:73, x:x + 38] = 1
        m[33:50, x + 4:x + 34] = 0  # the console's dark screen: thin frame strokes remain
    cells = _tree_nodes(m, 23, 183, [])
    assert sorted(c[0] for c in cells) == [280, 322]
    assert all(c[3] >= 48 and c[2] == 38 for c in cells), cells


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1068])
def test_a_boff_panels_second_column_joins_it(seed, catalog, ocr_engine) -> None:
    """A 'Standard Away Team' panel whose header stands over its left column only: the right column's
    seats, markers too faint to see, on the same lines and inside the same panel, are seats as well."""
    import random

    from warpd.synth.screens import random_options, render_screen

    img, truth = render_screen("BOFFS", seed, catalog, random_options(random.Random(seed)))
    layout = find_layout(np.asarray(img), ocr_engine)
    seats = [c.bbox for p in layout.panels if p.kind == "boffs" for r in p.rows for c in r.cells]
    cells = [s for s in truth["slots"] if s["slot"].startswith("Boff") and not s.get("occluded")]
    found = sum(any(_iou(b, s["bbox"]) >= 0.5 for b in seats) for s in cells)
    assert found == len(cells) and len(seats) == len(cells), (found, len(seats), len(cells))


@pytest.mark.slow
def test_merged_cells_left_of_a_row_and_a_seat_on_its_edge(catalog, ocr_engine) -> None:
    """A 720p SPACE_EQ screen whose Devices row's right cells were taken for a boff seat (a marker-
    coloured neighbour) and whose two left cells touch as one blob: the seat goes back to the panel
    before its missing rows are probed, the blob's positions are the row's cells, and the screen is
    SPACE_EQ, not mixed."""
    import random

    from warpd.screen_type import classify
    from warpd.synth.screens import random_options, render_screen

    img, truth = render_screen("SPACE_EQ", 1121, catalog, random_options(random.Random(1121)))
    rgb = np.asarray(img)
    layout = find_layout(rgb, ocr_engine)
    assert classify(rgb, layout)[0].value == "SPACE_EQ"
    devices = [c.bbox for p in layout.panels for r in p.rows if r.slot == "Devices" for c in r.cells]
    truth_dev = [s["bbox"] for s in truth["slots"] if s["slot"] == "Devices"]
    assert len(devices) == len(truth_dev) == 4
    assert all(any(_iou(b, t) >= 0.5 for b in devices) for t in truth_dev)


@pytest.mark.parametrize("main,stripe,prof", [
    ((0, 192, 106), (16, 158, 168), "Tactical"),      # red seat with a Command stripe: hues 178..2 and 16
    ((178, 192, 106), None, "Tactical"),               # red on the other side of the hue wrap
    ((0, 66, 140), None, "Tactical"),                  # a red marker paled by HDR washout
    ((23, 155, 187), (126, 159, 180), "Engineering"),  # with an Intelligence stripe
    ((26, 70, 213), None, "Universal"),
    ((108, 180, 150), (92, 110, 252), "Science"),     # with a Pilot stripe
])
def test_seat_marker_colour_is_its_main_zone(main, stripe, prof) -> None:
    """A seat's profession is the marker's main zone; a specialist's stripe down its right edge, red's
    hue wrapping around 0 and a washed-out (pale) marker do not change it (sto-domain.md colours)."""
    import cv2

    from warpd.layout import _has_marker, _Seg

    hsv = np.zeros((120, 200, 3), np.uint8)
    hsv[:, :] = (110, 60, 30)  # dark blue panel
    hsv[30:86, 60:71] = main
    if main[0] == 0:  # a rendered red spans both ends of the hue circle
        hsv[30:86:2, 60:71, 0] = 178
    if stripe:
        hsv[30:86, 71:74] = stripe
    seg = _Seg([(80, 30, 42, 56), (126, 30, 42, 56)], [False, False])
    ok, got = _has_marker(cv2.cvtColor(cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB), cv2.COLOR_RGB2HSV), seg)
    assert ok and got == prof


def test_washed_out_engineering_seat_is_told_from_universal_by_the_other_markers() -> None:
    """Engineering (saturated gold) and Universal (pale gold) share a hue. Under HDR washout every
    marker pales, so an Engineering marker alone reads as Universal; a red (Tactical) marker on the
    same screen shows how much saturation was lost, and undoing that tells the two apart again,
    while a Universal marker stays Universal."""
    from warpd.layout import marker_profession, washout_gain

    washed_eng, washed_tac, washed_univ = (20.0, 47.0, 218.0), (1.0, 66.0, 140.0), (26.0, 24.0, 230.0)
    assert marker_profession(washed_eng) == "Universal"  # alone, nothing tells
    gain = washout_gain([washed_eng, washed_tac])
    assert 2.5 < gain < 3.2
    assert marker_profession(washed_eng, gain) == "Engineering"
    assert marker_profession(washed_tac, gain) == "Tactical"
    assert marker_profession(washed_univ, washout_gain([washed_univ, washed_tac])) == "Universal"
    # an unwashed screen is left as measured
    assert washout_gain([(0.0, 192.0, 106.0), (108.0, 185.0, 150.0)]) == 1.0
    assert marker_profession((23.0, 155.0, 187.0), 1.0) == "Engineering"


@pytest.mark.slow
def test_a_tooltip_over_the_middle_rows_of_a_ground_panel(catalog, ocr_engine) -> None:
    """A 1440p ground screen whose tooltip hides Kit and Body Armor and touches EV Suit: the three
    labelled rows below still make an equipment panel, and the Kit Modules row four row steps above
    (reaching further left than any row below it) is adopted as its first row."""
    import random

    from warpd.screen_type import classify
    from warpd.synth.screens import random_options, render_screen

    img, truth = render_screen("GROUND_EQ", 2106, catalog, random_options(random.Random(2106)))
    rgb = np.asarray(img)
    layout = find_layout(rgb, ocr_engine)
    assert classify(rgb, layout)[0].value == "GROUND_EQ"
    named = [(r.slot, c.bbox) for p in layout.panels for r in p.rows for c in r.cells]
    for slot in ("Kit Modules", "Personal Shield", "Weapons", "Ground Devices"):
        cells = [s["bbox"] for s in truth["slots"] if s["slot"] == slot and not s.get("occluded")]
        assert cells and all(any(n == slot and _iou(b, t) >= 0.5 for n, b in named) for t in cells), slot


def test_a_trait_row_with_a_row_below_is_five_cells() -> None:
    """A trait row with another row of its section just below is a full row of five: its last
    position holds a slot even where the probe sees nothing (an empty frame on a dark panel). The
    section's last row is only grown where the probe sees a slot."""
    from warpd.layout import _complete_rows

    mask = np.zeros((400, 600), np.uint8)
    dark = np.zeros_like(mask)
    top, last = _seg(100, 100, 4), _seg(100, 160, 4)
    out = _complete_rows([("traits", [top, last], [None, None])], mask, dark)
    rows = out[0][1]
    assert [len(r.boxes) for r in rows] == [5, 4]
    assert rows[0].inferred == [False] * 4 + [True] and rows[0].boxes[4][0] == 100 + 4 * 44


def test_a_label_is_found_past_specks_of_glow() -> None:
    """A glowing row spills specks of light just left of its first cell; the row's label, further
    left, is still its label (the specks are passed over, not taken for the nearest text)."""
    from warpd.layout import _label_left

    mask = np.zeros((300, 900), np.uint8)
    row = _seg(600, 100, 3, w=40, h=50, pitch=42)
    mask[110:118, 470:520] = 1  # "Kit"
    mask[128:136, 460:530] = 1  # "Modules"
    mask[120:122, 590:592] = 1  # specks of glow beside the first cell
    mask[140:141, 560:561] = 1
    assert _label_left(mask, row, 600)


@pytest.mark.slow
def test_glowing_first_row_and_a_sliver_between_rows(catalog, ocr_engine) -> None:
    """A 1600x900 ground screen: the Kit Modules row's glowing frames make its cells a third taller
    and spill specks beside it, and a sliver of glow stands between Weapons and Ground Devices. The
    sliver is no row (it shifted every row's name: the panel came out as space equipment) and the
    Kit Modules row is adopted as the panel's first."""
    import random

    from warpd.screen_type import classify
    from warpd.synth.screens import random_options, render_screen

    img, truth = render_screen("GROUND_EQ", 2082, catalog, random_options(random.Random(2082)))
    rgb = np.asarray(img)
    layout = find_layout(rgb, ocr_engine)
    assert classify(rgb, layout)[0].value == "GROUND_EQ"
    named = [(r.slot, c.bbox) for p in layout.panels for r in p.rows for c in r.cells]
    cells = [s for s in truth["slots"] if not s.get("occluded")]
    ok = sum(any(n == s["slot"] and _iou(b, s["bbox"]) >= 0.5 for n, b in named) for s in cells)
    assert ok >= len(cells) - 1, (ok, len(cells))


@pytest.mark.slow
@pytest.mark.parametrize("screen_type,seed", [("SPECIALIZATIONS", 2061), ("SPECIALIZATIONS", 1021),
                                              ("TRAITS", 2035), ("BOFFS", 1028)])
def test_weak_evidence_does_not_decide_the_screen(screen_type, seed, catalog, ocr_engine) -> None:
    """A lone tree node fused with its connector (boff-shaped) set the screen's scale and the trees
    were dropped as off-scale (UNKNOWN); a lone locked trait cell under a trait grid, taken for a
    seat, made a TRAITS screen mixed; three boff seats stacked right-aligned made an 'equipment'
    panel. A lone seat without boff text is no panel, seats do not anchor the scale alone, and three
    rows make an equipment panel only at equipment row spacing."""
    import random

    from warpd.screen_type import classify
    from warpd.synth.screens import random_options, render_screen

    img, _truth = render_screen(screen_type, seed, catalog, random_options(random.Random(seed)))
    rgb = np.asarray(img)
    assert classify(rgb, find_layout(rgb, ocr_engine))[0].value == screen_type


def test_two_reputation_sections_are_reputation_and_active() -> None:
    """A cursor over "Active" leaves "Space Reputation" for both reputation sections: the lower one
    is the active section when no section carries that name; otherwise the names stand."""
    from warpd.layout import Cell, Panel, Row, _one_section_each

    def panel(name: str, y: int) -> Panel:
        return Panel("traits", "space", [Row(name, 0.9, [Cell((100 + 44 * i, y, 40, 40)) for i in range(5)])])

    upper, lower = panel("Space Reputation", 300), panel("Space Reputation", 400)
    _one_section_each([lower, upper])
    assert upper.rows[0].slot == "Space Reputation" and lower.rows[0].slot == "Active Space Rep"
    a, b, c = panel("Space Reputation", 300), panel("Space Reputation", 400), panel("Active Space Rep", 500)
    _one_section_each([a, b, c])
    assert [p.rows[0].slot for p in (a, b, c)] == ["Space Reputation", "Space Reputation", "Active Space Rep"]
