"""Helpers the trainer tests share: tiny runs, an in-process trainer on synthetic batches, comparisons."""

from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image

from runner.charset import CHARSETS
from runner.config import compose_config
from runner.data.datasets import LabeledFolderDataset
from runner.data.loaders import collate_batch, make_loader
from runner.models import create_model
from runner.train import train
from runner.training import OCRTrainer
from runner.training.checkpoint import load_checkpoint

DIGITS = "០១២៣៤៥៦៧៨៩"


def run(tmp_path: Path, *overrides: str) -> dict:
    """`train(cfg)` on debug=fast data with outputs under `tmp_path`."""
    cfg = compose_config("train", ["debug=fast", f"paths.output_root={tmp_path}", *overrides])
    return train(cfg)


def comparable(history: list[dict]) -> list[dict]:
    """Epoch rows without the timing columns, which differ from run to run."""
    return [{k: v for k, v in row.items() if "time" not in k and "samples_per_s" not in k and "data_wait" not in k}
            for row in history]


def synthetic_batches(count: int, size: int = 4, seed: int = 0, charset: str = "digits") -> list[dict]:
    """Random images labelled with 3 random characters of `charset` each."""
    rng = np.random.default_rng(seed)
    chars = list(CHARSETS[charset].chars)
    return [collate_batch([{"image": torch.from_numpy(rng.random((1, 32, 128), dtype=np.float32)),
                            "text": "".join(rng.choice(chars, size=3)), "path": f"sample_{b}_{i}.png"}
                           for i in range(size)], charset=charset)
            for b in range(count)]


def trainer_config(*overrides: str):
    return compose_config("train", ["model=ctc_small", "device=cpu", "device.amp=off", "data.batch_size=4",
                                    "trainer.max_epochs=2", "trainer.num_image_samples=0", *overrides])


def make_trainer(out: Path, *overrides: str, loaders: tuple = ()) -> OCRTrainer:
    """A ctc_small OCRTrainer writing to `out`: 3 synthetic training batches and 1 validation batch by default."""
    torch.manual_seed(0)
    train_loader, val_loader = loaders or (synthetic_batches(3), synthetic_batches(1, seed=1))
    return OCRTrainer(create_model("ctc_small"), train_loader, val_loader, trainer_config(*overrides), "cpu",
                      output_dir=out)


def bucketed_loaders(folder: Path) -> tuple:
    """Real DataLoaders over 12 image files of different widths, batched by width (data.bucketing, the
    default): 3 training batches of 4 in a seeded shuffled order, and one validation batch."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(12):
        pixels = np.full((24, 30 + 8 * index), 255, dtype=np.uint8)
        pixels[6:18, 2:-2] = (rng.random((12, 26 + 8 * index)) * 120).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{index}.png")
    (folder / "labels.tsv").write_text("".join(f"{i}.png\t{DIGITS[i % 10] * 3}\n" for i in range(12)), encoding="utf-8")
    train_loader = make_loader(LabeledFolderDataset(folder), 4, shuffle=True, seed=1234, bucketing=True)
    val_loader = make_loader(LabeledFolderDataset(folder, indices=range(4)), 4, shuffle=False, bucketing=True)
    return train_loader, val_loader


def replace_training_loss(trainer: OCRTrainer, loss: Callable[[torch.Tensor, int], torch.Tensor]) -> None:
    """`loss(real_loss, n)` for the n-th training batch (from 1); validation keeps the real loss."""
    real, calls = trainer.loss_fn, [0]

    def patched(logits, batch):
        value = real(logits, batch)
        if not trainer.model.training:
            return value
        calls[0] += 1
        return loss(value, calls[0])

    trainer.loss_fn = patched


def assert_same_final_state(a_last: Path, b_last: Path) -> None:
    a, b = load_checkpoint(a_last), load_checkpoint(b_last)
    assert (a["epoch"], a["global_step"]) == (b["epoch"], b["global_step"])
    for key, tensor in a["state_dict"].items():
        assert torch.equal(tensor, b["state_dict"][key]), key
