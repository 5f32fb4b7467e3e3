#!/usr/bin/env python3
"""Pull vLLM's FA2 paged-decode kernels out of _vllm_fa2_C.abi3.so (called by
tests/gpu/fetch_fa2.sh; see there for the options).

For each group of fa2_names.GROUPS (the split-KV module and the num_splits == 1
"align" module) it finds the fatbin ELF member that holds all the group's kernels,
and then writes to OUT:

  fa2_<group>_hdim128_bf16.sm_90.cubin   native sm_90 SASS when the wheel has it; else
                                         ptxas -arch=sm_90 of the pruned PTX below (what
                                         the CUDA driver's JIT does for vLLM on an H100,
                                         since sm_80 SASS does not run on sm_90)
  fa2_<group>_hdim128_bf16.ptx           vLLM's PTX for the member, pruned to the group's
                                         kernels (the driver can JIT it on any GPU)
  fa2_<group>_hdim128_bf16.sm_80.cubin.xz  vLLM's sm_80 SASS, verbatim (all kernels of the
                                         member), xz-compressed
  manifest.json, kernels.txt             what was kept, the kernels' .param sizes
                                         (EIATTR_CBANK_PARAM_SIZE), registers, shared memory
"""
import argparse
import hashlib
import json
import lzma
import os
import re
import shutil
import subprocess
import sys

sys.dont_write_bytecode = True   # no __pycache__ in the work tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fa2_names  # noqa: E402
import ptx_prune  # noqa: E402

SO_PATH_IN_WHEEL = "vllm/vllm_flash_attn/_vllm_fa2_C.abi3.so"


def die(msg):
    sys.stderr.write("fa2_extract: error: %s\n" % msg)
    sys.exit(1)


def log(msg):
    sys.stderr.write("fa2_extract: %s\n" % msg)


def run(cmd, cwd=None, out_path=None):
    try:
        if out_path:
            with open(out_path, "wb") as f:
                p = subprocess.run(cmd, cwd=cwd, stdout=f, stderr=subprocess.PIPE)
            out = b""
        else:
            p = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            out = p.stdout
    except OSError as e:
        die("cannot run %s: %s" % (cmd[0], e))
    if p.returncode != 0:
        die("%s failed (exit %d): %s" % (" ".join(cmd[:3]), p.returncode,
                                          p.stderr.decode(errors="replace")[-2000:]))
    return out.decode(errors="replace")


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


_MEMBER = re.compile(r"^(ELF|PTX) file\s+(\d+):\s+(\S+)\s*$")
_ARCH_IN_NAME = re.compile(r"\.(sm_\d+[a-z]?)\.(?:cubin|ptx)$")


def list_members(cuobjdump, so, kind):
    """[(index, name, arch)] from cuobjdump -lelf / -lptx."""
    out = run([cuobjdump, "-lelf" if kind == "ELF" else "-lptx", so])
    members = []
    for line in out.splitlines():
        m = _MEMBER.match(line.strip())
        if m and m.group(1) == kind:
            a = _ARCH_IN_NAME.search(m.group(3))
            members.append((int(m.group(2)), m.group(3), a.group(1) if a else "?"))
    return members


def elf_sections(symbols_text):
    """[(arch, set(function names))] for each 'Fatbin elf code' section, in order."""
    secs = []
    cur = None
    for line in symbols_text.splitlines():
        s = line.strip()
        if s.startswith("Fatbin elf code"):
            cur = ["?", set()]
            secs.append(cur)
        elif s.startswith("Fatbin ptx code"):
            cur = None
        elif cur is not None:
            if s.startswith("arch = "):
                cur[0] = s.split("=", 1)[1].strip()
            elif s.startswith("FUNC"):
                cur[1].add(s.split()[-1])
    return [(a, f) for a, f in secs]


def extract_member(cuobjdump, so, kind, name, workdir):
    """Extract one fatbin member by its full name into an empty directory; return its path."""
    d = os.path.join(workdir, "x_" + name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    run([cuobjdump, "-xelf" if kind == "ELF" else "-xptx", name, so], cwd=d)
    path = os.path.join(d, name)
    if not os.path.isfile(path):
        die("cuobjdump -x%s %s wrote %s, not %s" % (kind.lower(), name, os.listdir(d), name))
    return path


def arch_num(arch):
    m = re.match(r"sm_(\d+)", arch)
    return int(m.group(1)) if m else -1


def nv_info(cuobjdump, cubin):
    """{function: {'param_size': int, 'n_params': int}} from cuobjdump -elf."""
    text = run([cuobjdump, "-elf", cubin])
    info = {}
    cur = None
    attr = None
    for line in text.splitlines():
        if line.startswith(".nv.info."):
            cur = info.setdefault(line[len(".nv.info."):].strip(), {"param_size": None, "n_params": 0})
            attr = None
            continue
        if cur is None:
            continue
        if line and not line[0].isspace():
            cur = None
            continue
        s = line.strip()
        if s.startswith("Attribute:"):
            attr = s.split(":", 1)[1].strip()
        elif s.startswith("Value:") and attr == "EIATTR_CBANK_PARAM_SIZE":
            cur["param_size"] = int(s.split(":", 1)[1].strip().split()[0], 16)
        elif s.startswith("Value:") and attr == "EIATTR_KPARAM_INFO":
            cur["n_params"] += 1
            m = re.search(r"Size\s*:\s*(0x[0-9a-fA-F]+)", s)
            if m:
                cur.setdefault("kparam_sizes", []).append(int(m.group(1), 16))
    return info


def res_usage(cuobjdump, cubin):
    """{function: {'regs': int, 'shared': int, 'stack': int, 'local': int}}"""
    text = run([cuobjdump, "-res-usage", cubin])
    out = {}
    cur = None
    for line in text.splitlines():
        s = line.strip()
        m = re.match(r"Function (\S+):$", s)
        if m:
            cur = m.group(1)
            continue
        if cur and s.startswith("REG:"):
            kv = dict(re.findall(r"([A-Z]+(?:\[\d+\])?):(\d+)", s))
            out[cur] = {"regs": int(kv.get("REG", -1)), "shared": int(kv.get("SHARED", -1)),
                        "stack": int(kv.get("STACK", -1)), "local": int(kv.get("LOCAL", -1))}
            cur = None
    return out


def tool_version(exe):
    try:
        p = subprocess.run([exe, "--version"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        lines = [l for l in p.stdout.decode(errors="replace").splitlines() if l.strip()]
        return lines[-1].strip() if lines else "?"
    except OSError:
        return "?"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--so", required=True)
    ap.add_argument("--cuobjdump", required=True)
    ap.add_argument("--ptxas", default="")
    ap.add_argument("--out", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--wheel", default="")
    ap.add_argument("--wheel-sha256", default="")
    a = ap.parse_args()

    so, co = a.so, a.cuobjdump
    os.makedirs(a.out, exist_ok=True)
    elves = list_members(co, so, "ELF")
    ptxs = list_members(co, so, "PTX")
    if not elves:
        die("no ELF members in %s (is this the FA2 library?)" % so)
    archs = sorted(set(e[2] for e in elves), key=arch_num)
    log("%d ELF members (%s), %d PTX members" % (len(elves), ", ".join(archs), len(ptxs)))

    sym_path = os.path.join(a.work, "symbols.txt")
    run([co, "-symbols", so], out_path=sym_path)
    with open(sym_path, errors="replace") as f:
        secs = elf_sections(f.read())
    os.remove(sym_path)
    ordered = len(secs) == len(elves) and all(
        s[0] == e[2] for s, e in zip(secs, elves))
    if not ordered:
        log("-symbols sections do not line up with -lelf; checking members one by one")

    manifest = {"wheel": os.path.basename(a.wheel), "wheel_sha256": a.wheel_sha256,
                "library": SO_PATH_IN_WHEEL, "library_sha256": sha256(so),
                "fatbin_archs": archs, "cuobjdump": tool_version(co),
                "ptxas": tool_version(a.ptxas) if a.ptxas else None,
                "params_size": fa2_names.PARAMS_SIZE, "groups": {}}
    report = []

    for group, (block_n, roles) in fa2_names.GROUPS.items():
        want = set(roles.values())
        cands = []   # (arch, elf name, index)
        if ordered:
            for (arch, funcs), (idx, name, _a) in zip(secs, elves):
                if want <= funcs:
                    cands.append((arch, name, idx))
        else:
            for idx, name, arch in elves:
                p = extract_member(co, so, "ELF", name, a.work)
                with open(p, "rb") as f:
                    blob = f.read()
                shutil.rmtree(os.path.dirname(p))
                if all(w.encode() in blob for w in want):
                    cands.append((arch, name, idx))
        if not cands:
            die("no ELF member of %s holds all %d kernels of group %r, e.g. %s"
                % (so, len(want), group, sorted(want)[0]))
        native90 = [c for c in cands if c[0] in ("sm_90", "sm_90a")]
        base8x = sorted([c for c in cands if 80 <= arch_num(c[0]) < 90], key=lambda c: arch_num(c[0]))
        log("group %s: members %s" % (group, ", ".join("%s(%s)" % (c[1], c[0]) for c in cands)))

        g = {"block_n": block_n, "smem_bytes": fa2_names.smem_bytes(block_n),
             "roles": roles, "files": {}, "sources": {}}
        stem = "fa2_%s_hdim128_bf16" % group
        cubins_to_check = {}

        # The PTX that goes with the member we base on (same fatbin index), pruned.
        ref = (native90 or base8x or cands)[0]
        ptx_name = re.sub(r"\.cubin$", ".ptx", ref[1])
        ptx_members = [p for p in ptxs if p[1] == ptx_name] + [p for p in ptxs if p[1] != ptx_name]
        ptx_path = None
        for idx, name, arch in ptx_members:
            p = extract_member(co, so, "PTX", name, a.work)
            with open(p, errors="surrogateescape") as f:
                text = f.read()
            if all((".entry " + w) in text for w in want):
                ptx_path, ptx_src = p, name
                break
            shutil.rmtree(os.path.dirname(p))
        if ptx_path:
            out_ptx = os.path.join(a.out, stem + ".ptx")
            pruned, _kept, _n = ptx_prune.prune(text, sorted(want))
            with open(out_ptx, "w", errors="surrogateescape") as f:
                f.write(pruned)
            shutil.rmtree(os.path.dirname(ptx_path))
            g["files"]["ptx"] = os.path.basename(out_ptx)
            g["sources"]["ptx"] = ptx_src + " (pruned to the group's kernels)"
        else:
            log("group %s: no PTX member holds the kernels" % group)

        out90 = os.path.join(a.out, stem + ".sm_90.cubin")
        if native90:
            p = extract_member(co, so, "ELF", native90[0][1], a.work)
            shutil.copyfile(p, out90)
            shutil.rmtree(os.path.dirname(p))
            g["sources"]["sm_90"] = native90[0][1] + " (verbatim)"
        elif ptx_path and a.ptxas:
            run([a.ptxas, "-arch=sm_90", "-O3", "-o", out90, os.path.join(a.out, stem + ".ptx")])
            g["sources"]["sm_90"] = "ptxas -arch=sm_90 -O3 of " + g["files"]["ptx"]
        else:
            out90 = None
            log("group %s: no sm_90 cubin (no native sm_90 member%s)"
                % (group, "" if a.ptxas else ", and no ptxas"))
        if out90:
            g["files"]["sm_90"] = os.path.basename(out90)
            cubins_to_check["sm_90"] = out90

        if base8x:
            p = extract_member(co, so, "ELF", base8x[0][1], a.work)
            out80 = os.path.join(a.out, stem + ".sm_80.cubin.xz")
            with open(p, "rb") as f, lzma.open(out80, "wb", preset=9 | lzma.PRESET_EXTREME) as o:
                o.write(f.read())
            g["files"]["sm_80"] = os.path.basename(out80)
            g["sources"]["sm_80"] = base8x[0][1] + " (verbatim, xz)"
            cubins_to_check["sm_80"] = p

        # Check every kept kernel: one parameter, 472 bytes.
        g["kernels"] = {}
        for role, name in roles.items():
            g["kernels"][role] = {}
        for arch, path in cubins_to_check.items():
            info = nv_info(co, path)
            res = res_usage(co, path)
            for role, name in roles.items():
                i = info.get(name)
                if i is None:
                    die("%s: no .nv.info for %s" % (path, name))
                if i["param_size"] != fa2_names.PARAMS_SIZE or i["n_params"] != 1:
                    die("%s: %s has %d parameter(s), %s bytes; the driver packs one %d-byte "
                        "Flash_fwd_params" % (os.path.basename(path), role, i["n_params"],
                                              i["param_size"], fa2_names.PARAMS_SIZE))
                r = res.get(name, {})
                g["kernels"][role][arch] = {"param_bytes": i["param_size"], "regs": r.get("regs"),
                                            "static_smem": r.get("shared")}
        for arch, path in cubins_to_check.items():
            if arch == "sm_80":
                shutil.rmtree(os.path.dirname(path))
        manifest["groups"][group] = g
        report.append((group, g))

    with open(os.path.join(a.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")

    lines = ["# vLLM FlashAttention-2 paged-decode kernels (bf16, head dim 128), from tests/gpu/fetch_fa2.sh",
             "# wheel:    %s  sha256 %s" % (manifest["wheel"] or "?", manifest["wheel_sha256"] or "?"),
             "# library:  %s  sha256 %s" % (SO_PATH_IN_WHEEL, manifest["library_sha256"]),
             "# fatbin:   %d ELF members (%s), %d PTX members" % (len(elves), ", ".join(archs), len(ptxs)),
             "# tools:    cuobjdump %s; ptxas %s" % (manifest["cuobjdump"], manifest["ptxas"]),
             "# files:"]
    for group, g in report:
        for arch, fn in sorted(g["files"].items()):
            size = os.path.getsize(os.path.join(a.out, fn))
            lines.append("#   %-40s %9d bytes  <- %s" % (fn, size, g["sources"].get(arch, "?")))
    lines.append("# Every kernel below takes one parameter, const Flash_fwd_params (%d bytes)."
                 % fa2_names.PARAMS_SIZE)
    lines.append("# role       group  kBlockN dyn_smem  param_bytes regs(sm_90,sm_80)  mangled name")
    for group, g in report:
        for role, name in g["roles"].items():
            k = g["kernels"][role]
            dyn = g["smem_bytes"] if not role.startswith("combine") else 0
            pb = ",".join(str(k[x]["param_bytes"]) for x in sorted(k))
            regs = ",".join(str(k[x]["regs"]) for x in ("sm_90", "sm_80") if x in k)
            lines.append("%-11s %-6s %7d %8d %12s %18s  %s" % (role, group, g["block_n"], dyn, pb, regs, name))
    with open(os.path.join(a.out, "kernels.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    log("wrote %s" % os.path.join(a.out, "kernels.txt"))


if __name__ == "__main__":
    main()
