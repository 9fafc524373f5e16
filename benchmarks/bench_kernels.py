"""Micro-benchmark of every microkernel in the registry that this CPU runs.

Builds native/tools/bench_kernels.c and runs it (one thread, median of --reps runs): each ISA's
spmm kernels against the same ISA's dense gemm on MobileNetV2's 1x1 shapes at 50..95% sparsity
and r = 1, 2, 4, 8 (GFLOP/s counted on stored weights, and the speed-up over gemm), then the
depthwise and row kernels (elements per second). Prints tables, names the CPU, writes JSON.

    python benchmarks/bench_kernels.py [--reps 31] [--isa-mask 1] [--json out.json]
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import cpu_name, machine_info, write_json  # noqa: E402

SPARSITIES = (0.5, 0.7, 0.8, 0.9, 0.95)


def spmm_table(rows):
    gemm = {(r["kernel"], r["shape"]): r for r in rows if r["family"] == "gemm"}
    for (gemm_kernel, shape), g in gemm.items():
        for group in (1, 2, 4, 8):
            cells = [f"{x['gflops']:.1f} ({x['speedup_vs_gemm']:.2f}x)" for x in rows
                     if x["family"] == "spmm" and x["isa"] == g["isa"] and x["shape"] == shape and x["r"] == group]
            if cells:
                print(f"| {gemm_kernel.split('__')[1]} | {shape} | {g['gflops']:.1f} | {group} | " + " | ".join(cells)
                      + " |")


def reps_count(text):
    """--reps: bench_kernels keeps at most 101 timings per kernel."""
    n = int(text)
    if not 1 <= n <= 101:
        raise argparse.ArgumentTypeError(f"{n} is not in 1..101")
    return n


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=reps_count, default=31, help="timed runs per kernel (1 to 101), the median reported")
    parser.add_argument("--isa-mask", help="SL_ISA_* bits to allow, e.g. 1 for SSE2 only")
    parser.add_argument("--json", default=os.path.join(ROOT, "benchmarks", "results", "kernels.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as build:
        subprocess.run(["make", "-s", f"-j{os.cpu_count() or 1}", "-C", os.path.join(ROOT, "native"), f"BUILD={build}",
                        f"{build}/bench_kernels"], check=True)
        env = dict(os.environ)
        if args.isa_mask:
            env["SL_ISA_MASK"] = args.isa_mask
        out = subprocess.run([os.path.join(build, "bench_kernels"), str(args.reps)], check=True, capture_output=True,
                             text=True, env=env).stdout
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    peaks = next(r["peak_gflops"] for r in rows if r["family"] == "machine")
    rows = [r for r in rows if r["family"] != "machine"]
    print(f"CPU: {cpu_name()} ({platform.machine()}); FMA peak per ISA, measured by 12 independent register-only "
          "FMA chains (best of 9 trials): " + ", ".join(f"{isa} {gf:.0f} GFLOP/s" for isa, gf in peaks.items()) + "\n")
    print("| gemm kernel | peak GFLOP/s | shape | GFLOP/s | % of peak |\n|---|---|---|---|---|")
    for r in rows:
        if r["family"] == "gemm":
            peak = peaks.get(r["kernel"].split("__")[1])
            if peak is None:  # the portable kernels are not held to a SIMD peak
                continue
            r["peak_gflops"] = peak
            print(f"| {r['kernel']} | {peak:.0f} | {r['shape']} | {r['gflops']:.1f} | {100 * r['gflops'] / peak:.0f}% |")
    print("\n| gemm_nc kernel | shape | GFLOP/s | x gemm |\n|---|---|---|---|")
    for r in rows:
        if r["family"] == "gemm_nc" and "speedup_vs_gemm" in r:
            print(f"| {r['kernel']} | {r['shape']} | {r['gflops']:.1f} | {r['speedup_vs_gemm']:.2f} |")
    print()
    print("| ISA | pixels x out x in | gemm GFLOP/s | r | " + " | ".join(
        f"{int(s * 100)}%: GFLOP/s (x gemm)" for s in SPARSITIES) + " |")
    print("|---|---|---|---|" + "---|" * len(SPARSITIES))
    spmm_table(rows)
    print("\n| kernel | shape | G elements/s |\n|---|---|---|")
    for r in rows:
        if "gelem_per_s" in r:
            print(f"| {r['kernel']} | {r['shape']} | {r['gelem_per_s']:.2f} |")
    for gemm in (r for r in rows if r["family"] == "gemm" and r["shape"] == "12544x16x32"):
        at80 = sorted(x["gflops"] / next(g["gflops"] for g in rows if g["family"] == "gemm" and g["isa"] == x["isa"]
                                         and g["shape"] == x["shape"])
                      for x in rows if x["family"] == "spmm" and x["isa"] == gemm["isa"] and x["r"] == 4
                      and x["sparsity"] == 0.8)
        if at80:
            print(f"\n{gemm['kernel'].split('__')[1]}: r=4 at 80% sparsity, spmm GFLOP/s on stored weights / gemm "
                  f"GFLOP/s, median over shapes {at80[len(at80) // 2]:.2f} (min {at80[0]:.2f}, max {at80[-1]:.2f})")
    write_json(args.json, {**machine_info(), "peak_gflops": peaks, "results": rows})


if __name__ == "__main__":
    main()
