"""Running the training loop in several processes (``torchrun``), or in one.

``torchrun --nproc_per_node N -m kelly train …`` starts N copies of the command with
``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE`` set. :func:`setup` then joins the process
group (gloo on CPU, nccl on CUDA); the loop wraps the network in
``DistributedDataParallel``, gives each process a ``DistributedSampler`` slice of every
shuffled epoch, and lets only rank 0 print and write files.

Without ``WORLD_SIZE`` > 1 everything runs in this one process, with the same sampler
(one replica), so one process and N processes see the same global batches.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from kelly.errors import InputError


@dataclass(frozen=True)
class World:
    """This process's place among the training processes."""

    rank: int = 0
    local_rank: int = 0
    size: int = 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that prints and writes files."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def world_from_env() -> World:
    """The world torchrun describes in ``RANK``/``LOCAL_RANK``/``WORLD_SIZE`` (one process without them)."""
    try:
        size = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError:
        raise InputError("WORLD_SIZE, RANK and LOCAL_RANK must be whole numbers (set by torchrun)") from None
    if size < 1 or not 0 <= rank < size:
        raise InputError(f"RANK {rank} does not fit WORLD_SIZE {size}")
    return World(rank, local, size)


def resolve_device(name: str, world: World | None = None) -> torch.device:
    """``"cpu"``, ``"cuda"`` or ``"auto"`` as a torch device (``cuda:LOCAL_RANK`` under torchrun).

    Raises
    ------
    InputError
        If cuda is asked for and torch cannot use it.
    """
    world = world or World()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"--device cuda: torch {torch.__version__} cannot use a CUDA GPU here "
                             "(torch.cuda.is_available() is False); use --device cpu or auto")
        return torch.device("cuda", world.local_rank % max(torch.cuda.device_count(), 1))
    if name != "cpu":
        raise InputError(f"unknown device {name!r}; choose from cpu, cuda, auto")
    return torch.device("cpu")


def setup(device: torch.device) -> World:
    """Join the process group when ``WORLD_SIZE`` > 1 (idempotent); returns this process's world."""
    world = world_from_env()
    if world.distributed and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if backend == "gloo" and not dist.is_gloo_available():
            raise InputError("distributed training on CPU needs torch's gloo backend, which this torch lacks")
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend, rank=world.rank, world_size=world.size)
    return world


def teardown() -> None:
    """Leave the process group if this process joined one."""
    if dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(values: list[float], device: torch.device, world: World) -> list[float]:
    """The sums of ``values`` over all processes (the values themselves in one process)."""
    if not world.distributed:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return [float(v) for v in t.cpu()]


__all__ = ["World", "world_from_env", "resolve_device", "setup", "teardown", "all_reduce_sum"]
