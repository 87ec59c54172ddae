"""The machine a run measured: `hemiface info`'s facts, the load and the CPU flags that
decide int8 against float32 speed. Every section's figures are read against these."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

# The instruction sets that decide int8 against float32 speed (x86: VNNI does int8 dot
# products in one instruction; Arm: the dot-product extension "asimddp").
SPEED_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "asimd", "asimddp", "i8mm")


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> list[str]:
    """Which of SPEED_FLAGS the CPU has (empty where /proc/cpuinfo cannot be read)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return []
    found: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            found.update(value.split())
    return [flag for flag in SPEED_FLAGS if flag in found]


def load_average() -> list[float] | None:
    return list(os.getloadavg()) if hasattr(os, "getloadavg") else None


def machine_facts() -> dict[str, Any]:
    """Versions, CPU model and counts (`hemiface info`), the load average and CPU flags."""
    from hemiface.runtime.sysinfo import collect_info

    facts = collect_info()
    facts["load_average"] = load_average()
    facts["cpu_flags"] = cpu_flags()
    return facts
