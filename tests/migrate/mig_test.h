/*
 * mig_test.h - shared by the migration tests: regions in guarded mappings
 * (a PROT_NONE page on each side, so a write outside a region faults
 * instead of going unnoticed), a destination thread, and a source+dest
 * pair over real loopback sockets. Header-only so each test stays one file.
 */
#ifndef TM_TESTS_MIG_TEST_H
#define TM_TESTS_MIG_TEST_H

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/util.h"
#include "migrate/workload.h"
#include "tagmem/migrate.h"
#include "tagmem/region.h"

#define MT_GUARD 65536u

typedef struct mt_region {
	tm_region *r;
	uint8_t *map;       /* guard | region | guard */
	size_t size;
} mt_region;

/* A soft region of `size` bytes named name; meta TM_META_MTE or NONE. */
static inline int mt_region_new(mt_region *m, const char *name, size_t size,
				uint32_t kind, uint32_t page_size)
{
	tm_region_config c = { .name = name, .size = size,
			       .backend = TM_BACKEND_SOFT };
	tm_error err;
	int rc;

	tm_error_clear(&err);
	m->size = size;
	m->map = mmap(NULL, size + 2 * MT_GUARD, PROT_NONE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m->map == MAP_FAILED)
		return -errno;
	if (mprotect(m->map + MT_GUARD, size, PROT_READ | PROT_WRITE))
		return -errno;
	c.addr = m->map + MT_GUARD;
	rc = kind == TM_META_MTE ? tm_geom_mte(&c.geom, page_size, &err) :
		tm_geom_init(&c.geom, kind, page_size, 0, 0, &err);
	if (rc == 0)
		rc = tm_region_create(&c, &m->r, &err);
	if (rc)
		fprintf(stderr, "mt_region_new: %s\n", tm_error_msg(&err));
	return rc;
}

static inline void mt_region_free(mt_region *m)
{
	if (m->r)
		tm_region_destroy(m->r);
	if (m->map && m->map != MAP_FAILED)
		munmap(m->map, m->size + 2 * MT_GUARD);
	memset(m, 0, sizeof(*m));
}

static inline uint64_t mt_digest64(tm_region *r)
{
	uint8_t d[16];
	uint64_t v;

	if (tm_migrate_digest(&r, 1, 1, d, NULL))
		return 0;
	memcpy(&v, d, 8);
	return v;
}

/* Destination running in its own thread. */
typedef struct mt_dest {
	tm_migration *m;
	pthread_t thr;
	int rc;
	tm_error err;
	tm_migrate_stats st;
	int lfd;
	char addr[128];
} mt_dest;

static inline void *mt_dest_main(void *arg)
{
	mt_dest *d = arg;

	tm_error_clear(&d->err);
	d->rc = tm_migration_run(d->m, &d->st, &d->err);
	return NULL;
}

/* Listen on loopback TCP (port 0) and start a destination over regions. */
static inline int mt_dest_start(mt_dest *d, tm_region *const *r, size_t n,
				const tm_migrate_config *cfg)
{
	tm_error err;
	int rc;

	memset(d, 0, sizeof(*d));
	tm_error_clear(&err);
	rc = tm_migrate_listen("tcp:127.0.0.1:0", &d->lfd, &err);
	if (rc == 0)
		rc = tm_migrate_listener_addr(d->lfd, d->addr, sizeof(d->addr), &err);
	if (rc == 0)
		rc = tm_migration_new(&d->m, TM_MIGRATE_DEST, cfg, NULL, &err);
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = tm_migration_add_region(d->m, r[i], &err);
	if (rc == 0)
		rc = tm_migration_set_listener(d->m, d->lfd, &err);
	if (rc == 0 && pthread_create(&d->thr, NULL, mt_dest_main, d))
		rc = -EAGAIN;
	if (rc)
		fprintf(stderr, "mt_dest_start: %s\n", tm_error_msg(&err));
	return rc;
}

static inline int mt_dest_join(mt_dest *d)
{
	pthread_join(d->thr, NULL);
	tm_migration_free(d->m);
	close(d->lfd);
	return d->rc;
}

/* Source side: connect channels+1 sockets to addr and run. */
typedef struct mt_source {
	int rc;
	tm_error err;
	tm_migrate_stats st;
	int fds[TM_MIGRATE_MAX_CHANNELS + 1];
	unsigned nfds;
} mt_source;

static inline int mt_source_run(mt_source *s, const char *addr,
				tm_region *const *r, size_t n,
				const tm_migrate_config *cfg,
				const tm_migrate_hooks *hooks)
{
	tm_migration *m = NULL;
	int rc;

	memset(s, 0, sizeof(*s));
	tm_error_clear(&s->err);
	s->nfds = cfg->channels + 1;
	rc = tm_migrate_connect(addr, s->nfds, s->fds, 5000, &s->err);
	if (rc)
		return s->rc = rc;
	rc = tm_migration_new(&m, TM_MIGRATE_SOURCE, cfg, hooks, &s->err);
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = tm_migration_add_region(m, r[i], &s->err);
	for (unsigned i = 0; rc == 0 && i < s->nfds; i++)
		rc = tm_migration_add_fd(m, s->fds[i], &s->err);
	if (rc == 0)
		rc = tm_migration_run(m, &s->st, &s->err);
	tm_migration_free(m);
	for (unsigned i = 0; i < s->nfds; i++)
		close(s->fds[i]);
	return s->rc = rc;
}

#endif
