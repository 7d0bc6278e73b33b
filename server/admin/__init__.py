"""Operator commands (``notefall admin ...``): accounts and tiers, run against the database."""
