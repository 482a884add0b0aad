"""Inference speed of every model preset: PyTorch vs ONNX Runtime, optionally against Tesseract 5.

    python benchmarks/bench_inference.py                        # all presets, 2 threads
    python benchmarks/bench_inference.py --presets small ctc_small --images 128 --no-tesseract

What is timed, on the same rendered images (light augmentation, 32x128 after preprocessing):
  batch 64      images/s of `Predictor.predict` on preprocessed batches of 64 (model + greedy decode),
                what `runner.predict` spends per image once the files are decoded
  1 image       median latency of `Predictor.predict` on one preprocessed image
  preprocess    PIL image -> model input (`preprocess_image`), shared by every model, one row
  Reader        the Python API end to end (`runner.Reader.read`, preprocessing included): images/s of
                `read(list of PIL images)` and the median latency of `read(one PIL image)`, for the
                ONNX model (ONNX Runtime, no torch involved) and its checkpoint (PyTorch)
  tesseract     `tesseract IMAGE stdout -l khm --psm 7` per image (its own pipeline, process start
                included for the latency; the batch column runs one process over a list file)

Models have random weights: with denormals flushed (as `load_predictor` does) speed does not
depend on them. ONNX models come from the same
`export_onnx` as `runner.export` (dynamo exporter), parity-checked before timing.
`bench_inference()` returns the rows as dicts for `make bench`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import torch

from runner.data.preprocess import preprocess_image
from runner.inference.export import check_parity, export_onnx, render_images
from runner.inference.predictors import OnnxPredictor, Predictor, TorchPredictor, load_checkpoint_predictor
from runner.tesseract import tesseract_command, tesseract_read
from runner.models import available_presets, create_model
from runner.reader import Reader
from runner.training.checkpoint import atomic_save, build_checkpoint

HEIGHT, WIDTH, MAX_LENGTH = 32, 128, 8


def _throughput(run_batch: Callable[[torch.Tensor], Any], images: torch.Tensor, batch_size: int,
                min_seconds: float) -> float:
    """Images per second over whole passes through `images`, repeated for at least `min_seconds`."""
    run_batch(images[:batch_size])  # warm-up: allocators, oneDNN primitives, ORT arenas
    done, started = 0, time.perf_counter()
    while True:
        for start in range(0, len(images), batch_size):
            run_batch(images[start:start + batch_size])
        done += len(images)
        elapsed = time.perf_counter() - started
        if elapsed >= min_seconds:
            return done / elapsed


def _latency_ms(run_one: Callable[[], Any], runs: int) -> float:
    for _ in range(3):
        run_one()
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        run_one()
        timings.append((time.perf_counter() - started) * 1000.0)
    return statistics.median(timings)


def _torch_predictor(preset: str, folder: Path) -> TorchPredictor:
    """A random-weight model of `preset`, saved as folder/PRESET.pt (for the Reader) and loaded back."""
    model = create_model(preset, image_height=HEIGHT, image_width=WIDTH, max_length=MAX_LENGTH).eval()
    payload = build_checkpoint(model=model, epoch=0, global_step=0, metrics={}, config_yaml="",
                               preprocess={"height": HEIGHT, "width": WIDTH})
    atomic_save(payload, folder / f"{preset}.pt")
    return load_checkpoint_predictor(folder / f"{preset}.pt")


def _row(model: str, runtime: str, params_m: Optional[float], per_second: float, latency: float,
         note: str = "") -> dict[str, Any]:
    return {"model": model, "runtime": runtime, "params_m": params_m, "batch_images_per_s": per_second,
            "latency_ms": latency, "note": note}


def bench_predictor(predictor: Predictor, images: torch.Tensor, batch_size: int, latency_runs: int,
                    min_seconds: float, params_m: Optional[float], note: str = "") -> dict[str, Any]:
    per_second = _throughput(predictor.predict, images, batch_size, min_seconds)
    latency = _latency_ms(lambda: predictor.predict(images[:1]), latency_runs)
    return _row(predictor.name, predictor.kind, params_m, per_second, latency, note)


def bench_reader(model: Path, samples: Sequence[tuple[Any, str]], latency_runs: int, min_seconds: float,
                 params_m: Optional[float], num_threads: Optional[int] = None) -> dict[str, Any]:
    """`Reader(model).read`: images/s on the whole list of PIL images, median latency of one PIL image."""
    reader = Reader(model, num_threads=num_threads)
    images = [image for image, _ in samples]
    reader.read(images[:8])  # warm-up
    done, started = 0, time.perf_counter()
    while done == 0 or time.perf_counter() - started < min_seconds:
        reader.read(images)
        done += len(images)
    per_second = done / (time.perf_counter() - started)
    latency = _latency_ms(lambda: reader.read(images[0]), latency_runs)
    return _row(reader.model.name, f"Reader ({reader.model.kind})", params_m, per_second, latency,
                "PIL image -> Reading, preprocessing included")


def bench_tesseract(samples: Sequence[tuple[Any, str]], latency_runs: int,
                    executable: str = "tesseract") -> Optional[dict[str, Any]]:
    """Tesseract 5 with the Khmer model on the raw rendered images; None if it is not installed."""
    path = tesseract_command(executable)
    if path is None:
        return None
    with tempfile.TemporaryDirectory() as folder:
        files = []
        for index, (image, _) in enumerate(samples):
            files.append(Path(folder) / f"{index:04d}.png")
            image.save(files[-1])
        started = time.perf_counter()
        read = tesseract_read(path, files)
        per_second = len(files) / (time.perf_counter() - started)
        single = [path, str(files[0]), "stdout", "-l", "khm", "--psm", "7"]
        latency = _latency_ms(lambda: subprocess.run(single, capture_output=True, check=True), latency_runs)
    correct = sum(text == truth for text, (_, truth) in zip(read, samples))
    return _row("tesseract 5 (khm)", "tesseract", None, per_second, latency,
                f"seq_accuracy {correct / len(samples):.2f} on these images")


def bench_inference(presets: Optional[Sequence[str]] = None, threads: int = 2, batch_size: int = 64,
                    images: int = 256, latency_runs: int = 30, min_seconds: float = 2.0, tesseract: bool = True,
                    dynamo: bool = True) -> list[dict[str, Any]]:
    """Measure every preset with PyTorch and ONNX Runtime (and Tesseract); print a markdown table, return rows."""
    torch.set_num_threads(threads)
    torch.set_flush_denormal(True)  # as runner.inference.predictors.load_predictor does for real checkpoints
    samples = render_images(images, MAX_LENGTH, seed=7)
    started = time.perf_counter()
    batch = torch.stack([preprocess_image(image, HEIGHT, WIDTH, text_crop=True) for image, _ in samples])
    preprocess_rate = len(samples) / (time.perf_counter() - started)
    preprocess_ms = _latency_ms(lambda: preprocess_image(samples[0][0], HEIGHT, WIDTH, text_crop=True), latency_runs)
    rows = [_row("(all)", "preprocess", None, preprocess_rate, preprocess_ms, "PIL image -> [1, 32, 128] tensor")]
    with tempfile.TemporaryDirectory() as folder:
        for preset in presets or available_presets():
            predictor = _torch_predictor(preset, Path(folder))
            params_m = sum(p.numel() for p in predictor.model.parameters()) / 1e6
            rows.append(bench_predictor(predictor, batch, batch_size, latency_runs, min_seconds, params_m))
            onnx_path = export_onnx(predictor, Path(folder) / f"{preset}.onnx", dynamo=dynamo)
            onnx_predictor = OnnxPredictor(onnx_path, predictor.metadata, num_threads=threads)
            parity = check_parity(predictor, onnx_predictor, batch[:batch_size])
            rows.append(bench_predictor(onnx_predictor, batch, batch_size, latency_runs, min_seconds, params_m,
                                        f"max abs logit diff {parity.max_abs_diff:.1e}"))
            rows.append(bench_reader(onnx_path, samples, latency_runs, min_seconds, params_m, num_threads=threads))
            rows.append(bench_reader(predictor.source, samples, latency_runs, min_seconds, params_m))
            for row in rows[-4:]:
                print(format_row(row), file=sys.stderr)
    if tesseract:
        row = bench_tesseract(samples[:min(len(samples), 64)], max(3, latency_runs // 6))
        if row is not None:
            rows.append(row)
    print(markdown_table(rows, threads, batch_size))
    return rows


HEADER = "| model | runtime | params (M) | batch {batch} (img/s) | 1 image (ms) | note |"


def format_row(row: dict[str, Any]) -> str:
    params = "" if row["params_m"] is None else f"{row['params_m']:.2f}"
    return (f"| {row['model']} | {row['runtime']} | {params} | {row['batch_images_per_s']:,.0f} | "
            f"{row['latency_ms']:.2f} | {row['note']} |")


def markdown_table(rows: Sequence[dict[str, Any]], threads: int, batch_size: int) -> str:
    # a shared machine's load moves every number; say how busy it was
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    lines = [f"Inference on CPU ({os.cpu_count()} cores, load average {load}), {threads} threads, "
             f"torch {torch.__version__}:", "",
             HEADER.format(batch=batch_size), "|---|---|---:|---:|---:|---|"]
    return "\n".join(lines + [format_row(row) for row in rows])


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", choices=available_presets(), help="default: every preset")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--images", type=int, default=256, help="rendered images timed per pass")
    parser.add_argument("--latency-runs", type=int, default=30)
    parser.add_argument("--min-seconds", type=float, default=2.0, help="least time per throughput measurement")
    parser.add_argument("--no-tesseract", action="store_true")
    parser.add_argument("--legacy-onnx-exporter", action="store_true",
                        help="export with dynamo=False (faster to export; same inference speed class)")
    args = parser.parse_args(argv)
    bench_inference(args.presets, args.threads, args.batch_size, args.images, args.latency_runs, args.min_seconds,
                    not args.no_tesseract, dynamo=not args.legacy_onnx_exporter)


if __name__ == "__main__":
    main()
