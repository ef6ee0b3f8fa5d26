/*
 * test_skip.h - the one way a tagmem cmocka test skips: with a reason, and
 * with the capability it found missing, so that a rig which knows the
 * capability exists can turn the skip into a failure.
 *
 * Why: cmocka's skip() takes no reason, and meson counts a test whose cases
 * skipped as OK. A capability that silently skips hides a broken detection
 * (a uffd-wp probe that always says "no" would pass everywhere). So:
 *
 *   tm_test_skip("uffd-wp", "uffd-wp unavailable: %s", err.msg);
 *
 * prints one line the result parsers read (scripts/vm/tmresults.py, used by
 * `make check`'s summary and `make check-vm`'s results.json):
 *
 *   TM-SKIP [uffd-wp] uffd-wp unavailable: region 'x': ...
 *
 * and skips the current test - unless the capability is listed in the
 * environment variable TAGMEM_REQUIRE (comma-separated, or "all"), in which
 * case it prints "TM-SKIP-REFUSED [cap] ..." and fails the test instead.
 * make check-vm sets TAGMEM_REQUIRE to what the guest kernel has.
 * TAGMEM_REQUIRE_MTE (any value; the cross build's qemu-user always has
 * MTE) is the older spelling of TAGMEM_REQUIRE=mte.
 *
 * cap is NULL when the test does not apply here and nothing is missing (a
 * release build compiles the checked code out, a soft-only case under the
 * mte fixture): such a skip is never refused, but still needs a reason.
 *
 * Capability names (keep this list and scripts/vm/check-vm in step):
 *   mte         HWCAP2_MTE: PROT_MTE mappings, tag checks
 *   soft, mte   as backend names: a region of that backend can be created
 *   uffd        userfaultfd with MISSING registration (lazy placement)
 *   uffd-wp     uffd write-protect, WP_ASYNC and PAGEMAP_SCAN (dirty tracking)
 *   uffd-move   UFFDIO_MOVE
 *   soft-dirty  /proc/PID/pagemap soft-dirty bits + clear_refs
 *   core-dump   the kernel writes a core file where the test expects it
 *   ramfs       mount(2) of a ramfs (root, a kernel with ramfs)
 *   kvm         /dev/kvm with KVM_CAP_ARM_MTE
 *   ptrace      tracing another process (PTRACE_SEIZE; qemu-user has none),
 *               PTRACE_PEEKMTETAGS, NT_ARM_TAGGED_ADDR_CTRL (tests/ptrace)
 *   gnuplot     the gnuplot program
 *
 * Include after <cmocka.h> (which needs <stdarg.h>, <stddef.h>,
 * <stdint.h>, <setjmp.h> first). Header-only; not thread-safe beyond what
 * cmocka's own skip()/fail() are (call it from the test's thread).
 */
#ifndef TAGMEM_TEST_SKIP_H
#define TAGMEM_TEST_SKIP_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Whether list (comma-separated words) names cap or says "all". */
static inline bool tm_test_list_has(const char *list, const char *cap)
{
	size_t n = strlen(cap);

	while (list && *list) {
		const char *end = strchr(list, ',');
		size_t len = end ? (size_t)(end - list) : strlen(list);

		if ((len == n && strncmp(list, cap, n) == 0) ||
		    (len == 3 && strncmp(list, "all", 3) == 0))
			return true;
		list = end ? end + 1 : NULL;
	}
	return false;
}

/* Whether this run requires capability cap (NULL: never). */
static inline bool tm_test_cap_required(const char *cap)
{
	if (!cap)
		return false;
	if (strcmp(cap, "mte") == 0 && getenv("TAGMEM_REQUIRE_MTE"))
		return true;
	return tm_test_list_has(getenv("TAGMEM_REQUIRE"), cap);
}

/*
 * Print the skip line; returns true when the skip must be refused
 * (the capability is required). Used through tm_test_skip().
 */
static inline bool tm_test_skip_note(const char *cap, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static inline bool tm_test_skip_note(const char *cap, const char *fmt, ...)
{
	bool refused = tm_test_cap_required(cap);
	char why[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	/* one line: newlines in the reason (an error message) become spaces */
	for (char *p = why; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	print_message("%s [%s] %s\n", refused ? "TM-SKIP-REFUSED" : "TM-SKIP",
		      cap ? cap : "-", why);
	fflush(stdout);
	return refused;
}

/* Skip the current test with a reason (printf format), or fail if cap is
 * required here (TAGMEM_REQUIRE). Does not return. */
#define tm_test_skip(cap, ...)                                                     \
	do {                                                                       \
		const char *tm_skip_cap_ = (cap);                                  \
		if (tm_test_skip_note(tm_skip_cap_, __VA_ARGS__))                  \
			fail_msg("capability '%s' is required here (TAGMEM_REQUIRE) " \
				 "but the test would skip", tm_skip_cap_);         \
		skip();                                                            \
	} while (0)

#endif
