/*
 * guest.c - the bare-metal workload the reference VMM runs (EL1, MMU on,
 * RAM Normal Tagged, synchronous tag checks on; see start.S).
 *
 * It keeps writing data and allocation tags into its data area and keeps a
 * log of what it wrote: one 32-bit entry per 16-byte granule,
 * (seq << 4) | tag, where the granule's 16 data bytes are a function of
 * (granule, seq) and seq 0 means "never written" (zero data, tag 0). Three
 * kinds of operation, on a run of 1-8 granules of a random page:
 *   data+tag   IRG picks a new tag, STGP writes data and tag together
 *   tag only   STG writes a different tag, the data stays (the write a
 *              migration must not miss: the page is dirty, its bytes equal)
 *   data only  a tag-checked store through a pointer carrying the current
 *              tag (faults if memory lost its tag)
 * Every log update is also XORed into x28, a register the compiler never
 * touches (-ffixed-x28): it travels with the vcpu state, not with RAM, so a
 * log page that went missing shows up as a log whose XOR is wrong.
 *
 * Every `poll` operations it reports progress and asks the VMM what to do
 * (TMV_REG_CMD): go on, verify, or halt. Verification reads every granule's
 * tag with LDG and its data through a pointer with the logged tag (so the
 * CPU's own tag check takes part), compares both with the log, and writes a
 * struct tmv_report for the VMM.
 */
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

#define GRANULE 16u
#define PAGE 4096u

register uint64_t log_xor __asm__("x28");

extern char __image_end[];

static struct tmv_report rep;
static uint64_t prng_state;
static uint8_t *data_base;
static uint32_t *log_base;
static uint64_t ngranules;
static int have_mte;            /* MTE2: tags in memory (else data only) */

/* The compiler may emit calls to these for struct copies. */
void *memset(void *d, int c, size_t n)
{
	uint8_t *p = d;

	while (n--)
		*p++ = (uint8_t)c;
	return d;
}

void *memcpy(void *d, const void *s, size_t n)
{
	uint8_t *p = d;
	const uint8_t *q = s;

	while (n--)
		*p++ = *q++;
	return d;
}

static void mmio_write(uint64_t reg, uint64_t v)
{
	volatile uint64_t *p = (volatile uint64_t *)(TMV_MMIO_IPA + reg);

	/* a plain STR (no writeback) so the exit syndrome is valid */
	__asm__ volatile("str %0, [%1]" : : "r"(v), "r"(p) : "memory");
}

static uint64_t mmio_read(uint64_t reg)
{
	volatile uint64_t *p = (volatile uint64_t *)(TMV_MMIO_IPA + reg);
	uint64_t v;

	__asm__ volatile("ldr %0, [%1]" : "=r"(v) : "r"(p) : "memory");
	return v;
}

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

/* The 16 data bytes of granule g at write number seq (0: never written). */
static void granule_data(uint64_t g, uint32_t seq, uint64_t out[2])
{
	uint64_t s = (g << 28) ^ seq ^ 0x5DEECE66Dull;

	if (seq == 0) {
		out[0] = out[1] = 0;
		return;
	}
	out[0] = splitmix(&s);
	out[1] = splitmix(&s);
}

static void *with_tag(void *p, unsigned tag)
{
	return (void *)(((uintptr_t)p & ~(0xFull << 56)) | ((uintptr_t)tag << 56));
}

static unsigned tag_of(const void *p)
{
	return (unsigned)((uintptr_t)p >> 56) & 0xF;
}

/* IRG with the current tag (and 0, via GCR_EL1) excluded. */
static void *new_tag(void *p, unsigned old)
{
	void *q;

	__asm__ volatile("irg %0, %1, %2" : "=r"(q) : "r"(p), "r"((uint64_t)1 << old));
	return q;
}

static unsigned load_tag(const void *p)
{
	const void *q = p;

	__asm__ volatile("ldg %0, [%1]" : "+r"(q) : "r"(p) : "memory");
	return tag_of(q);
}

static void log_set(uint64_t g, uint32_t entry)
{
	log_xor ^= (uint64_t)log_base[g] ^ entry;
	log_base[g] = entry;
}

static void op_data_tag(uint64_t g)
{
	uint32_t seq = (uint32_t)(rep.ops & 0x0FFFFFFF) | 1;
	uint8_t *p = data_base + g * GRANULE;
	void *t = new_tag(p, log_base[g] & 0xF);
	uint64_t d[2];

	granule_data(g, seq, d);
	__asm__ volatile("stgp %0, %1, [%2]" : : "r"(d[0]), "r"(d[1]), "r"(t) : "memory");
	log_set(g, (seq << 4) | tag_of(t));
}

static void op_tag_only(uint64_t g)
{
	uint8_t *p = data_base + g * GRANULE;
	void *t = new_tag(p, log_base[g] & 0xF);

	__asm__ volatile("stg %0, [%0]" : : "r"(t) : "memory");
	log_set(g, (log_base[g] & ~0xFu) | tag_of(t));
}

static void op_data_only(uint64_t g)
{
	uint32_t seq = (uint32_t)(rep.ops & 0x0FFFFFFF) | 1;
	unsigned tag = log_base[g] & 0xF;
	volatile uint64_t *q = with_tag(data_base + g * GRANULE, tag);
	uint64_t d[2];

	granule_data(g, seq, d);
	q[0] = d[0];                    /* checked against the allocation tag */
	q[1] = d[1];
	log_set(g, (seq << 4) | tag);
}

static void one_op(void)
{
	uint64_t r = splitmix(&prng_state);
	uint64_t npages = ngranules / (PAGE / GRANULE);
	uint64_t g = (r % npages) * (PAGE / GRANULE) + ((r >> 32) & 0xF8);
	unsigned run = 1 + ((r >> 40) & 7), kind = (unsigned)((r >> 48) % 3);

	if (!have_mte)
		kind = 2;       /* no tags: data-only stores through tag-0 pointers */

	for (unsigned i = 0; i < run; i++) {
		if (kind == 0)
			op_data_tag(g + i);
		else if (kind == 1)
			op_tag_only(g + i);
		else
			op_data_only(g + i);
	}
	if (kind == 0)
		rep.ops_data_tag++;
	else if (kind == 1)
		rep.ops_tag_only++;
	else
		rep.ops_data_only++;
	rep.ops++;
}

static void note_bad(uint64_t g, unsigned got)
{
	if (rep.first_bad_ipa)
		return;
	rep.first_bad_ipa = (uint64_t)(uintptr_t)(data_base + g * GRANULE);
	rep.first_bad_want = log_base[g];
	rep.first_bad_tag = got;
}

static void check_granule(uint64_t g)
{
	uint8_t *p = data_base + g * GRANULE;
	uint32_t e = log_base[g];
	unsigned tag = e & 0xF, got = have_mte ? load_tag(p) : 0;
	volatile uint64_t *q = with_tag(p, tag);
	uint64_t d[2];

	if (tag)
		rep.tagged_granules++;
	if (got != tag) {
		rep.bad_tags++;
		note_bad(g, got);
		return;
	}
	granule_data(g, e >> 4, d);
	if (q[0] != d[0] || q[1] != d[1]) {
		rep.bad_data++;
		note_bad(g, got);
	}
}

static void verify(void)
{
	uint64_t x = 0;

	rep.verifies++;
	rep.granules = rep.tagged_granules = rep.bad_tags = rep.bad_data = 0;
	rep.first_bad_ipa = rep.first_bad_want = rep.first_bad_tag = 0;
	for (uint64_t g = 0; g < ngranules; g++) {
		check_granule(g);
		x ^= log_base[g];
		rep.granules++;
	}
	rep.log_sum_ok = x == log_xor;
	mmio_write(TMV_REG_REPORT, (uint64_t)(uintptr_t)&rep);
}

/* One tag-only write on request; the data of the granule stays. */
static void tag_only_at(uint64_t g)
{
	if (g < ngranules)
		op_tag_only(g);
	mmio_write(TMV_REG_REPORT, (uint64_t)(uintptr_t)&rep);
}

static void setup(uint64_t ram, uint64_t seed)
{
	uint64_t first = ((uint64_t)(uintptr_t)__image_end + 0xFFFF) & ~0xFFFFull;
	uint64_t room = TMV_RAM_IPA + ram - first;
	uint64_t data = (room / 5 * 4) & ~(uint64_t)(PAGE - 1);
	uint64_t pfr1;

	__asm__ volatile("mrs %0, id_aa64pfr1_el1" : "=r"(pfr1));
	data_base = (uint8_t *)(uintptr_t)first;
	log_base = (uint32_t *)(uintptr_t)(first + data);
	ngranules = data / GRANULE;
	prng_state = seed;
	log_xor = 0;
	rep.magic = TMV_REPORT_MAGIC;
	rep.mte_level = (pfr1 >> 8) & 0xF;
	have_mte = rep.mte_level >= 2;
	rep.data_ipa = first;
	rep.data_bytes = data;
	rep.log_ipa = (uint64_t)(uintptr_t)log_base;
	mmio_write(TMV_REG_READY, (uint64_t)(uintptr_t)&rep);
}

void guest_main(uint64_t ram, uint64_t seed, uint64_t poll)
{
	setup(ram, seed);
	for (;;) {
		uint64_t cmd;

		for (uint64_t i = 0; i < poll; i++)
			one_op();
		mmio_write(TMV_REG_PROGRESS, rep.ops);
		cmd = mmio_read(TMV_REG_CMD);
		while (cmd != TMV_CMD_RUN) {
			if (cmd == TMV_CMD_VERIFY) {
				verify();
				break;
			}
			if ((cmd & 0xFF) == TMV_CMD_TAG_ONLY)
				tag_only_at(cmd >> 8);
			cmd = mmio_read(TMV_REG_CMD);
		}
	}
}
