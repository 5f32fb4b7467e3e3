# The trace reader library and the gsa-trace tool (tools/). The test also runs the built
# tool, so it is built first (order-only: a rebuilt tool does not relink the test).
CPU_TESTS += $(BUILD)/test/test_trace_reader

$(BUILD)/test/test_trace_reader: tests/cpu/test_trace_reader.c $(BUILD)/libgsa_trace_reader.a \
		| $(BUILD)/gsa-trace
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) -o $@ $< $(BUILD)/libgsa_trace_reader.a -lm

-include $(BUILD)/test/test_trace_reader.d
