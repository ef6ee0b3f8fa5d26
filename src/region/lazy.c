/*
 * lazy.c - lazy placement through userfaultfd: pages of a region are
 * filled on first access by a callback and placed by the backend so that
 * their tags are in place before their data becomes visible.
 *
 * One fault thread per region reads missing-page faults from the region's
 * userfaultfd (uffd.c) and is the only caller of the fill callback. For a
 * fault on page pg it fills the page into a buffer allocated at start and
 * hands data and tags to the backend's place method (tagmem/backend.h),
 * which maps the page and wakes the faulting threads only once data and
 * tags are both there: soft writes the shadow tags, then UFFDIO_COPY; mte
 * builds the page in a PROT_MTE staging page with STGP and UFFDIO_MOVEs it
 * into place. When the fill fails nothing is placed, the error is
 * recorded, and the faulting thread gets SIGBUS (BUS_ADRERR at the fault
 * address), as Linux does for a failed swap-in.
 *
 * API calls on a missing page do not fault: calls that place a whole page
 * (write_page, zero_page) place it from the calling thread; calls that read
 * or change part of a page ask the fault thread to fetch it and wait, so a
 * fill error comes back to them as an error code instead of a signal.
 *
 * Placement of a page (tagged and present bits, then the backend's place)
 * happens under one of a few striped mutexes, so a fault-thread fill and an
 * API placement of the same page cannot interleave. Pages already present
 * never touch these locks.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "region/uffd.h"
#include "tagmem/error.h"

#define LAZY_STRIPES 64u
#define LAZY_SLOTS 8u   /* staging buffers for API-thread placements */
#define LAZY_MSGS 16u   /* uffd messages per read */

/* A page fetch an API thread asked the fault thread for. */
struct lazy_req {
	size_t pg;
	int rc;
	bool done;
	tm_error err;
	struct lazy_req *next;
};

struct lazy_slot {
	atomic_flag busy;
	uint8_t *data;       /* page aligned, page_size bytes */
	uint8_t *tags;
};

struct tm_lazy {
	tm_region *r;
	tm_fill_fn fn;
	void *ctx;
	/* The caller's own fault loop (tm_region_lazy_start_caller): no
	 * fault thread; fill errors of faults go to on_error (or SIGBUS). */
	bool caller_loop;
	tm_fill_error_fn on_error;
	void *error_ctx;
	pthread_t thread;
	int wake_fd;                    /* eventfd: requests or stop */
	atomic_bool stopping;
	uint8_t *fill_data;             /* fault thread's page buffer */
	uint8_t *fill_tags;
	struct lazy_slot slots[LAZY_SLOTS];
	uint8_t *staging;               /* LAZY_SLOTS + 1 pages, mmap'd */
	uint8_t *tag_bufs;
	pthread_mutex_t stripe[LAZY_STRIPES];
	pthread_mutex_t lock;           /* requests and the first error */
	pthread_cond_t cond;
	struct lazy_req *reqs;
	atomic_size_t faults;           /* pages placed for faults */
};

bool tm_lazy_active(const tm_region *r)
{
	return r->lazy != NULL;
}

/* ---- placement ------------------------------------------------------ */

/* Wake whoever waits on page pg (it is mapped). */
static void wake_page(tm_region *r, size_t pg)
{
	struct uffdio_range w = { .start = (uintptr_t)tm_region_map_addr(r, pg),
				  .len = r->page_size };

	ioctl(r->uffd->fd, UFFDIO_WAKE, &w);
}

/*
 * The test hook TM_HOOK_WAKE_BEFORE_TAGS: what a wrong backend would do --
 * map the data with zero tags, waking the faulting threads, and write the
 * real tags a moment later. Tests must be able to see it.
 */
static int place_wrong_order(tm_region *r, size_t pg, const uint8_t *data,
			     const uint8_t *tags, tm_error *err)
{
	const struct timespec d = { r->hook_delay_ms / 1000,
				    (long)(r->hook_delay_ms % 1000) * 1000000 };
	int rc = r->m.place(r->ctx, r->uffd->fd, pg, data, NULL, err);

	if (rc || !tags)
		return rc;
	nanosleep(&d, NULL);
	return r->m.write_tags(r->ctx, pg, 1, tags, err);
}

/*
 * Place page pg unless it is already present: data (NULL: zero) and tags
 * (NULL: untagged) through the backend. The tagged and present bits are set
 * first, so a thread woken by the placement finds them already right, and
 * put back if nothing was placed. Returns 0 placed, 1 was present (or found
 * mapped after all, see scan_present), or -errno.
 */
static int place(tm_region *r, size_t pg, const uint8_t *data,
		 const uint8_t *tags, tm_error *err)
{
	struct tm_lazy *lz = r->lazy;
	pthread_mutex_t *m = &lz->stripe[pg % LAZY_STRIPES];
	bool was_tagged;
	int rc = 1;

	pthread_mutex_lock(m);
	if (!tm_abit_test(r->present, pg)) {
		was_tagged = tm_abit_test(r->tagged, pg);
		if (tags)
			tm_abit_set(r->tagged, pg);
		else
			tm_abit_clear(r->tagged, pg);
		tm_abit_set(r->present, pg);
		if (r->test_hooks & TM_HOOK_WAKE_BEFORE_TAGS)
			rc = place_wrong_order(r, pg, data, tags, err);
		else
			rc = r->m.place(r->ctx, r->uffd->fd, pg, data, tags, err);
		if (rc == -EEXIST) {
			wake_page(r, pg); /* nobody may be left waiting */
			rc = 1;
		} else if (rc < 0) {
			tm_abit_clear(r->present, pg);
		}
		if (rc != 0 && was_tagged)
			tm_abit_set(r->tagged, pg);
		else if (rc != 0)
			tm_abit_clear(r->tagged, pg);
	}
	pthread_mutex_unlock(m);
	return rc;
}

static struct lazy_slot *slot_get(struct tm_lazy *lz)
{
	for (;;) {
		for (unsigned i = 0; i < LAZY_SLOTS; i++)
			if (!atomic_flag_test_and_set(&lz->slots[i].busy))
				return &lz->slots[i];
		sched_yield();
	}
}

int tm_lazy_place(tm_region *r, size_t pg, const void *data,
		  const uint8_t *tags, tm_error *err)
{
	struct lazy_slot *s = slot_get(r->lazy);
	int rc;

	/* place wants a page-aligned source; callers' buffers are not. */
	memcpy(s->data, data, r->page_size);
	if (tags)
		memcpy(s->tags, tags, r->packed_bytes);
	rc = place(r, pg, s->data, tags ? s->tags : NULL, err);
	atomic_flag_clear(&s->busy);
	return rc;
}

int tm_lazy_place_zero(tm_region *r, size_t pg, tm_error *err)
{
	return place(r, pg, NULL, NULL, err);
}

/* ---- the fault thread ----------------------------------------------- */

static void record_error(struct tm_lazy *lz, int rc, const tm_error *e)
{
	pthread_mutex_lock(&lz->lock);
	if (lz->r->lazy_rc == 0) {
		lz->r->lazy_rc = rc;
		lz->r->lazy_err = *e;
	}
	pthread_mutex_unlock(&lz->lock);
}

/*
 * Fill page pg through the callback into data/tags (page aligned, not in
 * the region) and place it. -EAGAIN from the callback means "not available
 * yet": nothing is placed and nothing recorded; the faulting threads keep
 * waiting until the page is placed or tm_region_lazy_wake.
 */
static int fill_into(struct tm_lazy *lz, size_t pg, uint8_t *data,
		     uint8_t *tags, tm_error *err)
{
	tm_region *r = lz->r;
	bool tagged = false;
	int rc;

	if (tm_abit_test(r->present, pg))
		return 1;
	memset(tags, 0, r->packed_bytes);
	tm_error_clear(err);
	rc = lz->fn(lz->ctx, r, pg, data, tags, &tagged, err);
	if (rc == -EAGAIN)
		return tm_error_wrap(err, rc, "region '%s': page %zu (byte "
				     "offset %#zx) is not available yet",
				     r->name, pg, pg * r->page_size);
	if (rc) {
		tm_error_wrap(err, rc < 0 ? rc : -EIO, "region '%s': fill of "
			      "page %zu (byte offset %#zx) failed", r->name,
			      pg, pg * r->page_size);
		record_error(lz, err->code, err);
		return err->code;
	}
	return place(r, pg, data, tagged && r->packed_bytes ? tags : NULL, err);
}

/* The fault thread's own buffer, or (caller loop: fills may run in several
 * threads at once) a staging slot. */
static int fill_and_place(struct tm_lazy *lz, size_t pg, tm_error *err)
{
	struct lazy_slot *s;
	int rc;

	if (!lz->caller_loop)
		return fill_into(lz, pg, lz->fill_data, lz->fill_tags, err);
	s = slot_get(lz);
	rc = fill_into(lz, pg, s->data, s->tags, err);
	atomic_flag_clear(&s->busy);
	return rc;
}

/*
 * The faulting thread gets SIGBUS, like a failed swap-in. Only the kernel
 * may send BUS_ADRERR with si_addr to another thread (rt_tgsigqueueinfo
 * refuses si_code >= 0 unless sent by the thread-group leader to itself),
 * so the signal is queued with si_code SI_QUEUE and the fault address in
 * si_value.sival_ptr; plain tgkill is the fallback.
 */
static void sigbus_thread(pid_t tid, uint64_t addr)
{
	siginfo_t si;

	memset(&si, 0, sizeof(si));
	si.si_signo = SIGBUS;
	si.si_code = SI_QUEUE;
	si.si_pid = getpid();
	si.si_uid = getuid();
	si.si_value.sival_ptr = (void *)(uintptr_t)addr;
	if (syscall(SYS_rt_tgsigqueueinfo, getpid(), tid, SIGBUS, &si))
		syscall(SYS_tgkill, getpid(), tid, SIGBUS);
}

static void handle_fault(struct tm_lazy *lz, const struct uffd_msg *msg)
{
	tm_region *r = lz->r;
	uint64_t addr = msg->arg.pagefault.address;
	size_t pg = (size_t)(addr - (uintptr_t)r->map_base) >> r->page_shift;
	tm_error err;
	int rc;

	if (addr < (uintptr_t)r->map_base || pg >= r->npages)
		return;
	rc = fill_and_place(lz, pg, &err);
	if (rc == 0)
		atomic_fetch_add(&lz->faults, 1);
	else if (rc == 1)
		wake_page(r, pg);
	else if (rc == -EAGAIN)
		; /* the faulting thread waits for the page to be placed */
	else if (lz->on_error)
		lz->on_error(lz->error_ctx, r, pg, addr,
			     (int)msg->arg.pagefault.feat.ptid, &err);
	else
		sigbus_thread((pid_t)msg->arg.pagefault.feat.ptid, addr);
}

static void read_faults(struct tm_lazy *lz)
{
	struct uffd_msg msgs[LAZY_MSGS];

	for (;;) {
		ssize_t n = read(lz->r->uffd->fd, msgs, sizeof(msgs));

		if (n <= 0)
			return; /* EAGAIN: drained */
		for (size_t i = 0; i < (size_t)n / sizeof(msgs[0]); i++)
			if (msgs[i].event == UFFD_EVENT_PAGEFAULT)
				handle_fault(lz, &msgs[i]);
	}
}

static void serve_requests(struct tm_lazy *lz)
{
	struct lazy_req *q;

	pthread_mutex_lock(&lz->lock);
	q = lz->reqs;
	lz->reqs = NULL;
	pthread_mutex_unlock(&lz->lock);
	while (q) {
		struct lazy_req *next = q->next;
		int rc = fill_and_place(lz, q->pg, &q->err);

		pthread_mutex_lock(&lz->lock);
		q->rc = rc < 0 ? rc : 0;
		q->done = true;
		pthread_cond_broadcast(&lz->cond);
		pthread_mutex_unlock(&lz->lock);
		q = next;
	}
}

static void *fault_thread(void *arg)
{
	struct tm_lazy *lz = arg;
	struct pollfd pfd[2] = {
		{ .fd = lz->r->uffd->fd, .events = POLLIN },
		{ .fd = lz->wake_fd, .events = POLLIN },
	};

	while (!atomic_load(&lz->stopping)) {
		if (poll(pfd, 2, -1) < 0)
			continue; /* EINTR */
		if (pfd[1].revents & POLLIN) {
			uint64_t v;

			if (read(lz->wake_fd, &v, sizeof(v)) < 0)
				v = 0;
			serve_requests(lz);
		}
		if (pfd[0].revents & POLLIN)
			read_faults(lz);
	}
	serve_requests(lz); /* nobody is left waiting */
	return NULL;
}

int tm_lazy_fetch(tm_region *r, size_t pg, tm_error *err)
{
	struct tm_lazy *lz = r->lazy;
	struct lazy_req q = { .pg = pg };
	uint64_t one = 1;

	if (lz->caller_loop) /* nobody to ask: fill here */
		return fill_and_place(lz, pg, err);

	tm_error_clear(&q.err);
	pthread_mutex_lock(&lz->lock);
	q.next = lz->reqs;
	lz->reqs = &q;
	pthread_mutex_unlock(&lz->lock);
	if (write(lz->wake_fd, &one, sizeof(one)) != sizeof(one))
		return tm_error_set(err, -errno, "region '%s': cannot wake "
				    "the fault thread", r->name);
	pthread_mutex_lock(&lz->lock);
	while (!q.done)
		pthread_cond_wait(&lz->cond, &lz->lock);
	pthread_mutex_unlock(&lz->lock);
	if (q.rc && err)
		*err = q.err;
	return q.rc;
}

/* ---- start / stop ----------------------------------------------------- */

/*
 * Pages the process already touched are present; the rest will fault. In
 * /proc/self/pagemap a page is there when it is present (bit 63) or
 * swapped (bit 62) -- except that the write-protect markers uffd-wp puts
 * on never-touched pages also read as "swapped" with the uffd-wp bit (57)
 * set. Those are missing. A swapped page that is also write-protected reads
 * the same; it is counted missing too, and placement then finds it mapped
 * (EEXIST: the backend leaves it as it was, place() keeps its bits).
 *
 * A region page larger than a host page that is only partly populated has
 * its other host pages read in now (zero pages), so each region page is
 * all there or all missing and UFFDIO_COPY can place it whole.
 */
#define PM_PRESENT (1ull << 63)
#define PM_SWAP (1ull << 62)
#define PM_UFFD_WP (1ull << 57)

static bool host_page_there(uint64_t e)
{
	return (e & PM_PRESENT) || ((e & PM_SWAP) && !(e & PM_UFFD_WP));
}

static int scan_present(tm_region *r, tm_error *err)
{
	size_t host = (size_t)sysconf(_SC_PAGESIZE);
	size_t per = r->page_size / host;
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	uint64_t e[TM_PAGE_SIZE_MAX / 4096];

	if (fd < 0)
		return tm_error_set(err, -ENOTSUP, "cannot open "
				    "/proc/self/pagemap: %s", strerror(errno));
	for (size_t pg = 0; pg < r->npages; pg++) {
		uintptr_t a = (uintptr_t)tm_region_map_addr(r, pg);
		size_t have = 0;

		if (pread(fd, e, per * 8, (off_t)(a / host * 8)) !=
		    (ssize_t)(per * 8)) {
			close(fd);
			return tm_error_set(err, -EIO, "reading "
					    "/proc/self/pagemap failed");
		}
		for (size_t i = 0; i < per; i++)
			have += host_page_there(e[i]);
		for (size_t i = 0; have && have < per && i < per; i++)
			(void)*(volatile uint8_t *)(a + i * host);
		if (have)
			tm_abit_set(r->present, pg);
		else
			tm_abit_clear(r->present, pg);
	}
	close(fd);
	return 0;
}

static void lazy_free(struct tm_lazy *lz, size_t page_size)
{
	if (lz->staging)
		munmap(lz->staging, (LAZY_SLOTS + 1) * page_size);
	free(lz->tag_bufs);
	if (lz->wake_fd >= 0)
		close(lz->wake_fd);
	for (unsigned i = 0; i < LAZY_STRIPES; i++)
		pthread_mutex_destroy(&lz->stripe[i]);
	pthread_mutex_destroy(&lz->lock);
	pthread_cond_destroy(&lz->cond);
	free(lz);
}

static struct tm_lazy *lazy_new(tm_region *r, tm_fill_fn fn, void *ctx)
{
	struct tm_lazy *lz = calloc(1, sizeof(*lz));
	size_t tb = r->packed_bytes ? r->packed_bytes : 1;

	if (!lz)
		return NULL;
	lz->r = r;
	lz->fn = fn;
	lz->ctx = ctx;
	lz->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	for (unsigned i = 0; i < LAZY_STRIPES; i++)
		pthread_mutex_init(&lz->stripe[i], NULL);
	pthread_mutex_init(&lz->lock, NULL);
	pthread_cond_init(&lz->cond, NULL);
	lz->staging = mmap(NULL, (LAZY_SLOTS + 1) * r->page_size,
			   PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			   -1, 0);
	lz->tag_bufs = calloc(LAZY_SLOTS + 1, tb);
	if (lz->staging == MAP_FAILED)
		lz->staging = NULL;
	if (lz->wake_fd < 0 || !lz->staging || !lz->tag_bufs) {
		lazy_free(lz, r->page_size);
		return NULL;
	}
	for (unsigned i = 0; i < LAZY_SLOTS; i++) {
		atomic_flag_clear(&lz->slots[i].busy);
		lz->slots[i].data = lz->staging + i * r->page_size;
		lz->slots[i].tags = lz->tag_bufs + i * tb;
	}
	lz->fill_data = lz->staging + LAZY_SLOTS * r->page_size;
	lz->fill_tags = lz->tag_bufs + LAZY_SLOTS * tb;
	return lz;
}

static int check_can_lazy(tm_region *r, tm_fill_fn fn, tm_error *err)
{
	size_t host = (size_t)sysconf(_SC_PAGESIZE);

	if (!fn)
		return tm_error_set(err, -EINVAL, "region '%s': lazy start "
				    "without a fill callback", r->name);
	if (r->lazy)
		return tm_error_set(err, -EBUSY, "region '%s': lazy placement "
				    "is already running", r->name);
	if (!r->m.place)
		return tm_error_set(err, -ENOTSUP, "region '%s': the %s backend "
				    "has no lazy placement (it cannot place a "
				    "page with its tags)", r->name,
				    tm_region_backend_name(r));
	if (r->page_size % host)
		return tm_error_set(err, -ENOTSUP, "region '%s': lazy "
				    "placement needs pages that are a multiple "
				    "of the host page (%zu)", r->name, host);
	return 0;
}

static int lazy_start(tm_region *r, tm_fill_fn fn, void *ctx, bool caller,
		      tm_fill_error_fn on_error, void *error_ctx, tm_error *err)
{
	struct tm_lazy *lz;
	uint64_t had;
	bool started;
	int rc = check_can_lazy(r, fn, err);

	if (!rc)
		rc = tm_uffd_get(r, err);
	if (rc)
		return tm_error_wrap(err, rc, "region '%s': lazy placement",
				     r->name);
	had = r->uffd->modes;
	if (!(r->uffd->features & UFFD_FEATURE_THREAD_ID)) {
		tm_uffd_set_modes(r, had, NULL);
		return tm_error_set(err, -ENOTSUP, "region '%s': lazy "
				    "placement needs UFFD_FEATURE_THREAD_ID "
				    "(Linux >= 4.14)", r->name);
	}
	r->lazy_rc = 0;
	tm_error_clear(&r->lazy_err);
	lz = lazy_new(r, fn, ctx);
	if (!lz) {
		tm_uffd_set_modes(r, had, NULL);
		return tm_error_set(err, -ENOMEM, "region '%s': lazy "
				    "placement: out of memory", r->name);
	}
	rc = r->m.place_start ? r->m.place_start(r->ctx, r->uffd->fd,
						 r->uffd->features, err) : 0;
	started = rc == 0;
	if (!rc)
		rc = scan_present(r, err);
	if (!rc)
		rc = tm_uffd_set_modes(r, had | UFFDIO_REGISTER_MODE_MISSING,
				       err);
	lz->caller_loop = caller;
	lz->on_error = on_error;
	lz->error_ctx = error_ctx;
	if (!rc) {
		r->lazy = lz;
		rc = caller ? 0 : -pthread_create(&lz->thread, NULL, fault_thread, lz);
		if (rc) {
			r->lazy = NULL;
			tm_error_set(err, rc, "cannot start the fault thread");
		}
	}
	if (rc) {
		tm_uffd_set_modes(r, had, NULL);
		if (started && r->m.place_stop)
			r->m.place_stop(r->ctx);
		lazy_free(lz, r->page_size);
		return tm_error_wrap(err, rc, "region '%s': lazy placement (%s "
				     "backend)", r->name,
				     tm_region_backend_name(r));
	}
	return 0;
}

int tm_region_lazy_start(tm_region *r, tm_fill_fn fn, void *ctx,
			 tm_error *err)
{
	return lazy_start(r, fn, ctx, false, NULL, NULL, err);
}

int tm_region_lazy_start_caller(tm_region *r, tm_fill_fn fn, void *ctx,
				tm_fill_error_fn on_error, void *error_ctx,
				tm_error *err)
{
	return lazy_start(r, fn, ctx, true, on_error, error_ctx, err);
}

/* ---- the caller's fault loop ------------------------------------------ */

static int need_caller_loop(tm_region *r, const char *what, tm_error *err)
{
	if (r->lazy && r->lazy->caller_loop)
		return 0;
	return tm_error_set(err, -EINVAL, "region '%s': %s without "
			    "tm_region_lazy_start_caller", r->name, what);
}

int tm_region_lazy_fd(tm_region *r, tm_error *err)
{
	int rc = need_caller_loop(r, "lazy fd", err);

	return rc ? rc : r->uffd->fd;
}

int tm_region_lazy_handle(tm_region *r, tm_error *err)
{
	struct uffd_msg msg;
	ssize_t n;
	int rc = need_caller_loop(r, "lazy handle", err);

	if (rc)
		return rc;
	/* One message: the descriptor is non-blocking, read gives whole ones. */
	n = read(r->uffd->fd, &msg, sizeof(msg));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n != (ssize_t)sizeof(msg))
		return tm_error_set(err, n < 0 ? -errno : -EIO, "region '%s': "
				    "reading the userfaultfd failed: %s",
				    r->name, n < 0 ? strerror(errno) :
				    "short read");
	if (msg.event == UFFD_EVENT_PAGEFAULT)
		handle_fault(r->lazy, &msg);
	return 1;
}

int tm_region_lazy_wake(tm_region *r, size_t pg, tm_error *err)
{
	if (!r->lazy)
		return tm_error_set(err, -EINVAL, "region '%s': lazy wake "
				    "without lazy placement", r->name);
	if (pg >= r->npages)
		return tm_error_set(err, -ERANGE, "region '%s': lazy wake: page "
				    "%zu is outside the region (%zu pages)",
				    r->name, pg, r->npages);
	wake_page(r, pg);
	return 0;
}

void tm_lazy_release(tm_region *r)
{
	struct tm_lazy *lz = r->lazy;
	uint64_t one = 1;

	if (!lz)
		return;
	atomic_store(&lz->stopping, true);
	if (write(lz->wake_fd, &one, sizeof(one)) != sizeof(one))
		abort(); /* an eventfd write of 1 cannot fail here */
	if (!lz->caller_loop)
		pthread_join(lz->thread, NULL);
	/* Unregistering wakes any thread still blocked on a fault; it then
	 * sees an ordinary anonymous page (zero). */
	tm_uffd_set_modes(r, r->uffd->modes & ~UFFDIO_REGISTER_MODE_MISSING,
			  NULL);
	if (r->m.place_stop)
		r->m.place_stop(r->ctx);
	r->lazy = NULL;
	lazy_free(lz, r->page_size);
}

void tm_region_lazy_stop(tm_region *r)
{
	tm_lazy_release(r);
}

int tm_region_lazy_error(tm_region *r, tm_error *err)
{
	struct tm_lazy *lz = r->lazy;
	int rc;

	if (lz)
		pthread_mutex_lock(&lz->lock);
	rc = r->lazy_rc;
	if (rc && err)
		*err = r->lazy_err;
	if (lz)
		pthread_mutex_unlock(&lz->lock);
	return rc;
}
