"""What a benchmark measured: the checkout, for the JSON line every script prints."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]


def checkout(watched: str) -> str | None:
    """Short commit, ``+dirty`` if ``watched`` (a path in the project) has local changes."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=PROJECT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", watched],
            cwd=PROJECT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+dirty" if dirty else "")


def machine(master: str) -> dict[str, object]:
    """Where a benchmark ran: the Spark master, cores, architecture and load average."""
    return {
        "master": master,
        "cores": os.cpu_count(),
        "machine": platform.machine(),
        "loadavg": Path("/proc/loadavg").read_text().split()[:3],
    }
