# gsa-preload: build/libgsa_preload.so (the LD_PRELOAD library) and build/gsa-trace (the tool).
#
#   make            build both
#   make test       CPU tests (no GPU needed; what CI runs)
#   make gpu-test   GPU suite on a machine with an NVIDIA GPU (tests/gpu/run.sh)
#
# Needs: gcc (C11), the CUDA headers (cuda.h, cuda_runtime_api.h; CUDA_INC points at them;
# nvcc for the GPU suite) and xxHash's header. Nothing from CUDA is linked: the library
# dlopens libcuda.so.1 when the process uses CUDA, and libunwind.so.8 for call sites.

CUDA_HOME ?= /usr/local/cuda
CUDA_INC ?= $(CUDA_HOME)/include
CC ?= gcc
BUILD := build
.DEFAULT_GOAL := all

WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter
CFLAGS_COMMON := -std=gnu11 -O2 -g $(WARN) -D_GNU_SOURCE -I. -I$(CUDA_INC) -MMD -MP
# The library: PIC, hidden by default; only what preload/exports.map names is exported.
LIB_CFLAGS := $(CFLAGS_COMMON) -fPIC -fvisibility=hidden -ftls-model=initial-exec \
	-fno-semantic-interposition
LIB_LDFLAGS := -shared -Wl,-z,defs -Wl,-z,now -Wl,--version-script=preload/exports.map \
	-Wl,--no-undefined -Wl,-soname,libgsa_preload.so
LIB_LIBS := -ldl -lpthread -lm

# sparse/select_ref.c is the host reference of the selection, for tests only.
LIB_SRCS := $(wildcard preload/*.c) $(wildcard hooks/*.c) \
	$(filter-out sparse/select_ref.c,$(wildcard sparse/*.c))
LIB_OBJS := $(patsubst %.c,$(BUILD)/lib/%.o,$(LIB_SRCS)) $(BUILD)/lib/sparse/fatbin.o

# The selection kernels, compiled into a fatbin (SASS for Ampere and Hopper, PTX for newer
# GPUs) and embedded in the library. Without nvcc the library builds without them and every
# attention launch runs dense (it says so once).
NVCC ?= $(shell command -v nvcc 2>/dev/null || echo $(CUDA_HOME)/bin/nvcc)
HAVE_NVCC := $(shell [ -x "$(NVCC)" ] && echo 1)
NVCC_ARCH := -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 \
	-gencode arch=compute_90,code=compute_90
FATBIN := $(BUILD)/sparse/gsa_kernels.fatbin
ifeq ($(HAVE_NVCC),1)
FATBIN_DEP := $(FATBIN)
FATBIN_DEF := -DGSA_FATBIN='"$(FATBIN)"'
endif

$(FATBIN): sparse/gsa_kernels.cu $(wildcard sparse/*.cuh) sparse/select_args.h sparse/budget.h \
		sparse/stats_ring.h preload/config.h
	@mkdir -p $(dir $@)
	$(NVCC) -std=c++17 -O3 -I. -I$(CUDA_INC) -fatbin $(NVCC_ARCH) $< -o $@

# The same kernels plus the scoring and selection halves as kernels of their own, for the
# GPU test and benchmark that check or time one half alone (not embedded in the library).
SPLIT_FATBIN := $(BUILD)/sparse/gsa_kernels_split.fatbin
$(SPLIT_FATBIN): sparse/gsa_kernels.cu $(wildcard sparse/*.cuh) sparse/select_args.h sparse/budget.h \
		sparse/stats_ring.h preload/config.h
	@mkdir -p $(dir $@)
	$(NVCC) -std=c++17 -O3 -I. -I$(CUDA_INC) -fatbin -DGSA_SPLIT_KERNELS $(NVCC_ARCH) $< -o $@

$(BUILD)/lib/sparse/fatbin.o: sparse/fatbin.S $(FATBIN_DEP)
	@mkdir -p $(dir $@)
	$(CC) -c $(FATBIN_DEF) $< -o $@

TOOL_SRCS := $(filter-out tools/gsa_trace.c,$(wildcard tools/*.c))
TOOL_OBJS := $(patsubst %.c,$(BUILD)/tool/%.o,$(TOOL_SRCS))

.PHONY: all test gpu-test clean
all: $(BUILD)/libgsa_preload.so $(BUILD)/gsa-trace $(BUILD)/libgsa_select_ref.so

# The selection reference as a shared library, for the GPU suite to compare against.
$(BUILD)/libgsa_select_ref.so: sparse/select_ref.c sparse/select_ref.h sparse/budget.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) -fPIC -shared -o $@ sparse/select_ref.c -lm

$(BUILD)/lib/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(LIB_CFLAGS) -c $< -o $@

# source-rev.txt: the commit (and whether the tree was modified) the library was linked from,
# for logs made on a machine whose checkout is not the one that built it (tests/gpu/run.sh
# prints it: the GPU machine gets build/ carried with a work tree on a stale git history).
$(BUILD)/libgsa_preload.so: $(LIB_OBJS) preload/exports.map
	$(CC) $(LIB_LDFLAGS) -o $@ $(LIB_OBJS) $(LIB_LIBS)
	@{ git rev-parse --short HEAD 2>/dev/null || echo unknown; } | tr -d '\n' > $(BUILD)/source-rev.txt; \
	 if git status --porcelain 2>/dev/null | grep -q .; then echo ' (work tree modified)'; else echo; fi \
	 >> $(BUILD)/source-rev.txt

$(BUILD)/tool/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) -c $< -o $@

$(BUILD)/libgsa_trace_reader.a: $(TOOL_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/gsa-trace: $(BUILD)/tool/tools/gsa_trace.o $(BUILD)/libgsa_trace_reader.a
	$(CC) -o $@ $^ -lm

# CPU tests: each fragment tests/cpu/*.mk appends its binaries to CPU_TESTS and adds its rules.
CPU_TESTS :=
include $(wildcard tests/cpu/*.mk)

test: all $(CPU_TESTS)
	@bash tests/cpu/run.sh $(CPU_TESTS)

gpu-test: all
	@bash tests/gpu/run.sh

# The selection kernels timed apart (tests/bench/select_split.cu); runs on a GPU machine.
$(BUILD)/bench/select_split: tests/bench/select_split.cu sparse/select_ref.c sparse/select_args.h \
		$(SPLIT_FATBIN)
	@mkdir -p $(dir $@)
	$(NVCC) -std=c++17 -O2 -I. -I$(CUDA_INC) -arch=sm_90 -o $@ $< sparse/select_ref.c \
		-L$(CUDA_HOME)/lib64/stubs -lcuda

clean:
	rm -rf $(BUILD)

-include $(LIB_OBJS:.o=.d) $(TOOL_OBJS:.o=.d)
