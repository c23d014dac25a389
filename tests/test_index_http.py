"""The index client's HTTP layer (bot/lock/index/http.py) against a real loopback server: keep-alive
reuse, one DNS look-up per host, redirects, gzip, a server closing an idle connection, and TLS
verified against a configured bundle."""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import ipaddress
import select
import socket
import ssl
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from bot.core.errors import IndexError_
from bot.lock.index.http import Http
from bot.lock.index.limits import LimitExceeded, Limits


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        return

    def _send(self, status: int, body: bytes, **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        with self.server.lock:
            self.server.paths.append(self.path)
            self.server.peers.add(self.client_address)
        if self.path == "/gzip":
            self._send(200, gzip.compress(b"x" * 1000), Content_Encoding="gzip")
        elif self.path == "/plain-for-identity":
            encoding = self.headers.get("Accept-Encoding", "")
            self._send(200, encoding.encode())
        elif self.path.startswith("/redirect/"):
            left = int(self.path.rsplit("/", 1)[1])
            target = f"/redirect/{left - 1}" if left else "/done"
            self._send(301, b"", Location=target)
        elif self.path == "/private":
            expected = "Basic " + base64.b64encode(b"me:p@ss").decode()
            if self.headers.get("Authorization") == expected:
                self._send(200, b"secret")
            else:
                self._send(401, b"", WWW_Authenticate='Basic realm="index"')
        elif self.path == "/to-private":
            self._send(302, b"", Location="/private")
        elif self.path.startswith("/elsewhere/"):
            self._send(302, b"", Location=f"http://127.0.0.1:{self.path.split('/')[2]}/private")
        elif self.path == "/to-bad-port":
            self._send(302, b"", Location="http://127.0.0.1:99999/x")
        elif self.path == "/to-bad-ipv6":
            self._send(302, b"", Location="http://[::1/x")
        elif self.path == "/then-close":
            # keep-alive promised, then the server drops the connection anyway (as servers
            # do with idle connections)
            self._send(200, b"ok")
            self.close_connection = True
        else:
            self._send(200, self.path.encode())


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        context: ssl.SSLContext | None = None,
        handler: type[BaseHTTPRequestHandler] = _Handler,
    ) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.lock = threading.Lock()
        self.paths: list[str] = []
        self.peers: set[tuple[str, int]] = set()  #: one per TCP connection
        if context is not None:
            self.socket = context.wrap_socket(self.socket, server_side=True)
        self.port = self.server_address[1]
        self.thread = threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        self.thread.join()


@pytest.fixture
def server() -> Iterator[_Server]:
    srv = _Server()
    yield srv
    srv.stop()


def test_connections_are_reused_and_hosts_resolved_once(
    server: _Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real = socket.getaddrinfo

    def counting(host: str, *args: object, **kwargs: object) -> object:
        calls.append(host)
        return real(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", counting)
    http = Http(max_connections=4)
    try:
        with ThreadPoolExecutor(8) as pool:
            bodies = list(
                pool.map(
                    lambda i: http.get(f"http://localhost:{server.port}/n/{i}").content, range(40)
                )
            )
    finally:
        http.close()
    assert bodies == [f"/n/{i}".encode() for i in range(40)]
    assert calls.count("localhost") == 1
    assert http.pool.opened <= 4  # never more than max_connections per host
    assert len(server.peers) == http.pool.opened


def test_redirects_gzip_and_identity(server: _Server) -> None:
    http = Http()
    try:
        resp = http.get(f"http://127.0.0.1:{server.port}/redirect/3")
        assert resp.url == f"http://127.0.0.1:{server.port}/done"
        assert resp.content == b"/done"
        assert http.get(f"http://127.0.0.1:{server.port}/gzip").content == b"x" * 1000
        identity = {"Accept-Encoding": "identity"}
        url = f"http://127.0.0.1:{server.port}/plain-for-identity"
        assert http.get(url, headers=identity).content == b"identity"
        with pytest.raises(IndexError_, match="more than 10 redirects") as info:
            Http(retries=0).get(f"http://127.0.0.1:{server.port}/redirect/11")
        assert info.value.where == f"http://127.0.0.1:{server.port}/redirect/11"
    finally:
        http.close()


def test_a_body_streams_into_a_sink_within_the_limits(server: _Server, tmp_path: Path) -> None:
    http = Http()
    try:
        with (tmp_path / "body").open("w+b") as sink:
            sink.write(b"left over from an earlier attempt")
            resp = http.get(f"http://127.0.0.1:{server.port}/gzip", sink=sink)
            assert resp.content == b""  # nothing kept in memory
            sink.seek(0)
            assert sink.read() == b"x" * 1000  # decoded, and only this answer's body
            # through redirects: only the final response's body
            http.get(f"http://127.0.0.1:{server.port}/redirect/2", sink=sink)
            sink.seek(0)
            assert sink.read() == b"/done"
    finally:
        http.close()
    small = Http(retries=0, limits=Limits(download=500))
    try:
        with (tmp_path / "big").open("w+b") as sink, pytest.raises(LimitExceeded):
            small.get(f"http://127.0.0.1:{server.port}/gzip", sink=sink)  # 1000 decoded
    finally:
        small.close()


@pytest.mark.parametrize("path", ["/to-bad-port", "/to-bad-ipv6"])
def test_a_redirect_to_a_malformed_url_is_one_error(server: _Server, path: str) -> None:
    with pytest.raises(IndexError_, match="unusable URL") as info:
        Http(retries=0).get(f"http://127.0.0.1:{server.port}{path}")
    assert "malformed URL" in str(info.value)


def test_credentials_in_the_url_are_basic_auth_for_that_origin_only(server: _Server) -> None:
    other = _Server()
    http = Http(retries=0)
    try:
        base = f"http://me:p%40ss@127.0.0.1:{server.port}"
        assert http.get(f"{base}/private").content == b"secret"
        assert http.get(f"{base}/to-private").content == b"secret"  # same origin: kept
        with pytest.raises(IndexError_, match="HTTP 401"):
            http.get(f"http://127.0.0.1:{server.port}/private")
        with pytest.raises(IndexError_, match="HTTP 401"):  # another origin: never sent
            http.get(f"{base}/elsewhere/{other.port}")
        assert other.paths == ["/private"]
    finally:
        http.close()
        other.stop()


def test_a_kept_alive_connection_the_server_closed_is_replaced(server: _Server) -> None:
    http = Http(retries=0)  # no retry budget: the reconnect must not need one
    try:
        assert http.get(f"http://127.0.0.1:{server.port}/then-close").content == b"ok"
        assert http.get(f"http://127.0.0.1:{server.port}/after").content == b"/after"
    finally:
        http.close()
    assert server.paths == ["/then-close", "/after"]
    assert http.pool.opened == 2


def test_unreachable_hosts_are_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    real = socket.getaddrinfo

    def no_dns(host: str, *args: object, **kwargs: object) -> object:
        if host == "no-such-host.invalid":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    http = Http(retries=1, backoff=0.01)
    with pytest.raises(IndexError_, match=r"cannot resolve no-such-host\.invalid") as info:
        http.get("http://no-such-host.invalid/simple/", what="the page")
    assert "after 2 attempts" in info.value.message
    closed = _Server()
    port = closed.port
    closed.stop()
    with pytest.raises(IndexError_, match="connection failed") as info:
        http.get(f"http://127.0.0.1:{port}/simple/")
    assert info.value.where == f"http://127.0.0.1:{port}/simple/"


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[_Server, Path]]:
    """A loopback HTTPS server with a self-signed certificate for localhost, and that
    certificate (trusted by nothing until a test says so)."""
    cert, key = _self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    srv = _Server(context)
    yield srv, cert
    srv.stop()


def test_tls_is_verified_against_the_configured_bundle(
    tls_server: tuple[_Server, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    srv, cert = tls_server
    url = f"https://localhost:{srv.port}/tls"
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("NIX_SSL_CERT_FILE", raising=False)
    with pytest.raises(IndexError_, match="CERTIFICATE_VERIFY_FAILED"):
        Http(retries=0).get(url)  # the system store does not know our certificate
    monkeypatch.setenv("NIX_SSL_CERT_FILE", str(cert))
    http = Http()
    try:
        assert http.get(url).content == b"/tls"
        assert http.get(url).content == b"/tls"
    finally:
        http.close()
    assert http.pool.opened == 1
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "missing.pem"))
    with pytest.raises(IndexError_, match=r"cannot read the certificates in \$SSL_CERT_FILE"):
        Http().get(url)


def test_certificates_loading_in_the_background_are_used_and_their_errors_reported(
    tls_server: tuple[_Server, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.lock.index.http import load_certificates

    srv, cert = tls_server
    url = f"https://localhost:{srv.port}/early"
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    loading = load_certificates()
    http = Http(certificates=loading)
    try:
        assert http.get(url).content == b"/early"
        assert http.pool.context() is loading.result()
    finally:
        http.close()
    # a bad bundle named in the environment: the same clear error as without a head start
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "missing.pem"))
    with pytest.raises(IndexError_, match=r"cannot read the certificates in \$SSL_CERT_FILE"):
        Http(retries=0, certificates=load_certificates()).get(url)


# --- proxies ---------------------------------------------------------------------------------


class _ProxyHandler(BaseHTTPRequestHandler):
    """A forward proxy: CONNECT tunnels (relayed byte for byte) and absolute-URL GETs
    (answered by the proxy itself, echoing the URL it was asked for)."""

    protocol_version = "HTTP/1.1"
    server: _ProxyServer

    def log_message(self, format: str, *args: object) -> None:
        return

    def _allowed(self) -> bool:
        with self.server.lock:
            self.server.requests.append(
                (self.command, self.path, self.headers.get("Proxy-Authorization"))
            )
        if self.headers.get("Proxy-Authorization") == self.server.auth:
            return True
        self.send_response(407)
        self.send_header("Proxy-Authenticate", 'Basic realm="proxy"')
        self.send_header("Content-Length", "0")
        self.end_headers()
        return False

    def do_GET(self) -> None:
        if self._allowed():
            body = f"via proxy: {self.path}".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def do_CONNECT(self) -> None:
        if not self._allowed():
            return
        host, _, port = self.path.rpartition(":")
        upstream = socket.create_connection((host, int(port)))
        self.send_response(200, "Connection established")
        self.end_headers()
        self.close_connection = True
        ends = [self.connection, upstream]
        try:
            while True:
                readable, _, _ = select.select(ends, [], [])
                for end in readable:
                    data = end.recv(65536)
                    if not data:
                        return
                    (upstream if end is self.connection else self.connection).sendall(data)
        finally:
            upstream.close()


class _ProxyServer(_Server):
    def __init__(self, auth: str | None) -> None:
        self.auth = auth
        self.requests: list[tuple[str, str, str | None]] = []
        super().__init__(handler=_ProxyHandler)


@pytest.fixture
def proxy() -> Iterator[_ProxyServer]:
    srv = _ProxyServer(auth="Basic " + base64.b64encode(b"me:p@ss").decode())
    yield srv
    srv.stop()


def test_https_goes_through_a_connect_tunnel_of_the_https_proxy(
    proxy: _ProxyServer, tls_server: tuple[_Server, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    srv, cert = tls_server
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    monkeypatch.setenv("HTTPS_PROXY", f"http://me:p%40ss@127.0.0.1:{proxy.port}")
    http = Http(retries=0)
    try:
        # TLS end to end through the tunnel: the server's certificate is checked for localhost
        assert http.get(f"https://localhost:{srv.port}/tunnelled").content == b"/tunnelled"
        assert http.get(f"https://localhost:{srv.port}/again").content == b"/again"
    finally:
        http.close()
    assert proxy.requests == [("CONNECT", f"localhost:{srv.port}", proxy.auth)]  # kept alive
    assert srv.paths == ["/tunnelled", "/again"]


def test_plain_http_asks_the_http_proxy_for_the_whole_url(
    proxy: _ProxyServer, server: _Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("http_proxy", f"http://me:p%40ss@127.0.0.1:{proxy.port}")
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # the lower-case one wins
    http = Http(retries=0)
    try:
        resp = http.get(f"http://idx.example:{server.port}/simple/?q=1")
    finally:
        http.close()
    assert resp.content == f"via proxy: http://idx.example:{server.port}/simple/?q=1".encode()
    assert proxy.requests == [("GET", f"http://idx.example:{server.port}/simple/?q=1", proxy.auth)]
    assert server.paths == []  # the proxy answered; the index was never asked directly


def test_no_proxy_hosts_are_reached_directly(
    proxy: _ProxyServer, server: _Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALL_PROXY", f"http://127.0.0.1:{proxy.port}")
    monkeypatch.setenv("NO_PROXY", "pypi.org, 127.0.0.0/8")
    http = Http(retries=0)
    try:
        assert http.get(f"http://127.0.0.1:{server.port}/direct").content == b"/direct"
    finally:
        http.close()
    assert proxy.requests == []
    assert server.paths == ["/direct"]


def test_a_proxy_that_refuses_is_one_clear_error(
    proxy: _ProxyServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("https_proxy", f"http://127.0.0.1:{proxy.port}")  # no credentials
    with pytest.raises(IndexError_) as info:
        Http(retries=0).get("https://pypi.example/simple/", what="the page")
    assert "https://pypi.example/simple/" in str(info.value)
    assert "407" in str(info.value)
    assert "through the proxy in $https_proxy" in str(info.value)


@pytest.mark.parametrize("value", ["socks5://me:secret@127.0.0.1:1080", "http://:3128", "x:y:z"])
def test_an_unusable_proxy_setting_is_one_clear_error(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", value)
    with pytest.raises(IndexError_, match=r"unsupported proxy .* in \$HTTPS_PROXY") as info:
        Http()
    assert "secret" not in str(info.value)


@pytest.mark.parametrize(
    ("host", "port", "no_proxy", "bypassed"),
    [
        ("pypi.org", 443, "", False),
        ("pypi.org", 443, "*", True),
        ("pypi.org", 443, "pypi.org", True),
        ("files.pypi.org", 443, "pypi.org", True),
        ("files.pypi.org", 443, ".pypi.org", True),
        ("files.pypi.org", 443, "*.pypi.org", True),
        ("notpypi.org", 443, "pypi.org", False),
        ("pypi.org", 443, "example.com, pypi.org:443", True),
        ("pypi.org", 443, "pypi.org:8443", False),
        ("PyPI.org.", 443, "pypi.org", True),
        ("10.1.2.3", 80, "10.0.0.0/8", True),
        ("10.1.2.3", 80, "10.1.2.4", False),
        ("::1", 80, "[::1]:80", True),
        ("::1", 80, "::1", True),
        ("fd00::5", 80, "fd00::/8", True),
        ("10.1.2.3", 80, "example.com", False),
    ],
)
def test_no_proxy_matching(host: str, port: int, no_proxy: str, bypassed: bool) -> None:
    from bot.lock.index.proxies import Proxies

    proxies = Proxies({"https_proxy": "http://proxy:3128", "http_proxy": "http://proxy:3128"})
    proxies_with = Proxies({"all_proxy": "http://proxy:3128", "no_proxy": no_proxy})
    assert proxies.for_target("https", host, port) is not None
    assert (proxies_with.for_target("https", host, port) is None) is bypassed
