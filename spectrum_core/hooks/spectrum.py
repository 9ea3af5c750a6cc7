"""Spectrum inside diffusers' sampling loop, built on ``diffusers.hooks`` like its own caches.

``apply_spectrum(pipe, config)`` registers three kinds of hooks on each denoiser (``transformer`` and, for
Wan2.2, ``transformer_2``):

- a model hook on the transformer that, at every call, works out the step and the CFG branch, decides
  from the schedule whether this step is real or forecast, times the call and records it;
- a block hook on every transformer block that, on a forecast step, hands its inputs through unchanged
  instead of computing — so no block runs at all;
- a head hook on the output head (``norm_out``) that, on a real step, feeds the last block's output to the
  branch's forecaster and, on a forecast step, substitutes the forecast for it. The head then runs with the
  current timestep embedding, as in the paper. A family whose blocks carry a second stream to a head of its own
  (LTX-2's audio, ``Family.side_heads``) gets the same hook on that head, with a forecaster of its own per
  branch: the skipped blocks skip that stream too, so its head's input is forecast as well.

Where the state lives: a ``_Session`` per handle (the pipeline, the config, the current run's schedules
and stats) and, per transformer, a ``StateManager`` keyed by the pipeline's cache context (``"cond"`` /
``"uncond"``, or one default branch for pipelines that open none, like SD3's batched CFG pair). Nothing is
global and nothing replaces a class's ``forward`` or the pipeline's ``__call__``.

How a run is recognised: every pipeline call sets the scheduler's timesteps anew, so a transformer call
that sees a timesteps tensor other than the current run's starts a new run — state is reset at the start of
every call, including after a call that raised, and the step count comes from the call itself. The step
index is the pipeline's (its cache context's ``step_index`` when given, else the scheduler's), so branches
and experts never depend on counting alternate calls.

What users stack on a pipeline keeps working (``tests/test_stack.py``):

- LoRA (``load_lora_weights``): peft's layers live inside the blocks; a skipped block skips them too, and the
  forecast is fitted on the LoRA'd features.
- ``torch.compile``, whole-transformer or regional (``compile_repeated_blocks``): every decision, clock read and
  forecaster update/prediction runs in ``@torch.compiler.disable`` functions, so the compiled graphs see only
  tensors and two booleans per block (real or skipped) and are not recompiled from step to step.
- Offloading (model, sequential, group): the forecaster's state is created on the device of the first
  feature the head sees — the device the head runs on — and a forecast is moved to the head's device and
  dtype before it is used. ``forecast_state="cpu"`` keeps the state in host memory instead (for GPUs too
  small for it), at the cost of a device-to-host copy per real pass and a host-to-device copy per forecast;
  on CUDA both go through pinned memory without blocking (``to_host``, ``to_device``), elsewhere they are
  plain copies.
- Batches: the forecast is element-wise in the features, so every sample of a batched call is forecast
  from its own trajectory.
"""

from __future__ import annotations

import inspect
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from diffusers.hooks import HookRegistry, ModelHook
from diffusers.hooks.hooks import BaseState, CacheContext, StateManager

from diffusers.utils.torch_utils import unwrap_module

from ..method.config import SpectrumConfig
from ..method.forecasters import forecaster_for
from ..method.schedule import plan_config, segments_nfe_range
from .families import SKIP_PLACEHOLDERS, block_outputs, blocks, expert_lengths, expert_names, expert_segments, family_for
from .stats import CallStats, StepEvent, sync_clock

__all__ = ["apply_spectrum", "nfe_bounds", "SpectrumHandle", "CallStats", "StepEvent", "FORECAST_STATES"]

_MODEL_HOOK = "spectrum_model"
_BLOCK_HOOK = "spectrum_block"
_HEAD_HOOK = "spectrum_head"
_DEFAULT_BRANCH = "default"
_UNMARKED_BRANCHES = ("cond", "uncond")  # in the order a pipeline without cache contexts makes the calls
FORECAST_STATES = ("device", "cpu")  # where the forecasters keep their state (see apply_spectrum)


class _BranchState(BaseState):
    """One CFG branch of one expert: one forecaster per output head (the family's ``head``, then its
    ``side_heads``), the steps it has seen in the current run and, for pipelines without a step index, a
    counter."""

    def __init__(self, make: Callable[[], Any], heads: int = 1):
        self.forecasters = tuple(make() for _ in range(heads))
        self.calls = 0
        self.steps: set[int] = set()

    @property
    def forecaster(self) -> Any:
        """The forecaster of the main head (the image/video tokens the pipeline writes)."""
        return self.forecasters[0]

    def reset(self) -> None:
        for forecaster in self.forecasters:
            forecaster.reset()
        self.calls = 0
        self.steps.clear()


class _BranchStates(StateManager):
    """Per-CFG-branch state of one expert, keyed by the pipeline's cache context.

    diffusers hands every stateful hook's ``StateManager`` the current ``CacheContext`` through the public
    ``set_context`` (``cache_context("cond")`` on entry, ``None`` on exit); this subclass keeps that context
    and the branches' states in fields of its own, so nothing here reads diffusers' private attributes.
    A pipeline that opens no context (SD3's batched CFG pair) gets one default branch, unless its family
    names the argument that tells its branches apart (``Family.branch_argument``, Chroma): then each
    distinct tensor passed there is one branch (:meth:`mark`).
    """

    def __init__(self, make: Callable[[], Any], heads: int = 1):
        super().__init__(_BranchState, (make, heads))
        self.make = make
        self.heads = heads
        self.current: CacheContext | None = None
        self.branches: dict[str, _BranchState] = {}
        self.marks: list[tuple[weakref.ref, str]] = []
        self.marked: str | None = None

    def set_context(self, context: CacheContext | None) -> None:
        super().set_context(context)
        self.current = context

    def mark(self, tensor: Any) -> None:
        """Name the branch of a call that opened no cache context by the tensor it was given: the same
        tensor object on every step of one branch (the pipeline's prompt or negative-prompt embeddings)."""
        if self.current is not None or tensor is None:
            self.marked = None
            return
        name = next((name for ref, name in self.marks if ref() is tensor), None)
        if name is None:
            if len(self.marks) == len(_UNMARKED_BRANCHES):
                raise RuntimeError(
                    f"the pipeline passed a third distinct conditioning tensor in one call: Spectrum tells its "
                    f"{' and '.join(_UNMARKED_BRANCHES)} branches apart by the tensor each passes on every step"
                )
            name = _UNMARKED_BRANCHES[len(self.marks)]
            self.marks.append((weakref.ref(tensor), name))
        self.marked = name

    @property
    def branch_name(self) -> str:
        if self.current is not None:
            return self.current.name
        return self.marked or _DEFAULT_BRANCH

    def get_state(self) -> _BranchState:
        name = self.branch_name
        if name not in self.branches:
            self.branches[name] = _BranchState(self.make, self.heads)
        return self.branches[name]

    def clear(self) -> None:
        """Drop every branch's state but keep the context the pipeline has set for the current call."""
        for state in self.branches.values():
            state.reset()
        self.branches.clear()
        self.marks.clear()
        self.marked = None


@dataclass
class _Decision:
    """What the current transformer call does, read by the block and head hooks: on a forecast step, one
    forecast per output head (``forecasts[i]`` for the branch's ``forecasters[i]``)."""

    step: int
    tau: float
    real: bool
    branch: _BranchState
    in_segment: bool
    forecasts: tuple[torch.Tensor, ...] = ()


@dataclass
class _Run:
    timesteps: torch.Tensor
    offset: int
    segments: dict[str, tuple[int, int]]
    real_sets: dict[str, frozenset[int]]
    stats: CallStats
    real_steps: set[int] = field(default_factory=set)
    seen_steps: set[int] = field(default_factory=set)
    started: float | None = None


class _Session:
    """Everything one ``apply_spectrum`` shares across its hooks: the pipeline, config, run and stats."""

    def __init__(self, pipe: Any, config: SpectrumConfig, experts: list[str], forecast_state: str = "device"):
        self._pipe = weakref.ref(pipe)
        self.config = config
        self.forecast_state = forecast_state
        self.experts = experts
        self.model_hooks: dict[str, SpectrumModelHook] = {}
        self.run: _Run | None = None
        self.history: list[CallStats] = []
        self.listeners: list[Callable[[StepEvent], None]] = []

    @property
    def pipe(self) -> Any:
        pipe = self._pipe()
        if pipe is None:
            raise RuntimeError("the pipeline this Spectrum handle was applied to no longer exists")
        return pipe

    def current_run(self) -> _Run:
        scheduler = self.pipe.scheduler
        timesteps = getattr(scheduler, "timesteps", None)
        if timesteps is None:
            raise RuntimeError(
                "Spectrum needs the pipeline's scheduler timesteps to know the step count: call the pipeline, "
                "not the transformer alone"
            )
        if self.run is None or self.run.timesteps is not timesteps:
            self._start_run(scheduler, timesteps)
        return self.run

    def _start_run(self, scheduler: Any, timesteps: torch.Tensor) -> None:
        order = getattr(scheduler, "order", 1)
        if order != 1:
            raise ValueError(
                f"{type(scheduler).__name__} is a sampler of order {order}: it calls the transformer {order} "
                "times per step at different noise levels, which Spectrum's per-step forecast cannot follow. "
                "Use a first-order scheduler (FlowMatchEulerDiscreteScheduler, UniPCMultistepScheduler, "
                "DPMSolverMultistepScheduler, ...)"
            )
        for hook in self.model_hooks.values():
            hook.state_manager.clear()
        offset = int(getattr(scheduler, "begin_index", None) or 0)
        segments = expert_segments(self.pipe, timesteps[offset:], self.experts)
        order = sorted(segments, key=lambda name: segments[name][0])
        cfg = self.config
        plans = plan_config(cfg, tuple(segments[name][1] - segments[name][0] for name in order))
        schedules = dict(zip(order, plans))
        stats = CallStats(
            num_steps=len(timesteps) - offset,
            schedule={
                name: {
                    "segment": list(segments[name]),
                    "warmup": s.warmup,
                    "window": s.window,
                    "alpha": s.alpha,
                    "planned_real_steps": [segments[name][0] + i for i in s.steps],
                }
                for name, s in schedules.items()
            },
        )
        self.run = _Run(
            timesteps=timesteps,
            offset=offset,
            segments=segments,
            real_sets={name: frozenset(s.steps) for name, s in schedules.items()},
            stats=stats,
        )
        self.history.append(stats)

    def step_index(self, hook: "SpectrumModelHook", branch: _BranchState) -> int:
        """The run's step for this call: the pipeline's own index when it gives one, else a branch counter."""
        context = hook.state_manager.current
        if context is not None and context.step_index is not None:
            return int(context.step_index) - self.run.offset
        scheduler = self.pipe.scheduler
        if hasattr(scheduler, "step_index"):
            index = scheduler.step_index
            if index is None:
                index = getattr(scheduler, "begin_index", None) or 0
            return int(index) - self.run.offset
        return branch.calls

    def state_bytes(self) -> int:
        """Bytes held by every branch's forecaster of every expert right now."""
        total = 0
        for hook in self.model_hooks.values():
            for state in hook.state_manager.branches.values():
                for forecaster in state.forecasters:
                    measure = getattr(forecaster, "state_bytes", None)
                    total += int(measure()) if measure is not None else 0
        return total

    def record(self, branch: str, decision: _Decision, seconds: float, started: float) -> None:
        run = self.run
        stats = run.stats
        stats.transformer_calls += 1
        stats.transformer_seconds += seconds
        if decision.real:
            stats.real_calls += 1
            stats.real_call_seconds += seconds
            stats.nfe_by_branch[branch] = stats.nfe_by_branch.get(branch, 0) + 1
            run.real_steps.add(decision.step)
        else:
            stats.forecast_call_seconds += seconds
        run.seen_steps.add(decision.step)
        stats.real_steps = sorted(run.real_steps)
        stats.forecast_steps = sorted(run.seen_steps - run.real_steps)
        if run.started is None:
            run.started = started
        stats.denoise_seconds = stats.call_seconds = started + seconds - run.started
        stats.forecaster_state_bytes = max(stats.forecaster_state_bytes, self.state_bytes())
        event = StepEvent(decision.step, stats.num_steps, branch, decision.real, seconds)
        for listener in list(self.listeners):
            listener(event)


class SpectrumModelHook(ModelHook):
    """On the transformer: decides real vs forecast for each call, times it and records it."""

    _is_stateful = True

    def __init__(self, session: _Session, expert: str, branch_argument: str | None = None, heads: int = 1):
        super().__init__()
        self.session = session
        self.expert = expert
        self.branch_argument = branch_argument
        self._branch_position: int | None = None
        cfg = session.config
        self.state_manager = _BranchStates(lambda: forecaster_for(cfg), heads)
        self.current: _Decision | None = None
        self._started = 0.0

    def initialize_hook(self, module: torch.nn.Module) -> torch.nn.Module:
        if self.branch_argument is not None:
            params = list(inspect.signature(module.forward).parameters)
            if self.branch_argument not in params:
                raise ValueError(f"{type(module).__name__}.forward has no argument {self.branch_argument!r}: "
                                 "family data is stale")
            self._branch_position = params.index(self.branch_argument)
        return module

    def new_forward(self, module: torch.nn.Module, *args, **kwargs):
        if getattr(module, "is_cache_enabled", False):  # enable_cache after apply_spectrum: two caches would stack
            raise RuntimeError(f"a diffusers cache ({type(module._cache_config).__name__}) was enabled on this transformer "
                               "after apply_spectrum; Spectrum does not stack on it: call disable_cache() or remove "
                               "Spectrum (handle.remove()) first")
        self._begin(args, kwargs)
        try:
            output = self.fn_ref.original_forward(*args, **kwargs)
        except BaseException:
            self.current = None
            raise
        self._end()
        return output

    @torch.compiler.disable
    def _begin(self, args: tuple, kwargs: dict) -> None:
        started = sync_clock()  # the forecast itself is part of a skipped step's cost
        self.current = self._decide(args, kwargs)
        self._started = started

    @torch.compiler.disable
    def _end(self) -> None:
        decision, started = self.current, self._started
        self.current = None
        seconds = sync_clock() - started
        self._record(decision, seconds, started)

    def _decide(self, args: tuple, kwargs: dict) -> _Decision:
        session = self.session
        run = session.current_run()
        if self._branch_position is not None:
            position = self._branch_position
            self.state_manager.mark(args[position] if position < len(args) else kwargs.get(self.branch_argument))
        branch = self.state_manager.get_state()
        step = session.step_index(self, branch)
        if step in branch.steps:
            name = self.state_manager.branch_name
            raise RuntimeError(
                f"{type(session.pipe).__name__} called pipe.{self.expert} twice at step {step} in the same branch "
                f"({name!r}): Spectrum needs one call per step and CFG branch, its branches told apart by "
                "the pipeline's cache_context (or, for a family that opens none, by Family.branch_argument)"
            )
        branch.steps.add(step)
        branch.calls += 1
        start, end = run.segments.get(self.expert, (0, 0))
        local = step - start
        in_segment = 0 <= local < end - start
        horizon = session.config.tau_horizon or (end - start)
        tau = 2.0 * local / max(horizon, 1) - 1.0
        real = (
            not in_segment
            or local in run.real_sets[self.expert]
            or any(forecaster.num_updates == 0 for forecaster in branch.forecasters)
        )
        decision = _Decision(step, tau, real, branch, in_segment)
        if not real:
            forecasts = tuple(forecaster.predict(tau) for forecaster in branch.forecasters)
            if all(bool(torch.isfinite(forecast).all()) for forecast in forecasts):
                decision.forecasts = forecasts
            else:  # a diverged fit must never reach the output: run the network instead
                decision.real = True
                run.stats.fallbacks += 1
        return decision

    def _record(self, decision: _Decision, seconds: float, started: float) -> None:
        name = self.state_manager.branch_name
        label = self.expert if name == _DEFAULT_BRANCH else f"{self.expert}/{name}"
        self.session.record(label, decision, seconds, started)

    def reset_state(self, module: torch.nn.Module) -> torch.nn.Module:
        # Called by the pipeline when a call ends (after decoding): free the forecasters' memory and close
        # the call's clock; the stats stay.
        self.state_manager.clear()
        run = self.session.run
        if run is not None and run.started is not None:
            run.stats.call_seconds = sync_clock() - run.started
        return module


class _SkipBlockHook(ModelHook):
    """On each transformer block: on a forecast step, return the block's inputs instead of running it (or,
    for blocks that change resolution, zero-stride placeholders shaped like its last real output)."""

    def __init__(self, owner: SpectrumModelHook, outputs: tuple[str, ...], placeholders: bool = False):
        super().__init__()
        self.owner = owner
        self.outputs = outputs
        self.placeholders = placeholders
        self._template: Any = None
        self._positions: dict[str, int] = {}

    def initialize_hook(self, module: torch.nn.Module) -> torch.nn.Module:
        if self.placeholders:
            return module
        params = list(inspect.signature(module.forward).parameters)
        self._positions = {name: params.index(name) for name in self.outputs if name in params}
        missing = [name for name in self.outputs if name not in self._positions]
        if missing:
            raise ValueError(f"{type(module).__name__}.forward has no argument(s) {missing}: family data is stale")
        return module

    def new_forward(self, module: torch.nn.Module, *args, **kwargs):
        # Read inline, not in a disabled function: under regional compilation (fullgraph=True too) the
        # block's graph is specialised on this one boolean, so each block compiles twice (run, skip), once.
        decision = self.owner.current
        if decision is None or decision.real:
            output = self.fn_ref.original_forward(*args, **kwargs)
            if self.placeholders:
                self._template = _shapes(output)
            return output
        if self.placeholders:  # step 0 of every run is real, so the template is this run's
            return _stand_ins(self._template)
        values = []
        for name in self.outputs:
            position = self._positions[name]
            values.append(args[position] if position < len(args) else kwargs[name])
        return values[0] if len(values) == 1 else tuple(values)


@dataclass(frozen=True)
class _Leaf:
    shape: tuple[int, ...]
    dtype: torch.dtype
    device: torch.device


def _shapes(output: Any) -> Any:
    """The structure of a block's output with each tensor replaced by its shape, dtype and device."""
    if isinstance(output, torch.Tensor):
        return _Leaf(tuple(output.shape), output.dtype, output.device)
    if isinstance(output, (tuple, list)):
        return type(output)(_shapes(item) for item in output)
    raise TypeError(f"a block returned {type(output).__name__}: Spectrum can stand in for tensors and tuples")


def _stand_ins(template: Any) -> Any:
    """Zero-stride zeros in the template's structure: no memory, never computed on, never reach the output."""
    if isinstance(template, _Leaf):
        return torch.zeros((), dtype=template.dtype, device=template.device).expand(template.shape)
    return type(template)(_stand_ins(item) for item in template)


def to_host(feature: torch.Tensor) -> torch.Tensor:
    """A CUDA feature copied to fresh pinned host memory asynchronously, then waited for (an event on the
    stream that made it) before the CPU forecaster reads it; anything else (CPU, MPS, no CUDA: pinned memory
    is CUDA's) by a plain copy. A fresh buffer each time: forecasters may keep the tensor they are fed."""
    if feature.device.type != "cuda":
        return feature.to("cpu")
    host = torch.empty(feature.shape, dtype=feature.dtype, pin_memory=True)
    host.copy_(feature, non_blocking=True)
    done = torch.cuda.Event()
    done.record(torch.cuda.current_stream(feature.device))
    done.synchronize()
    return host


def to_device(forecast: torch.Tensor, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """A host forecast on its way to a CUDA head: cast on the host into fresh pinned memory, then copied
    without blocking. The head's kernels run after the copy on the same (current) stream, and torch's pinned
    allocator keeps the buffer until the copy has read it (it records the copy's stream), so no wait is
    needed here. Other devices, or no CUDA: a plain copy."""
    if device.type != "cuda" or forecast.device.type != "cpu":
        return forecast.to(device=device, dtype=dtype)
    staged = torch.empty(forecast.shape, dtype=dtype, pin_memory=True)
    staged.copy_(forecast)
    return staged.to(device, non_blocking=True)


class _HeadHook(ModelHook):
    """On an output head: feed real outputs to its forecaster; substitute the forecast on skipped steps.
    ``index`` is the head's place in the family's heads (0: ``head``, then ``side_heads``), which picks its
    forecaster in each branch."""

    def __init__(self, owner: SpectrumModelHook, index: int = 0):
        super().__init__()
        self.owner = owner
        self.index = index

    def pre_forward(self, module: torch.nn.Module, *args, **kwargs):
        hidden = self._head_input(args[0])
        return (hidden, *args[1:]), kwargs

    @torch.compiler.disable
    def _head_input(self, hidden: torch.Tensor) -> torch.Tensor:
        """The tensor the head gets: the block stack's output on a real step (fed to the forecaster), the
        forecast on a skipped one, on the head's device and in its dtype."""
        decision = self.owner.current
        if decision is None:
            return hidden
        session = self.owner.session
        if decision.real:
            if decision.in_segment:
                feature = hidden.detach()
                if session.forecast_state == "cpu":
                    feature = to_host(feature)
                decision.branch.forecasters[self.index].update(decision.tau, feature)
                stats = session.run.stats if session.run is not None else None
                if stats is not None and stats.forecaster_state_device is None:
                    stats.forecaster_state_device = str(feature.device)
            return hidden
        forecast = decision.forecasts[self.index]
        if session.forecast_state == "cpu":
            forecast = to_device(forecast, hidden.device, hidden.dtype)
        else:
            forecast = forecast.to(device=hidden.device, dtype=hidden.dtype, non_blocking=True)
        if forecast.shape != hidden.shape:
            raise RuntimeError(
                f"forecast shape {tuple(forecast.shape)} does not match the block output {tuple(hidden.shape)}: "
                "the inputs changed shape within one run"
            )
        return forecast


class SpectrumHandle:
    """What ``apply_spectrum`` returns: live statistics, listeners, and ``remove()``.

    Usable as a context manager: the hooks are removed on exit.
    """

    def __init__(self, session: _Session, modules: dict[str, torch.nn.Module]):
        self._session = session
        self._modules = modules
        self._removed = False

    @property
    def config(self) -> SpectrumConfig:
        return self._session.config

    @property
    def stats(self) -> CallStats | None:
        """Statistics of the latest pipeline call (updated live during a call), or ``None`` before any."""
        return self._session.history[-1] if self._session.history else None

    @property
    def history(self) -> list[CallStats]:
        """Statistics of every call since ``apply_spectrum``, oldest first."""
        return list(self._session.history)

    def subscribe(self, listener: Callable[[StepEvent], None]) -> None:
        """Call ``listener(event)`` after every transformer call (for progress displays)."""
        self._session.listeners.append(listener)

    def unsubscribe(self, listener: Callable[[StepEvent], None]) -> None:
        self._session.listeners.remove(listener)

    def remove(self) -> None:
        """Remove every hook: the pipeline computes exactly what it did before ``apply_spectrum``."""
        if self._removed:
            return
        for module in self._modules.values():
            registry = HookRegistry.check_if_exists_or_initialize(module)
            for name in (_MODEL_HOOK, _BLOCK_HOOK, _HEAD_HOOK):
                registry.remove_hook(name, recurse=True)
            registry.invalidate_child_registries_cache()
        self._session.run = None
        self._removed = True

    def __enter__(self) -> "SpectrumHandle":
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()

    def __repr__(self) -> str:
        state = "removed" if self._removed else "active"
        return f"SpectrumHandle({state}, {self.config}, experts={list(self._modules)})"


def apply_spectrum(pipe: Any, config: SpectrumConfig | None = None, *, forecast_state: str = "device",
                   **overrides: Any) -> SpectrumHandle:
    """Accelerate ``pipe`` with Spectrum; returns a handle with ``.stats`` and ``.remove()``.

    ``pipe`` is a diffusers pipeline whose denoiser is a supported transformer (``families.FAMILIES``, matched by class);
    every transformer it carries (Wan2.2's two experts) gets its own state and schedule segment. Keyword
    overrides are applied to ``config``: ``apply_spectrum(pipe, nfe=14)``.

    ``forecast_state`` is where the forecasters keep their state: ``"device"`` (the default) on the device
    the output head runs on, ``"cpu"`` in host memory (a copy to the host per real pass, to the device per
    forecast; the fit and the forecast then run on the CPU).

    The config is applied as given. A calibration profile (the steps ``spectrum calibrate`` placed for a
    model, step count, guidance and size) is looked up by ``spectrum_core.profiled_config``, which returns
    the config to pass here: ``apply_spectrum(pipe, profiled_config("shapes", nfe=10)[0])``.

    Example:
        >>> handle = apply_spectrum(pipe, SpectrumConfig(nfe=14))
        >>> image = pipe("a lighthouse at dusk", num_inference_steps=50).images[0]
        >>> handle.stats.nfe
        14
        >>> handle.remove()
    """
    if forecast_state not in FORECAST_STATES:
        raise ValueError(f"forecast_state must be one of {', '.join(FORECAST_STATES)}, got {forecast_state!r}")
    config = (config or SpectrumConfig()).replace(**overrides) if overrides else (config or SpectrumConfig())
    experts = expert_names(pipe)
    if not experts:
        raise ValueError(f"{type(pipe).__name__} has no `transformer` component for Spectrum to accelerate")
    modules = {name: unwrap_module(getattr(pipe, name)) for name in experts}
    families = {name: family_for(module) for name, module in modules.items()}
    for name, module in modules.items():
        if HookRegistry.check_if_exists_or_initialize(module).get_hook(_MODEL_HOOK) is not None:
            raise RuntimeError(f"Spectrum is already applied to pipe.{name}: call handle.remove() first")
        if getattr(module, "is_cache_enabled", False):  # diffusers' enable_cache (FirstBlockCache, TaylorSeer, ...)
            raise RuntimeError(f"pipe.{name} already has a diffusers cache enabled "
                               f"({type(module._cache_config).__name__}); Spectrum does not stack on it: "
                               f"call pipe.{name}.disable_cache() first")

    session = _Session(pipe, config, experts, forecast_state)
    for name, module in modules.items():
        family = families[name]
        heads = (family.head, *family.side_heads)
        hook = SpectrumModelHook(session, name, family.branch_argument, len(heads))
        session.model_hooks[name] = hook
        skipped = blocks(module, family)
        if not skipped:
            raise ValueError(f"pipe.{name} ({type(module).__name__}) has no transformer blocks to skip")
        placeholders = family.block_skip == SKIP_PLACEHOLDERS
        for stack, block in skipped:
            outputs = () if placeholders else block_outputs(block, family, stack)
            HookRegistry.check_if_exists_or_initialize(block).register_hook(
                _SkipBlockHook(hook, outputs, placeholders), _BLOCK_HOOK
            )
        for index, head in enumerate(heads):
            HookRegistry.check_if_exists_or_initialize(module.get_submodule(head)).register_hook(
                _HeadHook(hook, index), _HEAD_HOOK
            )
        registry = HookRegistry.check_if_exists_or_initialize(module)
        registry.register_hook(hook, _MODEL_HOOK)
        registry.invalidate_child_registries_cache()
    return SpectrumHandle(session, modules)


def nfe_bounds(pipe: Any, num_steps: int, warmup: int = 5) -> tuple[int, int]:
    """The attainable numbers of real passes for ``pipe`` at ``num_steps``, known before calling it.

    ``(warmup + 1, num_steps)`` for a single transformer; with Wan2.2's two experts each restarts its
    warm-up, so the floor is the sum over both.
    """
    return segments_nfe_range(expert_lengths(pipe, num_steps), warmup)
