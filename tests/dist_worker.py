"""A worker that tests/test_distributed.py starts under torch.distributed.run (2 CPU processes, gloo).

Modes (argv[1]):
    cp OUT     tiny FLUX with diffusers' Ulysses context parallelism over both ranks and Spectrum on;
               rank 0 saves the latents and each rank's forecaster state bytes to OUT.
    single OUT the same call in one process without context parallelism (run with torch.distributed
               not initialised), for comparison.

diffusers 0.42's ``enable_parallelism`` picks the device as ``rank % torch.accelerator.device_count()``,
which divides by zero on a machine without an accelerator; the worker (a test harness, never the
product) answers that count with 1 so that the CPU/gloo path can be exercised at all.
"""

import os
import sys

import torch

torch.set_num_threads(1)

from spectrum_core import SpectrumConfig, apply_spectrum  # noqa: E402
from spectrum_core.app import distributed  # noqa: E402
from spectrum_core.models.tiny import TINY_CALL_KWARGS, load_tiny_pipeline  # noqa: E402

FAMILY, STEPS, NFE = "flux", 16, 8


def main() -> None:
    mode, out = sys.argv[1], sys.argv[2]
    pipe = load_tiny_pipeline(FAMILY, cache_dir=os.environ["SPECTRUM_TEST_CACHE"])
    pipe.set_progress_bar_config(disable=True)
    world = distributed.World.from_env(context=distributed.ContextParallel("ulysses", 2) if mode == "cp" else None)
    with distributed.process_group(world, "cpu") as mesh:
        if mode == "cp":
            torch.accelerator.device_count = lambda: 1  # see the module docstring
            distributed.enable_context_parallel(pipe, world, mesh)
        handle = apply_spectrum(pipe, SpectrumConfig(nfe=NFE, blend=0.5))
        seen = []  # the sequence length of what the head (and so the forecaster) receives on this rank
        pipe.transformer.norm_out.register_forward_pre_hook(lambda _m, args: seen.append(args[0].shape[1]))
        latents = pipe("a red circle on a navy background", num_inference_steps=STEPS,
                       generator=torch.Generator("cpu").manual_seed(0), output_type="latent",
                       **TINY_CALL_KWARGS[FAMILY]).images
        record = {"nfe": handle.stats.nfe, "latents": latents, "rank": world.rank, "head_tokens": sorted(set(seen))}
        gathered = distributed.gather_to_main(record, world)
        if world.is_main:
            torch.save(gathered, out)


if __name__ == "__main__":
    main()
