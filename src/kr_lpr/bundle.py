"""`kr-lpr bundle MODEL_DIR --out kr-lpr-bundle.zip`: the standalone deployment zip.

The zip holds the TFLite (float32, uint8 and, where compiled, Edge TPU) and ONNX models,
`labels.names`, a small `config.json` describing input and output, a README and `lpr_infer.py`:
one file, numpy + Pillow + any TFLite or ONNX runtime. `lpr_infer.py` is generated from the
package's own codec and preprocessing modules followed by `lpr_infer_template.py`, so there is one
implementation of both. The zip is deterministic: sorted entries, fixed timestamps and modes.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import sys
import tempfile
import zipfile
from pathlib import Path

from .configuration_tinylpr import TinyLPRConfig
from .export import FILE_NAMES, FORMATS, REPORT_FILE, export_model, load_pretrained, tflite_summary
from .image_processing_tinylpr import LABELS_FILE, TinyLPRImageProcessor

PACKAGE_DIR = Path(__file__).resolve().parent
# Inlined in this order: the template uses the codec and the preprocessing.
SCRIPT_SOURCES = ("plate_codec_tinylpr.py", "preprocessing_tinylpr.py", "lpr_infer_template.py")
SCRIPT_NAME = "lpr_infer.py"
BUNDLE_FOLDER = "kr-lpr-bundle"
REQUIRED_MODELS = (FILE_NAMES["tflite"], FILE_NAMES["tflite-uint8"], FILE_NAMES["onnx"])
ZIP_DATE = (1980, 1, 1, 0, 0, 0)
FUTURE_IMPORT = "from __future__ import annotations"
IMPORTS_BEGIN, IMPORTS_END = "# bundle: begin package imports", "# bundle: end package imports"

README = """# kr-lpr deployment bundle

TinyLPR, a South Korean license plate recognizer, for edge devices. Input: a plate crop; output:
the plate text (e.g. `12가3456`, `서울12가3456`), its confidence and whether it has a valid plate format.

## Run

    pip install numpy pillow ai-edge-litert     # or: tflite-runtime "numpy<2" pillow / onnxruntime
    python {script} plate.jpg more/*.png [--json] [--beam] [--model model_float32.tflite]

The model card's figures were measured with Pillow 12: Pillow 13 resizes some crops slightly differently, so
`pillow<13` reproduces them exactly.

By default `{script}` runs the fastest model the installed runtime can run: `{edgetpu}` on a Coral
Edge TPU (libedgetpu + the model, compiled with `edgetpu_compiler {uint8}`), else `{uint8}`, else
`{float32}`, else `{onnx}` with onnxruntime. From Python:

    from lpr_infer import PlateRecognizer
    readings = PlateRecognizer(".")(["plate.jpg"])  # [{{"text", "confidence", "valid", "char_confidences"}}]

## Files

| file | what |
|---|---|
| `{uint8}` | full-integer uint8 TFLite: uint8 grey pixels in, uint8 logits out; Edge TPU compiler-ready |
| `{float32}` | float32 TFLite |
| `{onnx}` | float32 ONNX, dynamic batch, NCHW input `pixel_values`, output `logits` |
| `{edgetpu}` | the uint8 model compiled for the Edge TPU (only where `edgetpu_compiler` ran) |
| `export_report.json` | per model: size, max logit difference to PyTorch, op table; the Edge TPU op check |
| `{labels}` | one token per line; class id = line number (1-based), 0 is the CTC blank |
| `config.json` | preprocessing and output description (below) |
| `{script}` | reference runtime: preprocessing, inference and CTC decoding in one file |

## Preprocessing and decoding (`config.json`)

1. Grayscale (alpha composited on white), resize keeping the aspect ratio (bilinear) to fit
   `input_width` x `input_height`, paste into a canvas filled with `pad_value` at `placement`
   (`stretch`: resize to `input_width` x `input_height` exactly, no padding; `fill_width`: resize to
   `input_width` wide and at most `max_stretch` times as much taller as the aspect ratio allows, up to
   `input_height`, and centre it vertically).
2. Float models: pixels x `scale` (1/255), minus `mean` (0); TFLite input is NHWC `(1, H, W, 1)`,
   ONNX is NCHW `(N, 1, H, W)`. The uint8 model takes the canvas bytes as they are (scale 1/255,
   zero point 0).
3. Output: logits `(N, time_steps, num_classes)`; uint8 logits dequantize with `quantization`.
   Softmax, then CTC greedy decoding: best class per step, merge repeats, drop the blank (id 0).
"""


def strip_module(source: str, name: str) -> str:
    """A module's code without its docstring, `from __future__` import and package-relative imports."""
    body = ast.parse(source).body
    lines = source.splitlines()
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        lines = lines[body[0].end_lineno :]
    kept, skipping = [], False
    for line in lines:
        if line.strip() == IMPORTS_BEGIN:
            skipping = True
        elif line.strip() == IMPORTS_END:
            skipping = False
        elif not skipping and line != FUTURE_IMPORT:
            kept.append(line)
    code = "\n".join(kept).strip("\n")
    if "from ." in code:
        raise ValueError(f"{name} has a package-relative import outside the bundle markers")
    return code


def build_script() -> str:
    """The source of the standalone `lpr_infer.py`."""
    template = (PACKAGE_DIR / SCRIPT_SOURCES[-1]).read_text(encoding="utf-8")
    docstring = ast.get_docstring(ast.parse(template), clean=False)
    sections = [
        f"# ---- kr_lpr/{name} ----\n{strip_module((PACKAGE_DIR / name).read_text(encoding='utf-8'), name)}"
        for name in SCRIPT_SOURCES
    ]
    header = "\n".join(
        [
            "#!/usr/bin/env python3",
            f'"""{docstring}"""',
            "",
            "# Generated by `kr-lpr bundle`; do not edit.",
            FUTURE_IMPORT,
        ]
    )
    script = "\n\n\n".join([header, *sections]) + "\n"
    compile(script, SCRIPT_NAME, "exec")
    return script


def bundle_config(config: TinyLPRConfig, processor: TinyLPRImageProcessor, export_dir: Path) -> dict:
    uint8 = tflite_summary((export_dir / FILE_NAMES["tflite-uint8"]).read_bytes())
    return {
        "model_type": config.model_type,
        "input_height": processor.image_height,
        "input_width": processor.image_width,
        "input_channels": config.num_channels,
        "placement": processor.placement,
        "pad_value": processor.pad_value,
        "max_stretch": processor.max_stretch,
        "scale": 1 / 255,
        "mean": 0.0,
        "blank_id": config.blank_id,
        "time_steps": config.time_steps,
        "num_classes": config.num_classes,
        "labels_file": LABELS_FILE,
        "output": "logits (batch, time_steps, num_classes), no softmax",
        "quantization": {FILE_NAMES["tflite-uint8"]: {"input": uint8["input"], "output": uint8["output"]}},
    }


def bundle_files(model_dir: Path, export_dir: Path) -> dict[str, bytes]:
    missing = [name for name in REQUIRED_MODELS if not (export_dir / name).is_file()]
    if missing:
        raise ValueError(f"{export_dir} lacks {', '.join(missing)}: run `kr-lpr export` into it first")
    models = [*REQUIRED_MODELS, FILE_NAMES["edgetpu"], REPORT_FILE]
    files = {name: (export_dir / name).read_bytes() for name in models if (export_dir / name).is_file()}
    model, processor = load_pretrained(model_dir)
    files[LABELS_FILE] = ("\n".join(processor.label_map.tokens) + "\n").encode("utf-8")
    config = bundle_config(model.config, processor, export_dir)
    files["config.json"] = (json.dumps(config, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    readme = README.format(
        script=SCRIPT_NAME,
        labels=LABELS_FILE,
        float32=FILE_NAMES["tflite"],
        uint8=FILE_NAMES["tflite-uint8"],
        onnx=FILE_NAMES["onnx"],
        edgetpu=FILE_NAMES["edgetpu"],
    )
    files["README.md"] = readme.encode("utf-8")
    files[SCRIPT_NAME] = build_script().encode("utf-8")
    return files


def write_zip(files: dict[str, bytes], out_zip: Path) -> Path:
    """Sorted entries, fixed dates and modes: the same files always give the same bytes."""
    out_zip.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out_zip, "w") as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(f"{BUNDLE_FOLDER}/{name}", date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix, so that the modes below apply everywhere
            info.external_attr = (0o755 if name == SCRIPT_NAME else 0o644) << 16
            archive.writestr(info, files[name], compresslevel=9)
    return out_zip


def build_bundle(
    model_dir: str | os.PathLike, out_zip: str | os.PathLike, export_dir: str | os.PathLike | None = None
) -> Path:
    """Writes the deployment zip of `model_dir`, from the exports in `export_dir` (default: exports them now)."""
    model_dir, out_zip = Path(model_dir), Path(out_zip)
    if export_dir is not None:
        return write_zip(bundle_files(model_dir, Path(export_dir)), out_zip)
    with tempfile.TemporaryDirectory() as tmp:
        export_model(model_dir, tmp, FORMATS)
        return write_zip(bundle_files(model_dir, Path(tmp)), out_zip)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kr-lpr bundle", description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", help="Hub-format model folder")
    parser.add_argument("--out", default="kr-lpr-bundle.zip", help="zip to write (default: kr-lpr-bundle.zip)")
    parser.add_argument("--export-dir", help="folder with `kr-lpr export` output (default: export now)")
    args = parser.parse_args(argv)
    try:
        path = build_bundle(args.model_dir, args.out, args.export_dir)
    except ValueError as error:
        print(f"kr-lpr bundle: error: {error}", file=sys.stderr)
        return 2
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            print(f"{info.file_size:>12,}  {info.filename}")
    print(f"wrote {path} ({path.stat().st_size:,} bytes)")
    return 0
