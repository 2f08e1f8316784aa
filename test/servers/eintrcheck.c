/*
 * eintrcheck — does a signal whose handler lacks SA_RESTART still interrupt
 * a blocking read? (test_safety.py runs it with and without the shim.)
 *
 *   eintrcheck [ROUNDS]
 *
 * One thread, as in a program that bounds a read with alarm(): each round
 * arms a one-shot SIGALRM 2–3 ms ahead and reads from a pipe nobody writes
 * to. The read must fail with EINTR after the handler ran. A watchdog
 * (SIGUSR1 every 200 ms, also without SA_RESTART) frees a read the SIGALRM
 * failed to interrupt; a round whose read ends more than 50 ms after the
 * alarm's handler ran counts as lost. Prints
 * "rounds N interrupted I lost L other O" and exits 1 if any was lost.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t alarm_ran, watchdog_ran;
static struct timespec alarm_at;

static void on_alarm(int sig)
{
	(void)sig;
	(void)clock_gettime(CLOCK_MONOTONIC, &alarm_at);
	alarm_ran = 1;
}

/* Milliseconds from the alarm's handler to now. */
static double since_alarm(void)
{
	struct timespec now;

	(void)clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - alarm_at.tv_sec) * 1e3 +
	       (double)(now.tv_nsec - alarm_at.tv_nsec) / 1e6;
}

static void on_watchdog(int sig)
{
	(void)sig;
	watchdog_ran = 1;
}

static int handle(int sig, void (*fn)(int))
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = fn;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0; /* no SA_RESTART: the program wants EINTR */
	return sigaction(sig, &sa, NULL);
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 300;
	int fds[2], interrupted = 0, lost = 0, other = 0;
	struct sigevent sev;
	struct itimerspec dog = {{0, 200000000}, {0, 200000000}};
	timer_t watchdog;

	if (rounds <= 0 || handle(SIGALRM, on_alarm) < 0 ||
	    handle(SIGUSR1, on_watchdog) < 0 || pipe(fds) < 0) {
		fprintf(stderr, "eintrcheck: setup failed: %s\n", strerror(errno));
		return 2;
	}
	memset(&sev, 0, sizeof(sev));
	sev.sigev_notify = SIGEV_SIGNAL;
	sev.sigev_signo = SIGUSR1;
	if (timer_create(CLOCK_MONOTONIC, &sev, &watchdog) < 0 ||
	    timer_settime(watchdog, 0, &dog, NULL) < 0) {
		fprintf(stderr, "eintrcheck: watchdog: %s\n", strerror(errno));
		return 2;
	}
	srand(1);
	for (int i = 0; i < rounds; i++) {
		struct itimerval in = {{0, 0}, {0, 2000 + rand() % 1000}};
		struct itimerval off = {{0, 0}, {0, 0}};
		char c;
		ssize_t r;
		double late;

		alarm_ran = watchdog_ran = 0;
		(void)setitimer(ITIMER_REAL, &in, NULL);
		r = read(fds[0], &c, 1);
		late = alarm_ran ? since_alarm() : 0;
		(void)setitimer(ITIMER_REAL, &off, NULL);
		/* Interrupted by the alarm: the read ended right after its
		 * handler. Lost: only the watchdog, up to 200 ms later, ended
		 * it. (Both signals may come together: that is no loss.) */
		if (r < 0 && errno == EINTR && alarm_ran && late < 50)
			interrupted++;
		else if (alarm_ran)
			lost++;
		else
			other++; /* the watchdog came first: no verdict */
	}
	printf("rounds %d interrupted %d lost %d other %d\n", rounds,
	       interrupted, lost, other);
	return lost ? 1 : 0;
}
