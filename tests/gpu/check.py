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
    check.py bench-report [--gate overhead|control] [--out-txt F] [--out-jsonl F]
                          [--target-ns 50] [--gpu NAME] [--driver V] [--command CMD]...
                          MODE:ROUND=FILE...
        Aggregates launch_overhead outputs (MODE: off, preload, trace; each names the
        --dump file it wrote) into the table and JSON lines. The benchmark compares, in one
        process, cuLaunchKernel through the PLT with libcuda's own entry point. Gate
        overhead: under the library the PLT reaches another function and every driver
        configuration adds at most the target (one thread: median paired difference;
        several threads: the low end of its 95% interval, see cmd_bench_report); with
        --unsettled-status N, a result over the target whose 95% interval still holds the
        target exits with N (the caller measures more rounds and asks again). Gate control:
        without the library the PLT reaches libcuda's own function and the two paths differ
        by at most the target.

Each command prints what it compared and ends with a line "PASS: ..." or "FAIL: ..."; the
exit status is 0 for PASS, 1 for FAIL, 2 for unusable input (also printed as FAIL).
"""
import argparse
import collections
import json
import math
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
RESOLVE_RE = re.compile(r"^RESOLVE (.*)$")
MODE_LABEL = {"preload": "library", "off": "control (no library)",
              "trace": "library + GSA_TRACE"}


def pct(sorted_vals, p):
    """Percentile with linear interpolation (as the benchmark computes it)."""
    if not sorted_vals:
        return None
    idx = p * (len(sorted_vals) - 1)
    lo = int(idx)
    hi = min(lo + 1, len(sorted_vals) - 1)
    f = idx - lo
    return sorted_vals[lo] * (1.0 - f) + sorted_vals[hi] * f


def median_ci(sorted_vals):
    """95% confidence interval of the median from order statistics (as the benchmark)."""
    n = len(sorted_vals)
    if not n:
        return None, None
    half = 0.98 * n ** 0.5
    lo = max(0, int(math.floor(n / 2.0 - half)) - 1)
    hi = min(n - 1, int(math.ceil(n / 2.0 + 1.0 + half)) - 1)
    return sorted_vals[lo], sorted_vals[hi]


def parse_bench(path):
    """One benchmark run's output: its RESULT lines, pointers, GPU and the dump it wrote."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError as exc:
        raise Unusable("cannot read %s: %s" % (path, exc))
    run = {"path": path, "results": {}, "resolve": None, "gpu": None, "dump": None,
           "resolve_text": []}
    lines = text.splitlines()
    for i, ln in enumerate(lines):
        m = RESULT_RE.match(ln)
        if m:
            kv = dict(x.split("=", 1) for x in m.group(1).split() if "=" in x)
            try:
                run["results"][(kv["api"], int(kv["threads"]))] = kv
            except (KeyError, ValueError):
                raise Unusable("malformed RESULT line in %s: %r" % (path, ln))
            continue
        m = RESOLVE_RE.match(ln)
        if m:
            run["resolve"] = dict(x.split("=", 1) for x in m.group(1).split() if "=" in x)
            run["resolve_text"] = [ln] + [x for x in lines[i + 1:i + 5] if x.startswith("  ")]
            continue
        if ln.startswith("gpu: "):
            run["gpu"] = ln[5:].strip()
        elif ln.startswith("dump: "):
            run["dump"] = ln[6:].strip()
    if run["dump"] is None and path.endswith(".out"):
        run["dump"] = path[:-4] + ".batches.tsv"  # as run.sh names it
    if not run["results"]:
        raise Unusable("%s has no RESULT lines (the benchmark failed; see its output)" % path)
    if run["resolve"] is None:
        raise Unusable("%s has no RESOLVE line (an older benchmark binary?)" % path)
    return run


def read_dump(path):
    """(api, threads) -> hold -> thread -> [(pos, path, batch, ns)]"""
    data = collections.defaultdict(lambda: collections.defaultdict(
        lambda: collections.defaultdict(list)))
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            header = f.readline().rstrip("\n").split("\t")
            if header[:8] != ["api", "threads", "hold", "thread", "pos", "path", "batch", "ns"]:
                raise Unusable("%s: not a launch_overhead dump (header %r)" % (path, header))
            for ln in f:
                x = ln.rstrip("\n").split("\t")
                if len(x) < 8:
                    continue
                data[(x[0], int(x[1]))][int(x[2])][int(x[3])].append(
                    (int(x[4]), x[5], int(x[6]), int(x[7])))
    except OSError as exc:
        raise Unusable("cannot read the benchmark's dump %s: %s" % (path, exc))
    except ValueError as exc:
        raise Unusable("malformed line in %s: %s" % (path, exc))
    return data


def summarize(holds_by_run):
    """Statistics over the holds of one configuration, pooled over runs.

    holds_by_run: list of (run name, {hold: {thread: [(pos, path, batch, ns)]}}).
    One paired difference per hold: the mean over threads of
    ((hooked1 + hooked2) - (raw1 + raw2)) / (2 batch)."""
    hooked, raw, diffs, per_run = [], [], [], []
    launches = 0
    for _name, holds in holds_by_run:
        run_diffs = []
        for h in sorted(holds):
            ds = []
            for _t, rows in sorted(holds[h].items()):
                hk = sum(ns for _p, path, _b, ns in rows if path == "hooked")
                rw = sum(ns for _p, path, _b, ns in rows if path == "raw")
                nh = sum(b for _p, path, b, _ns in rows if path == "hooked")
                nr = sum(b for _p, path, b, _ns in rows if path == "raw")
                if not nh or nh != nr:
                    continue
                for _p, path, b, ns in rows:
                    (hooked if path == "hooked" else raw).append(ns / float(b))
                ds.append((hk - rw) / float(nh))
                launches += nh
            if ds:
                run_diffs.append(sum(ds) / len(ds))
        diffs.extend(run_diffs)
        run_diffs.sort()
        per_run.append(pct(run_diffs, 0.5))
    hooked.sort()
    raw.sort()
    diffs.sort()
    lo, hi = median_ci(diffs)
    return {"hooked_median": pct(hooked, 0.5), "hooked_p10": pct(hooked, 0.1),
            "hooked_p90": pct(hooked, 0.9), "raw_median": pct(raw, 0.5),
            "raw_p10": pct(raw, 0.1), "raw_p90": pct(raw, 0.9), "added": pct(diffs, 0.5),
            "ci_low": lo, "ci_high": hi, "holds": len(diffs), "per_run": per_run,
            "launches_per_path": launches}


def cmd_bench_report(a):
    runs = collections.defaultdict(list)  # mode -> [(round, run)]
    for spec in a.runs:
        m = re.match(r"^([a-z]+):(\d+)=(.+)$", spec)
        if not m:
            raise Unusable("bad run spec %r (want MODE:ROUND=FILE)" % spec)
        if m.group(1) not in MODE_LABEL:
            raise Unusable("unknown mode %r in %r (off, preload, trace)" % (m.group(1), spec))
        runs[m.group(1)].append((int(m.group(2)), parse_bench(m.group(3))))
    target = a.target_ns
    problems, notes = [], []
    gpu = a.gpu if a.gpu and a.gpu != "?" else None
    for mode in runs:
        for rnd, run in runs[mode]:
            gpu = gpu or run["gpu"]
            run["data"] = read_dump(run["dump"])
            for key, kv in run["results"].items():
                if kv.get("timeouts", "0") != "0":
                    notes.append("%s %d, %s/%dt: the spinning kernel timed out %s time(s); "
                                 "those holds were discarded and the batch cut to %s"
                                 % (mode, rnd, key[0], key[1], kv["timeouts"],
                                    kv.get("final_batch", "?")))
                if kv.get("capped", "0") != "0":
                    notes.append("%s %d, %s/%dt: stopped at the time cap with %s launches "
                                 "per path" % (mode, rnd, key[0], key[1],
                                               kv.get("launches_per_path", "?")))

    # The pointers: without the library the PLT reaches libcuda's own cuLaunchKernel, with
    # it something else (the library's wrapper); otherwise the comparison means nothing.
    pointer_lines = []
    for mode in ("off", "preload", "trace"):
        for rnd, run in runs.get(mode, []):
            r = run["resolve"]
            same = r.get("same")
            where = ""
            for t in run["resolve_text"]:
                m = re.match(r"^\s+hooked cuLaunchKernel \S+: (.*), in (.*)$", t)
                if m:
                    where = "; hooked is in %s (%s)" % (m.group(2), m.group(1))
            pointer_lines.append("%s %d: raw %s, hooked %s, same=%s%s"
                                 % (mode, rnd, r.get("raw"), r.get("hooked"), same, where))
            if r.get("ok") != "1":
                problems.append((mode, "%s %d: the benchmark could not resolve the two "
                                       "pointers" % (mode, rnd)))
            elif mode == "off" and same != "1":
                problems.append((mode, "%s %d: without the library the PLT's cuLaunchKernel "
                                       "(%s) is not libcuda's (%s): the look-up is broken"
                                 % (mode, rnd, r.get("hooked"), r.get("raw"))))
            elif mode != "off" and same != "0":
                problems.append((mode, "%s %d: under LD_PRELOAD the PLT's cuLaunchKernel is "
                                       "libcuda's own (%s): the library does not interpose it, "
                                       "so nothing was compared" % (mode, rnd, r.get("raw"))))

    def configs(mode, api):
        keys = set()
        for _rnd, run in runs.get(mode, []):
            keys.update(k for k in run["data"] if k[0] == api)
        return sorted(keys, key=lambda k: k[1])

    def stats(mode, key):
        return summarize([("%s %d" % (mode, rnd), run["data"].get(key, {}))
                          for rnd, run in sorted(runs.get(mode, []), key=lambda x: x[0])])

    rows = []  # dicts for the table and the JSON lines
    unsettled = []  # thread counts over the target whose interval still holds it

    for mode in ("preload", "off", "trace"):
        for key in configs(mode, "driver"):
            s = stats(mode, key)
            if s["added"] is None:
                continue
            if mode == "preload" and key[1] > 1:
                # Several threads contend for the driver's lock: a launch costs ~10 us +- 1.5
                # us and six rounds give an interval ~60 ns wide around a 50 ns target, so
                # their median cannot be held to it (it ranged +19 to +61 ns over runs with
                # the same hot path). What threads can add that one thread cannot is
                # contention in the library (a lock, a shared counter), which costs far
                # more: it fails when the whole interval lies above the target.
                gate = "CI low <= %g" % target
                ok = s["ci_low"] <= target
                if not ok:
                    problems.append((mode, "driver/%dt adds %.1f ns per launch (95%% CI %.1f .. "
                                           "%.1f), all of it over the %g ns target"
                                     % (key[1], s["added"], s["ci_low"], s["ci_high"], target)))
            elif mode == "preload":
                gate = "<= %g" % target
                ok = s["added"] <= target
                if not ok:
                    # Over the target but with the target inside the interval: this much
                    # data cannot tell.
                    settled = s["ci_low"] > target
                    if not settled:
                        unsettled.append(key[1])
                    problems.append((mode, "driver/%dt adds %.1f ns per launch (95%% CI %.1f .. "
                                           "%.1f), over the %g ns target%s"
                                     % (key[1], s["added"], s["ci_low"], s["ci_high"], target,
                                        "" if settled else
                                        " (not settled: the interval holds the target)")))
                elif s["ci_high"] > target:
                    notes.append("driver/%dt: median %.1f ns is within the target but the 95%% "
                                 "interval reaches %.1f ns" % (key[1], s["added"], s["ci_high"]))
            elif mode == "off":
                gate = "|x| <= %g" % target
                ok = abs(s["added"]) <= target
                if not ok:
                    problems.append((mode, "control driver/%dt: two identical paths differ by "
                                           "%.1f ns: the method is broken" % (key[1], s["added"])))
            else:
                gate, ok = "info", None
            rows.append(dict(s, api="driver", threads=key[1], mode=mode, gate=gate, ok=ok,
                             label="driver, " + MODE_LABEL[mode],
                             runs=len(runs.get(mode, []))))
    for mode in ("preload", "trace"):
        if mode not in runs or "off" not in runs:
            continue
        for key in configs(mode, "runtime"):
            w, wo = stats(mode, key), stats("off", key)
            if w["added"] is None or wo["added"] is None:
                continue
            added = w["added"] - wo["added"]
            lo = added - math.hypot(w["added"] - w["ci_low"], wo["ci_high"] - wo["added"])
            hi = added + math.hypot(w["ci_high"] - w["added"], wo["added"] - wo["ci_low"])
            per_run = []
            for rw, ro in zip(w["per_run"], wo["per_run"]):
                if rw is not None and ro is not None:
                    per_run.append(rw - ro)
            rows.append({
                "api": "runtime", "threads": key[1], "mode": mode, "gate": "info", "ok": None,
                "label": "runtime, %s vs none" % MODE_LABEL[mode],
                "raw_median": wo["hooked_median"], "raw_p10": wo["hooked_p10"],
                "raw_p90": wo["hooked_p90"], "hooked_median": w["hooked_median"],
                "hooked_p10": w["hooked_p10"], "hooked_p90": w["hooked_p90"],
                "added": added, "ci_low": lo, "ci_high": hi, "per_run": per_run,
                "holds": w["holds"], "launches_per_path": w["launches_per_path"],
                "runs": len(runs.get(mode, [])),
                "runtime_minus_raw_driver_with": w["added"],
                "runtime_minus_raw_driver_without": wo["added"],
            })

    if a.gate == "overhead":
        if "preload" not in runs:
            problems.append(("preload", "no run with the library"))
        elif not [r for r in rows if r["mode"] == "preload"]:
            problems.append(("preload", "no driver configuration measured with the library"))
    else:
        if "off" not in runs:
            problems.append(("off", "no run without the library"))
        elif not [r for r in rows if r["mode"] == "off"]:
            problems.append(("off", "no driver configuration measured without the library"))

    def f(v, width=8, signed=False):
        if v is None:
            return "%*s" % (width, "-")
        return ("%+*.1f" if signed else "%*.1f") % (width, v)

    lines = []
    lines.append("gsa-preload launch overhead: host time per kernel launch through the library's "
                 "cuLaunchKernel vs libcuda's own, in one process")
    lines.append("GPU: %s   driver: %s" % (gpu or "?", a.driver or "?"))
    lines.append("runs: %s" % ", ".join("%s x%d" % (m, len(runs[m]))
                                        for m in ("off", "preload", "trace") if m in runs))
    lines.append("commands:")
    for c in a.command or []:
        lines.append("  " + c)
    lines.append("pointers (cuLaunchKernel: raw = libcuda.so.1's .dynsym, hooked = the "
                 "executable's GOT slot):")
    for p in pointer_lines:
        lines.append("  " + p)
    lines.append("")
    hdr = ("%-36s %3s %9s | %8s %8s %8s | %8s %8s %8s | %8s  %-19s | %-22s | %s"
           % ("config", "thr", "launches", "raw_med", "raw_p10", "raw_p90", "hook_med",
              "hook_p10", "hook_p90", "added", "95% interval", "added per run", "verdict"))
    lines.append(hdr)
    lines.append("-" * len(hdr))
    for r in rows:
        verdict = "info" if r["ok"] is None else (("PASS" if r["ok"] else "FAIL")
                                                  + " (" + r["gate"] + ")")
        lines.append("%-36s %3d %9d | %s %s %s | %s %s %s | %s  [%s, %s] | %-22s | %s" % (
            r["label"], r["threads"], r["launches_per_path"], f(r["raw_median"]),
            f(r["raw_p10"]), f(r["raw_p90"]), f(r["hooked_median"]), f(r["hooked_p10"]),
            f(r["hooked_p90"]), f(r["added"], signed=True), f(r["ci_low"], signed=True),
            f(r["ci_high"], signed=True),
            " ".join("%+.1f" % x for x in r["per_run"] if x is not None) or "-", verdict))
    lines.append("")
    lines.append("ns per launch. driver rows: raw = cuLaunchKernel called through libcuda.so.1's "
                 "own entry point (found in its .dynsym), hooked = the same call through the "
                 "executable's PLT (the library's wrapper under LD_PRELOAD; libcuda's again in "
                 "the control run, where both paths are the same function). Batches of each path "
                 "alternate ABBA/BAAB in one process; added = median over holds of the paired "
                 "difference (hooked - raw) per launch (8 threads: in lockstep, the mean over "
                 "threads per hold), pooled over runs; 95%% interval of that median from order "
                 "statistics. Gate: the library adds at most %g ns with 1 thread; with 8 (the "
                 "driver's lock contended, the interval ~60 ns wide) the whole interval must not "
                 "lie above it; the control differs by at most %g ns." % (target, target))
    lines.append("runtime rows (information only): <<<>>> launches; raw_* = without the library, "
                 "hook_* = with it (separate processes); added = (runtime - raw driver) with the "
                 "library minus the same without it, each the median of in-process paired "
                 "differences, so between-process drift of the launch cost cancels; the interval "
                 "combines the two medians' intervals.")
    for n in notes:
        lines.append("NOTE: " + n)
    text = "\n".join(lines) + "\n"
    if a.out_txt:
        with open(a.out_txt, "w") as fh:
            fh.write(text)
    if a.out_jsonl:
        with open(a.out_jsonl, "w") as fh:
            for r in rows:
                fh.write(json.dumps({
                    "config": "%s-%dt-%s" % (r["api"], r["threads"],
                                            {"preload": "library", "off": "control",
                                             "trace": "library+trace"}[r["mode"]]),
                    "api": r["api"], "threads": r["threads"],
                    "mode": {"preload": "library", "off": "control",
                             "trace": "library+trace"}[r["mode"]],
                    "launches_per_path": r["launches_per_path"], "holds": r["holds"],
                    "runs": r["runs"],
                    "raw_median_ns": r["raw_median"], "raw_p10_ns": r["raw_p10"],
                    "raw_p90_ns": r["raw_p90"], "hooked_median_ns": r["hooked_median"],
                    "hooked_p10_ns": r["hooked_p10"], "hooked_p90_ns": r["hooked_p90"],
                    "added_ns": r["added"], "added_ci_low": r["ci_low"],
                    "added_ci_high": r["ci_high"], "added_ns_per_run": r["per_run"],
                    "gate": r["gate"], "within_target": r["ok"], "target_ns": target,
                    "gpu": gpu, "driver": a.driver,
                }, sort_keys=True) + "\n")
    if a.gate == "control":
        # The whole table was printed by the overhead gate: only what this gate judges.
        shown = [ln for ln in lines[:4] if ln != "commands:"]
        shown += ["pointers:"] + ["  " + p for p in pointer_lines if p.startswith("off ")]
        shown += ["", hdr, "-" * len(hdr)]
        shown += [ln for ln in lines if ln.startswith("driver, control")]
        out("\n".join(shown))
    else:
        out(text.rstrip("\n"))
    mine = [p for m, p in problems
            if (m == "off") == (a.gate == "control")]
    if mine:
        if (a.gate == "overhead" and a.unsettled_status and unsettled
                and len(unsettled) == len(mine)):
            # Only unsettled verdicts: the caller may measure more rounds and ask again
            # (without this option an unsettled result is a failure).
            out("FAIL: " + "; ".join(mine))
            return a.unsettled_status
        return finish(False, "; ".join(mine))
    if a.gate == "control":
        ctl = [r for r in rows if r["mode"] == "off" and r["api"] == "driver"]
        return finish(True, "without the library the PLT reaches libcuda's cuLaunchKernel and "
                      "the two paths differ by %s ns"
                      % ", ".join("%+.1f (%dt)" % (r["added"], r["threads"]) for r in ctl))
    lib = [r for r in rows if r["mode"] == "preload" and r["api"] == "driver"]
    return finish(True, "the library adds %s ns per driver launch (target %g)"
                  % (", ".join("%+.1f [%+.1f, %+.1f] (%dt)"
                               % (r["added"], r["ci_low"], r["ci_high"], r["threads"])
                               for r in lib), target))


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
    p.add_argument("--gate", choices=("overhead", "control"), default="overhead")
    p.add_argument("--out-txt")
    p.add_argument("--out-jsonl")
    p.add_argument("--target-ns", type=float, default=50.0)
    p.add_argument("--gpu")
    p.add_argument("--driver")
    p.add_argument("--command", action="append")
    p.add_argument("--unsettled-status", type=int, default=0,
                   help="exit status when every failure is an unsettled one (median over "
                        "the target, 95%% interval holding it); 0 = fail as usual")
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
