"""Reading a request body within a size cap, before anything is verified (SEC-1).

The declared Content-Length is checked before a byte is read; the body is then
read as a stream with a running count, so a chunked body, or one longer than
its header said, is cut as soon as it passes the cap. What was read stays
bounded by the cap plus one chunk of the server's.
"""

from __future__ import annotations

from starlette.requests import Request


class BodyRefused(Exception):
    """A body that is not read whole. ``read``: the bytes read before the refusal;
    ``size``: the whole body's size as far as it is known."""

    status = 400

    def __init__(self, reason: str, read: bytes = b"", size: int = 0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.read = read
        self.size = size


class BodyTooLarge(BodyRefused):
    status = 413


async def read_bounded(request: Request, cap: int) -> bytes:
    """The body of ``request``, or `BodyRefused` once it is known to pass ``cap``
    bytes (or its Content-Length is not a number). A client that goes away
    raises starlette's ``ClientDisconnect``."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not (declared.isascii() and declared.isdigit()):
            raise BodyRefused("Content-Length is not a number")
        if int(declared) > cap:
            raise BodyTooLarge(
                f"body too large: its Content-Length is over the cap of {cap} bytes",
                size=int(declared),
            )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        chunks.append(chunk)
        size += len(chunk)
        if size > cap:
            raise BodyTooLarge(
                f"body too large: cut once over the cap of {cap} bytes",
                read=b"".join(chunks),
                size=size,
            )
    return b"".join(chunks)
