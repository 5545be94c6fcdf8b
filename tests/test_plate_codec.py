import numpy as np
import pytest

from kr_lpr.plate_codec_tinylpr import (
    DEFAULT_TOKENS,
    HANGUL,
    REGIONS,
    LabelMap,
    ctc_beam_decode,
    ctc_greedy_decode,
    decode_batch,
    is_valid_plate,
)


@pytest.fixture
def label_map() -> LabelMap:
    return LabelMap()


def one_hot_steps(label_map: LabelMap, steps: list[str | None], peak: float = 0.9) -> np.ndarray:
    """A (T, K) probability matrix with `peak` on each step's token (None = blank)."""
    probs = np.full((len(steps), label_map.num_classes), (1 - peak) / (label_map.num_classes - 1))
    for t, token in enumerate(steps):
        probs[t, label_map.encode(token)[0] if token else 0] = peak
    return probs


def test_default_charset():
    assert len(HANGUL) == 40 and len(REGIONS) == 17
    assert len(DEFAULT_TOKENS) == 67 and LabelMap().num_classes == 68


@pytest.mark.parametrize(
    "text, n_tokens", [("12가3456", 7), ("123가4567", 8), ("서울12가3456", 8), ("경기71아3701", 8)]
)
def test_round_trip(label_map, text, n_tokens):
    ids = label_map.encode(text)
    assert len(ids) == n_tokens and 0 not in ids
    assert label_map.decode(ids) == text


def test_region_is_one_token(label_map):
    assert label_map.split("서울12가3456")[0] == "서울"


@pytest.mark.parametrize("text, char", [("12A3456", "A"), ("12가 3456", " "), ("12힣3456", "힣")])
def test_unknown_character_named(label_map, text, char):
    with pytest.raises(ValueError) as error:
        label_map.encode(text)
    assert repr(char) in str(error.value) and text in str(error.value)


def test_labels_names_round_trip(tmp_path, label_map):
    label_map.save(tmp_path / "labels.names")
    assert LabelMap.load(tmp_path / "labels.names").tokens == label_map.tokens
    assert (tmp_path / "labels.names").read_text(encoding="utf-8").splitlines()[50] == "서울"


def test_duplicate_tokens_rejected():
    with pytest.raises(ValueError, match="duplicate"):
        LabelMap(["1", "1"])


@pytest.mark.parametrize(
    "text, valid",
    [("12가3456", True), ("123가4567", True), ("서울12가3456", True), ("12가345", False), ("1가3456", False),
     ("뉴욕12가3456", False), ("12A3456", False), ("1234가567", False)],
)  # fmt: skip
def test_plate_format(text, valid):
    assert is_valid_plate(text) is valid


def test_greedy_collapses_repeats_and_blanks(label_map):
    steps = ["1", "1", None, "1", "2", "가", None, "3", "3", None, "3", "4", "5", None, None, None]
    reading = ctc_greedy_decode(one_hot_steps(label_map, steps), label_map)
    assert reading.text == "112가3345"
    assert len(reading.char_confidences) == 8
    assert reading.confidence == pytest.approx(0.9**8)


def test_greedy_region_and_validity(label_map):
    steps = ["서울", None, "1", None, "2", None, "가", None, "3", None, "4", None, "5", None, "6", None]
    reading = ctc_greedy_decode(one_hot_steps(label_map, steps), label_map)
    assert reading.text == "서울12가3456" and reading.valid


def test_greedy_empty(label_map):
    reading = ctc_greedy_decode(one_hot_steps(label_map, [None] * 16), label_map)
    assert reading.text == "" and reading.confidence == 0.0 and not reading.valid


def test_beam_prefers_valid_format(label_map):
    # Greedy reads "12가34567" (invalid); the runner-up at the last step is blank, giving a valid plate.
    steps = ["1", None, "2", None, "가", None, "3", None, "4", None, "5", None, "6", None, "7", None]
    probs = one_hot_steps(label_map, steps)
    probs[14] = 0.0
    probs[14, label_map.encode("7")[0]], probs[14, 0] = 0.55, 0.45
    assert ctc_greedy_decode(probs, label_map).text == "12가34567"
    reading = ctc_beam_decode(probs, label_map, beam_width=10)
    assert reading.text == "12가3456" and reading.valid


def test_beam_matches_greedy_on_confident_input(label_map):
    steps = ["3", "3", None, "0", "수", None, "0", "1", "9", "6", None, None, None, None, None, None]
    probs = one_hot_steps(label_map, steps, peak=0.99)
    assert ctc_beam_decode(probs, label_map).text == ctc_greedy_decode(probs, label_map).text == "30수0196"


def test_beam_breaks_ties_as_greedy_does(label_map):
    # uint8 logits come on a grid of steps, so two tokens often tie; both readings below are valid plates,
    # and the format filter must not swap greedy's for the other one (it cost 7 real plates in uint8).
    steps = ["4", None, "3", None, "나", None, "3", None, "4", None, "4", None, "2", None, None, None]
    probs = one_hot_steps(label_map, steps)
    probs[4, label_map.encode("너")[0]] = probs[4, label_map.encode("나")[0]]
    assert label_map.encode("나")[0] < label_map.encode("너")[0]
    assert ctc_greedy_decode(probs, label_map).text == "43나3442"
    assert ctc_beam_decode(probs, label_map).text == "43나3442"


def test_beam_keeps_repeats_separated_by_blank(label_map):
    steps = ["6", None, "6", None, "가", "1", None, "1", "1", None, "1", None, None, None, None, None]
    assert ctc_beam_decode(one_hot_steps(label_map, steps), label_map).text == "66가111"


def test_decode_batch_methods(label_map):
    logits = np.log(np.stack([one_hot_steps(label_map, ["1", None] * 8)] * 3))
    assert [r["text"] for r in decode_batch(logits, label_map, "beam")] == ["11111111"] * 3
    with pytest.raises(ValueError, match="greedy"):
        decode_batch(logits, label_map, "viterbi")
