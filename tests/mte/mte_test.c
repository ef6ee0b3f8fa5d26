/*
 * mte_test.c - the helpers declared in mte_test.h: MTE set-up for a test
 * group and the single-access fault probe (sigaction + sigsetjmp).
 */
#include "mte_test.h"

/*
 * Enable tagged addresses + synchronous checks for this thread.
 * Without MTE the tests skip, unless TAGMEM_REQUIRE_MTE is set (the cross
 * build sets it: qemu-aarch64 -cpu max always has MTE, so a skip there would
 * hide a broken detection).
 */
int mt_group_setup(void **state)
{
	(void)state;
	if (!tm_mte_hw_available()) {
		if (getenv("TAGMEM_REQUIRE_MTE")) {
			fprintf(stderr, "HWCAP2_MTE missing but TAGMEM_REQUIRE_MTE set\n");
			return -1;
		}
		return 0;
	}
	return tm_mte_enable_thread() == 0 ? 0 : -1;
}

void mt_require(void)
{
	if (!tm_mte_hw_available())
		tm_test_skip("mte", "no MTE on this CPU/kernel (HWCAP2_MTE)");
}

/* ---- fault probe ------------------------------------------------ */

static sigjmp_buf mt_jmp;
static volatile sig_atomic_t mt_armed;
static volatile int mt_code;
void *volatile mt_fault_addr;

static void mt_on_segv(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	if (!mt_armed) {
		/* Not ours: die as if no handler were installed. */
		signal(sig, SIG_DFL);
		return;
	}
	mt_armed = 0;
	mt_code = si->si_code;
	mt_fault_addr = si->si_addr;
	siglongjmp(mt_jmp, 1);
}

int mt_probe(void *p, enum mt_access k, uint64_t *val)
{
	struct sigaction sa, old;
	uint64_t tco = mt_tco_get();

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = mt_on_segv;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, &old);
	mt_code = 0;
	mt_fault_addr = NULL;
	if (sigsetjmp(mt_jmp, 1) == 0) {
		mt_armed = 1;
		switch (k) {
		case MT_LOAD8: *val = *(volatile uint8_t *)p; break;
		case MT_STORE8: *(volatile uint8_t *)p = (uint8_t)*val; break;
		case MT_LOAD64: *val = *(volatile uint64_t *)p; break;
		case MT_STORE64: *(volatile uint64_t *)p = *val; break;
		}
		mt_armed = 0;
	}
	mt_tco_set(tco);
	sigaction(SIGSEGV, &old, NULL);
	return mt_code;
}

void mt_assert_tag_fault(void *p, enum mt_access k, size_t width)
{
	uint64_t v = 0x5a;
	int code = mt_probe(p, k, &v);
	uintptr_t fa = mt_bits(mt_fault_addr);

	assert_int_equal(code, SEGV_MTESERR);
	assert_true(fa >= mt_bits(p) && fa < mt_bits(p) + width);
}

void mt_assert_no_fault(void *p, enum mt_access k)
{
	uint64_t v = 0x5a;

	assert_int_equal(mt_probe(p, k, &v), 0);
}

/* ---- tags ------------------------------------------------------- */

void mt_assert_tags(const void *p, size_t n, const uint8_t *unpacked)
{
	for (size_t i = 0; i < n; i++) {
		uint8_t t = tm_mte_load_tag((const char *)p + i * MT_GRANULE);

		if (t != unpacked[i])
			fail_msg("granule %zu at %p: tag %u, want %u", i,
				 (const void *)((const char *)p + i * MT_GRANULE),
				 t, unpacked[i]);
	}
}
