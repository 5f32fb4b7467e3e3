#!/usr/bin/env python3
"""A CPU model of the FA2 split-KV kernels, driven by the packed Flash_fwd_params.

It checks fa2_driver.decode's host side without a GPU: the model reads q, the paged
K/V cache, block_table, seqused_k ... through the raw addresses and strides in the
472-byte parameter block, following compute_attn_1rowblock_splitkv /
combine_attn_seqk_parallel index arithmetic (flash_fwd_kernel.h, block_info.h), and
writes O / LSE / Oaccum / LSEaccum the same way.  Every address it touches must lie in
a tensor that decode passed.  It says nothing about the real kernels' numerics.

    python3 tests/gpu/fa2/fa2_emulate.py        (CPU torch is enough)
"""
import ctypes
import math
import os
import sys

sys.dont_write_bytecode = True   # no __pycache__ in the work tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch  # noqa: E402
import fa2_driver as drv  # noqa: E402
import fa2_names  # noqa: E402

BF16, F32, I32 = torch.bfloat16, torch.float32, torch.int32


class Mem:
    """Raw reads and writes by address, each checked against the registered tensors."""

    def __init__(self):
        self.ranges = []

    def register(self, t):
        if t is not None and t.numel():
            self.ranges.append((t.data_ptr(), t.data_ptr() + t.numel() * t.element_size()))

    def _check(self, addr, nbytes, what):
        for lo, hi in self.ranges:
            if lo <= addr and addr + nbytes <= hi:
                return
        raise AssertionError("%s: [%#x, +%d) is outside every tensor passed" % (what, addr, nbytes))

    def view(self, addr, n, dtype, what):
        size = torch.tensor([], dtype=dtype).element_size()
        self._check(addr, n * size, what)
        buf = (ctypes.c_char * (n * size)).from_address(addr)
        return torch.frombuffer(buf, dtype=dtype, count=n)


class MockKernels:
    """Stands in for FA2Kernels: same attributes decode uses, launches run the CPU model."""

    def __init__(self, num_sms=132):
        self.device = torch.device("cpu")
        self.num_sms = num_sms
        self.image = "cpu-model"
        self.mem = None
        self.launches = []

    def stream(self):
        return 0

    def launch(self, role, grid, p, stream):
        self.launches.append((role, grid))
        blocks = {"split": (128, True), "nosplit": (128, False), "align": (64, False)}
        if role in blocks:
            block_n, split = blocks[role]
            for z in range(grid[2]):
                for y in range(grid[1]):
                    for x in range(grid[0]):
                        self.attn_block(p, block_n, split, x, y, z, grid)
        elif role.startswith("combine_"):
            log_max = int(role.split("_")[1])
            assert p.num_splits <= (1 << log_max), "combine_%d with num_splits %d" % (log_max, p.num_splits)
            assert p.num_splits > (1 << (log_max - 1)) or log_max == 1, "not the kernel vLLM picks"
            for bidx in range(grid[0]):
                self.combine_block(p, bidx)
        else:
            raise AssertionError("unknown role " + role)

    def i32(self, ptr, idx, what):
        return int(self.mem.view(ptr + 4 * idx, 1, I32, what)[0])

    def attn_block(self, p, kBlockN, split, m_block, y, z, grid):
        mem, D, kBlockM = self.mem, p.d, fa2_names.BLOCK_M
        if split:
            bidb = z // p.h
            bidh = z - bidb * p.h
            n_split_idx, num_n_splits = y, grid[1]
        else:
            bidb, bidh, n_split_idx, num_n_splits = y, z, 0, 1
        # BlockInfo<Varlen=true> (Is_even_MN is false in all these kernels)
        sum_s_q = -1 if not p.cu_seqlens_q else self.i32(p.cu_seqlens_q, bidb, "cu_seqlens_q")
        actual_q = p.seqlen_q if not p.cu_seqlens_q else self.i32(p.cu_seqlens_q, bidb + 1, "cu_seqlens_q") - sum_s_q
        assert not p.leftpad_k
        if p.cu_seqlens_k:   # read as the kernel does (value unused for paged KV with seqused_k)
            self.i32(p.cu_seqlens_k, bidb, "cu_seqlens_k")
            self.i32(p.cu_seqlens_k, bidb + 1, "cu_seqlens_k")
        Lk = self.i32(p.seqused_k, bidb, "seqused_k") if p.seqused_k else p.seqlen_k
        if m_block * kBlockM >= actual_q:
            return
        nbps = ((Lk + kBlockN - 1) // kBlockN + num_n_splits - 1) // num_n_splits
        n_min = n_split_idx * nbps
        n_max = min((Lk + kBlockN - 1) // kBlockN, (n_split_idx + 1) * nbps)
        kv_head = bidh // p.h_h_k_ratio
        bt = p.block_table + 4 * bidb * p.block_table_batch_stride
        t_lo, t_hi = n_min * kBlockN, min(n_max * kBlockN, Lk)
        keys, vals = [], []
        for t in range(t_lo, t_hi):
            page = self.i32(bt, t // p.page_block_size, "block_table")
            off = page * p.k_batch_stride + (t % p.page_block_size) * p.k_row_stride + kv_head * p.k_head_stride
            keys.append(mem.view(p.k_ptr + 2 * off, D, BF16, "K").double())
            offv = page * p.v_batch_stride + (t % p.page_block_size) * p.v_row_stride + kv_head * p.v_head_stride
            vals.append(mem.view(p.v_ptr + 2 * offv, D, BF16, "V").double())
        for r in range(m_block * kBlockM, min(actual_q, (m_block + 1) * kBlockM)):
            qoff = (bidb * p.q_batch_stride if sum_s_q == -1 else sum_s_q * p.q_row_stride) \
                + r * p.q_row_stride + bidh * p.q_head_stride
            qv = mem.view(p.q_ptr + 2 * qoff, D, BF16, "Q").double()
            if keys:
                s = torch.stack(keys) @ qv * p.scale_softmax
                lse = float(torch.logsumexp(s, 0))
                o = torch.softmax(s, 0) @ torch.stack(vals)
            else:
                lse, o = (float("-inf") if split else float("inf")), torch.zeros(D, dtype=torch.float64)
            if split:
                row = ((n_split_idx * p.b + bidb) * p.h + bidh) * p.seqlen_q + r
                mem.view(p.oaccum_ptr + 4 * row * p.d_rounded, D, F32, "Oaccum").copy_(o)
                mem.view(p.softmax_lseaccum_ptr + 4 * row, 1, F32, "LSEaccum").fill_(lse)
            else:
                ooff = (bidb * p.o_batch_stride if sum_s_q == -1 else sum_s_q * p.o_row_stride) \
                    + r * p.o_row_stride + bidh * p.o_head_stride
                mem.view(p.o_ptr + 2 * ooff, D, BF16, "O").copy_(o)
                assert p.unpadded_lse
                q_off = bidb * p.seqlen_q if sum_s_q == -1 else sum_s_q
                mem.view(p.softmax_lse_ptr + 4 * (bidh * p.total_q + q_off + r), 1, F32, "LSE").fill_(lse)

    def combine_block(self, p, bidx):
        mem, D, kBlockM = self.mem, p.d, fa2_names.COMBINE_BLOCK_M
        lse_size = p.b * p.h * p.seqlen_q
        for idx in range(bidx * kBlockM, min(lse_size, (bidx + 1) * kBlockM)):
            lses = [float(mem.view(p.softmax_lseaccum_ptr + 4 * (s * lse_size + idx), 1, F32, "LSEaccum")[0])
                    for s in range(p.num_splits)]
            m = max(lses)
            m = 0.0 if m == float("-inf") else m
            tot = sum(math.exp(x - m) for x in lses)
            logsum = float("inf") if tot == 0 else math.log(tot) + m
            o = torch.zeros(D, dtype=torch.float64)
            for s in range(p.num_splits):
                acc = mem.view(p.oaccum_ptr + 4 * (s * lse_size + idx) * p.d_rounded, D, F32, "Oaccum").double()
                o += math.exp(lses[s] - logsum) * acc
            qi, hi, bi = idx % p.seqlen_q, (idx // p.seqlen_q) % p.h, idx // (p.seqlen_q * p.h)
            assert p.unpadded_lse
            if p.seqlenq_ngroups_swapped:
                loff = qi * p.b + hi * p.seqlen_q * p.b + bi
            else:
                loff = qi + hi * p.seqlen_q * p.b + bi * p.seqlen_q
            mem.view(p.softmax_lse_ptr + 4 * loff, 1, F32, "LSE").fill_(logsum)
            batch_idx = idx // (p.h * p.seqlen_q)
            head_idx = (idx - batch_idx * p.h * p.seqlen_q) // p.seqlen_q
            row = idx - batch_idx * p.h * p.seqlen_q - head_idx * p.seqlen_q
            ooff = batch_idx * p.o_batch_stride + head_idx * p.o_head_stride + row * p.o_row_stride
            mem.view(p.o_ptr + 2 * ooff, D, BF16, "O").copy_(o)


def run_case(name, B, Hq, Hk, BS, lens, ns, seed):
    q, kc, vc, table, seq = drv.make_case(B, Hq, Hk, BS, lens, seed=seed, dev="cpu")
    K = MockKernels()
    K.mem = Mem()
    # decode allocates its own buffers; register them by wrapping torch.empty for the call
    real_empty, real_zeros, real_arange = torch.empty, torch.zeros, torch.arange
    made = []

    def track(f):
        def g(*a, **kw):
            t = f(*a, **kw)
            made.append(t)
            return t
        return g
    torch.empty, torch.zeros, torch.arange = track(real_empty), track(real_zeros), track(real_arange)
    real_launch = K.launch

    def launch(role, grid, p, stream):
        for t in made + list(drv._CONSTS.values()):
            K.mem.register(t)
        return real_launch(role, grid, p, stream)
    K.launch = launch
    for t in (q, kc, vc, table, seq):
        K.mem.register(t)
    # q is copied (GQA swap) inside decode; reshape copies are not torch.empty: register lazily
    real_reshape = torch.Tensor.reshape

    def reshape(self, *a, **kw):
        t = real_reshape(self, *a, **kw)
        made.append(t)
        return t
    torch.Tensor.reshape = reshape
    try:
        out, lse, info = drv.decode(q, kc, vc, table, seq, num_splits=ns, return_lse=True,
                                    return_info=True, fa2=K)
    finally:
        torch.empty, torch.zeros, torch.arange = real_empty, real_zeros, real_arange
        torch.Tensor.reshape = real_reshape
    ref, ref_lse = drv.reference(q, kc, vc, table, seq)
    err = float((out.double() - ref).abs().max())
    ok = err < 2e-2
    if min(lens) > 0:
        a = torch.sort(lse.double().flatten())[0]
        r = torch.sort(ref_lse.flatten())[0]
        lerr = float((a - r).abs().max())
        ok = ok and lerr < 1e-4
    else:
        lerr = float("nan")
    print("%s %s: num_splits=%d launched=%s max_err=%.2e lse_err=%.2e"
          % ("PASS" if ok else "FAIL", name, info["num_splits"],
             "+".join("%s%s" % (r, list(g)) for r, g in info["launched"]), err, lerr))
    return ok


def main():
    cases = [
        ("gqa4-bs16-b1-auto", 1, 32, 8, 16, [300], None),
        ("gqa4-bs16-b3-splits1", 3, 32, 8, 16, [77, 1, 160], 1),
        ("gqa4-bs16-b2-splits3", 2, 32, 8, 16, [500, 40], 3),
        ("gqa4-bs32-b2-splits5", 2, 32, 8, 32, [700, 129], 5),
        ("gqa8-bs64-b2-auto", 2, 8, 1, 64, [260, 3], None),
        ("mha-bs16-b2-splits0", 2, 4, 4, 16, [100, 33], None),
        ("mha-bs16-b2-splits1", 2, 4, 4, 16, [100, 33], 1),
        ("gqa4-bs16-b3-zero", 3, 32, 8, 16, [0, 20, 9], 2),
    ]
    n_ok = 0
    for i, c in enumerate(cases):
        try:
            ok = run_case(*c, seed=i)
        except AssertionError as e:
            print("FAIL %s: %s" % (c[0], e))
            ok = False
        n_ok += ok
    # heuristic values vLLM would choose on an H100 (132 SMs) for the bench shapes
    for B in (1, 8, 32, 64):
        for ctx in (8192, 32768, 131072):
            print("heuristic B=%-2d ctx=%-6d -> num_splits %d" % (
                B, ctx, drv.vllm_num_splits(B, 32, 8, ctx, 132)))
    print("%d passed, %d failed" % (n_ok, len(cases) - n_ok))
    return 0 if n_ok == len(cases) else 1


if __name__ == "__main__":
    sys.exit(main())
