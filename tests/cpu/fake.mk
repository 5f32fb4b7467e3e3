# The fake CUDA driver and runtime (tests/cpu/fake/) and the CPU tests of the interposition,
# which run tests/cpu/scenario.c under the preload against them and read its traces.
FAKE_DIR := $(BUILD)/test/fake
FAKE_LIBS := $(FAKE_DIR)/libcuda.so.1 $(FAKE_DIR)/libcuda.so $(FAKE_DIR)/libcudart.so.13 \
	$(FAKE_DIR)/libcudart.so
INTERPOSE_TESTS := $(BUILD)/test/test_interpose $(BUILD)/test/test_config_env \
	$(BUILD)/test/test_threads_fork
CPU_TESTS += $(INTERPOSE_TESTS)

# -Bsymbolic: the fake's own references (cuGetProcAddress handing out its functions) bind to
# itself, never to the preload's same-named exports.
$(FAKE_DIR)/libcuda.so.1: tests/cpu/fake/fake_cuda.c tests/cpu/fake/fake_cuda.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) -fPIC -shared -Wl,-soname,libcuda.so.1 -Wl,-Bsymbolic \
		-Wl,-z,defs -o $@ $< -lpthread

$(FAKE_DIR)/libcudart.so.13: tests/cpu/fake/fake_cudart.c tests/cpu/fake/fake_cuda.h \
		tests/cpu/fake/fake_cudart.map
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) -fPIC -shared -Wl,-soname,libcudart.so.13 -Wl,-Bsymbolic \
		-Wl,--version-script=tests/cpu/fake/fake_cudart.map -Wl,-z,defs -o $@ $< \
		-ldl -lpthread

$(FAKE_DIR)/libcuda.so: $(FAKE_DIR)/libcuda.so.1
	ln -sf libcuda.so.1 $@

$(FAKE_DIR)/libcudart.so: $(FAKE_DIR)/libcudart.so.13
	ln -sf libcudart.so.13 $@

# The scenario links the fakes by name (-lcuda -lcudart), as a CUDA program would; the
# runpath lets it start without LD_LIBRARY_PATH.
$(BUILD)/test/scenario: tests/cpu/scenario.c tests/cpu/scenario.h tests/cpu/check.h \
		tests/cpu/fake/fake_cuda.h $(FAKE_LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) -o $@ tests/cpu/scenario.c -L$(FAKE_DIR) -Wl,-rpath,'$$ORIGIN/fake' \
		-lcuda -lcudart -ldl -lpthread

$(INTERPOSE_TESTS): $(BUILD)/test/%: tests/cpu/%.c tests/cpu/preload_harness.h \
		tests/cpu/scenario.h tests/cpu/check.h $(BUILD)/libgsa_trace_reader.a \
		$(BUILD)/libgsa_preload.so $(BUILD)/test/scenario $(FAKE_LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) -o $@ $< $(BUILD)/libgsa_trace_reader.a -lm
