"""pg_rest.stat_workers and pg_rest.log_requests."""

from __future__ import annotations

import re
import time

from conftest import build_request, wait_until

COLUMNS = ["worker", "pid", "connections", "requests", "errors", "bytes_in", "bytes_out",
           "plans", "started"]
TIMESTAMPTZ_OID = 1184


def totals(pg) -> dict[str, int]:
    row = pg.sql("SELECT coalesce(sum(connections), 0)::int8, coalesce(sum(requests), 0)::int8,"
                 " coalesce(sum(errors), 0)::int8, coalesce(sum(bytes_in), 0)::int8,"
                 " coalesce(sum(bytes_out), 0)::int8 FROM pg_rest.stat_workers")[0]
    return dict(zip(["connections", "requests", "errors", "bytes_in", "bytes_out"], row))


def test_stat_workers_shape(pg):
    with pg.connect() as conn:
        cur = conn.execute("SELECT * FROM pg_rest.stat_workers")
        names = [d.name for d in cur.description]
        rows = cur.fetchall()
        for col in COLUMNS:
            assert col in names, f"column {col} missing from pg_rest.stat_workers: {names}"
        started = next(d for d in cur.description if d.name == "started")
        assert started.type_code == TIMESTAMPTZ_OID, f"started is type oid {started.type_code}"
    pid_idx = names.index("pid")
    pids = [r[pid_idx] for r in rows]
    assert len(pids) == len(set(pids)), f"duplicate pids: {rows}"
    assert set(pids) == pg.http_pids(), f"stat_workers pids {pids} != {pg.http_pids()}"
    assert len(rows) == len(pg.http_pids())


def test_plans_are_kept_per_request_shape(pg):
    """One prepared plan per request shape, reused for other values of the same shape."""
    def plans() -> dict[int, int]:
        return dict(pg.sql("SELECT pid, plans FROM pg_rest.stat_workers"))

    shape = "/books?year=gte.{}&author=neq.nobody&title=not.is.null"
    before = plans()
    for year in range(1990, 2010):
        assert pg.get(shape.format(year)).status_code == 200
    after_one_shape = plans()
    grown = {p: after_one_shape[p] - before.get(p, 0) for p in after_one_shape}
    assert all(g <= 1 for g in grown.values()), f"plans per worker grew by {grown}"
    assert sum(grown.values()) >= 1, "the new shape was never prepared"
    for year in range(2010, 2030):
        assert pg.get(shape.format(year)).status_code == 200
    assert plans() == after_one_shape, "same shape, other values: no new plan"
    assert pg.get("/books?year=lt.2000&id=gt.0").status_code == 200
    assert sum(plans().values()) == sum(after_one_shape.values()) + 1


def test_stat_workers_counts_requests_and_bytes(pg):
    before = totals(pg)
    with pg.client() as c:
        for i in range(20):
            assert c.get(f"/books?id=eq.{i % 5 + 1}").status_code == 200

    def grown():
        now = totals(pg)
        return now if (now["requests"] >= before["requests"] + 20
                       and now["bytes_in"] > before["bytes_in"]
                       and now["bytes_out"] > before["bytes_out"]) else None
    try:
        wait_until(grown, 5, interval=0.1, what="stat_workers counters to grow")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: before={before} after={totals(pg)}") from None


def test_stat_workers_counts_errors(pg):
    before = totals(pg)
    assert pg.get("/nope").status_code == 404

    def grown():
        return totals(pg)["errors"] > before["errors"]
    try:
        wait_until(grown, 5, interval=0.1, what="stat_workers.errors to grow after a 404")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: before={before} after={totals(pg)}") from None


def test_stat_workers_counts_connections(pg):
    baseline = totals(pg)["connections"]
    conns = []
    try:
        for _ in range(3):
            c = pg.raw()
            c.send(build_request("GET", "/books?id=eq.1"))
            assert c.read_response().status == 200
            conns.append(c)
        wait_until(lambda: totals(pg)["connections"] >= baseline + 3, 5, interval=0.1,
                   what=f"sum(connections) >= {baseline + 3} with 3 idle keep-alive connections")
    finally:
        for c in conns:
            c.close()
    wait_until(lambda: totals(pg)["connections"] <= baseline, 5, interval=0.1,
               what=f"sum(connections) back to <= {baseline} after closing them")


def _wait_log(pg, offset: int, pattern: re.Pattern, timeout: float) -> str | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = pg.log_since(offset)
        m = pattern.search(text)
        if m:
            return m.group(0)
        time.sleep(0.1)
    return None


def test_log_requests_on(pg):
    with pg.reload_with(log_requests="on"):
        offset = pg.log_size()
        assert pg.get("/books?id=eq.1").status_code == 200
        line = _wait_log(pg, offset, re.compile(r'pg_rest: "GET /books\?id=eq\.1" 200'), 5)
        assert line, ("no request log line within 5 s; log since the request:\n" +
                      pg.log_since(offset)[-3000:])


def test_log_requests_off(pg):
    offset = pg.log_size()
    assert pg.get("/books_view?id=eq.3").status_code == 200
    line = _wait_log(pg, offset, re.compile(r'"GET /books_view\?id=eq\.3"'), 1.5)
    assert line is None, f"request logged with log_requests = off: {line}"
