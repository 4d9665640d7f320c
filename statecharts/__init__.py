"""The TikTok Shop channel: charts (YAML beside this file) and the rules they name.

A chart package for the engine: ``chart_package()`` is registered under the
``channelsync.charts`` entry point as ``tiktok_shop``.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.chartset import ChartPackage
    from engine.rules import Rules

CHART_DIR = Path(__file__).parent


def build_rules() -> Rules:
    from engine.rules import Rules
    from statecharts import connection, listing, order

    rules = Rules()
    connection.register(rules)
    listing.register(rules)
    order.register(rules)
    return rules


@functools.cache
def _rules() -> Rules:
    return build_rules()


def __getattr__(name: str) -> Rules:
    # ``RULES`` is built on first use: every ``statecharts.*`` module (the
    # command line's included) imports this package, and the rules import the
    # whole engine (docs/performance.md, "Issue 18").
    if name == "RULES":
        return _rules()
    raise AttributeError(f"module 'statecharts' has no attribute {name!r}")


def chart_package() -> ChartPackage:
    from engine.chartset import ChartPackage

    return ChartPackage(
        "tiktok_shop",
        [
            CHART_DIR / "shop_connection.yaml",
            CHART_DIR / "product_listing.yaml",
            CHART_DIR / "order.yaml",
            # Versions still installed for entities pinned to them (ENG-9).
            CHART_DIR / "versions" / "shop_connection_v1.yaml",
            CHART_DIR / "versions" / "product_listing_v1.yaml",
            CHART_DIR / "versions" / "order_v1.yaml",
        ],
        _rules(),
    )
