"""The two networks central training produces, their weights-only loading, and temperature scaling.

Icon classifier: torchvision's EfficientNet-B0 (``weights=None``: nothing is downloaded) run at the
icon's native 64x48 input. The predecessor upsampled 64 px crops to 224, which multiplies the
FLOPs by ~16 and adds no information. At 64x48 the standard stride-2 stem leaves a 32x24 map and the
last stage a 2x2 one; we keep the stem stride (``stem_stride=2``): a stride-1 stem would quadruple
the compute of every layer (training on 2 CPU cores would fall from ~270 to ~70 crops/s, far below
the issue's throughput target) while the rendered-crop accuracy is limited by the time budget, not
by the final map size. ``stem_stride=1`` stays available for GPU runs.

The head is a cosine (normalised-softmax) classifier by default (:class:`CosineLinear`): in a
600 s CPU run each of thousands of classes is seen a few dozen times, and there it learnt about
twice as fast as the plain linear head (numbers in ``central.train_icons.TrainConfig``).
``head="linear"`` keeps torchvision's layer. The ONNX graph is self-contained either way; the
``.pt`` state dict of a cosine model has one extra key, ``classifier.1.logit_scale`` (the backbone
keys are identical, and :func:`load_backbone` drops the whole classifier, so either head can start
from either kind of previous model).

Screen classifier: MobileNetV3-Small on the 224 letterbox of ``warpd.screen_type.screen_tensor``.

Every file that comes from the network is loaded with ``torch.load(weights_only=True)``: a pickled
model is code execution.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import efficientnet_b0, mobilenet_v3_small

CLASSIFIER_PREFIX = "classifier."


class CosineLinear(nn.Linear):
    """``logits = exp(logit_scale) * cos(feature, weight_c) + bias_c`` (a normalised-softmax head).

    Both the pooled feature and every class weight are L2-normalised, so a class is a direction and
    the logit is a cosine times one learnt scale. With thousands of classes and a few dozen crops of
    each in a run, a plain linear head spends its first thousands of steps growing or shrinking
    weight norms (rare-in-the-batch classes get pushed down as a block); a cosine head cannot, and
    it can start from class prototypes (:func:`imprint_head`). A subclass of ``nn.Linear`` with the
    same ``weight``/``bias`` keys (plus ``logit_scale``), so tools that look for the last Linear work.
    """

    def __init__(self, in_features: int, out_features: int, scale: float = 16.0):
        super().__init__(in_features, out_features, bias=True)
        self.logit_scale = nn.Parameter(torch.tensor(float(np.log(scale))))
        nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = F.normalize(self.weight, dim=1)
        return F.linear(F.normalize(x, dim=1), w) * self.logit_scale.exp() + self.bias


def icon_model(n_classes: int, *, dropout: float = 0.2, stochastic_depth: float = 0.0,
               stem_stride: int = 2, head: str = "cosine", scale: float = 16.0) -> nn.Module:
    """EfficientNet-B0 (random init) with its head replaced by a ``n_classes`` one.

    ``head="linear"`` is torchvision's plain linear layer; ``"cosine"`` is :class:`CosineLinear`
    (initial logit scale ``scale``). ``stochastic_depth`` defaults to 0 (torchvision uses 0.2 for
    300+ ImageNet epochs): a run of minutes never sees enough steps for that regulariser to pay for
    the signal it removes.
    """
    if n_classes < 1:
        raise ValueError("n_classes must be positive")
    if head not in ("linear", "cosine"):
        raise ValueError(f"unknown head {head!r}")
    model = efficientnet_b0(weights=None, dropout=dropout, stochastic_depth_prob=stochastic_depth)
    in_features = model.classifier[1].in_features
    if head == "cosine":
        model.classifier[1] = CosineLinear(in_features, n_classes, scale)
    else:
        model.classifier[1] = nn.Linear(in_features, n_classes)
    nn.init.uniform_(model.classifier[1].weight, -1.0 / in_features ** 0.5, 1.0 / in_features ** 0.5)
    nn.init.zeros_(model.classifier[1].bias)
    if stem_stride != 2:
        model.features[0][0].stride = (stem_stride, stem_stride)
    return model


def screen_model(n_classes: int, *, dropout: float = 0.2) -> nn.Module:
    """MobileNetV3-Small (random init) with its last layer replaced for ``n_classes`` screen types."""
    if n_classes < 1:
        raise ValueError("n_classes must be positive")
    model = mobilenet_v3_small(weights=None, dropout=dropout)
    last = model.classifier[3]
    model.classifier[3] = nn.Linear(last.in_features, n_classes)
    return model


def load_state(source: str | Path | Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state dict from a path (weights only: no pickled code runs) or an in-memory mapping."""
    if isinstance(source, Mapping):
        return dict(source)
    state = torch.load(Path(source), map_location="cpu", weights_only=True)
    if not isinstance(state, Mapping):
        raise ValueError(f"{source} does not hold a state dict")
    return dict(state)


def load_backbone(model: nn.Module, source: str | Path | Mapping[str, torch.Tensor],
                  prefix: str = CLASSIFIER_PREFIX) -> int:
    """Initialise ``model`` from a previous model's weights with the classifier dropped.

    The class list changes between community versions (new items, renames), so the old head can
    never be reused; everything else is. Keys whose shape differs (another architecture) are an
    error rather than silently skipped, because a half-loaded backbone trains worse than a fresh one
    without telling anybody. Returns how many tensors were loaded.
    """
    state = {k.removeprefix("module."): v for k, v in load_state(source).items()}
    backbone = {k: v for k, v in state.items() if not k.startswith(prefix)}
    own = model.state_dict()
    bad = [k for k, v in backbone.items() if k not in own or own[k].shape != v.shape]
    if bad:
        raise ValueError(f"backbone does not fit this model ({len(bad)} keys, e.g. {bad[:3]})")
    missing = [k for k in own if k not in backbone and not k.startswith(prefix)]
    if missing:
        raise ValueError(f"backbone lacks {len(missing)} weights, e.g. {missing[:3]}")
    model.load_state_dict(backbone, strict=False)
    return len(backbone)


def fit_temperature(logits: np.ndarray | torch.Tensor, labels: np.ndarray | torch.Tensor,
                    bounds: tuple[float, float] = (0.25, 20.0), iters: int = 60) -> float:
    """The temperature T minimising the validation NLL of ``softmax(logits / T)``.

    One scalar cannot change which class wins, so accuracy is untouched while the confidences the
    daemon thresholds on become honest (the predecessor's focal loss made them 0.39 at 93% accuracy).
    NLL is convex in 1/T, so a golden-section search on log T is exact enough and dependency-free.
    The lower bound matters: when every validation crop is right, the NLL keeps falling as T -> 0,
    and a model sharpened without limit would be certain of its mistakes on real screens.
    """
    z = torch.as_tensor(np.asarray(logits), dtype=torch.float64)
    y = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    if z.numel() == 0 or len(y) == 0:
        return 1.0

    def nll(log_t: float) -> float:
        return float(F.cross_entropy(z / float(np.exp(log_t)), y))

    lo, hi = np.log(bounds[0]), np.log(bounds[1])
    g = (np.sqrt(5.0) - 1.0) / 2.0
    a, b = hi - g * (hi - lo), lo + g * (hi - lo)
    fa, fb = nll(a), nll(b)
    for _ in range(iters):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - g * (hi - lo)
            fa = nll(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + g * (hi - lo)
            fb = nll(b)
    return float(np.exp((lo + hi) / 2.0))


def softmax_np(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of ``logits / temperature`` (numpy, numerically stable)."""
    z = np.asarray(logits, np.float64) / float(temperature)
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)
