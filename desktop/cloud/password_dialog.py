"""The password sign-in, for when the browser sign-in cannot be used (no browser, a kiosk).

Two steps in one dialog: email and password, then — only when the server answers
``otp_required`` — the authenticator code. The password is sent once per attempt and kept
only in the field; what the server hands back (tokens) is all the app stores.
"""

from __future__ import annotations

from notefall.desktop.ops import Operation
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from .errors import OtpRequiredError
from .session import CloudSession
from .tokens import Tokens


class PasswordSignInDialog(QDialog):
    def __init__(self, session: CloudSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.setWindowTitle("Sign in to Notefall")
        self.setMinimumWidth(380)

        intro = QLabel(f"Sign in to <b>{session.server_url}</b> with your email and password.")
        intro.setWordWrap(True)
        self.email = QLineEdit()
        self.email.setPlaceholderText("you@example.com")
        self.password = QLineEdit()
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        credentials = QWidget()
        form = QFormLayout(credentials)
        form.addRow("Email", self.email)
        form.addRow("Password", self.password)

        self.code = QLineEdit()
        self.code.setPlaceholderText("123456")
        self.code.setMaxLength(32)
        code_page = QWidget()
        code_layout = QVBoxLayout(code_page)
        code_help = QLabel(
            "Two-factor sign-in is on for this account. Enter the 6-digit code from your "
            "authenticator app, or one of your recovery codes."
        )
        code_help.setWordWrap(True)
        code_layout.addWidget(code_help)
        code_form = QFormLayout()
        code_form.addRow("Code", self.code)
        code_layout.addLayout(code_form)

        self.steps = QStackedWidget()
        self.steps.addWidget(credentials)
        self.steps.addWidget(code_page)

        self.error = QLabel()
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #b91c1c;")
        self.error.setAccessibleName("Sign-in error")
        self.error.hide()

        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.sign_in_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.sign_in_button.setText("Sign in")
        self.buttons.accepted.connect(self.submit)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.steps)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)
        self.email.setFocus(Qt.FocusReason.OtherFocusReason)

    @property
    def asking_for_code(self) -> bool:
        return self.steps.currentIndex() == 1

    def show_error(self, message: str) -> None:
        self.error.setText(message)
        self.error.show()

    def submit(self) -> None:
        email = self.email.text().strip()
        password = self.password.text()
        code = self.code.text().strip() if self.asking_for_code else None
        if not email or not password:
            self.show_error("Enter your email address and your password.")
            return
        if self.asking_for_code and not code:
            self.show_error("Enter the code from your authenticator app.")
            return
        self.error.hide()
        self._busy(True)
        client = self.session.client
        Operation(
            self, lambda ctx: client.sign_in_with_password(email, password, code), self._signed_in
        ).failure(self._refused).run_in_background()

    def _busy(self, busy: bool) -> None:
        self.sign_in_button.setEnabled(not busy)
        self.sign_in_button.setText("Signing in…" if busy else "Sign in")

    def _signed_in(self, tokens: Tokens) -> None:
        self._busy(False)
        self.password.clear()
        self.session.signed_in_now()
        self.accept()

    def _refused(self, exc: Exception) -> None:
        self._busy(False)
        if isinstance(exc, OtpRequiredError) and not self.asking_for_code:
            self.steps.setCurrentIndex(1)
            self.code.setFocus(Qt.FocusReason.OtherFocusReason)
            return
        self.show_error(getattr(exc, "message", None) or f"Sign-in failed ({exc}).")
        if self.asking_for_code:
            self.code.selectAll()
