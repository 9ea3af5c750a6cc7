"""The request: what a user asks for, resolved against a preset and validated before any model loads.

`build_job` checks everything that can be checked without the model (prompt, sizes, frames, the NFE
range, Spectrum's knobs) and `check_weights` whether the weights are on this machine; both raise
`RequestError` with a message that says what to do. Neither imports torch or diffusers, so the CLI
answers bad input at once instead of after seconds of imports.
"""

from __future__ import annotations

import json
import math
import numbers
import re
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Mapping

from ..method.config import ConfigError, SpectrumConfig
from .presets import FORECASTER_FOR_METHOD, METHODS, InputError, Preset

_SIGNATURE_TAG = {"spectrum": "cheb", "taylor": "taylor", "reuse": "reuse", "linear": "linear"}


class RequestError(InputError):
    """Bad input: the request cannot run as given. The message says what would work, in the library's
    own names (never a CLI flag); `field`, `value`, `expected` as in `InputError`."""


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
    profile: str = "reference"        # id of the calibration profile applied, or "reference" (none)
    lora: tuple[tuple[str, float], ...] | None = None  # this job's LoRAs (a batch line's); None: the runner's
    image: str | None = None          # input image (img2img, inpaint, edit, image-to-video), absolute path
    mask: str | None = None           # inpaint mask (white: repaint), absolute path
    strength: float | None = None     # img2img/inpaint: how much of the schedule runs (the pipeline's rule)

    @property
    def signature(self) -> str:
        """Short tag of the method for file names: `cheb-nfe14`, `cheb-a0.75`, `base`."""
        if self.spectrum is None:
            return "base"
        tag = _SIGNATURE_TAG[self.method]
        if self.spectrum.real_steps is not None:
            return f"{tag}-steps{sum(len(segment) for segment in self.spectrum.real_steps)}"
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


# The knobs `build_job` reads from its mapping: the job's own, then every SpectrumConfig field but the
# forecaster (which `method` sets). Front ends derive their options from these names.
JOB_KNOBS: tuple[str, ...] = ("seed", "steps", "height", "width", "frames", "fps", "guidance", "method", "profile",
                              "image", "mask", "strength")
SPECTRUM_KNOBS: tuple[str, ...] = tuple(f.name for f in fields(SpectrumConfig) if f.name != "forecaster")
KNOBS: tuple[str, ...] = JOB_KNOBS + SPECTRUM_KNOBS

DEFAULT_SEED = 42
SEED_MAX = 2**64 - 1       # what torch.Generator.manual_seed accepts
MAX_STEPS = 10_000
MAX_PIXELS = 16_384        # per side
MAX_FRAMES = 10_000
MAX_FPS = 1_000

# Knobs that only one forecaster reads: given with another, they would do nothing.
_ONLY_FOR = {"degree": "chebyshev", "ridge": "chebyshev", "blend": "chebyshev", "taylor_order": "taylor"}


def _whole(field: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not lo <= value <= hi:
        raise RequestError(f"`{field}` must be a whole number from {lo} to {hi}, got {value!r}.",
                           field=field, value=value, expected=f"a whole number from {lo} to {hi}")
    return int(value)


def _input_image(field: str, path: Any, preset: Preset) -> tuple[str, tuple[int, int]]:
    """`path` as an absolute path to an image that decodes, with its size (width, height); RequestError else."""
    from PIL import Image, UnidentifiedImageError

    if not isinstance(path, (str, Path)) or not str(path).strip():
        raise RequestError(f"`{field}` must be an image file's path, got {path!r}.", field=field, value=path,
                           expected="a path to an image file")
    file = Path(path).expanduser()
    if not file.is_file():
        raise RequestError(f"`{field}` {path}: no such file.", field=field, value=str(path),
                           expected="an existing image file")
    try:
        with Image.open(file) as img:
            img.load()
            size = img.size
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise RequestError(f"`{field}` {path} is not an image that decodes ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); "
                           "give a PNG, JPEG or WebP file.", field=field, value=str(path), expected="an image file") from None
    if min(size) < preset.size_multiple or max(size) > MAX_PIXELS:
        raise RequestError(f"`{field}` {path} is {size[0]}x{size[1]}; {preset.name} resizes its input to the output "
                           f"size and needs each side from {preset.size_multiple} to {MAX_PIXELS} pixels.", field=field,
                           value=str(path), expected=f"sides of {preset.size_multiple} to {MAX_PIXELS} pixels")
    return str(file.resolve()), size


# What an input is for, by the call argument it fills, where that is not the usual start image or mask.
_INPUT_NEEDS = {"reference_images": "the reference image, the subject to put in the video"}


def _inputs(preset: Preset, given: Mapping[str, Any]) -> dict[str, Any]:
    """The image, mask and strength of a request, checked against what the preset's pipeline takes."""
    from ..hooks.families import variant, variants_taking

    v = variant(preset.family)[1]
    out: dict[str, Any] = {}
    for field, role, what, need in (("image", "image", "input image", "the image to start from"),
                                    ("mask", "mask", "mask", "the inpaint mask, white where to repaint")):
        takes = role in v.inputs
        if field in given and not takes:
            others = ", ".join(variants_taking(role))
            raise RequestError(f"`{field}` is not used by '{preset.name}' ({v.pipeline} takes no {what}); drop it, or "
                               f"pick a model that takes one: {others}.", field=field, value=given[field],
                               expected=f"unset for {preset.name}")
        if takes and field not in given:
            need = _INPUT_NEEDS.get(v.arguments[field], need)
            raise RequestError(f"'{preset.name}' ({v.pipeline}) needs `{field}`: {need}.",
                               field=field, value=None, expected="a path to an image file")
        if takes:
            out[field], out[f"{field}_size"] = _input_image(field, given[field], preset)
    if "mask" in out and out["mask_size"] != out["image_size"]:
        (w, h), (mw, mh) = out["image_size"], out["mask_size"]
        raise RequestError(f"`mask` is {mw}x{mh} but `image` is {w}x{h}; give the mask of this image (same size).",
                           field="mask", value=given["mask"], expected=f"{w}x{h}")
    strength = given.get("strength")
    if strength is not None:
        if v.strength is None:
            raise RequestError(f"`strength` is not used by '{preset.name}' ({v.pipeline} runs every step); drop it, or "
                               f"pick an img2img or inpaint model: {', '.join(variants_taking('strength'))}.",
                               field="strength", value=strength, expected=f"unset for {preset.name}")
        if isinstance(strength, bool) or not isinstance(strength, numbers.Real) or not 0 < strength <= 1:
            raise RequestError(f"`strength` must be a number in (0, 1] (1 repaints everything), got {strength!r}.",
                               field="strength", value=strength, expected="a number in (0, 1]")
    out["strength"] = None if v.strength is None else float(v.strength if strength is None else strength)
    out["variant"] = v
    return out


def _config_error(exc: ConfigError) -> RequestError:
    """SpectrumConfig's error as a RequestError whose message names the settings in backticks."""
    other = re.fullmatch(r"unset when (\w+) is set", exc.expected or "")
    if other:
        text = f"Set either `{other[1]}` or `{exc.field}`, not both."
    else:
        text = f"`{exc.field}` must be {exc.expected}, got {exc.value!r}."
    return RequestError(text, field=exc.field, value=exc.value, expected=exc.expected)


def build_job(preset: Preset, prompt: str, knobs: Mapping[str, Any] | None = None, /, **more: Any) -> Job:
    """Resolve a request against `preset` and check it, before any model loads. Raises RequestError
    naming the `field` at fault.

    `knobs` maps names of `KNOBS` to values, None meaning the preset's default; keyword arguments add to
    it (``build_job(preset, "a fox", nfe=14)``). A given nfe, alpha or interval replaces the preset's
    schedule; SpectrumConfig checks the Spectrum knobs (and that those three exclude each other). A knob
    that would have no effect (a Spectrum setting with method "none", degree with the Taylor
    forecaster, ...) is refused rather than ignored.

    `profile` (None: automatic, "none": the reference schedule, or a path) picks a calibration profile
    (see `app.profiles`): with the default method and no schedule or forecaster knob, a profile that
    matches the model, sampler, steps, guidance, size and budget sets the real steps and the forecaster,
    and `Job.profile` names it ("reference" when none applied)."""
    from ..method.schedule import explicit_segments, nfe_range
    from . import profiles

    given = {k: v for k, v in {**(knobs or {}), **more}.items() if v is not None}
    unknown = sorted(set(given) - set(KNOBS))
    if unknown:
        raise RequestError(f"Unknown setting `{unknown[0]}`. Valid: {', '.join(KNOBS)}.", field=unknown[0],
                           value=given[unknown[0]], expected=f"one of {', '.join(KNOBS)}")
    if not isinstance(prompt, str):
        raise RequestError(f"The prompt must be text, got {prompt!r}.", field="prompt", value=prompt,
                           expected="a non-empty text")
    if not prompt.strip():
        raise RequestError("The prompt is empty; say what to generate, e.g. \"a red circle\".",
                           field="prompt", value=prompt, expected="a non-empty text")
    try:
        preset.check_prompt(prompt)
    except ValueError as exc:
        raise RequestError(str(exc), field="prompt", value=prompt) from None
    seed = _whole("seed", given.get("seed", DEFAULT_SEED), 0, SEED_MAX)

    defaults = preset.spectrum
    spectrum_given = {k: given[k] for k in SPECTRUM_KNOBS if k in given}
    schedule_given = any(k in given for k in ("nfe", "alpha", "interval"))
    method = given.get("method")
    if method is None:
        method = defaults.method if defaults.method != "none" or not schedule_given else "spectrum"
    if method not in METHODS:
        raise RequestError(f"Unknown `method` {method!r}. Choose from: {', '.join(METHODS)}.", field="method",
                           value=method, expected=f"one of {', '.join(METHODS)}")
    for key, value in spectrum_given.items():
        if method == "none":
            raise RequestError(f"`{key}` {value} has no effect when `method` is none (the plain pipeline): drop it, "
                               "or choose spectrum, taylor or reuse.", field=key, value=value,
                               expected="unset with method none")
        only = _ONLY_FOR.get(key)
        if only is not None and FORECASTER_FOR_METHOD.get(method) != only:
            wanted = next(m for m, f in FORECASTER_FOR_METHOD.items() if f == only)
            raise RequestError(f"`{key}` {value} has no effect when `method` is {method}; it is a setting of "
                               f"`method` {wanted}.", field=key, value=value, expected=f"unset with method {method}")

    steps = _whole("steps", given.get("steps", preset.steps), 1, MAX_STEPS)
    size = {}
    for field in ("height", "width"):
        value = _whole(field, given.get(field, getattr(preset, field)), -MAX_PIXELS, MAX_PIXELS)
        m = preset.size_multiple
        if value < m or value % m:
            hint = f"try {value // m * m} or {(value // m + 1) * m}" if value > m else f"the smallest is {m}"
            raise RequestError(f"`{field}` {value} is not a positive multiple of {m}, which {preset.name} needs; "
                               f"{hint}.", field=field, value=value, expected=f"a positive multiple of {m}")
        size[field] = value
    height, width = size["height"], size["width"]
    if preset.fixed_size and (height, width) != (preset.height, preset.width):
        raise RequestError(f"{preset.name} was trained at {preset.width}x{preset.height} only and draws nothing "
                           f"useful at {width}x{height}; drop `height` and `width`.", field="height", value=height,
                           expected=f"{preset.height}")

    frames = fps = None
    if not preset.is_video:
        for field in ("frames", "fps"):
            if field in given:
                raise RequestError(f"`frames`/`fps` are for video models; '{preset.name}' makes images.",
                                   field=field, value=given[field], expected="unset for an image model")
    else:
        frames = _whole("frames", given.get("frames", preset.frames), 1, MAX_FRAMES)
        fps = _whole("fps", given.get("fps", preset.fps), 1, MAX_FPS)
        k = preset.frame_step
        if (frames - 1) % k:
            lower, upper = max(1, (frames - 1) // k * k + 1), ((frames - 1) // k + 1) * k + 1
            raise RequestError(f"`frames` {frames} does not fit {preset.name}, which needs {k}k+1 frames; "
                               f"try {lower} or {upper}.", field="frames", value=frames, expected=f"{k}k+1")
        if preset.fixed_size and frames != preset.frames:
            raise RequestError(f"{preset.name} was trained on {preset.frames}-frame clips only; drop `frames`.",
                               field="frames", value=frames, expected=str(preset.frames))

    inputs = _inputs(preset, given)
    from ..hooks.families import steps_run

    run = steps_run(inputs["variant"], steps, inputs["strength"])
    if run < 1:
        raise RequestError(f"`strength` {inputs['strength']:g} with {steps} steps runs no step; raise `strength` or "
                           "`steps`.", field="strength", value=inputs["strength"], expected="more steps run")

    guidance = given.get("guidance", preset.guidance)
    if guidance is not None and (isinstance(guidance, bool) or not isinstance(guidance, numbers.Real)
                                 or not math.isfinite(guidance) or guidance < 0):
        raise RequestError(f"`guidance` must be a finite number >= 0, got {guidance!r}.", field="guidance",
                           value=guidance, expected="a finite number >= 0")

    profile = given.get("profile")
    if profile is not None and not isinstance(profile, (str, Path)):
        raise RequestError(f"`profile` must be a profile file's path or none, got {profile!r}.", field="profile",
                           value=profile, expected="a path or none")
    config, profile_id = None, profiles.REFERENCE
    if method != "none":
        try:  # replace() lets a given nfe, alpha or interval displace the preset's schedule
            config = defaults.config.replace(forecaster=FORECASTER_FOR_METHOD[method], **spectrum_given)
        except ConfigError as exc:
            raise _config_error(exc) from None
        # An explicit list is checked against the steps this run has (a multi-expert run's split is known
        # only from its scheduler, so there the check happens when the run starts).
        if config.real_steps is not None and preset.experts == 1:
            try:
                explicit_segments((run,), config.real_steps, config.nfe)
            except ValueError as exc:
                raise RequestError(f"`real_steps`: {exc}.", field="real_steps", value=config.real_steps,
                                   expected=f"steps within 0 to {run - 1}") from None
        try:
            config, profile_id = profiles.resolve(preset, config, run, guidance, profile, height=height,
                                                  width=width, frames=frames, given=spectrum_given.keys(),
                                                  method=method)
        except ConfigError as exc:
            raise _config_error(exc) from None
        # A profile's steps are checked by SpectrumConfig; the rule's attainable range applies otherwise.
        if config.nfe is not None and config.real_steps is None and preset.experts == 1:
            lo, hi = nfe_range(run, config.warmup)
            ran = f"{steps} steps" if run == steps else f"the {run} of {steps} steps that `strength` {inputs['strength']:g} runs"
            if not lo <= config.nfe <= hi:
                raise RequestError(
                    f"`nfe` {config.nfe} is not attainable with {ran} and warmup {config.warmup}: "
                    f"choose {lo} to {hi}.", field="nfe", value=config.nfe, expected=f"{lo} to {hi}"
                )
    return Job(prompt=prompt, seed=seed, steps=steps, height=height, width=width, frames=frames, fps=fps,
               guidance=guidance, method=method, spectrum=config, profile=profile_id, image=inputs.get("image"),
               mask=inputs.get("mask"), strength=inputs["strength"])


def steps_run(preset: Preset, job: Job) -> int:
    """How many of `job.steps` the preset's pipeline runs (fewer with `strength` < 1): what the NFE is over."""
    from ..hooks.families import steps_run as rule, variant

    return rule(variant(preset.family)[1], job.steps, job.strength)


def check_weights(preset: Preset) -> None:
    """Raise WeightsMissing (with the remedy) unless the preset's weights are on this machine.
    Cheap: looks at files only. Tiny models count as present (they are built on first use). A hub model
    counts only when every component its model_index.json lists is in the local cache (a download cut
    short after model_index.json is not a model, and loading it would go to the hub for the rest)."""
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
                    "another `model`.", field="model", value=preset.name, expected="a built model"
                )
            raise WeightsMissing(
                f"The model folder '{folder}' for '{preset.name}' has no model_index.json; "
                "use a diffusers folder as `model_path`, or pick another `model`.", field="model_path",
                value=str(folder), expected="a diffusers folder"
            )
        return
    snapshot = _hub_snapshot(preset.source)
    missing = None if snapshot is None else missing_components(Path(snapshot).parent)
    if snapshot is None or missing:
        what = "are not on this machine" if snapshot is None else f"are only partly downloaded ({missing[0]} is missing)"
        raise WeightsMissing(
            f"Weights for '{preset.name}' ({preset.source}) {what}. Download them with "
            f"`hf download {preset.source}` (accept the licence on the hub first if it is gated), "
            "or use a local diffusers folder as `model_path`.", field="model", value=preset.name,
            expected="weights on this machine"
        )


def missing_components(folder: Path) -> list[str]:
    """The components (sub-folders) that `folder`'s model_index.json lists but `folder` lacks, or that
    hold no weights where their config says they are a model: [] for a complete diffusers folder."""
    try:
        index = json.loads((folder / "model_index.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ["model_index.json"]
    missing = []
    for name, spec in index.items():
        if name.startswith("_") or not isinstance(spec, list) or len(spec) != 2 or None in spec:
            continue
        sub = folder / name
        files = [p.name for p in sub.iterdir()] if sub.is_dir() else []
        if not files:
            missing.append(f"{name}/")
        elif "config.json" in files and not any(f.endswith((".safetensors", ".bin", ".pt", ".pth", ".gguf"))
                                                for f in files):
            missing.append(f"{name}/ weights")
    return missing


def _hub_snapshot(repo_id: str) -> str | None:
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, "model_index.json")
    return found if isinstance(found, str) else None
