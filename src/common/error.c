/*
 * error.c - filling tm_error records.
 *
 * Kept tiny on purpose: every module reports through these two functions,
 * so the message format (what, then where) stays uniform across tagmem.
 */
#include "tagmem/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void tm_error_clear(tm_error *err)
{
	if (!err)
		return;
	err->code = 0;
	err->msg[0] = '\0';
}

int tm_error_set(tm_error *err, int code, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return code;
	err->code = code;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return code;
}

/* Joins "prefix: inner" into err->msg, cutting the tail when too long:
 * the front of a message (what and where) is the part worth keeping. */
static void join_msg(tm_error *err, const char *prefix, const char *inner)
{
	size_t cap = sizeof(err->msg) - 1;
	size_t lp = strnlen(prefix, cap);
	size_t n = lp;

	memmove(err->msg, prefix, lp);
	if (inner[0] != '\0' && n + 2 < cap) {
		size_t li = strnlen(inner, cap - n - 2);

		err->msg[n++] = ':';
		err->msg[n++] = ' ';
		memcpy(err->msg + n, inner, li);
		n += li;
	}
	err->msg[n] = '\0';
}

int tm_error_wrap(tm_error *err, int code, const char *fmt, ...)
{
	char prefix[TM_ERROR_MSG_MAX];
	char inner[TM_ERROR_MSG_MAX];
	va_list ap;

	if (!err)
		return code;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	memcpy(inner, err->msg, sizeof(inner));
	inner[sizeof(inner) - 1] = '\0';
	if (err->code == 0)
		inner[0] = '\0';
	join_msg(err, prefix, inner);
	err->code = code;
	return code;
}

const char *tm_error_msg(const tm_error *err)
{
	return err ? err->msg : "";
}
