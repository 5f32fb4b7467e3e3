#!/usr/bin/env bash
# A short run of the reader fuzzer (tests/fuzz/README.md), for `make test`: the standalone
# driver, then libFuzzer when it was built, each for FUZZ_SECONDS (default 3) from the
# built-in seeds and the traces in tests/data. Prints the one result line that
# tests/cpu/run.sh counts: each driver that ran clean is one check passed.
# A crashing input is kept under build/test/fuzz-crash-* for the README's reproduce step.
set -u
BUILD=${BUILD:-build}
seconds=${FUZZ_SECONDS:-3}
sample=${GSA_TRACE_SAMPLE:-tests/data/sample.gsatrace}
work=$(mktemp -d "${TMPDIR:-/tmp}/gsa-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
passed=0 failed=0
mkdir -p "$work/corpus"
# the sample and every other committed trace (real GPU runs) are seeds
seeds=()
for f in "$sample" tests/data/*.gsatrace; do
	[ -f "$f" ] || continue
	f=$(cd "$(dirname "$f")" && pwd)/$(basename "$f")
	case " ${seeds[*]-} " in *" $f "*) continue ;; esac
	seeds+=("$f")
	cp "$f" "$work/corpus/"
done

standalone="$BUILD/test/fuzz_reader_standalone"
if [ -x "$standalone" ]; then
	"$standalone" --write-seeds "$work/corpus" || true
	exe=$(cd "$(dirname "$standalone")" && pwd)/$(basename "$standalone")
	# in $work: a crash leaves its input there (fuzz-crash.gsatrace)
	if (cd "$work" && "$exe" -t "$seconds" ${seeds[@]+"${seeds[@]}"}) \
			>"$work/standalone.log" 2>&1; then
		passed=$((passed + 1))
		echo "NOTE fuzz (standalone): $(grep -Eo '[0-9]+ passed' "$work/standalone.log" | head -n 1 | cut -d' ' -f1) inputs in ${seconds}s, no crash"
	else
		failed=$((failed + 1))
		tail -n 30 "$work/standalone.log"
		[ -f "$work/fuzz-crash.gsatrace" ] && cp "$work/fuzz-crash.gsatrace" "$BUILD/test/fuzz-crash-standalone.gsatrace" &&
			echo "FAIL fuzz (standalone): crashing input kept in $BUILD/test/fuzz-crash-standalone.gsatrace"
	fi
fi

libfuzzer="$BUILD/test/fuzz_reader_libfuzzer"
if [ -x "$libfuzzer" ]; then
	mkdir -p "$work/new"
	if "$libfuzzer" -max_total_time="$seconds" -max_len=262144 -rss_limit_mb=2048 -timeout=10 \
			-artifact_prefix="$work/" "$work/new" "$work/corpus" >"$work/libfuzzer.log" 2>&1; then
		passed=$((passed + 1))
		echo "NOTE fuzz (libFuzzer): $(grep -Eo '^#[0-9]+' "$work/libfuzzer.log" | tail -n 1 | tr -d '#') runs in ${seconds}s, no crash"
	else
		failed=$((failed + 1))
		tail -n 40 "$work/libfuzzer.log"
		for a in "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-*; do
			[ -f "$a" ] && cp "$a" "$BUILD/test/fuzz-$(basename "$a")" &&
				echo "FAIL fuzz (libFuzzer): input kept in $BUILD/test/fuzz-$(basename "$a")"
		done
	fi
fi
if [ ! -x "$standalone" ] && [ ! -x "$libfuzzer" ]; then
	echo "FAIL fuzz: no fuzz driver was built"
	failed=1
fi
echo "fuzz_reader_smoke: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
