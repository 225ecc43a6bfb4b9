#!/usr/bin/env bash
# pg_rest realtime benchmark (make bench, after benches/protocols.sh): commit-to-delivery
# latency p50/p99 for 1, 100 and 1,000 WebSocket subscribers at 1,000 changes/s with row
# level security on, and sustained events/s (benches/realtime.py says how). Writes
# target/bench-realtime.md.
set -euo pipefail

# shellcheck source=benches/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
require_tools "$PGBIN/psql"
log "realtime: subscribers ${SUBSCRIBERS:-1,100,1000}, ${RATE:-1000} changes/s, ${DURATION}s each"
PGREST_PORT="$PGREST_PORT" DURATION="$DURATION" timeout 900 "$VENV_PY" "$REPO/benches/realtime.py"
