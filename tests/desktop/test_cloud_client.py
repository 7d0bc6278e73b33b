"""The desktop's API client against a real server: silent refresh, typed errors, offline."""

from __future__ import annotations

import socket
import stat
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from notefall.desktop.cloud.api import CloudClient
from notefall.desktop.cloud.errors import (
    LimitError,
    NotSignedInError,
    OfflineError,
    OtpRequiredError,
    ProblemError,
)
from notefall.desktop.cloud.session import CloudSession
from notefall.desktop.cloud.tokens import FileTokenStore, Tokens, default_token_store
from notefall.desktop.settings import AppSettings

from tests.desktop.cloud_server import PASSWORD, CloudServer, running_cloud_server
from tests.support.render_farm import tiny_midi

pytestmark = pytest.mark.xdist_group("desktop-cloud")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[CloudServer]:
    with running_cloud_server(tmp_path / "server") as running:
        running.sign_up("ada@example.com")
        yield running


@pytest.fixture
def client(server: CloudServer, desktop_env: Path) -> Iterator[CloudClient]:
    api = CloudClient(server.url, FileTokenStore(desktop_env))
    api.sign_in_with_password("ada@example.com", PASSWORD)
    yield api
    api.close()


def test_an_expired_access_token_is_refreshed_silently_and_the_request_succeeds(
    server: CloudServer, client: CloudClient
):
    before = client.tokens
    assert before is not None
    # The server's clock moves past the 15-minute access token; the app's own clock has not
    # noticed, so the first answer is 401 and the client refreshes and asks again.
    server.advance_clock(timedelta(minutes=16))
    me = client.me()
    assert me["email"] == "ada@example.com"
    after = client.tokens
    assert after is not None and after.access_token != before.access_token
    assert after.refresh_token != before.refresh_token
    # The new pair was stored, so the next start of the app is signed in with it.
    assert client.store.load(server.url) == after


def test_a_token_known_to_be_expired_is_refreshed_before_the_request(
    server: CloudServer, client: CloudClient, desktop_env: Path
):
    tokens = client.tokens
    assert tokens is not None
    stale = Tokens(tokens.access_token, tokens.refresh_token, expires_at=0)
    FileTokenStore(desktop_env).save(server.url, stale)
    restarted = CloudClient(server.url, FileTokenStore(desktop_env))
    assert restarted.usage()["tier"] == "free"
    # Refreshed first (a refresh token works once, so a new one proves it), not after a 401.
    assert restarted.tokens is not None and restarted.tokens.refresh_token != tokens.refresh_token
    assert not restarted.tokens.expired()


def test_a_session_ended_on_the_server_signs_the_app_out(server: CloudServer, client: CloudClient):
    tokens = client.tokens
    assert tokens is not None
    sessions = server.http.get(
        "/api/v1/me/sessions", headers={"Authorization": f"Bearer {tokens.access_token}"}
    ).json()
    for session in sessions:
        server.http.delete(
            f"/api/v1/me/sessions/{session['id']}",
            headers={"Authorization": f"Bearer {tokens.access_token}"},
        )
    with pytest.raises(NotSignedInError, match="Sign in again"):
        client.me()
    assert client.tokens is None
    assert client.store.load(server.url) is None


def test_server_problems_arrive_as_typed_errors_with_the_servers_words(client: CloudClient):
    project = client.create_project("Empty", {})
    with pytest.raises(ProblemError) as refused:
        client.submit_render(project["id"], {}, "key-1")
    assert refused.value.status == 409
    assert refused.value.code == "project_has_no_midi"
    assert "MIDI" in refused.value.message


def test_a_plan_limit_carries_the_upgrade_link(
    server: CloudServer, client: CloudClient, tmp_path: Path
):
    midi = tmp_path / "tiny.mid"
    midi.write_bytes(tiny_midi())
    project = client.create_project("Tiny", {})
    client.upload_file(project["id"], "midi", midi)
    with pytest.raises(LimitError) as refused:
        client.submit_render(project["id"], {"resolution": "2160p"}, "key-2")
    assert refused.value.code == "resolution_not_in_plan"
    assert refused.value.upgrade_url == f"{server.url}/billing"
    assert refused.value.status == 403


def test_a_wrong_password_is_refused_with_the_servers_message(server: CloudServer, desktop_env):
    api = CloudClient(server.url, FileTokenStore(desktop_env))
    with pytest.raises(ProblemError) as refused:
        api.sign_in_with_password("ada@example.com", "not the password at all")
    assert refused.value.code == "invalid_grant"
    assert not isinstance(refused.value, OtpRequiredError)
    assert api.tokens is None


def test_an_unreachable_server_is_an_offline_error_that_names_it(desktop_env: Path):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    api = CloudClient(url, FileTokenStore(desktop_env))
    with pytest.raises(OfflineError) as offline:
        api.sign_in_with_password("ada@example.com", PASSWORD)
    assert url in offline.value.message and "Retry" in offline.value.message
    FileTokenStore(desktop_env).save(url, Tokens("a", "r", expires_at=4e9))
    signed = CloudClient(url, FileTokenStore(desktop_env))
    with pytest.raises(OfflineError):
        signed.usage()
    # Offline is not signed out: the tokens stay for when the server is back.
    assert signed.tokens is not None


def test_without_a_keyring_tokens_live_in_a_private_file(
    server: CloudServer, client: CloudClient, desktop_env: Path
):
    store = default_token_store(desktop_env)
    assert isinstance(store, FileTokenStore)  # this machine has no keyring backend
    path = desktop_env / "cloud-tokens.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert server.url in text and PASSWORD not in text
    assert "private file" in store.description
    client.sign_out()
    assert store.load(server.url) is None


def test_changing_the_server_in_preferences_switches_to_that_servers_sign_in(
    server: CloudServer, client: CloudClient, desktop_env: Path
):
    settings = AppSettings()
    settings.server_url = server.url
    session = CloudSession.from_app_settings(settings)
    session.store = FileTokenStore(desktop_env)
    session.set_server_url("http://127.0.0.1:9")
    session.set_server_url(server.url)
    assert session.signed_in  # the tokens the client stored for this server
    settings.server_url = "http://127.0.0.1:9"
    assert session.server_url == "http://127.0.0.1:9" and not session.signed_in
    settings.server_url = server.url
    assert session.signed_in


def test_a_request_retried_after_the_refresh_resends_its_file_and_its_idempotency_key(
    server: CloudServer, client: CloudClient, tmp_path: Path
):
    midi = tmp_path / "tiny.mid"
    midi.write_bytes(tiny_midi())
    project = client.create_project("Retried", {})
    server.advance_clock(timedelta(minutes=16))
    uploaded = client.upload_file(project["id"], "midi", midi)  # 401, refresh, sent again
    assert uploaded["song"]["note_count"] > 0

    server.advance_clock(timedelta(minutes=16))
    client.submit_render(project["id"], {"resolution": "256x144"}, "retried-key")
    # Had the retry lost the key, this would make a second render; the server remembers it.
    with pytest.raises(ProblemError) as reused:
        client.submit_render(project["id"], {"resolution": "426x240"}, "retried-key")
    assert reused.value.code == "idempotency_key_reused"
