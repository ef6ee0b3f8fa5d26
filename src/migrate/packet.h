/*
 * packet.h - page packets: the arrays Juan Quintela asked for (page offsets,
 * their tags, their data) in one checksummed frame, with the page classes
 * normal / tag-only / zero. The source's encoder and the destination's
 * validating decoder share the session description (regions, features,
 * pages per packet) fixed by the negotiation. Buffers are allocated once per
 * channel (tm_pkt_encoder_init / tm_pkt_scratch_init), never per page or
 * packet. Internal.
 */
#ifndef TM_MIGRATE_PACKET_H
#define TM_MIGRATE_PACKET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "migrate/wire.h"

typedef struct tm_pkt_region {
	char name[TM_NAME_LEN];
	uint64_t size;
	tm_geom geom;
	size_t tag_bytes;   /* packed tag bytes per page, 0 without metadata */
} tm_pkt_region;

/* What both sides agreed on. */
typedef struct tm_pkt_session {
	tm_pkt_region region[64];
	uint32_t nregions;
	uint32_t features;  /* TM_FEAT_* */
	uint32_t ppp;       /* pages per packet */
	int level;          /* zstd level */
} tm_pkt_session;

/* Fill the derived fields (tag_bytes) and check the session is usable. */
int tm_pkt_session_init(tm_pkt_session *s, tm_error *err);

/* Largest PAGES payload this session allows (what a receiver allocates). */
size_t tm_pkt_max_payload(const tm_pkt_session *s);

/* A validated packet. Pointers refer to the payload or to the scratch. */
typedef struct tm_pkt {
	uint32_t region;
	uint32_t n_normal, n_tagonly, n_zero;
	const uint8_t *offsets; /* n_normal + n_tagonly + n_zero LE u64 */
	const uint8_t *tags;    /* packed, normal then tag-only pages */
	const uint8_t *data;    /* n_normal pages back to back */
	uint32_t tags_len, data_len, codec;
	size_t meta_len;        /* offsets + tags: 8 n + tags_len */
} tm_pkt;

static inline uint64_t tm_pkt_offset(const tm_pkt *p, uint32_t i)
{
	return tm_get64(p->offsets + 8 * (size_t)i);
}

typedef struct tm_pkt_scratch {
	uint8_t *tags;
	size_t tags_cap;
	uint8_t *data;
	size_t data_cap;
	void *dctx;         /* ZSTD_DCtx */
} tm_pkt_scratch;

int tm_pkt_scratch_init(tm_pkt_scratch *sc, const tm_pkt_session *s,
			tm_error *err);
void tm_pkt_scratch_free(tm_pkt_scratch *sc);

/*
 * Validate a PAGES payload completely (region id, counts against the
 * allocation, lengths, every offset in range, aligned and ascending within
 * its class, the tag codec's and zstd's output sizes, tag values) and decode
 * its tags and data into the scratch. Nothing is written anywhere else, so
 * a packet that fails here has placed no page. Messages name the channel,
 * the packet, the region and the offset. It is the three steps below.
 */
int tm_pkt_decode(const tm_pkt_session *s, const uint8_t *payload, size_t len,
		  unsigned chan, uint64_t seq, tm_pkt_scratch *sc, tm_pkt *out,
		  tm_error *err);

/*
 * The steps, for a receiver that reads a packet in parts (the fixed fields,
 * then offsets and tags, then the data straight into the destination pages):
 *   head: the TM_PKT_FIXED bytes at `fixed` of a payload of len bytes:
 *         region, counts, lengths, codec; fills the counts, tags_len,
 *         data_len, codec and meta_len (the bytes of offsets + tags that
 *         follow the fixed fields);
 *   meta: payload holds the fixed fields and meta_len more bytes: every
 *         offset checked, tags decoded into the scratch;
 *   data: data_len bytes at data: raw (pointed to) or zstd (into scratch).
 * Each reads only what the earlier ones validated.
 */
int tm_pkt_decode_head(const tm_pkt_session *s, const uint8_t *fixed,
		       size_t len, unsigned chan, uint64_t seq, tm_pkt *out,
		       tm_error *err);
int tm_pkt_decode_meta(const tm_pkt_session *s, const uint8_t *payload,
		       unsigned chan, uint64_t seq, tm_pkt_scratch *sc,
		       tm_pkt *pk, tm_error *err);
int tm_pkt_decode_data(const tm_pkt_session *s, const uint8_t *data,
		       unsigned chan, uint64_t seq, tm_pkt_scratch *sc,
		       tm_pkt *pk, tm_error *err);

/* ---- source side ------------------------------------------------- */

typedef struct tm_pkt_encoder {
	const tm_pkt_session *s;
	uint8_t *head;      /* frame header + fixed fields + offsets */
	uint8_t *tagenc;    /* encoded tags */
	size_t tagenc_cap;
	uint8_t *zbuf;      /* compressed data */
	size_t zcap;
	void *cctx;         /* ZSTD_CCtx, with TM_FEAT_ZSTD */
	size_t tags_len;    /* tag section of the last packet encoded */
} tm_pkt_encoder;

int tm_pkt_encoder_init(tm_pkt_encoder *e, const tm_pkt_session *s,
			tm_error *err);
void tm_pkt_encoder_free(tm_pkt_encoder *e);

/* The pages of one packet, already classified by the channel thread. */
typedef struct tm_pkt_pages {
	uint32_t region;
	uint32_t n_normal, n_tagonly, n_zero;
	const uint64_t *off;   /* offsets: normal, then tag-only, then zero */
	const uint8_t *tags;   /* packed tags: normal then tag-only pages */
	const uint8_t *data;   /* n_normal pages back to back, or: */
	const struct iovec *data_iov; /* the n_normal pages as pieces (never
					 compressed), data unused */
	int data_niov;
} tm_pkt_pages;

/*
 * Build a sealed PAGES frame for channel chan with sequence seq. iov[0..*niov)
 * then points into the encoder's buffers and the caller's data; *total is
 * the frame size on the wire.
 */
int tm_pkt_encode(tm_pkt_encoder *e, const tm_pkt_pages *p, unsigned chan,
		  uint64_t seq, struct iovec iov[3], int *niov, size_t *total,
		  tm_error *err);
/* The same with room for iov_cap iovecs: p->data_iov's pieces go out as
 * they are (pages sent straight from region memory); iov_cap must be at
 * least 2 + p->data_niov. */
int tm_pkt_encode_iov(tm_pkt_encoder *e, const tm_pkt_pages *p, unsigned chan,
		      uint64_t seq, struct iovec *iov, int iov_cap, int *niov,
		      size_t *total, tm_error *err);

#endif
