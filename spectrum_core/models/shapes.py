"""The "shapes" world of spectrum's embedded text-to-image model.

spectrum ships a tiny, *trained* FLUX-architecture model (``spectrum_core/models/embedded/shapes/``) so that
``spectrum gen`` works offline on a CPU and so that fidelity benchmarks have a real sampling
trajectory (random-weight models barely move between steps). This module is everything about that
model's world that does not need diffusers:

* the vocabulary and the prompt grammar, with :func:`parse_prompt` (a clear ``ValueError`` naming the
  unknown word and the vocabulary);
* the procedural renderer that makes the training set (:func:`render`, :func:`sample_scene`);
* pixel-statistics evaluators that say whether an image shows the prompt (:func:`analyse_image`,
  :func:`check_image`): background colour, shape colour and shape class.

Grammar (case-insensitive, extra spaces and a trailing ``.`` ignored)::

    prompt     := article COLOUR SHAPE "on" article BACKGROUND "background"
    article    := "a" | "an"
    COLOUR     := red | orange | yellow | green | blue | purple | pink | white
    SHAPE      := circle | square | triangle
    BACKGROUND := navy | black | white | gray | brown      ("grey" is accepted as "gray")

e.g. ``"a red circle on a navy background"``. The one excluded combination is a white shape on a
white background (invisible). The model's tokenizers know exactly the words above (plus the empty
prompt, used for classifier-free guidance); a word outside them maps to the tokenizers' ``[UNK]``
token and gives an unspecified picture, so callers should run :func:`parse_prompt` first.

Shape class criterion (why it is measurable): every shape is drawn axis-aligned and fully inside the
image, so the fraction of its bounding box that it fills identifies it — a square fills 1.0, a
circle pi/4 ~ 0.785, an upright triangle (base on the box's bottom edge, apex at the top) 0.5.
:func:`classify_fill` thresholds that ratio at 0.64 and 0.89.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

IMAGE_SIZE = 64
"""Side of the model's images in pixels (the model was trained at this size only)."""

# Shape colours (RGB). Picked to be far apart from each other and from every background.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "orange": (255, 140, 0),
    "yellow": (250, 220, 30),
    "green": (30, 170, 60),
    "blue": (40, 100, 240),
    "purple": (140, 50, 200),
    "pink": (255, 120, 190),
    "white": (245, 245, 245),
}
BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "navy": (15, 25, 80),
    "black": (0, 0, 0),
    "white": (255, 255, 255),
    "gray": (128, 128, 128),
    "brown": (110, 65, 30),
}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
SYNONYMS: dict[str, str] = {"grey": "gray"}
ARTICLES = ("a", "an")
GRAMMAR_WORDS = ("on", "background")

# Fill ratio of the bounding box of each shape, and the thresholds that separate them.
FILL_RATIO = {"square": 1.0, "circle": float(np.pi / 4), "triangle": 0.5}
FILL_THRESHOLDS = (0.64, 0.89)  # < 0.64 triangle, < 0.89 circle, else square

# Size of a shape (side of its bounding box) in pixels at IMAGE_SIZE, and margin to the border.
MIN_SIZE, MAX_SIZE, MARGIN = 16, 40, 3

GRAMMAR = "a <colour> <shape> on a <background> background"


def vocabulary() -> list[str]:
    """Every word the model's tokenizers know, in a fixed order (the tokenizers' ids follow it)."""
    words: list[str] = []
    for w in (*ARTICLES, *COLOURS, *SHAPES, *GRAMMAR_WORDS, *BACKGROUNDS, *SYNONYMS):
        if w not in words:
            words.append(w)
    return words


def vocab_message(grammar: str = GRAMMAR, **more: tuple[str, ...]) -> str:
    """What a prompt may say, for error messages: the grammar, then the colours, the shapes, any ``more``
    word lists (``Directions=...``, for the video world) and the backgrounds."""
    lists = {"Colours": COLOURS, "Shapes": SHAPES, **more, "Backgrounds": BACKGROUNDS}
    return f"Prompts read '{grammar}'. " + " ".join(f"{name}: {', '.join(words)}." for name, words in lists.items())


def _vocab_message() -> str:
    return vocab_message()


@dataclass(frozen=True)
class Scene:
    """One picture of the dataset: what is drawn and where (pixels, at ``IMAGE_SIZE``)."""

    colour: str
    shape: str
    background: str
    cx: float = IMAGE_SIZE / 2
    cy: float = IMAGE_SIZE / 2
    size: float = 28.0

    @property
    def prompt(self) -> str:
        return make_prompt(self.colour, self.shape, self.background)


def make_prompt(colour: str, shape: str, background: str) -> str:
    """The canonical prompt of a (colour, shape, background) triple."""
    return f"a {colour} {shape} on a {background} background"


def normalise_prompt(prompt: str) -> str:
    """Lower-case, single spaces, no trailing full stop, synonyms replaced (what the tokenizer sees)."""
    words = prompt.strip().rstrip(".").lower().split()
    return " ".join(SYNONYMS.get(w, w) for w in words)


def prompt_words(prompt: str, model: str, vocab: list[str], help_text: str) -> list[str]:
    """The normalised words of ``prompt``, or a ValueError naming any word outside ``vocab``.

    Shared by every embedded model's prompt parser: only the grammar checked afterwards differs.
    """
    if not isinstance(prompt, str):
        raise ValueError(f"The prompt must be a string, got {type(prompt).__name__}.")
    words = normalise_prompt(prompt).split()
    if not words:
        raise ValueError(f"The prompt is empty. {help_text}")
    known = set(vocab)
    unknown = [w for w in words if w not in known]
    if unknown:
        listed = ", ".join(f"'{w}'" for w in dict.fromkeys(unknown))
        raise ValueError(
            f"Unknown word{'s' if len(unknown) > 1 else ''} {listed} in prompt '{prompt}'. "
            f"The {model} model knows only: {', '.join(vocab)}. {help_text}"
        )
    return words


def parse_prompt(prompt: str) -> tuple[str, str, str]:
    """Return ``(colour, shape, background)`` of a prompt, or raise a ValueError that says why not.

    An unknown word is named in the error together with the vocabulary; known words in the wrong
    order get the grammar in the error. The empty prompt is not a valid request (it is only used as
    the negative prompt of classifier-free guidance).
    """
    words = prompt_words(prompt, "shapes", vocabulary(), _vocab_message())
    _, colour, shape, _, _, background, _ = match_grammar(
        prompt, words, (ARTICLES, COLOURS, SHAPES, "on", ARTICLES, BACKGROUNDS, "background"), _vocab_message())
    check_visible(colour, background)
    return colour, shape, background


def match_grammar(prompt: str, words: list[str], pattern: tuple, message: str) -> list[str]:
    """``words`` if they fill ``pattern`` (a literal word, or a collection of allowed words, per slot),
    else a ValueError with the grammar in ``message``."""
    fits = len(words) == len(pattern) and all(
        w == slot if isinstance(slot, str) else w in slot for w, slot in zip(words, pattern))
    if not fits:
        raise ValueError(f"Prompt '{prompt}' does not follow the grammar. {message}")
    return words


def check_visible(colour: str, background: str) -> None:
    """A white shape on a white background is refused: it would be invisible."""
    if colour == background:
        raise ValueError(f"A {colour} shape on a {background} background would be invisible; pick another colour.")


def all_combinations() -> list[tuple[str, str, str]]:
    """Every valid (colour, shape, background) triple, in a fixed order."""
    return [(c, s, b) for b in BACKGROUNDS for c in COLOURS for s in SHAPES if c != b]


def sample_scene(rng: np.random.Generator, image_size: int = IMAGE_SIZE) -> Scene:
    """A random scene: uniform over valid triples, uniform size, uniform position fully inside."""
    combos = all_combinations()
    colour, shape, background = combos[rng.integers(len(combos))]
    scale = image_size / IMAGE_SIZE
    size = rng.uniform(MIN_SIZE, MAX_SIZE) * scale
    lo, hi = MARGIN * scale + size / 2, image_size - MARGIN * scale - size / 2
    cx, cy = rng.uniform(lo, hi), rng.uniform(lo, hi)
    return Scene(colour, shape, background, float(cx), float(cy), float(size))


def render(scene: Scene, image_size: int = IMAGE_SIZE, supersample: int = 4) -> np.ndarray:
    """Draw a scene as an ``(H, W, 3)`` uint8 array, anti-aliased by supersampling.

    Squares are axis-aligned, triangles upright and isosceles with base = height = ``size``, circles
    have diameter ``size``; all centred on ``(cx, cy)`` so their bounding box is ``size`` x ``size``.
    """
    from PIL import Image, ImageDraw

    s = supersample
    big = Image.new("RGB", (image_size * s, image_size * s), BACKGROUNDS[scene.background])
    draw = ImageDraw.Draw(big)
    fill = COLOURS[scene.colour]
    x0, y0 = (scene.cx - scene.size / 2) * s, (scene.cy - scene.size / 2) * s
    x1, y1 = (scene.cx + scene.size / 2) * s, (scene.cy + scene.size / 2) * s
    if scene.shape == "circle":
        draw.ellipse([x0, y0, x1, y1], fill=fill)
    elif scene.shape == "square":
        draw.rectangle([x0, y0, x1, y1], fill=fill)
    elif scene.shape == "triangle":
        draw.polygon([(scene.cx * s, y0), (x0, y1), (x1, y1)], fill=fill)
    else:
        raise ValueError(f"Unknown shape '{scene.shape}'. Choose from: {', '.join(SHAPES)}.")
    small = big.resize((image_size, image_size), Image.BOX)
    return np.asarray(small, dtype=np.uint8)


def render_batch(rng: np.random.Generator, n: int, image_size: int = IMAGE_SIZE) -> tuple[np.ndarray, list[Scene]]:
    """``n`` random scenes rendered into an ``(n, H, W, 3)`` uint8 array, with their scenes."""
    scenes = [sample_scene(rng, image_size) for _ in range(n)]
    return np.stack([render(sc, image_size) for sc in scenes]), scenes


# ----------------------------------------------------------------------------------------------
# Evaluators: pure pixel statistics, used by the tests of the shipped model and by training's
# sample grids. They are validated on rendered ground truth (tests/test_shapes.py).


def _nearest(rgb: np.ndarray, palette: dict[str, tuple[int, int, int]]) -> tuple[str, float]:
    names = list(palette)
    cols = np.asarray([palette[n] for n in names], dtype=np.float64)
    d = np.linalg.norm(cols - np.asarray(rgb, dtype=np.float64)[None], axis=1)
    i = int(np.argmin(d))
    return names[i], float(d[i])


def _largest_component(mask: np.ndarray) -> np.ndarray:
    """Largest 4-connected component of a boolean mask (plain BFS; images are tiny)."""
    h, w = mask.shape
    labels = np.zeros((h, w), dtype=np.int32)
    best, best_n, cur = 0, 0, 0
    for y0, x0 in zip(*np.nonzero(mask)):
        if labels[y0, x0]:
            continue
        cur += 1
        stack, n = [(y0, x0)], 0
        labels[y0, x0] = cur
        while stack:
            y, x = stack.pop()
            n += 1
            for yy, xx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
                if 0 <= yy < h and 0 <= xx < w and mask[yy, xx] and not labels[yy, xx]:
                    labels[yy, xx] = cur
                    stack.append((yy, xx))
        if n > best_n:
            best, best_n = cur, n
    return labels == best if best else np.zeros_like(mask)


def classify_fill(fill: float) -> str:
    """Shape class from the fraction of its bounding box that a shape fills (see module doc)."""
    lo, hi = FILL_THRESHOLDS
    return "triangle" if fill < lo else ("circle" if fill < hi else "square")


@dataclass(frozen=True)
class Analysis:
    """What the evaluators read from an image."""

    background: str  # nearest background colour to the median border pixel
    background_error: float  # RGB distance from that palette colour
    colour: str | None  # nearest shape colour to the median shape pixel; None if no shape found
    colour_error: float
    shape: str | None  # class from the fill ratio; None if no shape found
    fill: float  # shape area / bounding-box area
    area: int  # shape pixels


MIN_SHAPE_AREA = 40  # pixels at 64x64; the smallest dataset shape (a 16 px triangle) has ~128


def analyse_image(image) -> Analysis:
    """Read background colour, shape colour and shape class off an RGB image (array or PIL).

    Background: the median of the 1-pixel border (shapes never touch it). Shape: the largest
    connected region of pixels farther than 60 RGB units from the background; its colour is the
    median over that region, snapped to the nearest palette colour; then the region is re-measured
    as the pixels nearer to that colour than to the background (half-way threshold, so anti-aliased
    edges count half) and its bounding-box fill ratio gives the class.
    """
    img = np.asarray(image, dtype=np.float64)[..., :3]
    border = np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]])
    bg_rgb = np.median(border, axis=0)
    bg_name, bg_err = _nearest(bg_rgb, BACKGROUNDS)
    dist_bg = np.linalg.norm(img - bg_rgb, axis=-1)
    mask = _largest_component(dist_bg > 60)
    if mask.sum() < MIN_SHAPE_AREA:
        return Analysis(bg_name, bg_err, None, float("inf"), None, 0.0, int(mask.sum()))
    shape_rgb = np.median(img[mask], axis=0)
    colour, col_err = _nearest(shape_rgb, COLOURS)
    dist_shape = np.linalg.norm(img - shape_rgb, axis=-1)
    region = _largest_component(dist_shape < dist_bg)
    ys, xs = np.nonzero(region)
    if len(ys) < MIN_SHAPE_AREA:
        return Analysis(bg_name, bg_err, colour, col_err, None, 0.0, int(len(ys)))
    box = (ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1)
    fill = float(len(ys) / box)
    return Analysis(bg_name, bg_err, colour, col_err, classify_fill(fill), fill, int(len(ys)))


# Maximum RGB distance from the palette colour for a colour to count as "right" (the closest two
# palette colours of one kind are ~75 apart, so a match within 60 is unambiguous enough).
COLOUR_TOLERANCE = 60.0


def check_image(image, prompt: str) -> dict[str, bool]:
    """Whether an image shows its prompt: ``{"background", "colour", "shape"}`` -> pass/fail.

    ``background`` and ``colour`` need the nearest palette colour to be the prompt's and within
    ``COLOUR_TOLERANCE``; ``shape`` needs the fill-ratio class to be the prompt's shape.
    """
    colour, shape, background = parse_prompt(prompt)
    a = analyse_image(image)
    return {
        "background": a.background == background and a.background_error <= COLOUR_TOLERANCE,
        "colour": a.colour == colour and a.colour_error <= COLOUR_TOLERANCE,
        "shape": a.shape == shape,
    }


def eval_prompts(n: int = 24, seed: int = 0) -> list[str]:
    """A fixed, balanced list of ``n`` prompts for quality checks (every shape, colour, background); ``n``
    at most the number of valid prompts."""
    if not 0 < n <= len(all_combinations()):
        raise ValueError(f"n must be between 1 and {len(all_combinations())} (the valid prompts), not {n}")
    rng = np.random.default_rng(seed)
    out, colours, bgs = [], list(COLOURS), list(BACKGROUNDS)
    i = 0
    while len(out) < n:
        shape = SHAPES[i % len(SHAPES)]
        colour = colours[i % len(colours)]
        bg = bgs[(i // len(colours) + i) % len(bgs)]
        if colour == bg:
            bg = bgs[int(rng.integers(len(bgs)))]
            if colour == bg:
                i += 1
                continue
        p = make_prompt(colour, shape, bg)
        if p not in out:
            out.append(p)
        i += 1
    return out


PIPELINE_CALL_DEFAULTS = {
    "height": IMAGE_SIZE,
    "width": IMAGE_SIZE,
    "max_sequence_length": 8,
    "num_inference_steps": 50,
    "guidance_scale": 1.0,
    "true_cfg_scale": 2.0,
    "negative_prompt": "",
}
"""Arguments the shipped FluxPipeline is called with. FluxPipeline's own defaults are 1024 px and 512 T5
tokens; the model was trained at 64 px with the T5 prompt padded to 8 tokens (7 words + end) (the random
T5 encoder sees the padding, so its output depends on that length). ``guidance_scale`` is FLUX's embedded
guidance, which this model does not have; ``true_cfg_scale`` 2 with the empty negative prompt is
classifier-free guidance with separate cond and uncond transformer calls per step (the model saw the empty
prompt in 10 % of its training samples). On all 117 prompts (``training/check_shapes.py --n 117``, seeds
0-2) it lifts the pass rates (background / colour / shape) from 1.00 / 0.91-0.93 / 0.81-0.82 without
guidance to 1.00 / 0.98-1.00 / 0.93-0.96. A stronger scale (3: about 1.00 / 1.00 / 0.98) amplifies
forecast errors too much at 10 of 50 real passes (colour 0.54 with Spectrum on the 24 eval prompts)."""


def call_kwargs(batch: int | None = None, **overrides) -> dict:
    """``PIPELINE_CALL_DEFAULTS`` for a call with ``batch`` prompts (FluxPipeline needs one negative prompt
    per prompt in a batch), updated with ``overrides``."""
    kw = dict(PIPELINE_CALL_DEFAULTS)
    if batch is not None:
        kw["negative_prompt"] = [kw["negative_prompt"]] * batch
    kw.update(overrides)
    return kw
