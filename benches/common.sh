# What benches/run.sh and benches/protocols.sh share: the dev cluster's coordinates (each
# overridable from the environment), logging, and the report's number formatting.
# Sourced, not run.

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PGHOST="${PGHOST:-$REPO/target/dev-pg/data}"
export PGPORT="${PGPORT:-54328}"
export PGDATABASE="${PGDATABASE:-pg_rest}"
export PGUSER="${PGUSER:-postgres}"
export PGCONNECT_TIMEOUT="${PGCONNECT_TIMEOUT:-5}"
PGREST_PORT="${PGREST_PORT:-3000}"
DURATION="${DURATION:-10}"
# Each pg_rest / pgbench comparison runs this many rounds, the two alternating (see paired in
# benches/run.sh): one shared machine drifts by tens of percent within a minute.
ROUNDS="${ROUNDS:-3}"
PGBIN="${PGBIN:-/usr/lib/postgresql/15/bin}"
VENV_PY="$REPO/target/venv/bin/python"

log() { printf '== %s\n' "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }
psql_q() { timeout 60 "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }
# require_tools TOOL...: dies naming the first one missing.
require_tools() {
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || die "missing tool: $tool"
  done
}
# ratio A B: A / B to two decimals, n/a without a B.
ratio() { awk -v a="${1:-0}" -v b="${2:-0}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
# fmt V: V rounded, n/a when empty.
fmt() { awk -v v="${1:-}" 'BEGIN { if (v == "") print "n/a"; else printf "%.0f", v }'; }
# median V...: the middle value (the mean of the two middle ones for an even count).
median() {
  printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
    if (NR == 0) print ""; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
