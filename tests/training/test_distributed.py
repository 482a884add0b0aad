"""torchrun with 2 gloo processes on CPU: one output dir, rank 0 writes, same curve as 1 process."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# data.bucketing=false: with width bucketing each rank crops its own half of a global batch, so the
# padding (and the numbers) differ slightly from one process reading the whole batch.
COMMON = ["debug=fast", "device=cpu", "device.num_threads=1", "model=ctc_small", "trainer.max_epochs=2",
          "trainer.limit_train_batches=3", "trainer.early_stopping.restore_best_weights=false", "data.bucketing=false"]


def _run(command, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR")}
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def _run_dirs(root: Path):
    return sorted(p.parent for p in root.glob("**/metrics.json"))


def test_two_gloo_processes_match_one_process_with_the_same_global_batch(tmp_path):
    single_root, ddp_root = tmp_path / "single", tmp_path / "ddp"
    _run([sys.executable, "-m", "runner", *COMMON, "data.batch_size=32", f"paths.output_root={single_root}"], REPO)
    _run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29517", "-m", "runner",
          *COMMON, "data.batch_size=16", f"paths.output_root={ddp_root}"], tmp_path)

    runs = _run_dirs(ddp_root)
    assert len(runs) == 1, runs  # exactly one output dir
    run = runs[0]
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["best.pt", "last.pt"]
    assert len(list((run / "tensorboard").glob("events.*"))) == 1
    assert not list(tmp_path.glob("*.json")) and not (tmp_path / ".hydra").exists()  # rank 1 wrote nothing

    single = json.loads((_run_dirs(single_root)[0] / "metrics.json").read_text())
    ddp = json.loads((run / "metrics.json").read_text())
    assert ddp["global_step"] == single["global_step"] == 6
    for a, b in zip(single["history"], ddp["history"]):
        assert b["train/loss"] == pytest.approx(a["train/loss"], rel=0.03)
        assert b["val/loss"] == pytest.approx(a["val/loss"], rel=0.03)


def test_two_gloo_processes_with_width_bucketing_run_in_lock_step(tmp_path):
    root = tmp_path / "ddp"
    _run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29519", "-m", "runner",
          *COMMON, "data.bucketing=true", "data.batch_size=16", f"paths.output_root={root}"], tmp_path)
    (run,) = _run_dirs(root)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["global_step"] == 6 and len(metrics["history"]) == 2
    assert all(math.isfinite(epoch["train/loss"]) and math.isfinite(epoch["val/loss"]) for epoch in metrics["history"])
