/*
 * top.c — see top.h.
 *
 * Each refresh asks the running collector for its whole profile (the same
 * `dump` a user can run) and compares it with the previous one: requests
 * per second are the calls an endpoint gained between the two, over the
 * time between them. Everything else on the screen (calls, percentiles,
 * samples, functions) is the collector's total since it started or was
 * reset.
 *
 * Interactive mode owns the terminal: echo and line buffering are off and
 * the alternate screen is on until the command ends, whichever way it ends
 * (q, end of input, SIGINT, SIGTERM, SIGHUP, an error). Ctrl-Z gives the
 * terminal back while stopped.
 */
#include "cmd/top.h"
#include "util/cli.h"
#include "util/clock.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "model/profile.h"

#define TOP_PLAIN_FUNCTIONS 20
#define TOP_MIN_INTERVAL 0.1
#define TOP_MAX_INTERVAL 86400

static const char top_usage_text[] =
	"usage: " CLI_PROG " top [--once] [--interval S] [--socket PATH]\n"
	"\n"
	"A live view of the running collector: requests per second, calls,\n"
	"p50 and p99 latency and samples per endpoint, then the functions with\n"
	"the most samples. Press q to quit.\n"
	"\n"
	"  --once         print one plain screen (rates measured over one\n"
	"                 interval) and exit; for scripts and pipes\n"
	"  --interval S   seconds between refreshes (default 1, at least 0.1)\n"
	"  --socket PATH  the collector's control socket\n"
	"  -h, --help     this text\n";

/* One endpoint row. */
struct top_row {
	const struct profile_endpoint *ep;
	double rate;               /* requests per second, < 0: not known */
};

/* What one screen shows. */
struct top_view {
	struct profile *cur;       /* the latest profile */
	struct top_row *rows;      /* its endpoints, busiest first */
	struct profile_func *funcs;
	long nfuncs;
	uint64_t func_samples;     /* samples of all stacks */
	uint64_t samples;          /* samples of all endpoints */
	double rate;               /* total requests per second, < 0 unknown */
	time_t when;
	char status[512];          /* the last refresh's failure, "" for none */
};

/* Where a screen goes: cols == 0 is plain output without any limit. */
struct top_frame {
	FILE *out;
	int cols, rows;
	int lines;                 /* lines written so far */
	const char *eol;
};

static volatile sig_atomic_t top_stop_signal, top_resized, top_suspended;

static void top_on_signal(int sig)
{
	if (sig == SIGWINCH)
		top_resized = 1;
	else if (sig == SIGTSTP)
		top_suspended = 1;
	else
		top_stop_signal = sig;
}

static const struct cli top_cli = {.name = CLI_PROG,
				   .usage = top_usage_text};

/*
 * The next character of a name as the terminal should show it: control
 * characters (C0, DEL and C1, which some terminals obey) and the backslash
 * become escapes, so a hostile function or endpoint name cannot move the
 * cursor or change colours. The profile's strings are valid UTF-8 (the JSON
 * parser checked); each code point is counted as one column.
 *
 * Puts the text in `one` (NUL-terminated) and its width in *cols; returns
 * how many bytes of p it stands for.
 */
static int name_char(const unsigned char *p, char one[8], int *cols)
{
	int n = 1;

	if (*p == '\n') {
		strcpy(one, "\\n");
	} else if (*p == '\t') {
		strcpy(one, "\\t");
	} else if (*p == '\\') {
		strcpy(one, "\\\\");
	} else if (*p < 0x20 || *p == 0x7f) {
		(void)snprintf(one, 8, "\\x%02x", *p);
	} else if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
		(void)snprintf(one, 8, "\\u%04x", p[1]);
		n = 2;
	} else {
		n = *p < 0x80 ? 1 : *p < 0xe0 ? 2 : *p < 0xf0 ? 3 : 4;
		for (int i = 1; i < n; i++)
			if (!p[i])
				n = i;
		memcpy(one, p, (size_t)n);
		one[n] = '\0';
		*cols = 1;
		return n;
	}
	*cols = (int)strlen(one);
	return n;
}

/* Columns the whole name takes. */
static int name_cols(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	char one[8];
	int cols = 0, w;

	while (*p) {
		p += name_char(p, one, &w);
		cols += w;
	}
	return cols;
}

/*
 * The name in exactly `width` columns: cut with "…" when longer, padded
 * with spaces (pad) when shorter. width < 0: all of it, unpadded.
 */
static void put_name(FILE *out, const char *s, int width, bool pad)
{
	const unsigned char *p = (const unsigned char *)s;
	int total = name_cols(s), left, w;
	bool cut = width >= 0 && total > width;
	char one[8];

	left = width < 0 ? total : cut ? width - 1 : width;
	while (*p) {
		int n = name_char(p, one, &w);

		if (w > left)
			break;
		(void)fputs(one, out);
		left -= w;
		p += n;
	}
	if (cut && width > 0)
		(void)fputs("\xe2\x80\xa6", out);
	while (pad && left-- > 0)
		(void)fputc(' ', out);
}

/* End a line; false once the screen is full. */
static bool frame_newline(struct top_frame *f)
{
	f->lines++;
	if (f->rows && f->lines >= f->rows)
		return false;
	(void)fputs(f->eol, f->out);
	return true;
}

/* One line of plain ASCII (already formatted), cut to the width. */
static bool frame_line(struct top_frame *f, const char *text)
{
	int n = (int)strlen(text);

	if (f->cols && n > f->cols)
		n = f->cols;
	(void)fwrite(text, 1, (size_t)n, f->out);
	return frame_newline(f);
}

static int row_cmp(const void *a, const void *b)
{
	const struct top_row *x = a, *y = b;

	if (x->rate != y->rate)
		return x->rate < y->rate ? 1 : -1;
	if (x->ep->calls != y->ep->calls)
		return x->ep->calls < y->ep->calls ? 1 : -1;
	return strcmp(x->ep->name, y->ep->name);
}

static int ep_name_cmp(const void *a, const void *b)
{
	const struct profile_endpoint *x = a, *y = b;

	return strcmp(x->name, y->name);
}

/*
 * Make the view of `cur` (which it takes), with rates against `prev` taken
 * `elapsed` seconds before (prev NULL: rates not known). prev's endpoints
 * are sorted by name on the way, so prev is only good for freeing after.
 * Negative errno.
 */
static int view_update(struct top_view *v, struct profile *cur,
		       struct profile *prev, double elapsed)
{
	struct top_row *rows = calloc(cur->nendpoints + 1, sizeof(*rows));
	struct profile_func *funcs = NULL;
	uint64_t fsamples = 0;
	long nf;

	if (!rows)
		return -ENOMEM;
	nf = profile_functions(cur, cur->stacks, cur->nstacks, &funcs,
			       &fsamples);
	if (nf < 0) {
		free(rows);
		return (int)nf;
	}
	/* The previous endpoints sorted by name, to find each one's calls. */
	if (prev && prev->nendpoints)
		qsort(prev->endpoints, prev->nendpoints,
		      sizeof(*prev->endpoints), ep_name_cmp);
	v->rate = prev ? 0.0 : -1.0;
	v->samples = 0;
	for (size_t i = 0; i < cur->nendpoints; i++) {
		const struct profile_endpoint *e = &cur->endpoints[i], *old;
		uint64_t before = 0;

		rows[i].ep = e;
		rows[i].rate = -1.0;
		v->samples += e->samples;
		if (!prev)
			continue;
		old = prev->nendpoints ? bsearch(e, prev->endpoints,
						 prev->nendpoints,
						 sizeof(*prev->endpoints),
						 ep_name_cmp)
				       : NULL;
		/* Fewer calls than before: the collector was reset since. */
		if (old && old->calls <= e->calls)
			before = old->calls;
		rows[i].rate = elapsed > 0 ? (double)(e->calls - before) /
						     elapsed
					   : 0.0;
		v->rate += rows[i].rate;
	}
	if (cur->nendpoints)
		qsort(rows, cur->nendpoints, sizeof(*rows), row_cmp);
	free(v->rows);
	free(v->funcs);
	profile_free(v->cur);
	v->cur = cur;
	v->rows = rows;
	v->funcs = funcs;
	v->nfuncs = nf;
	v->func_samples = fsamples;
	v->when = time(NULL);
	v->status[0] = '\0';
	return 0;
}

static void view_free(struct top_view *v)
{
	free(v->rows);
	free(v->funcs);
	profile_free(v->cur);
}

static void fmt_rate(char *buf, size_t len, double rate)
{
	if (rate < 0)
		(void)snprintf(buf, len, "-");
	else
		(void)snprintf(buf, len, "%.1f", rate);
}

static void fmt_ms(char *buf, size_t len, const struct profile_endpoint *e,
		   double sec)
{
	if (e->calls)
		(void)snprintf(buf, len, "%.2f", sec * 1e3);
	else
		(void)snprintf(buf, len, "-");
}

/* want, but at least `least` and (most >= 0) at most `most` columns. */
static int clamp_width(int want, int least, int most)
{
	if (most >= 0 && want > most)
		want = most;
	return want < least ? least : want;
}

/* Say a table is empty: one line. False once the screen is full. */
static bool frame_empty(struct top_frame *f, const char *text)
{
	(void)fputs(text, f->out);
	return frame_newline(f);
}

/* The first line (time, rates, samples, what was lost) and the status
 * line. False once the screen is full. */
static bool view_draw_header(const struct top_view *v, struct top_frame *f)
{
	const struct profile *p = v->cur;
	char line[512], rate[32], when[32];
	struct tm tm;
	int n;

	(void)localtime_r(&v->when, &tm);
	(void)strftime(when, sizeof(when), "%H:%M:%S", &tm);
	fmt_rate(rate, sizeof(rate), v->rate);
	/* Lost events and requests are rare: named only when there are. */
	n = snprintf(line, sizeof(line), "profshim top  %s  %s req/s  %" PRIu64
		     " samples  dropped: %" PRIu64 " samples", when, rate,
		     v->samples, p->dropped_samples);
	if (p->dropped_events || p->dropped_requests)
		(void)snprintf(line + n, sizeof(line) - (size_t)n,
			       ", %" PRIu64 " events, %" PRIu64 " requests",
			       p->dropped_events, p->dropped_requests);
	if (!frame_line(f, line))
		return false;
	/* Why a process has no stacks, where the user looks first. */
	for (size_t i = 0; i < p->nunsampled; i++) {
		(void)snprintf(line, sizeof(line),
			       "! pid %" PRIu64 " (%s) takes no stack samples: %s",
			       p->unsampled[i].pid, p->unsampled[i].exe,
			       p->unsampled[i].why);
		(void)fputs("! ", f->out);
		put_name(f->out, line + 2, f->cols ? f->cols - 2 : -1, false);
		if (!frame_newline(f))
			return false;
	}
	if (v->status[0]) {
		(void)fputs("! ", f->out);
		put_name(f->out, v->status, f->cols ? f->cols - 2 : -1, false);
	}
	return frame_newline(f);
}

/*
 * How many endpoint and function rows fit: on a terminal the two tables
 * share the rows, endpoints first but leaving functions at least half;
 * plain output shows every endpoint and TOP_PLAIN_FUNCTIONS functions.
 */
static void view_fit(const struct top_view *v, const struct top_frame *f,
		     size_t *ret_neps, size_t *ret_nfn)
{
	size_t neps = v->cur->nendpoints, nfn = (size_t)v->nfuncs;

	if (f->rows) {
		/* Header, status, two table headers and a blank line: 5 rows;
		 * an empty table takes one row to say so. */
		size_t avail = f->rows > 7 ? (size_t)f->rows - 5 : 2;
		size_t fwant = nfn ? nfn : 1, half = avail / 2;
		size_t ekeep = avail - (fwant < half ? fwant : half);

		if (neps > ekeep)
			neps = ekeep;
		if (nfn > avail - (neps ? neps : 1))
			nfn = avail - (neps ? neps : 1);
	} else if (nfn > TOP_PLAIN_FUNCTIONS) {
		nfn = TOP_PLAIN_FUNCTIONS;
	}
	*ret_neps = neps;
	*ret_nfn = nfn;
}

/* The endpoint table, its first neps rows: the name, then five numbers in
 * 10 columns each. False once the screen is full. */
static bool view_draw_endpoints(const struct top_view *v,
				struct top_frame *f, size_t neps)
{
	const struct profile *p = v->cur;
	char rate[32], a[32], b[32];
	int namew = 8;

	for (size_t i = 0; i < p->nendpoints; i++)
		namew = clamp_width(name_cols(v->rows[i].ep->name), namew, -1);
	if (f->cols)
		namew = clamp_width(namew, 8, f->cols - 51);
	(void)fprintf(f->out, "%-*s %9s %9s %9s %9s %9s", namew, "endpoint",
		      "req/s", "calls", "p50 ms", "p99 ms", "samples");
	if (!frame_newline(f))
		return false;
	for (size_t i = 0; i < neps; i++) {
		const struct top_row *r = &v->rows[i];

		put_name(f->out, r->ep->name, namew, true);
		fmt_rate(rate, sizeof(rate), r->rate);
		fmt_ms(a, sizeof(a), r->ep, r->ep->p50);
		fmt_ms(b, sizeof(b), r->ep, r->ep->p99);
		(void)fprintf(f->out, " %9s %9" PRIu64 " %9s %9s %9" PRIu64,
			      rate, r->ep->calls, a, b, r->ep->samples);
		if (!frame_newline(f))
			return false;
	}
	return p->nendpoints || frame_empty(f, "(no requests yet)");
}

/* The function table, its first nfn rows: name, module, then two
 * percentages in 9 columns. False once the screen is full. */
static bool view_draw_functions(const struct top_view *v,
				struct top_frame *f, size_t nfn)
{
	double all = v->func_samples ? (double)v->func_samples : 1.0;
	int fnw = 8, modw = 6;

	for (size_t i = 0; i < (size_t)v->nfuncs; i++) {
		fnw = clamp_width(name_cols(v->funcs[i].function), fnw, -1);
		modw = clamp_width(name_cols(v->funcs[i].module), modw, -1);
	}
	if (f->cols) {
		modw = clamp_width(modw, 6, f->cols / 4);
		fnw = clamp_width(fnw, 8, f->cols - modw - 20);
	}
	(void)fprintf(f->out, "%-*s %-*s %8s %8s", fnw, "function", modw,
		      "module", "self %", "total %");
	if (!frame_newline(f))
		return false;
	for (size_t i = 0; i < nfn; i++) {
		const struct profile_func *fn = &v->funcs[i];

		put_name(f->out, fn->function, fnw, true);
		(void)fputc(' ', f->out);
		put_name(f->out, fn->module, modw, true);
		(void)fprintf(f->out, " %8.1f %8.1f", (double)fn->self * 100 / all,
			      (double)fn->total * 100 / all);
		if (!frame_newline(f))
			return false;
	}
	return v->nfuncs || frame_empty(f, "(no samples yet)");
}

/*
 * Draw the view. Interactive frames (f->cols > 0) fit the window: names are
 * cut to the columns the numbers leave, and the endpoints and functions
 * share the rows (view_fit()). (What is still too wide is clipped by the
 * terminal: autowrap is off.)
 */
static void view_draw(const struct top_view *v, struct top_frame *f)
{
	size_t neps, nfn;

	view_fit(v, f, &neps, &nfn);
	/* A blank line between the tables. */
	if (view_draw_header(v, f) && view_draw_endpoints(v, f, neps) &&
	    frame_newline(f))
		(void)view_draw_functions(v, f, nfn);
}

/* Fetch a profile; 0, or 1 with the reason in err. */
static int top_fetch(const char *socket, struct profile **ret, double *at,
		     char *err, size_t errlen)
{
	int r = profile_fetch(socket, ret, err, errlen);

	*at = clock_now_s();
	return r;
}

static void sleep_seconds(double s)
{
	struct timespec ts = {.tv_sec = (time_t)s,
			      .tv_nsec = (long)((s - (double)(time_t)s) * 1e9)};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* --once: two fetches one interval apart, one plain screen. */
static int top_once(const char *socket, double interval)
{
	struct top_view v = {0};
	struct profile *first = NULL, *second = NULL;
	struct top_frame f = {.out = stdout, .eol = "\n"};
	double t0, t1;
	char err[512];
	int r;

	if (top_fetch(socket, &first, &t0, err, sizeof(err)) != 0)
		goto fail;
	sleep_seconds(interval);
	if (top_fetch(socket, &second, &t1, err, sizeof(err)) != 0)
		goto fail;
	r = view_update(&v, second, first, t1 - t0);
	profile_free(first);
	first = NULL;
	if (r < 0) {
		profile_free(second);
		(void)snprintf(err, sizeof(err), "%s", strerror(-r));
		goto fail;
	}
	view_draw(&v, &f);
	view_free(&v);
	if (fflush(stdout) != 0) {
		fprintf(stderr, CLI_PROG ": stdout: %s\n", strerror(errno));
		return 1;
	}
	return 0;
fail:
	profile_free(first);
	fprintf(stderr, CLI_PROG ": %s\n", err);
	return 1;
}

/* Write all of buf to the terminal. Negative errno. */
static int term_write(const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(STDOUT_FILENO, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Echo and line buffering off (signals from keys stay), alternate screen
 * on, cursor hidden, autowrap off (a long line is clipped, not wrapped). */
static int term_enter(const struct termios *saved)
{
	struct termios raw = *saved;
	static const char on[] = "\033[?1049h\033[?25l\033[?7l";

	raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
	raw.c_cc[VMIN] = 1;
	raw.c_cc[VTIME] = 0;
	if (tcsetattr(STDIN_FILENO, TCSANOW, &raw) < 0)
		return -errno;
	return term_write(on, sizeof(on) - 1);
}

static void term_leave(const struct termios *saved)
{
	static const char off[] = "\033[?7h\033[?25h\033[?1049l";

	(void)term_write(off, sizeof(off) - 1);
	(void)tcsetattr(STDIN_FILENO, TCSADRAIN, saved);
}

/* Draw the view at the window's current size. Negative errno. */
static int term_draw(const struct top_view *v)
{
	struct winsize ws = {0};
	struct top_frame f = {.eol = "\033[K\r\n"};
	char *buf = NULL;
	size_t len = 0;
	int r;

	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) < 0 || !ws.ws_col ||
	    !ws.ws_row) {
		ws.ws_col = 80;
		ws.ws_row = 24;
	}
	f.cols = ws.ws_col;
	f.rows = ws.ws_row;
	f.out = open_memstream(&buf, &len);
	if (!f.out)
		return -ENOMEM;
	(void)fputs("\033[H", f.out);
	if (f.cols < 40 || f.rows < 8)
		(void)fputs("window too small", f.out);
	else
		view_draw(v, &f);
	(void)fputs("\033[K\033[J", f.out);
	if (fclose(f.out) != 0) {
		free(buf);
		return -ENOMEM;
	}
	r = term_write(buf, len);
	free(buf);
	return r;
}

static void signals_set(void (*handler)(int))
{
	static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGWINCH, SIGTSTP};
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = handler;
	/* Restarted: a resize during a fetch must not fail the fetch. poll()
	 * still returns EINTR, which is what wakes the loop. */
	sa.sa_flags = SA_RESTART;
	(void)sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		(void)sigaction(sigs[i], &sa, NULL);
}

/* Ctrl-Z: give the terminal back, stop, take it again on SIGCONT. */
static int term_suspend(const struct termios *saved)
{
	term_leave(saved);
	(void)signal(SIGTSTP, SIG_DFL);
	(void)raise(SIGTSTP);
	/* Running again. */
	signals_set(top_on_signal);
	return term_enter(saved);
}

/*
 * Refresh every `interval` seconds until q, end of input or a signal
 * (top_stop_signal). Returns 0, or a negative errno when the terminal
 * failed.
 */
static int top_loop(const char *socket, double interval, struct top_view *v,
		    double *t_prev, const struct termios *saved)
{
	double next = *t_prev + interval;
	char err[512];
	int r = term_draw(v);

	while (r == 0 && !top_stop_signal) {
		struct pollfd pfd = {.fd = STDIN_FILENO, .events = POLLIN};
		double wait = next - clock_now_s();
		char keys[64];
		ssize_t n;

		if (top_suspended) {
			top_suspended = 0;
			r = term_suspend(saved);
			if (r == 0)
				r = term_draw(v);
			continue;
		}
		if (top_resized) {
			top_resized = 0;
			r = term_draw(v);
			continue;
		}
		if (wait <= 0) {
			struct profile *cur;
			double t;

			r = top_fetch(socket, &cur, &t, err, sizeof(err));
			if (r == 0) {
				r = view_update(v, cur, v->cur, t - *t_prev);
				if (r < 0)
					profile_free(cur);
				*t_prev = t;
			} else {
				/* Keep the last screen and say why it is
				 * old; the collector may come back. */
				(void)snprintf(v->status, sizeof(v->status),
					       "%s", err);
				r = 0;
			}
			next += interval;
			if (next <= clock_now_s())
				next = clock_now_s() + interval;
			if (r == 0)
				r = term_draw(v);
			continue;
		}
		if (poll(&pfd, 1, (int)(wait * 1000) + 1) < 0) {
			if (errno != EINTR)
				r = -errno;
			continue;
		}
		if (!pfd.revents)
			continue;
		n = read(STDIN_FILENO, keys, sizeof(keys));
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			break;  /* end of input: nothing can say q any more */
		if (memchr(keys, 'q', (size_t)n) ||
		    memchr(keys, 'Q', (size_t)n))
			break;
		if (memchr(keys, ' ', (size_t)n))
			next = clock_now_s();  /* space: refresh now */
	}
	return r;
}

static int top_interactive(const char *socket, double interval)
{
	struct top_view v = {0};
	struct profile *first;
	struct termios saved;
	double t0;
	char err[512];
	int r, status = 0;

	if (top_fetch(socket, &first, &t0, err, sizeof(err)) != 0) {
		fprintf(stderr, CLI_PROG ": %s\n", err);
		return 1;
	}
	r = view_update(&v, first, NULL, 0);
	if (r < 0) {
		profile_free(first);
		fprintf(stderr, CLI_PROG ": %s\n", strerror(-r));
		return 1;
	}
	if (tcgetattr(STDIN_FILENO, &saved) < 0) {
		fprintf(stderr, CLI_PROG ": terminal: %s\n", strerror(errno));
		view_free(&v);
		return 1;
	}
	top_stop_signal = top_resized = top_suspended = 0;
	signals_set(top_on_signal);
	r = term_enter(&saved);
	if (r == 0)
		r = top_loop(socket, interval, &v, &t0, &saved);
	term_leave(&saved);
	signals_set(SIG_DFL);
	view_free(&v);
	if (r < 0) {
		fprintf(stderr, CLI_PROG ": top: %s\n", strerror(-r));
		status = 1;
	}
	/* Ended by a signal: the terminal is back, now end as it asks. */
	if (top_stop_signal)
		(void)raise(top_stop_signal);
	return status;
}

int top_main(int argc, char **argv)
{
	static const struct option opts[] = {
		CLI_FLAG("once", '1'), CLI_ARG("interval", 'i'),
		CLI_ARG("socket", 's'), CLI_HELP, {0},
	};
	const char *socket = NULL;
	double interval = 1.0;
	bool once = false;
	int c;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		if (c == '1') {
			once = true;
		} else if (c == 's') {
			socket = optarg;
		} else if (c != 'i') {
			return cli_help_or_bad(&top_cli, c, CLI_BAD_OPTION,
					       argv[optind - 1], "top");
		} else if (cli_parse_number(optarg, TOP_MIN_INTERVAL, false,
					    TOP_MAX_INTERVAL, &interval) < 0) {
			return cli_usage_error(&top_cli, "--interval needs a "
					       "number of seconds from 0.1 to "
					       "86400, not '%s'", optarg);
		}
	}
	if (optind < argc)
		return cli_usage_error(&top_cli, "top takes no argument '%s'",
				       argv[optind]);
	if (once)
		return top_once(socket, interval);
	if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO))
		return cli_usage_error(&top_cli, "%s", "top needs a terminal "
				       "for its live view; use --once for one "
				       "plain screen");
	return top_interactive(socket, interval);
}
