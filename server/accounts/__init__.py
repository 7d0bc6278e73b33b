"""Accounts: sign-up, sign-in and sessions, passwords, two-factor, email change, tokens."""
