/*
 * test_cli.c - `tagmem storage-sim` (tools/cmd_storage.c, linked in): usage
 * errors exit 2 with a message naming the option; a run prints one JSON
 * object with every key the issue names, per policy, plus the cost table and
 * workload; trace workloads and --save-trace work; a malformed trace is
 * refused naming the line; --plot writes a PNG through gnuplot.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include "tests/test_skip.h"

#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tools/cmds.h"

struct out {
	int rc;
	char *out, *err;
};

static char *slurp(FILE *f)
{
	size_t cap = 1 << 16, len = 0, n;
	char *buf = malloc(cap + 1);

	rewind(f);
	while ((n = fread(buf + len, 1, cap - len, f)) > 0) {
		len += n;
		if (len == cap)
			buf = realloc(buf, (cap *= 2) + 1);
	}
	buf[len] = '\0';
	return buf;
}

/* Run the command with stdout and stderr captured. */
static struct out run(const char *const *args)
{
	char *argv[64];
	int argc = 0;
	struct out o;
	FILE *fo = tmpfile(), *fe = tmpfile();
	int so = dup(1), se = dup(2);

	argv[argc++] = (char *)"storage-sim";
	for (; *args; args++)
		argv[argc++] = (char *)*args;
	argv[argc] = NULL;
	fflush(stdout);
	fflush(stderr);
	dup2(fileno(fo), 1);
	dup2(fileno(fe), 2);
	o.rc = tm_cmd_storage_sim(argc, argv);
	fflush(stdout);
	fflush(stderr);
	dup2(so, 1);
	dup2(se, 2);
	close(so);
	close(se);
	o.out = slurp(fo);
	o.err = slurp(fe);
	fclose(fo);
	fclose(fe);
	return o;
}

static void done(struct out *o)
{
	free(o->out);
	free(o->err);
}

static unsigned count(const char *hay, const char *needle)
{
	unsigned n = 0;

	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

#define SMALL "--mem", "8M", "--events", "10000"

static void test_usage_errors(void **state)
{
	(void)state;
	static const struct {
		const char *args[8];
		const char *what;
	} cases[] = {
		{ { "--workload", "android", NULL }, "--policy" },
		{ { "--policy", "cma", NULL }, "--workload" },
		{ { "--policy", "fast", "--workload", "android", NULL }, "fast" },
		{ { "--policy", "cma", "--workload", "phone", NULL }, "phone" },
		{ { "--policy", "cma", "--workload", "android", "--tagged-fraction", "1.5", NULL }, "1.5" },
		{ { "--policy", "cma", "--workload", "android", "--churn", "0.5", NULL }, "synthetic" },
		{ { "--policy", "cma", "--workload", "android", "--bogus", NULL }, "--bogus" },
		{ { "--policy", "cma", "--workload", "android", "--mem", NULL }, "needs a value" },
		{ { "--policy", "cma", "--workload", "android", "--mem", "lots", NULL }, "lots" },
		{ { "--policy", "cma", "--workload", "android", "--cost", "dran=1", NULL }, "dran" },
		{ { "--policy", "cma", "--workload", "synthetic", "--orders", "0:1,12:3", NULL }, "12" },
		{ { "--policy", "cma", "--workload", "trace:/x", "--seed", "3", NULL }, "--seed" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct out o = run(cases[i].args);

		assert_int_equal(o.rc, 2);
		if (!strstr(o.err, cases[i].what))
			fail_msg("case %zu: '%s' not in stderr '%s'", i, cases[i].what, o.err);
		done(&o);
	}
	const char *help[] = { "--help", NULL };
	struct out o = run(help);

	assert_int_equal(o.rc, 0);
	assert_non_null(strstr(o.out, "--policy static|cma|cma-fast|cleancache|all"));
	done(&o);
	const char *costs[] = { "--costs", NULL };

	o = run(costs);
	assert_int_equal(o.rc, 0);
	assert_non_null(strstr(o.out, "drain"));
	done(&o);
}

static void test_json_all_policies(void **state)
{
	(void)state;
	const char *args[] = { "--policy", "all", "--workload", "synthetic", SMALL, "--json",
			       "--tagged-fraction", "0.3", "--cost", "drain=40000", NULL };
	static const char *const keys[] = {
		"\"usable_gain_pct\"", "\"tagged_alloc_p50_ns\"", "\"tagged_alloc_p99_ns\"",
		"\"tagged_alloc_failures\"", "\"frames_migrated\"", "\"frames_dropped\"",
		"\"refaults\"", "\"events_per_s\"", "\"overhead_vs_static_pct\"",
	};
	struct out o = run(args);

	assert_int_equal(o.rc, 0);
	for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
		if (count(o.out, keys[k]) != 4)
			fail_msg("%s appears %u times in %s", keys[k], count(o.out, keys[k]), o.out);
	assert_int_equal(count(o.out, "\"policy\": \"cma-fast\""), 1);
	assert_non_null(strstr(o.out, "\"cost_table_ns\": {\"alloc_folio\": 250"));
	assert_non_null(strstr(o.out, "\"drain\": 40000"));
	assert_non_null(strstr(o.out, "\"cost_table\": \"default with overrides\""));
	assert_non_null(strstr(o.out, "\"tagged_fraction\": 0.3"));
	assert_non_null(strstr(o.out, "\"name\": \"synthetic\""));
	assert_int_equal(o.out[0], '{');
	assert_int_equal(count(o.out, "\n"), 1);
	/* the four results were computed on one event sequence */
	char *h = strstr(o.out, "\"event_stream_hash\": \"");

	assert_non_null(h);
	char hash[40];

	snprintf(hash, sizeof(hash), "%.38s", h);
	assert_int_equal(count(o.out, hash), 4);
	done(&o);
}

static void test_table_output(void **state)
{
	(void)state;
	const char *args[] = { "--policy", "cleancache", "--workload", "android", SMALL, NULL };
	struct out o = run(args);

	assert_int_equal(o.rc, 0);
	assert_non_null(strstr(o.out, "cost table (ns, default)"));
	assert_non_null(strstr(o.out, "usable_gain_pct"));
	assert_non_null(strstr(o.out, "cleancache"));
	done(&o);
}

static void test_trace_workload(void **state)
{
	(void)state;
	char path[] = "/tmp/tagmem-cli-trace-XXXXXX";
	int fd = mkstemp(path);

	close(fd);
	const char *save[] = { "--policy", "cma", "--workload", "kvm-server", SMALL,
			       "--save-trace", path, NULL };
	struct out o = run(save);

	assert_int_equal(o.rc, 0);
	done(&o);
	char wl[64];

	snprintf(wl, sizeof(wl), "trace:%s", path);
	const char *replay[] = { "--policy", "all", "--workload", wl, "--mem", "8M", "--json", NULL };

	o = run(replay);
	assert_int_equal(o.rc, 0);
	assert_non_null(strstr(o.out, "\"name\": \"trace\""));
	assert_non_null(strstr(o.out, "\"objects\": "));
	done(&o);
	/* a broken line: the command fails and says where */
	FILE *f = fopen(path, "w");

	fprintf(f, "tagmem-storage-trace 1\nalloc 1 0 movable\nfree 2\n");
	fclose(f);
	o = run(replay);
	assert_int_equal(o.rc, 1);
	assert_non_null(strstr(o.err, "line 3"));
	assert_non_null(strstr(o.err, "not allocated"));
	done(&o);
	unlink(path);
}

static bool have_gnuplot(void)
{
	return system("command -v gnuplot >/dev/null 2>&1") == 0;
}

static void test_plot(void **state)
{
	(void)state;
	if (!have_gnuplot())
		tm_test_skip("gnuplot", "gnuplot is not installed");
	char dir[] = "/tmp/tagmem-plot-XXXXXX";

	assert_non_null(mkdtemp(dir));
	char png[128], gp[128], dat[128];

	snprintf(png, sizeof(png), "%s/sweep.png", dir);
	snprintf(gp, sizeof(gp), "%s/sweep.gp", dir);
	snprintf(dat, sizeof(dat), "%s/sweep.dat", dir);
	const char *args[] = { "--policy", "all", "--workload", "synthetic", "--mem", "8M",
			       "--events", "6000", "--plot", png, "--plot-points", "3",
			       "--threads", "2", "--json", NULL };
	struct out o = run(args);

	assert_int_equal(o.rc, 0);
	assert_non_null(strstr(o.out, "\"points\": ["));
	assert_int_equal(count(o.out, "\"tagged_fraction\": 0.5"), 1);
	done(&o);
	unsigned char sig[8];
	FILE *f = fopen(png, "rb");

	assert_non_null(f);
	assert_int_equal(fread(sig, 1, 8, f), 8);
	fclose(f);
	assert_memory_equal(sig, "\x89PNG\r\n\x1a\n", 8);
	struct stat st;

	assert_int_equal(stat(gp, &st), 0);
	assert_int_equal(stat(dat, &st), 0);
	unlink(png);
	unlink(gp);
	unlink(dat);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_usage_errors),
		cmocka_unit_test(test_json_all_policies),
		cmocka_unit_test(test_table_output),
		cmocka_unit_test(test_trace_workload),
		cmocka_unit_test(test_plot),
	};

	return cmocka_run_group_tests_name("storage_cli", tests, NULL, NULL);
}
