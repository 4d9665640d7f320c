"""`channelsync chart show NAME --format mermaid` prints a valid stateDiagram-v2."""

from __future__ import annotations

from typer.testing import CliRunner

from engine.cli.main import build_cli
from tests.unit.mermaid_syntax import parse_state_diagram


def assert_valid_state_diagram(text: str) -> set[str]:
    """The ids the diagram declares, once it reads as valid stateDiagram-v2."""
    return set(parse_state_diagram(text).parents)


def test_chart_show_prints_a_valid_state_diagram():
    result = CliRunner().invoke(build_cli(), ["chart", "show", "parcel", "--format", "mermaid"])
    assert result.exit_code == 0, result.output
    states = assert_valid_state_diagram(result.stdout)
    assert states == {"created", "packed", "overdue", "shipped", "delivered", "cancelled"}
    assert "    packed --> shipped : parcel.ship [has_tracking]" in result.stdout
    assert "    delivered --> [*]" in result.stdout
    assert "    %% internal parcel.note in created, packed, overdue, shipped" in result.stdout
    drawn = CliRunner().invoke(build_cli(), ["chart", "show", "parcel", "--internal"]).stdout
    assert_valid_state_diagram(drawn)
    assert "    shipped --> shipped : parcel.note" in drawn


def test_chart_show_unknown_name_is_a_clear_error():
    result = CliRunner().invoke(build_cli(), ["chart", "show", "nope"])
    assert result.exit_code == 1
    assert "no chart named 'nope'" in result.stderr


def test_order_chart_renders_the_real_lifecycle():
    """ORD-8: `chart show order --format mermaid` draws TikTok's lifecycle."""
    result = CliRunner().invoke(build_cli(), ["chart", "show", "order", "--format", "mermaid"])
    assert result.exit_code == 0, result.output
    states = assert_valid_state_diagram(result.stdout)
    assert states == {
        "unpaid",
        "on_hold",
        "awaiting_shipment",
        "partially_shipping",
        "awaiting_collection",
        "in_transit",
        "delivered",
        "completed",
        "cancelled",
    }
    for edge in (
        "unpaid --> on_hold",
        "on_hold --> awaiting_shipment",
        "unpaid --> awaiting_shipment",
        "awaiting_shipment --> delivered",
        "in_transit --> cancelled",
        "completed --> [*]",
        "cancelled --> [*]",
    ):
        assert f"    {edge}" in result.stdout
    assert "delivered --> cancelled" not in result.stdout, "no cancelling after delivery"


def test_every_channel_chart_renders():
    for name in ("shop_connection", "product_listing", "order"):
        result = CliRunner().invoke(build_cli(), ["chart", "show", name])
        assert result.exit_code == 0
        assert_valid_state_diagram(result.stdout)
