#!/usr/bin/env python3
"""Where a kernel's warps wait, from Nsight Compute's SASS source page.

    ncu -i REPORT.ncu-rep --page source --csv --print-source sass > sass.csv
    python3 tests/bench/ncu_sass_summary.py sass.csv [--top N]

Prints the warp-stall samples by reason, the executed instructions, the code regions
that ran (contiguous instructions with executions, with their samples), and the N
instructions with the most samples, each with its three main stall reasons.
(tests/bench/profile_select.sh runs it on the fused selection kernel.)
"""
import collections
import csv
import sys

SAMPLES = "Warp Stall Sampling (All Samples)"
EXECUTED = "Instructions Executed"


def main(argv):
    if len(argv) < 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    top_n = int(argv[argv.index("--top") + 1]) if "--top" in argv else 30
    rows = list(csv.reader(open(argv[1], newline="")))
    head = next((i for i, r in enumerate(rows) if r and r[0] == "Address"), None)
    if head is None:
        print(f"{argv[1]}: no SASS source table (no 'Address' header row)", file=sys.stderr)
        return 1
    hdr, data = rows[head], [r for r in rows[head + 1:] if len(r) == len(rows[head])]
    ix = {h: i for i, h in enumerate(hdr)}
    if SAMPLES not in ix or EXECUTED not in ix:
        print(f"{argv[1]}: no '{SAMPLES}' or '{EXECUTED}' column", file=sys.stderr)
        return 1
    num = lambda r, h: int(float(r[ix[h]] or 0))
    reasons = [h for h in hdr if h.startswith("stall_") and "Not Issued" not in h]
    total = sum(num(r, SAMPLES) for r in data) or 1
    print(f"{len(data)} SASS instructions, {total} warp-state samples, "
          f"{sum(num(r, EXECUTED) for r in data)} warp instructions executed")
    print("samples by stall reason:")
    for h in sorted(reasons, key=lambda h: -sum(num(r, h) for r in data)):
        v = sum(num(r, h) for r in data)
        if v:
            print(f"  {h[6:]:20s} {v:7d}  {100 * v / total:5.1f}%")
    print("regions that ran (first-last instruction index, executions, samples, commonest counts):")
    cur = None
    regions = []
    for i, r in enumerate(data):
        e = num(r, EXECUTED)
        if not e:
            if cur:
                regions.append(cur)
            cur = None
            continue
        if cur is None:
            cur = [i, i, 0, 0, collections.Counter()]
        cur[1] = i
        cur[2] += e
        cur[3] += num(r, SAMPLES)
        cur[4][e] += 1
    if cur:
        regions.append(cur)
    for a, b, e, s, c in regions:
        print(f"  {a:6d}-{b:6d} {e:9d} {s:6d}  {c.most_common(3)}")
    print(f"the {top_n} instructions with the most samples:")
    best = sorted(range(len(data)), key=lambda i: -num(data[i], SAMPLES))[:top_n]
    for i in sorted(best):
        r = data[i]
        why = sorted(((num(r, h), h[6:]) for h in reasons if num(r, h)), reverse=True)[:3]
        print(f"  {i:6d} {r[1].strip()[:56]:56s} samples {num(r, SAMPLES):4d} "
              f"executed {num(r, EXECUTED):6d}  {', '.join(f'{n} {w}' for n, w in why)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
