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

Training speed: :func:`fast_depthwise` switches the depthwise convs to :class:`FastDepthwiseConv2d` for
the training loop only (same forward, a faster weight gradient on tiny maps, +16% steps/s on one
core; under bfloat16 autocast it also routes the stride-2 backward through float32, where oneDNN's
bfloat16 kernel is 10-100x slower), :func:`fast_squeeze_excite` does the same for the
squeeze-excitation blocks (one backward pass instead of autograd's slow broadcast accumulation) and
:func:`inplace_activations` turns off torchvision's in-place SiLU (which makes autograd clone every
activation), and ``CosineLinear.fused_backward`` gives the cosine head a hand-written backward
(:class:`_CosineLogits`). All are switched back afterwards, so the trained model, its state dict and
its ONNX graph are torchvision's (float32: autocast never changes the parameters' dtype).

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
from torchvision.ops.misc import SqueezeExcitation

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

    fused_backward = False  # training only (see :class:`_CosineLogits`); set per instance by the trainer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fused_backward and torch.is_grad_enabled():
            return _CosineLogits.apply(x, self.weight, self.bias, self.logit_scale)
        w = F.normalize(self.weight, dim=1)
        return F.linear(F.normalize(x, dim=1), w) * self.logit_scale.exp() + self.bias


class _CosineLogits(torch.autograd.Function):
    """:meth:`CosineLinear.forward` (float32) with a hand-written backward.

    With 3,000 classes the head's weight is 3,000 x 1,280, and autograd's backward of
    ``F.normalize(weight)`` walks it about eight times (division, its square, the broadcast norm, the
    accumulation). Here: ``d_w = (d_wn - wn * <d_wn, wn>) / |w|``, one row-dot and two in-place passes.
    Same formula, same eps as ``F.normalize`` (1e-12).
    """

    @staticmethod
    def forward(ctx, x, w, b, log_scale):
        rx = x.norm(dim=1, keepdim=True).clamp_min(1e-12)
        rw = w.norm(dim=1, keepdim=True).clamp_min(1e-12)
        xn, wn = x / rx, w / rw
        cos = xn @ wn.t()
        scale = log_scale.exp()
        ctx.save_for_backward(xn, wn, rx, rw, cos, scale)
        return torch.addcmul(b, cos, scale)

    @staticmethod
    def backward(ctx, g):
        xn, wn, rx, rw, cos, scale = ctx.saved_tensors
        gc = g * scale
        gx = gw = gb = gs = None
        if ctx.needs_input_grad[0]:
            gxn = gc @ wn
            gx = gxn.addcmul_(xn, (gxn * xn).sum(1, keepdim=True), value=-1.0).div_(rx)
        if ctx.needs_input_grad[1]:
            gwn = gc.t() @ xn
            dot = torch.bmm(gwn.unsqueeze(1), wn.unsqueeze(2)).view(-1, 1)  # row dots without a temporary
            gw = gwn.addcmul_(wn, dot, value=-1.0).div_(rw)
        if ctx.needs_input_grad[2]:
            gb = g.sum(0)
        if ctx.needs_input_grad[3]:
            gs = (g * cos).sum() * scale
        return gx, gw, gb, gs


# ----------------------------------------------------------------------------- faster depthwise backward
_aten_conv_backward = torch.ops.aten.convolution_backward
_TAPS: dict[tuple[int, ...], torch.Tensor] = {}


def _tap_matrix(h: int, w: int, ho: int, wo: int, k: int, s: int, p: int) -> torch.Tensor:
    """0/1 matrix ``(ho*wo*h*w, k*k)``: which kernel tap links output position o to input position i."""
    key = (h, w, ho, wo, k, s, p)
    if key not in _TAPS:
        t = torch.zeros(ho * wo, h * w, k * k)
        for oy in range(ho):
            for ox in range(wo):
                for i in range(k):
                    for j in range(k):
                        iy, ix = oy * s + i - p, ox * s + j - p
                        if 0 <= iy < h and 0 <= ix < w:
                            t[oy * wo + ox, iy * w + ix, i * k + j] = 1.0
        _TAPS[key] = t.reshape(-1, k * k)
    return _TAPS[key]


def depthwise_weight_grad(x: torch.Tensor, g: torch.Tensor, k: int, s: int, p: int) -> torch.Tensor:
    """d loss / d weight of a depthwise ``k x k`` conv (stride ``s``, padding ``p``), shape ``(C, 1, k, k)``.

    oneDNN's own kernel for this is slow exactly where EfficientNet-B0 at 64x48 spends its late
    layers: 5x5 kernels on 16x12 .. 2x2 maps, and 3x3 on 2x2 (10-24 ms a layer for a 128 batch on one
    core in float32, 20-40x the forward; in bfloat16 37-84 ms). Here, on maps of <= 4 pixels: the
    per-channel products of every (output, input) position pair summed over the batch (one broadcast
    multiply); 5x5 on maps up to 192 pixels (16x12): one bmm, C x (ho*wo) x (h*w), of those products;
    either folded onto the kernel taps by a 0/1 matrix. Everything else: oneDNN. The same sums in
    another order (float32 agreement ~1e-6 relative). One core, 128 crops, float32 / bfloat16 ms:
    1152ch 2x2 5x5 19 / 73 -> 1.3 / 1.1; 672ch 4x3 5x5 14 / 79 -> 2.8 / 1.9; 240ch 8x6 5x5 12 / 44 ->
    6.8 / 3.6; 144ch 16x12 5x5 stride 2 11 / 49 -> 15 / 8.5 (bmm only in bfloat16 there).
    """
    n, c, h, w = x.shape
    ho, wo = g.shape[2:]
    if h * w <= 4:  # (o, i, c) products summed over the batch: a 1-3 MB temporary
        taps = _tap_matrix(h, w, ho, wo, k, s, p).to(x.dtype)
        m = (g.permute(0, 2, 3, 1).reshape(n, ho * wo, 1, c) * x.permute(0, 2, 3, 1).reshape(n, 1, h * w, c)).sum(0)
        return (taps.t() @ m.reshape(-1, c)).t().reshape(c, 1, k, k)
    if k > 3 and (h * w <= 64 or (h * w <= 192 and x.dtype != torch.float32)):
        # one bmm of per-channel outer products (operands made contiguous), folded onto the taps
        taps = _tap_matrix(h, w, ho, wo, k, s, p).to(x.dtype)
        m = torch.bmm(g.permute(1, 2, 3, 0).reshape(c, ho * wo, n).contiguous(),
                      x.permute(1, 0, 2, 3).reshape(c, n, h * w).contiguous())
        return (m.reshape(c, -1) @ taps).view(c, 1, k, k)
    wt = torch.empty(c, 1, k, k, dtype=x.dtype)
    return _aten_conv_backward(g, x, wt, None, [s, s], [p, p], [1, 1], False, [0, 0], c, [False, True, False])[1]


class _DepthwiseConv(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, stride: int, padding: int) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.conf = (stride, padding)
        return F.conv2d(x, weight, None, stride, padding, 1, weight.shape[0])

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        x, weight = ctx.saved_tensors
        s, p = ctx.conf
        c, k = weight.shape[0], weight.shape[-1]
        dt = g.dtype  # the forward's compute dtype: bfloat16 under autocast, whatever x and weight are
        fmt = torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
        g = g.contiguous(memory_format=fmt)
        gx = gw = None
        if ctx.needs_input_grad[0]:
            if dt != torch.float32 and s > 1:
                # oneDNN's bfloat16 depthwise backward-data with stride 2 is 10-100x slower than its float32
                # one (96ch 32x24 -> 16x12: 188 vs 25 ms on one core): go through float32. Backward-data
                # reads only the input's shape, so x is not converted (an uninitialised stand-in).
                stand_in = torch.empty_strided(x.shape, x.stride(), dtype=torch.float32)
                gx = _aten_conv_backward(g.float(), stand_in, weight.float(), None, [s, s], [p, p], [1, 1], False,
                                         [0, 0], c, [True, False, False])[0]
            else:
                gx = _aten_conv_backward(g, x.to(dt), weight.to(dt), None, [s, s], [p, p], [1, 1], False, [0, 0], c,
                                         [True, False, False])[0]
            gx = gx.to(x.dtype)
        if ctx.needs_input_grad[1]:
            gw = depthwise_weight_grad(x.to(dt), g, k, s, p).to(weight.dtype)
        return gx, gw, None, None


class FastDepthwiseConv2d(nn.Conv2d):
    """A depthwise ``nn.Conv2d`` whose training backward uses :func:`depthwise_weight_grad`.

    Not built directly: :func:`fast_depthwise` switches the class of a model's depthwise convs for
    training and back afterwards, so parameters, state-dict keys, export and inference are exactly
    torchvision's. Forward is the same ``F.conv2d``; without grad it is plain ``nn.Conv2d``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() and self.weight.requires_grad:
            return _DepthwiseConv.apply(x, self.weight, self.stride[0], self.padding[0])
        return super().forward(x)


def _is_square_depthwise(m: nn.Module) -> bool:
    return (type(m) in (nn.Conv2d, FastDepthwiseConv2d) and m.groups > 1 and m.groups == m.in_channels
            == m.out_channels and m.bias is None and m.dilation == (1, 1) and m.padding_mode == "zeros"
            and m.kernel_size[0] == m.kernel_size[1] and m.stride[0] == m.stride[1]
            and isinstance(m.padding, tuple) and m.padding[0] == m.padding[1])


def fast_depthwise(model: nn.Module, enable: bool = True) -> int:
    """Switch the depthwise convs of ``model`` to (or back from) :class:`FastDepthwiseConv2d`."""
    n = 0
    for m in model.modules():
        if _is_square_depthwise(m):
            m.__class__ = FastDepthwiseConv2d if enable else nn.Conv2d
            n += 1
    return n


class _SqueezeExcite(torch.autograd.Function):
    """``x * sigmoid(fc2(silu(fc1(mean_hw(x)))))`` with one backward pass over ``x``.

    Autograd's own graph sends ``x`` two gradients, the gate's (dense) and the pooled mean's (a
    broadcast), and sums them with an ``add_`` that on channels-last bfloat16 maps ran at ~2 ns an
    element (23 ms for 128x144x16x12 on one core, ~70 ms a step over the 16 blocks). Here the small
    MLP's backward runs inside this backward (re-run from the saved pooled input, a few KB), and the
    input gradient is one ``addcmul``. Autocast: the backward runs in the forward's autocast state.
    """

    @staticmethod
    @torch.amp.custom_fwd(device_type="cpu")
    def forward(ctx, x, w1, b1, w2, b2):
        p = x.mean((2, 3), keepdim=True)
        scale = torch.sigmoid(F.conv2d(F.silu(F.conv2d(p, w1, b1)), w2, b2))
        ctx.save_for_backward(x, p, scale, w1, b1, w2, b2)
        return x * scale

    @staticmethod
    @torch.amp.custom_bwd(device_type="cpu")
    def backward(ctx, g):
        x, p, scale, w1, b1, w2, b2 = ctx.saved_tensors
        d_scale = (g * x).sum((2, 3), keepdim=True)
        with torch.enable_grad():
            leaves = [t.detach().requires_grad_(True) for t in (p, w1, b1, w2, b2)]
            s = torch.sigmoid(F.conv2d(F.silu(F.conv2d(leaves[0], leaves[1], leaves[2])), leaves[3], leaves[4]))
            dp, dw1, db1, dw2, db2 = torch.autograd.grad(s, leaves, d_scale.to(s.dtype))
        gx = torch.addcmul((dp / (x.shape[2] * x.shape[3])).to(g.dtype), g, scale.to(g.dtype))
        return gx.to(x.dtype), dw1, db1, dw2, db2


class FastSqueezeExcitation(SqueezeExcitation):
    """torchvision's EfficientNet squeeze-excitation (SiLU, sigmoid) with :class:`_SqueezeExcite`'s backward.

    Switched on and off by :func:`fast_squeeze_excite` like :class:`FastDepthwiseConv2d`: same
    parameters and keys; without grad it is torchvision's module.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled():
            return _SqueezeExcite.apply(x, self.fc1.weight, self.fc1.bias, self.fc2.weight, self.fc2.bias)
        return super().forward(x)


def fast_squeeze_excite(model: nn.Module, enable: bool = True) -> int:
    """Switch the EfficientNet squeeze-excitation blocks of ``model`` to (or back from) the fast one."""
    n = 0
    for m in model.modules():
        if type(m) in (SqueezeExcitation, FastSqueezeExcitation) and isinstance(m.activation, nn.SiLU) \
                and isinstance(m.scale_activation, nn.Sigmoid):
            m.__class__ = FastSqueezeExcitation if enable else SqueezeExcitation
            n += 1
    return n


def inplace_activations(model: nn.Module, enable: bool) -> int:
    """Set ``inplace`` of every SiLU: torchvision's in-place SiLU makes autograd clone each activation
    (silu backward needs the input it overwrote), a full copy of the biggest maps every step."""
    n = 0
    for m in model.modules():
        if isinstance(m, nn.SiLU):
            m.inplace = enable
            n += 1
    return n


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
