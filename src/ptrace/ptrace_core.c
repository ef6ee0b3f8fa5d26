/*
 * ptrace_core.c - tm_ptrace_core_write: an ELF core of a live process,
 * with the MTE tags of its PROT_MTE mappings, through tm_core_write over
 * the process's dumpable mappings (a ptrace region set) and the process's
 * own registers, auxv and tagged-address control.
 *
 * What a kernel core of the same process has, this has too for every
 * PROT_MTE mapping: a PT_LOAD and a PT_AARCH64_MEMTAG_MTE with the same
 * address and size, the same data and the same tags. Untagged mappings
 * are dumped whole where the kernel's coredump_filter would skip some
 * (file-backed text): more than the kernel writes, never less, and gdb
 * can disassemble without the program file.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "region/ptrace_internal.h"
#include "tagmem/core.h"
#include "tagmem/ptrace.h"

static uint32_t core_prot(uint32_t prot)
{
	return (prot & PROT_READ ? TM_CORE_R : 0) | (prot & PROT_WRITE ? TM_CORE_W : 0) |
	       (prot & PROT_EXEC ? TM_CORE_X : 0);
}

static void read_comm(int pid, char *buf, size_t len)
{
	char path[64];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/comm", pid);
	snprintf(buf, len, "%s", "?");
	f = fopen(path, "re");
	if (f && fgets(buf, (int)len, f))
		buf[strcspn(buf, "\n")] = 0;
	if (f)
		fclose(f);
}

static bool has_mte(const tm_ptrace_set *set)
{
	for (size_t i = 0; i < tm_ptrace_set_count(set); i++)
		if (tm_ptrace_set_map(set, i)->mte)
			return true;
	return false;
}

static int write_it(tm_ptrace *p, const char *path, const tm_ptrace_set *set,
		    tm_core_opts *o, tm_error *err)
{
	size_t n = tm_ptrace_set_count(set);
	tm_core_region *cr = calloc(n, sizeof(*cr));
	int rc;

	if (!cr)
		return tm_error_set(err, -ENOMEM, "process %d: no memory", p->pid);
	for (size_t i = 0; i < n; i++) {
		const tm_ptrace_map *m = tm_ptrace_set_map(set, i);

		cr[i].region = tm_ptrace_set_regions(set)[i];
		cr[i].vaddr = m->start;
		cr[i].prot = core_prot(m->prot);
	}
	rc = tm_core_write(path, cr, n, o, err);
	free(cr);
	return rc;
}

int tm_ptrace_core_write(tm_ptrace *p, const char *path, tm_error *err)
{
	uint64_t regs[TM_PTRACE_NREGS], ctrl = 0;
	uint8_t auxv[4096];
	char comm[64];
	tm_ptrace_set *set = NULL;
	tm_core_opts o = { .struct_size = sizeof(o) };
	size_t alen = 0;
	int rc;

	rc = tm_ptrace_set_create(p, TM_PTRACE_DUMPABLE, &set, err);
	if (!rc && !has_mte(set))
		rc = tm_error_set(err, -ENOENT, "process %d has no PROT_MTE mapping "
				  "(none of its mappings in /proc/%d/smaps has VmFlags "
				  "\"mt\"): a core of it would hold no tags", p->pid,
				  p->pid);
	if (!rc)
		rc = tm_ptrace_get_regs(p, 0, regs, err);
	if (!rc)
		rc = tm_ptrace_get_tagged_addr_ctrl(p, 0, &ctrl, err);
	if (!rc)
		rc = tm_ptrace_read_auxv(p, auxv, sizeof(auxv), &alen, err);
	if (!rc) {
		read_comm(p->pid, comm, sizeof(comm));
		o.pid = (uint32_t)p->pid;
		o.flags = TM_CORE_F_EXACT;    /* no signal stopped it; ctrl as it is */
		o.signo = 0;
		o.tagged_addr_ctrl = ctrl;
		o.regs = regs;
		o.pc = regs[32];
		o.sp = regs[31];
		o.comm = comm;
		o.auxv = auxv;
		o.auxv_len = alen;
		rc = write_it(p, path, set, &o, err);
	}
	if (rc)
		tm_error_wrap(err, rc, "core of process %d", p->pid);
	tm_ptrace_set_destroy(set);
	return rc;
}
