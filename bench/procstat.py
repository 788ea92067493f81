"""What a process used, read from /proc (Linux): peak resident memory (VmHWM, resettable through
clear_refs) and CPU seconds. The benchmarks use it to attribute memory and CPU to the runner and to sqld."""

from __future__ import annotations

import os
import resource
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def _status_kb(pid: int | str, field: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def reset_peak(pid: int | str = "self") -> bool:
    """Reset the process's peak RSS to its current RSS (Linux clear_refs '5'); False where not allowed."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def peak_mb(pid: int | str | None = "self") -> float | None:
    """Peak resident set (MB) since start or the last reset_peak; None when the process is gone."""
    if pid is None:
        return None
    kb = _status_kb(pid, "VmHWM")
    return None if kb is None else kb / 1024


def lifetime_peak_mb() -> float:
    """This process's peak RSS over its whole life (resource.getrusage; kB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds(pid: int | str | None = "self") -> float | None:
    """User + system CPU seconds the process has used so far (all its threads)."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime (fields 14 and 15 of stat)
