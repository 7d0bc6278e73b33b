"""The account panel: sign in or out, the plan, renders left, storage, payment problems,
Upgrade and Manage account.

Upgrade follows the checkout handoff: the server gives a Stripe Checkout URL, the browser
opens it, and the panel polls ``GET /billing`` until the plan changes (only Stripe's webhook
changes it, so returning from the browser proves nothing), showing "waiting for payment
confirmation" meanwhile and a clear message if nothing arrives in time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from notefall.common.tiers import limits_for
from notefall.desktop.ops import Operation
from PySide6.QtCore import Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from .browser_sign_in import BrowserSignIn
from .errors import OfflineError
from .password_dialog import PasswordSignInDialog
from .session import AccountState, CloudSession

UPGRADE_POLL_MS = 3_000
UPGRADE_TIMEOUT_SECONDS = 15 * 60
BANNER_STYLE = (
    "QFrame#{name} {{ background: {bg}; border: 1px solid {border}; border-radius: 6px; }}"
    " QFrame#{name} QLabel {{ color: {fg}; }}"
)


def human_bytes(count: int) -> str:
    value = float(count)
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{count} bytes"


def renders_left_text(usage: dict[str, Any]) -> str:
    renders = usage.get("renders") or {}
    limit = renders.get("monthly_limit")
    used = int(renders.get("used_this_month") or 0)
    if limit is None:
        return f"Unlimited renders ({used} this month)"
    left = max(0, int(limit) - used)
    return f"{left} of {limit} renders left this month"


def _banner(name: str, bg: str, border: str, fg: str) -> tuple[QFrame, QLabel, QPushButton]:
    frame = QFrame()
    frame.setObjectName(name)
    frame.setStyleSheet(BANNER_STYLE.format(name=name, bg=bg, border=border, fg=fg))
    label = QLabel()
    label.setWordWrap(True)
    button = QPushButton()
    row = QHBoxLayout(frame)
    row.addWidget(label, 1)
    row.addWidget(button)
    frame.hide()
    return frame, label, button


class PageSwitch(QWidget):
    """Shows one of its pages. Not a QStackedWidget: that one sizes every page alike and
    ignores word-wrapped labels' height-for-width, which clipped the longer messages."""

    def __init__(self) -> None:
        super().__init__()
        self._pages: list[QWidget] = []
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._current = 0

    def addWidget(self, page: QWidget) -> None:
        self._pages.append(page)
        self._layout.addWidget(page)
        page.setVisible(len(self._pages) - 1 == self._current)

    def setCurrentIndex(self, index: int) -> None:
        self._current = index
        for number, page in enumerate(self._pages):
            page.setVisible(number == index)

    def currentIndex(self) -> int:
        return self._current


class AccountPanel(QWidget):
    """Signed-out: the two ways to sign in. Signed-in: who, which plan, what is left."""

    tier_changed = Signal(str)

    def __init__(
        self,
        session: CloudSession,
        parent: QWidget | None = None,
        *,
        open_url: Callable[[str], Any] | None = None,
        upgrade_poll_ms: int = UPGRADE_POLL_MS,
        upgrade_timeout_seconds: float = UPGRADE_TIMEOUT_SECONDS,
    ) -> None:
        super().__init__(parent)
        self.session = session
        self._open = open_url if open_url is not None else self._open_in_browser
        self._upgrade_timeout = upgrade_timeout_seconds
        self._upgrade_from: str | None = None
        self._upgrade_deadline = 0.0
        self._poll = QTimer(self)
        self._poll.setInterval(upgrade_poll_ms)
        self._poll.timeout.connect(self._check_upgrade)
        self.browser_sign_in = BrowserSignIn(session.client, self, open_url=self._open)
        self.browser_sign_in.succeeded.connect(lambda _: self._signed_in())
        self.browser_sign_in.failed.connect(self._sign_in_failed)
        self.browser_sign_in.cancelled.connect(lambda: self._sign_in_waiting(False))

        self.offline_banner, self.offline_text, self.retry_button = _banner(
            "offline", "#fff7ed", "#fdba74", "#7c2d12"
        )
        self.retry_button.setText("Retry")
        self.retry_button.clicked.connect(self.refresh)

        self.pages = PageSwitch()
        self.pages.addWidget(self._signed_out_page())
        self.pages.addWidget(self._signed_in_page())
        layout = QVBoxLayout(self)
        layout.addWidget(self.offline_banner)
        layout.addWidget(self.pages)
        layout.addStretch(1)

        session.signed_in_changed.connect(self._signed_in_changed)
        session.account_loaded.connect(self.show_account)
        session.offline.connect(self.show_offline)
        session.tier_changed.connect(self.tier_changed.emit)
        self._signed_in_changed(session.signed_in)
        if session.signed_in:
            self.refresh()

    # Pages -------------------------------------------------------------------------------

    def _signed_out_page(self) -> QWidget:
        page = QWidget()
        title = QLabel("<h2>Render in the cloud</h2>")
        text = QLabel(
            "Sign in to render videos on Notefall's servers, keep your projects in the cloud "
            "and get a notification when a video is ready."
        )
        text.setWordWrap(True)
        self.browser_button = QPushButton("Sign in with your browser")
        self.browser_button.setDefault(True)
        self.browser_button.clicked.connect(self.start_browser_sign_in)
        self.password_button = QPushButton("Sign in with a password…")
        self.password_button.setFlat(True)
        self.password_button.clicked.connect(self.open_password_sign_in)
        self.waiting_label = QLabel()
        self.waiting_label.setWordWrap(True)
        self.cancel_sign_in_button = QPushButton("Cancel")
        self.cancel_sign_in_button.clicked.connect(self.browser_sign_in.cancel)
        self.sign_in_error = QLabel()
        self.sign_in_error.setWordWrap(True)
        self.sign_in_error.setStyleSheet("color: #b91c1c;")
        self.server_label = QLabel()
        self.server_label.setStyleSheet("color: #6b7280;")
        layout = QVBoxLayout(page)
        for widget in (
            title,
            text,
            self.browser_button,
            self.password_button,
            self.waiting_label,
            self.cancel_sign_in_button,
            self.sign_in_error,
            self.server_label,
        ):
            layout.addWidget(widget)
        layout.addStretch(1)
        self._sign_in_waiting(False)
        self.sign_in_error.hide()
        return page

    def _signed_in_page(self) -> QWidget:
        page = QWidget()
        self.name_label = QLabel()
        self.name_label.setTextFormat(Qt.TextFormat.RichText)
        self.plan_label = QLabel()
        self.renders_label = QLabel()
        self.storage_bar = QProgressBar()
        self.storage_bar.setTextVisible(True)
        self.storage_bar.setAccessibleName("Storage used")
        self.storage_label = QLabel("Storage")
        self.payment_banner, self.payment_text, self.fix_payment_button = _banner(
            "payment", "#fef2f2", "#fca5a5", "#7f1d1d"
        )
        self.fix_payment_button.setText("Fix payment")
        self.fix_payment_button.clicked.connect(self._fix_payment)
        self.upgrade_button = QPushButton("Upgrade to Pro")
        self.upgrade_button.clicked.connect(lambda: self.upgrade("pro"))
        self.upgrade_status = QLabel()
        self.upgrade_status.setWordWrap(True)
        self.upgrade_status.setObjectName("upgradeStatus")
        self.upgrade_status.setStyleSheet(
            "QLabel#upgradeStatus { background: #eff6ff; border: 1px solid #93c5fd;"
            " border-radius: 6px; padding: 8px; color: #1e3a8a; }"
        )
        self.upgrade_status.hide()
        self.manage_button = QPushButton("Manage account")
        self.manage_button.clicked.connect(self.manage_account)
        self.sign_out_button = QPushButton("Sign out")
        self.sign_out_button.clicked.connect(self.session.sign_out)
        self.tokens_label = QLabel()
        self.tokens_label.setWordWrap(True)
        self.tokens_label.setStyleSheet("color: #6b7280;")
        buttons = QHBoxLayout()
        buttons.addWidget(self.upgrade_button)
        buttons.addWidget(self.manage_button)
        buttons.addStretch(1)
        buttons.addWidget(self.sign_out_button)
        layout = QVBoxLayout(page)
        for widget in (
            self.name_label,
            self.payment_banner,
            self.plan_label,
            self.renders_label,
            self.storage_label,
            self.storage_bar,
            self.upgrade_status,
        ):
            layout.addWidget(widget)
        layout.addLayout(buttons)
        layout.addWidget(self.tokens_label)
        layout.addStretch(1)
        return page

    # Signing in and out ------------------------------------------------------------------

    def _signed_in_changed(self, signed_in: bool) -> None:
        self.pages.setCurrentIndex(1 if signed_in else 0)
        self.server_label.setText(f"Server: {self.session.server_url}")
        self.tokens_label.setText(
            f"Signed in to {self.session.server_url}. Your sign-in is kept "
            f"{self.session.store.description}; your password is never stored."
        )
        if not signed_in:
            self._stop_upgrade_wait()
            self._sign_in_waiting(False)
        elif self.session.account is None:
            self._show_details(False)
            self.name_label.setText("Loading your account…")

    def _show_details(self, shown: bool) -> None:
        for widget in (
            self.plan_label,
            self.renders_label,
            self.storage_label,
            self.storage_bar,
            self.upgrade_button,
        ):
            widget.setVisible(shown)

    def start_browser_sign_in(self) -> None:
        self.sign_in_error.hide()
        self.browser_sign_in.start()
        self._sign_in_waiting(True)

    def _sign_in_waiting(self, waiting: bool) -> None:
        self.browser_button.setEnabled(not waiting)
        self.waiting_label.setVisible(waiting)
        self.cancel_sign_in_button.setVisible(waiting)
        self.waiting_label.setText(
            "Waiting for your browser… Sign in there and press Allow; this window "
            "continues by itself."
        )

    def _sign_in_failed(self, message: str) -> None:
        self._sign_in_waiting(False)
        self.sign_in_error.setText(message)
        self.sign_in_error.show()

    def _signed_in(self) -> None:
        self._sign_in_waiting(False)
        self.session.signed_in_now()

    def open_password_sign_in(self) -> PasswordSignInDialog:
        dialog = PasswordSignInDialog(self.session, self)
        dialog.open()
        return dialog

    # The account -------------------------------------------------------------------------

    def refresh(self) -> None:
        self.offline_banner.hide()
        self.session.reload()

    def show_offline(self, message: str) -> None:
        self.offline_text.setText(message)
        self.offline_banner.show()
        if self.session.account is None:
            self.name_label.setText("Your account could not be loaded.")

    def show_account(self, state: AccountState) -> None:
        self.offline_banner.hide()
        self._show_details(True)
        me, usage, billing = state.me, state.usage, state.billing
        name = me.get("name") or me.get("email", "")
        self.name_label.setText(
            f"<b>{name}</b><br><span style='color:#6b7280'>{me.get('email', '')}</span>"
        )
        tier = state.tier
        title = limits_for(tier).title if tier in ("free", "pro", "enterprise") else tier
        subscription = billing.get("subscription") or {}
        extra = ""
        if subscription.get("cancel_at_period_end"):
            extra = " (ends at the end of this period)"
        self.plan_label.setText(f"Plan: <b>{title}</b>{extra}")
        self.renders_label.setText(renders_left_text(usage))
        used = int(usage.get("storage_bytes") or 0)
        quota = int(usage.get("storage_quota_bytes") or 0) or 1
        self.storage_bar.setRange(0, 1000)
        self.storage_bar.setValue(min(1000, round(used * 1000 / quota)))
        self.storage_bar.setFormat(f"{human_bytes(used)} of {human_bytes(quota)}")
        banner = billing.get("banner")
        if banner:
            self.payment_text.setText(str(banner.get("message") or "There is a payment problem."))
            self._payment_url = str(banner.get("action_url") or "")
            self.payment_banner.show()
        else:
            self.payment_banner.hide()
        # Free buys Pro through Checkout; Pro changes plan on the billing page (a second
        # checkout would be refused: subscription_exists); Enterprise has nothing above it.
        self.upgrade_button.setText("Upgrade to Pro" if tier == "free" else "Change plan…")
        self.upgrade_button.setVisible(bool(billing.get("available")) and tier != "enterprise")
        if self._upgrade_from is not None and tier != self._upgrade_from:
            self._upgrade_done(tier)

    def _fix_payment(self) -> None:
        if getattr(self, "_payment_url", ""):
            self._open(self._payment_url)

    def manage_account(self) -> None:
        self._open(f"{self.session.server_url}/account")

    @staticmethod
    def _open_in_browser(url: str) -> bool:
        return QDesktopServices.openUrl(QUrl(url))

    # Upgrade -----------------------------------------------------------------------------

    def upgrade(self, tier: str = "pro") -> None:
        """Free: Stripe Checkout for ``tier``. A paid plan: the billing page, where plans
        change with proration. Either way the panel waits for the new plan to show."""
        if self.session.tier != "free":
            billing = self.session.account.billing if self.session.account else {}
            self._checkout_opened(
                str(billing.get("billing_url") or f"{self.session.server_url}/billing")
            )
            return
        self.upgrade_button.setEnabled(False)
        self.upgrade_status.setText("Opening the payment page…")
        self.upgrade_status.show()
        client = self.session.client
        Operation(self, lambda ctx: client.checkout(tier), self._checkout_opened).failure(
            self._upgrade_failed
        ).run_in_background()

    def _checkout_opened(self, url: str) -> None:
        self._open(url)
        self._upgrade_from = self.session.tier
        self._upgrade_deadline = time.monotonic() + self._upgrade_timeout
        self.upgrade_status.setText(
            "Waiting for payment confirmation… Finish the payment in your browser; your "
            "plan changes here as soon as the payment is confirmed."
        )
        self.upgrade_status.show()
        self.upgrade_button.setEnabled(False)
        self._poll.start()

    def _upgrade_failed(self, exc: Exception) -> None:
        self.upgrade_button.setEnabled(True)
        if isinstance(exc, OfflineError):
            self.upgrade_status.hide()
            self.show_offline(exc.message)
            return
        self.upgrade_status.setText(getattr(exc, "message", None) or str(exc))

    def _check_upgrade(self) -> None:
        if self._upgrade_from is None:
            self._poll.stop()
            return
        if time.monotonic() > self._upgrade_deadline:
            self._stop_upgrade_wait()
            self.upgrade_status.setText(
                "No payment confirmation yet. If you paid, it can take a few minutes: "
                "press Upgrade again to check, or see your account in the browser."
            )
            self.upgrade_status.show()
            self.upgrade_button.setEnabled(True)
            return
        self._poll.stop()  # one check at a time; started again when it answers
        Operation(self, lambda ctx: self.session.fetch_account(), self._polled).failure(
            lambda exc: self._poll.start()  # offline for a moment: keep waiting
        ).run_in_background()

    def _polled(self, state: AccountState) -> None:
        self.session.apply_account(state)  # show_account ends the wait when the tier moved
        if self._upgrade_from is not None:
            self._poll.start()

    def _upgrade_done(self, tier: str) -> None:
        self._stop_upgrade_wait()
        self.upgrade_button.setEnabled(True)
        self.upgrade_status.setText(f"Payment confirmed: you are on {limits_for(tier).title} now.")
        self.upgrade_status.show()

    def _stop_upgrade_wait(self) -> None:
        self._poll.stop()
        self._upgrade_from = None

    @property
    def waiting_for_payment(self) -> bool:
        return self._upgrade_from is not None
