"""TinyLPR configuration."""

from __future__ import annotations

from transformers import PretrainedConfig

from .plate_codec_tinylpr import DEFAULT_TOKENS

# Seed 000's backbone: MobileNetV3-Small with blocks 2 and 9 at stride 1 (8x downsampling in
# total), the last two blocks removed and no SE. Rows: kernel, expanded channels, out channels, stride.
DEFAULT_BLOCKS = (
    (3, 16, 16, 2),
    (3, 72, 24, 1),
    (3, 88, 24, 1),
    (5, 96, 40, 2),
    (5, 240, 40, 1),
    (5, 240, 40, 1),
    (5, 120, 48, 1),
    (5, 144, 48, 1),
    (5, 288, 96, 1),
)


class TinyLPRConfig(PretrainedConfig):
    """Configuration of [`TinyLPRModel`].

    Args:
        image_height, image_width: model input size; both must be multiples of the backbone's
            total stride (8 with the default blocks). 64x128 and 96x192 are the tested sizes.
        num_channels: input channels; 1 (grayscale) as in seed 000.
        width_multiplier: scales every backbone width (rounded to multiples of 8).
        stem_channels: output channels of the first 3x3 stride-2 convolution.
        blocks: inverted-residual rows `(kernel, expanded, out, stride)`.
        feature_channels: width of the per-time-step feature vector fed to the classifier.
        attention_reduction: channel-attention bottleneck ratio.
        time_steps: CTC output length; a plate may have at most `time_steps // 2` tokens, since
            token i is assigned to step 2i (the masks use this order).
        labels: the token set without the blank; the blank is class 0.
        classifier_dropout: dropout on the per-step features during training.
        focal_alpha, focal_gamma: focal CTC parameters (seed 000: 0.8 and 3.0).
        mask_loss_weight, center_loss_weight: weights of the Dice+BCE mask loss and the center loss.
        mask_loss_stride: the mask loss compares maps and area-averaged masks at 1/stride of the
            input size (4: 16x32 at 64x128), which keeps the mask loss cheap on CPU.
        center_momentum: update rate of the class centres of the center loss.
    """

    model_type = "tinylpr"

    def __init__(
        self,
        image_height: int = 64,
        image_width: int = 128,
        num_channels: int = 1,
        width_multiplier: float = 1.0,
        stem_channels: int = 16,
        blocks: list | tuple = DEFAULT_BLOCKS,
        feature_channels: int = 96,
        attention_reduction: int = 4,
        time_steps: int = 16,
        labels: list | tuple = DEFAULT_TOKENS,
        classifier_dropout: float = 0.1,
        focal_alpha: float = 0.8,
        focal_gamma: float = 3.0,
        mask_loss_weight: float = 1.0,
        center_loss_weight: float = 0.01,
        mask_loss_stride: int = 4,
        center_momentum: float = 0.05,
        **kwargs,
    ) -> None:
        self.image_height = image_height
        self.image_width = image_width
        self.num_channels = num_channels
        self.width_multiplier = width_multiplier
        self.stem_channels = stem_channels
        self.blocks = [list(block) for block in blocks]
        self.feature_channels = feature_channels
        self.attention_reduction = attention_reduction
        self.time_steps = time_steps
        self.labels = list(labels)
        self.classifier_dropout = classifier_dropout
        self.focal_alpha = focal_alpha
        self.focal_gamma = focal_gamma
        self.mask_loss_weight = mask_loss_weight
        self.center_loss_weight = center_loss_weight
        self.mask_loss_stride = mask_loss_stride
        self.center_momentum = center_momentum
        super().__init__(**kwargs)
        self.validate_values()

    @property
    def num_classes(self) -> int:
        return len(self.labels) + 1

    @property
    def blank_id(self) -> int:
        return 0

    @property
    def total_stride(self) -> int:
        stride = 2
        for block in self.blocks:
            stride *= block[3]
        return stride

    @property
    def max_plate_tokens(self) -> int:
        return self.time_steps // 2

    def validate_values(self) -> None:
        def require(condition: bool, message: str) -> None:
            if not condition:
                raise ValueError(f"TinyLPRConfig: {message}")

        for name in (
            "image_height",
            "image_width",
            "num_channels",
            "stem_channels",
            "feature_channels",
            "attention_reduction",
            "time_steps",
        ):
            value = getattr(self, name)
            require(isinstance(value, int) and value > 0, f"{name} must be a positive integer, got {value!r}")
        require(0 < self.width_multiplier <= 4, f"width_multiplier must be in (0, 4], got {self.width_multiplier}")
        require(len(self.blocks) > 0, "blocks must not be empty")
        for block in self.blocks:
            require(
                len(block) == 4 and all(isinstance(v, int) and v > 0 for v in block),
                f"each block is (kernel, expanded, out, stride) of positive ints, got {block}",
            )
            require(block[0] % 2 == 1, f"block kernel sizes must be odd, got {block[0]}")
            require(block[3] in (1, 2), f"block strides must be 1 or 2, got {block[3]}")
        stride = self.total_stride
        require(
            self.image_height % stride == 0 and self.image_width % stride == 0,
            f"image size {self.image_height}x{self.image_width} must be a multiple of the total stride {stride}",
        )
        require(len(self.labels) > 0, "labels must not be empty")
        require(len(set(self.labels)) == len(self.labels), "labels must be unique")
        require(self.time_steps >= 2, f"time_steps must be at least 2, got {self.time_steps}")
        require(
            0 <= self.classifier_dropout < 1, f"classifier_dropout must be in [0, 1), got {self.classifier_dropout}"
        )
        require(0 < self.focal_alpha, f"focal_alpha must be positive, got {self.focal_alpha}")
        require(0 <= self.focal_gamma, f"focal_gamma must be >= 0, got {self.focal_gamma}")
        require(self.mask_loss_weight >= 0 and self.center_loss_weight >= 0, "loss weights must be >= 0")
        require(0 < self.center_momentum <= 1, f"center_momentum must be in (0, 1], got {self.center_momentum}")
