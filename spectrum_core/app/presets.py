"""Model presets: what to load and how to call it, one TOML file per model.

A preset says where the weights come from (`source`), which diffusers pipeline class loads them,
the dtype, the default call (steps, size, frames, fps, guidance, extra keyword arguments), scheduler
overrides, and the Spectrum defaults for that model (docs/method.md#defaults). The shipped presets live in the
`spectrum_presets` package (the repository's `presets/` folder); a user can load any other file with
`load_preset_file`, or build one from a local diffusers folder with `preset_for_model_dir`.

`source` is one of:
- a hub id, e.g. ``"black-forest-labs/FLUX.1-dev"``, loaded with ``from_pretrained`` from the local
  Hugging Face cache;
- ``"tiny:FAMILY"``, a tiny random model built by `spectrum_core.models.tiny` on first use;
- ``"embedded:NAME"``, a model folder shipped inside this package (`spectrum_core/models/embedded/NAME`);
- a path to a local diffusers folder (absolute, or relative to the preset file).
"""

from __future__ import annotations

import json
import math
import tomllib
from dataclasses import dataclass, field, fields, replace
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from ..hooks.families import class_labels, label_ids, variant, variant_for_model_index, variant_names
from ..method.config import SpectrumConfig

PRESET_PACKAGE = "spectrum_presets"
from ..models import EMBEDDED_DIR, PROMPT_WORLDS, prompt_world

# The model `spectrum gen` uses when --model is not given: the embedded trained model, which ships with
# the package and runs anywhere in about a second.
DEFAULT_MODEL = "shapes"

KINDS = ("image", "video")
DTYPES = ("float32", "bfloat16", "float16")
METHODS = ("spectrum", "taylor", "reuse", "linear", "none")

class InputError(ValueError):
    """Bad input, as data: `field` names the setting at fault (a knob of `build_job`, or `model`,
    `preset_file`, `model_path`, ...), `value` is what was given and `expected` what would do. Messages
    name settings in backticks (`nfe`), never as command-line flags, so each front end can word them its
    own way (the CLI turns `nfe` into --nfe)."""

    def __init__(self, message: str, *, field: str | None = None, value: Any = None, expected: str | None = None):
        super().__init__(message)
        self.field, self.value, self.expected = field, value, expected


class PresetError(InputError):
    """A preset name, file or folder that cannot be used; the message says what to do instead."""


# Preset/CLI method name -> SpectrumConfig.forecaster ("none" runs the plain pipeline).
FORECASTER_FOR_METHOD: Mapping[str, str] = MappingProxyType(
    {"spectrum": "chebyshev", "taylor": "taylor", "reuse": "reuse", "linear": "linear"}
)


def _reference_config() -> SpectrumConfig:
    return SpectrumConfig()  # w=0.5, the reference scripts' (docs/method.md#defaults); the paper's is 1.0


@dataclass(frozen=True)
class SpectrumDefaults:
    """Spectrum's settings for one model (docs/method.md#defaults); CLI flags override them one by one.

    The TOML ``[spectrum]`` table holds ``method`` ("spectrum" = Chebyshev forecaster, "taylor", "reuse",
    or "none" for the plain pipeline) and any ``SpectrumConfig`` field but ``forecaster``, which the
    method sets. Unset fields take the reference scripts' values: M=4, λ=0.1, w=0.5, N=2, α=0.75, W=5.
    """

    method: str = "spectrum"
    config: SpectrumConfig = field(default_factory=_reference_config)

    def to_dict(self) -> dict[str, Any]:
        knobs = {k: v for k, v in self.config.to_dict().items() if k != "forecaster"}
        return {"method": self.method, **knobs}


# What each annotation of Preset's fields accepts (checked before anything else, so a preset file with
# `steps = "abc"` says so instead of failing on a comparison).
_TYPE_NAMES = {"str": ("text", (str,)), "int": ("a whole number", (int,)), "float": ("a finite number", (int, float)),
               "bool": ("true or false", (bool,)), "Mapping[str, Any]": ("a table", (Mapping,))}


def _check_type(where: str, key: str, annotation: Any, value: Any) -> None:
    parts = [p.strip() for p in str(annotation).split("|")]
    if value is None and "None" in parts:
        return
    accepted = [_TYPE_NAMES[p] for p in parts if p in _TYPE_NAMES]
    if not accepted:  # SpectrumDefaults: built here, not read from a file
        return
    ok = any((bool in types) if isinstance(value, bool) else isinstance(value, types) for _, types in accepted)
    if ok and isinstance(value, float) and not math.isfinite(value):
        ok = False
    if not ok:
        expected = " or ".join(text for text, _ in accepted) + (" or unset" if "None" in parts else "")
        raise PresetError(f"{where}: {key} must be {expected}, got {value!r}.", field=key, value=value,
                          expected=expected)


@dataclass(frozen=True)
class Preset:
    """One model: where its weights are, how to load it, how to call it, and Spectrum's defaults."""

    name: str
    source: str
    pipeline: str
    family: str
    kind: str = "image"
    dtype: str = "bfloat16"
    description: str = ""
    steps: int = 50
    height: int = 1024
    width: int = 1024
    frames: int | None = None        # video only
    fps: int | None = None           # video only
    guidance: float | None = None    # None = the pipeline's own default
    guidance_kwarg: str = "guidance_scale"  # the call argument `guidance` sets (FLUX true CFG: "true_cfg_scale")
    size_multiple: int = 16          # height and width must be multiples of this
    frame_step: int = 4              # video: frames must be frame_step*k + 1
    vae_dtype: str | None = None     # e.g. Wan's VAE in float32 while the transformer runs in bf16
    vae_tiling: bool = False         # video: decode in tiles to bound memory
    fixed_size: bool = False         # trained at one size (and length) only: other sizes are refused
    cpu_threads: int | None = None   # torch threads on the CPU (the CLI applies it); None = torch's default
    prompt_grammar: str | None = None  # a closed-vocabulary model's grammar (PROMPT_WORLDS): prompts are checked
    call: Mapping[str, Any] = field(default_factory=dict)       # extra pipeline call kwargs
    scheduler: Mapping[str, Any] = field(default_factory=dict)  # {"class": ..., **config overrides}
    spectrum: SpectrumDefaults = field(default_factory=SpectrumDefaults)
    origin: str = ""                 # where the preset was read from (for messages)

    def __post_init__(self) -> None:
        where = f"preset '{self.name}'" + (f" ({self.origin})" if self.origin else "")
        for f in fields(self):
            _check_type(where, f.name, f.type, getattr(self, f.name))
        if self.kind not in KINDS:
            raise PresetError(f"{where}: kind must be one of {', '.join(KINDS)}, got '{self.kind}'.")
        for key in ("dtype", "vae_dtype"):
            value = getattr(self, key)
            if value is not None and value not in DTYPES:
                raise PresetError(f"{where}: {key} must be one of {', '.join(DTYPES)}, got '{value}'.")
        if self.spectrum.method not in METHODS:
            raise PresetError(
                f"{where}: spectrum.method must be one of {', '.join(METHODS)}, got '{self.spectrum.method}'."
            )
        if self.prompt_grammar is not None and self.prompt_grammar not in PROMPT_WORLDS:
            raise PresetError(f"{where}: prompt_grammar must be one of {', '.join(PROMPT_WORLDS)}, "
                              f"got '{self.prompt_grammar}'.")
        if self.family not in variant_names():
            raise PresetError(f"{where}: family must be one of {', '.join(variant_names())}, got '{self.family}'.")
        if self.kind == "video" and (self.frames is None or self.fps is None):
            raise PresetError(f"{where}: a video preset needs `frames` and `fps`.")
        if self.kind == "image" and self.frames is not None:
            raise PresetError(f"{where}: an image preset cannot set `frames`.")
        if self.cpu_threads is not None and self.cpu_threads < 1:
            raise PresetError(f"{where}: cpu_threads must be a positive integer.")
        for key in ("steps", "height", "width", "size_multiple", "frame_step"):
            if getattr(self, key) < 1:
                raise PresetError(f"{where}: {key} must be a positive integer.")
        # Freeze the mappings so a shared preset cannot be mutated through them.
        object.__setattr__(self, "call", MappingProxyType(dict(self.call)))
        object.__setattr__(self, "scheduler", MappingProxyType(dict(self.scheduler)))

    @property
    def experts(self) -> int:
        """How many denoisers the family's pipeline carries (Wan2.2 A14B: two, each with its own warm-up)."""
        return variant(self.family)[1].experts

    @property
    def is_video(self) -> bool:
        return self.kind == "video"

    @property
    def extension(self) -> str:
        """File extension of this model's outputs."""
        return ".mp4" if self.is_video else ".png"

    @property
    def source_kind(self) -> str:
        """"tiny", "embedded", "path" or "hub"."""
        if self.source.startswith("tiny:"):
            return "tiny"
        if self.source.startswith("embedded:"):
            return "embedded"
        if self.source.startswith(("/", "./", "../", "~")) or Path(self.source).is_dir():
            return "path"
        return "hub"

    @property
    def hub_id(self) -> str | None:
        return self.source if self.source_kind == "hub" else None

    def local_dir(self) -> Path | None:
        """The folder holding the weights when they ship with or sit beside the preset."""
        if self.source_kind == "embedded":
            return EMBEDDED_DIR / self.source.split(":", 1)[1]
        if self.source_kind == "path":
            return Path(self.source).expanduser()
        return None

    def check_prompt(self, prompt: str) -> None:
        """Raise ValueError (naming the unknown word and the vocabulary) if this model cannot read `prompt`.
        The embedded models have a closed vocabulary; a class-conditional model (DiT) reads one of its class
        labels, checked here when its model_index.json is on disk (before any weight loads; else the runner
        checks at the call); any prompt passes for the others."""
        if self.prompt_grammar is not None:
            prompt_world(self.prompt_grammar).parse_prompt(prompt)
        if variant(self.family)[1].prompt_argument == "class_labels":
            labels = self.class_labels()
            if labels is not None:
                label_ids(labels, prompt)

    def class_labels(self) -> dict[str, int] | None:
        """A class-conditional model's labels, read from its model_index.json's ``id2label`` (the tiny
        folder, a local folder, or the hub cache: nothing is downloaded); None when that file is not there."""
        if self.source_kind == "tiny":
            from ..models.tiny import tiny_pipeline_dir

            index: Any = tiny_pipeline_dir(self.source.split(":", 1)[1]) / "model_index.json"
        elif self.source_kind == "hub":
            from huggingface_hub import try_to_load_from_cache

            index = try_to_load_from_cache(self.source, "model_index.json")
            if not isinstance(index, str):
                return None
        else:
            index = self.local_dir() / "model_index.json"
        index = Path(index)
        if not index.is_file():
            return None
        return class_labels(json.loads(index.read_text(encoding="utf-8")).get("id2label"))

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("spectrum", "origin")}
        out["call"] = dict(self.call)
        out["scheduler"] = dict(self.scheduler)
        out["spectrum"] = self.spectrum.to_dict()
        return out


_TOP_KEYS = {f.name for f in fields(Preset)} - {"spectrum", "origin", "call", "scheduler", "name"}
_SPECTRUM_KEYS = {"method"} | {f.name for f in fields(SpectrumConfig)} - {"forecaster"}


def preset_from_dict(data: Mapping[str, Any], name: str, origin: str = "") -> Preset:
    """Build a Preset from parsed TOML; unknown keys are an error (typos should not pass silently)."""
    data = dict(data)
    where = f"preset '{name}'" + (f" ({origin})" if origin else "")
    for table in ("spectrum", "call", "scheduler"):
        if not isinstance(data.get(table, {}), Mapping):
            raise PresetError(f"{where}: [{table}] must be a table, got {data[table]!r}.", field=table,
                              value=data[table], expected="a table")
    spectrum = dict(data.pop("spectrum", {}))
    call = dict(data.pop("call", {}))
    scheduler = dict(data.pop("scheduler", {}))
    name = data.pop("name", name)
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise PresetError(f"{where}: unknown key(s) {', '.join(unknown)}. Valid: {', '.join(sorted(_TOP_KEYS))}.")
    unknown = sorted(set(spectrum) - _SPECTRUM_KEYS)
    if unknown:
        raise PresetError(
            f"{where}: unknown [spectrum] key(s) {', '.join(unknown)}. Valid: {', '.join(sorted(_SPECTRUM_KEYS))}."
        )
    for key in ("source", "pipeline", "family"):
        if key not in data:
            raise PresetError(f"{where}: missing required key `{key}`.")
    if scheduler and "class" not in scheduler:
        raise PresetError(f"{where}: [scheduler] needs a `class` (e.g. \"UniPCMultistepScheduler\").")
    method = spectrum.pop("method", "spectrum")
    try:
        config = _reference_config().replace(forecaster=FORECASTER_FOR_METHOD.get(method, "chebyshev"), **spectrum)
    except (ValueError, TypeError) as exc:
        raise PresetError(f"{where}: [spectrum] {exc}") from None
    try:
        return Preset(name=name, origin=origin, call=call, scheduler=scheduler,
                      spectrum=SpectrumDefaults(method, config), **data)
    except TypeError as exc:  # wrong value types that dataclass construction trips on
        raise PresetError(f"{where}: {exc}") from None


def load_preset_file(path: str | Path) -> Preset:
    """Read a preset from a TOML file anywhere on disk. A relative `source` path is resolved
    against the file's folder."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise PresetError(f"Preset file '{path}' does not exist.", field="preset_file", value=str(path),
                          expected="an existing TOML file")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PresetError(f"Preset file '{path}' is not valid TOML: {exc}") from None
    source = data.get("source")
    if isinstance(source, str) and source.startswith(("./", "../")):
        data["source"] = str((path.parent / source).resolve())
    return preset_from_dict(data, name=path.stem, origin=str(path))


def _shipped_files() -> dict[str, Any]:
    root = resources.files(PRESET_PACKAGE)
    return {p.name[: -len(".toml")]: p for p in root.iterdir() if p.name.endswith(".toml")}


def preset_names() -> list[str]:
    """Names of the shipped presets, hub models first then tiny/embedded ones, alphabetical within."""
    presets = [load_preset(n) for n in _shipped_files()]
    return [p.name for p in sorted(presets, key=lambda p: (p.source_kind != "hub", p.name))]


def list_presets() -> list[Preset]:
    return [load_preset(n) for n in preset_names()]


def load_preset(name: str) -> Preset:
    """A shipped preset by name; PresetError lists the valid names otherwise."""
    files = _shipped_files()
    if name not in files:
        raise PresetError(
            f"Unknown model '{name}'. Choose from: {', '.join(sorted(files))}; or give a `preset_file` or a "
            "`model_path` of your own.", field="model", value=name, expected=f"one of {', '.join(sorted(files))}"
        )
    text = files[name].read_text(encoding="utf-8")
    return preset_from_dict(tomllib.loads(text), name=name, origin=f"{PRESET_PACKAGE}/{name}.toml")


def read_model_index(model_dir: str | Path) -> dict[str, Any]:
    """A diffusers folder's model_index.json (its `_class_name` names the pipeline class)."""
    index = Path(model_dir).expanduser() / "model_index.json"
    if not index.is_file():
        raise PresetError(
            f"'{model_dir}' is not a diffusers model folder (no model_index.json). "
            "Use as `model_path` the folder `save_pretrained` wrote or `hf download` filled.", field="model_path",
            value=str(model_dir), expected="a diffusers folder"
        )
    try:
        data = json.loads(index.read_text(encoding="utf-8"))
        data["_class_name"]
    except (json.JSONDecodeError, KeyError, TypeError):
        raise PresetError(f"'{index}' has no `_class_name`; is it a diffusers pipeline folder?") from None
    return data


OWN_PRESET_FILE = "spectrum_preset.toml"


def _own_preset(model_dir: Path) -> Preset | None:
    """The preset of a folder spectrum made: one of the shipped embedded models' folders, or a folder
    carrying `spectrum_preset.toml` (a preset file whose `source` is the folder itself)."""
    own = model_dir / OWN_PRESET_FILE
    if own.is_file():
        try:
            data = tomllib.loads(own.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise PresetError(f"'{own}' is not valid TOML: {exc}", field="model_path", value=str(model_dir),
                              expected="a valid preset file") from None
        data["source"] = str(model_dir)
        return preset_from_dict(data, name=model_dir.name, origin=str(model_dir / OWN_PRESET_FILE))
    for name in _shipped_files():
        preset = load_preset(name)
        folder = preset.local_dir() if preset.source_kind == "embedded" else None
        if folder is not None and folder.resolve() == model_dir:
            return replace(preset, source=str(model_dir), origin=str(model_dir))
    return None


def preset_for_model_dir(model_dir: str | Path, base: Preset | None = None) -> Preset:
    """A preset for a local diffusers folder. With `base`, keep its defaults and swap the weights;
    without, borrow the defaults of the shipped preset of the folder's pipeline family."""
    model_dir = Path(model_dir).expanduser().resolve()
    index = read_model_index(model_dir)
    cls = index["_class_name"]
    if base is None:
        own = _own_preset(model_dir)
        if own is not None:  # a folder spectrum made knows how it is called
            return own
        found = variant_for_model_index(index)
        if found is None or found.preset not in _shipped_files():
            supported = sorted({variant(n)[1].pipeline for n in variant_names() if variant(n)[1].preset in _shipped_files()})
            raise PresetError(
                f"'{model_dir}' holds a {cls}; supported without a preset: {', '.join(supported)}. "
                "Name a `model` or a `preset_file` to say how to run it.", field="model_path", value=str(model_dir),
                expected="a folder of a supported pipeline"
            )
        base = load_preset(found.preset)
        return replace(base, name=model_dir.name, source=str(model_dir), pipeline=cls,
                       description=f"local {cls} folder (defaults of '{base.name}')", origin=str(model_dir))
    return replace(base, source=str(model_dir), pipeline=cls, origin=str(model_dir))
