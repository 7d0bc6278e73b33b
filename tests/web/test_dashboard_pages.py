"""The dashboard and project pages in a real chromium against a live stack: the empty
dashboard's call to action, creating a project from a MIDI file (and a file the engine
refuses), filters and the bulk bar with the keyboard, the project page with its share link
opened by a signed-out visitor, a viewer's read-only page, and the friendly 404. Every page
is looked at (phone and desktop screenshots, axe) on the way."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.support.browser import look
from tests.support.render_farm import tiny_midi

from .conftest import Web

pytestmark = pytest.mark.xdist_group("browser")


def test_a_new_user_creates_a_first_project_from_the_empty_dashboard(web: Web):
    account = web.new_account()
    page = account.page
    page.goto("/")
    expect(page.get_by_role("heading", name="No projects yet")).to_be_visible()
    look(page, "dashboard-empty")

    page.get_by_role("link", name="New project").first.click()
    expect(page.get_by_role("heading", name="New project")).to_be_visible()
    look(page, "project-new")
    page.get_by_label("Name").fill("Broken song")
    page.get_by_label("MIDI file").set_input_files(
        {"name": "broken.mid", "mimeType": "audio/midi", "buffer": b"no MIDI in here"}
    )
    page.get_by_role("button", name="Create project").click()
    expect(page.get_by_role("alert")).to_contain_text("MIDI file:")
    expect(page.get_by_label("Name")).to_have_value("Broken song")
    look(page, "project-new-refused")

    page.get_by_label("Name").fill("Gymnopédie")
    page.get_by_label("MIDI file").set_input_files(
        {"name": "song.mid", "mimeType": "audio/midi", "buffer": tiny_midi(8)}
    )
    page.get_by_label("Tags (optional)").fill("satie, calm")
    page.get_by_label("Tags (optional)").press("Enter")  # the keyboard submits the form
    expect(page.get_by_role("status")).to_have_text("Project created.")
    expect(page.get_by_role("heading", name="Gymnopédie", level=1)).to_be_visible()
    hero = page.locator(".project-hero img")
    expect(hero).to_be_visible()
    assert hero.evaluate("img => img.complete && img.naturalWidth") == 640  # the engine's still
    look(page, "project")

    page.get_by_role("link", name="Dashboard").click()
    expect(page.locator(".project-card")).to_have_count(1)
    expect(page.locator(".project-card dl")).to_contain_text("0:08")
    look(page, "dashboard-one-project")


def test_filters_and_the_bulk_bar_work_with_the_keyboard(web: Web):
    account = web.new_account()
    for name in ("Prelude", "Fugue", "Chorale"):
        account.create_project(name)
    page = account.page
    page.goto("/")
    expect(page.locator(".project-card")).to_have_count(3)
    look(page, "dashboard")

    # Tab from the top: the skip link comes first and jumps to the content.
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("main#content")).to_be_focused()

    page.get_by_label("Search").fill("fugue")
    page.get_by_label("Search").press("Enter")
    expect(page.locator(".project-card")).to_have_count(1)
    page.get_by_label("Sort").select_option("name")  # applies at once
    expect(page).to_have_url(re.compile(r"sort=name"))
    page.goto("/?sort=name")

    bulk = page.get_by_role("button", name="Add tag")
    expect(bulk).to_be_disabled()  # nothing selected yet
    page.get_by_label("Select Chorale").check()
    page.get_by_label("Select Fugue").focus()
    page.keyboard.press("Space")
    expect(page.locator("#selection-count")).to_have_text("2 selected")
    page.get_by_role("textbox", name="Tag").fill("baroque")
    bulk.click()
    expect(page.get_by_role("status")).to_have_text("Tags changed on 2 projects.")
    page.get_by_label("baroque").check()  # the tag filter applies as it changes
    expect(page.locator(".project-card")).to_have_count(2)

    page.goto("/")
    page.get_by_label("Select all").check()
    expect(page.locator("#selection-count")).to_have_text("3 selected")
    page.get_by_role("button", name="Delete…").click()
    expect(page.get_by_role("heading", name="Delete 3 projects?")).to_be_visible()
    look(page, "projects-delete")
    page.get_by_role("button", name="Delete for good").click()
    expect(page.get_by_role("status")).to_have_text("3 projects deleted.")
    expect(page.get_by_role("heading", name="No projects yet")).to_be_visible()


def test_a_share_link_opens_for_a_visitor_until_it_is_revoked(web: Web):
    account = web.new_account()
    project_id = account.create_project("Clair de lune")
    page = account.page
    page.goto(f"/projects/{project_id}")
    page.get_by_label("Link works for").select_option("7")
    page.get_by_role("button", name="Create share link").click()
    link = page.locator("#new-share-url")
    expect(link).to_have_value(re.compile(r"/s/"))
    look(page, "project-share-link")
    shared_url = link.input_value()

    visitor = web.page()
    visitor.goto(shared_url)
    expect(visitor.get_by_role("heading", name="Clair de lune")).to_be_visible()
    look(visitor, "shared-project")

    page.goto(f"/projects/{project_id}")
    page.get_by_role("button", name="Revoke").click()
    expect(page.get_by_role("status")).to_contain_text("Share link revoked")
    visitor.goto(shared_url)
    expect(visitor.get_by_role("heading", name="Page not found")).to_be_visible()
    expect(visitor.get_by_role("alert")).to_contain_text("ask its owner for a new link")
    look(visitor, "shared-project-revoked")


def test_a_viewer_sees_the_project_without_its_controls(web: Web):
    owner = web.new_account(name="Erik Satie")
    project_id = owner.create_project("Gnossienne")
    viewer = web.new_account(name="Clara Schumann")
    invite = {"email": viewer.email, "role": "viewer"}
    shared = owner.api("POST", f"/api/v1/projects/{project_id}/collaborators", data=invite)
    assert shared.status == 201, shared.text()

    owner.page.goto(f"/projects/{project_id}")
    expect(owner.page.get_by_text(viewer.email, exact=True)).to_be_visible()
    look(owner.page, "project-with-collaborator")

    page = viewer.page
    page.goto("/?shown=with_me")
    page.get_by_role("link", name="Gnossienne").click()
    expect(page.get_by_text("Shared with you · viewer")).to_be_visible()
    expect(page.get_by_role("button", name="Render the video")).to_have_count(0)
    expect(page.get_by_role("button", name="Save")).to_have_count(0)
    look(page, "project-viewer")


def test_an_unknown_address_is_a_friendly_page(web: Web):
    account = web.new_account()
    page = account.page
    page.goto("/projects/00000000-0000-0000-0000-000000000000")
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    look(page, "not-found")
    page.get_by_role("link", name="Go to your dashboard").click()
    expect(page).to_have_url(re.compile(r"/$"))


def test_a_long_name_without_spaces_wraps_instead_of_widening_the_page(web: Web):
    account = web.new_account()
    name = "Ü" * 200  # the longest name allowed, one unbreakable word
    project_id = account.create_project(name)
    page = account.page
    page.goto(f"/projects/{project_id}")
    expect(page.get_by_role("heading", name=name)).to_be_visible()
    look(page, "project-long-name")  # fails when the page is wider than the phone
    page.goto("/")
    look(page, "dashboard-long-name")
