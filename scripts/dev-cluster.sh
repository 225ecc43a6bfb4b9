#!/usr/bin/env bash
# The local dev cluster of `make up` / `make down`: PostgreSQL 15 under target/dev-pg, run as
# the postgres OS user (PostgreSQL refuses root), with pg_rest preloaded and a demo schema.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BIN=/usr/lib/postgresql/15/bin
DIR=$ROOT/target/dev-pg
DATA=$DIR/data
LOG=$DIR/server.log
PGPORT=${PGPORT:-54328}
HTTP_PORT=${PGREST_PORT:-3000}
DB=pg_rest
as_pg() { runuser -u postgres -- "$@"; }

running() { [ -f "$DATA/postmaster.pid" ] && as_pg "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; }

up() {
  # The postgres user must be able to reach the data directory: every ancestor needs o+x
  # (a clone under /root, mode 700 on Debian, would otherwise fail at initdb).
  mkdir -p "$ROOT/target"
  d="$ROOT/target"
  while [ "$d" != "/" ]; do chmod o+x "$d" 2>/dev/null || true; d=$(dirname "$d"); done
  if [ ! -f "$DATA/PG_VERSION" ]; then
    mkdir -p "$DIR" && chown postgres:postgres "$DIR"
    as_pg "$BIN/initdb" -D "$DATA" -U postgres --auth=trust -E UTF8 >/dev/null
    cat >> "$DATA/postgresql.conf" <<CONF
# --- pg_rest dev cluster ---
port = $PGPORT
# TCP on loopback only: make bench compares pgbench over it with pgbench over the socket.
listen_addresses = '127.0.0.1'
unix_socket_directories = '$DATA'
shared_preload_libraries = 'pg_rest'
pg_rest.port = $HTTP_PORT
pg_rest.database = '$DB'
pg_rest.anon_role = 'web_anon'
wal_level = logical
CONF
  fi
  if running; then
    # A running server keeps the old library: restart so new code serves.
    as_pg "$BIN/pg_ctl" -D "$DATA" -l "$LOG" -w restart -m fast >/dev/null
  else
    as_pg "$BIN/pg_ctl" -D "$DATA" -l "$LOG" -w start >/dev/null
  fi
  psql_() { as_pg "$BIN/psql" -h "$DATA" -p "$PGPORT" -U postgres -v ON_ERROR_STOP=1 -qX "$@"; }
  # Realtime needs logical decoding (a cluster made before it had replica): set once, restart.
  if [ "$(psql_ -d postgres -tAc 'SHOW wal_level')" != "logical" ]; then
    psql_ -d postgres -c "ALTER SYSTEM SET wal_level = logical"
    as_pg "$BIN/pg_ctl" -D "$DATA" -l "$LOG" -w restart -m fast >/dev/null
  fi
  psql_ -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB'" | grep -q 1 ||
    psql_ -d postgres -c "CREATE DATABASE $DB"
  # pg_rest 0.x has no upgrade scripts: an extension created by an older build (one without
  # the newest view column) is created afresh by demo.sql.
  if [ "$(psql_ -d "$DB" -tAc "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_rest')
          AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute WHERE attname = 'replica_reads'
                          AND attrelid = to_regclass('pg_rest.stat_forwarding'))")" = t ]; then
    psql_ -d "$DB" -c "DROP EXTENSION pg_rest"
  fi
  psql_ -d "$DB" -f "$ROOT/sql/demo.sql" >/dev/null
  for _ in $(seq 1 60); do
    curl -fs "http://localhost:$HTTP_PORT/books" >/dev/null && break
    sleep 0.5
  done
  echo "pg_rest is serving http://localhost:$HTTP_PORT/  (database $DB; PostgreSQL on socket $DATA port $PGPORT)"
  echo "try:  curl 'http://localhost:$HTTP_PORT/books?id=eq.1'"
  curl -s "http://localhost:$HTTP_PORT/books?id=eq.1" && echo
  echo "psql: runuser -u postgres -- psql -h $DATA -p $PGPORT $DB    server log: $LOG"
}

down() {
  if running; then as_pg "$BIN/pg_ctl" -D "$DATA" -w stop -m fast >/dev/null && echo "dev cluster stopped"; fi
}

"${1:-up}"
