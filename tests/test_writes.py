"""The PostgREST v16 write dialect over raw HTTP (POST, PATCH, PUT, DELETE), on schema `shop`
(tests/fixtures/writes.sql).

Every write carries `Content-Profile: shop` (except where a test is about profiles); every
test checks the database afterwards with SQL. The mutable tables are truncated (identities
restarted: shop.items ids start at 1000000) before each test, so the tests are independent.
Expected statuses, headers and bodies follow PostgREST v16 (its source, Response.hs and
Error.hs, and the conformance corpus in /work/shared/conformance/corpus, recorded against a
real PostgREST; case numbers are cited).
"""

from __future__ import annotations

import json

import pytest

from conftest import assert_pgrst_error, bearer

W = {"Content-Profile": "shop"}
R = {"Accept-Profile": "shop"}
JSON_CT = "application/json; charset=utf-8"
OBJECT_CT = "application/vnd.pgrst.object+json; charset=utf-8"
MUTABLE = "shop.items, shop.accounts, shop.stock, shop.notes, shop.ledger, shop.events"


@pytest.fixture(autouse=True)
def fresh_shop(pg):
    pg.sql(f"TRUNCATE {MUTABLE} RESTART IDENTITY")
    yield


def send(http, method: str, path: str, body=None, *, prefer: str | None = None,
         headers: dict[str, str] | None = None, content: bytes | None = None,
         content_type: str | None = None):
    """One write request to schema shop: `body` is sent as JSON, `content` as raw bytes."""
    h = dict(W)
    if prefer is not None:
        h["Prefer"] = prefer
    if body is not None:
        content = json.dumps(body).encode()
        h["Content-Type"] = "application/json"
    if content_type is not None:
        h["Content-Type"] = content_type
    h.update(headers or {})
    return http.request(method, path, content=content, headers=h)


def items(pg, where: str = "true") -> list[tuple]:
    return pg.sql(f"SELECT id, name, qty, note, category_id FROM shop.items WHERE {where} "
                  "ORDER BY id")


def seed_items(pg, *rows: tuple) -> None:
    """rows of (id, name, qty[, note])"""
    for row in rows:
        row = tuple(row) + (None,) * (4 - len(row))
        pg.sql("INSERT INTO shop.items (id, name, qty, note) VALUES (%s, %s, %s, %s)", *row)


def error(r, status: int, code: str) -> dict:
    err = assert_pgrst_error(r.status_code, r.content, status, code)
    assert r.headers["content-type"] == JSON_CT, r.headers
    return err


def assert_no_body(r):
    assert r.content == b"", r.content
    assert "content-type" not in r.headers, r.headers


# ---------------------------------------------------------------------------------------
# POST: representations
# ---------------------------------------------------------------------------------------


def test_post_default_is_minimal(pg, http):
    # corpus 1303/1306: 201, empty body, Content-Length 0, no Content-Type, no Location,
    # no Preference-Applied; Content-Range */* (Response.hs, MutationCreate).
    r = send(http, "POST", "/items", {"id": 1, "name": "hammer"})
    assert r.status_code == 201, r.text
    assert_no_body(r)
    assert r.headers["content-length"] == "0"
    assert r.headers["content-range"] == "*/*"
    assert "location" not in r.headers
    assert "preference-applied" not in r.headers
    assert items(pg) == [(1, "hammer", 1, None, None)]          # qty took its DEFAULT


def test_post_return_minimal_ignores_select(pg, http):
    # corpus 1302
    r = send(http, "POST", "/items?select=id,name", {"id": 2, "name": "saw", "qty": 3},
             prefer="return=minimal")
    assert r.status_code == 201, r.text
    assert_no_body(r)
    assert r.headers["preference-applied"] == "return=minimal"
    assert r.headers["content-range"] == "*/*"
    assert items(pg) == [(2, "saw", 3, None, None)]


def test_post_return_representation_with_select_and_embed(pg, http):
    # corpus 1300/1301/1559: the inserted rows through select= (an embed included), no Location.
    r = send(http, "POST", "/items?select=id,name,qty,category:categories(name)",
             {"id": 3, "name": "kite", "category_id": 2}, prefer="return=representation")
    assert r.status_code == 201, r.text
    assert r.headers["content-type"] == JSON_CT
    assert r.headers["content-range"] == "*/*"
    assert r.headers["preference-applied"] == "return=representation"
    assert r.headers["content-profile"] == "shop"
    assert "location" not in r.headers
    assert r.json() == [{"id": 3, "name": "kite", "qty": 1, "category": {"name": "toys"}}]
    assert items(pg) == [(3, "kite", 1, None, 2)]


def test_post_return_representation_all_columns(pg, http):
    r = send(http, "POST", "/items", {"id": 4, "name": "rope", "qty": 0, "note": "10 m"},
             prefer="return=representation")
    assert r.status_code == 201, r.text
    assert r.json() == [{"id": 4, "name": "rope", "qty": 0, "note": "10 m", "category_id": None}]
    assert items(pg) == [(4, "rope", 0, "10 m", None)]


def test_post_headers_only_location(pg, http):
    # corpus 1304/1305: Location names the new row by its (generated) primary key.
    r = send(http, "POST", "/items", {"name": "auto"}, prefer="return=headers-only")
    assert r.status_code == 201, r.text
    assert_no_body(r)
    assert r.headers["location"] == "/items?id=eq.1000000"
    assert r.headers["content-range"] == "*/*"
    assert r.headers["content-length"] == "0"
    assert r.headers["preference-applied"] == "return=headers-only"
    assert items(pg) == [(1000000, "auto", 1, None, None)]


def test_post_headers_only_location_composite_pk(pg, http):
    # corpus 1562: every primary key column, in key order.
    r = send(http, "POST", "/stock", {"warehouse": "north", "item_code": "A1", "qty": 4},
             prefer="return=headers-only")
    assert r.status_code == 201, r.text
    assert_no_body(r)
    assert r.headers["location"] == "/stock?warehouse=eq.north&item_code=eq.A1"
    assert pg.sql("SELECT warehouse, item_code, qty FROM shop.stock") == [("north", "A1", 4)]


def test_post_empty_object_uses_column_defaults(pg, http):
    # corpus 1353: {} inserts one row of defaults: the identity is generated, email has no
    # default and is NOT NULL, so the row is refused.
    r = send(http, "POST", "/accounts", {}, prefer="return=representation")
    assert error(r, 400, "23502") == {
        "code": "23502", "hint": None,
        "message": 'null value in column "email" of relation "accounts" violates not-null '
                   'constraint',
        "details": "Failing row contains (1, null, null)."}
    assert pg.sql("SELECT count(*) FROM shop.accounts")[0][0] == 0


def test_post_bulk_1000_rows_in_one_request(pg, http):
    rows = [{"name": f"bulk-{i:04d}", "qty": i % 7, "note": None} for i in range(1000)]
    r = send(http, "POST", "/items", rows, prefer="count=exact")
    assert r.status_code == 201, r.text
    assert_no_body(r)
    assert r.headers["content-range"] == "*/1000"
    assert r.headers["preference-applied"] == "count=exact"
    assert "location" not in r.headers                      # corpus 1352
    got = pg.sql("SELECT count(*), count(DISTINCT name), sum(qty), min(id), max(id) "
                 "FROM shop.items")[0]
    assert got == (1000, 1000, sum(i % 7 for i in range(1000)), 1000000, 1000999)
    assert items(pg, "name = 'bulk-0123'") == [(1000123, "bulk-0123", 123 % 7, None, None)]


def test_post_bulk_representation_keeps_order(pg, http):
    rows = [{"id": 12, "name": "c"}, {"id": 10, "name": "a"}, {"id": 11, "name": "b"}]
    r = send(http, "POST", "/items?select=id,name", rows, prefer="return=representation")
    assert r.status_code == 201, r.text
    assert r.json() == rows
    assert [row[0] for row in items(pg)] == [10, 11, 12]


def test_post_empty_array_inserts_nothing(pg, http):
    # corpus 1394
    r = send(http, "POST", "/items", [], prefer="return=representation")
    assert r.status_code == 201, r.text
    assert r.json() == []
    assert items(pg) == []


# ---------------------------------------------------------------------------------------
# POST: payloads
# ---------------------------------------------------------------------------------------


def test_post_columns_ignores_other_keys(pg, http):
    # corpus 1351/1357/1813: only ?columns are read; missing listed keys are NULL.
    rows = [{"id": 20, "name": "a", "note": "x", "qty": 5, "bogus": 1},
            {"id": 21, "name": "b", "garbage": "%%$&"}]
    r = send(http, "POST", "/items?columns=id,name,note&select=id,name,qty,note", rows,
             prefer="return=representation")
    assert r.status_code == 201, r.text
    assert r.json() == [{"id": 20, "name": "a", "qty": 1, "note": "x"},
                        {"id": 21, "name": "b", "qty": 1, "note": None}]
    assert items(pg) == [(20, "a", 1, "x", None), (21, "b", 1, None, None)]


def test_post_missing_default(pg, http):
    # corpus 1361: Prefer missing=default, a listed key an object lacks takes the DEFAULT.
    rows = [{"id": 27, "name": "a"}, {"id": 28, "name": "b", "qty": 9}]
    r = send(http, "POST", "/items?columns=id,name,qty&select=id,name,qty", rows,
             prefer="return=representation, missing=default")
    assert r.status_code == 201, r.text
    assert r.headers["preference-applied"] == "missing=default, return=representation"
    assert r.json() == [{"id": 27, "name": "a", "qty": 1}, {"id": 28, "name": "b", "qty": 9}]
    assert items(pg) == [(27, "a", 1, None, None), (28, "b", 9, None, None)]


def test_post_columns_unknown_column_is_400(pg, http):
    # corpus 1359
    r = send(http, "POST", "/items?columns=id,helicopter", [{"id": 22, "name": "x"}])
    err = error(r, 400, "PGRST204")
    assert err == {"code": "PGRST204", "details": None, "hint": None,
                   "message": "Could not find the 'helicopter' column of 'items' in the "
                              "schema cache"}
    assert items(pg) == []


def test_post_unknown_key_is_400(pg, http):
    r = send(http, "POST", "/items", {"id": 23, "name": "x", "helicopter": 1})
    err = error(r, 400, "PGRST204")
    assert err["message"] == ("Could not find the 'helicopter' column of 'items' in the "
                              "schema cache")
    assert items(pg) == []


def test_post_non_uniform_keys_is_400(pg, http):
    # corpus 1354
    r = send(http, "POST", "/items", [{"id": 24, "name": "a"}, {"id": 25, "name": "b", "qty": 2}])
    err = error(r, 400, "PGRST102")
    assert err == {"code": "PGRST102", "message": "All object keys must match",
                   "details": None, "hint": None}
    assert items(pg) == []


@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_invalid_json_is_400(pg, http, method):
    # corpus 1355/1367
    seed_items(pg, (26, "keep", 1))
    r = send(http, method, "/items?id=eq.26", content=b"}{ x = 2",
             content_type="application/json")
    err = error(r, 400, "PGRST102")
    assert err == {"code": "PGRST102", "message": "Empty or invalid json",
                   "details": None, "hint": None}
    assert items(pg) == [(26, "keep", 1, None, None)]


def test_post_csv_body(pg, http):
    # corpus 1607/1608: a CSV body, NULL is the null token.
    r = send(http, "POST", "/items?select=id,name,qty,note",
             content=b"id,name,qty,note\n30,bolt,5,NULL\n31,nut,6,zinc",
             content_type="text/csv", prefer="return=representation")
    assert r.status_code == 201, r.text
    assert r.headers["content-type"] == JSON_CT
    assert r.json() == [{"id": 30, "name": "bolt", "qty": 5, "note": None},
                        {"id": 31, "name": "nut", "qty": 6, "note": "zinc"}]
    # ... and answered in CSV when asked for it
    r = send(http, "POST", "/items?select=id,name", content=b"id,name\n32,washer",
             content_type="text/csv", prefer="return=representation",
             headers={"Accept": "text/csv"})
    assert r.status_code == 201, r.text
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    assert r.content == b"id,name\n32,washer"
    assert items(pg) == [(30, "bolt", 5, None, None), (31, "nut", 6, "zinc", None),
                         (32, "washer", 1, None, None)]


def test_post_csv_empty_field_is_an_empty_string(pg, http):
    # PostgREST's csvToJson (ApiRequest/Payload.hs): only the token NULL is null; an empty
    # field is the empty string.
    r = send(http, "POST", "/items?select=id,note", content=b"id,name,note\n33,spring,",
             content_type="text/csv", prefer="return=representation")
    assert r.status_code == 201, r.text
    assert r.json() == [{"id": 33, "note": ""}]
    assert items(pg) == [(33, "spring", 1, "", None)]


def test_post_csv_ragged_rows_is_400(pg, http):
    # corpus 1609
    r = send(http, "POST", "/items", content=b"id,name\n33,a\n34", content_type="text/csv")
    err = error(r, 400, "PGRST102")
    assert err == {"code": "PGRST102", "message": "All lines must have same number of fields",
                   "details": None, "hint": None}
    assert items(pg) == []


def test_post_form_body(pg, http):
    # InsertSpec "from an html form": one object of text values.
    r = send(http, "POST", "/items", content=b"id=35&name=garden+hose&qty=2&note=50%25+off",
             content_type="application/x-www-form-urlencoded", prefer="return=representation")
    assert r.status_code == 201, r.text
    assert r.json() == [{"id": 35, "name": "garden hose", "qty": 2, "note": "50% off",
                         "category_id": None}]
    assert items(pg) == [(35, "garden hose", 2, "50% off", None)]


# ---------------------------------------------------------------------------------------
# Upserts
# ---------------------------------------------------------------------------------------


def test_upsert_merge_duplicates(pg, http):
    # corpus 1374/1375: 201 when a row was inserted, 200 when every row merged; only the
    # payload's columns are set on the merged rows.
    seed_items(pg, (40, "old", 1, "n40"), (41, "keep", 2, "n41"))
    r = send(http, "POST", "/items",
             [{"id": 40, "name": "new", "qty": 5}, {"id": 42, "name": "added", "qty": 1}],
             prefer="return=representation, resolution=merge-duplicates")
    assert r.status_code == 201, r.text
    assert r.headers["preference-applied"] == "resolution=merge-duplicates, return=representation"
    assert r.json() == [{"id": 40, "name": "new", "qty": 5, "note": "n40", "category_id": None},
                        {"id": 42, "name": "added", "qty": 1, "note": None, "category_id": None}]
    assert items(pg) == [(40, "new", 5, "n40", None), (41, "keep", 2, "n41", None),
                         (42, "added", 1, None, None)]

    r = send(http, "POST", "/items?select=id,name", [{"id": 41, "name": "merged"}],
             prefer="return=representation, resolution=merge-duplicates")
    assert r.status_code == 200, r.text
    assert r.json() == [{"id": 41, "name": "merged"}]
    assert items(pg, "id = 41") == [(41, "merged", 2, "n41", None)]


def test_upsert_merge_duplicates_minimal(pg, http):
    seed_items(pg, (43, "old", 1))
    r = send(http, "POST", "/items", [{"id": 43, "name": "new", "qty": 3}],
             prefer="resolution=merge-duplicates")
    assert r.status_code == 200, r.text                      # nothing inserted
    assert_no_body(r)
    assert r.headers["preference-applied"] == "resolution=merge-duplicates"
    assert items(pg) == [(43, "new", 3, None, None)]


def test_upsert_ignore_duplicates(pg, http):
    # corpus 1376: conflicting rows are skipped and not returned.
    seed_items(pg, (50, "old", 1))
    r = send(http, "POST", "/items?select=id,name",
             [{"id": 50, "name": "dup"}, {"id": 51, "name": "fresh"}],
             prefer="return=representation, resolution=ignore-duplicates")
    assert r.status_code == 201, r.text
    assert r.headers["preference-applied"] == "resolution=ignore-duplicates, return=representation"
    assert r.json() == [{"id": 51, "name": "fresh"}]
    assert items(pg) == [(50, "old", 1, None, None), (51, "fresh", 1, None, None)]


def test_upsert_on_conflict_unique_column(pg, http):
    # corpus 1377: on_conflict= names the UNIQUE column to merge on.
    pg.sql("INSERT INTO shop.accounts (email, name) VALUES ('ann@example.com', 'Ann')")
    r = send(http, "POST", "/accounts?on_conflict=email&select=email,name",
             [{"email": "ann@example.com", "name": "Ann B"},
              {"email": "bob@example.com", "name": "Bob"}],
             prefer="return=representation, resolution=merge-duplicates")
    assert r.status_code == 201, r.text
    assert r.headers["preference-applied"] == "resolution=merge-duplicates, return=representation"
    assert r.json() == [{"email": "ann@example.com", "name": "Ann B"},
                        {"email": "bob@example.com", "name": "Bob"}]
    rows = pg.sql("SELECT id, email, name FROM shop.accounts ORDER BY email")
    assert rows[0] == (1, "ann@example.com", "Ann B")         # merged: same row
    assert rows[1][1:] == ("bob@example.com", "Bob") and len(rows) == 2

    r = send(http, "POST", "/accounts?on_conflict=email&select=email,name",
             [{"email": "ann@example.com", "name": "ignored"},
              {"email": "cid@example.com", "name": "Cid"}],
             prefer="return=representation, resolution=ignore-duplicates")
    assert r.status_code == 201, r.text
    assert r.json() == [{"email": "cid@example.com", "name": "Cid"}]
    assert pg.sql("SELECT email, name FROM shop.accounts ORDER BY email") == [
        ("ann@example.com", "Ann B"), ("bob@example.com", "Bob"), ("cid@example.com", "Cid")]


def test_post_without_upsert_conflicting_unique_is_409(pg, http):
    pg.sql("INSERT INTO shop.accounts (email, name) VALUES ('ann@example.com', 'Ann')")
    r = send(http, "POST", "/accounts", {"email": "ann@example.com", "name": "Other"})
    err = error(r, 409, "23505")
    assert err == {"code": "23505", "hint": None,
                   "message": 'duplicate key value violates unique constraint "accounts_email_key"',
                   "details": "Key (email)=(ann@example.com) already exists."}
    assert pg.sql("SELECT email, name FROM shop.accounts") == [("ann@example.com", "Ann")]


# ---------------------------------------------------------------------------------------
# PUT
# ---------------------------------------------------------------------------------------

STOCK_N_A1 = "/stock?warehouse=eq.north&item_code=eq.A1"


def stock(pg):
    return pg.sql("SELECT warehouse, item_code, qty FROM shop.stock ORDER BY 1, 2")


def test_put_inserts_201_then_replaces_200(pg, http):
    # corpus 1330/1331/1381/1382
    body = {"warehouse": "north", "item_code": "A1", "qty": 5}
    r = send(http, "PUT", STOCK_N_A1, body, prefer="return=representation")
    assert r.status_code == 201, r.text
    assert r.headers["content-type"] == JSON_CT
    assert r.headers["preference-applied"] == "return=representation"
    assert r.json() == [body]
    assert stock(pg) == [("north", "A1", 5)]

    body = {"warehouse": "north", "item_code": "A1", "qty": 7}
    r = send(http, "PUT", STOCK_N_A1, [body], prefer="return=representation")
    assert r.status_code == 200, r.text
    assert r.json() == [body]
    assert stock(pg) == [("north", "A1", 7)]


def test_put_minimal_is_204(pg, http):
    # corpus 1332: 204 whether it inserted or replaced.
    r = send(http, "PUT", STOCK_N_A1, {"warehouse": "north", "item_code": "A1", "qty": 1},
             prefer="return=minimal")
    assert r.status_code == 204, r.text
    assert_no_body(r)
    assert r.headers["preference-applied"] == "return=minimal"
    r = send(http, "PUT", STOCK_N_A1, {"warehouse": "north", "item_code": "A1", "qty": 9})
    assert r.status_code == 204, r.text
    assert_no_body(r)
    assert "preference-applied" not in r.headers
    assert stock(pg) == [("north", "A1", 9)]


def test_put_single_pk(pg, http):
    seed_items(pg, (60, "old", 4, "n"))
    r = send(http, "PUT", "/items?id=eq.60", {"id": 60, "name": "new", "qty": 2, "note": None,
                                              "category_id": 1}, prefer="return=representation")
    assert r.status_code == 200, r.text
    assert r.json() == [{"id": 60, "name": "new", "qty": 2, "note": None, "category_id": 1}]
    assert items(pg) == [(60, "new", 2, None, 1)]


@pytest.mark.parametrize("path", [
    "/stock?warehouse=eq.north",                                  # not every PK column
    "/stock?warehouse=eq.north&item_code=eq.A1&qty=eq.5",         # not only PK columns
    "/stock?warehouse=eq.north&item_code=neq.A1",                 # not eq
    "/stock?warehouse=eq.north&item_code=in.(A1)",
])
def test_put_filters_must_be_the_pk_with_eq(pg, http, path):
    # corpus 1384/1386
    r = send(http, "PUT", path, {"warehouse": "north", "item_code": "A1", "qty": 5})
    err = error(r, 405, "PGRST105")
    assert err == {"code": "PGRST105", "details": None, "hint": None,
                   "message": "Filters must include all and only primary key columns with "
                              "'eq' operators"}
    assert stock(pg) == []


def test_put_body_must_match_url_pk(pg, http):
    # corpus 1385
    r = send(http, "PUT", STOCK_N_A1, {"warehouse": "south", "item_code": "A1", "qty": 5})
    err = error(r, 400, "PGRST115")
    assert err == {"code": "PGRST115", "details": None, "hint": None,
                   "message": "Payload values do not match URL in primary key column(s)"}
    assert stock(pg) == []


@pytest.mark.parametrize("param", ["limit=1", "offset=1"])
def test_put_limit_offset_refused(pg, http, param):
    # corpus 1383
    r = send(http, "PUT", f"{STOCK_N_A1}&{param}",
             {"warehouse": "north", "item_code": "A1", "qty": 5})
    err = error(r, 400, "PGRST114")
    assert err == {"code": "PGRST114", "details": None, "hint": None,
                   "message": "limit/offset querystring parameters are not allowed for PUT"}
    assert stock(pg) == []


# ---------------------------------------------------------------------------------------
# PATCH
# ---------------------------------------------------------------------------------------


def test_patch_default_204(pg, http):
    # corpus 1311/1362; UpdateSpec "can update multiple items" (Content-Range 0-1/*).
    seed_items(pg, (70, "a", 1), (71, "b", 1), (72, "c", 1))
    r = send(http, "PATCH", "/items?id=in.(70,71)", {"qty": 4})
    assert r.status_code == 204, r.text
    assert_no_body(r)
    assert "content-length" not in r.headers
    assert r.headers["content-range"] == "0-1/*"
    assert "preference-applied" not in r.headers
    assert items(pg) == [(70, "a", 4, None, None), (71, "b", 4, None, None),
                         (72, "c", 1, None, None)]


def test_patch_return_representation(pg, http):
    # corpus 1310/1363
    seed_items(pg, (73, "a", 1), (74, "b", 1))
    r = send(http, "PATCH", "/items?id=eq.74&select=id,qty,note",
             {"qty": 9, "note": "patched"}, prefer="return=representation")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == JSON_CT
    assert r.headers["content-range"] == "0-0/*"
    assert r.headers["preference-applied"] == "return=representation"
    assert r.json() == [{"id": 74, "qty": 9, "note": "patched"}]
    assert items(pg) == [(73, "a", 1, None, None), (74, "b", 9, "patched", None)]


def test_patch_zero_rows(pg, http):
    # corpus 1312/1364
    seed_items(pg, (75, "a", 1))
    r = send(http, "PATCH", "/items?id=eq.999", {"qty": 3}, prefer="return=representation")
    assert r.status_code == 200, r.text
    assert r.json() == []
    assert r.headers["content-range"] == "*/*"
    r = send(http, "PATCH", "/items?id=eq.999", {"qty": 3})
    assert r.status_code == 204, r.text
    assert r.headers["content-range"] == "*/*"
    assert items(pg) == [(75, "a", 1, None, None)]


def test_patch_empty_object_changes_nothing(pg, http):
    # corpus 1365; UpdateSpec "when patching with an empty body".
    seed_items(pg, (76, "a", 3, "n"))
    r = send(http, "PATCH", "/items?id=eq.76", {})
    assert r.status_code == 204, r.text
    assert_no_body(r)
    assert r.headers["content-range"] == "*/*"
    r = send(http, "PATCH", "/items", {})
    assert r.status_code == 204, r.text
    assert r.headers["content-range"] == "*/*"
    assert items(pg) == [(76, "a", 3, "n", None)]


def test_patch_columns_param(pg, http):
    # corpus 1366
    seed_items(pg, (77, "a", 3, "n"))
    r = send(http, "PATCH", "/items?id=eq.77&columns=note",
             {"note": "only this", "qty": 8, "fake": 1}, prefer="return=representation")
    assert r.status_code == 200, r.text
    assert r.json() == [{"id": 77, "name": "a", "qty": 3, "note": "only this",
                         "category_id": None}]
    assert items(pg) == [(77, "a", 3, "only this", None)]


# ---------------------------------------------------------------------------------------
# DELETE
# ---------------------------------------------------------------------------------------


def test_delete_default_204(pg, http):
    # corpus 1321/1369
    seed_items(pg, (80, "a", 1), (81, "b", 1), (82, "c", 1))
    r = send(http, "DELETE", "/items?id=in.(80,81)")
    assert r.status_code == 204, r.text
    assert_no_body(r)
    assert "content-length" not in r.headers
    assert r.headers["content-range"] == "*/*"
    assert items(pg) == [(82, "c", 1, None, None)]


def test_delete_return_representation(pg, http):
    # corpus 1323/1371
    seed_items(pg, (83, "a", 1), (84, "b", 2))
    r = send(http, "DELETE", "/items?id=eq.84&select=item:id,name::text",
             prefer="return=representation")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == JSON_CT
    assert r.headers["content-range"] == "*/*"
    assert r.headers["preference-applied"] == "return=representation"
    assert r.json() == [{"item": 84, "name": "b"}]
    assert items(pg) == [(83, "a", 1, None, None)]


def test_limited_patch_and_delete_write_only_that_range_in_order(pg, http):
    # PostgREST's limited update/delete: `limit`/`offset` with an `order` on unique columns.
    seed_items(pg, *[(i, f"n{i}", i % 2) for i in range(1, 9)])
    r = send(http, "PATCH", "/items?qty=eq.1&order=id.desc&limit=2&offset=1&select=id",
             {"note": "picked"}, prefer="return=representation")
    assert r.status_code == 200, r.text
    assert r.json() == [{"id": 3}, {"id": 5}] or r.json() == [{"id": 5}, {"id": 3}], r.json()
    assert [row[0] for row in items(pg, "note = 'picked'")] == [3, 5]
    r = send(http, "DELETE", "/items?qty=eq.0&order=id&limit=3")
    assert r.status_code == 204, r.text
    assert [row[0] for row in items(pg)] == [1, 3, 5, 7, 8]
    # Without an order the range would pick rows nobody chose: refused, nothing written.
    for method in ("PATCH", "DELETE"):
        r = send(http, method, "/items?limit=1", {"note": "x"} if method == "PATCH" else None)
        err = error(r, 400, "PGRST109")
        assert err["hint"] == "Apply an 'order' using unique column(s)"
    assert len(items(pg)) == 5 and items(pg, "note = 'x'") == []
    # A Range header limits reads only: this DELETE takes every row with qty 0 (8, 10, 12).
    seed_items(pg, (10, "n10", 0), (12, "n12", 0))
    r = send(http, "DELETE", "/items?qty=eq.0", headers={"Range": "0-0"})
    assert r.status_code == 204, r.text
    assert [row[0] for row in items(pg)] == [1, 3, 5, 7]


def test_delete_return_minimal(pg, http):
    # corpus 1322
    seed_items(pg, (85, "a", 1))
    r = send(http, "DELETE", "/items?id=eq.85&select=id", prefer="return=minimal")
    assert r.status_code == 204, r.text
    assert_no_body(r)
    assert r.headers["preference-applied"] == "return=minimal"
    assert items(pg) == []


# ---------------------------------------------------------------------------------------
# Prefer: count, tx, handling/max-affected
# ---------------------------------------------------------------------------------------


def test_count_exact_on_writes(pg, http):
    # corpus 1300/1320/1370
    r = send(http, "POST", "/items", [{"id": 90 + i, "name": f"n{i}"} for i in range(3)],
             prefer="count=exact")
    assert r.status_code == 201, r.text
    assert r.headers["content-range"] == "*/3"
    assert r.headers["preference-applied"] == "count=exact"

    r = send(http, "PATCH", "/items?id=in.(90,91)", {"qty": 2}, prefer="count=exact")
    assert r.status_code == 204, r.text
    assert r.headers["content-range"] == "0-1/2"
    assert r.headers["preference-applied"] == "count=exact"
    assert [row[2] for row in items(pg)] == [2, 2, 1]

    r = send(http, "DELETE", "/items?id=gte.90&select=id", prefer="return=representation, count=exact")
    assert r.status_code == 200, r.text
    assert r.headers["content-range"] == "*/3"
    assert r.headers["preference-applied"] == "return=representation, count=exact"
    assert sorted(row["id"] for row in r.json()) == [90, 91, 92]
    assert items(pg) == []


def test_tx_rollback_answers_and_persists_nothing(pg, http):
    seed_items(pg, (95, "kept", 1))
    r = send(http, "POST", "/items", {"id": 96, "name": "ghost"},
             prefer="return=representation, tx=rollback")
    assert r.status_code == 201, r.text
    assert r.headers["preference-applied"] == "return=representation, tx=rollback"
    assert r.json() == [{"id": 96, "name": "ghost", "qty": 1, "note": None, "category_id": None}]

    r = send(http, "PATCH", "/items?id=eq.95", {"name": "changed"},
             prefer="return=representation, tx=rollback")
    assert r.status_code == 200, r.text
    assert r.json()[0]["name"] == "changed"

    r = send(http, "DELETE", "/items?id=eq.95", prefer="tx=rollback")
    assert r.status_code == 204, r.text
    assert r.headers["preference-applied"] == "tx=rollback"
    assert items(pg) == [(95, "kept", 1, None, None)]


def test_handling_strict_invalid_preference_is_400(pg, http):
    # corpus 1551
    r = send(http, "POST", "/items", {"id": 99, "name": "x"}, prefer="handling=strict, bogus")
    assert error(r, 400, "PGRST122") == {
        "code": "PGRST122", "message": "Invalid preferences given with handling=strict",
        "details": "Invalid preferences: bogus", "hint": None}
    assert items(pg) == []


def test_max_affected_exceeded_is_400_and_rolled_back(pg, http):
    # corpus 1390/1555
    seed_items(pg, *[(100 + i, f"n{i}", 1) for i in range(5)])
    expected = {"code": "PGRST124", "hint": None,
                "message": "Query result exceeds max-affected preference constraint",
                "details": "The query affects 5 rows"}
    r = send(http, "DELETE", "/items?id=gte.100", prefer="handling=strict, max-affected=3")
    assert error(r, 400, "PGRST124") == expected
    r = send(http, "PATCH", "/items?id=gte.100", {"qty": 7},
             prefer="handling=strict, max-affected=3")
    assert error(r, 400, "PGRST124") == expected
    assert items(pg) == [(100 + i, f"n{i}", 1, None, None) for i in range(5)]


def test_max_affected_within_applies(pg, http):
    # corpus 1391/1556
    seed_items(pg, *[(100 + i, f"n{i}", 1) for i in range(5)])
    r = send(http, "PATCH", "/items?id=in.(100,101,102)", {"qty": 7},
             prefer="handling=strict, max-affected=3")
    assert r.status_code == 204, r.text
    assert r.headers["preference-applied"] == "handling=strict, max-affected=3"
    r = send(http, "DELETE", "/items?id=in.(103,104)", prefer="handling=strict, max-affected=3")
    assert r.status_code == 204, r.text
    assert r.headers["preference-applied"] == "handling=strict, max-affected=3"
    assert items(pg) == [(100, "n0", 7, None, None), (101, "n1", 7, None, None),
                         (102, "n2", 7, None, None)]


def test_max_affected_lenient_is_ignored(pg, http):
    # corpus 1392
    seed_items(pg, *[(100 + i, f"n{i}", 1) for i in range(5)])
    r = send(http, "DELETE", "/items?id=gte.100", prefer="handling=lenient, max-affected=3")
    assert r.status_code == 204, r.text
    assert r.headers["preference-applied"] == "handling=lenient"
    assert items(pg) == []


# ---------------------------------------------------------------------------------------
# Constraint violations: the database's error, PostgREST's status
# ---------------------------------------------------------------------------------------


def test_unique_violation_is_409(pg, http):
    # corpus 1500
    seed_items(pg, (110, "first", 1))
    r = send(http, "POST", "/items", {"id": 110, "name": "dup"})
    assert error(r, 409, "23505") == {
        "code": "23505", "hint": None,
        "message": 'duplicate key value violates unique constraint "items_pkey"',
        "details": "Key (id)=(110) already exists."}
    assert items(pg) == [(110, "first", 1, None, None)]


def test_foreign_key_violation_is_409(pg, http):
    # corpus 1501
    r = send(http, "POST", "/items", {"id": 111, "name": "orphan", "category_id": 99})
    assert error(r, 409, "23503") == {
        "code": "23503", "hint": None,
        "message": 'insert or update on table "items" violates foreign key constraint '
                   '"items_category_id_fkey"',
        "details": 'Key (category_id)=(99) is not present in table "categories".'}
    assert items(pg) == []


def test_not_null_violation_is_400(pg, http):
    # corpus 1393
    r = send(http, "POST", "/items", {"id": 112, "qty": 2})
    assert error(r, 400, "23502") == {
        "code": "23502", "hint": None,
        "message": 'null value in column "name" of relation "items" violates not-null '
                   'constraint',
        "details": "Failing row contains (112, null, 2, null, null)."}
    assert items(pg) == []


def test_check_violation_is_400(pg, http):
    seed_items(pg, (113, "x", 1))
    r = send(http, "PATCH", "/items?id=eq.113", {"qty": -1})
    assert error(r, 400, "23514") == {
        "code": "23514", "hint": None,
        "message": 'new row for relation "items" violates check constraint "items_qty_check"',
        "details": "Failing row contains (113, x, -1, null, null)."}
    assert items(pg) == [(113, "x", 1, None, None)]


def test_violation_in_bulk_writes_nothing(pg, http):
    rows = [{"id": 114, "name": "ok", "category_id": 1},
            {"id": 115, "name": "bad", "category_id": 42}]
    r = send(http, "POST", "/items", rows)
    error(r, 409, "23503")
    assert items(pg) == []


# ---------------------------------------------------------------------------------------
# Row level security on writes
# ---------------------------------------------------------------------------------------

ALICE = {"role": "web_user", "sub": "alice"}
RLS_REFUSED = {"code": "42501", "details": None, "hint": None,
               "message": 'new row violates row-level security policy for table "notes"'}


def notes(pg):
    return pg.sql("SELECT owner, body FROM shop.notes ORDER BY id")


def test_rls_allows_own_rows(pg, http):
    r = send(http, "POST", "/notes?select=owner,body", {"owner": "alice", "body": "mine"},
             prefer="return=representation", headers=bearer(ALICE))
    assert r.status_code == 201, r.text
    assert r.json() == [{"owner": "alice", "body": "mine"}]
    assert notes(pg) == [("alice", "mine")]


def test_rls_refused_write_is_403_for_a_user(pg, http):
    r = send(http, "POST", "/notes", {"owner": "bob", "body": "forged"}, headers=bearer(ALICE))
    assert error(r, 403, "42501") == RLS_REFUSED
    assert "www-authenticate" not in r.headers
    assert notes(pg) == []


def test_rls_refused_write_is_401_for_anon(pg, http):
    # corpus 1450: 42501 without a token is 401 with WWW-Authenticate: Bearer.
    r = send(http, "POST", "/notes", {"owner": "anyone", "body": "anon"})
    assert error(r, 401, "42501") == RLS_REFUSED
    assert r.headers["www-authenticate"] == "Bearer"
    assert notes(pg) == []


# ---------------------------------------------------------------------------------------
# A constraint checked at COMMIT
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("prefer", [None, "return=representation"])
def test_deferred_constraint_failing_at_commit(pg, http, prefer):
    """The INSERT succeeds; the deferred constraint trigger raises at COMMIT. The client gets
    that error (P0001 → 400) with its detail and hint, and nothing is written."""
    pg.sql("INSERT INTO shop.ledger (id, amount) VALUES (1, 10)")
    r = send(http, "POST", "/ledger", {"id": 2, "amount": -25}, prefer=prefer)
    assert error(r, 400, "P0001") == {
        "code": "P0001", "message": "the ledger balance must not be negative",
        "details": "The balance would be -15.", "hint": "Post a credit first."}
    assert pg.sql("SELECT id, amount FROM shop.ledger ORDER BY id") == [(1, 10)]
    # The same path commits when the constraint holds.
    r = send(http, "POST", "/ledger", {"id": 3, "amount": -5}, prefer=prefer)
    assert r.status_code == 201, r.text
    assert pg.sql("SELECT id, amount FROM shop.ledger ORDER BY id") == [(1, 10), (3, -5)]


# ---------------------------------------------------------------------------------------
# Singular responses on writes
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("prefer", [None, "return=representation"])
def test_singular_patch_of_two_rows_is_406_and_rolled_back(pg, http, prefer):
    # corpus 1613
    seed_items(pg, (120, "a", 1), (121, "b", 1))
    r = send(http, "PATCH", "/items?id=in.(120,121)", {"qty": 5}, prefer=prefer,
             headers={"Accept": "application/vnd.pgrst.object+json"})
    assert error(r, 406, "PGRST116") == {
        "code": "PGRST116", "message": "Cannot coerce the result to a single JSON object",
        "details": "The result contains 2 rows", "hint": None}
    assert items(pg) == [(120, "a", 1, None, None), (121, "b", 1, None, None)]


def test_singular_write_of_one_row(pg, http):
    # corpus 1614
    seed_items(pg, (122, "a", 1))
    r = send(http, "PATCH", "/items?id=eq.122&select=id,qty", {"qty": 6},
             prefer="return=representation",
             headers={"Accept": "application/vnd.pgrst.object+json"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == OBJECT_CT
    assert r.json() == {"id": 122, "qty": 6}
    r = send(http, "POST", "/items?select=id,name", [{"id": 123, "name": "one"}],
             prefer="return=representation",
             headers={"Accept": "application/vnd.pgrst.object+json"})
    assert r.status_code == 201, r.text
    assert r.headers["content-type"] == OBJECT_CT
    assert r.json() == {"id": 123, "name": "one"}
    assert items(pg) == [(122, "a", 6, None, None), (123, "one", 1, None, None)]


# ---------------------------------------------------------------------------------------
# Read-only GET, profiles, views
# ---------------------------------------------------------------------------------------


def test_write_inside_get_is_405(pg, http):
    r = http.get("/log_on_read", headers=R)
    err = error(r, 405, "25006")
    assert err["message"] == "cannot execute INSERT in a read-only transaction"
    assert pg.sql("SELECT count(*) FROM shop.events")[0][0] == 0


def test_content_profile_unknown_is_406(pg, http):
    # corpus 1012/1560
    r = send(http, "POST", "/items", {"id": 130, "name": "x"},
             headers={"Content-Profile": "unknown"})
    assert error(r, 406, "PGRST106") == {
        "code": "PGRST106", "message": "Invalid schema: unknown", "details": None,
        "hint": "Only the following schemas are exposed: public, library, shop"}
    r = send(http, "DELETE", "/items?id=eq.1", headers={"Content-Profile": "unknown"})
    error(r, 406, "PGRST106")
    assert items(pg) == []


def test_writes_use_content_profile_not_accept_profile(pg, http):
    # Without Content-Profile a write goes to the default schema (public), whatever
    # Accept-Profile says.
    r = http.post("/items", json={"id": 131, "name": "x"}, headers=R)
    err = error(r, 404, "PGRST205")
    assert err["message"] == "Could not find the table 'public.items' in the schema cache"
    assert items(pg) == []


def test_writes_through_an_auto_updatable_view(pg, http):
    r = send(http, "POST", "/cheap_items", {"id": 140, "name": "clip", "qty": 2},
             prefer="return=representation")
    assert r.status_code == 201, r.text
    assert r.json() == [{"id": 140, "name": "clip", "qty": 2}]
    r = send(http, "POST", "/cheap_items", {"id": 141, "name": "pin", "qty": 3},
             prefer="return=headers-only")
    assert r.status_code == 201, r.text
    assert r.headers["location"] == "/cheap_items?id=eq.141"
    assert items(pg) == [(140, "clip", 2, None, None), (141, "pin", 3, None, None)]

    r = send(http, "PATCH", "/cheap_items?id=eq.140", {"qty": 4})
    assert r.status_code == 204, r.text
    assert r.headers["content-range"] == "0-0/*"
    r = send(http, "DELETE", "/cheap_items?id=eq.141", prefer="return=representation")
    assert r.status_code == 200, r.text
    assert r.json() == [{"id": 141, "name": "pin", "qty": 3}]
    assert items(pg) == [(140, "clip", 4, None, None)]


def test_unknown_table_write_is_404(pg, http):
    # corpus 1368/1373
    r = send(http, "PATCH", "/nope", {"a": 1})
    assert error(r, 404, "PGRST205")["message"] == (
        "Could not find the table 'shop.nope' in the schema cache")
    r = send(http, "DELETE", "/nope?id=eq.1")
    error(r, 404, "PGRST205")


# --- domain representations: values parsed by a `json AS domain` cast ---------------------


def test_post_parses_values_through_the_domains_json_cast(pg, http):
    # corpus 1811/1812: the colour is written as "#rrggbb" (shop.color(json)), stored as an
    # integer, and read back through shop.json(color).
    pg.sql("TRUNCATE shop.labels")
    r = http.post("/labels", json=[{"id": 1, "name": "green", "color": "#001100"},
                                   {"id": 2, "name": "white", "color": "#ffffff"}],
                  headers={**W, "Prefer": "return=representation"})
    assert r.status_code == 201, r.text
    assert r.json() == [{"id": 1, "name": "green", "color": "#001100"},
                        {"id": 2, "name": "white", "color": "#ffffff"}]
    assert pg.sql("SELECT id, color::int FROM shop.labels ORDER BY id") == [(1, 4352),
                                                                            (2, 16777215)]


def test_post_with_columns_parses_only_those_keys(pg, http):
    # corpus 1813: keys outside ?columns= are never parsed, whatever they hold; the missing
    # columns take their defaults.
    pg.sql("TRUNCATE shop.labels")
    r = http.post("/labels?columns=id,name", json={"id": 3, "name": "x", "color": "not a colour"},
                  headers={**W, "Prefer": "return=representation"})
    assert r.status_code == 201, r.text
    assert r.json() == [{"id": 3, "name": "x", "color": "#000000"}]


def test_post_a_bad_value_for_the_cast_is_the_cast_functions_error(pg, http):
    pg.sql("TRUNCATE shop.labels")
    r = http.post("/labels", json={"id": 4, "color": "#1000000"}, headers=W)
    assert r.status_code == 400 and r.json()["code"] == "23514"
