"""URLs of the sandbox's fault page; included under `sandbox/` by velaops/urls.py."""

from django.urls import path

from . import sandbox_views

urlpatterns = [
    path("<slug:slug>/faults/", sandbox_views.sandbox_faults, name="sandbox-faults"),
    path("<slug:slug>/faults/set", sandbox_views.sandbox_set_fault, name="sandbox-set-fault"),
]
