/*
 * fcgi.c — the FastCGI delimiter (fcgi.h is the interface and its
 * contract).
 *
 * Both directions are cut into records by the same framing (struct
 * fcgi_rec: an 8-byte header, content, padding); what is looked into is
 * small:
 *
 *   - read side: the role in FCGI_BEGIN_REQUEST (of the first record only:
 *     it decides that the connection speaks FastCGI), and the name-value
 *     pairs of FCGI_PARAMS, where four names matter (REQUEST_METHOD,
 *     REQUEST_URI, SCRIPT_NAME, QUERY_STRING); every other pair, and every
 *     other record's content, is skipped in bulk;
 *   - write side: the CGI headers at the start of a request's FCGI_STDOUT,
 *     a line at a time, where only Status: is read, and the protocolStatus
 *     of FCGI_END_REQUEST.
 *
 * A path goes through the HTTP delimiter's streaming templater
 * (http_template.h) a byte at a time, cut after HTTP_TARGET_MAX bytes like
 * an HTTP request's, and absolute-form targets and the profile= query
 * matcher are the HTTP parser's too (http_target.h): a request gets the
 * same endpoint and manual flag through nginx's FastCGI as over HTTP. Like
 * the HTTP delimiter, the framing is checked strictly (version, the length
 * of FCGI_BEGIN_REQUEST and FCGI_END_REQUEST), since a mistake there would
 * desynchronise every later record; what does not frame anything is lenient.
 */
#include "fcgi.h"

#include <string.h>

#include "http_scan.h"
#include "http_target.h"
#include "http_template.h"

#define ENDPOINT_CAP (HTTP_ENDPOINT_MAX - 1)
#define METHOD_LEN_MAX (HTTP_METHOD_MAX - 1)
#define BODY_LEN 8 /* FCGI_BEGIN_REQUEST's and FCGI_END_REQUEST's content */

/* struct fcgi_in.state and struct fcgi_out.state. */
enum { ST_OK = 0, ST_ERROR };

/* struct fcgi_req.flags, private bits. */
#define F_PARAMS_DONE 0x02 /* its FCGI_PARAMS stream ended */
#define F_PARAMS_SKIP 0x04 /* its FCGI_PARAMS are not decoded */

static inline size_t min_size(size_t a, size_t b)
{
	return a < b ? a : b;
}

void fcgi_req_init(struct fcgi_req *r)
{
	memset(r, 0, sizeof(*r));
}

/* ------------------------------------------------------------------------ */
/* Records                                                                  */
/* ------------------------------------------------------------------------ */

/*
 * Consumes header bytes from b[0..len) until the header is complete or the
 * buffer ends; returns the count. A complete header starts the record's
 * body: its content, then its padding.
 */
static size_t rec_head(struct fcgi_rec *r, const unsigned char *b, size_t len)
{
	size_t i;

	for (i = 0; i < len && r->got < FCGI_HEADER_LEN; i++, r->got++) {
		unsigned char c = b[i];

		switch (r->got) {
		case 0:
			r->version = c;
			break;
		case 1:
			r->type = c;
			break;
		case 2:
			r->id = (uint16_t)(c << 8);
			break;
		case 3:
			r->id |= c;
			break;
		case 4:
			r->len = (uint16_t)(c << 8);
			break;
		case 5:
			r->len |= c;
			break;
		case 6:
			r->pad = c;
			break;
		default: /* reserved */
			break;
		}
	}
	if (r->got == FCGI_HEADER_LEN) {
		r->left = r->len;
		r->started = 0;
		r->skip = 1;
	}
	return i;
}

/* ------------------------------------------------------------------------ */
/* FCGI_PARAMS                                                              */
/* ------------------------------------------------------------------------ */

/* struct fcgi_in.nv: where in a name-value pair the decoder is. */
enum { NV_NLEN = 0, NV_VLEN, NV_NAME, NV_VALUE };

/* The variables that name a request: bits of struct fcgi_in.var while a
 * name is matched, then the index of the value's variable, or V_NONE. */
enum { V_METHOD = 0, V_URI, V_SCRIPT, V_QUERY, V_COUNT, V_NONE = 0xff };

static const struct {
	char name[16];
	uint8_t len;
} vars[V_COUNT] = {
	[V_METHOD] = { "REQUEST_METHOD", 14 },
	[V_URI] = { "REQUEST_URI", 11 },
	[V_SCRIPT] = { "SCRIPT_NAME", 11 },
	[V_QUERY] = { "QUERY_STRING", 12 },
};

/* struct fcgi_in.psrc: where the path being templated comes from. */
enum { PSRC_NONE = 0, PSRC_SCRIPT, PSRC_URI };

/* struct fcgi_in.part: which part of a REQUEST_URI or SCRIPT_NAME value. */
enum { P_PATH = 0, P_AUTHORITY, P_QUERY, P_END };

/* The decoder takes the stream of request id from its start. */
static void params_begin(struct fcgi_in *p, uint16_t id)
{
	p->pid = id;
	p->nv = NV_NLEN;
	p->lenb = 0;
	p->method_len = 0;
	p->method_ok = 0;
	p->psrc = PSRC_NONE;
	p->want_manual = false;
}

/*
 * Takes a byte of a pair's length: one byte below 128, else four with the
 * top bit of the first set. Returns true when the length, in p->acc, is
 * complete.
 */
static bool len_byte(struct fcgi_in *p, unsigned char c)
{
	if (p->lenb == 0) {
		if (!(c & 0x80)) {
			p->acc = c;
			return true;
		}
		p->acc = c & 0x7fu;
		p->lenb = 3;
		return false;
	}
	p->acc = p->acc << 8 | c;
	return --p->lenb == 0;
}

/* A value of REQUEST_URI or SCRIPT_NAME starts: the path is templated
 * into endpoint from its start (the method goes in front at the end). */
static void path_begin(struct fcgi_in *p, uint8_t src)
{
	p->psrc = src;
	p->part = P_PATH;
	p->scheme = S_START;
	p->kept = 0;
	tpl_begin(&p->tpl, 0);
	query_reset(&p->query);
}

/* Gives the templater a path byte, keeping HTTP_TARGET_MAX of them like the
 * HTTP parser; the first one past them cuts the path (tpl_cut()). */
static void path_keep(struct fcgi_in *p, unsigned char c)
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
 * Takes a byte of a REQUEST_URI (uri) or SCRIPT_NAME value: the path, in
 * origin or absolute form, then the query string, which only a REQUEST_URI
 * has. A control byte or a space ends the target: what follows is dropped,
 * so that an endpoint holds neither, as an HTTP request's cannot.
 */
static void target_byte(struct fcgi_in *p, unsigned char c, bool uri)
{
	bool end = is_ctl(c) || c == ' ';

	switch (p->part) {
	case P_PATH:
		if (end || c == '?') {
			p->part = c == '?' && uri ? P_QUERY : P_END;
		} else if (scheme_byte(&p->scheme, c)) {
			/* Absolute form: the path starts after the authority. */
			tpl_begin(&p->tpl, 0);
			p->kept = 0;
			p->part = P_AUTHORITY;
		} else {
			path_keep(p, c);
		}
		break;
	case P_AUTHORITY:
		if (end || c == '?') {
			p->part = c == '?' && uri ? P_QUERY : P_END;
		} else if (c == '/') {
			p->part = P_PATH;
			path_keep(p, c);
		}
		break;
	case P_QUERY:
		if (end) {
			query_param_end(&p->query, &p->want_manual);
			p->part = P_END;
		} else {
			query_byte(&p->query, &p->want_manual, c);
		}
		break;
	default:
		break;
	}
}

/* A value starts; p->vlen is its length. Values not needed are skipped. */
static void value_begin(struct fcgi_in *p, unsigned v)
{
	switch (v) {
	case V_METHOD:
		p->method_len = 0;
		p->method_ok = p->vlen > 0 && p->vlen <= METHOD_LEN_MAX;
		if (!p->method_ok)
			v = V_NONE;
		break;
	case V_URI:
		/* An empty REQUEST_URI is no REQUEST_URI. */
		if (p->vlen == 0)
			v = V_NONE;
		else
			path_begin(p, PSRC_URI);
		break;
	case V_SCRIPT:
		if (p->vlen == 0 || p->psrc == PSRC_URI)
			v = V_NONE;
		else
			path_begin(p, PSRC_SCRIPT);
		break;
	case V_QUERY:
		query_reset(&p->query);
		break;
	default:
		v = V_NONE;
		break;
	}
	p->var = (uint8_t)v;
	p->nv = NV_VALUE;
}

/* A value ended: the query matcher ends its last parameter. */
static void value_end(struct fcgi_in *p)
{
	if (p->var == V_QUERY || (p->var == V_URI && p->part == P_QUERY))
		query_param_end(&p->query, &p->want_manual);
	p->nv = NV_NLEN;
	p->lenb = 0;
}

/* Takes a byte of a value that is needed. */
static void value_byte(struct fcgi_in *p, unsigned char c)
{
	switch (p->var) {
	case V_METHOD:
		if (p->method_ok && is_method_char(c))
			p->method[p->method_len++] = (char)c;
		else
			p->method_ok = 0;
		break;
	case V_URI:
		target_byte(p, c, true);
		break;
	case V_SCRIPT:
		target_byte(p, c, false);
		break;
	default: /* V_QUERY */
		query_byte(&p->query, &p->want_manual, c);
		break;
	}
}

/* A name ended: its value, whose length is known, starts (and may end). */
static void name_end(struct fcgi_in *p)
{
	value_begin(p, p->var ? (unsigned)__builtin_ctz(p->var) : V_NONE);
	if (p->vlen == 0)
		value_end(p);
}

/* Both lengths are known: the name starts, matched against the names of
 * the same length. */
static void name_begin(struct fcgi_in *p)
{
	uint8_t m = 0;

	for (unsigned k = 0; k < V_COUNT; k++)
		if (vars[k].len == p->nlen)
			m |= (uint8_t)(1u << k);
	p->var = m;
	p->nidx = 0;
	p->nv = NV_NAME;
	if (p->nlen == 0)
		name_end(p);
}

/* Narrows the names the current one may be with its next byte c. */
static void name_byte(struct fcgi_in *p, unsigned char c)
{
	for (unsigned k = 0; k < V_COUNT; k++)
		if ((p->var & (1u << k)) &&
		    (unsigned char)vars[k].name[p->nidx] != c)
			p->var &= (uint8_t)~(1u << k);
	p->nidx++;
}

/*
 * Decodes content b[0..len) of the FCGI_PARAMS stream being decoded. Names
 * that cannot matter and values not needed are skipped in bulk; the rest
 * costs a bounded amount per byte.
 */
static void params_bytes(struct fcgi_in *p, const unsigned char *b,
			 size_t len)
{
	size_t i = 0, k;

	while (i < len) {
		switch (p->nv) {
		case NV_NLEN:
			if (len_byte(p, b[i++])) {
				p->nlen = p->acc;
				p->nv = NV_VLEN;
			}
			break;
		case NV_VLEN:
			if (len_byte(p, b[i++])) {
				p->vlen = p->acc;
				name_begin(p);
			}
			break;
		case NV_NAME:
			if (p->var) {
				name_byte(p, b[i++]);
				p->nlen--;
			} else {
				k = min_size(p->nlen, len - i);
				i += k;
				p->nlen -= (uint32_t)k;
			}
			if (p->nlen == 0)
				name_end(p);
			break;
		default: /* NV_VALUE */
			if (p->var != V_NONE) {
				value_byte(p, b[i++]);
				p->vlen--;
			} else {
				k = min_size(p->vlen, len - i);
				i += k;
				p->vlen -= (uint32_t)k;
			}
			if (p->vlen == 0)
				value_end(p);
			break;
		}
	}
}

/*
 * The stream being decoded ended: the endpoint is "METHOD /path" when a
 * valid REQUEST_METHOD and a path came, with the path, templated into
 * endpoint from its start, moved behind the method and cut where the HTTP
 * parser, templating behind the method, would cut it. Unknown (length 0)
 * otherwise, or when the stream ends inside a pair.
 */
static void params_finish(struct fcgi_in *p)
{
	size_t n, k, m = p->method_len;

	p->manual = p->want_manual;
	p->endpoint_len = 0;
	if (p->nv != NV_NLEN || p->lenb || !p->method_ok ||
	    p->psrc == PSRC_NONE) {
		p->manual = false;
		return;
	}
	n = tpl_finish(&p->tpl, p->endpoint, ENDPOINT_CAP);
	k = min_size(n, ENDPOINT_CAP - m - 1);
	memmove(p->endpoint + m + 1, p->endpoint, k);
	memcpy(p->endpoint, p->method, m);
	p->endpoint[m] = ' ';
	p->endpoint[m + 1 + k] = '\0';
	p->endpoint_len = (uint8_t)(m + 1 + k);
}

/*
 * An FCGI_PARAMS record of request r starts. The first stream to start while
 * none is decoded is decoded; one that starts while another is open is
 * skipped. An empty record ends the stream: NAME.
 */
static unsigned in_params_start(struct fcgi_in *p, struct fcgi_req *r)
{
	uint16_t id = p->rec.id;

	if (!r || (r->flags & F_PARAMS_DONE))
		return 0;
	if (p->pid == 0 && !(r->flags & F_PARAMS_SKIP))
		params_begin(p, id);
	else if (p->pid != id)
		r->flags |= F_PARAMS_SKIP;
	if (p->rec.len > 0) {
		p->rec.skip = p->pid != id;
		return 0;
	}
	r->flags |= F_PARAMS_DONE;
	p->id = id;
	if (p->pid == id) {
		params_finish(p);
		p->pid = 0;
	} else {
		/* Another stream is being decoded into endpoint: leave it. */
		p->endpoint_len = 0;
		p->manual = false;
	}
	return FCGI_IN_NAME;
}

/* ------------------------------------------------------------------------ */
/* The read side                                                            */
/* ------------------------------------------------------------------------ */

void fcgi_in_init(struct fcgi_in *p)
{
	memset(p, 0, sizeof(*p));
}

void fcgi_in_forget(struct fcgi_in *p, uint16_t id)
{
	if (p->pid == id)
		p->pid = 0;
}

/*
 * A record header is complete: check its framing. Until the connection is
 * known to speak FastCGI, only FCGI_BEGIN_REQUEST (or a management
 * FCGI_GET_VALUES before it) may come.
 */
static unsigned in_head(struct fcgi_in *p)
{
	const struct fcgi_rec *rec = &p->rec;

	if (rec->version != FCGI_VERSION_1)
		return FCGI_IN_ERROR;
	if (rec->type == FCGI_BEGIN_REQUEST) {
		if (rec->len != BODY_LEN || rec->id == 0)
			return FCGI_IN_ERROR;
		/* The id starts over: a stream of its last use is dropped. */
		fcgi_in_forget(p, rec->id);
	} else if (!p->detected &&
		   !(rec->type == FCGI_GET_VALUES && rec->id == 0)) {
		return FCGI_IN_ERROR;
	}
	return FCGI_IN_HEAD;
}

/* A record's body starts (the caller gave its request's state r). */
static unsigned in_start(struct fcgi_in *p, struct fcgi_req *r)
{
	p->rec.started = 1;
	switch (p->rec.type) {
	case FCGI_BEGIN_REQUEST:
		p->rec.skip = 0;
		p->id = p->rec.id;
		return FCGI_IN_BEGIN;
	case FCGI_ABORT_REQUEST:
		if (!r)
			return 0;
		r->flags |= FCGI_REQ_ABORTED;
		p->id = p->rec.id;
		return FCGI_IN_ABORT;
	case FCGI_PARAMS:
		return in_params_start(p, r);
	default:
		return 0;
	}
}

/*
 * Content b[0..len) of the record being read, which is not skipped: the
 * role of FCGI_BEGIN_REQUEST (bytes 0 and 1), or FCGI_PARAMS.
 */
static unsigned in_content(struct fcgi_in *p, const unsigned char *b,
			   size_t len)
{
	size_t at = p->rec.len - p->rec.left;

	if (p->rec.type != FCGI_BEGIN_REQUEST) {
		params_bytes(p, b, len);
		return 0;
	}
	for (size_t i = 0; i < len && at + i < 2; i++) {
		if (at + i == 0) {
			p->role_hi = b[i];
			continue;
		}
		if (!p->detected) {
			if (p->role_hi != 0 || b[i] != FCGI_RESPONDER)
				return FCGI_IN_ERROR;
			p->detected = true;
		}
	}
	return 0;
}

size_t fcgi_in_feed(struct fcgi_in *p, struct fcgi_req *r, const char *buf,
		    size_t len, unsigned *ret_events)
{
	const unsigned char *b = (const unsigned char *)buf;
	struct fcgi_rec *rec = &p->rec;
	unsigned ev = 0;
	size_t off = 0, k;

	if (p->state == ST_ERROR) {
		*ret_events = FCGI_IN_ERROR;
		return 0;
	}
	while (!ev) {
		if (rec->got < FCGI_HEADER_LEN) {
			if (off == len)
				break;
			off += rec_head(rec, b + off, len - off);
			if (rec->got == FCGI_HEADER_LEN)
				ev = in_head(p);
		} else if (!rec->started) {
			ev = in_start(p, r);
		} else if (rec->left) {
			if (off == len)
				break;
			k = min_size(len - off, rec->left);
			if (!rec->skip)
				ev = in_content(p, b + off, k);
			rec->left -= (uint16_t)k;
			off += k;
		} else if (rec->pad) {
			if (off == len)
				break;
			k = min_size(len - off, rec->pad);
			rec->pad -= (uint8_t)k;
			off += k;
		} else {
			rec->got = 0; /* the record ended */
		}
	}
	if (ev & FCGI_IN_ERROR)
		p->state = ST_ERROR;
	*ret_events = ev;
	return off;
}

/* ------------------------------------------------------------------------ */
/* The write side                                                           */
/* ------------------------------------------------------------------------ */

/*
 * struct fcgi_req.scan, the Status: scanner over a request's CGI headers:
 * 0 at the start of a line, 1 to 6 the bytes of "status" matched there
 * (any case), then the states below.
 */
enum {
	SC_LINE = 0,
	SC_WS = 7,     /* after "Status:": spaces, then the code */
	SC_D1 = 8,     /* one digit of the code read */
	SC_D2 = 9,
	SC_D3 = 10,    /* three digits: a space or the line's end must follow */
	SC_SKIP = 11,  /* in a line that does not matter, until LF */
	SC_CR = 12,    /* a CR at the start of a line: LF ends the headers */
	SC_DONE = 13,  /* the headers ended: the rest is the body */
};

static const char status_name[] = "status:";

/* The CGI headers ended: without a Status: header, the status is 200. */
static void headers_end(struct fcgi_req *r)
{
	r->scan = SC_DONE;
	if (r->status == 0)
		r->status = 200;
}

/* Takes byte c at the start of a line or in "Status:"; the first valid
 * Status: header wins. */
static void scan_name_byte(struct fcgi_req *r, unsigned char c)
{
	if (r->scan == SC_LINE && (c == '\n' || c == '\r')) {
		if (c == '\n')
			headers_end(r);
		else
			r->scan = SC_CR;
		return;
	}
	if (r->status == 0 &&
	    to_lower(c) == (unsigned char)status_name[r->scan]) {
		r->scan++;
		if (r->scan == sizeof(status_name) - 1)
			r->scan = SC_WS;
	} else {
		r->scan = c == '\n' ? SC_LINE : SC_SKIP;
	}
}

/* Takes byte c of a Status: value: spaces, three digits, then a space or
 * the line's end. Anything else leaves the status alone. */
static void scan_value_byte(struct fcgi_req *r, unsigned char c)
{
	bool eol = c == '\r' || c == '\n' || c == ' ' || c == '\t';

	if (r->scan == SC_WS && (c == ' ' || c == '\t'))
		return;
	if (r->scan < SC_D3 && is_digit(c)) {
		r->digits = (uint16_t)(r->scan == SC_WS ? c - '0'
					: r->digits * 10 + (c - '0'));
		r->scan++;
		return;
	}
	if (r->scan == SC_D3 && eol && r->digits >= 100)
		r->status = r->digits;
	r->scan = c == '\n' ? SC_LINE : SC_SKIP;
}

/* Reads the CGI headers at the start of a request's FCGI_STDOUT from
 * b[0..len); the body after them is skipped in one step. */
static void scan_bytes(struct fcgi_req *r, const unsigned char *b, size_t len)
{
	size_t i = 0;

	while (i < len && r->scan != SC_DONE) {
		unsigned char c = b[i];

		if (r->scan == SC_SKIP) {
			const unsigned char *lf = memchr(b + i, '\n', len - i);

			if (!lf)
				return;
			i = (size_t)(lf - b) + 1;
			r->scan = SC_LINE;
			continue;
		}
		i++;
		if (r->scan == SC_CR) {
			if (c == '\n')
				headers_end(r);
			else
				r->scan = SC_SKIP;
		} else if (r->scan >= SC_WS) {
			scan_value_byte(r, c);
		} else {
			scan_name_byte(r, c);
		}
	}
}

void fcgi_out_init(struct fcgi_out *p)
{
	memset(p, 0, sizeof(*p));
}

/* A record header is complete: check its framing. */
static unsigned out_head(const struct fcgi_out *p)
{
	if (p->rec.version != FCGI_VERSION_1)
		return FCGI_OUT_ERROR;
	if (p->rec.type == FCGI_END_REQUEST && p->rec.len != BODY_LEN)
		return FCGI_OUT_ERROR;
	return FCGI_OUT_HEAD;
}

/* Content b[0..len) of the record being written: protocolStatus is byte 4
 * of FCGI_END_REQUEST; a request's FCGI_STDOUT has its CGI headers. */
static unsigned out_content(struct fcgi_out *p, struct fcgi_req *r,
			    const unsigned char *b, size_t len)
{
	size_t at = p->rec.len - p->rec.left;

	if (p->rec.type == FCGI_END_REQUEST) {
		if (at <= 4 && at + len > 4)
			p->proto_status = b[4 - at];
		return at + len == BODY_LEN ? FCGI_OUT_END : 0;
	}
	/* The request may have ended since the record began (its id began
	 * again): its headers are no one's. */
	if (r)
		scan_bytes(r, b, len);
	return 0;
}

size_t fcgi_out_feed(struct fcgi_out *p, struct fcgi_req *r, const char *buf,
		     size_t len, unsigned *ret_events)
{
	const unsigned char *b = (const unsigned char *)buf;
	struct fcgi_rec *rec = &p->rec;
	unsigned ev = 0;
	size_t off = 0, k;

	if (p->state == ST_ERROR) {
		*ret_events = FCGI_OUT_ERROR;
		return 0;
	}
	while (!ev) {
		if (rec->got < FCGI_HEADER_LEN) {
			if (off == len)
				break;
			off += rec_head(rec, b + off, len - off);
			if (rec->got == FCGI_HEADER_LEN)
				ev = out_head(p);
		} else if (!rec->started) {
			rec->started = 1;
			rec->skip = !(rec->type == FCGI_END_REQUEST ||
				      (rec->type == FCGI_STDOUT && r &&
				       r->scan != SC_DONE));
		} else if (rec->left) {
			if (off == len)
				break;
			k = min_size(len - off, rec->left);
			if (!rec->skip)
				ev = out_content(p, r, b + off, k);
			rec->left -= (uint16_t)k;
			off += k;
		} else if (rec->pad) {
			if (off == len)
				break;
			k = min_size(len - off, rec->pad);
			rec->pad -= (uint8_t)k;
			off += k;
		} else {
			rec->got = 0;
		}
	}
	if (ev & FCGI_OUT_ERROR)
		p->state = ST_ERROR;
	*ret_events = ev;
	return off;
}

size_t fcgi_out_skip(struct fcgi_out *p, struct fcgi_req *r, uint64_t n,
		     unsigned *ret_events)
{
	struct fcgi_rec *rec = &p->rec;
	size_t k;

	*ret_events = 0;
	if (p->state == ST_OK && rec->got == FCGI_HEADER_LEN &&
	    rec->left == 0 && rec->pad == 0 && rec->started)
		rec->got = 0; /* the record ended */
	if (p->state == ST_ERROR || rec->got != FCGI_HEADER_LEN ||
	    rec->left == 0 ||
	    (rec->type != FCGI_STDOUT && rec->type != FCGI_STDERR)) {
		p->state = ST_ERROR;
		*ret_events = FCGI_OUT_ERROR;
		return 0;
	}
	if (!rec->started) {
		rec->started = 1;
		rec->skip = 1;
	}
	/* Unseen header bytes: the headers end there, Status: unread. */
	if (rec->type == FCGI_STDOUT && r && r->scan != SC_DONE)
		headers_end(r);
	k = (size_t)(n < rec->left ? n : rec->left);
	rec->left -= (uint16_t)k;
	return k;
}
