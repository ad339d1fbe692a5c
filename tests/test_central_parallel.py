"""Data-parallel icon training (central.parallel): real spawned processes over a real gloo group."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from central import crops as C
from central.parallel import Solo, run_workers
from central.train_icons import TrainConfig, train_icon_classifier
from warpd.preprocess import normalise_batch


def _grads_of_rank(group: Solo) -> list[torch.Tensor]:
    """Each rank gives its parameters other gradients (one rank none at all); returns them averaged."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    for i, p in enumerate(net.parameters()):
        if group.rank == 1 and i == 3:
            continue  # no gradient here: it must count as zeros, not hang the all-reduce
        p.grad = torch.full_like(p, float(group.rank + 1) * (i + 1))
    group.average_grads(net.parameters())
    return [p.grad.clone() for p in net.parameters()]


def test_gradients_are_averaged_over_the_ranks() -> None:
    grads = run_workers(_grads_of_rank, 2)
    expected = [1.5 * 1, 1.5 * 2, 1.5 * 3, 0.5 * 4]  # (1 + 2) / 2 x (i + 1); the last: (4 + 0) / 2
    assert [float(g.flatten()[0]) for g in grads] == expected
    assert all(torch.all(g == g.flatten()[0]) for g in grads)


def _shared_rows_and_stats(group: Solo) -> list[torch.Tensor]:
    """Each rank computes its share of 7 rows (one share is shorter); BatchNorm statistics averaged."""
    rows = torch.arange(7 * 3, dtype=torch.float32).reshape(7, 3)
    gathered = group.gather_rows(rows[group.share(7)] * 1.0, 7)
    bn = nn.BatchNorm1d(2)
    bn.running_mean.fill_(float(group.rank))
    bn.running_var.fill_(2.0 + group.rank)
    group.average_buffers(bn)
    return [gathered, bn.running_mean.clone(), bn.running_var.clone()]


def test_evaluation_shares_are_gathered_in_order_and_statistics_averaged() -> None:
    gathered, mean, var = run_workers(_shared_rows_and_stats, 2)
    assert torch.equal(gathered, torch.arange(21, dtype=torch.float32).reshape(7, 3))
    assert torch.equal(mean, torch.full((2,), 0.5)) and torch.equal(var, torch.full((2,), 2.5))


def _fails_on_rank_1(group: Solo) -> int:
    if group.rank == 1:
        raise ValueError("rank 1 breaks")
    group.sum_(torch.zeros(1))  # rank 0 would wait here for ever without the failure reaching it
    return 0


def test_a_failing_worker_fails_the_run_instead_of_hanging_it() -> None:
    with pytest.raises(RuntimeError, match="training worker failed"):
        run_workers(_fails_on_rank_1, 2, timeout_s=60.0)


@pytest.fixture(scope="module")
def small_bank() -> C.IconBank:
    from warpd.catalog import Catalog

    return C.render_bank(sorted(Catalog.load().items)[:8])


def _cfg(**kw) -> TrainConfig:
    base = dict(seed=3, batch_size=16, max_steps=12, val_per_class=2, eval_every_steps=6, progress=False,
                threads=2, workers=2, bn_recal_batches=1, prefetch=2, imprint_views=2, budget_s=300.0)
    return TrainConfig(**(base | kw))


@pytest.mark.slow
def test_two_worker_runs_are_reproducible_and_learn(small_bank: C.IconBank) -> None:
    runs = [train_icon_classifier(small_bank, _cfg(max_steps=30, eval_every_steps=10)) for _ in range(2)]
    a, b = (r.model.state_dict() for r in runs)
    assert all(torch.equal(a[k], b[k]) for k in a), "same seed, same weights, across processes too"
    res = runs[0]
    assert res.steps == 30 and res.samples == 30 * 16, "samples count every rank's share"
    assert res.names == list(small_bank.names) and not res.model.training
    assert [h["step"] for h in res.history] == [10, 20, 30, 30] and res.stop_reason == "max_steps"  # + imprinted
    x = torch.from_numpy(normalise_batch(C.synth_batch(small_bank, np.arange(8).repeat(4),
                                                         np.random.default_rng(1), C.AugmentConfig())))
    with torch.no_grad():
        acc = float((res.model(x).argmax(1).numpy() == np.arange(8).repeat(4)).mean())
    assert acc > 0.3, f"two workers learnt nothing: {acc:.2f} on 8 classes (chance 0.125)"
    solo = train_icon_classifier(small_bank, _cfg(max_steps=30, eval_every_steps=10, workers=1))
    assert not all(torch.equal(a[k], solo.model.state_dict()[k]) for k in a)  # each rank saw its own crops


def test_a_backbone_that_does_not_fit_is_refused_before_any_worker_starts(small_bank: C.IconBank) -> None:
    """The CLI falls back to a fresh start on this ValueError; from inside a worker it would be a RuntimeError."""
    from central.models import screen_model

    with pytest.raises(ValueError, match="backbone"):
        train_icon_classifier(small_bank, _cfg(), init_backbone=screen_model(3).state_dict())


@pytest.mark.slow
def test_two_workers_keep_the_time_budget(small_bank: C.IconBank) -> None:
    import time

    cfg = _cfg(max_steps=0, budget_s=12.0, reserve_s=2.0, eval_every_steps=0, eval_every_s=3.0)
    t0 = time.monotonic()
    res = train_icon_classifier(small_bank, cfg, start_time=t0)
    took = time.monotonic() - t0
    assert res.stop_reason in ("budget", "early_stop") and res.steps > 0
    assert took <= cfg.budget_s - cfg.reserve_s + 0.75, f"{took:.1f} s (process start and exit included)"
