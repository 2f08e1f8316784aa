/*
 * http_scan.h — byte classes and sixteen-byte scanners of the HTTP/1.x
 * delimiter (private to shim/http_*.c; the interface is http.h).
 *
 * Everything here is static inline: these run for every byte or every block
 * of sixteen bytes in the socket hooks, so each module that uses them must
 * have them inlined, as they were when the delimiter was one file. Same
 * contract as http.h: no allocation, no locks, no stdio, no system calls,
 * and nothing is ever read outside buf[0..len).
 */
#ifndef PROFSHIM_HTTP_SCAN_H
#define PROFSHIM_HTTP_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* ------------------------------------------------------------------------ */
/* Character classes                                                        */
/* ------------------------------------------------------------------------ */

/* Returns true when c is an ASCII decimal digit. */
static inline bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

/* Returns the value of the hex digit c, or -1 when c is not one. */
static inline int hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Byte classes for the fast paths' scans, one table lookup per byte:
 * method bytes, control bytes (which no request line may hold before its
 * end), and the space and '?' that end a path.
 */
#define CC_METHOD 0x01
#define CC_CTL 0x02
#define CC_SPACE 0x04
#define CC_QMARK 0x08

/* A table in a header: each file that uses it has its own 256 bytes. */
static const uint8_t char_class[256] = {
	[0x00 ... 0x1f] = CC_CTL,
	[0x7f] = CC_CTL,
	[' '] = CC_SPACE,
	['?'] = CC_QMARK,
	['A' ... 'Z'] = CC_METHOD,
	['-'] = CC_METHOD,
	['_'] = CC_METHOD,
};

/* Returns true when c is a hex digit of either case. */
static inline bool is_hex(unsigned char c)
{
	return hex_value(c) >= 0;
}

/* Returns true when c is an ASCII letter of either case. */
static inline bool is_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Returns c lowercased when it is an ASCII uppercase letter, else c. */
static inline unsigned char to_lower(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + ('a' - 'A')) : c;
}

/*
 * Returns true when b[0..n) equals the text s[0..n) with ASCII letters
 * compared in any case and every other byte exactly. s holds lowercase
 * letters and bytes below 'a' only: a byte of b ORed with 0x20 equals a
 * lowercase letter exactly when it is that letter in either case.
 */
static inline bool lower_eq(const unsigned char *b, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char w = (unsigned char)s[i];

		if ((w >= 'a' ? (b[i] | 0x20) : b[i]) != w)
			return false;
	}
	return true;
}

/* Returns the 8 bytes at b as one word (any alignment). */
static inline uint64_t load8(const void *b)
{
	uint64_t v;

	memcpy(&v, b, sizeof(v));
	return v;
}

/* Returns the 4 bytes at b as one word (any alignment). */
static inline uint32_t load4(const void *b)
{
	uint32_t v;

	memcpy(&v, b, sizeof(v));
	return v;
}

#define CASE_BITS 0x2020202020202020ull

/*
 * Copies src[0..n) to dst[0..n) in a few fixed-size moves, reading and
 * writing nothing outside those bytes (the last move of each size overlaps
 * the one before it).
 */
static inline void copy_short(char *dst, const unsigned char *src, size_t n)
{
	size_t k = 0;

	if (n >= 16) {
		for (; k + 16 <= n; k += 16)
			memcpy(dst + k, src + k, 16);
		if (k < n)
			memcpy(dst + n - 16, src + n - 16, 16);
	} else if (n >= 8) {
		memcpy(dst, src, 8);
		memcpy(dst + n - 8, src + n - 8, 8);
	} else if (n >= 4) {
		memcpy(dst, src, 4);
		memcpy(dst + n - 4, src + n - 4, 4);
	} else {
		for (; k < n; k++)
			dst[k] = (char)src[k];
	}
}

/*
 * Finds the LFs of b[0..len) sixteen bytes at a time and hands them out in
 * order: one compare per block with SSE2 (every x86-64), a byte loop
 * elsewhere. Nothing outside b[0..len) is read: a last, partial block is
 * loaded as the sixteen bytes that end at b[len] when there are that many.
 */
struct lf_scan {
	const unsigned char *b;
	size_t len;
	size_t base;   /* offset of the block `mask` describes */
	uint32_t mask; /* LFs at base + bit, not handed out yet */
};

/* Bit i is set when b[base + i] is LF, for base + i < len and i < 16. */
static inline uint32_t lf_block(const unsigned char *b, size_t len,
				size_t base)
{
	uint32_t m = 0;

#if defined(__SSE2__)
	const __m128i lf = _mm_set1_epi8('\n');

	if (base + 16 <= len)
		return (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(
			_mm_loadu_si128((const __m128i *)(b + base)), lf));
	if (len >= 16)
		return (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(
			       _mm_loadu_si128((const __m128i *)(b + len - 16)),
			       lf)) >>
		       (base + 16 - len);
#endif
	for (size_t i = base; i < len && i < base + 16; i++)
		m |= (uint32_t)(b[i] == '\n') << (i - base);
	return m;
}

/*
 * Bit i is set when b[base + i] is LF, for base + i < len and i < 64: four
 * blocks of sixteen at once where the buffer has them, so that a run of
 * header lines costs one compare per sixteen bytes and a bit per line.
 * Nothing outside b[0..len) is read.
 */
static inline uint64_t lf_window(const unsigned char *b, size_t len,
				 size_t base)
{
	uint64_t m = 0;
	unsigned k = 0;

#if defined(__SSE2__)
	const __m128i lf = _mm_set1_epi8('\n');

	if (base + 64 <= len) {
		const __m128i *p = (const __m128i *)(b + base);

		m = (uint32_t)_mm_movemask_epi8(
			_mm_cmpeq_epi8(_mm_loadu_si128(p), lf));
		m |= (uint64_t)(uint32_t)_mm_movemask_epi8(
			     _mm_cmpeq_epi8(_mm_loadu_si128(p + 1), lf))
		     << 16;
		m |= (uint64_t)(uint32_t)_mm_movemask_epi8(
			     _mm_cmpeq_epi8(_mm_loadu_si128(p + 2), lf))
		     << 32;
		m |= (uint64_t)(uint32_t)_mm_movemask_epi8(
			     _mm_cmpeq_epi8(_mm_loadu_si128(p + 3), lf))
		     << 48;
		return m;
	}
	if (len >= 16) {
		/* Whole blocks, then the last bytes as the block that ends
		 * at b[len], shifted. */
		for (; k < 64 && base + k + 16 <= len; k += 16)
			m |= (uint64_t)(uint32_t)_mm_movemask_epi8(
				     _mm_cmpeq_epi8(_mm_loadu_si128(
					     (const __m128i *)(b + base + k)),
						    lf))
			     << k;
		if (k < 64 && base + k < len)
			m |= (uint64_t)((uint32_t)_mm_movemask_epi8(
						_mm_cmpeq_epi8(
							_mm_loadu_si128(
								(const __m128i
									 *)(b + len -
									    16)),
							lf)) >>
					(base + k + 16 - len))
			     << k;
		return m;
	}
#endif
	for (; k < 64 && base + k < len; k++)
		m |= (uint64_t)(b[base + k] == '\n') << k;
	return m;
}

/*
 * What a request target's scan needs of the sixteen bytes at b[base]
 * (fewer at the end of b[0..len)): bit i of *end is set when b[base + i] is
 * a control byte or a space (either ends the target), of *qmark when it is
 * '?', of *slash when it is '/'.
 */
static inline void target_block(const unsigned char *b, size_t len,
				size_t base, uint32_t *end, uint32_t *qmark,
				uint32_t *slash)
{
	uint32_t e = 0, q = 0, sl = 0;
	size_t i;

#if defined(__SSE2__)
	if (len >= 16) {
		size_t at = base + 16 <= len ? base : len - 16;
		unsigned shift = (unsigned)(base - at);
		__m128i x = _mm_loadu_si128((const __m128i *)(b + at));
		__m128i ctl = _mm_or_si128(
			_mm_cmpeq_epi8(_mm_min_epu8(x, _mm_set1_epi8(0x1f)), x),
			_mm_cmpeq_epi8(x, _mm_set1_epi8(0x7f)));

		*end = (uint32_t)_mm_movemask_epi8(_mm_or_si128(
			       ctl, _mm_cmpeq_epi8(x, _mm_set1_epi8(' ')))) >>
		       shift;
		*qmark = (uint32_t)_mm_movemask_epi8(
				 _mm_cmpeq_epi8(x, _mm_set1_epi8('?'))) >>
			 shift;
		*slash = (uint32_t)_mm_movemask_epi8(
				 _mm_cmpeq_epi8(x, _mm_set1_epi8('/'))) >>
			 shift;
		return;
	}
#endif
	for (i = base; i < len && i < base + 16; i++) {
		uint32_t bit = 1u << (i - base);

		if (char_class[b[i]] & (CC_CTL | CC_SPACE))
			e |= bit;
		if (b[i] == '?')
			q |= bit;
		if (b[i] == '/')
			sl |= bit;
	}
	*end = e;
	*qmark = q;
	*slash = sl;
}

/* Starts handing out the LFs of b[0..len) from offset `from` on. */
static inline void lf_start(struct lf_scan *s, const unsigned char *b,
			    size_t len, size_t from)
{
	s->b = b;
	s->len = len;
	s->base = from;
	s->mask = from < len ? lf_block(b, len, from) : 0;
}

/* Returns the offset of the next LF not handed out yet, or len. */
static inline size_t lf_next(struct lf_scan *s)
{
	size_t at;

	while (!s->mask) {
		if (s->len - s->base <= 16) {
			s->base = s->len;
			return s->len;
		}
		s->base += 16;
		s->mask = lf_block(s->b, s->len, s->base);
	}
	at = s->base + (size_t)__builtin_ctz(s->mask);
	s->mask &= s->mask - 1;
	return at;
}

/*
 * Returns true when the 15 bytes at b are "content-length:" in any case.
 * Eight bytes at a time: ORing 0x20 lowercases a letter and leaves '-' and
 * ':' alone, but also turns CR into '-' and SUB into ':', so those two
 * positions are checked exactly.
 */
static inline bool is_cl_name(const unsigned char *b)
{
	return (load8(b) | CASE_BITS) == load8("content-") &&
	       (load8(b + 7) | CASE_BITS) == load8("-length:") &&
	       b[7] == '-' && b[14] == ':';
}

/* Same for the 18 bytes "transfer-encoding:". */
static inline bool is_te_name(const unsigned char *b)
{
	return (load8(b) | CASE_BITS) == load8("transfer") &&
	       (load8(b + 8) | CASE_BITS) == load8("-encodin") &&
	       (load8(b + 10) | CASE_BITS) == load8("ncoding:") &&
	       b[8] == '-' && b[17] == ':';
}

/* Returns true when c is optional whitespace (SP or HTAB). */
static inline bool is_ows(unsigned char c)
{
	return c == ' ' || c == '\t';
}

/* Returns true when c is an ASCII control byte (0x00-0x1f or DEL). */
static inline bool is_ctl(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

/* Returns true when c may appear in a method: uppercase letters, '-', '_'. */
static inline bool is_method_char(unsigned char c)
{
	return char_class[c] & CC_METHOD;
}

/* Returns true when c may follow the first letter of a URI scheme. */
static inline bool is_scheme_char(unsigned char c)
{
	return is_alpha(c) || is_digit(c) || c == '+' || c == '-' || c == '.';
}

#endif /* PROFSHIM_HTTP_SCAN_H */
