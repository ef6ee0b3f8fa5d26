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
 * addresses are 16-byte aligned; violations (and NULL, and ranges that wrap)
 * return -EINVAL. A length of 0 is a no-op that returns 0. The two pure data
 * copies (tm_mte_copy_out, tm_mte_copy_data_in) accept any alignment and
 * length, since they never touch tags.
 *
 * Packed tags: 2 per byte, low nibble = lower-address granule, so a range of
 * n granules uses (n+1)/2 bytes. For odd n the last byte's high nibble is
 * written as 0 by get_tags and ignored by set_tags/copy_in.
 *
 * Tag checks: the primitives that store tags or move data (set tags, copy,
 * zero) run with PSTATE.TCO set so the library never faults on memory whose
 * allocation tags differ from the pointer's logical tag; they restore the
 * caller's TCO afterwards (also when it was already set). LDG is not a
 * checked access, so reading tags needs no TCO. TCO is per thread and the
 * primitives keep no state, so every function here is thread-safe; two
 * threads writing the same granules race as ordinary stores do.
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
/* addr with a random logical tag (IRG), never one whose bit is set in
 * exclude (bit t = tag t) nor one outside the thread's prctl include mask
 * (tm_mte_enable_thread allows 1..15, so tag 0 is never produced). If every
 * tag is excluded the result has tag 0. Touches no memory. */
void *tm_mte_random_tag(void *addr, uint16_t exclude);

/* Allocation tag of the granule at addr (LDG). */
uint8_t tm_mte_load_tag(const void *addr);
/* addr re-tagged with the granule's allocation tag, for faulting access. */
void *tm_mte_ptr_for(void *addr);

/* Read allocation tags of [addr, addr+len) into packed form ((len/16+1)/2
 * bytes; LDG per granule). */
int tm_mte_get_tags(const void *addr, size_t len, uint8_t *packed);
/* Set allocation tags of [addr, addr+len) from packed form (ST2G where an
 * aligned pair of granules shares a tag, STG otherwise). Data unchanged. */
int tm_mte_set_tags(void *addr, size_t len, const uint8_t *packed);
/* Set one tag (0..15, else -EINVAL) on [addr, addr+len) (ST2G on aligned
 * pairs, STG on an odd first/last granule). Data unchanged. */
int tm_mte_set_tag_range(void *addr, size_t len, uint8_t tag);

/* Write data and tags together with STGP: each 16-byte granule gets its data
 * and its tag in one instruction, so no reader ever sees the data of a
 * granule with a stale tag. src is ordinary memory (any alignment).
 * packed NULL places every granule with tag 0 (an untagged page). */
int tm_mte_copy_in(void *dst, const void *src, const uint8_t *packed, size_t len);
/* Copy data out of tagged memory without faulting (TCO set). Any alignment. */
int tm_mte_copy_out(void *dst, const void *src, size_t len);
/* Copy data into tagged memory without faulting and without changing its
 * tags (TCO set). Any alignment: for byte-granular writes through an API. */
int tm_mte_copy_data_in(void *dst, const void *src, size_t len);
/* Zero data and tags together (STZG/STZ2G). */
int tm_mte_zero(void *addr, size_t len);

#endif
