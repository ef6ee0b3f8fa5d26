/*
 * costs.c - the storage simulator's vocabulary (policy, kind and op names)
 * and its cost table: default nanoseconds per unit, where each default
 * comes from, and parsing of user overrides ("KEY=NS" or a file of them).
 * The defaults are order-of-magnitude figures for an arm64 phone or server,
 * not measurements of this host; docs/STORAGE-MODEL.md discusses each.
 */
#include "tagmem/storage_sim.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char *const policy_names[TM_SS_POLICY_COUNT] = {
	"static", "cma", "cma-fast", "cleancache",
};

static const char *const kind_names[TM_SS_KIND_COUNT] = {
	"movable", "pagecache", "unmovable", "reclaimable",
};

static const char *const op_names[TM_SS_OP_COUNT] = {
	"alloc", "free", "tag", "pin", "unpin", "read",
};

const char *tm_ss_policy_name(tm_ss_policy p)
{
	return (unsigned)p < TM_SS_POLICY_COUNT ? policy_names[p] : NULL;
}

int tm_ss_policy_parse(const char *s, tm_ss_policy *out, tm_error *err)
{
	for (unsigned i = 0; i < TM_SS_POLICY_COUNT; i++) {
		if (strcmp(s, policy_names[i]) == 0) {
			*out = (tm_ss_policy)i;
			return 0;
		}
	}
	return tm_error_set(err, -EINVAL,
			    "unknown policy '%s' (static, cma, cma-fast, cleancache)", s);
}

const char *tm_ss_kind_name(tm_ss_kind k)
{
	return (unsigned)k < TM_SS_KIND_COUNT ? kind_names[k] : NULL;
}

const char *tm_ss_op_name(tm_ss_op op)
{
	return (unsigned)op < TM_SS_OP_COUNT ? op_names[op] : NULL;
}

struct cost_def {
	const char *name;
	const char *unit;
	uint64_t ns;
	const char *source;
};

static const struct cost_def cost_defs[TM_SS_COST_COUNT] = {
	[TM_SS_COST_ALLOC_FOLIO] = { "alloc_folio", "folio", 250,
		"page allocator fast path (per-CPU lists, zone lock now and then): a few hundred ns" },
	[TM_SS_COST_FREE_FOLIO] = { "free_folio", "folio", 150,
		"freeing to the per-CPU lists, cheaper than allocation" },
	[TM_SS_COST_CLEAR_FRAME] = { "clear_frame", "frame", 300,
		"zeroing 4 KiB at ~13 GB/s (LPDDR5 phone DRAM bandwidth for one core)" },
	[TM_SS_COST_TAG_CLEAR_FRAME] = { "tag_clear_frame", "frame", 300,
		"initialising 256 tags of 4 KiB (STZG/DC GZVA loop, about one more clear)" },
	[TM_SS_COST_READ_FRAME] = { "read_frame", "frame", 50000,
		"4 KiB random read from UFS flash (~50-100 us); NVMe would be ~10-20 us" },
	[TM_SS_COST_MIGRATE_FRAME] = { "migrate_frame", "frame", 3000,
		"migrate_pages of a 4 KiB folio: isolate, unmap, TLB flush, copy, remap (~2-5 us)" },
	[TM_SS_COST_DROP_FRAME] = { "drop_frame", "frame", 500,
		"unmapping and removing a clean page-cache folio, no I/O" },
	[TM_SS_COST_TAKEOFF_FRAME] = { "takeoff_frame", "frame", 200,
		"take_page_off_buddy: zone lock, split of the free block" },
	[TM_SS_COST_CONTIG_RANGE] = { "contig_range", "call", 5000,
		"alloc_contig_range bookkeeping: isolate pageblock, test, undo (no drain)" },
	[TM_SS_COST_DRAIN] = { "drain", "call", 50000,
		"lru_cache_disable: synchronize_rcu_expedited + lru_add_drain_all on every CPU (tens of us)" },
	[TM_SS_COST_EVICT_FRAME] = { "evict_frame", "frame", 400,
		"reclaiming one clean page-cache frame (LRU scan, unmap, free)" },
	[TM_SS_COST_CLEANCACHE_HIT] = { "cleancache_hit_frame", "frame", 600,
		"cleancache_get: lookup + copy of 4 KiB back into the page cache" },
	[TM_SS_COST_ALLOC_FAIL] = { "alloc_fail", "failure", 100000,
		"a failed allocation: retried fault / OOM path; arbitrary, failures are also counted" },
};

_Static_assert(TM_SS_COST_COUNT <= TM_SS_COST_SLOTS,
	       "tm_ss_costs has a fixed size: raise TM_SS_COST_SLOTS only with a new soname");

void tm_ss_costs_default(tm_ss_costs *c)
{
	memset(c->ns, 0, sizeof(c->ns));   /* the spare slots stay 0 */
	for (unsigned i = 0; i < TM_SS_COST_COUNT; i++)
		c->ns[i] = cost_defs[i].ns;
	c->overridden = false;
}

const char *tm_ss_cost_name(tm_ss_cost_key k)
{
	return (unsigned)k < TM_SS_COST_COUNT ? cost_defs[k].name : NULL;
}

const char *tm_ss_cost_unit(tm_ss_cost_key k)
{
	return (unsigned)k < TM_SS_COST_COUNT ? cost_defs[k].unit : NULL;
}

const char *tm_ss_cost_source(tm_ss_cost_key k)
{
	return (unsigned)k < TM_SS_COST_COUNT ? cost_defs[k].source : NULL;
}

/* Parse "KEY=NS" (surrounding blanks allowed) without changing anything. */
static int parse_kv(const char *kv, unsigned *key, uint64_t *ns, tm_error *err)
{
	const char *eq = strchr(kv, '=');

	if (!eq)
		return tm_error_set(err, -EINVAL, "cost '%s': expected KEY=NS", kv);
	const char *k = kv, *ke = eq;

	while (*k == ' ' || *k == '\t')
		k++;
	while (ke > k && (ke[-1] == ' ' || ke[-1] == '\t'))
		ke--;
	for (unsigned i = 0; i < TM_SS_COST_COUNT; i++) {
		if (strlen(cost_defs[i].name) == (size_t)(ke - k) &&
		    memcmp(cost_defs[i].name, k, (size_t)(ke - k)) == 0) {
			const char *v = eq + 1;
			char *end;

			while (*v == ' ' || *v == '\t')
				v++;
			if (*v < '0' || *v > '9')
				return tm_error_set(err, -EINVAL, "cost '%s': '%s' is not a number of ns",
						    kv, v);
			errno = 0;
			unsigned long long x = strtoull(v, &end, 10);

			while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n')
				end++;
			if (errno || *end || x > (1ull << 40))
				return tm_error_set(err, -EINVAL,
						    "cost '%s': value must be an integer of ns below 2^40", kv);
			*key = i;
			*ns = x;
			return 0;
		}
	}
	return tm_error_set(err, -EINVAL, "cost '%.*s' is not a key (e.g. drain, migrate_frame)",
			    (int)(ke - k), k);
}

int tm_ss_costs_set(tm_ss_costs *c, const char *kv, tm_error *err)
{
	unsigned key;
	uint64_t ns;
	int r = parse_kv(kv, &key, &ns, err);

	if (r)
		return r;
	c->ns[key] = ns;
	c->overridden = true;
	return 0;
}

static bool blank(const char *line)
{
	for (; *line; line++)
		if (*line != ' ' && *line != '\t' && *line != '\r' && *line != '\n')
			return false;
	return true;
}

/* Apply (or, when apply is false, only validate) every line of f. */
static int load_lines(FILE *f, const char *path, tm_ss_costs *c, bool apply, tm_error *err)
{
	char line[512];
	unsigned lineno = 0;

	while (fgets(line, sizeof(line), f)) {
		lineno++;
		if (!strchr(line, '\n') && !feof(f))
			return tm_error_set(err, -EINVAL, "cost file %s line %u: longer than %zu bytes",
					    path, lineno, sizeof(line) - 2);
		char *hash = strchr(line, '#');

		if (hash)
			*hash = '\0';
		if (blank(line))
			continue;
		unsigned key;
		uint64_t ns;

		if (parse_kv(line, &key, &ns, err))
			return tm_error_wrap(err, -EINVAL, "cost file %s line %u", path, lineno);
		if (apply) {
			c->ns[key] = ns;
			c->overridden = true;
		}
	}
	if (ferror(f))
		return tm_error_set(err, -EIO, "cost file %s: read error", path);
	return 0;
}

int tm_ss_costs_load(tm_ss_costs *c, const char *path, tm_error *err)
{
	FILE *f = fopen(path, "r");

	if (!f) {
		int e = errno;

		return tm_error_set(err, -e, "cost file %s: %s", path, strerror(e));
	}
	int r = load_lines(f, path, c, false, err);

	if (r == 0) {
		rewind(f);
		r = load_lines(f, path, c, true, err);
	}
	fclose(f);
	return r;
}
