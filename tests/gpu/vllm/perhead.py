#!/usr/bin/env python3
"""Measurement, not a test: GSA's shared selection (one set of blocks for all KV heads, scored by
the sum over heads of group-mean-query . block-mean) against per-head selection (each KV head
keeps its own best blocks by its own score, same budget). For each sequence and KV head: the
true attention mass (float64, dense) that the kept blocks cover, over the mass of the same
number of blocks with the most mass for that head. Per-head selection is what a kernel with a
per-head block table could use; vLLM's kernels share one table across heads, so the library
can only do the shared one. This says how much that costs.

    python3 perhead.py [--out rows.jsonl]      (no library needed)
"""
import argparse
import json
import math
import os
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, HERE)

import torch  # noqa: E402

import gsa_ref  # noqa: E402
import paged  # noqa: E402


def head_masses(d, s):
    """float64 [H, n]: each KV head's attention mass per logical block (mean over its group)."""
    L = d.lens[s]
    B = d.block_size
    n = paged.cdiv(L, B)
    K, V, owner = paged._seq_tokens(d.key_cache, d.value_cache, d.block_table[s], L, range(n), B)
    _, p = paged._attend(d.q[s], K, V, d.scale)  # [H, G, T]
    per_tok = p.mean(1)  # [H, T]
    m = torch.zeros(per_tok.shape[0], n, dtype=torch.float64, device=per_tok.device)
    m.index_add_(1, owner, per_tok)
    return m


def recall(mass_h, keep):
    """mass of the kept blocks over the mass of the best len(keep) blocks, for one head."""
    k = len(keep)
    best = torch.topk(mass_h, k).values.sum()
    return float(mass_h[torch.tensor(keep, device=mass_h.device)].sum() / best)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out")
    a = ap.parse_args()
    rows = []
    params = gsa_ref.GsaParams.from_env(ratio=0.3, policy="mean")
    for B in (16, 128):
        for kind in ("random", "needles"):
            d = paged.Decode([16384 + 11, 32768 + 5, 20000, 12000], B, seed=B + len(kind))
            if kind == "needles":
                g = torch.Generator().manual_seed(B)
                for s in range(d.num_seqs):
                    n = paged.cdiv(d.lens[s], B)
                    mids = list(range(1, n - 2))
                    pick = torch.randperm(len(mids), generator=g)[:4].tolist()
                    d.plant_needles(s, [mids[i] for i in pick])
            ref = gsa_ref.GsaRef(d.key_cache, d.block_table, d.seq_lens, B, params)
            sels = ref.select(d.q)
            H = d.num_kv_heads
            for s, sel in enumerate(sels):
                if not sel.sparse:
                    continue
                m = head_masses(d, s)
                a_, _ = ref.reprs(s, "mean")  # [m, H, D] middle blocks, bf16-rounded
                g_ = d.num_q_heads // H
                qbar = d.q[s].float().view(H, g_, -1).mean(1)  # [H, D]
                per_head_scores = (a_ * qbar[None]).sum(-1)  # [m, H]
                want = sel.plan.keep - params.sink_blocks - params.local_blocks
                n = sel.plan.n
                fixed = list(range(params.sink_blocks)) + list(range(n - params.local_blocks, n))
                for h in range(H):
                    top = torch.topk(per_head_scores[:, h], want).indices + params.sink_blocks
                    keep_h = sorted(fixed + top.tolist())
                    rows.append(dict(block_size=B, kind=kind, seq=s, head=h, context=d.lens[s],
                                     keep=len(sel.keep), shared=recall(m[h], sel.keep),
                                     per_head=recall(m[h], keep_h)))
    if a.out:
        with open(a.out, "w") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")
    print("block kind     shared recall (median, min)   per-head recall (median, min)")
    for B in (16, 128):
        for kind in ("random", "needles"):
            rs = [r for r in rows if r["block_size"] == B and r["kind"] == kind]
            if not rs:
                continue
            sh = [r["shared"] for r in rs]
            ph = [r["per_head"] for r in rs]
            print(f"{B:5d} {kind:8s} {statistics.median(sh):.4f} {min(sh):.4f}"
                  f"            {statistics.median(ph):.4f} {min(ph):.4f}   ({len(rs)} seq x head)")
    print(f"perhead: {len(rows)} rows")
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main())
