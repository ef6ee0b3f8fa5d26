/*
 * tagstream.c - the stream tag codec: many pages' packed metadata in one
 * block, for migration packets and snapshot files. The byte format is
 * specified in docs/FORMAT.md §tags ("Tag stream"); in short:
 *
 *   header   version (1), flags (bit 0: body is one zstd frame),
 *            varint npages, [varint body length when zstd]
 *   body     class bytes: 2 bits per page, 4 pages per byte, page i in
 *            bits 2*(i%4) of byte i/4
 *            then per page in order, by class:
 *              0 zero    nothing
 *              1 one     1 byte: the value (non-zero)
 *              2 runs    varint ((nruns - 2) << 1 | regular); values of
 *                        the runs (nibbles, low first, for items of <= 4
 *                        bits; bytes for 8); then the lengths:
 *                          regular = 0: nruns - 1 varints (length - 1)
 *                          regular = 1: varint (first length - 1), varint
 *                            (period - 1): every run but the first and the
 *                            last is `period` long
 *                        the last run's length is what is left of the page
 *              3 raw     the page's packed bytes
 *
 * Runs are in address order (unlike EA0), so a chunk boundary at an odd
 * granule costs nothing extra. The encoder uses the regular form only when
 * asked (TM_TAGSTREAM_REGULAR); decoders always accept it. It exists because allocators
 * that serve each size class from its own region (Scudo's primary) fill a
 * page with chunks of one size: their tags are a run per chunk, all of the
 * same length, and only the values carry information. The encoder picks raw whenever runs would
 * not be smaller, so no page ever costs more than its packed size plus
 * two bits.
 *
 * The decoder never trusts its input: it walks the whole block once to
 * validate (classes, values, run lengths summing exactly to the page,
 * truncation, trailing bytes) and only then walks it again writing the
 * output, so a bad block leaves the caller's buffer untouched. Errors are
 * -EBADMSG naming the page and the byte offset.
 */
#include "tagmem/tags.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "tags/runs.h"
#include "tags/tagstream_internal.h"

#define TS_ZSTD_LEVEL 3
#define TS_HEADER_MAX (2 + 10 + 10)

/* The geometry as the codec sees it. */
struct ts_geom {
	size_t items;     /* items per page (0: no metadata) */
	unsigned bits;    /* item width */
	size_t pbytes;    /* packed bytes per page */
	unsigned maxval;  /* largest item value */
	size_t max_runs;  /* encoder: more runs than this never beat raw in the
			   * form in use (0 outside the encoder) */
	bool regular;     /* encoder: regular form allowed */
};

static size_t values_bytes(const struct ts_geom *t, size_t n);

/* Fewest payload bytes a page of n >= 2 runs can cost (1-byte lengths). */
static size_t runs_floor(const struct ts_geom *t, size_t n, bool regular)
{
	size_t lens = regular && n >= 3 ? 2 : n - 1;

	return varint_len((n - 2) << 1) + values_bytes(t, n) + lens;
}

/*
 * The most runs whose cheapest encoding beats raw. runs_floor() never
 * decreases as n grows, so a binary search finds the limit in a handful of
 * steps; this runs on every encode call (swap encodes page by page), where a
 * linear walk over up to 256 run counts cost more than the encoding itself.
 */
static size_t max_useful_runs(const struct ts_geom *t, bool regular)
{
	size_t lo = 2, hi = t->items < TS_MAX_RUNS ? t->items : TS_MAX_RUNS;

	if (hi < lo)
		return lo;
	while (lo < hi) {          /* invariant: lo is useful (or is 2) */
		size_t mid = lo + (hi - lo + 1) / 2;

		if (runs_floor(t, mid, regular) < t->pbytes)
			lo = mid;
		else
			hi = mid - 1;
	}
	return lo;
}

static int ts_geom_from(const tm_geom *g, struct ts_geom *t, tm_error *err)
{
	t->items = tm_geom_granules(g);
	t->pbytes = tm_geom_packed_bytes(g);
	t->bits = g->bits;
	if (t->items && g->bits != 1 && g->bits != 2 && g->bits != 4 && g->bits != 8)
		return tm_error_set(err, -EINVAL, "tag stream: %u-bit items are not supported",
				    g->bits);
	t->maxval = t->items ? (1u << g->bits) - 1 : 0;
	/* Only the encoder needs the run limit (tm_tagstream_encode): decoders
	 * and the size queries do not pay for its search. */
	t->max_runs = 0;
	t->regular = false;
	return 0;
}

static size_t values_bytes(const struct ts_geom *t, size_t n)
{
	return t->bits <= 4 ? (n + 1) / 2 : n;
}

/* ------------------------------------------------------------------ */
/* encoder                                                             */
/* ------------------------------------------------------------------ */

struct run_buf {
	uint8_t val[TS_MAX_RUNS];
	uint16_t lenm1[TS_MAX_RUNS];  /* length - 1 */
	size_t n;
	bool regular;                 /* all runs but the first and last equal */
	size_t cost;                  /* payload bytes of the runs class */
};

static bool is_regular(const struct run_buf *rb)
{
	if (rb->n < 3)
		return false;
	for (size_t i = 2; i + 1 < rb->n; i++)
		if (rb->lenm1[i] != rb->lenm1[1])
			return false;
	return true;
}

/*
 * 4-bit items in whole words (MTE tags: every page size): the run count and
 * the runs themselves straight from the words, without the general
 * iterator's per-word width dispatch and library popcount. This is the
 * swap tag store's path (one page per call), where the general walk cost
 * more than the encoding. Same runs, same bytes as the general path.
 */
static bool fast4(const struct ts_geom *t)
{
	return t->bits == 4 && t->pbytes % 8 == 0 && t->pbytes * 2 == t->items;
}

/* Runs of a page, or a value > limit once there are more than limit. */
static size_t count4(const struct ts_geom *t, const uint8_t *page, size_t limit)
{
	size_t words = t->pbytes / 8, n = 1;
	uint64_t prev = 0, w;

	for (size_t k = 0; k < words && n <= limit; k++) {
		memcpy(&w, page + 8 * k, 8);
		n += flags4(starts4(w, prev, k));
		prev = w;
	}
	return n;
}

static unsigned item4(const uint8_t *page, size_t i)
{
	return (page[i / 2] >> ((i & 1) * 4)) & 0xF;
}

/* The runs of a page with at most TS_MAX_RUNS of them (count4 said so). */
static void extract4(const struct ts_geom *t, const uint8_t *page, struct run_buf *rb)
{
	size_t words = t->pbytes / 8, start = 0, n = 0;
	uint64_t prev = 0, w;

	for (size_t k = 0; k < words; k++) {
		memcpy(&w, page + 8 * k, 8);
		for (uint64_t m = starts4(w, prev, k); m; m &= m - 1) {
			size_t s = k * 16 + (size_t)__builtin_ctzll(m) / 4;

			rb->val[n] = (uint8_t)item4(page, start);
			rb->lenm1[n] = (uint16_t)(s - start - 1);
			n++;
			start = s;
		}
		prev = w;
	}
	rb->val[n] = (uint8_t)item4(page, start);
	rb->lenm1[n] = (uint16_t)(t->items - start - 1);
	rb->n = n + 1;
}

/* The runs of a page through the general iterator (any item width). */
static void extract_any(const struct ts_geom *t, const uint8_t *page, struct run_buf *rb)
{
	tm_run_iter it;
	unsigned v;
	size_t len;

	tm_run_iter_init(&it, page, t->items, t->bits, false);
	rb->n = 0;
	while (tm_run_next(&it, &v, &len)) {
		rb->val[rb->n] = (uint8_t)v;
		rb->lenm1[rb->n] = (uint16_t)(len - 1);
		rb->n++;
	}
}

/*
 * Pick a page's class; for runs, leave them in rb. Runs are counted first a
 * word at a time, so pages that can only be raw (random tags, tiny chunks)
 * never pay for the walk.
 */
static int classify(const struct ts_geom *t, const uint8_t *page, struct run_buf *rb)
{
	size_t lens_cost = 0;

	if (t->items == 0)
		return C_ZERO;
	size_t limit = t->max_runs;
	bool f4 = fast4(t);
	size_t n = f4 ? count4(t, page, limit)
		      : tm_run_count(page, t->items, t->bits, false, limit);
	if (n == 1)
		return tm_item_get(page, t->bits, 0, false) ? C_ONE : C_ZERO;
	if (n > limit)
		return C_RAW;
	if (f4)
		extract4(t, page, rb);
	else
		extract_any(t, page, rb);
	rb->regular = t->regular && is_regular(rb);
	if (rb->regular) {
		lens_cost = varint_len(rb->lenm1[0]) + varint_len(rb->lenm1[1]);
	} else {
		for (size_t i = 0; i + 1 < rb->n; i++)
			lens_cost += varint_len(rb->lenm1[i]);
	}
	rb->cost = varint_len((rb->n - 2) << 1 | rb->regular) + values_bytes(t, rb->n) + lens_cost;
	return rb->cost < t->pbytes ? C_RUNS : C_RAW;
}

static size_t emit_runs(const struct ts_geom *t, const struct run_buf *rb, uint8_t *p)
{
	size_t o = varint_put(p, (rb->n - 2) << 1 | rb->regular);

	if (t->bits <= 4) {
		size_t vb = values_bytes(t, rb->n);

		memset(p + o, 0, vb);
		for (size_t i = 0; i < rb->n; i++)
			p[o + i / 2] |= (uint8_t)(rb->val[i] << ((i & 1) * 4));
		o += vb;
	} else {
		memcpy(p + o, rb->val, rb->n);
		o += rb->n;
	}
	if (rb->regular) {
		o += varint_put(p + o, rb->lenm1[0]);
		return o + varint_put(p + o, rb->lenm1[1]);
	}
	for (size_t i = 0; i + 1 < rb->n; i++)
		o += varint_put(p + o, rb->lenm1[i]);
	return o;
}

static int out_full(tm_error *err, size_t page, size_t need, size_t cap)
{
	return tm_error_set(err, -ENOSPC,
			    "tag stream: output buffer full at page %zu (needs %zu bytes, capacity %zu)",
			    page, need, cap);
}

/* Classes then payloads into dst[0..cap); *len receives the body size. */
static int encode_body(const struct ts_geom *t, const uint8_t *packed, size_t npages,
		       uint8_t *dst, size_t cap, size_t *len, tm_error *err)
{
	size_t cbytes = (npages + 3) / 4, o = cbytes;
	struct run_buf rb;

	if (cap < cbytes)
		return out_full(err, 0, cbytes, cap);
	memset(dst, 0, cbytes);
	for (size_t i = 0; i < npages; i++) {
		const uint8_t *page = packed + i * t->pbytes;
		int cls = classify(t, page, &rb);
		size_t need = cls == C_ZERO ? 0 : cls == C_ONE ? 1 :
			      cls == C_RUNS ? rb.cost : t->pbytes;

		if (cap - o < need)
			return out_full(err, i, o + need, cap);
		dst[i / 4] |= (uint8_t)(cls << (2 * (i % 4)));
		if (cls == C_ONE)
			dst[o] = (uint8_t)tm_item_get(page, t->bits, 0, false);
		else if (cls == C_RUNS)
			emit_runs(t, &rb, dst + o);
		else if (cls == C_RAW)
			memcpy(dst + o, page, t->pbytes);
		o += need;
	}
	*len = o;
	return 0;
}

static bool body_bound(const struct ts_geom *t, size_t npages, size_t *out)
{
	size_t raw;

	if (__builtin_mul_overflow(npages, t->pbytes, &raw))
		return false;
	return !__builtin_add_overflow(raw, (npages + 3) / 4, out);
}

size_t tm_tagstream_page_min_bytes(const tm_geom *g, size_t nruns, unsigned flags)
{
	struct ts_geom t;

	if (ts_geom_from(g, &t, NULL) || nruns <= 1 || t.items == 0)
		return 0;
	size_t floor = runs_floor(&t, nruns, flags & TM_TAGSTREAM_REGULAR);
	return floor < t.pbytes ? floor : t.pbytes;
}

size_t tm_tagstream_bound(const tm_geom *g, size_t npages)
{
	struct ts_geom t;
	size_t b;

	if (ts_geom_from(g, &t, NULL) || !body_bound(&t, npages, &b) ||
	    b > SIZE_MAX - TS_HEADER_MAX)
		return SIZE_MAX;
	return b + TS_HEADER_MAX;
}

static size_t put_header(uint8_t *p, unsigned flags, size_t npages, size_t rawlen)
{
	size_t o = 0;

	p[o++] = TS_VERSION;
	p[o++] = (uint8_t)flags;
	o += varint_put(p + o, npages);
	if (flags & TS_FLAG_ZSTD)
		o += varint_put(p + o, rawlen);
	return o;
}

static int encode_plain(const struct ts_geom *t, const uint8_t *packed, size_t npages,
			uint8_t *out, size_t cap, size_t *outlen, tm_error *err)
{
	uint8_t hdr[TS_HEADER_MAX];
	size_t h = put_header(hdr, 0, npages, 0), blen;
	int rc;

	if (cap < h)
		return out_full(err, 0, h, cap);
	memcpy(out, hdr, h);
	rc = encode_body(t, packed, npages, out + h, cap - h, &blen, err);
	if (rc)
		return rc;
	*outlen = h + blen;
	return 0;
}

/* ------------------------------------------------------------------ */
/* codec context: the zstd pass's contexts and body buffer, kept by the  */
/* caller so a block does not pay for allocating them                   */
/* ------------------------------------------------------------------ */

struct tm_tagstream_ctx {
	ZSTD_CCtx *cctx;
	ZSTD_DCtx *dctx;
	uint8_t *body;
	size_t body_cap;
};

int tm_tagstream_ctx_new(tm_tagstream_ctx **out, tm_error *err)
{
	*out = calloc(1, sizeof(**out));
	return *out ? 0 : tm_error_set(err, -ENOMEM, "tag stream: no memory for a codec context");
}

/* Releases what c holds, not c itself (also for the on-stack contexts of
 * the context-less calls). */
static void ctx_release(tm_tagstream_ctx *c)
{
	ZSTD_freeCCtx(c->cctx);
	ZSTD_freeDCtx(c->dctx);
	free(c->body);
}

void tm_tagstream_ctx_free(tm_tagstream_ctx *c)
{
	if (!c)
		return;
	ctx_release(c);
	free(c);
}

/* The body buffer, grown to at least n bytes; NULL when out of memory. */
static uint8_t *ctx_body(tm_tagstream_ctx *c, size_t n)
{
	if (n == 0)
		n = 1;
	if (c->body_cap < n) {
		uint8_t *b = realloc(c->body, n);

		if (!b)
			return NULL;
		c->body = b;
		c->body_cap = n;
	}
	return c->body;
}

/* Body into the context's scratch, then one zstd frame if that is smaller. */
static int encode_zstd(tm_tagstream_ctx *c, const struct ts_geom *t, const uint8_t *packed,
		       size_t npages, uint8_t *out, size_t cap, size_t *outlen, tm_error *err)
{
	uint8_t hdr[TS_HEADER_MAX];
	size_t bound, blen, h;
	uint8_t *body;
	int rc;

	if (!body_bound(t, npages, &bound))
		return tm_error_set(err, -EOVERFLOW, "tag stream: %zu pages overflow", npages);
	body = ctx_body(c, bound);
	if (!c->cctx)
		c->cctx = ZSTD_createCCtx();
	if (!body || !c->cctx)
		return tm_error_set(err, -ENOMEM, "tag stream: no memory for a %zu-byte body", bound);
	rc = encode_body(t, packed, npages, body, bound, &blen, err);
	if (rc == 0) {
		h = put_header(hdr, TS_FLAG_ZSTD, npages, blen);
		size_t z = cap > h ? ZSTD_compressCCtx(c->cctx, out + h, cap - h, body, blen, TS_ZSTD_LEVEL) : 0;

		if (cap > h && !ZSTD_isError(z) && z < blen) {
			memcpy(out, hdr, h);
			*outlen = h + z;
		} else {
			h = put_header(hdr, 0, npages, 0);
			if (cap < h + blen) {
				rc = out_full(err, npages ? npages - 1 : 0, h + blen, cap);
			} else {
				memcpy(out, hdr, h);
				memcpy(out + h, body, blen);
				*outlen = h + blen;
			}
		}
	}
	return rc;
}

int tm_tagstream_encode_ctx(tm_tagstream_ctx *c, const tm_geom *g, const uint8_t *packed,
			    size_t npages, unsigned flags, uint8_t *out,
			    size_t cap, size_t *outlen, tm_error *err)
{
	struct ts_geom t;
	int rc = ts_geom_from(g, &t, err);

	if (rc)
		return rc;
	if (flags & ~(unsigned)(TM_TAGSTREAM_ZSTD | TM_TAGSTREAM_REGULAR))
		return tm_error_set(err, -EINVAL, "tag stream: unknown flags 0x%x", flags);
	t.regular = flags & TM_TAGSTREAM_REGULAR;
	/* The limit of the form in use only: the search runs on every call. */
	t.max_runs = t.items ? max_useful_runs(&t, t.regular) : 0;
	if (!(flags & TM_TAGSTREAM_ZSTD))
		return encode_plain(&t, packed, npages, out, cap, outlen, err);
	if (c)
		return encode_zstd(c, &t, packed, npages, out, cap, outlen, err);
	tm_tagstream_ctx tmp = { 0 };

	rc = encode_zstd(&tmp, &t, packed, npages, out, cap, outlen, err);
	ctx_release(&tmp);
	return rc;
}

int tm_tagstream_encode(const tm_geom *g, const uint8_t *packed,
			size_t npages, unsigned flags, uint8_t *out,
			size_t cap, size_t *outlen, tm_error *err)
{
	return tm_tagstream_encode_ctx(NULL, g, packed, npages, flags, out, cap, outlen, err);
}

/* ------------------------------------------------------------------ */
/* decoder                                                             */
/* ------------------------------------------------------------------ */

/* Where in the input a body offset lies, for messages. */
struct ts_where {
	bool zstd;        /* offsets are into the zstd-decoded body */
	size_t base;      /* stream offset of body byte 0 (plain bodies) */
	tm_error *err;
	tm_tagstream_ctx *ctx; /* zstd context and body buffer */
};

static int bad(const struct ts_where *w, size_t page, size_t off, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int bad(const struct ts_where *w, size_t page, size_t off, const char *fmt, ...)
{
	char why[256];
	va_list ap;

	if (!w->err)
		return -EBADMSG;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (w->zstd)
		return tm_error_set(w->err, -EBADMSG,
				    "tag stream: page %zu, byte %zu of the zstd-decoded body: %s",
				    page, off, why);
	return tm_error_set(w->err, -EBADMSG, "tag stream: page %zu, byte %zu: %s",
			    page, w->base + off, why);
}

static unsigned run_value(const struct ts_geom *t, const uint8_t *v, size_t i)
{
	return t->bits <= 4 ? (v[i / 2] >> ((i & 1) * 4)) & 0xF : v[i];
}

/* Check a runs payload's values: in range, neighbours differ, padding 0. */
static int check_values(const struct ts_geom *t, const uint8_t *v, size_t n,
			const struct ts_where *w, size_t page, size_t off)
{
	for (size_t i = 0; i < n; i++) {
		unsigned x = run_value(t, v, i);

		if (x > t->maxval)
			return bad(w, page, off + values_bytes(t, i + 1) - 1,
				   "run %zu has value %u, above the %u-bit maximum", i, x, t->bits);
		if (i && x == run_value(t, v, i - 1))
			return bad(w, page, off + values_bytes(t, i + 1) - 1,
				   "runs %zu and %zu have the same value %u", i - 1, i, x);
	}
	if (t->bits <= 4 && (n & 1) && (v[n / 2] >> 4))
		return bad(w, page, off + n / 2, "padding nibble after run %zu is not 0", n - 1);
	return 0;
}

/* Read a run length (stored minus one); 0 or an error naming what. */
static int get_len(const uint8_t *b, size_t blen, size_t *o, uint64_t *len,
		   size_t page, const char *what, size_t i, const struct ts_where *w)
{
	size_t used;
	int rc = varint_get(b + *o, blen - *o, len, &used);

	if (rc)
		return bad(w, page, *o, "%s %s of run %zu", rc == -1 ? "truncated" : "malformed",
			   what, i);
	*o += used;
	/* saturate: 2^64 - 1 + 1 would wrap to a run of no items, which the
	 * callers' range checks would then let through */
	*len = *len == UINT64_MAX ? UINT64_MAX : *len + 1;
	return 0;
}

/* The lengths of a regular payload: check they tile the page. */
static int regular_lens(const struct ts_geom *t, const uint8_t *b, size_t blen, size_t *o,
			size_t n, uint64_t *first, uint64_t *period, size_t page,
			const struct ts_where *w)
{
	size_t at = *o;
	int rc = get_len(b, blen, o, first, page, "length", 0, w);

	if (!rc)
		rc = get_len(b, blen, o, period, page, "period", 1, w);
	if (rc)
		return rc;
	if (*first >= t->items || *period >= t->items ||
	    *first + (n - 2) * *period >= t->items)
		return bad(w, page, at, "regular runs (first %llu, %zu x %llu) leave nothing for "
			   "the last run of a %zu-item page", (unsigned long long)*first, n - 2,
			   (unsigned long long)*period, t->items);
	return 0;
}

/* Parse (and with out != NULL, write) one runs payload at b[*pos]; check:
 * also check the run values (a pass that writes after a validating pass
 * has them checked already). A checking pass that writes is the one-pass
 * decode: out is its buffer, with room for fill4_seq's overshoot. */
static int walk_runs(const struct ts_geom *t, const uint8_t *b, size_t blen, size_t *pos,
		     size_t page, uint8_t *out, bool check, const struct ts_where *w)
{
	uint64_t h, first = 0, period = 0;
	size_t used, o = *pos;
	int rc = varint_get(b + o, blen - o, &h, &used);

	if (rc)
		return bad(w, page, o, rc == -1 ? "truncated run count" : "malformed run count");
	uint64_t n = (h >> 1) + 2;
	bool regular = h & 1;
	if (n > t->items || n > TS_MAX_RUNS)
		return bad(w, page, o, "%llu runs in a page of %zu items",
			   (unsigned long long)n, t->items);
	if (regular && n < 3)
		return bad(w, page, o, "regular form with %llu runs (needs 3 or more)",
			   (unsigned long long)n);
	o += used;
	size_t vb = values_bytes(t, n);
	if (blen - o < vb)
		return bad(w, page, blen, "truncated: %zu bytes of run values, %zu left", vb, blen - o);
	const uint8_t *vals = b + o;
	if (check && (rc = check_values(t, vals, n, w, page, o)))
		return rc;
	o += vb;
	if (regular && (rc = regular_lens(t, b, blen, &o, n, &first, &period, page, w)))
		return rc;
	size_t start = 0;
	for (size_t i = 0; i < n; i++) {
		uint64_t len = t->items - start;

		if (regular && i + 1 < n) {
			len = i == 0 ? first : period;
		} else if (i + 1 < n) {
			size_t at = o;

			if ((rc = get_len(b, blen, &o, &len, page, "length", i, w)))
				return rc;
			if (len >= t->items - start)
				return bad(w, page, at, "run %zu of %llu items leaves nothing for "
					   "the last run (%zu items left)", i,
					   (unsigned long long)len, t->items - start);
		}
		if (out && check && t->bits == 4)
			fill4_seq(out, start, len, run_value(t, vals, i));
		else if (out)
			tm_items_fill(out, t->bits, start, len, run_value(t, vals, i), false);
		start += len;
	}
	*pos = o;
	return 0;
}

/* One page's payload at b[*pos]: validate, and write it when out != NULL. */
static int walk_page(const struct ts_geom *t, int cls, const uint8_t *b, size_t blen,
		     size_t *pos, size_t page, uint8_t *out, bool check,
		     const struct ts_where *w)
{
	size_t o = *pos;

	if (cls != C_ZERO && t->items == 0)
		return bad(w, page, page / 4, "class %d but the geometry carries no metadata", cls);
	switch (cls) {
	case C_ZERO:
		if (out)
			memset(out, 0, t->pbytes);
		return 0;
	case C_ONE:
		if (o >= blen)
			return bad(w, page, o, "truncated: one-value page without its value");
		if (b[o] == 0 || b[o] > t->maxval)
			return bad(w, page, o, "one-value page with value %u (want 1..%u)",
				   b[o], t->maxval);
		if (out)
			tm_items_fill(out, t->bits, 0, t->items, b[o], false);
		*pos = o + 1;
		return 0;
	case C_RUNS:
		return walk_runs(t, b, blen, pos, page, out, check, w);
	default:
		if (blen - o < t->pbytes)
			return bad(w, page, blen, "truncated: raw page needs %zu bytes, %zu left",
				   t->pbytes, blen - o);
		if (out)
			memcpy(out, b + o, t->pbytes);
		*pos = o + t->pbytes;
		return 0;
	}
}

static int walk_body(const struct ts_geom *t, const uint8_t *b, size_t blen, size_t npages,
		     uint8_t *packed, bool check, const struct ts_where *w)
{
	size_t cbytes = (npages + 3) / 4, pos = cbytes;

	if (blen < cbytes)
		return bad(w, blen * 4, blen, "truncated: %zu class bytes for %zu pages, %zu present",
			   cbytes, npages, blen);
	if (npages % 4 && (b[cbytes - 1] >> (2 * (npages % 4))))
		return bad(w, npages - 1, cbytes - 1, "unused class bits after the last page are not 0");
	for (size_t i = 0; i < npages; i++) {
		int cls = (b[i / 4] >> (2 * (i % 4))) & 3;
		int rc = walk_page(t, cls, b, blen, &pos, i,
				   packed ? packed + i * t->pbytes : NULL, check, w);

		if (rc)
			return rc;
	}
	if (pos != blen)
		return bad(w, npages ? npages - 1 : 0, pos, "%zu trailing bytes after the last page",
			   blen - pos);
	return 0;
}

/* Bodies whose tags fit this many bytes decode in one pass (below). */
#define TS_ONEPASS_MAX 4096u

/*
 * Validate the whole body, then decode it: nothing reaches packed unless
 * all of it is good. A small body (swap decodes one page at a time) takes
 * one pass that validates while it decodes into a local buffer, copied out
 * only when the body is good: the same guarantee for half the parsing.
 */
static int decode_body(const struct ts_geom *t, const uint8_t *b, size_t blen, size_t npages,
		       uint8_t *packed, const struct ts_where *w)
{
	if (t->pbytes && npages <= TS_ONEPASS_MAX / t->pbytes) {
		uint8_t buf[TS_ONEPASS_MAX + 8];     /* + fill4_seq's overshoot */
		int rc = walk_body(t, b, blen, npages, buf, true, w);

		if (!rc && npages)
			memcpy(packed, buf, npages * t->pbytes);
		return rc;
	}
	int rc = walk_body(t, b, blen, npages, NULL, true, w);

	return rc ? rc : walk_body(t, b, blen, npages, packed, false, w);
}

static int decode_zstd(const struct ts_geom *t, const uint8_t *in, size_t inlen, size_t off,
		       size_t npages, uint8_t *packed, struct ts_where *w)
{
	uint64_t rawlen;
	size_t used, bound = 0;
	int rc = varint_get(in + off, inlen - off, &rawlen, &used);

	if (rc)
		return bad(w, 0, off, rc == -1 ? "truncated body length" : "malformed body length");
	if (!body_bound(t, npages, &bound) || rawlen > bound)
		return bad(w, 0, off, "body length %llu exceeds the %zu-byte maximum for %zu pages",
			   (unsigned long long)rawlen, bound, npages);
	off += used;
	size_t fsize = ZSTD_findFrameCompressedSize(in + off, inlen - off);
	if (ZSTD_isError(fsize))
		return bad(w, 0, off, "bad zstd frame: %s", ZSTD_getErrorName(fsize));
	if (fsize != inlen - off)
		return bad(w, 0, off + fsize, "%zu trailing bytes after the zstd frame",
			   inlen - off - fsize);
	uint8_t *body = ctx_body(w->ctx, rawlen);
	if (body && !w->ctx->dctx)
		w->ctx->dctx = ZSTD_createDCtx();
	if (!body || !w->ctx->dctx)
		return tm_error_set(w->err, -ENOMEM, "tag stream: no memory for a %llu-byte body",
				    (unsigned long long)rawlen);
	size_t got = ZSTD_decompressDCtx(w->ctx->dctx, body, rawlen, in + off, fsize);
	if (ZSTD_isError(got) || got != rawlen) {
		rc = bad(w, 0, off, "zstd frame does not decode to the %llu bytes announced (%s)",
			 (unsigned long long)rawlen,
			 ZSTD_isError(got) ? ZSTD_getErrorName(got) : "wrong size");
	} else {
		w->zstd = true;
		rc = decode_body(t, body, rawlen, npages, packed, w);
	}
	return rc;
}

int tm_tagstream_decode(const tm_geom *g, const uint8_t *in, size_t inlen,
			size_t npages, uint8_t *packed, tm_error *err)
{
	return tm_tagstream_decode_ctx(NULL, g, in, inlen, npages, packed, err);
}

int tm_tagstream_decode_ctx(tm_tagstream_ctx *c, const tm_geom *g, const uint8_t *in,
			    size_t inlen, size_t npages, uint8_t *packed, tm_error *err)
{
	struct ts_where w = { .zstd = false, .base = 0, .err = err, .ctx = c };
	struct ts_geom t;
	uint64_t n;
	size_t used;
	int rc = ts_geom_from(g, &t, err);

	if (rc)
		return rc;
	if (inlen < 2)
		return bad(&w, 0, inlen, "truncated header (%zu bytes)", inlen);
	if (in[0] != TS_VERSION)
		return bad(&w, 0, 0, "format version %u (this build reads %u)", in[0], TS_VERSION);
	if (in[1] & ~TS_FLAG_ZSTD)
		return bad(&w, 0, 1, "unknown flags 0x%02x", in[1]);
	rc = varint_get(in + 2, inlen - 2, &n, &used);
	if (rc)
		return bad(&w, 0, 2, rc == -1 ? "truncated page count" : "malformed page count");
	if (n != npages)
		return bad(&w, 0, 2, "block holds %llu pages, caller expects %zu",
			   (unsigned long long)n, npages);
	if ((in[1] & TS_FLAG_ZSTD) && c)
		return decode_zstd(&t, in, inlen, 2 + used, npages, packed, &w);
	if (in[1] & TS_FLAG_ZSTD) {
		tm_tagstream_ctx tmp = { 0 };

		w.ctx = &tmp;
		rc = decode_zstd(&t, in, inlen, 2 + used, npages, packed, &w);
		ctx_release(&tmp);
		return rc;
	}
	w.base = 2 + used;
	return decode_body(&t, in + w.base, inlen - w.base, npages, packed, &w);
}
