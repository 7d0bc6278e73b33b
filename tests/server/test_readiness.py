"""/readyz names the part that does not answer: here Redis, which rate limits and queues need."""

from pathlib import Path

from notefall.server.kit.redis_server import free_port

from .conftest import TestClient, create_app, make_settings
from .test_app import assert_problem


def test_readyz_is_503_when_redis_does_not_answer(tmp_path: Path, migrated_url: str):
    down = make_settings(tmp_path, migrated_url, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    with TestClient(create_app(down)) as client:
        body = assert_problem(client.get("/readyz"), 503, "redis_unreachable")
        assert "NOTEFALL_REDIS_URL" in body["detail"]
        assert client.get("/healthz").status_code == 200


def test_readyz_is_ready_when_redis_answers(client: TestClient):
    assert client.get("/readyz").json() == {"status": "ready"}
