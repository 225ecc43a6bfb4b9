"""DESIGN.md "Crash safety": errors, timeouts, cancels, panics and a terminated worker leave
the server up, the other workers serving, and ordinary backends undisturbed.

Tests run in file order and share one module fixture (the baseline)."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from conftest import ConnectionClosed, assert_pgrst_error, build_request, wait_until


@pytest.fixture(scope="module")
def baseline(pg):
    pids = wait_until(lambda: (lambda p: p if len(p) == 2 else None)(pg.http_pids()), 15,
                      interval=0.2, what="2 http workers at the start of the crash tests")
    conn = pg.connect()
    backend_pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    log_offset = pg.log_size()
    state = {"pids": pids, "conn": conn, "backend_pid": backend_pid, "log_offset": log_offset}
    yield state
    conn.close()


def get(c, target: str, timeout: float = 10):
    c.send(build_request("GET", target))
    return c.read_response(timeout=timeout)


def test_sql_error_is_400_and_connection_survives(pg, baseline):
    with pg.raw() as c:
        r = get(c, "/boom")
        assert_pgrst_error(r.status, r.body, 400, "22012")
        r = get(c, "/books")
        assert r.status == 200, r
        assert len(r.json()) == 5
    assert pg.http_pids() == baseline["pids"]


def test_statement_timeout(pg, baseline):
    with pg.reload_with(statement_timeout="500ms"):
        with pg.raw() as c:
            t0 = time.monotonic()
            r = get(c, "/slow", timeout=6)
            elapsed = time.monotonic() - t0
            assert_pgrst_error(r.status, r.body, 500, "57014")
            assert elapsed < 2.5, f"statement_timeout 500ms answered after {elapsed:.2f}s"
            r = get(c, "/books?id=eq.1")
            assert r.status == 200, r
    assert pg.http_pids() == baseline["pids"]


def test_pg_cancel_backend_on_every_worker(pg, baseline):
    result: dict = {}

    def slow_request():
        t0 = time.monotonic()
        try:
            with pg.raw(timeout=8) as c:
                result["resp"] = get(c, "/slow", timeout=8)
                # Same connection still good afterwards.
                result["after"] = get(c, "/books?id=eq.2", timeout=5)
        except Exception as exc:  # noqa: BLE001 - reported by the main thread
            result["error"] = exc
        result["elapsed"] = time.monotonic() - t0

    t = threading.Thread(target=slow_request, daemon=True)
    t.start()
    # Cancel only once the SQL runs: a cancel that lands between requests is dropped by design.
    wait_until(lambda: pg.sql("SELECT 1 FROM pg_stat_activity WHERE backend_type = "
                              "'pg_rest http' AND state = 'active' AND query LIKE '%\"slow\"%'"),
               5, interval=0.05, what="/slow running in a pg_rest http worker")
    # Cancel every http worker: the idle one gets a cancel too, which must be harmless.
    cancelled = pg.sql("SELECT pid, pg_cancel_backend(pid) FROM pg_stat_activity "
                       "WHERE backend_type = 'pg_rest http'")
    t.join(10)
    assert not t.is_alive(), "slow request still running 10 s after pg_cancel_backend"
    assert len(cancelled) == 2 and all(ok for _, ok in cancelled), cancelled
    assert "error" not in result, f"slow request failed: {result['error']!r}"
    r = result["resp"]
    assert_pgrst_error(r.status, r.body, 500, "57014")
    assert result["elapsed"] < 2.5, f"cancelled request answered after {result['elapsed']:.2f}s"
    assert result["after"].status == 200, result["after"]

    # Nobody died, and a cancel received while idle does not fail later requests.
    assert pg.http_pids() == baseline["pids"]
    for n in range(10):
        with pg.raw(timeout=5) as c:
            r = get(c, f"/books?id=eq.{n % 5 + 1}", timeout=5)
            assert r.status == 200, f"request {n} after the cancels: {r!r}"
    assert pg.http_pids() == baseline["pids"]


def test_rust_panic_is_500_and_worker_survives(pg, baseline):
    with pg.raw() as c:
        r = get(c, "/_pg_rest_test/panic")
        assert_pgrst_error(r.status, r.body, 500)
        r = get(c, "/books")
        assert r.status == 200, r
        assert len(r.json()) == 5
    assert pg.http_pids() == baseline["pids"]


def test_error_inside_held_interrupts_leaves_cancels_working(pg, baseline):
    """An ERROR raised while interrupts are held (as inside a guarded log call) must leave the
    hold-off count as it was: the same worker still takes a cancel afterwards."""
    with pg.raw(timeout=10) as c:
        r = get(c, "/_pg_rest_test/error_in_log")
        assert_pgrst_error(r.status, r.body, 500, "XX000")
        pid = get(c, "/worker").json()[0]["pid"]
        result: dict = {}

        def slow():
            t0 = time.monotonic()
            result["resp"] = get(c, "/slow", timeout=10)
            result["elapsed"] = time.monotonic() - t0

        t = threading.Thread(target=slow, daemon=True)
        t.start()
        wait_until(lambda: pg.sql("SELECT 1 FROM pg_stat_activity WHERE pid = %s AND "
                                  "state = 'active' AND query LIKE '%%\"slow\"%%'", pid),
                   5, interval=0.05, what="/slow running on the same worker")
        assert pg.sql("SELECT pg_cancel_backend(%s)", pid)[0][0] is True
        t.join(10)
        assert not t.is_alive()
        assert_pgrst_error(result["resp"].status, result["resp"].body, 500, "57014")
        assert result["elapsed"] < 2.5, f"cancel took effect after {result['elapsed']:.2f}s"
        assert get(c, "/books?id=eq.1").status == 200
    assert pg.http_pids() == baseline["pids"]


def test_terminated_worker_is_replaced_and_others_keep_serving(pg, baseline):
    before = pg.http_pids()
    assert len(before) == 2, before
    victim, survivor = sorted(before)
    assert pg.sql("SELECT pg_terminate_backend(%s)", victim)[0][0] is True

    # The other worker serves at once; a connection that landed on the dying worker may fail
    # once, so each request is allowed one retry.
    t0 = time.monotonic()
    for n in range(10):
        last = None
        for _attempt in range(2):
            try:
                with pg.raw(timeout=3) as c:
                    r = get(c, f"/books?id=eq.{n % 5 + 1}", timeout=3)
                if r.status == 200:
                    last = r
                    break
                last = r
            except (ConnectionClosed, ConnectionRefusedError, ConnectionResetError,
                    socket.timeout, TimeoutError) as exc:
                last = exc
            time.sleep(0.1)
        assert getattr(last, "status", None) == 200, f"request {n} after terminate: {last!r}"
    assert time.monotonic() - t0 < 10

    def two_workers_again():
        pids = pg.http_pids()
        return pids if len(pids) == 2 and victim not in pids else None

    pids = wait_until(two_workers_again, 15, interval=0.25,
                      what="a replacement http worker (2 workers, victim gone)")
    assert survivor in pids, f"the surviving worker {survivor} was restarted too: {pids}"
    new = pids - before
    assert len(new) == 1, f"expected exactly one new worker pid, got {pids} (before {before})"
    assert pg.get("/books").status_code == 200


def test_ordinary_session_undisturbed(pg, baseline):
    conn = baseline["conn"]
    assert conn.execute("SELECT 1").fetchone()[0] == 1
    assert conn.execute("SELECT pg_backend_pid()").fetchone()[0] == baseline["backend_pid"]
    text = pg.log_since(baseline["log_offset"])
    assert "terminating any other active server processes" not in text, text[-3000:]
    assert "was terminated by signal" not in text, text[-3000:]


def _rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def _context_total(pg, pid: int) -> int:
    """PostgreSQL's own count of the bytes in `pid`'s memory contexts (Grand total line of
    pg_log_backend_memory_contexts, which the worker answers between requests)."""
    offset = pg.log_size()
    assert pg.sql("SELECT pg_log_backend_memory_contexts(%s)", pid)[0][0] is True

    def grand_total():
        for line in pg.log_since(offset).splitlines():
            if f"[{pid}]" in line and "Grand total:" in line:
                return int(line.split("Grand total:")[1].split()[0])
        return None
    return wait_until(grand_total, 5, interval=0.05, what=f"memory contexts of {pid}")


def _hammer(pg, targets: list[str], rounds: int) -> None:
    """Pipelines `rounds` batches of `targets` on one keep-alive connection."""
    with pg.raw(timeout=20) as c:
        batch = b"".join(build_request("GET", t) for t in targets)
        for _ in range(rounds):
            c.send(batch)
            for _ in targets:
                c.read_response(timeout=20)


# Requests per worker measured: a leak of 64 bytes per request would grow RSS by > 1 MB.
MEASURED_REQUESTS = 20_000
RSS_SLACK_KB = 1024
# PostgreSQL's memory contexts must not grow at all beyond block rounding.
CONTEXT_SLACK_BYTES = 64 * 1024


def test_failed_requests_do_not_leak_memory(pg, baseline):
    """Every request's memory is freed, on success and on every failure path: after warm-up,
    neither PostgreSQL's memory contexts nor the worker's RSS grow over 20,000 requests per
    worker mixing successes, SQL errors, panics and planning errors."""
    targets = ["/boom", "/books?id=eq.1", "/_pg_rest_test/panic", "/nope", "/books?id=eq.abc"]
    pids = pg.http_pids()

    def served() -> dict[int, int]:
        return dict(pg.sql("SELECT pid, requests FROM pg_rest.stat_workers"))

    def load(per_worker: int) -> None:
        start = served()
        for _ in range(1000):
            if min(served().get(p, 0) - start.get(p, 0) for p in pids) >= per_worker:
                return
            # Several connections at once, so both workers take a share.
            threads = [threading.Thread(target=_hammer, args=(pg, targets, 40))
                       for _ in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
        pytest.fail(f"could not load both workers: {start} -> {served()}")

    # Warm up every worker: first use of each path allocates caches that stay.
    load(2000)
    before = {p: (_rss_kb(p), _context_total(pg, p)) for p in pids}
    load(MEASURED_REQUESTS)
    after = {p: (_rss_kb(p), _context_total(pg, p)) for p in pids}
    rss = {p: after[p][0] - before[p][0] for p in pids}
    contexts = {p: after[p][1] - before[p][1] for p in pids}
    assert all(g < RSS_SLACK_KB for g in rss.values()), f"RSS growth in kB per worker: {rss}"
    assert all(g < CONTEXT_SLACK_BYTES for g in contexts.values()), (
        f"memory-context growth in bytes per worker: {contexts}")
    assert pg.http_pids() == pids, "a worker died under the error load"
