"""Where users' files live: one ``Storage`` interface, a local-disk backend and signed links."""
