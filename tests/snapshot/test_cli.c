/*
 * test_cli.c - the commands as a user runs them: `tagmem snapshot
 * save|info|verify|restore [--lazy]` and `tagmem core --out|--read`, on the
 * real binary (path passed by meson as argv[1]). Exit codes (0 ok, 1
 * failure, 2 usage) and the facts the output must carry: page classes and
 * the tag-codec ratio in info, every bad chunk with its offset in verify,
 * a truncated file named as such, tags read back from a core.
 */
#include "snap_test.h"

#include <sys/wait.h>

static char dir[256];
static const char *tagmem;

/* Run tagmem with args (NULL-terminated); output (stdout + stderr) in out. */
static int run(char *out, size_t cap, ...)
{
	char *argv[32];
	va_list ap;
	int n = 0;

	argv[n++] = (char *)tagmem;
	va_start(ap, cap);
	while (n < 31 && (argv[n] = va_arg(ap, char *)))
		n++;
	va_end(ap);
	argv[n] = NULL;
	return st_run(argv, out, cap);
}

#define HAS(s) do { if (!strstr(out, (s))) fail_msg("output lacks \"%s\":\n%s", (s), out); } while (0)

static void test_snapshot_commands(void **state)
{
	char out[16384], path[512], cut[600];

	(void)state;
	snprintf(path, sizeof(path), "%s/cli.snap", dir);
	snprintf(cut, sizeof(cut), "%s/cut.snap", dir);
	assert_int_equal(run(out, sizeof(out), "snapshot", "save", "--out", path, "--regions", "3",
			     "--size", "2M", "--zstd", "--threads", "3", NULL), 0);
	HAS("saved");
	HAS("tag-only");
	assert_int_equal(run(out, sizeof(out), "snapshot", "info", path, NULL), 0);
	HAS("region 2   'demo2'");
	HAS("normal");
	HAS("tag-only");
	HAS("zero");
	HAS("tag codec");
	HAS("ratio");
	HAS("digest 0x");
	assert_int_equal(run(out, sizeof(out), "snapshot", "verify", path, NULL), 0);
	HAS("0 bad");
	assert_int_equal(run(out, sizeof(out), "snapshot", "restore", path, NULL), 0);
	HAS("verified");
	assert_int_equal(run(out, sizeof(out), "snapshot", "restore", path, "--lazy", NULL), 0);
	HAS("faulted in");
	HAS("verified");

	/* a damaged chunk: verify lists it with its offset, restore fails */
	st_flip(path, (1u << 20) + 100, 0x01);
	assert_int_equal(run(out, sizeof(out), "snapshot", "verify", path, NULL), 1);
	HAS("bad chunk");
	HAS("offset");
	HAS("1 bad");
	assert_int_equal(run(out, sizeof(out), "snapshot", "restore", path, NULL), 1);
	HAS("checksum mismatch");
	st_flip(path, (1u << 20) + 100, 0x01);

	st_copy(path, cut);
	st_truncate(cut, st_file_size(path) - 4096);
	assert_int_equal(run(out, sizeof(out), "snapshot", "info", cut, NULL), 1);
	HAS("truncated");
	HAS("offset");
	assert_int_equal(run(out, sizeof(out), "snapshot", "save", NULL), 2);
	assert_int_equal(run(out, sizeof(out), "snapshot", "bogus", NULL), 2);
	assert_int_equal(run(out, sizeof(out), "snapshot", "--help", NULL), 0);
	HAS("usage");
	unlink(cut);
	unlink(path);
}

static void test_core_commands(void **state)
{
	char out[16384], path[512], snap[512];
	char first[256], *nl;

	(void)state;
	snprintf(path, sizeof(path), "%s/cli.core", dir);
	snprintf(snap, sizeof(snap), "%s/not-a-core", dir);
	assert_int_equal(run(out, sizeof(out), "core", "--out", path, "--regions", "2",
			     "--size", "64K", NULL), 0);
	HAS("PT_AARCH64_MEMTAG_MTE");
	/* the tags core --out printed, as core --read --tags prints them */
	nl = strstr(out, "0x000010000000:");
	assert_non_null(nl);
	snprintf(first, sizeof(first), "%.*s", (int)(strchr(nl, '\n') - nl), nl);
	assert_int_equal(run(out, sizeof(out), "core", "--read", path, NULL), 0);
	HAS("e_machine 183 (AArch64)");
	HAS("MTE yes");
	HAS("2 PT_LOAD, 2 with MTE tags");
	HAS("SEGV_MTESERR");
	assert_int_equal(run(out, sizeof(out), "core", "--read", path, "--tags", "0x10000000:512", NULL), 0);
	HAS(first);
	assert_int_equal(run(out, sizeof(out), "core", "--read", path, "--tags", "0x30000000", NULL), 1);
	HAS("no segment with MTE tags");
	assert_int_equal(run(out, sizeof(out), "snapshot", "save", "--out", snap, "--size", "64K",
			     "--regions", "1", NULL), 0);
	assert_int_equal(run(out, sizeof(out), "core", "--read", snap, NULL), 1);
	HAS("not an ELF");
	assert_int_equal(run(out, sizeof(out), "core", NULL), 2);
	unlink(path);
	unlink(snap);
}

ST_DIR_GROUP("cli")

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_snapshot_commands),
		cmocka_unit_test(test_core_commands),
	};

	if (argc < 2) {
		fprintf(stderr, "usage: %s PATH-TO-TAGMEM\n", argv[0]);
		return 2;
	}
	tagmem = argv[1];
	return cmocka_run_group_tests(tests, st_group_setup, st_group_teardown);
}
