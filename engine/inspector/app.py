"""The inspector's ASGI app (Starlette): pages, fragments, actions, the live feed.

`build_inspector(backend, ...)` returns the app; `channelsync inspect` serves
it on loopback, ``serve --inspector`` mounts it under /inspector behind a
token (`engine.inspector.security`). Pages are rendered on the server from
Jinja2 templates; the small script beside them (static/inspector.js) loads
diffs and counts, sends actions without a reload and follows the live feed.
Every page works without it, except the live feed and the diagram.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from engine.inspector import pages
from engine.inspector.backend import ActionRefused, Backend
from engine.inspector.diffs import event_diff
from engine.inspector.live import feed
from engine.inspector.present import as_json
from engine.inspector.security import Guard
from engine.inspector.whatif_page import what_if_page
from engine.log_reader import ReplayError
from engine.logfile import export_log
from engine.logs import get_logger
from engine.outbox_admin import CommandActionRefused, CommandNotFound
from engine.store.inspector_reads import state_counts

log = get_logger("channelsync.inspector")
Handler = Callable[[Request], Awaitable[Response]]


def templates() -> Environment:
    env = Environment(
        loader=PackageLoader("engine.inspector", "templates"),
        autoescape=select_autoescape(default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env


class _Pages:
    """The handlers of one inspector app, over one backend."""

    def __init__(self, backend: Backend, guard: Guard, live_interval: float) -> None:
        self.backend = backend
        self.guard = guard
        self.live_interval = live_interval
        self.env = templates()
        self.row_template = self.env.get_template("_event_row.html")
        # Set by `close_inspector`: live streams end at once (a server stops).
        self.closing = asyncio.Event()

    def render(self, request: Request, name: str, status: int = 200, **values: Any) -> Response:
        context = {
            "base": request.scope.get("root_path", ""),
            "form_key": self.guard.form_key,
            "held_by": self.backend.held_by(),
            "database": self.backend.path,
            "show_pii": self.backend.presenter.show_pii,
            "message": request.query_params.get("message"),
            **values,
        }
        return HTMLResponse(self.env.get_template(name).render(context), status)

    def guarded(self, handler: Handler) -> Handler:
        async def run(request: Request) -> Response:
            return await self.guard.check(request, handler)

        return run

    @staticmethod
    def filters(request: Request) -> pages.EntityFilters:
        params = request.query_params
        return pages.EntityFilters(
            prefix=params.get("q", "").strip(),
            chart=params.get("chart", ""),
            state=params.get("state", "").strip(),
            updated_from=params.get("from", ""),
            updated_to=params.get("to", ""),
        )

    async def home(self, request: Request) -> Response:
        after = request.query_params.get("after") or None
        try:
            values = await pages.entities_page(self.backend, self.filters(request), after)
        except ValueError as bad:
            return self.render(request, "error.html", 400, title="Bad search", error=str(bad))
        return self.render(request, "entities.html", **values)

    async def counts(self, request: Request) -> Response:
        filters = self.filters(request)
        try:
            query = pages.chart_of_state(self.backend, filters).query(None)
            found = await state_counts(self.backend.store, query)
        except ValueError as bad:
            return self.render(request, "error.html", 400, title="Bad search", error=str(bad))
        return self.render(request, "_counts.html", counts=found, filters=filters)

    async def entity(self, request: Request) -> Response:
        key = request.query_params.get("key", "")
        before = _int(request.query_params.get("before"))
        values = await pages.entity_page_data(self.backend, key, before) if key else None
        if values is None:
            error = f"nothing is known of {key!r}"
            return self.render(request, "error.html", 404, title="Not found", error=error)
        return self.render(request, "entity.html", **values)

    async def data_diff(self, request: Request) -> Response:
        key = request.query_params.get("entity", "")
        seq = _int(request.query_params.get("seq")) or 0
        backend = self.backend
        try:
            found = await event_diff(backend.store, backend.charts, key, seq)
        except ReplayError as error:  # a chart (version) that logged it is not installed
            return self.render(request, "_diff.html", 409, found=True, changes=[], error=str(error))
        changes = [
            {
                "path": c.path,
                "kind": c.kind,
                "before": as_json(backend.presenter.value(key, c.before)),
                "after": as_json(backend.presenter.value(key, c.after)),
            }
            for c in found.changes
        ]
        status = 200 if found.found else 404
        return self.render(
            request, "_diff.html", status, found=found.found, changes=changes, seq=seq
        )

    async def export(self, request: Request) -> Response:
        key = request.query_params.get("entity", "")
        buffer = io.BytesIO()
        # Personal data leaves only with --show-pii (then sealed, as in the log).
        redact = not self.backend.presenter.show_pii
        await export_log(self.backend.store, buffer, entity=key, redact=redact)
        name = "".join(ch if ch.isalnum() else "-" for ch in key) or "entity"
        return Response(
            buffer.getvalue(),
            media_type="application/x-ndjson",
            headers={"Content-Disposition": f'attachment; filename="{name}.jsonl"'},
        )

    async def dead_letters(self, request: Request) -> Response:
        values = await pages.dead_letters_page(self.backend)
        return self.render(request, "dead_letters.html", **values)

    async def letter_action(self, request: Request) -> Response:
        """``retry`` (offer its input again) or ``discard`` (with a reason) a dead letter."""
        form = await request.form()
        if not self.guard.form_ok(form.get("form_key")):
            return _answer(request, False, "the form is stale: reload the page", 403)
        letter_id = int(request.path_params["letter_id"])
        action = str(request.path_params["action"])
        reason = str(form.get("reason") or "").strip() or None
        try:
            if action == "discard":
                await self.backend.discard_dead_letter(letter_id, "inspector", reason)
                return _answer(request, True, f"dead letter {letter_id} discarded")
            if action != "retry":
                raise ActionRefused(f"unknown action {action!r}")
            result = await self.backend.retry_dead_letter(letter_id)
        except ActionRefused as refused:
            return _answer(request, False, f"dead letter {letter_id}: {refused}", 409)
        log.info("dead letter retried", dead_letter=letter_id, entity=result.entity)
        return _answer(request, True, f"dead letter {letter_id} {result.describe()}")

    async def command_action(self, request: Request) -> Response:
        form = await request.form()
        if not self.guard.form_ok(form.get("form_key")):
            return _answer(request, False, "the form is stale: reload the page", 403)
        command_id = int(request.path_params["command_id"])
        action = str(request.path_params["action"])
        reason = str(form.get("reason") or "").strip() or None
        try:
            view = await self.backend.command_action(command_id, action, "inspector", reason)
        except (ActionRefused, CommandActionRefused, CommandNotFound) as refused:
            return _answer(request, False, str(refused), 409)
        return _answer(request, True, f"command {command_id} ({view.type}): now {view.status}")

    async def what_if(self, request: Request) -> Response:
        return self.render(request, "whatif.html", **await what_if_page(self.backend, request))

    async def live(self, request: Request) -> Response:
        # A reconnecting browser says what it got last: resume after it.
        resumed = _int(request.headers.get("last-event-id")) or 0
        after = max(_int(request.query_params.get("after")) or 0, resumed)
        only = request.query_params.get("entity") or None
        base = request.scope.get("root_path", "")

        def row(values: dict[str, Any]) -> str:
            return self.row_template.render(row=values, base=base, with_entity=only is None)

        stream = feed(request, self.backend, after, only, row, self.live_interval, self.closing)
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(stream, media_type="text/event-stream", headers=headers)


def build_inspector(
    backend: Backend,
    *,
    token: str | None = None,
    loopback_only: bool = False,
    cookie_path: str = "/",
    live_interval: float = 0.5,
) -> Starlette:
    """The inspector over ``backend``; see the module's docstring."""
    guard = Guard(token=token, loopback_only=loopback_only, cookie_path=cookie_path)
    app = _Pages(backend, guard, live_interval)
    g = app.guarded
    routes = [
        Route("/", g(app.home)),
        Route("/counts", g(app.counts)),
        Route("/entity", g(app.entity)),
        Route("/diff", g(app.data_diff)),
        Route("/export", g(app.export)),
        Route("/dead-letters", g(app.dead_letters)),
        Route("/dead-letters/{letter_id:int}/{action}", g(app.letter_action), methods=["POST"]),
        Route("/commands/{command_id:int}/{action}", g(app.command_action), methods=["POST"]),
        Route("/what-if", g(app.what_if), methods=["GET", "POST"]),
        Route("/live", g(app.live)),
        Mount("/static", StaticFiles(packages=[("engine.inspector", "static")]), name="static"),
    ]
    inspector = Starlette(routes=routes)
    inspector.state.closing = app.closing
    return inspector


def close_inspector(inspector: Starlette) -> None:
    """End the inspector's live streams, so the server it is in can stop."""
    inspector.state.closing.set()


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text else None
    except ValueError:
        return None


def _answer(request: Request, ok: bool, message: str, status: int = 200) -> Response:
    """JSON for the page's script; for a plain form, back to the page it came
    from (its own query kept) with the message."""
    if "application/json" in request.headers.get("accept", ""):
        return JSONResponse({"ok": ok, "message": message}, status)
    back = urlsplit(request.headers.get("referer") or "")
    root = request.scope.get("root_path", "")
    path = back.path if back.path.startswith(root or "/") else f"{root}/dead-letters"
    kept = [(k, v) for k, v in parse_qsl(back.query) if k != "message"]
    return RedirectResponse(f"{path}?{urlencode([*kept, ('message', message)])}", 303)


__all__ = ["build_inspector", "close_inspector"]
