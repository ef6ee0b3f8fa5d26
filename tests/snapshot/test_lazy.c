/*
 * test_lazy.c - lazy restore (Firecracker-style, with tags): regions are
 * registered with userfaultfd and every page is read from the snapshot on
 * its first access. Several threads touch all pages in different random
 * orders through plain pointers; each must see the page's data and, right
 * after, its tags (never data without tags); every page is filled exactly
 * once; the result has the digest recorded at save. A page from a chunk
 * whose checksum fails is never placed: an access through memory gets
 * SIGBUS, an API read gets the error naming the chunk.
 */
#include "snap_test.h"

#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

#include "snapshot/snapint.h"

#define NTHREADS 6

static char dir[256];

struct lazy_fix {
	tm_region *src[2];
	char path[512];
};

static void make_file(struct lazy_fix *f, unsigned flags, const char *name)
{
	tm_snap_opts o;
	tm_error err;

	f->src[0] = st_region("a", 4096, 700, true, 31, NULL);
	f->src[1] = st_region("b", 4096, 150, false, 32, NULL);
	tm_snap_opts_init(&o);
	o.flags = flags | TM_SNAP_DIGEST;
	o.chunk_bytes = 16 * 4096;
	snprintf(f->path, sizeof(f->path), "%s/%s", dir, name);
	if (tm_snapshot_save(f->path, f->src, 2, &o, NULL, &err))
		fail_msg("save: %s", err.msg);
}

static void free_file(struct lazy_fix *f)
{
	tm_region_destroy(f->src[0]);
	tm_region_destroy(f->src[1]);
	unlink(f->path);
}

struct toucher {
	struct lazy_fix *f;
	tm_region **dst;
	unsigned id;
	int bad;
	char why[256];
};

/* Touch every page of both regions in a random order: a word through the
 * region's memory (faults the page in), then the page's tags. */
static void *touch(void *arg)
{
	struct toucher *t = arg;
	uint8_t want[128], got[128];
	tm_error err;
	tm_rng rng;

	tm_rng_seed(&rng, 1000 + t->id);
	for (int ri = 0; ri < 2 && !t->bad; ri++) {
		size_t np = tm_region_npages(t->dst[ri]);
		size_t *order = malloc(np * sizeof(*order));

		for (size_t i = 0; i < np; i++)
			order[i] = i;
		for (size_t i = np - 1; i > 0; i--) {
			size_t j = tm_rng_below(&rng, i + 1), x = order[i];

			order[i] = order[j];
			order[j] = x;
		}
		for (size_t i = 0; i < np && !t->bad; i++) {
			size_t pg = order[i], off = pg * 4096 + tm_rng_below(&rng, 512) * 8;
			uint64_t v = *(volatile uint64_t *)tm_region_ptr(t->dst[ri], off), w;

			tm_region_read(t->f->src[ri], off, &w, 8, &err);
			if (v != w) {
				snprintf(t->why, sizeof(t->why), "region %d page %zu: data 0x%llx, want 0x%llx",
					 ri, pg, (unsigned long long)v, (unsigned long long)w);
				t->bad = 1;
			}
			if (ri == 0 && !t->bad) {
				tm_region_get_tags(t->f->src[0], pg, TM_TAGS_PACKED, want, &err);
				if (tm_region_get_tags(t->dst[0], pg, TM_TAGS_PACKED, got, &err) ||
				    memcmp(want, got, 128)) {
					snprintf(t->why, sizeof(t->why), "region 0 page %zu: tags differ right after the data was seen", pg);
					t->bad = 1;
				}
			}
		}
		free(order);
	}
	return NULL;
}

static void lazy_threads(unsigned flags)
{
	struct lazy_fix f;
	tm_region *dst[2];
	tm_snapshot *s;
	tm_snapshot_lazy *l;
	struct toucher t[NTHREADS];
	pthread_t tid[NTHREADS];
	tm_error err;

	make_file(&f, flags, flags ? "lazy-zstd.snap" : "lazy.snap");
	assert_int_equal(tm_snapshot_open(f.path, NULL, &s, &err), 0);
	assert_int_equal(tm_snapshot_create_regions(s, TM_BACKEND_SOFT, dst, &err), 0);
	if (tm_snapshot_lazy_start(s, dst, 2, &l, &err))
		fail_msg("lazy start: %s", err.msg);
	for (unsigned i = 0; i < NTHREADS; i++) {
		t[i] = (struct toucher){ .f = &f, .dst = dst, .id = i };
		assert_int_equal(pthread_create(&tid[i], NULL, touch, &t[i]), 0);
	}
	for (unsigned i = 0; i < NTHREADS; i++) {
		pthread_join(tid[i], NULL);
		if (t[i].bad)
			fail_msg("thread %u: %s", i, t[i].why);
	}
	/* each page was read from the file exactly once */
	assert_int_equal(tm_snapshot_lazy_faults(l), 700 + 150);
	assert_int_equal(tm_snapshot_lazy_stop(l, &err), 0);
	assert_int_equal(tm_snapshot_check_digests(s, dst, 2, &err), 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(st_digest(dst[i]), st_digest(f.src[i]));
		tm_region_destroy(dst[i]);
	}
	tm_snapshot_close(s);
	free_file(&f);
}

static void test_lazy_threads_raw(void **state)
{
	(void)state;
	lazy_threads(0);
}

static void test_lazy_threads_zstd(void **state)
{
	(void)state;
	lazy_threads(TM_SNAP_ZSTD);
}

/* A stored page of chunk c of region 0 (data bit set), and its offset. */
static size_t bad_page(tm_snapshot *s, uint64_t c, uint64_t *off)
{
	const snap_layout *L = &s->L;
	const snap_region *R = &L->regions[0];

	for (uint64_t k = 0; k < L->chunk_pages; k++) {
		size_t pg = tm_snap_chunk_first(L, c) + k;

		if (tm_bit_test(R->dbits, pg)) {
			*off = R->chunks[c].data_off + k * L->geom.page_size + 100;
			return pg;
		}
	}
	fail_msg("chunk %llu has no stored page", (unsigned long long)c);
	return 0;
}

static void test_bad_chunk(void **state)
{
	struct lazy_fix f;
	tm_region *dst[2];
	tm_snapshot *s;
	tm_snapshot_lazy *l;
	uint8_t buf[4096];
	uint64_t off = 0;
	size_t pg_bad, pg_good = 5;
	int status, fd[2];
	char c = 0;
	tm_error err;
	pid_t pid;

	(void)state;
	make_file(&f, 0, "bad.snap");
	assert_int_equal(tm_snapshot_open(f.path, NULL, &s, &err), 0);
	pg_bad = bad_page(s, 2, &off);
	tm_snapshot_close(s);
	st_flip(f.path, off, 0x10);

	/* through memory: SIGBUS, after a good chunk worked */
	assert_int_equal(pipe(fd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		signal(SIGBUS, SIG_DFL);   /* cmocka catches it otherwise */
		if (tm_snapshot_open(f.path, NULL, &s, &err) ||
		    tm_snapshot_create_regions(s, TM_BACKEND_SOFT, dst, &err) ||
		    tm_snapshot_lazy_start(s, dst, 2, &l, &err))
			_exit(3);
		if (*(volatile uint8_t *)tm_region_ptr(dst[0], pg_good * 4096) ==
		    *(volatile uint8_t *)tm_region_ptr(f.src[0], pg_good * 4096))
			c = 'g';
		if (write(fd[1], &c, 1) != 1)
			_exit(4);
		(void)*(volatile uint8_t *)tm_region_ptr(dst[0], pg_bad * 4096);
		_exit(0);
	}
	close(fd[1]);
	assert_int_equal(read(fd[0], &c, 1), 1);
	close(fd[0]);
	assert_int_equal(c, 'g');
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGBUS)
		fail_msg("touching a page of a bad chunk: status 0x%x, want SIGBUS", status);

	/* through the API: an error naming the chunk, nothing placed */
	assert_int_equal(tm_snapshot_open(f.path, NULL, &s, &err), 0);
	assert_int_equal(tm_snapshot_create_regions(s, TM_BACKEND_SOFT, dst, &err), 0);
	assert_int_equal(tm_snapshot_lazy_start(s, dst, 2, &l, &err), 0);
	assert_int_not_equal(tm_region_read_page(dst[0], pg_bad, buf, NULL, &err), 0);
	assert_false(tm_region_page_present(dst[0], pg_bad));
	assert_int_equal(tm_region_read_page(dst[0], pg_good, buf, NULL, &err), 0);
	assert_int_equal(tm_snapshot_lazy_stop(l, &err), -EBADMSG);
	assert_non_null(strstr(err.msg, "chunk 2 "));
	assert_non_null(strstr(err.msg, "offset"));
	tm_region_destroy(dst[0]);
	tm_region_destroy(dst[1]);
	tm_snapshot_close(s);
	free_file(&f);
}

ST_DIR_GROUP("lazy")

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lazy_threads_raw),
		cmocka_unit_test(test_lazy_threads_zstd),
		cmocka_unit_test(test_bad_chunk),
	};

	return cmocka_run_group_tests(tests, st_group_setup, st_group_teardown);
}
