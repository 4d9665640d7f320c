"""The inspector's ASGI app (Starlette): pages, fragments, actions, the live feed.

`build_inspector(backend, ...)` returns the app; `channelsync inspect` serves
it on loopback, ``serve --inspector`` mounts it under /inspector behind a
token (`engine.inspector.security`). Pages are rendered on the server from
Jinja2 templates; the small script beside them (static/inspector.js) loads
diffs and counts, sends actions without a reload and follows the live feed.
Every page works without it, except the live feed and the diagram.
"""

from __future__ import annotations

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


def build_inspector(
    backend: Backend,
    *,
    token: str | None = None,
    loopback_only: bool = False,
    cookie_path: str = "/",
    live_interval: float = 0.5,
) -> Starlette:
    """The inspector over ``backend``; see the module's docstring."""
    env = templates()
    guard = Guard(token=token, loopback_only=loopback_only, cookie_path=cookie_path)
    row_template = env.get_template("_event_row.html")

    def render(request: Request, name: str, status: int = 200, **values: Any) -> HTMLResponse:
        base = request.scope.get("root_path", "")
        context = {
            "base": base,
            "form_key": guard.form_key,
            "held_by": backend.held_by(),
            "database": backend.path,
            "show_pii": backend.presenter.show_pii,
            "message": request.query_params.get("message"),
            **values,
        }
        return HTMLResponse(env.get_template(name).render(context), status)

    def guarded(handler: Handler) -> Handler:
        async def run(request: Request) -> Response:
            return await guard.check(request, handler)

        return run

    async def home(request: Request) -> Response:
        params = request.query_params
        filters = pages.EntityFilters(
            prefix=params.get("q", "").strip(),
            chart=params.get("chart", ""),
            state=params.get("state", "").strip(),
            updated_from=params.get("from", ""),
            updated_to=params.get("to", ""),
        )
        try:
            values = await pages.entities_page(backend, filters, params.get("after") or None)
        except ValueError as bad:
            return render(request, "error.html", 400, title="Bad search", error=str(bad))
        return render(request, "entities.html", **values)

    async def counts(request: Request) -> Response:
        params = request.query_params
        filters = pages.EntityFilters(
            prefix=params.get("q", "").strip(),
            chart=params.get("chart", ""),
            state=params.get("state", "").strip(),
            updated_from=params.get("from", ""),
            updated_to=params.get("to", ""),
        )
        try:
            found = await state_counts(
                backend.store, pages.chart_of_state(backend, filters).query(None)
            )
        except ValueError as bad:
            return HTMLResponse(f"<p>{_escape(str(bad))}</p>", 400)
        return render(request, "_counts.html", counts=found, filters=filters)

    async def entity(request: Request) -> Response:
        key = request.query_params.get("key", "")
        before = _int(request.query_params.get("before"))
        values = await pages.entity_page_data(backend, key, before) if key else None
        if values is None:
            return render(
                request, "error.html", 404, title="Not found", error=f"nothing is known of {key!r}"
            )
        return render(request, "entity.html", **values)

    async def data_diff(request: Request) -> Response:
        key = request.query_params.get("entity", "")
        seq = _int(request.query_params.get("seq")) or 0
        found = await event_diff(backend.store, backend.charts, key, seq)
        hidden = False
        changes = [
            {
                "path": c.path,
                "kind": c.kind,
                "before": as_json(backend.presenter.value(key, c.before, erased=hidden)),
                "after": as_json(backend.presenter.value(key, c.after, erased=hidden)),
            }
            for c in found.changes
        ]
        status = 200 if found.found else 404
        return render(request, "_diff.html", status, found=found.found, changes=changes, seq=seq)

    async def export(request: Request) -> Response:
        key = request.query_params.get("entity", "")
        buffer = io.BytesIO()
        # Personal data leaves only with --show-pii (then sealed, as in the log).
        await export_log(backend.store, buffer, entity=key, redact=not backend.presenter.show_pii)
        name = "".join(ch if ch.isalnum() else "-" for ch in key) or "entity"
        return Response(
            buffer.getvalue(),
            media_type="application/x-ndjson",
            headers={"Content-Disposition": f'attachment; filename="{name}.jsonl"'},
        )

    async def dead_letters(request: Request) -> Response:
        return render(request, "dead_letters.html", **await pages.dead_letters_page(backend))

    async def retry_letter(request: Request) -> Response:
        form = await request.form()
        if not guard.form_ok(form.get("form_key")):
            return _answer(request, False, "the form is stale: reload the page", 403)
        letter_id = int(request.path_params["letter_id"])
        try:
            result = await backend.retry_dead_letter(letter_id)
        except ActionRefused as refused:
            return _answer(request, False, f"dead letter {letter_id}: {refused}", 409)
        log.info("dead letter retried", dead_letter=letter_id, entity=result.entity)
        return _answer(request, True, f"dead letter {letter_id} {result.describe()}")

    async def command_action(request: Request) -> Response:
        form = await request.form()
        if not guard.form_ok(form.get("form_key")):
            return _answer(request, False, "the form is stale: reload the page", 403)
        command_id = int(request.path_params["command_id"])
        action = str(request.path_params["action"])
        reason = str(form.get("reason") or "").strip() or None
        try:
            view = await backend.command_action(command_id, action, "inspector", reason)
        except (ActionRefused, CommandActionRefused, CommandNotFound) as refused:
            return _answer(request, False, str(refused), 409)
        return _answer(request, True, f"command {command_id} ({view.type}): now {view.status}")

    async def what_if(request: Request) -> Response:
        return render(request, "whatif.html", **await what_if_page(backend, request))

    async def live(request: Request) -> Response:
        after = _int(request.query_params.get("after")) or 0
        only = request.query_params.get("entity") or None
        base = request.scope.get("root_path", "")
        stream = feed(
            request,
            backend,
            after,
            only,
            lambda row: row_template.render(row=row, base=base, with_entity=only is None),
            live_interval,
        )
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(stream, media_type="text/event-stream", headers=headers)

    routes = [
        Route("/", guarded(home)),
        Route("/counts", guarded(counts)),
        Route("/entity", guarded(entity)),
        Route("/diff", guarded(data_diff)),
        Route("/export", guarded(export)),
        Route("/dead-letters", guarded(dead_letters)),
        Route("/dead-letters/{letter_id:int}/retry", guarded(retry_letter), methods=["POST"]),
        Route("/commands/{command_id:int}/{action}", guarded(command_action), methods=["POST"]),
        Route("/what-if", guarded(what_if), methods=["GET", "POST"]),
        Route("/live", guarded(live)),
        Mount("/static", StaticFiles(packages=[("engine.inspector", "static")]), name="static"),
    ]
    return Starlette(routes=routes)


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text else None
    except ValueError:
        return None


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


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


__all__ = ["build_inspector"]
