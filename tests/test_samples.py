"""The samples run as their READMEs say and print what they claim."""
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("arch,model", [("minilm", "BertModel"), ("mpnet", "MPNetModel")])
def test_sentence_embeddings_sample(tmp_path, arch, model):
    result = subprocess.run([sys.executable, os.path.join(ROOT, "samples", "sentence-embeddings", "embed.py"),
                             "--arch", arch, "--out", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"{model}: 5 sentences" in result.stdout
    rows = [re.findall(r"([+-]\d\.\d+)/([+-]\d\.\d+)", line) for line in result.stdout.splitlines() if "/+1.000" in line]
    sims = [[float(a) for a, _ in row] for row in rows]
    assert len(sims) == 5 and all(abs(sims[i][i] - 1) < 1e-3 for i in range(5))
    assert sims[0][1] > 0.5 and sims[2][3] > 0.5      # the guitar pair, the movie pair
    assert max(abs(sims[0][2]), abs(sims[1][3]), abs(sims[4][2])) < 0.2   # unrelated sentences
    assert all(abs(float(a) - float(b)) < 1e-3 for row in rows for a, b in row)


def test_sentence_embeddings_sample_sparse_weights(tmp_path):
    """--sparse reads the weights benchmarks/prune_minilm.py saves (here: magnitude-pruned stand-ins,
    80% in 4x1 groups) and runs them group-sparse."""
    import numpy as np

    from sparselite import prune
    from sparselite.converters import zoo

    bert = zoo.minilm_l6()
    prune.magnitude_oneshot(bert, {"linear": 0.2}, 4, exclude="pooler.*")
    weights = tmp_path / "student.npz"
    np.savez(weights, **{n: p.detach().numpy() for n, p in bert.named_parameters() if not n.startswith("embeddings.")})
    result = subprocess.run([sys.executable, os.path.join(ROOT, "samples", "sentence-embeddings", "embed.py"),
                             "--sparse", str(weights), "--out", str(tmp_path)], capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "36 linear layers group-sparse, r=[4], density 0.20-0.20" in result.stdout
    rows = [re.findall(r"([+-]\d\.\d+)/([+-]\d\.\d+)", line) for line in result.stdout.splitlines() if "/+1.000" in line]
    assert len(rows) == 5 and all(abs(float(a) - float(b)) < 1e-3 for row in rows for a, b in row)
    missing = subprocess.run([sys.executable, os.path.join(ROOT, "samples", "sentence-embeddings", "embed.py"),
                              "--sparse", str(tmp_path / "none.npz")], capture_output=True, text=True, timeout=600)
    assert missing.returncode != 0 and "benchmarks/prune_minilm.py" in missing.stderr


def test_quick_start_demo_agrees_with_dense():
    """The README's demo at its default density: dense and pruned top-5 by name with probabilities, the same
    top-1 (a cat), the median latency with threads and the kernels each model ran."""
    result = subprocess.run([sys.executable, os.path.join(ROOT, "samples", "classify", "mobilenet_v2.py"),
                             "--runs", "3"], capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "agreement: top-1 the same (Egyptian cat)" in out or "agreement: top-1 the same (tabby" in out, out
    rows = re.findall(r"^  (\d)\. (.+?)\s+(\d+\.\d)%  (.+?)\s+(\d+\.\d)%$", out, re.M)
    assert [int(r[0]) for r in rows] == [1, 2, 3, 4, 5], out
    dense_top1, pruned_top1 = rows[0][1], rows[0][3]
    assert dense_top1 == pruned_top1 and "cat" in dense_top1
    for column in (2, 4):
        probs = [float(r[column]) for r in rows]
        assert probs == sorted(probs, reverse=True) and sum(probs) <= 100.05
    assert re.search(r"latency, median of 3 runs on 1 thread \(.+\): dense \d+\.\d ms, pruned \d+\.\d ms", out), out
    assert re.search(r"kernels, pruned: .*dwconv", out) and "max |diff| = " in out
