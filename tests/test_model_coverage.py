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


def test_graph_in_float64_runs_attention_blocks():
    """benchmarks/graph64.py on from_torch's graph of a LeViT-like block (FC with BatchNorm as MUL +
    ADD, heads sliced, attention through MATMUL and SOFTMAX with its scale and bias, hard-swish, a
    token mean) computes the module in float64 (rounding.py --ops's reference), and run_op on float32
    inputs stays float32."""
    import numpy as np
    import torch

    from graph64 import run_float64, run_op
    from sparselite.converters import from_torch

    class Block(torch.nn.Module):
        def __init__(self):
            super().__init__()
            g = torch.Generator().manual_seed(0)
            self.qkv, self.bn = torch.nn.Linear(16, 48, bias=False), torch.nn.BatchNorm1d(48)
            self.bias = torch.nn.Parameter(torch.randn(2, 10, 10, generator=g))
            with torch.no_grad():
                self.bn.running_var.uniform_(0.5, 2.0, generator=g)
                self.bn.running_mean.normal_(generator=g)

        def forward(self, x):   # x: (1, 10 tokens, 16)
            q, k, v = self.bn(self.qkv(x).flatten(0, 1)).reshape(1, 10, 2, 24).split([8, 8, 8], dim=3)
            attn = (q.permute(0, 2, 1, 3) @ k.permute(0, 2, 3, 1) * 8 ** -0.5 + self.bias).softmax(-1)
            y = torch.nn.functional.hardswish((attn @ v.permute(0, 2, 1, 3)).transpose(1, 2).reshape(1, 10, 16))
            return y.mean(1)

    block = Block().eval()
    x = torch.randn(1, 10, 16, generator=torch.Generator().manual_seed(1))
    graph = from_torch(block, x).graph
    types = {op.type for op in graph.ops}
    assert {"MATMUL", "SOFTMAX", "SLICE", "REDUCE", "MUL", "ADD"} <= types, types
    (got,) = run_float64(graph, {graph.inputs[0]: x.numpy()})
    with torch.no_grad():
        want = block.double()(x.double()).numpy()
    assert got.dtype == np.float64 and np.abs(got - want).max() <= 1e-6 * np.abs(want).max()
    op = next(op for op in graph.ops if op.type == "SOFTMAX")
    ins = [torch.zeros(graph.tensors[n].shape) for n in op.inputs]
    assert run_op(op, ins, tuple(graph.tensors[op.outputs[0]].shape)).dtype == torch.float32
