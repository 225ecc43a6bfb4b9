#!/usr/bin/env bash
# pg_rest benchmark (make bench). Not a test: it measures a running dev cluster.
#
#   PGHOST       unix socket dir of the dev cluster   (default: $REPO/target/dev-pg/data)
#   PGPORT       its port                             (default: 54328)
#   PGDATABASE   database pg_rest serves              (default: pg_rest)
#   PGREST_PORT  pg_rest's HTTP port                  (default: 3000)
#   DURATION     seconds per load run                 (default: 10)
#
# One run: (1) wrk, 50 connections, a single-row read; (2) pgbench running the very SQL
# pg_rest generates for that read (prepared, 50 clients): the in-database ceiling;
# (1b) the same read with an HS256 and an RS256 token (JWT cache warm), and with 5,000
# distinct RS256 tokens (each verified); (3) wrk pipelining 16 requests per write; (4) RSS
# of every pg_rest http worker.
# Prints a markdown table and writes it to target/bench-results.md.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PGHOST="${PGHOST:-$REPO/target/dev-pg/data}"
export PGPORT="${PGPORT:-54328}"
export PGDATABASE="${PGDATABASE:-pg_rest}"
export PGUSER="${PGUSER:-postgres}"
export PGCONNECT_TIMEOUT="${PGCONNECT_TIMEOUT:-5}"
PGREST_PORT="${PGREST_PORT:-3000}"
DURATION="${DURATION:-10}"
CONNECTIONS="${CONNECTIONS:-50}"
THREADS="${THREADS:-2}"
PIPELINE_DEPTH="${PIPELINE_DEPTH:-16}"
PGBIN="${PGBIN:-/usr/lib/postgresql/15/bin}"
BASE="http://127.0.0.1:${PGREST_PORT}"
URL="${BASE}/bench_items?id=eq.1"
OUT="$REPO/target/bench-results.md"
RUN_TIMEOUT=$((DURATION + 30))

log() { printf '== %s\n' "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

for tool in wrk curl "$PGBIN/psql" "$PGBIN/pgbench"; do
  command -v "$tool" >/dev/null 2>&1 || die "missing tool: $tool"
done

psql_q() { timeout 60 "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# --- setup (idempotent) ------------------------------------------------------------------
log "setup: bench_items (10,000 rows) in $PGDATABASE via $PGHOST:$PGPORT"
psql_q -c "SELECT 1" >/dev/null || die "cannot connect to PostgreSQL at $PGHOST port $PGPORT"
psql_q <<'SQL'
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'web_anon') THEN
    CREATE ROLE web_anon NOLOGIN;
  END IF;
END
$$;
CREATE TABLE IF NOT EXISTS public.bench_items (
  id    int PRIMARY KEY,
  name  text,
  price numeric
);
INSERT INTO public.bench_items (id, name, price)
  SELECT g, 'item ' || g, round((g % 1000)::numeric / 10 + 0.99, 2)
  FROM pg_catalog.generate_series(1, 10000) AS g
  ON CONFLICT (id) DO NOTHING;
GRANT USAGE ON SCHEMA public TO web_anon;
GRANT SELECT ON public.bench_items TO web_anon;
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'bench_user') THEN
    CREATE ROLE bench_user NOLOGIN;
  END IF;
END
$$;
GRANT USAGE ON SCHEMA public TO bench_user;
GRANT SELECT ON public.bench_items TO bench_user;
ANALYZE public.bench_items;
SQL
# The demo library (sql/demo.sql), grown for the embedding and page reads: 1,000 authors,
# 10,000 books with three tags each, 50 tags.
psql_q <<'SQL'
INSERT INTO public.authors SELECT g, 'author ' || g FROM pg_catalog.generate_series(4, 1000) AS g
  ON CONFLICT (id) DO NOTHING;
INSERT INTO public.tags SELECT g, 'tag ' || g FROM pg_catalog.generate_series(4, 50) AS g
  ON CONFLICT (id) DO NOTHING;
INSERT INTO public.books (id, title, author, year, author_id)
  SELECT g, 'book ' || pg_catalog.md5(g::text), NULL, 1950 + g % 75, 1 + g % 1000
  FROM pg_catalog.generate_series(4, 10000) AS g ON CONFLICT (id) DO NOTHING;
INSERT INTO public.book_tags SELECT b, 1 + (b * k) % 50 FROM pg_catalog.generate_series(4, 10000) AS b,
  pg_catalog.generate_series(1, 3) AS k ON CONFLICT DO NOTHING;
ANALYZE public.authors, public.books, public.tags, public.book_tags;
SQL

# Keys and tokens for the authenticated reads: a JWKS (HS256 secret + RSA key) in a file the
# server reads (`@path` keeps it out of the server log).
VENV_PY="$REPO/target/venv/bin/python"
[ -x "$VENV_PY" ] || die "missing $VENV_PY (make bench installs it)"
"$VENV_PY" "$REPO/benches/tokens.py" "$WORK"
JWKS_FILE="$PGHOST/pg_rest_bench_jwks.json"
cp "$WORK/jwks.json" "$JWKS_FILE" && chown postgres:postgres "$JWKS_FILE" && chmod 600 "$JWKS_FILE"
psql_q -c "ALTER SYSTEM SET pg_rest.jwt_secret = '@$JWKS_FILE'" -c "SELECT pg_reload_conf()" >/dev/null
HS_TOKEN="$(cat "$WORK/hs256.token")"
RS_TOKEN="$(cat "$WORK/rs256.token")"

log "waiting for GET $URL to answer 200"
ready=0
for _ in $(seq 1 60); do
  code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$URL" || true)"
  if [ "$code" = "200" ]; then ready=1; break; fi
  sleep 1
done
[ "$ready" = 1 ] || die "pg_rest at $BASE did not answer 200 for /bench_items?id=eq.1 within 60 s (last: ${code:-none})"

# --- (1) wrk ------------------------------------------------------------------------------
log "wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s $URL"
# Halfway through, how the connections are spread over the workers (one shared socket).
( sleep $((DURATION / 2)); psql_q -At -c "SELECT string_agg(connections::text, ' + ' ORDER BY worker) FROM pg_rest.stat_workers" \
    > "$WORK/spread.txt" 2>/dev/null || true ) &
timeout "$RUN_TIMEOUT" wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency "$URL" \
  > "$WORK/wrk.txt" 2>&1 || die "wrk failed: $(cat "$WORK/wrk.txt")"
wait
SPREAD="$(cat "$WORK/spread.txt" 2>/dev/null || true)"
cat "$WORK/wrk.txt" >&2
WRK_RPS="$(awk '/^Requests\/sec:/ {print $2}' "$WORK/wrk.txt")"
WRK_NON2XX="$(awk -F: '/Non-2xx or 3xx responses/ {gsub(/ /, "", $2); print $2}' "$WORK/wrk.txt")"
WRK_P99="$(awk '$1 == "99%" {print $2}' "$WORK/wrk.txt")"

# --- (1b) the same read with a token ---------------------------------------------------------
wrk_rps() {  # wrk_rps NAME [wrk options...] [-- script args...]: prints Requests/sec on $URL
  local name=$1; shift
  local opts=() script_args=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do opts+=("$1"); shift; done
  script_args=("$@")
  log "wrk $name"
  timeout "$RUN_TIMEOUT" wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" ${opts[@]+"${opts[@]}"} "$URL" ${script_args[@]+"${script_args[@]}"} \
    > "$WORK/wrk-$name.txt" 2>&1 || die "wrk ($name) failed: $(cat "$WORK/wrk-$name.txt")"
  grep -q "Non-2xx" "$WORK/wrk-$name.txt" && die "wrk ($name): non-2xx responses: $(cat "$WORK/wrk-$name.txt")"
  awk '/^Requests\/sec:/ {print $2}' "$WORK/wrk-$name.txt"
}
curl -fs -o /dev/null -H "Authorization: Bearer $HS_TOKEN" "$URL" \
  || die "the HS256 token is refused: $(curl -s -H "Authorization: Bearer $HS_TOKEN" "$URL")"
HS_RPS="$(wrk_rps hs256 -H "Authorization: Bearer $HS_TOKEN")"
RS_RPS="$(wrk_rps rs256 -H "Authorization: Bearer $RS_TOKEN")"
RS_COLD_RPS="$(wrk_rps rs256-uncached -s "$REPO/benches/tokens.lua" -- "$WORK/rs256.tokens")"

# --- (2) pgbench, same SQL -----------------------------------------------------------------
# pg_rest_sql PATH VALUES...: the statement pg_rest runs for PATH, as a pgbench script. The
# text is what the workers report to pg_stat_activity (so it is never out of date); VALUES are
# its parameters $1, $2, … in order, as pg_rest binds them.
pg_rest_sql() {
  local path=$1; shift
  for _ in $(seq 1 20); do curl -fs -o /dev/null "$BASE$path" || die "GET $path failed"; done
  local sql
  sql="$(psql_q -At -c "SELECT query FROM pg_catalog.pg_stat_activity WHERE backend_type = 'pg_rest http' AND query LIKE 'SELECT pg_catalog.count(_pgrst_t)%' ORDER BY query_start DESC LIMIT 1")"
  [ -n "$sql" ] || die "no pg_rest statement in pg_stat_activity for $path"
  local i=0
  for v in "$@"; do i=$((i + 1)); printf '\\set p%d %s\n' "$i" "$v"; done
  printf '%s;\n' "$(printf '%s' "$sql" | sed -E 's/\$([0-9]+)/:p\1/g')"
}
pgbench_tps() {  # pgbench_tps NAME SCRIPT: prints tps of SCRIPT with -M prepared
  log "pgbench $1 -n -M prepared -c$CONNECTIONS -j$THREADS -T$DURATION (pg_rest's SQL)"
  timeout "$RUN_TIMEOUT" "$PGBIN/pgbench" -n -M prepared -c"$CONNECTIONS" -j"$THREADS" \
    -T"$DURATION" -f "$2" > "$WORK/pgbench-$1.txt" 2>&1 \
    || die "pgbench ($1) failed: $(cat "$WORK/pgbench-$1.txt")"
  awk '/^tps = / {print $3; exit}' "$WORK/pgbench-$1.txt"
}
pg_rest_sql "/bench_items?id=eq.1" 1 > "$WORK/pgrst.sql"
cat "$WORK/pgrst.sql" >&2
PGBENCH_TPS="$(pgbench_tps single "$WORK/pgrst.sql")"

# --- (2b) an embedding read and a filtered, ordered page, each beside pgbench -----------------
EMBED_PATH="/books?select=title,authors(name),tags(name)&limit=20"
PAGE_PATH="/books?select=id,title&year=gte.2000&order=title&limit=20"
pg_rest_sql "$EMBED_PATH" 20 > "$WORK/embed.sql"
pg_rest_sql "$PAGE_PATH" 2000 20 > "$WORK/page.sql"
EMBED_RPS="$(URL="$BASE$EMBED_PATH" wrk_rps embed)"
EMBED_TPS="$(pgbench_tps embed "$WORK/embed.sql")"
PAGE_RPS="$(URL="$BASE$PAGE_PATH" wrk_rps page)"
PAGE_TPS="$(pgbench_tps page "$WORK/page.sql")"

# --- (3) wrk, pipelined ----------------------------------------------------------------------
log "wrk pipelined x$PIPELINE_DEPTH -t$THREADS -c$CONNECTIONS -d${DURATION}s"
timeout "$RUN_TIMEOUT" wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" \
  -s "$REPO/benches/pipeline.lua" "$URL" -- "$PIPELINE_DEPTH" \
  > "$WORK/wrk-pipe.txt" 2>&1 || die "wrk (pipelined) failed: $(cat "$WORK/wrk-pipe.txt")"
cat "$WORK/wrk-pipe.txt" >&2
PIPE_RPS="$(awk '/^Requests\/sec:/ {print $2}' "$WORK/wrk-pipe.txt")"
PIPE_NON2XX="$(awk -F: '/Non-2xx or 3xx responses/ {gsub(/ /, "", $2); print $2}' "$WORK/wrk-pipe.txt")"

# --- (4) RSS per http worker -----------------------------------------------------------------
PIDS="$(psql_q -At -c "SELECT pid FROM pg_catalog.pg_stat_activity WHERE backend_type = 'pg_rest http' ORDER BY pid")"
RSS_LIST=""
for pid in $PIDS; do
  rss="$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)"
  RSS_LIST="${RSS_LIST:+$RSS_LIST, }pid $pid: ${rss:-?} kB"
done

# --- report ----------------------------------------------------------------------------------
ratio() { awk -v a="${1:-0}" -v b="${2:-0}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
RATIO="$(ratio "$WRK_RPS" "$PGBENCH_TPS")"
fmt() { awk -v v="${1:-0}" 'BEGIN { if (v == "") print "n/a"; else printf "%.0f", v }'; }

REPORT="$(cat <<MD
# pg_rest benchmark

$(date -u '+%Y-%m-%d %H:%M:%S UTC') · $(nproc) CPUs · ${DURATION}s per run · ${CONNECTIONS} connections, ${THREADS} threads · commit $(git -C "$REPO" rev-parse -q --verify --short HEAD 2>/dev/null || echo none)

| measure | value |
|---|---|
| pg_rest req/s (wrk, GET /bench_items?id=eq.1) | $(fmt "$WRK_RPS") |
| pg_rest p99 latency | ${WRK_P99:-n/a} |
| pgbench tps (same SQL, -M prepared) | $(fmt "$PGBENCH_TPS") |
| ratio pg_rest / pgbench | ${RATIO} |
| connections per worker during the run | ${SPREAD:-n/a} |
| with an HS256 token (cache warm) req/s | $(fmt "$HS_RPS") ($(ratio "$HS_RPS" "$WRK_RPS")× anonymous, $(ratio "$HS_RPS" "$PGBENCH_TPS")× pgbench) |
| with an RS256 token (cache warm) req/s | $(fmt "$RS_RPS") ($(ratio "$RS_RPS" "$WRK_RPS")× anonymous) |
| with 5,000 distinct RS256 tokens (every one verified) req/s | $(fmt "$RS_COLD_RPS") ($(ratio "$RS_COLD_RPS" "$WRK_RPS")× anonymous) |
| embedding read req/s (wrk, GET ${EMBED_PATH}) | $(fmt "$EMBED_RPS") |
| pgbench tps (same SQL) · ratio | $(fmt "$EMBED_TPS") · $(ratio "$EMBED_RPS" "$EMBED_TPS") |
| filtered, ordered page req/s (wrk, GET ${PAGE_PATH}) | $(fmt "$PAGE_RPS") |
| pgbench tps (same SQL) · ratio | $(fmt "$PAGE_TPS") · $(ratio "$PAGE_RPS" "$PAGE_TPS") |
| pg_rest pipelined req/s (${PIPELINE_DEPTH} per write) | $(fmt "$PIPE_RPS") |
| RSS per http worker (after load) | ${RSS_LIST:-none found} |
MD
)"
if [ -n "${WRK_NON2XX}${PIPE_NON2XX}" ]; then
  REPORT="${REPORT}

**Warning:** non-2xx responses during the run (plain: ${WRK_NON2XX:-0}, pipelined: ${PIPE_NON2XX:-0}); the req/s above count them."
fi

mkdir -p "$REPO/target"
printf '%s\n' "$REPORT" > "$OUT"
printf '\n%s\n\n(written to %s)\n' "$REPORT" "$OUT"
