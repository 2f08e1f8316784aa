/*
 * pprof.c — see pprof.h.
 *
 * The message is encoded by hand into memory (the protobuf wire format
 * needs each nested message's length before its bytes), then gzipped to
 * the output. Field numbers are those of pprof's proto/profile.proto.
 *
 * Ids: mapping i+1 is module i (the executable's mapping goes first); a
 * location is made for each frame index a stack uses, a function for each
 * distinct (function name, system name, file). Every string goes through one
 * deduplicating string table whose entry 0 is "".
 */
#include "formats/pprof.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "util/bytebuf.h"
#include "util/table.h"

/* Message Profile. */
enum {
	PROFILE_SAMPLE_TYPE = 1,
	PROFILE_SAMPLE = 2,
	PROFILE_MAPPING = 3,
	PROFILE_LOCATION = 4,
	PROFILE_FUNCTION = 5,
	PROFILE_STRING_TABLE = 6,
	PROFILE_PERIOD_TYPE = 11,
	PROFILE_PERIOD = 12,
	PROFILE_DEFAULT_SAMPLE_TYPE = 14,
};

/* Messages ValueType, Sample, Label, Mapping, Location, Line, Function. */
enum {
	VALUE_TYPE_TYPE = 1,
	VALUE_TYPE_UNIT = 2,
	SAMPLE_LOCATION_ID = 1,
	SAMPLE_VALUE = 2,
	SAMPLE_LABEL = 3,
	LABEL_KEY = 1,
	LABEL_STR = 2,
	MAPPING_ID = 1,
	MAPPING_FILENAME = 5,
	MAPPING_BUILD_ID = 6,
	MAPPING_HAS_FUNCTIONS = 7,
	MAPPING_HAS_FILENAMES = 8,
	MAPPING_HAS_LINE_NUMBERS = 9,
	LOCATION_ID = 1,
	LOCATION_MAPPING_ID = 2,
	LOCATION_LINE = 4,
	LINE_FUNCTION_ID = 1,
	LINE_LINE = 2,
	FUNCTION_ID = 1,
	FUNCTION_NAME = 2,
	FUNCTION_SYSTEM_NAME = 3,
	FUNCTION_FILENAME = 4,
};

enum { WIRE_VARINT = 0, WIRE_LEN = 2 };

static void pbuf_varint(struct bytebuf *b, uint64_t v)
{
	uint8_t out[10];
	size_t n = 0;

	while (v >= 0x80) {
		out[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	out[n++] = (uint8_t)v;
	bytebuf_append(b, out, n);
}

static void pbuf_tag(struct bytebuf *b, unsigned field, unsigned wire)
{
	pbuf_varint(b, (uint64_t)field << 3 | wire);
}

/* A varint field; zero is the default and is left out, as proto3 does. */
static void pbuf_uint(struct bytebuf *b, unsigned field, uint64_t v)
{
	if (!v)
		return;
	pbuf_tag(b, field, WIRE_VARINT);
	pbuf_varint(b, v);
}

static void pbuf_bytes(struct bytebuf *b, unsigned field, const void *data,
		       size_t n)
{
	pbuf_tag(b, field, WIRE_LEN);
	pbuf_varint(b, n);
	bytebuf_append(b, data, n);
}

/* Append msg as a nested message (or packed field) and empty msg. */
static void pbuf_message(struct bytebuf *b, unsigned field, struct bytebuf *msg)
{
	if (msg->nomem)
		b->nomem = true;
	else
		pbuf_bytes(b, field, msg->data, msg->len);
	msg->len = 0;
}

struct pprof {
	const struct profile *p;
	struct bytebuf out;       /* the Profile message */
	struct bytebuf msg, sub;  /* scratch for nested messages */
	struct intern strings; /* string table, in id order */
	struct intern funcs;   /* "function NUL system name NUL file" -> id - 1 */
	uint64_t *location;    /* by frame index: location id, 0 none yet */
	bool nomem;
};

/* Index of s in the string table, added when new. */
static uint64_t pprof_string(struct pprof *w, const char *s)
{
	int64_t id = intern_put(&w->strings, s, strlen(s));

	if (id < 0) {
		w->nomem = true;
		return 0;
	}
	return (uint64_t)id;
}

static void pprof_value_type(struct pprof *w, unsigned field,
			     const char *type, const char *unit)
{
	pbuf_uint(&w->msg, VALUE_TYPE_TYPE, pprof_string(w, type));
	pbuf_uint(&w->msg, VALUE_TYPE_UNIT, pprof_string(w, unit));
	pbuf_message(&w->out, field, &w->msg);
}

/*
 * Is the module a shared library or a pseudo-file ("[vdso]")? pprof names
 * the profile after its first mapping ("File: cpuserver"), which should be
 * the program's executable, not libc.
 */
static bool pprof_is_library(const struct profile_module *m)
{
	const char *so = strstr(m->name, ".so");

	return m->name[0] == '[' ||
	       (so && (so[3] == '\0' || so[3] == '.' || so[3] == '_'));
}

static void pprof_mapping(struct pprof *w, size_t m)
{
	const struct profile *p = w->p;
	const struct profile_module *mod = &p->modules[m];
	bool files = false, lines = false;

	for (size_t i = 0; i < p->nframes; i++) {
		if (p->frames[i].module != (int)m)
			continue;
		files |= p->frames[i].file != NULL;
		lines |= p->frames[i].line > 0;
	}
	/* Memory ranges are unknown (0): the frames are symbolized. */
	pbuf_uint(&w->msg, MAPPING_ID, m + 1);
	pbuf_uint(&w->msg, MAPPING_FILENAME,
		  pprof_string(w, *mod->path ? mod->path : mod->name));
	pbuf_uint(&w->msg, MAPPING_BUILD_ID, pprof_string(w, mod->build_id));
	/* pprof must not try to symbolize them again. */
	pbuf_uint(&w->msg, MAPPING_HAS_FUNCTIONS, 1);
	pbuf_uint(&w->msg, MAPPING_HAS_FILENAMES, files);
	pbuf_uint(&w->msg, MAPPING_HAS_LINE_NUMBERS, lines);
	pbuf_message(&w->out, PROFILE_MAPPING, &w->msg);
}

/* Every module, the first executable first. */
static void pprof_mappings(struct pprof *w)
{
	const struct profile *p = w->p;
	size_t exe = 0;

	while (exe < p->nmodules && pprof_is_library(&p->modules[exe]))
		exe++;
	if (exe < p->nmodules)
		pprof_mapping(w, exe);
	for (size_t m = 0; m < p->nmodules; m++)
		if (m != exe)
			pprof_mapping(w, m);
}

/*
 * Id of the function of frame f, its Function written when new: one per
 * (name, system name, file). The name is the readable one, the system name
 * the symbol as in the file (a C++ or Rust mangling), which tells apart
 * overloads that share a readable name.
 */
static uint64_t pprof_function(struct pprof *w, const struct profile_frame *f)
{
	const char *file = f->file ? f->file : "";
	const char *sys = f->system_name ? f->system_name : f->function;
	size_t nl = strlen(f->function), sl = strlen(sys), fl = strlen(file);
	size_t known = w->funcs.count;
	char *key = malloc(nl + 1 + sl + 1 + fl);
	int64_t id;

	if (!key) {
		w->nomem = true;
		return 0;
	}
	/* Names are C strings: the NULs between them keep keys apart. */
	memcpy(key, f->function, nl);
	key[nl] = '\0';
	memcpy(key + nl + 1, sys, sl);
	key[nl + 1 + sl] = '\0';
	memcpy(key + nl + 1 + sl + 1, file, fl);
	id = intern_put(&w->funcs, key, nl + 1 + sl + 1 + fl);
	free(key);
	if (id < 0) {
		w->nomem = true;
		return 0;
	}
	if (w->funcs.count > known) {
		uint64_t name = pprof_string(w, f->function);

		pbuf_uint(&w->msg, FUNCTION_ID, (uint64_t)id + 1);
		pbuf_uint(&w->msg, FUNCTION_NAME, name);
		pbuf_uint(&w->msg, FUNCTION_SYSTEM_NAME,
			  sys == f->function ? name : pprof_string(w, sys));
		pbuf_uint(&w->msg, FUNCTION_FILENAME, pprof_string(w, file));
		pbuf_message(&w->out, PROFILE_FUNCTION, &w->msg);
	}
	return (uint64_t)id + 1;
}

/* Id of the location of frame index i, its Location written when new. */
static uint64_t pprof_location(struct pprof *w, uint32_t i)
{
	const struct profile_frame *f = &w->p->frames[i];
	uint64_t fn;

	if (w->location[i])
		return w->location[i];
	w->location[i] = (uint64_t)i + 1;
	/* The Function goes out first: msg is free again after it. */
	fn = pprof_function(w, f);
	pbuf_uint(&w->sub, LINE_FUNCTION_ID, fn);
	pbuf_uint(&w->sub, LINE_LINE, f->line > 0 ? (uint64_t)f->line : 0);
	pbuf_uint(&w->msg, LOCATION_ID, w->location[i]);
	pbuf_uint(&w->msg, LOCATION_MAPPING_ID,
		  f->module >= 0 ? (uint64_t)f->module + 1 : 0);
	pbuf_message(&w->msg, LOCATION_LINE, &w->sub);
	pbuf_message(&w->out, PROFILE_LOCATION, &w->msg);
	return w->location[i];
}

static void pprof_label(struct pprof *w, const char *key, const char *value)
{
	pbuf_uint(&w->sub, LABEL_KEY, pprof_string(w, key));
	pbuf_uint(&w->sub, LABEL_STR, pprof_string(w, value));
	pbuf_message(&w->msg, SAMPLE_LABEL, &w->sub);
}

static void pprof_sample(struct pprof *w, const struct profile_stack *s)
{
	const struct profile *p = w->p;
	uint64_t *ids = malloc((s->nframes + 1) * sizeof(*ids));
	double ns = (double)s->samples * p->period_ns;

	if (!ids) {
		w->nomem = true;
		return;
	}
	/* Locations and functions go out before this sample's message. */
	for (uint32_t i = 0; i < s->nframes; i++)
		ids[i] = pprof_location(w, s->frames[i]);
	/* pprof wants the leaf first; the profile's stacks are root first. */
	for (uint32_t i = s->nframes; i-- > 0;)
		pbuf_varint(&w->sub, ids[i]);
	free(ids);
	pbuf_message(&w->msg, SAMPLE_LOCATION_ID, &w->sub);
	/* int64 values: saturate rather than wrap negative. */
	pbuf_varint(&w->sub, s->samples > (uint64_t)INT64_MAX ?
				     (uint64_t)INT64_MAX : s->samples);
	pbuf_varint(&w->sub, ns >= 0x1p63 ? (uint64_t)INT64_MAX :
					    (uint64_t)(ns + 0.5));
	pbuf_message(&w->msg, SAMPLE_VALUE, &w->sub);
	if (s->endpoint >= 0)
		pprof_label(w, "endpoint", p->endpoints[s->endpoint].name);
	if (s->request >= 0)
		pprof_label(w, "request_id", p->requests[s->request].id);
	pbuf_message(&w->out, PROFILE_SAMPLE, &w->msg);
}

/* The whole Profile message into w->out; -ENOMEM or 0. */
static int pprof_encode(struct pprof *w)
{
	const struct profile *p = w->p;
	const char *clock = strcmp(p->clock, "wall") == 0 ? "wall" : "cpu";
	double period = p->period_ns + 0.5;

	/* String 0 must be "". */
	(void)pprof_string(w, "");
	pprof_value_type(w, PROFILE_SAMPLE_TYPE, "samples", "count");
	pprof_value_type(w, PROFILE_SAMPLE_TYPE, clock, "nanoseconds");
	pprof_value_type(w, PROFILE_PERIOD_TYPE, clock, "nanoseconds");
	pbuf_uint(&w->out, PROFILE_PERIOD,
		  period >= 0x1p63 ? (uint64_t)INT64_MAX : (uint64_t)period);
	pbuf_uint(&w->out, PROFILE_DEFAULT_SAMPLE_TYPE, pprof_string(w, clock));
	pprof_mappings(w);
	for (size_t i = 0; i < p->nstacks; i++)
		pprof_sample(w, &p->stacks[i]);
	/* Last, once every string is in. */
	for (size_t i = 0; i < w->strings.count; i++) {
		size_t len;
		const void *s = intern_get(&w->strings, (uint32_t)i, &len);

		pbuf_bytes(&w->out, PROFILE_STRING_TABLE, s, len);
	}
	return w->nomem || w->out.nomem || w->msg.nomem || w->sub.nomem ?
		       -ENOMEM : 0;
}

/*
 * The error of a failed fwrite() or fflush(): its errno (ENOSPC says more
 * than EIO), EIO when the stream set none. errno is cleared before each.
 */
static int pprof_io_error(void)
{
	return errno > 0 ? -errno : -EIO;
}

/* gzip data[0..len) to out: 0, -ENOMEM, or the write's negative errno. */
static int pprof_gzip(const uint8_t *data, size_t len, FILE *out)
{
	uint8_t chunk[16384];
	z_stream z = {0};
	int zr, flush, r = 0;

	/* windowBits 15 + 16: the gzip wrapper pprof expects. */
	if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
			 Z_DEFAULT_STRATEGY) != Z_OK)
		return -ENOMEM;
	z.next_in = (Bytef *)data;
	do {
		/* avail_in is 32 bits wide: feed at most 1 GiB at a time. */
		size_t left = len - (size_t)(z.next_in - data);
		size_t step = left > (1u << 30) ? (1u << 30) : left;

		flush = step == left ? Z_FINISH : Z_NO_FLUSH;
		z.avail_in = (uInt)step;
		do {
			size_t n;

			z.next_out = chunk;
			z.avail_out = sizeof(chunk);
			zr = deflate(&z, flush);
			if (zr == Z_STREAM_ERROR) {
				r = -EIO;
				goto out;
			}
			n = sizeof(chunk) - z.avail_out;
			errno = 0;
			if (n && fwrite(chunk, 1, n, out) != n) {
				r = pprof_io_error();
				goto out;
			}
		} while (z.avail_out == 0);
	} while (flush != Z_FINISH);
	/* With room left over after Z_FINISH the stream is complete. */
	if (zr != Z_STREAM_END) {
		r = -EIO;
		goto out;
	}
	errno = 0;
	if (fflush(out) != 0 || ferror(out))
		r = pprof_io_error();
out:
	deflateEnd(&z);
	return r;
}

int pprof_write(const struct profile *p, FILE *out)
{
	struct pprof w = {.p = p};
	int r;

	w.location = calloc(p->nframes + 1, sizeof(*w.location));
	if (!w.location)
		return -ENOMEM;
	r = pprof_encode(&w);
	if (r == 0)
		r = pprof_gzip(w.out.data, w.out.len, out);
	free(w.location);
	bytebuf_free(&w.out);
	bytebuf_free(&w.msg);
	bytebuf_free(&w.sub);
	intern_free(&w.strings);
	intern_free(&w.funcs);
	return r;
}
