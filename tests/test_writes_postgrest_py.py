"""Writes and RPC through the real postgrest-py client (tests/requirements.txt pins
postgrest==2.34.1), on schema `shop` (tests/fixtures/writes.sql): the requests are the ones
that client builds (its Prefer headers, `columns=` for lists, `on_conflict=`, the profile
headers), the answers are what it parses. The database is checked with SQL after each write;
test_writes.py and test_rpc.py have the raw-HTTP counterparts."""

from __future__ import annotations

from typing import Iterator

import pytest
from postgrest import SyncPostgrestClient
from postgrest.exceptions import APIError

MUTABLE = "shop.items, shop.accounts, shop.stock, shop.notes, shop.ledger, shop.events"


@pytest.fixture
def shop(pg) -> Iterator[SyncPostgrestClient]:
    pg.sql(f"TRUNCATE {MUTABLE} RESTART IDENTITY")
    with SyncPostgrestClient(pg.base_url, schema="shop") as client:
        yield client


def items(pg) -> list[tuple]:
    return pg.sql("SELECT id, name, qty, note, category_id FROM shop.items ORDER BY id")


def item(id_: int, name: str, qty: int = 1, note=None, category_id=None) -> dict:
    return {"id": id_, "name": name, "qty": qty, "note": note, "category_id": category_id}


def test_insert_returns_representation(shop, pg):
    # insert() sends Prefer: return=representation.
    resp = shop.from_("items").insert({"id": 1, "name": "hammer", "qty": 2}).execute()
    assert resp.data == [item(1, "hammer", 2)]
    assert resp.count is None
    assert items(pg) == [(1, "hammer", 2, None, None)]


def test_insert_generated_key(shop, pg):
    resp = shop.from_("items").insert({"name": "auto"}).execute()
    assert resp.data == [item(1000000, "auto")]
    assert items(pg) == [(1000000, "auto", 1, None, None)]


def test_insert_bulk(shop, pg):
    # A list is sent with ?columns= (the union of its keys, quoted): a missing key is NULL.
    rows = [{"id": 10, "name": "a", "qty": 3}, {"id": 11, "name": "b", "note": "x", "qty": 4},
            {"id": 12, "name": "c", "qty": 5}]
    resp = shop.from_("items").insert(rows).execute()
    assert resp.data == [item(10, "a", 3), item(11, "b", 4, "x"), item(12, "c", 5)]
    assert items(pg) == [(10, "a", 3, None, None), (11, "b", 4, "x", None),
                         (12, "c", 5, None, None)]


def test_insert_bulk_missing_default(shop, pg):
    # default_to_null=False: Prefer missing=default, a missing key takes the column default.
    rows = [{"id": 13, "name": "a"}, {"id": 14, "name": "b", "qty": 9}]
    resp = shop.from_("items").insert(rows, default_to_null=False).execute()
    assert resp.data == [item(13, "a", 1), item(14, "b", 9)]
    assert items(pg) == [(13, "a", 1, None, None), (14, "b", 9, None, None)]


def test_insert_count(shop, pg):
    resp = shop.from_("items").insert([{"id": 15, "name": "a"}, {"id": 16, "name": "b"}],
                                      count="exact").execute()
    assert resp.count == 2
    assert [row["id"] for row in resp.data] == [15, 16]
    assert len(items(pg)) == 2


def test_upsert_on_conflict(shop, pg):
    pg.sql("INSERT INTO shop.accounts (email, name) VALUES ('ann@example.com', 'Ann')")
    resp = shop.from_("accounts").upsert({"email": "ann@example.com", "name": "Ann B"},
                                         on_conflict="email").execute()
    assert resp.data == [{"id": 1, "email": "ann@example.com", "name": "Ann B"}]
    resp = shop.from_("accounts").upsert(
        [{"email": "ann@example.com", "name": "ignored"},
         {"email": "bob@example.com", "name": "Bob"}],
        on_conflict="email", ignore_duplicates=True).execute()
    assert [(row["email"], row["name"]) for row in resp.data] == [("bob@example.com", "Bob")]
    assert pg.sql("SELECT email, name FROM shop.accounts ORDER BY email") == [
        ("ann@example.com", "Ann B"), ("bob@example.com", "Bob")]


def test_upsert_on_primary_key(shop, pg):
    pg.sql("INSERT INTO shop.items (id, name, qty) VALUES (20, 'old', 1)")
    resp = shop.from_("items").upsert([{"id": 20, "name": "new", "qty": 2},
                                       {"id": 21, "name": "added", "qty": 3}]).execute()
    assert resp.data == [item(20, "new", 2), item(21, "added", 3)]
    assert items(pg) == [(20, "new", 2, None, None), (21, "added", 3, None, None)]


def test_update_eq(shop, pg):
    pg.sql("INSERT INTO shop.items (id, name, qty) VALUES (30, 'a', 1), (31, 'b', 1)")
    resp = shop.from_("items").update({"qty": 7, "note": "restocked"}).eq("id", 30).execute()
    assert resp.data == [item(30, "a", 7, "restocked")]
    assert items(pg) == [(30, "a", 7, "restocked", None), (31, "b", 1, None, None)]


def test_update_count_and_select(shop, pg):
    pg.sql("INSERT INTO shop.items (id, name, qty) VALUES (32, 'a', 1), (33, 'b', 1)")
    resp = (shop.from_("items").update({"qty": 2}, count="exact")
            .in_("id", [32, 33]).select("id,qty").execute())
    assert sorted(resp.data, key=lambda r: r["id"]) == [{"id": 32, "qty": 2},
                                                        {"id": 33, "qty": 2}]
    assert resp.count == 2
    assert [row[2] for row in items(pg)] == [2, 2]


def test_delete_eq(shop, pg):
    pg.sql("INSERT INTO shop.items (id, name, qty) VALUES (40, 'a', 1), (41, 'b', 1)")
    resp = shop.from_("items").delete().eq("id", 41).execute()
    assert resp.data == [item(41, "b")]
    assert items(pg) == [(40, "a", 1, None, None)]


def test_delete_max_affected(shop, pg):
    pg.sql("INSERT INTO shop.items (id, name, qty) VALUES (42, 'a', 1), (43, 'b', 1)")
    with pytest.raises(APIError) as info:
        shop.from_("items").delete().gte("id", 42).max_affected(1).execute()
    assert info.value.code == "PGRST124"
    assert info.value.details == "The query affects 2 rows"
    assert len(items(pg)) == 2


def test_rpc_scalar(shop):
    resp = shop.rpc("add_them", {"a": 1, "b": 2}).execute()
    assert resp.data == 3
    resp = shop.rpc("add_them", {"a": 5, "b": 6}, get=True).execute()
    assert resp.data == 11


def test_rpc_setof_with_select_and_filters(shop):
    resp = shop.rpc("products_in", {"cat": 1}).select("id, name").eq("price", 8).execute()
    assert resp.data == [{"id": 2, "name": "wrench"}]
    resp = (shop.rpc("products_in", {"cat": 1}).select("id,price").gt("price", 10)
            .order("price", desc=True).execute())
    assert resp.data == [{"id": 3, "price": 20}, {"id": 1, "price": 12}]
    resp = shop.rpc("products_in", {"cat": 2}, get=True).select("name").order("id").execute()
    assert resp.data == [{"name": "kite"}, {"name": "yoyo"}]


def test_rpc_count(shop):
    resp = shop.rpc("products_in", {"cat": 1}, count="exact").execute()
    assert resp.count == 3
    assert [row["id"] for row in resp.data] == [1, 2, 3]


def test_rpc_single(shop):
    resp = shop.rpc("products_in", {"cat": 3}).single().execute()
    assert resp.data == {"id": 6, "name": "rake", "price": 9, "category_id": 3}


def test_rpc_void_writes(shop, pg):
    resp = shop.rpc("log_event", {"what": "from python"}).execute()
    assert resp.data == []
    assert pg.sql("SELECT what FROM shop.events") == [("from python",)]


def test_api_error_on_constraint_violation(shop, pg):
    pg.sql("INSERT INTO shop.items (id, name, qty) VALUES (50, 'first', 1)")
    with pytest.raises(APIError) as info:
        shop.from_("items").insert({"id": 50, "name": "dup"}).execute()
    assert info.value.code == "23505"
    assert info.value.message == 'duplicate key value violates unique constraint "items_pkey"'
    assert info.value.details == "Key (id)=(50) already exists."
    assert info.value.hint is None

    with pytest.raises(APIError) as info:
        shop.from_("items").insert({"id": 51, "name": "orphan", "category_id": 99}).execute()
    assert info.value.code == "23503"
    assert info.value.details == 'Key (category_id)=(99) is not present in table "categories".'

    with pytest.raises(APIError) as info:
        shop.from_("items").update({"qty": -5}).eq("id", 50).execute()
    assert info.value.code == "23514"
    assert items(pg) == [(50, "first", 1, None, None)]


def test_api_error_on_rpc(shop):
    with pytest.raises(APIError) as info:
        shop.rpc("raise_pt402", {}).execute()
    assert (info.value.code, info.value.message, info.value.details, info.value.hint) == (
        "PT402", "Payment Required", "Quota exceeded", "Upgrade your plan")
    with pytest.raises(APIError) as info:
        shop.rpc("add_them", {"a": 1}).execute()
    assert info.value.code == "PGRST202"
