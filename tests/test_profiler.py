"""The profiler: per-op medians that add up, hand-checked FLOPs, Perfetto trace, HTML, and one
JSON schema for Python and the sparselite-bench binary (`sparselite profile --from`)."""
import json
import os
import re
import subprocess

import numpy as np
import pytest
import torch

import sparselite
from helpers import group_sparse_weight, single_op
from sparselite.cli import main as cli
from sparselite.converters import from_torch, prune_groups, zoo
from sparselite.converters.ir import Graph
from sparselite.converters.passes import run_all
from sparselite.converters.writer import serialize
from sparselite.profiler import (chrome_trace, family_totals, format_summary, format_table, html_report,
                                 kernel_family, load_profile, ops_total_ms)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def mbv2(tmp_path_factory):
    model = zoo.mobilenet_v2()
    prune_groups(model, 0.1, group=4)
    path = from_torch(model, torch.zeros(1, 3, 224, 224)).save(tmp_path_factory.mktemp("m") / "mbv2.slite")
    return path, np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)


def test_profile_has_every_op_in_order_and_ordered_percentiles(mbv2):
    """Structure only: timings themselves are never asserted (a busy machine skews them; speed lives in
    benchmarks/)."""
    path, x = mbv2
    model = sparselite.load(path)
    profile = model.profile_report(x, runs=5, warmup=1)
    assert [op["name"] for op in profile["ops"]] == [p.name for p in model.profile(x, runs=1)]
    assert all(op["ms"] >= 0 for op in profile["ops"])
    lat = profile["latency_ms"]
    assert 0 < lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"]


def test_flops_match_hand_counts():
    rng = np.random.default_rng(0)
    g = Graph()
    x = g.add_input("x", (1, 3, 10, 10))
    y = g.add_op("CONV2D", [x, g.add_const("w", rng.standard_normal((8, 3, 3, 3)).astype(np.float32))],
                 (1, 8, 10, 10), options=dict(padding=(1, 1, 1, 1)), name="conv3x3")
    w = group_sparse_weight(rng, 16, 8, 4, 0.5, empty_rows=False)
    kept = int(np.count_nonzero(np.abs(w.reshape(4, 4, 8)).sum(axis=1)))  # stored 4x1 groups
    y = g.add_op("CONV2D", [y, g.add_const("pw", w.reshape(16, 8, 1, 1))], (1, 16, 10, 10), name="pointwise")
    g.tensors["pw"].group_size = 4
    g.outputs.append(y)
    run_all(g, sparse=False)
    model = sparselite.load(serialize(g))
    ops = {op["name"]: op for op in model.profile_report(rng.standard_normal((1, 3, 10, 10)).astype(np.float32),
                                                         runs=2, warmup=0)["ops"]}
    assert ops["conv3x3"]["dense_flops"] == ops["conv3x3"]["flops"] == 2 * 8 * 3 * 9 * 100
    assert ops["pointwise"]["dense_flops"] == 2 * 16 * 8 * 100
    assert ops["pointwise"]["flops"] == 2 * kept * 4 * 100
    assert "spmm" in ops["pointwise"]["kernel"]
    # Weights as stored (fp32 dense; sparse: row pointers, uint16 columns, 4 values a group); activations in + out.
    assert ops["conv3x3"]["weight_bytes"] == 8 * 3 * 9 * 4 and ops["conv3x3"]["group_size"] == 0
    assert ops["pointwise"]["weight_bytes"] == (4 + 1) * 4 + kept * 2 + kept * 4 * 4
    assert ops["pointwise"]["group_size"] == 4
    assert ops["conv3x3"]["activation_bytes"] == (3 + 8) * 100 * 4
    assert ops["pointwise"]["activation_bytes"] == (8 + 16) * 100 * 4


def test_cli_writes_json_trace_html_and_reads_them_back(mbv2, tmp_path, capsys):
    path, _ = mbv2
    out = {k: tmp_path / f"p.{k}" for k in ("json", "trace", "html")}
    assert cli(["profile", str(path), "--runs", "3", "--warmup", "1", "--json", str(out["json"]), "--trace",
                str(out["trace"]), "--html", str(out["html"])]) == 0
    first = capsys.readouterr().out
    profile = load_profile(out["json"])
    trace = json.loads(out["trace"].read_text())
    assert [e["name"] for e in trace["traceEvents"]] == [op["name"] for op in profile["ops"]]
    assert all(e["ph"] == "X" and e["dur"] >= 0 for e in trace["traceEvents"])
    page = out["html"].read_text()
    assert "features.2.conv.0.0" in page and "Time by kernel family" in page and "http" not in page  # self-contained
    assert cli(["profile", "--from", str(out["json"])]) == 0
    assert capsys.readouterr().out == first  # the same report from the saved JSON
    assert format_table(profile) in first and chrome_trace(profile) == trace and html_report(profile)


def test_bench_binary_json_has_the_same_schema(mbv2, tmp_path, capsys):
    path, _ = mbv2
    assert cli(["build-runtime", "--target", "x86_64", "--out", str(tmp_path / "rt")]) == 0
    run = tmp_path / "run.json"
    subprocess.run([str(tmp_path / "rt" / "sparselite-bench"), str(path), "--runs", "3", "--warmup", "1", "--json",
                    str(run)], check=True, capture_output=True)
    device = load_profile(run)
    python = sparselite.load(path).profile_report(np.zeros((1, 3, 224, 224), np.float32), runs=2, warmup=0)
    assert set(device) == set(python) and device["source"] == "sparselite-bench"
    assert [op["name"] for op in device["ops"]] == [op["name"] for op in python["ops"]]
    assert set(device["ops"][0]) == set(python["ops"][0]) and set(device["machine"]) == set(python["machine"])
    capsys.readouterr()
    assert cli(["profile", "--from", str(run)]) == 0
    assert "latency ms: p50" in capsys.readouterr().out


def test_bench_binary_and_bench_command_agree_on_options_and_summary(mbv2, tmp_path, capsys):
    """sparselite-bench --help; the same input options and the same summary as `sparselite bench` (op-type
    totals, latency, memory, ISA names), and both warn when threads outnumber the cores."""
    path, _ = mbv2
    assert cli(["build-runtime", "--target", "x86_64", "--out", str(tmp_path / "rt")]) == 0
    bench = str(tmp_path / "rt" / "sparselite-bench")
    usage = subprocess.run([bench, "--help"], capture_output=True, text=True)
    assert usage.returncode == 0
    for option in ("--runs", "--warmup", "--threads", "--input", "--shape", "--fuse", "--output", "--json"):
        assert option in usage.stdout
    np.save(tmp_path / "x.npy", np.zeros((1, 3, 224, 224), np.float32))
    threads = str((os.cpu_count() or 1) + 1)
    args = [str(path), "--runs", "2", "--warmup", "0", "--threads", threads, "--input", f"input={tmp_path / 'x.npy'}"]
    native = subprocess.run([bench, *args], capture_output=True, text=True)
    assert native.returncode == 0, native.stderr
    capsys.readouterr()
    assert cli(["bench", *args]) == 0
    python = capsys.readouterr()
    for err in (native.stderr, python.err):
        assert f"--threads {threads} is more than the" in err
    summary = native.stdout[native.stdout.index("op type"):].splitlines()
    ours = python.out.splitlines()

    def shape(lines):   # the words; numbers, paths and the op-type rows (ordered by time) left out
        return [" ".join(w for w in line.replace(";", " ").split() if w.isalpha() or w in ("p50", "p90", "p99"))
                for line in lines if not line.startswith("model:") and not line.split()[0].isupper()]

    assert shape(summary) == shape(ours)

    def type_counts(lines):   # op type -> ops; the order follows the times, which vary run to run
        return {line.split()[0]: line.split()[1] for line in lines[1:] if line.split()[0].isupper()}

    assert type_counts(summary) == type_counts(ours) and len(type_counts(ours)) == 5
    isa = "ISA " + " ".join(sparselite.cpu_isa())
    assert isa in native.stdout and isa in python.out and "ISA bits" not in native.stdout


def test_bench_command_and_bad_profile(mbv2, tmp_path, capsys):
    path, _ = mbv2
    assert cli(["bench", str(path), "--runs", "3", "--warmup", "1"]) == 0
    out = capsys.readouterr().out
    assert "latency ms: p50" in out and "memory: arena" in out and "CONV2D" in out
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    assert cli(["profile", "--from", str(bad)]) == 1
    assert "not a sparselite-profile/1 profile" in capsys.readouterr().err


@pytest.mark.parametrize("isa,suffixes", [([], ("__scalar",)), (["sse2"], ("__sse2", "__scalar")),
                                          (None, None)])
def test_every_op_names_a_kernel_the_isa_mask_allows(isa, suffixes):
    """Row ops (softmax, layer norm, activations, binary ops) run registry kernels like the matrix ops, and
    only of the instruction sets the mask allows: isa=["sse2"] runs no AVX2 anywhere."""
    from helpers import tiny_encoder

    _, converted = tiny_encoder()
    model = sparselite.load(converted.to_bytes(), isa=isa)
    ids = np.ones((2, 12), np.int64)
    ops = model.profile({"ids": ids, "mask": ids}, runs=1)
    named = {op.op for op in ops if op.kernel}
    assert {"SOFTMAX", "LAYER_NORM", "ADD", "FULLY_CONNECTED", "MATMUL"} <= named
    registry = {name for name, _ in sparselite.kernels()}
    allowed = suffixes or tuple(f"__{i}" for i in sparselite.cpu_isa()) + ("__scalar",)
    for op in ops:
        assert not op.kernel or (op.kernel in registry and op.kernel.endswith(allowed)), (op.op, op.kernel)


def test_report_groups_time_by_kernel_family(mbv2):
    """Families from the kernels (stem gemm, depthwise, spmm by r, elementwise, data movement); their
    subtotals are the per-op total (arithmetic); header, density and r in the table."""
    path, x = mbv2
    profile = sparselite.load(path).profile_report(x, runs=2, warmup=0, name="mbv2")
    families = {kernel_family(op) for op in profile["ops"]}
    assert families == {"stem / gemm", "depthwise", "spmm r=4", "elementwise", "data movement"}
    assert kernel_family(profile["ops"][0]) == "stem / gemm"
    assert all(kernel_family(op) == "spmm r=4" for op in profile["ops"] if "spmm" in op["kernel"])
    totals = family_totals(profile)
    assert [f for f, _, _ in totals] == ["stem / gemm", "depthwise", "spmm r=4", "elementwise", "data movement"]
    assert sum(n for _, _, n in totals) == len(profile["ops"])
    assert abs(sum(ms for _, ms, _ in totals) - ops_total_ms(profile)) < 1e-9
    table = format_table(profile)
    for text in ("ISA " + " ".join(sparselite.cpu_isa()), "1 threads", "2 runs after 0 warm-up", "latency ms: p50",
                 "time by kernel family", "spmm r=4", "per-op total"):
        assert text in table, text
    pointwise = next(line for line in table.splitlines() if line.startswith("features.1.conv.1 "))
    assert " 0.10 " in pointwise and " 4 " in pointwise   # density and r
    rows = re.findall(r"^  (.+?)\s+(\d+) ops\s+([\d.]+) ms\s+([\d.]+)%", table, re.M)
    *families, total = rows
    assert [r[0] for r in families] == [f for f, _, _ in totals] and total[0] == "per-op total"
    assert abs(sum(float(r[2]) for r in families) - float(total[2])) <= 0.0005 * len(rows)   # shown to 3 decimals
    assert abs(sum(float(r[3]) for r in families) - 100) < 0.05 * len(rows)
    summary = format_summary(profile)
    assert summary.splitlines()[1].startswith("CONV2D") and "process peak RSS" in summary


def test_compare_two_runs_layer_by_layer(mbv2, tmp_path, capsys):
    """profile --from dense.json --from sparse.json: every op of both, its family and density in each run."""
    path, x = mbv2
    dense = from_torch(zoo.mobilenet_v2(), torch.zeros(1, 3, 224, 224)).save(tmp_path / "dense.slite")
    runs = []
    for model in (dense, path):
        runs.append(tmp_path / f"{os.path.basename(str(model))}.json")
        assert cli(["profile", str(model), "--runs", "2", "--warmup", "0", "--json", str(runs[-1])]) == 0
    capsys.readouterr()
    html_path = tmp_path / "compare.html"
    assert cli(["profile", "--from", str(runs[0]), "--from", str(runs[1]), "--html", str(html_path)]) == 0
    out = capsys.readouterr().out
    assert "A: dense.slite" in out and "B: mbv2.slite" in out and "A's speed at p50" in out
    row = next(line for line in out.splitlines() if line.startswith("features.1.conv.1 "))
    assert "stem / gemm" in row and "1.00" in row and "spmm r=4" in row and "0.10" in row
    ops = load_profile(runs[1])["ops"]
    assert sum(1 for line in out.splitlines() if line.split()[:1] and line.split()[0] in {o["name"] for o in ops}) \
        == len(ops)
    assert "Layer by layer" in html_path.read_text()
    assert cli(["profile", "--from", str(runs[0]), "--from", str(runs[1]), "--json", str(tmp_path / "x.json")]) == 1
    assert "comparing" in capsys.readouterr().err
