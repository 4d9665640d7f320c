"""Who may open the inspector, and which requests may change something.

- **Token** (``serve --inspector``): every request under /inspector must carry
  the token, as ``?token=...`` once (it is then kept in an HttpOnly,
  SameSite=Strict cookie and the address is rewritten without it), as that
  cookie, or as ``Authorization: Bearer ...``. Tokens are compared in constant
  time and never logged. ``channelsync inspect`` listens on loopback only and
  needs no token unless one is given.
- **Host** (``channelsync inspect``): only requests addressed to a loopback
  name are answered, so a web page cannot reach the inspector through a DNS
  name that it makes resolve to 127.0.0.1.
- **Forms**: every POST carries the page's form key (random per process,
  embedded in the page), so another site open in the same browser cannot make
  it retry or discard anything.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

COOKIE = "channelsync_inspector"
LOOPBACK = frozenset({"127.0.0.1", "localhost", "[::1]", "::1"})


def new_token() -> str:
    """A token for ``serve --inspector`` when none is given (printed once)."""
    return secrets.token_urlsafe(24)


def same(given: str | None, wanted: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), wanted.encode())


class Guard:
    """The token, host and form checks of one inspector app."""

    def __init__(self, *, token: str | None, loopback_only: bool, cookie_path: str) -> None:
        self.token = token
        self.loopback_only = loopback_only
        self.cookie_path = cookie_path or "/"
        self.form_key = secrets.token_urlsafe(24)

    def _bearer(self, request: Request) -> str | None:
        header = request.headers.get("authorization", "")
        return header[7:] if header.lower().startswith("bearer ") else None

    async def check(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if self.loopback_only and request.url.hostname not in LOOPBACK:
            return PlainTextResponse("the inspector answers on loopback only", 421)
        if self.token is None:
            return await call_next(request)
        wanted = self.token
        offered = request.query_params.get("token")
        if offered is not None and same(offered, wanted):
            # Kept in a cookie; the token leaves the address bar and the history.
            rest = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
            target = request.url.path + ("?" + urlencode(rest) if rest else "")
            response: Response = RedirectResponse(target, 303)
            response.set_cookie(
                COOKIE, wanted, httponly=True, samesite="strict", path=self.cookie_path
            )
            return response
        if same(request.cookies.get(COOKIE), wanted) or same(self._bearer(request), wanted):
            return await call_next(request)
        return PlainTextResponse(
            "the inspector needs its token: open the address serve printed"
            " (…/inspector/?token=...) or send 'Authorization: Bearer <token>'",
            401,
        )

    def form_ok(self, given: object) -> bool:
        return isinstance(given, str) and same(given, self.form_key)


__all__ = ["COOKIE", "Guard", "new_token"]
