"""Where history tables live: a local folder or an object store (``s3://bucket/prefix``, …).

delta-rs writes and reads every URI it supports (``s3://``, ``s3a://``, ``gs://``, ``az://``,
``abfss://``, ``file://``) given the same storage options (``AWS_ENDPOINT_URL``,
``AWS_ACCESS_KEY_ID``…, exactly as delta-rs documents them). The other readers of the same
tables are told the same options here, in their own dialects:

* DuckDB cannot load its httpfs extension on machines without the extension repository (it
  downloads it), so it scans a snapshot's files through a pyarrow dataset on a pyarrow
  filesystem: Arrow's own S3 client for ``s3://`` (fast, in C++), delta-rs's object store
  (`deltalake.fs.DeltaStorageHandler`) for every other scheme;
* Spark reads through Hadoop's S3A connector (``hadoop-aws`` in ``spark.jars.packages``),
  configured per bucket at run time (`hadoop_conf`), so one session reads several stores.

The options come resolved from `strato.config` (``AWS_*`` environment variables, then
``offline.storage_options`` in strato.yaml, then ``STRATO_OFFLINE__STORAGE_OPTIONS__*``); no
module here reads the environment. Values are secrets: they never appear in a repr or message.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from strato.config import is_remote, normalize_storage_options, redacted, scheme
from strato.errors import ConfigError

__all__ = [
    "check_reachable",
    "dataset",
    "delete_tree",
    "filesystem",
    "hadoop_conf",
    "is_remote",
    "normalize_storage_options",
    "redacted",
    "scheme",
]

if TYPE_CHECKING:
    import pyarrow.dataset as pads
    import pyarrow.fs as pafs

    from strato.offline.base import TableSnapshot

#: Schemes read by Arrow's own S3 client (and Hadoop's S3A).
S3_SCHEMES = frozenset({"s3", "s3a"})


def _truthy(value: str | None) -> bool:
    return value is not None and value.strip().lower() in ("1", "true", "yes", "on")


def _endpoint(options: Mapping[str, str]) -> str | None:
    return options.get("AWS_ENDPOINT_URL") or options.get("AWS_ENDPOINT") or options.get("AWS_ENDPOINT_URL_S3")


def _region(options: Mapping[str, str]) -> str | None:
    return options.get("AWS_REGION") or options.get("AWS_DEFAULT_REGION")


def filesystem(uri: str, options: Mapping[str, str]) -> tuple[pafs.FileSystem, str]:
    """A pyarrow filesystem for the store `uri` lives in, and `uri` as a path inside it."""
    return _filesystem(scheme(uri), _bucket(uri), tuple(sorted(options.items()))), _inner(uri)


@functools.lru_cache(maxsize=16)
def _filesystem(kind: str, bucket: str, items: tuple[tuple[str, str], ...]) -> pafs.FileSystem:
    """One filesystem per (store, options), kept: Arrow's S3 client is costly to build."""
    import pyarrow.fs as pafs

    options = dict(items)
    if not kind:
        return pafs.LocalFileSystem()
    if kind in S3_SCHEMES:
        # A dead endpoint fails in seconds, not after the SDK's minutes of retries.
        kwargs: dict[str, Any] = {"connect_timeout": 5.0, "request_timeout": 60.0}
        if "AWS_ACCESS_KEY_ID" in options:
            kwargs["access_key"] = options["AWS_ACCESS_KEY_ID"]
            kwargs["secret_key"] = options.get("AWS_SECRET_ACCESS_KEY", "")
            if "AWS_SESSION_TOKEN" in options:
                kwargs["session_token"] = options["AWS_SESSION_TOKEN"]
        if _region(options):
            kwargs["region"] = _region(options)
        endpoint = _endpoint(options)
        if endpoint:
            parsed = urlparse(endpoint if "://" in endpoint else f"https://{endpoint}")
            kwargs["endpoint_override"] = parsed.netloc + parsed.path.rstrip("/")
            kwargs["scheme"] = parsed.scheme
        if _truthy(options.get("AWS_ALLOW_HTTP")) and "scheme" not in kwargs:
            kwargs["scheme"] = "http"
        if _truthy(options.get("AWS_VIRTUAL_HOSTED_STYLE_REQUEST")):
            kwargs["force_virtual_addressing"] = True
        return pafs.S3FileSystem(**kwargs)
    from deltalake.fs import DeltaStorageHandler

    # delta-rs's own object store: every scheme it writes, with the options it writes with.
    return pafs.PyFileSystem(DeltaStorageHandler(f"{kind}://{bucket}", dict(options)))


def delete_tree(uri: str, options: Mapping[str, str]) -> None:
    """Delete every object under `uri` (an object-store folder); nothing there is not an error.

    Through delta-rs's object store, not Arrow's S3 client: Arrow's bulk DeleteObjects sends
    no Content-MD5, which S3-compatible servers (s3proxy, older MinIO) still require.
    """
    import pyarrow.fs as pafs
    from deltalake.fs import DeltaStorageHandler

    parsed = urlparse(uri)
    fs = pafs.PyFileSystem(DeltaStorageHandler(f"{parsed.scheme}://{parsed.netloc}", dict(options)))
    key = parsed.path.strip("/")
    if fs.get_file_info(pafs.FileSelector(key, allow_not_found=True, recursive=False)):
        fs.delete_dir(key)


def _bucket(uri: str) -> str:
    return urlparse(uri).netloc if is_remote(uri) else ""


def _inner(uri: str) -> str:
    """`uri` as its filesystem names it: ``bucket/key`` for S3, ``key`` for delta-rs's, a path locally."""
    kind = scheme(uri)
    if not kind:
        return uri.removeprefix("file://")
    parsed = urlparse(uri)
    key = parsed.path.lstrip("/")
    return f"{parsed.netloc}/{key}" if kind in S3_SCHEMES else key


def dataset(snapshot: TableSnapshot) -> pads.Dataset:
    """The snapshot's exact files as a pyarrow dataset with its schema (absent columns read null)."""
    import pyarrow.dataset as pads

    if not is_remote(snapshot.path):
        return pads.dataset(list(snapshot.files), schema=snapshot.schema, format="parquet")
    fs, _ = filesystem(snapshot.path, snapshot.storage_options)
    paths = [_inner(f) for f in snapshot.files]
    return pads.dataset(paths, schema=snapshot.schema, format="parquet", filesystem=fs)


def hadoop_conf(uri: str, options: Mapping[str, str]) -> dict[str, str]:
    """Hadoop settings that let Spark read `uri`'s bucket with `options` (S3A, per bucket).

    Per bucket (``fs.s3a.bucket.<name>.*``), so one Spark session reads stores with different
    endpoints or credentials; ``s3://`` is mapped onto S3A as Delta's file URIs use it.
    """
    kind = scheme(uri)
    if kind not in S3_SCHEMES:
        if kind:
            raise ConfigError(
                f"offline engine spark reads object storage through S3A only (s3:// or s3a://), not {kind}://; "
                "configure its Hadoop connector through offline.conf, or use engine duckdb"
            )
        return {}
    prefix = f"fs.s3a.bucket.{_bucket(uri)}."
    conf = {"fs.s3.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem"}
    if "AWS_ACCESS_KEY_ID" in options:
        conf[prefix + "access.key"] = options["AWS_ACCESS_KEY_ID"]
        conf[prefix + "secret.key"] = options.get("AWS_SECRET_ACCESS_KEY", "")
        if "AWS_SESSION_TOKEN" in options:
            conf[prefix + "session.token"] = options["AWS_SESSION_TOKEN"]
            conf[prefix + "aws.credentials.provider"] = "org.apache.hadoop.fs.s3a.TemporaryAWSCredentialsProvider"
        else:
            conf[prefix + "aws.credentials.provider"] = "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider"
    if _region(options):
        conf[prefix + "endpoint.region"] = str(_region(options))
    endpoint = _endpoint(options)
    if endpoint:
        conf[prefix + "endpoint"] = endpoint
        if endpoint.startswith("http://"):
            conf[prefix + "connection.ssl.enabled"] = "false"
    conf[prefix + "path.style.access"] = (
        "false" if _truthy(options.get("AWS_VIRTUAL_HOSTED_STYLE_REQUEST")) or not endpoint else "true"
    )
    return conf


def check_reachable(uri: str, options: Mapping[str, str]) -> list[str]:
    """What is wrong with reaching `uri`'s bucket (empty when it lists): for `strato doctor`."""
    import pyarrow.fs as pafs

    if not is_remote(uri):
        return []
    try:
        fs, _ = filesystem(uri, options)
        bucket = _bucket(uri)
        where = bucket if scheme(uri) in S3_SCHEMES else ""
        info = fs.get_file_info(where) if where else None
        if info is not None and info.type == pafs.FileType.NotFound:
            return [f"bucket {bucket!r} of {uri} does not exist (or these credentials cannot see it)"]
        fs.get_file_info(pafs.FileSelector(_inner(uri), allow_not_found=True))
    except Exception as exc:  # any client error: one line, never a traceback
        text = " ".join(str(exc).split())[:300]
        return [f"object store {uri} is not reachable: {text}"]
    return []
