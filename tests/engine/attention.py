"""Attention backends for model.py. Both read and write the same paged KV cache layout, one
(key, value) pair of views per layer, block table int32 [rows, max_blocks], seq_lens int32.

  VllmTriton  vLLM's own kernels, taken from the vllm package at test time (never committed):
              triton_reshape_and_cache_flash writes the new tokens' K/V into their slots and
              unified_attention (the release's TRITON_ATTN path: 2D, 3D + reduce_segments, or
              the merged kernel) attends; what LD_PRELOAD=libgsa_preload.so rewrites.
  TorchPaged  the same semantics in plain PyTorch (index writes, a per-sequence gather and
              float32 softmax), for CPU tests of the engine and as a cross-check.
"""

import dataclasses
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "gpu", "vllm"))

import loader  # noqa: E402  (tests/gpu/vllm/loader.py)
import paged  # noqa: E402


@dataclasses.dataclass
class AttentionMeta:
    query_start_loc: torch.Tensor  # int32 [num_seqs + 1]
    seq_lens: torch.Tensor         # int32 [num_seqs], tokens in the cache after this step
    block_table: torch.Tensor      # int32 [num_seqs, max_blocks] (rows of the persistent table)
    slot_mapping: torch.Tensor     # int64 [tokens], -1 = padding (not written)
    max_query_len: int
    max_seq_len: int


class KVCaches:
    """One KV tensor per layer, allocated through PyTorch (cudaMalloc), in the release's own
    layout; .layers[i] = (key_cache, value_cache) views [num_blocks, block, kv_heads, head]."""

    def __init__(self, layers, num_blocks, block_size, kv_heads, head, layout, dtype, device):
        self.backing, self.layers = [], []
        for _ in range(layers):
            kv, k, v = paged.alloc_kv_cache(num_blocks, block_size, kv_heads, head, layout=layout,
                                            dtype=dtype, device=device)
            self.backing.append(kv)
            self.layers.append((k, v))
        self.num_blocks, self.block_size, self.layout = num_blocks, block_size, layout

    @staticmethod
    def bytes_per_block(layers, block_size, kv_heads, head, dtype):
        return layers * 2 * block_size * kv_heads * head * torch.finfo(dtype).bits // 8

    def copy_blocks(self, src, dst):
        """Copies whole blocks (K and V, every layer): used to fork a prefilled sequence."""
        s = torch.as_tensor(src, dtype=torch.int64, device=self.backing[0].device)
        d = torch.as_tensor(dst, dtype=torch.int64, device=self.backing[0].device)
        for kv in self.backing:
            if self.layout == "kv_first":
                kv[:, d] = kv[:, s]
            else:
                kv[d] = kv[s]


class VllmTriton:
    name = "vllm-triton"

    def __init__(self, release, head, device):
        self.release = loader.load_release(release)
        self.write = loader.load_cache_writer()
        self.layout = self.release.native_layout
        self.scale = head ** -0.5
        self.one = torch.tensor(1.0, dtype=torch.float32, device=device)

    def forward(self, layer, q, k, v, kv, meta):
        key_cache, value_cache = kv
        self.write(k, v, key_cache, value_cache, meta.slot_mapping, "auto", self.one, self.one)
        out = torch.empty_like(q)
        self.release.decode(q, key_cache, value_cache, out, meta.query_start_loc, meta.seq_lens,
                            meta.block_table, meta.max_seq_len, self.scale,
                            max_seqlen_q=meta.max_query_len)
        return out


class TorchPaged:
    name = "torch-paged"
    layout = "kv_first"

    def __init__(self, head, device):
        self.scale = head ** -0.5

    def forward(self, layer, q, k, v, kv, meta):
        key_cache, value_cache = kv
        nb, bs, h, d = key_cache.shape
        slots = meta.slot_mapping
        ok = slots >= 0
        kflat, vflat = key_cache.reshape(nb * bs, h, d), value_cache.reshape(nb * bs, h, d)
        if key_cache.data_ptr() != kflat.data_ptr():
            raise RuntimeError("TorchPaged needs a block-mergeable layout")
        kflat[slots[ok]] = k[ok]
        vflat[slots[ok]] = v[ok]
        out = torch.empty_like(q)
        qsl = meta.query_start_loc.tolist()
        lens = meta.seq_lens.tolist()
        g = q.shape[1] // h
        for s in range(len(lens)):
            a, b, L = qsl[s], qsl[s + 1], lens[s]
            if b == a:
                continue
            nblk = -(-L // bs)
            blocks = meta.block_table[s, :nblk].long()
            K = key_cache[blocks].reshape(-1, h, d)[:L].float().repeat_interleave(g, dim=1)
            V = value_cache[blocks].reshape(-1, h, d)[:L].float().repeat_interleave(g, dim=1)
            Q = q[a:b].float()
            att = torch.einsum("qhd,khd->hqk", Q, K) * self.scale
            qpos = torch.arange(L - (b - a), L, device=q.device)
            mask = torch.arange(L, device=q.device)[None, :] > qpos[:, None]
            att.masked_fill_(mask[None], float("-inf"))
            out[a:b] = torch.einsum("hqk,khd->qhd", att.softmax(-1), V).to(q.dtype)
        return out


def make(kind, release, head, device):
    if kind == "torch":
        return TorchPaged(head, device)
    return VllmTriton(release, head, device)
