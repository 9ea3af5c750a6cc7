"""The "moving shapes" world of spectrum's embedded text-to-video model (the video sibling of shapes).

The image model (:mod:`spectrum_core.models.shapes`) gives ``spectrum gen`` a trained FLUX-architecture model;
this module is the world of its video sibling, a tiny trained Wan-architecture model (``WanPipeline``
with separate cond/uncond transformer calls for classifier-free guidance, MP4 output). Everything here
is pure (numpy + PIL, no diffusers):

* the vocabulary and grammar, with :func:`parse_prompt` (a ``ValueError`` naming the unknown word and
  the vocabulary);
* the clip renderer that makes the training set (:func:`render_clip`, :func:`sample_scene`): one shape
  of :mod:`spectrum_core.models.shapes` moving at a constant speed along one axis, each frame drawn by
  :func:`spectrum_core.models.shapes.render` (the vocabulary, palettes and renderer are imported, not copied);
* evaluators that say whether a clip shows its prompt (:func:`analyse_clip`, :func:`check_clip`):
  per frame the image evaluators of :mod:`spectrum_core.models.shapes` (background, shape colour, shape
  class), plus the direction of motion read from the displacement of the shape's centroid between the
  first and the last frame.

Grammar (case-insensitive, extra spaces and a trailing ``.`` ignored)::

    prompt    := article COLOUR SHAPE "moving" DIRECTION "on" article BACKGROUND "background"
    DIRECTION := left | right | up | down

with article / COLOUR / SHAPE / BACKGROUND as in :mod:`spectrum_core.models.shapes`, e.g.
``"a red circle moving left on a navy background"``.

Clip length: :data:`NUM_FRAMES` = 9. Wan's VAE compresses time 4x causally (the first frame alone,
then groups of 4), so a clip must have ``4k + 1`` frames; 9 frames become 3 latent frames, the fewest
that still contain motion inside a latent frame and between latent frames. The shape moves
:data:`SPEED` = 2 px per frame, 16 px over the clip (a quarter of the picture): far above the
evaluators' noise (a centroid is exact to a fraction of a pixel on rendered frames) and small enough
that a shape of up to :data:`MAX_SIZE` px stays fully inside the frame, so every frame still satisfies
the image evaluators' assumption (the shape never touches the border).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from spectrum_core.models import shapes
from spectrum_core.models.shapes import ARTICLES, BACKGROUNDS, COLOURS, IMAGE_SIZE, MARGIN, SHAPES

NUM_FRAMES = 9
"""Frames per clip (4k + 1 for Wan's causal 4x temporal compression: 9 frames -> 3 latent frames)."""

SPEED = 2.0
"""Displacement of the shape per frame, in pixels at ``IMAGE_SIZE`` (16 px over a 9-frame clip)."""

# Image coordinates: x to the right, y downwards (row index), so "up" is -y.
DIRECTIONS: dict[str, tuple[int, int]] = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}

# Shape sizes of the clips: smaller than the still images' 16-40 px, so that the shape plus its
# 16 px path fits inside the 64 px frame with freedom of position along the motion axis.
MIN_SIZE, MAX_SIZE = shapes.MIN_SIZE, 32

GRAMMAR = "a <colour> <shape> moving <direction> on a <background> background"
GRAMMAR_WORDS = ("moving", "on", "background")

MIN_DISPLACEMENT = 4.0
"""Centroid displacement (px) below which a clip counts as not moving (true clips move 16 px)."""

FRAME_PASS_FRACTION = 0.75
"""Fraction of frames whose image check must pass for the clip's background/colour/shape to pass.
Not 1.0: a sampled clip may blur a frame or two (mostly where the shape changes latent frame) while
clearly showing the prompt; not lower than 3/4 so that a clip that is wrong most of the time fails."""


def vocabulary() -> list[str]:
    """Every word the video model's tokenizer knows, in a fixed order (the tokenizer's ids follow it).

    The image model's vocabulary first (same order), then ``moving`` and the directions.
    """
    words = list(shapes.vocabulary())
    for w in ("moving", *DIRECTIONS):
        if w not in words:
            words.append(w)
    return words


def _vocab_message() -> str:
    return shapes.vocab_message(GRAMMAR, Directions=DIRECTIONS)


def make_prompt(colour: str, shape: str, direction: str, background: str) -> str:
    """The canonical prompt of a (colour, shape, direction, background) combination."""
    return f"a {colour} {shape} moving {direction} on a {background} background"


def parse_prompt(prompt: str) -> tuple[str, str, str, str]:
    """Return ``(colour, shape, direction, background)`` of a prompt, or raise a ValueError saying why.

    Unknown words are named in the error together with the vocabulary (checked first, so that a typo
    is reported as such rather than as a grammar error); known words in a wrong order get the grammar.
    A white shape on a white background is refused (invisible), as in the image model. The empty
    prompt is not a valid request (it is only the negative prompt of classifier-free guidance).
    """
    words = shapes.prompt_words(prompt, "moving-shapes", vocabulary(), _vocab_message())
    _, colour, shape, _, direction, _, _, background, _ = shapes.match_grammar(
        prompt, words, (ARTICLES, COLOURS, SHAPES, "moving", DIRECTIONS, "on", ARTICLES, BACKGROUNDS, "background"),
        _vocab_message())
    shapes.check_visible(colour, background)
    return colour, shape, direction, background


def all_combinations() -> list[tuple[str, str, str, str]]:
    """Every valid (colour, shape, direction, background) combination, in a fixed order (468)."""
    return [(c, s, d, b) for (c, s, b) in shapes.all_combinations() for d in DIRECTIONS]


@dataclass(frozen=True)
class MovingScene:
    """One clip of the dataset: what is drawn, where it starts and how it moves (pixels at IMAGE_SIZE)."""

    colour: str
    shape: str
    direction: str
    background: str
    cx: float = IMAGE_SIZE / 2  # centre at frame 0
    cy: float = IMAGE_SIZE / 2
    size: float = 24.0
    speed: float = SPEED
    num_frames: int = field(default=NUM_FRAMES)

    @property
    def prompt(self) -> str:
        return make_prompt(self.colour, self.shape, self.direction, self.background)

    def frame(self, i: int) -> shapes.Scene:
        """The still :class:`spectrum_core.models.shapes.Scene` of frame ``i``."""
        dx, dy = DIRECTIONS[self.direction]
        return shapes.Scene(
            self.colour, self.shape, self.background,
            self.cx + dx * self.speed * i, self.cy + dy * self.speed * i, self.size,
        )


def travel(num_frames: int = NUM_FRAMES, speed: float = SPEED) -> float:
    """Distance the shape moves between the first and the last frame, in pixels."""
    return speed * (num_frames - 1)


def sample_scene(rng: np.random.Generator, num_frames: int = NUM_FRAMES, image_size: int = IMAGE_SIZE) -> MovingScene:
    """A random clip: uniform over valid combinations, uniform size, and a uniform start position such
    that the shape stays fully inside the frame (``MARGIN`` px from the border) for the whole clip."""
    combos = all_combinations()
    colour, shape, direction, background = combos[rng.integers(len(combos))]
    scale = image_size / IMAGE_SIZE
    size = rng.uniform(MIN_SIZE, MAX_SIZE) * scale
    path = travel(num_frames) * scale
    lo, hi = MARGIN * scale + size / 2, image_size - MARGIN * scale - size / 2
    dx, dy = DIRECTIONS[direction]
    # Along the motion axis the start must leave room for the path; across it, anywhere inside.
    cx = rng.uniform(lo + path * (dx < 0), hi - path * (dx > 0))
    cy = rng.uniform(lo + path * (dy < 0), hi - path * (dy > 0))
    return MovingScene(colour, shape, direction, background, float(cx), float(cy), float(size),
                       SPEED * scale, num_frames)


def render_clip(scene: MovingScene, image_size: int = IMAGE_SIZE) -> np.ndarray:
    """Draw a clip as an ``(F, H, W, 3)`` uint8 array, each frame by :func:`spectrum_core.models.shapes.render`."""
    return np.stack([shapes.render(scene.frame(i), image_size) for i in range(scene.num_frames)])


def render_batch(rng: np.random.Generator, n: int, num_frames: int = NUM_FRAMES,
                 image_size: int = IMAGE_SIZE) -> tuple[np.ndarray, list[MovingScene]]:
    """``n`` random clips as an ``(n, F, H, W, 3)`` uint8 array, with their scenes."""
    scenes = [sample_scene(rng, num_frames, image_size) for _ in range(n)]
    return np.stack([render_clip(sc, image_size) for sc in scenes]), scenes


# ----------------------------------------------------------------------------------------------
# Evaluators: the image evaluators per frame, plus the motion direction. Validated on rendered
# ground truth in tests/test_moving_shapes.py.


def shape_centroid(image) -> tuple[float, float] | None:
    """``(x, y)`` centroid of the shape in a frame, or None if no shape is found.

    The shape region is found as in :func:`spectrum_core.models.shapes.analyse_image`: the largest connected
    region of pixels farther than 60 RGB units from the median border colour. Its centroid moves with
    the shape, whatever the shape's class, so frame-to-frame displacements measure the motion.
    """
    img = np.asarray(image, dtype=np.float64)[..., :3]
    border = np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]])
    dist_bg = np.linalg.norm(img - np.median(border, axis=0), axis=-1)
    mask = shapes._largest_component(dist_bg > 60)  # the image evaluators' own region finder
    if mask.sum() < shapes.MIN_SHAPE_AREA:
        return None
    ys, xs = np.nonzero(mask)
    return float(xs.mean()), float(ys.mean())


def classify_displacement(dx: float, dy: float, min_displacement: float = MIN_DISPLACEMENT) -> str | None:
    """Direction of a displacement (image coordinates, y down): the dominant axis and its sign;
    None if the shape moved less than ``min_displacement`` pixels."""
    if max(abs(dx), abs(dy)) < min_displacement:
        return None
    if abs(dx) >= abs(dy):
        return "right" if dx > 0 else "left"
    return "down" if dy > 0 else "up"


@dataclass(frozen=True)
class ClipAnalysis:
    """What the evaluators read from a clip."""

    frames: tuple[shapes.Analysis, ...]  # the image evaluators' reading of every frame
    centroids: tuple[tuple[float, float] | None, ...]  # (x, y) of the shape per frame
    displacement: tuple[float, float] | None  # centroid(last) - centroid(first); None if either lacks a shape
    direction: str | None  # from the displacement; None if no shape at either end or it barely moved


def analyse_clip(frames) -> ClipAnalysis:
    """Read every frame with :func:`spectrum_core.models.shapes.analyse_image` and the motion from the centroids.

    ``frames``: an ``(F, H, W, 3)`` array (uint8 0-255, or float in [0, 1] as WanPipeline's
    ``output_type="np"`` returns; floats are scaled to 0-255) or a list of PIL images.
    The direction is that of the centroid's displacement from the first to the last frame, so a shape
    that wanders and comes back does not count as moving.
    """
    arr = [np.asarray(f) for f in frames]
    arr = [(f * 255.0).round().clip(0, 255) if f.dtype.kind == "f" else f for f in arr]
    per_frame = tuple(shapes.analyse_image(f) for f in arr)
    cents = tuple(shape_centroid(f) for f in arr)
    if cents[0] is None or cents[-1] is None:
        disp, direction = None, None
    else:
        disp = (cents[-1][0] - cents[0][0], cents[-1][1] - cents[0][1])
        direction = classify_displacement(*disp)
    return ClipAnalysis(per_frame, cents, disp, direction)


def check_clip(frames, prompt: str, frame_pass_fraction: float = FRAME_PASS_FRACTION) -> dict[str, bool]:
    """Whether a clip shows its prompt: ``{"background", "colour", "shape", "direction"}`` -> pass/fail.

    ``background``/``colour``/``shape`` pass when :func:`spectrum_core.models.shapes.check_image`'s criterion
    holds in at least ``frame_pass_fraction`` of the frames; ``direction`` when the centroid's
    first-to-last displacement has the prompt's direction (and is at least ``MIN_DISPLACEMENT`` px).
    """
    colour, shape, direction, background = parse_prompt(prompt)
    a = analyse_clip(frames)
    tol = shapes.COLOUR_TOLERANCE
    per = {
        "background": [f.background == background and f.background_error <= tol for f in a.frames],
        "colour": [f.colour == colour and f.colour_error <= tol for f in a.frames],
        "shape": [f.shape == shape for f in a.frames],
    }
    out = {k: float(np.mean(v)) >= frame_pass_fraction for k, v in per.items()}
    out["direction"] = a.direction == direction
    return out


def eval_prompts(n: int = 16, seed: int = 0) -> list[str]:
    """A fixed, balanced list of ``n`` prompts for quality checks: directions cycle fastest, then the
    image model's balanced (colour, shape, background) triples of :func:`spectrum_core.models.shapes.eval_prompts`
    (so ``n`` is at most its number of valid prompts, 117)."""
    triples = [shapes.parse_prompt(p) for p in shapes.eval_prompts(max(24, n), seed)]
    dirs = list(DIRECTIONS)
    return [make_prompt(c, s, dirs[i % len(dirs)], b) for i, (c, s, b) in enumerate(triples[:n])]


MAX_SEQUENCE_LENGTH = 10
"""Text tokens of a prompt: 9 words + the end token. WanPipeline pads the encoder output with zeros to
``max_sequence_length`` and the transformer attends to the padding, so the model is called with the
length it was trained with."""

PIPELINE_CALL_DEFAULTS = {
    "height": IMAGE_SIZE,
    "width": IMAGE_SIZE,
    "num_frames": NUM_FRAMES,
    "max_sequence_length": MAX_SEQUENCE_LENGTH,
    "num_inference_steps": 50,
    "guidance_scale": 2.0,
}
"""Arguments the shipped WanPipeline must be called with (its own defaults are 480x832, 81 frames and 512
text tokens). ``guidance_scale`` > 1, so every step makes two transformer calls (cond, uncond with the
empty negative prompt), as Wan does; the model saw the empty prompt in 10 % of its training samples.
On all 117 prompts of :func:`eval_prompts` (``training/check_moving.py --n 117``, seed 0) guidance 2.0
passes background / colour / shape / direction at 1.00 / 0.98 / 0.88 / 0.99 and 3.0 at 1.00 / 1.00 /
0.95 / 1.00, but 3.0 amplifies forecast errors: at 10 of 50 real passes Spectrum's clips then keep the
background in half of 24 prompts and the colour in 7, against 24 and 22 at 2.0; hence 2.0."""
