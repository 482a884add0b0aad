"""The amp decision (runner/device.py) and low-level failures as one paragraph (runner/cli.py).

ONEDNN_MAX_CPU_ISA=AVX2 makes oneDNN behave as on a CPU with avx2 alone: it has no bf16 LSTM there,
which is what crashed training on such machines. The subprocess tests use it to run the real
failure on any x86 machine.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from runner import device as device_module
from runner.device import FORCE_ENV, cpu_bf16_support, decide_amp
from runner.errors import ConfigError, failure_paragraph

REPO = Path(__file__).resolve().parent.parent
CPU = torch.device("cpu")
native_bf16 = pytest.mark.skipif(not cpu_bf16_support().native,
                                 reason=f"this CPU has no native bf16: {cpu_bf16_support().reason}")


@pytest.fixture
def forced(monkeypatch):
    def force(answer: str) -> None:
        monkeypatch.setenv(FORCE_ENV, answer)
        cpu_bf16_support.cache_clear()

    yield force
    monkeypatch.delenv(FORCE_ENV, raising=False)
    cpu_bf16_support.cache_clear()


def test_auto_is_bf16_only_where_the_cpu_runs_it_natively(forced):
    forced("native")
    assert decide_amp("auto", CPU).dtype == torch.bfloat16
    forced("none")
    decision = decide_amp("auto", CPU)
    assert decision.dtype is None and f"forced by {FORCE_ENV}=none" in decision.describe("auto", CPU)
    assert decide_amp("off", CPU).dtype is None


def test_bf16_on_a_cpu_without_it_names_what_is_missing_and_the_settings_to_use(forced):
    forced("none")
    with pytest.raises(ConfigError, match=r"device.amp=bf16 but this CPU .*avx512_bf16 (yes|no).*cannot run bf16 "
                                          r"natively.*Use device.amp=auto \(it picks fp32 here\) or device.amp=off"):
        decide_amp("bf16", CPU)
    with pytest.raises(ConfigError, match="device.amp=fp16 is for CUDA"):
        decide_amp("fp16", CPU)
    forced("maybe")
    with pytest.raises(ConfigError, match=f"{FORCE_ENV}='maybe' is not understood"):
        decide_amp("auto", CPU)


def test_a_cpu_without_the_bf16_flags_is_never_probed(monkeypatch, forced):
    forced("")
    monkeypatch.setattr(device_module, "cpu_flags", lambda: {"avx2", "fma"})
    monkeypatch.setattr(device_module, "_probe", lambda dtype: pytest.fail("probed a CPU without bf16 flags"))
    support = cpu_bf16_support()
    assert not support.native and "neither avx512_bf16 nor amx_bf16" in support.reason


def test_a_failing_probe_means_fp32_with_the_failure_as_reason(monkeypatch, forced):
    forced("")
    monkeypatch.setattr(device_module, "cpu_flags", lambda: {"avx2", "avx512f", "avx512_bf16"})

    def fail(_dtype):
        raise RuntimeError("could not create a primitive descriptor for the LSTM forward propagation primitive. "
                           "Run workload with ONEDNN_VERBOSE=all")

    monkeypatch.setattr(device_module, "_probe", fail)
    decision = decide_amp("auto", CPU)
    assert decision.dtype is None
    assert decision.reason.endswith("failed with RuntimeError: could not create a primitive descriptor for the LSTM "
                                    "forward propagation primitive")


def child_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("HYDRA_FULL_ERROR", FORCE_ENV)}
    return {**env, **extra}


def runner_run(tmp_path, *overrides, **env):
    return subprocess.run([sys.executable, "-m", "runner", "debug=fast", f"paths.output_root={tmp_path}",
                           "trainer.limit_train_batches=2", "trainer.limit_val_batches=1", *overrides],
                          cwd=REPO, env=child_env(**env), capture_output=True, text=True, timeout=300)


def test_report_names_the_cpu_its_flags_and_the_decision():
    result = subprocess.run([sys.executable, "-m", "runner.device"], cwd=REPO, env=child_env(ONEDNN_MAX_CPU_ISA="AVX2"),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("cpu: ") and lines[1].startswith("cpu flags: avx2 ")
    assert "ONEDNN_MAX_CPU_ISA=AVX2" in result.stdout
    # oneDNN limited to avx2 has no bf16 LSTM: the probe sees it, whatever the CPU's own flags say
    assert lines[-1].startswith("amp: device.amp=auto on cpu -> fp32 (no autocast): ")


def test_default_training_runs_end_to_end_in_fp32_where_bf16_is_not_native(tmp_path):
    result = runner_run(tmp_path, ONEDNN_MAX_CPU_ISA="AVX2")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "-> fp32 (no autocast): the CPU has" in result.stdout
    (metrics,) = tmp_path.glob("debug_fast/*/*/metrics.json")
    assert json.loads(metrics.read_text())["epochs_completed"] == 1


def test_a_onednn_failure_is_one_paragraph_naming_the_step_and_the_setting(tmp_path):
    # forcing "native" where oneDNN has no bf16 LSTM reproduces the crash the probe prevents
    result = runner_run(tmp_path, ONEDNN_MAX_CPU_ISA="AVX2", **{FORCE_ENV: "native"})
    assert result.returncode == 1
    message = " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr
    assert message.startswith("error (RuntimeError): the run failed inside PyTorch in a training step")
    assert "LSTM forward propagation primitive" in message and "device.amp=auto (bf16 here)" in message
    assert "device.amp=off (fp32: no bf16/fp16 kernels)" in message
    (log,) = tmp_path.glob("debug_fast/*/*/train.log")
    assert f"The full traceback is in {log}" in message and "Traceback (most recent call last)" in log.read_text()
    (status,) = tmp_path.glob("debug_fast/*/*/job_status.json")
    assert json.loads(status.read_text())["status"] == "failed"


def test_amp_bf16_where_it_cannot_run_fails_before_any_data_work(tmp_path):
    result = runner_run(tmp_path, "device.amp=bf16", **{FORCE_ENV: "none"})
    assert result.returncode == 2
    assert "cannot run bf16 natively" in result.stderr and "rendering" not in result.stdout + result.stderr


def test_failure_paragraph_names_where_and_what_to_change():
    def fail():
        raise RuntimeError("CUDA error: an illegal memory access was encountered\nmore lines")

    try:
        fail()
    except RuntimeError as error:
        text = " ".join(failure_paragraph(error, "device=cuda", "Try device=cpu.", Path("run/train.log")).split())
    assert text.startswith("error (RuntimeError): the run failed in the runner: CUDA error: an illegal memory access "
                           "was encountered. It ran with device=cuda. Try device=cpu.")
    assert text.endswith("The full traceback is in run/train.log; HYDRA_FULL_ERROR=1 prints it here.")
    assert "more lines" not in text


@native_bf16
def test_bf16_autocast_trains_where_the_cpu_runs_it_natively(tmp_path):
    result = runner_run(tmp_path, "device.amp=bf16")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "-> bf16 autocast" in result.stdout
