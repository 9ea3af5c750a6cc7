"""torch.distributed: the launch environment, the data-parallel share, and Spectrum under diffusers'
context parallelism (2 CPU processes with gloo, started from the test)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from spectrum_core.app import distributed
from spectrum_core.app.distributed import ContextParallel, DistributedError, World
from spectrum_core.method.config import FORECASTERS
from spectrum_core.method.forecasters import make_forecaster

WORKER = Path(__file__).with_name("dist_worker.py")


def test_world_from_torchrun_environment():
    world = World.from_env({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"})
    assert (world.rank, world.size, world.local_rank, world.is_main, world.distributed) == (3, 4, 1, False, True)
    assert World.from_env({}) == World()  # a plain run is a world of one
    with pytest.raises(DistributedError, match="WORLD_SIZE='x'"):
        World.from_env({"WORLD_SIZE": "x"})
    with pytest.raises(DistributedError, match="outside a world of 2"):
        World.from_env({"RANK": "2", "WORLD_SIZE": "2"})


def test_share_is_disjoint_complete_and_independent_of_who_asks():
    items = list(range(23))
    for size in (1, 2, 3, 4, 7):
        shares = [distributed.share(items, World(rank=r, size=size)) for r in range(size)]
        assert sorted(x for s in shares for x in s) == items
        assert max(map(len, shares)) - min(map(len, shares)) <= 1


def test_context_groups_share_by_group_and_first_rank_writes():
    cp = ContextParallel("ulysses", 2)
    worlds = [World(rank=r, size=4, context=cp) for r in range(4)]
    assert [w.data_rank for w in worlds] == [0, 0, 1, 1] and {w.data_size for w in worlds} == {2}
    assert [w.writes for w in worlds] == [True, False, True, False]
    assert distributed.share(list("abcde"), worlds[1]) == distributed.share(list("abcde"), worlds[0]) == ["a", "c", "e"]
    with pytest.raises(DistributedError, match="divisible by 4"):
        World(rank=0, size=6, context=ContextParallel("ring", 4))


@pytest.mark.parametrize("text,expected", [("ulysses:2", ("ulysses", 2)), ("RING:4", ("ring", 4))])
def test_context_parallel_parse(text, expected):
    cp = ContextParallel.parse(text)
    assert (cp.kind, cp.degree) == expected and ContextParallel.parse(str(cp)) == cp


@pytest.mark.parametrize("text", ["ulysses", "ulysses:", "ulysses:0", "tensor:2", "ring:-1", "ring:1.5"])
def test_context_parallel_parse_refuses(text):
    with pytest.raises(DistributedError):
        ContextParallel.parse(text)


@pytest.mark.parametrize("name", FORECASTERS)
def test_forecast_of_sequence_shards_is_the_shard_of_the_forecast(name):
    """Why context parallelism needs no communication in the forecaster: it is independent per feature
    column, so two ranks holding halves of the sequence forecast exactly the halves of the whole."""
    g = torch.Generator().manual_seed(0)
    whole = make_forecaster(name)
    halves = [make_forecaster(name), make_forecaster(name)]
    for tau in (-1.0, -0.9, -0.8, -0.6, -0.3, 0.0):
        feature = torch.randn(1, 12, 8, generator=g)
        whole.update(tau, feature)
        for part, shard in zip(halves, feature.chunk(2, dim=1)):
            part.update(tau, shard)
    for tau in (0.1, 0.4):
        joined = torch.cat([part.predict(tau) for part in halves], dim=1)
        torch.testing.assert_close(joined, whole.predict(tau), rtol=1e-5, atol=1e-6)


def _run_worker(mode, out, cache, nproc):
    env = {**os.environ, "SPECTRUM_TEST_CACHE": str(cache), "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(WORKER.parent.parent), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc}", "--standalone",
           str(WORKER), mode, str(out)] if nproc > 1 else [sys.executable, str(WORKER), mode, str(out)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return torch.load(out, weights_only=False)


def test_spectrum_under_ulysses_context_parallel_matches_one_process(tmp_path, tiny_pipes, tiny_cache):
    tiny_pipes("flux")  # builds the tiny FLUX into the session cache the workers load from
    single = _run_worker("single", tmp_path / "single.pt", tiny_cache, 1)[0]
    ranks = _run_worker("cp", tmp_path / "cp.pt", tiny_cache, 2)
    assert [r["rank"] for r in ranks] == [0, 1]
    assert {r["nfe"] for r in ranks} == {single["nfe"]} == {8}
    # each rank's head (and forecaster) holds half of the image tokens: 1/N of the state
    assert [r["head_tokens"] for r in ranks] == [[single["head_tokens"][0] // 2]] * 2
    for r in ranks:  # every rank ends with the whole, gathered output
        torch.testing.assert_close(r["latents"], single["latents"], rtol=1e-4, atol=1e-5)


# --- spectrum batch under torchrun: 2 CPU processes over gloo ------------------------------------------

PROMPTS = ["a red circle on a navy background", "a blue square on a white background",
           "a green triangle on a black background", "a pink circle on a gray background",
           "a white square on a brown background"]


def _batch(tmp_path, lines, out, nproc):
    file = tmp_path / f"prompts-{len(lines)}.txt"
    file.write_text("\n".join(lines) + "\n")
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(WORKER.parent.parent), os.environ.get("PYTHONPATH", "")])}
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}"] if nproc > 1 \
        else [sys.executable]
    cmd = launch + ["-m", "spectrum_cli", "batch", str(file), "-m", "shapes", "--steps", "6", "-o", str(out)]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)


def _manifest(out):
    import json

    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def test_batch_shards_over_ranks_and_rank0_alone_reports(tmp_path):
    out = tmp_path / "out"
    done = _batch(tmp_path, PROMPTS, out, 2)
    assert done.returncode == 0, done.stderr[-2000:]
    records = _manifest(out)
    assert sorted(r["line"] for r in records) == [1, 2, 3, 4, 5] and {r["status"] for r in records} == {"ok"}
    assert sorted(p.name for p in out.glob("*.png")) == sorted(r["output"] for r in records)
    progress = [line for line in done.stderr.splitlines() if line.startswith("(")]
    assert [p.split(":")[0] for p in progress] == ["(1/3) line 1", "(2/3) line 3", "(3/3) line 5"]  # rank 0's share
    assert done.stderr.count("generated,") == 1 and "5 generated, 0 skipped" in done.stderr
    steps, real = sum(r["steps"] for r in records), sum(r["nfe"] for r in records)  # totals over both ranks
    assert f"{steps - real} of {steps} steps forecast" in done.stderr


def test_batch_resumes_across_world_sizes_each_prompt_once(tmp_path):
    out = tmp_path / "out"
    assert _batch(tmp_path, PROMPTS[:3], out, 1).returncode == 0  # a first run, one process
    second = _batch(tmp_path, PROMPTS, out, 2)  # the rest, two processes
    assert second.returncode == 0, second.stderr[-2000:]
    assert "2 generated, 3 skipped" in second.stderr
    third = _batch(tmp_path, PROMPTS, out, 1)
    assert third.returncode == 0 and "0 generated, 5 skipped" in third.stderr
    records = _manifest(out)
    assert sorted(r["line"] for r in records) == [1, 2, 3, 4, 5]  # none twice
    assert len(list(out.glob("*.png"))) == 5


def test_a_failing_prompt_on_one_rank_keeps_the_others_work(tmp_path):
    out = tmp_path / "out"
    lines = [PROMPTS[0], '{"prompt": "%s", "guidance": 1e30}' % PROMPTS[1], PROMPTS[2]]  # line 2 overflows
    done = _batch(tmp_path, lines, out, 2)
    assert done.returncode != 0
    status = {r["line"]: r["status"] for r in _manifest(out)}
    assert status == {1: "ok", 2: "error", 3: "ok"}
    assert "failed: line 2" in done.stderr and "2 generated, 0 skipped (done before), 1 failed" in done.stderr
    assert len(list(out.glob("*.png"))) == 2
