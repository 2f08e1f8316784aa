/*
 * push_test.h — the helpers of the unit tests for the pushes to a store
 * (push.h, test/unit/test_push*.c): the store, a libmicrohttpd server on a
 * loopback port run by its own thread that records every request and
 * answers the statuses a test plans; the fake snapshot whose counts a test
 * sets; pushes to the store at made-up times, and stderr captured.
 *
 * Everything here is static: each file that includes it has its own copy,
 * which records failures in that file's copy of check.h's state and counts
 * its made-up times from its own T0 (set by RUN_AT_NOW()).
 */
#ifndef PROFSHIM_PUSH_TEST_H
#define PROFSHIM_PUSH_TEST_H

#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "services/push.h"

#define SEC 1000000000ull

/* The made-up times count from the real monotonic time a test starts at,
 * which push_finish() goes on with: T0, each file's own, set by
 * RUN_AT_NOW(). */
static uint64_t T0;

static inline uint64_t mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * SEC + (uint64_t)ts.tv_nsec;
}

/* ------------------------------------------------------------------------ */
/* The store                                                                */
/* ------------------------------------------------------------------------ */

#define RECV_MAX 64

struct recv_req {
	char *body;
	char from[32], until[32], name[128], format[16], rate[16], auth[128];
	char path[64];
	int status;
};

struct receiver {
	struct MHD_Daemon *d;
	pthread_mutex_t lock;
	struct recv_req reqs[RECV_MAX];
	int n;
	int plan[8];   /* statuses of the first requests, then `rest` */
	int nplan;
	int rest;      /* 200 unless a test says otherwise */
	/* Replies other than 200 say "Authorization: " and the header the
	 * request carried, after pad[i] bytes of 'x' for request i (< 8). */
	bool echo_auth;
	int pad[8];
	unsigned port;
	char url[64];
};

struct upload {
	char *data;
	size_t len;
};

static inline void recv_copy(struct MHD_Connection *c, enum MHD_ValueKind kind,
			     const char *key, char *dst, size_t dstsz)
{
	const char *v = MHD_lookup_connection_value(c, kind, key);

	(void)snprintf(dst, dstsz, "%s", v ? v : "(none)");
}

static inline enum MHD_Result recv_handler(void *cls,
					   struct MHD_Connection *c,
					   const char *url, const char *method,
					   const char *version,
					   const char *data, size_t *size,
					   void **con_cls)
{
	struct receiver *r = cls;
	struct upload *u = *con_cls;
	struct MHD_Response *resp;
	enum MHD_Result ret;
	int status = 200;
	char reply[512] = "";

	if (!u) {
		*con_cls = calloc(1, sizeof(*u));
		return *con_cls ? MHD_YES : MHD_NO;
	}
	if (*size) {
		char *d = realloc(u->data, u->len + *size + 1);

		if (!d)
			return MHD_NO;
		memcpy(d + u->len, data, *size);
		u->len += *size;
		d[u->len] = '\0';
		u->data = d;
		*size = 0;
		return MHD_YES;
	}
	pthread_mutex_lock(&r->lock);
	if (r->n < RECV_MAX) {
		struct recv_req *q = &r->reqs[r->n];

		status = r->n < r->nplan ? r->plan[r->n] : r->rest;
		q->status = status;
		q->body = u->data ? u->data : strdup("");
		u->data = NULL;
		(void)snprintf(q->path, sizeof(q->path), "%s", url);
		recv_copy(c, MHD_GET_ARGUMENT_KIND, "from", q->from,
			  sizeof(q->from));
		recv_copy(c, MHD_GET_ARGUMENT_KIND, "until", q->until,
			  sizeof(q->until));
		recv_copy(c, MHD_GET_ARGUMENT_KIND, "name", q->name,
			  sizeof(q->name));
		recv_copy(c, MHD_GET_ARGUMENT_KIND, "format", q->format,
			  sizeof(q->format));
		recv_copy(c, MHD_GET_ARGUMENT_KIND, "sampleRate", q->rate,
			  sizeof(q->rate));
		recv_copy(c, MHD_HEADER_KIND, "Authorization", q->auth,
			  sizeof(q->auth));
		if (r->echo_auth && status != 200) {
			int pad = r->n < 8 ? r->pad[r->n] : 0;

			memset(reply, 'x', (size_t)pad);
			(void)snprintf(reply + pad, sizeof(reply) - (size_t)pad,
				       "Authorization: %s", q->auth);
		}
		r->n++;
	}
	pthread_mutex_unlock(&r->lock);
	resp = MHD_create_response_from_buffer(strlen(reply), reply,
					       MHD_RESPMEM_MUST_COPY);
	ret = MHD_queue_response(c, (unsigned)status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static inline void recv_completed(void *cls, struct MHD_Connection *c,
				  void **con_cls,
				  enum MHD_RequestTerminationCode t)
{
	struct upload *u = *con_cls;

	if (u) {
		free(u->data);
		free(u);
	}
	*con_cls = NULL;
}

static inline void recv_start(struct receiver *r, const int *plan, int nplan)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	const union MHD_DaemonInfo *info;

	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->lock, NULL);
	for (int i = 0; i < nplan; i++)
		r->plan[i] = plan[i];
	r->nplan = nplan;
	r->rest = 200;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	r->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL,
				recv_handler, r, MHD_OPTION_SOCK_ADDR, &sa,
				MHD_OPTION_NOTIFY_COMPLETED, recv_completed,
				NULL, MHD_OPTION_END);
	info = r->d ? MHD_get_daemon_info(r->d, MHD_DAEMON_INFO_BIND_PORT)
		    : NULL;
	if (!info) {
		printf("Bail out! cannot start the test store\n");
		exit(1);
	}
	r->port = info->port;
	(void)snprintf(r->url, sizeof(r->url), "http://127.0.0.1:%u/",
		       r->port);
}

static inline int recv_count(struct receiver *r)
{
	int n;

	pthread_mutex_lock(&r->lock);
	n = r->n;
	pthread_mutex_unlock(&r->lock);
	return n;
}

static inline void recv_stop(struct receiver *r)
{
	MHD_stop_daemon(r->d);
	for (int i = 0; i < r->n; i++)
		free(r->reqs[i].body);
	pthread_mutex_destroy(&r->lock);
}

/* The count of the folded line "stack N" in body, 0 when absent. */
static inline long body_count(const char *body, const char *stack)
{
	size_t n = strlen(stack);

	for (const char *l = body; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : l)
		if (strncmp(l, stack, n) == 0 && l[n] == ' ')
			return strtol(l + n + 1, NULL, 10);
	return 0;
}

/* ------------------------------------------------------------------------ */
/* The profile                                                              */
/* ------------------------------------------------------------------------ */

#define STACK_A "main;handle;burn_a"
#define STACK_B "main;handle;burn_b"

/* Counts of the snapshot: GET /a main;handle;burn_a (twice: a and a2, as
 * two processes running the same code give), GET /b main;handle;burn_b. */
struct fake {
	uint64_t a, a2, b;
	bool permute;     /* the frames table in another order */
	double period_ns;
	int looks;
};

static inline json_t *fake_snapshot(void *arg)
{
	static const char *const names[4] = {"main", "handle", "burn_a",
					     "burn_b"};
	struct fake *f = arg;
	json_t *frames = json_array(), *stacks = json_array();
	int at[4];   /* index of names[i] in frames */

	f->looks++;
	for (int j = 0; j < 4; j++) {
		int i = f->permute ? 3 - j : j;

		at[i] = j;
		json_array_append_new(
			frames, json_pack("{s:s, s:i, s:s, s:i}", "function",
					  names[i], "module", 0, "file", "srv.c",
					  "line", 10 * (i + 1)));
	}
	if (f->a)
		json_array_append_new(
			stacks, json_pack("{s:s, s:[i,i,i], s:I}", "endpoint",
					  "GET /a", "frames", at[0], at[1],
					  at[2], "samples", (json_int_t)f->a));
	if (f->b)
		json_array_append_new(
			stacks, json_pack("{s:s, s:[i,i,i], s:I}", "endpoint",
					  "GET /b", "frames", at[0], at[1],
					  at[3], "samples", (json_int_t)f->b));
	if (f->a2)
		json_array_append_new(
			stacks, json_pack("{s:s, s:[i,i,i], s:I}", "endpoint",
					  "GET /a", "frames", at[0], at[1],
					  at[2], "samples", (json_int_t)f->a2));
	return json_pack("{s:i, s:{s:s, s:f}, s:[{s:s, s:s, s:s}], s:o, s:o, "
			 "s:{s:{s:i}, s:{s:i}}, s:[]}",
			 "version", 1, "sample", "clock", "cpu", "period_ns",
			 f->period_ns ? f->period_ns : 1e7, "modules", "name",
			 "srv", "path", "/srv/srv", "build_id", "ab12",
			 "frames", frames, "stacks", stacks, "data", "GET /a",
			 "calls", 1, "GET /b", "calls", 1, "requests");
}

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */
/* ------------------------------------------------------------------------ */

static const char *const unit_tags[] = {"env=unit", "zone=a.1"};

static inline struct push *push_open(const char *url, const char *token)
{
	const struct push_opts o = {.url = url, .app = "app",
				    .tags = unit_tags, .ntags = 2,
				    .interval = 1.0, .format = "folded",
				    .token = token};
	struct push *p;
	char err[256];
	int r = push_new(&p, &o, err, sizeof(err));

	CHECK_EQ(r, 0);
	if (r) {
		printf("# %s\n", err);
		exit(1);
	}
	return p;
}

/* Turns of the loop at time `now` for `ms` of real time. */
static inline void pump(struct push *p, uint64_t now, struct fake *f, int ms)
{
	for (int i = 0; i < ms; i++) {
		push_step(p, T0 + now, fake_snapshot, f);
		usleep(1000);
	}
}

/* stderr into a file while a test runs, to check what is logged. */
static int stderr_saved = -1;
static FILE *stderr_file;

static inline void capture_start(void)
{
	fflush(stderr);
	stderr_file = tmpfile();
	stderr_saved = dup(2);
	if (!stderr_file || stderr_saved < 0 ||
	    dup2(fileno(stderr_file), 2) < 0) {
		printf("Bail out! cannot capture stderr\n");
		exit(1);
	}
}

/* What was logged since capture_start(); free() it. */
static inline char *capture_end(void)
{
	static char buf[16384];
	size_t n;

	fflush(stderr);
	dup2(stderr_saved, 2);
	close(stderr_saved);
	rewind(stderr_file);
	n = fread(buf, 1, sizeof(buf) - 1, stderr_file);
	buf[n] = '\0';
	fclose(stderr_file);
	return strdup(buf);
}

/* Frees what was logged, printing it first when the test has failed. */
static inline void log_free(char *err)
{
	if (check_test_failed)
		printf("# logged: %s", err);
	free(err);
}

/* The store r, started with the statuses `plan` (recv_start()), and a push
 * to it with the token; with `capture`, what the push logs is captured
 * from now on (capture_end()). Its baseline (the first look, at T0 + 0)
 * is the caller's: push_step(), or push_start_at_baseline(). */
static inline struct push *push_start(struct receiver *r, const int *plan,
				      int nplan, const char *token,
				      bool capture)
{
	recv_start(r, plan, nplan);
	if (capture)
		capture_start();
	return push_open(r->url, token);
}

/* push_start() without a token, and the baseline look, f as it is now. */
static inline struct push *push_start_at_baseline(struct receiver *r,
						  const int *plan, int nplan,
						  bool capture, struct fake *f)
{
	struct push *p = push_start(r, plan, nplan, NULL, capture);

	push_step(p, T0 + 0, fake_snapshot, f);
	return p;
}

/* push_finish() (5 s at most) and push_free(): then the store r must
 * have received n requests; true when it has. */
static inline bool push_end_expecting(struct push *p, struct fake *f,
				      struct receiver *r, int n)
{
	push_finish(p, fake_snapshot, f, 5.0);
	push_free(p);
	CHECK_EQ(r->n, n);
	return r->n == n;
}

static inline int count_substr(const char *s, const char *sub)
{
	int n = 0;

	for (s = strstr(s, sub); s; s = strstr(s + 1, sub))
		n++;
	return n;
}

/* Each test's made-up times start from now. */
#define RUN_AT_NOW(fn)                                                        \
	do {                                                                  \
		T0 = mono_now();                                              \
		RUN(fn);                                                      \
	} while (0)

/*
 * check.h counts tests and failures in each file that includes it: main()
 * (test_push.c) runs the tests of the other files through these, which
 * number them on from *tests and add their failures to *failures.
 */
void push_failure_tests(int *tests, int *failures);
void push_lookup_tests(int *tests, int *failures);

#endif /* PROFSHIM_PUSH_TEST_H */
