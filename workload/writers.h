/*
 * writers.h - a synthetic tagged workload for `tagmem demo`, `tagmem
 * migrate send`, the migration tests and the benchmark: once
 * tm_workload_fill (workload/fill.h, included here) has filled the
 * regions with the page mix, it runs writer threads that change data
 * through tm_region_ptr (like a guest writing its RAM) and tags through the
 * region API, at a given dirty rate. Its pause/resume/throttle functions
 * have the shape of tm_migrate_hooks. Part of tm_workload_lib: tools and
 * tests link it, libtagmem does not.
 *
 * Thread safety: start/stop from one thread; pause/resume/throttle from the
 * migration's run thread while the writers run.
 */
#ifndef TM_WORKLOAD_WRITERS_H
#define TM_WORKLOAD_WRITERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "workload/fill.h"   /* tm_workload_fill, used with the writers */
#include "tagmem/migrate.h"
#include "tagmem/region.h"

typedef struct tm_workload tm_workload;

typedef struct tm_workload_config {
	uint64_t dirty_rate;    /* bytes of pages dirtied per second; 0: idle */
	unsigned writers;       /* writer threads (1) */
	uint64_t seed;
	bool ptr_writes;        /* data through tm_region_ptr (needs kernel dirty
				   tracking); false: through tm_region_write */
} tm_workload_config;

int tm_workload_start(tm_workload **out, tm_region *const *regions, size_t n,
		      const tm_workload_config *cfg, tm_error *err);
/* Stop and join the writers; returns the first writer error (0 if none). */
int tm_workload_stop(tm_workload *w, tm_error *err);

/* Hook-shaped controls (ctx = the workload). */
int tm_workload_pause(void *w);
void tm_workload_resume(void *w);
void tm_workload_throttle(void *w, unsigned percent);

/* Fill hooks with the three controls above. */
void tm_workload_hooks(tm_workload *w, tm_migrate_hooks *h);

/* Operations done and bytes of pages dirtied so far. */
uint64_t tm_workload_ops(const tm_workload *w);

/* Whether kernel dirty tracking (catching writes through plain pointers)
 * works on this host, so writers may use tm_region_ptr. */
bool tm_workload_ptr_tracking(void);

#endif
