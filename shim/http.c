/*
 * http.c — incremental HTTP/1.x delimiter (see http.h for the interface).
 *
 * Everything here is a byte-at-a-time state machine over caller-owned state:
 * no allocation, no locks, no system calls, and no library calls but
 * memchr(), memcmp() and memcpy(). Each byte costs a bounded amount of
 * work; a body or chunk payload is skipped in one step per call whatever
 * its size. Nothing is ever read outside buf[0..len), and nothing but the
 * method, the templated path and the status is kept. A call goes on to the
 * end of one message, so the hooks make one call per request and per
 * response in the usual case of a message read or written whole.
 *
 * Fast paths. The state machine is the definition; on top of it, fast
 * paths take the usual case whole when it is in the buffer: a request's
 * head from its first byte (req_head_fast: request line in origin form,
 * header lines, body framing), a response's head (resp_head_fast), and
 * header lines wherever one starts (hdr_lines_fast), where only
 * Content-Length is looked into and every other line is skipped whole.
 * LFs, and the bytes that end a path, are found sixteen bytes at a time
 * (SSE2; a byte loop on other machines). A fast path either consumes
 * complete lines and leaves exactly the state the byte-at-a-time path
 * would have left, or consumes nothing and hands the line to it; so feeding
 * a message byte by byte (which never takes a fast path) and all at once
 * must give the same events and outputs, which the unit tests and the fuzz
 * target check.
 *
 * Layout:
 *   - character classes and the path templater (shared by http_req_feed()
 *     and http_template_path(), so both always agree);
 *   - header and body framing (struct http_msg_state), shared by requests
 *     and responses: Content-Length, Transfer-Encoding, chunked coding with
 *     extensions and trailers, and bodies that last until the close;
 *   - the request line parser and http_req_feed();
 *   - the status line parser, http_resp_feed() and http_resp_skip().
 *
 * Leniency: a bare LF ends any line where CRLF is expected. At the end of
 * the request line, and in status, header and trailer lines, a stray CR is
 * ignored; in chunk framing a CR must be followed by LF. Everything that frames a
 * message (method, version, Content-Length, chunk sizes) is checked strictly,
 * since a mistake there would desynchronise every later message on the
 * connection; headers that do not frame anything are skipped unread.
 *
 * Two choices beyond the letter of http.h: a 101 (Switching Protocols)
 * response is reported like a final status and followed by a body that lasts
 * until the close, since no HTTP comes after it; and a request whose last
 * transfer coding is not chunked is an error, since its length is unknowable.
 */
#include "http.h"

#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* ------------------------------------------------------------------------ */
/* Character classes                                                        */
/* ------------------------------------------------------------------------ */

/* Returns true when c is an ASCII decimal digit. */
static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

/* Returns the value of the hex digit c, or -1 when c is not one. */
static int hex_value(unsigned char c)
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
static bool is_hex(unsigned char c)
{
	return hex_value(c) >= 0;
}

/* Returns true when c is an ASCII letter of either case. */
static bool is_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Returns c lowercased when it is an ASCII uppercase letter, else c. */
static unsigned char to_lower(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + ('a' - 'A')) : c;
}

/*
 * Returns true when b[0..n) equals the text s[0..n) with ASCII letters
 * compared in any case and every other byte exactly. s holds lowercase
 * letters and bytes below 'a' only: a byte of b ORed with 0x20 equals a
 * lowercase letter exactly when it is that letter in either case.
 */
static bool lower_eq(const unsigned char *b, const char *s, size_t n)
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
static bool is_ows(unsigned char c)
{
	return c == ' ' || c == '\t';
}

/* Returns true when c is an ASCII control byte (0x00-0x1f or DEL). */
static bool is_ctl(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

/* Returns true when c may appear in a method: uppercase letters, '-', '_'. */
static bool is_method_char(unsigned char c)
{
	return char_class[c] & CC_METHOD;
}

/* Returns true when c may follow the first letter of a URI scheme. */
static bool is_scheme_char(unsigned char c)
{
	return is_alpha(c) || is_digit(c) || c == '+' || c == '-' || c == '.';
}

/* Largest Content-Length accepted: what fits in an off_t. */
#define MAX_CONTENT_LENGTH ((uint64_t)INT64_MAX)

/* ------------------------------------------------------------------------ */
/* Path templater                                                           */
/* ------------------------------------------------------------------------ */

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
static void tpl_put(struct http_tpl_state *t, char *out, size_t cap, char c)
{
	if (t->pos < cap)
		out[t->pos] = c;
	if (t->pos <= cap)
		t->pos++;
}

/* Starts a new segment at the current output position. */
static void tpl_seg_begin(struct http_tpl_state *t)
{
	t->seg_pos = t->pos;
	t->seg_len = 0;
	t->seg_flags = (uint8_t)((t->seg_flags & TPL_FED) | SEG_ALL);
}

/*
 * Starts templating a path whose output begins at position base of the
 * buffer. Whatever was written before base is left alone.
 */
static void tpl_begin(struct http_tpl_state *t, size_t base)
{
	t->pos = base;
	t->seg_flags = 0;
	tpl_seg_begin(t);
}

/* Returns true when the UUID form has a '-' at segment offset i. */
static bool uuid_dash_at(unsigned i)
{
	return i == 8 || i == 13 || i == 18 || i == 23;
}

/* Narrows what the current segment can be, given its next byte c. */
static void tpl_classify(struct http_tpl_state *t, unsigned char c)
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
static bool tpl_seg_is_id(const struct http_tpl_state *t)
{
	if (t->seg_len == 0)
		return false;
	if (t->seg_flags & SEG_DIGITS)
		return true;
	if ((t->seg_flags & SEG_HEX) && t->seg_len >= HEX_ID_MIN)
		return true;
	return (t->seg_flags & SEG_UUID) && t->seg_len == UUID_LEN;
}

/* Ends the current segment, rewriting it as ":id" when it is an id. */
static void tpl_seg_end(struct http_tpl_state *t, char *out, size_t cap)
{
	if (!tpl_seg_is_id(t))
		return;
	t->pos = t->seg_pos;
	tpl_put(t, out, cap, ':');
	tpl_put(t, out, cap, 'i');
	tpl_put(t, out, cap, 'd');
}

/*
 * The path goes on past the bytes the templater keeps: the segment being cut
 * becomes ":id" when what it holds could still begin an id (all digits, all
 * hex, or a UUID's first bytes), since its end, which would tell, is never
 * seen. The templater takes no further byte.
 */
static void tpl_cut(struct http_tpl_state *t, char *out, size_t cap)
{
	if (t->seg_len && (t->seg_flags & SEG_ALL)) {
		t->pos = t->seg_pos;
		tpl_put(t, out, cap, ':');
		tpl_put(t, out, cap, 'i');
		tpl_put(t, out, cap, 'd');
	}
	t->seg_len = 0;
	t->seg_flags &= TPL_FED;
}

/* Gives the templater the next path byte c. */
static void tpl_byte(struct http_tpl_state *t, char *out, size_t cap,
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
 * Templates a whole origin-form path s[0..n) (it starts with '/') into
 * out[0..cap) from the position t->pos, NUL-terminates it and returns its
 * length: the same result as giving every byte to tpl_byte() (up to
 * HTTP_TARGET_MAX, then tpl_cut()) and then calling tpl_finish(), but a
 * segment at a time. A segment can be an id only
 * if it starts with a digit, or is 16 or more bytes long and starts with a
 * hex digit; only those are looked at byte by byte, the others are copied.
 */
static size_t tpl_path_whole(struct http_tpl_state *t, char *out, size_t cap,
			     const unsigned char *s, size_t n)
{
	bool cut = n > HTTP_TARGET_MAX;
	size_t i = 0;

	if (cut)
		n = HTTP_TARGET_MAX;
	while (i < n) {
		size_t start = i, len, room;

		if (s[i] == '/') {
			tpl_put(t, out, cap, '/');
			i++;
			continue;
		}
		while (i < n && s[i] != '/')
			i++;
		len = i - start;
		if (cut && i == n) {
			/* The segment the limit cuts (tpl_cut()). */
			t->seg_pos = t->pos;
			t->seg_len = 0;
			t->seg_flags = SEG_ALL;
			for (size_t j = start; j < i; j++)
				tpl_classify(t, s[j]);
			if (t->seg_flags & SEG_ALL) {
				tpl_cut(t, out, cap);
				continue;
			}
		} else if (seg_may_be_id(s + start, len)) {
			t->seg_pos = t->pos;
			t->seg_len = 0;
			t->seg_flags = SEG_ALL;
			for (size_t j = start; j < i; j++)
				tpl_classify(t, s[j]);
			if (tpl_seg_is_id(t)) {
				tpl_seg_end(t, out, cap);
				continue;
			}
		}
		room = t->pos < cap ? cap - t->pos : 0;
		memcpy(out + t->pos, s + start, len < room ? len : room);
		t->pos = t->pos + len > cap ? cap + 1 : t->pos + len;
	}
	n = t->pos < cap ? t->pos : cap;
	out[n] = '\0';
	return n;
}

/*
 * Ends the path: templates its last segment (or writes "/" for an empty
 * path), NUL-terminates out at out[min(pos, cap)] and returns that length.
 * out must have room for cap + 1 bytes.
 */
static size_t tpl_finish(struct http_tpl_state *t, char *out, size_t cap)
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

size_t http_template_path(const char *path, size_t len, char *out,
			  size_t outsz)
{
	const unsigned char *s = (const unsigned char *)path;
	struct http_tpl_state t;
	size_t i;

	if (outsz == 0)
		return 0;
	tpl_begin(&t, 0);
	/*
	 * A query string is never part of a path, and a NUL cannot be part of
	 * the C string returned: the path ends at the first '?' or NUL.
	 */
	for (i = 0; i < len && s[i] != '?' && s[i] != '\0'; i++) {
		if (i == HTTP_TARGET_MAX) {
			tpl_cut(&t, out, outsz - 1);
			break;
		}
		tpl_byte(&t, out, outsz - 1, s[i]);
	}
	return tpl_finish(&t, out, outsz - 1);
}

/* ------------------------------------------------------------------------ */
/* Header and body framing                                                  */
/* ------------------------------------------------------------------------ */

/* States of struct http_msg_state; zero is "at the start of a header line". */
enum msg_state {
	M_LINE_START = 0, /* start of a header line, or of the empty line */
	M_NAME,           /* in a header name */
	M_SKIP_LINE,      /* in a line that does not matter, until LF */
	M_CL_VALUE,       /* in a Content-Length value */
	M_TE_VALUE,       /* in a Transfer-Encoding value */
	M_CHUNK_SIZE,     /* in a chunk size */
	M_CHUNK_WS,       /* whitespace after a chunk size */
	M_CHUNK_EXT,      /* in chunk extensions, until LF */
	M_CHUNK_CR,       /* CR after a chunk size: LF must follow */
	M_CHUNK_DATA,     /* in chunk data: remaining bytes to skip */
	M_CHUNK_END,      /* after chunk data: CRLF or LF must follow */
	M_CHUNK_END_CR,   /* CR after chunk data: LF must follow */
	M_TRAILER_START,  /* start of a trailer line, or of the empty line */
	M_TRAILER_LINE,   /* in a trailer line, until LF */
	M_BODY_LENGTH,    /* in a Content-Length body: remaining bytes */
	M_BODY_CLOSE,     /* in a body that lasts until the close */
};

/* struct http_msg_state.flags: what the headers said so far. */
#define MF_LENGTH 0x01  /* a Content-Length was seen; remaining holds it */
#define MF_TE 0x02      /* a Transfer-Encoding with codings was seen */
#define MF_CHUNKED 0x04 /* the last transfer coding is chunked */

/* aux in M_NAME: the header names the current name may still be. */
#define NAME_CL 0x01
#define NAME_TE 0x02

/* aux in M_CL_VALUE. */
#define CLV_DIGITS 0x01 /* digits were seen */
#define CLV_AFTER 0x02  /* whitespace followed the digits */

/* aux in M_TE_VALUE: the current coding and the last complete one. */
#define TOK_ANY 0x01          /* the current coding has a byte */
#define TOK_BAD 0x02          /* the current coding is not "chunked" */
#define TOK_WS 0x04           /* whitespace followed the current coding */
#define TOK_SEEN 0x08         /* this header listed at least one coding */
#define TOK_LAST_CHUNKED 0x10 /* the last complete coding was "chunked" */

/* aux in M_CHUNK_SIZE. */
#define CHUNK_DIGITS 0x01

/* What the framing layer tells the request or response parser. */
enum msg_event {
	MSG_NONE = 0,
	MSG_HEADERS_END, /* the empty line ending the headers was consumed */
	MSG_DONE,        /* the body ended */
	MSG_ERROR,       /* malformed framing */
};

static const char name_cl[] = "content-length";
static const char name_te[] = "transfer-encoding";
static const char coding_chunked[] = "chunked";

#define NAME_CL_LEN (sizeof(name_cl) - 1)
#define NAME_TE_LEN (sizeof(name_te) - 1)
#define CHUNKED_LEN (sizeof(coding_chunked) - 1)

/* Resets m to "expecting the first header line". */
static void msg_init(struct http_msg_state *m)
{
	m->remaining = 0;
	m->value = 0;
	m->state = M_LINE_START;
	m->flags = 0;
	m->idx = 0;
	m->aux = 0;
}

/* Moves m to state s with its scratch fields cleared. */
static void msg_enter(struct http_msg_state *m, uint8_t s)
{
	m->state = s;
	m->idx = 0;
	m->aux = 0;
	m->value = 0;
}

/* Narrows the candidate header names with byte c at offset m->idx. */
static void hdr_name_match(struct http_msg_state *m, unsigned char c)
{
	unsigned i = m->idx;

	c = to_lower(c);
	if (i >= NAME_CL_LEN || c != (unsigned char)name_cl[i])
		m->aux &= (uint8_t)~NAME_CL;
	if (i >= NAME_TE_LEN || c != (unsigned char)name_te[i])
		m->aux &= (uint8_t)~NAME_TE;
	if (m->idx < UINT8_MAX)
		m->idx++;
}

/* Handles the first byte of a header line. */
static enum msg_event hdr_line_start(struct http_msg_state *m,
				     unsigned char c)
{
	if (c == '\n')
		return MSG_HEADERS_END;
	if (c == '\r')
		return MSG_NONE;
	if (is_ows(c) || c == ':') {
		/* An obsolete line folding or an empty name: not of interest. */
		msg_enter(m, M_SKIP_LINE);
		return MSG_NONE;
	}
	msg_enter(m, M_NAME);
	m->aux = NAME_CL | NAME_TE;
	hdr_name_match(m, c);
	return MSG_NONE;
}

/* Handles a byte of a header name: the colon picks the value parser. */
static enum msg_event hdr_name(struct http_msg_state *m, unsigned char c)
{
	if (c == '\n') {
		/* A line without a colon carries nothing we use. */
		msg_enter(m, M_LINE_START);
		return MSG_NONE;
	}
	if (c != ':') {
		hdr_name_match(m, c);
		return MSG_NONE;
	}
	if ((m->aux & NAME_CL) && m->idx == NAME_CL_LEN)
		msg_enter(m, M_CL_VALUE);
	else if ((m->aux & NAME_TE) && m->idx == NAME_TE_LEN)
		msg_enter(m, M_TE_VALUE);
	else
		msg_enter(m, M_SKIP_LINE);
	return MSG_NONE;
}

/*
 * Ends a Content-Length header: the value must have digits, and a repeated
 * header must repeat the same value.
 */
static enum msg_event hdr_cl_end(struct http_msg_state *m)
{
	if (!(m->aux & CLV_DIGITS))
		return MSG_ERROR;
	if ((m->flags & MF_LENGTH) && m->remaining != m->value)
		return MSG_ERROR;
	m->remaining = m->value;
	m->flags |= MF_LENGTH;
	msg_enter(m, M_LINE_START);
	return MSG_NONE;
}

/*
 * Handles a byte of a Content-Length value: optional whitespace, decimal
 * digits that fit in MAX_CONTENT_LENGTH, optional whitespace, end of line.
 * Anything else, including a list of values, is an error.
 */
static enum msg_event hdr_cl_value(struct http_msg_state *m, unsigned char c)
{
	uint64_t d;

	if (c == '\n')
		return hdr_cl_end(m);
	if (is_ows(c) || c == '\r') {
		if (m->aux & CLV_DIGITS)
			m->aux |= CLV_AFTER;
		return MSG_NONE;
	}
	if (!is_digit(c) || (m->aux & CLV_AFTER))
		return MSG_ERROR;
	d = (uint64_t)(c - '0');
	if (m->value > (MAX_CONTENT_LENGTH - d) / 10)
		return MSG_ERROR;
	m->value = m->value * 10 + d;
	m->aux |= CLV_DIGITS;
	return MSG_NONE;
}

/* Ends one transfer coding of a Transfer-Encoding list. */
static void hdr_te_token_end(struct http_msg_state *m)
{
	if (!(m->aux & TOK_ANY))
		return;
	if (!(m->aux & TOK_BAD) && m->idx == CHUNKED_LEN)
		m->aux |= TOK_LAST_CHUNKED;
	else
		m->aux &= (uint8_t)~TOK_LAST_CHUNKED;
	m->aux |= TOK_SEEN;
	m->aux &= (uint8_t)~(TOK_ANY | TOK_BAD | TOK_WS);
	m->idx = 0;
}

/*
 * Ends a Transfer-Encoding header. Several headers form one list, so the
 * last header that lists a coding decides whether the body is chunked.
 */
static void hdr_te_end(struct http_msg_state *m)
{
	hdr_te_token_end(m);
	if (m->aux & TOK_SEEN) {
		m->flags |= MF_TE;
		if (m->aux & TOK_LAST_CHUNKED)
			m->flags |= MF_CHUNKED;
		else
			m->flags &= (uint8_t)~MF_CHUNKED;
	}
	msg_enter(m, M_LINE_START);
}

/*
 * Handles a byte of a Transfer-Encoding value: a comma-separated list of
 * codings, each matched case-insensitively against "chunked". A coding with
 * parameters or inner whitespace is not "chunked".
 */
static enum msg_event hdr_te_value(struct http_msg_state *m, unsigned char c)
{
	if (c == '\n') {
		hdr_te_end(m);
		return MSG_NONE;
	}
	if (c == ',') {
		hdr_te_token_end(m);
		return MSG_NONE;
	}
	if (is_ows(c) || c == '\r') {
		if (m->aux & TOK_ANY)
			m->aux |= TOK_WS;
		return MSG_NONE;
	}
	if ((m->aux & TOK_WS) || m->idx >= CHUNKED_LEN ||
	    to_lower(c) != (unsigned char)coding_chunked[m->idx])
		m->aux |= TOK_BAD;
	else
		m->idx++;
	m->aux |= TOK_ANY;
	return MSG_NONE;
}

/* Ends a chunk-size line: a zero size starts the trailer section. */
static enum msg_event chunk_size_end(struct http_msg_state *m)
{
	uint64_t size = m->value;

	if (size == 0) {
		msg_enter(m, M_TRAILER_START);
		return MSG_NONE;
	}
	msg_enter(m, M_CHUNK_DATA);
	m->remaining = size;
	return MSG_NONE;
}

/*
 * Handles a byte of a chunk size: at least one hex digit, then optional
 * whitespace, ';' extensions, CRLF or LF. Sizes that do not fit in 60 bits
 * are an error.
 */
static enum msg_event chunk_size(struct http_msg_state *m, unsigned char c)
{
	int v = hex_value(c);

	if (v >= 0) {
		if (m->value >> 59)
			return MSG_ERROR;
		m->value = (m->value << 4) | (uint64_t)v;
		m->aux |= CHUNK_DIGITS;
		return MSG_NONE;
	}
	if (!(m->aux & CHUNK_DIGITS))
		return MSG_ERROR;
	if (is_ows(c))
		m->state = M_CHUNK_WS;
	else if (c == ';')
		m->state = M_CHUNK_EXT;
	else if (c == '\r')
		m->state = M_CHUNK_CR;
	else if (c == '\n')
		return chunk_size_end(m);
	else
		return MSG_ERROR;
	return MSG_NONE;
}

/* Handles whitespace after a chunk size, before ';' or the line end. */
static enum msg_event chunk_ws(struct http_msg_state *m, unsigned char c)
{
	if (is_ows(c))
		return MSG_NONE;
	if (c == ';')
		m->state = M_CHUNK_EXT;
	else if (c == '\r')
		m->state = M_CHUNK_CR;
	else if (c == '\n')
		return chunk_size_end(m);
	else
		return MSG_ERROR;
	return MSG_NONE;
}

/* Handles the byte after chunk data: CRLF or LF must end the chunk. */
static enum msg_event chunk_end(struct http_msg_state *m, unsigned char c)
{
	if (c == '\r' && m->state == M_CHUNK_END) {
		m->state = M_CHUNK_END_CR;
		return MSG_NONE;
	}
	if (c != '\n')
		return MSG_ERROR;
	msg_enter(m, M_CHUNK_SIZE);
	return MSG_NONE;
}

/* Handles the first byte of a trailer line; the empty line ends the body. */
static enum msg_event trailer_start(struct http_msg_state *m, unsigned char c)
{
	if (c == '\n')
		return MSG_DONE;
	if (c != '\r')
		m->state = M_TRAILER_LINE;
	return MSG_NONE;
}

/*
 * Advances m by one byte c in any per-byte state (everything but the bulk
 * states M_CHUNK_DATA, M_BODY_LENGTH and M_BODY_CLOSE).
 */
static enum msg_event msg_step(struct http_msg_state *m, unsigned char c)
{
	switch (m->state) {
	case M_LINE_START:
		return hdr_line_start(m, c);
	case M_NAME:
		return hdr_name(m, c);
	case M_SKIP_LINE:
		if (c == '\n')
			msg_enter(m, M_LINE_START);
		return MSG_NONE;
	case M_CL_VALUE:
		return hdr_cl_value(m, c);
	case M_TE_VALUE:
		return hdr_te_value(m, c);
	case M_CHUNK_SIZE:
		return chunk_size(m, c);
	case M_CHUNK_WS:
		return chunk_ws(m, c);
	case M_CHUNK_EXT:
		return c == '\n' ? chunk_size_end(m) : MSG_NONE;
	case M_CHUNK_CR:
		return c == '\n' ? chunk_size_end(m) : MSG_ERROR;
	case M_CHUNK_END:
	case M_CHUNK_END_CR:
		return chunk_end(m, c);
	case M_TRAILER_START:
		return trailer_start(m, c);
	case M_TRAILER_LINE:
		if (c == '\n')
			m->state = M_TRAILER_START;
		return MSG_NONE;
	default:
		return MSG_ERROR;
	}
}

/* Returns true when m skips bytes in bulk without looking at them. */
static bool msg_is_bulk(const struct http_msg_state *m)
{
	return m->state == M_CHUNK_DATA || m->state == M_BODY_LENGTH ||
	       m->state == M_BODY_CLOSE;
}

/*
 * Skips up to n body bytes in a bulk state without looking at them. Returns
 * how many were skipped and sets *ev to MSG_DONE when a Content-Length body
 * ended with the last of them.
 */
static uint64_t msg_bulk(struct http_msg_state *m, uint64_t n,
			 enum msg_event *ev)
{
	uint64_t take;

	*ev = MSG_NONE;
	if (m->state == M_BODY_CLOSE)
		return n;
	take = n < m->remaining ? n : m->remaining;
	m->remaining -= take;
	if (m->remaining == 0) {
		if (m->state == M_BODY_LENGTH)
			*ev = MSG_DONE;
		else
			msg_enter(m, M_CHUNK_END);
	}
	return take;
}

/*
 * Fast path for a Content-Length value v[0..n) (the line after the colon,
 * without its LF) in its usual form: optional whitespace, at most 18 digits
 * (so no overflow check is needed), optional whitespace, an optional CR.
 * Returns false, changing nothing, for anything else, including a repeated
 * header with another value: the byte-at-a-time path then decides. (A CR
 * is only allowed as the last byte, so it is taken off first.)
 */
static bool hdr_cl_fast(struct http_msg_state *m, const unsigned char *v,
			size_t n)
{
	const unsigned char *p = v, *end = v + n, *digits;
	uint64_t value = 0;

	if (p < end && end[-1] == '\r')
		end--;
	/* The usual form, one space and at most 18 digits, in one loop. */
	if (p < end && *p == ' ' && end - p <= 19) {
		for (p++, digits = p; p < end; p++) {
			unsigned d = (unsigned)*p - '0';

			if (d > 9)
				break;
			value = value * 10 + d;
		}
		if (p == end && p > digits)
			goto have;
		p = v;
		value = 0;
	}
	while (p < end && is_ows(*p))
		p++;
	digits = p;
	while (p < end && is_digit(*p) && p - digits < 18) {
		value = value * 10 + (uint64_t)(*p - '0');
		p++;
	}
	if (p == digits)
		return false;
	while (p < end && is_ows(*p))
		p++;
	if (p != end)
		return false;
have:
	if ((m->flags & MF_LENGTH) && m->remaining != value)
		return false;
	m->remaining = value;
	m->flags |= MF_LENGTH;
	return true;
}

/* What the first byte of a header line says, for hdr_lines_fast(). */
enum hdr_first {
	HF_SKIP = 0, /* a line that is skipped whole */
	HF_CR,       /* maybe the empty line, CRLF */
	HF_LF,       /* the empty line, a bare LF */
	HF_C,        /* maybe Content-Length */
	HF_T,        /* maybe Transfer-Encoding */
};

static const uint8_t hdr_first_class[256] = {
	['\r'] = HF_CR, ['\n'] = HF_LF,
	['c'] = HF_C, ['C'] = HF_C,
	['t'] = HF_T, ['T'] = HF_T,
};

/*
 * Fast path at the start of a header line, at offset off of the buffer lfs
 * scans (its next LF is at or after off): consumes complete header lines,
 * and the empty line that ends the headers (setting *ev to
 * MSG_HEADERS_END). A line that is not Content-Length or Transfer-Encoding
 * is skipped whole; a Content-Length in its usual form is read. Stops at
 * the first line it leaves to the byte-at-a-time path (Transfer-Encoding,
 * an unusual Content-Length, a lone CR, a line whose LF is not in the
 * buffer) and returns the offset reached, with m still at M_LINE_START.
 * The scan is followed in local variables: *lfs is left as it was, and
 * callers do not use it afterwards.
 */
static size_t hdr_lines_fast(struct http_msg_state *m,
			     const struct lf_scan *lfs, size_t off,
			     enum msg_event *ev)
{
	const unsigned char *b = lfs->b;
	const size_t len = lfs->len;
	size_t base = lfs->base, nl, n;
	uint32_t mask = lfs->mask;

	while (off < len) {
		const unsigned char *line = b + off;
		unsigned k = hdr_first_class[line[0]];

		if (k == HF_LF) {
			*ev = MSG_HEADERS_END;
			return off + 1;
		}
		if (k == HF_CR) {
			if (len - off >= 2 && line[1] == '\n') {
				*ev = MSG_HEADERS_END;
				return off + 2;
			}
			return off; /* a lone CR */
		}
		/* The LF that ends this line: the next one handed out. */
		while (!mask) {
			if (len - base <= 16)
				return off; /* not in the buffer */
			base += 16;
			mask = lf_block(b, len, base);
		}
		nl = base + (size_t)__builtin_ctz(mask);
		mask &= mask - 1;
		n = nl - off;
		if (k == HF_C) {
			if (n > NAME_CL_LEN && is_cl_name(line) &&
			    !hdr_cl_fast(m, line + NAME_CL_LEN + 1,
					 n - NAME_CL_LEN - 1))
				return off;
		} else if (k == HF_T) {
			if (n > NAME_TE_LEN && is_te_name(line))
				return off;
		}
		off = nl + 1;
	}
	return off;
}

/*
 * Consumes header or body bytes from b[0..len) until the first framing event
 * or the end of the buffer. Returns the count consumed, including the byte
 * that caused the event. Bodies are skipped in bulk, lines that do not matter
 * with memchr(), whole header lines by hdr_lines_fast(); the rest goes a
 * byte at a time through msg_step().
 */
static size_t msg_feed(struct http_msg_state *m, const unsigned char *b,
		       size_t len, enum msg_event *ev)
{
	const unsigned char *nl;
	struct lf_scan lfs;
	size_t off = 0, k;

	*ev = MSG_NONE;
	while (off < len && *ev == MSG_NONE) {
		switch (m->state) {
		case M_CHUNK_DATA:
		case M_BODY_LENGTH:
		case M_BODY_CLOSE:
			off += (size_t)msg_bulk(m, len - off, ev);
			continue;
		case M_LINE_START:
			lf_start(&lfs, b, len, off);
			k = hdr_lines_fast(m, &lfs, off, ev);
			if (k > off) {
				off = k;
				continue;
			}
			break;
		case M_SKIP_LINE:
		case M_TRAILER_LINE:
		case M_CHUNK_EXT:
			/* Nothing in the line matters but its end. */
			nl = memchr(b + off, '\n', len - off);
			if (!nl)
				return len;
			off = (size_t)(nl - b);
			break;
		default:
			break;
		}
		*ev = msg_step(m, b[off++]);
	}
	return off;
}

/* Starts a body of n bytes; returns MSG_DONE at once when n is zero. */
static enum msg_event msg_body_length(struct http_msg_state *m, uint64_t n)
{
	if (n == 0)
		return MSG_DONE;
	msg_enter(m, M_BODY_LENGTH);
	m->remaining = n;
	return MSG_NONE;
}

/* Starts a chunked body. */
static enum msg_event msg_body_chunked(struct http_msg_state *m)
{
	msg_enter(m, M_CHUNK_SIZE);
	m->remaining = 0;
	return MSG_NONE;
}

/* Starts a body that lasts until the connection closes: it never ends. */
static enum msg_event msg_body_close(struct http_msg_state *m)
{
	msg_enter(m, M_BODY_CLOSE);
	m->remaining = 0;
	return MSG_NONE;
}

/* ------------------------------------------------------------------------ */
/* Requests                                                                 */
/* ------------------------------------------------------------------------ */

/* struct http_req.state; zero is "expecting a new request". */
enum req_state {
	R_IDLE = 0,    /* before a request: CR and LF are skipped */
	R_METHOD,      /* in the method */
	R_TARGET,      /* in the request target */
	R_VERSION,     /* in "HTTP/1.x" */
	R_VERSION_END, /* after the version: CRLF or LF must follow */
	R_MSG,         /* in the headers or the body (struct http_msg_state) */
	R_ERROR,       /* not HTTP/1.x: nothing more is consumed */
};

/* struct http_req.target: which part of the request target we are in. */
enum req_target {
	T_EMPTY = 0,   /* no byte of the target yet */
	T_PATH,        /* in the path (origin-form, or anything unrecognised) */
	T_AUTHORITY,   /* in the authority of an absolute-form target */
	T_QUERY,       /* in the query string */
};

/* struct http_req.scheme: progress of "scheme://" at the target's start. */
enum req_scheme {
	S_START = 0,   /* nothing seen yet */
	S_NAME,        /* a letter, then scheme characters */
	S_COLON,       /* "scheme:" */
	S_SLASH,       /* "scheme:/" */
	S_OFF,         /* not an absolute-form target */
};

/* struct http_req.query: the query parameter matcher. */
enum req_query {
	Q_NAME = 0,    /* in a parameter name that may still be "profile" */
	Q_VALUE,       /* in the value of a "profile" parameter */
	Q_SKIP,        /* in a parameter of no interest, until '&' */
};

static const char version_prefix[] = "HTTP/1.";
static const char param_profile[] = "profile";

#define VERSION_PREFIX_LEN (sizeof(version_prefix) - 1)
#define PARAM_PROFILE_LEN (sizeof(param_profile) - 1)
#define METHOD_LEN_MAX (HTTP_METHOD_MAX - 1)
#define ENDPOINT_CAP (HTTP_ENDPOINT_MAX - 1)

/* The values of profile= that ask for a manual profile, in any case. */
static const struct {
	char text[8];
	uint8_t len;
} profile_values[] = { { "1", 1 }, { "true", 4 }, { "yes", 3 } };

#define PROFILE_VALUES (sizeof(profile_values) / sizeof(profile_values[0]))
#define PROFILE_MASK_ALL ((1u << PROFILE_VALUES) - 1)

/* Returns true when the method, the first len bytes of ep, is HEAD. */
static bool method_is_head(const char *ep, unsigned len)
{
	return len == 4 && ep[0] == 'H' && ep[1] == 'E' && ep[2] == 'A' &&
	       ep[3] == 'D';
}

/* Resets the parts of p that describe the request being parsed. */
static void req_reset(struct http_req *p)
{
	p->state = R_IDLE;
	p->method_len = 0;
	p->idx = 0;
	p->target = T_EMPTY;
	p->scheme = S_START;
	p->query = Q_NAME;
	p->query_idx = 0;
	p->query_mask = 0;
	p->kept = 0;
	tpl_begin(&p->tpl, 0);
	msg_init(&p->msg);
}

/*
 * Zeroes the whole endpoint: the templater never writes its last byte, so
 * from here on it is NUL-terminated at every moment, even mid-request.
 */
void http_req_init(struct http_req *p)
{
	size_t i;

	for (i = 0; i < sizeof(p->endpoint); i++)
		p->endpoint[i] = '\0';
	p->manual = false;
	p->head = false;
	req_reset(p);
}

/* Handles a byte between requests: the first method byte starts one. */
static unsigned req_idle(struct http_req *p, unsigned char c)
{
	if (c == '\r' || c == '\n')
		return 0;
	if (!is_method_char(c))
		return HTTP_REQ_ERROR;
	req_reset(p);
	p->manual = false;
	p->head = false;
	p->state = R_METHOD;
	tpl_put(&p->tpl, p->endpoint, ENDPOINT_CAP, (char)c);
	p->method_len = 1;
	return HTTP_REQ_START;
}

/* Handles a byte of the method; a space ends it and starts the target. */
static unsigned req_method(struct http_req *p, unsigned char c)
{
	if (c == ' ') {
		p->head = method_is_head(p->endpoint, p->method_len);
		tpl_put(&p->tpl, p->endpoint, ENDPOINT_CAP, ' ');
		tpl_begin(&p->tpl, p->tpl.pos);
		p->state = R_TARGET;
		return 0;
	}
	if (!is_method_char(c) || p->method_len >= METHOD_LEN_MAX)
		return HTTP_REQ_ERROR;
	tpl_put(&p->tpl, p->endpoint, ENDPOINT_CAP, (char)c);
	p->method_len++;
	return 0;
}

/* Gives the templater a path byte, keeping only HTTP_TARGET_MAX of them;
 * the first one past them cuts the path (tpl_cut()). */
static void req_path_byte(struct http_req *p, unsigned char c)
{
	if (p->kept >= HTTP_TARGET_MAX) {
		if (p->kept == HTTP_TARGET_MAX) {
			p->kept++;
			tpl_cut(&p->tpl, p->endpoint, ENDPOINT_CAP);
		}
		return;
	}
	p->kept++;
	tpl_byte(&p->tpl, p->endpoint, ENDPOINT_CAP, c);
}

/*
 * Follows "scheme://" at the start of the target. Returns true when byte c
 * completes it: the target is in absolute form, and what was given to the
 * templater so far was the scheme, not the path.
 */
static bool req_scheme_byte(struct http_req *p, unsigned char c)
{
	switch (p->scheme) {
	case S_START:
		p->scheme = is_alpha(c) ? S_NAME : S_OFF;
		return false;
	case S_NAME:
		if (c == ':')
			p->scheme = S_COLON;
		else if (!is_scheme_char(c))
			p->scheme = S_OFF;
		return false;
	case S_COLON:
		p->scheme = c == '/' ? S_SLASH : S_OFF;
		return false;
	case S_SLASH:
		p->scheme = S_OFF;
		return c == '/';
	default:
		return false;
	}
}

/* Handles a byte of the path, where '?' starts the query string. */
static void req_target_path(struct http_req *p, unsigned char c)
{
	if (c == '?') {
		p->target = T_QUERY;
		return;
	}
	if (req_scheme_byte(p, c)) {
		/* Absolute form: restart the path after the authority. */
		tpl_begin(&p->tpl, (size_t)p->method_len + 1);
		p->kept = 0;
		p->target = T_AUTHORITY;
		return;
	}
	req_path_byte(p, c);
}

/* Handles a byte of the authority of an absolute-form target. */
static void req_target_authority(struct http_req *p, unsigned char c)
{
	if (c == '?') {
		p->target = T_QUERY;
	} else if (c == '/') {
		p->target = T_PATH;
		req_path_byte(p, c);
	}
}

/* Ends a query parameter: a "profile" value of 1, true or yes sets manual. */
static void req_query_param_end(struct http_req *p)
{
	unsigned k;

	if (p->query == Q_VALUE) {
		for (k = 0; k < PROFILE_VALUES; k++) {
			if ((p->query_mask & (1u << k)) &&
			    p->query_idx == profile_values[k].len)
				p->manual = true;
		}
	}
	p->query = Q_NAME;
	p->query_idx = 0;
	p->query_mask = 0;
}

/* Narrows the candidate values of a "profile" parameter with byte c. */
static void req_query_value_byte(struct http_req *p, unsigned char c)
{
	unsigned k, i = p->query_idx;

	for (k = 0; k < PROFILE_VALUES; k++) {
		if (i >= profile_values[k].len ||
		    to_lower(c) != (unsigned char)profile_values[k].text[i])
			p->query_mask &= (uint8_t)~(1u << k);
	}
	if (p->query_idx < UINT8_MAX)
		p->query_idx++;
}

/* Handles a byte of the query string, looking for profile=1|true|yes. */
static void req_query_byte(struct http_req *p, unsigned char c)
{
	if (c == '&') {
		req_query_param_end(p);
		return;
	}
	switch (p->query) {
	case Q_NAME:
		if (c == '=' && p->query_idx == PARAM_PROFILE_LEN) {
			p->query = Q_VALUE;
			p->query_idx = 0;
			p->query_mask = PROFILE_MASK_ALL;
		} else if (p->query_idx < PARAM_PROFILE_LEN &&
			   to_lower(c) ==
				   (unsigned char)param_profile[p->query_idx]) {
			p->query_idx++;
		} else {
			p->query = Q_SKIP;
		}
		break;
	case Q_VALUE:
		req_query_value_byte(p, c);
		break;
	default:
		break;
	}
}

/* Ends the target: the endpoint is complete and the version comes next. */
static void req_target_end(struct http_req *p)
{
	if (p->target == T_QUERY)
		req_query_param_end(p);
	p->endpoint_len =
		(uint8_t)tpl_finish(&p->tpl, p->endpoint, ENDPOINT_CAP);
	p->state = R_VERSION;
	p->idx = 0;
}

/*
 * Handles a byte of the request target. A space ends it. A control byte
 * (CR or LF of an HTTP/0.9 request, NUL, ...) or an empty target is an error:
 * servers refuse them, and the endpoint must stay a plain C string.
 */
static unsigned req_target(struct http_req *p, unsigned char c)
{
	if (is_ctl(c))
		return HTTP_REQ_ERROR;
	if (c == ' ') {
		if (p->target == T_EMPTY)
			return HTTP_REQ_ERROR;
		req_target_end(p);
		return 0;
	}
	switch (p->target) {
	case T_EMPTY:
		p->target = T_PATH;
		req_target_path(p, c);
		break;
	case T_PATH:
		req_target_path(p, c);
		break;
	case T_AUTHORITY:
		req_target_authority(p, c);
		break;
	default:
		req_query_byte(p, c);
		break;
	}
	return 0;
}

/* Handles a byte of the version, which must be "HTTP/1." and a digit. */
static unsigned req_version(struct http_req *p, unsigned char c)
{
	if (p->idx < VERSION_PREFIX_LEN) {
		if (c != (unsigned char)version_prefix[p->idx])
			return HTTP_REQ_ERROR;
		p->idx++;
		return 0;
	}
	if (!is_digit(c))
		return HTTP_REQ_ERROR;
	p->state = R_VERSION_END;
	return 0;
}

/* Handles the end of the request line: the headers come next. */
static unsigned req_version_end(struct http_req *p,
					   unsigned char c)
{
	if (c == '\r')
		return 0;
	if (c != '\n')
		return HTTP_REQ_ERROR;
	msg_init(&p->msg);
	p->state = R_MSG;
	return HTTP_REQ_LINE;
}

/* Advances the request line parser by one byte c. */
static unsigned req_line_step(struct http_req *p, unsigned char c)
{
	switch (p->state) {
	case R_IDLE:
		return req_idle(p, c);
	case R_METHOD:
		return req_method(p, c);
	case R_TARGET:
		return req_target(p, c);
	case R_VERSION:
		return req_version(p, c);
	case R_VERSION_END:
		return req_version_end(p, c);
	default:
		return HTTP_REQ_ERROR;
	}
}

/*
 * Picks the request body's framing once the headers ended: chunked when the
 * last transfer coding is chunked (even with a Content-Length), an error for
 * any other transfer coding (its length cannot be known), else the
 * Content-Length, else no body.
 */
static enum msg_event req_body_start(struct http_req *p)
{
	struct http_msg_state *m = &p->msg;

	if (m->flags & MF_CHUNKED)
		return msg_body_chunked(m);
	if (m->flags & MF_TE)
		return MSG_ERROR;
	if (m->flags & MF_LENGTH)
		return msg_body_length(m, m->remaining);
	return MSG_DONE;
}

/* Feeds header and body bytes; returns the count consumed. */
static size_t req_feed_msg(struct http_req *p, const unsigned char *b,
			   size_t len, unsigned *ev)
{
	enum msg_event mev;
	size_t n = msg_feed(&p->msg, b, len, &mev);

	if (mev == MSG_HEADERS_END)
		mev = req_body_start(p);
	if (mev == MSG_DONE) {
		p->state = R_IDLE; /* req_idle() resets the rest */
		*ev |= HTTP_REQ_DONE;
	} else if (mev == MSG_ERROR) {
		*ev |= HTTP_REQ_ERROR;
	}
	return n;
}

/*
 * Returns true when the query string q[0..n) has a parameter "profile" (any
 * case) whose value is 1, true or yes (any case): what req_query_byte() and
 * req_query_param_end() find a byte at a time.
 */
static bool query_asks_profile(const unsigned char *q, size_t n)
{
	size_t i = 0;

	while (i < n) {
		const unsigned char *amp = memchr(q + i, '&', n - i);
		size_t end = amp ? (size_t)(amp - q) : n;
		size_t vlen = end - i - (PARAM_PROFILE_LEN + 1);

		if (end - i > PARAM_PROFILE_LEN &&
		    q[i + PARAM_PROFILE_LEN] == '=' &&
		    lower_eq(q + i, param_profile, PARAM_PROFILE_LEN)) {
			for (unsigned k = 0; k < PROFILE_VALUES; k++)
				if (vlen == profile_values[k].len &&
				    lower_eq(q + end - vlen,
					     profile_values[k].text, vlen))
					return true;
		}
		i = end + 1;
	}
	return false;
}

/*
 * Finds where the origin-form path starting at b[path] (a '/') ends: the
 * first control byte, space or '?' of b[0..len), sixteen bytes at a time.
 * Stores it in *ret_end and whether no segment of the path may be an id in
 * *ret_plain. Returns false when the path runs to the end of the buffer.
 */
static bool path_scan(const unsigned char *b, size_t len, size_t path,
		      size_t *ret_end, bool *ret_plain)
{
	uint32_t end, qmark, slash, stop;
	size_t base, seg = path, k;
	bool plain = true;

	for (base = path; base < len; base += 16) {
		target_block(b, len, base, &end, &qmark, &slash);
		stop = end | qmark;
		if (stop)
			slash &= (stop & -stop) - 1; /* slashes before the end */
		for (; slash; slash &= slash - 1) {
			k = base + (size_t)__builtin_ctz(slash);
			plain = plain && !seg_may_be_id(b + seg, k - seg);
			seg = k + 1;
		}
		if (stop) {
			k = base + (size_t)__builtin_ctz(stop);
			*ret_plain = plain && !seg_may_be_id(b + seg, k - seg);
			*ret_end = k;
			return true;
		}
	}
	return false;
}

/*
 * Finds the end of a query string that starts after the '?' at b[q]: the
 * first control byte or space after it. Returns false when it runs to the
 * end of the buffer.
 */
static bool query_scan(const unsigned char *b, size_t len, size_t q,
		       size_t *ret_end)
{
	uint32_t end, qmark, slash;
	size_t base;

	for (base = q + 1; base < len; base += 16) {
		target_block(b, len, base, &end, &qmark, &slash);
		if (end) {
			*ret_end = base + (size_t)__builtin_ctz(end);
			return true;
		}
	}
	return false;
}

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
 * Writes the endpoint of a request line whose method is b[0..mlen) and
 * whose path is b[path..pend): the same as req_idle(), req_method() and
 * req_path_byte() write a byte at a time. A plain path that fits is copied
 * whole; others go through the templater a segment at a time.
 */
static void req_endpoint_fast(struct http_req *p, const unsigned char *b,
			      size_t mlen, size_t path, size_t pend, bool plain)
{
	size_t n = pend - path, at = mlen + 1;
	struct http_tpl_state t;

	if (plain && n <= HTTP_TARGET_MAX && at + n <= ENDPOINT_CAP) {
		/* Method, space and path lie together in b[0..pend). */
		copy_short(p->endpoint, b, pend);
		p->endpoint[pend] = '\0';
		p->endpoint_len = (uint8_t)pend;
		return;
	}
	memcpy(p->endpoint, b, mlen);
	p->endpoint[mlen] = ' ';
	tpl_begin(&t, at);
	p->endpoint_len = (uint8_t)tpl_path_whole(&t, p->endpoint, ENDPOINT_CAP,
						  b + path, n);
}

/*
 * Fast path for a new request whose first byte is b[0] (the parser is at
 * R_IDLE): when the request line is whole in b[0..len) and in its usual
 * form (a method, one space, an origin-form target, one space, "HTTP/1.x",
 * an optional CR, LF), consumes it, reports HTTP_REQ_START and
 * HTTP_REQ_LINE with endpoint, manual and head exactly as the
 * byte-at-a-time path fills them, and goes on with whole header lines
 * (hdr_lines_fast()) and, once they end, the body: skipped in bulk, up to
 * HTTP_REQ_DONE when it is all in the buffer. Returns the count consumed,
 * with the parser where the byte-at-a-time path would be. Returns 0,
 * leaving the parser's state alone, for any other request line (bytes may
 * have been written into the endpoint; the byte-at-a-time path, which
 * starts the request at once, overwrites them).
 */
static size_t req_head_fast(struct http_req *p, const unsigned char *b,
			    size_t len, unsigned *ev)
{
	enum msg_event mev = MSG_NONE;
	size_t i = 0, pend, tend, nl, off;
	struct lf_scan lfs;
	bool plain;

	uint32_t first4;

	/* GET, the usual method, in one compare; any other a byte at a time. */
	if (len >= 4 && (memcpy(&first4, b, 4), first4 == load4("GET "))) {
		i = 3;
	} else {
		size_t lim = len < METHOD_LEN_MAX + 1 ? len : METHOD_LEN_MAX + 1;

		while (i < lim && (char_class[b[i]] & CC_METHOD))
			i++;
	}
	if (i == 0 || i > METHOD_LEN_MAX || len - i < 2 || b[i] != ' ' ||
	    b[i + 1] != '/' || !path_scan(b, len, i + 1, &pend, &plain))
		return 0;
	tend = pend;
	if (b[pend] == '?' && !query_scan(b, len, pend, &tend))
		return 0;
	/* " HTTP/1." and a digit, then CRLF or LF. */
	if (len - tend < 10 || load8(b + tend) != load8(" HTTP/1.") ||
	    !is_digit(b[tend + 8]))
		return 0;
	nl = tend + 9;
	if (b[nl] == '\r' && nl + 1 < len)
		nl++;
	if (b[nl] != '\n')
		return 0;
	req_endpoint_fast(p, b, i, i + 1, pend, plain);
	p->method_len = (uint8_t)i;
	p->head = method_is_head(p->endpoint, p->method_len);
	p->manual = tend > pend &&
		    query_asks_profile(b + pend + 1, tend - pend - 1);
	p->state = R_MSG;
	msg_init(&p->msg);
	*ev |= HTTP_REQ_START | HTTP_REQ_LINE;

	lf_start(&lfs, b, len, nl + 1);
	off = hdr_lines_fast(&p->msg, &lfs, nl + 1, &mev);
	if (mev == MSG_HEADERS_END)
		mev = req_body_start(p);
	if (p->msg.state == M_BODY_LENGTH && off < len)
		off += (size_t)msg_bulk(&p->msg, len - off, &mev);
	if (mev == MSG_DONE) {
		p->state = R_IDLE;
		*ev |= HTTP_REQ_DONE;
	} else if (mev == MSG_ERROR) {
		*ev |= HTTP_REQ_ERROR;
	}
	return off;
}

size_t http_req_feed(struct http_req *p, const char *buf, size_t len,
		     unsigned *ret_events)
{
	const unsigned char *b = (const unsigned char *)buf;
	unsigned ev = 0;
	size_t off = 0, k;

	if (p->state == R_ERROR) {
		*ret_events = HTTP_REQ_ERROR;
		return 0;
	}
	while (off < len && !(ev & (HTTP_REQ_DONE | HTTP_REQ_ERROR))) {
		if (p->state == R_MSG)
			off += req_feed_msg(p, b + off, len - off, &ev);
		else if (p->state == R_IDLE &&
			 (k = req_head_fast(p, b + off, len - off, &ev)) > 0)
			off += k;
		else
			ev |= req_line_step(p, b[off++]);
	}
	if (ev & HTTP_REQ_ERROR)
		p->state = R_ERROR;
	*ret_events = ev;
	return off;
}

/* ------------------------------------------------------------------------ */
/* Responses                                                                */
/* ------------------------------------------------------------------------ */

/* struct http_resp.state; zero is "expecting a new response". */
enum resp_state {
	P_VERSION = 0, /* in "HTTP/1." and its minor digit */
	P_SP,          /* the space before the status code */
	P_CODE,        /* in the three-digit status code */
	P_CODE_END,    /* after the code: a space, CRLF or LF */
	P_REASON,      /* in the reason phrase, until LF */
	P_MSG,         /* in the headers or the body */
	P_ERROR,       /* not HTTP/1.x: nothing more is consumed */
};

/* struct http_resp.flags. */
#define RF_INTERIM 0x01 /* a 1xx other than 101: skipped without an event */
#define RF_SWITCH 0x02  /* 101: the connection leaves HTTP after it */

#define STATUS_SWITCHING_PROTOCOLS 101
#define STATUS_NO_CONTENT 204
#define STATUS_NOT_MODIFIED 304

/* Resets the parts of p that describe the response being parsed. */
static void resp_reset(struct http_resp *p)
{
	p->state = P_VERSION;
	p->idx = 0;
	p->flags = 0;
	msg_init(&p->msg);
}

bool http_resp_ends_at_close(const struct http_resp *p)
{
	if (p->state == P_MSG)
		return p->msg.state == M_BODY_CLOSE;
	/* Nothing of a response yet, or not HTTP: nothing was cut short. */
	return (p->state == P_VERSION && p->idx == 0) || p->state == P_ERROR;
}

void http_resp_init(struct http_resp *p)
{
	p->status = 0;
	resp_reset(p);
}

/* Handles a byte of "HTTP/1.x"; anything else is not an HTTP response. */
static unsigned resp_version(struct http_resp *p, unsigned char c)
{
	if (p->idx < VERSION_PREFIX_LEN) {
		if (c != (unsigned char)version_prefix[p->idx])
			return HTTP_RESP_ERROR;
		p->idx++;
		return 0;
	}
	if (!is_digit(c))
		return HTTP_RESP_ERROR;
	p->state = P_SP;
	return 0;
}

/* Handles a digit of the status code, which must be 100 or more. */
static unsigned resp_code(struct http_resp *p, unsigned char c)
{
	if (!is_digit(c) || (p->idx == 0 && c == '0'))
		return HTTP_RESP_ERROR;
	p->status = (uint16_t)(p->status * 10 + (c - '0'));
	if (++p->idx == 3)
		p->state = P_CODE_END;
	return 0;
}

/*
 * Ends the status line. An interim 1xx is parsed silently; any other status
 * is reported, 101 included since nothing HTTP follows it.
 */
static unsigned resp_line_end(struct http_resp *p)
{
	p->state = P_MSG;
	msg_init(&p->msg);
	if (p->status == STATUS_SWITCHING_PROTOCOLS) {
		p->flags |= RF_SWITCH;
		return HTTP_RESP_STATUS;
	}
	if (p->status < 200) {
		p->flags |= RF_INTERIM;
		return 0;
	}
	return HTTP_RESP_STATUS;
}

/* Advances the status line parser by one byte c. */
static unsigned resp_line_step(struct http_resp *p,
					   unsigned char c)
{
	switch (p->state) {
	case P_VERSION:
		return resp_version(p, c);
	case P_SP:
		if (c != ' ')
			return HTTP_RESP_ERROR;
		p->state = P_CODE;
		p->idx = 0;
		p->status = 0;
		return 0;
	case P_CODE:
		return resp_code(p, c);
	case P_CODE_END:
		if (c == ' ')
			p->state = P_REASON;
		else if (c == '\n')
			return resp_line_end(p);
		else if (c != '\r')
			return HTTP_RESP_ERROR;
		return 0;
	case P_REASON:
		return c == '\n' ? resp_line_end(p) : 0;
	default:
		return HTTP_RESP_ERROR;
	}
}

/*
 * Picks the response body's framing once the headers ended (RFC 9112 6.3):
 * none for 1xx, HEAD, 204 and 304; until the close after 101; chunked when
 * the last transfer coding is chunked; until the close for any other
 * transfer coding; the Content-Length; else until the close. An interim
 * response ends here silently and the parser expects the next status line.
 */
static enum msg_event resp_body_start(struct http_resp *p, bool head)
{
	struct http_msg_state *m = &p->msg;

	if (p->flags & RF_INTERIM) {
		resp_reset(p);
		return MSG_NONE;
	}
	if (p->flags & RF_SWITCH)
		return msg_body_close(m);
	if (head || p->status == STATUS_NO_CONTENT ||
	    p->status == STATUS_NOT_MODIFIED)
		return MSG_DONE;
	if (m->flags & MF_CHUNKED)
		return msg_body_chunked(m);
	if (m->flags & MF_TE)
		return msg_body_close(m);
	if (m->flags & MF_LENGTH)
		return msg_body_length(m, m->remaining);
	return msg_body_close(m);
}

/* Turns a framing event into response events, resetting after DONE. */
static inline __attribute__((always_inline)) unsigned
resp_msg_event(struct http_resp *p, enum msg_event mev,
			       bool head)
{
	if (mev == MSG_HEADERS_END)
		mev = resp_body_start(p, head);
	if (mev == MSG_DONE) {
		resp_reset(p);
		return HTTP_RESP_DONE;
	}
	return mev == MSG_ERROR ? HTTP_RESP_ERROR : 0;
}

/*
 * Fast path at the start of a response in b[0..len): when its status line
 * is whole and in its usual form ("HTTP/1.x", a space, a code of three
 * digits from 100, then a space and a reason up to the LF, or CRLF, or LF),
 * consumes it and ends it like resp_line_end(); then goes on with whole
 * header lines (hdr_lines_fast(), sharing the scan for LFs) and, once they
 * end, the body: skipped in bulk, up to HTTP_RESP_DONE when it is all in
 * the buffer. Returns the count consumed, with the parser where the
 * byte-at-a-time path would be; 0, changing nothing, for anything else.
 */
static size_t resp_head_fast(struct http_resp *p, const unsigned char *b,
			     size_t len, bool head, unsigned *ev)
{
	const size_t code = VERSION_PREFIX_LEN + 2; /* "HTTP/1.1 " */
	enum msg_event mev = MSG_NONE;
	struct lf_scan lfs;
	size_t nl, off;

	if (len < code + 4 || memcmp(b, version_prefix, VERSION_PREFIX_LEN) ||
	    !is_digit(b[code - 2]) || b[code - 1] != ' ' || b[code] == '0' ||
	    !is_digit(b[code]) || !is_digit(b[code + 1]) ||
	    !is_digit(b[code + 2]))
		return 0;
	lf_start(&lfs, b, len, code + 3);
	nl = lf_next(&lfs);
	if (nl == len || (nl > code + 3 && b[code + 3] != ' ' &&
			  !(nl == code + 4 && b[code + 3] == '\r')))
		return 0;
	p->status = (uint16_t)((b[code] - '0') * 100 + (b[code + 1] - '0') * 10 +
			       (b[code + 2] - '0'));
	p->idx = 3;
	*ev |= resp_line_end(p);
	if (p->flags & RF_INTERIM)
		return nl + 1; /* its headers go a byte at a time */

	off = hdr_lines_fast(&p->msg, &lfs, nl + 1, &mev);
	*ev |= resp_msg_event(p, mev, head);
	if (p->state == P_MSG && p->msg.state == M_BODY_LENGTH && off < len) {
		off += (size_t)msg_bulk(&p->msg, len - off, &mev);
		*ev |= resp_msg_event(p, mev, head);
	}
	return off;
}

size_t http_resp_feed(struct http_resp *p, const char *buf, size_t len,
		      bool head, unsigned *ret_events)
{
	const unsigned char *b = (const unsigned char *)buf;
	unsigned ev = 0;
	enum msg_event mev;
	size_t off = 0, k;

	if (p->state == P_ERROR) {
		*ret_events = HTTP_RESP_ERROR;
		return 0;
	}
	while (off < len && !(ev & (HTTP_RESP_DONE | HTTP_RESP_ERROR))) {
		if (p->state == P_MSG) {
			off += msg_feed(&p->msg, b + off, len - off, &mev);
			ev |= resp_msg_event(p, mev, head);
		} else if (p->state == P_VERSION && p->idx == 0 &&
			   (k = resp_head_fast(p, b + off, len - off, head,
					       &ev)) > 0) {
			off += k;
		} else {
			ev |= resp_line_step(p, b[off++]);
		}
	}
	if (ev & HTTP_RESP_ERROR)
		p->state = P_ERROR;
	*ret_events = ev;
	return off;
}

/*
 * Sendfile'd bytes are body bytes when a body is being skipped: they count
 * against a Content-Length body (DONE when it completes) or the current
 * chunk's data, and vanish into a body that lasts until the close. Bytes past
 * the end of the current chunk, and bytes outside any body, cannot be parsed
 * unseen: they are consumed without an event and the parser stays where it
 * was (best effort; servers sendfile exactly a body or a chunk's data).
 */
size_t http_resp_skip(struct http_resp *p, uint64_t n, unsigned *ret_events)
{
	enum msg_event mev = MSG_NONE;
	uint64_t took;

	*ret_events = 0;
	if (p->state == P_ERROR) {
		*ret_events = HTTP_RESP_ERROR;
		return 0;
	}
	if (n > SIZE_MAX)
		n = SIZE_MAX;
	if (p->state != P_MSG || !msg_is_bulk(&p->msg))
		return (size_t)n;
	took = msg_bulk(&p->msg, n, &mev);
	if (mev == MSG_DONE) {
		resp_reset(p);
		*ret_events = HTTP_RESP_DONE;
		return (size_t)took;
	}
	return (size_t)n;
}
