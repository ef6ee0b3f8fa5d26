/*
 * bm.h - shared by the two modes of `tagmem bench migrate`
 * (bench_migrate.c: tagmem against a raw socket over TCP; vs_qemu.c: against
 * QEMU multifd and the practical limit over unix sockets): one timed
 * in-process migration, and process CPU time. Benchmark code.
 */
#ifndef TM_BENCH_MIGRATE_BM_H
#define TM_BENCH_MIGRATE_BM_H

#include <stdbool.h>

#include "tagmem/migrate.h"

typedef struct tm_bm_run {
	double secs;        /* connect to the source's return (wall clock) */
	double cpu_secs;    /* CPU of the whole process (both sides) meanwhile */
	double gbps;        /* the source's own throughput_gbps (after the
			       negotiation to PLACED) */
} tm_bm_run;

/* CPU seconds this process has used (all threads). */
double tm_bm_cpu_now(void);

/*
 * Migrate src into dst (same name, size, geometry) through `channels`
 * data channels: the destination listens on listen_addr ("tcp:127.0.0.1:0"
 * or "unix:PATH") in a thread of this process, the source connects and
 * runs. Verification off (the digest is a check, not transfer), no
 * workload, no pause hook. zero_copy as in tm_migrate_config.
 */
int tm_bm_migrate(tm_region *src, tm_region *dst, unsigned channels,
		  const char *listen_addr, bool zero_copy, tm_bm_run *out,
		  tm_error *err);

/* `tagmem bench migrate --vs-qemu ...` (vs_qemu.c). */
int tm_bench_migrate_vs_qemu(int argc, char **argv);

#endif
