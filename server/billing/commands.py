"""``notefall billing ...``: settings from NOTEFALL_* like ``notefall serve``; errors are one
line (exit 2)."""

from __future__ import annotations

import argparse

from notefall.common.errors import InputError
from notefall.server.kit.errors import ProblemError
from notefall.server.stack import settings_or_input_error

from . import catalog


def run(args: argparse.Namespace) -> None:
    settings = settings_or_input_error()
    if args.billing_command == "sync-catalog":
        try:
            print(catalog.run(settings))
        except ProblemError as exc:
            raise InputError(exc.detail, code=exc.code) from None
