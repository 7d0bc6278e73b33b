"""The server's memory: every Stripe object by id, the test clock, idempotency replies, events.

One ``Store`` per server process. Every request runs under ``Store.lock`` (a re-entrant lock), so
a request sees and leaves a consistent state; webhook deliveries happen outside it (see
``webhooks.py``), which lets the receiving app call back into the API while it handles an event.
"""

from __future__ import annotations

import copy
import json
import secrets
import string
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

API_VERSION = "2026-10-28.endive"

_ALPHABET = string.ascii_letters + string.digits

Obj = dict[str, Any]


class StripeError(Exception):
    """An error reply shaped as Stripe's: ``{"error": {type, code, message, param}}``."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        decline_code: str | None = None,
        extra: Obj | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.decline_code = decline_code
        self.extra = extra or {}

    def body(self) -> Obj:
        error: Obj = {"type": self.type, "message": self.message}
        if self.code is not None:
            error["code"] = self.code
            error["doc_url"] = f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}"
        if self.param is not None:
            error["param"] = self.param
        if self.decline_code is not None:
            error["decline_code"] = self.decline_code
        error.update(self.extra)
        return {"error": error}


def invalid(message: str, param: str | None = None, code: str | None = None) -> StripeError:
    return StripeError(400, message, param=param, code=code)


def missing_param(param: str) -> StripeError:
    return StripeError(
        400, f"Missing required param: {param}.", code="parameter_missing", param=param
    )


def no_such(label: str, object_id: str, param: str = "id") -> StripeError:
    return StripeError(404, f"No such {label}: '{object_id}'", code="resource_missing", param=param)


@dataclass
class Settings:
    """Knobs a test may turn with ``POST /_test/settings``."""

    # What happens when the last payment retry fails: Stripe's "cancel the subscription"
    # or "mark the subscription as unpaid".
    dunning_final: str = "canceled"
    # Days after the previous failed attempt at which the invoice is retried (Smart Retries
    # stand-in): 3 retries, then ``dunning_final``.
    retry_days: list[int] = field(default_factory=lambda: [3, 5, 7])
    # Extra delivery attempts of a webhook our app answered with a non-2xx (immediate, in order).
    webhook_retries: int = 0


class Store:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.lock = threading.RLock()
        self.objects: dict[str, Obj] = {}
        self.by_kind: dict[str, list[str]] = defaultdict(list)
        self.clock_offset = 0
        self.settings = Settings()
        # Test-card behaviour of each payment method: "success" | "declined" | "requires_action".
        self.card_outcomes: dict[str, str] = {}
        # Idempotency-Key -> (request fingerprint, status, body).
        self.idempotent_replies: dict[str, tuple[str, int, Obj]] = {}
        # Events in creation order, with the exact JSON body that is signed and delivered.
        self.event_ids: list[str] = []
        self.event_payloads: dict[str, str] = {}
        # Called with each new event id (the webhook deliverer's queue).
        self.on_event: Callable[[str], None] = lambda _event_id: None
        # Event ids emitted by the current request, so test-control calls can wait for them.
        self.emitted: list[str] = []
        # Per checkout session: what the session object does not show (line items, subscription_data).
        self.checkout_private: dict[str, Obj] = {}
        self._held: list[tuple[str, Obj, Obj | None]] | None = None
        self.request_id = ""
        self.idempotency_key: str | None = None

    # ---- time -----------------------------------------------------------------------------

    def now(self) -> int:
        """The test clock: wall-clock seconds plus everything ``/_test/advance`` added."""
        return int(time.time()) + self.clock_offset

    # ---- objects --------------------------------------------------------------------------

    def new_id(self, prefix: str) -> str:
        return f"{prefix}_{''.join(secrets.choice(_ALPHABET) for _ in range(24))}"

    def add(self, obj: Obj) -> Obj:
        self.objects[obj["id"]] = obj
        self.by_kind[obj["object"]].append(obj["id"])
        return obj

    def base(self, prefix: str, kind: str, **fields: Any) -> Obj:
        """A new object with the fields every Stripe object has."""
        obj: Obj = {"id": self.new_id(prefix), "object": kind, "created": self.now()}
        obj.update(fields)
        obj.setdefault("livemode", False)
        return obj

    def get(self, object_id: str, kind: str, label: str, param: str = "id") -> Obj:
        obj = self.objects.get(object_id)
        if obj is None or obj["object"] != kind or obj.get("deleted"):
            raise no_such(label, object_id, param)
        return obj

    def all(self, kind: str) -> list[Obj]:
        return [self.objects[object_id] for object_id in self.by_kind[kind]]

    def list_reply(
        self,
        items: Iterable[Obj],
        params: Obj,
        url: str,
    ) -> Obj:
        """A Stripe list page: newest first, ``limit`` (1–100, default 10), cursors by id."""
        from .forms import as_int

        ordered = sorted(items, key=lambda obj: obj.get("created", 0), reverse=True)
        # Equal ``created`` seconds keep creation order reversed, as Stripe's ids sort.
        index_of = {object_id: i for i, object_id in enumerate(self.objects)}
        ordered = sorted(
            ordered,
            key=lambda obj: (obj.get("created", 0), index_of.get(obj["id"], 0)),
            reverse=True,
        )
        limit = as_int(params.get("limit", 10), "limit")
        if not 1 <= limit <= 100:
            raise invalid("This value must be greater than or equal to 1.", "limit")
        ids = [obj["id"] for obj in ordered]
        if params.get("starting_after"):
            cursor = params["starting_after"]
            if cursor not in ids:
                raise invalid(f"Invalid starting_after id: {cursor}", "starting_after")
            ordered = ordered[ids.index(cursor) + 1 :]
            page = ordered[:limit]
        elif params.get("ending_before"):
            cursor = params["ending_before"]
            if cursor not in ids:
                raise invalid(f"Invalid ending_before id: {cursor}", "ending_before")
            before = ordered[: ids.index(cursor)]
            page = before[-limit:]
            ordered = before
        else:
            page = ordered[:limit]
        return {
            "object": "list",
            "data": page,
            "has_more": len(ordered) > len(page),
            "url": url,
        }

    # ---- rendering ------------------------------------------------------------------------

    def render(self, obj: Obj, expand: Iterable[str] = ()) -> Obj:
        """A deep copy of ``obj`` with each dotted ``expand`` path's id replaced by its object."""
        result = copy.deepcopy(obj)
        for path in expand:
            self._expand(result, path.split("."), path)
        return result

    def _expand(self, value: Any, parts: list[str], path: str) -> None:
        if not parts:
            return
        if isinstance(value, list):
            for item in value:
                self._expand(item, parts, path)
            return
        if not isinstance(value, dict):
            return
        key, rest = parts[0], parts[1:]
        if key not in value:
            raise invalid(
                f"This property cannot be expanded ({path}).", "expand", code="parameter_invalid"
            )
        child = value[key]
        if isinstance(child, str) and child in self.objects:
            value[key] = child = copy.deepcopy(self.objects[child])
        self._expand(child, rest, path)

    # ---- events ---------------------------------------------------------------------------

    @contextmanager
    def holding_events(self) -> Iterator[list[tuple[str, Obj, Obj | None]]]:
        """Snapshot events instead of sending them, so a flow can send them in Stripe's order."""
        held: list[tuple[str, Obj, Obj | None]] = []
        self._held = held
        try:
            yield held
        finally:
            self._held = None

    def release_events(self, held: list[tuple[str, Obj, Obj | None]]) -> None:
        for event_type, snapshot, previous in held:
            self.emit(event_type, snapshot, previous)

    def emit(self, event_type: str, obj: Obj, previous_attributes: Obj | None = None) -> Obj | None:
        """Record an event with a snapshot of ``obj`` and queue it for delivery."""
        if self._held is not None:
            self._held.append((event_type, copy.deepcopy(obj), copy.deepcopy(previous_attributes)))
            return None
        data: Obj = {"object": copy.deepcopy(obj)}
        if previous_attributes:
            data["previous_attributes"] = copy.deepcopy(previous_attributes)
        event = self.base(
            "evt",
            "event",
            api_version=API_VERSION,
            data=data,
            pending_webhooks=1,
            request={"id": self.request_id or None, "idempotency_key": self.idempotency_key},
            type=event_type,
        )
        self.add(event)
        self.event_ids.append(event["id"])
        self.event_payloads[event["id"]] = json.dumps(event, indent=2)
        self.emitted.append(event["id"])
        self.on_event(event["id"])
        return event
