"""Run `pytest drills/...` in a subprocess of this project (a clean interpreter, as a user would)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class DrillRun:
    returncode: int
    output: str
    history: list[dict[str, Any]]  # the drill results the run appended
    manifests: list[dict[str, Any]]  # the run manifests it appended (what it collected)


def run_pytest(args: list[str], tmp: Path, *, env: dict[str, str] | None = None, timeout: float = 600) -> DrillRun:
    history = tmp / "history.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--drill-history=file:{history}",
         f"--drill-artifacts={tmp / 'artifacts'}", *args],
        cwd=ROOT, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    records = [json.loads(line) for line in history.read_text().splitlines()] if history.exists() else []
    results = [r for r in records if r.get("kind") != "manifest"]
    return DrillRun(done.returncode, done.stdout + done.stderr, results, [r for r in records if r not in results])
