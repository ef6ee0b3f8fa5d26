/*
 * valslab.c - the slab allocator behind the swap tag store's out-of-line
 * tag values: fixed-size classes, size-aligned blocks, O(1) alloc/free.
 * Design, thread-safety and debug checks: valslab.h.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "swap/valslab.h"

#define VS_MAGIC 0x76736c62u   /* "vslb": a live block header */

/* Objects start after the header, rounded so they stay 16-byte aligned. */
#define VS_FIRST_OFF ((sizeof(struct tm_valslab_block) + 15u) & ~(size_t)15u)

static size_t block_size_for(size_t obj_size)
{
	size_t bs = TM_VALSLAB_MIN_BLOCK;

	while (bs < 32u * obj_size)
		bs <<= 1;
	return bs;
}

static int check_size(size_t size, unsigned c, tm_error *err)
{
	if (size < TM_VALSLAB_MIN_OBJ || size > TM_VALSLAB_MAX_OBJ || size % 16u)
		return tm_error_set(err, -EINVAL,
				    "valslab: class %u object size %zu is not a multiple of 16 in %u..%u",
				    c, size, TM_VALSLAB_MIN_OBJ, TM_VALSLAB_MAX_OBJ);
	return 0;
}

int tm_valslab_init(struct tm_valslab *s, const size_t *obj_sizes,
		    unsigned nclasses, tm_error *err)
{
	if (!s || !obj_sizes || nclasses == 0 || nclasses > TM_VALSLAB_MAX_CLASSES)
		return tm_error_set(err, -EINVAL,
				    "valslab: %u classes asked for (need 1..%u and a size table)",
				    nclasses, TM_VALSLAB_MAX_CLASSES);
	for (unsigned c = 0; c < nclasses; c++) {
		int rc = check_size(obj_sizes[c], c, err);

		if (rc)
			return rc;
	}
	memset(s, 0, sizeof(*s));
	s->nclasses = nclasses;
	for (unsigned c = 0; c < nclasses; c++) {
		struct tm_valslab_class *k = &s->cls[c];

		k->obj_size = obj_sizes[c];
		k->block_size = block_size_for(k->obj_size);
		k->first_off = (uint32_t)VS_FIRST_OFF;
		k->per_block = (uint32_t)((k->block_size - VS_FIRST_OFF) / k->obj_size);
	}
	return 0;
}

/* ---- block lists (doubly linked, NULL-terminated, head insertion) ---- */

static void list_push(struct tm_valslab_block **head, struct tm_valslab_block *b)
{
	b->prev = NULL;
	b->next = *head;
	if (*head)
		(*head)->prev = b;
	*head = b;
}

static void list_unlink(struct tm_valslab_block **head, struct tm_valslab_block *b)
{
	if (b->prev)
		b->prev->next = b->next;
	else
		*head = b->next;
	if (b->next)
		b->next->prev = b->prev;
	b->prev = b->next = NULL;
}

/* ---- debug checks ---- */

#ifdef TM_VALSLAB_CHECKS
__attribute__((noreturn, format(printf, 1, 2)))
static void vs_die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("tagmem: valslab: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	abort();
}

static void check_class(const struct tm_valslab *s, unsigned cls)
{
	if (cls >= s->nclasses)
		vs_die("class %u out of range (slab has %u)", cls, s->nclasses);
}

/* obj must be at an object boundary, among the carved objects, of a live
 * block of class cls of this slab that has objects handed out. */
static void check_free(const struct tm_valslab *s, unsigned cls,
		       const struct tm_valslab_block *b, const void *obj)
{
	const struct tm_valslab_class *k = &s->cls[cls];
	uintptr_t off = (uintptr_t)obj - (uintptr_t)b;

	if (!obj)
		vs_die("free of NULL in class %u", cls);
	if (b->magic != VS_MAGIC || b->owner != s || b->cls != cls)
		vs_die("free of %p in class %u: not in a block of this slab and class",
		       obj, cls);
	if (off < k->first_off || (off - k->first_off) % k->obj_size ||
	    (off - k->first_off) / k->obj_size >= b->carved)
		vs_die("free of %p in class %u: offset %zu of its block is not an object handed out",
		       obj, cls, (size_t)off);
	if (b->used == 0)
		vs_die("free of %p in class %u: its block has no object in use (double free?)",
		       obj, cls);
}
#else
static inline void check_class(const struct tm_valslab *s, unsigned cls)
{
	(void)s;
	(void)cls;
}

static inline void check_free(const struct tm_valslab *s, unsigned cls,
			      const struct tm_valslab_block *b, const void *obj)
{
	(void)s;
	(void)cls;
	(void)b;
	(void)obj;
}
#endif

/* ---- blocks ---- */

static struct tm_valslab_block *block_new(const struct tm_valslab *s,
					  unsigned cls)
{
	const struct tm_valslab_class *k = &s->cls[cls];
	/* Aligned to its own size: an object finds its header by masking. */
	struct tm_valslab_block *b = aligned_alloc(k->block_size, k->block_size);

	if (!b)
		return NULL;
	memset(b, 0, sizeof(*b));
	b->owner = s;
	b->cls = cls;
	b->magic = VS_MAGIC;
	return b;
}

static void block_release(struct tm_valslab_block *b)
{
	b->magic = 0;   /* a stale pointer into a reused block fails the check */
	free(b);
}

/* A block to allocate from when the partial list is empty: the spare, or a
 * new one. It is put on the partial list (it is not full). */
static struct tm_valslab_block *refill(struct tm_valslab *s, unsigned cls)
{
	struct tm_valslab_class *k = &s->cls[cls];
	struct tm_valslab_block *b = k->spare;

	if (b) {
		k->spare = NULL;
	} else {
		b = block_new(s, cls);
		if (!b)
			return NULL;
		k->blocks++;
	}
	list_push(&k->partial, b);
	return b;
}

static void *block_take(const struct tm_valslab_class *k,
			struct tm_valslab_block *b)
{
	void *obj = b->free;

	if (obj) {
		b->free = *(void **)obj;
	} else {
		/* Carve lazily: a fresh block is only touched as it fills. */
		obj = (char *)b + k->first_off + (size_t)b->carved * k->obj_size;
		b->carved++;
	}
	b->used++;
	return obj;
}

/* b has just become entirely free: keep it as the spare if there is none
 * (a folio swapped in and out again reuses it), else give it back. */
static void block_retire(struct tm_valslab_class *k, struct tm_valslab_block *b)
{
	list_unlink(&k->partial, b);
	if (!k->spare) {
		k->spare = b;
		return;
	}
	k->blocks--;
	block_release(b);
}

void *tm_valslab_alloc(struct tm_valslab *s, unsigned cls)
{
	struct tm_valslab_class *k;
	struct tm_valslab_block *b;
	void *obj;

	check_class(s, cls);
	k = &s->cls[cls];
	b = k->partial;
	if (!b) {
		b = refill(s, cls);
		if (!b)
			return NULL;
	}
	obj = block_take(k, b);
	if (b->used == k->per_block) {
		list_unlink(&k->partial, b);
		list_push(&k->full, b);
	}
	k->in_use++;
	return obj;
}

void tm_valslab_free(struct tm_valslab *s, unsigned cls, void *obj)
{
	struct tm_valslab_class *k;
	struct tm_valslab_block *b;
	int was_full;

	check_class(s, cls);
	k = &s->cls[cls];
	b = (struct tm_valslab_block *)((uintptr_t)obj & ~(uintptr_t)(k->block_size - 1));
	check_free(s, cls, b, obj);
	*(void **)obj = b->free;
	b->free = obj;
	was_full = b->used == k->per_block;
	b->used--;
	/* The block freed into goes to the head of the partial list, so the
	 * next alloc pops the object just freed, still in cache (like a LIFO
	 * tcache); measured 25 -> 21 ns per random free+alloc pair, 9.2 -> 7.3
	 * for batches, at the same memory held. */
	if (was_full)
		list_unlink(&k->full, b);
	else if (k->partial != b)
		list_unlink(&k->partial, b);
	if (k->partial != b)
		list_push(&k->partial, b);
	if (b->used == 0)
		block_retire(k, b);
	k->in_use--;
}

static void release_list(struct tm_valslab_block *b)
{
	while (b) {
		struct tm_valslab_block *next = b->next;

		block_release(b);
		b = next;
	}
}

void tm_valslab_fini(struct tm_valslab *s)
{
	for (unsigned c = 0; c < s->nclasses; c++) {
		struct tm_valslab_class *k = &s->cls[c];

		release_list(k->partial);
		release_list(k->full);
		if (k->spare)
			block_release(k->spare);
		k->partial = k->full = k->spare = NULL;
		k->in_use = k->blocks = 0;
	}
}

void tm_valslab_stats(const struct tm_valslab *s, struct tm_valslab_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->nclasses = s->nclasses;
	for (unsigned c = 0; c < s->nclasses; c++) {
		st->in_use[c] = s->cls[c].in_use;
		st->blocks[c] = s->cls[c].blocks;
		st->bytes_held += s->cls[c].blocks * s->cls[c].block_size;
	}
}
