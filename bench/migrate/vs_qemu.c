/*
 * vs_qemu.c - `tagmem bench migrate --vs-qemu --json`: tagmem's migration
 * against QEMU's own multifd migration, and against the practical limit,
 * on the same machine in the same run.
 *
 * One guest RAM, a file on /dev/shm mapped shared, holds the benchmark's
 * page mix (tm_workload_fill, seed 42: 25 % zero pages, 10 % tag-only, the
 * rest data with allocator-style MTE tags). For each channel count, best
 * of --reps runs (5), the variants interleaved and rotated so drift in the
 * machine's load hits them alike:
 *
 *   tags      tagmem, a soft region with MTE tags over that RAM, zero copy
 *   copy      the same with zero copy off (every page through the packet
 *             buffer: the path before zero copy - the CPU baseline)
 *   notags    tagmem, a region without metadata over the same RAM (the
 *             tag-only pages are then zero pages, as QEMU sees them)
 *   qemu      qemu-system-aarch64 -S with the RAM file as
 *             memory-backend-file (share=on), multifd with the same channel
 *             count, into a second QEMU (-incoming defer) whose RAM is a
 *             fresh file on /dev/shm; no tags (QEMU cannot migrate them)
 *   limit     plain sockets moving only the data of the non-zero pages,
 *             straight from the RAM into the same offsets of fresh memory:
 *             no protocol, no zero detection, no tags
 *
 * Everything goes over unix sockets. Every variant is timed the same way:
 * wall clock from opening the connections (tagmem) / the migrate command
 * (QEMU) / the first byte (limit) until the destination has everything, and
 * reported as GB (1e9 B) of guest RAM per second, so the numbers divide.
 * CPU: user+system seconds of this process (tagmem, limit) or of both QEMU
 * processes during the transfer, per GB of guest RAM.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench/bench_common.h"
#include "bench/migrate/bm.h"
#include "bench/migrate/qemu_drv.h"
#include "common/util.h"
#include "migrate/transport.h"
#include "workload/fill.h"

#define PS 4096u
#define CHUNK 128u              /* pages per packet, as tagmem and QEMU */

enum { V_TAGS, V_COPY, V_NOTAGS, V_QEMU, V_LIMIT, NV };
static const char *const vname[NV] = { "tags", "copy", "notags", "qemu", "limit" };

struct vq_opts {
	uint64_t size;
	unsigned reps;
	unsigned chan[TM_MIGRATE_MAX_CHANNELS];
	unsigned nchan;
	const char *qemu;
	unsigned vmask;         /* --variants: which to run (all) */
};

struct vq_ctx {
	struct vq_opts o;
	char dir[256];          /* sockets, QEMU logs */
	char src_ram[256], dst_ram[256];
	uint8_t *ram;           /* the source guest RAM (shared file mapping) */
	tm_region *tagged, *plain;
	uint64_t *nonzero;      /* bitmap: pages whose data is not zero */
	uint64_t nonzero_pages;
	bool have_qemu;
	char qemu_note[400];
	tm_qemu_bin qb;
	tm_qemu_result qlast;
};

/* Per channel count and variant: every run's seconds and CPU seconds. */
struct vq_cell {
	double secs[20], cpu[20];
	unsigned n;
};

/* ---- setup ---------------------------------------------------------- */

static int map_ram(struct vq_ctx *c, tm_error *err)
{
	int fd = open(c->src_ram, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0)
		return tm_error_set(err, -errno, "%s: %s", c->src_ram, strerror(errno));
	if (ftruncate(fd, (off_t)c->o.size)) {
		int rc = -errno;

		close(fd);
		return tm_error_set(err, rc, "%s: ftruncate: %s", c->src_ram,
				    strerror(-rc));
	}
	c->ram = mmap(NULL, c->o.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (c->ram == MAP_FAILED) {
		c->ram = NULL;
		return tm_error_set(err, -errno, "%s: mmap: %s", c->src_ram,
				    strerror(errno));
	}
	return 0;
}

static tm_region *region_over(void *addr, uint64_t size, bool tags, tm_error *err)
{
	tm_region_config cfg = { .name = "ram", .size = size,
				 .backend = TM_BACKEND_SOFT, .addr = addr };
	tm_region *r = NULL;

	if (tags)
		tm_geom_mte(&cfg.geom, PS, NULL);
	else
		tm_geom_init(&cfg.geom, TM_META_NONE, PS, 0, 0, NULL);
	return tm_region_create(&cfg, &r, err) ? NULL : r;
}

static int find_nonzero(struct vq_ctx *c, tm_error *err)
{
	size_t np = c->o.size / PS;

	c->nonzero = calloc(tm_bitmap_words(np), 8);
	if (!c->nonzero)
		return tm_error_set(err, -ENOMEM, "no memory for the page bitmap");
	for (size_t pg = 0; pg < np; pg++)
		if (!tm_mem_is_zero(c->ram + pg * PS, PS)) {
			tm_bit_set(c->nonzero, pg);
			c->nonzero_pages++;
		}
	return 0;
}

static int setup(struct vq_ctx *c, tm_error *err)
{
	int rc;

	snprintf(c->dir, sizeof(c->dir), "/tmp/tagmem-vsq-%d", (int)getpid());
	snprintf(c->src_ram, sizeof(c->src_ram), "/dev/shm/tagmem-vsq-%d-src.ram",
		 (int)getpid());
	snprintf(c->dst_ram, sizeof(c->dst_ram), "/dev/shm/tagmem-vsq-%d-dst.ram",
		 (int)getpid());
	if (mkdir(c->dir, 0700) && errno != EEXIST)
		return tm_error_set(err, -errno, "%s: %s", c->dir, strerror(errno));
	rc = map_ram(c, err);
	if (rc)
		return rc;
	c->tagged = region_over(c->ram, c->o.size, true, err);
	c->plain = c->tagged ? region_over(c->ram, c->o.size, false, err) : NULL;
	if (!c->plain)
		return -EINVAL;
	return tm_workload_fill(c->tagged, 42, 25, 10, err);
}

static void teardown(struct vq_ctx *c)
{
	char p[300];

	if (c->tagged)
		tm_region_destroy(c->tagged);
	if (c->plain)
		tm_region_destroy(c->plain);
	if (c->ram)
		munmap(c->ram, c->o.size);
	free(c->nonzero);
	unlink(c->src_ram);
	unlink(c->dst_ram);
	snprintf(p, sizeof(p), "%s/qemu-src.log", c->dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/qemu-dst.log", c->dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/tagmem.sock", c->dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/limit.sock", c->dir);
	unlink(p);
	rmdir(c->dir);
}

/* ---- the practical limit ------------------------------------------- */

struct lim_ch {
	const struct vq_ctx *c;
	int fd;
	uint8_t *base;          /* where this end reads or writes */
	unsigned idx, n;
	bool recv;
	struct iovec iov[CHUNK];
	int rc;
};

/* The non-zero pages of chunk k as iovecs over base. */
static int chunk_iov(const struct vq_ctx *c, uint8_t *base, size_t k,
		     struct iovec *iov)
{
	size_t np = c->o.size / PS, first = k * CHUNK;
	int n = 0;

	for (size_t pg = first; pg < first + CHUNK && pg < np; pg++) {
		if (!tm_bit_test(c->nonzero, pg))
			continue;
		if (n && (uint8_t *)iov[n - 1].iov_base + iov[n - 1].iov_len ==
			 base + pg * PS)
			iov[n - 1].iov_len += PS;
		else
			iov[n++] = (struct iovec){ base + pg * PS, PS };
	}
	return n;
}

/* Chunks k = idx, idx + n, ...: the same chunk-to-channel rule as tagmem. */
static void *lim_main(void *arg)
{
	struct lim_ch *l = arg;
	size_t nchunks = (l->c->o.size / PS + CHUNK - 1) / CHUNK;

	for (size_t k = l->idx; k < nchunks && l->rc == 0; k += l->n) {
		int niov = chunk_iov(l->c, l->base, k, l->iov);

		l->rc = l->recv ? tm_xport_recvv(l->fd, l->iov, niov)
				: tm_xport_sendv(l->fd, l->iov, niov);
	}
	if (l->rc)
		shutdown(l->fd, SHUT_RDWR);     /* so the other end stops too */
	return NULL;
}

static int lim_connect(struct vq_ctx *c, unsigned n, int *sfd, int *rfd,
		       tm_error *err)
{
	char addr[300];
	int lfd, rc;

	snprintf(addr, sizeof(addr), "unix:%s/limit.sock", c->dir);
	rc = tm_migrate_listen(addr, &lfd, err);
	if (rc == 0)
		rc = tm_migrate_connect(addr, n, sfd, 5000, err);
	for (unsigned i = 0; rc == 0 && i < n; i++) {
		rfd[i] = accept(lfd, NULL, NULL);
		if (rfd[i] < 0)
			rc = tm_error_set(err, -errno, "accept: %s", strerror(errno));
	}
	if (lfd >= 0)
		close(lfd);
	return rc;
}

static int limit_once(struct vq_ctx *c, unsigned n, double *secs, double *cpu,
		      tm_error *err)
{
	struct lim_ch ch[2 * TM_MIGRATE_MAX_CHANNELS];
	pthread_t thr[2 * TM_MIGRATE_MAX_CHANNELS];
	int sfd[TM_MIGRATE_MAX_CHANNELS], rfd[TM_MIGRATE_MAX_CHANNELS];
	uint8_t *dst;
	double cpu0;
	uint64_t t0;
	int rc;

	for (unsigned i = 0; i < n; i++)
		sfd[i] = rfd[i] = -1;
	dst = mmap(NULL, c->o.size, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (dst == MAP_FAILED)
		return tm_error_set(err, -ENOMEM, "limit: no memory");
	rc = lim_connect(c, n, sfd, rfd, err);
	cpu0 = tm_bm_cpu_now();
	t0 = tm_now_ns();
	for (unsigned i = 0; rc == 0 && i < 2 * n; i++) {
		bool rx = i >= n;

		ch[i] = (struct lim_ch){ .c = c, .fd = rx ? rfd[i - n] : sfd[i],
					 .base = rx ? dst : c->ram, .idx = i % n,
					 .n = n, .recv = rx };
		pthread_create(&thr[i], NULL, lim_main, &ch[i]);
	}
	for (unsigned i = 0; rc == 0 && i < 2 * n; i++)
		pthread_join(thr[i], NULL);
	*secs = (double)(tm_now_ns() - t0) / 1e9;
	*cpu = tm_bm_cpu_now() - cpu0;
	for (unsigned i = 0; rc == 0 && i < 2 * n; i++)
		if (ch[i].rc && rc == 0)
			rc = tm_error_set(err, ch[i].rc, "limit channel %u: %s", i % n,
					  tm_xport_strerror(ch[i].rc));
	for (unsigned i = 0; i < n; i++) {
		if (sfd[i] >= 0)
			close(sfd[i]);
		if (rfd[i] >= 0)
			close(rfd[i]);
	}
	munmap(dst, c->o.size);
	return rc;
}

/* ---- the variants ---------------------------------------------------- */

static int tagmem_once(struct vq_ctx *c, bool tags, bool zero_copy, unsigned n,
		       double *secs, double *cpu, tm_error *err)
{
	tm_region_config cfg = { .name = "ram", .size = c->o.size,
				 .backend = TM_BACKEND_SOFT };
	char addr[300];
	tm_region *dst = NULL;
	tm_bm_run run = { 0 };
	int rc;

	if (tags)
		tm_geom_mte(&cfg.geom, PS, NULL);
	else
		tm_geom_init(&cfg.geom, TM_META_NONE, PS, 0, 0, NULL);
	rc = tm_region_create(&cfg, &dst, err);
	snprintf(addr, sizeof(addr), "unix:%s/tagmem.sock", c->dir);
	if (rc == 0)
		rc = tm_bm_migrate(tags ? c->tagged : c->plain, dst, n, addr,
				   zero_copy, &run, err);
	tm_region_destroy(dst);
	*secs = run.secs;
	*cpu = run.cpu_secs;
	return rc;
}

static int qemu_once(struct vq_ctx *c, unsigned n, double *secs, double *cpu,
		     tm_error *err)
{
	char msg[TM_ERROR_MSG_MAX];
	int rc = tm_qemu_migrate(&c->qb, c->src_ram, c->dst_ram, c->dir, c->o.size,
				 n, &c->qlast, msg, sizeof(msg));

	if (rc)
		return tm_error_set(err, rc, "QEMU, %u channels: %s", n, msg);
	*secs = c->qlast.secs;
	*cpu = c->qlast.cpu_secs;
	return 0;
}

static int run_variant(struct vq_ctx *c, int v, unsigned n, struct vq_cell *cell,
		       tm_error *err)
{
	double secs = 0, cpu = 0;
	int rc;

	switch (v) {
	case V_TAGS:   rc = tagmem_once(c, true, true, n, &secs, &cpu, err); break;
	case V_COPY:   rc = tagmem_once(c, true, false, n, &secs, &cpu, err); break;
	case V_NOTAGS: rc = tagmem_once(c, false, true, n, &secs, &cpu, err); break;
	case V_QEMU:   rc = qemu_once(c, n, &secs, &cpu, err); break;
	default:       rc = limit_once(c, n, &secs, &cpu, err); break;
	}
	if (rc == 0 && cell->n < 20) {
		cell->secs[cell->n] = secs;
		cell->cpu[cell->n++] = cpu;
	}
	return rc;
}

/* ---- report ------------------------------------------------------------ */

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double best(const struct vq_cell *c)
{
	double b = 0;

	for (unsigned i = 0; i < c->n; i++)
		if (b == 0 || c->secs[i] < b)
			b = c->secs[i];
	return b;
}

static double median(const struct vq_cell *c)
{
	double s[20];

	memcpy(s, c->secs, c->n * sizeof(double));
	qsort(s, c->n, sizeof(double), cmp_d);
	return c->n ? (c->n % 2 ? s[c->n / 2] : (s[c->n / 2 - 1] + s[c->n / 2]) / 2) : 0;
}

/* CPU seconds per GB of guest RAM, least over the runs. */
static double cpu_gb(const struct vq_cell *c, uint64_t size)
{
	double b = 0;

	for (unsigned i = 0; i < c->n; i++)
		if (b == 0 || c->cpu[i] < b)
			b = c->cpu[i];
	return b / ((double)size / 1e9);
}

static double gbps(const struct vq_cell *c, uint64_t size)
{
	double b = best(c);

	return b > 0 ? (double)size / b / 1e9 : 0;
}

static void load_avg(char *out, size_t len)
{
	FILE *f = fopen("/proc/loadavg", "r");
	double a = 0, b = 0, d = 0;

	if (f && fscanf(f, "%lf %lf %lf", &a, &b, &d) != 3)
		a = b = d = 0;
	if (f)
		fclose(f);
	snprintf(out, len, "[%.2f, %.2f, %.2f]", a, b, d);
}

/* A JSON number, or null when the variant did not run. */
static int num(char *out, size_t len, double v, bool have)
{
	return have ? snprintf(out, len, "%.3f", v) : snprintf(out, len, "null");
}

/* One channel count's object. */
static size_t report_one(const struct vq_ctx *c, unsigned n, struct vq_cell *cell,
			 char *out, size_t len)
{
	uint64_t sz = c->o.size;
	bool q = cell[V_QEMU].n > 0;
	double t = gbps(&cell[V_TAGS], sz), qg = gbps(&cell[V_QEMU], sz);
	double lim = gbps(&cell[V_LIMIT], sz);
	char qs[32], rq[32], qc[32], qms[32], qmed[32];
	size_t k;

	num(qs, sizeof(qs), qg, q);
	num(rq, sizeof(rq), q && qg > 0 ? t / qg : 0, q);
	num(qc, sizeof(qc), cpu_gb(&cell[V_QEMU], sz), q);
	num(qms, sizeof(qms), best(&cell[V_QEMU]) * 1e3, q);
	num(qmed, sizeof(qmed), median(&cell[V_QEMU]) * 1e3, q);
	k = (size_t)snprintf(out, len,
		"{\"channels\": %u, \"throughput_gbps\": %.3f, \"qemu_gbps\": %s, "
		"\"ratio_vs_qemu\": %s, \"limit_gbps\": %.3f, \"ratio_vs_limit\": %.3f, "
		"\"throughput_copy_gbps\": %.3f, \"throughput_notags_gbps\": %.3f, "
		"\"cpu_s_per_gb\": %.3f, \"cpu_s_per_gb_copy\": %.3f, "
		"\"cpu_s_per_gb_notags\": %.3f, \"cpu_s_per_gb_limit\": %.3f, "
		"\"qemu_cpu_s_per_gb\": %s, ",
		n, t, qs, rq, lim, lim > 0 ? t / lim : 0, gbps(&cell[V_COPY], sz),
		gbps(&cell[V_NOTAGS], sz), cpu_gb(&cell[V_TAGS], sz),
		cpu_gb(&cell[V_COPY], sz), cpu_gb(&cell[V_NOTAGS], sz),
		cpu_gb(&cell[V_LIMIT], sz), qc);
	k += (size_t)snprintf(out + k, len - k,
		"\"ms_best\": {\"tags\": %.1f, \"copy\": %.1f, \"notags\": %.1f, "
		"\"qemu\": %s, \"limit\": %.1f}, "
		"\"ms_median\": {\"tags\": %.1f, \"copy\": %.1f, \"notags\": %.1f, "
		"\"qemu\": %s, \"limit\": %.1f}}",
		best(&cell[V_TAGS]) * 1e3, best(&cell[V_COPY]) * 1e3,
		best(&cell[V_NOTAGS]) * 1e3, qms, best(&cell[V_LIMIT]) * 1e3,
		median(&cell[V_TAGS]) * 1e3, median(&cell[V_COPY]) * 1e3,
		median(&cell[V_NOTAGS]) * 1e3, qmed, median(&cell[V_LIMIT]) * 1e3);
	return k;
}

/* ---- driver --------------------------------------------------------------- */

/* "tags,qemu,limit": for profiling one side; the report then has zeros
 * (or null for qemu) for the variants not run. */
static int parse_variants(const char *s, unsigned *mask)
{
	*mask = 0;
	while (*s) {
		size_t n = strcspn(s, ",");
		int v = 0;

		while (v < NV && (strlen(vname[v]) != n || strncmp(s, vname[v], n)))
			v++;
		if (v == NV)
			return -1;
		*mask |= 1u << v;
		s += n + (s[n] == ',');
	}
	return *mask ? 0 : -1;
}

static int parse(int argc, char **argv, struct vq_opts *o)
{
	o->size = 2ull << 30;
	o->reps = 5;
	o->nchan = 0;
	o->qemu = "qemu-system-aarch64";
	o->vmask = (1u << NV) - 1;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json") || !strcmp(argv[i], "--vs-qemu"))
			continue;
		if (!strcmp(argv[i], "--size") && i + 1 < argc) {
			if (tm_parse_size(argv[++i], &o->size) || !o->size ||
			    o->size % (1u << 20))
				return -1;
		} else if (!strcmp(argv[i], "--reps") && i + 1 < argc) {
			o->reps = (unsigned)atoi(argv[++i]);
			if (o->reps < 1 || o->reps > 20)
				return -1;
		} else if (!strcmp(argv[i], "--channels") && i + 1 < argc) {
			unsigned ch = (unsigned)atoi(argv[++i]);

			if (ch < 1 || ch > TM_MIGRATE_MAX_CHANNELS ||
			    o->nchan == TM_MIGRATE_MAX_CHANNELS)
				return -1;
			o->chan[o->nchan++] = ch;
		} else if (!strcmp(argv[i], "--qemu") && i + 1 < argc) {
			o->qemu = argv[++i];
		} else if (!strcmp(argv[i], "--variants") && i + 1 < argc) {
			if (parse_variants(argv[++i], &o->vmask))
				return -1;
		} else {
			return -1;
		}
	}
	if (o->nchan == 0) {
		o->chan[0] = 1;
		o->chan[1] = 2;
		o->chan[2] = 4;
		o->nchan = 3;
	}
	return 0;
}

/* All variants for one channel count, interleaved, rotated every rep. */
static int measure(struct vq_ctx *c, unsigned n, struct vq_cell *cell,
		   tm_error *err)
{
	for (unsigned r = 0; r < c->o.reps; r++)
		for (unsigned k = 0; k < NV; k++) {
			int v = (int)((k + r) % NV);

			if ((v == V_QEMU && !c->have_qemu) || !(c->o.vmask & (1u << v)))
				continue;
			int rc = run_variant(c, v, n, &cell[v], err);
			if (rc)
				return tm_error_wrap(err, rc, "%s run, %u channels",
						     vname[v], n);
		}
	return 0;
}

static void print_json(struct vq_ctx *c, struct vq_cell (*cells)[NV],
		       const char *load0, const char *load1)
{
	static char runs[16384];
	size_t rl = 0, top = c->o.nchan - 1;
	bool t_qemu = c->have_qemu, t_lim = true;
	tm_json j;

	for (unsigned i = 0; i < c->o.nchan; i++) {
		uint64_t sz = c->o.size;
		double t = gbps(&cells[i][V_TAGS], sz);

		rl += (size_t)snprintf(runs + rl, sizeof(runs) - rl, "%s", i ? ", " : "[");
		rl += report_one(c, c->o.chan[i], cells[i], runs + rl, sizeof(runs) - rl);
		t_qemu = t_qemu && t >= 1.5 * gbps(&cells[i][V_QEMU], sz);
		t_lim = t_lim && t >= 0.9 * gbps(&cells[i][V_LIMIT], sz);
		if (c->o.chan[i] == 2)
			top = i;
	}
	snprintf(runs + rl, sizeof(runs) - rl, "]");
	uint64_t sz = c->o.size;
	struct vq_cell *tc = cells[top];
	double t = gbps(&tc[V_TAGS], sz), q = gbps(&tc[V_QEMU], sz);
	double lim = gbps(&tc[V_LIMIT], sz);

	tm_json_begin(&j, stdout);
	tm_json_str(&j, "bench", "migrate");
	tm_json_str(&j, "mode", "vs-qemu");
	tm_json_int(&j, "size", (long long)sz);
	tm_json_int(&j, "reps", c->o.reps);
	tm_json_str(&j, "transport", "unix");
	tm_json_str(&j, "workload", "paused/idle; 25% zero, 10% tag-only, rest data "
		    "with alloc tags (seed 42) in a /dev/shm file; compression none; "
		    "best of reps, variants interleaved");
	tm_json_int(&j, "nonzero_pages", (long long)c->nonzero_pages);
	tm_json_int(&j, "limit_bytes", (long long)(c->nonzero_pages * PS));
	tm_json_bool(&j, "qemu_installed", c->have_qemu);
	tm_json_str(&j, "qemu", c->have_qemu ? c->qb.version : c->qemu_note);
	tm_json_raw(&j, "load_avg_start", load0);
	tm_json_raw(&j, "load_avg_end", load1);
	tm_json_int(&j, "channels", c->o.chan[top]);
	tm_json_num(&j, "throughput_gbps", t);
	if (c->have_qemu) {
		tm_json_num(&j, "qemu_gbps", q);
		tm_json_num(&j, "ratio_vs_qemu", q > 0 ? t / q : 0);
	} else {
		tm_json_raw(&j, "qemu_gbps", "null");
		tm_json_raw(&j, "ratio_vs_qemu", "null");
	}
	tm_json_num(&j, "limit_gbps", lim);
	tm_json_num(&j, "ratio_vs_limit", lim > 0 ? t / lim : 0);
	tm_json_num(&j, "cpu_s_per_gb", cpu_gb(&tc[V_TAGS], sz));
	tm_json_num(&j, "cpu_s_per_gb_copy", cpu_gb(&tc[V_COPY], sz));
	tm_json_bool(&j, "target_1_5x_qemu_all_channels", t_qemu);
	tm_json_bool(&j, "target_0_9_limit_all_channels", t_lim);
	tm_json_raw(&j, "runs", runs);
	tm_json_end(&j);
}

int tm_bench_migrate_vs_qemu(int argc, char **argv)
{
	static struct vq_cell cells[TM_MIGRATE_MAX_CHANNELS][NV];
	struct vq_ctx c;
	char load0[64], load1[64];
	tm_error err;
	int rc;

	memset(&c, 0, sizeof(c));
	tm_error_clear(&err);
	if (parse(argc, argv, &c.o)) {
		fprintf(stderr, "usage: tagmem bench migrate --vs-qemu [--json] "
			"[--size 2G] [--reps 5] [--channels N]... [--qemu PATH]\n"
			"       [--variants tags,copy,notags,qemu,limit]\n");
		return 2;
	}
	c.have_qemu = tm_qemu_find(c.o.qemu, &c.qb, c.qemu_note,
				   sizeof(c.qemu_note)) == 0;
	if (!c.have_qemu)
		fprintf(stderr, "tagmem bench migrate: %s; measuring tagmem and the "
			"limit only (qemu_gbps is null)\n", c.qemu_note);
	load_avg(load0, sizeof(load0));
	rc = setup(&c, &err);
	/* A first QEMU run, not counted: it writes the virt machine's device
	 * tree at the base of the guest RAM (so every counted variant sees the
	 * same bytes) and brings QEMU into the page cache. */
	if (rc == 0 && c.have_qemu && (c.o.vmask & (1u << V_QEMU))) {
		double s, cpu;

		rc = qemu_once(&c, c.o.chan[0], &s, &cpu, &err);
	}
	if (rc == 0)
		rc = find_nonzero(&c, &err);
	for (unsigned i = 0; rc == 0 && i < c.o.nchan; i++)
		rc = measure(&c, c.o.chan[i], cells[i], &err);
	load_avg(load1, sizeof(load1));
	if (rc == 0)
		print_json(&c, cells, load0, load1);
	else
		fprintf(stderr, "tagmem bench migrate --vs-qemu: %s\n", tm_error_msg(&err));
	teardown(&c);
	return rc ? 1 : 0;
}
