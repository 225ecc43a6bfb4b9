"""GUCs of API.md: existence, reload context, defaults, check hooks, superuser-only secret."""

from __future__ import annotations

import os

import psycopg
import pytest
from psycopg import sql as pgsql

# name -> reload column of API.md's table
API_GUCS = {
    "listen_addresses": "restart",
    "port": "restart",
    "workers": "sighup",
    "database": "restart",
    "authenticator": "restart",
    "schemas": "sighup",
    "anon_role": "sighup",
    "jwt_secret": "sighup",
    "jwt_secret_is_base64": "sighup",
    "extra_search_path": "sighup",
    "jwt_aud": "sighup",
    "jwt_role_claim_key": "sighup",
    "pre_request": "sighup",
    "max_rows": "sighup",
    "statement_timeout": "sighup",
    "max_connections": "sighup",
    "max_body_size": "sighup",
    "max_header_size": "sighup",
    "idle_timeout": "sighup",
    "request_timeout": "sighup",
    "tls_cert_file": "sighup",
    "tls_key_file": "sighup",
    "cors_allowed_origins": "sighup",
    "realtime": "sighup",
    "realtime_slot": "restart",
    "channel_check": "sighup",
    "read_replicas": "sighup",
    "primary_conninfo": "sighup",
    "log_requests": "sighup",
}
CONTEXT = {"restart": "postmaster", "sighup": "sighup"}


@pytest.fixture(scope="module")
def settings(pg) -> dict[str, tuple[str, str, str]]:
    rows = pg.sql("SELECT name, setting, context, boot_val FROM pg_settings "
                  "WHERE name LIKE 'pg_rest.%'")
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


@pytest.mark.parametrize("name", sorted(API_GUCS))
def test_guc_exists_with_context(settings, name):
    full = f"pg_rest.{name}"
    assert full in settings, f"{full} is not defined (have: {sorted(settings)})"
    context = settings[full][1]
    assert context == CONTEXT[API_GUCS[name]], \
        f"{full}: context {context!r}, API.md says {API_GUCS[name]}"


def current(pg, name: str) -> str:
    return pg.sql("SELECT current_setting(%s)", f"pg_rest.{name}")[0][0]


@pytest.mark.parametrize("name,expected", [
    ("schemas", "public"),
    ("realtime", "on"),
    ("realtime_slot", "pg_rest"),
    ("max_connections", "10000"),
    ("log_requests", "off"),
    ("cors_allowed_origins", "*"),
    ("jwt_role_claim_key", ".role"),
    ("jwt_aud", ""),
    ("jwt_secret_is_base64", "off"),
    ("extra_search_path", "public"),
    ("pre_request", ""),
    ("tls_cert_file", ""),
    ("tls_key_file", ""),
    ("channel_check", ""),
    ("read_replicas", ""),
    ("aggregates_enabled", "off"),
    ("plan_enabled", "off"),
    ("server_timing", "off"),
    ("trace_header", ""),
])
def test_defaults_plain(pg, name, expected):
    """Built-in defaults (the test cluster sets some, e.g. schemas, in postgresql.conf)."""
    boot = pg.sql("SELECT boot_val FROM pg_settings WHERE name = %s", f"pg_rest.{name}")[0][0]
    assert (boot or "") == expected


def test_default_max_rows_unlimited(pg):
    # "unlimited": empty, or a sentinel a reader cannot mistake for a real cap.
    assert current(pg, "max_rows") in ("", "-1", "0"), current(pg, "max_rows")


@pytest.mark.parametrize("name,expected_bytes", [
    ("max_body_size", 10 * 1024 * 1024),
    ("max_header_size", 16 * 1024),
])
def test_default_sizes(pg, name, expected_bytes):
    got = pg.sql("SELECT pg_size_bytes(current_setting(%s))", f"pg_rest.{name}")[0][0]
    assert got == expected_bytes, f"pg_rest.{name} = {current(pg, name)!r}"


@pytest.mark.parametrize("name,expected", [
    ("idle_timeout", "60s"),
    ("request_timeout", "30s"),
    ("statement_timeout", "30s"),
])
def test_default_durations(pg, name, expected):
    ok = pg.sql("SELECT current_setting(%s)::interval = %s::interval",
                f"pg_rest.{name}", expected)[0][0]
    assert ok, f"pg_rest.{name} = {current(pg, name)!r}, expected {expected}"


@pytest.mark.parametrize("name,expected", [
    ("listen_addresses", "localhost"),
    ("port", "3000"),
    ("database", "postgres"),
    ("anon_role", ""),
    ("jwt_secret", ""),
])
def test_compiled_in_defaults(settings, name, expected):
    # The test cluster sets these in postgresql.conf; boot_val is the built-in default
    # (NULL for a string setting whose built-in default is empty).
    boot_val = settings[f"pg_rest.{name}"][2]
    assert (boot_val if boot_val is not None else "") == expected


def test_default_workers_are_two_per_cpu_within_the_worker_slots(pg, settings):
    # Two per CPU, leaving 4 of max_worker_processes to the supervisor, the realtime worker,
    # the logical replication launcher and parallel query (docs/benchmarks.md).
    slots = int(pg.sql("SHOW max_worker_processes")[0][0])
    expected = max(1, min(2 * usable_cpus(), max(1, slots - 4), 64))
    assert settings["pg_rest.workers"][2] == str(expected)


def usable_cpus() -> int:
    """What Rust's available_parallelism counts: the affinity, or a lower cgroup v2 quota."""
    cpus = len(os.sched_getaffinity(0))
    try:
        quota, period = open("/sys/fs/cgroup/cpu.max").read().split()
        if quota != "max":
            cpus = min(cpus, max(1, int(quota) // int(period)))
    except (OSError, ValueError):
        pass
    return cpus


def test_cluster_values_applied(pg):
    assert current(pg, "port") == "3101"
    assert current(pg, "workers") == "2"
    assert current(pg, "database") == "pg_rest_test"
    assert current(pg, "anon_role") == "web_anon"


@pytest.mark.parametrize("name,value,must_mention", [
    ("schemas", "", "pg_rest.schemas"),
    ("jwt_role_claim_key", "role", "pg_rest.jwt_role_claim_key"),
    ("listen_addresses", "not an address!", "pg_rest.listen_addresses"),
    ("port", "70000", "pg_rest.port"),
    ("workers", "0", "pg_rest.workers"),
    ("primary_conninfo", "host=db sslmode=require", "without TLS"),
    ("primary_conninfo", "hots=db", "invalid connection option \"hots\""),
    ("primary_conninfo", "port=5432", "no host"),
])
def test_check_hooks_refuse_bad_values(pg, name, value, must_mention):
    try:
        with pytest.raises(psycopg.Error) as info:
            pg.sql(pgsql.SQL("ALTER SYSTEM SET {} = {}").format(
                pgsql.SQL(f"pg_rest.{name}"), pgsql.Literal(value)))
        err = info.value
        text = str(err)
        diag = err.diag
        full = " ".join(filter(None, [text, diag.message_primary, diag.message_detail,
                                      diag.message_hint]))
        assert must_mention in full, f"error does not name the setting: {full!r}"
    finally:
        pg.sql(f"ALTER SYSTEM RESET pg_rest.{name}")
    # Nothing was written to postgresql.auto.conf.
    auto = (pg.data_dir / "postgresql.auto.conf").read_text()
    assert f"pg_rest.{name}" not in auto, auto


def test_jwt_secret_superuser_only(pg):
    pg.sql("ALTER SYSTEM SET pg_rest.jwt_secret = 'a-very-secret-secret-of-32-chars!'")
    try:
        pg.reload()
        with pg.connect() as conn:
            assert conn.execute("SHOW pg_rest.jwt_secret").fetchone()[0] == \
                "a-very-secret-secret-of-32-chars!"
            conn.execute("SET ROLE web_anon")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("SHOW pg_rest.jwt_secret")
            conn.execute("RESET ROLE")
            # Not in pg_settings for an unprivileged role either.
            conn.execute("SET ROLE web_anon")
            rows = conn.execute("SELECT setting FROM pg_settings "
                                "WHERE name = 'pg_rest.jwt_secret'").fetchall()
            assert all(r[0] != "a-very-secret-secret-of-32-chars!" for r in rows), rows
            conn.execute("RESET ROLE")
    finally:
        pg.reset_settings("jwt_secret")
