"""The model-coverage script's CI subset (`benchmarks/model_coverage.py --fast`): small torchvision
and timm models (channel shuffle and split, squeeze-excitation, hard-swish, LR-ASPP's upsampling)
and one MediaPipe .tflite, each converted on every path that applies and compared with the
framework's own output. A missing tool (timm, onnxruntime, ai-edge-litert) makes its rows errors,
so the test fails, naming it, rather than skipping."""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
from model_coverage import FAST, TORCH_PATHS  # noqa: E402


def test_fast_subset_converts_and_matches_on_every_path(tmp_path):
    out = tmp_path / "coverage.json"
    subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "model_coverage.py"), "--fast", "--json",
                    str(out)], check=True, capture_output=True, text=True, timeout=300)
    rows = json.loads(out.read_text())["results"]
    got = {(r["model"], r["path"]): r for r in rows}
    expected = {(name, path) for name in FAST for path in (("tflite",) if FAST[name] is None else TORCH_PATHS)}
    assert set(got) == expected
    failed = {key: r.get("error", r.get("err")) for key, r in got.items() if r["status"] != "ok"}
    assert not failed
    for (name, path), r in got.items():
        assert r["err"] <= 1e-4
        if path != "tflite":
            assert r["input"] == [1, 3, FAST[name], FAST[name]]
            assert r["sensitivity"] > 0.05, (name, path)   # the output depends on the input
        if path == "from_onnx":
            assert r["ort_vs_torch"] <= 1e-4
        if path == "pruned":   # 4x1 groups at density 0.2, stored group-sparse
            assert r["pruned_layers"] >= 30 and r["sparse_layers"] >= 0.8 * r["pruned_layers"], name
