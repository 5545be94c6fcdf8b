"""TinyLPR image processor: images to `pixel_values`, CTC logits to plate readings."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from transformers.image_processing_utils import BaseImageProcessor, BatchFeature

from .plate_codec_tinylpr import DEFAULT_TOKENS, LabelMap, decode_batch
from .preprocessing_tinylpr import (
    DEFAULT_PLACEMENT,
    MAX_STRETCH,
    PLACEMENTS,
    letterbox,
    load_image,
    to_pixel_values,
)

LABELS_FILE = "labels.names"


class TinyLPRImageProcessor(BaseImageProcessor):
    """Grayscale, fit to the model size (keeping the aspect ratio and padding, or stretched), scale to [0, 1].

    Args:
        image_height, image_width: model input size.
        placement: how the plate fits the canvas: "fill_width" (default, the release's: the full width,
            and the height stretched at most `max_stretch` times more than the width, centred, so flat
            crops keep lettering of a readable shape), "center" (aspect ratio kept, padded around: stages
            1-51), "top_left" (aspect ratio kept, padded right and below: seeds 000 and 002), or "stretch"
            (no padding: the crop is resized to fill the canvas, as tinyLPR and LPRNet resize theirs).
        pad_value: grey level of the padding (0-255).
        max_stretch: with "fill_width", how much more a crop's height may be stretched than its width (>= 1).
        labels: the token set, used by `post_process` to turn class ids into text.
    """

    model_input_names = ["pixel_values"]

    def __init__(
        self,
        image_height: int = 64,
        image_width: int = 128,
        placement: str = DEFAULT_PLACEMENT,
        pad_value: int = 0,
        max_stretch: float = MAX_STRETCH,
        labels: list[str] | tuple[str, ...] = DEFAULT_TOKENS,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if placement not in PLACEMENTS:
            raise ValueError(f"placement must be one of {PLACEMENTS}, got {placement!r}")
        if not 0 <= pad_value <= 255:
            raise ValueError(f"pad_value must be in 0..255, got {pad_value}")
        if not max_stretch >= 1:
            raise ValueError(f"max_stretch must be at least 1, got {max_stretch}")
        self.image_height = image_height
        self.image_width = image_width
        self.placement = placement
        self.pad_value = pad_value
        self.max_stretch = float(max_stretch)
        self.labels = list(labels)
        self.label_map = LabelMap(self.labels)

    def updated(self, **settings) -> TinyLPRImageProcessor:
        """A new processor with `settings` (`placement=...`, `max_stretch=...`) replaced, checked as the constructor
        checks them."""
        return TinyLPRImageProcessor.from_dict({**self.to_dict(), **settings})

    def to_dict(self) -> dict:
        output = super().to_dict()
        output.pop("label_map", None)
        return output

    def letterbox(self, image) -> tuple[np.ndarray, object]:
        """One image (path, PIL or array) to a `(H, W)` uint8 canvas and its letterbox geometry."""
        return letterbox(
            load_image(image), self.image_width, self.image_height, self.placement, self.pad_value, self.max_stretch
        )

    def canvases(self, images, first_index: int = 0) -> np.ndarray:
        """Letterboxed `(N, H, W)` uint8 canvases of one image or a list; errors name the image's index."""
        images = list(images) if isinstance(images, (list, tuple)) else [images]
        if not images:
            raise ValueError("no images given")
        canvases = []
        for index, image in enumerate(images, start=first_index):
            try:
                canvases.append(self.letterbox(image)[0])
            except ValueError as error:
                raise ValueError(f"image {index}: {error}") from error
        return np.stack(canvases)

    def preprocess(self, images, return_tensors: str | None = None, **kwargs) -> BatchFeature:
        pixel_values = to_pixel_values(self.canvases(images))
        return BatchFeature(data={"pixel_values": pixel_values}, tensor_type=return_tensors)

    def post_process(self, outputs, method: str = "greedy", beam_width: int = 10) -> list[dict]:
        """Decodes model outputs (or logits) to `{"text", "confidence", "valid", "char_confidences"}`.

        `method="beam"` runs CTC beam search and keeps the best beam with a valid plate format.
        """
        logits = outputs.logits if hasattr(outputs, "logits") else outputs
        if hasattr(logits, "detach"):
            logits = logits.detach().float().cpu().numpy()
        return decode_batch(np.asarray(logits), self.label_map, method, beam_width)

    batch_decode = post_process

    def save_pretrained(self, save_directory: str | os.PathLike, *args, **kwargs):
        saved = super().save_pretrained(save_directory, *args, **kwargs)
        self.label_map.save(Path(save_directory) / LABELS_FILE)
        return saved
