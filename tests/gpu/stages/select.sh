# The selection kernel alone against its definition (tests/gpu/select_topk.cu), on rows the
# scoring kernel rarely makes: bulk ties, specials, NaN, every register path (sourced by
# tests/gpu/run.sh).

stage_select_topk() {
	section "selection kernel against its definition"
	local d=$WORK/select_topk bin=$WORK/select_topk/select_topk rc
	local fatbin=$ROOT/build/sparse/gsa_kernels_split.fatbin
	mkdir -p "$d"
	if [ ! -s "$fatbin" ]; then
		run_step 240 "$d/fatbin.out" "$d/fatbin.err" make -C "$ROOT" build/sparse/gsa_kernels_split.fatbin
	fi
	if [ ! -s "$fatbin" ]; then
		show "$d/fatbin.err" 20
		fail "select_topk" "no fatbin at $fatbin (make build/sparse/gsa_kernels_split.fatbin failed)"
		return
	fi
	run_step 240 "$d/build.out" "$d/build.err" nvcc -O2 -std=c++17 "-arch=$ARCH" -I"$ROOT" \
		-o "$bin" "$ROOT/tests/gpu/select_topk.cu" -lcuda
	rc=$?
	if [ "$rc" -ne 0 ]; then
		show "$d/build.err" 30
		fail "select_topk: build" "$(why "$d/build.out" "$d/build.err" "$rc")"
		return
	fi
	run_step 120 "$d/run.out" "$d/run.err" "$bin" "$fatbin"
	rc=$?
	show "$d/run.out" 40
	show "$d/run.err" 20
	if [ "$rc" -eq 0 ] && grep -q '^select_topk: [0-9]* passed, 0 failed' "$d/run.out"; then
		pass "select_topk" "$(tail -n 1 "$d/run.out")"
	else
		fail "select_topk" "$(why "$d/run.out" "$d/run.err" "$rc")"
	fi
}

TEST_STAGES+=(stage_select_topk)
