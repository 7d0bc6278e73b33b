"""Your own account: profile name, avatar, notification and privacy settings, data export and
account deletion (the /api/v1/me routes that are not about signing in)."""
