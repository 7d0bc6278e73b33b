"""The dashboard (`/`), a new project, a project's page and the shared view (`/s/{token}`).

Every page calls the projects, renders, sharing and usage services the API calls; nothing
here decides who may do what. A refusal from a service is shown on the page it came from
(with the request's changes rolled back), except "no such project", which is the 404 page.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, File, Form, Query, Request, Response, UploadFile
from notefall.common.tiers import limits_for
from notefall.server.accounts.router import RequestSession
from notefall.server.kit.errors import ProblemError
from notefall.server.kit.text import file_size
from notefall.server.projects.models import Project, Role
from notefall.server.projects.repository import ProjectFilter, Shared, Sort
from notefall.server.projects.router import project_service, sharing_service
from notefall.server.projects.schemas import BulkTag, CollaboratorInvite, ProjectCreate
from notefall.server.projects.service import MAX_PRESET_BYTES, OWNER, Action, ProjectService
from notefall.server.projects.sharing import SharingService
from notefall.server.renders.models import Render
from notefall.server.renders.repository import RenderFilter
from notefall.server.renders.router import render_service
from notefall.server.renders.service import RenderService, render_usage
from notefall.server.renders.states import RenderStatus
from notefall.server.usage import UsageService
from pydantic import ValidationError

from .dashboard_summary import facts_of, tags_of
from .layout import Page, SignedInPage
from .pages import render

project_pages = APIRouter(include_in_schema=False)

PAGE_SIZE = 48
# A page of history is what a person reads; the API pages through the rest.
HISTORY_SIZE = 20
MAX_SELECTED = 100  # the bulk API's own limit
SORTS: dict[str, str] = {
    "-updated": "Recently changed",
    "-created": "Newest first",
    "created": "Oldest first",
    "name": "Name A–Z",
    "-name": "Name Z–A",
}
SORT_VALUES: dict[str, Sort] = {
    "-updated": "-updated",
    "-created": "-created",
    "created": "created",
    "name": "name",
    "-name": "-name",
}
SHOWN: dict[str, str] = {
    "all": "All projects",
    "mine": "My projects",
    "with_me": "Shared with me",
}
SHARE_LIFETIMES = {"": None, "1": 1, "7": 7, "30": 30}
# What a finished action says on the page it lands on (?done=...).
DONE = {
    "created": "Project created.",
    "saved": "Saved.",
    "settings": "Settings imported; the thumbnail shows them.",
    "invited": "Invitation sent.",
    "role": "Role changed.",
    "removed": "Collaborator removed; the project is no longer shared with them.",
    "revoked": "Share link revoked: it opens nothing from now on.",
}


# Services -----------------------------------------------------------------------------------


def _projects(page: Page) -> ProjectService:
    return project_service(page.request, page.session)


def _sharing(page: Page, projects: ProjectService) -> SharingService:
    return sharing_service(page.request, projects)


def _renders(page: Page) -> RenderService:
    return render_service(page.request, page.session)


# Formatting ---------------------------------------------------------------------------------


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    whole = round(seconds)
    return f"{whole // 60}:{whole % 60:02d}"


def refusal(error: ValidationError) -> str:
    """A form value pydantic refused, in one sentence."""
    first = error.errors()[0]
    field = ".".join(str(part) for part in first["loc"] if not isinstance(part, int))
    return f"{field.capitalize() or 'A field'}: {str(first['msg']).removeprefix('Value error, ')}."


def split_tags(text: str) -> list[str]:
    return [tag.strip() for tag in text.split(",") if tag.strip()]


def _try(page: Page, action: Callable[[], Response], on_error: Callable[..., Response]) -> Response:
    """Run ``action``; a service's refusal undoes the request and is shown by ``on_error``.

    "No such project" stays the 404 page: the form it came from does not exist for you."""
    try:
        return action()
    except ProblemError as error:
        if error.status == 404:
            raise
        page.session.rollback()
        return on_error(
            error=error.detail,
            status_code=error.status,
            upgrade_url=error.members.get("upgrade_url"),
        )
    except ValidationError as error:
        page.session.rollback()
        return on_error(error=refusal(error), status_code=400)


# Dashboard ----------------------------------------------------------------------------------


def _dashboard(
    page: Page,
    *,
    q: str = "",
    tags: list[str] | None = None,
    sort: str = "-updated",
    shown: str = "all",
    number: int = 1,
    notice: str | None = None,
    error: str | None = None,
    status_code: int = 200,
    upgrade_url: str | None = None,
) -> Response:
    user = page.user
    sort = sort if sort in SORTS else "-updated"
    shown = shown if shown in SHOWN else "all"
    tags = [tag.lower() for tag in dict.fromkeys(tags or []) if tag]
    projects = _projects(page)
    where = ProjectFilter(
        query=q.strip() or None, tags=tags, shared=_shared(shown), sort=_sort(sort)
    )
    items, total = projects.page_of(user, where, PAGE_SIZE, (number - 1) * PAGE_SIZE)
    last = max(1, -(-total // PAGE_SIZE))
    if number > last:
        # A page past the end (projects deleted meanwhile, an edited address): the last one.
        number = last
        items, total = projects.page_of(user, where, PAGE_SIZE, (number - 1) * PAGE_SIZE)
    roles = projects.roles_of(user, items)
    facts = facts_of(page.session, items)
    limits = limits_for(user.tier)
    renders = render_usage(page.session, user, page.request.app.state.clock())
    used = UsageService(page.session).stored_bytes(user.id)
    cards = [
        {
            "project": project,
            "role": roles[project.id],
            "facts": facts[project.id],
            "thumbnail": projects.thumbnail_link(project) if project.thumbnail_key else None,
        }
        for project in items
    ]
    filtered = bool(where.query or tags or shown != "all")
    return page.render(
        "dashboard.html",
        nav="dashboard",
        status_code=status_code,
        cards=cards,
        total=total,
        number=number,
        pages=last,
        q=q,
        chosen_tags=tags,
        all_tags=tags_of(page.session, user.id),
        sort=sort,
        sorts=SORTS,
        shown=shown,
        shown_options=SHOWN,
        filtered=filtered,
        renders_used=renders.used,
        renders_limit=renders.limit,
        renders_left=None if renders.limit is None else max(0, renders.limit - renders.used),
        resets_at=renders.resets_at,
        storage_used=used,
        storage_quota=limits.storage_quota_bytes,
        notice=notice,
        error=error,
        upgrade_url=upgrade_url,
        file_size=file_size,
        duration=duration,
        page_query=_page_query(q, tags, sort, shown),
    )


def _shared(shown: str) -> Shared:
    return "mine" if shown == "mine" else "with_me" if shown == "with_me" else "all"


def _sort(sort: str) -> Sort:
    return SORT_VALUES[sort]


def _page_query(q: str, tags: list[str], sort: str, shown: str) -> str:
    """The filters as a query string, for the page links (the page number is added)."""
    pairs = [("q", q)] if q else []
    pairs += [("tag", tag) for tag in tags]
    if sort != "-updated":
        pairs.append(("sort", sort))
    if shown != "all":
        pairs.append(("shown", shown))
    return urlencode(pairs)


@project_pages.get("/")
def dashboard(
    page: SignedInPage,
    q: Annotated[str, Query(max_length=200)] = "",
    tag: Annotated[list[str], Query(max_length=20)] = [],  # noqa: B006
    sort: Annotated[str, Query(max_length=20)] = "-updated",
    shown: Annotated[str, Query(max_length=20)] = "all",
    p: Annotated[int, Query(ge=1, le=100_000)] = 1,
    deleted: Annotated[int | None, Query(ge=0, le=MAX_SELECTED)] = None,
    tagged: Annotated[int | None, Query(ge=0, le=MAX_SELECTED)] = None,
) -> Response:
    notice = None
    if deleted is not None:
        notice = f"{deleted} project{'s' if deleted != 1 else ''} deleted."
    elif tagged is not None:
        notice = f"Tags changed on {tagged} project{'s' if tagged != 1 else ''}."
    return _dashboard(page, q=q, tags=tag, sort=sort, shown=shown, number=p, notice=notice)


def _selected(ids: list[str]) -> list[uuid.UUID] | str:
    """The chosen project ids, or what is wrong with the selection."""
    if not ids:
        return "Select at least one project first."
    if len(ids) > MAX_SELECTED:
        return f"Select at most {MAX_SELECTED} projects at a time."
    try:
        return [uuid.UUID(value) for value in ids]
    except ValueError:
        return "The selection names a project that does not exist; reload the page."


@project_pages.post("/projects/bulk")
def bulk_action(
    page: SignedInPage,
    action: Annotated[str, Form(max_length=20)] = "",
    ids: Annotated[list[str], Form(max_length=MAX_SELECTED + 1)] = [],  # noqa: B006
    tag: Annotated[str, Form(max_length=200)] = "",
    confirm: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """Delete (after a confirmation page) or tag the selected projects, all or none."""
    selected = _selected(ids)
    if isinstance(selected, str):
        return _dashboard(page, error=selected, status_code=400)
    projects = _projects(page)

    def on_error(**shown: Any) -> Response:
        return _dashboard(page, **shown)

    if action == "delete":
        if confirm != "yes":
            # Looked up (and access-checked) only to name them on the confirmation page.
            return _try(page, lambda: _confirm_bulk_delete(page, projects, selected), on_error)
        return _try(
            page,
            lambda: page.redirect(f"/?deleted={projects.bulk_delete(page.user, selected)}"),
            on_error,
        )
    if action in ("tag-add", "tag-remove"):
        if not tag.strip():
            return _dashboard(page, error="Type the tag to add or remove first.", status_code=400)

        def retag() -> Response:
            change = BulkTag(
                ids=selected,
                add=[tag.strip()] if action == "tag-add" else [],
                remove=[tag.strip()] if action == "tag-remove" else [],
            )
            changed = projects.bulk_tag(page.user, change.ids, change.add, change.remove)
            return page.redirect(f"/?tagged={len(changed)}")

        return _try(page, retag, on_error)
    return _dashboard(page, error="Choose what to do with the selected projects.", status_code=400)


def _confirm_bulk_delete(page: Page, projects: ProjectService, ids: list[uuid.UUID]) -> Response:
    chosen = [projects.access(page.user, pid, Action.MANAGE) for pid in dict.fromkeys(ids)]
    return page.render("project_delete.html", nav="dashboard", projects=chosen, bulk=True)


# New project --------------------------------------------------------------------------------


def _new_form(
    page: Page,
    *,
    name: str = "",
    tags: str = "",
    error: str | None = None,
    status_code: int = 200,
    **_: Any,
) -> Response:
    projects = _projects(page)
    return page.render(
        "project_new.html",
        nav="dashboard",
        status_code=status_code,
        name=name,
        tags=tags,
        error=error,
        max_midi=file_size(projects.max_midi_bytes(page.user)),
        max_audio=file_size(projects.max_audio_bytes(page.user)),
    )


@project_pages.get("/projects/new")
def new_project_form(page: SignedInPage) -> Response:
    return _new_form(page)


def _chosen(upload: UploadFile | None) -> UploadFile | None:
    # A form with no file chosen still sends the field, with an empty name.
    return upload if upload is not None and upload.filename else None


@project_pages.post("/projects/new")
def create_project(
    page: SignedInPage,
    name: Annotated[str, Form(max_length=1000)] = "",
    tags: Annotated[str, Form(max_length=2000)] = "",
    midi: Annotated[UploadFile | None, File()] = None,
    audio: Annotated[UploadFile | None, File()] = None,
) -> Response:
    """Create the project and upload its files: all of it, or (on any refusal) none of it."""
    midi, audio = _chosen(midi), _chosen(audio)

    def again(error: str, status_code: int = 400, **_: Any) -> Response:
        return _new_form(page, name=name, tags=tags, error=error, status_code=status_code)

    if not name.strip():
        return again("Name your project.")
    if midi is None:
        return again("Choose the song's MIDI file (.mid).")
    projects = _projects(page)
    created: list[uuid.UUID] = []

    def create() -> Response:
        body = ProjectCreate(name=name.strip(), tags=split_tags(tags))
        project = projects.create(page.user, body.name, body.tags, None)
        created.append(project.id)
        data = midi.file.read(projects.max_midi_bytes(page.user) + 1)
        _for_file("MIDI file", lambda: projects.upload_midi(page.user, project.id, data))
        if audio is not None:
            sound = audio.file.read(projects.max_audio_bytes(page.user) + 1)
            _for_file(
                "Recording",
                lambda: projects.upload_audio(page.user, project.id, sound, audio.filename),
            )
        return page.redirect(f"/projects/{project.id}?done=created")

    def refused(**shown: Any) -> Response:
        # The rows are rolled back; the files written for them go too.
        for project_id in created:
            _forget_files(projects, project_id)
        return again(**shown)

    return _try(page, create, refused)


def _for_file(label: str, upload: Callable[[], object]) -> None:
    """Name the file in the service's refusal: the form has two."""
    try:
        upload()
    except ProblemError as error:
        error.detail = f"{label}: {error.detail}"
        raise


def _forget_files(projects: ProjectService, project_id: uuid.UUID) -> None:
    storage = projects.storage
    for key in list(storage.keys(f"projects/{project_id}")):
        storage.delete(key)


# A project ----------------------------------------------------------------------------------


def _history_row(render_row: Render, user_id: uuid.UUID, now: Any) -> dict[str, Any]:
    succeeded = render_row.status == RenderStatus.SUCCEEDED.value
    kept = render_row.output_key is not None and (
        render_row.expires_at is None or render_row.expires_at > now
    )
    return {
        "render": render_row,
        "size": file_size(render_row.output_bytes) if render_row.output_bytes else "—",
        "resolution": (
            f"{render_row.width}×{render_row.height}"
            if render_row.width and render_row.height
            else "—"
        ),
        # Only the render's owner may open its files (a collaborator's render is theirs).
        "downloadable": succeeded and kept and render_row.owner_id == user_id,
        "own": render_row.owner_id == user_id,
    }


def _project_page(
    page: Page,
    project_id: uuid.UUID,
    *,
    status_code: int = 200,
    error: str | None = None,
    upgrade_url: str | None = None,
    notice: str | None = None,
    new_share_url: str | None = None,
    invite_email: str = "",
) -> Response:
    user = page.user
    projects = _projects(page)
    project = projects.get(user, project_id)
    role = projects.role_of(user, project)
    renders = _renders(page)
    history, history_total = renders.project_history(
        user, project.id, RenderFilter(), HISTORY_SIZE, 0
    )
    now = page.request.app.state.clock()
    links, members, active = [], [], set()
    if role == OWNER:
        sharing = _sharing(page, projects)
        links = sharing.links(user, project.id)
        members = sharing.collaborators(user, project.id)
        active = sharing.shown_as_active([m.email for m in members])
    usage = render_usage(page.session, user, now)
    return page.render(
        "project.html",
        nav="dashboard",
        status_code=status_code,
        project=project,
        role=role,
        can_edit=role in (OWNER, Role.EDITOR),
        can_manage=role == OWNER,
        thumbnail=projects.thumbnail_link(project) if project.thumbnail_key else None,
        settings_rows=_settings_rows(project),
        history=[_history_row(r, user.id, now) for r in history],
        history_total=history_total,
        links=links,
        members=members,
        active=active,
        roles=[str(r) for r in Role],
        share_lifetimes=SHARE_LIFETIMES,
        renders_left=None if usage.limit is None else max(0, usage.limit - usage.used),
        idempotency_key=uuid.uuid4().hex,
        error=error,
        upgrade_url=upgrade_url,
        notice=notice,
        new_share_url=new_share_url,
        invite_email=invite_email,
        duration=duration,
        file_size=file_size,
        max_preset_kb=MAX_PRESET_BYTES // 1024,
    )


def _settings_rows(project: Project) -> list[tuple[str, str]]:
    def shown(value: object) -> str:
        if isinstance(value, bool):
            return "on" if value else "off"
        if isinstance(value, dict | list):
            return json.dumps(value, ensure_ascii=False)
        return str(value)

    return [
        (key.replace("_", " ").capitalize(), shown(value))
        for key, value in sorted(project.settings.items())
    ]


def _on_project(page: Page, project_id: uuid.UUID) -> Callable[..., Response]:
    def show(**shown: Any) -> Response:
        return _project_page(page, project_id, **shown)

    return show


@project_pages.get("/projects/{project_id}")
def project_view(
    project_id: uuid.UUID,
    page: SignedInPage,
    done: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    return _project_page(page, project_id, notice=DONE.get(done))


@project_pages.post("/projects/{project_id}/rename")
def rename_project(
    project_id: uuid.UUID,
    page: SignedInPage,
    name: Annotated[str, Form(max_length=1000)] = "",
    tags: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    def save() -> Response:
        body = ProjectCreate(name=name.strip(), tags=split_tags(tags))
        _projects(page).update(page.user, project_id, name=body.name, tags=body.tags)
        return page.redirect(f"/projects/{project_id}?done=saved")

    return _try(page, save, _on_project(page, project_id))


@project_pages.post("/projects/{project_id}/settings/import")
def import_settings(
    project_id: uuid.UUID,
    page: SignedInPage,
    preset: Annotated[UploadFile | None, File()] = None,
) -> Response:
    show = _on_project(page, project_id)
    chosen = _chosen(preset)
    if chosen is None:
        return show(error="Choose a preset file (.notefall-preset.json) first.", status_code=400)
    data = chosen.file.read(MAX_PRESET_BYTES + 1)
    if len(data) > MAX_PRESET_BYTES:
        return show(
            error=f"A preset is at most {MAX_PRESET_BYTES // 1024} KB; this file is not one.",
            status_code=413,
        )
    try:
        preset_json = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return show(
            error="This preset is not JSON; export it again from a project.", status_code=422
        )

    def apply() -> Response:
        _projects(page).import_settings(page.user, project_id, preset_json)
        return page.redirect(f"/projects/{project_id}?done=settings")

    return _try(page, apply, show)


@project_pages.post("/projects/{project_id}/render")
def render_project(
    project_id: uuid.UUID,
    page: SignedInPage,
    idempotency_key: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Submit a render with the project's settings; the render's page follows it."""

    def submit() -> Response:
        submitted = _renders(page).submit(page.user, project_id, None, idempotency_key or None)
        return page.redirect(f"/renders/{submitted.render.id}")

    return _try(page, submit, _on_project(page, project_id))


@project_pages.get("/projects/{project_id}/renders/{render_id}/download")
def download_render(project_id: uuid.UUID, render_id: uuid.UUID, page: SignedInPage) -> Response:
    """A short-lived signed link to the video (the storage serves it, not this app)."""
    return page.redirect(_renders(page).download_url(page.user, render_id))


@project_pages.post("/projects/{project_id}/share-links")
def create_share_link(
    project_id: uuid.UUID,
    page: SignedInPage,
    days: Annotated[str, Form(max_length=3)] = "",
) -> Response:
    if days not in SHARE_LIFETIMES:
        return _project_page(
            page, project_id, error="Choose how long the link should work.", status_code=400
        )
    lifetime = SHARE_LIFETIMES[days]

    def create() -> Response:
        projects = _projects(page)
        now = page.request.app.state.clock()
        expires = now + timedelta(days=lifetime) if lifetime is not None else None
        _link, token = _sharing(page, projects).create_link(page.user, project_id, expires)
        url = page.request.url_for("shared_page", token=token).path
        # Shown this once: only the token's hash is kept.
        return _project_page(
            page, project_id, status_code=201, new_share_url=page.settings.public_url + url
        )

    return _try(page, create, _on_project(page, project_id))


@project_pages.post("/projects/{project_id}/share-links/{link_id}/revoke")
def revoke_share_link(project_id: uuid.UUID, link_id: uuid.UUID, page: SignedInPage) -> Response:
    def revoke() -> Response:
        _sharing(page, _projects(page)).revoke_link(page.user, project_id, link_id)
        return page.redirect(f"/projects/{project_id}?done=revoked")

    return _try(page, revoke, _on_project(page, project_id))


@project_pages.post("/projects/{project_id}/collaborators")
def invite_collaborator(
    project_id: uuid.UUID,
    page: SignedInPage,
    email: Annotated[str, Form(max_length=1000)] = "",
    role: Annotated[str, Form(max_length=20)] = "viewer",
) -> Response:
    def invite() -> Response:
        body = CollaboratorInvite(email=email, role=role)
        _sharing(page, _projects(page)).invite(page.user, project_id, body.email, body.role)
        return page.redirect(f"/projects/{project_id}?done=invited")

    def refused(**shown: Any) -> Response:
        return _project_page(page, project_id, invite_email=email, **shown)

    return _try(page, invite, refused)


@project_pages.post("/projects/{project_id}/collaborators/{collaborator_id}/role")
def change_role(
    project_id: uuid.UUID,
    collaborator_id: uuid.UUID,
    page: SignedInPage,
    role: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    def change() -> Response:
        if role not in set(Role):
            return _project_page(
                page, project_id, error="Choose viewer or editor.", status_code=400
            )
        sharing = _sharing(page, _projects(page))
        sharing.change_role(page.user, project_id, collaborator_id, Role(role))
        return page.redirect(f"/projects/{project_id}?done=role")

    return _try(page, change, _on_project(page, project_id))


@project_pages.post("/projects/{project_id}/collaborators/{collaborator_id}/remove")
def remove_collaborator(
    project_id: uuid.UUID, collaborator_id: uuid.UUID, page: SignedInPage
) -> Response:
    def remove() -> Response:
        _sharing(page, _projects(page)).remove(page.user, project_id, collaborator_id)
        return page.redirect(f"/projects/{project_id}?done=removed")

    return _try(page, remove, _on_project(page, project_id))


@project_pages.get("/projects/{project_id}/delete")
def confirm_delete(project_id: uuid.UUID, page: SignedInPage) -> Response:
    project = _projects(page).access(page.user, project_id, Action.MANAGE)
    return page.render("project_delete.html", nav="dashboard", projects=[project], bulk=False)


@project_pages.post("/projects/{project_id}/delete")
def delete_project(project_id: uuid.UUID, page: SignedInPage) -> Response:
    def delete() -> Response:
        _projects(page).delete(page.user, project_id)
        return page.redirect("/?deleted=1")

    return _try(page, delete, _on_project(page, project_id))


# Shared view --------------------------------------------------------------------------------


@project_pages.get("/s/{token}", name="shared_page")
def shared_page(token: str, request: Request, session: RequestSession) -> Response:
    """Anyone holding the link; revoked, expired and made-up links are the 404 page."""
    projects = project_service(request, session)
    project = sharing_service(request, projects).shared_project(token[:400])
    return render(
        request,
        "project_shared.html",
        project=project,
        thumbnail=projects.thumbnail_link(project) if project.thumbnail_key else None,
        settings_rows=_settings_rows(project),
        duration=duration,
    )
