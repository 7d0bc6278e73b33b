"""Plumbing every server domain shares: settings, database, errors, mail, tokens, the app."""
