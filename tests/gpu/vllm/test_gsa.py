#!/usr/bin/env python3
"""GSA end-to-end tests on vLLM's real Triton paged-attention kernels (tests/gpu/vllm/README.md).

This script never loads or names the preload library: run it with and without LD_PRELOAD;
it sees GSA only through the kernels' outputs (and reads the GSA_* variables, which both it
and the library take as their configuration).

  test_gsa.py exact   --release R [--ratio X] [--save-dense P | --compare-dense P]
  test_gsa.py needles --release R [--out recall.jsonl]
  test_gsa.py graph   --release R [--ratio X]
  test_gsa.py bench   --release R --out raw.jsonl
  test_gsa.py bench-merge --nolib A.jsonl --lib B.jsonl [--out merged.jsonl]

Each test subcommand prints PASS/FAIL lines and ends with "vllm-<cmd>-<release>: N passed,
N failed"; the exit status is 1 on any failure.
"""

import argparse
import json
import math
import os
import statistics
import sys
import time
import traceback
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

try:
    sys.stdout.reconfigure(line_buffering=True)
except Exception:
    pass


def log(*a):
    print(*a, flush=True)


class Results:
    def __init__(self, tag):
        self.tag = tag
        self.passed = 0
        self.failed = 0

    def check(self, ok, name, detail=""):
        log(f"{'PASS' if ok else 'FAIL'} {name}" + (f": {detail}" if detail else ""))
        if ok:
            self.passed += 1
        else:
            self.failed += 1
        return ok

    def error(self, name, exc):
        log(f"FAIL {name}: {type(exc).__name__}: {exc}")
        for line in traceback.format_exc().rstrip().splitlines()[-12:]:
            log("     " + line)
        self.failed += 1

    def finish(self):
        log(f"{self.tag}: {self.passed} passed, {self.failed} failed")
        return 0 if self.failed == 0 and self.passed > 0 else 1


def case_seed(base, name):
    return (base * 1000003 + zlib.crc32(name.encode())) % (2 ** 31)


def need_cuda():
    try:
        import torch
    except ImportError as e:
        log(f"FAIL setup: torch is not importable: {e}")
        sys.exit(1)
    if not torch.cuda.is_available():
        log("FAIL setup: no CUDA device visible to torch")
        sys.exit(1)
    return torch


def load_release(args):
    from loader import load_release as _load, LoaderError
    try:
        rel = _load(args.release, args.cache_dir)
    except LoaderError as e:
        log(f"FAIL setup: {e}")
        sys.exit(1)
    return rel


def layout_of(args, rel):
    return rel.native_layout if args.layout == "native" else args.layout


def gsa_env():
    return {k: v for k, v in sorted(os.environ.items()) if k.startswith("GSA_")}


def banner(cmd, args, rel, params=None):
    import torch
    import triton
    log(f"== vllm {cmd}: release {rel.version} ({rel.module_name}), layout "
        f"{layout_of(args, rel)}, GPU {torch.cuda.get_device_name()}, torch {torch.__version__}, "
        f"triton {triton.__version__}")
    if params is not None:
        log(f"   reference params: {params}")
    log(f"   GSA_* environment: {gsa_env() or '(none)'}")


# ---------------------------------------------------------------------------------------
# Shared case machinery
# ---------------------------------------------------------------------------------------

def needle_positions(sc, s, sel_plan, count, params):
    """`count` distinct random middle blocks of sequence s (never sink or local blocks)."""
    import torch
    lo, hi = params.sink_blocks, sel_plan.n - params.local_blocks
    if hi - lo <= 0 or count <= 0:
        return []
    count = min(count, hi - lo)
    perm = torch.randperm(hi - lo, generator=sc.cpu_gen)[:count] + lo
    return sorted(perm.tolist())


def settle(sc, ref, sels, min_margin, perturb, max_tries=60):
    """Redraws (or, for needle cases, perturbs) the query row of every sparse sequence whose
    selection margin is below min_margin; returns the indices still ambiguous."""
    ambiguous = []
    for s in range(len(sels)):
        tries = 0
        while sels[s].sparse and sels[s].rel_margin < min_margin and tries < max_tries:
            sc.new_query_row(s, noise=0.2 if perturb else None)
            sels[s] = ref.select_seq(s, sc.q[s])
            tries += 1
        if sels[s].sparse and sels[s].rel_margin < min_margin:
            ambiguous.append(s)
    return ambiguous


def check_against_selection(res, name, sc, out, sels, params, tol, ambiguous=(),
                            require_discriminating=True, ref_obj=None):
    """out (bf16) must match the float64 reference over each sequence's gsa_ref selection
    and, for sparse sequences, differ from the dense reference."""
    import torch
    from paged import reference, rel_l2, max_abs
    from gsa_ref import keep_lists
    kl = keep_lists(sels)
    ref_s = reference(sc.q, sc.key_cache, sc.value_cache, sc.block_table, sc.seq_lens, kl,
                      sc.scale)
    ref_d = reference(sc.q, sc.key_cache, sc.value_cache, sc.block_table, sc.seq_lens, None,
                      sc.scale)
    ok = True
    lines = []
    discriminating = 0
    looks_dense = 0
    sparse_seqs = 0
    for s, sel in enumerate(sels):
        if s in ambiguous:
            lines.append(f"seq {s}: skipped (selection margin {sel.rel_margin:.2e})")
            continue
        es = rel_l2(out[s], ref_s[s])
        ms = max_abs(out[s], ref_s[s])
        ed = rel_l2(out[s], ref_d[s])
        sep = rel_l2(ref_s[s], ref_d[s])
        atol = 0.03 * float(ref_s[s].abs().max().item()) + 1e-3
        good = es < tol and ms < atol
        tag = "sparse" if sel.sparse else "dense"
        desc = (f"seq {s} L={sel.plan.length} {tag} keep {len(sel.keep)}/{sel.plan.n}: "
                f"vs selection relL2 {es:.2e} maxabs {ms:.2e} (tol {tol:.0e}/{atol:.1e}); "
                f"vs dense relL2 {ed:.2e} (selection vs dense {sep:.2e})")
        if sel.sparse:
            sparse_seqs += 1
            if sep >= 3 * tol:
                discriminating += 1
                good = good and ed > 2 * tol
            else:
                desc += " [selection too close to dense to discriminate]"
            if ed < tol and sep >= 3 * tol:
                looks_dense += 1
        if not good:
            ok = False
            desc = "BAD " + desc
            if sel.sparse and ref_obj is not None:
                # Which policy, if any, explains the output?
                for pol in ("mean", "quest"):
                    if pol == params.policy:
                        continue
                    alt = ref_obj.select_seq(s, sc.q[s], pol)
                    r = reference(sc.q[s:s + 1], sc.key_cache, sc.value_cache,
                                  sc.block_table[s:s + 1], sc.seq_lens[s:s + 1], [alt.keep],
                                  sc.scale)
                    e = rel_l2(out[s], r[0])
                    desc += f"; vs policy {pol} selection relL2 {e:.2e}"
        lines.append(desc)
    if require_discriminating and params.ratio < 1 and sparse_seqs and discriminating == 0:
        ok = False
        lines.append("no sequence of this case can tell sparse from dense (test design)")
    hint = ""
    if not ok and looks_dense:
        hint = (f" -- {looks_dense} sparse sequence(s) got the DENSE result: is the library "
                f"preloaded (LD_PRELOAD) with GSA_RATIO={params.ratio}?")
    res.check(ok, name, f"{len(sels)} seqs, {sparse_seqs} sparse, {discriminating} "
              f"discriminating{hint}")
    if not ok or os.environ.get("GSA_TEST_VERBOSE"):
        for line in lines:
            log("     " + line)
    return ok


# ---------------------------------------------------------------------------------------
# exact
# ---------------------------------------------------------------------------------------

def exact_cases(block_sizes, quick=False):
    cases = []
    for B in block_sizes:
        cases.append(dict(name=f"random-b1-32k-B{B}", B=B, lens=[32768 + 5], kind="random"))
        cases.append(dict(name=f"random-b4-mixed-B{B}", B=B,
                          lens=[4096 + 17, 9000, 16384, 1500], kind="random"))
        cases.append(dict(name=f"needles-b8-B{B}", B=B, lens=None, batch=8,
                          lo=6000, hi=12000, kind="needles"))
        if not quick:
            # more sequences than the 3D thresholds (0.10.1: 13, 0.33.0: 16): the 2D kernel
            cases.append(dict(name=f"random-b20-2d-B{B}", B=B, lens=None, batch=20,
                              lo=3000, hi=6000, kind="random"))
            cases.append(dict(name=f"random-qkvview-b2-B{B}", B=B, lens=[8192, 12345],
                              kind="random", qkv_view=True))
    return cases


def build_case(case, args, seed, layout, params):
    import torch
    from paged import Decode
    from gsa_ref import GsaRef, plan
    lens = case.get("lens")
    if lens is None:
        g = torch.Generator()
        g.manual_seed(seed)
        lens = torch.randint(case["lo"], case["hi"] + 1, (case["batch"],), generator=g).tolist()
    sc = Decode(lens, case["B"], layout=layout, seed=seed, qkv_view=case.get("qkv_view", False))
    needles = [[] for _ in lens]
    if case["kind"] == "needles":
        for s, L in enumerate(lens):
            p = plan(L, case["B"], params, 1, sc.block_table.shape[1])
            if p.sparse:
                want = p.keep - params.sink_blocks - params.local_blocks
                # about 96 needle tokens: they hold most, not all, of the attention mass
                count = case.get("needles") or max(1, min(6, want // 2, 96 // case["B"]))
                needles[s] = needle_positions(sc, s, p, count, params)
                sc.plant_needles(s, needles[s], alpha=case.get("alpha", args.needle_alpha))
    ref = GsaRef(sc.key_cache, sc.block_table, sc.seq_lens, case["B"], params)
    sels = ref.select(sc.q)
    amb = settle(sc, ref, sels, args.min_margin, perturb=case["kind"] == "needles")
    return sc, ref, sels, amb, needles


def cmd_exact(args):
    torch = need_cuda()
    from gsa_ref import GsaParams
    from paged import reference, rel_l2, max_abs
    rel = load_release(args)
    params = GsaParams.from_env(ratio=args.ratio, policy=args.policy)
    res = Results(f"vllm-exact-{rel.version}")
    banner("exact", args, rel, params)
    layout = layout_of(args, rel)
    dense_mode = params.ratio >= 1.0
    saved = {}
    compare = None
    if args.compare_dense:
        try:
            compare = torch.load(args.compare_dense, map_location="cpu")
        except Exception as e:
            res.check(False, "load --compare-dense file", f"{args.compare_dense}: {e}")
            return res.finish()
    if (args.save_dense or args.compare_dense) and not dense_mode:
        log("NOTE --save-dense/--compare-dense compare outputs bit for bit; meant for --ratio 1")
    for i, case in enumerate(exact_cases(args.block_sizes, args.quick)):
        name = case["name"]
        try:
            t0 = time.time()
            seed = case_seed(args.seed, name)  # same inputs with and without --quick
            sc, ref, sels, amb, needles = build_case(case, args, seed, layout, params)
            path = rel.predicted_path(sc.num_seqs, sc.num_q_heads, sc.num_kv_heads)
            # The engine's first step on new buffers: the library prepares its buffers and,
            # for kernels whose arguments do not reveal the number of query heads (0.10's
            # 3D kernel), learns it from the reduction that follows; the checked step is
            # the second, as every step after an engine's first is.
            sc.run(rel)
            out = sc.run(rel).clone()
            torch.cuda.synchronize()
            if not bool(torch.isfinite(out.float()).all()):
                res.check(False, name, "output has non-finite values")
                continue
            if dense_mode:
                ref_d = reference(sc.q, sc.key_cache, sc.value_cache, sc.block_table,
                                  sc.seq_lens, None, sc.scale)
                errs = [rel_l2(out[s], ref_d[s]) for s in range(sc.num_seqs)]
                mabs = max(max_abs(out[s], ref_d[s]) for s in range(sc.num_seqs))
                res.check(max(errs) < args.tol, f"{name} dense ({path})",
                          f"max relL2 vs dense reference {max(errs):.2e}, maxabs {mabs:.2e}")
            else:
                check_against_selection(res, f"{name} ({path})", sc, out, sels, params,
                                        args.tol, amb, ref_obj=ref)
            digest = sc.inputs_digest()
            if args.save_dense:
                saved[name] = {"out": out.cpu(), "digest": digest}
            if compare is not None:
                prev = compare.get("cases", {}).get(name)
                if prev is None:
                    res.check(False, f"{name} bit-identical to saved", "not in the saved file")
                elif prev["digest"] != digest:
                    res.check(False, f"{name} bit-identical to saved",
                              f"inputs differ from the saved run ({prev['digest']} vs {digest})")
                else:
                    a = prev["out"].view(torch.int16)
                    b = out.cpu().view(torch.int16)
                    same = a.shape == b.shape and bool(torch.equal(a, b))
                    ndiff = int((a != b).sum().item()) if a.shape == b.shape else -1
                    res.check(same, f"{name} bit-identical to saved",
                              "identical" if same else f"{ndiff} elements differ, max abs "
                              f"{max_abs(prev['out'], out.cpu()):.3e}")
            log(f"     ({name}: {time.time() - t0:.1f}s)")
        except Exception as e:  # keep going: one broken case must not hide the others
            res.error(name, e)
    if args.save_dense:
        torch.save({"release": rel.version, "ratio": params.ratio, "cases": saved},
                   args.save_dense)
        log(f"NOTE saved {len(saved)} outputs to {args.save_dense}")
    return res.finish()


# ---------------------------------------------------------------------------------------
# needles
# ---------------------------------------------------------------------------------------

def recall_rows(sc, ref, s, needles, params, meta):
    """Attention-mass recall of the gsa_ref selection (mean and quest) against the blocks
    with the most true attention mass under the same budget."""
    import torch
    from paged import block_mass
    L = int(sc.seq_lens[s].item())
    mass = block_mass(sc.q[s], sc.key_cache, sc.value_cache, sc.block_table[s], L, sc.scale)
    rows = []
    p = ref.plans[s]
    if not p.sparse:
        return rows
    lo, hi = params.sink_blocks, p.n - params.local_blocks
    want = p.keep - params.sink_blocks - params.local_blocks
    mid = mass[lo:hi]
    top = (torch.sort(mid, descending=True, stable=True).indices[:want] + lo).tolist()
    oracle = sorted(list(range(lo)) + top + list(range(hi, p.n)))
    oracle_mass = float(mass[oracle].sum().item())
    for pol in ("mean", "quest"):
        sel = ref.select_seq(s, sc.q[s], pol)
        kept = set(sel.keep)
        sel_mass = float(mass[sel.keep].sum().item())
        rows.append(dict(meta, seq=s, policy=pol, context=L, n=p.n, keep=p.keep,
                         needles=len(needles),
                         needle_recall=(sum(b in kept for b in needles) / len(needles)
                                        if needles else None),
                         needle_mass=float(mass[needles].sum().item()) if needles else 0.0,
                         selected_mass=sel_mass, oracle_mass=oracle_mass,
                         mass_recall=sel_mass / oracle_mass if oracle_mass > 0 else None,
                         set_recall=len(kept & set(oracle)) / len(oracle)))
    return rows


def needles_cases(block_sizes):
    cases = []
    for B in block_sizes:
        for ctx in (8192 + 3, 32768 + 7):
            cases.append(dict(name=f"needles-b4-{ctx // 1024}k-B{B}", B=B, lens=[ctx] * 4,
                              kind="needles", needles=8 if B <= 16 else 4))
        cases.append(dict(name=f"random-b4-16k-B{B}", B=B, lens=[16384 + 1] * 4, kind="random"))
    return cases


def cmd_needles(args):
    torch = need_cuda()
    from gsa_ref import GsaParams
    rel = load_release(args)
    params = GsaParams.from_env(ratio=args.ratio, policy=args.policy)
    res = Results(f"vllm-needles-{rel.version}")
    banner("needles", args, rel, params)
    layout = layout_of(args, rel)
    if params.ratio >= 1:
        log("NOTE ratio >= 1: nothing is dropped; checking dense outputs only")
    rows = []
    for i, case in enumerate(needles_cases(args.block_sizes)):
        name = case["name"]
        try:
            t0 = time.time()
            seed = case_seed(args.seed, name)
            sc, ref, sels, amb, needles = build_case(case, args, seed, layout, params)
            path = rel.predicted_path(sc.num_seqs, sc.num_q_heads, sc.num_kv_heads)
            # The engine's first step on new buffers: the library prepares its buffers and,
            # for kernels whose arguments do not reveal the number of query heads (0.10's
            # 3D kernel), learns it from the reduction that follows; the checked step is
            # the second, as every step after an engine's first is.
            sc.run(rel)
            out = sc.run(rel).clone()
            torch.cuda.synchronize()
            if case["kind"] == "needles" and params.ratio < 1:
                # the selection itself must find every needle (mean and quest)
                for pol in ("mean", "quest"):
                    missed = []
                    for s in range(sc.num_seqs):
                        if needles[s]:
                            sel = ref.select_seq(s, sc.q[s], pol)
                            missed += [(s, b) for b in needles[s] if b not in sel.keep]
                    total = sum(len(n) for n in needles)
                    detail = (f"{total - len(missed)}/{total} needles kept"
                              + (f", missed {missed[:8]}" if missed else ""))
                    if pol == "mean":
                        res.check(not missed and total > 0,
                                  f"{name} gsa_ref[{pol}] keeps every needle", detail)
                    else:
                        # Quest's per-channel bound loosens as blocks grow: reported (and
                        # in the recall rows), not required.
                        log(f"NOTE {name} gsa_ref[{pol}]: {detail}")
            check_against_selection(res, f"{name} output ({path})", sc, out, sels, params,
                                    args.tol, amb, require_discriminating=False, ref_obj=ref)
            meta = dict(release=rel.version, kernel=f"triton-unified-{rel.version}",
                        case=name, kind=case["kind"], block_size=case["B"], batch=sc.num_seqs,
                        ratio=params.ratio)
            for s in range(sc.num_seqs):
                rows += recall_rows(sc, ref, s, needles[s], params, meta)
            log(f"     ({name}: {time.time() - t0:.1f}s)")
        except Exception as e:
            res.error(name, e)
    # summary
    for kind in ("needles", "random"):
        for pol in ("mean", "quest"):
            rs = [r for r in rows if r["kind"] == kind and r["policy"] == pol]
            if rs:
                mr = statistics.mean(r["mass_recall"] for r in rs if r["mass_recall"] is not None)
                sr = statistics.mean(r["set_recall"] for r in rs)
                nr = [r["needle_recall"] for r in rs if r["needle_recall"] is not None]
                log(f"INFO recall {kind:7s} {pol:5s}: mass {mr:.4f}  set {sr:.4f}"
                    + (f"  needles {statistics.mean(nr):.4f}" if nr else "") + f"  ({len(rs)} seqs)")
    if args.out:
        with open(args.out, "w") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")
        log(f"NOTE wrote {len(rows)} recall rows to {args.out}")
    return res.finish()


# ---------------------------------------------------------------------------------------
# graph
# ---------------------------------------------------------------------------------------

def graph_steps(sc, start_lens, params, steps=8):
    """Inputs of each step: (q, block_table, seq_lens), all as separate device tensors. Lengths
    grow by one token per step (rows own blocks for the last step); step 4 reverses the order
    of the sequences; from step 5 on, sequence 0 has four middle blocks swapped for spare
    blocks, one holding keys aligned with its query (so the selection changes)."""
    import torch
    S = sc.num_seqs
    base_bt = sc.block_table.clone()
    swapped_bt = base_bt.clone()
    B = sc.block_size
    n0 = -(-(start_lens[0] + steps - 1) // B)
    mid = list(range(params.sink_blocks + 1, n0 - params.local_blocks - 1))
    swap_at = [mid[len(mid) * k // 5] for k in range(1, 5)] if len(mid) >= 8 else []
    spares = sc.spare[:len(swap_at)]
    for b, phys in zip(swap_at, spares):
        swapped_bt[0, b] = phys
    out = []
    for t in range(steps):
        lens = torch.tensor([L + t for L in start_lens], dtype=torch.int32, device=sc.device)
        q = torch.empty_like(sc.q)
        q.normal_(generator=sc.gen)
        bt = swapped_bt if t >= 5 else base_bt
        if t == 4:
            rev = torch.arange(S - 1, -1, -1, device=sc.device)
            bt, lens, q = bt[rev].contiguous(), lens[rev].contiguous(), q[rev].contiguous()
        out.append((q, bt.clone(), lens))
    # a needle in the first swapped-in block, aligned with step 5..7 queries of sequence 0
    if spares:
        g = sc.num_q_heads // sc.num_kv_heads
        for t in range(5, steps):
            q = out[t][0]
            q[0].copy_(out[5][0][0])  # same query row for seq 0 on steps 5..7
        qbar = out[5][0][0].float().view(sc.num_kv_heads, g, sc.head_size).mean(1)
        u = qbar / qbar.norm(dim=-1, keepdim=True)
        sc.key_cache[spares[0]].copy_((12.0 * u[None].expand(B, -1, -1)).to(sc.dtype))
    return out


def graph_cases():
    # one sequence starts at 2045 tokens: it crosses GSA_MIN_TOKENS (2048) during the steps
    return [
        dict(name="graph-b4-B16", B=16, lens=[2045, 8185, 12000, 20000]),
        dict(name="graph-b4-B128", B=128, lens=[2045, 8190, 12000, 20000]),
        dict(name="graph-b24-B16", B=16, lens=[2045] + [3000 + 257 * k for k in range(23)]),
    ]


def cmd_graph(args):
    torch = need_cuda()
    from gsa_ref import GsaParams, GsaRef, keep_lists
    from paged import Decode, reference, rel_l2, max_abs
    rel = load_release(args)
    check_ref = args.ratio is not None
    params = GsaParams.from_env(ratio=args.ratio, policy=args.policy)
    res = Results(f"vllm-graph-{rel.version}")
    banner("graph", args, rel, params if check_ref else None)
    layout = layout_of(args, rel)
    steps = 8
    for i, case in enumerate(graph_cases()):
        name = case["name"]
        try:
            t0 = time.time()
            B = case["B"]
            start = case["lens"]
            final = [L + steps - 1 for L in start]
            sc = Decode(final, B, layout=layout, seed=case_seed(args.seed, name),
                        spare_blocks=16)
            path = rel.predicted_path(sc.num_seqs, sc.num_q_heads, sc.num_kv_heads)
            inputs = graph_steps(sc, start, params, steps)

            def load_step(t):
                q, bt, lens = inputs[t]
                sc.q.copy_(q)
                sc.block_table.copy_(bt)
                sc.seq_lens.copy_(lens)

            max_len = max(final)

            def launch():
                rel.decode(sc.q, sc.key_cache, sc.value_cache, sc.out, sc.cu_seqlens_q,
                           sc.seq_lens, sc.block_table, max_len, sc.scale)

            load_step(0)
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                launch()  # warm-up: compiles, and lets the library see the buffers
            torch.cuda.current_stream().wait_stream(side)
            torch.cuda.synchronize()
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                launch()
            torch.cuda.synchronize()
            worst = 0.0
            bad = []
            for t in range(steps):
                load_step(t)
                sc.out.fill_(float("nan"))
                graph.replay()
                torch.cuda.synchronize()
                og = sc.out.clone()
                sc.out.fill_(float("nan"))
                launch()
                torch.cuda.synchronize()
                oe = sc.out.clone()
                same = bool(torch.equal(og.view(torch.int16), oe.view(torch.int16)))
                d = max_abs(og, oe) if not same else 0.0
                if not (same or d <= 1e-6) or not bool(torch.isfinite(og.float()).all()):
                    bad.append(f"step {t}: max abs {d:.3e}")
                worst = max(worst, d if math.isfinite(d) else math.inf)
                info = f"step {t}: graph vs eager {'bitwise' if same else f'max abs {d:.2e}'}"
                # what the outputs are (sparse or dense), for the log
                ref_d = reference(sc.q, sc.key_cache, sc.value_cache, sc.block_table,
                                  sc.seq_lens, None, sc.scale)
                info += f"; vs dense relL2 {max(rel_l2(og[s], ref_d[s]) for s in range(sc.num_seqs)):.2e}"
                if check_ref:
                    ref = GsaRef(sc.key_cache, sc.block_table, sc.seq_lens, B, params)
                    sels = ref.select(sc.q)
                    okm = [s for s in range(sc.num_seqs)
                           if not sels[s].sparse or sels[s].rel_margin >= args.min_margin]
                    ref_s = reference(sc.q, sc.key_cache, sc.value_cache, sc.block_table,
                                      sc.seq_lens, keep_lists(sels), sc.scale)
                    e = max(rel_l2(og[s], ref_s[s]) for s in okm) if okm else 0.0
                    nsp = sum(sel.sparse for sel in sels)
                    info += f"; vs gsa_ref relL2 {e:.2e} ({nsp} sparse, {len(okm)} checked)"
                    res.check(e < args.tol, f"{name} ({path}) step {t} matches gsa_ref",
                              f"max relL2 {e:.2e}")
                log("     " + info)
            res.check(not bad, f"{name} ({path}) graph replay == eager over {steps} steps",
                      "all bitwise" if worst == 0 and not bad else
                      (f"max abs {worst:.2e}" if not bad else "; ".join(bad)))
            log(f"     ({name}: {time.time() - t0:.1f}s)")
            del graph
        except Exception as e:
            res.error(name, e)
    return res.finish()


# ---------------------------------------------------------------------------------------
# bench
# ---------------------------------------------------------------------------------------

def time_launches(torch, fns, reps, target_us=3000.0, max_calls=256, use_graph=True):
    """Median time per call (us) of the closures in fns, called round robin. Captures the
    calls in a CUDA graph (what vLLM does for decode) and times replays with CUDA events, so
    Python launch overhead is not measured; falls back to eager launches."""
    for f in fns:
        f()
    torch.cuda.synchronize()
    e0 = torch.cuda.Event(enable_timing=True)
    e1 = torch.cuda.Event(enable_timing=True)
    e0.record()
    for f in fns:
        f()
    e1.record()
    e1.synchronize()
    est = max(e0.elapsed_time(e1) * 1000.0 / len(fns), 1.0)
    rounds = max(1, min(max_calls // len(fns), math.ceil(target_us / est / len(fns))))
    calls = fns * rounds
    if use_graph:
        try:
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for f in fns:
                    f()
            torch.cuda.current_stream().wait_stream(side)
            torch.cuda.synchronize()
            g = torch.cuda.CUDAGraph()
            with torch.cuda.graph(g):
                for f in calls:
                    f()
            g.replay()
            torch.cuda.synchronize()
            ts = []
            for _ in range(reps):
                e0.record()
                g.replay()
                e1.record()
                e1.synchronize()
                ts.append(e0.elapsed_time(e1) * 1000.0 / len(calls))
            del g
            return statistics.median(ts), "graph", len(calls)
        except Exception as e:
            log(f"NOTE graph timing failed ({type(e).__name__}: {e}); timing eager launches")
            torch.cuda.synchronize()
    ts = []
    for _ in range(reps):
        e0.record()
        for f in calls:
            f()
        e1.record()
        e1.synchronize()
        ts.append(e0.elapsed_time(e1) * 1000.0 / len(calls))
    return statistics.median(ts), "eager", len(calls)


def cmd_bench(args):
    torch = need_cuda()
    from gsa_ref import GsaParams, plan
    from paged import alloc_kv_cache, compact, cdiv
    rel = load_release(args)
    params = GsaParams.from_env(ratio=args.ratio, policy=args.policy)
    res = Results(f"vllm-bench-{rel.version}")
    banner("bench", args, rel, params)
    layout = layout_of(args, rel)
    Hq, Hkv, D = 32, 8, 128
    gpu = torch.cuda.get_device_name()
    props = torch.cuda.get_device_properties(0)
    l2 = int(getattr(props, "L2_cache_size", 0) or 50 * 2 ** 20)
    t_start = time.time()
    out_f = open(args.out, "w") if args.out else None
    scale = 1.0 / math.sqrt(D)
    cells = [(B, ctx, batch) for B in args.block_sizes for ctx in args.contexts
             for batch in args.batches]
    for (B, ctx, batch) in cells:
        cell = f"B={B} ctx={ctx} batch={batch}"
        if time.time() - t_start > args.time_budget:
            log(f"NOTE time budget ({args.time_budget}s) spent; skipping {cell} and later cells")
            break
        try:
            kv_bytes = batch * ctx * Hkv * D * 2 * 2
            sets = max(1, min(8, math.ceil(2.5 * l2 / kv_bytes)))
            free, _ = torch.cuda.mem_get_info()
            need = sets * kv_bytes * 1.15 + 2 ** 30
            if sets * kv_bytes > args.max_gb * 1e9 or need > free:
                log(f"SKIP {cell}: needs {need / 1e9:.1f} GB (limit {args.max_gb} GB, free "
                    f"{free / 1e9:.1f} GB)")
                continue
            nb = cdiv(ctx, B)
            num_blocks = sets * batch * nb + 1
            g = torch.Generator(device="cuda")
            g.manual_seed(args.seed)
            cg = torch.Generator()
            cg.manual_seed(args.seed)
            kv, kc, vc = alloc_kv_cache(num_blocks, B, Hkv, D, layout)
            kv.normal_(generator=g)
            perm = (torch.randperm(num_blocks - 1, generator=cg) + 1).to(torch.int32)
            cols = nb + 4
            lens = torch.full((batch,), ctx, dtype=torch.int32, device="cuda")
            cu = torch.arange(batch + 1, dtype=torch.int32, device="cuda")
            p = plan(ctx, B, params, 1, cols)
            tables, qs, otables, olens = [], [], [], []
            for r in range(sets):
                bt = torch.zeros(batch, cols, dtype=torch.int32)
                bt[:, :nb] = perm[r * batch * nb:(r + 1) * batch * nb].view(batch, nb)
                tables.append(bt.cuda())
                q = torch.empty(batch, Hq, D, dtype=torch.bfloat16, device="cuda")
                q.normal_(generator=g)
                qs.append(q)
                keeps = []
                for s in range(batch):
                    if not p.sparse:
                        keeps.append(None)
                        continue
                    lo, hi = params.sink_blocks, nb - params.local_blocks
                    want = p.keep - params.sink_blocks - params.local_blocks
                    mid = (torch.randperm(hi - lo, generator=cg)[:want] + lo).tolist()
                    keeps.append(sorted(list(range(lo)) + mid + list(range(hi, nb))))
                ot, ol = compact(tables[-1], lens, keeps, B)
                otables.append(ot)
                olens.append(ol)
            out = torch.empty(batch, Hq, D, dtype=torch.bfloat16, device="cuda")
            olen_max = int(olens[0].max().item())

            def mk(r, oracle):
                bt = otables[r] if oracle else tables[r]
                sl = olens[r] if oracle else lens
                mx = olen_max if oracle else ctx
                return lambda: rel.decode(qs[r], kc, vc, out, cu, sl, bt, mx, scale)

            full_us, how, ncalls = time_launches(
                torch, [mk(r, False) for r in range(sets)], args.reps, use_graph=not args.eager)
            oracle_us, how2, _ = time_launches(
                torch, [mk(r, True) for r in range(sets)], args.reps, use_graph=not args.eager)
            row = dict(kernel=f"triton-unified-{rel.version}", release=rel.version,
                       batch=batch, context=ctx, block_size=B, ratio=params.ratio,
                       keep=p.keep, blocks=p.n, full_us=round(full_us, 3),
                       # the full-table call: dense without the library, GSA with it
                       dense_us=round(full_us, 3), gsa_us=round(full_us, 3),
                       oracle_us=round(oracle_us, 3), timing=how, calls=ncalls, sets=sets,
                       path=rel.predicted_path(batch, Hq, Hkv), layout=layout,
                       q_heads=Hq, kv_heads=Hkv, head_size=D, dtype="bf16", gpu=gpu,
                       gsa_env=gsa_env())
            log(f"cell {cell} path={row['path']} sets={sets}: full {full_us:9.2f} us  "
                f"oracle {oracle_us:9.2f} us  ({how}, {ncalls} calls)")
            if out_f:
                out_f.write(json.dumps(row) + "\n")
                out_f.flush()
            res.check(math.isfinite(full_us) and math.isfinite(oracle_us) and full_us > 0,
                      f"bench {cell}", f"full {full_us:.2f} us, oracle {oracle_us:.2f} us")
            del kv, kc, vc, tables, qs, otables, olens, out
            torch.cuda.empty_cache()
        except Exception as e:
            res.error(f"bench {cell}", e)
            torch.cuda.empty_cache()
    if out_f:
        out_f.close()
        log(f"NOTE wrote {args.out}")
    log(f"NOTE bench took {time.time() - t_start:.0f}s")
    return res.finish()


def cmd_bench_merge(args):
    def read(path):
        rows = {}
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line:
                    r = json.loads(line)
                    rows[(r["release"], r["block_size"], r["context"], r["batch"])] = r
        return rows

    try:
        nolib, lib = read(args.nolib), read(args.lib)
    except Exception as e:
        log(f"FAIL bench-merge: {e}")
        return 1
    merged = []
    for key in sorted(nolib):
        a = nolib[key]
        b = lib.get(key)
        if b is None:
            log(f"NOTE no library measurement for {key}")
            continue
        dense, oracle, gsa = a["full_us"], a["oracle_us"], b["full_us"]
        merged.append(dict(kernel=a["kernel"], batch=a["batch"], context=a["context"],
                           block_size=a["block_size"], ratio=b.get("ratio", a["ratio"]),
                           dense_us=dense, oracle_us=oracle, gsa_us=gsa, gpu=a["gpu"],
                           speedup_gsa=round(dense / gsa, 4) if gsa > 0 else None,
                           speedup_oracle=round(dense / oracle, 4) if oracle > 0 else None,
                           gsa_over_oracle=round(gsa / oracle, 4) if oracle > 0 else None,
                           path=a.get("path"), timing=a.get("timing"),
                           lib_gsa_env=b.get("gsa_env")))
    if args.out:
        with open(args.out, "w") as f:
            for m in merged:
                f.write(json.dumps(m) + "\n")
    if not merged:
        log("FAIL bench-merge: no cell measured in both runs")
        return 1
    gpu = merged[0]["gpu"]
    log(f"\n### GSA decode attention, {merged[0]['kernel']} on {gpu} "
        f"(ratio {merged[0]['ratio']}, 32 q / 8 kv heads, head 128, bf16)\n")
    log("| block | context | batch | path | dense us | oracle us | gsa us | dense/gsa | "
        "dense/oracle | gsa/oracle |")
    log("|---:|---:|---:|:---:|---:|---:|---:|---:|---:|---:|")
    for m in merged:
        log(f"| {m['block_size']} | {m['context']} | {m['batch']} | {m['path']} | "
            f"{m['dense_us']:.1f} | {m['oracle_us']:.1f} | {m['gsa_us']:.1f} | "
            f"{m['speedup_gsa']:.2f}x | {m['speedup_oracle']:.2f}x | {m['gsa_over_oracle']:.2f}x |")
    med = lambda k: statistics.median(m[k] for m in merged if m[k] is not None)
    log(f"\nmedians over {len(merged)} cells: dense/gsa {med('speedup_gsa'):.2f}x, "
        f"dense/oracle {med('speedup_oracle'):.2f}x, gsa/oracle {med('gsa_over_oracle'):.2f}x")
    for B in sorted({m["block_size"] for m in merged}):
        sub = [m for m in merged if m["block_size"] == B]
        log(f"  block {B}: dense/gsa {statistics.median(m['speedup_gsa'] for m in sub):.2f}x, "
            f"gsa/oracle {statistics.median(m['gsa_over_oracle'] for m in sub):.2f}x "
            f"({len(sub)} cells)")
    if args.out:
        log(f"NOTE wrote {len(merged)} rows to {args.out}")
    return 0


# ---------------------------------------------------------------------------------------

def parse_list(s, conv=int):
    return [conv(x) for x in s.split(",") if x.strip()]


# ---------------------------------------------------------------------------------------------
# reuse: a physical block refilled with other content is never scored by its old contents;
# a KV cache first seen during stream capture runs dense in the graph, sparse once prepared
# ---------------------------------------------------------------------------------------------

def cmd_reuse(args):
    torch = need_cuda()
    from gsa_ref import GsaParams, GsaRef
    from paged import Decode, reference, rel_l2
    rel = load_release(args)
    params = GsaParams.from_env(ratio=args.ratio, policy=args.policy)
    res = Results(f"vllm-reuse-{rel.version}")
    banner("reuse", args, rel, params)
    layout = layout_of(args, rel)
    # Every scenario stays alive: a new cache must not land on a freed one's addresses,
    # which the library would (correctly) treat as the same, already prepared cache.
    alive = []
    for B in args.block_sizes:
        name = f"reuse-b4-16k-B{B}"
        try:
            sc = Decode([16384 + 7, 16384 + 100, 12000, 9000], B, layout=layout,
                        seed=case_seed(args.seed, name))
            alive.append(sc)
            sc.run(rel)
            sc.run(rel)  # representations of every block now exist in the library
            torch.cuda.synchronize()
            # Blocks freed and refilled by another sequence: a third of sequence 0's middle
            # blocks get new keys and values, and two of them become needles, which only an
            # up-to-date representation can find.
            n0 = -(-sc.lens[0] // B)
            g = torch.Generator().manual_seed(case_seed(args.seed, name + "/reuse"))
            middle = list(range(params.sink_blocks, n0 - params.local_blocks))
            pick = sorted(torch.randperm(len(middle), generator=g)[:len(middle) // 3].tolist())
            reused = [middle[i] for i in pick]
            for b in reused:
                phys = int(sc.block_table[0, b].item())
                sc.key_cache[phys].normal_(generator=sc.gen)
                sc.value_cache[phys].normal_(generator=sc.gen)
            needles = reused[:2]
            sc.plant_needles(0, needles, alpha=args.needle_alpha)
            ref = GsaRef(sc.key_cache, sc.block_table, sc.seq_lens, B, params)
            sels = ref.select(sc.q)
            amb = settle(sc, ref, sels, args.min_margin, perturb=True)
            out = sc.run(rel).clone()
            torch.cuda.synchronize()
            res.check(all(b in sels[0].keep for b in needles),
                      f"{name}: the reference keeps the needles planted in reused blocks",
                      f"needles {needles}")
            check_against_selection(res, f"{name}: output after reuse", sc, out, sels, params,
                                    args.tol, amb, require_discriminating=False, ref_obj=ref)
        except Exception as e:
            res.error(name, e)

        name = f"capture-first-B{B}"
        try:
            sc = Decode([16384 + 3, 9000], B, layout=layout, seed=case_seed(args.seed, name))
            alive.append(sc)
            # The kernel is compiled (earlier cases) but the library has never seen this KV
            # cache: its first launch is inside a capture, where nothing may be allocated.
            torch.cuda.synchronize()
            graph = torch.cuda.CUDAGraph()
            out_g = torch.empty_like(sc.out)
            max_k = sc.max_seqlen_k()  # a host read: not allowed inside the capture
            with torch.cuda.graph(graph):
                rel.decode(sc.q, sc.key_cache, sc.value_cache, out_g, sc.cu_seqlens_q,
                           sc.seq_lens, sc.block_table, max_k, sc.scale)
            graph.replay()
            torch.cuda.synchronize()
            dense = reference(sc.q, sc.key_cache, sc.value_cache, sc.block_table, sc.seq_lens,
                              None, sc.scale)
            e = max(rel_l2(out_g[s], dense[s]) for s in range(sc.num_seqs))
            res.check(e < args.tol, f"{name}: first seen during capture runs dense in the graph",
                      f"max relL2 vs dense {e:.2e}")
            sc.run(rel)  # eager: the library prepares this cache now
            torch.cuda.synchronize()
            ref = GsaRef(sc.key_cache, sc.block_table, sc.seq_lens, B, params)
            sels = ref.select(sc.q)
            amb = settle(sc, ref, sels, args.min_margin, perturb=False)
            out = sc.run(rel).clone()
            torch.cuda.synchronize()
            check_against_selection(res, f"{name}: sparse once seen eagerly", sc, out, sels,
                                    params, args.tol, amb, require_discriminating=True,
                                    ref_obj=ref)
        except Exception as e:
            res.error(name, e)
    return res.finish()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)

    def common(p, ratio_default=None):
        p.add_argument("--release", required=True,
                       help="vLLM version under .cache/vllm (0.10.1, 0.33.0, 0.34.0) or a folder")
        p.add_argument("--cache-dir", default=None, help="default: <repo>/.cache/vllm")
        p.add_argument("--layout", default="split",
                       choices=["split", "kv_first", "kv_packed", "native"],
                       help="KV cache layout (paged.py); native: the release's own "
                            "(0.10.1 kv_first, 0.33.0 kv_packed)")
        p.add_argument("--ratio", type=float, default=ratio_default,
                       help="GSA ratio the reference assumes (default: $GSA_RATIO or 0.3)")
        p.add_argument("--policy", default=None, choices=["mean", "quest"],
                       help="selection policy the reference assumes (default: $GSA_POLICY "
                            "or mean)")
        p.add_argument("--seed", type=int, default=1234)
        p.add_argument("--tol", type=float, default=2e-2,
                       help="relative L2 tolerance against the float64 reference")
        p.add_argument("--min-margin", type=float, default=1e-3,
                       help="redraw a query whose selection margin is below this (relative "
                            "to 1.4826*MAD of its middle-block scores)")
        p.add_argument("--block-sizes", type=parse_list, default=[16, 128])
        p.add_argument("--needle-alpha", type=float, default=12.0,
                       help="needle key norm (keys = alpha * unit group-mean query)")

    p = sub.add_parser("exact", help="outputs == reference over the gsa_ref selection")
    common(p)
    p.add_argument("--save-dense", default=None, help="save outputs (for --ratio 1)")
    p.add_argument("--compare-dense", default=None, help="compare bitwise with a saved file")
    p.add_argument("--quick", action="store_true", help="fewer cases")
    p.set_defaults(fn=cmd_exact)

    p = sub.add_parser("needles", help="needle retrieval and attention-mass recall")
    common(p)
    p.add_argument("--out", default=None, help="recall rows (JSON lines)")
    p.set_defaults(fn=cmd_needles)

    p = sub.add_parser("graph", help="CUDA graph replay == eager, with changing inputs")
    common(p)
    p.set_defaults(fn=cmd_graph)

    p = sub.add_parser("reuse", help="refilled blocks re-represented; capture-first runs dense")
    common(p)
    p.set_defaults(fn=cmd_reuse)

    p = sub.add_parser("bench", help="decode attention time, full table and oracle table")
    common(p)
    p.add_argument("--out", default=None, help="raw rows (JSON lines)")
    p.add_argument("--contexts", type=parse_list, default=[8192, 32768, 131072])
    p.add_argument("--batches", type=parse_list, default=[1, 8, 32, 64])
    p.add_argument("--reps", type=int, default=7)
    p.add_argument("--max-gb", type=float, default=60.0)
    p.add_argument("--time-budget", type=float, default=200.0,
                   help="seconds; later cells are skipped once spent")
    p.add_argument("--eager", action="store_true", help="time eager launches, no CUDA graph")
    p.set_defaults(fn=cmd_bench)

    p = sub.add_parser("bench-merge", help="merge a run without and one with the library")
    p.add_argument("--nolib", required=True, help="bench --out of the run without the library")
    p.add_argument("--lib", required=True, help="bench --out of the run with the library")
    p.add_argument("--out", default=None, help="merged rows (JSON lines)")
    p.set_defaults(fn=cmd_bench_merge)

    args = ap.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
