"""warpd-central end to end against the local HTTP Hub: real clients upload, central votes, trains, gates,
publishes ONE commit, and a real client Updater installs the result.

CI-sized: 12 classes, 4 installs (one poisoner), 8 screen samples, a 40-step model on one torch thread.
The scenario runs once (module fixture) and the tests read its records, so training happens once
(the dry run; the publish stage then ships the same artefacts).
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from tests.hubserver import HubServer  # noqa: E402

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")
pytest.importorskip("onnx")

REPO = Path(__file__).resolve().parent.parent
WORKFLOW = REPO / ".github" / "workflows" / "train_central_model.yml"
STAGING = "sets-sto/sto-icon-dataset"
KNOWLEDGE = "sets-sto/warp-knowledge"
SLOT = "Fore Weapons"
N_CLASSES = 12
# (dx, dy, jpeg quality) of each install's capture: near-duplicates of one icon, never the same bytes
VARIANTS = [(0, 0, None), (1, 0, 92), (0, 1, 88), (1, 1, None)]


def iid(k: int) -> str:
    return str(uuid.UUID(int=(k + 7) * 0x2000_0000_0003, version=4))


HONEST = [iid(0), iid(1), iid(2)]
POISONER = iid(3)


# ------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def hub_module(tmp_path_factory: pytest.TempPathFactory):
    """One local Hub for the whole scenario (the per-test hub_server fixture would reset it)."""
    import huggingface_hub.constants as hf_constants

    mp = pytest.MonkeyPatch()
    server = HubServer(tmp_path_factory.mktemp("hub")).start()
    mp.setenv("HF_ENDPOINT", server.url)
    mp.setenv("HF_HUB_OFFLINE", "0")
    mp.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    yield server
    server.stop()
    mp.undo()


@pytest.fixture(scope="module")
def names() -> list[str]:
    from warpd.catalog import Catalog

    items = Catalog.load().items_for_slot(SLOT)
    return items[:: len(items) // N_CLASSES][:N_CLASSES]  # spread over the list: different families


def _client_cfg(tmp: Path, server: HubServer):
    from warpd.config import load_config

    values = [f"paths.data_dir={json.dumps(str(tmp / 'data'))}", f"sync.endpoint={json.dumps(server.url)}",
              "sync.enabled=true", "sync.timeout_s=10", f"sync.staging_repo={json.dumps(STAGING)}",
              f"sync.knowledge_repo={json.dumps(KNOWLEDGE)}"]
    return load_config(None, values, env={})


def _hub(server: HubServer):
    from warpd.hub import HttpHub, RetryPolicy

    return HttpHub(server.url, None, timeout_s=10.0, retry=RetryPolicy(attempts=2, base_s=0.01, max_s=0.02))


def _upload(tmp: Path, server: HubServer, install: str, crops: list[tuple[np.ndarray, str, str, str]]) -> list[str]:
    """One install confirms (crop, name, slot, ml_name) through its own Store and uploads with the real Uploader."""
    from warpd.formats import make_annotation, sha256_hex
    from warpd.paths import DataPaths
    from warpd.store import Store, png_bytes
    from warpd.sync import Uploader

    folder = tmp / install
    cfg = _client_cfg(folder, server)
    store = Store(DataPaths(folder / "data"))
    shas = []
    for crop, name, slot, ml_name in crops:
        png = png_bytes(crop)
        store.add_annotation(make_annotation(sha256_hex(png), name, slot, ml_name=ml_name), png)
        shas.append(sha256_hex(png))
    report = Uploader(store, _hub(server), cfg, install).sync_once()
    store.close()
    assert report.error is None and report.uploaded == len(crops)
    return shas


def _screens(server: HubServer) -> None:
    """8 screen-type samples (2 types) committed to staging as the client lays them out."""
    from central.collect import encode_png
    from warpd import formats

    rng = np.random.default_rng(3)
    files = {}
    for i in range(8):
        stype = ("SPACE_EQ", "TRAITS")[i % 2]
        img = rng.integers(0, 40, (90, 160, 3), dtype=np.uint8)
        img[:, : 80 if stype == "SPACE_EQ" else 20] += np.array([120, 60, 10] if i % 2 == 0 else [10, 60, 120],
                                                                 np.uint8)
        data = encode_png(img)
        files[formats.staging_screen_path(HONEST[i % 3], stype, formats.sha256_hex(data))] = data
    _hub(server).commit(STAGING, files, "screen samples", repo_type="dataset")


def _args(work: Path, server: HubServer, class_list: Path, *extra: str) -> list[str]:
    return ["train", "--endpoint", server.url, "--staging", STAGING, "--knowledge", KNOWLEDGE, "--out", str(work),
            "--synthetic-icons", "--class-list", str(class_list), "--no-progress", "--json", "--retries", "2",
            "--timeout-s", "20", "--workers", "4", "--budget-minutes", "20", "--min-reserve-minutes", "0.2",
            "--min-train-minutes", "0.1", "--icon-max-steps", "40", "--icon-batch-size", "32",
            "--icon-val-per-class", "2", "--icon-eval-every-steps", "20", "--icon-threads", "1",
            "--screen-threads", "1", "--screen-epochs", "1", "--screen-batch-size", "4", "--eval-threads", "1",
            "--gate-min-top1", "0.3", "--reserve-publish-s", "3", "--reserve-export-s", "3", *extra]


def _main(argv: list[str]) -> tuple[int, dict, float]:
    """Run the CLI in-process; the summary is read from the work folder (it is always written there)."""
    from central.cli import main

    t0 = time.monotonic()
    code = main(argv)
    took = time.monotonic() - t0
    work = Path(argv[argv.index("--out") + 1])
    return code, json.loads((work / "summary.json").read_text(encoding="utf-8")), took


def _commits(server: HubServer) -> int:
    try:
        return len(server.commits(KNOWLEDGE, "model"))
    except Exception:  # the repo does not exist yet
        return 0


@pytest.fixture(scope="module")
def scenario(hub_module: HubServer, names: list[str], tmp_path_factory: pytest.TempPathFactory):
    """Uploads, then: dry run (trains), publish stage, a client update, a no-data rerun, a staging-only change."""
    from tests.test_central_vote import icon
    from warpd.catalog import Catalog
    from warpd.models import load_model_set
    from warpd.sync import Updater

    old_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("scenario")
    server = hub_module
    ship = sorted(Catalog.load().ships)[0]
    text_crop = np.full((20, 120, 3), 200, np.uint8)
    shas: dict[str, list[str]] = {}
    for k, install in enumerate(HONEST + [POISONER]):
        dx, dy, q = VARIANTS[k]
        crops = []
        for c, name in enumerate(names):
            label = name
            if install == POISONER and c < 2:
                label = names[1 - c]  # swaps the labels of two classes the others agree on
            crops.append((icon(name, dx=dx, dy=dy, jpeg=q), label, SLOT, ""))
        if k < 2:  # two installs corrected the same OCR misreading
            text_crop[0, 0, 0] = k
            crops.append((text_crop.copy(), ship, "Ship Type", "X" + ship))
        shas[install] = _upload(tmp, server, install, crops)
    _screens(server)
    class_list = tmp / "classes.txt"
    class_list.write_text("\n".join(names) + "\n", encoding="utf-8")
    work = tmp / "work"
    rec: dict = {"names": names, "shas": shas, "ship": ship, "work": work, "class_list": class_list, "tmp": tmp}

    # the model every later step publishes and installs is trained data-parallel (two spawned workers)
    rec["dry"] = _main(_args(work, server, class_list, "--dry-run", "--icon-workers", "2", "--icon-threads", "2"))
    rec["commits_after_dry"] = _commits(server)
    rec["vote"] = json.loads((work / "vote.json").read_text())
    rec["dry_models"] = load_model_set(work / "publish" / "client", strict=True)  # what clients run
    rec["dry_report"] = {p.name for p in (work / "report").iterdir()}
    commits = server.count("commit")
    rec["publish"] = _main(_args(work, server, class_list, "--stage", "publish"))
    rec["publish_commit_calls"] = server.count("commit") - commits
    rec["published_files"] = server.files(KNOWLEDGE, "model")

    cfg = _client_cfg(tmp / "client", server)
    updater = Updater(_hub(server), cfg, tmp / "client" / "models")
    rec["installed"] = updater.check()
    rec["client_models"] = updater.models_dir

    commits = server.count("commit")
    rec["rerun"] = _main(_args(tmp / "work-rerun", server, class_list))
    rec["rerun_commit_calls"] = server.count("commit") - commits

    server.seed(STAGING, {f"staging/{HONEST[0]}/annotations/{'ab' * 8}.jsonl":
                          b'{"crop_sha256": "' + b"0" * 64 + b'", "name": "CLI Test Item", "slot": "Fore Weapons"}\n'})
    commits = server.count("commit")
    rec["staging_only"] = _main(_args(tmp / "work-staging-only", server, class_list))
    rec["staging_only_commit_calls"] = server.count("commit") - commits
    torch.set_num_threads(old_threads)
    return rec


# ------------------------------------------------------------------------------ the scenario
@pytest.mark.slow
@pytest.mark.train
def test_dry_run_trains_verifies_and_commits_nothing(scenario) -> None:
    code, summary, took = scenario["dry"]
    assert code == 0 and summary["status"] == "dry_run", summary
    assert scenario["commits_after_dry"] == 0  # the knowledge repo was not even created
    assert summary["evaluate"]["promote"] and summary["publish"]["commit"] is None
    models = scenario["dry_models"]
    assert models.icon is not None and sorted(models.icon.labels) == sorted(scenario["names"])
    assert models.screen is not None and models.knowledge is not None and len(models.knowledge)
    assert {"report.md", "per_class.png", "reliability.png", "training.png"} <= scenario["dry_report"]
    train = json.loads((scenario["work"] / "model" / "train.json").read_text())["summary"]
    assert train["samples"] == train["steps"] * 32  # both workers' shares counted
    print(f"dry run (collect, vote, train, evaluate, stage, verify) took {took:.1f} s: {summary['timings']}")


@pytest.mark.slow
@pytest.mark.train
def test_publish_is_one_commit_that_a_client_installs(scenario) -> None:
    from warpd import formats

    code, summary, _took = scenario["publish"]
    assert code == 0 and summary["status"] == "published", summary
    assert scenario["publish_commit_calls"] == 1
    files = scenario["published_files"]
    version = formats.parse_model_version(files["models/model_version.json"])
    raw = json.loads(files["models/model_version.json"])
    assert raw["trained_at"].endswith("Z") and formats.format_utc(version.trained_at) == raw["trained_at"]
    expected = {f"models/{n}" for n in (formats.ICON_ONNX, formats.LABEL_MAP, formats.ICON_META,
                                        formats.SCREEN_ONNX, formats.SCREEN_LABELS,
                                        formats.CORRECTIONS, formats.MANIFEST)} | {formats.KNOWLEDGE_FILE}
    assert set(version.files) == expected  # what clients download: no .pt, they run ONNX
    assert {"models/icon_classifier.pt", "models/screen_classifier.pt"} <= set(files)  # kept for fine-tuning
    for path, meta in version.files.items():
        assert formats.file_entry(files[path]) == meta, path
    assert version.n_classes == N_CLASSES and version.n_users == 4 and version.n_samples > 0
    for key in ("regression_top1_old", "regression_top1_new", "ece", "timings_s", "staging_revision"):
        assert key in version.extra, key
    assert version.val_acc is not None and version.screen_trained_at == version.trained_at
    assert any(p.startswith("reports/") and p.endswith("report.md") for p in files)
    assert json.loads(files["models/ship_type_corrections.json"]) == {"X" + scenario["ship"]: scenario["ship"]}
    manifest = json.loads(files["models/training_manifest.json"])
    assert manifest["count"] == len(manifest["crop_shas"]) > 0 and manifest["staging_revision"]

    from warpd.models import load_model_set

    assert scenario["installed"] is not None  # the real Updater downloaded, verified and swapped it in
    models = load_model_set(scenario["client_models"], strict=True)
    assert sorted(models.icon.labels) == sorted(scenario["names"]) and models.screen is not None
    assert models.corrections == {"X" + scenario["ship"]: scenario["ship"]}


@pytest.mark.slow
@pytest.mark.train
def test_a_poisoned_install_does_not_change_the_winning_label(scenario) -> None:
    names, shas = scenario["names"], scenario["shas"]
    poisoned = {shas[POISONER][0]: names[0], shas[POISONER][1]: names[1]}  # its crops -> their true label
    ballots = {sha: w for w in scenario["vote"]["winners"] for sha in w["crop_shas"]}
    for sha, truth in poisoned.items():
        assert ballots[sha]["name"] == truth and POISONER not in ballots[sha]["supporters"]
        assert ballots[sha]["votes"] == 3
    assert scenario["vote"]["per_install"][POISONER]["lost"] == 2


@pytest.mark.slow
@pytest.mark.train
def test_a_second_run_without_new_data_exits_fast_without_a_commit(scenario) -> None:
    code, summary, took = scenario["rerun"]
    assert code == 0 and summary["status"] == "skipped" and "unchanged" in summary["reason"]
    assert scenario["rerun_commit_calls"] == 0 and took < 10.0, took
    assert "train" not in summary["timings"] and "collect" not in summary["timings"]
    # staging moved but no usable data came with it: collected and voted, still skipped before training
    code, summary, took = scenario["staging_only"]
    assert code == 0 and summary["status"] == "skipped" and "unchanged" in summary["reason"], summary
    assert scenario["staging_only_commit_calls"] == 0 and took < 30.0, took
    assert "train_icons" not in summary["timings"]


@pytest.mark.slow
@pytest.mark.train
def test_a_worse_model_is_not_promoted(scenario, hub_module: HubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Training returns a random-init network: the gate refuses it, nothing is committed, the reason is given."""
    import central.train_icons as ti
    from central.models import icon_model

    seen: dict = {}

    def random_model(bank, cfg=None, community=None, init_backbone=None, start_time=None):
        seen["init_backbone"] = init_backbone
        torch.manual_seed(5)
        return ti.TrainResult(model=icon_model(len(bank.names)).eval(), names=list(bank.names), temperature=1.0,
                              val_acc=0.1, val_loss=2.0, community_val_acc=None, ece_raw=0.1, ece_calibrated=0.1,
                              steps=1, samples=32, train_seconds=0.1, samples_per_s=320.0, stop_reason="max_steps")

    monkeypatch.setattr(ti, "train_icon_classifier", random_model)
    torch.set_num_threads(1)
    commits = hub_module.count("commit")
    work = scenario["tmp"] / "work-worse"
    code, summary, _took = _main(_args(work, hub_module, scenario["class_list"], "--force"))
    assert code == 3 and summary["status"] == "refused", summary
    assert "worse than the published model" in summary["reason"]
    assert hub_module.count("commit") == commits
    assert seen["init_backbone"] is not None and Path(seen["init_backbone"]).name == "icon_classifier.pt"
    assert "Why it was not promoted" in (work / "report" / "report.md").read_text()


@pytest.mark.slow
@pytest.mark.train
def test_the_budget_always_leaves_room_to_finish(scenario, hub_module: HubServer, tmp_path: Path) -> None:
    """No step cap: the clock alone stops training, and the whole run (evaluate, report, staging, the
    client-side verification) still ends inside --budget-minutes."""
    torch.set_num_threads(1)
    budget_s = 40.0
    args = _args(tmp_path / "work", hub_module, scenario["class_list"], "--force", "--dry-run")
    args[args.index("--budget-minutes") + 1] = str(budget_s / 60)
    args[args.index("--icon-max-steps") + 1] = "0"
    code, summary, took = _main(args + ["--icon-reserve-s", "3", "--min-reserve-minutes", "0.1"])
    assert code == 0 and summary["status"] == "dry_run", summary
    assert summary["train"]["stop_reason"] in ("budget", "early_stop") and summary["train"]["steps"] > 0
    assert took <= budget_s + 1.0, (took, summary["timings"], summary["train"]["reserve_s"])
    print(f"budget {budget_s:.0f} s: run took {took:.1f} s, reserve {summary['train']['reserve_s']} s, "
          f"{summary['train']['steps']} steps, timings {summary['timings']}")


@pytest.mark.slow
@pytest.mark.train
def test_a_publish_racing_another_commit_fails_without_mixing(scenario, hub_module: HubServer, tmp_path: Path) -> None:
    """Publishing is parented on the knowledge revision the run evaluated against: a moved repo is a conflict."""
    import shutil

    work = tmp_path / "work"
    shutil.copytree(scenario["work"], work)
    pins = json.loads((work / "pins.json").read_text())
    pins["knowledge_revision"] = hub_module.commits(KNOWLEDGE, "model")[-1]  # evaluated long ago
    (work / "pins.json").write_text(json.dumps(pins))
    before = hub_module.commits(KNOWLEDGE, "model")
    code, summary, _took = _main(_args(work, hub_module, scenario["class_list"], "--stage", "publish"))
    assert code == 1 and "moved since the run pinned it" in summary["reason"], summary
    assert hub_module.commits(KNOWLEDGE, "model") == before


@pytest.mark.slow
@pytest.mark.train
def test_a_reviewed_regression_set_is_pinned_held_out_and_compared_fairly(scenario, hub_module: HubServer,
                                                                          tmp_path: Path) -> None:
    """propose -> review -> push; the next run evaluates on the pinned set, holds its ballots out of
    training, and compares with the published model only on crops that model never trained on."""
    from central.cli import main
    from central.evaluate import load_regression_set

    folder = tmp_path / "proposal"
    assert main(["regression", "propose", "--work", str(scenario["work"]), "--out", str(folder),
                 "--min-votes", "3"]) == 0
    lines = (folder / "labels.jsonl").read_text().splitlines()
    assert len(lines) == N_CLASSES  # every ballot had 3+ agreeing installs
    (folder / "labels.jsonl").write_text("\n".join(lines[:6]) + "\n")  # the review kept six
    assert main(["regression", "push", str(folder), "--endpoint", hub_module.url, "--knowledge", KNOWLEDGE,
                 "--retries", "1"]) == 0
    regset = load_regression_set(_hub(hub_module), KNOWLEDGE, hub_module.head(KNOWLEDGE, "model"))
    assert regset is not None and len(regset) == 6 and len(regset.origin_shas()) == 6 * 4

    torch.set_num_threads(1)
    work = tmp_path / "work"
    code, summary, _took = _main(_args(work, hub_module, scenario["class_list"], "--force", "--dry-run"))
    ev = summary["evaluate"]
    assert ev["regression_source"].startswith(KNOWLEDGE) and ev["regression_n"] == 6
    assert ev["regression_compared_n"] == 0  # the published model trained on all of them: no unfair comparison
    info = json.loads((work / "model" / "train.json").read_text())
    assert len(info["held_out_shas"]) == 6 * 4 and info["n_community"] == 48 - 6 * 4
    assert code == 0 and summary["status"] == "dry_run", summary
    manifest = json.loads((work / "publish" / "repo" / "models" / "training_manifest.json").read_text())
    assert sorted(manifest["held_out_shas"]) == sorted(regset.origin_shas())


# ------------------------------------------------------------------------------ quick checks
def test_the_gate_refuses_lost_classes_and_a_missing_floor() -> None:
    from central.evaluate import EvalResult, GateOptions, gate

    good = EvalResult(0.9, 0.05, 10, 3)
    catalogue = {"A", "B", "C", "D"}
    ok = gate(good, EvalResult(0.8, 0.05, 10, 3), new_names=["A", "B", "C"], previous_names=["A", "B", "C"],
              required={"A", "B"}, catalogue=catalogue, val_acc=0.9)
    assert ok.promote and not ok.reasons
    lost = gate(good, None, new_names=["A", "B"], previous_names=["A", "B", "C"], required={"A"},
                catalogue=catalogue, val_acc=0.9)
    assert not lost.promote and any("would disappear" in r for r in lost.reasons)
    pruned = gate(good, None, new_names=["A", "B"], previous_names=["A", "B", "Gone"], required={"A"},
                  catalogue=catalogue, val_acc=0.9, opts=GateOptions(max_class_drop=0.5))
    assert pruned.promote  # a class no longer in the catalogue may go
    low = gate(EvalResult(0.2, 0.05, 10, 3), None, new_names=["A"], previous_names=None, required=set(),
               catalogue=catalogue, val_acc=float("nan"))
    assert not low.promote and len(low.reasons) == 2  # below the floor, and val_acc is not a number


def test_generated_regression_set_is_per_class_deterministic() -> None:
    from central.crops import render_bank
    from central.evaluate import generate_regression_set

    a = generate_regression_set(render_bank(["Phaser Beam Array", "Plasma Cannon"]), 2)
    b = generate_regression_set(render_bank(["Plasma Cannon", "Tetryon Turret"]), 2)
    assert a.labels == ["Phaser Beam Array"] * 2 + ["Plasma Cannon"] * 2
    assert all(np.array_equal(x, y) for x, y in zip(a.crops[2:], b.crops[:2]))  # other classes do not matter


def test_every_command_has_help(capsys: pytest.CaptureFixture) -> None:
    from central.cli import main

    for argv in (["--help"], ["train", "--help"], ["regression", "--help"], ["regression", "init", "--help"],
                 ["regression", "propose", "--help"], ["regression", "push", "--help"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "--budget-minutes" in out and "--dry-run" in out and "--icon-max-steps" in out and "--gate-tolerance" in out


def test_the_workflow_runs_hourly_never_overlapping() -> None:
    yaml = pytest.importorskip("yaml")
    doc = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    triggers = doc.get("on", doc.get(True))  # YAML 1.1 reads a bare `on` as True
    assert triggers["schedule"][0]["cron"] == "0 * * * *"
    assert "force" in triggers["workflow_dispatch"]["inputs"]
    assert doc["concurrency"] == {"group": "central-training", "cancel-in-progress": False}
    job = next(iter(doc["jobs"].values()))
    assert job["runs-on"] == "ubuntu-latest" and job["timeout-minutes"] == 55
    text = WORKFLOW.read_text(encoding="utf-8")
    assert "secrets.HF_TOKEN" in text and "--budget-minutes 45" in text and "upload-artifact" in text
