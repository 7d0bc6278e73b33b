"""Which cloud project mirrors which local project, per server (a small JSON file).

Kept in the app-data folder, not in the project folder, so duplicating a project folder
makes a new cloud project instead of two local projects overwriting one cloud project.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from pathlib import Path

LINKS_FILE = "cloud-projects.json"
_lock = threading.Lock()


class ProjectLinks:
    def __init__(self, app_data: Path, server_url: str) -> None:
        self.path = app_data / LINKS_FILE
        self.server_url = server_url

    def _read(self) -> dict[str, dict[str, str]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def cloud_id(self, local_id: str) -> str | None:
        with _lock:
            return self._read().get(self.server_url, {}).get(local_id)

    def local_id(self, cloud_id: str) -> str | None:
        with _lock:
            for local, cloud in self._read().get(self.server_url, {}).items():
                if cloud == cloud_id:
                    return local
        return None

    def link(self, local_id: str, cloud_id: str) -> None:
        self._set(self.server_url, local_id, cloud_id)

    def uploaded_audio(self, local_id: str) -> str | None:
        """The SHA-256 of the recording this app last uploaded for the project, if any."""
        with _lock:
            return self._read().get(f"{self.server_url} audio", {}).get(local_id)

    def set_uploaded_audio(self, local_id: str, sha256: str | None) -> None:
        self._set(f"{self.server_url} audio", local_id, sha256)

    def followed_renders(self) -> dict[str, str]:
        """Renders this app submitted and has not finished with: {render id: project name}."""
        with _lock:
            return dict(self._read().get(f"{self.server_url} renders", {}))

    def follow_render(self, render_id: str, project_name: str | None) -> None:
        """Remember (or, with None, forget) a render to pick up again after a restart."""
        self._set(f"{self.server_url} renders", render_id, project_name)

    def _set(self, section: str, key: str, value: str | None) -> None:
        with _lock:
            data = self._read()
            entries = data.setdefault(section, {})
            if value is None:
                entries.pop(key, None)
            else:
                entries[key] = value
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(dir=self.path.parent, suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                json.dump(data, file, indent=1)
            os.replace(temporary, self.path)
