"""Benchmark of the screenshot watcher: close-to-on_ready latency for a burst, and idle CPU.

Drops ``--count`` real PNG files into a fresh folder at once (each written and closed, or written
to a temporary name and renamed with ``--mode rename``), measures for each the time from its close
(or rename) to ``on_ready``, and prints p50/p95/max. Then leaves the watcher idle for
``--idle-s`` seconds and prints the process CPU time and the worker's wake-ups in that time.
Uses the documented defaults of config/warpd.toml (not the user's file).

Usage: python bench/watcher.py [--count 100] [--mode close|rename] [--polling] [--idle-s 10]
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from warpd.config import default_config  # noqa: E402
from warpd.watcher import FolderSpec, Watcher  # noqa: E402


def _png(seed: int) -> bytes:
    """A 1280x720 PNG with a little noise (about the size class of a compressed UI screenshot)."""
    rng = np.random.default_rng(seed)
    arr = np.zeros((720, 1280, 3), np.uint8)
    arr[..., 2] = np.linspace(0, 255, 1280, dtype=np.uint8)[None, :]
    arr[:64, :256] = rng.integers(0, 256, (64, 256, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=100)
    ap.add_argument("--mode", choices=("close", "rename"), default="close")
    ap.add_argument("--polling", action="store_true", help="use the polling observer (network folders)")
    ap.add_argument("--idle-s", type=float, default=10.0)
    args = ap.parse_args(argv)

    cfg = default_config().watch
    blobs = [_png(i) for i in range(args.count)]
    ready: dict[str, float] = {}
    done = threading.Event()

    def on_ready(path: Path) -> None:
        ready[path.name] = time.monotonic()
        if len(ready) >= args.count:
            done.set()

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        watcher = Watcher([FolderSpec(folder, polling=args.polling)], on_ready, cfg_watch=cfg)
        watcher.start()
        time.sleep(0.2)  # let the initial (empty) scan pass
        closed: dict[str, float] = {}
        t0 = time.monotonic()
        for i, blob in enumerate(blobs):
            name = f"screenshot_{i:04d}.png"
            if args.mode == "rename":
                tmp_path = folder / f".{name}.tmp"
                tmp_path.write_bytes(blob)
                os.replace(tmp_path, folder / name)
            else:
                (folder / name).write_bytes(blob)
            closed[name] = time.monotonic()
        write_s = time.monotonic() - t0
        finished = done.wait(timeout=60 + args.count * 0.1)
        latencies = [(ready[n] - closed[n]) * 1000 for n in closed if n in ready]
        print(f"watcher bench: {args.count} files, {len(blobs[0]) / 1e3:.0f} KB each, mode={args.mode}, "
              f"observer={'polling' if args.polling else 'native'}, stable_s={cfg.stable_s}, "
              f"polling_stable_s={cfg.polling_stable_s}, polling_interval_s={cfg.polling_interval_s}")
        print(f"  written in {write_s * 1000:.0f} ms; emitted {len(ready)}/{args.count}"
              f"{'' if finished else ' (TIMED OUT)'}")
        print(f"  close -> on_ready latency: p50 {_pct(latencies, 50):.1f} ms, p95 {_pct(latencies, 95):.1f} ms, "
              f"max {max(latencies, default=float('nan')):.1f} ms")

        time.sleep(max(cfg.stable_s, cfg.polling_stable_s) * 2)  # let trailing events settle
        stats0, cpu0, wall0 = watcher.stats(), time.process_time(), time.monotonic()
        time.sleep(args.idle_s)
        cpu, wall, stats1 = time.process_time() - cpu0, time.monotonic() - wall0, watcher.stats()
        print(f"  idle {wall:.1f} s: process CPU {cpu * 1000:.1f} ms ({100 * cpu / wall:.3f} % of one core), "
              f"worker wake-ups {stats1['wakeups'] - stats0['wakeups']}, "
              f"extra emissions {stats1['emitted'] - stats0['emitted']}")
        watcher.stop()
    return 0 if finished else 1


if __name__ == "__main__":
    raise SystemExit(main())
