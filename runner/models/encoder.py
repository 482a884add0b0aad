"""The image encoder both model heads share, and the interface every OCR model exposes.

Encoder: 4 CNN stages (BatchNorm + ReLU) downsample 1xHxW to CxH/16xW/4, each column is
flattened and projected to `hidden_size`, then a BiLSTM gives every column context from the
whole line. The width stride of 4 keeps 32 columns for a 128-pixel line: enough CTC time steps
for 8 digits with repeats (needs 17), and a short sequence for the attention decoder.
"""

from __future__ import annotations

from typing import Any, ClassVar, Sequence

import torch
from omegaconf import ListConfig
from torch import nn

from runner.charset import Charset, as_charset
from runner.decoding import Decoded
from runner.errors import ConfigError

WIDTH_STRIDE = 4
STAGE_STRIDES: tuple[tuple[int, int], ...] = ((2, 2), (2, 2), (2, 1), (2, 1))


def conv_bn_relu(in_channels: int, out_channels: int, stride: tuple[int, int] = (1, 1)) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class ResidualBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = conv_bn_relu(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def stage_output_height(image_height: int) -> int:
    # Stride-2 convs with padding 1 give ceil(h/2), so any height works.
    height = image_height
    for stride_h, _ in STAGE_STRIDES:
        height = (height - 1) // stride_h + 1
    return height


class SequenceEncoder(nn.Module):
    """Image [B,1,H,W] -> column features [B, W/4, hidden_size]."""

    def __init__(self, image_height: int, channels: Sequence[int], blocks: Sequence[int], hidden_size: int,
                 rnn_layers: int, dropout: float) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_channels = 1
        for out_channels, count, stride in zip(channels, blocks, STAGE_STRIDES):
            layers.append(conv_bn_relu(in_channels, out_channels, stride))
            layers.extend(ResidualBlock(out_channels) for _ in range(count - 1))
            in_channels = out_channels
        self.cnn = nn.Sequential(*layers)
        self.project = nn.Sequential(
            nn.Linear(in_channels * stage_output_height(image_height), hidden_size), nn.Dropout(dropout)
        )
        self.rnn = nn.LSTM(hidden_size, hidden_size // 2, num_layers=rnn_layers, batch_first=True,
                           bidirectional=True, dropout=dropout if rnn_layers > 1 else 0.0)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        # channels_last makes the oneDNN convolutions faster on CPU (fwd+bwd; docs/benchmarks.md), and
        # costs nothing for a 1-channel input; later layers inherit the format.
        features = self.cnn(images.contiguous(memory_format=torch.channels_last))
        batch, channels, height, width = features.shape
        columns = features.permute(0, 3, 1, 2).reshape(batch, width, channels * height)
        columns = self.project(columns)
        # Under CPU autocast the projection yields bf16 while LSTM weights stay fp32; the fused
        # kernel wants one dtype, so the recurrent part runs in the weights' dtype.
        output, _ = self.rnn(columns.to(self.rnn.weight_ih_l0.dtype))
        return output


def _plain(value: Any) -> Any:
    """ListConfig/tuples -> lists so config_dict() survives torch.load(weights_only=True)."""
    if isinstance(value, (list, tuple, ListConfig)):
        return [_plain(item) for item in value]
    return value


class OCRModel(nn.Module):
    """What the trainer, evaluator and exporter rely on, whichever head a model has.

    Subclasses set `head`, build `self.encoder`, and implement `forward` and `decode_logits`. `charset` (a
    Charset or its name, default digits) sizes the output layer (`charset.vocab_size` classes) and decodes it;
    it is not part of `config_dict`: a checkpoint stores it beside the config (`Charset.signature`).
    """

    head: ClassVar[str]

    def __init__(self, *, name: str, max_length: int, image_height: int, image_width: int,
                 channels: Sequence[int], blocks: Sequence[int], hidden_size: int, rnn_layers: int,
                 dropout: float, charset: Charset | str | None = None, **head_kwargs: Any) -> None:
        super().__init__()
        self.charset = as_charset(charset)
        self.name = str(name)
        self.max_length = int(max_length)
        self._config = {
            "name": self.name, "max_length": self.max_length, "image_height": int(image_height),
            "image_width": int(image_width), "channels": _plain(channels), "blocks": _plain(blocks),
            "hidden_size": int(hidden_size), "rnn_layers": int(rnn_layers), "dropout": float(dropout),
            **{key: _plain(value) for key, value in head_kwargs.items()},
        }
        self._validate()
        self.encoder = SequenceEncoder(image_height, self._config["channels"], self._config["blocks"],
                                       hidden_size, rnn_layers, dropout)

    def _fail(self, key: str, problem: str, fix: str) -> ConfigError:
        return ConfigError(f"model={self.name}: {key} {problem}; {fix} (conf/model/{self.name}.yaml).")

    def _validate(self) -> None:
        cfg = self._config
        if self.max_length < 1:
            raise self._fail("max_length", f"is {self.max_length}", "labels need at least 1 digit, set data.max_length >= 1")
        if cfg["image_width"] < 32 or cfg["image_width"] % WIDTH_STRIDE:
            raise self._fail("data.image_width", f"is {cfg['image_width']}", "use a multiple of 4 that is >= 32")
        if cfg["image_height"] < 16:
            raise self._fail("data.image_height", f"is {cfg['image_height']}", "use at least 16 pixels")
        if len(cfg["channels"]) != len(STAGE_STRIDES) or len(cfg["blocks"]) != len(STAGE_STRIDES):
            raise self._fail("model.channels/model.blocks", f"are {cfg['channels']}/{cfg['blocks']}",
                             f"give exactly {len(STAGE_STRIDES)} values each, one per CNN stage")
        if min(cfg["channels"]) < 1 or min(cfg["blocks"]) < 1:
            raise self._fail("model.channels/model.blocks", f"are {cfg['channels']}/{cfg['blocks']}",
                             "every stage needs >= 1 channel and >= 1 block")
        if cfg["hidden_size"] < 2 or cfg["hidden_size"] % 2:
            raise self._fail("model.hidden_size", f"is {cfg['hidden_size']}",
                             "use an even number (the BiLSTM splits it over two directions)")
        if cfg["rnn_layers"] < 1:
            raise self._fail("model.rnn_layers", f"is {cfg['rnn_layers']}", "use >= 1")
        if not 0.0 <= cfg["dropout"] < 1.0:
            raise self._fail("model.dropout", f"is {cfg['dropout']}", "use a value in [0, 1)")

    def config_dict(self) -> dict[str, Any]:
        """Plain-Python kwargs with `_target_`, the class's name in runner.models.registry.MODEL_CLASSES:
        `model_from_config` rebuilds this model from them (a checkpoint stores them)."""
        cls = type(self)
        return {"_target_": f"{cls.__module__}.{cls.__qualname__}", **self._config}

    def extra_repr(self) -> str:
        return f"name={self.name!r}, head={self.head!r}, max_length={self.max_length}, charset={self.charset.name!r}"

    def decode_logits(self, logits: torch.Tensor) -> Decoded:
        """(texts, confidences, char_confidences) of greedy logits, read with the model's charset (runner/decoding.py)."""
        raise NotImplementedError

    def decode_texts(self, logits: torch.Tensor) -> list[str]:
        """The texts of `decode_logits` without the confidences (the training loop's accuracy)."""
        return self.decode_logits(logits)[0]

    def _greedy_logits(self, images: torch.Tensor) -> torch.Tensor:
        return self(images)

    def predict_with_confidence(self, images: torch.Tensor) -> Decoded:
        """Greedy texts, confidences in [0,1] (the product of the per-step max probabilities) and per-character
        confidences."""
        was_training = self.training
        self.eval()
        try:
            with torch.inference_mode():
                return self.decode_logits(self._greedy_logits(images))
        finally:
            self.train(was_training)

    def predict(self, images: torch.Tensor) -> list[str]:
        return self.predict_with_confidence(images)[0]
