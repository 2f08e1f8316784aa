/*
 * gc.c — removal of rings whose process has exited (see gc.h).
 */
#include "cmd/gc.h"
#include "cmd/usage.h"
#include "util/cli.h"

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
#include "util/control.h"
#include "util/procstat.h"

enum { OPT_SHM_DIR = 1000, OPT_SOCKET };

/* The ring's creation time on CLOCK_MONOTONIC, or 0 when its header cannot
 * be read. */
static uint64_t gc_ring_start(const char *path)
{
	struct ring_header h;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	ssize_t n;

	if (fd < 0)
		return 0;
	n = pread(fd, &h, sizeof(h), 0);
	(void)close(fd);
	if (n != (ssize_t)sizeof(h) || h.magic != RING_MAGIC)
		return 0;
	return h.start_monotonic_ns;
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
		struct procstat ps;
		int pid;

		if (sscanf(de->d_name, "profshim.%d.", &pid) != 1 || pid <= 0)
			continue;
		(void)snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (lstat(path, &st) < 0 || !S_ISREG(st.st_mode) ||
		    st.st_uid != getuid())
			continue;
		/* Kept while its process runs; gone, or the pid given to a
		 * process started after the ring was made, it has exited (a
		 * zombie counts as running: its parent may still read it). */
		if (procstat_read(pid, &ps) == 0 &&
		    !procstat_started_after(&ps, gc_ring_start(path))) {
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

/*
 * A running collector drains the rings of exited processes it reads and
 * removes them itself: let it, before removing what is left. Returns 0 to
 * go on, 1 when nothing may be removed (said why).
 */
static int gc_ask_collector(const char *socket)
{
	char path[256], err[512];
	FILE *sink = fopen("/dev/null", "we");
	int status = 0;

	if (sink && control_path(socket, 0, path, sizeof(path)) == 0) {
		int r = control_call(path, "reap", sink, err, sizeof(err));

		if (r == 0)
			printf("profshim-collector gc: the running collector "
			       "drained the rings it reads first\n");
		/* It may not have read a ring of an exited process yet:
		 * removing that ring would lose its requests. */
		if (r == CONTROL_SILENT) {
			fprintf(stderr, CLI_PROG " gc: %s; nothing removed\n",
				err);
			status = 1;
		}
	}
	if (sink)
		fclose(sink);
	return status;
}

int gc_main(int argc, char **argv)
{
	static const struct option opts[] = {
		CLI_FLAG("dry-run", 'n'), CLI_FLAG("verbose", 'v'),
		CLI_ARG("shm-dir", OPT_SHM_DIR), CLI_ARG("socket", OPT_SOCKET),
		CLI_HELP, {0},
	};
	const char *dir = "/dev/shm", *socket = NULL;
	bool dry = false, verbose = false;
	int c;

	while ((c = getopt_long(argc, argv, "+nvh", opts, NULL)) != -1) {
		if (c == 'n')
			dry = true;
		else if (c == 'v')
			verbose = true;
		else if (c == OPT_SHM_DIR)
			dir = optarg;
		else if (c == OPT_SOCKET)
			socket = optarg;
		else
			return cli_help_or_bad(&usage_cli, c, "%s",
					       "bad option for gc");
	}
	if (optind < argc)
		return cli_usage_error(&usage_cli, "gc takes no argument '%s'",
				       argv[optind]);
	if (!dry && gc_ask_collector(socket) != 0)
		return 1;
	return gc_run(dir, dry, verbose);
}
