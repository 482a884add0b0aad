"""Greedy decoding of model logits into texts and confidences, in numpy: one rule for every runtime.

The PyTorch models, the ONNX Runtime predictor and anything else holding logits decode here, so a
checkpoint and its export read the same text with the same confidence; numpy alone is needed, which
lets an ONNX deployment run without torch.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from runner.charset import BLANK, EOS, INDEX_TO_CHAR, decode


def _max_log_probs(logits: np.ndarray) -> np.ndarray:
    """[B, T] log of the largest softmax probability per step, in float64 so long rows do not underflow."""
    logits = np.asarray(logits, dtype=np.float64)
    top = logits.max(axis=-1)
    return -np.log(np.exp(logits - top[..., None]).sum(axis=-1))  # log softmax at the argmax


def greedy_confidence(logits: np.ndarray, steps: np.ndarray) -> list[float]:
    """Product of the max softmax probability over the first `steps[b]` steps of each row."""
    log_probs = _max_log_probs(logits)
    mask = np.arange(log_probs.shape[1])[None, :] < np.asarray(steps)[:, None]
    return np.exp((log_probs * mask).sum(axis=1)).tolist()


def ctc_collapse(tokens: Sequence[Sequence[int]]) -> list[str]:
    """Best-path token ids [B, T] -> texts: repeats collapsed, blanks and non-digit tokens dropped."""
    texts = []
    for row in tokens:
        chars, previous = [], BLANK
        for token in row:
            if token != previous and token in INDEX_TO_CHAR:
                chars.append(INDEX_TO_CHAR[token])
            previous = token
        texts.append("".join(chars))
    return texts


def ctc_decode(logits: np.ndarray) -> tuple[list[str], list[float]]:
    """[B, T, V] CTC logits -> texts and the best path's probability (product of per-column max probs)."""
    logits = np.asarray(logits)
    return ctc_collapse(logits.argmax(axis=-1).tolist()), greedy_confidence(logits, np.full(logits.shape[0],
                                                                                           logits.shape[1]))


def attention_decode(logits: np.ndarray) -> tuple[list[str], list[float]]:
    """[B, S, V] attention logits -> texts up to each row's first EOS; confidence = product of max probs
    up to and including EOS (all steps when no EOS was emitted)."""
    tokens = np.asarray(logits).argmax(axis=-1)
    is_eos = tokens == EOS
    first_eos = np.where(is_eos.any(axis=1), is_eos.argmax(axis=1), tokens.shape[1] - 1)
    return [decode(row) for row in tokens.tolist()], greedy_confidence(logits, first_eos + 1)


DECODERS = {"ctc": ctc_decode, "attention": attention_decode}  # by model head
