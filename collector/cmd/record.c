/*
 * record.c — the collector's main loop (see record.h).
 *
 * Single-threaded: every ~10 ms it drains each attached ring, every 100 ms
 * it looks for new rings and for processes that have ended, and in between
 * it answers control requests. A ring whose process has ended is drained to
 * the last record, its module map kept for symbols, and its file removed.
 */
#include "cmd/record.h"
#include "util/clock.h"
#include "util/atomic_file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "util/control.h"
#include "services/httpapi.h"
#include "formats/prom.h"
#include "services/push.h"
#include "ingest/reader.h"
#include "model/stats.h"
#include "symbols/symbols.h"

/* Records drained from one ring before the main loop looks again at
 * checkpoints and control requests: small enough that a held ring gets its
 * early checkpoint before it fills (8192 samples are about 400 KB). */
#define RECORD_BATCH 8192
#define RECORD_SCAN_NS 100000000ull
/* An idle loop waits 10 ms, then 20 ms while turns find nothing to read. A ring must hold what arrives during the longest wait, also at
 * the start of a burst after a quiet spell: with 100 ms, the per-sample
 * benchmark's bursts (600,000 samples a second) overflowed the default
 * ring and 80.6-82.6% of samples were recorded, against 88.7-100.2% at
 * 20 ms (and 89.5-100.2% with a fixed 10 ms wait). Control requests and
 * the HTTP API wake it at once. */
#define RECORD_IDLE_MIN_MS 10
#define RECORD_IDLE_MAX_MS 20
/* A ring more than a quarter full of records read but not yet checkpointed
 * gets a checkpoint early, at most this often. */
#define RECORD_PRESSED_NS 20000000ull
#define RECORD_CHECKPOINT_FORMAT 1

struct attached {
	struct reader *r;
	char name[128];
	int proc;
	uint32_t nmods;
	unsigned long long starttime;
	bool ended;       /* its process is gone and the ring drained dry */
	bool intact;      /* ... and nothing in it was corrupt */
};

/* "attached to pid" lines printed before going quiet. */
#define RECORD_ATTACH_LINES 16

struct recorder {
	const struct record_opts *o;
	struct stats *stats;
	struct symbols *syms;
	struct attached *att;
	size_t natt, att_cap;
	char **ignored;          /* ring names seen and not ours */
	size_t nignored;
	int ctl;
	struct httpapi *http;    /* the HTTP API, or NULL */
	struct push *push;       /* pushes to a store, or NULL */
	bool saw_any;
	unsigned long attached; /* processes attached so far */
	json_t *resume;          /* the rings of the checkpoint resumed from */
	uint64_t last_checkpoint;
	bool dirty;              /* read or changed since the last checkpoint */
	bool checkpoint_failed;  /* said once until one succeeds again */
	struct ring_module mods[RING_MODULES_MAX];
};

static volatile sig_atomic_t record_stop;

static void record_on_signal(int sig)
{
	(void)sig;
	record_stop = 1;
}

/*
 * Read state and start time of pid from /proc. Returns false when the
 * process does not exist or is a zombie (it has ended, its parent has not
 * yet reaped it).
 */
static bool record_proc(int pid, int *ret_ppid, unsigned long long *ret_start)
{
	char path[64], buf[1024], *p;
	FILE *f;
	size_t n;
	char state;
	int ppid;
	unsigned long long start = 0;

	(void)snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "re");
	if (!f)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 2, "%c %d", &state, &ppid) != 2)
		return false;
	/* Field 22 is the start time; p + 2 is field 3. */
	for (int field = 3; field < 22 && p; field++)
		p = strchr(p + 1, ' ');
	if (p)
		start = strtoull(p + 1, NULL, 10);
	if (ret_ppid)
		*ret_ppid = ppid;
	if (ret_start)
		*ret_start = start;
	return state != 'Z' && state != 'X';
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
 * parent recorded in its ring is checked too.
 */
static bool record_wanted(struct recorder *rc, const struct reader *r)
{
	int pid = (int)reader_pid(r), ppid = (int)reader_ppid(r);
	int root = rc->o->pid;

	return pid == root || ppid == root || record_descends(pid, root) ||
	       record_descends(ppid, root) || record_tracked(rc, ppid);
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

/* Copy text from a ring for a terminal: control bytes become '?'. */
static void record_printable(const char *src, char *dst, size_t len)
{
	size_t i;

	for (i = 0; src[i] && i + 1 < len; i++)
		dst[i] = (unsigned char)src[i] < 0x20 || src[i] == 0x7f ? '?'
								 : src[i];
	dst[i] = '\0';
}

/*
 * A ring the interrupted recording was reading (same file name, pid and
 * creation time): go on from the position its checkpoint recorded.
 */
static void record_resume_ring(struct recorder *rc, struct attached *a)
{
	const struct ring_header *h = reader_header(a->r);
	json_t *e;
	size_t i;

	json_array_foreach(rc->resume, i, e) {
		json_int_t pid, start, pos, samples, bytes, unresolved;
		const char *name;
		struct reader_counters c = {0};

		if (json_unpack(e, "{s:s, s:I, s:I, s:I, s:I, s:I, s:I}", "name",
				&name, "pid", &pid, "start_ns", &start, "position",
				&pos, "samples", &samples, "sample_bytes", &bytes,
				"unresolved", &unresolved) < 0 ||
		    strcmp(name, a->name) != 0 || (uint32_t)pid != h->pid ||
		    (uint64_t)start != h->start_realtime_ns)
			continue;
		c.samples = (uint64_t)samples;
		c.sample_bytes = (uint64_t)bytes;
		c.unresolved_samples = (uint64_t)unresolved;
		if (reader_resume(a->r, (uint64_t)pos, &c) < 0)
			fprintf(stderr,
				"profshim-collector: %s: the checkpoint's read "
				"position is no longer in the ring; reading on "
				"from the ring's own\n",
				reader_path(a->r));
		(void)json_array_remove(rc->resume, i);
		return;
	}
}

/*
 * After the first scan of a resumed recording, the checkpoint's rings not
 * found again are gone: removed after being drained dry (the checkpoint
 * says "ended"), or while no collector ran, and then what their processes
 * wrote after the checkpoint is lost, which is said. A process no longer
 * running is marked exited, not left "exited": false for ever.
 */
static void record_resume_gone(struct recorder *rc)
{
	json_t *e;
	size_t i;

	json_array_foreach(rc->resume, i, e) {
		json_int_t pid = json_integer_value(json_object_get(e, "pid"));
		const char *name = json_string_value(json_object_get(e, "name"));
		char shown[128];
		int proc;

		record_printable(name ? name : "?", shown, sizeof(shown));
		if (!json_is_true(json_object_get(e, "ended")))
			fprintf(stderr,
				"profshim-collector: ring %s of pid %lld is "
				"gone; what it held after the checkpoint is "
				"lost\n",
				shown, (long long)pid);
		if (pid <= 0 || pid > INT_MAX || record_proc((int)pid, NULL, NULL))
			continue;
		proc = stats_process_find(rc->stats, (uint32_t)pid);
		if (proc >= 0) {
			stats_set_exited(rc->stats, proc);
			rc->dirty = true;
		}
	}
}

static int record_attach(struct recorder *rc, const char *path,
			 const char *name)
{
	struct attached *a;
	struct reader *r;
	char err[200];
	int pid, proc;

	if (reader_open(path, &r, err, sizeof(err)) < 0) {
		/* With --pid, rings of unrelated processes (another user's,
		 * most often) are none of this recording's business. The
		 * scan passes only names record_ring_name() accepts. */
		if (!rc->o->pid || rc->o->ring ||
		    record_descends(atoi(name + strlen("profshim.")),
				    rc->o->pid))
			fprintf(stderr, "profshim-collector: skipping %s: %s\n",
				path, err);
		return -1;
	}
	pid = (int)reader_pid(r);
	if (rc->o->pid && !rc->o->ring && !record_wanted(rc, r)) {
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

		stats_set_sampling(rc->stats, proc, h->clock, h->hz);
	}
	a = &rc->att[rc->natt++];
	memset(a, 0, sizeof(*a));
	a->r = r;
	a->proc = proc;
	(void)snprintf(a->name, sizeof(a->name), "%s", name);
	if (rc->o->checkpoint > 0)
		reader_hold(r);
	if (rc->resume)
		record_resume_ring(rc, a);
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

static void record_scan(struct recorder *rc)
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
	j = stats_last_request(rc->stats, rc->syms, 5);
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

/* Drain one ring; returns records drained, or -1 when it was dropped. */
static int record_drain_one(struct recorder *rc, struct attached *a)
{
	void *arg[2] = {rc, a};
	struct reader_counters c;
	int n;

	record_refresh_modules(rc, a);
	n = reader_drain(a->r, RECORD_BATCH, record_event, arg);
	reader_counters(a->r, &c);
	stats_set_counters(rc->stats, a->proc, &c);
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
static size_t record_drain_all(struct recorder *rc, bool dry)
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

static int record_checkpoint(struct recorder *rc);

/*
 * Detach rings whose process has ended, after draining them dry. With
 * checkpoints, a ring file is removed only once a checkpoint holds all of
 * it; until one can be written, the ring stays.
 */
static void record_reap(struct recorder *rc)
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

static bool record_done(struct recorder *rc)
{
	if (rc->o->ring)
		return rc->saw_any && rc->natt == 0;
	if (rc->o->pid)
		return !record_proc(rc->o->pid, NULL, NULL) && rc->natt == 0;
	return false;
}

/*
 * The profile JSON as text, with `checkpoint` (a reference this takes) as
 * its "checkpoint" object when it is not NULL. Checkpoints are written
 * compact: they are rewritten every second and their state is mostly
 * numbers.
 */
static char *record_dumps(struct recorder *rc, const char *endpoint,
			  const char *function, json_t *checkpoint)
{
	json_t *j = stats_json(rc->stats, rc->syms, endpoint, function);
	char *s = NULL;

	if (j && checkpoint)
		json_object_set(j, "checkpoint", checkpoint);
	if (j)
		s = json_dumps(j, checkpoint ? JSON_COMPACT : JSON_INDENT(2));
	json_decref(j);
	json_decref(checkpoint);
	return s;
}

static int record_fill(FILE *out, void *arg)
{
	const char *s = arg;

	return fputs(s, out) >= 0 && fputc('\n', out) != EOF ? 0 : -EIO;
}

/*
 * Write the profile (and `checkpoint`, as record_dumps() takes it) to path
 * atomically (atomic_file.h).
 */
static int record_write(struct recorder *rc, const char *path,
			json_t *checkpoint, char *err, size_t errlen)
{
	char *s = record_dumps(rc, NULL, NULL, checkpoint);
	int r;

	if (!s) {
		(void)snprintf(err, errlen, "out of memory building the JSON");
		return -1;
	}
	r = atomic_file_write(path, record_fill, s, err, errlen);
	free(s);
	return r < 0 ? -1 : 0;
}

/*
 * Before answering for the profile: attach rings made since the last scan
 * and drain every ring, so an answer holds every request completed before
 * it was asked for.
 */
static void record_catch_up(struct recorder *rc)
{
	record_scan(rc);
	(void)record_drain_all(rc, true);
}

/* The profile now (httpapi_ops.profile). */
static json_t *record_profile(void *arg, const char *endpoint,
			      const char *function)
{
	struct recorder *rc = arg;

	record_catch_up(rc);
	return stats_json(rc->stats, rc->syms, endpoint, function);
}

/* The profile's summary now (httpapi_ops.summary). */
static json_t *record_summary(void *arg)
{
	struct recorder *rc = arg;

	record_catch_up(rc);
	return stats_json_summary(rc->stats);
}

static json_t *record_snapshot(void *arg)
{
	return record_profile(arg, NULL, NULL);
}

/* The profile as it stands, without reading more (push_finish()'s view:
 * the profile written at the end holds exactly this). */
static json_t *record_snapshot_as_written(void *arg)
{
	struct recorder *rc = arg;

	return stats_json(rc->stats, rc->syms, NULL, NULL);
}

static void record_reset_stats(void *arg)
{
	struct recorder *rc = arg;

	record_catch_up(rc);
	/* What was sampled since the last push goes out before it is
	 * cleared. */
	if (rc->push)
		push_reset(rc->push, clock_now_ns(), record_snapshot, rc);
	stats_reset(rc->stats);
	rc->dirty = true;
}

static int record_save(void *arg, const char *path, char *err, size_t errlen)
{
	struct recorder *rc = arg;

	record_catch_up(rc);
	return record_write(rc, path, NULL, err, errlen);
}

/* The collector's own metrics (httpapi_ops.metrics). */
static int record_metrics(void *arg, FILE *out)
{
	struct recorder *rc = arg;
	struct prom_collector pc = {.rings = rc->natt, .push = rc->push};

	if (rc->push) {
		struct push_counters n;

		push_counters(rc->push, &n);
		pc.push_sent_bodies = n.sent_bodies;
		pc.push_sent_samples = n.sent_samples;
		pc.push_dropped_bodies = n.dropped_bodies;
		pc.push_dropped_samples = n.dropped_samples;
		pc.push_failures = n.failures;
		pc.push_queued_bodies = n.queued_bodies;
	}
	return prom_write_collector(&pc, out);
}

static void record_control(struct recorder *rc)
{
	char req[4200], err[512];
	int fd;

	while ((fd = control_accept(rc->ctl, req, sizeof(req))) > 0) {
		char *fields[3] = {req, NULL, NULL};
		char *s;

		for (int i = 1; i < 3; i++) {
			char *tab = fields[i - 1] ? strchr(fields[i - 1], '\t') : NULL;

			if (tab) {
				*tab = '\0';
				fields[i] = tab + 1;
			}
		}
		if (strcmp(fields[0], "dump") == 0) {
			record_catch_up(rc);
			s = record_dumps(rc,
					 fields[1] && *fields[1] ? fields[1] : NULL,
					 fields[2] && *fields[2] ? fields[2] : NULL,
					 NULL);
			if (s) {
				size_t len = strlen(s);

				s[len] = '\n';
				control_reply(fd, 1, s, len + 1);
				free(s);
			} else {
				control_reply(fd, 0, "out of memory", 13);
			}
		} else if (strcmp(fields[0], "reap") == 0) {
			/* gc asks first: rings of exited processes are
			 * drained, checkpointed and removed here, not lost. */
			record_scan(rc);
			record_reap(rc);
			control_reply(fd, 1, "", 0);
		} else if (strcmp(fields[0], "reset") == 0) {
			record_reset_stats(rc);
			control_reply(fd, 1, "", 0);
		} else if (strcmp(fields[0], "save") == 0 && fields[1] &&
			   fields[1][0] == '/') {
			if (record_save(rc, fields[1], err, sizeof(err)) == 0)
				control_reply(fd, 1, "", 0);
			else
				control_reply(fd, 0, err, strlen(err));
		} else {
			control_reply(fd, 0, "unknown request", 15);
		}
	}
}

/*
 * Write a checkpoint to the output file, then give each ring back the space
 * of the records it holds. Returns 0, or -1 when it could not be written
 * (said once until a checkpoint succeeds again); the rings then keep their
 * records.
 */
static int record_checkpoint(struct recorder *rc)
{
	uint64_t *pos = calloc(rc->natt + 1, sizeof(*pos));
	json_t *rings = json_array(), *state = stats_state_json(rc->stats);
	json_t *ck = NULL;
	char err[512];
	int r = -1;

	rc->last_checkpoint = clock_now_ns();
	if (!pos || !rings || !state) {
		(void)snprintf(err, sizeof(err), "out of memory");
		goto out;
	}
	for (size_t i = 0; i < rc->natt; i++) {
		struct reader_counters c;

		pos[i] = reader_position(rc->att[i].r);
		reader_counters(rc->att[i].r, &c);
		json_array_append_new(
			rings,
			json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:b}",
				  "name", rc->att[i].name, "pid",
				  (json_int_t)reader_pid(rc->att[i].r), "start_ns",
				  (json_int_t)reader_header(rc->att[i].r)
					  ->start_realtime_ns,
				  "position", (json_int_t)pos[i], "samples",
				  (json_int_t)c.samples, "sample_bytes",
				  (json_int_t)c.sample_bytes, "unresolved",
				  (json_int_t)c.unresolved_samples,
				  /* drained dry, about to be removed */
				  "ended", rc->att[i].ended));
	}
	ck = json_pack("{s:i, s:O, s:O}", "format", RECORD_CHECKPOINT_FORMAT,
		       "rings", rings, "state", state);
	if (!ck) {
		(void)snprintf(err, sizeof(err), "out of memory");
		goto out;
	}
	if (record_write(rc, rc->o->out, ck, err, sizeof(err)) < 0)
		goto out;
	for (size_t i = 0; i < rc->natt; i++)
		reader_release(rc->att[i].r, pos[i]);
	rc->dirty = false;
	if (rc->checkpoint_failed)
		fprintf(stderr, "profshim-collector: checkpoints to %s work "
				"again\n", rc->o->out);
	rc->checkpoint_failed = false;
	r = 0;
out:
	if (r < 0 && !rc->checkpoint_failed) {
		fprintf(stderr,
			"profshim-collector: checkpoint: %s; the rings keep "
			"what is not saved yet (and drop new records once "
			"full); retrying\n",
			err);
		rc->checkpoint_failed = true;
	}
	json_decref(rings);
	json_decref(state);
	free(pos);
	return r;
}

/* Time for a checkpoint: something changed and the interval is over, or a
 * ring is more than a quarter full of records only the collector holds. */
static bool record_checkpoint_due(struct recorder *rc, uint64_t now)
{
	uint64_t since = now - rc->last_checkpoint;

	if (rc->o->checkpoint <= 0 || !rc->dirty)
		return false;
	if ((double)since / 1e9 >= rc->o->checkpoint)
		return true;
	if (since < RECORD_PRESSED_NS)
		return false;
	for (size_t i = 0; i < rc->natt; i++)
		if (reader_held(rc->att[i].r) >
		    reader_header(rc->att[i].r)->data_size / 4)
			return true;
	return false;
}

/*
 * When the output file is a checkpoint (a recording killed before it could
 * finish), take up its state and ring positions. A file that is not a
 * checkpoint is left to be overwritten as before; a checkpoint that cannot
 * be read stops the collector rather than lose it.
 */
static int record_resume(struct recorder *rc)
{
	json_t *root, *ck, *rings, *state;
	json_error_t je;
	char err[300];
	uint64_t reqs, samples, eps;
	int r;

	root = json_load_file(rc->o->out, 0, &je);
	ck = root ? json_object_get(root, "checkpoint") : NULL;
	if (!ck) {
		json_decref(root);
		return 0;
	}
	rings = json_object_get(ck, "rings");
	state = json_object_get(ck, "state");
	if (json_integer_value(json_object_get(ck, "format")) !=
		    RECORD_CHECKPOINT_FORMAT ||
	    !json_is_array(rings) || !json_is_object(state)) {
		(void)snprintf(err, sizeof(err), "not a checkpoint this "
						 "version reads");
		r = -EINVAL;
	} else {
		r = stats_state_load(rc->stats, state, err, sizeof(err));
	}
	if (r < 0) {
		fprintf(stderr,
			"profshim-collector: cannot resume the recording in "
			"%s: %s; move it away to start a new one\n",
			rc->o->out, err);
		json_decref(root);
		return -1;
	}
	rc->resume = json_incref(rings);
	json_decref(root);
	stats_totals(rc->stats, &reqs, &samples, &eps);
	fprintf(stderr,
		"profshim-collector: resuming the interrupted recording in %s "
		"(%llu requests, %llu samples so far)\n",
		rc->o->out, (unsigned long long)reqs,
		(unsigned long long)samples);
	return 0;
}

/*
 * Start the HTTP API and the pushes the options ask for. Returns 0, or -1
 * after saying why on stderr.
 */
static int record_start_services(struct recorder *rc)
{
	const struct record_opts *o = rc->o;
	char err[512];
	int r;

	if (o->http) {
		const struct httpapi_opts ho = {.listen = o->http,
						.key_file = o->api_key_file,
						.save_dir = o->save_dir};
		const struct httpapi_ops ops = {.arg = rc,
						.profile = record_profile,
						.summary = record_summary,
						.reset = record_reset_stats,
						.save = record_save,
						.metrics = record_metrics};

		r = httpapi_start(&rc->http, &ho, &ops, err, sizeof(err));
		if (r < 0) {
			fprintf(stderr, "profshim-collector: --http: %s\n", err);
			return -1;
		}
		fprintf(stderr,
			"profshim-collector: HTTP API on %s (port %u)\n",
			o->http, httpapi_port(rc->http));
	}
	if (o->push_url) {
		const char *token = getenv("PYROSCOPE_AUTH_TOKEN");
		const struct push_opts po = {
			.url = o->push_url, .app = o->push_app,
			.tags = o->push_tags, .ntags = o->push_ntags,
			.interval = o->push_interval, .format = o->push_format,
			.token = token && *token ? token : NULL};

		r = push_new(&rc->push, &po, err, sizeof(err));
		if (r < 0) {
			fprintf(stderr, "profshim-collector: --push: %s\n", err);
			return -1;
		}
		/* The baseline, before anything more is read: what a resumed
		 * checkpoint holds was pushed by the run that wrote it, what
		 * the rings hold now was not. */
		push_step(rc->push, clock_now_ns(), record_snapshot_as_written,
			  rc);
	}
	return 0;
}

/* A push is queued or in flight: libcurl is stepped from the loop, so the
 * loop keeps its shortest wait until the transfer is done. */
static bool record_push_busy(const struct recorder *rc)
{
	struct push_counters n;

	if (!rc->push)
		return false;
	push_counters(rc->push, &n);
	return n.queued_bodies > 0;
}

int record_run(const struct record_opts *o)
{
	struct recorder rc = {.o = o, .ctl = -1};
	char path[256], err[512];
	uint64_t start = clock_now_ns(), last_scan = 0;
	uint64_t reqs, samples, eps;
	int idle_ms = RECORD_IDLE_MIN_MS;
	bool ctl_maybe = true;
	struct sigaction sa;
	int r, status = 0;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = record_on_signal;
	sigemptyset(&sa.sa_mask);
	(void)sigaction(SIGINT, &sa, NULL);
	(void)sigaction(SIGTERM, &sa, NULL);
	(void)signal(SIGPIPE, SIG_IGN);

	r = control_path(o->socket, 1, path, sizeof(path));
	if (r == 0)
		r = rc.ctl = control_listen(path);
	if (r == -EADDRINUSE) {
		fprintf(stderr,
			"profshim-collector: another collector is running (it "
			"answers at %s); stop it, or give this one its own "
			"--socket\n",
			path);
		return 1;
	}
	if (r < 0) {
		fprintf(stderr, "profshim-collector: control socket %s: %s\n",
			path, strerror(-r));
		return 1;
	}
	rc.stats = stats_new();
	rc.syms = symbols_new();
	if (!rc.stats || !rc.syms) {
		fprintf(stderr, "profshim-collector: out of memory\n");
		status = 1;
		goto out;
	}
	if (o->checkpoint > 0 && record_resume(&rc) < 0) {
		status = 1;
		goto out;
	}
	if (record_start_services(&rc) < 0) {
		status = 1;
		goto out;
	}
	/* A recording resumed after its process ended still has that
	 * process' rings to drain. */
	if (o->pid && !o->ring && !rc.resume && !record_proc(o->pid, NULL, NULL)) {
		fprintf(stderr, "profshim-collector: no running process %d\n",
			o->pid);
		status = 1;
		goto out;
	}
	rc.last_checkpoint = clock_now_ns();
	if (o->ring)
		fprintf(stderr, "profshim-collector: reading ring %s\n", o->ring);
	else if (o->pid)
		fprintf(stderr,
			"profshim-collector: recording pid %d and its "
			"children; stops when they exit or on Ctrl-C\n",
			o->pid);
	else
		fprintf(stderr,
			"profshim-collector: recording every profshim ring of "
			"uid %u; stop with Ctrl-C\n",
			(unsigned)getuid());

	while (!record_stop) {
		uint64_t now = clock_now_ns();
		size_t n;

		if (now - last_scan >= RECORD_SCAN_NS) {
			last_scan = now;
			record_scan(&rc);
			if (rc.resume) {
				/* The checkpoint's rings present are
				 * attached now; the rest are gone. */
				record_resume_gone(&rc);
				json_decref(rc.resume);
				rc.resume = NULL;
			}
			record_reap(&rc);
			if (record_done(&rc))
				break;
		}
		if (o->duration > 0 && (double)(now - start) / 1e9 >= o->duration)
			break;
		n = record_drain_all(&rc, false);
		if (ctl_maybe)
			record_control(&rc);
		if (rc.http)
			httpapi_run(rc.http);
		if (rc.push)
			push_step(rc.push, now, record_snapshot, &rc);
		if (record_checkpoint_due(&rc, now))
			(void)record_checkpoint(&rc);
		if (n > 0 || record_push_busy(&rc))
			idle_ms = RECORD_IDLE_MIN_MS;
		ctl_maybe = true;
		if (n == 0) {
			struct pollfd p[2] = {
				{.fd = rc.ctl, .events = POLLIN},
				{.fd = rc.http ? httpapi_fd(rc.http) : -1,
				 .events = POLLIN},
			};

			/* A wait that ran out leaves nothing to accept. */
			ctl_maybe = poll(p, 2, idle_ms) != 0;
			idle_ms = RECORD_IDLE_MAX_MS;
		}
	}
	(void)record_drain_all(&rc, true);
	if (record_write(&rc, o->out, NULL, err, sizeof(err)) < 0) {
		fprintf(stderr, "profshim-collector: %s\n", err);
		status = 1;
		goto out;
	}
	/* The profile holds everything read: the rings may have it back. */
	for (size_t i = 0; i < rc.natt; i++)
		reader_release(rc.att[i].r, reader_position(rc.att[i].r));
	stats_totals(rc.stats, &reqs, &samples, &eps);
	fprintf(stderr,
		"profshim-collector: wrote %s: %llu requests in %llu "
		"endpoints, %llu samples\n",
		o->out, (unsigned long long)reqs, (unsigned long long)eps,
		(unsigned long long)samples);
	/* The last interval's samples go to the store too, if it answers
	 * soon: a stopping collector waits for it at most this long. */
	if (rc.push)
		push_finish(rc.push, record_snapshot_as_written, &rc, 5.0);
out:
	httpapi_stop(rc.http);
	push_free(rc.push);
	for (size_t i = 0; i < rc.natt; i++)
		reader_close(rc.att[i].r);
	free(rc.att);
	for (size_t i = 0; i < rc.nignored; i++)
		free(rc.ignored[i]);
	free(rc.ignored);
	if (rc.ctl >= 0) {
		(void)close(rc.ctl);
		(void)unlink(path);
	}
	json_decref(rc.resume);
	stats_free(rc.stats);
	symbols_free(rc.syms);
	return status;
}
