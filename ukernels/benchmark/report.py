"""The benchmark's outputs: a Markdown report, the raw results as JSON, PNG charts
(matplotlib, optional) and the table printed to the terminal."""
import json
import os
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple

from ukernels.benchmark.runner import Result, best
from ukernels.benchmark.workloads import WORKLOADS

_PEAK_KEYS = {"f32": "f32", "bf16": "bf16 vdpbf16ps", "int8": "int8 vpdpbusd"}


def peak_per_core(machine: Dict, kind: str) -> float:
    """G ops/s of one core for a workload's peak kind (0: not measured on this CPU)."""
    if kind == "f32":
        return float(machine.get("f32_peak_gflops_per_core") or 0.0)
    return float(machine.get("peaks_gops_per_core", {}).get(_PEAK_KEYS[kind], 0.0))


def _groups(results: Sequence[Result]) -> "OrderedDict[Tuple[str, str, int], List[Result]]":
    g: "OrderedDict[Tuple[str, str, int], List[Result]]" = OrderedDict()
    for r in results:
        g.setdefault((r.workload, r.shape, r.threads), []).append(r)
    return g


def _is_decode(r: Result) -> bool:
    """Reported in GB/s of weight: few rows and a large weight, or a decode workload's few rows
    (its weights rotate through DRAM at any size)."""
    return r.M <= 16 and (r.N * r.K >= 1 << 22 or r.workload.startswith("decode"))


def summary_rows(data: Dict) -> List[Dict]:
    """Per (workload, shape, threads): best ukernels vs best peer, fraction of peak / bandwidth."""
    results = [Result(**r) for r in data["results"]]
    machine = data["machine"]
    rows = []
    for (w, shape, t), rs in _groups(results).items():
        ours, peer = best(rs, True), best(rs, False)
        row = {"workload": w, "shape": shape, "threads": t, "ours": ours.impl if ours else None,
               "ours_gflops": ours.gflops if ours else None, "peer": peer.impl if peer else None,
               "peer_gflops": peer.gflops if peer else None,
               "ratio": ours.gflops / peer.gflops if ours and peer and peer.gflops > 0 else None,
               "decode": _is_decode(rs[0])}
        peak = peak_per_core(machine, WORKLOADS[w].peak) * t if w in WORKLOADS else 0.0
        row["fraction_of_peak"] = ours.gflops / peak if ours and peak else None
        row["ratio_to_each_peer"] = {r.impl: ours.gflops / r.gflops for r in rs
                                     if ours and r.status == "ok" and r.library != "ukernels" and r.gflops > 0}
        bw = machine.get("read_gbs", {}).get(str(t))
        row["weight_gbs"] = ours.weight_gbs if ours else None
        row["fraction_of_bandwidth"] = ours.weight_gbs / bw if ours and bw and row["decode"] else None
        rows.append(row)
    return rows


def _fmt(x: Optional[float], spec: str = ".1f") -> str:
    return "-" if x is None else format(x, spec)


def _cell(r: Optional[Result]) -> str:
    if r is None:
        return ""
    if r.status != "ok":
        return {"n/a": "n/a", "wrong": "WRONG", "error": "error"}[r.status]
    spread = (r.seconds_max - r.seconds_min) / r.seconds * 100 if r.seconds else 0.0
    s = f"{r.gflops:.1f} ±{spread:.0f}%"
    return s + f" ({r.weight_gbs:.1f} GB/s)" if _is_decode(r) else s


def markdown(data: Dict, charts: Sequence[str]) -> str:
    m, v = data["machine"], data["versions"]
    out = ["# ukernels benchmark", "",
           f"Run {data['date']} with `{data['command']}` ({data['seconds']:.0f} s).", "",
           "## Machine", "",
           f"- CPU: {m['cpu']} ({m['machine']}), {m['usable_cores']} usable cores; ukernels ISA `{m['isa']}`; "
           f"features: {', '.join(m['features'])}",
           f"- Caches: {'; '.join(m['caches'])}",
           "- Peak of one core (probe: independent chains of one instruction): "
           + (", ".join(f"{k} {x:.1f} G ops/s" for k, x in m["peaks_gops_per_core"].items()) or "not measured"),
           "- Read bandwidth (best of a C probe with 1 and 8 sequential streams per thread and numpy's SIMD reduction): "
           + ", ".join(f"{t}T {x:.1f} GB/s" for t, x in m["read_gbs"].items())
           + "; STREAM triad: " + ", ".join(f"{t}T {x:.1f} GB/s" for t, x in m["triad_gbs"].items()),
           "", "## Versions", "", ", ".join(f"{k} {x}" for k, x in v.items()), "",
           "## Method", "",
           f"Every implementation's result is checked against a reference (float64, or exact integers) "
           f"before it is timed. Times: {data['settings']['rounds']} alternating blocks per implementation "
           f"(calls per block adapted to the shape), the median of each block, the median over blocks; "
           f"± is the spread of the block medians. All libraries run on the same thread count "
           f"(numpy's BLAS: {data['blas_pinning']}; torch: set_num_threads; onnxruntime: intra_op_num_threads; "
           f"IREE: local-task with that many workers, one count per process: the largest). GFLOP/s = 2MNK (x batch) / time; decode shapes (M <= 16) also show the "
           f"workload's weight bytes per second (the int4 layer's 4-bit weight for every implementation, "
           f"whatever a peer reads instead), and its fraction of the measured read bandwidth: a weight that fits "
           f"in the last-level cache is read from it in back-to-back calls, so fractions above 100% mean "
           f"cache-resident weights, not a broken probe.", ""]
    if data["skipped_peers"]:
        out += ["Peers skipped: " + "; ".join(f"**{p}**: {why}" for p, why in data["skipped_peers"].items()), ""]
    summary = summary_rows(data)
    out += summary_markdown(summary, data)
    rows = {(r["workload"], r["shape"], r["threads"]): r for r in summary}
    results = [Result(**r) for r in data["results"]]
    by_workload: "OrderedDict[str, List[Result]]" = OrderedDict()
    for r in results:
        by_workload.setdefault(r.workload, []).append(r)
    for w, rs in by_workload.items():
        wl = WORKLOADS[w]
        shown = [r for r in sorted(rs, key=lambda r: r.library != "ukernels") if r.status != "n/a"]
        impls = list(OrderedDict.fromkeys(r.impl for r in shown))  # columns: ours first; n/a ones as notes
        out += [f"## {w}: {wl.title}", ""]
        if wl.note:
            out += [f"_{wl.note}._", ""]
        out.append("| shape | threads | " + " | ".join(impls) + " | ukernels / best peer | ukernels / each peer "
                   "| of peak | of read bw |")
        out.append("|---|---|" + "---|" * len(impls) + "---|---|---|---|")
        notes = OrderedDict()
        for (ww, shape, t), group in _groups(rs).items():
            cells = {r.impl: r for r in group}
            row = rows[(ww, shape, t)]
            ratio = f"**{row['ratio']:.2f}x** {row['peer']}" if row["ratio"] else "-"
            each = ", ".join(f"{_short(i)} {x:.2f}" for i, x in row["ratio_to_each_peer"].items()) or "-"
            out.append(f"| {shape} | {t} | " + " | ".join(_cell(cells.get(i)) for i in impls) + f" | {ratio} | {each} | "
                       f"{_fmt(row['fraction_of_peak'] and row['fraction_of_peak'] * 100, '.0f')}% | "
                       f"{_fmt(row['fraction_of_bandwidth'] and row['fraction_of_bandwidth'] * 100, '.0f')}% |"
                       .replace("-%", "-"))
            for r in group:
                if r.status != "ok":
                    notes.setdefault(f"{r.impl}: {r.status}: {r.reason}", []).append(f"{shape} {t}T")
        out.append("")
        for note, where in notes.items():
            out.append(f"- {note} ({', '.join(where[:4])}{' ...' if len(where) > 4 else ''})")
        if notes:
            out.append("")
        for c in charts:
            if os.path.basename(c).startswith(f"{w}_"):
                out += [f"![{w}]({os.path.basename(c)})", ""]
    return "\n".join(out) + "\n"


def summary_markdown(summary: List[Dict], data: Dict) -> List[str]:
    """The summary table: per workload and shape, ukernels' best against the best peer at each
    thread count (the section the README's Performance section is made from)."""
    threads = data["settings"]["threads"]
    out = ["## Summary", "",
           "ukernels' best implementation (either backend) against the best peer that ran, GFLOP/s "
           "(decode shapes: the weight's GB/s in parentheses), and the ratio.", "",
           "| workload | shape | " + " | ".join(f"{t}T ukernels | {t}T best peer | {t}T ratio" for t in threads) + " |",
           "|---|---|" + "---|---|---|" * len(threads)]
    by = OrderedDict()
    for r in summary:
        by.setdefault((r["workload"], r["shape"]), {})[r["threads"]] = r
    for (w, shape), per in by.items():
        cells = []
        for t in threads:
            r = per.get(t)
            if r is None or r["ours_gflops"] is None:
                cells += ["-", "-", "-"]
                continue
            ours = f"{r['ours_gflops']:.1f}" + (f" ({r['weight_gbs']:.1f} GB/s)" if r["decode"] else "")
            peer = f"{r['peer_gflops']:.1f} {_short(r['peer'])}" if r["peer"] else "-"
            cells += [ours, peer, f"{r['ratio']:.2f}x" if r["ratio"] else "-"]
        out.append(f"| {w} | {shape} | " + " | ".join(cells) + " |")
    return out + [""]


def _short(impl: str) -> str:
    """A peer implementation's library name for the summary."""
    for lib in ("numpy", "torch", "onnxruntime", "IREE"):
        if impl.startswith(lib):
            return lib
    return impl.split()[0]


def table(data: Dict) -> str:
    """The terminal table: one line per workload, shape and thread count."""
    lines = [f"{'workload':<9} {'shape':<16} {'T':>2} {'ukernels':>9} {'best peer':>9} {'ratio':>6}  "
             f"{'peak':>5} {'bw':>5}  peer"]
    for r in summary_rows(data):
        lines.append(f"{r['workload']:<9} {r['shape']:<16} {r['threads']:>2} {_fmt(r['ours_gflops']):>9} "
                     f"{_fmt(r['peer_gflops']):>9} {_fmt(r['ratio'], '.2f'):>6}  "
                     f"{_fmt(r['fraction_of_peak'] and r['fraction_of_peak'] * 100, '.0f'):>4}% "
                     f"{_fmt(r['fraction_of_bandwidth'] and r['fraction_of_bandwidth'] * 100, '.0f'):>4}%  "
                     f"{r['peer'] or '-'}")
    return "\n".join(lines).replace("  -%", "   -") + "\n(GFLOP/s; peak: ukernels' best as a fraction of " \
        "threads x the per-core peak; bw: decode shapes' weight bytes/s over the read bandwidth)"


def charts(data: Dict, out_dir: str) -> Tuple[List[str], Optional[str]]:
    """PNG charts per workload (GFLOP/s with the peak line; decode shapes: GB/s with the read
    bandwidth line). Returns (paths, why none were drawn)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return [], "charts skipped: matplotlib is not installed (pip install matplotlib, or ukernels[bench])"
    results = [Result(**r) for r in data["results"] if r["status"] == "ok"]
    machine = data["machine"]
    paths = []
    for w in OrderedDict.fromkeys(r.workload for r in results):
        for decode in (False, True):
            rs = [r for r in results if r.workload == w and _is_decode(r) == decode]
            if not rs:
                continue
            threads = sorted({r.threads for r in rs})
            fig, axes = plt.subplots(1, len(threads), figsize=(6.5 * len(threads), 5.2), squeeze=False)
            for ax, t in zip(axes[0], threads):
                rt = [r for r in rs if r.threads == t]
                shapes = list(OrderedDict.fromkeys(r.shape for r in rt))
                impls = list(OrderedDict.fromkeys(r.impl for r in sorted(rt, key=lambda r: r.library != "ukernels")))
                width = 0.8 / len(impls)
                for i, impl in enumerate(impls):
                    vals = {r.shape: (r.weight_gbs if decode else r.gflops) for r in rt if r.impl == impl}
                    xs = [j + i * width for j, s in enumerate(shapes) if s in vals]
                    ax.bar(xs, [vals[s] for s in shapes if s in vals], width, label=impl)
                if decode:
                    bw = machine.get("read_gbs", {}).get(str(t))
                    if bw:
                        ax.axhline(bw, color="k", ls="--", lw=1, label=f"read bandwidth {bw:.0f} GB/s")
                    ax.set_ylabel("weight GB/s")
                else:
                    peak = peak_per_core(machine, WORKLOADS[w].peak if w in WORKLOADS else "f32") * t
                    if peak:
                        ax.axhline(peak, color="k", ls="--", lw=1, label=f"peak {peak:.0f}")
                    ax.set_ylabel("GFLOP/s (G ops/s)")
                ax.set_xticks([j + 0.4 - width / 2 for j in range(len(shapes))])
                ax.set_xticklabels(shapes, rotation=20, fontsize=8)
                ax.set_title(f"{w}{' (decode)' if decode else ''}, {t} thread{'s' if t > 1 else ''}")
                ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False)
            fig.tight_layout()
            path = os.path.join(out_dir, f"{w}_{'decode' if decode else 'compute'}.png")
            fig.savefig(path, dpi=90)
            plt.close(fig)
            paths.append(path)
    return paths, None


def write(data: Dict, out_dir: str) -> Dict[str, object]:
    """report.md, results.json and the charts into out_dir (created). Returns what was written."""
    os.makedirs(out_dir, exist_ok=True)
    chart_paths, why = charts(data, out_dir)
    data = dict(data, charts=[os.path.basename(p) for p in chart_paths], charts_skipped=why)
    json_path = os.path.join(out_dir, "results.json")
    with open(json_path, "w") as f:
        json.dump(data, f, indent=1, default=float)
    md_path = os.path.join(out_dir, "report.md")
    with open(md_path, "w") as f:
        f.write(markdown(data, chart_paths))
        if why:
            f.write(f"\n_{why}._\n")
    return {"report": md_path, "json": json_path, "charts": chart_paths, "charts_skipped": why}


def readme_section(data: Dict, chart_dir: str) -> str:
    """The README's "Performance" section from a run's results.json: the machine, versions,
    the summary table and the charts (paths relative to the README)."""
    m, v = data["machine"], data["versions"]
    peaks = m["peaks_gops_per_core"]
    lines = ["## Performance", "",
             f"Generated from one run of `{data['command'].strip()}` on {data['date']} "
             f"({data['seconds'] / 60:.0f} min): {m['cpu']}, {m['usable_cores']} vCPUs, ISA `{m['isa']}` "
             f"({', '.join(m['features'])}); one core's f32 FMA peak {m['f32_peak_gflops_per_core']:.0f} GFLOP/s"
             + (f", bf16 {peaks['bf16 vdpbf16ps']:.0f}" if "bf16 vdpbf16ps" in peaks else "")
             + (f", int8 {peaks['int8 vpdpbusd']:.0f} G ops/s" if "int8 vpdpbusd" in peaks else "")
             + "; read bandwidth " + ", ".join(f"{t}T {x:.1f} GB/s" for t, x in m["read_gbs"].items()) + ". "
             + "Versions: " + ", ".join(f"{k} {x}" for k, x in v.items()) + ". "
             f"The full report (every implementation, spreads, fractions of peak and bandwidth, reasons "
             f"for anything not measured) is [`{chart_dir}/report.md`]({chart_dir}/report.md), the raw "
             f"results [`{chart_dir}/results.json`]({chart_dir}/results.json). A shared 2-vCPU VM: "
             "blocks whose spread is large were disturbed; ratios within ~5% are noise. Decode-shaped weights "
             "up to the 32 MiB last-level cache stay in it across back-to-back calls.", ""]
    body = summary_markdown(summary_rows(data), data)
    lines += body[2:]  # the table (its own heading and intro dropped)
    for c in data.get("charts", []):
        if any(c.startswith(p) for p in ("matmul_compute", "layer_compute", "linear_compute", "int8_compute",
                                           "int4_decode")):
            lines += [f"![{c[:-4]}]({chart_dir}/{c})", ""]
    return "\n".join(lines)

