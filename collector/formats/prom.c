/*
 * prom.c — see prom.h.
 *
 * Text exposition format 0.0.4: each family is one block of HELP, TYPE and
 * its samples, every family once, with the same set of families whatever
 * the profile holds so dashboards never see one vanish.
 */
#include "formats/prom.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

/*
 * The standard bounds (seconds) the histogram is exposed with; +Inf
 * follows. The profile's fine buckets are much narrower (1/64 of a power of
 * two): each adds to the first bound at or above its upper end, so a count
 * is never put below the time its requests may have taken.
 */
static const double prom_bounds[] = {
	0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
	1, 2.5, 5, 10,
};
static const char *const prom_bounds_text[] = {
	"0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1",
	"0.25", "0.5", "1", "2.5", "5", "10",
};
#define PROM_NBOUNDS (sizeof(prom_bounds) / sizeof(prom_bounds[0]))

static const char *const prom_status[6] = {"1xx", "2xx", "3xx",
					   "4xx", "5xx", "other"};

/*
 * A label value between double quotes: backslash, double quote and
 * newline are the three characters the format escapes; the rest is UTF-8
 * as is (the profile's strings are valid UTF-8).
 */
static void prom_label(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s; s++) {
		if (*s == '\\')
			fputs("\\\\", out);
		else if (*s == '"')
			fputs("\\\"", out);
		else if (*s == '\n')
			fputs("\\n", out);
		else
			fputc(*s, out);
	}
	fputc('"', out);
}

/* The shortest decimal that reads back as v, so sums stay exact. */
static void prom_value(FILE *out, double v)
{
	char buf[32];

	for (int prec = 15; prec <= 17; prec++) {
		(void)snprintf(buf, sizeof(buf), "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	fputs(buf, out);
}

static void prom_family(FILE *out, const char *name, const char *type,
			const char *help)
{
	fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void prom_histogram(FILE *out, const struct profile_endpoint *ep)
{
	uint64_t counts[PROM_NBOUNDS] = {0}, cum = 0, total = 0;

	for (size_t i = 0; i < ep->nbuckets; i++) {
		size_t b = 0;

		while (b < PROM_NBOUNDS && prom_bounds[b] < ep->buckets[i].le)
			b++;
		if (b < PROM_NBOUNDS)
			counts[b] += ep->buckets[i].count;
		total += ep->buckets[i].count;
	}
	/* +Inf and _count are the calls; a histogram that holds more than
	 * that (it never should) wins, so the buckets stay monotone. */
	if (ep->calls > total)
		total = ep->calls;
	for (size_t b = 0; b < PROM_NBOUNDS; b++) {
		cum += counts[b];
		fputs("profshim_request_duration_seconds_bucket{endpoint=", out);
		prom_label(out, ep->name);
		fprintf(out, ",le=\"%s\"} %" PRIu64 "\n", prom_bounds_text[b],
			cum);
	}
	fputs("profshim_request_duration_seconds_bucket{endpoint=", out);
	prom_label(out, ep->name);
	fprintf(out, ",le=\"+Inf\"} %" PRIu64 "\n", total);
	fputs("profshim_request_duration_seconds_sum{endpoint=", out);
	prom_label(out, ep->name);
	fputs("} ", out);
	prom_value(out, ep->total);
	fputs("\nprofshim_request_duration_seconds_count{endpoint=", out);
	prom_label(out, ep->name);
	fprintf(out, "} %" PRIu64 "\n", total);
}

int prom_write(const struct profile *p, FILE *out)
{
	prom_family(out, "profshim_request_duration_seconds", "histogram",
		    "Time from a request's first byte read to its response's "
		    "last byte written, by endpoint.");
	for (size_t e = 0; e < p->nendpoints; e++)
		prom_histogram(out, &p->endpoints[e]);

	prom_family(out, "profshim_requests_total", "counter",
		    "Requests completed, by endpoint and response status "
		    "class (\"other\": none, e.g. closed before an answer).");
	for (size_t e = 0; e < p->nendpoints; e++) {
		const struct profile_endpoint *ep = &p->endpoints[e];

		for (int c = 0; c < 6; c++) {
			if (!ep->status[c])
				continue;
			fputs("profshim_requests_total{endpoint=", out);
			prom_label(out, ep->name);
			fprintf(out, ",status_class=\"%s\"} %" PRIu64 "\n",
				prom_status[c],
				ep->status[c]);
		}
	}

	prom_family(out, "profshim_samples_total", "counter",
		    "Stack samples taken, by the endpoint of the request "
		    "being served.");
	for (size_t e = 0; e < p->nendpoints; e++) {
		fputs("profshim_samples_total{endpoint=", out);
		prom_label(out, p->endpoints[e].name);
		fprintf(out, "} %" PRIu64 "\n",
			p->endpoints[e].samples);
	}

	prom_family(out, "profshim_dropped_samples_total", "counter",
		    "Samples the shim could not write because the ring was "
		    "full.");
	fprintf(out, "profshim_dropped_samples_total %" PRIu64 "\n",
		p->dropped_samples);
	prom_family(out, "profshim_dropped_events_total", "counter",
		    "Records other than samples the shim could not write "
		    "because the ring was full.");
	fprintf(out, "profshim_dropped_events_total %" PRIu64 "\n",
		p->dropped_events);
	prom_family(out, "profshim_dropped_requests_total", "counter",
		    "Requests served but not reported: their record found the "
		    "ring full, or too many were pipelined on one connection.");
	fprintf(out, "profshim_dropped_requests_total %" PRIu64 "\n",
		p->dropped_requests);
	return ferror(out) ? -EIO : 0;
}

/* One family of two series, result="sent" and result="dropped". */
static void prom_results(FILE *out, const char *name, const char *help,
			 uint64_t sent, uint64_t dropped)
{
	prom_family(out, name, "counter", help);
	fprintf(out, "%s{result=\"sent\"} %" PRIu64 "\n", name, sent);
	fprintf(out, "%s{result=\"dropped\"} %" PRIu64 "\n", name, dropped);
}

int prom_write_collector(const struct prom_collector *c, FILE *out)
{
	prom_family(out, "profshim_collector_rings", "gauge",
		    "Rings the collector is reading now (one per profiled "
		    "process image).");
	fprintf(out, "profshim_collector_rings %" PRIu64 "\n", c->rings);
	if (!c->push)
		return ferror(out) ? -EIO : 0;
	prom_results(out, "profshim_collector_push_bodies_total",
		     "Pushes to the profile store: taken by it, or given up "
		     "on (queue full, or the store refused the body).",
		     c->push_sent_bodies, c->push_dropped_bodies);
	prom_results(out, "profshim_collector_push_samples_total",
		     "Stack samples in those pushes.", c->push_sent_samples,
		     c->push_dropped_samples);
	prom_family(out, "profshim_collector_push_failures_total", "counter",
		    "Failed pushes: attempts the store failed or refused "
		    "(each retry counts), and intervals whose body could not "
		    "be built.");
	fprintf(out, "profshim_collector_push_failures_total %" PRIu64 "\n",
		c->push_failures);
	prom_family(out, "profshim_collector_push_queued_bodies", "gauge",
		    "Pushes waiting to be sent, the one in flight included.");
	fprintf(out, "profshim_collector_push_queued_bodies %" PRIu64 "\n",
		c->push_queued_bodies);
	return ferror(out) ? -EIO : 0;
}
