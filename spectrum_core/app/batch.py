"""Batches as a library: read and check a prompt file, plan it against its manifest, run it.

A prompt file has one prompt per line, or one JSON object per line with a "prompt" and per-line
overrides (`LINE_KEYS`); blank lines and lines starting with # are skipped. `read_batch` checks every
line — JSON, keys, types, the request itself (`build_job`), where its `out` may go, duplicate outputs —
before any model loads, and raises `BatchError` naming the file and line.

Each finished line appends a record to the manifest (`results.jsonl` in the output folder), committed
together with its output file (`media.OutputSet.commit(then=...)`): the manifest records exactly what
exists. Its `output` paths are relative to the output folder, so a resume works from any working
directory (older manifests' absolute or cwd-relative paths are still read). `plan_batch` skips the
lines already done; `run_batch` runs the rest with one loaded pipeline.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePath
from typing import Any, Callable, Mapping

from . import media, outputs
from .presets import Preset
from .request import Job, RequestError, build_job

LINE_KEYS = frozenset({"prompt", "seed", "size", "height", "width", "steps", "nfe", "alpha", "frames", "fps",
                       "guidance", "out", "lora", "image", "mask", "strength"})
_PATHS = ("image", "mask")  # a line's input files, relative to the batch file's folder
MANIFEST = "results.jsonl"
_SCHEDULE = ("nfe", "alpha", "interval")  # one of them sets the schedule (SpectrumConfig refuses two)


class BatchError(RequestError):
    """A prompt file that cannot run as given. `file` and `line` say where (line None: the file)."""

    def __init__(self, file: Path, line: int | None, message: str, *, key: str | None = None):
        super().__init__(f"{file}:{line}: {message}" if line is not None else message)
        self.file, self.line, self.key = file, line, key


@dataclass(frozen=True)
class BatchItem:
    """One line of a prompt file, resolved: its job, its own output name (or None) and its identity."""

    line: int
    job: Job
    out: str | None
    key: str


@dataclass
class BatchPlan:
    """What a run will do: every item, the ones still to do, and where."""

    items: list[BatchItem]
    todo: list[BatchItem]
    out_dir: Path

    @property
    def manifest(self) -> Path:
        return self.out_dir / MANIFEST

    @property
    def skipped(self) -> int:
        return len(self.items) - len(self.todo)


@dataclass
class BatchSummary:
    generated: int = 0
    skipped: int = 0
    failed: int = 0
    records: list[dict[str, Any]] = field(default_factory=list)


def _parse_size(value: Any) -> dict[str, int]:
    """"WIDTHxHEIGHT" or a single whole number for a square."""
    if isinstance(value, int) and not isinstance(value, bool):
        return {"width": value, "height": value}
    if isinstance(value, str) and "x" in value.lower():
        w, _, h = value.lower().partition("x")
        if w.strip().isdigit() and h.strip().isdigit():
            return {"width": int(w), "height": int(h)}
    raise ValueError(f"size must be \"WIDTHxHEIGHT\" (e.g. \"512x512\") or one whole number, got {value!r}")


def check_out(out: Any, preset: Preset, allow_outside: bool = False) -> str:
    """A line's `out`: a file name (or relative path) inside the output folder, ending in the
    preset's extension (added when it has none). With `allow_outside`, absolute paths and ".." too."""
    if not isinstance(out, str) or not out.strip():
        raise ValueError(f"out must be a non-empty file name (a string), got {out!r}")
    if any(ord(c) < 32 or ord(c) == 127 for c in out):
        raise ValueError(f"out {out!r} contains a control character (a newline, NUL, ...)")
    path = PurePath(out)
    if not allow_outside and (path.is_absolute() or ".." in path.parts or path.drive):
        raise ValueError(f"out {out!r} is outside the output folder (absolute, or with \"..\"); use a name inside "
                         "it, or pass `allow_outside`")
    suffix = path.suffix.lower()
    if suffix and suffix != preset.extension:
        raise ValueError(f"out {out!r} must end in {preset.extension}")
    if out.endswith(("/", os.sep)):
        raise ValueError(f"out {out!r} is a folder; name a file")
    return out if suffix else f"{out}{preset.extension}"


def _without_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    return value


def line_key(preset: Preset, job: Job, out: str | None) -> str:
    """A line's identity in the manifest: the model and the fully resolved job (and its `out`). Unset
    (None) settings are left out, so a setting added in a later version with a None default does not
    change the keys of what an older version finished (its resume still skips them)."""
    job_dict = job.to_dict()
    if job_dict.get("profile") == "reference":  # as before profiles existed: older manifests keep their keys
        del job_dict["profile"]
    identity = _without_none({"model": preset.name, "source": preset.source, "job": job_dict, "out": out})
    return hashlib.sha1(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _decode(file: Path) -> str:
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise BatchError(file, None, f"Cannot read prompt file '{file}': {exc.strerror or exc}.") from None
    try:
        return data.decode("utf-8-sig")  # a leading byte-order mark is dropped
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise BatchError(file, line, f"not UTF-8 text (byte 0x{data[exc.start]:02x}); save the file as UTF-8.") from None


def _line_loras(file: Path, lineno: int, value: Any) -> tuple[tuple[str, float], ...]:
    """A line's "lora": a list of "PATH" or "PATH:SCALE" texts (as --lora takes them; [] for none), checked
    as the runner checks --lora: files that exist, .safetensors, finite scales."""
    from .runner import check_loras, parse_lora

    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BatchError(file, lineno, f'"lora" must be a list of "PATH" or "PATH:SCALE" texts, got {value!r}.',
                         key="lora")
    try:
        return check_loras([parse_lora(text) for text in value])
    except RequestError as exc:
        raise BatchError(file, lineno, str(exc).replace("`lora`", '"lora"'), key="lora") from None


def read_batch(file: Path, preset: Preset, knobs: Mapping[str, Any], allow_outside: bool = False) -> list[BatchItem]:
    """Parse and check every line of `file` against `preset`, with `knobs` (build_job's settings) as
    the defaults a line overrides. Raises BatchError (file and line in the message)."""
    file = Path(file)
    items: list[BatchItem] = []
    outs: dict[str, int] = {}
    for lineno, raw in enumerate(_decode(file).splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("{"):
            try:
                fields_ = json.loads(line)
            except json.JSONDecodeError as exc:
                raise BatchError(file, lineno, f"not valid JSON ({exc.msg}).") from None
            if not isinstance(fields_, dict):
                raise BatchError(file, lineno, "a JSON line must be an object with a \"prompt\".")
            unknown = sorted(set(fields_) - LINE_KEYS)
            if unknown:
                raise BatchError(file, lineno, f"unknown key(s) {', '.join(unknown)}. "
                                 f"Valid: {', '.join(sorted(LINE_KEYS))}.", key=unknown[0])
            if "prompt" not in fields_:
                raise BatchError(file, lineno, "no \"prompt\".", key="prompt")
            if not isinstance(fields_["prompt"], str):
                raise BatchError(file, lineno, f"prompt must be a string, got {fields_['prompt']!r}.", key="prompt")
            if "size" in fields_:
                try:
                    fields_.update(_parse_size(fields_.pop("size")))
                except ValueError as exc:
                    raise BatchError(file, lineno, f"{exc}.", key="size") from None
        else:
            fields_ = {"prompt": line}
        out = fields_.pop("out", None)
        if out is not None:
            try:
                out = check_out(out, preset, allow_outside)
            except ValueError as exc:
                raise BatchError(file, lineno, f"{exc}.", key="out") from None
            norm = os.path.normcase(os.path.normpath(out))
            if norm in outs:
                raise BatchError(file, lineno, f"out {out!r} is also line {outs[norm]}'s output.", key="out")
            outs[norm] = lineno
        lora = _line_loras(file, lineno, fields_.pop("lora")) if "lora" in fields_ else None
        prompt = fields_.pop("prompt")
        for key in _PATHS:
            if isinstance(fields_.get(key), str) and fields_[key].strip():
                fields_[key] = str(file.parent / Path(fields_[key]).expanduser())
        line_knobs = {**knobs, **fields_}
        if any(k in fields_ for k in _SCHEDULE):  # a line's nfe or alpha replaces the defaults' schedule
            line_knobs.update({k: None for k in _SCHEDULE if k not in fields_})
        try:
            job = build_job(preset, prompt, line_knobs)
        except RequestError as exc:
            text = str(exc).rstrip(".") + "."
            for key in fields_:  # a key of this line is named as the key, not as an option
                text = text.replace(f"`{key}`", f'"{key}"')
            raise BatchError(file, lineno, text, key=exc.field) from None
        if lora is not None:
            job = replace(job, lora=lora)
        items.append(BatchItem(lineno, job, out, line_key(preset, job, out)))
    if not items:
        raise BatchError(file, None, f"Prompt file '{file}' has no prompts (one per line, or JSON objects with a "
                         "\"prompt\").")
    return items


class Manifest:
    """The manifest of an output folder, read incrementally: `done()` re-reads only what was appended
    since the last call (by this run or a concurrent one on the same folder)."""

    def __init__(self, out_dir: Path):
        self.out_dir = Path(out_dir)
        self.path = self.out_dir / MANIFEST
        self._offset = 0
        self._done: set[str] = set()

    def done(self) -> set[str]:
        """Keys of the lines finished (by any run) whose output is still there."""
        try:
            with self.path.open("rb") as f:
                f.seek(self._offset)
                data = f.read()
        except FileNotFoundError:
            return set(self._done)
        end = data.rfind(b"\n") + 1  # a line still being written is read next time
        self._offset += end
        for line in data[:end].decode("utf-8", "replace").splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a crash
            if not isinstance(rec, dict) or rec.get("status") != "ok" or not isinstance(rec.get("output"), str):
                continue
            # Folder-relative (this version), else an older manifest's absolute or cwd-relative path.
            if _exists(self.out_dir / rec["output"]) or _exists(Path(rec["output"])):
                self._done.add(rec.get("key"))
        return set(self._done)


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except (OSError, ValueError):  # a name too long, or with a NUL, in a hand-edited manifest
        return False


def done_keys(out_dir: Path) -> set[str]:
    """Keys of the lines a previous run finished whose output is still there."""
    return Manifest(out_dir).done()


def plan_batch(items: list[BatchItem], preset: Preset, out_dir: Path, overwrite: bool,
               source: Path = Path("batch"), allow_outside: bool = False) -> BatchPlan:
    """Skip the lines done before; check the rest can be written (a line's existing `out` needs
    `overwrite`; the folder must be writable) — all before any model loads. `source`: the prompt
    file, named in errors. Under torchrun every rank plans before any rank writes (a barrier), then
    keeps its `distributed.share` of `todo`."""
    out_dir = Path(out_dir)
    try:
        media.check_writable_dir(out_dir)
    except OSError as exc:
        raise outputs.OutputError(str(exc), field="out", value=str(out_dir), expected="a writable folder") from None
    done = Manifest(out_dir).done()
    todo = [it for it in items if it.key not in done]
    root = os.path.realpath(out_dir)
    for it in todo:
        if it.out and not allow_outside:  # a link inside the folder must not lead out of it either
            target = os.path.realpath(out_dir / it.out)
            if os.path.commonpath([root, target]) != root:
                raise BatchError(source, it.line, f"out {it.out!r} leads outside the output folder (through a "
                                 "symbolic link); use a name inside it, or pass `allow_outside`.", key="out")
        where = str(out_dir / it.out) if it.out else f"{out_dir}{os.sep}"
        try:
            outputs.plan_outputs(preset, it.job, where, False, overwrite)
        except RequestError as exc:
            raise BatchError(source, it.line, str(exc), key=exc.field) from None
    return BatchPlan(items, todo, out_dir)


def _error_text(exc: BaseException) -> str:
    text = (str(exc).strip().splitlines() or [""])[0]
    if isinstance(exc, RequestError):
        return text or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class _Claims:
    """Which lines some run on this output folder is computing now: a hidden `.KEY.claim` file per
    line, created exclusively (so two runs never compute one line at the same time) and removed when
    the line is done or fails. A stale claim (see `_stale`) is taken over; where claims cannot be made
    (a read-only folder is caught earlier), lines just run."""

    def __init__(self, out_dir: Path):
        self.dir = Path(out_dir)
        self.mine: set[str] = set()

    def _path(self, key: str) -> Path:
        return self.dir / f".{key}.claim"

    def take(self, key: str) -> bool:
        path = self._path(key)
        for _ in range(2):
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if not _stale(path):
                    return False
                path.unlink(missing_ok=True)
                continue
            except OSError:
                return True
            self.mine.add(key)
            with os.fdopen(fd, "w") as f:
                f.write(f"{socket.gethostname()} {os.getpid()}\n")
            return True
        return False

    def release(self, key: str) -> None:
        if key in self.mine:
            self.mine.discard(key)
            self._path(key).unlink(missing_ok=True)

    def release_all(self) -> None:
        for key in list(self.mine):
            self.release(key)


def _stale(path: Path) -> bool:
    """Whether a claim no longer stands for a running computation: its process is gone (or its pid was
    reused by a process started after the claim), it is empty or garbled (its writer died creating it),
    or it was made on another host (which this host cannot check: the line is then computed here too,
    never blocked by a run that may have died)."""
    try:
        host, pid = path.read_text().split()
        pid_ = int(pid)
        claimed = path.stat().st_mtime
    except (OSError, ValueError):
        return True
    if host != socket.gethostname():
        return True
    try:
        os.kill(pid_, 0)
    except ProcessLookupError:
        return True
    except OSError:
        pass  # exists (another user's process)
    started = _process_start(pid_)
    return started is not None and started > claimed + 1.0


def _process_start(pid: int) -> float | None:
    """When process `pid` started (seconds since the epoch), where /proc tells (Linux); else None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        ticks = int(stat[stat.rindex(")") + 2:].split()[19])  # field 22, starttime
        boot = next(float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime "))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, StopIteration, IndexError):
        return None


def run_batch(plan: BatchPlan, runner: Any, preset: Preset, *, overwrite: bool, generator: str,
              generate: Callable[[Any, Job], Any] | None = None,
              on_item: Callable[[int, int, BatchItem], None] | None = None,
              on_record: Callable[[dict[str, Any], Exception | None], None] | None = None,
              world: Any = None, batch_size: int = 1) -> BatchSummary:
    """Run the plan's remaining lines on `runner`. Each output and its manifest line are committed
    together; a failed line is recorded and the rest go on; KeyboardInterrupt stops the run.

    Several runs on one output folder share the work: a line another run is computing is left to it
    (tried again at the end, should that run have stopped), and a line it finished is skipped.

    `generate(runner, job)` runs one job (default `runner.generate(job)`; a front end passes one that
    draws progress); `on_item(n, total, item)` is called before each line, `on_record(rec, error)` after
    it, with the record written to the manifest (`output` relative to the output folder).

    `world` (a `distributed.World`, under torchrun with context parallelism): the ranks of a group
    compute every line together and only the group's first rank writes; the sharing with concurrent
    runs is then off, since the group's ranks must all run the same lines.

    `batch_size` > 1: compatible lines (`runner.group_jobs`: they differ at most in prompt and seed) run as
    one pipeline call of up to that many samples (`runner.generate_batch`); each output and manifest line is
    still written on its own. If a batched call fails, its lines are run again one by one, so one bad line
    fails alone and the others' outputs are kept."""
    generate = generate or (lambda r, job: r.generate(job))
    summary = BatchSummary(skipped=plan.skipped)
    manifest = Manifest(plan.out_dir)
    writes = world is None or world.writes
    grouped = world is not None and world.context_degree > 1
    claims = None if grouped else _Claims(plan.out_dir)

    def attempt(n: int, item: BatchItem, made: Any = None) -> None:
        if on_item is not None:
            on_item(n, len(plan.todo), item)
        job = item.job
        written: list[dict[str, Any]] = []
        error: Exception | None = None
        try:
            where = str(plan.out_dir / item.out) if item.out else f"{plan.out_dir}{os.sep}"
            planned = outputs.plan_outputs(preset, job, where, False, overwrite)
            result = made if made is not None else generate(runner, job)
            if not writes:  # another rank of this context group writes it
                summary.generated += 1
                return
            if not grouped and item.key in manifest.done():  # a concurrent run finished it meanwhile
                summary.skipped += 1
                return

            def record_line(paths: list[Path]) -> None:
                rel = os.path.relpath(paths[0], plan.out_dir)
                rec = {"key": item.key, "line": item.line, "status": "ok",
                       **outputs.record(preset, result, Path(rel))}
                media.append_line(plan.manifest, media.dumps(rec))
                written.append(rec)

            outputs.save(preset, result, planned, overwrite, generator, then=record_line)
            rec = written[0]
            summary.generated += 1
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # noqa: BLE001 - recorded, and the batch goes on
            if not grouped and isinstance(exc, FileExistsError) and item.key in manifest.done():
                summary.skipped += 1  # a concurrent run wrote this line's output first
                return
            error = exc
            summary.failed += 1
            rec = {"key": item.key, "line": item.line, "status": "error", "error": _error_text(exc),
                   "model": preset.name, "prompt": job.prompt, "seed": job.seed, "output": None}
            if writes:
                media.append_line(plan.manifest, media.dumps(rec))
        summary.records.append(rec)
        if on_record is not None:
            on_record(rec, error)

    held: list[tuple[int, BatchItem]] = []  # lines another run was computing when this one came to them

    def run_group(members: list[tuple[int, BatchItem]]) -> None:
        """Lines sharing one pipeline call: claimed together, the call made once, each line saved alone."""
        mine: list[tuple[int, BatchItem]] = []
        try:
            for n, item in members:
                if not grouped and item.key in manifest.done():
                    summary.skipped += 1
                elif claims is not None and not claims.take(item.key):
                    held.append((n, item))
                elif not grouped and item.key in manifest.done():  # finished just before the claim
                    claims.release(item.key)
                    summary.skipped += 1
                else:
                    mine.append((n, item))
            made: list[Any] = [None] * len(mine)
            if len(mine) > 1:
                try:
                    made = runner.generate_batch([item.job for _n, item in mine])
                except KeyboardInterrupt:
                    raise
                except Exception:  # noqa: BLE001 - each line is tried alone below, so only a bad one fails
                    made = [None] * len(mine)
            for (n, item), result in zip(mine, made):
                attempt(n, item, result)
        finally:
            if claims is not None:
                for _n, item in mine:
                    claims.release(item.key)

    try:
        if batch_size != 1:
            from .runner import group_jobs

            numbered = list(enumerate(plan.todo, start=1))
            for group in group_jobs([item.job for item in plan.todo], batch_size):
                run_group([numbered[i] for i in group])
        for n, item in enumerate(plan.todo if batch_size == 1 else (), start=1):
            if not grouped and item.key in manifest.done():  # a concurrent run on this folder did it
                summary.skipped += 1
            elif claims is not None and not claims.take(item.key):
                held.append((n, item))
            else:
                try:
                    if not grouped and item.key in manifest.done():  # finished just before the claim
                        summary.skipped += 1
                    else:
                        attempt(n, item)
                finally:
                    if claims is not None:
                        claims.release(item.key)
        for n, item in held:  # the other run may have stopped without doing them
            if item.key in manifest.done() or not claims.take(item.key):
                summary.skipped += 1  # done, or still in the other run's hands
                continue
            try:
                if item.key in manifest.done():
                    summary.skipped += 1
                else:
                    attempt(n, item)
            finally:
                claims.release(item.key)
    finally:
        if claims is not None:
            claims.release_all()
    return summary
