#!/usr/bin/env bash
# The GPU suite of gsa-preload and its launch benchmark (make gpu-test). Needs an NVIDIA GPU,
# nvcc, python3 with PyTorch (CUDA) and Triton. See tests/gpu/README.md.
#
#   tests/gpu/run.sh                 build the test programs, run every test, then the benchmark
#   tests/gpu/run.sh --tests-only    the tests only
#   tests/gpu/run.sh --bench-only    the benchmark only
#
# Prints one "PASS <check>" or "FAIL <check>: <reason>" line per check and closes with
# "N passed, N failed"; exits 1 when a check failed (or there is no GPU). The whole log goes to
# $OUT/gpu-test.log ($OUT defaults to build/gpu-results); work files go to build/gpu/.
#
# Knobs (environment): GPU_TEST_BUDGET_S (time budget of the whole run, default 420 s: steps
# that would start after it are failed as not run), GPU_BENCH_ROUNDS (benchmark processes
# without and with the library, default 3 each), GPU_BENCH_LAUNCHES (per path and
# configuration, default 100000), GPU_BENCH_BATCH (launches per timed batch, default 32),
# GPU_BENCH_TARGET_NS (default 50), GPU_STAGES (stage functions to run, default all; see
# select_stages), PYTHON (default python3), CUDA_HOME (default /usr/local/cuda).
#
# Adding a stage: define a function that reports each check with pass/fail (helpers below:
# run_step, py_check, pick_trace, trace_table) and append it to TEST_STAGES or BENCH_STAGES,
# here or in a file tests/gpu/stages/*.sh (sourced before the run), e.g.
#     stage_gsa_attention() { section "GSA attention"; ...; pass "attention: ..."; }
#     TEST_STAGES+=(stage_gsa_attention)
set -u -o pipefail

START_DIR=$PWD
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd) || exit 1
cd "$ROOT" || exit 1

CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
export PATH="$PATH:$CUDA_HOME/bin"
PY=${PYTHON:-python3}
OUT_DIR=${OUT:-$ROOT/build/gpu-results}
case $OUT_DIR in /*) ;; *) OUT_DIR=$START_DIR/$OUT_DIR ;; esac
WORK=$ROOT/build/gpu
LIB=$ROOT/build/libgsa_preload.so
GSA_TRACE_TOOL=$ROOT/build/gsa-trace
CHECK_PY=$ROOT/tests/gpu/check.py
BUDGET_S=${GPU_TEST_BUDGET_S:-420}
BENCH_ROUNDS=${GPU_BENCH_ROUNDS:-3}
BENCH_LAUNCHES=${GPU_BENCH_LAUNCHES:-100000}
BENCH_TARGET_NS=${GPU_BENCH_TARGET_NS:-50}
BENCH_BATCH=${GPU_BENCH_BATCH:-32}
SUMMARIES=$OUT_DIR/trace-summaries.txt

# Python output straight to the log, and no __pycache__ in the work tree.
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
# Triton's cache inside build/ (a fresh machine may have no writable home cache).
export TRITON_CACHE_DIR=$WORK/triton-cache

MODE=all
for arg in "$@"; do
	case $arg in
	--tests-only) MODE=tests ;;
	--bench-only) MODE=bench ;;
	-h | --help)
		sed -n '2,24p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "run.sh: unknown argument '$arg' (expected --tests-only, --bench-only or --help)" >&2
		exit 2
		;;
	esac
done

# ------------------------------------------------------------------ bookkeeping

PASSED=0
FAILED=0
FAILED_NAMES=()
DEADLINE=$(($(date +%s) + BUDGET_S))
STEP_T=0

section() { printf '\n==== %s ====\n' "$*"; }
note() { echo "NOTE $*"; }
pass() { PASSED=$((PASSED + 1)); echo "PASS $1${2:+ ($2)}"; }
fail() {
	FAILED=$((FAILED + 1))
	FAILED_NAMES+=("$1")
	echo "FAIL $1: $2"
}

# Prints a file indented, at most N lines (its last ones).
show() {
	local file=$1 max=${2:-60} n
	[ -s "$file" ] || return 0
	n=$(wc -l <"$file")
	if [ "$n" -gt "$max" ]; then
		echo "    ... ($((n - max)) earlier lines in $file)"
	fi
	tail -n "$max" "$file" | sed 's/^/    | /'
}

# Sets STEP_T to the seconds a step may run: its cap, or what is left of the budget.
step_time() {
	local cap=$1 left=$((DEADLINE - $(date +%s) - 10))
	[ "$left" -lt "$cap" ] && cap=$left
	STEP_T=$cap
	[ "$cap" -ge 5 ]
}

# run_step CAP STDOUT STDERR CMD...: runs CMD with a time limit, its output in the two files.
# Returns CMD's status; 124 = timed out, 125 = not started (the budget is spent).
run_step() {
	local cap=$1 o=$2 e=$3 t0 rc
	shift 3
	if ! step_time "$cap"; then
		: >"$o"
		echo "not started: the suite's time budget of ${BUDGET_S}s is spent" >"$e"
		echo "    (not started: time budget spent) $(printf '%q ' "$@")"
		return 125
	fi
	echo "  \$ $(printf '%q ' "$@")"
	t0=$(date +%s)
	timeout -k 10 "$STEP_T" "$@" </dev/null >"$o" 2>"$e"
	rc=$?
	echo "    exit status $rc after $(($(date +%s) - t0))s"
	if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
		echo "timed out after ${STEP_T}s (killed)" >>"$e"
	fi
	return "$rc"
}

# The reason a step failed, for a FAIL line: its last stderr line, else its last stdout line.
why() {
	local o=$1 e=$2 rc=$3 line
	line=$(grep -v '^[[:space:]]*$' "$e" 2>/dev/null | tail -n 1)
	[ -z "$line" ] && line=$(grep -v '^[[:space:]]*$' "$o" 2>/dev/null | tail -n 1)
	echo "exit status $rc${line:+: $line}"
}

# py_check NAME ARGS...: runs check.py ARGS, shows its output, PASS/FAIL from its last line.
# With PY_CHECK_DEFER=N, check.py's exit status N records no verdict and is returned.
py_check() {
	local name=$1 o rc last
	shift
	o=$WORK/check.$$.out
	if ! step_time 120; then
		fail "$name" "not run: the suite's time budget of ${BUDGET_S}s is spent"
		return 1
	fi
	timeout -k 10 "$STEP_T" "$PY" "$CHECK_PY" "$@" </dev/null >"$o" 2>&1
	rc=$?
	show "$o" 400
	last=$(grep -E '^(PASS|FAIL): ' "$o" | tail -n 1)
	# A status the caller asked to handle itself (e.g. "measure more"): no verdict yet.
	if [ -n "${PY_CHECK_DEFER:-}" ] && [ "$rc" -eq "$PY_CHECK_DEFER" ]; then
		note "$name: not settled yet (${last#FAIL: })"
		return "$rc"
	fi
	if [ "$rc" -eq 0 ] && [ "${last#PASS: }" != "$last" ]; then
		pass "$name" "${last#PASS: }"
		return 0
	fi
	fail "$name" "${last:+${last#FAIL: }; }check.py exit status $rc"
	return 1
}

# The trace file(s) a run wrote: FOUND_TRACES (array) for the glob DIR/PREFIX*.gsatrace.
find_traces() {
	local dir=$1 prefix=$2 f
	FOUND_TRACES=()
	for f in "$dir/$prefix"*.gsatrace; do
		[ -e "$f" ] && FOUND_TRACES+=("$f")
	done
}

# pick_trace NAME DIR PREFIX PID: sets PICKED_TRACE to the trace file of process PID
# (DIR/PREFIX<PID>.gsatrace, as GSA_TRACE=DIR/PREFIX%p.gsatrace names it). Fails
# "NAME: trace written" when there is none (status 1); when the only file has another name,
# fails "NAME: GSA_TRACE %p expanded to the pid" but still picks that file.
pick_trace() {
	local name=$1 dir=$2 prefix=$3 pid=$4
	PICKED_TRACE=
	find_traces "$dir" "$prefix"
	echo "  trace files: ${FOUND_TRACES[*]:-none}   program pid: ${pid:-?}"
	if [ -n "$pid" ] && [ -f "$dir/$prefix$pid.gsatrace" ]; then
		if [ "${#FOUND_TRACES[@]}" -gt 1 ]; then
			note "$name: other processes under the library also wrote traces: ${FOUND_TRACES[*]}"
		fi
		pass "$name: trace written" "$prefix$pid.gsatrace"
		PICKED_TRACE=$dir/$prefix$pid.gsatrace
		return 0
	fi
	if [ "${#FOUND_TRACES[@]}" -eq 0 ]; then
		fail "$name: trace written" "no trace file $dir/$prefix${pid:-<pid>}.gsatrace (GSA_TRACE=$dir/$prefix%p.gsatrace)"
		return 1
	fi
	if [ "${#FOUND_TRACES[@]}" -eq 1 ] && [ -n "$pid" ]; then
		fail "$name: GSA_TRACE %p expanded to the pid" "the trace is ${FOUND_TRACES[0]}, expected $dir/$prefix$pid.gsatrace; checking that file anyway"
		PICKED_TRACE=${FOUND_TRACES[0]}
		return 0
	fi
	fail "$name: trace written" "no trace file for pid ${pid:-?} among: ${FOUND_TRACES[*]}"
	return 1
}

# trace_table NAME TRACE TSV: gsa-trace kernels into TSV, the summary into the summaries file
# and the log; checks the trace is readable and ended cleanly.
trace_table() {
	local name=$1 trace=$2 tsv=$3 sum=$3.summary rc
	"$GSA_TRACE_TOOL" kernels "$trace" >"$tsv" 2>"$tsv.err"
	rc=$?
	"$GSA_TRACE_TOOL" summary "$trace" >"$sum" 2>&1
	{
		echo "==== $name: $trace"
		cat "$sum"
		echo
	} >>"$SUMMARIES"
	show "$sum" 40
	if [ "$rc" -ne 0 ]; then
		fail "$name: trace readable" "gsa-trace kernels exit status $rc: $(tail -n 1 "$tsv.err")"
		return 1
	fi
	if ! grep -q 'ended cleanly' "$sum"; then
		fail "$name: trace readable" "the trace did not end cleanly (no END record: $(head -n 1 "$sum"))"
		return 1
	fi
	pass "$name: trace readable" "ended cleanly"
	return 0
}

# ------------------------------------------------------------------ stages

TEST_STAGES=(stage_launch_paths stage_torch stage_non_cuda)
BENCH_STAGES=(stage_bench)

check_gpu() {
	local listing rc
	if ! command -v nvidia-smi >/dev/null 2>&1; then
		echo "make gpu-test: no NVIDIA GPU found (nvidia-smi -L: nvidia-smi is not installed): the GPU suite needs one"
		return 1
	fi
	listing=$(timeout 60 nvidia-smi -L 2>&1)
	rc=$?
	if [ "$rc" -ne 0 ]; then
		echo "make gpu-test: no NVIDIA GPU found (nvidia-smi -L exited $rc: $(echo "$listing" | tail -n 1)): the GPU suite needs one"
		return 1
	fi
	if ! echo "$listing" | grep -q '^GPU [0-9]'; then
		echo "make gpu-test: no NVIDIA GPU found (nvidia-smi -L listed no GPU${listing:+: $(echo "$listing" | tail -n 1)}): the GPU suite needs one"
		return 1
	fi
	echo "$listing"
	return 0
}

stage_environment() {
	section "environment"
	GPU_NAME=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1)
	DRIVER_VERSION=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -n 1)
	local cc
	cc=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n 1 | tr -d ' .')
	if [[ "$cc" =~ ^[0-9]+$ ]]; then
		ARCH=sm_$cc
	else
		ARCH=sm_90
		note "could not read the compute capability from nvidia-smi ('$cc'); building for $ARCH"
	fi
	echo "GPU: ${GPU_NAME:-?}  driver: ${DRIVER_VERSION:-?}  arch: $ARCH"
	echo "date: $(date -u '+%Y-%m-%dT%H:%M:%SZ')  host: $(hostname 2>/dev/null)  kernel: $(uname -r)"
	echo "git: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" status --porcelain 2>/dev/null | grep -q . && echo ' (work tree modified)')"
	if command -v nvcc >/dev/null 2>&1; then
		echo "nvcc: $(nvcc --version | tail -n 1)  ($(command -v nvcc))"
	else
		echo "nvcc: not found (looked in PATH and $CUDA_HOME/bin)"
	fi
	echo "gcc: $(gcc --version 2>/dev/null | head -n 1)"
	echo "python: $($PY --version 2>&1)  ($(command -v "$PY"))"
	local v
	v=$(timeout 120 "$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "cuda_available", torch.cuda.is_available())' 2>&1 | tail -n 1)
	echo "torch: $v"
	v=$(timeout 60 "$PY" -c 'import triton; print("triton", triton.__version__)' 2>&1 | tail -n 1)
	echo "triton: $v"
	echo "output folder: $OUT_DIR   work folder: $WORK   budget: ${BUDGET_S}s"
}

stage_library() {
	section "library"
	if [ ! -f "$LIB" ] || [ ! -x "$GSA_TRACE_TOOL" ]; then
		echo "build/libgsa_preload.so or build/gsa-trace is missing: running make all"
		if ! make -C "$ROOT" all >"$WORK/make.log" 2>&1; then
			show "$WORK/make.log" 40
			fail "library: build" "make all failed (log above, full log in build/gpu/make.log)"
			return 1
		fi
		show "$WORK/make.log" 10
	fi
	if [ ! -f "$LIB" ] || [ ! -x "$GSA_TRACE_TOOL" ]; then
		fail "library: build" "build/libgsa_preload.so or build/gsa-trace still missing after make all"
		return 1
	fi
	echo "library: $LIB ($(stat -c %s "$LIB") bytes, $(date -u -r "$LIB" '+%Y-%m-%dT%H:%M:%SZ'))"
	# The commit the library was linked from (make writes it; the git line above is this
	# checkout's, which on a machine that got build/ carried along may be another).
	echo "library built from: $(cat "$ROOT/build/source-rev.txt" 2>/dev/null || echo 'unknown (no build/source-rev.txt)')"
	echo "tool: $GSA_TRACE_TOOL"
	return 0
}

# build_programs NAME...: nvcc builds of the programs named (in parallel); BUILT_<name>=1 for
# each that built.
# GPU_STAGES (stage function names): of the mode's stages, those alone, in the mode's order,
# and of the programs only those they run (launch_paths_* for stage_launch_paths,
# launch_overhead for stage_bench). A name that is no stage of the mode fails the run's check
# "GPU_STAGES". Sets the caller's stages and progs.
select_stages() {
	local want=" $GPU_STAGES " kept=() name st
	for st in "${stages[@]}"; do
		case $want in *" $st "*) kept+=("$st") ;; esac
	done
	for name in $GPU_STAGES; do
		case " ${stages[*]} " in
		*" $name "*) ;;
		*) fail "GPU_STAGES" "$name is not a stage of this mode (${stages[*]})" ;;
		esac
	done
	stages=("${kept[@]}")
	local p
	kept=()
	for p in "${progs[@]}"; do
		case $p in
		launch_paths_*) case $want in *" stage_launch_paths "*) kept+=("$p") ;; esac ;;
		launch_overhead) case $want in *" stage_bench "*) kept+=("$p") ;; esac ;;
		*) kept+=("$p") ;;
		esac
	done
	progs=("${kept[@]}")
}

build_programs() {
	section "building CUDA programs ($ARCH)"
	if ! command -v nvcc >/dev/null 2>&1; then
		local p
		for p in "$@"; do fail "build $p" "nvcc not found (PATH and $CUDA_HOME/bin)"; done
		return 1
	fi
	local -a names=() pids=()
	local p cmd
	for p in "$@"; do
		case $p in
		launch_paths_static)
			cmd=(nvcc -O2 -std=c++17 "-arch=$ARCH" -o "$WORK/launch_paths_static"
				tests/gpu/launch_paths.cu -lcuda -ldl) ;;
		launch_paths_shared)
			cmd=(nvcc -O2 -std=c++17 "-arch=$ARCH" -cudart shared
				-Xlinker "-rpath,$CUDA_HOME/lib64" -o "$WORK/launch_paths_shared"
				tests/gpu/launch_paths.cu -lcuda -ldl) ;;
		launch_overhead)
			cmd=(nvcc -O2 -std=c++17 "-arch=$ARCH" -o "$WORK/launch_overhead"
				tests/bench/launch_overhead.cu -lcuda -lpthread) ;;
		*) fail "build $p" "unknown program"; continue ;;
		esac
		rm -f "$WORK/$p"
		echo "  \$ $(printf '%q ' "${cmd[@]}")"
		if step_time 240; then
			timeout -k 10 "$STEP_T" "${cmd[@]}" </dev/null >"$WORK/build_$p.log" 2>&1 &
			pids+=($!)
			names+=("$p")
		else
			fail "build $p" "not started: the suite's time budget is spent"
		fi
	done
	local i rc
	for i in "${!pids[@]}"; do
		wait "${pids[$i]}"
		rc=$?
		p=${names[$i]}
		if [ "$rc" -eq 0 ] && [ -x "$WORK/$p" ]; then
			show "$WORK/build_$p.log" 20
			printf -v "BUILT_$p" 1
			pass "build $p"
		else
			show "$WORK/build_$p.log" 40
			fail "build $p" "nvcc exit status $rc (log above; build/gpu/build_$p.log)"
		fi
	done
}

is_built() { local v="BUILT_$1"; [ "${!v:-0}" = 1 ]; }

# ---- launch paths

stage_launch_paths() {
	local variant
	for variant in static shared; do
		launch_paths_variant "$variant"
	done
}

# "; failing: <kernels>" for the PATH lines of a launch_paths output that failed, else nothing.
failing_paths() {
	local k
	k=$(grep -E '^PATH .* FAIL: ' "$1" 2>/dev/null | grep -o 'kernel=[^ ]*' | sed 's/^kernel=//' | tr '\n' ' ')
	[ -n "$k" ] && echo "; failing: ${k% }"
	return 0
}

launch_paths_variant() {
	local v=$1 name="launch_paths/$1" bin=$WORK/launch_paths_$1 d=$WORK/launch_paths_$1.d rc
	section "$name: every launch path, cudart $v"
	if ! is_built "launch_paths_$v"; then
		fail "$name" "not built (see the build step)"
		return
	fi
	rm -rf "$d"
	mkdir -p "$d"

	run_step 60 "$d/plain.out" "$d/plain.err" "$bin"
	rc=$?
	show "$d/plain.out" 60
	show "$d/plain.err" 20
	if [ "$rc" -eq 0 ] && grep -q '^RESULT: OK' "$d/plain.out"; then
		pass "$name: correct without the library"
	else
		fail "$name: correct without the library" "$(grep -m1 -E '^(RESULT|SETUP)' "$d/plain.out" || why "$d/plain.out" "$d/plain.err" "$rc")$(failing_paths "$d/plain.out") (the program itself, or the machine, is at fault: fix this first)"
	fi

	run_step 60 "$d/preload.out" "$d/preload.err" \
		env LD_PRELOAD="$LIB" GSA_TRACE="$d/trace.%p.gsatrace" "$bin"
	rc=$?
	show "$d/preload.out" 60
	show "$d/preload.err" 20
	if [ "$rc" -eq 0 ] && grep -q '^RESULT: OK' "$d/preload.out"; then
		pass "$name: correct under the library"
	else
		fail "$name: correct under the library" "$(grep -m1 -E '^(RESULT|SETUP)' "$d/preload.out" || why "$d/preload.out" "$d/preload.err" "$rc")$(failing_paths "$d/preload.out")"
	fi
	# A path the driver does not offer is skipped; it must be skipped without the library too.
	local skip_plain skip_pre
	skip_plain=$(grep -E '^PATH .* SKIP: ' "$d/plain.out" 2>/dev/null | grep -o 'kernel=[^ ]*' | sort | tr '\n' ' ')
	skip_pre=$(grep -E '^PATH .* SKIP: ' "$d/preload.out" 2>/dev/null | grep -o 'kernel=[^ ]*' | sort | tr '\n' ' ')
	[ -n "$skip_plain" ] && note "$name: paths the driver does not offer (skipped): $skip_plain"
	if [ "$skip_plain" != "$skip_pre" ]; then
		fail "$name: same paths available under the library" "skipped without the library: ${skip_plain:-none}; under it: ${skip_pre:-none}"
	fi
	if ! grep -q 'preload=yes' "$d/preload.out"; then
		fail "$name: library loaded" "the program did not see libgsa_preload.so in its mappings under LD_PRELOAD=$LIB"
	fi
	if [ "$v" = shared ] && ! grep -q '^cudart=shared' "$d/plain.out"; then
		fail "$name: uses the shared runtime" "the -cudart shared build did not map libcudart.so (see its cudart= line)"
	fi
	if grep -q '^libcuda=.*stubs' "$d/plain.out" "$d/preload.out" 2>/dev/null; then
		fail "$name: real driver" "the program mapped the toolkit's stub libcuda, not the driver's"
	fi

	local pid
	pid=$(sed -n 's/^pid=\([0-9][0-9]*\)$/\1/p' "$d/preload.out" | head -n 1)
	pick_trace "$name" "$d" trace. "$pid" || return
	trace_table "$name" "$PICKED_TRACE" "$d/trace.tsv" || return
	py_check "$name: trace has every launch by kernel name, none unnamed" \
		expect "$d/preload.out" "$d/trace.tsv"
}

# ---- PyTorch + Triton + CUDA graphs

stage_torch() {
	local d=$WORK/torch prog=$ROOT/tests/gpu/torch_passthrough.py rc rc_plain rc_pre rc_prof
	local rc_bad pid
	section "torch: pass-through with PyTorch, Triton and CUDA graphs"
	rm -rf "$d"
	mkdir -p "$d" "$TRITON_CACHE_DIR"

	run_step 200 "$d/plain.out" "$d/plain.err" "$PY" "$prog" "$d/plain.pt" --meta "$d/plain.json"
	rc_plain=$?
	show "$d/plain.out" 30
	show "$d/plain.err" 30
	if [ "$rc_plain" -eq 0 ] && [ -s "$d/plain.pt" ]; then
		pass "torch: program runs without the library"
	else
		fail "torch: program runs without the library" "$(why "$d/plain.out" "$d/plain.err" "$rc_plain") (the program or the machine is at fault; the torch checks below cannot pass)"
	fi

	run_step 200 "$d/preload.out" "$d/preload.err" \
		env LD_PRELOAD="$LIB" GSA_TRACE="$d/trace.%p.gsatrace" \
		"$PY" "$prog" "$d/preload.pt" --meta "$d/preload.json"
	rc_pre=$?
	show "$d/preload.out" 30
	show "$d/preload.err" 30
	if [ "$rc_pre" -eq 0 ] && [ -s "$d/preload.pt" ]; then
		pass "torch: program runs under the library with GSA_TRACE"
	else
		fail "torch: program runs under the library with GSA_TRACE" "$(why "$d/preload.out" "$d/preload.err" "$rc_pre")"
	fi
	if [ "$rc_plain" -eq 0 ] && [ "$rc_pre" -eq 0 ]; then
		py_check "torch: outputs bit-identical with the library" \
			compare-outputs "$d/plain.pt" "$d/preload.pt"
	else
		fail "torch: outputs bit-identical with the library" "not compared: a run failed"
	fi

	# The trace of the program's own process (children, e.g. compilers, start none).
	pid=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["pid"])' "$d/preload.json" 2>/dev/null)
	local have_tsv=0
	if pick_trace "torch" "$d" trace. "$pid" &&
		trace_table "torch" "$PICKED_TRACE" "$d/trace.tsv"; then
		have_tsv=1
		show "$d/trace.tsv" 80
	fi
	if [ "$have_tsv" = 1 ] && [ -s "$d/preload.json" ]; then
		py_check "torch: trace has no unnamed launch and names the Triton kernel" \
			torch-trace --trace-tsv "$d/trace.tsv" --meta "$d/preload.json"
	else
		fail "torch: trace has no unnamed launch and names the Triton kernel" "no trace table or no program meta to check"
	fi

	# Zero missed: an independent count of launch API calls from torch.profiler (no library).
	run_step 240 "$d/profiled.out" "$d/profiled.err" \
		"$PY" "$prog" "$d/profiled.pt" --meta "$d/profiled.json" --profile "$d/profile.json"
	rc_prof=$?
	show "$d/profiled.out" 20
	show "$d/profiled.err" 30
	if [ "$rc_prof" -ne 0 ] && [ "$rc_prof" -ne 124 ] && [ "$rc_prof" -ne 125 ]; then
		note "the profiled run failed with capture mode 'global'; retrying with 'thread_local' (the launch count does not depend on it)"
		run_step 240 "$d/profiled.out" "$d/profiled.err" \
			"$PY" "$prog" "$d/profiled.pt" --meta "$d/profiled.json" --profile "$d/profile.json" \
			--capture-mode thread_local
		rc_prof=$?
		show "$d/profiled.out" 20
		show "$d/profiled.err" 30
	fi
	if [ "$rc_prof" -ne 0 ] || [ ! -s "$d/profile.json" ]; then
		fail "torch: zero missed launches (torch.profiler count == trace total)" "the profiled run failed: $(why "$d/profiled.out" "$d/profiled.err" "$rc_prof")"
	elif [ "$have_tsv" != 1 ] || [ ! -s "$d/preload.json" ]; then
		fail "torch: zero missed launches (torch.profiler count == trace total)" "no trace table or no program meta to compare with"
	else
		py_check "torch: zero missed launches (torch.profiler count == trace total)" \
			torch-launches --profile "$d/profile.json" --trace-tsv "$d/trace.tsv" \
			--meta "$d/preload.json"
	fi

	# A bad configuration value: one stderr line naming it, then an unmodified run.
	run_step 200 "$d/badratio.out" "$d/badratio.err" \
		env LD_PRELOAD="$LIB" GSA_RATIO=abc "$PY" "$prog" "$d/badratio.pt" --meta "$d/badratio.json"
	rc_bad=$?
	show "$d/badratio.out" 20
	show "$d/badratio.err" 30
	if [ "$rc_bad" -ne 0 ]; then
		fail "torch GSA_RATIO=abc: runs" "$(why "$d/badratio.out" "$d/badratio.err" "$rc_bad")"
	fi
	local lines_ratio lines_lib
	lines_ratio=$(grep -c 'GSA_RATIO' "$d/badratio.err" 2>/dev/null)
	lines_lib=$(grep -c 'gsa-preload' "$d/badratio.err" 2>/dev/null)
	lines_ratio=${lines_ratio:-0}
	lines_lib=${lines_lib:-0}
	if [ "$rc_bad" -eq 125 ]; then
		fail "torch GSA_RATIO=abc: one stderr line naming GSA_RATIO and abc" "not run (time budget spent)"
	elif [ "$lines_ratio" -eq 1 ] && grep 'GSA_RATIO' "$d/badratio.err" | grep -q 'abc' &&
		[ "$lines_lib" -le 1 ] && ! grep -q 'GSA_RATIO' "$d/badratio.out"; then
		pass "torch GSA_RATIO=abc: one stderr line naming GSA_RATIO and abc" "$(grep 'GSA_RATIO' "$d/badratio.err")"
	else
		fail "torch GSA_RATIO=abc: one stderr line naming GSA_RATIO and abc" "stderr has $lines_ratio lines with GSA_RATIO and $lines_lib with gsa-preload (want 1 and 1, the first naming abc; stdout must have none): $(grep -E 'GSA_RATIO|gsa-preload' "$d/badratio.err" "$d/badratio.out" | head -n 3 | tr '\n' '|')"
	fi
	if [ "$rc_plain" -eq 0 ] && [ "$rc_bad" -eq 0 ]; then
		py_check "torch GSA_RATIO=abc: outputs bit-identical" \
			compare-outputs "$d/plain.pt" "$d/badratio.pt"
	else
		fail "torch GSA_RATIO=abc: outputs bit-identical" "not compared: a run failed"
	fi
}

# ---- non-CUDA commands under the library with a bad value: silent, unchanged

stage_non_cuda() {
	local d=$WORK/noncuda i rc rc_ref label
	section "non-CUDA commands under the library (GSA_RATIO=abc)"
	rm -rf "$d"
	mkdir -p "$d"
	local -a cmds=("$PY -c print(1)" "/bin/true" "nvcc --version")
	for i in 0 1 2; do
		label=${cmds[$i]}
		local -a argv
		case $i in
		0) argv=("$PY" -c 'print(1)') ;;
		1) argv=(/bin/true) ;;
		2) argv=(nvcc --version) ;;
		esac
		if [ "$i" -eq 2 ] && ! command -v nvcc >/dev/null 2>&1; then
			fail "non-CUDA '$label': silent and unchanged" "nvcc not found"
			continue
		fi
		run_step 60 "$d/$i.ref.out" "$d/$i.ref.err" "${argv[@]}"
		rc_ref=$?
		run_step 60 "$d/$i.out" "$d/$i.err" \
			env LD_PRELOAD="$LIB" GSA_RATIO=abc GSA_TRACE="$d/trace.$i.%p.gsatrace" "${argv[@]}"
		rc=$?
		show "$d/$i.out" 10
		show "$d/$i.err" 10
		if [ "$rc" -ne 0 ]; then
			fail "non-CUDA '$label': silent and unchanged" "$(why "$d/$i.out" "$d/$i.err" "$rc") (without the library: exit status $rc_ref)"
		elif [ -s "$d/$i.err" ] && ! cmp -s "$d/$i.err" "$d/$i.ref.err"; then
			fail "non-CUDA '$label': silent and unchanged" "extra stderr: $(head -n 2 "$d/$i.err" | tr '\n' '|')"
		elif ! cmp -s "$d/$i.out" "$d/$i.ref.out"; then
			fail "non-CUDA '$label': silent and unchanged" "stdout differs from the run without the library: $(diff "$d/$i.ref.out" "$d/$i.out" | head -n 4 | tr '\n' '|')"
		else
			pass "non-CUDA '$label': silent and unchanged"
		fi
		find_traces "$d" "trace.$i."
		[ "${#FOUND_TRACES[@]}" -gt 0 ] && note "'$label' left a trace file though it uses no CUDA (and GSA_RATIO=abc makes the library inert): ${FOUND_TRACES[*]}"
	done
}

# ---- benchmark

# bench_run MODE ROUND: one benchmark run (off, preload or trace); appends to BENCH_SPECS and
# BENCH_CARGS (check.py arguments). Status 1 when it failed.
bench_run() {
	local mode=$1 r=$2 f=$WORK/bench/$1.$2 rc
	local -a cmd=()
	case $mode in
	off) cmd=("$WORK/launch_overhead") ;;
	preload) cmd=(env LD_PRELOAD="$LIB" "$WORK/launch_overhead") ;;
	trace) cmd=(env LD_PRELOAD="$LIB" GSA_TRACE="$WORK/bench/trace.$r.%p.gsatrace"
		"$WORK/launch_overhead") ;;
	esac
	cmd+=("${BENCH_ARGS[@]}" --dump "$f.batches.tsv")
	BENCH_CARGS+=(--command "$mode $r: $(printf '%q ' "${cmd[@]}")")
	run_step 120 "$f.out" "$f.err" "${cmd[@]}"
	rc=$?
	show "$f.out" 24
	show "$f.err" 10
	if [ "$rc" -ne 0 ]; then
		fail "bench: $mode run $r" "$(why "$f.out" "$f.err" "$rc")"
		return 1
	fi
	BENCH_SPECS+=("$mode:$r=$f.out")
	return 0
}

# The host time the library adds to a launch, measured inside each benchmark process: batches of
# cuLaunchKernel through the PLT (the library's wrapper under LD_PRELOAD) alternate with batches
# through libcuda.so.1's own entry point (tests/bench/launch_overhead.cu). Runs: per round one
# without the library (the method's control: both paths are then the same function) and one
# with it; then one with GSA_TRACE, whose trace must count every launch. Gates: the library
# adds at most GPU_BENCH_TARGET_NS per driver launch (1 thread; 8 threads: not wholly above
# it, their interval being ~60 ns wide); the control's two
# paths differ by at most as much. The runtime (<<<>>>) numbers are reported, not gated.
stage_bench() {
	local d=$WORK/bench r ok=1
	section "benchmark: host cost of a pass-through launch (in one process, against libcuda's own cuLaunchKernel)"
	if ! is_built launch_overhead; then
		fail "bench: launch overhead" "not built (see the build step)"
		return
	fi
	rm -rf "$d"
	mkdir -p "$d"
	[ "$BENCH_ROUNDS" -ge 1 ] 2>/dev/null || BENCH_ROUNDS=3
	BENCH_ARGS=(--launches "$BENCH_LAUNCHES" --batch "$BENCH_BATCH" --threads "1,8"
		--api "driver,runtime")
	BENCH_SPECS=()
	BENCH_CARGS=()
	# The benchmark's own .dynsym look-up against dlsym on the real driver (no library here).
	run_step 60 "$d/selftest.out" "$d/selftest.err" "$WORK/launch_overhead" --selftest-elf libcuda.so.1
	r=$?
	show "$d/selftest.out" 12
	show "$d/selftest.err" 5
	if [ "$r" -eq 0 ] && grep -q '^PASS: ' "$d/selftest.out"; then
		pass "bench: .dynsym look-up of libcuda.so.1 agrees with dlsym" "$(grep '^PASS: ' "$d/selftest.out" | head -n 1 | sed 's/^PASS: //')"
	else
		fail "bench: .dynsym look-up of libcuda.so.1 agrees with dlsym" "$(why "$d/selftest.out" "$d/selftest.err" "$r")"
	fi
	# Rounds of (without, with the library); a failed run ends the rounds. The traced run
	# comes last and is made in any case (the trace-count check needs it).
	for r in $(seq 1 "$BENCH_ROUNDS"); do
		if ! bench_run off "$r" || ! bench_run preload "$r"; then
			ok=0
			break
		fi
	done
	bench_run trace 1 || ok=0
	[ "$ok" = 1 ] || note "bench: reporting the runs completed before the failed run"
	if printf '%s\n' "${BENCH_SPECS[@]}" | grep -q '^preload:'; then
		# A median over the target whose 95% interval still holds it is not a verdict: once,
		# BENCH_ROUNDS more rounds are measured and the gate judges all rounds pooled; then
		# unsettled is a failure (check.py bench-report says how 8 threads are judged).
		local gate_name="bench: driver launch adds at most ${BENCH_TARGET_NS} ns (1 and 8 threads, in-process vs libcuda's entry point)"
		local -a gate_args=(bench-report --gate overhead --out-txt "$OUT_DIR/launch_overhead.txt"
			--out-jsonl "$OUT_DIR/launch_overhead.jsonl" --target-ns "$BENCH_TARGET_NS"
			--gpu "${GPU_NAME:-?}" --driver "${DRIVER_VERSION:-?}")
		local gate_rc=3
		if [ "$ok" = 1 ]; then
			PY_CHECK_DEFER=3 py_check "$gate_name" "${gate_args[@]}" --unsettled-status 3 \
				"${BENCH_CARGS[@]}" "${BENCH_SPECS[@]}"
			gate_rc=$?
			if [ "$gate_rc" -eq 3 ]; then
				note "bench: measuring $BENCH_ROUNDS more rounds, then judging all of them"
				for r in $(seq $((BENCH_ROUNDS + 1)) $((2 * BENCH_ROUNDS))); do
					bench_run off "$r" && bench_run preload "$r" || break
				done
			fi
		fi
		if [ "$gate_rc" -eq 3 ]; then
			py_check "$gate_name" "${gate_args[@]}" "${BENCH_CARGS[@]}" "${BENCH_SPECS[@]}"
		fi
	else
		fail "bench: driver launch adds at most ${BENCH_TARGET_NS} ns (1 and 8 threads, in-process vs libcuda's entry point)" "not measured: no benchmark run with the library completed"
	fi
	if printf '%s\n' "${BENCH_SPECS[@]}" | grep -q '^off:'; then
		py_check "bench: method control without the library (same function, paths within ${BENCH_TARGET_NS} ns)" \
			bench-report --gate control --target-ns "$BENCH_TARGET_NS" \
			--gpu "${GPU_NAME:-?}" --driver "${DRIVER_VERSION:-?}" "${BENCH_SPECS[@]}"
	else
		fail "bench: method control without the library (same function, paths within ${BENCH_TARGET_NS} ns)" "not measured: no benchmark run without the library completed"
	fi
	# The traced run must have counted every launch of all 8 threads.
	local pid
	if [ ! -s "$d/trace.1.out" ]; then
		fail "bench: trace counts every launch (1 and 8 threads)" "the traced run did not run"
		return
	fi
	pid=$(sed -n 's/^pid=\([0-9][0-9]*\)$/\1/p' "$d/trace.1.out" | head -n 1)
	pick_trace "bench" "$d" trace.1. "$pid" || return
	trace_table "bench" "$PICKED_TRACE" "$d/trace.1.tsv" || return
	py_check "bench: trace counts every launch (1 and 8 threads)" \
		expect "$d/trace.1.out" "$d/trace.1.tsv"
}

# ------------------------------------------------------------------ main

main() {
	echo "gsa-preload GPU suite ($MODE): $(date -u '+%Y-%m-%dT%H:%M:%SZ')"
	if ! check_gpu; then
		return 1
	fi
	# A clean environment: none of the library's variables or preloads from outside.
	local v
	for v in $(compgen -e | grep '^GSA_'); do unset "$v"; done
	unset LD_PRELOAD

	mkdir -p "$WORK"
	: >"$SUMMARIES"
	local f
	for f in "$ROOT"/tests/gpu/stages/*.sh; do
		[ -e "$f" ] || continue
		echo "sourcing stage file $f"
		# shellcheck disable=SC1090
		source "$f"
	done

	stage_environment
	if stage_library; then
		local -a progs=() stages=()
		case $MODE in
		all) progs=(launch_paths_static launch_paths_shared launch_overhead)
			stages=("${TEST_STAGES[@]}" "${BENCH_STAGES[@]}") ;;
		tests) progs=(launch_paths_static launch_paths_shared)
			stages=("${TEST_STAGES[@]}") ;;
		bench) progs=(launch_overhead)
			stages=("${BENCH_STAGES[@]}") ;;
		esac
		if [ -n "${GPU_STAGES:-}" ]; then
			select_stages
		fi
		build_programs "${progs[@]}"
		local s
		for s in "${stages[@]}"; do
			"$s"
		done
	fi

	section "result"
	echo "elapsed: $((BUDGET_S - (DEADLINE - $(date +%s))))s of a ${BUDGET_S}s budget"
	echo "files: $OUT_DIR/gpu-test.log $( [ -s "$SUMMARIES" ] && echo "$SUMMARIES") $( [ -f "$OUT_DIR/launch_overhead.txt" ] && echo "$OUT_DIR/launch_overhead.txt $OUT_DIR/launch_overhead.jsonl")"
	if [ "$FAILED" -gt 0 ]; then
		echo "failed checks:"
		printf '  %s\n' "${FAILED_NAMES[@]}"
	fi
	echo "$PASSED passed, $FAILED failed"
	[ "$FAILED" -eq 0 ]
}

mkdir -p "$OUT_DIR" || { echo "run.sh: cannot create the output folder $OUT_DIR" >&2; exit 1; }
main 2>&1 | tee "$OUT_DIR/gpu-test.log"
exit "${PIPESTATUS[0]}"
