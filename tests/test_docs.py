"""The code blocks of README.md and the sample READMEs run as written, so the docs cannot drift from
the product.

Fenced blocks tagged ```python, ```sh or ```js run: Python and shell in a fresh directory holding
`model.slite` (a small group-sparse conv net), `dense.slite` (the same, dense) and `x.npy` (an input
for them), JS as a module script of a page served next to the browser samples' build in headless
Chromium (`model.slite` there: MobileNetV2, 90% pruned; the Pyodide wheel beside it). A block that
does not run here says why on the line before it:

    <!-- doc-test: skip: needs a phone (adb) -->

Untagged fences are text (layouts, usage synopses, printed output) and never run."""
import glob
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NPM = os.path.join(os.path.expanduser("~"), ".cache", "sparselite-npm", "node_modules")
RUNNABLE = ("python", "sh", "js")
SKIP = re.compile(r"<!-- doc-test: skip: (.+?) -->")
DOCS = ["README.md", "samples/phone/README.md", "samples/browser/README.md", "samples/sentence-embeddings/README.md",
        "samples/raspberry-pi/README.md"]


def code_blocks(path):
    """[(line, language, code, skip reason or None)] of a Markdown file's fenced blocks."""
    lines = open(os.path.join(ROOT, path)).read().splitlines()
    blocks, i = [], 0
    while i < len(lines):
        fence = re.match(r"^(\s*)```(\S*)\s*$", lines[i])
        if fence:
            indent, end = len(fence.group(1)), i + 1
            while not lines[end].strip().startswith("```"):
                end += 1
            skip = SKIP.search(lines[i - 1]) if i else None
            code = "\n".join(line[indent:] for line in lines[i + 1:end])
            blocks.append((i + 1, fence.group(2), code, skip.group(1) if skip else None))
            i = end
        i += 1
    return blocks


BLOCKS = [(path, *block) for path in DOCS for block in code_blocks(path)]


def _ids(kind):
    return [(f"{path}:{line}", path, code) for path, line, lang, code, skip in BLOCKS if lang == kind and not skip]


def test_every_block_runs_or_says_why_not():
    """Tagged blocks are runnable languages (or C, shown not run); a skip marker sits only on runnable blocks
    and gives a reason."""
    assert len(BLOCKS) > 20 and sum(1 for *_, lang, _, skip in BLOCKS if lang in RUNNABLE and not skip) >= 8
    for path, line, lang, code, skip in BLOCKS:
        assert lang in RUNNABLE + ("", "c"), f"{path}:{line}: unknown block language '{lang}'"
        assert not skip or lang in RUNNABLE, f"{path}:{line}: only runnable blocks take a skip marker"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A directory with the files the blocks name: model.slite, dense.slite, x.npy."""
    import torch

    from sparselite.converters import from_torch, prune_groups

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(16, 64, 1),
                              torch.nn.ReLU(), torch.nn.Conv2d(64, 32, 1), torch.nn.AdaptiveAvgPool2d(1),
                              torch.nn.Flatten(), torch.nn.Linear(32, 10)).eval()
    path = tmp_path_factory.mktemp("docs")
    x = torch.zeros(1, 3, 32, 32)
    from_torch(net, x, input_names=["input"]).save(path / "dense.slite")
    prune_groups(net, 0.25, group=4)
    from_torch(net, x, input_names=["input"]).save(path / "model.slite")
    np.save(path / "x.npy", np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32))
    return path


def _env():
    bin_dir = os.path.dirname(sys.executable)   # the venv's `sparselite` command
    return dict(os.environ, PATH=bin_dir + os.pathsep + os.environ["PATH"])


def _run(cmd, workdir, where):
    result = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=900, env=_env())
    assert result.returncode == 0, f"{where} failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.mark.parametrize("where,path,code", _ids("python"), ids=[i for i, _, _ in _ids("python")])
def test_python_block(where, path, code, workdir):
    _run([sys.executable, "-c", code], workdir, where)


@pytest.mark.parametrize("where,path,code", _ids("sh"), ids=[i for i, _, _ in _ids("sh")])
def test_shell_block(where, path, code, workdir):
    _run(["bash", "-euo", "pipefail", "-c", f"cd {workdir}\n{code}"], workdir, where)


@pytest.mark.parametrize("where,path,code", _ids("js"), ids=[i for i, _, _ in _ids("js")])
def test_js_block(where, path, code, browser_site, tmp_path):
    """As a module script of a page next to the browser build: no page error, and what it logs."""
    out, url = browser_site
    shutil.copy(os.path.join(out, "sparse.slite"), os.path.join(out, "model.slite"))
    (wheel,) = glob.glob(os.path.join(out, "wheels", "sparselite_wasm-*.whl"))
    for named in set(re.findall(r"sparselite_wasm-[^\"'`/]+\.whl", code)):   # the README names this version's wheel
        shutil.copy(wheel, os.path.join(out, named))
    is_import = re.compile(r"""^import .*["'];?(\s*//.*)?$""").match   # JS imports go first, outside the try
    imports = [line for line in code.splitlines() if is_import(line)]
    body = "\n".join(line for line in code.splitlines() if not is_import(line))
    page = f"doc-{os.path.basename(os.path.dirname(os.path.join(ROOT, path))) or 'readme'}-{abs(hash(where))}.html"
    with open(os.path.join(out, page), "w") as f:
        f.write("<!doctype html><meta charset='utf-8'><link rel='icon' href='data:,'><p id='status'></p>"
                "<script type='module'>\n"
                + "\n".join(imports) + "\ntry {\n" + body + "\nwindow.sparseliteResult = {ok: true};\n"
                "} catch (err) { window.sparseliteResult = {error: String(err)}; }\n</script>\n")
    result = subprocess.run([shutil.which("node"), os.path.join(ROOT, "samples", "browser", "check_page.mjs"),
                             f"{url}/{page}", str(tmp_path / "shot.png")], capture_output=True, text=True,
                            timeout=600, env=dict(os.environ, PLAYWRIGHT_DIR=os.path.join(NPM, "playwright-core")))
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report.get("ok") and not any("Error" in line for line in report["logs"]), (where, report)
    print(where, report["logs"])
