#!/usr/bin/env bash
# Fetches the vLLM releases the GPU suite tests against and extracts the few Python files of
# their Triton paged-attention path (the kernels and the host wrapper that launches them)
# into .cache/vllm/<version>/, keeping their package-relative paths (vllm/...). Nothing of
# vLLM is committed: .cache/ is git-ignored, and the GPU machine (no network) receives
# .cache/vllm as a carried folder. Runs here, before a GPU call; idempotent.
#
#   bash tests/gpu/fetch_vllm.sh              the suite's releases (0.10.1, 0.34.0)
#   bash tests/gpu/fetch_vllm.sh 0.34.0       one release
#
# Wheels: looked up in .cache/wheels, then in the folders of $VLLM_WHEEL_DIRS (colon
# separated), else downloaded with pip into .cache/wheels (no dependencies, ~400 MB each).
# A release whose extracted files are complete and match their manifest is left alone, so
# the wheels are needed only once. Needs python3 (zipfile, hashlib, json) and pip.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"

versions=("$@")
[ ${#versions[@]} -gt 0 ] || versions=(0.10.1 0.34.0)

wheels=.cache/wheels
dest=.cache/vllm
mkdir -p "$wheels" "$dest"

# Files of each release's Triton attention path (package-relative). 0.10.1: one module
# (kernel_unified_attention_2d/_3d, reduce_segments, unified_attention). 0.33.0 and 0.34.0 (the
# same kernels; 0.34.0's host wrapper adds ROCm RDNA launch tuning): the module
# (kernel_unified_attention with IS_3D, reduce_segments, unified_attention) plus the
# @triton.jit helpers it imports, and the Triton KV-cache write kernel
# (reshape_and_cache_kernel_flash) that tests/engine uses for every release. The other vllm.* names these import (envs, logger,
# platforms, triton_utils, kv_cache_interface) carry no kernel code: tests/gpu/vllm/loader.py
# stubs them.
files_for() {
	case "$1" in
	0.10.1) echo "vllm/attention/ops/triton_unified_attention.py" ;;
	0.33.0 | 0.34.0) echo "vllm/v1/attention/ops/triton_unified_attention.py vllm/v1/attention/ops/triton_attention_helpers.py vllm/v1/attention/ops/triton_reshape_and_cache_flash.py" ;;
	*) return 1 ;;
	esac
}

# Is .cache/vllm/<v> complete and unchanged since extraction? (manifest lists sha256s)
up_to_date() {
	python3 - "$dest/$1" "$2" <<'EOF'
import hashlib, json, os, sys
d, want = sys.argv[1], sys.argv[2].split()
try:
    m = json.load(open(os.path.join(d, "MANIFEST.json")))
    files = m["files"]
    if sorted(files) != sorted(want):
        sys.exit(1)
    for f, h in files.items():
        if hashlib.sha256(open(os.path.join(d, f), "rb").read()).hexdigest() != h:
            sys.exit(1)
except Exception:
    sys.exit(1)
EOF
}

find_wheel() {
	local v=$1 d f
	local IFS=:
	for d in "$wheels" ${VLLM_WHEEL_DIRS:-}; do
		[ -n "$d" ] && [ -d "$d" ] || continue
		for f in "$d"/vllm-"$v"-*.whl; do
			[ -f "$f" ] && { echo "$f"; return 0; }
		done
	done
	return 1
}

status=0
for v in "${versions[@]}"; do
	if ! want=$(files_for "$v"); then
		echo "fetch_vllm: unknown release $v (known: 0.10.1 0.33.0 0.34.0; add its files to files_for)" >&2
		status=1; continue
	fi
	if up_to_date "$v" "$want"; then
		echo "fetch_vllm: $dest/$v is up to date"
	else
		if ! whl=$(find_wheel "$v"); then
			echo "fetch_vllm: downloading vllm==$v into $wheels (no dependencies)"
			python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$wheels" "vllm==$v" ||
				{ echo "fetch_vllm: pip download of vllm==$v failed" >&2; status=1; continue; }
			whl=$(find_wheel "$v") || { echo "fetch_vllm: no vllm-$v wheel after download" >&2; status=1; continue; }
		fi
		echo "fetch_vllm: extracting from $whl"
		rm -rf "${dest:?}/$v.tmp"
		python3 - "$whl" "$dest/$v.tmp" "$v" $want <<'EOF' || { status=1; rm -rf "${dest:?}/$v.tmp"; continue; }
import hashlib, json, os, sys, zipfile
whl, out, version, names = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
files = {}
with zipfile.ZipFile(whl) as z:
    have = set(z.namelist())
    for n in names:
        if n not in have:
            sys.exit(f"fetch_vllm: {n} is not in {whl}")
        data = z.read(n)
        p = os.path.join(out, n)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)
        files[n] = hashlib.sha256(data).hexdigest()
    meta = [n for n in have if n.endswith(".dist-info/METADATA")]
    wheel_version = None
    if meta:
        for line in z.read(meta[0]).decode("utf-8", "replace").splitlines():
            if line.startswith("Version:"):
                wheel_version = line.split(":", 1)[1].strip()
                break
if wheel_version != version:
    sys.exit(f"fetch_vllm: {whl} says version {wheel_version}, expected {version}")
json.dump({"version": version, "wheel": os.path.basename(whl), "files": files},
          open(os.path.join(out, "MANIFEST.json"), "w"), indent=1, sort_keys=True)
EOF
		rm -rf "${dest:?}/$v"
		mv "$dest/$v.tmp" "$dest/$v"
	fi
	python3 - "$dest/$v" <<'EOF'
import json, os, sys
d = sys.argv[1]
m = json.load(open(os.path.join(d, "MANIFEST.json")))
for f in sorted(m["files"]):
    print(f"  {os.path.join(d, f)}  {os.path.getsize(os.path.join(d, f))} bytes  sha256 {m['files'][f][:16]}")
EOF
done
du -sh "$dest" 2>/dev/null | sed 's/^/fetch_vllm: total /'
exit $status
