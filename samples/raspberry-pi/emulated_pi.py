"""A Raspberry Pi OS 64-bit stand-in on an x86 machine: Debian bookworm's arm64 Python (the one Raspberry Pi
OS 12 ships) unpacked into a folder and run under qemu-aarch64, with no compiler inside.

    python samples/raspberry-pi/emulated_pi.py [--pi 4|5] [--precision fp32|fp16] dist/sparselite-*_aarch64.whl [model.slite]

installs the wheel there as pip does on a board (pip itself running under emulation, wheels only), then runs
`sparselite doctor` and, given a model, `sparselite run` on it; tests/test_wheels.py drives the same steps.
--pi picks the core: 4 (default) a Cortex-A72, no fp16 arithmetic; 5 a Cortex-A76, which has it, so
`--precision fp16` runs fp16 layers there and falls back to fp32, with a note, on a 4.
`--fetch` only downloads what they and the aarch64 wheel's build need.
Needs qemu-user (apt-get install qemu-user); Debian's packages and the arm64 wheels of numpy and cffi are
downloaded once into ~/.cache/sparselite-pi (about 40 MB). Under emulation a run is ~20x slower than on a Pi:
use it for correctness, never for timings.
"""
import argparse
import glob
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "native", "tools"))
from build_wheels import CACHE, DEBIAN_PYTHON, debian_arm64, fetch_debs, run  # noqa: E402

# Python and what its standard library links (no compiler, no pip: pip runs from its own wheel).
PACKAGES = [f"python{DEBIAN_PYTHON}-minimal", f"libpython{DEBIAN_PYTHON}-minimal", f"libpython{DEBIAN_PYTHON}-stdlib",
            "libc6", "libgcc-s1", "libstdc++6", "zlib1g", "libexpat1", "libffi8", "libssl3", "libbz2-1.0",
            "liblzma5", "libuuid1", "libcrypt1"]
# What `pip install sparselite` pulls on a board, as arm64 wheels, plus pip.
WHEELS = ["numpy", "cffi", "flatbuffers", "pip"]


def make_root(dest):
    """The arm64 root filesystem in dest (~5 s once the .debs are cached)."""
    return debian_arm64(PACKAGES, dest)


def arm64_wheels():
    """numpy, cffi (and what they need) and pip as manylinux aarch64 wheels, downloaded once."""
    wheels = os.path.join(CACHE, "wheels")
    if not all(glob.glob(os.path.join(wheels, f"{name}-*.whl")) for name in WHEELS):
        version = DEBIAN_PYTHON.replace(".", "")
        run([sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:", "--dest", wheels,
             "--platform", "manylinux2014_aarch64", "--platform", "manylinux_2_28_aarch64",
             "--python-version", version, "--implementation", "cp", "--abi", f"cp{version}", "--abi", "abi3",
             "--abi", "none", *WHEELS])
    return wheels


def fetch():
    """Downloads what make_root and pip_install need, so that they run offline (tests/run.sh calls it)."""
    fetch_debs(PACKAGES + [f"libpython{DEBIAN_PYTHON}-dev"])
    arm64_wheels()


# The boards' cores, not qemu's default "max": a Pi 4's Cortex-A72 (NEON, no fp16 arithmetic), a Pi 5's
# Cortex-A76 (ARMv8.2-A fp16).
CORES = {"4": "cortex-a72", "5": "cortex-a76"}


def python(root, *args, site=None, pi="4", **kwargs):
    """Runs the emulated board's python3 with args; `site` is where packages were installed."""
    env = dict(os.environ, PYTHONPATH=site or "", PYTHONDONTWRITEBYTECODE="1")
    cmd = ["qemu-aarch64", "-cpu", CORES[pi], "-L", root, os.path.join(root, "usr", "bin", f"python{DEBIAN_PYTHON}"),
           *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, **kwargs)


def pip_install(root, wheel, site):
    """`pip install` of the sparselite wheel and its dependencies into site, wheels only (nothing compiles)."""
    deps = arm64_wheels()
    (pip,) = glob.glob(os.path.join(deps, "pip-*.whl"))
    result = python(root, os.path.join(pip, "pip"), "install", "--quiet", "--no-index", "--only-binary=:all:",
                    "--no-compile", "--find-links", deps, "--target", site, wheel, timeout=900)
    if result.returncode != 0:
        raise SystemExit(f"pip install failed under emulation:\n{result.stdout[-2000:]}{result.stderr[-3000:]}")


def main(argv):
    if argv == ["--fetch"]:
        return fetch()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pi", choices=sorted(CORES), default="4", help="the board whose core qemu emulates")
    parser.add_argument("--precision", choices=["fp32", "fp16"], default="fp32", help="passed to sparselite run")
    parser.add_argument("wheel", help="the sparselite aarch64 wheel")
    parser.add_argument("model", nargs="?", help="a .slite to run there")
    args = parser.parse_args(argv)
    if not shutil.which("qemu-aarch64"):
        raise SystemExit("needs qemu-user (apt-get install qemu-user)")
    work = os.path.join(CACHE, "board")
    shutil.rmtree(work, ignore_errors=True)
    root, site = make_root(os.path.join(work, "root")), os.path.join(work, "site")
    pip_install(root, os.path.abspath(args.wheel), site)
    for command in (["doctor"], ["run", os.path.abspath(args.model), "--precision", args.precision] if args.model else None):
        if command:
            result = python(root, "-m", "sparselite.cli", *command, site=site, pi=args.pi)
            print(result.stdout + result.stderr, end="")


if __name__ == "__main__":
    main(sys.argv[1:])
