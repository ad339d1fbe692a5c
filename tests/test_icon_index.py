"""Icon identification core: shared preprocessing, library index, pHash knowledge, session examples,
calibration. Crops are rendered icons framed with a random rarity and degraded the way screenshots
degrade them (scale, offset, blur, gamma, JPEG), so every accuracy assertion here can fail."""

from __future__ import annotations

import io
import json
import os
import random
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

from warpd.icon_index import (
    Calibrator, IconIndex, PhashKnowledge, SessionExamples, crop_phash, expected_calibration_error,
    hamming, match_features)
from warpd.preprocess import (
    CANONICAL_SIZE, IMAGENET_MEAN, IMAGENET_STD, TENSOR_SIZE, canonical_crop, crop_to_icon, icon_tensor)
from warpd.synth.icons import apply_rarity, icon_file_name, render_icon, write_icon_library

REPO = Path(__file__).resolve().parent.parent
RARITIES = ("Common", "Uncommon", "Rare", "Very Rare", "Ultra Rare", "Epic")
LIBRARY_SIZE = 600
FAMILY = ("Phaser Beam Array", "Advanced Phaser Beam Array", "Fleet Phaser Beam Array",
          "Elite Fleet Phaser Beam Array", "Phaser Dual Beam Bank", "Disruptor Beam Array")


def _equipment() -> dict[str, str]:
    rows = json.loads((REPO / "warpd/data/catalog/equipment.json").read_text(encoding="utf-8"))
    return {r["key"]: r.get("type", "") for r in rows if r.get("key")}


def degrade(name: str, rng: random.Random, rarity: str | None = None, offset: int = 2) -> np.ndarray:
    """The icon as a screenshot shows it: framed, 35..110 px tall, offset, blurred, gamma, JPEG."""
    icon = apply_rarity(render_icon(name), rarity or rng.choice(RARITIES)).convert("RGB")
    h = rng.randint(35, 110)
    w = int(round(h * rng.uniform(0.75, 0.84)))
    icon = icon.resize((w, h), rng.choice([Image.Resampling.BILINEAR, Image.Resampling.LANCZOS]))
    m = 4
    canvas = Image.new("RGB", (w + 2 * m, h + 2 * m), (rng.randint(5, 40),) * 3)
    canvas.paste(icon, (m, m))
    dx, dy = rng.randint(-offset, offset), rng.randint(-offset, offset)
    crop = canvas.crop((m + dx, m + dy, m + dx + w, m + dy + h))
    if rng.random() < 0.5:
        crop = crop.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 0.9)))
    a = (np.asarray(crop, np.float32) / 255.0) ** rng.uniform(0.8, 1.25)
    buf = io.BytesIO()
    Image.fromarray((np.clip(a, 0, 1) * 255).astype(np.uint8)).save(buf, "JPEG", quality=rng.randint(60, 95))
    return np.asarray(Image.open(buf).convert("RGB"))


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str], dict[str, str]]:
    items = _equipment()
    keys = sorted(items)
    random.Random(7).shuffle(keys)
    names = sorted(set(keys[:LIBRARY_SIZE - len(FAMILY)]) | set(FAMILY))
    types = {n: items.get(n, "Ship Weapon") for n in names}
    folder = tmp_path_factory.mktemp("icons")
    assert write_icon_library(names, folder) == len(names)
    return folder, names, types


@pytest.fixture(scope="module")
def index(library) -> IconIndex:
    return IconIndex.build(library[0])


@pytest.fixture(scope="module")
def crops(library) -> tuple[list[str], list[np.ndarray]]:
    _, names, _ = library
    rng = random.Random(1)
    truth = [rng.choice(names) for _ in range(500)]
    return truth, [degrade(t, rng) for t in truth]


# -- preprocessing -------------------------------------------------------------------------------
def test_crop_to_icon_clamps_and_copies():
    img = np.arange(20 * 30 * 3, dtype=np.uint8).reshape(20, 30, 3)
    c = crop_to_icon(img, (25, 15, 10, 10))
    assert c.shape == (5, 5, 3)
    np.testing.assert_array_equal(c, img[15:20, 25:30])
    c[:] = 0
    assert img[15:20, 25:30].any()  # a copy, not a view
    assert crop_to_icon(img[:, :, 0], (-3, -3, 5, 5)).shape == (2, 2, 3)  # grey accepted, clamped
    with pytest.raises(ValueError):
        crop_to_icon(img, (40, 0, 5, 5))


def test_icon_tensor_normalisation():
    crop = np.zeros((100, 80, 3), np.uint8)
    crop[:, :, 0] = 255
    t = icon_tensor(crop)
    assert t.shape == (3, *TENSOR_SIZE) and t.dtype == np.float32
    np.testing.assert_allclose(t[0], (1.0 - IMAGENET_MEAN[0]) / IMAGENET_STD[0], rtol=1e-5)
    np.testing.assert_allclose(t[2], (0.0 - IMAGENET_MEAN[2]) / IMAGENET_STD[2], rtol=1e-5)
    assert icon_tensor(crop, size=(32, 24)).shape == (3, 32, 24)
    rgba = np.dstack([crop, np.full((100, 80), 7, np.uint8)])
    np.testing.assert_array_equal(icon_tensor(rgba), t)  # alpha is dropped, not read as a channel


def test_canonical_crop_is_64_square_rgb():
    c = canonical_crop(np.asarray(render_icon("Phaser Beam Array").convert("RGB")))
    assert c.shape == (CANONICAL_SIZE, CANONICAL_SIZE, 3) and c.dtype == np.uint8


# -- library matching ----------------------------------------------------------------------------
def test_top1_over_whole_library(index, crops):
    truth, images = crops
    res = index.match_many(images)
    acc = np.mean([r[0][0] == t for r, t in zip(res, truth)])
    assert acc >= 0.98, f"top-1 {acc:.3f} over {len(index)} icons"


def test_slot_candidates_raise_accuracy_and_restrict(index, crops, library):
    truth, images = crops
    _, names, types = library
    by_type: dict[str, list[str]] = {}
    for n in names:
        by_type.setdefault(types[n], []).append(n)
    cands = [by_type[types[t]] for t in truth]
    res = index.match_many(images, cands)
    acc = np.mean([r[0][0] == t for r, t in zip(res, truth)])
    full = np.mean([r[0][0] == t for r, t in zip(index.match_many(images), truth)])
    assert acc >= max(full, 0.99)
    assert all(name in set(c) for r, c in zip(res, cands) for name, _ in r)
    assert index.match(images[0], ["not an item"]) == []


def test_match_equals_match_many(index, crops):
    _, images = crops
    many = index.match_many(images[:12], k=3)
    for img, m in zip(images[:12], many):
        single = index.match(img, k=3)
        assert [n for n, _ in single] == [n for n, _ in m]
        np.testing.assert_allclose([s for _, s in single], [s for _, s in m], rtol=1e-5, atol=1e-6)


def test_family_members_are_told_apart(index):
    rng = random.Random(3)
    wrong = []
    for name in FAMILY:
        for rarity in RARITIES:
            top = index.match(degrade(name, rng, rarity), k=3)
            if top[0][0] != name:
                wrong.append((name, rarity, top[0][0]))
    assert len(wrong) <= 1, wrong  # 36 crops of six look-alikes


def test_scores_rank_true_icon_above_others(index):
    crop = np.asarray(apply_rarity(render_icon("Phaser Beam Array"), "Epic").convert("RGB"))
    (n1, s1), (_, s2) = index.match(crop, k=2)
    assert n1 == "Phaser Beam Array" and s1 > s2 and s1 > 0.9


def test_build_from_mapping_and_names_filter(library):
    folder, names, _ = library
    subset = names[:40]
    idx = IconIndex.build(folder, names=subset)
    assert sorted(idx.names) == sorted(subset)
    mapping = {n: np.asarray(render_icon(n).convert("RGB")) for n in subset[:10]}
    midx = IconIndex.build(mapping)
    crop = degrade(subset[3], random.Random(0))
    assert midx.match(crop)[0][0] == subset[3]
    np.testing.assert_allclose(midx.coarse, IconIndex.build(folder, names=subset[:10]).coarse, atol=2e-2)


def test_disk_cache_reused_and_invalidated(library, tmp_path):
    folder, names, _ = library
    lib = tmp_path / "lib"
    lib.mkdir()
    for n in names[:150]:
        (lib / icon_file_name(n)).write_bytes((folder / icon_file_name(n)).read_bytes())
    cache = tmp_path / "cache"
    first = IconIndex.build(lib, cache_dir=cache)
    second = IconIndex.build(lib, cache_dir=cache)
    assert not first.stats.from_cache and second.stats.from_cache
    assert second.stats.seconds < first.stats.seconds
    assert second.names == first.names
    np.testing.assert_array_equal(second.coarse, first.coarse)
    np.testing.assert_array_equal(second.fine, first.fine)
    # change one icon: the key changes, the index is rebuilt and the stale cache file removed
    target = lib / icon_file_name(names[0])
    render_icon(names[1]).save(target)
    os.utime(target, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
    third = IconIndex.build(lib, cache_dir=cache)
    assert not third.stats.from_cache
    row = third.names.index(names[0])
    assert not np.array_equal(third.coarse[row], first.coarse[row])
    assert len(list(cache.glob("*.npz"))) == 1


def test_broken_icon_file_is_skipped(tmp_path):
    write_icon_library(["Phaser Beam Array", "Plasma Beam Array"], tmp_path)
    (tmp_path / icon_file_name("Broken Item")).write_bytes(b"not a png")
    idx = IconIndex.build(tmp_path)
    assert idx.stats.skipped == 1 and sorted(idx.names) == ["Phaser Beam Array", "Plasma Beam Array"]


# -- pHash knowledge -----------------------------------------------------------------------------
def _framed(name: str, shift: int = 0, size: tuple[int, int] = (47, 56)) -> np.ndarray:
    icon = apply_rarity(render_icon(name), "Very Rare").convert("RGB").resize(size, Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", (size[0] + 6, size[1] + 6), (20, 20, 24))
    canvas.paste(icon, (3, 3))
    return np.asarray(canvas.crop((3 + shift, 3, 3 + shift + size[0], 3 + size[1])))


def test_phash_lookup_tolerates_one_pixel_and_refuses_beyond_bound():
    base = _framed("Phaser Beam Array")
    know = PhashKnowledge.from_mapping({f"{crop_phash(base):016x}": "Phaser Beam Array",
                                        f"{crop_phash(_framed('Tetryon Cannon')):016x}": "Tetryon Cannon"})
    shifted = _framed("Phaser Beam Array", shift=1)
    d = hamming(know.hashes[:1], crop_phash(shifted))[0]
    assert d > 0  # the predecessor's exact lookup would have missed this crop
    assert know.lookup(shifted, max_distance=8) == ("Phaser Beam Array", d)
    assert know.lookup(shifted, max_distance=d - 1) is None
    assert know.lookup(_framed("Quantum Torpedo Launcher"), max_distance=8) is None


def test_phash_tie_between_names_gives_no_answer():
    know = PhashKnowledge.from_mapping({"00000000000000ff": "A", "00000000000000fc": "A",
                                        "000000000000ff00": "B", "0000000000000f0f": "C"})
    assert know.lookup_hash(0x00000000000000FF, 8) == ("A", 0)
    assert know.lookup_hash(0x0000000000000000, 8) == ("A", 6)  # nearest wins (B and C are at 8)
    assert know.lookup_hash(0x0000000000000000, 5) is None  # beyond the bound
    know2 = PhashKnowledge.from_mapping({"0000000000000003": "A", "000000000000000c": "B"})
    assert know2.lookup_hash(0, 8) is None  # A and B both at distance 2


def test_phash_knowledge_rejects_malformed_entries(tmp_path):
    data = {"knowledge": {"00ff00ff00ff00ff": "Phaser Beam Array", "xyz": "Bad Key", "00ff": "Short",
                          "ffffffffffffffff": "", "0123456789abcdef": 42, "fedcba9876543210": "x" * 201,
                          "0F0F0F0F0F0F0F0F": "Upper Hex Ok"}, "updated_at": 1}
    p = tmp_path / "knowledge.json"
    p.write_text(json.dumps(data))
    know = PhashKnowledge.load(p)
    assert len(know) == 2 and know.skipped == 5
    assert know.lookup_hash(0x0F0F0F0F0F0F0F0F, 0) == ("Upper Hex Ok", 0)
    p.write_text("{broken")
    assert len(PhashKnowledge.load(p)) == 0


# -- session examples ----------------------------------------------------------------------------
def test_session_examples_match_and_threaded_adds():
    ex = SessionExamples()
    rng = random.Random(5)
    names = ["Phaser Beam Array", "Advanced Phaser Beam Array", "Plasma Dual Heavy Cannons", "Deflector Array"]
    threads = [threading.Thread(target=ex.add, args=(n, "Fore Weapons", degrade(n, rng, "Rare", 0)))
               for n in names for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ex) == 12
    hits = sum(ex.match(degrade(n, rng, "Rare"))[0] == n for n in names for _ in range(3))
    assert hits >= 11
    assert ex.match(degrade(names[0], rng, "Rare"), candidates=[names[2]])[0] == names[2]
    assert ex.match(degrade(names[0], rng), candidates=["Nothing"]) is None
    assert ex.match(degrade(names[0], rng), slot="Aft Weapons") is None


# -- calibration ---------------------------------------------------------------------------------
def _calibration_set(index: IconIndex, outside: list[str], n: int, seed: int):
    rng = random.Random(seed)
    feats, ok = [], []
    for _ in range(n):
        name = rng.choice(outside) if rng.random() < 0.2 else rng.choice(index.names)
        res = index.match(degrade(name, rng, offset=3))
        feats.append(match_features(res))
        ok.append(res[0][0] == name)
    return np.array(feats), np.array(ok)


def test_calibrator_fit_monotone_and_calibrated(index, library, tmp_path):
    _, names, _ = library
    outside = sorted(set(_equipment()) - set(names))[:300]
    x_fit, y_fit = _calibration_set(index, outside, 500, 1)
    x_test, y_test = _calibration_set(index, outside, 500, 2)
    assert 0.05 < 1 - y_fit.mean() < 0.5  # both outcomes present, or the test proves nothing
    cal = Calibrator().fit(x_fit, y_fit)
    grid = np.linspace(0.3, 1.0, 50)
    p = cal.probabilities(np.column_stack([grid, np.full_like(grid, 0.02)]))
    assert np.all(np.diff(p) > 0)  # more similar -> more confident
    pm = cal.probabilities(np.column_stack([np.full_like(grid, 0.85), grid * 0.1]))
    assert np.all(np.diff(pm) >= 0)  # a clearer winner -> more confident
    ece = expected_calibration_error(cal.probabilities(x_test), y_test)
    assert ece < 0.08, ece
    cal.save(tmp_path / "cal.json")
    again = Calibrator.load(tmp_path / "cal.json")
    np.testing.assert_allclose(again.probabilities(x_test), cal.probabilities(x_test))
    # the bundled default is usable on this data too
    bundled = Calibrator.load()
    assert expected_calibration_error(bundled.probabilities(x_test), y_test) < 0.12
    assert bundled.probability(0.95, 0.05) > bundled.probability(0.6, 0.05)


def test_ece_of_perfect_and_wrong_confidence():
    assert expected_calibration_error(np.array([1.0, 1.0]), np.array([1, 1])) == 0.0
    assert expected_calibration_error(np.array([0.95] * 10), np.zeros(10)) == pytest.approx(0.95)
