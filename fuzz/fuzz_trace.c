/*
 * fuzz_trace.c - libFuzzer harness for the storage-sim trace parser
 * (src/storage/trace.c), which reads text a user hands to
 * `tagmem storage-sim --workload trace:FILE`. Whatever the input, parsing
 * must not crash or read past the buffer (the input is copied into an
 * exactly sized allocation, so ASan sees any overread), and an accepted
 * trace must write back out as a trace that parses to the same events.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tagmem/storage_sim.h"

static void check_rewrite(const tm_ss_trace *t)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	tm_ss_trace again;

	if (!f)
		abort();
	if (tm_ss_trace_write_header(f, NULL) ||
	    tm_ss_trace_write_events(f, t->ev, t->n, NULL))
		abort();
	fclose(f);
	if (tm_ss_trace_parse(buf, len, "rewrite", &again, NULL))
		abort();
	if (again.n != t->n ||
	    tm_ss_hash_events(0, again.ev, again.n) != tm_ss_hash_events(0, t->ev, t->n))
		abort();
	tm_ss_trace_free(&again);
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t len)
{
	char *text = malloc(len ? len : 1);
	tm_ss_trace t;

	if (!text)
		abort();
	memcpy(text, in, len);
	if (tm_ss_trace_parse(text, len, "fuzz", &t, NULL) == 0) {
		check_rewrite(&t);
		tm_ss_trace_free(&t);
	}
	free(text);
	return 0;
}
