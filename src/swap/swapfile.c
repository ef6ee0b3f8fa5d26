/*
 * swapfile.c - the swap file: creation (free-space check, preallocation,
 * header in slot 0), slot I/O whose errors name the slot and file offset,
 * swapoff, and the statistics (text laid out like the EA0 debugfs file).
 */
#include "swap/swap_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "common/abi.h"
#include "common/util.h"

#define HDR_MAGIC "TMSWAPv1"
#define HDR_VERSION 1u

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static int check_config(const tm_swapfile_config *cfg, tm_error *err)
{
	if (!cfg || !cfg->path || !*cfg->path)
		return tm_error_set(err, -EINVAL, "swap file: no path given");
	if (cfg->page_size != 4096 && cfg->page_size != 16384 &&
	    cfg->page_size != 65536)
		return tm_error_set(err, -EINVAL,
				    "swap file %s: page size %u is not 4, 16 or 64 KiB",
				    cfg->path, cfg->page_size);
	if (cfg->size / cfg->page_size < 2)
		return tm_error_set(err, -EINVAL,
				    "swap file %s: size %" PRIu64 " holds fewer than 2 pages of %u B",
				    cfg->path, cfg->size, cfg->page_size);
	if (strlen(cfg->path) >= PATH_MAX)
		return tm_error_set(err, -ENAMETOOLONG, "swap file: path too long");
	return 0;
}

static int open_file(tm_swapfile *sf, const char *path, tm_error *err)
{
	struct stat st;
	int dflag = (sf->flags & TM_SWAPFILE_DIRECT) ? O_DIRECT : 0;

	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
		sf->fd = open(path, O_TMPFILE | O_RDWR | O_CLOEXEC | dflag, 0600);
		sf->named = false;
		snprintf(sf->path, sizeof(sf->path), "%s/(unnamed)", path);
	} else {
		sf->fd = open(path, O_CREAT | O_TRUNC | O_RDWR | O_CLOEXEC | dflag,
			      0600);
		sf->named = true;
		snprintf(sf->path, sizeof(sf->path), "%s", path);
	}
	if (sf->fd < 0)
		return tm_error_set(err, -errno, "swap file %s: cannot create: %s",
				    path, strerror(errno));
	return 0;
}

static int check_space(tm_swapfile *sf, uint64_t size, tm_error *err)
{
	struct statvfs vfs;

	if (fstatvfs(sf->fd, &vfs) != 0)
		return tm_error_set(err, -errno, "swap file %s: statvfs: %s",
				    sf->path, strerror(errno));
	uint64_t avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;

	if (avail < size)
		return tm_error_set(err, -ENOSPC,
				    "swap file %s: %" PRIu64 " B asked, only %" PRIu64 " B free on its file system",
				    sf->path, size, avail);
	return 0;
}

static int write_header(tm_swapfile *sf, tm_error *err)
{
	uint8_t *hdr = aligned_alloc(4096, sf->page_size);
	int rc;

	if (!hdr)
		return tm_error_set(err, -ENOMEM, "swap file %s: header buffer",
				    sf->path);
	memset(hdr, 0, sf->page_size);
	memcpy(hdr, HDR_MAGIC, 8);
	put_le32(hdr + 8, HDR_VERSION);
	put_le32(hdr + 12, sf->page_size);
	put_le64(hdr + 16, sf->nslots);
	rc = tm_pwrite_full(sf->fd, hdr, sf->page_size, 0);
	free(hdr);
	if (rc)
		return tm_error_set(err, rc, "swap file %s: writing the header: %s",
				    sf->path, strerror(-rc));
	return 0;
}

static int prepare_file(tm_swapfile *sf, tm_error *err)
{
	uint64_t size = sf->nslots * sf->page_size;
	int rc = check_space(sf, size, err);

	if (rc)
		return rc;
	if (!(sf->flags & TM_SWAPFILE_SPARSE)) {
		rc = posix_fallocate(sf->fd, 0, (off_t)size);
		if (rc)
			return tm_error_set(err, -rc,
					    "swap file %s: preallocating %" PRIu64 " B: %s",
					    sf->path, size, strerror(rc));
	} else if (ftruncate(sf->fd, (off_t)size) != 0) {
		return tm_error_set(err, -errno, "swap file %s: ftruncate: %s",
				    sf->path, strerror(errno));
	}
	return write_header(sf, err);
}

static void free_swapfile(tm_swapfile *sf)
{
	tm_tagstore_fini(&sf->ts);
	tm_slots_fini(&sf->slots);
	if (sf->fd >= 0) {
		close(sf->fd);
		if (sf->named && !(sf->flags & TM_SWAPFILE_KEEP))
			unlink(sf->path);
	}
	pthread_mutex_destroy(&sf->lock);
	free(sf);
}

int tm_swapfile_open(const tm_swapfile_config *ucfg, tm_swapfile **out,
		     tm_error *err)
{
	tm_swapfile_config copy;  /* the caller's, at this library's size */
	const tm_swapfile_config *cfg = &copy;
	tm_swapfile *sf;
	int rc = TM_ABI_COPY_IN(tm_swapfile_config, &copy, ucfg, err);

	if (!rc)
		rc = check_config(cfg, err);
	if (rc)
		return rc;
	sf = calloc(1, sizeof(*sf));
	if (!sf)
		return tm_error_set(err, -ENOMEM, "swap file %s: out of memory",
				    cfg->path);
	sf->fd = -1;
	sf->flags = cfg->flags;
	sf->page_size = cfg->page_size;
	sf->nslots = cfg->size / cfg->page_size;
	pthread_mutex_init(&sf->lock, NULL);
	rc = open_file(sf, cfg->path, err);
	if (!rc)
		rc = prepare_file(sf, err);
	if (!rc && (rc = tm_slots_init(&sf->slots, sf->nslots)) != 0)
		tm_error_set(err, rc, "swap file %s: slot allocator for %" PRIu64 " slots: %s",
			     sf->path, sf->nslots, strerror(-rc));
	if (!rc)
		rc = tm_tagstore_init(&sf->ts, sf->page_size, err);
	if (rc) {
		free_swapfile(sf);
		return rc;
	}
	*out = sf;
	return 0;
}

void tm_swapfile_close(tm_swapfile *sf)
{
	if (sf)
		free_swapfile(sf);
}

const char *tm_swapfile_path(const tm_swapfile *sf) { return sf->path; }
uint64_t tm_swapfile_nslots(const tm_swapfile *sf) { return sf->nslots; }
uint32_t tm_swapfile_page_size(const tm_swapfile *sf) { return sf->page_size; }
int tm_swapfile_fd(const tm_swapfile *sf) { return sf->fd; }

uint64_t tm_swap_slot_offset(const tm_swapfile *sf, uint64_t slot)
{
	return slot * sf->page_size;
}

/* Why a read of a slot failed, in words. */
static int describe_read_error(tm_swapfile *sf, uint64_t slot, size_t n,
			       int rc, tm_error *err)
{
	uint64_t off = tm_swap_slot_offset(sf, slot);
	struct stat st;

	if (rc == -ENODATA && fstat(sf->fd, &st) == 0)
		return tm_error_set(err, -EIO,
				    "swap file %s: slot %" PRIu64 " (file offset %" PRIu64 ", %zu B) cannot be read: the file ends at %lld (truncated)",
				    sf->path, slot, off, n * sf->page_size,
				    (long long)st.st_size);
	return tm_error_set(err, rc == -ENODATA ? -EIO : rc,
			    "swap file %s: slot %" PRIu64 " (file offset %" PRIu64 ", %zu B) cannot be read: %s",
			    sf->path, slot, off, n * sf->page_size, strerror(-rc));
}

int tm_swapfile_read(tm_swapfile *sf, uint64_t slot, void *buf, size_t n,
		     tm_error *err)
{
	int rc;

	if (slot == 0 || slot + n > sf->nslots)
		return tm_error_set(err, -EINVAL,
				    "swap file %s: slots %" PRIu64 "+%zu outside 1..%" PRIu64,
				    sf->path, slot, n, sf->nslots - 1);
	rc = tm_pread_full(sf->fd, buf, n * sf->page_size,
			   tm_swap_slot_offset(sf, slot));
	if (rc) {
		tm_count(&sf->ctr.read_errors, 1);
		return describe_read_error(sf, slot, n, rc, err);
	}
	tm_count(&sf->ctr.bytes_read, n * sf->page_size);
	return 0;
}

int tm_swapfile_write(tm_swapfile *sf, uint64_t slot, const void *buf,
		      size_t n, tm_error *err)
{
	int rc = tm_pwrite_full(sf->fd, buf, n * sf->page_size,
				tm_swap_slot_offset(sf, slot));

	if (rc)
		return tm_error_set(err, rc,
				    "swap file %s: slot %" PRIu64 " (file offset %" PRIu64 ", %zu B) cannot be written: %s",
				    sf->path, slot, tm_swap_slot_offset(sf, slot),
				    n * sf->page_size, strerror(-rc));
	tm_count(&sf->ctr.bytes_written, n * sf->page_size);
	return 0;
}

void tm_swapfile_attach(tm_swapfile *sf, tm_pager *p)
{
	pthread_mutex_lock(&sf->lock);
	p->next = sf->pagers;
	sf->pagers = p;
	pthread_mutex_unlock(&sf->lock);
}

void tm_swapfile_detach(tm_swapfile *sf, tm_pager *p)
{
	pthread_mutex_lock(&sf->lock);
	for (tm_pager **pp = &sf->pagers; *pp; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	}
	pthread_mutex_unlock(&sf->lock);
}

static int unuse(tm_swapfile *sf, unsigned flags, tm_swapoff_report *rep,
		 tm_error *err)
{
	for (tm_pager *p = sf->pagers; p; p = p->next) {
		size_t before = tm_pager_swapped_pages(p);
		int rc;

		if (flags & TM_SWAPOFF_DROP) {
			rep->pages_dropped += tm_pager_drop_all(p);
			continue;
		}
		rc = tm_swap_in(p, 0, p->npages, err);
		rep->pages_restored += before - tm_pager_swapped_pages(p);
		if (rc)
			return tm_error_wrap(err, rc, "swapoff of %s", sf->path);
	}
	return 0;
}

int tm_swapoff(tm_swapfile *sf, unsigned flags, tm_swapoff_report *report,
	       tm_error *err)
{
	tm_swapoff_report rep = { 0 };
	tm_tagstore_stats before, after;
	int rc;

	tm_tagstore_get_stats(&sf->ts, &before);
	pthread_mutex_lock(&sf->lock);
	rc = unuse(sf, flags, &rep, err);
	pthread_mutex_unlock(&sf->lock);
	if (!rc) {
		tm_tagstore_invalidate(&sf->ts, 0, UINT64_MAX, &rep.stale_tags,
				       NULL);
		tm_slots_reset(&sf->slots);
		atomic_store(&sf->off, true);
	}
	tm_tagstore_get_stats(&sf->ts, &after);
	rep.tags_released = before.entries - after.entries;
	rep.tag_bytes_released = before.bytes_used - after.bytes_used;
	if (report)
		*report = rep;
	return rc;
}

static uint64_t ld(tm_counter *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

void tm_swapfile_stats(tm_swapfile *sf, tm_swap_stats *st)
{
	struct tm_swap_counters *c = &sf->ctr;

	memset(st, 0, sizeof(*st));
	st->page_size = sf->page_size;
	st->slots_total = tm_slots_total(&sf->slots);
	st->slots_used = st->slots_total - tm_slots_nfree(&sf->slots);
	for (unsigned k = 0; k <= TM_SWAP_MAX_ORDER; k++)
		st->folios_out[k] = ld(&c->folios_out[k]);
	st->pages_out = ld(&c->pages_out);
	st->pages_out_tagged = ld(&c->pages_out_tagged);
	st->pages_out_zero = ld(&c->pages_out_zero);
	st->pages_in = ld(&c->pages_in);
	st->pages_in_fault = ld(&c->pages_in_fault);
	st->folio_swapins = ld(&c->folio_swapins);
	st->page_swapins = ld(&c->page_swapins);
	st->tag_restores = ld(&c->tag_restores);
	st->pages_discarded = ld(&c->pages_discarded);
	st->read_errors = ld(&c->read_errors);
	st->bytes_written = ld(&c->bytes_written);
	st->bytes_read = ld(&c->bytes_read);
	tm_tagstore_get_stats(&sf->ts, &st->tags);
}

/* Appends to buf at *at like snprintf, tracking the length needed. */
__attribute__((format(printf, 4, 5)))
static void emit(char *buf, size_t len, size_t *at, const char *fmt, ...)
{
	va_list ap;
	size_t room = *at < len ? len - *at : 0;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(room ? buf + *at : NULL, room, fmt, ap);
	va_end(ap);
	if (n > 0)
		*at += (size_t)n;
}

static size_t class_bytes(const tm_swap_stats *st, unsigned c)
{
	size_t packed = (size_t)st->page_size / 32;

	if (c == TM_TS_INLINE)
		return 8;
	if (c == TM_TS_RAW)
		return packed;
	return (size_t)16 << (c - TM_TS_STREAM_16);
}

size_t tm_swap_stats_format(const tm_swap_stats *st, char *buf, size_t len)
{
	const tm_tagstore_stats *t = &st->tags;
	size_t at = 0;

	if (len)
		buf[0] = '\0';
	emit(buf, len, &at, "page size: %u\nslots: %" PRIu64 " used of %" PRIu64 "\n",
	     st->page_size, st->slots_used, st->slots_total);
	for (unsigned k = 0; k <= TM_SWAP_MAX_ORDER; k++)
		if (st->folios_out[k])
			emit(buf, len, &at, "order %u folios out: %" PRIu64 "\n",
			     k, st->folios_out[k]);
	emit(buf, len, &at,
	     "pages out: %" PRIu64 " (tagged %" PRIu64 ", zero %" PRIu64 ")\n"
	     "pages in: %" PRIu64 " (by fault %" PRIu64 "; folio swap-ins %" PRIu64 ", page swap-ins %" PRIu64 ")\n"
	     "tag restores: %" PRIu64 "\npages discarded while swapped: %" PRIu64 "\n"
	     "read errors: %" PRIu64 "\nbytes written: %" PRIu64 "\nbytes read: %" PRIu64 "\n",
	     st->pages_out, st->pages_out_tagged, st->pages_out_zero,
	     st->pages_in, st->pages_in_fault, st->folio_swapins,
	     st->page_swapins, st->tag_restores, st->pages_discarded,
	     st->read_errors, st->bytes_written, st->bytes_read);
	for (unsigned c = 0; c < TM_TS_NCLASSES; c++) {
		/* A stream record as big as the raw tags is never kept. */
		if (c != TM_TS_RAW && c != TM_TS_INLINE &&
		    class_bytes(st, c) >= (size_t)st->page_size / 32)
			continue;
		emit(buf, len, &at,
		     "%zu bytes (%s): %" PRIu64 " allocations, %" PRIu64 " deallocations, %" PRIu64 " live\n",
		     class_bytes(st, c), tm_tagstore_class_name((enum tm_tagstore_class)c),
		     t->allocs[c], t->frees[c], t->live[c]);
	}
	emit(buf, len, &at,
	     "uncompressed tag storage size: %" PRIu64 "\n"
	     "compressed tag storage size: %" PRIu64 "\n"
	     "tag index size: %" PRIu64 "\n"
	     "tag object memory: %" PRIu64 "\n",
	     t->bytes_uncompressed, t->bytes_used, t->index_bytes, t->object_bytes);
	return at;
}
