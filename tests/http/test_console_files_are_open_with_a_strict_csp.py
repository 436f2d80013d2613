"""The console's static files: served without a key, with a strict CSP, and only the package's own files.

The browser walk-through is in tests/console/ (it needs chromium); these checks need only HTTP, so they always run.
"""

from __future__ import annotations

import httpx

from scrip_actor.http.console import CONTENT_SECURITY_POLICY


async def test_the_page_and_its_modules_need_no_key_and_carry_the_csp(anonymous: httpx.AsyncClient) -> None:
    for path, media in [
        ("/console", "text/html"),
        ("/console/", "text/html"),
        ("/console/app.js", "text/javascript"),
        ("/console/console.css", "text/css"),
    ]:
        response = await anonymous.get(path)
        assert response.status_code == 200, path
        assert response.headers["Content-Type"].startswith(media), path
        assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "default-src 'self'" in CONTENT_SECURITY_POLICY and "script-src 'self'" in CONTENT_SECURITY_POLICY
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY and "unsafe-eval" not in CONTENT_SECURITY_POLICY
    assert (await anonymous.get("/v1/programs")).status_code == 401  # the data itself still needs the key


async def test_only_the_packages_own_files_are_served(anonymous: httpx.AsyncClient) -> None:
    for path in ["/console/nope.js", "/console/..%2Fconsole.py", "/console/%2e%2e%2Fapp.py", "/console/__init__.py"]:
        response = await anonymous.get(path)
        assert response.status_code == 404, path
        body = response.json()
        assert body["code"] == "not_found" and set(body) == {"code", "message", "details", "request_id"}


async def test_the_page_inlines_no_script_or_style(anonymous: httpx.AsyncClient) -> None:
    page = (await anonymous.get("/console")).text
    assert '<script type="module" src="/console/app.js"></script>' in page
    assert "<style" not in page and " style=" not in page and "onclick" not in page
