"""Running the ``smsconnector`` command in processes of its own, for the CLI and worker tests."""

from __future__ import annotations

import socket

import httpx


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
