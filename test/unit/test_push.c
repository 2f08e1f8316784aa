/*
 * test_push.c — unit tests for the pushes to a store (push.h).
 *
 * The store is a libmicrohttpd server on a loopback port, run by its own
 * thread, that records every request and answers the statuses a test
 * plans. Profiles come from a fake snapshot whose counts the test sets;
 * bodies are folded lines, easy to read back. push_step() gets a made-up
 * monotonic time, so intervals and backoff are the test's to choose.
 *
 * One test needs a name server that never answers: a child process gets
 * network and mount namespaces of its own (in a user namespace, so no
 * privileges are needed where the kernel allows those), with only its
 * loopback interface up, a UDP socket on 127.0.0.1:53 nobody reads, and
 * a resolv.conf naming it mounted over /etc/resolv.conf. No query leaves
 * the child's namespace.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <microhttpd.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "services/push.h"

#define SEC 1000000000ull

/* The made-up times count from the real monotonic time a test starts at,
 * which push_finish() goes on with. */
static uint64_t T0;

static uint64_t mono_now(void)
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

static void recv_copy(struct MHD_Connection *c, enum MHD_ValueKind kind,
		      const char *key, char *dst, size_t dstsz)
{
	const char *v = MHD_lookup_connection_value(c, kind, key);

	(void)snprintf(dst, dstsz, "%s", v ? v : "(none)");
}

static enum MHD_Result recv_handler(void *cls, struct MHD_Connection *c,
				    const char *url, const char *method,
				    const char *version, const char *data,
				    size_t *size, void **con_cls)
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

static void recv_completed(void *cls, struct MHD_Connection *c,
			   void **con_cls, enum MHD_RequestTerminationCode t)
{
	struct upload *u = *con_cls;

	if (u) {
		free(u->data);
		free(u);
	}
	*con_cls = NULL;
}

static void recv_start(struct receiver *r, const int *plan, int nplan)
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

static int recv_count(struct receiver *r)
{
	int n;

	pthread_mutex_lock(&r->lock);
	n = r->n;
	pthread_mutex_unlock(&r->lock);
	return n;
}

static void recv_stop(struct receiver *r)
{
	MHD_stop_daemon(r->d);
	for (int i = 0; i < r->n; i++)
		free(r->reqs[i].body);
	pthread_mutex_destroy(&r->lock);
}

/* A loopback port nothing listens on. */
static unsigned closed_port(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    getsockname(fd, (struct sockaddr *)&sa, &len)) {
		printf("Bail out! no free port\n");
		exit(1);
	}
	close(fd);
	return ntohs(sa.sin_port);
}

/* The count of the folded line "stack N" in body, 0 when absent. */
static long body_count(const char *body, const char *stack)
{
	size_t n = strlen(stack);

	for (const char *l = body; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : l)
		if (strncmp(l, stack, n) == 0 && l[n] == ' ')
			return strtol(l + n + 1, NULL, 10);
	return 0;
}

static int body_lines(const char *body)
{
	int n = 0;

	for (; *body; body++)
		n += *body == '\n';
	return n;
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

static json_t *fake_snapshot(void *arg)
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

static struct push *push_open(const char *url, const char *token)
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
static void pump(struct push *p, uint64_t now, struct fake *f, int ms)
{
	for (int i = 0; i < ms; i++) {
		push_step(p, T0 + now, fake_snapshot, f);
		usleep(1000);
	}
}

/* Turns of the loop at time `now` until the store r has received n
 * requests, for at most `ms` of real time. */
static void pump_until(struct push *p, uint64_t now, struct fake *f,
		       struct receiver *r, int n, int ms)
{
	for (int i = 0; i < ms && recv_count(r) < n; i++)
		pump(p, now, f, 1);
}

/* stderr into a file while a test runs, to check what is logged. */
static int stderr_saved = -1;
static FILE *stderr_file;

static void capture_start(void)
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
static char *capture_end(void)
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
static void log_free(char *err)
{
	if (check_test_failed)
		printf("# logged: %s", err);
	free(err);
}

/* The store r, started with the statuses `plan` (recv_start()), and a push
 * to it with the token; with `capture`, what the push logs is captured
 * from now on (capture_end()). Its baseline (the first look, at T0 + 0)
 * is the caller's: push_step(), or push_start_at_baseline(). */
static struct push *push_start(struct receiver *r, const int *plan, int nplan,
			       const char *token, bool capture)
{
	recv_start(r, plan, nplan);
	if (capture)
		capture_start();
	return push_open(r->url, token);
}

/* push_start() without a token, and the baseline look, f as it is now. */
static struct push *push_start_at_baseline(struct receiver *r,
					   const int *plan, int nplan,
					   bool capture, struct fake *f)
{
	struct push *p = push_start(r, plan, nplan, NULL, capture);

	push_step(p, T0 + 0, fake_snapshot, f);
	return p;
}

/* push_finish() (5 s at most) and push_free(): then the store r must
 * have received n requests; true when it has. */
static bool push_end_expecting(struct push *p, struct fake *f,
			       struct receiver *r, int n)
{
	push_finish(p, fake_snapshot, f, 5.0);
	push_free(p);
	CHECK_EQ(r->n, n);
	return r->n == n;
}

/* A push to a new store r of what changed from the counts `before` (the
 * baseline) to `after` (a look 1 s later): true when the store received
 * it in one request. */
static bool push_one_interval(struct receiver *r, struct fake before,
			      struct fake after)
{
	struct push *p = push_start_at_baseline(r, NULL, 0, false, &before);

	push_step(p, T0 + SEC, fake_snapshot, &after);
	return push_end_expecting(p, &after, r, 1);
}

static int count_substr(const char *s, const char *sub)
{
	int n = 0;

	for (s = strstr(s, sub); s; s = strstr(s + 1, sub))
		n++;
	return n;
}

/* ------------------------------------------------------------------------ */
/* Tests                                                                    */
/* ------------------------------------------------------------------------ */

static void test_options_are_checked(void)
{
	static const struct {
		const char *url, *app, *tag, *format, *token;
		double interval;
		const char *says;
	} bad[] = {
		{"ftp://x", "a", NULL, NULL, NULL, 1, "http:// or https://"},
		{"http//x", "a", NULL, NULL, NULL, 1, "http:// or https://"},
		{"", "a", NULL, NULL, NULL, 1, "http:// or https://"},
		{"http://", "a", NULL, NULL, NULL, 1, "not a valid"},
		{"http://h/ x", "a", NULL, NULL, NULL, 1, "spaces"},
		{"http://h/p?q=1", "a", NULL, NULL, NULL, 1, "query"},
		{"http://h/p#f", "a", NULL, NULL, NULL, 1, "query"},
		{"http://h", "", NULL, NULL, NULL, 1, "must not be empty"},
		{"http://h", "a{b", NULL, NULL, NULL, 1, "'a{b'"},
		{"http://h", "a\nb", NULL, NULL, NULL, 1, "'a?b'"},
		{"http://h", "a", "noequals", NULL, NULL, 1, "KEY=VALUE"},
		{"http://h", "a", "=v", NULL, NULL, 1, "the key"},
		{"http://h", "a", "1k=v", NULL, NULL, 1, "the key"},
		{"http://h", "a", "k-x=v", NULL, NULL, 1, "the key"},
		{"http://h", "a", "k=", NULL, NULL, 1, "the value"},
		{"http://h", "a", "k=a,b", NULL, NULL, 1, "the value"},
		{"http://h", "a", "k=a=b", NULL, NULL, 1, "the value"},
		{"http://h", "a", "k=}", NULL, NULL, 1, "the value"},
		{"http://h", "a", "k=a\tb", NULL, NULL, 1, "the value"},
		{"http://h", "a", NULL, "xml", NULL, 1, "pprof or folded"},
		{"http://h", "a", NULL, NULL, "tok\r\nX: y", 1,
		 "control characters"},
		{"http://h", "a", NULL, NULL, NULL, 0, "above 0"},
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *tags[1] = {bad[i].tag};
		const struct push_opts o = {
			.url = bad[i].url, .app = bad[i].app, .tags = tags,
			.ntags = bad[i].tag ? 1 : 0, .interval = bad[i].interval,
			.format = bad[i].format, .token = bad[i].token};
		struct push *p = (struct push *)&o;
		char err[256] = "";

		CHECK_EQ(push_new(&p, &o, err, sizeof(err)), -EINVAL);
		CHECK(p == NULL);
		if (!strstr(err, bad[i].says))
			printf("# case %zu: '%.200s' does not say the "
			       "expected reason\n", i, err);
		CHECK(strstr(err, bad[i].says) != NULL);
		CHECK(strchr(err, '\n') == NULL);
		if (bad[i].token)
			CHECK(strstr(err, "tok") == NULL);
	}
	{
		/* A key given twice. */
		const char *tags[2] = {"k=1", "k=2"};
		const struct push_opts o = {.url = "https://h:1/x/", .app = "a",
					    .tags = tags, .ntags = 2,
					    .interval = 0.5};
		struct push *p;
		char err[256];

		CHECK_EQ(push_new(&p, &o, err, sizeof(err)), -EINVAL);
		CHECK(strstr(err, "twice") != NULL);
	}
	{
		const char *tags[3] = {"_k.1=v 1", "Z=ü", "k2=x"};
		const struct push_opts o = {.url = "HTTPS://u:p@h:1/x/",
					    .app = "my app", .tags = tags,
					    .ntags = 3, .interval = 0.5};
		struct push *p = NULL;
		char err[256];

		CHECK_EQ(push_new(&p, &o, err, sizeof(err)), 0);
		push_free(p);
		push_free(NULL);
	}
}

/* Deltas by what a stack is, not by its indices; nothing new, no POST. */
static void test_deltas_by_content(void)
{
	struct receiver r;
	struct fake f = {.a = 5, .period_ns = 1e9 / 97};
	struct push *p;
	bool got;

	p = push_start(&r, NULL, 0, "t0k", false);
	push_step(p, T0 + 0, fake_snapshot, &f);          /* the baseline */
	f.a = 8;
	f.b = 2;
	f.permute = true;
	push_step(p, T0 + SEC / 2, fake_snapshot, &f);    /* too early */
	CHECK_EQ(f.looks, 1);
	push_step(p, T0 + SEC, fake_snapshot, &f);        /* +3 a, +2 b */
	pump(p, SEC, &f, 50);
	push_step(p, T0 + 2 * SEC, fake_snapshot, &f);    /* nothing new */
	f.a = 10;
	f.permute = false;
	push_step(p, T0 + 3 * SEC, fake_snapshot, &f);    /* +2 a */
	got = push_end_expecting(p, &f, &r, 2);     /* finish: nothing new */
	CHECK_EQ(f.looks, 5);
	if (got) {
		struct recv_req *q = r.reqs;

		CHECK_EQ(body_lines(q[0].body), 2);
		CHECK_EQ(body_count(q[0].body, STACK_A), 3);
		CHECK_EQ(body_count(q[0].body, STACK_B), 2);
		CHECK_EQ(body_lines(q[1].body), 1);
		CHECK_EQ(body_count(q[1].body, STACK_A), 2);
		CHECK_STR(q[0].path, "/ingest");
		CHECK_STR(q[0].name, "app{env=unit,zone=a.1}");
		CHECK_STR(q[0].format, "folded");
		CHECK_STR(q[0].rate, "97");
		CHECK_STR(q[0].auth, "Bearer t0k");
		/* Intervals end at the looks' times (0, 1, 2, 3 s): the
		 * empty look at 2 s moves the next push's start. */
		CHECK(atoll(q[0].from) > 1600000000);
		CHECK_EQ(atoll(q[0].until) - atoll(q[0].from), 1);
		CHECK_EQ(atoll(q[1].from) - atoll(q[0].until), 1);
		CHECK_EQ(atoll(q[1].until) - atoll(q[1].from), 1);
	}
	recv_stop(&r);
}

/* Two stacks of the same content (two processes) count as one. */
static void test_same_content_summed(void)
{
	struct receiver r;

	if (push_one_interval(&r, (struct fake){.a = 3, .a2 = 4},
			      (struct fake){.a = 3, .a2 = 6,
					    .permute = true})) {
		CHECK_EQ(body_lines(r.reqs[0].body), 1);
		CHECK_EQ(body_count(r.reqs[0].body, STACK_A), 2);
		CHECK_STR(r.reqs[0].auth, "(none)");
		CHECK_STR(r.reqs[0].rate, "100");
	}
	recv_stop(&r);
}

/* A count that fell: the statistics were reset, everything counts from 0. */
static void test_reset_noticed(void)
{
	struct receiver r;

	if (push_one_interval(&r, (struct fake){.a = 10, .b = 10},
			      (struct fake){.a = 3, .b = 12})) {
		CHECK_EQ(body_count(r.reqs[0].body, STACK_A), 3);
		CHECK_EQ(body_count(r.reqs[0].body, STACK_B), 12);
	}
	recv_stop(&r);
}

/* push_reset(): what came before the reset goes out, then from 0. */
static void test_push_reset(void)
{
	struct receiver r;
	struct fake f = {.a = 5};
	struct push *p;

	p = push_start(&r, NULL, 0, NULL, false);
	push_reset(p, T0 + 0, fake_snapshot, &f);   /* before the baseline: no-op */
	CHECK_EQ(f.looks, 0);
	push_step(p, T0 + 0, fake_snapshot, &f);
	f.a = 7;
	push_reset(p, T0 + SEC / 2, fake_snapshot, &f);
	f.a = 9;   /* cleared, then 9 new: more than before the reset */
	push_step(p, T0 + SEC, fake_snapshot, &f);
	if (push_end_expecting(p, &f, &r, 2)) {
		CHECK_EQ(body_count(r.reqs[0].body, STACK_A), 2);
		CHECK_EQ(body_count(r.reqs[1].body, STACK_A), 9);
	}
	recv_stop(&r);
}

/* What was counted before the first step (a resumed checkpoint) is not
 * pushed again; push_finish() without any step pushes nothing. */
static void test_baseline_not_pushed(void)
{
	struct receiver r;
	struct fake f = {.a = 100};
	struct push *p;
	char *err;

	p = push_start_at_baseline(&r, NULL, 0, true, &f);
	push_step(p, T0 + 5 * SEC, fake_snapshot, &f);
	push_end_expecting(p, &f, &r, 0);
	f.a = 200;
	p = push_open(r.url, NULL);
	push_end_expecting(p, &f, &r, 0);
	err = capture_end();
	CHECK_STR(err, "");
	log_free(err);
	recv_stop(&r);
}

/* A store that is down: 16 bodies wait, older ones are dropped and
 * counted; one failure line, without the URL's user and password or the
 * token; push_finish() says what is left in one line. */
static void test_queue_bound(void)
{
	char url[96], *err;
	struct fake f = {0};
	struct push *p;

	(void)snprintf(url, sizeof(url), "http://user:pw@127.0.0.1:%u/base//",
		       closed_port());
	capture_start();
	p = push_open(url, "s3cret");
	push_step(p, T0 + 0, fake_snapshot, &f);
	for (uint64_t i = 1; i <= 20; i++) {
		f.a = i;   /* one sample per interval */
		pump(p, i * SEC, &f, 5);
	}
	push_finish(p, fake_snapshot, &f, 0.2);
	push_free(p);
	err = capture_end();
	CHECK_EQ(count_substr(err, "\n"), 2);
	CHECK_EQ(count_substr(err, " failed: "), 1);
	CHECK(strstr(err, "push to http://127.0.0.1:") != NULL);
	CHECK(strstr(err, "/base failed: ") != NULL);
	CHECK(strstr(err, "16 bodies (16 samples) not delivered within 0.2 s")
	      != NULL);
	CHECK(strstr(err, "; 4 bodies (4 samples) dropped during the "
			  "recording\n") != NULL);
	CHECK(strstr(err, "pw") == NULL);
	CHECK(strstr(err, "user") == NULL);
	CHECK(strstr(err, "s3cret") == NULL);
	log_free(err);
}

/* A body the store calls malformed is dropped; the next one goes out. */
static void test_rejected_body_dropped(void)
{
	static const int plan[] = {400};
	struct receiver r;
	struct fake f = {0};
	struct push *p;
	char *err;

	p = push_start_at_baseline(&r, plan, 1, true, &f);
	f.a = 1;
	push_step(p, T0 + SEC, fake_snapshot, &f);
	f.a = 3;
	push_step(p, T0 + 2 * SEC, fake_snapshot, &f);
	if (push_end_expecting(p, &f, &r, 2)) {
		CHECK_EQ(r.reqs[0].status, 400);
		CHECK_EQ(body_count(r.reqs[0].body, STACK_A), 1);
		CHECK_EQ(body_count(r.reqs[1].body, STACK_A), 2);
	}
	err = capture_end();
	CHECK(strstr(err, "failed: HTTP 400 (that body is dropped)") != NULL);
	CHECK(strstr(err, "works again") != NULL);
	CHECK(strstr(err, ": 1 body (1 samples) dropped during the "
			  "recording\n") != NULL);
	log_free(err);
	recv_stop(&r);
}

/* A failed body waits its backoff, then the same body goes again. */
static void test_retry_waits_backoff(void)
{
	static const int plan[] = {503};
	struct receiver r;
	struct fake f = {0};
	struct push *p;
	char *err;
	bool got;

	p = push_start_at_baseline(&r, plan, 1, true, &f);
	f.a = 2;
	pump_until(p, SEC, &f, &r, 1, 2000);
	pump(p, SEC, &f, 100);   /* the failure is in */
	pump(p, SEC + SEC / 2, &f, 200);
	CHECK_EQ(recv_count(&r), 1);   /* 1 s backoff */
	pump_until(p, 2 * SEC + SEC / 2, &f, &r, 2, 2000);
	got = push_end_expecting(p, &f, &r, 2);
	err = capture_end();
	if (got) {
		CHECK_STR(r.reqs[0].body, r.reqs[1].body);
		CHECK_STR(r.reqs[0].from, r.reqs[1].from);
		CHECK_EQ(body_count(r.reqs[1].body, STACK_A), 2);
	}
	CHECK_EQ(count_substr(err, " failed: HTTP 503 ("), 1);
	log_free(err);
	recv_stop(&r);
}

/* The store's reply echoes the Authorization header: the log shows
 * "<token>" in its place, also where the cut at 160 bytes of the reply
 * falls within the token, and never any of it; nor where the store's URL
 * holds it. */
static void test_echoed_token_not_logged(void)
{
	static const char token[] = "tok-Zq81xW7rPm3K";
	static const int plan[] = {500, 500};
	struct receiver r;
	struct fake f = {0};
	struct push *p;
	char url[128], *err;
	bool got;

	recv_start(&r, plan, 2);
	(void)snprintf(url, sizeof(url), "%s%s", r.url, token);
	pthread_mutex_lock(&r.lock);
	r.echo_auth = true;
	/* The second reply: 133 + strlen("Authorization: Bearer ") = 155
	 * bytes before the token, so the first 160 hold 5 bytes of it. */
	r.pad[1] = 133;
	pthread_mutex_unlock(&r.lock);
	capture_start();
	p = push_open(url, token);
	push_step(p, T0 + 0, fake_snapshot, &f);
	f.a = 1;
	pump_until(p, SEC, &f, &r, 1, 2000);
	pump(p, SEC, &f, 200);   /* the failure is in */
	/* After the backoff and a minute, so the failure is logged again. */
	pump_until(p, 62 * SEC, &f, &r, 2, 2000);
	pump(p, 62 * SEC, &f, 200);
	got = push_end_expecting(p, &f, &r, 3);
	err = capture_end();
	if (got) {
		/* The store did get the token, and sent it back. */
		CHECK_STR(r.reqs[0].auth, "Bearer tok-Zq81xW7rPm3K");
		CHECK_STR(r.reqs[1].auth, "Bearer tok-Zq81xW7rPm3K");
		CHECK_EQ(r.reqs[2].status, 200);
		CHECK_STR(r.reqs[2].path, "/tok-Zq81xW7rPm3K/ingest");
	}
	CHECK_EQ(count_substr(err, "push to http://127.0.0.1:"), 3);
	CHECK_EQ(count_substr(err, "/<token> failed: HTTP 500: "), 2);
	CHECK(strstr(err, " failed: HTTP 500: Authorization: Bearer <token> "
			  "(1 failure since ") != NULL);
	CHECK(strstr(err, "xxxxAuthorization: Bearer <toke (2 failures "
			  "since ") != NULL);
	CHECK(strstr(err, "/<token> works again") != NULL);
	CHECK(strstr(err, "tok-") == NULL);
	log_free(err);
	recv_stop(&r);

	{
		/* push_new()'s reason quotes the app name: no token there
		 * either. */
		const struct push_opts o = {.url = "http://h",
					    .app = "my{tok-Zq81xW7rPm3K}",
					    .interval = 1, .token = token};
		char msg[256];

		CHECK_EQ(push_new(&p, &o, msg, sizeof(msg)), -EINVAL);
		CHECK(strstr(msg, "name 'my{<token>}' must not") != NULL);
		CHECK(strstr(msg, "tok-") == NULL);
	}
}

/* The made-up seconds at which a store that always fails is tried: the
 * first push at 1 s, then after 1, 2, 4, 8, 16, 32 s and 60 s twice
 * (the backoff doubles up to a minute). */
static const uint64_t tried_at[] = {1, 2, 4, 8, 16, 32, 64, 124, 184};

/*
 * With a store answering 503 to everything and one body queued at 1 s,
 * turn the loop at the made-up times tried_at[0..n-1]: 1 ms before each
 * (but the first) no request may come, at it one must. After each the
 * loop turns 200 ms more at that time, so the failure is collected then
 * and the next backoff counts from it.
 */
static void fail_through(struct push *p, struct fake *f, struct receiver *r,
			 int n)
{
	push_step(p, T0 + 0, fake_snapshot, f);
	f->a = 1;
	for (int k = 0; k < n; k++) {
		uint64_t at = tried_at[k] * SEC;

		if (k) {
			pump(p, at - SEC / 1000, f, 50);
			if (recv_count(r) != k)
				printf("# attempt %d came before %llu s\n",
				       k + 1, (unsigned long long)tried_at[k]);
			CHECK_EQ(recv_count(r), k);
		}
		pump_until(p, at, f, r, k + 1, 3000);
		if (recv_count(r) != k + 1)
			printf("# attempt %d did not come at %llu s\n", k + 1,
			       (unsigned long long)tried_at[k]);
		CHECK_EQ(recv_count(r), k + 1);
		pump(p, at, f, 200);
	}
}

/* A push to a store r that answers every request 503, with what push logs
 * captured from now on (capture_end()). */
static struct push *push_to_failing_store(struct receiver *r)
{
	struct push *p = push_start(r, NULL, 0, NULL, true);

	pthread_mutex_lock(&r->lock);
	r->rest = 503;
	pthread_mutex_unlock(&r->lock);
	return p;
}

/* Backoff: 1 s after the first failure, doubling, at most 60 s. */
static void test_backoff_doubles_to_a_minute(void)
{
	const int n = (int)(sizeof(tried_at) / sizeof(tried_at[0]));
	struct receiver r;
	struct fake f = {0};
	struct push *p;
	char *err;

	p = push_to_failing_store(&r);
	fail_through(p, &f, &r, n);
	/* 60 s after the last: not before. */
	pump(p, (tried_at[n - 1] + 60) * SEC - SEC / 1000, &f, 50);
	CHECK_EQ(recv_count(&r), n);
	push_free(p);
	err = capture_end();
	CHECK_EQ(r.n, n);
	/* The same body every time. */
	for (int i = 1; i < r.n; i++)
		CHECK_STR(r.reqs[i].body, r.reqs[0].body);
	log_free(err);
	recv_stop(&r);
}

/* The number N in "(N failure(s) since" of the i-th failure line. */
static long failure_count(const char *log, int i)
{
	const char *l = strstr(log, " failed: ");

	for (; l && i > 0; i--)
		l = strstr(l + 1, " failed: ");
	l = l ? strstr(l, " (") : NULL;
	return l ? strtol(l + 2, NULL, 10) : -1;
}

/* 130 s of failures (8 of them, at tried_at[0..7]): a line at the first,
 * then one a minute, when the next failure comes: at 1 s (1 failure), at
 * 64 s (7) and at 124 s (8); nothing at 130 s. */
static void test_failures_logged_once_a_minute(void)
{
	struct receiver r;
	struct fake f = {0};
	struct push *p;
	char *err;

	p = push_to_failing_store(&r);
	fail_through(p, &f, &r, 8);
	pump(p, 130 * SEC, &f, 50);
	push_free(p);
	err = capture_end();
	CHECK_EQ(r.n, 8);
	CHECK_EQ(count_substr(err, "\n"), 3);
	CHECK_EQ(count_substr(err, " failed: HTTP 503 ("), 3);
	CHECK_EQ(failure_count(err, 0), 1);
	CHECK_EQ(failure_count(err, 1), 7);
	CHECK_EQ(failure_count(err, 2), 8);
	CHECK(strstr(err, "(1 failure since ") != NULL);
	CHECK(strstr(err, "(7 failures since ") != NULL);
	CHECK(strstr(err, "(8 failures since ") != NULL);
	CHECK_EQ(count_substr(err, ", 1 body queued, 0 dropped); retrying\n"),
		 3);
	log_free(err);
	recv_stop(&r);
}

/* ------------------------------------------------------------------------ */
/* A name server that never answers                                         */
/* ------------------------------------------------------------------------ */

static bool write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	size_t n = strlen(text);
	bool ok = fd >= 0 && write(fd, text, n) == (ssize_t)n;

	if (fd >= 0)
		ok = close(fd) == 0 && ok;
	return ok;
}

/*
 * In the child: namespaces of its own, loopback up, a silent name server
 * on 127.0.0.1:53 (its socket returned) named by /etc/resolv.conf, whose
 * lookups each wait 10 s. -1 with the reason printed when the kernel or
 * the system refuses any of it.
 */
static int silent_resolver(const char *conf)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(53)};
	struct ifreq ifr = {0};
	char map[64];
	uid_t uid = getuid();
	gid_t gid = getgid();
	int fd;

	if (unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET) < 0) {
		printf("# unshare(user, mount, net): %s\n", strerror(errno));
		return -1;
	}
	(void)snprintf(map, sizeof(map), "0 %u 1\n", (unsigned)uid);
	if (!write_file("/proc/self/setgroups", "deny") ||
	    !write_file("/proc/self/uid_map", map)) {
		printf("# uid_map: %s\n", strerror(errno));
		return -1;
	}
	(void)snprintf(map, sizeof(map), "0 %u 1\n", (unsigned)gid);
	if (!write_file("/proc/self/gid_map", map)) {
		printf("# gid_map: %s\n", strerror(errno));
		return -1;
	}
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    !write_file(conf, "nameserver 127.0.0.1\n"
			      "options timeout:10 attempts:1\n") ||
	    mount(conf, "/etc/resolv.conf", NULL, MS_BIND, NULL) < 0) {
		printf("# resolv.conf of the test: %s\n", strerror(errno));
		return -1;
	}
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	(void)snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	if (fd < 0 || ioctl(fd, SIOCGIFFLAGS, &ifr) < 0) {
		printf("# loopback: %s\n", strerror(errno));
		return -1;
	}
	ifr.ifr_flags |= IFF_UP;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		printf("# the silent name server: %s\n", strerror(errno));
		return -1;
	}
	return fd;
}

/* Queries the silent name server received since the last call. */
static int queries(int fd)
{
	char buf[512];
	int n = 0;

	while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		n++;
	return n;
}

/* The child's part of test_lookup_does_not_block(): exits 0 when every
 * check held, 2 when the silent name server cannot be set up. */
static void lookup_child(const char *conf)
{
	uint64_t longest = 0, start, took;
	struct fake f = {0};
	struct push *p;
	char *err;
	int dns = silent_resolver(conf);

	if (dns < 0) {
		fflush(stdout);
		exit(2);
	}
	capture_start();
	T0 = mono_now();
	p = push_open("http://store.profshim.test:4040/", NULL);
	push_step(p, T0 + 0, fake_snapshot, &f);
	f.a = 1;
	/* The push at 1 s waits for the name until the connect timeout
	 * (5 s) ends it; every turn of the loop meanwhile, the one that ends
	 * the transfer too, returns at once. The made-up time stays at 1 s:
	 * no retry starts. */
	start = mono_now();
	while (mono_now() - start < 6 * SEC + SEC / 2) {
		uint64_t t = mono_now();

		push_step(p, T0 + SEC, fake_snapshot, &f);
		took = mono_now() - t;
		if (took > longest)
			longest = took;
		usleep(1000);
	}
	CHECK(queries(dns) > 0);
	/* The retry after 1 s; push_free() while its lookup still waits. */
	pump(p, 2 * SEC, &f, 100);
	CHECK(queries(dns) > 0);
	start = mono_now();
	push_free(p);
	took = mono_now() - start;
	err = capture_end();
	printf("# longest turn of the loop %.3f s, push_free() %.3f s\n",
	       (double)longest / 1e9, (double)took / 1e9);
	CHECK(longest < SEC / 2);
	CHECK(took < SEC / 2);
	CHECK_EQ(count_substr(err, " failed: "), 1);
	CHECK(strstr(err, "push to http://store.profshim.test:4040 failed: "
			  "Resolving timed out after 5") != NULL);
	log_free(err);
	close(dns);
	fflush(stdout);
	exit(check_test_failed ? 1 : 0);
}

/*
 * A name lookup that never gets an answer holds up neither the loop nor
 * push_free(): libcurl must leave its resolver thread to end on its own
 * when the connect timeout or push_free() ends the transfer. Run with no
 * other thread in the process (no store), as fork() wants.
 */
static void test_lookup_does_not_block(void)
{
	char conf[] = "/tmp/profshim-test-resolv.XXXXXX";
	int fd = mkstemp(conf), status = -1;
	pid_t pid, done = 0;

	CHECK(fd >= 0);
	if (fd < 0)
		return;
	close(fd);
	fflush(stdout);
	pid = fork();
	if (pid == 0)
		lookup_child(conf);
	CHECK(pid > 0);
	/* 30 s: ample for the child's 7 s, short of the suite's timeout. */
	for (int i = 0; pid > 0 && i < 3000 && done == 0; i++) {
		done = waitpid(pid, &status, WNOHANG);
		if (done == 0)
			usleep(10000);
	}
	if (pid > 0 && done == 0) {
		printf("# the child is still blocked after 30 s\n");
		kill(pid, SIGKILL);
		(void)waitpid(pid, &status, 0);
	}
	if (done == pid && WIFEXITED(status) && WEXITSTATUS(status) == 2)
		printf("# no namespaces for the silent name server: this test "
		       "cannot run here\n");
	CHECK(done == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
	unlink(conf);
}

/* Each test's made-up times start from now. */
#define RUN_AT_NOW(fn)                                                        \
	do {                                                                  \
		T0 = mono_now();                                              \
		RUN(fn);                                                      \
	} while (0)

int main(void)
{
	RUN(test_options_are_checked);
	RUN_AT_NOW(test_deltas_by_content);
	RUN_AT_NOW(test_same_content_summed);
	RUN_AT_NOW(test_reset_noticed);
	RUN_AT_NOW(test_push_reset);
	RUN_AT_NOW(test_baseline_not_pushed);
	RUN_AT_NOW(test_queue_bound);
	RUN_AT_NOW(test_rejected_body_dropped);
	RUN_AT_NOW(test_retry_waits_backoff);
	RUN_AT_NOW(test_echoed_token_not_logged);
	RUN_AT_NOW(test_backoff_doubles_to_a_minute);
	RUN_AT_NOW(test_failures_logged_once_a_minute);
	RUN(test_lookup_does_not_block);
	return check_done();
}
