/*
 * test_layering.c — the shim's layering rule, checked on the built code:
 * no shim module calls a name the shim itself interposes (interposed.h).
 *
 * Preloaded, libprofshim.so comes first in the program's lookup scope, so
 * a call from the shim to, say, dl_iterate_phdr would land in the shim's
 * own hook (which, from inside the shim, answers from an old snapshot: a
 * library dlopen'ed after start-up was never found that way). Modules go
 * through libc.h instead; the interposer files call the real functions
 * through real_<name> pointers.
 *
 *   test_layering CORE.a HOOKS.a
 *
 * Every relocation in both archives (the modules, and the interposer
 * files) is read with readelf: a reference to an interposed name is a
 * call to a hook, and fails the test. A self-check first: the list is not
 * empty and the interposer archive does define the names.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libc.h"
#include "check.h"

#define NAME(ret, name, sym, params) sym,
static const char *const interposed[] = {INTERPOSED(NAME)};
#undef NAME
#define N_INTERPOSED (sizeof(interposed) / sizeof(*interposed))

static const char *core_archive, *hooks_archive;

static int is_interposed(const char *sym)
{
	for (size_t i = 0; i < N_INTERPOSED; i++)
		if (strcmp(sym, interposed[i]) == 0)
			return 1;
	return 0;
}

/* Count relocations in `archive` against interposed names; print them. */
static int calls_to_hooks(const char *archive)
{
	char cmd[4200], line[1024], file[1024] = "";
	FILE *p;
	int bad = 0;

	(void)snprintf(cmd, sizeof(cmd), "readelf -rW '%s'", archive);
	p = popen(cmd, "r");
	if (!p)
		return -1;
	while (fgets(line, sizeof(line), p)) {
		char *tok, *last = NULL, *save;

		if (strncmp(line, "File: ", 6) == 0) {
			(void)snprintf(file, sizeof(file), "%s", line + 6);
			file[strcspn(file, "\n")] = '\0';
			continue;
		}
		/* Relocation lines end with "symbol + addend" or "symbol". */
		for (tok = strtok_r(line, " \t\n", &save); tok;
		     tok = strtok_r(NULL, " \t\n", &save)) {
			if (strcmp(tok, "+") == 0 || strcmp(tok, "-") == 0)
				break;
			last = tok;
		}
		if (last && is_interposed(last)) {
			printf("# %s calls %s, a name the shim interposes\n",
			       file, last);
			bad++;
		}
	}
	if (pclose(p) != 0)
		return -1;
	return bad;
}

static void test_list_is_whole(void)
{
	char cmd[4200], line[1024], sym[256];
	FILE *p;
	size_t defined = 0;
	char seen[N_INTERPOSED] = {0};

	CHECK(N_INTERPOSED >= 28);
	(void)snprintf(cmd, sizeof(cmd),
		       "nm --defined-only --format=posix '%s'", hooks_archive);
	p = popen(cmd, "r");
	CHECK(p != NULL);
	if (!p)
		return;
	while (fgets(line, sizeof(line), p))
		for (size_t i = 0; i < N_INTERPOSED; i++)
			if (!seen[i] && sscanf(line, "%255s", sym) == 1 &&
			    strcmp(sym, interposed[i]) == 0) {
				seen[i] = 1;
				defined++;
			}
	CHECK(pclose(p) == 0);
	for (size_t i = 0; i < N_INTERPOSED; i++)
		if (!seen[i])
			printf("# %s is listed but no interposer defines it\n",
			       interposed[i]);
	/* Every listed name is defined by an interposer file. */
	CHECK_EQ(defined, N_INTERPOSED);
}

static void test_modules_call_no_hook(void)
{
	CHECK_EQ(calls_to_hooks(core_archive), 0);
}

static void test_interposers_call_no_hook(void)
{
	CHECK_EQ(calls_to_hooks(hooks_archive), 0);
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: test_layering CORE.a HOOKS.a\n");
		return 2;
	}
	core_archive = argv[1];
	hooks_archive = argv[2];
	RUN(test_list_is_whole);
	RUN(test_modules_call_no_hook);
	RUN(test_interposers_call_no_hook);
	return check_done();
}
