"""`spectrum bench`: fidelity, speed and forecaster-cost benchmarks, and their report.

One module per job:

- ``models``   — which pipelines to benchmark (the embedded trained models when present, else the tiny
  random-weight families) and how to call them;
- ``methods``  — every accelerator compared (ours, TaylorSeer's own schedule, diffusers' built-in caches),
  applied and removed the same way, with real block passes counted by hooks, not config arithmetic;
- ``fidelity`` — PSNR/SSIM of each method's final output against the 50-step output of the same seed;
- ``speed``    — wall-clock speedup on a mid-size FLUX transformer, next to its Amdahl limit;
- ``cost``     — forecaster update/predict time, achieved bytes/s against memcpy, state memory;
- ``report``   — results.json, the markdown tables and the PNG charts;
- ``calibrated`` — the calibrated default against every baseline (cache-dit too), on samples calibration
  never saw, and the fidelity curve over 8 … 20 of 50 (``python -m spectrum_core.bench.calibrated``);
- ``ablation``, ``stack``, ``distributed`` — one-knob ablation; LoRA/compile/offload/batch costs; torchrun
  data and context parallelism (each ``python -m spectrum_core.bench.<name>``);
- ``suite``    — runs them in order (``run_suite``), for the CLI and the tests.
"""

from .suite import SuiteOptions, run_suite  # noqa: E402

__all__ = ["SuiteOptions", "run_suite"]
