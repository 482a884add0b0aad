"""Sweep summary: one row per job of a multirun, best first, plus a learning-curve plot.

Written automatically when a multirun ends (the `SweepSummaryCallback` in conf/train.yaml's
`hydra.callbacks`), and rebuilt any time with `python -m runner.summarize SWEEP_DIR`. Reads
each job dir's `.hydra/overrides.yaml`, `job_status.json` and `metrics.json`; a job that failed
or never finished is a row with its status and error, never a missing row.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import sys
from pathlib import Path
from typing import Any, Optional

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger("runner.summarize")

COLUMNS = ["job", "overrides", "status", "best_val_seq_accuracy", "val_cer", "best_epoch", "epochs", "wall_time_s",
           "error", "output_dir"]


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}


def job_dirs(sweep_dir: Path) -> list[Path]:
    """Job dirs of a sweep: every subdir (any depth) holding a .hydra/overrides.yaml."""
    found = [p.parent.parent for p in sweep_dir.glob("**/.hydra/overrides.yaml") if p.parent.parent != sweep_dir]
    return sorted(found, key=lambda p: (len(p.parts), int(p.name) if p.name.isdigit() else math.inf, str(p)))


def job_row(job_dir: Path, sweep_dir: Path) -> dict[str, Any]:
    overrides = OmegaConf.load(job_dir / ".hydra" / "overrides.yaml")
    status = _read_json(job_dir / "job_status.json")
    metrics = _read_json(job_dir / "metrics.json")
    final = metrics.get("final_metrics", {})
    state = status.get("status") or ("completed" if metrics else "unknown")
    if state == "running":
        state = "interrupted"  # a job that was killed never got to write its final status
    error = (status.get("error") or "").replace("\n", " ")
    return {
        "job": str(job_dir.relative_to(sweep_dir)),
        "overrides": " ".join(str(o) for o in overrides),
        "status": state,
        "best_val_seq_accuracy": metrics.get("best_metric") if metrics.get("monitor") == "val/seq_accuracy"
        else final.get("val/seq_accuracy"),
        "val_cer": final.get("val/cer"),
        "best_epoch": metrics.get("best_epoch"),
        "epochs": metrics.get("epochs_completed"),
        "wall_time_s": round(status["wall_time_s"], 1) if "wall_time_s" in status else None,
        "error": error[:300],
        "output_dir": str(job_dir),
        "_history": metrics.get("history", []),
    }


def _sort_key(row: dict) -> tuple:
    accuracy = row["best_val_seq_accuracy"]
    finished = row["status"] == "completed" and accuracy is not None
    return (0 if finished else 1, -(accuracy or 0.0), row["job"])


def summarize(sweep_dir: str | Path) -> list[dict[str, Any]]:
    """Write summary.csv, summary.md and summary.png into `sweep_dir`; return the rows, best first."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        from runner.errors import UserError

        raise UserError(f"{sweep_dir} is not a directory; pass a multirun sweep dir such as "
                        f"outputs/<experiment_name>/multirun/<date>/<time>.")
    rows = sorted((job_row(job, sweep_dir) for job in job_dirs(sweep_dir)), key=_sort_key)
    with open(sweep_dir / "summary.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    (sweep_dir / "summary.md").write_text(_markdown(rows, sweep_dir), encoding="utf-8")
    _plot(rows, sweep_dir / "summary.png")
    return rows


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _markdown(rows: list[dict], sweep_dir: Path) -> str:
    failed = sum(row["status"] != "completed" for row in rows)
    lines = [f"# Sweep summary: {sweep_dir}", "", f"{len(rows)} jobs, {failed} not completed. Sorted best first "
             f"by best validation sequence accuracy.", "",
             "| rank | job | overrides | status | best val seq acc | val CER | best epoch | wall time (s) | error |",
             "|---|---|---|---|---|---|---|---|---|"]
    for rank, row in enumerate(rows, start=1):
        lines.append(f"| {rank} | {row['job']} | `{row['overrides'] or '(defaults)'}` | {row['status']} | "
                     f"{_fmt(row['best_val_seq_accuracy'])} | {_fmt(row['val_cer'])} | {_fmt(row['best_epoch'])} | "
                     f"{_fmt(row['wall_time_s'], 1)} | {row['error'].replace('|', '/') or ''} |")
    return "\n".join(lines) + "\n"


def _plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, ax = plt.subplots(figsize=(7, 4.2))
    for row in rows:
        history = row["_history"]
        if history:
            ax.plot([h["epoch"] for h in history], [h.get("val/seq_accuracy", math.nan) for h in history], marker="o",
                    markersize=3, label=f"{row['job']}: {row['overrides'][:40] or 'defaults'}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation sequence accuracy")
    ax.set_title("Validation sequence accuracy per epoch")
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


class SweepSummaryCallback(Callback):
    """Hydra callback: summarize the sweep dir when a multirun ends; exit non-zero if a job failed."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if not sweep_dir.is_dir():
            return
        rows = summarize(sweep_dir)
        failed = [row for row in rows if row["status"] != "completed"]
        log.info("sweep summary (%d jobs) written to %s", len(rows), sweep_dir / "summary.md")
        if failed:
            names = ", ".join(f"{row['job']} ({row['overrides']})" for row in failed)
            print(f"error: {len(failed)} of {len(rows)} sweep jobs failed: {names}. See {sweep_dir / 'summary.md'} "
                  f"and each job's train.log.", file=sys.stderr)
            sys.exit(1)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runner.summarize", description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", help="a multirun sweep dir (holds one subdir per job)")
    args = parser.parse_args(argv)
    from runner.errors import UserError, format_user_error

    try:
        rows = summarize(args.sweep_dir)
    except UserError as error:
        print(format_user_error(error), file=sys.stderr)
        return 2
    print((Path(args.sweep_dir) / "summary.md").read_text(encoding="utf-8"))
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main())
