/*
 * abi.h - internal: how the library reads the config structs callers pass
 * in, so that those structs can grow without breaking callers built
 * against older (or newer) headers. The rule is in tagmem/api.h ("Structs
 * that grow") and docs/ABI.md; this is the library's half of it.
 *
 * Every entry point that takes such a struct copies it first, with
 * TM_ABI_COPY_IN, into a struct of the library's own size, and works on the
 * copy only: it never reads past the caller's struct_size, and the fields
 * the caller's version did not have read as zero.
 *
 * Adding a field to one of these structs (see docs/ABI.md):
 *   - only at the end, starting at or after the previous sizeof (never in
 *     tail padding: a caller's padding bytes are not guaranteed zero);
 *   - zero must mean the behaviour before the field existed;
 *   - leave its TM_ABI_MIN_* below alone: that is the 0.1 layout, which
 *     struct_size 0 stands for, forever.
 */
#ifndef TM_COMMON_ABI_H
#define TM_COMMON_ABI_H

#include <stddef.h>
#include <stdint.h>

#include "tagmem/error.h"

/* End of member m of type t: the smallest size that holds it. */
#define TM_ABI_END(t, m) (offsetof(t, m) + sizeof(((t *)0)->m))

/* Sizes of the 0.1 layouts (what struct_size 0 means): each ends with the
 * last field 0.1 had. */
#define TM_ABI_MIN_tm_region_config   TM_ABI_END(tm_region_config, addr)
#define TM_ABI_MIN_tm_migrate_config  TM_ABI_END(tm_migrate_config, migration_id)
#define TM_ABI_MIN_tm_migrate_hooks   TM_ABI_END(tm_migrate_hooks, progress)
#define TM_ABI_MIN_tm_snap_opts       TM_ABI_END(tm_snap_opts, report_ctx)
#define TM_ABI_MIN_tm_core_opts       TM_ABI_END(tm_core_opts, tagged_addr_ctrl)
#define TM_ABI_MIN_tm_swapfile_config TM_ABI_END(tm_swapfile_config, flags)
#define TM_ABI_MIN_tm_pager_config    TM_ABI_END(tm_pager_config, fault_mode)
#define TM_ABI_MIN_tm_ss_config       TM_ABI_END(tm_ss_config, costs)

/*
 * Copy the caller's struct src (its first member: uint32_t struct_size)
 * into dst, the library's struct of ksize bytes: struct_size 0 means
 * min_size (the 0.1 layout); below min_size or above TM_STRUCT_SIZE_MAX is
 * -EINVAL; above ksize, the bytes this library does not know must be zero
 * (-E2BIG naming the first that is not); NULL is -EINVAL (callers for
 * which NULL means "defaults" check that first). dst's bytes past the caller's
 * size are zeroed, and dst->struct_size becomes ksize. Errors name type.
 */
int tm_abi_copy_in(void *dst, size_t ksize, const void *src, size_t min_size,
		   const char *type, tm_error *err);

#define TM_ABI_COPY_IN(type, dst, src, err)                                  \
	tm_abi_copy_in((dst), sizeof(type), (src), TM_ABI_MIN_##type, #type, \
		       (err))

/*
 * The half of a *_default_sized()/_init_sized() filler that writes: copy
 * the library's filled struct full (ksize bytes) into the caller's dst of
 * usize bytes (the caller's sizeof: smaller for an older caller, larger
 * for a newer one, whose extra bytes are zeroed) and set dst's struct_size
 * to usize. -EINVAL (nothing written) for a usize below min_size or above
 * TM_STRUCT_SIZE_MAX.
 */
int tm_abi_copy_out(void *dst, size_t usize, const void *full, size_t ksize,
		    size_t min_size, const char *type, tm_error *err);

#define TM_ABI_COPY_OUT(type, dst, usize, full, err)                          \
	tm_abi_copy_out((dst), (usize), (full), sizeof(type), TM_ABI_MIN_##type, \
			#type, (err))

#endif
