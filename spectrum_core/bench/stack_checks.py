"""Does Spectrum keep its output under what users stack on a pipeline, on *your* device? A pass/fail check.

    python -m spectrum_core.bench.stack_checks --device cuda                  # bf16, every check
    python -m spectrum_core.bench.stack_checks --device cuda --checks sequential-offload,compile-full
    python -m spectrum_core.bench.stack_checks --device cpu --backend aot_eager   # what a CPU can run

The GPU half of ``tests/test_stack.py``: the suite runs these stackings on the CPU where they can run there;
sequential offload, group offloading with CUDA streams, inductor compilation on the GPU, the pinned
non-blocking copies of ``forecast_state="cpu"`` and the peak device memory of a call need an accelerator,
so a GPU user runs this script (tiny FLUX and Wan pipelines built from their diffusers configs and loaded
with ``from_pretrained``, as a downloaded model loads; no download).

For each family it runs the pipeline with Spectrum on the device as it is (the *reference*), then each
check on a fresh copy of the pipeline with one thing stacked:

- ``host-state``: ``forecast_state="cpu"`` (the forecaster's state in host memory);
- ``model-offload`` / ``sequential-offload``: ``enable_model_cpu_offload`` / ``enable_sequential_cpu_offload``;
- ``group-offload`` / ``group-offload-streams``: ``enable_group_offload`` block by block, without and with
  CUDA streams (``use_stream=True``);
- ``compile-regional`` / ``compile-full``: ``compile_repeated_blocks`` / ``Module.compile`` with
  ``--backend`` (inductor by default), counting the frames dynamo compiles: a second call (with a new
  Spectrum handle for regional, the same one for full) must compile nothing.

A check passes when the real passes are exactly ``--nfe`` per branch, the output is finite and within
``--min-psnr`` dB of the reference (latents; 60 dB for float32, 35 dB for 16-bit dtypes by default, as
kernels fused by a compiler or run on another stream may round differently), and, for compilation, nothing
is compiled again. Each row also says whether the output is bit-identical, the forecaster state's bytes and
device, the call's peak device memory (CUDA) and its synchronized wall time. Checks the device cannot run
(sequential offload and streams on a CPU) are listed as skipped, with the reason. Prints a table, writes
JSON, exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import json
import math
import pathlib
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import numpy as np
import torch

from ..app.runner import _PeakMemory, device_synchronizer
from ..hooks.families import output_samples, variant
from ..hooks.spectrum import apply_spectrum
from ..method.config import SpectrumConfig
from ..method.schedule import nfe_range
from ..models.tiny import TINY_CALL_KWARGS, load_tiny_pipeline

CHECKS = ("host-state", "model-offload", "sequential-offload", "group-offload", "group-offload-streams",
          "compile-regional", "compile-full")
_ACCELERATOR_ONLY = {"sequential-offload": "needs an accelerator to offload to",
                     "group-offload-streams": "CUDA streams need a CUDA device"}
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class Row:
    """One check of one family: what was stacked, whether it passed and what was measured."""

    family: str
    check: str
    status: str  # "pass", "fail" or "skipped"
    reason: str = ""
    nfe: int | None = None
    nfe_by_branch: dict[str, int] = field(default_factory=dict)
    psnr_vs_reference: float | None = None
    identical: bool | None = None
    recompiled_frames: int | None = None
    state_bytes: int | None = None
    state_device: str | None = None
    peak_memory_bytes: int | None = None
    seconds: float | None = None


def _latents(result: Any) -> np.ndarray:
    return torch.as_tensor(output_samples(result)).detach().float().cpu().numpy().astype(np.float64)


def _psnr(test: np.ndarray, reference: np.ndarray) -> float:
    mse = float(np.mean((test - reference) ** 2))
    peak = float(reference.max() - reference.min())
    return math.inf if mse == 0 else 10 * math.log10(peak ** 2 / mse)


class _Call:
    """One seeded call of a tiny pipeline, timed (synchronized) and with its peak device memory."""

    def __init__(self, family: str, steps: int, device: str):
        self.family, self.steps, self.device = family, steps, device
        self.sync = device_synchronizer(device)
        self.peak = _PeakMemory(device)

    def __call__(self, pipe: Any) -> tuple[np.ndarray, float, int | None]:
        self.peak.start()
        self.sync()
        start = time.perf_counter()
        result = pipe(prompt="a red circle on a navy background", num_inference_steps=self.steps,
                      generator=torch.Generator("cpu").manual_seed(0), output_type="latent",
                      **TINY_CALL_KWARGS[self.family])
        self.sync()
        seconds = time.perf_counter() - start
        return _latents(result), seconds, self.peak.read()


def _stack(pipe: Any, check: str, device: str) -> dict[str, Any]:
    """Applies ``check``'s offloading to ``pipe`` (loaded on the CPU); returns apply_spectrum's extra arguments."""
    if check == "host-state":
        pipe.to(device)
        return {"forecast_state": "cpu"}
    if check == "model-offload":
        pipe.enable_model_cpu_offload(device=device)
    elif check == "sequential-offload":
        pipe.enable_sequential_cpu_offload(device=device)
    elif check.startswith("group-offload"):
        pipe.enable_group_offload(onload_device=torch.device(device), offload_device=torch.device("cpu"),
                                  offload_type="block_level", num_blocks_per_group=1,
                                  use_stream=check.endswith("streams"))
    else:
        pipe.to(device)
    return {}


def _compile(pipe: Any, check: str, backend: Any) -> None:
    if check == "compile-regional":
        pipe.transformer.compile_repeated_blocks(backend=backend, fullgraph=True)
    else:
        pipe.transformer.compile(backend=backend)


def run_check(family: str, check: str, *, load: Callable[[], Any], call: _Call, config: SpectrumConfig,
              reference: np.ndarray, min_psnr: float, backend: str) -> Row:
    """One stacking on a fresh pipeline, with Spectrum on, scored against the unstacked reference."""
    row = Row(family, check, "fail")
    pipe = load()
    extra = _stack(pipe, check, call.device)
    recompiled = None
    counter = None
    if check.startswith("compile"):
        from torch._dynamo.testing import CompileCounterWithBackend

        torch._dynamo.reset()
        counter = CompileCounterWithBackend(backend)
        _compile(pipe, check, counter)
    try:
        if check == "compile-full":  # one handle: its hooks are what the graphs are guarded on
            with apply_spectrum(pipe, config, **extra) as handle:
                out, seconds, peak = call(pipe)
                stats = handle.stats
                frames = counter.frame_count
                again, seconds, peak = call(pipe)
        else:
            with apply_spectrum(pipe, config, **extra) as handle:
                out, seconds, peak = call(pipe)
                stats = handle.stats
            frames = counter.frame_count if counter is not None else None
            if counter is not None:  # regional: the block graphs survive a new handle (a Runner applies one per call)
                with apply_spectrum(pipe, config, **extra):
                    again, seconds, peak = call(pipe)
        if counter is not None:
            recompiled = counter.frame_count - frames
            if not np.array_equal(again, out):
                row.reason = "a second compiled call gave another output"
    finally:
        if counter is not None:
            torch._dynamo.reset()
    row.nfe, row.nfe_by_branch = stats.nfe, dict(stats.nfe_by_branch)
    row.state_bytes, row.state_device = stats.forecaster_state_bytes, stats.forecaster_state_device
    row.peak_memory_bytes, row.seconds, row.recompiled_frames = peak, seconds, recompiled
    row.identical = bool(np.array_equal(out, reference))
    row.psnr_vs_reference = _psnr(out, reference) if np.isfinite(out).all() else None
    problems = [row.reason] if row.reason else []
    if stats.nfe != config.nfe or any(n != config.nfe for n in stats.nfe_by_branch.values()):
        problems.append(f"{stats.nfe} real passes ({row.nfe_by_branch}), not {config.nfe} per branch")
    if row.psnr_vs_reference is None:
        problems.append("non-finite output")
    elif row.psnr_vs_reference < min_psnr:
        problems.append(f"{row.psnr_vs_reference:.1f} dB from the reference, below {min_psnr:g}")
    if recompiled:
        problems.append(f"{recompiled} frames compiled again on the second call")
    row.status, row.reason = ("fail", "; ".join(problems)) if problems else ("pass", "")
    return row


def run(device: str, dtype: torch.dtype, families: list[str], checks: list[str], *, steps: int = 12, nfe: int = 8,
        backend: str = "inductor", min_psnr: float | None = None, cache_dir: str | None = None) -> list[Row]:
    """Every check of every family; see the module docstring."""
    if min_psnr is None:
        min_psnr = 60.0 if dtype == torch.float32 else 35.0
    config = SpectrumConfig(nfe=nfe)
    rows = []
    for family in families:
        load = lambda: _quiet(load_tiny_pipeline(family, cache_dir=cache_dir, torch_dtype=dtype))  # noqa: E731
        call = _Call(family, steps, device)
        pipe = load().to(device)
        with apply_spectrum(pipe, config):
            reference, _, _ = call(pipe)
        del pipe
        for check in checks:
            if check in _ACCELERATOR_ONLY and not (device.startswith("cuda") and torch.cuda.is_available()):
                rows.append(Row(family, check, "skipped", _ACCELERATOR_ONLY[check]))
                continue
            try:
                rows.append(run_check(family, check, load=load, call=call, config=config, reference=reference,
                                      min_psnr=min_psnr, backend=backend))
            except Exception as exc:  # a stacking that raises is a failed check, reported with the rest
                rows.append(Row(family, check, "fail", f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"))
    return rows


def _quiet(pipe: Any) -> Any:
    pipe.set_progress_bar_config(disable=True)
    return pipe


def table(rows: list[Row]) -> str:
    lines = ["| family | check | status | real passes | PSNR vs reference | identical | recompiled | state (device) "
             "| peak memory | seconds | reason |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        psnr = "" if r.psnr_vs_reference is None else ("inf" if math.isinf(r.psnr_vs_reference)
                                                       else f"{r.psnr_vs_reference:.1f}")
        state = "" if r.state_bytes is None else f"{r.state_bytes / 2**10:.0f} KiB ({r.state_device})"
        peak = "" if r.peak_memory_bytes is None else f"{r.peak_memory_bytes / 2**20:.1f} MiB"
        lines.append(f"| {r.family} | {r.check} | {r.status} | {'' if r.nfe is None else r.nfe} | {psnr} | "
                     f"{'' if r.identical is None else r.identical} | "
                     f"{'' if r.recompiled_frames is None else r.recompiled_frames} | {state} | {peak} | "
                     f"{'' if r.seconds is None else f'{r.seconds:.2f}'} | {r.reason} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", choices=sorted(_DTYPES), default=None,
                        help="default: bfloat16 on CUDA, float32 elsewhere")
    parser.add_argument("--families", default="flux,wan", help="comma-separated tiny families")
    parser.add_argument("--checks", default=",".join(CHECKS), help=f"comma-separated, from: {', '.join(CHECKS)}")
    parser.add_argument("--backend", default="inductor", help="torch.compile backend of the compile checks")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--nfe", type=int, default=8)
    parser.add_argument("--min-psnr", type=float, default=None)
    parser.add_argument("--cache-dir", default=None, help="where the tiny models are built (default: spectrum's cache)")
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("outputs/bench/stack_checks.json"))
    args = parser.parse_args(argv)
    checks = [c for c in args.checks.split(",") if c]
    unknown = [c for c in checks if c not in CHECKS]
    families = [f for f in args.families.split(",") if f]
    for name in families:
        try:
            variant(name)
        except (KeyError, ValueError):
            unknown.append(name)
    if unknown:
        parser.error(f"unknown check or family: {', '.join(unknown)}")
    low, high = nfe_range(args.steps)
    if not low <= args.nfe <= high:
        parser.error(f"--nfe {args.nfe} is not attainable with {args.steps} steps: choose {low} to {high}")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device here")
    dtype = _DTYPES[args.dtype] if args.dtype else (torch.bfloat16 if args.device.startswith("cuda") else torch.float32)
    if args.device == "cpu":
        torch.set_num_threads(1)
    rows = run(args.device, dtype, families, checks, steps=args.steps, nfe=args.nfe, backend=args.backend,
               min_psnr=args.min_psnr, cache_dir=args.cache_dir)
    print(f"device {args.device}, {str(dtype).replace('torch.', '')}, {args.nfe} of {args.steps} steps, "
          f"torch {torch.__version__}")
    print(table(rows))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"device": args.device, "dtype": str(dtype).replace("torch.", ""), "steps": args.steps,
               "nfe": args.nfe, "backend": args.backend, "torch": torch.__version__,
               "rows": [{k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                         for k, v in asdict(r).items()} for r in rows]}
    args.out.write_text(json.dumps(payload, indent=1, allow_nan=False) + "\n")
    print(f"wrote {args.out}")
    failed = [r for r in rows if r.status == "fail"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
