#!/usr/bin/env bash
# make conformance-variants: the corpus cases that need another server configuration (jwt-aud,
# base64 and RS256 secrets, no anonymous role, no secret, aggregates, max_rows), each group run
# against a server configured that way (scripts/conformance.sh with CONFORMANCE_CONF and the
# runner's --assume). Prints one summary line per group; not part of `make test`.
set -uo pipefail
cd "$(dirname "$0")/.."
JWK='{"alg":"RS256","e":"AQAB","key_ops":["verify"],"kty":"RSA","n":"0etQ2Tg187jb04MWfpuogYGV75IFrQQBxQaGH75eq_FpbkyoLcEpRUEWSbECP2eeFya2yZ9vIO5ScD-lPmovePk4Aa4SzZ8jdjhmAbNykleRPCxMg0481kz6PQhnHRUv3nF5WP479CnObJKqTVdEagVL66oxnX9VhZG9IZA7k0Th5PfKQwrKGyUeTGczpOjaPqbxlunP73j9AfnAt4XCS8epa-n3WGz1j-wfpr_ys57Aq-zBCfqP67UYzNpeI1AoXsJhD9xSDOzvJgFRvc3vm2wjAW4LEMwi48rCplamOpZToIHEPIaPzpveYQwDnB1HFTR1ove9bpKJsHmi-e2uzQ","use":"sig"}'
status=0
# group CONF ASSUME... -- ONLY...
run() {
  local name=$1 conf=$2; shift 2
  local args=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do args+=(--assume "$1"); shift; done
  shift
  for id in "$@"; do args+=(--only "$id"); done
  CONFORMANCE_OUT="target/conformance-$name" CONFORMANCE_CONF="$conf" \
    scripts/conformance.sh "${args[@]}" > /dev/null 2>&1 || status=1
  printf '%-14s %s\n' "$name" "$(tail -1 "target/conformance-$name.txt")"
}
run jwt-aud "pg_rest.jwt_aud = 'youraudience'" jwt-aud=youraudience -- 1468 1469 1470 1471 1472 1473 1494
run base64 "pg_rest.jwt_secret = 'cmVhbGx5cmVhbGx5cmVhbGx5cmVhbGx5dmVyeXNhZmU='
pg_rest.jwt_secret_is_base64 = on" jwt-secret=cmVhbGx5cmVhbGx5cmVhbGx5cmVhbGx5dmVyeXNhZmU= jwt-secret-is-base64=true -- 1466
run rs256 "pg_rest.jwt_secret = '$JWK'" "jwt-secret=$JWK" -- 1467
run no-anon "pg_rest.anon_role = ''" db-anon-role= -- 1491 1492
run no-secret "pg_rest.jwt_secret = ''" jwt-secret= -- 1493
run aggregates "pg_rest.aggregates_enabled = on" db-aggregates-enabled=true -- 1129 1130 1131 1132 1133
run max-rows "pg_rest.max_rows = 2" db-max-rows=2 -- 1700 1701
exit $status
