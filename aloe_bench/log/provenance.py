"""What produced a result: package versions and the machine, recorded in every results.json."""

from __future__ import annotations

import platform
import sys
from importlib import metadata
from pathlib import Path

PACKAGES = (
    "aloe-bench",
    "torch",
    "transformers",
    "openai",
    "numpy",
    "scipy",
    "lm-eval",
    "trl",
    "peft",
    "vllm",
)


def package_versions() -> dict[str, str]:
    versions = {"python": sys.version.split()[0]}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


# Device nodes of the GPUs torch.cuda reports on Linux: NVIDIA's, and AMD's (ROCm builds of torch).
_GPU_NODES = ("/dev/nvidia0", "/dev/kfd")


def _no_gpu_device() -> bool:
    """True when this machine has no GPU device node (Linux): then torch.cuda would say "cpu", and a
    run that never needed torch (an API model, the OpenVINO runtime) does not pay ~1.5 s to import it."""
    return (
        sys.platform.startswith("linux")
        and "torch" not in sys.modules
        and not any(Path(node).exists() for node in _GPU_NODES)
    )


def machine() -> dict[str, str]:
    info = {"platform": platform.platform(), "processor": platform.machine()}
    if _no_gpu_device():
        info["accelerator"] = "cpu"
        return info
    try:
        import torch

        info["accelerator"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    except Exception:  # noqa: BLE001 - informational only
        pass
    return info
