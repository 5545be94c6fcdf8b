"""Render the Space's example plates, `space/examples/<index>_<style>.png`, with the synthetic generator.

    python scripts/make_space_examples.py [--out space/examples] [--seed 0]

Examples are synthetic on purpose: real plates are personal data and never leave ../shared. The same
seed gives the same files.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from kr_lpr.synth import render_plate

# One example per common plate type: one-row 7 and 8 characters, two-row green, commercial yellow, EV.
STYLES = ("white", "white-8", "green", "yellow", "blue-ev")
MAX_WIDTH = 320
MAX_DRAWS = 5000


def render_examples(out_dir: Path, seed: int = 0) -> list[Path]:
    """Draws plates until each of `STYLES` has one; returns the written files."""
    rng = np.random.default_rng(seed)
    found: dict[str, dict] = {}
    for _ in range(MAX_DRAWS):
        plate = render_plate(rng, "clean")
        if plate["style"] in STYLES and plate["style"] not in found:
            found[plate["style"]] = plate
        if len(found) == len(STYLES):
            break
    missing = [style for style in STYLES if style not in found]
    if missing:
        raise RuntimeError(f"no {', '.join(missing)} plate in {MAX_DRAWS} draws; check the generator's style names")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for index, style in enumerate(STYLES):
        image = found[style]["image"]
        image.thumbnail((MAX_WIDTH, MAX_WIDTH))
        path = out_dir / f"{index:02d}_{style}.png"
        image.save(path, optimize=True)
        written.append(path)
        print(f"{path}  {found[style]['text']}  {image.width}x{image.height}")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make_space_examples.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "space" / "examples")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    render_examples(args.out, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
