"""Every request is one transaction in the request's own mode: GET and HEAD read-only (a write
inside is PostgREST's 25006 → 405 and writes nothing), `Prefer: tx=rollback` answers and rolls
back, and the statement timer bounds the commit too."""

from __future__ import annotations

import time

from conftest import assert_pgrst_error, build_request


def test_get_that_writes_is_405_and_writes_nothing(pg, http):
    before = pg.sql("SELECT count(*) FROM public.audit")[0][0]
    r = http.get("/writes_on_read")
    err = assert_pgrst_error(r.status_code, r.content, 405, "25006")
    assert err["message"] == "cannot execute INSERT in a read-only transaction", err
    r = http.head("/writes_on_read")
    assert r.status_code == 405, r
    assert pg.sql("SELECT count(*) FROM public.audit")[0][0] == before == 0


def test_reads_see_a_read_only_transaction(http):
    r = http.get("/tx_state")
    assert r.status_code == 200, r.text
    assert r.json() == [{"read_only": "on"}]


def test_prefer_tx_rollback_answers_then_rolls_back(pg):
    # One keep-alive connection: every request reaches the same worker, whose session would
    # keep a committed session-level setting.
    with pg.raw() as c:
        c.send(build_request("GET", "/set_mark", {"Prefer": "tx=rollback"}))
        r = c.read_response()
        assert r.status == 200, r
        assert r.json() == [{"mark": "set"}]
        assert r.header("Preference-Applied") == "tx=rollback"
        c.send(build_request("GET", "/read_mark"))
        r = c.read_response()
        assert r.status == 200, r
        assert r.json()[0]["mark"] in (None, ""), r.json()

        c.send(build_request("GET", "/set_mark", {"Prefer": "tx=commit"}))
        r = c.read_response()
        assert r.header("Preference-Applied") == "tx=commit"
        c.send(build_request("GET", "/read_mark"))
        assert c.read_response().json() == [{"mark": "set"}]


def test_no_prefer_no_preference_applied(http):
    r = http.get("/books?id=eq.1")
    assert r.status_code == 200
    assert "preference-applied" not in r.headers


def test_statement_timeout_covers_the_commit(pg):
    """A deferred constraint trigger sleeping 3 s at COMMIT is stopped by a 500 ms timeout,
    and the row it guarded is not committed."""
    with pg.reload_with(statement_timeout="500ms"):
        with pg.raw(timeout=8) as c:
            t0 = time.monotonic()
            c.send(build_request("GET", "/_pg_rest_test/deferred_write"))
            r = c.read_response(timeout=8)
            elapsed = time.monotonic() - t0
            assert_pgrst_error(r.status, r.body, 500, "57014")
            assert elapsed < 2.5, f"answered after {elapsed:.2f}s: the commit ran unbounded"
            c.send(build_request("GET", "/books?id=eq.1"))
            assert c.read_response().status == 200
    assert pg.sql("SELECT count(*) FROM public.deferred_sleep")[0][0] == 0


def test_deferred_write_commits_without_a_tight_timeout(pg):
    """The same request with the default bound commits after its 3 s trigger: the fault path
    does write, so the test above shows the timeout, not a path that never commits."""
    with pg.raw(timeout=10) as c:
        c.send(build_request("GET", "/_pg_rest_test/deferred_write"))
        r = c.read_response(timeout=10)
        assert r.status == 200, r
    assert pg.sql("SELECT count(*) FROM public.deferred_sleep")[0][0] == 1
    pg.sql("TRUNCATE public.deferred_sleep")
