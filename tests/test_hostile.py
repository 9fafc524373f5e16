"""Hostile inputs: every file of tests/hostile/make_corpus.py's corpus must load and run, or fail
with sparselite's own exception and a message (for memory, the budget's MemoryError naming
max_memory_bytes), within a few seconds and 4 GiB of address space (tests/hostile/runner.py); the
.slite files also under ASan/UBSan (native/tests/sl_run_test.c) with no report.

Crafted .slite files cover every op's size arithmetic, resource limits and the verifier; .tflite and
.onnx files the importers. A failure names the file: regenerate the corpus with
`python tests/hostile/make_corpus.py DIR` and load that file to reproduce it."""
import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "hostile"))
import runner  # noqa: E402
from helpers import SANITIZE, native_make  # noqa: E402

# Per file. The slowest legal files take ~3 s alone (a 65536-channel transposed conv densifies and
# writes ~280 MB): the margin is for a loaded 2-vCPU machine.
TIMEOUT = float(os.environ.get("SPARSELITE_HOSTILE_TIMEOUT", "10"))
LIMIT = 4 << 30   # RLIMIT_AS of the workers
# Allocations past 256 MiB fail (as they would on a small device) so that sl_run_test's hundreds of
# mutated copies of each file stay fast; the Python run covers the large ones.
SANITIZER_ENV = dict(ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=1:max_allocation_size_mb=256",
                     UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
SANITIZER_MAX_FILE = 64 << 10


def _sanitizer_files(out, manifest):
    """The .slite files for sl_run_test, which also loads ~500 truncated and bit-flipped copies of
    each: every per-op size case (the CONCAT sums need lists of 65,537 inputs) and every other file
    up to 64 KiB (larger ones are the count limits, 40k inputs and more, whose cost is time). Never
    an empty file: sl_run_test picks flip positions modulo the size."""
    def wanted(name, size):
        return size > 0 and (size <= SANITIZER_MAX_FILE or name.startswith("ops."))
    return sorted(str(out / n) for n, e in manifest.items() if n.endswith(".slite") and wanted(n, e["bytes"]))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("hostile")
    subprocess.run([sys.executable, os.path.join(HERE, "hostile", "make_corpus.py"), str(out)], check=True,
                   capture_output=True, text=True)
    with open(out / "manifest.json") as f:
        return out, json.load(f)


def _report(results):
    failed = {name: r for name, r in results.items() if r["outcome"] == "fail"}
    return f"{len(failed)} of {len(results)} files failed:\n" + "\n".join(
        f"  {name}: {r['detail'][:500]}" for name, r in sorted(failed.items()))


def test_corpus_covers_every_op_and_limit(corpus):
    from sparselite import _schema as S

    _, manifest = corpus
    for op in (k for k in vars(S.OpType) if not k.startswith("_")):
        per_op = [n for n in manifest if n.startswith(f"ops.{op}.")]
        generic = [n for n in manifest if n.startswith(f"every_op.{op}.")]
        assert len(per_op) >= 5 and len(generic) >= 30, f"{op}: {len(per_op)} size cases, {len(generic)} generic"
    counts = {}
    for entry in manifest.values():
        counts[entry["category"]] = counts.get(entry["category"], 0) + 1
    assert all(counts.get(c, 0) >= 20 for c in ("graph", "sparse", "dynamic", "resource", "verifier", "tflite",
                                                 "onnx")), counts


def test_slite_files_load_and_run_or_fail_cleanly(corpus):
    out, manifest = corpus
    files = [str(out / n) for n in manifest if n.endswith(".slite")]
    results = runner.run_corpus(files, str(out / "manifest.json"), limit=LIMIT, timeout=TIMEOUT)
    assert len(results) == len(files)
    assert all(r["outcome"] != "fail" for r in results.values()), _report(results)


def test_importers_convert_or_fail_cleanly(corpus):
    """From a path and from bytes; the working directory holds a decoy file that external data
    must never reach."""
    out, manifest = corpus
    files = [str(out / n) for n in manifest if n.endswith((".tflite", ".onnx"))]
    results = runner.run_corpus(files, str(out / "manifest.json"), limit=LIMIT, timeout=TIMEOUT,
                                cwd=str(out / "cwd"))
    assert len(results) == len(files)
    assert all(r["outcome"] != "fail" for r in results.values()), _report(results)


def _sanitizer_report(stderr):
    """The first sanitizer finding in a run's stderr, or None."""
    for line in stderr.splitlines():
        if re.search(r"ERROR: (Address|Leak)Sanitizer|runtime error:|AddressSanitizer:DEADLYSIGNAL", line):
            return line.strip()
    return None


def _sanitized(exe, files):
    """{file: report} for files whose run under exe gave a sanitizer report or a signal."""
    env = dict(os.environ, **SANITIZER_ENV)
    result = subprocess.run([exe, *files], capture_output=True, text=True, env=env, timeout=600)
    report = _sanitizer_report(result.stderr)
    if report is None and result.returncode in (0, 1):   # 1: sl_run_test's checks, which hostile files fail
        return {}
    if len(files) == 1:
        return {os.path.basename(files[0]): report or f"exit {result.returncode}: {result.stderr[-500:]}"}
    found = {}   # the first report stops the run: find each file's own
    for f in files:
        found.update(_sanitized(exe, [f]))
    return found


def test_slite_files_under_sanitizers(corpus, tmp_path):
    out, manifest = corpus
    build = str(tmp_path)
    native_make(build, "sl_run_test", CC="gcc", CFLAGS=SANITIZE)
    files = _sanitizer_files(out, manifest)
    chunks = [files[i::16] for i in range(16)]
    found = {}
    with ThreadPoolExecutor(2) as pool:
        for part in pool.map(lambda c: _sanitized(os.path.join(build, "sl_run_test"), c), chunks):
            found.update(part)
    assert not found, f"{len(found)} of {len(files)} files gave sanitizer reports:\n" + "\n".join(
        f"  {name}: {report}" for name, report in sorted(found.items()))
