"""Benchmark of the icon identification core (warpd.icon_index) on rendered icon libraries.

For libraries of 300 / 3,000 / 10,000 icons (catalogue equipment names, plus "<name> Variant N" when
the catalogue runs out) rendered with warpd.synth.icons, it reports: build time (cold, and warm from
the .npz cache), feature memory, top-1 accuracy over the whole library and with per-slot candidates
(items of the same catalogue type), ms per crop matched alone and batched per screenshot of 40
crops, and the calibrator's expected calibration error on held-out crops. Crops are framed with a
random rarity, resized to 35..110 px tall, offset, blurred, gamma-shifted and JPEG-compressed.

    .venv/bin/python bench/icon_index.py [--quick] [--write-calibration]
"""

from __future__ import annotations

import argparse
import io
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageFilter

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from warpd.icon_index import (  # noqa: E402
    CALIBRATION_FILE, Calibrator, IconIndex, expected_calibration_error, match_features)
from warpd.synth.icons import apply_rarity, render_icon, write_icon_library  # noqa: E402

RARITIES = ("Common", "Uncommon", "Rare", "Very Rare", "Ultra Rare", "Epic")
SCREEN_CROPS = 40


def catalogue_items() -> dict[str, str]:
    """Equipment key -> type from the bundled catalogue."""
    rows = json.loads((REPO / "warpd/data/catalog/equipment.json").read_text(encoding="utf-8"))
    return {r["key"]: r.get("type", "") for r in rows if r.get("key")}


def library_names(n: int, items: dict[str, str], seed: int = 0) -> tuple[list[str], dict[str, str]]:
    """n names (catalogue keys first, then variants) and their types."""
    keys = sorted(items)
    random.Random(seed).shuffle(keys)
    names, types = keys[:n], {k: items[k] for k in keys[:n]}
    v = 1
    while len(names) < n:
        for k in keys:
            if len(names) >= n:
                break
            name = f"{k} Variant {v}"
            names.append(name)
            types[name] = items[k]
        v += 1
    return names, types


def make_crop(name: str, rng: random.Random, hard: bool = False) -> np.ndarray:
    """A framed, resized, offset, blurred, gamma-shifted, JPEG-compressed crop of the item's icon."""
    icon = apply_rarity(render_icon(name), rng.choice(RARITIES)).convert("RGB")
    h = rng.randint(35, 110)
    w = int(round(h * rng.uniform(0.75, 0.84)))
    icon = icon.resize((w, h), rng.choice([Image.Resampling.BILINEAR, Image.Resampling.LANCZOS,
                                           Image.Resampling.BICUBIC]))
    m = 4
    canvas = Image.new("RGB", (w + 2 * m, h + 2 * m), tuple(rng.randint(5, 40) for _ in range(3)))
    canvas.paste(icon, (m, m))
    off = 3 if hard else 2
    dx, dy = rng.randint(-off, off), rng.randint(-off, off)
    crop = canvas.crop((m + dx, m + dy, m + dx + w, m + dy + h))
    if rng.random() < 0.5:
        crop = crop.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2 if hard else 0.9)))
    a = (np.asarray(crop, np.float32) / 255.0) ** rng.uniform(0.8, 1.25)
    if hard and rng.random() < 0.4:
        a = 0.25 + 0.7 * a  # washed-out HDR capture
    a = np.clip(a * rng.uniform(0.85, 1.15), 0, 1)
    buf = io.BytesIO()
    Image.fromarray((a * 255).astype(np.uint8)).save(buf, "JPEG", quality=rng.randint(60, 95))
    return np.asarray(Image.open(buf).convert("RGB"))


def bench_size(n: int, n_crops: int, items: dict[str, str], tmp: Path) -> dict:
    """Build, memory, accuracy and speed figures for one library size."""
    names, types = library_names(n, items)
    lib = tmp / f"lib{n}"
    t = time.perf_counter()
    write_icon_library(names, lib)
    render_s = time.perf_counter() - t
    cache = tmp / f"cache{n}"
    idx = IconIndex.build(lib, cache_dir=cache)
    cold = idx.stats.seconds
    warm_idx = IconIndex.build(lib, cache_dir=cache)
    warm = warm_idx.stats.seconds
    assert warm_idx.stats.from_cache
    by_type: dict[str, list[str]] = {}
    for name in names:
        by_type.setdefault(types[name], []).append(name)
    rng = random.Random(n)
    truth = [rng.choice(names) for _ in range(n_crops)]
    crops = [make_crop(t, rng) for t in truth]
    cands = [by_type[types[t]] for t in truth]
    # batched per screenshot of SCREEN_CROPS
    full, slot, batch_ms = [], [], []
    for s in range(0, n_crops, SCREEN_CROPS):
        t0 = time.perf_counter()
        full += idx.match_many(crops[s:s + SCREEN_CROPS])
        batch_ms.append((time.perf_counter() - t0) * 1000)
        slot += idx.match_many(crops[s:s + SCREEN_CROPS], cands[s:s + SCREEN_CROPS])
    single = []
    for c in crops[:200]:
        t0 = time.perf_counter()
        idx.match(c)
        single.append((time.perf_counter() - t0) * 1000)
    return {
        "icons": len(idx), "render_s": render_s, "build_cold_s": cold, "build_warm_s": warm,
        "mem_mb": idx.nbytes / 2**20,
        "top1_full": float(np.mean([r[0][0] == t for r, t in zip(full, truth)])),
        "top1_slot": float(np.mean([r[0][0] == t for r, t in zip(slot, truth)])),
        "ms_single_p50": statistics.median(single),
        "ms_screen_p50": statistics.median(batch_ms),
        "ms_per_crop_batched": statistics.median(batch_ms) / SCREEN_CROPS,
    }


def calibration_data(idx: IconIndex, outside: list[str], n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(top1, margin) features and correctness for crops of library items (normal and hard
    degradations) and of items missing from the library (their top answer is always wrong)."""
    rng = random.Random(seed)
    feats, ok = [], []
    for i in range(n):
        if outside and rng.random() < 0.15:
            name, hard = rng.choice(outside), rng.random() < 0.5
        else:
            name, hard = rng.choice(idx.names), rng.random() < 0.5
        res = idx.match(make_crop(name, rng, hard))
        feats.append(match_features(res))
        ok.append(bool(res) and res[0][0] == name)
    return np.asarray(feats), np.asarray(ok)


def bench_calibration(items: dict[str, str], tmp: Path, n: int, write: bool) -> dict:
    """Fit the calibrator on half of the rendered matches and report ECE on the other half."""
    names, _ = library_names(3000, items)
    outside = sorted(set(items) - set(names))
    lib = tmp / "lib3000"
    if not lib.exists():
        write_icon_library(names, lib)
    idx = IconIndex.build(lib, cache_dir=tmp / "cache3000")
    x_fit, y_fit = calibration_data(idx, outside, n, seed=11)
    x_test, y_test = calibration_data(idx, outside, n, seed=12)
    cal = Calibrator(meta={"fitted_on": f"{n} rendered crops (3,000-icon library, 15% items outside it), "
                                         "bench/icon_index.py", "accuracy": float(y_fit.mean())})
    cal.fit(x_fit, y_fit, "icon")
    p = cal.probabilities(x_test, "icon")
    out = {"ece_test": expected_calibration_error(p, y_test), "accuracy_test": float(y_test.mean()),
           "ece_bundled": None, "coefficients": cal.coefs["icon"].tolist()}
    if CALIBRATION_FILE.is_file():
        out["ece_bundled"] = expected_calibration_error(Calibrator.load().probabilities(x_test, "icon"), y_test)
    if write:
        cal.save(CALIBRATION_FILE)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="300 and 3,000 icons, fewer crops")
    ap.add_argument("--sizes", type=int, nargs="*", help="library sizes (default 300 3000 10000)")
    ap.add_argument("--crops", type=int, help="crops per library size (default 1000, quick 400)")
    ap.add_argument("--calib-crops", type=int, help="crops per calibration half (default 1500, quick 600)")
    ap.add_argument("--write-calibration", action="store_true",
                    help=f"write the fitted coefficients to {CALIBRATION_FILE.relative_to(REPO)}")
    args = ap.parse_args(argv)
    # OpenCV's thread pool fights OpenBLAS for the 2 cores on these tiny images (measured: 3-5x
    # slower screenshots); the daemon should do the same at start-up.
    cv2.setNumThreads(1)
    sizes = args.sizes or ([300, 3000] if args.quick else [300, 3000, 10000])
    n_crops = args.crops or (400 if args.quick else 1000)
    n_cal = args.calib_crops or (600 if args.quick else 1500)
    items = catalogue_items()
    with tempfile.TemporaryDirectory(prefix="warpd-bench-") as d:
        tmp = Path(d)
        print(f"{'icons':>6} {'top1 all':>8} {'top1 slot':>9} {'ms/crop':>8} {'ms/crop@40':>10} "
              f"{'ms/screen':>9} {'build s':>8} {'cached s':>8} {'MB':>6}")
        for n in sizes:
            r = bench_size(n, n_crops, items, tmp)
            print(f"{r['icons']:>6} {r['top1_full']:>8.4f} {r['top1_slot']:>9.4f} {r['ms_single_p50']:>8.3f} "
                  f"{r['ms_per_crop_batched']:>10.3f} {r['ms_screen_p50']:>9.1f} {r['build_cold_s']:>8.2f} "
                  f"{r['build_warm_s']:>8.3f} {r['mem_mb']:>6.1f}", flush=True)
        c = bench_calibration(items, tmp, n_cal, args.write_calibration)
        print(f"calibration: held-out accuracy {c['accuracy_test']:.3f}, ECE (10 bins) fitted {c['ece_test']:.4f}"
              + (f", bundled {c['ece_bundled']:.4f}" if c["ece_bundled"] is not None else "")
              + f"; coefficients [1, top1, margin] = {np.round(c['coefficients'], 3).tolist()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
