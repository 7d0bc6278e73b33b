"""Where users' files live: one ``Storage`` interface with a local-disk backend (HMAC-signed
links served by ``/files``) and an S3-compatible one (pre-signed URLs); ``factory`` picks one."""
