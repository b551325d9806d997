"""The `velaops` command: a pure HTTP client of VelaOps's JSON API (/api/v1/) for pipelines and terminals.

It imports nothing of the server (dashboard, tasks, velaops, infra; .importlinter holds that): what it can do is
exactly what the API lets its token's user do. docs/api.md, "CLI", has the commands and exit codes.
"""
