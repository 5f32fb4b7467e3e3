#!/bin/bash
# Where the fused selection kernel's time goes, on the GPU machine: Nsight Compute on
# select_split's fused kernel (one configuration, default 0 = batch 8 / 32K), with its
# per-instruction stall samples, and select_split's clock stamps warm, --cold and --cold-code
# from an instrumented build. Needs build/ as `make && make build/bench/select_split` leaves it.
#   bash tests/bench/profile_select.sh [CONFIGS]   (select_split --only's list; default 0)
# Writes under $OUT (default build/profile): select.ncu-rep, details.txt (Nsight Compute's
# sections), sass.csv and cuda.csv (its per-instruction and per-line counters), summary.txt
# (tests/bench/ncu_sass_summary.py: stall reasons, regions that ran, hottest instructions)
# and stamps.txt. Nsight Compute runs with --clock-control none (the machine's clocks are
# left alone) and its default cache control (caches flushed before each replay pass).
set -u
cfg=${1:-0}
out=${OUT:-build/profile}
mkdir -p "$out" build
nvcc -std=c++17 -O3 -I. -lineinfo -fatbin -DGSA_SPLIT_KERNELS -gencode arch=compute_90,code=sm_90 \
	sparse/gsa_kernels.cu -o build/profile.fatbin || exit 1
nvcc -std=c++17 -O3 -I. -fatbin -DGSA_STAMPS -DGSA_SPLIT_KERNELS -gencode arch=compute_90,code=sm_90 \
	sparse/gsa_kernels.cu -o build/stamps.fatbin || exit 1
{
	for mode in "" --cold --cold-code; do
		echo "## build/bench/select_split build/stamps.fatbin --stamps $mode --only $cfg"
		build/bench/select_split build/stamps.fatbin --stamps $mode --only "$cfg"
	done
} >"$out/stamps.txt" 2>&1
ncu --clock-control none --set full --import-source yes -k regex:gsa_score_select \
	--launch-skip 2 --launch-count 1 -f -o "$out/select" \
	build/bench/select_split build/profile.fatbin --launch-only --only "$cfg" >"$out/ncu.log" 2>&1
ncu -i "$out/select.ncu-rep" --page details >"$out/details.txt" 2>&1
ncu -i "$out/select.ncu-rep" --page source --csv --print-source sass >"$out/sass.csv" 2>&1
ncu -i "$out/select.ncu-rep" --page source --csv --print-source cuda >"$out/cuda.csv" 2>&1
python3 tests/bench/ncu_sass_summary.py "$out/sass.csv" >"$out/summary.txt" 2>&1
ls -la "$out"
