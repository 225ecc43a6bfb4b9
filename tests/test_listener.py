"""The listening socket belongs to the server: a second cluster configured on a port this one
holds does not serve (and says why), the workers of one server share the port, and a request
that runs its SQL for a while delays only its own worker's connections."""

from __future__ import annotations

import shutil
import threading
import time

from conftest import RawHTTP, build_cluster, build_request, extra_cluster, wait_until


def test_second_cluster_on_the_same_port_does_not_serve(pg):
    # The extra cluster's database has no table `books`: any request it answered would be 404.
    other = extra_cluster("test-pg-sameport", 54333, 3105, "postgres")
    other.conf["pg_rest.port"] = str(pg.http_port)
    other.conf["pg_rest.workers"] = "2"
    try:
        build_cluster(other, None, create_extension=True,
                      extra_sql=["CREATE ROLE web_anon NOLOGIN"])
        line = wait_until(
            lambda: next((l for l in other.log_text().splitlines()
                          if "not serving HTTP" in l), None),
            15, interval=0.2, what="the second cluster's log line about the port")
        assert f"address 127.0.0.1 port {pg.http_port}" in line, line
        assert "in use" in line, line
        time.sleep(1.5)  # a supervisor that wrongly started workers would have done so by now
        rows = other.sql("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_rest http'")
        assert rows[0][0] == 0, "the second cluster started http workers"
        assert other.log_text().count("not serving HTTP") == 1, other.log_tail()

        # Every request still reaches the first cluster's database.
        statuses = []
        for _ in range(40):
            with RawHTTP(pg.http_port, timeout=5) as c:
                c.send(build_request("GET", "/books?id=eq.1", {"Connection": "close"}))
                statuses.append(c.read_response().status)
        assert statuses == [200] * 40, statuses
    finally:
        if (other.data_dir / "postmaster.pid").exists():
            other.stop("immediate")
        shutil.rmtree(other.root, ignore_errors=True)


def _worker_of(c: RawHTTP) -> int:
    c.send(build_request("GET", "/worker"))
    return c.read_response().json()[0]["pid"]


def test_what_clients_see_while_a_request_sleeps(pg):
    """A request running pg_sleep(2) holds its worker: that worker's other connections wait
    for it, the other worker's connections and new connections are served at once."""
    conns: list[RawHTTP] = []
    try:
        by_worker: dict[int, list[RawHTTP]] = {}
        for _ in range(40):
            c = RawHTTP(pg.http_port, timeout=10)
            conns.append(c)
            by_worker.setdefault(_worker_of(c), []).append(c)
            if len(by_worker) == 2 and max(len(v) for v in by_worker.values()) >= 2:
                break
        busy_pid = next(p for p, v in by_worker.items() if len(v) >= 2)
        sleeper, same_worker = by_worker[busy_pid][:2]
        other_worker = next(v[0] for p, v in by_worker.items() if p != busy_pid)

        done = threading.Event()

        def sleep2():
            sleeper.send(build_request("GET", "/sleep2"))
            sleeper.read_response(timeout=10)
            done.set()

        t = threading.Thread(target=sleep2, daemon=True)
        t0 = time.monotonic()
        t.start()
        wait_until(lambda: pg.sql("SELECT 1 FROM pg_stat_activity WHERE pid = %s "
                                  "AND state = 'active'", busy_pid),
                   5, interval=0.02, what="/sleep2 running")

        def timed(c: RawHTTP) -> float:
            start = time.monotonic()
            c.send(build_request("GET", "/books?id=eq.1"))
            assert c.read_response(timeout=10).status == 200
            return time.monotonic() - start

        other = timed(other_worker)
        fresh_start = time.monotonic()
        with RawHTTP(pg.http_port, timeout=10) as fresh:
            fresh_pid = _worker_of(fresh)
        fresh = time.monotonic() - fresh_start
        same = timed(same_worker)
        waited_for_sleep = time.monotonic() - t0
        t.join(10)
        assert done.is_set()

        assert other < 0.5, f"the other worker's connection waited {other:.2f}s"
        assert fresh_pid != busy_pid, "a new connection went to the busy worker"
        assert fresh < 0.5, f"a new connection waited {fresh:.2f}s"
        # The busy worker's other connection is answered only after the sleep.
        assert same > 1.0 and waited_for_sleep >= 1.9, (same, waited_for_sleep)
    finally:
        for c in conns:
            c.close()
