/*
 * valslab.h - a small slab allocator for the swap tag store's out-of-line
 * tag values (internal).
 *
 * Why: the tag store keeps tens of thousands of small records of a few
 * fixed sizes alive at once; glibc's tcache cannot hold that many, so every
 * malloc/free pair went through _int_malloc/_int_free and bin consolidation.
 * A per-size-class slab makes alloc and free a pointer pop/push.
 *
 * Design (a tiny version of the classic kernel slab):
 *   - each class c has blocks of max(16 KiB, next power of two >= 32 x
 *     obj_size) bytes, aligned to their own size, so the block of an object
 *     is `ptr & ~(block_size - 1)`: no per-object header;
 *   - a block starts with struct tm_valslab_block; objects follow at a
 *     16-byte aligned offset, so every object is 16-byte aligned (the store
 *     keeps its class in the low bits of the pointer);
 *   - a block's free objects form a singly linked list through the objects
 *     themselves; objects never handed out are carved lazily, in address
 *     order, from the untouched rest of the block (a new block is not
 *     touched beyond its header);
 *   - blocks with free objects sit on the class's partial list, the one
 *     last freed into first (alloc then reuses the object just freed, still
 *     in cache), full ones on its full list (so fini finds them); alloc
 *     takes from the head of the partial list; at most one entirely free block
 *     per class is kept as a spare, the others go back to the C library at
 *     once, so an emptied store gives its memory back.
 * alloc and free are O(1).
 *
 * NOT thread-safe: the caller serialises every call on one slab (the tag
 * store holds its mutex around them). Different slabs are independent.
 *
 * Debug builds (TM_REGION_CHECKS, or NDEBUG not defined: meson's default
 * debugoptimized build included, as it leaves NDEBUG undefined) check in free and
 * alloc that the class exists and that the object is at an object boundary
 * of a live block of that class and slab, and abort with a message
 * otherwise. The checks read the block header the pointer masks to, so a
 * wild pointer far from any block may fault instead of aborting; a double
 * free is caught only when it would drive a block's count below zero.
 */
#ifndef TM_SWAP_VALSLAB_H
#define TM_SWAP_VALSLAB_H

#include <stddef.h>
#include <stdint.h>

#include "tagmem/error.h"

#define TM_VALSLAB_MAX_CLASSES 8u
#define TM_VALSLAB_MIN_OBJ     16u
#define TM_VALSLAB_MAX_OBJ     4096u
#define TM_VALSLAB_MIN_BLOCK   (16u * 1024u)

#if defined(TM_REGION_CHECKS) || !defined(NDEBUG)
#define TM_VALSLAB_CHECKS 1
#endif

/* Header at the start of every block. */
struct tm_valslab_block {
	void *free;                        /* freed objects, linked through
					      their first word */
	struct tm_valslab_block *prev;     /* partial or full list links */
	struct tm_valslab_block *next;
	const struct tm_valslab *owner;    /* for the debug checks */
	uint32_t used;                     /* objects handed out */
	uint32_t carved;                   /* objects ever handed out: the
					      rest of the block is untouched */
	uint32_t cls;
	uint32_t magic;
};

struct tm_valslab_class {
	size_t obj_size;
	size_t block_size;                 /* power of two */
	uint32_t per_block;                /* objects in one block */
	uint32_t first_off;                /* offset of object 0 in a block */
	struct tm_valslab_block *partial;  /* blocks with 1..per_block-1 used */
	struct tm_valslab_block *full;     /* blocks with per_block used */
	struct tm_valslab_block *spare;    /* one entirely free block, or NULL */
	size_t in_use;                     /* objects handed out */
	size_t blocks;                     /* partial + full + spare */
};

struct tm_valslab {
	unsigned nclasses;
	struct tm_valslab_class cls[TM_VALSLAB_MAX_CLASSES];
};

struct tm_valslab_stats {
	unsigned nclasses;
	size_t in_use[TM_VALSLAB_MAX_CLASSES];      /* objects allocated */
	size_t blocks[TM_VALSLAB_MAX_CLASSES];      /* blocks held (spare too) */
	size_t bytes_held;                          /* sum of their sizes */
};

/*
 * obj_sizes[c] is the object size of class c, c < nclasses: each a multiple
 * of 16 in 16..4096; 1 <= nclasses <= 8. -EINVAL (with the offending class
 * and size in err) otherwise. Allocates nothing: blocks come on first use.
 */
int tm_valslab_init(struct tm_valslab *s, const size_t *obj_sizes,
		    unsigned nclasses, tm_error *err);

/* A 16-byte aligned object of class cls, or NULL when out of memory. */
void *tm_valslab_alloc(struct tm_valslab *s, unsigned cls);

/* Give back obj, which tm_valslab_alloc(s, cls) returned. */
void tm_valslab_free(struct tm_valslab *s, unsigned cls, void *obj);

/* Release every block; objects still allocated are simply dropped. The
 * slab may be initialised again afterwards. */
void tm_valslab_fini(struct tm_valslab *s);

void tm_valslab_stats(const struct tm_valslab *s, struct tm_valslab_stats *st);

#endif
