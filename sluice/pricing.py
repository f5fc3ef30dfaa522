"""Estimated cost of a job from its token counts: USD per million input and output tokens.

Prices are list prices of OpenAI's API; override or extend with SLUICE_PRICING_JSON
(a JSON object {model: [input_per_million, output_per_million]}).
"""

from __future__ import annotations

import json
import os
from functools import lru_cache

DEFAULT_PRICES_PER_MILLION: dict[str, tuple[float, float]] = {
    "gpt-5": (1.25, 10.00),
    "gpt-5-mini": (0.25, 2.00),
    "gpt-5-nano": (0.05, 0.40),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "o3": (2.00, 8.00),
    "o4-mini": (1.10, 4.40),
    "gpt-4-turbo": (10.00, 30.00),
    "gpt-4": (30.00, 60.00),
    "gpt-3.5-turbo": (0.50, 1.50),
}


@lru_cache(maxsize=1)
def price_table() -> dict[str, tuple[float, float]]:
    table = dict(DEFAULT_PRICES_PER_MILLION)
    override = os.environ.get("SLUICE_PRICING_JSON")
    if override:
        for model, (inp, out) in json.loads(override).items():
            table[model] = (float(inp), float(out))
    return table


def prices_for(model: str) -> tuple[float, float] | None:
    """Exact match first, then the longest known prefix (dated snapshots like gpt-4o-2024-08-06)."""
    table = price_table()
    if model in table:
        return table[model]
    prefixes = [m for m in table if model.startswith(m + "-")]
    return table[max(prefixes, key=len)] if prefixes else None


def estimate_cost_usd(model: str, prompt_tokens: int, completion_tokens: int) -> float:
    prices = prices_for(model)
    if prices is None:
        return 0.0
    inp, out = prices
    return round((prompt_tokens * inp + completion_tokens * out) / 1_000_000, 8)
