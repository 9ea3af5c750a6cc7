"""What ships or is built locally: the embedded trained models (`embedded/`) with their prompt worlds
(`shapes`, `moving`), and the tiny random pipelines of every family (`tiny`)."""

from pathlib import Path

EMBEDDED_DIR = Path(__file__).resolve().parent / "embedded"
"""Folder of the shipped diffusers pipelines (`embedded/shapes`, `embedded/moving`)."""

PROMPT_WORLDS = ("shapes", "moving")
"""The embedded models' closed prompt languages (a preset's ``prompt_grammar``)."""


def prompt_world(name: str):
    """The module that defines an embedded model's prompt grammar (``parse_prompt``), its evaluation
    prompts and its pipeline call. Imported on first use: numpy only, no torch."""
    from . import moving, shapes

    worlds = {"shapes": shapes, "moving": moving}
    if name not in worlds:
        raise KeyError(f"unknown prompt world {name!r}; valid: {', '.join(PROMPT_WORLDS)}")
    return worlds[name]
