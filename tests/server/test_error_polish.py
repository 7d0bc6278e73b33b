"""What OAuth clients, HTTP clients and people see of errors and empty answers: RFC 6749
members at the token endpoint, bad bodies named as such, 204s without a body, file names."""

from __future__ import annotations

import inspect
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
from fastapi import FastAPI
from fastapi.routing import APIRoute, _IncludedRouter
from notefall.common.errors import LimitExceeded, MidiError
from notefall.common.midi import reader, smf
from notefall.common.pipeline import require_notes
from notefall.server.kit import db
from notefall.server.kit.app import create_app
from notefall.server.kit.errors import PROBLEM_JSON, oauth_error_name
from notefall.server.kit.ratelimit import RateLimitedError, RateLimiter, WindowLimit
from notefall.server.kit.settings import Settings

from .conftest import TestClient, signed_in_headers
from .test_app import assert_problem
from .test_two_factor import ADA, DISABLE, Clock, clock, enable_two_factor, sign_in, sign_up

__all__ = ["clock"]  # the fixture, imported for the two-factor test below

TOKEN = "/api/v1/auth/token"
PROJECTS = "/api/v1/projects"
JSON = {"Content-Type": "application/json"}


def oauth_problem(response, status: int, code: str, error: str) -> dict:
    body = assert_problem(response, status, code)
    assert body["error"] == error and body["error_description"] == body["detail"]
    return body


# 1. The token endpoint speaks RFC 6749 §5.2 as well -------------------------------------------


def test_token_errors_carry_the_rfc_6749_error_members(client: TestClient, settings: Settings):
    signed_in_headers(client, settings, "ada@example.com")
    wrong = {"grant_type": "password", "username": "ada@example.com", "password": "not it"}
    oauth_problem(client.post(TOKEN, data=wrong), 400, "invalid_grant", "invalid_grant")
    refresh = {"grant_type": "refresh_token", "refresh_token": "no-such-token"}
    oauth_problem(client.post(TOKEN, data=refresh), 400, "invalid_grant", "invalid_grant")
    foreign = {
        "grant_type": "authorization_code",
        "code": "c",
        "redirect_uri": "http://127.0.0.1:1/cb",
        "client_id": "someone-else",
        "code_verifier": "v" * 43,
    }
    oauth_problem(client.post(TOKEN, data=foreign), 400, "invalid_client", "invalid_client")
    # Schema errors: a missing field is invalid_request, an unknown grant type its own name.
    missing = {"grant_type": "password", "username": "ada@example.com"}
    body = oauth_problem(
        client.post(TOKEN, data=missing), 422, "invalid_request", "invalid_request"
    )
    assert "password" in body["detail"]
    unknown = {"grant_type": "client_credentials"}
    oauth_problem(
        client.post(TOKEN, data=unknown), 422, "invalid_request", "unsupported_grant_type"
    )


def test_errors_without_an_rfc_6749_name_get_the_nearest_one():
    assert oauth_error_name("too_many_attempts", 429) == "temporarily_unavailable"
    assert oauth_error_name("rate_limit_unavailable", 503) == "temporarily_unavailable"
    assert oauth_error_name("internal_error", 500) == "server_error"
    assert oauth_error_name("bad_request", 400) == "invalid_request"
    assert oauth_error_name("otp_required", 401, "invalid_grant") == "invalid_grant"


def test_other_endpoints_keep_plain_problems(client: TestClient, settings: Settings):
    headers = signed_in_headers(client, settings, "ada@example.com")
    body = assert_problem(client.post(PROJECTS, json={}, headers=headers), 422, "invalid_request")
    assert "error" not in body and "error_description" not in body


def test_a_second_factor_is_asked_for_with_invalid_grant(
    client: TestClient, settings: Settings, clock: Clock
):
    sign_up(client, settings, ADA)
    enable_two_factor(client, sign_in(client, ADA), clock)
    form = {"grant_type": "password", "username": ADA["email"], "password": ADA["password"]}
    oauth_problem(client.post(TOKEN, data=form), 401, "otp_required", "invalid_grant")
    form["otp"] = "000000"
    oauth_problem(client.post(TOKEN, data=form), 400, "invalid_otp", "invalid_grant")


# 2. Bodies that are not what the endpoint takes ------------------------------------------------


def test_broken_json_says_so_and_where(client: TestClient, settings: Settings):
    headers = signed_in_headers(client, settings, "ada@example.com") | JSON
    response = client.post(PROJECTS, content=b'{\n  "name": oops', headers=headers)
    body = assert_problem(response, 422, "invalid_request")
    assert "not valid JSON" in body["detail"] and "line 2, column 11" in body["detail"]
    assert [e["field"] for e in body["errors"]] == [""]


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"[1, 2]", "application/json"),
        (b'"a name"', "application/json"),
        (b"name=Song", "application/x-www-form-urlencoded"),
        (b"", None),
    ],
)
def test_a_body_that_is_not_a_json_object_asks_for_one(
    client: TestClient, settings: Settings, content: bytes, content_type: str | None
):
    headers = signed_in_headers(client, settings, "ada@example.com")
    if content_type:
        headers["Content-Type"] = content_type
    body = assert_problem(
        client.post(PROJECTS, content=content, headers=headers), 422, "invalid_request"
    )
    assert "not a JSON object" in body["detail"]
    assert "Content-Type: application/json" in body["detail"]
    assert [e["field"] for e in body["errors"]] == [""]


def test_json_sent_to_the_token_endpoint_asks_for_a_form(client: TestClient):
    response = client.post(TOKEN, json={"grant_type": "password", "username": "a", "password": "b"})
    body = oauth_problem(response, 422, "invalid_request", "invalid_request")
    assert "application/x-www-form-urlencoded" in body["detail"]
    assert "grant_type, username, password" in body["detail"]
    assert "not application/json" in body["detail"]


# 3. OpenAPI declares errors as problem+json only -----------------------------------------------


def test_openapi_declares_every_error_as_problem_json_with_a_real_example(client: TestClient):
    schema = client.get("/openapi.json").json()
    declared = 0
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if not status.isdigit() or int(status) < 400:
                    continue
                where = f"{method.upper()} {path} {status}"
                assert set(response["content"]) == {PROBLEM_JSON}, where
                example = response["content"][PROBLEM_JSON]["example"]
                assert example["status"] == int(status), where
                assert example["code"] in response["description"], where
                assert example["type"] == f"urn:notefall:problem:{example['code']}", where
                declared += 1
    assert declared > 100
    assert "swagger" in client.get("/docs").text.lower()


# 4. File names outside ASCII -------------------------------------------------------------------


def test_a_preset_download_keeps_the_projects_own_name(client: TestClient, settings: Settings):
    headers = signed_in_headers(client, settings, "ada@example.com")
    project = client.post(PROJECTS, json={"name": "Émile ü"}, headers=headers)
    assert project.status_code == 201, project.text
    response = client.get(f"{PROJECTS}/{project.json()['id']}/settings/export", headers=headers)
    assert response.status_code == 200
    assert response.headers["content-disposition"] == (
        'attachment; filename="emile-u.notefall-preset.json"; '
        f"filename*=UTF-8''{quote('Émile ü.notefall-preset.json', safe='')}"
    )


# 5. A 204 has no body and no Content-Type ------------------------------------------------------


def _api_routes(routes: list) -> list[APIRoute]:
    found: list[APIRoute] = []
    for route in routes:
        if isinstance(route, APIRoute):
            found.append(route)
        elif isinstance(route, _IncludedRouter):
            found += _api_routes(route.original_router.routes)
    return found


def test_every_204_route_answers_without_a_content_type(client: TestClient):
    app = client.app
    assert isinstance(app, FastAPI)
    documented = {
        (method.upper(), operation.get("summary"))
        for operations in client.get("/openapi.json").json()["paths"].values()
        for method, operation in operations.items()
        if "204" in operation["responses"]
    }
    routes = [route for route in _api_routes(app.routes) if route.status_code == 204]
    assert {(m, r.summary) for r in routes for m in r.methods} == documented
    assert len(routes) >= 10
    # A JSONResponse (FastAPI's default) would send Content-Type: application/json.
    assert [r.path for r in routes if r.response_class.media_type is not None] == []


def test_204_answers_have_no_body_and_no_content_type(
    client: TestClient, settings: Settings, clock: Clock
):
    sign_up(client, settings, ADA)
    ada = sign_in(client, ADA)
    _, codes = enable_two_factor(client, ada, clock)
    project = client.post(PROJECTS, json={"name": "Song"}, headers=ada).json()
    other = sign_in(client, ADA, otp=codes[0])
    sessions = client.get("/api/v1/me/sessions", headers=ada).json()
    [other_id] = [s["id"] for s in sessions if not s["current"]]
    answers = [
        client.post(DISABLE, json={"code": codes[1]}, headers=ada),
        client.delete(f"{PROJECTS}/{project['id']}", headers=ada),
        client.delete(f"/api/v1/me/sessions/{other_id}", headers=ada),
        client.delete("/api/v1/me/avatar", headers=ada),
        client.post("/api/v1/auth/logout", headers=ada),
    ]
    assert other
    for response in answers:
        assert response.status_code == 204, response.text
        assert response.content == b""
        assert "content-type" not in response.headers


# 6. Waits in words -----------------------------------------------------------------------------


def test_a_one_second_wait_is_singular(redis_url: str):
    now = datetime(2026, 11, 29, 12, 0, 59, tzinfo=UTC)
    limiter = RateLimiter(redis.Redis.from_url(redis_url), 1.0, lambda: now)
    rule = (WindowLimit("polish", limit=1, window_seconds=60), str(uuid.uuid4()))
    try:
        limiter.hit(rule)
        with pytest.raises(RateLimitedError) as one:
            limiter.hit(rule)
        now = datetime(2026, 11, 29, 12, 1, 30, tzinfo=UTC)
        limiter.hit(rule)
        with pytest.raises(RateLimitedError) as thirty:
            limiter.hit(rule)
    finally:
        limiter.close()
    assert one.value.detail == "Too many requests; try again in 1 second."
    assert thirty.value.detail == "Too many requests; try again in 30 seconds."


# 7. Every code the server can answer with is documented -----------------------------------------

GUIDE = (Path(__file__).resolve().parents[2] / "docs" / "server.md").read_text(encoding="utf-8")
# Raised only when the reader opens a path; the server hands it the uploaded bytes.
PATH_ONLY_CODES = {"file_not_found", "unreadable_file"}


def test_every_engine_code_a_midi_upload_relays_is_documented():
    # PUT /projects/{id}/midi answers the engine's own code (UnreadableMidiError).
    sources = [inspect.getsource(code) for code in (smf, reader, require_notes)]
    codes = {code for source in sources for code in re.findall(r'code\s*=\s*"(\w+)"', source)}
    # What the reader's errors answer when raised without a code of their own.
    codes |= {MidiError.code, LimitExceeded.code}
    assert {"empty_file", "not_midi", "empty_song", "too_many_notes"} <= codes
    assert sorted(c for c in codes - PATH_ONLY_CODES if f"`{c}`" not in GUIDE) == []


def test_a_body_that_cannot_be_parsed_is_a_documented_bad_request(client: TestClient):
    broken = b"--x\r\nContent-Disposition: form-data; name=grant_type"
    headers = {"Content-Type": "multipart/form-data"}  # without its boundary
    body = oauth_problem(
        client.post(TOKEN, content=broken, headers=headers), 400, "bad_request", "invalid_request"
    )
    assert "Content-Type" in body["detail"]
    assert "`bad_request`" in GUIDE


def test_a_request_that_finds_no_free_database_connection_is_told_to_retry(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
):
    # One connection, waited for half a second: held by "another request" below.
    monkeypatch.setattr(db, "POOL_SIZING", {"pool_size": 1, "max_overflow": 0, "pool_timeout": 0.5})
    with TestClient(create_app(settings)) as client:
        ada = signed_in_headers(client, settings, "ada@example.com")
        held = client.app.state.database.engine.connect()  # type: ignore[attr-defined]
        try:
            response = client.get("/api/v1/projects", headers=ada)
        finally:
            held.close()
        assert response.status_code == 503, response.text
        assert response.json()["code"] == "database_busy"
        assert response.headers["Retry-After"] == "5"
        # Once a connection is free again, requests are answered as usual.
        assert client.get("/api/v1/projects", headers=ada).status_code == 200
