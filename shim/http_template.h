/*
 * http_template.h — the streaming path templater of the HTTP/1.x delimiter
 * (private to shim/http_*.c; http_template_path() in http.h is its public
 * form).
 *
 * The request parser gives it a path a byte at a time (tpl_byte()), or a
 * whole origin-form path at once on its fast path (tpl_path_whole()); the
 * same steps make http_template_path(), so both always agree. Everything is
 * static inline: the request parser runs these steps for every path byte,
 * and tpl_path_whole() on its fast path (as a call into another file, it
 * cost http_req_feed() 2 instructions a request, even on requests whose
 * plain path never calls it). Same contract as http.h: no allocation, no
 * locks, no stdio, no system calls, bounded work per byte.
 */
#ifndef PROFSHIM_HTTP_TEMPLATE_H
#define PROFSHIM_HTTP_TEMPLATE_H

#include "http.h"
#include "http_scan.h"

/*
 * The templater writes into out[0..cap) and keeps a position that saturates
 * at cap + 1, so that a segment that began before the end of the buffer can
 * still be rewound and rewritten as ":id", while everything past the end is
 * dropped. The result is exactly the full templated path truncated to cap
 * bytes. seg_flags holds what the current segment may still be.
 */
#define SEG_DIGITS 0x01 /* every byte so far is a decimal digit */
#define SEG_HEX 0x02    /* every byte so far is a hex digit */
#define SEG_UUID 0x04   /* the bytes so far match 8-4-4-4-12 hex */
#define SEG_ALL (SEG_DIGITS | SEG_HEX | SEG_UUID)
#define TPL_FED 0x80    /* at least one path byte was given */

#define UUID_LEN 36
#define HEX_ID_MIN 16

/* Appends c at the output position, dropping it past the end of out. */
static inline void tpl_put(struct http_tpl_state *t, char *out, size_t cap,
			   char c)
{
	if (t->pos < cap)
		out[t->pos] = c;
	if (t->pos <= cap)
		t->pos++;
}

/* Starts a new segment at the current output position. */
static inline void tpl_seg_begin(struct http_tpl_state *t)
{
	t->seg_pos = t->pos;
	t->seg_len = 0;
	t->seg_flags = (uint8_t)((t->seg_flags & TPL_FED) | SEG_ALL);
}

/*
 * Starts templating a path whose output begins at position base of the
 * buffer. Whatever was written before base is left alone.
 */
static inline void tpl_begin(struct http_tpl_state *t, size_t base)
{
	t->pos = base;
	t->seg_flags = 0;
	tpl_seg_begin(t);
}

/* Returns true when the UUID form has a '-' at segment offset i. */
static inline bool uuid_dash_at(unsigned i)
{
	return i == 8 || i == 13 || i == 18 || i == 23;
}

/* Narrows what the current segment can be, given its next byte c. */
static inline void tpl_classify(struct http_tpl_state *t, unsigned char c)
{
	unsigned i = t->seg_len;

	if (!is_digit(c))
		t->seg_flags &= (uint8_t)~SEG_DIGITS;
	if (!is_hex(c))
		t->seg_flags &= (uint8_t)~SEG_HEX;
	if (i >= UUID_LEN || (uuid_dash_at(i) ? c != '-' : !is_hex(c)))
		t->seg_flags &= (uint8_t)~SEG_UUID;
	if (t->seg_len < UINT8_MAX)
		t->seg_len++;
}

/* Returns true when the finished current segment is an id. */
static inline bool tpl_seg_is_id(const struct http_tpl_state *t)
{
	if (t->seg_len == 0)
		return false;
	if (t->seg_flags & SEG_DIGITS)
		return true;
	if ((t->seg_flags & SEG_HEX) && t->seg_len >= HEX_ID_MIN)
		return true;
	return (t->seg_flags & SEG_UUID) && t->seg_len == UUID_LEN;
}

/* Rewrites the current segment, from where it began, as ":id". */
static inline void tpl_put_id(struct http_tpl_state *t, char *out, size_t cap)
{
	t->pos = t->seg_pos;
	tpl_put(t, out, cap, ':');
	tpl_put(t, out, cap, 'i');
	tpl_put(t, out, cap, 'd');
}

/* Ends the current segment, rewriting it as ":id" when it is an id. */
static inline void tpl_seg_end(struct http_tpl_state *t, char *out,
			       size_t cap)
{
	if (tpl_seg_is_id(t))
		tpl_put_id(t, out, cap);
}

/*
 * The path goes on past the bytes the templater keeps: the segment being cut
 * becomes ":id" when what it holds could still begin an id (all digits, all
 * hex, or a UUID's first bytes), since its end, which would tell, is never
 * seen. The templater takes no further byte.
 */
static inline void tpl_cut(struct http_tpl_state *t, char *out, size_t cap)
{
	if (t->seg_len && (t->seg_flags & SEG_ALL))
		tpl_put_id(t, out, cap);
	t->seg_len = 0;
	t->seg_flags &= TPL_FED;
}

/* Gives the templater the next path byte c. */
static inline void tpl_byte(struct http_tpl_state *t, char *out, size_t cap,
			    unsigned char c)
{
	t->seg_flags |= TPL_FED;
	if (c == '/') {
		tpl_seg_end(t, out, cap);
		tpl_put(t, out, cap, '/');
		tpl_seg_begin(t);
		return;
	}
	tpl_classify(t, c);
	tpl_put(t, out, cap, (char)c);
}

/*
 * Returns true when the path segment s[0..n) may be an id that the
 * templater rewrites: ids start with a digit, or are 16 or more bytes
 * starting with a hex digit (tpl_seg_is_id() decides).
 */
static inline bool seg_may_be_id(const unsigned char *s, size_t n)
{
	return n > 0 && (is_digit(s[0]) || (n >= HEX_ID_MIN && is_hex(s[0])));
}

/*
 * Ends the path: templates its last segment (or writes "/" for an empty
 * path), NUL-terminates out at out[min(pos, cap)] and returns that length.
 * out must have room for cap + 1 bytes.
 */
static inline size_t tpl_finish(struct http_tpl_state *t, char *out,
				size_t cap)
{
	size_t n;

	if (t->seg_flags & TPL_FED)
		tpl_seg_end(t, out, cap);
	else
		tpl_put(t, out, cap, '/');
	n = t->pos < cap ? t->pos : cap;
	out[n] = '\0';
	return n;
}

/*
 * Starts a segment at the output position and classifies its bytes
 * s[from..to), writing none of them: what tpl_byte() finds of them.
 */
static inline void tpl_seg_classify(struct http_tpl_state *t,
				    const unsigned char *s, size_t from,
				    size_t to)
{
	t->seg_pos = t->pos;
	t->seg_len = 0;
	t->seg_flags = SEG_ALL;
	for (size_t j = from; j < to; j++)
		tpl_classify(t, s[j]);
}

/* Words of the slash map tpl_path_whole() is given: a bit for each byte
 * of a path as long as the templater keeps. */
#define TPL_SLASH_WORDS ((HTTP_TARGET_MAX + 63) / 64)

/*
 * The offset of the first '/' of s[i..n) by the slash map (bit j of
 * slashes[j / 64] set when s[j] is '/', for j < n <= HTTP_TARGET_MAX), or
 * n when there is none.
 */
static inline size_t tpl_next_slash(const uint64_t *slashes, size_t i,
				    size_t n)
{
	size_t w = i / 64;
	uint64_t m = slashes[w] & (~0ull << (i % 64));

	while (!m) {
		if (++w == TPL_SLASH_WORDS)
			return n;
		m = slashes[w];
	}
	i = w * 64 + (size_t)__builtin_ctzll(m);
	return i < n ? i : n;
}

/*
 * Templates a whole origin-form path s[0..n) (it starts with '/') into
 * out[0..cap) from the position t->pos, NUL-terminates it and returns its
 * length: the same result as giving every byte to tpl_byte() (up to
 * HTTP_TARGET_MAX, then tpl_cut()) and then calling tpl_finish(), but a
 * segment at a time, its end found in the slash map (tpl_next_slash()). A
 * segment can be an id only if it starts with a digit, or is 16 or more
 * bytes long and starts with a hex digit; only those are looked at byte by
 * byte (all digits, the usual id, in one loop), the others are copied.
 */
static inline size_t tpl_path_whole(struct http_tpl_state *t, char *out,
				    size_t cap, const unsigned char *s,
				    size_t n,
				    const uint64_t slashes[TPL_SLASH_WORDS])
{
	bool cut = n > HTTP_TARGET_MAX;
	size_t i = 0;

	if (cut)
		n = HTTP_TARGET_MAX;
	while (i < n) {
		size_t start = i, len, room, j;

		if (s[i] == '/') {
			tpl_put(t, out, cap, '/');
			i++;
			continue;
		}
		i = tpl_next_slash(slashes, i, n);
		len = i - start;
		if (cut && i == n) {
			/* The segment the limit cuts (tpl_cut()). */
			tpl_seg_classify(t, s, start, i);
			if (t->seg_flags & SEG_ALL) {
				tpl_cut(t, out, cap);
				continue;
			}
		} else if (seg_may_be_id(s + start, len)) {
			for (j = start; j < i && is_digit(s[j]); j++)
				;
			if (j == i) {
				t->seg_pos = t->pos;
				tpl_put_id(t, out, cap);
				continue;
			}
			tpl_seg_classify(t, s, start, i);
			if (tpl_seg_is_id(t)) {
				tpl_seg_end(t, out, cap);
				continue;
			}
		}
		room = t->pos < cap ? cap - t->pos : 0;
		copy_short(out + t->pos, s + start, len < room ? len : room);
		t->pos = t->pos + len > cap ? cap + 1 : t->pos + len;
	}
	n = t->pos < cap ? t->pos : cap;
	out[n] = '\0';
	return n;
}

#endif /* PROFSHIM_HTTP_TEMPLATE_H */
