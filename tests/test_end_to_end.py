"""The whole loop once: screenshots → daemon → confirmations → sync → central training → update → better answers.

Every part is the real one: watchdog events on real files, the recognition engine, the store, ``warpd
confirm`` in another process, the sync worker uploading through huggingface_hub to the local Hub server,
``python -m central train`` in another process publishing to it, and the running daemon installing the
update and hot-reloading it. The second reading of the screen the daemon had asked about must be more
confident than the first.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from tests.hubserver import HubServer
from tests.waiting import wait_for
from warpd.config import load_config
from warpd.daemon import Daemon
from warpd.hub import HttpHub, RetryPolicy
from warpd.sync import SyncService

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
STAGING = "sets-sto/sto-icon-dataset"
KNOWLEDGE = "sets-sto/warp-knowledge"
SCREEN = "space_eq_000007.jpg"

pytestmark = [pytest.mark.slow, pytest.mark.train]



def _iou(a, b) -> float:
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return ix * iy / max(1, a[2] * a[3] + b[2] * b[3] - ix * iy)


def _variant(src: Path, dst: Path, k: int) -> None:
    """The same screen with one pixel changed: new content, so the daemon reads it again."""
    img = cv2.imread(str(src), cv2.IMREAD_COLOR)
    img[0, k] = (k, 1, 2)
    ok, data = cv2.imencode(".png", img)
    assert ok
    tmp = dst.with_suffix(".part")
    tmp.write_bytes(data.tobytes())
    os.replace(tmp, dst)


def _truth_item(truth: dict, slot: str, bbox) -> str | None:
    cells = [c for c in truth["slots"] if c["slot"] == slot and c["state"] == "item" and _iou(c["bbox"], bbox) > 0.5]
    return cells[0]["item"] if cells else None


def test_screenshots_to_a_better_model_and_back(tmp_path: Path, hub_server: HubServer) -> None:
    pytest.importorskip("torch")
    shots = tmp_path / "shots"
    shots.mkdir()
    data = tmp_path / "data"
    cfg = load_config(None, [
        f"paths.data_dir={json.dumps(str(data))}", f"paths.icons_dir={json.dumps(str(EXAMPLES / 'icons'))}",
        f"sync.endpoint={json.dumps(hub_server.url)}", "sync.enabled=true", "sync.timeout_s=10",
        "watch.stable_s=0.2", "tray.enabled=false",
        # a strict auto band, so this screen surely leaves questions to answer; community knowledge
        # (pHash of voted crops) then answers above it
        "recognition.auto_accept=0.995", "recognition.phash_confidence=0.999",
    ], env={})
    truth = json.loads((EXAMPLES / SCREEN).with_suffix(".json").read_text(encoding="utf-8"))
    hub = lambda: HttpHub(hub_server.url, "hf_e2e_token", timeout_s=10.0,  # noqa: E731
                          retry=RetryPolicy(attempts=3, base_s=0.01, max_s=0.05))

    # 1. the daemon reads a new screenshot and asks about what it is unsure of
    daemon = Daemon(cfg, folders=[shots], use_tray=False)
    daemon.sync = SyncService(daemon, cfg, hub, uploads=True)
    daemon.start()
    try:
        _variant(EXAMPLES / SCREEN, shots / "first.png", 1)
        assert wait_for(lambda: daemon.counters.processed == 1)
        first = daemon.store.screenshot(daemon.store.waiting()[0].screenshot_sha).result
        asked = [q for q in daemon.store.waiting() if q.kind == "item"]
        assert len(asked) >= 3, "the strict band should leave several questions"

        # 2. the player answers in a terminal (another process), with the true items
        env = dict(os.environ, WARPD_PATHS__DATA_DIR=str(data), PYTHONPATH=str(REPO))
        answered = []
        for q in asked:
            name = _truth_item(truth, q.slot, q.bbox)
            if name is None:
                continue
            done = subprocess.run([sys.executable, "-m", "warpd", "confirm", "--id", str(q.id), "--name", name,
                                   "--literal"], env=env, capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, done.stderr
            answered.append((q, name))
        assert len(answered) >= 3
        assert daemon.apply_external_answers() == len(answered)

        # 3. the sync worker uploads the confirmations to the staging dataset
        report = daemon.sync.run_upload()
        assert report.error is None and report.uploaded == len(answered)
        staged = hub_server.files(STAGING)
        assert sum(1 for p in staged if "/crops/" in p) == len(answered)
    finally:
        daemon.stop()
        daemon.store.close()

    # 4. central training (its own process) votes, trains a small model and publishes it
    work = tmp_path / "central"
    classes = tmp_path / "classes.txt"  # this screen's items: a small model that trains in CI time
    classes.write_text("\n".join(sorted({c["item"] for c in truth["slots"] if c["item"]})) + "\n", encoding="utf-8")
    train = subprocess.run(
        [sys.executable, "-m", "central", "train", "--staging", STAGING, "--knowledge", KNOWLEDGE,
         "--endpoint", hub_server.url, "--icons", str(EXAMPLES / "icons"), "--out", str(work), "--force",
         "--class-list", str(classes), "--icon-max-steps", "60", "--icon-batch-size", "32", "--icon-threads", "1",
         "--budget-minutes", "6", "--min-reserve-minutes", "0.5", "--min-train-minutes", "0.2",
         "--knowledge-min-votes", "1", "--no-progress", "--json"],
        env=dict(os.environ, HF_TOKEN="hf_e2e_token", PYTHONPATH=str(REPO), HF_HUB_OFFLINE="0"),
        capture_output=True, text=True, timeout=900)
    assert train.returncode == 0, train.stderr[-3000:]
    published = hub_server.files(KNOWLEDGE, repo_type="model")
    assert "models/model_version.json" in published and "knowledge.json" in published

    # 5. a daemon (restarted: no session examples) installs the update and reads the screen again
    daemon = Daemon(cfg, folders=[shots], use_tray=False)
    daemon.sync = SyncService(daemon, cfg, hub, uploads=False)
    daemon.start()
    try:
        engine = daemon.engine()
        assert len(engine.session) == 0
        assert daemon.sync.run_update(force=True) is not None
        assert engine.models.knowledge is not None and len(engine.models.knowledge) >= len(answered)
        _variant(EXAMPLES / SCREEN, shots / "second.png", 2)
        assert wait_for(lambda: daemon.counters.processed == 1)
        second = None
        for path in (daemon.output / "results").glob("second.*.json"):
            second = json.loads(path.read_text(encoding="utf-8"))
        assert second is not None
    finally:
        daemon.stop()
        daemon.store.close()
    better = 0
    for q, name in answered:
        before = next(e for e in first["slots"] if e["slot"] == q.slot and tuple(e["bbox"]) == tuple(q.bbox))
        after = next((e for e in second["slots"] if e["slot"] == q.slot and _iou(e["bbox"], q.bbox) > 0.8), None)
        assert after is not None
        assert after["item"] == name
        better += after["confidence"] > before["confidence"]
    assert better == len(answered)
