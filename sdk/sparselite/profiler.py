"""Profiles: per-op median time, FLOPs (stored and dense), GFLOP/s and kernel, plus latency
percentiles and memory, in one JSON schema shared with the `sparselite-bench` binary, so a
device run can be read and drawn on the desktop. Renders a text table, Chrome-trace/Perfetto
JSON (ui.perfetto.dev) and a self-contained HTML chart."""
import html
import json
import platform
import time

SCHEMA = "sparselite-profile/1"


def _percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))]


def _cpu_mhz():
    """The CPU's maximum frequency if the kernel exposes it (cpufreq), else None."""
    try:
        with open("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq") as f:
            return int(f.read()) // 1000
    except (OSError, ValueError):
        return None


def cpu_name():
    """The CPU's model name (/proc/cpuinfo), as profiles and benchmarks record it."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def profile_model(model, inputs, runs=50, warmup=5, name=""):
    """Runs `model` warmup + runs times; returns the profile dict (see SCHEMA)."""
    from . import cpu_isa

    backend = model._backend
    model.run(inputs)  # binds the inputs; later runs reuse them
    for _ in range(warmup):
        backend.run()
    latencies, per_run = [], []
    for _ in range(runs):
        backend.set_profiling(True)  # resets the counters: each read covers one run
        t0 = time.perf_counter()
        backend.run()
        latencies.append((time.perf_counter() - t0) * 1e3)
        per_run.append(backend.op_profiles())
    backend.set_profiling(False)
    ops = []
    for i, (op_name, op_type, kernel, flops, dense, _, _, wbytes, abytes, r, fused) in enumerate(per_run[0]):
        ms = _percentile([run[i][5] / max(run[i][6], 1) / 1e6 for run in per_run], 50)
        ops.append(dict(name=op_name, type=op_type, kernel=kernel, ms=ms, flops=flops, dense_flops=dense,
                        group_size=r, weight_bytes=wbytes, activation_bytes=abytes,
                        fused_into=None if fused < 0 else fused))
    return dict(schema=SCHEMA, model=name, source="python", threads=backend.threads, runs=runs,
                warmup=warmup, machine=dict(cpu=cpu_name(), mhz=_cpu_mhz(), arch=platform.machine(),
                                                       isa=cpu_isa()),
                latency_ms=dict(p50=_percentile(latencies, 50), p90=_percentile(latencies, 90),
                                p99=_percentile(latencies, 99), min=min(latencies)),
                arena_bytes=model.arena_bytes, scratch_bytes=model.scratch_bytes, ops=ops)


def load_profile(path):
    """A profile JSON written by `sparselite profile --json` or `sparselite-bench --json`."""
    with open(path) as f:
        data = json.load(f)
    if data.get("schema") != SCHEMA:
        raise ValueError(f"{path} is not a {SCHEMA} profile (schema: {data.get('schema')!r})")
    return data


def _fused_block(ops, i):
    """Op i and the members its fused block runs (only op i when it is not fused); [] for a member."""
    if ops[i].get("fused_into") is not None:
        return []
    block = [ops[i]]
    for op in ops[i + 1:]:
        if op.get("fused_into") != i:
            break
        block.append(op)
    return block


def format_table(profile):
    total = profile["latency_ms"]["p50"]
    lines = [f"{'op':36s} {'type':15s} {'kernel':32s} {'ms p50':>8s} {'%':>5s} {'GFLOP/s':>7s} {'density':>7s} "
             f"{'r':>2s} {'weights':>9s} {'act. B':>9s}"]
    ops = profile["ops"]
    for i, op in enumerate(ops):
        block = _fused_block(ops, i)
        flops = sum(o["flops"] for o in block)
        gflops = flops / op["ms"] / 1e6 if op["ms"] > 0 and block else 0.0
        density = f"{op['flops'] / op['dense_flops']:.2f}" if op["dense_flops"] else "-"
        name = op["name"] if op.get("fused_into") is None else "  + " + op["name"]
        ms = f"{op['ms']:8.3f}" if op.get("fused_into") is None else f"{'fused':>8s}"
        share = f"{100 * op['ms'] / total:5.1f}" if op.get("fused_into") is None else f"{'':5s}"
        lines.append(f"{name[:36]:36s} {op['type'][:15]:15s} {op['kernel'][:32]:32s} {ms} "
                     f"{share} {gflops:7.2f} {density:>7s} {op['group_size'] or '-':>2} "
                     f"{op['weight_bytes']:9d} {op['activation_bytes']:9d}")
    blocks = sum(1 for i, op in enumerate(ops) if len(_fused_block(ops, i)) > 1)
    if blocks:
        lines.append(f"{blocks} fused blocks: a block's time is on its first op, its members ('+') follow")
    lat = profile["latency_ms"]
    flops = sum(op["flops"] for op in profile["ops"])
    dense = sum(op["dense_flops"] for op in profile["ops"])
    machine = profile.get("machine", {})
    mhz = f" {machine['mhz']} MHz" if machine.get("mhz") else ""
    lines.append(f"latency ms: p50 {lat['p50']:.3f}  p90 {lat['p90']:.3f}  p99 {lat['p99']:.3f}  min {lat['min']:.3f}"
                 f"  ({profile['runs']} runs, {profile.get('threads')} threads)")
    lines.append(f"ops sum {sum(op['ms'] for op in profile['ops']):.3f} ms; {flops / 1e9:.3f} GFLOP executed of "
                 f"{dense / 1e9:.3f} dense; arena {profile['arena_bytes']} B, scratch {profile['scratch_bytes']} B; "
                 f"{machine.get('cpu', '?')}{mhz} {machine.get('isa', '')}")
    return "\n".join(lines)


def chrome_trace(profile):
    """Trace Event Format: one complete event per op, laid end to end at median durations."""
    events, t = [], 0.0
    for op in profile["ops"]:
        us = op["ms"] * 1e3
        events.append(dict(name=op["name"], cat=op["type"], ph="X", ts=t, dur=us, pid=1, tid=1,
                           args=dict(kernel=op["kernel"], flops=op["flops"], dense_flops=op["dense_flops"])))
        t += us
    return dict(traceEvents=events, displayTimeUnit="ms", metadata=dict(model=profile.get("model", "")))


def html_report(profile):
    """A self-contained page: one bar per op (time), coloured by op type."""
    ops = profile["ops"]
    top = max((op["ms"] for op in ops), default=1.0) or 1.0
    colours = {}
    palette = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7"]
    rows = []
    for i, op in enumerate(ops):
        colour = colours.setdefault(op["type"], palette[len(colours) % len(palette)])
        width = 600 * op["ms"] / top
        label = html.escape(f"{op['name']} ({op['type']}, {op['kernel'] or 'plain C'})")
        rows.append(f'<text x="0" y="{i * 18 + 13}" font-size="11">{label[:70]}</text>'
                    f'<rect x="420" y="{i * 18 + 3}" width="{width:.1f}" height="12" fill="{colour}"/>'
                    f'<text x="{425 + width:.1f}" y="{i * 18 + 13}" font-size="11">{op["ms"]:.3f} ms</text>')
    legend = " ".join(f'<span style="color:{c}">&#9632; {html.escape(t)}</span>' for t, c in colours.items())
    lat = profile["latency_ms"]
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>sparselite profile</title></head><body>"
            f"<h2>{html.escape(str(profile.get('model', '')))}</h2><p>latency p50 {lat['p50']:.3f} ms, "
            f"p90 {lat['p90']:.3f} ms; {html.escape(str(profile.get('machine', {}).get('cpu', '')))}</p>"
            f"<p>{legend}</p><svg xmlns='http://www.w3.org/2000/svg' width='1100' height='{len(ops) * 18 + 10}'>"
            + "".join(rows) + "</svg></body></html>")
