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
#include "workload/writers.h"
#include "tagmem/migrate.h"
#include "tagmem/region.h"
#include "migrate/transport.h"

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

/* ---- a relay between source and destination that can cut or corrupt ---- */

#include <poll.h>
#include <stdatomic.h>
#include <sys/socket.h>

typedef struct mt_proxy {
	int lfd;
	char addr[128];
	char target[128];
	unsigned nconn;             /* connections to relay (channels + 1) */
	int64_t cut_at;             /* close everything after this many bytes (-1) */
	int64_t flip_at;            /* flip one bit of this byte (-1) */
	_Atomic int64_t total;      /* bytes relayed, both directions */
	atomic_bool acted;          /* the cut or flip happened */
	pthread_t thr;
} mt_proxy;

struct mt_pair { int a, b; };

/* Move bytes one way; returns bytes moved, 0 on EOF/error. */
static inline ssize_t mt_relay(mt_proxy *p, int from, int to)
{
	uint8_t buf[65536];
	size_t want = sizeof(buf);
	int64_t t = atomic_load(&p->total);
	ssize_t n;

	if (p->cut_at >= 0) {
		if (t >= p->cut_at)
			return 0;
		if ((int64_t)want > p->cut_at - t)
			want = (size_t)(p->cut_at - t);
	}
	n = read(from, buf, want);
	if (n <= 0)
		return 0;
	if (p->flip_at >= t && p->flip_at < t + n) {
		buf[p->flip_at - t] ^= 0x10;
		atomic_store(&p->acted, true);
	}
	atomic_fetch_add(&p->total, n);
	for (ssize_t off = 0; off < n;) {
		ssize_t w = send(to, buf + off, (size_t)(n - off), MSG_NOSIGNAL);

		if (w <= 0)
			return 0;
		off += w;
	}
	return n;
}

static inline void *mt_proxy_main(void *arg)
{
	mt_proxy *p = arg;
	struct mt_pair pair[TM_MIGRATE_MAX_CHANNELS + 1];
	struct pollfd pf[2 * (TM_MIGRATE_MAX_CHANNELS + 1)];
	unsigned n = 0, open_pairs;

	for (; n < p->nconn; n++) {
		struct pollfd lp = { .fd = p->lfd, .events = POLLIN };

		if (poll(&lp, 1, 5000) <= 0)
			break;
		pair[n].a = accept(p->lfd, NULL, NULL);
		if (tm_migrate_connect(p->target, 1, &pair[n].b, 5000, NULL)) {
			close(pair[n].a);
			break;
		}
	}
	open_pairs = n;
	while (open_pairs > 0) {
		for (unsigned i = 0; i < n; i++) {
			pf[2 * i] = (struct pollfd){ .fd = pair[i].a, .events = POLLIN };
			pf[2 * i + 1] = (struct pollfd){ .fd = pair[i].b, .events = POLLIN };
		}
		if (poll(pf, 2 * n, 10000) <= 0)
			break;
		for (unsigned i = 0; i < 2 * n; i++) {
			struct mt_pair *q = &pair[i / 2];

			if (pf[i].fd < 0 || !(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			if (mt_relay(p, i % 2 ? q->b : q->a, i % 2 ? q->a : q->b) == 0 &&
			    q->a >= 0) {
				if (p->cut_at >= 0 && atomic_load(&p->total) >= p->cut_at) {
					/* The cut: every connection dies at once. */
					atomic_store(&p->acted, true);
					for (unsigned k = 0; k < n; k++)
						if (pair[k].a >= 0) {
							close(pair[k].a);
							close(pair[k].b);
							pair[k].a = pair[k].b = -1;
						}
					open_pairs = 0;
					break;
				}
				close(q->a);
				close(q->b);
				q->a = q->b = -1;
				open_pairs--;
			}
		}
		for (unsigned k = 0; k < n; k++)
			if (pair[k].a < 0) {
				/* keep poll() from reporting closed slots */
				pair[k].a = pair[k].b = -1;
			}
	}
	for (unsigned k = 0; k < n; k++)
		if (pair[k].a >= 0) {
			close(pair[k].a);
			close(pair[k].b);
		}
	return NULL;
}

static inline int mt_proxy_start(mt_proxy *p, const char *target, unsigned nconn,
				 int64_t cut_at, int64_t flip_at)
{
	memset(p, 0, sizeof(*p));
	snprintf(p->target, sizeof(p->target), "%s", target);
	p->nconn = nconn;
	p->cut_at = cut_at;
	p->flip_at = flip_at;
	if (tm_migrate_listen("tcp:127.0.0.1:0", &p->lfd, NULL) ||
	    tm_migrate_listener_addr(p->lfd, p->addr, sizeof(p->addr), NULL))
		return -1;
	return pthread_create(&p->thr, NULL, mt_proxy_main, p) ? -1 : 0;
}

static inline int64_t mt_proxy_join(mt_proxy *p)
{
	pthread_join(p->thr, NULL);
	close(p->lfd);
	return atomic_load(&p->total);
}

/* True when every byte and tag of r is zero (nothing placed or discarded). */
static inline bool mt_all_zero(tm_region *r)
{
	const tm_geom *g = tm_region_geom(r);
	size_t tb = tm_geom_packed_bytes(g);
	uint8_t *d = malloc(g->page_size), t[2048];
	bool z = true;

	for (size_t pg = 0; z && pg < tm_region_npages(r); pg++) {
		if (tm_region_read_page(r, pg, d, tb ? t : NULL, NULL))
			z = false;
		else
			z = tm_mem_is_zero(d, g->page_size) && (!tb || tm_mem_is_zero(t, tb));
	}
	free(d);
	return z;
}

#endif
