/* cmd_migrate.c - placeholder until this part's commands land. */
#include <stdio.h>
#include "tools/cmds.h"

int tm_cmd_migrate(int argc, char **argv)
{
	(void)argc;
	fprintf(stderr, "tagmem %s: not built yet\n", argv[0]);
	return 2;
}

int tm_cmd_demo(int argc, char **argv)
{
	(void)argc;
	fprintf(stderr, "tagmem %s: not built yet\n", argv[0]);
	return 2;
}
