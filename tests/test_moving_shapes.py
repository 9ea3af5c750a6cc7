"""Fast tests of the moving-shapes world (the video sibling): grammar, clip renderer, evaluators.

The evaluators are what the embedded video model's quality checks rely on, so they are validated here
on rendered ground truth: many (colour, shape, direction, background) combinations at random sizes and
positions must be read back correctly, and clips that do not match must fail.
"""

import numpy as np
import pytest

from spectrum_core.models import moving as M
from spectrum_core.models import shapes as S


def test_vocabulary_extends_the_image_model():
    v = M.vocabulary()
    assert v[: len(S.vocabulary())] == S.vocabulary()  # same ids for the shared words
    for w in ("moving", "left", "right", "up", "down"):
        assert w in v
    assert len(v) == len(set(v))


@pytest.mark.parametrize(
    "prompt, expected",
    [
        ("a red circle moving left on a navy background", ("red", "circle", "left", "navy")),
        ("An orange Triangle moving UP on a GREY background.", ("orange", "triangle", "up", "gray")),
        ("  a  blue   square moving down on a white background ", ("blue", "square", "down", "white")),
    ],
)
def test_parse_prompt_accepts_grammar(prompt, expected):
    assert M.parse_prompt(prompt) == expected


@pytest.mark.parametrize(
    "prompt, word",
    [
        ("a red hexagon moving left on a navy background", "hexagon"),
        ("a red circle moving sideways on a navy background", "sideways"),
        ("a red circle flying left on a navy background", "flying"),
        ("a red circle moving left on a teal background", "teal"),
    ],
)
def test_unknown_word_names_word_and_vocabulary(prompt, word):
    with pytest.raises(ValueError) as e:
        M.parse_prompt(prompt)
    msg = str(e.value)
    assert f"'{word}'" in msg
    for known in ("circle", "navy", "left", "down", "moving"):
        assert known in msg


def test_several_unknown_words_are_all_named():
    with pytest.raises(ValueError) as e:
        M.parse_prompt("a red hexagon zooming left on a navy background")
    assert "'hexagon'" in str(e.value) and "'zooming'" in str(e.value)


@pytest.mark.parametrize(
    "prompt",
    [
        "",
        "a red circle on a navy background",  # the image grammar: no motion
        "a red circle moving on a navy background",
        "a red circle left moving on a navy background",
        "a red circle moving left on a navy",
        "a red circle moving left right on a navy background",
    ],
)
def test_bad_prompts_raise_with_the_grammar(prompt):
    with pytest.raises(ValueError, match="moving <direction>"):
        M.parse_prompt(prompt)


def test_white_on_white_is_refused():
    with pytest.raises(ValueError, match="invisible"):
        M.parse_prompt("a white circle moving up on a white background")


def test_every_combination_round_trips_through_its_prompt():
    combos = M.all_combinations()
    assert len(combos) == len(set(combos)) == len(S.all_combinations()) * 4
    for c in combos:
        assert M.parse_prompt(M.make_prompt(*c)) == c


def test_clip_frame_count_fits_wan_temporal_compression():
    assert M.NUM_FRAMES >= 9 and (M.NUM_FRAMES - 1) % 4 == 0
    assert M.PIPELINE_CALL_DEFAULTS["guidance_scale"] > 1  # CFG: separate cond/uncond calls
    longest = max(len(M.make_prompt(*c).split()) for c in M.all_combinations())
    assert M.MAX_SEQUENCE_LENGTH == longest + 1  # words + end token


def test_sampled_clips_stay_inside_and_move_at_the_set_speed():
    rng = np.random.default_rng(0)
    for _ in range(300):
        sc = M.sample_scene(rng)
        first, last = sc.frame(0), sc.frame(sc.num_frames - 1)
        for f in (first, last):
            assert S.MARGIN - 1e-9 <= f.cx - f.size / 2 and f.cx + f.size / 2 <= S.IMAGE_SIZE - S.MARGIN + 1e-9
            assert S.MARGIN - 1e-9 <= f.cy - f.size / 2 and f.cy + f.size / 2 <= S.IMAGE_SIZE - S.MARGIN + 1e-9
        dx, dy = M.DIRECTIONS[sc.direction]
        assert np.isclose(last.cx - first.cx, dx * M.travel()) and np.isclose(last.cy - first.cy, dy * M.travel())
        assert M.MIN_SIZE <= sc.size <= M.MAX_SIZE


def test_render_batch_shape_and_determinism():
    a, sa = M.render_batch(np.random.default_rng(3), 2)
    b, sb = M.render_batch(np.random.default_rng(3), 2)
    assert a.shape == (2, M.NUM_FRAMES, S.IMAGE_SIZE, S.IMAGE_SIZE, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b) and sa == sb


@pytest.mark.parametrize("seed", [0, 1])
def test_evaluators_recover_ground_truth(seed):
    rng = np.random.default_rng(seed)
    combos = M.all_combinations()
    pick = rng.permutation(len(combos))[:24]
    scenes = []
    for i in pick:
        colour, shape, direction, background = combos[i]
        s = M.sample_scene(rng)
        while s.direction != direction:  # a start position valid for this direction
            s = M.sample_scene(rng)
        scenes.append(M.MovingScene(colour, shape, direction, background, s.cx, s.cy, s.size))
    for sc in scenes:
        clip = M.render_clip(sc)
        a = M.analyse_clip(clip)
        assert a.direction == sc.direction, (sc, a.displacement)
        dx, dy = M.DIRECTIONS[sc.direction]
        assert np.isclose(a.displacement[0], dx * M.travel(), atol=1.0)
        assert np.isclose(a.displacement[1], dy * M.travel(), atol=1.0)
        assert M.check_clip(clip, sc.prompt) == {"background": True, "colour": True, "shape": True, "direction": True}, sc


def test_every_direction_shape_pair_is_recovered():
    rng = np.random.default_rng(7)
    colours = [c for c in S.COLOURS]
    bgs = list(S.BACKGROUNDS)
    k = 0
    for direction in M.DIRECTIONS:
        for shape in S.SHAPES:
            colour, background = colours[k % len(colours)], bgs[k % len(bgs)]
            if colour == background:
                background = "navy"
            k += 1
            s = M.sample_scene(rng)
            while s.direction != direction:
                s = M.sample_scene(rng)
            sc = M.MovingScene(colour, shape, direction, background, s.cx, s.cy, s.size)
            assert all(M.check_clip(M.render_clip(sc), sc.prompt).values()), sc


def test_float_frames_in_unit_range_are_accepted():
    sc = M.MovingScene("red", "circle", "right", "navy", cx=20, cy=32, size=20)
    clip = M.render_clip(sc).astype(np.float32) / 255.0  # WanPipeline output_type="np"
    assert all(M.check_clip(clip, sc.prompt).values())


def test_wrong_clips_fail():
    sc = M.MovingScene("red", "circle", "right", "navy", cx=20, cy=32, size=20)
    clip = M.render_clip(sc)
    # reversed in time: moves left
    r = M.check_clip(clip[::-1], sc.prompt)
    assert not r["direction"] and r["colour"] and r["shape"] and r["background"]
    # a still clip (first frame repeated) does not move
    still = np.repeat(clip[:1], M.NUM_FRAMES, axis=0)
    assert M.analyse_clip(still).direction is None
    # wrong words
    assert not M.check_clip(clip, "a red circle moving up on a navy background")["direction"]
    assert not M.check_clip(clip, "a blue circle moving right on a navy background")["colour"]
    assert not M.check_clip(clip, "a red square moving right on a navy background")["shape"]
    assert not M.check_clip(clip, "a red circle moving right on a black background")["background"]
    # an empty clip: no shape, no direction
    empty = np.repeat(M.render_clip(sc)[:, :1, :1], S.IMAGE_SIZE, 1).repeat(S.IMAGE_SIZE, 2)
    a = M.analyse_clip(empty)
    assert a.direction is None and a.displacement is None


def test_clip_passes_when_a_minority_of_frames_is_broken():
    sc = M.MovingScene("green", "square", "down", "gray", cx=32, cy=20, size=20)
    clip = M.render_clip(sc).copy()
    clip[4] = np.asarray(S.BACKGROUNDS["gray"], np.uint8)  # one middle frame lost its shape
    assert all(M.check_clip(clip, sc.prompt).values())
    clip[1:4] = clip[4]  # now 4 of 9 frames are empty
    assert not M.check_clip(clip, sc.prompt)["shape"]


def test_eval_prompts_are_valid_and_balanced():
    ps = M.eval_prompts(16)
    assert len(ps) == len(set(ps)) == 16
    parsed = [M.parse_prompt(p) for p in ps]
    assert {d for _, _, d, _ in parsed} == set(M.DIRECTIONS)
    assert {s for _, s, _, _ in parsed} == set(S.SHAPES)
    assert M.eval_prompts(16) == ps
