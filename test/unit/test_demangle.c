/*
 * test_demangle.c — the names every output shows for C++ and Rust symbols
 * (symbols/demangle.h), and that a symbolized frame of a mangled function
 * carries both names (symbols.h).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "symbols/demangle.h"
#include "symbols/symbols.h"

/* The readable form of name, or "" when demangle_name() leaves it. */
static const char *readable(const char *name)
{
	static char buf[DEMANGLE_OUTPUT_MAX];

	if (demangle_name(name, strlen(name), buf, sizeof(buf)) == 0)
		return "";
	return buf;
}

static void test_cxx_without_parameters(void)
{
	/* V8's runtime functions: the name a flame graph shows. */
	CHECK_STR(readable("_ZN2v88internal19Runtime_CompileLazyEiPmPNS0_"
			   "7IsolateE"),
		  "v8::internal::Runtime_CompileLazy");
	/* Template arguments stay: they tell instantiations apart. */
	CHECK_STR(readable("_ZNSt6vectorIiSaIiEE9push_backERKi"),
		  "std::vector<int, std::allocator<int> >::push_back");
	CHECK_STR(readable("_Z3maxIiET_S0_S0_"), "max<int>");
	/* A static (internal linkage) function. */
	CHECK_STR(readable("_ZL5localv"), "local");
	CHECK_STR(readable("_ZZ4mainENKUlvE_clEv"),
		  "main::{lambda()#1}::operator()");
	/* GCC's clones merge with their function. */
	CHECK_STR(readable("_ZN3foo3barEv.cold"), "foo::bar");
	CHECK_STR(readable("_ZN3foo3barEv.isra.0"), "foo::bar");
	CHECK_STR(readable("_ZN3foo3barEv.constprop.0"), "foo::bar");
}

static void test_rust(void)
{
	/* Legacy: the hash goes, the $-escapes are decoded. */
	CHECK_STR(readable("_ZN4core3fmt5write17h0123456789abcdefE"),
		  "core::fmt::write");
	CHECK_STR(readable("_ZN4core3ptr46drop_in_place$LT$alloc..vec..Vec"
			   "$LT$u8$GT$$GT$17h0123456789abcdefE"),
		  "core::ptr::drop_in_place<alloc::vec::Vec<u8>>");
	CHECK_STR(readable("_ZN3std11collections4hash3map20HashMap$LT$K$C$"
			   "V$GT$6insert17h0123456789abcdefE"),
		  "std::collections::hash::map::HashMap<K,V>::insert");
	/* v0 */
	CHECK_STR(readable("_RNvCs15kBYyAo9fc_7mycrate7example"),
		  "mycrate::example");
	CHECK_STR(readable("_RNvMs_Cs4Cv8Wi1oAIB_7mycrateNtB4_3Foo3bar"),
		  "<mycrate::Foo>::bar");
}

static void test_left_alone(void)
{
	char buf[64];

	/* C names, names that only look mangled, and broken manglings. */
	CHECK_STR(readable("main"), "");
	CHECK_STR(readable("burn_alpha"), "");
	CHECK_STR(readable("_Z"), "");
	CHECK_STR(readable("_Zgarbage"), "");
	CHECK_STR(readable("_ZN3foo"), "");
	CHECK_STR(readable("_R"), "");
	CHECK_STR(readable("_RNv"), "");
	CHECK_STR(readable("__libc_start_main"), "");
	CHECK_STR(readable(""), "");
	/* Only len bytes count: a symbol version was cut off after them. */
	CHECK_EQ(demangle_name("_ZL5localv@@V1", 10, buf, sizeof(buf)), 5);
	CHECK_STR(buf, "local");
	/* An output that does not fit is refused, not cut. */
	CHECK_EQ(demangle_name("_ZNSt6vectorIiSaIiEE9push_backERKi", 34, buf,
			       16),
		 0);
	CHECK_EQ(demangle_name("_ZL5localv", 10, buf, 6), 5);
	CHECK_EQ(demangle_name("_ZL5localv", 10, buf, 5), 0);
}

/* Hostile names: very long, deeply nested, endless back references. The
 * demangler's recursion limit and the input limit keep each fast. */
static void test_hostile(void)
{
	size_t n = DEMANGLE_INPUT_MAX + 100;
	char *s = malloc(n + 1), buf[256];

	if (!s)
		return;
	/* Over the input limit: left alone without being parsed. */
	memset(s, 'N', n);
	memcpy(s, "_ZN", 3);
	s[n] = '\0';
	CHECK_EQ(demangle_name(s, n, buf, sizeof(buf)), 0);
	/* Just under it: nested templates deeper than the recursion limit
	 * ("_Z1fI1fI1fI..."), and a long list of back references. */
	n = DEMANGLE_INPUT_MAX - 8;
	memcpy(s, "_Z1f", 4);
	for (size_t i = 4; i + 3 <= n; i += 3)
		memcpy(s + i, "I1f", 3);
	s[n] = '\0';
	CHECK_EQ(demangle_name(s, strlen(s), buf, sizeof(buf)), 0);
	memcpy(s, "_Z1fS_", 6);
	for (size_t i = 6; i + 2 <= n; i += 2)
		memcpy(s + i, "S_", 2);
	s[n] = '\0';
	CHECK_EQ(demangle_name(s, strlen(s), buf, sizeof(buf)), 0);
	free(s);
}

/* A C++ function of this very test, looked up the way the collector looks
 * up a sample: its frame shows the readable name and keeps the symbol's. */
extern void _ZN8profshim4test6burnerIiE4spinEd(void);
__attribute__((noinline)) void _ZN8profshim4test6burnerIiE4spinEd(void)
{
	__asm__ volatile("" ::: "memory");
}

static void test_symbolized_frame(void)
{
	struct symbols *s = symbols_new();
	struct ring_module m = {0};
	struct symbols_frame fr;
	uintptr_t fn = (uintptr_t)&_ZN8profshim4test6burnerIiE4spinEd;
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];

	if (!s || !f) {
		CHECK(0);
		symbols_free(s);
		if (f)
			fclose(f);
		return;
	}
	/* The module map entry of this executable: its lowest mapping's
	 * start is the bias of a PIE (the default). */
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		char path[256];

		if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %255s", &lo, &hi,
			   path) != 3 || !strstr(path, "test_demangle"))
			continue;
		if (!m.path[0]) {
			(void)snprintf(m.path, sizeof(m.path), "%s", path);
			m.bias = lo;
			m.lo = lo;
		}
		m.hi = hi;
	}
	fclose(f);
	CHECK(m.path[0] != '\0');
	symbols_lookup(s, 0, &m, 1, fn, false, &fr);
	CHECK_STR(fr.function, "profshim::test::burner<int>::spin");
	CHECK_STR(fr.system_name, "_ZN8profshim4test6burnerIiE4spinEd");
	CHECK(fr.known);
	CHECK(!fr.jit);
	/* A C name's two names are the same string. */
	symbols_lookup(s, 0, &m, 1, (uintptr_t)&test_symbolized_frame, false,
		       &fr);
	CHECK_STR(fr.function, "test_symbolized_frame");
	CHECK(fr.system_name == fr.function);
	symbols_free(s);
}

int main(void)
{
	RUN(test_cxx_without_parameters);
	RUN(test_rust);
	RUN(test_left_alone);
	RUN(test_hostile);
	RUN(test_symbolized_frame);
	return check_done();
}
