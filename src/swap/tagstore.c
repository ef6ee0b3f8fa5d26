/*
 * tagstore.c - the swap tag store: slot -> tag value in a JudyL array, and
 * the value encoding (EA0 inline, stream-codec record or raw), with the
 * per-size-class counters the EA0 series exposed in debugfs.
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

int tm_tagstore_init(struct tm_tagstore *ts, uint32_t page_size, tm_error *err)
{
	int rc;

	memset(ts, 0, sizeof(*ts));
	rc = tm_geom_mte(&ts->geom, page_size, err);
	if (rc)
		return rc;
	if (tm_tagstream_bound(&ts->geom, 1) > TM_TS_SCRATCH)
		return tm_error_set(err, -EOVERFLOW,
				    "tag store: stream bound %zu for one %u B page exceeds the %u B scratch",
				    tm_tagstream_bound(&ts->geom, 1), page_size,
				    TM_TS_SCRATCH);
	ts->packed = tm_geom_packed_bytes(&ts->geom);
	ts->max_record = max_record(ts->packed);
	rc = init_uniform(ts, err);
	if (!rc && pthread_mutex_init(&ts->lock, NULL) != 0)
		rc = tm_error_set(err, -ENOMEM, "tag store: mutex init failed");
	if (rc)
		memset(ts, 0, sizeof(*ts));
	return rc;
}

/* Smallest stream class holding a record of len bytes, or RAW_CLASS when
 * the raw tags are no bigger. */
static unsigned stream_class(const struct tm_tagstore *ts, size_t len)
{
	for (unsigned c = 0; c < RAW_CLASS; c++) {
		size_t cap = (size_t)16 << c;

		if (cap >= ts->packed)
			return RAW_CLASS;
		if (len + 2 <= cap)
			return c;
	}
	return RAW_CLASS;
}

/* A value keeps its class in the pointer's low 4 bits, so allocations
 * must be 16-byte aligned: malloc's are wherever max_align_t is (x86-64,
 * arm64), and plain malloc skips glibc's memalign path (~90 instructions
 * per value on swap-out). */
_Static_assert(_Alignof(max_align_t) >= 16, "tag values need 16-byte aligned malloc");

static int make_alloc(const struct tm_tagstore *ts, unsigned cls,
		      const uint8_t *bytes, size_t len, uint64_t *val,
		      tm_error *err)
{
	size_t cap = cls == RAW_CLASS ? ts->packed : (size_t)16 << cls;
	uint8_t *p = malloc(cap);   /* 16-aligned: see the assertion above */

	if (!p)
		return tm_error_set(err, -ENOMEM,
				    "tag store: cannot allocate a %zu B tag value", cap);
	if ((uintptr_t)p & 15) {    /* an interposed malloc that breaks C11 */
		uintptr_t bad = (uintptr_t)p;

		free(p);
		return tm_error_set(err, -EINVAL,
				    "tag store: malloc returned 0x%llx, not 16-byte aligned",
				    (unsigned long long)bad);
	}
	if (cls == RAW_CLASS) {
		memcpy(p, bytes, ts->packed);
	} else {
		p[0] = (uint8_t)(len & 0xFF);
		p[1] = (uint8_t)(len >> 8);
		memcpy(p + 2, bytes, len);
		memset(p + 2 + len, 0, cap - 2 - len);
	}
	*val = (uint64_t)(uintptr_t)p | ((uint64_t)cls << 1);
	return 0;
}

int tm_ts_value_make(const struct tm_tagstore *ts, const uint8_t *packed,
		     uint64_t *val, tm_error *err)
{
	uint8_t scratch[TM_TS_SCRATCH];
	uint64_t handle;
	size_t len;
	int t = uniform_tag(ts, packed), rc;

	if (t >= 0) {
		*val = ts->uniform[t];
		return 0;
	}
	/* An EA0 inline handle has bit 0 set and bit 63 clear (Linux stores it
	 * as an XArray value the same way): it is the value itself. Tried
	 * before the stream encoding: the EA0 encoder gives up at the first
	 * range too many, so a page that does not fit costs a word or two,
	 * and one that fits is not scanned again (measured 30 % of the tag
	 * work when runs were counted first). */
	if (tm_ea0_compress(ts->geom.page_size, packed, &handle, NULL) == 0 &&
	    (handle & 1) && (handle >> 63) == 0) {
		*val = handle;
		return 0;
	}
	rc = tm_tagstream_encode_page(&ts->geom, packed, scratch, ts->max_record, &len,
				      NULL);
	if (rc == -ENOSPC)
		return make_alloc(ts, RAW_CLASS, packed, ts->packed, val, err);
	if (rc)
		return tm_error_set(err, rc, "tag store: stream encode of a page failed");
	return make_alloc(ts, stream_class(ts, len), scratch, len, val, err);
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

void tm_ts_value_free(uint64_t val)
{
	if (!is_inline(val))
		free(ptr_of(val));
}

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

/*
 * Erasing a JudyL key costs several times a lookup, and a freed slot is
 * usually handed out again soon (clusters are reused), so an erased entry
 * stays in the index as a tombstone that the next insert of that slot
 * reuses. Tombstones are swept out once there are more than 65536 of them
 * (about half a MiB of index) and twice as many as live entries: a whole
 * swap-in followed by the next swap-out then pays no erase at all, and the
 * index never holds more than max(65536, 2 x live) dead cells.
 */
#define TOMB ((uint64_t)2)     /* not a value: bit 0 clear, not a pointer */
#define TOMB_SWEEP_MIN 65536u

static uint64_t live_entries(const struct tm_tagstore *ts)
{
	uint64_t n = 0;

	for (unsigned c = 0; c < TM_TS_NCLASSES; c++)
		n += ts->allocs[c] - ts->frees[c];
	return n;
}

/* The value at slot (0: none); *cell receives its index cell or NULL. */
static uint64_t cell_get(struct tm_tagstore *ts, uint64_t slot, PPvoid_t *cell)
{
	PPvoid_t pv = JudyLGet(ts->judy, (Word_t)slot, PJE0);
	uint64_t v;

	*cell = pv == PPJERR ? NULL : pv;
	if (!*cell)
		return 0;
	v = (uint64_t)(uintptr_t)*pv;
	return v == TOMB ? 0 : v;
}

static int cell_put(struct tm_tagstore *ts, uint64_t slot, uint64_t val)
{
	PPvoid_t pv = JudyLIns((PPvoid_t)&ts->judy, (Word_t)slot, PJE0);
	uint64_t old;

	if (pv == PPJERR)
		return -ENOMEM;
	old = (uint64_t)(uintptr_t)*pv;
	if (old && old != TOMB)
		return -EEXIST;
	if (old == TOMB)
		ts->tombs--;
	else
		ts->gen++;      /* a new key: cells may have moved */
	*pv = (void *)(uintptr_t)val;
	count(ts, val, true);
	return 0;
}

static void cell_erase(struct tm_tagstore *ts, PPvoid_t cell, uint64_t val)
{
	*cell = (void *)(uintptr_t)TOMB;
	ts->tombs++;
	count(ts, val, false);
}

/* Delete every tombstone from the index once there are too many. */
static void sweep_tombs(struct tm_tagstore *ts)
{
	Word_t idx = 0;
	PPvoid_t pv;

	if (ts->tombs <= TOMB_SWEEP_MIN || ts->tombs <= 2 * live_entries(ts))
		return;
	for (pv = JudyLFirst(ts->judy, &idx, PJE0); pv && pv != PPJERR;
	     pv = JudyLNext(ts->judy, &idx, PJE0))
		if ((uint64_t)(uintptr_t)*pv == TOMB)
			JudyLDel((PPvoid_t)&ts->judy, idx, PJE0);
	ts->tombs = 0;
	ts->gen++;
}

static int put_error(tm_error *err, int rc, uint64_t slot)
{
	return tm_error_set(err, rc, "tag store: cannot insert tags for slot %llu: %s",
			    (unsigned long long)slot,
			    rc == -EEXIST ? "it already holds tags" : "out of memory");
}

int tm_tagstore_put(struct tm_tagstore *ts, uint64_t slot, uint64_t val,
		    tm_error *err)
{
	int rc;

	pthread_mutex_lock(&ts->lock);
	rc = cell_put(ts, slot, val);
	pthread_mutex_unlock(&ts->lock);
	return rc ? put_error(err, rc, slot) : 0;
}

int tm_tagstore_put_batch(struct tm_tagstore *ts, uint64_t first, size_t n,
			  const uint64_t *vals, tm_error *err)
{
	size_t i;
	int rc = 0;

	pthread_mutex_lock(&ts->lock);
	for (i = 0; i < n && !rc; i++)
		if (vals[i])
			rc = cell_put(ts, first + i, vals[i]);
	/* All or nothing: undo what this call inserted before the failure. */
	for (size_t k = 0; rc && k + 1 < i; k++) {
		PPvoid_t cell;

		if (vals[k] && cell_get(ts, first + k, &cell))
			cell_erase(ts, cell, vals[k]);
	}
	pthread_mutex_unlock(&ts->lock);
	return rc ? put_error(err, rc, first + i - 1) : 0;
}

bool tm_tagstore_take(struct tm_tagstore *ts, uint64_t slot, uint64_t *val)
{
	PPvoid_t cell;

	pthread_mutex_lock(&ts->lock);
	*val = cell_get(ts, slot, &cell);
	if (*val) {
		cell_erase(ts, cell, *val);
		sweep_tombs(ts);
	}
	pthread_mutex_unlock(&ts->lock);
	return *val != 0;
}

bool tm_tagstore_peek(struct tm_tagstore *ts, uint64_t slot, uint64_t *val)
{
	PPvoid_t cell;

	pthread_mutex_lock(&ts->lock);
	*val = cell_get(ts, slot, &cell);
	pthread_mutex_unlock(&ts->lock);
	return *val != 0;
}

/* The value in a cell a peek found (NULL: the slot had no entry). */
static uint64_t cell_value(PPvoid_t cell)
{
	uint64_t v = cell ? (uint64_t)(uintptr_t)*cell : 0;

	return v == TOMB ? 0 : v;
}

static void batch(struct tm_tagstore *ts, uint64_t first, size_t n,
		  const bool *want, uint64_t *vals, bool erase,
		  struct tm_ts_cells *save, const struct tm_ts_cells *reuse)
{
	pthread_mutex_lock(&ts->lock);
	bool fresh = reuse && reuse->gen == ts->gen;

	if (save)
		save->gen = ts->gen;
	for (size_t i = 0; i < n; i++) {
		PPvoid_t cell = NULL;

		if (!want[i]) {
			if (save)
				save->cell[i] = NULL;
			continue;
		}
		if (fresh) {
			cell = reuse->cell[i];
			vals[i] = cell_value(cell);
		} else {
			vals[i] = cell_get(ts, first + i, &cell);
		}
		if (save)
			save->cell[i] = cell;
		if (vals[i] && erase)
			cell_erase(ts, cell, vals[i]);
	}
	if (erase)
		sweep_tombs(ts);
	pthread_mutex_unlock(&ts->lock);
}

void tm_tagstore_peek_batch(struct tm_tagstore *ts, uint64_t first, size_t n,
			    const bool *want, uint64_t *vals,
			    struct tm_ts_cells *cells)
{
	batch(ts, first, n, want, vals, false, cells, NULL);
}

void tm_tagstore_take_batch(struct tm_tagstore *ts, uint64_t first, size_t n,
			    const bool *want, uint64_t *vals,
			    const struct tm_ts_cells *cells)
{
	batch(ts, first, n, want, vals, true, NULL, cells);
}

bool tm_tagstore_has(struct tm_tagstore *ts, uint64_t slot)
{
	uint64_t val;

	return tm_tagstore_peek(ts, slot, &val);
}

void tm_tagstore_invalidate(struct tm_tagstore *ts, uint64_t first,
			    uint64_t last, uint64_t *n, uint64_t *bytes)
{
	Word_t idx = (Word_t)first;
	PPvoid_t pv;

	pthread_mutex_lock(&ts->lock);
	pv = JudyLFirst(ts->judy, &idx, PJE0);
	while (pv && pv != PPJERR && idx <= (Word_t)last) {
		uint64_t val = (uint64_t)(uintptr_t)*pv;
		Word_t at = idx;

		if (val == TOMB) {
			ts->tombs--;
		} else {
			if (n)
				(*n)++;
			if (bytes)
				*bytes += tm_ts_value_bytes(ts, val);
			count(ts, val, false);
			tm_ts_value_free(val);
		}
		JudyLDel((PPvoid_t)&ts->judy, at, PJE0);
		ts->gen++;
		if (at == (Word_t)last)
			break;
		idx = at;
		pv = JudyLNext(ts->judy, &idx, PJE0);
	}
	pthread_mutex_unlock(&ts->lock);
}

void tm_tagstore_fini(struct tm_tagstore *ts)
{
	if (ts->packed == 0)
		return;
	tm_tagstore_invalidate(ts, 0, UINT64_MAX, NULL, NULL);
	JudyLFreeArray((PPvoid_t)&ts->judy, PJE0);
	pthread_mutex_destroy(&ts->lock);
	ts->packed = 0;
}

void tm_tagstore_get_stats(struct tm_tagstore *ts, tm_tagstore_stats *st)
{
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
	st->index_bytes = JudyLMemUsed(ts->judy);
	pthread_mutex_unlock(&ts->lock);
}
