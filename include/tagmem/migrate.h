/*
 * tagmem/migrate.h - live migration of tagged regions: pre-copy over one
 * control connection plus N data connections, with page metadata (MTE tags)
 * travelling inside the same packet as the page it belongs to.
 *
 * How a VMM embeds it
 *   Source: create a tm_migration with role TM_MIGRATE_SOURCE, add its
 *   regions (any backend) in a fixed order, add channels+1 connected file
 *   descriptors (the first is the control channel), and call
 *   tm_migration_run(). tagmem sends a first pass over every page, then
 *   iterates over dirty pages until the rest can be sent within the downtime
 *   budget, calls hooks.pause, sends the rest, hands over and returns the
 *   statistics. On any failure the source workload keeps running (resume is
 *   called if it had been paused) and the source's memory and tags are never
 *   written by tagmem.
 *
 *   Destination: role TM_MIGRATE_DEST, add regions with the same names,
 *   sizes and geometries, then either a listening socket
 *   (tm_migration_set_listener: channels are accepted as the source
 *   announces them) or already-connected descriptors, and call
 *   tm_migration_run(). It checks the source's negotiation against its own
 *   regions before any page moves, validates every packet as a whole before
 *   placing any page in it, never writes outside its regions, and on failure
 *   discards what it had received (the regions are left all-zero) and says
 *   so in the error.
 *
 * Wire format: docs/FORMAT.md §migrate.
 *
 * Thread safety: a tm_migration is driven by one thread (the one calling
 * tm_migration_run); tagmem starts and joins its own channel threads inside
 * that call. tm_migration_cancel() may be called from any thread and from a
 * signal handler (it only stores a flag and writes a byte to a pipe). The
 * regions must stay alive for the whole run; the workload may keep writing
 * them on the source (that is what dirty tracking is for) but nothing else
 * may write the destination's regions during a run. Different tm_migration
 * objects are fully independent: several may run in one process at once, on
 * different regions. There is no global state.
 */
#ifndef TAGMEM_MIGRATE_H
#define TAGMEM_MIGRATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tagmem/api.h"
#include "tagmem/error.h"
#include "tagmem/region.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TM_MIGRATE_MAX_CHANNELS   16u
#define TM_MIGRATE_MAX_REGIONS    64u
#define TM_MIGRATE_DEFAULT_PPP    128u  /* pages per packet (QEMU multifd: 128) */
#define TM_MIGRATE_MAX_PPP        1024u

typedef struct tm_migration tm_migration;

enum tm_migrate_role {
	TM_MIGRATE_SOURCE = 0,
	TM_MIGRATE_DEST   = 1,
};

enum tm_compress {
	TM_COMPRESS_NONE = 0,
	TM_COMPRESS_ZSTD = 1,   /* page data of normal pages, per packet */
};

/* What to do when --max-iterations is reached without converging. */
enum tm_on_max_iter {
	TM_MAXITER_FAIL  = 0,   /* stop, keep the source running, return -ETIMEDOUT */
	TM_MAXITER_FORCE = 1,   /* pause anyway and send the rest (longer downtime) */
};

typedef struct tm_migrate_config {
	uint32_t struct_size;      /* sizeof(this struct), or 0 for the 0.1 layout
				     (tagmem/api.h, "Structs that grow") */
	/* Source only; the destination learns them in the negotiation. */
	unsigned channels;          /* data channels, 1..TM_MIGRATE_MAX_CHANNELS (2) */
	enum tm_compress compress;  /* (none) */
	int compress_level;         /* zstd level 1..19 (1) */
	bool checksum;              /* XXH3-64 on every data packet (true) */
	bool verify;                /* compare a 128-bit digest of all regions'
				       data+tags on both sides at the end (true) */
	bool tags_unpacked;         /* send tags one per byte (the KVM/ptrace
				       form) instead of the stream codec (false) */
	unsigned pages_per_packet;  /* multiple of 64, 64..1024 (128) */
	uint32_t downtime_ms;       /* converge when the rest fits in this (300) */
	uint64_t max_bandwidth;     /* bytes/s over all channels; 0 = unlimited */
	bool auto_converge;         /* slow the workload (hooks.throttle) when
				       it dirties faster than the link sends */
	unsigned max_iterations;    /* dirty iterations before giving up (30) */
	enum tm_on_max_iter on_max_iterations; /* (fail) */
	/* Both sides. */
	uint32_t timeout_ms;        /* connect/accept/handshake timeout (30000) */
	uint64_t migration_id[2];   /* source: 0,0 = random; dest: 0,0 = accept any */
	/* Zero-copy data path (true), each side deciding for itself (it is
	 * not on the wire). Source: normal pages go from region memory
	 * straight into sendmsg iovecs, without a copy into a packet buffer,
	 * whenever the backend has plain pointers (soft; not mte, whose
	 * memory is never handed to the kernel through an untagged pointer),
	 * the packet is not compressed, and the pages cannot change between
	 * the checksum and the send: the workload is paused, or there is no
	 * pause hook (nothing writes), or checksums are off. Destination: the
	 * data of a raw packet is received straight into the destination
	 * pages once its header, offsets and tags are validated; the checksum
	 * is then verified over the landed pages and, if it or the
	 * connection fails, those pages are zeroed (data and tags) and the
	 * error names them. false: every page is copied through the packet
	 * buffer (the path before zero-copy; benchmarks use it as baseline). */
	bool zero_copy;
} tm_migrate_config;

/* What tm_migrate_config_default calls with the caller's sizeof(*c): fill
 * the first size bytes of c with the defaults and set c->struct_size to
 * size. -EINVAL (nothing written) for a size below the 0.1 layout. */
TM_API int tm_migrate_config_default_sized(tm_migrate_config *c, size_t size);

/* Fill c with the defaults shown in parentheses above (struct_size set). */
static inline void tm_migrate_config_default(tm_migrate_config *c)
{
	(void)tm_migrate_config_default_sized(c, sizeof(*c));
}

enum tm_migrate_phase {
	TM_PHASE_SETUP = 0,     /* connecting, negotiating */
	TM_PHASE_FIRST_PASS,    /* iteration 1: every page */
	TM_PHASE_ITERATE,       /* dirty iterations */
	TM_PHASE_PAUSED,        /* workload paused, final pass */
	TM_PHASE_VERIFY,        /* comparing digests */
	TM_PHASE_DONE,
	TM_PHASE_FAILED,
};

typedef struct tm_migrate_stats {
	enum tm_migrate_phase phase;
	unsigned iterations;        /* passes sent, the first and the final included */
	uint64_t total_ms;          /* tm_migration_run start to end */
	uint64_t setup_ms;          /* connect + negotiation */
	uint64_t downtime_ms;       /* source: pause to "all pages placed" ack */
	uint64_t verify_ms;         /* digest comparison after the handover */
	uint64_t bytes_wire;        /* every byte written (source) / read (dest) */
	uint64_t bytes_data;        /* page bytes represented (pages sent * page size) */
	uint64_t pages_normal;      /* data + tags */
	uint64_t pages_zero;        /* data and tags all zero: offset only */
	uint64_t pages_tag_only;    /* data zero, tags not: tags only */
	uint64_t packets;
	uint64_t pages_remaining;   /* not yet sent in the current pass */
	uint64_t dirty_pages;       /* dirty at the last collect */
	double dirty_rate_bps;      /* bytes/s dirtied, last iteration */
	double bandwidth_bps;       /* wire bytes/s, last iteration */
	double throughput_gbps;     /* bytes_data / transfer time, GB/s (1e9) */
	unsigned throttle_pct;      /* auto-converge throttle last applied */
	bool verified;              /* digests compared and equal */
	uint8_t digest[16];         /* this side's 128-bit digest (when verified) */
	uint64_t bytes_tags;        /* source: encoded tag bytes in data packets
				       (the tag sections as sent, after the codec) */
} tm_migrate_stats;

typedef struct tm_migrate_hooks {
	uint32_t struct_size;      /* sizeof(this struct), or 0 for the 0.1 layout
				     (tagmem/api.h, "Structs that grow") */
	void *ctx;
	/* Source: stop every writer of the regions before returning 0. */
	int (*pause)(void *ctx);
	/* Source: the migration failed after pause; let the workload go on.
	 * Destination: the migration succeeded; start the workload. */
	void (*resume)(void *ctx);
	/* Source, auto-converge: spend `percent` of the time not writing. */
	void (*throttle)(void *ctx, unsigned percent);
	/* Both: about every 100 ms, from the thread in tm_migration_run. */
	void (*progress)(void *ctx, const tm_migrate_stats *s);
} tm_migrate_hooks;

/*
 * Create a migration. cfg NULL = defaults; hooks may be NULL or have NULL
 * members (a source without pause hook is only correct when nothing writes
 * the regions). Fails with -EINVAL naming the bad field.
 */
TM_API int tm_migration_new(tm_migration **out, enum tm_migrate_role role,
			    const tm_migrate_config *cfg, const tm_migrate_hooks *hooks,
			    tm_error *err);

/* Free; closes the descriptors tagmem accepted itself, never the caller's. */
TM_API void tm_migration_free(tm_migration *m);

/* Add a region (borrowed, must outlive the run). Source: order = wire id.
 * Destination: matched to the source's by name. Names must be unique. */
TM_API int tm_migration_add_region(tm_migration *m, tm_region *r, tm_error *err);

/*
 * Add a connected stream descriptor (borrowed; tagmem may shutdown() it to
 * wake its threads on failure or cancel, and never closes it). Source: the
 * first added is the control channel, then exactly cfg.channels data
 * channels. Destination: any order; the handshake says which is which.
 */
TM_API int tm_migration_add_fd(tm_migration *m, int fd, tm_error *err);

/* Destination: accept the channels from this listening socket (borrowed). */
TM_API int tm_migration_set_listener(tm_migration *m, int lfd, tm_error *err);

/*
 * Run the migration to the end. Returns 0 when every page and tag is in
 * place on the destination (and, with verify, the digests matched), else a
 * negative errno with err naming what failed and where (region, offset,
 * channel). stats (may be NULL) is filled either way. Call once per object.
 */
TM_API int tm_migration_run(tm_migration *m, tm_migrate_stats *stats, tm_error *err);

/* Ask a running migration to stop: run returns -ECANCELED; both sides
 * report it. Async-signal-safe; any thread. */
TM_API void tm_migration_cancel(tm_migration *m);

/* ---- addresses: "tcp:HOST:PORT" or "unix:PATH" ------------------- */

/* Check that addr is well formed (no lookup, no socket): -EINVAL with a
 * message naming the address otherwise. For CLIs that want to refuse a bad
 * address before doing expensive work. Thread-safe. */
TM_API int tm_migrate_addr_check(const char *addr, tm_error *err);

/* Listen on addr (tcp port 0 picks a free port). Unix: an old socket file
 * at PATH is replaced. Thread-safe. */
TM_API int tm_migrate_listen(const char *addr, int *lfd, tm_error *err);

/* The address a listener can be reached at ("tcp:127.0.0.1:40123"). */
TM_API int tm_migrate_listener_addr(int lfd, char *buf, size_t len, tm_error *err);

/*
 * Open n connections to addr, retrying refused/missing for up to timeout_ms
 * (so the sender may start before the receiver listens). On failure no
 * descriptor is left open. Thread-safe.
 */
TM_API int tm_migrate_connect(const char *addr, unsigned n, int *fds,
			      uint32_t timeout_ms, tm_error *err);

/* ---- digest ----------------------------------------------------- */

/*
 * 128-bit digest of the regions' data and packed tags, with their names,
 * sizes and geometries, in the given order (format: docs/FORMAT.md §migrate).
 * Equal digests mean equal memory and tags. Uses `threads` threads (>= 1).
 * The regions must not be written during the call.
 */
TM_API int tm_migrate_digest(tm_region *const *regions, size_t n, unsigned threads,
			     uint8_t out[16], tm_error *err);

#ifdef __cplusplus
}
#endif
#endif
