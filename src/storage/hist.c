/*
 * hist.c - the latency histogram of tagged allocations: HDR-style buckets
 * (64 per power of two), O(1) to add, so a run of billions of events needs
 * no per-sample memory. Each bucket also keeps the smallest and largest
 * value it saw: a percentile falling in a bucket whose samples were all equal
 * (the common case, since modelled costs are sums of table entries) is
 * exact; otherwise the bucket's largest value is reported, at most 1/64
 * above the true one.
 */
#include "storage/sim_internal.h"

static unsigned bucket_of(uint64_t v)
{
	const unsigned sub = 1u << SS_HIST_SUB_BITS;

	if (v < 2 * (uint64_t)sub)
		return (unsigned)v;
	unsigned msb = 63u - (unsigned)__builtin_clzll(v);
	unsigned shift = msb - SS_HIST_SUB_BITS;

	return shift * sub + (unsigned)(v >> shift);
}

void tm_ssi_hist_add(struct ss_hist *h, uint64_t v)
{
	unsigned b = bucket_of(v);

	if (h->count[b] == 0 || v < h->min[b])
		h->min[b] = v;
	if (h->count[b] == 0 || v > h->max[b])
		h->max[b] = v;
	h->count[b]++;
	h->n++;
}

uint64_t tm_ssi_hist_percentile(const struct ss_hist *h, double p)
{
	if (h->n == 0)
		return 0;
	/* nearest rank: the smallest value with at least p of the samples <= it */
	uint64_t rank = (uint64_t)(p * (double)h->n);

	if ((double)rank < p * (double)h->n)
		rank++;
	if (rank == 0)
		rank = 1;
	uint64_t seen = 0;

	for (unsigned b = 0; b < SS_HIST_BUCKETS; b++) {
		seen += h->count[b];
		if (seen >= rank)
			return h->max[b];
	}
	return tm_ssi_hist_max(h);
}

uint64_t tm_ssi_hist_max(const struct ss_hist *h)
{
	for (unsigned b = SS_HIST_BUCKETS; b-- > 0;)
		if (h->count[b])
			return h->max[b];
	return 0;
}
