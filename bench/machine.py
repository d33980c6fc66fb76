"""What the benchmarks say about the machine they share: its load and the CPU each process used (Linux)."""

from __future__ import annotations

import os
from pathlib import Path


def load() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def process_cpu(pid: int | str) -> tuple[int, str, float]:
    """(parent pid, name, CPU seconds user + system) of a process, from /proc/<pid>/stat; OSError if gone."""
    head, _, rest = Path(f"/proc/{pid}/stat").read_text().rpartition(")")
    stat = rest.split()
    return int(stat[1]), head.partition("(")[2], (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")
