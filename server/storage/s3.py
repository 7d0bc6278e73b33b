"""S3-compatible storage (AWS S3, MinIO, Cloudflare R2, ...) through boto3.

Objects live in one bucket under an optional prefix; links are real pre-signed URLs
(Signature Version 4), so S3 itself serves the file and refuses a tampered or expired
link. Their expiry is counted by S3 from the moment of signing, on real time: the app's
clock (which tests move) does not reach it. Credentials come from boto3's standard chain
(``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``, an instance or task role).
"""

from __future__ import annotations

import mimetypes
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, BinaryIO, cast
from urllib.parse import urlsplit, urlunsplit

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from .storage import (
    LINK_CACHE_CONTROL,
    Storage,
    StoredFile,
    check_key,
    check_link_lifetime,
    content_disposition,
)

_MISSING = {"404", "NoSuchKey", "NotFound"}


class S3Storage(Storage):
    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        link_origin: str | None = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        # A CDN's scheme://host[:port] that forwards links to the bucket's address as they
        # are (path and query unchanged, Host set to the bucket's): S3 checks the signature.
        self.link_origin = link_origin
        config = Config(
            signature_version="s3v4",
            connect_timeout=5,
            read_timeout=60,
            retries={"mode": "standard", "max_attempts": 3},
            # Services other than AWS (MinIO above all) rarely serve bucket subdomains.
            s3={"addressing_style": "path" if endpoint_url else "auto"},
        )
        # A session of its own: boto3's default one is shared and caches what it resolved.
        session = boto3.session.Session()
        self.client: Any = session.client(
            "s3", endpoint_url=endpoint_url, region_name=region, config=config
        )
        # /readyz must answer quickly even when S3 does not: one short attempt.
        probe_config = config.merge(
            Config(
                connect_timeout=2, read_timeout=2, retries={"mode": "standard", "max_attempts": 1}
            )
        )
        self._probe: Any = session.client(
            "s3", endpoint_url=endpoint_url, region_name=region, config=probe_config
        )

    def object_name(self, key: str) -> str:
        """The S3 object name of ``key``: under the prefix, if there is one."""
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def put(self, key: str, data: bytes | BinaryIO) -> None:
        name = self.object_name(key)
        # The type travels with the object, so a pre-signed link serves it as what it is.
        content_type = mimetypes.guess_type(key)[0] or "application/octet-stream"
        # A PUT (or a completed multipart upload) replaces the object at once: readers
        # see the old object or the new one, never part of it.
        if isinstance(data, bytes):
            self.client.put_object(
                Bucket=self.bucket, Key=name, Body=data, ContentType=content_type
            )
        else:
            self.client.upload_fileobj(
                data, self.bucket, name, ExtraArgs={"ContentType": content_type}
            )

    def get(self, key: str) -> bytes:
        with _missing_as_file_not_found(key):
            body = self.client.get_object(Bucket=self.bucket, Key=self.object_name(key))["Body"]
        try:
            return cast(bytes, body.read())
        finally:
            body.close()

    def open(self, key: str) -> StoredFile:
        with _missing_as_file_not_found(key):
            response = self.client.get_object(Bucket=self.bucket, Key=self.object_name(key))
        return cast(StoredFile, response["Body"])

    def delete(self, key: str) -> None:
        # S3 answers a delete of a missing object with success too.
        self.client.delete_object(Bucket=self.bucket, Key=self.object_name(key))

    def exists(self, key: str) -> bool:
        try:
            with _missing_as_file_not_found(key):
                self.client.head_object(Bucket=self.bucket, Key=self.object_name(key))
        except FileNotFoundError:
            return False
        return True

    def size(self, key: str) -> int:
        with _missing_as_file_not_found(key):
            head = self.client.head_object(Bucket=self.bucket, Key=self.object_name(key))
        return int(head["ContentLength"])

    def copy(self, source: str, destination: str) -> None:
        # Server-side: the bytes never pass through this process (objects up to 5 GB).
        with _missing_as_file_not_found(source):
            self.client.copy_object(
                Bucket=self.bucket,
                Key=self.object_name(destination),
                CopySource={"Bucket": self.bucket, "Key": self.object_name(source)},
                # A fresh whole-object checksum: a multipart original carries a per-part one
                # that does not describe the copy.
                ChecksumAlgorithm="CRC32",
            )

    def keys(self, folder: str) -> Iterator[str]:
        start = f"{self.object_name(folder)}/"
        skip = len(self.object_name("x")) - 1  # the prefix and its slash
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=start
        )
        for page in pages:
            for item in page.get("Contents", []):
                yield item["Key"][skip:]

    def signed_url(self, key: str, expires_in: timedelta, download_name: str | None = None) -> str:
        params = {
            "Bucket": self.bucket,
            "Key": self.object_name(key),
            # The link is the credential: keep the answer out of shared caches (as /files does).
            "ResponseCacheControl": LINK_CACHE_CONTROL,
        }
        if download_name is not None:
            params["ResponseContentDisposition"] = content_disposition(download_name)
        url = cast(
            str,
            self.client.generate_presigned_url(
                "get_object", Params=params, ExpiresIn=check_link_lifetime(expires_in)
            ),
        )
        if self.link_origin is None:
            return url
        # Only the origin changes: Signature Version 4 signs the path, the query and the
        # Host header, and the CDN sends the bucket's Host, so S3 accepts the link as signed.
        _, _, path, query, _ = urlsplit(url)
        scheme, netloc = urlsplit(self.link_origin)[:2]
        return urlunsplit((scheme, netloc, path, query, ""))

    def is_reachable(self) -> bool:
        try:
            self._probe.head_bucket(Bucket=self.bucket)
        except (BotoCoreError, ClientError):
            return False
        return True


@contextmanager
def _missing_as_file_not_found(key: str) -> Iterator[None]:
    """Turn S3's "no such key" into the ``FileNotFoundError`` the interface promises."""
    try:
        yield
    except ClientError as error:
        if _error_code(error) in _MISSING:
            raise FileNotFoundError(f"no stored file {key!r}") from None
        raise


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))
