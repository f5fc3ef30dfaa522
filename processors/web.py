"""The worker's /healthz and /readyz, on Faust's web server (settings.worker_web_port).

Imported at the end of ``processors.app``, once the app exists.
"""

from __future__ import annotations

from typing import Any

from processors.app import app, settings
from sluice.readiness import readiness


@app.page("/healthz")
async def healthz(web: Any, request: Any) -> Any:
    """The worker process runs and its web server answers."""
    return web.json({"status": "ok"})


@app.page("/readyz")
async def readyz(web: Any, request: Any) -> Any:
    """Kafka, Postgres and ClickHouse reachable: 200, else 503 naming what failed."""
    checks = await readiness(settings)
    details = [c.as_dict() for c in checks]
    failed = [c.name for c in checks if not c.ok]
    if failed:
        body = {
            "success": False,
            "error": {
                "code": "not_ready",
                "message": f"not ready: {', '.join(failed)} unreachable",
                "details": details,
            },
        }
        return web.json(body, status=503)
    return web.json({"status": "ready", "checks": details})
