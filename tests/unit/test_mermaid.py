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
    """ORD-8: `chart show order --format mermaid` draws TikTok's lifecycle, as
    one region of the order beside its Shoplazza sync and its fulfillment push."""
    result = CliRunner().invoke(build_cli(), ["chart", "show", "order", "--format", "mermaid"])
    assert result.exit_code == 0, result.output
    states = assert_valid_state_diagram(result.stdout)
    lifecycle = {s.removeprefix("lifecycle__") for s in states if s.startswith("lifecycle__")}
    assert lifecycle == {
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
    assert {"lifecycle", "sync", "fulfillment", "fulfillment__pushed"} <= states
    for edge in (
        "lifecycle__unpaid --> lifecycle__on_hold :",
        "lifecycle__on_hold --> lifecycle__awaiting_shipment :",
        "lifecycle__unpaid --> lifecycle__awaiting_shipment :",
        "lifecycle__awaiting_shipment --> lifecycle__delivered :",
        "lifecycle__in_transit --> lifecycle__cancelled :",
        "lifecycle__completed --> [*]",
        "lifecycle__cancelled --> [*]",
        "sync__syncing --> sync__synced :",
        "fulfillment__waiting --> fulfillment__resolving :",
    ):
        assert edge in result.stdout, edge


def test_every_channel_chart_renders():
    for name in ("shop_connection", "product_listing", "order"):
        result = CliRunner().invoke(build_cli(), ["chart", "show", name])
        assert result.exit_code == 0
        assert_valid_state_diagram(result.stdout)
