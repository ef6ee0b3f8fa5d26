/*
 * test_valslab.c - the tag value slab allocator (src/swap/valslab.c):
 * every object of every class is 16-byte aligned and inside its block, live
 * objects never overlap (each carries a pattern that is checked after
 * churn), a long random alloc/free churn keeps the stats equal to a shadow
 * model and never holds more blocks than the live objects need plus one
 * spare per class, emptying a class keeps exactly one block, fini after
 * partial use leaks nothing (the ASan build checks that), init refuses bad
 * size tables, and in debug builds a bad free aborts (fork death tests).
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include "tests/test_skip.h"

#include "common/util.h"
#include "swap/valslab.h"

/* The tag store's classes (stream records 16..1024, raw 512 for 16 KiB
 * pages), and odd multiples of 16 up to the maximum. */
static const size_t pow2_sizes[8] = { 16, 32, 64, 128, 256, 512, 1024, 2048 };
static const size_t odd_sizes[4] = { 48, 80, 208, 4096 };

static uintptr_t block_of(const struct tm_valslab *s, unsigned c, const void *p)
{
	return (uintptr_t)p & ~(uintptr_t)(s->cls[c].block_size - 1);
}

/* ---- patterns: each live object is filled from its own 64-bit key ---- */

static void fill(void *p, size_t n, uint64_t key)
{
	uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)((key >> (8 * (i & 7))) + i);
}

static bool intact(const void *p, size_t n, uint64_t key)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i] != (uint8_t)((key >> (8 * (i & 7))) + i))
			return false;
	return true;
}

/* ---- init ---- */

static void expect_einval(const size_t *sizes, unsigned n, const char *needle)
{
	struct tm_valslab s;
	tm_error err;

	tm_error_clear(&err);
	assert_int_equal(tm_valslab_init(&s, sizes, n, &err), -EINVAL);
	assert_int_equal(err.code, -EINVAL);
	if (!strstr(tm_error_msg(&err), needle))
		fail_msg("message '%s' does not name '%s'", tm_error_msg(&err), needle);
}

static void test_init_rejects_bad_sizes(void **state)
{
	const size_t bad[][2] = { { 16, 0 }, { 16, 8 }, { 16, 24 }, { 4112, 16 },
				  { 16, 8192 }, { 17, 16 } };
	const size_t nine[9] = { 16, 16, 16, 16, 16, 16, 16, 16, 16 };
	struct tm_valslab s;
	tm_error err;

	(void)state;
	expect_einval(pow2_sizes, 0, "0 classes");
	expect_einval(nine, 9, "9 classes");
	expect_einval(NULL, 1, "size table");
	expect_einval(bad[0], 2, "class 1 object size 0");
	expect_einval(bad[1], 2, "class 1 object size 8");
	expect_einval(bad[2], 2, "class 1 object size 24");
	expect_einval(bad[3], 2, "class 0 object size 4112");
	expect_einval(bad[4], 2, "class 1 object size 8192");
	expect_einval(bad[5], 2, "class 0 object size 17");
	/* The extremes are accepted. */
	assert_int_equal(tm_valslab_init(&s, (const size_t[]){ 16, 4096 }, 2, &err), 0);
	assert_int_equal(s.cls[0].block_size, 16384);
	assert_int_equal(s.cls[1].block_size, 131072);
	tm_valslab_fini(&s);
}

/* ---- alignment and containment ---- */

static void check_placement(const struct tm_valslab *s, unsigned c, const void *p)
{
	const struct tm_valslab_class *k = &s->cls[c];
	uintptr_t b = block_of(s, c, p), a = (uintptr_t)p;

	assert_non_null(p);
	assert_int_equal(a & 15, 0);
	assert_true(a >= b + k->first_off);
	assert_true(a + k->obj_size <= b + k->block_size);
}

/* Three blocks and a bit of every class, each object checked for its
 * alignment and place, all patterns intact once the class is full. */
static void placement_run(const size_t *sizes, unsigned n)
{
	struct tm_valslab s;
	struct tm_valslab_stats st;
	tm_error err;

	assert_int_equal(tm_valslab_init(&s, sizes, n, &err), 0);
	for (unsigned c = 0; c < n; c++) {
		size_t cnt = 3 * (size_t)s.cls[c].per_block + 1;
		void **objs = calloc(cnt, sizeof(*objs));

		assert_non_null(objs);
		assert_true(s.cls[c].per_block >= 31);
		for (size_t i = 0; i < cnt; i++) {
			objs[i] = tm_valslab_alloc(&s, c);
			check_placement(&s, c, objs[i]);
			fill(objs[i], sizes[c], (uint64_t)c << 32 | i);
		}
		for (size_t i = 0; i < cnt; i++)
			assert_true(intact(objs[i], sizes[c], (uint64_t)c << 32 | i));
		tm_valslab_stats(&s, &st);
		assert_int_equal(st.in_use[c], cnt);
		assert_int_equal(st.blocks[c], 4);
		for (size_t i = 0; i < cnt; i++)
			tm_valslab_free(&s, c, objs[i]);
		free(objs);
	}
	tm_valslab_fini(&s);
}

static void test_alignment_every_class(void **state)
{
	(void)state;
	placement_run(pow2_sizes, 8);
	placement_run(odd_sizes, 4);
}

/* ---- random churn against a shadow model ---- */

struct live {
	void *p;
	unsigned cls;
	uint64_t key;
};

struct model {
	struct tm_valslab s;
	struct live *objs;
	size_t n, cap;
	size_t in_use[TM_VALSLAB_MAX_CLASSES];
	uint64_t next_key;
};

static int by_addr(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)((const struct live *)a)->p;
	uintptr_t y = (uintptr_t)((const struct live *)b)->p;

	return (x > y) - (x < y);
}

/* Distinct blocks holding a live object of class c (objs sorted by address). */
static size_t blocks_needed(const struct model *m, unsigned c)
{
	uintptr_t last = 0;
	size_t n = 0;

	for (size_t i = 0; i < m->n; i++) {
		uintptr_t b;

		if (m->objs[i].cls != c)
			continue;
		b = block_of(&m->s, c, m->objs[i].p);
		if (b != last)
			n++;
		last = b;
	}
	return n;
}

static void check_stats(const struct model *m)
{
	struct tm_valslab_stats st;
	size_t bytes = 0;

	tm_valslab_stats(&m->s, &st);
	assert_int_equal(st.nclasses, m->s.nclasses);
	for (unsigned c = 0; c < m->s.nclasses; c++) {
		const struct tm_valslab_class *k = &m->s.cls[c];

		assert_int_equal(st.in_use[c], m->in_use[c]);
		assert_true(st.blocks[c] * k->per_block >= m->in_use[c]);
		bytes += st.blocks[c] * k->block_size;
	}
	assert_int_equal(st.bytes_held, bytes);
}

/* Sort the live objects by address: neighbours must not overlap, every
 * pattern must be intact, and each class holds the blocks its live objects
 * are in plus at most one spare. */
static void check_all(struct model *m)
{
	struct tm_valslab_stats st;

	qsort(m->objs, m->n, sizeof(*m->objs), by_addr);
	for (size_t i = 0; i < m->n; i++) {
		const struct live *o = &m->objs[i];
		size_t sz = m->s.cls[o->cls].obj_size;

		if (i + 1 < m->n)
			assert_true((uintptr_t)o->p + sz <= (uintptr_t)m->objs[i + 1].p);
		assert_true(intact(o->p, sz, o->key));
	}
	tm_valslab_stats(&m->s, &st);
	for (unsigned c = 0; c < m->s.nclasses; c++) {
		size_t need = blocks_needed(m, c);

		assert_true(st.blocks[c] >= need);
		if (st.blocks[c] > need + 1)
			fail_msg("class %u holds %zu blocks, its live objects need %zu",
				 c, st.blocks[c], need);
	}
}

static void model_alloc(struct model *m, unsigned c)
{
	struct live *o;

	if (m->n == m->cap) {
		m->cap = m->cap ? 2 * m->cap : 1024;
		m->objs = realloc(m->objs, m->cap * sizeof(*m->objs));
		assert_non_null(m->objs);
	}
	o = &m->objs[m->n++];
	o->p = tm_valslab_alloc(&m->s, c);
	check_placement(&m->s, c, o->p);
	o->cls = c;
	o->key = ++m->next_key * 0x9e3779b97f4a7c15ull;
	fill(o->p, m->s.cls[c].obj_size, o->key);
	m->in_use[c]++;
}

static void model_free(struct model *m, size_t i)
{
	struct live o = m->objs[i];

	/* Its pattern must have survived every allocation since. */
	assert_true(intact(o.p, m->s.cls[o.cls].obj_size, o.key));
	tm_valslab_free(&m->s, o.cls, o.p);
	m->objs[i] = m->objs[--m->n];
	m->in_use[o.cls]--;
}

/* 100k operations in phases that grow and shrink the live set, so blocks
 * fill, fragment, empty and come back. */
static void test_churn_matches_model(void **state)
{
	const unsigned nops = 100000, phase = 7000;
	struct model m = { 0 };
	tm_error err;
	tm_rng rng;

	(void)state;
	tm_rng_seed(&rng, 0x51ab);
	assert_int_equal(tm_valslab_init(&m.s, pow2_sizes, 7, &err), 0);
	for (unsigned op = 0; op < nops; op++) {
		bool growing = (op / phase) % 2 == 0;
		unsigned p_alloc = growing ? 65 : 35;

		if (m.n == 0 || tm_rng_below(&rng, 100) < p_alloc)
			/* Small classes far more often, like stream records. */
			model_alloc(&m, (unsigned)(tm_rng_below(&rng, 4) == 0
				     ? tm_rng_below(&rng, 7) : tm_rng_below(&rng, 3)));
		else
			model_free(&m, (size_t)tm_rng_below(&rng, m.n));
		check_stats(&m);
		if (op % 2500 == 0)
			check_all(&m);
	}
	check_all(&m);
	while (m.n)
		model_free(&m, m.n - 1);
	check_stats(&m);
	free(m.objs);
	tm_valslab_fini(&m.s);
}

/* ---- emptying, the spare, fini ---- */

static void test_empty_keeps_one_spare(void **state)
{
	struct tm_valslab s;
	struct tm_valslab_stats st;
	tm_error err;
	tm_rng rng;

	(void)state;
	tm_rng_seed(&rng, 7);
	assert_int_equal(tm_valslab_init(&s, pow2_sizes, 8, &err), 0);
	for (unsigned c = 0; c < 6; c++) {   /* classes 6, 7 never used */
		size_t cnt = 5 * (size_t)s.cls[c].per_block;
		void **objs = calloc(cnt, sizeof(*objs));

		assert_non_null(objs);
		for (size_t i = 0; i < cnt; i++)
			objs[i] = tm_valslab_alloc(&s, c);
		for (size_t i = cnt; i > 1; i--) {   /* free in random order */
			size_t j = (size_t)tm_rng_below(&rng, i);
			void *t = objs[i - 1];

			objs[i - 1] = objs[j];
			objs[j] = t;
		}
		for (size_t i = 0; i < cnt; i++)
			tm_valslab_free(&s, c, objs[i]);
		free(objs);
	}
	tm_valslab_stats(&s, &st);
	for (unsigned c = 0; c < 8; c++) {
		assert_int_equal(st.in_use[c], 0);
		assert_int_equal(st.blocks[c], c < 6 ? 1 : 0);
	}
	assert_int_equal(st.bytes_held, 6 * 16384);
	/* A swap-out/in cycle on the emptied store reuses the spare. */
	for (unsigned round = 0; round < 3; round++) {
		void *p = tm_valslab_alloc(&s, 2);

		tm_valslab_stats(&s, &st);
		assert_int_equal(st.blocks[2], 1);
		assert_int_equal(st.bytes_held, 6 * 16384);
		tm_valslab_free(&s, 2, p);
	}
	tm_valslab_fini(&s);
}

/* A block that becomes free while another of its class is partial: the
 * partial one serves the next allocation, the free one is the spare, and a
 * second emptied block is given back at once. */
static void test_second_empty_block_released(void **state)
{
	struct tm_valslab s;
	struct tm_valslab_stats st;
	tm_error err;
	uint32_t per;
	void **objs;

	(void)state;
	assert_int_equal(tm_valslab_init(&s, (const size_t[]){ 64 }, 1, &err), 0);
	per = s.cls[0].per_block;
	objs = calloc(3 * (size_t)per, sizeof(*objs));
	assert_non_null(objs);
	for (size_t i = 0; i < 3 * (size_t)per; i++)
		objs[i] = tm_valslab_alloc(&s, 0);
	/* Blocks are filled one at a time, so objs[k*per ..] is block k. */
	for (uint32_t i = 0; i < per; i++)
		tm_valslab_free(&s, 0, objs[i]);             /* block 0: spare */
	tm_valslab_free(&s, 0, objs[2 * (size_t)per]);   /* block 2: partial */
	for (uint32_t i = 0; i < per; i++)
		tm_valslab_free(&s, 0, objs[per + i]);       /* block 1: released */
	tm_valslab_stats(&s, &st);
	assert_int_equal(st.blocks[0], 2);
	assert_int_equal(st.in_use[0], per - 1);
	objs[0] = tm_valslab_alloc(&s, 0);
	assert_int_equal(block_of(&s, 0, objs[0]), block_of(&s, 0, objs[2 * (size_t)per]));
	tm_valslab_free(&s, 0, objs[0]);
	free(objs);
	tm_valslab_fini(&s);
}

/* Objects left allocated in full, partial and spare blocks of several
 * classes: fini frees every block (LeakSanitizer in the ASan build would
 * report one it missed) and the slab can be set up again. */
static void test_fini_after_partial_use(void **state)
{
	struct tm_valslab s;
	struct tm_valslab_stats st;
	tm_error err;

	(void)state;
	for (unsigned round = 0; round < 2; round++) {
		assert_int_equal(tm_valslab_init(&s, pow2_sizes, 8, &err), 0);
		for (unsigned c = 0; c < 8; c++) {
			size_t cnt = 2 * (size_t)s.cls[c].per_block + c;
			void *last = NULL;

			for (size_t i = 0; i < cnt; i++) {
				last = tm_valslab_alloc(&s, c);
				assert_non_null(last);
			}
			if (c % 2)
				tm_valslab_free(&s, c, last);
		}
		tm_valslab_stats(&s, &st);
		assert_true(st.bytes_held > 0);
		tm_valslab_fini(&s);
		tm_valslab_stats(&s, &st);
		assert_int_equal(st.bytes_held, 0);
		for (unsigned c = 0; c < 8; c++)
			assert_int_equal(st.blocks[c], 0);
	}
}

/* ---- debug checks: a bad free aborts with a message (fork death tests) ---- */

#ifdef TM_VALSLAB_CHECKS
/* Run fn in a child with stderr on a pipe: it must die of SIGABRT and
 * say needle. */
static void expect_abort(void (*fn)(void), const char *needle)
{
	char buf[1024] = { 0 };
	size_t got = 0;
	int pfd[2], status;
	pid_t pid;
	ssize_t r;

	assert_int_equal(pipe(pfd), 0);
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		signal(SIGABRT, SIG_DFL);
		dup2(pfd[1], 2);
		close(pfd[0]);
		fn();
		_exit(0);   /* survived: the parent reports it */
	}
	close(pfd[1]);
	while (got < sizeof(buf) - 1 &&
	       (r = read(pfd[0], buf + got, sizeof(buf) - 1 - got)) > 0)
		got += (size_t)r;
	close(pfd[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGABRT)
		fail_msg("child did not abort (status 0x%x) for '%s'; stderr: %s",
			 status, needle, buf);
	if (!strstr(buf, needle))
		fail_msg("abort message '%s' does not say '%s'", buf, needle);
}

static struct tm_valslab child_slab;

static void child_init(void)
{
	tm_error err;

	if (tm_valslab_init(&child_slab, pow2_sizes, 8, &err))
		_exit(3);
}

static void free_interior(void)
{
	char *p;

	child_init();
	p = tm_valslab_alloc(&child_slab, 1);
	tm_valslab_free(&child_slab, 1, p + 16);
}

static void free_wrong_class(void)
{
	child_init();   /* classes 0 and 1 both have 16 KiB blocks */
	tm_valslab_free(&child_slab, 1, tm_valslab_alloc(&child_slab, 0));
}

static void free_header(void)
{
	char *p;

	child_init();
	p = tm_valslab_alloc(&child_slab, 2);
	tm_valslab_free(&child_slab, 2, (char *)block_of(&child_slab, 2, p) + 16);
	(void)p;
}

static void free_never_allocated(void)
{
	char *p;

	child_init();
	p = tm_valslab_alloc(&child_slab, 2);
	tm_valslab_free(&child_slab, 2, p + 3 * child_slab.cls[2].obj_size);
}

static void free_other_slab(void)
{
	struct tm_valslab other;
	tm_error err;

	child_init();
	if (tm_valslab_init(&other, pow2_sizes, 8, &err))
		_exit(3);
	tm_valslab_alloc(&child_slab, 3);
	tm_valslab_free(&child_slab, 3, tm_valslab_alloc(&other, 3));
}

static void free_twice(void)
{
	void *p;

	child_init();
	p = tm_valslab_alloc(&child_slab, 4);
	tm_valslab_free(&child_slab, 4, p);   /* its block is now the spare */
	tm_valslab_free(&child_slab, 4, p);
}

static void alloc_bad_class(void)
{
	child_init();
	tm_valslab_alloc(&child_slab, 8);
}

static void test_bad_free_aborts(void **state)
{
	(void)state;
	expect_abort(free_interior, "not an object handed out");
	expect_abort(free_wrong_class, "not in a block of this slab and class");
	expect_abort(free_header, "offset 16 of its block");
	expect_abort(free_never_allocated, "not an object handed out");
	expect_abort(free_other_slab, "not in a block of this slab and class");
	expect_abort(free_twice, "double free");
	expect_abort(alloc_bad_class, "class 8 out of range");
}
#else
static void test_bad_free_aborts(void **state)
{
	(void)state;
	tm_test_skip(NULL, "release build: the valslab free checks are compiled out");
}
#endif

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_rejects_bad_sizes),
		cmocka_unit_test(test_alignment_every_class),
		cmocka_unit_test(test_churn_matches_model),
		cmocka_unit_test(test_empty_keeps_one_spare),
		cmocka_unit_test(test_second_empty_block_released),
		cmocka_unit_test(test_fini_after_partial_use),
		cmocka_unit_test(test_bad_free_aborts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
