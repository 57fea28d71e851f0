"""The API application: routes, error handlers, body limit, health and readiness."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from sqlalchemy import text
from starlette.types import Receive, Scope, Send

from shared.config import Settings
from shared.db import build_engine, build_sessionmaker
from workers.api import carrier, order_shortcut, orders, preferences
from workers.api.callers import CallerCache
from workers.api.edge import RequestEdge, Shortcut
from workers.api.errors import error_response, install_error_handlers, responses
from workers.api.group_commit import OrderGroupCommit
from workers.api.metrics import install_api_metrics
from workers.api.pool import build_pool
from workers.dlq.console.app import build_console


class CirculateApi(FastAPI):
    """FastAPI, with a route that has a shortcut served by `RequestEdge` before the framework's
    own layers.

    Starlette runs a request through layers of its own around the app's middleware (its
    server-error layer; FastAPI's telemetry and body-limit layers), each a coroutine call per
    request and per message sent: about 6 % of the instructions of a `POST /v1/orders`
    (callgrind, the app driven in-process). A request for a route with a shortcut goes to the
    edge directly, as the framework would pass it on (`scope["app"]`, the app's `root_path`).
    Nothing is lost for it: the edge answers an unhandled error with the logged 500 in the error
    shape and enforces the body limit, the framework's body limit is not configured, and its
    telemetry, which this app does not configure, traces nothing. A request the shortcut declines
    goes on from the edge to the layers inside it (exception handlers, routes), as before.
    """

    _edge: RequestEdge | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            edge = self._edge or self._find_edge()
            if (scope["method"], scope["path"]) in edge.shortcuts:
                scope["app"] = self
                if self.root_path:
                    scope["root_path"] = self.root_path
                await edge(scope, receive, send)
                return
        await super().__call__(scope, receive, send)

    def _find_edge(self) -> RequestEdge:
        """The `RequestEdge` in the app's middleware stack (built here if it is not yet)."""
        if self.middleware_stack is None:
            self.middleware_stack = self.build_middleware_stack()
        layer: object = self.middleware_stack
        while not isinstance(layer, RequestEdge):
            layer = getattr(layer, "app", None)
            if layer is None:
                raise RuntimeError("the API app has no RequestEdge in its middleware")
        self._edge = layer
        return layer


def create_app(settings: Settings) -> FastAPI:
    """An app for `settings`; the engine and the async pool open at startup and close at shutdown."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = build_engine(settings)
        app.state.engine = engine
        app.state.sessions = build_sessionmaker(engine)
        app.state.pool = pool = build_pool(settings)
        await pool.open(wait=True)
        app.state.callers = CallerCache(pool, ttl_s=settings.api_token_cache_s)
        app.state.order_groups = OrderGroupCommit(pool)
        try:
            yield
        finally:
            await pool.close()
            engine.dispose()

    app = CirculateApi(
        title="Circulate enqueue API",
        version="1",
        description="Enqueue marketplace jobs (orders, cancellations) and read order state.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.include_router(orders.router)
    app.include_router(carrier.router)
    app.include_router(preferences.router)
    app.include_router(build_console(settings))
    install_error_handlers(app)
    install_api_metrics(app)
    # The one middleware: ids, body limit, control characters, the last-resort 500, log and metrics;
    # it serves the hot route itself when the request is well formed.
    hot_route = (order_shortcut.METHOD, order_shortcut.PATH)
    shortcuts: dict[tuple[str, str], Shortcut] = {hot_route: order_shortcut.place_order}
    app.add_middleware(RequestEdge, max_bytes=settings.api_max_body_bytes, shortcuts=shortcuts)

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        """The process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], responses=responses(503))
    def readyz() -> Any:
        """The database answers; a 503 takes this instance out of a load balancer."""
        try:
            with app.state.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception as error:
            return error_response(503, "unavailable", f"database: {str(error)[:200]}")
        return {"status": "ready"}

    return app


def app_from_environment() -> FastAPI:
    """The app for each of `circulate api --workers N`'s processes (uvicorn imports it by name).

    Each process is spawned afresh, so it sets up logging as the `circulate` command did. Each
    serves its own /metrics: a scrape sees the process that answered (run one process per
    container where every request must be counted by one scrape).
    """
    from shared.logs import configure_logging_from

    settings = Settings()
    configure_logging_from(settings)
    return create_app(settings)


def serve(settings: Settings, *, host: str, port: int, workers: int | None = None) -> None:
    """Serve the API with `workers` processes sharing one socket (default: `api_workers`).

    uvicorn picks uvloop and httptools (dependencies) over asyncio's loop and its pure-Python
    parser. No access log: RequestLog writes one line per request already.
    """
    import uvicorn

    # log_config=None: uvicorn's loggers propagate to the root handler of shared.logs (JSON,
    # redacted) instead of getting handlers of their own; access lines come from RequestLog.
    options: dict[str, Any] = {
        "host": host, "port": port, "log_level": "info", "access_log": False, "log_config": None,
        "loop": "auto", "http": "auto",
    }  # fmt: skip
    processes = workers or settings.api_workers
    if processes > 1:  # each process builds its own app from the same environment
        uvicorn.run("workers.api.app:app_from_environment", factory=True, workers=processes, **options)
    else:
        from shared.logs import buffer_lines

        buffer_lines(settings.log_buffer_ms / 1000)  # as app_from_environment does in each process
        uvicorn.run(create_app(settings), **options)
