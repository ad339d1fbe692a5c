"""The promotion gate: a fixed regression set, scored the way clients score, and the rules a new model must pass.

Why a regression set, and why this one (../shared/reference/community-pipeline.md): the predecessor's
validation was re-randomised every run, so its val_acc could not say whether a new model was better
than the published one, and worse models were uploaded. Here both models, the published one and the
candidate, are scored on the SAME crops in the same run:

* **Pinned set (preferred).** ``regression/labels.jsonl`` + ``regression/crops/<sha256>.png`` in the
  knowledge repo, read at the run's pinned knowledge revision. It changes only by a maintainer's commit
  (``warpd-central regression propose`` writes candidates from well-agreed community ballots into a
  folder for review; ``warpd-central regression push`` commits a reviewed folder). Its crops are never
  trained on: the trainer holds out every ballot a regression item was proposed from (``source_shas``
  in its line) or whose pixels equal a regression crop, and the manifest records them
  (``held_out_shas``). The published model may have trained on an item added since, which would
  flatter it, so rule (a) compares both models only on items the published model never trained on
  (its manifest's crops minus its held-out ones).
* **Generated set (fallback, when the repo has none).** ``per_class`` synthetic crops per library icon,
  each class drawn from its own generator seeded by ``(REGRESSION_SEED, sha256(name))``, so adding or
  removing a class never changes another class's crops. The training stream uses other seeds. It is
  a paired comparison within one run either way, so it is fair even though it is not stored; it
  drifts only when the library's icon of a class changes. ``warpd-central regression init`` writes it
  as files so a maintainer can pin it.

Scoring is the client's exact path: :func:`warpd.models.load_icon_classifier` (ONNX Runtime, the meta
file's checks) and :func:`warpd.preprocess.icon_batch`, top-1 over ALL classes (the daemon narrows to
a slot's candidates, so this is the harder question). A regression label the model does not know
counts as wrong: a model that lost a class loses its crops here too.

The gate (:func:`gate`): a candidate is promoted only when

(a) its regression top-1 is at least the published model's minus ``tolerance`` (default 0: not worse),
    and at least ``min_top1`` in absolute terms (a first model has nothing to compare with: the
    predecessor once shipped a random head);
(b) it keeps every class that still has data: no class of the published model that is still in the
    catalogue may be missing (the predecessor shipped 1,592 of 3,187 classes after a silent download
    loss of the icon library), and n_classes may not fall by more than ``max_class_drop``;
(c) its numbers are finite (val_acc, regression top-1, ECE).

Calibration: the ECE reported is the top-1 expected calibration error of the calibrated probabilities
(``softmax(logits / T)``, T fitted by the trainer and folded into the ONNX file) on the regression set.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from warpd import formats
from warpd.formats import FormatError
from warpd.hub import Hub

REGRESSION_DIR = "regression"
REGRESSION_LABELS = f"{REGRESSION_DIR}/labels.jsonl"
REGRESSION_SEED = 20250117  # fixed forever: changing it changes the generated set
EVAL_BATCH = 256


@dataclass
class RegressionSet:
    """Crops (uint8 RGB, any size) with their true item names; ``source`` says where they came from."""

    crops: list[np.ndarray]
    labels: list[str]
    source: str
    shas: list[str] = field(default_factory=list)
    origins: list[tuple[str, ...]] = field(default_factory=list)
    """Per crop, the staging crop shas of the ballot it was proposed from (empty: not from staging)."""

    def __len__(self) -> int:
        return len(self.labels)

    def origin_shas(self) -> set[str]:
        """Every staging crop a regression item came from: held out of training."""
        return {sha for o in self.origins for sha in o}

    def pixel_keys(self) -> set[str]:
        """Pixel fingerprints of the crops: an uploaded copy of a regression crop is held out too."""
        return {pixel_key(c) for c in self.crops}

    def unseen_by(self, trained: set[str] | None) -> list[bool]:
        """Which items a model trained on the staging crops ``trained`` has not seen (None: all unseen)."""
        origins = self.origins or [()] * len(self)
        return [not trained or not (set(o) & trained) for o in origins]

    def digest(self) -> str:
        """A short fingerprint of the set (labels and pixels), recorded with the results."""
        h = hashlib.sha256()
        for crop, label in zip(self.crops, self.labels):
            h.update(label.encode("utf-8"))
            h.update(np.ascontiguousarray(crop).tobytes())
        return h.hexdigest()[:16]


# ------------------------------------------------------------------------------ the set
def pixel_key(crop: np.ndarray) -> str:
    """A fingerprint of a decoded crop's pixels (PNG encoders differ, pixels do not)."""
    arr = np.ascontiguousarray(crop)
    return hashlib.sha256(repr(arr.shape).encode() + arr.tobytes()).hexdigest()[:24]


def regression_line(sha: str, name: str, note: str = "", origins: Sequence[str] = ()) -> str:
    """One labels.jsonl line: ``crop_sha256``, ``name``, optional ``note`` and ``source_shas`` (the
    staging crops of the ballot it was proposed from)."""
    record: dict[str, Any] = {"crop_sha256": sha, "name": name}
    if note:
        record["note"] = note
    if origins:
        record["source_shas"] = sorted(origins)
    return json.dumps(record, ensure_ascii=False, sort_keys=True)


def parse_regression_lines(text: bytes | str) -> list[tuple[str, str, tuple[str, ...]]]:
    """labels.jsonl -> [(sha, name, source shas)]; a malformed line is an error (the set is reviewed)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    out = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            sha, name = record["crop_sha256"], formats.validate_label(record["name"])
            origins = tuple(str(o) for o in record.get("source_shas", ()))
        except (ValueError, KeyError, TypeError) as exc:
            raise FormatError(f"{REGRESSION_LABELS}:{number}: {exc}") from exc
        if not formats.is_crop_sha(sha) or not all(formats.is_crop_sha(o) for o in origins):
            raise FormatError(f"{REGRESSION_LABELS}:{number}: crop_sha256 or source_shas is not hex")
        out.append((sha, name, origins))
    return out


def load_regression_set(hub: Hub, repo: str, revision: str | None, *, repo_type: str = "model"
                        ) -> RegressionSet | None:
    """The pinned set from the knowledge repo at ``revision``, or None when the repo has none.

    Every crop must be there and hash to its name: a set with a hole would compare models on
    different questions from one run to the next, so a problem raises instead of shrinking the set.
    """
    from central.collect import decode_png, sha_matches

    if revision is None:
        return None
    text = hub.read_optional(repo, REGRESSION_LABELS, repo_type=repo_type, revision=revision)
    if text is None:
        return None
    crops, labels, shas, origins = [], [], [], []
    for sha, name, origin in parse_regression_lines(text):
        data = hub.read_bytes(repo, f"{REGRESSION_DIR}/crops/{sha}.png", repo_type=repo_type, revision=revision)
        if not sha_matches(data, sha):
            raise FormatError(f"{REGRESSION_DIR}/crops/{sha}.png does not hash to its name")
        crops.append(decode_png(data, min_side=8, max_side=512, max_pixels=512 * 512))
        labels.append(name)
        shas.append(sha)
        origins.append(origin)
    return RegressionSet(crops, labels, f"{repo}@{revision[:12]}:{REGRESSION_DIR}/", shas, origins)


def class_seed(name: str, seed: int = REGRESSION_SEED) -> list[int]:
    """A generator seed for one class: fixed by (seed, name) on every machine."""
    return [seed, int(hashlib.sha256(name.encode("utf-8")).hexdigest()[:8], 16)]


def generate_regression_set(bank: Any, per_class: int = 2, seed: int = REGRESSION_SEED) -> RegressionSet:
    """``per_class`` synthetic screenshot crops of every library icon, deterministically (see module doc)."""
    from central.crops import AugmentConfig, synth_crops

    cfg = AugmentConfig()
    crops: list[np.ndarray] = []
    labels: list[str] = []
    for index, name in enumerate(bank.names):
        rng = np.random.default_rng(class_seed(name, seed))
        crops += synth_crops(bank, np.full(per_class, index), rng, cfg)
        labels += [name] * per_class
    return RegressionSet(crops, labels, f"generated from the icon library (seed {seed}, {per_class} per class)")


def regression_files(regset: RegressionSet, note: str = "") -> dict[str, bytes]:
    """The set as knowledge-repo files (``regression/labels.jsonl`` + crops), for review and commit."""
    from central.collect import encode_png

    files: dict[str, bytes] = {}
    lines = []
    for crop, label in zip(regset.crops, regset.labels):
        data = encode_png(crop)
        sha = formats.sha256_hex(data)
        files[f"{REGRESSION_DIR}/crops/{sha}.png"] = data
        lines.append(regression_line(sha, label, note))
    files[REGRESSION_LABELS] = ("\n".join(sorted(set(lines))) + "\n").encode("utf-8")
    return files


def read_regression_folder(folder: Path) -> dict[str, bytes]:
    """A reviewed folder (``labels.jsonl`` + ``crops/``) as repo files; every listed crop must exist."""
    folder = Path(folder)
    lines = parse_regression_lines((folder / "labels.jsonl").read_bytes())
    files = {REGRESSION_LABELS: (folder / "labels.jsonl").read_bytes()}
    for sha, _name, _origins in lines:
        data = (folder / "crops" / f"{sha}.png").read_bytes()
        if formats.sha256_hex(data)[:len(sha)] != sha:
            raise FormatError(f"crops/{sha}.png does not hash to its name")
        files[f"{REGRESSION_DIR}/crops/{sha}.png"] = data
    return files


def write_folder(folder: Path, files: Mapping[str, bytes]) -> None:
    """Repo files under ``regression/`` written to ``folder`` without that prefix (for review)."""
    for path, data in files.items():
        target = Path(folder) / path.removeprefix(f"{REGRESSION_DIR}/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def merge_labels(old: bytes | None, new: bytes) -> bytes:
    """labels.jsonl of the pinned set plus reviewed additions (a crop listed twice keeps its first label)."""
    seen: dict[str, tuple[str, tuple[str, ...]]] = {}
    for text in (old or b"", new):
        for sha, name, origins in parse_regression_lines(text):
            seen.setdefault(sha, (name, origins))
    return "".join(regression_line(sha, name, origins=origins) + "\n"
                   for sha, (name, origins) in sorted(seen.items())).encode("utf-8")


# ------------------------------------------------------------------------------ scoring
@dataclass
class EvalResult:
    """One model on the regression set: top-1, ECE and what the report needs (per-crop answers)."""

    top1: float
    ece: float
    n: int
    n_classes: int
    labels: list[str] = field(default_factory=list)
    predicted: list[str] = field(default_factory=list)
    confidence: list[float] = field(default_factory=list)
    unknown_labels: int = 0

    def summary(self) -> dict[str, Any]:
        """The numbers without the per-crop lists."""
        return {"top1": self.top1, "ece": self.ece, "n": self.n, "n_classes": self.n_classes,
                "unknown_labels": self.unknown_labels}

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "EvalResult":
        return cls(**{k: data[k] for k in ("top1", "ece", "n", "n_classes", "labels", "predicted", "confidence",
                                            "unknown_labels") if k in data})


def evaluate_model_dir(folder: Path, regset: RegressionSet, threads: int = 1) -> EvalResult:
    """Score the ONNX icon classifier in ``folder`` exactly as the daemon runs it."""
    from warpd.models import load_icon_classifier

    clf = load_icon_classifier(Path(folder), threads)
    if clf is None:
        raise FileNotFoundError(f"{folder} has no {formats.ICON_ONNX}")
    return evaluate_classifier(clf, regset)


def evaluate_classifier(clf: Any, regset: RegressionSet) -> EvalResult:
    """Top-1 (by name), calibrated top-1 confidence and ECE of an :class:`warpd.models.OnnxClassifier`."""
    from warpd.icon_index import expected_calibration_error
    from warpd.preprocess import icon_batch

    predicted: list[str] = []
    confidence: list[float] = []
    for start in range(0, len(regset), EVAL_BATCH):
        probs = clf.probabilities(icon_batch(regset.crops[start:start + EVAL_BATCH]))
        predicted += [clf.labels[i] for i in probs.argmax(1)]
        confidence += [float(c) for c in probs.max(1)]
    correct = np.array([p == t for p, t in zip(predicted, regset.labels)], bool)
    known = set(clf.labels)
    top1 = float(correct.mean()) if len(correct) else float("nan")
    ece = float(expected_calibration_error(np.array(confidence), correct)) if len(correct) else float("nan")
    return EvalResult(top1, ece, len(regset), len(clf.labels), list(regset.labels), predicted, confidence,
                      sum(1 for t in regset.labels if t not in known))


def subset_top1(result: EvalResult, mask: Sequence[bool]) -> float | None:
    """Top-1 over the items ``mask`` selects; None when it selects none."""
    hits = [p == t for p, t, m in zip(result.predicted, result.labels, mask) if m]
    return float(np.mean(hits)) if hits else None


def model_check_from(clf: Any):
    """A ``central.vote.ModelCheck`` from the published classifier: crops -> [(top-1 name, probability)]."""
    from warpd.preprocess import icon_batch

    def check(crops: list[np.ndarray]) -> list[tuple[str, float]]:
        out: list[tuple[str, float]] = []
        for start in range(0, len(crops), EVAL_BATCH):
            probs = clf.probabilities(icon_batch(crops[start:start + EVAL_BATCH]))
            out += [(clf.labels[int(i)], float(p[int(i)])) for i, p in zip(probs.argmax(1), probs)]
        return out

    return check


# ------------------------------------------------------------------------------ analysis (for the report)
def per_class_accuracy(result: EvalResult) -> dict[str, tuple[int, int]]:
    """name -> (correct, total) on the regression set."""
    totals: Counter = Counter(result.labels)
    hits: Counter = Counter(t for t, p in zip(result.labels, result.predicted) if t == p)
    return {name: (hits[name], n) for name, n in sorted(totals.items())}


def confused_pairs(result: EvalResult, top: int = 15) -> list[tuple[str, str, int]]:
    """The most frequent (true, predicted) mistakes."""
    pairs = Counter((t, p) for t, p in zip(result.labels, result.predicted) if t != p)
    return [(t, p, n) for (t, p), n in pairs.most_common(top)]


def reliability_bins(result: EvalResult, bins: int = 10) -> list[dict[str, float]]:
    """Per confidence bin: mean confidence, accuracy and count (the reliability diagram's data)."""
    conf = np.asarray(result.confidence, float)
    correct = np.array([p == t for p, t in zip(result.predicted, result.labels)], float)
    which = np.minimum((conf * bins).astype(int), bins - 1)  # the binning of expected_calibration_error
    out = []
    for b in range(bins):
        mask = which == b
        n = int(mask.sum())
        out.append({"lo": b / bins, "hi": (b + 1) / bins, "n": n,
                    "confidence": float(conf[mask].mean()) if n else float("nan"),
                    "accuracy": float(correct[mask].mean()) if n else float("nan")})
    return out


# ------------------------------------------------------------------------------ the gate
@dataclass
class GateOptions:
    """The promotion rules (each one a ``--flag`` of ``warpd-central train``)."""

    tolerance: float = 0.0
    """How much lower than the published model's regression top-1 the candidate may score (0: not worse)."""
    min_top1: float = 0.5
    """Absolute floor on the candidate's regression top-1 (what a first model must reach)."""
    max_class_drop: float = 0.0
    """Largest fraction by which n_classes may fall relative to the published model."""
    allow_class_loss: bool = False
    """Allow published classes that are still in the catalogue to disappear (a deliberate pruning)."""


@dataclass
class GateDecision:
    """Whether to promote, why not (every failed rule), and the figures it looked at."""

    promote: bool
    reasons: list[str]
    figures: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def lost_classes(previous: Sequence[str], new: Iterable[str], still_valid: Iterable[str]) -> list[str]:
    """Classes of the published model missing from the candidate that still exist (in the catalogue)."""
    new_set, valid = set(new), set(still_valid)
    return sorted(c for c in previous if c not in new_set and c in valid)


def gate(new: EvalResult, old: EvalResult | None, *, new_names: Sequence[str], previous_names: Sequence[str] | None,
         required: Iterable[str], catalogue: Iterable[str], val_acc: float | None,
         opts: GateOptions | None = None, unseen: Sequence[bool] | None = None) -> GateDecision:
    """Apply rules (a)-(c) of the module doc; ``required`` are the classes with data this run.

    ``unseen`` marks the regression items the published model was not trained on: rule (a) compares
    both models on those only (an item proposed from a ballot the published model trained on would
    flatter it: the candidate holds such ballots out). The floor applies to the whole set.
    """
    opts = opts or GateOptions()
    reasons: list[str] = []
    mask = list(unseen) if unseen is not None else [True] * new.n
    old_top1 = old.top1 if old is not None else None
    old_cmp = subset_top1(old, mask) if old is not None else None
    new_cmp = subset_top1(new, mask)
    figures: dict[str, Any] = {"regression_top1_new": new.top1, "regression_top1_old": old_top1,
                               "regression_n": new.n, "regression_compared_n": sum(mask),
                               "regression_compared_top1_new": new_cmp, "regression_compared_top1_old": old_cmp,
                               "ece": new.ece, "n_classes": len(new_names),
                               "previous_n_classes": len(previous_names) if previous_names is not None else None}
    for what, value in (("regression top-1", new.top1), ("ECE", new.ece), ("val_acc", val_acc)):
        if value is None or not math.isfinite(float(value)):
            reasons.append(f"{what} is not a finite number ({value})")
    if math.isfinite(new.top1):
        if new.top1 < opts.min_top1:
            reasons.append(f"regression top-1 {new.top1:.4f} is below the floor {opts.min_top1:.4f}")
        if old_cmp is not None and new_cmp is not None and new_cmp < old_cmp - opts.tolerance:
            reasons.append(f"regression top-1 {new_cmp:.4f} is worse than the published model's {old_cmp:.4f} "
                           f"on {sum(mask)} crops it was not trained on (tolerance {opts.tolerance:.4f})")
    missing = sorted(set(required) - set(new_names))
    if missing:
        reasons.append(f"{len(missing)} class(es) with data are missing, e.g. {missing[:5]}")
    if previous_names is not None:
        lost = lost_classes(previous_names, new_names, catalogue)
        figures["lost_classes"] = len(lost)
        if lost and not opts.allow_class_loss:
            reasons.append(f"{len(lost)} published class(es) still in the catalogue would disappear, e.g. {lost[:5]} "
                           "(an icon library download loss?)")
        floor = len(previous_names) * (1.0 - opts.max_class_drop)
        if len(new_names) < floor and not opts.allow_class_loss:
            reasons.append(f"n_classes falls from {len(previous_names)} to {len(new_names)} "
                           f"(more than {opts.max_class_drop:.0%})")
    return GateDecision(not reasons, reasons, figures)


__all__ = [
    "EvalResult", "GateDecision", "GateOptions", "REGRESSION_DIR", "REGRESSION_LABELS", "REGRESSION_SEED",
    "RegressionSet", "confused_pairs", "evaluate_classifier", "evaluate_model_dir", "gate", "generate_regression_set",
    "load_regression_set", "lost_classes", "merge_labels", "model_check_from", "parse_regression_lines",
    "per_class_accuracy", "pixel_key", "read_regression_folder", "regression_files", "reliability_bins",
    "subset_top1", "write_folder",
]
