/*
 * qemu_drv.h - drives a pair of qemu-system-aarch64 processes through one
 * multifd migration for `tagmem bench migrate --vs-qemu`: a paused source
 * (-S) whose guest RAM is a memory-backend-file on /dev/shm (share=on)
 * holding the benchmark's page mix, a destination started with -incoming
 * defer on a fresh file of the same size, both told over QMP to use the
 * multifd capability with the same channel count, the migration over a unix
 * socket, timed from the `migrate` command to the destination's MIGRATION
 * event "completed". Benchmark code, not library code.
 */
#ifndef TM_BENCH_QEMU_DRV_H
#define TM_BENCH_QEMU_DRV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Path of the QEMU binary found in PATH (or given), and its version line. */
typedef struct tm_qemu_bin {
	char path[512];
	char version[128];      /* "QEMU emulator version 10.0.2 (...)" */
} tm_qemu_bin;

/* Find `name` (a path or a command name looked up in PATH) and ask it for
 * its version. 0, or -ENOENT with why in msg. */
int tm_qemu_find(const char *name, tm_qemu_bin *q, char *msg, size_t len);

typedef struct tm_qemu_result {
	double secs;            /* migrate command to destination "completed" */
	double cpu_secs;        /* user+system CPU of both QEMU processes during it */
	uint64_t total_time_ms; /* the source's query-migrate total-time */
	uint64_t transferred;   /* the source's ram.transferred (bytes) */
	uint64_t duplicate;     /* ram.duplicate: zero pages */
	uint64_t normal;        /* ram.normal: pages sent with data */
} tm_qemu_result;

/*
 * One migration of the guest RAM in file src_ram (size bytes, already
 * holding the page mix; QEMU maps it shared and only reads it, apart from
 * the device tree the virt machine writes at the base of RAM at reset)
 * with `channels` multifd channels. workdir: a directory for the sockets
 * and the destination's RAM file dst_ram (created fresh, removed after).
 * 0, or a negative errno with msg saying what went wrong (QEMU's own error
 * text when it gave one).
 */
int tm_qemu_migrate(const tm_qemu_bin *q, const char *src_ram,
		    const char *dst_ram, const char *workdir, uint64_t size,
		    unsigned channels, tm_qemu_result *res, char *msg,
		    size_t len);

#endif
