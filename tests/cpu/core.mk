# Unit tests of the library's parts, each linked with only the sources it tests.
CPU_TESTS += $(BUILD)/test/test_config $(BUILD)/test/test_alloc_registry \
	$(BUILD)/test/test_hooks_registry

$(BUILD)/test/test_config: tests/cpu/test_config.c preload/config.c preload/config.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) -o $@ tests/cpu/test_config.c preload/config.c -lm

$(BUILD)/test/test_alloc_registry: tests/cpu/test_alloc_registry.c preload/alloc_registry.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) -o $@ $^ -lpthread

$(BUILD)/test/test_hooks_registry: tests/cpu/test_hooks_registry.c $(wildcard hooks/*.c)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) -o $@ $^

CPU_TESTS += $(BUILD)/test/test_select_ref
$(BUILD)/test/test_select_ref: tests/cpu/test_select_ref.c sparse/select_ref.c sparse/budget.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) -o $@ tests/cpu/test_select_ref.c sparse/select_ref.c -lm

CPU_TESTS += $(BUILD)/test/test_kv_buffers
$(BUILD)/test/test_kv_buffers: tests/cpu/test_kv_buffers.c sparse/buffers.c preload/alloc_registry.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) -o $@ $^ -lpthread

CPU_TESTS += $(BUILD)/test/test_select_hot_path
$(BUILD)/test/test_select_hot_path: tests/cpu/test_select_hot_path.c sparse/select.c sparse/buffers.c \
		preload/alloc_registry.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) -o $@ $^ -lpthread -lm

CPU_TESTS += $(BUILD)/test/test_kernel_table
$(BUILD)/test/test_kernel_table: tests/cpu/test_kernel_table.c preload/kernel_table.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) -o $@ $^
