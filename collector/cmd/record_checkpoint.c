/*
 * record_checkpoint.c — the profile `record` writes: at the end, on `save`,
 * and as a checkpoint every --checkpoint seconds, which a collector started
 * again with the same --out resumes (record.h says how).
 */
#include "cmd/record_impl.h"
#include "util/atomic_file.h"
#include "util/clock.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ingest/reader.h"
#include "model/stats.h"

/* A ring more than a quarter full of records read but not yet checkpointed
 * gets a checkpoint early, at most this often. */
#define RECORD_PRESSED_NS 20000000ull
#define RECORD_CHECKPOINT_FORMAT 1

/*
 * A ring the interrupted recording was reading (same file name, pid and
 * creation time): go on from the position its checkpoint recorded.
 */
void record_resume_ring(struct recorder *rc, struct attached *a)
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
void record_resume_gone(struct recorder *rc)
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

/*
 * The profile JSON as text, with `checkpoint` (a reference this takes) as
 * its "checkpoint" object when it is not NULL. Checkpoints are written
 * compact: they are rewritten every second and their state is mostly
 * numbers.
 */
char *record_dumps(struct recorder *rc, const char *endpoint,
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
int record_write(struct recorder *rc, const char *path, json_t *checkpoint,
		 char *err, size_t errlen)
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
 * Write a checkpoint to the output file, then give each ring back the space
 * of the records it holds. Returns 0, or -1 when it could not be written
 * (said once until a checkpoint succeeds again); the rings then keep their
 * records.
 */
int record_checkpoint(struct recorder *rc)
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
bool record_checkpoint_due(struct recorder *rc, uint64_t now)
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
int record_resume(struct recorder *rc)
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
