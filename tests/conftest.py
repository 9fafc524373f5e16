import os
import sys

sys.path.insert(0, os.path.dirname(__file__))


import threading  # noqa: E402

import pytest  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NPM = os.path.join(os.path.expanduser("~"), ".cache", "sparselite-npm", "node_modules")


@pytest.fixture(scope="session")
def browser_site(tmp_path_factory):
    """The browser samples (samples/browser/site.py) built once per session and served from a local
    thread: (directory, base URL). Used by the page tests and the docs' JS snippets."""
    import importlib.util

    chromium = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    assert os.path.exists(chromium), "the browser tests need Debian chromium (apt-get install chromium; tests/run.sh does)"
    assert os.path.exists(os.path.join(NPM, "playwright-core")), (
        "the browser tests need playwright-core: npm install --prefix ~/.cache/sparselite-npm playwright-core")
    spec = importlib.util.spec_from_file_location("browser_site", os.path.join(ROOT, "samples", "browser", "site.py"))
    site = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(site)
    out = site.build(str(tmp_path_factory.mktemp("site")))
    httpd = site.serve(out, 0)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield out, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
