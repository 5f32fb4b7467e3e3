#!/usr/bin/env python3
"""Decode-attention timing with vLLM's FA2 split-KV kernels: dense vs oracle (vs GSA).

    bench_fa2.py run OUT.jsonl [options]          dense_us and oracle_us
    LD_PRELOAD=build/libgsa_preload.so GSA_RATIO=0.3 \\
    bench_fa2.py run OUT_GSA.jsonl --gsa [options] gsa_us: the full-table call, timed under
                                                    the preload library (which rewrites it)
    bench_fa2.py merge DENSE.jsonl GSA.jsonl [-o OUT.jsonl]

Shapes: batch 1/8/32/64, context 8K/32K/128K (every sequence of the batch that long),
32 query heads, 8 KV heads, head 128, bf16, block sizes 16 and 64 by default.  The KV
cache is one random bf16 buffer, viewed as [num_blocks, block_size, 8, 128] for each block
size; each sequence's blocks are a random set of physical blocks (as in a fragmented vLLM
cache).

dense:  the full block table, seqused_k = context, max_seqlen_k = context.
oracle: a pre-compacted table at --ratio: block 0, the last two blocks and a random sorted
        sample of the middle ones (max(3, ceil(ratio * blocks)) in all), seqused_k shortened
        to match (kept blocks * block_size: contexts are multiples of the block size), and
        max_seqlen_k = that length, so vLLM's split heuristic sees the shorter length.
gsa:    the dense call (full table), for the preload library to rewrite.

A timed call is one fa2_driver.decode(): what vLLM's varlen_fwd does on the GPU for a decode
step (GQA query swap copy, split-KV kernel, combine kernel when num_splits > 1, output copy).
By default --iters calls are captured once into a CUDA graph (after --warmup eager calls,
which is also when the library prepares its buffers), as vLLM runs decode, and each
repetition replays it between two torch.cuda events; the value is the median over --reps
repetitions of (elapsed / iters), in microseconds. The graph's last output is compared with
an eager call's ("graph_equals_eager" in the row). --eager: instead each repetition queues
--iters eager calls behind a torch.cuda._sleep so that the host runs ahead and the GPU runs
them back to back.

One JSON line per (block size, batch, context):
  {"kernel": "fa2-splitkv", "batch", "context", "block_size", "ratio", "dense_us",
   "oracle_us", "gpu", ...details}         (--gsa: "gsa_us" instead of dense_us/oracle_us)
"""
import argparse
import json
import math
import os
import random
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True   # no __pycache__ in the work tree
sys.path.insert(0, HERE)

KEY = ("kernel", "batch", "context", "block_size", "ratio")
KERNEL = "fa2-splitkv"


def ints(s):
    return [int(x) for x in s.split(",") if x.strip()]


def parse_ctx(s):
    out = []
    for x in s.split(","):
        x = x.strip().upper()
        if not x:
            continue
        out.append(int(x[:-1]) * 1024 if x.endswith("K") else int(x))
    return out


def timer(torch, fn, iters, reps, warmup, sleep):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(max(3, warmup)):
        fn()
    host_per_call = (time.perf_counter() - t0) / max(3, warmup)
    torch.cuda.synchronize()
    cycles = int(min(2e8, max(1e6, host_per_call * iters * 2.0 * 2e9)))
    sleeper = getattr(torch.cuda, "_sleep", None) if sleep else None
    start = torch.cuda.Event(enable_timing=True)
    end = torch.cuda.Event(enable_timing=True)
    samples = []
    for _ in range(reps):
        if sleeper is not None:
            sleeper(cycles)
        start.record()
        for _ in range(iters):
            fn()
        end.record()
        end.synchronize()
        samples.append(start.elapsed_time(end) * 1000.0 / iters)
    return statistics.median(samples), samples


def timer_graph(torch, fn, iters, reps, warmup):
    """Median microseconds per call over replays of one CUDA graph of `iters` calls, and
    whether the graph's last output equals an eager call's (same inputs, same kernels)."""
    for _ in range(max(1, warmup)):
        fn()
    torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        outs = [fn() for _ in range(iters)]
    g.replay()
    torch.cuda.synchronize()
    same = bool(torch.equal(outs[-1], fn()))
    start = torch.cuda.Event(enable_timing=True)
    end = torch.cuda.Event(enable_timing=True)
    samples = []
    for _ in range(reps):
        start.record()
        g.replay()
        end.record()
        end.synchronize()
        samples.append(start.elapsed_time(end) * 1000.0 / iters)
    del g, outs
    return statistics.median(samples), samples, same


def oracle_blocks(nb, ratio, rng):
    keep = min(nb, max(3, math.ceil(ratio * nb)))
    if keep >= nb:
        return list(range(nb))
    middle = sorted(rng.sample(range(1, nb - 2), keep - 3))
    return [0] + middle + [nb - 2, nb - 1]


def cmd_run(a):
    import torch
    import fa2_driver as drv

    if a.gsa and not os.environ.get("LD_PRELOAD"):
        sys.stderr.write("bench_fa2: warning: --gsa without LD_PRELOAD: gsa_us will be the dense time\n")
    K = drv.kernels()
    dev = K.device
    gpu = torch.cuda.get_device_name(dev)
    Hq, Hk, D = a.heads, a.kv_heads, 128
    batches, contexts, bss = ints(a.batches), parse_ctx(a.contexts), ints(a.block_sizes)
    for bs in bss:
        if bs % 16:
            sys.exit("bench_fa2: block size %d is not a multiple of 16" % bs)
    for c in contexts:
        for bs in bss:
            if c % bs:
                sys.exit("bench_fa2: context %d is not a multiple of block size %d" % (c, bs))

    lcm = 1
    for bs in bss:
        lcm = lcm * bs // math.gcd(lcm, bs)
    need_tokens = max(b * c for b in batches for c in contexts)
    tok_bytes = 2 * Hk * D * 2            # K and V, bf16
    free, _total = torch.cuda.mem_get_info(dev)
    budget = int(free - a.reserve_gib * (1 << 30))
    if a.max_gib:
        budget = min(budget, int(a.max_gib * (1 << 30)))
    if a.kv_gib:
        need_tokens = max(need_tokens, int(a.kv_gib * (1 << 30)) // tok_bytes)
    T = min(need_tokens, max(0, budget // tok_bytes))
    T = T // lcm * lcm
    if T < min(b * c for b in batches for c in contexts):
        sys.exit("bench_fa2: not enough GPU memory for the smallest shape (%.1f GiB free)" % (free / (1 << 30)))
    sys.stderr.write("bench_fa2: %s, image %s; KV cache %.1f GiB (%d tokens)\n"
                     % (gpu, K.image, T * tok_bytes / (1 << 30), T))
    kv = torch.empty((2, T, Hk, D), dtype=torch.bfloat16, device=dev)
    kv.normal_()
    g = torch.Generator(device="cpu").manual_seed(a.seed)
    rng = random.Random(a.seed)

    out_f = open(a.out, "a" if a.append else "w")
    try:
        for bs in bss:
            NB = T // bs
            k_cache = kv[0].view(NB, bs, Hk, D)
            v_cache = kv[1].view(NB, bs, Hk, D)
            for B in batches:
                for ctx in contexts:
                    if B * ctx > T:
                        sys.stderr.write("bench_fa2: skip batch %d context %d block %d: needs %.1f GiB of KV\n"
                                         % (B, ctx, bs, B * ctx * tok_bytes / (1 << 30)))
                        continue
                    nb = ctx // bs
                    perm = torch.randperm(NB, generator=g)[:B * nb].to(torch.int32)
                    table = perm.view(B, nb).to(dev)
                    seq = torch.full((B,), ctx, dtype=torch.int32, device=dev)
                    q = torch.randn((B, Hq, D), generator=g).to(torch.bfloat16).to(dev)
                    row = {"kernel": KERNEL, "batch": B, "context": ctx, "block_size": bs,
                           "ratio": a.ratio, "gpu": gpu, "heads": Hq, "kv_heads": Hk,
                           "head_dim": D, "blocks": nb, "image": K.image,
                           "iters": a.iters, "reps": a.reps}
                    dense_ns = drv.vllm_num_splits(B, Hq, Hk, ctx, K.num_sms)
                    row["dense_num_splits"] = dense_ns

                    def dense():
                        return drv.decode(q, k_cache, v_cache, table, seq, max_seqlen_k=ctx)

                    row["timing"] = "eager" if a.eager else "graph"

                    def timed(fn, name):
                        if a.eager:
                            row[name], _s = timer(torch, fn, a.iters, a.reps, a.warmup, not a.no_sleep)
                        else:
                            row[name], _s, same = timer_graph(torch, fn, a.iters, a.reps, a.warmup)
                            row["graph_equals_eager"] = row.get("graph_equals_eager", True) and same
                            if not same:
                                sys.stderr.write("bench_fa2: %s: graph output differs from eager\n" % name)

                    if a.gsa:
                        timed(dense, "gsa_us")
                        row["gsa_env"] = {k: v for k, v in os.environ.items()
                                          if k.startswith("GSA_") or k == "LD_PRELOAD"}
                    else:
                        sel = [oracle_blocks(nb, a.ratio, rng) for _ in range(B)]
                        keep = len(sel[0])
                        idx = torch.tensor(sel, dtype=torch.long)
                        o_table = torch.gather(perm.view(B, nb).long(), 1, idx).to(torch.int32).to(dev)
                        o_len = keep * bs
                        o_seq = torch.full((B,), o_len, dtype=torch.int32, device=dev)
                        row["oracle_blocks"] = keep
                        row["oracle_num_splits"] = drv.vllm_num_splits(B, Hq, Hk, o_len, K.num_sms)

                        def oracle():
                            return drv.decode(q, k_cache, v_cache, o_table, o_seq, max_seqlen_k=o_len)

                        timed(dense, "dense_us")
                        timed(oracle, "oracle_us")
                    out_f.write(json.dumps(row, sort_keys=True) + "\n")
                    out_f.flush()
                    sys.stderr.write("bench_fa2: bs=%-3d batch=%-2d ctx=%-6d %s\n" % (
                        bs, B, ctx, " ".join("%s=%.1f" % (k, row[k]) for k in ("dense_us", "oracle_us", "gsa_us")
                                             if k in row)))
    finally:
        out_f.close()
    return 0


def read_jsonl(path):
    rows = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                rows.append(json.loads(line))
            except ValueError as e:
                sys.exit("bench_fa2: %s:%d: %s" % (path, n, e))
    return rows


def key_of(r):
    return tuple(r.get(k) for k in KEY)


def cmd_merge(a):
    rows = {}
    order = []
    for path in a.files:
        for r in read_jsonl(path):
            k = key_of(r)
            if k not in rows:
                rows[k] = dict(r)
                order.append(k)
                continue
            m = rows[k]
            for f, v in r.items():
                if f not in m:
                    m[f] = v
                elif f == "graph_equals_eager":
                    m[f] = bool(m[f] and v)
                elif m[f] != v and f in ("gpu", "timing"):
                    sys.stderr.write("bench_fa2: merge: %s differs for %s: %r vs %r\n" % (f, k, m[f], v))
                    m[f + "_2"] = v
                elif m[f] != v and f.endswith("_us"):
                    sys.stderr.write("bench_fa2: merge: two values of %s for %s; keeping the first\n" % (f, k))
    out = open(a.output, "w") if a.output else sys.stdout
    try:
        for k in order:
            m = rows[k]
            missing = [f for f in ("dense_us", "oracle_us", "gsa_us") if f not in m]
            if missing:
                sys.stderr.write("bench_fa2: merge: %s has no %s\n" % (dict(zip(KEY, k)), ", ".join(missing)))
            out.write(json.dumps(m, sort_keys=True) + "\n")
    finally:
        if a.output:
            out.close()
    return 0


def main(argv):
    ap = argparse.ArgumentParser(description="FA2 split-KV decode: dense vs oracle vs GSA timing")
    sub = ap.add_subparsers(dest="cmd")
    r = sub.add_parser("run", help="time and write JSON lines")
    r.add_argument("out")
    r.add_argument("--gsa", action="store_true", help="time the full-table call as gsa_us (run under LD_PRELOAD)")
    r.add_argument("--batches", default="1,8,32,64")
    r.add_argument("--contexts", default="8K,32K,128K")
    r.add_argument("--block-sizes", default="16,64")
    r.add_argument("--ratio", type=float, default=0.3)
    r.add_argument("--heads", type=int, default=32)
    r.add_argument("--kv-heads", type=int, default=8)
    r.add_argument("--iters", type=int, default=20)
    r.add_argument("--reps", type=int, default=15)
    r.add_argument("--warmup", type=int, default=5)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--max-gib", type=float, default=0, help="cap on the KV cache size")
    r.add_argument("--kv-gib", type=float, default=0,
                   help="KV cache at least this big (blocks drawn from all of it)")
    r.add_argument("--reserve-gib", type=float, default=4, help="GPU memory left free")
    r.add_argument("--eager", action="store_true", help="time eager calls instead of CUDA-graph replays")
    r.add_argument("--no-sleep", action="store_true", help="--eager: no torch.cuda._sleep before each repetition")
    r.add_argument("--append", action="store_true")
    m = sub.add_parser("merge", help="merge JSONL files on (kernel, batch, context, block_size, ratio)")
    m.add_argument("files", nargs="+")
    m.add_argument("-o", "--output")
    a = ap.parse_args(argv)
    if a.cmd == "run":
        return cmd_run(a)
    if a.cmd == "merge":
        return cmd_merge(a)
    ap.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
