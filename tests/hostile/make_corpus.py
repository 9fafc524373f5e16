"""Writes the hostile-input corpus into a directory: crafted .slite files (slite_cases.py) and
.tflite / .onnx files for the importers (importer_cases.py), plus manifest.json.

    python tests/hostile/make_corpus.py OUT_DIR [--only slite|tflite|onnx]

Deterministic: the same files, byte for byte, on every run. Nothing generated is committed.
Files are named <category>.<case>.<ext>; manifest.json maps each name to its category, its size
and the importer cases' extra expectations (tests/test_hostile.py reads it)."""
import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def _write(out, name, data, manifest, category, **extra):
    if hasattr(data, "build"):
        data = data.build()
    path = os.path.join(out, name)
    assert not os.path.exists(path), f"duplicate case {name}"
    with open(path, "wb") as f:
        f.write(data)
    manifest[name] = dict(category=category, bytes=len(data), **extra)


def generate(out, only=None):
    """Writes the corpus into out; returns the manifest {file name: {category, bytes, ...}}."""
    os.makedirs(out, exist_ok=True)
    manifest = {}
    if only in (None, "slite"):
        from slite_cases import CATEGORIES

        for category, cases in CATEGORIES.items():
            for name, data in cases():
                _write(out, f"{category}.{name}.slite", data, manifest, category)
    if only in (None, "tflite", "onnx"):
        import importer_cases

        for ext in ("tflite", "onnx"):
            if only not in (None, ext):
                continue
            for name, data, extra in getattr(importer_cases, ext + "_cases")():
                _write(out, f"{ext}.{name}.{ext}", data, manifest, ext, **extra)
            for name, data in getattr(importer_cases, ext + "_side_files")():   # external data files
                os.makedirs(os.path.dirname(os.path.join(out, name)), exist_ok=True)
                with open(os.path.join(out, name), "wb") as f:
                    f.write(data)
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=0, sort_keys=True)
    return manifest


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", help="directory to write the corpus into")
    parser.add_argument("--only", choices=["slite", "tflite", "onnx"])
    args = parser.parse_args(argv)
    manifest = generate(args.out, args.only)
    counts = {}
    for entry in manifest.values():
        counts[entry["category"]] = counts.get(entry["category"], 0) + 1
    print(f"{len(manifest)} files in {args.out}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))


if __name__ == "__main__":
    main()
