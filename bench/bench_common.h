/*
 * bench_common.h - shared by all benchmarks: repeat-and-take-best timing
 * (the machine is shared and noisy, so the best of several runs is the
 * number that says what the code can do), and a tiny JSON object writer so
 * every `tagmem bench X --json` prints the same shape.
 */
#ifndef TM_BENCH_COMMON_H
#define TM_BENCH_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Run fn(ctx) `reps` times, return the fastest wall time in seconds. */
double tm_bench_best(void (*fn)(void *ctx), void *ctx, int reps);

/* GB/s (1e9 bytes per second) for bytes moved in secs. */
static inline double tm_gbps(double bytes, double secs)
{
	return secs > 0 ? bytes / secs / 1e9 : 0.0;
}

/* JSON object writer: tm_json_begin, then fields, then tm_json_end. */
typedef struct tm_json {
	FILE *f;
	bool first;
} tm_json;
void tm_json_begin(tm_json *j, FILE *f);
void tm_json_num(tm_json *j, const char *key, double v);
void tm_json_int(tm_json *j, const char *key, long long v);
void tm_json_str(tm_json *j, const char *key, const char *v);
void tm_json_bool(tm_json *j, const char *key, bool v);
/* Raw JSON value (an already formatted object or array). */
void tm_json_raw(tm_json *j, const char *key, const char *raw);
void tm_json_end(tm_json *j);

/* True when argv contains --json. */
bool tm_bench_want_json(int argc, char **argv);
/* True when argv contains --help or -h. */
bool tm_bench_want_help(int argc, char **argv);

#endif
