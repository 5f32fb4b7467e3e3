#!/usr/bin/env python3
"""Dumps, for every Triton kernel variant a vLLM release compiles for decode, what the launch
really passes: the kernel's name, its runtime parameters in launch order (names and Triton
types, after Triton dropped constexprs, None arguments and integers specialised to 1), the
constexpr values, and the number of parameters the launch passes, hidden trailing scratch
pointers included. For the C adapter's parameter tables.

  python3 tests/gpu/vllm/introspect.py --release 0.33.0 OUT.json

Runs decode batches that take both paths (the 3D/segmented kernel + reduce_segments for small
batches, the 2D kernel for large ones; batch 1 too, where reduce_segments' untyped num_seqs
is specialised away), block sizes 16 and 128. Run it WITHOUT the preload library.

Sources of truth, all recorded (they should agree):
  binder:   CompiledKernel.src.signature / .constants / .attrs (what Triton's launcher packs:
            every non-constexpr signature entry, then global_scratch and profile_scratch)
  driver:   cuFuncGetParamInfo on the loaded CUfunction (CUDA >= 12.4): count, offsets, sizes
  ptx:      the .entry's .param list in CompiledKernel.asm["ptx"]
"""

import argparse
import ctypes
import enum
import inspect
import json
import math
import os
import re
import sys
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

try:
    sys.stdout.reconfigure(line_buffering=True)
except Exception:
    pass


def log(*a):
    print(*a, flush=True)


TYPE_SIZES = {"i1": 1, "u1": 1, "i8": 1, "u8": 1, "i16": 2, "u16": 2, "i32": 4, "u32": 4,
              "i64": 8, "u64": 8, "fp16": 2, "bf16": 2, "fp32": 4, "f32": 4, "fp64": 8}


def type_size(ty):
    """Bytes of a parameter of Triton type ty as the CUDA launcher passes it (floats are
    packed to their own width; pointers are CUdeviceptr)."""
    if isinstance(ty, str):
        if ty.startswith("*"):
            return 8
        return TYPE_SIZES.get(ty)
    return None


def jsonable(v):
    """JSON-friendly form of a constexpr / attribute value."""
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, enum.Enum):
        return jsonable(v.value)
    if isinstance(v, int):
        return int(v)
    if isinstance(v, float):
        return v if math.isfinite(v) else repr(v)
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if hasattr(v, "value") and not callable(getattr(v, "value")):  # tl.constexpr
        return jsonable(v.value)
    return repr(v)


def describe_value(v):
    try:
        import torch
        if isinstance(v, torch.Tensor):
            return {"tensor": str(v.dtype).replace("torch.", ""), "shape": list(v.shape),
                    "stride": list(v.stride()), "data_ptr": hex(v.data_ptr())}
    except Exception:
        pass
    return jsonable(v)


# --------------------------------------------------------------------------------------
# Launch recording: wrap JITFunction.run of the release's kernels
# --------------------------------------------------------------------------------------

class Recorder:
    def __init__(self):
        self.launches = []
        self.context = {}

    def wrap(self, name, fn):
        orig = fn.run
        sig = inspect.signature(fn.fn)
        rec = self

        def run(*args, grid, warmup, **kwargs):
            kernel = orig(*args, grid=grid, warmup=warmup, **kwargs)
            try:
                call_kw = {k: v for k, v in kwargs.items() if k in sig.parameters}
                options = {k: v for k, v in kwargs.items() if k not in sig.parameters}
                bound = sig.bind_partial(*args, **call_kw)
                bound.apply_defaults()
                g = grid(bound.arguments) if callable(grid) else grid
                rec.launches.append(dict(kernel=name, grid=list(g) + [1] * (3 - len(g)),
                                         args=dict(bound.arguments), options=options,
                                         compiled=kernel, context=dict(rec.context)))
            except Exception as e:
                log(f"NOTE could not record a launch of {name}: {e}")
            return kernel

        fn.run = run


# --------------------------------------------------------------------------------------
# Views of a compiled kernel
# --------------------------------------------------------------------------------------

def hidden_params():
    """Trailing parameters Triton's CUDA launcher appends after the kernel's own (3.6:
    global_scratch, profile_scratch), read from the launcher source so a change shows."""
    try:
        from triton.backends.nvidia import driver as nvdrv
        src = inspect.getsource(nvdrv)
        return [n for n in ("global_scratch", "profile_scratch") if f'"&{n}"' in src]
    except Exception as e:
        log(f"NOTE could not read triton.backends.nvidia.driver: {e}")
        return None


def cu_param_info(function):
    """[(offset, size)] of every parameter of a CUfunction, via cuFuncGetParamInfo."""
    try:
        lib = ctypes.CDLL("libcuda.so.1")
        f = lib.cuFuncGetParamInfo
    except (OSError, AttributeError) as e:
        return None, f"cuFuncGetParamInfo unavailable: {e}"
    f.restype = ctypes.c_int
    f.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_size_t),
                  ctypes.POINTER(ctypes.c_size_t)]
    out = []
    off, size = ctypes.c_size_t(), ctypes.c_size_t()
    for i in range(1024):
        rc = f(ctypes.c_void_p(int(function)), i, ctypes.byref(off), ctypes.byref(size))
        if rc != 0:
            if i == 0:
                return None, f"cuFuncGetParamInfo(0) returned {rc}"
            break
        out.append((off.value, size.value))
    return out, None


def cu_func_name(function):
    try:
        lib = ctypes.CDLL("libcuda.so.1")
        f = lib.cuFuncGetName
        f.restype = ctypes.c_int
        f.argtypes = [ctypes.POINTER(ctypes.c_char_p), ctypes.c_void_p]
        name = ctypes.c_char_p()
        if f(ctypes.byref(name), ctypes.c_void_p(int(function))) == 0 and name.value:
            return name.value.decode()
    except Exception:
        pass
    return None


def ptx_params(ptx, name):
    if not ptx:
        return None
    if isinstance(ptx, bytes):
        ptx = ptx.decode("utf-8", "replace")
    m = re.search(r"\.entry\s+" + re.escape(name) + r"\s*\((.*?)\)", ptx, re.S)
    if not m:
        m = re.search(r"\.entry\s+(\S+)\s*\((.*?)\)", ptx, re.S)
        if not m:
            return None
        body = m.group(2)
    else:
        body = m.group(1)
    params = []
    for line in body.split(","):
        line = line.strip()
        if not line.startswith(".param"):
            continue
        toks = line.split()
        params.append({"ptx_type": " ".join(toks[1:-1]), "name": toks[-1]})
    return params


def metadata_dict(ck):
    md = getattr(ck, "metadata", None)
    if md is None:
        return {}
    try:
        d = md._asdict()
    except Exception:
        d = dict(getattr(md, "__dict__", {}))
    keep = ("name", "num_warps", "num_ctas", "num_stages", "shared", "global_scratch_size",
            "global_scratch_align", "profile_scratch_size", "profile_scratch_align",
            "launch_cooperative_grid", "launch_pdl", "maxnreg", "cluster_dims", "ptx_version",
            "arch", "target", "hash", "tmem_size", "num_buffers_warp_spec")
    return {k: jsonable(d[k]) for k in keep if k in d}


def compiled_kernels(fn):
    """CompiledKernel objects in a JITFunction's caches (Triton 3.x: device_caches[dev] =
    (kernel_cache, key_cache, target, backend, binder); older: cache[dev])."""
    found = []
    caches = getattr(fn, "device_caches", None)
    if caches:
        for dev, entry in list(caches.items()):
            kc = entry[0] if isinstance(entry, (tuple, list)) else entry
            if isinstance(kc, dict):
                found += [(dev, k) for k in kc.values()]
    old = getattr(fn, "cache", None)
    if isinstance(old, dict):
        for dev, kc in old.items():
            if isinstance(kc, dict):
                found += [(dev, k) for k in kc.values()]
    return found


def analyse_variant(name, fn, ck, hidden):
    if hasattr(ck, "result"):  # async compile future
        ck = ck.result()
    src = getattr(ck, "src", None)
    signature = dict(getattr(src, "signature", {}) or {})
    constants = dict(getattr(src, "constants", {}) or {})
    attrs = dict(getattr(src, "attrs", {}) or {})
    arg_names = list(getattr(fn, "arg_names", None) or [p.name for p in fn.params])
    annotated_constexpr = {p.name for p in getattr(fn, "params", []) if getattr(p, "is_constexpr", False)}
    params, constexprs, dropped = [], {}, []
    for i, pname in enumerate(arg_names):
        ty = signature.get(pname)
        if ty is None:
            dropped.append({"name": pname, "reason": "not in signature"})
            continue
        if ty == "constexpr":
            v = constants.get((i,), constants.get(pname))
            constexprs[pname] = jsonable(v)
            if pname in annotated_constexpr:
                reason = "tl.constexpr parameter"
            elif v is None:
                reason = "None argument"
            elif v == 1 and not isinstance(v, bool):
                reason = "integer specialised to 1"
            else:
                reason = "specialised"
            dropped.append({"name": pname, "index_in_signature": i, "reason": reason,
                            "value": jsonable(v)})
            continue
        params.append({"index": len(params), "name": pname, "signature_index": i,
                       "type": jsonable(ty), "size": type_size(ty),
                       "attrs": jsonable(attrs.get((i,)))})
    n_hidden = len(hidden) if hidden is not None else 2
    entry = {
        "kernel": name,
        "cubin_name": getattr(ck, "name", None) or metadata_dict(ck).get("name"),
        "hash": getattr(ck, "hash", None),
        "runtime_params": params,
        "hidden_params": [{"index": len(params) + k, "name": h, "type": "*i8", "size": 8}
                          for k, h in enumerate(hidden if hidden is not None else
                                                ["global_scratch", "profile_scratch"])],
        "num_runtime_params": len(params),
        "num_launch_params": len(params) + n_hidden,
        "constexprs": constexprs,
        "dropped": dropped,
        "metadata": metadata_dict(ck),
    }
    # driver view
    function = getattr(ck, "function", None)
    if function:
        info, err = cu_param_info(function)
        if info is not None:
            entry["cu_param_info"] = [{"offset": o, "size": s} for o, s in info]
            entry["cu_num_params"] = len(info)
        else:
            entry["cu_param_info_error"] = err
        entry["cu_func_name"] = cu_func_name(function)
    else:
        entry["cu_param_info_error"] = "kernel not loaded (never launched?)"
    try:
        asm = getattr(ck, "asm", {}) or {}
        ptx = asm.get("ptx") if hasattr(asm, "get") else None
        pp = ptx_params(ptx, entry["cubin_name"] or name)
        if pp is not None:
            entry["ptx_params"] = pp
            entry["ptx_num_params"] = len(pp)
    except Exception as e:
        entry["ptx_error"] = str(e)
    # sizes the binder implies vs the driver's
    if "cu_param_info" in entry:
        sizes = [p["size"] for p in params] + [8] * n_hidden
        entry["binder_matches_driver"] = (
            len(sizes) == entry["cu_num_params"] and
            all(a is None or a == b["size"] for a, b in zip(sizes, entry["cu_param_info"])))
    return entry


# --------------------------------------------------------------------------------------

def scenarios(rel):
    """(batch, block_size) pairs; the release picks 2D or 3D itself."""
    out = []
    for B in (16, 128):
        for batch in (1, 4, 32):
            out.append((batch, B))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--release", required=True, help="0.10.1, 0.33.0, 0.34.0, or a folder")
    ap.add_argument("--cache-dir", default=None)
    ap.add_argument("--layout", default="split",
                    choices=["split", "kv_first", "kv_packed", "native"])
    ap.add_argument("--context", type=int, default=1000)
    ap.add_argument("out", help="JSON output path")
    args = ap.parse_args(argv)

    import torch
    if not torch.cuda.is_available():
        log("FAIL introspect: no CUDA device")
        return 1
    import triton
    from loader import load_release, LoaderError
    from paged import Decode
    try:
        rel = load_release(args.release, args.cache_dir)
    except LoaderError as e:
        log(f"FAIL introspect: {e}")
        return 1
    layout = rel.native_layout if args.layout == "native" else args.layout
    rec = Recorder()
    for name, fn in rel.kernels.items():
        rec.wrap(name, fn)
    hidden = hidden_params()
    log(f"== introspect vLLM {rel.version} ({rel.module_name}) on {torch.cuda.get_device_name()}"
        f", triton {triton.__version__}, torch {torch.__version__}, layout {layout}")
    log(f"   launcher's hidden trailing params: {hidden}")
    errors = 0
    for batch, B in scenarios(rel):
        lens = [args.context + 37 * s for s in range(batch)]
        try:
            sc = Decode(lens, B, layout=layout, seed=batch * 1000 + B)
            rec.context = {"batch": batch, "block_size": B, "layout": layout,
                           "predicted_path": rel.predicted_path(batch, sc.num_q_heads,
                                                                sc.num_kv_heads)}
            n0 = len(rec.launches)
            sc.run(rel)
            torch.cuda.synchronize()
            names = [l["kernel"] for l in rec.launches[n0:]]
            log(f"   batch {batch:3d} block {B:3d}: predicted {rec.context['predicted_path']}, "
                f"launched {names}")
        except Exception as e:
            errors += 1
            log(f"FAIL introspect batch {batch} block {B}: {type(e).__name__}: {e}")
            traceback.print_exc()

    # variants: from the recorded launches first, then anything else in the caches
    variants = {}
    order = []
    for l in rec.launches:
        ck = l["compiled"]
        if hasattr(ck, "result"):
            ck = ck.result()
        key = (l["kernel"], getattr(ck, "hash", id(ck)))
        if key not in variants:
            variants[key] = analyse_variant(l["kernel"], rel.kernels[l["kernel"]], ck, hidden)
            variants[key]["launches"] = []
            order.append(key)
        rt = {p["name"] for p in variants[key]["runtime_params"]}
        variants[key]["launches"].append({
            "context": l["context"], "grid": l["grid"], "options": jsonable(l["options"]),
            "runtime_args": {k: describe_value(v) for k, v in l["args"].items() if k in rt},
        })
    for name, fn in rel.kernels.items():
        for dev, ck in compiled_kernels(fn):
            key = (name, getattr(ck, "hash", id(ck)))
            if key not in variants:
                variants[key] = analyse_variant(name, fn, ck, hidden)
                variants[key]["launches"] = []
                order.append(key)

    doc = {
        "release": rel.version,
        "module": rel.module_name,
        "triton": triton.__version__,
        "torch": torch.__version__,
        "gpu": torch.cuda.get_device_name(),
        "capability": list(torch.cuda.get_device_capability()),
        "cuda_runtime": torch.version.cuda,
        "layout": layout,
        "hidden_params": hidden,
        "unified_attention_args": list(rel.params),
        "variants": [variants[k] for k in order],
    }
    with open(args.out, "w") as f:
        json.dump(doc, f, indent=1, default=repr)

    log("")
    for k in order:
        v = variants[k]
        ce = v["constexprs"]
        tag = ", ".join(f"{n}={ce[n]}" for n in ("IS_3D", "BLOCK_SIZE", "TILE_SIZE",
                                                 "NUM_SEGMENTS_PER_SEQ", "num_seqs")
                        if n in ce)
        ctxs = sorted({(l["context"].get("batch"), l["context"].get("block_size"))
                       for l in v["launches"]})
        log(f"{v['kernel']} [{tag}] cubin {v['cubin_name']}: {v['num_runtime_params']} runtime + "
            f"{len(v['hidden_params'])} hidden = {v['num_launch_params']} launch params; "
            f"driver {v.get('cu_num_params', '?')}, ptx {v.get('ptx_num_params', '?')}"
            + ("" if v.get("binder_matches_driver", True) else "  ** MISMATCH **")
            + f"; launched for (batch, block) {ctxs}")
        log("   " + ", ".join(f"{p['index']}:{p['name']}:{p['type']}" for p in v["runtime_params"])
            + " | " + ", ".join(h["name"] for h in v["hidden_params"]))
        dn = [f"{d['name']}({d['reason'].split()[0]})" for d in v["dropped"]
              if d["reason"] != "tl.constexpr parameter"]
        if dn:
            log("   dropped non-constexpr: " + ", ".join(dn))
        if v.get("cu_param_info_error"):
            log(f"   driver: {v['cu_param_info_error']}")
    log(f"\nwrote {args.out}: {len(order)} variants")
    mism = [k for k in order if variants[k].get("binder_matches_driver") is False]
    if mism:
        log(f"NOTE binder and driver disagree for {len(mism)} variant(s): check cu_param_info")
    if errors or not order:
        log("FAIL introspect: some scenarios failed" if errors else "FAIL introspect: nothing compiled")
        return 1
    log("PASS introspect")
    return 0


if __name__ == "__main__":
    sys.exit(main())
