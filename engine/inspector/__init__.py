"""The web inspector: entities, one entity's story, dead letters and stuck
commands, what-if, live (docs/inspector.md).

`build_inspector(backend, ...)` is the ASGI app; `Detached` reads a database
on its own (``channelsync inspect``), `Attached` a running engine's
(``serve --inspector``)."""

from engine.inspector.app import build_inspector, close_inspector
from engine.inspector.backend import ActionRefused, Attached, Backend, Detached
from engine.inspector.present import Presenter
from engine.inspector.security import new_token

__all__ = [
    "ActionRefused",
    "Attached",
    "Backend",
    "Detached",
    "Presenter",
    "build_inspector",
    "close_inspector",
    "new_token",
]
