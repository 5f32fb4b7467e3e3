#!/usr/bin/env bash
# The engine's GPU runs, in phases, on the GPU machine (see tests/engine/README.md):
#   bash tests/engine/run.sh [stash] [model] [check] [fidelity] [speed] [tokens] [tp]
#   stash     keep the first model piece (.cache/smollm2/a) in /tmp for a later call
#   model     add the second piece (.cache/smollm2/b), reassemble and verify the GGUF
#   check     the model is right (text, logits vs reference, eager == graphs); dense only
#   fidelity  passkey / top-1 / KL: dense vs GSA_RATIO 0.1/0.2/0.3/0.5, policies mean and quest
#   speed     Llama-3-8B geometry, one GPU: decode tok/s and TTFT, dense vs GSA_RATIO=0.3
#   tokens    token identity (no library vs GSA_RATIO=1), one GPU
#   tp        the same speed and token checks with tensor parallelism over 2 GPUs
#             (tp-tokens, tp-speed: one half)
# The library is $ENGINE_GSA_LIB (default build/libgsa_preload.so). Results go to build/engine
# and, bundled, to $OUT (engine-results.tar.gz plus the JSON lines and the log).
# Knobs: ENGINE_SPEED_CONTEXTS, ENGINE_SPEED_BATCHES, ENGINE_SPEED_BUDGET_S, ENGINE_SPEED_ARGS
# (e.g. --passthrough), ENGINE_FID_TRIALS, ENGINE_FID_SEQS, ENGINE_FID_ARGS (e.g. --configs ...),
# ENGINE_TP_CONTEXTS, ENGINE_TP_BATCHES.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
out=${OUT:-build/engine-results}
work=build/engine
cache=/tmp/gsa_engine_cache
mkdir -p "$out" "$work" "$cache/model"
export ENGINE_CACHE=$cache PYTHONUNBUFFERED=1
# NVLink multicast stays off on shared hosts (see the device notes)
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
log="$out/engine.log"
say() { echo "== $*" | tee -a "$log"; }
status=0
py=${PYTHON:-python3}

need_gguf() {
	if ! $py -c 'import gguf' 2>/dev/null; then
		local w
		w=$(ls "$cache"/model/gguf-*.whl .cache/smollm2/a/gguf-*.whl 2>/dev/null | head -1)
		[ -n "$w" ] || { say "no gguf wheel (carry .cache/smollm2/a once)"; return 1; }
		$py -m pip install -q --no-index --no-deps --no-compile --target /tmp/site "$w" >>"$log" 2>&1
		export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
	fi
}

for phase in "$@"; do
	t0=$(date +%s)
	say "phase $phase ($(date -u +%H:%M:%S))"
	case "$phase" in
	stash)
		cp .cache/smollm2/a/* "$cache/model/" && ls -la "$cache/model" | tee -a "$log" ;;
	model)
		cp .cache/smollm2/b/* "$cache/model/" || status=1
		need_gguf || status=1
		$py -c "import sys; sys.path.insert(0,'tests/engine'); import weights; print(weights.find_gguf('$cache/model'))" 2>&1 | tee -a "$log" || status=1 ;;
	check)
		need_gguf; $py tests/engine/run.py check --out "$work" --model-dir "$cache/model" 2>&1 | tee -a "$log" || status=1 ;;
	fidelity)
		need_gguf; $py tests/engine/run.py fidelity --out "$work" --model-dir "$cache/model" \
			--trials "${ENGINE_FID_TRIALS:-8}" --text-seqs "${ENGINE_FID_SEQS:-16}" ${ENGINE_FID_ARGS:-} \
			2>&1 | tee -a "$log" || status=1
		cp "$work"/engine_fidelity*.jsonl "$out/" 2>/dev/null
		tool=$(dirname "${ENGINE_GSA_LIB:-build/libgsa_preload.so}")/gsa-trace
		if [ -f "$work/fidelity_mean_0.3.gsatrace" ] && [ -x "$tool" ]; then
			"$tool" summary "$work/fidelity_mean_0.3.gsatrace" > "$work/fidelity_trace_summary.txt" 2>&1
			head -40 "$work/fidelity_trace_summary.txt" | tee -a "$log"
		fi ;;
	speed)
		$py tests/engine/run.py speed --out "$work" --contexts "${ENGINE_SPEED_CONTEXTS:-8192,32768,131072}" \
			--batches "${ENGINE_SPEED_BATCHES:-1,2,4,8,16,32,64}" --budget-s "${ENGINE_SPEED_BUDGET_S:-200}" \
			${ENGINE_SPEED_ARGS:-} 2>&1 | tee -a "$log" || status=1
		cp "$work/engine_speed_tp1.jsonl" "$out/" 2>/dev/null ;;
	tokens)
		$py tests/engine/run.py tokens --out "$work" 2>&1 | tee -a "$log" || status=1 ;;
	tp | tp-tokens | tp-speed)
		export ENGINE_WORKER_TIMEOUT_S=${ENGINE_WORKER_TIMEOUT_S:-240}
		n=$(nvidia-smi -L 2>/dev/null | wc -l)
		if [ "$n" -lt 2 ]; then say "tp: this machine has $n GPU(s); tensor parallelism needs 2"; status=1; continue; fi
		if [ "$phase" != tp-speed ]; then
			$py tests/engine/run.py tokens --tp 2 --out "$work" 2>&1 | tee -a "$log" || status=1
			tar czf "$out/engine-results.tar.gz" -C build --exclude='engine/ref' --exclude='*.gsatrace' engine 2>/dev/null
		fi
		if [ "$phase" != tp-tokens ]; then
			$py tests/engine/run.py speed --tp 2 --out "$work" --contexts "${ENGINE_TP_CONTEXTS:-32768,131072}" \
				--batches "${ENGINE_TP_BATCHES:-1,8}" --budget-s "${ENGINE_SPEED_BUDGET_S:-200}" 2>&1 | tee -a "$log" || status=1
			cp "$work/engine_speed_tp2.jsonl" "$out/" 2>/dev/null
		fi ;;
	*) say "unknown phase $phase"; status=1 ;;
	esac
	say "phase $phase took $(( $(date +%s) - t0 )) s"
	# bundle after every phase: what is done comes back even if a later phase runs out of time
	tar czf "$out/engine-results.tar.gz" -C build --exclude='engine/ref' --exclude='*.gsatrace' engine 2>/dev/null
done
exit $status
