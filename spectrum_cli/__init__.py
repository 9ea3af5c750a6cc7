"""The `spectrum` command line: a thin Typer layer over `spectrum_core`."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("spectrum-diffusion")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0+unknown"
