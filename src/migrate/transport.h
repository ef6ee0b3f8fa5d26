/*
 * transport.h - byte transport for migration channels: whole-buffer send
 * and receive on stream sockets (no SIGPIPE: a dead peer is an error, not a
 * signal), and waiting for readability with a timeout. Addresses and
 * listen/connect are public (tagmem/migrate.h). Internal.
 */
#ifndef TM_MIGRATE_TRANSPORT_H
#define TM_MIGRATE_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "tagmem/error.h"

/* Send every byte of iov (modified in place). 0 or -errno. */
int tm_xport_sendv(int fd, struct iovec *iov, int niov);
/* Send exactly n bytes. */
int tm_xport_send(int fd, const void *buf, size_t n);
/* Receive exactly the bytes iov describes, scattered (modified in place);
 * -ENODATA when the peer closed before them. */
int tm_xport_recvv(int fd, struct iovec *iov, int niov);
/* Receive exactly n bytes; -ENODATA when the peer closed before them. */
int tm_xport_recv(int fd, void *buf, size_t n);

/* Wait until fd or wake is readable: 1 fd ready, 2 wake ready, 0 timeout,
 * -errno. wake < 0: not watched. timeout_ms < 0: forever. */
int tm_xport_wait(int fd, int wake, int timeout_ms);

/* Accept one connection within timeout_ms, watching wake. -ETIMEDOUT,
 * -ECANCELED (wake fired) or -errno. */
int tm_xport_accept(int lfd, int wake, int timeout_ms, int *fd);

/* Words for an errno from a transport call: "connection closed by peer". */
const char *tm_xport_strerror(int rc);

#endif
