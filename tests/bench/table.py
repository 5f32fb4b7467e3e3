#!/usr/bin/env python3
"""Renders tests/bench/results/decode_attention.jsonl as the README's markdown table:
one row per (kernel, block size, batch, context) with dense, oracle and GSA medians (us) and
the ratios the project tracks (dense/GSA speed-up, GSA/oracle overhead). Target cells
(batch >= 8, context >= 32K) are marked.

    python3 tests/bench/table.py [FILE] [--target-only]
"""
import json
import sys


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    path = args[0] if args else "tests/bench/results/decode_attention.jsonl"
    target_only = "--target-only" in sys.argv
    rows = [json.loads(line) for line in open(path) if line.strip()]
    rows.sort(key=lambda r: (r["kernel"], r["block_size"], r["context"], r["batch"]))
    print("| kernel | block | batch | context | dense µs | oracle µs | GSA µs | speed-up (dense/GSA) | GSA / oracle |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        target = r["batch"] >= 8 and r["context"] >= 32768
        if target_only and not target:
            continue
        d, o, g = r["dense_us"], r["oracle_us"], r["gsa_us"]
        mark = " **t**" if target else ""
        print(f"| {r['kernel']} | {r['block_size']} | {r['batch']} | {r['context'] // 1024}K | "
              f"{d:.1f} | {o:.1f} | {g:.1f} | {d / g:.2f}x | {g / o:.2f}{mark} |")


if __name__ == "__main__":
    main()
