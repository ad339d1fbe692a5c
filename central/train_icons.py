"""Train the icon classifier (and the small screen classifier) on CPU within a wall-clock budget.

One readable loop in the timm style; every knob is a :class:`TrainConfig` field and a CLI flag.

What it fixes from the predecessor (../shared/reference/community-pipeline.md):

* **cold start**: the icon library is the training set; :mod:`central.crops` synthesises crops the way
  the game shows them (rarity frame, 720p..4K slot sizes, bbox error, blur, JPEG, tone), never flipped;
* **compute**: native 64x48 input (no 224 upsampling), channels-last, batches made by a background
  thread while torch trains, and a budget that always stops in time, leaving ``reserve_s`` for export;
* **validation**: a fixed, seeded validation set (``val_seed`` is independent of the training seed, so
  val accuracy is comparable between model versions); community crops are split by group (a
  screenshot, a near-duplicate cluster) so no near-copy of a val crop is trained on;
* **calibration**: plain (optionally label-smoothed) cross entropy, then one temperature fitted on
  the validation logits (no focal loss: it made the old screen model under-confident);
* **reproducibility**: every random stream is seeded; with ``max_steps`` (no binding time budget) two
  runs give identical weights. A run cut by the clock is reproducible only up to where it stopped.

**Head**: a cosine head trained by SGD, whose rows are replaced at the end by class prototypes of the
trained backbone (:class:`RunningPrototypes`, :func:`class_prototypes`): with thousands of classes a
CPU run updates each row only a few dozen times, while one forward pass of a few fresh crops per
class places it where the backbone puts that class (1000 classes: 40% -> 73%).

Class imbalance is handled exactly once, by **sampling**: synthetic classes are drawn uniformly and
community crops with probability ∝ 1 / (crops of their class). Per-class *loss* weights are not used
as well, because (a) synthetic data is balanced anyway, (b) sampling keeps the loss an unweighted NLL
of a balanced mix, so the temperature fitted afterwards calibrates probabilities instead of undoing a
weighting, and (c) doing both would correct the imbalance twice. The only loss weights are for hard
cases (crops the previous model got wrong), capped at ``weight_cap`` (3x) so a few confusing crops
cannot dominate a batch.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import queue
import random
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from central.crops import (AugmentConfig, CommunityCrop, IconBank, group_split, near_duplicate_groups,
                           rarity_overlays, recut_community, synth_batch)
from warpd.preprocess import normalise_batch
from central.parallel import Solo
from central.models import (CLASSIFIER_PREFIX, CosineLinear, fast_depthwise, fast_squeeze_excite, fit_temperature,
                            icon_model, inplace_activations, load_backbone, screen_model, softmax_np)

try:  # the bar is a nicety: never let its absence stop a cron run
    from tqdm.auto import tqdm
except ImportError:  # pragma: no cover
    tqdm = None

MIN_SCREEN_SAMPLES = 7  # the predecessor's rule: fewer screenshots than this train no screen model


# ============================================================================= configuration
@dataclass
class TrainConfig:
    """Every knob of an icon-classifier run (each is also a ``--flag`` of the CLI).

    Defaults chosen by measurement (bench/central.py and 300-class x 120 s runs on 1 thread of a
    2-core machine shared with other work, so timings are noisy; held-out top-1 on fresh crops):

    * ``head="cosine"``: normalised-softmax head. 300 classes in 120 s: linear 44% -> cosine 84%
      (same steps). The gap is the many-class, few-crops-per-class regime of a short CPU run.
    * ``imprint_per_class=0``: initialising the cosine head from random-init-backbone prototypes
      *hurt* (70% vs 84%): random features of all classes sit in a narrow cone, so the imprinted
      head starts nearly degenerate. Left as a knob for starts from a trained ``init_backbone``
      (not measured there). (Imprinting at the *end* is another matter: next items.)
    * ``imprint_at=(1.0,)``, ``imprint_views=8``, ``proto_start=1.0``: when the loop ends, every
      class's head row becomes the prototype (mean normalised eval-mode feature) of 8 fresh crops
      through the *trained* backbone. Same backbones, held-out top-1: 1000 classes x 180 s, SGD head
      40% -> prototypes of 1/4/8/16 views 58/71/72-74/75%; 300 classes x 120 s 87 -> 92%. The SGD
      head lags because each of thousands of rows is updated a few dozen times in a run. The pass
      costs ~1 step per 2.5 x batch views (at 3,000 classes ~60 s on one thread, inside the budget;
      the time schedule ends the cosine where it must start). Tried and not kept: fine-tuning the
      cosine head on cached features of 16 views (73-74% vs 75%: it overfits), centring the
      features (-1..2 points), mixing prototypes with the SGD rows (mix 0.7: same; 0.5: -2), an extra
      imprint mid-run then training on (0.5 -> 1.0: 60/69% vs 67/77% without: it slows the backbone),
      and free prototypes summed from the training forward passes from ``proto_start=0.5`` (67% vs
      77% for 8 fresh views in the same run; from 0.75: 58%): those features are of older weights.
      Time-budgeted 1000-class runs of one config vary by about +-5 points between runs.
    * ``views_per_class=2``, ``episode_weight=1.0``, ``margin=0.2``: batches of 64 classes x 2 fresh
      crops, and besides the head's cross entropy a prototypical loss inside the batch
      (:func:`episode_loss`: each crop against the batch's class prototypes, its own left out), so the
      backbone is trained for what the final head does: match a crop to a class's mean feature.
      ``margin`` is an additive (CosFace) margin on the true class's cosine in both losses. 1000
      classes x 180 s, held-out top-1 synthetic / screen crops (one run each, +-5 points): default
      before 72.0/74.0%; 32x4 with cross entropy only 21/23% (it collapses); 32x4 + episode loss
      82.4/84.7%, the episode loss alone (``ce_weight=0``) 82.7/88.7%, + margin 0.2 86.8/88.7%; 16x8
      + episode 76.7/80.8%; 64x2 + episode 89.2/92.7%, + margin 0.2 91.3/95.5% (ECE 0.04/0.06). The
      margin on the cross entropy alone (0.25, batches as before) did not help: 65.9/75.7%. The cross
      entropy is kept (``ce_weight=1``): without it the SGD head that mid-run evaluations and early
      stopping look at stays untrained. ``bench/central.py --classes 3000 --budget-s 600 --threads 1``: 83.0/85.0% before ->
      95.9/96.9% (149 samples/s, 72,576 samples; the SGD head alone 41% val).
    * ``fast_depthwise=True``: depthwise weight gradients on the 8x6..2x2 maps by batched products
      instead of oneDNN's slow path (:func:`central.models.depthwise_weight_grad`): one thread,
      batch 128, 3,000 classes, 0.85 -> 0.73 s a step (+16%), gradients equal to 1e-6.
    * ``bf16=True``, ``fused_adamw=True``, ``fast_se=True``, ``fast_head=True``, ``inplace_silu=False``
      (training speed; the trained weights, state dict and ONNX stay float32 torchvision). Train-step
      micro-benchmark: 3,000 classes, batch 128, one fixed batch, no producer, variants interleaved,
      median of 3 rounds of 4 steps, **one** thread (two threads on this shared 2-core machine swung
      0.4-12 s a step): float32 before 771 ms -> bf16 + fused AdamW + no in-place SiLU 603 -> + fast
      SE 562 (1.37x); another session: before 846 -> all but the head 568 -> all 538 ms (1.57x).
      Pieces: ``bf16``: the backbone's forward/backward under ``torch.autocast("cpu", bfloat16)`` (the
      CPU has avx512_bf16; oneDNN's bf16 convs, BN and SiLU are ~2x faster); head, margin, both losses,
      prototypes and AdamW stay float32. Plain autocast was *slower* (2 threads: 540 -> 717 ms) because
      oneDNN's bf16 depthwise backward with stride 2 takes 95-245 ms a layer (float32: 1.5-15 ms), so
      :class:`central.models.FastDepthwiseConv2d` sends those through float32 (then 558 -> 466 ms, 2
      threads); one thread: 760-797 -> 604-622 ms. ``fused_adamw``: 604 -> 552 ms in one run, no
      difference in another (the per-tensor AdamW loop is ~20 ms a step). ``inplace_silu=False``:
      torchvision's in-place SiLU makes autograd clone every activation; float32 797 -> 707 ms,
      bf16 592 -> 585. ``fast_se``: autograd summed the squeeze-excitation's two input gradients
      with a broadcast ``add_`` at ~2 ns an element in bf16 (~70 ms a step); 603 -> 562 ms.
      ``fast_head``: the 3,000 x 1,280 cosine head's backward by hand (float32, gradients equal to
      5e-8): head forward+backward alone 200-287 -> 131-139 ms, the step 568 -> 538 ms. Accuracy,
      1,000 classes, 300 steps (fixed), one thread: float32 96.4% val, held-out synthetic / screen
      96.4 / 97.2%; bf16 + fused AdamW + fast SE + no in-place SiLU 96.4%, 96.0 / 98.9% (177 screen
      crops), ECE 0.031 both (``fast_head`` came later; its gradients equal autograd's). The real loop
      (producer included), ``bench/central.py --classes 1000 --budget-s 180 --threads 1``, HEAD code
      vs all switches on, two pairs run back to back (the second in reverse order): 179.8 / 172.8 ->
      252.3 / 243.8 samples/s (186 / 176 -> 267 / 256 steps), held-out synthetic / screen 91.5 / 93.8%
      and 90.4 / 93.2% -> 94.9 / 98.3% and 94.2 / 97.7% (the HEAD runs saw load ~2.8-3.0, the new
      ones ~1.6: other work on the machine). With ``--threads 2`` under that load the numbers are
      noise: two OpenMP threads next to the producer and a foreign job gave 192-196 samples/s but a
      step-time average that swung to ~2 s, so the budget stopped training at 56-59 s, and the final
      prototype pass took 111 s (17-21 s on one thread). Step micro-benchmark, two threads, best of 3
      rounds (medians were 0.5-13 s): 440 -> 310 ms without the producer, 504 -> 422 ms with it
      feeding the batches, i.e. at two threads the producer's ~70 ms of CPU a batch eats much of the
      gain. Quiet machine, ``bench/central.py --classes 3000 --budget-s 600 --threads 2``: 241 -> 317
      samples/s, held-out synthetic / screen 98.1 / 97.8% -> 98.5 / 99.4%.
      Not kept: ``torch.compile`` of the backbone (inductor, gcc 12): 272 s to compile on the busy
      machine (half the budget), then 3.9 s a step (vs 0.6 eager). The crop producer costs ~70 ms of
      CPU per 128-crop batch (~10% of two cores at the new step time); its rarity compositing is now
      done in place (9 -> 5 ms a batch, identical crops); the rest is OpenCV resize/JPEG/blur and
      per-crop Python.
    * ``workers=0`` (one single-thread process per core, :mod:`central.parallel`), ``batch_size=256``
      (128 a process on two cores), ``producer_nice=19``: OpenMP's barriers around EfficientNet's
      thousands of small kernels leave cores idle, and the producer thread stalls both OpenMP
      threads; separate processes do not wait for each other until the gradient all-reduce (~21 ms
      for the 9M float32 gradients over gloo). A niced producer runs when its core would idle.
      3,000 classes, 60/40-step loops at two cores, no evaluations, rounds interleaved, crops/s:
      one process batch 128 346-352 (nice 19: 354-361), batch 256 351-374 (nice: 380-390); two
      processes batch 128 (64 each) 352-355 (nice: 357-362), batch 256 406-414 (nice: 430-433).
      ``bench/central.py --classes 3000 --budget-s 600 --threads 2``: 317 -> 405 crops/s, held-out
      synthetic / screen 98.5 / 99.4% -> 98.9 / 99.2% (849 steps of 256 instead of 1,294 of 128;
      evaluations included in the time; then rank 1 still waited through them: 386 on a rerun; with
      evaluations shared, 381: within the +-5% run-to-run spread). Batch 256 in one process was
      measured at 128 before bf16: no more crops/s (103-120/s vs 113/s a thread).
    * ``lr=2e-3`` (4e-3: 81% vs 84%, at batch 128; kept for 256), ``label_smoothing=0.1`` (0: 78% vs 84%).
    * ``eval_every_s=150``: each evaluation of a 3,000-class val set (BN re-estimation + 3,000
      crops) costs ~8 s of the 600 s budget; every 150 s instead of 90 s saves ~3 of them.
    """

    seed: int = 0
    batch_size: int = 256  # one optimiser step's crops, over all workers
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup_frac: float = 0.03  # of the run's progress (steps or time)
    min_lr_frac: float = 0.02  # cosine floor, as a fraction of lr
    label_smoothing: float = 0.1
    dropout: float = 0.2
    stochastic_depth: float = 0.0
    head: str = "cosine"  # or "linear"; see the class docstring
    head_scale: float = 16.0  # initial logit scale of the cosine head
    margin: float = 0.2  # cosine head: additive (CosFace) margin taken off the true class's cosine in training
    views_per_class: int = 2  # synthetic part of a batch: batch/views classes, each this many fresh crops
    episode_weight: float = 1.0  # + this x in-batch prototypical loss (needs views_per_class >= 2)
    ce_weight: float = 1.0  # weight of the head's cross entropy (0: the episode loss alone trains)
    imprint_per_class: int = 0  # cosine head: init each class weight from this many crops' features
    proto_start: float = 1.0  # progress from which training features accumulate into class prototypes
    imprint_at: tuple[float, ...] = (1.0,)  # progress points (1.0: the end) where they replace head rows
    proto_mix: float = 1.0  # head row := normalise(mix * prototype + (1 - mix) * SGD row); 0 disables
    imprint_views: int = 8  # fresh synthetic crops per class added to the prototypes at the end
    grad_clip: float = 5.0  # 0 disables
    max_steps: int = 0  # 0: until the time budget ends
    budget_s: float = 600.0  # whole job, export included
    reserve_s: float = 20.0  # kept free at the end for calibration and export
    schedule: str = "auto"  # "steps", "time", or auto: steps when max_steps is set, else time
    val_seed: int = 20240601  # independent of seed: the same val set for every model version
    val_per_class: int = 1
    val_max: int = 6000  # cap on synthetic val crops (large class counts)
    eval_every_s: float = 150.0
    eval_every_steps: int = 0  # 0: by time only
    patience: int = 4  # evaluations without improvement before stopping early
    min_delta: float = 1e-4
    community_fraction: float = 0.25  # share of each batch from real crops (when there are any)
    community_val_fraction: float = 0.2
    near_dup_distance: int = 6  # pHash bits: crops closer than this share a split group
    hard_weight: float = 2.0
    weight_cap: float = 3.0
    finetune_lr_scale: float = 0.3  # lr multiplier when starting from a previous backbone
    threads: int = 0  # CPU cores to train on (0: all); with workers=1 the torch intra-op threads
    channels_last: bool = True
    fast_depthwise: bool = True  # depthwise weight gradients without oneDNN's slow small-map path
    bf16: bool = True  # backbone forward/backward under CPU bfloat16 autocast (head, losses, AdamW in float32)
    fused_adamw: bool = True  # torch's fused (one kernel) AdamW step instead of the per-tensor loop
    fast_se: bool = True  # squeeze-excitation blocks with a one-pass backward (central.models._SqueezeExcite)
    fast_head: bool = True  # cosine head: hand-written float32 backward (central.models._CosineLogits)
    inplace_silu: bool = False  # torchvision's in-place SiLU (autograd then clones every activation)
    workers: int = 0  # data-parallel processes (central.parallel), threads // workers torch threads each; 0: one a core
    prefetch: int = 6  # batches the producer thread may run ahead
    producer_nice: int = 19  # niceness of the producer thread (Linux): it then takes the cores torch leaves idle
    eval_batch: int = 512
    bn_recal_batches: int = 6  # "precise BN" before each evaluation; 0 keeps the running averages
    progress: bool = True
    augment: AugmentConfig = field(default_factory=AugmentConfig)


@dataclass
class TrainResult:
    """What a run produced and how it went (the numbers model_version.json and the report need)."""

    model: nn.Module
    names: list[str]
    temperature: float
    val_acc: float
    val_loss: float
    community_val_acc: float | None
    ece_raw: float
    ece_calibrated: float
    steps: int
    samples: int
    train_seconds: float
    samples_per_s: float
    stop_reason: str
    imprint_seconds: float = 0.0  # the final prototype pass (after train_seconds, inside the budget)
    n_community_train: int = 0
    n_community_val: int = 0
    skipped_labels: int = 0
    history: list[dict[str, float]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """JSON-ready numbers (no model)."""
        skip = ("model", "names", "history")  # (asdict would deep-copy the model)
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in skip} | {
            "n_classes": len(self.names)}


# ============================================================================= helpers
def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (the producer thread has its own numpy Generator)."""
    random.seed(seed)
    np.random.seed(seed % (1 << 32))
    torch.manual_seed(seed)


def lr_factor(progress: float, warmup_frac: float, min_frac: float) -> float:
    """Linear warmup then cosine decay to ``min_frac``; ``progress`` runs 0..1 (steps or time)."""
    p = min(max(progress, 0.0), 1.0)
    if warmup_frac > 0 and p < warmup_frac:
        return max(p / warmup_frac, 1e-3)
    q = (p - warmup_frac) / max(1e-9, 1.0 - warmup_frac)
    return min_frac + (1.0 - min_frac) * 0.5 * (1.0 + np.cos(np.pi * q))


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups: no decay on biases and norm scales (decaying them only hurts)."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


@dataclass
class CommunitySet:
    """Community crops resolved to class indices and split by group."""

    crops: list[np.ndarray]
    labels: np.ndarray
    weights: np.ndarray
    sample_p: np.ndarray  # class-balanced sampling probabilities
    skipped: int = 0

    def __len__(self) -> int:
        return len(self.crops)


def prepare_community(items: Sequence[CommunityCrop | tuple], names: Sequence[str], cfg: TrainConfig
                      ) -> tuple[CommunitySet, CommunitySet]:
    """(train, val) community sets. Labels outside the class list are skipped (and counted): the
    vocabulary is the icon library; vetting labels is the vote's job, not the trainer's.

    Groups: a crop's own ``group`` (its screenshot) merged with near-duplicate clusters, so crops of
    one screenshot and near-copies of one crop always land on the same side of the split.
    """
    index = {n: i for i, n in enumerate(names)}
    rows: list[CommunityCrop] = []
    skipped = 0
    for it in items:
        c = it if isinstance(it, CommunityCrop) else CommunityCrop(np.asarray(it[0]), str(it[1]))
        if c.label not in index:
            skipped += 1
            continue
        rows.append(c)
    if not rows:
        empty = CommunitySet([], np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros(0))
        return dataclasses.replace(empty, skipped=skipped), empty
    groups = near_duplicate_groups([r.crop for r in rows], [r.group or f"row{i}" for i, r in enumerate(rows)],
                                   cfg.near_dup_distance)
    is_val = group_split(groups, cfg.community_val_fraction, cfg.val_seed)

    def build(mask: np.ndarray) -> CommunitySet:
        sel = [r for r, m in zip(rows, mask) if m]
        labels = np.array([index[r.label] for r in sel], np.int64)
        w = np.array([min(cfg.weight_cap, (cfg.hard_weight if r.hard else 1.0) * r.weight) for r in sel], np.float32)
        counts = np.bincount(labels, minlength=len(names)) if len(labels) else np.zeros(len(names))
        p = 1.0 / counts[labels] if len(labels) else np.zeros(0)
        p = p / p.sum() if len(p) else p
        return CommunitySet([r.crop for r in sel], labels, w, p)

    train, val = build(~is_val), build(is_val)
    train.skipped = skipped
    return train, val


def synthetic_val(bank: IconBank, cfg: TrainConfig) -> tuple[np.ndarray, np.ndarray]:
    """The fixed validation crops: ``val_per_class`` per class (capped), from ``val_seed`` only."""
    rng = np.random.default_rng(cfg.val_seed)
    labels = np.repeat(np.arange(len(bank)), cfg.val_per_class)
    if len(labels) > cfg.val_max:
        labels = np.sort(rng.choice(labels, cfg.val_max, replace=False))
    x = normalise_batch(synth_batch(bank, labels, rng, cfg.augment))
    return x, labels


class BatchProducer:
    """Makes training batches in a background thread (OpenCV and numpy release the GIL).

    A single producer with its own seeded Generator keeps batch order, and so a run, deterministic.
    """

    def __init__(self, bank: IconBank, community: CommunitySet, cfg: TrainConfig, seed: int):
        self.bank, self.community, self.cfg = bank, community, cfg
        self.rng = np.random.default_rng(seed)
        self.overlays = rarity_overlays()
        self.queue: queue.Queue = queue.Queue(maxsize=max(1, cfg.prefetch))
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="batch-producer", daemon=True)
        self.thread.start()

    def make(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One batch: (uint8 NHWC at model size, labels, loss weights)."""
        bs, rng = self.cfg.batch_size, self.rng
        n_comm = int(round(self.cfg.community_fraction * bs)) if len(self.community) else 0
        if len(self.bank) == 0:
            n_comm = bs
        parts, labels, weights = [], [], []
        if bs - n_comm > 0:
            v = max(1, self.cfg.views_per_class)
            k = -(-(bs - n_comm) // v)  # classes in this batch, each with v independent crops
            y = np.repeat(rng.integers(0, len(self.bank), k), v)[: bs - n_comm]
            parts.append(synth_batch(self.bank, y, rng, self.cfg.augment, self.overlays))
            labels.append(y)
            weights.append(np.ones(len(y), np.float32))
        if n_comm:
            rows = rng.choice(len(self.community), n_comm, p=self.community.sample_p)
            parts.append(np.stack([recut_community(self.community.crops[i], rng, self.cfg.augment) for i in rows]))
            labels.append(self.community.labels[rows])
            weights.append(self.community.weights[rows])
        return np.concatenate(parts), np.concatenate(labels).astype(np.int64), np.concatenate(weights)

    def _run(self) -> None:
        if self.cfg.producer_nice:
            try:  # per-thread niceness is a Linux property of the thread id
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), int(self.cfg.producer_nice))
            except (AttributeError, OSError):
                pass
        try:
            while not self.stop.is_set():
                u8, y, w = self.make()
                item = (torch.from_numpy(normalise_batch(u8)), torch.from_numpy(y), torch.from_numpy(w))
                while not self.stop.is_set():
                    try:
                        self.queue.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
        except BaseException as exc:  # surfaced in get(): a dead producer must not hang training
            self.error = exc

    def get(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        while True:
            if self.error is not None:
                raise RuntimeError("batch producer failed") from self.error
            try:
                return self.queue.get(timeout=0.5)
            except queue.Empty:
                continue

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)


@torch.no_grad()
def recalibrate_bn(model: nn.Module, batches: Sequence[torch.Tensor], channels_last: bool = True) -> None:
    """Re-estimate BatchNorm statistics as the plain average over ``batches`` ("precise BN").

    Why: early in a short run the weights move so fast that the exponential running averages lag
    far behind; an EfficientNet evaluated with them scored at chance (5% on 20 classes) while the
    same weights with fresh statistics scored 78%. A few forward passes fix that, so validation
    (early stopping, calibration) and the exported model see statistics of the final weights.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns or not batches:
        return
    was_training = model.training
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    model.train()
    for x in batches:
        model(x.contiguous(memory_format=torch.channels_last) if channels_last else x)
    for m, mom in zip(bns, momenta):
        m.momentum = mom
    model.train(was_training)


class RunningPrototypes:
    """Class prototypes from the training forward passes themselves: free, no extra crops.

    Every step already computes the pooled feature of each training crop; from ``proto_start`` on
    their L2-normalised values are summed per class. :meth:`imprint` then sets each seen class's
    cosine-head row to ``normalise(mix * normalise(mean) + (1 - mix) * normalise(row))`` (bias 0,
    that row's AdamW momentum cleared) and starts a fresh sum, so a later imprint sees only features
    of the later backbone. Why: with thousands of classes a short run updates each head row only a
    few dozen times and the SGD head lags far behind the backbone (numbers in TrainConfig).
    """

    def __init__(self, n_classes: int, dim: int, mix: float = 1.0):
        self.sum = torch.zeros(n_classes, dim)
        self.count = torch.zeros(n_classes)
        self.mix = float(mix)

    @torch.no_grad()
    def add(self, feats: torch.Tensor, labels: torch.Tensor) -> None:
        self.sum.index_add_(0, labels, F.normalize(feats.detach().float(), dim=1))
        self.count.index_add_(0, labels, torch.ones(len(labels)))

    @torch.no_grad()
    def imprint(self, model: nn.Module, opt: torch.optim.Optimizer | None = None) -> bool:
        """Write the prototypes into ``model``'s cosine head; False when no class has one yet."""
        ok = self.count > 0
        if not bool(ok.any()):
            return False
        head = model.classifier[1]
        new = F.normalize(self.sum[ok], dim=1)
        if self.mix < 1.0:
            new = F.normalize(self.mix * new + (1.0 - self.mix) * F.normalize(head.weight[ok].float(), dim=1), dim=1)
        head.weight[ok] = new.to(head.weight.dtype)
        if head.bias is not None:
            head.bias[ok] = 0.0
        state = opt.state.get(head.weight) if opt is not None else None
        if state and "exp_avg" in state:
            state["exp_avg"][ok] = 0.0
        self.sum.zero_()
        self.count.zero_()
        return True

    def merge(self, other: RunningPrototypes) -> RunningPrototypes:
        self.sum += other.sum
        self.count += other.count
        return self


def _view_batches(bank: IconBank, labels: np.ndarray, rng: np.random.Generator, cfg: TrainConfig,
                  batch: int) -> Any:
    """Model-ready synthetic crops of ``labels``, ``batch`` at a time, made one batch ahead in a thread
    (OpenCV and numpy release the GIL, so synthesis overlaps the forward passes)."""
    overlays = rarity_overlays()

    def make(y: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(normalise_batch(synth_batch(bank, y, rng, cfg.augment, overlays)))
        return x.contiguous(memory_format=torch.channels_last) if cfg.channels_last else x

    chunks = [labels[i:i + batch] for i in range(0, len(labels), batch)]
    box: dict[int, torch.Tensor] = {}

    def work(k: int) -> None:
        box[k] = make(chunks[k])

    nxt = None
    for k in range(len(chunks)):
        if nxt is None:
            work(k)
        else:
            nxt.join()
        if k + 1 < len(chunks):
            nxt = threading.Thread(target=work, args=(k + 1,), daemon=True)
            nxt.start()
        yield chunks[k], box.pop(k)


@torch.no_grad()
def class_prototypes(model: nn.Module, bank: IconBank, views: int, cfg: TrainConfig, rng: np.random.Generator,
                     batch: int = 256, recal: bool = True, classes: np.ndarray | None = None,
                     group: Solo | None = None) -> RunningPrototypes:
    """Sums of L2-normalised pooled features (eval mode) of ``views`` fresh synthetic crops of every
    class (or of ``classes``), BatchNorm statistics re-estimated first (``recal``; each of ``group``'s
    ranks on its own crops, then averaged) so the features are the final model's."""
    n = len(bank)
    group = group or Solo()
    protos = RunningPrototypes(n, model.classifier[1].in_features)
    was_training = model.training
    if recal:
        recalibrate_bn(model, [x for _, x in _view_batches(bank, rng.integers(0, n, cfg.batch_size * max(
            1, cfg.bn_recal_batches)), rng, cfg, cfg.batch_size)], cfg.channels_last)
        group.average_buffers(model)
    model.eval()
    labels = np.arange(n) if classes is None else np.asarray(classes, np.int64)
    for y, x in _view_batches(bank, np.repeat(labels, views), rng, cfg, batch):
        protos.add(torch.flatten(model.avgpool(model.features(x)), 1), torch.from_numpy(y))
    model.train(was_training)
    return protos


@torch.no_grad()
def imprint_head(model: nn.Module, bank: IconBank, cfg: TrainConfig, rng: np.random.Generator,
                 batch: int = 256, views: int | None = None) -> None:
    """Set each class weight of a cosine head to its class prototype: the mean L2-normalised
    pooled feature of ``views`` (default ``imprint_per_class``) synthetic crops (BatchNorm statistics
    re-estimated first, so the features are not dominated by lagging running averages)."""
    views = cfg.imprint_per_class if views is None else views
    class_prototypes(model, bank, views, cfg, rng, batch).imprint(model)


@torch.inference_mode()
def predict_logits(model: nn.Module, x: np.ndarray | torch.Tensor, batch: int = 512,
                   channels_last: bool = True) -> np.ndarray:
    """Logits for model inputs ``(N, 3, H, W)`` in eval mode, batch by batch."""
    was_training = model.training
    model.eval()
    xt = torch.as_tensor(x)
    out = []
    for i in range(0, len(xt), batch):
        xb = xt[i:i + batch]
        if channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        out.append(model(xb).float())
    model.train(was_training)
    return torch.cat(out).numpy() if out else np.zeros((0, 0), np.float32)


def evaluate(model: nn.Module, x: np.ndarray, y: np.ndarray, cfg: TrainConfig,
             group: Solo | None = None) -> tuple[float, float, np.ndarray]:
    """(accuracy, mean NLL, logits) on a fixed set; with a ``group``, each rank runs its share."""
    if len(y) == 0:
        return float("nan"), float("nan"), np.zeros((0, 0), np.float32)
    group = group or Solo()
    part = predict_logits(model, x[group.share(len(x))], cfg.eval_batch, cfg.channels_last)
    part = part.reshape(len(part), model.classifier[-1].out_features)  # (an empty share comes back 0x0)
    logits = group.gather_rows(torch.from_numpy(part), len(x)).numpy()
    acc = float((logits.argmax(1) == y).mean())
    loss = float(F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(y)))
    return acc, loss, logits


def episode_loss(feats: torch.Tensor, y: torch.Tensor, scale: float = 16.0, margin: float = 0.0) -> torch.Tensor:
    """Prototypical loss inside one batch: each crop is classified among the batch's classes by
    cosine to their prototypes (mean normalised feature), its own class's prototype leaving it out.
    The final head *is* such prototypes, so this trains the backbone for the way it is used.
    Crops whose class has no other crop in the batch are skipped; 0 when none has one."""
    f = F.normalize(feats.float(), dim=1)
    classes, inv = torch.unique(y, return_inverse=True)
    sums = torch.zeros(len(classes), f.shape[1], dtype=f.dtype).index_add(0, inv, f)
    counts = torch.zeros(len(classes), dtype=f.dtype).index_add(0, inv, torch.ones_like(inv, dtype=f.dtype))
    ok = counts[inv] > 1
    if not bool(ok.any()):
        return feats.sum() * 0.0
    f, inv = f[ok], inv[ok]
    cos = f @ F.normalize(sums, dim=1).T  # (n, classes)
    own = (f * F.normalize(sums[inv] - f, dim=1)).sum(1)  # leave-one-out prototype of the own class
    cos = cos.scatter(1, inv[:, None], (own - margin)[:, None])
    return F.cross_entropy(scale * cos, inv)


def ece(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    """Expected calibration error of the top-1 confidence (warpd.icon_index's definition)."""
    from warpd.icon_index import expected_calibration_error

    if len(labels) == 0:
        return float("nan")
    p = softmax_np(logits, temperature)
    return expected_calibration_error(p.max(1), p.argmax(1) == labels)


# ============================================================================= the loop
STOP_REASONS = ("", "max_steps", "budget", "early_stop")  # the codes rank 0 broadcasts each step
WORKERS_EXIT_S = 1.5  # workers' exit and rank 0's result read back by the parent (measured 1.3 s, 2 workers)


def train_icon_classifier(bank: IconBank, cfg: TrainConfig | None = None,
                          community: Sequence[CommunityCrop | tuple] | None = None,
                          init_backbone: str | Path | Mapping[str, torch.Tensor] | None = None,
                          start_time: float | None = None) -> TrainResult:
    """Train EfficientNet-B0 on synthetic crops of ``bank`` (plus real ``community`` crops).

    Returns by ``start_time + budget_s - reserve_s`` at the latest (``start_time`` defaults to now;
    pass the job's own start so data loading counts), with the best-validation weights loaded, the
    temperature fitted on validation logits, and the model in eval mode. With ``workers > 1`` the
    same loop runs data-parallel in that many processes (:mod:`central.parallel`).
    """
    cfg = cfg or TrainConfig()
    t_start = time.monotonic() if start_time is None else start_time
    cfg = dataclasses.replace(cfg, workers=resolve_workers(cfg))
    if cfg.workers <= 1:
        return _train(Solo(), bank, cfg, community, init_backbone, t_start)
    from central.parallel import run_workers

    if init_backbone is not None:  # checked here, where a caller can catch the ValueError and start fresh
        probe = icon_model(len(bank.names), head=cfg.head)
        load_backbone(probe, init_backbone)
        init_backbone = {k: v for k, v in probe.state_dict().items() if not k.startswith(CLASSIFIER_PREFIX)}
    state, meta = run_workers(_train_worker, cfg.workers, bank, cfg, list(community or []), init_backbone, t_start,
                              timeout_s=max(300.0, cfg.budget_s))
    model = icon_model(len(bank.names), dropout=cfg.dropout, stochastic_depth=cfg.stochastic_depth, head=cfg.head,
                       scale=cfg.head_scale)
    model.load_state_dict(state)
    return TrainResult(model=model.eval(), names=list(bank.names), **meta)


def resolve_workers(cfg: TrainConfig) -> int:
    """``workers=0``: one process per core used, each given at least 32 crops of a batch (smaller
    shares spend more on the per-step all-reduce than the extra core gives)."""
    if cfg.workers > 0:
        return cfg.workers
    cores = cfg.threads if cfg.threads > 0 else (os.cpu_count() or 1)
    return max(1, min(cores, cfg.batch_size // 32))


def _train_worker(group: Solo, bank: IconBank, cfg: TrainConfig, community: list, init_backbone: Any,
                  t_start: float) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
    """One rank of a data-parallel run; rank 0 returns (state dict, the other TrainResult fields)."""
    res = _train(group, bank, cfg, community, init_backbone, t_start)
    if res is None:
        return None
    meta = {f.name: getattr(res, f.name) for f in dataclasses.fields(res) if f.name not in ("model", "names")}
    return res.model.state_dict(), json.loads(json.dumps(meta, default=float))  # numpy scalars -> plain numbers


def _train(group: Solo, bank: IconBank, cfg: TrainConfig, community: Sequence[CommunityCrop | tuple] | None,
           init_backbone: str | Path | Mapping[str, torch.Tensor] | None, t_start: float) -> TrainResult | None:
    """The training loop of one rank (the only rank when ``group`` is :class:`Solo`); None off rank 0.

    Rank 0 decides (budget, early stopping, the lr schedule's progress) and keeps the scores; every
    rank trains on its own share of each batch, gradients averaged, so all hold the same weights, and
    evaluates its share of the validation set.
    """
    main, world = group.is_main, group.world
    deadline = t_start + cfg.budget_s - cfg.reserve_s - (WORKERS_EXIT_S if world > 1 else 0.0)
    threads = cfg.threads if cfg.threads > 0 else (0 if world == 1 else os.cpu_count() or 1)
    if threads > 0:
        torch.set_num_threads(max(1, threads // world))
    cv2.setNumThreads(1)  # the producer is one thread; OpenCV's own pool would fight torch for cores
    seed_everything(cfg.seed)
    names = list(bank.names)
    n_classes = len(names)
    comm_train, comm_val = prepare_community(community or [], names, cfg)

    x_val, y_val = synthetic_val(bank, cfg)  # (on every rank: they share the evaluations)
    xc_val = (normalise_batch(np.stack([recut_community(c, np.random.default_rng(cfg.val_seed + i),
                                                        dataclasses.replace(cfg.augment, community_offset_px=0.0,
                                                                            community_scale_err=0.0))
                                        for i, c in enumerate(comm_val.crops)]))
              if len(comm_val) else np.zeros((0, 3, 64, 48), np.float32))

    model = icon_model(n_classes, dropout=cfg.dropout, stochastic_depth=cfg.stochastic_depth, head=cfg.head,
                       scale=cfg.head_scale)
    lr = cfg.lr
    if init_backbone is not None:
        load_backbone(model, init_backbone)
        lr *= cfg.finetune_lr_scale
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if cfg.head == "cosine" and cfg.imprint_per_class > 0:
        imprint_head(model, bank, cfg, np.random.default_rng([cfg.seed, 17]))
    group.broadcast_state(model)  # (seeded alike already; this makes it certain)
    if cfg.fast_depthwise:
        fast_depthwise(model)  # switched back below: the returned model is plain torchvision
    if cfg.fast_se:
        fast_squeeze_excite(model)  # (likewise)
    inplace_activations(model, cfg.inplace_silu)  # (restored to torchvision's in-place below)
    head = model.classifier[1]
    if cfg.fast_head and isinstance(head, CosineLinear):
        head.fused_backward = True  # (the instance attribute is deleted below)
    model.train()
    opt = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=lr, fused=cfg.fused_adamw or None)
    by_steps = cfg.schedule == "steps" or (cfg.schedule == "auto" and cfg.max_steps > 0)
    protos = (RunningPrototypes(n_classes, model.classifier[1].in_features, cfg.proto_mix)
              if cfg.head == "cosine" and cfg.proto_mix > 0 and cfg.imprint_at else None)
    pending = sorted(p for p in cfg.imprint_at if p < 1.0)
    final_views = cfg.imprint_views if protos is not None and len(bank) and any(p >= 1.0 for p in cfg.imprint_at) \
        else 0
    # forward-only passes (float32, with synthesis) cost 1/2.5 of a float32 training step a batch, and
    # 1/2.1 of a bfloat16 one (1,000 classes, one thread: 0.33 s a 128-crop batch vs 0.69 s a step): 2.0;
    # the ranks share the final pass
    fwd_ratio = 2.0 if cfg.bf16 else 2.5
    est_imprint = n_classes * final_views / cfg.batch_size / fwd_ratio / world  # x step time
    imprint_seconds = 0.0
    rank_cfg = dataclasses.replace(cfg, batch_size=max(1, cfg.batch_size // world))  # this rank's share
    producer = BatchProducer(bank, comm_train, rank_cfg, seed=cfg.seed if main else [cfg.seed, group.rank])
    params = [p for p in model.parameters() if p.requires_grad]

    history: list[dict[str, float]] = []
    best: dict[str, Any] = {"acc": -1.0, "loss": float("inf"), "state": None, "step": 0, "logits": None}
    bad_evals, step, samples, stop_reason = 0, 0, 0, "max_steps"
    step_time, eval_time, train_loss = None, 0.0, float("nan")
    early_stop = False
    t_train0 = time.monotonic()
    last_eval_t, last_eval_step = t_train0, 0
    bar = tqdm(total=cfg.max_steps or None, disable=not (cfg.progress and main), desc="icons", unit="step",
               dynamic_ncols=True) if tqdm else None

    def do_eval(recal: bool = True) -> bool:
        """Evaluate, keep the best weights (and their val logits); True when early stopping says stop."""
        nonlocal bad_evals, eval_time, last_eval_t, last_eval_step
        t0 = time.monotonic()
        if recal and cfg.bn_recal_batches > 0:  # each rank on its own batches, then averaged
            recalibrate_bn(model, [producer.get()[0] for _ in range(cfg.bn_recal_batches)], cfg.channels_last)
            group.average_buffers(model)
        acc, loss, logits = evaluate(model, x_val, y_val, cfg, group)
        if not len(y_val) and len(comm_val):
            acc, loss, _ = evaluate(model, xc_val, comm_val.labels, cfg, group)
        eval_time = time.monotonic() - t0
        if not main:
            return False
        last_eval_t, last_eval_step = time.monotonic(), step
        history.append({"step": step, "samples": samples, "t": round(time.monotonic() - t_train0, 2),
                        "train_loss": float(train_loss), "val_acc": acc, "val_loss": loss})
        improved = acc > best["acc"] + cfg.min_delta or (abs(acc - best["acc"]) <= cfg.min_delta
                                                          and loss < best["loss"])
        if improved:
            best.update(acc=acc, loss=loss, step=step, logits=logits,
                        state={k: v.detach().clone() for k, v in model.state_dict().items()})
            bad_evals = 0
        else:
            bad_evals += 1
        return bad_evals >= cfg.patience

    def decide() -> tuple[int, float]:
        """Rank 0: stop now (a STOP_REASONS code) or go on, and the lr schedule's progress."""
        if early_stop:
            return 3, 0.0
        if cfg.max_steps and step >= cfg.max_steps:
            return 1, 0.0
        # what must still fit: this step and the final evaluation (estimated from the step time
        # until one has been measured; a forward pass costs about a third of a training step)
        est_eval = eval_time or (step_time or 0.0) * (len(y_val) + len(comm_val)) / cfg.batch_size / fwd_ratio / world
        tail = 1.3 * (est_eval + est_imprint * (step_time or 0.0))  # the final eval (and imprint)
        if time.monotonic() + (step_time or 0.0) + tail + 0.05 > deadline:
            return 2, 0.0
        # time schedule: the run ends where the final work must begin, so the cosine reaches its floor
        return 0, (step / cfg.max_steps if by_steps else
                   (time.monotonic() - t_train0) / max(1e-3, deadline - tail - t_train0))

    try:
        while True:
            code, progress = group.control(list(decide()) if main else [0.0, 0.0])
            if code:
                stop_reason = STOP_REASONS[int(code)]
                break
            x, y, w = producer.get()
            if cfg.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            cur_lr = lr * lr_factor(progress, cfg.warmup_frac, cfg.min_lr_frac)
            for g in opt.param_groups:
                g["lr"] = cur_lr
            while pending and progress >= pending[0]:  # before the forward pass that autograd keeps
                pending.pop(0)
                if protos is not None:
                    group.sum_(protos.sum), group.sum_(protos.count)
                    protos.imprint(model, opt)
            t0 = time.monotonic()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):  # the backbone only
                feats = torch.flatten(model.avgpool(model.features(x)), 1)  # = EfficientNet.forward, features kept
            feats = feats.float()  # head, margin, losses and prototypes in float32
            logits = model.classifier(feats)
            if cfg.margin > 0 and cfg.head == "cosine":  # CosFace: s * (cos - m) for the true class
                logits = logits - F.one_hot(y, n_classes).to(logits.dtype) * (
                    cfg.margin * model.classifier[1].logit_scale.exp())
            if protos is not None and progress >= cfg.proto_start:
                protos.add(feats, y)
            per = F.cross_entropy(logits, y, reduction="none", label_smoothing=cfg.label_smoothing)
            loss = cfg.ce_weight * (per * w).sum() / w.sum()
            if cfg.episode_weight > 0:
                loss = loss + cfg.episode_weight * episode_loss(feats, y, cfg.head_scale, cfg.margin)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            group.average_grads(params)
            if cfg.grad_clip > 0:
                nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            opt.step()
            dt = time.monotonic() - t0
            step_time = dt if step_time is None else 0.9 * step_time + 0.1 * dt
            lv = float(loss.detach())
            train_loss = lv if step == 0 else 0.9 * train_loss + 0.1 * lv
            step += 1
            samples += len(y) * world
            if bar is not None:
                bar.update(1)
                if step % 10 == 0:
                    bar.set_postfix(loss=f"{train_loss:.3f}", lr=f"{cur_lr:.2e}",
                                    sps=f"{samples / max(1e-6, time.monotonic() - t_train0):.0f}")
            due = (cfg.eval_every_steps and step - last_eval_step >= cfg.eval_every_steps) or \
                  (not cfg.eval_every_steps and time.monotonic() - last_eval_t >= cfg.eval_every_s)
            (due,) = group.control([float(bool(due))] if main else [0.0])  # rank 0's clock decides
            if due and do_eval():  # (every rank evaluates its share; rank 0 keeps the score)
                early_stop = True  # (said to the other ranks at the next step's control)
        train_seconds = time.monotonic() - t_train0
        t_imp = time.monotonic()
        fresh = final_views > 0
        if fresh:
            ours = np.arange(len(bank))[group.share(len(bank))]  # the ranks share the classes
            protos.merge(class_prototypes(model, bank, final_views, cfg, np.random.default_rng(
                [cfg.seed, 29] if main else [cfg.seed, 29, group.rank]), classes=ours, group=group))
            group.sum_(protos.sum), group.sum_(protos.count)
        final_imprint = protos is not None and any(p >= 1.0 for p in cfg.imprint_at) and protos.imprint(model, opt)
        imprint_seconds = time.monotonic() - t_imp
        (last,) = group.control([float(final_imprint or not history or history[-1]["step"] != step)]
                                if main else [0.0])
        if last:
            do_eval(recal=not fresh)  # class_prototypes has just re-estimated BatchNorm
    finally:
        producer.close()
        fast_depthwise(model, enable=False)
        fast_squeeze_excite(model, enable=False)
        inplace_activations(model, True)
        vars(head).pop("fused_backward", None)
        if bar is not None:
            bar.close()
    if not main:
        return None
    if best["state"] is not None:
        model.load_state_dict(best["state"])
    model.eval()

    # calibration on the validation logits (synthetic + community val) of the weights kept
    acc, vloss, logits = best["acc"], best["loss"], best["logits"]
    cacc, _, clogits = evaluate(model, xc_val, comm_val.labels, cfg)
    all_logits = np.concatenate([a for a in (logits, clogits) if a.size]) if (logits.size or clogits.size) \
        else np.zeros((0, n_classes), np.float32)
    all_y = np.concatenate([y_val, comm_val.labels]) if len(comm_val) else y_val
    temperature = fit_temperature(all_logits, all_y) if len(all_y) else 1.0
    return TrainResult(
        model=model, names=names, temperature=temperature,
        val_acc=acc, val_loss=vloss, community_val_acc=None if not len(comm_val) else cacc,
        ece_raw=ece(all_logits, all_y), ece_calibrated=ece(all_logits, all_y, temperature),
        steps=step, samples=samples, train_seconds=train_seconds,
        samples_per_s=samples / max(train_seconds, 1e-9), stop_reason=stop_reason, imprint_seconds=imprint_seconds,
        n_community_train=len(comm_train), n_community_val=len(comm_val), skipped_labels=comm_train.skipped,
        history=history)


# ============================================================================= screen classifier
@dataclass
class ScreenConfig:
    """Knobs of the screen-type classifier run (tiny data: a few hundred screenshots at most)."""

    seed: int = 0
    epochs: int = 8
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 0.01
    budget_s: float = 120.0
    val_fraction: float = 0.2  # used only with >= 20 screenshots; below that val = train (said in result)
    min_samples: int = MIN_SCREEN_SAMPLES
    finetune_lr_scale: float = 0.3
    threads: int = 0


@dataclass
class ScreenResult:
    model: nn.Module
    labels: list[str]
    val_acc: float
    val_is_train: bool
    epochs: int
    n_samples: int


def train_screen_classifier(images: Sequence[np.ndarray], labels: Sequence[str], cfg: ScreenConfig | None = None,
                            init_backbone: str | Path | Mapping[str, torch.Tensor] | None = None,
                            groups: Sequence[str] | None = None) -> ScreenResult | None:
    """MobileNetV3-Small on ``screen_tensor`` inputs with class-weighted cross entropy.

    Returns None (train nothing, upload nothing) below ``min_samples`` screenshots: the predecessor
    once published a random head after 0 epochs. Screens are few and very imbalanced and there is no
    synthetic balancing, so here the class weights (n / (k * count)) are the one imbalance fix.
    At least one epoch always runs, then the budget may stop it.
    """
    from warpd.screen_type import screen_tensor

    cfg = cfg or ScreenConfig()
    if len(images) != len(labels):
        raise ValueError("images and labels differ in length")
    if len(images) < cfg.min_samples:
        return None
    t0 = time.monotonic()
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    seed_everything(cfg.seed)
    classes = sorted(set(labels))
    y = np.array([classes.index(lab) for lab in labels], np.int64)
    x = np.concatenate([screen_tensor(im) for im in images])
    groups = list(groups) if groups is not None else [f"s{i}" for i in range(len(images))]
    is_val = group_split(groups, cfg.val_fraction, cfg.seed) if len(images) >= 20 else np.zeros(len(y), bool)
    if is_val.all() or not is_val.any():
        is_val = np.zeros(len(y), bool)
    tr = np.flatnonzero(~is_val)
    va = np.flatnonzero(is_val) if is_val.any() else tr
    counts = np.bincount(y[tr], minlength=len(classes)).astype(np.float32)
    weights = torch.tensor(np.where(counts > 0, len(tr) / (len(classes) * np.maximum(counts, 1)), 0.0),
                           dtype=torch.float32)
    model = screen_model(len(classes))
    lr = cfg.lr
    if init_backbone is not None:
        load_backbone(model, init_backbone)
        lr *= cfg.finetune_lr_scale
    opt = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=lr)
    gen = torch.Generator().manual_seed(cfg.seed)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    epochs = 0
    for epoch in range(cfg.epochs):
        if epoch > 0 and time.monotonic() - t0 > cfg.budget_s:
            break
        model.train()
        order = tr[torch.randperm(len(tr), generator=gen).numpy()]
        for i in range(0, len(order), cfg.batch_size):
            b = order[i:i + cfg.batch_size]
            if len(b) < 2:  # BatchNorm cannot train on one sample
                continue
            loss = F.cross_entropy(model(xt[b]), yt[b], weight=weights)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        epochs += 1
    logits = predict_logits(model, xt[va], 32, channels_last=False)
    model.eval()
    return ScreenResult(model, classes, float((logits.argmax(1) == y[va]).mean()), not is_val.any(), epochs,
                        len(images))


# ============================================================================= CLI
def _add_dataclass_flags(parser: argparse.ArgumentParser, cls: type, prefix: str = "") -> None:
    """One ``--flag`` per dataclass field (bools get --x/--no-x, pairs take two values)."""
    for f in dataclasses.fields(cls):
        if f.name == "augment":
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        flag = "--" + prefix + f.name.replace("_", "-")
        dest = prefix.replace("-", "_") + f.name
        if isinstance(default, bool):
            parser.add_argument(flag, dest=dest, action=argparse.BooleanOptionalAction, default=default)
        elif isinstance(default, tuple) and "..." in str(f.type):  # any length, also none
            parser.add_argument(flag, dest=dest, nargs="*", type=float, default=default)
        elif isinstance(default, tuple):
            parser.add_argument(flag, dest=dest, nargs=len(default), type=type(default[0]), default=default)
        else:
            parser.add_argument(flag, dest=dest, type=type(default), default=default)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The TrainConfig (with its AugmentConfig) the parsed flags describe."""
    aug = AugmentConfig(**{f.name: (tuple(v) if isinstance(v := getattr(args, "aug_" + f.name), list) else v)
                           for f in dataclasses.fields(AugmentConfig)})
    return TrainConfig(**{f.name: (tuple(v) if isinstance(v := getattr(args, f.name), list) else v)
                          for f in dataclasses.fields(TrainConfig) if f.name != "augment"}, augment=aug)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m central.train_icons", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--icons", type=Path, help="SETS-layout icon library folder (<quote_plus(name)>.png)")
    src.add_argument("--synthetic-classes", type=int, help="render this many catalogue items instead")
    p.add_argument("--out", type=Path, required=True, help="folder for the model files")
    p.add_argument("--init-backbone", type=Path, help="previous icon_classifier.pt (its head is dropped)")
    _add_dataclass_flags(p, TrainConfig)
    _add_dataclass_flags(p, AugmentConfig, prefix="aug-")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Train and export: ``python -m central.train_icons --icons DIR --out DIR [--budget-s 600 ...]``."""
    t0 = time.monotonic()
    args = build_parser().parse_args(argv)
    cfg = config_from_args(args)
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    from central.crops import load_bank, render_bank
    from central.export import save_artifacts

    if args.icons is not None:
        bank = load_bank(args.icons)
    else:
        from warpd.catalog import Catalog

        bank = render_bank(sorted(Catalog.load().items)[: args.synthetic_classes])
    if len(bank) == 0:
        print("no icons found", file=sys.stderr)
        return 2
    result = train_icon_classifier(bank, cfg, init_backbone=args.init_backbone, start_time=t0)
    paths = save_artifacts(args.out, result.model, result.names, result.temperature)
    summary = result.summary() | {"files": {k: str(v) for k, v in paths.items()},
                                  "total_seconds": round(time.monotonic() - t0, 2)}
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
