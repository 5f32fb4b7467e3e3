#!/usr/bin/env python3
"""Checks for the GPU suite (tests/gpu/run.sh). Standard library only, except
compare-outputs, which imports torch.

    check.py expect PROGRAM_OUTPUT TRACE_TSV
        The program printed "expect<TAB>name<TAB>count" lines (and "launches=N"); the trace
        (gsa-trace kernels TSV) must hold exactly those launches per kernel name, with no
        unnamed launch. Launches of other named kernels are reported, not failed.
    check.py compare-outputs A.pt B.pt
        Every tensor of B equals the one of A bit for bit (torch.equal and the raw bytes).
    check.py torch-launches --profile P.json --trace-tsv T.tsv --meta META.json
        Zero missed: the launch API calls torch.profiler recorded equal the trace's total;
        prints both kernel lists side by side when they differ.
    check.py torch-trace --trace-tsv T.tsv --meta META.json
        The trace has no unnamed launch, names the Triton kernel, and counts as many
        launches of it as the program made.
    check.py bench-report --out-txt F --out-jsonl F [--target-ns 50] [--gpu NAME]
                          [--driver V] [--command CMD]... MODE:ROUND=FILE...
        Aggregates launch_overhead outputs (MODE: off, preload, trace) into the table and
        JSON lines; fails when a configuration adds more than the target.

Each command prints what it compared and ends with a line "PASS: ..." or "FAIL: ..."; the
exit status is 0 for PASS, 1 for FAIL, 2 for unusable input (also printed as FAIL).
"""
import argparse
import collections
import json
import os
import re
import shutil
import statistics
import subprocess
import sys


class Unusable(Exception):
    """Input that cannot be checked (missing file, bad format)."""


def out(msg=""):
    print(msg, flush=True)


def finish(ok, msg):
    out(("PASS: " if ok else "FAIL: ") + msg)
    return 0 if ok else 1


# ---------------------------------------------------------------- gsa-trace kernels TSV

def read_trace_tsv(path):
    """Returns (rows, total, unnamed); rows = list of dicts from `gsa-trace kernels`."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError as exc:
        raise Unusable("cannot read trace table %s: %s" % (path, exc))
    if not lines or lines[0].split("\t")[:5] != ["launches", "params", "handle_kind",
                                                  "adapter", "name"]:
        raise Unusable("%s does not start with the gsa-trace kernels header (first line: %r)"
                       % (path, lines[0] if lines else ""))
    rows, total, unnamed = [], None, None
    for ln in lines[1:]:
        if ln.startswith("#total\t"):
            f = ln.split("\t")
            if len(f) < 4 or f[2] != "unnamed":
                raise Unusable("malformed #total line in %s: %r" % (path, ln))
            total, unnamed = int(f[1]), int(f[3])
            continue
        f = ln.split("\t", 4)
        if len(f) < 5:
            if ln.strip():
                raise Unusable("malformed row in %s: %r" % (path, ln))
            continue
        rows.append({"launches": int(f[0]), "params": int(f[1]), "handle_kind": f[2],
                     "adapter": f[3], "name": f[4]})
    if total is None:
        raise Unusable("%s has no '#total' line (gsa-trace output cut short?)" % path)
    if sum(r["launches"] for r in rows) != total:
        out("NOTE: the rows of %s add up to %d launches, its #total says %d"
            % (path, sum(r["launches"] for r in rows), total))
    return rows, total, unnamed


def by_name(rows):
    c = collections.Counter()
    for r in rows:
        c[r["name"]] += r["launches"]
    return c


def read_expect(path):
    """Parses a program's "expect<TAB>name<TAB>count" and "launches=N" lines."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError as exc:
        raise Unusable("cannot read program output %s: %s" % (path, exc))
    want = collections.Counter()
    launches = None
    for ln in text.splitlines():
        if ln.startswith("expect\t"):
            f = ln.split("\t")
            if len(f) != 3 or not f[2].strip().isdigit():
                raise Unusable("malformed expect line: %r" % ln)
            want[f[1]] += int(f[2])
        m = re.match(r"^launches=(\d+)\s*$", ln)
        if m:
            launches = int(m.group(1))
    if not want:
        raise Unusable("%s has no 'expect' lines: the program did not finish its launches"
                       % path)
    if launches is not None and launches != sum(want.values()):
        raise Unusable("%s: launches=%d but its expect lines add up to %d"
                       % (path, launches, sum(want.values())))
    return want


def cmd_expect(a):
    want = read_expect(a.program_output)
    rows, total, unnamed = read_trace_tsv(a.trace_tsv)
    got = by_name(rows)
    program_total = sum(want.values())
    out("%-34s %10s %10s" % ("kernel", "program", "trace"))
    bad = []
    for name in sorted(want):
        mark = "" if got.get(name, 0) == want[name] else "   <-- differs"
        out("%-34s %10d %10d%s" % (name, want[name], got.get(name, 0), mark))
        if mark:
            bad.append("%s: program %d, trace %d" % (name, want[name], got.get(name, 0)))
    extra = {n: c for n, c in got.items() if n not in want}
    for name in sorted(extra):
        out("%-34s %10s %10d   (not launched by the program itself)"
            % (name if name else "(unnamed)", "-", extra[name]))
    out("program launches %d, trace total %d, trace unnamed %d"
        % (program_total, total, unnamed))
    problems = []
    if unnamed:
        problems.append("%d unnamed launches in the trace" % unnamed)
    if bad:
        problems.append("per-kernel counts differ (%s)" % "; ".join(bad))
    if extra and not problems:
        out("NOTE: the trace also holds %d launches of %d kernels the program did not launch "
            "itself (the CUDA runtime's own?): %s"
            % (sum(extra.values()), len(extra), ", ".join(sorted(extra))))
    if problems:
        return finish(False, "; ".join(problems))
    return finish(True, "%d launches over %d kernels, all in the trace by name, none unnamed"
                  % (program_total, len(want)))


# ---------------------------------------------------------------- outputs

def cmd_compare_outputs(a):
    try:
        import torch
    except Exception as exc:
        raise Unusable("cannot import torch: %s" % exc)

    def load(path):
        if not os.path.isfile(path):
            raise Unusable("%s does not exist (the run did not save its outputs)" % path)
        try:
            return torch.load(path, map_location="cpu")
        except Exception as exc:
            raise Unusable("cannot load %s: %s: %s" % (path, type(exc).__name__, exc))

    ref, new = load(a.reference), load(a.candidate)
    if not isinstance(ref, dict) or not isinstance(new, dict):
        raise Unusable("outputs are not dicts of tensors")
    problems = []
    missing = sorted(set(ref) - set(new))
    added = sorted(set(new) - set(ref))
    if missing:
        problems.append("missing tensors: %s" % ", ".join(missing))
    if added:
        problems.append("extra tensors: %s" % ", ".join(added))
    same = 0
    for k in sorted(set(ref) & set(new)):
        x, y = ref[k], new[k]
        if not (torch.is_tensor(x) and torch.is_tensor(y)):
            problems.append("%s: not a tensor" % k)
            continue
        if x.dtype != y.dtype or tuple(x.shape) != tuple(y.shape):
            problems.append("%s: %s%s vs %s%s" % (k, x.dtype, tuple(x.shape), y.dtype,
                                                  tuple(y.shape)))
            continue
        eq = torch.equal(x, y)
        xb = x.detach().contiguous().reshape(-1).view(torch.uint8)
        yb = y.detach().contiguous().reshape(-1).view(torch.uint8)
        bits = torch.equal(xb, yb)
        if bits and not eq:
            # identical bits that torch.equal calls different: NaNs (NaN != NaN)
            out("NOTE: %s is bit-identical but holds NaNs, so torch.equal says False" % k)
        if bits:
            same += 1
            continue
        diff = (x.double() - y.double()).abs()
        if x.numel():
            nbad = int((xb.reshape(x.numel(), -1) != yb.reshape(y.numel(), -1))
                       .any(dim=1).sum())
        else:
            nbad = 0
        problems.append("%s (%s%s): %d of %d elements differ (torch.equal %s, bytes equal %s, "
                        "max abs diff %g)" % (k, x.dtype, tuple(x.shape), nbad, x.numel(), eq,
                                              bits, float(diff.max()) if diff.numel() else 0.0))
    out("compared %d tensors: %d bit-identical" % (len(set(ref) & set(new)), same))
    for p in problems:
        out("  " + p)
    if problems:
        return finish(False, "%s differs from %s: %s" % (a.candidate, a.reference,
                                                         problems[0]))
    return finish(True, "all %d tensors bit-identical" % same)


# ---------------------------------------------------------------- torch trace checks

def read_meta(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as exc:
        raise Unusable("cannot read the program's meta file %s: %s" % (path, exc))


def cmd_torch_trace(a):
    meta = read_meta(a.meta)
    rows, total, unnamed = read_trace_tsv(a.trace_tsv)
    tname = meta.get("triton_kernel_name") or "gsa_scaled_add_kernel"
    problems = []
    if unnamed:
        problems.append("%d unnamed launches" % unnamed)
        for r in rows:
            if not r["name"]:
                out("  unnamed: %d launches, handle_kind %s, params %d"
                    % (r["launches"], r["handle_kind"], r["params"]))
    hits = [r for r in rows if tname in r["name"]]
    tl_trace = sum(r["launches"] for r in hits)
    tl_prog = int(meta.get("triton_launches", -1))
    out("trace: %d launches of %d kernels, %d unnamed" % (total, len(rows), unnamed))
    out("Triton kernel %r: trace rows %s, launches in trace %d, launches made by the program %d"
        % (tname, [r["name"] for r in hits], tl_trace, tl_prog))
    if meta.get("triton_error"):
        problems.append("the program's Triton kernel failed: %s" % meta["triton_error"])
    elif not hits:
        problems.append("no kernel named like %r in the trace" % tname)
    elif tl_trace != tl_prog:
        problems.append("the trace counts %d launches of %s, the program made %d"
                        % (tl_trace, tname, tl_prog))
    if problems:
        return finish(False, "; ".join(problems))
    return finish(True, "no unnamed launch; %s named, %d launches as made" % (tname, tl_prog))


LAUNCH_API_RE = re.compile(
    r"^(cuda|cu)Launch(Cooperative)?Kernel(MultiDevice)?(ExC?)?(_ptsz)?(_v\d+)?$")
GRAPH_LAUNCH_RE = re.compile(r"^(cuda|cu)GraphLaunch(_ptsz)?(_v\d+)?$")
GPU_CATS = {"kernel", "gpu_memcpy", "gpu_memset", "gpu_user_annotation", "Kernel", "Memcpy",
            "Memset"}


def demangle_all(names):
    """Demangles with c++filt when available (the profiler shows demangled names)."""
    names = list(names)
    tool = shutil.which("c++filt")
    if not tool or not names:
        return {n: n for n in names}
    try:
        p = subprocess.run([tool], input="\n".join(names) + "\n", capture_output=True,
                           text=True, timeout=60)
        res = p.stdout.split("\n")
        if p.returncode == 0 and len(res) >= len(names):
            return {n: res[i] for i, n in enumerate(names)}
    except Exception:
        pass
    return {n: n for n in names}


def short(name, width=110):
    return name if len(name) <= width else name[:width - 3] + "..."


def cmd_torch_launches(a):
    meta = read_meta(a.meta)
    rows, total, unnamed = read_trace_tsv(a.trace_tsv)
    try:
        with open(a.profile) as f:
            doc = json.load(f)
    except (OSError, ValueError) as exc:
        raise Unusable("cannot read the profiler trace %s: %s" % (a.profile, exc))
    events = doc.get("traceEvents", []) if isinstance(doc, dict) else doc
    spans = [e for e in events if isinstance(e, dict) and e.get("ph") == "X"]
    cats = collections.Counter(e.get("cat", "?") for e in spans)
    out("profiler events by category: " + ", ".join("%s=%d" % kv for kv in sorted(cats.items())))

    def corr(e):
        v = (e.get("args") or {}).get("correlation")
        try:
            return int(v) if v is not None else None
        except (TypeError, ValueError):
            return None

    api = [e for e in spans if e.get("cat") not in GPU_CATS]
    api_names = collections.Counter(e.get("name", "") for e in api
                                    if e.get("cat") in ("cuda_runtime", "cuda_driver"))
    out("distinct CUDA runtime/driver API events recorded: "
        + (", ".join("%s=%d" % kv for kv in sorted(api_names.items())) or "none"))
    launches = [e for e in api if LAUNCH_API_RE.match(e.get("name", ""))]
    graph_launches = [e for e in api if GRAPH_LAUNCH_RE.match(e.get("name", ""))]
    kernels = [e for e in spans if e.get("cat") in ("kernel", "Kernel")]
    if not kernels:
        return finish(False, "the profiler recorded no GPU kernel at all (is CUPTI working? "
                      "categories seen: %s): cannot count launches independently"
                      % (", ".join(sorted(cats)) or "none"))

    # A driver launch made inside a runtime launch (same correlation id, or nested in time on
    # the same thread) is one launch, not two.
    rt = [e for e in launches if e.get("name", "").startswith("cuda")]
    drv = [e for e in launches if not e.get("name", "").startswith("cuda")]
    rt_corr = {corr(e) for e in rt if corr(e) is not None}
    rt_by_thread = collections.defaultdict(list)
    for e in rt:
        rt_by_thread[(e.get("pid"), e.get("tid"))].append(e)

    def nested(d):
        if corr(d) is not None and corr(d) in rt_corr:
            return True
        ts, dur = float(d.get("ts", 0)), float(d.get("dur", 0))
        for r in rt_by_thread.get((d.get("pid"), d.get("tid")), ()):
            rts, rdur = float(r.get("ts", 0)), float(r.get("dur", 0))
            if rts <= ts and ts + dur <= rts + rdur:
                return True
        return False

    drv_alone = [d for d in drv if not nested(d)]
    counted = rt + drv_alone
    out("launch API events: %d runtime, %d driver (%d of them inside a runtime launch, not "
        "counted again)" % (len(rt), len(drv), len(drv) - len(drv_alone)))

    kern_by_corr = collections.defaultdict(list)
    for k in kernels:
        kern_by_corr[corr(k)].append(k)
    launch_corr = {corr(e) for e in counted if corr(e) is not None}
    graph_corr = {corr(e) for e in graph_launches if corr(e) is not None}
    api_corr = {corr(e): e.get("name", "") for e in api if corr(e) is not None}

    # Names of what each counted launch launched.
    prof_names = collections.Counter()
    no_kernel = []
    for e in counted:
        ks = kern_by_corr.get(corr(e), [])
        if ks:
            for k in ks:
                prof_names[k.get("name", "?")] += 1
            if len(ks) > 1:
                out("NOTE: launch %s (correlation %s) has %d kernel records"
                    % (e.get("name"), corr(e), len(ks)))
        else:
            no_kernel.append(e)

    # Kernels with no launch event: run by a graph replay, launched inside another API call,
    # or launched through an API the profiler does not record (counted: it was a launch).
    replay_kernels = [k for k in kernels if corr(k) in graph_corr]
    other_api = collections.Counter()
    other_names = collections.Counter()
    orphans = []
    for k in kernels:
        c = corr(k)
        if c in launch_corr or c in graph_corr:
            continue
        if c in api_corr:
            other_api[api_corr[c]] += 1
            other_names[k.get("name", "?")] += 1
        else:
            orphans.append(k)
    for k in orphans:
        prof_names[k.get("name", "?")] += 1
    if other_api:
        out("NOTE: kernels run inside other API calls (not launch calls, not counted): "
            + ", ".join("%s=%d" % kv for kv in sorted(other_api.items())))
        for n, c in sorted(other_names.items()):
            out("        %5d  %s" % (c, short(n)))
    if orphans:
        out("NOTE: %d kernels have no recorded launch API event (a launch API this profiler "
            "does not record): counted as launches" % len(orphans))
        for n, c in sorted(collections.Counter(k.get("name", "?") for k in orphans).items()):
            out("        %5d  %s (correlation ids %s)"
                % (c, short(n), sorted({corr(k) for k in orphans
                                        if k.get("name", "?") == n})[:5]))

    # Launches that ran no kernel: those made during graph capture. Their names are those of
    # the kernels one replay runs.
    first_graph = min(graph_launches, key=lambda e: float(e.get("ts", 0)), default=None)
    per_replay = sorted(kern_by_corr.get(corr(first_graph), []),
                        key=lambda k: float(k.get("ts", 0))) if first_graph else []
    captures = int(meta.get("graph_captures", 0))
    replays = int(meta.get("graph_replays", 0))
    capture_deficit = 0
    out("graph: the program captured %d time(s) and replayed %d time(s); the profiler saw %d "
        "graph launches running %d kernels (%d per replay); %d launch calls ran no kernel"
        % (captures, replays, len(graph_launches), len(replay_kernels), len(per_replay),
           len(no_kernel)))
    if replays and len(graph_launches) != replays:
        out("NOTE: graph launches seen (%d) differ from the program's replays (%d)"
            % (len(graph_launches), replays))
    if captures == 1 and per_replay:
        if len(no_kernel) == len(per_replay):
            for k in per_replay:
                prof_names[k.get("name", "?")] += 1
        else:
            for e in no_kernel:
                prof_names["(a launch call that ran no kernel: %s)" % e.get("name")] += 1
            if len(no_kernel) < len(per_replay):
                capture_deficit = len(per_replay) - len(no_kernel)
                out("NOTE: the graph holds %d kernels but only %d launch calls ran no kernel: "
                    "the profiler missed %d launch calls during capture (counted)"
                    % (len(per_replay), len(no_kernel), capture_deficit))
                prof_names["(launched during capture, not recorded by the profiler)"] += \
                    capture_deficit
    else:
        for e in no_kernel:
            prof_names["(a launch call that ran no kernel: %s)" % e.get("name")] += 1

    prof_total = len(counted) + len(orphans) + capture_deficit
    out("profiler: %d launches = %d launch API calls + %d kernels without a launch event + %d "
        "missed during capture" % (prof_total, len(counted), len(orphans), capture_deficit))
    out("trace:    %d launches (%d unnamed) in %d kernels" % (total, unnamed, len(rows)))

    tl_prog = int(meta.get("triton_launches", -1))
    tname = meta.get("triton_kernel_name") or "gsa_scaled_add_kernel"
    tl_prof = sum(c for n, c in prof_names.items() if tname in n)
    out("Triton kernel %s: program made %d launches, profiler names %d, trace %d"
        % (tname, tl_prog, tl_prof, sum(r["launches"] for r in rows if tname in r["name"])))

    trace_names = collections.Counter()
    dem = demangle_all({r["name"] for r in rows if r["name"]})
    for r in rows:
        trace_names[dem.get(r["name"], r["name"]) if r["name"] else "(unnamed)"] += r["launches"]
    ok = prof_total == total
    if not ok or a.always_table:
        out("")
        out("%8s %8s  %s" % ("profiler", "trace", "kernel (profiler names; trace names demangled)"))
        for n in sorted(set(prof_names) | set(trace_names)):
            p, t = prof_names.get(n, 0), trace_names.get(n, 0)
            out("%8d %8d  %s%s" % (p, t, short(n), "" if p == t else "   <--"))
        out("%8d %8d  total" % (prof_total, total))
        out("")
    if not ok:
        return finish(False, "missed launches: the profiler counted %d launches, the trace %d "
                      "(difference %+d; table above)" % (prof_total, total, total - prof_total))
    return finish(True, "zero missed: profiler %d launches == trace total %d"
                  % (prof_total, total))


# ---------------------------------------------------------------- benchmark report

RESULT_RE = re.compile(r"^RESULT (.*)$")


def parse_bench(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError as exc:
        raise Unusable("cannot read %s: %s" % (path, exc))
    res = {}
    for ln in text.splitlines():
        m = RESULT_RE.match(ln)
        if not m:
            continue
        kv = dict(x.split("=", 1) for x in m.group(1).split() if "=" in x)
        try:
            key = (kv["api"], int(kv["threads"]))
            res[key] = {k: float(kv[k]) for k in ("median_ns", "p10_ns", "p90_ns", "launches")}
        except (KeyError, ValueError):
            raise Unusable("malformed RESULT line in %s: %r" % (path, ln))
    if not res:
        raise Unusable("%s has no RESULT lines (the benchmark failed; see its output)" % path)
    return res


def cmd_bench_report(a):
    runs = collections.defaultdict(dict)  # mode -> round -> results
    for spec in a.runs:
        m = re.match(r"^([a-z]+):(\d+)=(.+)$", spec)
        if not m:
            raise Unusable("bad run spec %r (want MODE:ROUND=FILE)" % spec)
        runs[m.group(1)][int(m.group(2))] = parse_bench(m.group(3))
    if "off" not in runs or "preload" not in runs:
        raise Unusable("need runs of mode 'off' and 'preload', got %s" % sorted(runs))
    configs = sorted({k for mode in runs.values() for r in mode.values() for k in r},
                     key=lambda k: (k[0], k[1]))

    def agg(mode, key, field):
        vals = [r[key][field] for r in runs.get(mode, {}).values() if key in r]
        return statistics.median(vals) if vals else None

    def paired(mode, key):
        ds = []
        for rnd, r in runs.get(mode, {}).items():
            base = runs["off"].get(rnd)
            if base and key in base and key in r:
                ds.append(r[key]["median_ns"] - base[key]["median_ns"])
        return ds

    lines = []
    lines.append("gsa-preload launch overhead: host time per launch, median over batches of %s "
                 "launches" % (a.batch or "256"))
    lines.append("GPU: %s   driver: %s" % (a.gpu or "?", a.driver or "?"))
    lines.append("rounds: %s per mode, modes alternated (off, preload, trace) each round; "
                 "values are medians over rounds of each run's median/p10/p90"
                 % max(len(v) for v in runs.values()))
    lines.append("commands:")
    for c in a.command or []:
        lines.append("  " + c)
    lines.append("")
    hdr = "%-9s %7s | %9s %9s %9s | %9s %9s %9s | %9s %12s | %9s %9s" % (
        "api", "threads", "off_med", "off_p10", "off_p90", "pre_med", "pre_p10", "pre_p90",
        "added_ns", "paired_added", "trace_med", "trace_add")
    lines.append(hdr)
    lines.append("-" * len(hdr))
    jsonl = []
    failures = []

    def f(v):
        return "%9.1f" % v if v is not None else "%9s" % "-"

    for key in configs:
        api, threads = key
        om, op10, op90 = (agg("off", key, x) for x in ("median_ns", "p10_ns", "p90_ns"))
        pm, pp10, pp90 = (agg("preload", key, x) for x in ("median_ns", "p10_ns", "p90_ns"))
        tm = agg("trace", key, "median_ns")
        added = pm - om if pm is not None and om is not None else None
        pd = paired("preload", key)
        padded = statistics.median(pd) if pd else None
        tadd = tm - om if tm is not None and om is not None else None
        ok = added is not None and added <= a.target_ns
        if not ok:
            failures.append("%s/%dt adds %s ns (target %g)"
                            % (api, threads, "%.1f" % added if added is not None else "?",
                               a.target_ns))
        lines.append("%-9s %7d | %s %s %s | %s %s %s | %s %12s | %s %s%s" % (
            api, threads, f(om), f(op10), f(op90), f(pm), f(pp10), f(pp90), f(added),
            ", ".join("%.0f" % d for d in pd) or "-", f(tm), f(tadd),
            "" if ok else "   OVER TARGET"))
        jsonl.append({
            "config": "%s-%dt" % (api, threads), "api": api, "threads": threads,
            "launches_per_run": int(agg("off", key, "launches") or 0),
            "rounds": len(runs["off"]),
            "median_ns_without": om, "p10_ns_without": op10, "p90_ns_without": op90,
            "median_ns_with": pm, "p10_ns_with": pp10, "p90_ns_with": pp90,
            "added_ns": added, "added_ns_paired_per_round": pd,
            "added_ns_paired_median": padded,
            "median_ns_with_trace": tm, "added_ns_with_trace": tadd,
            "target_added_ns": a.target_ns, "within_target": ok,
            "gpu": a.gpu, "driver": a.driver,
        })
    lines.append("")
    lines.append("added_ns = median(with library) - median(without); paired_added = the same per "
                 "round; trace = with library and GSA_TRACE set. Target: at most %g ns added."
                 % a.target_ns)
    text = "\n".join(lines) + "\n"
    with open(a.out_txt, "w") as fh:
        fh.write(text)
    with open(a.out_jsonl, "w") as fh:
        for j in jsonl:
            fh.write(json.dumps(j, sort_keys=True) + "\n")
    out(text.rstrip("\n"))
    if failures:
        return finish(False, "over the %g ns target: %s" % (a.target_ns, "; ".join(failures)))
    return finish(True, "every configuration adds at most %g ns per launch" % a.target_ns)


# ---------------------------------------------------------------- main

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("expect")
    p.add_argument("program_output")
    p.add_argument("trace_tsv")
    p.set_defaults(fn=cmd_expect)
    p = sub.add_parser("compare-outputs")
    p.add_argument("reference")
    p.add_argument("candidate")
    p.set_defaults(fn=cmd_compare_outputs)
    p = sub.add_parser("torch-trace")
    p.add_argument("--trace-tsv", required=True)
    p.add_argument("--meta", required=True)
    p.set_defaults(fn=cmd_torch_trace)
    p = sub.add_parser("torch-launches")
    p.add_argument("--profile", required=True)
    p.add_argument("--trace-tsv", required=True)
    p.add_argument("--meta", required=True)
    p.add_argument("--always-table", action="store_true")
    p.set_defaults(fn=cmd_torch_launches)
    p = sub.add_parser("bench-report")
    p.add_argument("--out-txt", required=True)
    p.add_argument("--out-jsonl", required=True)
    p.add_argument("--target-ns", type=float, default=50.0)
    p.add_argument("--gpu")
    p.add_argument("--driver")
    p.add_argument("--batch")
    p.add_argument("--command", action="append")
    p.add_argument("runs", nargs="+")
    p.set_defaults(fn=cmd_bench_report)
    a = ap.parse_args(argv)
    try:
        return a.fn(a)
    except Unusable as exc:
        out("FAIL: " + str(exc))
        return 2
    except Exception as exc:  # a bug here must still end in a readable FAIL line
        import traceback
        traceback.print_exc(file=sys.stdout)
        out("FAIL: check.py %s raised %s: %s (traceback above)"
            % (a.cmd, type(exc).__name__, exc))
        return 2


if __name__ == "__main__":
    sys.exit(main())
