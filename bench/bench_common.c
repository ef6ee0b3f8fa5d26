/*
 * bench_common.c - timing and JSON output shared by every benchmark.
 */
#include "bench/bench_common.h"

#include <string.h>

#include "common/util.h"

double tm_bench_best(void (*fn)(void *ctx), void *ctx, int reps)
{
	double best = 1e30;

	for (int i = 0; i < reps; i++) {
		uint64_t t0 = tm_now_ns();

		fn(ctx);
		double s = (double)(tm_now_ns() - t0) / 1e9;
		if (s < best)
			best = s;
	}
	return best;
}

void tm_json_begin(tm_json *j, FILE *f)
{
	j->f = f;
	j->first = true;
	fputc('{', f);
}

static void key(tm_json *j, const char *k)
{
	fprintf(j->f, "%s\"%s\": ", j->first ? "" : ", ", k);
	j->first = false;
}

void tm_json_num(tm_json *j, const char *k, double v)
{
	key(j, k);
	fprintf(j->f, "%.6g", v);
}

void tm_json_int(tm_json *j, const char *k, long long v)
{
	key(j, k);
	fprintf(j->f, "%lld", v);
}

void tm_json_str(tm_json *j, const char *k, const char *v)
{
	key(j, k);
	fputc('"', j->f);
	for (const char *p = v; *p; p++) {
		if (*p == '"' || *p == '\\')
			fputc('\\', j->f);
		if ((unsigned char)*p < 0x20)
			fprintf(j->f, "\\u%04x", *p);
		else
			fputc(*p, j->f);
	}
	fputc('"', j->f);
}

void tm_json_bool(tm_json *j, const char *k, bool v)
{
	key(j, k);
	fputs(v ? "true" : "false", j->f);
}

void tm_json_raw(tm_json *j, const char *k, const char *raw)
{
	key(j, k);
	fputs(raw, j->f);
}

void tm_json_end(tm_json *j)
{
	fputs("}\n", j->f);
	fflush(j->f);
}

bool tm_bench_want_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return true;
	return false;
}

bool tm_bench_want_json(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--json") == 0)
			return true;
	return false;
}
