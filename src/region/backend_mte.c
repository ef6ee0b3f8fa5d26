/*
 * backend_mte.c - the mte backend, written against tagmem/backend.h: this
 * process's PROT_MTE memory, tags are the hardware allocation tags. Built
 * only on the primitives of mte_ops.h (LDG/STG/ST2G/STGP/STZG behind TCO),
 * so this file has no MTE instructions of its own and compiles everywhere;
 * creation refuses with -ENOTSUP where the CPU or kernel lacks MTE.
 *
 * Byte-granular data access never touches tags (copies with TCO set), so
 * there is no read-modify-write of tags that could undo another thread's
 * tag change. Whole pages go in with STGP (data and tag of each granule in
 * one instruction) and are zeroed with STZG.
 *
 * Lazy placement. UFFDIO_COPY into a registered PROT_MTE range places the
 * page with all tags zero (measured, ../shared/MTE-KERNEL-FACTS.md), so it
 * cannot be used. Instead the page is built in a PROT_MTE staging page of
 * our own -- STGP writes its data and tags -- and UFFDIO_MOVE moves that
 * page into the missing slot: the page table entry that makes the data
 * visible points at a page whose tags are already in place, and the move
 * wakes the faulting threads afterwards. A moved staging page is gone from
 * the staging mapping (its entry is cleared), so the next STGP there would
 * take a page fault to get a fresh zeroed page; instead each lane of
 * staging pages is refilled in one MADV_POPULATE_WRITE when it runs out,
 * one system call per STAGE_BYTES instead of one fault per page. A page
 * whose move failed stays in place and is simply overwritten next time.
 * UFFDIO_MOVE needs the staging and region mappings to be alike (private
 * anonymous, same protection including PROT_MTE, both or neither mlocked);
 * tagmem maps both that way.
 */
#include <errno.h>
#include <linux/userfaultfd.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "region/mte_ops.h"
#include "region/region_internal.h"
#include "region/uffd.h"
#include "tagmem/error.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#define LANES 8u                   /* placements that can run at once */
#define STAGE_BYTES ((size_t)64 << 10) /* staging memory per lane */

static const uint8_t zero_data[4096];

struct lane {
	atomic_flag busy;
	uint8_t *pages;     /* npages staging pages */
	unsigned next;      /* first page not yet moved away */
};

struct tm_mte {
	uint8_t *base;      /* untagged address of the data */
	size_t size, map_len, page_size;
	unsigned page_shift;
	size_t packed_bytes;
	bool owns_map;
	/* lazy placement */
	uint8_t *stage;     /* LANES * lane_pages pages, PROT_MTE */
	size_t stage_len;
	unsigned lane_pages;
	struct lane lane[LANES];
};

static int mte_fail(tm_error *err, int rc, const char *what, const void *a)
{
	return tm_error_set(err, rc, "%s at %p failed: %s", what, a,
			    strerror(-rc));
}

int tm_mte_new(const tm_region_config *cfg, void **ctx, tm_error *err)
{
	size_t host = (size_t)sysconf(_SC_PAGESIZE);
	struct tm_mte *m;
	void *p = NULL;
	int rc;

	if (!tm_mte_hw_available())
		return tm_error_set(err, -ENOTSUP,
				    "MTE is not available here (needs arm64 "
				    "Linux with HWCAP2_MTE)");
	if (cfg->geom.kind != TM_META_MTE)
		return tm_error_set(err, -EINVAL,
				    "the mte backend needs MTE geometry (4 bits "
				    "per 16 bytes)");
	m = calloc(1, sizeof(*m));
	if (!m)
		return tm_error_set(err, -ENOMEM, "out of memory");
	m->size = cfg->size;
	m->page_size = cfg->geom.page_size;
	m->page_shift = (unsigned)__builtin_ctzl(m->page_size);
	m->packed_bytes = m->page_size / 32;
	m->map_len = (m->size + host - 1) / host * host;
	if (cfg->addr) {
		m->base = tm_mte_untag(cfg->addr);
	} else {
		rc = tm_mte_map(m->map_len, &p);
		if (rc) {
			free(m);
			return tm_error_set(err, rc, "PROT_MTE mmap of %zu bytes "
					    "failed: %s", (size_t)cfg->size,
					    strerror(-rc));
		}
		m->base = tm_mte_untag(p);
		m->owns_map = true;
	}
	*ctx = m;
	return 0;
}

static void mte_place_stop(void *ctx);

static void mte_detach(void *ctx)
{
	struct tm_mte *m = ctx;

	mte_place_stop(m);
	if (m->owns_map)
		tm_mte_unmap(m->base, m->map_len);
	free(m);
}

static uint8_t *page_addr(const struct tm_mte *m, size_t pg)
{
	return m->base + (pg << m->page_shift);
}

/* ---- data and tags ------------------------------------------------ */

static int mte_read_data(void *ctx, uint64_t off, void *buf, size_t len,
			 tm_error *err)
{
	struct tm_mte *m = ctx;
	int rc = tm_mte_copy_out(buf, m->base + off, len);

	return rc ? mte_fail(err, rc, "copy out", m->base + off) : 0;
}

static int mte_write_data(void *ctx, uint64_t off, const void *buf,
			  size_t len, tm_error *err)
{
	struct tm_mte *m = ctx;
	int rc = tm_mte_copy_data_in(m->base + off, buf, len);

	return rc ? mte_fail(err, rc, "copy data in", m->base + off) : 0;
}

/* The pages of a range are contiguous: one LDG walk for all n. */
static int mte_read_tags(void *ctx, size_t pg, size_t n, uint8_t *packed,
			 tm_error *err)
{
	struct tm_mte *m = ctx;
	int rc = tm_mte_get_tags(page_addr(m, pg), n << m->page_shift, packed);

	return rc ? mte_fail(err, rc, "LDG", page_addr(m, pg)) : 0;
}

static int mte_write_tags(void *ctx, size_t pg, size_t n,
			  const uint8_t *packed, tm_error *err)
{
	struct tm_mte *m = ctx;
	int rc = tm_mte_set_tags(page_addr(m, pg), n << m->page_shift, packed);

	return rc ? mte_fail(err, rc, "STG", page_addr(m, pg)) : 0;
}

static int mte_read_pages(void *ctx, size_t pg, size_t n, void *data,
			  uint8_t *packed, tm_error *err)
{
	struct tm_mte *m = ctx;
	int rc = 0;

	if (data)
		rc = tm_mte_copy_out(data, page_addr(m, pg), n << m->page_shift);
	if (rc)
		return mte_fail(err, rc, "copy out", page_addr(m, pg));
	return packed ? mte_read_tags(m, pg, n, packed, err) : 0;
}

/* Zero data under the given tags, 4 KiB of STGP at a time. */
static int zero_with_tags(uint8_t *a, size_t len, const uint8_t *packed)
{
	for (size_t k = 0; k < len; k += sizeof(zero_data)) {
		int rc = tm_mte_copy_in(a + k, zero_data, packed + k / 32,
					sizeof(zero_data));

		if (rc)
			return rc;
	}
	return 0;
}

/* Data and tags of every granule in one STGP; zeros with STZG. */
static int mte_write_pages(void *ctx, size_t pg, size_t n, const void *data,
			   const uint8_t *packed, tm_error *err)
{
	struct tm_mte *m = ctx;
	uint8_t *a = page_addr(m, pg);
	size_t len = n << m->page_shift;
	int rc;

	if (data)
		rc = tm_mte_copy_in(a, data, packed, len);
	else if (packed)
		rc = zero_with_tags(a, len, packed);
	else
		rc = tm_mte_zero(a, len);
	return rc ? mte_fail(err, rc, data ? "STGP copy in" : "STZG", a) : 0;
}

static int mte_set_tag_range(void *ctx, uint64_t off, size_t len, uint8_t tag,
			     tm_error *err)
{
	struct tm_mte *m = ctx;
	int rc = tm_mte_set_tag_range(m->base + off, len, tag);

	return rc ? mte_fail(err, rc, "STG range", m->base + off) : 0;
}

/* ---- page state, pointers ------------------------------------------ */

/* Discarded memory comes back from the kernel with zero tags. */
static int mte_discard(void *ctx, size_t pg, size_t n, tm_error *err)
{
	struct tm_mte *m = ctx;
	int rc = tm_release_range(page_addr(m, pg), n << m->page_shift);

	return rc ? mte_fail(err, rc, "madvise(MADV_DONTNEED)", page_addr(m, pg))
		  : 0;
}

/* Tag-checked memory has no direct pointer; this one carries the
 * granule's allocation tag, for the workload's own accesses. */
static void *mte_ptr(void *ctx, uint64_t off)
{
	return tm_mte_ptr_for(((struct tm_mte *)ctx)->base + off);
}

static int mte_mapping(void *ctx, void **base, size_t *len)
{
	struct tm_mte *m = ctx;

	*base = m->base;
	*len = m->map_len;
	return 0;
}

/* ---- lazy placement: staging pages + UFFDIO_MOVE --------------------- */

static int mte_place_start(void *ctx, int uffd, uint64_t features,
			   tm_error *err)
{
	struct tm_mte *m = ctx;
	void *p = NULL;
	int rc;

	(void)uffd;
	if (!(features & UFFD_FEATURE_MOVE))
		return tm_error_set(err, -ENOTSUP, "placing a page with its tags "
				    "needs UFFDIO_MOVE (UFFD_FEATURE_MOVE, Linux "
				    ">= 6.8), which this kernel does not offer: "
				    "UFFDIO_COPY would place zero tags");
	m->lane_pages = (unsigned)(STAGE_BYTES > m->page_size ?
				   STAGE_BYTES / m->page_size : 1);
	m->stage_len = (size_t)LANES * m->lane_pages * m->page_size;
	rc = tm_mte_map(m->stage_len, &p);
	if (rc)
		return tm_error_set(err, rc, "PROT_MTE mmap of %zu staging bytes "
				    "failed: %s", m->stage_len, strerror(-rc));
	m->stage = tm_mte_untag(p);
	/* UFFDIO_MOVE refuses large folios: keep the staging pages small. */
	madvise(m->stage, m->stage_len, MADV_NOHUGEPAGE);
	for (unsigned i = 0; i < LANES; i++) {
		atomic_flag_clear(&m->lane[i].busy);
		m->lane[i].pages = m->stage + (size_t)i * m->lane_pages * m->page_size;
		m->lane[i].next = m->lane_pages; /* refilled on first use */
	}
	return 0;
}

static void mte_place_stop(void *ctx)
{
	struct tm_mte *m = ctx;

	if (m->stage)
		tm_mte_unmap(m->stage, m->stage_len);
	m->stage = NULL;
}

static struct lane *lane_get(struct tm_mte *m)
{
	for (;;) {
		for (unsigned i = 0; i < LANES; i++)
			if (!atomic_flag_test_and_set(&m->lane[i].busy))
				return &m->lane[i];
		sched_yield();
	}
}

/* The lane's next staging page, its pages faulted in together when the
 * lane runs out (without MADV_POPULATE_WRITE, Linux < 5.14, STGP faults
 * each one in instead). */
static uint8_t *stage_page(struct tm_mte *m, struct lane *l)
{
	if (l->next == m->lane_pages) {
		madvise(l->pages, (size_t)m->lane_pages * m->page_size,
			MADV_POPULATE_WRITE);
		l->next = 0;
	}
	return l->pages + (size_t)l->next * m->page_size;
}

/* Clear a uffd-wp marker on a never-touched page (dirty tracking with
 * uffd-wp puts one there), which UFFDIO_MOVE takes for a mapped page. */
static bool unprotect(int uffd, uint8_t *dst, size_t len)
{
	struct uffdio_writeprotect wp = {
		.range = { .start = (uintptr_t)dst, .len = len },
		.mode = UFFDIO_WRITEPROTECT_MODE_DONTWAKE,
	};

	return ioctl(uffd, UFFDIO_WRITEPROTECT, &wp) == 0;
}

/* Move [src, src+len) to dst; the kernel may move part and say EAGAIN. */
static int move(int uffd, uint8_t *dst, uint8_t *src, size_t len)
{
	bool unprotected = false;

	while (len) {
		struct uffdio_move mv = { .dst = (uintptr_t)dst,
					  .src = (uintptr_t)src, .len = len };

		if (ioctl(uffd, UFFDIO_MOVE, &mv) == 0)
			return 0;
		if (mv.move > 0) {
			dst += mv.move;
			src += mv.move;
			len -= (size_t)mv.move;
			continue;
		}
		if (errno == EEXIST && !unprotected && unprotect(uffd, dst, len)) {
			unprotected = true;
			continue;
		}
		if (errno != EAGAIN)
			return -errno;
	}
	return 0;
}

static int mte_place(void *ctx, int uffd, size_t pg, const void *data,
		     const uint8_t *packed, tm_error *err)
{
	struct tm_mte *m = ctx;
	struct lane *l = lane_get(m);
	uint8_t *src = stage_page(m, l), *dst = page_addr(m, pg);
	int rc;

	if (data)
		rc = tm_mte_copy_in(src, data, packed, m->page_size);
	else if (packed)
		rc = zero_with_tags(src, m->page_size, packed);
	else
		rc = tm_mte_zero(src, m->page_size);
	if (rc) {
		atomic_flag_clear(&l->busy);
		return mte_fail(err, rc, "STGP into the staging page", src);
	}
	rc = move(uffd, dst, src, m->page_size);
	if (rc == 0)
		l->next++;
	atomic_flag_clear(&l->busy);
	if (rc == 0 || rc == -EEXIST)
		return rc;
	return tm_error_set(err, rc, "UFFDIO_MOVE of staging page %p to %p "
			    "failed: %s%s", (void *)src, (void *)dst,
			    strerror(-rc), rc == -EINVAL ? " (the region's "
			    "memory must be private anonymous PROT_MTE, not "
			    "mlocked, like the staging pages)" : "");
}

const tm_backend_methods tm_mte_methods = {
	.version = 1,
	.name = "mte",
	.flags = 0,          /* the workload's STG changes tags too */
	.detach = mte_detach,
	.read_data = mte_read_data,
	.write_data = mte_write_data,
	.read_tags = mte_read_tags,
	.write_tags = mte_write_tags,
	.read_pages = mte_read_pages,
	.write_pages = mte_write_pages,
	.set_tag_range = mte_set_tag_range,
	.discard = mte_discard,
	.ptr = mte_ptr,
	.mapping = mte_mapping,
	.uffd_features = UFFD_FEATURE_MOVE,
	.place_start = mte_place_start,
	.place = mte_place,
	.place_stop = mte_place_stop,
};
