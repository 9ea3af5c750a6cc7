"""The `spectrum` command line: a thin Typer layer over `spectrum_core`, holding no algorithm.

It owns argument handling, rich rendering and exit codes only: main (wiring: the app, --version,
-q), options (every option, the Spectrum ones generated from SpectrumConfig), context (model choice
and loading), gen (gen, ab), batch, presets, grid, bench, calibrate (commands over the library),
render (everything shown on stderr, and the presets table on stdout) and errors (library errors,
which carry field/value/expected, worded as flags; one line, one exit code).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("spectrum-diffusion")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0+unknown"
