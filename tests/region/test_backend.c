/*
 * test_backend.c - the two caller backends of test_backend.h, written only
 * against the public headers (tagmem/backend.h, tagmem/tags.h), as code
 * outside the library would be.
 */
#include "test_backend.h"

#include <errno.h>
#include <linux/userfaultfd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tagmem/tags.h"

static void count(tb_ctx *c, enum tb_call k)
{
	atomic_fetch_add(&c->calls[k], 1);
}

static size_t packed_bytes(const tb_ctx *c)
{
	return c->granules / 2;
}

/* ---- shared ------------------------------------------------------ */

static int tb_attach(void *ctx, tm_region *r, tm_error *err)
{
	tb_ctx *c = ctx;

	count(c, TB_ATTACH);
	if (tm_region_geom(r)->kind != TM_META_MTE ||
	    tm_region_geom(r)->page_size != c->page_size)
		return tm_error_set(err, -EINVAL, "test backend: geometry is "
				    "not MTE with %zu-byte pages", c->page_size);
	if (c->expect_size && tm_region_size(r) != c->expect_size)
		return tm_error_set(err, -EINVAL, "test backend: layout differs: "
				    "it holds %#zx bytes at 0x0, the region wants "
				    "%#zx", c->expect_size, tm_region_size(r));
	return 0;
}

static void tb_detach(void *ctx)
{
	count(ctx, TB_DETACH);
}

static int tb_page_state(void *ctx, size_t pg, size_t n, uint8_t *state,
			 tm_error *err)
{
	tb_ctx *c = ctx;

	(void)err;
	count(c, TB_PAGE_STATE);
	for (size_t i = 0; i < n; i++)
		state[i] = c->resident[pg + i] ? TM_PAGE_RESIDENT : 0;
	return 0;
}

/* ---- file: pread/pwrite, unpacked tags ------------------------------ */

static int file_read_data(void *ctx, uint64_t off, void *buf, size_t len,
			  tm_error *err)
{
	tb_ctx *c = ctx;
	ssize_t n;

	count(c, TB_READ_DATA);
	n = pread(c->fd, buf, len, (off_t)off);
	if (n < 0)
		return tm_error_set(err, -errno, "pread at %#llx: %s",
				    (unsigned long long)off, strerror(errno));
	if ((size_t)n < len) /* past the end of a sparse file: zeros */
		memset((uint8_t *)buf + n, 0, len - (size_t)n);
	return 0;
}

static int file_write_data(void *ctx, uint64_t off, const void *buf,
			   size_t len, tm_error *err)
{
	tb_ctx *c = ctx;
	ssize_t n;

	count(c, TB_WRITE_DATA);
	n = pwrite(c->fd, buf, len, (off_t)off);
	if (n != (ssize_t)len)
		return tm_error_set(err, n < 0 ? -errno : -EIO, "pwrite at %#llx "
				    "failed", (unsigned long long)off);
	return 0;
}

static int file_read_tags(void *ctx, size_t pg, size_t n, uint8_t *packed,
			  tm_error *err)
{
	tb_ctx *c = ctx;

	count(c, TB_READ_TAGS);
	atomic_fetch_add(&c->tag_pages_read, n);
	return tm_tags_pack(packed, c->tags + pg * c->granules, n * c->granules,
			    err);
}

static int file_write_tags(void *ctx, size_t pg, size_t n,
			   const uint8_t *packed, tm_error *err)
{
	tb_ctx *c = ctx;

	(void)err;
	count(c, TB_WRITE_TAGS);
	tm_tags_unpack(c->tags + pg * c->granules, packed, n * c->granules);
	return 0;
}

const tm_backend_methods tb_file_methods = {
	.version = 1,
	.name = "test-file",
	.flags = TM_BACKEND_F_EXCLUSIVE_TAGS,
	.attach = tb_attach,
	.detach = tb_detach,
	.read_data = file_read_data,
	.write_data = file_write_data,
	.read_tags = file_read_tags,
	.write_tags = file_write_tags,
	.page_state = tb_page_state,
};

/* ---- mem: caller memory, packed tags, dirty log, lazy ------------- */

static int mem_read_data(void *ctx, uint64_t off, void *buf, size_t len,
			 tm_error *err)
{
	tb_ctx *c = ctx;

	(void)err;
	count(c, TB_READ_DATA);
	memcpy(buf, c->mem + off, len);
	return 0;
}

static int mem_write_data(void *ctx, uint64_t off, const void *buf,
			  size_t len, tm_error *err)
{
	tb_ctx *c = ctx;

	(void)err;
	count(c, TB_WRITE_DATA);
	memcpy(c->mem + off, buf, len);
	return 0;
}

static int mem_read_tags(void *ctx, size_t pg, size_t n, uint8_t *packed,
			 tm_error *err)
{
	tb_ctx *c = ctx;

	(void)err;
	count(c, TB_READ_TAGS);
	atomic_fetch_add(&c->tag_pages_read, n);
	memcpy(packed, c->tags + pg * packed_bytes(c), n * packed_bytes(c));
	return 0;
}

static int mem_write_tags(void *ctx, size_t pg, size_t n,
			  const uint8_t *packed, tm_error *err)
{
	tb_ctx *c = ctx;

	(void)err;
	count(c, TB_WRITE_TAGS);
	memcpy(c->tags + pg * packed_bytes(c), packed, n * packed_bytes(c));
	return 0;
}

static int mem_discard(void *ctx, size_t pg, size_t n, tm_error *err)
{
	tb_ctx *c = ctx;

	count(c, TB_DISCARD);
	memset(c->tags + pg * packed_bytes(c), 0, n * packed_bytes(c));
	if (madvise(c->mem + pg * c->page_size, n * c->page_size, MADV_DONTNEED))
		return tm_error_set(err, -errno, "madvise: %s", strerror(errno));
	return 0;
}

static void *mem_direct(void *ctx, uint64_t off)
{
	return ((tb_ctx *)ctx)->mem + off;
}

static int mem_mapping(void *ctx, void **base, size_t *len)
{
	tb_ctx *c = ctx;

	*base = c->mem;
	*len = c->map_len;
	return 0;
}

static int mem_dirty_start(void *ctx, tm_error *err)
{
	tb_ctx *c = ctx;

	(void)err;
	for (size_t w = 0; w < (c->npages + 63) / 64; w++)
		atomic_store(&c->log[w], 0);
	atomic_store(&c->logging, true);
	return 0;
}

static int mem_dirty_collect(void *ctx, uint64_t *bitmap, tm_error *err)
{
	tb_ctx *c = ctx;

	(void)err;
	count(c, TB_DIRTY_COLLECT);
	for (size_t w = 0; w < (c->npages + 63) / 64; w++)
		bitmap[w] |= atomic_exchange(&c->log[w], 0);
	return 0;
}

static void mem_dirty_stop(void *ctx)
{
	atomic_store(&((tb_ctx *)ctx)->logging, false);
}

/* Tags into the array first, then the data with UFFDIO_COPY, which wakes. */
static int mem_place(void *ctx, int uffd, size_t pg, const void *data,
		     const uint8_t *packed, tm_error *err)
{
	tb_ctx *c = ctx;
	uint8_t old[2048], *t = c->tags + pg * packed_bytes(c);
	struct uffdio_copy cp = { .dst = (uintptr_t)(c->mem + pg * c->page_size),
				  .src = (uintptr_t)(data ? data : c->zero),
				  .len = c->page_size };

	count(c, TB_PLACE);
	memcpy(old, t, packed_bytes(c));
	if (packed)
		memcpy(t, packed, packed_bytes(c));
	else
		memset(t, 0, packed_bytes(c));
	if (ioctl(uffd, UFFDIO_COPY, &cp) == 0)
		return 0;
	memcpy(t, old, packed_bytes(c));
	if (errno == EEXIST)
		return -EEXIST;
	return tm_error_set(err, -errno, "UFFDIO_COPY to %p: %s",
			    (void *)(uintptr_t)cp.dst, strerror(errno));
}

const tm_backend_methods tb_mem_methods = {
	.version = 1,
	.name = "test-mem",
	.flags = 0,     /* the "guest" writes tags too */
	.attach = tb_attach,
	.detach = tb_detach,
	.read_data = mem_read_data,
	.write_data = mem_write_data,
	.read_tags = mem_read_tags,
	.write_tags = mem_write_tags,
	.page_state = tb_page_state,
	.discard = mem_discard,
	.direct = mem_direct,
	.mapping = mem_mapping,
	.dirty_start = mem_dirty_start,
	.dirty_collect = mem_dirty_collect,
	.dirty_stop = mem_dirty_stop,
	.place = mem_place,
};

void tb_mem_guest_write(tb_ctx *c, size_t off, const void *buf, size_t len,
			int tag)
{
	size_t first = off / c->page_size, last = (off + len - 1) / c->page_size;

	memcpy(c->mem + off, buf, len);
	for (size_t g = off / 16; tag >= 0 && g < (off + len + 15) / 16; g++) {
		uint8_t *b = c->tags + g / 2;

		*b = (uint8_t)(g % 2 ? (*b & 0x0F) | (tag << 4)
				     : (*b & 0xF0) | (tag & 0xF));
	}
	for (size_t pg = first; atomic_load(&c->logging) && pg <= last; pg++)
		atomic_fetch_or(&c->log[pg / 64], (uint64_t)1 << (pg % 64));
}

/* ---- set-up ------------------------------------------------------ */

const tm_backend_methods *tb_methods(enum tb_kind kind)
{
	return kind == TB_FILE ? &tb_file_methods : &tb_mem_methods;
}

static int open_data_file(void)
{
	char path[] = "/tmp/tagmem-test-backend-XXXXXX";
	int fd = mkstemp(path);

	if (fd >= 0)
		unlink(path);
	return fd;
}

tb_ctx *tb_new(enum tb_kind kind, size_t size, size_t page_size)
{
	tb_ctx *c = calloc(1, sizeof(*c));
	size_t host = (size_t)sysconf(_SC_PAGESIZE);

	if (!c)
		return NULL;
	c->kind = kind;
	c->size = size;
	c->page_size = page_size;
	c->npages = size / page_size;
	c->granules = page_size / 16;
	c->fd = -1;
	c->map_len = (size + host - 1) / host * host;
	c->resident = malloc(c->npages);
	c->log = calloc((c->npages + 63) / 64, sizeof(*c->log));
	c->tags = calloc(c->npages, kind == TB_FILE ? c->granules : c->granules / 2);
	c->zero = mmap(NULL, page_size, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS,
		       -1, 0);
	if (c->zero == MAP_FAILED)
		c->zero = NULL;
	if (kind == TB_FILE) {
		c->fd = open_data_file();
	} else {
		c->mem = mmap(NULL, c->map_len, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (c->mem == MAP_FAILED)
			c->mem = NULL;
	}
	if (!c->resident || !c->log || !c->tags || !c->zero ||
	    (kind == TB_FILE ? c->fd < 0 : !c->mem)) {
		tb_free(c);
		return NULL;
	}
	memset(c->resident, 1, c->npages);
	return c;
}

void tb_free(tb_ctx *c)
{
	if (!c)
		return;
	if (c->fd >= 0)
		close(c->fd);
	if (c->mem)
		munmap(c->mem, c->map_len);
	if (c->zero)
		munmap(c->zero, c->page_size);
	free(c->resident);
	free(c->log);
	free(c->tags);
	free(c);
}

int tb_region(enum tb_kind kind, const char *name, size_t size,
	      size_t page_size, tm_region **out, tb_ctx **ctx, tm_error *err)
{
	tm_region_config cfg = { .name = name, .size = size };
	tb_ctx *c;
	int rc;

	*out = NULL;
	*ctx = NULL;
	rc = tm_geom_mte(&cfg.geom, (uint32_t)page_size, err);
	if (rc)
		return rc;
	c = tb_new(kind, size, page_size);
	if (!c)
		return tm_error_set(err, -ENOMEM, "test backend: no %s",
				    kind == TB_FILE ? "file" : "memory");
	rc = tm_region_create_with(&cfg, tb_methods(kind), c, out, err);
	if (rc) {
		tb_free(c);
		return rc;
	}
	*ctx = c;
	return 0;
}

void tb_region_destroy(tm_region *r, tb_ctx *c)
{
	tm_region_destroy(r);
	tb_free(c);
}
