"""`python -m runner.release`: make a shipped model (runner/shipped/) and its model card from a training run.

    make release-model                              # train the default config, then package it
    make release-model ARGS=experiment=numbers      # the same for the numbers charset (numbers.onnx)
    make release-model RUN=outputs/default/...      # package a run that already trained

The run's charset names the file: digits -> default.onnx (MODEL_CARD.md), numbers -> numbers.onnx
(MODEL_CARD.numbers.md).

Packaging: the run's best checkpoint, calibrated on its own validation splits if it has no stored
calibration, is exported to ONNX (with the parity check of `runner.export`), then read on every
validation split of the data it trained on (and by Tesseract 5 on images spread over each split,
where installed), and on a small check dataset generated from a recorded seed, which the test suite
generates again and re-reads to check the card. The card (MODEL_CARD.md, model_card.json) records
the commits, the config, the fonts, these figures, and what the model cannot read.
"""

from __future__ import annotations

from runner.extras import require_train_extra

require_train_extra("python -m runner.release")  # before hydra and torch: a base install gets the pip command, not a traceback

import argparse
import json
import logging
import shutil
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional, Sequence

from omegaconf import OmegaConf

from runner.cli import entry_point
from runner.errors import ConfigError, DataError
from runner.outputs import write_text_atomic
from runner.schema import SHIPPED_MODEL, SHIPPED_MODELS

log = logging.getLogger("runner.release")

SHIPPED_DIR = SHIPPED_MODEL.parent
SPLITS = ("val", "val_hard", "val_unseen_fonts", "val_hard_unseen_fonts")
# the small dataset the card and the test both read: generated again from these settings and seed
CHECK_DATA = {"seed": 20261203, "train_size": 8, "val_size": 100, "hard_val_size": 100}
CHECK_SPLIT = "val_hard_unseen_fonts"
TEXT_KEYS = ("min_length", "max_length", "formats", "ascii_digits")  # of the model's training data, when not default
LIMITS = {
    "digits": (
        "Reads one line of Khmer digits (០-៩) only: no separators, signs, Latin digits or letters (a price "
        "`១២,៥០០៛` or a date `០២/១២/២០២៦` is not read as written; the shipped numbers model reads them).",
        "At most 8 digits per image (data.max_length); longer numbers are cut or misread.",
        "Trained on rendered images of installed Khmer font families; handwriting, and print in families far from "
        "them, read worse (see the unseen-font rows).",
        "One text line per image: crop the number first; a page or a photo of a whole receipt is not read.",
    ),
    "numbers": (
        "Reads one line of a Khmer number: Khmer and ASCII digits and ` ,./-:៛$%+` (prices, decimals, dates, times, "
        "phone numbers, percentages, ids); no letters, no other currency signs (€, ฿), no Khmer words such as "
        "`រៀល` written out.",
        "At most 20 characters per image (data.max_length); longer lines are cut or misread.",
        "Trained on the formats of runner/data/formats.py; a number written another way (a thousands separator "
        "every 4 digits, a date with dots) reads worse. Spaces count: `០១២ ៣៤៥` and `០១២៣៤៥` are different texts.",
        "Trained on rendered images of installed Khmer font families; handwriting, and print in families far from "
        "them, read worse (see the unseen-font rows).",
        "One text line per image: crop the number first; a page or a photo of a whole receipt is not read.",
    ),
}


def card_paths(model: Path) -> tuple[Path, Path]:
    """(MODEL_CARD.md, model_card.json) of a shipped model: the default's plain names, others' with its stem."""
    suffix = "" if model.stem == "default" else f".{model.stem}"
    return model.parent / f"MODEL_CARD{suffix}.md", model.parent / f"model_card{suffix}.json"


def card_charset(config: dict[str, Any]) -> str:
    """The charset a card's training config names (configs from before charsets: digits)."""
    charset = config.get("charset") or {}
    return str(charset.get("name", "digits")) if isinstance(charset, dict) else "digits"


def _train(overrides: Sequence[str]) -> Path:
    """Run `python -m runner` with the default config (plus `overrides`) and return its run dir."""
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d_%H-%M-%S")
    run_dir = Path("outputs") / "release" / stamp
    command = [sys.executable, "-m", "runner", "experiment_name=release", f"hydra.run.dir={run_dir}", *overrides]
    log.info("training: %s", " ".join(command))
    if subprocess.run(command).returncode != 0:
        raise DataError(f"the release training run failed (see {run_dir / 'train.log'}); nothing was packaged.")
    return run_dir


def _require_system_fonts() -> list[str]:
    from runner.data.config import DataConfig
    from runner.data.generate import data_fonts

    families = sorted({font.family for font in data_fonts(DataConfig())})
    if len(families) < 2:
        raise ConfigError(f"the shipped model must be trained with the system Khmer fonts, but only {families} "
                          f"were found. Run `make fonts` (fonts-khmeros and fonts-noto-core) and try again.")
    return families


def _split_readings(predictor: Any, data: Any, seed: int, splits: Sequence[str], metadata: Optional[str] = None
                    ) -> dict[str, Any]:
    from runner.inference.evaluation import evaluation_dataset, read_dataset

    readings = {}
    for split in splits:
        dataset, _ = evaluation_dataset(data, split, seed, metadata, charset=predictor.charset,
                                        model=str(predictor.source))
        readings[split] = (dataset, read_dataset(predictor, dataset, 64, 0, data.max_length))
    return readings


def _calibrated_copy(checkpoint: Path, workdir: Path) -> tuple[Path, dict[str, Any]]:
    """The checkpoint with a calibration: its own, or one fitted now on its validation splits (a copy; the run's
    files are never changed)."""
    from runner.calibration import fit_calibration
    from runner.config import compose_config
    from runner.inference.config import register_inference_configs
    from runner.inference.evaluation import evaluation_data_config, evaluation_seed
    from runner.inference.predictors import load_predictor
    from runner.metrics import ScoredSamples
    from runner.training.checkpoint import store_calibration

    copy = workdir / "release.pt"
    shutil.copyfile(checkpoint, copy)
    predictor = load_predictor(copy)
    if predictor.metadata["calibration"] is not None:
        return copy, predictor.metadata["calibration"]
    register_inference_configs()
    data, _ = evaluation_data_config(compose_config("evaluate", [f"checkpoint={copy}"]).data, predictor, [])
    readings = _split_readings(predictor, data, evaluation_seed(predictor, data), SPLITS)
    pooled = ScoredSamples.joined([samples for _, samples in readings.values()])
    calibration = fit_calibration(pooled.confidences, pooled.correct(), fitted_on=" + ".join(SPLITS))
    store_calibration(copy, calibration)
    return copy, calibration


def _export(checkpoint: Path, output: Path) -> None:
    from runner.config import compose_config
    from runner.export import export
    from runner.inference.config import register_inference_configs

    register_inference_configs()
    export(compose_config("export", [f"checkpoint={checkpoint}", f"output={output}", "overwrite=true"]))


def evaluate_shipped(predictor: Any, data: Any, seed: int, tesseract_images: int) -> list[dict[str, Any]]:
    from runner.tesseract import tesseract_command, tesseract_read

    command = tesseract_command()
    rows = []
    for split, (_, samples) in _split_readings(predictor, data, seed, SPLITS).items():
        metrics = samples.scored(0, predictor.charset).compute()
        row = {"split": split, "images": int(metrics["count"]), "seq_accuracy": round(metrics["seq_accuracy"], 4),
               "cer": round(metrics["cer"], 4), "tesseract": None}
        count = min(tesseract_images, len(samples.targets))
        # the samples are in reading order (width-sorted batches): an even spread over it covers every width
        picks = sorted({round(i * (len(samples.targets) - 1) / max(count - 1, 1)) for i in range(count)})
        count = len(picks)
        files = [Path(samples.paths[i]) for i in picks]
        read = tesseract_read(command, files, predictor.charset) if command and count else None
        if read is not None:
            truths = [samples.targets[i] for i in picks]
            model_right = sum(samples.predictions[i] == samples.targets[i] for i in picks)
            tesseract_right = sum(text == truth for text, truth in zip(read, truths))
            row["tesseract"] = {"images": count, "seq_accuracy": round(tesseract_right / count, 4),
                                "model_seq_accuracy": round(model_right / count, 4)}
        rows.append(row)
    return rows


def check_figures(model: Path, workdir: Path) -> dict[str, Any]:
    """The shipped model on CHECK_SPLIT of a small dataset generated from CHECK_DATA and the model's own augment
    presets (what the test re-reads)."""
    from runner.data.config import DataConfig, as_data_config
    from runner.data.generate import write_dataset
    from runner.inference.evaluation import evaluation_dataset, read_dataset
    from runner.inference.predictors import load_predictor

    predictor = load_predictor(model)
    settings = {key: value for key, value in CHECK_DATA.items() if key != "seed"}
    trained = predictor.training.get("data") or {}
    defaults = DataConfig()
    # the texts the model was made for, where they are not the default's (a digits card's data stays as it was)
    settings.update({key: trained[key] for key in TEXT_KEYS if key in trained and trained[key] != getattr(defaults, key)})
    # drawn as the model's own validation splits were, so a later change of a preset's defaults (heavy's stretch)
    # leaves the check split, and the figure the card records, as they were
    presets = {key: trained[key] for key in ("augment", "hard_augment") if key in trained}
    data = as_data_config({**settings, **presets, "image_height": predictor.height, "image_width": predictor.width,
                           "text_crop": predictor.text_crop, "bucketing": predictor.bucketing,
                           "cache_in_memory": False})
    metadata = write_dataset(data, CHECK_DATA["seed"], workdir / "check_data")
    dataset, _ = evaluation_dataset(data, CHECK_SPLIT, CHECK_DATA["seed"], str(metadata), charset=predictor.charset,
                                    model=str(model))
    metrics = read_dataset(predictor, dataset, 64, 0, data.max_length).scored(0, predictor.charset).compute()
    return {"data": {"seed": CHECK_DATA["seed"], **settings}, "split": CHECK_SPLIT, "images": int(metrics["count"]),
            "seq_accuracy": metrics["seq_accuracy"], "cer": metrics["cer"]}


def model_card(run_dir: Path, model: Path, calibration: dict[str, Any], rows: list[dict[str, Any]],
               check: dict[str, Any], families: Sequence[str], config: dict[str, Any], train_commit: str
               ) -> dict[str, Any]:
    from runner.training.checkpoint import git_commit

    return {
        "model": model.name, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "packaged_at_commit": git_commit(), "trained_at_commit": train_commit, "run_dir": str(run_dir),
        "fonts": list(families), "splits": rows, "check": check, "calibration": calibration,
        "limits": list(LIMITS[card_charset(config)]), "config": config,
    }


def _ece_change(calibration: dict[str, Any]) -> str:
    if calibration.get("ece_before") is None:
        return str(calibration.get("note", "not fitted"))
    return (f"ECE before → after on a held-out half: {calibration['ece_before']:.3f} → "
            f"{calibration['ece_after']:.3f}")


def card_markdown(card: dict[str, Any]) -> str:
    config = card["config"]
    charset = card_charset(config)
    experiment = config.get("experiment_name", "default")
    command = "python -m runner" + ("" if experiment == "default" else f" experiment={experiment}")
    used_by = ("`Reader()`, `predict` and `evaluate` use when no checkpoint is given" if charset == "digits" else
               f"`Reader(\"{charset}\")`, `predict checkpoint={charset}` and `evaluate checkpoint={charset}` use")
    lines = [
        f"# Model card: {card['model']}", "",
        f"The model {used_by} (charset `{charset}`). Made by "
        f"`make release-model` on {card['created'][:10]} from run `{card['run_dir']}` (trained at commit "
        f"`{card['trained_at_commit']}`, packaged at `{card['packaged_at_commit']}`).", "",
        f"- model: `{config['model']['name']}` ({config['model']['_target_'].rsplit('.', 1)[-1]}), input "
        f"{config['data']['image_height']}×{config['data']['image_width']} grayscale, up to "
        f"{config['data']['max_length']} {'digits' if charset == 'digits' else 'characters'}",
        f"- trained: `{command}`, {config['data']['train_size']:,} rendered images, "
        f"seed {config['seed']}, time budget {config['trainer']['max_time_minutes']} min",
        f"- fonts it saw ({len(card['fonts'])} families, val_unseen_fonts holds out "
        f"{', '.join(config['data']['held_out_fonts'])}): {', '.join(card['fonts'])}", "",
        "## Figures", "",
        "Sequence accuracy (whole number right) and CER on every validation split of the data it trained on; "
        f"Tesseract 5 (`-l khm --psm 7`, the characters of charset `{charset}` kept) on images spread over each "
        "split (every width), next to the model on the same images.",
        "", "| split | images | seq accuracy | CER | Tesseract 5 (same images: model / Tesseract) |",
        "|---|---:|---:|---:|---|",
    ]
    for row in card["splits"]:
        tesseract = row["tesseract"]
        versus = "not installed" if tesseract is None else (
            f"{tesseract['images']} images: {tesseract['model_seq_accuracy']:.4f} / {tesseract['seq_accuracy']:.4f}")
        lines.append(f"| {row['split']} | {row['images']} | {row['seq_accuracy']:.4f} | {row['cer']:.4f} | {versus} |")
    check, calibration = card["check"], card["calibration"]
    lines += ["", f"Check split (the test suite regenerates it and re-reads it): {check['split']} of a dataset "
                  f"generated with {json.dumps(check['data'])}: {check['images']} images, seq accuracy "
                  f"{check['seq_accuracy']:.4f}, CER {check['cer']:.4f}.", "",
              f"Confidence: calibrated (Platt, a = {calibration['a']}, b = {calibration['b']}, fitted on "
              f"{calibration['fitted_on']}; {_ece_change(calibration)}).", "",
              "## Limits", ""] + [f"- {limit}" for limit in card["limits"]]
    return "\n".join(lines) + "\n"


def release(run_dir: Optional[Path], overrides: Sequence[str], out_dir: Path, tesseract_images: int) -> Path:
    from runner.config import compose_config
    from runner.inference.config import register_inference_configs
    from runner.inference.evaluation import evaluation_data_config, evaluation_seed
    from runner.inference.predictors import load_predictor
    from runner.training.checkpoint import load_checkpoint, run_checkpoint

    families = _require_system_fonts()
    run_dir = run_dir or _train(overrides)
    checkpoint = run_checkpoint(run_dir, "best")
    payload = load_checkpoint(checkpoint)
    out_dir.mkdir(parents=True, exist_ok=True)
    config = OmegaConf.to_container(OmegaConf.create(payload["config_yaml"]), resolve=False)  # as the run stored it
    charset = card_charset(config)
    model = out_dir / SHIPPED_MODELS[charset].name
    with tempfile.TemporaryDirectory() as folder:
        copy, calibration = _calibrated_copy(checkpoint, Path(folder))
        _export(copy, model)
        predictor = load_predictor(model)
        register_inference_configs()
        data, _ = evaluation_data_config(compose_config("evaluate", [f"checkpoint={model}"]).data, predictor, [])
        rows = evaluate_shipped(predictor, data, evaluation_seed(predictor, data), tesseract_images)
        check = check_figures(model, Path(folder))
    card = model_card(run_dir, model, calibration, rows, check, families, config,
                      payload["git_commit"])
    markdown_path, json_path = card_paths(model)
    write_text_atomic(json_path, json.dumps(card, indent=1, ensure_ascii=False) + "\n")
    write_text_atomic(markdown_path, card_markdown(card))
    print(card_markdown(card))
    return model


@entry_point
def main(argv: Optional[Sequence[str]] = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=None, help="package this run dir instead of training one")
    parser.add_argument("--out", type=Path, default=SHIPPED_DIR, help="where the model and its card go")
    parser.add_argument("--tesseract-images", type=int, default=300, help="images per split Tesseract reads (0: none)")
    parser.add_argument("overrides", nargs="*", help="training overrides (only without --run)")
    args = parser.parse_args(argv)
    if args.run is not None and args.overrides:
        raise ConfigError("--run packages a finished run; training overrides make no sense with it.")
    return release(args.run, args.overrides, args.out, args.tesseract_images)


if __name__ == "__main__":
    main()
