#!/usr/bin/env python3
"""GSA on vLLM's own FlashAttention-2 split-KV paged decode kernels (loaded from the wheel's
library by fa2_driver.py). Never names the preload library: run it with and without
LD_PRELOAD and it sees the library only through the outputs.

    test_gsa_fa2.py exact [--ratio R]          output == float64 attention over exactly the
                                               blocks gsa_ref selects, and != dense
    test_gsa_fa2.py exact --ratio 1 --save-dense F | --compare-dense F
                                               GSA_RATIO=1: bit-identical to no library

Cases cover the three kernels vLLM launches for decode: the split kernel with its combine
(batch 1 and 4: many splits), and the "align" kernel (batch 32: one split). Each case runs
the same decode twice and checks the second (the first prepares the library's buffers, as
an engine's first steps do). Ends with "fa2-<cmd>: N passed, N failed".
"""
import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "vllm"))

import torch  # noqa: E402

import fa2_driver  # noqa: E402
import gsa_ref  # noqa: E402
import paged  # noqa: E402

PASSED = FAILED = 0


def check(ok, name, detail=""):
    global PASSED, FAILED
    if ok:
        PASSED += 1
        print(f"PASS {name}" + (f" ({detail})" if detail else ""))
    else:
        FAILED += 1
        print(f"FAIL {name}: {detail}")


# (name, lengths, block size); FA2 paged needs block sizes that are multiples of 16.
CASES = [
    ("b1-32k-B16", [32768 + 5], 16),
    ("b4-mixed-B16", [4113, 9000, 16384, 1500], 16),
    ("b32-16k-B16", [16384 + 17 * i for i in range(32)], 16),
    ("b1-32k-B64", [32768 + 5], 64),
    ("b4-mixed-B64", [4113, 9000, 16384, 1500], 64),
    ("b32-8k-B64", [8192 + 33 * i for i in range(32)], 64),
]


def run_case(name, lens, block, ratio, seed, min_margin, tol, dense_store, mode):
    d = paged.Decode(lens, block, layout="kv_first", seed=seed)
    params = gsa_ref.GsaParams.from_env(ratio=ratio)
    ref = gsa_ref.GsaRef(d.key_cache, d.block_table, d.seq_lens, block, params)
    sels = ref.select(d.q)
    # Redraw queries whose selection is ambiguous (near-tied scores), a few times.
    for _ in range(5):
        bad = [s for s, sel in enumerate(sels) if sel.sparse and sel.rel_margin < min_margin]
        if not bad:
            break
        for s in bad:
            d.new_query_row(s)
        sels = ref.select(d.q)
    max_k = d.max_seqlen_k()
    out = None
    info = None
    for _ in range(2):
        out, _, info = fa2_driver.decode(d.q, d.key_cache, d.value_cache, d.block_table,
                                         d.seq_lens, max_seqlen_k=max_k, return_lse=True,
                                         return_info=True)
    torch.cuda.synchronize()
    kernels = ",".join(r for r, _ in info.get("launched", [])) if isinstance(info, dict) else "?"
    if mode == "save":
        dense_store[name] = out.cpu()
        check(True, f"{name}: dense output saved", f"kernels {kernels}")
        return
    if mode == "compare":
        want = dense_store.get(name)
        same = want is not None and torch.equal(want, out.cpu())
        check(same, f"{name}: bit-identical to the run without the library",
              "identical" if same else "differs (or missing)")
        return
    keep = gsa_ref.keep_lists(sels)
    want = paged.reference(d.q, d.key_cache, d.value_cache, d.block_table, d.seq_lens, keep)
    dense = paged.reference(d.q, d.key_cache, d.value_cache, d.block_table, d.seq_lens, None)
    bad = []
    for s, sel in enumerate(sels):
        e = paged.rel_l2(out[s], want[s])
        if e > tol:
            ed = paged.rel_l2(out[s], dense[s])
            bad.append(f"seq {s} L={lens[s]} {'sparse' if sel.sparse else 'dense'} "
                       f"keep {len(sel.keep)}/{sel.plan.n}: relL2 {e:.2e} vs selection, "
                       f"{ed:.2e} vs dense")
        elif sel.sparse and paged.rel_l2(want[s], dense[s]) > 3 * tol and \
                paged.rel_l2(out[s], dense[s]) <= 2 * tol:
            bad.append(f"seq {s}: got the dense result")
    sparse = sum(1 for sel in sels if sel.sparse)
    check(not bad, f"{name} ({kernels}): {len(lens)} seqs, {sparse} sparse",
          "; ".join(bad[:4]) if bad else "matches the selection")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=["exact"])
    ap.add_argument("--ratio", type=float, default=None)
    ap.add_argument("--save-dense")
    ap.add_argument("--compare-dense")
    ap.add_argument("--min-margin", type=float, default=1e-3)
    ap.add_argument("--tol", type=float, default=2e-2)
    ap.add_argument("--quick", action="store_true", help="block size 16 cases only")
    a = ap.parse_args()
    if not torch.cuda.is_available():
        print("FAIL no CUDA device")
        return 1
    mode = "save" if a.save_dense else "compare" if a.compare_dense else "check"
    store = torch.load(a.compare_dense) if a.compare_dense else {}
    print(f"== fa2 {a.cmd}: GPU {torch.cuda.get_device_name()}, mode {mode}, "
          f"GSA_* {dict((k, v) for k, v in os.environ.items() if k.startswith('GSA_'))}")
    for i, (name, lens, block) in enumerate(CASES):
        if a.quick and block != 16:
            continue
        try:
            run_case(name, lens, block, a.ratio, 1000 + i, a.min_margin, a.tol, store, mode)
        except Exception as e:  # a failure of one case is reported, the others still run
            check(False, name, f"{type(e).__name__}: {e}")
    if a.save_dense:
        torch.save(store, a.save_dense)
    print(f"fa2-{a.cmd}: {PASSED} passed, {FAILED} failed")
    return 0 if FAILED == 0 and PASSED > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
