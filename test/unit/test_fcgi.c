/*
 * test_fcgi.c — unit tests for the FastCGI delimiter (shim/fcgi.h), driven
 * the way shim/conn_fcgi.c drives it (test/unit/fcgi_feed.h).
 *
 * Each test is a script of what a server reads and writes, built from
 * records the way nginx and php-fpm make them (padded to 8 bytes), and the
 * log of what the delimiter finds. Most scripts are also fed split at every
 * byte of every step, and a byte at a time, and must give the same log.
 * Every piece is copied so that it ends where an unmapped guard page begins:
 * a read past its end crashes the test.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "http.h"
#include "http_feed.h"
#include "fcgi_feed.h"

/* ------------------------------------------------------------------------ */
/* Building records                                                         */
/* ------------------------------------------------------------------------ */

#define BUF_MAX (1u << 17)

struct buf {
	size_t n;
	char b[BUF_MAX];
};

static void put(struct buf *o, const void *p, size_t n)
{
	if (o->n + n > BUF_MAX) {
		printf("Bail out! test input too long\n");
		exit(1);
	}
	if (n)
		memcpy(o->b + o->n, p, n);
	o->n += n;
}

/* A record with `pad` bytes of padding. */
static void rec_pad(struct buf *o, unsigned type, unsigned id,
		    const void *content, size_t len, unsigned pad)
{
	unsigned char h[8] = { 1, (unsigned char)type,
			       (unsigned char)(id >> 8), (unsigned char)id,
			       (unsigned char)(len >> 8), (unsigned char)len,
			       (unsigned char)pad, 0 };
	static const char zeros[256];

	put(o, h, 8);
	put(o, content, len);
	put(o, zeros, pad);
}

/* A record padded to a multiple of 8 bytes, as nginx and php-fpm do. */
static void rec(struct buf *o, unsigned type, unsigned id, const void *content,
		size_t len)
{
	rec_pad(o, type, id, content, len, (unsigned)((8 - len % 8) % 8));
}

static void begin(struct buf *o, unsigned id, unsigned role, bool keep_conn)
{
	unsigned char body[8] = { (unsigned char)(role >> 8),
				  (unsigned char)role, keep_conn ? 1 : 0 };

	rec_pad(o, FCGI_BEGIN_REQUEST, id, body, 8, 0);
}

static void end_request(struct buf *o, unsigned id, unsigned proto_status)
{
	unsigned char body[8] = { 0, 0, 0, 0, (unsigned char)proto_status };

	rec_pad(o, FCGI_END_REQUEST, id, body, 8, 0);
}

/* A pair's length: one byte below 128 (unless `four`), else four. */
static void nv_len(struct buf *o, size_t n, bool four)
{
	unsigned char b[4] = { (unsigned char)(n >> 24 | 0x80),
			       (unsigned char)(n >> 16), (unsigned char)(n >> 8),
			       (unsigned char)n };

	if (n < 128 && !four) {
		b[0] = (unsigned char)n;
		put(o, b, 1);
	} else {
		put(o, b, 4);
	}
}

static void nv4(struct buf *o, const char *name, const char *value, bool four)
{
	nv_len(o, strlen(name), four);
	nv_len(o, strlen(value), four);
	put(o, name, strlen(name));
	put(o, value, strlen(value));
}

static void nv(struct buf *o, const char *name, const char *value)
{
	nv4(o, name, value, false);
}

/* The pairs as FCGI_PARAMS records of at most `per` bytes, then the empty
 * record that ends the stream. */
static void params(struct buf *o, unsigned id, const struct buf *pairs,
		   size_t per)
{
	for (size_t at = 0; at < pairs->n; at += per) {
		size_t n = pairs->n - at < per ? pairs->n - at : per;

		rec(o, FCGI_PARAMS, id, pairs->b + at, n);
	}
	rec(o, FCGI_PARAMS, id, NULL, 0);
}

/* The parameters nginx sends with Debian's fastcgi_params and a
 * SCRIPT_FILENAME, in that order. */
static void nginx_pairs(struct buf *p, const char *method, const char *uri,
			const char *query, const char *script)
{
	nv(p, "SCRIPT_FILENAME", "/srv/www/app.php");
	nv(p, "QUERY_STRING", query);
	nv(p, "REQUEST_METHOD", method);
	nv(p, "CONTENT_TYPE", "");
	nv(p, "CONTENT_LENGTH", "");
	nv(p, "SCRIPT_NAME", script);
	nv(p, "REQUEST_URI", uri);
	nv(p, "DOCUMENT_URI", script);
	nv(p, "DOCUMENT_ROOT", "/srv/www");
	nv(p, "SERVER_PROTOCOL", "HTTP/1.1");
	nv(p, "REQUEST_SCHEME", "http");
	nv(p, "GATEWAY_INTERFACE", "CGI/1.1");
	nv(p, "SERVER_SOFTWARE", "nginx/1.22.1");
	nv(p, "REMOTE_ADDR", "127.0.0.1");
	nv(p, "REMOTE_PORT", "51234");
	nv(p, "REMOTE_USER", "");
	nv(p, "SERVER_ADDR", "127.0.0.1");
	nv(p, "SERVER_PORT", "8080");
	nv(p, "SERVER_NAME", "localhost");
	nv(p, "REDIRECT_STATUS", "200");
	nv(p, "HTTP_HOST", "localhost");
	nv(p, "HTTP_USER_AGENT", "Python-urllib/3.11");
	nv(p, "HTTP_ACCEPT_ENCODING", "identity");
}

/* What nginx writes for one request: BEGIN, PARAMS, the empty STDIN. */
static void nginx_request(struct buf *o, unsigned id, bool keep,
			  const char *method, const char *uri,
			  const char *query)
{
	static struct buf p;

	p.n = 0;
	nginx_pairs(&p, method, uri, query, "/app.php");
	begin(o, id, FCGI_RESPONDER, keep);
	params(o, id, &p, 65535);
	rec(o, FCGI_STDIN, id, NULL, 0);
}

/* What php-fpm writes for one answer: STDOUT, its end, END_REQUEST. */
static void php_answer(struct buf *o, unsigned id, const char *stdout_text)
{
	rec(o, FCGI_STDOUT, id, stdout_text, strlen(stdout_text));
	rec(o, FCGI_STDOUT, id, NULL, 0);
	end_request(o, id, FCGI_REQUEST_COMPLETE);
}

static const char php_ok[] = "X-Powered-By: PHP/8.2.36\r\n"
			     "Content-type: text/html; charset=UTF-8\r\n"
			     "\r\n"
			     "<p>user 42</p>\n";

/* ------------------------------------------------------------------------ */
/* Running scripts                                                          */
/* ------------------------------------------------------------------------ */

/* One step of a script: bytes the server reads (out false) or writes. */
struct step {
	bool out;
	const struct buf *b;
};

#define IN(b) { false, (b) }
#define OUT(b) { true, (b) }

/* Feeds in[0..n) as one guarded piece to the direction asked. */
static bool feed(struct sim *s, bool out, const char *in, size_t n)
{
	const char *g = guarded(in, n);

	return out ? sim_out(s, g, n) : sim_in(s, g, n);
}

/*
 * Runs the script on a fresh connection: step `split_step` split at byte
 * `split`, the others whole, or (split_step < 0) every step in pieces of
 * `piece` bytes (0: whole). Returns the log.
 */
static const char *run_script(const struct step *st, int nsteps,
			      int split_step, size_t split, size_t piece)
{
	static struct sim s;

	sim_init(&s);
	for (int i = 0; i < nsteps; i++) {
		const struct buf *b = st[i].b;
		size_t at = 0;

		if (i == split_step) {
			if (feed(&s, st[i].out, b->b, split))
				feed(&s, st[i].out, b->b + split,
				     b->n - split);
			continue;
		}
		while (at < b->n) {
			size_t n = piece && piece < b->n - at ? piece
							      : b->n - at;

			if (!feed(&s, st[i].out, b->b + at, n))
				break;
			at += n;
		}
	}
	CHECK(!s.overflow);
	return s.log;
}

/* Checks the log of the script fed whole, a byte at a time, and split at
 * every byte of every step. */
static void check_script(const struct step *st, int nsteps, const char *want)
{
	static char whole[SIM_LOG];
	int bad = 0;

	snprintf(whole, sizeof(whole), "%s", run_script(st, nsteps, -1, 0, 0));
	CHECK_STR(whole, want);
	CHECK_STR(run_script(st, nsteps, -1, 0, 1), want);
	CHECK_STR(run_script(st, nsteps, -1, 0, 7), want);
	for (int i = 0; i < nsteps; i++)
		for (size_t k = 0; k <= st[i].b->n; k++)
			if (strcmp(run_script(st, nsteps, i, k, 0), want) &&
			    bad++ < 3)
				printf("# step %d split at %zu: %s\n", i, k,
				       run_script(st, nsteps, i, k, 0));
	CHECK_EQ(bad, 0);
}

/* The log of bytes read, fed whole. */
static const char *log_in(const struct buf *in)
{
	const struct step st[] = { IN(in) };

	return run_script(st, 1, -1, 0, 0);
}

static struct buf in1, in2, out1, out2, pairs;

static void reset_bufs(void)
{
	in1.n = in2.n = out1.n = out2.n = pairs.n = 0;
}

/* ------------------------------------------------------------------------ */
/* Tests                                                                    */
/* ------------------------------------------------------------------------ */

/* nginx -> php-fpm without keep-alive: php-fpm reads the empty STDIN after
 * answering (the phantom request of the turn counter): it is no request. */
static void test_nginx_php_fpm(void)
{
	static struct buf stdin_end;

	reset_bufs();
	nginx_pairs(&pairs, "GET", "/users/42?tab=1", "tab=1", "/users.php");
	begin(&in1, 1, FCGI_RESPONDER, false);
	params(&in1, 1, &pairs, 65535);
	stdin_end.n = 0;
	rec(&stdin_end, FCGI_STDIN, 1, NULL, 0);
	php_answer(&out1, 1, php_ok);
	{
		const struct step st[] = { IN(&in1), OUT(&out1),
					   IN(&stdin_end) };

		check_script(st, 3, "B1 N1=GET /users/:id E1=200");
	}
}

/* Kept-open connection: request after request with the same id. */
static void test_keep_conn(void)
{
	reset_bufs();
	nginx_request(&in1, 1, true, "GET", "/users/7", "");
	php_answer(&out1, 1, php_ok);
	nginx_request(&in2, 1, true, "POST", "/cpu.php?profile=1", "profile=1");
	php_answer(&out2, 1, "Status: 201 Created\r\n\r\n");
	{
		const struct step st[] = { IN(&in1), OUT(&out1), IN(&in2),
					   OUT(&out2) };

		check_script(st, 4,
			     "B1 N1=GET /users/:id E1=200 "
			     "B1 N1=POST /cpu.php! E1=201");
	}
}

/* Records of two requests interleaved, both ways. */
static void test_multiplexed(void)
{
	struct buf p1 = { 0 }, p2 = { 0 };

	reset_bufs();
	nginx_pairs(&p1, "GET", "/a/1", "", "/a.php");
	nginx_pairs(&p2, "DELETE", "/b/2", "", "/b.php");
	begin(&in1, 1, FCGI_RESPONDER, true);
	begin(&in1, 2, FCGI_RESPONDER, true);
	params(&in1, 2, &p2, 65535);
	params(&in1, 1, &p1, 100); /* in records of 100 bytes */
	rec(&in1, FCGI_STDIN, 1, "x=1", 3);
	rec(&in1, FCGI_STDIN, 2, NULL, 0);
	rec(&in1, FCGI_STDIN, 1, NULL, 0);
	rec(&out1, FCGI_STDOUT, 2, "Status: 404 Not Found\r\n", 23);
	rec(&out1, FCGI_STDOUT, 1, "Content-type: text/plain\r\n\r\n", 28);
	rec(&out1, FCGI_STDERR, 1, "warning", 7);
	rec(&out1, FCGI_STDOUT, 2, "Content-type: text/plain\r\n\r\nno", 30);
	rec(&out1, FCGI_STDOUT, 1, "ok", 2);
	end_request(&out1, 1, FCGI_REQUEST_COMPLETE);
	rec(&out1, FCGI_STDOUT, 2, NULL, 0);
	end_request(&out1, 2, FCGI_REQUEST_COMPLETE);
	{
		const struct step st[] = { IN(&in1), OUT(&out1) };

		check_script(st, 2,
			     "B1 B2 N2=DELETE /b/:id N1=GET /a/:id "
			     "E1=200 E2=404");
	}
}

/* Two FCGI_PARAMS streams open at once: the first is decoded, the second
 * is named unknown, and the decoder is free again for a third. */
static void test_params_streams_interleaved(void)
{
	struct buf p1 = { 0 }, p2 = { 0 }, p3 = { 0 };

	reset_bufs();
	nginx_pairs(&p1, "GET", "/one", "", "/one.php");
	nginx_pairs(&p2, "GET", "/two", "", "/two.php");
	nginx_pairs(&p3, "GET", "/three", "", "/three.php");
	begin(&in1, 1, FCGI_RESPONDER, true);
	begin(&in1, 2, FCGI_RESPONDER, true);
	rec(&in1, FCGI_PARAMS, 1, p1.b, 50);
	rec(&in1, FCGI_PARAMS, 2, p2.b, 50);
	rec(&in1, FCGI_PARAMS, 1, p1.b + 50, p1.n - 50);
	rec(&in1, FCGI_PARAMS, 2, p2.b + 50, p2.n - 50);
	rec(&in1, FCGI_PARAMS, 1, NULL, 0);
	begin(&in1, 3, FCGI_RESPONDER, true);
	params(&in1, 3, &p3, 65535);
	rec(&in1, FCGI_PARAMS, 2, NULL, 0);
	{
		const struct step st[] = { IN(&in1) };

		check_script(st, 1, "B1 B2 N1=GET /one B3 N3=GET /three N2=?");
	}
}

/* Padding of any length, on records of every kind. */
static void test_padding(void)
{
	reset_bufs();
	nv(&pairs, "REQUEST_METHOD", "GET");
	nv(&pairs, "REQUEST_URI", "/p/123");
	rec_pad(&in1, FCGI_BEGIN_REQUEST, 5,
		"\0\1\0\0\0\0\0\0", 8, 255);
	rec_pad(&in1, FCGI_PARAMS, 5, pairs.b, pairs.n, 13);
	rec_pad(&in1, FCGI_PARAMS, 5, NULL, 0, 7);
	rec_pad(&in1, FCGI_STDIN, 5, NULL, 0, 1);
	rec_pad(&out1, FCGI_STDOUT, 5, "Status: 500\r\n\r\n", 15, 200);
	rec_pad(&out1, FCGI_STDOUT, 5, NULL, 0, 3);
	rec_pad(&out1, FCGI_END_REQUEST, 5, "\0\0\0\0\0\0\0\0", 8, 8);
	{
		const struct step st[] = { IN(&in1), OUT(&out1) };

		check_script(st, 2, "B5 N5=GET /p/:id E5=500");
	}
}

/*
 * 4-byte lengths, a REQUEST_URI longer than 127 bytes and than the bytes
 * templated, pairs split across records inside their lengths, names and
 * values: the endpoint is the one the HTTP parser makes of the same path.
 */
static void test_long_lengths_and_splits(void)
{
	static char uri[400], http[512], want[256];
	size_t n = 0;

	reset_bufs();
	n += (size_t)sprintf(uri + n, "/api/v2");
	for (int i = 0; i < 20; i++)
		n += (size_t)sprintf(uri + n, "/seg%d/%d", i, 1000 + i);
	sprintf(uri + n, "?q=1&profile=yes");
	nv4(&pairs, "HTTP_COOKIE", "session=abcdef", true);
	nv4(&pairs, "REQUEST_METHOD", "PATCH", true);
	nv(&pairs, "REQUEST_URI", uri); /* 4-byte value length: > 127 */
	begin(&in1, 300, FCGI_RESPONDER, false);
	params(&in1, 300, &pairs, 3); /* records of 3 bytes */
	sprintf(http, "PATCH %s HTTP/1.1\r\n\r\n", uri);
	snprintf(want, sizeof(want), "B300 N300=%s!", endpoint_of(http));
	CHECK(strlen(endpoint_of(http)) > 100);
	{
		const struct step st[] = { IN(&in1) };

		check_script(st, 1, want);
	}
}

/* Names from the parameters that are there. */
static void test_names(void)
{
	static const struct {
		const char *pairs[8];
		const char *want;
	} cases[] = {
		{ { "REQUEST_METHOD", "GET", "SCRIPT_NAME", "/index.php" },
		  "N1=GET /index.php" },
		{ { "SCRIPT_NAME", "/index.php", "REQUEST_URI", "/blog/2024",
		    "REQUEST_METHOD", "GET" },
		  "N1=GET /blog/:id" },
		{ { "REQUEST_URI", "/blog/2024", "SCRIPT_NAME", "/index.php",
		    "REQUEST_METHOD", "HEAD" },
		  "N1=HEAD /blog/:id" },
		{ { "REQUEST_METHOD", "GET", "REQUEST_URI", "",
		    "SCRIPT_NAME", "/s.php" },
		  "N1=GET /s.php" },
		{ { "REQUEST_METHOD", "GET", "REQUEST_URI", "?x=1" },
		  "N1=GET /" },
		{ { "REQUEST_METHOD", "GET", "REQUEST_URI",
		    "http://example.com:8080/users/42?profile=1" },
		  "N1=GET /users/:id!" },
		{ { "REQUEST_METHOD", "GET", "REQUEST_URI",
		    "/u/550e8400-e29b-41d4-a716-446655440000/x" },
		  "N1=GET /u/:id/x" },
		{ { "REQUEST_METHOD", "GET", "REQUEST_URI", "/a b/c" },
		  "N1=GET /a" },
		/* Not origin form: kept as the HTTP parser keeps it. */
		{ { "REQUEST_METHOD", "GET", "REQUEST_URI", ".cpu.php/12" },
		  "N1=GET .cpu.php/:id" },
		{ { "REQUEST_METHOD", "GET", "REQUEST_URI", "/a\r\n/c" },
		  "N1=GET /a" },
		{ { "REQUEST_METHOD", "GET", "SCRIPT_NAME", "/s.php?x",
		    "QUERY_STRING", "a=1&PROFILE=TRUE" },
		  "N1=GET /s.php!" },
		{ { "REQUEST_METHOD", "GET", "REQUEST_URI", "/x?profile=0",
		    "QUERY_STRING", "profile=2" },
		  "N1=GET /x" },
		{ { "REQUEST_URI", "/no/method" }, "N1=?" },
		{ { "REQUEST_METHOD", "GET" }, "N1=?" },
		{ { "REQUEST_METHOD", "get", "REQUEST_URI", "/x" }, "N1=?" },
		{ { "REQUEST_METHOD", "", "REQUEST_URI", "/x" }, "N1=?" },
		{ { "REQUEST_METHOD", "ABCDEFGHIJKLMNOP", "REQUEST_URI", "/x" },
		  "N1=?" },
		{ { "REQUEST_METHOD", "GET", "REQUEST_METHOD", "PUT",
		    "REQUEST_URI", "/x" },
		  "N1=PUT /x" },
		{ { "REQUEST_METHODS", "GET", "REQUEST_URI", "/x" }, "N1=?" },
		{ { "", "", "REQUEST_METHOD", "GET", "REQUEST_URI", "/x" },
		  "N1=GET /x" },
		{ { NULL }, "N1=?" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char want[256];

		reset_bufs();
		for (int k = 0; k < 8 && cases[i].pairs[k]; k += 2)
			nv(&pairs, cases[i].pairs[k], cases[i].pairs[k + 1]);
		begin(&in1, 1, FCGI_RESPONDER, false);
		params(&in1, 1, &pairs, 65535);
		snprintf(want, sizeof(want), "B1 %s", cases[i].want);
		if (strcmp(log_in(&in1), want))
			printf("# case %zu\n", i);
		CHECK_STR(log_in(&in1), want);
	}
}

/* The templated path is the HTTP parser's, for paths of every form. */
static void test_paths_agree_with_http(void)
{
	static const char *paths[] = {
		"/", "/users/123", "/users/123/", "//x//1//", "/a/0x1f",
		"/deadbeefdeadbeef/x", "/DEADBEEFDEADBEEF0", "/v1/12ab",
		"/f/550e8400-e29b-41d4-a716-446655440000",
		"/f/550e8400-e29b-41d4-a716-44665544000",
		"/%7Euser/1", "/x.php/extra/9",
		"/long/0123456789012345678901234567890123456789012345678901234"
		"5678901234567890123456789012345678901234567890123456789012345"
		"678901234567890123456789012345678901234567890123456789",
		"/many/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r/s/t/u/v/w/x/y/z/a/b/"
		"c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r/s/t/u/v/w/x/y/z/1/2/3/4/5/6/7/"
		"8/9/10/11/12/13/14/15/16/17/18/19/20",
	};
	const char *methods[] = { "GET", "OPTIONS", "VERYLONGMETHODX" };

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		for (size_t m = 0; m < 3; m++) {
			char http[600], want[256];

			reset_bufs();
			nv(&pairs, "REQUEST_METHOD", methods[m]);
			nv(&pairs, "REQUEST_URI", paths[i]);
			begin(&in1, 1, FCGI_RESPONDER, false);
			params(&in1, 1, &pairs, 65535);
			snprintf(http, sizeof(http), "%s %s HTTP/1.1\r\n\r\n",
				 methods[m], paths[i]);
			snprintf(want, sizeof(want), "B1 N1=%.200s",
				 endpoint_of(http));
			CHECK_STR(log_in(&in1), want);
		}
	}
}

/* The Status: header, wherever it is among the CGI headers. */
static void test_status_header(void)
{
	static const struct {
		const char *out;
		const char *want;
	} cases[] = {
		{ "Status: 404 Not Found\r\nContent-type: text/html\r\n\r\nx",
		  "E1=404" },
		{ "Content-type: text/html\r\nStatus: 302 Found\r\n"
		  "Location: /\r\n\r\n",
		  "E1=302" },
		{ "status:503\n\n", "E1=503" },
		{ "STATUS: \t 418\r\n\r\n", "E1=418" },
		{ "Status: 4040\r\n\r\n", "E1=200" },
		{ "Status: 40\r\n\r\n", "E1=200" },
		{ "Status: 099\r\n\r\n", "E1=200" },
		{ "Status: abc\r\nStatus: 201\r\n\r\n", "E1=201" },
		{ "Status: 201\r\nStatus: 500\r\n\r\n", "E1=201" },
		{ "Statusx: 500\r\n\r\n", "E1=200" },
		{ "X-Status: 500\r\n\r\n", "E1=200" },
		{ "Content-type: text/html\r\n\r\nStatus: 500\r\n", "E1=200" },
		{ "\r\nStatus: 500\r\n", "E1=200" },
		{ "", "E1=200" },
		{ "Status: 204", "E1=200" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char want[64];

		reset_bufs();
		nv(&pairs, "REQUEST_METHOD", "GET");
		nv(&pairs, "REQUEST_URI", "/x");
		begin(&in1, 1, FCGI_RESPONDER, false);
		params(&in1, 1, &pairs, 65535);
		php_answer(&out1, 1, cases[i].out);
		snprintf(want, sizeof(want), "B1 N1=GET /x %s", cases[i].want);
		{
			const struct step st[] = { IN(&in1), OUT(&out1) };

			if (strcmp(run_script(st, 2, -1, 0, 0), want))
				printf("# case %zu\n", i);
			check_script(st, 2, want);
		}
	}

	/* A header split across two FCGI_STDOUT records. */
	reset_bufs();
	nv(&pairs, "REQUEST_METHOD", "GET");
	nv(&pairs, "REQUEST_URI", "/x");
	begin(&in1, 1, FCGI_RESPONDER, false);
	params(&in1, 1, &pairs, 65535);
	rec(&out1, FCGI_STDOUT, 1, "Sta", 3);
	rec(&out1, FCGI_STDOUT, 1, "tus: 4", 6);
	rec(&out1, FCGI_STDOUT, 1, "03\r\n\r\nno", 8);
	end_request(&out1, 1, FCGI_REQUEST_COMPLETE);
	{
		const struct step st[] = { IN(&in1), OUT(&out1) };

		check_script(st, 2, "B1 N1=GET /x E1=403");
	}
}

/* FCGI_ABORT_REQUEST, refusals, and ends of no request. */
static void test_abort_and_refusals(void)
{
	reset_bufs();
	nginx_request(&in1, 1, true, "GET", "/slow.php", "");
	rec(&in2, FCGI_ABORT_REQUEST, 1, NULL, 0);
	rec(&in2, FCGI_ABORT_REQUEST, 9, NULL, 0); /* no such request */
	php_answer(&out1, 1, php_ok);
	end_request(&out1, 9, FCGI_REQUEST_COMPLETE);
	{
		const struct step st[] = { IN(&in1), IN(&in2), OUT(&out1) };

		check_script(st, 3, "B1 N1=GET /slow.php A1 E1=200x e9");
	}

	/* protocolStatus FCGI_OVERLOADED (2): the request was refused. */
	reset_bufs();
	nginx_request(&in1, 3, false, "GET", "/busy", "");
	end_request(&out1, 3, 2);
	{
		const struct step st[] = { IN(&in1), OUT(&out1) };

		check_script(st, 2, "B3 N3=GET /busy E3=200x");
	}

	/* The same id begins again before its end. */
	reset_bufs();
	nginx_request(&in1, 1, true, "GET", "/first", "");
	nginx_request(&in1, 1, true, "GET", "/second", "");
	php_answer(&out1, 1, php_ok);
	{
		const struct step st[] = { IN(&in1), OUT(&out1) };

		check_script(st, 2,
			     "B1 N1=GET /first R1 B1 N1=GET /second E1=200");
	}
}

/* Management records (request id 0) are skipped, before the first request
 * too; more requests in flight than the caller has room for are dropped. */
static void test_management_and_room(void)
{
	struct buf q = { 0 };
	char want[SIM_LOG];
	size_t n = 0;

	reset_bufs();
	nv(&q, "FCGI_MAX_CONNS", "");
	nv(&q, "FCGI_MPXS_CONNS", "");
	rec(&in1, FCGI_GET_VALUES, 0, q.b, q.n);
	nginx_request(&in1, 1, true, "GET", "/v", "");
	rec(&in1, FCGI_GET_VALUES, 0, q.b, q.n);
	rec(&out1, FCGI_GET_VALUES_RESULT, 0, "\x0e\x01" "FCGI_MAX_CONNS1", 17);
	rec(&out1, FCGI_UNKNOWN_TYPE, 0, "\x63\0\0\0\0\0\0\0", 8);
	php_answer(&out1, 1, php_ok);
	{
		const struct step st[] = { IN(&in1), OUT(&out1) };

		check_script(st, 2, "B1 N1=GET /v E1=200");
	}

	reset_bufs();
	for (unsigned id = 1; id <= SIM_MAX + 2; id++) {
		begin(&in1, id, FCGI_RESPONDER, true);
		n += (size_t)snprintf(want + n, sizeof(want) - n, "%s%c%u",
				      n ? " " : "", id <= SIM_MAX ? 'B' : 'D',
				      id);
	}
	CHECK_STR(log_in(&in1), want);
}

/* What is not FastCGI, and malformed records. */
static void test_malformed(void)
{
	static const struct {
		const char *in;
		size_t n;
		const char *want;
	} cases[] = {
		/* Not a first FCGI_BEGIN_REQUEST of role RESPONDER (its
		 * header began a request, which the caller forgets). */
		{ "\2\1\0\1\0\10\0\0\0\1\0\0\0\0\0\0", 16, "X0" },
		{ "\1\5\0\1\0\0\0\0", 8, "X0" },
		{ "\1\1\0\1\0\10\0\0\0\2\0\0\0\0\0\0", 16, "B1 X0" },
		{ "\1\1\0\1\0\10\0\0\1\1\0\0\0\0\0\0", 16, "B1 X0" },
		{ "\1\1\0\1\0\7\0\0\0\1\0\0\0\0\0", 15, "X0" },
		{ "\1\1\0\0\0\10\0\0\0\1\0\0\0\0\0\0", 16, "X0" },
		{ "\1\11\0\1\0\0\0\0", 8, "X0" },
		/* After it: a record of another version; BEGIN of another
		 * length. A later BEGIN of another role is a request. */
		{ "\1\1\0\1\0\10\0\0\0\1\0\0\0\0\0\0" "\2\5\0\1\0\0\0\0", 24,
		  "B1 X1" },
		{ "\1\1\0\1\0\10\0\0\0\1\0\0\0\0\0\0" "\1\1\0\2\0\11\0\0", 24,
		  "B1 X1" },
		{ "\1\1\0\1\0\10\0\0\0\1\0\0\0\0\0\0"
		  "\1\1\0\2\0\10\0\0\0\2\0\0\0\0\0\0", 32, "B1 B2" },
		/* Records of unknown types and ids are skipped. */
		{ "\1\1\0\1\0\10\0\0\0\1\0\0\0\0\0\0"
		  "\1\77\0\7\0\3\5\0abc\0\0\0\0\0", 32, "B1" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct buf b = { 0 };
		const struct step st[] = { IN(&b) };

		put(&b, cases[i].in, cases[i].n);
		if (strcmp(run_script(st, 1, -1, 0, 0), cases[i].want))
			printf("# case %zu\n", i);
		check_script(st, 1, cases[i].want);
	}

	/* The write side: a version other than 1, an END_REQUEST whose
	 * length is not 8. */
	reset_bufs();
	nginx_request(&in1, 1, false, "GET", "/x", "");
	put(&out1, "\3\6\0\1\0\0\0\0", 8);
	rec(&out2, FCGI_STDOUT, 1, "hi", 2);
	rec_pad(&out2, FCGI_END_REQUEST, 1, "\0\0\0\0\0", 5, 3);
	{
		const struct step a[] = { IN(&in1), OUT(&out1) };
		const struct step b[] = { IN(&in1), OUT(&out2) };

		check_script(a, 2, "B1 N1=GET /x Y");
		check_script(b, 2, "B1 N1=GET /x Y");
	}
}

/* Zeroed state is initialised state; nothing fed, nothing found. */
static void test_zero_state_and_skip(void)
{
	struct fcgi_in in;
	struct fcgi_out out;
	struct fcgi_req r;
	unsigned ev = ~0u;

	memset(&in, 0, sizeof(in));
	memset(&out, 0, sizeof(out));
	memset(&r, 0, sizeof(r));
	CHECK_EQ(fcgi_in_feed(&in, NULL, "", 0, &ev), 0);
	CHECK_EQ(ev, 0);
	ev = ~0u;
	CHECK_EQ(fcgi_out_feed(&out, NULL, "", 0, &ev), 0);
	CHECK_EQ(ev, 0);
	CHECK_EQ(fcgi_in_id(&in), 0);
	CHECK_EQ(fcgi_out_id(&out), 0);

	/* sendfile'd bytes: inside FCGI_STDOUT's content only. */
	CHECK_EQ(fcgi_out_feed(&out, &r, guarded("\1\6\0\4\0\12\0\0", 8), 8,
			       &ev), 8);
	CHECK_EQ(ev, FCGI_OUT_HEAD);
	CHECK_EQ(fcgi_out_id(&out), 4);
	CHECK_EQ(fcgi_out_skip(&out, &r, 100, &ev), 10);
	CHECK_EQ(ev, 0);
	CHECK_EQ(r.status, 200); /* headers unseen: no Status: */
	CHECK_EQ(fcgi_out_skip(&out, &r, 1, &ev), 0);
	CHECK_EQ(ev, FCGI_OUT_ERROR);
}

int main(void)
{
	RUN(test_nginx_php_fpm);
	RUN(test_keep_conn);
	RUN(test_multiplexed);
	RUN(test_params_streams_interleaved);
	RUN(test_padding);
	RUN(test_long_lengths_and_splits);
	RUN(test_names);
	RUN(test_paths_agree_with_http);
	RUN(test_status_header);
	RUN(test_abort_and_refusals);
	RUN(test_management_and_room);
	RUN(test_malformed);
	RUN(test_zero_state_and_skip);
	return check_done();
}
