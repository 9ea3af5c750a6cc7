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

import inspect
import math
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterator, Sequence

import numpy as np

import torch

from ..hooks.families import expert_names, output_samples, prompt_kwargs, variant
from .presets import Preset, PresetError
from .request import Job, RequestError, WeightsMissing, check_weights, steps_run

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


OFFLOADS = ("model", "sequential", "group")
COMPILES = ("regional", "full")


def _offload_mode(offload: Any) -> str | None:
    """`offload` as one of OFFLOADS or None: False/None is none, True is "model" (the CLI's bare --offload)."""
    if offload is None or offload is False:
        return None
    if offload is True:
        return "model"
    if offload in OFFLOADS:
        return offload
    raise RequestError(f"Unknown `offload` mode '{offload}'. Choose from: {', '.join(OFFLOADS)}.", field="offload",
                       value=offload, expected=" or ".join(OFFLOADS))


def load_pipeline(preset: Preset, device: str = "cpu", dtype: torch.dtype | None = None,
                  offload: Any = False, lora: Sequence[tuple[str, float]] = (), compile: str | None = None) -> Any:
    """The preset's diffusers pipeline via `from_pretrained`, with its scheduler overrides and VAE
    settings applied, its LoRAs loaded, on `device` (or offloaded) and compiled as asked.

    `lora`: (path, scale) pairs, each loaded with diffusers' `load_lora_weights` as adapter `lora<i>` and
    weighted with `set_adapters` (needs peft). `offload`: see `Runner`. `compile`: "regional" compiles each
    denoiser's repeated blocks (`compile_repeated_blocks`), "full" the whole denoiser (`Module.compile`);
    torch compiles lazily, on the first call."""
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
    if lora:
        _load_loras(pipe, preset, lora)
    mode = _offload_mode(offload)
    if mode == "model":
        pipe.enable_model_cpu_offload(device=device)
    elif mode == "sequential":
        pipe.enable_sequential_cpu_offload(device=device)
    elif mode == "group":  # block by block, on a side stream where the device has them
        pipe.enable_group_offload(onload_device=torch.device(device), offload_device=torch.device("cpu"),
                                  offload_type="block_level", num_blocks_per_group=1,
                                  use_stream=device.startswith("cuda"))
    else:
        pipe.to(device)
    if compile is not None:
        _compile(pipe, preset, compile)
    pipe.set_progress_bar_config(disable=True)  # the CLI draws its own
    return pipe


def _load_loras(pipe: Any, preset: Preset, lora: Sequence[tuple[str, float]]) -> None:
    if not hasattr(pipe, "load_lora_weights"):
        raise RequestError(f"{type(pipe).__name__} ('{preset.name}') does not load LoRAs in diffusers "
                           f"{__import__('diffusers').__version__}.", field="lora", value=[p for p, _ in lora],
                           expected="a pipeline with load_lora_weights")
    names = []
    for i, (path, _scale) in enumerate(lora):
        name = f"lora{i}"
        try:
            pipe.load_lora_weights(str(path), adapter_name=name)
        except (OSError, ValueError, KeyError) as exc:  # not a LoRA file, or one for another model
            raise RequestError(f"Could not load the LoRA {path} into '{preset.name}': "
                               f"{str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}",
                               field="lora", value=str(path), expected=f"a LoRA for {preset.pipeline}") from None
        names.append(name)
    pipe.set_adapters(names, adapter_weights=[float(scale) for _, scale in lora])


def _compile(pipe: Any, preset: Preset, how: str) -> None:
    for name in expert_names(pipe):
        module = getattr(pipe, name)
        if how == "full":
            module.compile()
        elif getattr(module, "_repeated_blocks", None):
            module.compile_repeated_blocks()
        else:
            raise RequestError(f"{type(module).__name__} ('{preset.name}') declares no repeated blocks for regional "
                               "compilation; use `compile` full.", field="compile", value=how, expected="full")


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


def _read_image(path: str, mode: str) -> Any:
    """An input image (checked by build_job) as the PIL image a pipeline takes, in `mode` ("RGB", mask "L")."""
    from PIL import Image

    with Image.open(path) as img:
        return img.convert(mode)


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
    batch_size: int = 1              # samples made by the call that made this one (they share its seconds)
    peak_memory_bytes: int | None = None        # the call's peak allocated device memory (CUDA only)
    forecaster_state_bytes: int | None = None   # the forecasters' peak state during the call (all branches)
    forecaster_state_device: str | None = None  # where that state lived

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


class _PeakMemory:
    """The peak allocated device memory over a span, where the device counts it (CUDA); None elsewhere."""

    def __init__(self, device: str):
        self.cuda = device.startswith("cuda") and torch.cuda.is_available()
        self.device = device

    def start(self) -> None:
        if self.cuda:
            torch.cuda.reset_peak_memory_stats(self.device)

    def read(self) -> int | None:
        return int(torch.cuda.max_memory_allocated(self.device)) if self.cuda else None


LORA_FILE = "pytorch_lora_weights.safetensors"  # what load_lora_weights reads from a folder


def parse_lora(text: str) -> tuple[str, float]:
    """A LoRA as written on a command line or in a batch line: "PATH" (scale 1) or "PATH:SCALE". The scale is
    only split off when the text after the last colon is a number, so a path with colons still reads."""
    path, sep, tail = str(text).rpartition(":")
    if sep and path:
        try:
            scale = float(tail)
        except ValueError:
            return str(text), 1.0
        if not math.isfinite(scale):
            raise RequestError(f"`lora` scale for {path} must be a finite number, got {tail!r}.", field="lora",
                               value=tail, expected="a finite number")
        return path, scale
    return str(text), 1.0


def check_loras(lora: Sequence[tuple[str, float]] | None) -> tuple[tuple[str, float], ...]:
    """(path, scale) pairs checked before any model loads: the path exists, the scale is a finite number."""
    out = []
    for item in lora or ():
        try:
            path, scale = item
        except (TypeError, ValueError):
            raise RequestError(f"`lora` entries are (path, scale) pairs, got {item!r}.", field="lora", value=item,
                               expected="(path, scale)") from None
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale):
            raise RequestError(f"`lora` scale for {path} must be a finite number, got {scale!r}.", field="lora",
                               value=scale, expected="a finite number")
        if not os.path.exists(path):
            raise RequestError(f"`lora` {path}: no such file or folder. Give a .safetensors LoRA file or the folder "
                               "holding pytorch_lora_weights.safetensors.", field="lora", value=str(path),
                               expected="an existing LoRA file or folder")
        if os.path.isdir(path) and not os.path.isfile(os.path.join(path, LORA_FILE)):
            raise RequestError(f"`lora` {path}: a folder without {LORA_FILE}. Give the .safetensors LoRA file itself.",
                               field="lora", value=str(path), expected=f"a folder holding {LORA_FILE}")
        if os.path.isfile(path) and not str(path).lower().endswith(".safetensors"):
            raise RequestError(f"`lora` {path}: not a .safetensors file. Give a LoRA saved as .safetensors "
                               "(diffusers' save_lora_weights writes one).", field="lora", value=str(path),
                               expected="a .safetensors file")
        out.append((str(path), float(scale)))
    return tuple(out)


def batch_key(job: Job) -> Job:
    """What must be equal for jobs to share one pipeline call: everything but the prompt and the seed."""
    return replace(job, prompt="", seed=0)


def group_jobs(jobs: Sequence[Job], batch_size: int) -> list[list[int]]:
    """Indices of `jobs` in groups of at most `batch_size` compatible jobs (same `batch_key`), each group in
    the jobs' order and the groups ordered by their first job; `batch_size` 1 keeps every job alone."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise RequestError(f"`batch_size` must be a whole number >= 1, got {batch_size!r}.", field="batch_size",
                           value=batch_size, expected="a whole number >= 1")
    open_groups: dict[Any, list[int]] = {}
    groups: list[list[int]] = []
    for i, job in enumerate(jobs):
        key = batch_key(job)
        group = open_groups.get(key)
        if group is None or len(group) >= batch_size:
            group = []
            groups.append(group)
            open_groups[key] = group
        group.append(i)
    return groups


class Runner:
    """Loads a preset's pipeline once (lazily) and runs jobs on it.

    What users stack on a pipeline (all applied once, at load):

    - `lora`: (path, scale) pairs loaded with diffusers' `load_lora_weights` (peft), weighted by `set_adapters`;
    - `compile`: None, "regional" (`compile_repeated_blocks` on each denoiser: short compile, the usual
      choice) or "full" (the whole denoiser); Spectrum's hooks run outside the compiled graphs, so a run
      compiles a block's two variants (computed, skipped) once and nothing per step;
    - `offload`: False, "model" (or True: `enable_model_cpu_offload`), "sequential"
      (`enable_sequential_cpu_offload`), "group" (`enable_group_offload`, block by block; also on the CPU);
    - `forecast_state`: "device" keeps the forecasters' state beside the head, "cpu" in host memory.

    `generate_batch` runs several compatible jobs as one pipeline call (`group_jobs` forms the groups).

    `threads`: CPU threads for torch during this runner's pipeline calls, on the CPU only. None (the
    default) uses the preset's `cpu_threads` (the small embedded and tiny presets set 1, many times
    faster on a shared or busy CPU than torch's default of one per core), or torch's own setting if the
    preset has none; 0 leaves torch's setting alone. It is set with `torch.set_num_threads` for each
    call and restored afterwards (see `torch_threads`): the runner never changes it for the rest of the
    process. The CLI, which owns its process, also sets it once for the whole command.
    """

    def __init__(self, preset: Preset, device: str = "auto", dtype: str | None = None, offload: Any = False,
                 threads: int | None = None, lora: Sequence[tuple[str, float]] = (), compile: str | None = None,
                 forecast_state: str = "device"):
        from ..hooks.spectrum import FORECAST_STATES

        self.preset = preset
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(preset, dtype)
        mode = _offload_mode(offload)
        if mode in ("model", "sequential") and self.device == "cpu":
            raise RequestError("`offload` moves weights between CPU and an accelerator; it needs `device` cuda or mps.",
                               field="offload", value=offload, expected="a cuda or mps device")
        self.offload = mode
        self.lora = check_loras(lora)
        self._active_lora = self.lora  # what the loaded pipeline carries
        if compile is not None and compile not in COMPILES:
            raise RequestError(f"Unknown `compile` '{compile}'. Choose from: {', '.join(COMPILES)}.", field="compile",
                               value=compile, expected=" or ".join(COMPILES))
        self.compile = compile
        if forecast_state not in FORECAST_STATES:
            raise RequestError(f"Unknown `forecast_state` '{forecast_state}'. Choose from: {', '.join(FORECAST_STATES)}.",
                               field="forecast_state", value=forecast_state, expected=" or ".join(FORECAST_STATES))
        self.forecast_state = forecast_state
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
            self._pipe = load_pipeline(self.preset, self.device, self.dtype, self.offload, self.lora, self.compile)
        return self._pipe

    def _use_loras(self, lora: tuple[tuple[str, float], ...]) -> None:
        """Make the pipeline carry exactly `lora` (a batch line's own set): the current set is taken off with
        diffusers' `unload_lora_weights` and the new one loaded (`load_lora_weights`, `set_adapters`)."""
        lora = tuple(lora)
        if lora == self._active_lora:
            return
        pipe = self.pipe
        if self._active_lora:
            pipe.unload_lora_weights()
        self._active_lora = ()
        if lora:
            _load_loras(pipe, self.preset, lora)
        self._active_lora = lora

    def _denoisers(self) -> list[torch.nn.Module]:
        return [getattr(self.pipe, name) for name in expert_names(self.pipe)]

    def _sync(self) -> None:
        device_synchronizer(self.device)()

    def call_kwargs(self, job: Job, generator: torch.Generator | list[torch.Generator],
                    steps: int | None = None) -> dict[str, Any]:
        v = variant(self.preset.family)[1]
        kwargs = dict(self.preset.call)
        kwargs.update(self.prompt_kwargs(job.prompt), num_inference_steps=steps or job.steps, generator=generator)
        if v.sized:  # DiT's pipeline makes its transformer's size only
            kwargs.update(height=job.height, width=job.width)
        if job.guidance is not None:
            kwargs[self.preset.guidance_kwarg] = job.guidance
        if self.preset.is_video:
            kwargs[v.frames_argument] = job.frames
        if job.image is not None:  # under the call argument each input fills (Wan VACE: reference_images)
            kwargs[v.arguments["image"]] = _read_image(job.image, "RGB")
        if job.mask is not None:
            kwargs[v.arguments["mask"]] = _read_image(job.mask, "L")
        if job.strength is not None:
            kwargs["strength"] = job.strength
        kwargs["output_type"] = "np"  # images become PIL in generate(), after the finiteness check
        return kwargs

    def prompt_kwargs(self, prompt: str | list[str]) -> dict[str, Any]:
        """What the prompt (or a batch's prompts) becomes in the call: ``prompt``, or a class-conditional
        pipeline's class ids (DiT), an unknown label refused as a RequestError of one line."""
        v = variant(self.preset.family)[1]
        try:
            return prompt_kwargs(v, prompt, self.pipe.labels if v.prompt_argument == "class_labels" else None)
        except ValueError as exc:
            raise RequestError(str(exc), field="prompt", value=prompt) from None

    def warmup(self, job: Job) -> None:
        """One untimed 1-step call so one-time costs (allocations, kernel selection) do not land
        on whichever timed run happens to go first."""
        kwargs = self.call_kwargs(job, torch.Generator("cpu").manual_seed(job.seed), steps=1)
        if job.strength is not None:  # a strength below 1 would run no step of one
            kwargs["strength"] = 1.0
        with torch_threads(self.threads):
            self.pipe(**kwargs)

    def generate(self, job: Job, on_step: Callable[[StepInfo], None] | None = None) -> Result:
        """Run `job`; `on_step` is called after each denoising step."""
        return self.generate_batch([job], on_step)[0]

    def generate_batch(self, jobs: Sequence[Job], on_step: Callable[[StepInfo], None] | None = None) -> list[Result]:
        """Run compatible `jobs` (see `batch_key`: they differ at most in prompt and seed) as one pipeline
        call, a batch of len(jobs); one Result per job, in order. Each sample gets the noise of its own seed
        and is forecast from its own features, so it is what `generate` makes of that job alone, up to the
        float rounding of batched kernels. A single job runs exactly as `generate` does."""
        from ..hooks.spectrum import apply_spectrum, nfe_bounds

        jobs = list(jobs)
        if not jobs:
            return []
        if len(jobs) > 1 and not variant(self.preset.family)[1].batches:  # one sample per call (Cosmos 3)
            return [result for one in jobs for result in self.generate_batch([one], on_step)]
        job = jobs[0]
        if any(batch_key(other) != batch_key(job) for other in jobs[1:]):
            raise ValueError("generate_batch: the jobs differ in more than prompt and seed; group them with group_jobs")
        pipe = self.pipe
        self._use_loras(self.lora if job.lora is None else job.lora)
        run_steps = steps_run(self.preset, job)  # strength < 1 runs the last `run_steps` steps only
        if job.spectrum is not None and job.spectrum.nfe is not None and job.spectrum.real_steps is None:
            # Exact bounds need the pipeline (Wan2.2's two experts each restart the warm-up).
            lo, hi = nfe_bounds(pipe, run_steps, job.spectrum.warmup)
            if not lo <= job.spectrum.nfe <= hi:
                raise RequestError(f"`nfe` {job.spectrum.nfe} is not attainable for {self.preset.name} with "
                                   f"{run_steps} steps run and warmup {job.spectrum.warmup}: choose {lo} to {hi}.",
                                   field="nfe", value=job.spectrum.nfe, expected=f"{lo} to {hi}")
        handle = (apply_spectrum(pipe, job.spectrum, forecast_state=self.forecast_state)
                  if job.spectrum is not None else None)
        timer = _TransformerTimer(self._denoisers(), self.device)
        step_real: list[bool] = []
        pending: list[bool] = []  # real/forecast of the transformer calls of the current step
        by_step: dict[int, bool] = {}  # a pipeline without a step callback: each step's calls, from the hooks
        if handle is not None:
            handle.subscribe(lambda event: pending.append(bool(event.real)))
            handle.subscribe(lambda event: by_step.update({event.step: by_step.get(event.step, False) or event.real}))
        takes_callback = "callback_on_step_end" in inspect.signature(type(pipe).__call__).parameters

        def on_step_end(_pipe: Any, i: int, _t: Any, callback_kwargs: dict) -> dict:
            latents = callback_kwargs.get("latents")  # in every pipeline's default tensor inputs
            if isinstance(latents, torch.Tensor) and not bool(torch.isfinite(latents).all()):
                raise NonFiniteOutput(self.preset.name, "latents", step=i, num_steps=run_steps)
            real = any(pending) if handle is not None else True
            pending.clear()
            step_real.append(real)
            if on_step is not None:
                on_step(StepInfo(step=i, num_steps=run_steps, real=real))
            return callback_kwargs

        if len(jobs) == 1:
            kwargs = self.call_kwargs(job, torch.Generator("cpu").manual_seed(job.seed))
        else:  # one generator per sample: sample i gets the noise a call of job i alone would
            kwargs = self.call_kwargs(job, [torch.Generator("cpu").manual_seed(j.seed) for j in jobs])
            kwargs.update(self.prompt_kwargs([j.prompt for j in jobs]))
        if takes_callback:  # HunyuanVideo-1.5's pipeline takes none: its steps are told after the call
            kwargs["callback_on_step_end"] = on_step_end
        peak = _PeakMemory(self.device)
        try:
            self._sync()
            peak.start()
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
            if not takes_callback:
                for i in range(job.steps):
                    pending[:] = [by_step.get(i, True)] if handle is not None else []
                    on_step_end(pipe, i, None, {})
            peak_bytes = peak.read()
            stats = handle.stats if handle is not None else None
        finally:
            timer.remove()
            if handle is not None:
                handle.remove()

        samples = output_samples(output)
        media_list = []
        for i in range(len(jobs)):
            media = samples[i]
            if isinstance(media, (np.ndarray, torch.Tensor)):  # "np" as asked (a custom pipeline may differ)
                if not bool(np.isfinite(np.asarray(media, dtype=np.float32)).all()):
                    raise NonFiniteOutput(self.preset.name, "frames" if self.preset.is_video else "image")
                if not self.preset.is_video:
                    media = _images_to_pil(np.asarray(media)[None])[0]
            media_list.append(media)
        real_steps = [i for i, r in enumerate(step_real) if r]
        forecast_steps = [i for i, r in enumerate(step_real) if not r]
        estimated = None
        if stats is not None:
            # Time the forecast steps saved, on top of what this run took.
            estimated = seconds + max(0.0, stats.estimated_full_seconds - stats.denoise_seconds)
        return [Result(job=j, model=self.preset.name, media=media, seconds=seconds,
                       transformer_seconds=timer.seconds, transformer_calls=timer.calls,
                       real_steps=list(real_steps), forecast_steps=list(forecast_steps),
                       estimated_full_seconds=estimated, batch_size=len(jobs), peak_memory_bytes=peak_bytes,
                       forecaster_state_bytes=stats.forecaster_state_bytes if stats is not None else None,
                       forecaster_state_device=stats.forecaster_state_device if stats is not None else None)
                for j, media in zip(jobs, media_list)]

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
