"""Static ARM performance estimate of every FMA-bound NEON microkernel in the registry.

No ARM hardware here, so this compiles native/kernels/isa/neon*.c for
aarch64 with clang (-O3, generic armv8-a tuning, as a phone or Pi build would be), finds each
kernel's hot loop in the assembly (the innermost loop with the most floating-point work: the full
register tile; clang marks innermost loops, and a hand-scheduled kernel's inline assembly loop is a
local label up to the branch back to it), and runs it through llvm-mca for two core models:

  A55  -mcpu=cortex-a55   in-order little core (Pi 3 / Zero 2's A53 is its predecessor)
  A76  -mcpu=neoverse-n1  big core (Pi 5; most phones' big cores). LLVM 19's `cortex-a76` has no
                          schedule of its own (it reuses an older core's), Neoverse N1 is the
                          A76's server sibling with the same pipelines and has one.

The in-order kernels (kernels/isa/neon_inorder.c, chosen only on A53/A55-class CPUs) are read on both
models like the others; only their A55 figure describes a core that runs them.
The fp16 kernels (kernels/isa/neon_fp16.c, ARMv8.2-A) count the same on 8 halves (an FMLA .8h is 16
FLOP) against twice the fp32 peaks, and are compared with their fp32 twin (same family and r, or
the family's only fp32 NEON kernel: gemm_nc's panels are 16 floats, 32 halves).
FLOP per iteration are counted from the loop's instructions (an FMLA on 4 floats is 8, a plain
FMUL/FADD on 4 floats 4), cycles per iteration are llvm-mca's simulated steady state (total
cycles / iterations). Peaks assumed (fp32):
  A76: 2 x 128-bit FMA pipes = 16 FLOP/cycle.
  A55: 1 x 128-bit FMLA per cycle = 8 FLOP/cycle. LLVM 19's A55 model issues Q-form FMLAs on
       either of two units, so it would allow 16: the A55 percentages are of the 8 assumed, and
       a loop that loaded little per FMA could read above 100% there.
Limits: no caches or memory (every load hits L1 at the model's latency), no branch effects (the
loop body is simulated straight, its branch predicted), LLVM's models rather than silicon, and the
loop alone (tile setup, clamps and stores, tails are not counted). Estimates, not measurements.

    python benchmarks/arm_mca.py [--json benchmarks/results/arm_mca.json] [--asm DIR]
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NATIVE = os.path.join(ROOT, "native")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import write_json  # noqa: E402

MODELS = {"A55": ("cortex-a55", 8.0), "A76": ("neoverse-n1", 16.0)}
# Families whose time goes into FMAs over register tiles; the row kernels (activations, softmax,
# layer norm, binary ops, unzip, Winograd transforms) are bound by loads and stores instead.
FMA_FAMILIES = ("spmm", "gemm", "gemm_nc", "dwconv", "dwconv_s2", "f16_spmm", "f16_gemm", "f16_gemm_nc",
                "f16_dwconv")
SOURCES = ("kernels/isa/neon.c", "kernels/isa/neon_fp16.c", "kernels/isa/neon_inorder.c")
LINE = re.compile(r"SL_UKERNEL\((\w+),\s*(\w+),\s*(SL_ISA_NEON\w*)[^,]*,\s*(\d+),\s*(\d+)")


def tool(*names):
    found = next((shutil.which(n) for n in names if shutil.which(n)), None)
    if found is None:
        sys.exit(f"needs one of {names} (apt-get install clang-19 llvm-19)")
    return found


def registry():
    """(family, name, isa, pixels, rows) of every NEON line of the lists."""
    rows = []
    for family in sorted(os.listdir(os.path.join(NATIVE, "kernels"))):
        path = os.path.join(NATIVE, "kernels", family, "list.inc")
        if os.path.exists(path):
            with open(path) as f:
                rows += [(m[1], m[2], m[3], int(m[4]), int(m[5])) for m in LINE.finditer(f.read())]
    return rows


def compile_asm(clang, source, out):
    sysroot = "/usr/aarch64-linux-gnu"
    cmd = [clang, "--target=aarch64-linux-gnu", "-O3", "-std=c11", "-fno-trapping-math", "-I", "include", "-S",
           source, "-o", out]
    if os.path.isdir(sysroot):
        cmd[1:1] = [f"--sysroot={sysroot}"]
    subprocess.run(cmd, cwd=NATIVE, check=True)
    with open(out) as f:
        return f.read()


def functions(asm):
    """name -> its lines, for every function in the assembly."""
    out, name = {}, None
    for line in asm.splitlines():
        m = re.match(r"^([A-Za-z_]\w*):", line)
        if m and not line.startswith(".L"):
            name = m[1]
            out[name] = []
        elif name is not None:
            if line.startswith("\t.size\t"):
                name = None
            else:
                out[name].append(line)
    return out


def flops(insn):
    """FLOPs of one instruction: 2 per lane for fused multiply-adds, 1 for other arithmetic."""
    m = re.match(r"\s*(fmla|fmls|fmul|fadd|fsub)\s+v\d+\.(\d+)[sh]", insn)
    return 0 if not m else (2 if m[1] in ("fmla", "fmls") else 1) * int(m[2])


def blocks(lines):
    """The function's basic blocks: (the innermost loop holding it or None, its lines). Clang writes a
    loop's header as `=>This Inner Loop Header` and tags its other blocks `in Loop: Header=BBn_m`."""
    out = []
    for line in lines:
        m = re.match(r"^(\.L(BB\w+)|// %bb\.\d+):", line)
        if m or not out:
            out.append([None, [], m[2] if m else None])
        elif not line.strip().startswith("//"):
            out[-1][0] = out[-1][0] or False  # past the label's comments
        out[-1][1].append(line)
        tag = re.search(r"in Loop: Header=(BB\w+)", line)
        if out[-1][0] is None and out[-1][2] and "Inner Loop Header" in line:
            out[-1][0] = ("header", out[-1][2])
        elif out[-1][0] is None and tag:
            out[-1][0] = ("member", tag[1])
    return [(t or None, body) for t, body, _ in out]


def asm_loops(lines):
    """Loops written in inline assembly (between clang's //APP and //NO_APP, which it does not mark as
    loops): each local label's lines up to a branch back to it with no such loop inside."""
    loops, region = [], None
    for line in lines + ["\t//NO_APP"]:
        if line.strip() == "//APP":
            region = []
        elif line.strip() == "//NO_APP" and region is not None:
            labels = [(k, m[1]) for k, x in enumerate(region) if (m := re.match(r"^(\.Ltmp\d+):", x))]
            for k, label in labels:
                back = next((j for j in range(k + 1, len(region)) if re.search(rf"\s{re.escape(label)}$", region[j])),
                            None)
                if back is not None and not any(k < j < back for j, _ in labels):
                    loops.append(region[k:back + 1])
            region = None
        elif region is not None:
            region.append(line)
    return loops


def hot_loop(lines):
    """The innermost loop with the most FLOPs, the shortest of equals (a gemm's dense columns rather than
    its implicit convolution's offsets): (its instructions from the header round to the latch,
    FLOPs). A loop body with branches inside is simulated straight, every path taken. Loops in
    inline assembly (hand-scheduled kernels) count as clang's do."""
    best = ([], 0)
    for body in asm_loops(lines):
        total = sum(flops(x) for x in body)
        if total > best[1] or total == best[1] and len(body) < len(best[0]):
            best = (body, total)
    bbs = blocks(lines)
    for i, (tag, _) in enumerate(bbs):
        if tag is None or tag[0] != "header":
            continue
        members = [j for j, (t, _) in enumerate(bbs) if t is not None and t[1] == tag[1]]
        order = [j for j in members if j >= i] + [j for j in members if j < i]
        body = [x for j in order for x in bbs[j][1]
                if x.strip() and not x.strip().startswith(("//", ".", "#")) or x.startswith(f".L{tag[1]}:")]
        back = [k for k, x in enumerate(body) if re.search(rf"\s\.L{tag[1]}$", x)]
        if back:  # a latch that branches back ends the body (the loop's exit jump follows it)
            body = body[:back[-1] + 1]
        total = sum(flops(x) for x in body)
        if total > best[1] or total == best[1] and len(body) < len(best[0]):  # the leanest full tile
            best = (body, total)
    return best


def mca(llvm_mca, cpu, body, workdir, iterations=300):
    path = os.path.join(workdir, "loop.s")
    with open(path, "w") as f:
        f.write("\n".join(body) + "\n")
    out = subprocess.run([llvm_mca, "-mtriple=aarch64", f"-mcpu={cpu}", f"-iterations={iterations}", path],
                         capture_output=True, text=True, check=True).stdout
    cycles = int(re.search(r"Total Cycles:\s+(\d+)", out)[1])
    bound = float(re.search(r"Block RThroughput:\s+([\d.]+)", out)[1])
    return cycles / iterations, bound


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", default=os.path.join(ROOT, "benchmarks", "results", "arm_mca.json"))
    ap.add_argument("--asm", help="keep the assembly and each hot loop in this folder")
    args = ap.parse_args()
    clang, llvm_mca = tool("clang-19", "clang"), tool("llvm-mca-19", "llvm-mca")
    work = args.asm or tempfile.mkdtemp(prefix="arm_mca_")
    os.makedirs(work, exist_ok=True)
    funcs = {}
    for source in SOURCES:
        funcs.update(functions(compile_asm(clang, source, os.path.join(work, os.path.basename(source) + ".s"))))
    results, skipped = [], []
    for family, name, isa, pixels, rows in registry():
        if family not in FMA_FAMILIES:
            skipped.append(name)
            continue
        if name not in funcs:
            sys.exit(f"{name} is listed but not in the assembly")
        body, loop_flops = hot_loop(funcs[name])
        if not body:
            sys.exit(f"{name}: no loop with floating-point work found")
        if args.asm:
            with open(os.path.join(work, name + ".loop.s"), "w") as f:
                f.write("\n".join(body) + "\n")
        insns = [x for x in body if not x.split("//")[0].rstrip().endswith(":")]
        entry = dict(kernel=name, family=family, isa=isa, pixels=pixels, rows=rows, loop_flops=loop_flops,
                     loop_instructions=len(insns),
                     branches_inside=sum(1 for x in insns[:-1] if re.match(r"\s*(b|b\.\w+|cbn?z|tbn?z)\s", x)))
        for model, (cpu, peak) in MODELS.items():
            peak *= 2 if family.startswith("f16_") else 1  # twice the lanes per FMLA
            cycles, bound = mca(llvm_mca, cpu, body, work)
            entry[model] = dict(cpu=cpu, cycles_per_iteration=round(cycles, 2), resource_bound_cycles=bound,
                                flop_per_cycle=round(loop_flops / cycles, 2), peak=peak,
                                percent_of_peak=round(100 * loop_flops / cycles / peak, 1))
        results.append(entry)
    for e in results:  # fp16 over its fp32 twin (same family, same r, or the family's one kernel), per model
        same = [t for t in results if e["family"].startswith("f16_") and t["family"] == e["family"].removeprefix("f16_")]
        twin = next((t for t in same if t["rows"] == e["rows"]), same[0] if len(same) == 1 else None)
        for model in MODELS if twin else ():
            e[model]["vs_fp32"] = round(e[model]["flop_per_cycle"] / twin[model]["flop_per_cycle"], 2)
    print(f"{'kernel':44} {'FLOP/it':>7} | {'A55 cyc':>7} {'FLOP/c':>6} {'%pk':>5} | {'A76 cyc':>7} {'FLOP/c':>6} "
          f"{'%pk':>5} {'vs f32':>6}")
    for e in results:
        a, b = e["A55"], e["A76"]
        mark = "*" if e["branches_inside"] else " "
        print(f"{e['kernel'] + mark:44} {e['loop_flops']:7d} | {a['cycles_per_iteration']:7.2f} "
              f"{a['flop_per_cycle']:6.2f} {a['percent_of_peak']:5.1f} | {b['cycles_per_iteration']:7.2f} "
              f"{b['flop_per_cycle']:6.2f} {b['percent_of_peak']:5.1f}"
              + (f" {a['vs_fp32']:.2f}/{b['vs_fp32']:.2f}" if "vs_fp32" in b else ""))
    if any(e["branches_inside"] for e in results):
        print("* branches inside the loop, simulated with every path taken: a rough figure")
    print(f"not FMA-bound, not estimated: {', '.join(skipped)}")
    version = subprocess.run([llvm_mca, "--version"], capture_output=True, text=True).stdout
    write_json(args.json, dict(
        tool="benchmarks/arm_mca.py", kind="static estimate (llvm-mca), not a measurement",
        compiler=subprocess.run([clang, "--version"], capture_output=True, text=True).stdout.splitlines()[0],
        llvm_mca=next((x.strip() for x in version.splitlines() if "version" in x), ""),
        models={m: dict(cpu=c, peak_fp32_flop_per_cycle=p) for m, (c, p) in MODELS.items()},
        kernels=results, not_estimated=skipped))


if __name__ == "__main__":
    main()
