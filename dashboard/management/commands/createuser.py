"""Create or update a VelaOps user non-interactively: `createuser NAME --role ROLE`."""

from __future__ import annotations

import getpass
import os

from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from dashboard import roles

PASSWORD_VARIABLE = "VELAOPS_PASSWORD"


class Command(BaseCommand):
    help = f"Create or update a user with one role. The password comes from ${PASSWORD_VARIABLE}, else a prompt."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=roles.ROLES)
        parser.add_argument("--email", default="")
        parser.add_argument(
            "--keep-password",
            action="store_true",
            help="Leave an existing user's password unchanged (no prompt).",
        )

    def handle(self, username: str, role: str, email: str, keep_password: bool, **options):
        User = get_user_model()
        existing = User.objects.filter(username=username).first()
        password = None
        if not (keep_password and existing):
            password = self._password()
            try:
                password_validation.validate_password(password, existing or User(username=username, email=email))
            except ValidationError as exc:
                raise CommandError("Password rejected: " + " ".join(exc.messages)) from None
        with transaction.atomic():
            user = existing or User(username=username)
            if email:
                user.email = email
            user.is_superuser = user.is_staff = role == roles.SUPERUSER
            if password is not None:
                user.set_password(password)
            user.save()
            groups = [] if role == roles.SUPERUSER else [Group.objects.get(name=role)]
            user.groups.set(groups)
        verb = "Updated" if existing else "Created"
        self.stdout.write(self.style.SUCCESS(f"{verb} user {username!r} with role {role}."))

    def _password(self) -> str:
        password = os.environ.get(PASSWORD_VARIABLE)
        if password:
            return password
        if not self.stdin_is_interactive():
            raise CommandError(f"Set {PASSWORD_VARIABLE} or run the command in a terminal to be prompted.")
        first = getpass.getpass("Password: ")
        if first != getpass.getpass("Password (again): "):
            raise CommandError("The passwords did not match.")
        return first

    @staticmethod
    def stdin_is_interactive() -> bool:
        import sys

        return sys.stdin.isatty()
