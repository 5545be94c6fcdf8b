"""`make demo`: read the example plates with the shipped weights, as a Hub user would, and print JSON.

    python scripts/demo.py [--model release/kr-lpr] [IMAGE ...]

Loads the model with `AutoModel`/`AutoImageProcessor` and `trust_remote_code=True` from the
Hub-format folder. Without trained weights it builds a randomly initialised folder and says so.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import torch
from transformers import AutoImageProcessor, AutoModel

ROOT = Path(__file__).resolve().parent.parent
RELEASE_MODEL = ROOT / "release" / "kr-lpr"
EXAMPLES = ROOT / "space" / "examples"


def untrained_folder() -> Path:
    from kr_lpr import TinyLPRConfig, TinyLPRImageProcessor, TinyLPRModel

    folder = Path(tempfile.mkdtemp(prefix="kr-lpr-untrained-"))
    TinyLPRModel(TinyLPRConfig()).save_pretrained(folder)
    TinyLPRImageProcessor().save_pretrained(folder)
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images", nargs="*", help=f"plate crops (default: {EXAMPLES.relative_to(ROOT)}/*.png)")
    parser.add_argument("--model", default=str(RELEASE_MODEL), help="Hub-format folder")
    args = parser.parse_args(argv)
    images = args.images or sorted(str(p) for p in EXAMPLES.glob("*.png"))
    if not images:
        parser.error(f"no images given and none in {EXAMPLES}")
    model_dir = Path(args.model)
    trained = (model_dir / "model.safetensors").is_file()
    if not trained:
        model_dir = untrained_folder()
        print(f"WARNING: no trained weights at {args.model}; using UNTRAINED random weights ({model_dir})")
    model = AutoModel.from_pretrained(model_dir, trust_remote_code=True).eval()
    processor = AutoImageProcessor.from_pretrained(model_dir, trust_remote_code=True)
    with torch.inference_mode():
        plates = processor.post_process(model(**processor(images=images, return_tensors="pt")))
    results = [{"image": Path(image).name, **plate} for image, plate in zip(images, plates)]
    print(json.dumps({"model": str(model_dir), "trained": trained, "plates": results}, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
