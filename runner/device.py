"""The machine a run computes on: CPU model and ISA flags, the native-bf16 probe, the amp decision.

`device.amp=auto` asks for bf16 autocast on a CPU only where bf16 runs natively: the CPU has
avx512_bf16 or amx_bf16 (elsewhere oneDNN emulates bf16, slower than fp32, or has no bf16 LSTM at
all) and a tiny copy of the models' encoder (convolutions, batch norm, BiLSTM) runs forward and
backward under bf16 autocast. The answer is computed once per process.

`KHMER_OCR_CPU_BF16=native|none` skips the probe and forces the answer (tests, CI, a machine you
know). `python -m runner.device` prints the report `.ci/run` and `make bench` start with.
"""

from __future__ import annotations

from runner.extras import require_train_extra

require_train_extra("python -m runner.device")  # before hydra and torch: a base install gets the pip command, not a traceback

import functools
import logging
import os
import platform
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Optional

import torch

from runner.errors import ConfigError, require
from runner.schema import help_field

log = logging.getLogger("runner")

ISA_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
FORCE_ENV = "KHMER_OCR_CPU_BF16"


class Amp(StrEnum):
    """device.amp: mixed precision."""

    auto = "auto"
    bf16 = "bf16"
    fp16 = "fp16"
    off = "off"


AMP_CHOICES = tuple(Amp)


@dataclass
class DeviceConfig:
    """Schema of conf/device: where and at which precision the model runs."""

    name: str = help_field("auto (cuda if available, else cpu), cpu, cuda or cuda:N.", "auto")
    amp: Amp = help_field("Mixed precision: auto (bf16 autocast on a CPU that runs bf16 natively, decided by a probe "
                          "at start-up, else fp32; fp16 + GradScaler on CUDA), bf16, fp16 (CUDA) or off.", Amp.auto)
    num_threads: Optional[int] = help_field("torch intra-op threads; null = all cores (or cores / parallel jobs under "
                                            "joblib).", None)
    channels_last: bool = help_field("Use channels_last memory format for the CNN.", False)
    compile: bool = help_field("Wrap the model in torch.compile.", False)
    deterministic: bool = help_field("torch.use_deterministic_algorithms(True) for exact reproducibility.", False)

    def validate(self) -> None:
        require(self.name in ("auto", "cpu", "cuda") or self.name.startswith("cuda:"), "device.name",
                "must be auto, cpu, cuda or cuda:N", self.name)
        require(self.num_threads is None or self.num_threads > 0, "device.num_threads", "must be > 0 or null",
                self.num_threads)


def register_device_configs(cs: Any) -> None:
    """Store the schema conf/device/*.yaml extend."""
    cs.store(group="device", name="_device_schema", node=DeviceConfig)


def _cpuinfo_field(name: str) -> Optional[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith(name) and ":" in line:
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_model() -> str:
    return _cpuinfo_field("model name") or platform.processor() or platform.machine()


def cpu_flags() -> set[str]:
    """The CPU's ISA flags; without /proc/cpuinfo, what torch itself detects."""
    flags = _cpuinfo_field("flags")
    if flags is not None:
        return set(flags.split())
    detected = set()
    if getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)():
        detected |= {"avx512f", "avx512_bf16", "avx2"}
    if getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)():
        detected.add("amx_bf16")
    if torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512"):
        detected.add("avx2")
    return detected


def isa_summary(flags: Optional[set[str]] = None) -> str:
    """'avx2 yes, avx512f yes, avx512_bf16 no, amx_bf16 no'."""
    flags = cpu_flags() if flags is None else flags
    return ", ".join(f"{flag} {'yes' if flag in flags else 'no'}" for flag in ISA_FLAGS)


@dataclass(frozen=True)
class Bf16Support:
    native: bool
    reason: str


def _probe(dtype: torch.dtype) -> None:
    """A tiny encoder of the models' kind, forward and backward under CPU autocast; raises on failure."""
    from runner.models.encoder import SequenceEncoder

    generator = torch.Generator().manual_seed(0)
    encoder = SequenceEncoder(16, [4, 8, 8, 8], [1, 1, 1, 1], 16, 1, 0.0)
    images = torch.rand(2, 1, 16, 32, generator=generator)
    with torch.autocast("cpu", dtype=dtype):
        output = encoder(images)
    output.float().square().mean().backward()
    if not all(p.grad is not None and torch.isfinite(p.grad).all() for p in encoder.parameters() if p.requires_grad):
        raise RuntimeError("the backward pass gave missing or non-finite gradients")


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0].split('. ')[0].rstrip('. ') if text else ''}"


@functools.lru_cache(maxsize=None)
def cpu_bf16_support() -> Bf16Support:
    """Whether bf16 autocast runs natively on this CPU, and why (computed once per process)."""
    forced = os.environ.get(FORCE_ENV, "").strip().lower()
    if forced in ("native", "none"):
        return Bf16Support(forced == "native", f"forced by {FORCE_ENV}={forced}")
    if forced:
        raise ConfigError(f"{FORCE_ENV}={forced!r} is not understood; set it to 'native' or 'none', or unset it to "
                          f"let the probe decide.")
    flags = cpu_flags()
    present = [flag for flag in NATIVE_BF16_FLAGS if flag in flags]
    if not present:
        return Bf16Support(False, "the CPU has neither avx512_bf16 nor amx_bf16, so oneDNN would emulate bf16 (slower "
                                  "than fp32) or refuse it (no bf16 LSTM on avx2)")
    try:
        _probe(torch.bfloat16)
    except Exception as error:  # noqa: BLE001 - any failure means "not here"; the reason says which
        return Bf16Support(False, f"the CPU has {'+'.join(present)} but the bf16 probe (convolution, batch norm, "
                                  f"BiLSTM forward and backward) failed with {_first_line(error)}")
    return Bf16Support(True, f"the CPU has {'+'.join(present)} and the bf16 probe (convolution, batch norm, BiLSTM "
                             f"forward and backward) ran")


@dataclass(frozen=True)
class AmpDecision:
    """The autocast dtype a run uses (None = fp32) and why."""

    dtype: Optional[torch.dtype]
    reason: str

    @property
    def name(self) -> str:
        return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.dtype]

    def describe(self, amp: str, device: torch.device) -> str:
        precision = "fp32 (no autocast)" if self.dtype is None else f"{self.name} autocast"
        return f"amp: device.amp={amp} on {device.type} -> {precision}: {self.reason}"


def decide_amp(amp: str, device: torch.device) -> AmpDecision:
    """The precision for `device.amp` on `device`. Asking for what the device cannot do is a ConfigError."""
    require(amp in AMP_CHOICES, "device.amp", f"must be one of {', '.join(AMP_CHOICES)}", amp)
    if amp == "off":
        return AmpDecision(None, "device.amp=off")
    if device.type == "cuda":
        if amp == "bf16" and not torch.cuda.is_bf16_supported():
            raise ConfigError(f"device.amp=bf16 but this GPU ({torch.cuda.get_device_name(device)}) does not support "
                              f"bfloat16; use device.amp=auto (fp16 with a gradient scaler) or device.amp=off.")
        if amp == "bf16":
            return AmpDecision(torch.bfloat16, "asked for, and the GPU supports bfloat16")
        return AmpDecision(torch.float16, "fp16 with a gradient scaler on CUDA" + (" (auto)" if amp == "auto" else ""))
    if device.type != "cpu":
        return AmpDecision(None, f"no autocast on {device.type}")
    if amp == "fp16":
        raise ConfigError("device.amp=fp16 is for CUDA (with a gradient scaler); on a CPU use device.amp=auto (bf16 "
                          "where the CPU runs it natively, else fp32), device.amp=bf16 or device.amp=off.")
    support = cpu_bf16_support()
    if amp == "bf16" and not support.native:
        raise ConfigError(f"device.amp=bf16 but this CPU ({cpu_model()}; {isa_summary()}) cannot run bf16 natively: "
                          f"{support.reason.rstrip('. ')}. Use device.amp=auto (it picks fp32 here) or device.amp=off.")
    if support.native:
        return AmpDecision(torch.bfloat16, support.reason)
    return AmpDecision(None, support.reason)


def resolve_amp(amp: str, device: torch.device, *, announce: bool = True) -> Optional[torch.dtype]:
    """The autocast dtype for `amp` on `device` (None = fp32); logs the decision in one line."""
    decision = decide_amp(amp, device)
    if announce:
        log.info(decision.describe(amp, device))
    return decision.dtype


def report(amp: str = "auto", device_name: str = "auto") -> str:
    """CPU model, ISA flags, threads and the amp decision: what CI output and bench reports start with."""
    from runner.training.utils import resolve_device

    device = resolve_device(device_name)
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    lines = [f"cpu: {cpu_model()} ({os.cpu_count()} cores, {usable} usable)",
             f"cpu flags: {isa_summary()}",
             f"torch {torch.__version__}, cpu capability {torch.backends.cpu.get_cpu_capability()}"]
    limits = [f"{key}={os.environ[key]}" for key in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY",
                                                     FORCE_ENV) if os.environ.get(key)]
    if limits:
        lines.append(f"set in the environment: {' '.join(limits)}")
    if device.type == "cuda":
        lines.append(f"gpu: {torch.cuda.get_device_name(device)}")
    lines.append(decide_amp(amp, device).describe(amp, device))
    return "\n".join(lines)


if __name__ == "__main__":
    print(report())
