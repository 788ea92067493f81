"""Functions longer than a bound: every function and method in the given files and folders, measured from
its `def` line to its last line (decorators not counted). Prints `path:line name N lines` for each one over
the bound and exits 1 if there is any.

    python scripts/function_length.py [--max 60] [PATH ...]   (default: conftest.py fixtures layers scenarios reports)
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterator
from pathlib import Path

DEFAULT_PATHS = ("conftest.py", "fixtures", "layers", "scenarios", "reports")
DEFAULT_MAX = 60


def python_files(paths: list[str]) -> Iterator[Path]:
    for name in paths:
        path = Path(name)
        if path.is_dir():
            yield from sorted(path.rglob("*.py"))
        elif path.is_file():
            yield path
        else:
            raise SystemExit(f"function_length: {name} is neither a file nor a folder")


def function_lengths(path: Path) -> Iterator[tuple[int, str, int]]:
    """(line, qualified name, length) of every function and method in the file, nested ones too."""
    tree = ast.parse(path.read_text(), filename=str(path))

    def walk(node: ast.AST, prefix: str) -> Iterator[tuple[int, str, int]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                name = f"{prefix}{child.name}"
                assert child.end_lineno is not None
                yield child.lineno, name, child.end_lineno - child.lineno + 1
                yield from walk(child, f"{name}.")
            elif isinstance(child, ast.ClassDef):
                yield from walk(child, f"{prefix}{child.name}.")
            else:
                yield from walk(child, prefix)

    yield from walk(tree, "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--max", type=int, default=DEFAULT_MAX, help=f"longest allowed function (default {DEFAULT_MAX})"
    )
    parser.add_argument("paths", nargs="*", default=list(DEFAULT_PATHS))
    args = parser.parse_args(argv)
    over = [
        (path, line, name, length)
        for path in python_files(args.paths)
        for line, name, length in function_lengths(path)
        if length > args.max
    ]
    for path, line, name, length in over:
        print(f"{path}:{line} {name} {length} lines")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
