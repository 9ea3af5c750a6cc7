"""A model folder's own call defaults: ``spectrum_call.json`` beside ``model_index.json``.

A diffusers pipeline's ``__call__`` defaults are those of the full-size model (FluxPipeline: 1024 px, 512
T5 tokens; WanPipeline: 480x832, 81 frames). The folders spectrum makes — the embedded ``shapes`` and
``moving`` models and the tiny pipelines — only work when called the way they were trained or built
(``shapes``: 64x64, 8 text tokens, true CFG 2 with the empty negative prompt). This file says so, in a
form a plain diffusers user can pass straight to the pipeline::

    import json, torch
    from diffusers import DiffusionPipeline
    pipe = DiffusionPipeline.from_pretrained(folder)
    defaults = json.loads((folder / "spectrum_call.json").read_text())
    image = pipe("a red circle on a navy background", **defaults["call"],
                 generator=torch.Generator().manual_seed(0)).images[0]

Schema (version 1)::

    {
      "spectrum_call": 1,              # the schema version
      "pipeline": "FluxPipeline",      # model_index.json's _class_name, for a consistency check
      "kind": "image" | "video",
      "call": {                        # keyword arguments of pipeline.__call__, as they are named there
        "num_inference_steps": 50, "height": 64, "width": 64,
        "num_frames": 9,               # video only
        "max_sequence_length": 8,      # where the model needs it
        "guidance_scale": 1.0, "true_cfg_scale": 2.0, "negative_prompt": ""   # as the pipeline takes them
      },
      "fps": 8                         # video only: frames per second for export (not a call argument)
    }

Only JSON numbers, strings and booleans appear (no NaN/Infinity). Extra files in a model folder are
ignored by ``from_pretrained``, so adding this one changes nothing about loading or outputs.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Mapping

FILE_NAME = "spectrum_call.json"
SCHEMA_VERSION = 1


def call_defaults_document(pipeline: str, call: Mapping[str, Any], fps: int | None = None) -> dict[str, Any]:
    """The file's content for a pipeline class and its call keyword arguments (video when `num_frames` is
    among them, which then needs `fps`, or when `fps` is given: LattePipeline names its frames `video_length`)."""
    call = dict(call)
    for key, value in call.items():
        if not isinstance(value, (bool, int, float, str)) or (isinstance(value, float) and not math.isfinite(value)):
            raise ValueError(f"call default {key!r} must be a finite number, a string or a boolean, got {value!r}")
    video = "num_frames" in call or fps is not None
    if video and fps is None:
        raise ValueError("a video model's call defaults need `fps`")
    doc: dict[str, Any] = {"spectrum_call": SCHEMA_VERSION, "pipeline": pipeline,
                           "kind": "video" if video else "image", "call": call}
    if video:
        doc["fps"] = int(fps)
    return doc


def write_call_defaults(folder: str | os.PathLike, pipeline: str, call: Mapping[str, Any],
                        fps: int | None = None) -> Path:
    """Write ``spectrum_call.json`` into `folder` (a folder being built: no atomic rename of its own)."""
    path = Path(folder) / FILE_NAME
    text = json.dumps(call_defaults_document(pipeline, call, fps), indent=2, allow_nan=False) + "\n"
    path.write_text(text, encoding="utf-8")
    return path


def read_call_defaults(folder: str | os.PathLike) -> dict[str, Any] | None:
    """The folder's call defaults document, or None when it has none. A file that is there but unusable
    (not JSON, another schema version, wrong types, a pipeline other than model_index.json's) raises
    ValueError naming the file."""
    folder = Path(folder)
    path = folder / FILE_NAME
    if not path.is_file():
        return None

    def bad(why: str) -> ValueError:
        return ValueError(f"'{path}' is not a usable {FILE_NAME}: {why}")

    def no_constant(name: str) -> None:
        raise bad(f"{name} is not a number")

    try:
        doc = json.loads(path.read_text(encoding="utf-8"), parse_constant=no_constant)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise bad(str(exc)) from None
    if not isinstance(doc, dict) or doc.get("spectrum_call") != SCHEMA_VERSION:
        raise bad(f"expected an object with \"spectrum_call\": {SCHEMA_VERSION}")
    if doc.get("kind") not in ("image", "video") or not isinstance(doc.get("call"), dict):
        raise bad("needs \"kind\" (image or video) and a \"call\" object")
    if doc["kind"] == "video" and not (isinstance(doc.get("fps"), int) and doc["fps"] > 0):
        raise bad("a video model needs a positive integer \"fps\"")
    try:
        call_defaults_document(doc.get("pipeline", ""), doc["call"], doc.get("fps"))
    except ValueError as exc:
        raise bad(str(exc)) from None
    index = folder / "model_index.json"
    if index.is_file():
        cls = json.loads(index.read_text(encoding="utf-8")).get("_class_name")
        if doc.get("pipeline") != cls:
            raise bad(f"written for {doc.get('pipeline')!r}, but the folder holds a {cls}")
    return doc
