#!/usr/bin/env bash
# Extract vLLM's FlashAttention-2 split-KV paged-decode kernels (bf16, head dim 128) from the
# vLLM wheel into .cache/fa2/ (git-ignored), for tests/gpu/fa2/fa2_driver.py on the GPU machine.
#
#   bash tests/gpu/fetch_fa2.sh [WHEEL]
#
# Runs on a machine with network to PyPI (not the GPU machine). The wheel is WHEEL, or
# $FA2_WHEEL, or vllm-$VLLM_VERSION-*.whl in .cache/wheels (where tests/gpu/fetch_vllm.sh keeps
# them), .whl/, the folders of $VLLM_WHEEL_DIRS (colon separated) or /tmp/vllmchk, else it is
# downloaded with pip into .cache/wheels (git-ignored, ~340 MB). cuobjdump comes from PATH, $CUDA_HOME/bin,
# or the nvidia-cuda-cuobjdump package (installed into .cache/tools/); ptxas from PATH or
# $CUDA_HOME/bin (needed only when the wheel has no sm_90 SASS for the kernels, which is the
# case for vLLM 0.33.0 and 0.34.0: their FA2 libraries hold sm_80 SASS and sm_80 PTX only).
#
# Idempotent: does nothing when .cache/fa2/stamp matches this wheel and these scripts
# (FORCE=1 redoes it). Temporary extraction output lives in a mktemp directory that is
# removed on exit. Result: .cache/fa2/{*.cubin,*.ptx,*.cubin.xz,manifest.json,kernels.txt}.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUT="$ROOT/.cache/fa2"
TOOLS="$ROOT/.cache/tools"
VLLM_VERSION=${VLLM_VERSION:-0.34.0}
CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
SO_IN_WHEEL=vllm/vllm_flash_attn/_vllm_fa2_C.abi3.so
HERE="$ROOT/tests/gpu/fa2"
export PYTHONDONTWRITEBYTECODE=1 # no __pycache__ in the work tree

die() { echo "fetch_fa2: error: $*" >&2; exit 1; }
say() { echo "fetch_fa2: $*" >&2; }

command -v python3 >/dev/null || die "python3 not found"

# --- the wheel -------------------------------------------------------------------------------
find_wheel() {
	local w
	if [ -n "${1:-}" ]; then
		[ -f "$1" ] || die "no such wheel: $1"
		echo "$1"; return
	fi
	if [ -n "${FA2_WHEEL:-}" ]; then
		[ -f "$FA2_WHEEL" ] || die "FA2_WHEEL=$FA2_WHEEL: no such file"
		echo "$FA2_WHEEL"; return
	fi
	local d dirs
	IFS=: read -r -a dirs <<<"${VLLM_WHEEL_DIRS:-}"
	for d in "$ROOT/.cache/wheels" "$ROOT/.whl" "${dirs[@]}" /tmp/vllmchk; do
		[ -n "$d" ] || continue
		for w in "$d"/vllm-"$VLLM_VERSION"-*.whl; do
			[ -f "$w" ] && { echo "$w"; return; }
		done
	done
	say "downloading vllm==$VLLM_VERSION (no dependencies) into .cache/wheels/"
	mkdir -p "$ROOT/.cache/wheels"
	python3 -m pip download --quiet --no-deps --only-binary :all: --python-version 3.12 \
		--platform manylinux_2_28_x86_64 -d "$ROOT/.cache/wheels" "vllm==$VLLM_VERSION" >&2 ||
		die "pip download vllm==$VLLM_VERSION failed"
	for w in "$ROOT"/.cache/wheels/vllm-"$VLLM_VERSION"-*.whl; do
		[ -f "$w" ] && { echo "$w"; return; }
	done
	die "pip download left no vllm-$VLLM_VERSION wheel in .cache/wheels/"
}
WHEEL=$(find_wheel "${1:-}")
WHEEL=$(cd "$(dirname "$WHEEL")" && pwd)/$(basename "$WHEEL")

# --- up to date? -----------------------------------------------------------------------------
stamp_of() {
	# wheel name and size, and the scripts that make the output
	{
		echo "$(basename "$WHEEL") $(stat -c %s "$WHEEL")"
		cat "$ROOT/tests/gpu/fetch_fa2.sh" "$HERE/fa2_extract.py" "$HERE/fa2_names.py" "$HERE/ptx_prune.py"
	} | sha256sum | cut -d' ' -f1
}
STAMP=$(stamp_of)
if [ "${FORCE:-0}" != 1 ] && [ -f "$OUT/stamp" ] && [ "$(cat "$OUT/stamp")" = "$STAMP" ] &&
	[ -f "$OUT/manifest.json" ] && [ -f "$OUT/kernels.txt" ]; then
	say "up to date: $OUT (FORCE=1 to redo)"
	exit 0
fi

# --- tools -----------------------------------------------------------------------------------
find_tool() { # name [pip package]
	local t=$1 p
	for p in "$(command -v "$t" 2>/dev/null || true)" "$CUDA_HOME/bin/$t" \
		"$( [ -d "$TOOLS/$t" ] && find "$TOOLS/$t" -type f -name "$t" | head -n1 || true)"; do
		[ -n "$p" ] && [ -x "$p" ] && { echo "$p"; return 0; }
	done
	[ -n "${2:-}" ] || return 1
	say "installing $2 into .cache/tools/$t"
	local d
	d=$(mktemp -d)
	python3 -m pip download --quiet --no-deps -d "$d" "$2" >&2 || { rm -rf "$d"; return 1; }
	rm -rf "${TOOLS:?}/$t"
	mkdir -p "$TOOLS/$t"
	python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$d"/*.whl "$TOOLS/$t"
	rm -rf "$d"
	p=$(find "$TOOLS/$t" -type f -name "$t" | head -n1)
	[ -n "$p" ] || return 1
	chmod +x "$p"
	echo "$p"
}
CUOBJDUMP=$(find_tool cuobjdump nvidia-cuda-cuobjdump) || die "no cuobjdump (PATH, $CUDA_HOME/bin, pip nvidia-cuda-cuobjdump)"
PTXAS=$(find_tool ptxas || true)
say "cuobjdump: $CUOBJDUMP"
say "ptxas: ${PTXAS:-none}"

# --- extract ---------------------------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/fetch_fa2.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
say "wheel: $WHEEL"
WHEEL_SHA=$(sha256sum "$WHEEL" | cut -d' ' -f1)
python3 - "$WHEEL" "$SO_IN_WHEEL" "$WORK/_vllm_fa2_C.abi3.so" <<'EOF' || die "cannot read $SO_IN_WHEEL from the wheel"
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    try:
        src = z.open(sys.argv[2])
    except KeyError:
        sys.exit("fetch_fa2: the wheel has no " + sys.argv[2])
    with src, open(sys.argv[3], "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
EOF

NEW="$OUT.new"
rm -rf "$NEW"
mkdir -p "$NEW"
python3 "$HERE/fa2_extract.py" --so "$WORK/_vllm_fa2_C.abi3.so" --cuobjdump "$CUOBJDUMP" \
	--ptxas "${PTXAS:-}" --out "$NEW" --work "$WORK" --wheel "$WHEEL" --wheel-sha256 "$WHEEL_SHA" ||
	{ rm -rf "$NEW"; die "extraction failed"; }
echo "$STAMP" >"$NEW/stamp"
rm -rf "$OUT"
mv "$NEW" "$OUT"

say "kept in $OUT ($(du -sh "$OUT" | cut -f1)):"
ls -l "$OUT" >&2
grep -v '^#' "$OUT/kernels.txt" | awk '{printf "  %-10s %-6s params=%s\n", $1, $2, $5}' >&2
