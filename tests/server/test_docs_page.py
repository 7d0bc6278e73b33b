"""/docs and /redoc work without the internet: every script and style comes from the app itself."""

import re

from .conftest import TestClient


def test_the_api_docs_pages_load_only_from_this_server(client: TestClient):
    for page in ("/docs", "/redoc"):
        html = client.get(page)
        assert html.status_code == 200 and "text/html" in html.headers["content-type"]
        assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html.text)
        assert assets, html.text
        for asset in assets:
            # Relative to this server: no CDN, no other host.
            assert asset.startswith("/"), (page, asset)
            fetched = client.get(asset)
            assert fetched.status_code == 200, (page, asset)
            assert len(fetched.content) > 100, (page, asset)
        assert "openapi.json" in html.text
