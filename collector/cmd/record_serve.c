/*
 * record_serve.c — what `record` answers besides reading rings: requests
 * on the control socket (dump, reap, reset, save), the HTTP API's callbacks
 * (httpapi.h) and the pushes to a store (push.h), and starting those two.
 * Each answer first catches up with the rings, so it holds every request
 * completed before it was asked for.
 */
#include "cmd/record_impl.h"
#include "util/clock.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "util/control.h"
#include "formats/prom.h"
#include "services/httpapi.h"
#include "services/push.h"
#include "model/stats.h"

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

json_t *record_snapshot(void *arg)
{
	return record_profile(arg, NULL, NULL);
}

/* The profile as it stands, without reading more (push_finish()'s view:
 * the profile written at the end holds exactly this). */
json_t *record_snapshot_as_written(void *arg)
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

void record_control(struct recorder *rc)
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
 * Start the HTTP API and the pushes the options ask for. Returns 0, or -1
 * after saying why on stderr.
 */
int record_start_services(struct recorder *rc)
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
bool record_push_busy(const struct recorder *rc)
{
	struct push_counters n;

	if (!rc->push)
		return false;
	push_counters(rc->push, &n);
	return n.queued_bodies > 0;
}
