"""``python -m notefall.server.retention``: one retention run now, for operators without beat."""

from __future__ import annotations

import logging
import sys

from notefall.server.kit.models import utcnow
from notefall.server.kit.settings import SettingsError, load_settings

from .runner import run_retention


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        settings = load_settings()
    except SettingsError as error:
        print(f"notefall: error: {error}", file=sys.stderr)
        return 2
    report = run_retention(settings, utcnow())
    for name, count in report.deleted.items():
        print(f"{name}: {count} removed")
    for name, problem in report.failed.items():
        print(f"{name}: FAILED ({problem})", file=sys.stderr)
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
