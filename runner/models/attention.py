"""CNN + BiLSTM encoder with a Luong-attention LSTM decoder (presets small, medium, large).

Training is teacher-forced: `forward(images, targets)` feeds SOS, d1..dn, EOS, PAD... and
predicts targets[:, 1:]. Inference is greedy: `forward(images)` always runs max_length+1
steps (no data-dependent exit, so ONNX/TorchScript tracing records a fixed graph) and
`predict*` stop once every row has emitted EOS, which yields the same text.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from runner.charset import EOS, SOS, Charset
from runner.decoding import Decoded, attention_decode
from runner.models.encoder import OCRModel


class AttentionDecoder(nn.Module):
    """One step: LSTM cell over [previous token; previous attentional state], dot attention over
    the encoder columns, then a classifier on tanh(W[h; context]) (Luong et al. 2015, input feeding)."""

    def __init__(self, memory_size: int, embedding_dim: int, hidden: int, dropout: float, vocab_size: int) -> None:
        super().__init__()
        self.hidden = hidden
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self.init_state = nn.Linear(memory_size, 2 * hidden)
        self.cell = nn.LSTMCell(embedding_dim + hidden, hidden)
        self.keys = nn.Linear(memory_size, hidden, bias=False)
        self.combine = nn.Linear(hidden + memory_size, hidden)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden, vocab_size)

    def start(self, memory: torch.Tensor) -> tuple[torch.Tensor, ...]:
        # Under autocast, Linear layers return bf16 but LSTMCell is not autocast; keeping the
        # recurrent state float32 gives the cell one dtype for input, state and weights.
        memory = memory.float()
        h, c = torch.tanh(self.init_state(memory.mean(dim=1))).float().chunk(2, dim=-1)
        return memory, self.keys(memory), h.contiguous(), c.contiguous(), torch.zeros_like(h)

    def step(self, tokens: torch.Tensor, memory: torch.Tensor, keys: torch.Tensor, h: torch.Tensor,
             c: torch.Tensor, feed: torch.Tensor) -> tuple[torch.Tensor, ...]:
        h, c = self.cell(torch.cat([self.embedding(tokens), feed], dim=-1), (h, c))
        scores = torch.bmm(keys, h.unsqueeze(2)).squeeze(2)
        weights = torch.softmax(scores, dim=-1)
        context = torch.bmm(weights.unsqueeze(1), memory).squeeze(1)
        feed = torch.tanh(self.combine(torch.cat([h, context], dim=-1))).float()
        return self.classifier(self.dropout(feed)), h, c, feed


class AttentionOCR(OCRModel):
    head = "attention"

    def __init__(self, name: str = "small", max_length: int = 8, image_height: int = 32, image_width: int = 128,
                 channels: Sequence[int] = (32, 64, 128, 128), blocks: Sequence[int] = (1, 1, 1, 1),
                 hidden_size: int = 128, rnn_layers: int = 1, dropout: float = 0.1, embedding_dim: int = 32,
                 decoder_hidden: int = 128, charset: Charset | str | None = None) -> None:
        super().__init__(name=name, max_length=max_length, image_height=image_height, image_width=image_width,
                         channels=channels, blocks=blocks, hidden_size=hidden_size, rnn_layers=rnn_layers,
                         dropout=dropout, charset=charset, embedding_dim=int(embedding_dim),
                         decoder_hidden=int(decoder_hidden))
        self.decoder = AttentionDecoder(hidden_size, int(embedding_dim), int(decoder_hidden), dropout,
                                        self.charset.vocab_size)

    def forward(self, images: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
        """Teacher-forced logits [B, S-1, V] for targets [B, S]; else greedy logits [B, max_length+1, V]."""
        state = self.decoder.start(self.encoder(images))
        if targets is not None:
            return self._teacher_forced(state, targets)
        return self._greedy(state, stop_when_done=False)

    def _teacher_forced(self, state: tuple[torch.Tensor, ...], targets: torch.Tensor) -> torch.Tensor:
        memory, keys, h, c, feed = state
        logits = []
        for step in range(targets.shape[1] - 1):
            step_logits, h, c, feed = self.decoder.step(targets[:, step], memory, keys, h, c, feed)
            logits.append(step_logits)
        return torch.stack(logits, dim=1)

    def _greedy(self, state: tuple[torch.Tensor, ...], stop_when_done: bool) -> torch.Tensor:
        memory, keys, h, c, feed = state
        tokens = torch.full((memory.shape[0],), SOS, dtype=torch.long, device=memory.device)
        finished = torch.zeros_like(tokens, dtype=torch.bool)
        logits = []
        for _ in range(self.max_length + 1):
            step_logits, h, c, feed = self.decoder.step(tokens, memory, keys, h, c, feed)
            logits.append(step_logits)
            tokens = step_logits.argmax(dim=-1)
            if stop_when_done:
                finished |= tokens == EOS
                if bool(finished.all()):
                    break
        return torch.stack(logits, dim=1)

    def _greedy_logits(self, images: torch.Tensor) -> torch.Tensor:
        return self._greedy(self.decoder.start(self.encoder(images)), stop_when_done=True)

    def decode_logits(self, logits: torch.Tensor) -> Decoded:
        """Texts up to each row's first EOS; confidence = product of max probs up to and incl. EOS."""
        return attention_decode(logits.detach().float().cpu().numpy(), self.charset)
