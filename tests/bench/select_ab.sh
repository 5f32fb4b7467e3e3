#!/usr/bin/env bash
# A/B of the selection kernels: the working tree's against those of another commit, timed by
# tests/bench/select_split.cu in alternating rounds in one process tree (the method of every
# section of tests/bench/results/select_split.txt).
#
#   bash tests/bench/select_ab.sh build REV        here (needs nvcc): build/var/REV.fatbin from
#                                                  `git archive REV`, plus `make` and select_split
#   bash tests/bench/select_ab.sh run REV [ROWS] [ROUNDS] [-- OLD_FLAGS]
#                                                  on the GPU machine (build/ carried): --check of
#                                                  the new kernels on ROWS, then ROUNDS rounds of
#                                                  old, new, --cold-code
#
# ROWS: select_split's configuration indices (default 0,1,2,7,9,10: batch 8 / 32K, 8 / 128K,
# 32 / 32K, 8 / 8K, and batch 8 / 32K at 128- and 64-token blocks). OLD_FLAGS: select_split flags
# for the old kernels only (e.g. --seq-major or --warp-blocks 8 for builds before those changes).
# Output goes to stdout; redirect it under $OUT.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"

mode=${1:-}
rev=${2:-}
[ -n "$mode" ] && [ -n "$rev" ] || { sed -n 2,17p "$0" >&2; exit 2; }
old=build/var/$rev.fatbin

case "$mode" in
build)
	command -v nvcc >/dev/null || { echo "select_ab: nvcc not found" >&2; exit 1; }
	src=$(mktemp -d)
	trap 'rm -rf "$src"' EXIT
	git archive "$rev" | tar -x -C "$src"
	mkdir -p build/var
	(cd "$src" && nvcc -std=c++17 -O3 -I. -fatbin -DGSA_SPLIT_KERNELS \
		-gencode arch=compute_90,code=sm_90 sparse/gsa_kernels.cu -o "$root/$old")
	make -s && make -s build/bench/select_split
	echo "select_ab: $old (kernels of $(git rev-parse --short "$rev")) and build/sparse/gsa_kernels_split.fatbin (this tree)"
	;;
run)
	shift 2
	rows="" rounds="" old_flags=()
	while [ $# -gt 0 ]; do
		if [ "$1" = "--" ]; then
			shift
			old_flags=("$@")
			break
		elif [ -z "$rows" ]; then rows=$1
		elif [ -z "$rounds" ]; then rounds=$1
		else echo "select_ab: unexpected argument $1" >&2; exit 2
		fi
		shift
	done
	rows=${rows:-0,1,2,7,9,10}
	rounds=${rounds:-2}
	new=build/sparse/gsa_kernels_split.fatbin
	split=build/bench/select_split
	for f in "$old" "$new" "$split"; do
		[ -e "$f" ] || { echo "select_ab: $f missing (run 'select_ab.sh build $rev' first, carry build/)" >&2; exit 1; }
	done
	echo "## $split $new --check --only $rows"
	"$split" "$new" --check --only "$rows"
	for r in $(seq 1 "$rounds"); do
		echo "## round $r: old ($rev${old_flags[*]:+, ${old_flags[*]}}) --cold-code"
		"$split" "$old" "${old_flags[@]}" --cold-code --only "$rows"
		echo "## round $r: new --cold-code"
		"$split" "$new" --cold-code --only "$rows"
	done
	;;
*)
	sed -n 2,17p "$0" >&2
	exit 2
	;;
esac
