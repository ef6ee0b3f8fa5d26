/*
 * cmd_migrate.c - `tagmem migrate send|recv` and `tagmem demo`.
 *
 * send  creates the regions, fills them with the synthetic tagged workload,
 *       starts its writer threads and live-migrates them to a receiver.
 * recv  creates empty regions of the same shape, listens, receives,
 *       verifies and reports (exit 0 only when every page and tag arrived
 *       and, with verification, the digests matched).
 * demo  does both on one machine: the receiver is a second process
 *       (/proc/self/exe migrate recv) reached over a unix socket, the
 *       sender runs here with a progress bar, and the report says whether
 *       data and tags arrived bit for bit.
 *
 * SIGINT cancels a running migration on either side (tm_migration_cancel
 * is async-signal-safe); the one global here is the migration a signal
 * should cancel, which is the CLI's business, not the library's.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench_common.h"
#include "common/util.h"
#include "workload/writers.h"
#include "tagmem/migrate.h"
#include "tools/cmds.h"

#define MAX_REGIONS 8

static tm_migration *_Atomic sigint_target;

static void on_sigint(int sig)
{
	tm_migration *m = atomic_load(&sigint_target);

	(void)sig;
	if (m)
		tm_migration_cancel(m);
}

static void arm_sigint(tm_migration *m)
{
	struct sigaction sa = { .sa_handler = on_sigint };

	atomic_store(&sigint_target, m);
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

static void disarm_sigint(void)
{
	atomic_store(&sigint_target, NULL);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
}

/* ---- options shared by send, recv and demo ------------------------ */

struct region_spec {
	char name[64];
	uint64_t size;
	uint32_t kind;
};

struct opts {
	const char *addr;
	struct region_spec region[MAX_REGIONS];
	unsigned nregions;
	uint32_t page_size;
	uint32_t kind;              /* default metadata for --size/--region */
	uint64_t size;
	tm_migrate_config cfg;
	uint64_t dirty_rate;
	unsigned writers;
	uint64_t seed;
	bool json, quiet, progress;
};

static void opts_default(struct opts *o)
{
	memset(o, 0, sizeof(*o));
	o->page_size = 4096;
	o->kind = TM_META_MTE;
	o->size = 1ull << 30;
	o->dirty_rate = 64ull << 20;
	o->writers = 2;
	o->seed = 1;
	tm_migrate_config_default(&o->cfg);
}

enum {
	O_LISTEN = 256, O_TO, O_SIZE, O_REGION, O_PAGE_SIZE, O_META, O_CHANNELS,
	O_DIRTY, O_WRITERS, O_COMPRESS, O_NO_CHECKSUM, O_VERIFY, O_NO_VERIFY,
	O_DOWNTIME, O_MAXBW, O_AUTOCONV, O_MAXITER, O_ONMAX, O_UNPACKED, O_SEED,
	O_JSON, O_QUIET, O_TIMEOUT, O_HELP, O_PPP,
};

static const struct option long_opts[] = {
	{ "listen", required_argument, NULL, O_LISTEN },
	{ "to", required_argument, NULL, O_TO },
	{ "size", required_argument, NULL, O_SIZE },
	{ "region", required_argument, NULL, O_REGION },
	{ "page-size", required_argument, NULL, O_PAGE_SIZE },
	{ "meta", required_argument, NULL, O_META },
	{ "channels", required_argument, NULL, O_CHANNELS },
	{ "dirty-rate", required_argument, NULL, O_DIRTY },
	{ "writers", required_argument, NULL, O_WRITERS },
	{ "compress", required_argument, NULL, O_COMPRESS },
	{ "no-checksum", no_argument, NULL, O_NO_CHECKSUM },
	{ "verify", no_argument, NULL, O_VERIFY },
	{ "no-verify", no_argument, NULL, O_NO_VERIFY },
	{ "downtime-ms", required_argument, NULL, O_DOWNTIME },
	{ "max-bandwidth", required_argument, NULL, O_MAXBW },
	{ "auto-converge", no_argument, NULL, O_AUTOCONV },
	{ "max-iterations", required_argument, NULL, O_MAXITER },
	{ "on-max-iterations", required_argument, NULL, O_ONMAX },
	{ "tags-unpacked", no_argument, NULL, O_UNPACKED },
	{ "pages-per-packet", required_argument, NULL, O_PPP },
	{ "seed", required_argument, NULL, O_SEED },
	{ "json", no_argument, NULL, O_JSON },
	{ "quiet", no_argument, NULL, O_QUIET },
	{ "timeout-ms", required_argument, NULL, O_TIMEOUT },
	{ "help", no_argument, NULL, O_HELP },
	{ NULL, 0, NULL, 0 },
};

#define SIZE_FMT "a size in bytes with an optional K/M/G/T suffix (e.g. 64M, 1G)"

static int usage_err(const char *cmd, const char *what)
{
	fprintf(stderr, "tagmem %s: %s (see --help)\n", cmd, what);
	return 2;
}

/* A usage error that says what the option allows; exit status 2. */
static int bad(const char *cmd, const char *opt, const char *arg,
	       const char *allowed)
{
	fprintf(stderr, "tagmem %s: %s '%s': must be %s (see --help)\n", cmd,
		opt, arg, allowed);
	return 2;
}

static int parse_kind(const char *s, uint32_t *kind)
{
	if (strcmp(s, "mte") == 0)
		*kind = TM_META_MTE;
	else if (strcmp(s, "none") == 0)
		*kind = TM_META_NONE;
	else
		return -1;
	return 0;
}

/* NAME:SIZE[:mte|:none] */
static int parse_region(struct opts *o, const char *s)
{
	struct region_spec *r = &o->region[o->nregions];
	const char *c1 = strchr(s, ':');
	char sz[64];

	if (o->nregions >= MAX_REGIONS || !c1 || c1 == s ||
	    (size_t)(c1 - s) >= sizeof(r->name))
		return -1;
	memcpy(r->name, s, (size_t)(c1 - s));
	r->name[c1 - s] = 0;
	const char *c2 = strchr(c1 + 1, ':');
	size_t n = c2 ? (size_t)(c2 - c1 - 1) : strlen(c1 + 1);
	if (n == 0 || n >= sizeof(sz))
		return -1;
	memcpy(sz, c1 + 1, n);
	sz[n] = 0;
	r->kind = UINT32_MAX;   /* --meta decides, after parsing */
	if (tm_parse_size(sz, &r->size) || (c2 && parse_kind(c2 + 1, &r->kind)))
		return -1;
	o->nregions++;
	return 0;
}

static int parse_u64(const char *s, uint64_t *v)
{
	char *end;

	errno = 0;
	*v = strtoull(s, &end, 10);
	return (errno || *end || end == s) ? -1 : 0;
}

/* --compress none | zstd | zstd:LEVEL (1..19); moved here from the
 * library's public API: it is this command's syntax, not the library's. */
static int parse_compress(const char *s, enum tm_compress *c, int *level)
{
	char *end;
	long l;

	if (strcmp(s, "none") == 0) {
		*c = TM_COMPRESS_NONE;
		return 0;
	}
	if (strcmp(s, "zstd") == 0) {
		*c = TM_COMPRESS_ZSTD;
		*level = 1;
		return 0;
	}
	if (strncmp(s, "zstd:", 5) != 0)
		return -EINVAL;
	l = strtol(s + 5, &end, 10);
	if (*end != 0 || end == s + 5 || l < 1 || l > 19)
		return -EINVAL;
	*c = TM_COMPRESS_ZSTD;
	*level = (int)l;
	return 0;
}

static int parse_one(struct opts *o, const char *cmd, int c, const char *a)
{
	uint64_t v;
	tm_error err;

	switch (c) {
	case O_LISTEN: case O_TO:
		tm_error_clear(&err);
		if (tm_migrate_addr_check(a, &err)) {
			fprintf(stderr, "tagmem %s: %s (see --help)\n", cmd, tm_error_msg(&err));
			return 2;
		}
		o->addr = a;
		return 0;
	case O_SIZE: return tm_parse_size(a, &o->size) ? bad(cmd, "--size", a, SIZE_FMT) : 0;
	case O_REGION:
		if (o->nregions >= MAX_REGIONS)
			return bad(cmd, "--region", a, "given at most 8 times");
		return parse_region(o, a) ? bad(cmd, "--region", a,
			"NAME:SIZE[:mte|:none], NAME 1..63 characters, SIZE like 64M") : 0;
	case O_PAGE_SIZE:
		if (tm_parse_size(a, &v) || (v != 4096 && v != 16384 && v != 65536))
			return bad(cmd, "--page-size", a, "4096, 16384 or 65536 (4K, 16K, 64K)");
		o->page_size = (uint32_t)v;
		return 0;
	case O_META: return parse_kind(a, &o->kind) ? bad(cmd, "--meta", a, "mte or none") : 0;
	case O_CHANNELS:
		if (parse_u64(a, &v) || v < 1 || v > TM_MIGRATE_MAX_CHANNELS)
			return bad(cmd, "--channels", a, "an integer 1..16");
		o->cfg.channels = (unsigned)v;
		return 0;
	case O_DIRTY:
		return tm_parse_size(a, &o->dirty_rate) ? bad(cmd, "--dirty-rate", a,
			"bytes per second with an optional K/M/G suffix (e.g. 8M; 0: idle)") : 0;
	case O_WRITERS:
		if (parse_u64(a, &v) || v < 1 || v > 64)
			return bad(cmd, "--writers", a, "an integer 1..64");
		o->writers = (unsigned)v;
		return 0;
	case O_COMPRESS:
		return parse_compress(a, &o->cfg.compress, &o->cfg.compress_level) ?
			bad(cmd, "--compress", a, "none, zstd or zstd:LEVEL (LEVEL 1..19)") : 0;
	case O_NO_CHECKSUM: o->cfg.checksum = false; return 0;
	case O_VERIFY: o->cfg.verify = true; return 0;
	case O_NO_VERIFY: o->cfg.verify = false; return 0;
	case O_DOWNTIME:
		if (parse_u64(a, &v) || v < 1 || v > 3600000)
			return bad(cmd, "--downtime-ms", a, "an integer 1..3600000 (milliseconds)");
		o->cfg.downtime_ms = (uint32_t)v;
		return 0;
	case O_MAXBW:
		return tm_parse_size(a, &o->cfg.max_bandwidth) ? bad(cmd, "--max-bandwidth", a,
			"bytes per second with an optional K/M/G suffix (e.g. 100M; 0: unlimited)") : 0;
	case O_AUTOCONV: o->cfg.auto_converge = true; return 0;
	case O_MAXITER:
		if (parse_u64(a, &v) || v < 1 || v > 100000)
			return bad(cmd, "--max-iterations", a, "an integer 1..100000");
		o->cfg.max_iterations = (unsigned)v;
		return 0;
	case O_ONMAX:
		if (strcmp(a, "fail") == 0)
			o->cfg.on_max_iterations = TM_MAXITER_FAIL;
		else if (strcmp(a, "force") == 0)
			o->cfg.on_max_iterations = TM_MAXITER_FORCE;
		else
			return bad(cmd, "--on-max-iterations", a, "fail or force");
		return 0;
	case O_UNPACKED: o->cfg.tags_unpacked = true; return 0;
	case O_PPP:
		if (parse_u64(a, &v) || v < 64 || v > TM_MIGRATE_MAX_PPP || v % 64)
			return bad(cmd, "--pages-per-packet", a, "a multiple of 64 in 64..1024");
		o->cfg.pages_per_packet = (unsigned)v;
		return 0;
	case O_SEED:
		return parse_u64(a, &o->seed) ? bad(cmd, "--seed", a,
						    "an unsigned 64-bit decimal integer") : 0;
	case O_JSON: o->json = true; return 0;
	case O_QUIET: o->quiet = true; return 0;
	case O_TIMEOUT:
		if (parse_u64(a, &v) || v < 1 || v > 86400000)
			return bad(cmd, "--timeout-ms", a, "an integer 1..86400000 (milliseconds)");
		o->cfg.timeout_ms = (uint32_t)v;
		return 0;
	}
	fprintf(stderr, "tagmem %s: unknown option (see --help)\n", cmd);
	return 2;
}

/* 1 = --help shown, 0 = parsed, 2 = usage error. */
static int parse(struct opts *o, const char *cmd, int argc, char **argv,
		 void (*help)(FILE *))
{
	int c;

	optind = 0;
	opterr = 1;
	while ((c = getopt_long(argc, argv, "h", long_opts, NULL)) != -1) {
		int rc;

		if (c == 'h' || c == O_HELP) {
			help(stdout);
			return 1;
		}
		if (c == '?')
			return 2;
		rc = parse_one(o, cmd, c, optarg);
		if (rc)
			return rc;
	}
	if (optind < argc) {
		fprintf(stderr, "tagmem %s: unexpected argument '%s': it takes only "
			"options (see --help)\n", cmd, argv[optind]);
		return 2;
	}
	if (o->nregions == 0) {
		strcpy(o->region[0].name, "ram");
		o->region[0].size = o->size;
		o->region[0].kind = o->kind;
		o->nregions = 1;
	}
	for (unsigned i = 0; i < o->nregions; i++) {
		if (o->region[i].kind == UINT32_MAX)
			o->region[i].kind = o->kind;
		if (o->region[i].size == 0 || o->region[i].size % o->page_size) {
			fprintf(stderr, "tagmem %s: region '%s' size %llu: must be a "
				"non-zero multiple of the page size %u (see --help)\n",
				cmd, o->region[i].name,
				(unsigned long long)o->region[i].size, o->page_size);
			return 2;
		}
	}
	return 0;
}

/* ---- regions ------------------------------------------------------ */

static void free_regions(tm_region **r, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (r[i])
			tm_region_destroy(r[i]);
}

static int make_regions(const struct opts *o, tm_region **r, tm_error *err)
{
	for (unsigned i = 0; i < o->nregions; i++) {
		tm_region_config c = { .name = o->region[i].name,
				       .size = o->region[i].size,
				       .backend = TM_BACKEND_SOFT };
		int rc = o->region[i].kind == TM_META_MTE ?
			 tm_geom_mte(&c.geom, o->page_size, err) :
			 tm_geom_init(&c.geom, TM_META_NONE, o->page_size, 0, 0, err);

		r[i] = NULL;
		if (rc == 0)
			rc = tm_region_create(&c, &r[i], err);
		if (rc) {
			free_regions(r, i);
			return rc;
		}
	}
	return 0;
}

/* ---- reporting ---------------------------------------------------- */

static void hex16(const uint8_t *d, char *out)
{
	for (int i = 0; i < 16; i++)
		sprintf(out + 2 * i, "%02x", d[i]);
}

static const char *phase_name(enum tm_migrate_phase p)
{
	static const char *const n[] = { "setup", "first pass", "iterating",
					 "paused", "verifying", "done", "failed" };
	return p <= TM_PHASE_FAILED ? n[p] : "?";
}

struct progress {
	uint64_t total_pages;
	uint64_t page_size;
	uint64_t last_sent;
	bool shown;
};

static void on_progress(void *ctx, const tm_migrate_stats *s)
{
	struct progress *p = ctx;
	uint64_t sent = s->pages_normal + s->pages_zero + s->pages_tag_only;
	uint64_t left = s->phase == TM_PHASE_FIRST_PASS ?
			p->total_pages - (sent < p->total_pages ? sent : p->total_pages) :
			s->pages_remaining;
	double frac = s->phase == TM_PHASE_FIRST_PASS ?
		      (double)sent / (double)p->total_pages : 1.0;
	char bar[31];
	int fill = (int)(frac * 30);

	for (int i = 0; i < 30; i++)
		bar[i] = i < fill ? '#' : '.';
	bar[30] = 0;
	fprintf(stderr, "\r[%s] %-10s it %-2u sent %7.1f MiB  left %7.1f MiB  "
		"%6.2f GB/s  dirty %6.1f MB/s ", bar, phase_name(s->phase),
		s->iterations, (double)(sent * p->page_size) / 1048576.0,
		(double)(left * p->page_size) / 1048576.0,
		s->bandwidth_bps / 1e9, s->dirty_rate_bps / 1e6);
	p->shown = true;
}

static void json_stats(tm_json *j, const tm_migrate_stats *s)
{
	char dg[33];

	tm_json_int(j, "total_ms", (long long)s->total_ms);
	tm_json_int(j, "setup_ms", (long long)s->setup_ms);
	tm_json_int(j, "downtime_ms", (long long)s->downtime_ms);
	tm_json_int(j, "verify_ms", (long long)s->verify_ms);
	tm_json_int(j, "iterations", s->iterations);
	tm_json_int(j, "bytes_wire", (long long)s->bytes_wire);
	tm_json_int(j, "bytes_data", (long long)s->bytes_data);
	tm_json_int(j, "packets", (long long)s->packets);
	tm_json_int(j, "pages_normal", (long long)s->pages_normal);
	tm_json_int(j, "pages_zero", (long long)s->pages_zero);
	tm_json_int(j, "pages_tag_only", (long long)s->pages_tag_only);
	tm_json_num(j, "throughput_gbps", s->throughput_gbps);
	tm_json_num(j, "dirty_rate_bps", s->dirty_rate_bps);
	tm_json_int(j, "throttle_pct", s->throttle_pct);
	hex16(s->digest, dg);
	tm_json_str(j, "digest", dg);
}

static void human_stats(FILE *f, const tm_migrate_stats *s, uint32_t downtime)
{
	if (s->phase == TM_PHASE_DONE)
		fprintf(f, "  iterations    %u (first pass, %u dirty, final paused pass)\n",
			s->iterations, s->iterations >= 2 ? s->iterations - 2 : 0);
	else
		fprintf(f, "  iterations    %u passes sent before the failure\n",
			s->iterations);
	fprintf(f, "  pages sent    %llu normal, %llu zero, %llu tag-only\n",
		(unsigned long long)s->pages_normal, (unsigned long long)s->pages_zero,
		(unsigned long long)s->pages_tag_only);
	fprintf(f, "  wire          %.1f MiB in %llu packets (%.1f MiB of pages)\n",
		(double)s->bytes_wire / 1048576.0, (unsigned long long)s->packets,
		(double)s->bytes_data / 1048576.0);
	fprintf(f, "  time          %llu ms total, %llu ms setup, %.2f GB/s\n",
		(unsigned long long)s->total_ms, (unsigned long long)s->setup_ms,
		s->throughput_gbps);
	fprintf(f, "  downtime      %llu ms (budget %u ms)%s\n",
		(unsigned long long)s->downtime_ms, downtime,
		s->throttle_pct ? " with auto-converge" : "");
}

/* ---- recv --------------------------------------------------------- */

static void recv_help(FILE *f)
{
	fprintf(f,
"usage: tagmem migrate recv --listen ADDR [--size SIZE | --region NAME:SIZE[:mte|:none]]...\n"
"                           [--page-size 4096] [--meta mte|none] [--timeout-ms N] [--json] [--quiet]\n\n"
"Receive a live migration into fresh regions of the given shape. ADDR is\n"
"tcp:HOST:PORT or unix:PATH. The source's regions, page size and metadata\n"
"must match (the migration is refused with the difference named otherwise).\n"
"Exit 0 only when every page and tag arrived and the digests matched.\n");
}

static int cmd_recv(int argc, char **argv)
{
	struct opts o;
	tm_region *r[MAX_REGIONS];
	tm_migration *m = NULL;
	tm_migrate_stats st;
	tm_error err;
	int lfd = -1, rc;

	opts_default(&o);
	rc = parse(&o, "migrate recv", argc, argv, recv_help);
	if (rc)
		return rc == 1 ? 0 : rc;
	if (!o.addr)
		return usage_err("migrate recv", "--listen ADDR is required (tcp:HOST:PORT or unix:PATH)");
	tm_error_clear(&err);
	rc = make_regions(&o, r, &err);
	if (rc) {
		fprintf(stderr, "tagmem migrate recv: %s\n", tm_error_msg(&err));
		return 1;
	}
	rc = tm_migrate_listen(o.addr, &lfd, &err);
	if (rc == 0)
		rc = tm_migration_new(&m, TM_MIGRATE_DEST, &o.cfg, NULL, &err);
	for (unsigned i = 0; rc == 0 && i < o.nregions; i++)
		rc = tm_migration_add_region(m, r[i], &err);
	if (rc == 0)
		rc = tm_migration_set_listener(m, lfd, &err);
	if (rc == 0) {
		if (!o.quiet && !o.json)
			fprintf(stderr, "tagmem migrate recv: listening on %s\n", o.addr);
		arm_sigint(m);
		rc = tm_migration_run(m, &st, &err);
		disarm_sigint();
		if (o.json) {
			tm_json j;

			tm_json_begin(&j, stdout);
			tm_json_str(&j, "role", "destination");
			tm_json_bool(&j, "ok", rc == 0);
			if (rc)
				tm_json_str(&j, "error", tm_error_msg(&err));
			json_stats(&j, &st);
			tm_json_bool(&j, "verified", rc == 0 && st.verified);
			tm_json_end(&j);
		} else if (rc == 0 && !o.quiet) {
			fprintf(stderr, "tagmem migrate recv: received %llu pages, %s\n",
				(unsigned long long)(st.pages_normal + st.pages_zero +
						     st.pages_tag_only),
				st.verified ? "verified: data and tags identical to the source" :
				"not verified (the source disabled verification)");
		}
	}
	if (rc)
		fprintf(stderr, "tagmem migrate recv: FAILED: %s\n", tm_error_msg(&err));
	tm_migration_free(m);
	if (lfd >= 0)
		close(lfd);
	if (strncmp(o.addr, "unix:", 5) == 0)
		unlink(o.addr + 5);
	free_regions(r, o.nregions);
	return rc ? 1 : 0;
}

/* ---- send --------------------------------------------------------- */

struct sender {
	struct opts *o;
	tm_region *r[MAX_REGIONS];
	tm_workload *w;
	bool ptr_writes;
	uint64_t fill_ms;
	tm_migrate_stats st;
	tm_error err;
	int rc;
};

static int sender_prepare(struct sender *s, tm_error *err)
{
	tm_workload_config wc = { .dirty_rate = s->o->dirty_rate,
				  .writers = s->o->writers, .seed = s->o->seed };
	uint64_t t = tm_now_ns();
	int rc = make_regions(s->o, s->r, err);

	for (unsigned i = 0; rc == 0 && i < s->o->nregions; i++)
		rc = tm_workload_fill(s->r[i], s->o->seed + i, 25, 10, err);
	s->fill_ms = (tm_now_ns() - t) / 1000000u;
	s->ptr_writes = tm_workload_ptr_tracking();
	wc.ptr_writes = s->ptr_writes;
	if (rc == 0)
		rc = tm_workload_start(&s->w, s->r, s->o->nregions, &wc, err);
	return rc;
}

/* The library gives every hook one ctx: this one carries the workload
 * (pause/resume/throttle) and the progress bar's state. */
struct hookctx {
	tm_workload *w;
	struct progress pr;
};

static int hk_pause(void *c) { return tm_workload_pause(((struct hookctx *)c)->w); }
static void hk_resume(void *c) { tm_workload_resume(((struct hookctx *)c)->w); }
static void hk_throttle(void *c, unsigned pct)
{
	tm_workload_throttle(((struct hookctx *)c)->w, pct);
}
static void hk_progress(void *c, const tm_migrate_stats *s)
{
	on_progress(&((struct hookctx *)c)->pr, s);
}

/* Connect and migrate. On success the workload stays paused: it now lives
 * on the destination. */
static int sender_run(struct sender *s)
{
	unsigned n = s->o->cfg.channels + 1;
	int fds[TM_MIGRATE_MAX_CHANNELS + 1];
	struct hookctx hc = { .w = s->w, .pr = { .page_size = s->o->page_size } };
	tm_migrate_hooks h = { .ctx = &hc, .pause = hk_pause, .resume = hk_resume,
			       .throttle = hk_throttle };
	tm_migration *m = NULL;
	int rc;

	for (unsigned i = 0; i < s->o->nregions; i++)
		hc.pr.total_pages += tm_region_npages(s->r[i]);
	if (s->o->progress)
		h.progress = hk_progress;
	tm_error_clear(&s->err);
	rc = tm_migrate_connect(s->o->addr, n, fds, s->o->cfg.timeout_ms, &s->err);
	if (rc)
		return s->rc = rc;
	rc = tm_migration_new(&m, TM_MIGRATE_SOURCE, &s->o->cfg, &h, &s->err);
	for (unsigned i = 0; rc == 0 && i < s->o->nregions; i++)
		rc = tm_migration_add_region(m, s->r[i], &s->err);
	for (unsigned i = 0; rc == 0 && i < n; i++)
		rc = tm_migration_add_fd(m, fds[i], &s->err);
	if (rc == 0) {
		arm_sigint(m);
		rc = tm_migration_run(m, &s->st, &s->err);
		disarm_sigint();
	}
	if (hc.pr.shown)
		fputc('\n', stderr);
	tm_migration_free(m);
	for (unsigned i = 0; i < n; i++)
		close(fds[i]);
	return s->rc = rc;
}

static void sender_finish(struct sender *s)
{
	tm_error err;

	tm_error_clear(&err);
	if (s->w && tm_workload_stop(s->w, &err))
		fprintf(stderr, "tagmem: a workload writer failed: %s\n",
			tm_error_msg(&err));
	s->w = NULL;
	free_regions(s->r, s->o->nregions);
}

static const char *compress_name(const tm_migrate_config *c, char *buf, size_t n)
{
	if (c->compress == TM_COMPRESS_NONE)
		return "none";
	snprintf(buf, n, "zstd:%d", c->compress_level);
	return buf;
}

static void describe(FILE *f, const char *who, const struct sender *s)
{
	const struct opts *o = s->o;
	char cz[32];
	uint64_t total = 0;

	for (unsigned i = 0; i < o->nregions; i++)
		total += o->region[i].size;
	fprintf(f, "%s: %.2f GiB in %u region(s) (%s, %u-byte pages), %u channel(s), "
		"compression %s\n", who, (double)total / (1 << 30), o->nregions,
		o->region[0].kind == TM_META_MTE ? "MTE 4b/16B tags" : "no tags",
		o->page_size, o->cfg.channels, compress_name(&o->cfg, cz, sizeof(cz)));
	fprintf(f, "  workload      %u writer(s) at %.1f MB/s; data through %s, tags "
		"through the region API; filled in %llu ms\n", o->writers,
		(double)o->dirty_rate / 1e6,
		s->ptr_writes ? "tm_region_ptr (kernel dirty tracking)" :
		"tm_region_write (no kernel dirty tracking on this host)",
		(unsigned long long)s->fill_ms);
}

static void send_help(FILE *f)
{
	fprintf(f,
"usage: tagmem migrate send --to ADDR [--size SIZE | --region NAME:SIZE[:mte|:none]]...\n"
"         [--page-size 4096] [--meta mte|none] [--channels 2] [--dirty-rate 64M]\n"
"         [--writers 2] [--compress none|zstd[:LEVEL]] [--no-checksum] [--no-verify]\n"
"         [--downtime-ms 300] [--max-bandwidth RATE] [--auto-converge]\n"
"         [--max-iterations 30] [--on-max-iterations fail|force] [--tags-unpacked]\n"
"         [--pages-per-packet 128] [--seed N] [--timeout-ms N] [--json] [--quiet]\n\n"
"Fill regions with a tagged workload (normal, zero and tag-only pages), run\n"
"its writers, and live-migrate the regions with their tags to a receiver\n"
"(`tagmem migrate recv`). ADDR is tcp:HOST:PORT or unix:PATH. Exit 0 when\n"
"the destination placed everything (and the digests matched, by default).\n");
}

static void report(const struct sender *s, bool verified, const char *extra_err)
{
	const struct opts *o = s->o;

	if (o->json) {
		tm_json j;
		char cz[32];
		uint64_t total = 0;

		for (unsigned i = 0; i < o->nregions; i++)
			total += o->region[i].size;
		tm_json_begin(&j, stdout);
		tm_json_bool(&j, "ok", s->rc == 0 && !extra_err);
		if (s->rc || extra_err)
			tm_json_str(&j, "error", s->rc ? tm_error_msg(&s->err) : extra_err);
		tm_json_int(&j, "size", (long long)total);
		tm_json_int(&j, "channels", o->cfg.channels);
		tm_json_str(&j, "compress", compress_name(&o->cfg, cz, sizeof(cz)));
		tm_json_int(&j, "dirty_rate", (long long)o->dirty_rate);
		tm_json_str(&j, "dirty_tracking", s->ptr_writes ? "kernel" : "api");
		tm_json_int(&j, "fill_ms", (long long)s->fill_ms);
		json_stats(&j, &s->st);
		tm_json_bool(&j, "verified", verified);
		tm_json_end(&j);
		return;
	}
	if (o->quiet && s->rc == 0 && !extra_err)
		return;
	human_stats(stderr, &s->st, o->cfg.downtime_ms);
	if (s->rc)
		fprintf(stderr, "  FAILED        %s\n  the source keeps its memory and "
			"tags unchanged\n", tm_error_msg(&s->err));
	else if (extra_err)
		fprintf(stderr, "  FAILED        %s\n", extra_err);
	else if (verified) {
		char dg[33];

		hex16(s->st.digest, dg);
		fprintf(stderr, "  verified      data and tags identical on the "
			"destination (digest %s, %llu ms)\n", dg,
			(unsigned long long)s->st.verify_ms);
	} else {
		fprintf(stderr, "  not verified  (--no-verify)\n");
	}
}

static int cmd_send(int argc, char **argv)
{
	struct opts o;
	struct sender s = { .o = &o };
	int rc;

	opts_default(&o);
	rc = parse(&o, "migrate send", argc, argv, send_help);
	if (rc)
		return rc == 1 ? 0 : rc;
	if (!o.addr)
		return usage_err("migrate send", "--to ADDR is required (tcp:HOST:PORT or unix:PATH)");
	o.progress = !o.json && !o.quiet && isatty(STDERR_FILENO);
	tm_error_clear(&s.err);
	rc = sender_prepare(&s, &s.err);
	if (rc) {
		fprintf(stderr, "tagmem migrate send: %s\n", tm_error_msg(&s.err));
		sender_finish(&s);
		return 1;
	}
	if (!o.json && !o.quiet)
		describe(stderr, "tagmem migrate send", &s);
	sender_run(&s);
	report(&s, s.rc == 0 && s.st.verified, NULL);
	sender_finish(&s);
	if (s.rc)
		return 1;
	return o.cfg.verify && !s.st.verified ? 1 : 0;
}

/* ---- demo --------------------------------------------------------- */

static void demo_help(FILE *f)
{
	fprintf(f,
"usage: tagmem demo [--size 1G] [--channels 2] [--dirty-rate 64M]\n"
"                   [--compress none|zstd[:LEVEL]] [--json] [migrate send options]\n\n"
"Start a tagged workload (writer threads changing data and MTE tags), migrate\n"
"it live to a second process over a loopback unix socket, and verify on the\n"
"destination that data and tags arrived bit for bit (128-bit digest of every\n"
"page and its tags, computed on both sides after the source is paused).\n"
"Exit 0 only when verified.\n");
}

/* The destination: this same binary, `migrate recv`, in a child process. */
static pid_t spawn_receiver(const struct opts *o, const char *addr)
{
	char regions[MAX_REGIONS][96], ps[16], tmo[16];
	char *args[64];
	int n = 0;
	pid_t pid;

	args[n++] = "tagmem";
	args[n++] = "migrate";
	args[n++] = "recv";
	args[n++] = "--listen";
	args[n++] = (char *)addr;
	for (unsigned i = 0; i < o->nregions; i++) {
		snprintf(regions[i], sizeof(regions[i]), "%s:%llu:%s", o->region[i].name,
			 (unsigned long long)o->region[i].size,
			 o->region[i].kind == TM_META_MTE ? "mte" : "none");
		args[n++] = "--region";
		args[n++] = regions[i];
	}
	snprintf(ps, sizeof(ps), "%u", o->page_size);
	snprintf(tmo, sizeof(tmo), "%u", o->cfg.timeout_ms);
	args[n++] = "--page-size";
	args[n++] = ps;
	args[n++] = "--timeout-ms";
	args[n++] = tmo;
	args[n++] = "--quiet";
	args[n] = NULL;
	pid = fork();
	if (pid == 0) {
		/* stdout belongs to the parent's report. */
		if (!freopen("/dev/null", "w", stdout))
			_exit(127);
		execv("/proc/self/exe", args);
		fprintf(stderr, "tagmem demo: cannot start the receiver: %s\n",
			strerror(errno));
		_exit(127);
	}
	return pid;
}

/* Wait for the receiver; give it a while to finish its report. */
static int reap(pid_t pid, int timeout_ms)
{
	int status = 0;

	for (int waited = 0; waited < timeout_ms; waited += 10) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		if (r < 0)
			return -1;
		nanosleep(&(struct timespec){ 0, 10 * 1000 * 1000 }, NULL);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return 128 + SIGKILL;
}

int tm_cmd_demo(int argc, char **argv)
{
	struct opts o;
	struct sender s = { .o = &o };
	char addr[108], why[128];
	const char *extra = NULL;
	pid_t child;
	int rc, crc;

	opts_default(&o);
	rc = parse(&o, "demo", argc, argv, demo_help);
	if (rc)
		return rc == 1 ? 0 : rc;
	o.cfg.verify = true;
	o.progress = !o.json && !o.quiet && isatty(STDERR_FILENO);
	snprintf(addr, sizeof(addr), "unix:/tmp/tagmem-demo-%d.sock", (int)getpid());
	o.addr = addr;
	tm_error_clear(&s.err);
	rc = sender_prepare(&s, &s.err);
	if (rc) {
		fprintf(stderr, "tagmem demo: %s\n", tm_error_msg(&s.err));
		sender_finish(&s);
		return 1;
	}
	if (!o.json && !o.quiet)
		describe(stderr, "tagmem demo", &s);
	child = spawn_receiver(&o, addr);
	if (child < 0) {
		fprintf(stderr, "tagmem demo: fork: %s\n", strerror(errno));
		sender_finish(&s);
		return 1;
	}
	if (!o.json && !o.quiet)
		fprintf(stderr, "  destination   process %d, tagmem migrate recv --listen %s\n",
			(int)child, addr);
	sender_run(&s);
	crc = reap(child, s.rc ? 5000 : 60000);
	if (s.rc == 0 && crc != 0) {
		snprintf(why, sizeof(why), "the destination process exited with status %d",
			 crc);
		extra = why;
	}
	report(&s, s.rc == 0 && crc == 0 && s.st.verified, extra);
	unlink(addr + 5);
	sender_finish(&s);
	return s.rc == 0 && crc == 0 && s.st.verified ? 0 : 1;
}

static void migrate_help(FILE *f)
{
	fprintf(f, "usage: tagmem migrate send|recv [OPTIONS]  (--help on each)\n");
}

int tm_cmd_migrate(int argc, char **argv)
{
	if (argc < 2) {
		migrate_help(stderr);
		return 2;
	}
	if (strcmp(argv[1], "send") == 0)
		return cmd_send(argc - 1, argv + 1);
	if (strcmp(argv[1], "recv") == 0)
		return cmd_recv(argc - 1, argv + 1);
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		migrate_help(stdout);
		return 0;
	}
	fprintf(stderr, "tagmem migrate: unknown subcommand '%s': must be send or "
		"recv (see --help)\n", argv[1]);
	return 2;
}
