"""Forecaster cost at real models' feature sizes: time, bytes/s against memcpy, state memory.

Spectrum's Chebyshev forecaster is memory-bound: an update touches the (M+1) moment rows and the new
feature, a prediction reads the rows and writes one feature. So its time is best judged as bandwidth:

- ``memcpy_bandwidth`` times a large tensor copy (bytes read + written per second) on this machine;
- for each feature size and dtype, and for two variants — ``before`` (float32 moments updated over whole
  rows, the code up to 9406888) and ``now`` (scaled float16 moments for 16-bit features, one fused chunked
  pass) — the updates of a 14-pass run (Spectrum's schedule at 14 of 50) and a
  prediction with w=1 and w=0.5 are timed, and two byte counts are divided by the time:
  *ideal* — the least traffic the algorithm needs (read the state and the input once, write the state or
  output once, keep the copy of h the state holds), and *implementation* — what the kernels stream from
  memory (``before``: (M+1)(M+2)/2 whole-row axpys, each reading two rows and writing one; ``now``: each
  row read and written once, the chunk's float32 scratch staying in cache, plus h's peak and the float16
  moments' reference feature). impl/ideal ≤ 2 is issue 17's bound; ideal/memcpy is the figure of merit.
- state memory is ``ChebyshevForecaster.state_bytes()`` (constant in the number of passes): (M+1)
  moment rows (float32, or float16 for 16-bit features now), plus the last two features in the input dtype
  when w < 1 (the float16 rows' reference feature when w = 1), against the reference implementation's
  buffer of every real feature in the model dtype, at 14 passes.

Features are random: cost does not depend on values (for the float16 rows' accuracy on real features see
``bench.precision``).
"""

from __future__ import annotations

import statistics
import time
from typing import Any, Callable

import torch

from ..method import forecasters
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


VARIANTS = {
    # the state and update of 12c5021..9406888: float32 moments, updated row by row over whole rows
    "before": {"compact": False, "whole_rows": True},
    # today: scaled float16 moments for 16-bit features, one fused chunked pass
    "now": {"compact": True, "whole_rows": False},
}


def _state_bytes(numel: int, e_in: int, e_m: int, blend: float, compact_half: bool) -> int:
    """ChebyshevForecaster.state_bytes() once full: the rows, the last two features when w < 1, and the
    float16 moments' reference feature (shared with the linear term's latest when w < 1)."""
    kept = 2 if blend < 1 else (1 if compact_half else 0)
    return (DEGREE + 1) * e_m * numel + kept * e_in * numel


def forecaster_cost(name: str, shape: tuple[int, int], dtype: torch.dtype, bandwidth: float,
                    variant: str = "now") -> dict[str, Any]:
    numel = shape[0] * shape[1]
    e_in = torch.tensor([], dtype=dtype).element_size()
    rows = DEGREE + 1
    opts = VARIANTS[variant]
    gen = torch.Generator().manual_seed(0)
    features = [torch.randn((1, *shape), generator=gen, dtype=torch.float32).to(dtype) for _ in range(2)]
    steps = real_steps(STEPS, warmup=5, window=2.0, alpha=0.75)[:PASSES]
    forecaster = ChebyshevForecaster(degree=DEGREE, ridge=0.1, blend=0.5, compact=opts["compact"])
    original = forecasters._chunk
    if opts["whole_rows"]:
        forecasters._chunk = lambda t: 1 << 62
    try:
        update_times = []
        for i, step in enumerate(steps):
            feature = features[i % 2]
            update_times.append(_timed(lambda: forecaster.update(2 * step / STEPS - 1, feature)))
        tau = 2 * (steps[-1] + 1) / STEPS - 1
        predict = {}
        for blend in (1.0, 0.5):
            forecaster.blend = blend
            predict[blend] = statistics.median(_timed(lambda: forecaster.predict(tau)) for _ in range(3))
    finally:
        forecasters._chunk = original
    e_m = forecaster._moments.element_size()
    half = e_m == 2
    state = forecaster.state_bytes()  # w=0.5: moments + the last two features in the input dtype
    assert state == _state_bytes(numel, e_in, e_m, 0.5, half)
    state_w1 = _state_bytes(numel, e_in, e_m, 1.0, half)
    del forecaster, features

    f32, m = 4 * numel, e_m * numel
    h = numel * e_in
    # ideal: read h once, read and write the moment rows once, write the copy of h the state keeps (w<1)
    update_ideal = h + 2 * rows * m + h
    if opts["whole_rows"]:  # (M+1)(M+2)/2 whole-row axpys (15 row passes at M=4) on float32 rows
        update_impl = (rows * 2 + rows * (rows - 1) // 2 * 3 + rows * 3) * f32 + (h + f32 if e_in != 4 else 0) + 2 * h
    else:  # one pass: rows read and written once, h read once (+ its peak and the reference for float16 rows)
        update_impl = 2 * rows * m + h + (2 * h if half else 0) + 2 * h
    kept = 2 * h
    predict_ideal = {1.0: rows * m + f32 + (h if half else 0), 0.5: rows * m + f32 + kept}
    if opts["whole_rows"]:
        predict_impl = {1.0: (1 + 3 * rows) * f32, 0.5: (1 + 3 * rows + 11) * f32}
    else:
        predict_impl = predict_ideal
    update_t = statistics.median(update_times[1:])  # the first also allocates the state
    reference = PASSES * numel * e_in
    out = {
        "feature": name, "shape": list(shape), "dtype": str(dtype).replace("torch.", ""), "degree": DEGREE,
        "variant": variant, "moments_dtype": "float16" if half else "float32",
        "update_seconds": update_t, "update_seconds_all": update_times,
        "update_ideal_bytes": update_ideal, "update_impl_bytes": update_impl,
        "update_impl_vs_ideal": update_impl / update_ideal,
        "update_ideal_gbps": update_ideal / update_t / 1e9, "update_impl_gbps": update_impl / update_t / 1e9,
        "update_ideal_vs_memcpy": update_ideal / update_t / bandwidth,
        "state_bytes": state, "state_w1_bytes": state_w1, "reference_state_bytes": reference,
        "state_vs_reference": state / reference, "state_w1_vs_reference": state_w1 / reference,
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
            for variant in VARIANTS:
                row = forecaster_cost(name, shape, dtype, bandwidth, variant)
                log(f"  {name} {row['dtype']} ({variant}): update {row['update_seconds'] * 1e3:.0f} ms, predict(w=1) "
                    f"{row['predict_w1_seconds'] * 1e3:.0f} ms, state {row['state_bytes'] / 2**20:.0f} MiB")
                rows.append(row)
    return {"memcpy_bytes_per_second": bandwidth, "passes": PASSES, "rows": rows,
            "skipped": ["Wan-480p (quick mode)"] if quick else []}
