"""Personal API tokens: each user creates, lists and revokes their own on one page (docs/api.md)."""
