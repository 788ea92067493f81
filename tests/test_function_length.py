"""scripts/function_length.py: every function and method over the bound is named, and only those."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.drillrun import ROOT

SCRIPT = ROOT / "scripts" / "function_length.py"


def _function(name: str, lines: int, indent: str = "") -> str:
    body = "".join(f"{indent}    x{i} = {i}\n" for i in range(lines - 1))
    return f"{indent}def {name}() -> None:\n{body}"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=60)


def test_functions_over_the_bound_are_named_with_their_length(tmp_path: Path) -> None:
    source = tmp_path / "pkg" / "mod.py"
    source.parent.mkdir()
    method = _function("long_method", 62, indent="    ")
    source.write_text(_function("fits", 60) + _function("too_long", 61) + f"class Thing:\n{method}")
    done = _run(str(tmp_path / "pkg"))
    assert done.returncode == 1, done.stderr
    assert done.stdout.splitlines() == [f"{source}:61 too_long 61 lines", f"{source}:123 Thing.long_method 62 lines"]
    assert _run("--max", "62", str(source)).returncode == 0


def test_a_clean_file_passes_and_a_missing_path_is_an_error(tmp_path: Path) -> None:
    clean = tmp_path / "clean.py"
    clean.write_text(_function("short", 3))
    done = _run(str(clean))
    assert (done.returncode, done.stdout) == (0, "")
    assert _run(str(tmp_path / "missing")).returncode != 0
