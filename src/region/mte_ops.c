/*
 * mte_ops.c - placeholder: every primitive reports -ENOTSUP until the real
 * aarch64 implementation lands.
 */
#include "region/mte_ops.h"

#include <errno.h>

bool tm_mte_hw_available(void) { return false; }
int tm_mte_enable_thread(void) { return -ENOTSUP; }
int tm_mte_map(size_t len, void **out) { (void)len; (void)out; return -ENOTSUP; }
int tm_mte_unmap(void *addr, size_t len) { (void)addr; (void)len; return -ENOTSUP; }
void *tm_mte_with_tag(void *addr, uint8_t tag) { (void)tag; return addr; }
void *tm_mte_untag(void *addr) { return addr; }
uint8_t tm_mte_load_tag(const void *addr) { (void)addr; return 0; }
void *tm_mte_ptr_for(void *addr) { return addr; }
int tm_mte_get_tags(const void *a, size_t l, uint8_t *p) { (void)a; (void)l; (void)p; return -ENOTSUP; }
int tm_mte_set_tags(void *a, size_t l, const uint8_t *p) { (void)a; (void)l; (void)p; return -ENOTSUP; }
int tm_mte_set_tag_range(void *a, size_t l, uint8_t t) { (void)a; (void)l; (void)t; return -ENOTSUP; }
int tm_mte_copy_in(void *d, const void *s, const uint8_t *p, size_t l) { (void)d; (void)s; (void)p; (void)l; return -ENOTSUP; }
int tm_mte_copy_out(void *d, const void *s, size_t l) { (void)d; (void)s; (void)l; return -ENOTSUP; }
int tm_mte_zero(void *a, size_t l) { (void)a; (void)l; return -ENOTSUP; }
