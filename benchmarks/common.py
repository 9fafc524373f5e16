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


def machine_info():
    """What every benchmark JSON records about the machine: CPU model and vendor, architecture, core
    count, and the instruction sets sparselite's kernels use there."""
    import platform

    import sparselite

    vendor = ""
    try:
        with open("/proc/cpuinfo") as f:
            vendor = next((line.split(":", 1)[1].strip() for line in f if line.startswith("vendor_id")), "")
    except OSError:
        pass
    return dict(cpu=cpu_name(), vendor=vendor, arch=platform.machine(), cpus=os.cpu_count(), isa=sparselite.cpu_isa())
