/*
 * test_kvm_backend.c - the kvm backend on a real VM (arm64 KVM with MTE;
 * runs in the VM of scripts/vm, skips elsewhere with the reason):
 *   - tags written through the region API are what KVM_ARM_MTE_COPY_TAGS
 *     reads back, page by page and batched (read_pages across batches);
 *   - data goes to the VMM's mapping in place (tm_region_direct);
 *   - discard frees the pages: data and tags read zero afterwards;
 *   - KVM refuses tag writes while the VM logs dirty pages, and the error
 *     says so;
 *   - a guest's tag-only write (STG, data unchanged) shows up in the
 *     region's dirty collect (TM_DIRTY_AUTO picks the VM's dirty log);
 *   - a VM without KVM_CAP_ARM_MTE is refused, naming the slot and IPA.
 */
#include <errno.h>
#include <linux/kvm.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <cmocka.h>
#include "../test_skip.h"

#include "tagmem/kvm.h"
#include "tagmem/region.h"
#include "vm.h"

#define RAM (4u << 20)

static char msg[512];
static const char *guest_path;

static void skip_without_kvm(void)
{
	if (access("/dev/kvm", R_OK | W_OK) == 0)
		return;
	/* check-vm's guest must have KVM (TAGMEM_REQUIRE lists it): fails there */
	tm_test_skip("kvm", "no /dev/kvm here (runs in the VM of scripts/vm): %s", strerror(errno));
}

static void vm_up(struct tvm *vm, bool mte, bool dirty_log, bool guest)
{
	struct tvm_config c;

	tvm_config_default(&c);
	c.ram_size = RAM;
	c.mte = mte;
	c.dirty_log = dirty_log;
	if (tvm_create(vm, &c, msg, sizeof(msg)))
		fail_msg("VM: %s", msg);
	if (guest && (tvm_load_guest(vm, guest_path, msg, sizeof(msg)) ||
		      tvm_start(vm, false, msg, sizeof(msg))))
		fail_msg("guest: %s", msg);
}

static int set_logging(void *ctx, uint32_t slot, bool on, tm_error *err)
{
	(void)slot;
	(void)err;
	return tvm_set_dirty_logging(ctx, on);
}

static tm_region *ram_region(struct tvm *vm, tm_error *e)
{
	tm_kvm_slot s = { .vm_fd = vm->vm_fd, .slot = 0,
			  .guest_phys_addr = TMV_RAM_IPA, .memory_size = RAM,
			  .userspace_addr = vm->ram,
			  .manual_protect = vm->manual_protect,
			  .set_dirty_logging = set_logging, .ctx = vm };
	tm_region *r = NULL;

	tm_error_clear(e);
	tm_kvm_region_create(NULL, &s, NULL, &r, e);
	return r;
}

static void raw_tags(struct tvm *vm, uint64_t ipa, uint8_t *out, size_t pages)
{
	struct kvm_arm_copy_mte_tags c = { .guest_ipa = ipa, .length = pages * 4096,
					    .addr = out, .flags = KVM_ARM_TAGS_FROM_GUEST };

	assert_int_equal(ioctl(vm->vm_fd, KVM_ARM_MTE_COPY_TAGS, &c), (long)(pages * 4096));
}

static void test_tags_round_trip(void **state)
{
	struct tvm vm;
	tm_region *r;
	tm_error e;
	const size_t n = 100;   /* more than one 64-page batch */
	uint8_t *data = malloc(4096), *packed = malloc(n * 128), *all = malloc(n * 128);
	uint8_t *un = malloc(n * 256), *raw = malloc(n * 256), *bulk = malloc(n * 4096);

	(void)state;
	skip_without_kvm();
	vm_up(&vm, true, false, false);
	r = ram_region(&vm, &e);
	assert_non_null(r);
	assert_string_equal(tm_region_name(r), "slot0@0x40000000");
	assert_ptr_equal(tm_region_direct(r, 4096), vm.ram + 4096);
	srand(7);
	for (size_t pg = 0; pg < n; pg++) {
		for (size_t i = 0; i < 4096; i++)
			data[i] = (uint8_t)rand();
		for (size_t i = 0; i < 128; i++)
			packed[pg * 128 + i] = (uint8_t)rand();
		assert_int_equal(tm_region_write_page(r, pg + 7, data, packed + pg * 128, &e), 0);
		assert_memory_equal(vm.ram + (pg + 7) * 4096, data, 4096);
	}
	raw_tags(&vm, TMV_RAM_IPA + 7 * 4096, raw, n);
	for (size_t i = 0; i < n * 256; i++)
		assert_int_equal(raw[i], i % 2 ? packed[i / 2] >> 4 : packed[i / 2] & 0xF);
	assert_int_equal(tm_region_read_pages(r, 7, n, bulk, all, &e), 0);
	assert_memory_equal(all, packed, n * 128);
	assert_int_equal(tm_region_get_tags(r, 50, TM_TAGS_UNPACKED, un, &e), 0);
	assert_memory_equal(un, raw + 43 * 256, 256);
	/* an unpacked tag with bits above the nibble is refused, nothing written */
	un[9] = 0x1F;
	assert_int_equal(tm_region_set_tags(r, 50, TM_TAGS_UNPACKED, un, &e), -EINVAL);
	raw_tags(&vm, TMV_RAM_IPA + 50 * 4096, raw, 1);
	assert_memory_equal(raw, un, 9);
	assert_int_equal(raw[9], packed[43 * 128 + 4] >> 4);
	tm_region_destroy(r);
	tvm_destroy(&vm);
	free(data); free(packed); free(all); free(un); free(raw); free(bulk);
}

/* What a failed destination does with what it received: discard frees
 * the memfd pages (MADV_REMOVE), data and tags both read zero after. */
static void test_discard_zeroes_data_and_tags(void **state)
{
	struct tvm vm;
	uint8_t data[4096], tags[128], zero[4096] = { 0 }, raw[256];
	tm_region *r;
	tm_error e;

	(void)state;
	skip_without_kvm();
	vm_up(&vm, true, false, false);
	r = ram_region(&vm, &e);
	assert_non_null(r);
	memset(data, 0x5A, sizeof(data));
	memset(tags, 0x97, sizeof(tags));
	for (size_t pg = 10; pg < 14; pg++)
		assert_int_equal(tm_region_write_page(r, pg, data, tags, &e), 0);
	assert_int_equal(tm_region_discard(r, 10, 3, &e), 0);
	for (size_t pg = 10; pg < 13; pg++) {
		assert_memory_equal(vm.ram + pg * 4096, zero, 4096);
		raw_tags(&vm, TMV_RAM_IPA + pg * 4096, raw, 1);
		assert_memory_equal(raw, zero, 256);
	}
	raw_tags(&vm, TMV_RAM_IPA + 13 * 4096, raw, 1);
	assert_int_equal(raw[0], 7);
	assert_int_equal(raw[1], 9);
	assert_memory_equal(vm.ram + 13 * 4096, data, 4096);
	tm_region_destroy(r);
	tvm_destroy(&vm);
}

static void test_tag_write_while_logging(void **state)
{
	struct tvm vm;
	uint8_t tags[128] = { 0x21 };
	tm_region *r;
	tm_error e;

	(void)state;
	skip_without_kvm();
	vm_up(&vm, true, true, false);
	r = ram_region(&vm, &e);
	assert_non_null(r);
	tm_error_clear(&e);
	assert_int_equal(tm_region_set_tags(r, 3, TM_TAGS_PACKED, tags, &e), -EBUSY);
	printf("  %s\n", tm_error_msg(&e));
	assert_non_null(strstr(tm_error_msg(&e), "logs dirty pages"));
	tm_region_destroy(r);
	tvm_destroy(&vm);
}

static bool bit(const uint64_t *b, size_t i) { return (b[i / 64] >> (i % 64)) & 1; }

static void wait_polls(struct tvm *vm, unsigned n)
{
	uint64_t p0;

	pthread_mutex_lock(&vm->lock);
	p0 = vm->polls;
	pthread_mutex_unlock(&vm->lock);
	for (int i = 0; i < 20000; i++) {
		uint64_t p;

		pthread_mutex_lock(&vm->lock);
		p = vm->polls;
		pthread_mutex_unlock(&vm->lock);
		if (p >= p0 + n)
			return;
		usleep(1000);
	}
	fail_msg("guest stopped polling: %s", vm->exit_reason);
}

static void test_tag_only_write_is_dirty(void **state)
{
	struct tvm vm;
	struct tmv_report rep;
	uint64_t bm[RAM / 4096 / 64];
	uint8_t before[4096], after[4096], tb[128], ta[128];
	tm_region *r;
	tm_error e;
	size_t pg, g;

	(void)state;
	skip_without_kvm();
	vm_up(&vm, true, false, true);
	r = ram_region(&vm, &e);
	assert_non_null(r);
	assert_int_equal(tvm_wait_progress(&vm, 4096, 60000), 0);
	assert_int_equal(tm_region_dirty_start(r, TM_DIRTY_AUTO, &e), 0);
	assert_int_equal(tm_region_dirty_method(r), TM_DIRTY_BACKEND);
	assert_true(vm.slot_flags & KVM_MEM_LOG_DIRTY_PAGES);
	tvm_set_cmd(&vm, TMV_CMD_HALT);
	wait_polls(&vm, 3);
	memset(bm, 0, sizeof(bm));
	assert_int_equal(tm_region_dirty_collect(r, bm, &e), 0);
	memset(bm, 0, sizeof(bm));
	assert_int_equal(tm_region_dirty_collect(r, bm, &e), 0);
	/* granule 37 of the data area's fifth page */
	g = 4 * 256 + 37;
	pg = (vm.report.data_ipa + g * 16 - TMV_RAM_IPA) / 4096;
	assert_false(bit(bm, pg));
	assert_int_equal(tm_region_read_page(r, pg, before, tb, &e), 0);
	tvm_set_cmd(&vm, (g << 8) | TMV_CMD_TAG_ONLY);
	assert_int_equal(tvm_wait_report(&vm, tvm_reports(&vm) - (vm.reports ? 1 : 0), 60000, &rep), 0);
	wait_polls(&vm, 2);
	memset(bm, 0, sizeof(bm));
	assert_int_equal(tm_region_dirty_collect(r, bm, &e), 0);
	assert_int_equal(tm_region_read_page(r, pg, after, ta, &e), 0);
	printf("  page %zu: dirty %d, data unchanged %d, tag byte %#x -> %#x\n", pg,
	       bit(bm, pg), !memcmp(before, after, 4096), tb[37 / 2], ta[37 / 2]);
	assert_true(bit(bm, pg));
	assert_memory_equal(before, after, 4096);
	assert_memory_not_equal(tb, ta, 128);
	tm_region_dirty_stop(r);
	assert_false(vm.slot_flags & KVM_MEM_LOG_DIRTY_PAGES);
	tm_region_destroy(r);
	tvm_destroy(&vm);
}

static void test_refuse_without_mte(void **state)
{
	struct tvm vm;
	tm_error e;

	(void)state;
	skip_without_kvm();
	vm_up(&vm, false, false, false);
	assert_null(ram_region(&vm, &e));
	printf("  %s\n", tm_error_msg(&e));
	assert_int_equal(e.code, -ENOTSUP);
	assert_non_null(strstr(tm_error_msg(&e), "slot 0 at IPA 0x40000000"));
	assert_non_null(strstr(tm_error_msg(&e), "KVM_CAP_ARM_MTE"));
	tvm_destroy(&vm);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tags_round_trip),
		cmocka_unit_test(test_discard_zeroes_data_and_tags),
		cmocka_unit_test(test_tag_write_while_logging),
		cmocka_unit_test(test_tag_only_write_is_dirty),
		cmocka_unit_test(test_refuse_without_mte),
	};

	guest_path = argc > 1 ? argv[1] : "tm-guest.elf";
	return cmocka_run_group_tests(tests, NULL, NULL);
}
