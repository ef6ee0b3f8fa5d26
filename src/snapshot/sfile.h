/*
 * sfile.h - the file underneath snapshots and core dumps: crash-safe
 * creation (temporary name in the same directory, fsync, rename, fsync of
 * the directory), O_DIRECT where the file system allows it with a clean
 * fall-back to the page cache, and aligned buffers.
 *
 * An sfile holds two descriptors on the same file: a buffered one and, when
 * the file system takes direct I/O, an O_DIRECT one. tm_sfile_pwrite/pread use
 * the direct descriptor for transfers whose offset, length and buffer are
 * SFILE_ALIGN-aligned and the buffered one otherwise; a transfer refused by
 * the direct path with EINVAL switches the file to buffered for good and
 * says why in note. Both descriptors are fsynced before the rename.
 * Thread safety: pwrite/pread may be called from many threads at once.
 * Internal to the snapshot part.
 */
#ifndef TM_SNAPSHOT_SFILE_H
#define TM_SNAPSHOT_SFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "tagmem/error.h"
#include "tagmem/snapshot.h"

#define SFILE_ALIGN 4096u
#define SFILE_HUGE (2u << 20)   /* transparent huge page size on x86-64 and arm64 4K */

typedef struct sfile {
	int fd;                 /* buffered */
	int dfd;                /* O_DIRECT, or -1 */
	int dirfd;              /* directory of a file being created, or -1 */
	_Atomic bool direct;    /* dfd is in use */
	uint64_t size;          /* size at open (readers) */
	char *path;             /* final name */
	char *tmp;              /* temporary name while creating, else NULL */
	char note[160];         /* why direct I/O is off, or "" */
} sfile;

/* Create a temporary file next to path (mode 0644). */
int tm_sfile_create(sfile *f, const char *path, enum tm_snap_io io,
		    tm_error *err);
/* Set the final size, fsync, rename to path, fsync the directory; after
 * sync_done (may be NULL) is called between the fsync and the rename. */
int tm_sfile_commit(sfile *f, uint64_t size, void (*sync_done)(void *),
		    void *ctx, tm_error *err);
/* Drop the file's pages from the page cache (after commit or open). */
void tm_sfile_drop_cache(sfile *f);
/* Close; a file not committed is unlinked. */
void tm_sfile_close(sfile *f);

/* Open an existing file for reading. */
int tm_sfile_open(sfile *f, const char *path, enum tm_snap_io io, tm_error *err);

int tm_sfile_pwrite(sfile *f, const void *buf, size_t len, uint64_t off,
		    tm_error *err);
/* Gather write of cnt pieces to one contiguous file range (iov is
 * modified); direct only when every piece is aligned. */
int tm_sfile_pwritev(sfile *f, struct iovec *iov, int cnt, uint64_t off,
		     tm_error *err);
/* Read exactly len bytes; -EBADMSG naming the offset at end of file. */
int tm_sfile_pread(sfile *f, void *buf, size_t len, uint64_t off, tm_error *err);

/* SFILE_ALIGN-aligned zeroed allocation (len rounded up); free with free(). */
void *tm_sfile_alloc(size_t len);
/* The same for chunk-sized I/O buffers of the save/restore/verify worker
 * pools: from 1 MiB up, 2 MiB aligned (len rounded up) and advised into
 * transparent huge pages, so an O_DIRECT chunk is one DMA segment. */
void *tm_sfile_alloc_huge(size_t len);

#endif
