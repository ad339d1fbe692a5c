"""The icon library on a cron runner: mirror a Hub repo of ``<quote_plus(name)>.png`` files into a folder.

Why: the class list and every class's synthetic training data come from the icon library (SETS's
image cache), and a GitHub runner starts empty. The workflow restores the folder from its cache and
this brings it up to date: one pinned revision, only files whose blob id changed are downloaded
(bounded parallelism, per-file retries, the same fetcher as the staging collection), each file
validated (a flat ``.png`` name, a size limit, a PNG that decodes to a sane icon) before it is
written atomically. Files the repo no longer has are removed, but only files an earlier fetch
wrote (``.library.json`` remembers them): a hand-placed icon is never deleted.

A failed or refused file leaves the local copy as it was; the report says which and why.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from central.collect import CollectOptions, CollectReport, _Fetcher, decode_png
from warpd.fsutil import write_atomic
from warpd.hub import Hub, RemoteFile
from warpd.synth.icons import name_from_icon_file

log = logging.getLogger(__name__)

MANIFEST = ".library.json"  # {"icons": {file: blob id} this mirror wrote, "refused": {file: blob id} it refused}
MAX_ICON_BYTES = 256 * 1024  # SETS's icons are ~5-15 kB PNGs
ICON_MIN_SIDE, ICON_MAX_SIDE = 16, 512


@dataclass
class LibraryReport:
    """What one fetch found, downloaded, kept, refused and removed."""

    revision: str = ""
    listed: int = 0
    downloaded: int = 0
    unchanged: int = 0
    removed: int = 0
    rejected: Counter = field(default_factory=Counter)  # reason -> files
    failed: dict[str, str] = field(default_factory=dict)  # file -> why it could not be downloaded
    seconds: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return {"revision": self.revision, "listed": self.listed, "downloaded": self.downloaded,
                "unchanged": self.unchanged, "removed": self.removed, "rejected": dict(self.rejected),
                "failed": self.failed, "seconds": round(self.seconds, 2)}


def _icon_name(path: str, prefix: str) -> str | None:
    """The file name of a library icon directly under ``prefix``, or None for anything else."""
    rel = path[len(prefix):].lstrip("/") if prefix else path
    if "/" in rel or not rel.lower().endswith(".png") or rel.startswith("."):
        return None
    return rel if name_from_icon_file(rel).strip() else None


def fetch_library(hub: Hub, repo: str, out_dir: str | Path, *, prefix: str = "", repo_type: str = "dataset",
                  workers: int = 8, attempts: int = 3, sleep: Any = time.sleep) -> LibraryReport:
    """Bring ``out_dir`` up to date with ``repo``'s icons at its current head (see the module doc)."""
    t0 = time.monotonic()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = LibraryReport(revision=hub.head(repo, repo_type=repo_type))
    known, refused = _read_manifest(out)
    wanted: dict[str, RemoteFile] = {}
    present: set[str] = set()  # every icon name upstream, refused ones included
    for f in hub.list_files(repo, prefix, repo_type=repo_type, revision=report.revision):
        name = _icon_name(f.path, prefix)
        if name is None:
            report.rejected["not a flat .png name"] += 1
            continue
        present.add(name)
        if f.size > MAX_ICON_BYTES:
            report.rejected[f"larger than {MAX_ICON_BYTES // 1024} kB"] += 1
        else:
            wanted[name] = f
    report.listed = len(wanted)
    todo: dict[str, RemoteFile] = {}
    still_refused: dict[str, str] = {}
    for name, f in wanted.items():
        if f.blob_id and refused.get(name) == f.blob_id:  # the same bytes again: not downloaded again
            report.rejected["refused before, unchanged"] += 1
            still_refused[name] = f.blob_id
        elif f.blob_id and known.get(name) == f.blob_id and (out / name).is_file():
            report.unchanged += 1
        else:
            todo[name] = f
    refused = still_refused
    opts = CollectOptions(attempts=attempts, repo_type=repo_type)
    fetched = CollectReport()  # the fetcher's counts; its ``missing`` says why a file could not be had
    fetcher = _Fetcher(hub, repo, report.revision, opts, fetched, sleep)

    def one(item: tuple[str, RemoteFile]) -> tuple[str, str | None]:
        name, f = item
        data = fetcher.get(f.path, name)
        if data is None:
            return name, "download failed"
        try:
            decode_png(data, min_side=ICON_MIN_SIDE, max_side=ICON_MAX_SIDE, max_pixels=ICON_MAX_SIDE ** 2)
        except ValueError as exc:
            return name, f"not a usable PNG: {exc}"
        write_atomic(out / name, data)
        return name, None

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for name, problem in pool.map(one, sorted(todo.items())):
            if problem is None:
                report.downloaded += 1
                known[name] = wanted[name].blob_id or ""
            elif problem == "download failed":
                report.failed[name] = fetched.missing.get(wanted[name].path, problem)
            else:
                report.rejected["not a usable PNG"] += 1
                refused[name] = wanted[name].blob_id or ""
                log.warning("Icon %s refused: %s", name, problem)
    for name in sorted(set(known) - present):  # gone upstream: only files this mirror wrote
        (out / name).unlink(missing_ok=True)
        del known[name]
        report.removed += 1
    write_atomic(out / MANIFEST, json.dumps({"icons": known, "refused": refused}, indent=0,
                                            sort_keys=True).encode("utf-8"))
    report.seconds = time.monotonic() - t0
    return report


def _read_manifest(out: Path) -> tuple[dict[str, str], dict[str, str]]:
    """The previous fetch's ({file: blob id} written, {file: blob id} refused); empty when missing or
    unreadable (then everything is fetched and checked again)."""
    try:
        data = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = {}
    data = data if isinstance(data, dict) else {}

    def entries(key: str) -> dict[str, str]:
        part = data.get(key)
        part = part if isinstance(part, dict) else {}
        return {k: v for k, v in part.items() if isinstance(k, str) and isinstance(v, str) and _icon_name(k, "")}

    return entries("icons"), entries("refused")
