"""Tests for the synthetic icon library (warpd.synth.icons).

The library stands in for the game's art in every recognition test and benchmark, so these tests
pin what matters: the same name always gives the same pixels (in any process), icons of one family
look alike yet every catalogue item stays distinguishable, the rarity frames are the game's, and the
files follow SETS's image-cache naming.
"""

from __future__ import annotations

import colorsys
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import imagehash
import numpy as np
import pytest
from PIL import Image

from warpd.synth import icons
from warpd.synth.icons import (
    ICON_H,
    ICON_W,
    apply_rarity,
    icon_file_name,
    name_from_icon_file,
    render_icon,
    write_icon_library,
)

REPO = Path(__file__).resolve().parent.parent
CATALOG_CANDIDATES = (
    REPO / "warpd" / "data" / "catalog" / "equipment.json",
    Path("/work/shared/data/sto/equipment.json"),
)

FAMILIES = {
    "phaser beam array": ["Phaser Beam Array", "Advanced Phaser Beam Array", "Fleet Phaser Beam Array",
                          "Elite Fleet Phaser Beam Array", "Crafted Phaser Beam Array"],
    "disruptor dhc": ["Disruptor Dual Heavy Cannons", "Advanced Disruptor Dual Heavy Cannons",
                      "Fleet Disruptor Dual Heavy Cannons", "Prototype Disruptor Dual Heavy Cannons"],
    "polaron torpedo": ["Polaron Torpedo Launcher", "Advanced Polaron Torpedo Launcher",
                        "Elite Polaron Torpedo Launcher", "Crafted Polaron Torpedo Launcher"],
    "deflector": ["Fleet Deflector Array", "Prototype Deflector Array", "Crafted Deflector Array",
                  "Elite Fleet Deflector Array"],
}


def _catalog_keys() -> list[str]:
    """Item keys from the vendored catalogue (or the shared copy while it is being vendored)."""
    for path in CATALOG_CANDIDATES:
        if path.is_file():
            records = json.loads(path.read_text(encoding="utf-8"))
            return sorted({r["key"] for r in records if r.get("key") and r["key"].strip()})
    pytest.skip("no equipment catalogue available")


def _sample(keys: list[str], n: int) -> list[str]:
    """A fixed, well-mixed sample: the n keys with the smallest sha256."""
    return sorted(keys, key=lambda k: hashlib.sha256(k.encode("utf-8")).hexdigest())[:n]


def _rgb(im: Image.Image) -> np.ndarray:
    return np.asarray(im.convert("RGB"), np.float32)


def _mad(a: str, b: str, kind: str = "equipment") -> float:
    """Mean absolute RGB difference of two names' icons (0..255)."""
    return float(np.abs(_rgb(render_icon(a, kind)) - _rgb(render_icon(b, kind))).mean())


def _dominant_hue(im: Image.Image) -> float:
    """Circular mean hue (degrees) of the icon's saturated, bright pixels: its 'main colour'."""
    rgb = _rgb(im) / 255.0
    hsv = np.array([colorsys.rgb_to_hsv(*px) for px in rgb.reshape(-1, 3)])
    sel = (hsv[:, 1] > 0.45) & (hsv[:, 2] > 0.45)
    assert sel.sum() > 30, "icon has almost no coloured pixels"
    ang = hsv[sel, 0] * 2 * np.pi
    return float(np.degrees(np.arctan2(np.sin(ang).mean(), np.cos(ang).mean())) % 360)


def _hue_gap(a: float, b: float) -> float:
    d = abs(a - b) % 360
    return min(d, 360 - d)


# ------------------------------------------------------------------------------------------------
# render_icon
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", sorted(icons.KINDS))
def test_icon_is_49x64_opaque_rgba(kind: str) -> None:
    im = render_icon("Advanced Fleet Phaser Beam Array", kind)
    assert im.mode == "RGBA"
    assert im.size == (ICON_W, ICON_H) == (49, 64)
    assert np.asarray(im)[..., 3].min() == 255


def test_same_name_gives_identical_bytes() -> None:
    names = ["Phaser Beam Array", "Console - Universal - Sarr Theln's Shield Array", "Émigré", ""]
    for name in names:
        for kind in sorted(icons.KINDS):
            assert render_icon(name, kind).tobytes() == render_icon(name, kind).tobytes()


def test_icons_are_identical_in_another_process_with_another_hash_seed() -> None:
    """The seed must come from sha256, not the salted built-in hash(): a fresh interpreter with a
    different PYTHONHASHSEED has to paint the very same pixels."""
    names = ["Phaser Beam Array", "Attack Pattern Beta", "Tribble (hen)"]
    code = (
        "import hashlib, sys; from warpd.synth.icons import render_icon\n"
        f"for n, k in [{', '.join(repr((n, k)) for n, k in zip(names, ['equipment', 'boff', 'equipment']))}]:\n"
        "    print(hashlib.sha256(render_icon(n, k).tobytes()).hexdigest())\n"
    )
    here = [hashlib.sha256(render_icon(n, k).tobytes()).hexdigest()
            for n, k in zip(names, ["equipment", "boff", "equipment"])]
    for hash_seed in ("1", "12345"):
        env = dict(os.environ, PYTHONHASHSEED=hash_seed, PYTHONPATH=str(REPO))
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                             cwd=REPO, check=True, timeout=120)
        assert out.stdout.split() == here


def test_different_names_differ() -> None:
    names = ["Phaser Beam Array", "Phaser Beam Array ", "phaser beam array", "Phaser Beam Arrays",
             "Advanced Phaser Beam Array", "2,000 CXP Bonus Pool", "20,000 CXP Bonus Pool"]
    blobs = {render_icon(n).tobytes() for n in names}
    assert len(blobs) == len(names)
    assert _mad("2,000 CXP Bonus Pool", "20,000 CXP Bonus Pool") > 3.0


def test_kind_changes_style_and_unknown_kind_is_rejected() -> None:
    blobs = {render_icon("Accurate", k).tobytes() for k in icons.KINDS}
    assert len(blobs) == len(icons.KINDS)
    with pytest.raises(ValueError):
        render_icon("Accurate", "ship")


def test_family_members_are_closer_than_other_families_but_never_equal() -> None:
    """Realistically hard: look-alikes share most pixels, yet still differ in details."""
    fams = list(FAMILIES.values())
    within = [_mad(a, b) for f in fams for i, a in enumerate(f) for b in f[i + 1:]]
    between = [_mad(a, b) for i, f in enumerate(fams) for g in fams[i + 1:] for a in f for b in g]
    assert min(within) > 2.0, "family members must stay distinguishable"
    assert np.mean(within) < 0.5 * np.mean(between)
    assert max(within) < min(between)

    def ph(name: str) -> imagehash.ImageHash:
        return imagehash.phash(render_icon(name).convert("RGB"))

    ph_within = [ph(a) - ph(b) for f in fams for i, a in enumerate(f) for b in f[i + 1:]]
    ph_between = [ph(a) - ph(b) for i, f in enumerate(fams) for g in fams[i + 1:] for a in f for b in g]
    assert np.mean(ph_within) < 0.6 * np.mean(ph_between)


def test_energy_word_decides_colour_and_form_words_decide_shape() -> None:
    beam = render_icon("Phaser Beam Array")
    dbb = render_icon("Phaser Dual Beam Bank")
    disruptor = render_icon("Disruptor Beam Array")
    polaron = render_icon("Polaron Beam Array")
    assert _hue_gap(_dominant_hue(beam), _dominant_hue(dbb)) < 15
    assert _hue_gap(_dominant_hue(beam), _dominant_hue(disruptor)) > 40
    assert _hue_gap(_dominant_hue(beam), _dominant_hue(polaron)) > 40
    # same colour, other shape: further apart than a prefix variant of the same shape
    assert _mad("Phaser Beam Array", "Phaser Dual Beam Bank") > 1.5 * _mad("Phaser Beam Array",
                                                                            "Advanced Phaser Beam Array")
    # cannons differ from beams in shape even in one colour
    assert _mad("Phaser Dual Cannons", "Phaser Dual Beam Bank") > 1.5 * _mad("Phaser Dual Cannons",
                                                                              "Fleet Phaser Dual Cannons")


def test_prefix_badge_is_local_and_shared_across_energies() -> None:
    """'Advanced' adds the same badge in the same place whatever the energy: a set looks like a set."""
    diffs = []
    for energy in ("Phaser", "Disruptor", "Polaron"):
        base = _rgb(render_icon(f"{energy} Beam Array"))
        adv = _rgb(render_icon(f"Advanced {energy} Beam Array"))
        diffs.append(np.abs(adv - base).mean(axis=2) > 40)
    # the strongly changed pixels are few (a badge, not a new icon) ...
    for d in diffs:
        assert 0.01 < d.mean() < 0.25
    # ... and they sit in the same place for every energy
    overlap = diffs[0] & diffs[1] & diffs[2]
    assert overlap.sum() > 0.3 * min(d.sum() for d in diffs)


def test_every_pair_of_300_catalogue_items_is_distinguishable() -> None:
    keys = _sample(_catalog_keys(), 300)
    flat = np.stack([_rgb(render_icon(k)).ravel() for k in keys])
    worst, pair = np.inf, ("", "")
    for i in range(len(keys) - 1):
        d = np.abs(flat[i + 1:] - flat[i]).mean(axis=1)
        j = int(d.argmin())
        if d[j] < worst:
            worst, pair = float(d[j]), (keys[i], keys[i + 1 + j])
    assert worst > 3.0, f"{pair} are nearly identical (mean abs diff {worst:.2f})"


# ------------------------------------------------------------------------------------------------
# rarity overlays
# ------------------------------------------------------------------------------------------------
def _left_border(im: Image.Image) -> np.ndarray:
    """Mean RGB of the frame's left edge (columns 0-1, rows 10-50), where every frame is opaque."""
    return _rgb(im)[10:50, 0:2].reshape(-1, 3).mean(axis=0)


def test_overlays_are_vendored_with_attribution() -> None:
    assert (icons.OVERLAY_DIR / "SOURCE.md").is_file()
    for fname in icons.RARITY_FILES.values():
        im = Image.open(icons.OVERLAY_DIR / fname)
        assert im.size == (49, 64) and im.mode == "RGBA"


def test_rarity_frames_colour_the_border() -> None:
    icon = render_icon("Phaser Beam Array")
    r, g, b = _left_border(apply_rarity(icon, "Uncommon"))
    assert g > r + 30 and g > b + 30, "Uncommon should be green"
    r, g, b = _left_border(apply_rarity(icon, "Rare"))
    assert b > r + 60 and b > g + 30, "Rare should be blue"
    r, g, b = _left_border(apply_rarity(icon, "Very Rare"))
    assert b > g + 60 and r > g, "Very Rare should be purple"
    r, g, b = _left_border(apply_rarity(icon, "Epic"))
    assert r > 200 and g > 120 and b < 80, "Epic should be gold"
    assert apply_rarity(icon, "Ultra Rare").tobytes() != apply_rarity(icon, "Very Rare").tobytes()


def test_common_leaves_icon_almost_unchanged_and_frames_keep_it_opaque() -> None:
    icon = render_icon("Quantum Torpedo Launcher")
    assert np.abs(_rgb(apply_rarity(icon, "Common")) - _rgb(icon)).mean() < 1.0
    for rarity in ("Common", "Uncommon", "Rare", "Very Rare", "Ultra Rare", "Epic"):
        out = apply_rarity(icon, rarity)
        assert out.size == icon.size and out.mode == "RGBA"
        assert np.asarray(out)[..., 3].min() == 255
        if rarity != "Common":
            assert np.abs(_rgb(out) - _rgb(icon)).mean() > 5.0
    assert render_icon("Quantum Torpedo Launcher").tobytes() == icon.tobytes(), "input was modified"


def test_rarity_names_are_case_and_space_insensitive_and_unknown_is_an_error() -> None:
    icon = render_icon("Phaser Beam Array")
    ref = apply_rarity(icon, "Very Rare").tobytes()
    for spelling in ("very rare", "VERY RARE", "Very_Rare", "veryrare", "  Very  Rare "):
        assert apply_rarity(icon, spelling).tobytes() == ref
    for bad in ("Legendary", "", "rare-ish"):
        with pytest.raises(ValueError):
            apply_rarity(icon, bad)


def test_rarity_overlay_is_scaled_to_the_icon() -> None:
    big = render_icon("Phaser Beam Array").resize((98, 128), Image.Resampling.BICUBIC)
    out = apply_rarity(big, "Rare")
    assert out.size == (98, 128)
    r, g, b = _rgb(out)[20:100, 0:3].reshape(-1, 3).mean(axis=0)
    assert b > r + 40


# ------------------------------------------------------------------------------------------------
# file names and the library writer
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, fname", [
    ("Phaser Beam Array", "Phaser+Beam+Array.png"),
    ("Bio-Neural Gel Pack (R&D)", "Bio-Neural+Gel+Pack+%28R%26D%29.png"),
    ("Émigré", "%C3%89migr%C3%A9.png"),
    ("Console - Universal - Sarr Theln's Shield Array", "Console+-+Universal+-+Sarr+Theln%27s+Shield+Array.png"),
])
def test_icon_file_names_follow_sets(name: str, fname: str) -> None:
    assert icon_file_name(name) == fname
    assert name_from_icon_file(fname) == name
    assert name_from_icon_file(Path("/some/cache/images") / fname) == name


def test_file_name_round_trip_over_the_catalogue() -> None:
    odd = ["a/b", "../x", "50% off", "x+y", 'say "hi"', "[T6]", "Tab\tName"]
    for name in _catalog_keys() + odd:
        fname = icon_file_name(name)
        assert "/" not in fname and fname.endswith(".png")
        assert name_from_icon_file(fname) == name
    with pytest.raises(ValueError):
        name_from_icon_file("Phaser+Beam+Array.jpg")


def test_write_icon_library_writes_bare_icons_in_sets_layout(tmp_path: Path) -> None:
    names = ["Phaser Beam Array", "Advanced Phaser Beam Array", "Bio-Neural Gel Pack (R&D)", "Émigré",
             "../escape", "a/b", "", "   ", "Phaser Beam Array", "Accurate"]
    out = tmp_path / "images"
    kinds = {"Accurate": "trait"}
    count = write_icon_library(iter(names), out, kind_of=lambda n: kinds.get(n, "equipment"))
    expected = {icon_file_name(n) for n in names if n.strip()}
    assert count == len(expected) == 7
    written = {p.name for p in out.iterdir()}
    assert written == expected
    assert not (tmp_path / "escape.png").exists() and not list(tmp_path.glob("*.png"))
    for fname in written:
        name = name_from_icon_file(fname)
        on_disk = Image.open(out / fname)
        on_disk.load()
        assert on_disk.size == (49, 64)
        # bare icon, exactly what render_icon paints: no rarity frame
        assert on_disk.convert("RGBA").tobytes() == render_icon(name, kinds.get(name, "equipment")).tobytes()


def test_library_of_3000_icons(tmp_path: Path) -> None:
    """Speed smoke: a 3,000-icon library (the size of SETS's equipment cache) is quick to paint."""
    names = _sample(_catalog_keys(), 3000)
    start = time.perf_counter()
    images = [render_icon(n) for n in names]
    elapsed = time.perf_counter() - start
    print(f"\nrendered {len(images)} icons in {elapsed:.2f} s = {len(images) / elapsed:.0f} icons/s")
    assert len(images) == len(names) == 3000
    assert all(im.size == (49, 64) and im.mode == "RGBA" for im in images)
    assert len({hashlib.sha256(im.tobytes()).digest() for im in images}) == 3000
