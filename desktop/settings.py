"""The app's own preferences: typed options over QSettings, with defaults and upgrades.

Modelled on Picard's ``config`` options: each preference is declared once with its
type and default, read and written as a plain attribute::

    settings = AppSettings()
    settings.server_url                       # "http://127.0.0.1:8000" until changed
    settings.theme = UiTheme.DARK             # stored, and app_signals().settings_changed("theme")

Values are kept in an INI file (the same on every platform, readable when a user
asks for help). ``SETTINGS_VERSION`` and ``UPGRADES`` move old files forward once.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Any, Generic, TypeVar, overload
from urllib.parse import urlparse

import platformdirs
from notefall.common.errors import SettingsError
from notefall.common.settings import RenderSettings, settings_from_mapping
from PySide6.QtCore import QByteArray, QSettings

APP_NAME = "Notefall"
ORGANISATION = "Notefall"
DEFAULT_SERVER_URL = "http://127.0.0.1:8000"
SETTINGS_VERSION = 2
MAX_RECENT_FILES = 10

# Environment overrides: portable installs and tests keep everything in one folder.
DATA_DIR_ENV = "NOTEFALL_DESKTOP_DATA"
DOWNLOAD_DIR_ENV = "NOTEFALL_DOWNLOAD_DIR"


def app_data_dir() -> Path:
    """Where local projects (and the token fallback file) live."""
    override = os.environ.get(DATA_DIR_ENV)
    if override:
        return Path(override)
    return Path(platformdirs.user_data_dir(APP_NAME, ORGANISATION))


def default_download_dir() -> Path:
    override = os.environ.get(DOWNLOAD_DIR_ENV)
    if override:
        return Path(override)
    return Path(platformdirs.user_downloads_dir()) / APP_NAME


class UiTheme(StrEnum):
    SYSTEM = "system"
    LIGHT = "light"
    DARK = "dark"


T = TypeVar("T")


class Option(Generic[T]):
    """One typed preference. ``encode``/``decode`` turn values into what QSettings stores."""

    def __init__(
        self,
        key: str,
        default: Callable[[], T],
        decode: Callable[[Any], T],
        encode: Callable[[T], Any] = lambda v: v,
        check: Callable[[T], T] = lambda v: v,
    ) -> None:
        self.key = key
        self.default = default
        self.decode = decode
        self.encode = encode
        self.check = check
        self.name = key

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type) -> Option[T]: ...
    @overload
    def __get__(self, obj: AppSettings, owner: type) -> T: ...
    def __get__(self, obj: AppSettings | None, owner: type) -> T | Option[T]:
        if obj is None:
            return self
        raw = obj.qsettings.value(self.key)
        if raw is None:
            return self.default()
        try:
            return self.decode(raw)
        except (ValueError, TypeError, SettingsError):
            # A hand-edited or older value we cannot read: fall back, never crash at start-up.
            return self.default()

    def __set__(self, obj: AppSettings, value: T) -> None:
        value = self.check(value)
        obj.qsettings.setValue(self.key, self.encode(value))
        obj.changed(self.name)


def _as_bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    return str(raw).strip().lower() in ("1", "true", "yes", "on")


def _as_bytes(raw: Any) -> QByteArray:
    return raw if isinstance(raw, QByteArray) else QByteArray(bytes(raw))


def _as_str_list(raw: Any) -> list[str]:
    if isinstance(raw, str):
        value = json.loads(raw) if raw.startswith("[") else [raw]
    else:
        value = list(raw)
    return [str(v) for v in value]


def check_server_url(url: str) -> str:
    text = url.strip().rstrip("/")
    parsed = urlparse(text)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise SettingsError(
            f"'{url}' is not a server address; use one like https://notefall.example.com",
            code="invalid_server_url",
        )
    return text


def _encode_render_settings(settings: RenderSettings) -> str:
    defaults = RenderSettings().model_dump(mode="json")
    changed = {k: v for k, v in settings.model_dump(mode="json").items() if v != defaults[k]}
    return json.dumps(changed)


def _decode_render_settings(raw: Any) -> RenderSettings:
    return settings_from_mapping(json.loads(str(raw)) if raw else {})


def _upgrade_1_to_2(qs: QSettings) -> None:
    # Version 1 kept the server address under "cloud/url"; it moved to "server/url".
    old = qs.value("cloud/url")
    if old is not None and qs.value("server/url") is None:
        qs.setValue("server/url", old)
    qs.remove("cloud/url")


UPGRADES: dict[int, Callable[[QSettings], None]] = {1: _upgrade_1_to_2}


class AppSettings:
    """Typed preferences. Cheap to create; every instance reads the same file."""

    server_url = Option("server/url", lambda: DEFAULT_SERVER_URL, str, check=check_server_url)
    download_folder = Option("files/download_folder", lambda: str(default_download_dir()), str)
    projects_folder = Option("files/projects_folder", lambda: str(app_data_dir() / "projects"), str)
    default_render_settings = Option(
        "render/defaults", RenderSettings, _decode_render_settings, _encode_render_settings
    )
    theme = Option("ui/theme", lambda: UiTheme.SYSTEM, UiTheme, str)
    window_geometry = Option("window/geometry", QByteArray, _as_bytes)
    window_state = Option("window/state", QByteArray, _as_bytes)
    recent_files = Option("files/recent", list, _as_str_list, json.dumps)
    last_project = Option("files/last_project", str, str)
    close_to_tray = Option("ui/close_to_tray", lambda: True, _as_bool)

    def __init__(self, qsettings: QSettings | None = None) -> None:
        self.qsettings = qsettings or QSettings(
            QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANISATION, APP_NAME
        )
        self.upgrade()

    @property
    def file_name(self) -> str:
        return self.qsettings.fileName()

    def upgrade(self) -> None:
        version_raw = self.qsettings.value("meta/version")
        if version_raw is None:
            # A fresh file is already current; an old one without a version was version 1.
            fresh = not [k for k in self.qsettings.allKeys() if k != "meta/version"]
            version = SETTINGS_VERSION if fresh else 1
        else:
            version = int(version_raw)
        while version < SETTINGS_VERSION:
            UPGRADES[version](self.qsettings)
            version += 1
        self.qsettings.setValue("meta/version", SETTINGS_VERSION)

    def changed(self, name: str) -> None:
        self.qsettings.sync()
        from .signals import app_signals

        app_signals().settings_changed.emit(name)

    def add_recent_file(self, path: Path) -> list[str]:
        entry = str(Path(path).resolve())
        files = [entry, *(f for f in self.recent_files if f != entry)][:MAX_RECENT_FILES]
        self.recent_files = files
        return files

    def download_dir(self) -> Path:
        """The download folder, created on first use."""
        folder = Path(self.download_folder).expanduser()
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def projects_dir(self) -> Path:
        folder = Path(self.projects_folder).expanduser()
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def reset(self, name: str) -> None:
        """Forget one preference; it reads as its default again."""
        option = getattr(type(self), name)
        assert isinstance(option, Option)
        self.qsettings.remove(option.key)
        self.changed(name)
