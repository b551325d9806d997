"""What an operator types beside an action on a migration."""

from __future__ import annotations

from django import forms


class ActionForm(forms.Form):
    """Text the database can store (CharField refuses NUL), of a bounded length. Refused input is an error
    message on the page, never a server error."""

    confirmation = forms.CharField(required=False, strip=False, max_length=300)
    reason = forms.CharField(required=False, strip=False, max_length=2000)


class BakeStopForm(forms.Form):
    """An operator's own verdict on a running bake, with why."""

    outcome = forms.ChoiceField(label="Verdict", choices=[("pass", "pass"), ("fail", "fail")])
    reason = forms.CharField(label="Reason", max_length=2000)
