"""End-to-end benchmark: sparselite against ONNX Runtime (CPU EP) and torch, in one process.

For MobileNetV2 and EfficientNet-Lite0 (224x224) and all-MiniLM-L6-v2 (one sequence of 128
tokens) with real weights (minilm_l6_random: its shape with random weights, for hosts its weights
package cannot reach), and DistilBERT-base and MPNet-base (1x128 tokens) and torchvision's
ResNet-50, ConvNeXt-T and RegNetY-400MF (224x224) with seeded random weights (none are downloadable offline; speed does not depend on the values),
dense and pruned to 50/70/80/90% sparsity in 4x1 groups (1x1 convs, linear layers), it times
every engine at 1 and 2 threads, engines taking turns in blocks so machine noise hits all
alike, and reports median ms and speed ratios against ONNX Runtime on the same (pruned)
weights. It also reports sparselite's per-kernel effective GFLOP/s, peak RSS of a fresh process
that loads and runs each model, and .slite (fp32, fp16) against .onnx file sizes. Writes JSON
(--json).

    python benchmarks/bench_models.py [--runs 30] [--models minilm_l6 resnet50] [--json out.json]

ResNet-50 and ConvNeXt-T take most of a full run's time (~4.1 and 4.5 G multiply-adds a run,
over ten times MobileNetV2's 0.3 G); --models picks a subset.
"""
import argparse
import io
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import machine_info, write_json  # noqa: E402

SPARSITIES = (0.0, 0.5, 0.7, 0.8, 0.9)
MODELS = ("mobilenet_v2", "efficientnet_lite0", "minilm_l6", "minilm_l6_random", "distilbert_base", "mpnet_base", "resnet50",
          "convnext_tiny", "regnet_y_400mf")
TORCHVISION = ("resnet50", "convnext_tiny", "regnet_y_400mf")   # zoo.torchvision_model: random weights
# transformers' default configs are the base models' sizes (768 wide; 6 and 12 layers): seeded random
# weights, as no checkpoint ships offline.
# minilm_l6_random: all-MiniLM-L6-v2's BertModel shape without its weights package (84 MB), for
# hosts it cannot be carried to; its speed is the real model's (dense weights' values do not matter).
HF_RANDOM = {"distilbert_base": ("DistilBertConfig", {}), "mpnet_base": ("MPNetConfig", {}),
             "minilm_l6_random": ("BertConfig", dict(hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
                                                     intermediate_size=1536))}
ENCODERS = ("minilm_l6",) + tuple(HF_RANDOM)
SEQ_LEN = 128


def model_inputs(name):
    """{input name: array} the benchmark feeds every engine."""
    if name in ENCODERS:
        ids = np.random.default_rng(0).integers(1000, 30000, (1, SEQ_LEN))
        ids[0, 0], ids[0, -1] = 101, 102   # [CLS] ... [SEP]
        return {"input_ids": ids.astype(np.int64), "attention_mask": np.ones((1, SEQ_LEN), np.int64)}
    return {"input": np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)}


def build(name, sparsity):
    """The torch module every engine runs (transformers' encoders through hf.Encoder, which is
    what from_torch converts), pruned in 4x1 groups."""
    import torch

    from sparselite.converters import hf, prune_groups, zoo

    if name in HF_RANDOM:
        zoo.allow_torchvision_import()
        import transformers

        torch.manual_seed(0)
        config_class, sizes = HF_RANDOM[name]
        config = getattr(transformers, config_class)(**sizes)
        module = transformers.AutoModel.from_config(config, attn_implementation="eager").eval()
    elif name in TORCHVISION:
        module = zoo.torchvision_model(name)
    else:
        module = getattr(zoo, name)().eval()
    if sparsity > 0:
        prune_groups(module, 1.0 - sparsity, group=4)
    torch.manual_seed(0)
    return hf.Encoder(module) if hf.is_encoder(module) else module


def export(module, inputs, directory, stem):
    """Writes the .slite (fp32 and fp16 weights) and .onnx; returns their paths."""
    import torch

    from sparselite.converters import from_torch

    examples = {k: torch.from_numpy(v) for k, v in inputs.items()}
    example = examples if len(examples) > 1 else examples["input"]
    paths = [from_torch(module, example, weights=w).save(os.path.join(directory, f"{stem}_{w}.slite"))
             for w in ("fp32", "fp16")]
    onnx_path = os.path.join(directory, stem + ".onnx")
    buf = io.BytesIO()
    torch.onnx.export(module, tuple(examples.values()), buf, dynamo=False, input_names=list(examples),
                      output_names=["output"])
    with open(onnx_path, "wb") as f:
        f.write(buf.getvalue())
    return str(paths[0]), str(paths[1]), onnx_path


def ort_session(path, threads):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def blocked_medians(engines, runs, warmup, blocks):
    """{name: median ms}. Engines take turns in blocks of runs, each block after a pause
    and its own warm-up, so the thread pools of the engine before (ORT and OpenMP spin a
    while after a run) are asleep, and slow drifts of a shared machine hit all engines."""
    times = {name: [] for name in engines}
    per_block = max(1, runs // blocks)
    for _ in range(blocks):
        for name, fn in engines.items():
            time.sleep(0.3)  # lets the previous engine's spinning workers go to sleep
            for _ in range(warmup):
                fn()
            for _ in range(per_block):
                t0 = time.perf_counter()
                fn()
                times[name].append((time.perf_counter() - t0) * 1e3)
    return {name: float(np.median(t)) for name, t in times.items()}


def kernel_gflops(model, x):
    """Per-layer profile, and effective GFLOP/s (on stored weights) per kernel family, for the layers that
    count FLOPs (convolutions, FC, MATMUL; the row kernels count none). A fused block counts as the
    family "fused", its members' FLOPs on its first op's time."""
    profile = model.profile(x, runs=10)
    layers = [p for p in profile if p.kernel and p.dense_flops > 0 and p.fused_into is None]
    totals = {}
    for p in layers:
        members = [q for q in profile if q.fused_into is not None and profile[q.fused_into] is p]
        family = "fused" if members else p.kernel.split("_ukernel")[0].replace("sl_f32_", "")
        flops, ms = totals.get(family, (0.0, 0.0))
        totals[family] = (flops + p.flops + sum(q.flops for q in members), ms + p.ms)
    families = {f: {"gflops": flops / ms / 1e6, "ms": ms} for f, (flops, ms) in totals.items()}
    per_layer = [dict(name=p.name, kernel=p.kernel, ms=p.ms, gflops=p.gflops, density=p.flops / p.dense_flops)
                 for p in layers]
    return families, per_layer


def _vm_hwm_kib():
    """Peak resident set of this process (Linux VmHWM; unlike ru_maxrss it is not
    inherited from the parent across fork and exec)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def rss_child(kind, name, path, threads):
    """Runs in a fresh process: peak RSS (KiB) after imports, and after loading and running."""
    inputs = model_inputs(name)
    if kind == "sparselite":
        import sparselite

        before = _vm_hwm_kib()
        model = sparselite.load(path, num_threads=threads)
        for _ in range(3):
            model.run(inputs)
    else:
        import onnxruntime  # noqa: F401  (imported before the baseline, like sparselite)

        before = _vm_hwm_kib()
        session = ort_session(path, threads)
        for _ in range(3):
            session.run(None, inputs)
    print(json.dumps({"baseline_kib": before, "peak_kib": _vm_hwm_kib()}))


def peak_rss(kind, name, path, threads=1):
    out = subprocess.run([sys.executable, __file__, "--rss-child", kind, name, path, str(threads)],
                         capture_output=True, text=True, check=True).stdout
    r = json.loads(out.strip().splitlines()[-1])
    return {"peak_mib": r["peak_kib"] / 1024, "model_mib": (r["peak_kib"] - r["baseline_kib"]) / 1024}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=60, help="timed runs per engine (median reported)")
    parser.add_argument("--blocks", type=int, default=6, help="turns each engine takes, runs split evenly")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs before each block")
    parser.add_argument("--models", nargs="+", default=[m for m in MODELS if m != "minilm_l6_random"], choices=MODELS)
    parser.add_argument("--sparsities", nargs="+", type=float, default=list(SPARSITIES))
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--json", default=os.path.join(os.path.dirname(__file__), "results", "models.json"))
    args = parser.parse_args()

    import onnxruntime
    import torch

    import sparselite

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            x = model_inputs(name)
            xt = tuple(torch.from_numpy(v) for v in x.values())
            for sparsity in args.sparsities:
                module = build(name, sparsity)
                stem = f"{name}_{int(sparsity * 100)}"
                slite_path, fp16_path, onnx_path = export(module, x, tmp, stem)
                row = dict(model=name, sparsity=sparsity,
                           weights="random" if name in TORCHVISION or name in HF_RANDOM else "pretrained",
                           slite_bytes=os.path.getsize(slite_path),
                           slite_fp16_bytes=os.path.getsize(fp16_path), onnx_bytes=os.path.getsize(onnx_path),
                           threads={})
                for threads in args.threads:
                    torch.set_num_threads(threads)
                    model = sparselite.load(slite_path, num_threads=threads)
                    session = ort_session(onnx_path, threads)

                    def run_torch():
                        with torch.inference_mode():
                            module(*xt)

                    ms = blocked_medians({"sparselite": lambda: model.run(x),
                                          "onnxruntime": lambda: session.run(None, x),
                                          "torch": run_torch}, args.runs, args.warmup, args.blocks)
                    ms["speedup_vs_ort"] = ms["onnxruntime"] / ms["sparselite"]
                    ms["speedup_vs_torch"] = ms["torch"] / ms["sparselite"]
                    row["threads"][threads] = ms
                    print(f"{name:18s} {int(sparsity * 100):3d}% sparse, {threads} thread(s): "
                          f"sparselite {ms['sparselite']:7.2f} ms  ort {ms['onnxruntime']:7.2f} ms  "
                          f"torch {ms['torch']:7.2f} ms  -> {ms['speedup_vs_ort']:.2f}x ORT", flush=True)
                model = sparselite.load(slite_path, num_threads=1)
                row["kernels"], row["layers"] = kernel_gflops(model, x)
                row["rss"] = {"sparselite": peak_rss("sparselite", name, slite_path),
                              "onnxruntime": peak_rss("onnxruntime", name, onnx_path)}
                results.append(row)

    report = dict(machine=dict(machine_info(), platform=platform.platform()),
                  versions=dict(sparselite=sparselite.__version__, onnxruntime=onnxruntime.__version__,
                                torch=torch.__version__),
                  runs=args.runs, blocks=args.blocks, warmup=args.warmup, results=results)
    print_table(report)
    write_json(args.json, report)


def print_table(report):
    print(f"\n{report['machine']['cpu']} ({report['machine']['vendor']}), {report['machine']['cpus']} CPUs, ISA {report['machine']['isa']}; "
          f"median of {report['runs']} runs")
    threads = sorted({t for r in report["results"] for t in r["threads"]}, key=int)
    head = "| model | sparsity | " + " | ".join(
        f"{t}T sparselite ms | {t}T ORT ms | {t}T torch ms | {t}T vs ORT" for t in threads)
    print(head + " | spmm GFLOP/s | gemm GFLOP/s | RSS MiB (sl / ORT) | .slite fp32 / fp16 / .onnx MB |")
    print("|" + "---|" * (head.count("|") + 3))
    for r in report["results"]:
        cells = [r["model"], f"{int(r['sparsity'] * 100)}%"]
        for t in threads:
            m = r["threads"][t]
            cells += [f"{m['sparselite']:.2f}", f"{m['onnxruntime']:.2f}", f"{m['torch']:.2f}",
                      f"**{m['speedup_vs_ort']:.2f}x**"]
        k = r["kernels"]
        cells += [f"{k['spmm']['gflops']:.1f}" if "spmm" in k else "-",
                  f"{k['gemm']['gflops']:.1f}" if "gemm" in k else "-",
                  f"{r['rss']['sparselite']['peak_mib']:.0f} / {r['rss']['onnxruntime']['peak_mib']:.0f}",
                  f"{r['slite_bytes'] / 1e6:.1f} / {r['slite_fp16_bytes'] / 1e6:.1f} / {r['onnx_bytes'] / 1e6:.1f}"]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--rss-child":
        rss_child(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
    else:
        main()
