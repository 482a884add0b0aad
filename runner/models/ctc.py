"""CRNN: the shared CNN + BiLSTM encoder with a per-column CTC classifier (ctc_small, ctc_medium).

One prediction per image column (T = image_width / 4); class BLANK is the CTC blank. Greedy
decoding takes the argmax per column, collapses repeats and drops blanks and non-character tokens.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from runner.charset import Charset
from runner.decoding import Decoded, ctc_collapse, ctc_decode
from runner.models.encoder import WIDTH_STRIDE, OCRModel


def min_ctc_steps(max_length: int) -> int:
    # Worst case label "១១១..." needs a blank between every repeat: 2*max_length - 1 steps;
    # we ask for 2*max_length + 1 so a leading and trailing blank also fit.
    return 2 * max_length + 1


class CRNN(OCRModel):
    head = "ctc"

    def __init__(self, name: str = "ctc_small", max_length: int = 8, image_height: int = 32, image_width: int = 128,
                 channels: Sequence[int] = (32, 64, 128, 128), blocks: Sequence[int] = (1, 1, 1, 1),
                 hidden_size: int = 128, rnn_layers: int = 1, dropout: float = 0.1,
                 charset: Charset | str | None = None) -> None:
        super().__init__(name=name, max_length=max_length, image_height=image_height, image_width=image_width,
                         channels=channels, blocks=blocks, hidden_size=hidden_size, rnn_layers=rnn_layers,
                         dropout=dropout, charset=charset)
        steps = int(image_width) // WIDTH_STRIDE
        needed = min_ctc_steps(self.max_length)
        if steps < needed:
            raise self._fail(
                "data.image_width",
                f"is {image_width}, which gives {steps} CTC time steps (width / {WIDTH_STRIDE}) but labels of up to "
                f"data.max_length={self.max_length} characters need at least {needed} (2*max_length+1, room for "
                f"blanks between repeated characters)",
                f"set data.image_width >= {needed * WIDTH_STRIDE} or lower data.max_length",
            )
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden_size, self.charset.vocab_size))

    def forward(self, images: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
        """Per-column logits [B, T, V]; `targets` is accepted for a uniform trainer call and unused."""
        return self.classifier(self.encoder(images))

    def decode_logits(self, logits: torch.Tensor) -> Decoded:
        """Best-path decoding; confidence = product of per-column max probs (the best path's probability)."""
        return ctc_decode(logits.detach().float().cpu().numpy(), self.charset)

    def decode_texts(self, logits: torch.Tensor) -> list[str]:
        """Best path: the argmax per column, repeats collapsed, blanks and tokens outside the charset dropped."""
        return ctc_collapse(logits.detach().argmax(dim=-1).tolist(), self.charset)[0]
