"""The synthetic screenshot renderer: determinism, ground truth and the geometry facts of sto-domain.md.

Benchmarks and recognition tests trust this truth blindly, so every claim it makes is checked
against the pixels' layout: boxes inside the image, slot counts equal to the ship's, items valid
for their slot, and the measured ratios the real game shows.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import time
from collections import defaultdict
from itertools import combinations

import cv2
import numpy as np
import pytest
from PIL import Image

from warpd.slots import (
    GROUND_EQUIPMENT,
    PRIMARY_SPECS,
    SCREEN_TYPES,
    SECONDARY_ONLY_SPECS,
    SLOT_GROUPS,
    SPACE_EQUIPMENT,
)
from warpd.synth import effects
from warpd.synth.screens import (
    MARKER_HSV,
    RESOLUTIONS,
    RenderOptions,
    items_used,
    random_options,
    render_screen,
    save_sample,
)

EQUIPMENT_SLOTS = {g.name for g in SPACE_EQUIPMENT + GROUND_EQUIPMENT}
SPACE_SLOTS = [g.name for g in SPACE_EQUIPMENT]
TRAIT_PANELS = {"Personal Space Traits", "Starship Traits", "Space Reputation", "Active Space Rep",
                "Personal Ground Traits", "Ground Reputation", "Active Ground Rep"}
SPEC_SLOTS = {"Primary Specialization", "Secondary Specialization"}
TIER_RE = re.compile(r"^T[1-6](-U|-X|-X2)?$")
CONFIGS = [  # (width, height, ui_scale): 16:9, small, 21:9 ultrawide large UI, 16:10, 4K small UI
    (1920, 1080, 1.0), (1280, 720, 0.8), (3440, 1440, 1.2), (2560, 1600, 0.9), (3840, 2160, 0.85),
]


def _render(catalog, screen_type: str, seed: int, **kw):
    return render_screen(screen_type, seed, catalog, RenderOptions(**kw))


def _boxes(truth: dict) -> list[tuple[str, list[int]]]:
    """Every box the truth states, with where it came from."""
    out = [("slot", s["bbox"]) for s in truth["slots"]]
    for lab in truth["labels"]:
        out.append(("label", lab["bbox"]))
        out.extend(("label line", line["bbox"]) for line in lab.get("lines", []))
    if truth["ship"]:
        out.extend((k, truth["ship"][k]) for k in ("name_bbox", "type_bbox", "tier_bbox"))
    out.extend(("row", r["bbox"]) for r in truth["rows"])
    out.extend(("seat marker", s["marker_bbox"]) for s in truth["seats"])
    out.extend(("node", n["bbox"]) for n in truth["nodes"])
    out.extend(("panel", p["bbox"]) for p in truth["panels"])
    out.extend(("occluder", o["bbox"]) for o in truth["occluders"])
    return out


def _overlap(a: list[int], b: list[int]) -> bool:
    return min(a[0] + a[2], b[0] + b[2]) > max(a[0], b[0]) and min(a[1] + a[3], b[1] + b[3]) > max(a[1], b[1])


def _cell_slots(truth: dict) -> list[dict]:
    return [s for s in truth["slots"] if s["slot"] not in SPEC_SLOTS]


def _rows(truth: dict) -> dict[tuple, list[dict]]:
    """Cells grouped the way the game groups them: a row of one panel (one seat for boffs)."""
    rows: dict[tuple, list[dict]] = defaultdict(list)
    for s in _cell_slots(truth):
        rows[(s["panel"], s["slot"], s.get("seat"))].append(s)
    return rows


# ----------------------------------------------------------------------------- determinism
def test_same_seed_same_pixels_and_truth(catalog):
    opts = RenderOptions(width=1600, height=900, cursor=True, image_format="jpeg", jpeg_quality=80, blur=0.5)
    a_img, a_truth = render_screen("SPACE_MIXED", 11, catalog, opts)
    b_img, b_truth = render_screen("SPACE_MIXED", 11, catalog, opts)
    assert np.array_equal(np.asarray(a_img), np.asarray(b_img))
    assert a_truth == b_truth


@pytest.mark.parametrize("screen_type", SCREEN_TYPES)
def test_different_seed_different_screen(catalog, screen_type):
    a_img, a_truth = _render(catalog, screen_type, 1, width=1280, height=720)
    b_img, b_truth = _render(catalog, screen_type, 2, width=1280, height=720)
    assert not np.array_equal(np.asarray(a_img), np.asarray(b_img))
    assert a_truth["seed"] == 1 and b_truth["seed"] == 2


# ----------------------------------------------------------------------------- truth consistency
@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"{c[0]}x{c[1]}@{c[2]}")
@pytest.mark.parametrize("screen_type", SCREEN_TYPES)
def test_truth_is_consistent(catalog, screen_type, config):
    w, h, ui = config
    for seed in (3, 4):
        img, truth = _render(catalog, screen_type, seed, width=w, height=h, ui_scale=ui)
        assert img.mode == "RGB" and img.size == (w, h)
        assert truth["screen_type"] == screen_type and (truth["width"], truth["height"]) == (w, h)
        assert json.loads(json.dumps(truth)) == truth  # JSON-serialisable as is
        for what, (x, y, bw, bh) in _boxes(truth):
            assert bw > 0 and bh > 0, (what, [x, y, bw, bh])
            assert x >= 0 and y >= 0 and x + bw <= w and y + bh <= h, (what, [x, y, bw, bh], (w, h))
        cells = _cell_slots(truth)
        for a, b in combinations(cells, 2):  # no two slots share pixels, on any panel
            assert not _overlap(a["bbox"], b["bbox"]), (a, b)
        for s in truth["slots"]:
            assert s["state"] in ("item", "empty", "locked")
            assert (s["item"] is not None) == (s["state"] == "item")
            assert s["occluded"] is False  # no overlays requested
        for key, row in _rows(truth).items():
            assert sorted(s["index"] for s in row) == list(range(len(row))), key
        if screen_type == "UNKNOWN":
            assert truth["slots"] == [] and truth["ship"] is None
        else:
            assert truth["slots"], "a build screen with no slots"


@pytest.mark.parametrize("screen_type", [t for t in SCREEN_TYPES if t != "UNKNOWN"])
def test_items_valid_for_their_slot(catalog, screen_type):
    for seed in range(4):
        _, truth = _render(catalog, screen_type, seed, width=1920, height=1080)
        for s in truth["slots"]:
            if s["state"] != "item":
                continue
            name = s["slot"]
            if name in SPEC_SLOTS:
                allowed = PRIMARY_SPECS if name == "Primary Specialization" else PRIMARY_SPECS + SECONDARY_ONLY_SPECS
                assert s["item"] in allowed
            elif name.startswith("Boff "):
                env = s["environment"]
                pool = set(catalog.items_for_slot(name, env))
                if s.get("spec"):
                    pool |= set(catalog.items_for_slot(f"Boff {s['spec']}", env))
                assert s["item"] in pool, s
            else:
                assert name in EQUIPMENT_SLOTS | TRAIT_PANELS, name
                assert s["item"] in catalog.items_for_slot(name), s
            if name in EQUIPMENT_SLOTS:
                assert s["rarity"] in ("Common", "Uncommon", "Rare", "Very Rare", "Ultra Rare", "Epic")
                if catalog.item_rarity(s["item"]):
                    assert s["rarity"] == catalog.item_rarity(s["item"])


@pytest.mark.parametrize("screen_type", ["SPACE_EQ", "SPACE_MIXED"])
def test_space_slot_counts_match_the_ship(catalog, screen_type):
    seen_tiers = set()
    for seed in range(12):
        _, truth = _render(catalog, screen_type, seed, width=1920, height=1080)
        ship = truth["ship"]
        assert ship is not None and TIER_RE.match(ship["tier"])
        record = catalog.ships[ship["type"]]
        assert ship["tier"] in record.valid_tiers
        seen_tiers.add(ship["tier"])
        expected = record.slot_counts(ship["tier"])
        got = defaultdict(int)
        for s in truth["slots"]:
            if s["state"] != "locked":
                got[s["slot"]] += 1
        for slot in SPACE_SLOTS:
            assert got.get(slot, 0) == expected[slot], (ship, slot)
        rows_shown = [r["slot"] for r in truth["rows"] if r["slot"] in SPACE_SLOTS]
        assert rows_shown == [s for s in SPACE_SLOTS if expected[s] > 0]  # game order, zero rows absent
        if screen_type == "SPACE_MIXED":
            assert got["Starship Traits"] == expected["Starship Traits"]
            seats = [se for se in truth["seats"] if se["environment"] == "space"]
            assert [(se["rank"], se["profession"]) for se in seats] == [
                (r, p if p in MARKER_HSV else "Universal") for r, p, _ in record.boffs]
    assert len(seen_tiers) > 1


def test_ship_text_boxes_and_wrapping(catalog):
    lines_seen = set()
    for seed in range(40):
        _, truth = _render(catalog, "SPACE_EQ", seed, width=1280, height=720, ui_scale=1.2)
        ship = truth["ship"]
        lines_seen.add(ship["type_lines"])
        name, typ, tier = ship["name_bbox"], ship["type_bbox"], ship["tier_bbox"]
        assert name[1] + name[3] <= typ[1] + 2, "the name sits above the type line"
        assert tier[1] >= typ[1] - 2, "the tier is on the type's (last) line or below"
        if ship["type_lines"] == 1:
            assert tier[0] >= typ[0] + typ[2], "one line: '<type> [<tier>]'"
    assert lines_seen >= {1, 2}, "long ship types must wrap sometimes, the tier on the second line"


def test_ground_rows(catalog):
    for seed in range(6):
        _, truth = _render(catalog, "GROUND_EQ", seed)
        assert truth["ship"] is None
        assert [r["slot"] for r in truth["rows"]] == [g.name for g in GROUND_EQUIPMENT]
        for r in truth["rows"]:
            assert r["count"] <= SLOT_GROUPS[r["slot"]].max_count


# ----------------------------------------------------------------------------- geometry facts
@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"{c[0]}x{c[1]}@{c[2]}")
@pytest.mark.parametrize("screen_type", ["SPACE_EQ", "GROUND_EQ", "SPACE_MIXED", "GROUND_MIXED"])
def test_equipment_geometry_facts(catalog, screen_type, config):
    w, h, ui = config
    for seed in (5, 6, 7):
        _, truth = _render(catalog, screen_type, seed, width=w, height=h, ui_scale=ui)
        by_panel: dict[int, list] = defaultdict(list)
        for (panel, slot, _), row in _rows(truth).items():
            if slot not in EQUIPMENT_SLOTS:
                continue
            row.sort(key=lambda s: s["index"])
            row_h = truth["row_height"]
            for s in row:
                bw, bh = s["bbox"][2], s["bbox"][3]
                assert 0.72 <= bw / row_h <= 0.78, (bw, row_h)
                assert abs(bh / row_h - 0.92) <= 0.025, (bh, row_h)
                assert s["bbox"][1] == row[0]["bbox"][1], "a row's cells share one baseline"
            xs = [s["bbox"][0] for s in row]
            assert xs == sorted(xs), "index counts left to right"
            by_panel[panel].append((row[0]["bbox"][1], row))
        for panel, rows in by_panel.items():
            rights = {r[-1]["bbox"][0] + r[-1]["bbox"][2] for _, r in rows}
            assert len(rights) == 1, f"rows of panel {panel} are not right-justified: {rights}"
            rows.sort(key=lambda t: t[0])
            row_pitches = {b[0] - a[0] for a, b in zip(rows, rows[1:])}
            assert len(row_pitches) == 1, "rows are evenly pitched"
            h_pitches = {r[k + 1]["bbox"][0] - r[k]["bbox"][0] for _, r in rows for k in range(len(r) - 1)}
            assert len(h_pitches) == 1
            ratio = h_pitches.pop() / row_pitches.pop()
            assert abs(ratio - 0.725) <= 0.03, ratio


def test_cell_size_at_1080p_ui_scale_1(catalog):
    sizes = []
    for seed in range(8):
        _, truth = _render(catalog, "SPACE_EQ", seed)
        if abs(truth["effective_ui_scale"] - 1.0) > 0.05:
            continue  # shrunk to fit (a ship with every row)
        sizes.extend((s["bbox"][2], s["bbox"][3]) for s in truth["slots"])
    assert sizes
    widths, heights = zip(*sizes)
    assert 43 <= min(widths) and max(widths) <= 51  # ~47x56 at 1080p
    assert 52 <= min(heights) and max(heights) <= 60


def test_trait_and_boff_icon_shapes(catalog):
    for seed in range(4):
        _, truth = _render(catalog, "SPACE_MIXED", seed, width=2560, height=1440)
        traits = [s for s in truth["slots"] if s["slot"] in TRAIT_PANELS]
        assert traits
        for s in traits:
            assert 0.55 <= s["bbox"][2] / s["bbox"][3] <= 0.95
        for (panel, slot, _), row in _rows(truth).items():
            if slot in TRAIT_PANELS:  # rows of 5 below the header
                for s in row:
                    first_in_row = next(t for t in row if t["index"] == s["index"] // 5 * 5)
                    assert s["bbox"][1] == first_in_row["bbox"][1]
        boffs = [s for s in truth["slots"] if s["slot"].startswith("Boff ")]
        assert boffs
        for s in boffs:
            assert abs(s["bbox"][3] / s["bbox"][2] - 1.33) <= 0.08
        for seat in truth["seats"]:
            cells = [s for s in boffs if s["seat"] == seat["seat"]]
            assert sum(s["state"] != "locked" for s in cells) == seat["rank"]  # Ensign 1 .. Commander 4
            marker, first = seat["marker_bbox"], min(cells, key=lambda s: s["index"])["bbox"]
            assert marker[0] + marker[2] <= first[0], "the marker sits left of the seat"


def test_boff_marker_colours_are_the_measured_ones(catalog):
    checked = 0
    for seed in range(6):
        img, truth = _render(catalog, "BOFFS", seed, width=1920, height=1080)
        hsv = cv2.cvtColor(np.asarray(img), cv2.COLOR_RGB2HSV)
        for seat in truth["seats"]:
            x, y, w, h = seat["marker_bbox"]
            hh, ss, vv = (int(v) for v in hsv[y + h // 2, x + max(0, w // 4)])
            eh, es, ev = MARKER_HSV[seat["profession"]]
            assert min(abs(hh - eh), 180 - abs(hh - eh)) <= 3 and abs(ss - es) <= 16 and abs(vv - ev) <= 16, (
                seat, (hh, ss, vv))
            checked += 1
    assert checked >= 10


def test_spec_screen_truth(catalog):
    _, truth = _render(catalog, "SPECIALIZATIONS", 2)
    specs = {s["slot"]: s["item"] for s in truth["slots"]}
    assert set(specs) == SPEC_SLOTS and specs["Primary Specialization"] in PRIMARY_SPECS
    assert specs["Primary Specialization"] != specs["Secondary Specialization"]
    assert {n["tree"] for n in truth["nodes"]} == SPEC_SLOTS
    assert any(n["purchased"] for n in truth["nodes"]) and not all(n["purchased"] for n in truth["nodes"])


def test_labels_two_lines_and_german(catalog):
    _, truth = _render(catalog, "SPACE_EQ", 8)
    fore = next(lab for lab in truth["labels"] if lab.get("slot") == "Fore Weapons")
    assert [line["text"] for line in fore["lines"]] == ["Fore", "Weapons"]
    assert fore["lines"][0]["bbox"][1] < fore["lines"][1]["bbox"][1]
    _, truth = _render(catalog, "SPACE_EQ", 8, language="de")
    texts = {lab["text"] for lab in truth["labels"]}
    assert "Bug Waffen" in texts and "Deflektor" in texts


# ----------------------------------------------------------------------------- capture and files
def test_occlusion_is_recorded(catalog):
    hits = 0
    for seed in range(6):
        _, truth = _render(catalog, "SPACE_EQ", seed, cursor=True, tooltip=seed % 2 == 0)
        kinds = {o["kind"] for o in truth["occluders"]}
        assert "cursor" in kinds and (("tooltip" in kinds) == (seed % 2 == 0))
        covers = [o["bbox"] for o in truth["occluders"]]
        for s in truth["slots"]:
            assert s["occluded"] == effects.is_occluded(s["bbox"], covers)
        hits += sum(s["occluded"] for s in truth["slots"])
    assert hits >= 6, "the pointer is put over a slot, as when a player hovers an item"


def test_overlay_changes_pixels_under_it(catalog):
    opts = RenderOptions(tooltip=True)
    img, truth = render_screen("SPACE_EQ", 3, catalog, opts)
    tip = next(o["bbox"] for o in truth["occluders"] if o["kind"] == "tooltip")
    region = np.asarray(img)[tip[1] + 2:tip[1] + tip[3] - 2, tip[0] + 2:tip[0] + tip[2] - 2]
    assert region.mean() < 60  # a dark tooltip box, not the panel's icons


@pytest.mark.parametrize("fmt", ["png", "jpeg"])
def test_save_sample_roundtrip(catalog, tmp_path, fmt):
    opts = RenderOptions(width=1280, height=720, image_format=fmt, jpeg_quality=70)
    img, truth = render_screen("TRAITS", 4, catalog, opts)
    image_path, json_path = save_sample(img, truth, tmp_path, "s1", opts)
    assert image_path.suffix == (".png" if fmt == "png" else ".jpg")
    with Image.open(image_path) as saved:
        assert saved.format == ("PNG" if fmt == "png" else "JPEG")
        assert np.array_equal(np.asarray(saved.convert("RGB")), np.asarray(img))  # exactly the truth's pixels
    data = json.loads(json_path.read_text(encoding="utf-8"))
    assert data["image"] == image_path.name and data["slots"] == truth["slots"]


def test_jpeg_and_effects_change_pixels(catalog):
    clean, _ = render_screen("SPACE_EQ", 9, catalog, RenderOptions())
    arr = np.asarray(clean)
    washed = np.asarray(effects.apply_tone(clean, 1.0, 1.0, True, random.Random(0)))
    assert washed.min() > arr.min() + 15, "HDR capture lifts the blacks"
    assert washed.std() < arr.std()
    assert np.asarray(effects.apply_blur(clean, 1.0)).astype(int).std() <= arr.astype(int).std()
    jpg, data = effects.jpeg_roundtrip(clean, 60)
    assert data[:2] == b"\xff\xd8" and not np.array_equal(np.asarray(jpg), arr)
    assert np.abs(np.asarray(jpg).astype(int) - arr).mean() < 6
    darker = np.asarray(effects.apply_tone(clean, 0.8, 1.0, False, random.Random(0)))
    assert darker.mean() < arr.mean()


def test_random_options_mix():
    rng = random.Random(5)
    drawn = [random_options(rng) for _ in range(400)]
    sizes = {(o.width, o.height) for o in drawn}
    assert {(1920, 1080), (2560, 1440)} <= sizes
    assert sizes & {(1920, 1200), (2560, 1600)}, "16:10"
    assert sizes & {(2560, 1080), (3440, 1440)}, "21:9"
    assert sizes <= {(w, h) for w, h, _ in RESOLUTIONS}
    assert all(0.8 <= o.ui_scale <= 1.2 and 60 <= o.jpeg_quality <= 95 for o in drawn)
    assert {o.image_format for o in drawn} == {"png", "jpeg"}
    assert any(o.hdr_washout for o in drawn) and any(o.blur for o in drawn) and any(o.cursor for o in drawn)
    neutral = sum(o.brightness == 1.0 and o.gamma == 1.0 and not o.hdr_washout and o.blur == 0.0 for o in drawn)
    assert neutral > len(drawn) // 2, "most captures have neutral tone and sharpness"
    assert random_options(7) == random_options(7)


def test_render_options_validation():
    with pytest.raises(ValueError):
        RenderOptions(ui_scale=2.0)
    with pytest.raises(ValueError):
        RenderOptions(image_format="bmp")
    with pytest.raises(ValueError):
        render_screen("NOT_A_SCREEN", 0, None)
    opts = RenderOptions(width=2560, height=1080, cursor=True)
    assert RenderOptions.from_dict(opts.to_dict()) == opts


def test_unknown_screens_have_no_slots(catalog):
    scenes = set()
    for seed in range(10):
        _, truth = _render(catalog, "UNKNOWN", seed, width=1280, height=720, cursor=True)
        assert truth["slots"] == [] and truth["ship"] is None and truth["rows"] == []
        scenes.add(truth["scene"])
    assert len(scenes) >= 3
    assert "lorem" in scenes


# ----------------------------------------------------------------------------- CLI
def _cli(argv: list[str]) -> argparse.Namespace:
    from warpd.synth import cli

    parser = argparse.ArgumentParser(prog="warpd")
    sub = parser.add_subparsers(dest="command")
    cli.register(sub)
    return parser.parse_args(argv)


def test_cli_writes_samples_and_icons(tmp_path, capsys):
    from warpd.synth import cli

    out, icons_dir = tmp_path / "out", tmp_path / "icons"
    args = _cli(["synth", "--out", str(out), "--count", "3", "--types", "SPACE_EQ,unknown",
                 "--seed", "5", "--icons-out", str(icons_dir), "--json"])
    assert args.func is cli.run
    assert cli.run(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["per_type"] == {"SPACE_EQ": 2, "UNKNOWN": 1}
    jsons = sorted(out.glob("*.json"))
    assert [p.stem for p in jsons] == ["space_eq_000005", "space_eq_000007", "unknown_000006"]
    for p in jsons:
        truth = json.loads(p.read_text(encoding="utf-8"))
        assert (out / truth["image"]).is_file()
    used = set()
    for p in jsons:
        used |= {name for name, _ in items_used(json.loads(p.read_text(encoding="utf-8")))}
    assert used and summary["icons_written"] == len(used) == len(list(icons_dir.glob("*.png")))


def test_cli_rejects_bad_types(tmp_path, capsys):
    from warpd.synth import cli

    assert cli.run(_cli(["synth", "--out", str(tmp_path), "--types", "SPACE_EQ,BOGUS"])) == 2
    assert "BOGUS" in capsys.readouterr().err


def test_cli_help_mentions_options(capsys):
    with pytest.raises(SystemExit):
        _cli(["synth", "--help"])
    text = capsys.readouterr().out
    for flag in ("--out", "--count", "--types", "--seed", "--icons-out", "--json"):
        assert flag in text


# ----------------------------------------------------------------------------- speed (reported, not asserted)
def test_speed_smoke(catalog):
    opts = RenderOptions()
    start = time.perf_counter()
    n = 50
    for i in range(n):
        render_screen(SCREEN_TYPES[i % len(SCREEN_TYPES)], 1000 + i, catalog, opts)
    rate = n / (time.perf_counter() - start)
    print(f"\nsynth: {rate:.1f} screens/s at 1920x1080 (all screen types in turn)")
    assert rate > 0


def test_renders_without_dejavu_fonts(catalog, monkeypatch, tmp_path):
    """CI without fonts-dejavu-core falls back to Pillow's scalable default font."""
    from warpd.synth import screens

    monkeypatch.setattr(screens, "FONT_DIR", tmp_path)
    screens.font.cache_clear()
    try:
        _, truth = render_screen("SPACE_EQ", 1, catalog, RenderOptions(width=1280, height=720))
        assert any(lab.get("slot") == "Deflector" for lab in truth["labels"])
    finally:
        screens.font.cache_clear()


def test_too_small_for_any_panel_is_an_error(catalog):
    with pytest.raises(ValueError, match="does not fit"):
        render_screen("SPACE_EQ", 0, catalog, RenderOptions(width=400, height=300))
