"""runner/outputs.py: an output is complete or absent, and never written over unasked."""

import os
import stat

import pytest

from runner.errors import ConfigError
from runner.outputs import atomic_path, check_output, write_text_atomic


def test_a_failed_write_leaves_the_previous_file_and_no_temporary(tmp_path):
    target = tmp_path / "predictions.tsv"
    target.write_text("yesterday's predictions\n")
    with pytest.raises(RuntimeError, match="a bad image"):
        with atomic_path(target) as temporary:
            temporary.write_text("half of today's")
            raise RuntimeError("a bad image")
    assert target.read_text() == "yesterday's predictions\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["predictions.tsv"]


def test_a_complete_write_replaces_the_file_with_the_usual_permissions(tmp_path):
    target = tmp_path / "out" / "job_status.json"
    write_text_atomic(target, '{"status": "completed"}')
    assert target.read_text() == '{"status": "completed"}'
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask
    assert sorted(p.name for p in target.parent.iterdir()) == ["job_status.json"]


def test_check_output_refuses_folders_existing_files_inputs_and_sources(tmp_path):
    existing, source = tmp_path / "old.tsv", tmp_path / "best.pt"
    existing.write_text("x")
    source.write_text("weights")
    with pytest.raises(ConfigError, match="is a folder"):
        check_output(tmp_path, "output", overwrite=True)
    with pytest.raises(ConfigError, match="already exists; nothing was written"):
        check_output(existing, "output", overwrite=False)
    with pytest.raises(ConfigError, match="is also one of the inputs"):
        check_output(existing, "output", overwrite=False, inputs=[existing])
    with pytest.raises(ConfigError, match="is the file this command reads"):
        check_output(source, "output", overwrite=True, sources=[source])
    assert check_output(existing, "output", overwrite=True, inputs=[existing]) == existing
    assert check_output(tmp_path / "new.tsv", "output", overwrite=False) == tmp_path / "new.tsv"
