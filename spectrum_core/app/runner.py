"""From a preset and a request to an image or video: load, accelerate, call, time.

Usable from Python without the CLI::

    from spectrum_core.app.presets import load_preset
    from spectrum_core.app.request import build_job
    from spectrum_core.app.runner import Runner

    preset = load_preset("tiny-flux")
    job = build_job(preset, "a red circle on a navy background", seed=42, nfe=14)
    result = Runner(preset).generate(job)
    result.media.save("circle.png"); print(result.nfe, result.seconds)

`build_job` (:mod:`spectrum_core.app.request`) checks everything that can be checked without the model and
raises `RequestError` with a message that says what to do. `Runner` loads the
pipeline once and runs any number of jobs on it; `compare` runs the full-step baseline and the
accelerated job with the same seed and measures speedup and fidelity.

A run whose latents or decoded output hold NaN or infinity (an overflowing guidance scale, corrupted
weights) raises `NonFiniteOutput` instead of returning a black picture. On the CPU, each pipeline call
runs with the preset's `cpu_threads` (see `Runner`), set for the call and restored afterwards.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import numpy as np

import torch

from ..hooks.families import expert_names
from .presets import Preset, PresetError
from .request import Job, RequestError, WeightsMissing, check_weights

# --------------------------------------------------------------------------------------------------
# Device, dtype, loading
# --------------------------------------------------------------------------------------------------

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_device(name: str = "auto") -> str:
    """"auto" picks cuda > mps > cpu; an explicit device that is not there is a RequestError."""
    has_mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "mps" if has_mps else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise RequestError("`device` cuda: no CUDA device is visible; use `device` cpu (or auto).", field="device",
                           value=name, expected="auto or cpu")
    if name == "mps" and not has_mps:
        raise RequestError("`device` mps: Apple's MPS backend is not available here; use `device` cpu (or auto).",
                           field="device", value=name, expected="auto or cpu")
    if name.startswith("cuda:") and name[5:].isdigit():  # one GPU of several (torchrun's LOCAL_RANK)
        if not torch.cuda.is_available() or int(name[5:]) >= torch.cuda.device_count():
            raise RequestError(f"`device` {name}: no such CUDA device ({torch.cuda.device_count()} visible).",
                               field="device", value=name, expected="a visible device")
        return name
    if name not in ("cuda", "mps", "cpu"):
        raise RequestError(f"Unknown device '{name}'. Choose from: auto, cuda, mps, cpu.")
    return name


def resolve_dtype(preset: Preset, name: str | None = None) -> torch.dtype:
    name = preset.dtype if name in (None, "auto") else name
    if name not in DTYPES:
        raise RequestError(f"Unknown dtype '{name}'. Choose from: auto, {', '.join(DTYPES)}.")
    return DTYPES[name]


def load_pipeline(preset: Preset, device: str = "cpu", dtype: torch.dtype | None = None,
                  offload: bool = False) -> Any:
    """The preset's diffusers pipeline via `from_pretrained`, with its scheduler overrides and VAE
    settings applied, on `device` (or with model CPU offload)."""
    import diffusers

    check_weights(preset)
    dtype = dtype or DTYPES[preset.dtype]
    pipeline_cls = getattr(diffusers, preset.pipeline, None)
    if pipeline_cls is None:
        raise PresetError(f"diffusers {diffusers.__version__} has no pipeline class '{preset.pipeline}' "
                          f"(preset '{preset.name}'); upgrade diffusers or fix the preset.")
    torch_dtype: Any = dtype
    if preset.vae_dtype is not None and DTYPES[preset.vae_dtype] != dtype:
        torch_dtype = {"default": dtype, "vae": DTYPES[preset.vae_dtype]}
    if preset.source_kind == "tiny":
        from ..models.tiny import tiny_pipeline_dir

        where, local_only = str(tiny_pipeline_dir(preset.source.split(":", 1)[1])), True
    elif preset.source_kind == "hub":  # from the local cache only: spectrum never starts a download
        where, local_only = preset.source, True
    else:
        where, local_only = str(preset.local_dir()), True
    try:
        pipe = pipeline_cls.from_pretrained(where, torch_dtype=torch_dtype, local_files_only=local_only)
    except OSError as exc:  # incomplete download, wrong folder
        raise WeightsMissing(
            f"Could not load '{preset.name}' from {where}: {str(exc).splitlines()[0]} "
            + (f"Complete the download with `hf download {preset.source}`, or use a local folder as `model_path`."
               if preset.source_kind == "hub" else "Check that `model_path` is a complete diffusers folder."),
            field="model_path" if preset.source_kind == "path" else "model", value=where
        ) from None
    if preset.scheduler:
        overrides = dict(preset.scheduler)
        scheduler_cls = getattr(diffusers, overrides.pop("class"), None)
        if scheduler_cls is None:
            raise PresetError(f"preset '{preset.name}': diffusers has no scheduler '{preset.scheduler['class']}'.")
        pipe.scheduler = scheduler_cls.from_config(pipe.scheduler.config, **overrides)
    if preset.vae_tiling and hasattr(pipe, "vae") and hasattr(pipe.vae, "enable_tiling"):
        pipe.vae.enable_tiling()
    if offload:
        pipe.enable_model_cpu_offload(device=device)
    else:
        pipe.to(device)
    pipe.set_progress_bar_config(disable=True)  # the CLI draws its own
    return pipe


# --------------------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------------------


class NonFiniteOutput(RuntimeError):
    """The model produced NaN or infinite values, so there is no picture to keep.

    `what` is "latents" (found after denoising step `step`, 0-based, of `num_steps`) or "image" /
    "frames" (the decoded output; `step` is None). Common causes: a guidance scale so large that the
    arithmetic overflows, a dtype too narrow for the model (float16), corrupted weights."""

    def __init__(self, model: str, what: str, step: int | None = None, num_steps: int | None = None):
        where = f" after step {step + 1} of {num_steps}" if step is not None else ""
        super().__init__(f"{model} produced NaN or infinite values in its {what}{where}; nothing was kept. "
                         "Lower the guidance, use a wider dtype (float32) or check the weights.")
        self.model, self.what, self.step, self.num_steps = model, what, step, num_steps


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the system has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run the block with `torch.set_num_threads(threads)` and restore the previous count after it
    (None or 0: leave it). Torch's intra-op thread count is process-wide: other torch work running at
    the same time in this process shares the setting while the block runs."""
    before = torch.get_num_threads()
    if not threads or threads == before:
        yield
        return
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _images_to_pil(images: Any) -> Any:
    """diffusers' `output_type="np"` images (B, H, W, C floats in [0, 1]) as PIL images, converted the
    way its `output_type="pil"` does, so the pixels are the same."""
    from PIL import Image

    pixels = (np.asarray(images) * 255).round().astype("uint8")
    return [Image.fromarray(p.squeeze(-1), mode="L") if p.shape[-1] == 1 else Image.fromarray(p) for p in pixels]


@dataclass(frozen=True)
class StepInfo:
    """Reported after each denoising step: did any transformer call of this step run the network?"""

    step: int
    num_steps: int
    real: bool


@dataclass(frozen=True)
class Result:
    job: Job
    model: str
    media: Any                       # PIL.Image for images, uint8-able (F, H, W, 3) array for videos
    seconds: float                   # the whole pipeline call (text encoding, denoising, decoding)
    transformer_seconds: float       # inside the transformer(s), real and forecast calls
    transformer_calls: int
    real_steps: list[int]
    forecast_steps: list[int]
    estimated_full_seconds: float | None = None  # what `seconds` would have been with every pass real

    @property
    def nfe(self) -> int:
        """Real forward passes: steps on which the network ran."""
        return len(self.real_steps)

    @property
    def estimated_speedup(self) -> float | None:
        if self.estimated_full_seconds is None or self.seconds <= 0:
            return None
        return self.estimated_full_seconds / self.seconds


@dataclass(frozen=True)
class Comparison:
    baseline: Result
    accelerated: Result
    psnr: float
    ssim: float
    lpips: float | None

    @property
    def speedup(self) -> float:
        return self.baseline.seconds / self.accelerated.seconds


def device_synchronizer(device: str) -> Callable[[], None]:
    """Waits for the device's queued work, so a timer read afterwards covers it (no-op on the CPU)."""
    if device.startswith("cuda"):
        return torch.cuda.synchronize
    if device.startswith("mps"):
        return torch.mps.synchronize
    return lambda: None


class _TransformerTimer:
    """Wall time and call count of the pipeline's transformer(s), via forward pre/post hooks. Used for
    baseline and accelerated runs alike so the two are timed the same way."""

    def __init__(self, modules: list[torch.nn.Module], device: str):
        self.seconds, self.calls, self._start = 0.0, 0, 0.0
        self._sync = device_synchronizer(device)
        self._handles = []
        for m in modules:
            self._handles.append(m.register_forward_pre_hook(self._pre))
            self._handles.append(m.register_forward_hook(self._post))

    def _pre(self, *_: Any) -> None:
        self._sync()
        self._start = time.perf_counter()

    def _post(self, *_: Any) -> None:
        self._sync()
        self.seconds += time.perf_counter() - self._start
        self.calls += 1

    def remove(self) -> None:
        for h in self._handles:
            h.remove()


class Runner:
    """Loads a preset's pipeline once (lazily) and runs jobs on it.

    `threads`: CPU threads for torch during this runner's pipeline calls, on the CPU only. None (the
    default) uses the preset's `cpu_threads` (the small embedded and tiny presets set 1, many times
    faster on a shared or busy CPU than torch's default of one per core), or torch's own setting if the
    preset has none; 0 leaves torch's setting alone. It is set with `torch.set_num_threads` for each
    call and restored afterwards (see `torch_threads`): the runner never changes it for the rest of the
    process. The CLI, which owns its process, also sets it once for the whole command.
    """

    def __init__(self, preset: Preset, device: str = "auto", dtype: str | None = None, offload: bool = False,
                 threads: int | None = None):
        self.preset = preset
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(preset, dtype)
        if offload and self.device == "cpu":
            raise RequestError("`offload` moves weights between CPU and an accelerator; it needs `device` cuda or mps.",
                               field="offload", value=offload, expected="a cuda or mps device")
        self.offload = offload
        cpus = available_cpus()
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)
                                    or not 0 <= threads <= cpus):
            raise RequestError(f"`threads` must be a whole number from 1 to {cpus} (the CPUs this process may use), "
                               f"or 0 to leave torch's setting alone; got {threads!r}.", field="threads", value=threads,
                               expected=f"0 to {cpus}")
        self.threads = (preset.cpu_threads if threads is None else threads) if self.device == "cpu" else 0
        if self.threads:
            self.threads = min(self.threads, cpus)
        self._pipe = None

    @property
    def pipe(self) -> Any:
        if self._pipe is None:
            self._pipe = load_pipeline(self.preset, self.device, self.dtype, self.offload)
        return self._pipe

    def _denoisers(self) -> list[torch.nn.Module]:
        return [getattr(self.pipe, name) for name in expert_names(self.pipe)]

    def _sync(self) -> None:
        device_synchronizer(self.device)()

    def call_kwargs(self, job: Job, generator: torch.Generator, steps: int | None = None) -> dict[str, Any]:
        kwargs = dict(self.preset.call)
        kwargs.update(prompt=job.prompt, num_inference_steps=steps or job.steps, height=job.height,
                      width=job.width, generator=generator)
        if job.guidance is not None:
            kwargs[self.preset.guidance_kwarg] = job.guidance
        if self.preset.is_video:
            kwargs["num_frames"] = job.frames
        kwargs["output_type"] = "np"  # images become PIL in generate(), after the finiteness check
        return kwargs

    def warmup(self, job: Job) -> None:
        """One untimed 1-step call so one-time costs (allocations, kernel selection) do not land
        on whichever timed run happens to go first."""
        with torch_threads(self.threads):
            self.pipe(**self.call_kwargs(job, torch.Generator("cpu").manual_seed(job.seed), steps=1))

    def generate(self, job: Job, on_step: Callable[[StepInfo], None] | None = None) -> Result:
        """Run `job`; `on_step` is called after each denoising step."""
        from ..hooks.spectrum import apply_spectrum, nfe_bounds

        pipe = self.pipe
        if job.spectrum is not None and job.spectrum.nfe is not None:
            # Exact bounds need the pipeline (Wan2.2's two experts each restart the warm-up).
            lo, hi = nfe_bounds(pipe, job.steps, job.spectrum.warmup)
            if not lo <= job.spectrum.nfe <= hi:
                raise RequestError(f"`nfe` {job.spectrum.nfe} is not attainable for {self.preset.name} with "
                                   f"{job.steps} steps and warmup {job.spectrum.warmup}: choose {lo} to {hi}.",
                                   field="nfe", value=job.spectrum.nfe, expected=f"{lo} to {hi}")
        handle = apply_spectrum(pipe, job.spectrum) if job.spectrum is not None else None
        timer = _TransformerTimer(self._denoisers(), self.device)
        step_real: list[bool] = []
        pending: list[bool] = []  # real/forecast of the transformer calls of the current step
        if handle is not None:
            handle.subscribe(lambda event: pending.append(bool(event.real)))

        def on_step_end(_pipe: Any, i: int, _t: Any, callback_kwargs: dict) -> dict:
            latents = callback_kwargs.get("latents")  # in every pipeline's default tensor inputs
            if isinstance(latents, torch.Tensor) and not bool(torch.isfinite(latents).all()):
                raise NonFiniteOutput(self.preset.name, "latents", step=i, num_steps=job.steps)
            real = any(pending) if handle is not None else True
            pending.clear()
            step_real.append(real)
            if on_step is not None:
                on_step(StepInfo(step=i, num_steps=job.steps, real=real))
            return callback_kwargs

        kwargs = self.call_kwargs(job, torch.Generator("cpu").manual_seed(job.seed))
        kwargs["callback_on_step_end"] = on_step_end
        try:
            self._sync()
            start = time.perf_counter()
            try:
                with torch_threads(self.threads):
                    output = pipe(**kwargs)
            except ValueError as exc:
                if timer.calls == 0:  # rejected before denoising started: the request, not the run
                    raise RequestError(str(exc).strip().splitlines()[0]) from exc
                raise
            self._sync()
            seconds = time.perf_counter() - start
            stats = handle.stats if handle is not None else None
        finally:
            timer.remove()
            if handle is not None:
                handle.remove()

        media = output.frames[0] if self.preset.is_video else output.images[0]
        if isinstance(media, (np.ndarray, torch.Tensor)):  # "np" as asked (a custom pipeline may differ)
            if not bool(np.isfinite(np.asarray(media, dtype=np.float32)).all()):
                raise NonFiniteOutput(self.preset.name, "frames" if self.preset.is_video else "image")
            if not self.preset.is_video:
                media = _images_to_pil(np.asarray(media)[None])[0]
        real_steps = [i for i, r in enumerate(step_real) if r]
        forecast_steps = [i for i, r in enumerate(step_real) if not r]
        estimated = None
        if stats is not None:
            # Time the forecast steps saved, on top of what this run took.
            estimated = seconds + max(0.0, stats.estimated_full_seconds - stats.denoise_seconds)
        return Result(job=job, model=self.preset.name, media=media, seconds=seconds,
                      transformer_seconds=timer.seconds, transformer_calls=timer.calls,
                      real_steps=real_steps, forecast_steps=forecast_steps, estimated_full_seconds=estimated)

    def compare(self, job: Job, on_step: Callable[[str, StepInfo], None] | None = None,
                warmup: bool = True) -> Comparison:
        """The full-step baseline and `job`, same seed and settings; speedup and fidelity between them."""
        from .metrics import fidelity

        if warmup:
            self.warmup(job)
        bind = (lambda label: (lambda info: on_step(label, info))) if on_step else (lambda label: None)
        baseline = self.generate(job.baseline(), bind("baseline"))
        accelerated = self.generate(job, bind(job.method))
        fid = fidelity(accelerated.media, baseline.media)
        return Comparison(baseline=baseline, accelerated=accelerated, psnr=fid.psnr, ssim=fid.ssim, lpips=fid.lpips)
