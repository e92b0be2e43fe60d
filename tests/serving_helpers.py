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
