"""REST reads, PostgREST-compatible: filters, errors, views, privileges, schema changes."""

from __future__ import annotations

import pytest

from conftest import assert_pgrst_error, build_request, wait_until

BOOK_KEYS = {"id", "title", "author", "year"}


def ids(resp) -> list[int]:
    return sorted(row["id"] for row in resp.json())


def test_get_all_books(http):
    r = http.get("/books")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json; charset=utf-8"
    assert r.headers["content-range"] == "0-4/*"
    rows = r.json()
    assert isinstance(rows, list) and len(rows) == 5
    for row in rows:
        assert set(row) == BOOK_KEYS, row
    assert sorted(row["id"] for row in rows) == [1, 2, 3, 4, 5]
    by_id = {row["id"]: row for row in rows}
    assert by_id[1] == {"id": 1, "title": "The Rust Programming Language",
                        "author": "Steve Klabnik", "year": 2018}
    assert by_id[5]["author"] is None


def test_eq_one_row(http):
    r = http.get("/books?id=eq.2")
    assert r.status_code == 200, r.text
    assert r.json() == [{"id": 2, "title": "Programming Rust", "author": "Jim Blandy",
                         "year": 2017}]
    assert r.headers["content-range"] == "0-0/*"


def test_two_filters_and_together(http):
    r = http.get("/books", params={"id": "gt.1", "year": "lt.2015"})
    assert r.status_code == 200, r.text
    assert ids(r) == [3, 4, 5]


@pytest.mark.parametrize("query,expected", [
    ({"id": "neq.1"}, [2, 3, 4, 5]),
    ({"year": "gt.2012"}, [1, 2]),
    ({"year": "gte.2012"}, [1, 2, 3]),
    ({"year": "lt.2001"}, [4]),
    ({"year": "lte.2001"}, [4, 5]),
    ({"title": "like.*Rust*"}, [1, 2]),
    ({"title": "like.*rust*"}, []),            # like is case sensitive
    ({"title": "ilike.*rust*"}, [1, 2]),
    ({"title": "ilike.postgresql*"}, [3]),
    ({"author": "is.null"}, [5]),
])
def test_operators(http, query, expected):
    r = http.get("/books", params=query)
    assert r.status_code == 200, r.text
    assert ids(r) == expected


def test_single_quote_value(http):
    r = http.get("/books", params={"title": "eq.The Hitchhiker's Guide to the Galaxy"})
    assert r.status_code == 200, r.text
    assert ids(r) == [4]


def test_injection_attempt_is_just_a_value(pg, http):
    r = http.get("/books", params={"title": "eq.x'; DROP TABLE books; --"})
    assert r.status_code == 200, r.text
    assert r.json() == []
    assert pg.sql("SELECT count(*) FROM books")[0][0] == 5


def test_no_rows(http):
    r = http.get("/books?id=eq.999")
    assert r.status_code == 200, r.text
    assert r.json() == []
    assert r.headers["content-range"] == "*/*"


def test_unknown_table_404(http):
    r = http.get("/nope")
    err = assert_pgrst_error(r.status_code, r.content, 404, "PGRST205")
    assert err["message"] == "Could not find the table 'public.nope' in the schema cache"
    assert err["details"] is None
    # PostgREST hints at a table only when one is >= 75 % similar; none is here.
    assert err["hint"] is None


def test_misspelled_table_gets_a_hint(http):
    # Error.hs tableNotFoundHint: the schema's closest relation name (fuzzy, >= 0.75).
    for method in ("GET", "DELETE"):
        r = http.request(method, "/bookz")
        err = assert_pgrst_error(r.status_code, r.content, 404, "PGRST205")
        assert err["message"] == "Could not find the table 'public.bookz' in the schema cache"
        assert err["hint"] == "Perhaps you meant the table 'public.books'"


def test_unknown_column_in_filter(http):
    r = http.get("/books?nope=eq.1")
    assert_pgrst_error(r.status_code, r.content, 400, "42703")


def test_invalid_integer(http):
    r = http.get("/books?id=eq.abc")
    assert_pgrst_error(r.status_code, r.content, 400, "22P02")


def test_unknown_operator(http):
    r = http.get("/books?id=foo.1")
    assert_pgrst_error(r.status_code, r.content, 400, "PGRST100")


def test_view(http):
    r = http.get("/books_view")
    assert r.status_code == 200, r.text
    rows = r.json()
    assert len(rows) == 5
    assert all(set(row) == {"id", "title"} for row in rows), rows
    r = http.get("/books_view?id=eq.4")
    assert r.json() == [{"id": 4, "title": "The Hitchhiker's Guide to the Galaxy"}]


def test_no_grant_is_401(http):
    r = http.get("/secret")
    assert_pgrst_error(r.status_code, r.content, 401, "42501")


def test_table_created_later_is_served_without_restart(pg, http):
    pg.psql("CREATE TABLE public.late(id int); INSERT INTO public.late VALUES (1), (2);"
            " GRANT SELECT ON public.late TO web_anon;")
    try:
        def served():
            r = http.get("/late")
            return r if r.status_code == 200 else None
        r = wait_until(served, 10, interval=0.2, what="GET /late to answer 200")
        assert sorted(row["id"] for row in r.json()) == [1, 2]
    finally:
        pg.psql("DROP TABLE IF EXISTS public.late")


def test_function_created_later_is_a_computed_column_at_once(pg, http):
    """New functions send no relcache invalidation: the extension's event trigger reloads
    every worker's cache when the DDL commits, so the very next request sees it (both
    workers: several requests)."""
    pg.psql("CREATE FUNCTION public.title_length(public.books) RETURNS int"
            " LANGUAGE sql STABLE AS 'SELECT length($1.title)'")
    try:
        for _ in range(6):
            r = http.get("/books?select=id,title_length&id=eq.4")
            assert r.status_code == 200, r.text
            assert r.json() == [{"id": 4, "title_length": 36}]
    finally:
        pg.psql("DROP FUNCTION IF EXISTS public.title_length(public.books)")
    r = http.get("/books?select=id,title_length&id=eq.4")
    assert_pgrst_error(r.status_code, r.content, 400, "42703")


def test_notify_pgrst_reloads_the_schema_cache(pg, http):
    """PostgREST's `NOTIFY pgrst, 'reload schema'`, with the event triggers disabled so that
    nothing else announces the new function."""
    pg.psql("ALTER EVENT TRIGGER pg_rest_reload_after_ddl DISABLE;"
            " ALTER EVENT TRIGGER pg_rest_reload_after_drop DISABLE;")
    try:
        pg.psql("CREATE FUNCTION public.title_words(public.books) RETURNS int"
                " LANGUAGE sql STABLE AS $$SELECT array_length(string_to_array($1.title, ' '), 1)$$")
        for _ in range(4):
            r = http.get("/books?select=id,title_words&id=eq.4")
            assert_pgrst_error(r.status_code, r.content, 400, "42703")
        pg.psql("NOTIFY pgrst, 'reload schema'")

        def reloaded():
            r = http.get("/books?select=id,title_words&id=eq.4")
            return r if r.status_code == 200 else None
        r = wait_until(reloaded, 5, interval=0.1, what="the NOTIFY to reload the cache")
        assert r.json() == [{"id": 4, "title_words": 6}]
    finally:
        pg.psql("DROP FUNCTION IF EXISTS public.title_words(public.books);"
                " ALTER EVENT TRIGGER pg_rest_reload_after_ddl ENABLE;"
                " ALTER EVENT TRIGGER pg_rest_reload_after_drop ENABLE;")


def test_anonymous_access_disabled(pg):
    with pg.reload_with(anon_role=""):
        r = pg.get("/books")
        err = assert_pgrst_error(r.status_code, r.content, 401, "PGRST302")
        assert err["message"] == "Anonymous access is disabled"
    # Restored.
    wait_until(lambda: pg.get("/books").status_code == 200, 5,
               what="anonymous access to come back")


def test_request_runs_as_anon_role_with_request_settings(pg):
    r = pg.get("/whoami?role=eq.web_anon")
    assert r.status_code == 200, r.text
    assert r.json() == [{"role": "web_anon", "method": "GET", "path": "/whoami"}]


def titles(resp) -> list[str]:
    return [row["title"] for row in resp.json()]


def test_order_by_columns_with_directions_and_nulls(http):
    r = http.get("/books?order=year.desc")
    assert r.status_code == 200, r.text
    assert [row["id"] for row in r.json()] == [1, 2, 3, 5, 4]
    r = http.get("/books?order=author.nullsfirst,id")
    assert [row["id"] for row in r.json()] == [5, 4, 2, 3, 1]
    r = http.get("/books?order=author.desc.nullslast")
    assert [row["id"] for row in r.json()][-1] == 5
    r = http.get("/books?order=nope")
    assert_pgrst_error(r.status_code, r.content, 400, "42703")
    r = http.get("/books?order=id.sideways")
    assert_pgrst_error(r.status_code, r.content, 400, "PGRST100")


def test_limit_offset_and_content_range(http):
    r = http.get("/books?order=id&limit=2&offset=1")
    assert r.status_code == 200, r.text
    assert [row["id"] for row in r.json()] == [2, 3]
    assert r.headers["content-range"] == "1-2/*"
    r = http.get("/books?order=id&limit=0")
    assert r.json() == [] and r.headers["content-range"] == "*/*"
    r = http.get("/books?order=id&offset=-4")
    assert len(r.json()) == 5
    r = http.get("/books?limit=-1")
    err = assert_pgrst_error(r.status_code, r.content, 416, "PGRST103")
    assert err["details"] == "Limit should be greater than or equal to zero."


def test_range_header(http):
    r = http.get("/books?order=id", headers={"Range-Unit": "items", "Range": "1-3"})
    assert [row["id"] for row in r.json()] == [2, 3, 4]
    assert r.headers["content-range"] == "1-3/*"
    # Rows 0-1 (limit) within rows 1-3 (header): row 1 (PostgREST intersects the two).
    r = http.get("/books?order=id&limit=2", headers={"Range": "1-3"})
    assert [row["id"] for row in r.json()] == [2]
    assert r.headers["content-range"] == "1-1/*"
    r = http.get("/books?order=id", headers={"Range": "3-"})
    assert [row["id"] for row in r.json()] == [4, 5]
    r = http.get("/books", headers={"Range": "2-1"})
    assert_pgrst_error(r.status_code, r.content, 416, "PGRST103")


def test_pages_share_one_plan(pg):
    """limit and offset are bind parameters: every page of a shape uses the same kept plan."""
    before = dict(pg.sql("SELECT pid, plans FROM pg_rest.stat_workers"))
    with pg.raw() as c:
        for page in range(6):
            c.send(build_request("GET", f"/books?order=id&limit=1&offset={page + 1}"))
            assert c.read_response().status == 200
        c.send(build_request("GET", "/worker"))
        pid = c.read_response().json()[0]["pid"]
    after = dict(pg.sql("SELECT pid, plans FROM pg_rest.stat_workers"))
    # /worker and the page shape: at most two new plans on that worker.
    assert after[pid] - before.get(pid, 0) <= 2, (before, after)


def test_postgrest_py_order_limit_range(pg):
    from postgrest import SyncPostgrestClient
    with SyncPostgrestClient(pg.base_url) as client:
        rows = client.from_("books").select("*").order("year", desc=True).limit(2).execute().data
        assert [r["id"] for r in rows] == [1, 2]
        rows = client.from_("books").select("*").order("id").range(1, 2).execute().data
        assert [r["id"] for r in rows] == [2, 3]
        rows = client.from_("books").select("*").gte("year", 2012).order("title").execute().data
        assert [r["title"] for r in rows] == sorted(r["title"] for r in rows) and len(rows) == 3


def test_unknown_function_is_404_pgrst202(pg):
    r = pg.get("/rpc/anything?x=1")
    err = assert_pgrst_error(r.status_code, r.content, 404, "PGRST202")
    assert err["message"] == "Could not find the function public.anything(x) in the schema cache"


@pytest.mark.parametrize("target,shown", [
    ("/books?title=eq.a%00b", "0x00"),
    ("/books?title=eq.%FF%FE", "0xff"),
    ("/books?ti%00tle=eq.x", "0x00"),
    ("/books?title=like.%C3*", "0xc3"),
    ("/bo%FFoks", "0xff"),
])
def test_bytes_text_cannot_hold_are_400(pg, target, shown):
    """NUL bytes and bytes that are not UTF-8, wherever a request value becomes text."""
    with pg.raw() as c:
        c.send(f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        r = c.read_response()
        err = assert_pgrst_error(r.status, r.body, 400, "22021")
        assert err["message"] == f'invalid byte sequence for encoding "UTF8": {shown}', err
        # The connection is fine afterwards.
        c.send(b"GET /books?id=eq.1 HTTP/1.1\r\nHost: x\r\n\r\n")
        assert c.read_response().status == 200


def test_multibyte_values_are_fine(http):
    r = http.get("/books", params={"title": "eq.Ünïcödé €"})
    assert r.status_code == 200, r.text
    assert r.json() == []
