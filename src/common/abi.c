/*
 * abi.c - copying the config structs callers pass in and the defaults the
 * library hands out, honouring the caller's struct_size (see abi.h and
 * tagmem/api.h). The only place that knows the rule, so every struct
 * follows it the same way and says the same thing when it is broken.
 */
#include "common/abi.h"

#include <errno.h>
#include <string.h>

#include "tagmem/tagmem.h"

/* struct_size is the first member of every struct that grows. */
#define FIRST(t) _Static_assert(offsetof(t, struct_size) == 0 && \
				TM_ABI_MIN_##t <= sizeof(t), #t)
FIRST(tm_region_config);
FIRST(tm_migrate_config);
FIRST(tm_migrate_hooks);
FIRST(tm_snap_opts);
FIRST(tm_core_opts);
FIRST(tm_swapfile_config);
FIRST(tm_pager_config);
FIRST(tm_ss_config);

static int check_size(size_t usize, size_t min_size, const char *type,
		      tm_error *err)
{
	if (usize < min_size)
		return tm_error_set(err, -EINVAL,
				    "%s.struct_size is %zu, smaller than its first "
				    "layout (%zu bytes): set it to sizeof(%s), or 0 "
				    "for the first layout", type, usize, min_size, type);
	if (usize > TM_STRUCT_SIZE_MAX)
		return tm_error_set(err, -EINVAL,
				    "%s.struct_size is %zu, more than any tagmem "
				    "struct can be (%u): not initialised?", type,
				    usize, TM_STRUCT_SIZE_MAX);
	return 0;
}

int tm_abi_copy_in(void *dst, size_t ksize, const void *src, size_t min_size,
		   const char *type, tm_error *err)
{
	const uint8_t *s = src;
	uint32_t field;
	size_t usize;
	int rc;

	if (!src)
		return tm_error_set(err, -EINVAL, "%s: NULL", type);
	memcpy(&field, s, sizeof(field));
	usize = field ? field : min_size;
	rc = check_size(usize, min_size, type, err);
	if (rc)
		return rc;
	for (size_t i = ksize; i < usize; i++)
		if (s[i])
			return tm_error_set(err, -E2BIG,
					    "%s.struct_size is %zu but this libtagmem "
					    "(%s) knows %zu bytes, and byte %zu is 0x%02x, "
					    "not zero: the caller sets a field this "
					    "library does not have (link a newer "
					    "libtagmem)", type, usize,
					    tm_version_string(), ksize, i, s[i]);
	memcpy(dst, src, usize < ksize ? usize : ksize);
	if (usize < ksize)
		memset((uint8_t *)dst + usize, 0, ksize - usize);
	field = (uint32_t)ksize;
	memcpy(dst, &field, sizeof(field));
	return 0;
}

int tm_abi_copy_out(void *dst, size_t usize, const void *full, size_t ksize,
		    size_t min_size, const char *type, tm_error *err)
{
	uint32_t field = (uint32_t)usize;
	int rc = check_size(usize, min_size, type, err);

	if (rc)
		return rc;
	memcpy(dst, full, usize < ksize ? usize : ksize);
	if (usize > ksize)
		memset((uint8_t *)dst + ksize, 0, usize - ksize);
	memcpy(dst, &field, sizeof(field));
	return 0;
}
