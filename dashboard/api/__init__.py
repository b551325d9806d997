"""The JSON API under /api/v1/ (issue #17): django-ninja operations over the same services, access helpers
and rules the pages use. docs/api.md describes it; the OpenAPI document is served at /api/v1/openapi.json."""
