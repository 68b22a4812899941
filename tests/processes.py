"""Running the ``smsconnector`` command in processes of its own, for the CLI and worker tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from smsconnector.testing import eventually


def command_env(**settings: str) -> dict[str, str]:
    """This environment without its ``SMSCONNECTOR_`` variables, plus ``settings``: a command then reads only
    the configuration the test gives it."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith("SMSCONNECTOR_")}, **settings}


def upgrade(env: dict[str, str], cwd: Path | None = None) -> None:
    """``smsconnector db upgrade``, as a user runs it before the first start."""
    subprocess.run([sys.executable, "-m", "smsconnector.cli", "db", "upgrade"], cwd=cwd, env=env, check=True,
                   capture_output=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def healthy(base: str) -> bool:
    """Whether a server answers ``/healthz`` at ``base`` yet."""
    try:
        return httpx.get(f"{base}/healthz").status_code == 200
    except httpx.TransportError:
        return False


@dataclass(frozen=True)
class Served:
    """A running ``smsconnector serve``: where it listens, and the file its output goes to."""

    url: str
    output: Path

    def logged(self) -> str:
        return self.output.read_text()


@contextmanager
def serving(folder: Path, configuration: str, *args: str) -> Iterator[Served]:
    """``smsconnector serve *args`` on a free loopback port with ``configuration`` as its ./smsconnector.toml,
    migrated first, until the block ends (then SIGTERM, as a process manager stops it). Its output goes to a file:
    a pipe nobody reads would fill and stop it."""
    (folder / "smsconnector.toml").write_text(configuration)
    env = command_env()
    upgrade(env, cwd=folder)
    port = free_port()
    served = Served(f"http://127.0.0.1:{port}", folder / "serve.log")
    with served.output.open("w") as said:
        process = subprocess.Popen([sys.executable, "-m", "smsconnector.cli", "serve", "--port", str(port), *args],
                                   cwd=folder, env=env, stdout=said, stderr=subprocess.STDOUT)
    try:
        eventually(lambda: process.poll() is not None or healthy(served.url), timeout=30)
        assert process.poll() is None, served.logged()
        yield served
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
