"""What produced a result: package versions and the machine, recorded in every results.json."""

from __future__ import annotations

import platform
import sys
from importlib import metadata

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


def machine() -> dict[str, str]:
    info = {"platform": platform.platform(), "processor": platform.machine()}
    try:
        import torch

        info["accelerator"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    except Exception:  # noqa: BLE001 - informational only
        pass
    return info
