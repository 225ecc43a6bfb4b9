"""HTTP/1.1 transport: keep-alive, pipelining, framing, limits, timeouts, connection caps.

Mostly raw sockets (RawHTTP in conftest.py), so that every byte on the wire is ours."""

from __future__ import annotations

import socket
import threading
import time

import httpx

from conftest import (ConnectionClosed, RawHTTP, assert_pgrst_error, build_request,
                      wait_until)


def get_req(target: str, **headers: str) -> bytes:
    return build_request("GET", target, headers or None)


def ids_of(resp) -> list[int]:
    return sorted(row["id"] for row in resp.json())


# ----------------------------------------------------------------------------------------
# Keep-alive and pipelining
# ----------------------------------------------------------------------------------------


def test_keep_alive_three_requests_on_one_connection(pg):
    with pg.raw() as c:
        for n in (1, 2, 3):
            c.send(get_req(f"/books?id=eq.{n}"))
            r = c.read_response()
            assert r.status == 200, r
            assert ids_of(r) == [n]
            assert (r.header("connection") or "").lower() != "close", r


def test_httpx_keep_alive(pg):
    with pg.client(limits=httpx.Limits(max_connections=1)) as c:
        for _ in range(3):
            r = c.get("/books")
            assert r.status_code == 200
            assert len(r.json()) == 5


def test_pipelining_eight_requests_in_one_write(pg):
    ns = [(i % 5) + 1 for i in range(8)]
    data = b"".join(get_req(f"/books?id=eq.{n}") for n in ns)
    with pg.raw() as c:
        c.send(data)
        responses = c.read_responses(["GET"] * 8, timeout=10)
    for n, r in zip(ns, responses):
        assert r.status == 200, r
        assert ids_of(r) == [n], f"response out of order: expected id {n}, got {r.body!r}"


def test_request_sent_byte_by_byte(pg):
    data = get_req("/books?id=eq.3", Accept="application/json")
    with pg.raw() as c:
        for i in range(len(data)):
            c.send(data[i:i + 1])
            time.sleep(0.003)
        r = c.read_response(timeout=10)
    assert r.status == 200, r
    assert ids_of(r) == [3]


def test_head_same_length_no_body_then_pipelined_get(pg):
    with pg.raw() as c:
        c.send(get_req("/books"))
        g = c.read_response()
        assert g.status == 200, g
        length = int(g.header("content-length"))
        assert length == len(g.body)
        # HEAD and a GET in one write: if HEAD sent a body, the GET's status line would break.
        c.send(build_request("HEAD", "/books") + get_req("/books?id=eq.1"))
        h = c.read_response("HEAD")
        assert h.status == 200, h
        assert int(h.header("content-length")) == length
        nxt = c.read_response("GET")
        assert nxt.status == 200, nxt
        assert ids_of(nxt) == [1]


def test_connection_close_then_eof(pg):
    with pg.raw() as c:
        c.send(get_req("/books?id=eq.2", Connection="close"))
        r = c.read_response()
        assert r.status == 200, r
        assert ids_of(r) == [2]
        assert c.wait_eof(5), "server kept the connection open after Connection: close"


def test_chunked_post_body_is_consumed(pg):
    # The body reaches the database whole: the anonymous role may not insert (401 42501).
    body = b'{"id": 99, "title": "x"}'
    chunked = (b"%x\r\n" % 10) + body[:10] + b"\r\n" + (b"%x\r\n" % (len(body) - 10)) + \
        body[10:] + b"\r\n0\r\n\r\n"
    head = build_request("POST", "/books", {"Content-Type": "application/json",
                                             "Transfer-Encoding": "chunked"})
    with pg.raw() as c:
        c.send(head + chunked)
        r = c.read_response()
        assert_pgrst_error(r.status, r.body, 401, "42501")
        # If the chunked body had not been consumed, it would be parsed as the next request.
        c.send(get_req("/books?id=eq.4"))
        r2 = c.read_response()
        assert r2.status == 200, r2
        assert ids_of(r2) == [4]
    assert pg.sql("SELECT count(*) FROM books")[0][0] == 5


def test_many_tiny_chunks_over_many_writes(pg):
    """A chunked body of 3,000 one-byte chunks, sent in 150 writes, is framed correctly (the
    decoder resumes where it stopped instead of re-reading the body each time)."""
    chunks = b"".join(b"1\r\n%c\r\n" % (97 + i % 26) for i in range(3000)) + b"0\r\n\r\n"
    head = build_request("POST", "/books", {"Transfer-Encoding": "chunked"})
    with pg.raw() as c:
        c.send(head)
        step = len(chunks) // 150 + 1
        for i in range(0, len(chunks), step):
            c.send(chunks[i:i + step])
        r = c.read_response()
        # 3,000 letters: read whole, and not JSON.
        err = assert_pgrst_error(r.status, r.body, 400, "PGRST102")
        assert err["message"] == "Empty or invalid json"
        c.send(get_req("/books?id=eq.5"))
        r2 = c.read_response()
        assert r2.status == 200 and ids_of(r2) == [5]


def test_expect_100_continue(pg):
    head = build_request("POST", "/books", {"Content-Type": "application/json",
                                             "Content-Length": "5",
                                             "Expect": "100-continue"})
    with pg.raw() as c:
        c.send(head)
        interim = c.read_response(timeout=5)
        assert interim.status == 100, f"expected 100 Continue before the body, got {interim!r}"
        assert interim.version == "HTTP/1.1"
        c.send(b"hello")
        final = c.read_response(timeout=5)
        # "hello" arrived after the 100 and was read as the (invalid JSON) body.
        assert_pgrst_error(final.status, final.body, 400, "PGRST102")
        # The connection is still usable.
        c.send(get_req("/books?id=eq.5"))
        r = c.read_response()
        assert r.status == 200, r
        assert ids_of(r) == [5]


# ----------------------------------------------------------------------------------------
# Limits and malformed input
# ----------------------------------------------------------------------------------------


def test_header_too_large_is_431_then_close(pg):
    big = "a" * (17 * 1024)  # > 16kB, the default pg_rest.max_header_size
    data = get_req("/books", **{"X-Big": big})
    with pg.raw() as c:
        try:
            c.send(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may stop reading once it has decided
        r = c.read_response(timeout=5)
        assert r.status == 431, r
        assert c.wait_eof(5), "connection not closed after 431"


def test_body_too_large_is_413_before_body_then_close(pg):
    head = build_request("POST", "/books", {"Content-Type": "application/json",
                                             "Content-Length": "104857600"})
    with pg.raw() as c:
        c.send(head)  # not a single body byte
        r = c.read_response(timeout=5)
        assert r.status == 413, r
        assert c.wait_eof(5), "connection not closed after 413"


def test_garbage_is_400_then_close(pg):
    with pg.raw() as c:
        c.send(b"\x00\x01garbage\r\n\r\n")
        r = c.read_response(timeout=5)
        assert r.status == 400, r
        assert c.wait_eof(5), "connection not closed after 400"
    # The worker survived it.
    assert pg.get("/books?id=eq.1").status_code == 200


# ----------------------------------------------------------------------------------------
# Timeouts and slow clients
# ----------------------------------------------------------------------------------------


def test_idle_timeout_closes_idle_connection(pg):
    with pg.reload_with(idle_timeout="2s"):
        with pg.raw(timeout=10) as c:
            c.send(get_req("/books?id=eq.1"))
            assert c.read_response().status == 200
            t0 = time.monotonic()
            closed = c.wait_eof(8)
            elapsed = time.monotonic() - t0
        assert closed, "idle connection still open after 8 s with idle_timeout = 2s"
        assert 1.5 <= elapsed <= 5.5, f"idle connection closed after {elapsed:.2f}s"


def test_request_timeout_408_for_half_a_head(pg):
    with pg.reload_with(request_timeout="2s"):
        with pg.raw(timeout=10) as c:
            t0 = time.monotonic()
            c.send(b"GET /books HTTP/1.1\r\nHost: 127.0.0.1\r\nAcc")
            r = c.read_response(timeout=8)
            elapsed = time.monotonic() - t0
            assert r.status == 408, r
            assert 1.5 <= elapsed <= 5.5, f"408 after {elapsed:.2f}s"
            assert c.wait_eof(3), "connection not closed after 408"


def test_slow_clients_do_not_block_others(pg):
    slow = []
    try:
        # Enough half-open requests that both workers hold some.
        for _ in range(6):
            s = pg.raw(timeout=10)
            s.send(b"GET /books HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            slow.append(s)
        for n in range(1, 11):
            t0 = time.monotonic()
            with pg.raw(timeout=5) as c:
                c.send(get_req(f"/books?id=eq.{(n % 5) + 1}"))
                r = c.read_response(timeout=5)
            assert r.status == 200, r
            assert time.monotonic() - t0 < 2.0, "request delayed by a slow client"
        # And a slow client can still finish its request.
        slow[0].send(b"1\r\n\r\n")
        r = slow[0].read_response(timeout=5)
        assert r.status == 200, r
    finally:
        for s in slow:
            s.close()


# ----------------------------------------------------------------------------------------
# Connection cap
# ----------------------------------------------------------------------------------------


def _one_worker(pg):
    wait_until(lambda: len(pg.http_pids()) == 1, 15, interval=0.2, what="1 pg_rest http worker")


def test_max_connections_refuses_politely(pg):
    """One worker, max_connections = 4: of 12 connections exactly 4 are served and 8 get one
    PostgREST-shaped 503 and a close; once the 4 close, new connections are served again."""
    with pg.reload_with(max_connections="4", workers="1"):
        _one_worker(pg)
        conns: list[RawHTTP] = []
        outcomes: list[object] = []
        try:
            for _ in range(12):
                conns.append(RawHTTP(pg.http_port, timeout=5))
            time.sleep(0.3)  # let the worker accept them all
            for c in conns:
                try:
                    c.send(get_req("/books?id=eq.1"))
                    r = c.read_response(timeout=5)
                except (ConnectionClosed, BrokenPipeError, ConnectionResetError) as exc:
                    outcomes.append(("closed-without-response", repr(exc)))
                    continue
                except (socket.timeout, TimeoutError):
                    outcomes.append("hang")
                    continue
                outcomes.append(r.status)
                if r.status == 503:
                    err = assert_pgrst_error(r.status, r.body, 503, "HTTP503")
                    assert "max_connections" in err["message"], err
                    assert c.wait_eof(3), "a refused connection must be closed"
        finally:
            for c in conns:
                c.close()
        assert outcomes == [200] * 4 + [503] * 8, outcomes

        # After closing them all, new requests succeed again.
        def fresh_ok():
            with pg.raw(timeout=3) as c:
                c.send(get_req("/books?id=eq.2"))
                return c.read_response(timeout=3).status == 200
        wait_until(fresh_ok, 5, what="a new connection to be served after closing the others")
        for _ in range(6):
            assert fresh_ok()
    wait_until(lambda: len(pg.http_pids()) == 2, 15, interval=0.2, what="2 http workers again")


def test_http10_close_by_default_and_keep_alive_on_request(pg):
    with pg.raw() as c:
        c.send(b"GET /books?id=eq.1 HTTP/1.0\r\n\r\n")
        r = c.read_response()
        assert r.status == 200 and ids_of(r) == [1]
        assert c.wait_eof(5), "HTTP/1.0 without keep-alive must close"
    with pg.raw() as c:
        for n in (2, 3):
            c.send(b"GET /books?id=eq.%d HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" % n)
            r = c.read_response()
            assert r.status == 200 and ids_of(r) == [n]
            assert (r.header("connection") or "").lower() == "keep-alive"


def test_client_that_stops_reading_is_dropped(pg):
    """Pipelined requests whose answers the client never reads fill the kernel buffers and
    pg_rest's own; after idle_timeout with no progress the connection is closed, freeing them."""
    with pg.reload_with(idle_timeout="2s"):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(10)
        sock.connect(("127.0.0.1", pg.http_port))
        try:
            sock.sendall(build_request("GET", "/big") * 30)  # ~30 MB of answers
            time.sleep(5)
            received, closed = 0, False
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    chunk = sock.recv(1 << 20)
                except ConnectionResetError:
                    closed = True
                    break
                if not chunk:
                    closed = True
                    break
                received += len(chunk)
            assert closed, "a client that stopped reading was kept open"
            assert received < 25 * 1_000_000, f"received {received} bytes: it was never stalled"
        finally:
            sock.close()
        wait_until(lambda: pg.get("/books").status_code == 200, 5, what="serving afterwards")


def test_a_fast_sender_cannot_hold_its_worker(pg):
    """A closing connection discards what its client still sends; a client that floods it
    must not keep the worker from serving another connection (per-wake-up read budget)."""
    flooder = RawHTTP(pg.http_port, timeout=10)
    flooder.send(get_req("/worker"))
    flood_pid = flooder.read_response().json()[0]["pid"]
    other = None
    others = []
    for _ in range(20):
        c = RawHTTP(pg.http_port, timeout=10)
        others.append(c)
        c.send(get_req("/worker"))
        if c.read_response().json()[0]["pid"] == flood_pid:
            other = c
            break
    assert other is not None, "no second connection on the flooded worker"
    stop = threading.Event()

    def flood():
        chunk = b"x" * (4 << 20)
        try:
            while not stop.is_set():
                flooder.sock.sendall(chunk)
        except OSError:
            pass

    try:
        flooder.send(b"NOT HTTP\r\n\r\n")  # 400, then the worker discards the rest
        assert flooder.read_response().status == 400
        t = threading.Thread(target=flood, daemon=True)
        t.start()
        time.sleep(0.3)
        worst = 0.0
        for _ in range(10):
            start = time.monotonic()
            other.send(get_req("/books?id=eq.1"))
            assert other.read_response(timeout=10).status == 200
            worst = max(worst, time.monotonic() - start)
        assert worst < 0.5, f"a request waited {worst:.2f}s behind the flood"
    finally:
        stop.set()
        flooder.close()
        for c in others:
            c.close()
