"""TLS on pg_rest.port (rustls): HTTP/1.1 and HTTP/2 by ALPN, wss://, certificates reloaded
on SIGHUP without dropping connections, a bad file keeping the old material, a client that
hangs mid-handshake, and the key path hidden from non-superusers. Certificates are made at
test time with openssl; the whole module runs with TLS switched on (then off again)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import ssl
import subprocess
import time
from pathlib import Path

import httpx
import psycopg
import pytest
import websockets

from conftest import chown_postgres, ensure_traversable


def make_cert(dir: Path, name: str, cn: str) -> tuple[Path, Path]:
    cert, key = dir / f"{name}.crt", dir / f"{name}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", f"/CN={cn}", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60)
    for p in (cert, key):
        chown_postgres(p)
        os.chmod(p, 0o600)
    return cert, key


@pytest.fixture(scope="module")
def certs(pg, tmp_path_factory):
    dir = tmp_path_factory.mktemp("tls")
    ensure_traversable(dir)
    chown_postgres(dir)
    return {"one": make_cert(dir, "one", "pg-rest-one"),
            "two": make_cert(dir, "two", "pg-rest-two"),
            "dir": dir}


@pytest.fixture(scope="module")
def tls(pg, certs):
    cert, key = certs["one"]
    with pg.reload_with(tls_cert_file=str(cert), tls_key_file=str(key)):
        yield certs


def use_cert(pg, cert: Path, key: Path) -> None:
    """Points both settings at these files and reloads (the module's TLS stays on: a nested
    reload_with would reset them to empty on exit)."""
    pg._alter_system_set("tls_cert_file", str(cert))
    pg._alter_system_set("tls_key_file", str(key))
    pg.reload()


def url(pg, path: str = "/books") -> str:
    return f"https://127.0.0.1:{pg.http_port}{path}"


def context_for(cert: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cert))


def peer_cn(pg, cert: Path) -> str:
    with socket.create_connection(("127.0.0.1", pg.http_port), timeout=5) as raw:
        with context_for(cert).wrap_socket(raw, server_hostname="127.0.0.1") as s:
            subject = dict(x[0] for x in s.getpeercert()["subject"])
            return subject["commonName"]


def test_https_http1(pg, tls):
    with httpx.Client(verify=context_for(tls["one"][0]), timeout=10) as c:
        r = c.get(url(pg, "/books?id=eq.1"))
    assert r.status_code == 200 and r.http_version == "HTTP/1.1"
    assert r.json()[0]["id"] == 1


def test_https_http2_by_alpn(pg, tls):
    with httpx.Client(verify=context_for(tls["one"][0]), http2=True, timeout=10) as c:
        rs = [c.get(url(pg, f"/books?id=eq.{i}")) for i in range(1, 4)]
    assert all(r.http_version == "HTTP/2" and r.status_code == 200 for r in rs)


def test_curl_http2_over_tls(pg, tls):
    out = subprocess.run(
        ["curl", "-sS", "--http2", "--cacert", str(tls["one"][0]), "-o", "/dev/null",
         "-w", "%{http_version} %{http_code}", url(pg)],
        capture_output=True, text=True, timeout=20)
    assert out.stdout == "2 200", out.stderr


def test_wss_ping_pong(pg, tls):
    async def main():
        async with websockets.connect(f"wss://127.0.0.1:{pg.http_port}/realtime",
                                      ssl=context_for(tls["one"][0]), open_timeout=5) as ws:
            await ws.send(json.dumps({"op": "ping"}))
            return json.loads(await asyncio.wait_for(ws.recv(), 5))
    assert asyncio.run(main()) == {"op": "pong"}


def test_a_plain_client_on_the_tls_port_is_not_served(pg, tls):
    with socket.create_connection(("127.0.0.1", pg.http_port), timeout=5) as s:
        s.sendall(b"GET /books HTTP/1.1\r\nHost: x\r\n\r\n")
        got = b""
        try:
            while chunk := s.recv(4096):
                got += chunk
        except ConnectionResetError:
            pass
    assert b"HTTP/1.1 200" not in got and b'"title"' not in got


def test_a_client_hanging_mid_handshake_does_not_block_others(pg, tls):
    hung = socket.create_connection(("127.0.0.1", pg.http_port), timeout=5)
    try:
        # The first bytes of a TLS ClientHello record, then nothing.
        hung.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
        with httpx.Client(verify=context_for(tls["one"][0]), timeout=10) as c:
            for _ in range(5):
                assert c.get(url(pg)).status_code == 200
    finally:
        hung.close()


def test_sighup_loads_a_new_certificate_and_keeps_open_connections(pg, tls):
    one, two = tls["one"], tls["two"]
    with httpx.Client(verify=context_for(one[0]), timeout=10) as old:
        assert old.get(url(pg)).status_code == 200
        assert peer_cn(pg, one[0]) == "pg-rest-one"
        try:
            use_cert(pg, *two)
            # The open connection goes on with the old session.
            assert old.get(url(pg)).status_code == 200
            assert peer_cn(pg, two[0]) == "pg-rest-two"
        finally:
            use_cert(pg, *one)
    assert peer_cn(pg, one[0]) == "pg-rest-one"


def test_a_bad_certificate_file_keeps_the_old_one(pg, tls):
    bad = tls["dir"] / "bad.crt"
    bad.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    chown_postgres(bad)
    offset = pg.log_size()
    try:
        use_cert(pg, bad, tls["one"][1])
        assert peer_cn(pg, tls["one"][0]) == "pg-rest-one"
        log = pg.log_since(offset)
    finally:
        use_cert(pg, *tls["one"])
    assert "bad.crt: not valid PEM" in log and "keep the certificate loaded before" in log, log[-2000:]


def test_the_key_path_is_hidden_from_non_superusers(pg, tls):
    with pg.connect() as conn:
        conn.execute("SET ROLE web_anon")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SHOW pg_rest.tls_key_file")
