"""The C runtime on its own: -Werror build, microkernels against the C references, ASan/UBSan
over real models, libFuzzer on the loader."""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from helpers import (FUSED_CASES, NATIVE, SANITIZE, group_sparse_weight, inverted_residual, native_make, single_op,
                     tiny_encoder, without_padding)
from sparselite.converters import from_torch, prune_groups
from sparselite.converters.passes import run_all
from sparselite.converters.writer import serialize


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Small real models: a pruned conv net with every activation path, a sparse FC graph, an
    attention layer with a dynamic length and inverted-residual chains (which sl_run_test also
    runs fused)."""
    d = tmp_path_factory.mktemp("corpus")

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = torch.nn.Conv2d(3, 8, 3, 2, 1)
            self.dw = torch.nn.Conv2d(8, 8, 3, 1, 1, groups=8)
            self.pw = torch.nn.Conv2d(8, 16, 1)
            self.fc = torch.nn.Linear(32, 10)

        def forward(self, x):
            y = torch.nn.functional.hardswish(self.stem(x))
            y = torch.nn.functional.relu6(self.dw(y)) + y
            y = torch.nn.functional.max_pool2d(self.pw(y), 2, 2)
            y = torch.cat([y, torch.sigmoid(y)], 1)
            y = torch.nn.functional.pad(y, (1, 0, 0, 1))
            return torch.softmax(self.fc(torch.flatten(torch.nn.functional.adaptive_avg_pool2d(y, 1), 1)), -1)

    net = Net().eval()
    prune_groups(net, 0.3, group=4)
    paths = [from_torch(net, torch.zeros(1, 3, 16, 16)).save(d / "net.slite")]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 24)).astype(np.float32)
    g, _ = single_op("FULLY_CONNECTED", [x], (2, 13), consts=[group_sparse_weight(rng, 13, 24, 8, 0.4)],
                     group_size=8)
    run_all(g, sparse=False)
    (d / "fc.slite").write_bytes(serialize(g))
    paths.append(d / "fc.slite")
    # output rows 2 KB apart: the transpose's tiles walked column by column, with a tail column
    x = rng.standard_normal((1, 512, 3, 5)).astype(np.float32)
    g, _ = single_op("TRANSPOSE", [x], (1, 3, 5, 512), options=dict(perm=[0, 2, 3, 1]))
    (d / "transpose.slite").write_bytes(without_padding(lambda: serialize(g)))
    paths.append(d / "transpose.slite")
    _, encoder = tiny_encoder()   # transformer ops, int64 ids and a dynamic sequence length
    paths.append(encoder.save(d / "encoder.slite"))
    for i in (0, 1, 4):  # fused blocks: in place with residual, stride 2 sparse, per-band depthwise
        (d / f"block{i}.slite").write_bytes(without_padding(lambda: inverted_residual(FUSED_CASES[i])[0]))
        paths.append(d / f"block{i}.slite")
    return [str(p) for p in paths]


def test_warning_free_build(tmp_path):
    native_make(str(tmp_path), "libsparselite.a", CC="gcc")


def test_sanitized_run_and_mutations(tmp_path, corpus):
    exe = native_make(str(tmp_path), "sl_run_test", CC="gcc", CFLAGS=SANITIZE)
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=1", UBSAN_OPTIONS="print_stacktrace=1")
    result = subprocess.run([exe, *corpus], capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    assert " 0 failed" in result.stdout


@pytest.mark.parametrize("cflags", ["-O2", SANITIZE])
def test_every_microkernel_against_reference(tmp_path, cflags):
    """Each SIMD (and portable) microkernel this CPU runs, on random shapes, tails and sparsities."""
    exe = native_make(str(tmp_path), "kernel_test", CC="gcc", CFLAGS=cflags)
    result = subprocess.run([exe], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    passed = int(result.stdout.split(" passed")[0])
    assert passed > 1000 and " 0 failed" in result.stdout, result.stdout


def test_runs_on_a_cpu_without_avx(tmp_path, corpus):
    """Under qemu emulating a CPU without AVX (Westmere), cpuid must steer every op to SSE2 or portable
    kernels: any AVX/AVX2 instruction outside the selected kernels would be an illegal instruction."""
    assert shutil.which("qemu-x86_64"), "apt-get install qemu-user (CI does)"
    for target in ("kernel_test", "sl_run_test"):
        exe = native_make(str(tmp_path), target, CC="gcc")
        args = [exe] + (corpus if target == "sl_run_test" else [])
        result = subprocess.run(["qemu-x86_64", "-cpu", "Westmere", *args], capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        assert " 0 failed" in result.stdout
        if target == "kernel_test":
            assert " 0 kernels this CPU cannot run" not in result.stdout  # the AVX2 ones were skipped


def test_no_instruction_set_is_chosen_behind_the_registry(tmp_path):
    """Kernels are picked from the registry by the model's ISA mask only: no GNU ifunc or target_clones
    (which pick AVX2 whatever the mask says) in the library."""
    lib = native_make(str(tmp_path), "libsparselite.a", CC="gcc")
    symbols = subprocess.run(["readelf", "-sW", lib], capture_output=True, text=True, check=True).stdout
    assert "IFUNC" not in symbols and "resolver" not in symbols


def test_libfuzzer_on_loader(tmp_path, corpus):
    clang = shutil.which("clang-19") or shutil.which("clang")
    assert clang, "libFuzzer needs clang: apt-get install clang-19 libclang-rt-19-dev (CI does)"
    exe = native_make(str(tmp_path), "fuzz_load", CC=clang)
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    for p in corpus:
        shutil.copy(p, seeds)
    # The hostile .slite corpus too: its files sit at the edges the structure-aware mutator pushes
    # further (the larger ones are the count limits, whose cost is time, not memory safety).
    hostile = tmp_path / "hostile"
    subprocess.run([sys.executable, os.path.join(os.path.dirname(NATIVE), "tests", "hostile", "make_corpus.py"),
                    str(hostile), "--only", "slite"], check=True, capture_output=True)
    for p in hostile.glob("*.slite"):
        if 0 < p.stat().st_size <= 65536:
            shutil.copy(p, seeds)
    env = dict(os.environ, ASAN_OPTIONS="allocator_may_return_null=1:detect_leaks=1")
    seconds = os.environ.get("SPARSELITE_FUZZ_SECONDS", "30")
    result = subprocess.run([exe, str(seeds), f"-max_total_time={seconds}", "-rss_limit_mb=4096",
                             "-max_len=65536", "-timeout=10", f"-artifact_prefix={tmp_path}/"],
                            capture_output=True, text=True, env=env, timeout=int(seconds) + 300)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "Done" in result.stderr
