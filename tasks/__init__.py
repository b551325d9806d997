"""Celery tasks: thin entry points that load rows by id and call plain functions in `dashboard`.

Every module here is imported by the worker (see velaops/celery.py).
"""
