/*
 * geom.c - page-metadata geometry: "B bits of metadata per G bytes of data"
 * on a page of P bytes. Arm MTE (4 bits per 16 bytes) is one kind; the
 * generic kind lets another architecture's metadata use the same callers.
 * Everything downstream (pack sizes, codecs, wire formats) derives its sizes
 * from here, so the checks that make the arithmetic exact live here too.
 */
#include "tagmem/tags.h"

#include <errno.h>
#include <stdio.h>

static bool page_size_ok(uint32_t page_size)
{
	return page_size == 4096 || page_size == 16384 || page_size == 65536;
}

static bool bits_ok(uint32_t bits)
{
	return bits == 1 || bits == 2 || bits == 4 || bits == 8;
}

static bool is_pow2(uint32_t x)
{
	return x != 0 && (x & (x - 1)) == 0;
}

/* A generic geometry must pack into a whole number of bytes per page. */
static int check_generic(uint32_t page_size, uint32_t granule, uint32_t bits,
			 tm_error *err)
{
	if (!is_pow2(granule) || granule > page_size)
		return tm_error_set(err, -EINVAL,
				    "geometry: granule %u bytes is not a power of two <= page size %u",
				    granule, page_size);
	if (!bits_ok(bits))
		return tm_error_set(err, -EINVAL,
				    "geometry: %u bits per granule (want 1, 2, 4 or 8)", bits);
	if (((uint64_t)page_size / granule * bits) % 8 != 0)
		return tm_error_set(err, -EINVAL,
				    "geometry: %u granules of %u bits do not fill whole bytes",
				    page_size / granule, bits);
	return 0;
}

int tm_geom_init(tm_geom *g, uint32_t kind, uint32_t page_size,
		 uint32_t granule, uint32_t bits, tm_error *err)
{
	int rc;

	if (!page_size_ok(page_size))
		return tm_error_set(err, -EINVAL,
				    "geometry: page size %u (want 4096, 16384 or 65536)", page_size);
	switch (kind) {
	case TM_META_NONE:
		granule = 0;
		bits = 0;
		break;
	case TM_META_MTE:
		granule = TM_MTE_GRANULE;
		bits = TM_MTE_TAG_BITS;
		break;
	case TM_META_GENERIC:
		rc = check_generic(page_size, granule, bits, err);
		if (rc)
			return rc;
		break;
	default:
		return tm_error_set(err, -EINVAL, "geometry: unknown metadata kind %u", kind);
	}
	g->kind = kind;
	g->version = kind == TM_META_MTE ? TM_MTE_VERSION : (kind == TM_META_NONE ? 0 : 1);
	g->page_size = page_size;
	g->granule = granule;
	g->bits = bits;
	return 0;
}

int tm_geom_mte(tm_geom *g, uint32_t page_size, tm_error *err)
{
	return tm_geom_init(g, TM_META_MTE, page_size, 0, 0, err);
}

size_t tm_geom_granules(const tm_geom *g)
{
	if (g->kind == TM_META_NONE || g->granule == 0)
		return 0;
	return g->page_size / g->granule;
}

size_t tm_geom_packed_bytes(const tm_geom *g)
{
	return tm_geom_granules(g) * g->bits / 8;
}

size_t tm_geom_unpacked_bytes(const tm_geom *g)
{
	return tm_geom_granules(g);
}

bool tm_geom_equal(const tm_geom *a, const tm_geom *b)
{
	return a->kind == b->kind && a->version == b->version &&
	       a->page_size == b->page_size && a->granule == b->granule &&
	       a->bits == b->bits;
}

static const char *kind_name(uint32_t kind)
{
	switch (kind) {
	case TM_META_NONE:
		return "none";
	case TM_META_MTE:
		return "mte";
	case TM_META_GENERIC:
		return "generic";
	default:
		return "unknown";
	}
}

const char *tm_geom_describe(const tm_geom *g, char *buf, size_t len)
{
	if (len == 0)
		return buf;
	if (g->kind == TM_META_NONE)
		snprintf(buf, len, "none page=%u", g->page_size);
	else
		snprintf(buf, len, "%s/v%u %ub/%uB page=%u", kind_name(g->kind),
			 g->version, g->bits, g->granule, g->page_size);
	return buf;
}
