/*
 * sfile.c - crash-safe file creation and direct/buffered I/O for snapshot
 * and core files (see sfile.h for the rules).
 */
#include "snapshot/sfile.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"

static void sfile_init(sfile *f)
{
	memset(f, 0, sizeof(*f));
	f->fd = f->dfd = f->dirfd = -1;
}

/*
 * Whether the file system takes O_DIRECT with our 4 KiB alignment: statx
 * reports the alignment it needs (Linux >= 6.1); 0 means no direct I/O.
 * Without the report, the first refused transfer falls back instead.
 */
static bool dio_alignment_ok(int fd, char *note, size_t len)
{
#ifdef STATX_DIOALIGN
	struct statx sx;

	if (statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx) == 0 &&
	    (sx.stx_mask & STATX_DIOALIGN)) {
		if (sx.stx_dio_offset_align == 0) {
			snprintf(note, len, "the file system does not support direct I/O (statx)");
			return false;
		}
		if (sx.stx_dio_offset_align > SFILE_ALIGN ||
		    sx.stx_dio_mem_align > SFILE_ALIGN) {
			snprintf(note, len, "direct I/O needs %u-byte alignment, more than %u",
				 sx.stx_dio_offset_align, SFILE_ALIGN);
			return false;
		}
	}
#else
	(void)fd; (void)note; (void)len;
#endif
	return true;
}

/* Open the O_DIRECT twin of f->fd by path, or record why not. */
static int open_direct(sfile *f, const char *name, int flags,
		       enum tm_snap_io io, tm_error *err)
{
	if (io == TM_SNAP_IO_BUFFERED) {
		snprintf(f->note, sizeof(f->note), "buffered I/O requested");
		return 0;
	}
	if (dio_alignment_ok(f->fd, f->note, sizeof(f->note))) {
		f->dfd = open(name, flags | O_DIRECT | O_CLOEXEC);
		if (f->dfd < 0)
			snprintf(f->note, sizeof(f->note), "open with O_DIRECT failed: %s",
				 strerror(errno));
	}
	f->direct = f->dfd >= 0;
	if (!f->direct && io == TM_SNAP_IO_DIRECT)
		return tm_error_set(err, -ENOTSUP, "%s: direct I/O required but unavailable: %s",
				    f->path, f->note);
	return 0;
}

static int open_dir_of(sfile *f, tm_error *err)
{
	char *copy = strdup(f->path);

	if (!copy)
		return tm_error_set(err, -ENOMEM, "%s: no memory", f->path);
	f->dirfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(copy);
	if (f->dirfd < 0)
		return tm_error_set(err, -errno, "%s: cannot open its directory: %s",
				    f->path, strerror(errno));
	return 0;
}

static int make_tmp_name(sfile *f, uint64_t salt, tm_error *err)
{
	char *copy = strdup(f->path), *copy2 = strdup(f->path);
	int n = -1;

	if (copy && copy2)
		n = asprintf(&f->tmp, "%s/.%s.tmp-%d-%08" PRIx64, dirname(copy),
			     basename(copy2), (int)getpid(), salt & 0xffffffffu);
	free(copy);
	free(copy2);
	if (n < 0) {
		f->tmp = NULL;
		return tm_error_set(err, -ENOMEM, "%s: no memory", f->path);
	}
	return 0;
}

int tm_sfile_create(sfile *f, const char *path, enum tm_snap_io io,
		    tm_error *err)
{
	tm_rng rng;
	int rc;

	sfile_init(f);
	f->path = strdup(path);
	if (!f->path)
		return tm_error_set(err, -ENOMEM, "%s: no memory", path);
	rc = open_dir_of(f, err);
	tm_rng_seed(&rng, tm_now_ns() ^ (uint64_t)getpid() << 32);
	for (int tries = 0; !rc && f->fd < 0 && tries < 16; tries++) {
		free(f->tmp);
		rc = make_tmp_name(f, tm_rng_next(&rng), err);
		if (rc)
			break;
		f->fd = open(f->tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (f->fd < 0 && errno != EEXIST)
			rc = tm_error_set(err, -errno, "%s: cannot create temporary file %s: %s",
					  path, f->tmp, strerror(errno));
	}
	if (!rc && f->fd < 0)
		rc = tm_error_set(err, -EEXIST, "%s: no free temporary name", path);
	if (!rc)
		rc = open_direct(f, f->tmp, O_RDWR, io, err);
	if (rc)
		tm_sfile_close(f);
	return rc;
}

int tm_sfile_open(sfile *f, const char *path, enum tm_snap_io io, tm_error *err)
{
	struct stat st;
	int rc;

	sfile_init(f);
	f->path = strdup(path);
	if (!f->path)
		return tm_error_set(err, -ENOMEM, "%s: no memory", path);
	f->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (f->fd < 0) {
		rc = tm_error_set(err, -errno, "%s: cannot open: %s", path, strerror(errno));
		tm_sfile_close(f);
		return rc;
	}
	if (fstat(f->fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		rc = tm_error_set(err, -EINVAL, "%s: not a regular file", path);
		tm_sfile_close(f);
		return rc;
	}
	f->size = (uint64_t)st.st_size;
	rc = open_direct(f, path, O_RDONLY, io, err);
	if (rc)
		tm_sfile_close(f);
	return rc;
}

static int sync_fd(int fd, const char *what, const char *path, tm_error *err)
{
	if (fd >= 0 && fsync(fd) != 0)
		return tm_error_set(err, -errno, "%s: fsync of %s failed: %s", path,
				    what, strerror(errno));
	return 0;
}

int tm_sfile_commit(sfile *f, uint64_t size, void (*sync_done)(void *),
		    void *ctx, tm_error *err)
{
	int rc = 0;

	if (ftruncate(f->fd, (off_t)size) != 0)
		return tm_error_set(err, -errno, "%s: cannot set size %" PRIu64 " of %s: %s",
				    f->path, size, f->tmp, strerror(errno));
	rc = sync_fd(f->dfd, "the file", f->path, err);
	if (!rc)
		rc = sync_fd(f->fd, "the file", f->path, err);
	if (rc)
		return rc;
	if (sync_done)
		sync_done(ctx);
	if (rename(f->tmp, f->path) != 0)
		return tm_error_set(err, -errno, "%s: cannot rename %s into place: %s",
				    f->path, f->tmp, strerror(errno));
	free(f->tmp);
	f->tmp = NULL;
	return sync_fd(f->dirfd, "its directory", f->path, err);
}

void tm_sfile_drop_cache(sfile *f)
{
	if (f->fd >= 0) {
		(void)fdatasync(f->fd);
		(void)posix_fadvise(f->fd, 0, 0, POSIX_FADV_DONTNEED);
	}
}

void tm_sfile_close(sfile *f)
{
	if (f->dfd >= 0)
		close(f->dfd);
	if (f->fd >= 0)
		close(f->fd);
	if (f->tmp)
		unlink(f->tmp);
	if (f->dirfd >= 0)
		close(f->dirfd);
	free(f->tmp);
	free(f->path);
	sfile_init(f);
}

static bool aligned_io(const sfile *f, const void *buf, size_t len,
		       uint64_t off)
{
	return f->direct && off % SFILE_ALIGN == 0 && len % SFILE_ALIGN == 0 &&
	       (uintptr_t)buf % SFILE_ALIGN == 0;
}

/* A direct transfer the kernel refused (EINVAL: alignment the statx probe
 * could not tell us about): go buffered for good. */
static void direct_refused(sfile *f, int rc)
{
	if (f->direct) {
		f->direct = false;
		snprintf(f->note, sizeof(f->note),
			 "a direct transfer was refused (%s); fell back to buffered I/O",
			 strerror(-rc));
	}
}

static bool aligned_iov(const sfile *f, const struct iovec *iov, int cnt,
			uint64_t off)
{
	if (!f->direct || off % SFILE_ALIGN)
		return false;
	for (int i = 0; i < cnt; i++)
		if ((uintptr_t)iov[i].iov_base % SFILE_ALIGN || iov[i].iov_len % SFILE_ALIGN)
			return false;
	return true;
}

/* pwritev until everything is written (short writes advance the iovecs). */
static int pwritev_full(int fd, struct iovec *iov, int cnt, uint64_t off)
{
	while (cnt > 0) {
		ssize_t n = pwritev(fd, iov, cnt > IOV_MAX ? IOV_MAX : cnt, (off_t)off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		off += (uint64_t)n;
		tm_iov_advance(&iov, &cnt, (size_t)n);
	}
	return 0;
}

int tm_sfile_pwritev(sfile *f, struct iovec *iov, int cnt, uint64_t off,
		     tm_error *err)
{
	size_t len = 0;
	int rc;

	for (int i = 0; i < cnt; i++)
		len += iov[i].iov_len;
	if (aligned_iov(f, iov, cnt, off)) {
		rc = pwritev_full(f->dfd, iov, cnt, off);
		if (rc != -EINVAL)
			goto out;
		direct_refused(f, rc);
	}
	rc = pwritev_full(f->fd, iov, cnt, off);
out:
	if (rc)
		return tm_error_set(err, rc, "%s: write of %zu bytes at offset %" PRIu64 " (0x%" PRIx64 ") failed: %s",
				    f->path, len, off, off, strerror(-rc));
	return 0;
}

/* One buffer: the vectored path with one entry (pwritev does not write to
 * the buffer, hence the cast). */
int tm_sfile_pwrite(sfile *f, const void *buf, size_t len, uint64_t off,
		    tm_error *err)
{
	struct iovec v = { (void *)buf, len };

	return tm_sfile_pwritev(f, &v, 1, off, err);
}

int tm_sfile_pread(sfile *f, void *buf, size_t len, uint64_t off, tm_error *err)
{
	int rc;

	if (aligned_io(f, buf, len, off)) {
		rc = tm_pread_full(f->dfd, buf, len, off);
		if (rc != -EINVAL)
			goto out;
		direct_refused(f, rc);
	}
	rc = tm_pread_full(f->fd, buf, len, off);
out:
	if (rc == -ENODATA)
		return tm_error_set(err, -EBADMSG, "%s: truncated: reading %zu bytes at offset %" PRIu64 " (0x%" PRIx64 ") hit the end of the file",
				    f->path, len, off, off);
	if (rc)
		return tm_error_set(err, rc, "%s: read of %zu bytes at offset %" PRIu64 " (0x%" PRIx64 ") failed: %s",
				    f->path, len, off, off, strerror(-rc));
	return 0;
}

static void *alloc_aligned(size_t len, size_t align)
{
	void *p = NULL;

	len = (len + align - 1) / align * align;
	if (len == 0)
		len = SFILE_ALIGN;
	if (posix_memalign(&p, align, len) != 0)
		return NULL;
	if (align == SFILE_HUGE)
		madvise(p, len, MADV_HUGEPAGE);
	memset(p, 0, len);
	return p;
}

void *tm_sfile_alloc(size_t len)
{
	return alloc_aligned(len, SFILE_ALIGN);
}

/*
 * Huge-page aligned and asked to be backed by transparent huge pages. An
 * O_DIRECT transfer gets one DMA segment per physically contiguous run of
 * its buffer: from 4 KiB pages a 1 MiB read needs 256 segments, more than
 * virtio-blk's usual 254, and the block layer splits it in two requests;
 * from a huge page it is one. On this project's VM that made O_DIRECT
 * reads 1.4-1.7x faster (docs/BENCHMARKS.md, snapshot). Where THP is off
 * the advice is ignored. Rounds len up to 2 MiB, so only for the few
 * long-lived buffers of the eager worker pools.
 */
void *tm_sfile_alloc_huge(size_t len)
{
	return alloc_aligned(len, len >= SFILE_HUGE / 2 ? SFILE_HUGE : SFILE_ALIGN);
}
