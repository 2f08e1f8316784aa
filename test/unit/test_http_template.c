/*
 * test_http_template.c — unit tests for the incremental HTTP/1.x delimiter
 * (http.h), part of test_http (test_http.c): endpoint templating,
 * http_template_path().
 */
#include <string.h>

#include "check.h"
#include "http.h"
#include "http_feed.h"

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

/* Runs the tests of this file: see http_feed.h. */
void http_template_tests(int *tests, int *failures)
{
	check_tests = *tests;
	RUN(test_template);
	*tests = check_tests;
	*failures += check_failures;
}
