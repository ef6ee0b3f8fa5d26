/*
 * transport.c - sockets for migration: "tcp:HOST:PORT" and "unix:PATH"
 * addresses, listen/connect (with retry so either side may start first),
 * and full-length send/receive that never raises SIGPIPE. tagmem installs
 * no signal handlers of its own: MSG_NOSIGNAL keeps a dead peer an error.
 */
#include "migrate/transport.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "tagmem/migrate.h"

/* sendmsg/recvmsg take at most IOV_MAX pieces per call. */
static int iov_batch(int niov)
{
	return niov < IOV_MAX ? niov : IOV_MAX;
}

int tm_xport_sendv(int fd, struct iovec *iov, int niov)
{
	while (niov > 0) {
		struct msghdr mh = { .msg_iov = iov,
				     .msg_iovlen = (size_t)iov_batch(niov) };
		ssize_t w = sendmsg(fd, &mh, MSG_NOSIGNAL);

		if (w < 0 && errno == ENOTSOCK)
			w = writev(fd, iov, iov_batch(niov));
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		tm_iov_advance(&iov, &niov, (size_t)w);
	}
	return 0;
}

int tm_xport_recvv(int fd, struct iovec *iov, int niov)
{
	tm_iov_advance(&iov, &niov, 0);    /* a readv of nothing would read 0 */
	while (niov > 0) {
		ssize_t r = readv(fd, iov, iov_batch(niov));

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			return -ENODATA;
		tm_iov_advance(&iov, &niov, (size_t)r);
	}
	return 0;
}

int tm_xport_send(int fd, const void *buf, size_t n)
{
	struct iovec iov = { (void *)buf, n };

	return tm_xport_sendv(fd, &iov, 1);
}

int tm_xport_recv(int fd, void *buf, size_t n)
{
	return tm_read_full(fd, buf, n);
}

int tm_xport_wait(int fd, int wake, int timeout_ms)
{
	struct pollfd pf[2] = { { .fd = fd, .events = POLLIN },
				{ .fd = wake, .events = POLLIN } };
	int rc;

	do
		rc = poll(pf, wake >= 0 ? 2 : 1, timeout_ms);
	while (rc < 0 && errno == EINTR);
	if (rc < 0)
		return -errno;
	if (rc == 0)
		return 0;
	if (wake >= 0 && pf[1].revents)
		return 2;
	return 1;
}

static void tune(int fd, int family);

int tm_xport_accept(int lfd, int wake, int timeout_ms, int *fd)
{
	int rc = tm_xport_wait(lfd, wake, timeout_ms);

	if (rc == 0)
		return -ETIMEDOUT;
	if (rc == 2)
		return -ECANCELED;
	if (rc < 0)
		return rc;
	*fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (*fd < 0)
		return -errno;
	tune(*fd, AF_INET);
	return 0;
}

const char *tm_xport_strerror(int rc)
{
	switch (rc) {
	case -ENODATA: return "connection closed by the peer";
	case -EPIPE: return "connection closed by the peer (broken pipe)";
	case -ECONNRESET: return "connection reset by the peer";
	default: return strerror(-rc);
	}
}

/* ---- addresses --------------------------------------------------- */

struct addr {
	int family;
	char host[256];
	char port[16];
	char path[108];
};

static int parse_addr(const char *s, struct addr *a, tm_error *err)
{
	memset(a, 0, sizeof(*a));
	if (strncmp(s, "unix:", 5) == 0) {
		if (strlen(s + 5) == 0 || strlen(s + 5) >= sizeof(a->path))
			return tm_error_set(err, -EINVAL,
				"address '%s': unix path empty or longer than %zu bytes",
				s, sizeof(a->path) - 1);
		a->family = AF_UNIX;
		strcpy(a->path, s + 5);
		return 0;
	}
	if (strncmp(s, "tcp:", 4) == 0) {
		const char *colon = strrchr(s + 4, ':');
		size_t hl = colon ? (size_t)(colon - (s + 4)) : 0;
		char *end;
		long port;

		if (!colon || hl == 0 || hl >= sizeof(a->host))
			return tm_error_set(err, -EINVAL,
				"address '%s': expected tcp:HOST:PORT", s);
		port = strtol(colon + 1, &end, 10);
		if (*end || end == colon + 1 || port < 0 || port > 65535)
			return tm_error_set(err, -EINVAL,
				"address '%s': bad port '%s'", s, colon + 1);
		a->family = AF_INET;
		memcpy(a->host, s + 4, hl);
		if (a->host[0] == '[' && a->host[hl - 1] == ']') {
			memmove(a->host, a->host + 1, hl - 2);
			a->host[hl - 2] = 0;
		}
		snprintf(a->port, sizeof(a->port), "%ld", port);
		return 0;
	}
	return tm_error_set(err, -EINVAL,
		"address '%s': expected tcp:HOST:PORT or unix:PATH", s);
}

int tm_migrate_addr_check(const char *addr, tm_error *err)
{
	struct addr a;

	return parse_addr(addr, &a, err);
}

static int tcp_resolve(const struct addr *a, bool passive,
		       struct addrinfo **res, tm_error *err)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC,
				  .ai_socktype = SOCK_STREAM,
				  .ai_flags = passive ? AI_PASSIVE : 0 };
	int rc = getaddrinfo(a->host, a->port, &hints, res);

	if (rc)
		return tm_error_set(err, -EHOSTUNREACH, "cannot resolve '%s': %s",
				    a->host, gai_strerror(rc));
	return 0;
}

static void tune(int fd, int family)
{
	int one = 1, buf = 4 << 20;

	/* Fails harmlessly on unix sockets. */
	if (family != AF_UNIX)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
}

static int listen_unix(const struct addr *a, int *lfd, tm_error *err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return tm_error_set(err, -errno, "socket: %s", strerror(errno));
	strcpy(sa.sun_path, a->path);
	if (lstat(a->path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(a->path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 64) < 0) {
		int e = errno;

		close(fd);
		return tm_error_set(err, -e, "listen on unix:%s: %s", a->path,
				    strerror(e));
	}
	*lfd = fd;
	return 0;
}

static int listen_tcp(const struct addr *a, int *lfd, tm_error *err)
{
	struct addrinfo *res, *ai;
	int rc, e = 0, one = 1;

	rc = tcp_resolve(a, true, &res, err);
	if (rc)
		return rc;
	for (ai = res; ai; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);

		if (fd < 0) {
			e = errno;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 64) == 0) {
			freeaddrinfo(res);
			*lfd = fd;
			return 0;
		}
		e = errno;
		close(fd);
	}
	freeaddrinfo(res);
	return tm_error_set(err, -e, "listen on tcp:%s:%s: %s", a->host, a->port,
			    strerror(e));
}

int tm_migrate_listen(const char *addr, int *lfd, tm_error *err)
{
	struct addr a;
	int rc = parse_addr(addr, &a, err);

	if (rc)
		return rc;
	return a.family == AF_UNIX ? listen_unix(&a, lfd, err) :
				     listen_tcp(&a, lfd, err);
}

int tm_migrate_listener_addr(int lfd, char *buf, size_t len, tm_error *err)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[INET6_ADDRSTRLEN];

	if (getsockname(lfd, (struct sockaddr *)&ss, &sl) < 0)
		return tm_error_set(err, -errno, "getsockname: %s", strerror(errno));
	if (ss.ss_family == AF_UNIX) {
		snprintf(buf, len, "unix:%s", ((struct sockaddr_un *)&ss)->sun_path);
	} else if (ss.ss_family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
		snprintf(buf, len, "tcp:%s:%u", host, ntohs(s4->sin_port));
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
		snprintf(buf, len, "tcp:[%s]:%u", host, ntohs(s6->sin6_port));
	}
	return 0;
}

/* One connection attempt: 0, or -errno (refused/missing are retried). */
static int connect_once(const struct addr *a, int *out, tm_error *err)
{
	if (a->family == AF_UNIX) {
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (fd < 0)
			return -errno;
		strcpy(sa.sun_path, a->path);
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			int e = errno;

			close(fd);
			return -e;
		}
		tune(fd, AF_UNIX);
		*out = fd;
		return 0;
	}
	struct addrinfo *res, *ai;
	int rc = tcp_resolve(a, false, &res, err), e = ECONNREFUSED;

	if (rc)
		return rc;
	for (ai = res; ai; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);

		if (fd < 0) {
			e = errno;
			continue;
		}
		tune(fd, ai->ai_family);
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
			freeaddrinfo(res);
			*out = fd;
			return 0;
		}
		e = errno;
		close(fd);
	}
	freeaddrinfo(res);
	return -e;
}

static int connect_retry(const struct addr *a, const char *s, int *fd,
			 uint32_t timeout_ms, tm_error *err)
{
	uint64_t deadline = tm_now_ns() + (uint64_t)timeout_ms * 1000000u;

	for (;;) {
		int rc = connect_once(a, fd, err);

		if (rc == 0)
			return 0;
		if (rc == -EHOSTUNREACH && err && err->code)
			return rc;
		bool retry = rc == -ECONNREFUSED || rc == -ENOENT || rc == -EAGAIN;
		if (!retry || tm_now_ns() >= deadline)
			return tm_error_set(err, rc, "connect to %s: %s%s", s,
					    strerror(-rc), retry ? " (gave up waiting)" : "");
		nanosleep(&(struct timespec){ 0, 10 * 1000 * 1000 }, NULL);
	}
}

int tm_migrate_connect(const char *addr, unsigned n, int *fds,
		       uint32_t timeout_ms, tm_error *err)
{
	struct addr a;
	int rc = parse_addr(addr, &a, err);

	if (rc)
		return rc;
	for (unsigned i = 0; i < n; i++) {
		rc = connect_retry(&a, addr, &fds[i], timeout_ms, err);
		if (rc) {
			while (i > 0)
				close(fds[--i]);
			return rc;
		}
	}
	return 0;
}
