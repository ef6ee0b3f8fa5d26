/*
 * fuzz_files.c - libFuzzer harness for the two parsers of files from
 * outside: snapshot files (src/snapshot/snapfmt.c, load.c, restore's chunk
 * checks) and ELF core dumps (src/snapshot/core_read.c). Byte 0 picks the
 * parser; the rest becomes the file's contents, in a memfd opened through
 * /proc/self/fd so the real open path (fstat, pread, size checks) runs.
 * Whatever the input: no crash, no out-of-bounds access (ASan). A file that
 * opens is then walked as a user would: snapshot info, region info, verify
 * of every chunk, tag ratio; core info, every segment, memory and tags of
 * each segment's first and last granules.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tagmem/core.h"
#include "tagmem/snapshot.h"

static int as_file(const uint8_t *in, size_t len, char *path, size_t cap)
{
	int fd = memfd_create("fuzz", 0);

	if (fd < 0)
		abort();
	if (len && write(fd, in, len) != (ssize_t)len)
		abort();
	snprintf(path, cap, "/proc/self/fd/%d", fd);
	return fd;
}

static void walk_snapshot(const char *path)
{
	tm_snapshot *s;
	tm_snap_opts o;
	tm_snap_info info;
	tm_snap_stats st;
	double ratio;

	tm_snap_opts_init(&o);
	o.threads = 1;
	o.io = TM_SNAP_IO_BUFFERED;
	if (tm_snapshot_open(path, &o, &s, NULL))
		return;
	tm_snapshot_info(s, &info);
	for (size_t i = 0; i < info.nregions; i++) {
		tm_snap_region_info ri;

		(void)tm_snapshot_region_info(s, i, &ri, NULL);
	}
	(void)tm_snapshot_verify(s, &o, &st, NULL);
	(void)tm_snapshot_tag_ratio(s, &ratio, NULL, NULL, NULL);
	tm_snapshot_close(s);
}

static void probe(tm_core *c, uint64_t addr)
{
	uint8_t mem[16], tags[2];
	size_t ng;

	(void)tm_core_read_mem(c, addr, mem, sizeof(mem), NULL);
	(void)tm_core_read_tags(c, addr, 16, tags, &ng, NULL);
}

static void walk_core(const char *path)
{
	tm_core *c;
	tm_core_info info;

	if (tm_core_open(path, &c, NULL))
		return;
	tm_core_get_info(c, &info);
	for (size_t i = 0; i < info.nsegments && i < 64; i++) {
		tm_core_segment seg;

		if (tm_core_segment_get(c, i, &seg, NULL))
			continue;
		probe(c, seg.vaddr);
		if (seg.memsz >= 16)
			probe(c, seg.vaddr + seg.memsz - 16);
	}
	tm_core_close(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t len)
{
	char path[64];
	int fd;

	if (len < 1)
		return 0;
	fd = as_file(in + 1, len - 1, path, sizeof(path));
	if (in[0] & 1)
		walk_core(path);
	else
		walk_snapshot(path);
	close(fd);
	return 0;
}
