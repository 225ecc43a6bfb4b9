"""pg_rest as a logical decoding output plugin (src/decoding.rs), the source of realtime's
change events: one JSON object per committed row change or logical message.

On a cluster of its own with `wal_level = logical` and pg_rest in `output_plugin_libraries`
(target/test-pg-decoding).
"""

from __future__ import annotations

import json
import shutil

import pytest

from conftest import build_cluster, extra_cluster

SETUP = """
CREATE TABLE public.todos (id int PRIMARY KEY, title text, done boolean DEFAULT false,
                           meta jsonb, big text);
CREATE TABLE public.full_todos (id int PRIMARY KEY, title text);
ALTER TABLE public.full_todos REPLICA IDENTITY FULL;
CREATE TABLE public.keyless (a int, b text);
"""


@pytest.fixture(scope="module")
def cluster():
    # This PostgreSQL names the libraries a slot may use as its output plugin.
    c = extra_cluster("test-pg-decoding", 54335, 3107, "postgres", wal_level="logical",
                      max_replication_slots="4",
                      output_plugin_libraries="'pgoutput, test_decoding, pg_rest'")
    try:
        # A slot is made in a transaction of its own (none that wrote before it).
        build_cluster(c, None, extra_sql=[SETUP,
                                          "SELECT pg_create_logical_replication_slot('t', 'pg_rest')"])
        yield c
    finally:
        if (c.data_dir / "postmaster.pid").exists():
            c.stop("immediate")
        shutil.rmtree(c.root, ignore_errors=True)


def changes(cluster, commits: bool = False) -> list[dict]:
    """Everything decoded since the last call, as JSON objects (COMMIT rows only if asked)."""
    rows = cluster.sql("SELECT data FROM pg_logical_slot_get_changes('t', NULL, NULL)")
    events = [json.loads(data) for (data,) in rows]
    return [e for e in events if commits or e["type"] != "COMMIT"]


def test_inserts_updates_and_deletes_are_typed_json(cluster):
    # Three transactions (one psql -c would be one).
    cluster.psql("INSERT INTO public.todos (id, title, meta) VALUES (1, 'write', '{\"p\": 2}')")
    cluster.psql("UPDATE public.todos SET done = true WHERE id = 1")
    cluster.psql("DELETE FROM public.todos WHERE id = 1")
    events = changes(cluster)
    assert [e["type"] for e in events] == ["INSERT", "UPDATE", "DELETE"], events
    insert, update, delete = events
    assert (insert["schema"], insert["table"]) == ("public", "todos")
    assert insert["record"] == {"id": 1, "title": "write", "done": False, "meta": {"p": 2},
                                "big": None}
    assert insert["old_record"] is None
    assert update["record"]["done"] is True
    # Default replica identity: no old row while the key stays (PostgreSQL logs none).
    assert update["old_record"] is None
    assert delete["record"] is None
    assert delete["old_record"] == {"id": 1}
    # Separate transactions, positions in order, as PostgreSQL prints them.
    lsns = [e["lsn"] for e in events]
    assert all("/" in lsn for lsn in lsns)
    assert cluster.sql("SELECT %s::pg_lsn < %s::pg_lsn AND %s::pg_lsn < %s::pg_lsn",
                       lsns[0], lsns[1], lsns[1], lsns[2]) == [(True,)]
    # An UPDATE that changes the key logs the old key.
    cluster.psql("INSERT INTO public.todos (id, title) VALUES (2, 'k')")
    cluster.psql("UPDATE public.todos SET id = 3 WHERE id = 2")
    cluster.psql("DELETE FROM public.todos")
    _, moved, _ = changes(cluster)
    assert (moved["old_record"], moved["record"]["id"]) == ({"id": 2}, 3)


def test_full_replica_identity_gives_the_whole_old_row(cluster):
    for statement in ("INSERT INTO public.full_todos VALUES (1, 'a')",
                      "UPDATE public.full_todos SET title = 'b'",
                      "DELETE FROM public.full_todos"):
        cluster.psql(statement)
    _, update, delete = changes(cluster)
    assert update["old_record"] == {"id": 1, "title": "a"}
    assert update["record"] == {"id": 1, "title": "b"}
    assert delete["old_record"] == {"id": 1, "title": "b"}


def test_one_transaction_shares_its_commit_position_and_rollbacks_give_nothing(cluster):
    cluster.psql("INSERT INTO public.todos (id) VALUES (10); "
                 "INSERT INTO public.todos (id) VALUES (11)")
    with cluster.connect(autocommit=False) as conn:
        conn.execute("INSERT INTO public.todos (id) VALUES (12)")
        conn.rollback()
    events = changes(cluster)
    assert [e["record"]["id"] for e in events] == [10, 11]
    assert events[0]["lsn"] == events[1]["lsn"]
    assert events[0]["xid"] == events[1]["xid"]
    cluster.psql("DELETE FROM public.todos")
    changes(cluster)


def test_an_unchanged_toasted_value_is_named_not_invented(cluster):
    big = "x" * 100_000
    cluster.psql("ALTER TABLE public.todos ALTER big SET STORAGE EXTERNAL")
    cluster.psql(f"INSERT INTO public.todos (id, big) VALUES (20, '{big}')")
    cluster.psql("UPDATE public.todos SET title = 't' WHERE id = 20")
    insert, update = changes(cluster)
    assert insert["record"]["big"] == big
    assert "big" not in update["record"]
    assert update["unchanged_toast"] == ["big"]
    assert update["record"]["title"] == "t"


def test_logical_messages_and_tables_without_a_key(cluster):
    cluster.psql("SELECT pg_logical_emit_message(true, 'pg_rest', '{\"channel\":\"chat\"}')")
    cluster.psql("SELECT pg_logical_emit_message(false, 'other', 'plain text')")
    with cluster.connect(autocommit=False) as conn:
        conn.execute("SELECT pg_logical_emit_message(true, 'pg_rest', 'lost')")
        conn.rollback()
    cluster.psql("SELECT pg_logical_emit_message(false, 'bin', '\\xff00'::bytea)")
    cluster.psql("INSERT INTO public.keyless VALUES (1, 'k')")
    events = changes(cluster)
    messages = [e for e in events if e["type"] == "MESSAGE"]
    assert [(m["prefix"], m["transactional"]) for m in messages] == [
        ("pg_rest", True), ("other", False), ("bin", False)], messages
    assert messages[0]["content"] == '{"channel":"chat"}'
    assert messages[1]["content"] == "plain text"
    assert messages[2]["content_base64"] == "/wA="
    keyless = [e for e in events if e["type"] == "INSERT"]
    assert keyless[0]["record"] == {"a": 1, "b": "k"}


def test_a_transaction_with_events_ends_with_its_commit_row(cluster):
    """The COMMIT row is what a consumer confirms once it handed the events on: advancing the
    slot to it skips the transaction (the realtime worker confirms only after delivery)."""
    cluster.psql("INSERT INTO public.todos (id) VALUES (30); INSERT INTO public.todos (id) VALUES (31)")
    # A transaction that touches nothing decoded gives no row at all.
    cluster.psql("CREATE TEMP TABLE scratch (x int); INSERT INTO scratch VALUES (1)")
    peek = "SELECT lsn::text, data FROM pg_logical_slot_peek_changes('t', NULL, NULL)"
    rows = [(lsn, json.loads(data)) for lsn, data in cluster.sql(peek)]
    assert [e["type"] for _, e in rows] == ["INSERT", "INSERT", "COMMIT"], rows
    commit_lsn, commit = rows[-1]
    assert commit["lsn"] == rows[0][1]["lsn"] and commit["xid"] == rows[0][1]["xid"]
    # Peeking consumes nothing; confirming the commit's position does.
    assert len(cluster.sql(peek)) == 3
    cluster.sql("SELECT pg_replication_slot_advance('t', %s::pg_lsn)", commit_lsn)
    assert cluster.sql(peek) == []
    cluster.psql("DELETE FROM public.todos")
    changes(cluster)
