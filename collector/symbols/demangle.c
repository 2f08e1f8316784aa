/*
 * demangle.c — C++ and Rust names made readable with libiberty (see
 * demangle.h for what a name becomes and why libiberty).
 */
#include "symbols/demangle.h"

#include <stdbool.h>
#include <string.h>

#include <libiberty/demangle.h>

/* Where the demangler's output goes: buf until it would overflow, after
 * which the rest is only counted. */
struct demangle_out {
	char *buf;
	size_t size;
	size_t len;
	bool overflow;
};

/* libiberty's output callback: append n bytes of s. */
static void demangle_append(const char *s, size_t n, void *opaque)
{
	struct demangle_out *o = opaque;

	if (o->overflow || n >= o->size - o->len) {
		o->overflow = true;
		return;
	}
	memcpy(o->buf + o->len, s, n);
	o->len += n;
}

size_t demangle_name(const char *name, size_t len, char *buf, size_t bufsize)
{
	/* libiberty reads NUL-terminated strings; names within len may not
	 * be (a symbol version was cut off after them). */
	char in[DEMANGLE_INPUT_MAX + 1];
	struct demangle_out o = {
		.buf = buf,
		.size = bufsize < DEMANGLE_OUTPUT_MAX ? bufsize
						      : DEMANGLE_OUTPUT_MAX,
	};
	int ok = 0;

	if (len < 3 || len > DEMANGLE_INPUT_MAX || bufsize < 2 ||
	    name[0] != '_' || (name[1] != 'Z' && name[1] != 'R'))
		return 0;
	memcpy(in, name, len);
	in[len] = '\0';
	if (memchr(in, '\0', len))
		return 0;

	/*
	 * Rust first: a legacy Rust symbol is also a valid C++ mangling,
	 * which the C++ demangler would print with its "::h<hash>" and
	 * "$LT$" escapes. rust_demangle_callback() accepts only Rust's two
	 * forms and, without DMGL_VERBOSE, leaves the hash out.
	 */
	ok = rust_demangle_callback(in, DMGL_NO_OPTS, demangle_append, &o);
	if (!ok && in[1] == 'Z') {
		/* A failed attempt may have written part of a name. */
		o.len = 0;
		o.overflow = false;
		/* No DMGL_PARAMS: no parameter list, return type or clone
		 * suffix (demangle.h). */
		ok = cplus_demangle_v3_callback(in, DMGL_NO_OPTS,
						demangle_append, &o);
	}
	if (!ok || o.overflow || o.len == 0)
		return 0;
	buf[o.len] = '\0';
	return o.len;
}
