"""What a non-editable install ships: every Python package and the embedded models' folders."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_package_is_listed_for_the_wheel():
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(setuptools["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in ROOT.glob("spectrum_c*/**/__init__.py")}
    assert found and found <= listed, f"missing from [tool.setuptools] packages: {sorted(found - listed)}"
    assert "embedded/**/*" in setuptools["package-data"]["spectrum_core.models"]


def test_the_cli_starts_without_importing_torch_or_diffusers():
    """`spectrum --help`, `spectrum presets` and bad-input errors must not wait seconds for torch and
    diffusers: the package resolves its public names lazily, requests are validated by
    ``spectrum_core.app.request`` (no torch), and the commands import the heavy modules when they run a
    model. The public names still resolve."""
    import subprocess
    import sys

    code = ("import sys, spectrum_cli.main; heavy = sorted(m for m in ('torch', 'diffusers', 'transformers') "
            "if m in sys.modules); print(','.join(heavy) or 'none')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "none", out
    for argv in (["presets"], ["gen", "a purple dog"], ["gen", "a red circle on a navy background", "--nfe", "99"]):
        code = ("import sys; from typer.testing import CliRunner; from spectrum_cli.main import app; "
                f"r = CliRunner().invoke(app, {argv!r}); print(r.exit_code, 'torch' in sys.modules)")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
        assert out == ["0" if argv == ["presets"] else "2", "False"], (argv, out)
    import spectrum_core

    assert set(spectrum_core.__all__) <= set(dir(spectrum_core))
    for name in spectrum_core.__all__:
        assert getattr(spectrum_core, name).__name__ == name
