"""The browser samples in a real browser: headless Chromium (Debian `chromium`, driven by npm
`playwright-core`) opens the pages from a local server, offline; each classifying page's output must
match the native run on the page's own input, and the profile page's per-op profiles (sparselite.mjs
and Pyodide) the native profile. Screenshots go to test-artifacts/."""
import importlib.util
import json
import os
import shutil
import subprocess
import threading

import numpy as np
import pytest

import sparselite
from helpers import rel_err

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NPM = os.path.join(os.path.expanduser("~"), ".cache", "sparselite-npm", "node_modules")
ARTIFACTS = os.path.join(ROOT, "test-artifacts")


def _site_module():
    spec = importlib.util.spec_from_file_location("browser_site", os.path.join(ROOT, "samples", "browser", "site.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    chromium = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    assert os.path.exists(chromium), "the browser test needs Debian chromium (apt-get install chromium; tests/run.sh does)"
    assert os.path.exists(os.path.join(NPM, "playwright-core")), (
        "the browser test needs playwright-core: npm install --prefix ~/.cache/sparselite-npm playwright-core")
    site = _site_module()
    out = site.build(str(tmp_path_factory.mktemp("site")))
    httpd = site.serve(out, 0)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield out, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def open_page(url, page):
    """The page's window.sparseliteResult (plus its status line), after a screenshot into test-artifacts/."""
    os.makedirs(ARTIFACTS, exist_ok=True)
    shot = os.path.join(ARTIFACTS, page.replace(".html", ".png"))
    result = subprocess.run([shutil.which("node"), os.path.join(ROOT, "samples", "browser", "check_page.mjs"),
                             f"{url}/{page}", shot], capture_output=True, text=True, timeout=600,
                            env=dict(os.environ, PLAYWRIGHT_DIR=os.path.join(NPM, "playwright-core")))
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert "error" not in report, report
    assert os.path.getsize(shot) > 10000
    return report


@pytest.mark.parametrize("page", ["index.html", "plain.html"])
def test_page_classifies_like_native(server, page):
    out, url = server
    report = open_page(url, page)
    x = np.asarray(report["input"], np.float32).reshape(1, 3, 224, 224)
    (native,) = sparselite.load(os.path.join(out, "model.slite")).run(x)
    logits = np.asarray(report["logits"], np.float32)
    assert rel_err(logits, native.ravel()) < 1e-4
    assert report["top5"][0]["index"] == int(native.argmax())
    assert report["top5"][0]["index"] in (281, 282, 285)  # a cat, as torch says of this photo
    assert "done in" in report["status"]


def test_profile_page_profiles_in_both_engines(server):
    """profile.html: model.profile in sparselite.mjs and Model.profile / profile_report in Pyodide, in
    Chromium, on the 90%-pruned MobileNetV2, against the native profile."""
    from test_wasm import assert_wasm_profile

    out, url = server
    report = open_page(url, "profile.html")
    path = os.path.join(out, "sparse.slite")
    x = np.zeros((1, 3, 224, 224), np.float32)
    native_ops = sparselite.load(path).profile_report(x, runs=1, warmup=0)["ops"]
    # sparselite.mjs runs the relaxed build where the site deploys it, else SIMD128 (test_wasm.py tests
    # the choice); the Pyodide wheel ships both, and Chromium has relaxed SIMD on.
    js_relaxed = any(op["kernel"].endswith("__wasm_relaxed_simd") for op in report["js"])
    assert_wasm_profile(report["js"], native_ops, "wasm_relaxed_simd" if js_relaxed else "wasm_simd128")
    pyodide = report["pyodide"]
    assert "wasm_relaxed_simd" in pyodide["report"]["machine"]["isa"]
    assert_wasm_profile(pyodide["report"]["ops"], native_ops, "wasm_relaxed_simd")
    assert [(op["name"], op["kernel"]) for op in pyodide["profile"]] == [
        (op["name"], op["kernel"]) for op in pyodide["report"]["ops"]]
    assert sum(op["ms"] for op in pyodide["profile"]) > 0 and "latency ms: p50" in pyodide["table"]
    assert report["status"].startswith("done")
