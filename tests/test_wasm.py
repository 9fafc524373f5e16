"""The WebAssembly builds (wasm/build.sh), SIMD128, relaxed SIMD and threads: their microkernels against the
C references, and the runtime modules giving the native outputs, run from pytest in wasmtime, Node and
(threads) headless Chromium (Node 20 runs relaxed SIMD behind --experimental-wasm-relaxed-simd)."""
import json
import os
import re
import shutil
import struct
import subprocess

import numpy as np
import pytest
import torch

import sparselite
from helpers import FUSED_CASES, FUSED_PRE_CASES, inverted_residual, rel_err
from sparselite._abi import DTYPES, STRUCTS
from sparselite.converters import from_torch, prune_groups, zoo

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
wasmtime = pytest.importorskip("wasmtime", reason="pip install wasmtime (the dev extra has it)")
# Build file suffix -> the best ISA it runs and the names cpu_isa() gives there.
BUILDS = {"": ("wasm_simd128", ["wasm_simd128"]),
          "-relaxed": ("wasm_relaxed_simd", ["wasm_simd128", "wasm_relaxed_simd"])}
RELAXED_NODE_FLAG = "--experimental-wasm-relaxed-simd"


def wasm_engine():
    config = wasmtime.Config()
    config.wasm_relaxed_simd = True
    return wasmtime.Engine(config)


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    missing = [tool for tool in ("clang-19", "wasm-ld-19") if not shutil.which(tool)]
    assert not missing and os.path.exists("/usr/lib/wasm32-wasi/libc.a"), (
        f"the WASM build needs apt-get install clang-19 lld-19 wasi-libc libclang-rt-19-dev-wasm32 (missing: {missing})")
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(["bash", os.path.join(ROOT, "wasm", "build.sh")], check=True, capture_output=True,
                   env=dict(os.environ, OUT=str(out)))
    return out


def run_command(path, args=(), dirs=()):
    """Runs a WASI command module; returns (exit code, stdout, stderr)."""
    engine = wasm_engine()
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    store = wasmtime.Store(engine)
    wasi = wasmtime.WasiConfig()
    wasi.argv = [str(path), *map(str, args)]
    out, err = f"{path}.stdout", f"{path}.stderr"
    wasi.stdout_file, wasi.stderr_file = out, err
    for d in dirs:
        wasi.preopen_dir(str(d), str(d))
    store.set_wasi(wasi)
    instance = linker.instantiate(store, wasmtime.Module.from_file(engine, str(path)))
    try:
        instance.exports(store)["_start"](store)
        code = 0
    except wasmtime.ExitTrap as e:
        code = e.code
    return code, open(out).read(), open(err).read()


def test_microkernels_of_both_builds_against_reference(dist):
    """The relaxed build's kernel test runs its relaxed kernels and its SIMD128 ones (the fallback
    of an isa mask): more checks than the SIMD128 build's, all passing."""
    passed = {}
    for suffix in BUILDS:
        code, out, err = run_command(dist / f"kernel_test{suffix}.wasm")
        assert code == 0, out + err[-3000:]
        assert " 0 failed, 0 kernels this CPU cannot run" in out, out
        passed[suffix] = int(out.split(" passed")[0])
    assert passed[""] > 500 and passed["-relaxed"] > 1.3 * passed[""]


class WasmModel:
    """The runtime module driven through its exported C API, as a JS host would."""

    def __init__(self, wasm_path, data, fuse=-1):
        engine = wasm_engine()
        linker = wasmtime.Linker(engine)
        linker.define_wasi()
        self.store = wasmtime.Store(engine)
        self.store.set_wasi(wasmtime.WasiConfig())
        exports = linker.instantiate(self.store, wasmtime.Module.from_file(engine, str(wasm_path))).exports(self.store)
        self.fn = lambda name, *a: exports[name](self.store, *a)
        self.memory = exports["memory"]
        self.fn("_initialize")
        self.model = self.fn("sl_model_new")
        assert self.fn("sl_model_set_fusion", self.model, fuse) == 0
        buf = self.fn("malloc", len(data))
        self.memory.write(self.store, data, buf)
        status = self.fn("sl_model_load_buffer", self.model, buf, len(data), 1)
        self.fn("free", buf)
        if status != 0:
            raise sparselite.InvalidModelError(self._string(self.fn("sl_model_last_error", self.model)))

    def _string(self, ptr):
        raw = self.memory.read(self.store, ptr, ptr + 512)
        return raw.split(b"\0", 1)[0].decode()

    def _data(self, kind, index):
        slot = self.fn("malloc", 4)
        assert self.fn(f"sl_model_{kind}_data", self.model, index, slot) == 0
        (ptr,) = struct.unpack("<I", self.memory.read(self.store, slot, slot + 4))
        self.fn("free", slot)
        return ptr

    def run(self, x, out_count):
        ptr = self._data("input", 0)
        self.memory.write(self.store, np.ascontiguousarray(x, np.float32).tobytes(), ptr)
        assert self.fn("sl_model_run", self.model) == 0
        ptr = self._data("output", 0)
        return np.frombuffer(self.memory.read(self.store, ptr, ptr + 4 * out_count), np.float32)

    def _info(self, kind, index):
        """(name, dtype, current shape) of an input or output, read through the wasm32 struct layout."""
        layout = STRUCTS["sl_tensor_info_t"]
        ptr = self.fn("malloc", layout["size"])
        assert self.fn(f"sl_model_{kind}_info", self.model, index, ptr) == 0
        raw = self.memory.read(self.store, ptr, ptr + layout["size"])
        self.fn("free", ptr)

        def field(name, fmt):
            return struct.unpack_from(fmt, raw, layout["fields"][name]["offset"])
        (rank,) = field("rank", "<i")
        return self._string(field("name", "<I")[0]), DTYPES[field("dtype", "<I")[0]][0], field("shape", "<8i")[:rank]

    def run_feeds(self, feeds):
        """Runs on {input name: array} of any size the dynamic axes allow, resizing first as a host
        does (sl_model_resize_input); returns the outputs at their current shapes."""
        names = [self._info("input", i)[0] for i in range(self.fn("sl_model_num_inputs", self.model))]
        for index, name in enumerate(names):
            shape = feeds[name].shape
            if shape == self._info("input", index)[2]:
                continue
            ptr = self.fn("malloc", 4 * len(shape))
            self.memory.write(self.store, struct.pack(f"<{len(shape)}i", *shape), ptr)
            status = self.fn("sl_model_resize_input", self.model, index, len(shape), ptr)
            self.fn("free", ptr)
            if status != 0:
                raise sparselite.InputError(self._string(self.fn("sl_model_last_error", self.model)))
        for index, name in enumerate(names):
            _, dtype, _ = self._info("input", index)
            self.memory.write(self.store, np.ascontiguousarray(feeds[name], dtype).tobytes(),
                              self._data("input", index))
        assert self.fn("sl_model_run", self.model) == 0, self._string(self.fn("sl_model_last_error", self.model))
        outputs = []
        for index in range(self.fn("sl_model_num_outputs", self.model)):
            _, dtype, shape = self._info("output", index)
            ptr, size = self._data("output", index), int(np.prod(shape)) * np.dtype(dtype).itemsize
            outputs.append(np.frombuffer(self.memory.read(self.store, ptr, ptr + size), dtype).reshape(shape))
        return outputs


@pytest.mark.parametrize("suffix", BUILDS)
@pytest.mark.parametrize("density", [1.0, 0.1])
def test_mobilenet_in_wasm_matches_native(dist, density, suffix):
    model = zoo.mobilenet_v2()
    if density < 1.0:
        prune_groups(model, density, group=4)
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    data = from_torch(model, torch.from_numpy(x)).to_bytes()
    (native,) = sparselite.load(data).run(x)
    wasm = WasmModel(dist / f"sparselite{suffix}.wasm", data).run(x, native.size)
    assert rel_err(wasm, native.ravel()) < 1e-4
    x[0, 2, 50, 60] = np.nan  # one NaN pixel reaches every output, as natively (tests/test_nonfinite.py)
    assert np.isnan(WasmModel(dist / f"sparselite{suffix}.wasm", data).run(x, native.size)).all()


@pytest.mark.parametrize("suffix", BUILDS)
@pytest.mark.parametrize("case", [0, 1, 4])
def test_fused_blocks_in_wasm_match_unfused_native(dist, case, suffix):
    """Every fused-block path (in place, per-band depthwise, stride 2, sparse, residual) in both
    WASM builds, in bands of 2 rows, against the native runtime run unfused."""
    data, x, _ = inverted_residual(FUSED_CASES[case])
    (native,) = sparselite.load(data, fuse=False).run(x)
    wasm = WasmModel(dist / f"sparselite{suffix}.wasm", data, fuse=2).run(x, native.size)
    assert rel_err(wasm, native.ravel()) < 1e-5



@pytest.mark.parametrize("suffix", BUILDS)
@pytest.mark.parametrize("case", [0, 3])
def test_leading_depthwise_blocks_in_wasm_match_unfused_native(dist, case, suffix):
    """Chains with a leading depthwise in both WASM builds, bands of 2 rows, against native unfused."""
    data, x, _ = inverted_residual(FUSED_PRE_CASES[case][0], pre=FUSED_PRE_CASES[case][1])
    (native,) = sparselite.load(data, fuse=False).run(x)
    wasm = WasmModel(dist / f"sparselite{suffix}.wasm", data, fuse=2).run(x, native.size)
    assert rel_err(wasm, native.ravel()) < 1e-5

def test_wasm_runtime_rejects_bad_files_and_survives_mutations(dist, tmp_path):
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, 2, 1), torch.nn.ReLU6(), torch.nn.Conv2d(8, 16, 1),
                              torch.nn.Conv2d(16, 16, 3, 1, 1, groups=16)).eval()
    prune_groups(net, 0.3, group=4)
    path = from_torch(net, torch.zeros(1, 3, 12, 12)).save(tmp_path / "net.slite")
    code, out, err = run_command(dist / "sl_run_test.wasm", [path], [tmp_path])
    assert code == 0 and " 0 failed" in out, out + err[-3000:]
    with pytest.raises(sparselite.InvalidModelError, match="invalid model"):
        WasmModel(dist / "sparselite.wasm", b"not a model at all, but long enough to parse a header")


@pytest.fixture(scope="module")
def pruned_mbv2(tmp_path_factory):
    """MobileNetV2 with 90% of its 4x1 groups pruned: (path, input, native output, native profile ops)."""
    model = zoo.mobilenet_v2()
    prune_groups(model, 0.1, group=4)
    x = np.random.default_rng(1).standard_normal((1, 3, 224, 224)).astype(np.float32)
    path = from_torch(model, torch.from_numpy(x)).save(tmp_path_factory.mktemp("mbv2") / "mbv2.slite")
    native = sparselite.load(path)
    return path, x, native.run(x)[0], native.profile_report(x, runs=1, warmup=0)["ops"]


PROFILE_FIELDS = ("name", "type", "flops", "dense_flops", "group_size", "weight_bytes", "activation_bytes")


def assert_fusion_within_native(ops, native_ops):
    """The WASM plan's fused blocks are the native plan's, which may hold more: where a core's L2
    is 2 MB or more, native also fuses stride-2 blocks (ops/fused_block.h); WASM reports no L2."""
    blocks = {op["fused_into"] for op in ops} - {None}
    assert blocks
    assert all(op["fused_into"] == native["fused_into"] for op, native in zip(ops, native_ops)
               if op["fused_into"] in blocks or native["fused_into"] in blocks)


def assert_wasm_profile(ops, native_ops, isa="wasm_simd128"):
    """Per-op profiles read from the WASM runtime (JS camelCase or Python keys) against the native
    run's: the same ops, FLOPs and bytes (decoded through the generated struct layout), real times,
    and every group-sparse 1x1 conv on a spmm kernel of the build's best ISA."""
    ops = [{re.sub("[A-Z]", lambda m: "_" + m[0].lower(), key): value for key, value in op.items()} for op in ops]
    assert [[op[k] for k in PROFILE_FIELDS] for op in ops] == [[op[k] for k in PROFILE_FIELDS] for op in native_ops]
    assert_fusion_within_native(ops, native_ops)
    assert all(op["ms"] >= 0 for op in ops) and sum(op["ms"] for op in ops) > 0
    sparse = [op for op in ops if op["type"] == "CONV2D" and op["group_size"]]
    assert len(sparse) == 34  # every 1x1 conv of MobileNetV2
    slow = {op["name"]: op["kernel"] for op in sparse
            if "spmm" not in op["kernel"] or not op["kernel"].endswith(f"__{isa}")}
    assert not slow, f"group-sparse 1x1 convs not on a {isa} spmm kernel: {slow}"


def run_node(dist, slite_path, x, tmp_path, profile_runs=0, relaxed=False):
    """run_node.mjs on sparselite.wasm, whose relaxed twin the loader picks where `relaxed` turns
    relaxed SIMD on in Node 20."""
    node = shutil.which("node")
    assert node, "the JS loader test needs Node.js >= 18 (node on PATH)"
    x_path, y_path = tmp_path / "x.f32", tmp_path / "y.f32"
    x.astype(np.float32).tofile(x_path)
    profile = ["--profile", str(profile_runs)] if profile_runs else []
    flags = [RELAXED_NODE_FLAG] if relaxed else []
    result = subprocess.run([node, *flags, os.path.join(ROOT, "wasm", "run_node.mjs"), *profile,
                             str(dist / "sparselite.wasm"), str(slite_path), str(x_path), str(y_path)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    return report, (np.fromfile(y_path, np.float32) if "error" not in report else None)


@pytest.mark.parametrize("relaxed", [False, True])
def test_js_loader_in_node_matches_native(dist, pruned_mbv2, tmp_path, relaxed):
    """sparselite.mjs picks the relaxed build exactly where the engine validates relaxed SIMD."""
    path, x, native, _ = pruned_mbv2
    report, y = run_node(dist, path, x, tmp_path, relaxed=relaxed)
    assert report["inputs"] == [{"name": "input", "dtype": "float32", "shape": [1, 3, 224, 224],
                                 "maxShape": [1, 3, 224, 224], "dynamicAxes": []}]
    build, isa = BUILDS["-relaxed" if relaxed else ""]
    assert report["shape"] == [1, 1000] and report["build"] == build and report["isa"] == isa
    assert rel_err(y, native.ravel()) < 1e-4


def test_js_loader_falls_back_to_simd128_without_the_relaxed_file(dist, pruned_mbv2, tmp_path):
    """A deployment that copied sparselite.wasm only still loads, on SIMD128, where relaxed SIMD is on."""
    path, x, native, _ = pruned_mbv2
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(dist / "sparselite.wasm", alone / "sparselite.wasm")
    report, y = run_node(alone, path, x, tmp_path, relaxed=True)
    assert report["build"] == "wasm_simd128" and rel_err(y, native.ravel()) < 1e-4


@pytest.mark.parametrize("relaxed", [False, True])
def test_js_loader_profiles_per_op(dist, pruned_mbv2, tmp_path, relaxed):
    """model.profile in sparselite.mjs (Node): sl_op_profile_t read by field name, a clock without BigInt."""
    path, x, _, native_ops = pruned_mbv2
    report, _ = run_node(dist, path, x, tmp_path, profile_runs=3, relaxed=relaxed)
    assert_wasm_profile(report["profile"], native_ops, BUILDS["-relaxed" if relaxed else ""][0])


def test_js_loader_reports_bad_files(dist, tmp_path):
    bad = tmp_path / "bad.slite"
    bad.write_bytes(b"\x10\x00\x00\x00SLIT" + bytes(64))
    report, _ = run_node(dist, bad, np.zeros(1, np.float32), tmp_path)
    assert "invalid model" in report["error"]


@pytest.fixture(scope="module")
def pyodide_dir():
    """The npm `pyodide` package, offline (tests/run.sh installs it; SPARSELITE_PYODIDE_DIR overrides)."""
    default = os.path.join(os.path.expanduser("~"), ".cache", "sparselite-npm", "node_modules", "pyodide")
    path = os.environ.get("SPARSELITE_PYODIDE_DIR", default)
    assert os.path.exists(os.path.join(path, "pyodide.mjs")), (
        f"Pyodide not found at {path}: npm install --prefix ~/.cache/sparselite-npm pyodide@0.29 (tests/run.sh does)")
    return path


def run_pyodide(dist, pyodide_dir, slite_path, inputs, tmp_path, profile_runs=0, out_dtype=np.float32, relaxed=False):
    """Runs the model in Pyodide on {name: array}, or on each of a list of them from one load; returns the
    report and the first output (of out_dtype; of each run, one after the other).
    relaxed: relaxed SIMD on in Node, so the backend picks the wheel's relaxed build."""
    (wheel,) = dist.glob("sparselite_wasm-*-py3-none-any.whl")
    y_path = tmp_path / "y.bin"
    args = []
    for run, feeds in enumerate([inputs] if isinstance(inputs, dict) else inputs):
        args += ["--"] if run else []
        for i, (name, x) in enumerate(feeds.items()):
            x.tofile(tmp_path / f"x{run}_{i}.bin")
            args.append(f"{name}:{x.dtype}:{'x'.join(map(str, x.shape))}:{tmp_path / f'x{run}_{i}.bin'}")
    profile = ["--profile", str(profile_runs)] if profile_runs else []
    flags = [RELAXED_NODE_FLAG] if relaxed else []
    result = subprocess.run([shutil.which("node"), *flags, os.path.join(ROOT, "wasm", "run_pyodide.mjs"), *profile, str(wheel),
                             str(slite_path), str(y_path)] + args, capture_output=True, text=True, timeout=600,
                            env=dict(os.environ, PYODIDE_DIR=pyodide_dir))
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    return report, (np.fromfile(y_path, out_dtype) if "error" not in report else None)


@pytest.mark.parametrize("relaxed", [False, True])
def test_python_api_in_pyodide_without_numpy_matches_native(dist, pyodide_dir, pruned_mbv2, tmp_path, relaxed):
    path, x, native, _ = pruned_mbv2
    report, y = run_pyodide(dist, pyodide_dir, path, {"input": x}, tmp_path, relaxed=relaxed)
    assert report.get("error") is None, report
    assert report["inputs"] == [["input", [1, 3, 224, 224], "float32", []]]
    assert report["output_type"] == "Tensor"  # no numpy in Pyodide here
    assert report["isa"] == BUILDS["-relaxed" if relaxed else ""][1]
    assert rel_err(y, native.ravel()) < 1e-4


def test_profile_in_pyodide(dist, pyodide_dir, pruned_mbv2, tmp_path):
    """Model.profile, profile_report and format_table inside Pyodide (no numpy there)."""
    path, x, _, native_ops = pruned_mbv2
    report, _ = run_pyodide(dist, pyodide_dir, path, {"input": x}, tmp_path, profile_runs=3)
    assert report.get("error") is None, report
    assert_wasm_profile(report["profile_report"]["ops"], native_ops)
    assert [(op["name"], op["op"], op["kernel"], op["flops"]) for op in report["profile"]] == [
        (op["name"], op["type"], op["kernel"], op["flops"]) for op in report["profile_report"]["ops"]]
    assert sum(op["ms"] for op in report["profile"]) > 0
    assert report["profile_report"]["machine"]["isa"] == ["wasm_simd128"] and "latency ms: p50" in report["table"]


def test_bad_file_is_a_python_exception_in_pyodide(dist, pyodide_dir, tmp_path):
    bad = tmp_path / "bad.slite"
    bad.write_bytes(b"\x10\x00\x00\x00SLIT" + bytes(64))
    report, _ = run_pyodide(dist, pyodide_dir, bad, {"input": np.zeros(1, np.float32)}, tmp_path)
    assert report["error"] == "InvalidModelError" and "invalid model" in report["message"]


def test_minilm_in_pyodide_matches_native(dist, pyodide_dir, tmp_path):
    """The same MiniLM .slite (dynamic batch and length, int64 ids) through the Python API in Pyodide,
    run shorter than converted so the WASM runtime resizes."""
    bert = zoo.minilm_l6()
    ids = torch.randint(1000, 30000, (2, 32), generator=torch.Generator().manual_seed(0))
    examples = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    path = from_torch(bert, examples, dynamic_axes=zoo.MINILM_AXES).save(tmp_path / "minilm.slite")
    feeds = {"input_ids": ids[:, :19].numpy(), "attention_mask": np.ones((2, 19), np.int64)}
    feeds["attention_mask"][1, 12:] = 0
    (native,) = sparselite.load(path).run(feeds)
    report, y = run_pyodide(dist, pyodide_dir, path, feeds, tmp_path)
    assert report.get("error") is None, report
    assert report["inputs"][0] == ["input_ids", [2, 32], "int64", [0, 1]] and report["shape"] == [2, 19, 384]
    assert rel_err(y, native.ravel()) < 1e-4


def test_js_loader_resizes_dynamic_inputs(dist, tmp_path):
    """sparselite.mjs in Node: int64 token ids (BigInt64Array) and model.resize on a model with a
    dynamic sequence length, against the native run."""
    from helpers import tiny_encoder

    _, converted = tiny_encoder()
    path = converted.save(tmp_path / "encoder.slite")
    ids = np.array([[3, 9, 27, 1, 5], [8, 2, 6, 0, 0]], np.int64)
    mask = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], np.int64)
    native = sparselite.load(path).run({"ids": ids, "mask": mask})[0]
    script = tmp_path / "resize.mjs"
    script.write_text(f"""
import {{ readFile }} from "node:fs/promises";
import {{ loadRuntime }} from {json.dumps(str(dist / "sparselite.mjs"))};
const runtime = await loadRuntime({json.dumps(str(dist / "sparselite.wasm"))});
const model = runtime.load(await readFile({json.dumps(str(path))}));
const before = model.inputs.map((s) => [s.shape, s.maxShape, s.dynamicAxes]);
model.resize("ids", [2, 5]);
const [y] = model.run({{ ids: BigInt64Array.from({ids.ravel().tolist()}.map(BigInt)),
                        mask: BigInt64Array.from({mask.ravel().tolist()}.map(BigInt)) }});
console.log(JSON.stringify({{ before, after: model.inputs.map((s) => s.shape), shape: y.shape, data: Array.from(y.data) }}));
""")
    result = subprocess.run([shutil.which("node"), str(script)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["before"][0] == [[2, 12], [2, 12], [1]] and report["after"] == [[2, 5], [2, 5]]
    assert report["shape"] == [2, 5, 16]
    assert rel_err(np.array(report["data"], np.float32), native.ravel()) < 1e-4


def test_reductions_and_resizes_in_node_match_native(dist, tmp_path):
    """REDUCE, RESIZE_NEAREST and RESIZE_BILINEAR (portable C) compiled for wasm32."""
    from test_reduce_resize import resample_model

    path, x, native = resample_model(tmp_path)
    report, y = run_node(dist, path, x, tmp_path)
    assert report["shape"] == list(native.shape) and rel_err(y, native.ravel()) < 1e-5


class Slices(torch.nn.Module):
    """SLICE runs (chunks), single elements (strides) and negative steps (flips)."""

    def forward(self, x):
        a, b = x.chunk(2, dim=1)
        return torch.cat([b.flip(2)[..., ::2], a[..., 1::2].flip(1, 3)], 1)


def test_slices_in_wasm_match_native(dist):
    x = np.random.default_rng(2).standard_normal((2, 8, 9, 10)).astype(np.float32)
    data = from_torch(Slices(), torch.from_numpy(x)).to_bytes()
    (native,) = sparselite.load(data).run(x)
    assert np.array_equal(native, Slices()(torch.from_numpy(x)).numpy())
    assert np.array_equal(WasmModel(dist / "sparselite.wasm", data).run(x, native.size), native.ravel())


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


def test_conv_transpose_in_wasm_matches_native(dist):
    x = np.random.default_rng(3).standard_normal((2, 6, 9, 11)).astype(np.float32)
    module = UpConvs().eval()
    data = from_torch(module, torch.from_numpy(x)).to_bytes()
    (native,) = sparselite.load(data).run(x)
    assert rel_err(native, module(torch.from_numpy(x)).detach().numpy()) < 1e-5
    assert rel_err(WasmModel(dist / "sparselite.wasm", data).run(x, native.size), native.ravel()) < 1e-5


def padding_mask_model(tmp_path):
    """ids != pad AND a bool mask (COMPARE, LOGICAL), and WHERE over the ids (int64 arithmetic after):
    bool and int64 inputs, a bool output first. Returns (path, inputs, native outputs)."""
    from sparselite.converters.ir import Graph
    from sparselite.converters.writer import serialize

    g = Graph()
    ids, mask = g.add_input("ids", (2, 6), "int64"), g.add_input("mask", (2, 6), "bool")
    pad = g.add_const("pad", np.array(1, np.int64))
    keep = g.add_op("COMPARE", [ids, pad], (2, 6), dict(kind="NOT_EQUAL"), name="ne", dtype="bool")
    both = g.add_op("LOGICAL", [keep, mask], (2, 6), dict(kind="AND"), name="and", dtype="bool")
    picked = g.add_op("WHERE", [both, ids, g.add_const("minus", np.array([-1], np.int64))], (2, 6), name="where",
                      dtype="int64")
    g.outputs += [both, g.add_op("MUL", [picked, ids], (2, 6), name="mul", dtype="int64")]
    path = tmp_path / "masks.slite"
    path.write_bytes(serialize(g))
    feeds = {"ids": np.array([[3, 1, 4, 1, 5, 9], [2, 6, 1, 1, 0, 7]], np.int64),
             "mask": np.array([[1, 1, 1, 1, 0, 0], [1, 0, 1, 1, 1, 1]], bool)}
    return path, feeds, sparselite.load(path).run(feeds)


def test_bool_graph_in_pyodide_and_node_matches_native(dist, pyodide_dir, tmp_path):
    """COMPARE, LOGICAL and WHERE with bool and int64 tensors in WASM: through the Python API in Pyodide
    (no numpy: bools as array('B')) and through sparselite.mjs in Node (Uint8Array), against native."""
    path, feeds, (native_bool, native_int) = padding_mask_model(tmp_path)
    assert np.array_equal(native_bool, (feeds["ids"] != 1) & feeds["mask"])
    report, y = run_pyodide(dist, pyodide_dir, path, feeds, tmp_path, out_dtype=bool)
    assert report.get("error") is None, report
    assert report["inputs"][1] == ["mask", [2, 6], "bool", []] and report["output_type"] == "Tensor"
    assert np.array_equal(y, native_bool.ravel())
    script = tmp_path / "masks.mjs"
    script.write_text(f"""
import {{ readFile }} from "node:fs/promises";
import {{ loadRuntime }} from {json.dumps(str(dist / "sparselite.mjs"))};
const runtime = await loadRuntime({json.dumps(str(dist / "sparselite.wasm"))});
const model = runtime.load(await readFile({json.dumps(str(path))}));
const [both, product] = model.run({{ ids: BigInt64Array.from({feeds["ids"].ravel().tolist()}.map(BigInt)),
                                     mask: Uint8Array.from({feeds["mask"].astype(int).ravel().tolist()}) }});
console.log(JSON.stringify({{ dtypes: model.outputs.map((s) => s.dtype), typed: both.data.constructor.name,
                              both: Array.from(both.data), product: Array.from(product.data, Number) }}));
""")
    result = subprocess.run([shutil.which("node"), str(script)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["dtypes"] == ["bool", "int64"] and report["typed"] == "Uint8Array"
    assert report["both"] == native_bool.astype(int).ravel().tolist()
    assert report["product"] == native_int.ravel().tolist()


def test_tensor_ops_in_wasm_match_native(dist):
    """CUMSUM, EXPAND, GATHER_ELEMENTS, GROUP_NORM and the elementwise activations (SIMD128)."""
    from test_tensor_ops import chain_model

    data, x, want = chain_model()
    (native,) = sparselite.load(data).run(x)
    assert np.allclose(native, want, rtol=1e-5, atol=1e-5)
    assert np.allclose(WasmModel(dist / "sparselite.wasm", data).run(x, native.size), native.ravel(), rtol=1e-5,
                       atol=1e-6)


def _hf_encoder(family, pruned=False):
    """A tiny Hugging Face encoder of tests/test_hf_families.py converted with dynamic batch and length:
    (.slite bytes, native model, feeds of its padded batch at the maxima and two smaller sizes)."""
    import test_hf_families as hf_families

    converted, native = hf_families._converted(family, hf_families._attentions(family)[0], pruned)
    feeds = [{k: v.numpy() for k, v in hf_families._feeds(family, case, seed=i + 1).items()}
             for i, case in enumerate(hf_families._cases(family))]
    return converted.to_bytes(), native, feeds


@pytest.mark.parametrize("suffix", BUILDS)
@pytest.mark.parametrize("family,pruned", [("wav2vec2", False), ("wav2vec2", True), ("mobilebert", False),
                                           ("mobilebert", True), ("deberta-v2", False)])
def test_dynamic_hf_encoders_in_wasm_match_native(dist, family, pruned, suffix):
    """Three sizes from one load, resized through the C API as a JS host does: Wav2Vec2's frames computed
    from its samples (floor((samples + offset) / divisor) at every resize; its convolutions as strided
    SLICEs and FULLY_CONNECTED per tap), MobileBERT's neighbour-token slices, DeBERTa's relative positions
    (GATHER_ELEMENTS); dense and 80% pruned in 4x1 groups (WASM spmm)."""
    data, native, runs = _hf_encoder(family, pruned)
    wasm = WasmModel(dist / f"sparselite{suffix}.wasm", data)
    for feeds in runs:
        (want,), (got,) = native.run(feeds), wasm.run_feeds(feeds)
        assert got.shape == want.shape and rel_err(got, want) < 1e-5, (got.shape, rel_err(got, want))


def test_wav2vec2_onnx_export_in_wasm_matches_native(dist):
    """The raw torch.onnx export's Wav2Vec2 (from_onnx: computed dimensions of computed ones folded into one
    formula over the samples) at three sample counts from one load; too few samples for one frame is
    refused as natively, naming the dimension and its formula."""
    import test_hf_onnx as hf_onnx

    wav2vec2 = hf_onnx.exported("wav2vec2")
    model = hf_onnx.convert(wav2vec2.data, wav2vec2.kind, wav2vec2.fixed).to_bytes()
    native, wasm = sparselite.load(model), WasmModel(dist / "sparselite.wasm", model)
    for feeds in hf_onnx.cases(wav2vec2.kind, wav2vec2.fixed, wav2vec2.pad_id):
        for got, want in zip(wasm.run_feeds(feeds), native.run(feeds)):
            assert got.shape == want.shape and rel_err(got, want) < 1e-5
    too_short = {"input_values": np.zeros((1, 12), np.float32)}
    with pytest.raises(sparselite.InputError) as native_error:
        native.run(too_short)
    with pytest.raises(sparselite.InputError, match=r"too short: dimension .* would be 0 at samples = 12") as error:
        wasm.run_feeds(too_short)
    assert str(error.value) == str(native_error.value)


def test_js_loader_follows_computed_dimensions(dist, tmp_path):
    """sparselite.mjs in Node: model.resize to each sample count of Wav2Vec2 in turn; the output's shape
    (frames computed from the samples) and values as natively."""
    data, native, runs = _hf_encoder("wav2vec2")
    path = tmp_path / "wav2vec2.slite"
    path.write_bytes(data)
    script = tmp_path / "frames.mjs"
    script.write_text(f"""
import {{ readFile }} from "node:fs/promises";
import {{ loadRuntime }} from {json.dumps(str(dist / "sparselite.mjs"))};
const runtime = await loadRuntime({json.dumps(str(dist / "sparselite.wasm"))});
const model = runtime.load(await readFile({json.dumps(str(path))}));
const outputs = [];
for (const [shape, values, mask] of {json.dumps([[list(f["input_values"].shape), f["input_values"].ravel().tolist(),
                                                  f["attention_mask"].ravel().tolist()] for f in runs])}) {{
  model.resize("input_values", shape);
  const [y] = model.run({{ input_values: Float32Array.from(values), attention_mask: BigInt64Array.from(mask.map(BigInt)) }});
  outputs.push({{ shape: y.shape, data: Array.from(y.data) }});
}}
console.log(JSON.stringify(outputs));
""")
    result = subprocess.run([shutil.which("node"), str(script)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    for feeds, got in zip(runs, json.loads(result.stdout.strip().splitlines()[-1]), strict=True):
        (want,) = native.run(feeds)
        assert got["shape"] == list(want.shape) and rel_err(np.array(got["data"], np.float32), want.ravel()) < 1e-5


@pytest.mark.parametrize("family", ["wav2vec2", "mobilebert"])
def test_dynamic_hf_encoders_in_pyodide_match_native(dist, pyodide_dir, tmp_path, family):
    """The Python API in Pyodide (sparselite.Tensor feeds, no numpy) resizing one loaded model to each size
    in turn; an audio input too short for one frame is an InputError there too."""
    data, native, runs = _hf_encoder(family)
    path = tmp_path / f"{family}.slite"
    path.write_bytes(data)
    report, y = run_pyodide(dist, pyodide_dir, path, runs, tmp_path)
    assert report.get("error") is None, report
    wants = [native.run(feeds)[0] for feeds in runs]
    assert report["shapes"] == [list(want.shape) for want in wants]
    assert rel_err(y, np.concatenate([want.ravel() for want in wants])) < 1e-5
    if family == "wav2vec2":
        report, _ = run_pyodide(dist, pyodide_dir, path, {"input_values": np.zeros((1, 12), np.float32),
                                                          "attention_mask": np.ones((1, 12), np.int64)}, tmp_path)
        assert report["error"] == "InputError" and "would be 0 at samples = 12" in report["message"], report


THREADS_SCRIPT = """
import { readFile } from "node:fs/promises";
import { loadRuntime } from %(mjs)s;
const [wasm, slite, input, numThreads] = process.argv.slice(2);
const raw = await readFile(input);
const x = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
const runtime = await loadRuntime(wasm, { numThreads: Number(numThreads) });
const bytes = await readFile(slite);
const outputs = {};
// The last count twice: the second model's pool reuses the workers the first one's freed. Counts
// above runtime.threads run on runtime.threads.
for (const threads of [1, 2, Number(numThreads), Number(numThreads)]) {
  const model = runtime.load(bytes, { numThreads: threads });
  outputs[threads] = Array.from(model.run([x])[0].data);
  model.free();
}
console.log(JSON.stringify({ build: runtime.build, threads: runtime.threads, workers: runtime.workers.length, outputs }));
"""


def run_threads_node(dist, slite_path, x, tmp_path, num_threads, relaxed=True):
    """THREADS_SCRIPT in Node: loadRuntime(numThreads) then models on 1, 2 and all its threads."""
    script = tmp_path / "threads.mjs"
    script.write_text(THREADS_SCRIPT % {"mjs": json.dumps(str(dist / "sparselite.mjs"))})
    x.astype(np.float32).tofile(tmp_path / "x.f32")
    flags = [RELAXED_NODE_FLAG] if relaxed else []
    result = subprocess.run([shutil.which("node"), *flags, str(script), str(dist / "sparselite.wasm"), str(slite_path),
                             str(tmp_path / "x.f32"), str(num_threads)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    report["outputs"] = {int(k): np.array(v, np.float32) for k, v in report["outputs"].items()}
    return report


@pytest.fixture(scope="module")
def single_threaded_outputs(dist, pruned_mbv2):
    """The pruned MobileNetV2's output from the relaxed single-threaded build (the threads build's twin)."""
    path, x, _, _ = pruned_mbv2
    return WasmModel(dist / "sparselite-relaxed.wasm", open(path, "rb").read()).run(x, 1000)


@pytest.mark.parametrize("num_threads", [2, 4])
def test_threads_build_in_node_matches_single_threaded_build(dist, pruned_mbv2, single_threaded_outputs, tmp_path,
                                                             num_threads):
    """sparselite-threads.wasm on worker_threads: 1, 2 and 4 threads give the single-threaded build's
    output bit for bit (tasks split work, never a sum), and freed pools hand their workers back."""
    path, x, native, _ = pruned_mbv2
    report = run_threads_node(dist, path, x, tmp_path, num_threads)
    assert report["build"] == "wasm_relaxed_simd" and report["threads"] == num_threads
    assert report["workers"] == num_threads - 1
    assert sorted(report["outputs"]) == sorted({1, 2, num_threads})
    for threads, y in report["outputs"].items():
        assert np.array_equal(y, single_threaded_outputs), threads
    assert rel_err(report["outputs"][num_threads], native.ravel()) < 1e-4


def test_threads_build_runs_dynamic_transformer_in_node(dist, tmp_path):
    """MiniLM (LAYER_NORM, SOFTMAX, MATMUL tasks) on 2 threads, resized shorter than converted."""
    bert = zoo.minilm_l6()
    prune_groups(bert, 0.2, group=4)
    ids = torch.randint(1000, 30000, (2, 32), generator=torch.Generator().manual_seed(0))
    path = from_torch(bert, {"input_ids": ids, "attention_mask": torch.ones_like(ids)},
                      dynamic_axes=zoo.MINILM_AXES).save(tmp_path / "minilm.slite")
    feeds = {"input_ids": ids[:, :19].numpy(), "attention_mask": np.ones((2, 19), np.int64)}
    feeds["attention_mask"][1, 12:] = 0
    (native,) = sparselite.load(path).run(feeds)
    script = tmp_path / "minilm.mjs"
    script.write_text(f"""
import {{ readFile }} from "node:fs/promises";
import {{ loadRuntime }} from {json.dumps(str(dist / "sparselite.mjs"))};
const runtime = await loadRuntime({json.dumps(str(dist / "sparselite.wasm"))}, {{ numThreads: 2 }});
const outputs = [];
for (const numThreads of [1, 2]) {{
  const model = runtime.load(await readFile({json.dumps(str(path))}), {{ numThreads }});
  model.resize("input_ids", [2, 19]);
  const [y] = model.run({{ input_ids: BigInt64Array.from({feeds["input_ids"].ravel().tolist()}.map(BigInt)),
                          attention_mask: BigInt64Array.from({feeds["attention_mask"].ravel().tolist()}.map(BigInt)) }});
  outputs.push(Array.from(y.data));
  model.free();
}}
console.log(JSON.stringify({{ threads: runtime.threads, outputs }}));
""")
    result = subprocess.run([shutil.which("node"), RELAXED_NODE_FLAG, str(script)], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    one, two = (np.array(y, np.float32) for y in report["outputs"])
    assert report["threads"] == 2 and np.array_equal(one, two)
    assert rel_err(two, native.ravel()) < 1e-4


def test_threads_fall_back_to_one_thread_where_not_available(dist, pruned_mbv2, single_threaded_outputs, tmp_path):
    """Without relaxed SIMD (Node 20's default) the threads build cannot validate: one thread, SIMD128."""
    path, x, native, _ = pruned_mbv2
    report = run_threads_node(dist, path, x, tmp_path, 2, relaxed=False)
    assert report["build"] == "wasm_simd128" and report["threads"] == 1 and report["workers"] == 0
    assert all(rel_err(y, native.ravel()) < 1e-4 for y in report["outputs"].values())


THREADS_PAGE = """<!doctype html><meta charset="utf-8"><title>threads</title>
<script type="module">
import { loadRuntime } from "./sparselite.mjs";
try {
  const runtime = await loadRuntime(new URL("./sparselite.wasm", location.href), { numThreads: 2 });
  const x = new Float32Array(await (await fetch("./x.f32")).arrayBuffer());
  const model = runtime.load(new Uint8Array(await (await fetch("./model.slite")).arrayBuffer()));
  const y = Array.from(model.run([x])[0].data);
  window.benchResult = { crossOriginIsolated: self.crossOriginIsolated, build: runtime.build,
                         threads: runtime.threads, y };
} catch (err) {
  window.benchResult = { error: String(err.stack ?? err) };
}
</script>"""


@pytest.mark.parametrize("isolated", [True, False])
def test_threads_build_in_chromium_matches_single_threaded_build(dist, pruned_mbv2, single_threaded_outputs, tmp_path,
                                                                isolated):
    """A page asking for 2 threads in headless Chromium: served with COOP/COEP it runs the threads build
    on a Web Worker (bit for bit the single-threaded build's output); without them, one thread."""
    import functools
    import http.server
    import threading

    npm = os.path.join(os.path.expanduser("~"), ".cache", "sparselite-npm", "node_modules")
    assert os.path.exists("/usr/bin/chromium") and os.path.exists(os.path.join(npm, "playwright-core")), (
        "needs Debian chromium and npm install --prefix ~/.cache/sparselite-npm playwright-core")
    path, x, _, _ = pruned_mbv2
    site = tmp_path / "site"
    site.mkdir()
    for name in ("sparselite.wasm", "sparselite-relaxed.wasm", "sparselite-threads.wasm", "sparselite.mjs",
                 "sparselite_abi.mjs"):
        shutil.copy(dist / name, site)
    shutil.copy(path, site / "model.slite")
    x.astype(np.float32).tofile(site / "x.f32")
    (site / "index.html").write_text(THREADS_PAGE)

    class Handler(http.server.SimpleHTTPRequestHandler):
        extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, ".mjs": "text/javascript",
                          ".wasm": "application/wasm"}

        def end_headers(self):
            if isolated:  # what makes a page cross-origin isolated (SharedArrayBuffer)
                self.send_header("Cross-Origin-Opener-Policy", "same-origin")
                self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
            super().end_headers()

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(site)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        result = subprocess.run([shutil.which("node"), os.path.join(ROOT, "benchmarks", "browser", "drive.mjs"),
                                 f"http://127.0.0.1:{httpd.server_address[1]}/index.html"], capture_output=True,
                                text=True, timeout=300, env=dict(os.environ, PLAYWRIGHT_DIR=os.path.join(npm, "playwright-core")))
    finally:
        httpd.shutdown()
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert "error" not in report, report
    assert report["crossOriginIsolated"] is isolated and report["build"] == "wasm_relaxed_simd"
    assert report["threads"] == (2 if isolated else 1)
    assert np.array_equal(np.array(report["y"], np.float32), single_threaded_outputs)
