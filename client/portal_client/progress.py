"""Progress bars on stderr: tqdm's when it is installed, else a small one of our own.

Our own bar redraws one line in a terminal and, when stderr is a pipe or a file (CI logs, tests),
prints a plain line at most every few seconds and one at the end, so logs stay readable.
"""

from __future__ import annotations

import sys
import time
from typing import IO, Any, Protocol

__all__ = ["Progress", "make_progress"]


class Progress(Protocol):
    def update_to(self, done: float, *, status: str = "") -> None: ...
    def close(self) -> None: ...


class _Silent:
    def update_to(self, done: float, *, status: str = "") -> None:
        pass

    def close(self) -> None:
        pass


def _human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


class _Printer:
    """`label  42%  1.2 MB / 2.9 MB  status` on stderr."""

    PIPE_INTERVAL = 2.0

    def __init__(self, label: str, total: float | None, unit: str, stream: IO[str]):
        self.label, self.total, self.unit, self.stream = label, total, unit, stream
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.last_print = 0.0
        self.last_line = ""
        self.done = 0.0
        self.status = ""

    def _line(self) -> str:
        parts = [self.label]
        if self.total:
            parts.append(f"{min(100.0, 100.0 * self.done / self.total):3.0f}%")
        if self.unit == "B":
            size = _human_bytes(self.done) + (f" / {_human_bytes(self.total)}" if self.total else "")
            parts.append(size)
        if self.status:
            parts.append(self.status)
        return "  ".join(parts)

    def update_to(self, done: float, *, status: str = "") -> None:
        self.done, self.status = done, status or self.status
        line = self._line()
        now = time.monotonic()
        if self.tty:
            self.stream.write("\r" + line.ljust(len(self.last_line)))
            self.stream.flush()
        elif line != self.last_line and now - self.last_print >= self.PIPE_INTERVAL:
            self.stream.write(line + "\n")
            self.stream.flush()
            self.last_print = now
        else:
            return
        self.last_line = line

    def close(self) -> None:
        line = self._line()
        if self.tty:
            self.stream.write("\r" + line.ljust(len(self.last_line)) + "\n")
        elif line != self.last_line:
            self.stream.write(line + "\n")
        self.stream.flush()


class _Tqdm:
    def __init__(self, label: str, total: float | None, unit: str, stream: IO[str]):
        from tqdm.auto import tqdm  # type: ignore[import-untyped, unused-ignore]

        scale = unit == "B"
        # A job's bar counts percent: no rate ("%/s"), the stage as postfix.
        fmt = None if scale else "{desc}: {percentage:3.0f}%|{bar}| {elapsed}{postfix}"
        self.bar: Any = tqdm(total=total, desc=label, unit=unit or "%", unit_scale=scale,
                             unit_divisor=1024 if scale else 1000, file=stream, leave=True,
                             bar_format=fmt)

    def update_to(self, done: float, *, status: str = "") -> None:
        self.bar.n = done
        if status:
            self.bar.set_postfix_str(status, refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


def make_progress(label: str, *, total: float | None, unit: str = "", enabled: bool = True,
                  stream: IO[str] | None = None) -> Progress:
    """A progress bar for `total` units (bytes with unit="B", percent with total=100)."""
    if not enabled:
        return _Silent()
    stream = stream or sys.stderr
    try:
        return _Tqdm(label, total, unit, stream)
    except ImportError:
        return _Printer(label, total, unit, stream)
