#!/usr/bin/env bash
# pg_rest on a streaming standby (make bench, after benches/run.sh, whose tables it uses): a
# standby of the dev cluster is made with pg_basebackup -R (target/dev-pg-standby, pg_rest on
# PGREST_STANDBY_PORT), then, in ROUNDS alternating rounds (medians):
#   - the single-row read on the standby against the same read on the primary, and against
#     pgbench running its SQL on the standby;
#   - a single-row POST (return=minimal) sent to the standby, which forwards it to the
#     primary, against the same POST sent to the primary;
#   - the latency one client sees for that POST, p50 and p99, local and forwarded: the
#     difference is what forwarding adds;
#   - the single-row read on the primary with pg_rest.read_replicas naming the standby (each
#     read sent to it) against the same read served by the primary itself.
# The standby is stopped and removed at the end. Writes target/bench-replicas.md.
set -euo pipefail

# shellcheck source=benches/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
CONNECTIONS="${CONNECTIONS:-50}"
STANDBY_PG_PORT="${STANDBY_PG_PORT:-54348}"
STANDBY_HTTP_PORT="${PGREST_STANDBY_PORT:-3002}"
STANDBY="$REPO/target/dev-pg-standby"
SQL="$REPO/target/bench-single.sql"
OUT="$REPO/target/bench-replicas.md"
READ_PATH="/bench_items?id=eq.1"

require_tools wrk curl "$PGBIN/pg_basebackup" "$PGBIN/pgbench"
[ -f "$SQL" ] || die "$SQL missing: run benches/run.sh first"

WORK="$(mktemp -d)"
as_pg() { runuser -u postgres -- "$@"; }
stop_standby() {
  if [ -f "$STANDBY/data/postmaster.pid" ]; then
    as_pg "$PGBIN/pg_ctl" -D "$STANDBY/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$STANDBY"
}
replicas_off() {
  psql_q -c "ALTER SYSTEM RESET pg_rest.read_replicas" -c "SELECT pg_reload_conf()" >/dev/null || true
}
replicas_on() {
  psql_q -c "ALTER SYSTEM SET pg_rest.read_replicas = 'host=$STANDBY/data port=$STANDBY_PG_PORT'" \
    -c "SELECT pg_reload_conf()" >/dev/null
  sleep 2  # the workers reload and probe the replica
}
trap 'replicas_off; stop_standby; rm -rf "$WORK"' EXIT

log "standby: pg_basebackup of $PGHOST:$PGPORT into $STANDBY"
stop_standby
mkdir -p "$STANDBY" && chown postgres:postgres "$STANDBY"
as_pg "$PGBIN/pg_basebackup" -h "$PGHOST" -p "$PGPORT" -U postgres -D "$STANDBY/data" -R \
  -X stream --no-sync -c fast >/dev/null
cat >> "$STANDBY/data/postgresql.conf" <<CONF
# --- the benchmark's standby ---
port = $STANDBY_PG_PORT
unix_socket_directories = '$STANDBY/data'
pg_rest.port = $STANDBY_HTTP_PORT
pg_rest.realtime = off
CONF
as_pg "$PGBIN/pg_ctl" -D "$STANDBY/data" -l "$STANDBY/server.log" -w start >/dev/null
PRIMARY="http://127.0.0.1:$PGREST_PORT"
REPLICA="http://127.0.0.1:$STANDBY_HTTP_PORT"
for _ in $(seq 1 120); do
  curl -fs -o /dev/null "$REPLICA$READ_PATH" && break
  sleep 0.5
done
curl -fs -o /dev/null "$REPLICA$READ_PATH" || die "the standby does not serve: $(tail -5 "$STANDBY/server.log")"
echo '{"name": "forwarded", "qty": 1}' > "$WORK/one.json"
curl -fs -o /dev/null -X POST -H 'Content-Type: application/json' --data-binary "@$WORK/one.json" \
  "$REPLICA/bench_writes" || die "a POST to the standby fails: $(curl -s -X POST -H 'Content-Type: application/json' --data-binary "@$WORK/one.json" "$REPLICA/bench_writes")"

# wrk_run NAME URL [wrk options...] [-- script args...]: the wrk output file.
wrk_run() {
  local name=$1 url=$2; shift 2
  local opts=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do opts+=("$1"); shift; done
  log "wrk $name $url"
  timeout $((DURATION + 30)) wrk -d"${DURATION}s" "${opts[@]}" "$url" "$@" > "$WORK/$name.txt" 2>&1 \
    || die "wrk ($name) failed: $(cat "$WORK/$name.txt")"
  grep -q "Non-2xx" "$WORK/$name.txt" && die "wrk ($name): non-2xx responses: $(cat "$WORK/$name.txt")"
  echo "$WORK/$name.txt"
}
rps() { awk '/^Requests\/sec:/ {print $2}' "$1"; }
# percentile FILE P: wrk --latency's P% line in microseconds.
percentile() {
  awk -v p="$2%" '$1 == p {
    v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v)
    f = (u == "us") ? 1 : (u == "ms") ? 1000 : (u == "s") ? 1000000 : 0
    printf "%.0f", v * f }' "$1"
}
pgbench_standby() {
  log "pgbench on the standby"
  timeout $((DURATION + 30)) "$PGBIN/pgbench" -n -M prepared -c "$CONNECTIONS" -j 2 -T "$DURATION" \
    -h "$STANDBY/data" -p "$STANDBY_PG_PORT" -f "$SQL" "$PGDATABASE" 2>&1 \
    | awk '/^tps = / {print $3}'
}
LOAD=(-t2 "-c$CONNECTIONS")
POST=(-s "$REPO/benches/post.lua")

R_SP=() R_SB=() R_FW=() R_RR=() P_RPS=() S_RPS=() PB=() L_RPS=() F_RPS=() RR_RPS=()
L50=() L99=() F50=() F99=()
for r in $(seq 1 "$ROUNDS"); do
  p="$(rps "$(wrk_run "primary-read-$r" "$PRIMARY$READ_PATH" "${LOAD[@]}")")"
  s="$(rps "$(wrk_run "standby-read-$r" "$REPLICA$READ_PATH" "${LOAD[@]}")")"
  b="$(pgbench_standby)"
  l="$(rps "$(wrk_run "local-post-$r" "$PRIMARY/bench_writes" "${LOAD[@]}" "${POST[@]}" -- "$WORK/one.json")")"
  f="$(rps "$(wrk_run "forwarded-post-$r" "$REPLICA/bench_writes" "${LOAD[@]}" "${POST[@]}" -- "$WORK/one.json")")"
  one="$(wrk_run "local-latency-$r" "$PRIMARY/bench_writes" -t1 -c1 --latency "${POST[@]}" -- "$WORK/one.json")"
  L50+=("$(percentile "$one" 50)"); L99+=("$(percentile "$one" 99)")
  one="$(wrk_run "forwarded-latency-$r" "$REPLICA/bench_writes" -t1 -c1 --latency "${POST[@]}" -- "$WORK/one.json")"
  F50+=("$(percentile "$one" 50)"); F99+=("$(percentile "$one" 99)")
  replicas_on
  routed="$(rps "$(wrk_run "routed-read-$r" "$PRIMARY$READ_PATH" "${LOAD[@]}")")"
  replicas_off
  P_RPS+=("$p"); S_RPS+=("$s"); PB+=("$b"); L_RPS+=("$l"); F_RPS+=("$f"); RR_RPS+=("$routed")
  R_SP+=("$(ratio "$s" "$p")"); R_SB+=("$(ratio "$s" "$b")"); R_FW+=("$(ratio "$f" "$l")")
  R_RR+=("$(ratio "$routed" "$p")")
  log "round $r: read primary $(fmt "$p"), standby $(fmt "$s"), pgbench on it $(fmt "$b");" \
    "POST local $(fmt "$l"), forwarded $(fmt "$f"); one client p50 ${L50[-1]} → ${F50[-1]} µs"
done
L50M="$(median "${L50[@]}")"; F50M="$(median "${F50[@]}")"
L99M="$(median "${L99[@]}")"; F99M="$(median "${F99[@]}")"
FORWARDED="$(psql_q -h "$STANDBY/data" -p "$STANDBY_PG_PORT" -tAc \
  "SELECT sum(forwarded) || ' forwarded, ' || sum(forward_failures) || ' refused' FROM pg_rest.stat_forwarding")"
ROUTED="$(psql_q -tAc "SELECT sum(replica_reads) FROM pg_rest.stat_forwarding")"

cat > "$OUT" <<EOF
| pg_rest on a streaming standby (${DURATION}s × ${ROUNDS} rounds, medians, $CONNECTIONS connections) | |
|---|---|
| single-row read req/s: primary · standby · standby ÷ primary | $(fmt "$(median "${P_RPS[@]}")") · $(fmt "$(median "${S_RPS[@]}")") · $(median "${R_SP[@]}") |
| the read on the standby ÷ pgbench (-M prepared, same SQL) on the standby | $(median "${R_SB[@]}") ($(fmt "$(median "${PB[@]}")") tps) |
| single-row POST req/s: local on the primary · forwarded by the standby · ratio | $(fmt "$(median "${L_RPS[@]}")") · $(fmt "$(median "${F_RPS[@]}")") · $(median "${R_FW[@]}") |
| one client's POST latency p50: local · forwarded · added | ${L50M} µs · ${F50M} µs · $(fmt "$(awk -v a="$F50M" -v b="$L50M" 'BEGIN {print a - b}')") µs |
| one client's POST latency p99: local · forwarded · added | ${L99M} µs · ${F99M} µs · $(fmt "$(awk -v a="$F99M" -v b="$L99M" 'BEGIN {print a - b}')") µs |
| the standby's pg_rest.stat_forwarding | ${FORWARDED} |
| single-row read on the primary sent to the replica (read_replicas) req/s · ÷ served by the primary | $(fmt "$(median "${RR_RPS[@]}")") · $(median "${R_RR[@]}") (${ROUTED} reads sent) |
EOF
cat "$OUT"
