"""Delivering what reports and alerts send: email and webhooks, retried and recorded, never to the inside."""
