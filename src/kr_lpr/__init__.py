"""kr-lpr: a tiny real-time South Korean license plate recognizer for the Hugging Face stack."""

from transformers import AutoConfig, AutoImageProcessor, AutoModel

from .configuration_tinylpr import TinyLPRConfig
from .image_processing_tinylpr import TinyLPRImageProcessor
from .modeling_tinylpr import TinyLPRModel, TinyLPROutput
from .plate_codec_tinylpr import DEFAULT_TOKENS, HANGUL, REGIONS, LabelMap, is_valid_plate

__version__ = "0.1.0"

AutoConfig.register(TinyLPRConfig.model_type, TinyLPRConfig, exist_ok=True)
AutoModel.register(TinyLPRConfig, TinyLPRModel, exist_ok=True)
AutoImageProcessor.register(TinyLPRConfig, slow_image_processor_class=TinyLPRImageProcessor, exist_ok=True)
# save_pretrained then writes auto_map and copies the flat remote-code files next to the weights.
TinyLPRConfig.register_for_auto_class()
TinyLPRModel.register_for_auto_class("AutoModel")
TinyLPRImageProcessor.register_for_auto_class("AutoImageProcessor")


def __getattr__(name: str):
    # The runtime-backed recognizer imports onnxruntime or LiteRT only when asked for.
    if name == "LicensePlateRecognizer":
        from .inference import LicensePlateRecognizer

        return LicensePlateRecognizer
    raise AttributeError(f"module 'kr_lpr' has no attribute {name!r}")


__all__ = [
    "DEFAULT_TOKENS",
    "HANGUL",
    "REGIONS",
    "LabelMap",
    "LicensePlateRecognizer",
    "TinyLPRConfig",
    "TinyLPRImageProcessor",
    "TinyLPRModel",
    "TinyLPROutput",
    "is_valid_plate",
]
