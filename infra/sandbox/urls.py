"""URLs of the sandbox's fault page; included under `sandbox/` by velaops/urls.py."""

from django.urls import path

from infra.sandbox import views

urlpatterns = [
    path("<slug:slug>/faults/", views.sandbox_faults, name="sandbox-faults"),
    path("<slug:slug>/faults/set", views.sandbox_set_fault, name="sandbox-set-fault"),
]
