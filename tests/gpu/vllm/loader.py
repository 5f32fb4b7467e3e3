"""Imports a vLLM release's real Triton unified-attention module, unmodified, from the files
tests/gpu/fetch_vllm.sh extracted into .cache/vllm/<version>/, without installing vLLM.

The module imports a few vllm.* names that carry no kernel code (vllm.envs, vllm.logger,
vllm.platforms.current_platform, vllm.triton_utils, vllm.v1.kv_cache_interface's
KVQuantMode). A meta-path finder serves, for every vllm.* import made while loading:
  1. the release's own file when .cache/vllm/<version>/ has it (the kernels, and 0.33.0's
     @triton.jit helpers in triton_attention_helpers.py), else
  2. a stub below, written for an NVIDIA (CUDA, H100) platform with vLLM's defaults, else
  3. an ImportError that names the module, so a release that needs more fails clearly.

    from loader import load_unified_attention, load_release
    module, decode = load_unified_attention(".cache/vllm/0.33.0")
    decode(q, k_cache, v_cache, out, cu_seqlens_q, seqused_k, block_table, max_seqlen_k, scale)

decode() calls the release's unified_attention(...) the way vLLM's TRITON_ATTN backend of that
release calls it for a plain causal decode batch (no sinks, alibi, softcap, sliding window,
bf16/fp16 KV, k/v descale = the layer's 1.0 scale expanded to [num_seqs, num_kv_heads]); the
release's own heuristics pick the 2D or the 3D (segmented) kernel. See release.predicted_path.
"""

import enum
import importlib.abc
import importlib.machinery
import importlib.util
import inspect
import json
import logging
import os
import sys
import types

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
DEFAULT_CACHE = os.path.join(REPO, ".cache", "vllm")

# Where each known layout keeps the module (package-relative, dotted).
_MODULE_CANDIDATES = (
    "vllm.v1.attention.ops.triton_unified_attention",  # 0.11+ (0.33.0)
    "vllm.attention.ops.triton_unified_attention",  # 0.10.x
)


class LoaderError(RuntimeError):
    pass


def resolve_release_dir(release, cache_dir=None):
    """A version ("0.33.0") under .cache/vllm, or a path to such a folder."""
    if os.path.isdir(release):
        return os.path.abspath(release)
    d = os.path.join(cache_dir or DEFAULT_CACHE, release)
    if not os.path.isdir(d):
        raise LoaderError(
            f"no extracted vLLM release at {d}: run `bash tests/gpu/fetch_vllm.sh {release}` "
            "on a machine with network access and carry .cache/vllm to the GPU machine")
    return d


# ---------------------------------------------------------------------------------------
# Stubs. Only names the release modules use; anything else raises AttributeError naming
# the stub, so a new release's new dependency shows up as a clear error.
# ---------------------------------------------------------------------------------------

class _StrictModule(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        raise AttributeError(
            f"stub module {self.__name__} (tests/gpu/vllm/loader.py) has no attribute {name!r}: "
            "the vLLM release uses a name the loader does not stub yet")


class _OnceLogger(logging.LoggerAdapter):
    """vLLM's logger has *_once variants."""

    _seen = set()

    def _once(self, level, msg, *args, **kwargs):
        key = (level, msg, args)
        if key in self._seen:
            return
        self._seen.add(key)
        kwargs.pop("scope", None)
        self.log(level, msg, *args, **kwargs)

    def debug_once(self, msg, *args, **kwargs):
        self._once(logging.DEBUG, msg, *args, **kwargs)

    def info_once(self, msg, *args, **kwargs):
        self._once(logging.INFO, msg, *args, **kwargs)

    def warning_once(self, msg, *args, **kwargs):
        self._once(logging.WARNING, msg, *args, **kwargs)

    def process(self, msg, kwargs):
        kwargs.pop("scope", None)
        return msg, kwargs


def _init_logger(name):
    return _OnceLogger(logging.getLogger(name), {})


class _DeviceCapability(tuple):
    """vllm.platforms.interface.DeviceCapability: a (major, minor) named tuple."""

    def __new__(cls, major, minor):
        return tuple.__new__(cls, (major, minor))

    major = property(lambda self: self[0])
    minor = property(lambda self: self[1])

    def as_version_str(self):
        return f"{self[0]}.{self[1]}"

    def to_int(self):
        return self[0] * 10 + self[1]


class _CudaPlatform:
    """The parts of vllm.platforms.current_platform (CudaPlatform) the kernels' module uses."""

    device_name = "cuda"
    device_type = "cuda"
    dispatch_key = "CUDA"
    ray_device_key = "GPU"
    simple_compile_backend = "inductor"

    def __getattr__(self, name):
        raise AttributeError(
            f"stub current_platform (tests/gpu/vllm/loader.py) has no attribute {name!r}")

    def is_cuda(self):
        return True

    def is_cuda_alike(self):
        return True

    def is_rocm(self):
        return False

    def is_xpu(self):
        return False

    def is_cpu(self):
        return False

    def is_tpu(self):
        return False

    def is_out_of_tree(self):
        return False

    def fp8_dtype(self):
        import torch
        return torch.float8_e4m3fn

    def get_device_capability(self, device_id=0):
        import torch
        try:
            major, minor = torch.cuda.get_device_capability(device_id)
        except Exception:
            major, minor = 9, 0  # H100
        return _DeviceCapability(major, minor)

    def has_device_capability(self, capability, device_id=0):
        cap = self.get_device_capability(device_id)
        if isinstance(capability, tuple):
            return cap >= tuple(capability)
        return cap.to_int() >= capability

    def is_device_capability(self, capability, device_id=0):
        cap = self.get_device_capability(device_id)
        if isinstance(capability, tuple):
            return tuple(cap) == tuple(capability)
        return cap.to_int() == capability

    def is_device_capability_family(self, capability, device_id=0):
        return self.get_device_capability(device_id).to_int() // 10 == capability // 10

    def num_compute_units(self, device_id=0):
        import torch
        return torch.cuda.get_device_properties(device_id).multi_processor_count

    def get_device_name(self, device_id=0):
        import torch
        return torch.cuda.get_device_name(device_id)


class KVQuantMode(enum.IntEnum):
    """vllm.v1.kv_cache_interface.KVQuantMode (0.33.0): only NONE is used here; the other
    members exist because unified_attention compares against them."""

    NONE = 0
    FP8_PER_TENSOR = 1
    INT8_PER_TOKEN_HEAD = 2
    FP8_PER_TOKEN_HEAD = 3
    INT4_PER_TOKEN_HEAD = 4

    @property
    def is_per_token_head(self):
        return self in (KVQuantMode.INT8_PER_TOKEN_HEAD, KVQuantMode.FP8_PER_TOKEN_HEAD,
                        KVQuantMode.INT4_PER_TOKEN_HEAD)


# vllm.envs values the kernel modules read, at vLLM's defaults.
_ENV_DEFAULTS = {
    "VLLM_BATCH_INVARIANT": False,
    "VLLM_TRITON_USE_TD": None,
    "VLLM_TRITON_FORCE_FIRST_CONFIG": False,
    "VLLM_KV_CACHE_LAYOUT": None,
    "VLLM_USE_TRITON_FLASH_ATTN": True,
}


def _make_stub(name):
    """Returns a module for `name`, or None when the loader has no stub for it."""
    if name == "vllm.envs":
        m = _StrictModule(name)
        for k, v in _ENV_DEFAULTS.items():
            setattr(m, k, v)
        m.is_set = lambda k: False
        return m
    if name == "vllm.logger":
        m = _StrictModule(name)
        m.init_logger = _init_logger
        m.logger = _init_logger("vllm")
        return m
    if name == "vllm.platforms":
        m = _StrictModule(name)
        m.__path__ = []
        m.current_platform = _CudaPlatform()
        return m
    if name == "vllm.platforms.interface":
        m = _StrictModule(name)
        m.DeviceCapability = _DeviceCapability
        return m
    if name == "vllm.triton_utils":
        import triton
        import triton.language as tl
        m = _StrictModule(name)
        m.__path__ = []
        m.HAS_TRITON = True
        m.triton = triton
        m.tl = tl
        m.LOG2E = 1.4426950408889634
        m.LOGE2 = 0.6931471805599453
        return m
    if name == "vllm.v1.kv_cache_interface":
        m = _StrictModule(name)
        m.KVQuantMode = KVQuantMode
        # "auto"/"bfloat16"/... are native; "fp8*" and "int8*" are quantised (vLLM's rule).
        m.is_quantized_kv_cache = lambda s: s.startswith(("fp8", "int8", "int4"))
        return m
    if name == "vllm.model_executor.layers.quantization.utils.quant_utils":
        # The cache-write module reads the fp8 range at import; only bf16/fp16 caches are used.
        import torch
        m = _StrictModule(name)
        m.FP8_DTYPE = torch.float8_e4m3fn
        m.get_fp8_min_max = lambda: (float(torch.finfo(torch.float8_e4m3fn).min),
                                     float(torch.finfo(torch.float8_e4m3fn).max))
        return m
    return None


# Intermediate packages of stubbed modules that no release folder has.
_STUB_PARENTS = ("vllm.model_executor", "vllm.model_executor.layers",
                 "vllm.model_executor.layers.quantization",
                 "vllm.model_executor.layers.quantization.utils")


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves vllm.* while a release is being loaded (see the module docstring)."""

    def __init__(self, root):
        self.root = root
        self.served = []  # (name, "file" | "stub" | "package")

    def _file(self, fullname):
        p = os.path.join(self.root, *fullname.split(".")) + ".py"
        return p if os.path.isfile(p) else None

    def _is_package(self, fullname):
        return os.path.isdir(os.path.join(self.root, *fullname.split(".")))

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "vllm" and not fullname.startswith("vllm."):
            return None
        f = self._file(fullname)
        if f is not None:
            self.served.append((fullname, "file"))
            return importlib.util.spec_from_file_location(fullname, f)
        if _make_stub(fullname) is not None:
            self.served.append((fullname, "stub"))
            return importlib.machinery.ModuleSpec(fullname, self, is_package=False)
        if fullname in ("vllm", "vllm.v1", "vllm.attention") or self._is_package(fullname) or \
                fullname in _STUB_PARENTS:
            self.served.append((fullname, "package"))
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        raise ImportError(
            f"{fullname} is imported by the vLLM release in {self.root} but is neither "
            "extracted there (tests/gpu/fetch_vllm.sh files_for) nor stubbed "
            "(tests/gpu/vllm/loader.py _make_stub)", name=fullname)

    def create_module(self, spec):
        m = _make_stub(spec.name)
        if m is None:  # an intermediate package
            m = types.ModuleType(spec.name)
            m.__path__ = []
        return m

    def exec_module(self, module):
        pass


def _purge_vllm_modules():
    for k in [k for k in sys.modules if k == "vllm" or k.startswith("vllm.")]:
        del sys.modules[k]


# ---------------------------------------------------------------------------------------
# Release object and the uniform decode wrapper
# ---------------------------------------------------------------------------------------

class Release:
    """A loaded release: .version, .module, .decode(...), .kernels (name -> JITFunction),
    .native_layout (the KV cache layout its TRITON_ATTN backend uses, see paged.py),
    .predicted_path(num_seqs, num_q_heads, num_kv_heads) -> "2d" | "3d"."""

    def __init__(self, version, root, module, module_name, served):
        self.version = version
        self.root = root
        self.module = module
        self.module_name = module_name
        self.served = served
        self.kernels = {}
        for name, obj in vars(module).items():
            if type(obj).__name__ == "JITFunction" and hasattr(obj, "device_caches"):
                if getattr(obj, "__module__", None) == module_name or \
                        getattr(getattr(obj, "fn", None), "__module__", None) == module_name:
                    self.kernels[name] = obj
        sig = inspect.signature(module.unified_attention)
        self.params = sig.parameters
        self.style = "v1" if module_name.startswith("vllm.v1.") else "legacy"
        # 0.10.x TRITON_ATTN: kv_cache (2, num_blocks, block, kv_heads, head), unbind(0).
        # 0.33.0 TRITON_ATTN: per layer [num_blocks, kv_heads, block, 2*head] logical with
        # the default LBNHC physical order, i.e. memory [num_blocks, block, kv_heads, 2*head];
        # key/value = split(head, dim=-1) of its transpose(1, 2).
        self.native_layout = "kv_packed" if self.style == "v1" else "kv_first"
        self._scratch = {}
        self._descale = {}

    # vLLM's layer._k_scale / _v_scale: a 0-d float32 tensor holding 1.0 (no fp8).
    def _scale_tensor(self, device):
        import torch
        key = str(device)
        t = self._descale.get(key)
        if t is None:
            t = torch.tensor(1.0, dtype=torch.float32, device=device)
            self._descale[key] = t
        return t

    # 0.33.0 TritonAttentionMetadataBuilder constants.
    MIN_LAUNCH_GRID_SIZE_2D = 128
    NUM_PAR_SOFTMAX_SEGMENTS = 16

    def seq_threshold_3d(self, num_kv_heads):
        return self.MIN_LAUNCH_GRID_SIZE_2D // num_kv_heads

    def _v1_scratch(self, q, num_kv_heads):
        """The builder's persistent split-K scratch: (rows, q_heads, 16 segments, head_pad)
        with rows = min(seq_threshold_3D, max_num_seqs) (max_query_len_3d = 1, no spec)."""
        import torch
        import triton
        num_q_heads, head = q.shape[1], q.shape[2]
        pad = triton.next_power_of_2(head)
        rows = self.seq_threshold_3d(num_kv_heads)
        key = (str(q.device), num_q_heads, pad, rows)
        s = self._scratch.get(key)
        if s is None:
            seg = self.NUM_PAR_SOFTMAX_SEGMENTS
            s = (torch.empty((rows, num_q_heads, seg, pad), dtype=torch.float32, device=q.device),
                 torch.empty((rows, num_q_heads, seg), dtype=torch.float32, device=q.device),
                 torch.empty((rows, num_q_heads, seg), dtype=torch.float32, device=q.device))
            self._scratch[key] = s
        return s

    def predicted_path(self, num_seqs, num_q_heads, num_kv_heads, max_seqlen_q=1):
        """Which kernel the release's heuristics pick for a decode batch."""
        g = num_q_heads // num_kv_heads
        if self.style == "legacy":
            block_m = 16
            block_q = block_m // g
            total_q_blocks = num_seqs * max_seqlen_q // block_q + num_seqs
            return "2d" if (max_seqlen_q > 1 or total_q_blocks * num_kv_heads > 128) else "3d"
        block_m = 16 if g <= 16 else 1 << (g - 1).bit_length()
        block_q = block_m // g
        thr = self.seq_threshold_3d(num_kv_heads)
        if num_seqs * -(-max_seqlen_q // block_q) > thr or num_seqs * max_seqlen_q > thr:
            return "2d"
        return "3d"

    def decode(self, q, k_cache, v_cache, out, cu_seqlens_q, seqused_k, block_table,
               max_seqlen_k, scale, max_seqlen_q=1):
        num_seqs = seqused_k.shape[0]
        num_kv_heads = k_cache.shape[2]
        ks = self._scale_tensor(q.device)
        descale_shape = (num_seqs, num_kv_heads)
        kw = dict(
            q=q, k=k_cache, v=v_cache, out=out,
            cu_seqlens_q=cu_seqlens_q, max_seqlen_q=max_seqlen_q,
            seqused_k=seqused_k, max_seqlen_k=max_seqlen_k,
            softmax_scale=float(scale),
            causal=True,
            window_size=(-1, -1),
            block_table=block_table,
            softcap=0,  # the backend turns logits_soft_cap=None into the int 0
            q_descale=None,
            k_descale=ks.expand(descale_shape),
            v_descale=ks.expand(descale_shape),
            alibi_slopes=None,
            sinks=None,
        )
        if self.style == "v1":
            so, sm, se = self._v1_scratch(q, num_kv_heads)
            kw.update(
                seq_threshold_3D=self.seq_threshold_3d(num_kv_heads),
                num_par_softmax_segments=self.NUM_PAR_SOFTMAX_SEGMENTS,
                softmax_segm_output=so, softmax_segm_max=sm, softmax_segm_expsum=se,
                output_scale=None,
                use_alibi_sqrt=False,
                mm_prefix_range=None,
                rswa_prefix_lens=None,
                rswa_window=None,
                kv_quant_mode=KVQuantMode.NONE,
                k_scale_cache=None,
                v_scale_cache=None,
                chunk_lookback=-1,
                use_td=False,
                mm_prefix_clamp_sliding_window=False,
            )
        call = {}
        for k, v in kw.items():
            if k in self.params:
                call[k] = v
            elif v is not None and k not in ("alibi_slopes", "sinks"):
                # an argument this release does not take: only acceptable at its default
                raise LoaderError(f"vLLM {self.version} unified_attention has no argument {k!r}")
        missing = [n for n, p in self.params.items()
                   if p.default is inspect.Parameter.empty and n not in call]
        if missing:
            raise LoaderError(f"vLLM {self.version} unified_attention needs {missing}; "
                              "update Release.decode in tests/gpu/vllm/loader.py")
        self.module.unified_attention(**call)
        return out


def _import_from(root, module_name, what):
    """Imports module_name with every vllm.* import served from root or the stubs."""
    _purge_vllm_modules()
    finder = _Finder(root)
    sys.meta_path.insert(0, finder)
    try:
        return importlib.import_module(module_name), finder
    except Exception as e:
        raise LoaderError(f"importing {module_name} of {what} from {root} failed: "
                          f"{type(e).__name__}: {e}") from e
    finally:
        sys.meta_path.remove(finder)


def load_release(release, cache_dir=None):
    root = resolve_release_dir(release, cache_dir)
    version = os.path.basename(root.rstrip("/"))
    man = os.path.join(root, "MANIFEST.json")
    if os.path.isfile(man):
        try:
            version = json.load(open(man)).get("version", version)
        except Exception:
            pass
    module_name = None
    for cand in _MODULE_CANDIDATES:
        if os.path.isfile(os.path.join(root, *cand.split(".")) + ".py"):
            module_name = cand
            break
    if module_name is None:
        raise LoaderError(f"{root} holds none of {', '.join(_MODULE_CANDIDATES)} "
                          "(re-run tests/gpu/fetch_vllm.sh)")
    try:
        import torch  # noqa: F401  (the module imports it; fail here with a clear message)
        import triton  # noqa: F401
    except ImportError as e:
        raise LoaderError(f"loading vLLM kernels needs torch and triton: {e}") from e

    module, finder = _import_from(root, module_name, f"vLLM {version}")
    if not hasattr(module, "unified_attention"):
        raise LoaderError(f"{module_name} of vLLM {version} has no unified_attention()")
    return Release(version, root, module, module_name, list(finder.served))


CACHE_WRITER_MODULE = "vllm.v1.attention.ops.triton_reshape_and_cache_flash"


def load_cache_writer(release="0.33.0", cache_dir=None):
    """vLLM's Triton KV-cache write (triton_reshape_and_cache_flash: key/value of the new
    tokens into their slots, slot -1 skipped), from a release that ships it (0.33.0). It takes
    the cache's strides, so it serves every layout in paged.py."""
    root = resolve_release_dir(release, cache_dir)
    if not os.path.isfile(os.path.join(root, *CACHE_WRITER_MODULE.split(".")) + ".py"):
        raise LoaderError(f"{root} has no {CACHE_WRITER_MODULE} (re-run tests/gpu/fetch_vllm.sh)")
    # loaded beside an already loaded attention module: keep that one's vllm.* modules
    saved = {k: v for k, v in sys.modules.items() if k == "vllm" or k.startswith("vllm.")}
    try:
        module, _ = _import_from(root, CACHE_WRITER_MODULE, "the release")
    finally:
        _purge_vllm_modules()
        sys.modules.update(saved)
    return module.triton_reshape_and_cache_flash


def load_unified_attention(release_dir, cache_dir=None):
    """Returns (module, decode): the release's real triton_unified_attention module and the
    uniform decode wrapper decode(q, k_cache, v_cache, out, cu_seqlens_q, seqused_k,
    block_table, max_seqlen_k, scale)."""
    r = load_release(release_dir, cache_dir)
    return r.module, r.decode


if __name__ == "__main__":
    # python3 tests/gpu/vllm/loader.py 0.33.0  : import check, lists kernels and stubs served
    for rel in sys.argv[1:] or ["0.10.1", "0.34.0"]:
        r = load_release(rel)
        print(f"vLLM {r.version}: {r.module_name} from {r.root}")
        print("  kernels:", ", ".join(sorted(r.kernels)))
        print("  served:", ", ".join(f"{n} ({how})" for n, how in r.served))
        print("  unified_attention args:", ", ".join(r.params))
