/*
 * uffd.c - opening the region's userfaultfd and (re)registering its mapping
 * with the modes dirty tracking and lazy placement need (see uffd.h).
 * Callers (dirty_start/stop, lazy_start/stop) are documented not to race,
 * so this holds no lock.
 */
#include "region/uffd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "tagmem/error.h"

/* Features tagmem asks for when the kernel has them. */
#define TM_UFFD_WANTED (UFFD_FEATURE_THREAD_ID | UFFD_FEATURE_WP_ASYNC | \
			UFFD_FEATURE_WP_UNPOPULATED | \
			UFFD_FEATURE_EXACT_ADDRESS)

static int open_raw(void)
{
	int fd;

#ifdef SYS_userfaultfd
	fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd >= 0)
		return fd;
	if (errno != EPERM)
		return -errno;
#endif
	/* Unprivileged callers may still be let in through the device. */
	int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);

	if (dev < 0)
		return -EPERM;
	fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
	fd = fd < 0 ? -errno : fd;
	close(dev);
	return fd;
}

static const char *why(int rc)
{
	if (rc == -ENOSYS)
		return " (no userfaultfd syscall: kernel without "
		       "CONFIG_USERFAULTFD, or an emulator such as qemu-user "
		       "that does not implement it)";
	if (rc == -EPERM)
		return " (not permitted: needs CAP_SYS_PTRACE, "
		       "vm.unprivileged_userfaultfd=1 or access to "
		       "/dev/userfaultfd)";
	return "";
}

/* UFFDIO_API on fd asking for `features`; returns what was granted. */
static int handshake(int fd, uint64_t features, uint64_t *granted)
{
	struct uffdio_api api = { .api = UFFD_API, .features = features };

	if (ioctl(fd, UFFDIO_API, &api))
		return -errno;
	*granted = api.features;
	return 0;
}

int tm_uffd_get(tm_region *r, tm_error *err)
{
	struct tm_uffd *u;
	uint64_t offered = 0, granted = 0;
	int fd, rc;

	if (r->uffd)
		return 0;
	if (!r->map_base)
		return tm_error_set(err, -ENOTSUP, "the %s backend has no mapping "
				    "in this process for userfaultfd",
				    tm_region_backend_name(r));
	/* Ask what the kernel offers on a probe descriptor (UFFDIO_API can
	 * only be done once per descriptor), then open the real one. */
	fd = open_raw();
	if (fd < 0)
		return tm_error_set(err, -ENOTSUP, "userfaultfd unavailable: "
				    "%s%s", strerror(-fd), why(fd));
	rc = handshake(fd, 0, &offered);
	close(fd);
	if (rc)
		return tm_error_set(err, -ENOTSUP, "userfaultfd UFFDIO_API "
				    "failed: %s", strerror(-rc));
	fd = open_raw();
	if (fd < 0)
		return tm_error_set(err, -ENOTSUP, "userfaultfd unavailable: "
				    "%s%s", strerror(-fd), why(fd));
	rc = handshake(fd, offered & (TM_UFFD_WANTED | r->m.uffd_features),
		       &granted);
	u = rc ? NULL : calloc(1, sizeof(*u));
	if (!u) {
		close(fd);
		return tm_error_set(err, rc ? -ENOTSUP : -ENOMEM,
				    "userfaultfd set-up failed: %s",
				    strerror(rc ? -rc : ENOMEM));
	}
	u->fd = fd;
	u->features = granted;
	r->uffd = u;
	return 0;
}

static int unregister(tm_region *r)
{
	struct uffdio_range rg = { .start = (uintptr_t)r->map_base,
				   .len = r->map_len };

	return ioctl(r->uffd->fd, UFFDIO_UNREGISTER, &rg) ? -errno : 0;
}

/* Drop write protection everywhere (before WP mode is removed). */
static int unprotect(tm_region *r)
{
	struct uffdio_writeprotect wp = {
		.range = { .start = (uintptr_t)r->map_base, .len = r->map_len },
		.mode = 0,
	};

	return ioctl(r->uffd->fd, UFFDIO_WRITEPROTECT, &wp) ? -errno : 0;
}

int tm_uffd_set_modes(tm_region *r, uint64_t modes, tm_error *err)
{
	struct tm_uffd *u = r->uffd;
	int rc = 0;

	if (!u)
		return modes ? tm_error_set(err, -EINVAL, "no userfaultfd") : 0;
	if ((u->modes & UFFDIO_REGISTER_MODE_WP) &&
	    !(modes & UFFDIO_REGISTER_MODE_WP))
		unprotect(r);
	if (modes == 0) {
		if (u->modes)
			unregister(r);
		close(u->fd);
		free(u);
		r->uffd = NULL;
		return 0;
	}
	if (modes != u->modes) {
		/* Re-registering with the same context replaces the modes. */
		struct uffdio_register reg = {
			.range = { .start = (uintptr_t)r->map_base,
				   .len = r->map_len },
			.mode = modes,
		};

		if (ioctl(u->fd, UFFDIO_REGISTER, &reg))
			rc = tm_error_set(err, -errno, "UFFDIO_REGISTER of "
					  "%p+%#zx failed: %s", (void *)r->map_base,
					  r->map_len, strerror(errno));
		else
			u->modes = modes;
	}
	return rc;
}
