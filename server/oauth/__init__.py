"""OAuth 2.0 authorization code with PKCE for the desktop app (RFC 6749, 7636, 8252)."""
