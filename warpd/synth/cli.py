"""``warpd synth``: render STO-like screenshots with ground truth into a folder.

Used to build test and benchmark sets on machines without real screenshots: each sample is an
image (PNG or JPEG, as its capture options say) plus a JSON file with every slot's box, state and
item. ``--icons-out`` also writes the icon library of every item used, in SETS's image-cache layout
(``<quote_plus(name)>.png``), so a matcher can be benchmarked against exactly those icons.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

from warpd.slots import SCREEN_TYPES

DEFAULT_COUNT = 16
PROGRESS_MIN = 8  # a progress bar for anything longer than a handful of screens


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``synth`` subcommand to the ``warpd`` argument parser."""
    p = subparsers.add_parser(
        "synth",
        help="render synthetic STO screenshots with ground truth (tests, benchmarks)",
        description=(
            "Render STO-like screenshots of the given screen types, each with a JSON ground-truth file "
            "(slot boxes, states, items, ship text). Resolution, UI scale, JPEG quality, HDR washout, "
            "blur, cursor and tooltip vary per sample unless --resolution/--clean fix them. Output is "
            "deterministic for the same --seed."
        ),
    )
    p.add_argument("--out", required=True, type=Path, help="folder for <stem>.png|jpg + <stem>.json")
    p.add_argument("--count", type=int, default=DEFAULT_COUNT, help=f"number of screens (default {DEFAULT_COUNT})")
    p.add_argument("--types", default=",".join(SCREEN_TYPES),
                   help="comma-separated screen types, cycled in order (default: all of "
                        + ", ".join(SCREEN_TYPES) + ")")
    p.add_argument("--seed", type=int, default=0, help="first seed; sample i uses seed+i (default 0)")
    p.add_argument("--resolution", metavar="WxH", help="fix the resolution (default: a realistic mix)")
    p.add_argument("--clean", action="store_true",
                   help="no capture effects: PNG, no blur/HDR/brightness changes, no cursor or tooltip")
    p.add_argument("--icons-out", type=Path, metavar="DIR",
                   help="also write the icons of all items used (SETS image-cache layout)")
    p.add_argument("--catalog", type=Path, metavar="DIR", help="catalogue folder (default: the bundled one)")
    p.add_argument("--json", action="store_true", help="print a JSON summary instead of text")
    p.set_defaults(func=run)
    return p


def _parse_types(text: str) -> list[str]:
    types = [t.strip().upper() for t in text.split(",") if t.strip()]
    bad = [t for t in types if t not in SCREEN_TYPES]
    if bad or not types:
        raise ValueError(f"unknown screen type(s) {bad or text!r}; choose from {', '.join(SCREEN_TYPES)}")
    return types


def _parse_resolution(text: str | None) -> tuple[int, int] | None:
    if not text:
        return None
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"--resolution must look like 1920x1080, not {text!r}") from None
    return w, h


def _options_for(i: int, seed: int, resolution: tuple[int, int] | None, clean: bool) -> Any:
    from dataclasses import replace

    from warpd.synth.screens import RenderOptions, random_options

    opts = random_options(random.Random(f"warpd-synth-options:{seed + i}"))
    if clean:
        opts = RenderOptions(width=opts.width, height=opts.height, ui_scale=opts.ui_scale, language=opts.language)
    if resolution:
        opts = replace(opts, width=resolution[0], height=resolution[1])
    return opts


def run(args: argparse.Namespace, cfg: Any = None) -> int:
    """Render ``--count`` samples; return a process exit code (0 ok, 2 bad arguments)."""
    try:
        types = _parse_types(args.types)
        resolution = _parse_resolution(args.resolution)
        if args.count < 0:
            raise ValueError("--count must be >= 0")
    except ValueError as exc:
        print(f"warpd synth: {exc}", file=sys.stderr)
        return 2

    from warpd.catalog import Catalog
    from warpd.synth.screens import items_used, render_screen, save_sample

    catalog_folder = args.catalog
    if catalog_folder is None and cfg is not None:
        from warpd.paths import catalog_dir

        catalog_folder = catalog_dir(cfg)
    catalog = Catalog.load(catalog_folder)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    used: set[tuple[str, str]] = set()
    per_type: dict[str, int] = {}
    start = time.perf_counter()
    indices: Any = range(args.count)
    bar = None
    if args.count >= PROGRESS_MIN and not args.json:
        from tqdm import tqdm

        bar = tqdm(indices, desc="synth", unit="screen", file=sys.stderr)
        indices = bar
    for i in indices:
        screen_type = types[i % len(types)]
        sample_seed = args.seed + i
        opts = _options_for(i, args.seed, resolution, args.clean)
        img, truth = render_screen(screen_type, sample_seed, catalog, opts)
        save_sample(img, truth, out, f"{screen_type.lower()}_{sample_seed:06d}", opts)
        used |= items_used(truth)
        per_type[screen_type] = per_type.get(screen_type, 0) + 1
    if bar is not None:
        bar.close()
    elapsed = time.perf_counter() - start
    icons_written = _write_icons(args.icons_out, used) if args.icons_out else 0
    summary = {"out": str(out), "count": args.count, "per_type": per_type, "seconds": round(elapsed, 2),
               "screens_per_second": round(args.count / elapsed, 2) if elapsed > 0 else None,
               "icons_written": icons_written, "icons_out": str(args.icons_out) if args.icons_out else None}
    if args.json:
        print(json.dumps(summary, indent=1))
    else:
        print(f"wrote {args.count} screens to {out} in {elapsed:.1f} s"
              + (f"; {icons_written} icons to {args.icons_out}" if args.icons_out else ""))
    return 0


def _write_icons(out_dir: Path, used: set[tuple[str, str]]) -> int:
    """The bare icons (no rarity frame) of every item shown, named as SETS caches them."""
    from warpd.synth import icons

    kinds = {}
    for name, kind in sorted(used):
        kinds.setdefault(name, kind)
    writer = getattr(icons, "write_icon_library", None)
    if writer is not None:
        return int(writer(sorted(kinds), Path(out_dir), kind_of=kinds.get))
    from urllib.parse import quote_plus

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, kind in kinds.items():
        icons.render_icon(name, kind).save(out / (quote_plus(name) + ".png"))
    return len(kinds)


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry (``python -m warpd.synth.cli``) until the main CLI wires ``register`` in."""
    parser = argparse.ArgumentParser(prog="warpd")
    sub = parser.add_subparsers(dest="command", required=True)
    register(sub)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
