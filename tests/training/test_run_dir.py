"""A run dir belongs to one run (runner/training/run_dir.py)."""

import re

import pytest

from runner.training.checkpoint import run_checkpoint
from runner.training.run_dir import RunDirInUse, check_run_dir_free


def test_a_fresh_run_is_refused_only_where_another_run_left_its_last_checkpoint(tmp_path):
    check_run_dir_free(tmp_path, None)  # an empty dir is free
    run_checkpoint(tmp_path, "best").parent.mkdir()
    run_checkpoint(tmp_path, "best").write_bytes(b"")
    check_run_dir_free(tmp_path, None)  # best.pt alone is no resumable run
    run_checkpoint(tmp_path, "last").write_bytes(b"")
    last = re.escape(str(run_checkpoint(tmp_path, "last")))
    with pytest.raises(RunDirInUse, match=f"its checkpoint {last}.*resume=auto"):
        check_run_dir_free(tmp_path, None)
    check_run_dir_free(tmp_path, "auto")  # continuing it is what the dir is for
