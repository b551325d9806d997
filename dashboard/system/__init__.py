"""VelaOps's own health: /healthz and the worker heartbeat it reads."""
