import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from dashboard import roles

pytestmark = pytest.mark.django_db


def test_creates_an_operator_with_the_password_from_the_environment(monkeypatch):
    monkeypatch.setenv("VELAOPS_PASSWORD", "correct-horse-battery")
    call_command("createuser", "ada", "--role", "operator")
    user = get_user_model().objects.get(username="ada")
    assert user.check_password("correct-horse-battery")
    assert roles.can_operate(user) and roles.can_view(user) and not roles.can_approve(user)
    assert not user.is_staff


def test_rerunning_updates_the_role_and_password(monkeypatch):
    monkeypatch.setenv("VELAOPS_PASSWORD", "correct-horse-battery")
    call_command("createuser", "ada", "--role", "operator")
    monkeypatch.setenv("VELAOPS_PASSWORD", "another-long-passphrase")
    call_command("createuser", "ada", "--role", "viewer")
    user = get_user_model().objects.get(username="ada")
    assert list(user.groups.values_list("name", flat=True)) == ["viewer"]
    assert user.check_password("another-long-passphrase")
    assert roles.can_view(user) and not roles.can_operate(user)


def test_superuser_role(monkeypatch):
    monkeypatch.setenv("VELAOPS_PASSWORD", "correct-horse-battery")
    call_command("createuser", "root", "--role", "superuser")
    user = get_user_model().objects.get(username="root")
    assert user.is_superuser and user.is_staff and roles.can_approve(user)


def test_weak_password_is_rejected_and_nothing_is_created(monkeypatch):
    monkeypatch.setenv("VELAOPS_PASSWORD", "123")
    with pytest.raises(CommandError, match="Password rejected"):
        call_command("createuser", "ada", "--role", "operator")
    assert not get_user_model().objects.filter(username="ada").exists()


def test_without_password_or_terminal_it_fails_clearly(monkeypatch):
    monkeypatch.delenv("VELAOPS_PASSWORD", raising=False)
    with pytest.raises(CommandError, match="Set VELAOPS_PASSWORD"):
        call_command("createuser", "ada", "--role", "operator")


def test_unknown_role_is_refused():
    with pytest.raises(CommandError, match="invalid choice"):
        call_command("createuser", "ada", "--role", "king")
