from __future__ import annotations

import pytest

from sluice.pricing import estimate_cost_usd, prices_for


def test_cost_uses_input_and_output_prices_per_million() -> None:
    # gpt-4o-mini: $0.15 in, $0.60 out per million tokens
    assert estimate_cost_usd("gpt-4o-mini", 1_000_000, 0) == pytest.approx(0.15)
    assert estimate_cost_usd("gpt-4o-mini", 1000, 500) == pytest.approx(0.00045)


def test_dated_snapshots_use_their_family_price() -> None:
    assert prices_for("gpt-4o-2024-08-06") == prices_for("gpt-4o")
    assert prices_for("gpt-4o-mini-2024-07-18") == prices_for("gpt-4o-mini")


def test_unknown_model_costs_nothing_rather_than_guessing() -> None:
    assert prices_for("my-local-llama") is None
    assert estimate_cost_usd("my-local-llama", 1000, 1000) == 0.0
