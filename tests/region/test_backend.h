/*
 * test_backend.h - two backends written in the tests against the public
 * interface (tagmem/backend.h), the way a VMM or a debugger would write
 * theirs, so the ordinary region test matrix runs over caller-registered
 * backends too. Both are real: a real file, real memory, real userfaultfd.
 *
 *   file  data in an unlinked temporary file (pread/pwrite), tags in a
 *         caller array with one byte per granule (the unpacked form of
 *         KVM_ARM_MTE_COPY_TAGS and PTRACE_PEEKMTETAGS, so it packs and
 *         unpacks like those backends will). No direct pointer, no
 *         mapping, no dirty source, no lazy placement, and none of the
 *         optional data methods: every fallback of the core is exercised.
 *         The shape of the ptrace backend.
 *   mem   data in caller memory (an anonymous mapping: direct pointer and
 *         mapping), packed tags in a caller array, a dirty source of its
 *         own fed by tb_mem_guest_write (a "guest" writing behind tagmem's
 *         back, as a VM does; the log is what KVM_GET_DIRTY_LOG would
 *         return), and lazy placement (tags into the array, then
 *         UFFDIO_COPY). The shape of the kvm backend.
 *
 * Only for MTE geometry (4 bits per 16 bytes) and page sizes that are a
 * multiple of the host page. Every method counts its calls so tests can see
 * which path the core took.
 */
#ifndef TM_TEST_BACKEND_H
#define TM_TEST_BACKEND_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tagmem/backend.h"

enum tb_kind { TB_FILE, TB_MEM };

enum tb_call {
	TB_READ_DATA, TB_WRITE_DATA, TB_READ_TAGS, TB_WRITE_TAGS,
	TB_PAGE_STATE, TB_DISCARD, TB_DIRTY_COLLECT, TB_PLACE, TB_ATTACH,
	TB_DETACH, TB_NCALLS
};

typedef struct tb_ctx {
	enum tb_kind kind;
	size_t size, page_size, npages, granules;
	int fd;                     /* file */
	uint8_t *mem;               /* mem: the data */
	uint8_t *zero;              /* a page of zeros to UFFDIO_COPY from */
	size_t map_len;
	uint8_t *tags;              /* file: 1 byte per granule; mem: packed */
	uint8_t *resident;          /* page_state answer, 1 byte per page */
	/* mem's dirty source */
	atomic_bool logging;
	_Atomic uint64_t *log;      /* pages written by the "guest" */
	size_t expect_size;         /* attach refuses another size (0: any) */
	_Atomic unsigned calls[TB_NCALLS];
	_Atomic unsigned long tag_pages_read; /* pages over all read_tags */
} tb_ctx;

extern const tm_backend_methods tb_file_methods;
extern const tm_backend_methods tb_mem_methods;

/* Make a context for size bytes of pages of page_size (all resident); NULL
 * when the file or memory cannot be had. */
tb_ctx *tb_new(enum tb_kind kind, size_t size, size_t page_size);
void tb_free(tb_ctx *c);
const tm_backend_methods *tb_methods(enum tb_kind kind);

/* A region on a new context: 0, or the error of tm_region_create_with. */
int tb_region(enum tb_kind kind, const char *name, size_t size,
	      size_t page_size, tm_region **out, tb_ctx **ctx, tm_error *err);
/* tm_region_destroy, then the context (detach does not free it). */
void tb_region_destroy(tm_region *r, tb_ctx *c);

/* mem: a write behind tagmem's back -- the data of [off, off+len) and, if
 * tag >= 0, the tags of its granules -- logged for the dirty source. */
void tb_mem_guest_write(tb_ctx *c, size_t off, const void *buf, size_t len,
			int tag);

#endif
