"""The worker's Prometheus ``/metrics`` on Faust's web server: its circuit breakers.

Imported at the end of ``processors.app``, once the app exists.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST

from processors.app import app
from processors.breaker import breaker_metrics


@app.page("/metrics")
async def metrics(web: Any, request: Any) -> Any:
    """Prometheus text format: ``sluice_breaker_state`` per worker, provider and model."""
    return web.bytes(breaker_metrics(), headers={"Content-Type": CONTENT_TYPE_LATEST})
