"""The aarch64 build (phones, Raspberry Pi) under qemu-aarch64: NEON microkernels against the C
references, and `sparselite build-runtime`'s static sparselite-bench running a pruned MobileNetV2
with outputs matching the x86 run. Correctness only: timings under qemu mean nothing."""
import json
import os
import re
import shutil
import subprocess

import numpy as np
import pytest
import torch

import sparselite
from helpers import FUSED_CASES, FUSED_PRE_CASES, inverted_residual, native_make, rel_err
from sparselite.cli import main as cli
from sparselite.converters import from_torch, prune_groups, zoo
from sparselite.converters.writer import serialize

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CROSS = "aarch64-linux-gnu-gcc"


@pytest.fixture(scope="module")
def tools():
    missing = [t for t in (CROSS, "qemu-aarch64") if not shutil.which(t)]
    assert not missing, ("the ARM tests need apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user "
                         f"(tests/run.sh does); missing: {missing}")


@pytest.mark.parametrize("cpu", ["max", "cortex-a53"])
def test_neon_microkernels_against_reference(tools, tmp_path, cpu):
    """-cpu max has ARMv8.2-A fp16 (HWCAP_ASIMDHP), so every kernel runs, the fp16 ones included; the
    ARMv8.0 Cortex-A53 has not, so the same binary runs and skips exactly the fp16 kernels."""
    exe = native_make(str(tmp_path), "kernel_test", CC=CROSS, CFLAGS="-O3 -static")
    result = subprocess.run(["qemu-aarch64", "-cpu", cpu, exe], capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert int(result.stdout.split(" passed")[0]) > 700 and " 0 failed" in result.stdout
    kernels = os.path.join(ROOT, "native", "kernels")
    lists = [open(os.path.join(kernels, f, "list.inc")).read() for f in os.listdir(kernels) if f.startswith("f16-")]
    fp16 = [n for text in lists for n in re.findall(r"\bsl_f16_\w+__neon_fp16\b", text)]
    assert len(fp16) >= 6
    skipped = 0 if cpu == "max" else len(fp16)
    assert f", {skipped} kernels this CPU cannot run" in result.stdout


@pytest.fixture(scope="module")
def pruned_model(tmp_path_factory):
    d = tmp_path_factory.mktemp("model")
    model = zoo.mobilenet_v2()
    prune_groups(model, 0.1, group=4)
    x = np.random.default_rng(5).standard_normal((1, 3, 224, 224)).astype(np.float32)
    np.save(d / "x.npy", x)
    path = from_torch(model, torch.from_numpy(x), weights="fp16").save(d / "mbv2.slite")
    return path, d / "x.npy", x


@pytest.fixture(scope="module")
def aarch64_runtime(tools, tmp_path_factory):
    out = tmp_path_factory.mktemp("rt")
    assert cli(["build-runtime", "--target", "aarch64", "--out", str(out)]) == 0
    return out


def bench(runtime_dir, model, x_paths, out_dir, wrapper=(), extra=()):
    """Runs sparselite-bench; x_paths: one .npy, or a list of NAME=x.npy. Returns its output, its JSON
    report, and what it printed (stdout, then stderr)."""
    out, report = out_dir / "y.npy", out_dir / "run.json"
    inputs = [a for p in ([x_paths] if not isinstance(x_paths, list) else x_paths) for a in ("--input", str(p))]
    result = subprocess.run([*wrapper, str(runtime_dir / "sparselite-bench"), str(model), "--runs", "2", "--warmup",
                             "1", *inputs, *extra, "--output", str(out), "--json", str(report)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return np.load(out), json.loads(report.read_text()), result.stdout + result.stderr


def test_aarch64_bench_matches_x86(aarch64_runtime, pruned_model, tmp_path):
    path, x_path, x = pruned_model
    assert sorted(os.listdir(aarch64_runtime)) == ["libsparselite.a", "sparselite-bench", "sparselite.h"]
    y, report, stdout = bench(aarch64_runtime, path, x_path, tmp_path, wrapper=["qemu-aarch64"])
    (native,) = sparselite.load(path).run(x)
    assert y.shape == native.shape and rel_err(y, native) < 1e-4
    assert "neon" in stdout and "latency ms: p50" in stdout
    ops = sparselite.load(path).profile(x, runs=1)
    assert [o["name"] for o in report["ops"]] == [p.name for p in ops]
    # qemu's default CPU is -cpu max: ARMv8.2-A fp16 detected (HWCAP_ASIMDHP)
    assert report["machine"]["isa"] == ["neon", "neon_fp16"] and report["machine"]["arch"] == "aarch64"
    assert report["schema"] == "sparselite-profile/1" and report["source"] == "sparselite-bench"
    assert any("spmm" in o["kernel"] and o["flops"] < o["dense_flops"] for o in report["ops"])


def test_one_nan_pixel_reaches_every_output_on_aarch64(aarch64_runtime, pruned_model, tmp_path):
    path, _, x = pruned_model
    x = x.copy()
    x[0, 0, 7, 9] = np.nan
    np.save(tmp_path / "nan.npy", x)
    y, _, _ = bench(aarch64_runtime, path, tmp_path / "nan.npy", tmp_path, wrapper=["qemu-aarch64"])
    assert np.isnan(y).all()


@pytest.mark.parametrize("case,pre", [(FUSED_CASES[0], None), (FUSED_CASES[1], None), (FUSED_CASES[4], None),
                                      FUSED_PRE_CASES[0], FUSED_PRE_CASES[3]])
def test_fused_blocks_on_aarch64_match_unfused_x86(aarch64_runtime, tmp_path, case, pre):
    """Every fused-block path on NEON (bands of 2 rows forced), chains with a leading depthwise (in
    place, then in place or per band) too, against the x86 runtime unfused."""
    data, x, _ = inverted_residual(case, pre=pre)
    (tmp_path / "block.slite").write_bytes(data)
    np.save(tmp_path / "x.npy", x)
    y, report, stdout = bench(aarch64_runtime, tmp_path / "block.slite", tmp_path / "x.npy", tmp_path,
                              wrapper=["qemu-aarch64"], extra=["--fuse", "2"])
    (native,) = sparselite.load(data, fuse=False).run(x)
    assert rel_err(y, native) < 1e-5
    assert [o["fused_into"] for o in report["ops"]][1:] == [0] * (len(report["ops"]) - 1)
    assert "fused" in stdout


def test_host_runtime_build(pruned_model, tmp_path):
    path, x_path, x = pruned_model
    assert cli(["build-runtime", "--target", "x86_64", "--out", str(tmp_path / "rt")]) == 0
    y, report, _ = bench(tmp_path / "rt", path, x_path, tmp_path)
    (native,) = sparselite.load(path).run(x)
    assert rel_err(y, native) < 1e-4
    assert report["latency_ms"]["p50"] > 0 and report["arena_bytes"] > 0


def test_bench_rejects_bad_input(pruned_model, tmp_path):
    path, _, _ = pruned_model
    assert cli(["build-runtime", "--target", "x86_64", "--out", str(tmp_path / "rt")]) == 0
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.zeros((1, 3), np.float64))
    result = subprocess.run([str(tmp_path / "rt" / "sparselite-bench"), str(path), "--input", str(wrong)],
                            capture_output=True, text=True)
    assert result.returncode == 1 and "float32" in result.stderr


def test_minilm_on_aarch64_matches_x86(aarch64_runtime, tmp_path):
    """The MiniLM .slite (fp16, 50% pruned, dynamic length) on the aarch64 bench with int64 token ids,
    run shorter than converted so the runtime resizes."""
    bert = zoo.minilm_l6()
    prune_groups(bert, 0.5, group=4)
    ids = torch.randint(1000, 30000, (1, 48), generator=torch.Generator().manual_seed(0))
    path = from_torch(bert, {"input_ids": ids, "attention_mask": torch.ones_like(ids)}, weights="fp16",
                      dynamic_axes=zoo.MINILM_AXES).save(tmp_path / "minilm.slite")
    feeds = {"input_ids": ids[:, :21].numpy(), "attention_mask": np.ones((1, 21), np.int64)}
    feeds["attention_mask"][0, 17:] = 0
    for name, value in feeds.items():
        np.save(tmp_path / f"{name}.npy", value)
    y, report, stdout = bench(aarch64_runtime, path, [f"{n}={tmp_path / n}.npy" for n in feeds], tmp_path,
                              wrapper=["qemu-aarch64"])
    (native,) = sparselite.load(path).run(feeds)
    assert y.shape == (1, 21, 384) and rel_err(y, native) < 1e-4
    assert any("spmm" in o["kernel"] and "neon" in o["kernel"] for o in report["ops"])


def test_reductions_and_resizes_on_aarch64_match_x86(aarch64_runtime, tmp_path):
    """REDUCE, RESIZE_NEAREST and RESIZE_BILINEAR (portable C) built for aarch64."""
    from test_reduce_resize import resample_model

    path, x, native = resample_model(tmp_path)
    np.save(tmp_path / "x.npy", x)
    y, _, _ = bench(aarch64_runtime, path, tmp_path / "x.npy", tmp_path, wrapper=["qemu-aarch64"])
    assert y.shape == native.shape and rel_err(y, native) < 1e-5


class Slices(torch.nn.Module):
    """SLICE runs (chunks), single elements (strides) and negative steps (flips)."""

    def forward(self, x):
        a, b = x.chunk(2, dim=1)
        return torch.cat([b.flip(2)[..., ::2], a[..., 1::2].flip(1, 3)], 1)


def test_slices_on_aarch64_match_x86(aarch64_runtime, tmp_path):
    x = np.random.default_rng(2).standard_normal((2, 8, 9, 10)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    path = from_torch(Slices(), torch.from_numpy(x)).save(tmp_path / "slices.slite")
    y, _, _ = bench(aarch64_runtime, path, tmp_path / "x.npy", tmp_path, wrapper=["qemu-aarch64"])
    assert np.array_equal(y, Slices()(torch.from_numpy(x)).numpy())


class UpConvs(torch.nn.Module):
    """CONV_TRANSPOSE2D: stride 2 with output padding (gemm_nc), then grouped, dilated and stride 1 over
    more than 256 pixels (gemm, bands sharing rows)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.up = torch.nn.ConvTranspose2d(6, 4, 3, 2, 1, output_padding=1)
        self.mix = torch.nn.ConvTranspose2d(4, 6, 3, 1, 2, groups=2, dilation=2)

    def forward(self, x):
        return self.mix(torch.relu(self.up(x)))


def test_conv_transpose_on_aarch64_matches_x86(aarch64_runtime, tmp_path):
    x = np.random.default_rng(3).standard_normal((2, 6, 9, 11)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    module = UpConvs().eval()
    path = from_torch(module, torch.from_numpy(x)).save(tmp_path / "upconvs.slite")
    y, report, _ = bench(aarch64_runtime, path, tmp_path / "x.npy", tmp_path, wrapper=["qemu-aarch64"])
    (native,) = sparselite.load(path).run(x)
    assert y.shape == native.shape and rel_err(y, native) < 1e-5
    assert rel_err(y, module(torch.from_numpy(x)).detach().numpy()) < 1e-5
    assert any("neon" in o["kernel"] for o in report["ops"] if o["type"] == "CONV_TRANSPOSE2D")


def test_tensor_ops_on_aarch64_match_x86(aarch64_runtime, tmp_path):
    """CUMSUM, EXPAND, GATHER_ELEMENTS, GROUP_NORM and the elementwise activations (NEON)."""
    from test_tensor_ops import chain_model

    data, x, want = chain_model()
    path = tmp_path / "chain.slite"
    path.write_bytes(data)
    np.save(tmp_path / "x.npy", x)
    y, report, _ = bench(aarch64_runtime, path, tmp_path / "x.npy", tmp_path, wrapper=["qemu-aarch64"])
    (native,) = sparselite.load(data).run(x)
    assert y.shape == native.shape and np.allclose(y, native, rtol=1e-5, atol=1e-6)
    assert any("neon" in o["kernel"] for o in report["ops"] if o["type"] == "ACTIVATION")


def test_aarch64_fp16_mobilenet(aarch64_runtime, pruned_model, tmp_path):
    """--precision fp16 on a CPU with ARMv8.2-A fp16 (qemu -cpu max): the 1x1, FC and depthwise layers
    run the f16 kernels, within 1e-2 relative of fp32 (about 2.4e-3 here) with the same top-1. On an
    ARMv8.0 Cortex-A53 the same request runs fp32: the very same outputs, and the in-order gemm gives
    -cpu max's fp32 outputs exactly."""
    path, x_path, _ = pruned_model
    runs = {}
    for cpu in ("max", "cortex-a53"):
        for precision in ("fp32", "fp16"):
            out = tmp_path / f"{cpu}-{precision}"
            out.mkdir()
            runs[cpu, precision] = bench(aarch64_runtime, path, x_path, out, wrapper=["qemu-aarch64", "-cpu", cpu],
                                         extra=["--precision", precision])
    y32, y16 = runs["max", "fp32"][0], runs["max", "fp16"][0]
    assert rel_err(y16, y32) < 1e-2 and y16.argmax() == y32.argmax()
    assert not np.array_equal(y16, y32)
    kernels = {o["type"]: [] for o in runs["max", "fp16"][1]["ops"]}
    for o in runs["max", "fp16"][1]["ops"]:
        kernels[o["type"]].append(o["kernel"])
    assert any("f16_spmm" in k for k in kernels["CONV2D"]) and any("f16_dwconv" in k for k in kernels["CONV2D"])
    assert all("f16" not in o["kernel"] for o in runs["max", "fp32"][1]["ops"])
    assert "note: --precision fp16 needs ARMv8.2-A fp16" not in runs["max", "fp16"][2]
    assert "note: --precision fp16 needs ARMv8.2-A fp16 arithmetic (neon_fp16), which this CPU lacks" in \
        runs["cortex-a53", "fp16"][2]
    assert np.array_equal(runs["cortex-a53", "fp16"][0], runs["cortex-a53", "fp32"][0])
    assert all("f16" not in o["kernel"] for o in runs["cortex-a53", "fp16"][1]["ops"])
    # the A53 is in-order (MIDR part 0xd03): its gemm is the in-order kernel, whose sums are NEON's bit for bit
    assert runs["cortex-a53", "fp16"][1]["machine"]["isa"] == ["neon", "neon_inorder"]
    assert np.array_equal(runs["cortex-a53", "fp32"][0], y32)
    a53_kernels = {o["kernel"] for o in runs["cortex-a53", "fp32"][1]["ops"]}
    assert "sl_f32_gemm_ukernel_8x8__neon_inorder" in a53_kernels
    assert not any("inorder" in o["kernel"] for o in runs["max", "fp32"][1]["ops"])


def test_aarch64_fp16_chains_keep_halves_between_layers(aarch64_runtime, pruned_model, tmp_path):
    """At fp16, a tensor one fp16 convolution writes and only fp16 convolutions read stays in halves
    (MobileNetV2's expand -> depthwise -> project): the same outputs, bit for bit, as the layers
    converting at their edges (the model with every convolution's output also a graph output, so no
    tensor chains), and half the bytes moved where it chains (the profile's activation bytes)."""
    _, x_path, _ = pruned_model
    module = zoo.mobilenet_v2()
    prune_groups(module, 0.2, group=4)
    x = torch.from_numpy(np.load(x_path))
    chained = from_torch(module.eval(), x)
    apart = from_torch(module.eval(), x)
    apart.graph.outputs += [op.outputs[0] for op in apart.graph.ops
                            if op.type == "CONV2D" and op.outputs[0] not in apart.graph.outputs]
    runs = {}
    for name, data in (("chained", chained.to_bytes()), ("apart", serialize(apart.graph, weights=apart.weights))):
        model = tmp_path / f"{name}.slite"
        model.write_bytes(data)
        for precision in ("fp32", "fp16"):
            out = tmp_path / f"{name}-{precision}"
            out.mkdir()
            runs[name, precision] = bench(aarch64_runtime, model, x_path, out, wrapper=["qemu-aarch64", "-cpu", "max"],
                                          extra=["--precision", precision])
    y16, y16_apart, y32 = runs["chained", "fp16"][0], runs["apart", "fp16"][0], runs["chained", "fp32"][0]
    assert np.array_equal(y16, y16_apart)
    assert rel_err(y16, y32) < 1e-2 and y16.argmax() == y32.argmax()
    moved = {name: {o["name"]: o["activation_bytes"] for o in runs[name, "fp16"][1]["ops"]} for name in ("chained", "apart")}
    fp32_moved = {o["name"]: o["activation_bytes"] for o in runs["chained", "fp32"][1]["ops"]}
    halved = [n for n in moved["chained"] if moved["chained"][n] < fp32_moved[n]]
    assert len(halved) > 40, halved  # most of the 52 convolutions read or write a chained tensor
    assert all(moved["apart"][n] == fp32_moved[n] for n in moved["apart"])


def test_aarch64_fp16_chains_over_a_batch(aarch64_runtime, tmp_path):
    """Chained halves over two images (each image's halves at its own offset): an inverted residual
    block of 4x1-sparse 1x1 layers at fp16 against numpy within fp16's error, its chained tensors moving
    half the bytes."""
    data, x, ref = inverted_residual(FUSED_CASES[8])
    path = tmp_path / "block.slite"
    path.write_bytes(data)
    np.save(tmp_path / "x.npy", x)
    reports = {}
    for precision in ("fp32", "fp16"):
        (tmp_path / precision).mkdir()
        y, reports[precision], _ = bench(aarch64_runtime, path, tmp_path / "x.npy", tmp_path / precision,
                                         wrapper=["qemu-aarch64", "-cpu", "max"], extra=["--precision", precision])
    assert x.shape[0] == 2 and rel_err(y, ref) < 1e-2
    halved = [a["activation_bytes"] < b["activation_bytes"] for a, b in zip(reports["fp16"]["ops"], reports["fp32"]["ops"])]
    assert halved == [True, True, True, False]  # expand, depthwise, project; the residual ADD reads floats


class DenseHead(torch.nn.Module):
    """A 7x7 map's dense 1x1 layers (channel-major gemm_nc: fused ReLU6, a residual add) and a
    classifier over a batch of 2 (FULLY_CONNECTED)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.stem = torch.nn.Conv2d(3, 48, 3, stride=4, padding=1)
        self.expand, self.project = torch.nn.Conv2d(48, 200, 1), torch.nn.Conv2d(200, 48, 1)
        self.fc = torch.nn.Linear(48, 37)

    def forward(self, x):
        h = torch.relu(self.stem(x))
        h = h + self.project(torch.nn.functional.relu6(self.expand(h)))
        return self.fc(h.mean((2, 3)))


def fp16_against_fp32(runtime, path, inputs, tmp_path, cpu="max"):
    """The model's first output and ops report on qemu -cpu max (or `cpu`) at fp32 and at fp16."""
    runs = {}
    for precision in ("fp32", "fp16"):
        out = tmp_path / f"{cpu}-{precision}"
        out.mkdir()
        y, report, _ = bench(runtime, path, inputs, out, wrapper=["qemu-aarch64", "-cpu", cpu],
                             extra=["--precision", precision])
        runs[precision] = y, {(o["type"], o["kernel"]) for o in report["ops"]}
    return runs["fp32"], runs["fp16"]


def test_aarch64_in_order_core_with_fp16(aarch64_runtime, tmp_path):
    """An A55 (qemu's max with the A55's MIDR: in-order, with fp16 arithmetic) over dense 1x1 layers on
    56x56 maps: fp32 runs the in-order gemm, fp16 the f16 gemm on panels repacked from its 8 rows to 4
    (the 3x3 stem stays fp32, on the in-order gemm), each giving exactly what -cpu max gives."""
    x = np.random.default_rng(6).standard_normal((1, 3, 224, 224)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    path = from_torch(DenseHead().eval(), torch.from_numpy(x)).save(tmp_path / "head.slite")
    (y32, k32), (y16, k16) = fp16_against_fp32(aarch64_runtime, path, tmp_path / "x.npy", tmp_path)
    (a32, j32), (a16, j16) = fp16_against_fp32(aarch64_runtime, path, tmp_path / "x.npy", tmp_path,
                                               cpu="max,midr=0x411fd050")
    inorder, neon = "sl_f32_gemm_ukernel_8x8__neon_inorder", "sl_f32_gemm_ukernel_16x4__neon"
    assert ("CONV2D", inorder) in j32 and not any("inorder" in k for _, k in k32 | k16)
    assert ("CONV2D", "sl_f16_gemm_ukernel_32x4__neon_fp16") in j16
    assert {(t, neon if k == inorder else k) for t, k in j16} == k16
    assert np.array_equal(a32, y32) and np.array_equal(a16, y16)


def test_aarch64_fp16_gemm_nc_channel_major(aarch64_runtime, tmp_path):
    """Channel-major gemm_nc layers (a 7x7 map, a classifier) run f16_gemm_nc at fp16: within 1e-2 of
    fp32 (about 1e-3 here), the same top-1 per image."""
    x = np.random.default_rng(4).standard_normal((2, 3, 28, 28)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    module = DenseHead().eval()
    path = from_torch(module, torch.from_numpy(x)).save(tmp_path / "head.slite")
    (y32, k32), (y16, k16) = fp16_against_fp32(aarch64_runtime, path, tmp_path / "x.npy", tmp_path)
    assert rel_err(y32, module(torch.from_numpy(x)).detach().numpy()) < 1e-5
    assert rel_err(y16, y32) < 1e-2 and (y16.argmax(1) == y32.argmax(1)).all() and not np.array_equal(y16, y32)
    assert {t for t, k in k16 if "f16_gemm_nc" in k} == {"CONV2D", "FULLY_CONNECTED"}, k16
    assert {t for t, k in k32 if "gemm_nc" in k} == {"CONV2D", "FULLY_CONNECTED"} and all("f16" not in k for _, k in k32)


@pytest.mark.parametrize("density", [1.0, 0.5])
def test_aarch64_fp16_minilm(aarch64_runtime, tmp_path, density):
    """MiniLM at fp16 on qemu -cpu max (21 tokens of a 48-token conversion): every token-major FC runs
    fp16, through f16_gemm_nc dense (3.5e-3 relative to fp32) or through transposes into f16_spmm at
    50% pruned (1.4e-3)."""
    bert = zoo.minilm_l6()
    if density < 1:
        prune_groups(bert, density, group=4)
    ids = torch.randint(1000, 30000, (1, 48), generator=torch.Generator().manual_seed(0))
    path = from_torch(bert, {"input_ids": ids, "attention_mask": torch.ones_like(ids)}, weights="fp16",
                      dynamic_axes=zoo.MINILM_AXES).save(tmp_path / "minilm.slite")
    feeds = {"input_ids": ids[:, :21].numpy(), "attention_mask": np.ones((1, 21), np.int64)}
    for name, value in feeds.items():
        np.save(tmp_path / f"{name}.npy", value)
    (y32, _), (y16, k16) = fp16_against_fp32(aarch64_runtime, path, [f"{n}={tmp_path / n}.npy" for n in feeds],
                                             tmp_path)
    assert y16.shape == (1, 21, 384) and rel_err(y16, y32) < 1e-2 and not np.array_equal(y16, y32)
    fc = {k for t, k in k16 if t == "FULLY_CONNECTED"}
    assert fc and all(("f16_gemm_nc" if density == 1 else "f16_spmm") in k for k in fc), fc


def test_fp16_precision_without_the_isa_runs_fp32(pruned_model):
    """On this host (no ARMv8.2-A fp16) precision="fp16" is accepted and runs fp32; other values are refused."""
    path, _, x = pruned_model
    assert "neon_fp16" not in sparselite.cpu_isa()
    (y32,) = sparselite.load(path).run(x)
    (y16,) = sparselite.load(path, precision="fp16").run(x)
    assert np.array_equal(y16, y32)
    with pytest.raises(ValueError, match="precision must be 'fp32' or 'fp16', got 'half'"):
        sparselite.load(path, precision="half")


def test_cli_precision_falls_back_with_a_note(pruned_model, tmp_path, capsys):
    """`sparselite run/bench/profile --precision fp16` on this host (no neon_fp16): a note on stderr
    saying why, and the fp32 outputs."""
    path, x_path, _ = pruned_model
    outputs = {}
    for precision in ("fp32", "fp16"):
        out = tmp_path / f"{precision}.npy"
        assert cli(["run", str(path), "--input", str(x_path), "--precision", precision, "--output", str(out)]) == 0
        outputs[precision] = np.load(out)
        err = capsys.readouterr().err
        assert ("note: --precision fp16 needs ARMv8.2-A fp16 arithmetic (neon_fp16)" in err) == (precision == "fp16")
    assert np.array_equal(outputs["fp16"], outputs["fp32"])
    for command in ("bench", "profile"):
        assert cli([command, str(path), "--input", str(x_path), "--runs", "1", "--warmup", "0", "--precision",
                    "fp16"]) == 0
        captured = capsys.readouterr()
        assert "every layer runs fp32" in captured.err and "f16" not in captured.out
    with pytest.raises(SystemExit):
        cli(["run", str(path), "--precision", "half"])
    assert "invalid choice: 'half'" in capsys.readouterr().err
