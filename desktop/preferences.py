"""The Settings dialog (Ctrl+,): server, download folder, look, default render settings."""

from __future__ import annotations

from pathlib import Path

from notefall.common.errors import SettingsError
from notefall.common.settings import RenderSettings
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from .project import settings_changes
from .settings import AppSettings, UiTheme, check_server_url


class PreferencesDialog(QDialog):
    """Edits ``AppSettings``; nothing is stored until OK, and a bad server address is refused."""

    def __init__(
        self,
        settings: AppSettings,
        current_render_settings: RenderSettings | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Notefall Settings")
        self.setObjectName("preferences")
        self.settings = settings
        self._current = current_render_settings
        self._defaults: RenderSettings = settings.default_render_settings

        self.server_url = QLineEdit(settings.server_url)
        self.server_url.setPlaceholderText("https://notefall.example.com")
        self.server_error = QLabel()
        self.server_error.setObjectName("fieldError")
        self.server_error.setStyleSheet("color: #e5484d;")
        self.server_error.setWordWrap(True)
        self.server_error.hide()

        self.download_folder = QLineEdit(settings.download_folder)
        browse = QPushButton("Choose…")
        browse.clicked.connect(self._choose_folder)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.download_folder, 1)
        folder_row.addWidget(browse)

        self.theme = QComboBox()
        for label, value in (
            ("Same as the system", UiTheme.SYSTEM),
            ("Light", UiTheme.LIGHT),
            ("Dark", UiTheme.DARK),
        ):
            self.theme.addItem(label, value.value)
        self.theme.setCurrentIndex(self.theme.findData(settings.theme.value))

        self.close_to_tray = QCheckBox("Keep running in the tray while cloud renders run")
        self.close_to_tray.setChecked(settings.close_to_tray)

        self.defaults_label = QLabel()
        self.defaults_label.setWordWrap(True)
        self.use_current = use_current = QPushButton("Use the open project's settings")
        use_current.setEnabled(current_render_settings is not None)
        use_current.clicked.connect(self._use_current)
        reset = QPushButton("Reset")
        reset.clicked.connect(self._reset_defaults)
        defaults_row = QHBoxLayout()
        defaults_row.addWidget(use_current)
        defaults_row.addWidget(reset)
        defaults_row.addStretch(1)
        self._show_defaults()

        form = QFormLayout()
        form.addRow("Server", self.server_url)
        form.addRow("", self.server_error)
        form.addRow("Download folder", folder_row)
        form.addRow("Appearance", self.theme)
        form.addRow("", self.close_to_tray)
        form.addRow("New projects start with", self.defaults_label)
        form.addRow("", defaults_row)

        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(buttons)
        self.resize(560, self.sizeHint().height())

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self, "Download folder", self.download_folder.text()
        )
        if folder:
            self.download_folder.setText(folder)

    def _show_defaults(self) -> None:
        changed = settings_changes(self._defaults)
        if not changed:
            self.defaults_label.setText("Notefall's defaults (1080p, 30 fps, MP4, Aurora).")
            return
        text = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in sorted(changed.items()))
        self.defaults_label.setText(f"Notefall's defaults, except {text}.")

    def _use_current(self) -> None:
        if self._current is not None:
            self._defaults = self._current.model_copy(update={"audio": None})
            self._show_defaults()

    def _reset_defaults(self) -> None:
        self._defaults = RenderSettings()
        self._show_defaults()

    def accept(self) -> None:
        try:
            url = check_server_url(self.server_url.text())
        except SettingsError as exc:
            self.server_error.setText(exc.message)
            self.server_error.show()
            self.server_url.setFocus()
            return
        s = self.settings
        if url != s.server_url:
            s.server_url = url
        folder = str(Path(self.download_folder.text().strip() or s.download_folder).expanduser())
        if folder != s.download_folder:
            s.download_folder = folder
        theme = UiTheme(self.theme.currentData())
        if theme != s.theme:
            s.theme = theme
        if self.close_to_tray.isChecked() != s.close_to_tray:
            s.close_to_tray = self.close_to_tray.isChecked()
        if self._defaults != s.default_render_settings:
            s.default_render_settings = self._defaults
        super().accept()
