/*
 * tagmem/kvm.h - the kvm backend: a tagged region over one KVM memslot of
 * a VMM's guest RAM, without copying it.
 *
 *   data   the VMM's own mapping of the slot (MAP_SHARED memfd or
 *          anonymous memory, not PROT_MTE): tm_region_direct points into
 *          it, so savers and senders read the guest's bytes in place.
 *   tags   KVM_ARM_MTE_COPY_TAGS on the VM fd: one byte per 16-byte
 *          granule, batched over many pages per ioctl, packed and
 *          unpacked by tagmem. Bytes KVM hands back with bits above the
 *          4-bit tag are refused (-EIO naming the IPA), never masked.
 *   dirty  the VM's dirty log (KVM_GET_DIRTY_LOG, then KVM_CLEAR_DIRTY_LOG
 *          when the VMM enabled KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2):
 *          TM_DIRTY_AUTO and TM_DIRTY_BACKEND use it. It sees the guest's
 *          stores and its tag-only writes (STG: measured, a tag-only write
 *          with unchanged data dirties the page). Writes the VMM makes
 *          through its own mapping are not in KVM's log: make them through
 *          tm_region_write (which the core tracks) while tracking runs.
 *
 * One region per memslot; the region's page size is the host page size
 * (KVM_ARM_MTE_COPY_TAGS and the dirty log work in host pages). The default
 * region name is "slotN@0xIPA", so a destination whose memslots sit at
 * other addresses or have other sizes fails the migration's negotiation
 * naming the slot, before a page moves.
 *
 * What tm_kvm_region_create refuses, before anything is read or sent, with
 * the slot and its IPA in the message:
 *   - a VM on which KVM_CAP_ARM_MTE was not enabled (-ENOTSUP): its tags
 *     cannot be read, and a migration that drops them is what tagmem exists
 *     to prevent (pass a geometry of kind TM_META_NONE to move data only);
 *   - a slot whose host memory cannot hold MTE tags (-ENOTSUP): KVM reads
 *     such memory's tags as zeros without complaint (measured: a slot on a
 *     ramfs file registered before KVM_CAP_ARM_MTE was enabled), so tagmem
 *     checks the VMM's mapping itself: private or shared anonymous memory,
 *     memfd and tmpfs files can; other files and hugetlbfs (before Linux
 *     6.13) cannot; a PROT_MTE mapping in the VMM is refused too;
 *   - IPA, size or address not aligned to the host page, a size other than
 *     the region's, a slot KVM does not have at that IPA.
 *
 * KVM refuses tag writes (KVM_ARM_MTE_COPY_TAGS TO_GUEST fails with EBUSY,
 * measured on Linux 6.12) while any memslot of the VM logs dirty pages: a
 * VM that receives a migration or a restore must run its slots without
 * KVM_MEM_LOG_DIRTY_PAGES until it is done, and only turn logging on when
 * it becomes a source itself (set_dirty_logging below does that at
 * tm_region_dirty_start and undoes it at stop).
 *
 * Thread safety: as tagmem/region.h says for any region. Tag writes through
 * the API rewrite whole host pages of tags (KVM_ARM_MTE_COPY_TAGS has no
 * smaller unit), so tag writes through the API while a vcpu writes tags in
 * the same page can undo the guest's; tagmem writes tags only into a VM
 * whose vcpus are stopped (migration destination, restore).
 */
#ifndef TAGMEM_KVM_H
#define TAGMEM_KVM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tagmem/api.h"
#include "tagmem/error.h"
#include "tagmem/region.h"
#include "tagmem/tags.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Grows by the rule of tagmem/api.h: struct_size = sizeof, or 0 for the
 * 0.1 layout (ending at ctx). */
typedef struct tm_kvm_slot {
	uint32_t struct_size;
	int vm_fd;                /* the VM (borrowed, kept open by the VMM) */
	uint32_t slot;            /* memslot id as given to KVM (address space
				     in bits 16-31, as KVM_SET_USER_MEMORY_REGION) */
	uint64_t guest_phys_addr; /* IPA of the slot's first byte */
	uint64_t memory_size;     /* bytes */
	void *userspace_addr;     /* the VMM's mapping of the slot */
	/* The VMM enabled KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2: a collect then
	 * re-arms the reported pages with KVM_CLEAR_DIRTY_LOG. */
	bool manual_protect;
	/*
	 * Optional: turn KVM_MEM_LOG_DIRTY_PAGES on this slot on or off (the
	 * VMM owns its memslots; tagmem never re-registers one). Called with
	 * on = true by tm_region_dirty_start and on = false when tracking
	 * stops. Return 0 or a negative errno (fill err). NULL: the slot must
	 * already log dirty pages when tracking starts.
	 */
	int (*set_dirty_logging)(void *ctx, uint32_t slot, bool on,
				 tm_error *err);
	void *ctx;
} tm_kvm_slot;

/*
 * Create a region over slot s. name NULL: "slotN@0xIPA". geom NULL: MTE
 * tags with the host page size; a geometry of kind TM_META_NONE gives a
 * data-only region (any VM); any other geometry must be MTE with the host
 * page size. The region borrows vm_fd and the mapping: both must outlive
 * it. Validates everything listed in the header comment first; on failure
 * *out is NULL and nothing was written anywhere.
 */
TM_API int tm_kvm_region_create(const char *name, const tm_kvm_slot *s,
				const tm_geom *geom, tm_region **out,
				tm_error *err);

/*
 * Whether host memory [addr, addr + len) of this process can hold MTE tags
 * for a KVM guest (the test tm_kvm_region_create applies): 0, or -ENOTSUP
 * naming the address and the mapping that cannot, -EFAULT for a range that
 * is not mapped. Reads /proc/self/smaps. Thread-safe.
 */
TM_API int tm_kvm_memory_check(const void *addr, size_t len, tm_error *err);

#ifdef __cplusplus
}
#endif
#endif
