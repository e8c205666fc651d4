"""Describe the machine a benchmark ran on (printed beside every table)."""

from __future__ import annotations

import os
import platform
from importlib.metadata import version


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    libs = ", ".join(
        f"{p} {version(p)}" for p in ("apache-airflow", "great-expectations", "pandas", "pyarrow")
    )
    return f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB, Python {platform.python_version()}; {libs}"
