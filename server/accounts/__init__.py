"""Accounts: sign-up, email verification (sign-in, sessions and the rest follow)."""
