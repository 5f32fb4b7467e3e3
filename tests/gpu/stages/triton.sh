# GSA on vLLM's own Triton unified attention (sourced by tests/gpu/run.sh).
# Needs .cache/vllm/<release> (tests/gpu/fetch_vllm.sh, run where there is network, then carry
# .cache/vllm). Extra outputs go to $WORK/gsa and are bundled into $OUT/gsa-results.tar.gz.
#
# Knobs: GPU_GSA_RELEASES (default "0.10.1 0.34.0": one release of 2025, the newest), GPU_GSA_STAGES (default "introspect exact ratio1
# graph needles cref"; "bench" is a bench stage).

GSA_T=$ROOT/tests/gpu/vllm/test_gsa.py
GSA_W=$WORK/gsa
GPU_GSA_RELEASES=${GPU_GSA_RELEASES:-"0.10.1 0.34.0"}
GPU_GSA_STAGES=${GPU_GSA_STAGES:-"introspect exact ratio1 graph reuse needles cref"}

gsa_wants() { case " $GPU_GSA_STAGES " in *" $1 "*) return 0 ;; esac; return 1; }

# gsa_run NAME CAP EXPECT CMD...: one step whose exit status must be EXPECT (0 or 1).
gsa_run() {
	local name=$1 cap=$2 expect=$3 o e rc
	shift 3
	o=$GSA_W/$(echo "$name" | tr -c 'A-Za-z0-9_.-' '_').out
	e=$o.err
	run_step "$cap" "$o" "$e" "$@"
	rc=$?
	grep -E '^(PASS|FAIL|NOTE|SKIP)|passed, [0-9]+ failed' "$o" | tail -n 40 | sed 's/^/    | /'
	if [ "$rc" -eq "$expect" ] || { [ "$expect" = 1 ] && [ "$rc" -ne 0 ] && [ "$rc" -lt 124 ]; }; then
		pass "$name" "exit $rc"
	else
		show "$e" 25
		show "$o" 15
		fail "$name" "$(why "$o" "$e" "$rc") (expected exit $expect)"
	fi
}

stage_gsa_triton() {
	section "GSA on vLLM Triton unified attention"
	mkdir -p "$GSA_W"
	local r
	for r in $GPU_GSA_RELEASES; do
		if [ ! -d "$ROOT/.cache/vllm/$r" ]; then
			fail "triton $r: vLLM files present" ".cache/vllm/$r missing (run tests/gpu/fetch_vllm.sh and carry .cache/vllm)"
			continue
		fi
		if gsa_wants introspect; then
			gsa_run "triton $r: introspect signatures" 180 0 \
				"$PY" "$ROOT/tests/gpu/vllm/introspect.py" --release "$r" "$GSA_W/introspect-$r.json"
		fi
		if gsa_wants exact; then
			gsa_run "triton $r: exact at 0.3 (mean)" 240 0 env LD_PRELOAD="$LIB" GSA_RATIO=0.3 \
				GSA_TRACE="$GSA_W/exact-$r-%p.gsatrace" GSA_TRACE_BLOCKS=0 \
				"$PY" "$GSA_T" exact --release "$r" --ratio 0.3
			gsa_run "triton $r: exact at 0.3 (quest)" 240 0 env LD_PRELOAD="$LIB" GSA_RATIO=0.3 \
				GSA_POLICY=quest "$PY" "$GSA_T" exact --release "$r" --ratio 0.3 --quick
			gsa_run "triton $r: exact at 0.3 on the release's own KV layout" 240 0 env LD_PRELOAD="$LIB" \
				GSA_RATIO=0.3 "$PY" "$GSA_T" exact --release "$r" --ratio 0.3 --quick --layout native
			gsa_run "triton $r: the same check fails without the library" 180 1 \
				"$PY" "$GSA_T" exact --release "$r" --ratio 0.3 --quick
		fi
		if gsa_wants ratio1; then
			gsa_run "triton $r: dense reference run" 180 0 \
				"$PY" "$GSA_T" exact --release "$r" --ratio 1 --save-dense "$GSA_W/dense-$r.pt"
			gsa_run "triton $r: GSA_RATIO=1 bit-identical" 180 0 env LD_PRELOAD="$LIB" GSA_RATIO=1 \
				"$PY" "$GSA_T" exact --release "$r" --ratio 1 --compare-dense "$GSA_W/dense-$r.pt"
		fi
		if gsa_wants graph; then
			gsa_run "triton $r: CUDA graph replay == eager" 180 0 env LD_PRELOAD="$LIB" GSA_RATIO=0.3 \
				"$PY" "$GSA_T" graph --release "$r" --ratio 0.3
		fi
		if gsa_wants reuse; then
			gsa_run "triton $r: reused blocks re-represented, capture-first runs dense" 240 0 \
				env LD_PRELOAD="$LIB" GSA_RATIO=0.3 "$PY" "$GSA_T" reuse --release "$r" --ratio 0.3
		fi
		if gsa_wants needles; then
			gsa_run "triton $r: needles and recall" 240 0 env LD_PRELOAD="$LIB" GSA_RATIO=0.3 \
				"$PY" "$GSA_T" needles --release "$r" --out "$GSA_W/recall-$r.jsonl"
		fi
	done
	if gsa_wants cref; then
		gsa_run "selection: C reference == Python reference" 180 0 \
			"$PY" "$ROOT/tests/gpu/vllm/check_c_ref.py"
	fi
	local tr
	for tr in "$GSA_W"/*.gsatrace; do
		[ -e "$tr" ] || continue
		"$GSA_TRACE_TOOL" summary "$tr" >"$tr.summary.txt" 2>&1
		show "$tr.summary.txt" 30
	done
	gsa_bundle
}

stage_gsa_bench() {
	gsa_wants bench || [ -n "${GSA_BENCH:-}" ] || return 0
	section "GSA decode attention benchmark (Triton)"
	mkdir -p "$GSA_W"
	local r
	for r in $GPU_GSA_RELEASES; do
		gsa_run "triton $r: bench without the library" 300 0 \
			"$PY" "$GSA_T" bench --release "$r" --out "$GSA_W/bench-nolib-$r.jsonl"
		gsa_run "triton $r: bench with the library" 300 0 env LD_PRELOAD="$LIB" GSA_RATIO=0.3 \
			"$PY" "$GSA_T" bench --release "$r" --out "$GSA_W/bench-lib-$r.jsonl"
		gsa_run "triton $r: bench merge" 60 0 "$PY" "$GSA_T" bench-merge \
			--nolib "$GSA_W/bench-nolib-$r.jsonl" --lib "$GSA_W/bench-lib-$r.jsonl" \
			--out "$GSA_W/decode_attention-$r.jsonl"
		cat "$GSA_W/triton_${r}__bench_merge.out" 2>/dev/null
	done
	gsa_bundle
}

# Everything under $GSA_W except large tensors, in one file (the device returns few files).
gsa_bundle() {
	(cd "$WORK" && tar czf "$OUT_DIR/gsa-results.tar.gz" --exclude='*.pt' gsa 2>/dev/null) &&
		echo "bundled $WORK/gsa into $OUT_DIR/gsa-results.tar.gz"
}

TEST_STAGES+=(stage_gsa_triton)
BENCH_STAGES+=(stage_gsa_bench)
