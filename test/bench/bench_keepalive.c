/*
 * bench_keepalive — the cost of the shim's hooks on the path every request
 * takes, counted in instructions under valgrind --tool=callgrind
 * (scripts/bench/hooks.sh): one accepted connection carries M keep-alive
 * requests, each read with recv() and answered with send().
 *
 *   bench_keepalive server M
 *     listens on 127.0.0.1 (a port the kernel picks), prints the port on a
 *     line of its own, accepts one connection and serves M requests on it,
 *     then closes it and prints "calls=<n> requests=<M>": n is the number
 *     of hooked calls (accept, recv, send, close) serve_loop() made.
 *   bench_keepalive client PORT M [browser]
 *     connects to 127.0.0.1:PORT and sends M requests one after the other,
 *     each after the previous response arrived in full: a 38-byte request
 *     with one header line, or with `browser` one of 12 header lines as a
 *     browser's fetch() sends it.
 *
 * Only the server is measured: the script runs it under callgrind with
 * --toggle-collect=serve_loop, so that start-up (and the shim's
 * constructor) is not counted, and runs the client natively. The hooked
 * functions are called once on a bad descriptor before serve_loop() so that
 * lazy binding of their PLT entries is not counted either.
 * Built with -O2 and without frame pointers, like most production code.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char bench_req[] = "GET /bench/items HTTP/1.1\r\nHost: b\r\n\r\n";
/* What a browser's fetch() sends: 12 header lines, 503 bytes. */
static const char bench_browser_req[] =
	"GET /api/v1/users/12345/orders?page=2 HTTP/1.1\r\n"
	"Host: shop.example.test\r\n"
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:120.0) "
	"Gecko/20100101 Firefox/120.0\r\n"
	"Accept: application/json, text/plain, */*\r\n"
	"Accept-Language: en-US,en;q=0.5\r\n"
	"Accept-Encoding: gzip, deflate, br\r\n"
	"Referer: http://shop.example.test/account/orders\r\n"
	"Connection: keep-alive\r\n"
	"Cookie: session=4f9a0c2e7b1d8e3f0a6c; theme=dark; lang=en\r\n"
	"Sec-Fetch-Dest: empty\r\n"
	"Sec-Fetch-Mode: cors\r\n"
	"Sec-Fetch-Site: same-origin\r\n"
	"Cache-Control: no-cache\r\n"
	"\r\n";
static const char bench_resp[] =
	"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
	"Content-Length: 3\r\n\r\nok\n";

#define RESP_LEN (sizeof(bench_resp) - 1)

static void die(const char *what)
{
	fprintf(stderr, "bench_keepalive: %s: %s\n", what,
		errno ? strerror(errno) : "unexpected end of stream");
	exit(1);
}

static long parse_count(const char *s)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v <= 0 || v > 100000000) {
		fprintf(stderr, "bench_keepalive: bad count: %s\n", s);
		exit(1);
	}
	return v;
}

/* Offset just past the first "\r\n\r\n" in buf[0..n), or 0. */
static size_t head_end(const char *buf, size_t n)
{
	for (size_t i = 3; i < n; i++)
		if (buf[i] == '\n' && buf[i - 1] == '\r' && buf[i - 2] == '\n' &&
		    buf[i - 3] == '\r')
			return i + 1;
	return 0;
}

/*
 * Accept one connection on lfd and serve m requests on it: read each
 * request's head in full (however recv() splits it), answer it with the
 * fixed response, then close. Returns the number of hooked calls made.
 */
__attribute__((noinline, noclone)) long serve_loop(int lfd, long m)
{
	char buf[4096];
	size_t have = 0, end;
	long calls = 0;
	ssize_t r;
	int fd;

	fd = accept(lfd, NULL, NULL);
	calls++;
	if (fd < 0)
		die("accept");
	for (long i = 0; i < m; i++) {
		while ((end = head_end(buf, have)) == 0) {
			if (have == sizeof(buf)) {
				errno = EMSGSIZE;
				die("request head");
			}
			r = recv(fd, buf + have, sizeof(buf) - have, 0);
			calls++;
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0) {
				if (r == 0)
					errno = 0;
				die("recv");
			}
			have += (size_t)r;
		}
		/* Bytes after the head belong to the next request. */
		memmove(buf, buf + end, have - end);
		have -= end;
		for (size_t off = 0; off < RESP_LEN;) {
			r = send(fd, bench_resp + off, RESP_LEN - off, 0);
			calls++;
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0)
				die("send");
			off += (size_t)r;
		}
	}
	close(fd);
	calls++;
	return calls;
}

static int server(long m)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof(sa);
	char byte;
	long calls;
	int lfd;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (lfd < 0)
		die("socket");
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("bind");
	if (listen(lfd, 1) < 0)
		die("listen");
	if (getsockname(lfd, (struct sockaddr *)&sa, &len) < 0)
		die("getsockname");
	/* Bind the hooked functions now (they fail with EBADF). */
	(void)!accept(-1, NULL, NULL);
	(void)!recv(-1, &byte, 1, 0);
	(void)!send(-1, &byte, 1, 0);
	(void)!close(-1);
	printf("%u\n", ntohs(sa.sin_port));
	if (fflush(stdout) != 0)
		die("stdout");
	calls = serve_loop(lfd, m);
	close(lfd);
	printf("calls=%ld requests=%ld\n", calls, m);
	return 0;
}

/* Send m requests (req[0..req_len)) to port, reading each answer. */
static int client(const char *port, long m, const char *req, size_t req_len)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	char buf[RESP_LEN];
	ssize_t r;
	int fd;

	sa.sin_port = htons((unsigned short)parse_count(port));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		die("socket");
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("connect");
	for (long i = 0; i < m; i++) {
		for (size_t off = 0; off < req_len; off += (size_t)r) {
			r = write(fd, req + off, req_len - off);
			if (r < 0 && errno == EINTR)
				r = 0;
			else if (r < 0)
				die("write");
		}
		for (size_t off = 0; off < RESP_LEN; off += (size_t)r) {
			r = read(fd, buf + off, RESP_LEN - off);
			if (r < 0 && errno == EINTR)
				r = 0;
			else if (r <= 0) {
				if (r == 0)
					errno = 0;
				die("read");
			}
		}
		if (memcmp(buf, bench_resp, RESP_LEN) != 0) {
			errno = EPROTO;
			die("response");
		}
	}
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "server") == 0)
		return server(parse_count(argv[2]));
	if (argc == 4 && strcmp(argv[1], "client") == 0)
		return client(argv[2], parse_count(argv[3]), bench_req,
			      sizeof(bench_req) - 1);
	if (argc == 5 && strcmp(argv[1], "client") == 0 &&
	    strcmp(argv[4], "browser") == 0)
		return client(argv[2], parse_count(argv[3]), bench_browser_req,
			      sizeof(bench_browser_req) - 1);
	fprintf(stderr,
		"usage: bench_keepalive server M | client PORT M [browser]\n");
	return 1;
}
