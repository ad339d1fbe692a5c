"""Central icon training: synthesis, the loop, calibration and export (CI-sized: ~40 s on 2 cores).

Torch runs on one thread here: CI cores are shared, and OpenMP threads that spin-wait on a busy
machine made a 2-thread run 6x slower than a 1-thread one.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

from central import crops as C  # noqa: E402
from central.export import (LABEL_MAP_FILE, META_FILE, MODEL_FILE, ONNX_FILE, load_icon_classifier,  # noqa: E402
                            onnx_session, read_label_map, save_artifacts)
from central.models import (FastSqueezeExcitation, fit_temperature, icon_model, load_backbone,  # noqa: E402
                            load_state, screen_model)
from central.train_icons import (TrainConfig, build_parser, config_from_args, predict_logits,  # noqa: E402
                                 train_icon_classifier, train_screen_classifier, ScreenConfig)
from warpd.preprocess import icon_batch, icon_tensor, normalise_batch, to_model_size  # noqa: E402
from warpd.synth.icons import apply_rarity, render_icon  # noqa: E402

pytestmark = pytest.mark.train

N_CLASSES = 20


@pytest.fixture(autouse=True)
def one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def bank():
    from warpd.catalog import Catalog

    names = sorted(Catalog.load().items)[:N_CLASSES]
    return C.render_bank(names)


@pytest.fixture(scope="module")
def trained(bank):
    """One tiny seeded run shared by the tests that need a trained model."""
    torch.set_num_threads(1)
    cfg = TrainConfig(seed=1, batch_size=32, max_steps=50, lr=2e-3, warmup_frac=0.1, val_per_class=5,
                      eval_every_steps=25, progress=False, threads=1, budget_s=120)
    return train_icon_classifier(bank, cfg)


# ----------------------------------------------------------------------------- preprocessing
def test_icon_batch_equals_icon_tensor():
    rng = np.random.default_rng(0)
    crops = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in ((64, 48), (31, 26), (130, 101), (64, 64))]
    crops.append(rng.integers(0, 256, (50, 40), dtype=np.uint8))  # grey
    crops.append(rng.integers(0, 256, (70, 52, 4), dtype=np.uint8))  # RGBA
    ref = np.stack([icon_tensor(c) for c in crops])
    got = icon_batch(crops)
    assert got.shape == ref.shape == (len(crops), 3, 64, 48) and got.dtype == np.float32
    assert np.abs(got - ref).max() <= 1e-6
    same = rng.integers(0, 256, (5, 64, 48, 3), dtype=np.uint8)  # the array fast path
    assert np.abs(icon_batch(same) - np.stack([icon_tensor(c) for c in same])).max() <= 1e-6


def test_rarity_composite_matches_renderer():
    icon = render_icon("Phaser Beam Array")
    arr = np.asarray(icon.convert("RGB"))[None]
    overlays = C.rarity_overlays()
    for i, key in enumerate(C.RARITIES[1:], start=1):
        ref = np.asarray(apply_rarity(icon, key).convert("RGB")).astype(int)
        got = C.composite_rarity(arr, np.array([i]), overlays)[0].astype(int)
        assert np.abs(got - ref).max() <= 2, key
    assert np.array_equal(C.composite_rarity(arr, np.array([0]), overlays)[0], arr[0])


def test_augmentation_never_flips():
    """A left-bright/top-bright icon must stay so in every crop; any flip (even rare) fails this."""
    icon = np.zeros((64, 49, 3), np.uint8)
    icon[:, :20] = 230  # bright left band
    icon[:22, 20:] = 150  # lighter top band
    bank = C.IconBank(["asym"], icon[None])
    rng = np.random.default_rng(3)
    batch = C.synth_batch(bank, np.zeros(300, np.int64), rng, C.AugmentConfig())
    g = batch.astype(np.float32).mean(axis=3)
    left, right = g[:, 16:48, :14].mean(axis=(1, 2)), g[:, 16:48, -14:].mean(axis=(1, 2))
    top, bottom = g[:, :14, 24:].mean(axis=(1, 2)), g[:, -14:, 24:].mean(axis=(1, 2))
    assert (left > right + 40).all()
    assert (top > bottom + 20).all()


def test_synth_crop_sizes_cover_720p_to_4k():
    bank = C.IconBank(["x"], np.full((1, 64, 49, 3), 90, np.uint8))
    crops = C.synth_crops(bank, np.zeros(400, np.int64), np.random.default_rng(0), C.AugmentConfig())
    heights = np.array([c.shape[0] for c in crops])
    assert heights.min() < 40 and heights.max() > 110  # ~0.6x .. ~2x of 64 px


# ----------------------------------------------------------------------------- splits
def test_near_duplicates_and_screenshots_share_a_group():
    import cv2

    a = np.asarray(render_icon("Plasma Dual Cannons").convert("RGB"))
    b = np.asarray(render_icon("Tetryon Torpedo Launcher").convert("RGB"))
    a_shift = np.ascontiguousarray(np.roll(a, 1, axis=1))
    ok, buf = cv2.imencode(".jpg", a_shift, [cv2.IMWRITE_JPEG_QUALITY, 70])
    a_jpeg = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    crops = [to_model_size(x, (64, 64)) for x in (a, a_jpeg, b, b)]
    groups = C.near_duplicate_groups(crops, ["s1", "s2", "s3", "s4"])
    assert groups[0] == groups[1]  # near-duplicates meet
    assert groups[2] == groups[3] and groups[0] != groups[2]
    groups2 = C.near_duplicate_groups(crops[:1] + crops[2:3], ["shot", "shot"])
    assert groups2[0] == groups2[1]  # same screenshot, different icons
    keys = [f"g{i}" for i in range(400)]
    m1, m2 = C.group_split(keys, 0.2, 7), C.group_split(keys, 0.2, 7)
    assert np.array_equal(m1, m2) and 0.1 < m1.mean() < 0.3
    assert np.array_equal(C.group_split(keys[:100], 0.2, 7), m1[:100])  # stable as groups come and go


# ----------------------------------------------------------------------------- the loop
def test_tiny_run_learns_well_above_chance(bank, trained):
    assert trained.steps == 50 and trained.stop_reason == "max_steps"
    assert trained.val_acc > 0.5  # chance is 0.05
    rng = np.random.default_rng(4242)  # fresh crops: neither training's nor validation's seed
    y = rng.integers(0, N_CLASSES, 200)
    x = normalise_batch(C.synth_batch(bank, y, rng, C.AugmentConfig()))
    acc = (predict_logits(trained.model, x).argmax(1) == y).mean()
    assert acc > 0.5
    # the temperature minimises NLL, not ECE: when the raw model is already close to calibrated (the
    # episode loss left this one at T ~ 1.2, ECE 0.065 on 100 crops) ECE may move by a bin's noise
    # (the bf16 default: T = 1.03 took ECE 0.032 -> 0.046; float32 runs of this fixture 0.13 -> 0.10)
    assert 0.25 <= trained.temperature <= 20 and trained.ece_calibrated <= trained.ece_raw + 0.02


def _tiny_cfg(**kw) -> TrainConfig:
    base = dict(seed=5, batch_size=8, max_steps=4, val_per_class=1, eval_every_steps=0, eval_every_s=1e9,
                progress=False, threads=1, bn_recal_batches=1, prefetch=2)
    return TrainConfig(**(base | kw))


def _community(bank: C.IconBank) -> list:
    rng = np.random.default_rng(9)
    out = []
    for i in range(12):
        k = i % 4
        crop = to_model_size(C.synth_crops(bank, np.array([k]), rng, C.AugmentConfig())[0], (64, 64))
        out.append(C.CommunityCrop(crop, bank.names[k], group=f"shot{i // 3}", hard=i % 5 == 0))
    out.append((out[0].crop, "Not An Item In The Library"))  # outside the vocabulary: skipped
    return out


def test_same_seed_same_weights_with_community_crops(bank):
    small = C.IconBank(bank.names[:6], bank.icons[:6])
    runs = [train_icon_classifier(small, _tiny_cfg(), community=_community(small)) for _ in range(2)]
    a, b = (r.model.state_dict() for r in runs)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert runs[0].skipped_labels == 1 and runs[0].n_community_train + runs[0].n_community_val == 12
    other = train_icon_classifier(small, _tiny_cfg(seed=6))
    c = other.model.state_dict()
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_time_budget_is_respected(bank):
    small = C.IconBank(bank.names[:6], bank.icons[:6])
    cfg = _tiny_cfg(max_steps=0, budget_s=6.0, reserve_s=2.0, eval_every_s=1.5)
    t0 = time.monotonic()
    res = train_icon_classifier(small, cfg, start_time=t0)
    took = time.monotonic() - t0
    assert res.stop_reason in ("budget", "early_stop") and res.steps > 0
    assert took <= cfg.budget_s - cfg.reserve_s + 0.75


def test_temperature_recovers_overconfidence():
    rng = np.random.default_rng(0)
    z = rng.normal(0, 2, (4000, 10))
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    y = np.array([rng.choice(10, p=row) for row in p])
    assert abs(fit_temperature(3.0 * z, y) - 3.0) < 0.3


# ----------------------------------------------------------------------------- export and loading
def test_export_onnx_parity_and_weights_only_reload(bank, trained, tmp_path):
    rng = np.random.default_rng(11)
    y = rng.integers(0, N_CLASSES, 7)
    x = normalise_batch(C.synth_batch(bank, y, rng, C.AugmentConfig()))
    paths = save_artifacts(tmp_path, trained.model, trained.names, trained.temperature, samples=x)
    assert {p.name for p in paths.values()} == {ONNX_FILE, MODEL_FILE, LABEL_MAP_FILE, META_FILE}

    sess = onnx_session(tmp_path / ONNX_FILE)
    with torch.inference_mode():
        ref = (trained.model.eval()(torch.from_numpy(x)) / trained.temperature).numpy()
    for batch in (x[:1], x):  # dynamic batch axis
        out = sess.run(None, {sess.get_inputs()[0].name: batch})[0]
        assert out.shape == (len(batch), N_CLASSES)
        assert np.abs(out - ref[:len(batch)]).max() * max(1.0, trained.temperature) <= 1e-4

    raw = json.loads((tmp_path / LABEL_MAP_FILE).read_text(encoding="utf-8"))
    assert raw == {str(i): n for i, n in enumerate(trained.names)}
    meta = json.loads((tmp_path / META_FILE).read_text(encoding="utf-8"))
    assert meta["n_classes"] == N_CLASSES and meta["input_size"] == [64, 48]
    assert meta["temperature"] == pytest.approx(trained.temperature) and len(meta["mean"]) == len(meta["std"]) == 3

    state = torch.load(tmp_path / MODEL_FILE, weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    model, names, meta2 = load_icon_classifier(tmp_path)
    assert names == trained.names == read_label_map(tmp_path / LABEL_MAP_FILE)
    with torch.inference_mode():
        assert torch.equal(model(torch.from_numpy(x)), trained.model.eval()(torch.from_numpy(x)))


def test_backbone_init_strips_the_classifier(trained, tmp_path):
    path = tmp_path / "prev.pt"
    torch.save(trained.model.state_dict(), path)
    fresh = icon_model(7)
    head_before = fresh.classifier[1].weight.clone()
    n = load_backbone(fresh, path)
    prev = trained.model.state_dict()
    assert n == len([k for k in prev if not k.startswith("classifier.")])
    now = fresh.state_dict()
    assert all(torch.equal(now[k], prev[k]) for k in prev if not k.startswith("classifier."))
    assert torch.equal(fresh.classifier[1].weight, head_before) and fresh.classifier[1].out_features == 7
    with pytest.raises(ValueError):
        load_backbone(screen_model(3), path)  # another architecture is refused, not half-loaded


def test_cosine_head_default_and_linear_head_share_the_backbone(trained):
    from central.models import CosineLinear

    head = trained.model.classifier[1]
    assert isinstance(head, CosineLinear) and head.out_features == N_CLASSES
    lin = icon_model(7, head="linear")
    assert type(lin.classifier[1]) is torch.nn.Linear
    prev = trained.model.state_dict()
    assert load_backbone(lin, prev) == len([k for k in prev if not k.startswith("classifier.")])
    x = torch.randn(2, 3, 64, 48)
    with torch.inference_mode():  # logits of a cosine head are bounded by its scale (+ bias)
        z = trained.model.eval()(x)
    assert z.abs().max() <= head.logit_scale.detach().exp().item() + head.bias.detach().abs().max().item() + 1e-4
    with pytest.raises(ValueError):
        icon_model(3, head="mlp")


def test_imprint_sets_unit_prototypes(bank):
    from central.train_icons import imprint_head

    small = C.IconBank(bank.names[:6], bank.icons[:6])
    cfg = _tiny_cfg(imprint_per_class=2)
    model = icon_model(6).to(memory_format=torch.channels_last)
    before = model.classifier[1].weight.clone()
    imprint_head(model, small, cfg, np.random.default_rng(0))
    w = model.classifier[1].weight
    assert torch.allclose(w.norm(dim=1), torch.ones(6), atol=1e-5) and not torch.allclose(w, before)
    assert model.training


def test_final_imprint_ran_and_model_is_plain_torchvision(trained):
    from central.models import FastDepthwiseConv2d

    assert trained.imprint_seconds > 0  # default: prototypes of fresh views replace the SGD head rows
    # ... and that model is evaluated too (after the loop's own eval at step 50); the better one is kept
    assert [h["step"] for h in trained.history[-2:]] == [50, 50]
    assert not any(isinstance(m, FastDepthwiseConv2d) for m in trained.model.modules())
    # the training-only switches are undone: torchvision's squeeze-excitation, in-place SiLU, float32
    assert not any(isinstance(m, FastSqueezeExcitation) for m in trained.model.modules())
    assert all(m.inplace for m in trained.model.modules() if isinstance(m, torch.nn.SiLU))
    assert "fused_backward" not in vars(trained.model.classifier[1])
    assert all(v.dtype == torch.float32 for v in trained.model.state_dict().values() if v.is_floating_point())


def test_imprint_from_trained_backbone_beats_the_sgd_head(bank):
    """60 classes, 100 steps of 32: the backbone has learnt something, each head row has seen ~50
    crops. Replacing the rows by prototypes of 4 fresh views must help (measured 78% -> 83%)."""
    import copy

    from central.train_icons import class_prototypes
    from warpd.catalog import Catalog

    big = C.render_bank(sorted(Catalog.load().items)[:60])
    cfg = TrainConfig(seed=1, batch_size=32, max_steps=100, warmup_frac=0.1, val_per_class=1, eval_every_s=1e9,
                      progress=False, threads=1, budget_s=300, imprint_at=())
    res = train_icon_classifier(big, cfg)
    assert res.imprint_seconds < 0.5  # imprint_at=() trains the SGD head only
    rng = np.random.default_rng(4242)
    y = rng.integers(0, 60, 400)
    x = normalise_batch(C.synth_batch(big, y, rng, C.AugmentConfig()))
    sgd = (predict_logits(res.model, x).argmax(1) == y).mean()
    model = copy.deepcopy(res.model)
    assert class_prototypes(model, big, 4, cfg, np.random.default_rng([1, 29])).imprint(model)
    imprinted = (predict_logits(model, x).argmax(1) == y).mean()
    assert imprinted >= sgd + 0.02, (sgd, imprinted)


def test_batches_of_k_classes_by_v_views(bank):
    """``views_per_class=v``: the synthetic part of a batch is batch/v classes, each v crops (not
    copies: each is its own augmentation)."""
    from central.train_icons import BatchProducer, CommunitySet

    none = CommunitySet([], np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros(0))
    prod = BatchProducer(bank, none, _tiny_cfg(batch_size=16, views_per_class=4), seed=3)
    try:
        x, y, _ = prod.make()
    finally:
        prod.close()
    assert len(y) == 16
    assert all((y[i:i + 4] == y[i]).all() for i in range(0, 16, 4))
    assert not np.array_equal(x[0], x[1])  # same class, different views
    prod = BatchProducer(bank, none, _tiny_cfg(batch_size=16, views_per_class=1), seed=3)
    try:
        assert len(np.unique(prod.make()[1])) > 4  # 1: a class drawn per crop
    finally:
        prod.close()


def test_episode_loss_rewards_tight_class_clusters():
    from central.train_icons import episode_loss

    gen = torch.Generator().manual_seed(0)
    y = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 3])
    centres = torch.randn(4, 16, generator=gen)
    tight = centres[y] + 0.05 * torch.randn(9, 16, generator=gen)
    loose = torch.randn(9, 16, generator=gen)
    assert float(episode_loss(tight, y)) < 0.01 < float(episode_loss(loose, y))
    # the margin is taken off the own class's cosine only: it raises the loss of the same features
    assert float(episode_loss(loose, y, margin=0.3)) > float(episode_loss(loose, y))
    assert float(episode_loss(loose, torch.arange(9))) == 0.0  # no class with two crops: nothing to learn


def test_episode_loss_alone_trains_the_backbone(bank):
    """With the head's cross entropy off, the in-batch prototypical loss is what moves the backbone."""
    small = C.IconBank(bank.names[:6], bank.icons[:6])
    kw = dict(imprint_at=(), ce_weight=0.0, views_per_class=4, batch_size=16, weight_decay=0.0)
    still = train_icon_classifier(small, _tiny_cfg(**kw, episode_weight=0.0)).model.state_dict()
    moved = train_icon_classifier(small, _tiny_cfg(**kw, episode_weight=1.0)).model.state_dict()
    key = "features.0.0.weight"
    assert not torch.equal(still[key], moved[key])


def test_cosface_margin_changes_training(bank):
    """``margin > 0`` subtracts s*m from the true class's logit in training (and only there)."""
    small = C.IconBank(bank.names[:6], bank.icons[:6])
    a = train_icon_classifier(small, _tiny_cfg(imprint_at=(), margin=0.0)).model.state_dict()
    b = train_icon_classifier(small, _tiny_cfg(imprint_at=(), margin=0.3)).model.state_dict()
    assert not all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("shape,k,s", [((6, 40, 2, 2), 5, 1), ((6, 40, 2, 2), 3, 1), ((6, 24, 4, 3), 5, 1),
                                       ((6, 24, 4, 3), 5, 2), ((6, 16, 8, 6), 5, 1), ((6, 8, 16, 12), 3, 2)])
def test_fast_depthwise_gradients_equal_torch(shape, k, s):
    from central.models import FastDepthwiseConv2d, fast_depthwise

    torch.manual_seed(0)
    ref = torch.nn.Sequential(torch.nn.Conv2d(shape[1], shape[1], k, s, k // 2, groups=shape[1], bias=False))
    fast = copy_module(ref)
    assert fast_depthwise(fast) == 1 and isinstance(fast[0], FastDepthwiseConv2d)
    x = torch.randn(shape).contiguous(memory_format=torch.channels_last)
    grads = []
    for m in (ref, fast):
        xi = x.clone().requires_grad_(True)
        out = m(xi)
        out.backward(torch.linspace(-1, 1, out.numel()).view_as(out))
        grads.append((out.detach(), xi.grad, m[0].weight.grad))
    for a, b in zip(*grads):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-5)
    assert fast_depthwise(fast, enable=False) == 1 and type(fast[0]) is torch.nn.Conv2d


@pytest.mark.parametrize("shape,k,s", [((6, 40, 2, 2), 5, 1), ((6, 24, 4, 3), 5, 2), ((6, 16, 8, 6), 5, 1),
                                       ((6, 8, 16, 12), 5, 2), ((6, 8, 16, 12), 3, 2), ((6, 8, 16, 12), 3, 1)])
def test_fast_depthwise_under_bf16_autocast_matches_torch(shape, k, s):
    """Under bfloat16 autocast the fast backward (stride 2 through float32, 5x5 on 16x12 by bmm) gives
    torch's own autocast gradients to bfloat16 precision, in the tensors' own dtypes."""
    from central.models import fast_depthwise

    torch.manual_seed(0)
    ref = torch.nn.Sequential(torch.nn.Conv2d(shape[1], shape[1], k, s, k // 2, groups=shape[1], bias=False))
    fast = copy_module(ref)
    fast_depthwise(fast)
    x = torch.randn(shape).to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
    grads = []
    for m in (ref, fast):
        xi = x.clone().requires_grad_(True)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = m(xi)
        assert out.dtype == torch.bfloat16
        out.float().backward(torch.linspace(-1, 1, out.numel()).view_as(out))
        assert xi.grad.dtype == torch.bfloat16 and m[0].weight.grad.dtype == torch.float32
        grads.append((out.detach().float(), xi.grad.float(), m[0].weight.grad))
    for a, b in zip(*grads):
        assert (a - b).norm() <= 2e-2 * a.norm(), ((a - b).norm(), a.norm())


@pytest.mark.parametrize("bf16", [False, True])
def test_fast_squeeze_excite_matches_torchvision(bf16):
    """The one-pass squeeze-excitation backward gives autograd's gradients (float32: to rounding)."""
    from contextlib import nullcontext

    from torchvision.ops.misc import SqueezeExcitation

    from central.models import fast_squeeze_excite

    torch.manual_seed(0)
    ref = torch.nn.Sequential(SqueezeExcitation(24, 6, torch.nn.SiLU))
    fast = copy_module(ref)
    assert fast_squeeze_excite(fast) == 1 and isinstance(fast[0], FastSqueezeExcitation)
    x = torch.randn(5, 24, 4, 3).contiguous(memory_format=torch.channels_last)
    grads = []
    for m in (ref, fast):
        xi = x.clone().requires_grad_(True)
        with torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else nullcontext():
            out = m(xi)
        out.float().backward(torch.linspace(-1, 1, out.numel()).view_as(out))
        grads.append([out.detach().float(), xi.grad] + [p.grad for p in m.parameters()])
    tol = 2e-2 if bf16 else 1e-5
    for a, b in zip(*grads):
        assert a.dtype == b.dtype and (a - b).norm() <= tol * a.norm() + 1e-7, ((a - b).norm(), a.norm())
    with torch.no_grad():  # without grad: torchvision's forward
        assert torch.equal(fast(x), ref(x))
    assert fast_squeeze_excite(fast, enable=False) == 1 and type(fast[0]) is SqueezeExcitation


def test_fused_cosine_head_backward_matches_autograd():
    """The hand-written cosine-head backward (training only) gives autograd's gradients to rounding."""
    import copy

    from central.models import CosineLinear

    torch.manual_seed(0)
    ref = CosineLinear(32, 50)
    torch.nn.init.normal_(ref.bias, 0, 0.1)
    fast = copy.deepcopy(ref)
    fast.fused_backward = True
    x, y = torch.randn(12, 32), torch.randint(0, 50, (12,))
    res = []
    for m in (ref, fast):
        xi = x.clone().requires_grad_(True)
        out = m(xi)
        torch.nn.functional.cross_entropy(out, y, label_smoothing=0.1).backward()
        res.append([out.detach(), xi.grad] + [p.grad for p in (m.weight, m.bias, m.logit_scale)])
    for a, b in zip(*res):
        assert a is not None and b is not None and torch.allclose(a, b, rtol=1e-5, atol=1e-7)
    with torch.no_grad():
        assert torch.equal(fast(x), ref(x))  # no grad: the plain forward (what export traces)


def test_bf16_training_learns_and_leaves_a_float32_torchvision_model(bank, tmp_path):
    """The bfloat16 path trains (a tiny seeded problem: the loss falls and val accuracy is far above
    chance), really is another numeric path than float32 (other weights from the same seed), and
    leaves float32 weights whose ONNX export matches torch (save_artifacts checks 1e-4 itself)."""
    small = C.IconBank(bank.names[:8], bank.icons[:8])
    kw = dict(seed=3, batch_size=32, max_steps=40, warmup_frac=0.1, val_per_class=4, eval_every_steps=20,
              imprint_at=(), bn_recal_batches=2)
    runs = {bf: train_icon_classifier(small, _tiny_cfg(bf16=bf, **kw)) for bf in (False, True)}
    res = runs[True]
    assert res.history[-1]["train_loss"] < 0.8 * res.history[0]["train_loss"], res.history
    assert res.val_acc > 0.5  # chance is 0.125
    a, b = runs[False].model.state_dict(), res.model.state_dict()
    assert a.keys() == b.keys() and not all(torch.equal(a[k], b[k]) for k in a)
    assert all(v.dtype == torch.float32 for v in b.values() if v.is_floating_point())
    rng = np.random.default_rng(5)
    x = normalise_batch(C.synth_batch(small, rng.integers(0, 8, 5), rng, C.AugmentConfig()))
    save_artifacts(tmp_path, res.model, res.names, res.temperature, samples=x)
    state = torch.load(tmp_path / MODEL_FILE, weights_only=True)
    assert all(v.dtype == torch.float32 for v in state.values() if v.is_floating_point())
    sess = onnx_session(tmp_path / ONNX_FILE)
    with torch.inference_mode():
        ref = (res.model.eval()(torch.from_numpy(x)) / res.temperature).numpy()
    out = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    assert np.abs(out - ref).max() * max(1.0, res.temperature) <= 1e-4


def copy_module(m):
    import copy

    return copy.deepcopy(m)


def test_pickled_objects_are_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.pt"
    torch.save({"features.0.0.weight": Evil()}, path)
    with pytest.raises(Exception):
        load_state(path)


# ----------------------------------------------------------------------------- screen model and CLI
def test_screen_model_trains_only_from_seven_screenshots():
    rng = np.random.default_rng(0)
    imgs = [rng.integers(0, 256, (60, 100, 3), dtype=np.uint8) for _ in range(7)]
    labels = ["SPACE_EQ", "TRAITS"] * 3 + ["SPACE_EQ"]
    cfg = ScreenConfig(epochs=1, batch_size=8)
    assert train_screen_classifier(imgs[:6], labels[:6], cfg) is None
    res = train_screen_classifier(imgs, labels, cfg)
    assert res is not None and res.epochs == 1 and res.labels == ["SPACE_EQ", "TRAITS"]
    assert res.model.classifier[3].out_features == 2 and 0.0 <= res.val_acc <= 1.0


def test_every_knob_is_a_flag():
    args = build_parser().parse_args(["--icons", "x", "--out", "y", "--batch-size", "8", "--label-smoothing", "0",
                                      "--no-channels-last", "--aug-scale", "0.6", "2.0", "--aug-jpeg-p", "0.9"])
    cfg = config_from_args(args)
    assert cfg.batch_size == 8 and cfg.label_smoothing == 0 and cfg.channels_last is False
    assert cfg.augment.scale == (0.6, 2.0) and cfg.augment.jpeg_p == 0.9
    assert cfg.imprint_at == (1.0,)  # variable-length tuples: any number of values, also none
    args = build_parser().parse_args(["--icons", "x", "--out", "y", "--imprint-at", "0.5", "1.0"])
    assert config_from_args(args).imprint_at == (0.5, 1.0)
    args = build_parser().parse_args(["--icons", "x", "--out", "y", "--imprint-at"])
    assert config_from_args(args).imprint_at == ()
    cfg = config_from_args(build_parser().parse_args(["--icons", "x", "--out", "y"]))
    assert cfg.bf16 and cfg.fused_adamw and cfg.fast_se and cfg.fast_head and not cfg.inplace_silu  # speed
    args = build_parser().parse_args(["--icons", "x", "--out", "y", "--no-bf16", "--no-fused-adamw", "--no-fast-se",
                                      "--no-fast-head", "--inplace-silu"])
    cfg = config_from_args(args)
    assert not (cfg.bf16 or cfg.fused_adamw or cfg.fast_se or cfg.fast_head) and cfg.inplace_silu
