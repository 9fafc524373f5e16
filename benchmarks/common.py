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


def _cpuinfo_field(name):
    """The first /proc/cpuinfo value of `name` ("cpu family", "model", "cpu MHz"), or None."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == name:
                    return value.strip()
    except OSError:
        pass
    return None


def _cache_kib(level):
    """One core's view of its level-`level` data/unified cache in KiB (sysfs), or None."""
    base = "/sys/devices/system/cpu/cpu0/cache"
    try:
        for index in sorted(os.listdir(base)):
            with open(os.path.join(base, index, "level")) as f:
                if int(f.read()) != level:
                    continue
            with open(os.path.join(base, index, "type")) as f:
                if f.read().strip() == "Instruction":
                    continue
            with open(os.path.join(base, index, "size")) as f:
                size = f.read().strip()
            return int(size[:-1]) * (1024 if size.endswith("M") else 1) if size[-1] in "KM" else int(size) // 1024
    except (OSError, ValueError):
        pass
    return None


def machine_info():
    """What every benchmark JSON records about the machine: CPU model and vendor, architecture, core
    count, the instruction sets sparselite's kernels use there, and what tells CPUs of one model name
    apart (a VM's "AMD EPYC" has been Zen 3 and Zen 4 here): the x86 family and model numbers, the
    nominal clock and the L2 and L3 sizes."""
    import platform

    import sparselite

    def number(text, kind):
        try:
            return kind(text) if text is not None else None
        except ValueError:
            return None

    return dict(cpu=cpu_name(), vendor=_cpuinfo_field("vendor_id") or "", arch=platform.machine(),
                cpus=os.cpu_count(), isa=sparselite.cpu_isa(), family=number(_cpuinfo_field("cpu family"), int),
                model=number(_cpuinfo_field("model"), int), mhz=number(_cpuinfo_field("cpu MHz"), float),
                l2_kib=_cache_kib(2), l3_kib=_cache_kib(3))
