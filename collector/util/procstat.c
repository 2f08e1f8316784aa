/*
 * procstat.c — see procstat.h.
 */
#include "util/procstat.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

double procstat_start_s(unsigned long long start_ticks)
{
	char line[256];
	double boot = -1;
	long tick = sysconf(_SC_CLK_TCK);
	FILE *f = fopen("/proc/stat", "re");

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "btime %lf", &boot) == 1)
			break;
	if (f)
		fclose(f);
	if (boot < 0 || tick <= 0)
		return -1;
	return boot + (double)start_ticks / (double)tick;
}

bool procstat_pid_reused(int pid, double ring_start_s)
{
	struct procstat ps;
	double start;

	if (ring_start_s <= 0 || procstat_read(pid, &ps) < 0 ||
	    !procstat_alive(&ps))
		return false;
	start = procstat_start_s(ps.start_ticks);
	return start > 0 && start > ring_start_s + 2;
}
