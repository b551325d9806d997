"""Environments: one AWS account and region holding the Vela resources, and their live state."""
