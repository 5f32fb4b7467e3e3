#!/usr/bin/env python3
"""The library's C reference of the selection (sparse/select_ref.c, built as
build/libgsa_select_ref.so) against the Python reference the GPU tests use (gsa_ref.py), on
the same paged scenarios: identical kept blocks and shadow lengths for every sequence whose
selection is not a near-tie. Together with the GPU tests (library output == attention over
the gsa_ref selection) this ties the C reference, the Python reference and the kernels to
one definition. No library preloaded; prints PASS/FAIL and "c-ref: N passed, N failed".
"""
import ctypes
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
sys.dont_write_bytecode = True
sys.path.insert(0, HERE)

import torch  # noqa: E402

import gsa_ref  # noqa: E402
import paged  # noqa: E402


class Args(ctypes.Structure):
    # sparse/select_args.h, field for field (x86-64 layout, natural alignment).
    _fields_ = [
        ("query", ctypes.c_void_p), ("q_stride_token", ctypes.c_int64),
        ("q_stride_kvhead", ctypes.c_int64), ("q_stride_member", ctypes.c_int64),
        ("key_cache", ctypes.c_void_p), ("k_stride_block", ctypes.c_int64),
        ("k_stride_token", ctypes.c_int64), ("k_stride_head", ctypes.c_int64),
        ("block_table", ctypes.c_void_p), ("bt_stride", ctypes.c_int64),
        ("seq_lens", ctypes.c_void_p), ("query_start", ctypes.c_void_p),
        ("num_seqs", ctypes.c_int32), ("block_size", ctypes.c_int32),
        ("num_kv_heads", ctypes.c_int32), ("num_q_heads", ctypes.c_int32),
        ("head_size", ctypes.c_int32), ("dtype", ctypes.c_int32), ("policy", ctypes.c_int32),
        ("ratio", ctypes.c_double), ("sink_blocks", ctypes.c_int32),
        ("local_blocks", ctypes.c_int32), ("min_blocks", ctypes.c_int32),
        ("max_blocks", ctypes.c_int32), ("min_tokens", ctypes.c_int32),
        ("repr", ctypes.c_void_p), ("fingerprints", ctypes.c_void_p),
        ("num_phys_blocks", ctypes.c_int64), ("scores", ctypes.c_void_p),
        ("shadow_table", ctypes.c_void_p), ("shadow_lens", ctypes.c_void_p),
        ("stats_host", ctypes.c_void_p), ("stats_dev", ctypes.c_void_p),
        ("layer", ctypes.c_int32), ("kernel_id", ctypes.c_uint32),
        ("record_blocks", ctypes.c_int32),
    ]


def c_select(lib, d, params):
    k = d.key_cache.cpu().view(torch.int16)  # keeps strides of the view
    q = d.q.cpu().contiguous().view(torch.int16)
    bt = d.block_table.cpu().contiguous()
    lens = d.seq_lens.cpu().contiguous()
    S, cols = bt.shape
    shadow = torch.zeros_like(bt)
    slens = torch.zeros_like(lens)
    H, D = d.num_kv_heads, d.head_size
    g = d.num_q_heads // H
    a = Args(query=q.data_ptr(), q_stride_token=q.stride(0), q_stride_kvhead=g * q.stride(1),
             q_stride_member=q.stride(1), key_cache=k.data_ptr(), k_stride_block=k.stride(0),
             k_stride_token=k.stride(1), k_stride_head=k.stride(2), block_table=bt.data_ptr(),
             bt_stride=cols, seq_lens=lens.data_ptr(), query_start=None, num_seqs=S,
             block_size=d.block_size, num_kv_heads=H, num_q_heads=d.num_q_heads, head_size=D,
             dtype=0, policy=0 if params.policy == "mean" else 1, ratio=params.ratio,
             sink_blocks=params.sink_blocks, local_blocks=params.local_blocks,
             min_blocks=params.min_blocks, max_blocks=params.max_blocks,
             min_tokens=params.min_tokens, shadow_table=shadow.data_ptr(),
             shadow_lens=slens.data_ptr())
    if lib.gsa_select_ref(ctypes.byref(a)) != 0:
        raise RuntimeError("gsa_select_ref refused its arguments")
    return shadow, slens


def main():
    lib = ctypes.CDLL(os.path.join(ROOT, "build", "libgsa_select_ref.so"))
    passed = failed = 0
    for layout in ("split", "kv_packed"):
        for policy in ("mean", "quest"):
            for B, lens in ((16, [9000, 20000, 1500, 33000]), (128, [16384, 40000])):
                d = paged.Decode(lens, B, layout=layout, seed=7 + B)
                params = gsa_ref.GsaParams.from_env(ratio=0.3, policy=policy)
                ref = gsa_ref.GsaRef(d.key_cache, d.block_table, d.seq_lens, B, params)
                sels = ref.select(d.q)
                shadow, slens = c_select(lib, d, params)
                bad = []
                for s, sel in enumerate(sels):
                    if sel.sparse and sel.rel_margin < 1e-3:
                        continue  # a near-tie: either answer is the selection
                    want = d.block_table[s].cpu()[torch.tensor(sel.keep)].tolist()
                    got = shadow[s, :len(sel.keep)].tolist()
                    if got != want or int(slens[s]) != sel.shadow_len:
                        bad.append(f"seq {s}")
                name = f"{layout} {policy} block {B}"
                if bad:
                    failed += 1
                    print(f"FAIL c-ref == gsa_ref ({name}): {', '.join(bad)}")
                else:
                    passed += 1
                    print(f"PASS c-ref == gsa_ref ({name}): {len(sels)} sequences")
    print(f"c-ref: {passed} passed, {failed} failed")
    return 0 if failed == 0 and passed else 1


if __name__ == "__main__":
    sys.exit(main())
