"""Mail about a finished render, as the owner's notification preferences ask.

Sent after the transaction that ended the render commits (``send_after_commit``), so no
mail ever announces a render that rolled back.
"""

from __future__ import annotations

from notefall.server.accounts.models import User
from notefall.server.kit.mail import compose, mailer_for, send_after_commit
from notefall.server.kit.settings import Settings
from notefall.server.kit.text import file_size
from notefall.server.profile.service import notification_preferences
from sqlalchemy.orm import Session

from .models import Render


def notify_finished(session: Session, settings: Settings, render: Render) -> None:
    owner = session.get(User, render.owner_id)
    if owner is None or not notification_preferences(session, owner.id)["render_finished"]:
        return
    days = ""
    if render.expires_at is not None and render.finished_at is not None:
        days = f" It is kept until {render.expires_at:%d %B %Y} (UTC), then deleted."
    body = (
        f"Hello {owner.name},\n\n"
        f"your video of \u201c{render.project_name}\u201d is ready: "
        f"{render.width}x{render.height}, {render.fps} fps, "
        f"{(render.output_duration or 0):.1f} s, {file_size(render.output_bytes or 0)}.{days}\n\n"
        f"Watch and download it here (sign in first):\n"
        f"{settings.public_url}/renders/{render.id}\n\n"
        "You get this mail because you asked to hear when a render finishes; turn it off "
        "under Notifications in your account settings.\n"
    )
    message = compose(owner.email, f"Your video of {render.project_name} is ready", body)
    send_after_commit(session, mailer_for(settings), message)


def notify_failed(session: Session, settings: Settings, render: Render) -> None:
    owner = session.get(User, render.owner_id)
    if owner is None or not notification_preferences(session, owner.id)["render_failed"]:
        return
    body = (
        f"Hello {owner.name},\n\n"
        f"your render of \u201c{render.project_name}\u201d failed:\n\n"
        f"{render.error_message}\n\n"
        f"The render: {settings.public_url}/renders/{render.id}\n"
        "Nothing was charged, and it does not count against this month's renders.\n\n"
        "You get this mail because you asked to hear when a render fails; turn it off "
        "under Notifications in your account settings.\n"
    )
    message = compose(owner.email, f"Your render of {render.project_name} failed", body)
    send_after_commit(session, mailer_for(settings), message)
