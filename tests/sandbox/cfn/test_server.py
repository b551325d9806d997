"""The sandbox's moto server entry point (infra/sandbox/cfn/server.py)."""

from __future__ import annotations

import os

from moto import backends

from infra.sandbox.cfn import server


def test_moto_s_backend_folders_are_listed_once_not_at_every_request(monkeypatch):
    listed = tuple(backends.list_of_moto_modules())
    monkeypatch.setattr(backends, "list_of_moto_modules", backends.list_of_moto_modules)  # put back afterwards
    server._static_module_list()

    def no_listing(path):
        raise AssertionError(f"listed {path} again")

    monkeypatch.setattr(os, "listdir", no_listing)
    assert tuple(backends.list_of_moto_modules()) == listed
    assert "dsql" in listed and "awslambda" in listed
