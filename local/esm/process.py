"""The emulator as a child process (``python -m local.esm``), for tests and the soak: its JSON lines are read by a
thread as they come, so a caller can wait for an event, then kill, freeze or stop the process at that point."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from local import config

Event = dict[str, Any]


class EmulatorProcess:
    def __init__(self, args: list[str], *, env: dict[str, str] | None = None) -> None:
        self.args = args
        self.events: list[Event] = []
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self.process = subprocess.Popen(  # noqa: S603 - our own module
            [sys.executable, "-m", "local.esm", *args],
            cwd=config.ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, **(env or {})},
        )
        self._reader = threading.Thread(target=self._read, name=f"emulator-{self.process.pid}", daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line)
                with contextlib.suppress(ValueError):
                    value = json.loads(line)
                    if isinstance(value, dict):
                        self.events.append(value)
                self._changed.notify_all()
        self.process.stdout.close()
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, wanted: str | Callable[[Event], bool], timeout: float, *, after: int = 0) -> Event | None:
        """The first event from index ``after`` on that is of kind ``wanted`` (or satisfies it), waiting up to
        ``timeout`` seconds; None if the time runs out or the process ends first."""
        predicate = wanted if callable(wanted) else (lambda event: event.get("event") == wanted)
        deadline = time.monotonic() + timeout
        seen = after
        with self._changed:
            while True:
                for event in self.events[seen:]:
                    if predicate(event):
                        return event
                seen = max(seen, len(self.events))
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._reader.is_alive():
                    return None
                self._changed.wait(min(remaining, 0.5))

    def of(self, kind: str) -> list[Event]:
        with self._changed:
            return [event for event in self.events if event.get("event") == kind]

    def signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signum)

    def kill(self) -> None:
        """SIGKILL (a frozen process too), then wait for the process and for every line it wrote."""
        self.signal(signal.SIGKILL)
        self.wait(30)

    def wait(self, timeout: float) -> int:
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=10)
        return code

    def tail(self, lines: int = 20) -> str:
        with self._changed:
            return "".join(self.lines[-lines:])
