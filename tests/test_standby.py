"""pg_rest on a hot standby (docs/replicas.md): a real primary and a real streaming standby made
by pg_basebackup, both on localhost, both with pg_rest loaded.

What holds today: reads are served on the standby from its own replayed data; realtime waits
there (PostgreSQL 15 decodes only on a primary) with one line in the log and a 503 naming why;
after a promotion the same http workers serve writes and the realtime worker creates its slot,
without a restart. (Forwarding writes from a standby to its primary is issue 9's next part.)
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

from conftest import PGBIN, REPO, Cluster, build_cluster, extra_cluster, run, wait_until

SETUP = """
CREATE ROLE web_anon NOLOGIN;
CREATE TABLE public.items (id int PRIMARY KEY, label text);
GRANT SELECT, INSERT ON public.items TO web_anon;
INSERT INTO public.items VALUES (1, 'one');
"""

PRIMARY_HTTP, STANDBY_HTTP = 3109, 3110


def standby_of(primary: Cluster) -> Cluster:
    """A streaming standby of `primary` (pg_basebackup -R), its own ports appended to the
    configuration it copied."""
    standby = Cluster(root=REPO / "target" / "test-pg-standby", pg_port=54338,
                      http_port=STANDBY_HTTP, dbname="postgres")
    if (standby.data_dir / "postmaster.pid").exists():
        standby.stop("immediate")
    shutil.rmtree(standby.root, ignore_errors=True)
    standby.root.mkdir(parents=True)
    run(["chown", "postgres:postgres", str(standby.root)])
    run([str(PGBIN / "pg_basebackup"), "-h", primary.socket_dir, "-p", str(primary.pg_port),
         "-U", "postgres", "-D", str(standby.data_dir), "-R", "-X", "stream", "--no-sync"],
        as_postgres=True, timeout=120)
    with open(standby.data_dir / "postgresql.conf", "a", encoding="utf-8") as f:
        f.write(f"\n# --- the standby ---\nport = {standby.pg_port}\n"
                f"unix_socket_directories = '{standby.data_dir}'\n"
                f"pg_rest.port = {standby.http_port}\n")
    standby.start()
    return standby


@pytest.fixture(scope="module")
def pair():
    primary = extra_cluster("test-pg-primary", 54337, PRIMARY_HTTP, "postgres",
                            wal_level="logical", max_wal_senders="4", max_replication_slots="4")
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
