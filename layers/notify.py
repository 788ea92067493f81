"""Notification hooks for layer events (backup success and failure): every event is appended to a JSON
lines file of the drill, and optionally piped as JSON to a user command (mail, chat, pager)."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Event:
    layer: int
    kind: str  # "success" | "failure" | "retention"
    at: float
    detail: dict[str, Any] = field(default_factory=dict)
    error: str = ""


Notifier = Callable[[Event], None]


class JsonlNotifier:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)

    def __call__(self, event: Event) -> None:
        with self._lock, self.path.open("a") as out:
            out.write(json.dumps(asdict(event)) + "\n")

    def events(self) -> list[Event]:
        if not self.path.exists():
            return []
        return [Event(**json.loads(line)) for line in self.path.read_text().splitlines() if line.strip()]


class CommandNotifier:
    """Runs a shell command with the event as JSON on stdin; a failing hook is reported, never fatal."""

    def __init__(self, command: str, timeout: float = 30.0) -> None:
        self.command = command
        self.timeout = timeout
        self.failures: list[str] = []

    def __call__(self, event: Event) -> None:
        try:
            done = subprocess.run(
                self.command, shell=True, input=json.dumps(asdict(event)), text=True, capture_output=True,
                timeout=self.timeout,
            )  # fmt: skip
            if done.returncode:
                self.failures.append(f"exit {done.returncode}: {done.stderr.strip()[:200]}")
        except subprocess.TimeoutExpired:
            self.failures.append(f"timed out after {self.timeout:g}s")


def fan_out(*notifiers: Notifier) -> Notifier:
    def notify(event: Event) -> None:
        for notifier in notifiers:
            notifier(event)

    return notify
