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
