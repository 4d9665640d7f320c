"""The TikTok Shop channel: charts (YAML beside this file) and the rules they name.

A chart package for the engine: ``chart_package()`` is registered under the
``channelsync.charts`` entry point as ``tiktok_shop``.
"""

from __future__ import annotations

from pathlib import Path

from engine.chartset import ChartPackage
from engine.rules import Rules
from statecharts import connection, listing, order

CHART_DIR = Path(__file__).parent


def build_rules() -> Rules:
    rules = Rules()
    connection.register(rules)
    listing.register(rules)
    order.register(rules)
    return rules


RULES = build_rules()


def chart_package() -> ChartPackage:
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
        RULES,
    )
