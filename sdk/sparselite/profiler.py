"""Profiles: per-op median time, FLOPs (stored and dense), GFLOP/s and kernel, plus latency
percentiles and memory, in one JSON schema shared with the `sparselite-bench` binary, so a
device run can be read and drawn on the desktop. Renders a text table and a self-contained HTML
report (time per op and per kernel family), the comparison of two runs layer by layer, and
Chrome-trace/Perfetto JSON (ui.perfetto.dev)."""
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


def peak_rss_bytes():
    """The process's peak resident memory (Linux, macOS), or None where unknown (Pyodide)."""
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    except (ImportError, OSError):
        return None
    return peak if platform.system() == "Darwin" else peak * 1024   # bytes on macOS, KiB on Linux


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
                arena_bytes=model.arena_bytes, scratch_bytes=model.scratch_bytes, peak_rss_bytes=peak_rss_bytes(),
                ops=ops)


def load_profile(path):
    """A profile JSON written by `sparselite profile --json` or `sparselite-bench --json`."""
    with open(path) as f:
        data = json.load(f)
    if data.get("schema") != SCHEMA:
        raise ValueError(f"{path} is not a {SCHEMA} profile (schema: {data.get('schema')!r})")
    return data


def _fused_block(ops, i):
    """Op i and the members its fused block runs (only op i when it is not fused); [] for a member.
    Members need not follow their head (a convolution's epilogue may take an op from a later
    branch, or the PAD before it)."""
    if ops[i].get("fused_into") is not None:
        return []
    return [ops[i]] + [op for op in ops if op.get("fused_into") == i]


# What the time goes to, in the order the README's Raspberry Pi section says to look: the stem and
# other dense convs (gemm), depthwise, the group-sparse 1x1 convs per r, then the rest.
_MATRIX_OPS = {"CONV2D", "FULLY_CONNECTED", "MATMUL", "CONV_TRANSPOSE2D"}
_DATA_MOVEMENT_OPS = {"RESHAPE", "TRANSPOSE", "CONCAT", "PAD", "SLICE", "GATHER", "GATHER_ELEMENTS", "CAST",
                      "EXPAND", "DEPTH_TO_SPACE", "RESIZE_BILINEAR", "RESIZE_NEAREST"}
FAMILIES = ("stem / gemm", "depthwise", "spmm", "elementwise", "data movement")


def kernel_family(op):
    """'stem / gemm', 'depthwise', 'spmm r=4' (per group size), 'elementwise' (activations, binary ops,
    pooling, norms, softmax) or 'data movement' (reshape, transpose, concat, pad, slice, gather...)."""
    kernel = op.get("kernel") or ""
    if "spmm" in kernel:
        return f"spmm r={op.get('group_size') or 1}"
    if "dwconv" in kernel:
        return "depthwise"
    if "gemm" in kernel or "winograd" in kernel or op["type"] in _MATRIX_OPS:
        return "stem / gemm"
    if op["type"] in _DATA_MOVEMENT_OPS or "unzip" in kernel:
        return "data movement"
    return "elementwise"


def _family_rank(family):
    base, _, r = family.partition(" r=")
    return FAMILIES.index(base), int(r or 0)


def family_totals(profile):
    """[(family, ms, ops)] in FAMILIES order (spmm by r); a fused block's time counts for its first op,
    so the totals add up to the per-op total (ops_total_ms)."""
    totals = {}
    for op in profile["ops"]:
        ms, count = totals.get(kernel_family(op), (0.0, 0))
        totals[kernel_family(op)] = (ms + op["ms"], count + 1)
    return [(family, ms, count) for family, (ms, count) in sorted(totals.items(), key=lambda kv: _family_rank(kv[0]))]


def op_type_totals(profile):
    """[(op type, ms, ops)], the most time first: the summary `sparselite bench` and sparselite-bench print."""
    totals = {}
    for op in profile["ops"]:
        ms, count = totals.get(op["type"], (0.0, 0))
        totals[op["type"]] = (ms + op["ms"], count + 1)
    return sorted(((t, ms, n) for t, (ms, n) in totals.items()), key=lambda row: (-row[1], row[0]))


def ops_total_ms(profile):
    return sum(op["ms"] for op in profile["ops"])


def _density(op):
    return op["flops"] / op["dense_flops"] if op.get("dense_flops") else None


def _share(ms, total):
    return 100.0 * ms / total if total > 0 else 0.0


def _isa_text(machine):
    return " ".join(machine.get("isa") or []) or "portable C"


def header_lines(profile):
    """Model, machine, threads, runs and latency percentiles: what a number is worth without them is nothing."""
    machine, lat = profile.get("machine", {}), profile["latency_ms"]
    mhz = f" @ {machine['mhz']} MHz" if machine.get("mhz") else ""
    peak = profile.get("peak_rss_bytes")
    memory = f"arena {profile['arena_bytes'] / 1024:.0f} KiB, scratch {profile['scratch_bytes'] / 1024:.0f} KiB" + (
        f", process peak RSS {peak / 2**20:.1f} MiB" if peak else "")
    return [f"model: {profile.get('model') or '?'}  (measured by {profile.get('source', '?')})",
            f"cpu: {machine.get('cpu', '?')}{mhz}, {machine.get('arch', '?')}, ISA {_isa_text(machine)}; "
            f"{profile.get('threads')} threads; {profile['runs']} runs after {profile.get('warmup', '?')} warm-up",
            f"latency ms: p50 {lat['p50']:.3f}  p90 {lat['p90']:.3f}  p99 {lat['p99']:.3f}  min {lat['min']:.3f}",
            f"memory: {memory}"]


def format_families(profile):
    total = ops_total_ms(profile)
    lines = [f"time by kernel family (share of the {total:.3f} ms per-op total; p50 latency "
             f"{profile['latency_ms']['p50']:.3f} ms includes the runtime between ops):"]
    for family, ms, count in family_totals(profile):
        share = _share(ms, total)
        lines.append(f"  {family:<14} {count:>4} ops {ms:9.3f} ms {share:5.1f}%  {'#' * round(share / 2.5)}")
    lines.append(f"  {'per-op total':<14} {len(profile['ops']):>4} ops {total:9.3f} ms 100.0%")
    return lines


def format_table(profile):
    """The terminal report: header, one row per op (family, kernel, ms, share, GFLOP/s, density, r,
    bytes) and the time by kernel family."""
    ops, total = profile["ops"], ops_total_ms(profile)
    width = max([4] + [len(op["name"]) + (4 if op.get("fused_into") is not None else 0) for op in ops])
    kwidth = max([6] + [len(op["kernel"] or "plain C") for op in ops])
    lines = header_lines(profile) + [""]
    lines.append(f"{'op':<{width}} {'type':<15} {'family':<13} {'kernel':<{kwidth}} {'ms p50':>8} {'%':>5} "
                 f"{'GFLOP/s':>7} {'density':>7} {'r':>2} {'weights':>9} {'act. B':>9}")
    for i, op in enumerate(ops):
        block = _fused_block(ops, i)
        flops = sum(o["flops"] for o in block)
        gflops = flops / op["ms"] / 1e6 if op["ms"] > 0 and block else 0.0
        density = _density(op)
        member = op.get("fused_into") is not None
        name = "  + " + op["name"] if member else op["name"]
        ms = f"{'fused':>8s}" if member else f"{op['ms']:8.3f}"
        share = f"{'':5s}" if member else f"{_share(op['ms'], total):5.1f}"
        lines.append(f"{name:<{width}} {op['type'][:15]:<15} {kernel_family(op):<13} {op['kernel'] or 'plain C':<{kwidth}} "
                     f"{ms} {share} {gflops:7.2f} {'-' if density is None else f'{density:.2f}':>7} "
                     f"{op['group_size'] or '-':>2} {op['weight_bytes']:9d} {op['activation_bytes']:9d}")
    blocks = sum(1 for i, op in enumerate(ops) if len(_fused_block(ops, i)) > 1)
    if blocks:
        lines.append(f"{blocks} fused blocks: a block's time is on its first op, its members ('+') follow")
    flops = sum(op["flops"] for op in ops)
    dense = sum(op["dense_flops"] for op in ops)
    lines.append(f"{flops / 1e9:.3f} GFLOP executed of {dense / 1e9:.3f} dense")
    return "\n".join(lines + [""] + format_families(profile))


def format_summary(profile):
    """What `sparselite bench` and sparselite-bench print after a run: time per op type, latency
    percentiles, memory, machine (the summary LiteRT's benchmark_model users read)."""
    total = ops_total_ms(profile)
    lines = [f"{'op type':<16} {'ops':>4} {'ms':>9} {'%':>6}"]
    for op_type, ms, count in op_type_totals(profile):
        lines.append(f"{op_type:<16} {count:>4} {ms:9.3f} {_share(ms, total):6.1f}")
    return "\n".join(lines + header_lines(profile))


def _label(profile):
    machine = profile.get("machine", {})
    model = str(profile.get("model") or "?").replace("\\", "/").rsplit("/", 1)[-1]
    return f"{model} ({machine.get('cpu', '?')}, {profile.get('threads')} threads)"


def aligned_ops(a, b):
    """[(op of a or None, op of b or None)] matched by name (the k-th op of a name with the k-th: converters
    may give several ops one name), in a's order, then b's ops a lacks."""
    def keyed(ops):
        seen = {}
        for op in ops:
            seen[op["name"]] = seen.get(op["name"], -1) + 1
            yield (op["name"], seen[op["name"]]), op

    rest = dict(keyed(b["ops"]))
    pairs = [(op, rest.pop(key, None)) for key, op in keyed(a["ops"])]
    return pairs + [(None, op) for op in rest.values()]


def _fused(op):
    return op is not None and op.get("fused_into") is not None


def row_speedups(pairs):
    """A's ms over B's per row of aligned_ops; where either run fused a block, over the whole block (its
    time is on its first op), on the block's first row, '' on its other rows."""
    ratios = [""] * len(pairs)
    start = 0
    for i in range(1, len(pairs) + 1):
        if i < len(pairs) and (_fused(pairs[i][0]) or _fused(pairs[i][1])):
            continue   # row i belongs to the block that started at `start`
        unit = pairs[start:i]
        ms_a = sum(x["ms"] for x, _ in unit if x) if all(x for x, _ in unit) else None
        ms_b = sum(y["ms"] for _, y in unit if y) if all(y for _, y in unit) else None
        ratios[start] = _ratio(ms_a, ms_b) + (" blk" if len(unit) > 1 else "")
        start = i
    return ratios


def _ratio(ms_a, ms_b):
    return f"{ms_a / ms_b:.2f}x" if ms_a and ms_b else "-"


def format_compare(a, b):
    """Two runs layer by layer (desktop vs Pi, dense vs sparse): time, family and density of each, and
    how many times faster B is than A (A ms / B ms)."""
    lines = [f"A: {_label(a)}", f"B: {_label(b)}"]
    for name, p in (("A", a), ("B", b)):
        lat = p["latency_ms"]
        lines.append(f"{name} latency ms: p50 {lat['p50']:.3f}  p90 {lat['p90']:.3f}  p99 {lat['p99']:.3f}  "
                     f"min {lat['min']:.3f}  ({p['runs']} runs, ISA {_isa_text(p.get('machine', {}))})")
    lines.append(f"B is {_ratio(a['latency_ms']['p50'], b['latency_ms']['p50'])} A's speed at p50; "
                 "A/B below: A's ms over B's (above 1: B is faster); 'blk': over a block either run fused")
    pairs = aligned_ops(a, b)
    width = max([4] + [len((x or y)["name"]) for x, y in pairs])
    lines += ["", f"{'op':<{width}} {'A family':<13} {'A dens.':>7} {'A ms':>8} {'B family':<13} {'B dens.':>7} "
                  f"{'B ms':>8} {'A/B':>9}"]

    def cells(op):
        if op is None:
            return f"{'-':<13} {'-':>7} {'-':>8}"
        density = _density(op)
        ms = "fused" if op.get("fused_into") is not None else f"{op['ms']:.3f}"
        return f"{kernel_family(op):<13} {'-' if density is None else f'{density:.2f}':>7} {ms:>8}"

    for (x, y), speed in zip(pairs, row_speedups(pairs)):
        lines.append(f"{(x or y)['name']:<{width}} {cells(x)} {cells(y)} {speed:>9}")
    lines += ["", f"{'kernel family':<14} {'A ms':>9} {'A %':>6} {'B ms':>9} {'B %':>6} {'A/B':>7}"]
    fa, fb = ({f: ms for f, ms, _ in family_totals(p)} for p in (a, b))
    ta, tb = ops_total_ms(a), ops_total_ms(b)
    for family in sorted(set(fa) | set(fb), key=_family_rank):
        ms_a, ms_b = fa.get(family, 0.0), fb.get(family, 0.0)
        lines.append(f"{family:<14} {ms_a:9.3f} {_share(ms_a, ta):6.1f} {ms_b:9.3f} {_share(ms_b, tb):6.1f} "
                     f"{_ratio(ms_a, ms_b):>7}")
    lines.append(f"{'per-op total':<14} {ta:9.3f} {100.0:6.1f} {tb:9.3f} {100.0:6.1f} {_ratio(ta, tb):>7}")
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


_FAMILY_COLOURS = {"stem / gemm": "#3b6ea5", "depthwise": "#e07b24", "elementwise": "#9a6fb0",
                   "data movement": "#8c8c8c"}
_SPMM_COLOURS = {1: "#8fd18a", 2: "#5cb85c", 4: "#2e8b57", 8: "#1f6040"}

_CSS = """
:root { --ink: #1d2330; --muted: #5d6678; --line: #e3e6ec; --card: #fff; --bg: #f5f6f8; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink);
       background: var(--bg); }
main { max-width: 1200px; margin: 0 auto; padding: 24px 16px 48px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 0 0 12px; }
.sub { color: var(--muted); margin: 0 0 16px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 16px; margin: 0 0 16px; }
.meta { display: grid; grid-template-columns: repeat(auto-fit, minmax(140px, 1fr)); gap: 12px; }
.meta div { display: flex; flex-direction: column; } .meta b { font-size: 16px; }
.meta span { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.stack { display: flex; height: 22px; border-radius: 6px; overflow: hidden; margin: 0 0 12px; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { padding: 4px 8px; border-bottom: 1px solid var(--line); text-align: right; white-space: nowrap; }
th { font-size: 12px; color: var(--muted); font-weight: 600; position: sticky; top: 0; background: var(--card); }
td.l, th.l { text-align: left; } td.name { font-family: ui-monospace, monospace; font-size: 12px; }
tr.member td { color: var(--muted); } tfoot td { font-weight: 600; border-top: 2px solid var(--ink); }
.chip { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 6px; vertical-align: -1px; }
.bar { height: 12px; border-radius: 3px; min-width: 1px; }
td.barcell { width: 30%; min-width: 120px; }
.faster { color: #1f7a3a; } .slower { color: #b3261e; }
@media (max-width: 640px) { .hide-narrow { display: none; } h1 { font-size: 18px; } }
"""


def family_colour(family):
    base, _, r = family.partition(" r=")
    return _SPMM_COLOURS.get(int(r), "#2e8b57") if base == "spmm" else _FAMILY_COLOURS[base]


def _page(title, body):
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'><title>{html.escape(title)}</title>"
            f"<style>{_CSS}</style></head><body><main>{body}</main></body></html>")


def _meta(profile):
    machine, lat = profile.get("machine", {}), profile["latency_ms"]
    mhz = f" @ {machine['mhz']} MHz" if machine.get("mhz") else ""
    items = [("latency p50", f"{lat['p50']:.3f} ms"), ("p90 / p99", f"{lat['p90']:.3f} / {lat['p99']:.3f} ms"),
             ("min", f"{lat['min']:.3f} ms"), ("cpu", f"{machine.get('cpu', '?')}{mhz}"),
             ("ISA", _isa_text(machine)), ("threads", str(profile.get("threads"))),
             ("runs", f"{profile['runs']} after {profile.get('warmup', '?')} warm-up"),
             ("arena + scratch", f"{(profile['arena_bytes'] + profile['scratch_bytes']) / 2**20:.2f} MiB")]
    if profile.get("peak_rss_bytes"):
        items.append(("process peak RSS", f"{profile['peak_rss_bytes'] / 2**20:.1f} MiB"))
    return "<div class='meta'>" + "".join(
        f"<div class='meta-{html.escape(k.split()[0].lower())}'><span>{html.escape(k)}</span><b>{html.escape(v)}</b></div>"
        for k, v in items) + "</div>"


def _families_card(profile):
    total = ops_total_ms(profile)
    rows, segments = [], []
    for family, ms, count in family_totals(profile):
        colour, share = family_colour(family), _share(ms, total)
        segments.append(f"<div title='{html.escape(family)} {share:.1f}%' style='width:{share:.3f}%;background:{colour}'></div>")
        rows.append(f"<tr class='family' data-family='{html.escape(family)}' data-ms='{ms!r}'><td class='l'>"
                    f"<span class='chip' style='background:{colour}'></span>{html.escape(family)}</td><td>{count}</td>"
                    f"<td class='ms'>{ms:.3f}</td><td>{share:.1f}%</td></tr>")
    return (f"<section class='card'><h2>Time by kernel family</h2><div class='stack'>{''.join(segments)}</div>"
            f"<table id='families'><thead><tr><th class='l'>family</th><th>ops</th><th>ms</th><th>share</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody><tfoot><tr data-ms='{total!r}'><td class='l'>per-op total</td>"
            f"<td>{len(profile['ops'])}</td><td class='ms'>{total:.3f}</td><td>100.0%</td></tr></tfoot></table>"
            f"<p class='sub'>The p50 latency ({profile['latency_ms']['p50']:.3f} ms) also holds the runtime's work "
            f"between ops. A fused block's time is on its first op.</p></section>")


def _ops_card(profile):
    ops, total = profile["ops"], ops_total_ms(profile)
    top = max((op["ms"] for op in ops), default=0.0) or 1.0
    rows = []
    for op in ops:
        family, member = kernel_family(op), op.get("fused_into") is not None
        density, ms = _density(op), op["ms"]
        bar = "" if member else f"<div class='bar' style='width:{100 * op['ms'] / top:.2f}%;background:{family_colour(family)}'></div>"
        rows.append(f"<tr class='op{' member' if member else ''}' data-ms='{op['ms']!r}'>"
                    f"<td class='l name'>{'+ ' if member else ''}{html.escape(op['name'])}</td>"
                    f"<td class='l hide-narrow'>{html.escape(op['type'])}</td>"
                    f"<td class='l'><span class='chip' style='background:{family_colour(family)}'></span>{html.escape(family)}</td>"
                    f"<td class='l hide-narrow name'>{html.escape(op['kernel'] or 'plain C')}</td>"
                    f"<td>{'-' if density is None else f'{density:.2f}'}</td><td>{op['group_size'] or '-'}</td>"
                    f"<td class='ms'>{'fused' if member else f'{ms:.3f}'}</td>"
                    f"<td>{'' if member else f'{_share(ms, total):.1f}%'}</td>"
                    f"<td class='l barcell'>{bar}</td></tr>")
    return ("<section class='card'><h2>Per op, in execution order</h2><div class='scroll'><table id='ops'><thead><tr>"
            "<th class='l'>op</th><th class='l hide-narrow'>type</th><th class='l'>family</th>"
            "<th class='l hide-narrow'>kernel</th><th>density</th><th>r</th><th>ms p50</th><th>share</th><th></th>"
            f"</tr></thead><tbody>{''.join(rows)}</tbody></table></div></section>")


def html_report(profile):
    """A self-contained, responsive page: header (machine, threads, runs, latency percentiles), time by
    kernel family with shares, and one bar per op coloured by family, with density and r."""
    title = f"sparselite profile: {profile.get('model') or ''}"
    body = (f"<h1>{html.escape(title)}</h1><p class='sub'>measured by {html.escape(str(profile.get('source', '?')))}"
            f"</p><section class='card'>{_meta(profile)}</section>" + _families_card(profile) + _ops_card(profile))
    return _page(title, body)


def html_compare(a, b):
    """Two runs side by side, layer by layer: A and B's time bars per op on one scale, and the speed-up."""
    pairs = aligned_ops(a, b)
    top = max([x["ms"] for x, _ in pairs if x] + [y["ms"] for _, y in pairs if y] + [1e-9])
    rows = []

    def cell(op):
        if op is None:
            return "<td>-</td><td>-</td><td class='barcell'></td>"
        family, density = kernel_family(op), _density(op)
        ms = "fused" if op.get("fused_into") is not None else f"{op['ms']:.3f}"
        return (f"<td class='l'><span class='chip' style='background:{family_colour(family)}'></span>{html.escape(family)}"
                f"{'' if density is None else f' · {density:.2f}'}</td><td class='ms'>{ms}</td><td class='l barcell'>"
                f"<div class='bar' style='width:{100 * op['ms'] / top:.2f}%;background:{family_colour(family)}'></div></td>")

    for (x, y), ratio in zip(pairs, row_speedups(pairs)):
        kind = "" if ratio in ("", "-") else ("faster" if float(ratio.split("x")[0]) > 1 else "slower")
        rows.append(f"<tr><td class='l name'>{html.escape((x or y)['name'])}</td>{cell(x)}{cell(y)}"
                    f"<td class='{kind}'>{ratio}</td></tr>")
    fa, fb = ({f: ms for f, ms, _ in family_totals(p)} for p in (a, b))
    fam_rows = "".join(
        f"<tr><td class='l'><span class='chip' style='background:{family_colour(f)}'></span>{html.escape(f)}</td>"
        f"<td>{fa.get(f, 0.0):.3f}</td><td>{fb.get(f, 0.0):.3f}</td><td>{_ratio(fa.get(f), fb.get(f))}</td></tr>"
        for f in sorted(set(fa) | set(fb), key=_family_rank))
    title = "sparselite profile comparison"
    body = (f"<h1>{title}</h1><p class='sub'>B is {_ratio(a['latency_ms']['p50'], b['latency_ms']['p50'])} A's speed "
            f"at p50 latency</p>"
            + "".join(f"<section class='card'><h2>{k}: {html.escape(_label(p))}</h2>{_meta(p)}</section>"
                      for k, p in (("A", a), ("B", b)))
            + f"<section class='card'><h2>Time by kernel family (ms)</h2><table><thead><tr><th class='l'>family</th>"
              f"<th>A</th><th>B</th><th>A/B</th></tr></thead><tbody>{fam_rows}</tbody></table></section>"
            + "<section class='card'><h2>Layer by layer</h2><div class='scroll'><table><thead><tr><th class='l'>op</th>"
              "<th class='l'>A family · density</th><th>A ms</th><th></th><th class='l'>B family · density</th><th>B ms</th>"
              f"<th></th><th>A/B</th></tr></thead><tbody>{''.join(rows)}</tbody></table></div></section>")
    return _page(title, body)
