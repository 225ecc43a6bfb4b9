#!/usr/bin/env bash
# Installs what building and testing pg_rest needs, skipping what is already there:
# Debian packages, the pinned cargo-pgrx, and `cargo pgrx init` against the system pg_config
# (never a download of PostgreSQL sources).
set -euo pipefail
PGRX_VERSION=$1
PG_CONFIG=$2

packages=(postgresql-15 postgresql-server-dev-15 clang libclang-dev pkg-config sudo
          wrk nghttp2-client curl openssl python3-venv)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  # No "main" cluster on 5432: pg_rest's clusters live under target/.
  mkdir -p /etc/postgresql-common
  grep -qs '^create_main_cluster = false' /etc/postgresql-common/createcluster.conf ||
    echo 'create_main_cluster = false' >> /etc/postgresql-common/createcluster.conf
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
fi

# `make test` runs rustfmt and clippy; a minimal rustup profile lacks them.
for component in rustfmt clippy; do
  if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
    rustup component add "$component"
  fi
done

if ! cargo pgrx --version 2>/dev/null | grep -q "$PGRX_VERSION"; then
  echo "installing cargo-pgrx $PGRX_VERSION (a few minutes, once per machine)"
  cargo install cargo-pgrx --version "$PGRX_VERSION" --locked
fi

if ! grep -qs "pg15 = \"$PG_CONFIG\"" "${PGRX_HOME:-$HOME/.pgrx}/config.toml"; then
  cargo pgrx init --pg15="$PG_CONFIG"
fi
