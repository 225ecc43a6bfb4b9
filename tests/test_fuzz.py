"""Randomised requests of the whole REST dialect, from fixed seeds: reads, writes and calls
with random selects, filters, orders, ranges, preferences, media types and bodies, valid and
not. Whatever a request asks, the answer is a well-formed HTTP response below 500 (an error
the client caused is a 4xx with PostgREST's error body), the connection stays usable, and
the server lives on. Writes go only to the tables tests/test_writes.py truncates before each
of its tests, and this module truncates them again afterwards. Below them, the protocols'
own framing at random — HTTP/1.1 bytes mutated, HTTP/2 frames and WebSocket frames valid and
not: each connection is answered or closed once the client stops sending, never left hanging
(nor spinning), and no worker dies.
"""

from __future__ import annotations

import json
import random
import socket
import struct
from urllib.parse import quote

import hpack
import pytest

from conftest import bearer
from test_protocols import H2_PREFACE, client_frame, raw_ws

MUTABLE = "shop.items, shop.accounts, shop.stock, shop.notes, shop.ledger, shop.events"

# Relation → columns, as the fixtures define them (tests/fixtures/writes.sql, library.sql).
WRITABLE = {
    "items": ["id", "name", "qty", "note", "category_id"],
    "accounts": ["id", "email", "name"],
    "stock": ["warehouse", "item_code", "qty"],
    "ledger": ["id", "amount"],
    "events": ["id", "what"],
    "notes": ["id", "owner", "body"],
    "cheap_items": ["id", "name", "qty"],
}
READABLE = {
    "products": ["id", "name", "price", "category_id"],
    "categories": ["id", "name"],
    **WRITABLE,
}
EMBEDS = {
    "products": ["categories", "items"],
    "items": ["categories"],
    "categories": ["products", "items"],
}
FUNCTIONS = {
    "add_them": ["a", "b"],
    "products_in": ["cat"],
    "cheapest": [],
    "greet": ["name", "greeting"],
    "describe": ["a", "b", "word"],
    "joined": ["parts"],
    "echo_json": [],
    "split_name": ["full_name"],
    "log_event": ["what"],
    "add_event": ["what"],
}

VALUES = ["1", "2", "-1", "0", "1000000", "2147483648", "99999999999999999999", "1.5", "abc",
          "", " ", "null", "NULL", "true", "false", "\"q\"", "(1,2)", "{1,2}", "[1,2]", "%",
          "*", "é", "日本", "a,b", "a.b", "a)b", "(", ")", "'", "\\", "\x00", "\x01", "~",
          "2020-01-01", "infinity", "NaN", "1e400", "{}", "{\"a\":1}", "x" * 300]
# Each kind of piece in two lists: what a well-formed request uses, and the junk a chaotic
# one may use as well.
OPERATORS = ["eq", "neq", "gt", "gte", "lt", "lte", "like", "ilike", "match", "imatch", "in",
             "is", "isdistinct", "fts", "plfts", "phfts", "wfts", "cs", "cd", "ov", "sl", "sr",
             "nxr", "nxl", "adj", "not.eq", "not.in", "not.is", "eq(any)", "like(all)"]
OPERATORS_JUNK = ["not", "bogus", ""]
IS_VALUES = ["null", "true", "false", "unknown", "not_null"]
IS_VALUES_JUNK = ["x", ""]
CASTS_JUNK = ["::text", "::int", "::json", "::bogus", "::"]
PREFER = ["return=minimal", "return=representation", "return=headers-only", "count=exact",
          "count=planned", "count=estimated", "resolution=merge-duplicates",
          "resolution=ignore-duplicates", "missing=default", "tx=rollback", "tx=commit",
          "handling=strict", "handling=lenient", "max-affected=1", "max-affected=0",
          "params=single-object", "timezone=UTC"]
PREFER_JUNK = ["return=bogus", "count=bogus", "max-affected=x", "timezone=Nowhere/Else",
               "bogus", "=", ","]
ACCEPT = ["application/json", "text/csv", "application/vnd.pgrst.object+json",
          "application/vnd.pgrst.object+json;nulls=stripped",
          "application/vnd.pgrst.array+json;nulls=stripped", "application/geo+json",
          "application/vnd.pgrst.plan+json", "application/vnd.pgrst.plan+text", "*/*",
          "text/*"]
ACCEPT_JUNK = ["application/openapi+json", "text/plain", "application/octet-stream", "bogus",
               "", "application/json;q=0", "image/png"]
CONTENT_TYPES = ["application/json"] * 4 + ["text/csv", "application/x-www-form-urlencoded"]
CONTENT_TYPES_JUNK = ["text/plain", "application/octet-stream", "application/xml", "bogus", "",
                      "application/vnd.pgrst.object+json"]
RANGES = ["0-1", "1-", "0-0", "2-5"]
RANGES_JUNK = ["-1", "5-2", "x", "0-99999999999999999999"]


class Fuzzer:
    """Random requests from one seed."""

    def __init__(self, seed: int):
        self.r = random.Random(seed)
        # Whether the request being made may be malformed; the others reach execution.
        self.chaos = False

    def pick(self, seq):
        return self.r.choice(seq)

    def maybe(self, p: float = 0.5) -> bool:
        return self.r.random() < p

    def junk(self, p: float) -> bool:
        """Whether to put something malformed here (only in a chaotic request)."""
        return self.chaos and self.maybe(p)

    def some(self, good: list[str], junk: list[str]) -> str:
        """One of `good`, or in a chaotic request one of either list."""
        return self.pick(good + junk if self.chaos else good)

    def value(self) -> str:
        v = self.pick(VALUES)
        if self.maybe(0.2):
            v = self.pick(VALUES) + self.pick([",", ".", ":", "->", "(", ")"]) + v
        return v

    def column(self, columns: list[str]) -> str:
        if self.junk(0.3):
            c = self.pick(["nope", "*", "name->a", "name->>a", "note->0->>b", ""])
        else:
            c = self.pick(columns)
        return c + self.pick(CASTS_JUNK) if self.junk(0.2) else c

    def filter(self, columns: list[str]) -> tuple[str, str]:
        op = self.some(OPERATORS, OPERATORS_JUNK)
        if op.endswith("in"):
            rhs = "(" + ",".join(self.value() for _ in range(self.r.randint(0, 3))) + ")"
        elif op.endswith("is"):
            rhs = self.some(IS_VALUES, IS_VALUES_JUNK)
        elif "(any)" in op or "(all)" in op:
            rhs = "{" + ",".join(self.value() for _ in range(self.r.randint(0, 3))) + "}"
        elif op.endswith("fts") and self.maybe():
            op = f"{op}({self.pick(['english', 'simple', 'nope'])})"
            rhs = self.value()
        else:
            rhs = self.value()
        return self.column(columns), f"{op}.{rhs}" if op else rhs

    def logic(self, columns: list[str], depth: int = 0) -> str:
        parts = []
        for _ in range(self.r.randint(0 if self.junk(0.3) else 1, 3)):
            if depth < 2 and self.maybe(0.3):
                parts.append(self.pick(["and", "or", "not.and", "not.or"]) +
                             self.logic(columns, depth + 1))
            else:
                col, rhs = self.filter(columns)
                parts.append(f"{col}.{rhs}")
        return "(" + ",".join(parts) + ")"

    def select(self, relation: str) -> str:
        columns = READABLE.get(relation, ["id"])
        items = []
        for _ in range(self.r.randint(1, 4)):
            roll = self.r.random()
            if roll < 0.15 and relation in EMBEDS:
                target = self.pick(EMBEDS[relation])
                hint = self.pick(["", "", "!inner", "!left", "!bogus"])
                inner = self.select(target) if self.maybe(0.5) else "*"
                items.append(f"{target}{hint}({inner})")
            elif roll < 0.25:
                items.append(f"alias:{self.column(columns)}")
            elif roll < 0.3:
                items.append(self.pick(["count()", "sum(qty)", "id.count()", "max(nope)"]))
            else:
                items.append(self.column(columns))
        if self.junk(0.2):
            items.append(self.pick(["(", ")", ",,", "a(b(c", "x:y:z", "...", "*,*"]))
        return ",".join(items)

    def order(self, columns: list[str]) -> str:
        terms = []
        for _ in range(self.r.randint(1, 3)):
            t = self.column(columns)
            t += self.pick(["", ".asc", ".desc", ".asc.nullsfirst", ".desc.nullslast"]
                           + ([".sideways", ".asc.nullsmaybe"] if self.junk(0.5) else []))
            terms.append(t)
        return ",".join(terms)

    def number(self) -> str:
        if self.junk(0.5):
            return self.pick(["-1", "x", "", "1.5", "99999999999999999999"])
        return self.pick(["0", "1", "2", "10", "1000"])

    def query(self, columns: list[str]) -> list[tuple[str, str]]:
        q: list[tuple[str, str]] = []
        for _ in range(self.r.randint(0, 4)):
            roll = self.r.random()
            if roll < 0.35:
                q.append(self.filter(columns))
            elif roll < 0.45:
                q.append((self.pick(["or", "and", "not.or"]), self.logic(columns)))
            elif roll < 0.55:
                q.append(("order", self.order(columns)))
            elif roll < 0.65:
                q.append((self.pick(["limit", "offset"]), self.number()))
            elif roll < 0.7:
                q.append(("columns", ",".join(self.column(columns) for _ in range(2))))
            elif roll < 0.75:
                q.append(("on_conflict", self.column(columns)))
            elif roll < 0.78:
                q.append(("type", self.pick(["text/plain", "csv", "bogus", "json"])))
            elif roll < 0.95 or not self.chaos:
                q.append(self.filter(columns))
            else:
                q.append((self.pick(columns + ["nope", "select", ""]), self.value()))
        return q

    def headers(self) -> dict[str, str]:
        h: dict[str, str] = {}
        if self.maybe(0.4):
            h["Prefer"] = ", ".join(self.some(PREFER, PREFER_JUNK)
                                    for _ in range(self.r.randint(1, 3)))
        if self.maybe(0.25):
            h["Accept"] = self.some(ACCEPT, ACCEPT_JUNK)
        if self.maybe(0.1):
            h["Range"] = self.some(RANGES, RANGES_JUNK)
            h["Range-Unit"] = self.some(["items"], ["bogus"])
        if not self.junk(0.2):
            profile = "shop" if not self.junk(0.5) else self.pick(["library", "nope", ""])
            h["Accept-Profile"] = profile
            h["Content-Profile"] = profile
        if self.maybe(0.1):
            h.update(bearer({"role": "web_user", "sub": self.pick(["u1", "u2"])}))
        return h

    def row(self, keys: list[str]) -> dict:
        row = {}
        for c in keys:
            row[c] = self.pick([1, 2, -1, 0, 10**20, 1.5, "x", "", None, True, [1], {"a": 1},
                                self.value()])
        if self.junk(0.3):
            row[self.pick(["nope", "", "id "])] = 1
        return row

    def keys(self, columns: list[str]) -> list[str]:
        return self.r.sample(columns, self.r.randint(0 if self.junk(0.3) else 1, len(columns)))

    def body(self, columns: list[str], content_type: str) -> bytes:
        if self.junk(0.1):
            return b""
        if self.junk(0.2):
            return self.pick([b"{", b"[", b"nul", b"\xff\xfe", b"{\"a\":}", b"[1,2]", b"1",
                              b"\"s\"", b"null", b"[" * 200 + b"]" * 200, b"{}" * 3])
        if content_type == "text/csv":
            cols = self.r.sample(columns, self.r.randint(1, len(columns)))
            lines = [",".join(cols)]
            for _ in range(self.r.randint(0, 3)):
                lines.append(",".join(self.pick(["1", "x", "", "NULL", "\"a,b\"", "\"", "é"])
                                      for _ in cols))
            return "\n".join(lines).encode()
        if content_type == "application/x-www-form-urlencoded":
            return "&".join(f"{quote(c)}={quote(self.value())}"
                            for c in self.r.sample(columns, self.r.randint(0, len(columns)))
                            ).encode()
        keys = self.keys(columns)
        if self.maybe(0.3):
            rows = [self.row(self.keys(columns) if self.junk(0.3) else keys)
                    for _ in range(self.r.randint(0 if self.junk(0.3) else 1, 4))]
            return json.dumps(rows).encode()
        return json.dumps(self.row(keys)).encode()

    def payload(self, headers: dict[str, str], columns: list[str]) -> bytes:
        """A body of some media type, named in `headers`."""
        headers["Content-Type"] = self.some(CONTENT_TYPES, CONTENT_TYPES_JUNK)
        return self.body(columns, headers["Content-Type"])

    def request(self) -> tuple[str, str, dict[str, str], bytes | None]:
        self.chaos = self.maybe(0.3)
        headers = self.headers()
        roll = self.r.random()
        if roll < 0.25:
            fn = self.pick(list(FUNCTIONS) + ["nope", "greet"])
            params = FUNCTIONS.get(fn, ["x"])
            method = self.pick(["GET", "POST", "POST", "HEAD", "OPTIONS"]
                               + (["PATCH", "DELETE"] if self.chaos else []))
            query = self.query(["id", "name", "price"])
            if method in ("GET", "HEAD"):
                query += [(p, self.value()) for p in params if self.maybe(0.7)]
            path = f"/rpc/{fn}"
            body = self.payload(headers, params or ["x"]) if method in ("POST", "PATCH") else None
        else:
            relation = self.pick(list(READABLE) + (["nope"] if self.chaos else []))
            columns = READABLE.get(relation, ["id"])
            method = self.pick(["GET", "GET", "HEAD", "OPTIONS"]
                               + (["POST", "POST", "PATCH", "PUT", "DELETE"]
                                  if relation in WRITABLE else []))
            query = self.query(columns)
            if self.maybe(0.6):
                query.append(("select", self.select(relation)))
            path = f"/{relation}"
            body = self.payload(headers, columns) if method in ("POST", "PATCH", "PUT") else None
        target = path
        if query:
            target += "?" + "&".join(f"{quote(k, safe='')}={quote(v, safe='(),.:*!')}"
                                     for k, v in query)
        return method, target, headers, body


@pytest.fixture(autouse=True)
def truncated_after(pg):
    yield
    pg.sql(f"TRUNCATE {MUTABLE} RESTART IDENTITY")


def well_formed(method: str, r) -> None:
    """An answer the client can act on: below 500, and an error body PostgREST's shape."""
    assert r.status_code < 500, f"{r.status_code} {r.text[:400]}"
    if r.status_code >= 400 and method != "HEAD":
        body = r.json()
        assert {"code", "message"} <= set(body), body


@pytest.mark.parametrize("seed", range(6))
def test_random_requests_are_answered_below_500(http, seed):
    f = Fuzzer(seed)
    for i in range(400):
        method, target, headers, body = f.request()
        r = http.request(method, target, headers=headers, content=body)
        try:
            well_formed(method, r)
        except AssertionError as exc:
            raise AssertionError(f"request {i} of seed {seed}: {method} {target} "
                                 f"headers={headers} body={body!r:.300}: {exc}") from None
    # The connection and the server are still fine.
    assert http.get("/books?limit=1").status_code == 200


# Requests to mutate, and what mutations insert.
RAW_REQUESTS = [
    b"GET /books?id=eq.1 HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /books?select=id,title&order=id.desc&limit=2 HTTP/1.1\r\nHost: x\r\n"
    b"Accept: text/csv\r\n\r\n",
    b"POST /items HTTP/1.1\r\nHost: x\r\nContent-Profile: shop\r\n"
    b"Content-Type: application/json\r\nPrefer: tx=rollback\r\nContent-Length: 12\r\n\r\n"
    b"{\"name\":\"x\"}",
    b"POST /rpc/add_them HTTP/1.1\r\nHost: x\r\nAccept-Profile: shop\r\n"
    b"Transfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n"
    b"d\r\n{\"a\":1,\"b\":2}\r\n0\r\n\r\n",
    b"GET /books HTTP/1.1\r\nHost: x\r\n\r\nHEAD /books HTTP/1.1\r\nHost: x\r\n\r\n",
    b"OPTIONS /books HTTP/1.0\r\n\r\n",
]
RAW_PIECES = [b"\r\n", b"\n", b"\r", b" ", b":", b"\x00", b"\xff", b"%", b"%00", b"?", b"&",
              b"Content-Length: 99999999999999999999\r\n", b"Content-Length: -1\r\n",
              b"Transfer-Encoding: chunked\r\n", b"Expect: 100-continue\r\n",
              b"Connection: close\r\n", b"ffffffffffffffff\r\n", b"0\r\n\r\n", b"\t"]


def mutated(r: random.Random, request: bytes) -> bytes:
    """`request` with a few bytes deleted, replaced, inserted or repeated."""
    b = bytearray(request)
    for _ in range(r.randint(1, 6)):
        op, i = r.random(), r.randint(0, len(b))
        if op < 0.3 and b:
            del b[i:i + r.randint(1, 8)]
        elif op < 0.6:
            b[i:i] = r.choice(RAW_PIECES)
        elif op < 0.8 and b:
            b[min(i, len(b) - 1)] = r.randint(0, 255)
        else:
            b[i:i] = b[r.randint(0, len(b)):][:r.randint(1, 40)]
    return bytes(b)


def answer_until_eof(s: socket.socket, sent: bytes, timeout: float) -> bytes:
    """Everything the server sends after the client's EOF, up to its close: within
    `timeout`, or the connection was left hanging."""
    try:
        s.shutdown(socket.SHUT_WR)
    except OSError:
        return b""  # the server closed first
    s.settimeout(timeout)
    answer = b""
    try:
        while chunk := s.recv(65536):
            answer += chunk
    except ConnectionResetError:
        pass
    except TimeoutError:
        raise AssertionError(f"not closed {timeout} s after the client's EOF: {sent!r:.300}")
    return answer


def test_mutated_http1_bytes_are_answered_or_closed(pg):
    workers = pg.http_pids()
    r = random.Random(7)
    for i in range(1500):
        request = mutated(r, r.choice(RAW_REQUESTS))
        with socket.create_connection(("127.0.0.1", pg.http_port), timeout=5) as s:
            s.sendall(request)
            answer = answer_until_eof(s, request, 5)
        if answer:
            assert answer.startswith(b"HTTP/1."), (i, request, answer[:100])
            assert not answer.startswith((b"HTTP/1.1 500", b"HTTP/1.0 500")), (i, request, answer)
    assert pg.http_pids() == workers


def h2_frame(kind: int, flags: int, stream: int, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def h2_junk(r: random.Random, stream: int, encoder: hpack.Encoder) -> bytes:
    """One frame a well-behaved client would not send here."""
    return r.choice([
        h2_frame(3, 0, stream, struct.pack(">I", 8)),                    # RST_STREAM
        h2_frame(8, 0, r.choice([0, stream]), struct.pack(">I", r.choice([0, 2**31 - 1]))),
        h2_frame(6, 0, 0, b"1234567"),                                   # PING of 7 bytes
        h2_frame(0, 1, stream, b"late data"),                            # DATA on a closed stream
        h2_frame(1, 5, stream, encoder.encode([(":method", "GET")])),    # HEADERS again
        h2_frame(0xfa, 0, stream, b"ext"),                               # unknown type
        h2_frame(4, 0, 0, struct.pack(">HI", 4, 2**31)),                 # window too large
        h2_frame(1, 5, stream + 100, b"\xff\xff\xff"),                   # bad HPACK
        h2_frame(9, 4, stream, b"\x82"),                                 # stray CONTINUATION
        bytes(r.randint(0, 255) for _ in range(r.randint(1, 30))),
    ])


def test_random_http2_frames_are_answered_or_closed(pg):
    workers = pg.http_pids()
    r = random.Random(11)
    paths = ["/books?id=eq.1", "/books?select=id&limit=2", "/nope", "/rpc/nope", "/books?x=("]
    for _ in range(400):
        encoder = hpack.Encoder()
        out = H2_PREFACE + h2_frame(4, 0, 0, b"")
        stream = 1
        for _ in range(r.randint(1, 6)):
            method = r.choice(["GET", "HEAD", "POST"])
            block = encoder.encode([(":method", method), (":scheme", "http"),
                                    (":path", r.choice(paths)), (":authority", "x")])
            if method == "POST":
                out += h2_frame(1, 4, stream, block) + h2_frame(0, 1, stream, b'{"title":"x"}')
            elif r.random() < 0.2 and len(block) > 2:
                cut = r.randint(1, len(block) - 1)
                out += h2_frame(1, 1, stream, block[:cut]) + h2_frame(9, 4, stream, block[cut:])
            else:
                out += h2_frame(1, 5, stream, block)
            if r.random() < 0.25:
                out += h2_junk(r, stream, encoder)
            stream += 2
        with socket.create_connection(("127.0.0.1", pg.http_port), timeout=5) as s:
            s.sendall(out)
            answer_until_eof(s, out, 5)
    assert pg.http_pids() == workers


def websocket_junk(r: random.Random) -> bytes:
    """Frames a client may send, well-formed and not."""
    message = json.dumps(r.choice([
        {"op": "subscribe", "id": "s1", "table": "public.books"},
        {"op": "subscribe", "id": "s2", "table": "nope", "filter": "id=eq.1"},
        {"op": "unsubscribe", "id": "s1"}, {"op": "ping"}, {"op": "bogus"}, [], "x",
    ])).encode()
    frame = client_frame(1, message)
    return r.choice([
        frame,
        frame[:r.randint(1, len(frame))],                             # cut short
        client_frame(r.choice([0, 3, 7, 0xb, 0xf]), b"x" * r.choice([0, 5, 200])),  # bad opcodes
        bytes([0x81, len(message)]) + message if len(message) < 126 else frame,     # unmasked
        client_frame(1, b"\xff\xfe"),                                 # not UTF-8
        client_frame(2, b"\x00"),                                      # binary
        client_frame(8, struct.pack(">H", r.choice([1000, 1002, 999, 5000]))),
        client_frame(9, b"ping"),
        bytes([0x01, 0x81]) + b"\x01\x02\x03\x04x",                     # a fragment, never ended
        bytes(r.randint(0, 255) for _ in range(r.randint(1, 20))),
    ])


def test_random_websocket_frames_end_at_the_clients_eof(pg):
    # After pg_rest's close frame it waits 2 s for the client's: a connection still open 1.5 s
    # after the client's EOF is one pg_rest failed to see end (or is re-reading, busy).
    workers = pg.http_pids()
    r = random.Random(13)
    for _ in range(300):
        out = b"".join(websocket_junk(r) for _ in range(r.randint(1, 6)))
        with raw_ws(pg) as s:
            try:
                s.sendall(out)
            except OSError:
                continue  # closed by the server already
            answer_until_eof(s, out, 1.5)
    assert pg.http_pids() == workers
