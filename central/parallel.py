"""Data-parallel training on CPU: one process per worker, one torch thread each, gradients averaged.

Why processes rather than more torch threads: EfficientNet-B0 at 64x48 is thousands of small
kernels a step, and OpenMP's fork/join barriers around each leave the second core idle much of the
time; any other thread (the crop producer) stalls both. Measured on the 2-core machine, 3,000
classes, batch 128 a process, no producer: one process with two threads 311-376 ms a step
(340-412 crops/s, varying with the machine's neighbours), two single-thread processes side by
side 500-535 ms each (478-510 crops/s together). An all-reduce of the 9M float32 gradients
over gloo costs ~21 ms; a control broadcast ~0.6 ms.

The trainer is written once against :class:`Solo`'s interface; a world of one process runs it
directly (no process group, no spawn), a larger world through :func:`run_workers`.
"""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Callable, Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

RESULT_FILE = "rank0.pt"


def share_of(rank: int, world: int, n: int) -> slice:
    """Rank ``rank``'s contiguous part of ``n`` rows split over ``world`` ranks (the last may be short)."""
    k = -(-n // world)
    return slice(min(n, rank * k), min(n, (rank + 1) * k))


class Solo:
    """A world of one: every collective is the identity."""

    rank = 0
    world = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def control(self, values: list[float]) -> list[float]:
        """Rank 0's loop decisions (stop code, progress...), the same on every rank."""
        return values

    def average_grads(self, params: Iterable[nn.Parameter]) -> None:
        """Gradients averaged over ranks, so every rank takes the same optimiser step."""

    def broadcast_state(self, module: nn.Module) -> None:
        """Rank 0's parameters and buffers (BatchNorm statistics) everywhere."""

    def sum_(self, tensor: torch.Tensor) -> torch.Tensor:
        """In-place sum over ranks (class prototype sums and counts)."""
        return tensor

    def average_buffers(self, module: nn.Module) -> None:
        """BatchNorm statistics that each rank estimated on its own batches, averaged."""

    def share(self, n: int) -> slice:
        """This rank's contiguous part of ``n`` rows (evaluation is shared out this way)."""
        return share_of(self.rank, self.world, n)

    def gather_rows(self, part: torch.Tensor, n: int) -> torch.Tensor:
        """Every rank's :meth:`share` of an ``n``-row result, in order, on every rank."""
        return part

    def close(self) -> None:
        pass


class Group(Solo):
    """A gloo process group: the ranks meet through a file (no fixed port to pick or clash on), then
    gloo connects them over loopback TCP on ephemeral ports."""

    def __init__(self, rank: int, world: int, rendezvous: Path, timeout_s: float):
        self.rank, self.world = rank, world
        if "GLOO_SOCKET_IFNAME" not in os.environ and _has_loopback():
            os.environ["GLOO_SOCKET_IFNAME"] = "lo"  # all ranks share this machine; a hostname may not resolve
        dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=world,
                                timeout=timedelta(seconds=timeout_s))

    def control(self, values: list[float]) -> list[float]:
        t = torch.tensor(values, dtype=torch.float64)
        dist.broadcast(t, 0)
        return t.tolist()

    @torch.no_grad()
    def average_grads(self, params: Iterable[nn.Parameter]) -> None:
        params = [p for p in params if p.requires_grad]
        for p in params:  # a parameter without a gradient on one rank must still take part
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        flat = torch.cat([p.grad.reshape(-1) for p in params])  # one all-reduce, not one per tensor
        dist.all_reduce(flat)
        flat.div_(self.world)
        offset = 0
        for p in params:
            n = p.grad.numel()
            p.grad.copy_(flat[offset:offset + n].view_as(p.grad))
            offset += n

    @torch.no_grad()
    def broadcast_state(self, module: nn.Module) -> None:
        for t in module.state_dict().values():
            dist.broadcast(t, 0)

    def sum_(self, tensor: torch.Tensor) -> torch.Tensor:
        dist.all_reduce(tensor)
        return tensor

    @torch.no_grad()
    def average_buffers(self, module: nn.Module) -> None:
        for m in module.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_mean is not None:
                for t in (m.running_mean, m.running_var):
                    dist.all_reduce(t)
                    t.div_(self.world)

    def gather_rows(self, part: torch.Tensor, n: int) -> torch.Tensor:
        k = -(-n // self.world)
        padded = torch.zeros((k, *part.shape[1:]), dtype=part.dtype)
        padded[:len(part)] = part
        parts = [torch.empty_like(padded) for _ in range(self.world)]
        dist.all_gather(parts, padded)
        spans = [share_of(r, self.world, n) for r in range(self.world)]
        return torch.cat([p[:s.stop - s.start] for p, s in zip(parts, spans)])

    def close(self) -> None:
        dist.destroy_process_group()


def _has_loopback() -> bool:
    try:
        return any(name == "lo" for _, name in socket.if_nameindex())
    except OSError:
        return False


def _entry(rank: int, fn: Callable[..., Any], world: int, folder: str, timeout_s: float, args: tuple) -> None:
    group = Group(rank, world, Path(folder) / "rendezvous", timeout_s)
    try:
        out = fn(group, *args)
    finally:
        group.close()
    if rank == 0:  # tensors, numbers, strings and lists only: read back with weights_only=True
        torch.save(out, Path(folder) / RESULT_FILE)


def run_workers(fn: Callable[..., Any], world: int, *args: Any, timeout_s: float = 900.0) -> Any:
    """Run ``fn(group, *args)`` in ``world`` spawned processes; rank 0's return value.

    ``fn`` must be a module-level function and rank 0's value plain data (tensors, numbers,
    strings, lists, dicts). A worker that raises or dies ends all of them: RuntimeError here.
    ``timeout_s`` bounds how long a rank waits for the others at one collective.
    """
    import torch.multiprocessing as mp
    from torch.multiprocessing.spawn import ProcessException

    with tempfile.TemporaryDirectory(prefix="warpd-train-") as folder:
        try:
            mp.start_processes(_entry, args=(fn, world, folder, timeout_s, args), nprocs=world,
                               start_method="spawn", join=True)
        except ProcessException as exc:  # (raised, or exited with a signal)
            raise RuntimeError(f"a training worker failed: {exc}") from exc
        return torch.load(Path(folder) / RESULT_FILE, weights_only=True)
