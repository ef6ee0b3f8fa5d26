/* bench_swap.c - placeholder until the swap benchmark lands. */
#include <stdio.h>
#include "tools/cmds.h"

int tm_bench_swap(int argc, char **argv)
{
	(void)argc; (void)argv;
	fprintf(stderr, "tagmem bench swap: not built yet\n");
	return 2;
}
