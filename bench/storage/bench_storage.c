/* bench_storage.c - placeholder until the storage benchmark lands. */
#include <stdio.h>
#include "tools/cmds.h"

int tm_bench_storage(int argc, char **argv)
{
	(void)argc; (void)argv;
	fprintf(stderr, "tagmem bench storage: not built yet\n");
	return 2;
}
