"""Synthetic plate generator: formats, boxes, determinism, streaming, dataset layout and CLI."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from operator import itemgetter
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO_ROOT, load_script
from PIL import Image, ImageDraw

from kr_lpr import cli, synth_render
from kr_lpr.plate_codec_tinylpr import DEFAULT_TOKENS, HANGUL, REGIONS, LabelMap, is_valid_plate
from kr_lpr.synth import (
    STYLES,
    SyntheticPlateStream,
    plate_rng,
    render_plate,
    sample_plate_text,
    token_histogram,
    write_dataset,
)
from kr_lpr.synth_render import (
    CURLED_FIVE,
    DIGIT_FONTS,
    HANGUL_FONTS,
    ITALIC_LEAN,
    ROUND_ZERO,
    SHORT_TICK,
    STROKE_FONTS,
    TEMPLATES,
    THIN_FONTS,
    Typeface,
    bolt_centres,
    bolt_radius,
    layout_glyphs,
    lean_glyph,
    master_glyph,
    plate_polylines,
    sample_typeface,
)
from kr_lpr.synth_scene import PRESETS, compose, resolve_strength
from kr_lpr.synth_text import COMMERCIAL_HANGUL, DELIVERY_HANGUL, PRIVATE_HANGUL, RENTAL_HANGUL

LABEL_MAP = LabelMap(DEFAULT_TOKENS)


def assert_boxes_inside(sample: dict) -> None:
    width, height = sample["image"].size
    boxes = sample["boxes"]
    assert boxes.dtype == np.float32
    assert boxes.shape == (len(LABEL_MAP.split(sample["text"])), 4)
    assert np.all(boxes[:, 0] >= 0) and np.all(boxes[:, 1] >= 0)
    assert np.all(boxes[:, 2] <= width) and np.all(boxes[:, 3] <= height)
    assert np.all(boxes[:, 2] > boxes[:, 0]) and np.all(boxes[:, 3] > boxes[:, 1])


EXPECTED_LAYOUTS = {"green": {"two-row"}, "orange": {"two-row"}, "yellow": {"one-row", "two-row"}}


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("strength", sorted(PRESETS))
def test_every_style_renders_a_valid_plate_with_one_box_per_token(style, strength):
    for seed in range(6):
        sample = render_plate(np.random.default_rng([seed, 11]), strength, style=style)
        assert sample["style"] == style
        assert sample["layout"] in EXPECTED_LAYOUTS.get(style, {"one-row"})
        assert sample["image"].mode == "RGB" and min(sample["image"].size) >= 8
        assert is_valid_plate(sample["text"]), sample["text"]
        assert_boxes_inside(sample)


def test_tokens_read_left_to_right_and_top_to_bottom_on_clean_plates():
    for seed in range(30):
        sample = render_plate(np.random.default_rng(seed), "clean")
        boxes = sample["boxes"]
        tokens = LABEL_MAP.split(sample["text"])
        centres_x, centres_y = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
        if sample["layout"] == "one-row":
            start = 1 if tokens[0] in REGIONS and sample["style"] == "yellow" else 0  # region stacked at the left
            assert np.all(np.diff(centres_x[start:]) > 0), sample["text"]
        else:
            top = centres_y < centres_y.max() - (boxes[:, 3] - boxes[:, 1]).max() / 2
            assert top[0] and not top[-1] and np.all(np.diff(top.astype(int)) <= 0), sample["text"]


def test_boxes_sit_on_the_printed_characters():
    """On clean white plates every box holds dark ink and the plate's white shows between boxes."""
    for seed in range(10):
        sample = render_plate(np.random.default_rng([seed, 3]), "clean", style="white")
        gray = np.asarray(sample["image"].convert("L"), dtype=np.float32)
        paper = np.percentile(gray, 90)
        x1, y1, x2, y2 = np.round(sample["boxes"]).astype(int).T
        for box in zip(x1, y1, x2, y2, strict=True):
            assert gray[box[1] : box[3], box[0] : box[2]].min() < 0.5 * paper, (sample["text"], box)
        gap = gray[y1[2] : y2[2], x2[2] + 1 : x1[3] - 1]  # between the Hangul and the serial
        assert gap.size and np.median(gap) > 0.7 * paper, sample["text"]


@pytest.mark.parametrize(
    ("fonts", "chars", "min_difference"),
    [(DIGIT_FONTS + tuple(STROKE_FONTS), "0123456789", 0.05), (HANGUL_FONTS + tuple(STROKE_FONTS), HANGUL, 0.02)],
    ids=["digits", "hangul"],
)
def test_every_font_draws_distinct_tight_glyphs(fonts, chars, min_difference):
    """Hangul pairs such as 두/무 differ in one stroke, hence the lower bound."""
    for font in sorted(set(fonts)):
        glyphs = {char: master_glyph(font, char, 0) for char in chars}
        for char, glyph in glyphs.items():
            assert glyph[0].any() and glyph[-1].any() and glyph[:, 0].any() and glyph[:, -1].any(), (font, char)
        small = {char: np.asarray(Image.fromarray(g).resize((32, 40))) / 255.0 for char, g in glyphs.items()}
        for a in small:
            for b in small:
                assert a == b or np.abs(small[a] - small[b]).mean() > min_difference, (font, a, b)


def test_plate_typeface_hangul_is_composed_from_its_jamo():
    """머 and 허 (confused on real plates) share the vowel and differ in a closed ㅁ against ㅎ's tick, bar and ring."""
    meo, heo = (master_glyph("plate", char, 0) > 127 for char in "머허")
    assert meo.shape[0] == heo.shape[0]
    vowel = round(0.3 * heo.shape[1])
    assert (meo[:, -vowel:] == heo[:, -vowel:]).mean() > 0.97
    consonant = round(0.5 * heo.shape[1])
    assert (meo[:, -vowel - consonant : -vowel] != heo[:, -vowel - consonant : -vowel]).mean() > 0.15


def test_plate_typeface_initials_keep_the_proportions_of_real_plates():
    """Stage 11 read real 하, 허 and 머 as 어: beside a vertical vowel the real ㅎ stands as tall as the vowel,
    its ring filling most of it, while ㅁ sits smaller than ㅇ."""

    def consonant_extent(char: str) -> tuple[np.ndarray, np.ndarray]:
        points = np.concatenate(plate_polylines(char)[2:])  # after the two strokes of ㅏ or ㅓ
        return points.min(axis=0), points.max(axis=0)

    for char in "하허":
        top, foot = consonant_extent(char)
        assert top[1] == 0 and foot[1] > 0.9, char
    mieum, ieung = consonant_extent("머"), consonant_extent("어")
    assert np.all(mieum[0] > ieung[0] + 0.02) and np.all(mieum[1] < ieung[1] - 0.02)


def test_region_names_keep_a_font_that_has_them_when_hangul_uses_the_plate_strokes():
    typeface = Typeface("plate", "plate", weight=0, hangul_weight=0, digit_aspect=0.5, hangul_aspect=0.7)
    assert typeface.lettering("서", "서") == ("plate", 0)
    assert typeface.lettering("서", "서울")[0] in HANGUL_FONTS and typeface.lettering("서", "서울")[0] != "plate"
    assert typeface.lettering("7", "7") == ("plate", 0)


def _tick_width(glyph: np.ndarray, side: int) -> float:
    """The share of the glyph's width its vowel's tick takes beside the full-height stem (`side` 1 right, -1 left)."""
    third = glyph.shape[0] // 3
    top, bottom = glyph[:third].any(axis=0), glyph[-third:].any(axis=0)
    stem = np.flatnonzero(top & bottom).max()  # the stem's right edge
    if side > 0:
        return (np.flatnonzero(glyph.any(axis=0)).max() - stem) / glyph.shape[1]
    stem_left = np.flatnonzero(~(top & bottom)[:stem]).max() + 1
    middle_only = glyph.any(axis=0) & ~top & ~bottom
    return np.argmin(np.append(middle_only[:stem_left][::-1], False)) / glyph.shape[1]


def test_short_ticks_are_the_real_plates_nub_beside_the_stem():
    """The long ㅏ tick taught the model that a real ㅏ with its short nub is ㅓ (`scripts/vowel_tick_study.py`)."""
    for font in STROKE_FONTS:
        for char, side in (("가", 1), ("하", 1), ("다", 1), ("거", -1), ("허", -1), ("더", -1)):
            long, short = (master_glyph(font, shape, 0) > 127 for shape in (char, char + SHORT_TICK))
            assert 0 < _tick_width(short, side) < 0.8 * _tick_width(long, side), (font, char)


def test_short_ticked_typefaces_draw_only_use_syllables_with_a_or_eo_so():
    rng = np.random.default_rng(8)
    template = TEMPLATES["white", "one-row"]
    typefaces = [sample_typeface(rng, template, short_ticks_p=1.0) for _ in range(200)]
    assert all(t.short_ticks == (t.hangul_font in STROKE_FONTS) for t in typefaces)
    assert 0 < np.mean([t.short_ticks for t in typefaces]) < 1
    assert not any(sample_typeface(rng, template).short_ticks for _ in range(200))
    typeface = Typeface("plate", "plate", 0, 0, digit_aspect=0.5, hangul_aspect=0.7, short_ticks=True)
    for tokens, style, layout in (
        (["서울", "12", "가", "3456"], "green", "two-row"),
        (["12", "노", "3456"], "white", "one-row"),
    ):
        shapes = [g.shape for g in layout_glyphs(rng, tokens, TEMPLATES[style, layout], style, layout, typeface)]
        assert shapes == [char if char != "가" else "가" + SHORT_TICK for char in "".join(tokens)]
    assert PRESETS["train"]["short_ticks_p"] > 0 == PRESETS["clean"]["short_ticks_p"]


def _ink_centre(rows: np.ndarray) -> float:
    return float(np.average(np.arange(rows.shape[1]), weights=rows.sum(axis=0)))


def test_italic_lettering_moves_a_glyphs_top_right_of_its_foot_by_the_lean():
    bar = np.zeros((100, 20), dtype=np.uint8)
    bar[:, 8:12] = 255
    leaning = lean_glyph(bar, 0.12)
    assert leaning.shape == (100, 20 + 12)
    assert _ink_centre(leaning[:5]) - _ink_centre(leaning[-5:]) == pytest.approx(0.12 * 95, abs=1.5)
    assert leaning.sum() == pytest.approx(bar.sum(), rel=0.01)


def _left_gap(glyph: np.ndarray) -> float:
    """The longest run of rows, as a share of the height, with no ink in the glyph's left sixth."""
    empty = ~glyph[:, : glyph.shape[1] // 6].any(axis=1)
    runs = np.diff(np.flatnonzero(np.diff(np.concatenate([[0], empty.astype(int), [0]]))))[::2]
    return runs.max(initial=0) / len(empty)


def test_curled_five_closes_its_bowl_towards_the_stem_but_keeps_the_flat_top():
    """The old italic typeface's 5, which real crops read as 6: its bowl ends nearer the stem than the later 5's."""
    for font in STROKE_FONTS:
        five, curled = (master_glyph(font, shape, 0) > 127 for shape in ("5", CURLED_FIVE))
        assert 0 < _left_gap(curled) < 0.75 * _left_gap(five), font
        assert curled[:8].any(axis=0).mean() > 0.7, font


def test_italic_typefaces_lean_only_on_old_white_plates_and_curl_only_the_stroke_five():
    rng = np.random.default_rng(9)
    old_white = TEMPLATES["white", "one-row"]
    leans = [sample_typeface(rng, old_white, italic_p=1.0).lean for _ in range(200)]
    assert all(ITALIC_LEAN[0] <= lean <= ITALIC_LEAN[1] for lean in leans)
    assert not any(sample_typeface(rng, TEMPLATES["white-8", "one-row"], italic_p=1.0).lean for _ in range(50))
    assert not any(sample_typeface(rng, old_white).lean for _ in range(50))
    tokens = ["55", "노", "3456"]
    for digit_font, five in (("plate", CURLED_FIVE), ("plate-thin", CURLED_FIVE), ("nanum", "5")):
        typeface = Typeface(digit_font, "plate", 0, 0, digit_aspect=0.5, hangul_aspect=0.7, lean=0.1)
        shapes = [g.shape for g in layout_glyphs(rng, tokens, old_white, "white", "one-row", typeface)]
        assert shapes == [five, five, "노", "3", "4", five, "6"]
    assert PRESETS["train"]["italic_p"] > 0 == PRESETS["clean"]["italic_p"]


def test_italic_plates_keep_every_glyph_box_on_the_plate():
    for index in range(30):
        sample = render_plate(plate_rng(3, index), {"italic_p": 1.0}, style="white")
        assert_boxes_inside(sample)


def test_plate_typeface_digits_have_the_flat_top_of_the_real_plate_three_and_five():
    for font in STROKE_FONTS:
        for digit in "357":
            top = master_glyph(font, digit, 0)[:8] > 127
            assert top.any(axis=0).mean() > 0.7, (font, digit)
        assert (master_glyph(font, "8", 0)[:8] > 127).any(axis=0).mean() < 0.7, font
        assert master_glyph(font, "1", 0).shape[1] < 0.7 * master_glyph(font, "0", 0).shape[1], font


def test_plate_typeface_seven_is_narrow_and_its_stem_ends_vertical():
    """Real plate 7s (read as 1 when the generator drew a wide diagonal 7) bend down to a vertical stem."""
    for font in STROKE_FONTS:
        seven = master_glyph(font, "7", 0) > 127
        height, width = seven.shape
        centre = [np.nonzero(seven[round(f * (height - 1))])[0].mean() for f in (0.3, 0.7, 0.97)]
        assert width < 0.9 * master_glyph(font, "0", 0).shape[1], font
        assert centre[0] - centre[1] > 2 * (centre[1] - centre[2]) >= 0, (font, centre)


def test_hangul_is_never_heavier_than_the_digits_and_often_lighter():
    rng = np.random.default_rng(0)
    typefaces = [sample_typeface(rng, TEMPLATES["white", "one-row"]) for _ in range(400)]
    assert all(t.hangul_weight <= t.weight for t in typefaces)
    assert 0.2 < np.mean([t.hangul_weight < t.weight for t in typefaces]) < 0.8


def _laid_out_plates(rng: np.random.Generator, style: str, layout: str, n: int) -> Iterator[tuple]:
    """`n` plate strings of `style` laid out on its `layout` template: (glyphs, typeface, the string's own layout)."""
    template = TEMPLATES[style, layout]
    for _ in range(n):
        text, _, drawn_layout = sample_plate_text(rng, style)
        typeface = sample_typeface(rng, template)
        yield layout_glyphs(rng, LABEL_MAP.split(text), template, style, layout, typeface), typeface, drawn_layout


@pytest.mark.parametrize("style", ["white", "white-8"])
def test_long_one_row_plates_have_their_bolts_beside_the_outer_characters(style):
    """As on real crops, where a bolt touching the first digit was read as an extra 1."""
    rng = np.random.default_rng(4)
    template, radius = TEMPLATES[style, "one-row"], 6.0
    for glyphs, _, layout in _laid_out_plates(rng, style, "one-row", 50):
        assert layout == "one-row"
        (left_bolt, _), (right_bolt, _) = bolt_centres(rng, template, glyphs, radius)
        left, right = min(g.x for g in glyphs), max(g.x + g.width for g in glyphs)
        assert 0 < left - left_bolt <= 2 * radius and 0 < right_bolt - right <= 2 * radius
        assert radius <= left_bolt and right_bolt <= template.size_mm[0] - radius


@pytest.mark.parametrize("style", ["green", "yellow"])
def test_two_row_plates_can_have_their_bolts_beside_the_top_row(style):
    """With `top_row_bolts_p` 1 the bolts sit just outside the top row's outer characters (real crops show them
    there, and a bolt touching the first digit was read as a 9); with 0 they stay put and nothing is drawn."""
    rng = np.random.default_rng(6)
    template, radius = TEMPLATES[style, "two-row"], 12.0
    for glyphs, _, _ in _laid_out_plates(rng, style, "two-row", 30):
        state = rng.bit_generator.state
        np.testing.assert_array_equal(
            bolt_centres(rng, template, glyphs, radius), np.multiply(template.bolts, template.size_mm)
        )
        assert rng.bit_generator.state == state
        (left_bolt, left_y), (right_bolt, _) = bolt_centres(rng, template, glyphs, radius, top_row_bolts_p=1.0)
        top_row = [g for g in glyphs if g.y < left_y]
        left, right = min(g.x for g in top_row), max(g.x + g.width for g in top_row)
        assert 0 < left - left_bolt <= 2 * radius and 0 < right_bolt - right <= 2 * radius
    assert PRESETS["train"]["top_row_bolts_p"] > 0 == PRESETS["clean"]["top_row_bolts_p"]


PLATE_GREY = (240, 240, 240)


def test_screws_are_small_dark_dots_with_a_slot(monkeypatch):
    """The old white plates' screws: half a bolt's radius, and no ink further than the slot's end."""
    monkeypatch.setattr(synth_render, "BOLT_KIND_P", load_script("scripts/right_edge_study.py").SCREWS)
    rng = np.random.default_rng(5)
    template, drawn = TEMPLATES["white", "one-row"], 0
    for glyphs, _, _ in _laid_out_plates(rng, "white", "one-row", 30):
        plate = Image.new("RGB", template.size_mm, PLATE_GREY)
        bolts = synth_render._draw_bolts(ImageDraw.Draw(plate), rng, template, glyphs, 1.0, PLATE_GREY)
        if bolts is None:  # a plate without bolts
            continue
        drawn += 1
        centres, radius = bolts
        assert 2.0 <= radius <= 4.5
        ys, xs = np.nonzero(np.asarray(plate.convert("L")) < 100)
        distance = np.hypot(xs[:, None] - centres[:, 0], ys[:, None] - centres[:, 1]).min(axis=1)
        assert distance.max() <= 2 * radius + 1.5
    assert drawn > 20


def test_the_border_of_long_plates_can_run_just_outside_their_bolts(monkeypatch):
    """As on real old white plates: a digit, a bolt touching it, then the border's dark side."""
    monkeypatch.setattr(synth_render, "RIM_BESIDE_BOLTS_P", 1.0)
    size, centres, radius, drawn = (520, 110), np.array([[60.0, 55.0], [450.0, 55.0]]), 5.0, 0
    for seed in range(20):
        plate = Image.new("RGB", size, PLATE_GREY)
        rng = np.random.default_rng(seed)
        synth_render._draw_rim(ImageDraw.Draw(plate), rng, "white", size, PLATE_GREY, (20, 20, 20), (centres, radius))
        dark = np.flatnonzero(np.asarray(plate.convert("L"))[55] < 220)
        if not dark.size:  # a plate without a border
            continue
        drawn += 1
        left, right = dark[dark < size[0] / 2], dark[dark >= size[0] / 2]
        assert centres[0, 0] - 3 * radius <= left.min() and left.max() < centres[0, 0] - radius
        assert centres[1, 0] + radius < right.min() and right.max() <= centres[1, 0] + 3 * radius
    assert drawn > 10


@pytest.mark.parametrize(("style", "median_width"), [("green", 1.0), ("yellow", 0.85)])
def test_old_two_row_plates_print_a_low_wide_top_row(style, median_width):
    """As on real 1996-2006 plates: top-row digits as wide as tall or wider, much smaller than the bottom
    ones, spread wide (the yellow top row, longer with its region name, is condensed to fit)."""
    rng = np.random.default_rng(3)
    template = TEMPLATES[style, "two-row"]
    plate_w, plate_h = template.size_mm
    widest = []
    for glyphs, _, _ in _laid_out_plates(rng, style, "two-row", 50):
        top = [g for g in glyphs if g.y + g.height < 0.4 * plate_h]
        bottom_digit = max(g.height for g in glyphs if g not in top)
        top_digits = [g for g in top if g.char.isdigit()]
        widest.append(max(g.width / g.height for g in top_digits))
        assert all(g.height < 0.45 * bottom_digit for g in top_digits)
        span = (max(g.x + g.width for g in top) - min(g.x for g in top)) / plate_w
        assert 0.22 < span < 0.6, span
    assert median_width < np.median(widest) and max(widest) < 1.4


@pytest.mark.parametrize("style", ["green", "yellow"])
def test_old_two_row_plates_print_the_top_row_zero_round(style):
    """Real `05나` and `03더` print their top-row 0 as an ellipse (read as 9 or 6 while the generator drew the
    later typeface's stadium there); the bottom row keeps the stadium."""
    rng = np.random.default_rng(7)
    template = TEMPLATES[style, "two-row"]
    glyphs = layout_glyphs(rng, ["05", "나", "8106"], template, style, "two-row", sample_typeface(rng, template))
    assert [g.shape for g in glyphs] == [ROUND_ZERO, "5", "나", "8", "1", "0", "6"]
    for font in DIGIT_FONTS:
        assert (master_glyph(font, ROUND_ZERO, 0) > 127).any(), font
    for font in STROKE_FONTS:
        stadium, ellipse = (master_glyph(font, shape, 0) > 127 for shape in ("0", ROUND_ZERO))
        near_top = round(0.15 * (stadium.shape[0] - 1))
        stadium_left, ellipse_left = (np.nonzero(g[near_top])[0].min() for g in (stadium, ellipse))
        assert ellipse_left - stadium_left > 0.05 * stadium.shape[1], font


@pytest.mark.parametrize("style", ["green", "yellow"])
def test_old_two_row_plates_have_bolts_a_third_of_the_top_row_high(style):
    """Measured on the largest real 1996-2006 green crops: bolt radius 0.3-0.4 of the top row's height."""
    rng = np.random.default_rng(6)
    template = TEMPLATES[style, "two-row"]
    top_row_mm = template.rows[0].height * template.size_mm[1]
    ratios = [bolt_radius(rng, template) / top_row_mm for _ in range(200)]
    assert 0.24 < min(ratios) and max(ratios) < 0.41


def test_long_white_plates_vary_the_serial_gap_and_lettering_weight():
    """Real 2006-2019 white plates print the serial from right after the Hangul to a wide gap, some in thin
    lettering; a generator without either misread real `14모4101` as `114모4101`."""
    rng = np.random.default_rng(5)
    gaps, thin = [], 0
    for glyphs, typeface, _ in _laid_out_plates(rng, "white", "one-row", 200):
        thin += typeface.weight == 0 and typeface.digit_font in THIN_FONTS
        hangul = next(i for i, g in enumerate(glyphs) if not g.char.isdigit())
        before, after = glyphs[hangul], glyphs[hangul + 1]
        gaps.append((after.x - before.x - before.width) / after.height)
    assert min(gaps) < 0.3 < 0.7 < max(gaps)
    assert 0.2 < thin / 200 < 0.5


def test_commercial_one_row_plates_stack_a_wide_region_beside_a_spread_serial():
    """As on real yellow one-row crops (`서울33아9334` read as `인천33아9334`): each stacked region syllable is
    wider than tall, and the serial runs from right beside that column to the right bolt."""
    rng = np.random.default_rng(4)
    plate_w = TEMPLATES["yellow", "one-row"].size_mm[0]
    for glyphs, _, _ in _laid_out_plates(rng, "yellow", "one-row", 50):
        region, serial = glyphs[:2], glyphs[2:]
        assert all(1.05 < g.width / g.height < 1.55 for g in region)
        assert serial[0].x - max(g.x + g.width for g in region) < 0.12 * plate_w
        assert max(g.x + g.width for g in serial) > 0.85 * plate_w


def test_glyph_boxes_follow_the_perspective_warp_exactly(monkeypatch):
    """A white rectangle on a black plate, warped onto a black background, lands exactly in its box."""
    monkeypatch.setattr("kr_lpr.synth_scene._background", lambda rng, w, h: np.zeros((h, w, 3), np.float32))
    params = resolve_strength({"rotation_deg": 15.0, "perspective": 0.15, "shear": 0.2, "frame_p": 0.0})
    plate = np.zeros((60, 240, 4), dtype=np.uint8)
    plate[..., 3] = 255
    plate[12:48, 50:80, :3] = 255
    for seed in range(10):
        crop, boxes = compose(np.random.default_rng(seed), plate, np.array([[50, 12, 80, 48]], np.float32), params)
        ys, xs = np.nonzero(crop[..., 0] > 127)
        found = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
        assert np.abs(found - boxes[0]).max() <= 1.0, (found, boxes[0])  # pixels count when half covered


def test_text_crops_cut_around_the_characters_within_their_margins():
    """Crops cut around the text keep every character whole and leave margins of at most the preset's share
    of the text's size (plus a pixel of rounding); whole-plate crops leave more room around the text."""
    low, high = PRESETS["train"]["text_margin_x"]
    assert low >= 0
    filled = {}
    for text_crop_p in (0.0, 1.0):
        filled[text_crop_p] = []
        for seed in range(40):
            sample = render_plate(
                np.random.default_rng([seed, 5]),
                {"text_crop_p": text_crop_p, "loose_p": 0.0, "tall_p": 0.0, "small_tall_p": 0.0, "flat_p": 0.0},
            )
            assert_boxes_inside(sample)
            boxes, width = sample["boxes"], sample["image"].size[0]
            text = boxes[:, 2].max() - boxes[:, 0].min()
            if text_crop_p:
                assert boxes[:, 0].min() <= high * text + 1 and width - boxes[:, 2].max() <= high * text + 1
            filled[text_crop_p].append(text / width)
    assert np.median(filled[1.0]) > np.median(filled[0.0]) + 0.05


def test_tall_crops_take_a_detector_box_shape_around_long_plates_only():
    """Tall crops, as detectors box small real plates, hold the whole text, are as tight at the sides as tight
    crops and `tall_aspect` times as tall as wide; two-row plates, already about that shape, barely change."""
    low, high = PRESETS["train"]["tall_aspect"]
    aspect, side = {}, {}
    for style in ("white", "green"):
        for tall_p in (0.0, 1.0):
            strength = {"tall_p": tall_p, "small_tall_p": tall_p, "loose_p": 0.0, "text_crop_p": 0.0, "flat_p": 0.0}
            samples = [render_plate(plate_rng(3, i), strength, style=style) for i in range(30)]
            for sample in samples:
                assert_boxes_inside(sample)
            aspect[style, tall_p] = np.array([s["image"].size[1] / s["image"].size[0] for s in samples])
            side[style, tall_p] = np.median([s["boxes"][:, 0].min() / s["image"].size[0] for s in samples])
    assert np.all(aspect["white", 1.0] > low - 0.02) and np.all(aspect["white", 1.0] < high + 0.02)
    assert np.median(aspect["white", 0.0]) < low
    assert abs(side["white", 1.0] - side["white", 0.0]) < 0.02
    assert np.median(aspect["green", 1.0]) - np.median(aspect["green", 0.0]) < 0.06
    assert PRESETS["clean"]["tall_p"] == 0 < PRESETS["train"]["tall_p"]


def test_small_plates_are_cut_tall_as_detectors_box_them():
    """Plates narrower than `small_plate_px` are cut tall with their own chance, `small_tall_p`: real crops under
    160 px wide are much taller for their width than large ones (`scripts/crop_aspect_study.py`)."""
    low = PRESETS["train"]["tall_aspect"][0]
    strength = {"tall_p": 0.0, "small_tall_p": 1.0, "loose_p": 0.0, "text_crop_p": 0.0}
    aspect = {}
    for size, widths in (("small", (90, 140)), ("large", (200, 300))):
        samples = [
            render_plate(plate_rng(6, i), {**strength, "plate_width_px": widths}, style="white") for i in range(20)
        ]
        aspect[size] = np.array([s["image"].size[1] / s["image"].size[0] for s in samples])
    assert np.all(aspect["small"] > low - 0.02)
    assert np.median(aspect["large"]) < low
    train = PRESETS["train"]
    assert train["small_tall_p"] > train["tall_p"] and train["small_plate_px"] <= train["plate_width_px"][1]


def test_flat_crops_cut_large_plates_around_their_text_and_leave_small_ones_alone():
    """`flat_p` of the plates at least `small_plate_px` wide are cut flat, as detectors box large real plates
    (`scripts/crop_aspect_study.py`): around their text with `flat_margin_y` above and below, never tall. Smaller
    plates draw nothing more, so they stay byte for byte."""
    fixed = {"tall_p": 1.0, "small_tall_p": 1.0, "loose_p": 0.0, "text_crop_p": 0.0}

    def plates(widths: tuple[int, int], flat_p: float) -> list[dict]:
        strength = {**fixed, "plate_width_px": widths, "flat_p": flat_p}
        return [render_plate(plate_rng(9, i), strength, style="white") for i in range(12)]

    tall_low = PRESETS["train"]["tall_aspect"][0]
    margin = PRESETS["train"]["flat_margin_y"][1]
    large = {flat_p: plates((200, 300), flat_p) for flat_p in (0.0, 1.0)}
    assert all(s["image"].size[1] / s["image"].size[0] > tall_low - 0.02 for s in large[0.0])
    for sample in large[1.0]:
        assert_boxes_inside(sample)
        boxes, height = sample["boxes"], sample["image"].size[1]
        text = boxes[:, 3].max() - boxes[:, 1].min()
        assert boxes[:, 1].min() <= margin * text + 1 and height - boxes[:, 3].max() <= margin * text + 1
    assert np.median([s["image"].size[1] / s["image"].size[0] for s in large[1.0]]) < 0.3
    small = [plates((90, 140), flat_p) for flat_p in (0.0, 1.0)]
    assert [s["image"].tobytes() for s in small[0]] == [s["image"].tobytes() for s in small[1]]
    assert PRESETS["train"]["flat_p"] > 0 == PRESETS["clean"]["flat_p"]


def test_small_plates_are_squeezed_sideways_and_large_ones_left_alone():
    """Plates narrower than `small_plate_px` are squeezed with chance `small_squeeze_p` by a factor drawn from
    `squeeze` (real small crops hold narrower lettering, `scripts/squeeze_study.py`): the same plate's text keeps
    its height and loses that share of its width. Larger plates draw nothing more, so they stay byte for byte."""
    fixed = {"tall_p": 0.0, "small_tall_p": 0.0, "loose_p": 0.0, "text_crop_p": 0.0, "squeeze": (0.7, 0.7)}

    def plates(widths: tuple[int, int], small_squeeze_p: float) -> list[dict]:
        strength = {**fixed, "plate_width_px": widths, "small_squeeze_p": small_squeeze_p}
        return [render_plate(plate_rng(8, i), strength, style="white") for i in range(10)]

    def text_aspect(samples: list[dict]) -> np.ndarray:
        boxes = [sample["boxes"] for sample in samples]
        return np.array([(b[:, 2].max() - b[:, 0].min()) / (b[:, 3].max() - b[:, 1].min()) for b in boxes])

    np.testing.assert_allclose(text_aspect(plates((90, 140), 1.0)), 0.7 * text_aspect(plates((90, 140), 0.0)), 0.02)
    large = [plates((200, 300), p) for p in (0.0, 1.0)]
    assert [s["image"].tobytes() for s in large[0]] == [s["image"].tobytes() for s in large[1]]
    assert PRESETS["train"]["small_squeeze_p"] > 0 == PRESETS["clean"]["small_squeeze_p"]


def test_sharpening_adds_fine_detail_and_leaves_the_other_draws_alone():
    """Unsharp masking raises the fine detail the model sees (`scripts/sharpness_study.py`); its draws come last,
    so with `sharpen_p` 0 the generator draws the same plates as before it sharpened."""
    fine_detail = load_script("scripts/sharpness_study.py").fine_detail
    detail, plates = {}, {}
    for sharpen_p in (0.0, 1.0):
        strength = {"sharpen_p": sharpen_p, "sharpen": (2.0, 2.0), "jpeg_p": 0.0}
        samples = [render_plate(plate_rng(4, i), strength) for i in range(20)]
        detail[sharpen_p] = np.array([fine_detail(sample["image"], 128, 64) for sample in samples])
        plates[sharpen_p] = [(sample["text"], sample["image"].size) for sample in samples]
    assert plates[0.0] == plates[1.0]
    assert np.all(detail[1.0] > detail[0.0])
    assert PRESETS["clean"]["sharpen_p"] == 0 < PRESETS["train"]["sharpen_p"]


def test_small_crop_misreadings_count_only_the_crops_under_160_px():
    """`scripts/sharpness_study.py` lists where small crops go wrong: wide crops and right readings add nothing."""
    misreadings = load_script("scripts/sharpness_study.py").small_crop_misreadings
    images = [Image.new("RGB", (width, 40)) for width in (100, 150, 120, 400)]
    labels = ["12가3455", "12가3457", "34나5678", "12가3455"]
    readings = ["12가3465", "12가3451", "34나5678", "12가3466"]
    assert misreadings(images, labels, readings) == "5→6 (1), 7→1 (1)"
    assert misreadings(images[3:], labels[3:], readings[3:]) == ""


def echo_recognizer(images: list[str]) -> list[dict]:
    """Stands in for a `LicensePlateRecognizer` in the study tests: each "image" is the reading it returns."""
    return [{"text": reading} for reading in images]


def test_two_row_bolt_study_counts_first_characters_misread_and_those_read_as_9():
    """`scripts/two_row_bolt_study.py`'s row: crops, exact share, first character misread, and of those how many
    read as a 9 (a real 9 read right does not count)."""
    first_character_cells = load_script("scripts/two_row_bolt_study.py").first_character_cells
    labels = ["02주7732", "94조2426", "46라3730", "서울42다3311"]
    readings = ["92주7732", "94조2426", "46러3730", "대전42다3311"]

    assert first_character_cells(echo_recognizer, readings, labels) == ["4", "25.0%", "50.0%", "1"]


def test_two_row_study_scores_the_lettering_before_the_serial_and_the_serial_apart():
    """`scripts/two_row_study.py`'s row: plates, exact share, the shares whose text before the four serial
    digits and whose last four characters are read right (a dropped serial digit shifts the text before it), and
    the crops' median height over width."""
    row_cells = load_script("scripts/two_row_study.py").row_cells
    labels = ["02주7732", "46라3730", "서울42다3311", "79버1012"]
    readings = ["02주7732", "46러3730", "서울42더311", "79버1112"]
    crops = [Image.new("RGB", (200, height)) for height in (100, 110, 120, 170)]

    def recognizer(images: list[Image.Image]) -> list[dict]:
        return [{"text": reading} for reading in readings]

    assert row_cells(recognizer, crops, labels) == ["4", "25.0%", "50.0%", "50.0%", "0.57"]


def test_vowel_tick_study_counts_a_and_eo_syllables_read_with_the_other_vowel():
    """`scripts/vowel_tick_study.py`'s row: plates, exact share, then per vowel ㅏ/ㅓ its plates and the share read
    with the other one (a region's 서 or a misread consonant does not count)."""
    vowel_cells = load_script("scripts/vowel_tick_study.py").vowel_cells
    labels = ["56하5037", "46라3730", "12가3456", "서울42더3311", "31버2478"]
    readings = ["56허5037", "46하3730", "12가3456", "서울42다3311", "31허2478"]

    assert vowel_cells(echo_recognizer, readings, labels) == ["5", "20.0%", "3", "33.3%", "2", "50.0%"]


def test_italic_study_counts_fives_read_as_six_and_measures_the_lettering_lean():
    """`scripts/italic_study.py`: plates, exact share, the 5s of readings as long as their label (a dropped
    character aligns nothing) and the share read 6; and the lean of dark strokes on a light crop."""
    study = load_script("scripts/italic_study.py")
    labels = ["64구8586", "35루0570", "12가3456", "55호7029"]
    readings = ["64구8686", "35루0570", "12가3456", "5호7029"]

    assert study.five_cells(echo_recognizer, readings, labels) == ["4", "50.0%", "4", "25.0%"]
    for lean in (0.0, 0.12):
        crop = np.full((40, 160), 230, dtype=np.uint8)
        for x in range(20, 140, 16):
            crop[4:36, x : x + 4] = 20
        crop = lean_glyph(255 - crop, lean)[:, :160]
        assert study.lettering_lean(Image.fromarray(255 - crop)) == pytest.approx(lean, abs=0.02)


def test_same_seed_same_plate_and_different_seeds_differ():
    first, again = render_plate(np.random.default_rng(42)), render_plate(np.random.default_rng(42))
    assert first["text"] == again["text"] and first["style"] == again["style"]
    assert first["image"].tobytes() == again["image"].tobytes()
    np.testing.assert_array_equal(first["boxes"], again["boxes"])
    others = [render_plate(np.random.default_rng(seed))["image"].tobytes() for seed in range(43, 46)]
    assert first["image"].tobytes() not in others


def test_a_plate_string_is_the_first_draw_of_its_plate():
    """The CLI's histogram re-samples the strings alone; that must reproduce the rendered plates."""
    for index in range(5):
        assert sample_plate_text(plate_rng(7, index)) == itemgetter("text", "style", "layout")(
            render_plate(plate_rng(7, index))
        )


def test_plate_strings_follow_the_hangul_rules_and_cover_every_token():
    rng = np.random.default_rng(0)
    draws = [sample_plate_text(rng) for _ in range(20000)]
    histogram = token_histogram([text for text, _, _ in draws])
    assert set(histogram) == set(DEFAULT_TOKENS) and min(histogram.values()) > 0
    for text, style, layout in draws:
        hangul = next(token for token in LABEL_MAP.split(text) if token in HANGUL)
        assert layout in EXPECTED_LAYOUTS.get(style, {"one-row"})
        if style in ("yellow", "orange"):
            assert text[:2] in REGIONS
        if style == "yellow":
            assert hangul in COMMERCIAL_HANGUL + DELIVERY_HANGUL
        elif style == "green":
            assert hangul in PRIVATE_HANGUL
        elif style.startswith("white"):
            assert hangul in PRIVATE_HANGUL + RENTAL_HANGUL
    assert {layout for _, style, layout in draws if style == "yellow"} == {"one-row", "two-row"}
    styles = Counter(style for _, style, _ in draws)
    assert set(styles) == set(STYLES)
    assert sum(n for s, n in styles.items() if s.startswith("white")) > len(draws) / 2  # the real-crop majority


def test_style_weights_reweight_the_training_mix_and_leave_the_default_stream_unchanged():
    def draws(strength, n: int = 4000) -> list[tuple[str, str, str]]:
        params = resolve_strength(strength)
        return [sample_plate_text(plate_rng(3, index), None, params["style_weights"]) for index in range(n)]

    default, boosted = draws("train"), draws({"style_weights": {"green": 0.25}})
    assert default == [sample_plate_text(plate_rng(3, index)) for index in range(4000)]
    two_row = [sum(layout == "two-row" for _, _, layout in mix) / len(mix) for mix in (default, boosted)]
    assert 0.15 < two_row[0] < 0.22 and 0.25 < two_row[1] < 0.33  # 0.195 / 1.06 and 0.355 / 1.22 expected
    none_but_green = {"style_weights": {name: float(name == "green") for name in STYLES}}
    assert {style for _, style, _ in draws(none_but_green, 50)} == {"green"}
    assert render_plate(plate_rng(3, 0), none_but_green)["style"] == "green"
    with pytest.raises(ValueError, match="unknown plate styles"):
        SyntheticPlateStream(strength={"style_weights": {"purple": 1.0}})
    with pytest.raises(ValueError, match="non-negative"):
        SyntheticPlateStream(strength={"style_weights": {"green": -1.0}})


def test_hangul_weights_draw_the_named_syllables_more_often_within_each_style():
    def syllables(hangul_weights, n: int = 3000) -> Counter:
        draws = [sample_plate_text(plate_rng(5, index), "white", None, hangul_weights) for index in range(n)]
        return Counter(text[2] for text, _, _ in draws)

    uniform, weighted = syllables(None), syllables({"가": 4.0, "거": 4.0, "바": 9.0})
    assert uniform == syllables({})  # no weights: the evaluation sets' stream, draw for draw
    # white plates print 35 syllables: 가 and 거 at 4 of 41 weight units each, 바 (commercial) never
    assert weighted["가"] / 3000 == pytest.approx(4 / 41, abs=0.025) and "바" not in weighted
    assert uniform["가"] / 3000 == pytest.approx(1 / 35, abs=0.01)
    assert render_plate(plate_rng(5, 0), {"hangul_weights": {"가": 1e9}}, "white")["text"][2] == "가"
    with pytest.raises(ValueError, match="unknown syllables"):
        SyntheticPlateStream(strength={"hangul_weights": {"A": 2.0}})
    with pytest.raises(ValueError, match="positive"):
        SyntheticPlateStream(strength={"hangul_weights": {"가": 0.0}})


def test_two_row_small_rules_off_cuts_two_row_crops_tighter_and_leaves_one_row_plates_alone():
    """With `two_row_small_rules` False the small two-row plates are neither squeezed nor cut tall, as real two-row
    crops are not; every one-row plate is drawn byte for byte as before."""
    tight = {"two_row_small_rules": False}
    aspects = {True: [], False: []}
    for index in range(120):
        for rules, strength in ((True, "train"), (False, tight)):
            plate = render_plate(plate_rng(9, index), strength, style="green")
            aspects[rules].append(plate["image"].height / plate["image"].width)
        one_row = [render_plate(plate_rng(9, index), strength, style="white")["image"] for strength in ("train", tight)]
        assert np.array_equal(np.asarray(one_row[0]), np.asarray(one_row[1]))
    assert np.percentile(aspects[False], 90) < np.percentile(aspects[True], 90) - 0.05
    assert all(PRESETS[name]["two_row_small_rules"] for name in PRESETS)


def test_unknown_style_and_strength_are_clear_errors():
    with pytest.raises(ValueError, match="unknown plate style"):
        sample_plate_text(np.random.default_rng(0), "purple")
    with pytest.raises(ValueError, match="unknown strength preset"):
        render_plate(np.random.default_rng(0), "extreme")
    with pytest.raises(ValueError, match="unknown strength keys"):
        SyntheticPlateStream(strength={"blurr_p": 0.5})
    assert resolve_strength({"preset": "clean", "noise_p": 1.0})["noise_p"] == 1.0


def test_stream_is_deterministic_and_splits_plates_across_dataloader_workers():
    stream = SyntheticPlateStream(seed=5, length=8, transform=lambda d: {**d, "size": d["image"].size})
    assert len(stream) == 8
    single = list(stream)
    assert [d["text"] for d in single] == [d["text"] for d in stream]
    loader = torch.utils.data.DataLoader(stream, batch_size=2, num_workers=2, collate_fn=list)
    batches = list(loader)
    by_worker = [batch for i, batch in enumerate(batches) if i % 2 == 0], [b for i, b in enumerate(batches) if i % 2]
    texts = [[d["text"] for batch in worker for d in batch] for worker in by_worker]
    assert texts[0] and texts[1] and texts[0] != texts[1]  # worker ids draw different plates
    assert sorted(texts[0] + texts[1]) == sorted(d["text"] for d in single)  # ...and together the same ones
    assert all(d["size"] == d["image"].size for batch in batches for d in batch)  # transform ran in the workers
    with pytest.raises(TypeError):
        len(SyntheticPlateStream())


def read_dataset(folder: Path) -> dict[int, tuple[str, np.ndarray, tuple[int, int]]]:
    entries = {}
    for image_path in sorted(folder.glob("*.jpg")):
        text, index = image_path.stem.rsplit("_", 1)
        boxes = np.loadtxt(image_path.with_suffix(".txt"), ndmin=2)
        with Image.open(image_path) as image:
            entries[int(index)] = (text, boxes, image.size)
    return entries


def test_write_dataset_parses_back(tmp_path):
    out = write_dataset(tmp_path / "synth", n=12, seed=3, split="val")
    assert LabelMap.load(out / "labels.names").tokens == DEFAULT_TOKENS
    entries = read_dataset(out / "val")
    assert sorted(entries) == list(range(12))
    assert len(list((out / "val").glob("*.txt"))) == 12
    for text, boxes, (width, height) in entries.values():
        assert is_valid_plate(text)
        assert boxes.shape == (len(LABEL_MAP.split(text)), 4)
        assert np.all(boxes >= 0) and np.all(boxes[:, [0, 2]] <= width) and np.all(boxes[:, [1, 3]] <= height)
    # plate i of a seed is the same plate whether written by one or several processes, or streamed
    parallel = read_dataset(write_dataset(tmp_path / "parallel", n=12, seed=3, split="val", workers=2) / "val")
    assert {i: e[0] for i, e in parallel.items()} == {i: e[0] for i, e in entries.items()}
    assert [d["text"] for d in SyntheticPlateStream(seed=3, length=12)] == [entries[i][0] for i in range(12)]


def test_cli_writes_the_layout_and_reports_the_token_histogram(tmp_path, capsys):
    assert cli.main(["synth", "--out", str(tmp_path), "--n", "4", "--seed", "1", "--strength", "hard"]) == 0
    assert (tmp_path / "labels.names").read_text(encoding="utf-8").split() == list(DEFAULT_TOKENS)
    assert len(list((tmp_path / "train").glob("*.jpg"))) == 4
    assert "token histogram (67 tokens" in capsys.readouterr().out
    assert cli.main(["synth", "--texts-only", "--n", "300"]) == 0
    assert "sampled 300 plates" in capsys.readouterr().out
    for bad in (["--n", "0", "--out", str(tmp_path)], ["--strength", "extreme", "--out", str(tmp_path)], []):
        with pytest.raises(SystemExit) as exit_info:
            cli.main(["synth", *bad])
        assert exit_info.value.code == 2
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert cli.main(["synth", "--out", str(blocker), "--n", "1"]) == 1
    assert "not a folder" in capsys.readouterr().err


def test_crop_margins_reads_the_text_extent_that_the_boxes_give(capsys, tmp_path):
    """The script's mask reading of the release model lands near the synthetic crops' true text extent."""
    margins = load_script("scripts/crop_margins.py")
    boxes = np.array([[10, 5, 30, 25], [40, 10, 90, 35]], np.float32)
    np.testing.assert_allclose(margins.extent_fractions(boxes, 100, 50), [0.1, 0.1, 0.1, 0.3, 0.8, 0.6])
    samples = [render_plate(plate_rng(3, index)) for index in range(32)]
    predicted = margins.predicted_extents(str(REPO_ROOT / "release" / "kr-lpr"), [s["image"] for s in samples])
    truth = np.array([margins.extent_fractions(s["boxes"], *s["image"].size) for s in samples])
    assert abs(np.median(predicted[:, 4]) - np.median(truth[:, 4])) < 0.08  # text width; the masks read a little wide
    assert margins.main(["--synthetic-n", "8", "--real", str(tmp_path)]) == 0
    assert "real plates not found" in capsys.readouterr().out
