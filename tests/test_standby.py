"""pg_rest on a hot standby (docs/replicas.md): a real primary and a real streaming standby made
by pg_basebackup, both on localhost, both with pg_rest loaded.

Reads are served on the standby from its own replayed data. Writes and volatile calls sent to
the standby run on the primary (forwarded over the worker's own connections, with the request's
role, settings and RLS), answered as the primary would answer them, with `Pg-Rest-Lsn`; while
the primary is down they answer 503 and reads go on. Realtime waits on the standby
(PostgreSQL 15 decodes only on a primary) with one line in the log and a 503 naming why; after
a promotion the same http workers serve writes locally and the realtime worker creates its
slot, without a restart.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import websockets

from postgrest import SyncPostgrestClient

from conftest import (JWT_SECRET, PGBIN, REPO, Cluster, assert_pgrst_error, bearer,
                      build_cluster, extra_cluster, run, token, wait_until)

SETUP = """
CREATE ROLE web_anon NOLOGIN;
CREATE ROLE web_user NOLOGIN;
CREATE ROLE authenticator LOGIN NOINHERIT;
GRANT web_anon, web_user TO authenticator;
CREATE TABLE public.items (id int PRIMARY KEY, label text);
GRANT SELECT, INSERT, UPDATE, DELETE ON public.items TO web_anon;
INSERT INTO public.items VALUES (1, 'one');
-- Rows of the caller only (RLS), stamped with the role the transaction ran as.
CREATE TABLE public.notes (id int PRIMARY KEY, owner text NOT NULL, body text,
                           written_by text DEFAULT current_user);
ALTER TABLE public.notes ENABLE ROW LEVEL SECURITY;
CREATE POLICY own ON public.notes
  USING (owner = current_setting('request.jwt.claims', true)::json->>'sub');
GRANT SELECT, INSERT ON public.notes TO web_user;
-- A volatile function that writes, and one that sets the response status.
CREATE FUNCTION public.add_item(id int, label text) RETURNS int LANGUAGE sql VOLATILE
  AS $$ INSERT INTO public.items VALUES (id, label) RETURNING id $$;
CREATE FUNCTION public.accepted() RETURNS text LANGUAGE sql VOLATILE
  AS $$ SELECT set_config('response.status', '202', true) $$;
GRANT EXECUTE ON FUNCTION public.add_item(int, text), public.accepted() TO web_anon;
-- A constraint checked at commit.
CREATE TABLE public.parents (id int PRIMARY KEY);
CREATE TABLE public.children (id int PRIMARY KEY,
  parent int REFERENCES public.parents DEFERRABLE INITIALLY DEFERRED);
GRANT SELECT, INSERT ON public.parents, public.children TO web_anon;
"""

PRIMARY_HTTP, STANDBY_HTTP = 3109, 3110
# Both listen on TCP: their ports lie below the ephemeral range (32768–60999), where a test
# client's connection (or its TIME_WAIT) could hold the port and the server fail to bind.
PRIMARY_PG, STANDBY_PG = 25437, 25438


def standby_of(primary: Cluster) -> Cluster:
    """A streaming standby of `primary` (pg_basebackup -R), its own ports appended to the
    configuration it copied."""
    standby = Cluster(root=REPO / "target" / "test-pg-standby", pg_port=STANDBY_PG,
                      http_port=STANDBY_HTTP, dbname="postgres")
    if (standby.data_dir / "postmaster.pid").exists():
        standby.stop("immediate")
    shutil.rmtree(standby.root, ignore_errors=True)
    standby.root.mkdir(parents=True)
    run(["chown", "postgres:postgres", str(standby.root)])
    run([str(PGBIN / "pg_basebackup"), "-h", primary.socket_dir, "-p", str(primary.pg_port),
         "-U", "postgres", "-D", str(standby.data_dir), "-R", "-X", "stream", "--no-sync",
         "-c", "fast"],
        as_postgres=True, timeout=120)
    with open(standby.data_dir / "postgresql.conf", "a", encoding="utf-8") as f:
        f.write(f"\n# --- the standby ---\nport = {standby.pg_port}\n"
                f"unix_socket_directories = '{standby.data_dir}'\n"
                f"pg_rest.port = {standby.http_port}\n")
    standby.start()
    return standby


@pytest.fixture(scope="module")
def pair():
    primary = extra_cluster("test-pg-primary", PRIMARY_PG, PRIMARY_HTTP, "postgres",
                            wal_level="logical", max_wal_senders="4", max_replication_slots="4",
                            listen_addresses="'127.0.0.1'",
                            **{"pg_rest.authenticator": "'authenticator'",
                               "pg_rest.jwt_secret": f"'{JWT_SECRET}'"})
    standby = None
    try:
        build_cluster(primary, None, extra_sql=[SETUP])
        primary.wait_http_ready("/items", timeout=60)
        standby = standby_of(primary)
        standby.wait_http_ready("/items", timeout=60)
        yield primary, standby
    finally:
        for c in (standby, primary):
            if c is not None and (c.data_dir / "postmaster.pid").exists():
                c.stop("immediate")
        if not os.environ.get("PG_REST_KEEP_CLUSTERS"):
            for c in (standby, primary):
                if c is not None:
                    shutil.rmtree(c.root, ignore_errors=True)


def replayed(primary: Cluster, standby: Cluster) -> None:
    """Waits until the standby has replayed everything the primary has written."""
    lsn = primary.sql("SELECT pg_current_wal_insert_lsn()::text")[0][0]
    wait_until(lambda: standby.sql(
        "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", lsn)[0][0], 30,
        what=f"the standby replaying to {lsn}")


def test_the_standby_is_in_recovery(pair):
    _, standby = pair
    assert standby.sql("SELECT pg_is_in_recovery()") == [(True,)]


def test_reads_are_served_on_the_standby_from_its_replayed_data(pair):
    primary, standby = pair
    primary.sql("INSERT INTO public.items VALUES (2, 'two')")
    replayed(primary, standby)
    r = httpx.get(f"{standby.base_url}/items?order=id", timeout=5)
    assert r.status_code == 200, r.text
    assert r.json() == [{"id": 1, "label": "one"}, {"id": 2, "label": "two"}]
    r = httpx.get(f"{standby.base_url}/items?id=eq.2&select=label", timeout=5,
                  headers={"Accept": "application/vnd.pgrst.object+json"})
    assert r.status_code == 200 and r.json() == {"label": "two"}


def test_the_schema_cache_follows_ddl_replayed_from_the_primary(pair):
    # NOTIFY is not replayed (and LISTEN is refused during recovery): the standby's workers
    # see the replayed relcache invalidations, as for DDL on the primary itself.
    primary, standby = pair
    primary.psql("CREATE TABLE public.later (id int); GRANT SELECT ON public.later TO web_anon;"
                 "INSERT INTO public.later VALUES (7);"
                 "ALTER TABLE public.items ADD COLUMN note text")
    replayed(primary, standby)
    r = httpx.get(f"{standby.base_url}/later", timeout=5)
    assert r.status_code == 200 and r.json() == [{"id": 7}], r.text
    r = httpx.get(f"{standby.base_url}/items?select=id,note&id=eq.1", timeout=5)
    assert r.status_code == 200 and r.json() == [{"id": 1, "note": None}], r.text


def test_realtime_waits_on_a_standby_saying_why_once(pair):
    _, standby = pair
    r = httpx.get(f"{standby.base_url}/realtime/items", timeout=5)
    assert r.status_code == 503, r.text
    assert "hot standby" in r.json()["message"]
    async def subscribe() -> dict:
        async with websockets.connect(f"ws://127.0.0.1:{standby.http_port}/realtime",
                                      open_timeout=5) as ws:
            await ws.send(json.dumps({"op": "subscribe", "id": "s1", "table": "public.items"}))
            return json.loads(await asyncio.wait_for(ws.recv(), 5))
    refused = asyncio.run(subscribe())
    assert refused["op"] == "error" and refused["code"] == "unavailable", refused
    assert "hot standby" in refused["message"]
    time.sleep(6)  # past the realtime worker's retry interval: it must not retry and log
    log = standby.log_text()
    assert log.count("this server is a hot standby") == 1, standby.log_tail()
    assert "an error creating or reading the slot" not in log
    assert standby.sql("SELECT count(*) FROM pg_replication_slots") == [(0,)]


def primary_rows(primary: Cluster, query: str, *params) -> list[tuple]:
    return primary.sql(query, *params)


def test_writes_on_the_standby_run_on_the_primary(pair):
    primary, standby = pair
    r = httpx.post(f"{standby.base_url}/items", json={"id": 10, "label": "ten"}, timeout=5)
    assert r.status_code == 201, r.text
    lsn = r.headers["pg-rest-lsn"]
    assert primary.sql("SELECT %s::pg_lsn <= pg_current_wal_insert_lsn()", lsn) == [(True,)]
    assert primary_rows(primary, "SELECT label FROM public.items WHERE id = 10") == [("ten",)]
    r = httpx.post(f"{standby.base_url}/items?select=id,label", timeout=5,
                   json=[{"id": 11, "label": "eleven"}, {"id": 12, "label": "twelve"}],
                   headers={"Prefer": "return=representation"})
    assert r.status_code == 201 and r.json() == [{"id": 11, "label": "eleven"},
                                                 {"id": 12, "label": "twelve"}], r.text
    r = httpx.patch(f"{standby.base_url}/items?id=eq.11", json={"label": "ELEVEN"}, timeout=5)
    assert r.status_code == 204, r.text
    r = httpx.delete(f"{standby.base_url}/items?id=eq.12&select=id,label", timeout=5,
                     headers={"Prefer": "return=representation"})
    assert r.status_code == 200 and r.json() == [{"id": 12, "label": "twelve"}], r.text
    assert primary_rows(primary, "SELECT id, label FROM public.items WHERE id > 10 "
                        "ORDER BY id") == [(11, "ELEVEN")]
    # The primary's errors are answered exactly as a local one.
    r = httpx.post(f"{standby.base_url}/items", json={"id": 10, "label": "again"}, timeout=5)
    body = assert_pgrst_error(r.status_code, r.content, 409, "23505")
    assert "duplicate key" in body["message"] and "(id)=(10)" in body["details"]
    r = httpx.post(f"{standby.base_url}/items", json={"nope": 1}, timeout=5)
    assert_pgrst_error(r.status_code, r.content, 400, "PGRST204")


def test_a_forwarded_write_runs_as_the_requests_role_under_rls(pair):
    primary, standby = pair
    alice = bearer({"role": "web_user", "sub": "alice"})
    r = httpx.post(f"{standby.base_url}/notes", json={"id": 1, "owner": "alice", "body": "x"},
                   headers={**alice, "Prefer": "return=representation"}, timeout=5)
    assert r.status_code == 201, r.text
    assert r.json()[0]["written_by"] == "web_user"
    # Another owner's row is refused by the policy, on the primary.
    r = httpx.post(f"{standby.base_url}/notes", json={"id": 2, "owner": "bob"},
                   headers=alice, timeout=5)
    body = assert_pgrst_error(r.status_code, r.content, 403, "42501")
    assert "row-level security" in body["message"]
    # The anonymous role may not write there at all.
    r = httpx.post(f"{standby.base_url}/notes", json={"id": 3, "owner": "alice"}, timeout=5)
    assert_pgrst_error(r.status_code, r.content, 401, "42501")
    assert primary_rows(primary, "SELECT id, written_by FROM public.notes") == [(1, "web_user")]


def test_a_forwarded_write_that_must_not_commit_leaves_no_trace(pair):
    primary, standby = pair
    # A singular response of two rows: 406, rolled back on the primary.
    r = httpx.post(f"{standby.base_url}/items", timeout=5,
                   json=[{"id": 20, "label": "a"}, {"id": 21, "label": "b"}],
                   headers={"Accept": "application/vnd.pgrst.object+json",
                            "Prefer": "return=representation"})
    assert_pgrst_error(r.status_code, r.content, 406, "PGRST116")
    # max-affected, strictly: rolled back too.
    r = httpx.delete(f"{standby.base_url}/items?id=gt.0", timeout=5,
                     headers={"Prefer": "max-affected=1, handling=strict"})
    assert_pgrst_error(r.status_code, r.content, 400, "PGRST124")
    # tx=rollback answers with the result and writes nothing.
    r = httpx.post(f"{standby.base_url}/items?select=id,label", json={"id": 22, "label": "c"},
                   timeout=5,
                   headers={"Prefer": "tx=rollback, return=representation"})
    assert r.status_code == 201 and r.json() == [{"id": 22, "label": "c"}], r.text
    assert "pg-rest-lsn" not in r.headers
    # A deferred constraint fails at the COMMIT: the client's error.
    r = httpx.post(f"{standby.base_url}/children", json={"id": 1, "parent": 99}, timeout=5)
    body = assert_pgrst_error(r.status_code, r.content, 409, "23503")
    assert "children" in body["message"]
    assert primary_rows(primary, "SELECT count(*) FROM public.items WHERE id >= 20") == [(0,)]
    assert primary_rows(primary, "SELECT count(*) FROM public.items") != [(0,)]
    assert primary_rows(primary, "SELECT count(*) FROM public.children") == [(0,)]


def test_a_volatile_call_on_the_standby_runs_on_the_primary(pair):
    primary, standby = pair
    r = httpx.post(f"{standby.base_url}/rpc/add_item", json={"id": 30, "label": "rpc"},
                   timeout=5)
    assert r.status_code == 200 and r.json() == 30, r.text
    assert "pg-rest-lsn" in r.headers
    assert primary_rows(primary, "SELECT label FROM public.items WHERE id = 30") == [("rpc",)]
    r = httpx.post(f"{standby.base_url}/rpc/accepted", timeout=5)
    assert r.status_code == 202, r.text
    # GET runs read-only, here, and fails as it would on the primary.
    r = httpx.get(f"{standby.base_url}/rpc/add_item?id=31&label=no", timeout=5)
    assert_pgrst_error(r.status_code, r.content, 405, "25006")


def test_pipelined_requests_keep_their_order_around_a_forwarded_one(pair):
    _, standby = pair
    requests = (b"GET /items?id=eq.1&select=id HTTP/1.1\r\nHost: x\r\n\r\n"
                b"POST /items HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: 27\r\n\r\n{\"id\": 40, \"label\": \"pipe\"}"
                b"GET /items?id=eq.1&select=label HTTP/1.1\r\nHost: x\r\n"
                b"Connection: close\r\n\r\n")
    with socket.create_connection(("127.0.0.1", standby.http_port), timeout=5) as s:
        s.sendall(requests)
        got = b""
        while chunk := s.recv(65536):
            got += chunk
    answers = got.split(b"HTTP/1.1 ")[1:]
    assert [a[:3] for a in answers] == [b"200", b"201", b"200"], got
    assert answers[0].endswith(b'[{"id":1}]') and answers[2].endswith(b'[{"label":"one"}]')


def test_forwarded_writes_over_http2_answer_on_their_streams(pair):
    primary, standby = pair
    async def both() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=standby.base_url, http1=False, http2=True,
                                     timeout=10) as client:
            writes = [client.post("/items", json={"id": 100 + i, "label": "h2"})
                      for i in range(8)]
            reads = [client.get("/items?id=eq.1&select=id") for _ in range(8)]
            return await asyncio.gather(*writes, *reads)
    answers = asyncio.run(both())
    assert all(r.http_version == "HTTP/2" for r in answers)
    assert [r.status_code for r in answers] == [201] * 8 + [200] * 8
    assert all(r.json() == [{"id": 1}] for r in answers[8:])
    assert primary_rows(primary, "SELECT count(*) FROM public.items WHERE label = 'h2'") == [(8,)]


def test_postgrest_py_writes_through_the_standby(pair):
    primary, standby = pair
    with SyncPostgrestClient(standby.base_url) as client:
        inserted = client.from_("items").insert({"id": 50, "label": "py"}).execute().data
        assert inserted == [{"id": 50, "label": "py", "note": None}]
        client.from_("items").upsert({"id": 50, "label": "py2"}).execute()
        client.from_("items").update({"label": "py3"}).eq("id", 50).execute()
        assert client.rpc("add_item", {"id": 51, "label": "py-rpc"}).execute().data == 51
        client.from_("items").delete().eq("id", 51).execute()
    assert primary_rows(primary, "SELECT id, label FROM public.items "
                        "WHERE id BETWEEN 50 AND 59") == [(50, "py3")]


def test_forwarding_shows_in_stat_forwarding(pair):
    primary, standby = pair
    replayed(primary, standby)
    forwarded, links, seen, lag = standby.sql(
        "SELECT sum(forwarded), sum(primary_links), max(primary_lsn::pg_lsn)::text, "
        "max(replay_lag_bytes) FROM pg_rest.stat_forwarding")[0]
    assert forwarded >= 10 and links >= 1
    assert primary.sql("SELECT %s::pg_lsn <= pg_current_wal_insert_lsn()", seen) == [(True,)]
    assert lag == 0  # replayed past every position the primary reported


def forwarded_so_far(standby: Cluster) -> int:
    return standby.sql("SELECT sum(forwarded) FROM pg_rest.stat_forwarding")[0][0]


def set_ryw_timeout(standby: Cluster, value: str) -> None:
    standby.sql(f"ALTER SYSTEM SET pg_rest.read_your_writes_timeout = '{value}'")
    standby.sql("SELECT pg_reload_conf()")
    time.sleep(0.5)  # the workers take the setting at their next wake-up


def test_read_your_writes_waits_for_replay_then_asks_the_primary(pair):
    primary, standby = pair
    standby.sql("SELECT pg_wal_replay_pause()")
    try:
        r = httpx.post(f"{standby.base_url}/items", json={"id": 70, "label": "ryw"}, timeout=5)
        assert r.status_code == 201, r.text
        lsn = r.headers["pg-rest-lsn"]
        url = f"{standby.base_url}/items?id=eq.70&select=id,label"
        # Without the header: what the standby has replayed (not the write yet).
        assert httpx.get(url, timeout=5).json() == []
        # With it: the wait runs out (replay is paused), and the primary answers.
        set_ryw_timeout(standby, "400ms")
        before = forwarded_so_far(standby)
        started = time.monotonic()
        r = httpx.get(url, headers={"Pg-Rest-Lsn": lsn}, timeout=10)
        assert r.status_code == 200 and r.json() == [{"id": 70, "label": "ryw"}], r.text
        assert time.monotonic() - started >= 0.35
        assert r.headers["content-location"] == "/items?id=eq.70&select=id,label"
        assert forwarded_so_far(standby) == before + 1
        # A read waiting longer is answered here once replay has caught up.
        set_ryw_timeout(standby, "20s")
        before = forwarded_so_far(standby)
        with ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(httpx.get, url, headers={"Pg-Rest-Lsn": lsn}, timeout=30)
            time.sleep(0.5)
            assert not waiting.done()
            # Other requests are served meanwhile.
            assert httpx.get(f"{standby.base_url}/items?id=eq.1&select=id", timeout=5).json() \
                == [{"id": 1}]
            started = time.monotonic()
            standby.sql("SELECT pg_wal_replay_resume()")
            r = waiting.result(timeout=30)
        assert r.status_code == 200 and r.json() == [{"id": 70, "label": "ryw"}], r.text
        assert time.monotonic() - started < 5
        assert forwarded_so_far(standby) == before
        waited, answered_by_primary = standby.sql(
            "SELECT sum(reads_waited), sum(reads_forwarded) FROM pg_rest.stat_forwarding")[0]
        assert (waited, answered_by_primary) == (2, 1)
        r = httpx.get(url, headers={"Pg-Rest-Lsn": "not a position"}, timeout=5)
        assert_pgrst_error(r.status_code, r.content, 400)
    finally:
        standby.sql("SELECT pg_wal_replay_resume()")
        set_ryw_timeout(standby, "2s")


def set_on(cluster: Cluster, **settings: str) -> None:
    for name, value in settings.items():
        if value is None:
            cluster.sql(f"ALTER SYSTEM RESET pg_rest.{name}")
        else:
            cluster.sql(f"ALTER SYSTEM SET pg_rest.{name} = '{value}'")
    cluster.sql("SELECT pg_reload_conf()")
    time.sleep(0.5)


def replica_reads(primary: Cluster) -> int:
    return primary.sql("SELECT sum(replica_reads) FROM pg_rest.stat_forwarding")[0][0]


def test_writes_are_forwarded_over_tcp_as_primary_conninfo_names(pair):
    primary, standby = pair
    uri = f"postgresql://authenticator@127.0.0.1:{primary.pg_port}/postgres"
    set_on(standby, primary_conninfo=uri)
    try:
        r = httpx.post(f"{standby.base_url}/items", json={"id": 90, "label": "tcp"}, timeout=5)
        assert r.status_code == 201, r.text
        peers = primary.sql("SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                            "'pg_rest' AND client_addr = '127.0.0.1'")
        assert peers[0][0] >= 1
        assert primary_rows(primary, "SELECT label FROM public.items WHERE id = 90") == [("tcp",)]
    finally:
        set_on(standby, primary_conninfo=None)


def test_the_primary_sends_reads_to_a_caught_up_read_replica(pair):
    primary, standby = pair
    replica = (f"host={standby.socket_dir} port={standby.pg_port} dbname=postgres "
               "user=authenticator")
    set_on(primary, read_replicas=replica)
    try:
        replayed(primary, standby)
        url = f"{primary.base_url}/items?id=eq.1&select=id,label"
        def routed() -> bool:
            assert httpx.get(url, timeout=5).status_code == 200
            return replica_reads(primary) > 0
        wait_until(routed, 15, interval=0.3, what="a read sent to the replica")
        before = replica_reads(primary)
        r = httpx.get(url, timeout=5)
        assert r.status_code == 200 and r.json() == [{"id": 1, "label": "one"}], r.text
        assert r.headers["content-location"] == "/items?id=eq.1&select=id,label"
        # With the caller's role and claims: RLS applies on the replica.
        r = httpx.get(f"{primary.base_url}/notes?select=id,owner", timeout=5,
                      headers=bearer({"role": "web_user", "sub": "alice"}))
        assert r.status_code == 200 and r.json() == [{"id": 1, "owner": "alice"}], r.text
        assert replica_reads(primary) == before + 2
        # A replica behind by more than the bound gets no reads: the primary answers, with
        # the row the replica has not replayed.
        set_on(primary, read_replica_max_lag="0")
        standby.sql("SELECT pg_wal_replay_pause()")
        primary.sql("INSERT INTO public.items VALUES (80, 'fresh')")
        time.sleep(1)  # a probe or more sees the replica behind
        before = replica_reads(primary)
        r = httpx.get(f"{primary.base_url}/items?id=eq.80&select=label", timeout=5)
        assert r.status_code == 200 and r.json() == [{"label": "fresh"}], r.text
        assert replica_reads(primary) == before
        standby.sql("SELECT pg_wal_replay_resume()")
        # A replica that cannot be reached: reads are served here.
        set_on(primary, read_replicas="host=/nonexistent port=1 dbname=postgres")
        for _ in range(5):
            r = httpx.get(url, timeout=5)
            assert r.status_code == 200 and r.json() == [{"id": 1, "label": "one"}], r.text
    finally:
        standby.sql("SELECT pg_wal_replay_resume()")
        set_on(primary, read_replicas=None, read_replica_max_lag=None)


def test_read_replicas_must_be_connection_strings(pair):
    primary, _ = pair
    with pytest.raises(Exception) as refused:
        primary.sql("ALTER SYSTEM SET pg_rest.read_replicas = 'host=/a; port=1'")
    assert "replica 2" in str(refused.value)


def test_with_the_primary_down_writes_answer_503_and_reads_go_on(pair):
    primary, standby = pair
    primary.stop("fast")
    try:
        r = httpx.post(f"{standby.base_url}/items", json={"id": 60, "label": "x"}, timeout=10)
        body = assert_pgrst_error(r.status_code, r.content, 503, "PGRST000")
        assert "hot standby" in body["message"] and body["details"], body
        r = httpx.get(f"{standby.base_url}/items?id=eq.1", timeout=5)
        assert r.status_code == 200 and r.json() == [{"id": 1, "label": "one", "note": None}]
        # Refused at once while backing off, not after a wait.
        started = time.monotonic()
        r = httpx.post(f"{standby.base_url}/items", json={"id": 60, "label": "x"}, timeout=10)
        assert r.status_code == 503 and time.monotonic() - started < 2
        assert standby.sql("SELECT sum(forward_failures) FROM pg_rest.stat_forwarding")[0][0] >= 2
    finally:
        primary.start()
    # Back once the primary is: the back-off retries within seconds.
    def written() -> bool:
        r = httpx.post(f"{standby.base_url}/items", json={"id": 60, "label": "back"},
                       timeout=10)
        return r.status_code == 201
    wait_until(written, 30, interval=0.5, what="a write through the restarted primary")
    assert primary_rows(primary, "SELECT label FROM public.items WHERE id = 60") == [("back",)]


def test_a_promoted_standby_serves_writes_and_realtime_without_a_restart(pair):
    primary, standby = pair
    workers = standby.http_pids()
    supervisor = standby.supervisor_pids()
    assert workers and supervisor
    primary.stop("fast")
    assert standby.sql("SELECT pg_promote(true, 60)") == [(True,)]
    r = httpx.post(f"{standby.base_url}/items", json={"id": 3, "label": "three"}, timeout=5)
    assert r.status_code == 201, r.text
    assert standby.sql("SELECT label FROM public.items WHERE id = 3") == [("three",)]
    wait_until(lambda: standby.sql("SELECT count(*) FROM pg_replication_slots "
                                   "WHERE slot_name = 'pg_rest'") == [(1,)], 30,
               what="the realtime slot on the promoted server")
    def stream_opens() -> bool:
        with httpx.stream("GET", f"{standby.base_url}/realtime/items", timeout=5) as stream:
            return stream.status_code == 200
    wait_until(stream_opens, 15, what="a realtime stream on the promoted server")
    assert standby.http_pids() == workers and standby.supervisor_pids() == supervisor
