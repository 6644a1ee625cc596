"""HTTP routes, thin: parse and check the request, call the store, render the answer.

Every route runs inside `_endpoint`, which times it, authorizes it (`auth.authorize`, the one
seam for access control), and turns any exception into a JSON error (`error_responses`):
a bad request never takes the worker down and never sees a traceback.

Backend calls that can hang (every write; reads of a networked online store, one that
declares `Capabilities.remote`) run on a thread pool under `ServerSettings.backend_timeout_s`:
past it the request gets a 504 and the event loop goes on serving, while the stuck call
finishes (or fails) on its thread. Reads of an embedded store (LMDB) stay inline: they answer
from memory in microseconds, and a thread hop would cost more than the read.
"""

from __future__ import annotations

import asyncio
import functools
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any, TypeVar, cast

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from strato.access import service as service_resource
from strato.access import view as view_resource
from strato.errors import UserError
from strato.server import feast
from strato.server.auth import Authorizer, authorize
from strato.server.error_responses import HTTPError, error_response, status_of
from strato.server.freshness import Freshness
from strato.server.metrics import CONTENT_TYPE, ServerMetrics
from strato.server.settings import ServerSettings
from strato.store import FeatureStore
from strato.store.results import WriteTarget

_JSON = "application/json"
Handler = Callable[[Request], Awaitable[Response]]
T = TypeVar("T")
BACKEND_THREADS = 16
"""Backend calls one worker runs at once; more wait their turn (within the same timeout)."""


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type=_JSON)


def _listing(key: str, specs: list[dict[str, Any]]) -> Response:
    """A listing of definitions; their specs may hold durations and times, rendered as text."""
    return Response(orjson.dumps({key: specs}, default=str), media_type=_JSON)


class _Server:
    """The routes of one app, around the store its worker opened at startup."""

    def __init__(self, settings: ServerSettings, store: FeatureStore | None):
        self.settings = settings
        self.metrics = ServerMetrics()
        self.freshness = Freshness()
        self.authorizer = Authorizer(settings.auth)
        self._store = store
        self._remote: bool | None = None  # whether online reads go through `call` (known once open)
        self._calls = ThreadPoolExecutor(BACKEND_THREADS, thread_name_prefix="strato-backend")
        if store is not None:
            store.access.delegate()  # each request's own token is checked here, by `authorize`

    @property
    def store(self) -> FeatureStore:
        if self._store is None:
            raise HTTPError(503, "the feature store is not open yet")
        return self._store

    def open(self) -> None:
        if self._store is None:
            self._store = FeatureStore(self.settings.repo)
            self._store.access.delegate()

    def stop_calls(self) -> None:
        """Stop the backend pool: calls not started are dropped, stuck ones are left to end."""
        self._calls.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    async def call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`fn(*args, **kwargs)` on the backend pool, answered 504 past the backend timeout."""
        timeout = self.settings.backend_timeout_s
        future = asyncio.get_running_loop().run_in_executor(self._calls, functools.partial(fn, *args, **kwargs))
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise HTTPError(
                504,
                f"{what} did not finish within {timeout:g} s (server.backend_timeout_s): the backend is slow "
                "or stopped; the server keeps serving, retry later",
            ) from None

    def remote_reads(self, store: FeatureStore) -> bool:
        if self._remote is None:
            self._remote = type(store.online_store).capabilities.remote
        return self._remote

    def endpoint(self, name: str, fn: Handler) -> Handler:
        latency = self.metrics.latency.labels(name)
        errors = self.metrics.errors

        async def run(request: Request) -> Response:
            start = time.perf_counter()
            try:
                response = await fn(request)
            except Exception as exc:
                status, message = status_of(exc)
                errors.labels(name, str(status)).inc()
                response = error_response(status, message)
            latency.observe(time.perf_counter() - start)
            return response

        return run

    async def body(self, request: Request) -> dict[str, Any]:
        """The request's JSON object, refused early when too big or not JSON."""
        ctype = request.headers.get("content-type")
        if ctype is not None:
            media = ctype.split(";")[0].strip().lower()
            if media != _JSON and not media.endswith("+json"):
                raise HTTPError(415, f"content type {media!r} is not supported: send application/json")
        limit = self.settings.max_body_bytes
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            raise HTTPError(413, f"request body of {length} bytes is over the limit of {limit} bytes")
        raw = bytearray()
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > limit:
                raise HTTPError(413, f"request body is over the limit of {limit} bytes")
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise HTTPError(400, f"malformed JSON: {exc}") from None
        if not isinstance(data, dict):
            raise HTTPError(400, f"expected a JSON object, got {type(data).__name__}")
        return data

    # ------------------------------------------------------------------ routes

    async def get_online_features(self, request: Request) -> Response:
        start = time.perf_counter()
        body = await self.body(request)
        features, service_name, full_names = feast.feature_request(body)
        entities, n = feast.columns(body, "entities", self.settings.max_batch_rows)
        store = self.store
        wanted: Any
        if service_name is not None:
            authorize(request, "read", [service_resource(service_name)])
            wanted = store.get_feature_service(service_name)
        else:
            assert features is not None
            wanted = features
            # The store's own answer (views named, on-demand views and their sources): the SDK checks the same.
            authorize(request, "read", store.read_resources(features))
        try:
            if self.remote_reads(store):
                response = await self.call(
                    f"a read of the {store.config.online_type} online store",
                    store.get_online_features,
                    wanted,
                    entities,
                    full_feature_names=full_names,
                )
            else:
                response = store.get_online_features(wanted, entities, full_feature_names=full_names)
        except KeyError as exc:
            raise HTTPError(400, f"entities: missing join key {exc}") from None
        missing = [k for k in response.key_names if k not in entities]
        if missing:
            raise HTTPError(400, f"entities: missing join key(s) {missing}")
        data, counts = feast.render(response, entities)
        self.metrics.rows.inc(n)
        for status, count in counts.items():
            if count:
                self.metrics.statuses.labels(status).inc(count)
        answer = _json(data)
        if service_name is not None:
            self.metrics.service_latency.labels(service_name).observe(time.perf_counter() - start)
        return answer

    async def _write(
        self,
        request: Request,
        view: str,
        df: dict[str, list[Any]],
        n: int,
        to: WriteTarget,
        *,
        from_feast: bool = False,
    ) -> Response:
        authorize(request, "write", [view_resource(view)])
        import pyarrow as pa

        try:
            result = await self.call(f"the write to {view!r}", self._write_now, view, df, to, from_feast)
        except pa.ArrowException as exc:  # columns Arrow cannot type (mixed values): the client's data
            raise UserError(f"df: {' '.join(str(exc).splitlines())[:300]}") from None
        self.metrics.rows_written.inc(n)
        rows = getattr(result, "rows", n)
        return _json({"status": "ok", "feature_view": view, "rows": rows, "to": to})

    def _write_now(self, view: str, df: dict[str, list[Any]], to: WriteTarget, from_feast: bool) -> Any:
        """The write, then its freshness: on the backend pool, as one call. `from_feast`: the
        body came from Feast's remote online store, whose ``created`` column is mapped first."""
        store = self.store
        fv = store.get_feature_view(view)
        if from_feast and feast.FEAST_CREATED in df and feast.FEAST_CREATED not in fv.feature_names:
            df = feast.created_column(df, fv.created_timestamp_column)
        result = store.write(view, df, to=to)
        self.freshness.wrote(view, df.get(fv.timestamp_field))
        return result

    async def push(self, request: Request) -> Response:
        body = await self.body(request)
        view = body.get("feature_view") or body.get("push_source_name")
        if not isinstance(view, str):
            raise HTTPError(400, "give 'push_source_name' or 'feature_view': the name of the view to push to")
        to = body.get("to", "online")
        if to not in feast.WRITE_TARGETS:
            raise HTTPError(400, f"field 'to': {to!r}; expected one of {list(feast.WRITE_TARGETS)}")
        df, n = feast.columns(body, "df", self.settings.max_batch_rows)
        return await self._write(request, view, df, n, cast("WriteTarget", to))

    async def write_to_online_store(self, request: Request) -> Response:
        body = await self.body(request)
        view = feast.field(body, "feature_view_name", str, "the name of a feature view")
        df, n = feast.columns(body, "df", self.settings.max_batch_rows)
        return await self._write(request, view, df, n, "online", from_feast=True)

    async def health(self, request: Request) -> Response:
        authorize(request, "health")
        # The worker's pid tells a client (and the tests) which process answered.
        return _json({"status": "ok", "project": self.store.project, "worker": os.getpid()})

    async def metrics_text(self, request: Request) -> Response:
        authorize(request, "metrics")
        store = self.store
        try:
            views = await self.call("reading the views' freshness", self.freshness.views, store)
        except HTTPError:  # a slow history read: the rest of the metrics still answer (freshness as last read)
            self.metrics.freshness_timeouts.inc()
        else:
            self.metrics.set_freshness(views, time.time())
        return Response(self.metrics.render(), media_type=CONTENT_TYPE)

    async def list_entities(self, request: Request) -> Response:
        authorize(request, "list")
        return _listing("entities", [e.to_spec() for e in self.store.list_entities()])

    async def list_feature_views(self, request: Request) -> Response:
        authorize(request, "list")
        return _listing("feature_views", [v.to_spec() for v in self.store.list_feature_views()])

    async def list_on_demand_feature_views(self, request: Request) -> Response:
        authorize(request, "list")
        views = self.store.list_on_demand_feature_views()
        return _listing("on_demand_feature_views", [v.to_spec() for v in views])

    async def list_feature_services(self, request: Request) -> Response:
        authorize(request, "list")
        return _listing("feature_services", [s.to_spec() for s in self.store.list_feature_services()])


def create_app(settings: ServerSettings | None = None, store: FeatureStore | None = None) -> HotPath:
    """The ASGI app serving `store`, or the store of `settings.repo` opened at startup.

    Opening at startup (not at import) is what lets each uvicorn worker open the LMDB
    environment itself, after the fork.
    """
    server = _Server(settings or ServerSettings(), store)
    own_store = store is None

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        if own_store:
            server.open()
        try:
            yield
        finally:
            server.stop_calls()
            if own_store:
                server.close()

    def route(path: str, name: str, fn: Handler, method: str) -> Route:
        return Route(path, server.endpoint(name, fn), methods=[method])

    # Served by `HotPath`; also listed here, so Starlette answers other methods on it with 405.
    lookup = Route(
        "/get-online-features", server.endpoint("get-online-features", server.get_online_features), methods=["POST"]
    )
    routes = [
        lookup,
        route("/push", "push", server.push, "POST"),
        route("/write-to-online-store", "write-to-online-store", server.write_to_online_store, "POST"),
        route("/health", "health", server.health, "GET"),
        route("/metrics", "metrics", server.metrics_text, "GET"),
        route("/list/entities", "list-entities", server.list_entities, "GET"),
        route("/list/feature-views", "list-feature-views", server.list_feature_views, "GET"),
        route("/list/feature-services", "list-feature-services", server.list_feature_services, "GET"),
        route(
            "/list/on-demand-feature-views",
            "list-on-demand-feature-views",
            server.list_on_demand_feature_views,
            "GET",
        ),
    ]

    async def http_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return error_response(exc.status_code, str(exc.detail))

    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={HTTPException: http_error})
    app.state.server = server
    return HotPath(app, lookup.path, "POST", cast("Handler", lookup.endpoint))


class HotPath:
    """The ASGI app: one route straight to its endpoint, the rest through Starlette.

    A lookup is the request a feature server answers most, within a few hundred µs; for it,
    Starlette's middleware stack and route matching cost about a tenth of the request. The
    endpoint is the same one Starlette would run (`_Server.endpoint`: timing, auth, errors as
    JSON), so nothing about the answer changes; other paths, methods and the lifespan go to
    Starlette as before.
    """

    def __init__(self, app: Starlette, path: str, method: str, endpoint: Handler):
        self.app = app
        self.state = app.state
        self._path, self._method, self._endpoint = path, method, endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == self._path and scope["method"] == self._method:
            scope["app"] = self.app  # what `Request.app` (and so `authorize`) reads
            response = await self._endpoint(Request(scope, receive))
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def app_from_env() -> HotPath:
    """uvicorn's app factory for `strato serve`: each worker calls it in its own process."""
    return create_app(ServerSettings.from_env())
