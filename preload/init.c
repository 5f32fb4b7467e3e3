/* Load-time configuration, first CUDA use, fork handling and shutdown. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "preload/config.h"
#include "preload/counters.h"
#include "preload/log.h"
#include "preload/state.h"
#include "preload/trace.h"

struct gsa_config gsa_cfg;
atomic_int gsa_used;
bool gsa_active;

static struct gsa_config_errors config_errors;

static const char *env_get(const char *name) { return getenv(name); }

/* Lock order: trace, then counters (the flusher sums counters while holding the trace lock). */
static void at_fork_prepare(void)
{
	gsa_trace_fork_prepare();
	gsa_counters_fork_prepare();
}
static void at_fork_parent(void)
{
	gsa_counters_fork_parent();
	gsa_trace_fork_parent();
}
static void at_fork_child(void)
{
	gsa_counters_fork_child();
	gsa_trace_fork_child();
	/* The child reports nothing again, but starts its own trace at its own first use. */
	atomic_store(&gsa_used, 0);
}

/* Runs under the loader lock: only getenv and parsing, nothing that loads or prints. */
__attribute__((constructor)) static void gsa_load(void)
{
	gsa_config_parse(&gsa_cfg, env_get, &config_errors);
	gsa_log_level = gsa_cfg.log_level;
	gsa_active = config_errors.count == 0 && !gsa_cfg.disable;
	gsa_counters_init();
	pthread_atfork(at_fork_prepare, at_fork_parent, at_fork_child);
}

void gsa_first_use_slow(void)
{
	static atomic_flag reported = ATOMIC_FLAG_INIT;
	if (atomic_exchange(&gsa_used, 1))
		return; /* another thread got here first; nothing to wait for */
	if (!atomic_flag_test_and_set(&reported)) {
		for (size_t i = 0; i < config_errors.count; i++) {
			const char *l = config_errors.line[i];
			size_t n = strlen(l);
			ssize_t w = write(STDERR_FILENO, l, n);
			w = write(STDERR_FILENO, "\n", 1);
			(void)w;
		}
	}
	if (gsa_active && gsa_cfg.trace_path[0])
		gsa_trace_start(gsa_cfg.trace_path);
	if (gsa_active)
		gsa_log(GSA_LOG_INFO, GSA_CODE_GENERIC, "gsa-preload %s active (pid %d)", GSA_VERSION,
			(int)getpid());
}

__attribute__((destructor)) static void gsa_unload(void)
{
	gsa_trace_stop();
}
