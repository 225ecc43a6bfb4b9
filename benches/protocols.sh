#!/usr/bin/env bash
# pg_rest protocol benchmark (make bench, after benches/run.sh): the single-row read over
# plain HTTP/1.1 keep-alive, HTTP/2 (h2c, 10 connections × 10 streams), TLS HTTP/1.1 and TLS
# HTTP/2 (ALPN), all with h2load at 100 requests in flight, beside pgbench running the same
# SQL (target/bench-single.sql, written by run.sh) with 100 clients; then the RSS of each
# http worker with 10,000 idle connections open. TLS is switched on for the run with a
# certificate made here, and off again, in ROUNDS rounds (medians). Writes
# target/bench-protocols.md.
set -euo pipefail

# shellcheck source=benches/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
IDLE="${IDLE:-10000}"
PATH_Q="/bench_items?id=eq.1"
OUT="$REPO/target/bench-protocols.md"
SQL="$REPO/target/bench-single.sql"

require_tools h2load openssl "$PGBIN/psql" "$PGBIN/pgbench"
[ -f "$SQL" ] || die "$SQL missing: run benches/run.sh first"

# h2load_rps NAME URL [options]: prints req/s; fails on any failed or non-2xx request.
h2load_rps() {
  local name=$1 url=$2; shift 2
  log "h2load $name $* $url"
  timeout $((DURATION + 30)) h2load -D "$DURATION" -t 2 "$@" "$url" > "$WORK/$name.txt" 2>&1 \
    || die "h2load ($name) failed: $(cat "$WORK/$name.txt")"
  grep -q " 0 failed, 0 errored" "$WORK/$name.txt" || die "h2load ($name): failures: $(cat "$WORK/$name.txt")"
  # A refused connection is no failed request: none done is a failure too.
  awk '/^requests:/ && $8 > 0 {ok = 1} END {exit !ok}' "$WORK/$name.txt" \
    || die "h2load ($name): no request succeeded: $(cat "$WORK/$name.txt")"
  awk '/^finished in/ {gsub(/,/, "", $4); print $4}' "$WORK/$name.txt"
}

WORK="$(mktemp -d)"
tls_off() {
  psql_q -c "ALTER SYSTEM RESET pg_rest.tls_cert_file" -c "ALTER SYSTEM RESET pg_rest.tls_key_file" \
    -c "SELECT pg_reload_conf()" >/dev/null || true
}
trap 'tls_off; rm -rf "$WORK"' EXIT

PLAIN="http://127.0.0.1:$PGREST_PORT$PATH_Q"
TLS="https://127.0.0.1:$PGREST_PORT$PATH_Q"

# TLS: a throwaway certificate the server (user postgres) can read.
CERTS="$REPO/target/dev-pg/tls"
mkdir -p "$CERTS"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=pg-rest-bench \
  -keyout "$CERTS/bench.key" -out "$CERTS/bench.crt" 2>/dev/null
chown -R postgres:postgres "$CERTS" && chmod 600 "$CERTS"/bench.*
tls_on() {
  psql_q -c "ALTER SYSTEM SET pg_rest.tls_cert_file = '$CERTS/bench.crt'" \
    -c "ALTER SYSTEM SET pg_rest.tls_key_file = '$CERTS/bench.key'" -c "SELECT pg_reload_conf()" >/dev/null
  sleep 1
}

tls_off
# ROUNDS rounds, each: pgbench, plain HTTP/1.1 and h2c, then (TLS switched on by reload) TLS
# HTTP/1.1 and HTTP/2. Each ratio is the median of the rounds' ratios, each round's figures
# taken within a minute of each other, so the machine's drift weighs less than in one pass.
PG_ALL=() H1_ALL=() H2_ALL=() T1_ALL=() T2_ALL=() R_H2=() R_T1=() R_T2=() R_PG=()
for r in $(seq 1 "$ROUNDS"); do
  log "round $r: pgbench -M prepared -c100 (pg_rest's SQL)"
  timeout $((DURATION + 30)) "$PGBIN/pgbench" -n -M prepared -c 100 -j 2 -T "$DURATION" -f "$SQL" \
    > "$WORK/pgbench.txt" 2>&1 || die "pgbench failed: $(cat "$WORK/pgbench.txt")"
  pg="$(awk '/^tps = / {print $3; exit}' "$WORK/pgbench.txt")"
  h1="$(h2load_rps h1 "$PLAIN" --h1 -c 100)"
  h2="$(h2load_rps h2 "$PLAIN" -c 10 -m 10)"
  tls_on
  t1="$(h2load_rps tls-h1 "$TLS" --h1 -c 100)"
  t2="$(h2load_rps tls-h2 "$TLS" -c 10 -m 10)"
  tls_off
  sleep 1
  PG_ALL+=("$pg") H1_ALL+=("$h1") H2_ALL+=("$h2") T1_ALL+=("$t1") T2_ALL+=("$t2")
  R_PG+=("$(ratio "$h1" "$pg")") R_H2+=("$(ratio "$h2" "$h1")")
  R_T1+=("$(ratio "$t1" "$h1")") R_T2+=("$(ratio "$t2" "$h1")")
  log "round $r: pgbench $(fmt "$pg"), h1 $(fmt "$h1"), h2 $(fmt "$h2") (${R_H2[-1]}x), tls h1 $(fmt "$t1") (${R_T1[-1]}x), tls h2 $(fmt "$t2") (${R_T2[-1]}x)"
done
PGBENCH_TPS="$(median "${PG_ALL[@]}")"
H1_RPS="$(median "${H1_ALL[@]}")"
H2_RPS="$(median "${H2_ALL[@]}")"
TLS_H1_RPS="$(median "${T1_ALL[@]}")"
TLS_H2_RPS="$(median "${T2_ALL[@]}")"

# RSS with IDLE idle connections: opened, held while RSS is read, closed.
log "RSS with $IDLE idle connections"
RSS="$("$VENV_PY" - "$PGREST_PORT" "$IDLE" <<'PY'
import resource, socket, subprocess, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_NOFILE, (n + 1000, n + 1000))
socks = []
for _ in range(n):
    s = socket.socket()
    s.connect(("127.0.0.1", port))
    socks.append(s)
time.sleep(2)
pids = subprocess.run(["pgrep", "-f", "pg_rest http"], capture_output=True, text=True).stdout.split()
out = []
for pid in pids:
    with open(f"/proc/{pid}/status") as f:
        kb = {l.split(":")[0]: int(l.split()[1]) for l in f if l.startswith(("VmRSS:", "RssAnon:"))}
    # RssAnon: the worker's own memory; VmRSS adds the shared buffers it has touched.
    out.append(f"pid {pid}: {kb['RssAnon'] // 1024} MB private ({kb['VmRSS'] // 1024} MB RSS)")
print(", ".join(out))
PY
)"

REPORT="$(cat <<MD
# pg_rest protocol benchmark

$(date -u '+%Y-%m-%d %H:%M:%S UTC') · $(nproc) CPUs · ${DURATION}s per run · ${ROUNDS} rounds, medians (each round's ratios in brackets) · 100 requests in flight · commit $(git -C "$REPO" rev-parse -q --verify --short HEAD 2>/dev/null || echo none)

| GET ${PATH_Q} | req/s | × plain HTTP/1.1 | × pgbench |
|---|---|---|---|
| pgbench -M prepared, 100 clients (same SQL) | $(fmt "$PGBENCH_TPS") | | 1.00 |
| plain HTTP/1.1 keep-alive (100 connections) | $(fmt "$H1_RPS") | 1.00 | $(median "${R_PG[@]}") |
| HTTP/2 h2c (10 connections × 10 streams) | $(fmt "$H2_RPS") | $(median "${R_H2[@]}") ($(IFS=,; echo "${R_H2[*]}")) | |
| TLS HTTP/1.1 (100 connections) | $(fmt "$TLS_H1_RPS") | $(median "${R_T1[@]}") ($(IFS=,; echo "${R_T1[*]}")) | |
| TLS HTTP/2 by ALPN (10 × 10) | $(fmt "$TLS_H2_RPS") | $(median "${R_T2[@]}") ($(IFS=,; echo "${R_T2[*]}")) | |

Memory per http worker with ${IDLE} idle connections open: ${RSS}
MD
)"
printf '%s\n' "$REPORT" > "$OUT"
printf '\n%s\n\n(written to %s)\n' "$REPORT" "$OUT"
