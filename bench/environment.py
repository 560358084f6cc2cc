"""Where every number came from: harness commit, package versions, device, threads."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path

import torch

PACKAGES = ("torch", "transformers", "peft", "accelerate", "datasets", "lm_eval", "tokenizers",
            "scipy", "rouge_score", "pandas", "submitit")


CODE_PATHS = ("bench", "methods", "suites", "pyproject.toml")


def slurm_job_id() -> str | None:
    """This process's SLURM job as squeue, sacct and the sweep records name it: `<array job>_<task>` for a job of an
    array (whose SLURM_JOB_ID is a number of its own, found nowhere else), else SLURM_JOB_ID; None outside SLURM."""
    array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    return f"{array}_{task}" if array and task else os.environ.get("SLURM_JOB_ID")


def git_commit() -> str | None:
    """The harness's git commit, with `-dirty` when the code under CODE_PATHS differs from it; None without git."""
    root = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5)
        # dirty = the code that computes results differs from the commit (reports and docs do not count)
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no", "--",
                                *CODE_PATHS], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (out.stdout.strip() + ("-dirty" if dirty else "")) if out.returncode == 0 else None


def versions() -> dict[str, str | None]:
    """Installed version of each package in PACKAGES (None when it is not installed)."""
    found = {}
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(name.replace("_", "-"))
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


# instruction-set features that change which float kernels torch runs (and so the rounding of results)
ISA_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16",
             "amx_tile", "amx_bf16", "neon", "asimd", "sve")


def cpu_info() -> dict:
    """CPU model, the ISA level torch dispatches to, and the relevant feature flags."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model in ("", platform.machine(), platform.processor()):
                model = value.strip()
            elif key.strip() in ("flags", "Features"):
                flags = set(value.split())
    except OSError:
        pass
    return {"cpu_model": model, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "cpu_flags": [f for f in ISA_FLAGS if f in flags], "cpu_count": os.cpu_count()}


def machine_name(device: str = "cpu") -> str:
    """What a wall time depends on: the CPU model and the kernels torch dispatches to ("AMD EPYC, AVX2"), and on a
    cuda `device` the GPU ("AMD EPYC, AVX2, NVIDIA A100-SXM4-80GB")."""
    cpu = cpu_info()
    gpu = gpu_info(device).get("gpu_name")
    return f"{cpu['cpu_model']}, {cpu['cpu_capability']}" + (f", {gpu}" if gpu else "")


def gpu_info(device: str) -> dict:
    """Name, compute capability, memory (MiB), CUDA / cuDNN and driver version of a cuda `device`; {} for CPU."""
    if not device.startswith("cuda"):
        return {}
    props = torch.cuda.get_device_properties(torch.device(device))
    driver = None
    try:
        driver = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                capture_output=True, text=True, timeout=10).stdout.split("\n")[0].strip() or None
    except (OSError, subprocess.TimeoutExpired):
        pass
    return {"gpu_name": props.name, "gpu_capability": f"{props.major}.{props.minor}",
            "gpu_memory_mb": props.total_memory // 2**20, "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version(), "gpu_driver": driver}


def environment(device: str, dtype: str, seed: int) -> dict:
    """Everything a run records about where it ran: CPU / GPU, commit, Python, platform, package versions,
    device, torch threads, dtype and seed (a flat dict, written into the run's result).
    """
    return {
        **cpu_info(),
        **gpu_info(device),
        "harness_commit": git_commit(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": versions(),
        "device": device,
        "device_name": torch.cuda.get_device_name() if device.startswith("cuda") else platform.processor() or "cpu",
        "torch_threads": torch.get_num_threads(),
        "dtype": dtype,
        "seed": seed,
    }
