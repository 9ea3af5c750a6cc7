"""The pipelines the fidelity benchmark runs on, and the fixed prompts × seeds it uses.

The embedded *trained* models come first (``spectrum_core/models/embedded/<name>/`` with a ``model_index.json``):
their sampling trajectories are real, so fidelity numbers mean something. When none is present the
benchmark falls back to the tiny random-weight families of ``spectrum_core.models.tiny``, and every table says
so: those runs test the plumbing (NFE counts, shapes, finiteness), not image quality.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..hooks.families import output_samples, prompt_kwargs, variant, variant_names
from ..models import EMBEDDED_DIR, prompt_world

TINY = variant_names(tiny_only=True)

# Embedded trained models: name -> (diffusers pipeline class, is video).
EMBEDDED = {"shapes": ("FluxPipeline", False), "moving": ("WanPipeline", True)}
RANDOM_LABEL = "random-weight tiny model: plumbing, not fidelity"


@dataclass(frozen=True)
class BenchModel:
    name: str                       # "shapes" or "tiny-flux", ...
    trained: bool                   # False: random weights, fidelity numbers are not meaningful
    is_video: bool
    load: Callable[[], Any]
    call_kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return "trained embedded model" if self.trained else RANDOM_LABEL

    @property
    def variant(self) -> Any:
        """The registry's Variant of a tiny model (how its pipeline is called); None for the embedded models,
        whose pipelines take a text prompt."""
        return variant(self.name[5:])[1] if self.name.startswith("tiny-") else None


def embedded_available(name: str) -> bool:
    return (EMBEDDED_DIR / name / "model_index.json").is_file()


def _embedded(name: str) -> BenchModel:
    import diffusers

    cls_name, is_video = EMBEDDED[name]
    world = prompt_world(name)
    call_kwargs = {k: v for k, v in world.PIPELINE_CALL_DEFAULTS.items() if k != "num_inference_steps"}

    def load() -> Any:
        return getattr(diffusers, cls_name).from_pretrained(EMBEDDED_DIR / name)

    return BenchModel(name, True, is_video, load, call_kwargs)


def _tiny(family: str) -> BenchModel:
    from ..models.tiny import TINY_CALL_KWARGS, load_tiny_pipeline

    return BenchModel(f"tiny-{family}", False, variant(family)[1].video,
                      lambda: load_tiny_pipeline(family), dict(TINY_CALL_KWARGS[family]))


def model_names() -> list[str]:
    return list(EMBEDDED) + [f"tiny-{f}" for f in TINY]


def resolve_models(requested: list[str] | None, quick: bool) -> list[BenchModel]:
    """``requested`` names, or by default every embedded trained model present (the image model alone in
    quick mode), else tiny random ones (``tiny-flux`` alone in quick mode, every family otherwise)."""
    if requested:
        out = []
        for name in requested:
            if name in EMBEDDED:
                if not embedded_available(name):
                    raise ValueError(f"The embedded model '{name}' is not built yet ({EMBEDDED_DIR / name} has no "
                                     f"model_index.json). Use a tiny model instead, e.g. --models tiny-flux.")
                out.append(_embedded(name))
            elif name.startswith("tiny-") and name[5:] in TINY:
                out.append(_tiny(name[5:]))
            else:
                raise ValueError(f"Unknown benchmark model '{name}'. Choose from: {', '.join(model_names())}.")
        return out
    trained = [_embedded(name) for name in EMBEDDED if embedded_available(name)]
    if trained:
        return trained[:1] if quick else trained
    return [_tiny("flux")] if quick else [_tiny(f) for f in TINY]


def samples(model: BenchModel, n: int) -> list[tuple[str, int]]:
    """``n`` fixed (prompt, seed) pairs: ``ceil(n/2)`` prompts from the model's vocabulary (the moving
    shapes' for the video model, the shapes' otherwise) × seeds 0 and 1."""
    k = max(1, (n + 1) // 2)
    if model.variant is not None and model.variant.prompt_argument == "class_labels":  # DiT: its class labels
        from ..app.presets import load_preset

        labels = list(load_preset(model.name).class_labels() or ())
        prompts = [labels[i % len(labels)] for i in range(k)]
    else:
        prompts = prompt_world(model.name if model.name in EMBEDDED else "shapes").eval_prompts(k)
    pairs = [(p, s) for p in prompts for s in (0, 1)]
    return pairs[:n]


def heldout_samples(model: BenchModel, n: int, base: int) -> list[tuple[str, int]]:
    """``n`` random (prompt, seed) pairs for a check on samples neither the bench nor calibration uses:
    prompts drawn uniformly from the model's grammar (numpy's generator seeded with ``base``; the video
    model's with a uniform direction), seeds ``base + 53 i``. Keep ``base`` away from the bench's seeds (0,
    1, 1000) and calibration's (15000 and up): e.g. 9100."""
    from ..models import moving, shapes

    rng = np.random.default_rng(base)
    combos = shapes.all_combinations()
    pairs = []
    for i in range(n):
        colour, shape, background = combos[int(rng.integers(len(combos)))]
        if model.name == "moving":
            prompt = moving.make_prompt(colour, shape, list(moving.DIRECTIONS)[int(rng.integers(4))], background)
        else:
            prompt = shapes.make_prompt(colour, shape, background)
        pairs.append((prompt, base + 53 * i))
    return pairs


def generate(pipe: Any, model: BenchModel, prompt: str, seed: int, steps: int = 50) -> np.ndarray:
    """The final decoded output as floats in [0, 1]: (H, W, 3) for images, (F, H, W, 3) for videos."""
    words = (prompt_kwargs(model.variant, prompt, getattr(pipe, "labels", None)) if model.variant is not None
             else {"prompt": prompt})  # DiT: the prompt is a class label, passed as its class id
    result = pipe(**words, num_inference_steps=steps, generator=torch.Generator().manual_seed(seed),
                  output_type="np", **model.call_kwargs)
    out = output_samples(result)
    arr = np.asarray(out[0], dtype=np.float32)
    return np.clip(arr, 0.0, 1.0)
