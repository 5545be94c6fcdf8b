"""Contact sheet of synthetic plates next to real crops, for judging the generator by eye.

    python scripts/contact_sheet.py --real ../shared/data/real_kr --out docs/synthetic_vs_real.png

Left panel: plates from `kr_lpr.synth.render_plate`; right panel: a random sample of the real
evaluation crops (read from `--real`, never copied anywhere else). The real crops must not be
committed, so this sheet stays local (it is git-ignored); the committed picture of the generator is
synthetic-only:

    python scripts/contact_sheet.py --real none --out docs/synthetic_plates.png
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from kr_lpr.preprocessing_tinylpr import load_image
from kr_lpr.synth import PRESETS, render_plate
from kr_lpr.synth_render import load_font

CELL = (200, 72)  # width, height of one thumbnail slot
GAP = 4
HEADER = 28
BACKGROUND = (255, 255, 255)


def thumbnail(image: Image.Image) -> Image.Image:
    """The image fitted into a cell, keeping its aspect ratio, centred on white."""
    image = image.convert("RGB")
    scale = min(CELL[0] / image.width, CELL[1] / image.height)
    resized = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.LANCZOS)
    cell = Image.new("RGB", CELL, BACKGROUND)
    cell.paste(resized, ((CELL[0] - resized.width) // 2, (CELL[1] - resized.height) // 2))
    return cell


def panel(images: list[Image.Image], columns: int, title: str) -> Image.Image:
    rows = -(-len(images) // columns)
    sheet = Image.new("RGB", (columns * (CELL[0] + GAP) + GAP, HEADER + rows * (CELL[1] + GAP) + GAP), BACKGROUND)
    ImageDraw.Draw(sheet).text((GAP, 6), title, fill=(0, 0, 0), font=load_font("dejavu-bold", 16))
    for i, image in enumerate(images):
        x = GAP + (i % columns) * (CELL[0] + GAP)
        y = HEADER + GAP + (i // columns) * (CELL[1] + GAP)
        sheet.paste(thumbnail(image), (x, y))
    return sheet


def real_crops(folder: Path, n: int, seed: int) -> list[Image.Image]:
    labels = folder / "labels.csv"
    if not labels.is_file():
        raise FileNotFoundError(f"no labels.csv in {folder}: pass --real pointing at the real crop folder")
    with labels.open(encoding="utf-8") as handle:
        files = [row["file"] for row in csv.DictReader(handle)]
    chosen = np.random.default_rng(seed).choice(len(files), size=min(n, len(files)), replace=False)
    return [load_image(folder / files[i]) for i in sorted(chosen)]


def side_by_side(left: Image.Image, right: Image.Image) -> Image.Image:
    sheet = Image.new("RGB", (left.width + right.width + 3 * GAP, max(left.height, right.height)), (90, 90, 90))
    sheet.paste(left, (0, 0))
    sheet.paste(right, (left.width + 3 * GAP, 0))
    return sheet


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--real", default="../shared/data/real_kr", help="real crop folder, or 'none'")
    parser.add_argument("--out", type=Path, default=Path("docs/synthetic_vs_real.png"))
    parser.add_argument("--n", type=int, default=40, help="thumbnails per panel")
    parser.add_argument("--columns", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--strength", default="train", choices=sorted(PRESETS))
    args = parser.parse_args()
    synthetic = [render_plate(np.random.default_rng([args.seed, i]), args.strength)["image"] for i in range(args.n)]
    sheet = panel(synthetic, args.columns, f"synthetic ({args.strength} preset)")
    if args.real != "none":
        try:
            real = real_crops(Path(args.real), args.n, args.seed)
        except (FileNotFoundError, ValueError) as error:
            print(f"contact_sheet: {error}", file=sys.stderr)
            return 1
        sheet = side_by_side(sheet, panel(real, args.columns, "real crops (evaluation only)"))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    # 256-colour palette: keeps the committed PNG well under 1 MB
    sheet.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(args.out, optimize=True)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB, {sheet.width}x{sheet.height})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
