"""One engine process: `worker.py MODE --json OUT [options]`. It never mentions gsa-preload;
whether the library is loaded (LD_PRELOAD, GSA_*) is decided by whoever starts it (run.py).

  check     the model is right: chat answers (text), engine logits vs reference.py's plain
            PyTorch forward, and eager vs CUDA-graph decoding give the same tokens
  fidelity  passkey retrieval (CUDA graphs) and teacher-forced continuations of real text
            (eager); --save-ref writes the log-probabilities, --ref compares against them
  speed     per context: TTFT of real prefills, then a batch (forks of the prefilled request)
            decoding eagerly and through CUDA graphs: tokens/s and time per output token
Tensor parallel: started once per rank with RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT set.
"""

import argparse
import faulthandler
import json
import math
import os
import random
import statistics
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import weights as W  # noqa: E402
from engine import Engine  # noqa: E402

CACHE = os.environ.get("ENGINE_CACHE", "/tmp/gsa_engine_cache")


def log(*a):
    print(f"[worker {os.getpid()}]", *a, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------- setup
def setup_dist(device):
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if world > 1:
        if device == "cuda":
            torch.cuda.set_device(rank)
            torch.distributed.init_process_group("nccl", device_id=torch.device("cuda", rank))
        else:  # CPU smoke test of the tensor-parallel logic
            torch.distributed.init_process_group("gloo")
        log(f"rank {rank}/{world}: process group up")
        return rank, world, torch.distributed.group.WORLD
    return 0, 1, None


def load_model(args, rank, tp):
    if args.model == "smollm2":
        os.makedirs(CACHE, exist_ok=True)
        path = os.path.join(CACHE, "smollm2.pt")
        if os.path.isfile(path) and tp == 1:
            blob = torch.load(path, weights_only=False)
            cfg, w = blob["cfg"], {k: v for k, v in blob["w"].items()}
            w = _to(w, args.device)
            from gguf import GGUFReader
            tok = W.smollm2_tokenizer(GGUFReader(W.find_gguf(args.model_dir)))
            return cfg, w, tok
        dt = torch.bfloat16 if args.device == "cuda" else torch.float32
        cfg, w, reader = W.smollm2_weights(args.model_dir, rank=rank, tp=tp, dtype=dt,
                                           device=args.device)
        if tp == 1:
            torch.save({"cfg": cfg, "w": _to(w, "cpu")}, path + ".tmp")
            os.replace(path + ".tmp", path)
        return cfg, w, W.smollm2_tokenizer(reader)
    cfg = W.LLAMA3_8B
    if args.layers:
        import dataclasses
        cfg = dataclasses.replace(cfg, layers=args.layers)
    return cfg, W.random_weights(cfg, seed=args.seed, rank=rank, tp=tp, device=args.device), None


def _to(w, dev):
    if isinstance(w, dict):
        return {k: _to(v, dev) for k, v in w.items()}
    if isinstance(w, list):
        return [_to(v, dev) for v in w]
    return w.to(dev)


def make_engine(args, cfg, w, rank, tp, group):
    return Engine(cfg, w, device=args.device, attention=args.attention, release=args.release, block_size=args.block_size,
                  gpu_util=args.gpu_util, max_num_seqs=args.max_num_seqs,
                  max_num_batched_tokens=args.max_batched_tokens, max_model_len=args.max_model_len,
                  max_kv_blocks=args.max_kv_blocks, tp=tp, group=group,
                  log=log if rank == 0 else (lambda *a: None))


def chat(tok, text):
    return tok.encode(f"<|im_start|>user\n{text}<|im_end|>\n<|im_start|>assistant\n").ids


# ------------------------------------------------------------------------- check
def mode_check(args, eng, cfg, w, tok):
    import reference
    import corpus
    res = {}
    stop = (cfg.eos, tok.token_to_id("<|im_end|>"))
    questions = ["What is the capital of France?", "Write one sentence about the ocean.",
                 "List three colours.", "What is 12 plus 7?"]
    reqs = [eng.add(chat(tok, q), 40, stop=stop) for q in questions]
    eng.use_graphs = False
    eng.run()
    res["chat"] = [{"q": q, "a": tok.decode(r.output)} for q, r in zip(questions, reqs)]
    eager = [r.output for r in reqs]
    reqs = [eng.add(chat(tok, q), 40, stop=stop) for q in questions]
    eng.use_graphs = True
    eng.run()
    res["eager_equals_graph"] = eager == [r.output for r in reqs]
    # logits: engine (chunked prefill + teacher-forced decode) vs the reference forward
    texts, used, _ = corpus.windows(tok, len(args.check_prompts), max(args.check_prompts) + 33)
    rows = []
    for n_prompt, win in zip(args.check_prompts, texts):
        got = {}
        r = eng.add(win[:n_prompt], 33, forced=win[n_prompt:n_prompt + 33],
                    on_logits=lambda r, i, row: got.__setitem__(i, row.clone()))
        eng.use_graphs = False
        eng.run()
        ref = reference.logits(cfg, w, win[:n_prompt + 33], device=args.device)
        e = torch.stack([got[i] for i in range(33)])
        rf = ref[n_prompt - 1:n_prompt + 32]
        rows.append({"prompt": n_prompt, "positions": 33,
                     "max_abs_diff": float((e - rf).abs().max()),
                     "logit_std": float(rf.std()),
                     "top1_agree": float((e.argmax(-1) == rf.argmax(-1)).float().mean()),
                     "kl_ref_engine": float(kl(rf, e).mean())})
    res["logits_vs_reference"] = rows
    res["text_files"] = used[:5]
    return res


def kl(p_logits, q_logits):
    """KL(p || q) per row, from logits (float32)."""
    lp = torch.log_softmax(p_logits.float(), -1)
    lq = torch.log_softmax(q_logits.float(), -1)
    return (lp.exp() * (lp - lq)).sum(-1)


# ------------------------------------------------------------------------- fidelity
FILLER = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again. "


def passkey_prompt(tok, n_tokens, depth, key):
    fill = tok.encode(FILLER).ids
    needle = tok.encode(f" The pass key is {key}. Remember it. {key} is the pass key. ").ids
    head = tok.encode("<|im_start|>user\nThere is a pass key hidden in the following text. "
                      "Find it and remember it.\n").ids
    tail = tok.encode("\nWhat is the pass key?<|im_end|>\n<|im_start|>assistant\nThe pass key is").ids
    body_n = n_tokens - len(head) - len(tail) - len(needle)
    body = (fill * (body_n // len(fill) + 1))[:body_n]
    at = int(body_n * depth) // len(fill) * len(fill)
    return head + body[:at] + needle + body[at:] + tail


def mode_fidelity(args, eng, cfg, w, tok):
    import corpus
    res = {"passkey": {}, "text": {}}
    contexts = [int(c) for c in args.contexts.split(",")]
    depths = [float(d) for d in args.depths.split(",")]
    rng = random.Random(1234)
    # Passkey retrieval, all trials of all contexts in one continuous batch, CUDA graphs on.
    trials = []
    for c in contexts:
        for d in depths:
            for _ in range(args.trials):
                key = rng.randint(10000, 99999)
                trials.append((c, d, key, passkey_prompt(tok, c - 8, d, key)))
    reqs = [eng.add(p, 8) for _, _, _, p in trials]
    eng.use_graphs = True
    t0 = time.time()
    eng.run()
    res["passkey_seconds"] = time.time() - t0
    outs = []
    for (c, d, key, _), r in zip(trials, reqs):
        text = tok.decode(r.output)
        ok = str(key) in text.replace(" ", "")
        cell = res["passkey"].setdefault(str(c), {"correct": 0, "trials": 0, "by_depth": {}})
        cell["correct"] += ok
        cell["trials"] += 1
        bd = cell["by_depth"].setdefault(str(d), [0, 0])
        bd[0] += ok
        bd[1] += 1
        outs.append(r.output)
    res["passkey_outputs"] = outs
    # Teacher-forced continuations of real text, eager.
    eng.use_graphs = False
    ref_dir = args.ref or args.save_ref
    for c in contexts:
        # context c = prompt + forced tokens (the model's window is 8K)
        wins, used, ntok = corpus.windows(tok, args.text_seqs, c)
        cp = c - args.forced
        store = {}
        reqs = []
        for j, win in enumerate(wins):
            def keep(r, i, row, j=j):
                store[(j, i)] = torch.log_softmax(row.float(), -1).to(torch.float16)
            reqs.append(eng.add(win[:cp], args.forced, forced=win[cp:c], on_logits=keep))
        eng.run()
        cur = torch.stack([torch.stack([store[(j, i)] for i in range(args.forced)])
                           for j in range(len(wins))])  # [seqs, forced, vocab]
        path = os.path.join(ref_dir, f"ref_{c}.pt")
        entry = {"sequences": len(wins), "positions": int(cur.shape[0] * cur.shape[1]),
                 "corpus_tokens": ntok, "files": len(used)}
        if args.save_ref:
            torch.save(cur.cpu(), path)
        if args.ref:
            ref = torch.load(path).to(cur.device).float()
            q = cur.float()
            p = ref.exp()
            klv = (p * (ref - q)).sum(-1)  # KL(dense || this run) per position
            entry.update(top1_agree=float((ref.argmax(-1) == q.argmax(-1)).float().mean()),
                         kl_mean=float(klv.mean()), kl_p95=float(klv.flatten().quantile(0.95)),
                         max_abs_logprob_diff=float((ref - q).abs().max()))
        entry["predicted"] = [r.predicted for r in reqs]
        res["text"][str(c)] = entry
    return res


# ------------------------------------------------------------------------- speed
def timed_steps(eng, n):
    """(wall seconds, host seconds until each step's work was queued) for n steps."""
    sync = torch.cuda.synchronize if str(eng.device).startswith("cuda") else (lambda: None)
    sync()
    h0 = eng.host_s
    t0 = time.perf_counter()
    for _ in range(n):
        eng.step()
    sync()
    return time.perf_counter() - t0, eng.host_s - h0


def mode_speed(args, eng, cfg, w, tok, rank):
    rng = torch.Generator().manual_seed(7)
    res = {"cells": [], "ttft": {}}
    deadline = time.time() + args.budget_s
    grow = (args.warmup + args.steps) * 2 * len(args.batches.split(",")) + 16  # decode growth
    per_seq_blocks = lambda c: math.ceil((c + grow) / eng.block_size)
    for c in [int(x) for x in args.contexts.split(",")]:
        if time.time() > deadline:
            res.setdefault("skipped", []).append(f"context {c}: out of time")
            continue
        eng.abort_all()
        ttfts = []
        reps = args.ttft_reps if c <= 32768 else 1
        base = None
        if c > args.prefill_max:
            prompt = torch.randint(0, cfg.vocab, (c,), generator=rng).tolist()
            base = eng.adopt_synthetic(prompt, eng.max_model_len - c, seed=c)
            reps = 0
        for _ in range(reps):
            prompt = torch.randint(0, cfg.vocab, (c,), generator=rng).tolist()
            r = eng.add(prompt, eng.max_model_len - c)  # decodes until stopped
            while not r.output:
                eng.step()
            ttfts.append((r.t_first - r.t_arrival) * 1e3)
            if base is not None:
                eng.abort(base)
            base = r
        res["ttft"][str(c)] = {"median_ms": statistics.median(ttfts) if ttfts else None,
                               "all_ms": ttfts, "prefill": "real" if ttfts else "synthetic KV"}
        for b in [int(x) for x in args.batches.split(",")]:
            if b > eng.max_num_seqs or b * per_seq_blocks(c) > eng.kv.num_blocks - 1:
                res.setdefault("skipped", []).append(f"batch {b} x context {c}: KV does not fit "
                                                    f"({eng.kv.num_blocks} blocks)")
                continue
            if time.time() > deadline:
                res.setdefault("skipped", []).append(f"batch {b} x context {c}: out of time")
                continue
            have = len(eng.running)
            if have > b:  # batches ascend; a smaller one after a larger is not run
                continue
            eng.fork(base, b - have)
            cell = {"batch": b, "context": c}
            for mode, graphs in (("eager", False), ("graph", True)):
                eng.use_graphs = graphs
                for _ in range(args.warmup):
                    eng.step()
                dt, host = timed_steps(eng, args.steps)
                cell[mode] = {"tok_s": b * args.steps / dt, "tpot_ms": dt / args.steps * 1e3,
                              "host_ms": host / args.steps * 1e3}
            cell["ttft_ms"] = res["ttft"][str(c)]["median_ms"]
            cell["preempted"] = eng.stats["preempted"]
            res["cells"].append(cell)
            if rank == 0:
                log(f"ctx {c} batch {b}: eager {cell['eager']['tok_s']:.1f} tok/s, "
                    f"graph {cell['graph']['tok_s']:.1f} tok/s")
        eng.abort_all()
    res["tokens_sample"] = base.output[:16] if base else []
    return res


# ------------------------------------------------------------------------- tokens (TP identity)
def mode_tokens(args, eng, cfg, w, tok):
    """Greedy continuations of a few random prompts, eager then graphs: the token-identity check
    across library on/off and one GPU vs tensor parallel."""
    rng = torch.Generator().manual_seed(11)
    prompts = [torch.randint(0, cfg.vocab, (n,), generator=rng).tolist()
               for n in (3000, 5000, 9000, 17000)]
    out = {}
    for mode, graphs in (("eager", False), ("graph", True)):
        eng.use_graphs = graphs
        reqs = [eng.add(p, args.steps) for p in prompts]
        eng.run()
        out[mode] = [r.output for r in reqs]
        log(f"tokens: {mode} done ({dict(eng.stats)})")
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=("check", "fidelity", "speed", "tokens"))
    ap.add_argument("--json", required=True)
    ap.add_argument("--model", choices=("smollm2", "llama3-8b"), default="smollm2")
    ap.add_argument("--model-dir", default=os.path.join(CACHE, "model"))
    ap.add_argument("--layers", type=int, default=0, help="override the layer count (random weights)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--attention", choices=("vllm", "torch"), default="vllm")
    ap.add_argument("--release", default="0.33.0")
    ap.add_argument("--block-size", type=int, default=16)
    ap.add_argument("--gpu-util", type=float, default=0.9)
    ap.add_argument("--max-num-seqs", type=int, default=64)
    ap.add_argument("--max-batched-tokens", type=int, default=8192)
    ap.add_argument("--max-model-len", type=int, default=0)
    ap.add_argument("--max-kv-blocks", type=int, default=0)
    ap.add_argument("--contexts", default="2048,4096,8192")
    ap.add_argument("--depths", default="0.1,0.3,0.5,0.7,0.9")
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--text-seqs", type=int, default=16)
    ap.add_argument("--forced", type=int, default=32)
    ap.add_argument("--save-ref", default="")
    ap.add_argument("--ref", default="")
    ap.add_argument("--batches", default="1,8,32,64")
    ap.add_argument("--steps", type=int, default=32)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--ttft-reps", type=int, default=3)
    ap.add_argument("--budget-s", type=float, default=240)
    ap.add_argument("--prefill-max", type=int, default=32768,
                    help="speed: longer contexts get synthetic K/V instead of a real prefill")
    ap.add_argument("--check-prompts", default="500,1500,3000")
    ap.add_argument("--hang-s", type=float, default=0, help="dump stacks and exit after this long")
    ap.add_argument("--device", default="cuda", help="cpu: a smoke test with --attention torch")
    args = ap.parse_args()
    args.check_prompts = [int(x) for x in args.check_prompts.split(",")]
    args.max_model_len = args.max_model_len or None
    args.max_kv_blocks = args.max_kv_blocks or None

    t0 = time.time()
    if args.hang_s > 0:  # a hung process prints where every thread is, then exits
        faulthandler.dump_traceback_later(args.hang_s, exit=True)
    rank, tp, group = setup_dist(args.device)
    torch.manual_seed(0)
    with torch.inference_mode():
        cfg, w, tok = load_model(args, rank, tp)
        eng = make_engine(args, cfg, w, rank, tp, group)
        gpu = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
        res = {"mode": args.mode, "model": cfg.name, "tp": tp, "gpu": gpu,
               "memory": eng.memory, "setup_s": time.time() - t0,
               "library_env": {k: v for k, v in os.environ.items()
                               if k.startswith("GSA_") or k == "LD_PRELOAD"}}
        if args.mode == "check":
            res.update(mode_check(args, eng, cfg, w, tok))
        elif args.mode == "fidelity":
            res.update(mode_fidelity(args, eng, cfg, w, tok))
        elif args.mode == "speed":
            res.update(mode_speed(args, eng, cfg, w, tok, rank))
        else:
            res.update(mode_tokens(args, eng, cfg, w, tok))
        res["engine_stats"] = dict(eng.stats)
        res["wall_s"] = time.time() - t0
    if rank == 0:
        with open(args.json + ".tmp", "w") as f:
            json.dump(res, f)
        os.replace(args.json + ".tmp", args.json)
    log(f"rank {rank}: done in {time.time() - t0:.0f} s")
    if tp > 1:
        # destroy_process_group() can hang once NCCL collectives were captured in CUDA graphs
        # (pytorch/pytorch#115388): leave without tearing the communicator down.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


if __name__ == "__main__":
    main()
