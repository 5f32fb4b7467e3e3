#!/usr/bin/env python3
"""Renders tests/bench/results/decode_attention.jsonl as the README's markdown table:
one row per (kernel, block size, batch, context) with dense, oracle and GSA medians (us) and
the ratios the project tracks (dense/GSA speed-up, GSA/oracle overhead). Target cells
(batch >= 8, context >= 32K) are marked.

    python3 tests/bench/table.py [FILE] [--target-only]
    python3 tests/bench/table.py FILE --against OLD [--target-only]

--against: the same cells of two runs side by side (oracle, GSA, GSA/oracle in each, and the
change of the overhead GSA - oracle), for telling a change from run-to-run variation; cells
whose GSA/oracle falls on different sides of the 1.15 target are flagged.
"""
import json
import sys


TARGET = 1.15


def is_target(r):
    return r["batch"] >= 8 and r["context"] >= 32768


def key(r):
    return (r["kernel"], r["block_size"], r["context"], r["batch"])


def load(path):
    return [json.loads(line) for line in open(path) if line.strip()]


def compare(new_path, old_path, target_only):
    old = {key(r): r for r in load(old_path)}
    print(f"| kernel | block | batch | context | oracle µs (old) | GSA µs (old) | GSA / oracle (old) | "
          f"oracle µs (new) | GSA µs (new) | GSA / oracle (new) | overhead change µs |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in sorted(load(new_path), key=key):
        o = old.get(key(r))
        if o is None or (target_only and not is_target(r)):
            continue
        ro, rn = o["gsa_us"] / o["oracle_us"], r["gsa_us"] / r["oracle_us"]
        flip = " **flips**" if is_target(r) and (ro > TARGET) != (rn > TARGET) else ""
        change = (r["gsa_us"] - r["oracle_us"]) - (o["gsa_us"] - o["oracle_us"])
        print(f"| {r['kernel']} | {r['block_size']} | {r['batch']} | {r['context'] // 1024}K | "
              f"{o['oracle_us']:.1f} | {o['gsa_us']:.1f} | {ro:.3f} | {r['oracle_us']:.1f} | "
              f"{r['gsa_us']:.1f} | {rn:.3f}{flip} | {change:+.1f} |")


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    target_only = "--target-only" in sys.argv
    if "--against" in sys.argv:
        i = sys.argv.index("--against")
        if i + 1 >= len(sys.argv) or not args:
            print(__doc__.strip(), file=sys.stderr)
            return 2
        return compare(args[0], sys.argv[i + 1], target_only)
    path = args[0] if args else "tests/bench/results/decode_attention.jsonl"
    rows = load(path)
    rows.sort(key=key)
    print("| kernel | block | batch | context | dense µs | oracle µs | GSA µs | speed-up (dense/GSA) | GSA / oracle |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        target = is_target(r)
        if target_only and not target:
            continue
        d, o, g = r["dense_us"], r["oracle_us"], r["gsa_us"]
        mark = " **t**" if target else ""
        print(f"| {r['kernel']} | {r['block_size']} | {r['batch']} | {r['context'] // 1024}K | "
              f"{d:.1f} | {o:.1f} | {g:.1f} | {d / g:.2f}x | {g / o:.2f}{mark} |")


if __name__ == "__main__":
    sys.exit(main())
