/* bench_tags.c - placeholder until the tags benchmark lands. */
#include <stdio.h>
#include "tools/cmds.h"

int tm_bench_tags(int argc, char **argv)
{
	(void)argc; (void)argv;
	fprintf(stderr, "tagmem bench tags: not built yet\n");
	return 2;
}
