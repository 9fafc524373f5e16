"""Model coverage: which torchvision / timm / MediaPipe models convert and match on every path.

Per model, with random weights (seeded; norm layers' affines and statistics randomised, layer
scales raised, so that no block is a no-op) and one random input:
  from_torch  sparselite (from_torch) against torch
  from_onnx   torch.onnx.export (opset 17, fixed shapes), then sparselite (from_onnx) against
              ONNX Runtime
  pruned      prune_groups(density 0.2, 4x1 groups), then sparselite (from_torch) against torch
  tflite      (MediaPipe's .tflite files) sparselite (from_tflite) against LiteRT (MediaPipe's
              custom ops, which LiteRT lacks, computed around it by mediapipe_ops.py)
A path is ok when every output's max abs error relative to that output's largest value is
<= 1e-4, a mismatch when it is larger, fails when conversion raises ConversionError (the
unsupported-op report), error when anything else raises (a converter or runtime bug), skipped
when the model ran past --time-limit or is over --max-params. Models run in a worker process
(one at a time): a model past the limit, or one that kills the process, is recorded and the
worker restarts with the next model. Prints a markdown table, totals per family and path, and
the blockers (each unsupported op or failure with the models it blocks); writes JSON (--json).

    python benchmarks/model_coverage.py [--fast] [--models resnet18 ...] [--paths from_torch ...]
        [--time-limit 300] [--json out.json]

Environment: torch 2.13 CPU, torchvision 0.28, timm (the dev extra's pin), onnxruntime,
ai-edge-litert, onnx; the mediapipe 0.10.21 wheel's .tflite files (bench_tflite.mediapipe_models
fetches them once).
"""
import argparse
import json
import os
import queue
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

PATHS = ("from_torch", "from_onnx", "pruned", "tflite")
TORCH_PATHS = PATHS[:3]
TOLERANCE = 1e-4
DENSITY = 0.2
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "coverage.json")
# Loads take up to 8 GiB: the default 2 GiB budget protects apps, and ViT-L (300M parameters, 1.2 GB of
# weights) needs a little more with its arena.
MEMORY = 8 << 30

# torchvision segmentation models with mobile backbones (and FCN-ResNet50, a common baseline).
SEGMENTATION = ("lraspp_mobilenet_v3_large", "deeplabv3_mobilenet_v3_large", "fcn_resnet50")
# One or two small timm models per mobile family of issue 16.
TIMM = {
    "MobileNet": ("mobilenetv2_050", "mobilenetv3_small_100", "mobilenetv4_conv_small", "mobilenetv4_hybrid_medium"),
    "EfficientNet": ("efficientnet_b0", "tf_efficientnet_lite0", "efficientnetv2_rw_t"),
    "GhostNet": ("ghostnet_100", "ghostnetv2_100"),
    "RepVGG": ("repvgg_a0",),
    "MobileOne": ("mobileone_s0",),
    "FastViT": ("fastvit_t8", "fastvit_sa12"),
    "MobileViT": ("mobilevit_xxs", "mobilevitv2_050"),
    "EfficientFormer": ("efficientformer_l1", "efficientformerv2_s0"),
    "LeViT": ("levit_128s", "levit_conv_128s"),
}
# Input side per model: 128 unless the architecture fixes it (position embeddings, attention
# biases, window partitions) or an adaptive pool would otherwise upsample (AlexNet, VGG: their
# pools are identities at 224), or train mode's auxiliary head needs it (Inception-v3).
SIDE = 128
NATIVE_224 = ("vit_", "swin", "maxvit", "alexnet", "vgg", "efficientformer", "levit", "fastvit_sa", "mobilevitv2")
SIDES = {"inception_v3": 299}
# The CI subset, name -> input side (None: a .tflite, its own shape): small models covering SLICE
# (channel split / shuffle), REDUCE (squeeze-excitation means), RESIZE (LR-ASPP's upsampling),
# hard-swish / hard-sigmoid, dropout, and the TFLite path; each converts in seconds.
FAST = {"shufflenet_v2_x0_5": 64, "mobilenet_v3_small": 64, "mnasnet0_5": 64, "lraspp_mobilenet_v3_large": 64,
        "mobilenetv3_small_100": 64, "hand_landmark_lite": None}


def model_list():
    """[(family, name)] of every model the full run covers."""
    from sparselite.converters import zoo

    zoo.allow_torchvision_import()
    import torchvision

    models = [("torchvision classification", n) for n in torchvision.models.list_models(module=torchvision.models)]
    models += [("torchvision segmentation", n) for n in SEGMENTATION]
    models += [(f"timm {family}", n) for family, names in TIMM.items() for n in names]
    from bench_tflite import mediapipe_models

    models += [("MediaPipe", n) for n in mediapipe_models()]
    return models


def side_of(name):
    if name in SIDES:
        return SIDES[name]
    return 224 if name.startswith(NATIVE_224) else SIDE


# --- the worker: builds, converts and compares one model after another, one JSON line per result ---

def lively(model, side, seed=0):
    """`model` (eval mode) with random norm affines, layer scales raised from their ~1e-5 init,
    zero-initialised layers made random, and BatchNorm statistics measured on a random batch (as
    tests/test_vision_families.py does: at init, BN's (0, 1) statistics shrink activations to
    nothing in deep nets, and layer scales leave blocks out of the output)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    affine = (torch.nn.modules.batchnorm._BatchNorm, torch.nn.LayerNorm, torch.nn.GroupNorm)
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, affine) and getattr(mod, "weight", None) is not None:
                mod.weight.copy_(0.5 + torch.rand(mod.weight.shape, generator=g))
                if mod.bias is not None:
                    mod.bias.copy_(0.2 * torch.randn(mod.bias.shape, generator=g))
            if isinstance(mod, (torch.nn.Linear, torch.nn.Conv2d)) and not mod.weight.any():
                # zero-initialised layers (ViT's head): the output would not depend on the input
                fan_in = mod.weight[0].numel()
                mod.weight.copy_(torch.randn(mod.weight.shape, generator=g) / fan_in ** 0.5)
        for name, p in model.named_parameters():
            leaf = name.rsplit(".", 1)[-1]
            if (leaf == "gamma" or "layer_scale" in leaf) and float(p.abs().max()) < 1e-3:
                p.copy_(0.1 + 0.4 * torch.rand(p.shape, generator=g))
    return calibrate(model, side, seed)


def calibrate(model, side, seed=0):
    """Measures BatchNorm statistics on a random batch, as after training (or pruning: without it
    the pruned layers' smaller outputs shrink activations until the output ignores the input)."""
    import torch

    norms = [mod for mod in model.modules()
             if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm) and mod.track_running_stats]
    for mod in norms:
        mod.reset_running_stats()
        mod.momentum = None   # cumulative average: one batch gives its exact statistics
        mod.train()
    if norms:
        with torch.no_grad():
            model(torch.randn(2, 3, side, side, generator=torch.Generator().manual_seed(seed + 1)))
    for mod in norms:
        mod.eval()
    return model


def build(family, name):
    import torch

    from sparselite.converters import zoo

    if family == "torchvision classification":
        options = {"init_weights": True} if name in ("googlenet", "inception_v3") else {}
        return zoo.torchvision_model(name, **options)
    zoo.allow_torchvision_import()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        if family == "torchvision segmentation":
            import torchvision

            return torchvision.models.get_model(name, weights=None, weights_backbone=None).eval()
        import timm

        return timm.create_model(name, pretrained=False).eval()


def tensors(out):
    """A model's outputs as a flat list of tensors (segmentation models return a dict)."""
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, (list, tuple)):
        return [t for o in out for t in tensors(o)]
    return [out]


def flat_module(model):
    """`model` with its outputs as a tuple, as the converters take them."""
    import torch

    class Flat(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return tuple(tensors(self.inner(x)))

    return Flat(model).eval()


def worst(ours, theirs):
    """Max over outputs of the max abs error relative to the output's largest value."""
    import numpy as np

    if len(ours) != len(theirs):
        raise AssertionError(f"{len(ours)} outputs, expected {len(theirs)}")
    errs = []
    for a, b in zip(ours, theirs):
        if tuple(a.shape) != tuple(b.shape):
            raise AssertionError(f"output shape {tuple(a.shape)}, expected {tuple(b.shape)}")
        errs.append(float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-12)))
    return max(errs)


def exact(model, x):
    """The model's outputs computed in float64 (a copy of it): how far fp32 engines may fairly be
    from each other. Per-device caches built in fp32 (LeViT's attention biases) are dropped."""
    import copy

    import torch

    m64 = copy.deepcopy(model).double()
    for mod in m64.modules():
        for key, value in list(vars(mod).items()):
            if "cache" in key and isinstance(value, dict):
                setattr(mod, key, {})
    with torch.no_grad():
        return [t.numpy() for t in m64(x.double())]


def conditioning(model, x, ours, theirs):
    """For a mismatch: both engines' errors against float64. In deep models (ResNet-152) fp32
    rounding alone takes the framework's own result past the tolerance."""
    ref64 = exact(model, x)
    return dict(theirs_vs_fp64=worst(theirs, ref64), ours_vs_fp64=worst(ours, ref64))


def without_winograd(blob, inputs, theirs):
    """For a mismatch: the error with Winograd 3x3 convolutions off (they round more than direct
    convolution)."""
    import sparselite

    model = sparselite.load(blob, winograd=False, max_memory_bytes=MEMORY)
    return dict(err_no_winograd=worst(model.run(inputs), theirs))


def failure(e):
    """(status, error, ops) of an exception: ops lists [op, reason, count] of the unsupported-op report."""
    from sparselite import ConversionError
    from sparselite.converters.missing import UnsupportedOps

    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    if isinstance(e, UnsupportedOps):
        return "fails", lines[0], [[op, reason, count] for op, reason, count, _ in e.ops]
    if isinstance(e, ConversionError):
        return "fails", " ".join(lines[:2])[:300], []
    return "error", f"{type(e).__name__}: {' '.join(lines[:2])[:300]}", []


def attempt(fn):
    """Runs one path: fn() returns (error, extra); a row without model/path."""
    start = time.perf_counter()
    try:
        err, extra = fn()
        row = dict(status="ok" if err <= TOLERANCE else "mismatch", err=err, **extra)
    except Exception as e:  # noqa: BLE001 - every failure is a result here
        status, error, ops = failure(e)
        row = dict(status=status, error=error)
        if ops:
            row["ops"] = ops
    row["seconds"] = round(time.perf_counter() - start, 2)
    return row


def run_torch(model, name, side, paths, emit, tmp):
    import torch

    import sparselite
    from sparselite.converters import from_onnx, from_torch, prune_groups

    model = flat_module(lively(model, side))
    g = torch.Generator().manual_seed(1)
    x, x2 = torch.randn(2, 1, 3, side, side, generator=g)
    with torch.no_grad():
        ref = [t.numpy() for t in model(x)]
        other = [t.numpy() for t in model(x2)]
    # How much the output depends on the input: near 0 would make a match meaningless.
    common = dict(input=[1, 3, side, side], params=sum(p.numel() for p in model.parameters()),
                  sensitivity=round(worst(other, ref), 4))

    def checked(converted, theirs, extra):
        blob = converted.to_bytes()
        ours = sparselite.load(blob, max_memory_bytes=MEMORY).run(x.numpy())
        err = worst(ours, theirs)
        if err > TOLERANCE:
            extra.update(**conditioning(model, x, ours, theirs), **without_winograd(blob, x.numpy(), theirs))
        return err, extra

    def torch_path():
        return checked(from_torch(model, x), ref, {})

    def onnx_path():
        import onnxruntime as ort

        path = os.path.join(tmp, f"{name}.onnx")   # a file: models over 2 GB need external data
        try:
            torch.onnx.export(model, (x,), path, input_names=["input"], opset_version=17, dynamo=False)
        except Exception as e:  # noqa: BLE001
            raise sparselite.ConversionError(f"torch.onnx.export: {type(e).__name__}: {e}") from e
        converted = from_onnx(path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        theirs = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"]).run(None, {"input": x.numpy()})
        # The frameworks' own disagreement, for scale: fp32 sums in another order.
        return checked(converted, theirs, dict(ort_vs_torch=worst(theirs, ref)))

    def pruned_path():
        kept = prune_groups(model, DENSITY, group=4)
        calibrate(model, side)
        with torch.no_grad():
            pruned_ref = [t.numpy() for t in model(x)]
            pruned_other = [t.numpy() for t in model(x2)]
        converted = from_torch(model, x)
        sparse = sum(1 for layer in converted.layers() if layer[3] == 4)
        return checked(converted, pruned_ref, dict(pruned_layers=len(kept), sparse_layers=sparse,
                                                   sensitivity=round(worst(pruned_other, pruned_ref), 4)))

    for path, fn in (("from_torch", torch_path), ("from_onnx", onnx_path), ("pruned", pruned_path)):
        if path in paths:
            emit({"path": path, **common, **attempt(fn)})


def run_tflite(name, emit):
    import numpy as np

    import sparselite
    from bench_tflite import mediapipe_models
    from graph64 import run_float64
    from mediapipe_ops import run_litert, run_with_custom_ops, uses_mediapipe_ops
    from sparselite.converters import from_tflite

    path = mediapipe_models()[name]
    state = {}

    def tflite_path():
        converted = from_tflite(path)
        model = sparselite.load(converted.to_bytes(), max_memory_bytes=MEMORY)
        rng = np.random.default_rng(0)
        xs = {spec.name: rng.uniform(-1, 1, spec.shape).astype(np.float32) for spec in model.inputs}
        state["input"] = [list(spec.shape) for spec in model.inputs]
        if uses_mediapipe_ops(path):   # LiteRT runs all but those, mediapipe_ops.py computes them
            theirs = run_with_custom_ops(path, xs)
        else:
            theirs = run_litert(path, xs)
        theirs = [theirs[spec.name] for spec in model.outputs]
        ours = model.run(xs)
        err = worst(ours, theirs)
        if err <= TOLERANCE:
            return err, {}
        extra = without_winograd(converted.to_bytes(), xs, theirs)
        try:   # LiteRT has no float64 mode: the converted graph run in float64 (graph64.py) instead
            ref64 = run_float64(converted.graph, xs)
            extra.update(theirs_vs_fp64=worst(theirs, ref64), ours_vs_fp64=worst(ours, ref64))
        except NotImplementedError:
            pass
        return err, extra

    row = attempt(tflite_path)
    emit(dict(path="tflite", input=state.get("input"), **row))


def worker(models, paths, max_params, sides):
    """Converts each (family, name) in turn; one JSON line per begun model and per path result."""
    import gc
    import tempfile

    import torch

    torch.set_num_threads(1)   # a shared machine: one thread everywhere (sparselite loads with one)
    emitted = set()
    for family, name in models:
        print(json.dumps(dict(begin=name)), flush=True)

        def emit(row):
            emitted.add((name, row["path"]))
            print(json.dumps(dict(model=name, family=family, **row)), flush=True)

        if family == "MediaPipe":
            if "tflite" in paths:
                run_tflite(name, emit)
            continue
        wanted = [p for p in paths if p in TORCH_PATHS]
        if not wanted:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            try:
                model = build(family, name)
                params = sum(p.numel() for p in model.parameters())
                if max_params and params > max_params:
                    for path in wanted:
                        emit(dict(path=path, status="skipped", params=params,
                                  error=f"{params / 1e6:.0f}M parameters, over --max-params"))
                    continue
                run_torch(model, name, sides.get(name, side_of(name)), wanted, emit, tmp)
            except Exception as e:  # noqa: BLE001 - building the model or its reference failed
                for path in wanted:
                    if (name, path) not in emitted:
                        emit(dict(path=path, status="error", error=f"model: {type(e).__name__}: {e}"[:300]))
            finally:
                model = None
        torch._dynamo.reset()
        gc.collect()


# --- the driver: one worker at a time, restarted past a model's time limit or a crash ---

def drive(models, paths, limit, max_params, sides):
    rows, pending = [], list(models)
    while pending:
        spec = json.dumps(dict(models=pending, paths=paths, max_params=max_params, sides=sides))
        proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--worker", spec],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        lines, stderr = queue.Queue(), []

        def pump(stdout=proc.stdout):
            for line in stdout:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=pump, daemon=True).start()
        threading.Thread(target=lambda: stderr.extend(proc.stderr), daemon=True).start()
        current, deadline, done = None, None, set()
        while True:
            try:
                line = lines.get(timeout=None if deadline is None else max(deadline - time.monotonic(), 0.01))
            except queue.Empty:   # past the limit
                proc.kill()
                proc.wait()
                rows += [dict(model=current[1], family=current[0], path=p, status="skipped",
                              error=f"over the {limit:g} s limit") for p in paths if (current[1], p) not in done
                         and applies(current[0], p)]
                break
            if line is None:
                proc.wait()
                if current and proc.returncode != 0:
                    tail = " ".join(line.strip() for line in stderr[-3:])[-300:]
                    rows += [dict(model=current[1], family=current[0], path=p, status="error",
                                  error=f"process died (exit {proc.returncode}): {tail}")
                             for p in paths if (current[1], p) not in done and applies(current[0], p)]
                elif current is None and proc.returncode != 0:
                    raise RuntimeError("the worker failed before its first model:\n" + "".join(stderr[-20:]))
                break
            if not line.startswith("{"):
                continue   # a library's own print
            record = json.loads(line)
            if "begin" in record:
                current = next(m for m in pending if m[1] == record["begin"])
                deadline = time.monotonic() + limit
                pending.remove(current)
                print(f"{current[1]} ...", flush=True)
            else:
                rows.append(record)
                done.add((record["model"], record["path"]))
                print(f"  {record['path']:10s} {cell(record, wide=True)}  ({record.get('seconds', '-')} s)", flush=True)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return rows


def applies(family, path):
    return (path == "tflite") == (family == "MediaPipe")


# --- reporting ---

def cell(row, wide=False):
    if row is None:
        return "–"
    status = row["status"]
    if status == "ok":
        return f"ok ({row['err']:.0e})" if wide else "ok"
    if status == "mismatch":
        notes = [f"fp64: ours {row['ours_vs_fp64']:.0e}, {framework(row)} {row['theirs_vs_fp64']:.0e}"] \
            if "ours_vs_fp64" in row else []
        notes += [f"no Winograd: {row['err_no_winograd']:.0e}"] if "err_no_winograd" in row else []
        return f"mismatch {row['err']:.0e}" + (f" ({'; '.join(notes)})" if notes else "")
    if status == "fails" and row.get("ops"):
        names = [op for op, _, _ in row["ops"]]
        return "fails: " + ", ".join(names if wide or len(names) <= 3 else names[:3] + [f"+{len(names) - 3}"])
    if status == "skipped":
        return "skipped" + (f": {row['error']}" if wide else "")
    return f"{status}: {row['error']}" if wide else status


def framework(row):
    return {"from_onnx": "ORT", "tflite": "LiteRT"}.get(row["path"], "torch")


def rounding(row):
    """Whether a mismatch is fp32 rounding: our error against float64 within 3x the framework's."""
    return "ours_vs_fp64" in row and row["ours_vs_fp64"] <= 3 * row["theirs_vs_fp64"]


def blocker_key(row):
    """What blocks a model on one path, one key per cause: each unsupported op (with its reason),
    or the failure's first words."""
    if row["status"] == "mismatch":
        return [f"mismatch on {row['path']}" + (" (rounding: against float64 within 3x the framework's own "
                                                 "fp32 error)" if rounding(row) else "")]
    if row["status"] == "fails" and row.get("ops"):
        frontend = {"tflite": "TFLite", "from_onnx": "ONNX"}.get(row["path"], "torch")
        return [f"{frontend} {op}" + (f" ({reason})" if reason else "") for op, reason, _ in row["ops"]]
    if row["status"] in ("fails", "error"):
        return [f"{row['status']} on {row['path']}: {row['error'][:160]}"]
    if row["status"] == "skipped":
        return [f"skipped: {row['error'].split(',')[-1].strip()}"]
    return []


def report(rows, paths):
    by_model = {}
    for r in rows:
        by_model.setdefault((r["family"], r["model"]), {})[r["path"]] = r
    shown = [p for p in PATHS if p in paths]
    lines = ["| model | input | " + " | ".join(shown) + " |", "|---|---|" + "---|" * len(shown)]
    for (family, name), cells in by_model.items():
        first = next(iter(cells.values()))
        side = first.get("input")
        size = "x".join(map(str, side[-2:])) if side and isinstance(side[0], int) else \
            " + ".join("x".join(map(str, s)) for s in side) if side else ""
        lines.append(f"| {name} | {size} | " + " | ".join(cell(cells.get(p)) for p in shown) + " |")
    totals = {}
    for (family, _), cells in by_model.items():
        for p in shown:
            if applies(family, p):
                t = totals.setdefault(family, {}).setdefault(p, [0, 0])
                t[0] += cells.get(p, {}).get("status") == "ok"
                t[1] += 1
    lines.append("")
    for family, t in totals.items():
        lines.append(f"- {family}: " + ", ".join(f"{ok}/{n} {p}" for p, (ok, n) in t.items()))
    blockers = {}
    for r in rows:
        for key in blocker_key(r):
            blockers.setdefault(key, {}).setdefault(r["model"], None)
    lines.append("")
    lines.append("Blockers (models each blocks):")
    for key, models in sorted(blockers.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        lines.append(f"- {key}: {len(models)} — {', '.join(models)}")
    return "\n".join(lines), totals, blockers


def merged(rows, path):
    """The rows of the results file at path, with each model of `rows` in place of its old rows."""
    with open(path) as f:
        old = json.load(f)["results"]
    new = {}
    for r in rows:
        new.setdefault(r["model"], []).append(r)
    out = []
    for r in old:
        if r["model"] not in new:
            out.append(r)
        elif new[r["model"]]:
            out += new.pop(r["model"])
            new[r["model"]] = []
    return out + [r for rs in new.values() for r in rs]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", help="names to run (default: all)")
    parser.add_argument("--paths", nargs="+", choices=PATHS, default=list(PATHS))
    parser.add_argument("--fast", action="store_true", help="the CI subset at 64x64")
    parser.add_argument("--time-limit", type=float, default=300, help="seconds per model (all its paths)")
    parser.add_argument("--max-params", type=float, default=350e6, help="skip larger models (0: none)")
    parser.add_argument("--json", help=f"where to write results (default for a full run: {RESULTS})")
    parser.add_argument("--update", action="store_true",
                        help=f"with --models: replace those models' rows in {RESULTS} and recompute its totals")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        spec = json.loads(args.worker)
        return worker([tuple(m) for m in spec["models"]], spec["paths"], spec["max_params"], spec["sides"])

    import sparselite
    from common import machine_info, write_json

    models = model_list()
    if args.fast or args.models:
        wanted = args.models or list(FAST)
        unknown = sorted(set(wanted) - {name for _, name in models})
        if unknown:
            parser.error(f"unknown models {unknown}")
        models = [m for m in models if m[1] in wanted]
    sides = {name: side for name, side in FAST.items() if side} if args.fast else {}
    started = time.time()
    rows = drive(models, args.paths, args.time_limit, int(args.max_params), sides)
    wall_s = round(time.time() - started)
    kept = {}
    if args.update:
        if not args.models:
            parser.error("--update re-runs the models --models names")
        with open(RESULTS) as f:
            old = json.load(f)
        wall_s = old["wall_s"]   # the full run's
        kept = {"note": old["note"]} if "note" in old else {}   # what was re-run after it, written by hand
        rows = merged(rows, RESULTS)
    table, totals, blockers = report(rows, args.paths)
    print("\n" + table)
    path = args.json or (RESULTS if args.update or not (args.fast or args.models) else None)
    if path:
        write_json(path, dict(machine=machine_info(), sparselite=sparselite.__version__, tolerance=TOLERANCE,
                              density=DENSITY, time_limit_s=args.time_limit, wall_s=wall_s,
                              totals=totals, blockers={k: list(v) for k, v in blockers.items()}, results=rows,
                              **kept))


if __name__ == "__main__":
    main()
