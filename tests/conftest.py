"""Shared fixtures of the pg_rest integration suite.

A session-scoped throwaway PostgreSQL 15 cluster (target/test-pg) is created with pg_rest in
shared_preload_libraries, the fixture SQL of tests/fixtures is loaded into the database
`pg_rest_test`, and the suite waits until the http workers answer.  Everything that waits is
bounded: no test may hang.

PostgreSQL refuses to run as root, so every server-side command runs through
`runuser -u postgres --`.  The clients (psycopg, psql) run as the current user over the
cluster's unix socket (trust authentication).
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import socket
import stat
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import httpx
import psycopg
import pytest
from psycopg import sql as pgsql

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"
PGBIN = Path(os.environ.get("PGBIN", "/usr/lib/postgresql/15/bin"))
PG_OS_USER = "postgres"
PG_SUPERUSER = "postgres"

EXT_SO = Path("/usr/lib/postgresql/15/lib/pg_rest.so")
EXT_CONTROL = Path("/usr/share/postgresql/15/extension/pg_rest.control")

TEST_PG_PORT = 54329
TEST_HTTP_PORT = 3101
TEST_DB = "pg_rest_test"
# pg_rest.jwt_secret of the shared test cluster (HS256); tokens are signed with it by `token`.
JWT_SECRET = "reallyreallyreallyreallyverysafe"

# PG_REST_HTTP2=1: the httpx clients of the suite speak HTTP/2 (prior knowledge), so the
# REST tests run over both protocols (`make integration` runs them twice).
HTTP2 = os.environ.get("PG_REST_HTTP2") == "1"

# How long a reload (SIGHUP) is given to reach the pg_rest processes.
RELOAD_SETTLE_S = 1.0

# Log lines that mean a crash of the whole server (DESIGN.md "Crash safety").
FATAL_LOG_PATTERNS = (
    "terminating any other active server processes",
    "was terminated by signal",
    "PANIC",
)


# ---------------------------------------------------------------------------------------
# Small utilities
# ---------------------------------------------------------------------------------------


def run(cmd: list[str], *, as_postgres: bool = False, timeout: float = 60, check: bool = True,
        input: str | None = None) -> subprocess.CompletedProcess:
    """Run a command with a timeout; optionally as the postgres OS user."""
    if as_postgres and os.geteuid() == 0:
        cmd = ["runuser", "-u", PG_OS_USER, "--", *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=input)
    if check and proc.returncode != 0:
        raise RuntimeError(
            f"command failed ({proc.returncode}): {' '.join(cmd)}\n"
            f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
    return proc


def wait_until(pred: Callable[[], object], timeout: float, interval: float = 0.1,
               what: str = "condition") -> object:
    """Poll pred() until it returns a truthy value; bounded by timeout. Returns the value."""
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    while True:
        try:
            value = pred()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - polled conditions may fail transiently
            last_exc = exc
        if time.monotonic() >= deadline:
            msg = f"timed out after {timeout}s waiting for {what}"
            if last_exc is not None:
                msg += f" (last error: {last_exc!r})"
            raise AssertionError(msg)
        time.sleep(interval)


def ensure_traversable(path: Path) -> None:
    """Give 'others' the x bit on path and its ancestors where missing (postgres must reach
    the data directory, which lives inside the repository)."""
    for p in [path, *path.parents]:
        try:
            mode = p.stat().st_mode
        except FileNotFoundError:
            continue
        if not mode & stat.S_IXOTH:
            os.chmod(p, mode | stat.S_IXOTH)


def chown_postgres(path: Path) -> None:
    pw = pwd.getpwnam(PG_OS_USER)
    os.chown(path, pw.pw_uid, pw.pw_gid)


def _guc_name(name: str) -> str:
    """pg_rest.<name>, with <name> checked to be a plain identifier."""
    if not name.replace("_", "").isalnum():
        raise ValueError(f"bad setting name {name!r}")
    return f"pg_rest.{name}"


def port_is_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


# ---------------------------------------------------------------------------------------
# Raw HTTP/1.1 over a socket
# ---------------------------------------------------------------------------------------


@dataclass
class RawResponse:
    status: int
    reason: str
    version: str
    headers: list[tuple[str, str]]
    body: bytes = b""

    def header(self, name: str, default: str | None = None) -> str | None:
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return default

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self) -> str:
        body = self.body[:300]
        return f"<RawResponse {self.status} {self.reason!r} headers={self.headers} body={body!r}>"


class ConnectionClosed(Exception):
    """The peer closed (or reset) the connection before a complete response arrived."""


class RawHTTP:
    """A plain TCP connection speaking HTTP/1.1 by hand: send arbitrary bytes, read back
    responses (status line, headers, Content-Length or chunked body). Every read is bounded
    by the socket timeout."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 10.0):
        self.host = host
        self.port = port
        self.timeout = timeout
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(timeout)
        self.buf = b""
        self.eof = False

    # -- sending --------------------------------------------------------------------
    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def request(self, method: str, target: str, headers: dict[str, str] | None = None,
                body: bytes | None = None) -> bytes:
        """Build (and send) one request. Returns the bytes sent."""
        data = build_request(method, target, headers, body)
        self.send(data)
        return data

    # -- receiving ------------------------------------------------------------------
    def _fill(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("read deadline passed")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError as exc:
            self.eof = True
            raise ConnectionClosed(f"connection reset; buffered={self.buf[:200]!r}") from exc
        if not chunk:
            self.eof = True
            raise ConnectionClosed(f"EOF; buffered={self.buf[:200]!r}")
        self.buf += chunk

    def _read_until(self, sep: bytes, deadline: float) -> bytes:
        while True:
            idx = self.buf.find(sep)
            if idx >= 0:
                out, self.buf = self.buf[:idx], self.buf[idx + len(sep):]
                return out
            self._fill(deadline)

    def _read_exact(self, n: int, deadline: float) -> bytes:
        while len(self.buf) < n:
            self._fill(deadline)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_response(self, method: str = "GET", timeout: float | None = None) -> RawResponse:
        """Read one response. `method` is the request's method (a HEAD response has no body)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        head = self._read_until(b"\r\n\r\n", deadline)
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/"):
            raise AssertionError(f"bad status line: {lines[0]!r}")
        version, status = parts[0], int(parts[1])
        reason = parts[2] if len(parts) > 2 else ""
        headers: list[tuple[str, str]] = []
        for line in lines[1:]:
            if not line:
                continue
            k, _, v = line.partition(":")
            headers.append((k.strip(), v.strip()))
        resp = RawResponse(status, reason, version, headers)
        if method.upper() == "HEAD" or 100 <= status < 200 or status in (204, 304):
            return resp
        te = (resp.header("transfer-encoding") or "").lower()
        if "chunked" in te:
            body = b""
            while True:
                size_line = self._read_until(b"\r\n", deadline)
                size = int(size_line.split(b";", 1)[0].strip(), 16)
                if size == 0:
                    # trailers, until an empty line
                    while self._read_until(b"\r\n", deadline):
                        pass
                    break
                body += self._read_exact(size, deadline)
                self._read_until(b"\r\n", deadline)
            resp.body = body
        elif resp.header("content-length") is not None:
            resp.body = self._read_exact(int(resp.header("content-length")), deadline)
        else:
            # No framing: the body runs until the connection closes.
            body = b""
            try:
                while True:
                    self._fill(deadline)
            except ConnectionClosed:
                body, self.buf = self.buf, b""
            resp.body = body
        return resp

    def read_responses(self, methods: Iterable[str], timeout: float | None = None
                       ) -> list[RawResponse]:
        return [self.read_response(m, timeout=timeout) for m in methods]

    def wait_eof(self, timeout: float) -> bool:
        """True if the peer closes (EOF or reset) within timeout with no further data;
        False on timeout. Extra bytes received before EOF raise AssertionError."""
        deadline = time.monotonic() + timeout
        while True:
            if self.buf:
                raise AssertionError(f"unexpected bytes before EOF: {self.buf[:200]!r}")
            if self.eof:
                return True
            try:
                self._fill(deadline)
            except ConnectionClosed:
                return True
            except (socket.timeout, TimeoutError):
                return False

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def __enter__(self) -> "RawHTTP":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def build_request(method: str, target: str, headers: dict[str, str] | None = None,
                  body: bytes | None = None, host: str = "127.0.0.1") -> bytes:
    hdrs = {"Host": host}
    if headers:
        hdrs.update(headers)
    if body is not None and not any(k.lower() in ("content-length", "transfer-encoding")
                                    for k in hdrs):
        hdrs["Content-Length"] = str(len(body))
    head = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items())
    return head.encode("latin-1") + b"\r\n" + (body or b"")


# ---------------------------------------------------------------------------------------
# The cluster
# ---------------------------------------------------------------------------------------


@dataclass
class Cluster:
    """A throwaway PostgreSQL cluster with pg_rest loaded."""

    root: Path                  # target/test-pg
    pg_port: int
    http_port: int
    dbname: str
    conf: dict[str, str] = field(default_factory=dict)

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_path(self) -> Path:
        return self.root / "server.log"

    @property
    def socket_dir(self) -> str:
        return str(self.data_dir)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    # -- lifecycle --------------------------------------------------------------------
    def create(self) -> None:
        if self.root.exists():
            # A previous run may have left a server behind: stop it before wiping.
            if (self.data_dir / "postmaster.pid").exists():
                run([str(PGBIN / "pg_ctl"), "-D", str(self.data_dir), "stop", "-m",
                     "immediate", "-t", "30"], as_postgres=True, check=False, timeout=40)
            shutil.rmtree(self.root)
        self.root.mkdir(parents=True)
        ensure_traversable(self.root)
        chown_postgres(self.root)
        run([str(PGBIN / "initdb"), "-D", str(self.data_dir), "-U", PG_SUPERUSER,
             "--auth=trust", "-E", "UTF8", "--no-sync"], as_postgres=True, timeout=120)
        conf = {
            "port": str(self.pg_port),
            "unix_socket_directories": f"'{self.data_dir}'",
            "listen_addresses": "''",
            "shared_preload_libraries": "'pg_rest'",
            "fsync": "off",
            **self.conf,
        }
        with open(self.data_dir / "postgresql.conf", "a", encoding="utf-8") as f:
            f.write("\n# --- pg_rest test suite ---\n")
            for k, v in conf.items():
                f.write(f"{k} = {v}\n")

    def start(self) -> None:
        run([str(PGBIN / "pg_ctl"), "-D", str(self.data_dir), "-l", str(self.log_path),
             "-w", "-t", "60", "start"], as_postgres=True, timeout=90)

    def stop(self, mode: str = "fast") -> subprocess.CompletedProcess:
        return run([str(PGBIN / "pg_ctl"), "-D", str(self.data_dir), "-m", mode, "-w",
                    "-t", "60", "stop"], as_postgres=True, check=False, timeout=90)

    def postmaster_pid(self) -> int:
        return int((self.data_dir / "postmaster.pid").read_text().splitlines()[0])

    # -- SQL ----------------------------------------------------------------------------
    def conninfo(self, dbname: str | None = None) -> str:
        return (f"host={self.socket_dir} port={self.pg_port} user={PG_SUPERUSER} "
                f"dbname={dbname or self.dbname} connect_timeout=10")

    def connect(self, dbname: str | None = None, autocommit: bool = True) -> psycopg.Connection:
        conn = psycopg.connect(self.conninfo(dbname), autocommit=autocommit)
        # Bound every statement run by the suite itself.
        conn.execute("SET statement_timeout = '30s'")
        return conn

    def sql(self, query, *params, dbname: str | None = None) -> list[tuple]:
        """Run one statement as superuser (autocommit). Returns all rows ([] if none)."""
        with self.connect(dbname) as conn:
            cur = conn.execute(query, params or None)
            return cur.fetchall() if cur.description is not None else []

    def psql(self, script: str, dbname: str | None = None, timeout: float = 60
             ) -> subprocess.CompletedProcess:
        return run([str(PGBIN / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
                    "-h", self.socket_dir, "-p", str(self.pg_port), "-U", PG_SUPERUSER,
                    "-d", dbname or self.dbname, "-c", script], timeout=timeout)

    def psql_file(self, path: Path, dbname: str | None = None, timeout: float = 60
                  ) -> subprocess.CompletedProcess:
        return run([str(PGBIN / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
                    "-h", self.socket_dir, "-p", str(self.pg_port), "-U", PG_SUPERUSER,
                    "-d", dbname or self.dbname, "-f", str(path)], timeout=timeout)

    # -- settings ---------------------------------------------------------------------
    def _alter_system_set(self, name: str, value) -> None:
        if isinstance(value, bool):
            value = "on" if value else "off"
        self.sql(pgsql.SQL("ALTER SYSTEM SET {} = {}").format(
            pgsql.SQL(_guc_name(name)), pgsql.Literal(str(value))))

    def reload(self, settle: float = RELOAD_SETTLE_S) -> None:
        self.sql("SELECT pg_catalog.pg_reload_conf()")
        time.sleep(settle)

    def reset_settings(self, *names: str, settle: float = RELOAD_SETTLE_S) -> None:
        for name in names:
            self.sql(pgsql.SQL("ALTER SYSTEM RESET {}").format(pgsql.SQL(_guc_name(name))))
        self.reload(settle)

    @contextlib.contextmanager
    def reload_with(self, settle: float = RELOAD_SETTLE_S, **settings) -> Iterator[None]:
        """ALTER SYSTEM SET pg_rest.<k> = <v> for each setting, reload, wait `settle`
        seconds; on exit ALTER SYSTEM RESET them and reload again."""
        applied: list[str] = []
        try:
            for name, value in settings.items():
                self._alter_system_set(name, value)
                applied.append(name)
            self.reload(settle)
            yield
        finally:
            self.reset_settings(*applied, settle=settle)

    # -- introspection ----------------------------------------------------------------
    def http_pids(self) -> set[int]:
        rows = self.sql("SELECT pid FROM pg_catalog.pg_stat_activity "
                        "WHERE backend_type = 'pg_rest http'")
        return {r[0] for r in rows}

    def supervisor_pids(self) -> set[int]:
        rows = self.sql("SELECT pid FROM pg_catalog.pg_stat_activity "
                        "WHERE backend_type = 'pg_rest supervisor'")
        return {r[0] for r in rows}

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def log_since(self, offset: int) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                return f.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, n: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-n:])

    # -- HTTP ---------------------------------------------------------------------------
    def client(self, timeout: float = 10.0, **kw) -> httpx.Client:
        if HTTP2:
            kw = {"http1": False, "http2": True, **kw}
        return httpx.Client(base_url=self.base_url, timeout=timeout, **kw)

    def get(self, path: str, timeout: float = 10.0, **kw) -> httpx.Response:
        with self.client(timeout=timeout) as c:
            return c.get(path, **kw)

    def raw(self, timeout: float = 10.0) -> RawHTTP:
        return RawHTTP(self.http_port, timeout=timeout)

    def exchange(self, data: bytes, methods: Iterable[str] | int = 1, timeout: float = 10.0
                 ) -> list[RawResponse]:
        """Open a connection, send `data` in one write, read back the responses (one per
        entry of `methods`, or `methods` GET responses when an int), close."""
        if isinstance(methods, int):
            methods = ["GET"] * methods
        with self.raw(timeout=timeout) as c:
            c.send(data)
            return c.read_responses(list(methods), timeout=timeout)

    def wait_http_ready(self, path: str = "/books", timeout: float = 60.0,
                        accept: Callable[[int], bool] = lambda s: s == 200) -> None:
        def ok():
            return accept(self.get(path, timeout=3).status_code)
        wait_until(ok, timeout, interval=0.25, what=f"GET {path} on port {self.http_port}")


def build_cluster(cluster: Cluster, fixtures: list[Path] | None, create_extension: bool = True,
                  extra_sql: list[str] | None = None) -> None:
    """initdb, configure, start, create the database, load fixtures, CREATE EXTENSION."""
    cluster.create()
    cluster.start()
    if cluster.dbname != "postgres":
        run([str(PGBIN / "createdb"), "-h", cluster.socket_dir, "-p", str(cluster.pg_port),
             "-U", PG_SUPERUSER, cluster.dbname], timeout=60)
    for f in fixtures or []:
        cluster.psql_file(f)
    for s in extra_sql or []:
        cluster.psql(s)
    if create_extension:
        cluster.psql("CREATE EXTENSION pg_rest")


def extra_cluster(name: str, pg_port: int, http_port: int, database: str,
                  **conf: str) -> Cluster:
    """A second throwaway cluster (target/<name>) with one pg_rest http worker on
    127.0.0.1:`http_port` serving `database`; `conf` adds postgresql.conf lines."""
    require_extension_installed()
    if port_is_open(http_port):
        pytest.fail(f"port {http_port} already in use")
    return Cluster(
        root=REPO / "target" / name,
        pg_port=pg_port,
        http_port=http_port,
        dbname="postgres",
        conf={
            "pg_rest.port": str(http_port),
            "pg_rest.listen_addresses": "'127.0.0.1'",
            "pg_rest.database": f"'{database}'",
            "pg_rest.workers": "1",
            "pg_rest.anon_role": "'web_anon'",
            **conf,
        },
    )


def require_extension_installed() -> None:
    missing = [str(p) for p in (EXT_SO, EXT_CONTROL) if not p.exists()]
    if missing:
        pytest.fail("pg_rest is not installed (missing: " + ", ".join(missing) +
                    "); install it first (cargo pgrx install --release)", pytrace=False)


def ports_free_or_fail(*ports: int) -> None:
    busy = [p for p in ports if port_is_open(p)]
    if busy:
        pytest.fail(f"ports already in use: {busy}; stop the previous cluster "
                    "(runuser -u postgres -- pg_ctl -D target/test-pg/data stop -m immediate)",
                    pytrace=False)


# ---------------------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg() -> Iterator[Cluster]:
    """The shared test cluster: PG on unix socket port 54329, pg_rest on 127.0.0.1:3101."""
    require_extension_installed()
    cluster = Cluster(
        root=REPO / "target" / "test-pg",
        pg_port=TEST_PG_PORT,
        http_port=TEST_HTTP_PORT,
        dbname=TEST_DB,
        conf={
            "pg_rest.port": str(TEST_HTTP_PORT),
            "pg_rest.listen_addresses": "'127.0.0.1'",
            "pg_rest.database": f"'{TEST_DB}'",
            "pg_rest.workers": "2",
            "pg_rest.anon_role": "'web_anon'",
            "pg_rest.authenticator": "'authenticator'",
            "pg_rest.jwt_secret": f"'{JWT_SECRET}'",
            "pg_rest.test_faults": "on",
            "pg_rest.schemas": "'public, library, shop'",
        },
    )
    # A leftover server of a previous run is stopped first; only then check the port.
    if (cluster.data_dir / "postmaster.pid").exists():
        cluster.stop("immediate")
    ports_free_or_fail(TEST_HTTP_PORT)
    try:
        problem = None
        try:
            build_cluster(cluster, [FIXTURES / n for n in
                                    ("roles.sql", "schema.sql", "data.sql", "library.sql",
                                     "writes.sql", "privileges.sql")])
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            problem = f"building the test cluster failed: {exc}"
        if problem is None:
            try:
                cluster.wait_http_ready("/books", timeout=60)
                # Start every test module from the same state: both http workers up.
                wait_until(lambda: len(cluster.http_pids()) == 2, 15, interval=0.2,
                           what="2 pg_rest http workers")
            except AssertionError as exc:
                problem = str(exc)
        if problem is not None:
            pytest.fail(f"{problem}\n--- server log tail ---\n{cluster.log_tail()}",
                        pytrace=False)
        yield cluster
    finally:
        if (cluster.data_dir / "postmaster.pid").exists():
            cluster.stop("fast")
            if (cluster.data_dir / "postmaster.pid").exists():
                cluster.stop("immediate")


@pytest.fixture(scope="session", autouse=True)
def _server_never_crashed(pg: Cluster) -> Iterator[None]:
    """Session-end check: the whole-server crash markers never appear in the server log."""
    yield
    text = pg.log_text()
    found = [p for p in FATAL_LOG_PATTERNS if p in text]
    if found:
        lines = [l for l in text.splitlines() if any(p in l for p in FATAL_LOG_PATTERNS)]
        pytest.fail("server log shows a crash: " + ", ".join(repr(p) for p in found) +
                    "\n" + "\n".join(lines[:20]), pytrace=False)


@pytest.fixture
def http(pg: Cluster) -> Iterator[httpx.Client]:
    with pg.client() as c:
        if HTTP2:
            # The rerun over HTTP/2 must really be HTTP/2.
            assert c.get("/books?limit=0").http_version == "HTTP/2"
        yield c


def token(claims: dict, secret: str = JWT_SECRET, algorithm: str = "HS256", **headers) -> str:
    """A JWT with `claims`, signed with the shared cluster's secret unless told otherwise."""
    import jwt  # PyJWT
    return jwt.encode(claims, secret, algorithm=algorithm, headers=headers or None)


def bearer(claims: dict, **kw) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(claims, **kw)}"}


# ---------------------------------------------------------------------------------------
# Assertion helpers shared by the test modules
# ---------------------------------------------------------------------------------------

ERROR_KEYS = {"code", "details", "hint", "message"}


def assert_pgrst_error(status: int, body: bytes | str | dict, expect_status: int,
                       expect_code: str | None = None) -> dict:
    """PostgREST error shape: exactly code, details, hint, message."""
    if isinstance(body, (bytes, str)):
        try:
            obj = json.loads(body)
        except ValueError as exc:
            raise AssertionError(f"error body is not JSON: {body!r}") from exc
    else:
        obj = body
    assert status == expect_status, f"status {status} != {expect_status}; body={obj!r}"
    assert isinstance(obj, dict), f"error body is not an object: {obj!r}"
    assert set(obj) == ERROR_KEYS, f"error keys {sorted(obj)} != {sorted(ERROR_KEYS)}: {obj!r}"
    if expect_code is not None:
        assert obj["code"] == expect_code, f"code {obj['code']!r} != {expect_code!r}: {obj!r}"
    assert isinstance(obj["message"], str) and obj["message"], obj
    return obj
