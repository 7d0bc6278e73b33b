"""The signed-in account, shared by the account panel, the cloud panel and cloud renders.

Holds the one ``CloudClient`` and announces changes (signed in or out, the plan) on the
app-wide signals hub, so the inspector and the tray hear them without knowing this module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from notefall.desktop.ops import Operation
from notefall.desktop.settings import AppSettings, app_data_dir
from notefall.desktop.signals import app_signals
from PySide6.QtCore import QObject, Signal

from .api import CloudClient
from .errors import NotSignedInError, OfflineError
from .tokens import Tokens, TokenStore, default_token_store


@dataclass
class AccountState:
    """What the account panel shows; filled by ``CloudSession.reload``."""

    me: dict[str, Any] = field(default_factory=dict)
    usage: dict[str, Any] = field(default_factory=dict)
    billing: dict[str, Any] = field(default_factory=dict)

    @property
    def tier(self) -> str:
        return str(self.billing.get("tier") or self.me.get("tier") or "free")


class CloudSession(QObject):
    """One server, one user (or none). Every network call runs as a background operation."""

    signed_in_changed = Signal(bool)
    account_loaded = Signal(object)  # AccountState
    tier_changed = Signal(str)
    offline = Signal(str)  # message for a banner with Retry
    _tokens_dropped = Signal()

    def __init__(
        self,
        server_url: str,
        app_data: Path,
        download_dir: Path | Callable[[], Path],
        parent: QObject | None = None,
        *,
        store: TokenStore | None = None,
    ) -> None:
        super().__init__(parent)
        self.app_data = app_data
        self._download_dir = download_dir
        self.store = store or default_token_store(app_data)
        self.client = CloudClient(server_url, self.store)
        self.client.on_tokens_changed = self._tokens_changed
        self._tokens_dropped.connect(self._after_sign_out)
        self.account: AccountState | None = None
        self._tier: str | None = None

    @classmethod
    def from_app_settings(
        cls, settings: AppSettings, parent: QObject | None = None
    ) -> CloudSession:
        """The app's session: the server URL and folders from the preferences, following
        later changes of the server URL (each server keeps its own sign-in)."""
        session = cls(settings.server_url, app_data_dir(), settings.download_dir, parent)

        def changed(name: str) -> None:
            if name == "server_url":
                session.set_server_url(settings.server_url)

        app_signals().settings_changed.connect(changed)
        return session

    @property
    def server_url(self) -> str:
        return self.client.server_url

    @property
    def signed_in(self) -> bool:
        return self.client.signed_in

    @property
    def tier(self) -> str:
        return self._tier or "free"

    def download_dir(self) -> Path:
        folder = self._download_dir() if callable(self._download_dir) else self._download_dir
        return Path(folder)

    def set_server_url(self, url: str) -> None:
        """Another server: its own stored sign-in (tokens are kept per server URL)."""
        if url.rstrip("/") == self.server_url:
            return
        self.client.close()
        self.client = CloudClient(url, self.store)
        self.client.on_tokens_changed = self._tokens_changed
        self.account = None
        self._tier = None
        self.signed_in_changed.emit(self.client.signed_in)

    # Sign-in -----------------------------------------------------------------------------

    def _tokens_changed(self, tokens: Tokens | None) -> None:
        # Called on whichever thread refreshed; the UI hears it through a queued signal.
        if tokens is None:
            self._tokens_dropped.emit()

    def _after_sign_out(self) -> None:
        self.account = None
        self._tier = None
        self.signed_in_changed.emit(False)
        app_signals().signed_out.emit()

    def signed_in_now(self) -> None:
        """After a browser or password sign-in stored new tokens."""
        self.signed_in_changed.emit(True)
        self.reload()

    def sign_out(self) -> None:
        def done(_: None) -> None:
            self.account = None
            self._tier = None
            self.signed_in_changed.emit(False)
            app_signals().signed_out.emit()

        Operation(self, lambda ctx: self.client.sign_out(), done).run_in_background()

    # The account -------------------------------------------------------------------------

    def fetch_account(self) -> AccountState:
        """Blocking: me, usage and billing (billing may be off on a server without Stripe)."""
        state = AccountState(me=self.client.me(), usage=self.client.usage())
        try:
            state.billing = self.client.billing()
        except OfflineError:
            raise
        except NotSignedInError:
            raise
        except Exception:  # billing_not_configured and friends: show the plan from /me
            state.billing = {"tier": state.me.get("tier"), "banner": None, "available": False}
        return state

    def reload(self, on_failure: Callable[[Exception], None] | None = None) -> None:
        if not self.client.signed_in:
            return
        Operation(self, lambda ctx: self.fetch_account(), self.apply_account).failure(
            on_failure or self.report_failure
        ).run_in_background()

    def apply_account(self, state: AccountState) -> None:
        first = self.account is None
        self.account = state
        self.account_loaded.emit(state)
        if first:
            app_signals().signed_in.emit(state.me)
        self.note_tier(state.tier)

    def note_tier(self, tier: str) -> None:
        if tier != self._tier:
            self._tier = tier
            self.tier_changed.emit(tier)
            app_signals().tier_changed.emit(tier)

    def report_failure(self, exc: Exception) -> None:
        """The default for cloud failures: offline → banner with Retry; signed out → state."""
        if isinstance(exc, OfflineError):
            self.offline.emit(exc.message)
        elif isinstance(exc, NotSignedInError):
            self._after_sign_out()
        else:
            from notefall.desktop.ops import ErrorReport

            app_signals().error_raised.emit(ErrorReport(getattr(exc, "message", str(exc))))
