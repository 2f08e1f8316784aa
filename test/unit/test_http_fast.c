/*
 * test_http_fast.c — unit tests for the incremental HTTP/1.x delimiter
 * (http.h), part of test_http (test_http.c): its fast paths, which take
 * whole lines at once, against its byte-at-a-time path, for requests and
 * responses.
 */
#include <string.h>

#include "check.h"
#include "http.h"
#include "http_feed.h"

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
	/* Header lines across the 64-byte windows LFs are found in: a
	 * browser's request, a line longer than a window, the framing
	 * header and the empty line on either side of a window's edge. */
	"GET /api/v1/users/12345/orders?page=2 HTTP/1.1\r\nHost: shop.example.test\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0\r\nAccept: application/json, text/plain, */*\r\nAccept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate, br\r\nConnection: keep-alive\r\nCookie: session=4f9a0c2e7b1d8e3f0a6c; theme=dark\r\nCache-Control: no-cache\r\n\r\n",
	"POST /p HTTP/1.1\r\nX-A: 0123456789012345678901234567890123456789012345\r\nContent-Length: 2\r\n\r\nab",
	"POST /p HTTP/1.1\r\nX-A: 01234567890123456789012345678901234567890123456\r\nContent-Length: 2\r\n\r\nab",
	"POST /p HTTP/1.1\r\nX-A: 0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789\r\nContent-Length: 2\r\n\r\nab",
	"GET /p HTTP/1.1\r\nX-A: 01234567890123456789012345678901234567890\r\nX-B: 0123456789012345678901234567890123456789012345678901234\r\n\r\n",
	"GET /p HTTP/1.1\r\nX-A: 01234567890123456789012345678901234567890\r\nX-B: 01234567890123456789012345678901234567890123456789012345\r\n\r\n",
	"GET /p HTTP/1.1\r\nX-A: 0123456789012345678901234567890123456789012345678901234567890\r\n\n",
	"POST /p HTTP/1.1\r\nX-A: 0123456789012345678901234567890123456789012345678901234567890123\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nz\r\n0\r\n\r\n",
	/* Paths whose slashes and ids lie in every word of the slash map,
	 * and past HTTP_TARGET_MAX. */
	"GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/12/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb/345/c/6 HTTP/1.1\r\n\r\n",
	"GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/deadbeefdeadbeef/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb/550e8400-e29b-41d4-a716-446655440000 HTTP/1.1\r\n\r\n",
	"GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/1234567890 HTTP/1.1\r\n\r\n",
	"GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/1/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb/2 HTTP/1.1\r\n\r\n",
	"GET /1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/16/17/18/19/20/21/22/23/24/25/26/27/28/29/30/31/32/33/34/35/36/37/38/39/40/41/42/43/44/45/46/47/48/49/50 HTTP/1.1\r\n\r\n",
	"GET //a//1//b// HTTP/1.1\r\n\r\n",
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
	"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Tue, 08 Dec 2026 00:50:00 GMT\r\nContent-Type: application/octet-stream\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok",
	"HTTP/1.1 200 OK\r\nX-A: 012345678901234567890123456789012345678901\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 200 OK\r\nX-A: 0123456789012345678901234567890123456789012\r\nContent-Length: 2\r\n\r\nok",
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

/* Runs the tests of this file: see http_feed.h. */
void http_fast_tests(int *tests, int *failures)
{
	check_tests = *tests;
	RUN(test_fast_paths_agree);
	RUN(test_fast_lengths);
	*tests = check_tests;
	*failures += check_failures;
}
