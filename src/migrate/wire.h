/*
 * wire.h - the migration wire format as C: frame header, handshake,
 * negotiation, page packets and control messages, with encoders for the
 * source and validating decoders for the destination. The byte layout is
 * documented in docs/FORMAT.md §migrate; this file and that one change
 * together. Everything on the wire is little-endian. Internal.
 */
#ifndef TM_MIGRATE_WIRE_H
#define TM_MIGRATE_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "tagmem/error.h"
#include "tagmem/tags.h"

#define TM_WIRE_MAGIC      0x474d4d54u  /* "TMMG" in byte order */
#define TM_WIRE_VERSION    1u
#define TM_FRAME_HDR       32u          /* bytes */
#define TM_HELLO_LEN       24u
#define TM_NEG_FIXED       40u
#define TM_NEG_REGION      96u
#define TM_NAME_LEN        64u
#define TM_PKT_FIXED       32u
#define TM_CTRL_MAX        (TM_NEG_FIXED + 64u * TM_NEG_REGION)
#define TM_TEXT_MAX        511u

enum tm_frame_type {
	TM_F_HELLO = 1,     /* every channel, first frame from the source */
	TM_F_NEGOTIATE = 2, /* control: source's session description */
	TM_F_ACCEPT = 3,    /* control: destination agrees */
	TM_F_REJECT = 4,    /* control: destination refuses; text */
	TM_F_PAGES = 5,     /* data: one packet of pages */
	TM_F_END = 6,       /* data: no more packets on this channel */
	TM_F_COMPLETE = 7,  /* control: source sent every pass */
	TM_F_PLACED = 8,    /* control: destination placed every page */
	TM_F_VERIFY = 9,    /* control: source digest */
	TM_F_RESULT = 10,   /* control: destination verdict */
	TM_F_ERROR = 11,    /* control, either way: failure text */
	TM_F_TYPE_MAX = 11,
};

/* Feature bits in the negotiation. Unknown bits are refused. */
enum tm_feature {
	TM_FEAT_CHECKSUM = 1u << 0,      /* data packets carry XXH3-64 */
	TM_FEAT_ZSTD = 1u << 1,          /* data may be zstd-compressed */
	TM_FEAT_TAGS_UNPACKED = 1u << 2, /* tags one per byte, not the codec */
	TM_FEAT_VERIFY = 1u << 3,        /* end-of-migration digest */
	TM_FEAT_ALL = (1u << 4) - 1,
};

enum tm_data_codec { TM_DATA_RAW = 0, TM_DATA_ZSTD = 1 };

typedef struct tm_frame {
	uint16_t type;
	uint16_t channel;
	uint64_t seq;
	uint32_t len;       /* payload bytes */
	uint32_t hcheck;    /* low 32 bits of XXH3-64 of header[0..20): always */
	uint64_t checksum;  /* XXH3-64 of header[0..24) + payload; 0 = none */
} tm_frame;

typedef struct tm_hello {
	uint64_t id[2];
	uint16_t channel;   /* 0 = control, 1..n = data */
	uint16_t nchannels; /* data channels */
} tm_hello;

/* One region as the source describes it. */
typedef struct tm_neg_region {
	char name[TM_NAME_LEN];  /* NUL-terminated */
	uint64_t size;
	tm_geom geom;
} tm_neg_region;

typedef struct tm_neg {
	uint64_t id[2];
	uint32_t nchannels;
	uint32_t features;
	int32_t level;
	uint32_t ppp;
	uint32_t nregions;
	tm_neg_region region[64];
} tm_neg;

/* ---- little-endian fields ---------------------------------------- */
static inline void tm_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}
static inline void tm_put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static inline void tm_put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint16_t tm_get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}
static inline uint32_t tm_get32(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) |
	       ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline uint64_t tm_get64(const uint8_t *p)
{
	return (uint64_t)tm_get32(p) | ((uint64_t)tm_get32(p + 4) << 32);
}

const char *tm_frame_type_name(unsigned type);

/* ---- frames ------------------------------------------------------ */

/* Write the 32-byte header with its header check; the payload checksum is
 * filled by tm_frame_seal once the payload is known. */
void tm_frame_encode(uint8_t hdr[TM_FRAME_HDR], const tm_frame *f);

/* Compute and store the checksum over hdr and the payload pieces. */
void tm_frame_seal(uint8_t hdr[TM_FRAME_HDR], const void *const *piece,
		   const size_t *piece_len, size_t npieces);
/* The same with the payload as iovecs (pages sent from region memory). */
void tm_frame_seal_iov(uint8_t hdr[TM_FRAME_HDR], const struct iovec *iov,
		       int niov);

/*
 * Parse and check a header read from channel `chan`: magic, header check
 * (so a corrupted length is refused before waiting for its bytes), type
 * known, channel field == chan, seq == expect_seq, len <= max_len.
 * The message names the channel and the packet number.
 */
int tm_frame_decode(const uint8_t hdr[TM_FRAME_HDR], unsigned chan,
		    uint64_t expect_seq, uint32_t max_len, tm_frame *f,
		    tm_error *err);

/* Check the checksum of a received frame (header + contiguous payload). */
int tm_frame_check(const uint8_t hdr[TM_FRAME_HDR], const tm_frame *f,
		   const uint8_t *payload, unsigned chan, tm_error *err);
/* The same for a payload received in pieces (part in the packet buffer,
 * part already in the destination pages); the pieces hold f->len bytes. */
int tm_frame_check_iov(const uint8_t hdr[TM_FRAME_HDR], const tm_frame *f,
		       const struct iovec *iov, int niov, unsigned chan,
		       tm_error *err);

/* ---- handshake and negotiation ---------------------------------- */

void tm_hello_encode(uint8_t out[TM_HELLO_LEN], const tm_hello *h);
int tm_hello_decode(const uint8_t *in, size_t len, tm_hello *h,
		    tm_error *err);

/* Encoded size of a negotiation. */
size_t tm_neg_size(const tm_neg *n);
void tm_neg_encode(uint8_t *out, const tm_neg *n);
/* Parse and check the form (not yet against the destination's regions). */
int tm_neg_decode(const uint8_t *in, size_t len, tm_neg *n, tm_error *err);

/* Describe a geometry for messages: "MTE 4b/16B tags" or "none". */
const char *tm_neg_meta_desc(const tm_geom *g, char *buf, size_t len);

#endif
