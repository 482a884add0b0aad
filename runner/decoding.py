"""Greedy decoding of model logits into texts and confidences, in numpy: one rule for every runtime.

The PyTorch models, the ONNX Runtime predictor and anything else holding logits decode here, with the
charset the model was trained on, so a checkpoint and its export read the same text with the same
confidences; numpy alone is needed, which lets an ONNX deployment run without torch.

Per text, `Decoded` carries the sequence confidence (the product of the per-step max probabilities) and
one confidence per character read: CTC, the largest max probability over the frames of the character's
run (repeats collapse into one character); attention, the max probability of the step that emitted it.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np

from runner.charset import BLANK, EOS, Charset


class Decoded(NamedTuple):
    """What greedy decoding reads in a batch: texts, confidences in [0, 1], and per text one confidence per
    character (len(char_confidences[i]) == len(texts[i]))."""

    texts: list[str]
    confidences: list[float]
    char_confidences: list[list[float]]


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


def ctc_collapse(tokens: Sequence[Sequence[int]], charset: Charset,
                 step_probs: np.ndarray | None = None) -> tuple[list[str], list[list[float]]]:
    """Best-path token ids [B, T] -> (texts, per-character confidences): repeats collapsed, blanks and tokens
    outside `charset` dropped. A character's confidence is the largest of `step_probs` [B, T] over its run
    (all 1.0 without them)."""
    texts, char_confidences = [], []
    index_to_char = charset.index_to_char
    for row_index, row in enumerate(tokens):
        chars: list[str] = []
        confidences: list[float] = []
        previous = BLANK
        for step, token in enumerate(row):
            probability = 1.0 if step_probs is None else float(step_probs[row_index, step])
            if token in index_to_char:
                if token != previous:
                    chars.append(index_to_char[token])
                    confidences.append(probability)
                else:
                    confidences[-1] = max(confidences[-1], probability)
            previous = token
        texts.append("".join(chars))
        char_confidences.append(confidences)
    return texts, char_confidences


def ctc_decode(logits: np.ndarray, charset: Charset) -> Decoded:
    """[B, T, V] CTC logits -> texts, the best path's probability (product of per-column max probs) and each
    character's confidence."""
    logits = np.asarray(logits)
    log_probs = _max_log_probs(logits)
    texts, char_confidences = ctc_collapse(logits.argmax(axis=-1).tolist(), charset, np.exp(log_probs))
    return Decoded(texts, np.exp(log_probs.sum(axis=1)).tolist(), char_confidences)


def attention_decode(logits: np.ndarray, charset: Charset) -> Decoded:
    """[B, S, V] attention logits -> texts up to each row's first EOS; confidence = product of max probs
    up to and including EOS (all steps when no EOS was emitted); a character's, its step's max prob."""
    logits = np.asarray(logits)
    tokens = logits.argmax(axis=-1)
    is_eos = tokens == EOS
    first_eos = np.where(is_eos.any(axis=1), is_eos.argmax(axis=1), tokens.shape[1] - 1)
    step_probs = np.exp(_max_log_probs(logits))
    texts, char_confidences = [], []
    for row_index, row in enumerate(tokens.tolist()):
        chars: list[str] = []
        confidences: list[float] = []
        for step, token in enumerate(row):
            if token == EOS:
                break
            if token in charset.index_to_char:
                chars.append(charset.index_to_char[token])
                confidences.append(float(step_probs[row_index, step]))
        texts.append("".join(chars))
        char_confidences.append(confidences)
    return Decoded(texts, greedy_confidence(logits, first_eos + 1), char_confidences)


DECODERS = {"ctc": ctc_decode, "attention": attention_decode}  # by model head
