#!/usr/bin/env python3
"""Prints the README's end-to-end tables from tests/bench/results/engine_fidelity.jsonl and
engine_speed.jsonl (markdown): `engine_table.py [fidelity] [speed] [eager]`."""

import collections
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
RES = os.path.join(HERE, "results")


def load(name):
    p = os.path.join(RES, name)
    return [json.loads(l) for l in open(p)] if os.path.isfile(p) else []


def fidelity(rows):
    rows = [r for r in rows if "settings" not in r]
    cells = collections.defaultdict(dict)
    ctxs = sorted({r["context"] for r in rows})
    for r in rows:
        cells[(r["policy"], r["ratio"])][(r["metric"], r["context"])] = r
    head = ["policy", "ratio"] + [f"passkey {c // 1024}K" for c in ctxs] + \
        [f"top-1 {c // 1024}K" for c in ctxs] + [f"KL {c // 1024}K" for c in ctxs]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    order = sorted(cells, key=lambda k: (k[0] != "dense", k[0], k[1]))
    for key in order:
        c = cells[key]
        out = [key[0], f"{key[1]:g}"]
        for c_ in ctxs:
            r = c.get(("passkey_acc", c_))
            out.append(f"{round(r['value'] * r['trials'])}/{r['trials']}" if r else "-")
        for c_ in ctxs:
            r = c.get(("top1_agree", c_))
            out.append(f"{r['value']:.3f}" if r else "-")
        for c_ in ctxs:
            r = c.get(("kl", c_))
            out.append(f"{r['value']:.4f}" if r else "-")
        print("| " + " | ".join(out) + " |")


def speed(rows, modes=("graph",)):
    """CUDA-graph rows by default (what engines run in production); "eager" in modes adds those."""
    rows = [r for r in rows if r["mode"] in modes]
    head = ["gpu", "tp", "context", "batch", "mode", "dense tok/s", "GSA tok/s", "speed-up",
            "dense TPOT ms", "GSA TPOT ms", "dense TTFT ms", "GSA TTFT ms", "library"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    f = lambda v, s: "-" if v is None else format(v, s)
    for r in sorted(rows, key=lambda r: (r["gpu"], r["tp"], r["mode"] != "graph", r["context"], r["batch"])):
        gpu = r["gpu"].replace("NVIDIA ", "").split(" ")[0]
        ctx = f"{r['context'] // 1024}K" + (" *" if r.get("prefill") == "synthetic KV" else "")
        print("| " + " | ".join([gpu, str(r["tp"]), ctx, str(r["batch"]), r["mode"],
                                 f"{r['dense_tok_s']:.0f}", f"{r['gsa_tok_s']:.0f}",
                                 f"{r['gsa_tok_s'] / r['dense_tok_s']:.2f}x",
                                 f"{r['dense_tpot_ms']:.1f}", f"{r['gsa_tpot_ms']:.1f}",
                                 f(r["dense_ttft_ms"], ".0f"), f(r["gsa_ttft_ms"], ".0f"),
                                 (r.get("library") or "-").split(" ")[0]]) + " |")


if __name__ == "__main__":
    what = sys.argv[1:] or ["fidelity", "speed"]
    modes = ("graph", "eager") if "eager" in what else ("graph",)
    if "fidelity" in what:
        fidelity(load("engine_fidelity.jsonl"))
    if "speed" in what:
        if "fidelity" in what:
            print()
        speed(load("engine_speed.jsonl"), modes)
