"""Realtime (API.md "Realtime", docs/realtime.md): change events from the realtime worker's
slot to WebSocket subscribers, NDJSON / JSONP / SSE streams and channels, authorized by the
subscriber's GRANTs and row level security.

On a cluster of its own with `wal_level = logical` and two http workers (target/test-pg-realtime),
so events cross from the realtime worker to both.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time

import httpx
import pytest
import websockets

from conftest import JWT_SECRET, build_cluster, extra_cluster, token, wait_until

SETUP = """
CREATE ROLE web_anon NOLOGIN;
CREATE ROLE web_user NOLOGIN;
CREATE TABLE public.items (id int PRIMARY KEY, n int, label text);
ALTER TABLE public.items REPLICA IDENTITY FULL;
GRANT SELECT ON public.items TO web_anon, web_user;
CREATE TABLE public.todos (id int PRIMARY KEY, owner int NOT NULL, title text);
ALTER TABLE public.todos ENABLE ROW LEVEL SECURITY;
CREATE POLICY mine ON public.todos FOR SELECT TO web_user
  USING (owner = (current_setting('request.jwt.claims', true)::json->>'sub')::int);
GRANT SELECT ON public.todos TO web_user;
CREATE TABLE public.accounts (id int PRIMARY KEY, name text, secret text);
GRANT SELECT (id, name) ON public.accounts TO web_anon;
CREATE TABLE public.hidden (id int PRIMARY KEY);
"""

HTTP_PORT = 3108


@pytest.fixture(scope="module")
def rt():
    c = extra_cluster("test-pg-realtime", 54336, HTTP_PORT, "postgres", wal_level="logical",
                      max_replication_slots="4", max_wal_senders="4",
                      **{"pg_rest.workers": "2", "pg_rest.jwt_secret": f"'{JWT_SECRET}'"})
    try:
        build_cluster(c, None, extra_sql=[SETUP])
        c.wait_http_ready("/items", timeout=60)
        wait_until(lambda: c.sql("SELECT count(*) FROM pg_replication_slots "
                                 "WHERE slot_name = 'pg_rest'") == [(1,)], 30,
                   what="the realtime slot")
        yield c
    finally:
        if (c.data_dir / "postmaster.pid").exists():
            c.stop("immediate")
        if not os.environ.get("PG_REST_KEEP_CLUSTERS"):
            shutil.rmtree(c.root, ignore_errors=True)


def url(rt, path: str = "/realtime") -> str:
    return f"ws://127.0.0.1:{rt.http_port}{path}"


def user(sub: int) -> str:
    return token({"role": "web_user", "sub": str(sub)})


async def recv(ws, timeout: float = 5.0) -> dict:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def nothing_more(ws, wait: float = 0.7) -> None:
    with pytest.raises(asyncio.TimeoutError):
        got = await asyncio.wait_for(ws.recv(), wait)
        pytest.fail(f"unexpected message: {got}")


async def subscribe(ws, **fields) -> dict:
    await ws.send(json.dumps({"op": "subscribe", **fields}))
    return await recv(ws)


def sql(rt, script: str) -> None:
    rt.psql(script)


def run(coro):
    return asyncio.run(coro)


def test_inserts_updates_and_deletes_reach_a_subscriber(rt):
    async def main():
        async with websockets.connect(url(rt), open_timeout=5) as ws:
            assert await subscribe(ws, id="s1", table="public.items") == {
                "op": "subscribed", "id": "s1"}
            # Right after "subscribed": nothing committed from now on is missed.
            sql(rt, "INSERT INTO public.items VALUES (1, 5, 'one')")
            sql(rt, "UPDATE public.items SET n = 6 WHERE id = 1")
            sql(rt, "DELETE FROM public.items WHERE id = 1")
            return [await recv(ws) for _ in range(3)]
    ins, upd, dele = run(main())
    assert ins["op"] == "change" and ins["id"] == "s1" and ins["table"] == "public.items"
    assert ins["type"] == "INSERT"
    assert ins["record"] == {"id": 1, "n": 5, "label": "one"} and ins["old_record"] is None
    assert upd["type"] == "UPDATE" and upd["record"]["n"] == 6
    # REPLICA IDENTITY FULL: the whole old row.
    assert upd["old_record"] == {"id": 1, "n": 5, "label": "one"}
    assert dele["type"] == "DELETE" and dele["record"] is None
    assert dele["old_record"] == {"id": 1, "n": 6, "label": "one"}
    lsns = [e["lsn"] for e in (ins, upd, dele)]
    assert rt.sql("SELECT %s::pg_lsn < %s::pg_lsn AND %s::pg_lsn < %s::pg_lsn",
                  lsns[0], lsns[1], lsns[1], lsns[2]) == [(True,)]


def test_event_types_and_rest_filters_choose_the_events(rt):
    async def main():
        async with websockets.connect(url(rt), open_timeout=5) as ws:
            await subscribe(ws, id="big", table="items", events=["INSERT"],
                            filter="n=gt.5&or=(label.like.a*,label.is.null)")
            sql(rt, "INSERT INTO public.items VALUES (10, 3, 'apple')")   # n too small
            sql(rt, "INSERT INTO public.items VALUES (11, 9, 'banana')")  # label no match
            sql(rt, "INSERT INTO public.items VALUES (12, 9, 'avocado')")
            sql(rt, "INSERT INTO public.items VALUES (13, 7, NULL)")
            sql(rt, "UPDATE public.items SET n = 100 WHERE id = 12")      # not an INSERT
            got = [await recv(ws), await recv(ws)]
            await nothing_more(ws)
            return got
    got = run(main())
    sql(rt, "DELETE FROM public.items")
    assert [e["record"]["id"] for e in got] == [12, 13]


def test_row_level_security_shows_each_user_only_their_rows(rt):
    async def main():
        async with websockets.connect(url(rt, f"/realtime?access_token={user(1)}"),
                                      open_timeout=5) as one, \
                websockets.connect(url(rt), open_timeout=5,
                                   additional_headers={"Authorization": f"Bearer {user(2)}"}
                                   ) as two:
            await subscribe(one, id="a", table="todos")
            await subscribe(two, id="b", table="todos")
            sql(rt, "INSERT INTO public.todos VALUES (1, 1, 'for one'), (2, 2, 'for two')")
            sql(rt, "INSERT INTO public.todos VALUES (3, 2, 'two again')")
            first = await recv(one)
            second = [await recv(two), await recv(two)]
            await nothing_more(one)
            return first, second
    first, second = run(main())
    sql(rt, "DELETE FROM public.todos")
    assert first["record"] == {"id": 1, "owner": 1, "title": "for one"}
    assert [e["record"]["id"] for e in second] == [2, 3]


def test_column_grants_cut_the_rows_and_no_grant_refuses(rt):
    async def main():
        async with websockets.connect(url(rt), open_timeout=5) as ws:
            await subscribe(ws, id="acc", table="accounts")
            sql(rt, "INSERT INTO public.accounts VALUES (1, 'ann', 'pw')")
            change = await recv(ws)
            refused = await subscribe(ws, id="h", table="hidden")
            filtered_secret = await subscribe(ws, id="f", table="accounts",
                                              filter="secret=eq.pw")
            return change, refused, filtered_secret
    change, refused, filtered_secret = run(main())
    sql(rt, "DELETE FROM public.accounts")
    assert change["record"] == {"id": 1, "name": "ann"}
    assert refused["op"] == "error" and refused["id"] == "h" and refused["code"] == "42501"
    # Filtering on a column the role may not read would leak it: refused the same way.
    assert filtered_secret["code"] == "42501", filtered_secret


def test_unsubscribe_and_protocol_errors(rt):
    async def main():
        async with websockets.connect(url(rt), open_timeout=5) as ws:
            await subscribe(ws, id="s", table="items")
            dup = await subscribe(ws, id="s", table="items")
            await ws.send(json.dumps({"op": "unsubscribe", "id": "s"}))
            unsubscribed = await recv(ws)
            sql(rt, "INSERT INTO public.items VALUES (20, 1, 'x')")
            await nothing_more(ws)
            unknown = await subscribe(ws, id="u", table="nope")
            bad_filter = await subscribe(ws, id="b", table="items", filter="n=eq")
            bad_value = await subscribe(ws, id="v", table="items", filter="n=eq.abc")
            await ws.send(json.dumps({"op": "unsubscribe", "id": "never"}))
            never = await recv(ws)
            await ws.send("{")
            garbage = await recv(ws)
            return dup, unsubscribed, unknown, bad_filter, bad_value, never, garbage
    dup, unsubscribed, unknown, bad_filter, bad_value, never, garbage = run(main())
    sql(rt, "DELETE FROM public.items")
    assert dup["code"] == "duplicate_id"
    assert unsubscribed == {"op": "unsubscribed", "id": "s"}
    assert unknown["code"] == "PGRST205" and unknown["id"] == "u"
    assert bad_filter["code"] == "PGRST100"
    assert bad_value["code"] == "22P02"
    assert never["code"] == "unknown_id"
    assert garbage["code"] == "invalid_message"


def test_a_bad_token_is_refused_before_the_upgrade(rt):
    async def main():
        with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
            await websockets.connect(url(rt, "/realtime?access_token=not.a.jwt"),
                                     open_timeout=5)
        return refused.value.response.status_code
    assert run(main()) == 401


def test_ndjson_and_jsonp_streams(rt):
    with httpx.Client(base_url=rt.base_url, timeout=10) as client:
        with client.stream("GET", "/realtime/public.items?n=gt.0&events=INSERT") as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("application/x-ndjson")
            lines = r.iter_lines()
            sql(rt, "INSERT INTO public.items VALUES (30, 0, 'no'), (31, 1, 'yes')")
            line = next(l for l in lines if l.strip())
        with client.stream("GET", "/realtime/items?callback=app.on") as r:
            assert r.headers["content-type"].startswith("application/javascript")
            lines = r.iter_lines()
            sql(rt, "UPDATE public.items SET n = 2 WHERE id = 31")
            wrapped = next(l for l in lines if l.strip())
    sql(rt, "DELETE FROM public.items")
    event = json.loads(line)
    assert event["type"] == "INSERT" and event["record"]["id"] == 31 and "op" not in event
    assert wrapped.startswith("app.on({") and wrapped.endswith("});")
    assert json.loads(wrapped[len("app.on("):-2])["type"] == "UPDATE"


def test_server_sent_events_carry_the_lsn_as_id(rt):
    with httpx.Client(base_url=rt.base_url, timeout=10) as client:
        with client.stream("GET", "/realtime/items",
                           headers={"Accept": "text/event-stream"}) as r:
            assert r.headers["content-type"].startswith("text/event-stream")
            lines = r.iter_lines()
            sql(rt, "INSERT INTO public.items VALUES (40, 4, 'sse')")
            event_id = data = None
            for l in lines:
                if l.startswith("id: "):
                    event_id = l[4:]
                elif l.startswith("data: "):
                    data = json.loads(l[6:])
                    break
    sql(rt, "DELETE FROM public.items")
    assert data["record"]["id"] == 40 and event_id == data["lsn"]


def test_channels_deliver_on_commit_only_and_stay_apart(rt):
    async def main():
        async with websockets.connect(url(rt), open_timeout=5) as ws, \
                websockets.connect(url(rt), open_timeout=5) as other:
            assert (await subscribe(ws, id="c", channel="chat"))["op"] == "subscribed"
            await subscribe(other, id="o", channel="elsewhere")
            sql(rt, "BEGIN; SELECT pg_rest.publish('chat', '{\"n\": 0}'); ROLLBACK;")
            sql(rt, "SELECT pg_rest.publish('chat', '{\"n\": 1}')")
            from_sql = await recv(ws)
            await ws.send(json.dumps({"op": "publish", "channel": "chat", "payload": {"n": 2}}))
            published = await recv(ws)
            from_ws = await recv(ws)
            async with httpx.AsyncClient(base_url=rt.base_url) as client:
                posted = await client.post("/realtime/channel/chat", json={"n": 3})
            from_http = await recv(ws)
            await nothing_more(other)
            return from_sql, published, from_ws, posted.status_code, from_http
    from_sql, published, from_ws, status, from_http = run(main())
    assert from_sql["op"] == "message" and from_sql["id"] == "c"
    assert from_sql["channel"] == "chat" and from_sql["payload"] == {"n": 1}
    assert published["op"] == "published"
    assert from_ws["payload"] == {"n": 2}
    assert status == 202 and from_http["payload"] == {"n": 3}


def test_channel_streams(rt):
    with httpx.Client(base_url=rt.base_url, timeout=10) as client:
        with client.stream("GET", "/realtime/channel/news") as r:
            lines = r.iter_lines()
            sql(rt, "SELECT pg_rest.publish('news', '[1, 2]')")
            line = next(l for l in lines if l.strip())
    assert json.loads(line)["payload"] == [1, 2]


def test_channel_check_decides_who_may_subscribe(rt):
    sql(rt, "CREATE FUNCTION public.may(channel text, action text) RETURNS boolean "
            "LANGUAGE sql AS $$ SELECT channel <> 'secret' $$")
    try:
        with rt.reload_with(channel_check="public.may"):
            async def main():
                async with websockets.connect(url(rt), open_timeout=5) as ws:
                    return (await subscribe(ws, id="s", channel="secret"),
                            await subscribe(ws, id="p", channel="public"))
            secret, public = run(main())
    finally:
        sql(rt, "DROP FUNCTION public.may(text, text)")
    assert secret["code"] == "42501" and public["op"] == "subscribed"


def test_realtime_off_holds_no_slot_and_answers_503(rt):
    with rt.reload_with(realtime="off"):
        wait_until(lambda: rt.sql("SELECT count(*) FROM pg_replication_slots") == [(0,)], 15,
                   what="the slot dropped")
        r = httpx.get(f"{rt.base_url}/realtime/items", timeout=5)
        assert r.status_code == 503 and "pg_rest.realtime" in r.json()["message"]
        # REST goes on.
        assert httpx.get(f"{rt.base_url}/items", timeout=5).status_code == 200
    wait_until(lambda: rt.sql("SELECT count(*) FROM pg_replication_slots") == [(1,)], 15,
               what="the slot back")
    async def main():
        async with websockets.connect(url(rt), open_timeout=5) as ws:
            ok = await subscribe(ws, id="back", table="items")
            sql(rt, "INSERT INTO public.items VALUES (50, 5, 'again')")
            return ok, await recv(ws)
    ok, change = run(main())
    sql(rt, "DELETE FROM public.items")
    assert ok["op"] == "subscribed" and change["record"]["id"] == 50


def test_many_changes_in_one_transaction_arrive_in_order(rt):
    async def main():
        async with websockets.connect(url(rt), open_timeout=5) as ws:
            await subscribe(ws, id="bulk", table="items", events=["INSERT"])
            sql(rt, "INSERT INTO public.items SELECT g, g, 'b' FROM generate_series(1, 500) g")
            return [(await recv(ws))["record"]["id"] for _ in range(500)]
    ids = run(main())
    sql(rt, "DELETE FROM public.items")
    assert ids == list(range(1, 501))


def sse_events(lines, n: int) -> list[tuple[str, dict]]:
    """The next `n` Server-Sent Events as (id, data)."""
    got, event_id = [], None
    for l in lines:
        if l.startswith("id: "):
            event_id = l[4:]
        elif l.startswith("data: "):
            got.append((event_id, json.loads(l[6:])))
            if len(got) == n:
                return got
    return got


def test_sse_resumes_after_a_disconnect_with_nothing_lost(rt):
    with httpx.Client(base_url=rt.base_url, timeout=10) as client:
        headers = {"Accept": "text/event-stream"}
        with client.stream("GET", "/realtime/items?events=INSERT", headers=headers) as r:
            lines = r.iter_lines()
            sql(rt, "INSERT INTO public.items VALUES (60, 1, 'seen')")
            [(last_id, seen)] = sse_events(lines, 1)
        # Committed while no one listens.
        sql(rt, "INSERT INTO public.items VALUES (61, 2, 'missed')")
        sql(rt, "INSERT INTO public.items VALUES (62, 3, 'missed too')")
        with client.stream("GET", "/realtime/items?events=INSERT",
                           headers={**headers, "Last-Event-ID": last_id}) as r:
            lines = r.iter_lines()
            missed = sse_events(lines, 2)
            sql(rt, "INSERT INTO public.items VALUES (63, 4, 'live')")
            live = sse_events(lines, 1)
        # `?since=` does the same.
        with client.stream("GET", f"/realtime/items?events=INSERT&since={last_id}") as r:
            lines = (l for l in r.iter_lines() if l.strip())
            again = [json.loads(next(lines))["record"]["id"] for _ in range(3)]
    sql(rt, "DELETE FROM public.items")
    assert seen["record"]["id"] == 60
    assert [d["record"]["id"] for _, d in missed] == [61, 62]
    assert [d["record"]["id"] for _, d in live] == [63]
    assert again == [61, 62, 63]


def test_websocket_resume_with_since_and_an_explicit_gap(rt):
    async def main():
        async with websockets.connect(url(rt), open_timeout=5) as ws:
            await subscribe(ws, id="r", table="items")
            sql(rt, "INSERT INTO public.items VALUES (70, 1, 'a')")
            last = await recv(ws)
        sql(rt, "INSERT INTO public.items VALUES (71, 1, 'b')")
        async with websockets.connect(url(rt), open_timeout=5) as ws:
            ok = await subscribe(ws, id="r", table="items", since=last["lsn"])
            missed = await recv(ws)
            # From before anything was kept: told plainly, then live.
            await ws.send(json.dumps({"op": "subscribe", "id": "old", "table": "items",
                                      "since": "0/1"}))
            old_ok, gap = await recv(ws), await recv(ws)
            sql(rt, "INSERT INTO public.items VALUES (72, 1, 'c')")
            live = sorted([await recv(ws), await recv(ws)], key=lambda e: e["id"])
            return ok, missed, old_ok, gap, live
    ok, missed, old_ok, gap, live = run(main())
    sql(rt, "DELETE FROM public.items")
    assert ok["op"] == "subscribed" and missed["record"]["id"] == 71 and missed["id"] == "r"
    assert old_ok["op"] == "subscribed"
    assert gap["op"] == "error" and gap["id"] == "old" and gap["code"] == "resume_gap"
    assert [(e["id"], e["record"]["id"]) for e in live] == [("old", 72), ("r", 72)]


def test_a_slow_consumer_is_closed_and_the_others_are_not(rt):
    async def main():
        async with websockets.connect(url(rt), open_timeout=5, max_queue=1) as slow, \
                websockets.connect(url(rt), open_timeout=5) as fast:
            await subscribe(slow, id="slow", table="items")
            await subscribe(fast, id="fast", table="items", filter="id=eq.999999")
            # Far more than the socket buffers and pg_rest's per-connection bound hold.
            sql(rt, "INSERT INTO public.items SELECT g, g, repeat('x', 2000) "
                    "FROM generate_series(1, 20000) g")
            sql(rt, "INSERT INTO public.items VALUES (999999, 1, 'for fast')")
            got = await recv(fast, timeout=30)
            # The slow one was closed with 1008 (policy) rather than buffered without bound.
            await asyncio.sleep(0.5)
            code = None
            try:
                while True:
                    await asyncio.wait_for(slow.recv(), 5)
            except websockets.exceptions.ConnectionClosed as closed:
                code = closed.rcvd.code if closed.rcvd else None
            except asyncio.TimeoutError:
                pass
            return got, code
    got, code = run(main())
    sql(rt, "DELETE FROM public.items")
    assert got.get("record", {}).get("id") == 999999, got
    assert code == 1008


def test_subscribers_of_a_killed_worker_reconnect_and_resume(rt):
    with httpx.Client(base_url=rt.base_url, timeout=10) as client:
        headers = {"Accept": "text/event-stream"}
        with client.stream("GET", "/realtime/items?events=INSERT", headers=headers) as r:
            lines = r.iter_lines()
            sql(rt, "INSERT INTO public.items VALUES (80, 1, 'before')")
            [(last_id, _)] = sse_events(lines, 1)
            # The worker serving this stream dies.
            pids = rt.http_pids()
            rt.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                   "WHERE backend_type = 'pg_rest http'")
            with pytest.raises(httpx.HTTPError):
                sse_events(lines, 1)
        sql(rt, "INSERT INTO public.items VALUES (81, 1, 'while down')")
        wait_until(lambda: len(rt.http_pids() - pids) == 2, 30, what="restarted http workers")
        rt.wait_http_ready("/items", timeout=30)
        with client.stream("GET", "/realtime/items?events=INSERT",
                           headers={**headers, "Last-Event-ID": last_id}) as r:
            missed = sse_events(r.iter_lines(), 1)
    sql(rt, "DELETE FROM public.items")
    assert [d["record"]["id"] for _, d in missed] == [81]


def test_streams_over_http2(rt):
    with httpx.Client(base_url=rt.base_url, http1=False, http2=True, timeout=10) as client:
        with client.stream("GET", "/realtime/items?events=INSERT") as r:
            assert r.http_version == "HTTP/2"
            lines = r.iter_lines()
            sql(rt, "INSERT INTO public.items VALUES (90, 9, 'h2')")
            line = next(l for l in lines if l.strip())
    sql(rt, "DELETE FROM public.items")
    assert json.loads(line)["record"]["id"] == 90


def test_stat_subscriptions_lists_each_subscription(rt):
    def rows():
        return rt.sql("SELECT role, subscribed_to, transport, events_sent, dropped, "
                      "since <= now(), pid > 0 FROM pg_rest.stat_subscriptions "
                      "ORDER BY transport")

    async def main():
        async with websockets.connect(url(rt, f"/realtime?access_token={user(5)}"),
                                      open_timeout=5) as ws:
            await subscribe(ws, id="a", table="items")
            await subscribe(ws, id="b", channel="news")
            sql(rt, "INSERT INTO public.items VALUES (100, 1, 'counted')")
            await recv(ws)
            wait_until(lambda: ("web_user", "public.items", "websocket", 1, 0, True, True)
                       in rows(), 5, what="the subscription's row")
            return rows()
    listed = run(main())
    sql(rt, "DELETE FROM public.items")
    assert ("web_user", "channel:news", "websocket", 0, 0, True, True) in listed
    # Gone with its connection.
    wait_until(lambda: rows() == [], 5, what="no subscriptions left")


def test_a_table_created_again_is_still_the_subscribed_one(rt):
    sql(rt, "CREATE TABLE public.again (id int PRIMARY KEY); GRANT SELECT ON public.again TO web_anon")

    async def once(n: int) -> dict:
        async with websockets.connect(url(rt), open_timeout=5) as ws:
            await subscribe(ws, id="a", table="again")
            sql(rt, f"INSERT INTO public.again VALUES ({n})")
            return await recv(ws)
    first = run(once(1))
    # Still decoded (it lingers for resuming clients) when it is dropped and made anew.
    sql(rt, "DROP TABLE public.again; CREATE TABLE public.again (id int PRIMARY KEY); "
            "GRANT SELECT ON public.again TO web_anon")
    second = run(once(2))
    sql(rt, "DROP TABLE public.again")
    assert first["record"] == {"id": 1} and second["record"] == {"id": 2}


def test_an_expired_token_ends_its_subscriptions_and_a_fresh_one_keeps_them(rt):
    def soon(sub: int, seconds: float, role: str = "web_user") -> str:
        return token({"role": role, "sub": str(sub), "exp": int(time.time() + seconds)})

    async def main():
        async with websockets.connect(url(rt, f"/realtime?access_token={soon(1, 2)}"),
                                      open_timeout=5) as short, \
                websockets.connect(url(rt, f"/realtime?access_token={soon(1, 2)}"),
                                   open_timeout=5) as refreshed:
            await subscribe(short, id="s", table="todos")
            await subscribe(refreshed, id="r", table="todos")
            await refreshed.send(json.dumps({"op": "access_token",
                                             "access_token": soon(1, 60)}))
            renewed = await recv(refreshed)
            await refreshed.send(json.dumps({"op": "access_token",
                                             "access_token": soon(1, 60, role="web_anon")}))
            other_role = await recv(refreshed)
            expired = await recv(short, timeout=6)
            sql(rt, "INSERT INTO public.todos VALUES (7, 1, 'after expiry')")
            kept = await recv(refreshed)
            await nothing_more(short)
            return renewed, other_role, expired, kept
    renewed, other_role, expired, kept = run(main())
    sql(rt, "DELETE FROM public.todos")
    assert renewed == {"op": "access_token", "id": None}
    assert other_role["code"] == "role_changed"
    assert expired["op"] == "error" and expired["id"] == "s" and expired["code"] == "token_expired"
    assert kept["record"]["id"] == 7
