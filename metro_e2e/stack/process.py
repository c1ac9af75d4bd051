"""The small core of the local stack: a managed process, free ports and one bounded readiness wait.

A ``Service`` is a process started in its own session (so the whole process
group can be stopped: MLflow 3 leaves job runners behind a SIGTERM to the
parent), logging to a file under the run folder. ``wait_ready`` polls one URL
until it gives the expected answer or the deadline passes, and then raises
``StackError`` naming the URL, what was expected, what came back, a hint and
the tail of the service's log.
"""

from __future__ import annotations

import fcntl
import logging
import os
import random
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import requests

from metro_e2e._poll import NotYet, PollTimeout, poll
from metro_e2e.errors import StackError

log = logging.getLogger(__name__)

LOG_TAIL = 20
STOP_GRACE_S = 5.0
READY_POLL_S = 0.25  # between readiness probes


STACK_PORTS = (20000, 29999)  # below the usual ephemeral range (32768+) and Kubernetes' NodePorts (30000-32767)
_RESERVED: dict[int, int] = {}  # port -> the descriptor of its lock file, held until release_ports()


def _reserve(port: int) -> bool:
    """Hold an exclusive lock on ``port`` for this stack, so that another stack on the machine (another xdist worker,
    another ``check``) that chose the same free port before either bound it chooses again. The kernel drops the lock
    when the process ends."""
    folder = Path(tempfile.gettempdir()) / "metro-e2e-ports"
    folder.mkdir(exist_ok=True)
    fd = os.open(folder / str(port), os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return False
    _RESERVED[port] = fd
    return True


def release_ports(ports) -> None:
    """Give back ports ``free_port`` reserved (when the services on them have stopped)."""
    for port in ports:
        if (fd := _RESERVED.pop(port, None)) is not None:
            os.close(fd)


def free_port(taken: set[int] | frozenset[int] = frozenset()) -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now, outside the kernel's ephemeral range, not in
    ``taken`` (ports already chosen for other services of the same stack) and not chosen by another stack on this
    machine that has not bound it yet (a lock per port, held until ``release_ports``).

    A port the kernel hands out for port 0 comes from the ephemeral range, from which every outgoing connection
    also takes its local port: between choosing it and the service binding it, a client socket can take it
    ("Address already in use"). Ports below that range are only ever taken by an explicit bind.
    """
    low, high = STACK_PORTS
    try:
        ephemeral_low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral_low = 32768
    if ephemeral_low <= low:  # an unusual kernel setting: choose below it, still above the privileged ports
        low, high = 1024, ephemeral_low - 1
    high = min(high, ephemeral_low - 1)
    for _ in range(200 if high > low else 0):
        port = random.randint(low, high)
        if port in taken or port in _RESERVED:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        if _reserve(port):  # free now, and no other stack chose it before its service binds it
            return port
    for _ in range(200):  # no room below the ephemeral range: let the kernel choose
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            if (port := s.getsockname()[1]) not in taken:
                return port
    raise StackError(f"no free TCP port on 127.0.0.1 outside {sorted(taken)}")


def log_tail(path: Path | None, lines: int = LOG_TAIL) -> str:
    if not path or not Path(path).exists():
        return "(no log)"
    text = Path(path).read_text(errors="replace").splitlines()[-lines:]
    return "\n    ".join(text) if text else "(log is empty)"


@dataclass
class Service:
    """One process of the stack."""

    name: str
    command: Sequence[str]
    log_path: Path
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    url: str = ""
    version: str | None = None
    process: subprocess.Popen | None = None

    def start(self) -> Service:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        out = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child; closed in stop()
        log.info("starting %s: %s", self.name, " ".join(self.command))
        try:
            self.process = subprocess.Popen(
                list(self.command),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **self.env},
                cwd=self.cwd,
                start_new_session=True,
            )
        except OSError as exc:
            out.close()
            raise StackError(f"cannot start {self.name} ({self.command[0]}): {exc.strerror}") from exc
        self._log_file = out
        return self

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, grace: float = STOP_GRACE_S) -> None:
        """SIGTERM the process group, SIGKILL it after ``grace`` seconds; idempotent."""
        if self.process is None:
            return
        stop_group(self.process.pid, grace)
        try:
            self.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
        if getattr(self, "_log_file", None):
            self._log_file.close()
        self.process = None


def stop_group(pid: int, grace: float = STOP_GRACE_S) -> None:
    """Stop the process group led by ``pid``: SIGTERM, then SIGKILL once ``grace`` seconds pass."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return
        try:  # reap the leader if it is our child, so killpg(…, 0) can see it gone
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@dataclass
class Probe:
    """What one readiness poll saw."""

    ok: bool
    seen: str


def http_probe(
    url: str,
    *,
    expect_status: int | None = 200,  # None: any HTTP answer
    headers: Mapping[str, str] | None = None,
    check: Callable[[requests.Response], bool] | None = None,
    timeout: float = 2.0,
) -> Callable[[], Probe]:
    def probe() -> Probe:
        try:
            r = requests.get(url, headers=dict(headers or {}), timeout=timeout, allow_redirects=False)
        except requests.RequestException as exc:
            return Probe(False, f"{type(exc).__name__}")
        ok = (expect_status is None or r.status_code == expect_status) and (check is None or check(r))
        return Probe(ok, f"HTTP {r.status_code} {r.text[:120]!r}")

    return probe


def wait_ready(
    service: Service, probe: Callable[[], Probe], *, expected: str, deadline_s: float, hint: str = ""
) -> None:
    """Poll ``probe`` until it passes, the process exits, or ``deadline_s`` passes (then raise StackError)."""

    def attempt() -> bool | NotYet:
        if service.process is not None and service.process.poll() is not None:
            raise _Exited(f"the process exited with code {service.process.returncode}")
        seen = probe()
        return True if seen.ok else NotYet(seen.seen)

    try:
        poll(attempt, timeout_s=deadline_s, interval_s=READY_POLL_S, what=f"{service.name} to be ready")
    except (PollTimeout, _Exited) as exc:
        last = exc.seen
        raise StackError(
            f"{service.name} at {service.url} was not ready within {deadline_s:.0f} s: expected {expected}, "
            f"last saw {last}"
            + (f" ({hint})" if hint else "")
            + f"; log {service.log_path}:\n    {log_tail(service.log_path)}"
        ) from None


class _Exited(Exception):
    """The service's process ended while we waited for it; ``seen`` says how."""

    def __init__(self, seen: str) -> None:
        self.seen = seen
        super().__init__(seen)
