"""Hosts as Linux network namespaces on this machine, for tests that need several machines.

A `Network` is a bridge in the root namespace holding the first address of a private /24, and one
namespace per host, joined to the bridge by a veth pair, with its own address, its loopback up and
(for each process started in it) its own UTS namespace with the host's name, so
`socket.gethostname()` tells the hosts apart as on real machines. Everything is named
`pmh<pid>…` after the test process that made it: `cleanup_stale()` removes what a killed earlier
run left (its pid is gone) and never touches another live run's hosts.

Processes are started with `Host.start` (each in its own session, its output in a log file);
`Host.kill_all()` sends SIGKILL to every process in the namespace, by pid (`ip netns pids`), which is
what a machine losing power looks like to the others. Needs root and iproute2.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

FAMILY = "pmh"  # portal multi-host: the prefix of every namespace and link made here


def _ip(*args: str, check: bool = True) -> str:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _owner(name: str) -> int | None:
    """The pid of the run that made `pmh<pid>…`, or None for a name that is not ours."""
    digits = ""
    for char in name[len(FAMILY):]:
        if not char.isdigit():
            break
        digits += char
    return int(digits) if name.startswith(FAMILY) and digits else None


def namespace_pids(namespace: str) -> list[int]:
    out = _ip("netns", "pids", namespace, check=False)
    return [int(pid) for pid in out.split()]


def kill_namespace(namespace: str, timeout: float = 10) -> int:
    """SIGKILL every process in the namespace (repeated: a dying parent may fork). Returns how many."""
    killed: set[int] = set()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = namespace_pids(namespace)
        if not pids:
            return len(killed)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.add(pid)
            except ProcessLookupError:
                pass
        time.sleep(0.05)
    raise RuntimeError(f"processes still alive in {namespace}: {namespace_pids(namespace)}")


def cleanup_stale() -> list[str]:
    """Remove namespaces and links of earlier runs whose test process is gone. Returns their names."""
    removed = []
    for line in _ip("netns", "list").splitlines():
        name = line.split()[0] if line.strip() else ""
        owner = _owner(name)
        if owner is not None and owner != os.getpid() and not _alive(owner):
            kill_namespace(name)
            _ip("netns", "del", name, check=False)
            removed.append(name)
    for line in _ip("-o", "link", "show").splitlines():
        name = line.split(":")[1].strip().split("@")[0]
        owner = _owner(name)
        if owner is not None and owner != os.getpid() and not _alive(owner):
            _ip("link", "del", name, check=False)
            removed.append(name)
    return removed


def _free_subnet(first: int) -> str:
    """A 10.214.N.0/24 that no interface of this machine uses yet, starting from `first`."""
    used = _ip("-o", "-4", "addr", "show")
    for step in range(250):
        third = (first + step) % 250 + 1
        if f"10.214.{third}." not in used:
            return f"10.214.{third}"
    raise RuntimeError("no free 10.214.N.0/24 subnet")


@dataclass
class Process:
    name: str
    proc: subprocess.Popen
    log: Path


@dataclass
class Host:
    name: str  # the host's name (and its UTS hostname)
    namespace: str
    address: str
    logs: Path
    processes: list[Process] = field(default_factory=list)

    def command(self, argv: list[str]) -> list[str]:
        """`argv` run inside this host: its network namespace and a UTS namespace with its name."""
        return ["ip", "netns", "exec", self.namespace, "unshare", "--uts", "--",
                "sh", "-c", 'hostname "$0" && exec "$@"', self.name, *argv]

    def start(self, name: str, argv: list[str], *, env: dict[str, str], cwd: Path | str,
              user: str | None = None) -> Process:
        """A long-running process on this host, in its own session, output to logs/<host>-<name>.log."""
        if user:
            argv = ["runuser", "-u", user, "--", *argv]
        log = self.logs / f"{self.name}-{name}.log"
        with open(log, "ab") as out:
            proc = subprocess.Popen(self.command(argv), env=env, cwd=cwd, stdout=out,  # noqa: S603
                                    stderr=subprocess.STDOUT, start_new_session=True)
        process = Process(name, proc, log)
        self.processes.append(process)
        return process

    def run(self, argv: list[str], *, env: dict[str, str], cwd: Path | str, timeout: float) -> str:
        """A command on this host that must succeed; its output."""
        done = subprocess.run(self.command(argv), env=env, cwd=cwd, capture_output=True,  # noqa: S603
                              text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"{self.name}: {' '.join(argv[:4])}… exited {done.returncode}:\n"
                               f"{done.stdout[-1500:]}\n{done.stderr[-3000:]}")
        return done.stdout

    def kill_all(self) -> int:
        """Every process of this host at once, with SIGKILL: the machine is gone."""
        count = kill_namespace(self.namespace)
        for process in self.processes:
            process.proc.wait(timeout=10)
        return count

    def alive(self) -> bool:
        return bool(namespace_pids(self.namespace))


class Network:
    """A bridge in the root namespace (the test reaches every host through it) and the hosts."""

    def __init__(self, logs: Path):
        self.run = f"{FAMILY}{os.getpid()}"
        self.logs = logs
        self.bridge = f"{self.run}b"
        self.prefix = _free_subnet(os.getpid() % 200 + 20)
        self.gateway = f"{self.prefix}.1"  # the root namespace: where the test itself speaks from
        self.hosts: dict[str, Host] = {}

    def __enter__(self) -> Network:
        cleanup_stale()
        self.destroy()  # a same-pid leftover (pid reuse) is ours to replace
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.gateway}/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        return self

    def __exit__(self, *exc) -> None:
        self.destroy()

    def add(self, name: str, number: int) -> Host:
        """Host `name` at <prefix>.<number>."""
        namespace = f"{self.run}-{name}"
        veth = f"{self.run}v{number}"
        address = f"{self.prefix}.{number}"
        _ip("netns", "add", namespace)
        _ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", namespace)
        _ip("link", "set", veth, "master", self.bridge, "up")
        _ip("-n", namespace, "addr", "add", f"{address}/24", "dev", "eth0")
        _ip("-n", namespace, "link", "set", "eth0", "up")
        _ip("-n", namespace, "link", "set", "lo", "up")
        host = Host(name, namespace, address, self.logs)
        self.hosts[name] = host
        return host

    def destroy(self) -> None:
        """Every process of every host killed, namespaces and links deleted (idempotent).

        All processes die before any namespace goes, so their connections close while every peer
        is still there; and the host ends of the veth pairs are deleted explicitly: a namespace
        whose sockets still retransmit to a vanished peer lingers in the kernel for minutes, and
        with it its veth pair."""
        ours = [line.split()[0] for line in _ip("netns", "list").splitlines()
                if line.strip() and line.startswith(f"{self.run}-")]
        for name in ours:
            kill_namespace(name)
        for host in self.hosts.values():
            for process in host.processes:
                if process.proc.poll() is None:
                    process.proc.kill()
                process.proc.wait(timeout=10)
        for name in ours:
            _ip("netns", "del", name, check=False)
        for line in _ip("-o", "link", "show").splitlines():
            link = line.split(":")[1].strip().split("@")[0]
            if link.startswith(self.run) and _owner(link) == os.getpid():
                _ip("link", "del", link, check=False)
