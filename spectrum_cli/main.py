"""`spectrum`: generate images and videos with diffusers pipelines, 3.5-5x faster with Spectrum.

A thin layer over `spectrum_core`: it parses and checks arguments, draws progress and tables on
stderr, prints `--json` records on stdout and turns errors into exit codes (see errors.py). The work
itself — presets, loading, acceleration, timing, metrics, writing files — is in `spectrum_core`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from spectrum_core.app import media
from spectrum_core.app.presets import (DEFAULT_MODEL, Preset, list_presets, load_preset, load_preset_file,
                                   preset_for_model_dir)

from . import __version__
from .options import (
    OUT_PANEL, Device, Dtype, PromptArg, ModelOpt, PresetFileOpt, ModelPathOpt, DeviceOpt, DtypeOpt,
    OffloadOpt, ThreadsOpt, StepsOpt, SeedOpt, HeightOpt, WidthOpt, FramesOpt, FpsOpt, GuidanceOpt, MethodOpt,
    NfeOpt, AlphaOpt, DegreeOpt, RidgeOpt, BlendOpt, WindowOpt, WarmupOpt, TaylorOrderOpt,
    TauHorizonOpt, ForceLastOpt, IntervalOpt, OutOpt, OverwriteOpt, JsonOpt, CompareOpt,
)
from .errors import EXIT_FAILED, UsageError, cli_errors, describe
from .render import err, preset_detail, presets_table, step_progress, summary_table

app = typer.Typer(
    name="spectrum",  # help: the root callback's docstring
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)
presets_app = typer.Typer(no_args_is_help=False)  # help: the callback's docstring
app.add_typer(presets_app, name="presets")


DEFAULT_OUT_DIR = Path("outputs")


# --- Settings shared by gen, ab and batch ------------------------------------------------------------

@dataclass(frozen=True)
class ModelChoice:
    model: str | None
    preset_file: Path | None
    model_path: Path | None
    device: str
    dtype: str
    offload: bool
    threads: int | None = None

    def preset(self) -> Preset:
        if self.model is not None and self.preset_file is not None:
            raise UsageError("Pass either --model or --preset-file, not both.")
        base = (load_preset_file(self.preset_file) if self.preset_file is not None
                else load_preset(self.model) if self.model is not None else None)
        if self.model_path is not None:  # a bare folder (base None) borrows its family's defaults
            return preset_for_model_dir(self.model_path, base)
        return base or load_preset(DEFAULT_MODEL)

    def runner(self, preset: Preset) -> Any:
        from spectrum_core.app.request import check_weights
        from spectrum_core.app.runner import Runner

        runner = Runner(preset, device=self.device, dtype=self.dtype, offload=self.offload)
        check_weights(preset)
        threads = self.threads or preset.cpu_threads
        if runner.device == "cpu" and threads:
            # Process-wide, which is right for a command: a small model on a shared or busy CPU runs many
            # times faster on one thread than with torch's default of one per core.
            import torch

            torch.set_num_threads(threads)
        return runner


@dataclass(frozen=True)
class Knobs:
    """Everything `build_job` takes besides preset and prompt; None = the preset's default."""

    seed: int
    steps: int | None = None
    height: int | None = None
    width: int | None = None
    frames: int | None = None
    fps: int | None = None
    guidance: float | None = None
    method: str | None = None
    nfe: int | None = None
    alpha: float | None = None
    degree: int | None = None
    ridge: float | None = None
    blend: float | None = None
    window: float | None = None
    warmup: int | None = None
    taylor_order: int | None = None
    tau_horizon: int | None = None
    force_last: bool | None = None
    interval: int | None = None

    def job(self, preset: Preset, prompt: str, **overrides: Any) -> Any:
        from spectrum_core.app.request import build_job

        return build_job(preset, prompt, **{**asdict(self), **overrides})


def _quiet_libraries() -> None:
    """diffusers/transformers progress bars and notices would drown our own output on stderr."""
    from .errors import debug_enabled

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


def _load(runner: Any) -> None:
    _quiet_libraries()
    with err.status(f"Loading {runner.preset.name} on {runner.device}…"):
        runner.pipe  # noqa: B018 - loads the pipeline


# --- Outputs --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Outputs:
    main: Path
    baseline: Path | None = None
    side_by_side: Path | None = None

    def paths(self) -> list[Path]:
        return [p for p in (self.main, self.baseline, self.side_by_side) if p is not None]


def _with_companions(main: Path, compare: bool) -> Outputs:
    if not compare:
        return Outputs(main)
    return Outputs(main, main.with_name(f"{main.stem}_baseline{main.suffix}"),
                   main.with_name(f"{main.stem}_ab{main.suffix}"))


def plan_outputs(preset: Preset, job: Any, out: str | None, compare: bool, overwrite: bool) -> Outputs:
    """Where this generation's files go. A default name never replaces an existing file (it gets a
    -1, -2… suffix); an explicit existing file needs --overwrite. The folder must be writable."""
    ext = preset.extension
    explicit = out is not None and not (Path(out).is_dir() or out.endswith(("/", os.sep)))
    if explicit:
        out = Path(out)
        if out.suffix.lower() != ext:
            if out.suffix:
                kind = "videos are written as MP4" if preset.is_video else "images are written as PNG"
                raise UsageError(f"--out {out}: {kind}; use a name ending in {ext}.")
            out = out.with_suffix(ext)
        outputs = _with_companions(out, compare)
        for path in outputs.paths():
            check_output_path(path, overwrite, folder=False)
    else:
        folder = Path(out) if out is not None else DEFAULT_OUT_DIR
        stem = media.default_stem(preset.name, job.prompt, job.seed, job.signature)
        n = 0
        while True:
            name = stem if n == 0 else f"{stem}-{n}"
            outputs = _with_companions(folder / f"{name}{ext}", compare)
            if overwrite or not any(p.exists() for p in outputs.paths()):
                break
            n += 1
    check_output_path(outputs.main, overwrite=True)
    return outputs


def check_output_path(path: Path, overwrite: bool, folder: bool = True) -> None:
    """UsageError unless `path` may be written: an existing file needs --overwrite, and (with `folder`)
    its folder must be writable."""
    if path.exists() and not overwrite:
        raise UsageError(f"'{path}' already exists; pass --overwrite to replace it, or choose another --out.")
    if folder:
        try:
            media.check_writable_dir(path.parent)
        except OSError as exc:
            raise UsageError(f"Output path '{path}': {exc}") from None


def _settings(preset: Preset, result: Any) -> dict[str, Any]:
    """What was generated and how: shared by the files' metadata and the --json record."""
    job = result.job
    return {
        "model": preset.name, "prompt": job.prompt, "seed": job.seed, "steps": job.steps, "method": job.method,
        "nfe": result.nfe, "real_steps": result.real_steps, "forecast_steps": result.forecast_steps,
        "height": job.height, "width": job.width, "frames": job.frames, "fps": job.fps, "guidance": job.guidance,
        "spectrum": None if job.spectrum is None else job.spectrum.to_dict(),
    }


def _save(preset: Preset, result: Any, path: Path, overwrite: bool, picture: Any = None, **extra: Any) -> Path:
    """Write `picture` (default: the result's image or video) with the run's settings as metadata."""
    meta = {**_settings(preset, result), "source": preset.source, "generator": f"spectrum {__version__}", **extra}
    picture = result.media if picture is None else picture
    if preset.is_video:
        return media.save_mp4(path, picture, result.job.fps, meta, overwrite=overwrite)
    return media.save_png(path, picture, meta, overwrite=overwrite)


def _finite(x: float | None) -> float | None:
    """JSON has no infinity: PSNR of identical outputs is reported as null."""
    return None if x is None or not math.isfinite(x) else round(x, 4)


def record(preset: Preset, result: Any, output: Path | None, comparison: Any = None,
           outputs: Outputs | None = None) -> dict[str, Any]:
    """The --json object for one generation (schema in README.md)."""
    rec = _settings(preset, result)
    rec.update(seconds=round(result.seconds, 4), transformer_seconds=round(result.transformer_seconds, 4),
               output=None if output is None else str(output))
    if comparison is None:
        rec["estimated_speedup"] = _finite(result.estimated_speedup)
    else:
        rec.update(
            baseline_seconds=round(comparison.baseline.seconds, 4),
            baseline_transformer_seconds=round(comparison.baseline.transformer_seconds, 4),
            speedup=_finite(comparison.speedup), psnr=_finite(comparison.psnr), ssim=_finite(comparison.ssim),
            lpips=_finite(comparison.lpips),
            baseline_output=str(outputs.baseline) if outputs else None,
            comparison_output=str(outputs.side_by_side) if outputs else None,
        )
    return rec


def _emit(rec: dict[str, Any]) -> None:
    typer.echo(json.dumps(rec))


# --- Commands -------------------------------------------------------------------------------------

def _generate_with_progress(runner: Any, job: Any) -> Any:
    label = job.method if job.spectrum is not None else "baseline"
    with step_progress([label], job.steps) as update:
        return runner.generate(job, on_step=lambda info: update(label, info))


def _gen(prompt: str, choice: ModelChoice, knobs: Knobs, out: str | None, overwrite: bool, as_json: bool,
         compare: bool) -> None:
    with cli_errors():
        preset = choice.preset()
        job = knobs.job(preset, prompt)
        if compare and job.spectrum is None:
            raise UsageError("--compare runs the baseline against an accelerated run; drop --method none.")
        runner = choice.runner(preset)
        outputs = plan_outputs(preset, job, out, compare, overwrite)
        _load(runner)
        if compare:
            with step_progress(["baseline", job.method], job.steps) as update:
                comparison = runner.compare(job, on_step=update)
            result = comparison.accelerated
            rec = record(preset, result, outputs.main, comparison, outputs)
            _save(preset, result, outputs.main, overwrite)
            _save(preset, comparison.baseline, outputs.baseline, overwrite)
            _save(preset, result, outputs.side_by_side, overwrite,
                  picture=media.side_by_side(comparison.baseline.media, result.media),
                  layout="left: baseline, right: accelerated",
                  comparison={k: rec[k] for k in ("speedup", "psnr", "ssim", "lpips")})
        else:
            comparison = None
            result = _generate_with_progress(runner, job)
            _save(preset, result, outputs.main, overwrite)
            rec = record(preset, result, outputs.main)
        err.print(summary_table(result, comparison))
        for path in outputs.paths():
            err.print(f"[green]wrote[/] {escape(str(path))}")
        if as_json:
            _emit(rec)


@app.command(no_args_is_help=True)
def gen(
    prompt: PromptArg,
    model: ModelOpt = None,
    preset_file: PresetFileOpt = None,
    model_path: ModelPathOpt = None,
    nfe: NfeOpt = None,
    alpha: AlphaOpt = None,
    steps: StepsOpt = None,
    seed: SeedOpt = 42,
    height: HeightOpt = None,
    width: WidthOpt = None,
    frames: FramesOpt = None,
    fps: FpsOpt = None,
    guidance: GuidanceOpt = None,
    method: MethodOpt = None,
    degree: DegreeOpt = None,
    ridge: RidgeOpt = None,
    blend: BlendOpt = None,
    window: WindowOpt = None,
    warmup: WarmupOpt = None,
    taylor_order: TaylorOrderOpt = None,
    tau_horizon: TauHorizonOpt = None,
    force_last: ForceLastOpt = None,
    interval: IntervalOpt = None,
    device: DeviceOpt = Device.auto,
    dtype: DtypeOpt = Dtype.auto,
    offload: OffloadOpt = False,
    threads: ThreadsOpt = None,
    out: OutOpt = None,
    overwrite: OverwriteOpt = False,
    as_json: JsonOpt = False,
    compare: CompareOpt = False,
) -> None:
    """Generate one image or video, accelerated with Spectrum.

    [bold]Examples[/]

      spectrum gen "a red circle on a navy background"

      spectrum gen "a fox in the snow" -m flux --nfe 14 --seed 7 -o fox.png

      spectrum gen "waves at dusk" -m wan --alpha 3.0 --offload --json

      spectrum gen "a fox" -m flux --model-path ~/models/FLUX.1-dev --compare
    """
    _gen(prompt, ModelChoice(model, preset_file, model_path, device.value, dtype.value, offload, threads),
         Knobs(seed, steps, height, width, frames, fps, guidance, method.value if method else None,
               nfe, alpha, degree, ridge, blend, window, warmup, taylor_order, tau_horizon, force_last, interval),
         out, overwrite, as_json, compare)


@app.command(no_args_is_help=True)
def ab(
    prompt: PromptArg,
    model: ModelOpt = None,
    preset_file: PresetFileOpt = None,
    model_path: ModelPathOpt = None,
    nfe: NfeOpt = None,
    alpha: AlphaOpt = None,
    steps: StepsOpt = None,
    seed: SeedOpt = 42,
    height: HeightOpt = None,
    width: WidthOpt = None,
    frames: FramesOpt = None,
    fps: FpsOpt = None,
    guidance: GuidanceOpt = None,
    method: MethodOpt = None,
    degree: DegreeOpt = None,
    ridge: RidgeOpt = None,
    blend: BlendOpt = None,
    window: WindowOpt = None,
    warmup: WarmupOpt = None,
    taylor_order: TaylorOrderOpt = None,
    tau_horizon: TauHorizonOpt = None,
    force_last: ForceLastOpt = None,
    interval: IntervalOpt = None,
    device: DeviceOpt = Device.auto,
    dtype: DtypeOpt = Dtype.auto,
    offload: OffloadOpt = False,
    threads: ThreadsOpt = None,
    out: OutOpt = None,
    overwrite: OverwriteOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """A/B: the full-step baseline against the accelerated run (same as `gen --compare`).

    Prints the measured speedup and PSNR/SSIM (LPIPS when its weights are on this machine) and writes
    both outputs plus a side-by-side (left: baseline, right: accelerated).

    [bold]Examples[/]

      spectrum ab "a red circle on a navy background" --nfe 14

      spectrum ab "a fox in the snow" -m flux --alpha 3.0 --json
    """
    _gen(prompt, ModelChoice(model, preset_file, model_path, device.value, dtype.value, offload, threads),
         Knobs(seed, steps, height, width, frames, fps, guidance, method.value if method else None,
               nfe, alpha, degree, ridge, blend, window, warmup, taylor_order, tau_horizon, force_last, interval),
         out, overwrite, as_json, compare=True)


# --- batch ----------------------------------------------------------------------------------------

BATCH_KEYS = {"prompt", "seed", "size", "height", "width", "steps", "nfe", "alpha", "frames", "fps",
              "guidance", "out"}
MANIFEST = "results.jsonl"


@dataclass(frozen=True)
class BatchItem:
    line: int
    job: Any
    out: str | None
    key: str


def _parse_size(value: Any, where: str) -> dict[str, int]:
    """"WIDTHxHEIGHT" or a single number for a square."""
    if isinstance(value, int):
        return {"width": value, "height": value}
    if isinstance(value, str) and "x" in value.lower():
        w, _, h = value.lower().partition("x")
        if w.strip().isdigit() and h.strip().isdigit():
            return {"width": int(w), "height": int(h)}
    raise UsageError(f"{where}: size must be \"WIDTHxHEIGHT\" (e.g. \"512x512\") or one number, got {value!r}.")


def read_batch(file: Path, preset: Preset, knobs: Knobs) -> list[BatchItem]:
    """Parse and check every line before anything loads. A line is a prompt, or a JSON object with
    a "prompt" and per-line overrides; blank lines and lines starting with # are skipped."""
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"Cannot read prompt file '{file}': {exc.strerror or exc}.") from None
    items = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{file}:{lineno}"
        if line.startswith("{"):
            try:
                fields_ = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UsageError(f"{where}: not valid JSON ({exc.msg}).") from None
            unknown = sorted(set(fields_) - BATCH_KEYS)
            if unknown:
                raise UsageError(f"{where}: unknown key(s) {', '.join(unknown)}. Valid: {', '.join(sorted(BATCH_KEYS))}.")
            if "size" in fields_:
                fields_.update(_parse_size(fields_.pop("size"), where))
        else:
            fields_ = {"prompt": line}
        out = fields_.pop("out", None)
        if out is not None and Path(out).suffix.lower() not in ("", preset.extension):
            raise UsageError(f"{where}: out {out!r} must end in {preset.extension}.")
        if "nfe" in fields_ and "alpha" not in fields_:
            fields_["alpha"] = None  # a per-line nfe replaces a global --alpha
        if "alpha" in fields_ and "nfe" not in fields_:
            fields_["nfe"] = None
        try:
            job = knobs.job(preset, fields_.pop("prompt", ""), **fields_)
        except (ValueError, TypeError) as exc:
            raise UsageError(f"{where}: {describe(exc)}") from None
        identity = {"model": preset.name, "source": preset.source, "job": job.to_dict(), "out": out}
        key = hashlib.sha1(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:16]
        items.append(BatchItem(lineno, job, out, key))
    if not items:
        raise UsageError(f"Prompt file '{file}' has no prompts (one per line, or JSON objects with a \"prompt\").")
    return items


def _done_keys(manifest: Path) -> set[str]:
    """Keys of the prompts a previous run finished whose output is still there."""
    done = set()
    if manifest.exists():
        for line in manifest.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a crash
            if rec.get("status") == "ok" and rec.get("output") and Path(rec["output"]).exists():
                done.add(rec.get("key"))
    return done


def _append(manifest: Path, rec: dict[str, Any]) -> None:
    with manifest.open("a", encoding="utf-8") as f:
        f.write(json.dumps(rec) + "\n")


@app.command(no_args_is_help=True)
def batch(
    file: Annotated[Path, typer.Argument(help="Prompts: one per line, or JSONL objects with overrides.",
                                         show_default=False)],
    out_dir: Annotated[Path, typer.Option("--out-dir", "-o", help="Folder for the outputs and results.jsonl.",
                                          rich_help_panel=OUT_PANEL)] = DEFAULT_OUT_DIR,
    model: ModelOpt = None,
    preset_file: PresetFileOpt = None,
    model_path: ModelPathOpt = None,
    nfe: NfeOpt = None,
    alpha: AlphaOpt = None,
    steps: StepsOpt = None,
    seed: SeedOpt = 42,
    height: HeightOpt = None,
    width: WidthOpt = None,
    frames: FramesOpt = None,
    fps: FpsOpt = None,
    guidance: GuidanceOpt = None,
    method: MethodOpt = None,
    degree: DegreeOpt = None,
    ridge: RidgeOpt = None,
    blend: BlendOpt = None,
    window: WindowOpt = None,
    warmup: WarmupOpt = None,
    taylor_order: TaylorOrderOpt = None,
    tau_horizon: TauHorizonOpt = None,
    force_last: ForceLastOpt = None,
    interval: IntervalOpt = None,
    device: DeviceOpt = Device.auto,
    dtype: DtypeOpt = Dtype.auto,
    offload: OffloadOpt = False,
    threads: ThreadsOpt = None,
    overwrite: OverwriteOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Generate every prompt of a file with one model load; resumable.

    Each line is a prompt, or a JSON object: {"prompt": ..., "seed": 7, "size": "512x512", "nfe": 10,
    "out": "name.png"} (also steps, alpha, frames, fps, guidance, height, width). Options give the
    defaults. Each finished prompt appends a line to OUT_DIR/results.jsonl; re-running skips prompts
    already done. A failed prompt is recorded and the rest continue; the exit code is 1 if any failed.

    [bold]Examples[/]

      spectrum batch prompts.txt -o renders/

      spectrum batch jobs.jsonl -m flux --nfe 14 --json > results.ndjson
    """
    with cli_errors():
        choice = ModelChoice(model, preset_file, model_path, device.value, dtype.value, offload, threads)
        preset = choice.preset()
        knobs = Knobs(seed, steps, height, width, frames, fps, guidance, method.value if method else None,
                      nfe, alpha, degree, ridge, blend, window, warmup, taylor_order, tau_horizon, force_last,
                      interval)
        items = read_batch(file, preset, knobs)
        runner = choice.runner(preset)
        try:
            media.check_writable_dir(out_dir)
        except OSError as exc:
            raise UsageError(f"--out-dir: {exc}") from None
        manifest = out_dir / MANIFEST
        done = _done_keys(manifest)
        todo = [it for it in items if it.key not in done]
        skipped = len(items) - len(todo)
        if skipped:
            err.print(f"Resuming: {skipped} of {len(items)} prompts already done (see {escape(str(manifest))}).")
        if todo:
            _load(runner)
        failed = 0
        for n, item in enumerate(todo, start=1):
            job = item.job
            err.print(f"[bold]({n}/{len(todo)})[/] line {item.line}: {escape(job.prompt)}")
            try:
                # A per-line "out" is a file (existing: only with --overwrite); otherwise a default name.
                where = str(out_dir / item.out) if item.out else f"{out_dir}{os.sep}"
                path = plan_outputs(preset, job, where, False, overwrite).main
                result = _generate_with_progress(runner, job)
                _save(preset, result, path, overwrite)
                rec = {"status": "ok", **record(preset, result, path)}
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # noqa: BLE001 - recorded, and the batch goes on
                failed += 1
                rec = {"status": "error", "error": describe(exc), "model": preset.name, "prompt": job.prompt,
                       "seed": job.seed, "output": None}
                err.print(f"[bold red]failed:[/] {escape(describe(exc))}")
            rec = {"key": item.key, "line": item.line, **rec}
            _append(manifest, rec)
            if as_json:
                _emit(rec)
        err.print(f"{len(todo) - failed} generated, {skipped} skipped (done before), {failed} failed; "
                  f"manifest: {escape(str(manifest))}")
        if failed:
            raise typer.Exit(code=EXIT_FAILED)


# --- presets --------------------------------------------------------------------------------------

def _weights_status(preset: Preset) -> str:
    from spectrum_core.app.request import WeightsMissing, check_weights

    if preset.source_kind == "tiny":
        return "built on use"
    try:
        check_weights(preset)
    except WeightsMissing:
        return "[yellow]not downloaded[/]" if preset.source_kind == "hub" else "[yellow]missing[/]"
    return "[green]cached[/]" if preset.source_kind == "hub" else "[green]local[/]"


@presets_app.callback(invoke_without_command=True)
def presets(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List the model presets (`spectrum presets show NAME` for one).

    [bold]Examples[/]

      spectrum presets

      spectrum presets --json | jq -r '.[].name'
    """
    if ctx.invoked_subcommand is not None:
        return
    with cli_errors():
        all_presets = list_presets()
        if as_json:
            typer.echo(json.dumps([p.to_dict() for p in all_presets]))
            return
        status = {p.name: _weights_status(p) for p in all_presets}
        err.print(presets_table(all_presets, status, DEFAULT_MODEL))
        err.print("Use one with [bold]spectrum gen PROMPT -m NAME[/]; bring your own with --preset-file FILE "
                  "or --model-path DIR.")


@presets_app.command("show", no_args_is_help=True)
def presets_show(
    name: Annotated[str, typer.Argument(help="A preset name, or a path to a preset .toml file.", show_default=False)],
    as_json: JsonOpt = False,
) -> None:
    """Show every setting of one preset.

    [bold]Examples[/]

      spectrum presets show wan

      spectrum presets show ./my-model.toml --json
    """
    with cli_errors():
        preset = load_preset_file(Path(name)) if name.endswith(".toml") else load_preset(name)
        if as_json:
            typer.echo(json.dumps(preset.to_dict()))
        else:
            err.print(preset_detail(preset))


def _version(value: bool) -> None:
    if value:
        typer.echo(f"spectrum {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Generate images and videos with diffusion transformers, 3.5-5x faster with Spectrum
    (training-free forecasting of the last transformer block's features).

    [bold]Examples[/]

      spectrum gen "a red circle on a navy background"

      spectrum ab "a fox in the snow" -m flux --nfe 14

      spectrum presets
    """


from .bench import bench  # noqa: E402  (`spectrum bench`: spectrum_core.bench's suite)
from .grid import grid  # noqa: E402  (`spectrum grid`: spectrum_core.app.grid)

app.command()(bench)
app.command(no_args_is_help=True)(grid)


def main() -> None:
    """Console-script entry point (`spectrum`)."""
    app()


if __name__ == "__main__":
    main()
