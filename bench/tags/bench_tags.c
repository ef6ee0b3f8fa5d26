/*
 * bench_tags.c - `tagmem bench tags`: the tags core's hot paths against
 * baselines measured in the same run on the same buffers.
 *
 *   memcpy_gbps                copy of the unpacked-size buffer (baseline)
 *   pack_gbps / unpack_gbps    GB/s of UNPACKED bytes, same buffer size
 *   zero_check_gbps            tm_page_is_zero over zero pages, tags checked
 *                              first; GB/s of page data (tag bytes are read
 *                              but not counted)
 *   zero_check_data_only_gbps  the same scan without tags (tm_mem_is_zero)
 *   ea0_*                      EA0 on the corpus mix, pages/s and ratio
 *   stream_*                   the stream codec on the same mix, in blocks
 *                              of --packet pages, ratio and GB/s of packed
 *                              tags: default flags, then the regular form,
 *                              then regular + zstd
 *
 * Buffers default to 256 MiB (unpacked), far beyond the 2 MiB L2, for the
 * baseline and the code alike. Timing is thread CPU time (see struct best):
 * memcpy, pack and unpack are whole-buffer calls, interleaved, best of
 * --reps; the zero scans are interleaved 2 MiB samples, 10th percentile.
 * Zero buffers are written non-zero first: untouched anonymous memory maps
 * the shared zero page and would make a scan look impossibly fast.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/bench_common.h"
#include "common/util.h"
#include "tagmem/tags.h"
#include "tags/simd.h"   /* tm_tags_pack_ref, tm_tags_unpack_ref: the scalar baseline */
#include "tools/cmds.h"

struct bopts {
	uint64_t size;     /* unpacked bytes for memcpy/pack/unpack; page data for zero */
	size_t pages;      /* corpus pages for EA0 and the stream codec */
	size_t packet;     /* pages per stream block */
	int reps;
	bool json;
};

static void usage(FILE *f)
{
	fprintf(f, "usage: tagmem bench tags [--json] [--size BYTES] [--pages N] [--packet N] [--reps N]\n\n"
		   "Pack/unpack and zero-page detection against memcpy and a data-only scan\n"
		   "on --size bytes (default 256M, at least 64M, rounded down to 32M); EA0\n"
		   "and the stream codec on --pages pages (default 65536) of the corpus mix,\n"
		   "in stream blocks of --packet pages (default 128). --reps defaults to 5.\n"
		   "Prints one JSON object with --json.\n");
}

static int parse(int argc, char **argv, struct bopts *o)
{
	*o = (struct bopts){ 256u << 20, 65536, 128, 5, false };
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		uint64_t n;

		if (strcmp(a, "--json") == 0) {
			o->json = true;
		} else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			return 1;
		} else if (v && strcmp(a, "--size") == 0 && tm_parse_size(v, &n) == 0 &&
			   n >= (64u << 20)) {
			o->size = n & ~(uint64_t)((32u << 20) - 1);
			i++;
		} else if (v && strcmp(a, "--pages") == 0 && tm_parse_size(v, &n) == 0 && n > 0) {
			o->pages = (size_t)n;
			i++;
		} else if (v && strcmp(a, "--packet") == 0 && tm_parse_size(v, &n) == 0 && n > 0) {
			o->packet = (size_t)n;
			i++;
		} else if (v && strcmp(a, "--reps") == 0 && atoi(v) > 0) {
			o->reps = atoi(v);
			i++;
		} else {
			fprintf(stderr, "tagmem bench tags: bad argument '%s'\n", a);
			usage(stderr);
			return 2;
		}
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* timing: best of N, by thread CPU time and by wall time              */
/* ------------------------------------------------------------------ */

/*
 * The shared 2-core machine often runs at a load of 5-10, so wall time
 * mostly measures the scheduler. Thread CPU time leaves out the time this
 * thread sat descheduled; the headline figures use it (the same way for
 * the baselines), and the wall-clock figures are reported next to them.
 */
struct best {
	double cpu, wall;
};

static double clock_s(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void time_once(void (*fn)(void *), void *ctx, struct best *b)
{
	double c0 = clock_s(CLOCK_THREAD_CPUTIME_ID), w0 = clock_s(CLOCK_MONOTONIC);

	fn(ctx);
	double c = clock_s(CLOCK_THREAD_CPUTIME_ID) - c0, w = clock_s(CLOCK_MONOTONIC) - w0;

	if (b->cpu == 0 || c < b->cpu)
		b->cpu = c;
	if (b->wall == 0 || w < b->wall)
		b->wall = w;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The q-quantile (0 <= q <= 1) of n > 0 samples (sorts them). */
static double quantile(double *v, size_t n, double q)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return v[(size_t)(q * (double)(n - 1) + 0.5)];
}

static double min_of(const double *v, size_t n)
{
	double m = v[0];

	for (size_t i = 1; i < n; i++)
		m = v[i] < m ? v[i] : m;
	return m;
}

static struct best best_of(void (*fn)(void *), void *ctx, int reps)
{
	struct best b = { 0, 0 };

	for (int i = 0; i < reps; i++)
		time_once(fn, ctx, &b);
	return b;
}

/* ------------------------------------------------------------------ */
/* streaming measurements                                              */
/* ------------------------------------------------------------------ */

struct bufs {
	uint8_t *unpacked, *packed, *dst;  /* size, size/2, size */
	uint8_t *zdata, *ztags;            /* zero page data and tags */
	size_t size;
	tm_geom g;
	int rc;
};

static void run_memcpy(void *c)
{
	struct bufs *b = c;

	memcpy(b->dst, b->unpacked, b->size);
}

static void run_pack(void *c)
{
	struct bufs *b = c;

	b->rc |= tm_tags_pack(b->packed, b->unpacked, b->size, NULL);
}

static void run_unpack(void *c)
{
	struct bufs *b = c;

	tm_tags_unpack(b->dst, b->packed, b->size);
}

static void run_pack_ref(void *c)
{
	struct bufs *b = c;

	b->rc |= tm_tags_pack_ref(b->packed, b->unpacked, b->size, NULL);
}

static void run_unpack_ref(void *c)
{
	struct bufs *b = c;

	tm_tags_unpack_ref(b->dst, b->packed, b->size);
}

/*
 * The zero scans run over one chunk of ZCHUNK bytes at a time, the two
 * variants alternating over different chunks of the big buffer. Short
 * samples taken in pairs see the same machine. The headline is the 10th
 * percentile chunk time: like a best-of it says what the code can do, but
 * one lucky sample cannot make it (on a host at a load of 10+ the single
 * best moves a lot between runs); the best and the median are reported too.
 */
#define ZCHUNK ((size_t)2 << 20)
#define ZQ 0.1  /* headline: the 10th percentile chunk time */

struct zscan {
	struct bufs *b;
	size_t chunk;  /* index of the chunk to scan */
};

static void run_zero_tags(void *c)
{
	struct zscan *z = c;
	struct bufs *b = z->b;
	size_t ps = b->g.page_size, tb = tm_geom_packed_bytes(&b->g);
	size_t first = z->chunk * (ZCHUNK / ps), np = ZCHUNK / ps;

	for (size_t i = first; i < first + np; i++)
		if (!tm_page_is_zero(&b->g, b->zdata + i * ps, b->ztags + i * tb))
			b->rc = 1;
}

static void run_zero_data(void *c)
{
	struct zscan *z = c;
	struct bufs *b = z->b;
	size_t ps = b->g.page_size, first = z->chunk * (ZCHUNK / ps), np = ZCHUNK / ps;

	for (size_t i = first; i < first + np; i++)
		if (!tm_mem_is_zero(b->zdata + i * ps, ps))
			b->rc = 1;
}

/* ------------------------------------------------------------------ */
/* codec measurements on the corpus mix                                */
/* ------------------------------------------------------------------ */

struct codec {
	tm_geom g;
	uint8_t *tags, *back, *enc;
	uint64_t *handle;
	size_t pages, packet, enc_cap, enc_len, ninline;
	unsigned flags;
	int rc;
};

static void run_ea0_compress(void *c)
{
	struct codec *k = c;
	size_t nin = 0;

	for (size_t i = 0; i < k->pages; i++)
		if (tm_ea0_compress(k->g.page_size, k->tags + i * 128, &k->handle[i], NULL) == 0)
			nin++;
		else
			k->handle[i] = 0;
	k->ninline = nin;
}

static void run_ea0_decompress(void *c)
{
	struct codec *k = c;

	for (size_t i = 0; i < k->pages; i++)
		if (k->handle[i] && tm_ea0_decompress(k->g.page_size, k->handle[i],
						      k->back + i * 128, NULL))
			k->rc = 1;
}

static void run_stream_encode(void *c)
{
	struct codec *k = c;
	size_t off = 0;

	for (size_t p = 0; p < k->pages; p += k->packet) {
		size_t n = k->pages - p < k->packet ? k->pages - p : k->packet, len;

		if (tm_tagstream_encode(&k->g, k->tags + p * 128, n, k->flags, k->enc + off,
					k->enc_cap - off, &len, NULL))
			k->rc = 1;
		off += len;
	}
	k->enc_len = off;
}

static void run_stream_decode(void *c)
{
	struct codec *k = c;
	size_t off = 0;

	/* blocks were encoded back to back; re-derive their lengths by
	 * re-encoding would cost time, so decode with the recorded sizes */
	for (size_t p = 0, b = 0; p < k->pages; p += k->packet, b++) {
		size_t n = k->pages - p < k->packet ? k->pages - p : k->packet;
		size_t len = (size_t)k->handle[b];

		if (tm_tagstream_decode(&k->g, k->enc + off, len, n, k->back + p * 128, NULL))
			k->rc = 1;
		off += len;
	}
}

/* Encode once, recording each block's length (in handle[]) for decoding. */
static int record_blocks(struct codec *k)
{
	size_t off = 0, b = 0;

	for (size_t p = 0; p < k->pages; p += k->packet, b++) {
		size_t n = k->pages - p < k->packet ? k->pages - p : k->packet, len;

		if (tm_tagstream_encode(&k->g, k->tags + p * 128, n, k->flags, k->enc + off,
					k->enc_cap - off, &len, NULL))
			return -1;
		k->handle[b] = len;
		off += len;
	}
	return 0;
}

struct results {
	double memcpy_gbps, pack_gbps, unpack_gbps, pack_ref_gbps, unpack_ref_gbps;
	double zero_gbps, zero_data_gbps;
	double memcpy_wall, pack_wall, unpack_wall, zero_best, zero_data_best;
	double zero_median, zero_data_median;
	double ea0_c_pps, ea0_d_pps, ea0_ratio, ea0_inline_frac;
	double st_ratio, st_c_gbps, st_d_gbps, str_ratio, str_c_gbps, stz_ratio, stz_c_gbps;
};

static int streaming(const struct bopts *o, struct results *r)
{
	struct bufs b = { .size = (size_t)o->size };
	tm_rng rng;

	tm_geom_mte(&b.g, 4096, NULL);
	b.unpacked = malloc(b.size);
	b.packed = malloc(b.size / 2);
	b.dst = malloc(b.size);
	b.zdata = b.dst; /* re-zeroed below, after the copy benchmarks */
	b.ztags = malloc(b.size / 32);
	if (!b.unpacked || !b.packed || !b.dst || !b.ztags) {
		fprintf(stderr, "tagmem bench tags: cannot allocate %zu-byte buffers\n", b.size);
		return -ENOMEM;
	}
	tm_rng_seed(&rng, 1);
	for (size_t i = 0; i < b.size; i += 8) {
		uint64_t w = tm_rng_next(&rng) & 0x0f0f0f0f0f0f0f0full;

		memcpy(b.unpacked + i, &w, 8);
	}
	memset(b.packed, 0, b.size / 2);
	memset(b.dst, 0, b.size);
	/* interleaved, so drift on the shared host hits code and baseline alike */
	void (*fns[5])(void *) = { run_memcpy, run_pack, run_unpack, run_pack_ref, run_unpack_ref };
	struct best t[5] = { { 0, 0 } };
	for (int i = 0; i < o->reps; i++)
		for (int f = 0; f < 5; f++)
			time_once(fns[f], &b, &t[f]);
	if (memcmp(b.dst, b.unpacked, b.size) != 0)
		b.rc = 1;
	double sz = (double)b.size;
	r->memcpy_gbps = tm_gbps(sz, t[0].cpu);
	r->pack_gbps = tm_gbps(sz, t[1].cpu);
	r->unpack_gbps = tm_gbps(sz, t[2].cpu);
	r->pack_ref_gbps = tm_gbps(sz, t[3].cpu);
	r->unpack_ref_gbps = tm_gbps(sz, t[4].cpu);
	r->memcpy_wall = tm_gbps(sz, t[0].wall);
	r->pack_wall = tm_gbps(sz, t[1].wall);
	r->unpack_wall = tm_gbps(sz, t[2].wall);
	/* write non-zero first: a fresh zeroed allocation may be mapped to the
	 * shared zero page (or turned into calloc), which reads from cache */
	memset(b.ztags, 0xff, b.size / 32);
	__asm__ volatile("" ::: "memory");
	memset(b.zdata, 0, b.size);
	memset(b.ztags, 0, b.size / 32);
	size_t nchunks = b.size / ZCHUNK, ns = 0;
	double *st = calloc((size_t)o->reps * nchunks, sizeof(double));
	double *sd = calloc((size_t)o->reps * nchunks, sizeof(double));
	struct zscan z = { &b, 0 };
	if (!st || !sd) {
		free(st);
		free(sd);
		return -ENOMEM;
	}
	for (int i = 0; i < o->reps; i++) {
		for (size_t k = 0; k + 1 < nchunks; k += 2, ns++) {
			struct best a = { 0, 0 }, d = { 0, 0 };

			/* swap which variant gets the even chunk every rep */
			z.chunk = k + (size_t)(i & 1);
			time_once(run_zero_tags, &z, &a);
			z.chunk = k + 1 - (size_t)(i & 1);
			time_once(run_zero_data, &z, &d);
			st[ns] = a.cpu;
			sd[ns] = d.cpu;
		}
	}
	r->zero_gbps = tm_gbps((double)ZCHUNK, quantile(st, ns, ZQ));
	r->zero_data_gbps = tm_gbps((double)ZCHUNK, quantile(sd, ns, ZQ));
	r->zero_median = tm_gbps((double)ZCHUNK, quantile(st, ns, 0.5));
	r->zero_data_median = tm_gbps((double)ZCHUNK, quantile(sd, ns, 0.5));
	r->zero_best = tm_gbps((double)ZCHUNK, min_of(st, ns));
	r->zero_data_best = tm_gbps((double)ZCHUNK, min_of(sd, ns));
	free(st);
	free(sd);
	free(b.unpacked);
	free(b.packed);
	free(b.dst);
	free(b.ztags);
	if (b.rc)
		fprintf(stderr, "tagmem bench tags: a streaming check failed\n");
	return b.rc ? -EIO : 0;
}

static int codecs(const struct bopts *o, struct results *r)
{
	struct codec k = { .pages = o->pages, .packet = o->packet };
	size_t raw = o->pages * 128, nblocks = (o->pages + o->packet - 1) / o->packet;
	int rc = 0;

	tm_geom_mte(&k.g, 4096, NULL);
	k.tags = malloc(raw);
	k.back = malloc(raw);
	k.handle = calloc(o->pages > nblocks ? o->pages : nblocks, sizeof(uint64_t));
	k.enc_cap = nblocks * tm_tagstream_bound(&k.g, o->packet);
	k.enc = malloc(k.enc_cap);
	if (!k.tags || !k.back || !k.handle || !k.enc) {
		rc = -ENOMEM;
		goto out;
	}
	tm_corpus_fill(TM_CORPUS_MIX, &k.g, 42, k.tags, o->pages);

	double t = best_of(run_ea0_compress, &k, o->reps).cpu;
	r->ea0_c_pps = (double)o->pages / t;
	r->ea0_inline_frac = (double)k.ninline / (double)o->pages;
	memcpy(k.back, k.tags, raw); /* raw pages are a plain copy in the kernel */
	t = best_of(run_ea0_decompress, &k, o->reps).cpu;
	r->ea0_d_pps = k.ninline ? (double)k.ninline / t : 0;
	if (memcmp(k.back, k.tags, raw) != 0)
		k.rc = 1;
	r->ea0_ratio = (double)raw / (double)tm_ea0_storage_bytes(4096, k.tags, o->pages, NULL);

	static const unsigned modes[3] = { 0, TM_TAGSTREAM_REGULAR,
					   TM_TAGSTREAM_REGULAR | TM_TAGSTREAM_ZSTD };
	double *ratio[3] = { &r->st_ratio, &r->str_ratio, &r->stz_ratio };
	double *gbps[3] = { &r->st_c_gbps, &r->str_c_gbps, &r->stz_c_gbps };
	for (int m = 0; m < 3; m++) {
		k.flags = modes[m];
		t = best_of(run_stream_encode, &k, o->reps).cpu;
		*ratio[m] = (double)raw / (double)k.enc_len;
		*gbps[m] = tm_gbps((double)raw, t);
		if (m != 0)
			continue;
		/* decode speed and exactness, on the default (plain) blocks */
		if (record_blocks(&k)) {
			k.rc = 1;
			break;
		}
		memset(k.back, 0, raw);
		r->st_d_gbps = tm_gbps((double)raw, best_of(run_stream_decode, &k, o->reps).cpu);
		if (memcmp(k.back, k.tags, raw) != 0)
			k.rc = 1;
	}
	if (k.rc) {
		fprintf(stderr, "tagmem bench tags: a codec round trip failed\n");
		rc = -EIO;
	}
out:
	free(k.tags);
	free(k.back);
	free(k.handle);
	free(k.enc);
	return rc;
}

static void print_json(const struct bopts *o, const struct results *r)
{
	tm_json j;

	tm_json_begin(&j, stdout);
	tm_json_str(&j, "simd", tm_tags_simd_name());
	tm_json_int(&j, "size_bytes", (long long)o->size);
	tm_json_int(&j, "reps", o->reps);
	tm_json_str(&j, "timing", "thread CPU time; copy/pack/unpack best of reps (wall clock in *_wall_gbps), zero scans 10th-percentile of interleaved 2 MiB samples (also *_best_gbps, *_median_gbps)");
	tm_json_num(&j, "memcpy_gbps", r->memcpy_gbps);
	tm_json_num(&j, "pack_gbps", r->pack_gbps);
	tm_json_num(&j, "unpack_gbps", r->unpack_gbps);
	tm_json_num(&j, "pack_scalar_gbps", r->pack_ref_gbps);
	tm_json_num(&j, "unpack_scalar_gbps", r->unpack_ref_gbps);
	tm_json_num(&j, "zero_check_gbps", r->zero_gbps);
	tm_json_num(&j, "zero_check_data_only_gbps", r->zero_data_gbps);
	tm_json_num(&j, "memcpy_wall_gbps", r->memcpy_wall);
	tm_json_num(&j, "pack_wall_gbps", r->pack_wall);
	tm_json_num(&j, "unpack_wall_gbps", r->unpack_wall);
	tm_json_num(&j, "zero_check_best_gbps", r->zero_best);
	tm_json_num(&j, "zero_check_data_only_best_gbps", r->zero_data_best);
	tm_json_num(&j, "zero_check_median_gbps", r->zero_median);
	tm_json_num(&j, "zero_check_data_only_median_gbps", r->zero_data_median);
	tm_json_int(&j, "corpus_pages", (long long)o->pages);
	tm_json_int(&j, "page_size", 4096);
	tm_json_num(&j, "ea0_compress_pages_per_s", r->ea0_c_pps);
	tm_json_num(&j, "ea0_decompress_pages_per_s", r->ea0_d_pps);
	tm_json_num(&j, "ea0_inline_fraction_mix", r->ea0_inline_frac);
	tm_json_num(&j, "ea0_ratio_mix", r->ea0_ratio);
	tm_json_int(&j, "stream_packet_pages", (long long)o->packet);
	tm_json_num(&j, "stream_ratio_mix", r->st_ratio);
	tm_json_num(&j, "stream_compress_gbps", r->st_c_gbps);
	tm_json_num(&j, "stream_decompress_gbps", r->st_d_gbps);
	tm_json_num(&j, "stream_regular_ratio_mix", r->str_ratio);
	tm_json_num(&j, "stream_regular_compress_gbps", r->str_c_gbps);
	tm_json_num(&j, "stream_regular_zstd_ratio_mix", r->stz_ratio);
	tm_json_num(&j, "stream_regular_zstd_compress_gbps", r->stz_c_gbps);
	tm_json_bool(&j, "target_zero_check_met", r->zero_gbps >= 0.9 * r->zero_data_gbps);
	tm_json_bool(&j, "target_stream_ratio_met", r->st_ratio > r->ea0_ratio);
	tm_json_bool(&j, "target_pack_met", r->pack_gbps >= 0.5 * r->memcpy_gbps);
	tm_json_bool(&j, "target_unpack_met", r->unpack_gbps >= 0.5 * r->memcpy_gbps);
	tm_json_end(&j);
}

static void print_text(const struct bopts *o, const struct results *r)
{
	printf("tags core benchmark (%s, %llu-byte buffers, best of %d by thread CPU time)\n",
	       tm_tags_simd_name(),
	       (unsigned long long)o->size, o->reps);
	printf("  memcpy               %7.2f GB/s (baseline; wall clock %.2f)\n", r->memcpy_gbps,
	       r->memcpy_wall);
	printf("  pack                 %7.2f GB/s of unpacked bytes (%.2fx memcpy; scalar %.2f)\n",
	       r->pack_gbps, r->pack_gbps / r->memcpy_gbps, r->pack_ref_gbps);
	printf("  unpack               %7.2f GB/s of unpacked bytes (%.2fx memcpy; scalar %.2f)\n",
	       r->unpack_gbps, r->unpack_gbps / r->memcpy_gbps, r->unpack_ref_gbps);
	printf("  zero check           %7.2f GB/s with tags, %.2f data only (%.3fx)\n",
	       r->zero_gbps, r->zero_data_gbps, r->zero_gbps / r->zero_data_gbps);
	printf("  EA0 (mix, %zu pages)  %.0f pages/s compress, %.0f inline pages/s decompress, "
	       "ratio %.2f (%.0f %% inline)\n", o->pages, r->ea0_c_pps, r->ea0_d_pps,
	       r->ea0_ratio, 100 * r->ea0_inline_frac);
	printf("  stream (%zu-page blocks) ratio %.2f, %.2f GB/s encode, %.2f GB/s decode;\n"
	       "                       regular form: ratio %.2f at %.2f GB/s; regular + zstd: "
	       "ratio %.2f at %.2f GB/s\n", o->packet, r->st_ratio, r->st_c_gbps, r->st_d_gbps,
	       r->str_ratio, r->str_c_gbps, r->stz_ratio, r->stz_c_gbps);
}

int tm_bench_tags(int argc, char **argv)
{
	struct bopts o;
	struct results r;
	int rc = parse(argc, argv, &o);

	if (rc)
		return rc == 1 ? 0 : 2;
	memset(&r, 0, sizeof(r));
	if (streaming(&o, &r) || codecs(&o, &r))
		return 1;
	if (o.json)
		print_json(&o, &r);
	else {
		print_text(&o, &r);
	}
	return 0;
}
