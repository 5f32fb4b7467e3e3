"""Mangled names of the vLLM FlashAttention-2 kernels that paged decode launches.

One place for the names, shared by fa2_extract.py (which pulls them out of the
vLLM wheel) and fa2_driver.py (which loads and launches them).  See NOTES.md for
where each template argument comes from (flash_fwd_launch_template.h and
flash_api.cpp of vllm-project/flash-attention).

Only bf16, head dim 128 is covered.  The kernels are

  split      flash_fwd_splitkv_kernel<traits(128,64,128,4), Is_causal=0, Is_local=0,
             Has_alibi=0, Is_even_MN=0, Is_even_K=1, Is_softcap=0, Split=1, Append_KV=0>
             (num_splits > 1; from flash_fwd_split_hdim128_bf16_sm80.cu)
  nosplit    the same with Split=0 (num_splits == 0: only reached when the query is
             not GQA-swapped, i.e. num_heads == num_kv_heads)
  combine_L  flash_fwd_splitkv_combine_kernel<traits(128,64,128,4), kBlockM=4,
             Log_max_splits=L, Is_even_K=1>, L = 1..7 (num_splits <= 2**L)
  align      flash_fwd_splitkv_kernel<traits(128,64,64,4), 0,0,0,0,1,0, Split=0, 0>
             (num_splits == 1; from flash_fwd_split_align_hdim128_bf16_sm80.cu)
"""

HEAD_DIM = 128
PARAMS_SIZE = 472          # sizeof(Flash_fwd_params), x86-64, and the .param size of every kernel
N_THREADS = 128            # Kernel_traits::kNThreads (4 warps)
BLOCK_M = 64               # kBlockM of both split-KV traits
COMBINE_BLOCK_M = 4        # kHeadDim % 128 == 0 -> kBlockM = 4 in run_flash_splitkv_fwd
MAX_LOG_SPLITS = 7         # num_splits <= 128


def _traits(hdim, block_m, block_n, warps, dtype="bf16"):
    if dtype == "bf16":
        el = "N7cutlass10bfloat16_tE"
    elif dtype == "fp16":
        el = "N7cutlass6half_tE"   # not checked against a binary
    else:
        raise ValueError("dtype must be bf16 or fp16")
    return ("Flash_fwd_kernel_traitsILi%dELi%dELi%dELi%dELb0ELb0E%s"
            "19Flash_kernel_traitsILi%dELi%dELi%dELi%dES3_EE"
            % (hdim, block_m, block_n, warps, el, hdim, block_m, block_n, warps))


def splitkv_kernel(block_n, split, is_causal=0, is_local=0, has_alibi=0, is_even_mn=0,
                   is_even_k=1, is_softcap=0, append_kv=0, hdim=HEAD_DIM, dtype="bf16"):
    flags = (is_causal, is_local, has_alibi, is_even_mn, is_even_k, is_softcap,
             int(bool(split)), append_kv)
    return ("_ZN5flash24flash_fwd_splitkv_kernelI23" + _traits(hdim, BLOCK_M, block_n, 4, dtype)
            + "".join("Lb%dE" % int(bool(f)) for f in flags) + "EEvNS_16Flash_fwd_paramsE")


def combine_kernel(log_max_splits, block_n=128, is_even_k=1, hdim=HEAD_DIM, dtype="bf16"):
    return ("_ZN5flash32flash_fwd_splitkv_combine_kernelI23"
            + _traits(hdim, BLOCK_M, block_n, 4, dtype)
            + "Li%dELi%dELb%dE" % (COMBINE_BLOCK_M, log_max_splits, int(bool(is_even_k)))
            + "EEvNS_16Flash_fwd_paramsE")


# Kernel_traits::kSmemSize = Q tile + K and V tiles, bf16: (64 + 2 * kBlockN) * 128 * 2 bytes.
def smem_bytes(block_n, hdim=HEAD_DIM):
    return (BLOCK_M + 2 * block_n) * hdim * 2


# The two modules: (group, {role: mangled name}, kBlockN).  fetch_fa2.sh keeps one cubin per
# group; the names are what the driver asks cuModuleGetFunction for.
GROUPS = {
    "split": (128, dict(
        [("split", splitkv_kernel(128, 1)), ("nosplit", splitkv_kernel(128, 0))]
        + [("combine_%d" % l, combine_kernel(l)) for l in range(1, MAX_LOG_SPLITS + 1)])),
    "align": (64, {"align": splitkv_kernel(64, 0)}),
}


def all_roles():
    out = {}
    for group, (_bn, roles) in GROUPS.items():
        for role, name in roles.items():
            out[role] = (group, name)
    return out
