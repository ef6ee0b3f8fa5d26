/*
 * backend_ptrace.c - the ptrace backend (tagmem/ptrace.h): a region over
 * one mapping of another process, and the set of regions over a process's
 * PROT_MTE (or dumpable) mappings, read from /proc/PID/smaps.
 *
 * Written against the public backend interface (tagmem/backend.h) as any
 * caller's backend is: the region core validates spans and adds region,
 * page and offset to every error; this file adds the process and the
 * address. Data goes through /proc/PID/mem in the calling thread; tags in
 * batches of TM_PTRACE_TAG_BATCH granules through the handle's tracer
 * thread (ptrace_tracer.c), unpacked on the caller's stack and packed
 * here. No method keeps shared scratch state.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "region/ptrace_internal.h"
#include "tagmem/backend.h"
#include "tagmem/tags.h"

/* ---- /proc/PID/smaps ---------------------------------------------------- */

/* "start-end perms offset major:minor inode path" */
static bool parse_head(const char *line, tm_ptrace_map *m)
{
	char perms[8];
	unsigned long long s, e, off, ino;
	unsigned maj, min;
	int n = 0;

	if (sscanf(line, "%llx-%llx %7s %llx %x:%x %llu %n", &s, &e, perms, &off,
		   &maj, &min, &ino, &n) < 7 || strlen(perms) < 4 || e <= s)
		return false;
	memset(m, 0, sizeof(*m));
	m->start = s;
	m->end = e;
	m->prot = (perms[0] == 'r' ? PROT_READ : 0) |
		  (perms[1] == 'w' ? PROT_WRITE : 0) |
		  (perms[2] == 'x' ? PROT_EXEC : 0);
	m->shared = perms[3] == 's';
	m->offset = off;
	m->inode = ino;
	m->dev_major = maj;
	m->dev_minor = min;
	snprintf(m->path, sizeof(m->path), "%s", line + n);
	m->path[strcspn(m->path, "\n")] = 0;
	return true;
}

/* "VmFlags: rd wr mr mw me ac mt": two letters per flag. */
static void parse_vmflags(const char *line, tm_ptrace_map *m)
{
	bool skip = false;

	for (const char *p = line + strlen("VmFlags:"); *p;) {
		while (*p == ' ' || *p == '\n')
			p++;
		if (!p[0] || !p[1])
			break;
		if (!strncmp(p, "mt", 2))
			m->mte = true;
		if (!strncmp(p, "io", 2) || !strncmp(p, "pf", 2) || !strncmp(p, "dd", 2))
			skip = true;
		p += 2;
	}
	m->dumpable = !skip && (m->mte || (m->prot & PROT_READ));
}

static int push_map(tm_ptrace_map **maps, size_t *n, size_t *cap,
		    const tm_ptrace_map *m)
{
	if (*n == *cap) {
		size_t c = *cap ? 2 * *cap : 32;
		tm_ptrace_map *t = realloc(*maps, c * sizeof(*t));

		if (!t)
			return -ENOMEM;
		*maps = t;
		*cap = c;
	}
	(*maps)[(*n)++] = *m;
	return 0;
}

int tm_ptrace_read_maps(int pid, tm_ptrace_map **maps, size_t *n,
			tm_error *err)
{
	char path[64], line[1024];
	tm_ptrace_map m;
	bool have = false;
	size_t cap = 0;
	FILE *f;
	int rc = 0;

	*maps = NULL;
	*n = 0;
	snprintf(path, sizeof(path), "/proc/%d/smaps", pid);
	f = fopen(path, "re");
	if (!f)
		return tm_error_set(err, errno == ENOENT ? -ESRCH : -errno,
				    "process %d: %s: %s", pid, path, strerror(errno));
	while (!rc && fgets(line, sizeof(line), f)) {
		tm_ptrace_map next;

		if (parse_head(line, &next)) {
			if (have)
				rc = push_map(maps, n, &cap, &m);
			m = next;
			have = true;
		} else if (have && !strncmp(line, "VmFlags:", 8)) {
			parse_vmflags(line, &m);
		}
	}
	if (!rc && have)
		rc = push_map(maps, n, &cap, &m);
	fclose(f);
	if (rc) {
		free(*maps);
		*maps = NULL;
		*n = 0;
		return tm_error_set(err, rc, "process %d: no memory for its mappings",
				    pid);
	}
	return 0;
}

const char *tm_ptrace_perms(const tm_ptrace_map *m, char *buf)
{
	buf[0] = m->prot & PROT_READ ? 'r' : '-';
	buf[1] = m->prot & PROT_WRITE ? 'w' : '-';
	buf[2] = m->prot & PROT_EXEC ? 'x' : '-';
	buf[3] = m->shared ? 's' : 'p';
	buf[4] = 0;
	return buf;
}

/* ---- the region methods --------------------------------------------- */

typedef struct pt_region {
	tm_ptrace *p;
	uint64_t start, size;
	size_t ps, granules;   /* host page size; granules per page (0: no tags) */
	bool lenient;          /* unreadable pages read as zeros (core dumps) */
} pt_region;

static size_t batch_pages(const pt_region *g)
{
	return TM_PTRACE_TAG_BATCH / g->granules;
}

static int pt_read_tags(void *ctx, size_t pg, size_t n, uint8_t *packed,
			tm_error *err)
{
	pt_region *g = ctx;
	uint8_t buf[TM_PTRACE_TAG_BATCH];

	for (size_t done = 0; done < n;) {
		size_t m = n - done < batch_pages(g) ? n - done : batch_pages(g);
		uint64_t addr = g->start + (pg + done) * g->ps;
		int rc = tm_ptrace_peek(g->p, addr, buf, m * g->granules, err);

		if (rc)
			return rc;
		rc = tm_tags_pack(packed + done * g->granules / 2, buf,
				  m * g->granules, err);
		if (rc)
			return tm_error_wrap(err, -EIO, "process %d: PTRACE_PEEKMTETAGS "
					     "at 0x%" PRIx64 " returned a tag byte above "
					     "0xF", tm_ptrace_pid(g->p), addr);
		done += m;
	}
	return 0;
}

static int pt_write_tags(void *ctx, size_t pg, size_t n, const uint8_t *packed,
			 tm_error *err)
{
	pt_region *g = ctx;
	uint8_t buf[TM_PTRACE_TAG_BATCH];

	for (size_t done = 0; done < n;) {
		size_t m = n - done < batch_pages(g) ? n - done : batch_pages(g);
		int rc;

		if (packed)
			tm_tags_unpack(buf, packed + done * g->granules / 2,
				       m * g->granules);
		else
			memset(buf, 0, m * g->granules);
		rc = tm_ptrace_poke(g->p, g->start + (pg + done) * g->ps, buf,
				    m * g->granules, err);
		if (rc)
			return rc;
		done += m;
	}
	return 0;
}

static int pt_read_data(void *ctx, uint64_t off, void *buf, size_t len,
			tm_error *err)
{
	pt_region *g = ctx;

	return tm_ptrace_mem_read(g->p, g->start + off, buf, len, g->lenient, err);
}

static int pt_write_data(void *ctx, uint64_t off, const void *buf, size_t len,
			 tm_error *err)
{
	pt_region *g = ctx;

	return tm_ptrace_mem_write(g->p, g->start + off, buf, len, err);
}

static int pt_read_pages(void *ctx, size_t pg, size_t n, void *data,
			 uint8_t *packed, tm_error *err)
{
	pt_region *g = ctx;
	int rc = 0;

	if (data)
		rc = pt_read_data(ctx, pg * g->ps, data, n * g->ps, err);
	if (!rc && packed)
		rc = pt_read_tags(ctx, pg, n, packed, err);
	return rc;
}

/* Zeros for write_pages(data NULL), 4 KiB per write. */
static int write_zeros(pt_region *g, uint64_t addr, size_t len, tm_error *err)
{
	static const uint8_t zero[4096];

	while (len) {
		size_t k = len < sizeof(zero) ? len : sizeof(zero);
		int rc = tm_ptrace_mem_write(g->p, addr, zero, k, err);

		if (rc)
			return rc;
		addr += k;
		len -= k;
	}
	return 0;
}

/* Tags first, then the data: the process is stopped, but a reader of the
 * region then never sees new data under the page's old tags. */
static int pt_write_pages(void *ctx, size_t pg, size_t n, const void *data,
			  const uint8_t *packed, tm_error *err)
{
	pt_region *g = ctx;
	int rc = g->granules ? pt_write_tags(ctx, pg, n, packed, err) : 0;

	if (rc)
		return rc;
	if (data)
		return pt_write_data(ctx, pg * g->ps, data, n * g->ps, err);
	return write_zeros(g, g->start + pg * g->ps, n * g->ps, err);
}

static void pt_detach(void *ctx)
{
	free(ctx);
}

static const tm_backend_methods ptrace_methods = {
	.version = 1,
	.name = "ptrace",
	.flags = 0,            /* the process writes its tags with STG */
	.detach = pt_detach,
	.read_data = pt_read_data,
	.write_data = pt_write_data,
	.read_tags = pt_read_tags,
	.write_tags = pt_write_tags,
	.read_pages = pt_read_pages,
	.write_pages = pt_write_pages,
	/* no direct pointer and no mapping (the memory is another process's),
	 * no dirty source, no lazy placement */
};

static int create_region(tm_ptrace *p, uint64_t start, uint64_t end, bool mte,
			 bool lenient, const char *name, tm_region **out,
			 tm_error *err)
{
	char defname[TM_REGION_NAME_MAX];
	tm_region_config cfg = { .struct_size = sizeof(cfg) };
	pt_region *g;
	int rc;

	if (mte)
		rc = tm_geom_mte(&cfg.geom, (uint32_t)p->page_size, err);
	else
		rc = tm_geom_init(&cfg.geom, TM_META_NONE, (uint32_t)p->page_size,
				  0, 0, err);
	if (rc)
		return rc;
	g = calloc(1, sizeof(*g));
	if (!g)
		return tm_error_set(err, -ENOMEM, "process %d: no memory", p->pid);
	g->p = p;
	g->start = start;
	g->size = end - start;
	g->ps = p->page_size;
	g->granules = mte ? p->page_size / TM_MTE_GRANULE : 0;
	g->lenient = lenient;
	snprintf(defname, sizeof(defname), "0x%" PRIx64 "-0x%" PRIx64, start, end);
	cfg.name = name ? name : defname;
	cfg.size = (size_t)(end - start);
	rc = tm_region_create_with(&cfg, &ptrace_methods, g, out, err);
	if (rc)
		free(g);
	return rc;
}

/* ---- one region over an address range ----------------------------------- */

static const tm_ptrace_map *find_map(const tm_ptrace_map *m, size_t n,
				     uint64_t addr)
{
	for (size_t i = 0; i < n; i++)
		if (addr >= m[i].start && addr < m[i].end)
			return &m[i];
	return NULL;
}

int tm_ptrace_region_create(tm_ptrace *p, uint64_t start, uint64_t end,
			    const char *name, tm_region **out, tm_error *err)
{
	const tm_ptrace_map *m;
	tm_ptrace_map *maps;
	size_t n;
	int rc;

	*out = NULL;
	if (start >= end || start % p->page_size || end % p->page_size)
		return tm_error_set(err, -EINVAL, "process %d: range 0x%" PRIx64
				    "-0x%" PRIx64 " is empty or not aligned to the "
				    "page size %zu", p->pid, start, end, p->page_size);
	rc = tm_ptrace_read_maps(p->pid, &maps, &n, err);
	if (rc)
		return rc;
	m = find_map(maps, n, start);
	if (!m)
		rc = tm_error_set(err, -EFAULT, "process %d has no mapping at 0x%"
				  PRIx64, p->pid, start);
	else if (end > m->end)
		rc = tm_error_set(err, -EINVAL, "process %d: range 0x%" PRIx64 "-0x%"
				  PRIx64 " leaves its mapping 0x%" PRIx64 "-0x%" PRIx64
				  " at 0x%" PRIx64 " (a region lies inside one "
				  "mapping)", p->pid, start, end, m->start, m->end,
				  m->end);
	else
		rc = create_region(p, start, end, m->mte, false, name, out, err);
	free(maps);
	return rc;
}

/* ---- sets of regions ------------------------------------------------- */

struct tm_ptrace_set {
	size_t n;
	tm_region **regions;
	tm_ptrace_map *maps;
};

void tm_ptrace_set_destroy(tm_ptrace_set *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		tm_region_destroy(s->regions[i]);
	free(s->regions);
	free(s->maps);
	free(s);
}

static bool selected(const tm_ptrace_map *m, enum tm_ptrace_select sel)
{
	return sel == TM_PTRACE_DUMPABLE ? m->dumpable : m->mte;
}

static int none_selected(tm_ptrace *p, enum tm_ptrace_select sel, size_t total,
			 tm_error *err)
{
	if (sel == TM_PTRACE_MTE)
		return tm_error_set(err, -ENOENT, "process %d has no PROT_MTE mapping "
				    "(none of its %zu mappings in /proc/%d/smaps has "
				    "VmFlags \"mt\")", p->pid, total, p->pid);
	return tm_error_set(err, -ENOENT, "process %d has no dumpable mapping "
			    "(%zu mappings)", p->pid, total);
}

static int fill_set(tm_ptrace *p, enum tm_ptrace_select sel, tm_ptrace_set *s,
		    const tm_ptrace_map *maps, size_t total, tm_error *err)
{
	for (size_t i = 0; i < total; i++) {
		const tm_ptrace_map *m = &maps[i];
		int rc;

		if (!selected(m, sel))
			continue;
		/* in a core, unreadable pages of untagged mappings are holes */
		rc = create_region(p, m->start, m->end, m->mte, !m->mte, NULL,
				   &s->regions[s->n], err);
		if (rc)
			return rc;
		s->maps[s->n++] = *m;
	}
	return 0;
}

int tm_ptrace_set_create(tm_ptrace *p, enum tm_ptrace_select sel,
			 tm_ptrace_set **out, tm_error *err)
{
	tm_ptrace_map *maps;
	tm_ptrace_set *s;
	size_t total, want = 0;
	int rc;

	*out = NULL;
	if (sel != TM_PTRACE_MTE && sel != TM_PTRACE_DUMPABLE)
		return tm_error_set(err, -EINVAL, "process %d: unknown mapping "
				    "selection %d", p->pid, (int)sel);
	rc = tm_ptrace_read_maps(p->pid, &maps, &total, err);
	if (rc)
		return rc;
	for (size_t i = 0; i < total; i++)
		want += selected(&maps[i], sel);
	if (!want) {
		free(maps);
		return none_selected(p, sel, total, err);
	}
	s = calloc(1, sizeof(*s));
	if (s) {
		s->regions = calloc(want, sizeof(*s->regions));
		s->maps = calloc(want, sizeof(*s->maps));
	}
	if (!s || !s->regions || !s->maps)
		rc = tm_error_set(err, -ENOMEM, "process %d: no memory for %zu "
				  "regions", p->pid, want);
	else
		rc = fill_set(p, sel, s, maps, total, err);
	free(maps);
	if (rc) {
		tm_ptrace_set_destroy(s);
		return rc;
	}
	*out = s;
	return 0;
}

size_t tm_ptrace_set_count(const tm_ptrace_set *s)
{
	return s->n;
}

tm_region *const *tm_ptrace_set_regions(const tm_ptrace_set *s)
{
	return s->regions;
}

const tm_ptrace_map *tm_ptrace_set_map(const tm_ptrace_set *s, size_t i)
{
	return i < s->n ? &s->maps[i] : NULL;
}
