/*
 * test_http.c — unit tests for the incremental HTTP/1.x delimiter (http.h):
 * main(), and the requests. The test executable test_http is also made of
 * test_http_fast.c (the fast paths against the byte-at-a-time path),
 * test_http_template.c (endpoint templating) and test_http_resp.c
 * (responses); their helpers are in http_feed.h.
 *
 * Every feeding test copies each piece it feeds so that the piece ends
 * exactly where an unmapped guard page begins: any read past the end of a
 * buffer crashes the test instead of passing unnoticed.
 */
#include <string.h>

#include "check.h"
#include "http.h"
#include "http_feed.h"

/* ------------------------------------------------------------------------ */
/* Requests                                                                 */
/* ------------------------------------------------------------------------ */

static void test_simple_get(void)
{
	static const char in[] = "GET /users/123?x=1 HTTP/1.1\r\n"
				 "Host: example.com\r\n"
				 "\r\n";
	struct http_req p;
	struct log log;

	run(REQ(&p), in, &log);
	CHECK_STR(req_events(&log), "SLD");
	CHECK_EQ(log.rec[2].at, strlen(in));
	CHECK_STR(log.rec[1].endpoint, "GET /users/:id");
	CHECK(!log.rec[1].manual);
	CHECK(!log.rec[1].head);
	/* The outputs stay valid after DONE, until the next START. */
	CHECK_STR(p.endpoint, "GET /users/:id");
	CHECK_EQ(p.endpoint_len, strlen("GET /users/:id"));

	/* A byte at a time, each event comes with the byte that causes it:
	 * START with the first, LINE with the request line's LF. */
	run_step(REQ(&p), in, 1, &log);
	CHECK_STR(req_events(&log), "SLD");
	CHECK_EQ(log.rec[0].at, 1);
	CHECK_EQ(log.rec[1].at, strlen("GET /users/123?x=1 HTTP/1.1\r\n"));
	CHECK_EQ(log.rec[2].at, strlen(in));
}

static void test_zero_init_and_empty_feed(void)
{
	static const char in[] = "GET /a HTTP/1.0\n\n";
	struct http_req p;
	struct http_resp r;
	struct log log;

	memset(&p, 0, sizeof(p));
	check_feed(REQ(&p), "", 0, 0, 0);
	feed_step(REQ(&p), in, strlen(in), 0, &log);
	CHECK_STR(req_events(&log), "SLD");
	CHECK_STR(line_endpoint(&log, 0), "GET /a");

	memset(&r, 0, sizeof(r));
	check_feed(RESP(&r, false), "", 0, 0, 0);
	feed_step(RESP(&r, false), "HTTP/1.1 204 No Content\r\n\r\n", 27, 0,
		  &log);
	CHECK_STR(resp_events(&log), "SD");
	CHECK_EQ(r.status, 204);
}

static void test_keep_alive_two(void)
{
	static const char in[] = "GET /a/1 HTTP/1.1\r\nHost: x\r\n\r\n"
				 "GET /b/2 HTTP/1.1\r\nHost: x\r\n\r\n";
	size_t first = strlen(in) / 2;
	struct http_req p;
	struct log log;

	run(REQ(&p), in, &log);
	CHECK_STR(req_events(&log), "SLDSLD");
	/* One call stops at the end of a request: the second one's events
	 * come from the next call. */
	CHECK_EQ(log.rec[2].at, first);
	CHECK_EQ(log.rec[3].at, strlen(in));
	CHECK_STR(line_endpoint(&log, 0), "GET /a/:id");
	CHECK_STR(line_endpoint(&log, 1), "GET /b/:id");
	CHECK_EQ(log.rec[5].at, strlen(in));
}

static const char pipelined[] =
	"GET /one HTTP/1.1\r\nHost: x\r\n\r\n"
	"POST /two/42 HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"
	"HEAD /three?profile=yes HTTP/1.1\r\n\r\n";

static void test_pipelining_three(void)
{
	struct http_req p;
	struct log log;

	run(REQ(&p), pipelined, &log);
	CHECK_STR(req_events(&log), "SLDSLDSLD");
	CHECK_STR(line_endpoint(&log, 0), "GET /one");
	CHECK_STR(line_endpoint(&log, 1), "POST /two/:id");
	CHECK_STR(line_endpoint(&log, 2), "HEAD /three");
	CHECK(!line_manual(&log, 0));
	CHECK(!line_manual(&log, 1));
	CHECK(line_manual(&log, 2));
	CHECK(log.rec[7].head);
	CHECK(!log.rec[4].head);
	CHECK_EQ(log.rec[5].at, strlen("GET /one HTTP/1.1\r\nHost: x\r\n\r\n"
				       "POST /two/42 HTTP/1.1\r\n"
				       "Content-Length: 5\r\n\r\nhello"));
	CHECK_EQ(log.rec[8].at, strlen(pipelined));
}

static const char mixed[] =
	"\r\nPOST /upload/0123456789abcdef HTTP/1.1\r\n"
	"Host: x\r\nTransfer-Encoding: gzip, Chunked\r\n"
	"Content-Length: 99\r\n\r\n"
	"4;name=value\r\nWiki\r\n5 \r\npedia\r\n0\r\nX-Trailer: 1\r\n\r\n"
	"\r\nGET /users/550e8400-e29b-41d4-a716-446655440000/ HTTP/1.1\n"
	"content-length:3\n\nabc"
	"GET /x?profile=TRUE HTTP/1.1\r\n\r\n";

static void test_one_byte_at_a_time(void)
{
	struct http_req p;
	struct log whole, bytes;
	size_t step, len = strlen(mixed);

	run(REQ(&p), mixed, &whole);
	CHECK_STR(req_events(&whole), "SLDSLDSLD");
	CHECK_STR(line_endpoint(&whole, 0), "POST /upload/:id");
	CHECK_STR(line_endpoint(&whole, 1), "GET /users/:id/");
	CHECK_STR(line_endpoint(&whole, 2), "GET /x");
	CHECK(line_manual(&whole, 2));

	run_step(REQ(&p), mixed, 1, &bytes);
	CHECK(log_same(&whole, &bytes));
	CHECK_EQ(bytes.rec[0].at, 3); /* the leading CRLF is not a request */
	for (step = 2; step <= len; step++) {
		run_step(REQ(&p), mixed, step, &bytes);
		CHECK(log_same(&whole, &bytes));
	}
}

static void test_post_body_split(void)
{
	static const char in[] = "POST /items HTTP/1.1\r\n"
				 "Content-Length:  12 \r\n\r\n"
				 "hello, world";
	size_t len = strlen(in);
	struct http_req p;
	struct log whole, split;

	run(REQ(&p), in, &whole);
	CHECK_STR(req_events(&whole), "SLD");
	CHECK_EQ(whole.rec[2].at, len);
	check_splits(REQ(&p), in, &whole, 0, len);
	/* Without the last body byte the request is not done. */
	http_req_init(&p);
	feed_step(REQ(&p), in, len - 1, 0, &split);
	CHECK_STR(req_events(&split), "SL");
}

static const char chunked[] =
	"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
	"1a;ext=1;other=\"x\"\r\nabcdefghijklmnopqrstuvwxyz\r\n"
	"A\r\n0123456789\r\n"
	"000\r\nTrailer-One: a\r\nTrailer-Two: b\r\n\r\n"
	"GET /next HTTP/1.1\r\n\r\n";

static void test_chunked_every_split(void)
{
	size_t len = strlen(chunked), k, j;
	struct http_req p;
	struct log whole, split;

	run(REQ(&p), chunked, &whole);
	CHECK_STR(req_events(&whole), "SLDSLD");
	CHECK_EQ(whole.rec[2].at, strlen(chunked) - strlen("GET /next "
							   "HTTP/1.1\r\n\r\n"));
	CHECK_STR(line_endpoint(&whole, 1), "GET /next");
	check_splits(REQ(&p), chunked, &whole, 0, len);
	/* Three pieces: every pair of split points. */
	for (k = 0; k <= len; k += 3) {
		for (j = k; j <= len; j += 5) {
			memset(&split, 0, sizeof(split));
			http_req_init(&p);
			if (feed_piece(REQ(&p), chunked, 0, k, &split) &&
			    feed_piece(REQ(&p), chunked, k, j, &split))
				feed_piece(REQ(&p), chunked, j, len, &split);
			CHECK(log_same(&whole, &split));
		}
	}
}

#define CHUNKED_HEAD "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"

static const struct req_case chunked_framing[] = {
	PARSE(CHUNKED_HEAD "zz\r\n", "SLE", NULL, ANY, "not hex"),
	PARSE(CHUNKED_HEAD "\r\n", "SLE", NULL, ANY, "empty size"),
	PARSE(CHUNKED_HEAD ";ext\r\n", "SLE", NULL, ANY,
	      "extension without a size"),
	PARSE(CHUNKED_HEAD "-1\r\n", "SLE", NULL, ANY, "sign"),
	PARSE(CHUNKED_HEAD "5\rX", "SLE", NULL, ANY, "CR without LF"),
	PARSE(CHUNKED_HEAD "5 x\r\n", "SLE", NULL, ANY,
	      "junk after the size"),
	PARSE(CHUNKED_HEAD "5x\r\n", "SLE", NULL, ANY,
	      "junk right after the size"),
	PARSE(CHUNKED_HEAD "5\r\nhelloX", "SLE", NULL, ANY,
	      "no CRLF after the data"),
	PARSE(CHUNKED_HEAD "5\r\nhello\rX", "SLE", NULL, ANY,
	      "CR without LF after the data"),
	PARSE(CHUNKED_HEAD "5\r\nhello\r\r\n", "SLE", NULL, ANY,
	      "two CRs after the data"),
	PARSE(CHUNKED_HEAD "10000000000000000\r\n", "SLE", NULL, ANY,
	      "17 hex digits: too big"),
	PARSE(CHUNKED_HEAD "0000000000000000000000000005\r\nhello\r\n0\r\n\r\n",
	      "SLD", NULL, ANY, "leading zeros"),
	PARSE(CHUNKED_HEAD "5\nhello\n5 \t ;x\r\nhello\r\n5  \nhello\r\n0 \n\n",
	      "SLD", NULL, ANY,
	      "lenient but unambiguous: bare LF, whitespace before ';' or "
	      "the end"),
};

static void test_chunked_framing_errors(void)
{
	check_req_cases(CASES(chunked_framing));
}

static const struct req_case non_http[] = {
	PARSE("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", "E", NULL, ANY,
	      "TLS"),
	PARSE("get / HTTP/1.1\r\n\r\n", "E", NULL, ANY, "lowercase method"),
	PARSE(" GET / HTTP/1.1\r\n\r\n", "E", NULL, ANY, "leading space"),
	PARSE("GET\t/ HTTP/1.1\r\n\r\n", "SE", NULL, ANY, "tab after method"),
	PARSE("ABCDEFGHIJKLMNOP / HTTP/1.1\r\n\r\n", "SE", NULL, ANY,
	      "16-byte method"),
	PARSE("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "SE", NULL, ANY,
	      "HTTP/2 preface"),
	PARSE("GET / HTTP/2\r\n\r\n", "SE", NULL, ANY, "HTTP/2"),
	PARSE("GET / HTTP/1.x\r\n\r\n", "SE", NULL, ANY, "minor not a digit"),
	PARSE("GET /\r\n", "SE", NULL, ANY, "HTTP/0.9"),
	PARSE("GET  / HTTP/1.1\r\n\r\n", "SE", NULL, ANY, "empty target"),
	PARSE("GET /a\tb HTTP/1.1\r\n\r\n", "SE", NULL, ANY, "control byte"),
	PARSE("GET /a?\x7f HTTP/1.1\r\n\r\n", "SE", NULL, ANY,
	      "DEL in the query"),
	PARSE("GET / HTTP/1.1 \r\n\r\n", "SE", NULL, ANY,
	      "space after the version"),
	PARSE("GET / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", "SLE", NULL, ANY,
	      "Content-Length: junk"),
	PARSE("GET / HTTP/1.1\r\nContent-Length: \r\n\r\n", "SLE", NULL, ANY,
	      "Content-Length: empty"),
	PARSE("GET / HTTP/1.1\r\nContent-Length: 1 2\r\n\r\n", "SLE", NULL,
	      ANY, "Content-Length: two numbers"),
	PARSE("GET / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n", "SLE", NULL,
	      ANY, "Content-Length: a list"),
	PARSE("GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", "SLE", NULL, ANY,
	      "Content-Length: negative"),
	PARSE("GET / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
	      "SLE", NULL, ANY, "Content-Length: past 64 bits"),
	PARSE("GET / HTTP/1.1\r\nContent-Length: 9223372036854775808\r\n\r\n",
	      "SLE", NULL, ANY, "Content-Length: past an off_t"),
	PARSE("GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
	      "SLE", NULL, ANY, "two Content-Lengths that differ"),
	PARSE("GET / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
	      "SLE", NULL, ANY, "last coding not chunked"),
	/* Bytes beyond ASCII are kept verbatim. */
	PARSE("GET /caf\xc3\xa9/1 HTTP/1.1\r\n\r\n", NULL, "GET /caf\xc3\xa9/:id",
	      ANY, "UTF-8 in the path"),
	/* The largest accepted values. */
	PARSE("GET / HTTP/1.1\r\nContent-Length: 9223372036854775807\r\n\r\n",
	      "SL", NULL, ANY, "largest Content-Length"),
	PARSE("ABCDEFGHIJKLMN_ / HTTP/1.1\r\n\r\n", "SLD", NULL, ANY,
	      "15-byte method"),
	PARSE("GET / HTTP/1.1\r\nContent-Length: 0\r\ncontent-length: 0\r\n\r\n",
	      "SLD", NULL, ANY, "two Content-Lengths that agree"),
};

static void test_non_http(void)
{
	struct http_req p;

	check_req_cases(CASES(non_http));

	/* After an error nothing more is consumed, until init. */
	http_req_init(&p);
	check_feed(REQ(&p), "xyz", 3, 1, HTTP_REQ_ERROR);
	check_feed(REQ(&p), "GET", 3, 0, HTTP_REQ_ERROR);
	http_req_init(&p);
	check_feed(REQ(&p), "GET", 3, 3, HTTP_REQ_START);

	/* A NUL in the target is an error, not a shorter endpoint; the error
	 * comes with the NUL, and nothing after it is consumed. */
	http_req_init(&p);
	check_feed(REQ(&p), "GET /a\0b HTTP/1.1\r\n", 20, 7,
		   HTTP_REQ_START | HTTP_REQ_ERROR);
	check_feed(REQ(&p), "b HTTP/1.1\r\n", 13, 0, HTTP_REQ_ERROR);
}

static void test_leading_crlf(void)
{
	static const char in[] = "\r\n\r\nGET /a HTTP/1.1\r\n\r\n"
				 "\r\n\nGET /b HTTP/1.1\r\n\r\n\r\n";
	struct http_req p;
	struct log log;

	run(REQ(&p), in, &log);
	CHECK_STR(req_events(&log), "SLDSLD");
	run_step(REQ(&p), in, 1, &log);
	CHECK_STR(req_events(&log), "SLDSLD");
	CHECK_EQ(log.rec[0].at, 5);
	CHECK_EQ(log.rec[3].at, strlen("\r\n\r\nGET /a HTTP/1.1\r\n\r\n"
				       "\r\n\nG"));
	CHECK_STR(line_endpoint(&log, 1), "GET /b");

	/* CRLF alone starts nothing. */
	http_req_init(&p);
	check_feed(REQ(&p), "\r\n\r\n", 4, 4, 0);
}

static const struct req_case profile_param[] = {
	PARSE("GET /a?profile=1 HTTP/1.1\r\n\r\n", NULL, NULL, 1, "1"),
	PARSE("GET /a?a=b&PROFILE=TRUE HTTP/1.1\r\n\r\n", NULL, NULL, 1,
	      "TRUE, second parameter"),
	PARSE("GET /a?a=b&PROFILE=True&c=d HTTP/1.1\r\n\r\n", NULL, NULL, 1,
	      "True, between parameters"),
	PARSE("GET /a?profile=yes HTTP/1.1\r\n\r\n", NULL, NULL, 1, "yes"),
	PARSE("GET /a?profile=YeS&x HTTP/1.1\r\n\r\n", NULL, NULL, 1, "YeS"),
	PARSE("GET /a?profile=0&profile=1 HTTP/1.1\r\n\r\n", NULL, NULL, 1,
	      "any of two"),
	PARSE("GET /a?profile=0 HTTP/1.1\r\n\r\n", NULL, NULL, 0, "0"),
	PARSE("GET /a?xprofile=1 HTTP/1.1\r\n\r\n", NULL, NULL, 0,
	      "longer name before"),
	PARSE("GET /a?profilex=1 HTTP/1.1\r\n\r\n", NULL, NULL, 0,
	      "longer name after"),
	PARSE("GET /a?profile=11 HTTP/1.1\r\n\r\n", NULL, NULL, 0, "11"),
	PARSE("GET /a?profile=truex HTTP/1.1\r\n\r\n", NULL, NULL, 0, "truex"),
	PARSE("GET /a?profile= HTTP/1.1\r\n\r\n", NULL, NULL, 0, "empty value"),
	PARSE("GET /a?profile HTTP/1.1\r\n\r\n", NULL, NULL, 0, "no value"),
	PARSE("GET /a?x=profile=1 HTTP/1.1\r\n\r\n", NULL, NULL, 0,
	      "in a value"),
	PARSE("GET /profile=1 HTTP/1.1\r\n\r\n", NULL, NULL, 0, "in the path"),
	PARSE("GET /a HTTP/1.1\r\nX: ?profile=1\r\n\r\n", NULL, NULL, 0,
	      "in a header"),
	/* The query never reaches the endpoint. */
	PARSE("GET /a/7?profile=1&id=5 HTTP/1.1\r\n\r\n", NULL, "GET /a/:id",
	      ANY, "query left out"),
};

static void test_profile_param(void)
{
	check_req_cases(CASES(profile_param));

	/* manual is per request: the next START clears it. */
	{
		static const char in[] =
			"GET /a?profile=1 HTTP/1.1\r\n\r\n"
			"GET /b HTTP/1.1\r\n\r\n";
		struct http_req p;
		struct log log;

		run(REQ(&p), in, &log);
		CHECK(line_manual(&log, 0));
		CHECK(!line_manual(&log, 1));
	}
}

static const struct req_case target_forms[] = {
	PARSE("GET http://example.com/users/42?profile=1 HTTP/1.1\r\n\r\n",
	      NULL, "GET /users/:id", 1, "absolute form"),
	PARSE("GET https://user@h:8443/a/b/ HTTP/1.1\r\n\r\n", NULL,
	      "GET /a/b/", ANY, "userinfo and port"),
	PARSE("GET http://example.com HTTP/1.1\r\n\r\n", NULL, "GET /", ANY,
	      "no path"),
	PARSE("GET http://example.com?profile=yes HTTP/1.1\r\n\r\n", NULL,
	      "GET /", 1, "no path, a query"),
	PARSE("OPTIONS * HTTP/1.1\r\n\r\n", NULL, "OPTIONS *", ANY,
	      "asterisk form"),
	PARSE("GET //double//slash HTTP/1.1\r\n\r\n", NULL,
	      "GET //double//slash", ANY, "empty segments"),
	PARSE("GET http:/one-slash HTTP/1.1\r\n\r\n", NULL,
	      "GET http:/one-slash", ANY, "not a scheme://"),
	PARSE("GET ?q=1 HTTP/1.1\r\n\r\n", NULL, "GET /", ANY, "only a query"),
	PARSE("GET h^p://x/1 HTTP/1.1\r\n\r\n", NULL, "GET h^p://x/:id", ANY,
	      "not a scheme"),
	PARSE("GET /%41%20b/12 HTTP/1.1\r\n\r\n", NULL, "GET /%41%20b/:id",
	      ANY, "percent-encoding kept"),
	PARSE("HEAD / HTTP/1.1\r\n\r\n", NULL, "HEAD /", ANY, "HEAD"),
	PARSE("M-SEARCH * HTTP/1.1\r\n\r\n", NULL, "M-SEARCH *", ANY,
	      "method with '-'"),
};

static void test_target_forms(void)
{
	check_req_cases(CASES(target_forms));
}

/* Builds "GET <path> HTTP/1.1\r\n\r\n" into buf. */
static size_t build_get(char *buf, size_t size, const char *path)
{
	size_t n = (size_t)snprintf(buf, size, "GET %s HTTP/1.1\r\n\r\n",
				    path);

	return n < size ? n : size - 1;
}

/* Returns what the endpoint must be: the method and the templated path. */
static const char *expected_endpoint(const char *path)
{
	static char out[HTTP_ENDPOINT_MAX];

	memcpy(out, "GET ", 4);
	http_template_path(path, strlen(path), out + 4, sizeof(out) - 4);
	return out;
}

static void test_long_target(void)
{
	/* '/', n copies of fill, then tail. */
	static const struct {
		char fill;
		size_t n;
		const char *tail;
		const char *want;   /* the endpoint, when given */
		const char *absent; /* what the endpoint must not hold */
	} cut[] = {
		/* The kept limit cuts a hex id short: what is left of it
		 * could still begin an id, so none of it is kept. */
		{ '1', 150, "/abcdef0123456789", "GET /:id/:id", NULL },
		/* A UUID cut after its first dash, likewise. */
		{ 'a', 145, "/123e4567-e89b-12d3-a456-426614174000", NULL,
		  "123e" },
		/* A word cut short stays what was kept of it. */
		{ '1', 150, "/download-latest", "GET /:id/download", NULL },
	};
	static char path[100000], req[100100];
	struct http_req p;
	struct log log, bytes;
	size_t i, len;

	/* A 90 000-byte path: only the first bytes are kept. */
	path[0] = '/';
	for (i = 1; i < 90000; i++)
		path[i] = (char)('a' + i % 26);
	path[i] = '\0';
	len = build_get(req, sizeof(req), path);
	http_req_init(&p);
	feed_step(REQ(&p), req, len, 0, &log);
	CHECK_STR(req_events(&log), "SLD");
	CHECK_EQ(strlen(line_endpoint(&log, 0)), HTTP_ENDPOINT_MAX - 1);
	CHECK_STR(line_endpoint(&log, 0), expected_endpoint(path));
	http_req_init(&p);
	feed_step(REQ(&p), req, len, 7, &bytes);
	CHECK(log_same(&log, &bytes));

	/* Templating works on the kept bytes: 200 digits are one id. */
	path[0] = '/';
	for (i = 1; i < 200; i++)
		path[i] = '7';
	path[i] = '\0';
	CHECK_STR(endpoint_of((build_get(req, sizeof(req), path), req)),
		  "GET /:id");

	/* An id segment straddling the kept limit is templated as kept. */
	memset(path, 0, sizeof(path));
	strcpy(path, "/1/2/3/4/5/6/7/8/9/1/2/3/4/5/6/7/8/9");
	for (i = strlen(path); i < HTTP_TARGET_MAX - 3; i++)
		path[i] = '/';
	strcat(path, "/1234567890abcdef0000/tail");
	build_get(req, sizeof(req), path);
	CHECK_STR(endpoint_of(req), expected_endpoint(path));

	/* Paths cut by the kept limit: each gets what http_template_path()
	 * makes of it, and `want` when given. */
	for (i = 0; i < sizeof(cut) / sizeof(cut[0]); i++) {
		path[0] = '/';
		memset(path + 1, cut[i].fill, cut[i].n);
		strcpy(path + 1 + cut[i].n, cut[i].tail);
		build_get(req, sizeof(req), path);
		if (cut[i].want)
			CHECK_STR(endpoint_of(req), cut[i].want);
		CHECK_STR(endpoint_of(req), expected_endpoint(path));
		if (cut[i].absent)
			CHECK(strstr(endpoint_of(req), cut[i].absent) == NULL);
	}

	/* Many short ids expand to more than the endpoint holds. */
	memset(path, 0, sizeof(path));
	for (i = 0; i < 150; i += 2)
		memcpy(path + i, "/1", 2);
	build_get(req, sizeof(req), path);
	CHECK_STR(endpoint_of(req), expected_endpoint(path));
	CHECK_EQ(strlen(endpoint_of(req)), HTTP_ENDPOINT_MAX - 1);

	/* A long query string is scanned to its end for profile=. */
	strcpy(path, "/q?");
	for (i = 3; i < 60000; i++)
		path[i] = 'z';
	strcpy(path + i, "&profile=1");
	build_get(req, sizeof(req), path);
	CHECK(manual_of(req));
	CHECK_STR(endpoint_of(req), "GET /q");
}

static void test_long_header_line(void)
{
	static char req[100000];
	struct http_req p;
	struct log log, bytes;
	size_t n, i;

	n = (size_t)sprintf(req, "POST /h HTTP/1.1\r\nX-Long: ");
	for (i = 0; i < 70000; i++)
		req[n++] = (char)('A' + i % 26);
	n += (size_t)sprintf(req + n, "\r\nContent-Length: 3\r\n");
	/* A long header name that starts like Content-Length. */
	memcpy(req + n, "Content-Length", 14);
	n += 14;
	for (i = 0; i < 5000; i++)
		req[n++] = 'x';
	n += (size_t)sprintf(req + n, ": junk\r\n\r\nabc"
				      "GET /after HTTP/1.1\r\n\r\n");
	http_req_init(&p);
	feed_step(REQ(&p), req, n, 0, &log);
	CHECK_STR(req_events(&log), "SLDSLD");
	CHECK_STR(line_endpoint(&log, 1), "GET /after");
	http_req_init(&p);
	feed_step(REQ(&p), req, n, 4093, &bytes);
	CHECK(log_same(&log, &bytes));
}

#define TE_BODY "3\r\nabc\r\n0\r\n\r\n"

static const struct req_case transfer_encoding[] = {
	PARSE("POST / HTTP/1.1\r\nContent-Length: 100\r\n"
	      "Transfer-Encoding: gzip , CHUNKED \r\n\r\n" TE_BODY
	      "GET / HTTP/1.1\r\n\r\n",
	      "SLDSLD", NULL, ANY,
	      "chunked wins over Content-Length, and only the last coding "
	      "counts"),
	PARSE("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n"
	      "Transfer-Encoding: chunked\r\n\r\n" TE_BODY,
	      "SLD", NULL, ANY, "several headers form one list"),
	PARSE("POST / HTTP/1.1\r\nTransfer-Encoding: chunkedx\r\n\r\n", "SLE",
	      NULL, ANY,
	      "a final coding that is not chunked makes a request "
	      "unframeable"),
	PARSE("POST / HTTP/1.1\r\nTransfer-Encoding: chunked;q=1\r\n\r\n",
	      "SLE", NULL, ANY, "likewise, chunked with a parameter"),
	PARSE("POST / HTTP/1.1\r\nX-Transfer-Encoding: chunked\r\n"
	      "Content-Length : 5\r\n Content-Length: 5\r\n\r\n",
	      "SLD", NULL, ANY, "headers that only look similar are ignored"),
	PARSE("POST / HTTP/1.1\r\nNoColonHere\r\nContent-Length: 2\r\n\r\nab",
	      "SLD", NULL, ANY, "a header line without a colon carries nothing"),
	PARSE("POST / HTTP/1.1\r\nTransfer-Encoding:\r\n\r\n", "SLD", NULL, ANY,
	      "an empty Transfer-Encoding lists nothing"),
};

static void test_transfer_encoding(void)
{
	check_req_cases(CASES(transfer_encoding));
}

static void test_struct_sizes(void)
{
	printf("# sizeof(struct http_req) = %zu, sizeof(struct http_resp) "
	       "= %zu\n",
	       sizeof(struct http_req), sizeof(struct http_resp));
	CHECK(sizeof(struct http_req) <= 320);
	CHECK(sizeof(struct http_resp) <= 96);
}

int main(void)
{
	RUN(test_simple_get);
	RUN(test_zero_init_and_empty_feed);
	RUN(test_keep_alive_two);
	RUN(test_pipelining_three);
	RUN(test_one_byte_at_a_time);
	http_fast_tests(&check_tests, &check_failures);
	RUN(test_post_body_split);
	RUN(test_chunked_every_split);
	RUN(test_chunked_framing_errors);
	RUN(test_non_http);
	RUN(test_leading_crlf);
	RUN(test_profile_param);
	RUN(test_target_forms);
	RUN(test_long_target);
	RUN(test_long_header_line);
	RUN(test_transfer_encoding);
	http_template_tests(&check_tests, &check_failures);
	http_resp_tests(&check_tests, &check_failures);
	RUN(test_struct_sizes);
	return check_done();
}
