"""HTTP/2 (prior knowledge on the plain port) and WebSocket (`GET /realtime`), with real
clients: httpx with h2, curl --http2-prior-knowledge, the `websockets` client, and raw
sockets for bad input. The REST suite itself also runs over HTTP/2 (PG_REST_HTTP2=1, see
the Makefile); these are the protocol's own cases."""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import subprocess
import time

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def h2_client(pg, **kw) -> httpx.Client:
    return httpx.Client(base_url=pg.base_url, http1=False, http2=True, timeout=10, **kw)


# --------------------------------------------------------------------------------------
# HTTP/2
# --------------------------------------------------------------------------------------


def test_h2_prior_knowledge_serves_the_same_rows_as_http1(pg):
    with h2_client(pg) as c:
        r2 = c.get("/books?id=eq.1")
    r1 = pg.get("/books?id=eq.1")
    assert r2.http_version == "HTTP/2"
    assert r2.status_code == 200
    assert r2.json() == r1.json() and r2.json()[0]["id"] == 1
    assert r2.headers["content-type"] == r1.headers["content-type"]
    assert int(r2.headers["content-length"]) == len(r2.content)
    assert "connection" not in r2.headers


def test_curl_http2_prior_knowledge(pg):
    out = subprocess.run(
        ["curl", "-sS", "--http2-prior-knowledge", "-o", "/dev/null",
         "-w", "%{http_version} %{http_code}", f"{pg.base_url}/books"],
        capture_output=True, text=True, timeout=20)
    assert out.stdout == "2 200", out.stderr


def test_many_concurrent_streams_on_one_connection(pg):
    async def main():
        async with httpx.AsyncClient(base_url=pg.base_url, http1=False, http2=True,
                                     timeout=20) as c:
            rs = await asyncio.gather(*(c.get(f"/books?id=eq.{1 + i % 5}") for i in range(50)))
        return rs
    rs = asyncio.run(main())
    assert all(r.status_code == 200 and r.http_version == "HTTP/2" for r in rs)
    assert [r.json()[0]["id"] for r in rs] == [1 + i % 5 for i in range(50)]


def test_h2_write_error_and_head(pg):
    with h2_client(pg) as c:
        bad = c.get("/no_such_table")
        head = c.head("/books")
        get = c.get("/books")
        created = c.post("/rpc/add_them", json={"a": 2, "b": 3},
                         headers={"Content-Profile": "shop"})
    assert bad.status_code == 404 and bad.json()["code"] == "PGRST205"
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == get.headers["content-length"]
    assert created.status_code == 200 and created.json() == 5


def test_h2_body_over_max_body_size_is_413(pg):
    with pg.reload_with(max_body_size="1kB"):
        with h2_client(pg) as c:
            r = c.post("/rpc/add_them", content=b"x" * 5000,
                       headers={"Content-Type": "application/json", "Content-Profile": "shop"})
            after = c.get("/books?id=eq.1")
    assert r.status_code == 413
    assert after.status_code == 200


def test_h2_large_response_is_streamed_whole(pg):
    # ~1 MB of JSON: many flow-control windows of the client's default 64 kB.
    with h2_client(pg) as c:
        r = c.get("/big")
    assert r.status_code == 200
    rows = r.json()
    assert len(rows) == 1000 and rows[-1]["n"] == 1000 and len(rows[0]["pad"]) == 1000


def test_bad_frames_after_the_preface_get_goaway_and_close(pg):
    with socket.create_connection(("127.0.0.1", pg.http_port), timeout=5) as s:
        s.sendall(H2_PREFACE + b"\x00\x00\x04\x01\x00\x00\x00\x00\x00garbage!!")
        got = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
    # SETTINGS then GOAWAY (type 7) from the server, then EOF.
    frame_types = []
    i = 0
    while i + 9 <= len(got):
        length = int.from_bytes(got[i:i + 3], "big")
        frame_types.append(got[i + 3])
        i += 9 + length
    assert 7 in frame_types, frame_types
    assert pg.get("/books").status_code == 200


def test_a_truncated_preface_is_not_taken_for_http1(pg):
    # A client that sent part of the preface and waits: no 400/505 answer, it just waits.
    with socket.create_connection(("127.0.0.1", pg.http_port), timeout=2) as s:
        s.sendall(H2_PREFACE[:10])
        s.settimeout(1.0)
        with pytest.raises(socket.timeout):
            s.recv(100)


def test_h2load_many_streams(pg):
    out = subprocess.run(
        ["h2load", "-n", "400", "-c", "4", "-m", "10", f"{pg.base_url}/books?id=eq.1"],
        capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "400 succeeded, 0 failed, 0 errored" in out.stdout, out.stdout
    assert "status codes: 400 2xx" in out.stdout, out.stdout


# --------------------------------------------------------------------------------------
# WebSocket
# --------------------------------------------------------------------------------------


def ws_url(pg) -> str:
    return f"ws://127.0.0.1:{pg.http_port}/realtime"


def test_websocket_ping_pong_and_error_events(pg):
    async def main():
        async with websockets.connect(ws_url(pg), open_timeout=5) as ws:
            await ws.send(json.dumps({"op": "ping"}))
            pong = json.loads(await asyncio.wait_for(ws.recv(), 5))
            await ws.send(json.dumps({"op": "subscribe", "id": "s1", "table": "public.books"}))
            err = json.loads(await asyncio.wait_for(ws.recv(), 5))
            await ws.send("not json")
            bad = json.loads(await asyncio.wait_for(ws.recv(), 5))
            # A protocol-level ping is answered by a pong frame.
            latency = await asyncio.wait_for(await ws.ping(), 5)
            return pong, err, bad, latency
    pong, err, bad, latency = asyncio.run(main())
    assert pong == {"op": "pong"}
    # This cluster's wal_level is replica: realtime says so, REST is unaffected.
    assert err["op"] == "error" and err["id"] == "s1" and err["code"] == "unavailable"
    assert "wal_level" in err["message"]
    assert bad["op"] == "error" and bad["code"] == "invalid_message"
    assert latency >= 0


def test_websocket_fragmented_message_is_reassembled(pg):
    async def main():
        async with websockets.connect(ws_url(pg), open_timeout=5) as ws:
            await ws.send(iter(['{"op"', ':"pi', 'ng"}']))
            return json.loads(await asyncio.wait_for(ws.recv(), 5))
    assert asyncio.run(main()) == {"op": "pong"}


def test_websocket_close_handshake(pg):
    async def main():
        ws = await websockets.connect(ws_url(pg), open_timeout=5)
        await ws.close(code=1000, reason="bye")
        return ws.close_code, ws.protocol.close_rcvd
    code, rcvd = asyncio.run(main())
    assert code == 1000 and rcvd is not None and rcvd.code == 1000


def test_websocket_message_over_the_limit_is_closed_1009(pg):
    async def main():
        async with websockets.connect(ws_url(pg), open_timeout=5, max_size=None) as ws:
            await ws.send("x" * 20000)
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 5)
            return closed.value.rcvd.code
    with pg.reload_with(max_body_size="16kB"):
        assert asyncio.run(main()) == 1009


def raw_ws(pg) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", pg.http_port), timeout=5)
    s.sendall(b"GET /realtime HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
              b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
              b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)
    assert head.startswith(b"HTTP/1.1 101 "), head
    assert b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in head
    return s


def client_frame(opcode: int, payload: bytes) -> bytes:
    mask = b"\x01\x02\x03\x04"
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    n = len(payload)
    if n < 126:
        length = bytes([0x80 | n])
    elif n < 65536:
        length = bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        length = bytes([0x80 | 127]) + struct.pack("!Q", n)
    return bytes([0x80 | opcode]) + length + mask + masked


def read_close_code(s: socket.socket) -> int:
    data = b""
    deadline = time.time() + 5
    while time.time() < deadline:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
        if len(data) >= 4 and data[0] & 0x0F == 8:
            return struct.unpack("!H", data[2:4])[0]
    raise AssertionError(f"no close frame: {data!r}")


def test_websocket_invalid_utf8_is_closed_1007(pg):
    with raw_ws(pg) as s:
        s.sendall(client_frame(0x1, b"\xff\xfe\xfd"))
        assert read_close_code(s) == 1007


def test_websocket_binary_is_closed_1003(pg):
    with raw_ws(pg) as s:
        s.sendall(client_frame(0x2, b"\x00\x01"))
        assert read_close_code(s) == 1003


def test_websocket_unknown_opcode_is_closed_1002_at_once(pg):
    # A frame header tungstenite cannot parse stays in its buffer and fails every read: after
    # the close frame the server ends the connection at once instead of re-reading it (a busy
    # worker) until its 2 s close wait.
    with raw_ws(pg) as s:
        s.sendall(client_frame(0x3, b""))
        assert read_close_code(s) == 1002
        s.settimeout(1.0)
        assert s.recv(4096) == b""


def test_websocket_client_that_never_reads_is_dropped(pg):
    # Pings whose pongs are never read: the server's output reaches its bound, then it
    # closes (1008, or just drops the socket when not even that fits); others are served.
    with raw_ws(pg) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        ping = client_frame(0x1, json.dumps({"op": "ping"}).encode())
        s.settimeout(0.5)
        closed = False
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                s.sendall(ping * 200)
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            except socket.timeout:
                # The server stopped reading too: check it closed the socket.
                pass
        if not closed:
            # Drain: the stream must end (the server closed it).
            s.settimeout(5)
            try:
                while s.recv(65536):
                    pass
                closed = True
            except (ConnectionResetError, socket.timeout):
                closed = True
        assert closed
    assert pg.get("/books").status_code == 200


def test_websocket_bad_handshakes(pg):
    base = {"Upgrade": "websocket", "Connection": "Upgrade",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
    old = pg.get("/realtime", headers={**base, "Sec-WebSocket-Version": "8"})
    no_key = pg.get("/realtime", headers={"Upgrade": "websocket", "Connection": "Upgrade",
                                          "Sec-WebSocket-Version": "13"})
    assert old.status_code == 426 and old.json()["message"].startswith("Only WebSocket")
    assert no_key.status_code == 400


def test_realtime_without_logical_wal_is_503_and_said_once(pg):
    # This cluster runs wal_level = replica: realtime streams say why, REST is unaffected.
    r = httpx.get(f"{pg.base_url}/realtime/public.books", timeout=5)
    assert r.status_code == 503 and "wal_level" in r.json()["message"]
    assert httpx.get(f"{pg.base_url}/books", timeout=5).status_code == 200
    # Once per server start (other tests restart it), not once per request.
    log = pg.log_text()
    said = log.count("wal_level is below logical, so realtime is off")
    assert 1 <= said <= log.count("database system is ready to accept connections")
