"""Decode scenarios in vLLM's paged layout, a float64 reference attention and an oracle
compaction (what GSA should turn a launch into).

Layouts of the KV cache (all give key_cache/value_cache of shape
[num_blocks, block_size, num_kv_heads, head_size], as the kernels take them):
  split      kv (num_blocks, 2, block, kv_heads, head), key/value = kv.unbind(1)
             (the test default; key strides (2*B*H*D, H*D, D, 1))
  kv_first   kv (2, num_blocks, block, kv_heads, head), key/value = kv.unbind(0)
             (vLLM 0.10.x TRITON_ATTN; strides (B*H*D, H*D, D, 1))
  kv_packed  kv (num_blocks, block, kv_heads, 2*head), key/value = kv.split(head, -1)
             (vLLM 0.33.0 TRITON_ATTN with its default LBNHC layout: K and V of a head
             interleaved per token; key strides (2*B*H*D, 2*H*D, 2*D, 1), i.e. the
             head stride is 2*head_size, not head_size)
"""

import math

import torch

LAYOUTS = ("split", "kv_first", "kv_packed")


def cdiv(a, b):
    return -(-a // b)


def alloc_kv_cache(num_blocks, block_size, num_kv_heads, head_size, layout="split",
                   dtype=torch.bfloat16, device="cuda"):
    """Returns (kv, key_cache, value_cache); kv is the backing tensor."""
    if layout == "split":
        kv = torch.empty(num_blocks, 2, block_size, num_kv_heads, head_size, dtype=dtype,
                         device=device)
        k, v = kv.unbind(1)
    elif layout == "kv_first":
        kv = torch.empty(2, num_blocks, block_size, num_kv_heads, head_size, dtype=dtype,
                         device=device)
        k, v = kv.unbind(0)
    elif layout == "kv_packed":
        kv = torch.empty(num_blocks, block_size, num_kv_heads, 2 * head_size, dtype=dtype,
                         device=device)
        k, v = kv.split(head_size, dim=-1)
    else:
        raise ValueError(f"unknown KV layout {layout!r} (one of {', '.join(LAYOUTS)})")
    return kv, k, v


class Decode:
    """One decode step of a batch: query [num_seqs, q_heads, head] (one token per sequence),
    a paged KV cache filled with N(0, 1) values, a block table (int32 [num_seqs, columns]) of
    random distinct physical blocks (block 0 is never used; padding columns hold 0), seq_lens
    (int32) and cu_seqlens_q = arange(num_seqs + 1) (int32).

    table_pad:  extra columns in the block table (stride != blocks needed)
    spare_blocks: physical blocks not referenced by the table (for tests that swap blocks in)
    qkv_view:   query is a view into a [tokens, (q_heads + 2*kv_heads) * head] tensor, as when
                vLLM splits a fused QKV projection (token stride > q_heads * head)
    """

    def __init__(self, seq_lens, block_size, num_q_heads=32, num_kv_heads=8, head_size=128,
                 layout="split", dtype=torch.bfloat16, device="cuda", seed=0, spare_blocks=8,
                 table_pad=3, qkv_view=False, extra_table_blocks=0):
        assert num_q_heads % num_kv_heads == 0
        self.device = torch.device(device)
        self.gen = torch.Generator(device=self.device)
        self.gen.manual_seed(seed)
        self.cpu_gen = torch.Generator()
        self.cpu_gen.manual_seed(seed)
        self.block_size = B = block_size
        self.num_q_heads, self.num_kv_heads, self.head_size = num_q_heads, num_kv_heads, head_size
        self.layout = layout
        self.dtype = dtype
        self.scale = 1.0 / math.sqrt(head_size)
        lens = [int(x) for x in seq_lens]
        self.num_seqs = S = len(lens)
        # blocks each row owns: enough for its length plus extra_table_blocks (room to grow)
        self.row_blocks = [cdiv(L, B) + extra_table_blocks for L in lens]
        used = sum(self.row_blocks)
        self.num_blocks = used + spare_blocks + 1
        perm = torch.randperm(self.num_blocks - 1, generator=self.cpu_gen) + 1
        cols = max(self.row_blocks) + table_pad
        bt = torch.zeros(S, cols, dtype=torch.int32)
        o = 0
        for s, nb in enumerate(self.row_blocks):
            bt[s, :nb] = perm[o:o + nb].to(torch.int32)
            o += nb
        self.spare = perm[o:].tolist()
        self.block_table = bt.to(self.device)
        self.seq_lens = torch.tensor(lens, dtype=torch.int32, device=self.device)
        self.cu_seqlens_q = torch.arange(S + 1, dtype=torch.int32, device=self.device)
        self.kv, self.key_cache, self.value_cache = alloc_kv_cache(
            self.num_blocks, B, num_kv_heads, head_size, layout, dtype, self.device)
        self.kv.normal_(generator=self.gen)
        if qkv_view:
            width = (num_q_heads + 2 * num_kv_heads) * head_size
            self.qkv = torch.empty(S, width, dtype=dtype, device=self.device)
            self.qkv.normal_(generator=self.gen)
            self.q = self.qkv[:, :num_q_heads * head_size].view(S, num_q_heads, head_size)
        else:
            self.q = torch.empty(S, num_q_heads, head_size, dtype=dtype, device=self.device)
            self.q.normal_(generator=self.gen)
        self.out = torch.empty(S, num_q_heads, head_size, dtype=dtype, device=self.device)

    @property
    def lens(self):
        return self.seq_lens.tolist()

    def max_seqlen_k(self, lens=None):
        return int((lens if lens is not None else self.seq_lens).max().item())

    def run(self, release, block_table=None, seq_lens=None, out=None):
        """One decode launch through the release's unified_attention; returns out."""
        bt = self.block_table if block_table is None else block_table
        sl = self.seq_lens if seq_lens is None else seq_lens
        o = self.out if out is None else out
        release.decode(self.q, self.key_cache, self.value_cache, o, self.cu_seqlens_q, sl, bt,
                       self.max_seqlen_k(sl), self.scale)
        return o

    def new_query_row(self, s, noise=None):
        """Redraws query row s (N(0,1)), or adds noise*N(0,1) to it when noise is given."""
        r = torch.empty(self.num_q_heads, self.head_size, dtype=torch.float32,
                        device=self.device)
        r.normal_(generator=self.gen)
        if noise is None:
            self.q[s].copy_(r.to(self.dtype))
        else:
            self.q[s].copy_((self.q[s].float() + noise * r).to(self.dtype))

    def group_mean_query(self, s):
        """float32 [kv_heads, head]: the mean of query row s over each GQA group."""
        g = self.num_q_heads // self.num_kv_heads
        return self.q[s].float().view(self.num_kv_heads, g, self.head_size).mean(1)

    def plant_needles(self, s, logical_blocks, alpha=12.0, noise=0.3):
        """Sets the keys of the given logical blocks of sequence s to alpha * (unit GQA-group
        mean query direction) + noise * N(0,1), per KV head: blocks the query attends to."""
        qbar = self.group_mean_query(s)
        u = qbar / qbar.norm(dim=-1, keepdim=True).clamp_min(1e-6)  # [H, D]
        B = self.block_size
        for b in logical_blocks:
            phys = int(self.block_table[s, b].item())
            n = torch.empty(B, self.num_kv_heads, self.head_size, device=self.device)
            n.normal_(generator=self.gen)
            self.key_cache[phys].copy_((alpha * u[None] + noise * n).to(self.dtype))

    def inputs_digest(self):
        """A cheap fingerprint of the inputs (query, table, lengths, a sample of the cache)."""
        q = self.q.float()
        sample = self.kv.reshape(-1)[::997].float()
        return {
            "q": float(q.sum().item()), "q2": float((q * q).sum().item()),
            "table": int(self.block_table.to(torch.int64).sum().item()),
            "lens": self.lens,
            "kv": float(sample.sum().item()), "kv2": float((sample * sample).sum().item()),
        }


def _seq_tokens(key_cache, value_cache, table_row, L, blocks, block_size):
    """K and V (float64 [T, H, D]) of the given logical blocks of one sequence of length L,
    plus the logical block of every token."""
    n = cdiv(L, block_size)
    blocks = list(blocks)
    for b in blocks:
        if not 0 <= b < n:
            raise ValueError(f"logical block {b} outside [0, {n}) for length {L}")
    dev = key_cache.device
    idx = torch.tensor(blocks, dtype=torch.long, device=dev)
    phys = table_row.to(dev).long()[idx]
    K = key_cache[phys].double()  # [k, B, H, D]
    V = value_cache[phys].double()
    tok = torch.arange(block_size, device=dev)
    valid = torch.ones(len(blocks), block_size, dtype=torch.bool, device=dev)
    last_tokens = L - (n - 1) * block_size
    for i, b in enumerate(blocks):
        if b == n - 1:
            valid[i] = tok < last_tokens
    owner = idx[:, None].expand(-1, block_size)
    H, D = K.shape[2], K.shape[3]
    K = K.reshape(-1, H, D)[valid.reshape(-1)]
    V = V.reshape(-1, H, D)[valid.reshape(-1)]
    return K, V, owner.reshape(-1)[valid.reshape(-1)]


def _attend(q_row, K, V, scale):
    """q_row [Hq, D] (any float), K/V float64 [T, H, D] -> (out [Hq, D], probs [H, G, T])."""
    Hq, D = q_row.shape
    H = K.shape[1]
    qs = q_row.double().view(H, Hq // H, D)
    logits = torch.einsum("hgd,thd->hgt", qs, K) * scale
    p = torch.softmax(logits, dim=-1)
    o = torch.einsum("hgt,thd->hgd", p, V)
    return o.reshape(Hq, D), p


def reference(q, key_cache, value_cache, block_table, seq_lens, blocks_per_seq=None,
              scale=None):
    """float64 attention of each sequence's single query token over the given logical blocks
    of its block-table row (all blocks when blocks_per_seq is None or its entry is None);
    tokens of the sequence's last block are limited by its length. Returns [S, Hq, D]."""
    S, Hq, D = q.shape
    B = key_cache.shape[1]
    if scale is None:
        scale = 1.0 / math.sqrt(D)
    lens = [int(x) for x in seq_lens.tolist()]
    bt = block_table
    out = torch.empty(S, Hq, D, dtype=torch.float64, device=q.device)
    for s in range(S):
        L = lens[s]
        n = cdiv(L, B)
        blocks = range(n) if blocks_per_seq is None or blocks_per_seq[s] is None \
            else blocks_per_seq[s]
        K, V, _ = _seq_tokens(key_cache, value_cache, bt[s], L, blocks, B)
        out[s], _ = _attend(q[s], K, V, scale)
    return out


def block_mass(q_row, key_cache, value_cache, table_row, L, scale=None):
    """float64 [n]: the softmax attention mass of each logical block of one sequence (dense
    attention), averaged over the query heads (each head's masses sum to 1)."""
    Hq, D = q_row.shape
    B = key_cache.shape[1]
    if scale is None:
        scale = 1.0 / math.sqrt(D)
    n = cdiv(L, B)
    K, V, owner = _seq_tokens(key_cache, value_cache, table_row, L, range(n), B)
    _, p = _attend(q_row, K, V, scale)
    per_token = p.reshape(-1, p.shape[-1]).mean(0)  # [T]
    mass = torch.zeros(n, dtype=torch.float64, device=per_token.device)
    mass.index_add_(0, owner, per_token)
    return mass


def compact(block_table, seq_lens, keep_lists, block_size):
    """Oracle compaction: per sequence, the kept logical blocks' physical ids in their original
    order (the last, partial block last) and length (kept-1)*B + tokens of the last block; a
    None entry keeps the row and length unchanged. Returns (table, lens) like the inputs
    (unused columns 0)."""
    bt = block_table.cpu()
    lens = [int(x) for x in seq_lens.tolist()]
    out_bt = torch.zeros_like(bt)
    out_lens = []
    for s, L in enumerate(lens):
        n = cdiv(L, block_size)
        keep = keep_lists[s] if keep_lists is not None else None
        if keep is None:
            out_bt[s, :n] = bt[s, :n]
            out_lens.append(L)
            continue
        keep = list(keep)
        if keep != sorted(set(keep)):
            raise ValueError(f"sequence {s}: kept blocks must be distinct and ascending")
        if not keep or keep[-1] != n - 1:
            raise ValueError(f"sequence {s}: the last block ({n - 1}) must be kept")
        out_bt[s, :len(keep)] = bt[s, torch.tensor(keep, dtype=torch.long)]
        out_lens.append((len(keep) - 1) * block_size + (L - (n - 1) * block_size))
    return (out_bt.to(block_table.device),
            torch.tensor(out_lens, dtype=seq_lens.dtype, device=seq_lens.device))


def rel_l2(a, b):
    a = a.double()
    b = b.double()
    return float((a - b).norm().item() / max(b.norm().item(), 1e-30))


def max_abs(a, b):
    return float((a.double() - b.double()).abs().max().item())
