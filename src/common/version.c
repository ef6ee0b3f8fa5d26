/*
 * version.c - the version of the library actually running (tagmem/api.h),
 * so a program can tell it apart from the headers it was compiled against.
 */
#include "tagmem/api.h"

unsigned tm_version_number(void)
{
	return TAGMEM_VERSION_NUMBER;
}

const char *tm_version_string(void)
{
	return TAGMEM_VERSION_STRING;
}
