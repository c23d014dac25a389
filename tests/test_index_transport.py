"""The resolving transport: one DNS look-up per host for a whole run."""

from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from bot.index.transport import ResolvingTransport
from tests.plugins.pypi import IndexServer, make_wheel


def test_each_host_is_resolved_once(
    pypi_index: IndexServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pypi_index.publish(make_wheel(tmp_path, "demo", "1.0"))
    calls: list[str] = []
    real = socket.getaddrinfo

    def counting(host: str, *args: object, **kwargs: object) -> object:
        calls.append(host)
        return real(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", counting)
    limits = httpx.Limits(max_connections=8, max_keepalive_connections=0)
    url = f"http://localhost:{pypi_index.port}/simple/demo/"
    with (
        httpx.Client(transport=ResolvingTransport(limits=limits)) as client,
        ThreadPoolExecutor(8) as pool,
    ):
        statuses = list(pool.map(lambda _: client.get(url).status_code, range(16)))
    assert statuses == [200] * 16
    assert calls.count("localhost") == 1


def test_errors_are_httpx_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = socket.getaddrinfo

    def no_dns(host: str, *args: object, **kwargs: object) -> object:
        if host == "no-such-host.invalid":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    limits = httpx.Limits(max_connections=1)
    with httpx.Client(transport=ResolvingTransport(limits=limits)) as client:
        with pytest.raises(httpx.ConnectError, match="cannot resolve"):
            client.get("http://no-such-host.invalid/simple/")
        server = IndexServer(tmp_path)
        port = server.port
        server.close()
        with pytest.raises(httpx.ConnectError):
            client.get(f"http://127.0.0.1:{port}/simple/")
