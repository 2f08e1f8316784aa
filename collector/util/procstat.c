/*
 * procstat.c — see procstat.h.
 */
#include "util/procstat.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int procstat_read(int pid, struct procstat *ret)
{
	char path[64], buf[1024], *p;
	size_t n;
	FILE *f;

	(void)snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* The command name (field 2) may hold spaces and parentheses: the
	 * fields after it start after its last ')'. */
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 2, "%c %d", &ret->state, &ret->ppid) != 2)
		return -EIO;
	/* Field 22 is the start time. p is at the ')' ending field 2; each
	 * step moves it to the space before the next field, so after the
	 * step for field 21, p + 1 is field 22. */
	for (int field = 2; field < 22 && p; field++)
		p = strchr(p + 1, ' ');
	if (!p)
		return -EIO;
	ret->start_ticks = strtoull(p + 1, NULL, 10);
	return 0;
}

bool procstat_alive(const struct procstat *ps)
{
	return ps->state != 'Z' && ps->state != 'X';
}

/* Seconds on clock c. */
static double procstat_clock_s(clockid_t c)
{
	struct timespec ts;

	if (clock_gettime(c, &ts) < 0)
		return 0;
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

bool procstat_started_after(const struct procstat *ps,
			    uint64_t ring_start_monotonic_ns)
{
	long tick = sysconf(_SC_CLK_TCK);
	double ring_boot, suspended;

	if (ring_start_monotonic_ns == 0 || tick <= 0)
		return false;
	suspended = procstat_clock_s(CLOCK_BOOTTIME) -
		    procstat_clock_s(CLOCK_MONOTONIC);
	ring_boot = (double)ring_start_monotonic_ns / 1e9 +
		    (suspended > 0 ? suspended : 0);
	return (double)ps->start_ticks / (double)tick > ring_boot + 2;
}
