import os
import pickle

import pytest
import torch

from runner.calibration import Calibration
from runner.charset import CHARSETS
from runner.errors import CheckpointError
from runner.inference.predictors import load_predictor
from runner.models import create_model
from runner.outputs import DiskFull
from runner.stored import FORMAT_VERSION
from runner.training.checkpoint import (CheckpointManager, atomic_save, build_checkpoint, checkpoints_dir,
                                        load_checkpoint, load_model, resolve_checkpoint_path, run_checkpoint)


def _payload(model, epoch=1, training_state=None):
    return build_checkpoint(model=model, epoch=epoch, global_step=10 * epoch, metrics={"val/seq_accuracy": 0.5},
                            config_yaml="seed: 1\n", preprocess={"height": 32, "width": 128},
                            training_state=training_state, commit="abc")


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return create_model("ctc_small")


def test_round_trip_is_self_contained_and_weights_only(model, tmp_path):
    path = tmp_path / "ck.pt"
    atomic_save(_payload(model, training_state={"optimizer": {"state": {}, "param_groups": []}}), path)
    raw = torch.load(path, weights_only=True)
    assert raw["charset"]["tokens"][4] == "០" and raw["format_version"] == FORMAT_VERSION
    assert raw["preprocess"] == {"height": 32, "width": 128, "bucketing": False, "text_crop": False}
    loaded, payload = load_model(path)
    assert payload["model"]["name"] == "ctc_small" and payload["git_commit"] == "abc"
    images = torch.rand(3, 1, 32, 128)
    assert torch.allclose(loaded(images), model.eval()(images))


@pytest.mark.parametrize("version", [0, 1, 2])
def test_an_older_checkpoint_is_upgraded_on_load_to_the_current_layout(model, tmp_path, version):
    payload = _payload(model)
    payload["format_version"] = version
    del payload["calibration"]  # v3 added it; older models read with their raw confidences
    payload["preprocess"] = {"height": 32, "width": 128, "bucketing": True, "text_crop": True}
    if version < 2:  # v0 and v1 called width bucketing `crop`
        payload["preprocess"]["crop"] = payload["preprocess"].pop("bucketing")
    if version == 0:  # before versioning: no format_version, no charset (the ten Khmer digits)
        del payload["format_version"], payload["charset"]
    atomic_save(payload, tmp_path / "old.pt")
    loaded = load_checkpoint(tmp_path / "old.pt")
    assert loaded["format_version"] == FORMAT_VERSION and loaded["charset"] == CHARSETS["digits"].signature()
    assert loaded["preprocess"] == {"height": 32, "width": 128, "bucketing": True, "text_crop": True}
    assert loaded["calibration"] is None
    predictor = load_predictor(tmp_path / "old.pt")
    assert predictor.bucketing and predictor.calibration.identity


def test_a_stored_calibration_maps_the_confidences_predict_returns(model, tmp_path):
    payload = _payload(model)
    atomic_save(payload, tmp_path / "raw.pt")
    atomic_save({**payload, "calibration": {"method": "platt", "a": 2.0, "b": 0.5}}, tmp_path / "calibrated.pt")
    images = torch.rand(4, 1, 32, 128)
    raw_texts, raw, _ = load_predictor(tmp_path / "raw.pt").predict(images)
    texts, calibrated, _ = load_predictor(tmp_path / "calibrated.pt").predict(images)
    assert texts == raw_texts and calibrated == pytest.approx(Calibration(2.0, 0.5).apply(raw))


def test_a_newer_checkpoint_format_is_refused_naming_both_versions(model, tmp_path):
    payload = _payload(model)
    payload["format_version"] = FORMAT_VERSION + 1
    atomic_save(payload, tmp_path / "new.pt")
    with pytest.raises(CheckpointError, match=f"format v{FORMAT_VERSION + 1}, newer than this runner reads "
                                              f"\\(v{FORMAT_VERSION}\\)"):
        load_checkpoint(tmp_path / "new.pt")


def test_run_dir_resolves_to_best(model, tmp_path):
    manager = CheckpointManager(tmp_path / "checkpoints")
    manager.save(_payload(model), epoch=1, is_best=True)
    _, payload = load_model(tmp_path)
    assert payload["training_state"] is None  # best.pt is inference-only


def test_one_layout_names_a_run_dirs_checkpoints(tmp_path):
    assert run_checkpoint(tmp_path) == tmp_path / "checkpoints" / "best.pt"
    assert run_checkpoint(tmp_path, "last") == checkpoints_dir(tmp_path) / "last.pt"
    manager = CheckpointManager(checkpoints_dir(tmp_path))
    assert (manager.best_path, manager.last_path) == (run_checkpoint(tmp_path, "best"), run_checkpoint(tmp_path, "last"))
    with pytest.raises(ValueError, match="which must be one of"):
        run_checkpoint(tmp_path, "epoch_001")


def test_a_run_dir_resolves_to_best_else_last_and_says_what_it_lacks(tmp_path):
    with pytest.raises(CheckpointError, match="without checkpoints/best.pt or checkpoints/last.pt; point at a run dir "
                                              "that finished at least one epoch"):
        resolve_checkpoint_path(tmp_path)
    with pytest.raises(CheckpointError, match="does not exist; pass a .pt file or a run dir"):
        resolve_checkpoint_path(tmp_path / "nope.pt")
    last = run_checkpoint(tmp_path, "last")
    last.parent.mkdir()
    last.write_bytes(b"")
    assert resolve_checkpoint_path(tmp_path) == last
    assert resolve_checkpoint_path(last.parent) == last  # the checkpoints folder itself
    run_checkpoint(tmp_path, "best").write_bytes(b"")
    assert resolve_checkpoint_path(tmp_path) == run_checkpoint(tmp_path, "best")
    assert resolve_checkpoint_path(tmp_path, prefer=("last",)) == last


def test_manager_keeps_last_best_and_n_snapshots(model, tmp_path):
    manager = CheckpointManager(tmp_path, keep_n=2, every_n_epochs=2)
    for epoch in range(1, 8):
        manager.save(_payload(model, epoch), epoch=epoch, is_best=epoch == 3)
    assert [p.name for p in manager.snapshots()] == ["epoch_004.pt", "epoch_006.pt"]
    assert load_checkpoint(manager.best_path)["epoch"] == 3
    assert load_checkpoint(manager.last_path)["epoch"] == 7
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_failed_save_leaves_previous_file_intact(model, tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    atomic_save(_payload(model, 1), path)

    def disk_full(*_args, **_kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(DiskFull, match=f"no space left on the device while writing {path}; nothing was replaced"):
        atomic_save(_payload(model, 2), path)
    monkeypatch.undo()
    assert load_checkpoint(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_truncated_file_is_a_clear_error(model, tmp_path):
    path = tmp_path / "ck.pt"
    atomic_save(_payload(model), path)
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="truncated or not a torch file"):
        load_checkpoint(path)


def test_not_a_checkpoint(tmp_path):
    torch.save({"weight": torch.zeros(2)}, tmp_path / "state.pt")
    with pytest.raises(CheckpointError, match="not a khmer-digits-ocr checkpoint"):
        load_checkpoint(tmp_path / "state.pt")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "notes.txt")


class _Exploit:
    def __reduce__(self):
        return (os.system, (f"touch {_Exploit.marker}",))


def test_crafted_pickle_is_refused_and_does_not_run(tmp_path):
    marker = tmp_path / "pwned"
    _Exploit.marker = marker
    path = tmp_path / "evil.pt"
    torch.save({"format": "khmer-digits-ocr.checkpoint", "payload": _Exploit()}, path, pickle_module=pickle)
    with pytest.raises(CheckpointError, match="refused by the safe loader"):
        load_checkpoint(path)
    assert not marker.exists()


def test_other_charset_and_other_model(model, tmp_path):
    payload = _payload(model)
    payload["charset"] = {"tokens": ["<pad>", "a", "b"]}
    torch.save(payload, tmp_path / "charset.pt")
    with pytest.raises(CheckpointError, match="different charset"):
        load_checkpoint(tmp_path / "charset.pt")
    payload = _payload(model)
    other = create_model("small")
    payload["model"] = {"name": other.name, "head": other.head, "config": other.config_dict()}
    torch.save(payload, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="weights do not fit"):
        load_model(tmp_path / "other.pt")


def test_a_model_trained_with_the_numbers_charset_saves_and_reloads_with_it(tmp_path):
    from runner.errors import ConfigError
    from runner.training import OCRTrainer
    from runner.training.checkpoint import load_model
    from training.helpers import synthetic_batches, trainer_config

    numbers = CHARSETS["numbers"]
    torch.manual_seed(0)
    batches = synthetic_batches(2, seed=0, charset="numbers"), synthetic_batches(1, seed=1, charset="numbers")
    assert any(char not in CHARSETS["digits"].chars for batch in batches[0] for text in batch["texts"] for char in text)
    trainer = OCRTrainer(create_model("ctc_small", charset="numbers"), *batches,
                         trainer_config("charset=numbers", "trainer.max_epochs=1"), "cpu", output_dir=tmp_path / "run")
    assert trainer.metrics.chars == numbers.chars and trainer.metrics.confusion.shape == (31, 31)
    trainer.train()
    best = tmp_path / "run" / "checkpoints" / "best.pt"
    assert load_checkpoint(best)["charset"] == numbers.signature()
    model, _ = load_model(best)
    assert model.charset is numbers and model.classifier[-1].out_features == numbers.vocab_size
    assert load_predictor(best).charset is numbers
    with pytest.raises(ConfigError, match=r"the model reads charset 'digits' \(.*\) but the run config sets charset=numbers"):
        OCRTrainer(create_model("ctc_small"), *batches, trainer_config("charset=numbers"), "cpu",
                   output_dir=tmp_path / "other")
    digits_run = OCRTrainer(create_model("ctc_small"), *batches[:1], synthetic_batches(1), trainer_config(
        f"resume={tmp_path / 'run' / 'checkpoints' / 'last.pt'}"), "cpu", output_dir=tmp_path / "resumed")
    with pytest.raises(CheckpointError, match=r"last.pt was trained with charset 'numbers'.*resume with charset=numbers"):
        digits_run.train()
