/*
 * test_kvm_refuse.c - what tm_kvm_region_create and tm_kvm_memory_check
 * refuse before touching anything, on any host (no KVM needed): a VM fd
 * that is not open or not a VM with MTE, misaligned slots, a page size that
 * is not the host's, host memory that cannot hold MTE tags (a file on a
 * file system other than tmpfs), memory that is not mapped. Every refusal
 * must name the slot and its IPA or the address.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/statfs.h>
#include <unistd.h>
#include <cmocka.h>
#include "../test_skip.h"

#include "tagmem/kvm.h"

#define SZ (64u << 10)

static size_t host_page(void) { return (size_t)sysconf(_SC_PAGESIZE); }

static void *memfd_map(int *fd)
{
	void *p;

	*fd = memfd_create("kvm-refuse", MFD_CLOEXEC);
	assert_true(*fd >= 0);
	assert_int_equal(ftruncate(*fd, SZ), 0);
	p = mmap(NULL, SZ, PROT_READ | PROT_WRITE, MAP_SHARED, *fd, 0);
	assert_true(p != MAP_FAILED);
	return p;
}

static void expect_refusal(const tm_kvm_slot *s, const tm_geom *g, int code,
			   const char *must)
{
	tm_region *r = (tm_region *)1;
	tm_error e;
	int rc;

	tm_error_clear(&e);
	rc = tm_kvm_region_create(NULL, s, g, &r, &e);
	printf("  refused (%d): %s\n", rc, tm_error_msg(&e));
	assert_int_equal(rc, code);
	assert_null(r);
	assert_non_null(strstr(tm_error_msg(&e), must));
}

static void test_bad_fd(void **state)
{
	int fd;
	void *p = memfd_map(&fd);
	tm_kvm_slot s = { .vm_fd = 1000, .slot = 3, .guest_phys_addr = 0x40000000,
			  .memory_size = SZ, .userspace_addr = p };

	(void)state;
	expect_refusal(&s, NULL, -EBADF, "slot 3");
	munmap(p, SZ);
	close(fd);
}

static void test_misaligned(void **state)
{
	int fd, nul = open("/dev/null", O_RDWR | O_CLOEXEC);
	void *p = memfd_map(&fd);
	tm_kvm_slot s = { .vm_fd = nul, .slot = 2, .guest_phys_addr = 0x40000010,
			  .memory_size = SZ, .userspace_addr = p };
	tm_geom g;

	(void)state;
	expect_refusal(&s, NULL, -EINVAL, "slot 2 at IPA 0x40000010");
	s.guest_phys_addr = 0x40000000;
	s.memory_size = SZ + 16;
	expect_refusal(&s, NULL, -EINVAL, "slot 2 at IPA 0x40000000");
	s.memory_size = SZ;
	assert_int_equal(tm_geom_mte(&g, host_page() == 4096 ? 16384 : 4096, NULL), 0);
	expect_refusal(&s, &g, -EINVAL, "host page size");
	munmap(p, SZ);
	close(fd);
	close(nul);
}

/* /dev/null is open but not a VM: the MTE probe fails and says so. */
static void test_not_a_vm_with_mte(void **state)
{
	int fd, nul = open("/dev/null", O_RDWR | O_CLOEXEC);
	void *p = memfd_map(&fd);
	tm_kvm_slot s = { .vm_fd = nul, .slot = 0, .guest_phys_addr = 0x40000000,
			  .memory_size = SZ, .userspace_addr = p };

	(void)state;
	expect_refusal(&s, NULL, -ENOTSUP, "slot 0 at IPA 0x40000000");
	munmap(p, SZ);
	close(fd);
	close(nul);
}

static void test_memory_kinds(void **state)
{
	int fd;
	void *shm = memfd_map(&fd);
	void *anon = mmap(NULL, SZ, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	void *sanon = mmap(NULL, SZ, PROT_READ | PROT_WRITE,
			   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	tm_error e;

	(void)state;
	assert_int_equal(tm_kvm_memory_check(shm, SZ, &e), 0);
	assert_int_equal(tm_kvm_memory_check(anon, SZ, &e), 0);
	assert_int_equal(tm_kvm_memory_check(sanon, SZ, &e), 0);
	munmap((char *)anon + host_page(), host_page());
	tm_error_clear(&e);
	assert_int_equal(tm_kvm_memory_check(anon, SZ, &e), -EFAULT);
	printf("  hole: %s\n", tm_error_msg(&e));
	assert_non_null(strstr(tm_error_msg(&e), "not mapped"));
	munmap(shm, SZ);
	munmap(anon, SZ);
	munmap(sanon, SZ);
	close(fd);
}

/* A file in the current directory (the build tree): refused unless that
 * happens to be tmpfs, naming the file. */
static void test_file_not_capable(void **state)
{
	char path[] = "kvm-refuse-XXXXXX";
	struct statfs sf;
	int fd = mkstemp(path), nul = open("/dev/null", O_RDWR | O_CLOEXEC);
	void *p;

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, SZ), 0);
	assert_int_equal(fstatfs(fd, &sf), 0);
	p = mmap(NULL, SZ, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	assert_true(p != MAP_FAILED);
	unlink(path);
	if ((unsigned long)sf.f_type == TMPFS_MAGIC) {
		munmap(p, SZ);
		close(fd);
		close(nul);
		tm_test_skip(NULL, "the build tree is on tmpfs, which KVM accepts: no refusal to test");
	}
	{
		tm_kvm_slot s = { .vm_fd = nul, .slot = 5, .guest_phys_addr = 0x80000000,
				  .memory_size = SZ, .userspace_addr = p };

		expect_refusal(&s, NULL, -ENOTSUP, "slot 5 at IPA 0x80000000");
		expect_refusal(&s, NULL, -ENOTSUP, "cannot hold MTE tags");
	}
	munmap(p, SZ);
	close(fd);
	close(nul);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_fd),
		cmocka_unit_test(test_misaligned),
		cmocka_unit_test(test_not_a_vm_with_mte),
		cmocka_unit_test(test_memory_kinds),
		cmocka_unit_test(test_file_not_capable),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
