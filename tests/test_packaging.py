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
    assert "embedded/**/*" in setuptools["package-data"]["spectrum_core"]
