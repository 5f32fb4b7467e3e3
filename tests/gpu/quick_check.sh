#!/usr/bin/env bash
# A short GPU check of a change to the selection kernels, for when device time is short (about
# 100 s against the suite's 330): the steps of tests/gpu/run.sh that exercise the selection, on
# one vLLM release, with the same commands as stages/triton.sh and stages/fa2.sh, plus
# select_split's comparison with the C reference and, given an older split fatbin, the two
# builds timed in one process each (--cold-code). Not a replacement for the suite: it skips
# the pass-through, trace, launch-cost, reuse, needle and ratio-1 stages.
#
#   bash tests/gpu/quick_check.sh [RELEASE] [OLD_FATBIN [OLD_FLAGS]]
#
# RELEASE: a vLLM release under .cache/vllm (default 0.10.1). OLD_FATBIN: a
# gsa_kernels_split.fatbin of another build, timed against build/sparse/gsa_kernels_split.fatbin
# (OLD_FLAGS: select_split flags that build needs, e.g. --seq-major). Needs build/ as
# `make && make build/bench/select_split` leaves it, .cache/vllm and .cache/fa2. Prints one
# "PASS step" or "FAIL step (exit N)" line per step, the outputs under $OUT (default
# build/quick-check), and exits 1 when a step failed.
set -u -o pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd) || exit 1
cd "$ROOT" || exit 1
REL=${1:-0.10.1}
OLD=${2:-}
OLD_FLAGS=${3:-}
O=${OUT:-$ROOT/build/quick-check}
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 TRITON_CACHE_DIR=$ROOT/build/gpu/triton-cache
mkdir -p "$O" "$TRITON_CACHE_DIR"
LIB=$ROOT/build/libgsa_preload.so
SPLIT=$ROOT/build/bench/select_split
T=$ROOT/tests/gpu/vllm/test_gsa.py
failed=0

# step NAME EXPECT CMD...: runs CMD, output in $O/NAME.out; passes when its exit status is EXPECT.
step() {
	local name=$1 expect=$2 t0 rc
	shift 2
	t0=$(date +%s)
	"$@" >"$O/$name.out" 2>&1
	rc=$?
	grep -E '^(PASS|FAIL|CHECK)|passed, [0-9]+ failed|^batch ' "$O/$name.out" | tail -n 6 | sed 's/^/    | /'
	if [ "$rc" -eq "$expect" ]; then
		echo "PASS $name ($(($(date +%s) - t0)) s)"
	else
		echo "FAIL $name (exit $rc, expected $expect)"
		failed=1
	fi
}

step select_split_check 0 "$SPLIT" build/sparse/gsa_kernels_split.fatbin --check --only 0
if ! grep -q '^CHECK PASS' "$O/select_split_check.out"; then
	echo "FAIL select_split_check: no 'CHECK PASS' line"
	failed=1
fi
if [ -n "$OLD" ]; then
	# shellcheck disable=SC2086
	step select_split_old 0 "$SPLIT" "$OLD" $OLD_FLAGS --cold-code --only 0,8
	step select_split_new 0 "$SPLIT" build/sparse/gsa_kernels_split.fatbin --cold-code --only 0,8
fi
step "triton_${REL}_exact" 0 env LD_PRELOAD="$LIB" GSA_RATIO=0.3 "$PY" "$T" exact --release "$REL" --ratio 0.3
step "triton_${REL}_graph" 0 env LD_PRELOAD="$LIB" GSA_RATIO=0.3 "$PY" "$T" graph --release "$REL" --ratio 0.3
step c_reference 0 "$PY" tests/gpu/vllm/check_c_ref.py
step fa2_exact 0 env LD_PRELOAD="$LIB" GSA_RATIO=0.3 "$PY" tests/gpu/fa2/test_gsa_fa2.py exact --ratio 0.3
step "bench_${REL}_nolib" 0 "$PY" "$T" bench --release "$REL" --out "$O/bench-nolib-$REL.jsonl"
step "bench_${REL}_lib" 0 env LD_PRELOAD="$LIB" GSA_RATIO=0.3 "$PY" "$T" bench --release "$REL" \
	--out "$O/bench-lib-$REL.jsonl"
step "bench_${REL}_merge" 0 "$PY" "$T" bench-merge --nolib "$O/bench-nolib-$REL.jsonl" \
	--lib "$O/bench-lib-$REL.jsonl" --out "$O/decode_attention-$REL.jsonl"
[ "$failed" -eq 0 ] && echo "quick check: all steps passed" || echo "quick check: a step failed"
exit "$failed"
