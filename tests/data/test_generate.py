import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from runner.charset import CHARSETS
from runner.data import generate as generate_module
from runner.data.config import CONF_DIR, AugmentConfig, DataConfig, augment_preset, register_data_configs
from runner.data.datasets import KhmerDigitsDataset
from runner.data.generate import (SplitPlan, data_fonts, ensure_generated_dataset, plan_splits, read_metadata,
                                  remove_abandoned_folders, write_dataset)
from runner.data.render import render_sample, sample_key
from runner.data.preprocess import load_image
from runner.errors import ConfigError

DIGITS_CHARSET = CHARSETS["digits"]

REPO = Path(__file__).resolve().parents[1]
SMALL = dict(train_size=10, val_size=4, hard_val_size=3)


def files_and_metadata(metadata_path: Path) -> dict[str, bytes]:
    root = metadata_path.parent
    return {str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


def test_same_seed_gives_the_same_bytes_whatever_the_worker_count(tmp_path):
    cfg = DataConfig(**SMALL)
    one = write_dataset(cfg, 11, tmp_path / "one", workers=1, progress=False)
    two = write_dataset(cfg, 11, tmp_path / "two", workers=2, progress=False)
    other = write_dataset(cfg, 12, tmp_path / "other", workers=1, progress=False)
    assert files_and_metadata(one) == files_and_metadata(two)
    changed = files_and_metadata(other)
    assert changed.keys() == files_and_metadata(one).keys()
    assert changed["train/000000.png"] != files_and_metadata(one)["train/000000.png"]


def test_metadata_labels_are_the_rendered_texts_and_round_trip(tiny_dataset):
    metadata = read_metadata(tiny_dataset)
    assert metadata == yaml.safe_load(tiny_dataset.read_text(encoding="utf-8")), "fast reader == any YAML reader"
    info = metadata["dataset_info"]
    assert info["seed"] == 5 and info["counts"]["train"] == 24 and info["fonts"]
    dataset = KhmerDigitsDataset(tiny_dataset, "train")
    for record, text in zip(metadata["train"], dataset.texts):
        assert record["label"] == text and DIGITS_CHARSET.decode(DIGITS_CHARSET.encode(text)) == text
        assert 1 <= len(text) <= 8 and record["font"] and "augment" in record
        assert load_image(tiny_dataset.parent / record["image"]).mode == "L"


@pytest.mark.parametrize("fraction", [0.0, 0.25, 0.3, 0.5, 1.0])
def test_the_hard_share_of_training_is_exact_and_evenly_spread(fraction):
    plan = SplitPlan("train", 40, [], AugmentConfig(), augment_preset("heavy"), fraction)
    hard = [plan.is_hard(index) for index in range(40)]
    assert sum(hard) == round(40 * fraction)
    assert abs(sum(hard[:10]) - 10 * fraction) < 1, "every stretch of the split has the same mix"
    assert [plan.augment_for(i) is plan.hard_augment for i in range(40)] == hard


def test_training_mixes_hard_samples_and_validation_stays_clean(tiny_dataset):
    metadata = read_metadata(tiny_dataset)
    fraction = metadata["dataset_info"]["settings"]["train_hard_fraction"]
    hard = [index for index, record in enumerate(metadata["train"]) if record.get("hard")]
    assert fraction == DataConfig().train_hard_fraction > 0
    assert len(hard) == round(len(metadata["train"]) * fraction)
    assert not any(record.get("hard") for record in metadata["val"])
    # Each sample's recorded drawing is what its preset draws from its key: heavy for the hard share.
    cfg = DataConfig(train_size=24, val_size=8, hard_val_size=6)  # the tiny_dataset settings
    train_fonts = plan_splits(cfg, data_fonts(cfg))[0].fonts
    for index, record in enumerate(metadata["train"]):
        preset = augment_preset("heavy") if index in hard else AugmentConfig()
        _, spec = render_sample(sample_key(5, "train", index), train_fonts, preset, cfg.min_length, cfg.max_length)
        assert {key: value for key, value in record.items() if key not in ("image", "label", "hard")} == \
            json.loads(json.dumps(spec.record(), ensure_ascii=False))


def test_unseen_font_split_uses_only_held_out_families(tiny_dataset):
    metadata = read_metadata(tiny_dataset)
    held_out = set(metadata["dataset_info"]["settings"]["held_out_fonts"])
    if "val_unseen_fonts" not in metadata:
        pytest.skip("the held-out families are not installed here")
    for split in ("val_unseen_fonts", "val_hard_unseen_fonts"):
        assert {record["font"] for record in metadata[split]} <= held_out
    for split in ("train", "val", "val_hard"):
        assert not {record["font"] for record in metadata[split]} & held_out


def test_cached_dataset_is_generated_once_and_reused(tmp_path, monkeypatch):
    cfg = DataConfig(cache_dir=str(tmp_path), generate_workers=1, **SMALL)
    first = ensure_generated_dataset(cfg, seed=3, progress=False)
    monkeypatch.setattr(generate_module, "generate_dataset", lambda *a, **k: pytest.fail("regenerated"))
    assert ensure_generated_dataset(cfg, seed=3, progress=False) == first
    assert [p.name for p in tmp_path.iterdir()] == [first.parent.name], "no temporary folders left"
    cfg.augment.rotation = 1.0  # other settings -> another cache entry
    with pytest.raises(pytest.fail.Exception, match="regenerated"):
        ensure_generated_dataset(cfg, seed=3, progress=False)


def test_crashed_generation_leaves_no_dataset(tmp_path, monkeypatch):
    def crash(cfg, seed, out_dir, *args, **kwargs):
        Path(out_dir, "train").mkdir(parents=True)
        raise KeyboardInterrupt

    monkeypatch.setattr(generate_module, "generate_dataset", crash)
    with pytest.raises(KeyboardInterrupt):
        ensure_generated_dataset(DataConfig(cache_dir=str(tmp_path), **SMALL), seed=3, progress=False)
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def hydra_conf():
    register_data_configs(ConfigStore.instance())
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        yield
    GlobalHydra.instance().clear()


@pytest.mark.parametrize("preset", ["none", "light", "heavy"])
def test_augment_presets_compose_at_data_augment(hydra_conf, preset):
    cfg = compose("generate", overrides=[f"data/augment={preset}"])
    assert OmegaConf.to_object(cfg.data.augment) == augment_preset(preset)
    assert OmegaConf.to_object(cfg.data.hard_augment) == augment_preset("heavy")


def test_presets_differ_and_defaults_are_light():
    assert augment_preset("light") == AugmentConfig()
    assert augment_preset("none").rotation_p == 0 < AugmentConfig().rotation_p < augment_preset("heavy").rotation_p


def test_folder_preset_without_dir_names_the_key(hydra_conf):
    cfg = compose("generate", overrides=["data=folder"])
    with pytest.raises(ConfigError, match="data.dir is required"):
        OmegaConf.to_object(cfg.data).validate()


@pytest.mark.parametrize("key, value, message", [
    ("batch_size", 0, "data.batch_size must be > 0, got 0"),
    ("kind", "disk", "data.kind must be one of"),
    ("min_length", 9, "data.min_length must be <= data.max_length"),
    ("val_fraction", 1.5, "data.val_fraction must lie in"),
    ("train_hard_fraction", -0.1, "data.train_hard_fraction must be a share in"),
])
def test_bad_data_values_name_the_key(key, value, message):
    with pytest.raises(ConfigError, match=message):
        DataConfig(**{key: value}).validate()


def test_bad_augment_values_name_the_key():
    with pytest.raises(ConfigError, match="data.augment.blur_p must be a probability"):
        DataConfig(augment=AugmentConfig(blur_p=2.0)).validate()
    with pytest.raises(ConfigError, match="data.augment.font_size must have min <= max"):
        DataConfig(augment=AugmentConfig(font_size=[40.0, 20.0])).validate()
    with pytest.raises(ConfigError, match="data.hard_augment.background has unknown kinds"):
        DataConfig(hard_augment=AugmentConfig(background={"marble": 1.0})).validate()


def test_generate_entry_point_writes_a_dataset(tmp_path):
    out = tmp_path / "gen"
    args = [sys.executable, "-m", "runner.generate", f"data.dir={out}", "data.train_size=6", "data.val_size=2",
            "data.hard_val_size=0", "seed=9", f"hydra.run.dir={tmp_path / 'run'}"]
    subprocess.run(args, cwd=REPO, check=True, capture_output=True, text=True)
    metadata = yaml.safe_load((out / "metadata.yaml").read_text(encoding="utf-8"))
    assert metadata["dataset_info"]["seed"] == 9
    assert [len(metadata[split]) for split in ("train", "val")] == [6, 2]
    again = subprocess.run(args, cwd=REPO, capture_output=True, text=True)
    assert again.returncode == 2 and "overwrite=true" in again.stderr


def test_cache_dir_defaults_to_the_env_variable_relative_to_the_start_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("KHMER_OCR_CACHE", "my_cache")
    monkeypatch.chdir(tmp_path)
    cfg = DataConfig(use_system_fonts=False, held_out_fonts=[], generate_workers=1, **SMALL)
    metadata = ensure_generated_dataset(cfg, seed=1, progress=False)
    assert metadata.parent.parent == tmp_path / "my_cache"


@pytest.mark.parametrize("preset, overrides", [(None, []), ("none", []),
                                               (None, ["data.formats={digits:0,date:1}", "data.max_length=10"])])
def test_sample_grid_shows_the_training_mix_or_one_preset(tmp_path, preset, overrides):
    from PIL import Image

    from runner.data.samples import main as samples_main

    out = tmp_path / "grid.png"
    samples_main(["--count", "4", "--out", str(out), *(["--preset", preset] if preset else []), *overrides])
    with Image.open(out) as grid:
        assert grid.mode == "RGB" and grid.width > grid.height > 0


def test_with_one_family_the_unseen_splits_hold_out_a_region_of_its_width_axis():
    cfg = DataConfig(use_system_fonts=False, **SMALL)  # the pip Noto Sans Khmer (variable) alone
    fonts = data_fonts(cfg)
    with pytest.warns(UserWarning, match=r"holds out the most condensed widths \(wdth 62.5-70.5\).*a weak estimate"):
        plans = {plan.name: plan for plan in plan_splits(cfg, fonts)}
    assert set(plans) == {"train", "val", "val_hard", "val_unseen_fonts", "val_hard_unseen_fonts"}
    for name in ("val_unseen_fonts", "val_hard_unseen_fonts"):
        assert plans[name].augment.font_width == [62.5, 70.5]
    for name in ("train", "val", "val_hard"):
        assert min(plans[name].augment_for(i).font_width[0] for i in range(10)) >= 73.5
    key = sample_key(1, "val_hard_unseen_fonts", 0)
    _, spec = render_sample(key, plans["val_hard_unseen_fonts"].fonts, plans["val_hard_unseen_fonts"].augment, 1, 8)
    assert 62.5 <= spec.record()["variation"]["wdth"] <= 70.5


def test_folders_of_killed_generations_are_removed_once_their_process_is_gone(tmp_path):
    ended = subprocess.Popen(["true"])
    ended.wait()  # reaped: its PID now names no process
    dead = tmp_path / f".khmer-digits-0123456789abcdef.tmp-{ended.pid}"
    live = tmp_path / f".khmer-digits-fedcba9876543210.tmp-{os.getpid()}"
    other = tmp_path / ".notes.tmp-1"
    for folder in (dead, live, other):
        (folder / "train").mkdir(parents=True)
    assert remove_abandoned_folders(tmp_path, ".khmer-digits-") == [dead]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, other.name])


def test_record_groups_name_the_font_and_every_degradation_a_record_shows():
    from runner.data.generate import record_groups

    record = {"font": "Khmer OS", "augment": {"padding": [0.1] * 4, "background": "paper", "blur_radius": 0.4,
                                              "ink_colour": [9, 9, 9]}, "hard": True}
    assert record_groups(record) == {"font": ["Khmer OS"], "degradation": ["blur", "paper background", "heavy augment"],
                                     "format": ["digits"]}  # a generated record without format is a digits one
    assert record_groups({"font": "Khmer OS", "augment": {"background": "solid"}})["degradation"] == ["none"]
    assert record_groups({"font": "Khmer OS", "augment": {}, "format": "price"})["format"] == ["price"]
    assert record_groups({"label": "១២"})["format"] == []
    assert record_groups("not a record") == {"font": [], "degradation": [], "format": []}  # odd entries are skipped


def test_the_default_mix_keeps_the_cache_key_and_another_mix_changes_it():
    fonts = data_fonts(DataConfig())
    default = generate_module.dataset_cache_key(DataConfig(), 1, fonts)
    assert "formats" not in generate_module.generator_settings(DataConfig()), "datasets made before formats keep their key"
    assert "ascii_digits" not in generate_module.generator_settings(DataConfig())
    same = DataConfig(formats={"digits": 2.0, "price": 0.0})
    assert generate_module.dataset_cache_key(same, 1, fonts) == default
    for other in (DataConfig(formats={"digits": 1.0, "price": 1.0}), DataConfig(ascii_digits=0.1)):
        assert generate_module.dataset_cache_key(other, 1, fonts) != default


def test_a_dataset_of_number_formats_records_each_sample_s_format(tmp_path):
    cfg = DataConfig(train_size=16, val_size=4, hard_val_size=0, max_length=16, use_system_fonts=False,
                     formats={"digits": 1.0, "date": 1.0, "phone": 1.0}, ascii_digits=0.25)
    metadata = read_metadata(write_dataset(cfg, 2, tmp_path / "numbers", workers=1, progress=False))
    assert metadata["dataset_info"]["settings"]["formats"] == {"digits": 1 / 3, "date": 1 / 3, "phone": 1 / 3}
    assert metadata["dataset_info"]["settings"]["ascii_digits"] == 0.25
    records = metadata["train"] + metadata["val"]
    formats = [generate_module.record_groups(record)["format"][0] for record in records]
    assert set(formats) == {"digits", "date", "phone"}
    for record, text_format in zip(records, formats):
        assert ("/" in record["label"] or "-" in record["label"]) == (text_format == "date")
        assert len(record["label"]) <= 16
