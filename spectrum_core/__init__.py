"""spectrum_core: Spectrum feature forecasting for diffusers pipelines, usable from Python alone.

    from spectrum_core import SpectrumConfig, apply_spectrum
    handle = apply_spectrum(pipe, SpectrumConfig(nfe=14))
    image = pipe(prompt, num_inference_steps=50).images[0]
    handle.stats      # real and forecast steps, NFE per branch, seconds
    handle.remove()   # the vanilla pipeline again, bit-identical
"""

from .config import SpectrumConfig
from .forecasters import ChebyshevForecaster, Forecaster, ReuseForecaster, TaylorForecaster, make_forecaster
from .hooks import CallStats, SpectrumHandle, StepEvent, apply_spectrum, nfe_bounds
from .schedule import Schedule, nfe_range, real_steps, solve_nfe

__all__ = [
    "SpectrumConfig",
    "apply_spectrum",
    "nfe_bounds",
    "SpectrumHandle",
    "CallStats",
    "StepEvent",
    "Forecaster",
    "ChebyshevForecaster",
    "TaylorForecaster",
    "ReuseForecaster",
    "make_forecaster",
    "Schedule",
    "real_steps",
    "solve_nfe",
    "nfe_range",
]
