"""Worker lifecycle beyond the basics of test_process.py: waiting for a database that does not
exist yet, SIGHUP keeping connections, a request in flight when its worker is terminated,
pg_stat_activity showing a running request, and pg_rest.max_rows."""

from __future__ import annotations

import shutil
import threading
import time

import psycopg

from conftest import (assert_pgrst_error, build_cluster, build_request, extra_cluster,
                      port_is_open, wait_until)

LATE_DB = "late_db"
MISSING_DB_LINE = f'database "{LATE_DB}" (pg_rest.database) does not exist yet'


def test_workers_wait_for_a_missing_database_then_serve():
    """No crash loop while pg_rest.database is missing: one log line, no http worker; once the
    database is created, workers start and serve without a restart."""
    port = 3103
    cluster = extra_cluster("test-pg-late", 54331, port, LATE_DB)
    try:
        build_cluster(cluster, None, create_extension=False)
        wait_until(lambda: MISSING_DB_LINE in cluster.log_text(), 10, interval=0.1,
                   what="the missing-database log line")
        time.sleep(3)  # several supervisor ticks
        assert cluster.http_pids() == set()
        assert cluster.log_text().count(MISSING_DB_LINE) == 1, "logged more than once"
        assert "exited with exit code" not in cluster.log_text(), cluster.log_tail()
        # Meanwhile a client is told why, at once, instead of waiting in the accept queue.
        r = cluster.get("/t", timeout=3)
        err = assert_pgrst_error(r.status_code, r.content, 503, "PGRST000")
        assert f'database "{LATE_DB}"' in err["message"], err

        cluster.psql(f"CREATE DATABASE {LATE_DB}", dbname="postgres")
        cluster.psql("CREATE ROLE web_anon NOLOGIN; CREATE TABLE t(id int); "
                     "INSERT INTO t VALUES (7); GRANT SELECT ON t TO web_anon;", dbname=LATE_DB)
        cluster.wait_http_ready("/t", timeout=15)
        assert cluster.get("/t").json() == [{"id": 7}]
        assert len(cluster.http_pids()) == 1

        # A fast shutdown: SIGTERM to every worker; all of them leave promptly and cleanly.
        t0 = time.monotonic()
        assert cluster.stop("fast").returncode == 0
        assert time.monotonic() - t0 < 10
        log = cluster.log_text()
        assert "pg_rest http worker 0 shut down" in log, cluster.log_tail()
        assert "pg_rest supervisor exiting on SIGTERM" in log, cluster.log_tail()
        assert "terminating any other active server processes" not in log
        assert not port_is_open(port)
    finally:
        if (cluster.data_dir / "postmaster.pid").exists():
            cluster.stop("fast")
        shutil.rmtree(cluster.root, ignore_errors=True)


def test_keep_alive_connection_survives_sighup(pg):
    with pg.raw() as c:
        c.send(build_request("GET", "/books?id=eq.1"))
        assert c.read_response().status == 200
        with pg.reload_with(log_requests="on"):
            c.send(build_request("GET", "/books?id=eq.2"))
            r = c.read_response()
            assert r.status == 200 and r.json()[0]["id"] == 2


def _active_worker(pg, relation: str):
    rows = pg.sql("SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_rest http' "
                  "AND state = 'active' AND query LIKE %s", f'%"{relation}"%')
    return rows[0][0] if rows else None


def test_request_in_flight_when_its_worker_is_terminated(pg):
    """The running SQL is stopped (a catchable cancel, not PostgreSQL's FATAL), the client gets
    503 57P01 to retry, and the supervisor replaces the worker."""
    wait_until(lambda: len(pg.http_pids()) == 2, 15, interval=0.2, what="2 http workers")
    result: dict = {}

    def slow():
        with pg.raw(timeout=10) as c:
            c.send(build_request("GET", "/slow"))
            t0 = time.monotonic()
            result["response"] = c.read_response(timeout=10)
            result["elapsed"] = time.monotonic() - t0

    t = threading.Thread(target=slow)
    t.start()
    busy = wait_until(lambda: _active_worker(pg, "slow"), 5, interval=0.05,
                      what="a pg_rest http worker shown active on /slow in pg_stat_activity")
    pg.sql("SELECT pg_terminate_backend(%s)", busy)
    t.join(15)
    assert not t.is_alive()
    r = result["response"]
    assert_pgrst_error(r.status, r.body, 503, "57P01")
    assert result["elapsed"] < 2.5, result["elapsed"]
    wait_until(lambda: len(pg.http_pids()) == 2 and busy not in pg.http_pids(), 15,
               interval=0.2, what="a replacement http worker")
    assert pg.get("/books").status_code == 200


def test_max_rows_caps_reads(pg):
    with pg.reload_with(max_rows="2"):
        r = pg.get("/books")
        assert r.status_code == 200
        assert len(r.json()) == 2
        assert r.headers["content-range"] == "0-1/*"
    assert len(pg.get("/books").json()) == 5


def test_drop_database_is_not_blocked_by_idle_workers(pg):
    """DROP DATABASE waits for every process to absorb a ProcSignalBarrier; idle pg_rest
    processes must do so promptly (they sleep in epoll, not in PostgreSQL's own loops)."""
    pg.sql("CREATE DATABASE barrier_probe")
    t0 = time.monotonic()
    with pg.connect() as conn:
        conn.execute("SET statement_timeout = '20s'")
        conn.execute("DROP DATABASE barrier_probe")
    elapsed = time.monotonic() - t0
    assert elapsed < 5, f"DROP DATABASE took {elapsed:.1f}s"
    assert pg.get("/books").status_code == 200


def test_schema_cache_follows_ddl_on_cached_tables(pg):
    pg.sql("CREATE TABLE evolving (id int); INSERT INTO evolving VALUES (1);"
           "GRANT SELECT ON evolving TO web_anon")
    try:
        wait_until(lambda: pg.get("/evolving").status_code == 200, 5, interval=0.1,
                   what="the new table to be served")
        assert_pgrst_error(*_status_body(pg.get("/evolving?tag=is.null")), 400, "42703")
        pg.sql("ALTER TABLE evolving ADD COLUMN tag text")
        wait_until(lambda: pg.get("/evolving?tag=is.null").status_code == 200, 5, interval=0.1,
                   what="a filter on the added column")
        assert pg.get("/evolving?tag=is.null").json() == [{"id": 1, "tag": None}]
        pg.sql("ALTER TABLE evolving RENAME TO evolved")
        wait_until(lambda: pg.get("/evolving").status_code == 404, 5, interval=0.1,
                   what="the renamed table's old name to be gone")
        assert pg.get("/evolved").status_code == 200
    finally:
        pg.sql("DROP TABLE IF EXISTS evolving; DROP TABLE IF EXISTS evolved")


def _status_body(r):
    return r.status_code, r.content


def test_create_extension_without_preloading_warns_and_works():
    """Loaded only by CREATE EXTENSION (not preloaded): a clear WARNING, no dead session, and
    the SQL API says what to do."""
    cluster = extra_cluster("test-pg-nopreload", 54332, 3104, "postgres",
                            shared_preload_libraries="''")
    try:
        build_cluster(cluster, None, create_extension=False)
        with cluster.connect() as conn:
            notices: list[str] = []
            conn.add_notice_handler(lambda d: notices.append(d.message_primary or ""))
            conn.execute("CREATE EXTENSION pg_rest")
            assert any("shared_preload_libraries" in n for n in notices), notices
            assert conn.execute("SELECT 1").fetchone() == (1,)
            try:
                conn.execute("SELECT * FROM pg_rest.stat_workers")
                raise AssertionError("stat_workers answered without shared memory")
            except psycopg.Error as e:
                assert "shared_preload_libraries" in str(e), str(e)
        assert not port_is_open(3104)
        assert "terminating any other active server processes" not in cluster.log_text()
    finally:
        if (cluster.data_dir / "postmaster.pid").exists():
            cluster.stop("fast")
        shutil.rmtree(cluster.root, ignore_errors=True)


LATIN_DB = "latin_db"


def test_a_database_that_is_not_utf8_is_refused_once_with_the_reason():
    """pg_rest serves UTF8 databases only: for another encoding the supervisor says so once in
    the log, starts no worker (no crash loop, no 500 per request), and clients get a 503 that
    names the reason."""
    cluster = extra_cluster("test-pg-latin", 54334, 3106, LATIN_DB)
    try:
        build_cluster(cluster, None, create_extension=False, extra_sql=[
            f"CREATE DATABASE {LATIN_DB} ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' "
            "TEMPLATE template0"])
        line = f'database "{LATIN_DB}" (pg_rest.database) has encoding LATIN1'
        wait_until(lambda: line in cluster.log_text(), 10, interval=0.1,
                   what="the encoding log line")
        time.sleep(2)  # several supervisor ticks
        assert cluster.log_text().count(line) == 1, cluster.log_tail()
        assert "UTF8 databases only" in cluster.log_text()
        assert cluster.http_pids() == set()
        r = cluster.get("/t", timeout=3)
        err = assert_pgrst_error(r.status_code, r.content, 503, "PGRST000")
        assert "has encoding LATIN1" in err["message"], err
    finally:
        if (cluster.data_dir / "postmaster.pid").exists():
            cluster.stop("fast")
        shutil.rmtree(cluster.root, ignore_errors=True)
