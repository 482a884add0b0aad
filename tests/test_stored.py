"""runner/stored.py and every reader of stored files: nothing a command reads runs code, nothing it writes
destroys data.

Every case builds hostile or broken files next to a *sentinel* folder of the user's own files,
runs one command in this process (the same `main` as `python -m runner...`), and checks the
one-paragraph message, the exit code, and that the sentinel's listing and file hashes did not
change. Crafted model configs point `builtins.open(..., "w")` at a file in the sentinel, so a
config that were built would empty it.
"""

from __future__ import annotations

import errno
import hashlib
import json
import pickle
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import pytest
import torch
from PIL import Image

from runner.charset import CHARSETS
from runner.config import compose_config
from runner.data.config import as_data_config
from runner.data.generate import data_fonts, dataset_cache_key
from runner.models import create_model
from runner.training.checkpoint import atomic_save, build_checkpoint

DIGITS = "០១២៣៤៥៦៧៨៩"
VICTIM = "diary.txt"  # the sentinel file every crafted model config tries to open for writing


# --------------------------------------------------------------------------- the files
def checkpoint(path: Path, *, config: Optional[dict] = None, **changes) -> Path:
    """An untrained ctc_small checkpoint of plain values (the safe loader accepts it), with `changes`."""
    torch.manual_seed(0)
    model = create_model("ctc_small")
    payload = build_checkpoint(model=model, epoch=1, global_step=3, metrics={}, config_yaml="",
                               preprocess={"height": 32, "width": 128, "bucketing": True, "text_crop": True})
    if config is not None:
        payload["model"]["config"] = config
    atomic_save({**payload, **changes}, path)
    return path


def good_config() -> dict:
    return create_model("ctc_small").config_dict()


def opener(victim: Path) -> dict:
    return {"_target_": "builtins.open", "file": str(victim), "mode": "w"}


def top_level_opener(sentinel: Path) -> dict:
    return opener(sentinel / VICTIM)


def nested_opener(sentinel: Path) -> dict:
    return {**good_config(), "dropout": opener(sentinel / VICTIM)}


def png(path: Path, width: int = 80, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.full((24, width), 255, dtype=np.uint8)
    pixels[6:18, 4:-4] = (np.random.default_rng(seed).random((12, width - 8)) * 90).astype(np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def bomb_png(path: Path) -> Path:
    """A 20000x20000 PNG header (400 M pixels, over twice Pillow's limit) in a few bytes."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 20000, 20000, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 20001))
                     + chunk(b"IEND", b""))
    return path


def image_folder(folder: Path, count: int = 6) -> Path:
    for index in range(count):
        png(folder / f"{index}.png", 60 + 10 * index, index)
    return folder


def labelled_folder(folder: Path, lines: Optional[list[bytes]] = None) -> Path:
    """A data=folder dataset; `lines` replace the labels.tsv lines (bytes, to write any encoding)."""
    image_folder(folder)
    lines = lines if lines is not None else [f"{i}.png\t{DIGITS[i] * 3}".encode() for i in range(6)]
    (folder / "labels.tsv").write_bytes(b"\n".join(lines) + b"\n")
    return folder


def generated_folder(folder: Path, train: int = 3, counts: Optional[dict] = None, image: str = "train/{i}.png") -> Path:
    """A dataset folder as runner.generate writes it (metadata.yaml + PNGs), with editable counts."""
    records = {"train": [{"image": image.format(i=i), "label": DIGITS[i] * 2} for i in range(train)],
               "val": [{"image": f"val/{i}.png", "label": DIGITS[i]} for i in range(2)]}
    for split, rows in records.items():
        for i, _ in enumerate(rows):
            png(folder / split / f"{i}.png", 60, i)
    info = {"generator": "runner.generate", "counts": counts or {"train": train, "val": 2}}
    text = f"dataset_info: {json.dumps(info)}\n" + "".join(
        f"{split}:\n" + "".join(f"- {json.dumps(row, ensure_ascii=False)}\n" for row in rows)
        for split, rows in records.items())
    (folder / "metadata.yaml").write_text(text, encoding="utf-8")
    return folder


def sidecar_model(folder: Path, config: dict) -> Path:
    """model.onnx (not even ONNX) with a model.onnx.json sidecar whose model config is `config`."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.onnx").write_bytes(b"not an onnx graph")
    metadata = {"format": "khmer-digits-ocr.export", "charset": CHARSETS["digits"].signature(),
                "model": {"name": "ctc_small", "head": "ctc", "config": config},
                "preprocess": {"height": 32, "width": 128, "crop": True, "text_crop": True}, "max_length": 8}
    (folder / "model.onnx.json").write_text(json.dumps(metadata), encoding="utf-8")
    return folder / "model.onnx"


def torchscript_archive(path: Path) -> Path:
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(path))
    return path


class _Exploit:
    marker: Path

    def __reduce__(self):
        return (Path.touch, (_Exploit.marker,))


def pickled_code(path: Path, marker: Path) -> Path:
    _Exploit.marker = marker
    torch.save({"format": "khmer-digits-ocr.checkpoint", "payload": _Exploit()}, path, pickle_module=pickle)
    return path


def finished_run(run_dir: Path) -> Path:
    """A run dir as a finished training run leaves it."""
    checkpoint(run_dir / "checkpoints" / "last.pt")
    checkpoint(run_dir / "checkpoints" / "best.pt")
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / ".hydra" / "config.yaml").write_text("seed: 1\n")
    (run_dir / ".hydra" / "overrides.yaml").write_text("- seed=1\n")
    (run_dir / "train.log").write_text("[epoch 1] done\n")
    (run_dir / "job_status.json").write_text('{"status": "completed", "error": null}')
    return run_dir


def cache_with_broken_metadata(cache: Path, overrides: list[str]) -> Path:
    data = as_data_config(compose_config("train", overrides).data)
    folder = cache / f"khmer-digits-{dataset_cache_key(data, 1234, data_fonts(data))}"
    folder.mkdir(parents=True)
    (folder / "metadata.yaml").write_text("dataset_info: {counts: [unclosed\ntrain:\n- {image: x\n")
    return folder


def sweep_with_crafted_records(sweep: Path) -> Path:
    for job, status in (("0", ["not", "a", "mapping"]), ("1", {"status": "completed", "wall_time_s": "soon"})):
        (sweep / job / ".hydra").mkdir(parents=True)
        (sweep / job / ".hydra" / "overrides.yaml").write_text("- seed=${oc.env:HOME}\n")
        (sweep / job / "job_status.json").write_text(json.dumps(status))
        (sweep / job / "metrics.json").write_text('{"history": [{"epoch": "x"}], "best_epoch": "1"}')
    return sweep


# --------------------------------------------------------------------------- the cases
@dataclass
class Case:
    build: Callable[[Path, Path], tuple[str, list[str]]]  # (tmp, sentinel) -> (module, overrides)
    message: str  # in stderr (or stdout), whitespace-normalized
    code: int = 2
    check: Optional[Callable[[Path, Path], None]] = None  # more assertions on (tmp, sentinel)
    patch: Optional[Callable[[pytest.MonkeyPatch], None]] = None  # e.g. a disk that fills up


def predict_with(build_checkpoint_file: Callable[[Path, Path], Path], *extra: str) -> Callable:
    def build(tmp: Path, sentinel: Path) -> tuple[str, list[str]]:
        return "runner.predict", [f"checkpoint={build_checkpoint_file(tmp, sentinel)}",
                                  f"inputs={image_folder(sentinel / 'scans', 2)}", *extra]
    return build


def evaluate_with(build_checkpoint_file: Callable[[Path, Path], Path]) -> Callable:
    def build(tmp: Path, sentinel: Path) -> tuple[str, list[str]]:
        return "runner.evaluate", [f"checkpoint={build_checkpoint_file(tmp, sentinel)}", "data=folder",
                                   f"data.dir={labelled_folder(sentinel / 'test_set')}"]
    return build


def export_with(build_checkpoint_file: Callable[[Path, Path], Path], *extra: str) -> Callable:
    def build(tmp: Path, sentinel: Path) -> tuple[str, list[str]]:
        return "runner.export", [f"checkpoint={build_checkpoint_file(tmp, sentinel)}", "format=torchscript", *extra]
    return build


def train_with(*overrides: str, data: Optional[Callable[[Path, Path], list[str]]] = None) -> Callable:
    def build(tmp: Path, sentinel: Path) -> tuple[str, list[str]]:
        chosen = data(tmp, sentinel) if data else []
        return "runner", ["model=ctc_small", "device=cpu", "data.batch_size=4", "trainer.max_epochs=1",
                          f"paths.output_root={tmp / 'outputs'}", *chosen, *overrides]
    return build


def folder_data(lines: Optional[list[bytes]] = None) -> Callable[[Path, Path], list[str]]:
    return lambda tmp, sentinel: ["data=folder", f"data.dir={labelled_folder(sentinel / 'images', lines)}"]


def crafted(config: Callable[[Path], dict]) -> Callable[[Path, Path], Path]:
    return lambda tmp, sentinel: checkpoint(tmp / "model.pt", config=config(sentinel))


def good_checkpoint(tmp: Path, sentinel: Path) -> Path:
    return checkpoint(sentinel / "run" / "checkpoints" / "best.pt")


def predictions_written(tmp: Path, sentinel: Path) -> None:
    header, *lines = (tmp / "predictions.tsv").read_text(encoding="utf-8").splitlines()
    assert header == "path\ttext\tvalue\tconfidence\tchar_confidences"
    assert [line.split("\t")[0] for line in lines] == ["0.png", "1.png", "huge.png"]
    assert lines[2].endswith("\t\t\t0.0000\t")  # the unreadable file's line: no text, confidence 0


def disk_full_at_checkpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    real_save = torch.save

    def save(obj, f, *args, **kwargs):
        if isinstance(obj, dict) and obj.get("format") == "khmer-digits-ocr.checkpoint":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)


CASES: dict[str, Case] = {
    # --- a stored model config is data: crafted `_target_`s, top level and nested, in every reader
    "predict: checkpoint config opens a file": Case(
        predict_with(crafted(top_level_opener)), "model.config._target_ is 'builtins.open', which is not a model "
                                                 "class of this project"),
    "predict: checkpoint config opens a file, nested": Case(
        predict_with(crafted(nested_opener)), "model.config.dropout._target_ names code to run"),
    "evaluate: checkpoint config opens a file": Case(
        evaluate_with(crafted(top_level_opener)), "model.config._target_ is 'builtins.open'"),
    "evaluate: checkpoint config opens a file, nested": Case(
        evaluate_with(crafted(nested_opener)), "model.config.dropout._target_ names code to run"),
    "export: checkpoint config opens a file": Case(
        export_with(crafted(top_level_opener)), "model.config._target_ is 'builtins.open'"),
    "export: checkpoint config opens a file, nested": Case(
        export_with(crafted(nested_opener)), "model.config.dropout._target_ names code to run"),
    "predict: ONNX sidecar config opens a file": Case(
        predict_with(lambda tmp, sentinel: sidecar_model(tmp, top_level_opener(sentinel))),
        "model.config._target_ is 'builtins.open'"),
    "predict: ONNX sidecar config opens a file, nested": Case(
        predict_with(lambda tmp, sentinel: sidecar_model(tmp, nested_opener(sentinel))),
        "model.config.dropout._target_ names code to run"),
    "predict: checkpoint config with an interpolation": Case(
        predict_with(crafted(lambda s: {**good_config(), "hidden_size": "${oc.env:HOME}"})),
        "model.config.hidden_size holds an interpolation"),
    "predict: checkpoint config with an unknown option": Case(
        predict_with(crafted(lambda s: {**good_config(), "exec": "print(1)"})),
        "model.config does not fit CTCModelConfig (Key 'exec' not in 'CTCModelConfig')"),
    "predict: checkpoint config asks for a huge model": Case(
        predict_with(crafted(lambda s: {**good_config(), "hidden_size": 10**9})),
        "hidden_size must be an even number in 2..4096, got 1000000000"),
    "predict: checkpoint config with a wrong type": Case(
        predict_with(crafted(lambda s: {**good_config(), "rnn_layers": "many"})),
        "model.config does not fit CTCModelConfig"),
    "predict: checkpoint preprocess size is not a number": Case(
        predict_with(lambda tmp, s: checkpoint(tmp / "model.pt", preprocess={"height": "32", "width": 128})),
        "preprocess.height must be an integer in 16..256, got '32'"),
    "predict: checkpoint without weights": Case(
        predict_with(lambda tmp, s: checkpoint(tmp / "model.pt", state_dict=["weights"])), "has no state_dict"),
    "predict: checkpoint charset is not a list": Case(
        predict_with(lambda tmp, s: checkpoint(tmp / "model.pt", charset=7)), "was trained with a different charset"),
    "predict: checkpoint format_version is not a number": Case(
        predict_with(lambda tmp, s: checkpoint(tmp / "model.pt", format_version="1; rm -rf ~")),
        "has format_version '1; rm -rf ~', not a number"),
    "predict: checkpoint model entry is not a mapping": Case(
        predict_with(lambda tmp, s: checkpoint(tmp / "model.pt", model=["builtins.open"])),
        "`model` must hold a name, a head (attention or ctc) and a config mapping"),
    "predict: TorchScript archive as the checkpoint": Case(
        predict_with(lambda tmp, s: torchscript_archive(tmp / "model.pt")),
        "is a TorchScript archive (python -m runner.export format=torchscript). Such archives carry code"),
    "predict: pickled code in the checkpoint": Case(
        predict_with(lambda tmp, s: pickled_code(tmp / "model.pt", s / "code-ran")),
        "was refused by the safe loader"),
    "predict: ONNX file without metadata": Case(
        predict_with(lambda tmp, s: (tmp / "model.onnx").write_bytes(b"\x08\x07") and tmp / "model.onnx"),
        "has no model.onnx.json beside it and no 'khmer_digits_ocr' metadata inside"),
    "train: resume from a checkpoint with a crafted config": Case(
        train_with(data=lambda tmp, s: [*folder_data()(tmp, s), "resume=" + str(
            checkpoint(tmp / "model.pt", config=top_level_opener(s), training_state={}))]),
        "was written for model 'ctc_small' with a different configuration"),
    "train: resume from a checkpoint with a damaged training state": Case(
        train_with(data=lambda tmp, s: [*folder_data()(tmp, s),
                                        f"resume={checkpoint(tmp / 'model.pt', training_state=['optimizer'])}"]),
        "holds a damaged training state (TypeError: training_state is a list, not a mapping)"),
    "evaluate: metadata.yaml with a Python tag": Case(
        lambda tmp, s: ("runner.evaluate", [f"checkpoint={good_checkpoint(tmp, s)}",
                                            f"metadata={_python_tag_metadata(tmp, s)}"]),
        "is not valid YAML"),
    # --- outputs: complete or not at all, never over data by accident
    "predict: output is an existing file": Case(
        predict_with(good_checkpoint, "output={sentinel}/" + VICTIM), "already exists; nothing was written"),
    "predict: output is one of its input images": Case(
        predict_with(good_checkpoint, "output={sentinel}/scans/1.png"), "is also one of the inputs of this run"),
    "predict: output is a folder": Case(predict_with(good_checkpoint, "output={sentinel}/scans"), "is a folder"),
    "predict: output is its own checkpoint, even with overwrite": Case(
        predict_with(good_checkpoint, "output={sentinel}/run/checkpoints/best.pt", "overwrite=true"),
        "is the file this command reads"),
    "export: output is the source checkpoint, even with overwrite": Case(
        export_with(good_checkpoint, "output={sentinel}/run/checkpoints/best.pt", "overwrite=true"),
        "is the file this command reads"),
    "export: output is an existing file": Case(
        export_with(good_checkpoint, "output={sentinel}/" + VICTIM), "already exists; nothing was written"),
    "export: output is a folder": Case(export_with(good_checkpoint, "output={sentinel}"), "is a folder"),
    "predict: a decompression bomb among the inputs is skipped": Case(
        lambda tmp, s: ("runner.predict", [f"checkpoint={good_checkpoint(tmp, s)}",
                                           f"inputs={_inputs_with_bomb(tmp)}", f"output={tmp}/predictions.tsv"]),
        "1 of 3 input files could not be read as images (huge.png)", code=1, check=predictions_written),
    "predict: a dangling symlink among the inputs is skipped": Case(
        lambda tmp, s: ("runner.predict", [f"checkpoint={good_checkpoint(tmp, s)}",
                                           f"inputs={_inputs_with_dangling_link(tmp)}"]),
        "skipping", code=0),
    # --- a refused run writes nothing into the dir it refuses
    "train: fresh run in a finished run's dir": Case(
        train_with(data=lambda tmp, s: [f"hydra.run.dir={finished_run(s / 'finished')}", *folder_data()(tmp, s)]),
        "already holds a run (its checkpoint", check=lambda tmp, s: finished_run_untouched(s / "finished")),
    # --- checks made before any work starts
    "train: unknown key added with +": Case(train_with("+trainer.max_epoch=3"),
                                            "did you mean trainer.max_epochs?"),
    "train: unknown monitored metric": Case(train_with("trainer.monitor=val/bogus"),
                                            "trainer.monitor must be one of"),
    "train: CTC width too narrow": Case(train_with("data.image_width=64"), "which gives 16 CTC time steps"),
    "train: absurd label length": Case(train_with("data.max_length=100000"),
                                       "data.max_length must be <= 32 characters, got 100000"),
    "train: absurd dataset size": Case(train_with("data.train_size=1000000000"),
                                       "data.train_size must be <= 10,000,000"),
    # --- data files
    "train: labels.tsv is not UTF-8": Case(
        train_with(data=folder_data([b"0.png\t\xe1\x9f\xa0", b"1.png\t\xe1\x9f\xa1", b"2.png\t\xff\xfe"])),
        "labels.tsv:3: the line is not UTF-8 text (byte 0xff at column 7)"),
    "train: label path outside data.dir": Case(
        train_with(data=folder_data([f"0.png\t{DIGITS[0]}".encode(), f"../{VICTIM}\t{DIGITS[1]}".encode()])),
        f"labels.tsv:2: image '../{VICTIM}' lies outside"),
    "train: duplicate label lines": Case(
        train_with(data=folder_data([f"{i}.png\t{DIGITS[i]}".encode() for i in (0, 1, 2, 1)])),
        "labels.tsv:4: 1.png is already listed on line 2"),
    "train: decompression bomb in the training images": Case(
        train_with(data=lambda tmp, s: [*folder_data()(tmp, s), _bomb_in(s / "images", "3.png")]),
        "could be decompression bomb DOS attack"),
    "train: metadata.yaml lists fewer samples than its counts": Case(
        train_with(data=lambda tmp, s: [f"data.dir={generated_folder(s / 'dataset', counts={'train': 5, 'val': 2})}"]),
        "split 'train' lists 3 samples but dataset_info.counts says 5"),
    "train: metadata.yaml names a file outside its folder": Case(
        train_with(data=lambda tmp, s: [f"data.dir={generated_folder(s / 'dataset', image='../' + VICTIM)}"]),
        f"image '../{VICTIM}' lies outside"),
    "train: corrupted cache metadata.yaml": Case(
        train_with(data=lambda tmp, s: _broken_cache(s)), "is this run's dataset cache: delete that folder"),
    "train: disk full while saving a checkpoint": Case(
        train_with(data=folder_data()), "no space left on the device while writing", patch=disk_full_at_checkpoint),
}


def _python_tag_metadata(tmp: Path, sentinel: Path) -> Path:
    path = tmp / "dataset" / "metadata.yaml"
    path.parent.mkdir()
    path.write_text(f"train: !!python/object/apply:os.system ['touch {sentinel / 'code-ran'}']\n")
    return path


def _inputs_with_bomb(tmp: Path) -> Path:
    folder = image_folder(tmp / "inputs", 2)
    bomb_png(folder / "huge.png")
    return folder


def _inputs_with_dangling_link(tmp: Path) -> Path:
    folder = image_folder(tmp / "inputs", 2)
    (folder / "gone.png").symlink_to(tmp / "deleted.png")
    return folder


def _bomb_in(folder: Path, name: str) -> str:
    bomb_png(folder / name)
    return "data.cache_in_memory=true"


def _broken_cache(sentinel: Path) -> list[str]:
    overrides = ["data.train_size=8", "data.val_size=4", "data.hard_val_size=0", f"data.cache_dir={sentinel / 'cache'}"]
    cache_with_broken_metadata(sentinel / "cache", overrides)
    return overrides


def finished_run_untouched(run_dir: Path) -> None:
    assert sorted(p.name for p in run_dir.iterdir()) == [".hydra", "checkpoints", "job_status.json", "train.log"]
    assert (run_dir / ".hydra" / "overrides.yaml").read_text() == "- seed=1\n"
    assert (run_dir / "train.log").read_text() == "[epoch 1] done\n"
    assert json.loads((run_dir / "job_status.json").read_text())["status"] == "completed"


# --------------------------------------------------------------------------- the test
def sentinel_state(folder: Path) -> dict[str, Optional[str]]:
    """Every path under `folder` (folders too), with its file's sha256."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else None
            for p in sorted(folder.rglob("*"))}


@pytest.mark.parametrize("name", list(CASES))
def test_crafted_file_is_refused_with_one_paragraph_and_nothing_is_lost(name, tmp_path, run_entry, monkeypatch):
    case = CASES[name]
    sentinel = tmp_path / "sentinel"
    sentinel.mkdir()
    (sentinel / VICTIM).write_text("the user's own words\n")
    png(sentinel / "photo.png")
    monkeypatch.setenv("KHMER_OCR_OUTPUTS", str(tmp_path / "outputs"))
    if case.patch:
        case.patch(monkeypatch)
    module, overrides = case.build(tmp_path, sentinel)
    overrides = [item.replace("{sentinel}", str(sentinel)) for item in overrides]
    before = sentinel_state(sentinel)

    code, stdout, stderr = run_entry(module, *overrides)

    assert code == case.code, stderr[-3000:]
    shown = " ".join((stderr + stdout).split())
    assert case.message in shown, stderr[-3000:]
    assert "Traceback" not in stderr
    if code == 2:  # a refusal: exactly one paragraph, naming its kind
        assert stderr.startswith("error (") and len(stderr.strip().split("\n\n")) == 1, stderr
    assert sentinel_state(sentinel) == before, "a file of the user's was changed, added or removed"
    assert (sentinel / VICTIM).read_text() == "the user's own words\n"
    assert not (sentinel / "code-ran").exists()
    if case.check:
        case.check(tmp_path, sentinel)


def test_summary_reads_crafted_sweep_records_as_plain_data(tmp_path, capsys, monkeypatch):
    from runner.summarize import main

    monkeypatch.setenv("HOME", "/the/home/value")
    sweep = sweep_with_crafted_records(tmp_path / "sweep")
    assert main([str(sweep)]) == 0
    summary = capsys.readouterr().out
    assert "seed=${oc.env:HOME}" in summary and "/the/home/value" not in summary  # nothing resolved
    assert "| 0/ |" in summary and "| 1/ |" in summary  # both jobs are rows
