"""Command-line options generated from ``RenderSettings``, so the CLI cannot drift from the API."""

from __future__ import annotations

import argparse
import types
import typing
from enum import Enum
from typing import Any

from notefall.common.settings import RenderSettings

# CLI names that differ from the JSON field names (API.md spells these).
ALIASES = {"audio_offset_ms": "audio-offset"}
METAVARS = {
    "resolution": "RES",
    "audio": "FILE",
    "soundfont": "FILE",
    "background_image": "FILE",
    "audio_offset_ms": "MS",
    "start": "S",
    "end": "S",
    "colors": "#RRGGBB",
    "background": "#RRGGBB",
    "background_gradient": "#RRGGBB",
}


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """(inner type, optional?) for ``X | None``."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return (args[0] if len(args) == 1 else args), True
    return annotation, False


def add_render_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("render settings (same names as the API's JSON fields)")
    for name, field in RenderSettings.model_fields.items():
        flag = "--" + ALIASES.get(name, name.replace("_", "-"))
        inner, _optional = _unwrap(field.annotation)
        help_text = field.description or ""
        kwargs: dict[str, Any] = {"dest": name, "default": argparse.SUPPRESS, "help": help_text}
        if inner is bool:
            if field.default is False and name in (
                "vertical",
                "transparent",
                "no_audio",
                "watermark",
            ):
                kwargs["action"] = "store_true"
            else:
                kwargs["action"] = argparse.BooleanOptionalAction
        elif isinstance(inner, type) and issubclass(inner, Enum):
            kwargs["choices"] = [e.value for e in inner]
        elif typing.get_origin(inner) is tuple:
            args = typing.get_args(inner)
            kwargs["nargs"] = "+" if (len(args) == 2 and args[1] is Ellipsis) else len(args)
            kwargs["metavar"] = METAVARS.get(name, "VALUE")
        elif inner is int:
            kwargs["type"] = int
            kwargs["metavar"] = METAVARS.get(name, "N")
        elif inner is float:
            kwargs["type"] = float
            kwargs["metavar"] = METAVARS.get(name, "X")
        else:
            kwargs["metavar"] = METAVARS.get(name, name.upper().split("_")[0])
        if kwargs.get("action") in ("store_true",):
            kwargs.pop("metavar", None)
        group.add_argument(flag, **kwargs)


def settings_mapping(ns: argparse.Namespace) -> dict[str, Any]:
    """Only the options the user gave; everything else keeps the schema's defaults."""
    return {k: v for k, v in vars(ns).items() if k in RenderSettings.model_fields}
