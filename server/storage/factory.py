"""The one place that turns ``NOTEFALL_STORAGE_URL`` into a ``Storage``."""

from __future__ import annotations

from notefall.server.kit.settings import Settings

from .local import LocalStorage
from .storage import Clock, Storage


def storage_from_settings(settings: Settings, clock: Clock) -> Storage:
    """``s3://bucket[/prefix]`` gives S3 storage, anything else (``file://``) local files.

    ``clock`` is "now" for local links; S3 counts its links' expiry itself. With
    ``NOTEFALL_CDN_BASE_URL`` either backend's links go to the CDN, which forwards them.
    """
    if settings.storage_s3_location is not None:
        # Imported here: boto3 takes a while to load, and local storage never needs it.
        from .s3 import S3Storage

        bucket, prefix = settings.storage_s3_location
        return S3Storage(
            bucket,
            prefix,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            link_origin=settings.cdn_base_url,
        )
    # Behind a CDN, links name the CDN's origin; it forwards them to our /files unchanged.
    return LocalStorage(
        settings.storage_dir,
        settings.secret_key.get_secret_value(),
        settings.cdn_base_url or settings.public_url,
        clock=clock,
        edge_cached=settings.cdn_base_url is not None,
    )
