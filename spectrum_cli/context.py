"""Which model a command runs and how it is loaded: the --model/--preset-file/--model-path choice, the
device, dtype, offload, LoRA, compile, forecaster-state and CPU thread options (as one `choice` keyword, see
options.with_options), and loading the pipeline with the libraries' own progress bars and notices silenced."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from spectrum_core.app.presets import DEFAULT_MODEL, Preset, load_preset, load_preset_file, preset_for_model_dir

from .errors import UsageError, debug_enabled
from .options import MODEL_PANEL, Device, Dtype, OptionGroup, default_note, option
from .render import err, safe


@dataclass(frozen=True)
class ModelChoice:
    model: str | None = None
    preset_file: Path | None = None
    model_path: Path | None = None
    device: str = "auto"
    dtype: str = "auto"
    offload: bool = False
    offload_mode: str | None = None
    threads: int | None = None
    lora: tuple[str, ...] = ()
    compile: str | None = None
    forecast_state: str = "device"

    def preset(self) -> Preset:
        if self.model is not None and self.preset_file is not None:
            raise UsageError("Pass either --model or --preset-file, not both.")
        base = (load_preset_file(self.preset_file) if self.preset_file is not None
                else load_preset(self.model) if self.model is not None else None)
        if self.model_path is not None:  # a bare folder (base None) borrows its family's defaults
            return preset_for_model_dir(self.model_path, base)
        return base or load_preset(DEFAULT_MODEL)

    def runner(self, preset: Preset) -> Any:
        """A Runner for `preset` (nothing loaded yet), after checking the weights are here. On the CPU the
        runner's thread count (the preset's cpu_threads or --threads, bounded by the CPUs) is also set
        for the whole process: a command owns its process, and a small model on a shared or busy CPU
        runs many times faster on one thread than with torch's default of one per core."""
        from spectrum_core.app.request import check_weights
        from spectrum_core.app.runner import Runner

        from spectrum_core.app.runner import parse_lora

        offload = self.offload_mode or self.offload  # --offload-mode implies --offload; bare --offload is "model"
        runner = Runner(preset, device=self.device, dtype=self.dtype, offload=offload, threads=self.threads,
                        lora=[parse_lora(text) for text in self.lora], compile=self.compile,
                        forecast_state=self.forecast_state)
        check_weights(preset)
        if runner.threads:
            import torch

            torch.set_num_threads(runner.threads)
        return runner


# --offload-mode, --compile and --forecast-state are plain text: the Runner checks them (and names the choices)
# before anything loads, so the choices are defined once, in spectrum_core.app.runner.
def _choice(values: dict[str, Any]) -> ModelChoice:
    values = {k: (v.value if isinstance(v, Enum) else v) for k, v in values.items()}
    values["lora"] = tuple(values.get("lora") or ())
    return ModelChoice(**values)


MODEL_OPTIONS = OptionGroup("choice", (
    option("model", str, f"Preset name, see `spectrum presets`. {default_note(DEFAULT_MODEL)}", MODEL_PANEL, "-m"),
    option("preset_file", Path, "A preset TOML file of your own (same keys as `spectrum presets show flux`).",
           MODEL_PANEL, dir_okay=False),
    option("model_path", Path, "A local diffusers folder to load the weights from (with --model: that preset's "
           "defaults; alone: the defaults of its pipeline family, or the folder's own if spectrum made it).",
           MODEL_PANEL, file_okay=False),
    option("device", Device, "auto = cuda > mps > cpu.", MODEL_PANEL, default=Device.auto, show_default=True),
    option("dtype", Dtype, "auto = the preset's dtype.", MODEL_PANEL, default=Dtype.auto, show_default=True),
    option("offload", bool, "Model CPU offload: keep weights on the CPU, move each component to the GPU when it "
           "runs (big models on small GPUs); see --offload-mode.", MODEL_PANEL, default=False),
    option("offload_mode", str, "How --offload offloads (implies it): model (whole components), sequential "
           "(layer by layer: least memory, slowest) or group (block by block; also on --device cpu). "
           + default_note("model"), MODEL_PANEL, metavar="<model|sequential|group>"),
    option("lora", list[str], "A LoRA to load (diffusers' load_lora_weights): a .safetensors file, with an "
           "optional weight: PATH:SCALE \\[default scale: 1]. Repeat for several.", MODEL_PANEL, metavar="PATH[:SCALE]"),
    option("compile", str, "torch.compile the denoiser: regional (its repeated blocks: short compile) or full "
           "(the whole denoiser). The first generation compiles. \\[default: not compiled]", MODEL_PANEL,
           metavar="<regional|full>"),
    option("forecast_state", str, "Where the forecaster keeps its state: device (beside the model) or "
           "cpu (host memory: frees device memory, costs copies).", MODEL_PANEL, default="device",
           show_default=True, metavar="<device|cpu>"),
    option("threads", int, "CPU threads for torch on --device cpu, at most the CPUs this process may use; 0 leaves "
           "torch's own setting. " + default_note("the preset's cpu_threads, else torch's"), MODEL_PANEL, min=0),
), _choice)


ContextParallelOpt = Annotated[Optional[str], typer.Option(
    "--context-parallel", help="Split one generation's sequence over N GPUs with diffusers' context parallelism: "
    "ulysses:N or ring:N. Run under torchrun with a multiple of N processes (torchrun --nproc-per-node N -m "
    "spectrum_cli gen ...); the first rank of each group writes the files. CUDA only.", metavar="KIND:N", show_default=False, rich_help_panel=MODEL_PANEL)]


def launch(text: str | None, choice: ModelChoice, command: str) -> tuple[Any, ModelChoice]:
    """The torchrun world with `text`'s context parallelism (KIND:N), and the choice with this process's
    device; refused before any model loads when it cannot work. Without `text`: the launch's world as it is
    and the choice unchanged."""
    from spectrum_core.app import distributed

    cp = distributed.ContextParallel.parse(text) if text else None
    if cp is None:
        return distributed.World.from_env(), choice
    if not distributed.World.from_env().distributed:
        raise UsageError(f"--context-parallel {cp} needs torchrun with {cp.degree} processes: "
                         f"torchrun --nproc-per-node {cp.degree} -m spectrum_cli {command} ...")
    world = distributed.World.from_env(context=cp)  # refuses a degree that does not divide the world
    from spectrum_core.app.runner import resolve_device

    device = resolve_device(choice.device)
    if not device.startswith("cuda"):
        raise UsageError(f"context parallelism needs CUDA devices (this run's device is {device}).")
    return world, replace(choice, device=world.device(device))


def quiet_libraries() -> None:
    """diffusers/transformers progress bars and notices would drown our own output on stderr."""
    if debug_enabled():
        return
    import diffusers
    import transformers

    diffusers.utils.logging.set_verbosity_error()
    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module=r"(diffusers|transformers|torch)\b")


def load(runner: Any) -> None:
    """Load the runner's pipeline, with a status line while it loads."""
    quiet_libraries()
    with err.status(f"Loading {safe(runner.preset.name)} on {runner.device}…"):
        runner.pipe  # noqa: B018 - loads the pipeline

