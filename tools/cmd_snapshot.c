/*
 * cmd_snapshot.c - `tagmem snapshot save|restore|info|verify` and
 * `tagmem core --out FILE | --read FILE`: snapshot files and ELF core dumps
 * from the command line. `save` and `core --out` dump a generated demo
 * workload (the migration workload's page mix: corpus-mix tags, zero pages,
 * tag-only pages) so the commands work without a live program; `restore`
 * rebuilds the regions and proves them equal to the digests recorded at
 * save; `info`, `verify` and `core --read` inspect any file.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/util.h"
#include "workload/fill.h"
#include "tagmem/core.h"
#include "tagmem/region.h"
#include "tagmem/snapshot.h"
#include "tools/cmds.h"

/* ---- shared option parsing ------------------------------------------ */

struct demo_opts {
	size_t nregions;
	uint64_t size;
	uint32_t page_size;
	uint64_t seed;
	bool untagged;
};

/*
 * A number or size ("64M") in [lo, hi]; otherwise print what the option
 * allows (allowed: its range and meaning, in words) and return 2.
 */
static int parse_num(const char *flag, const char *v, uint64_t lo, uint64_t hi,
		     const char *allowed, uint64_t *out)
{
	if (v && tm_parse_size(v, out) == 0 && *out >= lo && *out <= hi)
		return 0;
	if (v)
		fprintf(stderr, "tagmem: %s '%s': must be %s\n", flag, v, allowed);
	else
		fprintf(stderr, "tagmem: %s needs a value: %s\n", flag, allowed);
	return 2;
}

#define SIZE_WORDS "a size in bytes with an optional K/M/G/T suffix (e.g. 64M)"
#define THREADS_WORDS "an integer 0..256 (0: the default, 4)"
#define PAGE_WORDS "4096, 16384 or 65536 (4K, 16K, 64K)"

static int parse_threads(const char *flag, const char *v, unsigned *out)
{
	uint64_t x;

	if (parse_num(flag, v, 0, 256, THREADS_WORDS, &x))
		return 2;
	*out = (unsigned)x;
	return 0;
}

static int parse_addr(const char *flag, const char *v, uint64_t *out)
{
	char *end;

	errno = 0;
	*out = v ? strtoull(v, &end, 0) : 0;
	if (!v || errno || *end) {
		fprintf(stderr, "tagmem: %s '%s': must be an address, decimal or hex "
			"with 0x (e.g. 0x10000000)\n", flag, v ? v : "");
		return 2;
	}
	return 0;
}

/* Options every generator takes; returns 1 if argv[*i] was one, 0 if not,
 * or 2 + prints on a bad value. */
static int demo_opt(struct demo_opts *d, int argc, char **argv, int *i)
{
	const char *a = argv[*i], *v = *i + 1 < argc ? argv[*i + 1] : NULL;
	uint64_t x;
	int rc;

	if (strcmp(a, "--untagged") == 0) {
		d->untagged = true;
		return 1;
	}
	if (strcmp(a, "--regions") == 0) {
		rc = parse_num(a, v, 1, TM_SNAP_MAX_REGIONS, "an integer 1..4096", &x);
		d->nregions = (size_t)x;
	} else if (strcmp(a, "--size") == 0) {
		rc = parse_num(a, v, 1, UINT64_MAX, SIZE_WORDS ", a non-zero "
			       "multiple of the page size", &x);
		d->size = x;
	} else if (strcmp(a, "--page-size") == 0) {
		rc = parse_num(a, v, 4096, 65536, PAGE_WORDS, &x);
		if (!rc && x != 4096 && x != 16384 && x != 65536) {
			fprintf(stderr, "tagmem: %s '%s': must be %s\n", a, v, PAGE_WORDS);
			rc = 2;
		}
		d->page_size = (uint32_t)x;
	} else if (strcmp(a, "--seed") == 0) {
		rc = parse_num(a, v, 0, UINT64_MAX, "an unsigned 64-bit integer", &x);
		d->seed = x;
	} else {
		return 0;
	}
	if (rc)
		return 2;
	(*i)++;
	return 1;
}

static int io_opt(const char *v, enum tm_snap_io *io)
{
	if (v && strcmp(v, "auto") == 0)
		*io = TM_SNAP_IO_AUTO;
	else if (v && strcmp(v, "direct") == 0)
		*io = TM_SNAP_IO_DIRECT;
	else if (v && strcmp(v, "buffered") == 0)
		*io = TM_SNAP_IO_BUFFERED;
	else {
		fprintf(stderr, "tagmem: --io '%s': must be auto, direct or buffered\n",
			v ? v : "");
		return 2;
	}
	return 0;
}

static void free_regions(tm_region **r, size_t n)
{
	for (size_t i = 0; r && i < n; i++)
		tm_region_destroy(r[i]);
	free(r);
}

/* The demo workload: n regions "demoI" with the migration workload mix. */
static int demo_regions(const struct demo_opts *d, tm_region ***out,
			tm_error *err)
{
	tm_region **r = calloc(d->nregions, sizeof(*r));
	char name[32];
	int rc = r ? 0 : tm_error_set(err, -ENOMEM, "out of memory");

	for (size_t i = 0; i < d->nregions && !rc; i++) {
		tm_region_config cfg = { .name = name, .size = d->size,
					 .backend = TM_BACKEND_SOFT };

		snprintf(name, sizeof(name), "demo%zu", i);
		rc = d->untagged ? tm_geom_init(&cfg.geom, TM_META_NONE, d->page_size, 0, 0, err)
				 : tm_geom_mte(&cfg.geom, d->page_size, err);
		if (!rc)
			rc = tm_region_create(&cfg, &r[i], err);
		if (!rc)
			rc = tm_workload_fill(r[i], d->seed + i, 6, 2, err);
	}
	if (rc) {
		free_regions(r, d->nregions);
		return rc;
	}
	*out = r;
	return 0;
}

static const char *flags_str(unsigned f, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s%s", f ? "" : "none", f & TM_SNAP_ZSTD ? "zstd " : "",
		 f & TM_SNAP_DIGEST ? "digest" : "");
	return buf;
}

static void print_io(const char *what, bool direct, const char *note)
{
	printf("%-10s %s%s%s\n", what, direct ? "O_DIRECT" : "buffered (page cache)",
	       direct || !*note ? "" : ": ", direct ? "" : note);
}

static void print_classes(const tm_snap_stats *st)
{
	printf("pages      %" PRIu64 ": normal %" PRIu64 ", tag-only %" PRIu64 ", zero %" PRIu64
	       " (not stored); tagged %" PRIu64 "\n", st->pages, st->normal_pages,
	       st->tag_only_pages, st->zero_pages, st->tagged_pages);
}

/* ---- snapshot save -------------------------------------------------- */

static void usage_snapshot(FILE *f)
{
	fprintf(f,
		"usage: tagmem snapshot save --out FILE [--regions N] [--size SIZE] [--page-size 4k|16k|64k]\n"
		"                            [--seed S] [--untagged] [--zstd] [--threads N] [--chunk SIZE]\n"
		"                            [--io auto|direct|buffered]\n"
		"       tagmem snapshot restore FILE [--lazy] [--threads N] [--io auto|direct|buffered]\n"
		"       tagmem snapshot info FILE\n"
		"       tagmem snapshot verify FILE [--threads N]\n\n"
		"save      write a generated demo workload (N regions of SIZE, default 2 x 64M of 4 KiB\n"
		"          pages; tags from the corpus mix, 6%% zero and 2%% tag-only pages) to FILE,\n"
		"          crash-safely, recording each region's digest\n"
		"restore   rebuild the regions from FILE (eagerly with several threads, or --lazy:\n"
		"          pages fault in on first access, touched here from several threads) and\n"
		"          check them against the recorded digests\n"
		"info      header, regions, page counts by class and the tag-codec ratio\n"
		"verify    read and check every chunk's checksum; lists every bad chunk\n");
}

static int snap_save(int argc, char **argv)
{
	struct demo_opts d = { 2, 64 << 20, 4096, 1, false };
	const char *out = NULL;
	tm_region **r = NULL;
	tm_snap_opts o;
	tm_snap_stats st;
	tm_error err;
	char fl[32];
	int rc;

	tm_snap_opts_init(&o);
	o.flags = TM_SNAP_DIGEST;
	for (int i = 2; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		uint64_t x;

		rc = demo_opt(&d, argc, argv, &i);
		if (rc == 2)
			return 2;
		if (rc == 1)
			continue;
		if (strcmp(argv[i], "--out") == 0 && v)
			out = argv[++i];
		else if (strcmp(argv[i], "--zstd") == 0)
			o.flags |= TM_SNAP_ZSTD;
		else if (strcmp(argv[i], "--io") == 0) {
			if (io_opt(v, &o.io))
				return 2;
			i++;
		} else if (strcmp(argv[i], "--threads") == 0) {
			if (parse_threads(argv[i], v, &o.threads))
				return 2;
			i++;
		} else if (strcmp(argv[i], "--chunk") == 0) {
			if (parse_num(argv[i], v, 0, TM_SNAP_CHUNK_MAX, SIZE_WORDS
				      ", a multiple of the page size up to 64M (0: "
				      "the default, 1M)", &x))
				return 2;
			o.chunk_bytes = (uint32_t)x;
			i++;
		} else {
			fprintf(stderr, "tagmem snapshot save: unknown or incomplete option '%s'\n", argv[i]);
			usage_snapshot(stderr);
			return 2;
		}
	}
	if (!out || d.nregions == 0 || d.size == 0) {
		fprintf(stderr, "tagmem snapshot save: --out FILE is required (and --regions/--size > 0)\n");
		return 2;
	}
	tm_error_clear(&err);
	rc = demo_regions(&d, &r, &err);
	if (!rc)
		rc = tm_snapshot_save(out, r, d.nregions, &o, &st, &err);
	if (rc) {
		fprintf(stderr, "tagmem snapshot save: %s\n", tm_error_msg(&err));
		free_regions(r, d.nregions);
		return 1;
	}
	printf("saved      %s: %zu regions of %" PRIu64 " bytes, %u-byte pages, flags %s\n",
	       out, d.nregions, d.size, d.page_size, flags_str(o.flags, fl, sizeof(fl)));
	print_classes(&st);
	printf("stored     data %" PRIu64 " bytes, tags %" PRIu64 " bytes, file %" PRIu64 " bytes\n",
	       st.data_bytes, st.tag_bytes, st.file_bytes);
	print_io("io", st.direct_io, st.io_note);
	printf("time       %.3f s (%.2f GB/s of region data)\n", st.seconds,
	       st.seconds > 0 ? (double)(d.size * d.nregions) / st.seconds / 1e9 : 0.0);
	free_regions(r, d.nregions);
	return 0;
}

/* ---- snapshot restore ----------------------------------------------- */

struct toucher {
	tm_region *const *r;
	size_t n;
	unsigned id, nthreads;
	uint64_t sum;
};

/* Read one byte of every nthreads-th page through the region's memory, so
 * each page faults in (lazy restore) from one of several threads. */
static void *touch_pages(void *arg)
{
	struct toucher *t = arg;

	for (size_t i = 0; i < t->n; i++) {
		size_t ps = tm_region_geom(t->r[i])->page_size;

		for (size_t pg = t->id; pg < tm_region_npages(t->r[i]); pg += t->nthreads)
			t->sum += *(volatile uint8_t *)tm_region_ptr(t->r[i], pg * ps);
	}
	return NULL;
}

static int touch_all(tm_region *const *r, size_t n, unsigned nthreads)
{
	pthread_t tid[64];
	struct toucher t[64];

	if (nthreads == 0 || nthreads > 64)
		nthreads = 4;
	for (unsigned i = 0; i < nthreads; i++) {
		t[i] = (struct toucher){ r, n, i, nthreads, 0 };
		if (pthread_create(&tid[i], NULL, touch_pages, &t[i]) != 0)
			return -EAGAIN;
	}
	for (unsigned i = 0; i < nthreads; i++)
		pthread_join(tid[i], NULL);
	return 0;
}

static int restore_lazy(tm_snapshot *s, tm_region **r, size_t n,
			const tm_snap_opts *o, tm_error *err)
{
	tm_snapshot_lazy *l;
	uint64_t t0 = tm_now_ns(), faults;
	int rc = tm_snapshot_lazy_start(s, r, n, &l, err);

	if (rc)
		return rc;
	rc = touch_all(r, n, o->threads);
	faults = tm_snapshot_lazy_faults(l);
	if (tm_snapshot_lazy_stop(l, err) != 0 && !rc)
		rc = err->code;
	if (!rc)
		printf("lazy       %" PRIu64 " pages faulted in from %u threads in %.3f s\n",
		       faults, o->threads, (double)(tm_now_ns() - t0) / 1e9);
	return rc;
}

static int snap_restore(int argc, char **argv)
{
	const char *path = NULL;
	bool lazy = false;
	tm_snapshot *s = NULL;
	tm_region **r = NULL;
	tm_snap_info info;
	tm_snap_opts o;
	tm_snap_stats st;
	tm_error err;
	int rc;

	tm_snap_opts_init(&o);
	for (int i = 2; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(argv[i], "--lazy") == 0)
			lazy = true;
		else if (strcmp(argv[i], "--threads") == 0) {
			if (parse_threads(argv[i], v, &o.threads))
				return 2;
			i++;
		} else if (strcmp(argv[i], "--io") == 0) {
			if (io_opt(v, &o.io))
				return 2;
			i++;
		} else if (argv[i][0] != '-' && !path)
			path = argv[i];
		else {
			fprintf(stderr, "tagmem snapshot restore: unknown option '%s'\n", argv[i]);
			return 2;
		}
	}
	if (!path) {
		fprintf(stderr, "tagmem snapshot restore: FILE is required\n");
		return 2;
	}
	tm_error_clear(&err);
	rc = tm_snapshot_open(path, &o, &s, &err);
	if (!rc) {
		tm_snapshot_info(s, &info);
		r = calloc(info.nregions, sizeof(*r));
		rc = r ? tm_snapshot_create_regions(s, TM_BACKEND_SOFT, r, &err)
		       : tm_error_set(&err, -ENOMEM, "out of memory");
	}
	if (!rc && lazy)
		rc = restore_lazy(s, r, info.nregions, &o, &err);
	else if (!rc) {
		rc = tm_snapshot_restore(s, r, info.nregions, &o, &st, &err);
		if (!rc) {
			printf("restored   %s: %zu regions in %.3f s\n", path, info.nregions, st.seconds);
			print_classes(&st);
			print_io("io", st.direct_io, st.io_note);
		}
	}
	if (!rc)
		rc = tm_snapshot_check_digests(s, r, info.nregions, &err);
	if (!rc)
		printf("verified   every region matches the digest recorded at save\n");
	else
		fprintf(stderr, "tagmem snapshot restore: %s\n", tm_error_msg(&err));
	if (r)
		for (size_t i = 0; i < info.nregions; i++)
			tm_region_destroy(r[i]);
	free(r);
	tm_snapshot_close(s);
	return rc ? 1 : 0;
}

/* ---- snapshot info / verify ----------------------------------------- */

static void print_region(const tm_snap_region_info *ri, size_t i)
{
	printf("region %zu   '%s': %" PRIu64 " bytes, %" PRIu64 " pages, %s, %" PRIu64 " chunks\n",
	       i, ri->name, ri->size, ri->npages, ri->tagged ? "tagged" : "untagged", ri->nchunks);
	printf("           normal %" PRIu64 " (tagged %" PRIu64 "), tag-only %" PRIu64 ", zero %" PRIu64 "\n",
	       ri->normal_pages, ri->tagged_pages - ri->tag_only_pages, ri->tag_only_pages,
	       ri->zero_pages);
	if (ri->has_digest)
		printf("           digest 0x%016" PRIx64 "\n", ri->digest);
}

static int snap_info(const char *path)
{
	tm_snapshot *s;
	tm_snap_info info;
	tm_snap_stats tot = { 0 };
	uint64_t raw = 0, coded = 0;
	double ratio = 0;
	struct stat sb;
	char g[96], fl[32], when[64];
	time_t secs;
	tm_error err;
	int rc;

	tm_error_clear(&err);
	if (tm_snapshot_open(path, NULL, &s, &err)) {
		fprintf(stderr, "tagmem snapshot info: %s\n", tm_error_msg(&err));
		return 1;
	}
	tm_snapshot_info(s, &info);
	secs = (time_t)(info.created_ns / 1000000000u);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", gmtime(&secs));
	printf("snapshot   %s\n", path);
	printf("format     tagmem snapshot version %u, flags %s\n", info.version,
	       flags_str(info.flags, fl, sizeof(fl)));
	printf("metadata   %s\n", tm_geom_describe(&info.geom, g, sizeof(g)));
	printf("chunk      %u pages (%u bytes)\n", info.chunk_pages,
	       info.chunk_pages * info.geom.page_size);
	printf("file       %" PRIu64 " bytes", info.file_size);
	if (stat(path, &sb) == 0)
		printf(", %" PRIu64 " allocated (sparse: zero pages are holes)", (uint64_t)sb.st_blocks * 512);
	printf("\ncreated    %s\n", when);
	print_io("io", info.direct_io, info.io_note);
	printf("regions    %zu\n", info.nregions);
	for (size_t i = 0; i < info.nregions; i++) {
		tm_snap_region_info ri;

		tm_snapshot_region_info(s, i, &ri, &err);
		print_region(&ri, i);
		tot.pages += ri.npages;
		tot.normal_pages += ri.normal_pages;
		tot.tag_only_pages += ri.tag_only_pages;
		tot.zero_pages += ri.zero_pages;
		tot.tagged_pages += ri.tagged_pages;
	}
	print_classes(&tot);
	rc = tm_snapshot_tag_ratio(s, &ratio, &raw, &coded, &err);
	if (rc)
		fprintf(stderr, "tagmem snapshot info: tag-codec ratio: %s\n", tm_error_msg(&err));
	else if (raw)
		printf("tag codec  %" PRIu64 " bytes of packed tags -> %" PRIu64 " bytes (ratio %.2fx)\n",
		       raw, coded, ratio);
	else
		printf("tag codec  no tagged pages\n");
	tm_snapshot_close(s);
	return rc ? 1 : 0;
}

static void report_bad(void *ctx, const tm_error *e)
{
	(void)ctx;
	fprintf(stderr, "bad chunk: %s\n", tm_error_msg(e));
}

static int snap_verify(int argc, char **argv)
{
	const char *path = NULL;
	tm_snapshot *s;
	tm_snap_opts o;
	tm_snap_stats st;
	tm_error err;
	int rc;

	tm_snap_opts_init(&o);
	o.report = report_bad;
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--threads") == 0) {
			if (parse_threads(argv[i], i + 1 < argc ? argv[i + 1] : NULL,
					  &o.threads))
				return 2;
			i++;
		} else if (argv[i][0] != '-' && !path)
			path = argv[i];
		else {
			fprintf(stderr, "tagmem snapshot verify: unknown option '%s'\n", argv[i]);
			return 2;
		}
	}
	if (!path) {
		fprintf(stderr, "tagmem snapshot verify: FILE is required\n");
		return 2;
	}
	tm_error_clear(&err);
	if (tm_snapshot_open(path, &o, &s, &err)) {
		fprintf(stderr, "tagmem snapshot verify: %s\n", tm_error_msg(&err));
		return 1;
	}
	rc = tm_snapshot_verify(s, &o, &st, &err);
	printf("verify     %s: %" PRIu64 " chunks checked, %" PRIu64 " bad (header and metadata checksums good)\n",
	       path, st.chunks, st.bad_chunks);
	if (rc)
		fprintf(stderr, "tagmem snapshot verify: %s\n", tm_error_msg(&err));
	tm_snapshot_close(s);
	return rc ? 1 : 0;
}

int tm_cmd_snapshot(int argc, char **argv)
{
	if (argc < 2) {
		usage_snapshot(stderr);
		return 2;
	}
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage_snapshot(stdout);
			return 0;
		}
	}
	if (strcmp(argv[1], "save") == 0)
		return snap_save(argc, argv);
	if (strcmp(argv[1], "restore") == 0)
		return snap_restore(argc, argv);
	if (strcmp(argv[1], "verify") == 0)
		return snap_verify(argc, argv);
	if (strcmp(argv[1], "info") == 0 && argc == 3)
		return snap_info(argv[2]);
	if (strcmp(argv[1], "info") == 0)
		fprintf(stderr, "tagmem snapshot info: takes exactly one FILE\n");
	else
		fprintf(stderr, "tagmem snapshot: unknown subcommand '%s': must be "
			"save, restore, verify or info\n", argv[1]);
	usage_snapshot(stderr);
	return 2;
}

/* ---- core --out / --read -------------------------------------------- */

static void usage_core(FILE *f)
{
	fprintf(f,
		"usage: tagmem core --out FILE [--regions N] [--size SIZE] [--page-size 4k|16k|64k]\n"
		"                   [--seed S] [--untagged] [--base ADDR]\n"
		"       tagmem core --read FILE [--tags ADDR[:LEN]]\n\n"
		"--out    write an aarch64 ELF core of a generated demo workload (default 2 regions of\n"
		"         256K at 0x10000000, 0x20000000, ...) with one PT_AARCH64_MEMTAG_MTE segment\n"
		"         per tagged region; gdb >= 13 reads its tags:\n"
		"           gdb-multiarch -batch -ex 'core-file FILE' -ex 'memory-tag print-allocation-tag ADDR'\n"
		"--read   validate a core from Linux, gdb's gcore or tagmem and summarise it;\n"
		"         --tags prints the allocation tags of [ADDR, ADDR+LEN) (LEN default 256)\n");
}

static void print_tags(const uint8_t *t, size_t n, uint64_t addr)
{
	for (size_t i = 0; i < n; i++) {
		if (i % 32 == 0)
			printf("%s0x%012" PRIx64 ":", i ? "\n" : "", addr + i * 16);
		printf(" %x", t[i]);
	}
	printf("\n");
}

static int core_out(const char *path, struct demo_opts *d, uint64_t base)
{
	tm_region **r = NULL;
	tm_core_region *cr = calloc(d->nregions ? d->nregions : 1, sizeof(*cr));
	uint8_t tags[64];
	size_t ng;
	tm_core *c;
	tm_error err;
	int rc;

	tm_error_clear(&err);
	rc = cr ? demo_regions(d, &r, &err) : tm_error_set(&err, -ENOMEM, "out of memory");
	for (size_t i = 0; !rc && i < d->nregions; i++) {
		uint64_t span = (d->size + 0xfffffff) & ~0xfffffffull;

		cr[i] = (tm_core_region){ r[i], base + i * span, 0 };
	}
	if (!rc)
		rc = tm_core_write(path, cr, d->nregions, NULL, &err);
	if (rc) {
		fprintf(stderr, "tagmem core: %s\n", tm_error_msg(&err));
		free_regions(r, d->nregions);
		free(cr);
		return 1;
	}
	printf("core       %s: ELF64 aarch64 ET_CORE, %zu PT_LOAD, %zu PT_AARCH64_MEMTAG_MTE\n",
	       path, d->nregions, d->untagged ? (size_t)0 : d->nregions);
	for (size_t i = 0; i < d->nregions; i++)
		printf("region %zu   '%s' at 0x%" PRIx64 " - 0x%" PRIx64 "\n", i, tm_region_name(r[i]),
		       cr[i].vaddr, cr[i].vaddr + d->size);
	if (!d->untagged && tm_core_open(path, &c, &err) == 0) {
		if (tm_core_read_tags(c, cr[0].vaddr, 64 * 16, tags, &ng, &err) == 0) {
			printf("tags at the start of region 0 (read back from the file):\n");
			print_tags(tags, ng, cr[0].vaddr);
		}
		tm_core_close(c);
	}
	free_regions(r, d->nregions);
	free(cr);
	return 0;
}

static void print_core_info(const char *path, const tm_core_info *in)
{
	printf("core       %s: %" PRIu64 " bytes, e_machine %u%s\n", path, in->file_size,
	       in->machine, in->machine == 183 ? " (AArch64)" : in->machine == 62 ? " (x86-64)" : "");
	printf("notes      %zu (%zu threads)", in->nnotes, in->nthreads);
	if (in->nthreads)
		printf(", pid %u, signal %d, pc 0x%" PRIx64 ", sp 0x%" PRIx64, in->pid, in->signo,
		       in->pc, in->sp);
	printf("\n");
	if (in->comm[0])
		printf("process    '%s'\n", in->comm);
	if (in->has_siginfo && (in->signo == 11 || in->signo == 7))
		printf("siginfo    si_code %d, fault address 0x%" PRIx64 "%s\n", in->si_code,
		       in->fault_addr, in->signo == 11 && in->si_code == 9 ?
		       " (SEGV_MTESERR: synchronous tag check fault)" : "");
	else if (in->has_siginfo)
		printf("siginfo    si_code %d\n", in->si_code);
	if (in->has_auxv)
		printf("auxv       hwcap 0x%" PRIx64 ", hwcap2 0x%" PRIx64 " (MTE %s), page size %" PRIu64 "\n",
		       in->hwcap, in->hwcap2, in->mte ? "yes" : "no", in->page_size);
	if (in->has_tagged_addr_ctrl)
		printf("tag ctl    0x%" PRIx64 " (tagged ABI %s, TCF %s)\n", in->tagged_addr_ctrl,
		       in->tagged_addr_ctrl & 1 ? "on" : "off",
		       (in->tagged_addr_ctrl >> 1 & 3) == 1 ? "sync" :
		       (in->tagged_addr_ctrl >> 1 & 3) == 2 ? "async" :
		       (in->tagged_addr_ctrl >> 1 & 3) == 3 ? "sync+async" : "none");
	printf("segments   %zu PT_LOAD, %zu with MTE tags\n", in->nsegments, in->ntagged);
}

static int core_read(const char *path, const char *range)
{
	tm_core *c;
	tm_core_info in;
	tm_error err;
	int rc = 0;

	tm_error_clear(&err);
	if (tm_core_open(path, &c, &err)) {
		fprintf(stderr, "tagmem core --read: %s\n", tm_error_msg(&err));
		return 1;
	}
	tm_core_get_info(c, &in);
	print_core_info(path, &in);
	for (size_t i = 0; i < in.nsegments; i++) {
		tm_core_segment s;

		tm_core_segment_get(c, i, &s, &err);
		printf("  %3zu 0x%012" PRIx64 "-0x%012" PRIx64 " %c%c%c file %" PRIu64 "/%" PRIu64,
		       i, s.vaddr, s.vaddr + s.memsz, s.prot & TM_CORE_R ? 'r' : '-',
		       s.prot & TM_CORE_W ? 'w' : '-', s.prot & TM_CORE_X ? 'x' : '-',
		       s.filesz, s.memsz);
		if (s.tagged)
			printf("  tags %" PRIu64 " bytes at 0x%" PRIx64, s.tag_filesz, s.tag_offset);
		printf("\n");
	}
	if (range) {
		char *colon = strchr(range, ':');
		uint64_t addr, len = 256;
		char abuf[64];
		uint8_t *tags;
		size_t ng;

		snprintf(abuf, sizeof(abuf), "%.*s", colon ? (int)(colon - range) : (int)strlen(range), range);
		if (parse_addr("--tags", abuf, &addr) ||
		    (colon && parse_num("--tags", colon + 1, 1, 1u << 26, "ADDR[:LEN] with "
					"LEN 1..64M bytes (e.g. 0x10000000:4K)", &len))) {
			tm_core_close(c);
			return 2;
		}
		tags = malloc(len / 16 + 2);
		rc = tags ? tm_core_read_tags(c, addr, len, tags, &ng, &err) : -ENOMEM;
		if (!rc)
			print_tags(tags, ng, (addr & ((1ull << 56) - 1)) & ~15ull);
		else
			fprintf(stderr, "tagmem core --read: %s\n", tm_error_msg(&err));
		free(tags);
	}
	tm_core_close(c);
	return rc ? 1 : 0;
}

int tm_cmd_core(int argc, char **argv)
{
	struct demo_opts d = { 2, 256 << 10, 4096, 1, false };
	const char *out = NULL, *in = NULL, *tags = NULL;
	uint64_t base = 0x10000000;

	for (int i = 1; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		int rc = demo_opt(&d, argc, argv, &i);

		if (rc == 2)
			return 2;
		if (rc == 1)
			continue;
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage_core(stdout);
			return 0;
		} else if (strcmp(argv[i], "--out") == 0 && v)
			out = argv[++i];
		else if (strcmp(argv[i], "--read") == 0 && v)
			in = argv[++i];
		else if (strcmp(argv[i], "--tags") == 0 && v)
			tags = argv[++i];
		else if (strcmp(argv[i], "--base") == 0) {
			if (parse_addr("--base", v, &base))
				return 2;
			i++;
		} else {
			fprintf(stderr, "tagmem core: unknown or incomplete option '%s'\n", argv[i]);
			usage_core(stderr);
			return 2;
		}
	}
	if (!!out == !!in || d.nregions == 0 || d.size == 0) {
		fprintf(stderr, "tagmem core: exactly one of --out FILE and --read "
			"FILE is required\n");
		usage_core(stderr);
		return 2;
	}
	return out ? core_out(out, &d, base) : core_read(in, tags);
}
