"""The browser samples in a real browser: headless Chromium (Debian `chromium`, driven by npm
`playwright-core`) opens the pages from a local server, offline; each classifying page's output must
match the native run on the page's own input, and the profile page's per-op profiles (sparselite.mjs
and Pyodide) the native profile; the HTML profile report is checked as a person reads it. Full-page
screenshots go to test-artifacts/ (index.png, index-dropped.png, plain.png, plain-picked.png, plain-phone.png,
profile.png, report.png, compare.png)."""
import json
import os
import re
import shutil
import subprocess

import numpy as np
import pytest

import sparselite
from helpers import rel_err

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NPM = os.path.join(os.path.expanduser("~"), ".cache", "sparselite-npm", "node_modules")
ARTIFACTS = os.path.join(ROOT, "test-artifacts")


@pytest.fixture(scope="module")
def server(browser_site):
    return browser_site


def open_page(url, page, *options, shot=None):
    """What the page shows (check_page.mjs: its result, status, text, tables), after a full-page screenshot
    into test-artifacts/ (the path is printed: pytest -s shows it)."""
    os.makedirs(ARTIFACTS, exist_ok=True)
    name = os.path.basename(page).split("#")[0]
    shot = os.path.join(ARTIFACTS, shot or name.replace(".html", ".png"))
    result = subprocess.run([shutil.which("node"), os.path.join(ROOT, "samples", "browser", "check_page.mjs"),
                             f"{url}/{page}", shot, *options], capture_output=True, text=True, timeout=600,
                            env=dict(os.environ, PLAYWRIGHT_DIR=os.path.join(NPM, "playwright-core")))
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert "error" not in report, report
    assert os.path.getsize(shot) > 10000
    print(f"screenshot: {shot}")
    return report


def softmax(logits):
    p = np.exp(logits - logits.max())
    return p / p.sum()


def check_classified(out, report, names, threads):
    """Each model's logits are the native run's on the page's input; top-5 names and probabilities and the
    agreement are what numpy makes of them; the page shows the median latency and the threads it ran."""
    x = np.asarray(report["input"], np.float32).reshape(1, 3, 224, 224)
    for kind in ("dense", "sparse"):
        shown = report[kind]
        (native,) = sparselite.load(os.path.join(out, f"{kind}.slite")).run(x)
        assert rel_err(np.asarray(shown["logits"], np.float32), native.ravel()) < 1e-4
        p = softmax(native.ravel().astype(np.float64))
        assert [t["index"] for t in shown["top5"]] == list(np.argsort(-p)[:5])
        assert all(t["name"] == names[t["index"]] and abs(t["p"] - p[t["index"]]) < 1e-4 for t in shown["top5"])
        assert shown["ms"] > 0 and shown["runs"] == 15 and shown["threads"] == threads
        # what a person reads: JS's toFixed rounds exact halves (7.25) up, Python's format to even
        shown_ms = [float(m) for m in re.findall(r"([0-9.]+) ms median of 15 runs", report["text"])]
        assert any(abs(ms - shown["ms"]) <= 0.05 + 1e-9 for ms in shown_ms), (shown["ms"], shown_ms)
        assert "wasm_simd128" in shown["kernels"] and shown["top5"][0]["name"] in report["text"]
    dense, sparse = ([t["index"] for t in report[k]["top5"]] for k in ("dense", "sparse"))
    assert report["agreement"] == {"sameTop1": dense[0] == sparse[0], "shared": len(set(dense) & set(sparse))}
    assert "Agreement:" in report["text"] and ("without fine-tuning" in report["text"]) == (dense[0] != sparse[0])
    return x


@pytest.mark.parametrize("page", ["index.html", "plain.html"])
def test_page_classifies_like_native(server, page, tmp_path):
    """index.html (Pyodide) and plain.html (sparselite.mjs): the photo's top-1 is a cat, by name; dense and
    sparse side by side with their agreement, median latency, kernels and the per-op chart; then another
    photo, picked with the file input (plain.html) or dropped on the page (index.html). plain.html runs the
    threads build on workers (site.py serves COOP/COEP) with one thread a core up to 4; Pyodide runs one."""
    from skimage import data, io

    out, url = server
    threads = 1 if page == "index.html" else min(4, os.cpu_count())
    names = json.load(open(os.path.join(out, "imagenet_classes.json")))
    pick = tmp_path / "coffee.png"
    io.imsave(pick, data.coffee(), check_contrast=False)
    report = open_page(url, page, "--pick" if page == "plain.html" else "--drop", str(pick))
    check_classified(out, report, names, threads)
    for kind in ("dense", "sparse"):   # a cat, as torch says of this photo: pruning kept it
        top1 = report[kind]["top5"][0]
        assert "cat" in top1["name"] and 281 <= top1["index"] <= 285, (kind, top1)
    about = json.load(open(os.path.join(out, "sparse.json")))   # the page states the recipe and agreement
    assert f"same top-1 on {len(about['same_top1'])}" in report["text"]
    assert f"{round(about['recipe']['density'] * 100)}% density in 4x1 groups" in report["text"]
    ops = sparselite.load(os.path.join(out, "sparse.slite")).profile(np.zeros((1, 3, 224, 224), np.float32), runs=1)
    assert [op["name"] for op in report["sparse"]["ops"]] == [op.name for op in ops]
    assert "spmm r=4" in report["text"] and "depthwise" in report["text"]   # the chart's legend
    picked = report["picked" if page == "plain.html" else "dropped"]
    assert picked["input"] != report["input"]
    check_classified(out, picked, names, threads)
    assert "cat" not in picked["dense"]["top5"][0]["name"]


def test_pages_fit_a_phone_screen(server):
    """The layout stacks at 390 px: nothing wider than the window."""
    out, url = server
    report = open_page(url, "plain.html", "--width", "390", shot="plain-phone.png")
    assert report["dense"]["top5"][0]["name"] in report["text"] and report["scroll_width"] <= 390


def test_profile_report_in_chromium(server, tmp_path):
    """The HTML profile report (sparselite profile --html) as a person sees it: its header names the CPU,
    ISA, threads, runs and latency; its kernel-family subtotals add up to its own per-op total (arithmetic on
    the numbers the page shows); and the comparison page lists every layer of both runs."""
    from sparselite.profiler import html_compare, html_report

    out, _ = server
    x = np.zeros((1, 3, 224, 224), np.float32)
    sparse, dense = (sparselite.load(os.path.join(out, f"{k}.slite")).profile_report(x, runs=3, warmup=1, name=k)
                     for k in ("sparse", "dense"))
    (tmp_path / "report.html").write_text(html_report(sparse))
    (tmp_path / "compare.html").write_text(html_compare(dense, sparse))
    report = open_page(f"file://{tmp_path}", "report.html", "--static")
    for text in ("LATENCY P50", "P90 / P99", "CPU", "ISA", "THREADS", "RUNS", " ".join(sparselite.cpu_isa())):
        assert text in report["text"], text
    families = report["tables"]["families"]
    body = [row for row in families if row["section"] == "TBODY"]
    (total,) = [row for row in families if row["section"] == "TFOOT"]
    assert {row["cells"][0] for row in body} >= {"stem / gemm", "depthwise", "spmm r=4"}
    shown = [float(row["cells"][2]) for row in body]
    assert abs(sum(shown) - float(total["cells"][2])) <= 0.0005 * (len(shown) + 1)   # rounding to 3 decimals
    assert abs(sum(float(row["data"]["ms"]) for row in body) - float(total["data"]["ms"])) < 1e-9
    assert abs(sum(float(row["cells"][3].rstrip("%")) for row in body) - 100) < 0.1 * len(body)
    ops = [row for row in report["tables"]["ops"] if row["section"] == "TBODY"]
    assert len(ops) == len(sparse["ops"])
    assert abs(sum(float(row["data"]["ms"]) for row in ops) - float(total["data"]["ms"])) < 1e-9
    compare = open_page(f"file://{tmp_path}", "compare.html", "--static")
    assert all(op["name"] in compare["text"] for op in sparse["ops"]) and "Layer by layer" in compare["text"]


def assert_page_profile(ops, native_ops, isa):
    """test_wasm.assert_wasm_profile for the pages' model, whose group-sparse layers are only some of its 1x1
    convs and 68% dense: the same ops and bytes as native, every group-sparse one on the build's spmm kernel.
    FLOPs match too, except where the native CPU runs a layer this dense as a dense gemm (its FLOPs then
    dense)."""
    from test_wasm import PROFILE_FIELDS, assert_fusion_within_native

    ops = [{re.sub("[A-Z]", lambda m: "_" + m[0].lower(), key): value for key, value in op.items()} for op in ops]
    fields = [k for k in PROFILE_FIELDS if k != "flops"]
    assert [[op[k] for k in fields] for op in ops] == [[op[k] for k in fields] for op in native_ops]
    assert_fusion_within_native(ops, native_ops)
    for op, native in zip(ops, native_ops):
        if native["group_size"] and "spmm" not in (native["kernel"] or ""):
            assert op["flops"] < native["dense_flops"] == native["flops"], op["name"]
        else:
            assert op["flops"] == native["flops"], op["name"]
    assert all(op["ms"] >= 0 for op in ops) and sum(op["ms"] for op in ops) > 0
    sparse = [op for op in ops if op["group_size"]]
    assert len(sparse) >= 10
    slow = {op["name"]: op["kernel"] for op in sparse
            if "spmm" not in op["kernel"] or not op["kernel"].endswith(f"__{isa}")}
    assert not slow, f"group-sparse layers not on a {isa} spmm kernel: {slow}"


def test_profile_page_profiles_in_both_engines(server):
    """profile.html: model.profile in sparselite.mjs and Model.profile / profile_report in Pyodide, in
    Chromium, on the pages' pruned MobileNetV2, against the native profile."""
    out, url = server
    report = open_page(url, "profile.html")
    path = os.path.join(out, "sparse.slite")
    x = np.zeros((1, 3, 224, 224), np.float32)
    native_ops = sparselite.load(path).profile_report(x, runs=1, warmup=0)["ops"]
    # The site ships both builds (so does the Pyodide wheel) and Chromium has relaxed SIMD on, so both
    # engines run the relaxed one (test_wasm.py tests the choice and the SIMD128 fallback).
    assert_page_profile(report["js"], native_ops, "wasm_relaxed_simd")
    pyodide = report["pyodide"]
    assert "wasm_relaxed_simd" in pyodide["report"]["machine"]["isa"]
    assert_page_profile(pyodide["report"]["ops"], native_ops, "wasm_relaxed_simd")
    assert [(op["name"], op["kernel"]) for op in pyodide["profile"]] == [
        (op["name"], op["kernel"]) for op in pyodide["report"]["ops"]]
    assert sum(op["ms"] for op in pyodide["profile"]) > 0 and "latency ms: p50" in pyodide["table"]
    assert report["status"].startswith("done") and "spmm r=4" in report["text"]
