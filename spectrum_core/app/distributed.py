"""Running under `torchrun` or `accelerate launch`: which process this is, which device it drives,
which share of a batch it takes, and diffusers' context parallelism for one long generation.

Why this is cheap for Spectrum: the real steps are fixed before the call, so no rank ever has to agree
with another on whether to skip (caches that decide from the data all-reduce that decision every step),
and the ridge fit is independent per feature column, so a rank that holds a shard of the sequence
forecasts exactly its shard of the whole forecast, with 1/N of the state and no communication.

Two ways to use N processes, combinable (world size = data ranks x context ranks):

- data parallel: every process loads the model once and takes a deterministic share of the prompts
  (:func:`share`); outputs and manifest lines are written by the rank that made them.
- context parallel (:class:`ContextParallel`, ``ulysses:N`` or ``ring:N``): the N ranks of one group
  compute one generation together through diffusers' ``ContextParallelConfig`` /
  ``enable_parallelism`` (no attention or communication code of our own); the group's first rank
  writes the output.

torchrun and accelerate both describe the process in the environment (RANK, WORLD_SIZE, LOCAL_RANK);
a plain run is a world of one, for which nothing here touches torch.distributed.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Sequence, TypeVar

__all__ = ["ContextParallel", "DistributedError", "World", "process_group", "share"]

T = TypeVar("T")


class DistributedError(ValueError):
    """A launch that cannot work as asked (bad environment, degrees that do not divide the world)."""

    def __init__(self, message: str, field: str | None = None, value: Any = None):
        super().__init__(message)
        self.field, self.value = field, value


def _env_int(environ: Mapping[str, str], name: str, default: int) -> int:
    text = environ.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise DistributedError(f"environment variable {name}={text!r} is not an integer", name, text) from None
    if value < 0:
        raise DistributedError(f"environment variable {name}={value} is negative", name, value)
    return value


@dataclass(frozen=True)
class ContextParallel:
    """One generation split over ``degree`` ranks by diffusers' context parallelism.

    ``kind`` is ``"ulysses"`` (all-to-all over attention heads: the head count must divide by
    ``degree``) or ``"ring"`` (K/V passed around a ring: needs an attention backend that returns the
    log-sum-exp, such as flash or cuDNN, so in practice CUDA).
    """

    kind: str
    degree: int

    KINDS = ("ulysses", "ring")

    def __post_init__(self) -> None:
        if self.kind not in self.KINDS:
            raise DistributedError(f"context parallelism is one of {', '.join(self.KINDS)}, got {self.kind!r}",
                                   "context_parallel", self.kind)
        if isinstance(self.degree, bool) or not isinstance(self.degree, int) or self.degree < 1:
            raise DistributedError(f"the context-parallel degree must be a positive integer, got {self.degree!r}",
                                   "context_parallel", self.degree)

    @classmethod
    def parse(cls, text: str) -> "ContextParallel":
        """``"ulysses:2"`` -> ContextParallel("ulysses", 2)."""
        kind, sep, degree = str(text).strip().partition(":")
        if not sep or not degree.strip().isdigit():
            raise DistributedError(f"context parallelism reads KIND:N (ulysses:2, ring:4), got {text!r}",
                                   "context_parallel", text)
        return cls(kind.strip().lower(), int(degree))

    def __str__(self) -> str:
        return f"{self.kind}:{self.degree}"

    def diffusers_config(self, mesh: Any = None) -> Any:
        """diffusers' ContextParallelConfig for this split (``mesh`` with "ring" and "ulysses" dims, or None)."""
        from diffusers import ContextParallelConfig

        degrees = {"ring_degree": self.degree} if self.kind == "ring" else {"ulysses_degree": self.degree}
        return ContextParallelConfig(**degrees, mesh=mesh)


@dataclass(frozen=True)
class World:
    """This process's place in a launch: global rank, world size and rank on its node.

    ``context`` splits the world into groups of consecutive ranks that compute one generation together;
    the data-parallel share is then per group (``data_rank`` of ``data_size``).
    """

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    context: ContextParallel | None = None

    def __post_init__(self) -> None:
        if self.size < 1 or not 0 <= self.rank < self.size:
            raise DistributedError(f"rank {self.rank} is outside a world of {self.size}", "rank", self.rank)
        if self.context is not None and self.size % self.context.degree:
            raise DistributedError(
                f"context parallelism {self.context} needs a world size divisible by {self.context.degree}; "
                f"this launch has {self.size} process(es)", "context_parallel", str(self.context))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, context: ContextParallel | None = None) -> "World":
        """The world torchrun / accelerate describe in RANK, WORLD_SIZE and LOCAL_RANK (a world of one
        when they are absent)."""
        environ = os.environ if environ is None else environ
        size = _env_int(environ, "WORLD_SIZE", 1)
        rank = _env_int(environ, "RANK", 0)
        local = _env_int(environ, "LOCAL_RANK", rank)
        return cls(rank=rank, size=size, local_rank=local, context=context)

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that prints progress and the summary."""
        return self.rank == 0

    @property
    def context_degree(self) -> int:
        return 1 if self.context is None else self.context.degree

    @property
    def data_rank(self) -> int:
        """Which share of the prompts this process's group takes."""
        return self.rank // self.context_degree

    @property
    def data_size(self) -> int:
        return self.size // self.context_degree

    @property
    def writes(self) -> bool:
        """Whether this process writes outputs: the first rank of its context group (every rank without
        context parallelism)."""
        return self.rank % self.context_degree == 0

    def device(self, requested: str) -> str:
        """The device this process drives: ``cuda`` becomes ``cuda:LOCAL_RANK``; cpu stays cpu."""
        if not self.distributed or not str(requested).startswith("cuda"):
            return requested
        if ":" in str(requested):
            raise DistributedError(f"under torchrun each process picks its GPU from LOCAL_RANK; pass device 'cuda', "
                                   f"not {requested!r}", "device", requested)
        import torch

        count = torch.cuda.device_count()
        if self.local_rank >= count:
            raise DistributedError(f"LOCAL_RANK {self.local_rank} has no GPU: this node has {count}",
                                   "device", requested)
        return f"cuda:{self.local_rank}"

    def backend(self, device: str) -> str:
        """nccl for CUDA devices, gloo for the CPU."""
        return "nccl" if str(device).startswith("cuda") else "gloo"


def share(items: Sequence[T], world: World) -> list[T]:
    """This process's share of ``items``: every ``data_size``-th item from ``data_rank`` on.

    Deterministic, disjoint and complete over the world as long as every rank passes the same sequence
    (the same pending prompts, in file order), whatever the world size was when the work started.
    """
    return list(items[world.data_rank::world.data_size])


@contextmanager
def process_group(world: World, device: str) -> Iterator[Any]:
    """The default process group for ``world`` (nccl on CUDA, gloo on CPU) while the block runs, then
    destroyed; yields the DeviceMesh for context parallelism (dims "data", "ring", "ulysses") or None.

    A world of one yields None and touches nothing. A group that is already initialised (the caller's
    own program) is used and left alone.
    """
    if not world.distributed:
        yield None
        return
    import torch
    import torch.distributed as dist

    own = not dist.is_initialized()
    if own:
        kwargs: dict[str, Any] = {}
        if str(device).startswith("cuda"):
            torch.cuda.set_device(torch.device(device))
            kwargs["device_id"] = torch.device(device)
        dist.init_process_group(backend=world.backend(device), **kwargs)
    try:
        mesh = None
        if world.context is not None:
            from torch.distributed.device_mesh import init_device_mesh

            ring = world.context.degree if world.context.kind == "ring" else 1
            ulysses = world.context.degree if world.context.kind == "ulysses" else 1
            mesh = init_device_mesh("cuda" if str(device).startswith("cuda") else "cpu",
                                    (world.data_size, ring, ulysses), mesh_dim_names=("data", "ring", "ulysses"))
        yield mesh
    finally:
        if own and dist.is_initialized():
            dist.destroy_process_group()


def enable_context_parallel(pipe: Any, world: World, mesh: Any) -> None:
    """Split every denoiser of ``pipe`` over its context group with diffusers' own parallelism.

    Call after the model is on its device and before Spectrum is applied (Spectrum's hooks then see
    each rank's shard of the sequence and keep 1/N of the forecaster state).
    """
    if world.context is None:
        return
    from ..hooks.families import expert_names

    sub = mesh["ring", "ulysses"] if mesh is not None else None
    for module in (getattr(pipe, name) for name in expert_names(pipe)):
        if not getattr(type(module), "_cp_plan", None):
            raise DistributedError(f"{type(module).__name__} has no context-parallel plan in diffusers; "
                                   "run it without context parallelism", "context_parallel", str(world.context))
        module.enable_parallelism(config=world.context.diffusers_config(mesh=sub))


def gather_to_main(obj: Any, world: World) -> list[Any] | None:
    """Every rank's ``obj`` on rank 0 (a list by rank), None elsewhere; ``[obj]`` in a world of one."""
    if not world.distributed:
        return [obj]
    import torch.distributed as dist

    out: list[Any] | None = [None] * world.size if world.is_main else None
    dist.gather_object(obj, out, dst=0)
    return out


def barrier(world: World) -> None:
    """Wait for every rank (no-op in a world of one)."""
    if world.distributed:
        import torch.distributed as dist

        dist.barrier()
