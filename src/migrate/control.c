/*
 * control.c - framed messages on the control channel and the handshake on
 * every channel. Control frames are always checksummed: they are few and
 * they decide whether pages move at all.
 */
#include <errno.h>
#include <string.h>

#include "migrate/internal.h"
#include "migrate/transport.h"

int tm_frame_send(int fd, uint16_t type, uint16_t chan, uint64_t seq,
		  const void *p, uint32_t len, tm_error *err)
{
	uint8_t hdr[TM_FRAME_HDR];
	tm_frame f = { .type = type, .channel = chan, .seq = seq, .len = len };
	const void *pc[1] = { p };
	size_t pl[1] = { len };
	struct iovec iov[2] = { { hdr, sizeof(hdr) }, { (void *)p, len } };
	int rc;

	tm_frame_encode(hdr, &f);
	tm_frame_seal(hdr, pc, pl, 1);
	rc = tm_xport_sendv(fd, iov, len ? 2 : 1);
	if (rc)
		return tm_error_set(err, rc, "channel %u: sending %s: %s", chan,
				    tm_frame_type_name(type), tm_xport_strerror(rc));
	return 0;
}

int tm_frame_recv(int fd, unsigned chan, uint64_t seq, uint8_t *buf,
		  uint32_t cap, tm_frame *f, int wake, int timeout_ms,
		  tm_error *err)
{
	uint8_t hdr[TM_FRAME_HDR];
	int rc = tm_xport_wait(fd, wake, timeout_ms);

	if (rc == 0)
		return tm_error_set(err, -ETIMEDOUT,
			"channel %u: nothing received for %d ms", chan, timeout_ms);
	if (rc == 2)
		return -ECANCELED;
	if (rc > 0)
		rc = tm_xport_recv(fd, hdr, sizeof(hdr));
	if (rc == 0)
		rc = tm_frame_decode(hdr, chan, seq, cap, f, err);
	else
		return tm_error_set(err, rc, "channel %u: receiving: %s", chan,
				    tm_xport_strerror(rc));
	if (rc)
		return rc;
	rc = tm_xport_recv(fd, buf, f->len);
	if (rc)
		return tm_error_set(err, rc, "channel %u: receiving %s payload: %s",
				    chan, tm_frame_type_name(f->type),
				    tm_xport_strerror(rc));
	return tm_frame_check(hdr, f, buf, chan, err);
}

int tm_ctrl_send(struct tm_migration *m, uint16_t type, const void *p,
		 uint32_t len, tm_error *err)
{
	int rc = tm_frame_send(m->fd[0], type, 0, m->ctrl_out, p, len, err);

	if (rc == 0) {
		m->ctrl_out++;
		atomic_fetch_add(&m->ctrl_bytes, TM_FRAME_HDR + len);
	}
	return rc;
}

int tm_ctrl_recv(struct tm_migration *m, tm_frame *f, uint8_t *buf,
		 uint32_t cap, int timeout_ms, tm_error *err)
{
	const char *peer = m->role == TM_MIGRATE_SOURCE ? "destination" : "source";
	int rc = tm_frame_recv(m->fd[0], 0, m->ctrl_in, buf, cap, f, m->wake[0],
			       timeout_ms, err);

	if (rc == -ENODATA || rc == -ECONNRESET || rc == -EPIPE)
		return tm_error_set(err, rc,
			"control channel: the %s closed the connection", peer);
	if (rc)
		return rc;
	m->ctrl_in++;
	atomic_fetch_add(&m->ctrl_bytes, TM_FRAME_HDR + f->len);
	if (f->type == TM_F_ERROR || f->type == TM_F_REJECT) {
		uint32_t n = f->len < TM_TEXT_MAX ? f->len : TM_TEXT_MAX;
		char text[TM_TEXT_MAX + 1];

		memcpy(text, buf, n);
		text[n] = 0;
		return tm_error_set(err, f->type == TM_F_REJECT ? -EPROTO : -ECONNABORTED,
				    "%s %s: %s", peer,
				    f->type == TM_F_REJECT ? "refused the migration" :
				    "reports", text);
	}
	return 0;
}

int tm_ctrl_wait(struct tm_migration *m, tm_frame *f, uint8_t *buf,
		 uint32_t cap, int timeout_ms, tm_error *err)
{
	for (;;) {
		int rc = tm_ctrl_recv(m, f, buf, cap, timeout_ms, err);

		if (rc != -ECANCELED || tm_mig_stopping(m))
			return rc;
		tm_mig_drain_wake(m);
	}
}
