"""Micro-benchmark: sparselite's spmm microkernels against its dense gemm microkernel.

Builds native/tools/bench_spmm.c, runs it on MobileNetV2's 1x1 shapes at 50..95% sparsity
and r = 1, 2, 4, 8 (one thread, the best ISA the CPU has, median of --reps runs), prints a
table of GFLOP/s counted on stored weights and the speed-up over dense gemm, and writes JSON.

    python benchmarks/bench_spmm.py [--reps 31] [--json out.json]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import write_json  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=31)
    parser.add_argument("--isa-mask", help="SL_ISA_* bits to allow, e.g. 1 for SSE2 only")
    parser.add_argument("--json", default=os.path.join(ROOT, "benchmarks", "results", "spmm.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as build:
        subprocess.run(["make", "-s", "-C", os.path.join(ROOT, "native"), f"BUILD={build}", f"{build}/bench_spmm"],
                       check=True)
        env = dict(os.environ)
        if args.isa_mask:
            env["SL_ISA_MASK"] = args.isa_mask
        out = subprocess.run([os.path.join(build, "bench_spmm"), str(args.reps)], check=True, capture_output=True,
                             text=True, env=env).stdout
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    gemm = {(r["pixels"], r["rows"], r["cols"]): r for r in rows if r["r"] == 0}
    print("| pixels x out x in | gemm GFLOP/s | r | " + " | ".join(
        f"{int(s * 100)}%: GFLOP/s (x gemm)" for s in (0.5, 0.7, 0.8, 0.9, 0.95)) + " |")
    print("|---|---|---|" + "---|" * 5)
    for shape, g in gemm.items():
        for group in (1, 2, 4, 8):
            cells = [f"{x['gflops']:.1f} ({x['speedup_vs_gemm']:.2f}x)" for x in rows
                     if (x["pixels"], x["rows"], x["cols"]) == shape and x["r"] == group]
            if cells:
                print(f"| {shape[0]}x{shape[1]}x{shape[2]} | {g['gflops']:.1f} | {group} | " + " | ".join(cells) + " |")
    at80 = [x["gflops"] / gemm[(x["pixels"], x["rows"], x["cols"])]["gflops"] for x in rows
            if x["r"] == 4 and x["sparsity"] == 0.8]
    if at80:
        at80.sort()
        print(f"\nr=4 at 80% sparsity: spmm GFLOP/s on stored weights / gemm GFLOP/s, median over shapes "
              f"{at80[len(at80) // 2]:.2f} (min {at80[0]:.2f}, max {at80[-1]:.2f})")
    write_json(args.json, rows)


if __name__ == "__main__":
    main()
