/*
 * test_http_resp.c — unit tests for the incremental HTTP/1.x delimiter
 * (http.h), part of test_http (test_http.c): responses.
 */
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "http.h"
#include "http_feed.h"

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

/* Runs the tests of this file: see http_feed.h. */
void http_resp_tests(int *tests, int *failures)
{
	check_tests = *tests;
	RUN(test_resp_content_length);
	RUN(test_resp_chunked);
	RUN(test_resp_continue);
	RUN(test_resp_no_body);
	RUN(test_resp_close_delimited);
	RUN(test_resp_pipelined);
	RUN(test_resp_errors);
	RUN(test_resp_skip);
	*tests = check_tests;
	*failures += check_failures;
}
