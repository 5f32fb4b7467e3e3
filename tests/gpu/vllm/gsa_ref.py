"""The test's reference for the library's GSA block selection (torch, float32, on the GPU),
written from the specification, not from the library's code:

Per sequence of length L (block size B, n = ceil(L/B) blocks): dense (all blocks) when
L < GSA_MIN_TOKENS, its query length != 1, or n exceeds the table's columns. Else
keep = max(GSA_MIN_BLOCKS, ceil(GSA_RATIO * n)), at most GSA_MAX_BLOCKS when set, at least
sink + local; keep >= n is dense. Kept: the first GSA_SINK_BLOCKS, the last GSA_LOCAL_BLOCKS,
and the keep - sink - local best-scoring middle blocks [sink, n - local) (ties to the lower
index), in their original order; shadow length = (keep-1)*B + (L - (n-1)*B).

Scores use the GQA-group mean query qbar_h (float32 mean of the query heads j with
j // (Hq/Hkv) == h):
  mean:  kmean[b,h] = float32 mean over the block's tokens of its keys, rounded to fp8 e4m3
         (nearest even, saturated to +-448: the library stores it so);
         score(b) = sum_h dot(qh_h, kmean[b,h]) / 2^k, where qh = fp16(qbar * 2^k) and 2^k
         brings max|qbar| into [2^14, 2^15) (k = 15 - E for max|qbar| = f * 2^E,
         0.5 <= f < 1, within [-126, 126]: the library scores with fp16 tensor-core products)
  quest: kmin/kmax per channel over the block's tokens (exact);
         score(b) = sum_h sum_d max(qbar_h[d]*kmin[b,h,d], qbar_h[d]*kmax[b,h,d])

Each selection reports the margin between the last kept and the first dropped middle score,
absolute and relative to a robust scale of the middle scores (1.4826 * median absolute
deviation), so tests can redraw or skip cases the library's float32 rounding could decide
differently.
"""

import math
import os
from dataclasses import dataclass, field

import torch

from paged import cdiv

POLICIES = ("mean", "quest")


@dataclass
class GsaParams:
    ratio: float = 0.3
    policy: str = "mean"
    sink_blocks: int = 1
    local_blocks: int = 2
    min_blocks: int = 16
    max_blocks: int = 0  # 0: none
    min_tokens: int = 2048

    @classmethod
    def from_env(cls, ratio=None, policy=None, env=None):
        """The library's GSA_* variables (with its defaults); arguments override."""
        env = os.environ if env is None else env

        def get_int(name, default):
            v = env.get(name)
            if v is None or v == "":
                return default
            return int(v)

        mx = env.get("GSA_MAX_BLOCKS", "none")
        p = cls(
            ratio=float(ratio if ratio is not None else env.get("GSA_RATIO", "0.3")),
            policy=(policy or env.get("GSA_POLICY", "mean")).lower(),
            sink_blocks=get_int("GSA_SINK_BLOCKS", 1),
            local_blocks=get_int("GSA_LOCAL_BLOCKS", 2),
            min_blocks=get_int("GSA_MIN_BLOCKS", 16),
            max_blocks=0 if mx in ("", "none") else int(mx),
            min_tokens=get_int("GSA_MIN_TOKENS", 2048),
        )
        if p.policy not in POLICIES:
            raise ValueError(f"unknown GSA policy {p.policy!r}")
        return p


@dataclass
class Plan:
    length: int
    n: int
    keep: int
    sparse: bool


def plan(length, block_size, params, query_len=1, table_cols=None):
    L = max(int(length), 0)
    n = cdiv(L, block_size)
    dense = Plan(L, n, n, False)
    if query_len != 1 or L < params.min_tokens or (table_cols is not None and n > table_cols):
        return dense
    keep = math.ceil(params.ratio * n)
    keep = max(keep, params.min_blocks)
    if params.max_blocks > 0:
        keep = min(keep, params.max_blocks)
    keep = max(keep, params.sink_blocks + params.local_blocks)
    if keep >= n:
        return dense
    return Plan(L, n, keep, True)


@dataclass
class Selection:
    plan: Plan
    keep: list = None  # kept logical blocks, ascending (all of them when dense)
    margin: float = math.inf  # last kept minus first dropped middle score
    rel_margin: float = math.inf  # margin / robust scale of the middle scores
    scores: torch.Tensor = field(default=None, repr=False)  # middle scores (float32)
    block_size: int = 0

    @property
    def sparse(self):
        return self.plan.sparse

    @property
    def shadow_len(self):
        """The length the library gives the sequence's shadow row."""
        p = self.plan
        if not p.sparse:
            return p.length
        B = self.block_size
        return (len(self.keep) - 1) * B + (p.length - (p.n - 1) * B)


class GsaRef:
    """Block representations of every sparse sequence (computed once; they do not depend on
    the query), then select(q) / select_seq(s, q_row) per query."""

    CHUNK = 1024  # blocks per representation chunk

    def __init__(self, key_cache, block_table, seq_lens, block_size, params, query_lens=None):
        self.key_cache = key_cache
        self.block_table = block_table
        self.block_size = block_size
        self.params = params
        self.num_kv_heads = key_cache.shape[2]
        self.head_size = key_cache.shape[3]
        lens = [int(x) for x in seq_lens.tolist()]
        qlens = query_lens or [1] * len(lens)
        cols = block_table.shape[1]
        self.plans = [plan(L, block_size, params, ql, cols) for L, ql in zip(lens, qlens)]
        self._repr = {}  # (s, policy) -> tensors

    def _middle_phys(self, s):
        p = self.plans[s]
        lo, hi = self.params.sink_blocks, p.n - self.params.local_blocks
        return self.block_table[s, lo:hi].long(), lo

    def reprs(self, s, policy):
        key = (s, policy)
        r = self._repr.get(key)
        if r is not None:
            return r
        phys, _ = self._middle_phys(s)
        parts_a, parts_b = [], []
        for i in range(0, phys.numel(), self.CHUNK):
            K = self.key_cache[phys[i:i + self.CHUNK]]  # [m, B, H, D] bf16
            if policy == "mean":
                # clamp first: torch turns values >= 480 into NaN, the library saturates
                parts_a.append(K.float().mean(dim=1).clamp(-448.0, 448.0)
                               .to(torch.float8_e4m3fn).float())
            else:
                parts_a.append(K.amin(dim=1).float())
                parts_b.append(K.amax(dim=1).float())
        empty = torch.empty(0, self.num_kv_heads, self.head_size, device=self.key_cache.device)
        a = torch.cat(parts_a) if parts_a else empty
        b = (torch.cat(parts_b) if parts_b else empty) if policy == "quest" else None
        r = (a, b)
        self._repr[key] = r
        return r

    def scores(self, s, q_row, policy=None):
        """float32 scores of sequence s's middle blocks [sink, n - local)."""
        policy = policy or self.params.policy
        H, D = self.num_kv_heads, self.head_size
        g = q_row.shape[0] // H
        qbar = q_row.float().view(H, g, D).sum(1) / g  # [H, D]
        a, b = self.reprs(s, policy)
        if policy == "mean":
            m = float(qbar.abs().max().item())
            k = 15 - math.frexp(m)[1] if m > 0 and math.isfinite(m) else 126
            k = max(-126, min(126, k))
            qh = (qbar * 2.0 ** k).half().float()
            return (a * qh[None]).sum(dim=(1, 2)) * 2.0 ** -k
        return torch.maximum(qbar[None] * a, qbar[None] * b).sum(dim=(1, 2))

    def select_seq(self, s, q_row, policy=None):
        p = self.plans[s]
        if not p.sparse:
            return Selection(p, list(range(p.n)), block_size=self.block_size)
        prm = self.params
        sc = self.scores(s, q_row, policy)
        m = sc.numel()
        want = p.keep - prm.sink_blocks - prm.local_blocks
        order = torch.sort(sc, descending=True, stable=True).indices
        chosen = (order[:want] + prm.sink_blocks).tolist()
        keep = sorted(list(range(prm.sink_blocks)) + chosen +
                      list(range(p.n - prm.local_blocks, p.n)))
        margin = math.inf
        rel = math.inf
        if 0 < want < m:
            margin = float(sc[order[want - 1]].item() - sc[order[want]].item())
            med = sc.median()
            scale = 1.4826 * float((sc - med).abs().median().item())
            if scale <= 0:
                scale = float(sc.abs().max().item()) or 1.0
            rel = margin / scale
        return Selection(p, keep, margin, rel, sc, self.block_size)

    def select(self, q, policy=None):
        return [self.select_seq(s, q[s], policy) for s in range(len(self.plans))]


def keep_lists(selections):
    """Per sequence: the kept blocks when sparse, None when dense (for paged.compact and
    paged.reference)."""
    return [sel.keep if sel.sparse else None for sel in selections]


def select(q, key_cache, block_table, seq_lens, block_size, params=None, query_lens=None):
    """One-shot form: per sequence (kept logical blocks, margin, relative margin, sparse)."""
    params = params or GsaParams.from_env()
    ref = GsaRef(key_cache, block_table, seq_lens, block_size, params, query_lens)
    return [(sel.keep, sel.margin, sel.rel_margin, sel.sparse) for sel in ref.select(q)]
