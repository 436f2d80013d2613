"""``/console``: the web console, static files shipped in the package and served without a key.

The console is a single page of plain ES modules (``scrip_actor/http/console/``): no build step, no CDN. The files
hold no data and no secret, so they are open like ``/docs``; every figure the page shows comes from the keyed REST
API, called by the browser with ``Authorization: Bearer <key>``. The key is typed once per browser session and kept
in ``sessionStorage``; it never goes into a URL (docs/console.md).

Every answer carries a strict Content-Security-Policy: scripts, styles and connections only from this origin, no
inline script or style, no framing, no forms posting elsewhere. The console renders data with ``textContent``
only, so even a participant attribute holding markup is shown as text.

Only the files listed in ``_FILES`` are served (read once, at import): a path is a key of that table, never a
file-system path, so nothing outside the package directory can be reached.
"""

from __future__ import annotations

from importlib.resources import files

from quart import Response
from quart_trio import QuartTrio

from scrip_actor.http.errors import RouteNotFound

__all__ = ["CONSOLE_ENDPOINTS", "CONTENT_SECURITY_POLICY", "install_console"]

# Quart endpoint names of the console's routes: static files, like Quart's own "static", not API operations.
CONSOLE_ENDPOINTS = frozenset({"console_page", "console_page_slash", "console_file"})

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

_MEDIA_TYPES = {
    "html": "text/html; charset=utf-8",
    "js": "text/javascript; charset=utf-8",
    "css": "text/css; charset=utf-8",
}


def _load_files() -> dict[str, tuple[bytes, str]]:
    """Every file of the console directory, by name, with its media type."""
    loaded = {}
    for entry in files("scrip_actor.http").joinpath("console").iterdir():
        extension = entry.name.rsplit(".", 1)[-1]
        if entry.is_file() and extension in _MEDIA_TYPES:
            loaded[entry.name] = (entry.read_bytes(), _MEDIA_TYPES[extension])
    return loaded


_FILES = _load_files()


def _answer(name: str) -> Response:
    if name not in _FILES:
        raise RouteNotFound(f"no console file {name}", {"path": f"/console/{name}"})
    content, media_type = _FILES[name]
    headers = {
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        # The files change only with the package; no-cache keeps an upgraded server's console current.
        "Cache-Control": "no-cache",
    }
    return Response(content, status=200, content_type=media_type, headers=headers)


def install_console(app: QuartTrio) -> None:
    """Serve the page at ``/console`` and ``/console/``, and its scripts and style at ``/console/<file>``, no key.

    They are not API routes, so they are not in ``/openapi.json``; the request metrics count them under the
    templates ``/console`` and ``/console/<name>``.
    """

    async def console_page() -> Response:
        return _answer("index.html")

    async def console_file(name: str) -> Response:
        return _answer(name)

    app.add_url_rule(
        "/console", endpoint="console_page", view_func=console_page, methods=["GET"], provide_automatic_options=False
    )
    app.add_url_rule(
        "/console/",
        endpoint="console_page_slash",
        view_func=console_page,
        methods=["GET"],
        provide_automatic_options=False,
    )
    app.add_url_rule(
        "/console/<name>",
        endpoint="console_file",
        view_func=console_file,
        methods=["GET"],
        provide_automatic_options=False,
    )
