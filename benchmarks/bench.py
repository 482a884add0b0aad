"""`make bench`: every benchmark of the project in one report, printed and saved as markdown.

    python benchmarks/bench.py            # all sections (measured runtimes: docs/benchmarks.md)
    python benchmarks/bench.py --quick    # or BENCH_QUICK=1: skips 2 (time to 99%) and 5 (tuning)

Sections (each a function below, each reusing a benchmarks/bench_*.py module):
  1. training throughput of the runner vs a bare PyTorch loop (ratio; target >= 0.95)
  2. time to 99% validation sequence accuracy with the default config, data generation apart
  3. inference images/s and single-image latency per preset, PyTorch and ONNX Runtime, vs Tesseract 5
  4. data generation and loading images/s, and the share of step time spent waiting for data (< 5%)
  5. tuning: training throughput of threads, workers, channels_last, torch.compile, bf16 vs fp32,
     on-the-fly data and no width bucketing, each as a ratio to the default measured in the same run
  6. accuracy next to Tesseract 5 on the same images of every validation split, for the model of
     --checkpoint (e.g. the run `make train` wrote) or else the model section 2 trained

The report goes to stdout and to outputs/bench/bench.md (plus a dated copy next to it). On a shared
machine every number moves with the load: comparisons are ratios measured within one run
(alternating or round robin, medians), and every section states the load average around it.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script: the sibling bench_* modules

import bench_accuracy  # noqa: E402
import bench_data  # noqa: E402
import bench_inference  # noqa: E402
import bench_training  # noqa: E402

from runner.config import compose_config  # noqa: E402
from runner.device import cpu_model, decide_amp, isa_summary  # noqa: E402
from runner.training.checkpoint import run_checkpoint  # noqa: E402
from runner.training.guards import TrainingInterrupted  # noqa: E402

log = logging.getLogger("bench")
OUTPUT_DIR = Path("outputs/bench")
TARGET_ACCURACY = 0.99


def load_average() -> str:
    return ", ".join(f"{value:.1f}" for value in os.getloadavg())


def machine_markdown() -> str:
    """CPU model, ISA flags and the amp decision first: every figure below depends on them."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    decision = decide_amp("auto", torch.device("cpu"))
    return "\n".join([
        f"- cpu: {cpu_model()}, {os.cpu_count()} cores ({usable} usable)",
        f"- cpu flags: {isa_summary()}",
        f"- amp decision (device.amp=auto): {decision.name} — {decision.reason}",
        f"- date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}",
        f"- {platform.system()} {platform.release()}, Python {platform.python_version()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} intra-op threads, oneDNN {'on' if torch.backends.mkldnn.is_available() else 'off'}",
        f"- load average at start (1, 5, 15 min): {load_average()}"])


# --------------------------------------------------------------------------- sections
def section_overhead(quick: bool) -> tuple[str, dict[str, Any]]:
    result = bench_training.measure_overhead(batches=1, rounds=16 if quick else 40)
    return bench_training.overhead_markdown(result), result


def section_time_to_accuracy(max_minutes: float, generation_rate: Optional[float]) -> tuple[str, dict[str, Any]]:
    result = bench_training.time_to_accuracy(TARGET_ACCURACY, max_minutes, OUTPUT_DIR / "runs")
    return bench_training.time_to_accuracy_markdown(result, generation_rate), result


def section_inference(quick: bool, default_model: str) -> tuple[str, list[dict[str, Any]]]:
    threads = torch.get_num_threads()
    presets = [default_model] if quick else None
    settings = dict(images=128, latency_runs=10, min_seconds=1.0) if quick else {}
    with contextlib.redirect_stdout(io.StringIO()):  # it prints its own table; the report holds it
        rows = bench_inference.bench_inference(presets, threads=threads, **settings)
    table = bench_inference.markdown_table(rows, threads, 64)
    tesseract = next((row for row in rows if row["runtime"] == "tesseract"), None)
    lines = [table, ""]
    if tesseract is None:
        lines.append("Tesseract 5 with Khmer data is not installed here (make system-deps): no baseline row.")
    else:
        for row in rows:
            if row["model"] == default_model and row["runtime"] != "tesseract":
                speedup = row["batch_images_per_s"] / tesseract["batch_images_per_s"]
                lines.append(f"- default model `{default_model}` on {row['runtime']}: **{speedup:.0f}×** Tesseract's "
                             f"throughput (target ≥ 10×: {'meets' if speedup >= 10 else 'misses'}); single image "
                             f"latency {tesseract['latency_ms'] / row['latency_ms']:.1f}× Tesseract's speed")
    if quick:
        lines.append("- quick run: only the default preset; `make bench` without BENCH_QUICK measures every preset.")
    return "\n".join(lines), rows


def section_accuracy(checkpoint: Path, quick: bool) -> tuple[str, list[dict[str, Any]]]:
    rows = bench_accuracy.compare_with_tesseract(checkpoint, images=100 if quick else 300)
    lines = [f"Model: `{checkpoint}`.", "", bench_accuracy.accuracy_markdown(rows)]
    return "\n".join(lines), rows


def section_data(generated: dict[str, Any], overhead: Optional[dict[str, Any]],
                 tuning: Optional[Sequence[dict[str, Any]]], quick: bool) -> tuple[str, dict[str, Any]]:
    result = bench_data.measure_data(render_images=64 if quick else 256, generated=generated)
    waits = []
    if overhead:
        waits.append(("section 1: default config, runner, cached pre-rendered data", overhead["data_wait_fraction"]))
    for row in tuning or []:
        if "data_wait_fraction" in row and row["option"] != "default":
            waits.append((f"section 5: {row['option']}", row["data_wait_fraction"]))
    markdown = bench_data.data_markdown(result, waits, overhead["runner_images_per_s"] if overhead else None)
    return markdown, result


def section_tuning(quick: bool) -> tuple[str, list[dict[str, Any]]]:
    batches, rounds = (1, 4) if quick else (6, 6)  # workers prefetch: short passes would waste their batches
    rows = bench_training.measure_tuning(batches=batches, rounds=rounds)
    markdown = bench_training.tuning_markdown(rows, batches, rounds)
    return markdown + "\n\n" + recommendations(rows), rows


# conf default each option would change, and what to check before changing it
DEFAULT_KEYS = {"fp32": "device.amp=off", "channels_last": "device.channels_last=true",
                "torch.compile": "device.compile=true", "1 thread": "device.num_threads=1",
                "1 loader worker": "data.num_workers=1", "2 loader workers": "data.num_workers=2",
                "on-the-fly data": "data=onthefly", "no width bucketing": "data.bucketing=false"}
SAME_NUMERICS = {"channels_last", "torch.compile", "1 thread", "1 loader worker", "2 loader workers"}


def clearly_helps(row: dict[str, Any]) -> bool:
    """≥ 10% faster by both estimates (paired rounds and fastest quarters): one alone can be a load burst."""
    return (row["option"] != "default" and row.get("ratio", 0) >= 1.10
            and row.get("fastest_quarter_ratio", 0) >= 1.10)


def recommendations(rows: Sequence[dict[str, Any]]) -> str:
    helping = [row for row in rows if clearly_helps(row)]
    if not helping:
        return ("No option beats the default by ≥ 10% (by both estimates) in this run: keep the conf defaults "
                "(device.amp, device.channels_last, device.compile, data.num_workers).")
    lines = ["Options ≥ 10% faster than the default in this run (by both estimates):"]
    for row in helping:
        key = DEFAULT_KEYS.get(row["option"], row["option"])
        accuracy = ("same numerics, accuracy unchanged" if row["option"] in SAME_NUMERICS
                    else "changes what is computed: confirm accuracy with a full `make train` before switching")
        lines.append(f"- {row['option']} ({key}): {row['ratio']:.2f}× — {accuracy}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- driver
def timed(title: str, function: Callable[[], tuple[str, Any]]) -> tuple[str, Any]:
    log.info("section %s: starting (load average %s)", title, load_average())
    before, started = load_average(), time.perf_counter()
    try:
        markdown, result = function()
    except TrainingInterrupted:  # Ctrl-C / SIGTERM reach the trainer as this: stop the benchmark, not one section
        raise
    except Exception as error:  # one failing section must not lose the others' numbers
        log.exception("section %s failed", title)
        markdown, result = f"**failed**: {type(error).__name__}: {error}", None
    elapsed = time.perf_counter() - started
    section = (f"## {title}\n\n{markdown}\n\n_Took {elapsed:.0f} s; load average before: {before}, "
               f"after: {load_average()}._")
    print(section + "\n", file=sys.stderr, flush=True)
    return section, result


def run(quick: bool, max_minutes: float = 15.0, output_dir: Path = OUTPUT_DIR, skip: Sequence[int] = (),
        checkpoint: Optional[Path] = None) -> str:
    default_model = str(compose_config("train").model.name)
    header = "\n".join(["# khmer-digits-ocr benchmarks" + (" (quick: sections 2 and 5 skipped)" if quick else ""),
                        "", machine_markdown()])
    sections: dict[int, str] = {}
    sections[1], overhead = timed("1. Training throughput: runner vs bare PyTorch loop",
                                  lambda: section_overhead(quick))
    sections[3], inference = timed("3. Inference: PyTorch and ONNX Runtime per preset vs Tesseract 5",
                                   lambda: section_inference(quick, default_model))
    # the generation rate first: section 2 puts a fresh dataset's generation time next to training
    generated = bench_data.generation_rate(256 if quick else 1024)
    time_to: Optional[dict[str, Any]] = None
    if quick or 2 in skip:
        sections[2] = ("## 2. Time to 99% validation sequence accuracy\n\nSkipped "
                       f"({'BENCH_QUICK=1 / --quick' if quick else '--skip 2'}).")
    else:
        sections[2], time_to = timed(f"2. Time to {TARGET_ACCURACY:.0%} validation sequence accuracy (default config)",
                                     lambda: section_time_to_accuracy(max_minutes, generated["generate_images_per_s"]))
    tuning: Optional[list[dict[str, Any]]] = None
    if quick or 5 in skip:
        sections[5] = f"## 5. Tuning\n\nSkipped ({'BENCH_QUICK=1 / --quick' if quick else '--skip 5'})."
    else:
        sections[5], tuning = timed("5. Tuning: training throughput of each option vs the default",
                                    lambda: section_tuning(quick))
    sections[4], _ = timed("4. Data: generation and loading speed, time waiting for data",
                           lambda: section_data(generated, overhead, tuning, quick))
    if checkpoint is None and time_to is not None:
        checkpoint = run_checkpoint(time_to["output_dir"], "best")
    accuracy: Optional[list[dict[str, Any]]] = None
    if checkpoint is None:
        sections[6] = ("## 6. Accuracy next to Tesseract 5\n\nSkipped: no model (section 2 did not run and no "
                       "--checkpoint was given).")
    else:
        sections[6], accuracy = timed("6. Accuracy next to Tesseract 5 on every validation split",
                                      lambda: section_accuracy(checkpoint, quick))
    summary = summary_markdown(overhead, time_to, inference, tuning, default_model, accuracy)
    report = "\n\n".join([header, summary, *(sections[number] for number in sorted(sections))]) + "\n"
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "bench.md").write_text(report, encoding="utf-8")
    (output_dir / f"bench-{time.strftime('%Y-%m-%d_%H-%M-%S')}{'-quick' if quick else ''}.md").write_text(
        report, encoding="utf-8")
    return report


def summary_markdown(overhead: Optional[dict[str, Any]], time_to: Optional[dict[str, Any]],
                     inference: Optional[list[dict[str, Any]]], tuning: Optional[list[dict[str, Any]]],
                     default_model: str, accuracy: Optional[list[dict[str, Any]]] = None) -> str:
    def status(ok: Optional[bool]) -> str:
        return "–" if ok is None else ("meets" if ok else "misses")

    lines = ["## Summary", "", "| measure | result | target | status |", "|---|---:|---|---|"]
    if overhead:
        lines.append(f"| runner / bare PyTorch training throughput | {overhead['ratio']:.2f} (CPU time: "
                     f"{overhead['cpu_ratio']:.2f}) | ≥ 0.95 | {status(overhead['ratio'] >= 0.95)} |")
        lines.append(f"| share of step time waiting for data (default) | {overhead['data_wait_fraction']:.1%} | < 5% | "
                     f"{status(overhead['data_wait_fraction'] < 0.05)} |")
    if time_to:
        minutes = time_to["time_to_target_s"] / 60 if time_to["reached"] else None
        lines.append(f"| time to {time_to['target']:.0%} val seq accuracy | "
                     f"{f'{minutes:.1f} min' if minutes is not None else 'not reached'} | within `make train`'s "
                     f"15 min | {status(minutes is not None and minutes <= 15)} |")
        targets = {"val/seq_accuracy": 0.995, "val_hard/seq_accuracy": 0.97, "val_unseen_fonts/seq_accuracy": 0.95,
                   "val_hard_unseen_fonts/seq_accuracy": None}
        metrics = {**time_to["final"], **{k: v for split in time_to["extra"].values() for k, v in split.items()}}
        for key, target in targets.items():
            if key in metrics:
                lines.append(f"| {key.split('/')[0]} seq accuracy, stopped at {time_to['target']:.0%} val (not the "
                             f"full `make train` model) | {metrics[key]:.4f} | "
                             f"{f'≥ {target:.1%}' if target else '(no target)'} | "
                             f"{status(metrics[key] >= target if target else None)} |")
    if inference:
        tesseract = next((row for row in inference if row["runtime"] == "tesseract"), None)
        for row in inference:
            if tesseract and row["model"] == default_model and row["runtime"] in ("pytorch", "onnxruntime"):
                speedup = row["batch_images_per_s"] / tesseract["batch_images_per_s"]
                lines.append(f"| `{default_model}` {row['runtime']} vs Tesseract throughput | {speedup:.0f}× | ≥ 10× | "
                             f"{status(speedup >= 10)} |")
        if tesseract:
            lines.append(f"| Tesseract 5 exact reads on the same images | {tesseract['note'].split()[1]} | "
                         f"(expected 0.50–0.85) | – |")
    for row in accuracy or []:
        if row["tesseract_seq_accuracy"] is not None:
            lines.append(f"| {row['split']}: model vs Tesseract 5 seq accuracy (section 6) | "
                         f"{row['model_seq_accuracy']:.3f} vs {row['tesseract_seq_accuracy']:.3f} | model ahead | "
                         f"{status(row['model_seq_accuracy'] > row['tesseract_seq_accuracy'])} |")
    for row in tuning or []:
        if clearly_helps(row):
            lines.append(f"| tuning: {row['option']} | {row['ratio']:.2f}× the default | ≥ 1.10× to recommend | "
                         f"helps |")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", default=os.environ.get("BENCH_QUICK", "") not in ("", "0"),
                        help="skip section 2 (time to 99%%) and 5 (tuning); default from BENCH_QUICK=1")
    parser.add_argument("--max-minutes", type=float, default=15.0, help="time cap of section 2's training run")
    parser.add_argument("--output-dir", type=Path, default=OUTPUT_DIR)
    parser.add_argument("--skip", type=int, nargs="+", default=[], choices=[2, 5],
                        help="skip long sections: 2 (time to 99%%), 5 (tuning)")
    parser.add_argument("--checkpoint", type=Path, default=os.environ.get("BENCH_CHECKPOINT") or None,
                        help="model for section 6 (a run dir or .pt; default from BENCH_CHECKPOINT, else the model "
                             "section 2 trains)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    report = run(args.quick, args.max_minutes, args.output_dir, args.skip, args.checkpoint)
    print(report)
    print(f"saved to {args.output_dir / 'bench.md'}", file=sys.stderr)


if __name__ == "__main__":
    main()
