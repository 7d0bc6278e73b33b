"""The app's preferences: typed values with defaults, refused bad values, and upgrades of old files."""

from __future__ import annotations

import pytest
from notefall.common.errors import SettingsError
from notefall.common.settings import RenderSettings
from notefall.desktop.settings import (
    DEFAULT_SERVER_URL,
    SETTINGS_VERSION,
    AppSettings,
    UiTheme,
    app_data_dir,
    default_download_dir,
)
from notefall.desktop.signals import app_signals
from PySide6.QtCore import QByteArray, QSettings


def test_a_fresh_install_has_sensible_defaults(app_settings, desktop_env, tmp_path):
    assert app_settings.server_url == DEFAULT_SERVER_URL == "http://127.0.0.1:8000"
    assert app_settings.theme is UiTheme.SYSTEM
    assert app_settings.default_render_settings == RenderSettings()
    assert app_settings.recent_files == []
    assert app_settings.window_geometry.isEmpty()
    assert app_data_dir() == desktop_env
    assert app_settings.download_dir() == default_download_dir() == tmp_path / "downloads"
    assert app_settings.download_dir().is_dir()


def test_values_keep_their_types_across_a_restart(app_settings):
    app_settings.theme = UiTheme.DARK
    app_settings.default_render_settings = RenderSettings(theme="paper", fps=60, vertical=True)
    app_settings.window_geometry = QByteArray(b"\x01\x02\x03")
    app_settings.close_to_tray = False
    again = AppSettings()
    assert again.theme is UiTheme.DARK
    assert again.default_render_settings == RenderSettings(theme="paper", fps=60, vertical=True)
    assert bytes(again.window_geometry.data()) == b"\x01\x02\x03"
    assert again.close_to_tray is False


def test_a_bad_server_address_is_refused_and_the_old_one_kept(app_settings):
    with pytest.raises(SettingsError) as refused:
        app_settings.server_url = "ftp://example.com"
    assert refused.value.message == (
        "'ftp://example.com' is not a server address; use one like https://notefall.example.com"
    )
    assert app_settings.server_url == DEFAULT_SERVER_URL
    app_settings.server_url = "https://notefall.example.com/"
    assert app_settings.server_url == "https://notefall.example.com"


def test_a_change_is_announced_by_name(qtbot, app_settings):
    with qtbot.waitSignal(app_signals().settings_changed, timeout=1000) as changed:
        app_settings.theme = UiTheme.LIGHT
    assert changed.args == ["theme"]


def test_an_unreadable_value_falls_back_to_its_default(app_settings):
    app_settings.qsettings.setValue("render/defaults", "{not json")
    app_settings.qsettings.setValue("ui/theme", "purple")
    assert app_settings.default_render_settings == RenderSettings()
    assert app_settings.theme is UiTheme.SYSTEM


def test_an_old_settings_file_is_upgraded_once(app_settings):
    path = app_settings.file_name
    app_settings.qsettings.clear()
    old = QSettings(path, QSettings.Format.IniFormat)
    old.setValue("cloud/url", "https://old.example.com")
    old.sync()
    upgraded = AppSettings()
    assert upgraded.server_url == "https://old.example.com"
    assert upgraded.qsettings.value("cloud/url") is None
    assert int(upgraded.qsettings.value("meta/version")) == SETTINGS_VERSION


def test_recent_files_are_unique_newest_first_and_capped(app_settings, tmp_path):
    for i in range(12):
        app_settings.add_recent_file(tmp_path / f"p{i}")
    app_settings.add_recent_file(tmp_path / "p3")
    recent = app_settings.recent_files
    assert len(recent) == 10
    assert recent[0] == str(tmp_path / "p3")
    assert len(set(recent)) == 10
