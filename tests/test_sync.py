"""Sync and update against the local Hub server, through the real huggingface_hub client over HTTP."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.hubserver import HubServer  # noqa: E402
from warpd import formats
from warpd.config import load_config
from warpd.formats import make_annotation, sha256_hex
from warpd.hub import HttpHub, RetryPolicy
from warpd.models import load_model_set
from warpd.paths import DataPaths
from warpd.store import Store
from warpd.sync import Updater, UpdateRefused, Uploader, recover_models_dir

IID = "0b7d6f1e-3c4a-4d2b-9e8f-1a2b3c4d5e6f"
STAGING = "sets-sto/sto-icon-dataset"
KNOWLEDGE = "sets-sto/warp-knowledge"
onnx = pytest.importorskip("onnx")


def _cfg(tmp_path: Path, server: HubServer, **over: object):
    values = [f"paths.data_dir={json.dumps(str(tmp_path / 'data'))}", f"sync.endpoint={json.dumps(server.url)}",
              "sync.enabled=true", "sync.timeout_s=3"]
    values += [f"sync.{k}={json.dumps(v)}" for k, v in over.items()]
    return load_config(None, values, env={})


def _hub(server: HubServer, cfg) -> HttpHub:
    return HttpHub(server.url, "hf_secret_token", timeout_s=float(cfg.sync.timeout_s),
                   retry=RetryPolicy(attempts=3, base_s=0.01, max_s=0.05, max_retry_after_s=1.0))


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2026, 11, 24, 10, 0, tzinfo=dt.timezone.utc)

    def __call__(self) -> dt.datetime:
        return self.now


def _png(i: int) -> bytes:
    rgb = np.full((64, 64, 3), i % 251, np.uint8)
    rgb[i % 64, :, 1] = 255
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


def _fill(store: Store, n: int, start: int = 0) -> list[str]:
    shas = []
    for i in range(start, start + n):
        png = _png(i)
        store.add_annotation(make_annotation(sha256_hex(png), "Ablative Shell", "Science Consoles"), png)
        shas.append(sha256_hex(png))
    return shas


def _remote_state(server: HubServer) -> tuple[set[str], list[dict]]:
    files = server.files(STAGING)
    crops = {p.split("/")[-1][:-4] for p in files if "/crops/" in p}
    lines = [json.loads(line) for p, data in files.items() if p.endswith(".jsonl")
             for line in data.decode().splitlines() if line.strip()]
    return crops, lines


# ------------------------------------------------------------------------------ uploads
def test_one_commit_per_batch_and_nothing_twice(tmp_path: Path, hub_server: HubServer) -> None:
    cfg = _cfg(tmp_path, hub_server, batch_size=20)
    store = Store(DataPaths(tmp_path / "data"))
    shas = _fill(store, 45)
    up = Uploader(store, _hub(hub_server, cfg), cfg, IID)
    report = up.sync_once()
    assert report.uploaded == 45 and report.batches == 3 and report.error is None
    assert hub_server.count("commit") == 3  # one commit per batch, never one per crop
    crops, lines = _remote_state(hub_server)
    assert crops == set(shas) and sorted(r["crop_sha256"] for r in lines) == sorted(shas)
    assert all(set(r) == {"crop_sha256", "name", "slot", "date", "ml_name"} for r in lines)
    hub_server.clear_log()
    assert up.sync_once().uploaded == 0 and hub_server.count("commit") == 0
    store.close()


def test_a_faulty_day_loses_nothing_and_duplicates_nothing(tmp_path: Path, hub_server: HubServer) -> None:
    cfg = _cfg(tmp_path, hub_server, batch_size=10)
    store = Store(DataPaths(tmp_path / "data"))
    up = Uploader(store, _hub(hub_server, cfg), cfg, IID)
    all_shas: list[str] = []
    faults = [("500", {}), ("429", {"retry_after": 0.05}), ("drop", {}), ("503", {"count": 5}),
              ("slow", {"delay": 4.0})]
    for tick, (kind, extra) in enumerate(faults * 2):
        all_shas += _fill(store, 7, start=100 * tick)
        hub_server.inject(kind, "commit", **extra)
        up.sync_once()
    for _ in range(3):  # the faults are over: later ticks catch up
        up.sync_once()
    crops, lines = _remote_state(hub_server)
    assert crops == set(all_shas)
    assert sorted(r["crop_sha256"] for r in lines) == sorted(all_shas)  # every line once
    assert store.uploads_on() == len(all_shas)
    store.close()


def test_a_crash_between_commit_and_mark_is_repaired_without_duplicates(tmp_path: Path, hub_server: HubServer,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = _cfg(tmp_path, hub_server)
    store = Store(DataPaths(tmp_path / "data"))
    shas = _fill(store, 12)
    up = Uploader(store, _hub(hub_server, cfg), cfg, IID)

    def crash(*_a, **_k):
        raise SystemExit("killed right after the remote commit")

    monkeypatch.setattr(store, "mark_synced", crash)
    with pytest.raises(SystemExit):
        up.sync_once()
    assert hub_server.count("commit") == 1 and store.uploads_on() == 0
    monkeypatch.undo()
    store.close()
    store = Store(DataPaths(tmp_path / "data"))  # the restart
    report = Uploader(store, _hub(hub_server, cfg), cfg, IID).sync_once()
    assert report.resent == 12 and report.uploaded == 0
    crops, lines = _remote_state(hub_server)
    assert crops == set(shas) and len(lines) == 12
    assert store.uploads_on() == 12 and store.unsynced() == []
    store.close()


def test_the_daily_cap_holds_across_restarts(tmp_path: Path, hub_server: HubServer) -> None:
    cfg = _cfg(tmp_path, hub_server, daily_cap=5)
    clock = Clock()
    store = Store(DataPaths(tmp_path / "data"), clock=clock)
    _fill(store, 12)
    assert Uploader(store, _hub(hub_server, cfg), cfg, IID).sync_once().uploaded == 5
    store.close()
    store = Store(DataPaths(tmp_path / "data"), clock=clock)
    report = Uploader(store, _hub(hub_server, cfg), cfg, IID).sync_once()
    assert report.uploaded == 0 and report.capped
    clock.now += dt.timedelta(days=1)
    assert Uploader(store, _hub(hub_server, cfg), cfg, IID).sync_once().uploaded == 5
    assert len(_remote_state(hub_server)[0]) == 10
    store.close()


def test_the_token_never_reaches_logs_or_errors(tmp_path: Path, hub_server: HubServer,
                                                caplog: pytest.LogCaptureFixture) -> None:
    cfg = _cfg(tmp_path, hub_server)
    store = Store(DataPaths(tmp_path / "data"))
    _fill(store, 3)
    hub_server.inject("500", "commit", count=10)
    with caplog.at_level("DEBUG"):
        report = Uploader(store, _hub(hub_server, cfg), cfg, IID).sync_once()
    assert report.error and "hf_secret_token" not in report.error
    assert "hf_secret_token" not in caplog.text
    store.close()


# ------------------------------------------------------------------------------ updates
def _publish(server: HubServer, files: dict[str, bytes], trained_at: str, *, listed: dict[str, bytes] | None = None,
             extra_remote: dict[str, bytes] | None = None) -> None:
    """Publish a model set: model_version.json lists ``listed`` (default: the files themselves)."""
    listed = files if listed is None else listed
    version = formats.ModelVersion(version="t", trained_at=formats.parse_utc(trained_at),
                                   n_classes=1, files={f"models/{n}": formats.file_entry(d) for n, d in listed.items()})
    remote = {f"models/{n}": d for n, d in files.items()}
    remote.update(extra_remote or {})
    remote["models/model_version.json"] = json.dumps(version.to_json()).encode()
    server.seed(KNOWLEDGE, remote, repo_type="model")


def _updater(tmp_path: Path, server: HubServer, reloads: list[Path] | None = None) -> Updater:
    cfg = _cfg(tmp_path, server)
    return Updater(_hub(server, cfg), cfg, tmp_path / "data" / "models",
                   on_installed=(reloads.append if reloads is not None else None))


def test_a_good_update_is_installed_and_reloaded(tmp_path: Path, hub_server: HubServer) -> None:
    from tests.modelkit import model_files

    files = model_files()
    _publish(hub_server, files, "2026-11-20T10:00:00Z")
    reloads: list[Path] = []
    up = _updater(tmp_path, hub_server, reloads)
    assert up.check() is not None and reloads == [up.models_dir]
    models = load_model_set(up.models_dir, strict=True)
    assert models.icon is not None and models.corrections
    assert up.check() is None  # same trained_at: nothing to do
    _publish(hub_server, files, "2026-11-20T09:00:00-02:00")  # 11:00 UTC: newer, though it sorts lower as text
    assert up.check() is not None and (up.models_dir.parent / "models.prev").is_dir()


@pytest.mark.parametrize("damage", ["corrupted", "missing", "truncated_onnx", "wrong_label_map", "older"])
def test_bad_updates_are_refused_and_the_old_models_keep_working(tmp_path: Path, hub_server: HubServer,
                                                                 damage: str) -> None:
    from tests.modelkit import model_files

    good = model_files()
    _publish(hub_server, good, "2026-11-20T10:00:00Z")
    up = _updater(tmp_path, hub_server)
    up.check()
    before = {p.name: p.read_bytes() for p in up.models_dir.iterdir()}
    bad = dict(good)
    when = "2026-11-22T10:00:00Z"
    listed = None
    if damage == "corrupted":
        listed = dict(good)
        bad[formats.ICON_ONNX] = good[formats.ICON_ONNX][:-10] + b"0123456789"
    elif damage == "missing":
        listed = dict(good)
        listed["extra.onnx"] = b"never uploaded"
    elif damage == "truncated_onnx":
        bad[formats.ICON_ONNX] = good[formats.ICON_ONNX][: len(good[formats.ICON_ONNX]) // 2]
    elif damage == "wrong_label_map":
        names = json.loads(good[formats.LABEL_MAP])
        names.pop(str(len(names) - 1))
        bad[formats.LABEL_MAP] = json.dumps(names).encode()
    elif damage == "older":
        when = "2026-11-01T10:00:00Z"
    _publish(hub_server, bad, when, listed=listed)
    from warpd.hub import HubError

    if damage == "older":
        assert up.check() is None
    else:
        with pytest.raises((UpdateRefused, HubError)):
            up.check()
    after = {p.name: p.read_bytes() for p in up.models_dir.iterdir()}
    assert after == before
    assert load_model_set(up.models_dir, strict=True).icon is not None
    assert not [p for p in up.models_dir.parent.iterdir() if p.name.startswith(".models-update-")]


def test_an_interrupted_swap_is_repaired(tmp_path: Path) -> None:
    models = tmp_path / "models"
    prev = tmp_path / "models.prev"
    prev.mkdir()
    (prev / "label_map.json").write_text("{}")
    recover_models_dir(models)
    assert (models / "label_map.json").is_file() and not prev.exists()


def test_a_running_daemon_picks_up_an_update(tmp_path: Path, hub_server: HubServer) -> None:
    from tests.modelkit import model_files
    from warpd.daemon import Daemon
    from warpd.sync import SyncService

    cfg = _cfg(tmp_path, hub_server)
    shots = tmp_path / "shots"
    shots.mkdir()
    daemon = Daemon(cfg, folders=[shots], use_tray=False)
    engine = daemon.engine()
    assert engine.models.icon is None
    _publish(hub_server, model_files(), "2026-11-20T10:00:00Z")
    service = SyncService(daemon, cfg, lambda: _hub(hub_server, cfg), uploads=False)
    assert service.run_update(force=True) is not None
    assert engine.models.icon is not None  # hot-reloaded, no restart
    daemon.store.close()
