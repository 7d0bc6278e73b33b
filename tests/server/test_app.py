"""The app shell: health, readiness, OpenAPI, and problem+json for every kind of error."""

from pathlib import Path

from fastapi import FastAPI
from notefall.server.kit.app import create_app
from notefall.server.kit.errors import PROBLEM_JSON, NotFoundError
from notefall.server.kit.settings import Settings

from .conftest import TestClient, make_settings, signed_in_headers

PROBLEM_FIELDS = {"type", "title", "status", "detail", "code"}


def assert_problem(response, status: int, code: str) -> dict:
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    assert body.keys() >= PROBLEM_FIELDS
    assert body["status"] == status and body["code"] == code
    assert body["type"] == f"urn:notefall:problem:{code}"
    return body


def test_healthz_says_the_process_is_alive(client: TestClient):
    assert client.get("/healthz").json() == {"status": "ok"}


def test_readyz_is_ready_when_the_database_answers(client: TestClient):
    response = client.get("/readyz")
    assert response.status_code == 200 and response.json() == {"status": "ready"}


def test_readyz_is_503_problem_when_the_database_does_not_answer(tmp_path: Path):
    # Port 1 on loopback refuses at once: a database that is down.
    settings = make_settings(tmp_path, "postgresql://nobody@127.0.0.1:1/notefall")
    with TestClient(create_app(settings)) as client:
        body = assert_problem(client.get("/readyz"), 503, "database_unreachable")
        assert client.get("/healthz").status_code == 200
    assert "NOTEFALL_DATABASE_URL" in body["detail"]


def test_unknown_routes_and_methods_are_problems(client: TestClient):
    assert_problem(client.get("/no/such/page"), 404, "not_found")
    assert_problem(client.get("/api/v1/auth/signup"), 405, "method_not_allowed")


def test_invalid_bodies_name_every_bad_field(client: TestClient):
    response = client.post("/api/v1/auth/signup", json={"email": "not-an-email", "password": "x"})
    body = assert_problem(response, 422, "invalid_request")
    fields = {error["field"]: error["message"] for error in body["errors"]}
    assert fields.keys() == {"email", "name"}
    assert "email address" in fields["email"]
    assert body["detail"] == "Fix email and name and send the request again."


def test_unknown_fields_are_refused(client: TestClient):
    response = client.post(
        "/api/v1/auth/signup",
        json={"email": "a@example.com", "password": "x" * 12, "name": "A", "admin": True},
    )
    assert [e["field"] for e in assert_problem(response, 422, "invalid_request")["errors"]] == [
        "admin"
    ]


def _app_with_failing_routes(settings: Settings) -> FastAPI:
    app = create_app(settings)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internals")

    @app.get("/missing")
    def missing() -> None:
        raise NotFoundError("No such song; check the id.")

    return app


def test_domain_errors_and_crashes_become_problems(settings: Settings):
    with TestClient(_app_with_failing_routes(settings), raise_server_exceptions=False) as client:
        body = assert_problem(client.get("/missing"), 404, "not_found")
        assert body["detail"] == "No such song; check the id."
        crash = assert_problem(client.get("/boom"), 500, "internal_error")
    assert "secret internals" not in crash["detail"]


def test_openapi_documents_the_routes_and_their_problems(client: TestClient):
    assert "swagger" in client.get("/docs").text.lower()
    schema = client.get("/openapi.json").json()
    assert {"/healthz", "/readyz", "/api/v1/auth/signup", "/api/v1/auth/verify-email"} <= set(
        schema["paths"]
    )
    signup = schema["paths"]["/api/v1/auth/signup"]["post"]["responses"]
    assert set(signup) >= {"201", "422"}
    assert PROBLEM_JSON in signup["422"]["content"]
    assert "weak_password" in signup["422"]["description"]
    assert "invalid_request" in signup["422"]["description"]


def test_openapi_documents_sign_in_and_the_bearer_scheme(client: TestClient):
    schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    token = paths["/api/v1/auth/token"]["post"]
    assert "application/x-www-form-urlencoded" in token["requestBody"]["content"]
    assert "invalid_grant" in token["responses"]["400"]["description"]
    assert "refresh_token_reused" in token["responses"]["400"]["description"]
    [scheme] = schema["components"]["securitySchemes"].values()
    assert scheme["flows"]["password"]["tokenUrl"] == "/api/v1/auth/token"
    assert paths["/api/v1/me"]["get"]["security"]
    assert (
        "invalid_access_token"
        in paths["/api/v1/me/sessions"]["get"]["responses"]["401"]["description"]
    )


def test_nul_characters_are_refused_before_they_reach_the_database(
    client: TestClient, settings: Settings
):
    # PostgreSQL text cannot hold U+0000; without this check the search below was a 500 there.
    headers = signed_in_headers(client, settings, "nul@example.com")
    search = client.get("/api/v1/projects", params={"q": "a\x00b"}, headers=headers)
    assert "NUL" in assert_problem(search, 422, "invalid_request")["detail"]
    create = client.post("/api/v1/projects", json={"name": "a\x00b"}, headers=headers)
    assert "NUL" in assert_problem(create, 422, "invalid_request")["detail"]
    form = {"grant_type": "password", "username": "nul@example.com\x00", "password": "x"}
    assert (
        "NUL"
        in assert_problem(client.post("/api/v1/auth/token", data=form), 422, "invalid_request")[
            "detail"
        ]
    )
    assert client.get("/api/v1/projects", headers=headers).json()["total"] == 0


def test_text_that_only_looks_like_a_nul_is_accepted(client: TestClient, settings: Settings):
    # "%00" in a JSON string and an escaped backslash before "u0000" are ordinary text.
    headers = signed_in_headers(client, settings, "percent@example.com")
    for name in ("Up 100%00", "C:\\u0000 folder"):
        created = client.post("/api/v1/projects", json={"name": name}, headers=headers)
        assert created.status_code == 201, created.text
        assert created.json()["name"] == name


def test_numbers_too_large_for_the_database_are_a_422_on_every_backend(
    client: TestClient, settings: Settings
):
    # Found by the schemathesis run: SQLite's driver raised OverflowError (a 500) here.
    headers = signed_in_headers(client, settings, "big@example.com")
    response = client.get("/api/v1/projects", params={"offset": 2**70}, headers=headers)
    assert_problem(response, 422, "invalid_request")
