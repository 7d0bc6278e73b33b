"""Sharing a project: read-only public links and collaborators invited by email. Only the
owner shares (``Action.MANAGE`` in ``ProjectService.access``). Never commits."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from email.message import EmailMessage

from notefall.server.accounts.models import User
from notefall.server.kit.errors import NotFoundError
from notefall.server.kit.mail import Mailer, compose, send_after_commit
from notefall.server.kit.security import hash_token, issue_token, token_is_signed
from notefall.server.profile.models import UserProfile
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from .errors import AlreadyCollaboratorError, CannotInviteOwnerError, InvalidExpiryError
from .models import Collaborator, Project, Role, ShareLink
from .service import Action, ProjectService

SHARE_LINK_PURPOSE = "share-link"
_NO_LINK = "There is no shared project at this address; ask its owner for a new link."
_NO_COLLABORATOR = "This project has no collaborator with this id."


class SharingService:
    def __init__(
        self,
        projects: ProjectService,
        secret_key: str,
        public_url: str,
        outbox: Mailer,
        clock: Callable[[], datetime],
    ) -> None:
        self.projects = projects
        self.repository = projects.projects
        self.session = projects.session
        self._secret = secret_key
        self._public_url = public_url
        self.outbox = outbox
        self.clock = clock

    # Share links ---------------------------------------------------------------------------

    def create_link(
        self, user: User, project_id: uuid.UUID, expires_at: datetime | None
    ) -> tuple[ShareLink, str]:
        """A new link and its token (shown once: only its hash is kept)."""
        project = self.projects.access(user, project_id, Action.MANAGE)
        if expires_at is not None:
            if expires_at.tzinfo is None:
                raise InvalidExpiryError(
                    "Give expires_at with a time zone, e.g. 2027-01-31T12:00:00Z."
                )
            if expires_at <= self.clock():
                raise InvalidExpiryError("expires_at is in the past; choose a later time.")
        issued = issue_token(self._secret, SHARE_LINK_PURPOSE)
        link = self.repository.add_share_link(
            ShareLink(
                project_id=project.id,
                token_hash=issued.token_hash,
                created_at=self.clock(),
                expires_at=expires_at,
            )
        )
        return link, issued.token

    def links(self, user: User, project_id: uuid.UUID) -> list[ShareLink]:
        project = self.projects.access(user, project_id, Action.MANAGE)
        return self.repository.share_links(project.id)

    def revoke_link(self, user: User, project_id: uuid.UUID, link_id: uuid.UUID) -> None:
        project = self.projects.access(user, project_id, Action.MANAGE)
        link = self.repository.share_link(project.id, link_id)
        if link is None or link.revoked_at is not None:
            raise NotFoundError("This project has no share link with this id.")
        link.revoked_at = self.clock()
        self.session.flush()

    def shared_project(self, token: str) -> Project:
        """The project behind a live link; anything else is answered like a missing page."""
        # Forged or mistyped tokens are turned away without a query.
        if not token_is_signed(self._secret, SHARE_LINK_PURPOSE, token):
            raise NotFoundError(_NO_LINK)
        link = self.repository.share_link_by_hash(hash_token(token))
        if link is None or link.revoked_at is not None:
            raise NotFoundError(_NO_LINK)
        if link.expires_at is not None and link.expires_at <= self.clock():
            raise NotFoundError(_NO_LINK)
        project = self.repository.get(link.project_id)
        assert project is not None  # the link cascades with its project
        return project

    # Collaborators -------------------------------------------------------------------------

    def invite(self, user: User, project_id: uuid.UUID, email: str, role: Role) -> Collaborator:
        """Share with ``email`` (an account or not yet) and mail them once this commits."""
        project = self.projects.access(user, project_id, Action.MANAGE)
        email = email.strip().lower()
        if email == user.email:
            raise CannotInviteOwnerError("You own this project; invite someone else.")
        if self.repository.membership(project.id, email) is not None:
            raise AlreadyCollaboratorError(
                f"{email} is already a collaborator; change their role instead."
            )
        try:
            with self.session.begin_nested():
                collaborator = self.repository.add_collaborator(
                    Collaborator(
                        project_id=project.id, email=email, role=str(role), created_at=self.clock()
                    )
                )
        except IntegrityError:
            # The same invitation sent twice at once: the unique constraint settles it.
            raise AlreadyCollaboratorError(
                f"{email} is already a collaborator; change their role instead."
            ) from None
        message = self._invitation(user, project, email, role)
        send_after_commit(self.session, self.outbox, message)
        return collaborator

    def collaborators(self, user: User, project_id: uuid.UUID) -> list[Collaborator]:
        project = self.projects.access(user, project_id, Action.MANAGE)
        return self.repository.collaborators(project.id)

    def change_role(
        self, user: User, project_id: uuid.UUID, collaborator_id: uuid.UUID, role: Role
    ) -> Collaborator:
        collaborator = self._collaborator(user, project_id, collaborator_id)
        collaborator.role = str(role)
        self.session.flush()
        return collaborator

    def remove(self, user: User, project_id: uuid.UUID, collaborator_id: uuid.UUID) -> None:
        self.repository.delete_collaborator(self._collaborator(user, project_id, collaborator_id))

    def active_emails(self, emails: list[str]) -> set[str]:
        """Which of these addresses belong to a verified account (their share is in effect)."""
        if not emails:
            return set()
        rows = self.session.scalars(
            select(User.email).where(User.email.in_(emails), User.email_verified_at.is_not(None))
        )
        return set(rows)

    def shown_as_active(self, emails: list[str]) -> set[str]:
        """The addresses the owner may see as "active": accounts that turned off
        ``discoverable_by_email`` (privacy settings) show as "invited" whether or not an
        account exists, so inviting an address never tells who has an account."""
        active = self.active_emails(emails)
        if not active:
            return active
        hidden = self.session.scalars(
            select(User.email)
            .join(UserProfile, UserProfile.user_id == User.id)
            .where(User.email.in_(active), UserProfile.discoverable_by_email.is_(False))
        )
        return active - set(hidden)

    def _collaborator(
        self, user: User, project_id: uuid.UUID, collaborator_id: uuid.UUID
    ) -> Collaborator:
        project = self.projects.access(user, project_id, Action.MANAGE)
        collaborator = self.repository.collaborator(project.id, collaborator_id)
        if collaborator is None:
            raise NotFoundError(_NO_COLLABORATOR)
        return collaborator

    def _invitation(self, owner: User, project: Project, email: str, role: Role) -> EmailMessage:
        has_account = bool(self.active_emails([email]))
        can = "view" if role is Role.VIEWER else "view and edit"
        where = (
            f"Sign in at {self._public_url} to find it among your projects (shared with you)."
            if has_account
            else f"Sign up at {self._public_url} with this address ({email}) to open it; "
            "it will be waiting for you once you confirm the address."
        )
        body = (
            f"{owner.name} ({owner.email}) shared the Notefall project "
            f'"{project.name}" with you: you can {can} it.\n\n{where}\n\n'
            "If you did not expect this, you can ignore this mail.\n"
        )
        return compose(email, f'{owner.name} shared "{project.name}" with you', body)
