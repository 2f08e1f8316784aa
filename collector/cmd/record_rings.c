/*
 * record_rings.c — the rings `record` reads and the processes behind them:
 * which rings are this recording's (every ring of the uid, a --pid tree or
 * one --ring file), attaching, draining, announcing requests as they
 * complete, and detaching a ring once its process has ended and it is
 * drained dry.
 */
#include "cmd/record_impl.h"

#include <dirent.h>
#include <errno.h>
#include <stddef.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "ingest/reader.h"
#include "model/stats.h"
#include "symbols/symbols.h"
#include "util/clock.h"
#include "util/procstat.h"

/* "attached to pid" lines printed before going quiet. */
#define RECORD_ATTACH_LINES 16

bool record_proc(int pid, int *ret_ppid, unsigned long long *ret_start)
{
	struct procstat ps;

	if (procstat_read(pid, &ps) < 0)
		return false;
	if (ret_ppid)
		*ret_ppid = ps.ppid;
	if (ret_start)
		*ret_start = ps.start_ticks;
	return procstat_alive(&ps);
}

/* True when pid is root or descends from it (live processes only). */
static bool record_descends(int pid, int root)
{
	for (int depth = 0; depth < 64 && pid > 1; depth++) {
		int ppid;

		if (pid == root)
			return true;
		if (!record_proc(pid, &ppid, NULL))
			return false;
		pid = ppid;
	}
	return pid == root;
}

static bool record_tracked(struct recorder *rc, int pid)
{
	for (size_t i = 0; i < rc->natt; i++)
		if ((int)reader_pid(rc->att[i].r) == pid)
			return true;
	return false;
}

/*
 * With --pid, a ring belongs to the recording when its process is the root
 * or descends from it. A process that has already exited (a worker that
 * served and quit before the first scan) no longer has a /proc entry, so the
 * parent recorded in its ring is checked then; and for a live process whose
 * parent has exited (it was reparented). A live process with a live parent
 * that is not in the tree is not taken on its ring's word.
 */
static bool record_wanted(struct recorder *rc, const struct reader *r)
{
	int pid = (int)reader_pid(r), ppid = (int)reader_ppid(r);
	int root = rc->o->pid;

	if (pid == root || record_descends(pid, root))
		return true;
	if (record_proc(pid, NULL, NULL) && record_proc(ppid, NULL, NULL))
		return false;
	return ppid == root || record_descends(ppid, root) ||
	       record_tracked(rc, ppid);
}

/* The pid of a ring's file name profshim.<pid>.<n>, or 0. */
static int record_name_pid(const char *name)
{
	unsigned pid, n;
	char end;

	if (sscanf(name, "profshim.%u.%u%c", &pid, &n, &end) != 2 ||
	    pid > INT_MAX)
		return 0;
	return (int)pid;
}

/* Remember the users process pid runs as now (when it still exists). */
static bool record_see(struct recorder *rc, int pid,
		       uint32_t uids[CREDS_UIDS])
{
	struct record_seen *e = NULL;

	if (creds_proc_uids(pid, uids) < 0)
		return false;
	if (!rc->seen)
		rc->seen = calloc(RECORD_SEEN_MAX, sizeof(*rc->seen));
	if (!rc->seen)
		return true;
	for (size_t i = 0; i < RECORD_SEEN_MAX && i < rc->nseen && !e; i++)
		if (rc->seen[i].pid == pid)
			e = &rc->seen[i];
	if (!e)
		e = &rc->seen[rc->nseen++ % RECORD_SEEN_MAX];
	e->pid = pid;
	memcpy(e->uid, uids, sizeof(e->uid));
	return true;
}

/*
 * Who may own the ring at path, of process pid (from its file name; 0 when
 * the name does not give one). An ordinary user's collector reads its own
 * user's rings. A privileged one reads root's, and those of a user the
 * process runs as or, once it has exited, was seen running as; and the one
 * file --ring names, whoever owns it: the user chose that file.
 */
static void record_owners(struct recorder *rc, const char *path, int pid,
			  struct reader_owners *ret)
{
	uint32_t uids[CREDS_UIDS];
	struct stat st;

	memset(ret, 0, sizeof(*ret));
	ret->pid = (uint32_t)pid;
	if (!rc->privileged) {
		reader_owners_add(ret, (uint32_t)getuid());
		return;
	}
	ret->privileged = true;
	reader_owners_add(ret, 0);
	if (rc->o->ring && lstat(path, &st) == 0)
		reader_owners_add(ret, (uint32_t)st.st_uid);
	if (pid <= 0)
		return;
	if (record_see(rc, pid, uids)) {
		for (int i = 0; i < CREDS_UIDS; i++)
			reader_owners_add(ret, uids[i]);
		return;
	}
	for (size_t i = 0; rc->seen && i < RECORD_SEEN_MAX && i < rc->nseen;
	     i++)
		if (rc->seen[i].pid == pid)
			for (int k = 0; k < CREDS_UIDS; k++)
				reader_owners_add(ret, rc->seen[i].uid[k]);
}

/* A ring of this recording refused: kept for its last line. */
static void record_refuse(struct recorder *rc, const char *path,
			  const struct reader_owners *ow)
{
	struct stat st;

	if (rc->refused < RECORD_REFUSED_NAMED)
		(void)snprintf(rc->refused_path[rc->refused],
			       sizeof(rc->refused_path[0]), "%s", path);
	rc->refused++;
	if (lstat(path, &st) == 0 && S_ISREG(st.st_mode) &&
	    !(st.st_mode & 077)) {
		if (rc->refused > 1 && rc->refused_owner != st.st_uid)
			rc->refused_owners = true;
		rc->refused_owner = (uint32_t)st.st_uid;
		if (ow->privileged)
			rc->refused_foreign = true;
	}
}

void record_say_refused(struct recorder *rc, bool empty)
{
	char names[RECORD_REFUSED_NAMED * 260] = "", who[64];
	size_t at = 0;

	if (!rc->refused)
		return;
	for (unsigned long i = 0; i < rc->refused && i < RECORD_REFUSED_NAMED;
	     i++) {
		int k = snprintf(names + at, sizeof(names) - at, "%s%s",
				 i ? ", " : "", rc->refused_path[i]);

		if (k < 0 || (size_t)k >= sizeof(names) - at)
			break;
		at += (size_t)k;
	}
	creds_user_name(rc->refused_owner, who, sizeof(who));
	fprintf(stderr,
		"profshim-collector: %s%lu ring%s of the recorded processes "
		"%s not read and stay%s where %s: %s%s; ",
		empty ? "nothing recorded: " : "", rc->refused,
		rc->refused == 1 ? "" : "s", rc->refused == 1 ? "was" : "were",
		rc->refused == 1 ? "s" : "", rc->refused == 1 ? "it is" :
		"they are", names,
		rc->refused > RECORD_REFUSED_NAMED ? ", ..." : "");
	if (rc->refused_foreign)
		fprintf(stderr, "a ring that is not its process's own (its "
				"owner neither root nor a user the process runs "
				"as, or its header naming another pid) is never "
				"read; the lines above say whose it is; remove "
				"it\n");
	else if (rc->privileged)
		fprintf(stderr, "the lines above say why\n");
	else if (rc->refused_owner == 0 || rc->refused_owners)
		fprintf(stderr, "run the collector as root (sudo) to read "
				"%s\n", rc->refused == 1 ? "it" : "them");
	else
		fprintf(stderr, "run the collector as root (sudo), or as %s "
				"(the user that owns %s)\n", who,
			rc->refused == 1 ? "it" : "them");
}

static bool record_ignored(struct recorder *rc, const char *name)
{
	for (size_t i = 0; i < rc->nignored; i++)
		if (strcmp(rc->ignored[i], name) == 0)
			return true;
	return false;
}

static void record_ignore(struct recorder *rc, const char *name)
{
	char **n = realloc(rc->ignored, (rc->nignored + 1) * sizeof(*n));

	if (!n)
		return;
	rc->ignored = n;
	rc->ignored[rc->nignored] = strdup(name);
	if (rc->ignored[rc->nignored])
		rc->nignored++;
}

static bool record_ring_name(const char *name)
{
	const char *p = name;
	int dots = 0;

	if (strncmp(p, "profshim.", 9) != 0)
		return false;
	for (p += 9; *p; p++) {
		if (*p == '.')
			dots++;
		else if (*p < '0' || *p > '9')
			return false;
	}
	return dots == 1 && p[-1] != '.';
}

void record_watch_start(struct recorder *rc)
{
	int fd;

	if (!rc->privileged || rc->o->ring)
		return;
	fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (fd < 0)
		return;
	/* The shim links each ring to its name (IN_CREATE), and hands it to
	 * a new user before the process becomes that user (IN_ATTRIB). */
	if (inotify_add_watch(fd, rc->o->shm_dir,
			      IN_CREATE | IN_MOVED_TO | IN_ATTRIB) < 0) {
		(void)close(fd);
		return;
	}
	rc->watch = fd;
}

/* Whether uids holds uid. */
static bool record_has_uid(const uint32_t uids[CREDS_UIDS], uint32_t uid)
{
	for (int i = 0; i < CREDS_UIDS; i++)
		if (uids[i] == uid)
			return true;
	return false;
}

/* A ring just made or handed over: see its process now, and again soon
 * when it does not run as the ring's owner yet. */
static void record_watch_ring(struct recorder *rc, const char *name)
{
	char path[512];
	uint32_t uids[CREDS_UIDS];
	struct stat st;
	int pid = record_name_pid(name);

	if (!record_ring_name(name) || pid <= 0 || !record_see(rc, pid, uids))
		return;
	(void)snprintf(path, sizeof(path), "%s/%s", rc->o->shm_dir, name);
	if (lstat(path, &st) < 0 || record_has_uid(uids, (uint32_t)st.st_uid) ||
	    rc->npending == RECORD_PENDING_MAX)
		return;
	rc->pending[rc->npending++] = (struct record_pending){
		.pid = pid, .owner = (uint32_t)st.st_uid,
		.until = clock_now_ns() + RECORD_PENDING_NS};
}

void record_watch(struct recorder *rc)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	uint32_t uids[CREDS_UIDS];
	uint64_t now;
	ssize_t n;

	if (rc->watch < 0)
		return;
	/* Bounded: a few reads of what is queued now. */
	for (int turn = 0; turn < 8; turn++) {
		n = read(rc->watch, buf, sizeof(buf));
		if (n <= 0)
			break;
		for (ssize_t at = 0;
		     at + (ssize_t)sizeof(struct inotify_event) <= n;) {
			const struct inotify_event *ev =
				(const struct inotify_event *)(buf + at);

			if (ev->len)
				record_watch_ring(rc, ev->name);
			at += (ssize_t)sizeof(*ev) + ev->len;
		}
	}
	now = clock_now_ns();
	for (size_t i = 0; i < rc->npending;) {
		struct record_pending *p = &rc->pending[i];

		if (!record_see(rc, p->pid, uids) ||
		    record_has_uid(uids, p->owner) || now > p->until)
			*p = rc->pending[--rc->npending];
		else
			i++;
	}
}

/* The shim appends to the module map after dlopen: copy it when it grew. */
static void record_refresh_modules(struct recorder *rc, struct attached *a)
{
	uint32_t n;

	if (reader_module_count(a->r) == a->nmods)
		return;
	n = reader_modules(a->r, rc->mods, RING_MODULES_MAX);
	if (stats_set_modules(rc->stats, a->proc, rc->mods, n) == 0)
		a->nmods = n;
}

void record_printable(const char *src, char *dst, size_t len)
{
	size_t i;

	for (i = 0; src[i] && i + 1 < len; i++)
		dst[i] = (unsigned char)src[i] < 0x20 || src[i] == 0x7f ? '?'
								 : src[i];
	dst[i] = '\0';
}

static int record_attach(struct recorder *rc, const char *path,
			 const char *name)
{
	struct reader_owners ow;
	struct attached *a;
	struct reader *r;
	char err[512];
	int pid, proc, npid = record_name_pid(name), e;
	struct procstat ps;
	bool reused;

	record_owners(rc, path, npid, &ow);
	e = reader_open_owned(path, &ow, &r, err, sizeof(err));
	if (e < 0) {
		/* With --pid, rings of unrelated processes (another user's,
		 * most often) are none of this recording's business. The
		 * scan passes only names record_ring_name() accepts. */
		if (!rc->o->pid || rc->o->ring ||
		    record_descends(npid, rc->o->pid)) {
			fprintf(stderr, "profshim-collector: skipping %s: %s\n",
				path, err);
			if (e == -EPERM)
				record_refuse(rc, path, &ow);
		}
		return -1;
	}
	pid = (int)reader_pid(r);
	/* A ring older than the running process of its pid was left by an
	 * earlier process the pid has since been given to: not of a --pid
	 * tree (nothing says whose child it was), and otherwise read as the
	 * ring of a process that has exited. */
	reused = procstat_read(pid, &ps) == 0 &&
		 procstat_started_after(&ps,
					reader_header(r)->start_monotonic_ns);
	if (rc->o->pid && !rc->o->ring &&
	    (reused || !record_wanted(rc, r))) {
		reader_close(r);
		return 0;
	}
	if (rc->natt == rc->att_cap) {
		size_t n = rc->att_cap ? rc->att_cap * 2 : 16;
		struct attached *na = realloc(rc->att, n * sizeof(*na));

		if (!na) {
			reader_close(r);
			return -1;
		}
		rc->att = na;
		rc->att_cap = n;
	}
	proc = stats_process(rc->stats, (uint32_t)pid, reader_ppid(r),
			     reader_exe(r));
	if (proc < 0) {
		reader_close(r);
		return -1;
	}
	{
		const struct ring_header *h = reader_header(r);

		stats_set_sampling(rc->stats, proc, h->clock, h->hz,
				   h->manual_hz);
	}
	a = &rc->att[rc->natt++];
	memset(a, 0, sizeof(*a));
	a->r = r;
	a->proc = proc;
	/* Its JIT code is named from /tmp/perf-PID.map when root or the
	 * ring's owner (the user it runs as) owns that file. */
	a->jit = symbols_jit_open(rc->syms, (uint32_t)pid, reader_uid(r));
	stats_set_jit(rc->stats, proc, a->jit);
	(void)snprintf(a->name, sizeof(a->name), "%s", name);
	if (rc->o->checkpoint > 0)
		reader_hold(r);
	if (rc->resume)
		record_resume_ring(rc, a);
	if (reused)
		a->starttime = ULLONG_MAX; /* no running process has it */
	else
		(void)record_proc(pid, NULL, &a->starttime);
	record_refresh_modules(rc, a);
	rc->saw_any = true;
	/* A pre-fork server may start thousands of processes: name the
	 * first few, then say once that the rest are in the profile. */
	if (++rc->attached <= RECORD_ATTACH_LINES) {
		char exe[RING_EXE_MAX];

		record_printable(reader_exe(r), exe, sizeof(exe));
		fprintf(stderr, "profshim-collector: attached to pid %d (%s)\n",
			pid, exe);
	} else if (rc->attached == RECORD_ATTACH_LINES + 1) {
		fprintf(stderr, "profshim-collector: attaching to more "
				"processes; the profile's \"processes\" lists "
				"them all\n");
	}
	return 1;
}

void record_scan(struct recorder *rc)
{
	const char *dir = rc->o->shm_dir;
	struct dirent *de;
	DIR *d;

	if (rc->o->ring) {
		if (rc->natt == 0 && !rc->saw_any) {
			const char *base = strrchr(rc->o->ring, '/');

			if (record_attach(rc, rc->o->ring,
					  base ? base + 1 : rc->o->ring) <= 0)
				rc->saw_any = true; /* nothing more to wait for */
		}
		return;
	}
	d = opendir(dir);
	if (!d)
		return;
	while ((de = readdir(d)) != NULL) {
		char path[512];
		bool known = false;

		if (!record_ring_name(de->d_name))
			continue;
		for (size_t i = 0; i < rc->natt && !known; i++)
			known = strcmp(rc->att[i].name, de->d_name) == 0;
		if (known || record_ignored(rc, de->d_name))
			continue;
		(void)snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (record_attach(rc, path, de->d_name) <= 0)
			record_ignore(rc, de->d_name);
	}
	closedir(d);
}

/*
 * Requests worth a line as they complete: every manual (?profile=1) one, on
 * stderr with the command that shows it; with --slow-ms, every slower one
 * as a JSON line on stdout, for scripts and log shippers.
 */
static void record_announce(struct recorder *rc, const struct reader_event *ev)
{
	bool manual = ev->flags & RING_REQ_MANUAL;
	bool slow = rc->o->slow_ms > 0 &&
		    (double)ev->duration_ns / 1e6 > rc->o->slow_ms;
	json_t *j;

	if (!manual && !slow)
		return;
	j = stats_json_last_request(rc->stats, rc->syms, 5);
	if (!j)
		return;
	if (manual)
		fprintf(stderr,
			"profshim-collector: profiled request %s: %s, %.3f ms, "
			"%" JSON_INTEGER_FORMAT " samples; see it with: "
			"profshim-collector report --request %s --format html "
			"--output request.html\n",
			json_string_value(json_object_get(j, "id")),
			json_string_value(json_object_get(j, "endpoint")),
			json_real_value(json_object_get(j, "duration")) * 1e3,
			json_integer_value(json_object_get(j, "samples")),
			json_string_value(json_object_get(j, "id")));
	if (slow) {
		char *line = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(9));

		if (line) {
			(void)puts(line);
			(void)fflush(stdout);
			free(line);
		}
	}
	json_decref(j);
}

static int record_event(void *arg, const struct reader_event *ev)
{
	struct attached *a = ((void **)arg)[1];
	struct recorder *rc = ((void **)arg)[0];
	int r = stats_event(rc->stats, a->proc, ev);

	if (r == 0 && ev->kind == READER_REQUEST)
		record_announce(rc, ev);
	return r;
}

/* kernel.perf_event_paranoid, or -1 when it cannot be read. */
static int record_perf_paranoid(void)
{
	FILE *f = fopen("/proc/sys/kernel/perf_event_paranoid", "r");
	int v = -1;

	if (f) {
		if (fscanf(f, "%d", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

/*
 * Say on stderr how a process takes its CPU samples, once per recording for
 * each distinct way (the engine, its rate, what refused perf): a fallback
 * below the asked rate, or kernel time left out, is then known before
 * anyone reads the profile.
 */
static void record_say_engine(struct recorder *rc, const struct attached *a,
			      const struct reader_engine *e, int paranoid)
{
	const struct ring_header *h = reader_header(a->r);
	char exe[RING_EXE_MAX], why[160] = "";

	if (h->clock != RING_CLOCK_CPU || e->engine == RING_ENGINE_NONE)
		return;
	/* Ways differ by the CPU clock's fields, not by the signal. */
	for (size_t i = 0; i < rc->nsaid; i++)
		if (memcmp(&rc->said[i], e, offsetof(struct reader_engine,
						      signo)) == 0)
			return;
	if (rc->nsaid == RECORD_ENGINES_SAID)
		return;
	rc->said[rc->nsaid++] = *e;
	record_printable(reader_exe(a->r), exe, sizeof(exe));
	if (e->error == EACCES && paranoid >= 0)
		(void)snprintf(why, sizeof(why),
			       "perf_event_open refused: kernel.perf_event_paranoid "
			       "is %d",
			       paranoid);
	else if (e->error == EPERM)
		(void)snprintf(why, sizeof(why),
			       "perf_event_open refused: Operation not permitted, "
			       "as a seccomp filter or a security module says");
	else if (e->error)
		(void)snprintf(why, sizeof(why), "perf_event_open: %s",
			       strerror((int)e->error));
	else
		(void)snprintf(why, sizeof(why), "PROFILING_CPU_ENGINE=timer");
	fprintf(stderr, "profshim-collector: pid %u (%s): ", reader_pid(a->r),
		exe);
	switch (e->engine) {
	case RING_ENGINE_PERF:
		fprintf(stderr, "CPU samples from perf task-clock counters, "
				"%u a CPU second\n", e->hz);
		break;
	case RING_ENGINE_PERF_USER:
		fprintf(stderr, "CPU samples from perf task-clock counters, "
				"%u a CPU second of user time; time in the "
				"kernel is not sampled (kernel.perf_event_paranoid "
				"is %d: as root, with CAP_PERFMON, or at 1 or "
				"less it would be)\n",
			e->hz, record_perf_paranoid());
		break;
	case RING_ENGINE_TIMER:
		fprintf(stderr, "CPU samples from POSIX CPU timers at the "
				"kernel's tick, %u a CPU second", e->hz);
		if (e->hz < h->hz)
			fprintf(stderr, " of the %u asked (the tick rate)",
				h->hz);
		fprintf(stderr, " (%s)\n", why);
		break;
	default:
		fprintf(stderr, "no CPU samples: no CPU clock could be set up "
				"(%s)\n", why);
		break;
	}
}

/*
 * Say on stderr, once per process, that it takes no stack samples and why
 * (the shim said so in its ring header): its requests are still counted
 * and timed, and a profile without stacks is otherwise a puzzle.
 */
static void record_say_aside(struct attached *a, const struct reader_engine *e)
{
	char exe[RING_EXE_MAX];

	if (e->sampling != RING_SAMPLING_ASIDE || a->said_aside)
		return;
	a->said_aside = true;
	record_printable(reader_exe(a->r), exe, sizeof(exe));
	fprintf(stderr, "profshim-collector: pid %u (%s) takes no stack "
			"samples: %s; its requests are still timed\n",
		reader_pid(a->r), exe, stats_aside_text(e->aside));
}

/* Drain one ring; returns records drained, or -1 when it was dropped. */
static int record_drain_one(struct recorder *rc, struct attached *a)
{
	void *arg[2] = {rc, a};
	struct reader_counters c;
	struct reader_engine e;
	int n, paranoid = -1;

	record_refresh_modules(rc, a);
	n = reader_drain(a->r, RECORD_BATCH, record_event, arg);
	reader_counters(a->r, &c);
	stats_set_counters(rc->stats, a->proc, &c);
	reader_engine(a->r, &e);
	if (stats_set_engine(rc->stats, a->proc, &e)) {
		/* Read once a change, not at every turn. */
		if (e.error) {
			paranoid = record_perf_paranoid();
			stats_set_paranoid(rc->stats, a->proc, paranoid);
		}
		record_say_engine(rc, a, &e, paranoid);
		record_say_aside(a, &e);
	}
	if (n == -EBADMSG) {
		fprintf(stderr, "profshim-collector: %s: %s; no longer reading it\n",
			reader_path(a->r), reader_error(a->r));
		return -1;
	}
	if (n == -ENOMEM) {
		fprintf(stderr, "profshim-collector: out of memory while "
				"aggregating; records left in the ring\n");
		return 0;
	}
	return n;
}

static void record_detach(struct recorder *rc, size_t i, bool remove_file)
{
	struct attached *a = &rc->att[i];

	stats_set_exited(rc->stats, a->proc);
	/* Its perf map is read to its end now: another process may get its
	 * pid and write a new one. */
	symbols_jit_exited(rc->syms, a->jit);
	if (remove_file)
		(void)unlink(reader_path(a->r));
	else
		record_ignore(rc, a->name);
	reader_close(a->r);
	rc->att[i] = rc->att[--rc->natt];
}

/*
 * Drain every ring once, one batch each, so a busy ring cannot starve the
 * loop's other work. With `dry`, each ring is drained until it has nothing
 * more to give, but for no more than one ring's worth of bytes, so a
 * writer as fast as the collector cannot keep the caller here: everything
 * committed before the call is read when it returns.
 */
size_t record_drain_all(struct recorder *rc, bool dry)
{
	size_t total = 0;

	for (size_t i = 0; i < rc->natt;) {
		struct attached *a = &rc->att[i];
		uint64_t from = reader_position(a->r);
		uint64_t limit = reader_header(a->r)->data_size;
		int n;

		while ((n = record_drain_one(rc, a)) == RECORD_BATCH && dry &&
		       reader_position(a->r) - from < limit)
			total += (size_t)n;
		if (n < 0) {
			record_detach(rc, i, false);
			continue;
		}
		total += (size_t)n;
		i++;
	}
	if (total)
		rc->dirty = true;
	return total;
}

/*
 * Detach rings whose process has ended, after draining them dry. With
 * checkpoints, a ring file is removed only once a checkpoint holds all of
 * it; until one can be written, the ring stays.
 */
void record_reap(struct recorder *rc)
{
	size_t ended = 0;

	for (size_t i = 0; i < rc->natt; i++) {
		struct attached *a = &rc->att[i];
		unsigned long long start = 0;
		int pid = (int)reader_pid(a->r), n;
		bool alive = record_proc(pid, NULL, &start) &&
			     (a->starttime == 0 || start == a->starttime);

		if (alive)
			continue;
		while ((n = record_drain_one(rc, a)) > 0)
			;
		a->ended = true;
		a->intact = n == 0;
		ended++;
	}
	if (!ended)
		return;
	if (rc->o->checkpoint > 0) {
		rc->dirty = true;
		if (record_checkpoint(rc) < 0)
			return;
	}
	for (size_t i = 0; i < rc->natt;) {
		if (rc->att[i].ended)
			record_detach(rc, i, rc->att[i].intact);
		else
			i++;
	}
}

bool record_done(struct recorder *rc)
{
	if (rc->o->ring)
		return rc->saw_any && rc->natt == 0;
	if (rc->o->pid)
		return !record_proc(rc->o->pid, NULL, NULL) && rc->natt == 0;
	return false;
}

/*
 * Before answering for the profile: attach rings made since the last scan
 * and drain every ring, so an answer holds every request completed before
 * it was asked for.
 */
void record_catch_up(struct recorder *rc)
{
	record_scan(rc);
	(void)record_drain_all(rc, true);
}
