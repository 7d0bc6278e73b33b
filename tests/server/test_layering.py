"""The one rule between the parts: common never imports server; the CLI loads it only to serve."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module if node.level == 0 else "." * node.level + node.module)
    return names


def test_common_never_imports_server_or_desktop():
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            name
            for name in _imported_modules(path)
            if name.startswith(("notefall.server", "notefall.desktop", "..server", "..desktop"))
        )
        for path in (ROOT / "common").rglob("*.py")
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def test_the_cli_does_not_load_the_server_until_asked_to_serve():
    check = (
        "import sys, notefall.cli.main; "
        "print(sorted(m for m in sys.modules if m.startswith('notefall.server') or m == 'fastapi'))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == "[]"
