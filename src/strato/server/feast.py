"""Feast's HTTP shapes: parse a get-online-features / push / write request, render the answer.

The response is built from `OnlineResponse.serving_parts` (the same struct unpack per value
as `to_dict`) into plain lists that orjson serializes in one call (the status and time lists a
view's features share pre-serialized once, as `orjson.Fragment`): no per-value encoder, and
a float64 stays a JSON float (``8.0``), which Feast's remote client needs to rebuild types.
Results follow ``metadata.feature_names``: join keys first, then the features in request order.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Final

import orjson

from strato.online.response import OnlineResponse
from strato.server.error_responses import HTTPError

PRESENT: Final = "PRESENT"
NULL_VALUE: Final = "NULL_VALUE"
NOT_FOUND: Final = "NOT_FOUND"
OUTSIDE_MAX_AGE: Final = "OUTSIDE_MAX_AGE"
"""Strato's EXPIRED, in Feast's words."""
_EPOCH: Final = "1970-01-01T00:00:00Z"
WRITE_TARGETS: Final = ("online", "offline", "online_and_offline")


def _iso(us: int) -> str:
    """Protobuf's JSON form of a Timestamp, as Feast's server sends event times."""
    seconds, micros = divmod(us, 1_000_000)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return f"{text}.{micros:06d}Z" if micros else f"{text}Z"


FEAST_CREATED: Final = "created"
"""The column of created timestamps Feast's remote store sends with each write."""


def created_column(df: dict[str, list[Any]], declared: str | None) -> dict[str, list[Any]]:
    """`df` with Feast's ``created`` column made the view's own, or dropped.

    Feast's remote online store always sends ``created`` (null where its source declares no
    created-timestamp column). Where the view declares one, the column takes its name (so the
    Feast source must declare one too, or the write is refused naming the null created time);
    where not, it goes, and ties are broken by Strato's write order (design rule 10), as for
    any write to such a view.
    """
    if declared == FEAST_CREATED:
        return df
    df = dict(df)
    created = df.pop(FEAST_CREATED)
    if declared is not None and declared not in df:
        df[declared] = created  # nulls too: the write then says the view needs its created times
    return df


def field(body: Mapping[str, Any], name: str, kind: type | tuple[type, ...], what: str) -> Any:
    value = body.get(name)
    if value is None:
        raise HTTPError(400, f"missing field {name!r}: expected {what}")
    if not isinstance(value, kind):
        raise HTTPError(400, f"field {name!r}: expected {what}, got {type(value).__name__}")
    return value


def columns(body: Mapping[str, Any], name: str, max_rows: int) -> tuple[dict[str, list[Any]], int]:
    """A ``{column: [values]}`` field, checked: lists of one length, within the batch limit."""
    data = field(body, name, dict, "an object of columns {name: [values]}")
    lengths: dict[str, int] = {}
    for col, values in data.items():
        if not isinstance(values, list):
            raise HTTPError(400, f"{name}.{col}: expected a list of values, got {type(values).__name__}")
        lengths[col] = len(values)
    if not lengths:
        raise HTTPError(400, f"field {name!r} has no columns")
    if len(set(lengths.values())) > 1:
        raise HTTPError(400, f"field {name!r}: columns have different lengths {lengths}")
    n = next(iter(lengths.values()))
    if n > max_rows:
        raise HTTPError(413, f"field {name!r}: {n} rows is over the limit of {max_rows} rows per request")
    return data, n


def _all_strings(items: list[Any]) -> bool:
    """Whether every item is a str: `str.join` checks that in C, a generator of `isinstance`
    costs a Python step per feature of every request."""
    try:
        "".join(items)
    except TypeError:
        return False
    return True


def feature_request(body: Mapping[str, Any]) -> tuple[list[str] | None, str | None, bool]:
    """(feature refs, feature service name, full_feature_names) of a get-online-features body."""
    features = body.get("features")
    service = body.get("feature_service")
    if features is None and service is None:
        raise HTTPError(400, "give 'features' (a list of 'view:feature') or 'feature_service' (a name)")
    if features is not None and service is not None:
        raise HTTPError(400, "give either 'features' or 'feature_service', not both")
    if features is not None:
        if not isinstance(features, list) or not _all_strings(features):
            raise HTTPError(400, "field 'features': expected a list of 'view:feature' strings")
        if not features:
            raise HTTPError(400, "field 'features' is empty")
    if service is not None and not isinstance(service, str):
        raise HTTPError(400, f"field 'feature_service': expected a name, got {type(service).__name__}")
    full = body.get("full_feature_names", False)
    if not isinstance(full, bool):
        raise HTTPError(400, f"field 'full_feature_names': expected true or false, got {full!r}")
    return features, service, full


def render(response: OnlineResponse, entities: Mapping[str, list[Any]]) -> tuple[dict[str, Any], dict[str, int]]:
    """Feast's response body, and how many values got each status (for the metrics)."""
    n = len(response)
    names: list[str] = []
    results: list[dict[str, Any]] = []
    counts = {PRESENT: 0, NULL_VALUE: 0, NOT_FOUND: 0, OUTSIDE_MAX_AGE: 0}
    key_statuses = [PRESENT] * n
    key_times = [_EPOCH] * n
    for key in response.key_names:
        names.append(key)
        results.append({"values": entities[key], "statuses": key_statuses, "event_timestamps": key_times})
    iso_cache: dict[int, str] = {}
    for output_names, value_columns, times, threshold in response.serving_parts():
        row_status: list[str] = []
        row_times: list[str] = []
        for t in times:
            if t is None:
                row_status.append(NOT_FOUND)
                row_times.append(_EPOCH)
                continue
            row_status.append(OUTSIDE_MAX_AGE if threshold is not None and t < threshold else PRESENT)
            text = iso_cache.get(t)
            if text is None:
                text = iso_cache[t] = _iso(t)
            row_times.append(text)
        width = len(output_names)
        for s in row_status:
            counts[s] += width
        names.extend(output_names)
        # One dict per feature, sharing the view's status and time lists, serialized once
        # (`orjson.Fragment`: written as they are into the body); only columns with nulls get
        # statuses of their own (NULL_VALUE where a present row has no value).
        shared_status, shared_times = (
            orjson.Fragment(orjson.dumps(row_status)),
            orjson.Fragment(orjson.dumps(row_times)),
        )
        part = [
            {"values": values, "statuses": shared_status, "event_timestamps": shared_times} for values in value_columns
        ]
        for result in part:
            values = result["values"]
            if None in values:
                statuses = [
                    NULL_VALUE if v is None and s == PRESENT else s for v, s in zip(values, row_status, strict=True)
                ]
                nulls = statuses.count(NULL_VALUE)
                counts[NULL_VALUE] += nulls
                counts[PRESENT] -= nulls
                result["statuses"] = statuses
        results.extend(part)
    return {"metadata": {"feature_names": names}, "results": results}, counts
