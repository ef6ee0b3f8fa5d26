/*
 * mte_ops.h - raw Arm MTE primitives on this process's PROT_MTE memory.
 * Internal to the region part: the mte backend (region code) is built on
 * these, and nothing else touches MTE instructions directly.
 *
 * Only EL0 instructions are used: IRG, ADDG/SUBG, LDG, STG, ST2G, STZG,
 * STZ2G, STGP (not LDGM/STGM/STZGM, which are EL1-only). On anything other
 * than aarch64 every function returns -ENOTSUP / false, so callers compile
 * everywhere.
 *
 * Addresses: `addr` arguments may carry any logical tag in bits 56..59; the
 * primitives address granules by their untagged address and produce the
 * tags described. All lengths are multiples of 16 (the granule) and
 * addresses are 16-byte aligned; violations return -EINVAL.
 *
 * Tag checks: the bulk primitives (get/set tags, copy, zero, read) run with
 * PSTATE.TCO set so the library never faults on memory whose allocation tags
 * differ from the pointer's logical tag; they restore TCO afterwards. TCO is
 * per thread, so this is thread-safe.
 */
#ifndef TM_REGION_MTE_OPS_H
#define TM_REGION_MTE_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* True on aarch64 Linux with HWCAP2_MTE. */
bool tm_mte_hw_available(void);

/*
 * Enable tagged addresses and synchronous tag-check faults for the calling
 * thread (prctl PR_SET_TAGGED_ADDR_CTRL with PR_MTE_TCF_SYNC and all
 * non-zero tags allowed for IRG). Idempotent. Note that prctl applies to the
 * calling thread only; threads created afterwards inherit it.
 */
int tm_mte_enable_thread(void);

/* mmap len bytes (page multiple) of PROT_MTE anonymous memory; tags all 0. */
int tm_mte_map(size_t len, void **out);
int tm_mte_unmap(void *addr, size_t len);

/* Pointer with logical tag `tag` (0..15) in bits 56..59. */
void *tm_mte_with_tag(void *addr, uint8_t tag);
/* Address with the logical tag cleared. */
void *tm_mte_untag(void *addr);

/* Allocation tag of the granule at addr (LDG). */
uint8_t tm_mte_load_tag(const void *addr);
/* addr re-tagged with the granule's allocation tag, for faulting access. */
void *tm_mte_ptr_for(void *addr);

/* Read allocation tags of [addr, addr+len) into packed form (len/32 bytes). */
int tm_mte_get_tags(const void *addr, size_t len, uint8_t *packed);
/* Set allocation tags of [addr, addr+len) from packed form (STG/ST2G). */
int tm_mte_set_tags(void *addr, size_t len, const uint8_t *packed);
/* Set one tag on [addr, addr+len) (ST2G where aligned, STG otherwise). */
int tm_mte_set_tag_range(void *addr, size_t len, uint8_t tag);

/* Write data and tags together with STGP: each 16-byte granule gets its data
 * and its tag in one instruction, so no reader ever sees the data of a
 * granule with a stale tag. src is ordinary memory. */
int tm_mte_copy_in(void *dst, const void *src, const uint8_t *packed, size_t len);
/* Copy data out of tagged memory without faulting (TCO set). */
int tm_mte_copy_out(void *dst, const void *src, size_t len);
/* Zero data and tags together (STZG/STZ2G). */
int tm_mte_zero(void *addr, size_t len);

#endif
