"""`kr-lpr evaluate MODEL DATA`: accuracy tables, an error report a person can browse, throughput.

DATA is a `<plate>_<idx>` folder or a folder with `labels.csv` (like ../shared/data/real_kr).
The JSON written by `--json` has the keys: model, data, backend, n, plate_accuracy,
plate_accuracy_format_filter, char_accuracy, by_token (character accuracy per label token), by_token_kind
(the same per kind: digit, hangul, region), by_layout, by_style, by_confidence (for confidence
thresholds 0.3, 0.5, 0.7 and 0.9: the share of plates read at least that confidently, `kept`, and their
`plate_accuracy`), misreadings (the ten most frequent `{"label", "read_as", "count"}` token misreadings, ""
for a missed or an extra token), throughput_plates_per_s, errors.
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import json
import time
from pathlib import Path

from tqdm.auto import tqdm

from .data import PlateRecord, scan_plate_folder
from .inference import LicensePlateRecognizer
from .metrics import plate_metrics
from .plate_codec_tinylpr import decode_batch
from .preprocessing_tinylpr import load_image

SPLIT_PREFERENCE = ("test", "val", "validation")
WEAKEST_TOKENS = 5


def select_records(data_dir: str | Path, split: str | None, skip_bad: bool) -> list[PlateRecord]:
    splits, problems = scan_plate_folder(data_dir, skip_bad=skip_bad)
    if problems:
        print(f"skipped {len(problems)} bad files (--skip-bad); first: {problems[0]}")
    if split:
        if split not in splits:
            raise ValueError(f"{data_dir} has no split {split!r} (found {sorted(splits)})")
        return splits[split]
    chosen = next((name for name in SPLIT_PREFERENCE if name in splits), None)
    return splits[chosen] if chosen else [record for records in splits.values() for record in records]


def predict(model_dir: str | Path, records: list[PlateRecord], backend: str, batch_size: int) -> tuple[list, float]:
    """Greedy and format-filtered readings for every record, and plates per second end to end."""
    images = [load_image(record.path) for record in records]
    recognizer = LicensePlateRecognizer(model_dir, backend=backend, batch_size=batch_size)
    label_map = recognizer.processor.label_map
    readings, seconds = [], 0.0
    for start in tqdm(range(0, len(images), batch_size), desc="evaluating", unit="batch"):
        batch = images[start : start + batch_size]
        began = time.perf_counter()
        logits = recognizer.logits(batch)
        greedy = decode_batch(logits, label_map, "greedy")
        seconds += time.perf_counter() - began
        filtered = decode_batch(logits, label_map, "beam")
        readings.extend(zip(greedy, filtered))
    return readings, len(images) / seconds if seconds else 0.0


def evaluate(
    model_dir: str | Path, data_dir: str | Path, split: str | None = None, backend: str = "torch",
    batch_size: int = 64, skip_bad: bool = False,
) -> dict:  # fmt: skip
    records = select_records(data_dir, split, skip_bad)
    if not records:
        raise ValueError(f"no labelled images found in {data_dir}")
    readings, throughput = predict(model_dir, records, backend, batch_size)
    references = [record.text for record in records]
    greedy = [g["text"] for g, _ in readings]
    groups = {"layout": [r.layout or "" for r in records], "style": [r.style or "" for r in records]}
    confidences = [g["confidence"] for g, _ in readings]
    metrics = plate_metrics(greedy, references, [f["text"] for _, f in readings], groups, confidences=confidences)
    report = {"model": str(model_dir), "data": str(data_dir), "backend": backend, **metrics}
    report["throughput_plates_per_s"] = round(throughput, 1)
    report["errors"] = [
        {"file": str(r.path), "label": r.text, "prediction": g["text"], "confidence": round(g["confidence"], 4)}
        for r, (g, _) in zip(records, readings)
        if g["text"] != r.text
    ]
    return report


def format_table(report: dict) -> str:
    lines = [
        f"plates: {report['n']}   model: {report['model']}   data: {report['data']}   backend: {report['backend']}",
        f"plate accuracy (exact match)        {report['plate_accuracy']:.2%}",
        f"plate accuracy (format filter)      {report['plate_accuracy_format_filter']:.2%}",
        f"character accuracy                  {report['char_accuracy']:.2%}",
    ]
    for group in ("by_layout", "by_style"):
        for name, values in report[group].items():
            lines.append(f"  {group[3:]:<7}{name:<14} n={values['n']:<5} {values['plate_accuracy']:.2%}")
    for kind, values in report["by_token_kind"].items():
        misread = f"misread on {values['plates_misread']} plates"
        lines.append(f"  token  {kind:<14} n={values['n']:<5} {values['accuracy']:.2%}  {misread}")
    for threshold, values in report["by_confidence"].items():
        lines.append(
            f"  confidence >= {threshold:<6} kept {values['kept']:<7.2%} accuracy {values['plate_accuracy']:.2%}"
        )
    weakest = sorted((v["accuracy"], token, v["n"]) for token, v in report["by_token"].items() if v["accuracy"] < 1)
    if weakest:
        shown = ", ".join(f"{token} {accuracy:.1%} (n={n})" for accuracy, token, n in weakest[:WEAKEST_TOKENS])
        lines.append(f"weakest tokens                      {shown}")
    if report["misreadings"]:
        top = report["misreadings"][:5]
        shown = ", ".join(f"{m['label'] or '∅'}→{m['read_as'] or '∅'} ({m['count']})" for m in top)
        lines.append(f"most frequent misreadings           {shown}")
    lines.append(f"throughput (end to end)             {report['throughput_plates_per_s']:.0f} plates/s")
    return "\n".join(lines)


def write_error_report(report: dict, path: str | Path) -> Path:
    """An HTML page with each misread image, its label and the prediction."""
    rows = []
    for error in report["errors"]:
        image = load_image(error["file"]).convert("RGB")
        image.thumbnail((320, 160))
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        source = base64.b64encode(buffer.getvalue()).decode("ascii")
        rows.append(
            f"<tr><td><img src='data:image/png;base64,{source}'></td><td>{html.escape(error['label'])}</td>"
            f"<td>{html.escape(error['prediction'])}</td><td>{error['confidence']:.3f}</td>"
            f"<td>{html.escape(error['file'])}</td></tr>"
        )
    page = (
        "<html><head><meta charset='utf-8'><title>kr-lpr errors</title></head><body>"
        f"<h1>{len(report['errors'])} errors of {report['n']} plates</h1><pre>{html.escape(format_table(report))}</pre>"
        "<table border=1><tr><th>image</th><th>label</th><th>prediction</th><th>confidence</th><th>file</th></tr>"
        + "".join(rows)
        + "</table></body></html>"
    )
    Path(path).write_text(page, encoding="utf-8")
    return Path(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kr-lpr evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("model", help="Hub-format model folder")
    parser.add_argument("data", help="plate folder, or a folder with labels.csv")
    parser.add_argument("--split", help="split to evaluate (default: test, else val, else everything)")
    parser.add_argument("--backend", default="torch", help="LicensePlateRecognizer backend; torch is the reference")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--json", dest="json_path", help="write the report JSON here")
    parser.add_argument("--errors-html", help="write an HTML page of the misread images here")
    parser.add_argument("--skip-bad", action="store_true", help="leave out bad files, counting them")
    args = parser.parse_args(argv)
    if not (Path(args.model) / "config.json").is_file():
        parser.exit(2, f"kr-lpr evaluate: error: {args.model} is not a model folder (no config.json)\n")
    try:
        report = evaluate(args.model, args.data, args.split, args.backend, args.batch_size, args.skip_bad)
    except (ValueError, OSError) as error:
        parser.exit(2, f"kr-lpr evaluate: error: {error}\n")
    print(format_table(report))
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if args.errors_html:
        print(f"error report: {write_error_report(report, args.errors_html)}")
    return 0
