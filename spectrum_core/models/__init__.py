"""What ships or is built locally: the embedded trained models (`embedded/`) with their prompt worlds
(`shapes`, `moving`), and the tiny random pipelines of every family (`tiny`)."""

from pathlib import Path

EMBEDDED_DIR = Path(__file__).resolve().parent / "embedded"
"""Folder of the shipped diffusers pipelines (`embedded/shapes`, `embedded/moving`)."""
