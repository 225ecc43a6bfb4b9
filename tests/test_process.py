"""Process model: supervisor, worker count on SIGHUP, supervisor restart, postmaster death."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import threading
import time
from pathlib import Path

from conftest import build_cluster, extra_cluster, run, wait_until


def test_supervisor_is_visible(pg):
    rows = pg.sql("SELECT pid, backend_type FROM pg_stat_activity "
                  "WHERE backend_type = 'pg_rest supervisor'")
    assert len(rows) == 1, rows


def wait_workers(pg, n: int, timeout: float = 15) -> set[int]:
    return wait_until(lambda: (lambda p: p if len(p) == n else None)(pg.http_pids()),
                      timeout, interval=0.25, what=f"{n} pg_rest http workers")


def test_sighup_changes_worker_count(pg):
    pids2 = wait_workers(pg, 2)
    with pg.reload_with(workers=3):
        pids3 = wait_workers(pg, 3)
        assert pids2 < pids3, "adding a worker must not restart the running ones"
        assert pg.get("/books").status_code == 200
    # Lowering the count stops the worker that was added; the first two serve on untouched.
    assert wait_workers(pg, 2) == pids2, "removing a worker must not restart the others"
    # Stays at 2 (no flapping) and serves.
    time.sleep(1.0)
    assert pg.http_pids() == pids2
    assert pg.get("/books").status_code == 200


class Prober:
    """Sends GET /books on a fresh connection every 0.1 s in a thread; records the longest
    stretch of consecutive failures."""

    def __init__(self, pg):
        self.pg = pg
        self.stop = threading.Event()
        self.ok = 0
        self.failed = 0
        self.longest_outage = 0.0
        self.errors: list[str] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        outage_start = None
        while not self.stop.is_set():
            try:
                status = self.pg.get("/books?id=eq.1", timeout=2).status_code
            except Exception as exc:  # noqa: BLE001
                status = repr(exc)
            now = time.monotonic()
            if status == 200:
                self.ok += 1
                if outage_start is not None:
                    self.longest_outage = max(self.longest_outage, now - outage_start)
                    outage_start = None
            else:
                self.failed += 1
                if len(self.errors) < 20:
                    self.errors.append(str(status))
                if outage_start is None:
                    outage_start = now
            time.sleep(0.1)
        if outage_start is not None:
            self.longest_outage = max(self.longest_outage, time.monotonic() - outage_start)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(5)


def test_supervisor_restart_keeps_two_workers_and_serving(pg):
    wait_workers(pg, 2)
    old = pg.supervisor_pids()
    assert len(old) == 1, old
    (old_pid,) = old
    with Prober(pg) as probe:
        assert pg.sql("SELECT pg_terminate_backend(%s)", old_pid)[0][0] is True

        def new_supervisor():
            sup = pg.supervisor_pids()
            return sup if len(sup) == 1 and old_pid not in sup else None

        wait_until(new_supervisor, 20, interval=0.25, what="a new pg_rest supervisor")
        # Exactly 2 http workers, stably (no duplicates started by the new supervisor).
        wait_workers(pg, 2, timeout=15)
        time.sleep(2.0)
        pids = pg.http_pids()
        assert len(pids) == 2, f"after supervisor restart: {pids}"
    assert probe.ok > 0, probe.errors
    assert probe.longest_outage < 3.0, (
        f"HTTP unavailable for {probe.longest_outage:.2f}s during supervisor restart: "
        f"{probe.errors}")


# ----------------------------------------------------------------------------------------
# Postmaster death, in a separate throwaway cluster
# ----------------------------------------------------------------------------------------

DEATH_CLUSTER_NAME = "pgrest_deathtest"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(
            "utf-8", "replace")
    except OSError:
        return ""


def _ppid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # pid (comm) state ppid ...; comm may contain spaces/parens: split after the last ')'.
    return int(stat.rsplit(")", 1)[1].split()[1])


def _all_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def _cluster_processes(postmaster_pid: int | None) -> set[int]:
    """Processes of the death-test cluster: children of its postmaster, or any process whose
    command line carries its cluster_name."""
    out = set()
    for pid in _all_pids():
        cmd = _cmdline(pid)
        if cmd.startswith(f"postgres: {DEATH_CLUSTER_NAME}:") or (
                postmaster_pid and _ppid(pid) == postmaster_pid):
            out.add(pid)
    return out


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_postmaster_death_stops_pg_rest(pg):
    port = 3102
    cluster = extra_cluster("test-pg-death", 54330, port, "postgres",
                            cluster_name=f"'{DEATH_CLUSTER_NAME}'")
    procs: set[int] = set()
    shm_id = None
    killed = False
    try:
        build_cluster(cluster, None, create_extension=True,
                      extra_sql=["CREATE ROLE web_anon NOLOGIN"])
        # Any HTTP answer means the worker is up (there is no table to serve here).
        cluster.wait_http_ready("/", timeout=60, accept=lambda s: 100 <= s < 600)
        pm = cluster.postmaster_pid()
        pid_lines = (cluster.data_dir / "postmaster.pid").read_text().splitlines()
        if len(pid_lines) >= 7 and pid_lines[6].split():
            shm_id = pid_lines[6].split()[-1]
        procs = _cluster_processes(pm)
        # pg_rest's processes: by backend_type, and by 'pg_rest' in their command line.
        rest = {r[0] for r in cluster.sql("SELECT pid FROM pg_stat_activity "
                                          "WHERE backend_type LIKE 'pg_rest%'")}
        rest |= {p for p in procs if "pg_rest" in _cmdline(p)}
        assert rest, ("no pg_rest process found among the cluster's processes: " +
                      "; ".join(_cmdline(p) for p in sorted(procs)))
        procs |= rest

        os.kill(pm, signal.SIGKILL)
        killed = True
        t0 = time.monotonic()

        def port_refused():
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return False
            except ConnectionRefusedError:
                return True
            except OSError:
                return False

        wait_until(port_refused, 5, interval=0.1,
                   what=f"port {port} to refuse connections after the postmaster died")

        def pg_rest_gone():
            left = [p for p in rest if _alive(p)]
            left += [p for p in _cluster_processes(None)
                     if "pg_rest" in _cmdline(p) and _alive(p)]
            return not left

        remaining = max(0.1, 5 - (time.monotonic() - t0))
        try:
            wait_until(pg_rest_gone, remaining, interval=0.1,
                       what="pg_rest processes to exit after the postmaster died")
        except AssertionError as exc:
            left = {p: _cmdline(p) for p in rest if _alive(p)}
            raise AssertionError(f"{exc}: still alive: {left}") from None
    finally:
        # Clean up whatever is left of that cluster, by pid.
        pm_pid = None
        try:
            pm_pid = cluster.postmaster_pid()
        except (OSError, ValueError, IndexError):
            pass
        if pm_pid and _alive(pm_pid):
            cluster.stop("immediate")  # the test failed before its kill -9: stop cleanly
        procs |= _cluster_processes(pm_pid)
        for p in procs:
            if p != os.getpid() and _alive(p):
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 5
        while any(_alive(p) for p in procs) and time.monotonic() < deadline:
            time.sleep(0.05)
        if killed and shm_id:
            # The postmaster died by SIGKILL: its System V segment is left behind.
            run(["ipcrm", "-m", shm_id], check=False, timeout=10)
        shutil.rmtree(cluster.root, ignore_errors=True)
