/*
 * bench_snapshot.c - `tagmem bench snapshot --json`: save and restore a
 * 2 GiB tagged region (the migration workload's mix: corpus-mix tags, 6 %
 * zero pages, 2 % tag-only pages) against
 *   - the same region without tags (same data; tag-only pages become zero
 *     pages), saved and restored the same way, and
 *   - plain sequential I/O of the same byte count (the region's size) to
 *     the same directory: 1 MiB writes then fsync, 1 MiB reads,
 * all measured in the same run, repetitions interleaved so drift on the
 * shared machine hits every variant alike; the best repetition counts.
 *
 * Fairness rules (docs/BENCHMARKS.md §snapshot): every variant uses O_DIRECT when
 * the file system allows it (else all are buffered and every file's pages
 * are dropped with posix_fadvise before it is read); every write is fsynced
 * inside the timed span (the snapshot also renames and fsyncs the
 * directory); old files are unlinked before the timed span (ext4 frees and
 * discards a replaced file's blocks inside rename); destination regions are
 * created and pre-faulted before timing, as the dd read buffer is. All GB/s
 * are region bytes / wall time, so ratios are time ratios.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "bench/bench_common.h"
#include "common/util.h"
#include "workload/fill.h"
#include "tagmem/region.h"
#include "tagmem/snapshot.h"
#include "tools/cmds.h"

#define DD_BLOCK (1u << 20)

struct bopts {
	uint64_t size;
	uint32_t page_size;
	unsigned threads;
	unsigned flags;
	int reps;
	const char *dir;
	bool json;
};

struct variant {
	const char *name;
	tm_region *src, *dst;
	char path[512];
	double save_s, restore_s;
	double save_cpu, restore_cpu;   /* CPU seconds (all threads) of those */
	tm_snap_stats st;
	uint64_t allocated;
};

static void usage(FILE *f)
{
	fprintf(f, "usage: tagmem bench snapshot [--json] [--size 2G] [--page-size 4k] [--threads N]\n"
		   "                             [--reps 3] [--dir /var/tmp] [--zstd]\n\n"
		   "Save and restore a tagged region, the same region without tags, and plain\n"
		   "sequential I/O of the same byte count, in the same directory and run.\n"
		   "--threads N sets save's and restore's workers; default: the library's\n"
		   "(%u for save, %u for restore).\n", TM_SNAP_THREADS_DEFAULT, TM_SNAP_READ_THREADS_DEFAULT);
}

static int parse(int argc, char **argv, struct bopts *o)
{
	*o = (struct bopts){ 2ull << 30, 4096, 0, 0, 3, "/var/tmp", false };
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		uint64_t n = 0;

		if (strcmp(a, "--json") == 0) {
			o->json = true;
			continue;
		}
		if (strcmp(a, "--zstd") == 0) {
			o->flags |= TM_SNAP_ZSTD;
			continue;
		}
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			return 1;
		}
		if (strcmp(a, "--dir") == 0 && v) {
			o->dir = v;
			i++;
			continue;
		}
		if (!v || tm_parse_size(v, &n) != 0 || n == 0) {
			fprintf(stderr, "tagmem bench snapshot: bad or unknown option '%s'\n", a);
			usage(stderr);
			return 2;
		}
		i++;
		if (strcmp(a, "--size") == 0)
			o->size = n;
		else if (strcmp(a, "--page-size") == 0)
			o->page_size = (uint32_t)n;
		else if (strcmp(a, "--threads") == 0)
			o->threads = (unsigned)n;
		else if (strcmp(a, "--reps") == 0)
			o->reps = (int)n;
		else {
			fprintf(stderr, "tagmem bench snapshot: unknown option '%s'\n", a);
			return 2;
		}
	}
	return 0;
}

/* ---- setup ----------------------------------------------------------- */

static int make_region(const char *name, uint64_t size, uint32_t ps,
		       bool tagged, tm_region **out, tm_error *err)
{
	tm_region_config cfg = { .name = name, .size = size, .backend = TM_BACKEND_SOFT };
	int rc = tagged ? tm_geom_mte(&cfg.geom, ps, err)
			: tm_geom_init(&cfg.geom, TM_META_NONE, ps, 0, 0, err);

	return rc ? rc : tm_region_create(&cfg, out, err);
}

/* The untagged twin: the same data, no tags. */
static int copy_data(tm_region *from, tm_region *to, tm_error *err)
{
	size_t ps = tm_region_geom(from)->page_size;
	uint8_t *buf = malloc(ps);
	int rc = buf ? 0 : tm_error_set(err, -ENOMEM, "out of memory");

	for (size_t pg = 0; pg < tm_region_npages(from) && !rc; pg++) {
		rc = tm_region_read_page(from, pg, buf, NULL, err);
		if (!rc && !tm_mem_is_zero(buf, ps))
			rc = tm_region_write_page(to, pg, buf, NULL, err);
	}
	free(buf);
	return rc;
}

/* Destinations are faulted in before timing, like the dd read buffer. */
static void prefault(tm_region *r)
{
	memset(tm_region_ptr(r, 0), 0, tm_region_size(r));
}

static int check_space(const struct bopts *o, tm_error *err)
{
	struct statvfs vf;
	uint64_t need = o->size * 3 + (o->size >> 3), have;

	if (statvfs(o->dir, &vf) != 0)
		return tm_error_set(err, -errno, "bench: cannot stat %s", o->dir);
	have = (uint64_t)vf.f_bavail * vf.f_frsize;
	if (have < need)
		return tm_error_set(err, -ENOSPC, "bench: %s has %" PRIu64 " MiB free, the run needs %" PRIu64 " MiB",
				    o->dir, have >> 20, need >> 20);
	return 0;
}

/* ---- the timed steps --------------------------------------------------- */

static void drop_file_cache(const char *path)
{
	int fd = open(path, O_RDONLY);

	if (fd >= 0) {
		(void)fdatasync(fd);
		(void)posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
		close(fd);
	}
}

/* CPU seconds this process has used (every thread, user + system). */
static double cpu_now(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static int time_save(struct variant *v, const tm_snap_opts *so, tm_error *err)
{
	uint64_t t0;
	double c0;
	int rc;

	unlink(v->path);
	c0 = cpu_now();
	t0 = tm_now_ns();
	rc = tm_snapshot_save(v->path, &v->src, 1, so, &v->st, err);
	double s = (double)(tm_now_ns() - t0) / 1e9;
	if (!rc && (v->save_s == 0 || s < v->save_s)) {
		v->save_s = s;
		v->save_cpu = cpu_now() - c0;
	}
	return rc;
}

static int time_restore(struct variant *v, const tm_snap_opts *so, tm_error *err)
{
	tm_snapshot *s = NULL;
	tm_snap_stats st;
	uint64_t t0, d0, d1;
	double c0;
	int rc;

	drop_file_cache(v->path);
	c0 = cpu_now();
	t0 = tm_now_ns();
	rc = tm_snapshot_open(v->path, so, &s, err);
	if (!rc)
		rc = tm_snapshot_restore(s, &v->dst, 1, so, &st, err);
	double secs = (double)(tm_now_ns() - t0) / 1e9, cpu = cpu_now() - c0;
	tm_snapshot_close(s);
	if (rc)
		return rc;
	if (v->restore_s == 0 || secs < v->restore_s) {
		v->restore_s = secs;
		v->restore_cpu = cpu;
	}
	rc = tm_region_digest(v->src, &d0, err);
	if (!rc)
		rc = tm_region_digest(v->dst, &d1, err);
	if (!rc && d0 != d1)
		rc = tm_error_set(err, -EBADMSG, "bench: restored %s region differs from the source", v->name);
	return rc;
}

static int open_dd(const char *path, int flags, bool direct)
{
	int fd = open(path, flags | (direct ? O_DIRECT : 0), 0644);

	if (fd < 0 && direct)
		fd = open(path, flags, 0644);
	return fd;
}

/* Plain sequential write of bytes from buf (1 MiB blocks), then fsync. */
static int dd_write(const char *path, const uint8_t *buf, uint64_t bytes,
		    bool direct, double *best, tm_error *err)
{
	uint64_t t0;
	int fd, rc = 0;

	unlink(path);
	t0 = tm_now_ns();
	fd = open_dd(path, O_WRONLY | O_CREAT | O_EXCL, direct);
	if (fd < 0)
		return tm_error_set(err, -errno, "bench: cannot create %s", path);
	for (uint64_t off = 0; off < bytes && !rc; off += DD_BLOCK)
		rc = tm_write_full(fd, buf + off % (64u << 20), DD_BLOCK);
	if (!rc && fsync(fd) != 0)
		rc = -errno;
	close(fd);
	double s = (double)(tm_now_ns() - t0) / 1e9;
	if (rc)
		return tm_error_set(err, rc, "bench: dd write of %s failed", path);
	if (*best == 0 || s < *best)
		*best = s;
	return 0;
}

static int dd_read(const char *path, uint8_t *buf, uint64_t bytes, bool direct,
		   double *best, tm_error *err)
{
	uint64_t t0;
	int fd, rc = 0;

	drop_file_cache(path);
	t0 = tm_now_ns();
	fd = open_dd(path, O_RDONLY, direct);
	if (fd < 0)
		return tm_error_set(err, -errno, "bench: cannot open %s", path);
	for (uint64_t off = 0; off < bytes && !rc; off += DD_BLOCK)
		rc = tm_read_full(fd, buf, DD_BLOCK);
	close(fd);
	double s = (double)(tm_now_ns() - t0) / 1e9;
	if (rc)
		return tm_error_set(err, rc, "bench: dd read of %s failed", path);
	if (*best == 0 || s < *best)
		*best = s;
	return 0;
}

/* ---- run ------------------------------------------------------------------ */

struct run {
	struct bopts o;
	struct variant v[2];      /* tagged, untagged */
	char dd_path[512];
	uint8_t *ddbuf;           /* 64 MiB of random bytes (dd source) */
	uint8_t *hugebuf;         /* the same bytes in transparent huge pages */
	double ddw_s, ddr_s;
	double ddw_huge_s, ddr_huge_s;  /* dd from/to hugebuf */
	double memcpy_s;          /* 64 MiB from the region: the CPU's state */
	double tag_ratio;
};

/* dd's buffer again, 2 MiB aligned and advised into transparent huge
 * pages as tagmem's own I/O buffers are (sfile.c): a physically contiguous
 * buffer makes each 1 MiB O_DIRECT transfer one DMA segment run instead of
 * 256 pages. The second baseline shows how much of a ratio is that. */
static int alloc_huge(struct run *R, tm_error *err)
{
	if (posix_memalign((void **)&R->hugebuf, 2u << 20, 64u << 20) != 0)
		return tm_error_set(err, -ENOMEM, "bench: out of memory");
	madvise(R->hugebuf, 64u << 20, MADV_HUGEPAGE);
	memcpy(R->hugebuf, R->ddbuf, 64u << 20);
	return 0;
}

static int setup(struct run *R, tm_error *err)
{
	const struct bopts *o = &R->o;
	int rc = check_space(o, err);

	R->v[0].name = "tagged";
	R->v[1].name = "untagged";
	for (int i = 0; i < 2 && !rc; i++) {
		snprintf(R->v[i].path, sizeof(R->v[i].path), "%s/tagmem-bench-%s-%d.snap",
			 o->dir, R->v[i].name, (int)getpid());
		rc = make_region(R->v[i].name, o->size, o->page_size, i == 0, &R->v[i].src, err);
		if (!rc)
			rc = make_region(R->v[i].name, o->size, o->page_size, i == 0, &R->v[i].dst, err);
		if (!rc)
			prefault(R->v[i].dst);
	}
	if (!rc)
		rc = tm_workload_fill(R->v[0].src, 1, 6, 2, err);
	if (!rc)
		rc = copy_data(R->v[0].src, R->v[1].src, err);
	snprintf(R->dd_path, sizeof(R->dd_path), "%s/tagmem-bench-dd-%d.bin", o->dir, (int)getpid());
	if (!rc && posix_memalign((void **)&R->ddbuf, 4096, 64u << 20) != 0)
		rc = tm_error_set(err, -ENOMEM, "bench: out of memory");
	if (!rc) {
		tm_rng rng;

		tm_rng_seed(&rng, 7);
		for (size_t i = 0; i < (64u << 20) / 8; i++)
			((uint64_t *)R->ddbuf)[i] = tm_rng_next(&rng);
	}
	if (!rc)
		rc = alloc_huge(R, err);
	return rc;
}

static void teardown(struct run *R)
{
	for (int i = 0; i < 2; i++) {
		tm_region_destroy(R->v[i].src);
		tm_region_destroy(R->v[i].dst);
		unlink(R->v[i].path);
	}
	unlink(R->dd_path);
	free(R->ddbuf);
	free(R->hugebuf);
}

static uint64_t allocated(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0 ? (uint64_t)sb.st_blocks * 512 : 0;
}

/* memcpy of 64 MiB of region memory: save and restore read (checksum)
 * and restore copies every byte, so this says how much CPU the shared
 * machine gave us during the run. */
static void time_memcpy(struct run *R)
{
	size_t n = 64u << 20;
	uint64_t t0;

	if (R->o.size < n)
		n = (size_t)R->o.size;
	t0 = tm_now_ns();
	memcpy(R->ddbuf, tm_region_ptr(R->v[0].src, 0), n);
	double s = (double)(tm_now_ns() - t0) / 1e9 * ((double)(64u << 20) / (double)n);
	if (R->memcpy_s == 0 || s < R->memcpy_s)
		R->memcpy_s = s;
}

/* One repetition of everything, in an order that interleaves variants. */
static int one_rep(struct run *R, const tm_snap_opts *so, tm_error *err)
{
	bool direct = so->io != TM_SNAP_IO_BUFFERED;
	int rc = 0;

	time_memcpy(R);
	for (int i = 0; i < 2 && !rc; i++)
		rc = time_save(&R->v[i], so, err);
	if (!rc)
		rc = dd_write(R->dd_path, R->ddbuf, R->o.size, direct && R->v[0].st.direct_io,
			      &R->ddw_s, err);
	if (!rc)
		rc = dd_write(R->dd_path, R->hugebuf, R->o.size, direct && R->v[0].st.direct_io,
			      &R->ddw_huge_s, err);
	for (int i = 0; i < 2 && !rc; i++)
		rc = time_restore(&R->v[i], so, err);
	if (!rc)
		rc = dd_read(R->dd_path, R->ddbuf, R->o.size, direct && R->v[0].st.direct_io,
			     &R->ddr_s, err);
	if (!rc)
		rc = dd_read(R->dd_path, R->hugebuf, R->o.size, direct && R->v[0].st.direct_io,
			     &R->ddr_huge_s, err);
	return rc;
}

static int measure(struct run *R, tm_error *err)
{
	tm_snap_opts so;
	tm_snapshot *s;
	int rc = 0;

	tm_snap_opts_init(&so);
	so.flags = R->o.flags;
	so.threads = R->o.threads;
	for (int rep = 0; rep < R->o.reps && !rc; rep++)
		rc = one_rep(R, &so, err);
	for (int i = 0; i < 2 && !rc; i++)
		R->v[i].allocated = allocated(R->v[i].path);
	if (!rc)
		rc = tm_snapshot_open(R->v[0].path, &so, &s, err);
	if (!rc) {
		rc = tm_snapshot_tag_ratio(s, &R->tag_ratio, NULL, NULL, err);
		tm_snapshot_close(s);
	}
	return rc;
}

static void report(const struct run *R)
{
	const struct variant *t = &R->v[0], *u = &R->v[1];
	double b = (double)R->o.size;
	tm_json j;

	tm_json_begin(&j, stdout);
	tm_json_num(&j, "save_gbps", tm_gbps(b, t->save_s));
	tm_json_num(&j, "restore_gbps", tm_gbps(b, t->restore_s));
	tm_json_num(&j, "save_notags_gbps", tm_gbps(b, u->save_s));
	tm_json_num(&j, "restore_notags_gbps", tm_gbps(b, u->restore_s));
	tm_json_num(&j, "dd_write_gbps", tm_gbps(b, R->ddw_s));
	tm_json_num(&j, "dd_read_gbps", tm_gbps(b, R->ddr_s));
	tm_json_num(&j, "dd_write_hugebuf_gbps", tm_gbps(b, R->ddw_huge_s));
	tm_json_num(&j, "dd_read_hugebuf_gbps", tm_gbps(b, R->ddr_huge_s));
	tm_json_int(&j, "file_bytes", (long long)t->st.file_bytes);
	tm_json_num(&j, "memcpy_gbps", tm_gbps((double)(64u << 20), R->memcpy_s));
	tm_json_int(&j, "file_allocated_bytes", (long long)t->allocated);
	tm_json_int(&j, "notags_file_bytes", (long long)u->st.file_bytes);
	tm_json_int(&j, "notags_file_allocated_bytes", (long long)u->allocated);
	tm_json_int(&j, "region_bytes", (long long)R->o.size);
	tm_json_int(&j, "dd_bytes", (long long)R->o.size);
	tm_json_int(&j, "stored_data_bytes", (long long)t->st.data_bytes);
	tm_json_int(&j, "stored_tag_bytes", (long long)t->st.tag_bytes);
	tm_json_int(&j, "pages", (long long)t->st.pages);
	tm_json_int(&j, "zero_pages", (long long)t->st.zero_pages);
	tm_json_int(&j, "tag_only_pages", (long long)t->st.tag_only_pages);
	tm_json_int(&j, "tagged_pages", (long long)t->st.tagged_pages);
	tm_json_num(&j, "tag_codec_ratio", R->tag_ratio);
	tm_json_num(&j, "save_cpu_s", t->save_cpu);
	tm_json_num(&j, "save_notags_cpu_s", u->save_cpu);
	tm_json_num(&j, "restore_cpu_s", t->restore_cpu);
	tm_json_num(&j, "restore_notags_cpu_s", u->restore_cpu);
	tm_json_num(&j, "save_vs_notags", u->save_s > 0 ? u->save_s / t->save_s : 0);
	tm_json_num(&j, "restore_vs_notags", u->restore_s > 0 ? u->restore_s / t->restore_s : 0);
	tm_json_num(&j, "save_vs_dd", t->save_s > 0 ? R->ddw_s / t->save_s : 0);
	tm_json_num(&j, "restore_vs_dd", t->restore_s > 0 ? R->ddr_s / t->restore_s : 0);
	tm_json_num(&j, "save_vs_dd_hugebuf", t->save_s > 0 ? R->ddw_huge_s / t->save_s : 0);
	tm_json_num(&j, "restore_vs_dd_hugebuf", t->restore_s > 0 ? R->ddr_huge_s / t->restore_s : 0);
	tm_json_bool(&j, "direct_io", t->st.direct_io);
	tm_json_str(&j, "io_note", t->st.io_note);
	tm_json_bool(&j, "zstd", R->o.flags & TM_SNAP_ZSTD);
	tm_json_int(&j, "save_threads", R->o.threads ? R->o.threads : TM_SNAP_THREADS_DEFAULT);
	tm_json_int(&j, "restore_threads", R->o.threads ? R->o.threads : TM_SNAP_READ_THREADS_DEFAULT);
	tm_json_int(&j, "page_size", R->o.page_size);
	tm_json_int(&j, "chunk_bytes", TM_SNAP_CHUNK_DEFAULT);
	tm_json_int(&j, "reps", R->o.reps);
	tm_json_str(&j, "dir", R->o.dir);
	tm_json_end(&j);
}

static void report_text(const struct run *R)
{
	double b = (double)R->o.size;

	printf("snapshot bench: %" PRIu64 " MiB region, %u-byte pages, %u save / %u restore threads, best of %d, %s in %s\n",
	       R->o.size >> 20, R->o.page_size,
	       R->o.threads ? R->o.threads : TM_SNAP_THREADS_DEFAULT,
	       R->o.threads ? R->o.threads : TM_SNAP_READ_THREADS_DEFAULT, R->o.reps,
	       R->v[0].st.direct_io ? "O_DIRECT" : "buffered", R->o.dir);
	printf("  save    tagged %.2f GB/s  untagged %.2f GB/s  plain write %.2f GB/s\n",
	       tm_gbps(b, R->v[0].save_s), tm_gbps(b, R->v[1].save_s), tm_gbps(b, R->ddw_s));
	printf("  restore tagged %.2f GB/s  untagged %.2f GB/s  plain read  %.2f GB/s\n",
	       tm_gbps(b, R->v[0].restore_s), tm_gbps(b, R->v[1].restore_s), tm_gbps(b, R->ddr_s));
	printf("  plain I/O from a huge-page buffer: write %.2f GB/s  read %.2f GB/s\n",
	       tm_gbps(b, R->ddw_huge_s), tm_gbps(b, R->ddr_huge_s));
	printf("  file %" PRIu64 " bytes (%" PRIu64 " allocated), tag codec ratio %.2fx, memcpy %.2f GB/s\n",
	       R->v[0].st.file_bytes, R->v[0].allocated, R->tag_ratio,
	       tm_gbps((double)(64u << 20), R->memcpy_s));
}

int tm_bench_snapshot(int argc, char **argv)
{
	struct run R;
	tm_error err;
	int rc;

	memset(&R, 0, sizeof(R));
	rc = parse(argc, argv, &R.o);
	if (rc)
		return rc == 1 ? 0 : rc;
	if (R.o.size % R.o.page_size) {
		fprintf(stderr, "tagmem bench snapshot: --size must be a multiple of the page size\n");
		return 2;
	}
	tm_error_clear(&err);
	rc = setup(&R, &err);
	if (!rc)
		rc = measure(&R, &err);
	if (!rc) {
		if (R.o.json)
			report(&R);
		else
			report_text(&R);
	} else {
		fprintf(stderr, "tagmem bench snapshot: %s\n", tm_error_msg(&err));
	}
	teardown(&R);
	return rc ? 1 : 0;
}
