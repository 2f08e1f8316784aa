/*
 * ring_codec.h — the encoding of a sample's frames in the ring, written by
 * the shim's signal handler and read by the collector (struct ring_sample
 * in ring_format.h): the leaf's address as an unsigned LEB128, then each
 * caller's address as the zigzag-encoded difference from the frame before
 * it, as an unsigned LEB128. Nearby code makes small differences: a frame
 * costs two or three bytes instead of eight.
 *
 * Both sides and the tests include this one definition. Every function is
 * async-signal-safe (no allocation, no locks, bounded work) and never
 * reads or writes outside the buffers it is given.
 */
#ifndef PROFSHIM_RING_CODEC_H
#define PROFSHIM_RING_CODEC_H

#include <stddef.h>
#include <stdint.h>

/* The most bytes one encoded address takes. */
#define RING_CODEC_MAX_BYTES 10

/* Write v as an unsigned LEB128 at p; returns the byte after it. */
static inline uint8_t *ring_codec_put(uint8_t *p, uint64_t v)
{
	while (v >= 0x80) {
		*p++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t)v;
	return p;
}

/*
 * Encode n frames, leaf first, into out (room for n *
 * RING_CODEC_MAX_BYTES). Returns the bytes written.
 */
static inline size_t ring_codec_encode(uint8_t *out, const uint64_t *ips,
				       int n)
{
	uint8_t *p = out;
	uint64_t prev = 0;

	for (int i = 0; i < n; i++) {
		uint64_t a = ips[i];

		if (i == 0) {
			p = ring_codec_put(p, a);
		} else {
			int64_t d = (int64_t)(a - prev);

			p = ring_codec_put(p, ((uint64_t)d << 1) ^
						      (uint64_t)(d >> 63));
		}
		prev = a;
	}
	return (size_t)(p - out);
}

/*
 * Decode exactly n frames from the nbytes at p into ips. Returns 0, or -1
 * when the bytes are malformed (cut short, an over-long number, or bytes
 * left over): they come from shared memory anyone of the user can write.
 */
static inline int ring_codec_decode(const uint8_t *p, size_t nbytes,
				    uint64_t *ips, uint32_t n)
{
	const uint8_t *end = p + nbytes;
	uint64_t prev = 0;

	for (uint32_t i = 0; i < n; i++) {
		uint64_t v = 0;
		unsigned shift = 0;

		for (;;) {
			if (p >= end || shift > 63)
				return -1;
			v |= (uint64_t)(*p & 0x7f) << shift;
			shift += 7;
			if (!(*p++ & 0x80))
				break;
		}
		if (i == 0)
			prev = v;
		else
			prev += (uint64_t)((int64_t)(v >> 1) ^ -(int64_t)(v & 1));
		ips[i] = prev;
	}
	return p == end ? 0 : -1;
}

#endif
