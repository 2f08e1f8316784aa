/*
 * gc.c — removal of rings whose process has exited (see gc.h).
 */
#include "cmd/gc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ring_format.h"

/* Start of process pid as seconds since the epoch, or -1 if it is gone. */
static double gc_proc_start(int pid)
{
	char path[64], buf[1024], *p;
	unsigned long long ticks;
	double boot = 0;
	FILE *f;
	size_t n;

	(void)snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')');
	for (int field = 2; field < 22 && p; field++)
		p = strchr(p + 1, ' ');
	if (!p || sscanf(p + 1, "%llu", &ticks) != 1)
		return -1;
	f = fopen("/proc/stat", "re");
	while (f && fgets(buf, sizeof(buf), f))
		if (sscanf(buf, "btime %lf", &boot) == 1)
			break;
	if (f)
		fclose(f);
	return boot + (double)ticks / (double)sysconf(_SC_CLK_TCK);
}

/* The ring's creation time, or -1 when its header cannot be read. */
static double gc_ring_start(const char *path)
{
	struct ring_header h;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = pread(fd, &h, sizeof(h), 0);
	(void)close(fd);
	if (n != (ssize_t)sizeof(h) || h.magic != RING_MAGIC)
		return -1;
	return (double)h.start_realtime_ns / 1e9;
}

int gc_run(const char *dir, bool dry_run, bool verbose)
{
	unsigned long removed = 0, kept = 0;
	unsigned long long bytes = 0;
	struct dirent *de;
	DIR *d = opendir(dir);

	if (!d) {
		fprintf(stderr, "profshim-collector: cannot read %s: %s\n", dir,
			strerror(errno));
		return 1;
	}
	while ((de = readdir(d)) != NULL) {
		char path[512];
		struct stat st;
		int pid;
		double pstart, rstart;
		bool dead;

		if (sscanf(de->d_name, "profshim.%d.", &pid) != 1 || pid <= 0)
			continue;
		(void)snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (lstat(path, &st) < 0 || !S_ISREG(st.st_mode) ||
		    st.st_uid != getuid())
			continue;
		pstart = gc_proc_start(pid);
		rstart = gc_ring_start(path);
		/* Gone, or the pid was reused by a process started after the
		 * ring was made (the clock ticks are coarse: allow 2 s). */
		dead = pstart < 0 || (rstart > 0 && pstart > rstart + 2);
		if (!dead) {
			kept++;
			continue;
		}
		if (verbose)
			printf("%s %s (pid %d, %lld bytes)\n",
			       dry_run ? "would remove" : "removed", path, pid,
			       (long long)st.st_blocks * 512);
		if (!dry_run && unlink(path) < 0) {
			fprintf(stderr, "profshim-collector: unlink %s: %s\n",
				path, strerror(errno));
			continue;
		}
		removed++;
		bytes += (unsigned long long)st.st_blocks * 512;
	}
	closedir(d);
	printf("profshim-collector gc: %s %lu rings of exited processes "
	       "(%.1f MiB), %lu of running processes kept\n",
	       dry_run ? "would remove" : "removed", removed,
	       (double)bytes / 1048576.0, kept);
	return 0;
}
