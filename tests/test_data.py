"""Plate folder scanning, the datasets builder, the model-input transform and `kr-lpr validate-data`."""

from __future__ import annotations

import json
import shutil
import struct
import unicodedata
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from kr_lpr import TinyLPRConfig, TinyLPRImageProcessor, TinyLPRModel
from kr_lpr.data import (
    PLATE_FEATURES,
    collate_plates,
    encode_plate_example,
    load_plate_dataset,
    main,
    scan_plate_folder,
    validate_plate_folder,
)

REAL_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "real_kr"

# A 200x50 one-row plate 12가3456: one box per token.
ONE_ROW_SIZE = (200, 50)
ONE_ROW_BOXES = np.array([[10 + 25 * i, 8, 30 + 25 * i, 42] for i in range(7)], dtype=np.float32)
# A 160x80 two-row plate 서울12가3456: top row 서 울 1 2, bottom row 가 3 4 5 6, one box per character.
TWO_ROW_SIZE = (160, 80)
TWO_ROW_CHAR_BOXES = np.array(
    [[20, 4, 36, 30], [38, 4, 54, 30], [70, 4, 84, 30], [86, 4, 100, 30]]
    + [[8 + 30 * i, 38, 30 + 30 * i, 76] for i in range(5)],
    dtype=np.float32,
)
TWO_ROW_TOKEN_BOXES = np.concatenate([[[20, 4, 54, 30]], TWO_ROW_CHAR_BOXES[2:]]).astype(np.float32)


def draw_plate(path: Path, size: tuple[int, int], boxes: np.ndarray, background: int = 30, mode: str = "L") -> None:
    """Bright rectangles where the characters are, so masks can be checked against the pixels."""
    image = Image.new("L", size, background)
    draw = ImageDraw.Draw(image)
    for x1, y1, x2, y2 in boxes:
        draw.rectangle([x1, y1, x2 - 1, y2 - 1], fill=230)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.convert(mode).save(path)


def write_boxes(path: Path, boxes: np.ndarray) -> None:
    path.write_text("".join(" ".join(f"{v:g}" for v in box) + "\n" for box in boxes), encoding="utf-8")


def make_good_folder(root: Path) -> Path:
    draw_plate(root / "train" / "12가3456_0.jpg", ONE_ROW_SIZE, ONE_ROW_BOXES, background=20)
    write_boxes(root / "train" / "12가3456_0.txt", ONE_ROW_BOXES)
    draw_plate(root / "train" / "서울12가3456_0.png", TWO_ROW_SIZE, TWO_ROW_CHAR_BOXES)
    write_boxes(root / "train" / "서울12가3456_0.txt", TWO_ROW_CHAR_BOXES)
    draw_plate(root / "train" / "34나5678_1.jpg", ONE_ROW_SIZE, ONE_ROW_BOXES, background=40)
    draw_plate(root / "val" / "123다4567_0.bmp", ONE_ROW_SIZE, ONE_ROW_BOXES[:4], background=50)
    return root


@pytest.fixture
def good_folder(tmp_path: Path) -> Path:
    return make_good_folder(tmp_path / "plates")


@pytest.fixture(scope="module")
def processor() -> TinyLPRImageProcessor:
    return TinyLPRImageProcessor()


@pytest.fixture(scope="module")
def config() -> TinyLPRConfig:
    return TinyLPRConfig()


def test_scan_reads_splits_tokens_boxes_and_layouts(good_folder: Path):
    splits, problems = scan_plate_folder(good_folder)
    assert problems == []
    assert sorted(splits) == ["train", "val"]
    train = {record.path.name: record for record in splits["train"]}
    one_row, two_row, no_boxes = train["12가3456_0.jpg"], train["서울12가3456_0.png"], train["34나5678_1.jpg"]

    assert one_row.tokens == list("12가3456") and one_row.layout == "one-row"
    np.testing.assert_array_equal(one_row.boxes, ONE_ROW_BOXES)
    # the region's two glyph boxes became one token box, their union
    assert two_row.tokens == ["서울", "1", "2", "가", "3", "4", "5", "6"] and two_row.layout == "two-row"
    np.testing.assert_array_equal(two_row.boxes, TWO_ROW_TOKEN_BOXES)
    assert no_boxes.boxes is None and no_boxes.layout is None and no_boxes.text == "34나5678"
    assert [record.text for record in splits["val"]] == ["123다4567"]


def test_scan_one_box_per_token_for_region(tmp_path: Path):
    image = tmp_path / "d" / "서울12가3456_3.png"
    draw_plate(image, TWO_ROW_SIZE, TWO_ROW_CHAR_BOXES)
    write_boxes(image.with_suffix(".txt"), TWO_ROW_TOKEN_BOXES)
    (record,) = scan_plate_folder(tmp_path / "d")[0]["train"]
    np.testing.assert_array_equal(record.boxes, TWO_ROW_TOKEN_BOXES)


def test_images_directly_in_folder_form_train_split_and_names_are_nfc(tmp_path: Path):
    decomposed = unicodedata.normalize("NFD", "12가3456_0.jpg")
    draw_plate(tmp_path / decomposed, ONE_ROW_SIZE, ONE_ROW_BOXES)
    splits, _ = scan_plate_folder(tmp_path)
    assert list(splits) == ["train"]
    assert splits["train"][0].tokens == list("12가3456")


def test_labels_names_defines_the_token_set(tmp_path: Path):
    (tmp_path / "labels.names").write_text("\n".join("0123456789가") + "\n", encoding="utf-8")
    draw_plate(tmp_path / "train" / "12가3456_0.jpg", ONE_ROW_SIZE, ONE_ROW_BOXES)
    draw_plate(tmp_path / "train" / "12나3456_0.jpg", ONE_ROW_SIZE, ONE_ROW_BOXES, background=60)
    splits, problems = scan_plate_folder(tmp_path, skip_bad=True)
    assert [record.text for record in splits["train"]] == ["12가3456"]
    assert len(problems) == 1 and "12나3456_0.jpg" in problems[0] and "'나'" in problems[0]


def _zero_width_png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 0, 10, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def _make_bad(folder: Path, kind: str) -> tuple[str, str]:
    """Writes one bad file of `kind` into `folder`; returns (file name the problem must name, phrase)."""
    if kind == "corrupt":
        (folder / "12가3456_7.jpg").write_bytes(b"this is not a jpeg")
        return "12가3456_7.jpg", "not a readable image"
    if kind == "truncated":
        draw_plate(folder / "full.jpg", ONE_ROW_SIZE, ONE_ROW_BOXES, background=90)
        data = (folder / "full.jpg").read_bytes()
        (folder / "full.jpg").unlink()
        (folder / "12가3456_7.jpg").write_bytes(data[: len(data) // 2])
        return "12가3456_7.jpg", "corrupt image"
    if kind == "empty":
        (folder / "12가3456_7.jpg").write_bytes(b"")
        return "12가3456_7.jpg", "empty file"
    if kind == "zero_size":
        (folder / "12가3456_7.png").write_bytes(_zero_width_png())
        return "12가3456_7.png", "zero size"
    draw_plate(folder / "bad.jpg", ONE_ROW_SIZE, ONE_ROW_BOXES, background=90)
    if kind == "bad_name":
        (folder / "bad.jpg").rename(folder / "12가3456.jpg")
        return "12가3456.jpg", "<plate>_<idx>"
    if kind == "bad_index":
        (folder / "bad.jpg").rename(folder / "12가3456_x.jpg")
        return "12가3456_x.jpg", "<plate>_<idx>"
    if kind == "unknown_char":
        (folder / "bad.jpg").rename(folder / "12A3456_0.jpg")
        return "12A3456_0.jpg", "unknown character 'A'"
    (folder / "bad.jpg").rename(folder / "77가7777_0.jpg")
    boxes_file = folder / "77가7777_0.txt"
    if kind == "box_count":
        write_boxes(boxes_file, ONE_ROW_BOXES[:5])
        return "77가7777_0.txt", "5 boxes for 7 tokens"
    if kind == "malformed_txt":
        write_boxes(boxes_file, ONE_ROW_BOXES)
        boxes_file.write_text(boxes_file.read_text() + "1 2 three 4\n", encoding="utf-8")
        return "77가7777_0.txt", "line 8"
    if kind == "inverted_box":
        write_boxes(boxes_file, np.concatenate([ONE_ROW_BOXES[:6], [[40, 8, 20, 42]]]))
        return "77가7777_0.txt", "line 7"
    if kind == "box_outside":
        write_boxes(boxes_file, np.concatenate([ONE_ROW_BOXES[:6], [[180, 8, 202.5, 42]]]))
        return "77가7777_0.txt", "outside the 200x50 image"
    if kind == "duplicate":
        shutil.copy(folder / "12가3456_0.jpg", folder / "12가3456_9.jpg")
        (folder / "77가7777_0.jpg").unlink()
        return "12가3456_9.jpg", "duplicate of train/12가3456_0.jpg"
    if kind == "orphan_txt":
        (folder / "77가7777_0.jpg").unlink()
        write_boxes(folder / "88가8888_0.txt", ONE_ROW_BOXES)
        return "88가8888_0.txt", "without an image"
    raise AssertionError(kind)


BAD_KINDS = [
    "corrupt",
    "truncated",
    "empty",
    "zero_size",
    "bad_name",
    "bad_index",
    "unknown_char",
    "box_count",
    "malformed_txt",
    "inverted_box",
    "box_outside",
    "duplicate",
    "orphan_txt",
]


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_every_bad_file_is_a_problem_naming_it(good_folder: Path, kind: str):
    named, phrase = _make_bad(good_folder / "train", kind)
    with pytest.raises(ValueError, match="1 problem"):
        scan_plate_folder(good_folder)
    splits, problems = scan_plate_folder(good_folder, skip_bad=True)
    assert len(problems) == 1, problems
    assert named in problems[0] and phrase in problems[0], problems[0]
    # the good plates survive, the bad one is left out
    assert sorted(r.path.name for r in splits["train"]) == ["12가3456_0.jpg", "34나5678_1.jpg", "서울12가3456_0.png"]


def test_box_within_one_pixel_tolerance_is_fine(tmp_path: Path):
    draw_plate(tmp_path / "12가3456_0.jpg", ONE_ROW_SIZE, ONE_ROW_BOXES)
    write_boxes(tmp_path / "12가3456_0.txt", np.concatenate([ONE_ROW_BOXES[:6], [[180, -0.5, 201, 50.8]]]))
    _, problems = scan_plate_folder(tmp_path)
    assert problems == []


@pytest.mark.parametrize("mode", ["I;16", "RGBA", "RGB"])
def test_16bit_and_rgba_images_convert(tmp_path: Path, processor, config, mode: str):
    path = tmp_path / f"12가3456_{len(mode)}.png"
    if mode == "I;16":
        canvas = np.full((50, 200), 20 * 257, dtype=np.uint16)
        canvas[8:42, 10:30] = 230 * 257
        Image.fromarray(canvas).save(path)
    else:
        draw_plate(path, ONE_ROW_SIZE, ONE_ROW_BOXES[:1], mode=mode)
    write_boxes(path.with_suffix(".txt"), ONE_ROW_BOXES)
    (record,) = scan_plate_folder(tmp_path)[0]["train"]
    encoded = encode_plate_example(Image.open(path), record.text, record.boxes, processor, config)
    pixels = encoded["pixel_values"][0]
    assert pixels[24:40, 8:17].min() > 0.85  # inside the first character, white in every mode
    assert pixels[21:43, 40:60].mean() < 0.2


def test_encode_matches_processor_and_one_row_masks_follow_boxes(tmp_path: Path, processor, config):
    path = tmp_path / "12가3456_0.png"
    draw_plate(path, ONE_ROW_SIZE, ONE_ROW_BOXES)
    encoded = encode_plate_example(str(path), "12가3456", ONE_ROW_BOXES, processor, config)

    assert encoded["pixel_values"].dtype == torch.float32 and encoded["pixel_values"].shape == (1, 64, 128)
    expected_pixels = processor(images=[str(path)], return_tensors="pt")["pixel_values"][0]
    assert torch.equal(encoded["pixel_values"], expected_pixels)
    assert encoded["labels"].tolist() == processor.label_map.encode("12가3456")
    assert encoded["labels"].dtype == torch.long and encoded["has_masks"].item() is True

    masks = encoded["char_masks"].numpy()
    assert masks.dtype == np.uint8 and masks.shape == (16, 64, 128)
    # 200x50, fill_width: 128 wide (x 0.64) and 48 tall (x 0.64 x 1.5 = 0.96), centred: 8 rows of padding above
    expected = np.rint(ONE_ROW_BOXES * [0.64, 0.96, 0.64, 0.96] + [0, 8, 0, 8]).astype(int)
    pixels = encoded["pixel_values"][0].numpy()
    for i, (x1, y1, x2, y2) in enumerate(expected):
        ys, xs = np.nonzero(masks[2 * i])
        assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (x1, y1, x2, y2)
        assert masks[2 * i].sum() == (x2 - x1) * (y2 - y1)
        assert pixels[masks[2 * i] == 1].mean() > 0.8  # the mask sits on the drawn character
    assert not masks[1::2].any() and not masks[14:].any()


def test_two_row_masks_put_top_row_tokens_first(tmp_path: Path, processor, config):
    path = tmp_path / "서울12가3456_0.png"
    draw_plate(path, TWO_ROW_SIZE, TWO_ROW_CHAR_BOXES)
    write_boxes(path.with_suffix(".txt"), TWO_ROW_CHAR_BOXES)
    (record,) = scan_plate_folder(tmp_path)[0]["train"]
    masks = encode_plate_example(Image.open(path), record.text, record.boxes, processor, config)["char_masks"].numpy()

    # 160x80 -> 128x64 exactly (scale 0.8, no padding)
    expected = np.rint(TWO_ROW_TOKEN_BOXES * 0.8).astype(int)
    for i, (x1, y1, x2, y2) in enumerate(expected):
        ys, xs = np.nonzero(masks[2 * i])
        assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (x1, y1, x2, y2)
    rows = [np.nonzero(masks[2 * i].any(1))[0] for i in range(8)]
    assert all(r.max() < 32 for r in rows[:3])  # 서울, 1, 2: top row
    assert all(r.min() >= 30 for r in rows[3:])  # 가 3 4 5 6: bottom row
    assert masks[0, 10, 16:43].all()  # the merged region box spans both glyphs
    assert not masks[1::2].any()


def test_encode_without_boxes_and_its_errors(tmp_path: Path, processor, config):
    image = Image.new("L", ONE_ROW_SIZE, 128)
    encoded = encode_plate_example(image, "12가3456", None, processor, config)
    assert not encoded["char_masks"].any() and encoded["has_masks"].item() is False
    with pytest.raises(ValueError, match="9 tokens; the model reads at most 8"):
        encode_plate_example(image, "서울123가4567", None, processor, config)
    with pytest.raises(ValueError, match="7 tokens but 6 boxes"):
        encode_plate_example(image, "12가3456", ONE_ROW_BOXES[:6], processor, config)
    with pytest.raises(ValueError, match="unknown character 'X'.*'12X3456'"):
        encode_plate_example(image, "12X3456", None, processor, config)


def test_collate_pads_labels_and_the_batch_trains(tmp_path: Path, processor, config):
    two_row = tmp_path / "two.png"
    draw_plate(two_row, TWO_ROW_SIZE, TWO_ROW_CHAR_BOXES)
    features = [
        encode_plate_example(Image.new("L", ONE_ROW_SIZE, 90), "12가3456", None, processor, config),
        encode_plate_example(two_row, "서울12가3456", TWO_ROW_TOKEN_BOXES, processor, config),
    ]
    batch = collate_plates(features)
    assert batch["pixel_values"].shape == (2, 1, 64, 128)
    assert batch["char_masks"].shape == (2, 16, 64, 128) and batch["char_masks"].dtype == torch.uint8
    assert batch["has_masks"].tolist() == [False, True]
    assert batch["labels"].shape == (2, 8) and batch["labels"].dtype == torch.long
    assert batch["labels"][0, 7].item() == -100 and (batch["labels"][0, :7] > 0).all()
    assert batch["labels"][1].tolist() == processor.label_map.encode("서울12가3456")

    output = TinyLPRModel(config)(**batch)
    assert torch.isfinite(output.loss) and output.mask_loss.item() > 0


def test_load_plate_dataset_features_and_rows(good_folder: Path, tmp_path: Path):
    dataset = load_plate_dataset(good_folder, cache_dir=tmp_path / "cache")
    assert sorted(dataset) == ["train", "val"]
    train = dataset["train"]
    assert train.features == PLATE_FEATURES
    rows = {row["text"]: row for row in train}
    assert rows["서울12가3456"]["tokens"][0] == "서울"
    np.testing.assert_array_equal(np.array(rows["서울12가3456"]["boxes"]), TWO_ROW_TOKEN_BOXES)
    assert rows["서울12가3456"]["layout"] == "two-row" and rows["서울12가3456"]["style"] == ""
    assert rows["34나5678"]["boxes"] == [] and rows["34나5678"]["layout"] == ""
    assert rows["12가3456"]["image"].size == ONE_ROW_SIZE

    # a changed folder is rescanned, not served from the stale cache
    draw_plate(good_folder / "val" / "99가9999_0.jpg", ONE_ROW_SIZE, ONE_ROW_BOXES, background=70)
    assert load_plate_dataset(good_folder, cache_dir=tmp_path / "cache")["val"].num_rows == 2


def test_load_plate_dataset_embedded_images_outlive_the_folder(good_folder: Path, tmp_path: Path):
    dataset = load_plate_dataset(good_folder, embed_images=True, cache_dir=tmp_path / "cache")
    shutil.rmtree(good_folder)
    images = [row["image"] for row in dataset["train"]]
    assert sorted(image.size for image in images) == sorted([ONE_ROW_SIZE, ONE_ROW_SIZE, TWO_ROW_SIZE])


def test_load_plate_dataset_rejects_bad_files_unless_skipped(good_folder: Path, tmp_path: Path):
    (good_folder / "train" / "12가3456_5.jpg").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="12가3456_5.jpg"):
        load_plate_dataset(good_folder, cache_dir=tmp_path / "cache")
    assert load_plate_dataset(good_folder, skip_bad=True, cache_dir=tmp_path / "cache")["train"].num_rows == 3


def make_csv_folder(root: Path) -> Path:
    draw_plate(root / "crops" / "a.jpg", ONE_ROW_SIZE, ONE_ROW_BOXES)
    draw_plate(root / "crops" / "b.png", TWO_ROW_SIZE, TWO_ROW_CHAR_BOXES)
    (root / "labels.csv").write_text(
        "file,label,layout,plate_style,note\n"
        "crops/a.jpg,12가3456,one-row,white,\n"
        "crops/b.png,경기12가3456,two-row,green,uncertain label\n",
        encoding="utf-8",
    )
    return root


def test_labels_csv_layout_is_a_test_split(tmp_path: Path):
    splits, problems = scan_plate_folder(make_csv_folder(tmp_path))
    assert problems == [] and list(splits) == ["test"]
    a, b = splits["test"]
    assert (a.text, a.layout, a.style, a.boxes) == ("12가3456", "one-row", "white", None)
    assert (b.tokens[0], b.layout, b.style) == ("경기", "two-row", "green")


def test_labels_csv_problems_name_rows_and_files(tmp_path: Path):
    root = make_csv_folder(tmp_path)
    with open(root / "labels.csv", "a", encoding="utf-8") as handle:
        handle.write("crops/missing.jpg,12가3456,one-row,white,\ncrops/a.jpg,12Z3456,one-row,white,\n")
    splits, problems = scan_plate_folder(root, skip_bad=True)
    assert len(splits["test"]) == 2
    assert any("line 4" in p and "crops/missing.jpg" in p for p in problems)
    assert any(p.startswith("crops/a.jpg") and "'Z'" in p for p in problems)


def test_validate_report_counts_histogram_and_layouts(good_folder: Path):
    report = validate_plate_folder(good_folder)
    assert report["splits"] == {
        "train": {"images": 3, "with_boxes": 2, "without_boxes": 1},
        "val": {"images": 1, "with_boxes": 0, "without_boxes": 1},
    }
    assert report["tokens"]["가"] == 2 and report["tokens"]["서울"] == 1 and report["tokens"]["3"] == 4
    assert report["tokens"]["배"] == 0 and len(report["tokens"]) == 67
    assert report["layouts"] == {"unknown": 2, "one-row": 1, "two-row": 1}
    assert report["problems"] == [] and report["skipped_images"] == 0


def test_cli_exit_codes_skip_bad_and_json(good_folder: Path, capsys):
    assert main([str(good_folder)]) == 0
    assert "train" in capsys.readouterr().out

    for kind in ("corrupt", "orphan_txt"):
        _make_bad(good_folder / "train", kind)
    _make_bad(good_folder / "val", "bad_name")
    assert main([str(good_folder)]) == 1
    out = capsys.readouterr().out
    assert "problems: 3" in out and "val/12가3456.jpg" in out and "train/88가8888_0.txt" in out

    assert main([str(good_folder), "--skip-bad"]) == 0
    assert "2 image(s) would be skipped" in capsys.readouterr().out

    assert main([str(good_folder), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["skipped_images"] == 2 and len(report["problems"]) == 3
    assert report["splits"]["train"]["images"] == 3


def test_cli_missing_folder_is_a_clear_error(tmp_path: Path, capsys):
    assert main([str(tmp_path / "nope")]) == 2
    assert "data folder not found" in capsys.readouterr().err


@pytest.mark.skipif(not REAL_DATA.is_dir(), reason=f"real plates not present at {REAL_DATA}")
def test_real_plates_scan_clean():
    report = validate_plate_folder(REAL_DATA)
    assert report["problems"] == []
    assert report["splits"] == {"test": {"images": 281, "with_boxes": 0, "without_boxes": 281}}
    assert report["layouts"] == {"one-row": 258, "two-row": 23}
