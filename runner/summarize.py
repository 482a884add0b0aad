"""Sweep summary: one row per job of a multirun, best first, plus a learning-curve plot.

Written automatically when a multirun ends (the `SweepSummaryCallback` in conf/train.yaml's
`hydra.callbacks`), and rebuilt any time with `python -m runner.summarize SWEEP_DIR`. Reads
each job dir's `.hydra/overrides.yaml`, `job_status.json` and `metrics.json`; a job that failed
or never finished is a row with its status and error, never a missing row.
"""

from __future__ import annotations

from runner.extras import require_train_extra

require_train_extra("python -m runner.summarize")  # before hydra and torch: a base install gets the pip command, not a traceback

import argparse
import csv
import json
import logging
import math
import sys
from pathlib import Path
from urllib.parse import quote
from typing import Any, Optional

import yaml
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

log = logging.getLogger("runner.summarize")

COLUMNS = ["job", "overrides", "status", "best_val_seq_accuracy", "val_cer", "best_epoch", "epochs", "wall_time_s",
           "error", "output_dir"]


def read_json(path: Path) -> dict:
    """A job's JSON record as a mapping; {} when it is missing, unreadable or not a mapping (it is data)."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return value if isinstance(value, dict) else {}


def _read_overrides(path: Path) -> list[str]:
    """The job's command-line overrides, read as plain YAML: nothing in them is resolved or run."""
    try:
        value = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return ["(unreadable .hydra/overrides.yaml)"]
    return [str(item) for item in value] if isinstance(value, list) else ["(unreadable .hydra/overrides.yaml)"]


def _history(value: Any) -> list[dict]:
    """The epochs of a metrics.json history that have a number for `epoch`."""
    rows = value if isinstance(value, list) else []
    return [row for row in rows if isinstance(row, dict) and _finite(row.get("epoch")) is not None]


def _count(value: Any) -> Optional[int]:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def job_dirs(sweep_dir: Path) -> list[Path]:
    """Job dirs of a sweep: every subdir (any depth) holding a .hydra/overrides.yaml."""
    found = [p.parent.parent for p in sweep_dir.glob("**/.hydra/overrides.yaml") if p.parent.parent != sweep_dir]
    return sorted(found, key=lambda p: (len(p.parts), int(p.name) if p.name.isdigit() else math.inf, str(p)))


def _finite(value: Any) -> Optional[float]:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def job_row(job_dir: Path, sweep_dir: Path) -> dict[str, Any]:
    """One job's row; accuracy, CER and epoch are those of its best (monitored) epoch."""
    overrides = _read_overrides(job_dir / ".hydra" / "overrides.yaml")
    status = read_json(job_dir / "job_status.json")
    metrics = read_json(job_dir / "metrics.json")
    at_best = metrics.get("best_epoch_metrics") or metrics.get("final_metrics")
    at_best = at_best if isinstance(at_best, dict) else {}
    state = status.get("status") if isinstance(status.get("status"), str) else ("completed" if metrics else "unknown")
    if state == "running":
        state = "interrupted"  # a job that was killed never got to write its final status
    error = str(status.get("error") or "").replace("\n", " ")
    return {
        "job": str(job_dir.relative_to(sweep_dir)),
        "overrides": " ".join(overrides),
        "status": state,
        "best_val_seq_accuracy": _finite(metrics.get("best_metric") if metrics.get("monitor") == "val/seq_accuracy"
                                         else at_best.get("val/seq_accuracy")),
        "val_cer": _finite(at_best.get("val/cer")),
        "best_epoch": _count(metrics.get("best_epoch")),
        "epochs": _count(metrics.get("epochs_completed")),
        "wall_time_s": None if _finite(status.get("wall_time_s")) is None else round(status["wall_time_s"], 1),
        "error": error[:300],
        "output_dir": str(job_dir),
        "_report": (job_dir / "report.html").is_file(),
        "_history": _history(metrics.get("history")),
        "_overrides": overrides,
    }


def _common_overrides(rows: list[dict]) -> list[str]:
    """Overrides every job shares (only with 2+ jobs): stated once, so each row shows what differs."""
    if len(rows) < 2:
        return []
    return [o for o in rows[0]["_overrides"] if all(o in row["_overrides"] for row in rows[1:])]


def _short(override: str) -> str:
    """`optimizer.lr=0.00024156772025296256` → `optimizer.lr=0.0002416` (optuna's samples, for reading)."""
    key, _, value = override.partition("=")
    try:
        return f"{key}={float(value):.4g}" if len(value) > 8 and not value.lstrip("-").isdigit() else override
    except ValueError:
        return override


def _differing_overrides(row: dict, common: list[str]) -> str:
    return " ".join(_short(o) for o in row["_overrides"] if o not in common) or "(defaults)"


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
    common = _common_overrides(rows)
    (sweep_dir / "summary.md").write_text(_markdown(rows, sweep_dir, common), encoding="utf-8")
    _plot(rows, sweep_dir / "summary.png", common)
    return rows


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _markdown(rows: list[dict], sweep_dir: Path, common: list[str]) -> str:
    failed = sum(row["status"] != "completed" for row in rows)
    lines = [f"# Sweep summary: {sweep_dir}", "",
             f"{len(rows)} jobs, {failed} not completed. Sorted best first by best validation sequence accuracy; "
             f"CER and epoch are those of each job's best epoch. Output dirs are relative to the sweep dir.", ""]
    if common:
        lines += [f"Overrides common to every job: `{' '.join(common)}`", ""]
    lines += ["| rank | overrides | status | best val seq acc | val CER | best epoch | epochs | wall time (s) | "
              "output dir | report | error |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for rank, row in enumerate(rows, start=1):
        lines.append(f"| {rank} | `{_differing_overrides(row, common)}` | {row['status']} | "
                     f"{_fmt(row['best_val_seq_accuracy'])} | {_fmt(row['val_cer'])} | {_fmt(row['best_epoch'])} | "
                     f"{_fmt(row['epochs'])} | {_fmt(row['wall_time_s'], 1)} | {row['job']}/ | "
                     f"{_report_link(row['job'], row['_report'])} | {row['error'].replace('|', '/')} |")
    return "\n".join(lines) + "\n"


def _report_link(job: str, exists: bool) -> str:
    """A relative Markdown link to the job's report.html (see runner/report.py), or '-' without one."""
    if not exists:
        return "-"
    target = "/".join(quote(part) for part in Path(job, "report.html").parts)
    return f"[report]({target})"


def _plot(rows: list[dict], path: Path, common: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MultipleLocator

    figure, ax = plt.subplots(figsize=(7, 4.2))
    for row in rows:
        history = row["_history"]
        if history:
            accuracy = [math.nan if value is None else value
                        for value in (_finite(h.get("val/seq_accuracy")) for h in history)]
            ax.plot([h["epoch"] for h in history], accuracy, marker="o",
                    markersize=3, label=f"{row['job']}: {_differing_overrides(row, common)[:60]}")
    ax.set_xlabel("epoch")
    last_epoch = max((h["epoch"] for row in rows for h in row["_history"]), default=1)
    ax.set_xlim(0.5, last_epoch + 0.5)
    ax.xaxis.set_major_locator(MultipleLocator(max(1, math.ceil(last_epoch / 10))))
    ax.set_ylabel("validation sequence accuracy")
    ax.set_ylim(-0.02, 1.02)
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
