"""GET /dashboard: the operations page. Plain HTML, CSS and JS from api/static, no build step.

The page holds no data of its own: it signs in with an admin API token (kept in the tab's
sessionStorage) and reads everything from /api/admin/* and the job WebSockets.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

STATIC = Path(__file__).resolve().parent.parent / "static"
ASSETS = {
    "dashboard.js": "text/javascript",
    "dashboard.css": "text/css",
    "charts.js": "text/javascript",
}
# The page may talk only to its own origin; no inline script, no third-party anything.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self' ws: wss:; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

router = APIRouter(tags=["dashboard"], include_in_schema=False)


@router.get("/dashboard")
async def dashboard() -> FileResponse:
    return FileResponse(STATIC / "dashboard.html", media_type="text/html", headers=SECURITY_HEADERS)


@router.get("/dashboard/{asset}")
async def dashboard_asset(asset: str) -> FileResponse:
    from api.errors import ApiError

    if asset not in ASSETS:
        raise ApiError(404, "not_found", "Not Found")
    return FileResponse(STATIC / asset, media_type=ASSETS[asset], headers=SECURITY_HEADERS)
