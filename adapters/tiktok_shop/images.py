"""Where the bytes of a Shoplazza image come from before they go to TikTok.

TikTok Shop never takes an outside image URL in a product: each image is
uploaded first (Upload Product Image, multipart) and the product names the
``uri`` TikTok hands back. The adapter downloads the Shoplazza ``src`` to
upload it; an `ImageSource` is that download, swappable in the sandboxes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Protocol
from urllib.parse import urlparse

import httpx

from engine.outbox import RetryLater

CONTENT_TYPES = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
    ".gif": "image/gif",
}


@dataclass(frozen=True)
class ImageFile:
    name: str
    content: bytes
    content_type: str


class ImageUnavailable(Exception):
    """The image's address answers, but not with the image: nothing to upload."""


class ImageSource(Protocol):
    async def fetch(self, src: str) -> ImageFile: ...


def file_name(src: str) -> str:
    return PurePosixPath(urlparse(src).path).name or "image"


class HttpImageSource:
    """Downloads the image from its address (Shoplazza's CDN)."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def fetch(self, src: str) -> ImageFile:
        try:
            response = await self.http.get(src, follow_redirects=True)
        except httpx.TransportError as error:
            raise RetryLater(f"image {src} could not be downloaded: {error}") from error
        if response.status_code == 429 or response.status_code >= 500:
            raise RetryLater(f"image {src} answered {response.status_code}")
        if response.status_code != 200 or not response.content:
            raise ImageUnavailable(f"image {src} answered {response.status_code}")
        name = file_name(src)
        content_type = response.headers.get("content-type") or CONTENT_TYPES.get(
            PurePosixPath(name).suffix.lower(), "application/octet-stream"
        )
        return ImageFile(name, response.content, content_type.split(";")[0])
