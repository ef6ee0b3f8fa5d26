/*
 * cmd_swap.c - `tagmem swap demo`: the pager end to end on a real swap file.
 * Fills a tagged region (a fraction of its pages tagged with the corpus
 * mix), swaps most of it out in folios, discards some subpages while they
 * are swapped (partial folios) and some resident pages, touches everything
 * back in random order from several threads (userfaultfd faults where lazy
 * placement is available, explicit tm_swap_in otherwise), verifies every
 * page's data and tags (discarded pages must read zero, untagged), prints
 * the statistics, swaps a quarter out again and swaps the file off (all
 * back, every tag released), and verifies again. Exit status 1 on any
 * mismatch or error.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bench/bench_common.h"
#include "common/util.h"
#include "tagmem/region.h"
#include "tagmem/swap.h"
#include "tagmem/tags.h"
#include "tools/cmds.h"

#define PS 4096u
#define PK 128u

struct demo_opts {
	uint64_t size;
	unsigned order;
	double tagged_fraction;
	unsigned threads;
	const char *dir;
	uint64_t seed;
	enum tm_swapin_mode mode;
	bool explicit_only;
	bool json;
};

struct demo {
	struct demo_opts o;
	tm_region *r;
	tm_swapfile *sf;
	tm_pager *p;
	size_t npages;
	bool lazy;
	char lazy_note[TM_ERROR_MSG_MAX];
	uint8_t *tags;         /* expected packed tags of every page */
	uint64_t *tagged;      /* bitmap: page tagged */
	uint64_t *gone;        /* bitmap: page discarded */
	size_t *order;         /* random touch order */
	size_t n_tagged, n_out, folios_out, n_gone;
	double out_s, in_s;
	tm_swap_stats peak;
	atomic_size_t mismatches;
	atomic_size_t verified;
	pthread_mutex_t first_lock;
	char first[TM_ERROR_MSG_MAX];
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: tagmem swap demo [--size 1G] [--folio-order N] [--tagged-fraction F]\n"
		"                        [--threads 4] [--swap-dir /var/tmp] [--seed S]\n"
		"                        [--fault-mode folio|page] [--explicit] [--json]\n\n"
		"Fill a tagged region, swap most of it out in folios of 2^N pages, discard\n"
		"some subpages while swapped, touch everything back in random order from\n"
		"several threads, verify data and tags, print statistics.\n"
		"  --folio-order N      0..%u (default 4: 64 KiB folios)\n"
		"  --tagged-fraction F  share of pages carrying tags, 0..1 (default 0.75)\n"
		"  --fault-mode         what a fault restores: the whole folio or one page\n"
		"  --explicit           swap in with tm_swap_in, not through faults\n",
		TM_SWAP_MAX_ORDER);
}

/* A bad value: say what is allowed. Returns -1 for parse_value. */
static int bad_value(const char *a, const char *v, const char *allowed)
{
	fprintf(stderr, "tagmem swap demo: %s '%s': %s\n", a, v, allowed);
	return -1;
}

/* A whole decimal number in [lo, hi]; empty strings and signs refused. */
static bool parse_uint(const char *v, unsigned long lo, unsigned long hi,
		       unsigned *out)
{
	char *end;
	unsigned long n;

	if (*v < '0' || *v > '9')
		return false;
	errno = 0;
	n = strtoul(v, &end, 10);
	if (errno || *end || n < lo || n > hi)
		return false;
	*out = (unsigned)n;
	return true;
}

/* 0 ok, -1 bad value (message printed), 1 not an option taking a value. */
static int parse_value(struct demo_opts *o, const char *a, const char *v)
{
	char allowed[64], *end;

	if (strcmp(a, "--size") == 0) {
		if (tm_parse_size(v, &o->size) != 0)
			return bad_value(a, v, "must be a size in bytes with an "
					 "optional K/M/G/T suffix (e.g. 256M, 1G)");
	} else if (strcmp(a, "--folio-order") == 0) {
		snprintf(allowed, sizeof(allowed), "must be an integer 0..%u",
			 TM_SWAP_MAX_ORDER);
		if (!parse_uint(v, 0, TM_SWAP_MAX_ORDER, &o->order))
			return bad_value(a, v, allowed);
	} else if (strcmp(a, "--tagged-fraction") == 0) {
		errno = 0;
		o->tagged_fraction = strtod(v, &end);
		/* written so that NaN fails too */
		if (end == v || *end || errno ||
		    !(o->tagged_fraction >= 0 && o->tagged_fraction <= 1))
			return bad_value(a, v, "must be a number between 0 and 1");
	} else if (strcmp(a, "--threads") == 0) {
		if (!parse_uint(v, 1, 256, &o->threads))
			return bad_value(a, v, "must be an integer 1..256");
	} else if (strcmp(a, "--swap-dir") == 0) {
		o->dir = v;
	} else if (strcmp(a, "--seed") == 0) {
		errno = 0;
		o->seed = strtoull(v, &end, 0);
		if (end == v || *end || errno || *v == '-')
			return bad_value(a, v, "must be an unsigned 64-bit integer "
					 "(decimal, or hex with 0x)");
	} else if (strcmp(a, "--fault-mode") == 0) {
		if (strcmp(v, "folio") == 0)
			o->mode = TM_SWAPIN_FOLIO;
		else if (strcmp(v, "page") == 0)
			o->mode = TM_SWAPIN_PAGE;
		else
			return bad_value(a, v, "must be folio or page");
	} else {
		return 1;
	}
	return 0;
}

static bool takes_value(const char *a)
{
	static const char *const opts[] = { "--size", "--folio-order",
		"--tagged-fraction", "--threads", "--swap-dir", "--seed",
		"--fault-mode" };

	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
		if (strcmp(a, opts[i]) == 0)
			return true;
	return false;
}

/* 0 ok, 1 help printed, 2 usage error. */
static int parse(int argc, char **argv, struct demo_opts *o)
{
	*o = (struct demo_opts){ 1ull << 30, 4, 0.75, 4, "/var/tmp", 1,
				 TM_SWAPIN_FOLIO, false, false };
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		int rc;

		if (strcmp(a, "--json") == 0) {
			o->json = true;
			continue;
		}
		if (strcmp(a, "--explicit") == 0) {
			o->explicit_only = true;
			continue;
		}
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
			return usage(stdout), 1;
		rc = i + 1 < argc ? parse_value(o, a, argv[i + 1]) : 1;
		if (rc == 0) {
			i++;
			continue;
		}
		if (rc > 0 && i + 1 >= argc && takes_value(a))
			fprintf(stderr, "tagmem swap demo: %s needs a value\n", a);
		else if (rc > 0)
			fprintf(stderr, "tagmem swap demo: unknown option '%s'\n", a);
		usage(stderr);
		return 2;
	}
	uint64_t folio = (uint64_t)PS << o->order;

	if (o->size < 8 * folio) {
		fprintf(stderr, "tagmem swap demo: --size %llu: must hold at least 8 "
			"folios of 2^%u pages, i.e. at least %llu bytes\n",
			(unsigned long long)o->size, o->order,
			(unsigned long long)(8 * folio));
		return 2;
	}
	o->size -= o->size % folio;
	return 0;
}

/* ---- expected contents --------------------------------------------- */

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xBF58476D1CE4E5B9ull;
	x ^= x >> 27;
	x *= 0x94D049BB133111EBull;
	return x ^ (x >> 31);
}

static void expected_data(uint64_t seed, size_t pg, uint64_t *w)
{
	uint64_t x = mix64(seed ^ (pg + 1) * 0x9E3779B97F4A7C15ull);

	for (size_t i = 0; i < PS / 8; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		w[i] = x | 1;
	}
}

static void note_mismatch(struct demo *d, const char *fmt, size_t pg)
{
	atomic_fetch_add(&d->mismatches, 1);
	pthread_mutex_lock(&d->first_lock);
	if (!d->first[0])
		snprintf(d->first, sizeof(d->first), fmt, pg);
	pthread_mutex_unlock(&d->first_lock);
}

static void note_error(struct demo *d, const tm_error *err)
{
	atomic_fetch_add(&d->mismatches, 1);
	pthread_mutex_lock(&d->first_lock);
	if (!d->first[0])
		snprintf(d->first, sizeof(d->first), "%s", err->msg);
	pthread_mutex_unlock(&d->first_lock);
}

/* ---- phases --------------------------------------------------------- */

static int setup(struct demo *d, tm_error *err)
{
	tm_region_config rc = { 0 };
	tm_swapfile_config sc = { .struct_size = sizeof(sc), .path = d->o.dir,
				  .size = d->o.size + (16u << 20), .page_size = PS };
	struct stat st;
	int r;

	/* The swap file is an unnamed file in that directory (O_TMPFILE). */
	if (stat(d->o.dir, &st) != 0 || !S_ISDIR(st.st_mode))
		return tm_error_set(err, -ENOTDIR, "--swap-dir %s is not a directory",
				    d->o.dir);

	rc.name = "swap-demo";
	rc.size = d->o.size;
	rc.backend = TM_BACKEND_SOFT;
	r = tm_geom_mte(&rc.geom, PS, err);
	if (!r)
		r = tm_region_create(&rc, &d->r, err);
	if (!r)
		r = tm_swapfile_open(&sc, &d->sf, err);
	if (r)
		return r;
	d->npages = tm_region_npages(d->r);
	d->tags = malloc(d->npages * PK);
	d->tagged = calloc(tm_bitmap_words(d->npages), 8);
	d->gone = calloc(tm_bitmap_words(d->npages), 8);
	d->order = malloc(d->npages * sizeof(size_t));
	if (!d->tags || !d->tagged || !d->gone || !d->order)
		return tm_error_set(err, -ENOMEM, "swap demo: out of memory");
	return 0;
}

static int fill(struct demo *d, tm_error *err)
{
	uint64_t data[PS / 8];

	tm_corpus_fill(TM_CORPUS_MIX, tm_region_geom(d->r), d->o.seed, d->tags,
		       d->npages);
	for (size_t pg = 0; pg < d->npages; pg++) {
		bool t = (double)(mix64(d->o.seed * 31 + pg) >> 11) / 9007199254740992.0 <
			 d->o.tagged_fraction;
		int rc;

		expected_data(d->o.seed, pg, data);
		if (t) {
			tm_bit_set(d->tagged, pg);
			d->n_tagged++;
		} else {
			memset(d->tags + pg * PK, 0, PK);
		}
		rc = tm_region_write_page(d->r, pg, data, t ? d->tags + pg * PK : NULL, err);
		if (rc)
			return rc;
	}
	return 0;
}

static int start_pager(struct demo *d, tm_error *err)
{
	tm_pager_config pc = { .struct_size = sizeof(pc), .region = d->r, .swap = d->sf,
			       .lazy = !d->o.explicit_only, .fault_mode = d->o.mode };
	tm_error lerr;

	if (pc.lazy && tm_pager_create(&pc, &d->p, &lerr) == 0) {
		d->lazy = true;
		return 0;
	}
	snprintf(d->lazy_note, sizeof(d->lazy_note), "%s",
		 pc.lazy ? lerr.msg : "--explicit given");
	pc.lazy = false;
	return tm_pager_create(&pc, &d->p, err);
}

/* Every folio but one in eight goes out. */
static int swap_out(struct demo *d, tm_error *err)
{
	size_t n = (size_t)1 << d->o.order;
	uint64_t t0 = tm_now_ns();

	for (size_t head = 0, k = 0; head < d->npages; head += n, k++) {
		if (k % 8 == 7)
			continue;
		int rc = tm_swap_out(d->p, head, d->o.order, err);

		if (rc)
			return rc;
		d->n_out += n;
		d->folios_out++;
	}
	d->out_s = (double)(tm_now_ns() - t0) / 1e9;
	return 0;
}

static int discard_one(struct demo *d, size_t pg, tm_error *err)
{
	int rc = tm_swap_discard(d->p, pg, 1, err);

	if (!rc && !tm_bit_test(d->gone, pg)) {
		tm_bit_set(d->gone, pg);
		d->n_gone++;
	}
	return rc;
}

/* In every fifth folio one subpage (a partial folio from then on), and the
 * first page of every 16th resident folio. */
static int discard_some(struct demo *d, tm_error *err)
{
	size_t n = (size_t)1 << d->o.order;
	int rc = 0;

	for (size_t head = 0, k = 0; !rc && head < d->npages; head += n, k++) {
		if (k % 8 != 7 && k % 5 == 0)
			rc = discard_one(d, head + (k / 5) % n, err);
		else if (k % 8 == 7 && k % 16 == 15)
			rc = discard_one(d, head, err);
	}
	return rc;
}

static void shuffle(struct demo *d)
{
	tm_rng rng;

	tm_rng_seed(&rng, d->o.seed ^ 0x5eed);
	for (size_t i = 0; i < d->npages; i++)
		d->order[i] = i;
	for (size_t i = d->npages; i > 1; i--) {
		size_t j = (size_t)tm_rng_below(&rng, i);
		size_t t = d->order[i - 1];

		d->order[i - 1] = d->order[j];
		d->order[j] = t;
	}
}

struct worker {
	struct demo *d;
	unsigned id;
	bool verify;
	pthread_t th;
};

/* Bring a page in: a fault through the mapping, or tm_swap_in_page. */
static void touch(struct demo *d, size_t pg)
{
	tm_error err;

	if (d->lazy) {
		volatile uint8_t *b = tm_region_ptr(d->r, pg * PS);

		(void)*b;
	} else if (tm_swap_in_page(d->p, pg, &err) != 0) {
		note_error(d, &err);
	}
}

static void verify(struct demo *d, size_t pg)
{
	uint64_t want[PS / 8];
	uint8_t tags[PK];
	static const uint8_t zero[PS];
	bool gone = tm_bit_test(d->gone, pg);
	tm_error err;

	if (tm_region_get_tags(d->r, pg, TM_TAGS_PACKED, tags, &err) != 0) {
		note_error(d, &err);
		return;
	}
	if (gone) {
		if (memcmp(tm_region_ptr(d->r, pg * PS), zero, PS) != 0)
			note_mismatch(d, "page %zu was discarded but its data is not zero", pg);
		if (tm_region_page_tagged(d->r, pg))
			note_mismatch(d, "page %zu was discarded but is still tagged", pg);
	} else {
		expected_data(d->o.seed, pg, want);
		if (memcmp(tm_region_ptr(d->r, pg * PS), want, PS) != 0)
			note_mismatch(d, "page %zu: data differs", pg);
		if (memcmp(tags, d->tags + pg * PK, PK) != 0)
			note_mismatch(d, "page %zu: tags differ", pg);
		if (tm_region_page_tagged(d->r, pg) != tm_bit_test(d->tagged, pg))
			note_mismatch(d, "page %zu: tagged flag differs", pg);
	}
	atomic_fetch_add(&d->verified, 1);
}

static void *work(void *arg)
{
	struct worker *w = arg;
	struct demo *d = w->d;

	for (size_t i = w->id; i < d->npages; i += d->o.threads) {
		if (w->verify)
			verify(d, d->order[i]);
		else
			touch(d, d->order[i]);
	}
	return NULL;
}

static int run_threads(struct demo *d, bool verify_pass, tm_error *err)
{
	struct worker *w = calloc(d->o.threads, sizeof(*w));
	unsigned started = 0;

	if (!w)
		return tm_error_set(err, -ENOMEM, "swap demo: threads");
	for (; started < d->o.threads; started++) {
		w[started] = (struct worker){ d, started, verify_pass, 0 };
		if (pthread_create(&w[started].th, NULL, work, &w[started]) != 0)
			break;
	}
	for (unsigned i = 0; i < started; i++)
		pthread_join(w[i].th, NULL);
	free(w);
	if (started < d->o.threads)
		return tm_error_set(err, -EAGAIN, "swap demo: could not start %u threads",
				    d->o.threads);
	return 0;
}

static int swap_in(struct demo *d, tm_error *err)
{
	uint64_t t0 = tm_now_ns();
	int rc = run_threads(d, false, err);

	d->in_s = (double)(tm_now_ns() - t0) / 1e9;
	if (!rc && d->lazy)
		rc = tm_region_lazy_error(d->r, err);
	return rc;
}

/* Swap every fourth folio out again, swap the file off (which brings them
 * back and releases every tag), and verify the whole region once more. */
static int swapoff_phase(struct demo *d, tm_swapoff_report *off, tm_error *err)
{
	size_t n = (size_t)1 << d->o.order;
	int rc = 0;

	for (size_t head = 0, k = 0; !rc && head < d->npages; head += n, k++)
		if (k % 4 == 1)
			rc = tm_swap_out(d->p, head, d->o.order, err);
	if (!rc)
		rc = tm_swapoff(d->sf, 0, off, err);
	if (!rc)
		rc = run_threads(d, true, err);
	return rc;
}

/* ---- report --------------------------------------------------------- */

static void classes_json(const tm_swap_stats *st, char *buf, size_t len)
{
	size_t at = (size_t)snprintf(buf, len, "{");

	for (unsigned c = 0; c < TM_TS_NCLASSES && at < len; c++)
		at += (size_t)snprintf(buf + at, len - at, "%s\"%s\": %" PRIu64, c ? ", " : "",
				       tm_tagstore_class_name((enum tm_tagstore_class)c),
				       st->tags.live[c]);
	if (at < len)
		snprintf(buf + at, len - at, "}");
}

static double per_tagged(const tm_swap_stats *st)
{
	return st->tags.entries ? (double)st->tags.bytes_used / (double)st->tags.entries : 0;
}

static double inline_frac(const tm_swap_stats *st)
{
	return st->tags.entries ? (double)st->tags.live[TM_TS_INLINE] / (double)st->tags.entries : 0;
}

static void report_json(struct demo *d, const tm_swap_stats *end,
			const tm_swapoff_report *off, bool ok)
{
	char classes[512];
	tm_json j;

	classes_json(&d->peak, classes, sizeof(classes));
	tm_json_begin(&j, stdout);
	tm_json_bool(&j, "ok", ok);
	tm_json_int(&j, "size_bytes", (long long)d->o.size);
	tm_json_int(&j, "pages", (long long)d->npages);
	tm_json_int(&j, "folio_order", d->o.order);
	tm_json_num(&j, "tagged_fraction", d->o.tagged_fraction);
	tm_json_int(&j, "threads", d->o.threads);
	tm_json_bool(&j, "lazy", d->lazy);
	if (!d->lazy)
		tm_json_str(&j, "lazy_note", d->lazy_note);
	tm_json_str(&j, "fault_mode", d->o.mode == TM_SWAPIN_FOLIO ? "folio" : "page");
	tm_json_int(&j, "pages_tagged", (long long)d->n_tagged);
	tm_json_int(&j, "folios_swapped_out", (long long)d->folios_out);
	tm_json_int(&j, "pages_swapped_out", (long long)d->n_out);
	tm_json_int(&j, "pages_discarded", (long long)d->n_gone);
	tm_json_int(&j, "pages_verified", (long long)atomic_load(&d->verified));
	tm_json_int(&j, "mismatches", (long long)atomic_load(&d->mismatches));
	tm_json_num(&j, "swap_out_seconds", d->out_s);
	tm_json_num(&j, "swap_out_gbps", tm_gbps((double)d->n_out * PS, d->out_s));
	tm_json_num(&j, "swap_in_seconds", d->in_s);
	tm_json_num(&j, "swap_in_gbps", tm_gbps((double)end->pages_in * PS, d->in_s));
	tm_json_int(&j, "pages_in", (long long)end->pages_in);
	tm_json_int(&j, "pages_in_fault", (long long)end->pages_in_fault);
	tm_json_int(&j, "folio_swapins", (long long)end->folio_swapins);
	tm_json_int(&j, "page_swapins", (long long)end->page_swapins);
	tm_json_int(&j, "tag_restores", (long long)end->tag_restores);
	tm_json_int(&j, "tagstore_entries_peak", (long long)d->peak.tags.entries);
	tm_json_int(&j, "tagstore_bytes_peak", (long long)d->peak.tags.bytes_used);
	tm_json_int(&j, "tagstore_uncompressed_bytes_peak", (long long)d->peak.tags.bytes_uncompressed);
	tm_json_num(&j, "tagstore_bytes_per_tagged_page", per_tagged(&d->peak));
	tm_json_num(&j, "ea0_inline_fraction", inline_frac(&d->peak));
	tm_json_raw(&j, "tagstore_classes", classes);
	tm_json_int(&j, "swapoff_pages_restored", (long long)off->pages_restored);
	tm_json_int(&j, "swapoff_tags_released", (long long)off->tags_released);
	tm_json_int(&j, "swapoff_tag_bytes_released", (long long)off->tag_bytes_released);
	tm_json_int(&j, "tagstore_entries_end", (long long)end->tags.entries);
	if (d->first[0])
		tm_json_str(&j, "first_error", d->first);
	tm_json_end(&j);
}

static void report_text(struct demo *d, const tm_swap_stats *end,
			const tm_swapoff_report *off, bool ok)
{
	char buf[4096];

	printf("region: %zu pages of 4 KiB, %zu tagged (fraction %.2f)\n",
	       d->npages, d->n_tagged, d->o.tagged_fraction);
	printf("swap-in: %s\n", d->lazy ? (d->o.mode == TM_SWAPIN_FOLIO ?
		"on access (userfaultfd), whole folio per fault" :
		"on access (userfaultfd), page by page") : d->lazy_note);
	printf("swapped out %zu folios of order %u (%zu pages) in %.3f s: %.2f GB/s\n",
	       d->folios_out, d->o.order, d->n_out, d->out_s,
	       tm_gbps((double)d->n_out * PS, d->out_s));
	printf("discarded %zu pages (subpages of swapped folios and resident pages)\n", d->n_gone);
	printf("touched back from %u threads in random order in %.3f s: %.2f GB/s\n",
	       d->o.threads, d->in_s, tm_gbps((double)end->pages_in * PS, d->in_s));
	printf("tag store at its peak: %" PRIu64 " entries, %.1f B per tagged page (Linux: 128), EA0 inline %.1f %%\n",
	       d->peak.tags.entries, per_tagged(&d->peak), 100 * inline_frac(&d->peak));
	tm_swap_stats_format(&d->peak, buf, sizeof(buf));
	printf("\n--- statistics after swap-out and discard ---\n%s", buf);
	tm_swap_stats_format(end, buf, sizeof(buf));
	printf("\n--- statistics at the end ---\n%s", buf);
	printf("\nswapoff (after swapping a quarter out again): %" PRIu64 " pages restored, %" PRIu64
	       " tags released (%" PRIu64 " bytes)\n",
	       off->pages_restored, off->tags_released, off->tag_bytes_released);
	printf("verified %zu pages (every page twice): %zu mismatches%s%s\n", atomic_load(&d->verified),
	       atomic_load(&d->mismatches), d->first[0] ? "; first: " : "", d->first);
	printf("%s\n", ok ? "OK" : "FAILED");
}

static void teardown(struct demo *d)
{
	tm_pager_destroy(d->p);
	if (d->r)
		tm_region_destroy(d->r);
	tm_swapfile_close(d->sf);
	free(d->tags);
	free(d->tagged);
	free(d->gone);
	free(d->order);
	pthread_mutex_destroy(&d->first_lock);
}

static int run_demo(struct demo *d, tm_swap_stats *end, tm_swapoff_report *off,
		    tm_error *err)
{
	int rc = setup(d, err);

	if (!rc)
		rc = fill(d, err);
	if (!rc)
		rc = start_pager(d, err);
	if (!rc)
		rc = swap_out(d, err);
	if (!rc)
		rc = discard_some(d, err);
	if (rc)
		return rc;
	tm_swapfile_stats(d->sf, &d->peak);
	shuffle(d);
	rc = swap_in(d, err);
	if (!rc)
		rc = run_threads(d, true, err);
	tm_swapfile_stats(d->sf, end);
	if (!rc)
		rc = swapoff_phase(d, off, err);
	return rc;
}

static int demo_main(int argc, char **argv)
{
	struct demo *d = calloc(1, sizeof(*d));
	tm_swapoff_report off = { 0 };
	tm_swap_stats end;
	tm_error err;
	int rc;

	if (!d)
		return 1;
	rc = parse(argc, argv, &d->o);
	if (rc) {
		free(d);
		return rc == 1 ? 0 : 2;
	}
	pthread_mutex_init(&d->first_lock, NULL);
	tm_error_clear(&err);
	memset(&end, 0, sizeof(end));
	rc = run_demo(d, &end, &off, &err);
	if (rc)
		note_error(d, &err);
	tm_swap_stats after;

	memset(&after, 0, sizeof(after));
	if (d->sf)
		tm_swapfile_stats(d->sf, &after);
	bool ok = !rc && atomic_load(&d->mismatches) == 0 &&
		  atomic_load(&d->verified) == 2 * d->npages && end.tags.entries == 0 &&
		  after.tags.entries == 0 && after.slots_used == 0;

	if (d->o.json)
		report_json(d, &end, &off, ok);
	else if (rc && !d->sf)
		fprintf(stderr, "tagmem swap demo: %s\n", err.msg);
	else
		report_text(d, &end, &off, ok);
	teardown(d);
	free(d);
	return ok ? 0 : 1;
}

int tm_cmd_swap(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "demo") == 0)
		return demo_main(argc, argv);
	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "tagmem swap: unknown or missing subcommand (try `tagmem swap demo --help`)\n");
	return 2;
}
