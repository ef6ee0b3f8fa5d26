/*
 * tagmem/error.h - the error record every tagmem call fills.
 *
 * Every public function returns 0 on success or a negative errno, and when
 * it fails it also fills a caller-owned tm_error with a sentence that says
 * what failed and where (region, offset, address, channel). There is no
 * global errno-like state: the record is the caller's, so calls on different
 * records are independent and thread-safe.
 */
#ifndef TAGMEM_ERROR_H
#define TAGMEM_ERROR_H

#include "tagmem/api.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TM_ERROR_MSG_MAX 512

typedef struct tm_error {
	int code;                       /* negative errno; 0 when no error */
	char msg[TM_ERROR_MSG_MAX];     /* human sentence, NUL-terminated */
} tm_error;

/* Reset to "no error". err may be NULL. */
TM_API void tm_error_clear(tm_error *err);

/*
 * Record an error: code must be a negative errno. Returns code so callers
 * can write `return tm_error_set(err, -EINVAL, "...")`. err may be NULL, in
 * which case only the code is returned. The first error recorded wins only
 * if TM_ERROR_KEEP_FIRST is used (see tm_error_setf_keep); tm_error_set
 * always overwrites.
 */
TM_API int tm_error_set(tm_error *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Like tm_error_set but keeps an earlier, more specific message if one is
 * already recorded; prefixes context instead ("while X: <earlier>"). */
TM_API int tm_error_wrap(tm_error *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The message, or "" when there is none. Never NULL. */
TM_API const char *tm_error_msg(const tm_error *err);

#ifdef __cplusplus
}
#endif
#endif
