"""A real `jinarag serve` process for the tests that need one: a free port of 127.0.0.1, and
stopped by its PID."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def wait_until_busy(pid: int, cpu: float, within: float = 120.0) -> None:
    """Wait until process ``pid`` has used ``cpu`` more seconds of CPU time than at the call.
    CPU time, not wall time: on a busy machine the process gets there later, not sooner."""
    start, deadline = cpu_seconds(pid), time.monotonic() + within
    while cpu_seconds(pid) - start < cpu:
        assert time.monotonic() < deadline, f"{pid} used under {cpu} s of CPU in {within} s"
        time.sleep(0.05)


def wait_until_idle(pid: int, within: float = 120.0, window: float = 1.0) -> None:
    """Wait until process ``pid`` uses under 0.1 s of CPU time in ``window`` seconds. A process
    that is still working gets its share of the cores however busy the machine is (with two
    cores and a few other busy processes, several tenths of a second per second), so it cannot
    pass for idle."""
    deadline = time.monotonic() + within
    last = cpu_seconds(pid)
    while True:
        time.sleep(window)
        now = cpu_seconds(pid)
        if now - last < 0.1:
            return
        assert time.monotonic() < deadline, f"{pid} was still busy after {within} s"
        last = now


def counter(url: str, name: str) -> float:
    """The sum of a counter's samples (every label) in a server's ``/metrics``."""
    text = httpx.get(f"{url}/metrics", timeout=30).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith((f"{name} ", f"{name}{{"))
    )


def exit_cpu_seconds(process: subprocess.Popen, within: float = 120.0) -> float:
    """Wait for ``process`` to exit; the CPU time it used in all (user + system)."""
    deadline = time.monotonic() + within
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            process.returncode = os.waitstatus_to_exitcode(status)
            return usage.ru_utime + usage.ru_stime
        assert time.monotonic() < deadline, f"{process.pid} did not exit in {within} s"
        time.sleep(0.05)


# A vector component this close to 0 may take either sign when it is computed in another batch
# or another process (float32 rounding; MiniLM has a few dimensions that are always about 0);
# every other component's sign bit is exact.
SIGN_ATOL = 1e-6


def sign_bits(packed: np.ndarray, offset: int = 0) -> np.ndarray:
    """Packed sign bits unpacked as LlamaIndex's JinaEmbedding does (``offset`` 128 for the
    signed "binary" bytes, 0 for "ubinary")."""
    return np.unpackbits((np.asarray(packed) + offset).astype(np.uint8), axis=1)


def assert_packed_signs(packed: np.ndarray, expected: np.ndarray, floats: np.ndarray) -> None:
    """``packed`` equals ``expected`` (the packed signs of ``floats``) in every byte whose eight
    components are more than SIGN_ATOL from 0, and those are most of them."""
    clear = (np.abs(floats) > SIGN_ATOL).reshape(len(floats), -1, 8).all(axis=-1)
    assert clear.mean() > 0.8, clear.mean()
    np.testing.assert_array_equal(np.asarray(packed)[clear], np.asarray(expected)[clear])


def assert_sign_bits(bits: np.ndarray, floats: np.ndarray) -> None:
    """``bits`` is ``floats > 0`` for every component more than SIGN_ATOL from 0."""
    clear = np.abs(floats) > SIGN_ATOL
    assert clear.mean() > 0.95, clear.mean()
    np.testing.assert_array_equal(np.asarray(bits)[clear], (floats > 0)[clear])


class Server:
    """`jinarag serve ARGS...` in a subprocess on a free port of 127.0.0.1.

    ``args`` are the command's options besides ``--port`` (e.g. ``["--model", path]``); ``env``
    adds environment variables. Ready once ``GET /health`` answers.
    """

    def __init__(self, args: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        command = [sys.executable, "-m", "jinarag.cli", "serve", *args, "--port", str(self.port)]
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
            )
        self.pid = self.process.pid
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"jinarag serve exited:\n{log.read_text()[-3000:]}")
            try:
                httpx.get(f"{self.url}/health", timeout=2)
                return
            except httpx.TransportError:
                time.sleep(0.25)
        self.stop()
        raise AssertionError(f"jinarag serve did not answer in 180 s:\n{log.read_text()[-3000:]}")

    def post(self, path: str, payload: dict, timeout: float = 60, **kwargs) -> httpx.Response:
        return httpx.post(f"{self.url}{path}", json=payload, timeout=timeout, **kwargs)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
            self.process.wait(timeout=30)
