"""Formats beyond PostgREST (../shared/API.md "Beyond PostgREST"): JSONP (`?callback=`,
`?jsonp=`), the media type by path extension (`/tags.csv`, `/tags.json`) and by `?type=`, and a
function's one text or bytea value sent raw (`/rpc/page?type=text/html`).

On schema `library` (tests/fixtures/library.sql; every request carries `Accept-Profile:
library`, POSTs `Content-Profile: library`): the tags and authors of the read-dialect tests, and
for this file the functions page(title text default 'Library') → '<h1>' || title || '</h1>',
cover() → bytea 89 50 4e 47 0d 0a 1a 0a 00 ff, nothing() → NULL::text, book_count() → bigint,
and the view "authors.csv" (one row: id 1, note 'view').
"""

from __future__ import annotations

import json
from urllib.parse import quote, urlencode

import pytest

from conftest import assert_pgrst_error

PROFILE = {"Accept-Profile": "library"}
JSON_CT = "application/json; charset=utf-8"
OBJECT_CT = "application/vnd.pgrst.object+json; charset=utf-8"
CSV_CT = "text/csv; charset=utf-8"
JS_CT = "application/javascript; charset=utf-8"
TAGS_CSV = ("id,name,shelf code\n1,classic,A-1\n2,award-winner,B-2\n3,humor,C-3\n"
            "4,series,D-4\n5,short-stories,\n6,unread,Z-9")
TAGS = [{"id": 1, "name": "classic"}, {"id": 2, "name": "award-winner"}]
COVER = bytes.fromhex("89504e470d0a1a0a00ff")


def get(http, target: str, headers: dict[str, str] | None = None, params=None):
    """GET with the library profile; `params` are percent-encoded onto the target's own query
    (httpx's `params=` would replace it)."""
    if params:
        target += ("&" if "?" in target else "?") + urlencode(params, quote_via=quote)
    return http.get(target, headers={**PROFILE, **(headers or {})})


def unwrap(r, callback: str):
    """The JSON inside a JSONP body `callback(<json>);` (content type checked)."""
    assert r.headers["content-type"] == JS_CT, (r.status_code, r.headers, r.text)
    assert r.headers["x-content-type-options"] == "nosniff"
    text = r.text
    assert text.startswith(callback + "(") and text.endswith(");"), text
    return json.loads(text[len(callback) + 1:-2])


# ---------------------------------------------------------------------------------------
# JSONP
# ---------------------------------------------------------------------------------------


def test_callback_wraps_the_json_body(http):
    target = "/tags?select=id,name&id=lte.2&order=id"
    plain = get(http, target)
    assert plain.status_code == 200 and plain.headers["content-type"] == JSON_CT
    r = get(http, target + "&callback=cb")
    assert r.status_code == 200
    assert r.text == f"cb({plain.text});"
    assert unwrap(r, "cb") == TAGS
    # The other headers are the read's.
    assert r.headers["content-range"] == "0-1/*"


@pytest.mark.parametrize("name", ["a.b.c", "$x", "_y", "jQuery3_1$", "app.handlers.$books"])
def test_jsonp_and_identifier_paths(http, name):
    r = get(http, "/tags?select=id,name&id=lte.2&order=id", params={"jsonp": name})
    assert r.status_code == 200, r.text
    assert unwrap(r, name) == TAGS


def test_callback_and_jsonp_are_never_filters(http):
    # Not "column tags.callback does not exist": both are taken out of the filters.
    r = get(http, "/tags?select=id&id=eq.3&callback=f&jsonp=g")
    assert r.status_code == 200, r.text
    assert unwrap(r, "g") == [{"id": 3}]     # the last one given wins
    # Nor arguments of a GET call.
    r = get(http, "/rpc/books_by?author=2&select=id&callback=f")
    assert r.status_code == 200, r.text
    assert unwrap(r, "f") == [{"id": 3}]


def test_singular_and_head(http):
    r = get(http, "/tags?select=id,name&id=eq.1&callback=one",
            {"Accept": "application/vnd.pgrst.object+json"})
    assert r.status_code == 200
    assert unwrap(r, "one") == TAGS[0]
    g = get(http, "/tags?select=id&order=id&callback=cb")
    h = http.head("/tags?select=id&order=id&callback=cb", headers=PROFILE)
    assert h.status_code == 200
    assert h.headers["content-type"] == JS_CT
    assert h.headers["content-length"] == str(len(g.content))
    assert h.content == b""


@pytest.mark.parametrize("name", ["", "alert(1)", "<script>", "a.", ".a", "a..b", "1abc", "x'y",
                                  'x"y', "a b", "a;b", "a[0]", "é", "alert(1)//"])
def test_bad_callback_names_are_400(http, name):
    r = get(http, "/tags", params={"callback": name})
    assert r.headers["content-type"] == JSON_CT      # never a script
    err = assert_pgrst_error(r.status_code, r.content, 400, "PGRST100")
    assert err["message"] == '"callback" must be a JavaScript identifier path'
    assert err["details"].startswith(f'Got "{name}";')
    r = get(http, "/tags", params={"jsonp": name})
    err = assert_pgrst_error(r.status_code, r.content, 400, "PGRST100")
    assert err["message"] == '"jsonp" must be a JavaScript identifier path'


def test_a_callback_without_a_value_is_400(http):
    r = get(http, "/tags?callback")
    assert_pgrst_error(r.status_code, r.content, 400, "PGRST100")


def test_errors_are_wrapped_keeping_their_status(http):
    r = get(http, "/nosuch?callback=cb")
    assert r.status_code == 404
    err = unwrap(r, "cb")
    assert err["code"] == "PGRST205"
    assert r.headers["proxy-status"] == "PostgREST; error=PGRST205"
    r = get(http, "/tags?id=foo.1&callback=cb")
    assert r.status_code == 400
    assert unwrap(r, "cb")["code"] == "PGRST100"
    # Authentication fails before anything is parsed: still wrapped.
    r = get(http, "/tags?callback=cb", {"Authorization": "Bearer a.b"})
    assert r.status_code == 401
    err = unwrap(r, "cb")
    assert (err["code"], err["message"]) == ("PGRST301", "Expected 3 parts in JWT; got 2")
    assert "www-authenticate" in r.headers


def test_csv_is_not_wrapped(http):
    # JSONP applies to JSON bodies only: a client asking for CSV gets CSV.
    r = get(http, "/tags?order=id&callback=cb", {"Accept": "text/csv"})
    assert r.status_code == 200
    assert r.headers["content-type"] == CSV_CT
    assert r.text == TAGS_CSV


# ---------------------------------------------------------------------------------------
# Media type by extension
# ---------------------------------------------------------------------------------------


def test_csv_extension_acts_as_accept_csv(http):
    r = get(http, "/tags.csv?order=id")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == CSV_CT
    assert r.text == TAGS_CSV
    # It overrides the Accept header.
    r = get(http, "/tags.csv?order=id", {"Accept": "application/json"})
    assert (r.headers["content-type"], r.text) == (CSV_CT, TAGS_CSV)


def test_json_extension_acts_as_accept_json(http):
    r = get(http, "/tags.json?select=id,name&id=lte.2&order=id", {"Accept": "text/csv"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == JSON_CT
    assert r.json() == TAGS
    # Even an Accept nothing could answer.
    r = get(http, "/tags.json?select=id&id=eq.1", {"Accept": "image/png"})
    assert (r.status_code, r.json()) == (200, [{"id": 1}])


def test_a_relation_named_with_the_extension_wins(http):
    r = get(http, "/authors.csv")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == JSON_CT
    assert r.json() == [{"id": 1, "note": "view"}]
    r = get(http, "/authors.csv", {"Accept": "text/csv"})
    assert (r.headers["content-type"], r.text) == (CSV_CT, "id,note\n1,view")
    # The real authors stay reachable, in JSON.
    r = get(http, "/authors.json?select=id&id=eq.1")
    assert r.json() == [{"id": 1}]


def test_extension_on_functions(http):
    r = get(http, "/rpc/books_by.csv?author=3&select=id,title")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == CSV_CT
    assert r.text == 'id,title\n4,"The Fifth Season"\n8,"The Stone Sky"'


def test_extension_of_an_unknown_relation_names_it_without(http):
    r = get(http, "/nosuch.csv")
    err = assert_pgrst_error(r.status_code, r.content, 404, "PGRST205")
    assert "library.nosuch" in err["message"]


def test_options_of_a_path_with_an_extension(http):
    r = http.options("/tags.csv", headers=PROFILE)
    assert r.status_code == 200
    assert r.headers["allow"] == "OPTIONS,GET,HEAD,POST,PUT,PATCH,DELETE"


# ---------------------------------------------------------------------------------------
# ?type=
# ---------------------------------------------------------------------------------------


def test_type_negotiates_like_accept(http):
    r = get(http, "/tags?order=id&type=text/csv")
    assert (r.status_code, r.headers["content-type"], r.text) == (200, CSV_CT, TAGS_CSV)
    # It wins over Accept and over the extension.
    r = get(http, "/tags?order=id&type=text/csv", {"Accept": "application/json"})
    assert r.headers["content-type"] == CSV_CT
    r = get(http, "/tags.csv?select=id&id=eq.1&type=application/json")
    assert (r.headers["content-type"], r.json()) == (JSON_CT, [{"id": 1}])
    r = get(http, "/tags?select=id,name&id=eq.1",
            params={"type": "application/vnd.pgrst.object+json"})
    assert (r.headers["content-type"], r.json()) == (OBJECT_CT, TAGS[0])


def test_type_is_never_a_filter(http):
    r = get(http, "/tags?select=id&id=eq.1&type=application/json")
    assert (r.status_code, r.json()) == (200, [{"id": 1}])


def test_type_that_cannot_be_produced_is_406(http):
    r = get(http, "/tags?type=text/html")
    err = assert_pgrst_error(r.status_code, r.content, 406, "PGRST107")
    assert err["message"] == "None of these media types are available: text/html"


@pytest.mark.parametrize("value", ["html", "text/", "text/csv, application/json",
                                   "text/html\r\nX-Evil: 1"])
def test_type_must_be_one_media_type(http, value):
    r = get(http, "/rpc/page", params={"type": value})
    err = assert_pgrst_error(r.status_code, r.content, 400, "PGRST100")
    assert err["message"] == '"type" must be one media type'
    assert "x-evil" not in r.headers


def test_a_text_result_is_sent_raw(http):
    r = get(http, "/rpc/page?type=text/html")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/html"
    assert r.text == "<h1>Library</h1>"
    r = get(http, "/rpc/page", params={"title": "Hi", "type": "text/html; charset=utf-8"})
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert r.content == b"<h1>Hi</h1>"


def test_a_bytea_result_is_sent_as_its_bytes(http):
    r = get(http, "/rpc/cover?type=image/png")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    assert r.content == COVER
    assert r.headers["content-length"] == str(len(COVER))


def test_raw_by_post_head_and_null(http):
    r = http.post("/rpc/page?type=text/plain", json={"title": "Posted"},
                  headers={"Content-Profile": "library"})
    assert (r.status_code, r.headers["content-type"], r.text) == \
        (200, "text/plain", "<h1>Posted</h1>")
    h = http.head("/rpc/page?type=text/html", headers=PROFILE)
    assert (h.status_code, h.headers["content-type"]) == (200, "text/html")
    assert h.headers["content-length"] == str(len("<h1>Library</h1>"))
    r = get(http, "/rpc/nothing?type=text/plain")
    assert (r.status_code, r.headers["content-type"], r.content) == (200, "text/plain", b"")


def test_one_value_calls_answer_the_same_whichever_statement_runs(http):
    # A call answered by one value selects it from the call; a count or a range keeps the
    # general statement (an aggregate over the call's row). Same answers either way.
    for headers in ({}, {"Prefer": "count=exact"}):
        r = get(http, "/rpc/nothing", headers)
        assert (r.status_code, r.headers["content-type"], r.content) == \
            (200, JSON_CT, b"null"), headers
        r = get(http, "/rpc/book_count", headers)
        assert (r.status_code, r.json()) == (200, 8), headers
    r = get(http, "/rpc/book_count?offset=1")
    assert (r.status_code, r.content) == (200, b"null")


def test_a_type_pg_rest_produces_is_not_raw(http):
    r = get(http, "/rpc/page?type=application/json")
    assert (r.headers["content-type"], r.json()) == (JSON_CT, "<h1>Library</h1>")


@pytest.mark.parametrize("target", ["/rpc/book_count?type=text/html",
                                    "/rpc/books_by?author=1&type=text/html"])
def test_other_results_cannot_be_raw(http, target):
    r = get(http, target)
    err = assert_pgrst_error(r.status_code, r.content, 406, "PGRST107")
    assert err["message"] == "None of these media types are available: text/html"


def test_a_raw_result_is_not_wrapped_by_jsonp(http):
    r = get(http, "/rpc/page?type=text/html&callback=cb")
    assert (r.headers["content-type"], r.text) == ("text/html", "<h1>Library</h1>")
