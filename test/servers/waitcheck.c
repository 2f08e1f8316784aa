/*
 * waitcheck — does every blocking call of a program that never retries one
 * end as it would without the shim? (test_transparent.py runs it with and
 * without the shim and compares what it prints.)
 *
 *   waitcheck battery [MS]   run the battery on this thread, print it
 *   waitcheck serve PORT     HTTP/1.1 on 127.0.0.1:PORT: GET /battery
 *                            (any query; ms=N sets MS) runs the battery
 *                            inside the request and answers its report;
 *                            GET /quit answers and exits 0
 *
 * The profiling signal interrupts the calls a sampled thread blocks in.
 * Profiling is transparent when no call here notices it; the program's own
 * signal must still interrupt them as before. The battery (MS, default 30):
 *
 *   a. data: one 8 MiB write() to a pipe, one 8 MiB fwrite() on an
 *      unbuffered stdio stream over a pipe, one 8 MiB send() over an
 *      AF_UNIX stream socketpair, each drained by a slow reader thread
 *      (64 KiB, then 1 ms of sleep): each must move all 8388608 bytes.
 *   b. 20 waits of MS each in poll, ppoll, epoll_wait, epoll_pwait, select,
 *      pselect, nanosleep, clock_nanosleep (relative, and TIMER_ABSTIME on
 *      CLOCK_MONOTONIC), usleep, recv with SO_RCVTIMEO, accept with
 *      SO_RCVTIMEO, connect with SO_SNDTIMEO (to a loopback listener whose
 *      backlog is full, which drops the SYN) and sem_timedwait, with nothing
 *      to wake them: each must return its time-out result, never EINTR,
 *      after at least MS (CLOCK_MONOTONIC) and at most MS + 5 ms, not
 *      counting time the thread waited for a CPU (socket time-outs:
 *      MS + 25 ms); 2 of a call's 20 waits may end later (see below).
 *   c. the program's own signal: a SIGALRM handler without SA_RESTART and
 *      a one-shot ITIMER_REAL 10 ms ahead, 10 rounds each of poll (1 s
 *      time-out), a blocking write to a full pipe and nanosleep (1 s): each
 *      must be interrupted (EINTR; nanosleep with time left) after the
 *      handler ran, as without the shim. The timer repeats every 250 ms
 *      after the first 10 ms, so that a round whose interruption was lost
 *      still ends (and counts as lost).
 *   d. what a resumed call leaves behind (the signals in d go to this
 *      thread alone: timer_create with SIGEV_THREAD_ID, or ITIMER_REAL
 *      while every other thread blocks all signals):
 *      - nested handler: a SIGUSR1 handler without SA_RESTART that itself
 *        calls poll(NULL, 0, 5), a CLOCK_MONOTONIC timer sending SIGUSR1
 *        every 7 ms, and 20 poll(NULL, 0, 30) meanwhile (what they return
 *        varies, and is not printed). Once the timer is deleted the
 *        thread's mask, as pthread_sigmask reads it and as SigBlk of
 *        /proc/thread-self/status says, must be what it was before, and a
 *        raise(SIGUSR1) must run the handler. (A hook that lost its hold
 *        to the handler's own hooked call once left every asynchronous
 *        signal blocked for good.)
 *      - poll with timeout 0: 2000 polls of 1000 pipe descriptors nobody
 *        writes (POLLIN; RLIMIT_NOFILE raised when it is lower) must each
 *        return 0, or EINTR (the kernel may return that too), within
 *        50 ms, not counting time the thread waited for a CPU. A watchdog
 *        thread ends a poll still waiting after 500 ms by writing to one of
 *        the pipes: it counts as hung, and the check stops there. (A
 *        resumed poll once took timeout 0 for none, and waited forever.)
 *      - masked waits: ppoll, pselect and epoll_pwait with a mask that
 *        blocks every signal but SIGUSR1 (profshim's too), 1 s time-out,
 *        10 rounds each of a SIGUSR1 10 ms ahead (then every 250 ms, as in
 *        c): each must fail with EINTR after the handler ran. (All 10
 *        were once lost.)
 *      - siglongjmp: a SIGALRM handler that siglongjmps out of a blocking
 *        read() of an empty pipe (sigsetjmp saving the mask; a one-shot
 *        ITIMER_REAL 5 ms ahead in even rounds, when profshim has resumed
 *        the read for its own signal, 250 us in odd ones, mostly while
 *        the read itself blocks; the watchdog ends a read whose jump never
 *        comes after 500 ms), 10 rounds: every one must jump. After each
 *        jump, plain work with nothing profshim resumes (syscall() for the
 *        reads and writes, SigBlk read with syscall(SYS_pread64)) up to
 *        the one write(): the thread's mask must be the one sigsetjmp
 *        saved; 20 syscall(SYS_read) of a pipe with a byte written just
 *        before each, then 10 of one a helper thread writes 1 ms after the
 *        read began (a read the profiling signal interrupts and the kernel
 *        restarts) must each return 1 with the mask unchanged; then
 *        write() of 1 byte to an empty pipe must return 1 and leave
 *        exactly 1 byte in it (FIONREAD), the mask still unchanged. Lines:
 *        the jumps, the 200 reads, the 100 that block, the 10 writes. (A
 *        mark the jump left behind once had profshim hold the signals at
 *        the end of a plain system call, turn a plain read's restart into
 *        EINTR, and make the next hooked write twice.)
 *
 * One line per check: "NAME 20/20 ok" (data: "NAME 8388608/8388608 ok")
 * when every attempt did as it should, the same text with or without the
 * shim; otherwise the counts per outcome and how long the calls took. No
 * timing, address, port or pid is printed in the ok case. Exit status 0
 * when every check is ok, 1 when one is not, 2 when something the battery
 * needs failed (with a message on stderr).
 *
 * Socket time-outs (SO_RCVTIMEO, SO_SNDTIMEO) count in kernel ticks: the
 * kernel rounds the time up to whole ticks and adds one (its timer wheel
 * never fires early), and a virtual machine's tick may come a tick or two
 * later still. Without the shim, on a 2-core VM at HZ=250, 30 ms ended
 * after 36 ms typically and 44 ms at worst in 200 (at HZ=100 it would be
 * 40 ms and more). For recv, accept and connect a wait is late only above
 * MS + 25 ms; they are never early, as the others.
 *
 * The machine itself makes a few waits late, and the shim cannot help it.
 * Time the thread spent ready but waiting for a CPU (the second field of
 * /proc/thread-self/schedstat) is not counted: a plain run while other
 * work kept both CPUs of a 2-core VM busy had 5 of its 20 polls end up to
 * 19 ms late. And a virtual machine's timers are late now and then by
 * themselves: without the shim, on that VM, 8 of 1000 30 ms select()s
 * ended more than 5 ms late (one 37 ms), and a battery had about one late
 * wait in 280 with no CPU wait at all. So a check allows 2 late waits of
 * its 20: a call resumed with its whole time again, or losing ticks at
 * each resumption, makes most of them late.
 *
 * Nothing here retries a call that is checked; the helpers (the slow
 * readers, the watchdog and the delayed writer of d, the server's accept
 * and its reads of the request) do, as any program's would.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "io.h"

#define DATA_BYTES (8u << 20)
#define WAITS 20
#define OWN_ROUNDS 10
#define LATE_MS 5.0       /* a wait may end this much after its time */
#define TICK_LATE_MS 25.0 /* ... a socket time-out this much (see above) */
#define LATE_ALLOWED 2    /* waits of a check that may end later (above) */
#define PORT_LO 42000     /* the battery's loopback listeners: 42000-42999 */
#define PORT_N 1000

/* ---- the report ------------------------------------------------------- */

static char report[16384];
static size_t report_len;
static int failed;

static void say(const char *fmt, ...)
{
	va_list ap;
	int n;

	if (report_len >= sizeof(report) - 1)
		return;
	va_start(ap, fmt);
	n = vsnprintf(report + report_len, sizeof(report) - report_len, fmt,
		      ap);
	va_end(ap);
	if (n > 0)
		report_len += (size_t)n;
	if (report_len >= sizeof(report))
		report_len = sizeof(report) - 1; /* cut short */
}

static const char *errname(int e)
{
	const char *s = strerrorname_np(e);

	return s ? s : "?";
}

/* Set up something the battery needs, or give up: exit 2. */
static void need(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "waitcheck: %s: %s\n", what, strerror(errno));
		exit(2);
	}
}

static double now_ms(void)
{
	struct timespec t;

	(void)clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static struct timespec ms_ts(int ms)
{
	struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000L};

	return t;
}

static struct timeval ms_tv(int ms)
{
	struct timeval t = {ms / 1000, (long)(ms % 1000) * 1000L};

	return t;
}

/* A clock's time ms from now. */
static struct timespec after_ms(clockid_t clock, int ms)
{
	struct timespec t;

	(void)clock_gettime(clock, &t);
	t.tv_sec += ms / 1000;
	t.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (t.tv_nsec >= 1000000000L) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000L;
	}
	return t;
}

/*
 * The time this thread has waited for a CPU, in ms (the second field of
 * /proc/thread-self/schedstat): a wait that ends while other programs keep
 * both CPUs busy returns late through no fault of the shim, and that time
 * is not counted against it. 0 where the kernel does not say.
 */
static int schedstat_fd = -1;

static double cpu_wait_ms(void)
{
	char buf[128];
	unsigned long long run, delay;
	ssize_t n;

	if (schedstat_fd < 0)
		return 0;
	n = pread(schedstat_fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	if (sscanf(buf, "%llu %llu", &run, &delay) != 2)
		return 0;
	return (double)delay / 1e6;
}

/* ---- a. data ---------------------------------------------------------- */

static char *big;

struct drain {
	int fd;
	size_t got;
	pthread_t thread;
};

/* The slow reader: 64 KiB, then 1 ms of sleep, until EOF. Helper, not
 * checked: it goes on after EINTR and short reads. */
static void *drain_slowly(void *arg)
{
	struct drain *d = arg;
	static char buf[64 * 1024];
	struct timespec ms1 = {0, 1000000L};

	for (;;) {
		ssize_t r = read(d->fd, buf, sizeof(buf));

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		d->got += (size_t)r;
		(void)nanosleep(&ms1, NULL);
	}
	return NULL;
}

static void drain_start(struct drain *d, int fd)
{
	sigset_t alrm, old;

	d->fd = fd;
	d->got = 0;
	/* SIGALRM is for the checking thread (part c) alone. */
	sigemptyset(&alrm);
	sigaddset(&alrm, SIGALRM);
	(void)pthread_sigmask(SIG_BLOCK, &alrm, &old);
	errno = pthread_create(&d->thread, NULL, drain_slowly, d);
	need(errno == 0, "pthread_create");
	(void)pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* One line for a data check: what the call returned (r, errno e) and
 * what the reader got. */
static void data_line(const char *name, long long r, int e, size_t got)
{
	if (r == DATA_BYTES && got == DATA_BYTES) {
		say("%s %u/%u ok\n", name, DATA_BYTES, DATA_BYTES);
		return;
	}
	failed = 1;
	if (r < 0)
		say("%s -1/%u %s (reader got %zu)\n", name, DATA_BYTES,
		    errname(e), got);
	else
		say("%s %lld/%u short (reader got %zu)\n", name, r,
		    DATA_BYTES, got);
}

static void check_write_pipe(void)
{
	int p[2], e;
	struct drain d;
	ssize_t r;

	need(pipe2(p, O_CLOEXEC) == 0, "pipe");
	drain_start(&d, p[0]);
	r = write(p[1], big, DATA_BYTES);
	e = errno;
	(void)close(p[1]);
	(void)pthread_join(d.thread, NULL);
	(void)close(p[0]);
	data_line("write pipe", r, e, d.got);
}

static void check_fwrite_pipe(void)
{
	int p[2], e;
	struct drain d;
	FILE *f;
	size_t n;

	need(pipe2(p, O_CLOEXEC) == 0, "pipe");
	f = fdopen(p[1], "w");
	need(f != NULL, "fdopen");
	need(setvbuf(f, NULL, _IONBF, 0) == 0, "setvbuf");
	drain_start(&d, p[0]);
	errno = 0;
	n = fwrite(big, 1, DATA_BYTES, f);
	e = errno;
	(void)fclose(f);
	(void)pthread_join(d.thread, NULL);
	(void)close(p[0]);
	data_line("fwrite pipe", (long long)n, e, d.got);
}

static void check_send_socketpair(void)
{
	int sv[2], e;
	struct drain d;
	ssize_t r;

	need(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0,
	     "socketpair");
	drain_start(&d, sv[1]);
	r = send(sv[0], big, DATA_BYTES, 0);
	e = errno;
	(void)close(sv[0]);
	(void)pthread_join(d.thread, NULL);
	(void)close(sv[1]);
	data_line("send socketpair", r, e, d.got);
}

/* ---- b. timed waits --------------------------------------------------- */

/* What the waits wait on; nothing ever wakes them. */
static int ms_wait;     /* MS */
static int idle_pipe[2]; /* nobody writes */
static int epfd;         /* idle_pipe[0] for EPOLLIN */
static int tcp_in;       /* one end of a loopback TCP connection */
static int tcp_out;      /* ... the other, which never sends */
static int acceptor;     /* a listener nobody connects to */
static int full;         /* a listener whose backlog is full */
static struct sockaddr_in full_addr;
static int fillers[8], nfillers;
static int client;       /* the connect check's socket of the moment */
static sem_t sem;        /* never posted */
static char other_what[96]; /* the first unexpected result of a check */

/*
 * One wait: 0 when it returned its time-out result, EINTR when it failed
 * with EINTR, -1 otherwise (other_what says how, for the first).
 */
static int unexpected(const char *fmt, long long r, int e)
{
	if (!other_what[0])
		(void)snprintf(other_what, sizeof(other_what), fmt, r,
			       errname(e));
	return -1;
}

/* A call that returns 0 on time-out and -1 with errno otherwise. */
static int zero_or_errno(int r)
{
	int e = errno;

	if (r == 0)
		return 0;
	if (r < 0 && e == EINTR)
		return EINTR;
	return unexpected("returned %lld errno %s", r, e);
}

/* A call that returns -1 with errno `want` on time-out. */
static int fail_with(long long r, int want)
{
	int e = errno;

	if (r < 0 && e == want)
		return 0;
	if (r < 0 && e == EINTR)
		return EINTR;
	return unexpected("returned %lld errno %s", r, e);
}

static int w_poll(void)
{
	struct pollfd p = {idle_pipe[0], POLLIN, 0};

	return zero_or_errno(poll(&p, 1, ms_wait));
}

static int w_ppoll(void)
{
	struct pollfd p = {idle_pipe[0], POLLIN, 0};
	struct timespec t = ms_ts(ms_wait);

	return zero_or_errno(ppoll(&p, 1, &t, NULL));
}

static int w_epoll_wait(void)
{
	struct epoll_event ev;

	return zero_or_errno(epoll_wait(epfd, &ev, 1, ms_wait));
}

static int w_epoll_pwait(void)
{
	struct epoll_event ev;

	return zero_or_errno(epoll_pwait(epfd, &ev, 1, ms_wait, NULL));
}

static int w_select(void)
{
	fd_set r;
	struct timeval t = ms_tv(ms_wait);

	FD_ZERO(&r);
	FD_SET(idle_pipe[0], &r);
	return zero_or_errno(select(idle_pipe[0] + 1, &r, NULL, NULL, &t));
}

static int w_pselect(void)
{
	fd_set r;
	struct timespec t = ms_ts(ms_wait);

	FD_ZERO(&r);
	FD_SET(idle_pipe[0], &r);
	return zero_or_errno(pselect(idle_pipe[0] + 1, &r, NULL, NULL, &t,
				     NULL));
}

static int w_nanosleep(void)
{
	struct timespec t = ms_ts(ms_wait), rem;

	return zero_or_errno(nanosleep(&t, &rem));
}

/* clock_nanosleep returns the error number itself. */
static int clock_result(int r)
{
	if (r == 0)
		return 0;
	if (r == EINTR)
		return EINTR;
	return unexpected("returned %lld (%s)", r, r);
}

static int w_clock_nanosleep(void)
{
	struct timespec t = ms_ts(ms_wait), rem;

	return clock_result(clock_nanosleep(CLOCK_MONOTONIC, 0, &t, &rem));
}

static int w_clock_nanosleep_abs(void)
{
	struct timespec t = after_ms(CLOCK_MONOTONIC, ms_wait);

	return clock_result(clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME,
					    &t, NULL));
}

static int w_usleep(void)
{
	return zero_or_errno(usleep((useconds_t)ms_wait * 1000));
}

static int w_recv(void)
{
	char c;

	return fail_with(recv(tcp_in, &c, 1, 0), EAGAIN);
}

static int w_accept(void)
{
	int fd = accept(acceptor, NULL, NULL);

	if (fd >= 0)
		(void)close(fd);
	return fail_with(fd, EAGAIN);
}

static int prep_connect(void)
{
	struct timeval t = ms_tv(ms_wait);

	client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	need(client >= 0, "socket");
	return setsockopt(client, SOL_SOCKET, SO_SNDTIMEO, &t, sizeof(t));
}

/* A connect that timed out (SO_SNDTIMEO) fails with EINPROGRESS. */
static int w_connect(void)
{
	return fail_with(connect(client, (struct sockaddr *)&full_addr,
				 sizeof(full_addr)), EINPROGRESS);
}

static void after_connect(void)
{
	(void)close(client);
	client = -1;
}

static int w_sem_timedwait(void)
{
	struct timespec t = after_ms(CLOCK_REALTIME, ms_wait);

	return fail_with(sem_timedwait(&sem, &t), ETIMEDOUT);
}

struct waiter {
	const char *name;
	int (*wait)(void);
	int (*prep)(void);   /* NULL, or before each wait, not timed */
	void (*after)(void); /* NULL, or after each wait, not timed */
	int ticks;           /* its time-out counts in kernel ticks */
};

static const struct waiter waiters[] = {
	{"poll", w_poll, NULL, NULL, 0},
	{"ppoll", w_ppoll, NULL, NULL, 0},
	{"epoll_wait", w_epoll_wait, NULL, NULL, 0},
	{"epoll_pwait", w_epoll_pwait, NULL, NULL, 0},
	{"select", w_select, NULL, NULL, 0},
	{"pselect", w_pselect, NULL, NULL, 0},
	{"nanosleep", w_nanosleep, NULL, NULL, 0},
	{"clock_nanosleep", w_clock_nanosleep, NULL, NULL, 0},
	{"clock_nanosleep abstime", w_clock_nanosleep_abs, NULL, NULL, 0},
	{"usleep", w_usleep, NULL, NULL, 0},
	{"recv SO_RCVTIMEO", w_recv, NULL, NULL, 1},
	{"accept SO_RCVTIMEO", w_accept, NULL, NULL, 1},
	{"connect SO_SNDTIMEO", w_connect, prep_connect, after_connect, 1},
	{"sem_timedwait", w_sem_timedwait, NULL, NULL, 0},
};

static void run_waiter(const struct waiter *w)
{
	int ok = 0, early = 0, eintr = 0, late = 0, other = 0;
	double lo = 1e9, hi = 0, cpu_hi = 0;
	double late_ms = ms_wait + (w->ticks ? TICK_LATE_MS : LATE_MS);

	other_what[0] = 0;
	for (int i = 0; i < WAITS; i++) {
		double t0, took, c0, cpu;
		int r;

		if (w->prep)
			need(w->prep() == 0, w->name);
		c0 = cpu_wait_ms();
		t0 = now_ms();
		r = w->wait();
		took = now_ms() - t0;
		cpu = cpu_wait_ms() - c0;
		if (w->after)
			w->after();
		lo = took < lo ? took : lo;
		hi = took > hi ? took : hi;
		cpu_hi = cpu > cpu_hi ? cpu : cpu_hi;
		if (r == EINTR)
			eintr++;
		else if (r != 0)
			other++;
		else if (took < ms_wait)
			early++;
		else if (took - cpu > late_ms)
			late++;
		else
			ok++;
	}
	if (ok + late == WAITS && late <= LATE_ALLOWED) {
		say("%s %d/%d ok\n", w->name, WAITS, WAITS);
		return;
	}
	failed = 1;
	say("%s %d waits: %d ok, %d early, %d eintr, %d late, %d other; "
	    "took %.1f to %.1f ms (up to %.1f waiting for a CPU)%s%s\n",
	    w->name, WAITS, ok, early, eintr, late, other, lo, hi, cpu_hi,
	    other_what[0] ? "; first other " : "", other_what);
}

/* A loopback listener on a free port of 42000-42999. */
static int listen_loopback(int backlog, struct sockaddr_in *ret_addr)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a;

	need(fd >= 0, "socket");
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	for (int i = 0; i < PORT_N; i++) {
		int port = PORT_LO + (int)((getpid() + i) % PORT_N);

		a.sin_port = htons((uint16_t)port);
		if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0) {
			need(listen(fd, backlog) == 0, "listen");
			*ret_addr = a;
			return fd;
		}
	}
	need(0, "bind 127.0.0.1:42000-42999");
	return -1;
}

/* A helper's poll for at most ms, going on after EINTR with the time
 * left (a sampled thread sees one every millisecond). */
static int poll_for(struct pollfd *p, int ms)
{
	double end = now_ms() + ms;

	for (;;) {
		int left = (int)(end - now_ms() + 0.999), r;

		r = poll(p, 1, left > 0 ? left : 0);
		if (r >= 0 || errno != EINTR)
			return r;
	}
}

/*
 * Fill the backlog of `full` (0: one connection): connect until a
 * connection is not established within 100 ms (its SYN was dropped).
 */
static void fill_backlog(void)
{
	nfillers = 0;
	while (nfillers < (int)(sizeof(fillers) / sizeof(fillers[0]))) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC |
					 SOCK_NONBLOCK, 0);
		struct pollfd p = {fd, POLLOUT, 0};
		int err = 0;
		socklen_t len = sizeof(err);

		need(fd >= 0, "socket");
		if (connect(fd, (struct sockaddr *)&full_addr,
			    sizeof(full_addr)) < 0)
			need(errno == EINPROGRESS, "connect (filler)");
		need(poll_for(&p, 100) >= 0, "poll (filler)");
		if (!(p.revents & POLLOUT)) {
			(void)close(fd); /* the backlog is full */
			return;
		}
		need(getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 &&
		     err == 0, "connect (filler)");
		fillers[nfillers++] = fd;
	}
	errno = 0;
	need(0, "a listener with backlog 0 took 8 connections");
}

static void waits_setup(int ms)
{
	struct epoll_event ev = {.events = EPOLLIN};
	struct sockaddr_in a;
	struct timeval t = ms_tv(ms);
	int l;

	ms_wait = ms;
	need(pipe2(idle_pipe, O_CLOEXEC) == 0, "pipe");
	epfd = epoll_create1(EPOLL_CLOEXEC);
	need(epfd >= 0, "epoll_create1");
	ev.data.fd = idle_pipe[0];
	need(epoll_ctl(epfd, EPOLL_CTL_ADD, idle_pipe[0], &ev) == 0,
	     "epoll_ctl");
	/* A loopback TCP connection whose peer never sends. */
	l = listen_loopback(1, &a);
	tcp_out = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	need(tcp_out >= 0, "socket");
	while (connect(tcp_out, (struct sockaddr *)&a, sizeof(a)) < 0)
		need(errno == EINTR, "connect");
	do
		tcp_in = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	while (tcp_in < 0 && errno == EINTR);
	need(tcp_in >= 0, "accept");
	(void)close(l);
	need(setsockopt(tcp_in, SOL_SOCKET, SO_RCVTIMEO, &t, sizeof(t)) == 0,
	     "SO_RCVTIMEO");
	acceptor = listen_loopback(16, &a);
	need(setsockopt(acceptor, SOL_SOCKET, SO_RCVTIMEO, &t, sizeof(t)) ==
	     0, "SO_RCVTIMEO");
	full = listen_loopback(0, &full_addr);
	fill_backlog();
	need(sem_init(&sem, 0, 0) == 0, "sem_init");
}

static void waits_teardown(void)
{
	(void)close(idle_pipe[0]);
	(void)close(idle_pipe[1]);
	(void)close(epfd);
	(void)close(tcp_in);
	(void)close(tcp_out);
	(void)close(acceptor);
	while (nfillers > 0)
		(void)close(fillers[--nfillers]);
	(void)close(full);
	(void)sem_destroy(&sem);
}

/* ---- c. the program's own signal -------------------------------------- */

static volatile sig_atomic_t alarms;

static void on_alarm(int sig)
{
	(void)sig;
	alarms++;
}

enum own_outcome { OWN_OK, OWN_EARLY, OWN_LOST, OWN_OTHER };

/* The alarm 10 ms ahead, then every 250 ms (a lost one's round still
 * ends, late). */
static void arm_alarm(void)
{
	struct itimerval in = {{0, 250000}, {0, 10000}};

	alarms = 0;
	(void)setitimer(ITIMER_REAL, &in, NULL);
}

static void disarm_alarm(void)
{
	struct itimerval off = {{0, 0}, {0, 0}};

	(void)setitimer(ITIMER_REAL, &off, NULL);
}

/*
 * A round's outcome from whether the call was interrupted and how long it
 * took: ok when the first alarm's handler ran before it returned
 * interrupted; early when it was interrupted before any handler of the
 * program ran; lost when only a later alarm (or its time-out) ended it.
 */
static enum own_outcome own_outcome(int interrupted, int ran, double took)
{
	if (interrupted && !ran)
		return OWN_EARLY;
	if (interrupted && took < 200)
		return OWN_OK;
	if (interrupted || ran)
		return OWN_LOST;
	return OWN_OTHER;
}

static enum own_outcome own_poll(int fd, double *took)
{
	struct pollfd p = {fd, POLLIN, 0};
	double t0;
	int r, e, ran;

	arm_alarm();
	t0 = now_ms();
	r = poll(&p, 1, 1000);
	e = errno;
	*took = now_ms() - t0;
	ran = alarms > 0;
	disarm_alarm();
	return own_outcome(r < 0 && e == EINTR, ran, *took);
}

static enum own_outcome own_write(int fd, double *took)
{
	static char buf[64 * 1024];
	double t0;
	ssize_t r;
	int e, ran;

	arm_alarm();
	t0 = now_ms();
	r = write(fd, buf, sizeof(buf));
	e = errno;
	*took = now_ms() - t0;
	ran = alarms > 0;
	disarm_alarm();
	return own_outcome((r < 0 && e == EINTR) ||
			   (r > 0 && (size_t)r < sizeof(buf)), ran, *took);
}

static enum own_outcome own_nanosleep(int fd, double *took)
{
	struct timespec t = {1, 0}, rem = {0, 0};
	double t0;
	int r, e, ran;

	(void)fd;
	arm_alarm();
	t0 = now_ms();
	r = nanosleep(&t, &rem);
	e = errno;
	*took = now_ms() - t0;
	ran = alarms > 0;
	disarm_alarm();
	return own_outcome(r < 0 && e == EINTR &&
			   (rem.tv_sec > 0 || rem.tv_nsec > 0), ran, *took);
}

static void run_own(const char *prefix, const char *name,
		    enum own_outcome (*round)(int, double *), int fd)
{
	int n[4] = {0, 0, 0, 0};
	double lo = 1e9, hi = 0;

	for (int i = 0; i < OWN_ROUNDS; i++) {
		double took;

		n[round(fd, &took)]++;
		lo = took < lo ? took : lo;
		hi = took > hi ? took : hi;
	}
	if (n[OWN_OK] == OWN_ROUNDS) {
		say("%s %s %d/%d ok\n", prefix, name, OWN_ROUNDS, OWN_ROUNDS);
		return;
	}
	failed = 1;
	say("%s %s %d rounds: %d ok, %d early, %d lost, %d other; "
	    "took %.1f to %.1f ms\n", prefix, name, OWN_ROUNDS, n[OWN_OK],
	    n[OWN_EARLY], n[OWN_LOST], n[OWN_OTHER], lo, hi);
}

static void check_own_signal(void)
{
	struct sigaction sa, old;
	int idle[2], fullp[2], fl;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0; /* no SA_RESTART: the program wants EINTR */
	need(sigaction(SIGALRM, &sa, &old) == 0, "sigaction");
	need(pipe2(idle, O_CLOEXEC) == 0, "pipe");
	/* A pipe filled to the brim, then blocking again. */
	need(pipe2(fullp, O_CLOEXEC | O_NONBLOCK) == 0, "pipe");
	while (write(fullp[1], big, 64 * 1024) > 0)
		;
	need(errno == EAGAIN, "filling a pipe");
	fl = fcntl(fullp[1], F_GETFL);
	need(fl >= 0 && fcntl(fullp[1], F_SETFL, fl & ~O_NONBLOCK) == 0,
	     "fcntl");
	run_own("own-signal", "poll", own_poll, idle[0]);
	run_own("own-signal", "write", own_write, fullp[1]);
	run_own("own-signal", "nanosleep", own_nanosleep, -1);
	(void)close(idle[0]);
	(void)close(idle[1]);
	(void)close(fullp[0]);
	(void)close(fullp[1]);
	need(sigaction(SIGALRM, &old, NULL) == 0, "sigaction");
}

/* ---- d. what a resumed call leaves behind ------------------------------ */

#define NESTED_ROUNDS 20
#define ZERO_POLLS 2000
#define ZERO_FDS 1000        /* descriptors each poll with timeout 0 takes */
#define ZERO_LATE_MS 50.0
#define WATCHDOG_MS 500      /* a call the watchdog ends (d) */
#define JUMP_ROUNDS 10
#define RAW_READS 200
#define RAW_LATE_READS 100

#ifndef sigev_notify_thread_id
#define sigev_notify_thread_id _sigev_un._tid
#endif

/* /proc/thread-self/status of the battery's thread, for SigBlk. */
static int status_fd = -1;

/* The thread's mask (signals 1-64) as pthread_sigmask reads it. */
static uint64_t mask_now(void)
{
	sigset_t set;
	uint64_t bits;

	sigemptyset(&set);
	(void)pthread_sigmask(SIG_BLOCK, NULL, &set);
	memcpy(&bits, &set, sizeof(bits));
	return bits;
}

/* The thread's mask as the kernel says it (SigBlk), read with a system
 * call of the battery's own: no library call profshim may resume. */
static uint64_t sigblk_now(void)
{
	char buf[4096];
	long n = syscall(SYS_pread64, status_fd, buf, sizeof(buf) - 1, 0L);
	const char *p;

	if (n <= 0)
		return UINT64_MAX;
	buf[n] = 0;
	p = strstr(buf, "\nSigBlk:");
	return p ? strtoull(p + 8, NULL, 16) : UINT64_MAX;
}

struct masks {
	uint64_t view;   /* pthread_sigmask */
	uint64_t sigblk; /* /proc/thread-self/status */
};

static struct masks masks_now(void)
{
	struct masks m = {mask_now(), sigblk_now()};

	return m;
}

static int masks_same(struct masks a, struct masks b)
{
	return a.view == b.view && a.sigblk == b.sigblk;
}

/* "mask M (was W), SigBlk S (was T)" into buf. */
static const char *masks_text(char *buf, size_t n, struct masks now,
			      struct masks was)
{
	(void)snprintf(buf, n, "mask %#llx (was %#llx), SigBlk %#llx (was "
		       "%#llx)", (unsigned long long)now.view,
		       (unsigned long long)was.view,
		       (unsigned long long)now.sigblk,
		       (unsigned long long)was.sigblk);
	return buf;
}

/* A helper thread, with every signal blocked: the program's signals of d
 * are for the battery's thread. */
static void helper_start(pthread_t *t, void *(*fn)(void *), void *arg)
{
	sigset_t all, old;

	sigfillset(&all);
	(void)pthread_sigmask(SIG_BLOCK, &all, &old);
	errno = pthread_create(t, NULL, fn, arg);
	need(errno == 0, "pthread_create");
	(void)pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/*
 * The watchdog: when the battery's thread has been in the same watched
 * call for WATCHDOG_MS, it writes a byte to the descriptor the call waits
 * on, so that a call that would hang ends (and counts as hung).
 */
static struct {
	pthread_t thread;
	int wake[2];
	atomic_int fd;       /* where the byte goes */
	atomic_uint call;    /* the watched call, 0: none */
	atomic_int stop;
	atomic_int fired;    /* bytes written */
	unsigned seq;        /* the battery's thread's count of calls */
} wd;

static void *watchdog_main(void *arg)
{
	unsigned seen = 0, ended = 0;
	double since = 0;

	(void)arg;
	while (!atomic_load(&wd.stop)) {
		struct pollfd p = {wd.wake[0], POLLIN, 0};
		unsigned call;

		(void)poll(&p, 1, 20);
		call = atomic_load(&wd.call);
		if (call != seen) {
			seen = call;
			since = now_ms();
		} else if (call && call != ended &&
			   now_ms() - since >= WATCHDOG_MS) {
			ended = call;
			atomic_fetch_add(&wd.fired, 1);
			while (write(atomic_load(&wd.fd), "w", 1) < 0 &&
			       errno == EINTR)
				;
		}
	}
	return NULL;
}

static void watchdog_start(void)
{
	need(pipe2(wd.wake, O_CLOEXEC) == 0, "pipe");
	atomic_store(&wd.stop, 0);
	atomic_store(&wd.call, 0);
	atomic_store(&wd.fired, 0);
	helper_start(&wd.thread, watchdog_main, NULL);
}

static void watchdog_stop(void)
{
	atomic_store(&wd.stop, 1);
	while (write(wd.wake[1], "q", 1) < 0 && errno == EINTR)
		;
	(void)pthread_join(wd.thread, NULL);
	(void)close(wd.wake[0]);
	(void)close(wd.wake[1]);
}

/* The battery's thread enters a call that waits on fd (unwatch: left
 * it). Memory stores only: no call profshim hooks. */
static void watch(int fd)
{
	if (++wd.seq == 0)
		wd.seq = 1;
	atomic_store(&wd.fd, fd);
	atomic_store(&wd.call, wd.seq);
}

static void unwatch(void)
{
	atomic_store(&wd.call, 0);
}

static volatile sig_atomic_t usr1_runs;

static void on_usr1(int sig)
{
	(void)sig;
	usr1_runs++;
}

/* A handler whose own blocking call is hooked too. */
static void on_usr1_poll(int sig)
{
	int e = errno;

	(void)sig;
	usr1_runs++;
	(void)poll(NULL, 0, 5);
	errno = e;
}

/* The program's handler for sig: no SA_RESTART, nothing more blocked. */
static void set_handler(int sig, void (*fn)(int), struct sigaction *old)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = fn;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0;
	need(sigaction(sig, &sa, old) == 0, "sigaction");
}

/* A CLOCK_MONOTONIC timer that sends sig to the calling thread alone. */
static timer_t thread_timer(int sig)
{
	struct sigevent ev;
	timer_t t;

	memset(&ev, 0, sizeof(ev));
	ev.sigev_notify = SIGEV_THREAD_ID;
	ev.sigev_signo = sig;
	ev.sigev_notify_thread_id = gettid();
	need(timer_create(CLOCK_MONOTONIC, &ev, &t) == 0, "timer_create");
	return t;
}

/* first ms ahead, then every `every` ms (0: once); 0, 0 disarms. */
static void timer_ms(timer_t t, int first, int every)
{
	struct itimerspec its = {ms_ts(every), ms_ts(first)};

	(void)timer_settime(t, 0, &its, NULL);
}

/* Nested handler: a hooked call in the program's handler while a hooked
 * wait is resumed under it leaves the thread's mask as it was. */
static void check_nested_handler(void)
{
	struct sigaction old;
	struct masks was, now;
	sigset_t before;
	sig_atomic_t runs;
	timer_t t;
	int ran;
	char text[160];

	set_handler(SIGUSR1, on_usr1_poll, &old);
	t = thread_timer(SIGUSR1);
	sigemptyset(&before);
	(void)pthread_sigmask(SIG_BLOCK, NULL, &before);
	was = masks_now();
	timer_ms(t, 7, 7);
	for (int i = 0; i < NESTED_ROUNDS; i++)
		(void)poll(NULL, 0, 30); /* 0 or EINTR, as it comes */
	(void)timer_delete(t);
	now = masks_now();
	runs = usr1_runs;
	(void)raise(SIGUSR1);
	ran = usr1_runs != runs;
	/* The mask the program had (a SIGUSR1 held meanwhile runs the
	 * handler now), then the action. */
	(void)pthread_sigmask(SIG_SETMASK, &before, NULL);
	need(sigaction(SIGUSR1, &old, NULL) == 0, "sigaction");
	if (masks_same(now, was) && ran) {
		say("nested-handler mask 1/1 ok\n");
		return;
	}
	failed = 1;
	say("nested-handler mask 0/1: %s; raise(SIGUSR1) %s the handler\n",
	    masks_text(text, sizeof(text), now, was),
	    ran ? "ran" : "did not run");
}

/* poll with timeout 0 returns at once, whatever comes. */
static void check_poll_zero(void)
{
	struct rlimit old, rl;
	struct pollfd *p;
	int n = ZERO_FDS, ok = 0, late = 0, hung = 0, other = 0, made = 0;
	double hi = 0, cpu_hi = 0;

	need(getrlimit(RLIMIT_NOFILE, &old) == 0, "getrlimit");
	rl = old;
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < ZERO_FDS + 64) {
		rl.rlim_cur = rl.rlim_max == RLIM_INFINITY ||
					      rl.rlim_max >= ZERO_FDS + 64
				      ? ZERO_FDS + 64
				      : rl.rlim_max;
		need(setrlimit(RLIMIT_NOFILE, &rl) == 0, "setrlimit");
		if (rl.rlim_cur < ZERO_FDS + 64)
			n = ((int)rl.rlim_cur - 64) & ~1;
	}
	errno = EMFILE;
	need(n >= 64, "RLIMIT_NOFILE");
	p = calloc((size_t)n, sizeof(*p));
	need(p != NULL, "calloc");
	for (int i = 0; i < n; i += 2) {
		int fd[2];

		need(pipe2(fd, O_CLOEXEC) == 0, "pipe");
		p[i] = (struct pollfd){fd[0], POLLIN, 0};
		p[i + 1] = (struct pollfd){fd[1], POLLIN, 0};
	}
	other_what[0] = 0;
	for (int i = 0; i < ZERO_POLLS; i++) {
		int fired = atomic_load(&wd.fired), r, e;
		double c0 = cpu_wait_ms(), t0 = now_ms(), took, cpu;

		watch(p[1].fd);
		r = poll(p, (nfds_t)n, 0);
		e = errno;
		unwatch();
		took = now_ms() - t0;
		cpu = cpu_wait_ms() - c0;
		hi = took > hi ? took : hi;
		cpu_hi = cpu > cpu_hi ? cpu : cpu_hi;
		made++;
		if (r == 0 || (r < 0 && e == EINTR)) {
			if (took - cpu > ZERO_LATE_MS)
				late++;
			else
				ok++;
		} else if (r > 0 && atomic_load(&wd.fired) != fired) {
			hung++;
			break; /* one is enough */
		} else {
			other++;
			(void)unexpected("returned %lld errno %s", r, e);
		}
	}
	for (int i = 0; i < n; i++)
		(void)close(p[i].fd);
	free(p);
	(void)setrlimit(RLIMIT_NOFILE, &old);
	if (ok == ZERO_POLLS) {
		say("poll timeout 0 %d/%d ok\n", ZERO_POLLS, ZERO_POLLS);
		return;
	}
	failed = 1;
	say("poll timeout 0 %d of %d polls: %d ok, %d late, %d hung, %d other;"
	    " took up to %.1f ms (up to %.1f waiting for a CPU)%s%s\n", made,
	    ZERO_POLLS, ok, late, hung, other, hi, cpu_hi,
	    other_what[0] ? "; first other " : "", other_what);
}

/* Masked waits: the program's SIGUSR1 through a mask that blocks every
 * other signal, profshim's too. */
static timer_t usr1_timer;
static sigset_t all_but_usr1;

static void arm_usr1(void)
{
	usr1_runs = 0;
	timer_ms(usr1_timer, 10, 250);
}

static void disarm_usr1(void)
{
	timer_ms(usr1_timer, 0, 0);
}

static enum own_outcome masked_ppoll(int fd, double *took)
{
	struct pollfd p = {fd, POLLIN, 0};
	struct timespec t = {1, 0};
	double t0;
	int r, e, ran;

	arm_usr1();
	t0 = now_ms();
	r = ppoll(&p, 1, &t, &all_but_usr1);
	e = errno;
	*took = now_ms() - t0;
	ran = usr1_runs > 0;
	disarm_usr1();
	return own_outcome(r < 0 && e == EINTR, ran, *took);
}

static enum own_outcome masked_pselect(int fd, double *took)
{
	fd_set rd;
	struct timespec t = {1, 0};
	double t0;
	int r, e, ran;

	FD_ZERO(&rd);
	FD_SET(fd, &rd);
	arm_usr1();
	t0 = now_ms();
	r = pselect(fd + 1, &rd, NULL, NULL, &t, &all_but_usr1);
	e = errno;
	*took = now_ms() - t0;
	ran = usr1_runs > 0;
	disarm_usr1();
	return own_outcome(r < 0 && e == EINTR, ran, *took);
}

static enum own_outcome masked_epoll_pwait(int ep, double *took)
{
	struct epoll_event ev;
	double t0;
	int r, e, ran;

	arm_usr1();
	t0 = now_ms();
	r = epoll_pwait(ep, &ev, 1, 1000, &all_but_usr1);
	e = errno;
	*took = now_ms() - t0;
	ran = usr1_runs > 0;
	disarm_usr1();
	return own_outcome(r < 0 && e == EINTR, ran, *took);
}

static void check_masked_waits(void)
{
	struct sigaction old;
	struct epoll_event ev = {.events = EPOLLIN};
	int idle[2], ep;

	set_handler(SIGUSR1, on_usr1, &old);
	usr1_timer = thread_timer(SIGUSR1);
	sigfillset(&all_but_usr1);
	sigdelset(&all_but_usr1, SIGUSR1);
	need(pipe2(idle, O_CLOEXEC) == 0, "pipe");
	ep = epoll_create1(EPOLL_CLOEXEC);
	need(ep >= 0, "epoll_create1");
	ev.data.fd = idle[0];
	need(epoll_ctl(ep, EPOLL_CTL_ADD, idle[0], &ev) == 0, "epoll_ctl");
	run_own("masked", "ppoll", masked_ppoll, idle[0]);
	run_own("masked", "pselect", masked_pselect, idle[0]);
	run_own("masked", "epoll_pwait", masked_epoll_pwait, ep);
	(void)timer_delete(usr1_timer);
	(void)close(ep);
	(void)close(idle[0]);
	(void)close(idle[1]);
	need(sigaction(SIGUSR1, &old, NULL) == 0, "sigaction");
}

/*
 * siglongjmp out of a hooked read, then plain work. A round's alarm comes
 * 5 ms ahead (even rounds: the profiling signal has met the read by then,
 * and profshim waits on for it) or 250 us ahead (odd rounds: the read
 * itself, most often), so that the jump leaves either behind.
 */
static sigjmp_buf jump_env;
static volatile sig_atomic_t jump_armed;

static void on_alarm_jump(int sig)
{
	(void)sig;
	if (jump_armed) {
		jump_armed = 0;
		siglongjmp(jump_env, 1);
	}
	/* an alarm whose round ended otherwise: nothing to do */
}

/* The late writer: for each byte on go[0], 1 ms of sleep, then one byte
 * into `to`. Helper: it goes on after EINTR. */
struct late_writer {
	pthread_t thread;
	int go[2];
	int to;
};

static void *late_writer_main(void *arg)
{
	struct late_writer *lw = arg;

	for (;;) {
		struct timespec ms1 = {0, 1000000L};
		char c;
		ssize_t r = read(lw->go[0], &c, 1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0 || c == 'q')
			break;
		(void)nanosleep(&ms1, NULL);
		while (write(lw->to, "y", 1) < 0 && errno == EINTR)
			;
	}
	return NULL;
}

/* What the rounds found; static, as a jump leaves locals undefined. */
static struct {
	int returned;      /* reads that returned: the jump never came */
	long ret_r;        /* ... what the first returned */
	int ret_e;
	int mask_jump;     /* rounds after whose jump the mask was the one
			    * sigsetjmp saved */
	int raw, raw_late; /* syscall(SYS_read)s that returned 1 */
	long raw_r, late_r; /* ... what the first other returned */
	int raw_e, late_e;
	int mask_raw, mask_late; /* rounds whose mask was unchanged after */
	int write_ok;      /* writes that returned 1 and left 1 byte, the
			    * mask unchanged */
	int write_bad;     /* the others */
	long write_r;      /* ... what the first returned */
	int write_e, write_in; /* ... its errno, the bytes it left */
	struct masks was, bad_jump, bad_raw, bad_late, bad_write;
} lj;

/* Once a round has jumped: the plain work, with no library call profshim
 * may resume up to the write, so that what the jump left behind is still
 * there. rp: a pipe for the reads (lw writes into it), wp: an empty one. */
static void after_jump(const struct late_writer *lw, const int rp[2],
		       const int wp[2])
{
	struct masks m = masks_now();
	int n = -1, e;
	ssize_t w;
	char c;

	if (masks_same(m, lj.was))
		lj.mask_jump++;
	else
		lj.bad_jump = m;
	for (int i = 0; i < RAW_READS / JUMP_ROUNDS; i++) {
		long r;

		(void)syscall(SYS_write, rp[1], "x", 1);
		r = syscall(SYS_read, rp[0], &c, 1);
		if (r == 1) {
			lj.raw++;
		} else if (!lj.raw_r) {
			lj.raw_r = r;
			lj.raw_e = errno;
		}
	}
	m = masks_now();
	if (masks_same(m, lj.was))
		lj.mask_raw++;
	else
		lj.bad_raw = m;
	for (int i = 0; i < RAW_LATE_READS / JUMP_ROUNDS; i++) {
		long r;

		(void)syscall(SYS_write, lw->go[1], "g", 1);
		watch(rp[1]);
		r = syscall(SYS_read, rp[0], &c, 1);
		unwatch();
		if (r == 1) {
			lj.raw_late++;
		} else if (!lj.late_r) {
			lj.late_r = r;
			lj.late_e = errno;
		}
	}
	m = masks_now();
	if (masks_same(m, lj.was))
		lj.mask_late++;
	else
		lj.bad_late = m;
	/* The first call profshim hooks since the jump. */
	w = write(wp[1], "x", 1);
	e = errno;
	(void)ioctl(wp[0], FIONREAD, &n);
	m = masks_now();
	if (w == 1 && n == 1 && masks_same(m, lj.was)) {
		lj.write_ok++;
	} else if (!lj.write_bad++) {
		lj.write_r = (long)w;
		lj.write_e = e;
		lj.write_in = n;
		lj.bad_write = m;
	}
	/* Empty the pipe for the next round. */
	while (n-- > 0)
		(void)syscall(SYS_read, wp[0], &c, 1);
}

static void check_siglongjmp(void)
{
	struct sigaction old;
	struct late_writer lw;
	sigset_t before;
	int jp[2], rp[2], wp[2], jumped;
	char text[160];

	set_handler(SIGALRM, on_alarm_jump, &old);
	need(pipe2(jp, O_CLOEXEC) == 0, "pipe");
	need(pipe2(rp, O_CLOEXEC) == 0, "pipe");
	need(pipe2(wp, O_CLOEXEC) == 0, "pipe");
	need(pipe2(lw.go, O_CLOEXEC) == 0, "pipe");
	lw.to = rp[1];
	helper_start(&lw.thread, late_writer_main, &lw);
	sigemptyset(&before);
	(void)pthread_sigmask(SIG_BLOCK, NULL, &before);
	memset(&lj, 0, sizeof(lj));
	lj.was = masks_now();
	for (volatile int i = 0; i < JUMP_ROUNDS; i++) {
		if (sigsetjmp(jump_env, 1) == 0) {
			struct itimerval in = {{0, 0}, {0, i % 2 ? 250 : 5000}};
			char c;
			ssize_t r;

			watch(jp[1]);
			jump_armed = 1;
			(void)setitimer(ITIMER_REAL, &in, NULL);
			r = read(jp[0], &c, 1); /* the handler jumps out */
			jump_armed = 0;
			unwatch();
			if (!lj.returned++) {
				lj.ret_r = (long)r;
				lj.ret_e = errno;
			}
			disarm_alarm();
			continue;
		}
		unwatch();
		disarm_alarm();
		after_jump(&lw, rp, wp);
	}

	/* Put back what the program had: the mask (an alarm held meanwhile
	 * runs the handler, which does nothing now), the action. */
	(void)pthread_sigmask(SIG_SETMASK, &before, NULL);
	while (write(lw.go[1], "q", 1) < 0 && errno == EINTR)
		;
	(void)pthread_join(lw.thread, NULL);
	need(sigaction(SIGALRM, &old, NULL) == 0, "sigaction");
	(void)close(jp[0]);
	(void)close(jp[1]);
	(void)close(rp[0]);
	(void)close(rp[1]);
	(void)close(wp[0]);
	(void)close(wp[1]);
	(void)close(lw.go[0]);
	(void)close(lw.go[1]);

	jumped = JUMP_ROUNDS - lj.returned;
	if (jumped == JUMP_ROUNDS && lj.mask_jump == JUMP_ROUNDS) {
		say("siglongjmp read %d/%d ok\n", JUMP_ROUNDS, JUMP_ROUNDS);
	} else {
		failed = 1;
		say("siglongjmp read %d rounds: %d jumped, %d returned",
		    JUMP_ROUNDS, jumped, lj.returned);
		if (lj.returned)
			say(" (first %ld errno %s)", lj.ret_r,
			    errname(lj.ret_e));
		say("; mask as saved after %d jumps", lj.mask_jump);
		if (lj.mask_jump < jumped)
			say("; last other %s", masks_text(text, sizeof(text),
							  lj.bad_jump, lj.was));
		say("\n");
	}
	if (jumped == JUMP_ROUNDS && lj.raw == RAW_READS &&
	    lj.mask_raw == JUMP_ROUNDS) {
		say("after siglongjmp syscall read %d/%d ok\n", RAW_READS,
		    RAW_READS);
	} else {
		failed = 1;
		say("after siglongjmp syscall read %d of %d returned 1", lj.raw,
		    jumped * (RAW_READS / JUMP_ROUNDS));
		if (lj.raw_r)
			say(" (first other %ld errno %s)", lj.raw_r,
			    errname(lj.raw_e));
		say("; mask unchanged in %d of %d rounds", lj.mask_raw, jumped);
		if (lj.mask_raw < jumped)
			say("; last other %s", masks_text(text, sizeof(text),
							  lj.bad_raw, lj.was));
		say("\n");
	}
	if (jumped == JUMP_ROUNDS && lj.raw_late == RAW_LATE_READS &&
	    lj.mask_late == JUMP_ROUNDS) {
		say("after siglongjmp syscall read blocking %d/%d ok\n",
		    RAW_LATE_READS, RAW_LATE_READS);
	} else {
		failed = 1;
		say("after siglongjmp syscall read blocking %d of %d "
		    "returned 1", lj.raw_late,
		    jumped * (RAW_LATE_READS / JUMP_ROUNDS));
		if (lj.late_r)
			say(" (first other %ld errno %s)", lj.late_r,
			    errname(lj.late_e));
		say("; mask unchanged in %d of %d rounds", lj.mask_late,
		    jumped);
		if (lj.mask_late < jumped)
			say("; last other %s", masks_text(text, sizeof(text),
							  lj.bad_late, lj.was));
		say("\n");
	}
	if (jumped == JUMP_ROUNDS && lj.write_ok == JUMP_ROUNDS) {
		say("after siglongjmp write %d/%d ok\n", JUMP_ROUNDS,
		    JUMP_ROUNDS);
	} else {
		failed = 1;
		say("after siglongjmp write %d of %d returned 1, left 1 byte "
		    "and the mask unchanged", lj.write_ok, jumped);
		if (lj.write_bad)
			say("; first other returned %ld errno %s, %d bytes in "
			    "the pipe, %s", lj.write_r,
			    lj.write_r < 0 ? errname(lj.write_e) : "-",
			    lj.write_in, masks_text(text, sizeof(text),
						    lj.bad_write, lj.was));
		say("\n");
	}
}

/* ---- the battery ------------------------------------------------------- */

/* Run every check; the report is in report[], failed says whether one
 * was not ok. */
static void battery(int ms)
{
	report_len = 0;
	report[0] = 0;
	failed = 0;
	if (!big) {
		big = malloc(DATA_BYTES);
		need(big != NULL, "malloc");
		memset(big, 'x', DATA_BYTES);
	}
	schedstat_fd = open("/proc/thread-self/schedstat",
			    O_RDONLY | O_CLOEXEC);
	status_fd = open("/proc/thread-self/status", O_RDONLY | O_CLOEXEC);
	need(status_fd >= 0, "/proc/thread-self/status");
	check_write_pipe();
	check_fwrite_pipe();
	check_send_socketpair();
	waits_setup(ms);
	for (size_t i = 0; i < sizeof(waiters) / sizeof(waiters[0]); i++)
		run_waiter(&waiters[i]);
	waits_teardown();
	check_own_signal();
	watchdog_start();
	check_nested_handler();
	check_poll_zero();
	check_masked_waits();
	check_siglongjmp();
	watchdog_stop();
	(void)close(status_fd);
	status_fd = -1;
	if (schedstat_fd >= 0)
		(void)close(schedstat_fd);
	schedstat_fd = -1;
}

/* ---- serve ------------------------------------------------------------- */

static void answer(int fd, const char *status, const char *body, size_t n)
{
	char head[256];
	int h = snprintf(head, sizeof(head),
			 "HTTP/1.1 %s\r\nContent-Type: text/plain\r\n"
			 "Content-Length: %zu\r\nConnection: close\r\n\r\n",
			 status, n);

	if (write_all(fd, head, (size_t)h) == 0)
		(void)write_all(fd, body, n);
}

/* ms=N from the query of a request target, or def. */
static int query_ms(const char *target, int def)
{
	const char *q = strchr(target, '?');

	while (q) {
		q++;
		if (strncmp(q, "ms=", 3) == 0 && atoi(q + 3) > 0)
			return atoi(q + 3);
		q = strchr(q, '&');
	}
	return def;
}

/* One connection: read the request head, answer, close. Returns 1 when
 * the request was GET /quit. */
static int serve_one(int fd)
{
	char req[4096], *sp;
	size_t n = 0;
	int quit = 0;

	/* The head: up to the blank line. */
	for (;;) {
		ssize_t r = recv(fd, req + n, sizeof(req) - 1 - n, 0);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			goto out;
		n += (size_t)r;
		req[n] = 0;
		if (strstr(req, "\r\n\r\n"))
			break;
		if (n == sizeof(req) - 1)
			goto out;
	}
	sp = strstr(req, " HTTP/");
	if (!sp)
		goto out;
	*sp = 0;
	if (strncmp(req, "GET /battery", 12) == 0 &&
	    (req[12] == 0 || req[12] == '?')) {
		battery(query_ms(req + 4, 30));
		answer(fd, "200 OK", report, report_len);
	} else if (strcmp(req, "GET /quit") == 0) {
		answer(fd, "200 OK", "bye\n", 4);
		quit = 1;
	} else {
		answer(fd, "404 Not Found", "no\n", 3);
	}
out:
	(void)close(fd);
	return quit;
}

static int serve(int port)
{
	struct sockaddr_in a;
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	(void)signal(SIGPIPE, SIG_IGN);
	need(l >= 0, "socket");
	(void)setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons((uint16_t)port);
	need(bind(l, (struct sockaddr *)&a, sizeof(a)) == 0, "bind");
	need(listen(l, 16) == 0, "listen");
	for (;;) {
		int c = accept(l, NULL, NULL);

		if (c < 0 && errno == EINTR)
			continue;
		need(c >= 0, "accept");
		if (serve_one(c))
			return 0;
	}
}

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "battery") == 0) {
		int ms = argc > 2 ? atoi(argv[2]) : 30;

		if (ms <= 0)
			goto usage;
		battery(ms);
		fputs(report, stdout);
		return failed ? 1 : 0;
	}
	if (argc == 3 && strcmp(argv[1], "serve") == 0 && atoi(argv[2]) > 0)
		return serve(atoi(argv[2]));
usage:
	fprintf(stderr, "usage: waitcheck battery [MS] | waitcheck serve PORT\n");
	return 2;
}
