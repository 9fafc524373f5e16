"""Shared by the benchmark scripts."""
import json
import os


def write_json(path, data):
    """Writes results, creating the folder; prints where."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(data, f, indent=1)
    print(f"wrote {path}")


def cpu_name():
    """The CPU's model name, as profiles record it."""
    from sparselite.profiler import cpu_name as name

    return name()
