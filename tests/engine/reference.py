"""A plain PyTorch forward of the same weights over one contiguous sequence (no paging, no
batching, no cache, no vLLM kernel): the engine's logits must match it before anything is
measured with the engine."""

import torch
import torch.nn.functional as F

from model import Rotary, rms_norm


@torch.no_grad()
def logits(cfg, w, tokens, device="cuda"):
    """float32 next-token logits at every position of `tokens` [L, vocab] (tp = 1 weights)."""
    d, hq, hk = cfg.head, cfg.q_heads, cfg.kv_heads
    rope = Rotary(d, cfg.rope_theta, len(tokens) + 1, cfg.rope_style, device)
    ids = torch.as_tensor(tokens, dtype=torch.int64, device=device)
    pos = torch.arange(len(tokens), device=device)
    x = w["embed"][ids]
    for lw in w["layers"]:
        h = rms_norm(x, lw["attn_norm"], cfg.rms_eps)
        qkv = h @ lw["wqkv"].t()
        q = rope(qkv[:, :hq * d].view(-1, hq, d), pos)
        k = rope(qkv[:, hq * d:(hq + hk) * d].view(-1, hk, d), pos)
        v = qkv[:, (hq + hk) * d:].view(-1, hk, d)
        o = F.scaled_dot_product_attention(q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1),
                                           is_causal=True, enable_gqa=True)
        x = x + o.transpose(0, 1).reshape(-1, hq * d) @ lw["wo"].t()
        h = rms_norm(x, lw["ffn_norm"], cfg.rms_eps)
        gu = h @ lw["w_gate_up"].t()
        x = x + (F.silu(gu[:, :cfg.ffn]) * gu[:, cfg.ffn:]) @ lw["w_down"].t()
    x = rms_norm(x, w["final_norm"], cfg.rms_eps)
    return (x @ w["lm_head"].t()).float()
