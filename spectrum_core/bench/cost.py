"""Forecaster cost at real models' feature sizes: time, bytes/s against memcpy, state memory.

Spectrum's Chebyshev forecaster is memory-bound: an update touches the (M+1) moment rows and the new
feature, a prediction reads the rows and writes one feature. So its time is best judged as bandwidth:

- ``memcpy_bandwidth`` times a large tensor copy (bytes read + written per second) on this machine;
- for each feature size and dtype, the updates of a 14-pass run (Spectrum's schedule at 14 of 50) and a
  prediction with w=1 and w=0.5 are timed, and two byte counts are divided by the time:
  *ideal* — the least traffic the algorithm needs (read the state and the input once, write the state or
  output once), and *implementation* — what our kernels actually stream (``update`` is (M+1)(M+2)/2
  in-place axpys, each reading two rows and writing one). ideal/memcpy is the figure of merit: 1.0 would
  be an update as fast as copying its state once.
- state memory is ``ChebyshevForecaster.state_bytes()`` (constant in the number of passes): (M+1)
  float32 moment rows, plus the last two features in the input dtype when w < 1, against the reference
  implementation's buffer of every real feature in the model dtype, at 14 passes.

Features are random: cost does not depend on values. The moments are float32 whatever the feature dtype.
"""

from __future__ import annotations

import statistics
import time
from typing import Any, Callable

import torch

from ..method.forecasters import ChebyshevForecaster
from ..method.schedule import real_steps

FEATURES = {"FLUX-1024²": (4096, 3072), "Wan-480p": (32760, 5120)}
DEGREE = 4
PASSES = 14
STEPS = 50


def memcpy_bandwidth(nbytes: int = 256 * 2**20, repeats: int = 5) -> float:
    """Bytes moved per second (read + write) by the fastest of ``repeats`` copies of ``nbytes``."""
    src = torch.empty(nbytes // 4, dtype=torch.float32).fill_(1.0)
    dst = torch.empty_like(src)
    dst.copy_(src)  # fault the pages in
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        dst.copy_(src)
        best = min(best, time.perf_counter() - t0)
    return 2 * nbytes / best


def _timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def forecaster_cost(name: str, shape: tuple[int, int], dtype: torch.dtype, bandwidth: float) -> dict[str, Any]:
    numel = shape[0] * shape[1]
    e_in = torch.tensor([], dtype=dtype).element_size()
    rows = DEGREE + 1
    gen = torch.Generator().manual_seed(0)
    features = [torch.randn((1, *shape), generator=gen, dtype=torch.float32).to(dtype) for _ in range(2)]
    steps = real_steps(STEPS, warmup=5, window=2.0, alpha=0.75)[:PASSES]
    forecaster = ChebyshevForecaster(degree=DEGREE, ridge=0.1, blend=0.5)  # keeps the last two for w<1
    update_times = []
    for i, step in enumerate(steps):
        feature = features[i % 2]
        update_times.append(_timed(lambda: forecaster.update(2 * step / STEPS - 1, feature)))
    tau = 2 * (steps[-1] + 1) / STEPS - 1
    predict = {}
    for blend in (1.0, 0.5):
        forecaster.blend = blend
        predict[blend] = statistics.median(_timed(lambda: forecaster.predict(tau)) for _ in range(3))
    state = forecaster.state_bytes()  # w=0.5: moments + the last two features in the input dtype
    state_w1 = rows * 4 * numel       # w=1 keeps only the float32 moments
    del forecaster, features

    f32 = 4 * numel
    update_ideal = numel * e_in + 2 * rows * f32 + (f32 if e_in != 4 else 0)  # read h, r/w rows, keep an f32 copy
    update_impl = (rows * 2 + rows * (rows - 1) // 2 * 3 + rows * 3) * f32 + (numel * e_in + f32 if e_in != 4 else 0)
    predict_ideal = {1.0: (rows + 1) * f32, 0.5: (rows + 3) * f32}
    predict_impl = {1.0: (1 + 3 * rows) * f32, 0.5: (1 + 3 * rows + 11) * f32}
    update_t = statistics.median(update_times[1:])  # the first also allocates the state
    out = {
        "feature": name, "shape": list(shape), "dtype": str(dtype).replace("torch.", ""), "degree": DEGREE,
        "update_seconds": update_t, "update_seconds_all": update_times,
        "update_ideal_bytes": update_ideal, "update_impl_bytes": update_impl,
        "update_ideal_gbps": update_ideal / update_t / 1e9, "update_impl_gbps": update_impl / update_t / 1e9,
        "update_ideal_vs_memcpy": update_ideal / update_t / bandwidth,
        "state_bytes": state, "state_w1_bytes": state_w1, "reference_state_bytes": PASSES * numel * e_in,
        "state_vs_reference": state / (PASSES * numel * e_in),
        "state_w1_vs_reference": state_w1 / (PASSES * numel * e_in),
    }
    for blend, key in ((1.0, "w1"), (0.5, "w0.5")):
        t = predict[blend]
        out[f"predict_{key}_seconds"] = t
        out[f"predict_{key}_ideal_gbps"] = predict_ideal[blend] / t / 1e9
        out[f"predict_{key}_impl_gbps"] = predict_impl[blend] / t / 1e9
        out[f"predict_{key}_ideal_vs_memcpy"] = predict_ideal[blend] / t / bandwidth
    return out


def run_cost(quick: bool, log: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    bandwidth = memcpy_bandwidth()
    log(f"  memcpy: {bandwidth / 1e9:.1f} GB/s (read + write)")
    rows = []
    for name, shape in FEATURES.items():
        for dtype in (torch.float32, torch.bfloat16):
            if quick and name == "Wan-480p":
                continue  # ~5 GB of state and minutes per run: full mode only
            row = forecaster_cost(name, shape, dtype, bandwidth)
            log(f"  {name} {row['dtype']}: update {row['update_seconds'] * 1e3:.0f} ms, predict(w=1) "
                f"{row['predict_w1_seconds'] * 1e3:.0f} ms, state {row['state_bytes'] / 2**20:.0f} MiB")
            rows.append(row)
    return {"memcpy_bytes_per_second": bandwidth, "passes": PASSES, "rows": rows,
            "skipped": ["Wan-480p (quick mode)"] if quick else []}
