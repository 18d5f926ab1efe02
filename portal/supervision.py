"""A process the launcher keeps running (`make run`): its own process group, killed with the
launcher even on SIGKILL (Linux), restarted with a growing delay when it keeps dying."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

RESTART_FIRST_DELAY = 1.0
RESTART_MAX_DELAY = 30.0
# A child that ran this long before exiting starts again from the first delay.
RESTART_RESET_AFTER = 60.0


class Child:
    """One supervised process, in its own process group (so Ctrl-C in the terminal reaches only the
    launcher, and what the child leaves behind can be killed as a group) and set to die with the
    launcher, even if the launcher is killed with SIGKILL (Linux)."""

    def __init__(self, name: str, argv: list[str], log: Path | None, death_signal: int = signal.SIGKILL):
        self.name = name
        self.argv = argv
        self.log_path = log  # None: the terminal (the web's requests)
        # The web gets SIGTERM, so gunicorn's arbiter takes its own workers down; Celery's pool
        # processes and job processes already die with their worker.
        self.death_signal = death_signal
        self.proc: subprocess.Popen | None = None
        self.delay = RESTART_FIRST_DELAY
        self.started_at = 0.0
        self.restart_at: float | None = None

    def start(self, env: dict[str, str]) -> None:
        out = None
        if self.log_path:
            out = self.log_path.open("ab")
        try:
            self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
                self.argv, env=env, cwd=BASE_DIR, stdout=out, stderr=subprocess.STDOUT if out else None,
                start_new_session=True, preexec_fn=_die_with_parent(os.getpid(), self.death_signal))  # noqa: PLW1509
        finally:
            if out:
                out.close()  # the child holds its own copy
        self.started_at = time.monotonic()
        self.restart_at = None

    def exited(self) -> bool:
        return self.restart_at is None and self.proc is not None and self.proc.poll() is not None

    def schedule_restart(self, now: float) -> float:
        # A killed worker leaves its pool processes behind in its group: they go first.
        self.kill_group()
        if now - self.started_at >= RESTART_RESET_AFTER:
            self.delay = RESTART_FIRST_DELAY
        delay, self.delay = self.delay, min(self.delay * 2, RESTART_MAX_DELAY)
        self.restart_at = now + delay
        return delay

    def terminate(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()

    def wait(self, timeout: float) -> None:
        if self.proc is None:
            return
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            print(f"[portal] {self.name} did not stop within the timeout; killing it", flush=True)

    def kill_group(self) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass  # the group is already gone
        self.proc.wait()

    def log_shown(self) -> str:
        if self.log_path is None:
            return "above"
        return str(self.log_path.relative_to(BASE_DIR) if self.log_path.is_relative_to(BASE_DIR)
                   else self.log_path)


PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int, death_signal: int):
    """preexec_fn: `death_signal` when the launcher dies (prctl PR_SET_PDEATHSIG, Linux only), and exit at
    once if it died before that was set."""
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        prctl = None  # not Linux: Ctrl-C and SIGTERM still stop everything, SIGKILL does not

    def preexec() -> None:
        if prctl is not None:
            prctl(PR_SET_PDEATHSIG, death_signal)
        if os.getppid() != parent:
            os._exit(1)

    return preexec
