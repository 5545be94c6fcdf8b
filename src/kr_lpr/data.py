"""Plate folders: scanning and checking them, a `datasets` builder, and the model-input transform.

Folder layouts:

* `DIR/{train,val,test,...}/<plate>_<idx>.jpg` (also .jpeg, .png, .bmp), e.g. `train/12가3456_0.jpg`
  (seed 002). When `DIR` itself holds the images it is one split named `train`.
* `DIR/labels.csv` with columns `file,label,layout,plate_style` (files relative to `DIR`), the layout of
  the real evaluation crops in ../shared/data/real_kr; it is one split named `test`.

`DIR/labels.names` (one token per line) defines the token set; without it the default Korean set is
used. Plate names are NFC-normalised first, because macOS stores Hangul file names decomposed.

Character boxes: an optional `<plate>_<idx>.txt` next to an image holds one `x1 y1 x2 y2` line (source
pixels) per token, in plate-string order, so a two-row plate lists its top row first. A region such as
`서울` is one token with one box; a file may instead give one box per character (two boxes for `서울`,
one per glyph), and the boxes of each multi-character token are then merged into their union. A
missing .txt is allowed (the plate trains without character masks) and `validate-data` counts it.

`encode_plate_example` turns an image and its boxes into model inputs: the image processor's own
letterbox (the same resize and pad as inference) and per-step masks in which token i fills channel 2i,
the order the model's order maps learn (see `TinyLPRConfig.time_steps`).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import logging
import re
import sys
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import datasets
import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from tqdm.auto import tqdm

from .configuration_tinylpr import TinyLPRConfig
from .image_processing_tinylpr import LABELS_FILE, TinyLPRImageProcessor
from .plate_codec_tinylpr import DEFAULT_TOKENS, LabelMap
from .preprocessing_tinylpr import MAX_IMAGE_PIXELS

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
CSV_FILE = "labels.csv"
CSV_SPLIT = "test"
# Annotation tools round box corners, so a box may stick out of its image by this many pixels.
BOX_TOLERANCE = 1.0
MAX_PROBLEMS_IN_ERROR = 20
_NAME_PATTERN = re.compile(r"^(?P<plate>.+)_(?P<index>\d+)$")
_SPLIT_NAME_PATTERN = re.compile(r"^\w+$")

PLATE_FEATURES = datasets.Features(
    {
        "image": datasets.Image(),
        "text": datasets.Value("string"),
        "tokens": datasets.List(datasets.Value("string")),
        "boxes": datasets.List(datasets.List(datasets.Value("float32"))),
        "layout": datasets.Value("string"),
        "style": datasets.Value("string"),
    }
)


@dataclass
class PlateRecord:
    """One plate image: `boxes` are `(n_tokens, 4)` source pixels or None; `layout` is "one-row" or
    "two-row" (from labels.csv or the box geometry), `style` the plate colour from labels.csv."""

    path: Path
    text: str
    tokens: list[str]
    boxes: np.ndarray | None
    layout: str | None
    style: str | None


@dataclass
class _Source:
    """An image to check, with its label when labels.csv gives one (else it comes from the file name)."""

    split: str
    image: Path
    label: str | None = None
    layout: str | None = None
    style: str | None = None


@dataclass
class _Scan:
    splits: dict[str, list[PlateRecord]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    skipped_images: int = 0


def read_label_map(data_dir: str | Path) -> LabelMap:
    """The folder's token set: `DIR/labels.names` when present, else the default Korean tokens."""
    names = Path(data_dir) / LABELS_FILE
    if not names.is_file():
        return LabelMap(DEFAULT_TOKENS)
    try:
        return LabelMap.load(names)
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"{names}: {error}") from error


def layout_from_boxes(boxes: np.ndarray) -> str:
    """Returns "two-row" when the box centres form two height clusters (a gap over half a character height)."""
    centres = np.sort((boxes[:, 1] + boxes[:, 3]) / 2)
    heights = boxes[:, 3] - boxes[:, 1]
    gaps = np.diff(centres)
    return "two-row" if gaps.size and gaps.max() > 0.5 * np.median(heights) else "one-row"


def _existing_folder(data_dir: str | Path) -> Path:
    root = Path(data_dir)
    if not root.is_dir():
        raise ValueError(f"data folder not found: {root}")
    return root


def _is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def _list_sources(root: Path) -> tuple[list[_Source], list[str]]:
    """Every image to check, and the problems found while listing (box files without an image)."""
    if (root / CSV_FILE).is_file():
        return _list_csv(root)
    if any(_is_image(path) for path in root.iterdir()):
        folders = {"train": root}
    else:
        folders = {d.name: d for d in sorted(root.iterdir()) if d.is_dir() and not d.name.startswith((".", "_"))}
    sources, problems = [], []
    for split, folder in folders.items():
        files = sorted(folder.iterdir())
        images = [path for path in files if _is_image(path)]
        sources += [_Source(split, image) for image in images]
        stems = {image.stem for image in images}
        problems += [
            f"{path.relative_to(root).as_posix()}: box file without an image"
            for path in files
            if path.suffix == ".txt" and path.stem not in stems
        ]
    return sources, problems


def _list_csv(root: Path) -> tuple[list[_Source], list[str]]:
    with open(root / CSV_FILE, encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    missing = {"file", "label"} - set(reader.fieldnames or ())
    if missing:
        return [], [f"{CSV_FILE}: missing column(s) {sorted(missing)}; expected file,label,layout,plate_style"]
    sources, problems = [], []
    for line, row in enumerate(rows, start=2):
        image = root / (row["file"] or "").strip()
        if not _is_image(image):
            problems.append(f"{CSV_FILE} line {line}: image not found or not .jpg/.jpeg/.png/.bmp: {row['file']!r}")
            continue
        sources.append(
            _Source(CSV_SPLIT, image, row["label"] or "", row.get("layout") or None, row.get("plate_style") or None)
        )
    return sources, problems


def _read_image(path: Path) -> tuple[tuple[int, int], str]:
    """Decodes the whole file (truncated files fail only then); returns its size and a content hash."""
    data = path.read_bytes()
    if not data:
        raise ValueError("empty file")
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.width * image.height > MAX_IMAGE_PIXELS:
                raise ValueError(f"image too large ({image.width}x{image.height})")
            image.load()
            size = image.size
    except UnidentifiedImageError as error:
        raise ValueError("not a readable image (unknown format, corrupt header or zero size)") from error
    except (OSError, SyntaxError, Image.DecompressionBombError) as error:
        raise ValueError(f"corrupt image: {error}") from error
    return size, hashlib.sha1(data).hexdigest()


def _read_boxes(box_file: Path) -> np.ndarray:
    try:
        lines = box_file.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as error:
        raise ValueError(f"box file {box_file.name} is not UTF-8 text") from error
    boxes = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            box = [float(value) for value in line.split()]
        except ValueError:
            box = []
        if len(box) != 4 or not np.all(np.isfinite(box)) or box[2] <= box[0] or box[3] <= box[1]:
            raise ValueError(
                f"box file {box_file.name} line {number}: expected 'x1 y1 x2 y2' with x1<x2, y1<y2, got {line!r}"
            )
        boxes.append(box)
    return np.asarray(boxes, dtype=np.float32).reshape(-1, 4)


def _boxes_per_token(boxes: np.ndarray, tokens: list[str], box_file: Path) -> np.ndarray:
    """One box per token; one box per character is merged per multi-character token (see the module doc)."""
    if len(boxes) == len(tokens):
        return boxes
    if len(boxes) == sum(len(token) for token in tokens):
        ends = np.cumsum([len(token) for token in tokens])
        groups = np.split(boxes, ends[:-1])
        return np.stack([np.concatenate([g[:, :2].min(0), g[:, 2:].max(0)]) for g in groups]).astype(np.float32)
    raise ValueError(f"box file {box_file.name} has {len(boxes)} boxes for {len(tokens)} tokens {tokens}")


def _check_inside(boxes: np.ndarray, size: tuple[int, int], box_file: Path) -> None:
    width, height = size
    outside = (
        (boxes[:, 0] < -BOX_TOLERANCE)
        | (boxes[:, 1] < -BOX_TOLERANCE)
        | (boxes[:, 2] > width + BOX_TOLERANCE)
        | (boxes[:, 3] > height + BOX_TOLERANCE)
    )
    if outside.any():
        index = int(np.argmax(outside))
        raise ValueError(
            f"box file {box_file.name} box {index + 1} {boxes[index].tolist()} lies outside the {width}x{height} image"
        )


def _plate_text(source: _Source) -> str:
    if source.label is not None:
        return unicodedata.normalize("NFC", source.label.strip())
    match = _NAME_PATTERN.match(unicodedata.normalize("NFC", source.image.stem))
    if match is None:
        raise ValueError("file name does not parse as <plate>_<idx> (e.g. 12가3456_0.jpg)")
    return match["plate"]


def _build_record(source: _Source, label_map: LabelMap, max_tokens: int | None) -> tuple[PlateRecord, str]:
    """The record and its image's content hash; raises ValueError describing the first problem."""
    size, digest = _read_image(source.image)
    text = _plate_text(source)
    tokens = label_map.split(text)
    if not tokens:
        raise ValueError("empty plate text")
    if max_tokens is not None and len(tokens) > max_tokens:
        raise ValueError(f"plate {text!r} has {len(tokens)} tokens; the model reads at most {max_tokens}")
    boxes, layout = None, source.layout
    box_file = source.image.with_suffix(".txt")
    if box_file.is_file():
        boxes = _boxes_per_token(_read_boxes(box_file), tokens, box_file)
        _check_inside(boxes, size, box_file)
        layout = layout or layout_from_boxes(boxes)
    return PlateRecord(source.image, text, tokens, boxes, layout, source.style), digest


def _scan(root: Path, label_map: LabelMap, split: str | None = None, max_tokens: int | None = None) -> _Scan:
    sources, problems = _list_sources(root)
    if split is not None:
        sources = [source for source in sources if source.split == split]
    scan = _Scan(problems=problems)
    first_with_hash: dict[str, str] = {}
    for source in tqdm(sources, desc=f"checking {root.name}", unit="img", disable=None):
        name = source.image.relative_to(root).as_posix()
        try:
            record, digest = _build_record(source, label_map, max_tokens)
            if digest in first_with_hash:
                raise ValueError(f"duplicate of {first_with_hash[digest]} (same bytes)")
        except ValueError as error:
            scan.problems.append(f"{name}: {error}")
            scan.skipped_images += 1
            continue
        first_with_hash[digest] = name
        scan.splits.setdefault(source.split, []).append(record)
    if not sources:
        where = f"{root} (split {split!r})" if split else str(root)
        scan.problems.append(f"{where}: no plate images (.jpg/.jpeg/.png/.bmp) found")
    return scan


def scan_plate_folder(
    data_dir: str | Path,
    split: str | None = None,
    label_map: LabelMap | None = None,
    skip_bad: bool = False,
    max_tokens: int | None = None,
) -> tuple[dict[str, list[PlateRecord]], list[str]]:
    """Checks a plate folder and returns `({split: records}, problems)`; each problem names its file.

    Args:
        split: keep only this split.
        label_map: the token set; default `read_label_map(data_dir)`.
        skip_bad: leave bad images out and return the problems, instead of raising ValueError listing them.
            Of two identical images, the first in split and name order is kept.
        max_tokens: treat plates with more tokens as bad (`TinyLPRConfig.max_plate_tokens`).
    """
    root = _existing_folder(data_dir)
    scan = _scan(root, label_map if label_map is not None else read_label_map(root), split, max_tokens)
    if scan.problems and not skip_bad:
        listed = "\n  ".join(scan.problems[:MAX_PROBLEMS_IN_ERROR])
        more = len(scan.problems) - MAX_PROBLEMS_IN_ERROR
        tail = f"\n  ... and {more} more (kr-lpr validate-data {root} lists them all)" if more > 0 else ""
        raise ValueError(
            f"{len(scan.problems)} problem(s) in {root} (--skip-bad / skip_bad=True leaves them out):\n  {listed}{tail}"
        )
    if not scan.splits:
        raise ValueError(f"no usable plate images in {root}" + (f" for split {split!r}" if split else ""))
    return scan.splits, scan.problems


def folder_fingerprint(data_dir: str | Path) -> str:
    """Hash of every file's path, size and modification time, so a changed folder gets a fresh cache."""
    root = Path(data_dir)
    digest = hashlib.sha1()
    for path in sorted(root.rglob("*")):
        if path.is_file():
            stat = path.stat()
            digest.update(f"{path.relative_to(root).as_posix()}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


@dataclass
class PlateFolderConfig(datasets.BuilderConfig):
    """`skip_bad`: leave bad images out (logged) instead of failing; `embed_images`: see `load_plate_dataset`."""

    skip_bad: bool = False
    embed_images: bool = False


class PlateDatasetBuilder(datasets.GeneratorBasedBuilder):
    """A plate folder as a `datasets.DatasetDict` with `PLATE_FEATURES`, one split per split folder.

    `PlateDatasetBuilder(data_dir=DIR).download_and_prepare()` then `.as_dataset()`; the cache is keyed by
    `folder_fingerprint(DIR)`, so editing the folder rebuilds it.
    """

    BUILDER_CONFIG_CLASS = PlateFolderConfig

    def __init__(self, *args, **kwargs):
        if kwargs.get("data_dir") and kwargs.get("hash") is None:
            kwargs["hash"] = folder_fingerprint(kwargs["data_dir"])
        kwargs.setdefault("dataset_name", "kr_lpr_plates")
        super().__init__(*args, **kwargs)

    def _info(self) -> datasets.DatasetInfo:
        return datasets.DatasetInfo(
            description="Korean license plate crops with per-token boxes", features=PLATE_FEATURES
        )

    def _split_generators(self, dl_manager) -> list[datasets.SplitGenerator]:
        if not self.config.data_dir:
            raise ValueError("PlateDatasetBuilder needs data_dir=<plate folder>")
        splits, problems = scan_plate_folder(self.config.data_dir, skip_bad=self.config.skip_bad)
        if problems:
            logger.warning("skipped %d bad file(s) in %s; first: %s", len(problems), self.config.data_dir, problems[0])
        unusable = [name for name in splits if not _SPLIT_NAME_PATTERN.match(name)]
        if unusable:
            raise ValueError(f"split folder names must be letters, digits or _ for datasets, got {unusable}")
        return [datasets.SplitGenerator(name=name, gen_kwargs={"records": records}) for name, records in splits.items()]

    def _generate_examples(self, records: list[PlateRecord]):
        for index, record in enumerate(records):
            image = (
                {"bytes": record.path.read_bytes(), "path": record.path.name}
                if self.config.embed_images
                else str(record.path.resolve())
            )
            boxes = [] if record.boxes is None else record.boxes.tolist()
            yield (
                index,
                {
                    "image": image,
                    "text": record.text,
                    "tokens": record.tokens,
                    "boxes": boxes,
                    "layout": record.layout or "",
                    "style": record.style or "",
                },
            )


def load_plate_dataset(
    data_dir: str | Path, skip_bad: bool = False, embed_images: bool = False, cache_dir: str | Path | None = None
) -> datasets.DatasetDict:
    """The folder as a `DatasetDict` (features in `PLATE_FEATURES`; `boxes` is `[]` without a .txt).

    By default the Arrow cache stores image paths: building it is cheap and the folder stays the one copy
    of the pixels, but the dataset only works where the folder is. `embed_images=True` stores the image
    bytes, for a self-contained dataset to `save_to_disk` or `push_to_hub`.
    """
    root = _existing_folder(data_dir)
    builder = PlateDatasetBuilder(
        data_dir=str(root.resolve()),
        skip_bad=skip_bad,
        embed_images=embed_images,
        cache_dir=None if cache_dir is None else str(cache_dir),
    )
    builder.download_and_prepare()
    return builder.as_dataset()


def encode_plate_example(
    image: str | Path | Image.Image | np.ndarray,
    text: str,
    boxes: np.ndarray | None,
    processor: TinyLPRImageProcessor,
    config: TinyLPRConfig,
) -> dict:
    """One plate as model inputs: `pixel_values` (1, H, W) float32, `labels` (n_tokens,) long,
    `char_masks` (time_steps, H, W) uint8 with token i's box in channel 2i, `has_masks` bool.

    `boxes` are `(n_tokens, 4)` source pixels; None (or empty) gives all-zero masks and `has_masks=False`.
    """
    height, width = config.image_height, config.image_width
    if (processor.image_height, processor.image_width) != (height, width):
        raise ValueError(
            f"processor size {processor.image_height}x{processor.image_width} differs from the model's {height}x{width}"
        )
    tokens = processor.label_map.split(text)
    if not tokens:
        raise ValueError("empty plate text")
    if len(tokens) > config.max_plate_tokens:
        raise ValueError(
            f"plate {text!r} has {len(tokens)} tokens; the model reads at most "
            f"{config.max_plate_tokens} (time_steps // 2)"
        )
    canvas, geometry = processor.letterbox(image)
    masks = np.zeros((config.time_steps, height, width), dtype=np.uint8)
    has_masks = boxes is not None and len(boxes) > 0
    if has_masks:
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        if len(boxes) != len(tokens):
            raise ValueError(f"plate {text!r} has {len(tokens)} tokens but {len(boxes)} boxes")
        mapped = np.rint(geometry.map_boxes(boxes)).astype(np.int64)
        mapped[:, 0::2] = mapped[:, 0::2].clip(0, width)
        mapped[:, 1::2] = mapped[:, 1::2].clip(0, height)
        for index, (x1, y1, x2, y2) in enumerate(mapped):
            masks[2 * index, y1:y2, x1:x2] = 1
    return {
        "pixel_values": torch.from_numpy(canvas).float().div(255.0).unsqueeze(0),
        "labels": torch.tensor(processor.label_map.encode(text), dtype=torch.long),
        "char_masks": torch.from_numpy(masks),
        "has_masks": torch.tensor(has_masks),
    }


def collate_plates(features: list[dict]) -> dict[str, torch.Tensor]:
    """Stacks encoded plates into a batch; `labels` are padded with -100 to the longest plate."""
    if not features:
        raise ValueError("cannot collate an empty batch")
    return {
        "pixel_values": torch.stack([f["pixel_values"] for f in features]),
        "labels": torch.nn.utils.rnn.pad_sequence(
            [f["labels"] for f in features], batch_first=True, padding_value=-100
        ),
        "char_masks": torch.stack([f["char_masks"] for f in features]),
        "has_masks": torch.stack([f["has_masks"] for f in features]),
    }


def validate_plate_folder(data_dir: str | Path, label_map: LabelMap | None = None) -> dict:
    """Checks every file and summarises the usable plates.

    Returns `{"data_dir", "label_set", "splits": {split: {"images", "with_boxes", "without_boxes"}},
    "tokens": {token: count} (every token of the set, in order), "layouts", "styles", "problems",
    "skipped_images"}`. Plates longer than the default model's `max_plate_tokens` count as problems.
    """
    root = _existing_folder(data_dir)
    if label_map is None:
        label_map = read_label_map(root)
        label_set = LABELS_FILE if (root / LABELS_FILE).is_file() else "default"
    else:
        label_set = "given"
    scan = _scan(root, label_map, max_tokens=TinyLPRConfig().max_plate_tokens)
    records = [record for split_records in scan.splits.values() for record in split_records]
    token_counts = Counter(token for record in records for token in record.tokens)
    return {
        "data_dir": str(root),
        "label_set": f"{label_set} ({len(label_map.tokens)} tokens)",
        "splits": {
            split: {
                "images": len(split_records),
                "with_boxes": sum(record.boxes is not None for record in split_records),
                "without_boxes": sum(record.boxes is None for record in split_records),
            }
            for split, split_records in scan.splits.items()
        },
        "tokens": {token: token_counts[token] for token in label_map.tokens},
        "layouts": dict(Counter(record.layout or "unknown" for record in records).most_common()),
        "styles": dict(Counter(record.style for record in records if record.style).most_common()),
        "problems": scan.problems,
        "skipped_images": scan.skipped_images,
    }


def _pad_left(text: str, width: int) -> str:
    """Right-aligns in terminal columns: Hangul syllables are two columns wide."""
    columns = sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)
    return " " * max(0, width - columns) + text


def format_report(report: dict, skip_bad: bool = False) -> str:
    lines = [f"data: {report['data_dir']}   label set: {report['label_set']}", "splits:"]
    for split, counts in report["splits"].items():
        lines.append(
            f"  {split:<12} {counts['images']:>7} images ({counts['with_boxes']} with boxes, "
            f"{counts['without_boxes']} without: no character masks)"
        )
    lines.append("layouts: " + ", ".join(f"{name} {n}" for name, n in report["layouts"].items()))
    if report["styles"]:
        lines.append("styles: " + ", ".join(f"{name} {n}" for name, n in report["styles"].items()))
    lines.append("tokens:")
    cells = [f"{_pad_left(token, 4)} {count:>6}" for token, count in report["tokens"].items()]
    lines += ["  " + "   ".join(cells[i : i + 8]) for i in range(0, len(cells), 8)]
    unseen = [token for token, count in report["tokens"].items() if count == 0]
    if unseen:
        lines.append(f"never seen ({len(unseen)}): {' '.join(unseen)}")
    lines.append(f"problems: {len(report['problems'])}")
    lines += [f"  {problem}" for problem in report["problems"]]
    if skip_bad and report["problems"]:
        lines.append(f"--skip-bad: {report['skipped_images']} image(s) would be skipped")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="kr-lpr validate-data",
        description="Check a plate folder (<split>/<plate>_<idx>.jpg with optional .txt boxes, or labels.csv) "
        "and report split counts, the token histogram, layouts and every problem.",
    )
    parser.add_argument("data_dir", type=Path, help="plate folder")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--skip-bad", action="store_true", help="exit 0 despite problems and say how many images would be skipped"
    )
    args = parser.parse_args(argv)
    try:
        report = validate_plate_folder(args.data_dir)
    except ValueError as error:
        print(f"kr-lpr validate-data: error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(report, ensure_ascii=False, indent=2) if args.json else format_report(report, args.skip_bad))
    return 1 if report["problems"] and not args.skip_bad else 0


if __name__ == "__main__":
    sys.exit(main())
