"""Realtime benchmark (make bench, benches/realtime.sh): commit-to-delivery latency and
sustained throughput of change events over WebSocket, on the dev cluster (wal_level = logical).

Latency, for 1, 100 and 1,000 WebSocket subscribers spread over the http workers, with row
level security on: subscriber i holds a token of user i % 10 (RLS: a row is visible to its
owner only) and filters `slot=eq.i`; a writer commits RATE single-row transactions a second,
row n in slot n % N, owned by slot % 10, so every change reaches exactly one subscriber through
a visibility query of its (role, claims) group. Each row carries the writer's clock just before
its INSERT; a subscriber's latency is its receive time minus that (both on this machine).

Slow REST requests: the 100-subscriber run again while 4 clients call a 200 ms function back
to back on both workers (requests run inline, so a worker running one delivers nothing
meanwhile).

Throughput: one subscriber, BURST rows inserted in transactions of 100 as fast as one
connection commits them; events/s from the first to the last delivered.

Each latency measurement runs ROUNDS times (3); the table gives the medians, and every
round's p99. Prints a markdown table (also written to target/bench-realtime.md).
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import jwt
import psycopg
import websockets

PORT = int(os.environ.get("PGREST_PORT", "3000"))
DURATION = float(os.environ.get("DURATION", "10"))
RATE = int(os.environ.get("RATE", "1000"))
ROUNDS = int(os.environ.get("ROUNDS", "3"))
BURST = int(os.environ.get("BURST", "50000"))
SUBSCRIBERS = [int(n) for n in os.environ.get("SUBSCRIBERS", "1,100,1000").split(",")]
SEEN: set[int] = set()
SECRET = "bench-realtime-secret-bench-realtime!!"
OUT = Path(__file__).resolve().parent.parent / "target" / "bench-realtime.md"

SETUP = """
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'bench_rt') THEN
    CREATE ROLE bench_rt NOLOGIN;
  END IF;
END $$;
DROP TABLE IF EXISTS public.bench_rt;
CREATE TABLE public.bench_rt (id bigint PRIMARY KEY, slot int, owner int, t float8);
ALTER TABLE public.bench_rt ENABLE ROW LEVEL SECURITY;
CREATE POLICY own ON public.bench_rt FOR SELECT TO bench_rt
  USING (owner = (current_setting('request.jwt.claims', true)::json->>'sub')::int);
GRANT SELECT ON public.bench_rt TO bench_rt;
CREATE OR REPLACE FUNCTION public.bench_rt_slow() RETURNS void LANGUAGE sql
  AS $$ SELECT pg_catalog.pg_sleep(0.2) $$;
GRANT EXECUTE ON FUNCTION public.bench_rt_slow() TO web_anon;
"""


def conninfo() -> str:
    return (f"host={os.environ['PGHOST']} port={os.environ['PGPORT']} "
            f"dbname={os.environ['PGDATABASE']} user={os.environ.get('PGUSER', 'postgres')}")


def token(sub: int) -> str:
    return jwt.encode({"role": "bench_rt", "sub": str(sub)}, SECRET, algorithm="HS256")


async def subscriber(i: int, n: int, latencies: list[float], ready: asyncio.Event,
                     counter: list[int], stop: asyncio.Event) -> None:
    url = f"ws://127.0.0.1:{PORT}/realtime?access_token={token(i % 10)}"
    async with websockets.connect(url, open_timeout=30, max_size=None) as ws:
        await ws.send(json.dumps({"op": "subscribe", "id": str(i), "table": "bench_rt",
                                  "events": ["INSERT"], "filter": f"slot=eq.{i}"}))
        reply = json.loads(await ws.recv())
        if reply.get("op") != "subscribed":
            raise RuntimeError(f"subscriber {i}: {reply}")
        counter[0] += 1
        if counter[0] == n:
            ready.set()
        while not stop.is_set():
            try:
                msg = await asyncio.wait_for(ws.recv(), 0.5)
            except asyncio.TimeoutError:
                continue
            e = json.loads(msg)
            if e.get("op") == "change":
                latencies.append(time.time() - e["record"]["t"])
                SEEN.add(e["record"]["id"])
            else:
                print(f"bench: subscriber {i} got {e}", file=sys.stderr)


def write_at_rate(n: int, start_id: int) -> int:
    """RATE single-row commits a second for DURATION seconds; returns rows written."""
    with psycopg.connect(conninfo(), autocommit=True) as c:
        rows = int(RATE * DURATION)
        t0 = time.perf_counter()
        for k in range(rows):
            due = t0 + k / RATE
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            row = start_id + k
            slot = row % n
            c.execute("INSERT INTO public.bench_rt VALUES (%s, %s, %s, %s)",
                      (row, slot, slot % 10, time.time()))
        return rows


async def slow_requests(stop: asyncio.Event, connections: int) -> None:
    """`connections` clients each calling a 200 ms function back to back (both workers get
    some): a worker running one delivers nothing meanwhile."""
    async def client() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", PORT)
        request = b"GET /rpc/bench_rt_slow HTTP/1.1\r\nHost: x\r\n\r\n"
        while not stop.is_set():
            writer.write(request)
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").lower()
            length = next((int(l.split(":", 1)[1]) for l in head.split("\r\n")
                           if l.startswith("content-length:")), 0)
            await reader.readexactly(length)
        writer.close()
    await asyncio.gather(*(client() for _ in range(connections)))


async def latency_run(n: int, start_id: int, slow: int = 0) -> tuple[float, float, int, int]:
    latencies: list[float] = []
    ready, stop = asyncio.Event(), asyncio.Event()
    counter = [0]
    tasks = [asyncio.create_task(subscriber(i, n, latencies, ready, counter, stop))
             for i in range(n)]
    await asyncio.wait_for(ready.wait(), 120)
    slow_stop = asyncio.Event()
    slow_task = asyncio.create_task(slow_requests(slow_stop, slow)) if slow else None
    written = await asyncio.to_thread(write_at_rate, n, start_id)
    slow_stop.set()
    if slow_task:
        await slow_task
    # Every change reaches one subscriber: wait (10 s at most) until all have arrived.
    for _ in range(100):
        if len(latencies) >= written:
            break
        await asyncio.sleep(0.1)
    stop.set()
    await asyncio.gather(*tasks)
    if not latencies:
        raise RuntimeError(f"{n} subscribers: no event delivered")
    missing = sorted(set(range(start_id, start_id + written)) - SEEN)
    if missing:
        print(f"bench: {n} subscribers: {len(missing)} events never delivered, e.g. "
              f"{missing[:10]}", file=sys.stderr)

    q = statistics.quantiles(latencies, n=100)
    return q[49] * 1000, q[98] * 1000, len(latencies), written


async def throughput_run(start_id: int) -> float:
    url = f"ws://127.0.0.1:{PORT}/realtime?access_token={token(0)}"
    async with websockets.connect(url, open_timeout=30, max_size=None) as ws:
        await ws.send(json.dumps({"op": "subscribe", "id": "t", "table": "bench_rt",
                                  "events": ["INSERT"]}))
        json.loads(await ws.recv())

        def burst() -> None:
            with psycopg.connect(conninfo()) as c:
                for first in range(start_id, start_id + BURST, 100):
                    c.execute("INSERT INTO public.bench_rt SELECT g, 0, 0, 0 "
                              "FROM generate_series(%s::bigint, %s::bigint) g",
                              (first, first + 99))
                    c.commit()

        writer = asyncio.create_task(asyncio.to_thread(burst))
        got, first_at = 0, None
        while got < BURST:
            json.loads(await asyncio.wait_for(ws.recv(), 60))
            first_at = first_at or time.perf_counter()
            got += 1
        await writer
        return got / (time.perf_counter() - first_at)


def main() -> None:
    want = max(SUBSCRIBERS) + 200
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(want, hard)), hard))
    with psycopg.connect(conninfo(), autocommit=True) as c:
        level = c.execute("SHOW wal_level").fetchone()[0]
        if level != "logical":
            sys.exit(f"bench: wal_level is {level}; realtime needs logical (make up sets it)")
        c.execute(SETUP)
        c.execute(f"ALTER SYSTEM SET pg_rest.jwt_secret = '{SECRET}'")
        c.execute("SELECT pg_reload_conf()")
    time.sleep(1.5)
    rows = []
    try:
        start = 1
        for n in SUBSCRIBERS:
            runs = []
            for _ in range(ROUNDS):
                runs.append(asyncio.run(latency_run(n, start)))
                start += runs[-1][3]
                print(f"== {n} subscribers: p50 {runs[-1][0]:.1f} ms, p99 {runs[-1][1]:.1f} ms",
                      file=sys.stderr)
            p50 = statistics.median(r[0] for r in runs)
            p99 = statistics.median(r[1] for r in runs)
            delivered, written = sum(r[2] for r in runs), sum(r[3] for r in runs)
            rows.append(f"| {n} subscribers, {RATE} changes/s, RLS | {p50:.1f} ms | "
                        f"{p99:.1f} ms ({', '.join(f'{r[1]:.0f}' for r in runs)}) | "
                        f"{delivered} of {written} |")
        # What a slow REST request costs the deliveries of its worker.
        p50, p99, delivered, written = asyncio.run(latency_run(100, start, slow=4))
        start += written
        rows.append(f"| 100 subscribers, {RATE} changes/s, RLS, 4 clients calling a 200 ms "
                    f"function | {p50:.1f} ms | {p99:.1f} ms | {delivered} of {written} |")
        rate = asyncio.run(throughput_run(start))
    finally:
        with psycopg.connect(conninfo(), autocommit=True) as c:
            c.execute("ALTER SYSTEM RESET pg_rest.jwt_secret")
            c.execute("SELECT pg_reload_conf()")
            c.execute("DROP TABLE IF EXISTS public.bench_rt")
    table = "\n".join([
        "| realtime (WebSocket) | p50 | p99 (each round) | delivered |",
        "|---|---|---|---|",
        *rows,
        f"| sustained, 1 subscriber, transactions of 100 rows | {rate:,.0f} events/s | | "
        f"{BURST} |",
    ])
    OUT.write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
