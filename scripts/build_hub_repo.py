"""Assemble the model repo (`org/kr-lpr`) folder exactly as it goes to the Hugging Face Hub.

    python scripts/build_hub_repo.py --model release/kr-lpr --out build/hub \\
        --eval-real release/eval_real.json --eval-synth release/eval_synth.json --benchmark release/benchmark.json

The folder holds:
- the transformers files, re-saved with the installed kr_lpr: `config.json` (with `auto_map`),
  `model.safetensors`, `preprocessor_config.json`, `labels.names` and the remote-code `*_tinylpr.py`
  files, so the Hub copy runs the same code the tests ran;
- the exports of those weights: `model.onnx`, `model_float32.tflite`, `model_uint8.tflite`
  (+ `model_uint8_edgetpu.tflite` where `edgetpu_compiler` is installed) and `export_report.json`;
- the deployment bundle `kr-lpr-bundle.zip`;
- `README.md`, the model card rendered from `hub_card/template.md`, its metadata and tables filled
  from the evaluation and benchmark JSON files.

Two builds from the same inputs with the same installed versions are byte-identical: no file carries
a build time (the bundle zip uses fixed timestamps, the card has no date).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from kr_lpr import TinyLPRImageProcessor, TinyLPRModel
from kr_lpr.bundle import build_bundle
from kr_lpr.export import export_model

TEMPLATE = Path(__file__).resolve().parent.parent / "hub_card" / "template.md"
DEFAULT_REPO_ID = "org/kr-lpr"
BUNDLE_NAME = "kr-lpr-bundle.zip"
EXPORT_FORMATS = ("onnx", "tflite", "tflite-uint8", "edgetpu")
# Written by the export only where `edgetpu_compiler` is installed.
EDGETPU_FILE = "model_uint8_edgetpu.tflite"
FILE_DESCRIPTIONS = {
    "model.safetensors": "PyTorch weights for `AutoModel` (the training state included)",
    "model.onnx": "ONNX, float32, dynamic batch (what `LicensePlateRecognizer` runs by default)",
    "model_float32.tflite": "TFLite, float32",
    "model_uint8.tflite": "TFLite, full-integer quantized, uint8 input and output (for the Edge TPU compiler)",
    EDGETPU_FILE: "TFLite compiled for the Coral Edge TPU",
    "export_report.json": "per export: size, logit difference to PyTorch, op table, Edge TPU op check",
    BUNDLE_NAME: "self-contained deployment bundle: the models, `lpr_infer.py`, labels, config",
}
EVALUATION_KEYS = (
    "n",
    "plate_accuracy",
    "plate_accuracy_format_filter",
    "char_accuracy",
    "by_layout",
    "by_style",
    "throughput_plates_per_s",
)
EVALUATIONS = {
    "real": {
        "title": "Real plates",
        "note": "Real crops of South Korean plates, used for evaluation only (never for training).",
        "dataset_type": "kr-lpr-real-plate-crops",
        "dataset_name": "Real South Korean plate crops",
    },
    "synth": {
        "title": "Synthetic plates",
        "note": "A held-out synthetic set rendered by `kr-lpr synth` (the training generator).",
        "dataset_type": "kr-lpr-synthetic",
        "dataset_name": "Synthetic South Korean plates",
    },
}
METRICS = (
    ("plate_accuracy", "Plate accuracy (exact match)"),
    ("plate_accuracy_format_filter", "Plate accuracy (best valid-format beam)"),
    ("char_accuracy", "Character accuracy"),
)


class BuildError(Exception):
    """Bad input to the build, worded for the person running it."""


def load_report(path: Path | None, required: tuple[str, ...], what: str) -> dict | None:
    if path is None:
        return None
    try:
        report = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise BuildError(f"{what} file not found: {path}") from error
    except json.JSONDecodeError as error:
        raise BuildError(f"{what} file {path} is not valid JSON: {error}") from error
    missing = [key for key in required if key not in report]
    if missing:
        raise BuildError(f"{what} file {path} lacks {', '.join(missing)}")
    return report


def human_size(size: int) -> str:
    return f"{size / 1024:.0f} KiB" if size < 1024 * 1024 else f"{size / 1024 / 1024:.1f} MiB"


def save_transformers_files(model_dir: Path, repo_dir: Path) -> None:
    if not (model_dir / "config.json").is_file():
        raise BuildError(f"{model_dir} is not a Hub-format model folder (no config.json)")
    TinyLPRModel.from_pretrained(model_dir).save_pretrained(repo_dir)
    TinyLPRImageProcessor.from_pretrained(model_dir).save_pretrained(repo_dir)


def add_exports(repo_dir: Path, export_dir: Path) -> None:
    for path in export_model(repo_dir, export_dir, formats=EXPORT_FORMATS).values():
        shutil.copyfile(path, repo_dir / path.name)


def evaluation_results(reports: dict[str, dict]) -> list[EvalResult]:
    return [
        EvalResult(
            task_type="image-to-text",
            task_name="Korean license plate recognition",
            dataset_type=EVALUATIONS[name]["dataset_type"],
            dataset_name=EVALUATIONS[name]["dataset_name"],
            dataset_split="test",
            metric_type="accuracy",
            metric_name=metric_name,
            metric_value=round(float(report[key]), 4),
        )
        for name, report in reports.items()
        for key, metric_name in METRICS
    ]


def benchmark_view(benchmark: dict) -> dict:
    def number(value, digits: int) -> str:
        return "n/a" if value is None else f"{value:,.{digits}f}"

    rows = [
        {
            "name": row["name"],
            "size": human_size(row["size_bytes"]) if row.get("size_bytes") else "",
            "latency_ms_1_thread": number(row.get("latency_ms_1_thread"), 3),
            "latency_ms_2_threads": number(row.get("latency_ms_2_threads"), 3),
            "throughput_batch64_plates_per_s": number(row.get("throughput_batch64_plates_per_s"), 0),
        }
        for row in benchmark["rows"]
    ]
    machine = ", ".join(f"{key} {value}" for key, value in benchmark["machine"].items())
    return {"machine_description": machine, "rows": rows}


def render_model_card(
    repo_dir: Path,
    repo_id: str = DEFAULT_REPO_ID,
    eval_real: dict | None = None,
    eval_synth: dict | None = None,
    benchmark: dict | None = None,
    space_id: str | None = None,
) -> ModelCard:
    """The model card of the repo folder `repo_dir`; every number comes from the folder or the reports."""
    model = TinyLPRModel.from_pretrained(repo_dir)
    config = model.config
    reports = {name: report for name, report in (("real", eval_real), ("synth", eval_synth)) if report is not None}
    namespace = repo_id.split("/")[0]
    card_data = ModelCardData(
        model_name=repo_id.split("/")[-1],
        language=["ko"],
        license="apache-2.0",
        library_name="transformers",
        pipeline_tag="image-to-text",
        tags=["license-plate-recognition", "ocr", "korean", "ctc", "mobilenetv3", "tflite", "onnx", "edge-tpu"],
        datasets=[f"{namespace}/kr-lpr-synthetic"],
        metrics=["accuracy"],
        eval_results=evaluation_results(reports) or None,
    )
    files = [
        {"name": name, "size": human_size((repo_dir / name).stat().st_size), "description": description}
        for name, description in FILE_DESCRIPTIONS.items()
        if (repo_dir / name).is_file()
    ]
    evaluations = [{"backend": "torch", **EVALUATIONS[name], **report} for name, report in reports.items()]
    export_report = repo_dir / "export_report.json"
    export = None
    if export_report.is_file():
        export = json.loads(export_report.read_text())
        export["uint8"] = export["formats"]["tflite-uint8"]
    return ModelCard.from_template(
        card_data,
        template_path=str(TEMPLATE),
        repo_id=repo_id,
        space_id=space_id,
        num_parameters=f"{sum(p.numel() for p in model.parameters()):,}",
        image_height=config.image_height,
        image_width=config.image_width,
        time_steps=config.time_steps,
        num_classes=config.num_classes,
        files=files,
        export=export,
        edgetpu_compiled=(repo_dir / EDGETPU_FILE).is_file(),
        evaluations=evaluations,
        benchmark=benchmark_view(benchmark) if benchmark else None,
    )


def is_previous_build(folder: Path) -> bool:
    config = folder / "config.json"
    if not ((folder / BUNDLE_NAME).is_file() and config.is_file()):
        return False
    return json.loads(config.read_text()).get("model_type") == "tinylpr"


def check_out_dir(model_dir: Path, out_dir: Path) -> None:
    if out_dir.resolve() in (model_dir.resolve(), *model_dir.resolve().parents):
        raise BuildError(f"--out {out_dir} would replace the model folder {model_dir}; choose another folder")
    if out_dir.exists() and any(out_dir.iterdir()) and not is_previous_build(out_dir):
        raise BuildError(f"{out_dir} is not empty and is not a previous build; choose another --out")


def warn_if_other_model(report: dict | None, model_dir: Path, what: str) -> None:
    if report is not None and Path(report.get("model", "")).resolve() != model_dir.resolve():
        print(f"warning: the {what} report is of {report.get('model')!r}, not of {model_dir}", file=sys.stderr)


def build_hub_repo(
    model_dir: Path,
    out_dir: Path,
    eval_real: Path | None = None,
    eval_synth: Path | None = None,
    benchmark: Path | None = None,
    repo_id: str = DEFAULT_REPO_ID,
    space_id: str | None = None,
) -> Path:
    """Builds the repo folder in a temporary folder next to `out_dir`, then replaces `out_dir` with it."""
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    reports = {
        "eval_real": load_report(eval_real, EVALUATION_KEYS, "real-plate evaluation"),
        "eval_synth": load_report(eval_synth, EVALUATION_KEYS, "synthetic evaluation"),
        "benchmark": load_report(benchmark, ("machine", "rows"), "benchmark"),
    }
    check_out_dir(model_dir, out_dir)
    warn_if_other_model(reports["eval_real"], model_dir, "real-plate evaluation")
    warn_if_other_model(reports["eval_synth"], model_dir, "synthetic evaluation")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".kr-lpr-hub-", dir=out_dir.parent) as tmp:
        repo_dir, export_dir = Path(tmp) / "repo", Path(tmp) / "export"
        print(f"[1/4] transformers files from {model_dir}")
        save_transformers_files(model_dir, repo_dir)
        print("[2/4] ONNX and TFLite exports")
        add_exports(repo_dir, export_dir)
        print(f"[3/4] deployment bundle {BUNDLE_NAME}")
        build_bundle(repo_dir, repo_dir / BUNDLE_NAME, export_dir=export_dir)
        print("[4/4] model card README.md")
        render_model_card(repo_dir, repo_id, **reports, space_id=space_id).save(repo_dir / "README.md")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        repo_dir.rename(out_dir)
    for path in sorted(out_dir.iterdir()):
        print(f"  {path.name:<32} {human_size(path.stat().st_size):>10}")
    return out_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="build_hub_repo.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="Hub-format model folder, e.g. release/kr-lpr")
    parser.add_argument("--out", type=Path, required=True, help="output folder (replaced if it is a previous build)")
    parser.add_argument("--eval-real", type=Path, help="`kr-lpr evaluate --json` report on real plates")
    parser.add_argument("--eval-synth", type=Path, help="`kr-lpr evaluate --json` report on synthetic plates")
    parser.add_argument("--benchmark", type=Path, help="`scripts/benchmark.py --json-out` report")
    parser.add_argument("--repo-id", default=DEFAULT_REPO_ID, help="the model repo id the card's examples use")
    parser.add_argument("--space-id", help="the demo Space the card links to, e.g. org/kr-lpr-demo")
    args = parser.parse_args(argv)
    try:
        build_hub_repo(
            args.model, args.out, args.eval_real, args.eval_synth, args.benchmark, args.repo_id, args.space_id
        )
    except BuildError as error:
        print(f"build_hub_repo: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
