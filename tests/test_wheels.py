"""The release files native/tools/build_wheels.py writes: manylinux wheels for x86_64 and aarch64 and the sdist.
The x86_64 wheel and the sdist install into fresh venvs that hold only what pip pulls (numpy, cffi,
flatbuffers), the wheel also running on an emulated CPU without AVX; the aarch64 wheel installs, with pip under qemu-aarch64, into Debian bookworm's arm64 Python
(Raspberry Pi OS 12's) with no compiler, runs a 90%-pruned MobileNetV2 and MiniLM to the x86 outputs, and
profiles there for the desktop's `sparselite profile --from`."""
import json
import os
import re
import subprocess
import sys
import venv
import zipfile

import numpy as np
import pytest
import torch

import sparselite
from helpers import rel_err
from sparselite.cli import main as cli
from sparselite.converters import from_torch, prune_groups, zoo

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "samples", "raspberry-pi"))
sys.path.insert(0, os.path.join(ROOT, "native", "tools"))
import build_wheels  # noqa: E402
import emulated_pi  # noqa: E402

ELF_MACHINE = {"x86_64": 62, "aarch64": 183}


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    paths = build_wheels.main(["--out", str(out), "--no-pyodide"])
    return {"sdist": paths[0], **dict(zip(build_wheels.ARCHES, paths[1:]))}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A 90%-pruned MobileNetV2 and MiniLM (fp16 weights, MiniLM with a dynamic length), their inputs and
    the x86 outputs."""
    d = tmp_path_factory.mktemp("models")
    cnn = zoo.mobilenet_v2()
    prune_groups(cnn, 0.1, group=4)
    x = np.random.default_rng(5).standard_normal((1, 3, 224, 224)).astype(np.float32)
    from_torch(cnn, torch.from_numpy(x), weights="fp16").save(d / "mbv2.slite")
    np.savez(d / "mbv2_in.npz", input=x)
    bert = zoo.minilm_l6()
    prune_groups(bert, 0.1, group=4)
    ids = torch.randint(1000, 30000, (1, 32), generator=torch.Generator().manual_seed(0))
    from_torch(bert, {"input_ids": ids, "attention_mask": torch.ones_like(ids)}, weights="fp16",
               dynamic_axes=zoo.MINILM_AXES).save(d / "minilm.slite")
    feeds = {"input_ids": ids[:, :19].numpy(), "attention_mask": np.ones((1, 19), np.int64)}
    feeds["attention_mask"][0, 15:] = 0   # padding, and shorter than converted: the runtime resizes
    np.savez(d / "minilm_in.npz", **feeds)
    expected = {"mbv2": sparselite.load(d / "mbv2.slite").run(x)[0],
                "minilm": sparselite.load(d / "minilm.slite").run(feeds)[0]}
    return d, expected


# Loads and runs both models in whatever Python runs it; each output goes to <name>_out.npy.
RUN_MODELS = """
import sys, numpy as np, sparselite
d = sys.argv[1]
for name in ("mbv2", "minilm"):
    feeds = dict(np.load(f"{d}/{name}_in.npz"))
    (y,) = sparselite.load(f"{d}/{name}.slite").run(feeds if len(feeds) > 1 else feeds["input"])
    np.save(f"{d}/{name}_out.npy", y)
"""


RUN_WITHOUT_NUMPY = """
import array, sys
sys.modules["numpy"] = None   # numpy cannot be imported
import sparselite
model, d = sys.argv[1:]
x = array.array("f")
x.frombytes(open(f"{d}/x.bin", "rb").read())
(y,) = sparselite.load(model).run(x)
open(f"{d}/y.bin", "wb").write(y.data.tobytes())
"""


def check_outputs(d, expected):
    for name, want in expected.items():
        got = np.load(d / f"{name}_out.npy")
        assert got.shape == want.shape and rel_err(got, want) <= 1e-4, name


def check_build_info(info, arch):
    assert info["arch"] == arch and info["version"] == info["runtime_version"] == sparselite.__version__
    assert info["build"]["cc"] == build_wheels.COMPILERS["zig"].format(arch=arch)
    assert not re.search(r"-march|-mcpu|-mavx|-msse[34]|-mfma", info["build"]["flags"]), info["build"]["flags"]


def test_wheels_are_abi3_manylinux(dist):
    version = sparselite.__version__
    assert os.path.basename(dist["sdist"]) == f"sparselite-{version}.tar.gz"
    for arch in build_wheels.ARCHES:
        name = os.path.basename(dist[arch])   # zig cc links against glibc 2.17: manylinux2014
        assert name == f"sparselite-{version}-cp39-abi3-manylinux2014_{arch}.manylinux_2_17_{arch}.whl"
        with zipfile.ZipFile(dist[arch]) as wheel:
            names = wheel.namelist()
            so = wheel.read("sparselite/_native.abi3.so")
        assert int.from_bytes(so[18:20], "little") == ELF_MACHINE[arch]
        assert {"sparselite/cli.py", "sparselite/doctor.py", "sparselite/converters/torch_frontend.py"} <= set(names)
        assert os.path.getsize(dist[arch]) < 2_000_000


def fresh_venv(path):
    """A venv without this interpreter's packages: only what pip installs into it is there."""
    venv.EnvBuilder(with_pip=True).create(path)
    return os.path.join(path, "bin")


def pip_install(bin_dir, target):
    result = subprocess.run([os.path.join(bin_dir, "pip"), "install", "--quiet", target], capture_output=True,
                            text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]


def test_x86_wheel_runs_with_numpy_alone(dist, models, tmp_path):
    d, expected = models
    bin_dir = fresh_venv(tmp_path / "venv")
    pip_install(bin_dir, dist["x86_64"])
    python = os.path.join(bin_dir, "python")
    subprocess.run([python, "-c", RUN_MODELS, str(d)], check=True, timeout=600)
    check_outputs(d, expected)
    installed = subprocess.run([os.path.join(bin_dir, "pip"), "list", "--format=freeze"], capture_output=True,
                               text=True, check=True).stdout
    assert {line.split("==")[0].lower() for line in installed.split()} <= {"sparselite", "numpy", "cffi", "pycparser",
                                                                           "flatbuffers", "pip", "setuptools"}
    assert subprocess.run([os.path.join(bin_dir, "sparselite"), "--version"], capture_output=True, text=True,
                          check=True).stdout.strip() == f"sparselite {sparselite.__version__}"
    doctor = json.loads(subprocess.run([os.path.join(bin_dir, "sparselite"), "doctor", "--json"], capture_output=True,
                                       text=True, check=True).stdout)
    check_build_info(doctor, "x86_64")
    assert doctor["isa"] == sparselite.cpu_isa()   # the same runtime choice as the source build's
    assert not any(extra["ok"] for extra in doctor["extras"].values())
    # On a CPU without AVX (qemu's Westmere) the wheel still runs: nothing above the baseline is compiled in
    # outside the kernels cpuid picks, which would be an illegal instruction here. Numpy's own wheels do not
    # run there, so this goes without numpy (sparselite's array.array inputs and outputs).
    np.load(d / "mbv2_in.npz")["input"].tofile(tmp_path / "x.bin")
    westmere = ["qemu-x86_64", "-cpu", "Westmere", python]
    subprocess.run([*westmere, "-c", RUN_WITHOUT_NUMPY, str(d / "mbv2.slite"), str(tmp_path)], check=True, timeout=900)
    y = np.fromfile(tmp_path / "y.bin", np.float32).reshape(expected["mbv2"].shape)
    assert rel_err(y, expected["mbv2"]) <= 1e-4
    doctor = json.loads(subprocess.run([*westmere, "-c", "import sys; sys.modules['numpy'] = None; "
                                        "from sparselite.doctor import print_report; print_report(as_json=True)"],
                                       capture_output=True, text=True, check=True, timeout=600).stdout)
    assert doctor["isa"] == ["sse2"]


def test_sdist_builds_from_source(dist, models, tmp_path):
    d, expected = models
    bin_dir = fresh_venv(tmp_path / "venv")
    pip_install(bin_dir, dist["sdist"])
    subprocess.run([os.path.join(bin_dir, "python"), "-c", RUN_MODELS, str(d)], check=True, timeout=600)
    check_outputs(d, expected)


@pytest.fixture(scope="module")
def board(dist, tmp_path_factory):
    """The emulated Pi with the aarch64 wheel installed by pip (under qemu) into its site folder."""
    work = tmp_path_factory.mktemp("pi")
    root = emulated_pi.make_root(str(work / "root"))
    assert not any(os.path.exists(os.path.join(root, "usr", "bin", cc)) for cc in ("gcc", "cc", "aarch64-linux-gnu-gcc"))
    site = str(work / "site")
    emulated_pi.pip_install(root, dist["aarch64"], site)
    return root, site


def on_board(board, *args):
    root, site = board
    result = emulated_pi.python(root, *args, site=site, timeout=900)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result.stdout


def test_aarch64_wheel_on_emulated_pi(board, models, tmp_path, capsys):
    d, expected = models
    on_board(board, "-c", RUN_MODELS, str(d))
    check_outputs(d, expected)
    # The board profiles; the desktop reads the file back.
    x = np.load(d / "mbv2_in.npz")["input"]
    np.save(tmp_path / "x.npy", x)
    on_board(board, "-m", "sparselite.cli", "profile", str(d / "mbv2.slite"), "--runs", "1", "--warmup", "0",
             "--input", str(tmp_path / "x.npy"), "--json", str(tmp_path / "pi.json"))
    profile = json.loads((tmp_path / "pi.json").read_text())
    assert profile["machine"]["arch"] == "aarch64" and profile["machine"]["isa"] == ["neon"]
    assert [op["name"] for op in profile["ops"]] == [p.name for p in sparselite.load(d / "mbv2.slite").profile(x, runs=1)]
    assert any("neon" in op["kernel"] and "spmm" in op["kernel"] for op in profile["ops"])
    capsys.readouterr()
    assert cli(["profile", "--from", str(tmp_path / "pi.json")]) == 0
    table = capsys.readouterr().out
    assert "neon" in table and profile["ops"][0]["name"] in table


def test_doctor_and_version_on_emulated_pi(board):
    assert on_board(board, "-m", "sparselite.cli", "--version").strip() == f"sparselite {sparselite.__version__}"
    doctor = json.loads(on_board(board, "-m", "sparselite.cli", "doctor", "--json"))
    check_build_info(doctor, "aarch64")
    assert doctor["isa"] == ["neon"] and doctor["default_threads"] == 1 and doctor["cores"] >= 1
    assert not any(extra["ok"] for extra in doctor["extras"].values())
    text = on_board(board, "-m", "sparselite.cli", "doctor")
    assert "isa: neon" in text and build_wheels.COMPILERS["zig"].format(arch="aarch64") in text and "not installed" in text


def test_version_and_doctor_here(capsys, monkeypatch, tmp_path):
    with pytest.raises(SystemExit) as done:
        cli(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"sparselite {sparselite.__version__}"
    # An extra that is missing, and one whose import breaks (here: a dependency of its own missing).
    monkeypatch.setitem(sys.modules, "onnx", None)
    (tmp_path / "transformers").mkdir()
    (tmp_path / "transformers" / "__init__.py").write_text("import tokenizers_that_is_not_there\n")
    monkeypatch.delitem(sys.modules, "transformers", raising=False)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert cli(["doctor", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["runtime_version"] == info["version"] == sparselite.__version__ and info["isa"] == sparselite.cpu_isa()
    assert info["extras"]["torch"] == dict(package="torch", extra="torch", ok=True, version=torch.__version__)
    assert info["extras"]["onnx"]["error"] == "not installed"
    assert "tokenizers_that_is_not_there" in info["extras"]["transformers"]["error"]
    assert cli(["doctor"]) == 0
    text = capsys.readouterr().out
    assert f"isa: {' '.join(sparselite.cpu_isa())}" in text and "onnx            not installed" in text
