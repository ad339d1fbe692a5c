"""``warpd process``: recognise screenshots now, print the results, optionally write SETS builds.

The same engine the daemon runs, for one-off use and scripts: ``--json`` prints one object per
image per line (the contract in :mod:`warpd.recognize`), ``--build`` writes what they show as SETS
build files. The exit code is 1 when any image could not be read, so a script notices.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any, Iterable

from warpd.cli import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, print_json

log = logging.getLogger(__name__)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def register(sub: Any) -> None:
    p = sub.add_parser("process", help="recognise screenshots and print what they show",
                       description=__doc__.splitlines()[0] + " Folders are searched for .png/.jpg files.")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="screenshot files or folders of them")
    p.add_argument("--icons", metavar="DIR", help="icon library in SETS image-cache layout (default: configured)")
    p.add_argument("--catalog", metavar="DIR", help="a SETS cargo folder (default: SETS's own, else bundled)")
    p.add_argument("--models", metavar="DIR", help="folder with ONNX models, label maps, knowledge.json and "
                                                     "ship_type_corrections.json (default: the data folder's)")
    p.add_argument("--json", action="store_true", help="one JSON object per image per line")
    p.add_argument("--build", metavar="OUT", help="write a SETS build: a .json file for one ship, or a folder "
                                                  "(one file per ship)")
    p.set_defaults(func=run)


def expand_images(args: Iterable[str]) -> list[Path]:
    """Files as given (any name: the loader judges content), folders expanded to their screenshots."""
    out: list[Path] = []
    for arg in args:
        path = Path(arg)
        if path.is_dir():
            out += sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            out.append(path)
    return out


def run(args: argparse.Namespace, cfg: Any) -> int:
    from tqdm import tqdm

    from warpd.recognize import Engine, summary_line

    images = expand_images(args.images)
    if not images:
        print("warpd process: no screenshots found in the given folders", file=sys.stderr)
        return EXIT_USAGE
    engine = Engine.from_config(cfg, icons=args.icons, catalog=args.catalog, models=args.models)
    results = []
    progress = tqdm(images, desc="recognising", unit="img", disable=len(images) < 3 or not sys.stderr.isatty(),
                    file=sys.stderr)
    for path in progress:
        result = engine.process_file(path)
        results.append(result)
        if args.json:
            print_json(result)
        else:
            progress.write(summary_line(result), file=sys.stdout)
    failed = [r for r in results if r.get("error")]
    if args.build:
        written = write_builds(results, engine.catalog, Path(args.build))
        if written is None:
            return EXIT_USAGE
        for path, notes in written:
            print(f"build written: {path}" + (f" ({len(notes)} notes)" if notes else ""), file=sys.stderr)
            for note in notes:
                print(f"  - {note}", file=sys.stderr)
    if failed:
        print(f"warpd process: {len(failed)} of {len(results)} images could not be read", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


def write_builds(results: list[dict[str, Any]], catalog: Any, out: Path) -> list[tuple[Path, list[str]]] | None:
    """One SETS build per ship; ``out`` is a file (one ship) or a folder (any number)."""
    from warpd.build import build_file_name, builds_from_results, write_build

    builds = builds_from_results([r for r in results if not r.get("error")], catalog)
    if not builds:
        print("warpd process: no build screens among the images; no build written", file=sys.stderr)
        return []
    to_folder = out.is_dir() or out.suffix.lower() != ".json"
    if not to_folder and len(builds) > 1:
        print(f"warpd process: the images show {len(builds)} ships; give a folder to --build to write one "
              "file per ship", file=sys.stderr)
        return None
    if to_folder:
        out.mkdir(parents=True, exist_ok=True)
    written = []
    for (ship_type, tier), build in builds.items():
        target = out / build_file_name(ship_type, tier) if to_folder else out
        write_build(build, target)
        written.append((target, [note.message for note in build.report]))
    return written
