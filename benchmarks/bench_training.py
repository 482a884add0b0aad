"""Training speed: the runner's loop against a bare PyTorch loop, tuning options, time to a target accuracy.

    python benchmarks/bench_training.py                      # overhead ratio (runner vs bare loop)
    python benchmarks/bench_training.py --tuning             # + every tuning option vs the default
    python benchmarks/bench_training.py --time-to 0.99       # + a default training run until 99% val seq accuracy
    python benchmarks/bench_training.py --models             # + training images/s of every model preset

What is timed (images/s of training steps only: no validation, no checkpoints):
  runner      `OCRTrainer._train_epoch()` with `trainer.limit_train_batches=N`: the whole loop as `python -m
              runner` runs it (autocast, clipping, scheduler, per-batch accuracy, progress bookkeeping)
  bare loop   `for batch in loader: forward, loss, backward, step` over the same DataLoader, model, loss,
              optimizer class, autocast dtype and threads, with nothing else
Both run the same N batches (epoch 0 of the same shuffled order), timed as wall clock around the whole
pass. On a shared machine the load drifts by the minute, so measurements alternate (A B A B ..., or a
round robin over every tuning option) and the ratios use medians: drift hits both sides alike.

`measure_overhead`, `measure_tuning` and `time_to_accuracy` return plain dicts for `make bench`.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import math
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from runner.config import compose_config
from runner.data.config import as_data_config, data_seed
from runner.data.datasets import ImageListDataset
from runner.data.loaders import make_loader, set_loader_epoch
from runner.data.samplers import WidthBucketBatchSampler
from runner.data.splits import build_datasets
from runner.data.preprocess import CROP_MULTIPLE, MIN_CROP_WIDTH
from runner.data.generate import ensure_generated_dataset, read_metadata
from runner.errors import instantiate
from runner.models import available_presets, create_model
from runner.device import resolve_amp
from runner.training.utils import setup_training_environment

log = logging.getLogger("bench")

# What section 5 compares with the default config: (name, overrides, note). Every option is one override
# of the shipped config.
TUNING_OPTIONS: list[tuple[str, list[str], str]] = [
    ("default", [], "amp=auto (bf16 autocast where the CPU runs it natively, else fp32), all cores, data.num_workers=0, pre-rendered data cached in memory"),
    ("fp32", ["device.amp=off"], "device.amp=off"),
    ("channels_last", ["device.channels_last=true"], "device.channels_last=true"),
    ("unfused optimizer", ["optimizer.fused=false"], "optimizer.fused=false (PyTorch's per-parameter AdamW loop)"),
    ("torch.compile", ["device.compile=true"], "device.compile=true (inductor); compile time excluded"),
    ("1 thread", ["device.num_threads=1"], "device.num_threads=1"),
    ("1 loader worker", ["data.num_workers=1"], "data.num_workers=1 (prefetch_factor 2)"),
    ("2 loader workers", ["data.num_workers=2"], "data.num_workers=2 (prefetch_factor 2)"),
    ("on-the-fly data", ["data=onthefly"], "data=onthefly: fresh renders every epoch, 1 worker"),
    ("no width bucketing", ["data.bucketing=false"], "data.bucketing=false: every batch image_width wide, in random "
                                                     "order"),
]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def fastest_quarter(values: Sequence[float]) -> float:
    """Mean of the fastest quarter: the least disturbed measurements when other jobs burst onto the cores."""
    ordered = sorted(values)
    return statistics.mean(ordered[-max(1, len(ordered) // 4):]) if ordered else math.nan


def paired_ratio(ours: Sequence[float], theirs: Sequence[float]) -> float:
    """Median over rounds of ours/theirs measured back to back: load bursts hit both sides of a pair."""
    return median([a / b for a, b in zip(ours, theirs)])


# --------------------------------------------------------------------------- building the runner's pieces
@dataclass
class TrainingSetup:
    """One configuration ready to run N training batches through the runner or a bare loop."""

    name: str
    cfg: Any
    trainer: Any
    loader: Any
    note: str = ""
    warmup_s: float = 0.0
    runner_rates: list[float] = field(default_factory=list)
    bare_rates: list[float] = field(default_factory=list)
    runner_cpu_rates: list[float] = field(default_factory=list)  # images per CPU-second of this process
    bare_cpu_rates: list[float] = field(default_factory=list)
    data_wait: list[float] = field(default_factory=list)
    _bare: Optional[tuple[Any, Any, Any]] = None

    def run_runner(self) -> float:
        """Images/s of one `_train_epoch` over `limit_train_batches` batches (wall clock)."""
        self.trainer.step_in_epoch = 0  # `train()` resets it after every epoch; the epoch stays 0
        started, cpu_started = time.perf_counter(), time.process_time()
        stats = self.trainer._train_epoch()
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        # every batch is full but, at most, the one short batch of a width-bucketed epoch
        images = self.trainer._train_batches_per_epoch() * self.cfg.data.batch_size
        rate = images / elapsed
        self.runner_rates.append(rate)
        self.runner_cpu_rates.append(images / cpu)
        self.data_wait.append(stats["train/data_wait_fraction"])
        return rate

    def run_bare(self) -> float:
        """Images/s of a plain loop over the same batches with the same model (wall clock)."""
        model, optimizer, loss_fn = self._bare_parts()
        batches = self.trainer._train_batches_per_epoch()
        autocast = self.trainer._autocast
        model.train()
        if isinstance(self.loader, DataLoader):
            set_loader_epoch(self.loader, 0)
        if getattr(self.loader, "generator", None) is not None:
            self.loader.generator.manual_seed(self.cfg.seed * 1_000_003)  # the order the runner's epoch 0 sees
        samples = 0
        started, cpu_started = time.perf_counter(), time.process_time()
        for batch in itertools.islice(self.loader, batches):
            with autocast():
                logits = model(batch["images"], batch["targets"])
                loss = loss_fn(logits, batch)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            samples += batch["images"].shape[0]
        rate = samples / (time.perf_counter() - started)
        self.bare_rates.append(rate)
        self.bare_cpu_rates.append(samples / (time.process_time() - cpu_started))
        return rate

    def _bare_parts(self) -> tuple[Any, Any, Any]:
        if self._bare is None:
            model = self.trainer.model  # the same module the runner trains (compiled when device.compile)
            optimizer = instantiate(self.cfg.optimizer, lr=self.trainer.lr)(self.trainer.raw_model.parameters())
            loss_fn = instantiate(self.cfg.loss)
            loss_fn.bind(self.trainer.raw_model)
            self._bare = (model, optimizer, loss_fn)
        return self._bare


class SetupFactory:
    """Builds `TrainingSetup`s from config overrides, sharing the (large) datasets between them."""

    def __init__(self, batches: int, output_dir: Path, base_overrides: Sequence[str] = ()):
        self.batches, self.output_dir = batches, Path(output_dir)
        self.base_overrides = list(base_overrides)
        self._datasets: dict[str, dict[str, Dataset]] = {}

    def datasets(self, cfg: Any) -> dict[str, Dataset]:
        data_cfg = as_data_config(cfg.data)
        key = data_cfg.kind
        if key not in self._datasets:
            datasets = build_datasets(data_cfg, data_seed(data_cfg, cfg.seed))
            train = datasets["train"]
            if isinstance(train, ImageListDataset):
                train.fill_cache()  # decode every PNG once (logged): timings see the steady state
            self._datasets[key] = datasets
        return self._datasets[key]

    def build(self, name: str, overrides: Sequence[str], note: str = "") -> TrainingSetup:
        cfg = compose_config("train", [*self.base_overrides, *overrides,
                                       f"paths.output_root={self.output_dir}", "trainer.progress_bar=false"])
        setup_training_environment(cfg, self.output_dir / "runs", create_dirs=False)
        datasets = self.datasets(cfg)
        loader = make_loader(datasets["train"], cfg.data.batch_size, True, cfg.data.num_workers, cfg.seed,
                             max_length=cfg.data.max_length, bucketing=cfg.data.bucketing)
        val = make_loader(datasets["val"], cfg.data.batch_size, False, 0, cfg.seed, max_length=cfg.data.max_length,
                          bucketing=cfg.data.bucketing)
        model = instantiate(cfg.model)
        trainer = instantiate(cfg.trainer)(model=model, train_loader=loader, val_loader=val, config=cfg,
                                           device="cpu", output_dir=self.output_dir / "runs",
                                           limit_train_batches=self.batches,
                                           max_epochs=100_000)  # the LR schedule must outlast every repeat
        setup = TrainingSetup(name, cfg, trainer, loader, note)
        started = time.perf_counter()
        trainer.step_in_epoch = 0
        saved = trainer.tcfg.limit_train_batches
        trainer.tcfg.limit_train_batches = 2  # warm-up: oneDNN primitives, workers, torch.compile
        trainer._train_epoch()
        trainer.tcfg.limit_train_batches = saved
        setup.warmup_s = time.perf_counter() - started
        return setup


def _alternate(first: Callable[[], float], second: Callable[[], float], rounds: int) -> None:
    """A B B A A B ...: each side runs first half the time, so a steady drift in load cancels too."""
    for round_index in range(rounds):
        pair = (first, second) if round_index % 2 == 0 else (second, first)
        for run in pair:
            run()


# --------------------------------------------------------------------------- section 1: runner vs bare loop
def measure_overhead(batches: int = 1, rounds: int = 30, output_dir: Optional[Path] = None,
                     factory: Optional[SetupFactory] = None) -> dict[str, Any]:
    """Runner `_train_epoch` vs a bare loop on the default config; ratio of median images/s."""
    with _output_dir(output_dir) as folder:
        factory = factory or SetupFactory(batches, folder)
        setup = factory.build("default", [])
        setup.run_bare()  # the bare loop's own optimizer state (AdamW moments) is allocated here, untimed
        setup.bare_rates.clear()
        _alternate(setup.run_runner, setup.run_bare, rounds)
    runner, bare = median(setup.runner_rates), median(setup.bare_rates)
    pairs = [r / b for r, b in zip(setup.runner_rates, setup.bare_rates)]
    cpu_ratio = paired_ratio(setup.runner_cpu_rates, setup.bare_cpu_rates)
    amp = resolve_amp(setup.cfg.device.amp, torch.device("cpu"))
    return {"runner_images_per_s": runner, "bare_images_per_s": bare, "ratio": median(pairs),
            "ratio_of_medians": runner / bare, "cpu_ratio": cpu_ratio,
            "fastest_quarter_ratio": fastest_quarter(setup.runner_rates) / fastest_quarter(setup.bare_rates),
            "runner_images_per_cpu_s": median(setup.runner_cpu_rates), "bare_images_per_cpu_s": median(setup.bare_cpu_rates),
            "pair_ratios": pairs, "runner_rates": setup.runner_rates, "bare_rates": setup.bare_rates,
            "data_wait_fraction": median(setup.data_wait), "batches": batches, "rounds": rounds,
            "batch_size": setup.cfg.data.batch_size, "model": setup.cfg.model.name,
            "threads": torch.get_num_threads(), "amp": str(amp).replace("torch.", "") if amp else "fp32",
            "num_workers": setup.cfg.data.num_workers}


def overhead_markdown(result: dict[str, Any]) -> str:
    rates = lambda values: ", ".join(f"{v:.0f}" for v in values)  # noqa: E731
    pairs = result["pair_ratios"]
    verdict = "meets" if result["ratio"] >= 0.95 else "misses"
    return "\n".join([
        f"Model `{result['model']}`, batch {result['batch_size']}, {result['threads']} threads, autocast "
        f"{result['amp']} on both sides, data.num_workers={result['num_workers']}; {result['rounds']} alternating "
        f"rounds of {result['batches']} batch(es) each (the same batches every time).", "",
        "| loop | images/s (median) | images per CPU-second (median) | every measurement (images/s) |",
        "|---|---:|---:|---|",
        f"| runner (`OCRTrainer._train_epoch`) | {result['runner_images_per_s']:.1f} | "
        f"{result['runner_images_per_cpu_s']:.1f} | {rates(result['runner_rates'])} |",
        f"| bare PyTorch loop | {result['bare_images_per_s']:.1f} | {result['bare_images_per_cpu_s']:.1f} | "
        f"{rates(result['bare_rates'])} |",
        f"| **ratio runner / bare** (median of per-round ratios) | **{result['ratio']:.3f}** | "
        f"{result['cpu_ratio']:.3f} | target ≥ 0.95: {verdict}; per round {min(pairs):.2f}–{max(pairs):.2f} |",
        f"| ratio of the medians above | {result['ratio_of_medians']:.3f} | | |",
        f"| ratio of the fastest quarters (least disturbed runs) | {result['fastest_quarter_ratio']:.3f} | | |",
        "", "The headline is the median over rounds of runner/bare measured back to back: when other jobs burst onto "
        "the cores (images/s jumps between single digits and hundreds here), both halves of a round are hit alike, "
        "while the plain medians of each side can land in different regimes. The fastest quarters approximate an "
        "idle machine. CPU-time rates count this process's CPU seconds (both sides load data in-process).",
        f"The runner's share of step time waiting for data in these epochs: {result['data_wait_fraction']:.1%}."])


# --------------------------------------------------------------------------- section 5: tuning options
def measure_tuning(options: Sequence[tuple[str, list[str], str]] = TUNING_OPTIONS, batches: int = 8,
                   rounds: int = 3, output_dir: Optional[Path] = None) -> list[dict[str, Any]]:
    """Runner images/s of every option, measured round robin; ratios against the first option (default)."""
    with _output_dir(output_dir) as folder:
        factory = SetupFactory(batches, folder)
        setups: list[TrainingSetup] = []
        failed: list[dict[str, Any]] = []
        for name, overrides, note in options:
            try:
                setups.append(factory.build(name, overrides, note))
                log.info("tuning: built %s (warm-up %.1f s)", name, setups[-1].warmup_s)
            except Exception as error:  # an option that cannot run here (no compiler, ...) is a result too
                log.warning("tuning option %s failed: %s", name, error)
                failed.append({"option": name, "note": f"failed: {str(error).splitlines()[0][:160]}"})
        for round_index in range(rounds):
            shift = round_index % len(setups)  # rotate who goes first: position in the round should not matter
            for setup in setups[shift:] + setups[:shift]:
                setup.run_runner()
            log.info("tuning round %d/%d done", round_index + 1, rounds)
        rows = []
        default = setups[0].runner_rates
        for setup in setups:
            rate = median(setup.runner_rates)
            note = setup.note
            if setup.name == "torch.compile":
                note += f" (compile + 2 warm-up batches: {setup.warmup_s:.0f} s)"
            if isinstance(setup.loader.batch_sampler, WidthBucketBatchSampler):
                note += f"; mean batch width ≈ {mean_batch_width(setup.loader):.0f} of {setup.cfg.data.image_width} px"
            rows.append({"option": setup.name, "images_per_s": rate, "ratio": paired_ratio(setup.runner_rates, default),
                         "fastest_quarter_ratio": fastest_quarter(setup.runner_rates) / fastest_quarter(default),
                         "data_wait_fraction": median(setup.data_wait), "rates": list(setup.runner_rates),
                         "note": note})
        del setups  # persistent loader workers exit with their loaders
    return rows + failed


def model_options() -> list[tuple[str, list[str], str]]:
    """Every model preset as a `measure_tuning` option, the default model first (the ratios' baseline)."""
    default = compose_config("train").model.name
    presets = [default] + [name for name in available_presets() if name != default]
    return [(name, [f"model={name}"], f"model={name}") for name in presets]


def models_markdown(rows: Sequence[dict[str, Any]], batches: int, rounds: int) -> str:
    lines = [f"Runner training throughput of every model preset with the default config otherwise (bf16 autocast on "
             f"CPU), measured round robin ({rounds} rounds of {batches} batches); `vs {rows[0]['option']}`: median "
             f"over rounds of the ratio in the same round.", "",
             f"| preset | parameters | images/s (median) | vs {rows[0]['option']} |", "|---|---:|---:|---:|"]
    for row in rows:
        if "images_per_s" not in row:
            lines.append(f"| {row['option']} | – | – | {row['note']} |")
            continue
        params = sum(p.numel() for p in create_model(row["option"]).parameters()) / 1e6
        lines.append(f"| {row['option']} | {params:.2f} M | {row['images_per_s']:.0f} | {row['ratio']:.2f}× |")
    return "\n".join(lines)


def mean_batch_width(loader: DataLoader) -> float:
    """Mean width of a width-bucketed epoch's batches, from the image headers (the crop reads the pixels)."""
    sampler = loader.batch_sampler
    widths = [sampler.widths[batch].max() for batch in sampler]
    return float(np.mean([min(loader.dataset.image_width, max(MIN_CROP_WIDTH, math.ceil(w / CROP_MULTIPLE) * CROP_MULTIPLE))
                          for w in widths]))


def tuning_verdict(ratio: float) -> str:
    if math.isnan(ratio):
        return ""
    if ratio >= 1.10:
        return "helps"
    if ratio <= 0.90:
        return "hurts"
    return "no clear change"


def tuning_markdown(rows: Sequence[dict[str, Any]], batches: int, rounds: int) -> str:
    lines = [f"Runner training throughput of each option, measured round robin ({rounds} rounds of {batches} "
             f"batches, the starting option rotating). `vs default`: median over rounds of option/default in the "
             f"same round; `fastest quarters`: the same ratio for the least disturbed runs. ≥ 1.10 helps, "
             f"≤ 0.90 hurts.", "",
             "| option | images/s (median) | vs default | fastest quarters | verdict | data wait | note |",
             "|---|---:|---:|---:|---|---:|---|"]
    for row in rows:
        if "images_per_s" not in row:
            lines.append(f"| {row['option']} | – | – | – | – | – | {row['note']} |")
            continue
        lines.append(f"| {row['option']} | {row['images_per_s']:.1f} | {row['ratio']:.2f}× | "
                     f"{row['fastest_quarter_ratio']:.2f}× | "
                     f"{'baseline' if row['option'] == 'default' else tuning_verdict(row['ratio'])} | "
                     f"{row['data_wait_fraction']:.1%} | {row['note']} |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- section 2: time to accuracy
def time_to_accuracy(target: float = 0.99, max_minutes: float = 15.0, output_root: Path = Path("outputs/bench/runs"),
                     overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Train the default config with `trainer.stop_at=target` and a time cap; when did val accuracy get there?"""
    from runner.train import train

    stamp = time.strftime("%Y-%m-%d_%H-%M-%S")
    cfg = compose_config("train", [f"trainer.stop_at={target}", f"trainer.max_time_minutes={max_minutes}",
                                   f"paths.output_root={output_root / stamp}", "experiment_name=time_to_accuracy",
                                   "trainer.progress_bar=false", *overrides])
    data_cfg = as_data_config(cfg.data)
    started = time.perf_counter()
    metadata = ensure_generated_dataset(data_cfg, data_seed(data_cfg, cfg.seed), progress=False)
    data_s = time.perf_counter() - started
    reused = data_s < 5.0  # a cache hit reads one file; generating a dataset takes minutes
    started = time.perf_counter()
    results = train(cfg)
    wall_s = time.perf_counter() - started
    history = results["history"]
    monitor = results["monitor"]
    reached_at, elapsed = None, 0.0
    for row in history:
        elapsed += row["epoch_time_s"]
        if row[monitor] >= target:
            reached_at = (row["epoch"], elapsed)
            break
    return {"target": target, "max_minutes": max_minutes, "reached": reached_at is not None,
            "epoch": reached_at[0] if reached_at else None, "time_to_target_s": reached_at[1] if reached_at else None,
            "train_s": results["timings"]["train_s"], "wall_s": wall_s, "data_s": data_s, "data_reused": reused,
            "dataset": str(metadata.parent), "train_size": cfg.data.train_size,
            "images_total": sum(read_metadata(metadata)["dataset_info"]["counts"].values()),
            "best_metric": results["best_metric"], "best_epoch": results["best_epoch"],
            "stop_reason": results["stop_reason"], "history": history,
            "final": results["final_metrics"], "extra": results["extra_val_metrics"],
            "output_dir": results["paths"]["output_dir"]}


def time_to_accuracy_markdown(result: dict[str, Any], generation_rate: Optional[float] = None) -> str:
    target = result["target"]
    if result["reached"]:
        headline = (f"**{result['time_to_target_s'] / 60:.1f} min** ({result['time_to_target_s']:.0f} s) from the start "
                    f"of training to val seq accuracy ≥ {target:.0%}, at epoch {result['epoch']}")
    else:
        headline = (f"**not reached** within the {result['max_minutes']:g}-minute cap: best val seq accuracy "
                    f"{result['best_metric']:.4f} at epoch {result['best_epoch']}")
    if result["data_reused"]:
        data = f"data: the cached dataset was reused ({result['data_s']:.1f} s to find it)"
        if generation_rate:
            data += (f"; generating its {result['images_total']:,} images fresh takes ≈ "
                     f"{result['images_total'] / generation_rate / 60:.1f} min at the section-4 rate")
    else:
        data = (f"data generation: {result['data_s']:.0f} s for {result['images_total']:,} images "
                f"({result['images_total'] / result['data_s']:.0f} images/s)")
    lines = [f"{headline}; stop reason: {result['stop_reason']}. Training loop {result['train_s']:.0f} s, "
             f"whole `train()` incl. final evaluation {result['wall_s']:.0f} s; {data}.", "",
             "| epoch | train loss | train images/s | data wait | val seq acc | epoch time (s) |",
             "|---:|---:|---:|---:|---:|---:|"]
    for row in result["history"]:
        lines.append(f"| {row['epoch']} | {row['train/loss']:.4f} | {row['train/samples_per_s']:.0f} | "
                     f"{row['train/data_wait_fraction']:.1%} | {row['val/seq_accuracy']:.4f} | "
                     f"{row['epoch_time_s']:.0f} |")
    lines += ["", "Accuracy of the weights at the stop (best epoch restored):", "",
              "| split | seq accuracy | CER |", "|---|---:|---:|",
              f"| val (clean, training fonts) | {result['final']['val/seq_accuracy']:.4f} | "
              f"{result['final']['val/cer']:.4f} |"]
    for split, metrics in result["extra"].items():
        lines.append(f"| {split} | {metrics[f'{split}/seq_accuracy']:.4f} | {metrics[f'{split}/cer']:.4f} |")
    lines += ["", f"Run dir: `{result['output_dir']}`."]
    return "\n".join(lines)


# --------------------------------------------------------------------------- helpers and CLI
class _output_dir:
    """A given folder, or a temporary one removed afterwards."""

    def __init__(self, folder: Optional[Path]):
        self.folder, self._temporary = folder, None

    def __enter__(self) -> Path:
        if self.folder is not None:
            Path(self.folder).mkdir(parents=True, exist_ok=True)
            return Path(self.folder)
        self._temporary = tempfile.TemporaryDirectory(prefix="bench_training_")
        return Path(self._temporary.name)

    def __exit__(self, *exc: Any) -> None:
        if self._temporary is not None:
            self._temporary.cleanup()


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=1, help="training batches per measurement")
    parser.add_argument("--rounds", type=int, default=30, help="alternating measurements per side")
    parser.add_argument("--tuning", action="store_true", help="also compare every tuning option with the default")
    parser.add_argument("--models", action="store_true", help="also measure the training speed of every model preset")
    parser.add_argument("--time-to", type=float, default=None, metavar="ACC",
                        help="also train the default config until val seq accuracy >= ACC")
    parser.add_argument("--max-minutes", type=float, default=15.0, help="time cap of --time-to")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    print(overhead_markdown(measure_overhead(args.batches, args.rounds)))
    if args.tuning:
        print()
        print(tuning_markdown(measure_tuning(batches=args.batches, rounds=args.rounds), args.batches, args.rounds))
    if args.models:
        print()
        print(models_markdown(measure_tuning(model_options(), batches=args.batches, rounds=args.rounds),
                              args.batches, args.rounds))
    if args.time_to is not None:
        print()
        print(time_to_accuracy_markdown(time_to_accuracy(args.time_to, args.max_minutes)))


if __name__ == "__main__":
    main()
