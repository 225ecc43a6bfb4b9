"""PostgREST v16 RPC (/rpc/<function>) over raw HTTP, on schema `shop`
(tests/fixtures/writes.sql): GET calls carry `Accept-Profile: shop`, POST calls
`Content-Profile: shop`.

The fixed data the set-returning functions read (shop.products):
  1 hammer 12 c1 · 2 wrench 8 c1 · 3 saw 20 c1 · 4 kite 15 c2 · 5 yoyo 3 c2 · 6 rake 9 c3
  categories: 1 tools · 2 toys · 3 garden
Expected statuses, headers and bodies follow PostgREST v16 (Response.hs, Error.hs) and the
conformance corpus (/work/shared/conformance/corpus, cases 14xx and 15xx cited).
"""

from __future__ import annotations

import pytest

from conftest import assert_pgrst_error

R = {"Accept-Profile": "shop"}
W = {"Content-Profile": "shop"}
JSON_CT = "application/json; charset=utf-8"
OBJECT_CT = "application/vnd.pgrst.object+json; charset=utf-8"

PRODUCTS = {
    1: {"id": 1, "name": "hammer", "price": 12, "category_id": 1},
    2: {"id": 2, "name": "wrench", "price": 8, "category_id": 1},
    3: {"id": 3, "name": "saw", "price": 20, "category_id": 1},
    4: {"id": 4, "name": "kite", "price": 15, "category_id": 2},
    5: {"id": 5, "name": "yoyo", "price": 3, "category_id": 2},
    6: {"id": 6, "name": "rake", "price": 9, "category_id": 3},
}


@pytest.fixture(autouse=True)
def fresh_events(pg):
    pg.sql("TRUNCATE shop.events RESTART IDENTITY")
    yield


def get(http, path: str, params=None, headers: dict[str, str] | None = None):
    return http.get(path, params=params, headers={**R, **(headers or {})})


def post(http, path: str, body, headers: dict[str, str] | None = None):
    return http.post(path, json=body, headers={**W, **(headers or {})})


def ok(r, status: int = 200, ctype: str = JSON_CT):
    assert r.status_code == status, f"{r.status_code} {r.text}"
    assert r.headers["content-type"] == ctype, r.headers
    return r.json()


def events(pg):
    return pg.sql("SELECT id, what FROM shop.events ORDER BY id")


# ---------------------------------------------------------------------------------------
# Arguments and results
# ---------------------------------------------------------------------------------------


def test_scalar_get_with_query_args(http):
    # corpus 1402: a bare JSON scalar, not wrapped in an array.
    r = get(http, "/rpc/add_them?a=3&b=4")
    assert ok(r) == 7
    assert r.content == b"7"
    assert r.headers["content-profile"] == "shop"


def test_scalar_post_with_json_body(http):
    r = post(http, "/rpc/add_them", {"a": 3, "b": 4})
    assert ok(r) == 7
    assert r.content == b"7"
    assert r.headers["content-profile"] == "shop"


def test_post_array_body_binds_the_first_object(http):
    # corpus 1430
    r = post(http, "/rpc/add_them", [{"a": 1, "b": 2}, {"a": 4, "b": 6}])
    assert ok(r) == 3


def test_scalar_count_exact(http):
    # corpus 1403
    r = get(http, "/rpc/add_them?a=3&b=4", headers={"Prefer": "count=exact"})
    assert ok(r) == 7
    assert r.headers["content-range"] == "0-0/1"


def test_setof_select_and_order(http):
    # corpus 1400/1422
    r = get(http, "/rpc/products_in?cat=1&select=id,name&order=price.desc")
    assert ok(r) == [{"id": 3, "name": "saw"}, {"id": 1, "name": "hammer"},
                     {"id": 2, "name": "wrench"}]
    assert r.headers["content-range"] == "0-2/*"


def test_setof_filters(http):
    # corpus 1423: a filter on a column of the result, not an argument.
    r = get(http, "/rpc/products_in?cat=1&price=lt.15&order=id")
    assert ok(r) == [PRODUCTS[1], PRODUCTS[2]]
    r = get(http, "/rpc/products_in?cat=1&or=(price.gt.15,name.eq.wrench)&select=id&order=id")
    assert ok(r) == [{"id": 2}, {"id": 3}]


def test_setof_limit_offset(http):
    # corpus 1424
    r = get(http, "/rpc/products_in?cat=1&select=id&order=id&limit=2&offset=1")
    assert ok(r) == [{"id": 2}, {"id": 3}]
    assert r.headers["content-range"] == "1-2/*"


def test_setof_count_exact(http):
    # corpus 1425; a page of a counted total is 206 (RangeQuery.rangeStatusHeader).
    r = get(http, "/rpc/products_in?cat=1&select=id&order=id",
            headers={"Prefer": "count=exact"})
    assert ok(r) == [{"id": 1}, {"id": 2}, {"id": 3}]
    assert r.headers["content-range"] == "0-2/3"
    assert r.headers["preference-applied"] == "count=exact"
    r = get(http, "/rpc/products_in?cat=1&select=id&order=id&limit=1",
            headers={"Prefer": "count=exact"})
    assert ok(r, status=206) == [{"id": 1}]
    assert r.headers["content-range"] == "0-0/3"


def test_setof_post_with_query_shaping(http):
    # corpus 1401: arguments from the body, select/filters/order from the query string.
    r = post(http, "/rpc/products_in?select=id,price&price=gte.9&order=price.desc", {"cat": 1})
    assert ok(r) == [{"id": 3, "price": 20}, {"id": 1, "price": 12}]


def test_setof_embedding(http):
    r = get(http, "/rpc/products_in?cat=2&select=name,category:categories(name)&order=id")
    assert ok(r) == [{"name": "kite", "category": {"name": "toys"}},
                     {"name": "yoyo", "category": {"name": "toys"}}]


def test_setof_empty(http):
    # corpus 1407
    assert ok(get(http, "/rpc/products_in?cat=99")) == []


def test_setof_singular(http):
    # corpus 1615
    r = get(http, "/rpc/products_in?cat=3",
            headers={"Accept": "application/vnd.pgrst.object+json"})
    assert ok(r, ctype=OBJECT_CT) == PRODUCTS[6]
    r = get(http, "/rpc/products_in?cat=1",
            headers={"Accept": "application/vnd.pgrst.object+json"})
    err = assert_pgrst_error(r.status_code, r.content, 406, "PGRST116")
    assert err == {"code": "PGRST116", "message": "Cannot coerce the result to a single JSON "
                   "object", "details": "The result contains 3 rows", "hint": None}


def test_composite_result_is_an_object(http):
    # corpus 1408
    assert ok(get(http, "/rpc/cheapest")) == PRODUCTS[5]
    assert ok(post(http, "/rpc/cheapest", {})) == PRODUCTS[5]


def test_out_params_are_an_object(http):
    # corpus 1412
    r = get(http, "/rpc/split_name", params={"full_name": "Ada Lovelace"})
    assert ok(r) == {"first_name": "Ada", "last_name": "Lovelace"}


def test_void_is_204(pg, http):
    # corpus 1409
    r = post(http, "/rpc/log_event", {"what": "opened"})
    assert r.status_code == 204, r.text
    assert r.content == b""
    assert "content-type" not in r.headers
    assert "content-length" not in r.headers
    assert events(pg) == [(1, "opened")]


def test_defaults(http):
    # corpus 1418
    assert ok(get(http, "/rpc/greet")) == "Hello, world"
    assert ok(get(http, "/rpc/greet?name=Ann")) == "Hello, Ann"
    assert ok(post(http, "/rpc/greet", {"greeting": "Hi"})) == "Hi, world"
    assert ok(post(http, "/rpc/greet", {"name": "Bo", "greeting": "Hey"})) == "Hey, Bo"


def test_no_arguments_post_with_empty_body(http):
    # corpus 1420: an empty body is {}.
    r = http.post("/rpc/greet", content=b"",
                  headers={**W, "Content-Type": "application/json"})
    assert ok(r) == "Hello, world"


def test_overload_chosen_by_argument_names(http):
    # corpus 1435-1437
    assert ok(get(http, "/rpc/describe")) == "nothing"
    assert ok(get(http, "/rpc/describe?a=1")) == "one int: 1"
    assert ok(get(http, "/rpc/describe?a=1&b=2")) == "two ints: 3"
    assert ok(get(http, "/rpc/describe?word=hi")) == "a word: hi"
    assert ok(post(http, "/rpc/describe", {})) == "nothing"
    assert ok(post(http, "/rpc/describe", {"a": 2, "b": 3})) == "two ints: 5"
    assert ok(post(http, "/rpc/describe", {"word": "yo"})) == "a word: yo"


def test_variadic(http):
    # corpus 1415/1416
    assert ok(post(http, "/rpc/joined", {"parts": ["a", "b", "c"]})) == "a-b-c"
    assert ok(get(http, "/rpc/joined?parts=x&parts=y")) == "x-y"
    assert ok(get(http, "/rpc/joined?parts=solo")) == "solo"


def test_single_unnamed_json_param_gets_the_whole_body(http):
    # corpus 1438
    body = {"A": 1, "B": [1, 2], "C": {"d": None}}
    assert ok(post(http, "/rpc/echo_json", body)) == body


# ---------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------


def test_unknown_function_get(http):
    r = get(http, "/rpc/no_such_fn")
    err = assert_pgrst_error(r.status_code, r.content, 404, "PGRST202")
    assert err == {
        "code": "PGRST202", "hint": None,
        "message": "Could not find the function shop.no_such_fn without parameters in the "
                   "schema cache",
        "details": "Searched for the function shop.no_such_fn without parameters, but no "
                   "matches were found in the schema cache."}


def test_unknown_function_post(http):
    # corpus 1439: a POST also searched for a single unnamed json parameter.
    r = post(http, "/rpc/no_such_fn", {"x": 1})
    err = assert_pgrst_error(r.status_code, r.content, 404, "PGRST202")
    assert err == {
        "code": "PGRST202", "hint": None,
        "message": "Could not find the function shop.no_such_fn(x) in the schema cache",
        "details": "Searched for the function shop.no_such_fn with parameter x or with a "
                   "single unnamed json/jsonb parameter, but no matches were found in the "
                   "schema cache."}


def test_misspelled_function_gets_a_hint(http):
    # Error.hs noRpcHint: the closest function name of the schema (similarity >= 0.75).
    r = get(http, "/rpc/add_thm?a=1&b=2")
    err = assert_pgrst_error(r.status_code, r.content, 404, "PGRST202")
    assert err == {
        "code": "PGRST202",
        "message": "Could not find the function shop.add_thm(a, b) in the schema cache",
        "details": "Searched for the function shop.add_thm with parameters a, b, but no "
                   "matches were found in the schema cache.",
        "hint": "Perhaps you meant to call the function shop.add_them"}


def test_unknown_argument_get(http):
    # corpus 1433
    r = get(http, "/rpc/add_them?a=1&b=2&c=3")
    err = assert_pgrst_error(r.status_code, r.content, 404, "PGRST202")
    assert err == {
        "code": "PGRST202",
        "message": "Could not find the function shop.add_them(a, b, c) in the schema cache",
        "details": "Searched for the function shop.add_them with parameters a, b, c, but no "
                   "matches were found in the schema cache.",
        "hint": "Perhaps you meant to call the function shop.add_them(a, b)"}


def test_no_hint_for_an_unlike_parameter_list(http):
    # corpus 1439's rule: the overloads' sorted parameter lists must be 0.33 similar.
    r = get(http, "/rpc/add_them?zzzzzzzzzzzz=1")
    err = assert_pgrst_error(r.status_code, r.content, 404, "PGRST202")
    assert err["hint"] is None


def test_unknown_argument_post(http):
    r = post(http, "/rpc/add_them", {"a": 1, "c": 2})
    err = assert_pgrst_error(r.status_code, r.content, 404, "PGRST202")
    assert err == {
        "code": "PGRST202",
        "message": "Could not find the function shop.add_them(a, c) in the schema cache",
        "details": "Searched for the function shop.add_them with parameters a, c or with a "
                   "single unnamed json/jsonb parameter, but no matches were found in the "
                   "schema cache.",
        "hint": "Perhaps you meant to call the function shop.add_them(a, b)"}


@pytest.mark.parametrize("method", ["DELETE", "PATCH", "PUT"])
def test_other_methods_are_405(http, method):
    # corpus 1428/1429/1006
    r = http.request(method, "/rpc/add_them", headers=W)
    err = assert_pgrst_error(r.status_code, r.content, 405, "PGRST101")
    assert err == {"code": "PGRST101", "message": f"Cannot use the {method} method on RPC",
                   "details": None, "hint": None}


def test_get_of_a_writing_function_is_405_and_writes_nothing(pg, http):
    # corpus 1427: GET runs read-only; the INSERT inside raises 25006.
    r = get(http, "/rpc/add_event?what=sneaky")
    err = assert_pgrst_error(r.status_code, r.content, 405, "25006")
    assert err["message"] == "cannot execute INSERT in a read-only transaction"
    r = http.head("/rpc/add_event?what=sneaky", headers=R)
    assert r.status_code == 405
    assert events(pg) == []
    # POST of the same function writes.
    r = post(http, "/rpc/add_event", {"what": "posted"})
    new_id = ok(r)
    assert events(pg) == [(new_id, "posted")]


def test_raise_pt402(http):
    # corpus 1434/1505/1506
    for r in (get(http, "/rpc/raise_pt402"), post(http, "/rpc/raise_pt402", {})):
        err = assert_pgrst_error(r.status_code, r.content, 402, "PT402")
        assert err == {"code": "PT402", "message": "Payment Required",
                       "details": "Quota exceeded", "hint": "Upgrade your plan"}
        assert r.headers["content-type"] == JSON_CT


def test_raise_pgrst_chooses_status_and_headers(http):
    # corpus 1508-1511
    r = get(http, "/rpc/raise_teapot")
    assert r.status_code == 418, r.text
    assert r.headers["x-teapot"] == "short-and-stout"
    assert r.json() == {"code": "TEA01", "message": "I refuse to brew coffee",
                        "details": "short and stout", "hint": "ask for tea"}


def test_response_status_and_headers_gucs(http):
    # corpus 1566/1570
    for r in (get(http, "/rpc/set_response"), post(http, "/rpc/set_response", {})):
        assert r.status_code == 202, r.text
        assert r.headers["x-shop"] == "open"
        assert r.headers["cache-control"] == "no-store"
        assert r.headers["content-type"] == JSON_CT
        assert r.json() == {"accepted": True}


def test_invalid_response_status_is_500(http):
    # corpus 1572
    r = get(http, "/rpc/bad_status")
    err = assert_pgrst_error(r.status_code, r.content, 500, "PGRST112")
    assert err == {"code": "PGRST112", "message": "response.status guc must be a valid status "
                   "code", "details": None, "hint": None}


@pytest.mark.parametrize("fn,allow", [
    ("add_them", "OPTIONS,GET,HEAD,POST"),     # stable: corpus 1032
    ("add_event", "OPTIONS,POST"),             # volatile: corpus 1031
])
def test_options_allow(http, fn, allow):
    r = http.options(f"/rpc/{fn}", headers=R)
    assert r.status_code == 200, r.text
    assert r.headers["allow"] == allow
    assert r.content == b""
