/* bench_snapshot.c - placeholder until the snapshot benchmark lands. */
#include <stdio.h>
#include "tools/cmds.h"

int tm_bench_snapshot(int argc, char **argv)
{
	(void)argc; (void)argv;
	fprintf(stderr, "tagmem bench snapshot: not built yet\n");
	return 2;
}
