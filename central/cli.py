"""``warpd-central``: the community trainer's command line (``python -m central``), cron job and tool in one.

``warpd-central train`` runs the whole loop; every stage can also run alone, reading what the earlier
stages left in the work folder (``--out``, default ``central-work``)::

    collect   staging repo at ONE pinned revision -> collect/crops.npz, collect/screens.npz, collect/collected.json
    vote      ballots, winners, poisoning checks, corrections, pHash knowledge, skip decision -> vote.json
    train     icon classifier (library icons + winning crops, fine-tuned from the published backbone),
              screen classifier (>= 7 screenshots) -> model/ (ONNX checked against torch), model/train.json
    evaluate  regression set, published vs candidate, the promotion gate, the report -> eval.json, report/
    publish   staged, verified with the client's own loader, ONE commit -> publish/, summary.json

Why it is shaped like this (the predecessor's failures, ../shared/reference/community-pipeline.md):

* **Fast skip.** An hourly cron must cost seconds when nothing changed: the published
  training_manifest.json records the staging revision it was trained from; the same head means no new
  data, and the run ends after two small requests (``--force`` overrides). Otherwise the seed's rule
  decides after the vote (same winning set, or fewer than ``--vote-min-new-crops`` new crops: skip).
* **Deadline.** ``--budget-minutes`` is the whole run. Training gets what is left minus a reserve for
  evaluation, export, report and publishing, *measured*: the published model is scored on the
  regression set before training (the candidate costs the same), export/publish take what they took
  last time (``timings_s`` in model_version.json), times ``--reserve-factor``, never below
  ``--min-reserve-minutes``. The trainer stops by its deadline, so a run always publishes or exits
  cleanly before the CI job's timeout. Collection has no deadline of its own (it is one pinned read).
* **Gate.** Nothing is published unless :func:`central.evaluate.gate` says so (regression top-1 not
  worse, no class lost, finite figures); ``--dry-run`` does everything except the commit.

Exit codes: 0 published, skipped (nothing new) or dry run passed; 1 error (including a knowledge repo
that moved under the run: the next run retries); 2 usage; 3 the candidate was refused by the gate;
4 out of time before a model could be trained.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
import os
import shutil
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from central import publish as pub
from central.evaluate import GateOptions, RegressionSet
from central.vote import VoteOptions
from warpd import formats

log = logging.getLogger("central")

DEFAULT_STAGING = "sets-sto/sto-icon-dataset"
DEFAULT_KNOWLEDGE = "sets-sto/warp-knowledge"
DEFAULT_ENDPOINT = "https://huggingface.co"
STAGES = ("collect", "vote", "train", "evaluate", "publish")
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_REFUSED, EXIT_OUT_OF_TIME = 0, 1, 2, 3, 4

# Work folder layout.
COLLECT_DIR = "collect"
VOTE_JSON = "vote.json"
MODEL_DIR = "model"
SCREEN_DIR = "model/screen"
TRAIN_JSON = "model/train.json"
EVAL_JSON = "eval.json"
OLD_EVAL_JSON = "old_eval.json"
REPORT_DIR = "report"
PUBLISH_DIR = "publish"
PINS_JSON = "pins.json"
SUMMARY_JSON = "summary.json"
TIMINGS_JSON = "timings.json"
PREVIOUS_DIR = "previous"


class UsageError(Exception):
    """A flag combination or work folder that cannot work; exit code 2."""


class Stop(Exception):
    """Ends the run early with a status (skipped, refused, out of time) that is not an error."""

    def __init__(self, status: str, reason: str, code: int = EXIT_OK):
        super().__init__(reason)
        self.status, self.reason, self.code = status, reason, code


# ============================================================================= run context
@dataclass
class Run:
    """One invocation: flags, hub, work folder, deadline, and what stages hand each other in memory."""

    args: argparse.Namespace
    work: Path
    t0: float = field(default_factory=time.monotonic)
    timings: dict[str, float] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    _hub: Any = None
    _catalog: Any = None
    _previous: Any = None
    _library: Any = None
    _regression: Any = None

    # ---- shared resources, made once
    @property
    def hub(self) -> Any:
        if self._hub is None:
            self._hub = open_hub(self.args.endpoint, timeout_s=self.args.timeout_s, retries=self.args.retries)
        return self._hub

    @property
    def catalog(self) -> Any:
        if self._catalog is None:
            from warpd.catalog import Catalog

            self._catalog = Catalog.load(self.args.catalog)
        return self._catalog

    def deadline_left(self) -> float:
        """Seconds left of ``--budget-minutes``."""
        return self.args.budget_minutes * 60.0 - (time.monotonic() - self.t0)

    def path(self, name: str) -> Path:
        return self.work / name

    # ---- pins: one staging and one knowledge revision for the whole run (and its later stages)
    def pins(self) -> dict[str, Any]:
        path = self.path(PINS_JSON)
        pins = json.loads(path.read_text()) if path.is_file() else {}
        if pins.get("staging_repo") not in (None, self.args.staging) or \
                pins.get("knowledge_repo") not in (None, self.args.knowledge):
            raise UsageError(f"{self.work} was made for other repos ({pins}); use another --out")
        changed = False
        if "staging_revision" not in pins:
            pins["staging_revision"] = self.hub.head(self.args.staging, repo_type="dataset")
            changed = True
        if "knowledge_revision" not in pins:
            pins["knowledge_revision"] = pub.knowledge_head(self.hub, self.args.knowledge)
            changed = True
        if changed:
            pins.update(staging_repo=self.args.staging, knowledge_repo=self.args.knowledge)
            write_json(path, pins)
        return pins

    def previous(self) -> pub.Previous:
        """The published set at the pinned knowledge revision (downloaded once per process)."""
        if self._previous is None:
            self._previous = pub.fetch_previous(self.hub, self.args.knowledge, self.pins()["knowledge_revision"],
                                                self.path(PREVIOUS_DIR))
        return self._previous

    def library(self) -> Any:
        """The icon library bank (the class list before crop-only classes are added)."""
        if self._library is None:
            self._library = library_bank(self.args, self.catalog)
        return self._library

    def regression(self) -> RegressionSet:
        """The pinned regression set of the knowledge repo, else the generated one (see central.evaluate)."""
        if self._regression is None:
            from central.evaluate import generate_regression_set, load_regression_set

            pinned = load_regression_set(self.hub, self.args.knowledge, self.pins()["knowledge_revision"])
            self._regression = pinned if pinned is not None else generate_regression_set(
                self.library(), self.args.regression_per_class)
        return self._regression


def open_hub(endpoint: str, *, timeout_s: float = 30.0, retries: int = 4) -> Any:
    """``dir:PATH`` -> DirHub, else HttpHub with the token from $HF_TOKEN / $WARPD_HF_TOKEN (never logged)."""
    from warpd.hub import DIR_PREFIX, TOKEN_ENV_VARS, DirHub, HttpHub, RetryPolicy

    if endpoint.startswith(DIR_PREFIX):
        return DirHub(Path(endpoint[len(DIR_PREFIX):]), lock_timeout_s=timeout_s)
    token = next((os.environ[v].strip() for v in TOKEN_ENV_VARS if os.environ.get(v, "").strip()), None)
    return HttpHub(endpoint, token, timeout_s=timeout_s, retry=RetryPolicy(attempts=max(1, retries)))


def write_json(path: Path, obj: Any) -> None:
    """Atomic JSON write (a killed run never leaves half a file for the next stage)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=1, ensure_ascii=False, default=_json_default), encoding="utf-8")
    os.replace(tmp, path)


def read_json(path: Path, what: str) -> Any:
    """A stage artefact; a missing one says which stage to run first."""
    if not Path(path).is_file():
        raise UsageError(f"{path} is missing: run the {what} stage first (same --out)")
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if isinstance(value, Counter):
        return dict(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def timed(run: Run, name: str):
    """Context manager adding the block's wall time to ``run.timings[name]``."""
    from contextlib import contextmanager

    @contextmanager
    def block():
        t = time.monotonic()
        try:
            yield
        finally:
            run.timings[name] = round(run.timings.get(name, 0.0) + time.monotonic() - t, 3)

    return block()


# ============================================================================= collect
def stage_collect(run: Run) -> None:
    """Read the staging repo at the pinned revision; write crops, screens and votes to collect/."""
    from central.collect import CollectOptions, collect

    pins = run.pins()
    opts = CollectOptions(workers=run.args.workers)
    with timed(run, "collect"):
        collected = collect(run.hub, run.args.staging, catalog=run.catalog, revision=pins["staging_revision"],
                            options=opts)
    log.info("collect: %s", collected.report.summary())
    save_collected(run.path(COLLECT_DIR), collected)
    run.summary["collect"] = {"revision": collected.revision, "installs": len(collected.installs),
                              "votes": len(collected.votes), "text_votes": len(collected.text_votes),
                              "crops": len(collected.crops), "screens": collected.report.screens,
                              "missing": len(collected.report.missing),
                              "rejected": dict(collected.report.rejected)}


def save_collected(folder: Path, collected: Any) -> None:
    """collected.json (votes, text votes, report) + crops.npz + screens.npz."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / "crops.npz", **collected.crops)
    screens = [(stype, s) for stype in sorted(collected.screens) for s in collected.screens[stype]]
    np.savez(folder / "screens.npz", **{f"s{i}": s.rgb for i, (_t, s) in enumerate(screens)})
    report = {f.name: getattr(collected.report, f.name) for f in dataclasses.fields(collected.report)}
    report = {k: dict(v) if isinstance(v, dict) else v for k, v in report.items()}  # (asdict breaks Counters)
    write_json(folder / "collected.json", {
        "revision": collected.revision, "installs": collected.installs,
        "votes": [asdict(v) for v in collected.votes], "text_votes": [asdict(v) for v in collected.text_votes],
        "screens": [{"type": t, "install_id": s.install_id, "sha": s.sha} for t, s in screens],
        "report": report})


def load_collected(folder: Path) -> Any:
    """The :class:`central.collect.Collected` that :func:`save_collected` wrote."""
    from central.collect import Collected, CollectReport, ScreenSample, TextVote, Vote

    folder = Path(folder)
    meta = read_json(folder / "collected.json", "collect")
    with np.load(folder / "crops.npz") as z:
        crops = {k: z[k] for k in z.files}
    screens: dict[str, list[ScreenSample]] = {}
    with np.load(folder / "screens.npz") as z:
        for i, s in enumerate(meta["screens"]):
            screens.setdefault(s["type"], []).append(ScreenSample(s["install_id"], s["sha"], z[f"s{i}"]))
    report = CollectReport(revision=meta["revision"])
    for key in ("installs", "votes", "text_votes", "crops", "screens"):
        setattr(report, key, meta["report"].get(key, 0))
    return Collected(meta["revision"], meta["installs"], [Vote(**v) for v in meta["votes"]],
                     [TextVote(**v) for v in meta["text_votes"]], crops, screens, report)


# ============================================================================= vote
def stage_vote(run: Run) -> dict[str, Any]:
    """Vote, build corrections and pHash knowledge, decide whether to train; write vote.json."""
    from central.vote import corrections, should_train, vote

    collected = load_collected(run.path(COLLECT_DIR))
    previous = run.previous()
    with timed(run, "vote"):
        result = vote(collected.votes, collected.crops, options=vote_options(run.args),
                      model_check=published_model_check(previous))
        fixes = corrections(collected.text_votes)
        knowledge = knowledge_table(result, collected.crops, run.args.knowledge_min_votes)
    winning = result.winning_shas
    labels_digest = winning_digest(result)
    train, why = should_train(winning, previous.manifest_shas(), run.args.force, min_new=run.args.vote_min_new_crops)
    last_digest = previous.manifest.get("labels_sha256") if previous.manifest is not None else None
    if not train and last_digest not in (None, labels_digest):
        train, why = True, "winning labels changed (a relabelled ballot) since the last manifest"
    record = {
        "staging_revision": collected.revision, "train": train, "why": why, "labels_sha256": labels_digest,
        "winners": [_winner_json(w) for w in result.winners],
        "held_back": [asdict(h) for h in result.held_back],
        "capped": [list(c) for c in result.capped],
        "per_install": {k: asdict(v) for k, v in sorted(result.per_install.items())},
        "corrections": fixes, "knowledge": knowledge,
        "n_users": len({v.install_id for v in collected.votes} | {t.install_id for t in collected.text_votes}),
        "counts": {"ballots": result.ballots, "winners": len(result.winners), "winning_crops": len(winning),
                   "held_back": len(result.held_back), "capped": len(result.capped), "corrections": len(fixes),
                   "knowledge_entries": len(knowledge), "installs": len(collected.installs)},
    }
    write_json(run.path(VOTE_JSON), record)
    run.summary["vote"] = dict(record["counts"], train=train, why=why)
    log.info("vote: %d ballots, %d winners (%d crops), %d held back, %d capped; train: %s (%s)", result.ballots,
             len(result.winners), len(winning), len(result.held_back), len(result.capped), train, why)
    return record


def vote_options(args: argparse.Namespace) -> VoteOptions:
    return _from_args(VoteOptions, args, "vote_")


def published_model_check(previous: pub.Previous) -> Any:
    """The published icon model as the vote's poisoning check (None when there is none or it does not load)."""
    from central.evaluate import model_check_from
    from warpd.models import ModelError, load_icon_classifier

    if previous.folder is None or not previous.has_icon_model:
        return None
    try:
        clf = load_icon_classifier(previous.folder)
    except (ModelError, formats.FormatError, OSError) as exc:
        log.warning("the published icon model does not load (%s): voting without the model check", exc)
        return None
    return model_check_from(clf) if clf is not None else None


def _winner_json(w: Any) -> dict[str, Any]:
    return {"ballot_id": w.ballot_id, "crop_shas": list(w.crop_shas), "name": w.name, "slot": w.slot,
            "votes": w.votes, "installs": w.installs, "margin": w.margin, "supporters": list(w.supporters)}


def winning_digest(result: Any) -> str:
    """sha256 over sorted (crop sha, winning label): tells a relabel apart from an unchanged set."""
    pairs = sorted((sha, w.name) for w in result.winners for sha in w.crop_shas)
    return hashlib.sha256("\n".join(f"{s}\t{n}" for s, n in pairs).encode("utf-8")).hexdigest()


def knowledge_table(result: Any, crops: dict[str, np.ndarray], min_votes: int) -> dict[str, str]:
    """pHash (16 hex) -> item from winning crops of ballots at least ``min_votes`` installs supported.

    Why a minimum: knowledge overrides every other recogniser on every client, so one install's
    unconfirmed label must not become everyone's answer. A hash claimed by two items is dropped
    (the client would see a tie anyway).
    """
    from warpd.icon_index import crop_phash

    table: dict[str, str] = {}
    clashes: set[str] = set()
    for w in result.winners:
        if w.votes < min_votes:
            continue
        for sha in w.crop_shas:
            if sha not in crops:
                continue
            key = f"{crop_phash(crops[sha]):016x}"
            if table.get(key, w.name) != w.name:
                clashes.add(key)
            table[key] = w.name
    return {k: v for k, v in sorted(table.items()) if k not in clashes}


def load_vote(run: Run) -> tuple[dict[str, Any], Any]:
    """vote.json and a :class:`central.vote.VoteResult` rebuilt from it (winners only)."""
    from central.vote import VoteResult, Winner

    record = read_json(run.path(VOTE_JSON), "vote")
    winners = [Winner(w["ballot_id"], tuple(w["crop_shas"]), w["name"], w["slot"], w["votes"], w["installs"],
                      w["margin"], tuple(w["supporters"])) for w in record["winners"]]
    return record, VoteResult(winners, [], [], {})


# ============================================================================= train
def stage_train(run: Run) -> dict[str, Any]:
    """Train the screen classifier (when it may) and the icon classifier within the deadline; write model/."""
    record, result = load_vote(run)
    if not record["train"] and not run.args.force:
        raise Stop("skipped", record["why"])
    collected = load_collected(run.path(COLLECT_DIR))
    model_dir = run.path(MODEL_DIR)
    shutil.rmtree(model_dir, ignore_errors=True)
    model_dir.mkdir(parents=True)
    with timed(run, "prepare"):
        bank, crop_only = training_bank(run.library(), result, collected.crops, run.args.crop_only_classes)
        community, held_out = community_crops(collected, result, run.regression())
        old_eval = evaluate_previous(run)
    reserve = reserve_seconds(run, old_eval)
    left = run.deadline_left() - reserve
    if left < run.args.min_train_minutes * 60:
        raise Stop("out_of_time", f"{left:.0f} s left for training after a {reserve:.0f} s reserve "
                                  f"(--min-train-minutes {run.args.min_train_minutes})", EXIT_OUT_OF_TIME)
    screen = train_screens(run, collected, left)
    icon_cfg = icon_config(run.args)
    icon_cfg.budget_s = max(1.0, run.deadline_left() - reserve)
    with timed(run, "train_icons"):
        trained = run_icon_training(bank, icon_cfg, community, icon_backbone(run))
    with timed(run, "export"):
        from central.export import parity_samples, save_artifacts

        save_artifacts(model_dir, trained.model, trained.names, trained.temperature, samples=parity_samples(bank),
                       extra_meta={"ece_val_calibrated": trained.ece_calibrated, "val_acc": trained.val_acc})
    info = {"summary": trained.summary(), "history": trained.history, "screen": screen,
            "library_classes": len(run.library()), "crop_only_classes": crop_only, "reserve_s": round(reserve, 1),
            "n_community": len(community), "held_out_shas": held_out, "finetuned": icon_backbone(run) is not None}
    write_json(run.path(TRAIN_JSON), info)
    run.summary["train"] = {"val_acc": trained.val_acc, "steps": trained.steps, "stop_reason": trained.stop_reason,
                            "n_classes": len(trained.names), "train_seconds": round(trained.train_seconds, 1),
                            "screen": screen, "reserve_s": round(reserve, 1)}
    log.info("train: %d classes, val_acc %.4f after %d steps (%s); screen: %s", len(trained.names), trained.val_acc,
             trained.steps, trained.stop_reason, screen.get("status"))
    return info


def run_icon_training(bank: Any, cfg: Any, community: list, init_backbone: Path | None) -> Any:
    """train_icon_classifier, from the published backbone when it fits, else from scratch (said in the log)."""
    from central.train_icons import train_icon_classifier

    try:
        return train_icon_classifier(bank, cfg, community=community, init_backbone=init_backbone,
                                     start_time=time.monotonic())
    except ValueError as exc:
        if init_backbone is None or "backbone" not in str(exc):
            raise
        log.warning("the published backbone does not fit (%s): training from scratch", exc)
        return train_icon_classifier(bank, cfg, community=community, start_time=time.monotonic())


def icon_backbone(run: Run) -> Path | None:
    """The published icon_classifier.pt to fine-tune from (loaded weights-only, head dropped), or None."""
    if run.args.no_finetune:
        return None
    return run.previous().files.get(pub.model_path(formats.ICON_PT))


def library_bank(args: argparse.Namespace, catalog: Any) -> Any:
    """The icon library as an IconBank: catalogue names (or ``--class-list``) that have an icon.

    ``--icons DIR`` reads a SETS image cache; ``--synthetic-icons`` paints warpd.synth icons instead
    (tests, demos: a real deployment must use the real library, or the model learns the wrong art).
    """
    from central.crops import load_bank, render_bank

    names = sorted(catalog.all_names)
    if args.class_list:
        wanted = [n.strip() for n in Path(args.class_list).read_text(encoding="utf-8").splitlines() if n.strip()]
        unknown = [n for n in wanted if n not in catalog.all_names]
        if unknown:
            raise UsageError(f"--class-list names not in the catalogue: {unknown[:5]}")
        names = sorted(set(wanted))
    if args.icons:
        bank = load_bank(args.icons, names=names)
    elif args.synthetic_icons:
        bank = render_bank(names, icon_kind(catalog))
    else:
        raise UsageError("no icon library: pass --icons DIR (SETS's image cache) or --synthetic-icons")
    if len(bank) == 0:
        raise UsageError(f"the icon library {args.icons} has no icon of a catalogue item")
    return bank


def icon_kind(catalog: Any):
    """name -> warpd.synth.icons kind (equipment, trait, starship_trait, boff)."""
    traits = {t["name"] for t in catalog.traits}
    starship = set(catalog.starship_traits)
    boffs = {b["name"] for b in catalog.boff_abilities}

    def kind(name: str) -> str:
        if name in catalog.items:
            return "equipment"
        if name in starship:
            return "starship_trait"
        if name in traits:
            return "trait"
        return "boff" if name in boffs else "equipment"

    return kind


def training_bank(library: Any, result: Any, crops: dict[str, np.ndarray], crop_only: bool) -> tuple[Any, list[str]]:
    """Library icons plus, for winning labels without a library icon, a pseudo-icon from their best crop.

    Why: a class the community agrees on must not vanish because the library lacks its icon; its
    best-supported crop stands in for the icon (synthesis then re-frames and re-scales it).
    """
    from central.crops import IconBank
    from warpd.preprocess import resize
    from warpd.synth.icons import ICON_H, ICON_W

    icons = {n: library.icons[i] for i, n in enumerate(library.names)}
    extra: list[str] = []
    if crop_only:
        best: dict[str, tuple[tuple[int, int], str]] = {}
        for w in result.winners:
            if w.name in icons:
                continue
            present = [s for s in w.crop_shas if s in crops]
            if present and (w.name not in best or (w.votes, len(present)) > best[w.name][0]):
                best[w.name] = ((w.votes, len(present)), present[0])
        for name, (_rank, sha) in sorted(best.items()):
            icons[name] = resize(crops[sha], (ICON_H, ICON_W))
            extra.append(name)
    names = sorted(icons)
    return IconBank(names, np.stack([icons[n] for n in names])), extra


def community_crops(collected: Any, result: Any, regset: RegressionSet) -> tuple[list, list[str]]:
    """(winning crops as CommunityCrops grouped by ballot, crop shas held out).

    Grouped by ballot so near-duplicates never straddle train/val. A ballot that a regression item was
    proposed from, or holding a crop with a regression crop's pixels, is held out whole: those crops
    judge the model, they must not teach it (nor must their near-duplicates).
    """
    from central.crops import CommunityCrop
    from central.evaluate import pixel_key
    from central.vote import VoteResult, training_set

    origins, keys = regset.origin_shas(), regset.pixel_keys()
    kept, held_out = [], []
    for w in result.winners:
        present = [s for s in w.crop_shas if s in collected.crops]
        if origins & set(w.crop_shas) or any(pixel_key(collected.crops[s]) in keys for s in present):
            held_out += list(w.crop_shas)
        else:
            kept.append(w)
    crops = [CommunityCrop(crop, name, group=group)
             for crop, name, group in training_set(collected, VoteResult(kept, [], [], {}))]
    return crops, sorted(held_out)


def trained_by(previous: pub.Previous) -> set[str] | None:
    """Staging crops the published model was trained on (its manifest minus what it held out)."""
    if previous.manifest is None:
        return None
    return previous.manifest_shas() - set(previous.manifest.get("held_out_shas", []))


def evaluate_previous(run: Run) -> dict[str, Any] | None:
    """Score the published model on the regression set now (it times the evaluation for the reserve)."""
    from central.evaluate import evaluate_model_dir

    previous = run.previous()
    if previous.folder is None or not previous.has_icon_model:
        return None
    t = time.monotonic()
    try:
        result = evaluate_model_dir(previous.folder, run.regression(), run.args.eval_threads)
    except Exception as exc:  # a published model clients cannot load either: recorded, the gate decides
        record = {"error": f"{type(exc).__name__}: {exc}"[:300], "seconds": time.monotonic() - t}
    else:
        record = {"result": result.to_json(), "seconds": time.monotonic() - t, "digest": run.regression().digest()}
    write_json(run.path(OLD_EVAL_JSON), record)
    return record


def reserve_seconds(run: Run, old_eval: dict[str, Any] | None) -> float:
    """Seconds kept free after training for evaluation, export, report and publishing (see module doc)."""
    previous = run.previous()
    last = (previous.version.extra.get("timings_s") if previous.version else None) or {}
    n = len(run.regression())
    evaluate_s = (old_eval or {}).get("seconds") or 0.004 * n  # ~4 ms a crop on one CPU core when unmeasured
    export_s = float(last.get("export", run.args.reserve_export_s)) + float(last.get("report", 0.0))
    # (the upload cannot be measured into the commit that it uploads: a flag, sized for CI's network)
    publish_s = run.args.reserve_publish_s
    # (the trainer keeps its own --icon-reserve-s for its final evaluation and calibration, inside its budget)
    estimate = run.args.reserve_factor * (evaluate_s + export_s + publish_s)
    return max(run.args.min_reserve_minutes * 60.0, estimate)


def train_screens(run: Run, collected: Any, left_s: float) -> dict[str, Any]:
    """Train and export the screen classifier when allowed; never a model that did not train.

    Needs >= ``--screen-min-samples`` screenshots (after capping) of >= 2 types; gets at most
    ``--screen-budget-s`` or ``--screen-budget-share`` of the time left. A result with 0 epochs is
    discarded (the predecessor once uploaded a random head).
    """
    from central.train_icons import ScreenConfig
    from central.vote import cap_screens, screen_train_ok

    opts = vote_options(run.args)
    capped = cap_screens(collected.screens, cap=opts.screen_cap, min_n=opts.screen_cap_min, seed=opts.seed)
    samples = [(t, s) for t in sorted(capped) for s in capped[t]]
    cfg: ScreenConfig = _from_args(ScreenConfig, run.args, "screen_")
    cfg.min_samples = max(cfg.min_samples, opts.min_screens)  # two flags, one rule: the stricter wins
    if not screen_train_ok(len(samples), cfg.min_samples):
        return {"status": "not trained", "why": f"{len(samples)} screenshots (< {cfg.min_samples})"}
    if len({t for t, _ in samples}) < 2:
        return {"status": "not trained", "why": "screenshots of a single screen type"}
    cfg.budget_s = min(cfg.budget_s, run.args.screen_budget_share * left_s)
    with timed(run, "train_screens"):
        res = run_screen_training(run, samples, cfg)
    if res is None or res.epochs < 1:
        return {"status": "not trained", "why": "no epoch completed"}
    with timed(run, "export"):
        export_screen(res.model, res.labels, run.path(SCREEN_DIR), [s.rgb for _, s in samples[:4]])
    return {"status": "trained", "val_acc": res.val_acc, "val_is_train": res.val_is_train, "epochs": res.epochs,
            "n_samples": res.n_samples, "labels": res.labels}


def run_screen_training(run: Run, samples: list, cfg: Any) -> Any:
    from central.train_icons import train_screen_classifier

    backbone = None if run.args.no_finetune else run.previous().files.get(pub.model_path(formats.SCREEN_PT))
    images, labels, groups = [s.rgb for _, s in samples], [t for t, _ in samples], [s.install_id for _, s in samples]
    try:
        return train_screen_classifier(images, labels, cfg, init_backbone=backbone, groups=groups)
    except ValueError as exc:
        if backbone is None:
            raise
        log.warning("the published screen backbone does not fit (%s): training from scratch", exc)
        return train_screen_classifier(images, labels, cfg, groups=groups)


def export_screen(model: Any, labels: list[str], folder: Path, images: list[np.ndarray]) -> None:
    """screen_classifier.onnx (checked against torch to 1e-4), weights-only .pt and the labels file."""
    import io
    import warnings

    import torch

    from central.export import ONNX_OPSET, PARITY_TOL, onnx_session, parity_error
    from warpd.screen_type import screen_tensor

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    onnx_path = folder / formats.SCREEN_ONNX
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(2, 3, 224, 224),), str(onnx_path), input_names=["input"],
                          output_names=["logits"], opset_version=ONNX_OPSET,
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, dynamo=False)
    x = np.concatenate([screen_tensor(im) for im in images]).astype(np.float32)
    with torch.inference_mode():
        ref = model(torch.from_numpy(x)).numpy()
    sess = onnx_session(onnx_path)
    diff = parity_error(sess.run(None, {sess.get_inputs()[0].name: x})[0], ref)
    if not diff <= PARITY_TOL:
        onnx_path.unlink()
        raise ValueError(f"screen ONNX differs from torch by {diff:.2e}")
    buf = io.BytesIO()
    torch.save({k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}, buf)
    (folder / formats.SCREEN_PT).write_bytes(buf.getvalue())
    (folder / formats.SCREEN_LABELS).write_bytes(pub.json_bytes(formats.label_map_json(labels)))


def icon_config(args: argparse.Namespace) -> Any:
    """TrainConfig (with its AugmentConfig) from the ``--icon-*`` / ``--aug-*`` flags."""
    from central.crops import AugmentConfig
    from central.train_icons import TrainConfig

    cfg = _from_args(TrainConfig, args, "icon_", skip=("augment",))
    cfg.augment = _from_args(AugmentConfig, args, "aug_")
    if args.no_progress:
        cfg.progress = False
    return cfg


def _from_args(cls: type, args: argparse.Namespace, prefix: str, skip: Sequence[str] = ()) -> Any:
    values = {}
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        value = getattr(args, prefix + f.name)
        values[f.name] = tuple(value) if isinstance(value, list) else value
    return cls(**values)


# ============================================================================= evaluate
def stage_evaluate(run: Run) -> dict[str, Any]:
    """Score the candidate and the published model on the regression set, apply the gate, write the report."""
    from central.evaluate import EvalResult, evaluate_model_dir, gate
    from central.report import write_report

    record, result = load_vote(run)
    info = read_json(run.path(TRAIN_JSON), "train")
    previous = run.previous()
    regset = run.regression()
    with timed(run, "evaluate"):
        new = evaluate_model_dir(run.path(MODEL_DIR), regset, run.args.eval_threads)
        old_record = json.loads(run.path(OLD_EVAL_JSON).read_text()) if run.path(OLD_EVAL_JSON).is_file() else None
        if old_record is None or old_record.get("digest") != regset.digest():
            old_record = evaluate_previous(run)
        old = EvalResult.from_json(old_record["result"]) if old_record and "result" in old_record else None
    names = formats.parse_label_map(run.path(MODEL_DIR).joinpath(formats.LABEL_MAP).read_bytes())
    required = set(run.library().names)  # classes with data: library icons, and winning labels when trained
    if run.args.crop_only_classes:
        required |= {w.name for w in result.winners}
    summary = info["summary"]
    decision = gate(new, old, new_names=names, previous_names=previous.names if previous.has_icon_model else None,
                    required=required, catalogue=run.catalog.all_names, val_acc=summary.get("val_acc"),
                    opts=_from_args(GateOptions, run.args, "gate_"), unseen=regset.unseen_by(trained_by(previous)))
    problems = list(previous.problems)
    if old_record and "error" in old_record:
        problems.append(f"the published model could not be scored: {old_record['error']}")
    if problems and not run.args.force:
        decision.promote = False
        decision.reasons += [f"{p} (--force publishes anyway)" for p in problems]
    figures = dict(decision.figures, val_acc=summary.get("val_acc"), ece_val=summary.get("ece_calibrated"),
                   temperature=summary.get("temperature"), n_samples=info["n_community"], n_users=record["n_users"],
                   regression_source=regset.source, regression_digest=regset.digest(),
                   screen=info["screen"].get("status"), screen_val_acc=info["screen"].get("val_acc"),
                   screen_val_is_train=info["screen"].get("val_is_train"))
    evaluation = {"promote": decision.promote, "reasons": decision.reasons, "figures": figures,
                  "new": new.to_json(), "old": old.to_json() if old else None}
    write_json(run.path(EVAL_JSON), evaluation)
    with timed(run, "report"):
        write_report(run.path(REPORT_DIR), status="promoted" if decision.promote else "refused",
                     reasons=decision.reasons, figures=figures, new=new, old=old, history=info.get("history", ()),
                     vote=record["counts"], timings=run.timings)
    run.summary["evaluate"] = {"promote": decision.promote, "reasons": decision.reasons,
                               "regression_top1_new": new.top1, "regression_top1_old": old.top1 if old else None,
                               "regression_n": new.n, "regression_compared_n": figures["regression_compared_n"],
                               "regression_source": regset.source, "ece": new.ece}
    log.info("evaluate: regression top-1 %.4f (published: %s), ECE %.4f -> %s", new.top1,
             f"{old.top1:.4f}" if old else "none", new.ece, "promote" if decision.promote else
             "refuse: " + "; ".join(decision.reasons))
    return evaluation


# ============================================================================= publish
def stage_publish(run: Run) -> dict[str, Any]:
    """Stage the set, verify it as a client would, and commit it in ONE commit (unless --dry-run)."""
    evaluation = read_json(run.path(EVAL_JSON), "evaluate")
    if not evaluation["promote"]:
        raise Stop("refused", "; ".join(evaluation["reasons"]), EXIT_REFUSED)
    record, _result = load_vote(run)
    info = read_json(run.path(TRAIN_JSON), "train")
    pins = run.pins()
    previous = run.previous()
    with timed(run, "publish"):
        trained_at = pub.next_trained_at(previous.version)
        manifest = formats.manifest_json([s for w in record["winners"] for s in w["crop_shas"]], trained_at)
        manifest.update(staging_revision=record["staging_revision"], labels_sha256=record["labels_sha256"],
                        held_out_shas=info["held_out_shas"])
        screen_dir = run.path(SCREEN_DIR) if info["screen"].get("status") == "trained" else None
        files, screen_new = pub.stage_files(run.path(MODEL_DIR), screen_dir=screen_dir, previous=previous,
                                            corrections=record["corrections"], manifest=manifest,
                                            knowledge=formats.knowledge_json(record["knowledge"], trained_at))
        version = pub.build_version(
            files, version=f"{pub.stamp(trained_at)}-{record['staging_revision'][:8]}", trained_at=trained_at,
            n_classes=evaluation["figures"]["n_classes"], val_acc=evaluation["figures"]["val_acc"],
            n_samples=info["n_community"], n_users=record["n_users"],
            screen=info["screen"] if screen_new else None, previous=previous.version,
            extra=version_extra(run, evaluation, info, record))
        pub.verify(files, version, run.path(PUBLISH_DIR) / "client")
        repo_files = dict(files)
        repo_files[pub.VERSION_PATH] = pub.json_bytes(version.to_json())
        if run.args.commit_report and run.path(REPORT_DIR).is_dir():
            from central.report import report_files

            repo_files.update({f"reports/{pub.stamp(trained_at)}/{n}": d
                               for n, d in report_files(run.path(REPORT_DIR)).items()})
        pub.write_staged(repo_files, run.path(PUBLISH_DIR) / "repo")
        message = (f"central: models trained {formats.format_utc(trained_at)} from staging "
                   f"{record['staging_revision'][:12]} ({version.n_classes} classes, regression top-1 "
                   f"{evaluation['figures']['regression_top1_new']:.4f})")
        commit = None
        if not run.args.dry_run:
            commit = pub.commit(run.hub, run.args.knowledge, repo_files, message, parent=pins["knowledge_revision"])
    run.summary["publish"] = {"dry_run": run.args.dry_run, "commit": commit, "files": sorted(repo_files),
                              "trained_at": formats.format_utc(trained_at), "screen_new": screen_new}
    log.info("publish: %s (%d files)", f"commit {commit}" if commit else "dry run, nothing committed", len(repo_files))
    return run.summary["publish"]


def version_extra(run: Run, evaluation: dict[str, Any], info: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
    """The figures model_version.json carries beyond the predecessor's fields (see docs/central.md)."""
    f = evaluation["figures"]
    return {"regression_top1_new": f["regression_top1_new"], "regression_top1_old": f["regression_top1_old"],
            "regression_n": f["regression_n"], "regression_compared_n": f["regression_compared_n"],
            "regression_source": f["regression_source"], "ece": f["ece"],
            "ece_val": f["ece_val"], "temperature": f["temperature"], "staging_revision": record["staging_revision"],
            "finetuned": info["finetuned"], "steps": info["summary"]["steps"],
            "stop_reason": info["summary"]["stop_reason"], "crop_only_classes": len(info["crop_only_classes"]),
            "code_version": os.environ.get("GITHUB_SHA", "")[:12] or _warpd_version(),
            "timings_s": {k: v for k, v in run.timings.items()}}


def _warpd_version() -> str:
    import warpd

    return f"warpd {warpd.__version__}"


# ============================================================================= the train command
def fast_skip(run: Run) -> None:
    """Stop in seconds when the staging head is the revision the published manifest was trained from."""
    if run.args.force:
        return
    pins = run.pins()
    manifest = pub.read_previous_manifest(run.hub, run.args.knowledge, pins["knowledge_revision"])
    if manifest and manifest.get("staging_revision") == pins["staging_revision"]:
        raise Stop("skipped", f"staging unchanged since the published model (revision "
                              f"{pins['staging_revision'][:12]})")


def clear_work(work: Path) -> None:
    """A full run starts from an empty work folder (stale artefacts of another run must not leak in)."""
    for name in (COLLECT_DIR, VOTE_JSON, MODEL_DIR, EVAL_JSON, OLD_EVAL_JSON, REPORT_DIR, PUBLISH_DIR, PINS_JSON,
                 SUMMARY_JSON, TIMINGS_JSON, PREVIOUS_DIR):
        target = work / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()


def cmd_train(args: argparse.Namespace) -> int:
    """``warpd-central train``: the stages selected by ``--stage``, a summary, an exit code."""
    run = Run(args, Path(args.out))
    run.work.mkdir(parents=True, exist_ok=True)
    stages = STAGES if args.stage == "all" else (args.stage,)
    if args.stage == "all":
        clear_work(run.work)
    elif run.path(TIMINGS_JSON).is_file():  # earlier stages ran in other processes: their times count too
        run.timings.update(json.loads(run.path(TIMINGS_JSON).read_text()))
        for stage in stages:
            for key in STAGE_TIMINGS[stage]:
                run.timings.pop(key, None)
    status, reason, code = "published", "", EXIT_OK
    bar = _stage_bar(stages, args)
    try:
        if args.stage == "all":
            with timed(run, "pin"):
                fast_skip(run)
        for stage in stages:
            if bar is not None:
                bar.set_description(stage)
            STAGE_FUNCS[stage](run)
            if bar is not None:
                bar.update(1)
        if args.stage != "all" and args.stage != "publish":
            status = f"{args.stage} done"
        elif args.dry_run:
            status = "dry_run"
    except Stop as stop:
        status, reason, code = stop.status, stop.reason, stop.code
    except UsageError as exc:
        status, reason, code = "usage_error", str(exc), EXIT_USAGE
    except Exception as exc:  # the cron job reports, never dies with a bare traceback only
        from warpd.hub import HubConflict

        log.exception("the run failed")
        status, code = "error", EXIT_ERROR
        reason = (f"the knowledge repo moved since the run pinned it ({exc}); the next run starts over"
                  if isinstance(exc, HubConflict) else f"{type(exc).__name__}: {exc}")
    finally:
        if bar is not None:
            bar.close()
    write_json(run.path(TIMINGS_JSON), run.timings)
    run.summary.update(status=status, reason=reason, exit_code=code, seconds=round(time.monotonic() - run.t0, 2),
                       timings=run.timings, work=str(run.work))
    write_json(run.path(SUMMARY_JSON), run.summary)
    print_summary(run.summary, args.json)
    return code


STAGE_TIMINGS = {"collect": ("pin", "collect"), "vote": ("vote",),
                 "train": ("prepare", "train_screens", "train_icons", "export"),
                 "evaluate": ("evaluate", "report"), "publish": ("publish",)}
STAGE_FUNCS = {"collect": stage_collect, "vote": stage_vote, "train": stage_train, "evaluate": stage_evaluate,
               "publish": stage_publish}


def _stage_bar(stages: Sequence[str], args: argparse.Namespace) -> Any:
    if args.no_progress:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover
        return None
    return tqdm(total=len(stages), unit="stage", desc="central", file=sys.stderr, dynamic_ncols=True)


def print_summary(summary: dict[str, Any], as_json: bool) -> None:
    """JSON on stdout (``--json``) or a few readable lines."""
    if as_json:
        print(json.dumps(summary, indent=1, ensure_ascii=False, default=_json_default))
        return
    print(f"status: {summary['status']}" + (f" ({summary['reason']})" if summary.get("reason") else ""))
    ev = summary.get("evaluate")
    if ev:
        old = ev["regression_top1_old"]
        print(f"regression top-1: {ev['regression_top1_new']:.4f} (published: "
              f"{'none' if old is None else f'{old:.4f}'}), ECE {ev['ece']:.4f}")
    pubd = summary.get("publish")
    if pubd:
        print(f"published: {pubd['commit'] or 'dry run'} ({len(pubd['files'])} files, trained_at {pubd['trained_at']})")
    print(f"took {summary['seconds']:.1f} s; work folder {summary['work']}")


# ============================================================================= regression set commands
def cmd_regression(args: argparse.Namespace) -> int:
    """``warpd-central regression init|propose|push``: how the pinned regression set is made and grown."""
    from central import evaluate as ev

    try:
        if args.action == "init":
            from warpd.catalog import Catalog

            bank = library_bank(args, Catalog.load(args.catalog))
            regset = ev.generate_regression_set(bank, args.regression_per_class)
            ev.write_folder(Path(args.out), ev.regression_files(regset, note="generated"))
            print(f"wrote {len(regset)} crops to {args.out}: review them, then "
                  f"`warpd-central regression push {args.out}`")
        elif args.action == "propose":
            n = propose_regression(Path(args.work), Path(args.out), args.min_votes)
            print(f"wrote {n} candidate crops to {args.out}: delete wrong lines/crops, then push")
        else:
            commit = push_regression(args)
            print(f"committed {commit}")
    except (UsageError, formats.FormatError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


def propose_regression(work: Path, out: Path, min_votes: int) -> int:
    """One crop of every ballot at least ``min_votes`` installs agreed on, for a maintainer to review."""
    from central import evaluate as ev
    from central.collect import encode_png

    record = read_json(work / VOTE_JSON, "vote")
    with np.load(work / COLLECT_DIR / "crops.npz") as z:
        crops = {k: z[k] for k in z.files}
    files: dict[str, bytes] = {}
    lines = []
    for w in record["winners"]:
        if w["votes"] < min_votes:
            continue
        sha = next((s for s in w["crop_shas"] if s in crops), None)
        if sha is None:
            continue
        data = encode_png(crops[sha])
        real = formats.sha256_hex(data)
        files[f"{ev.REGRESSION_DIR}/crops/{real}.png"] = data
        lines.append(ev.regression_line(real, w["name"], f"ballot {w['ballot_id']}: {w['votes']} installs",
                                        origins=w["crop_shas"]))
    files[ev.REGRESSION_LABELS] = "".join(line + "\n" for line in sorted(lines)).encode("utf-8")
    ev.write_folder(out, files)
    return len(lines)


def push_regression(args: argparse.Namespace) -> str:
    """Commit a reviewed folder to ``regression/``, merged with the set already pinned there (ONE commit)."""
    from central import evaluate as ev

    hub = open_hub(args.endpoint, timeout_s=args.timeout_s, retries=args.retries)
    files = ev.read_regression_folder(Path(args.folder))
    head = pub.knowledge_head(hub, args.knowledge)
    old = (hub.read_optional(args.knowledge, ev.REGRESSION_LABELS, repo_type=pub.REPO_TYPE, revision=head)
           if head is not None else None)
    files[ev.REGRESSION_LABELS] = ev.merge_labels(old, files[ev.REGRESSION_LABELS])
    return pub.commit(hub, args.knowledge, files, args.message, parent=head)


def cmd_icons(args: argparse.Namespace) -> int:
    """Mirror the icon library from a Hub repo into ``--out`` (incremental; see central.library)."""
    from central.library import fetch_library
    from warpd.hub import HubError

    hub = open_hub(args.endpoint, timeout_s=args.timeout_s, retries=args.retries)
    try:
        report = fetch_library(hub, args.repo, args.out, prefix=args.prefix, repo_type=args.repo_type,
                               workers=args.workers)
    except HubError as exc:
        log.error("Could not read the icon library repo %s: %s. The folder is as it was; run it again later.",
                  args.repo, exc)
        return EXIT_ERROR
    if args.json:
        print(json.dumps(report.as_json(), indent=1))
    else:
        print(f"icon library {args.out} at {args.repo}@{report.revision[:12]}: {report.listed} icons, "
              f"{report.downloaded} downloaded, {report.unchanged} unchanged, {report.removed} removed, "
              f"{sum(report.rejected.values())} refused, {len(report.failed)} failed ({report.seconds:.1f} s)")
    for reason, n in sorted(report.rejected.items()):
        log.warning("%d file(s) refused: %s", n, reason)
    for name, why in sorted(report.failed.items())[:10]:
        log.warning("Not downloaded (kept as it was): %s: %s", name, why)
    return EXIT_OK if report.listed else EXIT_ERROR


# ============================================================================= parser
def _add_hub_flags(p: argparse.ArgumentParser, repos: bool = True) -> None:
    g = p.add_argument_group("hub")
    if repos:
        g.add_argument("--staging", default=DEFAULT_STAGING, help="staging dataset repo (what clients upload to)")
        g.add_argument("--knowledge", default=DEFAULT_KNOWLEDGE, help="knowledge model repo (what clients download)")
    g.add_argument("--endpoint", default=os.environ.get("WARPD_CENTRAL_ENDPOINT", DEFAULT_ENDPOINT),
                   help="Hub URL, or dir:PATH for a folder-backed hub; token from $HF_TOKEN or $WARPD_HF_TOKEN")
    g.add_argument("--timeout-s", type=float, default=60.0, help="seconds before one Hub request gives up")
    g.add_argument("--retries", type=int, default=4, help="tries per Hub request on 5xx/429/timeouts")


def _add_library_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("icon library (the class list)")
    g.add_argument("--icons", type=Path, help="SETS image cache folder (<quote_plus(name)>.png): the icon library")
    g.add_argument("--synthetic-icons", action="store_true",
                   help="paint warpd.synth icons instead of a real library (tests and demos only)")
    g.add_argument("--class-list", type=Path, help="restrict the classes to the names in this file (one a line)")
    g.add_argument("--catalog", type=Path, help="catalogue folder (default: the one bundled with warpd)")
    g.add_argument("--regression-per-class", type=int, default=2,
                   help="crops per class of the generated regression set (when the repo has no pinned set)")


def _dataclass_group(p: argparse.ArgumentParser, title: str, cls: type, prefix: str) -> None:
    from central.train_icons import _add_dataclass_flags

    _add_dataclass_flags(p.add_argument_group(f"{title} ({cls.__module__}.{cls.__name__}; see its docs)"), cls, prefix)


def build_parser() -> argparse.ArgumentParser:
    fmt = argparse.ArgumentDefaultsHelpFormatter
    parser = argparse.ArgumentParser(prog="warpd-central", description=__doc__.split("\n\n")[0], formatter_class=fmt)
    sub = parser.add_subparsers(dest="command", metavar="<command>", required=True)

    t = sub.add_parser("train", help="collect, vote, train, evaluate, publish (or one stage)", formatter_class=fmt,
                       description="The community training run. " + __doc__.split("\n\n")[1])
    t.add_argument("--stage", choices=("all", *STAGES), default="all", help="run one stage (reads earlier stages' "
                   "artefacts from --out) or all")
    t.add_argument("--out", type=Path, default=Path("central-work"), help="work folder for the artefacts and report")
    t.add_argument("--force", action="store_true", help="train even when the data did not change; publish even when "
                   "the published model cannot be scored (the gate still applies)")
    t.add_argument("--dry-run", action="store_true", help="do everything except the commit")
    t.add_argument("--budget-minutes", type=float, default=45.0, help="wall-clock budget of the whole run")
    t.add_argument("--min-reserve-minutes", type=float, default=3.0,
                   help="least time kept after training for evaluation, export and publishing")
    t.add_argument("--reserve-factor", type=float, default=1.5, help="safety factor on the measured reserve")
    t.add_argument("--reserve-export-s", type=float, default=30.0,
                   help="export + report time assumed when the published model_version.json has no timings")
    t.add_argument("--reserve-publish-s", type=float, default=60.0,
                   help="time kept for staging, verifying and uploading the commit (~40 MB)")
    t.add_argument("--min-train-minutes", type=float, default=1.0,
                   help="exit (code 4) instead of training when less than this is left")
    t.add_argument("--screen-budget-share", type=float, default=0.15,
                   help="most of the training time the screen classifier may take")
    t.add_argument("--workers", type=int, default=8, help="parallel downloads while collecting")
    t.add_argument("--eval-threads", type=int, default=2, help="ONNX Runtime threads for the regression evaluation")
    t.add_argument("--knowledge-min-votes", type=int, default=2,
                   help="installs that must agree on a ballot before its pHashes enter knowledge.json")
    t.add_argument("--crop-only-classes", action=argparse.BooleanOptionalAction, default=True,
                   help="train winning labels without a library icon (their best crop stands in for the icon)")
    t.add_argument("--no-finetune", action="store_true", help="train from scratch, not from the published backbones")
    t.add_argument("--commit-report", action=argparse.BooleanOptionalAction, default=True,
                   help="commit the report as reports/<trained_at>/ with the models (not listed for clients)")
    t.add_argument("--json", action="store_true", help="print the summary as JSON")
    t.add_argument("--no-progress", action="store_true", help="no progress bars (they go to stderr)")
    t.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    _add_hub_flags(t)
    _add_library_flags(t)
    g = t.add_argument_group("promotion gate (central.evaluate.GateOptions)")
    for f in dataclasses.fields(GateOptions):
        flag = "--gate-" + f.name.replace("_", "-")
        if isinstance(f.default, bool):
            g.add_argument(flag, dest="gate_" + f.name, action=argparse.BooleanOptionalAction, default=f.default)
        else:
            g.add_argument(flag, dest="gate_" + f.name, type=type(f.default), default=f.default)
    from central.crops import AugmentConfig
    from central.train_icons import ScreenConfig, TrainConfig

    _dataclass_group(t, "vote", VoteOptions, "vote-")
    _dataclass_group(t, "icon training (budget_s is set from --budget-minutes)", TrainConfig, "icon-")
    _dataclass_group(t, "icon augmentation", AugmentConfig, "aug-")
    _dataclass_group(t, "screen training", ScreenConfig, "screen-")
    t.set_defaults(func=cmd_train)

    r = sub.add_parser("regression", help="make, propose and push the pinned regression set", formatter_class=fmt,
                       description=cmd_regression.__doc__)
    rs = r.add_subparsers(dest="action", metavar="<action>", required=True)
    init = rs.add_parser("init", help="write the generated set as files for review", formatter_class=fmt)
    init.add_argument("--out", type=Path, required=True, help="folder to write labels.jsonl and crops/ into")
    _add_library_flags(init)
    prop = rs.add_parser("propose", help="candidates from well-agreed ballots of a work folder", formatter_class=fmt)
    prop.add_argument("--work", type=Path, default=Path("central-work"), help="a work folder after the vote stage")
    prop.add_argument("--out", type=Path, required=True, help="folder to write the candidates into")
    prop.add_argument("--min-votes", type=int, default=3, help="installs that must agree on a ballot")
    push = rs.add_parser("push", help="commit a reviewed folder to regression/ (merged)", formatter_class=fmt)
    push.add_argument("folder", type=Path, help="a reviewed folder (labels.jsonl + crops/)")
    push.add_argument("--message", default="regression set: reviewed additions", help="commit message")
    _add_hub_flags(push)
    r.set_defaults(func=cmd_regression)

    i = sub.add_parser("icons", help="mirror the icon library (<quote_plus(name)>.png) from a Hub repo into a folder",
                       formatter_class=fmt, description=cmd_icons.__doc__)
    i.add_argument("--repo", required=True, help="the Hub repo holding the icons")
    i.add_argument("--repo-type", default="dataset", choices=("dataset", "model"), help="that repo's type")
    i.add_argument("--prefix", default="", help="folder of the icons inside the repo")
    i.add_argument("--out", type=Path, required=True, help="the local icon library folder (what --icons reads)")
    i.add_argument("--workers", type=int, default=8, help="parallel downloads")
    i.add_argument("--json", action="store_true", help="print the report as JSON")
    _add_hub_flags(i, repos=False)
    i.set_defaults(func=cmd_icons)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``warpd-central`` / ``python -m central``."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if getattr(args, "verbose", False) else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
