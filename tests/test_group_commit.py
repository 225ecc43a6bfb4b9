"""Group commit (src/execute.rs `commit`, the event loop's `group_flush`): a write commits
without waiting for its own WAL flush; its response is held until one flush covers every
commit of the pass, and later pipelined answers on the same connection stay behind it."""

from __future__ import annotations

import concurrent.futures
import json
import time

import pytest

W = {"Content-Profile": "shop"}
R = {"Accept-Profile": "shop"}


@pytest.fixture(autouse=True)
def fresh_items(pg):
    pg.sql("TRUNCATE shop.items RESTART IDENTITY")
    yield


def test_a_write_is_flushed_before_its_answer(pg, http):
    # Asked right after the answer (well within the WAL writer's 200 ms): the WAL is flushed
    # past the function's insert, so past its commit record too, which pg_rest waited for.
    for _ in range(20):
        r = http.post("/rpc/write_lsn", json={}, headers=W)
        assert r.status_code == 200
        behind = pg.sql("SELECT pg_wal_lsn_diff(pg_current_wal_flush_lsn(), %s::pg_lsn)",
                        r.json())[0][0]
        assert behind > 0, r.json()


def test_pipelined_write_then_read_answer_in_order_and_the_read_sees_the_write(pg):
    body = json.dumps({"name": "piped", "category_id": 1}).encode()
    data = (b"POST /items HTTP/1.1\r\nHost: x\r\nContent-Profile: shop\r\n"
            b"Content-Type: application/json\r\nPrefer: return=representation\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body +
            b"GET /items?name=eq.piped&select=name HTTP/1.1\r\nHost: x\r\nAccept-Profile: shop\r\n\r\n")
    post, get = pg.exchange(data, ["POST", "GET"])
    assert post.status == 201 and json.loads(post.body)[0]["name"] == "piped"
    assert get.status == 200 and json.loads(get.body) == [{"name": "piped"}]


def test_concurrent_writes_share_flushes(pg):
    def sync_count() -> int:
        time.sleep(1.2)  # background workers flush their WAL statistics about once a second
        return pg.sql("SELECT wal_write FROM pg_stat_wal")[0][0]

    n = 300
    before = sync_count()

    def post(i: int) -> int:
        with pg.client() as c:
            return sum(c.post("/items", json={"name": f"c{i}-{j}", "category_id": 1},
                              headers={**W, "Prefer": "return=minimal"}).status_code == 201
                       for j in range(10))

    with concurrent.futures.ThreadPoolExecutor(30) as ex:
        created = sum(ex.map(post, range(n // 10)))
    after = sync_count()
    assert created == n
    assert pg.sql("SELECT count(*) FROM shop.items")[0][0] == n
    # One flush per commit would be n WAL writes (fsync is off in the test cluster, so
    # writes, not syncs, are what can be counted); grouped, far fewer.
    assert after - before < n * 0.8, (before, after)


def test_a_rolled_back_write_is_answered_without_waiting(pg, http):
    r = http.post("/items", json={"name": "gone", "category_id": 1},
                  headers={**W, "Prefer": "tx=rollback, return=representation"})
    assert r.status_code == 201 and r.json()[0]["name"] == "gone"
    assert pg.sql("SELECT count(*) FROM shop.items")[0][0] == 0


def test_a_failed_write_is_answered_and_the_connection_goes_on(pg, http):
    bad = http.post("/items", json={"name": "neg", "qty": -1, "category_id": 1}, headers=W)
    good = http.post("/items", json={"name": "ok", "category_id": 1}, headers=W)
    assert bad.status_code == 400 and bad.json()["code"] == "23514"
    assert good.status_code == 201
