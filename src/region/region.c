/*
 * region.c - the region core: creation (built-in backends and callers'
 * tables, tagmem/backend.h), argument validation and the public
 * page/tag/byte calls, dispatched to the backend through its methods. Every
 * argument is validated here, once, and every error names the region, the
 * page and the byte offset; the backends trust what they are given. Where a
 * backend leaves an optional method out, the fallback is here (read_pages,
 * write_pages, set_tag_range, discard), so no caller above the region needs
 * to know what the backend can do.
 *
 * Per-page state shared by all backends lives in atomic bitmaps (tagged,
 * present, API-dirty), so the hot path takes no lock and allocates nothing.
 */
#include "region/region_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <xxhash.h>

#include "common/abi.h"
#include "region/mte_ops.h"
#include "tagmem/error.h"

/* Largest packed tag block per page the core handles on its stack. */
#define TM_REGION_PACKED_MAX 4096u

/* Zeros for fallbacks that write zero data or tags through a backend. */
static const uint8_t zero_page[TM_PAGE_SIZE_MAX];

/* ---- geometry ----------------------------------------------------- */

static bool pow2(size_t v) { return v && !(v & (v - 1)); }

static int check_geom(const char *name, const tm_geom *g, tm_error *err)
{
	if (g->page_size != 4096 && g->page_size != 16384 &&
	    g->page_size != 65536)
		return tm_error_set(err, -EINVAL,
				    "region '%s': page size %u is not 4, 16 or "
				    "64 KiB", name, g->page_size);
	if (g->kind == TM_META_NONE)
		return 0;
	if (g->kind != TM_META_MTE && g->kind != TM_META_GENERIC)
		return tm_error_set(err, -EINVAL,
				    "region '%s': unknown metadata kind %u",
				    name, g->kind);
	if (g->kind == TM_META_MTE &&
	    (g->granule != TM_MTE_GRANULE || g->bits != TM_MTE_TAG_BITS))
		return tm_error_set(err, -EINVAL,
				    "region '%s': MTE geometry must be 4 bits "
				    "per 16 bytes (got %u bits per %u bytes)",
				    name, g->bits, g->granule);
	if (!pow2(g->granule) || g->granule > g->page_size ||
	    (g->bits != 1 && g->bits != 2 && g->bits != 4 && g->bits != 8))
		return tm_error_set(err, -EINVAL,
				    "region '%s': unsupported metadata geometry "
				    "%u bits per %u bytes", name, g->bits,
				    g->granule);
	if ((size_t)g->page_size / g->granule * g->bits / 8 >
	    TM_REGION_PACKED_MAX ||
	    (size_t)g->page_size / g->granule * g->bits % 8)
		return tm_error_set(err, -EINVAL,
				    "region '%s': %u bits per %u bytes gives "
				    "an unsupported tag size per page", name,
				    g->bits, g->granule);
	return 0;
}

static int check_config(const tm_region_config *cfg, tm_error *err)
{
	const char *name = cfg->name ? cfg->name : "";
	int rc;

	if (strlen(name) >= TM_REGION_NAME_MAX)
		return tm_error_set(err, -ENAMETOOLONG,
				    "region name '%.32s...' is longer than %d "
				    "characters", name, TM_REGION_NAME_MAX - 1);
	rc = check_geom(name, &cfg->geom, err);
	if (rc)
		return rc;
	if (cfg->size == 0 || cfg->size % cfg->geom.page_size)
		return tm_error_set(err, -EINVAL,
				    "region '%s': size %zu is not a non-zero "
				    "multiple of the page size %u", name,
				    cfg->size, cfg->geom.page_size);
	if (cfg->addr && ((uintptr_t)cfg->addr % (uintptr_t)sysconf(_SC_PAGESIZE)))
		return tm_error_set(err, -EINVAL,
				    "region '%s': caller memory %p is not page "
				    "aligned", name, cfg->addr);
	return 0;
}

/* What a table must have for this geometry (backend.h "Required"). */
static int check_methods(const char *name, const tm_backend_methods *m,
			 bool tags, tm_error *err)
{
	const char *be = m->name ? m->name : "?";
	int ndirty;

	if (m->version < 1)
		return tm_error_set(err, -EINVAL, "region '%s': backend '%s': "
				    "version %d (need >= 1)", name, be,
				    m->version);
	if (!m->read_data || !m->write_data)
		return tm_error_set(err, -EINVAL, "region '%s': backend '%s' "
				    "lacks read_data/write_data", name, be);
	if (tags && (!m->read_tags || !m->write_tags))
		return tm_error_set(err, -EINVAL, "region '%s': backend '%s' "
				    "lacks read_tags/write_tags, which a region "
				    "with metadata needs", name, be);
	ndirty = !!m->dirty_start + !!m->dirty_collect + !!m->dirty_stop;
	if (ndirty != 0 && ndirty != 3)
		return tm_error_set(err, -EINVAL, "region '%s': backend '%s' "
				    "has only some of dirty_start/collect/stop",
				    name, be);
	if (m->place && !m->mapping)
		return tm_error_set(err, -EINVAL, "region '%s': backend '%s' "
				    "has place but no mapping to place into",
				    name, be);
	return 0;
}

/*
 * The members of the versions the table has, the rest zero: from here on
 * the core tests members for NULL and never looks at the version again. A
 * version-2 header adds `case 1: return offsetof(tm_backend_methods,
 * <first version-2 member>);`.
 */
static size_t methods_size(int version)
{
	(void)version;
	return sizeof(tm_backend_methods);
}

static void methods_copy(tm_backend_methods *dst, const tm_backend_methods *src)
{
	memset(dst, 0, sizeof(*dst));
	memcpy(dst, src, methods_size(src->version));
}

/* ---- create / destroy ------------------------------------------- */

static _Atomic uint64_t *bitmap_new(size_t nbits, bool ones)
{
	size_t words = tm_words(nbits);
	_Atomic uint64_t *b = calloc(words, sizeof(*b));

	if (!b || !ones)
		return b;
	for (size_t i = 0; i < nbits; i++)
		atomic_fetch_or_explicit(&b[i >> 6], (uint64_t)1 << (i & 63),
					 memory_order_relaxed);
	return b;
}

static void region_free(tm_region *r)
{
	free(r->tagged);
	free(r->present);
	free(r->api_dirty);
	free(r);
}

static void fill_geometry(tm_region *r, const tm_region_config *cfg)
{
	snprintf(r->name, sizeof(r->name), "%s", cfg->name ? cfg->name : "");
	r->geom = cfg->geom;
	r->size = cfg->size;
	r->page_size = cfg->geom.page_size;
	r->page_shift = (unsigned)__builtin_ctzl(r->page_size);
	r->npages = cfg->size / r->page_size;
	if (cfg->geom.kind != TM_META_NONE) {
		r->granules = r->page_size / cfg->geom.granule;
		r->packed_bytes = r->granules * cfg->geom.bits / 8;
	}
}

/* The region with its bitmaps, or NULL: out of memory. */
static tm_region *region_alloc(const tm_region_config *cfg)
{
	tm_region *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	fill_geometry(r, cfg);
	atomic_init(&r->dirty_on, false);
	r->tagged = bitmap_new(r->npages, false);
	r->present = bitmap_new(r->npages, true);
	r->api_dirty = bitmap_new(r->npages, false);
	if (r->tagged && r->present && r->api_dirty)
		return r;
	region_free(r);
	return NULL;
}

/* The backend's mapping, checked: page aligned and covering the region. */
static int adopt_mapping(tm_region *r, tm_error *err)
{
	size_t host = (size_t)sysconf(_SC_PAGESIZE);
	void *base = NULL;
	size_t len = 0;
	int rc;

	if (!r->m.mapping)
		return 0;
	rc = r->m.mapping(r->ctx, &base, &len);
	if (rc)
		return tm_error_wrap(err, rc, "mapping");
	if (!base || (uintptr_t)base % host || len % host ||
	    len < (r->size + host - 1) / host * host)
		return tm_error_set(err, -EINVAL, "mapping %p+%#zx is not host-"
				    "page aligned or smaller than the region "
				    "(%#zx bytes)", base, len, r->size);
	r->map_base = base;
	r->map_len = len;
	return 0;
}

/* Pages the backend says are not resident start not present. */
static int initial_state(tm_region *r, tm_error *err)
{
	uint8_t st[256];

	for (size_t pg = 0; r->m.page_state && pg < r->npages;) {
		size_t n = r->npages - pg < sizeof(st) ? r->npages - pg : sizeof(st);
		int rc = r->m.page_state(r->ctx, pg, n, st, err);

		if (rc)
			return tm_error_wrap(err, rc, "page state of pages "
					     "[%zu, +%zu)", pg, n);
		for (size_t i = 0; i < n; i++)
			if (!(st[i] & TM_PAGE_RESIDENT))
				tm_abit_clear(r->present, pg + i);
		pg += n;
	}
	return 0;
}

/*
 * The one way a region comes to be: cfg already checked, ctx made. With
 * own_ctx (a built-in backend) the ctx is the region's and detach frees it
 * on any failure; a caller's ctx sees detach only after a successful attach.
 */
static int region_init(const tm_region_config *cfg, const tm_backend_methods *m,
		       void *ctx, enum tm_backend be, bool own_ctx,
		       tm_region **out, tm_error *err)
{
	tm_region *r = region_alloc(cfg);
	bool attached = false;
	int rc;

	if (!r) {
		if (own_ctx && m->detach)
			m->detach(ctx);
		return tm_error_set(err, -ENOMEM, "region '%s': out of memory "
				    "for %zu pages of state",
				    cfg->name ? cfg->name : "",
				    cfg->size / cfg->geom.page_size);
	}
	methods_copy(&r->m, m);
	r->ctx = ctx;
	r->backend = be;
	rc = r->m.attach ? r->m.attach(ctx, r, err) : 0;
	attached = rc == 0;
	if (!rc)
		rc = adopt_mapping(r, err);
	if (!rc)
		rc = initial_state(r, err);
	if (!rc) {
		*out = r;
		return 0;
	}
	if (m->detach && (own_ctx || attached))
		m->detach(ctx);
	tm_error_wrap(err, rc, "region '%s': %s backend", r->name,
		      m->name ? m->name : "?");
	region_free(r);
	return rc;
}

int tm_region_create(const tm_region_config *ucfg, tm_region **out,
		     tm_error *err)
{
	tm_region_config copy;    /* the caller's, at this library's size */
	const tm_region_config *cfg = &copy;
	const tm_backend_methods *m;
	const char *name;
	void *ctx = NULL;
	int rc;

	*out = NULL;
	rc = TM_ABI_COPY_IN(tm_region_config, &copy, ucfg, err);
	if (!rc)
		rc = check_config(cfg, err);
	if (rc)
		return rc;
	name = cfg->name ? cfg->name : "";
	if (cfg->backend == TM_BACKEND_SOFT) {
		m = &tm_soft_methods;
		rc = tm_soft_new(cfg, &ctx, err);
	} else if (cfg->backend == TM_BACKEND_MTE) {
		m = &tm_mte_methods;
		rc = tm_mte_new(cfg, &ctx, err);
	} else {
		return tm_error_set(err, -EINVAL, "region '%s': unknown backend "
				    "%d%s", name, (int)cfg->backend,
				    cfg->backend == TM_BACKEND_OTHER ?
				    " (a caller's backend goes through "
				    "tm_region_create_with)" : "");
	}
	if (rc)
		return tm_error_wrap(err, rc, "region '%s': %s backend", name,
				     m->name);
	return region_init(cfg, m, ctx, cfg->backend, true, out, err);
}

int tm_region_create_with(const tm_region_config *ucfg,
			  const tm_backend_methods *methods, void *ctx,
			  tm_region **out, tm_error *err)
{
	tm_region_config copy;    /* the caller's, at this library's size */
	const tm_region_config *cfg = &copy;
	const char *name;
	int rc;

	*out = NULL;
	rc = TM_ABI_COPY_IN(tm_region_config, &copy, ucfg, err);
	if (rc)
		return rc;
	name = cfg->name ? cfg->name : "";
	if (!methods) {
		tm_error_set(err, -EINVAL, "region '%s': no backend methods",
			     name);
		return -EINVAL;
	}
	rc = check_config(cfg, err);
	if (!rc && cfg->addr)
		rc = tm_error_set(err, -EINVAL, "region '%s': caller memory "
				  "(cfg->addr) is the backend's business with "
				  "tm_region_create_with", name);
	if (!rc)
		rc = check_methods(name, methods, cfg->geom.kind != TM_META_NONE,
				   err);
	if (rc)
		return rc;
	return region_init(cfg, methods, ctx, TM_BACKEND_OTHER, false, out, err);
}

#ifdef TM_REGION_CHECKS
/* A region whose bookkeeping went wrong must not vanish quietly in a debug
 * build; destroy cannot return the error, so it stops the process. */
static void check_at_destroy(tm_region *r)
{
	tm_error e;

	tm_error_clear(&e);
	if (tm_region_check_invariants(r, &e) == 0)
		return;
	fprintf(stderr, "tagmem: tm_region_destroy: %s\n", tm_error_msg(&e));
	abort();
}
#endif

void tm_region_destroy(tm_region *r)
{
	if (!r)
		return;
#ifdef TM_REGION_CHECKS
	check_at_destroy(r);
#endif
	tm_lazy_release(r);
	tm_dirty_release(r);
	if (r->m.detach)
		r->m.detach(r->ctx);
	region_free(r);
}

bool tm_mte_available(void)
{
	return tm_mte_hw_available();
}

void tm_region_test_hooks(tm_region *r, unsigned hooks, unsigned delay_ms)
{
	r->test_hooks = hooks;
	r->hook_delay_ms = delay_ms;
}

/* ---- accessors ---------------------------------------------------- */

const char *tm_region_name(const tm_region *r) { return r->name; }
size_t tm_region_size(const tm_region *r) { return r->size; }
size_t tm_region_npages(const tm_region *r) { return r->npages; }
const tm_geom *tm_region_geom(const tm_region *r) { return &r->geom; }
enum tm_backend tm_region_backend(const tm_region *r) { return r->backend; }
void *tm_region_backend_ctx(const tm_region *r) { return r->ctx; }

const char *tm_region_backend_name(const tm_region *r)
{
	return r->m.name ? r->m.name : "unnamed";
}

const char *tm_backend_name(enum tm_backend b)
{
	switch (b) {
	case TM_BACKEND_SOFT: return "soft";
	case TM_BACKEND_MTE: return "mte";
	case TM_BACKEND_OTHER: return "other";
	}
	return "unknown";
}

void *tm_region_ptr(tm_region *r, size_t off)
{
	if (off >= r->size)
		return NULL;
	if (r->m.ptr)
		return r->m.ptr(r->ctx, off);
	return r->m.direct ? r->m.direct(r->ctx, off) : NULL;
}

void *tm_region_direct(tm_region *r, size_t off)
{
	return off < r->size && r->m.direct ? r->m.direct(r->ctx, off) : NULL;
}

/* ---- validation --------------------------------------------------- */

static int check_page(const tm_region *r, size_t pg, const char *what,
		      tm_error *err)
{
	if (pg < r->npages)
		return 0;
	return tm_error_set(err, -ERANGE,
			    "region '%s': %s: page %zu (byte offset %#zx) is "
			    "outside the region (%zu pages)", r->name, what, pg,
			    pg * r->page_size, r->npages);
}

static int check_span(const tm_region *r, size_t off, size_t len,
		      const char *what, tm_error *err)
{
	if (off <= r->size && len <= r->size - off)
		return 0;
	return tm_error_set(err, -ERANGE,
			    "region '%s': %s: bytes [%#zx, +%#zx) (page %zu) "
			    "reach outside the region (%#zx bytes)", r->name,
			    what, off, len, off / r->page_size, r->size);
}

static int check_has_tags(const tm_region *r, const char *what, tm_error *err)
{
	if (r->packed_bytes)
		return 0;
	return tm_error_set(err, -EINVAL,
			    "region '%s': %s: the region carries no metadata",
			    r->name, what);
}

/* Wrap a backend failure with the region/page context. */
static int backend_fail(const tm_region *r, int rc, const char *what,
			size_t pg, tm_error *err)
{
	return tm_error_wrap(err, rc, "region '%s': %s backend: %s of page %zu "
			     "(byte offset %#zx)", r->name, tm_region_backend_name(r), what,
			     pg, pg * r->page_size);
}

/*
 * Before an API call reads or changes part of a page that lazy placement
 * has not placed yet, bring it in from this thread (so a fill error comes
 * back as an error rather than as SIGBUS).
 */
static int ensure_present(tm_region *r, size_t pg, tm_error *err)
{
	int rc;

	if (!tm_lazy_active(r) || tm_abit_test(r->present, pg))
		return 0;
	rc = tm_lazy_fetch(r, pg, err);
	return rc > 0 ? 0 : rc;
}

static int ensure_present_span(tm_region *r, size_t off, size_t len,
			       tm_error *err)
{
	size_t last = len ? (off + len - 1) >> r->page_shift : 0;

	for (size_t pg = off >> r->page_shift; len && pg <= last; pg++) {
		int rc = ensure_present(r, pg, err);

		if (rc)
			return rc;
	}
	return 0;
}

/*
 * After a mutating call succeeded on pages [first, last]: debug builds check
 * those pages' bookkeeping (check.c) and fail the call with -EFAULT when it
 * is broken; other builds pay nothing.
 */
static int after_change(tm_region *r, size_t first, size_t last, bool placed,
			tm_error *err)
{
#ifdef TM_REGION_CHECKS
	return tm_region_check_pages(r, first, last, placed, err);
#else
	(void)r;
	(void)first;
	(void)last;
	(void)placed;
	(void)err;
	return 0;
#endif
}

/* ---- dispatch with the fallbacks for optional methods ------------ */

/* Inlined: these wrappers sit on every page call's path. */
#define TM_HOT static inline __attribute__((always_inline))

/* Pages [pg, pg+n) whole; data or tags may be NULL (not both). */
TM_HOT int be_read_pages(tm_region *r, size_t pg, size_t n, void *data,
			 uint8_t *tags, tm_error *err)
{
	int rc = 0;

	if (r->m.read_pages)
		return r->m.read_pages(r->ctx, pg, n, data, tags, err);
	if (data)
		rc = r->m.read_data(r->ctx, (uint64_t)pg << r->page_shift, data,
				    n << r->page_shift, err);
	if (!rc && tags)
		rc = r->m.read_tags(r->ctx, pg, n, tags, err);
	return rc;
}

/* Page pg whole; data NULL: zeros, tags NULL: zero tags. Tags go first, so
 * a reader that sees the new data finds the new tags. */
TM_HOT int be_write_page(tm_region *r, size_t pg, const void *data,
			 const uint8_t *tags, tm_error *err)
{
	int rc = 0;

	if (r->m.write_pages)
		return r->m.write_pages(r->ctx, pg, 1, data, tags, err);
	if (r->packed_bytes)
		rc = r->m.write_tags(r->ctx, pg, 1, tags ? tags : zero_page, err);
	if (!rc)
		rc = r->m.write_data(r->ctx, (uint64_t)pg << r->page_shift,
				     data ? data : zero_page, r->page_size, err);
	return rc;
}

/* Read-modify-write of one page's tags for a backend without
 * set_tag_range; [off, off+len) lies inside one page. */
static int be_set_tag_range(tm_region *r, size_t off, size_t len, uint8_t tag,
			    tm_error *err)
{
	uint8_t t[TM_REGION_PACKED_MAX];
	size_t pg = off >> r->page_shift;
	size_t g0 = (off & (r->page_size - 1)) / r->geom.granule;
	unsigned bits = r->geom.bits, per_byte = 8 / bits;
	uint8_t mask = (uint8_t)((1u << bits) - 1);
	int rc;

	if (r->m.set_tag_range)
		return r->m.set_tag_range(r->ctx, off, len, tag, err);
	rc = r->m.read_tags(r->ctx, pg, 1, t, err);
	for (size_t g = g0; !rc && g < g0 + len / r->geom.granule; g++) {
		unsigned sh = (unsigned)(g % per_byte) * bits;

		t[g / per_byte] = (uint8_t)((t[g / per_byte] & ~(mask << sh)) |
					    ((tag & mask) << sh));
	}
	return rc ? rc : r->m.write_tags(r->ctx, pg, 1, t, err);
}

/* Tested first: a page rewritten in the same state costs a load, not a
 * locked read-modify-write of a word other pages share. */
static void set_tagged(tm_region *r, size_t pg, bool tagged)
{
	if (tm_abit_test(r->tagged, pg) == tagged)
		return;
	if (tagged)
		tm_abit_set(r->tagged, pg);
	else
		tm_abit_clear(r->tagged, pg);
}

/* ---- whole pages -------------------------------------------------- */

int tm_region_read_page(tm_region *r, size_t pg, void *data, uint8_t *tags,
			tm_error *err)
{
	int rc = check_page(r, pg, "read page", err);

	if (!rc)
		rc = ensure_present(r, pg, err);
	if (rc)
		return rc;
	rc = be_read_pages(r, pg, 1, data, r->packed_bytes ? tags : NULL, err);
	return rc ? backend_fail(r, rc, "read", pg, err) : 0;
}

int tm_region_read_pages(tm_region *r, size_t pg, size_t n, void *data,
			 uint8_t *tags, tm_error *err)
{
	int rc = n ? check_page(r, pg, "read pages", err) : 0;

	if (!rc && n > r->npages - pg)
		rc = check_page(r, pg + n - 1, "read pages", err);
	for (size_t i = 0; !rc && i < n; i++)
		rc = ensure_present(r, pg + i, err);
	tags = r->packed_bytes ? tags : NULL;
	if (rc || n == 0 || (!data && !tags))
		return rc;
	rc = be_read_pages(r, pg, n, data, tags, err);
	return rc ? backend_fail(r, rc, "read", pg, err) : 0;
}

/* After a page was written or zeroed whole: dirty, and checked. */
static int page_placed(tm_region *r, size_t pg, tm_error *err)
{
	tm_region_mark_dirty(r, pg, pg);
	return after_change(r, pg, pg, true, err);
}

int tm_region_write_page(tm_region *r, size_t pg, const void *data,
			 const uint8_t *tags, tm_error *err)
{
	int rc = check_page(r, pg, "write page", err);

	if (rc)
		return rc;
	tags = r->packed_bytes ? tags : NULL;
	if (tm_lazy_active(r) && !tm_abit_test(r->present, pg)) {
		rc = tm_lazy_place(r, pg, data, tags, err);
		if (rc <= 0)
			goto out;
	}
	rc = be_write_page(r, pg, data, tags, err);
	if (rc)
		return backend_fail(r, rc, "write", pg, err);
	set_tagged(r, pg, tags != NULL);
	tm_abit_set(r->present, pg);
out:
	return rc ? rc : page_placed(r, pg, err);
}

int tm_region_zero_page(tm_region *r, size_t pg, tm_error *err)
{
	int rc = check_page(r, pg, "zero page", err);

	if (rc)
		return rc;
	if (tm_lazy_active(r) && !tm_abit_test(r->present, pg)) {
		rc = tm_lazy_place_zero(r, pg, err);
		if (rc <= 0)
			goto out;
	}
	rc = be_write_page(r, pg, NULL, NULL, err);
	if (rc)
		return backend_fail(r, rc, "zero", pg, err);
	set_tagged(r, pg, false);
	tm_abit_set(r->present, pg);
out:
	return rc ? rc : page_placed(r, pg, err);
}

/* ---- tags --------------------------------------------------------- */

static int check_format(const tm_region *r, enum tm_tag_format fmt,
			tm_error *err)
{
	if (fmt == TM_TAGS_PACKED || fmt == TM_TAGS_UNPACKED)
		return 0;
	return tm_error_set(err, -EINVAL, "region '%s': unknown tag format %d",
			    r->name, (int)fmt);
}

int tm_region_get_tags(tm_region *r, size_t pg, enum tm_tag_format fmt,
		       uint8_t *out, tm_error *err)
{
	uint8_t packed[TM_REGION_PACKED_MAX];
	int rc = check_page(r, pg, "get tags", err);

	if (!rc)
		rc = check_format(r, fmt, err);
	if (!rc && r->packed_bytes == 0)
		return 0;
	if (!rc)
		rc = ensure_present(r, pg, err);
	if (rc)
		return rc;
	rc = r->m.read_tags(r->ctx, pg, 1, fmt == TM_TAGS_PACKED ? out : packed,
			    err);
	if (rc)
		return backend_fail(r, rc, "get tags", pg, err);
	if (fmt == TM_TAGS_UNPACKED)
		tm_region_unpack(r, packed, out);
	return 0;
}

int tm_region_set_tags(tm_region *r, size_t pg, enum tm_tag_format fmt,
		       const uint8_t *in, tm_error *err)
{
	uint8_t packed[TM_REGION_PACKED_MAX];
	int rc = check_page(r, pg, "set tags", err);

	if (!rc)
		rc = check_format(r, fmt, err);
	if (!rc)
		rc = check_has_tags(r, "set tags", err);
	if (!rc && fmt == TM_TAGS_UNPACKED)
		rc = tm_region_pack(r, pg, in, packed, err);
	if (!rc)
		rc = ensure_present(r, pg, err);
	if (rc)
		return rc;
	rc = r->m.write_tags(r->ctx, pg, 1, fmt == TM_TAGS_PACKED ? in : packed,
			     err);
	if (rc)
		return backend_fail(r, rc, "set tags", pg, err);
	set_tagged(r, pg, true);
	tm_region_mark_dirty(r, pg, pg);
	return after_change(r, pg, pg, false, err);
}

int tm_region_set_tag_range(tm_region *r, size_t off, size_t len, uint8_t tag,
			    tm_error *err)
{
	int rc = check_span(r, off, len, "set tag range", err);
	size_t first = off >> r->page_shift;
	size_t last = len ? (off + len - 1) >> r->page_shift : first;

	if (!rc)
		rc = check_has_tags(r, "set tag range", err);
	if (rc)
		return rc;
	if (off % r->geom.granule || len % r->geom.granule)
		return tm_error_set(err, -EINVAL,
				    "region '%s': set tag range: bytes [%#zx, "
				    "+%#zx) (page %zu) are not aligned to the "
				    "%u-byte granule", r->name, off, len,
				    off / r->page_size, r->geom.granule);
	if (r->geom.bits < 8 && tag >> r->geom.bits)
		return tm_error_set(err, -EINVAL,
				    "region '%s': set tag range at byte offset "
				    "%#zx (page %zu): tag %#x has bits above "
				    "the %u-bit tag", r->name, off,
				    off / r->page_size, tag, r->geom.bits);
	while (len) {
		size_t pg = off >> r->page_shift;
		size_t room = r->page_size - (off & (r->page_size - 1));
		size_t n = len < room ? len : room;

		rc = ensure_present(r, pg, err);
		if (rc)
			return rc;
		rc = be_set_tag_range(r, off, n, tag, err);
		if (rc)
			return backend_fail(r, rc, "set tag range", pg, err);
		set_tagged(r, pg, true);
		tm_region_mark_dirty(r, pg, pg);
		off += n;
		len -= n;
	}
	return first < r->npages ? after_change(r, first, last, false, err) : 0;
}

bool tm_region_page_tagged(const tm_region *r, size_t pg)
{
	return pg < r->npages && tm_abit_test(r->tagged, pg);
}

bool tm_region_page_may_be_tagged(const tm_region *r, size_t pg)
{
	return pg < r->npages && r->packed_bytes &&
	       (!(r->m.flags & TM_BACKEND_F_EXCLUSIVE_TAGS) ||
		tm_abit_test(r->tagged, pg));
}

/* ---- bytes -------------------------------------------------------- */

/* A byte write places the pages it touches (after a discard, say). */
static void mark_present(tm_region *r, size_t first, size_t last)
{
	for (size_t pg = first; pg <= last; pg++)
		if (!tm_abit_test(r->present, pg))
			tm_abit_set(r->present, pg);
}

int tm_region_write(tm_region *r, size_t off, const void *buf, size_t len,
		    tm_error *err)
{
	int rc = check_span(r, off, len, "write", err);

	if (!rc)
		rc = ensure_present_span(r, off, len, err);
	if (rc || len == 0)
		return rc;
	rc = r->m.write_data(r->ctx, off, buf, len, err);
	if (rc)
		return backend_fail(r, rc, "write", off >> r->page_shift, err);
	mark_present(r, off >> r->page_shift, (off + len - 1) >> r->page_shift);
	tm_region_mark_dirty(r, off >> r->page_shift,
			     (off + len - 1) >> r->page_shift);
	return after_change(r, off >> r->page_shift,
			    (off + len - 1) >> r->page_shift, true, err);
}

int tm_region_read(tm_region *r, size_t off, void *buf, size_t len,
		   tm_error *err)
{
	int rc = check_span(r, off, len, "read", err);

	if (!rc)
		rc = ensure_present_span(r, off, len, err);
	if (rc || len == 0)
		return rc;
	rc = r->m.read_data(r->ctx, off, buf, len, err);
	return rc ? backend_fail(r, rc, "read", off >> r->page_shift, err) : 0;
}

/* ---- digest ------------------------------------------------------- */

int tm_region_digest(tm_region *r, uint64_t *digest, tm_error *err)
{
	XXH3_state_t *st = XXH3_createState();
	uint8_t *buf = malloc(r->page_size + r->packed_bytes);
	int rc = 0;

	if (!st || !buf) {
		rc = tm_error_set(err, -ENOMEM, "region '%s': digest: out of "
				  "memory", r->name);
		goto out;
	}
	XXH3_64bits_reset(st);
	for (size_t pg = 0; pg < r->npages; pg++) {
		rc = tm_region_read_page(r, pg, buf, buf + r->page_size, err);
		if (rc)
			goto out;
		XXH3_64bits_update(st, buf, r->page_size + r->packed_bytes);
	}
	*digest = XXH3_64bits_digest(st);
out:
	XXH3_freeState(st);
	free(buf);
	return rc;
}

/* ---- discard ------------------------------------------------------ */

/*
 * MADV_DONTNEED in pieces of at most 1 MiB. With CONFIG_PT_RECLAIM (x86-64
 * kernels since about 6.14; mm/pt_reclaim.c) a MADV_DONTNEED covering at
 * least PMD_SIZE also frees the page tables it empties, and freeing a page
 * table must flush the TLB of every CPU that has run the process - lazy
 * ones included - by IPI. With a second thread of the process on the other
 * CPU (a VMM's vCPUs, the swap pager's tag worker) that measured +45-60 us
 * per 2 MiB discard in this VM (docs/BENCHMARKS.md §swap). A piece under
 * PMD_SIZE (2 MiB here, 32/512 MiB with 16/64 KiB pages) never frees one;
 * the emptied table stays for the next fault, as before PT_RECLAIM.
 */
#define TM_DISCARD_PIECE ((size_t)1 << 20)

int tm_release_range(uint8_t *a, size_t len)
{
	uint8_t *end = a + len;

	while (a < end) {
		size_t k = (size_t)(end - a) < TM_DISCARD_PIECE ? (size_t)(end - a)
								: TM_DISCARD_PIECE;

		if (madvise(a, k, MADV_DONTNEED))
			return -errno;
		a += k;
	}
	return 0;
}

/* Without a discard method: zero data and tags page by page (resident). */
static int discard_by_zeroing(tm_region *r, size_t pg, size_t n, tm_error *err)
{
	for (size_t i = 0; i < n; i++) {
		int rc = be_write_page(r, pg + i, NULL, NULL, err);

		if (rc)
			return rc;
	}
	return 0;
}

int tm_region_discard(tm_region *r, size_t pg, size_t n, tm_error *err)
{
	int rc;

	if (n == 0)
		return 0;
	rc = check_page(r, pg, "discard", err);
	if (!rc && n > r->npages - pg)
		rc = check_page(r, r->npages, "discard", err);
	if (rc)
		return rc;
	tm_abits_clear_range(r->present, pg, n);
	tm_abits_clear_range(r->tagged, pg, n);
	rc = r->m.discard ? r->m.discard(r->ctx, pg, n, err)
			  : discard_by_zeroing(r, pg, n, err);
	if (rc)
		return tm_error_wrap(err, rc, "region '%s': %s backend: discard "
				     "pages [%zu, +%zu) (byte offset %#zx)",
				     r->name, tm_region_backend_name(r), pg, n,
				     pg * r->page_size);
	tm_region_mark_dirty(r, pg, pg + n - 1);
	return after_change(r, pg, pg + n - 1, false, err);
}

bool tm_region_page_present(const tm_region *r, size_t pg)
{
	return pg < r->npages && tm_abit_test(r->present, pg);
}
