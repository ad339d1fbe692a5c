"""Benchmark of the upload path: crops uploaded per second and requests per batch, by route.

Why: the predecessor uploaded file by file (1-2 s a crop); warpd sends one commit per batch. This
fills a fresh Store with ``--crops`` confirmed, distinct 64×64 crops (the example icons as canonical
crops, one pixel changed per copy so every sha differs), then runs one ``Uploader.sync_once`` against
a local HubServer through ``warpd.hub.HttpHub`` (the real huggingface_hub client over HTTP on
127.0.0.1), with ``sync.batch_size = --batch-size`` and a daily cap large enough for all of them.

Loopback HTTP has no network latency: the figures are the client's and the store's own cost, an upper
bound on throughput (a real Hub adds round trips per request: count requests, not seconds).

Usage: python bench/sync.py [--crops 1000] [--batch-size 100]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))  # hubserver.py lives with the tests (standard library only)

IID = "0b7d6f1e-3c4a-4d2b-9e8f-1a2b3c4d5e6f"


def distinct_crops(n: int) -> list[bytes]:
    """``n`` different 64×64 PNGs that look like real icons (examples/icons, one pixel changed each)."""
    import numpy as np
    from PIL import Image

    from warpd.preprocess import canonical_crop
    from warpd.store import png_bytes

    icons = sorted((REPO / "examples" / "icons").glob("*.png"))
    bases = [canonical_crop(np.asarray(Image.open(p).convert("RGB"))) for p in icons] or \
        [np.zeros((64, 64, 3), np.uint8)]
    out = []
    for i in range(n):
        rgb = bases[i % len(bases)].copy()
        k = i // len(bases)
        rgb[k // 64 % 64, k % 64] = (rgb[k // 64 % 64, k % 64].astype(int) + 1 + k // 4096) % 256
        out.append(png_bytes(rgb))
    return out


def fill_store(store, crops: list[bytes]) -> float:
    """Confirm every crop (one annotation each, as ``warpd confirm`` would); returns seconds."""
    from warpd.formats import make_annotation, sha256_hex

    t0 = time.perf_counter()
    for png in crops:
        store.add_annotation(make_annotation(sha256_hex(png), "Ablative Shell", "Science Consoles"), png)
    return time.perf_counter() - t0


def bench_config(data: Path, endpoint: str, batch_size: int, crops: int):
    from warpd.config import load_config

    values = {"paths.data_dir": str(data), "sync.endpoint": endpoint, "sync.enabled": True,
              "sync.batch_size": batch_size, "sync.daily_cap": max(1000, crops), "sync.check_updates": False}
    return load_config(None, [f"{k}={json.dumps(v)}" for k, v in values.items()], env={})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--crops", type=int, default=1000)
    ap.add_argument("--batch-size", type=int, default=100)
    args = ap.parse_args(argv)

    from hubserver import ROUTES, HubServer

    with tempfile.TemporaryDirectory(prefix="warpd-bench-sync-") as tmp, HubServer(Path(tmp) / "hub") as server:
        os.environ["HF_ENDPOINT"] = server.url  # read by huggingface_hub at import
        os.environ["HF_HUB_OFFLINE"] = "0"
        os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
        from warpd.hub import HttpHub
        from warpd.paths import DataPaths
        from warpd.store import Store
        from warpd.sync import Uploader

        cfg = bench_config(Path(tmp) / "data", server.url, args.batch_size, args.crops)
        crops = distinct_crops(args.crops)
        store = Store(DataPaths(Path(tmp) / "data"))
        fill_s = fill_store(store, crops)
        hub = HttpHub(server.url, "hf_bench_token", timeout_s=float(cfg.sync.timeout_s))
        uploader = Uploader(store, hub, cfg, IID)
        server.clear_log()
        t0 = time.perf_counter()
        report = uploader.sync_once()
        wall = time.perf_counter() - t0
        routes = Counter(r.route for r in server.requests())
        remote = [p for p in server.files(cfg.sync.staging_repo) if "/crops/" in p]
        store.close()

    kb = sum(len(c) for c in crops) / len(crops) / 1024
    batches = max(report.batches, 1)
    print(f"crops: {args.crops} distinct 64x64 PNGs (mean {kb:.1f} KiB), batch_size {args.batch_size}, "
          f"daily_cap {cfg.sync.daily_cap}")
    print(f"store fill (add_annotation, one fsync'd transaction each): {fill_s:.1f} s "
          f"({args.crops / fill_s:.0f} crops/s)")
    print(f"sync_once: uploaded {report.uploaded} in {report.batches} batches, {wall:.2f} s wall "
          f"-> {report.uploaded / wall:.0f} crops/s; error: {report.error}")
    print(f"remote crops present: {len(remote)}; commits: {routes.get('commit', 0)}")
    print("requests per batch by route (total / batches):")
    for route in ROUTES:
        if routes.get(route):
            print(f"  {route:10s} {routes[route] / batches:6.2f}  ({routes[route]} total)")
    print(f"  {'all':10s} {sum(routes.values()) / batches:6.2f}  ({sum(routes.values())} total)")
    print("target: one commit per batch; a 2-core machine shared with other jobs: timings are noisy")
    return 0 if report.uploaded == args.crops and not report.error else 1


if __name__ == "__main__":
    raise SystemExit(main())
