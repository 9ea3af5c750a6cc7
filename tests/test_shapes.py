"""Fast tests of the shapes world: prompt grammar, renderer, and the pixel-statistics evaluators.

The evaluators are what the embedded model's quality tests rely on, so they are validated here on
rendered ground truth: every (colour, shape, background) combination, at random sizes and positions,
must be read back correctly.
"""

import numpy as np
import pytest

from spectrum_core.models import shapes as S


def test_vocabulary_covers_the_brief():
    assert len(S.COLOURS) >= 6 and len(S.BACKGROUNDS) >= 4
    assert {"circle", "square", "triangle"} <= set(S.SHAPES)
    for w in ("a", "an", "on", "background", "red", "navy", "circle", "grey"):
        assert w in S.vocabulary()


@pytest.mark.parametrize(
    "prompt, expected",
    [
        ("a red circle on a navy background", ("red", "circle", "navy")),
        ("An orange Triangle on a GREY background.", ("orange", "triangle", "gray")),
        ("  a  blue   square on a white background ", ("blue", "square", "white")),
    ],
)
def test_parse_prompt_accepts_grammar(prompt, expected):
    assert S.parse_prompt(prompt) == expected


def test_unknown_word_names_word_and_vocabulary():
    with pytest.raises(ValueError) as e:
        S.parse_prompt("a red hexagon on a navy background")
    msg = str(e.value)
    assert "'hexagon'" in msg and "circle" in msg and "navy" in msg


@pytest.mark.parametrize(
    "prompt",
    ["", "red circle", "a circle red on a navy background", "a red circle on a navy", "a red circle on a red background"],
)
def test_bad_prompts_raise(prompt):
    with pytest.raises(ValueError):
        S.parse_prompt(prompt)


def test_white_on_white_is_refused():
    with pytest.raises(ValueError, match="invisible"):
        S.parse_prompt("a white circle on a white background")


def test_every_combination_round_trips_through_its_prompt():
    combos = S.all_combinations()
    assert len(combos) == len(set(combos)) == len(S.COLOURS) * len(S.SHAPES) * len(S.BACKGROUNDS) - len(S.SHAPES)
    for c in combos:
        assert S.parse_prompt(S.make_prompt(*c)) == c


def test_render_is_deterministic_and_in_bounds():
    rng = np.random.default_rng(0)
    for _ in range(50):
        sc = S.sample_scene(rng)
        assert S.MIN_SIZE <= sc.size <= S.MAX_SIZE
        assert sc.size / 2 + S.MARGIN - 1e-6 <= sc.cx <= S.IMAGE_SIZE - sc.size / 2 - S.MARGIN + 1e-6
        img = S.render(sc)
        assert img.shape == (S.IMAGE_SIZE, S.IMAGE_SIZE, 3) and img.dtype == np.uint8
        np.testing.assert_array_equal(img, S.render(sc))
        # the border is pure background: shapes never touch it
        assert (img[0] == S.BACKGROUNDS[sc.background]).all()


def test_sample_scene_is_seeded():
    a = [S.sample_scene(np.random.default_rng(7)) for _ in range(2)]
    assert a[0] == a[1]


@pytest.mark.parametrize("background", list(S.BACKGROUNDS))
def test_evaluators_read_ground_truth_for_every_combination(background):
    rng = np.random.default_rng(list(S.BACKGROUNDS).index(background))
    for colour, shape, bg in S.all_combinations():
        if bg != background:
            continue
        for size in (S.MIN_SIZE, S.MAX_SIZE, rng.uniform(S.MIN_SIZE, S.MAX_SIZE)):
            lo, hi = S.MARGIN + size / 2, S.IMAGE_SIZE - S.MARGIN - size / 2
            sc = S.Scene(colour, shape, bg, rng.uniform(lo, hi), rng.uniform(lo, hi), size)
            result = S.check_image(S.render(sc), sc.prompt)
            assert all(result.values()), (sc, result, S.analyse_image(S.render(sc)))


def test_fill_ratio_of_ground_truth_is_near_theory():
    for shape, ratio in S.FILL_RATIO.items():
        a = S.analyse_image(S.render(S.Scene("red", shape, "navy", 32, 32, 36)))
        assert abs(a.fill - ratio) < 0.06, (shape, a.fill)


def test_evaluators_fail_wrong_images():
    img = S.render(S.Scene("red", "circle", "navy", 32, 32, 30))
    assert S.check_image(img, "a red circle on a navy background") == {"background": True, "colour": True, "shape": True}
    r = S.check_image(img, "a blue square on a black background")
    assert not r["background"] and not r["colour"] and not r["shape"]
    blank = np.zeros((64, 64, 3), np.uint8) + np.array(S.BACKGROUNDS["navy"], np.uint8)
    assert S.check_image(blank, "a red circle on a navy background") == {"background": True, "colour": False, "shape": False}


def test_eval_prompts_are_fixed_valid_and_balanced():
    p = S.eval_prompts(24)
    assert p == S.eval_prompts(24) and len(set(p)) == 24
    parsed = [S.parse_prompt(x) for x in p]
    assert {s for _, s, _ in parsed} == set(S.SHAPES)
    assert {c for c, _, _ in parsed} == set(S.COLOURS)
    assert {b for _, _, b in parsed} == set(S.BACKGROUNDS)


def test_eval_prompts_reach_every_valid_prompt_and_refuse_more():
    """``n`` up to the number of valid prompts lists each once (check_shapes.py --n 117 runs them all);
    asking for more is an error, not an endless search."""
    every = S.eval_prompts(len(S.all_combinations()))
    assert sorted(every) == sorted(S.make_prompt(*c) for c in S.all_combinations())
    with pytest.raises(ValueError, match="between 1 and 117"):
        S.eval_prompts(len(S.all_combinations()) + 1)
