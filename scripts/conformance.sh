#!/usr/bin/env bash
# make conformance: PostgREST's conformance corpus (HTTP cases recorded against PostgREST v16,
# ../shared/conformance) against pg_rest, on a throwaway cluster configured as the corpus's
# README says. Prints one line per case and the per-category table; writes
# target/conformance.txt and target/conformance.json. Not part of `make test`.
#   CONFORMANCE_OUT   output prefix (default target/conformance: .txt and .json)
#   CONFORMANCE_CONF  extra postgresql.conf lines, for the cases that need another server
#                     configuration (pass the runner --assume KEY=VALUE for them), e.g.
#     CONFORMANCE_CONF="pg_rest.jwt_aud = 'youraudience'" \
#       make conformance ARGS="--only auth --assume jwt-aud=youraudience"
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
CORPUS=${CONFORMANCE_DIR:-$ROOT/../shared/conformance}
BIN=/usr/lib/postgresql/15/bin
DIR=$ROOT/target/conformance-pg
DATA=$DIR/data
PGPORT=54340
HTTP_PORT=3120
VENV=$ROOT/target/conformance-venv
OUT=${CONFORMANCE_OUT:-$ROOT/target/conformance}
as_pg() { runuser -u postgres -- "$@"; }

[ -f "$CORPUS/run.py" ] || { echo "conformance: no corpus at $CORPUS (set CONFORMANCE_DIR)" >&2; exit 1; }
# PostGIS for the three GeoJSON cases (a Debian package; without it the runner loads a stub
# and those cases fail).
POSTGIS=--no-postgis
if [ -f /usr/share/postgresql/15/extension/postgis.control ] ||
   DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql-15-postgis-3 >/dev/null 2>&1; then
  POSTGIS=
fi
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q -r "$CORPUS/requirements.txt"
fi

stop() { [ -f "$DATA/postmaster.pid" ] && as_pg "$BIN/pg_ctl" -D "$DATA" -w -m fast stop >/dev/null || true; }
stop
rm -rf "$DIR"
mkdir -p "$DIR" && chown postgres:postgres "$DIR"
d="$ROOT/target"; while [ "$d" != "/" ]; do chmod o+x "$d" 2>/dev/null || true; d=$(dirname "$d"); done
as_pg "$BIN/initdb" -D "$DATA" -U postgres --auth=trust -E UTF8 --locale=C >/dev/null
cat >> "$DATA/postgresql.conf" <<CONF
port = $PGPORT
listen_addresses = ''
unix_socket_directories = '$DATA'
fsync = off
shared_preload_libraries = 'pg_rest'
pg_rest.port = $HTTP_PORT
pg_rest.listen_addresses = '127.0.0.1'
pg_rest.database = 'pgc_test'
pg_rest.authenticator = 'postgres'
pg_rest.schemas = 'test,operators,ordering,pagination,representations,mutations,rpc,headers,config,domain_representations,observability,auth,v1,v2,SPECIAL "@/\\\\#~_-,تست'
pg_rest.anon_role = 'postgrest_test_anonymous'
pg_rest.jwt_secret = 'reallyreallyreallyreallyverysafe'
pg_rest.pre_request = 'auth.switch_role'
pg_rest.extra_search_path = 'public'
pg_rest.plan_enabled = on
pg_rest.cors_allowed_origins = 'http://example.com, http://example2.com'
pg_rest.server_timing = on
pg_rest.trace_header = 'X-Request-Id'
${CONFORMANCE_CONF:-}
CONF
trap stop EXIT
as_pg "$BIN/pg_ctl" -D "$DATA" -l "$DIR/server.log" -w start >/dev/null
as_pg "$BIN/createdb" -h "$DATA" -p "$PGPORT" -U postgres pgc_test
DSN="host=$DATA port=$PGPORT dbname=pgc_test user=postgres"
"$VENV/bin/python" "$ROOT/scripts/conformance_run.py" "$CORPUS/run.py" --load-only $POSTGIS --dsn "$DSN" >/dev/null
for _ in $(seq 1 60); do
  curl -s -o /dev/null "http://127.0.0.1:$HTTP_PORT/" && break
  sleep 0.5
done
set +e
"$VENV/bin/python" "$ROOT/scripts/conformance_run.py" "$CORPUS/run.py" --no-load $POSTGIS --url "http://127.0.0.1:$HTTP_PORT" \
  --dsn "$DSN" --report "$OUT.json" "$@" | tee "$OUT.txt"
status=${PIPESTATUS[0]}
set -e
echo "(full output: $OUT.txt; server log: $DIR/server.log)"
exit "$status"
