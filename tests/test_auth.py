"""Authentication and the request context: JWT verification (PostgREST v16's rules and
messages), the anonymous role, RLS and GRANTs deciding what each caller sees, every request.*
setting, per-role settings, pg_rest.pre_request, and a secret rotated on SIGHUP."""

from __future__ import annotations

import json
import time

import pytest
from postgrest import SyncPostgrestClient

from conftest import JWT_SECRET, assert_pgrst_error, bearer, build_request, token, wait_until

ALICE = {"role": "web_user", "sub": "alice"}


def ids(resp) -> list[int]:
    return sorted(row["id"] for row in resp.json())


def test_anonymous_read_sees_what_rls_allows_the_anonymous_role(http):
    r = http.get("/todos")
    assert r.status_code == 200, r.text
    assert ids(r) == [4]


def test_a_user_sees_the_rows_rls_gives_its_sub(http):
    r = http.get("/todos", headers=bearer(ALICE))
    assert r.status_code == 200, r.text
    assert ids(r) == [1, 2]
    r = http.get("/todos", headers=bearer({"role": "web_user", "sub": "bob"}))
    assert ids(r) == [3]
    r = http.get("/todos?id=eq.3", headers=bearer(ALICE))
    assert r.json() == []


def test_permission_denied_is_401_anonymous_and_403_authenticated(http):
    r = http.get("/members_only")
    assert_pgrst_error(r.status_code, r.content, 401, "42501")
    assert r.headers["www-authenticate"] == "Bearer"
    r = http.get("/secret", headers=bearer(ALICE))
    assert_pgrst_error(r.status_code, r.content, 403, "42501")
    assert "www-authenticate" not in r.headers
    r = http.get("/members_only", headers=bearer(ALICE))
    assert r.status_code == 200 and r.json() == [{"id": 1}]


def test_every_request_setting_is_visible_in_sql(http):
    r = http.get("/request_info", headers={**bearer(ALICE), "X-Trace": "t1",
                                          "Cookie": "a=1; b=two"})
    assert r.status_code == 200, r.text
    (info,) = r.json()
    assert info["role"] == "web_user"
    assert json.loads(info["claims"]) == ALICE
    headers = json.loads(info["headers"])
    assert headers["x-trace"] == "t1"
    assert headers["authorization"].startswith("Bearer ")
    assert "cookie" not in headers
    assert json.loads(info["cookies"]) == {"a": "1", "b": "two"}
    assert (info["method"], info["path"]) == ("GET", "/request_info")
    assert info["search_path"] == '"public"'
    assert info["isolation"] == "read committed"


def test_search_path_is_the_request_schemas(http):
    # PostgREST: the profile's schema first, then pg_rest.extra_search_path ('public').
    for profile in ({"Accept-Profile": "library"}, {"Content-Profile": "library"}):
        method = "GET" if "Accept-Profile" in profile else "POST"
        r = http.request(method, "/rpc/path_and_books", headers=profile,
                         **({} if method == "GET" else {"json": {}}))
        assert r.status_code == 200, r.text
        assert r.json() == [{"search_path": '"library", "public"', "books": 8}]


def test_settings_a_request_leaves_in_the_session_do_not_reach_the_next(pg):
    # pg_rest keeps request settings for the worker's session and sets only those that
    # differ; a function that sets some for the session (here even the role) must not change
    # what the next request on that worker runs with. One connection: one worker.
    with pg.client() as c:
        assert c.post("/rpc/leave_session_settings", json={}).status_code == 204
        for _ in range(2):
            (info,) = c.get("/request_info").json()
            assert info["role"] == "web_anon", info
            assert json.loads(info["claims"]) == {"role": "web_anon"}
            assert info["method"] == "GET"
        (info,) = c.get("/request_info", headers=bearer(ALICE)).json()
        assert (info["role"], json.loads(info["claims"])) == ("web_user", ALICE)
        (info,) = c.get("/request_info").json()
        assert info["role"] == "web_anon", info


def test_a_role_the_authenticator_lost_is_refused_at_once(pg):
    # The role is kept for the session between requests; PostgreSQL checks membership only
    # when it is set, so a revoked grant (or a dropped role) must make the next request set it
    # again — and fail, as PostgREST's SET LOCAL ROLE would (42501, 403 with a token).
    pg.psql("CREATE ROLE temp_reader NOLOGIN; GRANT temp_reader TO authenticator;"
            "GRANT USAGE ON SCHEMA public TO temp_reader;"
            "GRANT SELECT ON public.request_info TO temp_reader;")
    reader = bearer({"role": "temp_reader"})
    try:
        with pg.client() as c:
            for _ in range(2):
                r = c.get("/request_info", headers=reader)
                assert r.status_code == 200 and r.json()[0]["role"] == "temp_reader", r.text
            pg.psql("REVOKE temp_reader FROM authenticator;")
            for _ in range(2):  # and stays refused
                r = c.get("/request_info", headers=reader)
                assert_pgrst_error(r.status_code, r.content, 403, "42501")
                assert 'permission denied to set role "temp_reader"' in r.json()["message"]
            (info,) = c.get("/request_info").json()
            assert info["role"] == "web_anon"
    finally:
        pg.psql("DROP OWNED BY temp_reader; DROP ROLE temp_reader;")


def test_anonymous_claims_carry_the_anonymous_role(http):
    (info,) = http.get("/request_info").json()
    assert info["role"] == "web_anon"
    assert json.loads(info["claims"]) == {"role": "web_anon"}


@pytest.mark.parametrize("auth,code,message", [
    ("Bearer", "PGRST301", "Empty JWT is sent in Authorization header"),
    ("Bearer a.b", "PGRST301", "Expected 3 parts in JWT; got 2"),
    ("Bearer " + token(ALICE, secret="some-other-secret-that-is-long-enough"), "PGRST301",
     "No suitable key or wrong key type"),
    ("Bearer " + token({**ALICE, "exp": int(time.time()) - 3600}), "PGRST303", "JWT expired"),
    ("Bearer " + token({**ALICE, "nbf": int(time.time()) + 3600}), "PGRST303",
     "JWT not yet valid"),
    ("Bearer " + token({**ALICE, "exp": "never"}), "PGRST303",
     "The JWT 'exp' claim must be a number"),
    ("Bearer eyJhbGciOiJub25lIn0.eyJyb2xlIjoid2ViX3VzZXIifQ.", "PGRST301",
     "Wrong or unsupported encoding algorithm"),
])
def test_bad_tokens_are_401_with_a_bearer_challenge(http, auth, code, message):
    r = http.get("/books", headers={"Authorization": auth})
    err = assert_pgrst_error(r.status_code, r.content, 401, code)
    assert err["message"] == message, err
    assert r.headers["www-authenticate"] == (
        f'Bearer error="invalid_token", error_description="{message}"')


def test_a_token_is_checked_before_the_path(http):
    r = http.get("/no_such_table", headers={"Authorization": "Bearer a.b"})
    assert_pgrst_error(r.status_code, r.content, 401, "PGRST301")


def test_a_role_that_does_not_exist_is_401(http):
    r = http.get("/books", headers=bearer({"role": "nobody_here"}))
    err = assert_pgrst_error(r.status_code, r.content, 401, "22023")
    assert err["message"] == 'role "nobody_here" does not exist'
    assert r.headers["www-authenticate"] == "Bearer"


def test_a_token_without_a_role_is_the_anonymous_role(http):
    r = http.get("/request_info", headers=bearer({"sub": "x"}))
    assert r.status_code == 200, r.text
    assert r.json()[0]["role"] == "web_anon"


def test_audience(pg):
    with pg.reload_with(jwt_aud="api"):
        with pg.client() as c:
            assert c.get("/todos", headers=bearer({**ALICE, "aud": "api"})).status_code == 200
            r = c.get("/todos", headers=bearer({**ALICE, "aud": "web"}))
            err = assert_pgrst_error(r.status_code, r.content, 401, "PGRST303")
            assert err["message"] == "JWT not in audience"


def test_role_claim_key_path(pg):
    claims = {"https://x.io/claims": {"roles": ["viewer", "web_user"]}, "sub": "alice"}
    with pg.reload_with(jwt_role_claim_key='."https://x.io/claims".roles[?(@ == "web_user")]'):
        r = pg.get("/request_info", headers=bearer(claims))
        assert r.status_code == 200, r.text
        assert r.json()[0]["role"] == "web_user"


def test_no_anonymous_role_is_401_pgrst302_with_bearer(pg):
    with pg.reload_with(anon_role=""):
        r = pg.get("/books")
        assert_pgrst_error(r.status_code, r.content, 401, "PGRST302")
        assert r.headers["www-authenticate"] == "Bearer"
        assert pg.get("/todos", headers=bearer(ALICE)).status_code == 200


def test_per_role_settings_apply_and_follow_a_reload(pg):
    """ALTER ROLE … SET statement_timeout bounds that role's requests (after a reload, as in
    PostgREST); default_transaction_isolation sets the isolation level."""
    pg.sql("ALTER ROLE web_user SET statement_timeout = '300ms'")
    pg.sql("ALTER ROLE web_user SET default_transaction_isolation = 'repeatable read'")
    pg.sql("GRANT SELECT ON public.slow TO web_user")
    try:
        pg.reload()
        with pg.client() as c:
            wait_until(lambda: c.get("/request_info", headers=bearer(ALICE)).json()[0]
                       ["statement_timeout"] == "300ms", 5, what="the role setting")
            (info,) = c.get("/request_info", headers=bearer(ALICE)).json()
            assert info["isolation"] == "repeatable read", info
            t0 = time.monotonic()
            r = c.get("/slow", headers=bearer(ALICE))
            assert_pgrst_error(r.status_code, r.content, 500, "57014")
            assert time.monotonic() - t0 < 2.0
            # The anonymous role keeps the default.
            (info,) = c.get("/request_info").json()
            assert info["statement_timeout"] != "300ms"
            assert info["isolation"] == "read committed"
    finally:
        pg.sql("ALTER ROLE web_user RESET ALL")
        pg.sql("REVOKE SELECT ON public.slow FROM web_user")
        pg.reload()


def test_a_role_setting_granted_to_the_authenticator_applies(pg):
    """A superuser-only setting kept for a role applies when the authenticator was granted SET
    on it (PostgreSQL 15's GRANT SET ON PARAMETER): it is read and set as the authenticator,
    even on a worker whose session last ran a request as that role (the role is kept for the
    session between requests)."""
    with pg.client() as c:
        assert c.get("/request_info", headers=bearer(ALICE)).status_code == 200
        pg.psql("GRANT SET ON PARAMETER log_min_duration_statement TO authenticator;"
                "ALTER ROLE web_user SET log_min_duration_statement = '4321';")
        try:
            pg.reload()

            def setting():
                r = c.get("/request_info", headers=bearer(ALICE))
                assert r.status_code == 200, r.text
                return r.json()[0]["log_min_duration_statement"]
            wait_until(lambda: setting() == "4321ms", 5, what="the granted role setting")
            assert setting() == "4321ms"
            (info,) = c.get("/request_info").json()
            assert info["log_min_duration_statement"] != "4321ms"
        finally:
            pg.psql("ALTER ROLE web_user RESET log_min_duration_statement;"
                    "REVOKE SET ON PARAMETER log_min_duration_statement FROM authenticator;")
            pg.reload()


def test_pre_request_can_refuse_a_request(pg):
    with pg.reload_with(pre_request="public.check_request"):
        with pg.client() as c:
            assert c.get("/books").status_code == 200
            r = c.get("/books", headers={"X-Block": "yes"})
            err = assert_pgrst_error(r.status_code, r.content, 400, "P0001")
            assert err["message"] == "blocked by pre_request"
            assert err["hint"] == "send no X-Block header"


def test_a_rotated_secret_takes_effect_on_sighup_keeping_connections(pg):
    """The secret is read from a file (`@path`), so the server log, where PostgreSQL prints
    every setting a reload changes, shows only the path; a new secret refuses tokens of the
    old one (cached or not) on the same keep-alive connection."""
    import os
    from conftest import chown_postgres
    old = token(ALICE)
    new_secret = "a-brand-new-secret-that-is-32-bytes-long!"
    path = pg.root / "jwt_secret"
    path.write_text(new_secret + "\n")
    chown_postgres(path)
    os.chmod(path, 0o600)
    try:
        with pg.raw() as c:
            c.send(build_request("GET", "/todos", {"Authorization": f"Bearer {old}"}))
            assert c.read_response().status == 200
            with pg.reload_with(jwt_secret=f"@{path}"):
                c.send(build_request("GET", "/todos", {"Authorization": f"Bearer {old}"}))
                r = c.read_response()
                assert_pgrst_error(r.status, r.body, 401, "PGRST301")
                fresh = token(ALICE, secret=new_secret)
                c.send(build_request("GET", "/todos", {"Authorization": f"Bearer {fresh}"}))
                assert c.read_response().status == 200
        assert new_secret not in pg.log_text(), "the secret reached the server log"
    finally:
        path.unlink()


def test_base64_secret(pg):
    import base64
    with pg.reload_with(jwt_secret=base64.b64encode(JWT_SECRET.encode()).decode(),
                        jwt_secret_is_base64=True):
        assert pg.get("/todos", headers=bearer(ALICE)).status_code == 200


def test_rs256_public_key_as_pem_and_jwk(pg):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from jwt.algorithms import RSAAlgorithm
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    signed = token(ALICE, secret=key, algorithm="RS256")
    # A setting holds no line break: PEM line breaks are written as \n.
    for secret in (pem.replace("\n", "\\n"), RSAAlgorithm.to_jwk(key.public_key())):
        with pg.reload_with(jwt_secret=secret):
            r = pg.get("/todos", headers={"Authorization": f"Bearer {signed}"})
            assert r.status_code == 200, r.text
            assert ids(r) == [1, 2]
            # An HS256 token does not pass for it.
            r = pg.get("/todos", headers=bearer(ALICE))
            assert_pgrst_error(r.status_code, r.content, 401, "PGRST301")


def test_postgrest_py_with_auth(pg):
    with SyncPostgrestClient(pg.base_url) as client:
        assert sorted(r["id"] for r in client.from_("todos").select("*").execute().data) == [4]
        client.auth(token(ALICE))
        rows = client.from_("todos").select("*").execute().data
        assert sorted(r["id"] for r in rows) == [1, 2]
        rows = client.from_("todos").select("*").eq("id", 2).execute().data
        assert [r["task"] for r in rows] == ["alice's other"]
