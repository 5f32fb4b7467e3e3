# GSA on vLLM's own FlashAttention-2 split-KV kernels (sourced by tests/gpu/run.sh).
# Needs .cache/fa2 (tests/gpu/fetch_fa2.sh, run where there is network; carry .cache/fa2).
# Uses gsa_run / gsa_bundle from triton.sh. Knob: GPU_FA2_STAGES (default "selftest exact ratio1";
# "bench" runs in the bench stage).

FA2_T=$ROOT/tests/gpu/fa2/test_gsa_fa2.py
GPU_FA2_STAGES=${GPU_FA2_STAGES:-"selftest exact ratio1"}
fa2_wants() { case " $GPU_FA2_STAGES " in *" $1 "*) return 0 ;; esac; return 1; }

stage_gsa_fa2() {
	section "GSA on vLLM FlashAttention-2 split-KV"
	mkdir -p "$GSA_W"
	if [ ! -d "$ROOT/.cache/fa2" ]; then
		fail "fa2: kernels present" ".cache/fa2 missing (run tests/gpu/fetch_fa2.sh and carry .cache/fa2)"
		return
	fi
	if fa2_wants selftest; then
		gsa_run "fa2: vLLM kernels run correctly (self-test)" 240 0 \
			"$PY" "$ROOT/tests/gpu/fa2/fa2_driver.py" selftest --quick
	fi
	if fa2_wants exact; then
		gsa_run "fa2: exact at 0.3 (mean)" 240 0 env LD_PRELOAD="$LIB" GSA_RATIO=0.3 \
			GSA_TRACE="$GSA_W/fa2-exact-%p.gsatrace" GSA_TRACE_BLOCKS=all \
			"$PY" "$FA2_T" exact --ratio 0.3
		gsa_run "fa2: exact at 0.3 (quest)" 240 0 env LD_PRELOAD="$LIB" GSA_RATIO=0.3 \
			GSA_POLICY=quest "$PY" "$FA2_T" exact --ratio 0.3 --quick
		gsa_run "fa2: the same check fails without the library" 240 1 \
			"$PY" "$FA2_T" exact --ratio 0.3 --quick
	fi
	if fa2_wants ratio1; then
		gsa_run "fa2: dense reference run" 240 0 \
			"$PY" "$FA2_T" exact --ratio 1 --save-dense "$GSA_W/fa2-dense.pt"
		gsa_run "fa2: GSA_RATIO=1 bit-identical" 240 0 env LD_PRELOAD="$LIB" GSA_RATIO=1 \
			"$PY" "$FA2_T" exact --ratio 1 --compare-dense "$GSA_W/fa2-dense.pt"
	fi
	gsa_bundle
}

stage_gsa_fa2_bench() {
	fa2_wants bench || [ -n "${GSA_BENCH:-}" ] || return 0
	section "GSA decode attention benchmark (FA2)"
	mkdir -p "$GSA_W"
	gsa_run "fa2: bench without the library" 300 0 \
		"$PY" "$ROOT/tests/gpu/fa2/bench_fa2.py" run "$GSA_W/fa2-dense.jsonl"
	gsa_run "fa2: bench with the library" 300 0 env LD_PRELOAD="$LIB" GSA_RATIO=0.3 \
		"$PY" "$ROOT/tests/gpu/fa2/bench_fa2.py" run "$GSA_W/fa2-gsa.jsonl" --gsa
	gsa_run "fa2: bench merge" 60 0 "$PY" "$ROOT/tests/gpu/fa2/bench_fa2.py" merge \
		"$GSA_W/fa2-dense.jsonl" "$GSA_W/fa2-gsa.jsonl" -o "$GSA_W/decode_attention-fa2.jsonl"
	cat "$GSA_W/fa2__bench_merge.out" 2>/dev/null
	gsa_bundle
}

TEST_STAGES+=(stage_gsa_fa2)
BENCH_STAGES+=(stage_gsa_fa2_bench)
