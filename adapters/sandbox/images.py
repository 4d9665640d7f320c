"""Images for the sandboxes: a stand-in for Shoplazza's image CDN, and the
header reading TikTok's Upload Product Image does (format and pixel size).

The CDN answers any address with a small file whose format follows the file
name's extension (a ``.gif`` is a GIF) and whose pixel size is 800x800 unless
the query says ``?w=..&h=..``. Only the headers are real: enough for TikTok's
sandbox to tell a GIF from a JPEG and a thumbnail from a product photo.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import PurePosixPath
from urllib.parse import parse_qs, urlparse

import httpx

from adapters.tiktok_shop.images import CONTENT_TYPES, HttpImageSource

DEFAULT_SIDE = 800


def make_image(fmt: str, width: int, height: int) -> bytes:
    """A file of the format with the given pixel size in its header."""
    if fmt == "png":
        header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
        chunk = b"IHDR" + header
        ihdr = struct.pack(">I", len(header)) + chunk + struct.pack(">I", zlib.crc32(chunk))
        return b"\x89PNG\r\n\x1a\n" + ihdr + b"\x00\x00\x00\x00IEND\xaeB`\x82"
    if fmt == "gif":
        return b"GIF89a" + struct.pack("<HH", width, height) + b"\x00\x00\x00;"
    if fmt == "webp":
        vp8x = b"VP8X" + struct.pack("<I", 10) + b"\x00\x00\x00\x00"
        vp8x += (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
        return b"RIFF" + struct.pack("<I", 4 + len(vp8x)) + b"WEBP" + vp8x
    # JPEG: start of image, a baseline frame header (SOF0) with the size, end of image.
    sof = struct.pack(">BHHB", 8, height, width, 3) + b"\x01\x11\x00\x02\x11\x00\x03\x11\x00"
    return b"\xff\xd8" + b"\xff\xc0" + struct.pack(">H", len(sof) + 2) + sof + b"\xff\xd9"


def sniff(data: bytes) -> tuple[str, int, int] | None:
    """(format, width, height) from a file's header, or None if unreadable."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR":
        width, height = struct.unpack(">II", data[16:24])
        return "png", width, height
    if data[:6] in (b"GIF87a", b"GIF89a"):
        width, height = struct.unpack("<HH", data[6:10])
        return "gif", width, height
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and data[12:16] == b"VP8X":
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return "webp", width, height
    if data.startswith(b"\xff\xd8"):
        return _jpeg_size(data)
    return None


def _jpeg_size(data: bytes) -> tuple[str, int, int] | None:
    at = 2
    while at + 4 <= len(data) and data[at] == 0xFF:
        marker = data[at + 1]
        (length,) = struct.unpack(">H", data[at + 2 : at + 4])
        if 0xC0 <= marker <= 0xC3 and at + 9 <= len(data):
            height, width = struct.unpack(">HH", data[at + 5 : at + 9])
            return "jpeg", width, height
        at += 2 + length
    return None


class SandboxCdn:
    """Shoplazza's image CDN as the adapter sees it: an `ImageSource`."""

    def __init__(self, missing: set[str] | None = None) -> None:
        self.missing = missing if missing is not None else set()
        self.fetched: list[str] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        self.fetched.append(url)
        if url in self.missing:
            return httpx.Response(404)
        parsed = urlparse(url)
        suffix = PurePosixPath(parsed.path).suffix.lower()
        fmt = {".jpg": "jpeg", ".jpeg": "jpeg", ".png": "png", ".gif": "gif", ".webp": "webp"}
        query = parse_qs(parsed.query)
        width = int(query.get("w", [DEFAULT_SIDE])[0])
        height = int(query.get("h", [DEFAULT_SIDE])[0])
        return httpx.Response(
            200,
            content=make_image(fmt.get(suffix, "jpeg"), width, height),
            headers={"content-type": CONTENT_TYPES.get(suffix, "image/jpeg")},
        )

    def source(self) -> HttpImageSource:
        return HttpImageSource(httpx.AsyncClient(transport=httpx.MockTransport(self.handler)))
