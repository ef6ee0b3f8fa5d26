/*
 * bench_migrate.c - `tagmem bench migrate --json`: throughput of a live
 * migration over loopback TCP with tags, the same migration with metadata
 * off, and a raw socket send of the same bytes (data + packed tags) through
 * the same number of plain sockets, all measured in the same run because
 * the machine is shared and noisy. Region: 25 % zero pages, 10 % tag-only,
 * the rest data (half random, half compressible) with allocator-style tags;
 * idle workload; compression none; best of --reps runs (3), each into a fresh
 * destination (first-touch page faults are part of every variant).
 * Because wall-clock throughput on a shared 2-core machine mostly measures
 * the neighbours, each variant also reports the CPU time the whole process
 * (sender and receiver threads) spent per GB moved: a load-independent cost.
 */
#include <errno.h>
#include <pthread.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench/bench_common.h"
#include "bench/migrate/bm.h"
#include "common/util.h"
#include "migrate/transport.h"
#include "workload/writers.h"
#include "tagmem/migrate.h"
#include "tools/cmds.h"

struct bopts {
	uint64_t size;
	unsigned reps;
	unsigned chan[4];
	unsigned nchan;
};

static tm_region *make(const char *name, uint64_t size, bool tags)
{
	tm_region_config c = { .name = name, .size = size, .backend = TM_BACKEND_SOFT };
	tm_region *r = NULL;

	if (tags)
		tm_geom_mte(&c.geom, 4096, NULL);
	else
		tm_geom_init(&c.geom, TM_META_NONE, 4096, 0, 0, NULL);
	if (tm_region_create(&c, &r, NULL))
		return NULL;
	return r;
}

double tm_bm_cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct dthread {
	tm_migration *m;
	int rc;
	tm_error err;
};

static void *dest_main(void *arg)
{
	struct dthread *d = arg;

	d->rc = tm_migration_run(d->m, NULL, &d->err);
	return NULL;
}

static int run_source(tm_region *src, const char *addr, unsigned channels,
		      const tm_migrate_config *cfg, tm_migrate_stats *st,
		      tm_error *err)
{
	int fds[TM_MIGRATE_MAX_CHANNELS + 1];
	tm_migration *s = NULL;
	int rc = tm_migrate_connect(addr, channels + 1, fds, 5000, err);

	if (rc)
		return rc;
	rc = tm_migration_new(&s, TM_MIGRATE_SOURCE, cfg, NULL, err);
	if (rc == 0)
		rc = tm_migration_add_region(s, src, err);
	for (unsigned i = 0; rc == 0 && i <= channels; i++)
		rc = tm_migration_add_fd(s, fds[i], err);
	if (rc == 0)
		rc = tm_migration_run(s, st, err);
	tm_migration_free(s);
	for (unsigned i = 0; i <= channels; i++)
		close(fds[i]);
	return rc;
}

int tm_bm_migrate(tm_region *src, tm_region *dst, unsigned channels,
		  const char *listen_addr, bool zero_copy, tm_bm_run *out,
		  tm_error *err)
{
	struct dthread d = { 0 };
	tm_migrate_config cfg;
	tm_migrate_stats st = { 0 };
	char addr[256];
	double cpu0;
	uint64_t t0;
	pthread_t thr;
	int lfd = -1, rc;

	tm_migrate_config_default(&cfg);
	cfg.channels = channels;
	cfg.verify = false;     /* the digest is a check, not transfer */
	cfg.zero_copy = zero_copy;
	rc = tm_migrate_listen(listen_addr, &lfd, err);
	if (rc == 0)
		rc = tm_migrate_listener_addr(lfd, addr, sizeof(addr), err);
	if (rc == 0)
		rc = tm_migration_new(&d.m, TM_MIGRATE_DEST, &cfg, NULL, err);
	if (rc == 0)
		rc = tm_migration_add_region(d.m, dst, err);
	if (rc == 0)
		rc = tm_migration_set_listener(d.m, lfd, err);
	if (rc == 0 && pthread_create(&thr, NULL, dest_main, &d))
		rc = tm_error_set(err, -EAGAIN, "cannot start the destination");
	if (rc == 0) {
		cpu0 = tm_bm_cpu_now();
		t0 = tm_now_ns();
		rc = run_source(src, addr, channels, &cfg, &st, err);
		pthread_join(thr, NULL);
		out->secs = (double)(tm_now_ns() - t0) / 1e9;
		out->cpu_secs = tm_bm_cpu_now() - cpu0;
		out->gbps = st.throughput_gbps;
		if (getenv("TM_BM_DEBUG"))
			fprintf(stderr, "bm: %.1f ms wall, run total %llu ms setup %llu "
				"iter %u downtime %llu gbps %.3f packets %llu\n",
				out->secs * 1e3, (unsigned long long)st.total_ms,
				(unsigned long long)st.setup_ms, st.iterations,
				(unsigned long long)st.downtime_ms, st.throughput_gbps,
				(unsigned long long)st.packets);
		if (rc == 0 && d.rc) {
			rc = d.rc;
			*err = d.err;
		}
	}
	tm_migration_free(d.m);
	if (lfd >= 0)
		close(lfd);
	return rc;
}

/* One migration of src into a fresh region over loopback TCP; GB/s of page
 * bytes moved. The CPU per GB includes creating and freeing the
 * destination (first-touch faults and the unmap). */
static double migrate_once(tm_region *src, bool tags, unsigned channels,
			   double *cpu_per_gb, tm_error *err)
{
	double cpu0 = tm_bm_cpu_now();
	tm_region *dst = make("ram", tm_region_size(src), tags);
	tm_bm_run run = { 0 };
	int rc = dst ? tm_bm_migrate(src, dst, channels, "tcp:127.0.0.1:0", true,
				     &run, err) : -ENOMEM;

	if (dst)
		tm_region_destroy(dst);
	*cpu_per_gb = (tm_bm_cpu_now() - cpu0) / ((double)tm_region_size(src) / 1e9);
	return rc ? -1.0 : run.gbps;
}

/* ---- the raw-socket baseline ------------------------------------- */

struct rawch {
	int fd;
	const uint8_t *src;
	uint8_t *dst;
	size_t len;
	int rc;
};

static void *raw_send(void *arg)
{
	struct rawch *c = arg;

	c->rc = tm_xport_send(c->fd, c->src, c->len);
	return NULL;
}

static void *raw_recv(void *arg)
{
	struct rawch *c = arg;

	c->rc = tm_xport_recv(c->fd, c->dst, c->len);
	return NULL;
}

/* Send `len` bytes of src through n TCP connections into a fresh buffer. */
static double raw_once(const uint8_t *src, size_t len, unsigned n,
		       double *cpu_per_gb, tm_error *err)
{
	double cpu0 = tm_bm_cpu_now();
	uint8_t *dst = malloc(len);
	struct rawch snd[TM_MIGRATE_MAX_CHANNELS], rcv[TM_MIGRATE_MAX_CHANNELS];
	pthread_t ts[TM_MIGRATE_MAX_CHANNELS], tr[TM_MIGRATE_MAX_CHANNELS];
	int lfd, fds[TM_MIGRATE_MAX_CHANNELS];
	char addr[128];
	size_t part = len / n / 4096 * 4096;
	uint64_t t0;
	int rc = 0;

	if (!dst || tm_migrate_listen("tcp:127.0.0.1:0", &lfd, err)) {
		free(dst);
		return -1;
	}
	tm_migrate_listener_addr(lfd, addr, sizeof(addr), err);
	rc = tm_migrate_connect(addr, n, fds, 5000, err);
	t0 = tm_now_ns();
	for (unsigned i = 0; rc == 0 && i < n; i++) {
		size_t off = i * part, l = i == n - 1 ? len - off : part;

		rcv[i] = (struct rawch){ accept(lfd, NULL, NULL), NULL, dst + off, l, 0 };
		snd[i] = (struct rawch){ fds[i], src + off, NULL, l, 0 };
		pthread_create(&tr[i], NULL, raw_recv, &rcv[i]);
		pthread_create(&ts[i], NULL, raw_send, &snd[i]);
	}
	for (unsigned i = 0; rc == 0 && i < n; i++) {
		pthread_join(ts[i], NULL);
		pthread_join(tr[i], NULL);
		rc |= snd[i].rc | rcv[i].rc;
		close(rcv[i].fd);
		close(fds[i]);
	}
	double secs = (double)(tm_now_ns() - t0) / 1e9;
	close(lfd);
	free(dst);
	*cpu_per_gb = (tm_bm_cpu_now() - cpu0) / ((double)len / 1e9);
	return rc ? -1 : tm_gbps((double)len, secs);
}

/* The source region's data followed by its packed tags, as one buffer:
 * exactly the bytes a tagged migration must move, without any protocol. */
static uint8_t *flatten(tm_region *r, size_t *len)
{
	size_t np = tm_region_npages(r), ps = 4096, tb = 128;
	uint8_t *b = malloc(np * (ps + tb));

	if (!b)
		return NULL;
	for (size_t pg = 0; pg < np; pg++)
		tm_region_read_page(r, pg, b + pg * ps, b + np * ps + pg * tb, NULL);
	*len = np * (ps + tb);
	return b;
}

static int parse(int argc, char **argv, struct bopts *o)
{
	o->size = 2ull << 30;
	o->reps = 3;
	o->chan[0] = 1;
	o->chan[1] = 2;
	o->nchan = 2;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			continue;
		if (strcmp(argv[i], "--size") == 0 && i + 1 < argc) {
			if (tm_parse_size(argv[++i], &o->size) || o->size % 4096 || !o->size)
				return -1;
		} else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
			o->reps = (unsigned)atoi(argv[++i]);
			if (o->reps < 1 || o->reps > 20)
				return -1;
		} else if (strcmp(argv[i], "--channels") == 0 && i + 1 < argc) {
			unsigned c = (unsigned)atoi(argv[++i]);

			if (c < 1 || c > TM_MIGRATE_MAX_CHANNELS)
				return -1;
			o->chan[0] = c;
			o->nchan = 1;
		} else {
			return -1;
		}
	}
	return 0;
}

static double best(double a, double b) { return a > b ? a : b; }

int tm_bench_migrate(int argc, char **argv)
{
	struct bopts o;
	tm_region *tagged, *plain;
	uint8_t *flat;
	size_t flat_len = 0;
	tm_error err;
	tm_json j;
	char runs[4096];
	size_t rl = 0;
	double g[4][3] = { { 0 } }, cpu[4][3], c0 = 0, c1 = 0, c2 = 0;

	bool help = tm_bench_want_help(argc, argv);

	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--vs-qemu") == 0)
			return tm_bench_migrate_vs_qemu(argc, argv);

	if (help || parse(argc, argv, &o)) {
		fprintf(help ? stdout : stderr, "usage: tagmem bench migrate [--json] [--size 2G] "
			"[--reps 3] [--channels N (default: 1 and 2)]\n"
			"       tagmem bench migrate --vs-qemu [--json] [--size 2G] "
			"[--reps 5] [--channels N]... (default: 1, 2 and 4) "
			"[--qemu PATH]\n");
		return help ? 0 : 2;
	}
	tm_error_clear(&err);
	tagged = make("ram", o.size, true);
	plain = make("ram", o.size, false);
	if (!tagged || !plain || tm_workload_fill(tagged, 42, 25, 10, &err) ||
	    tm_workload_fill(plain, 42, 25, 10, &err)) {
		fprintf(stderr, "tagmem bench migrate: setup: %s\n", tm_error_msg(&err));
		return 1;
	}
	flat = flatten(tagged, &flat_len);
	if (!flat) {
		fprintf(stderr, "tagmem bench migrate: out of memory\n");
		return 1;
	}
	for (unsigned c = 0; c < o.nchan; c++) {
		cpu[c][0] = cpu[c][1] = cpu[c][2] = 1e9;
		for (unsigned r = 0; r < o.reps; r++) {
			/* Interleaved, so drift in machine load hits all three alike,
			 * and rotated, because the run after a big free pays for it:
			 * with reps >= 3 each variant takes each position. */
			for (unsigned k = 0; k < 3; k++) {
				unsigned v = (k + r) % 3;

				if (v == 0)
					g[c][0] = best(g[c][0], migrate_once(tagged, true,
								      o.chan[c], &c0, &err));
				else if (v == 1)
					g[c][1] = best(g[c][1], migrate_once(plain, false,
								      o.chan[c], &c1, &err));
				else
					g[c][2] = best(g[c][2], raw_once(flat, flat_len,
								  o.chan[c], &c2, &err));
			}
			cpu[c][0] = c0 < cpu[c][0] ? c0 : cpu[c][0];
			cpu[c][1] = c1 < cpu[c][1] ? c1 : cpu[c][1];
			cpu[c][2] = c2 < cpu[c][2] ? c2 : cpu[c][2];
		}
		if (g[c][0] <= 0 || g[c][1] <= 0 || g[c][2] <= 0) {
			fprintf(stderr, "tagmem bench migrate: a run failed: %s\n",
				tm_error_msg(&err));
			return 1;
		}
		rl += (size_t)snprintf(runs + rl, sizeof(runs) - rl,
			"%s{\"channels\": %u, \"throughput_gbps\": %.3f, "
			"\"throughput_notags_gbps\": %.3f, \"raw_socket_gbps\": %.3f, "
			"\"ratio_tags_vs_notags\": %.3f, \"ratio_tags_vs_raw\": %.3f, "
			"\"cpu_s_per_gb\": %.3f, \"cpu_s_per_gb_notags\": %.3f, "
			"\"cpu_s_per_gb_raw\": %.3f}",
			c ? ", " : "[", o.chan[c], g[c][0], g[c][1], g[c][2],
			g[c][0] / g[c][1], g[c][0] / g[c][2], cpu[c][0], cpu[c][1], cpu[c][2]);
	}
	snprintf(runs + rl, sizeof(runs) - rl, "]");
	unsigned last = o.nchan - 1;
	tm_json_begin(&j, stdout);
	tm_json_str(&j, "bench", "migrate");
	tm_json_int(&j, "size", (long long)o.size);
	tm_json_int(&j, "reps", o.reps);
	tm_json_str(&j, "workload", "idle; 25% zero, 10% tag-only, rest data with alloc tags; compression none; loopback TCP");
	tm_json_int(&j, "channels", o.chan[last]);
	tm_json_num(&j, "throughput_gbps", g[last][0]);
	tm_json_num(&j, "throughput_notags_gbps", g[last][1]);
	tm_json_num(&j, "raw_socket_gbps", g[last][2]);
	tm_json_num(&j, "ratio_tags_vs_notags", g[last][0] / g[last][1]);
	tm_json_num(&j, "ratio_tags_vs_raw", g[last][0] / g[last][2]);
	tm_json_num(&j, "cpu_s_per_gb", cpu[last][0]);
	tm_json_num(&j, "cpu_s_per_gb_notags", cpu[last][1]);
	tm_json_num(&j, "cpu_s_per_gb_raw", cpu[last][2]);
	tm_json_num(&j, "cpu_ratio_notags_vs_tags", cpu[last][1] / cpu[last][0]);
	tm_json_raw(&j, "runs", runs);
	tm_json_end(&j);
	free(flat);
	tm_region_destroy(tagged);
	tm_region_destroy(plain);
	return 0;
}
