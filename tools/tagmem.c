/*
 * tagmem.c - the tagmem command-line tool: routes `tagmem COMMAND ...` to the
 * command that owns it. The commands themselves live in cmd_<part>.c files,
 * one per part of the system, so parts evolve without touching this file.
 */
#include <stdio.h>
#include <string.h>

#include "tools/cmds.h"

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

static int cmd_bench(int argc, char **argv);

static const struct command commands[] = {
#ifdef TM_FULL
	{ "demo", tm_cmd_demo, "live-migrate a tagged workload and verify it bit for bit" },
	{ "migrate", tm_cmd_migrate, "live migration: `migrate send` / `migrate recv`" },
	{ "swap", tm_cmd_swap, "tagged swap with large folios (`swap demo`)" },
	{ "snapshot", tm_cmd_snapshot, "snapshot files with tags: save|restore|info|verify" },
	{ "core", tm_cmd_core, "ELF core dumps with MTE tag segments (gdb reads them)" },
	{ "storage-sim", tm_cmd_storage_sim, "model the MTE tag-storage reuse policies" },
#endif
	{ "tags", tm_cmd_tags, "tags-core self-demonstration (formats, codecs, zero pages)" },
	{ "corpus", tm_cmd_corpus, "generate tag layouts and report codec ratios" },
	{ "bench", cmd_bench, "benchmarks printing JSON: bench tags|migrate|swap|snapshot|storage" },
};

static const struct command benches[] = {
	{ "tags", tm_bench_tags, "pack/unpack, zero detection, EA0 and stream codec" },
#ifdef TM_FULL
	{ "migrate", tm_bench_migrate, "migration throughput against a raw socket" },
	{ "swap", tm_bench_swap, "swap out/in with and without tags, tag-store size" },
	{ "snapshot", tm_bench_snapshot, "snapshot save/restore against plain I/O" },
	{ "storage", tm_bench_storage, "tag-storage simulator event rate" },
#endif
};

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static void list(FILE *f, const struct command *c, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fprintf(f, "  %-12s %s\n", c[i].name, c[i].summary);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: tagmem [--help] [--version] COMMAND [ARGS]\n\n"
		   "Move memory together with its memory tags (Arm MTE).\n\n"
		   "commands:\n");
	list(f, commands, N_OF(commands));
	fprintf(f, "\n`tagmem COMMAND --help` describes each command.\n");
}

static int dispatch(const struct command *c, size_t n, int argc, char **argv,
		    const char *what)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(argv[0], c[i].name) == 0)
			return c[i].run(argc, argv);
	fprintf(stderr, "tagmem: unknown %s '%s' (see tagmem --help)\n", what, argv[0]);
	return 2;
}

static int cmd_bench(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		FILE *f = argc < 2 ? stderr : stdout;

		fprintf(f, "usage: tagmem bench PART [--json] [OPTIONS]\n\nparts:\n");
		list(f, benches, N_OF(benches));
		return argc < 2 ? 2 : 0;
	}
	return dispatch(benches, N_OF(benches), argc - 1, argv + 1, "benchmark");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("tagmem %s\n", TAGMEM_VERSION);
		return 0;
	}
	return dispatch(commands, N_OF(commands), argc - 1, argv + 1, "command");
}
