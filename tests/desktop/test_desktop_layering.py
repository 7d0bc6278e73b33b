"""The desktop app talks to the server over HTTP only: it never imports notefall.server."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

DESKTOP = Path(__file__).resolve().parents[2] / "desktop"


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_no_desktop_module_imports_the_server_package():
    offenders = {
        str(path.relative_to(DESKTOP)): sorted(
            name for name in _imported_modules(path)
            if name == "notefall.server" or name.startswith(("notefall.server.", "server"))
        )
        for path in DESKTOP.rglob("*.py")
    }  # fmt: skip
    assert {k: v for k, v in offenders.items() if v} == {}


def test_opening_the_whole_window_loads_no_server_code(tmp_path):
    probe = (
        "import sys; from PySide6.QtWidgets import QApplication; app = QApplication([]);"
        "from notefall.desktop.main_window import MainWindow; w = MainWindow();"
        "print(sorted(m for m in sys.modules if m.startswith(('notefall.server', 'sqlalchemy', 'celery'))))"
    )
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "NOTEFALL_DESKTOP_DATA": str(tmp_path / "data"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
    }
    done = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
