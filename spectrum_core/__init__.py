"""spectrum_core: Spectrum feature forecasting for diffusers pipelines, usable from Python alone.

    from spectrum_core import SpectrumConfig, apply_spectrum
    handle = apply_spectrum(pipe, SpectrumConfig(nfe=14))
    image = pipe(prompt, num_inference_steps=50).images[0]
    handle.stats      # real and forecast steps, NFE per branch, seconds
    handle.remove()   # the vanilla pipeline again, bit-identical
"""

import importlib

# Where each public name lives. Resolved on first use (PEP 562), so that importing a light module of
# the package (presets, media: all the CLI needs for --help, `presets`, bad-input errors) does not
# import torch and diffusers, which take seconds.
_EXPORTS = {
    "SpectrumConfig": "method.config",
    "ChebyshevForecaster": "method.forecasters",
    "Forecaster": "method.forecasters",
    "ReuseForecaster": "method.forecasters",
    "TaylorForecaster": "method.forecasters",
    "make_forecaster": "method.forecasters",
    "CallStats": "hooks.stats",
    "SpectrumHandle": "hooks.spectrum",
    "StepEvent": "hooks.stats",
    "apply_spectrum": "hooks.spectrum",
    "nfe_bounds": "hooks.spectrum",
    "Schedule": "method.schedule",
    "nfe_range": "method.schedule",
    "real_steps": "method.schedule",
    "solve_nfe": "method.schedule",
    "load_preset": "app.presets",
    "build_job": "app.request",
    "Runner": "app.runner",
    "profiled_config": "app.profiles",
}


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))


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
    "load_preset",
    "build_job",
    "Runner",
    "profiled_config",
]
assert set(__all__) == set(_EXPORTS)
