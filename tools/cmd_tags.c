/*
 * cmd_tags.c - the tags core's commands:
 *   tagmem tags     a short self-demonstration that checks what it shows
 *                   (geometry, pack/unpack, zero pages, EA0, stream ratio)
 *                   and exits 0 only when every check passed;
 *   tagmem corpus   generate tag layouts, report EA0 and stream-codec
 *                   ratios per layout and for the mix, optionally write the
 *                   packed tags to a file.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "tagmem/tags.h"
#include "tags/simd.h"   /* tm_tags_pack_ref */
#include "tools/cmds.h"

/* ------------------------------------------------------------------ */
/* tagmem corpus                                                       */
/* ------------------------------------------------------------------ */

struct corpus_opts {
	int layout;         /* -1: all */
	size_t pages;
	uint32_t page_size;
	uint64_t seed;
	const char *out;
	bool json;
};

struct corpus_row {
	size_t raw, ea0, ea0_inline, stream, stream_reg, stream_zstd;
};

static void corpus_usage(FILE *f)
{
	fprintf(f, "usage: tagmem corpus [--layout L|all] [--pages N] [--page-size S]\n"
		   "                     [--seed N] [--out FILE] [--json]\n\n"
		   "Generate realistic MTE tag layouts and report how well EA0 (Linux's\n"
		   "swap tag compression) and tagmem's stream codec compress them.\n"
		   "Layouts: untagged, one-tag, alloc, random, mix (default: all).\n"
		   "Defaults: --pages 4096 --page-size 4096 --seed 1.\n"
		   "--out writes the packed tags (page_size/32 bytes per page, low nibble =\n"
		   "lower-address granule); with --layout all, the layouts in the order above.\n"
		   "EA0 cost: 8 B per inline page, page_size/32 + 8 B per raw page.\n");
}

/* A bad value: name it and say what is allowed; exit status 2. */
static int corpus_bad(const char *a, const char *v, const char *allowed)
{
	fprintf(stderr, "tagmem corpus: %s '%s': must be %s\n", a, v, allowed);
	return 2;
}

/* One option with its value v; 0 ok, 2 bad value (printed). */
static int corpus_value(struct corpus_opts *o, const char *a, const char *v)
{
	enum tm_corpus_layout l;
	uint64_t n;

	if (strcmp(a, "--layout") == 0) {
		if (strcmp(v, "all") == 0)
			o->layout = -1;
		else if (tm_corpus_parse(v, &l) == 0)
			o->layout = (int)l;
		else
			return corpus_bad(a, v, "untagged, one-tag, alloc, random, mix "
					  "or all");
	} else if (strcmp(a, "--pages") == 0) {
		if (tm_parse_size(v, &n) || n == 0 || n > (1u << 24))
			return corpus_bad(a, v, "a page count 1..16777216 (16M; K/M "
					  "suffixes allowed)");
		o->pages = (size_t)n;
	} else if (strcmp(a, "--page-size") == 0) {
		if (tm_parse_size(v, &n) || (n != 4096 && n != 16384 && n != 65536))
			return corpus_bad(a, v, "4096, 16384 or 65536 (4K, 16K, 64K)");
		o->page_size = (uint32_t)n;
	} else if (strcmp(a, "--seed") == 0) {
		if (tm_parse_size(v, &n))
			return corpus_bad(a, v, "an unsigned 64-bit decimal integer");
		o->seed = n;
	} else {
		o->out = v;   /* --out */
	}
	return 0;
}

static int corpus_parse(int argc, char **argv, struct corpus_opts *o)
{
	static const char *const valued[] = { "--layout", "--pages",
					      "--page-size", "--seed", "--out" };

	*o = (struct corpus_opts){ -1, 4096, 4096, 1, NULL, false };
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		bool takes = false;

		for (size_t k = 0; k < sizeof(valued) / sizeof(valued[0]); k++)
			takes |= strcmp(a, valued[k]) == 0;
		if (strcmp(a, "--json") == 0) {
			o->json = true;
		} else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			corpus_usage(stdout);
			return 1;
		} else if (takes && v) {
			if (corpus_value(o, a, v))
				return 2;
			i++;
		} else {
			fprintf(stderr, takes ? "tagmem corpus: %s needs a value\n"
					      : "tagmem corpus: unknown option '%s'\n", a);
			corpus_usage(stderr);
			return 2;
		}
	}
	return 0;
}

/* Stream-encode and decode back: the ratio only counts if it round-trips. */
static int stream_size(const tm_geom *g, const uint8_t *p, size_t np, unsigned flags,
		       size_t *len)
{
	size_t cap = tm_tagstream_bound(g, np), pb = tm_geom_packed_bytes(g);
	uint8_t *enc = malloc(cap), *back = malloc(np * pb);
	tm_error e;
	int rc = -ENOMEM;

	tm_error_clear(&e);
	if (enc && back) {
		rc = tm_tagstream_encode(g, p, np, flags, enc, cap, len, &e);
		if (rc == 0)
			rc = tm_tagstream_decode(g, enc, *len, np, back, &e);
		if (rc == 0 && memcmp(back, p, np * pb) != 0)
			rc = tm_error_set(&e, -EIO, "stream round trip changed the tags");
		if (rc)
			fprintf(stderr, "tagmem corpus: %s\n", e.msg);
	}
	free(enc);
	free(back);
	return rc;
}

static int corpus_measure(const struct corpus_opts *o, enum tm_corpus_layout l,
			  uint8_t *p, struct corpus_row *row)
{
	tm_geom g;

	tm_geom_mte(&g, o->page_size, NULL);
	tm_corpus_fill(l, &g, o->seed, p, o->pages);
	row->raw = o->pages * tm_geom_packed_bytes(&g);
	row->ea0 = tm_ea0_storage_bytes(o->page_size, p, o->pages, &row->ea0_inline);
	if (stream_size(&g, p, o->pages, 0, &row->stream) ||
	    stream_size(&g, p, o->pages, TM_TAGSTREAM_REGULAR, &row->stream_reg) ||
	    stream_size(&g, p, o->pages, TM_TAGSTREAM_REGULAR | TM_TAGSTREAM_ZSTD,
			&row->stream_zstd))
		return -1;
	return 0;
}

static int write_tags(int fd, const char *path, const uint8_t *p, size_t n)
{
	int rc = tm_write_full(fd, p, n);

	if (rc)
		fprintf(stderr, "tagmem corpus: writing %s: %s\n", path, strerror(-rc));
	return rc;
}

static double ratio(size_t raw, size_t enc)
{
	return enc ? (double)raw / (double)enc : 0.0;
}

static void print_row(const struct corpus_opts *o, enum tm_corpus_layout l,
		      const struct corpus_row *r, bool first)
{
	if (o->json) {
		printf("%s{\"layout\": \"%s\", \"raw_bytes\": %zu, \"ea0_bytes\": %zu, "
		       "\"ea0_inline_pages\": %zu, \"ea0_ratio\": %.4f, \"stream_bytes\": %zu, "
		       "\"stream_ratio\": %.4f, \"stream_regular_bytes\": %zu, "
		       "\"stream_regular_ratio\": %.4f, \"stream_regular_zstd_bytes\": %zu, "
		       "\"stream_regular_zstd_ratio\": %.4f}",
		       first ? "" : ", ", tm_corpus_name(l), r->raw, r->ea0, r->ea0_inline,
		       ratio(r->raw, r->ea0), r->stream, ratio(r->raw, r->stream),
		       r->stream_reg, ratio(r->raw, r->stream_reg),
		       r->stream_zstd, ratio(r->raw, r->stream_zstd));
		return;
	}
	printf("%-9s %9zu %9zu %6.1f%% %7.2fx %9zu %7.2fx %9zu %7.2fx %9zu %8.2fx\n",
	       tm_corpus_name(l), r->raw, r->ea0, 100.0 * (double)r->ea0_inline / (double)o->pages,
	       ratio(r->raw, r->ea0), r->stream, ratio(r->raw, r->stream), r->stream_reg,
	       ratio(r->raw, r->stream_reg), r->stream_zstd, ratio(r->raw, r->stream_zstd));
}

int tm_cmd_corpus(int argc, char **argv)
{
	struct corpus_opts o;
	int rc = corpus_parse(argc, argv, &o), fd = -1;

	if (rc)
		return rc == 1 ? 0 : 2;
	uint8_t *p = malloc(o.pages * (o.page_size / 32));
	if (!p) {
		fprintf(stderr, "tagmem corpus: out of memory for %zu pages\n", o.pages);
		return 1;
	}
	if (o.out && (fd = open(o.out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0) {
		fprintf(stderr, "tagmem corpus: cannot create %s: %s\n", o.out, strerror(errno));
		free(p);
		return 1;
	}
	if (o.json)
		printf("{\"page_size\": %u, \"pages\": %zu, \"seed\": %llu, \"layouts\": [",
		       o.page_size, o.pages, (unsigned long long)o.seed);
	else
		printf("%zu pages of %u bytes, seed %llu (bytes of tags; ratio = raw / encoded)\n"
		       "%-9s %9s %9s %7s %8s %9s %8s %9s %8s %9s %9s\n", o.pages, o.page_size,
		       (unsigned long long)o.seed, "layout", "raw", "ea0", "inline", "ea0",
		       "stream", "stream", "regular", "regular", "reg+zstd", "reg+zstd");
	rc = 0;
	for (int l = 0; l < TM_CORPUS_NLAYOUTS && rc == 0; l++) {
		struct corpus_row row;

		if (o.layout >= 0 && l != o.layout)
			continue;
		if (corpus_measure(&o, (enum tm_corpus_layout)l, p, &row)) {
			rc = 1;
			break;
		}
		print_row(&o, (enum tm_corpus_layout)l, &row, o.layout >= 0 || l == 0);
		if (fd >= 0 && write_tags(fd, o.out, p, row.raw))
			rc = 1;
	}
	if (o.json)
		printf("]}\n");
	if (fd >= 0 && close(fd) != 0 && rc == 0) {
		fprintf(stderr, "tagmem corpus: closing %s: %s\n", o.out, strerror(errno));
		rc = 1;
	}
	free(p);
	return rc;
}

/* ------------------------------------------------------------------ */
/* tagmem tags: self-demonstration                                     */
/* ------------------------------------------------------------------ */

struct demo {
	int failed;
};

static void check(struct demo *d, bool ok, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void check(struct demo *d, bool ok, const char *fmt, ...)
{
	va_list ap;

	printf("  [%s] ", ok ? " ok " : "FAIL");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	if (!ok)
		d->failed++;
}

static void demo_geometry(struct demo *d)
{
	static const uint32_t ps[] = { 4096, 16384, 65536 };
	char buf[64];
	tm_geom g;

	printf("geometry (MTE: 4-bit tag per 16-byte granule)\n");
	for (int i = 0; i < 3; i++) {
		bool ok = tm_geom_mte(&g, ps[i], NULL) == 0 &&
			  tm_geom_granules(&g) == ps[i] / 16 &&
			  tm_geom_packed_bytes(&g) == ps[i] / 32;

		check(d, ok, "%-24s %4zu granules, %4zu B packed, %4zu B unpacked",
		      tm_geom_describe(&g, buf, sizeof(buf)), tm_geom_granules(&g),
		      tm_geom_packed_bytes(&g), tm_geom_unpacked_bytes(&g));
	}
	bool ok = tm_geom_init(&g, TM_META_GENERIC, 4096, 8, 2, NULL) == 0 &&
		  tm_geom_packed_bytes(&g) == 128;
	check(d, ok, "%-24s other metadata kinds fit the same callers",
	      tm_geom_describe(&g, buf, sizeof(buf)));
}

static void demo_pack(struct demo *d)
{
	uint8_t u[256], p[128], r[128], back[256];
	tm_error e;
	tm_rng rng;

	printf("packed <-> unpacked (dispatch: %s)\n", tm_tags_simd_name());
	tm_rng_seed(&rng, 3);
	for (int i = 0; i < 256; i++)
		u[i] = (uint8_t)tm_rng_below(&rng, 16);
	bool ok = tm_tags_pack(p, u, 256, NULL) == 0 && tm_tags_pack_ref(r, u, 256, NULL) == 0 &&
		  memcmp(p, r, 128) == 0 && (p[0] & 0xF) == u[0] && (p[0] >> 4) == u[1];
	check(d, ok, "256 tags -> 128 bytes, low nibble = lower granule (%x,%x -> 0x%02x), "
	      "same as the scalar reference", u[0], u[1], p[0]);
	tm_tags_unpack(back, p, 256);
	check(d, memcmp(back, u, 256) == 0, "unpack restores all 256 tags");
	u[77] = 0x1a;
	tm_error_clear(&e);
	ok = tm_tags_pack(p, u, 256, &e) == -EINVAL && strstr(e.msg, "granule 77");
	check(d, ok, "a byte with bits above the tag is refused: \"%s\"", e.msg);
}

static void demo_zero(struct demo *d)
{
	static uint8_t data[4096];
	uint8_t tags[128];
	tm_geom g;

	printf("zero pages (data AND tags)\n");
	tm_geom_mte(&g, 4096, NULL);
	memset(data, 0, sizeof(data));
	memset(tags, 0, sizeof(tags));
	check(d, tm_page_is_zero(&g, data, tags), "zero data, zero tags: zero page");
	tm_tag_set(tags, 200, 0x9);
	check(d, !tm_page_is_zero(&g, data, tags),
	      "zero data, tag 9 on granule 200: NOT a zero page (it must travel)");
	tm_tag_set(tags, 200, 0);
	data[4095] = 1;
	check(d, !tm_page_is_zero(&g, data, tags), "one data byte set: not a zero page");
}

static void demo_ea0(struct demo *d)
{
	uint8_t tags[128], back[128];
	uint64_t h = 0;
	tm_geom g;

	printf("EA0 (Linux swap tag compression, v11 inline handles)\n");
	tm_geom_mte(&g, 4096, NULL);
	/* four heap chunks: 1 KiB tag 3, 512 B tag 5, 1.5 KiB tag 3, 1 KiB tag 0xb */
	for (size_t i = 0; i < 256; i++)
		tm_tag_set(tags, i, i < 64 ? 3 : i < 96 ? 5 : i < 192 ? 3 : 0xb);
	bool ok = tm_ea0_compress(4096, tags, &h, NULL) == 0 &&
		  tm_ea0_decompress(4096, h, back, NULL) == 0 && memcmp(back, tags, 128) == 0;
	check(d, ok, "4 chunks -> inline handle 0x%016llx (63 bits), decompresses exactly",
	      (unsigned long long)h);
	tm_corpus_fill(TM_CORPUS_RANDOM, &g, 5, tags, 1);
	check(d, tm_ea0_compress(4096, tags, &h, NULL) == -E2BIG,
	      "random tags: more than %u ranges, stored raw (128 B + 8 B)",
	      tm_ea0_max_inline_ranges(4096));
	check(d, !tm_ea0_handle_valid(4096, 0x6b0b0b010080402full),
	      "invalid handle 0x6b0b0b010080402f (largest_idx 7) rejected");
}

static void demo_stream(struct demo *d)
{
	const size_t np = 4096;
	uint8_t *p = malloc(np * 128);
	size_t len = 0, len_r = 0, len_z = 0, nin = 0;
	tm_geom g;

	printf("stream codec vs EA0 on the corpus mix (%zu pages of 4 KiB)\n", np);
	if (!p) {
		check(d, false, "out of memory");
		return;
	}
	tm_geom_mte(&g, 4096, NULL);
	tm_corpus_fill(TM_CORPUS_MIX, &g, 1, p, np);
	size_t raw = np * 128, ea0 = tm_ea0_storage_bytes(4096, p, np, &nin);
	bool ok = stream_size(&g, p, np, 0, &len) == 0 &&
		  stream_size(&g, p, np, TM_TAGSTREAM_REGULAR, &len_r) == 0 &&
		  stream_size(&g, p, np, TM_TAGSTREAM_REGULAR | TM_TAGSTREAM_ZSTD, &len_z) == 0;
	check(d, ok, "stream round trips exact (default, regular form, regular + zstd)");
	check(d, ok && len < ea0, "ratio: EA0 %.2fx (%zu of %zu pages inline), stream %.2fx",
	      ratio(raw, ea0), nin, np, ratio(raw, len));
	check(d, ok && len_r < len && len_z <= len_r,
	      "with the regular form %.2fx, regular + zstd %.2fx (zstd is kept only "
	      "when it shrinks the block)", ratio(raw, len_r), ratio(raw, len_z));
	free(p);
}

int tm_cmd_tags(int argc, char **argv)
{
	struct demo d = { 0 };

	if (argc > 1) {
		bool help = strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0;

		if (!help)
			fprintf(stderr, "tagmem tags: unexpected argument '%s': it "
				"takes no arguments\n", argv[1]);
		fprintf(help ? stdout : stderr,
			"usage: tagmem tags [--help]\n\n"
			"Demonstrate the tags core and check each claim as it is shown:\n"
			"geometry, packed/unpacked tags, zero pages (data and tags), EA0\n"
			"handles, and the stream codec's ratio against EA0 on the corpus mix.\n"
			"Exits 0 only when every check passed.\n");
		return help ? 0 : 2;
	}
	demo_geometry(&d);
	demo_pack(&d);
	demo_zero(&d);
	demo_ea0(&d);
	demo_stream(&d);
	if (d.failed)
		printf("%d check(s) FAILED\n", d.failed);
	else
		printf("all checks passed\n");
	return d.failed ? 1 : 0;
}
