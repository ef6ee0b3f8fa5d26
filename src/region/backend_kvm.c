/*
 * backend_kvm.c - the kvm backend (tagmem/kvm.h): a region over one KVM
 * memslot. Data is the VMM's own mapping of the slot, read and written in
 * place; tags go through KVM_ARM_MTE_COPY_TAGS on the VM fd, one byte per
 * granule, batched over as many host pages as fit a 16 KiB stack buffer;
 * dirty tracking is the VM's dirty log.
 *
 * Written against the public backend interface (tagmem/backend.h) like any
 * caller's backend: the region core validates page numbers and spans and
 * wraps every error with the region, page and offset; this file adds the
 * IPA, the ioctl and the errno. No method keeps shared scratch state (tag
 * batches live on the calling thread's stack), so the data and tag methods
 * run from any number of threads; the dirty bitmap is the collector's alone
 * (one collect at a time) and is allocated when tracking starts.
 *
 * Everything is checked at creation (attach), before the first byte moves:
 * MTE enabled on the VM, a memslot at the IPA, host memory that can hold
 * tags. On hosts without arm64 KVM the same checks fail with -ENOTSUP.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/kvm.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "common/abi.h"
#include "tagmem/backend.h"
#include "tagmem/kvm.h"
#include "tagmem/tags.h"

/* Unpacked tags per COPY_TAGS call: 64 pages of 4 KiB, 4 of 64 KiB. */
#define KVM_TAG_BATCH 16384u

/*
 * struct kvm_arm_copy_mte_tags lives in arm64's asm/kvm.h, so other hosts'
 * headers name the ioctl but lack the struct: the same layout here
 * (Documentation/virt/kvm/api.rst 4.130), checked against the real one on
 * arm64. Elsewhere the ioctl simply fails and creation says so.
 */
struct tm_copy_tags {
	uint64_t guest_ipa;
	uint64_t length;
	void *addr;
	uint64_t flags;
	uint64_t reserved[2];
};
#define TM_TAGS_TO_GUEST   0u
#define TM_TAGS_FROM_GUEST 1u
#define TM_COPY_TAGS _IOR(KVMIO, 0xb4, struct tm_copy_tags)
#ifdef KVM_ARM_TAGS_FROM_GUEST
_Static_assert(TM_COPY_TAGS == KVM_ARM_MTE_COPY_TAGS &&
	       TM_TAGS_FROM_GUEST == KVM_ARM_TAGS_FROM_GUEST &&
	       TM_TAGS_TO_GUEST == KVM_ARM_TAGS_TO_GUEST,
	       "struct tm_copy_tags differs from struct kvm_arm_copy_mte_tags");
#endif

#ifndef HUGETLBFS_MAGIC
#define HUGETLBFS_MAGIC 0x958458f6
#endif

typedef struct kvm_be {
	int vm_fd;
	uint32_t slot;
	uint64_t ipa, size;
	uint8_t *ram;
	bool manual;
	int (*set_log)(void *ctx, uint32_t slot, bool on, tm_error *err);
	void *set_log_ctx;
	size_t ps, npages, granules;   /* host page size, pages, granules per page */
	bool shared;                   /* shmem: discard punches a hole */
	bool logging_set;              /* set_log(true) was called */
	uint64_t *dbm;                 /* dirty log buffer while tracking */
} kvm_be;

/* ---- tags ------------------------------------------------------------ */

/* One KVM_ARM_MTE_COPY_TAGS over [ipa, ipa + len), repeated while KVM
 * copies less than asked (it returns the bytes of guest memory done). */
static int copy_tags(kvm_be *k, uint64_t ipa, uint64_t len, uint8_t *buf,
		     bool from, tm_error *err)
{
	while (len) {
		struct tm_copy_tags c;
		long done;

		memset(&c, 0, sizeof(c));
		c.guest_ipa = ipa;
		c.length = len;
		c.addr = buf;
		c.flags = from ? TM_TAGS_FROM_GUEST : TM_TAGS_TO_GUEST;
		done = ioctl(k->vm_fd, TM_COPY_TAGS, &c);
		if (done < 0 && errno == EBUSY && !from)
			return tm_error_set(err, -EBUSY, "KVM_ARM_MTE_COPY_TAGS "
				"TO_GUEST at IPA %#" PRIx64 ": EBUSY: KVM refuses tag "
				"writes while a memslot of the VM logs dirty pages "
				"(turn KVM_MEM_LOG_DIRTY_PAGES off on the receiving VM)",
				ipa);
		if (done <= 0 || (uint64_t)done > len || done % (long)k->ps)
			return tm_error_set(err, done < 0 ? -errno : -EIO,
				"KVM_ARM_MTE_COPY_TAGS %s at IPA %#" PRIx64 " (%" PRIu64
				" bytes, slot %u): %s", from ? "FROM_GUEST" : "TO_GUEST",
				ipa, len, k->slot, done < 0 ? strerror(errno)
							  : "short or odd count");
		ipa += (uint64_t)done;
		buf += (uint64_t)done / TM_MTE_GRANULE;
		len -= (uint64_t)done;
	}
	return 0;
}

static size_t batch_pages(const kvm_be *k)
{
	return KVM_TAG_BATCH / k->granules;
}

static int kvm_read_tags(void *ctx, size_t pg, size_t n, uint8_t *packed,
			 tm_error *err)
{
	kvm_be *k = ctx;
	uint8_t buf[KVM_TAG_BATCH];

	for (size_t done = 0; done < n;) {
		size_t m = n - done < batch_pages(k) ? n - done : batch_pages(k);
		uint64_t ipa = k->ipa + (pg + done) * k->ps;
		int rc = copy_tags(k, ipa, m * k->ps, buf, true, err);

		if (rc)
			return rc;
		/* tm_tags_pack refuses a byte above 0xF; say where it was */
		rc = tm_tags_pack(packed + done * k->granules / 2, buf,
				  m * k->granules, err);
		if (rc)
			return tm_error_wrap(err, -EIO, "KVM_ARM_MTE_COPY_TAGS "
				"FROM_GUEST at IPA %#" PRIx64 " returned a tag byte "
				"above 0xF", ipa);
		done += m;
	}
	return 0;
}

static int kvm_write_tags(void *ctx, size_t pg, size_t n,
			  const uint8_t *packed, tm_error *err)
{
	kvm_be *k = ctx;
	uint8_t buf[KVM_TAG_BATCH];

	for (size_t done = 0; done < n;) {
		size_t m = n - done < batch_pages(k) ? n - done : batch_pages(k);
		int rc;

		if (packed)
			tm_tags_unpack(buf, packed + done * k->granules / 2,
				       m * k->granules);
		else
			memset(buf, 0, m * k->granules);
		rc = copy_tags(k, k->ipa + (pg + done) * k->ps, m * k->ps, buf,
			       false, err);
		if (rc)
			return rc;
		done += m;
	}
	return 0;
}

/* ---- data -------------------------------------------------------------- */

static int kvm_read_data(void *ctx, uint64_t off, void *buf, size_t len,
			 tm_error *err)
{
	kvm_be *k = ctx;

	(void)err;
	memcpy(buf, k->ram + off, len);
	return 0;
}

static int kvm_write_data(void *ctx, uint64_t off, const void *buf,
			  size_t len, tm_error *err)
{
	kvm_be *k = ctx;

	(void)err;
	memcpy(k->ram + off, buf, len);
	return 0;
}

static int kvm_read_pages(void *ctx, size_t pg, size_t n, void *data,
			  uint8_t *packed, tm_error *err)
{
	kvm_be *k = ctx;

	if (data)
		memcpy(data, k->ram + pg * k->ps, n * k->ps);
	return packed ? kvm_read_tags(ctx, pg, n, packed, err) : 0;
}

/* Tags first: the receiving guest is stopped, but a reader of the region
 * then never sees new data under the page's old tags. */
static int kvm_write_pages(void *ctx, size_t pg, size_t n, const void *data,
			   const uint8_t *packed, tm_error *err)
{
	kvm_be *k = ctx;
	int rc = k->granules ? kvm_write_tags(ctx, pg, n, packed, err) : 0;

	if (rc)
		return rc;
	if (data)
		memcpy(k->ram + pg * k->ps, data, n * k->ps);
	else
		memset(k->ram + pg * k->ps, 0, n * k->ps);
	return 0;
}

/* Shared memory (memfd, MAP_SHARED anonymous) keeps its pages through
 * MADV_DONTNEED; MADV_REMOVE frees them, tags included. */
static int kvm_discard(void *ctx, size_t pg, size_t n, tm_error *err)
{
	kvm_be *k = ctx;
	uint8_t *a = k->ram + pg * k->ps;

	if (madvise(a, n * k->ps, k->shared ? MADV_REMOVE : MADV_DONTNEED))
		return tm_error_set(err, -errno, "%s of IPA %#" PRIx64 " (+%zu "
				    "pages): %s", k->shared ? "MADV_REMOVE"
				    : "MADV_DONTNEED", k->ipa + pg * k->ps, n,
				    strerror(errno));
	return 0;
}

static void *kvm_direct(void *ctx, uint64_t off)
{
	return ((kvm_be *)ctx)->ram + off;
}

/* ---- dirty log ---------------------------------------------------------- */

static int get_log(kvm_be *k, tm_error *err)
{
	struct kvm_dirty_log d;

	memset(&d, 0, sizeof(d));
	d.slot = k->slot;
	d.dirty_bitmap = k->dbm;
	memset(k->dbm, 0, (k->npages + 63) / 64 * 8);
	if (ioctl(k->vm_fd, KVM_GET_DIRTY_LOG, &d) == 0)
		return 0;
	if (errno == ENOENT)
		return tm_error_set(err, -ENOTSUP, "KVM_GET_DIRTY_LOG on slot %u "
				    "(IPA %#" PRIx64 "): the memslot does not log "
				    "dirty pages (KVM_MEM_LOG_DIRTY_PAGES is off and "
				    "no set_dirty_logging callback was given)",
				    k->slot, k->ipa);
	return tm_error_set(err, -errno, "KVM_GET_DIRTY_LOG on slot %u (IPA %#"
			    PRIx64 "): %s", k->slot, k->ipa, strerror(errno));
}

/* With manual protection GET only reports; CLEAR write-protects exactly
 * the reported pages again, so a page written after GET stays dirty in
 * KVM's bitmap for the next collect, and one written before CLEAR is read
 * by the caller after this returns. */
static int clear_log(kvm_be *k, tm_error *err)
{
	struct kvm_clear_dirty_log c;

	if (!k->manual)
		return 0;
	memset(&c, 0, sizeof(c));
	c.slot = k->slot;
	c.first_page = 0;
	c.num_pages = (uint32_t)k->npages;
	c.dirty_bitmap = k->dbm;
	if (ioctl(k->vm_fd, KVM_CLEAR_DIRTY_LOG, &c) == 0)
		return 0;
	return tm_error_set(err, -errno, "KVM_CLEAR_DIRTY_LOG on slot %u (IPA %#"
			    PRIx64 ", %zu pages): %s", k->slot, k->ipa, k->npages,
			    strerror(errno));
}

static void kvm_dirty_stop(void *ctx)
{
	kvm_be *k = ctx;
	tm_error e;

	if (k->logging_set)
		k->set_log(k->set_log_ctx, k->slot, false, &e);
	k->logging_set = false;
	free(k->dbm);
	k->dbm = NULL;
}

/* Pages written from here on are reported: what the log held before is
 * read and re-armed once and dropped. */
static int kvm_dirty_start(void *ctx, tm_error *err)
{
	kvm_be *k = ctx;
	int rc = 0;

	if (k->npages > UINT32_MAX)
		return tm_error_set(err, -ENOTSUP, "slot %u: %zu pages are more "
				    "than KVM_CLEAR_DIRTY_LOG can name", k->slot,
				    k->npages);
	k->dbm = calloc((k->npages + 63) / 64, 8);
	if (!k->dbm)
		return tm_error_set(err, -ENOMEM, "slot %u: no memory for the "
				    "dirty log", k->slot);
	if (k->set_log) {
		rc = k->set_log(k->set_log_ctx, k->slot, true, err);
		k->logging_set = rc == 0;
	}
	if (!rc)
		rc = get_log(k, err);
	if (!rc)
		rc = clear_log(k, err);
	if (rc)
		kvm_dirty_stop(k);
	return rc;
}

static int kvm_dirty_collect(void *ctx, uint64_t *bitmap, tm_error *err)
{
	kvm_be *k = ctx;
	int rc = get_log(k, err);

	if (!rc)
		rc = clear_log(k, err);
	if (rc)
		return rc;
	for (size_t w = 0; w < (k->npages + 63) / 64; w++)
		bitmap[w] |= k->dbm[w];
	return 0;
}

/* ---- host memory that can hold tags ------------------------------------ */

static bool kernel_at_least(int major, int minor)
{
	struct utsname u;
	int a = 0, b = 0;

	return uname(&u) == 0 && sscanf(u.release, "%d.%d", &a, &b) == 2 &&
	       (a > major || (a == major && b >= minor));
}

/* The file system type of device maj:min from /proc/self/mountinfo
 * ("36 25 0:32 / /tmp rw - tmpfs tmpfs rw"), for files that cannot be
 * opened again (unlinked files on 9p, say); "" when no mount has it. */
static void fs_type_of(unsigned maj, unsigned min, char *out, size_t len)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[1024];

	snprintf(out, len, "%s", "");
	while (f && fgets(line, sizeof(line), f)) {
		unsigned a, b;
		const char *sep = strstr(line, " - ");

		if (sscanf(line, "%*u %*u %u:%u", &a, &b) == 2 && a == maj &&
		    b == min && sep && sscanf(sep + 3, "%63s", out) == 1)
			break;
		snprintf(out, len, "%s", "");
	}
	if (f)
		fclose(f);
}

/* A file mapping: shmem (memfd, /dev/zero MAP_SHARED, tmpfs) can hold
 * tags; hugetlbfs only from Linux 6.13 on; nothing else can. */
static int check_file_vma(uint64_t start, uint64_t end, const char *path,
			  unsigned maj, unsigned min, const void *addr,
			  bool *shared, tm_error *err)
{
	char mf[64], type[64];
	struct statfs sf;
	int fd, rc;

	snprintf(mf, sizeof(mf), "/proc/self/map_files/%" PRIx64 "-%" PRIx64,
		 start, end);
	fd = open(mf, O_RDONLY | O_CLOEXEC);
	rc = fd >= 0 ? fstatfs(fd, &sf) : statfs(path, &sf);
	if (fd >= 0)
		close(fd);
	if (rc) {
		fs_type_of(maj, min, type, sizeof(type));
		if (!strcmp(type, "tmpfs")) {
			*shared = true;
			return 0;
		}
		return tm_error_set(err, -ENOTSUP, "host memory at %p is a mapping "
				    "of %s on %s (device %u:%u), which cannot hold "
				    "MTE tags: only anonymous memory, memfd and tmpfs "
				    "files can", addr, path,
				    type[0] ? type : "a file system tagmem cannot "
				    "identify", maj, min);
	}
	*shared = true;
	if ((unsigned long)sf.f_type == TMPFS_MAGIC)
		return 0;
	if ((unsigned long)sf.f_type == HUGETLBFS_MAGIC && kernel_at_least(6, 13))
		return 0;
	return tm_error_set(err, -ENOTSUP, "host memory at %p is a mapping of %s "
			    "(file system magic %#lx), which cannot hold MTE "
			    "tags: only anonymous memory, memfd and tmpfs files "
			    "can (hugetlbfs from Linux 6.13)", addr, path,
			    (unsigned long)sf.f_type);
}

struct vma {
	uint64_t start, end, inode;
	unsigned maj, min;
	char path[256];
	bool mte, pfnmap;
};

/* "start-end perms offset dev inode path" */
static bool parse_vma_line(const char *line, struct vma *v)
{
	char perms[8];
	unsigned long long s, e, off, ino;
	unsigned maj, min;
	int n = 0;

	if (sscanf(line, "%llx-%llx %7s %llx %x:%x %llu %n", &s, &e, perms, &off,
		   &maj, &min, &ino, &n) < 7)
		return false;
	memset(v, 0, sizeof(*v));
	v->start = s;
	v->end = e;
	v->inode = ino;
	v->maj = maj;
	v->min = min;
	snprintf(v->path, sizeof(v->path), "%s", line + n);
	v->path[strcspn(v->path, "\n")] = 0;
	return true;
}

static void parse_vmflags(const char *line, struct vma *v)
{
	for (const char *p = line + 8; *p; p += 3) {
		while (*p == ' ')
			p++;
		if (!p[0] || !p[1])
			break;
		if (p[0] == 'm' && p[1] == 't')
			v->mte = true;
		if (p[0] == 'p' && p[1] == 'f')
			v->pfnmap = true;
	}
}

static int check_vma(const struct vma *v, const void *addr, bool *shared,
		     tm_error *err)
{
	if (v->mte)
		return tm_error_set(err, -ENOTSUP, "host memory at %p is mapped "
				    "PROT_MTE in this process: the kvm backend reads "
				    "guest data through the VMM's mapping without tag "
				    "checks, so it must be an ordinary mapping", addr);
	if (v->pfnmap)
		return tm_error_set(err, -ENOTSUP, "host memory at %p is a device "
				    "(PFN) mapping, which holds no MTE tags", addr);
	if (v->inode == 0)
		return 0;   /* private anonymous, [heap], [stack]: can hold tags */
	return check_file_vma(v->start, v->end, v->path, v->maj, v->min, addr,
			      shared, err);
}

/* Walk /proc/self/smaps: every VMA covering [a, a + len) must be one that
 * can hold tags, and together they must cover it without a gap. */
static int memory_check(uint64_t a, uint64_t len, bool *shared, tm_error *err)
{
	FILE *f = fopen("/proc/self/smaps", "re");
	char line[512];
	struct vma v;
	bool have = false;
	uint64_t covered = a;
	int rc = 0;

	*shared = false;
	if (!f)
		return tm_error_set(err, -errno, "/proc/self/smaps: %s",
				    strerror(errno));
	while (rc == 0 && covered < a + len && fgets(line, sizeof(line), f)) {
		if (parse_vma_line(line, &v)) {
			have = v.end > covered && v.start < a + len;
			if (have && v.start > covered)
				break;
			continue;
		}
		if (!have || strncmp(line, "VmFlags:", 8))
			continue;
		parse_vmflags(line, &v);
		rc = check_vma(&v, (void *)(uintptr_t)(v.start > a ? v.start : a),
			       shared, err);
		covered = v.end;
		have = false;
	}
	fclose(f);
	if (rc == 0 && covered < a + len)
		rc = tm_error_set(err, -EFAULT, "host memory at %#" PRIx64 " is not "
				  "mapped in this process", covered);
	return rc;
}

int tm_kvm_memory_check(const void *addr, size_t len, tm_error *err)
{
	bool shared;

	return memory_check((uintptr_t)addr, len, &shared, err);
}

/* ---- creation ------------------------------------------------------------ */

/* Read one page of tags at ipa: EINVAL means the VM has no MTE, another
 * error that KVM has no memslot there. */
static int probe_tags(kvm_be *k, uint64_t ipa, tm_error *err)
{
	uint8_t buf[KVM_TAG_BATCH];
	struct tm_copy_tags c;
	long rc;

	memset(&c, 0, sizeof(c));
	c.guest_ipa = ipa;
	c.length = k->ps;
	c.addr = buf;
	c.flags = TM_TAGS_FROM_GUEST;
	rc = ioctl(k->vm_fd, TM_COPY_TAGS, &c);
	if (rc == (long)k->ps)
		return 0;
	if (rc < 0 && (errno == EINVAL || errno == ENOTTY))
		return tm_error_set(err, -ENOTSUP, "slot %u at IPA %#" PRIx64 ": "
				    "VM fd %d does not have KVM_CAP_ARM_MTE enabled "
				    "(KVM_ARM_MTE_COPY_TAGS: %s), so its tags cannot "
				    "be read; refusing to move its memory without "
				    "them", k->slot, k->ipa, k->vm_fd, strerror(errno));
	return tm_error_set(err, rc < 0 ? -errno : -EIO, "slot %u: KVM has no "
			    "guest memory at IPA %#" PRIx64 " (KVM_ARM_MTE_COPY_TAGS: "
			    "%s)", k->slot, ipa, rc < 0 ? strerror(errno) : "short");
}

static int check_slot(const tm_kvm_slot *s, size_t ps, tm_error *err)
{
	if (fcntl(s->vm_fd, F_GETFD) < 0)
		return tm_error_set(err, -EBADF, "slot %u: VM fd %d is not open",
				    s->slot, s->vm_fd);
	if (s->guest_phys_addr % ps || s->memory_size % ps || !s->memory_size ||
	    (uintptr_t)s->userspace_addr % ps)
		return tm_error_set(err, -EINVAL, "slot %u at IPA %#" PRIx64 ": IPA, "
				    "size %#" PRIx64 " and host address %p must be "
				    "non-zero multiples of the host page size %zu",
				    s->slot, s->guest_phys_addr, s->memory_size,
				    s->userspace_addr, ps);
	return 0;
}

static int check_geom_kvm(const tm_kvm_slot *s, const tm_geom *g, size_t ps,
			  tm_error *err)
{
	if (g->page_size != ps)
		return tm_error_set(err, -EINVAL, "slot %u at IPA %#" PRIx64 ": "
				    "region page size %u is not the host page size "
				    "%zu (KVM's tag copy and dirty log work in host "
				    "pages)", s->slot, s->guest_phys_addr,
				    g->page_size, ps);
	if (g->kind != TM_META_NONE && g->kind != TM_META_MTE)
		return tm_error_set(err, -EINVAL, "slot %u at IPA %#" PRIx64 ": a "
				    "KVM guest's page metadata is MTE tags or none",
				    s->slot, s->guest_phys_addr);
	return 0;
}

static int kvm_attach(void *ctx, tm_region *r, tm_error *err)
{
	kvm_be *k = ctx;
	int rc;

	(void)r;
	rc = memory_check((uintptr_t)k->ram, k->size, &k->shared, err);
	if (rc)
		return tm_error_wrap(err, rc, "slot %u at IPA %#" PRIx64, k->slot,
				     k->ipa);
	if (!k->granules)
		return 0;
	rc = probe_tags(k, k->ipa, err);
	if (!rc)
		rc = probe_tags(k, k->ipa + k->size - k->ps, err);
	return rc;
}

static void kvm_detach(void *ctx)
{
	kvm_be *k = ctx;

	free(k->dbm);
	free(k);
}

static const tm_backend_methods kvm_methods = {
	.version = 1,
	.name = "kvm",
	.flags = 0,                 /* the guest writes tags behind our back */
	.attach = kvm_attach,
	.detach = kvm_detach,
	.read_data = kvm_read_data,
	.write_data = kvm_write_data,
	.read_tags = kvm_read_tags,
	.write_tags = kvm_write_tags,
	.read_pages = kvm_read_pages,
	.write_pages = kvm_write_pages,
	.discard = kvm_discard,
	.direct = kvm_direct,
	/* No mapping: uffd-wp and soft-dirty on the VMM's mapping never see
	 * the guest's writes (they do not go through the VMM's page tables),
	 * so offering them would lose pages. Lazy placement (post-copy) will
	 * add mapping together with place. */
	.dirty_start = kvm_dirty_start,
	.dirty_collect = kvm_dirty_collect,
	.dirty_stop = kvm_dirty_stop,
};

#define TM_ABI_MIN_tm_kvm_slot TM_ABI_END(tm_kvm_slot, ctx)

int tm_kvm_region_create(const char *name, const tm_kvm_slot *user,
			 const tm_geom *geom, tm_region **out, tm_error *err)
{
	size_t ps = (size_t)sysconf(_SC_PAGESIZE);
	tm_kvm_slot slot, *s = &slot;
	char defname[TM_REGION_NAME_MAX];
	tm_region_config cfg;
	tm_geom g;
	kvm_be *k;
	int rc;

	*out = NULL;
	rc = TM_ABI_COPY_IN(tm_kvm_slot, &slot, user, err);
	if (!rc)
		rc = check_slot(s, ps, err);
	if (!rc && !geom)
		rc = tm_geom_mte(&g, (uint32_t)ps, err);
	if (!rc && geom)
		g = *geom;
	if (!rc)
		rc = check_geom_kvm(s, &g, ps, err);
	if (rc)
		return rc;
	k = calloc(1, sizeof(*k));
	if (!k)
		return tm_error_set(err, -ENOMEM, "slot %u: out of memory", s->slot);
	k->vm_fd = s->vm_fd;
	k->slot = s->slot;
	k->ipa = s->guest_phys_addr;
	k->size = s->memory_size;
	k->ram = s->userspace_addr;
	k->manual = s->manual_protect;
	k->set_log = s->set_dirty_logging;
	k->set_log_ctx = s->ctx;
	k->ps = ps;
	k->npages = s->memory_size / ps;
	k->granules = g.kind == TM_META_MTE ? ps / TM_MTE_GRANULE : 0;
	snprintf(defname, sizeof(defname), "slot%u@%#" PRIx64, s->slot,
		 s->guest_phys_addr);
	memset(&cfg, 0, sizeof(cfg));
	cfg.name = name ? name : defname;
	cfg.size = s->memory_size;
	cfg.geom = g;
	rc = tm_region_create_with(&cfg, &kvm_methods, k, out, err);
	if (rc)
		free(k);
	return rc;
}
