"""PostgREST's custom media types (its "media type handlers") and raw request bodies.

A domain named after a media type makes that type negotiable: an aggregate returning it
answers for one relation's rows (or, over `anyelement`, for any rows), and a function
returning it answers for itself; `*/*` answers any `Accept`, as `application/octet-stream`.
The body is the value as its type's binary send function writes it (a jsonb gets PostgREST's
leading version byte 0x01). A POST body of `text/plain`, `text/xml` or
`application/octet-stream` goes whole to a function's one unnamed parameter of type text, xml
or bytea.

On schema `library` (tests/fixtures/library.sql): tsv_agg(tags) → "text/tab-separated-values",
ndjson_agg(anyelement) → "application/x-ndjson", logo() → "image/png",
summary() → "application/vnd.summary+json" (jsonb), anything() and echo_bytes(bytea) → "*/*",
shout(text) and root_name(xml) → text.
"""

from __future__ import annotations

import json

from conftest import assert_pgrst_error

PROFILE = {"Accept-Profile": "library"}
POST_PROFILE = {"Content-Profile": "library"}
LOGO = bytes.fromhex("89504e470d0a1a0a00ff")
TAGS_TSV = ("id\tname\n1\tclassic\n2\taward-winner\n3\thumor\n4\tseries\n"
            "5\tshort-stories\n6\tunread\n")


def get(http, target: str, accept: str | None = None):
    headers = dict(PROFILE)
    if accept is not None:
        headers["Accept"] = accept
    return http.get(target, headers=headers)


def test_a_relation_aggregate_answers_its_media_type(http):
    r = get(http, "/tags?order=id", "text/tab-separated-values")
    assert r.status_code == 200, r.text
    # A type PostgREST does not know has no charset.
    assert r.headers["content-type"] == "text/tab-separated-values"
    assert r.text == TAGS_TSV
    assert r.headers["content-range"] == "0-5/*"
    # The handler takes whole rows: with select= it does not apply, and nothing else
    # produces the type.
    r = get(http, "/tags?select=id&order=id", "text/tab-separated-values")
    assert_pgrst_error(r.status_code, r.content, 406, "PGRST107")
    # Only for its relation.
    r = get(http, "/authors", "text/tab-separated-values")
    assert_pgrst_error(r.status_code, r.content, 406, "PGRST107")
    # No rows: the aggregate's NULL is an empty body.
    r = get(http, "/tags?id=eq.0", "text/tab-separated-values")
    assert (r.status_code, r.content) == (200, b"")


def test_an_anyelement_aggregate_answers_for_any_rows(http):
    r = get(http, "/authors?select=id,name&id=lte.2&order=id", "application/x-ndjson")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/x-ndjson"
    lines = r.text.splitlines()
    assert [json.loads(line) for line in lines] == [
        {"id": 1, "name": "Ursula K. Le Guin"}, {"id": 2, "name": "Terry Pratchett"}]
    # And for a function's rows.
    r = get(http, "/rpc/books_by?author=2&select=id", "application/x-ndjson")
    assert (r.status_code, r.text) == (200, '{"id":3}\n'), r.text


def test_the_first_acceptable_type_wins(http):
    r = get(http, "/tags?order=id&limit=1", "text/csv, text/tab-separated-values")
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    r = get(http, "/tags?order=id&limit=1", "text/csv;q=0.5, text/tab-separated-values")
    assert r.headers["content-type"] == "text/tab-separated-values"
    # Without Accept, and for JSON, nothing changes.
    r = get(http, "/tags?order=id&limit=1&select=id")
    assert (r.headers["content-type"], r.json()) == (
        "application/json; charset=utf-8", [{"id": 1}])


def test_a_function_returning_a_media_type_sends_its_value(http):
    r = get(http, "/rpc/logo", "image/png")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    assert r.content == LOGO
    # As JSON it is still a plain bytea value.
    r = get(http, "/rpc/logo", "application/json")
    assert r.json() == "\\x" + LOGO.hex()
    r = get(http, "/rpc/logo", "image/webp")
    assert_pgrst_error(r.status_code, r.content, 406, "PGRST107")


def test_a_jsonb_media_type_is_sent_as_postgrest_sends_it(http):
    r = get(http, "/rpc/summary", "application/vnd.summary+json")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/vnd.summary+json"
    # jsonb's binary form: version byte 1, then the text (PostgREST sends the same bytes).
    assert r.content[:1] == b"\x01"
    books = len(get(http, "/books?select=id").json())
    assert json.loads(r.content[1:]) == {"books": books}


def test_a_star_handler_answers_any_accept_as_octet_stream(http):
    for accept in ("*/*", "image/boingo", "application/json", None):
        r = get(http, "/rpc/anything", accept)
        assert r.status_code == 200, (accept, r.text)
        assert r.headers["content-type"] == "application/octet-stream", accept
        assert r.content == b"any"


def test_raw_bodies_go_whole_to_one_unnamed_parameter(http):
    payload = bytes(range(256))
    r = http.post("/rpc/echo_bytes", content=payload, headers={
        **POST_PROFILE, "Content-Type": "application/octet-stream",
        "Accept": "application/octet-stream"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.content == payload
    r = http.post("/rpc/shout", content="caf\u00e9 au lait".encode(), headers={
        **POST_PROFILE, "Content-Type": "text/plain; charset=utf-8"})
    assert (r.status_code, r.json()) == (200, "CAF\u00c9 AU LAIT"), r.text
    r = http.post("/rpc/root_name", content=b"<shelf><book/></shelf>", headers={
        **POST_PROFILE, "Content-Type": "text/xml"})
    assert (r.status_code, r.json()) == (200, "shelf"), r.text


def test_a_raw_body_needs_a_function_that_takes_it(http):
    # shout takes text, not bytes: no function matches (PostgREST's PGRST202).
    r = http.post("/rpc/shout", content=b"abc", headers={
        **POST_PROFILE, "Content-Type": "application/octet-stream"})
    err = assert_pgrst_error(r.status_code, r.content, 404, "PGRST202")
    assert err["hint"] is None  # a raw body has no parameter names to compare
    # Text must be UTF-8.
    r = http.post("/rpc/shout", content=b"\xff\xfe", headers={
        **POST_PROFILE, "Content-Type": "text/plain"})
    assert_pgrst_error(r.status_code, r.content, 400, "PGRST102")
    # Writes to relations take no raw bodies: a text body is read as JSON and refused.
    r = http.post("/tags", content=b"abc", headers={
        **POST_PROFILE, "Content-Type": "text/plain"})
    assert r.status_code == 400, r.text
    assert http.get("/tags?name=eq.abc", headers=PROFILE).json() == []


def test_a_write_returning_rows_uses_the_handler(pg):
    """A write returns its rows through the handler only with return=representation."""
    pg.psql("CREATE TABLE library.notes (id int PRIMARY KEY, body text);"
            "GRANT ALL ON library.notes TO web_anon, web_user;")
    try:
        with pg.client() as c:
            headers = {**POST_PROFILE, "Accept": "application/x-ndjson",
                       "Prefer": "return=representation"}
            r = c.post("/notes", json=[{"id": 1, "body": "a"}, {"id": 2, "body": "b"}],
                       headers=headers)
            assert r.status_code == 201, r.text
            assert r.headers["content-type"] == "application/x-ndjson"
            assert r.text == '{"id":1,"body":"a"}\n{"id":2,"body":"b"}\n'
            r = c.post("/notes", json={"id": 3, "body": "c"},
                       headers={**POST_PROFILE, "Accept": "application/x-ndjson"})
            assert (r.status_code, r.content) == (201, b"")
            r = c.post("/notes", json={"id": 4, "body": "d"},
                       headers={**POST_PROFILE, "Accept": "image/webp"})
            assert_pgrst_error(r.status_code, r.content, 406, "PGRST107")
            assert c.get("/notes?select=id&order=id", headers=PROFILE).json() == [
                {"id": 1}, {"id": 2}, {"id": 3}]
    finally:
        pg.psql("DROP TABLE library.notes;")
