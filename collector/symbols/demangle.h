/*
 * demangle.h — readable names for C++ and Rust symbols, as every output of
 * the collector shows them.
 *
 * The symbolizer (symbols.c) calls demangle_name() once for each name it
 * interns, after the symbol index (symindex.h) has chosen the raw symbol,
 * so every format (the profile's JSON, folded, pprof, speedscope, HTML,
 * Prometheus, pushes, diff, top) gets the same readable name while the
 * raw name stays available as the frame's system name.
 *
 * What a name becomes:
 *   - C++ (Itanium ABI, "_Z..."): the qualified name with its template
 *     arguments but without its parameter list, return type or clone
 *     suffix: "_ZN2v88internal19Runtime_CompileLazyEiPmPNS0_7IsolateE"
 *     reads "v8::internal::Runtime_CompileLazy", "_ZN3foo3barEv.cold" reads
 *     "foo::bar". Flame graphs stay narrow and a function's hot and cold
 *     parts merge; overloads merge too, which the mangled name (pprof's
 *     Function.system_name) tells apart.
 *   - Rust, legacy ("_ZN...17h<hash>E") and v0 ("_R..."): the path without
 *     its hash, "$LT$"-style escapes decoded: "core::fmt::write".
 *   - Anything else (C, already readable, or not a valid mangling): left
 *     alone.
 *
 * libiberty's demangler (Debian's libiberty-dev, the one binutils and gdb
 * use) is used rather than libstdc++'s __cxa_demangle because it also reads
 * Rust (legacy and v0), drops parameter lists on request, and has
 * callback entry points that never allocate, so a name's length can be
 * bounded here. Its recursion limit is kept on (no DMGL_NO_RECURSE_LIMIT):
 * names come from files a hostile user may have written.
 */
#ifndef PROFSHIM_DEMANGLE_H
#define PROFSHIM_DEMANGLE_H

#include <stddef.h>

/* Longest mangled name demangled; longer ones are left as they are (no
 * real symbol comes near it, and the demangler's work grows with it). */
#define DEMANGLE_INPUT_MAX 4096

/* Longest readable name kept, NUL included; a name that would be longer
 * is left mangled rather than cut, so two functions never share a cut
 * name. Template-heavy C++ grows about sevenfold: Node.js's longest
 * symbol, 483 bytes mangled, reads 3,584 bytes. */
#define DEMANGLE_OUTPUT_MAX 16384

/*
 * Write the readable form of name[0..len) (no NUL needed within len) to
 * buf (of bufsize bytes, at least 2), NUL-terminated, and return its
 * length; return 0, leaving buf undefined, when the name is not a C++ or
 * Rust mangling, is invalid, or is longer than the limits above.
 * Never allocates; reentrant.
 */
size_t demangle_name(const char *name, size_t len, char *buf, size_t bufsize);

#endif /* PROFSHIM_DEMANGLE_H */
