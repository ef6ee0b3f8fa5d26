/*
 * test_trace.c - the storage-sim trace format: a valid trace parses to the
 * events it says (ids remapped densely, reused ids allowed after a free);
 * each kind of malformed or inconsistent line is rejected with the line
 * number and nothing returned; a generated workload written as a trace and
 * parsed back replays to exactly the same results; replay is deterministic.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tagmem/storage_sim.h"

static int parse(const char *text, tm_ss_trace *t, tm_error *e)
{
	tm_error_clear(e);
	memset(t, 0, sizeof(*t));
	return tm_ss_trace_parse(text, strlen(text), "t.txt", t, e);
}

static void test_valid(void **state)
{
	(void)state;
	const char *text =
		"# a comment\n"
		"\n"
		"tagmem-storage-trace 1\n"
		"alloc 1000 0 movable tagged   # trailing comment\n"
		"alloc 7 4 pagecache\r\n"
		"pin 1000 longterm\n"
		"read 7\n"
		"unpin 1000\n"
		"free 1000\n"
		"alloc 1000 9 movable\n" /* reused id after its free */
		"tag 1000\n"
		"pin 1000\n"
		"alloc 8 0 unmovable\n"
		"alloc 9 0 reclaimable";
	tm_ss_trace t;
	tm_error e;

	assert_int_equal(parse(text, &t, &e), 0);
	assert_int_equal(t.n, 11);
	assert_int_equal(t.ev[0].op, TM_SS_OP_ALLOC);
	assert_int_equal(t.ev[0].flags, TM_SS_EV_TAGGED);
	assert_int_equal(t.ev[0].obj, 0);
	assert_int_equal(t.ev[1].obj, 1);
	assert_int_equal(t.ev[1].order, 4);
	assert_int_equal(t.ev[1].kind, TM_SS_PAGECACHE);
	assert_int_equal(t.ev[2].op, TM_SS_OP_PIN);
	assert_int_equal(t.ev[2].flags, TM_SS_EV_LONGTERM);
	assert_int_equal(t.ev[6].obj, 0); /* dense id 0 freed then reused */
	assert_int_equal(t.ev[6].order, 9);
	assert_int_equal(t.ev[7].op, TM_SS_OP_TAG);
	assert_int_equal(t.ev[8].flags, 0);
	assert_int_equal(t.ev[9].kind, TM_SS_UNMOVABLE);
	assert_int_equal(t.ev[10].kind, TM_SS_RECLAIMABLE);
	assert_int_equal(t.max_objects, 4);
	tm_ss_trace_free(&t);
}

struct bad {
	const char *text;
	unsigned line;
	const char *what;
};

static void test_malformed(void **state)
{
	(void)state;
	static const struct bad cases[] = {
		{ "alloc 1 0 movable\n", 1, "header" },
		{ "tagmem-storage-trace 2\n", 1, "version" },
		{ "tagmem-storage-trace 1\nalloc 1 0 movable\nallco 2 0 movable\n", 3, "unknown event" },
		{ "tagmem-storage-trace 1\nalloc 1 10 movable\n", 2, "order" },
		{ "tagmem-storage-trace 1\nalloc 1 x movable\n", 2, "order" },
		{ "tagmem-storage-trace 1\nalloc 1 0 anon\n", 2, "kind" },
		{ "tagmem-storage-trace 1\nalloc 1 0 pagecache tagged\n", 2, "tagged" },
		{ "tagmem-storage-trace 1\nalloc 1 0 movable hot\n", 2, "unexpected" },
		{ "tagmem-storage-trace 1\nalloc 1 0\n", 2, "ORDER KIND" },
		{ "tagmem-storage-trace 1\nfree 5\n", 2, "not allocated" },
		{ "tagmem-storage-trace 1\nalloc 5 0 movable\nalloc 5 0 movable\n", 3, "already" },
		{ "tagmem-storage-trace 1\nalloc 5 0 movable\npin 5\nfree 5\n", 4, "pinned" },
		{ "tagmem-storage-trace 1\nalloc 5 0 movable\nunpin 5\n", 3, "not pinned" },
		{ "tagmem-storage-trace 1\nalloc 5 0 pagecache\ntag 5\n", 3, "movable" },
		{ "tagmem-storage-trace 1\nalloc 5 0 movable tagged\ntag 5\n", 3, "already tagged" },
		{ "tagmem-storage-trace 1\nalloc 5 0 movable\nfree 5 6\n", 3, "one id" },
		{ "tagmem-storage-trace 1\nalloc 5 0 movable\npin 5 forever\n", 3, "longterm" },
		{ "tagmem-storage-trace 1\nalloc 4294967295 0 movable\n", 2, "id" },
		{ "tagmem-storage-trace 1\nalloc -1 0 movable\n", 2, "id" },
		{ "tagmem-storage-trace 1\nread\n", 2, "id" },
		{ "tagmem-storage-trace 1\na b c d e f g\n", 2, "too many" },
		{ "tagmem-storage-trace 1\nalloc 5 0 movable\nfree 5\nread 5\n", 4, "not allocated" },
		{ "", 0, "empty" },
	};
	char msg[64];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		tm_ss_trace t;
		tm_error e;

		assert_int_equal(parse(cases[i].text, &t, &e), -EINVAL);
		assert_null(t.ev);
		if (!strstr(tm_error_msg(&e), cases[i].what))
			fail_msg("case %zu: '%s' not in '%s'", i, cases[i].what, tm_error_msg(&e));
		if (cases[i].line) {
			snprintf(msg, sizeof(msg), "t.txt line %u:", cases[i].line);
			if (!strstr(tm_error_msg(&e), msg))
				fail_msg("case %zu: '%s' not in '%s'", i, msg, tm_error_msg(&e));
		}
	}
}

static void test_long_line_and_nul(void **state)
{
	(void)state;
	char text[600];
	tm_ss_trace t;
	tm_error e;

	snprintf(text, sizeof(text), "tagmem-storage-trace 1\nread %0300d\n", 5);
	assert_int_equal(parse(text, &t, &e), -EINVAL);
	assert_non_null(strstr(tm_error_msg(&e), "line 2: longer than"));
	const char nul[] = "tagmem-storage-trace 1\nalloc 1 0 mov\0able\n";

	tm_error_clear(&e);
	memset(&t, 0, sizeof(t));
	assert_int_equal(tm_ss_trace_parse(nul, sizeof(nul) - 1, "n", &t, &e), -EINVAL);
	assert_non_null(strstr(tm_error_msg(&e), "line 2: contains a NUL"));
}

static void test_load_errors(void **state)
{
	(void)state;
	tm_ss_trace t;
	tm_error e;

	memset(&t, 0, sizeof(t));
	tm_error_clear(&e);
	assert_int_equal(tm_ss_trace_load("/nonexistent/trace.txt", &t, &e), -ENOENT);
	assert_non_null(strstr(tm_error_msg(&e), "/nonexistent/trace.txt"));
}

static void small_config(tm_ss_config *c, tm_ss_policy pol)
{
	tm_ss_config_default(c);
	c->policy = pol;
	c->mem_bytes = 33ull * 128 * 4096;
	c->check_invariants = 0; /* test_invariants checks; this one compares results */
}

/* Generate a workload, write it as a trace, read it back: every policy
 * gives the same numbers from the trace as from the generator, and the
 * parser's dense ids are the generator's (both reuse freed ids last-first). */
static void test_roundtrip_replay(void **state)
{
	(void)state;
	tm_ss_workload w;
	tm_ss_gen *g = NULL;
	tm_ss_config c;
	tm_ss_geometry geo;
	tm_error e;
	char path[] = "/tmp/tagmem-trace-XXXXXX";
	int fd = mkstemp(path);
	FILE *f = fdopen(fd, "w");
	tm_ss_event buf[1024];
	size_t n;

	tm_error_clear(&e);
	assert_non_null(f);
	assert_int_equal(tm_ss_workload_preset("adversary", &w, &e), 0);
	w.events = 20000;
	for (unsigned i = 0; i < w.nphases; i++) {
		w.phase[i].warmup = false; /* a trace replay measures everything */
		w.phase[i].tag_event_rate = 0.02;
	}
	w.phase[0].share = 0.3;
	w.phase[1].share = 0.7;
	small_config(&c, TM_SS_CMA);
	assert_int_equal(tm_ss_config_geometry(&c, &geo, &e), 0);
	assert_int_equal(tm_ss_gen_create(&w, geo.frames, &g, &e), 0);
	assert_int_equal(tm_ss_trace_write_header(f, &e), 0);
	while ((n = tm_ss_gen_fill(g, buf, 1024)) > 0)
		assert_int_equal(tm_ss_trace_write_events(f, buf, n, &e), 0);
	tm_ss_gen_destroy(g);
	assert_int_equal(fclose(f), 0);

	tm_ss_trace t;

	memset(&t, 0, sizeof(t));
	if (tm_ss_trace_load(path, &t, &e))
		fail_msg("%s", tm_error_msg(&e));
	unlink(path);
	assert_int_equal(t.n, 20000);
	for (int p = 0; p < TM_SS_POLICY_COUNT; p++) {
		tm_ss_result a, b, again;

		small_config(&c, (tm_ss_policy)p);
		assert_int_equal(tm_ss_run(&c, &w, NULL, &a, &e), 0);
		assert_int_equal(tm_ss_run(&c, NULL, &t, &b, &e), 0);
		assert_int_equal(tm_ss_run(&c, NULL, &t, &again, &e), 0);
		assert_int_equal(a.stream_hash, b.stream_hash);
		assert_int_equal(a.st.events, b.st.events);
		assert_int_equal(a.st.modelled_ns, b.st.modelled_ns);
		assert_int_equal(a.st.frames_migrated, b.st.frames_migrated);
		assert_int_equal(a.st.tagged_alloc_failures, b.st.tagged_alloc_failures);
		assert_int_equal(a.st.refaults, b.st.refaults);
		assert_true(a.st.usable_gain_pct == b.st.usable_gain_pct);
		assert_int_equal(b.st.modelled_ns, again.st.modelled_ns);
		assert_int_equal(b.st.tagged_alloc_p99_ns, again.st.tagged_alloc_p99_ns);
	}
	tm_ss_trace_free(&t);
}

static void test_write_rejects_bad_event(void **state)
{
	(void)state;
	tm_ss_event ev = { .obj = 1, .op = 17 };
	tm_error e;
	FILE *f = fopen("/dev/null", "w");

	assert_non_null(f);
	tm_error_clear(&e);
	assert_int_equal(tm_ss_trace_write_events(f, &ev, 1, &e), -EINVAL);
	fclose(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_long_line_and_nul),
		cmocka_unit_test(test_load_errors),
		cmocka_unit_test(test_roundtrip_replay),
		cmocka_unit_test(test_write_rejects_bad_event),
	};

	return cmocka_run_group_tests_name("storage_trace", tests, NULL, NULL);
}
