"""spectrum_core.app.batch and .outputs as a library: every bad line refused before any model loads
(with its line number), outputs confined to the output folder, the manifest relative to it and
committed with each output, and a resume from any working directory.

The run-loop tests use a stand-in runner that returns a fixed picture, so they take milliseconds.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from spectrum_core.app import batch, media, outputs
from spectrum_core.app.presets import load_preset
from spectrum_core.app.request import RequestError

PRESET = load_preset("tiny-flux")


def write(tmp_path: Path, text: str | bytes, name: str = "jobs.jsonl") -> Path:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


def read(path: Path, **kw):
    return batch.read_batch(path, PRESET, {"steps": 8, "nfe": 6}, **kw)


# --- reading and checking ------------------------------------------------------------------------

def test_plain_and_json_lines_with_overrides(tmp_path):
    path = write(tmp_path, '# comment\n\na red circle\n{"prompt": "a fox", "seed": 9, "size": "48x32", "out": "fox"}\n')
    items = read(path)
    assert [it.line for it in items] == [3, 4]
    assert (items[0].job.prompt, items[0].job.seed, items[0].out) == ("a red circle", 42, None)
    fox = items[1]
    assert (fox.job.seed, fox.job.width, fox.job.height, fox.out) == (9, 48, 32, "fox.png")
    assert items[0].key != fox.key and len(fox.key) == 16


def test_utf8_bom_is_dropped(tmp_path):
    items = read(write(tmp_path, b"\xef\xbb\xbfa red circle\n"))
    assert items[0].job.prompt == "a red circle"


@pytest.mark.parametrize("content, message", [
    (b"a red circle\n\xff\xfe broken\n", "jobs.jsonl:2: not UTF-8"),
    ('{"prompt": "x", "seed": "abc"}', "jobs.jsonl:1:"),
    ('{"prompt": "x", "guidance": "x"}', "jobs.jsonl:1:"),
    ('{"prompt": 5}', "jobs.jsonl:1: prompt must be a string"),
    ('{"prompt": "x", "out": 5}', "jobs.jsonl:1: out must be a non-empty file name"),
    ('ok\n{"prompt": "x", "nfe": 2.5}', "jobs.jsonl:2:"),
    ('{"prompt": "x", "seed": 18446744073709551616}', "jobs.jsonl:1:"),
    ('{"prompt": "x", "seed": -1}', "jobs.jsonl:1:"),
    ('{"prompt": "x", "steps": 1e20}', "jobs.jsonl:1:"),
    ('{"prompt": "x", "guidance": NaN}', "jobs.jsonl:1:"),
    ('{"prompt": "x", "size": "axb"}', "jobs.jsonl:1: size must be"),
    ('{"prompt": "x", "colour": 1}', "jobs.jsonl:1: unknown key(s) colour"),
    ('{"prompt": "x"} trailing', "jobs.jsonl:1: not valid JSON"),
    ('{"seed": 1}', 'jobs.jsonl:1: no "prompt"'),
    ('{"prompt": "x", "out": "a.mp4"}', "must end in .png"),
    ('{"prompt": "x", "out": "a.png"}\n{"prompt": "y", "out": "./a.png"}', "jobs.jsonl:2: out './a.png' is also line 1's output"),
    ('{"prompt": "x", "out": "../escape.png"}', "outside the output folder"),
    ('{"prompt": "x", "out": "/tmp/abs.png"}', "outside the output folder"),
    ("# only a comment\n", "no prompts"),
])
def test_bad_lines_are_refused_with_their_line(tmp_path, content, message):
    with pytest.raises(batch.BatchError) as info:
        read(write(tmp_path, content))
    assert message in str(info.value)
    assert "\n" not in str(info.value)
    assert isinstance(info.value, RequestError)


def test_a_line_key_is_named_as_a_key_not_an_option(tmp_path):
    with pytest.raises(batch.BatchError) as info:
        read(write(tmp_path, '{"prompt": "x", "nfe": 2.5}'))
    assert '"nfe"' in str(info.value) and "--" not in str(info.value)


def test_outside_paths_only_when_allowed(tmp_path):
    items = read(write(tmp_path, '{"prompt": "x", "out": "../up.png"}'), allow_outside=True)
    assert items[0].out == "../up.png"


def test_missing_file_is_a_batch_error(tmp_path):
    with pytest.raises(batch.BatchError, match="Cannot read prompt file"):
        read(tmp_path / "nope.txt")


def test_plan_refuses_an_existing_out_before_anything_runs(tmp_path):
    items = read(write(tmp_path, '{"prompt": "x", "out": "taken.png"}'))
    out = tmp_path / "o"
    out.mkdir()
    (out / "taken.png").write_bytes(b"mine")
    with pytest.raises(batch.BatchError, match="jobs.jsonl:1: .*taken.png' already exists"):
        batch.plan_batch(items, PRESET, out, overwrite=False, source=tmp_path / "jobs.jsonl")
    assert batch.plan_batch(items, PRESET, out, overwrite=True).todo == items
    assert (out / "taken.png").read_bytes() == b"mine"


# --- the run loop ------------------------------------------------------------------------------

@dataclass
class FakeResult:
    job: object
    media: Image.Image
    nfe: int = 3
    real_steps: list = field(default_factory=lambda: [0, 1, 3])
    forecast_steps: list = field(default_factory=lambda: [2])
    seconds: float = 0.5
    transformer_seconds: float = 0.25
    estimated_speedup: float | None = 1.2


class FakeRunner:
    def __init__(self, fail_on: str | None = None):
        self.calls, self.fail_on = [], fail_on

    def generate(self, job):
        self.calls.append(job.prompt)
        if job.prompt == self.fail_on:
            raise RuntimeError("simulated failure")
        return FakeResult(job, Image.fromarray(np.full((32, 32, 3), len(self.calls) * 40, np.uint8)))


def run(path: Path, out_dir: Path, runner: FakeRunner, overwrite: bool = False):
    plan = batch.plan_batch(read(path), PRESET, out_dir, overwrite)
    return plan, batch.run_batch(plan, runner, PRESET, overwrite=overwrite, generator="spectrum test")


def manifest(out_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (out_dir / batch.MANIFEST).read_text().splitlines()]


def test_run_records_each_output_relative_to_the_folder_and_resumes_from_anywhere(tmp_path, monkeypatch):
    path = write(tmp_path, 'a red circle\na boom\n{"prompt": "a fox", "out": "sub/fox.png"}\n')
    out_dir = tmp_path / "renders"
    monkeypatch.chdir(tmp_path)
    runner = FakeRunner(fail_on="a boom")
    plan, summary = run(path, Path("renders"), runner)
    assert (summary.generated, summary.failed, summary.skipped) == (2, 1, 0)
    recs = manifest(out_dir)
    assert [r["status"] for r in recs] == ["ok", "error", "ok"] and [r["line"] for r in recs] == [1, 2, 3]
    assert recs[2]["output"] == os.path.join("sub", "fox.png")
    assert not os.path.isabs(recs[0]["output"]) and (out_dir / recs[0]["output"]).is_file()
    assert "simulated failure" in recs[1]["error"] and recs[1]["output"] is None
    assert media.read_png_metadata(out_dir / "sub" / "fox.png")["prompt"] == "a fox"

    # From another working directory, with the folder given another way: only the failed line reruns.
    elsewhere = tmp_path / "deep" / "er"
    elsewhere.mkdir(parents=True)
    monkeypatch.chdir(elsewhere)
    again = FakeRunner()
    plan, summary = run(path, out_dir, again)
    assert again.calls == ["a boom"] and (summary.generated, summary.skipped) == (1, 2)
    assert sorted(p.name for p in out_dir.iterdir() if p.suffix == ".png") == sorted(
        {Path(r["output"]).name for r in manifest(out_dir) if r["status"] == "ok"} - {"fox.png"})


def test_old_manifests_with_cwd_relative_paths_still_count(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path, "a red circle\n")
    item = read(path)[0]
    (tmp_path / "o").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "o" / "old.png")
    old = {"key": item.key, "status": "ok", "output": "o/old.png"}
    (tmp_path / "o" / batch.MANIFEST).write_text(json.dumps(old) + "\n")
    assert batch.plan_batch([item], PRESET, Path("o"), False).todo == []


def test_a_failed_manifest_line_takes_its_output_with_it(tmp_path, monkeypatch):
    path = write(tmp_path, "a red circle\n")
    out_dir = tmp_path / "o"

    def broken_append(*_a, **_k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(media, "append_line", broken_append)
    with pytest.raises(OSError):  # the error record cannot be written either: the run stops
        run(path, out_dir, FakeRunner())
    assert [p.name for p in out_dir.iterdir()] == []  # no output without its manifest line


def test_interrupt_between_lines_leaves_whole_records(tmp_path):
    path = write(tmp_path, "one\ntwo\n")
    out_dir = tmp_path / "o"

    class Interrupting(FakeRunner):
        def generate(self, job):
            if job.prompt == "two":
                raise KeyboardInterrupt
            return super().generate(job)

    with pytest.raises(KeyboardInterrupt):
        run(path, out_dir, Interrupting())
    recs = manifest(out_dir)
    pngs = [p for p in out_dir.iterdir() if p.suffix == ".png"]
    assert len(recs) == 1 == len(pngs) and (out_dir / recs[0]["output"]) == pngs[0]
    assert not [p for p in out_dir.iterdir() if p.name.startswith(".")]


# --- outputs --------------------------------------------------------------------------------------

def test_default_names_skip_a_stale_sidecar_and_explicit_names_need_overwrite(tmp_path):
    wan = load_preset("tiny-wan")
    from spectrum_core.app.request import build_job

    job = build_job(wan, "waves", {"steps": 8, "nfe": 6})
    first = outputs.plan_outputs(wan, job, f"{tmp_path}/", False, False)
    media.sidecar_path(first.main).write_text("{}")  # a stale sidecar alone
    second = outputs.plan_outputs(wan, job, f"{tmp_path}/", False, False)
    assert second.main.stem == first.main.stem + "-1" and second.default_name
    first.main.write_bytes(b"x")
    with pytest.raises(outputs.OutputError) as info:
        outputs.plan_outputs(wan, job, str(first.main), False, False)
    assert info.value.field == "overwrite" and "--" not in str(info.value)


def test_too_long_a_name_fails_before_any_work(tmp_path):
    from spectrum_core.app.request import build_job

    job = build_job(PRESET, "x", {"steps": 8, "nfe": 6})
    with pytest.raises(outputs.OutputError) as info:
        outputs.plan_outputs(PRESET, job, str(tmp_path / ("n" * 300 + ".png")), False, False)
    assert info.value.field == "out"


def test_a_line_finished_meanwhile_by_a_concurrent_run_is_skipped(tmp_path):
    path = write(tmp_path, "one\ntwo\n")
    out_dir = tmp_path / "o"
    second = read(path)[1]

    class Racing(FakeRunner):
        def generate(self, job):  # while line 1 runs, another run on the folder finishes line 2
            if job.prompt == "one":
                Image.new("RGB", (8, 8)).save(out_dir / "theirs.png")
                media.append_line(out_dir / batch.MANIFEST, json.dumps(
                    {"key": second.key, "status": "ok", "output": "theirs.png"}))
            return super().generate(job)

    runner = Racing()
    _, summary = run(path, out_dir, runner)
    assert runner.calls == ["one"] and (summary.generated, summary.skipped, summary.failed) == (1, 1, 0)


def test_a_line_schedule_replaces_the_defaults_schedule(tmp_path):
    path = write(tmp_path, '{"prompt": "a", "nfe": 7}\n{"prompt": "b"}\n{"prompt": "c", "alpha": 1.5}\n')
    a, b, c = batch.read_batch(path, PRESET, {"steps": 8, "alpha": 3.0})
    assert (a.job.spectrum.nfe, a.job.spectrum.alpha) == (7, None)
    assert (b.job.spectrum.nfe, b.job.spectrum.alpha) == (None, 3.0)
    assert (c.job.spectrum.nfe, c.job.spectrum.alpha) == (None, 1.5)
    b2 = batch.read_batch(path, PRESET, {"steps": 8, "interval": 3})[1]
    assert b2.job.spectrum.interval == 3


def test_losing_a_race_for_an_explicit_out_is_a_skip_not_a_failure(tmp_path):
    path = write(tmp_path, '{"prompt": "one", "out": "one.png"}\n')
    out_dir = tmp_path / "o"
    item = read(path)[0]

    class Racing(FakeRunner):
        def generate(self, job):  # the other run commits one.png and its line while this one computes
            Image.new("RGB", (8, 8)).save(out_dir / "one.png")
            media.append_line(out_dir / batch.MANIFEST, json.dumps({"key": item.key, "status": "ok",
                                                                    "output": "one.png"}))
            return super().generate(job)

    _, summary = run(path, out_dir, Racing())
    assert (summary.generated, summary.skipped, summary.failed) == (0, 1, 0)
    assert len(manifest(out_dir)) == 1  # only the winner's line


# --- the `spectrum batch` command ----------------------------------------------------------------

def cli(*args: str):
    from typer.testing import CliRunner

    from spectrum_cli.main import app

    return CliRunner().invoke(app, list(args))


@pytest.fixture
def in_tmp(tmp_path, monkeypatch, tmp_path_factory):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SPECTRUM_CACHE", os.environ.get("SPECTRUM_CACHE") or str(tmp_path_factory.getbasetemp() / "cache"))
    monkeypatch.delenv("SPECTRUM_DEBUG", raising=False)
    return tmp_path


@pytest.mark.parametrize("content, message", [
    ('{"prompt": "x", "out": "../escape.png"}\n', "jobs.jsonl:1: out '../escape.png' is outside the output folder"),
    ('ok\n{"prompt": "x", "seed": "abc"}\n', "jobs.jsonl:2: "),
    (b"ok\n\xff\n", "jobs.jsonl:2: not UTF-8"),
    ('{"prompt": "x", "out": "a.png"}\n{"prompt": "y", "out": "a.png"}\n', "jobs.jsonl:2: out 'a.png' is also line 1"),
])
def test_cli_bad_batch_is_one_line_exit_2_and_writes_nothing(in_tmp, content, message):
    write(in_tmp, content)
    result = cli("batch", "jobs.jsonl", "-m", "tiny-flux", "--out", "o")
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], result.stderr
    assert result.stdout == "" and not (in_tmp / "o").exists()


def test_cli_allow_outside_and_resume_from_another_folder(in_tmp, monkeypatch):
    write(in_tmp, '{"prompt": "a fox", "out": "../fox.png"}\na cat\n')
    args = ["-m", "tiny-flux", "--steps", "8", "--nfe", "6", "--json"]
    first = cli("batch", "jobs.jsonl", "--out-dir", "o", "--allow-outside", *args)
    assert first.exit_code == 0, first.output
    assert (in_tmp / "fox.png").is_file()
    assert [r["output"] for r in map(json.loads, first.stdout.splitlines())][0] == os.path.join("o", "../fox.png")
    assert [json.loads(l)["output"] for l in (in_tmp / "o" / batch.MANIFEST).read_text().splitlines()][0] == "../fox.png"
    (in_tmp / "deeper").mkdir()
    monkeypatch.chdir(in_tmp / "deeper")
    again = cli("batch", "../jobs.jsonl", "-o", "../o", "--allow-outside", *args)
    assert again.exit_code == 0 and again.stdout == "" and "2 of 2 prompts already done" in again.stderr


def test_sigterm_stops_a_batch_like_ctrl_c(in_tmp):
    import signal
    import subprocess
    import sys
    import time

    write(in_tmp, "".join(f"prompt number {i}\n" for i in range(200)), name="many.txt")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen([sys.executable, "-m", "spectrum_cli", "batch", "many.txt", "-m", "tiny-flux",
                             "--steps", "8", "--nfe", "6", "-o", "o"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    manifest_file = in_tmp / "o" / batch.MANIFEST
    deadline = time.time() + 120
    while time.time() < deadline and (not manifest_file.exists() or len(manifest_file.read_text().splitlines()) < 2):
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "Interrupted" in stderr and "Traceback" not in stderr
    recs = manifest(in_tmp / "o")
    pngs = sorted(p.name for p in (in_tmp / "o").iterdir() if p.suffix == ".png")
    assert 2 <= len(recs) < 200 and sorted(r["output"] for r in recs) == pngs
    assert not [p for p in (in_tmp / "o").iterdir() if p.name.startswith(".")]  # no temporary file left


def test_a_line_the_other_run_finishes_while_this_one_computes_is_not_written_twice(tmp_path):
    path = write(tmp_path, "one\n")
    out_dir = tmp_path / "o"
    item = read(path)[0]

    class Racing(FakeRunner):
        def generate(self, job):
            Image.new("RGB", (8, 8)).save(out_dir / "theirs.png")
            media.append_line(out_dir / batch.MANIFEST, json.dumps({"key": item.key, "status": "ok",
                                                                    "output": "theirs.png"}))
            return super().generate(job)

    _, summary = run(path, out_dir, Racing())
    assert (summary.generated, summary.skipped) == (0, 1)
    assert sorted(p.name for p in out_dir.iterdir()) == [batch.MANIFEST, "theirs.png"]


def test_a_context_group_computes_every_line_and_only_its_first_rank_writes(tmp_path):
    from spectrum_core.app.distributed import ContextParallel, World

    path = write(tmp_path, "one\ntwo\n")
    out_dir = tmp_path / "o"
    cp = ContextParallel("ulysses", 2)
    plan = batch.plan_batch(read(path), PRESET, out_dir, False)
    helper = FakeRunner()
    summary = batch.run_batch(plan, helper, PRESET, overwrite=False, generator="t", world=World(1, 2, context=cp))
    assert helper.calls == ["one", "two"] and summary.generated == 2
    assert list(out_dir.iterdir()) == []  # the second rank of the group writes nothing
    first = FakeRunner()
    batch.run_batch(plan, first, PRESET, overwrite=False, generator="t", world=World(0, 2, context=cp))
    assert first.calls == ["one", "two"] and len(manifest(out_dir)) == 2


def test_a_link_inside_the_folder_cannot_lead_out_of_it(tmp_path):
    items = read(write(tmp_path, '{"prompt": "x", "out": "link/x.png"}'))
    out, elsewhere = tmp_path / "o", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    (out / "link").symlink_to(elsewhere)
    with pytest.raises(batch.BatchError, match="jobs.jsonl:1: .*leads outside the output folder"):
        batch.plan_batch(items, PRESET, out, False, source=tmp_path / "jobs.jsonl")
    assert batch.plan_batch(items, PRESET, out, False, allow_outside=True).todo == items


@pytest.mark.parametrize("out", ["a\nb.png", "a\x00b.png", "a\x1b[31m.png"])
def test_control_characters_in_out_are_refused(tmp_path, out):
    with pytest.raises(batch.BatchError, match="control character"):
        read(write(tmp_path, json.dumps({"prompt": "x", "out": out})))


def test_a_new_setting_left_unset_does_not_change_a_lines_key(tmp_path):
    import dataclasses

    item = read(write(tmp_path, "a red circle\n"))[0]

    @dataclasses.dataclass(frozen=True)
    class Later:  # the same config with one more field, unset, as a later version may add
        inner: object

        def to_dict(self):
            return {**self.inner.to_dict(), "some_new_knob": None}

    later = dataclasses.replace(item.job, spectrum=Later(item.job.spectrum))
    assert batch.line_key(PRESET, later, None) == item.key
    changed = dataclasses.replace(item.job, seed=item.job.seed + 1)
    assert batch.line_key(PRESET, changed, None) != item.key


def _claim(out_dir: Path, key: str, text: str) -> Path:
    out_dir.mkdir(exist_ok=True)
    path = out_dir / f".{key}.claim"
    path.write_text(text)
    return path


def test_a_line_another_live_run_is_computing_is_left_to_it(tmp_path):
    import socket

    path = write(tmp_path, "one\ntwo\n")
    out_dir = tmp_path / "o"
    one = read(path)[0]
    claim = _claim(out_dir, one.key, f"{socket.gethostname()} {os.getppid()}\n")  # a live process holds it
    runner = FakeRunner()
    _, summary = run(path, out_dir, runner)
    assert runner.calls == ["two"] and (summary.generated, summary.skipped) == (1, 1)
    assert claim.exists()  # not ours to remove
    claim.unlink()
    assert sorted(p.name for p in out_dir.iterdir() if p.name.startswith(".")) == []


@pytest.mark.parametrize("text", ["", "garbled", "HOST 4194999\n"])
def test_a_stale_claim_is_taken_over(tmp_path, text):
    import socket

    path = write(tmp_path, "one\n")
    out_dir = tmp_path / "o"
    _claim(out_dir, read(path)[0].key, text.replace("HOST", socket.gethostname()))  # pid 4194999: not running
    runner = FakeRunner()
    _, summary = run(path, out_dir, runner)
    assert runner.calls == ["one"] and summary.generated == 1
    assert not [p for p in out_dir.iterdir() if p.name.startswith(".")]


def test_claims_of_another_host_or_of_a_reused_pid_do_not_block(tmp_path):
    import socket

    path = write(tmp_path, "one\ntwo\n")
    out_dir = tmp_path / "o"
    one, two = read(path)
    _claim(out_dir, one.key, f"not-{socket.gethostname()} {os.getppid()}\n")  # cannot be checked from here
    reused = _claim(out_dir, two.key, f"{socket.gethostname()} {os.getppid()}\n")
    os.utime(reused, (0, 0))  # claimed in 1970: the live process with that pid started later
    runner = FakeRunner()
    run(path, out_dir, runner)
    assert runner.calls == ["one", "two"]
    assert not [p for p in out_dir.iterdir() if p.name.startswith(".")]


# --- --batch-size: compatible lines in one pipeline call ----------------------------------------------

class BatchingRunner(FakeRunner):
    """Records each pipeline call's prompts; a call holding `fail_on` fails as a whole, as a real one would."""

    def __init__(self, fail_on: str | None = None):
        super().__init__(fail_on)
        self.batches = []

    def generate_batch(self, jobs):
        self.batches.append([j.prompt for j in jobs])
        if any(j.prompt == self.fail_on for j in jobs):
            raise RuntimeError("simulated batch failure")
        return [FakeResult(j, Image.fromarray(np.full((32, 32, 3), 10 * i, np.uint8))) for i, j in enumerate(jobs)]


def run_batched(path: Path, out_dir: Path, runner: FakeRunner, batch_size: int):
    plan = batch.plan_batch(read(path), PRESET, out_dir, False)
    return batch.run_batch(plan, runner, PRESET, overwrite=False, generator="spectrum test", batch_size=batch_size)


def test_batch_size_groups_compatible_lines_in_order(tmp_path):
    path = write(tmp_path, 'a\nb\n{"prompt": "c", "nfe": 7}\n{"prompt": "d", "seed": 5}\ne\n')
    runner = BatchingRunner()
    summary = run_batched(path, tmp_path / "o", runner, batch_size=2)
    assert runner.batches == [["a", "b"], ["d", "e"]] and runner.calls == ["c"]  # c differs: alone
    assert (summary.generated, summary.failed) == (5, 0)
    recs = manifest(tmp_path / "o")
    assert sorted(r["prompt"] for r in recs) == list("abcde") and all(r["status"] == "ok" for r in recs)
    assert len(list((tmp_path / "o").glob("*.png"))) == 5


def test_a_failing_batched_call_keeps_the_other_lines(tmp_path):
    path = write(tmp_path, "a\na boom\nc\n")
    runner = BatchingRunner(fail_on="a boom")
    summary = run_batched(path, tmp_path / "o", runner, batch_size=3)
    assert runner.batches == [["a", "a boom", "c"]] and runner.calls == ["a", "a boom", "c"]  # retried one by one
    assert (summary.generated, summary.failed) == (2, 1)
    recs = {r["prompt"]: r for r in manifest(tmp_path / "o")}
    assert recs["a"]["status"] == recs["c"]["status"] == "ok" and recs["a boom"]["status"] == "error"
    assert (tmp_path / "o" / recs["a"]["output"]).is_file() and (tmp_path / "o" / recs["c"]["output"]).is_file()
    # A resume runs only the failed line.
    again = BatchingRunner()
    assert run_batched(path, tmp_path / "o", again, batch_size=3).generated == 1 and again.calls == ["a boom"]


def test_cli_batch_size_runs_real_batches(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from spectrum_cli.main import app

    monkeypatch.chdir(tmp_path)
    path = write(tmp_path, 'a red circle\na blue square\n{"prompt": "a fox", "seed": 3}\n')
    args = ["batch", str(path), "-m", "tiny-flux", "--steps", "8", "--nfe", "6", "--json"]
    one = CliRunner().invoke(app, [*args, "-o", "one"])
    three = CliRunner().invoke(app, [*args, "-o", "three", "--batch-size", "3"])
    assert one.exit_code == 0 and three.exit_code == 0, three.output
    recs1 = [json.loads(x) for x in one.stdout.splitlines()]
    recs3 = [json.loads(x) for x in three.stdout.splitlines()]
    assert [r["batch_size"] for r in recs1] == [1, 1, 1] and [r["batch_size"] for r in recs3] == [3, 3, 3]
    for a, b in zip(recs1, recs3):  # per sample what one-by-one makes, up to batched kernels' rounding
        assert a["real_steps"] == b["real_steps"] and a["prompt"] == b["prompt"]
        pa = np.asarray(Image.open(a["output"]), np.int16)
        pb = np.asarray(Image.open(b["output"]), np.int16)
        assert np.abs(pa - pb).max() <= 1
    bad = CliRunner().invoke(app, [*args, "-o", "bad", "--batch-size", "0"])
    assert bad.exit_code == 2 and "--batch-size" in bad.stderr and not Path("bad").exists()


def test_cli_batch_context_parallel_is_refused_before_loading(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from spectrum_cli.main import app
    from spectrum_core.app import runner as runner_mod

    def refuse(*_a, **_k):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(runner_mod, "load_pipeline", refuse)
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path, "a red circle\n")
    args = ["batch", str(path), "-m", "tiny-flux", "--device", "cpu", "-o", "o"]
    alone = CliRunner().invoke(app, [*args, "--context-parallel", "ring:2"])
    assert alone.exit_code == 2 and "--context-parallel ring:2 needs torchrun with 2 processes" in alone.stderr
    assert "-m spectrum_cli batch" in alone.stderr
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    on_cpu = CliRunner().invoke(app, [*args, "--context-parallel", "ulysses:2"])
    assert on_cpu.exit_code == 2 and "context parallelism needs CUDA devices" in on_cpu.stderr, on_cpu.output
    assert not Path("o").exists()
