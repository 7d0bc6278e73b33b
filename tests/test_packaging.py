"""The wheel must carry every package: pyproject.toml lists them by hand (package-dir maps names)."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {
    "common": "notefall.common",
    "cli": "notefall.cli",
    "server": "notefall.server",
    "desktop": "notefall.desktop",
}


def test_every_package_folder_is_listed_in_pyproject():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    listed = set(config["tool"]["setuptools"]["packages"])
    on_disk = {
        ".".join([FOLDERS[folder], *init.parent.relative_to(ROOT / folder).parts])
        for folder in FOLDERS
        for init in (ROOT / folder).rglob("__init__.py")
    }
    assert on_disk - listed == set()
    assert listed - on_disk == set()
