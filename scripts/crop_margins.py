"""How much of each crop the characters fill: the real crops against the synthetic generator.

    python scripts/crop_margins.py [--model release/kr-lpr] [--real ../shared/data/real_kr] [--synthetic-n 600]
                                   [--text-crop-p P]

Real crops carry no character boxes, so the text's extent is read from the model's character-order masks
(the union of all steps' masks, sigmoid above 0.5) on the real and on the synthetic crops alike, which gives
both the same bias; the synthetic crops' true extent (the union of their character boxes) is printed beside
it to show that bias. Prints the 10th, 25th, 50th, 75th and 90th percentiles of each margin and of the
text's width and height, as fractions of the crop's width or height. `--text-crop-p 0` renders every crop
around the whole plate, as the generator did before it cut crops around the text (`PRESETS["train"]`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from kr_lpr.evaluation import select_records
from kr_lpr.image_processing_tinylpr import TinyLPRImageProcessor
from kr_lpr.modeling_tinylpr import TinyLPRModel
from kr_lpr.preprocessing_tinylpr import load_image, to_pixel_values
from kr_lpr.synth import plate_rng, render_plate

ROOT = Path(__file__).resolve().parent.parent
SYNTH_SEED = 424242  # the synthetic validation seed of scripts/evaluate.py
MEASURES = ("left", "right", "top", "bottom", "text width", "text height")
PERCENTILES = (10, 25, 50, 75, 90)


def extent_fractions(boxes: np.ndarray, width: float, height: float) -> np.ndarray:
    """Margins and text size of the union of `(n, 4)` boxes `x1 y1 x2 y2`, as fractions of the crop."""
    x1, y1 = boxes[:, :2].min(axis=0) / (width, height)
    x2, y2 = boxes[:, 2:].max(axis=0) / (width, height)
    return np.array([x1, 1 - x2, y1, 1 - y2, x2 - x1, y2 - y1])


def predicted_extents(model_dir: str, images: list, batch_size: int = 64) -> np.ndarray:
    """`extent_fractions` of the model's masks for each image."""
    processor = TinyLPRImageProcessor.from_pretrained(model_dir)
    model = TinyLPRModel.from_pretrained(model_dir).eval()
    rows = []
    for start in tqdm(range(0, len(images), batch_size), desc="masks", unit="batch"):
        # The processor's own letterbox, once: its canvases feed the model and its geometry maps the masks back.
        letterboxed = [processor.letterbox(image) for image in images[start : start + batch_size]]
        pixel_values = torch.from_numpy(to_pixel_values(np.stack([canvas for canvas, _ in letterboxed])))
        with torch.no_grad():
            masks = model(pixel_values, output_masks=True).mask_logits.sigmoid().amax(dim=1).numpy()
        for (_, geometry), mask in zip(letterboxed, masks):
            ys, xs = np.nonzero(mask > 0.5)
            if len(xs):
                # Fractions of the resized image in the canvas are fractions of the image itself.
                box = np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], dtype=np.float32)
                box -= [geometry.offset_x, geometry.offset_y] * 2
                rows.append(extent_fractions(box, geometry.resized_width, geometry.resized_height))
    return np.array(rows)


def print_percentiles(name: str, rows: np.ndarray) -> None:
    print(f"\n{name} (n={len(rows)}): percentiles {', '.join(map(str, PERCENTILES))}")
    for measure, values in zip(MEASURES, rows.T):
        print(f"  {measure:<12}" + "".join(f"{v:8.3f}" for v in np.percentile(values, PERCENTILES)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "release" / "kr-lpr"))
    parser.add_argument("--real", default=str(ROOT.parent / "shared" / "data" / "real_kr"))
    parser.add_argument("--synthetic-n", type=int, default=600)
    parser.add_argument("--text-crop-p", type=float, help="override the train preset's text_crop_p")
    args = parser.parse_args(argv)
    strength = "train" if args.text_crop_p is None else {"text_crop_p": args.text_crop_p}
    samples = [render_plate(plate_rng(SYNTH_SEED, index), strength) for index in range(args.synthetic_n)]
    images = [sample["image"] for sample in samples]
    print_percentiles("synthetic, model's masks", predicted_extents(args.model, images))
    truth = [extent_fractions(sample["boxes"], *sample["image"].size) for sample in samples]
    print_percentiles("synthetic, character boxes", np.array(truth))
    labels = Path(args.real) / "labels.csv"
    if not labels.is_file():
        print(f"\nreal plates not found at {args.real}: skipping them")
        return 0
    real = [load_image(record.path) for record in select_records(args.real, None, skip_bad=False)]
    print_percentiles("real, model's masks", predicted_extents(args.model, real))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
