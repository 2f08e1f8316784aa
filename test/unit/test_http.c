/*
 * test_http.c — unit tests for the incremental HTTP/1.x delimiter (http.h).
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

/*
 * The fast paths (whole lines at once) and the byte-at-a-time path must
 * agree on every input: each input here is fed whole, one byte at a time,
 * and in two pieces split at every offset, and the event logs must be
 * identical. The inputs are the forms where a fast path must step aside.
 */
static const char *const diff_requests[] = {
	"GET /a/1 HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET /a/1 HTTP/1.1\n\n",
	"GET /a/1 HTTP/1.1\r\r\r\nHost: x\r\n\r\n",
	"GET /a HTTP/1.1 \r\n\r\n",
	"GET /a HTTP/1.12\r\n\r\n",
	"GET /a HTTP/2.0\r\n\r\n",
	"GET  /a HTTP/1.1\r\n\r\n",
	"GET http://h/x/7?profile=1 HTTP/1.1\r\n\r\n",
	"GET * HTTP/1.1\r\n\r\n",
	"OPTIONS-LONG-METHOD /x HTTP/1.1\r\n\r\n",
	"GET-_ /x HTTP/1.1\r\n\r\n",
	"HEAD /x HTTP/1.1\r\n\r\n",
	"GET /x\x01y HTTP/1.1\r\n\r\n",
	"GET /x?a\x7f HTTP/1.1\r\n\r\n",
	"GET /x?profile=1 HTTP/1.1\r\n\r\n",
	"GET /x?PROFILE=True&b=2 HTTP/1.1\r\n\r\n",
	"GET /x?a=1&profile=yes HTTP/1.1\r\n\r\n",
	"GET /x?profile=1x HTTP/1.1\r\n\r\n",
	"GET /x?profile HTTP/1.1\r\n\r\n",
	"GET /x?profile= HTTP/1.1\r\n\r\n",
	"GET /x?profiles=1 HTTP/1.1\r\n\r\n",
	"GET /x?profile=1=1 HTTP/1.1\r\n\r\n",
	"GET /x?&&profile=1& HTTP/1.1\r\n\r\n",
	"GET /x?q=?profile=1 HTTP/1.1\r\n\r\n",
	"GET /x?profile=yes?x HTTP/1.1\r\n\r\n",
	"GET /users/123e4567-e89b-12d3-a456-426614174000/x HTTP/1.1\r\n\r\n",
	"GET /0123456789abcdef0123/x//y/ HTTP/1.1\r\n\r\n",
	"GET /12/ab/123abc/deadbeefdeadbeef0/deadbeefdeadbeeg HTTP/1.1\r\n\r\n",
	"GET /a/123e4567-e89b-12d3-a456-42661417400/123e4567-e89b-12d3-a456-4266141740001 HTTP/1.1\r\n\r\n",
	"GET / HTTP/1.1\r\n\r\n",
	"GET /7 HTTP/1.1\r\n\r\n",
	"POST /p HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
	"POST /p HTTP/1.1\r\ncontent-length:3\r\n\r\nabc",
	"POST /p HTTP/1.1\r\nCONTENT-LENGTH: \t3 \t\r\n\r\nabc",
	"POST /p HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
	"POST /p HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
	"POST /p HTTP/1.1\r\nContent-Length: 3,3\r\n\r\nabc",
	"POST /p HTTP/1.1\r\nContent-Length: \r3\r\n\r\nabc",
	"POST /p HTTP/1.1\r\nContent-Length: 3\r\r\n\r\nabc",
	"POST /p HTTP/1.1\r\nContent-Length: 1234567890123456789\r\n\r\n",
	"POST /p HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
	"POST /p HTTP/1.1\r\nContent-Length: 000000000000000000003\r\n\r\nabc",
	"POST /p HTTP/1.1\r\nContent-Length:\r\n\r\n",
	"POST /p HTTP/1.1\r\nContent-Length : 3\r\n\r\nabc",
	"POST /p HTTP/1.1\r\nContent-Lengthy: 3\r\n\r\n",
	"POST /p HTTP/1.1\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nab",
	"POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
	"POST /p HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
	"POST /p HTTP/1.1\r\nTransfer-Encodings: chunked\r\nContent-Length: 1\r\n\r\nz",
	"POST /p HTTP/1.1\r\nX: 1\r\n folded: 2\r\nContent-Length: 1\r\n\r\nz",
	"POST /p HTTP/1.1\r\n: empty\r\nno colon\r\nContent-Length: 1\r\n\r\nz",
	"POST /p HTTP/1.1\r\n\rContent-Length: 1\r\n\r\nz",
	"POST /p HTTP/1.1\nContent-Length: 1\n\nzGET /q HTTP/1.0\n\n",
	"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b/2 HTTP/1.1\r\nHost: x\r\n\r\n",
	"\r\n\r\nGET /a HTTP/1.1\r\n\r\n",
	/* Paths, queries and lines across the sixteen-byte blocks the fast
	 * paths scan, ids on both sides of a block edge, plain paths longer
	 * than the endpoint or HTTP_TARGET_MAX. */
	"GET /abcdefghijklmn/x HTTP/1.1\r\n\r\n",
	"GET /abcdefghijklmnopqrstuvwxyz/0123/xyz HTTP/1.1\r\n\r\n",
	"GET /abcdefghijkl/12/abcdefghijklm/34 HTTP/1.1\r\n\r\n",
	"GET /abcdefabcdefabcd/abcdefabcdefabcdef HTTP/1.1\r\n\r\n",
	"GET /a/550e8400-e29b-41d4-a716-446655440000/b HTTP/1.1\r\n\r\n",
	"GET /abcdefghijklmnop?qrstuvwxyz=1&profile=yes HTTP/1.1\r\n\r\n",
	"GET /a?bcdefghijklmnopqrstuvwxyz0123456789&profile=1 HTTP/1.1\r\n\r\n",
	"GET /a?b\x01" "cdefghijklmnopqrstuvwxyz HTTP/1.1\r\n\r\n",
	"GET /abcdefghijklmnopqrstuvwxyz\x7f HTTP/1.1\r\n\r\n",
	"GET /abcdefghijklmnopqrstuvwxyz HTTP/1.1\r\r\n\r\n",
	"GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\n\r\n",
	"GET /a/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb/1 HTTP/1.1\r\n\r\n",
	"PROPPATCHABCDEF /x HTTP/1.1\r\n\r\n",
	"PROPPATCHABCDEFG /x HTTP/1.1\r\n\r\n",
	"GET /x HTTP/1.1\r\nX-Long-Header-Name: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\nContent-Length: 2\r\n\r\nokGET /y HTTP/1.1\r\n\r\n",
};

static const char *const diff_responses[] = {
	"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 200\nContent-Length: 2\n\nok",
	"HTTP/1.1 200\r\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 200\rX\r\n\r\n",
	"HTTP/1.1 2000 OK\r\n\r\n",
	"HTTP/1.1 099 OK\r\n\r\n",
	"HTTP/1.1  200 OK\r\n\r\n",
	"HTTP/1.x 200 OK\r\n\r\n",
	"HTTP/2 200 OK\r\n\r\n",
	"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
	"HTTP/1.1 101 Switching\r\n\r\nanything",
	"HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Type: a\r\nContent-Length: 1\r\nCache-Control: x\r\n\r\nzHTTP/1.1 404 Nope\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nzz",
	"HTTP/1.1 200 OK\r\n\r\nuntil close",
	"HTTP/1.1 200 A reason phrase longer than sixteen bytes\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200\nContent-Length: 0\n\n",
	"HTTP/1.1 200X\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200\r\rContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nServer: a-server-name-of-some-length/1.2.3\r\nDate: Sat, 21 Nov 2026 10:00:00 GMT\r\nContent-Type: application/json\r\nContent-Length: 17\r\nConnection: keep-alive\r\n\r\n{\"ok\": true, \"n\":1}",
	"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
};

/*
 * Feeds the NUL-terminated `in` to the subject whole, one byte at a time,
 * and in two pieces split at every offset: the logs must be the same.
 */
static void diff_one(struct subject *s, const char *in)
{
	struct log whole, bytes;

	run(s, in, &whole);
	subject_init(s);
	feed_step(s, in, strlen(in), 1, &bytes);
	if (!log_same(&whole, &bytes))
		printf("# fed byte by byte differs: %s\n", in);
	CHECK(log_same(&whole, &bytes));
	check_splits(s, in, &whole, 1, strlen(in) - 1);
}

static void diff_one_request(const char *in)
{
	struct http_req p;

	diff_one(REQ(&p), in);
}

static void diff_one_response(const char *in, bool head)
{
	struct http_resp p;

	diff_one(RESP(&p, head), in);
}

static void test_fast_paths_agree(void)
{
	size_t i;

	for (i = 0; i < sizeof(diff_requests) / sizeof(diff_requests[0]); i++)
		diff_one_request(diff_requests[i]);
	for (i = 0; i < sizeof(diff_responses) / sizeof(diff_responses[0]); i++) {
		diff_one_response(diff_responses[i], false);
		diff_one_response(diff_responses[i], true);
	}
}

/*
 * The request fast path copies "METHOD /path" whole, in moves of 16, 8, 4
 * and 1 bytes depending on its length: every length up to past the
 * endpoint's capacity, for GET (matched in one compare) and other methods,
 * gives what the byte-at-a-time path gives, split anywhere. Content-Length
 * values in and around their usual form (one space, at most 18 digits)
 * agree the same way, for requests and responses.
 */
static void test_fast_lengths(void)
{
	static const char *const methods[] = { "GET", "PUT", "X", "GETX" };
	static const char *const lengths[] = {
		": 3", ":3", ":  3", ": 3 ", ": 03", ":\t3", ": ",
		": 123456789012345678", ": 1234567890123456789", ": 3x",
		": 3 3", ": 4\r", ":",
	};
	char req[400], path[200];
	size_t m, n, i;

	for (m = 0; m < sizeof(methods) / sizeof(methods[0]); m++) {
		for (n = 1; n < 140; n++) {
			memset(path, 'z', n); /* not hex: never an id */
			path[0] = '/';
			path[n] = '\0';
			(void)snprintf(req, sizeof(req),
				       "%s %s HTTP/1.1\r\nHost: h\r\n\r\n",
				       methods[m], path);
			diff_one_request(req);
			if (strlen(methods[m]) + 1 + n <= HTTP_ENDPOINT_MAX - 1 &&
			    n <= HTTP_TARGET_MAX) {
				char want[HTTP_ENDPOINT_MAX];

				(void)snprintf(want, sizeof(want), "%s %s",
					       methods[m], path);
				CHECK_STR(endpoint_of(req), want);
			}
		}
	}
	for (i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++) {
		(void)snprintf(req, sizeof(req),
			       "POST /p HTTP/1.1\r\nContent-Length%s\r\n\r\nabc",
			       lengths[i]);
		diff_one_request(req);
		(void)snprintf(req, sizeof(req),
			       "HTTP/1.1 200 OK\r\nContent-Length%s\r\n\r\nabc",
			       lengths[i]);
		diff_one_response(req, false);
	}
	/* events_of() answers in one static buffer: keep the first. */
	(void)snprintf(req, sizeof(req), "%s",
		       events_of("POST /p HTTP/1.1\r\nContent-Length: 3\r\n"
				 "\r\nabc"));
	CHECK_STR(req, "SLD");
	CHECK_STR(events_of("POST /p HTTP/1.1\r\nContent-Length:3\r\n\r\nabc"),
		  req);
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

/* ------------------------------------------------------------------------ */
/* Templating                                                               */
/* ------------------------------------------------------------------------ */

/* Returns the templated form of a NUL-terminated path. */
static const char *tpl(const char *path)
{
	static char out[512];
	size_t n = http_template_path(guarded(path, strlen(path)),
				      strlen(path), out, sizeof(out));

	CHECK_EQ(n, strlen(out));
	return out;
}

static void test_template(void)
{
	char out[16];
	size_t n;

	CHECK_STR(tpl("/users/123"), "/users/:id");
	CHECK_STR(tpl("/users/123/posts/0"), "/users/:id/posts/:id");
	CHECK_STR(tpl("/u/550e8400-e29b-41d4-a716-446655440000"), "/u/:id");
	CHECK_STR(tpl("/u/550E8400-E29B-41D4-A716-446655440000/x"),
		  "/u/:id/x");
	CHECK_STR(tpl("/u/550e8400-e29b-41d4-a716-44665544000"),
		  "/u/550e8400-e29b-41d4-a716-44665544000");
	CHECK_STR(tpl("/u/550e8400-e29b-41d4-a716-4466554400000"),
		  "/u/550e8400-e29b-41d4-a716-4466554400000");
	CHECK_STR(tpl("/u/550e8400e-29b-41d4-a716-446655440000"),
		  "/u/550e8400e-29b-41d4-a716-446655440000");
	CHECK_STR(tpl("/u/550g8400-e29b-41d4-a716-446655440000"),
		  "/u/550g8400-e29b-41d4-a716-446655440000");
	CHECK_STR(tpl("/blob/0123456789abcdef"), "/blob/:id");
	CHECK_STR(tpl("/blob/DEADBEEFDEADBEEF0"), "/blob/:id");
	CHECK_STR(tpl("/blob/0123456789abcde"), "/blob/0123456789abcde");
	CHECK_STR(tpl("/blob/0123456789abcdeg"), "/blob/0123456789abcdeg");
	CHECK_STR(tpl("/users/123/"), "/users/:id/");
	CHECK_STR(tpl("/users/"), "/users/");
	CHECK_STR(tpl("/"), "/");
	CHECK_STR(tpl(""), "/");
	CHECK_STR(tpl("123"), ":id");
	CHECK_STR(tpl("//7//"), "//:id//");
	CHECK_STR(tpl("/v1/a%2Fb/12x"), "/v1/a%2Fb/12x");
	CHECK_STR(tpl("/a/12?x=1"), "/a/:id");

	/* Truncation. */
	n = http_template_path("/users/123/abc", 14, out, 8);
	CHECK_EQ(n, 7);
	CHECK_STR(out, "/users/");
	n = http_template_path("/users/123/abc", 14, out, 9);
	CHECK_EQ(n, 8);
	CHECK_STR(out, "/users/:");
	n = http_template_path("/users/12345678901234567890", 27, out, 11);
	CHECK_STR(out, "/users/:id");
	CHECK_EQ(n, 10);
	n = http_template_path("/abcdefghijklmnopqrstuvwxyz/1", 29, out,
			       sizeof(out));
	CHECK_EQ(n, 15);
	CHECK_STR(out, "/abcdefghijklmn");
	n = http_template_path("", 0, out, 1);
	CHECK_EQ(n, 0);
	CHECK_STR(out, "");
	out[0] = 'x';
	CHECK_EQ(http_template_path("/a", 2, out, 0), 0);
	CHECK_EQ(out[0], 'x');
	n = http_template_path("/a/1\0/2", 7, out, sizeof(out));
	CHECK_EQ(n, 6);
	CHECK_STR(out, "/a/:id");
	n = http_template_path(NULL, 0, out, sizeof(out));
	CHECK_STR(out, "/");
	CHECK_EQ(n, 1);
}

/* ------------------------------------------------------------------------ */
/* Responses                                                                */
/* ------------------------------------------------------------------------ */

static void test_resp_content_length(void)
{
	static const char in[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
				 "Content-Type: text/plain\r\n\r\nhello";
	size_t len = strlen(in);
	struct http_resp p;
	struct log whole, split;

	run(RESP(&p, false), in, &whole);
	CHECK_STR(resp_events(&whole), "SD");
	CHECK_EQ(whole.rec[0].status, 200);
	CHECK_EQ(whole.rec[1].at, len);
	CHECK_EQ(p.status, 200);
	run_step(RESP(&p, false), in, 1, &split);
	CHECK_EQ(split.rec[0].at, strlen("HTTP/1.1 200 OK\r\n"));
	check_splits(RESP(&p, false), in, &whole, 0, len);
	run_step(RESP(&p, false), in, 1, &split);
	CHECK(log_same(&whole, &split));
	/* No reason phrase, bare LF. */
	CHECK_STR(resp_events_of("HTTP/1.0 404\nContent-Length: 0\n\n", false),
		  "SD");
}

static void test_resp_chunked(void)
{
	static const char in[] =
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
		"Content-Length: 1\r\n\r\n"
		"5;x=y\r\nhello\r\n6\r\n world\r\n0\r\nT: 1\r\n\r\n"
		"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n";
	struct http_resp p;
	struct log whole;

	run(RESP(&p, false), in, &whole);
	CHECK_STR(resp_events(&whole), "SDSD");
	CHECK_EQ(whole.rec[2].status, 500);
	check_splits(RESP(&p, false), in, &whole, 0, strlen(in));
	CHECK_STR(resp_events_of("HTTP/1.1 200 OK\r\nTransfer-Encoding: "
				 "chunked\r\n\r\nx\r\n",
				 false),
		  "SE");
}

static void test_resp_continue(void)
{
	static const char in[] = "HTTP/1.1 100 Continue\r\n\r\n"
				 "HTTP/1.1 102 Processing\r\nX: y\r\n\r\n"
				 "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n"
				 "\r\nok";
	struct http_resp p;
	struct log log, bytes;

	run(RESP(&p, false), in, &log);
	CHECK_STR(resp_events(&log), "SD");
	CHECK_EQ(log.rec[0].status, 201);
	run_step(RESP(&p, false), in, 1, &bytes);
	CHECK(log_same(&log, &bytes));
	CHECK_EQ(bytes.rec[0].at, strlen("HTTP/1.1 100 Continue\r\n\r\n"
					 "HTTP/1.1 102 Processing\r\nX: y\r\n\r\n"
					 "HTTP/1.1 201 Created\r\n"));
}

static void test_resp_no_body(void)
{
	static const char head_in[] =
		"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n"
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
	static const char in204[] =
		"HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n"
		"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n"
		"Transfer-Encoding: chunked\r\n\r\n"
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";
	struct http_resp p;
	struct log log;

	run(RESP(&p, true), head_in, &log);
	CHECK_STR(resp_events(&log), "SDSD");
	CHECK_EQ(log.rec[1].at, strlen("HTTP/1.1 200 OK\r\n"
				       "Content-Length: 1234\r\n\r\n"));
	run(RESP(&p, false), in204, &log);
	CHECK_STR(resp_events(&log), "SDSDSD");
	CHECK_EQ(log.rec[0].status, 204);
	CHECK_EQ(log.rec[2].status, 304);
	CHECK_EQ(log.rec[4].status, 200);
}

static void test_resp_close_delimited(void)
{
	static const char in[] = "HTTP/1.0 200 OK\r\nContent-Type: x\r\n\r\n"
				 "body bytes HTTP/1.1 200 OK\r\n\r\nmore";
	struct http_resp p;
	struct log log;

	run(RESP(&p, false), in, &log);
	CHECK_STR(resp_events(&log), "S");
	/* A transfer coding other than chunked also lasts until the close. */
	CHECK_STR(resp_events_of("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip"
				 "\r\nContent-Length: 3\r\n\r\nabcdef",
				 false),
		  "S");
	/* 101 is final: what follows is not HTTP and is never parsed. */
	CHECK_STR(resp_events_of("HTTP/1.1 101 Switching Protocols\r\n"
				 "Upgrade: websocket\r\n\r\n\x81\x05hello",
				 false),
		  "S");
	/* Sendfile'd bytes vanish into such a body. */
	check_skip(&p, 1000000, 1000000, 0);
}

static void test_resp_pipelined(void)
{
	static const char in[] = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n"
				 "abcHTTP/1.1 404 Not Found\r\n"
				 "content-length: 0\r\n\r\n";
	struct http_resp p;
	struct log log, bytes;

	run(RESP(&p, false), in, &log);
	CHECK_STR(resp_events(&log), "SDSD");
	CHECK_EQ(log.rec[1].at, strlen("HTTP/1.1 200 OK\r\n"
				       "Content-Length: 3\r\n\r\nabc"));
	CHECK_EQ(log.rec[2].status, 404);
	CHECK_EQ(log.rec[3].at, strlen(in));
	run_step(RESP(&p, false), in, 1, &bytes);
	CHECK(log_same(&log, &bytes));
}

static const struct resp_case resp_errors[] = {
	PARSE_RESP("hello", false, "E", "not HTTP"),
	PARSE_RESP("http/1.1 200 OK\r\n\r\n", false, "E", "lowercase"),
	PARSE_RESP("HTTP/2 200\r\n\r\n", false, "E", "HTTP/2"),
	PARSE_RESP("HTTP/1.1 20 OK\r\n\r\n", false, "E", "two digits"),
	PARSE_RESP("HTTP/1.1 099 OK\r\n\r\n", false, "E", "below 100"),
	PARSE_RESP("HTTP/1.1 2000 OK\r\n\r\n", false, "E", "four digits"),
	PARSE_RESP("HTTP/1.1  200 OK\r\n\r\n", false, "E", "two spaces"),
	PARSE_RESP("HTTP/1.x 200 OK\r\n\r\n", false, "E", "minor not a digit"),
	PARSE_RESP("HTTP/1.1\t200 OK\r\n\r\n", false, "E", "tab"),
	PARSE_RESP("HTTP/1.1 2x0 OK\r\n\r\n", false, "E", "letter in the code"),
	PARSE_RESP("HTTP/1.1 200X\r\n\r\n", false, "E", "junk after the code"),
	PARSE_RESP("HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", false, "SE",
		   "Content-Length: junk"),
	PARSE_RESP("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxjunk", false,
		   "SDE", "junk after the response"),
};

static void test_resp_errors(void)
{
	struct http_resp p;

	check_resp_cases(CASES(resp_errors));
	http_resp_init(&p);
	check_feed(RESP(&p, false), "<html>", 6, 1, HTTP_RESP_ERROR);
	check_feed(RESP(&p, false), "HTTP/", 5, 0, HTTP_RESP_ERROR);
	check_skip(&p, 10, 0, HTTP_RESP_ERROR);
}

/* Feeds a NUL-terminated string to p and returns the last event. */
static int resp_feed_str(struct http_resp *p, const char *s)
{
	struct log log;

	feed_step(RESP(p, false), s, strlen(s), 0, &log);
	return log.n ? log.rec[log.n - 1].ev : 0;
}

static void test_resp_skip(void)
{
	struct http_resp p;

	/* Content-Length body sent with sendfile in two calls. */
	http_resp_init(&p);
	CHECK_EQ(resp_feed_str(&p, "HTTP/1.1 200 OK\r\n"
				   "Content-Length: 10000\r\n\r\n"),
		 RV_STATUS);
	check_skip(&p, 4000, 4000, 0);
	check_skip(&p, 6000, 6000, HTTP_RESP_DONE);
	CHECK_EQ(resp_feed_str(&p, "HTTP/1.1 304 Not Modified\r\n\r\n"),
		 RV_DONE);

	/* Part of the body written, the rest sendfile'd past its end. */
	http_resp_init(&p);
	CHECK_EQ(resp_feed_str(&p, "HTTP/1.1 200 OK\r\n"
				   "Content-Length: 100\r\n\r\n0123456789"),
		 RV_STATUS);
	check_skip(&p, 200, 90, HTTP_RESP_DONE);
	/* The rest is outside a body: consumed without an event. */
	check_skip(&p, 110, 110, 0);
	CHECK_EQ(resp_feed_str(&p, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n"
				   "\r\n"),
		 RV_DONE);

	/* Chunked: the chunk header is written, the data sendfile'd. */
	http_resp_init(&p);
	CHECK_EQ(resp_feed_str(&p, "HTTP/1.1 200 OK\r\n"
				   "Transfer-Encoding: chunked\r\n\r\n"
				   "1000\r\n"),
		 RV_STATUS);
	check_skip(&p, 0x1000, 0x1000, 0);
	CHECK_EQ(resp_feed_str(&p, "\r\n0\r\n\r\n"), RV_DONE);

	/* Before any body: opaque, no event, the parser stays put. */
	http_resp_init(&p);
	check_skip(&p, 0, 0, 0);
	check_skip(&p, 55, 55, 0);
	CHECK_EQ(resp_feed_str(&p, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n"
				   "\r\n"),
		 RV_DONE);
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
	guard_setup();
	RUN(test_simple_get);
	RUN(test_zero_init_and_empty_feed);
	RUN(test_keep_alive_two);
	RUN(test_pipelining_three);
	RUN(test_one_byte_at_a_time);
	RUN(test_fast_paths_agree);
	RUN(test_fast_lengths);
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
	RUN(test_template);
	RUN(test_resp_content_length);
	RUN(test_resp_chunked);
	RUN(test_resp_continue);
	RUN(test_resp_no_body);
	RUN(test_resp_close_delimited);
	RUN(test_resp_pipelined);
	RUN(test_resp_errors);
	RUN(test_resp_skip);
	RUN(test_struct_sizes);
	return check_done();
}
