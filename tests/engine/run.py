"""Runs the engine without and with the library, side by side, in one invocation: every
comparison is measured in the same run, each configuration in its own process (the library is
configured at process start). Writes JSON lines and prints tables.

  run.py check    --out DIR                    the model is right (dense, no library)
  run.py fidelity --out DIR [--ratios ..]     passkey / top-1 agreement / KL, dense vs GSA
  run.py speed    --out DIR [--tp N]          decode tok/s and TTFT, dense vs GSA (8B geometry)
  run.py tokens   --out DIR [--tp N]          token identity: no library vs GSA_RATIO=1
                                              (and, with --tp > 1, vs one GPU)
"""

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
LIB = os.path.abspath(os.environ.get("ENGINE_GSA_LIB") or os.path.join(REPO, "build", "libgsa_preload.so"))


def base_env():
    env = {k: v for k, v in os.environ.items() if not k.startswith("GSA_") and k != "LD_PRELOAD"}
    env["PYTHONUNBUFFERED"] = "1"
    # NVLink multicast stays off (a program using it can take a shared host's GPUs down)
    env.update(NCCL_NVLS_ENABLE="0", TORCH_SYMM_MEM_DISABLE_MULTICAST="1", NVSHMEM_DISABLE_NVLS="1")
    return env


def lib_env(**gsa):
    if not os.path.isfile(LIB):
        raise SystemExit(f"{LIB} not built (make)")
    env = base_env()
    env["LD_PRELOAD"] = LIB
    # ENGINE_GSA_ENV: more GSA_* settings for every run with the library, e.g. "GSA_LOG=info"
    for kv in os.environ.get("ENGINE_GSA_ENV", "").split():
        k, _, v = kv.partition("=")
        if k.startswith("GSA_"):
            env[k] = v
    for k, v in gsa.items():
        env[f"GSA_{k.upper()}"] = str(v)
    return env


_port = [29500 + os.getpid() % 1000]


def worker(out, name, mode, env, wargs, tp=1, timeout=None):
    """Runs worker.py (tp processes for tensor parallel); returns its JSON or an error dict."""
    js = os.path.join(out, f"{name}.json")
    logf = os.path.join(out, f"{name}.log")
    if os.path.exists(js):
        os.unlink(js)
    # ENGINE_WORKER_EXTRA: extra worker options (e.g. "--device cpu --attention torch" for a
    # CPU smoke test of the driver)
    timeout = timeout or float(os.environ.get("ENGINE_WORKER_TIMEOUT_S", "900"))
    wargs = wargs + ["--hang-s", str(max(10, timeout - 15))]
    cmd = [sys.executable, os.path.join(HERE, "worker.py"), mode, "--json", js] + wargs + \
        os.environ.get("ENGINE_WORKER_EXTRA", "").split()
    t0 = time.time()
    procs = []
    with open(logf, "w") as lf:
        _port[0] += 1
        for rank in range(tp):
            e = dict(env)
            if tp > 1:
                e.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(tp),
                         MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_port[0]))
            procs.append(subprocess.Popen(cmd, env=e, stdout=lf, stderr=subprocess.STDOUT))
        rcs = []
        for p in procs:
            try:
                rcs.append(p.wait(timeout=max(1, timeout - (time.time() - t0))))
            except subprocess.TimeoutExpired:
                for q in procs:
                    q.kill()
                rcs.append("timeout")
    took = time.time() - t0
    tail = open(logf, errors="replace").read()[-3000:]
    if any(rc != 0 for rc in rcs) or not os.path.isfile(js):
        print(f"  {name}: FAILED (exit {rcs}) after {took:.0f} s; log tail:\n{tail}", flush=True)
        return {"error": f"exit {rcs}", "log_tail": tail}
    print(f"  {name}: done in {took:.0f} s", flush=True)
    return json.load(open(js))


def settings(res):
    """GSA_* settings of a run other than ratio and policy (empty: the library's defaults)."""
    env = res.get("library_env", {})
    other = {k: v for k, v in env.items() if k.startswith("GSA_") and
             k not in ("GSA_RATIO", "GSA_POLICY", "GSA_TRACE")}
    return {"settings": other} if other else {}


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def write_jsonl(path, rows):
    with open(path, "w") as f:
        for r in rows:
            f.write(json.dumps(r, sort_keys=True) + "\n")
    print(f"wrote {len(rows)} rows to {path}")


def table(headers, rows):
    w = [max(len(str(h)), *(len(str(r[i])) for r in rows)) if rows else len(str(h))
         for i, h in enumerate(headers)]
    line = lambda r: "| " + " | ".join(str(c).rjust(w[i]) for i, c in enumerate(r)) + " |"
    print(line(headers))
    print("|" + "|".join("-" * (x + 2) for x in w) + "|")
    for r in rows:
        print(line(r))


# ------------------------------------------------------------------------- check
def cmd_check(a):
    res = worker(a.out, "check", "check", base_env(), ["--model-dir", a.model_dir])
    if "error" in res:
        return 1
    for c in res["chat"]:
        print(f"  Q: {c['q']}\n  A: {c['a']!r}")
    table(["prompt", "positions", "max |dlogit|", "logit std", "top-1 agree", "KL(ref||engine)"],
          [[r["prompt"], r["positions"], f"{r['max_abs_diff']:.3f}", f"{r['logit_std']:.2f}",
            f"{r['top1_agree']:.3f}", f"{r['kl_ref_engine']:.2e}"] for r in res["logits_vs_reference"]])
    print(f"  eager == CUDA graphs (tokens): {res['eager_equals_graph']}")
    ok = res["eager_equals_graph"] and all(r["top1_agree"] >= 0.95 and r["kl_ref_engine"] < 0.01
                                           for r in res["logits_vs_reference"])
    print("check:", "PASS" if ok else "FAIL")
    return 0 if ok else 1


# ------------------------------------------------------------------------- fidelity
def cmd_fidelity(a):
    ref = os.path.join(a.out, "ref")
    os.makedirs(ref, exist_ok=True)
    common = ["--model-dir", a.model_dir, "--contexts", a.contexts, "--trials", str(a.trials),
              "--text-seqs", str(a.text_seqs)]
    runs = [("dense", "dense", 1.0, base_env(), ["--save-ref", ref])]
    if not a.configs:
        runs.append(("gsa_ratio1", "mean", 1.0, lib_env(ratio=1.0), ["--ref", ref]))
        for pol in a.policies.split(","):
            for r in a.ratios.split(","):
                extra = {}
                if pol == "mean" and float(r) == 0.3:
                    extra["trace"] = os.path.join(a.out, "fidelity_mean_0.3.gsatrace")
                runs.append((f"gsa_{pol}_{r}", pol, float(r), lib_env(ratio=r, policy=pol, **extra),
                             ["--ref", ref]))
    # --configs "mean,0.3,min_tokens=0;mean,0.3,local_blocks=8": other GSA_* settings, instead
    # of the grid; --add-configs: the same, after the grid
    for spec in [x for x in (a.configs or a.add_configs).split(";") if x]:
        f = spec.split(",")
        pol, r, kv = f[0], f[1], dict(x.split("=", 1) for x in f[2:])
        name = "gsa_" + "_".join([pol, r] + [f"{k}{v}" for k, v in kv.items()])
        runs.append((name, pol, float(r), lib_env(ratio=r, policy=pol, **kv), ["--ref", ref]))
    results = {}
    for name, pol, ratio, env, extra in runs:
        results[name] = (pol, ratio, worker(a.out, name, "fidelity", env, common + extra))
    dense = results["dense"][2]
    if "error" in dense:
        return 1
    rows, out = [], []
    ident = results.get("gsa_ratio1", (0, 0, {"error": "not run"}))[2]
    same = ("error" not in ident and ident["passkey_outputs"] == dense["passkey_outputs"] and
            all(ident["text"][c]["predicted"] == dense["text"][c]["predicted"] for c in dense["text"]))
    for name, (pol, ratio, res) in results.items():
        if "error" in res:
            continue
        for c, cell in res["passkey"].items():
            policy = "dense" if name in ("dense", "gsa_ratio1") else pol
            if name == "gsa_ratio1":
                continue
            out.append(dict(model=dense["model"], policy=policy, ratio=ratio, context=int(c),
                            metric="passkey_acc", value=cell["correct"] / cell["trials"],
                            trials=cell["trials"], by_depth=cell["by_depth"], gpu=res["gpu"],
                            **settings(res)))
        for c, cell in res["text"].items():
            if name == "dense":
                continue
            policy = "dense" if name == "gsa_ratio1" else pol
            note = "library loaded at GSA_RATIO=1 vs no library" if name == "gsa_ratio1" else None
            for metric, key in (("top1_agree", "top1_agree"), ("kl", "kl_mean")):
                row = dict(model=dense["model"], policy=policy, ratio=ratio, context=int(c),
                           metric=metric, value=cell[key], trials=cell["positions"],
                           sequences=cell["sequences"], gpu=res["gpu"], **settings(res))
                if metric == "kl":
                    row["kl_p95"] = cell["kl_p95"]
                if note:
                    row["note"] = note
                out.append(row)
    write_jsonl(os.path.join(a.out, a.fidelity_jsonl), out)
    ctxs = sorted({r["context"] for r in out})
    trows = []
    for name, (pol, ratio, res) in results.items():
        if "error" in res:
            trows.append([name, pol, ratio, "error", "", "", ""])
            continue
        for c in ctxs:
            pk = res["passkey"].get(str(c), {})
            tx = res["text"].get(str(c), {})
            trows.append([name, pol, ratio, c,
                          f"{pk.get('correct', 0)}/{pk.get('trials', 0)}",
                          f"{tx['top1_agree']:.3f}" if "top1_agree" in tx else "-",
                          f"{tx['kl_mean']:.4f}" if "kl_mean" in tx else "-"])
    table(["run", "policy", "ratio", "context", "passkey", "top-1 agree", "KL(dense||run)"], trows)
    mem = [(n, r[2]["memory"]["num_blocks"]) for n, r in results.items() if "memory" in r[2]]
    print("KV blocks per run (memory honesty: the library's share shows as used):", mem)
    print(f"GSA_RATIO=1 identical to no library (passkey outputs, teacher-forced argmax): {same}")
    if "max_abs_logprob_diff" in ident.get("text", {}).get(str(ctxs[0]), {}):
        print("  max |log-prob diff| at ratio 1:",
              max(ident["text"][str(c)]["max_abs_logprob_diff"] for c in ctxs))
    return 0 if (same or a.configs) else 1


# ------------------------------------------------------------------------- speed
def cmd_speed(a):
    wargs = ["--model", "llama3-8b", "--contexts", a.contexts, "--batches", a.batches,
             "--steps", str(a.steps), "--budget-s", str(a.budget_s), "--prefill-max", str(a.prefill_max),
             "--max-model-len", str(max(int(c) for c in a.contexts.split(",")) + 2048)]
    if a.layers:
        wargs += ["--layers", str(a.layers)]
    dense = worker(a.out, f"speed_dense_tp{a.tp}", "speed", base_env(), wargs, tp=a.tp)
    gsa = worker(a.out, f"speed_gsa_tp{a.tp}", "speed", lib_env(ratio=a.ratio), wargs, tp=a.tp)
    thru = None
    if a.passthrough:
        thru = worker(a.out, f"speed_passthrough_tp{a.tp}", "speed", lib_env(disable=1), wargs, tp=a.tp)
    if "error" in dense or "error" in gsa:
        return 1
    gcells = {(c["batch"], c["context"]): c for c in gsa["cells"]}
    tcells = {(c["batch"], c["context"]): c for c in (thru or {}).get("cells", [])}
    rows, trows = [], []
    for d in dense["cells"]:
        g = gcells.get((d["batch"], d["context"]))
        if not g:
            continue
        t = tcells.get((d["batch"], d["context"]))
        for mode in ("eager", "graph"):
            row = dict(geometry=dense["model"] + (f"-{a.layers}L" if a.layers else ""),
                       batch=d["batch"], context=d["context"], mode=mode, tp=a.tp,
                       ratio=a.ratio, dense_tok_s=d[mode]["tok_s"], gsa_tok_s=g[mode]["tok_s"],
                       dense_tpot_ms=d[mode]["tpot_ms"], gsa_tpot_ms=g[mode]["tpot_ms"],
                       dense_host_ms=d[mode].get("host_ms"), gsa_host_ms=g[mode].get("host_ms"),
                       dense_ttft_ms=d["ttft_ms"], gsa_ttft_ms=g["ttft_ms"],
                       prefill=dense["ttft"][str(d["context"])].get("prefill", "real"),
                       gpu=dense["gpu"], steps=a.steps)
            if t:
                row.update(passthrough_tok_s=t[mode]["tok_s"], passthrough_host_ms=t[mode].get("host_ms"))
            rows.append(row)
            trows.append([d["context"], d["batch"], mode, f"{d[mode]['tok_s']:.1f}",
                          f"{g[mode]['tok_s']:.1f}", f"{g[mode]['tok_s'] / d[mode]['tok_s']:.2f}x",
                          f"{d[mode]['tpot_ms']:.2f}", f"{g[mode]['tpot_ms']:.2f}",
                          fmt(d[mode].get("host_ms"), ".1f"), fmt(g[mode].get("host_ms"), ".1f"),
                          fmt(t[mode]["tok_s"], ".1f") if t else "-",
                          fmt(d["ttft_ms"], ".0f"), fmt(g["ttft_ms"], ".0f")])
    write_jsonl(os.path.join(a.out, f"engine_speed_tp{a.tp}.jsonl"), rows)
    table(["context", "batch", "mode", "dense tok/s", "GSA tok/s", "speed-up", "dense TPOT ms",
           "GSA TPOT ms", "dense host ms", "GSA host ms", "pass-through tok/s", "dense TTFT ms",
           "GSA TTFT ms"], trows)
    for name, r in (("dense", dense), ("gsa", gsa)):
        for s in r.get("skipped", []):
            print(f"  {name} skipped: {s}")
        print(f"  {name}: KV {r['memory'].get('num_blocks')} blocks, stats {r['engine_stats']}")
    return 0


# ------------------------------------------------------------------------- tokens
def cmd_tokens(a):
    wargs = ["--model", "llama3-8b", "--steps", str(a.steps), "--max-model-len", "20480"]
    if a.layers:
        wargs += ["--layers", str(a.layers)]
    runs = {"dense": worker(a.out, f"tokens_dense_tp{a.tp}", "tokens", base_env(), wargs, tp=a.tp),
            "ratio1": worker(a.out, f"tokens_ratio1_tp{a.tp}", "tokens", lib_env(ratio=1.0), wargs,
                             tp=a.tp)}
    if a.tp > 1:
        env = base_env()
        env["CUDA_VISIBLE_DEVICES"] = "0"
        runs["one_gpu"] = worker(a.out, "tokens_dense_tp1", "tokens", env, wargs)
    if any("error" in r for r in runs.values()):
        return 1
    d = runs["dense"]
    res = {"tp": a.tp, "gpu": d["gpu"],
           "ratio1_identical": {m: runs["ratio1"][m] == d[m] for m in ("eager", "graph")},
           "eager_equals_graph": d["eager"] == d["graph"]}
    if a.tp > 1:
        o = runs["one_gpu"]
        pairs = [(x, y) for s1, s2 in zip(d["eager"], o["eager"]) for x, y in zip(s1, s2)]
        first = [next((i for i, (x, y) in enumerate(zip(s1, s2)) if x != y), len(s1))
                 for s1, s2 in zip(d["eager"], o["eager"])]
        res["tp_vs_one_gpu"] = {"identical": d["eager"] == o["eager"],
                                "token_agreement": sum(x == y for x, y in pairs) / len(pairs),
                                "first_divergence": first}
        res["ratio1_tp_vs_one_gpu_dense"] = runs["ratio1"]["eager"] == o["eager"]
    print(json.dumps(res, indent=1))
    with open(os.path.join(a.out, f"tokens_tp{a.tp}.json"), "w") as f:
        json.dump(res, f, indent=1)
    return 0 if all(res["ratio1_identical"].values()) else 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=("check", "fidelity", "speed", "tokens"))
    ap.add_argument("--out", default=os.path.join(REPO, "build", "engine"))
    ap.add_argument("--model-dir", default="/tmp/gsa_engine_cache/model")
    ap.add_argument("--contexts", default=None)
    ap.add_argument("--ratios", default="0.1,0.2,0.3,0.5")
    ap.add_argument("--policies", default="mean,quest")
    ap.add_argument("--configs", default="", help='fidelity: "policy,ratio[,key=value...];..."')
    ap.add_argument("--add-configs", default="")
    ap.add_argument("--fidelity-jsonl", default="engine_fidelity.jsonl")
    ap.add_argument("--passthrough", action="store_true",
                    help="speed: also a run with the library loaded but GSA_DISABLE=1")
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--text-seqs", type=int, default=16)
    ap.add_argument("--batches", default="1,8,32,64")
    ap.add_argument("--ratio", type=float, default=0.3)
    ap.add_argument("--steps", type=int, default=32)
    ap.add_argument("--layers", type=int, default=0)
    ap.add_argument("--budget-s", type=float, default=240)
    ap.add_argument("--tp", type=int, default=1)
    ap.add_argument("--prefill-max", type=int, default=32768)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    if a.contexts is None:
        a.contexts = "2048,4096,8192" if a.cmd == "fidelity" else "8192,32768,131072"
    print(f"engine {a.cmd}: {' '.join(sys.argv[1:])}", flush=True)
    sys.exit({"check": cmd_check, "fidelity": cmd_fidelity, "speed": cmd_speed,
              "tokens": cmd_tokens}[a.cmd](a))


if __name__ == "__main__":
    main()
