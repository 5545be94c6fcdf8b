"""Synthetic Korean license plates: the training data of the release weights.

`render_plate` draws one camera-like crop with its text and one box per token; `SyntheticPlateStream`
streams them to a DataLoader; `write_dataset` (and `kr-lpr synth`) writes the `<text>_<idx>.jpg/.txt`
folder layout. Plate `i` of seed `s` is the same wherever it is drawn: the stream at epoch 0 and
`write_dataset` both render it from `numpy.random.default_rng([s, 0, i])`.

Plate types and their sampling proportions are in `synth_text.STYLE_RULES`, plate geometry and
colours in `synth_render.TEMPLATES` / `PALETTES`, crop and degradation strengths in `PRESETS`.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from .plate_codec_tinylpr import DEFAULT_TOKENS, LabelMap
from .synth_render import draw_plate
from .synth_scene import PRESETS, compose, degrade, resolve_strength
from .synth_text import STYLES, sample_plate_text

__all__ = [
    "PRESETS",
    "STYLES",
    "SyntheticPlateStream",
    "main",
    "plate_rng",
    "render_plate",
    "sample_plate_text",
    "token_histogram",
    "write_dataset",
]

_LABEL_MAP = LabelMap(DEFAULT_TOKENS)


def render_plate(rng: np.random.Generator, strength: str | dict = "train", style: str | None = None) -> dict:
    """One synthetic crop: `{"image": PIL RGB, "text", "boxes": (n_tokens, 4) float32 x1 y1 x2 y2, "layout", "style"}`.

    `strength` is a `PRESETS` name (`clean`, `train`, `hard`) or a dict overriding preset keys;
    `style` forces one plate type of `STYLES` instead of drawing it from the mix (the strength's `style_weights`).
    """
    params = resolve_strength(strength)
    text, style, layout = sample_plate_text(rng, style, params["style_weights"], params["hangul_weights"])
    low, high = params["plate_width_px"]
    width_px = np.exp(rng.uniform(np.log(low), np.log(high)))
    plate, boxes = draw_plate(
        rng,
        _LABEL_MAP.split(text),
        style,
        layout,
        width_px,
        params["top_row_bolts_p"],
        params["short_ticks_p"],
        params["italic_p"],
    )
    if layout == "two-row" and not params["two_row_small_rules"]:
        params = {**params, "small_squeeze_p": 0.0, "small_tall_p": 0.0}
    pixels, boxes = compose(rng, plate, boxes, params)
    image = Image.fromarray(degrade(rng, pixels, float(np.min(boxes[:, 3] - boxes[:, 1])), params))
    return {"image": image, "text": text, "boxes": boxes, "layout": layout, "style": style}


def plate_rng(seed: int, index: int, epoch: int = 0) -> np.random.Generator:
    """The random stream of plate `index` of `seed`: every plate can be redrawn on its own."""
    return np.random.default_rng([seed, epoch, index])


class SyntheticPlateStream(torch.utils.data.IterableDataset):
    """Endless (or `length`-long) stream of `render_plate` dicts, passed through `transform` if given.

    DataLoader workers split the plate indices (worker `w` of `n` draws `w, w + n, ...`), so the stream
    is deterministic per seed and worker while workers never repeat each other. `set_epoch` (the Trainer
    calls it through accelerate) draws fresh plates per epoch.
    """

    def __init__(
        self,
        seed: int = 0,
        strength: str | dict = "train",
        transform: Callable[[dict], dict] | None = None,
        length: int | None = None,
    ) -> None:
        resolve_strength(strength)  # fail here, not inside a worker
        if length is not None and length < 1:
            raise ValueError(f"length must be positive or None, got {length}")
        self.seed, self.strength, self.transform, self.length = seed, strength, transform, length
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        if self.length is None:
            raise TypeError("an endless SyntheticPlateStream has no length; pass length=N")
        return self.length

    def __iter__(self) -> Iterator[dict]:
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        indices = itertools.count(worker, workers) if self.length is None else range(worker, self.length, workers)
        for index in indices:
            sample = render_plate(plate_rng(self.seed, index, self.epoch), self.strength)
            yield self.transform(sample) if self.transform is not None else sample


def _write_plate(index: int, folder: Path, seed: int, strength: str | dict, digits: int) -> None:
    sample = render_plate(plate_rng(seed, index), strength)
    stem = folder / f"{sample['text']}_{index:0{digits}d}"
    sample["image"].save(stem.with_suffix(".jpg"), quality=95)
    lines = [" ".join(f"{v:.1f}" for v in box) for box in sample["boxes"]]
    stem.with_suffix(".txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_dataset(
    out_dir: str | Path, n: int, seed: int = 0, split: str = "train", strength: str | dict = "train", workers: int = 1
) -> Path:
    """Writes `out_dir/labels.names` and `n` plates as `out_dir/<split>/<text>_<idx>.jpg` + `.txt`
    (one `x1 y1 x2 y2` line per token, in plate-string order); returns `out_dir`."""
    resolve_strength(strength)
    if n < 1:
        raise ValueError(f"n must be positive, got {n}")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"output path exists and is not a folder: {out_dir}")
    folder = out_dir / split
    folder.mkdir(parents=True, exist_ok=True)
    _LABEL_MAP.save(out_dir / "labels.names")
    write = partial(_write_plate, folder=folder, seed=seed, strength=strength, digits=max(6, len(str(n - 1))))
    progress = partial(tqdm, total=n, desc=f"synth {split}", unit="plate")
    if workers <= 1:
        for index in progress(range(n)):
            write(index)
    else:
        with ProcessPoolExecutor(workers) as pool:
            for _ in progress(pool.map(write, range(n), chunksize=64)):
                pass
    return out_dir


def token_histogram(texts: list[str]) -> Counter:
    """Occurrences of every label token (zeros included) over plate strings."""
    counts = Counter({token: 0 for token in _LABEL_MAP.tokens})
    counts.update(token for text in texts for token in _LABEL_MAP.split(text))
    return counts


def _print_summary(results: list[tuple[str, str, str]], headline: str) -> None:
    texts, styles, layouts = zip(*results, strict=True)
    histogram = token_histogram(list(texts))
    print(headline)
    print("styles: " + ", ".join(f"{name} {count}" for name, count in sorted(Counter(styles).items())))
    print("layouts: " + ", ".join(f"{name} {count}" for name, count in sorted(Counter(layouts).items())))
    print(f"token histogram ({len(histogram)} tokens, min {min(histogram.values())}, max {max(histogram.values())}):")
    cells = [f"{token}:{count}" for token, count in histogram.items()]
    for start in range(0, len(cells), 10):
        print("  " + "  ".join(cells[start : start + 10]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kr-lpr synth", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", help="output folder (gets labels.names and <split>/)")
    parser.add_argument("--n", type=int, default=1000, help="number of plates (default 1000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--split", default="train", help="subfolder name (default train)")
    parser.add_argument("--strength", default="train", choices=sorted(PRESETS), help="degradation preset")
    parser.add_argument("--workers", type=int, default=1, help="processes rendering in parallel")
    parser.add_argument(
        "--texts-only", action="store_true", help="only sample the plate strings and print their histogram"
    )
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error(f"--n must be positive, got {args.n}")
    if args.out is None and not args.texts_only:
        parser.error("--out is required")
    if not args.texts_only:
        try:
            write_dataset(args.out, args.n, args.seed, args.split, args.strength, args.workers)
        except (ValueError, OSError) as error:
            print(f"kr-lpr synth: error: {error}", file=sys.stderr)
            return 1
    # render_plate draws the plate string first, so re-sampling it alone reproduces what was written
    texts = [sample_plate_text(plate_rng(args.seed, i)) for i in range(args.n)]
    where = "sampled" if args.texts_only else f"wrote to {Path(args.out) / args.split}:"
    _print_summary(texts, f"{where} {args.n} plates (seed {args.seed})")
    return 0
