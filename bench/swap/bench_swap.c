/*
 * bench_swap.c - `tagmem bench swap`: swap-out and swap-in throughput of a
 * tagged region against the same region without tags (metadata off), and
 * the tag store's size per tagged page for the corpus mix and for
 * allocator-style tags. Baselines measured in the same run: plain pwrite
 * and pread of the same bytes to the same swap file (the I/O floor), and
 * the untagged swap path itself. Tagged and untagged repetitions are
 * interleaved so that drift on the shared machine hits both alike, in two
 * rounds that create the two regions in opposite orders.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>

#include "bench/bench_common.h"
#include "common/util.h"
#include "tagmem/region.h"
#include "tagmem/swap.h"
#include "tagmem/tags.h"
#include "tools/cmds.h"

#define PS 4096u

struct bopts {
	uint64_t size;
	unsigned order;
	int reps;
	const char *dir;
	bool direct;
	bool json;
};

/* One region on its own swap file, under an explicit (or lazy) pager. */
struct rig {
	tm_swapfile *sf;
	tm_region *r;
	tm_pager *p;
	size_t npages;
};

static void usage(FILE *f)
{
	fprintf(f, "usage: tagmem bench swap [--json] [--size 256M] [--order 9] [--reps 5]\n"
		   "                         [--dir /var/tmp] [--direct]\n\n"
		   "Swap a region out and back in with tags (mix corpus) and without\n"
		   "(metadata off), and measure the tag store per tagged page.\n");
}

static int parse(int argc, char **argv, struct bopts *o)
{
	*o = (struct bopts){ 256u << 20, 9, 5, "/var/tmp", false, false };
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		uint64_t n;

		if (strcmp(a, "--json") == 0) {
			o->json = true;
		} else if (strcmp(a, "--direct") == 0) {
			o->direct = true;
		} else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			return 1;
		} else if (v && strcmp(a, "--size") == 0 && tm_parse_size(v, &n) == 0) {
			o->size = n;
			i++;
		} else if (v && strcmp(a, "--order") == 0) {
			o->order = (unsigned)atoi(v);
			i++;
		} else if (v && strcmp(a, "--reps") == 0) {
			o->reps = atoi(v);
			i++;
		} else if (v && strcmp(a, "--dir") == 0) {
			o->dir = v;
			i++;
		} else {
			fprintf(stderr, "tagmem bench swap: bad argument '%s'\n", a);
			usage(stderr);
			return 2;
		}
	}
	uint64_t folio = (uint64_t)PS << o->order;

	if (o->order > TM_SWAP_MAX_ORDER || o->reps < 1 || o->size < folio) {
		fprintf(stderr, "tagmem bench swap: need --order 0..%u, --reps >= 1, --size >= one folio\n",
			TM_SWAP_MAX_ORDER);
		return 2;
	}
	o->size -= o->size % folio;
	struct stat st;

	if (stat(o->dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "tagmem bench swap: --dir %s is not a directory\n", o->dir);
		return 2;
	}
	return 0;
}

/* Seeded page data, never zero (zero pages are not written at all). */
static void page_data(uint64_t seed, size_t pg, uint64_t *w)
{
	uint64_t x = seed ^ (pg * 0x9E3779B97F4A7C15ull) ^ 0xD1B54A32D192ED03ull;

	for (size_t i = 0; i < PS / 8; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		w[i] = x | 1;
	}
}

static int fill(struct rig *g, bool tags, enum tm_corpus_layout layout,
		tm_error *err)
{
	const tm_geom *geom = tm_region_geom(g->r);
	size_t pk = tm_geom_packed_bytes(geom);
	uint8_t *tagbuf = tags ? malloc(g->npages * pk) : NULL;
	uint64_t data[PS / 8];
	int rc = 0;

	if (tags && !tagbuf)
		return tm_error_set(err, -ENOMEM, "bench swap: tag buffer");
	if (tags)
		tm_corpus_fill(layout, geom, 4242, tagbuf, g->npages);
	for (size_t pg = 0; !rc && pg < g->npages; pg++) {
		page_data(77, pg, data);
		rc = tm_region_write_page(g->r, pg, data, tags ? tagbuf + pg * pk : NULL, err);
	}
	free(tagbuf);
	return rc;
}

static int rig_open(struct rig *g, const struct bopts *o, bool tags,
		    enum tm_corpus_layout layout, bool lazy, tm_error *err)
{
	tm_swapfile_config sc = { .struct_size = sizeof(sc), .path = o->dir,
				  .size = o->size + (8u << 20), .page_size = PS,
				  .flags = o->direct ? TM_SWAPFILE_DIRECT : 0 };
	tm_region_config rc = { 0 };
	tm_pager_config pc = { 0 };
	int r;

	memset(g, 0, sizeof(*g));
	rc.name = tags ? "bench-tags" : "bench-notags";
	rc.size = o->size;
	rc.backend = TM_BACKEND_SOFT;
	r = tags ? tm_geom_mte(&rc.geom, PS, err)
		 : tm_geom_init(&rc.geom, TM_META_NONE, PS, 0, 0, err);
	if (!r)
		r = tm_swapfile_open(&sc, &g->sf, err);
	if (!r)
		r = tm_region_create(&rc, &g->r, err);
	if (r)
		return r;
	g->npages = tm_region_npages(g->r);
	r = fill(g, tags, layout, err);
	pc.region = g->r;
	pc.swap = g->sf;
	pc.lazy = lazy;
	pc.fault_mode = TM_SWAPIN_FOLIO;
	return r ? r : tm_pager_create(&pc, &g->p, err);
}

static void rig_close(struct rig *g)
{
	tm_pager_destroy(g->p);
	tm_region_destroy(g->r);
	tm_swapfile_close(g->sf);
	memset(g, 0, sizeof(*g));
}

/* CPU time of this process (user + system): unlike wall time it does not
 * grow while other processes on the shared machine hold the CPUs. */
static uint64_t cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

struct times {
	double out, in, out_cpu, in_cpu;
};

/* One swap-out of the whole region and one explicit whole-folio swap-in. */
static int cycle(struct rig *g, unsigned order, struct times *t, tm_error *err)
{
	uint64_t t0 = tm_now_ns(), c0 = cpu_ns(), t1, c1;
	int rc = tm_swap_out_range(g->p, 0, g->npages, order, NULL, err);

	t1 = tm_now_ns();
	c1 = cpu_ns();
	if (!rc)
		rc = tm_swap_in(g->p, 0, g->npages, err);
	t->out = (double)(t1 - t0) / 1e9;
	t->in = (double)(tm_now_ns() - t1) / 1e9;
	t->out_cpu = (double)(c1 - c0) / 1e9;
	t->in_cpu = (double)(cpu_ns() - c1) / 1e9;
	return rc;
}

static void keep_min(double *best, double v)
{
	if (*best == 0 || v < *best)
		*best = v;
}

struct results {
	double out[2], in[2];          /* [0] tags, [1] notags: best seconds */
	double out_cpu[2], in_cpu[2];  /* best CPU seconds */
	double fault[2];               /* lazy whole-region touch, best */
	bool lazy;
	char lazy_note[TM_ERROR_MSG_MAX];
	double plain_write, plain_read;
	bool verified;
	double bpp_mix, bpp_alloc, idx_mix, inline_mix, inline_alloc;
	tm_swap_stats mix_stats;
};

/* One round: both rigs created (first the one `first` names), then reps
 * cycles of each, alternating which goes first so that neither always
 * follows the other's dirty page cache. */
static int round_of(const struct bopts *o, int first, struct results *res,
		    bool *same, tm_error *err)
{
	struct rig g[2];
	uint64_t before = 0, after = 0;
	int rc = rig_open(&g[first], o, first == 0, TM_CORPUS_MIX, false, err);

	if (!rc)
		rc = rig_open(&g[!first], o, first != 0, TM_CORPUS_MIX, false, err);
	if (!rc)
		rc = tm_region_digest(g[0].r, &before, err);
	for (int rep = 0; !rc && rep < o->reps; rep++) {
		for (int i = 0; !rc && i < 2; i++) {
			int k = (i + rep) % 2;
			struct times t;

			rc = cycle(&g[k], o->order, &t, err);
			keep_min(&res->out[k], t.out);
			keep_min(&res->in[k], t.in);
			keep_min(&res->out_cpu[k], t.out_cpu);
			keep_min(&res->in_cpu[k], t.in_cpu);
		}
	}
	if (!rc)
		rc = tm_region_digest(g[0].r, &after, err);
	*same = !rc && before == after;
	rig_close(&g[0]);
	rig_close(&g[1]);
	return rc;
}

/*
 * Two rounds, the tagged rig created first in one and the untagged one in
 * the other: whichever region is created second swaps 3-5 % faster in this
 * VM, for reasons not found (not the mapping's alignment, not the thread,
 * barely the swap file's order; docs/BENCHMARKS.md, swap "Fourth
 * session"), and a single order would hand that to one side.
 */
static int throughput(const struct bopts *o, struct results *res, tm_error *err)
{
	bool same[2] = { false, false };
	int rc = round_of(o, 0, res, &same[0], err);

	if (!rc)
		rc = round_of(o, 1, res, &same[1], err);
	res->verified = !rc && same[0] && same[1];
	return rc;
}

/* Swap out everything, then touch every page once through the mapping:
 * each first touch is a userfaultfd fault served by the pager. */
static int fault_pass(const struct bopts *o, bool tags, double *best,
		      tm_error *err)
{
	struct rig g;
	int rc = rig_open(&g, o, tags, TM_CORPUS_MIX, true, err);
	volatile uint8_t sink = 0;

	for (int rep = 0; !rc && rep < o->reps; rep++) {
		rc = tm_swap_out_range(g.p, 0, g.npages, o->order, NULL, err);
		uint64_t t0 = tm_now_ns();

		for (size_t pg = 0; !rc && pg < g.npages; pg++)
			sink ^= *(volatile uint8_t *)tm_region_ptr(g.r, pg * PS);
		keep_min(best, (double)(tm_now_ns() - t0) / 1e9);
		if (!rc)
			rc = tm_region_lazy_error(g.r, err);
	}
	(void)sink;
	rig_close(&g);
	return rc;
}

/* The I/O floor: the same bytes written and read with plain pwrite/pread
 * in folio-sized chunks to a swap file of the same kind. */
static int plain_io(const struct bopts *o, struct results *res, tm_error *err)
{
	tm_swapfile_config sc = { .struct_size = sizeof(sc), .path = o->dir,
				  .size = o->size + (8u << 20), .page_size = PS,
				  .flags = o->direct ? TM_SWAPFILE_DIRECT : 0 };
	size_t chunk = (size_t)PS << o->order;
	tm_swapfile *sf;
	uint8_t *buf = mmap(NULL, o->size, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int rc = buf == MAP_FAILED ? -ENOMEM : tm_swapfile_open(&sc, &sf, err);

	if (rc)
		return buf == MAP_FAILED ? tm_error_set(err, rc, "bench swap: buffer") : rc;
	for (size_t pg = 0; pg < o->size / PS; pg++)
		page_data(77, pg, (uint64_t *)(buf + pg * PS));
	int fd = tm_swapfile_fd(sf);

	for (int rep = 0; !rc && rep < o->reps; rep++) {
		uint64_t t0 = tm_now_ns(), t1;

		for (size_t off = 0; !rc && off < o->size; off += chunk)
			rc = tm_pwrite_full(fd, buf + off, chunk, PS + off);
		t1 = tm_now_ns();
		for (size_t off = 0; !rc && off < o->size; off += chunk)
			rc = tm_pread_full(fd, buf + off, chunk, PS + off);
		keep_min(&res->plain_write, (double)(t1 - t0) / 1e9);
		keep_min(&res->plain_read, (double)(tm_now_ns() - t1) / 1e9);
	}
	if (rc)
		tm_error_set(err, rc, "bench swap: plain I/O on %s", tm_swapfile_path(sf));
	tm_swapfile_close(sf);
	munmap(buf, o->size);
	return rc;
}

/* Tag-store size for one corpus layout, every page tagged. */
static int store_size(const struct bopts *o, enum tm_corpus_layout l,
		      double *bpp, double *idx, double *inl, tm_swap_stats *keep,
		      tm_error *err)
{
	struct rig g;
	tm_swap_stats st;
	int rc = rig_open(&g, o, true, l, false, err);

	if (!rc)
		rc = tm_swap_out_range(g.p, 0, g.npages, o->order, NULL, err);
	if (!rc) {
		tm_swapfile_stats(g.sf, &st);
		*bpp = (double)st.tags.bytes_used / (double)st.tags.entries;
		*idx = (double)st.tags.index_bytes / (double)st.tags.entries;
		*inl = (double)st.tags.live[TM_TS_INLINE] / (double)st.tags.entries;
		if (keep)
			*keep = st;
	}
	rig_close(&g);
	return rc;
}

static void print_json(const struct bopts *o, const struct results *r)
{
	double gb = (double)o->size;
	double so = tm_gbps(gb, r->out[0]), sno = tm_gbps(gb, r->out[1]);
	double si = tm_gbps(gb, r->in[0]), sni = tm_gbps(gb, r->in[1]);
	char classes[1024];
	size_t at = 0;
	tm_json j;

	at += (size_t)snprintf(classes, sizeof(classes), "{");
	for (unsigned c = 0; c < TM_TS_NCLASSES; c++)
		at += (size_t)snprintf(classes + at, sizeof(classes) - at, "%s\"%s\": %" PRIu64,
				       c ? ", " : "", tm_tagstore_class_name((enum tm_tagstore_class)c),
				       r->mix_stats.tags.live[c]);
	snprintf(classes + at, sizeof(classes) - at, "}");
	tm_json_begin(&j, stdout);
	tm_json_int(&j, "size_bytes", (long long)o->size);
	tm_json_int(&j, "folio_order", o->order);
	tm_json_int(&j, "reps", o->reps);
	tm_json_int(&j, "rounds", 2);  /* creation orders, see throughput() */
	tm_json_str(&j, "swap_dir", o->dir);
	tm_json_bool(&j, "direct_io", o->direct);
	tm_json_num(&j, "swap_out_gbps", so);
	tm_json_num(&j, "swap_in_gbps", si);
	tm_json_num(&j, "swap_out_notags_gbps", sno);
	tm_json_num(&j, "swap_in_notags_gbps", sni);
	tm_json_num(&j, "swap_out_tags_ratio", sno > 0 ? so / sno : 0);
	tm_json_num(&j, "swap_in_tags_ratio", sni > 0 ? si / sni : 0);
	tm_json_num(&j, "swap_out_cpu_gbps", tm_gbps(gb, r->out_cpu[0]));
	tm_json_num(&j, "swap_in_cpu_gbps", tm_gbps(gb, r->in_cpu[0]));
	tm_json_num(&j, "swap_out_notags_cpu_gbps", tm_gbps(gb, r->out_cpu[1]));
	tm_json_num(&j, "swap_in_notags_cpu_gbps", tm_gbps(gb, r->in_cpu[1]));
	tm_json_num(&j, "swap_out_tags_cpu_ratio", r->out_cpu[0] > 0 ? r->out_cpu[1] / r->out_cpu[0] : 0);
	tm_json_num(&j, "swap_in_tags_cpu_ratio", r->in_cpu[0] > 0 ? r->in_cpu[1] / r->in_cpu[0] : 0);
	tm_json_bool(&j, "lazy_available", r->lazy);
	if (r->lazy) {
		tm_json_num(&j, "swap_in_fault_gbps", tm_gbps(gb, r->fault[0]));
		tm_json_num(&j, "swap_in_fault_notags_gbps", tm_gbps(gb, r->fault[1]));
	} else {
		tm_json_str(&j, "lazy_note", r->lazy_note);
	}
	tm_json_num(&j, "plain_pwrite_gbps", tm_gbps(gb, r->plain_write));
	tm_json_num(&j, "plain_pread_gbps", tm_gbps(gb, r->plain_read));
	tm_json_num(&j, "tagstore_bytes_per_tagged_page", r->bpp_mix);
	tm_json_num(&j, "tagstore_bytes_per_tagged_page_mix", r->bpp_mix);
	tm_json_num(&j, "tagstore_bytes_per_tagged_page_alloc", r->bpp_alloc);
	tm_json_num(&j, "tagstore_index_bytes_per_tagged_page_mix", r->idx_mix);
	tm_json_num(&j, "linux_bytes_per_tagged_page", 128);
	tm_json_num(&j, "ea0_inline_fraction", r->inline_mix);
	tm_json_num(&j, "ea0_inline_fraction_alloc", r->inline_alloc);
	tm_json_raw(&j, "tagstore_classes_mix", classes);
	tm_json_bool(&j, "verified", r->verified);
	tm_json_bool(&j, "targets_met", so >= 0.9 * sno && si >= 0.9 * sni && r->bpp_mix < 64);
	tm_json_end(&j);
}

static void print_text(const struct bopts *o, const struct results *r)
{
	double gb = (double)o->size;

	printf("swap out: %.2f GB/s with tags, %.2f GB/s without (plain pwrite %.2f)\n",
	       tm_gbps(gb, r->out[0]), tm_gbps(gb, r->out[1]), tm_gbps(gb, r->plain_write));
	printf("swap in:  %.2f GB/s with tags, %.2f GB/s without (plain pread %.2f)\n",
	       tm_gbps(gb, r->in[0]), tm_gbps(gb, r->in[1]), tm_gbps(gb, r->plain_read));
	printf("per CPU second: out %.2f vs %.2f GB/s, in %.2f vs %.2f GB/s\n",
	       tm_gbps(gb, r->out_cpu[0]), tm_gbps(gb, r->out_cpu[1]),
	       tm_gbps(gb, r->in_cpu[0]), tm_gbps(gb, r->in_cpu[1]));
	if (r->lazy)
		printf("swap in by fault: %.2f GB/s with tags, %.2f GB/s without\n",
		       tm_gbps(gb, r->fault[0]), tm_gbps(gb, r->fault[1]));
	else
		printf("swap in by fault: not measured (%s)\n", r->lazy_note);
	printf("tag store: %.1f B per tagged page (mix), %.1f (alloc), Linux 128; EA0 inline %.1f %%\n",
	       r->bpp_mix, r->bpp_alloc, 100 * r->inline_mix);
	printf("verified: %s\n", r->verified ? "yes" : "NO");
}

int tm_bench_swap(int argc, char **argv)
{
	struct bopts o;
	struct results res;
	tm_error err;
	int rc = parse(argc, argv, &o);

	if (rc)
		return rc == 1 ? 0 : rc;
	memset(&res, 0, sizeof(res));
	tm_error_clear(&err);
	rc = throughput(&o, &res, &err);
	if (!rc)
		rc = plain_io(&o, &res, &err);
	if (!rc) {
		tm_error ferr;
		int frc = fault_pass(&o, true, &res.fault[0], &ferr);

		if (!frc)
			frc = fault_pass(&o, false, &res.fault[1], &ferr);
		res.lazy = frc == 0;
		if (frc)
			snprintf(res.lazy_note, sizeof(res.lazy_note), "%s", ferr.msg);
	}
	if (!rc)
		rc = store_size(&o, TM_CORPUS_MIX, &res.bpp_mix, &res.idx_mix,
				&res.inline_mix, &res.mix_stats, &err);
	if (!rc) {
		double idx;

		rc = store_size(&o, TM_CORPUS_ALLOC, &res.bpp_alloc, &idx,
				&res.inline_alloc, NULL, &err);
	}
	if (rc) {
		fprintf(stderr, "tagmem bench swap: %s\n", err.msg);
		return 1;
	}
	if (o.json)
		print_json(&o, &res);
	else
		print_text(&o, &res);
	return res.verified ? 0 : 1;
}
