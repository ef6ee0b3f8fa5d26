/*
 * snap_test.h - shared by the snapshot tests: a deterministic workload of
 * tagged regions whose every page has a known class (zero, tag-only,
 * untagged data, data with tags), a scratch directory per test run, and
 * small file helpers (copy, flip a byte, truncate).
 */
#ifndef TM_TEST_SNAP_TEST_H
#define TM_TEST_SNAP_TEST_H

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include "tests/test_skip.h"

#include "common/util.h"
#include "tagmem/region.h"
#include "tagmem/snapshot.h"
#include "tagmem/tags.h"

enum st_class { ST_ZERO, ST_TAG_ONLY, ST_DATA_ONLY, ST_NORMAL };

typedef struct st_counts {
	uint64_t pages, normal, tagged, tag_only, zero;
} st_counts;

/* The class of page pg of a workload region (seeded). */
static inline enum st_class st_class_of(uint64_t seed, size_t pg, bool tagged)
{
	tm_rng r;
	uint64_t x;

	tm_rng_seed(&r, seed * 1000003u + pg);
	x = tm_rng_below(&r, 100);
	if (x < 10)
		return ST_ZERO;
	if (!tagged)
		return ST_DATA_ONLY;
	if (x < 16)
		return ST_TAG_ONLY;
	if (x < 26)
		return ST_DATA_ONLY;
	return ST_NORMAL;
}

/* Page pg's data (half random, half a repeating pattern, so zstd has
 * something to do) and packed tags (corpus mix, never all zero). */
static inline void st_page(const tm_geom *g, uint64_t seed, size_t pg,
			   bool tagged, uint8_t *data, uint8_t *tags,
			   enum st_class *cls)
{
	enum st_class c = st_class_of(seed, pg, tagged);
	size_t ps = g->page_size, tb = tm_geom_packed_bytes(g);
	tm_rng r;

	*cls = c;
	memset(data, 0, ps);
	if (tb)
		memset(tags, 0, tb);
	tm_rng_seed(&r, seed ^ (pg * 0x9e3779b97f4a7c15ull));
	if (c == ST_DATA_ONLY || c == ST_NORMAL) {
		for (size_t i = 0; i < ps / 2; i += 8) {
			uint64_t v = tm_rng_next(&r);
			memcpy(data + i, &v, 8);
		}
		for (size_t i = ps / 2; i < ps; i++)
			data[i] = (uint8_t)(i * 7 + pg);
	}
	if (c == ST_TAG_ONLY || c == ST_NORMAL) {
		tm_corpus_fill(TM_CORPUS_MIX, g, seed + pg, tags, 1);
		if (tm_mem_is_zero(tags, tb))
			tm_tag_set(tags, pg % tm_geom_granules(g), (uint8_t)(1 + pg % 15));
	}
}

/* Create a region and fill it with the workload; counts accumulate. */
static inline tm_region *st_region(const char *name, uint32_t ps,
				   size_t npages, bool tagged, uint64_t seed,
				   st_counts *cnt)
{
	tm_region_config cfg = { .name = name, .size = npages * ps,
				 .backend = TM_BACKEND_SOFT };
	uint8_t *data = malloc(ps), *tags = malloc(ps / 32 + 1);
	tm_region *r = NULL;
	tm_error err;

	tm_error_clear(&err);
	if (tagged)
		assert_int_equal(tm_geom_mte(&cfg.geom, ps, &err), 0);
	else
		assert_int_equal(tm_geom_init(&cfg.geom, TM_META_NONE, ps, 0, 0, &err), 0);
	assert_int_equal(tm_region_create(&cfg, &r, &err), 0);
	for (size_t pg = 0; pg < npages; pg++) {
		enum st_class c;

		st_page(&cfg.geom, seed, pg, tagged, data, tags, &c);
		if (c != ST_ZERO)
			assert_int_equal(tm_region_write_page(r, pg, data,
				(c == ST_TAG_ONLY || c == ST_NORMAL) ? tags : NULL, &err), 0);
		if (cnt) {
			cnt->pages++;
			cnt->normal += c == ST_DATA_ONLY || c == ST_NORMAL;
			cnt->tagged += c == ST_TAG_ONLY || c == ST_NORMAL;
			cnt->tag_only += c == ST_TAG_ONLY;
			cnt->zero += c == ST_ZERO;
		}
	}
	free(data);
	free(tags);
	return r;
}

/* Fill every page of r with a recognisable pattern (data and tags). */
static inline void st_pattern(tm_region *r, uint8_t byte)
{
	const tm_geom *g = tm_region_geom(r);
	size_t ps = g->page_size, tb = tm_geom_packed_bytes(g);
	uint8_t *data = malloc(ps), *tags = malloc(tb + 1);
	tm_error err;

	memset(data, byte, ps);
	memset(tags, 0x5a, tb + 1);
	for (size_t pg = 0; pg < tm_region_npages(r); pg++)
		assert_int_equal(tm_region_write_page(r, pg, data, tb ? tags : NULL, &err), 0);
	free(data);
	free(tags);
}

/* Whether page pg of a and b hold the same data and tags. */
static inline bool st_page_equal(tm_region *a, tm_region *b, size_t pg)
{
	const tm_geom *g = tm_region_geom(a);
	size_t ps = g->page_size, tb = tm_geom_packed_bytes(g);
	uint8_t *da = malloc(ps), *db = malloc(ps), *ta = calloc(1, tb + 1),
		*tb2 = calloc(1, tb + 1);
	tm_error err;
	bool eq;

	assert_int_equal(tm_region_read_page(a, pg, da, tb ? ta : NULL, &err), 0);
	assert_int_equal(tm_region_read_page(b, pg, db, tb ? tb2 : NULL, &err), 0);
	eq = memcmp(da, db, ps) == 0 && memcmp(ta, tb2, tb) == 0;
	free(da);
	free(db);
	free(ta);
	free(tb2);
	return eq;
}

static inline uint64_t st_digest(tm_region *r)
{
	uint64_t d = 0;
	tm_error err;

	assert_int_equal(tm_region_digest(r, &d, &err), 0);
	return d;
}

/* A fresh scratch directory under $TMPDIR (default /var/tmp: a real disk
 * file system, so O_DIRECT is exercised). */
static inline void st_tmpdir(char *out, size_t len, const char *tag)
{
	const char *base = getenv("TMPDIR");

	snprintf(out, len, "%s/tagmem-%s-XXXXXX", base && *base ? base : "/var/tmp", tag);
	assert_non_null(mkdtemp(out));
}

static inline void st_rmdir(const char *dir)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

/* Each test program's scratch directory `dir` (declared by the program)
 * and the cmocka group setup/teardown that make and remove it. */
#define ST_DIR_GROUP(tag)                                                \
	static int st_group_setup(void **state)                         \
	{                                                                \
		(void)state;                                             \
		st_tmpdir(dir, sizeof(dir), tag);                        \
		return 0;                                                \
	}                                                                \
	static int st_group_teardown(void **state)                      \
	{                                                                \
		(void)state;                                             \
		st_rmdir(dir);                                           \
		return 0;                                                \
	}

/* Copy a file, leaving all-zero 4 KiB blocks as holes (files stay sparse). */
static inline void st_copy(const char *from, const char *to)
{
	int in, out;
	uint8_t buf[4096];
	off_t at = 0;
	ssize_t n;

	/* unlink, not O_TRUNC: ext4 flushes a file truncated and rewritten */
	unlink(to);
	in = open(from, O_RDONLY);
	out = open(to, O_WRONLY | O_CREAT | O_EXCL, 0644);
	assert_true(in >= 0 && out >= 0);
	while ((n = read(in, buf, sizeof(buf))) > 0) {
		if (!tm_mem_is_zero(buf, (size_t)n))
			assert_int_equal(pwrite(out, buf, (size_t)n, at), n);
		at += n;
	}
	assert_int_equal(n, 0);
	assert_int_equal(ftruncate(out, at), 0);
	close(in);
	close(out);
}

static inline uint64_t st_file_size(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return (uint64_t)st.st_size;
}

static inline void st_flip(const char *path, uint64_t off, uint8_t mask)
{
	int fd = open(path, O_RDWR);
	uint8_t b;

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &b, 1, (off_t)off), 1);
	b ^= mask;
	assert_int_equal(pwrite(fd, &b, 1, (off_t)off), 1);
	close(fd);
}

static inline void st_truncate(const char *path, uint64_t len)
{
	assert_int_equal(truncate(path, (off_t)len), 0);
}

/* ---- a real process to dump -------------------------------------- */

/* Start /bin/sleep (in cwd dir, core dumps allowed) and wait until it runs
 * the new program; *base receives where its ELF file is mapped. */
static inline pid_t st_spawn_sleep(const char *cwd, uint64_t *base)
{
	char path[64], line[512];
	pid_t pid = fork();
	FILE *f;

	assert_true(pid >= 0);
	if (pid == 0) {
		struct rlimit rl = { RLIM_INFINITY, RLIM_INFINITY };

		if (chdir(cwd) != 0)
			_exit(126);
		setrlimit(RLIMIT_CORE, &rl);
		execl("/bin/sleep", "sleep", "60", (char *)NULL);
		_exit(127);
	}
	*base = 0;
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	for (int tries = 0; tries < 5000 && !*base; tries++) {
		f = fopen(path, "r");
		while (f && fgets(line, sizeof(line), f)) {
			unsigned long long lo, off;

			if (strstr(line, "/sleep") &&
			    sscanf(line, "%llx-%*x %*s %llx", &lo, &off) == 2 && off == 0) {
				*base = lo;
				break;
			}
		}
		if (f)
			fclose(f);
		if (!*base)
			usleep(1000);
	}
	assert_true(*base != 0);
	return pid;
}

/* Run argv[0] with argv (NULL-terminated); stdout and stderr together into
 * out (NUL-terminated, cut at cap - 1). Returns the exit status, or 128 +
 * the signal. */
static inline int st_run(char *const argv[], char *out, size_t cap)
{
	int fd[2], status;
	size_t len = 0;
	ssize_t r;
	pid_t pid;

	assert_int_equal(pipe(fd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(fd[1], 1);
		dup2(fd[1], 2);
		close(fd[0]);
		execv(argv[0], argv);
		_exit(127);
	}
	close(fd[1]);
	while (len + 1 < cap && (r = read(fd[0], out + len, cap - 1 - len)) > 0)
		len += (size_t)r;
	out[len] = 0;
	close(fd[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

#endif
