"""Running the ``smsconnector`` command in processes of its own, for the CLI and worker tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx


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
