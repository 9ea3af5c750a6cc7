"""The request: what a user asks for, resolved against a preset and validated before any model loads.

`build_job` checks everything that can be checked without the model (prompt, sizes, frames, the NFE
range, Spectrum's knobs) and `check_weights` whether the weights are on this machine; both raise
`RequestError` with a message that says what to do. Neither imports torch or diffusers, so the CLI
answers bad input at once instead of after seconds of imports.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from .presets import FORECASTER_FOR_METHOD, Preset

_SIGNATURE_TAG = {"spectrum": "cheb", "taylor": "taylor", "reuse": "reuse"}


class RequestError(ValueError):
    """Bad input: the request cannot run as given. The message says what would work."""


class WeightsMissing(RequestError):
    """A hub preset whose weights are not on this machine."""


@dataclass(frozen=True)
class Job:
    """One generation, fully resolved against its preset (no field left to a default)."""

    prompt: str
    seed: int
    steps: int
    height: int
    width: int
    frames: int | None
    fps: int | None
    guidance: float | None
    method: str                       # "spectrum" | "taylor" | "reuse" | "none"
    spectrum: Any = None              # SpectrumConfig, or None for method "none"

    @property
    def signature(self) -> str:
        """Short tag of the method for file names: `cheb-nfe14`, `cheb-a0.75`, `base`."""
        if self.spectrum is None:
            return "base"
        tag = _SIGNATURE_TAG[self.method]
        if self.spectrum.interval is not None:
            return f"{tag}-int{self.spectrum.interval}"
        if self.spectrum.nfe is not None:
            return f"{tag}-nfe{self.spectrum.nfe}"
        return f"{tag}-a{self.spectrum.effective_alpha:g}"

    def baseline(self) -> "Job":
        """The same job without acceleration: every step runs the network."""
        return replace(self, method="none", spectrum=None)

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k != "spectrum"}
        out["spectrum"] = None if self.spectrum is None else self.spectrum.to_dict()
        return out


def build_job(
    preset: Preset,
    prompt: str,
    *,
    seed: int = 42,
    steps: int | None = None,
    height: int | None = None,
    width: int | None = None,
    frames: int | None = None,
    fps: int | None = None,
    guidance: float | None = None,
    method: str | None = None,
    nfe: int | None = None,
    alpha: float | None = None,
    degree: int | None = None,
    ridge: float | None = None,
    blend: float | None = None,
    window: float | None = None,
    warmup: int | None = None,
    taylor_order: int | None = None,
    tau_horizon: int | None = None,
    force_last: bool | None = None,
    interval: int | None = None,
) -> Job:
    """Resolve a request against `preset` (None = the preset's default) and check it, before any
    model loads. Raises RequestError."""
    from ..method.schedule import nfe_range

    if not prompt or not prompt.strip():
        raise RequestError("The prompt is empty; say what to generate, e.g. spectrum gen \"a red circle\".")
    try:
        preset.check_prompt(prompt)
    except ValueError as exc:
        raise RequestError(str(exc)) from None
    defaults = preset.spectrum
    knobs_given = nfe is not None or alpha is not None or interval is not None
    if method is None:
        method = defaults.method if defaults.method != "none" or not knobs_given else "spectrum"
    if method not in ("spectrum", "taylor", "reuse", "none"):
        raise RequestError(f"Unknown method '{method}'. Choose from: spectrum, taylor, reuse, none.")
    if method == "none" and knobs_given:
        raise RequestError("--nfe/--alpha/--interval set the Spectrum schedule; they do nothing with --method none.")
    if nfe is not None and alpha is not None:
        raise RequestError("Pass either --nfe (number of real passes) or --alpha (schedule growth), not both.")

    steps = preset.steps if steps is None else steps
    if steps < 1:
        raise RequestError(f"--steps must be at least 1, got {steps}.")
    height = preset.height if height is None else height
    width = preset.width if width is None else width
    for flag, value in (("--height", height), ("--width", width)):
        m = preset.size_multiple
        if value < m or value % m:
            lower, upper = max(m, value // m * m), (value // m + 1) * m
            hint = f"try {lower} or {upper}" if lower != upper and value > m else f"try {upper}"
            raise RequestError(f"{flag} {value} is not a positive multiple of {m}, which {preset.name} needs; {hint}.")
    if preset.fixed_size and (height, width) != (preset.height, preset.width):
        raise RequestError(f"{preset.name} was trained at {preset.width}x{preset.height} only and draws nothing "
                           f"useful at {width}x{height}; drop --height/--width.")

    if not preset.is_video:
        if frames is not None or fps is not None:
            raise RequestError(f"--frames/--fps are for video models; '{preset.name}' makes images.")
    else:
        frames = preset.frames if frames is None else frames
        fps = preset.fps if fps is None else fps
        k = preset.frame_step
        if frames < 1 or (frames - 1) % k:
            lower, upper = max(1, (frames - 1) // k * k + 1), ((frames - 1) // k + 1) * k + 1
            raise RequestError(f"--frames {frames} does not fit {preset.name}, which needs {k}k+1 frames; try {lower} or {upper}.")
        if fps < 1:
            raise RequestError(f"--fps must be at least 1, got {fps}.")
        if preset.fixed_size and frames != preset.frames:
            raise RequestError(f"{preset.name} was trained on {preset.frames}-frame clips only; drop --frames.")

    config = None
    if method != "none":
        given = dict(nfe=nfe, alpha=alpha, interval=interval, window=window, warmup=warmup, degree=degree,
                     ridge=ridge, blend=blend, taylor_order=taylor_order, tau_horizon=tau_horizon,
                     force_last=force_last)
        try:  # replace() lets a given nfe, alpha or interval displace the preset's schedule
            config = defaults.config.replace(
                forecaster=FORECASTER_FOR_METHOD[method], **{k: v for k, v in given.items() if v is not None}
            )
        except ValueError as exc:
            raise RequestError(f"{exc}.".replace("..", ".")) from None
        if config.nfe is not None and preset.family != "wan22":  # two experts: checked when the call plans
            lo, hi = nfe_range(steps, config.warmup)
            if not lo <= config.nfe <= hi:
                raise RequestError(
                    f"--nfe {config.nfe} is not attainable with {steps} steps and warmup {config.warmup}: "
                    f"choose {lo} to {hi}."
                )
    return Job(prompt=prompt, seed=seed, steps=steps, height=height, width=width, frames=frames, fps=fps,
               guidance=preset.guidance if guidance is None else guidance, method=method, spectrum=config)


def check_weights(preset: Preset) -> None:
    """Raise WeightsMissing (with the remedy) unless the preset's weights are on this machine.
    Cheap: looks at files only. Tiny models count as present (they are built on first use)."""
    kind = preset.source_kind
    if kind == "tiny":
        return
    if kind in ("embedded", "path"):
        folder = preset.local_dir()
        if not (folder / "model_index.json").is_file():
            if kind == "embedded":
                raise WeightsMissing(
                    f"The embedded model '{preset.name}' is not in this installation ({folder} has no "
                    "model_index.json): train and export it with the commands in training/README.md, or pick "
                    "another --model (see `spectrum presets`)."
                )
            raise WeightsMissing(
                f"The model folder '{folder}' for '{preset.name}' has no model_index.json; "
                "point --model-path at a diffusers folder, or pick another --model (see `spectrum presets`)."
            )
        return
    if _hub_snapshot(preset.source) is None:
        raise WeightsMissing(
            f"Weights for '{preset.name}' ({preset.source}) are not on this machine. Download them with "
            f"`huggingface-cli download {preset.source}` (accept the licence on the hub first if it is gated), "
            "or pass --model-path DIR pointing at a local diffusers folder."
        )


def _hub_snapshot(repo_id: str) -> str | None:
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, "model_index.json")
    return found if isinstance(found, str) else None
