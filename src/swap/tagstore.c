/*
 * tagstore.c - the swap tag store: slot -> tag value in 64-slot leaves
 * under a JudyL index, the value encoding (EA0 inline, stream-codec record
 * or raw) and its slab-backed objects, with the per-size-class counters
 * the EA0 series exposed in debugfs.
 */
#include "swap/tagstore.h"

#include <Judy.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define RAW_CLASS 7u
#define PTR_MASK (~(uint64_t)0xF)

static const char *const class_names[TM_TS_NCLASSES] = {
	"inline", "stream-16", "stream-32", "stream-64", "stream-128",
	"stream-256", "stream-512", "stream-1024", "raw",
};

const char *tm_tagstore_class_name(enum tm_tagstore_class c)
{
	return (unsigned)c < TM_TS_NCLASSES ? class_names[c] : "?";
}

static bool is_inline(uint64_t val) { return val & 1; }
static unsigned ptr_class(uint64_t val) { return (unsigned)(val >> 1) & 7; }
static uint8_t *ptr_of(uint64_t val) { return (uint8_t *)(uintptr_t)(val & PTR_MASK); }

enum tm_tagstore_class tm_ts_value_class(uint64_t val)
{
	if (is_inline(val))
		return TM_TS_INLINE;
	if (ptr_class(val) == RAW_CLASS)
		return TM_TS_RAW;
	return (enum tm_tagstore_class)(TM_TS_STREAM_16 + ptr_class(val));
}

static size_t alloc_size(const struct tm_tagstore *ts, uint64_t val)
{
	if (is_inline(val))
		return 0;
	if (ptr_class(val) == RAW_CLASS)
		return ts->packed;
	return (size_t)16 << ptr_class(val);
}

size_t tm_ts_value_bytes(const struct tm_tagstore *ts, uint64_t val)
{
	return 8 + alloc_size(ts, val);
}

/*
 * The handle of a page whose granules all carry tag t, for each t: pages of
 * one tag (untagged-but-PROT_MTE, large allocations, stacks) are the most
 * common kind, and recognising them costs a word compare per 8 bytes
 * instead of a full EA0 encode. The handles come from tm_ea0_compress
 * itself, so they are exactly what it would produce.
 */
static int init_uniform(struct tm_tagstore *ts, tm_error *err)
{
	uint8_t buf[TM_PAGE_SIZE_MAX / 32];

	for (unsigned t = 0; t < 16; t++) {
		memset(buf, (int)(t * 0x11), ts->packed);
		if (tm_ea0_compress(ts->geom.page_size, buf, &ts->uniform[t], err) != 0 ||
		    !(ts->uniform[t] & 1))
			return tm_error_wrap(err, -EINVAL,
					     "tag store: EA0 handle of a one-tag page");
	}
	return 0;
}

/* The tag of a one-tag page, or -1. */
static int uniform_tag(const struct tm_tagstore *ts, const uint8_t *p)
{
	uint64_t w, first;

	if ((p[0] >> 4) != (p[0] & 0xF))
		return -1;
	first = 0x0101010101010101ull * p[0];
	for (size_t i = 0; i < ts->packed; i += 8) {
		memcpy(&w, p + i, 8);
		if (w != first)
			return -1;
	}
	return p[0] & 0xF;
}

/* The largest stream record kept: the capacity of the biggest class below
 * the raw size, minus its 2-byte length. A page whose record would be
 * longer is stored raw, and the one-page encoder stops as soon as the
 * record passes this size. The encoder writes the plain runs form only:
 * the regular form (TM_TAGSTREAM_REGULAR) would shrink the mix from 36 to
 * 29 bytes per tagged page and allocator pages from 69 to 50, but it is
 * only in the general encoder, which measured three times the time per
 * page (docs/BENCHMARKS.md §swap), and swap throughput is the target at
 * risk. */
static size_t max_record(size_t packed)
{
	size_t cap = 0;

	for (unsigned c = 0; c < RAW_CLASS && ((size_t)16 << c) < packed; c++)
		cap = ((size_t)16 << c) - 2;
	return cap;
}

/* Object sizes of the value classes, for the slab: stream classes below
 * the raw size, then raw. Classes at or above raw are never used (a record
 * that big is stored raw); they get the raw size so that the slab's class
 * numbers stay the value's. */
static void class_sizes(size_t packed, size_t *sizes)
{
	for (unsigned c = 0; c < RAW_CLASS; c++) {
		size_t cap = (size_t)16 << c;

		sizes[c] = cap < packed ? cap : packed;
	}
	sizes[RAW_CLASS] = packed;
}

int tm_tagstore_init(struct tm_tagstore *ts, uint32_t page_size, tm_error *err)
{
	size_t sizes[RAW_CLASS + 1];
	int rc;

	memset(ts, 0, sizeof(*ts));
	rc = tm_geom_mte(&ts->geom, page_size, err);
	if (rc)
		return rc;
	ts->packed = tm_geom_packed_bytes(&ts->geom);
	ts->max_record = max_record(ts->packed);
	class_sizes(ts->packed, sizes);
	rc = init_uniform(ts, err);
	if (!rc)
		rc = tm_valslab_init(&ts->slab, sizes, RAW_CLASS + 1, err);
	if (!rc && pthread_mutex_init(&ts->lock, NULL) != 0) {
		tm_valslab_fini(&ts->slab);
		rc = tm_error_set(err, -ENOMEM, "tag store: mutex init failed");
	}
	if (rc)
		memset(ts, 0, sizeof(*ts));
	return rc;
}

/* Smallest stream class holding a record of len bytes (len + 2 <= its
 * capacity; the caller kept len <= max_record, so one exists). */
static unsigned stream_class(size_t len)
{
	unsigned c = 0;

	while (((size_t)16 << c) < len + 2)
		c++;
	return c;
}

void tm_ts_rec_make(const struct tm_tagstore *ts, const uint8_t *packed,
		    uint8_t *scratch, struct tm_ts_rec *rec)
{
	uint64_t handle;
	size_t len;
	int t = uniform_tag(ts, packed);

	memset(rec, 0, sizeof(*rec));
	if (t >= 0) {
		rec->inl = ts->uniform[t];
		return;
	}
	/* An EA0 inline handle has bit 0 set and bit 63 clear (Linux stores it
	 * as an XArray value the same way): it is the value itself. Tried
	 * before the stream encoding: the EA0 encoder gives up at the first
	 * range too many, so a page that does not fit costs a word or two,
	 * and one that fits is not scanned again (measured 30 % of the tag
	 * work when runs were counted first). */
	if (tm_ea0_compress(ts->geom.page_size, packed, &handle, NULL) == 0 &&
	    (handle & 1) && (handle >> 63) == 0) {
		rec->inl = handle;
		return;
	}
	/* -ENOSPC: no stream record below the raw size; MTE geometry admits
	 * no other error, and raw is right for any. */
	if (tm_tagstream_encode_page(&ts->geom, packed, scratch + 2, ts->max_record,
				     &len, NULL) == 0) {
		scratch[0] = (uint8_t)(len & 0xFF);
		scratch[1] = (uint8_t)(len >> 8);
		rec->cls = (uint8_t)stream_class(len);
		rec->data = scratch;
		rec->len = (uint16_t)(len + 2);
		return;
	}
	rec->cls = RAW_CLASS;
	rec->data = packed;
	rec->len = (uint16_t)ts->packed;
}

int tm_ts_value_decode(const struct tm_tagstore *ts, uint64_t val,
		       uint8_t *packed, tm_error *err)
{
	if (is_inline(val)) {
		for (unsigned t = 0; t < 16; t++) {
			if (val == ts->uniform[t]) {
				memset(packed, (int)(t * 0x11), ts->packed);
				return 0;
			}
		}
		return tm_ea0_decompress(ts->geom.page_size, val, packed, err);
	}
	const uint8_t *p = ptr_of(val);

	if (!p)
		return tm_error_set(err, -EBADMSG, "tag store: null value");
	if (ptr_class(val) == RAW_CLASS) {
		memcpy(packed, p, ts->packed);
		return 0;
	}
	size_t cap = (size_t)16 << ptr_class(val);
	size_t len = (size_t)p[0] | ((size_t)p[1] << 8);

	if (len + 2 > cap)
		return tm_error_set(err, -EBADMSG,
				    "tag store: record length %zu exceeds its %zu B class",
				    len, cap);
	return tm_tagstream_decode_page(&ts->geom, p + 2, len, packed, err);
}

/* ---- values: objects and counters (under the lock) ----------------- */

static void count(struct tm_tagstore *ts, uint64_t val, bool stored)
{
	enum tm_tagstore_class c = tm_ts_value_class(val);
	size_t b = tm_ts_value_bytes(ts, val);

	if (stored) {
		ts->allocs[c]++;
		ts->bytes_used += b;
	} else {
		ts->frees[c]++;
		ts->bytes_used -= b;
	}
}

/* The value word for a record: its object allocated and filled; 0 when
 * out of memory. */
static uint64_t value_new(struct tm_tagstore *ts, const struct tm_ts_rec *rec)
{
	uint8_t *obj;

	if (rec->inl)
		return rec->inl;
	obj = tm_valslab_alloc(&ts->slab, rec->cls);
	if (!obj)
		return 0;
	memcpy(obj, rec->data, rec->len);
	return (uint64_t)(uintptr_t)obj | ((uint64_t)rec->cls << 1);
}

static void value_free(struct tm_tagstore *ts, uint64_t val)
{
	if (!is_inline(val))
		tm_valslab_free(&ts->slab, ptr_class(val), ptr_of(val));
}

static bool rec_tagged(const struct tm_ts_rec *rec)
{
	return rec->inl || rec->len;
}

/* ---- the index: slot / 64 -> leaf (under the lock) ------------------ */

#define LEAF_SHIFT 6
#define LEAF_SLOTS (1u << LEAF_SHIFT)

struct ts_leaf {
	uint64_t val[LEAF_SLOTS];
	unsigned live;
};

static struct ts_leaf *leaf_find(struct tm_tagstore *ts, uint64_t slot)
{
	PPvoid_t pv = JudyLGet(ts->judy, (Word_t)(slot >> LEAF_SHIFT), PJE0);

	return pv && pv != PPJERR ? *pv : NULL;
}

/* The leaf of slot, created empty if need be; NULL when out of memory. */
static struct ts_leaf *leaf_get(struct tm_tagstore *ts, uint64_t slot)
{
	struct ts_leaf *l = leaf_find(ts, slot);
	PPvoid_t pv;

	if (l)
		return l;
	l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	pv = JudyLIns((PPvoid_t)&ts->judy, (Word_t)(slot >> LEAF_SHIFT), PJE0);
	if (pv == PPJERR) {
		free(l);
		return NULL;
	}
	*pv = l;
	ts->leaves++;
	return l;
}

/* A leaf whose last value went is freed (its key deleted). */
static void leaf_put(struct tm_tagstore *ts, struct ts_leaf *l, uint64_t slot)
{
	if (l->live)
		return;
	JudyLDel((PPvoid_t)&ts->judy, (Word_t)(slot >> LEAF_SHIFT), PJE0);
	free(l);
	ts->leaves--;
}

static uint64_t *cell_of(struct ts_leaf *l, uint64_t slot)
{
	return &l->val[slot & (LEAF_SLOTS - 1)];
}

/* Erase and free the value in a cell (non-zero). */
static void cell_drop(struct tm_tagstore *ts, struct ts_leaf *l, uint64_t *cell)
{
	count(ts, *cell, false);
	value_free(ts, *cell);
	*cell = 0;
	l->live--;
}

/* Walk slots [first, first + n) a leaf at a time: fn(ts, leaf or NULL,
 * slot, i, arg) for each i; a non-zero return stops the walk. */
typedef int (*walk_fn)(struct tm_tagstore *ts, struct ts_leaf *l, uint64_t slot,
		       size_t i, void *arg);

static int walk(struct tm_tagstore *ts, uint64_t first, size_t n, walk_fn fn,
		void *arg)
{
	struct ts_leaf *l = NULL;

	for (size_t i = 0; i < n; i++) {
		uint64_t slot = first + i;
		int rc;

		if (i == 0 || (slot & (LEAF_SLOTS - 1)) == 0)
			l = leaf_find(ts, slot);
		rc = fn(ts, l, slot, i, arg);
		if (rc)
			return rc;
	}
	return 0;
}

/* ---- storing ------------------------------------------------------ */

struct put_args {
	const struct tm_ts_rec *recs;
	uint64_t failed;             /* the slot named in the error */
};

static int check_free(struct tm_tagstore *ts, struct ts_leaf *l, uint64_t slot,
		      size_t i, void *arg)
{
	struct put_args *a = arg;

	(void)ts;
	if (!rec_tagged(&a->recs[i]) || !l || !*cell_of(l, slot))
		return 0;
	a->failed = slot;
	return -EEXIST;
}

/* Undo a partly done store: the values stored from the batch so far are
 * freed again (they were all new), and leaves left empty go. */
static void unstore(struct tm_tagstore *ts, uint64_t first, size_t done,
		    const struct tm_ts_rec *recs)
{
	for (size_t i = 0; i < done; i++) {
		struct ts_leaf *l = rec_tagged(&recs[i]) ? leaf_find(ts, first + i) : NULL;

		if (l && *cell_of(l, first + i))
			cell_drop(ts, l, cell_of(l, first + i));
		if (l)
			leaf_put(ts, l, first + i);
	}
}

/* Every slot checked free first, then stored; -ENOMEM midway undoes. */
static int store(struct tm_tagstore *ts, uint64_t first, size_t n,
		 const struct tm_ts_rec *recs, uint64_t *failed)
{
	struct put_args a = { recs, 0 };
	struct ts_leaf *l = NULL;
	uint64_t key = UINT64_MAX;       /* l's: untagged slots are skipped */
	int rc = walk(ts, first, n, check_free, &a);

	*failed = a.failed;
	if (rc)
		return rc;
	for (size_t i = 0; i < n; i++) {
		uint64_t slot = first + i, val;

		if (!rec_tagged(&recs[i]))
			continue;
		if (slot >> LEAF_SHIFT != key) {
			l = leaf_get(ts, slot);
			key = slot >> LEAF_SHIFT;
		}
		val = l ? value_new(ts, &recs[i]) : 0;
		if (!val) {
			if (l)
				leaf_put(ts, l, slot);
			key = UINT64_MAX;
			unstore(ts, first, i, recs);
			*failed = slot;
			return -ENOMEM;
		}
		*cell_of(l, slot) = val;
		l->live++;
		count(ts, val, true);
	}
	return 0;
}

static int put_error(tm_error *err, int rc, uint64_t slot)
{
	return tm_error_set(err, rc, "tag store: cannot insert tags for slot %llu: %s",
			    (unsigned long long)slot,
			    rc == -EEXIST ? "it already holds tags" : "out of memory");
}

int tm_tagstore_put_batch(struct tm_tagstore *ts, uint64_t first, size_t n,
			  const struct tm_ts_rec *recs, tm_error *err)
{
	uint64_t failed;
	int rc;

	pthread_mutex_lock(&ts->lock);
	rc = store(ts, first, n, recs, &failed);
	pthread_mutex_unlock(&ts->lock);
	return rc ? put_error(err, rc, failed) : 0;
}

int tm_tagstore_put(struct tm_tagstore *ts, uint64_t slot,
		    const struct tm_ts_rec *rec, tm_error *err)
{
	return tm_tagstore_put_batch(ts, slot, 1, rec, err);
}

/* ---- looking up and dropping --------------------------------------- */

struct batch_args {
	const bool *want;
	uint64_t *vals;
};

static int peek_one(struct tm_tagstore *ts, struct ts_leaf *l, uint64_t slot,
		    size_t i, void *arg)
{
	struct batch_args *a = arg;

	(void)ts;
	if (a->want[i])
		a->vals[i] = l ? *cell_of(l, slot) : 0;
	return 0;
}

static int drop_one(struct tm_tagstore *ts, struct ts_leaf *l, uint64_t slot,
		    size_t i, void *arg)
{
	struct batch_args *a = arg;

	if (a->want[i] && l && *cell_of(l, slot)) {
		cell_drop(ts, l, cell_of(l, slot));
		if (a->vals)
			a->vals[i] = 1;
	}
	return 0;
}

/* Empty leaves among [first, first + n) go after a drop (not during it:
 * the walk holds the current leaf). */
static void put_leaves(struct tm_tagstore *ts, uint64_t first, size_t n)
{
	uint64_t last = first + n - 1;

	for (uint64_t key = first >> LEAF_SHIFT; key <= last >> LEAF_SHIFT; key++) {
		struct ts_leaf *l = leaf_find(ts, key << LEAF_SHIFT);

		if (l)
			leaf_put(ts, l, key << LEAF_SHIFT);
	}
}

void tm_tagstore_peek_batch(struct tm_tagstore *ts, uint64_t first, size_t n,
			    const bool *want, uint64_t *vals)
{
	struct batch_args a = { want, vals };

	pthread_mutex_lock(&ts->lock);
	walk(ts, first, n, peek_one, &a);
	pthread_mutex_unlock(&ts->lock);
}

uint64_t tm_tagstore_peek(struct tm_tagstore *ts, uint64_t slot)
{
	const bool want = true;
	uint64_t val = 0;

	tm_tagstore_peek_batch(ts, slot, 1, &want, &val);
	return val;
}

void tm_tagstore_drop_batch(struct tm_tagstore *ts, uint64_t first, size_t n,
			    const bool *want)
{
	struct batch_args a = { want, NULL };

	if (n == 0)
		return;
	pthread_mutex_lock(&ts->lock);
	walk(ts, first, n, drop_one, &a);
	put_leaves(ts, first, n);
	pthread_mutex_unlock(&ts->lock);
}

bool tm_tagstore_drop(struct tm_tagstore *ts, uint64_t slot)
{
	const bool want = true;
	uint64_t dropped = 0;
	struct batch_args a = { &want, &dropped };

	pthread_mutex_lock(&ts->lock);
	walk(ts, slot, 1, drop_one, &a);
	put_leaves(ts, slot, 1);
	pthread_mutex_unlock(&ts->lock);
	return dropped != 0;
}

bool tm_tagstore_has(struct tm_tagstore *ts, uint64_t slot)
{
	return tm_tagstore_peek(ts, slot) != 0;
}

/* Drop every value of leaf l (key) within [first, last]. */
static void invalidate_leaf(struct tm_tagstore *ts, struct ts_leaf *l, Word_t key,
			    uint64_t first, uint64_t last, uint64_t *n,
			    uint64_t *bytes)
{
	for (unsigned k = 0; k < LEAF_SLOTS; k++) {
		uint64_t slot = ((uint64_t)key << LEAF_SHIFT) | k;

		if (slot < first || slot > last || !l->val[k])
			continue;
		if (n)
			(*n)++;
		if (bytes)
			*bytes += tm_ts_value_bytes(ts, l->val[k]);
		cell_drop(ts, l, &l->val[k]);
	}
}

void tm_tagstore_invalidate(struct tm_tagstore *ts, uint64_t first,
			    uint64_t last, uint64_t *n, uint64_t *bytes)
{
	Word_t key = (Word_t)(first >> LEAF_SHIFT);
	PPvoid_t pv;

	pthread_mutex_lock(&ts->lock);
	for (pv = JudyLFirst(ts->judy, &key, PJE0);
	     pv && pv != PPJERR && key <= (Word_t)(last >> LEAF_SHIFT);
	     pv = JudyLNext(ts->judy, &key, PJE0)) {
		struct ts_leaf *l = *pv;

		invalidate_leaf(ts, l, key, first, last, n, bytes);
		if (!l->live) {
			/* JudyLNext finds the next key from key itself */
			leaf_put(ts, l, (uint64_t)key << LEAF_SHIFT);
		}
		if (key == (Word_t)(last >> LEAF_SHIFT))
			break;
	}
	pthread_mutex_unlock(&ts->lock);
}

void tm_tagstore_fini(struct tm_tagstore *ts)
{
	if (ts->packed == 0)
		return;
	tm_tagstore_invalidate(ts, 0, UINT64_MAX, NULL, NULL);
	JudyLFreeArray((PPvoid_t)&ts->judy, PJE0);
	tm_valslab_fini(&ts->slab);
	pthread_mutex_destroy(&ts->lock);
	ts->packed = 0;
}

void tm_tagstore_get_stats(struct tm_tagstore *ts, tm_tagstore_stats *st)
{
	struct tm_valslab_stats ss;

	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&ts->lock);
	for (unsigned c = 0; c < TM_TS_NCLASSES; c++) {
		st->allocs[c] = ts->allocs[c];
		st->frees[c] = ts->frees[c];
		st->live[c] = ts->allocs[c] - ts->frees[c];
		st->entries += st->live[c];
	}
	st->bytes_used = ts->bytes_used;
	st->bytes_uncompressed = st->entries * ts->packed;
	st->index_bytes = JudyLMemUsed(ts->judy) + ts->leaves * sizeof(struct ts_leaf);
	tm_valslab_stats(&ts->slab, &ss);
	st->object_bytes = ss.bytes_held;
	pthread_mutex_unlock(&ts->lock);
}
