/*
 * ptrace_snap.c - snapshots of a live process (tagmem/ptrace.h): save its
 * PROT_MTE mappings with their tags plus every thread's tagged-address
 * control into a snapshot with a process section, and restore such a file
 * into a process that has the same mappings.
 *
 * A restore proves everything before it writes anything: the process
 * section decodes and agrees with the file's region table, the target's
 * PROT_MTE mappings are exactly the saved ones (address, length,
 * permissions, sharing; none missing, none extra), it has as many threads,
 * and every chunk of the file passes its checksum (tm_snapshot_verify).
 * Only then are the pages placed and the control words set.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>

#include "common/abi.h"
#include "ptrace/procsec.h"
#include "region/ptrace_internal.h"
#include "tagmem/ptrace.h"
#include "tagmem/snapshot.h"

#ifndef AT_HWCAP2
#define AT_HWCAP2 26
#endif

/* ---- save ------------------------------------------------------------ */

static int collect_state(tm_ptrace *p, const tm_ptrace_set *set,
			 proc_state *ps, tm_error *err)
{
	memset(ps, 0, sizeof(*ps));
	ps->pid = (uint32_t)tm_ptrace_pid(p);
	ps->page_size = (uint32_t)p->page_size;
	ps->hwcap2 = tm_ptrace_auxv_value(p, AT_HWCAP2);
	ps->nregions = (uint32_t)tm_ptrace_set_count(set);
	ps->nthreads = (uint32_t)tm_ptrace_nthreads(p);
	ps->r = calloc(ps->nregions, sizeof(*ps->r));
	ps->t = calloc(ps->nthreads, sizeof(*ps->t));
	if (!ps->r || !ps->t)
		return tm_error_set(err, -ENOMEM, "process %d: no memory", p->pid);
	for (uint32_t i = 0; i < ps->nregions; i++) {
		const tm_ptrace_map *m = tm_ptrace_set_map(set, i);

		ps->r[i] = (proc_region){ m->start, m->end, m->prot, m->shared };
	}
	for (uint32_t i = 0; i < ps->nthreads; i++) {
		int rc;

		ps->t[i].tid = (uint32_t)tm_ptrace_tid(p, i);
		rc = tm_ptrace_get_tagged_addr_ctrl(p, i, &ps->t[i].ctrl, err);
		if (rc)
			return rc;
	}
	return 0;
}

/* The caller's options (or the defaults) with the process section added
 * to its sections; sect has room for all of them. */
static int with_section(const tm_snap_opts *o, tm_snap_opts *copy,
			tm_snap_section *sect, const void *data, size_t len,
			tm_error *err)
{
	int rc = 0;

	if (o)
		rc = TM_ABI_COPY_IN(tm_snap_opts, copy, o, err);
	else
		tm_snap_opts_init(copy);
	if (rc)
		return rc;
	if (copy->nsections >= TM_SNAP_MAX_SECTIONS || (copy->nsections && !copy->sections))
		return tm_error_set(err, -EINVAL, "snapshot: %zu sections given, no "
				    "room for the process section", copy->nsections);
	for (size_t i = 0; i < copy->nsections; i++) {
		if (copy->sections[i].type == TM_SNAP_SECTION_PROCESS)
			return tm_error_set(err, -EINVAL, "snapshot: section %zu has "
					    "type %u, which the process's own state "
					    "takes", i, TM_SNAP_SECTION_PROCESS);
		sect[i] = copy->sections[i];
	}
	sect[copy->nsections] = (tm_snap_section){ TM_SNAP_SECTION_PROCESS, data, len };
	copy->sections = sect;
	copy->nsections++;
	return 0;
}

int tm_ptrace_snapshot_save(tm_ptrace *p, const char *path,
			    const tm_snap_opts *o, tm_snap_stats *st,
			    tm_error *err)
{
	tm_snap_section sect[TM_SNAP_MAX_SECTIONS];
	tm_ptrace_set *set = NULL;
	tm_snap_opts copy;
	proc_state ps = { 0 };
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc;

	rc = tm_ptrace_set_create(p, TM_PTRACE_MTE, &set, err);
	if (!rc)
		rc = collect_state(p, set, &ps, err);
	if (!rc) {
		len = tm_procsec_bytes(ps.nregions, ps.nthreads);
		buf = malloc(len);
		if (!buf)
			rc = tm_error_set(err, -ENOMEM, "process %d: no memory", p->pid);
	}
	if (!rc) {
		tm_procsec_encode(&ps, buf);
		rc = with_section(o, &copy, sect, buf, len, err);
	}
	if (!rc)
		rc = tm_snapshot_save(path, tm_ptrace_set_regions(set),
				      tm_ptrace_set_count(set), &copy, st, err);
	if (rc)
		tm_error_wrap(err, rc, "snapshot of process %d", p->pid);
	free(buf);
	tm_procsec_free(&ps);
	tm_ptrace_set_destroy(set);
	return rc;
}

/* ---- reading the section --------------------------------------------- */

static int load_state(const tm_snapshot *s, proc_state *ps, tm_error *err)
{
	tm_snap_info info;
	uint64_t *sizes;
	const void *data;
	size_t len;
	int rc;

	memset(ps, 0, sizeof(*ps));
	rc = tm_snapshot_section(s, TM_SNAP_SECTION_PROCESS, &data, &len, err);
	if (rc == -ENOENT)
		return tm_error_set(err, -ENOENT, "the snapshot has no process "
				    "section: it holds regions, not a process (save "
				    "one with tagmem snapshot save --pid)");
	if (rc)
		return rc;
	tm_snapshot_info(s, &info);
	sizes = calloc(info.nregions ? info.nregions : 1, sizeof(*sizes));
	if (!sizes)
		return tm_error_set(err, -ENOMEM, "snapshot: no memory");
	for (size_t i = 0; i < info.nregions && !rc; i++) {
		tm_snap_region_info ri;

		rc = tm_snapshot_region_info(s, i, &ri, err);
		sizes[i] = ri.size;
	}
	if (!rc)
		rc = tm_procsec_decode(data, len, sizes, (uint32_t)info.nregions,
				       info.geom.page_size, ps, err);
	free(sizes);
	return rc;
}

int tm_snapshot_process_info(const tm_snapshot *s, tm_snap_process_info *info,
			     tm_error *err)
{
	proc_state ps;
	int rc = load_state(s, &ps, err);

	if (rc)
		return rc;
	if (info) {
		memset(info, 0, sizeof(*info));
		info->pid = ps.pid;
		info->nthreads = ps.nthreads;
		info->hwcap2 = ps.hwcap2;
	}
	tm_procsec_free(&ps);
	return 0;
}

int tm_snapshot_process_region(const tm_snapshot *s, size_t i, uint64_t *start,
			       uint32_t *prot, bool *shared, tm_error *err)
{
	proc_state ps;
	int rc = load_state(s, &ps, err);

	if (rc)
		return rc;
	if (i >= ps.nregions)
		rc = tm_error_set(err, -EINVAL, "snapshot: no region %zu (%u regions)",
				  i, ps.nregions);
	if (!rc && start)
		*start = ps.r[i].start;
	if (!rc && prot)
		*prot = ps.r[i].prot;
	if (!rc && shared)
		*shared = ps.r[i].shared;
	tm_procsec_free(&ps);
	return rc;
}

int tm_snapshot_process_thread(const tm_snapshot *s, size_t i, uint32_t *tid,
			       uint64_t *ctrl, tm_error *err)
{
	proc_state ps;
	int rc = load_state(s, &ps, err);

	if (rc)
		return rc;
	if (i >= ps.nthreads)
		rc = tm_error_set(err, -EINVAL, "snapshot: no thread %zu (%u threads)",
				  i, ps.nthreads);
	if (!rc && tid)
		*tid = ps.t[i].tid;
	if (!rc && ctrl)
		*ctrl = ps.t[i].ctrl;
	tm_procsec_free(&ps);
	return rc;
}

/* ---- check ---------------------------------------------------------- */

static const tm_ptrace_map *map_at(const tm_ptrace_map *m, size_t n,
				   uint64_t addr)
{
	for (size_t i = 0; i < n; i++)
		if (addr >= m[i].start && addr < m[i].end)
			return &m[i];
	return NULL;
}

static void describe_map(const tm_ptrace_map *m, char *buf, size_t len)
{
	char perms[5];

	snprintf(buf, len, "0x%" PRIx64 "-0x%" PRIx64 " %s%s%s%s", m->start, m->end,
		 tm_ptrace_perms(m, perms), m->mte ? " PROT_MTE" : " without PROT_MTE",
		 m->path[0] ? " " : "", m->path);
}

/* Saved region i against what the target has at its address. */
static int check_region(tm_ptrace *p, const tm_snapshot *s, uint32_t i,
			const proc_region *r, const tm_ptrace_map *maps, size_t n,
			tm_error *err)
{
	const tm_ptrace_map *m = map_at(maps, n, r->start);
	tm_ptrace_map want = { .start = r->start, .end = r->end, .prot = r->prot,
			       .shared = r->shared, .mte = true };
	tm_snap_region_info ri;
	char a[320], b[320];

	if (tm_snapshot_region_info(s, i, &ri, err))
		return -EINVAL;
	describe_map(&want, a, sizeof(a));
	if (!m)
		return tm_error_set(err, -ENXIO, "snapshot region %u '%s' (%s): the "
				    "target process %d has no mapping at 0x%" PRIx64,
				    i, ri.name, a, p->pid, r->start);
	describe_map(m, b, sizeof(b));
	if (m->start != r->start || m->end != r->end || !m->mte ||
	    m->prot != r->prot || m->shared != r->shared)
		return tm_error_set(err, -ENXIO, "snapshot region %u '%s' (%s): the "
				    "target process %d has %s at 0x%" PRIx64, i, ri.name,
				    a, p->pid, b, r->start);
	return 0;
}

/* A PROT_MTE mapping of the target that no saved region covers. */
static int check_extra(tm_ptrace *p, const proc_state *ps,
		       const tm_ptrace_map *maps, size_t n, tm_error *err)
{
	for (size_t k = 0; k < n; k++) {
		bool found = false;
		char b[320];

		if (!maps[k].mte)
			continue;
		for (uint32_t i = 0; i < ps->nregions && !found; i++)
			found = ps->r[i].start == maps[k].start;
		if (found)
			continue;
		describe_map(&maps[k], b, sizeof(b));
		return tm_error_set(err, -ENXIO, "the target process %d has a PROT_MTE "
				    "mapping the snapshot does not: %s (at 0x%" PRIx64
				    ")", p->pid, b, maps[k].start);
	}
	return 0;
}

static int check_against(tm_ptrace *p, const tm_snapshot *s,
			 const proc_state *ps, tm_error *err)
{
	tm_ptrace_map *maps;
	size_t n;
	int rc;

	if (ps->page_size != p->page_size)
		return tm_error_set(err, -EINVAL, "the snapshot has %u-byte pages, "
				    "process %d %zu-byte ones", ps->page_size, p->pid,
				    p->page_size);
	if (ps->nthreads != tm_ptrace_nthreads(p))
		return tm_error_set(err, -ENXIO, "the snapshot holds the control state "
				    "of %u threads, the target process %d has %zu "
				    "threads", ps->nthreads, p->pid,
				    tm_ptrace_nthreads(p));
	rc = tm_ptrace_read_maps(p->pid, &maps, &n, err);
	if (rc)
		return rc;
	for (uint32_t i = 0; i < ps->nregions && !rc; i++)
		rc = check_region(p, s, i, &ps->r[i], maps, n, err);
	if (!rc)
		rc = check_extra(p, ps, maps, n, err);
	free(maps);
	return rc;
}

int tm_ptrace_snapshot_check(tm_ptrace *p, const tm_snapshot *s, tm_error *err)
{
	proc_state ps;
	int rc = load_state(s, &ps, err);

	if (rc)
		return rc;
	rc = check_against(p, s, &ps, err);
	tm_procsec_free(&ps);
	return rc;
}

/* ---- restore -------------------------------------------------------- */

static int place(tm_ptrace *p, tm_snapshot *s, const proc_state *ps,
		 const tm_snap_opts *o, tm_snap_stats *st, tm_error *err)
{
	tm_region **r = calloc(ps->nregions, sizeof(*r));
	int rc = r ? 0 : tm_error_set(err, -ENOMEM, "restore: no memory");

	for (uint32_t i = 0; i < ps->nregions && !rc; i++) {
		tm_snap_region_info ri;

		rc = tm_snapshot_region_info(s, i, &ri, err);
		if (!rc)
			rc = tm_ptrace_region_create(p, ps->r[i].start, ps->r[i].end,
						     ri.name, &r[i], err);
	}
	if (!rc)
		rc = tm_snapshot_restore(s, r, ps->nregions, o, st, err);
	for (uint32_t i = 0; r && i < ps->nregions; i++)
		tm_region_destroy(r[i]);
	free(r);
	return rc;
}

/* Before anything is written: every thread's control word can be set
 * (each is read and written back unchanged). */
static int probe_controls(tm_ptrace *p, const proc_state *ps, tm_error *err)
{
	for (uint32_t i = 0; i < ps->nthreads; i++) {
		uint64_t now;
		int rc = tm_ptrace_get_tagged_addr_ctrl(p, i, &now, err);

		if (!rc)
			rc = tm_ptrace_set_tagged_addr_ctrl(p, i, now, err);
		if (rc)
			return tm_error_wrap(err, rc, "thread %u's control state cannot "
					     "be set", i);
	}
	return 0;
}

static int set_controls(tm_ptrace *p, const proc_state *ps, tm_error *err)
{
	for (uint32_t i = 0; i < ps->nthreads; i++) {
		int rc = tm_ptrace_set_tagged_addr_ctrl(p, i, ps->t[i].ctrl, err);

		if (rc)
			return tm_error_wrap(err, rc, "restoring thread %u's control "
					     "state (saved from thread %u)", i,
					     ps->t[i].tid);
	}
	return 0;
}

int tm_ptrace_snapshot_restore(tm_ptrace *p, tm_snapshot *s,
			       const tm_snap_opts *o, tm_snap_stats *st,
			       tm_error *err)
{
	proc_state ps;
	int rc = load_state(s, &ps, err);

	if (rc)
		return rc;
	rc = check_against(p, s, &ps, err);
	if (!rc)
		rc = probe_controls(p, &ps, err);
	if (!rc)
		rc = tm_snapshot_verify(s, o, NULL, err);
	if (!rc)
		rc = place(p, s, &ps, o, st, err);
	if (!rc)
		rc = set_controls(p, &ps, err);
	if (rc)
		tm_error_wrap(err, rc, "restore into process %d", p->pid);
	tm_procsec_free(&ps);
	return rc;
}
