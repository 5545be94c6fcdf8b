"""kr-lpr demo: read a South Korean license plate and see where the model looked for each character.

    python space/app.py                          # the model repo in $KR_LPR_MODEL (default org/kr-lpr)
    python space/app.py --model release/kr-lpr   # a local Hub-format folder, works offline

Needs only torch, transformers, numpy, Pillow and gradio: the model code comes with the model repo.
API endpoints: `/recognize` (one image -> a list with its plate dict) and `/recognize_batch` (several
images -> one dict per image, with "file" and either the plate fields or "error").
"""

from __future__ import annotations

import argparse
import colorsys
import html
import os
from pathlib import Path

import gradio as gr
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from transformers import AutoImageProcessor, AutoModel

DEFAULT_MODEL = "org/kr-lpr"
EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"
# gradio refuses bigger uploads with its own message; images over 50 MP are refused by the processor.
LAUNCH_OPTIONS = {"max_file_size": "10mb"}
MAX_BATCH = 64
# Plates are personal data: every 10 minutes, delete uploads older than 10 minutes.
UPLOAD_RETENTION = (600, 600)
ZOOM = 3  # the 64x128 model input is small on screen
HEAT_WEIGHT = 0.6
# Plate text, confidence, format, character table, attention gallery, JSON.
NO_READING = ("", "", "", [], [], None)


class UnreadableImage(ValueError):
    """An upload that is not an image the processor can read; the message is shown to the user."""


class PlateReader:
    """The model and its processor, loaded by repo id or from a local folder."""

    def __init__(self, source: str, revision: str | None = None):
        self.processor = AutoImageProcessor.from_pretrained(source, revision=revision, trust_remote_code=True)
        self.model = AutoModel.from_pretrained(source, revision=revision, trust_remote_code=True).eval()

    def pixel_values(self, path: str, name: str) -> torch.Tensor:
        try:
            return self.processor(images=path, return_tensors="pt")["pixel_values"]
        except ValueError as error:
            reason = str(error).removeprefix("image 0: ").replace(path, name)
            raise UnreadableImage(reason[:1].upper() + reason[1:]) from error

    @torch.no_grad()
    def read(self, pixel_values: torch.Tensor) -> tuple[list[dict], torch.Tensor, torch.Tensor]:
        """Plate dicts, CTC logits `(B, T, K)` and order-map logits `(B, T, h, w)` of a batch."""
        outputs = self.model(pixel_values=pixel_values)
        return self.processor.post_process(outputs), outputs.logits, outputs.order_maps

    def token(self, class_id: int) -> str:
        return self.processor.labels[class_id - 1]


def toast_text(message: object) -> str:
    # gradio renders toast messages as HTML, and file names come from the user.
    return html.escape(str(message), quote=False)


def user_error(message: object) -> gr.Error:
    # A bad upload is the user's to fix: a message for them, no traceback in the server log.
    return gr.Error(toast_text(message), title="Cannot read this upload", print_exception=False)


def upload_path(payload) -> tuple[str, str]:
    """The server path of an uploaded file and the name the user knows it by."""
    if not payload:
        raise UnreadableImage("Upload a plate image first.")
    if isinstance(payload, dict):
        return payload["path"], payload.get("orig_name") or Path(payload["path"]).name
    return str(payload), Path(payload).name


def emitted_characters(reader: PlateReader, logits: torch.Tensor) -> list[tuple[int, str]]:
    """`(step, token)` for each character of greedy CTC decoding, the reading `post_process` returns."""
    best = logits.argmax(-1).tolist()
    return [(t, reader.token(c)) for t, c in enumerate(best) if c != 0 and (t == 0 or c != best[t - 1])]


def to_display(image: np.ndarray) -> Image.Image:
    pil = Image.fromarray(image)
    return pil.resize((pil.width * ZOOM, pil.height * ZOOM), Image.Resampling.BILINEAR)


def heat_overlay(canvas: np.ndarray, weights: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """Blends per-pixel colours, scaled by attention weight in [0, 1], over the grey canvas."""
    grey = np.repeat(canvas[..., None].astype(np.float32), 3, axis=2)
    blended = grey * (1 - HEAT_WEIGHT * weights[..., None]) + colours * HEAT_WEIGHT * weights[..., None]
    return blended.clip(0, 255).astype(np.uint8)


def attention_views(
    pixel_values: torch.Tensor, order_maps: torch.Tensor, characters: list[tuple[int, str]]
) -> list[tuple[Image.Image, str]]:
    """Gallery items for one plate: the model input, every character's map in one image, then one per character.

    A map is sigmoid(order map) upsampled to the canvas the model saw.
    """
    canvas = (pixel_values[0, 0].numpy() * 255).round().astype(np.uint8)
    maps = torch.sigmoid(F.interpolate(order_maps, size=canvas.shape, mode="bilinear", align_corners=False))[0]
    views = [(to_display(canvas), "model input (grayscale)")]
    if not characters:
        return views
    step_maps = maps[[step for step, _ in characters]].numpy()
    hues = np.array([colorsys.hsv_to_rgb(i / len(characters), 1.0, 1.0) for i in range(len(characters))]) * 255
    views.append((to_display(heat_overlay(canvas, step_maps.max(0), hues[step_maps.argmax(0)])), "all characters"))
    red = np.array([255.0, 40.0, 0.0])
    for position, ((step, token), weights) in enumerate(zip(characters, step_maps), start=1):
        views.append((to_display(heat_overlay(canvas, weights, red)), f"{position}: {token}  (step {step})"))
    return views


def format_verdict(reading: dict) -> str:
    if not reading["text"]:
        return "no characters read"
    return "valid Korean plate format" if reading["valid"] else "not a valid Korean plate format"


def build_demo(reader: PlateReader) -> gr.Blocks:
    def recognize(image: gr.FileData) -> list[dict]:
        """Reads one plate crop; returns a list with one plate dict: text, confidence, valid, char_confidences."""
        try:
            readings, _, _ = reader.read(reader.pixel_values(*upload_path(image)))
        except UnreadableImage as error:
            raise user_error(error) from error
        return readings

    def recognize_batch(images: list[gr.FileData]) -> list[dict]:
        """Reads several plate crops; one dict per image with "file" and the plate fields, or "error"."""
        if not images:
            raise user_error("Upload one or more plate images first.")
        if len(images) > MAX_BATCH:
            raise user_error(f"Upload at most {MAX_BATCH} images at a time (got {len(images)}).")
        results, good, batch = [], [], []
        for payload in images:
            path, name = upload_path(payload)
            results.append({"file": name})
            try:
                batch.append(reader.pixel_values(path, name))
                good.append(results[-1])
            except UnreadableImage as error:
                results[-1]["error"] = str(error)
        if batch:
            readings, _, _ = reader.read(torch.cat(batch))
            for result, reading in zip(good, readings):
                result.update(reading)
        return results

    def show_plate(image):
        if not image:  # the image was cleared
            return NO_READING
        try:
            pixel_values = reader.pixel_values(*upload_path(image))
        except UnreadableImage as error:
            # A toast, and empty result fields rather than gradio's red "Error" badge on each of them.
            gr.Warning(toast_text(error), title="Cannot read this upload")
            return NO_READING
        readings, logits, order_maps = reader.read(pixel_values)
        reading, characters = readings[0], emitted_characters(reader, logits[0])
        table = [
            [position, token, round(confidence, 4)]
            for position, ((_, token), confidence) in enumerate(zip(characters, reading["char_confidences"]), 1)
        ]
        views = attention_views(pixel_values, order_maps, characters)
        return reading["text"], f"{reading['confidence']:.4f}", format_verdict(reading), table, views, readings

    def show_batch(files):
        results = recognize_batch(files or [])
        columns = ("file", "text", "confidence", "valid", "error")
        return [[result.get(column) for column in columns] for result in results], results

    examples = [[str(path)] for path in sorted(EXAMPLES_DIR.glob("*.png"))]
    # Created unrendered so that the examples, placed under the input, can name them as outputs.
    plate_text = gr.Textbox(label="Plate text", elem_id="plate-text", interactive=False, render=False)
    confidence = gr.Textbox(label="Confidence", elem_id="plate-confidence", interactive=False, render=False)
    verdict = gr.Textbox(label="Format", elem_id="plate-format", interactive=False, render=False)
    characters = gr.Dataframe(
        headers=["#", "character", "confidence"], label="Per-character confidence", interactive=False, render=False
    )
    attention = gr.Gallery(
        label="Where the model looked for each character (sigmoid of the order maps)",
        columns=4,
        height="auto",
        object_fit="contain",
        elem_id="attention",
        render=False,
    )
    plate_json = gr.JSON(label="/recognize", render=False)
    reading = [plate_text, confidence, verdict, characters, attention, plate_json]
    with gr.Blocks(title="kr-lpr: Korean license plate reader", delete_cache=UPLOAD_RETENTION) as demo:
        gr.Markdown(
            "# kr-lpr: South Korean license plate reader\n"
            "Drop a **cropped** plate photo (one plate, a little margin is fine). TinyLPR reads the text and "
            "shows, for each character it emitted, the character-order attention map it read it from."
        )
        with gr.Tab("Read a plate"):
            with gr.Row():
                with gr.Column():
                    image = gr.Image(label="Plate crop", type="filepath", sources=["upload", "clipboard"])
                    if examples:
                        gr.Examples(
                            examples,
                            inputs=image,
                            outputs=reading,
                            fn=show_plate,
                            run_on_click=True,
                            cache_examples=False,
                            label="Synthetic example plates",
                        )
                with gr.Column():
                    plate_text.render()
                    with gr.Row():
                        confidence.render()
                        verdict.render()
                    characters.render()
            attention.render()
            with gr.Accordion("API output (JSON)", open=False):
                plate_json.render()
        with gr.Tab("Batch"):
            files = gr.File(label="Plate crops", file_count="multiple", file_types=["image"])
            read_all = gr.Button("Read all", variant="primary")
            batch_table = gr.Dataframe(
                headers=["file", "text", "confidence", "valid", "error"], label="Readings", interactive=False
            )
            batch_json = gr.JSON(label="/recognize_batch")

        # `upload`, not `change`: a broken upload fires `change` twice, which would show its error twice.
        image.upload(show_plate, inputs=image, outputs=reading, preprocess=False, api_visibility="private")
        image.clear(lambda: NO_READING, outputs=reading, api_visibility="private")
        read_all.click(
            show_batch, inputs=files, outputs=[batch_table, batch_json], preprocess=False, api_visibility="private"
        )
        gr.api(recognize, api_name="recognize")
        gr.api(recognize_batch, api_name="recognize_batch")
    return demo


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="kr-lpr gradio demo")
    parser.add_argument("--model", help="repo id or local Hub-format folder (default: $KR_LPR_MODEL or org/kr-lpr)")
    parser.add_argument("--port", type=int, help="server port (default: gradio's)")
    args = parser.parse_args(argv)
    source = args.model or os.environ.get("KR_LPR_MODEL") or DEFAULT_MODEL
    reader = PlateReader(source, revision=os.environ.get("KR_LPR_REVISION"))
    build_demo(reader).launch(server_port=args.port, **LAUNCH_OPTIONS)


if __name__ == "__main__":
    main()
