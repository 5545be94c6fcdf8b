"""What the plate studies (`right_edge_study.py`, `crop_aspect_study.py`) share: their arguments and the real crops."""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image

from kr_lpr.evaluation import select_records
from kr_lpr.preprocessing_tinylpr import load_image

ROOT = Path(__file__).resolve().parent.parent


def study_arguments(description: str, argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--model", default=str(ROOT / "release" / "kr-lpr"))
    parser.add_argument("--real", default=str(ROOT.parent / "shared" / "data" / "real_kr"))
    parser.add_argument("--n", type=int, default=1000, help="synthetic plates per variant")
    return parser.parse_args(argv)


def real_one_row_crops(folder: str) -> tuple[list[Image.Image], list[str]] | None:
    """The real one-row crops and their labels, or None (with a message) where the folder is absent."""
    if not (Path(folder) / "labels.csv").is_file():
        print(f"real plates not found at {folder}: skipping them")
        return None
    records = [record for record in select_records(folder, None, skip_bad=False) if record.layout == "one-row"]
    return [load_image(record.path) for record in records], [record.text for record in records]
