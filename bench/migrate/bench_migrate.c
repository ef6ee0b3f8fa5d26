/* bench_migrate.c - placeholder until the migrate benchmark lands. */
#include <stdio.h>
#include "tools/cmds.h"

int tm_bench_migrate(int argc, char **argv)
{
	(void)argc; (void)argv;
	fprintf(stderr, "tagmem bench migrate: not built yet\n");
	return 2;
}
