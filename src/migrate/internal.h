/*
 * internal.h - the tm_migration object and the channel structures shared by
 * the source (source.c, sendchan.c), the destination (dest.c, recvchan.c)
 * and the control channel (control.c). Internal.
 *
 * Threads: the caller's thread runs tm_migration_run and owns the control
 * channel; each data channel has one thread. A channel thread that fails
 * records the first error (tm_mig_fail) and wakes the run thread through a
 * pipe; the run thread then tells the peer, shuts the sockets down (which
 * unblocks every other channel thread) and joins them.
 */
#ifndef TM_MIGRATE_INTERNAL_H
#define TM_MIGRATE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "migrate/packet.h"
#include "migrate/untouched.h"
#include "migrate/wire.h"
#include "tagmem/migrate.h"

#define TM_MASK_WORDS (TM_MIGRATE_MAX_PPP / 64)
#define TM_QUEUE_CAP 16u

enum { TM_JOB_PAGES = 0, TM_JOB_END = 1 };

/* One packet's worth of work: the dirty pages of one chunk of a region. */
typedef struct tm_job {
	uint32_t kind;
	uint32_t region;
	/* Nothing can change these pages while they are sent (workload paused,
	 * no pause hook, or no checksum to go stale): they may be sent straight
	 * from region memory. */
	bool stable;
	uint64_t first;                 /* first page of the chunk */
	uint64_t mask[TM_MASK_WORDS];   /* bit i: page first+i */
} tm_job;

/* Counters a channel updates and the run thread reads. */
typedef struct tm_chan_stats {
	_Atomic uint64_t bytes;
	_Atomic uint64_t packets;
	_Atomic uint64_t normal;
	_Atomic uint64_t zero;
	_Atomic uint64_t tag_only;
	_Atomic uint64_t data;      /* page bytes represented */
	_Atomic uint64_t tags;      /* encoded tag bytes sent */
} tm_chan_stats;

/* Source data channel. */
typedef struct tm_schan {
	struct tm_migration *m;
	unsigned idx;           /* 1..n on the wire */
	int fd;
	pthread_t thr;
	bool started;
	pthread_mutex_t lock;
	pthread_cond_t cv;      /* job pushed / job finished */
	tm_job ring[TM_QUEUE_CAP];
	unsigned head, count;
	uint64_t queued, done;  /* pages, under lock */
	uint64_t seq;
	tm_pkt_encoder enc;
	uint8_t *data;          /* ppp pages */
	uint8_t *tags;          /* ppp pages of packed tags */
	uint8_t *tags_to;       /* tag-only pages' tags */
	uint64_t *off, *off_to, *off_zero;
	struct iovec *iov;      /* ppp + 2: header, tags, data pieces */
	struct iovec *piece;    /* ppp: normal pages in region memory */
	bool direct[TM_MIGRATE_MAX_REGIONS];    /* tm_mig_direct per region */
	uint64_t rate_t0, rate_bytes;   /* --max-bandwidth window */
	tm_chan_stats st;
} tm_schan;

/* Destination data channel. */
typedef struct tm_rchan {
	struct tm_migration *m;
	unsigned idx;
	int fd;
	pthread_t thr;
	bool started;
	uint64_t seq;           /* next expected */
	uint8_t *payload;
	size_t cap;
	tm_pkt_scratch sc;
	uint8_t *zero_page;
	struct iovec *iov;      /* ppp + 1: the packet's pieces, to hash */
	struct iovec *iov_rx;   /* a copy that recvv consumes */
	bool direct[TM_MIGRATE_MAX_REGIONS];
	uint64_t pages;         /* placed */
	_Atomic bool ended;
	tm_chan_stats st;
} tm_rchan;

struct tm_migration {
	enum tm_migrate_role role;
	tm_migrate_config cfg;
	tm_migrate_hooks hooks;
	tm_region *region[TM_MIGRATE_MAX_REGIONS];
	unsigned nregions;
	int fd[TM_MIGRATE_MAX_CHANNELS + 1];    /* [0] control */
	bool own_fd[TM_MIGRATE_MAX_CHANNELS + 1];
	unsigned nfds;
	int lfd;
	int wake[2];            /* pipe: cancel, failure, channel exit */
	atomic_int cancelled;
	atomic_int failed;
	pthread_mutex_t err_lock;
	tm_error first_err;
	bool ran;

	tm_pkt_session sess;
	tm_untouched untouched;         /* destination: known-zero pages */
	uint64_t id[2];
	unsigned nchan;
	tm_schan *sch;
	tm_rchan *rch;
	uint64_t ctrl_out, ctrl_in;     /* control channel sequence numbers */
	_Atomic uint64_t ctrl_bytes;

	tm_migrate_stats st;
	uint64_t t0, t_progress;
	uint64_t *dirty[TM_MIGRATE_MAX_REGIONS];
	bool dirty_on[TM_MIGRATE_MAX_REGIONS];
	bool paused;
};

/*
 * Whether pages of r can be handed to the kernel (sendmsg/recvmsg iovecs)
 * in place: the backend has a direct pointer (tagmem/backend.h: plain
 * memory of this process, no tag checks, no effect on tags). soft and kvm
 * have one; mte does not (a page holds granules of different tags, and
 * PROT_MTE memory is never handed to the kernel through an untagged
 * pointer), nor does a backend for another process: those are copied.
 */
static inline bool tm_mig_direct(tm_region *r)
{
	return tm_region_direct(r, 0) != NULL;
}

/* What a received page is (its class in the packet). */
enum tm_rx_class { TM_RX_NORMAL = 0, TM_RX_TAGONLY = 1, TM_RX_ZERO = 2 };

/*
 * Place one received page with its tags (place.c): the one call through
 * which a received page reaches its region. data: the page's bytes for
 * TM_RX_NORMAL, or NULL when they already landed in the page (received in
 * place: only the tags are written then); tags: packed, NULL for a region
 * without metadata (and for TM_RX_ZERO); zero_page: a page of zeros;
 * known_zero: the caller knows the page reads zero, data and tags
 * (untouched.h), so it need not be read to find out. A tag-only or zero
 * page whose memory is already zero and untagged is not touched (no fault,
 * no memory). Errors name the region and offset.
 */
int tm_rx_place_page(tm_region *reg, size_t pg, enum tm_rx_class cls,
		     const uint8_t *data, const uint8_t *tags,
		     const uint8_t *zero_page, bool known_zero, tm_error *err);

/* Record the first failure and wake the run thread. Thread-safe. */
void tm_mig_fail(struct tm_migration *m, const tm_error *e);
/* True once cancelled or failed. */
bool tm_mig_stopping(struct tm_migration *m);
/* Wake the run thread (a channel ended or failed). */
void tm_mig_wake(struct tm_migration *m);
/* Drain the wake pipe. */
void tm_mig_drain_wake(struct tm_migration *m);
/* Shut every channel socket down so blocked threads return. */
void tm_mig_shutdown(struct tm_migration *m);
/* Wait for a control frame, riding over wake-ups that only mean "a channel
 * ended"; -ECANCELED only when the migration is stopping. */
int tm_ctrl_wait(struct tm_migration *m, tm_frame *f, uint8_t *buf,
		 uint32_t cap, int timeout_ms, tm_error *err);
/* Call the progress hook if 100 ms passed (or force). */
void tm_mig_progress(struct tm_migration *m, bool force);
/* The error to return: the first recorded failure, or cancellation. */
int tm_mig_error(struct tm_migration *m, tm_error *err);

/* ---- control channel (control.c) --------------------------------- */
int tm_ctrl_send(struct tm_migration *m, uint16_t type, const void *p,
		 uint32_t len, tm_error *err);
/*
 * Receive one control frame into buf (capacity cap), waiting up to
 * timeout_ms (<0: forever) while watching the wake pipe: -ECANCELED when
 * woken by a failure/cancel, -ETIMEDOUT on timeout. An ERROR frame from the
 * peer becomes an error carrying its text ("destination reports: ...").
 */
int tm_ctrl_recv(struct tm_migration *m, tm_frame *f, uint8_t *buf,
		 uint32_t cap, int timeout_ms, tm_error *err);
/* Send a frame with a fixed payload on any channel (handshake, END). */
int tm_frame_send(int fd, uint16_t type, uint16_t chan, uint64_t seq,
		  const void *p, uint32_t len, tm_error *err);
/* Receive a whole frame on fd with checksum (handshake). */
int tm_frame_recv(int fd, unsigned chan, uint64_t seq, uint8_t *buf,
		  uint32_t cap, tm_frame *f, int wake, int timeout_ms,
		  tm_error *err);

/* ---- the two sides ----------------------------------------------- */
int tm_source_run(struct tm_migration *m, tm_error *err);
int tm_dest_run(struct tm_migration *m, tm_error *err);
void *tm_schan_main(void *arg);
void *tm_rchan_main(void *arg);
int tm_schan_init(tm_schan *c, struct tm_migration *m, unsigned idx, int fd,
		  tm_error *err);
void tm_schan_free(tm_schan *c);
int tm_rchan_init(tm_rchan *c, struct tm_migration *m, unsigned idx, int fd,
		  tm_error *err);
void tm_rchan_free(tm_rchan *c);
/* Push a job; waits while the queue is full. -ECANCELED when stopping. */
int tm_schan_push(tm_schan *c, const tm_job *j);

#endif
