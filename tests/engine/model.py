"""A Llama-style decoder run the way vLLM V1 runs it: every scheduled token of every request in
one flat batch, a paged KV cache per layer written by a cache-write kernel, and one attention
call per layer over that batch (prefill chunks and decodes mixed), through an attention backend.

Tensor parallelism (Megatron style, as vLLM's Llama): QKV and gate/up are split by output rows
(heads, MLP columns), O and down by input columns, each followed by an all-reduce; embedding and
LM head are replicated.
"""

import torch
import torch.nn.functional as F


def rms_norm(x, w, eps):
    xf = x.float()
    xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
    return (xf * w.float()).to(x.dtype)


class Rotary:
    """cos/sin tables for every position up to max_pos, applied by position index."""

    def __init__(self, head, theta, max_pos, style, device):
        inv = 1.0 / (theta ** (torch.arange(0, head, 2, device=device, dtype=torch.float32) / head))
        ang = torch.outer(torch.arange(max_pos, device=device, dtype=torch.float32), inv)
        self.cos, self.sin = ang.cos(), ang.sin()
        self.style = style

    def __call__(self, x, positions):
        """x [tokens, heads, head]; positions int64 [tokens]."""
        cos = self.cos[positions].unsqueeze(1)
        sin = self.sin[positions].unsqueeze(1)
        xf = x.float()
        if self.style == "pairs":  # llama.cpp / GGUF: (x0, x1), (x2, x3), ...
            a, b = xf[..., 0::2], xf[..., 1::2]
            out = torch.stack((a * cos - b * sin, a * sin + b * cos), dim=-1).flatten(-2)
        else:  # Hugging Face: first half with second half
            h = xf.shape[-1] // 2
            a, b = xf[..., :h], xf[..., h:]
            out = torch.cat((a * cos - b * sin, b * cos + a * sin), dim=-1)
        return out.to(x.dtype)


class Model:
    def __init__(self, cfg, weights, attention, tp=1, group=None, device="cuda"):
        self.cfg, self.w, self.attn = cfg, weights, attention
        self.tp, self.group = tp, group
        self.q_heads = cfg.q_heads // tp
        self.kv_heads = cfg.kv_heads // tp
        self.ffn = cfg.ffn // tp
        self.rope = Rotary(cfg.head, cfg.rope_theta, cfg.max_context + 1, cfg.rope_style, device)

    def _all_reduce(self, x):
        if self.tp > 1:
            torch.distributed.all_reduce(x, group=self.group)
        return x

    def forward(self, input_ids, positions, meta, kv_caches, logits_index):
        """input_ids, positions [T]; meta: AttentionMeta; kv_caches[layer] = (key, value);
        logits_index [n] : rows of the flat batch whose next-token logits are wanted.
        Returns float32 logits [n, vocab]."""
        cfg, d = self.cfg, self.cfg.head
        x = self.w["embed"][input_ids]
        nq, nk = self.q_heads * d, self.kv_heads * d
        for i, lw in enumerate(self.w["layers"]):
            h = rms_norm(x, lw["attn_norm"], cfg.rms_eps)
            qkv = h @ lw["wqkv"].t()
            q = qkv[:, :nq].view(-1, self.q_heads, d)
            k = qkv[:, nq:nq + nk].view(-1, self.kv_heads, d)
            v = qkv[:, nq + nk:].view(-1, self.kv_heads, d)
            q = self.rope(q, positions)
            k = self.rope(k, positions)
            o = self.attn.forward(i, q, k, v.contiguous(), kv_caches[i], meta)
            x = x + self._all_reduce(o.view(-1, nq) @ lw["wo"].t())
            h = rms_norm(x, lw["ffn_norm"], cfg.rms_eps)
            gu = h @ lw["w_gate_up"].t()
            a = F.silu(gu[:, :self.ffn]) * gu[:, self.ffn:]
            x = x + self._all_reduce(a @ lw["w_down"].t())
        x = rms_norm(x[logits_index], self.w["final_norm"], cfg.rms_eps)
        return (x @ self.w["lm_head"].t()).float()
