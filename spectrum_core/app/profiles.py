"""Calibration profiles: which real steps and forecaster a model should use, found and applied by match.

A profile is a small JSON file that ``spectrum calibrate`` writes (see ``app.calibrate``) for one model,
sampler, step count, guidance and output size, with one entry per budget (number of real passes):

    {"kind": "spectrum-profile", "format": 1, "id": "shapes-s50-g2-3f9c0a1b",
     "match": {"model": "<fingerprint>", "sampler": "...", "steps": 50, "guidance": 2.0,
               "height": 64, "width": 64, "frames": null},
     "budgets": {"10": {"real_steps": [[0, 1, ...]], "config": {"forecaster": "chebyshev", ...},
                        "psnr": ..., "reference_psnr": ..., "gain_db": ...}, ...},
     "calibration": {...how it was measured, runs, seconds...}}

How a request finds one (``resolve``): the ``profile`` knob is ``None`` (automatic), ``"none"`` (the
paper's reference schedule) or a path. Automatic lookup reads the shipped profiles
(``spectrum_core/models/embedded/<model>/profiles/``, packaged with the models) and the user's (``$SPECTRUM_PROFILES``, else ``~/.cache/spectrum/profiles``) and
applies the one whose ``match`` equals the request's on every field *and* has an entry for the request's
budget. Nothing is ever guessed: another step count, guidance, size or budget means the reference, and the
job says so (``Job.profile == "reference"``). An explicit path that does not match is an error naming the
field that differs.

A profile replaces the schedule and the forecaster, so it applies to the default method (``spectrum``)
when no schedule or forecaster knob was given (``alpha``, ``interval``, ``real_steps``, ``window``,
``warmup``, ``force_last``, ``blend``, ``degree``, ``ridge``, ``linear_cap``, ``taylor_order``,
``tau_horizon``): such a knob asks for the reference method as given. ``nfe`` selects the budget; without
it the budget is the count of real passes the preset's own schedule makes (14 of 50 at α = 0.75). With
several experts (Wan2.2) a budget must be given as ``nfe``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

from ..method.config import SpectrumConfig
from ..method.schedule import plan_config
from .presets import InputError, Preset

__all__ = ["ProfileError", "PROFILE_KIND", "shipped_dirs", "user_dir", "model_fingerprint", "match_key",
           "resolve", "load_profile", "write_profile", "make_profile", "find_profiles", "profile_config",
           "CONFLICTING_KNOBS", "REFERENCE", "profiled_config"]

PROFILE_KIND = "spectrum-profile"
PROFILE_FORMAT = 1
REFERENCE = "reference"

def shipped_dirs() -> tuple[Path, ...]:
    """The profiles that ship with the package: ``spectrum_core/models/embedded/<model>/profiles/``."""
    from ..models import EMBEDDED_DIR

    return tuple(sorted(Path(EMBEDDED_DIR).glob("*/profiles")))

CONFLICTING_KNOBS = ("alpha", "interval", "real_steps", "window", "warmup", "force_last", "blend", "degree",
                     "ridge", "linear_cap", "taylor_order", "tau_horizon")
_CONFIG_KEYS = ("forecaster", "blend", "linear_cap", "taylor_order", "degree", "ridge", "tau_horizon")
_MATCH_FIELDS = ("model", "sampler", "steps", "guidance", "height", "width", "frames")


class ProfileError(InputError):
    """A profile that cannot be read or does not fit the request; ``field`` names what differs."""


def user_dir() -> Path:
    """Where ``spectrum calibrate`` writes profiles and automatic lookup reads the user's."""
    env = os.environ.get("SPECTRUM_PROFILES")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "spectrum" / "profiles"


def model_fingerprint(preset: Preset) -> str:
    """What identifies the weights a profile was measured on, without loading them: for a local folder
    (embedded or a path) a hash of its configs (model_index, scheduler, every transformer's config) and of
    its weight files' names and sizes; for a tiny model its family; for a hub model its repository id."""
    kind = preset.source_kind
    if kind == "tiny" or kind == "hub":
        return f"{kind}:{preset.source.split(':', 1)[-1]}"
    folder = preset.local_dir()
    digest = hashlib.sha256()
    if folder is None or not folder.is_dir():
        return f"{kind}:{preset.source}"
    for path in sorted(folder.rglob("*")):
        if not path.is_file():
            continue
        rel = path.relative_to(folder).as_posix()
        if path.suffix == ".json" and (rel == "model_index.json" or rel.startswith(("scheduler/", "transformer"))):
            digest.update(rel.encode() + b"\0" + path.read_bytes() + b"\0")
        elif path.suffix in (".safetensors", ".bin", ".pt", ".gguf"):
            digest.update(f"{rel}\0{path.stat().st_size}\0".encode())
    return f"sha256:{digest.hexdigest()[:16]}"


def _sampler(preset: Preset) -> str:
    overrides = dict(preset.scheduler)
    return json.dumps(overrides, sort_keys=True) if overrides else "model default"


def match_key(preset: Preset, steps: int, guidance: float | None, height: int, width: int,
              frames: int | None) -> dict[str, Any]:
    """The fields a profile must equal to apply to a request."""
    return {"model": model_fingerprint(preset), "sampler": _sampler(preset), "steps": int(steps),
            "guidance": None if guidance is None else float(guidance), "height": int(height), "width": int(width),
            "frames": None if frames is None else int(frames)}


def make_profile(preset: Preset, key: Mapping[str, Any], measured: Mapping[str, Any]) -> dict[str, Any]:
    """A profile from ``app.calibrate.calibrate``'s result."""
    guidance = key["guidance"]
    gtag = "" if guidance is None else f"-g{guidance:g}"
    ident = f"{preset.name}-s{key['steps']}{gtag}-{hashlib.sha256(json.dumps(dict(key), sort_keys=True).encode()).hexdigest()[:8]}"
    return {"kind": PROFILE_KIND, "format": PROFILE_FORMAT, "id": ident, "preset": preset.name,
            "match": dict(key), "budgets": dict(measured["budgets"]), "calibration": dict(measured["calibration"])}


def _check_profile(data: Any, where: str) -> dict[str, Any]:
    if not isinstance(data, dict) or data.get("kind") != PROFILE_KIND:
        raise ProfileError(f"{where} is not a spectrum profile (no \"kind\": \"{PROFILE_KIND}\")", field="profile",
                           value=where, expected="a file written by spectrum calibrate")
    if data.get("format") != PROFILE_FORMAT:
        raise ProfileError(f"{where} has profile format {data.get('format')!r}; this spectrum reads format "
                           f"{PROFILE_FORMAT}: calibrate again", field="profile", value=where,
                           expected=f"format {PROFILE_FORMAT}")
    match, budgets = data.get("match"), data.get("budgets")
    if not isinstance(data.get("id"), str) or not isinstance(match, dict) or set(match) != set(_MATCH_FIELDS) \
            or not isinstance(budgets, dict) or not budgets:
        raise ProfileError(f"{where} is incomplete (it needs id, match with {', '.join(_MATCH_FIELDS)}, and "
                           "budgets)", field="profile", value=where, expected="a complete profile")
    for k, entry in budgets.items():
        try:
            profile_config(SpectrumConfig(), data, int(k))
        except (ValueError, TypeError, KeyError) as exc:
            raise ProfileError(f"{where}: budget {k} is not valid: {exc}", field="profile", value=where,
                               expected="real_steps and forecaster settings spectrum accepts") from None
    return data


def load_profile(path: str | Path) -> dict[str, Any]:
    """Read and check a profile file."""
    path = Path(path).expanduser()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ProfileError(f"no profile file at {str(path)!r}; give a file written by spectrum calibrate, or "
                           "`none` for the reference schedule", field="profile", value=str(path),
                           expected="an existing profile file or none") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProfileError(f"cannot read the profile {str(path)!r}: {exc}", field="profile", value=str(path),
                           expected="a JSON profile file") from None
    return _check_profile(data, repr(str(path)))


def write_profile(profile: Mapping[str, Any], path: str | Path) -> Path:
    """Write atomically (a temporary file renamed into place); strict JSON."""
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        tmp.write_text(json.dumps(profile, indent=1, allow_nan=False) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def find_profiles(dirs: Iterable[Path] | None = None) -> list[tuple[Path, dict[str, Any]]]:
    """Every readable profile in the shipped and the user's folder (unreadable files are skipped here:
    automatic lookup never fails a run because of a stray file)."""
    out = []
    for folder in dirs if dirs is not None else (*shipped_dirs(), user_dir()):
        if not Path(folder).is_dir():
            continue
        for path in sorted(Path(folder).glob("*.json")):
            try:
                out.append((path, load_profile(path)))
            except ProfileError:
                continue
    return out


def profile_config(base: SpectrumConfig, profile: Mapping[str, Any], budget: int) -> SpectrumConfig:
    """``base`` with the profile's real steps and forecaster for ``budget`` (KeyError if it has none)."""
    entry = profile["budgets"][str(int(budget))]
    settings = {k: v for k, v in dict(entry.get("config", {})).items() if k in _CONFIG_KEYS}
    steps = tuple(tuple(int(s) for s in segment) for segment in entry["real_steps"])
    return base.replace(real_steps=steps, nfe=int(budget), **settings)


def _differs(key: Mapping[str, Any], match: Mapping[str, Any]) -> str | None:
    for name in _MATCH_FIELDS:
        a, b = key.get(name), match.get(name)
        if isinstance(a, float) or isinstance(b, float):
            if a is None or b is None or not math.isclose(float(a), float(b), rel_tol=0, abs_tol=1e-9):
                return name
        elif a != b:
            return name
    return None


def _budget(preset: Preset, config: SpectrumConfig, steps: int) -> int | None:
    if config.nfe is not None:
        return config.nfe
    if preset.experts != 1:
        return None
    return sum(p.nfe for p in plan_config(config, (steps,)))


def resolve(preset: Preset, config: SpectrumConfig | None, steps: int, guidance: float | None,
            profile: str | Path | None = None, *, height: int, width: int, frames: int | None = None,
            given: Iterable[str] = (), method: str = "spectrum",
            search: Iterable[Path] | None = None) -> tuple[SpectrumConfig | None, str]:
    """The config a request runs with and the name of what was applied: (config with the profile's
    real steps and forecaster, profile id), or (config unchanged, "reference").

    ``profile``: None = automatic (a matching profile for this budget if there is one), "none" = the
    reference, or a path (must match: ProfileError otherwise). ``given``: the knob names the request set
    (a schedule or forecaster knob keeps the reference; with an explicit path it is an error).
    """
    if isinstance(profile, str) and profile.strip().lower() == "none":
        return config, REFERENCE
    conflicts = [k for k in given if k in CONFLICTING_KNOBS]
    if config is None or method != "spectrum":
        if profile is not None:
            raise ProfileError(f"a profile sets Spectrum's schedule and forecaster; method {method} does not use "
                               "one: drop `profile` or use method spectrum", field="profile", value=str(profile),
                               expected="unset, or method spectrum")
        return config, REFERENCE
    key = match_key(preset, steps, guidance, height, width, frames)
    budget = _budget(preset, config, steps)
    if profile is not None:
        if conflicts:
            raise ProfileError(f"`{conflicts[0]}` and `profile` both set the schedule or forecaster: drop one "
                               "(`profile` none keeps the reference)", field=conflicts[0],
                               value=None, expected="unset when profile is given")
        data = load_profile(profile)
        field = _differs(key, data["match"])
        if field is not None:
            raise ProfileError(
                f"the profile {str(profile)!r} was calibrated for {field} {data['match'][field]!r}, this request "
                f"has {key[field]!r}: calibrate for it (spectrum calibrate) or use `profile` none",
                field="profile" if field in ("model", "sampler") else field, value=key[field],
                expected=repr(data["match"][field]))
        if budget is None or str(budget) not in data["budgets"]:
            have = ", ".join(sorted(data["budgets"], key=int))
            raise ProfileError(f"the profile {str(profile)!r} has budgets {have} (real passes), this request "
                               f"{'none (give nfe)' if budget is None else budget}: choose one of them with nfe",
                               field="nfe", value=budget, expected=f"one of {have}")
        return profile_config(config, data, budget), data["id"]
    if conflicts or budget is None:
        return config, REFERENCE
    for _path, data in find_profiles(search):
        if _differs(key, data["match"]) is None and str(budget) in data["budgets"]:
            return profile_config(config, data, budget), data["id"]
    return config, REFERENCE


def profiled_config(preset: Preset | str, profile: str | Path | None = None, *, config: SpectrumConfig | None = None,
                    steps: int | None = None, guidance: float | None = None, height: int | None = None,
                    width: int | None = None, frames: int | None = None, search: Iterable[Path] | None = None,
                    **overrides: Any) -> tuple[SpectrumConfig, str]:
    """The SpectrumConfig a pipeline called the preset's way should run with, for ``apply_spectrum``, and
    the name of the profile it came from ("reference" when none matched).

    ``apply_spectrum`` applies exactly the config it is given (the hooks cannot see the call's guidance or
    size, which a profile is matched on); this is the explicit step that looks the profile up, with the same
    rule as ``build_job``: the preset's steps, guidance and size unless given, ``profile`` None (automatic),
    "none" or a path, and keyword ``overrides`` on the preset's Spectrum config (``nfe=10``; a schedule or
    forecaster knob keeps the reference). ``search``: the folders to look in (default: shipped and user's)::

        config, used = profiled_config("shapes", nfe=10)   # the shipped calibration: 50 steps, 64x64
        handle = apply_spectrum(pipe, config)
    """
    from .presets import load_preset

    if isinstance(preset, str):
        preset = load_preset(preset)
    base = (config if config is not None else preset.spectrum.config)
    base = base.replace(**overrides) if overrides else base
    return resolve(preset, base, steps if steps is not None else preset.steps,
                   preset.guidance if guidance is None else guidance, profile,
                   height=preset.height if height is None else height, width=preset.width if width is None else width,
                   frames=(preset.frames if frames is None else frames) if preset.is_video else None,
                   given=overrides.keys(), method="spectrum", search=search)
