/*
 * test_perfmap.c — JIT names from a runtime's perf map (symbols/perfmap.h)
 * on real files: the format, appends read as they come, overlapping code,
 * malformed lines, files that must not be trusted, the memory cap; and the
 * symbolizer naming an address in no module from this very process' map,
 * /tmp/perf-PID.map (symbols.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "symbols/perfmap.h"
#include "symbols/strpool.h"
#include "symbols/symbols.h"

static char dir[] = "/tmp/profshim-perfmap-XXXXXX";
static struct strpool pool;

/* Append text to path (created with mode 0644 when missing). */
static void append(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

	CHECK(fd >= 0);
	if (fd < 0)
		return;
	CHECK_EQ(write(fd, text, strlen(text)), (long long)strlen(text));
	close(fd);
}

/* A map of a file named `name` in the test's directory, trusted for the
 * test's own uid. */
static void map_at(struct perfmap *m, const char *name)
{
	perfmap_init(m, 1, (uint32_t)getuid());
	(void)snprintf(m->path, sizeof(m->path), "%s/%s", dir, name);
	(void)unlink(m->path);
}

static struct perfmap_budget plenty(void)
{
	return (struct perfmap_budget){.bytes = 1 << 20, .entries = 1000};
}

/* The name m gives addr, or "" for none. */
static const char *name_at(const struct perfmap *m, uint64_t addr)
{
	const struct perfmap_sym *e = perfmap_find(m, addr);

	return e ? e->name : "";
}

static void test_lines_and_lookups(void)
{
	struct perfmap_budget b = plenty();
	struct perfmap m;

	map_at(&m, "basic.map");
	/* No file yet: nothing, and no error (the runtime has not started
	 * compiling). */
	CHECK_EQ(perfmap_read(&m, &pool, &b), 0);
	append(m.path, "7f0000001000 40 LazyCompile:*burn /srv/app.js:3\n"
		       "7f0000002000 1a0 JS:~handle(req, res) <anonymous>:1\n"
		       "0x7f0000003000 0x10 Builtin:ArrayMap\r\n");
	CHECK_EQ(perfmap_read(&m, &pool, &b), 3);
	CHECK_STR(name_at(&m, 0x7f0000001000), "LazyCompile:*burn /srv/app.js:3");
	CHECK_STR(name_at(&m, 0x7f000000103f), "LazyCompile:*burn /srv/app.js:3");
	CHECK_STR(name_at(&m, 0x7f0000001040), "");
	CHECK_STR(name_at(&m, 0x7f0000000fff), "");
	/* Names keep their spaces, parentheses, commas and brackets. */
	CHECK_STR(name_at(&m, 0x7f0000002100),
		  "JS:~handle(req, res) <anonymous>:1");
	CHECK_STR(name_at(&m, 0x7f0000003000), "Builtin:ArrayMap");
	/* Nothing appended: nothing read. */
	CHECK_EQ(perfmap_read(&m, &pool, &b), 0);
	CHECK_EQ(m.malformed, 0);
	perfmap_free(&m);
}

static void test_appends_and_partial_lines(void)
{
	struct perfmap_budget b = plenty();
	struct perfmap m;

	map_at(&m, "append.map");
	append(m.path, "1000 10 first\n2000 10 sec");
	CHECK_EQ(perfmap_read(&m, &pool, &b), 1);
	/* The runtime is still writing the second line: it waits. */
	CHECK_STR(name_at(&m, 0x2000), "");
	append(m.path, "ond\n3000 10 third\n");
	CHECK_EQ(perfmap_read(&m, &pool, &b), 2);
	CHECK_STR(name_at(&m, 0x2005), "second");
	CHECK_STR(name_at(&m, 0x3000), "third");
	CHECK_STR(name_at(&m, 0x1000), "first");
	/* A sealed map (its process exited) is read no more. */
	perfmap_seal(&m);
	append(m.path, "4000 10 fourth\n");
	CHECK_EQ(perfmap_read(&m, &pool, &b), 0);
	CHECK_STR(name_at(&m, 0x4000), "");
	CHECK_STR(name_at(&m, 0x3000), "third");
	perfmap_free(&m);
}

static void test_overlaps_later_wins(void)
{
	struct perfmap_budget b = plenty();
	struct perfmap m;

	map_at(&m, "overlap.map");
	append(m.path, "5000 100 old\n6000 10 kept\n");
	CHECK_EQ(perfmap_read(&m, &pool, &b), 2);
	/* The runtime freed old's memory and compiled new code into it. */
	append(m.path, "5010 10 new\n");
	CHECK_EQ(perfmap_read(&m, &pool, &b), 1);
	CHECK_STR(name_at(&m, 0x5015), "new");
	CHECK_STR(name_at(&m, 0x5000), "");
	CHECK_STR(name_at(&m, 0x6000), "kept");
	/* Within one read too, and at the same start. */
	append(m.path, "7000 10 a\n7000 20 b\n7008 4 c\n");
	CHECK_EQ(perfmap_read(&m, &pool, &b), 3);
	CHECK_STR(name_at(&m, 0x7009), "c");
	CHECK_STR(name_at(&m, 0x7000), "");
	CHECK_STR(name_at(&m, 0x7010), "");
	perfmap_free(&m);
}

static void test_malformed_lines_skipped(void)
{
	struct perfmap_budget b = plenty();
	char *longline = malloc(PERFMAP_LINE_MAX + 64);
	struct perfmap m;

	if (!longline)
		return;
	map_at(&m, "malformed.map");
	append(m.path, "zz 10 bad-hex\n"
		       "1000\n"
		       "1000 10\n"
		       "1000 10 \n"
		       "1000 0 empty\n"
		       "ffffffffffffffff 10 wraps\n"
		       "10000000000000000 1 seventeen-digits\n"
		       "1000 100000000 four-gib\n"
		       "1000-10 dash\n"
		       "\n"
		       "8000 10 good\n");
	/* A line with a NUL in it. */
	append(m.path, "9000 10 nu");
	{
		int fd = open(m.path, O_WRONLY | O_APPEND);

		CHECK_EQ(write(fd, "\0l\n", 3), 3);
		close(fd);
	}
	/* A line longer than PERFMAP_LINE_MAX, then a good one. */
	memset(longline, 'x', PERFMAP_LINE_MAX + 60);
	memcpy(longline, "a000 10 ", 8);
	longline[PERFMAP_LINE_MAX + 60] = '\0';
	append(m.path, longline);
	append(m.path, "\nb000 10 after-long\n");
	CHECK_EQ(perfmap_read(&m, &pool, &b), 2);
	CHECK_STR(name_at(&m, 0x8000), "good");
	CHECK_STR(name_at(&m, 0xb000), "after-long");
	CHECK_STR(name_at(&m, 0x1000), "");
	CHECK_STR(name_at(&m, 0x9000), "");
	CHECK_STR(name_at(&m, 0xa000), "");
	CHECK_EQ(m.malformed, 12);
	perfmap_free(&m);
	free(longline);
}

static void test_untrusted_files_refused(void)
{
	struct perfmap_budget b = plenty();
	char target[128];
	struct perfmap m;

	/* A symbolic link (to a file that would pass). */
	map_at(&m, "link.map");
	(void)snprintf(target, sizeof(target), "%s/target", dir);
	append(target, "1000 10 lie\n");
	CHECK_EQ(symlink(target, m.path), 0);
	CHECK_EQ(perfmap_read(&m, &pool, &b), -EPERM);
	CHECK_EQ(m.n, 0);
	perfmap_free(&m);

	/* A FIFO: refused at once, never waited on. */
	map_at(&m, "fifo.map");
	CHECK_EQ(mkfifo(m.path, 0644), 0);
	CHECK_EQ(perfmap_read(&m, &pool, &b), -EPERM);
	perfmap_free(&m);

	/* A directory. */
	map_at(&m, "dir.map");
	CHECK_EQ(mkdir(m.path, 0755), 0);
	CHECK(perfmap_read(&m, &pool, &b) < 0);
	CHECK_EQ(m.n, 0);
	(void)rmdir(m.path);

	/* Writable by others. */
	map_at(&m, "open.map");
	append(m.path, "1000 10 lie\n");
	CHECK_EQ(chmod(m.path, 0666), 0);
	CHECK_EQ(perfmap_read(&m, &pool, &b), -EPERM);
	perfmap_free(&m);

	/* Owned by a user who is neither root nor the process'. As root,
	 * the file is given away; otherwise the process is said to run as
	 * another user than the file's owner (this test's uid). */
	map_at(&m, "other.map");
	append(m.path, "1000 10 lie\n");
	if (geteuid() == 0) {
		CHECK_EQ(chown(m.path, 12345, 12345), 0);
		m.uid = 4242;
	} else {
		m.uid = (uint32_t)getuid() + 1;
	}
	CHECK_EQ(perfmap_read(&m, &pool, &b), -EPERM);
	CHECK_EQ(m.n, 0);
	/* ... and read once it belongs to the process' user. */
	m.uid = geteuid() == 0 ? 12345 : (uint32_t)getuid();
	CHECK_EQ(perfmap_read(&m, &pool, &b), 1);
	CHECK_STR(name_at(&m, 0x1000), "lie");
	perfmap_free(&m);
}

static void test_budget_caps_memory(void)
{
	/* 10 bytes a line: three fit in 35 bytes. */
	struct perfmap_budget b = {.bytes = 35, .entries = 1000};
	struct perfmap m;

	map_at(&m, "cap.map");
	append(m.path, "1000 10 a\n2000 10 b\n3000 10 c\n4000 10 d\n");
	CHECK_EQ(perfmap_read(&m, &pool, &b), -ENOSPC);
	CHECK(m.capped);
	CHECK_STR(name_at(&m, 0x3000), "c");
	CHECK_STR(name_at(&m, 0x4000), "");
	/* Capped: never read again, what it has stays. */
	CHECK_EQ(perfmap_read(&m, &pool, &b), 0);
	CHECK_STR(name_at(&m, 0x1000), "a");
	perfmap_free(&m);

	b = (struct perfmap_budget){.bytes = 1 << 20, .entries = 2};
	map_at(&m, "cap2.map");
	append(m.path, "1000 10 a\n2000 10 b\n3000 10 c\n");
	CHECK_EQ(perfmap_read(&m, &pool, &b), -ENOSPC);
	CHECK_EQ(m.n, 2);
	CHECK_EQ(b.entries, 0);
	perfmap_free(&m);
}

static void test_replaced_file_read_anew(void)
{
	struct perfmap_budget b = plenty();
	struct perfmap m;

	map_at(&m, "replaced.map");
	append(m.path, "1000 10 one\n2000 10 two\n");
	CHECK_EQ(perfmap_read(&m, &pool, &b), 2);
	/* A new file in its place, shorter than what was read. */
	CHECK_EQ(unlink(m.path), 0);
	append(m.path, "3000 10 three\n");
	CHECK_EQ(perfmap_read(&m, &pool, &b), 1);
	CHECK_STR(name_at(&m, 0x3000), "three");
	CHECK_STR(name_at(&m, 0x1000), "one");
	perfmap_free(&m);
}

static void sleep_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000,
			      .tv_nsec = (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* The symbolizer names an address of this process that is in no module
 * from /tmp/perf-PID.map, and keeps the names once the process is said to
 * have exited. */
static void test_symbolizer_names_jit_code(void)
{
	struct symbols *s = symbols_new();
	struct symbols_frame fr;
	char path[64];
	uint32_t jit, other;
	const char *w;

	if (!s)
		return;
	(void)snprintf(path, sizeof(path), "/tmp/perf-%d.map", (int)getpid());
	(void)unlink(path);
	jit = symbols_jit_open(s, (uint32_t)getpid(), (uint32_t)getuid());
	CHECK(jit != 0);
	append(path, "7f1234560000 100 JS:*fib /srv/app.js:1:13\n");
	symbols_lookup(s, jit, NULL, 0, 0x7f1234560010, false, &fr);
	CHECK_STR(fr.function, "JS:*fib /srv/app.js:1:13");
	CHECK_STR(fr.module, "[jit]");
	CHECK(fr.jit && fr.known && fr.mod == NULL);
	CHECK(fr.system_name == fr.function);
	/* A return address is looked up at the call: addr - 1. */
	symbols_lookup(s, jit, NULL, 0, 0x7f1234560100, true, &fr);
	CHECK_STR(fr.function, "JS:*fib /srv/app.js:1:13");
	symbols_lookup(s, jit, NULL, 0, 0x7f1234560100, false, &fr);
	CHECK_STR(fr.function, "0x7f1234560100");
	CHECK_STR(fr.module, "[unknown]");
	CHECK(!fr.jit);

	/* Code compiled later is read when first met (after a pause:
	 * reads of one map are 100 ms apart at least). */
	append(path, "7f1234570000 80 JS:~handler(req, res) /srv/app.js:9:1\n");
	sleep_ms(120);
	symbols_lookup(s, jit, NULL, 0, 0x7f1234570004, false, &fr);
	CHECK_STR(fr.function, "JS:~handler(req, res) /srv/app.js:9:1");

	/* Another process (a reused pid: each registration is its own map)
	 * and no map at all. */
	other = symbols_jit_open(s, (uint32_t)getpid(), (uint32_t)getuid());
	CHECK(other != 0 && other != jit);
	symbols_lookup(s, 0, NULL, 0, 0x7f1234560010, false, &fr);
	CHECK_STR(fr.function, "0x7f1234560010");

	/* Exited: read to the end once, then never again; names stay. */
	append(path, "7f1234580000 80 JS:*last /srv/app.js:20:1\n");
	symbols_jit_exited(s, jit);
	CHECK_EQ(unlink(path), 0);
	append(path, "7f1234590000 80 JS:*someone-else\n");
	sleep_ms(120);
	symbols_lookup(s, jit, NULL, 0, 0x7f1234580000, false, &fr);
	CHECK_STR(fr.function, "JS:*last /srv/app.js:20:1");
	symbols_lookup(s, jit, NULL, 0, 0x7f1234560010, false, &fr);
	CHECK_STR(fr.function, "JS:*fib /srv/app.js:1:13");
	symbols_lookup(s, jit, NULL, 0, 0x7f1234590000, false, &fr);
	CHECK_STR(fr.function, "0x7f1234590000");
	CHECK(symbols_warning(s) == NULL);
	(void)unlink(path);

	/* A map not to be trusted: one line says so, once. */
	append(path, "7f12345a0000 80 JS:*lie\n");
	CHECK_EQ(chmod(path, 0666), 0);
	other = symbols_jit_open(s, (uint32_t)getpid(), (uint32_t)getuid());
	symbols_lookup(s, other, NULL, 0, 0x7f12345a0000, false, &fr);
	CHECK_STR(fr.function, "0x7f12345a0000");
	w = symbols_warning(s);
	CHECK(w && strstr(w, path) && strstr(w, "not read"));
	sleep_ms(120);
	symbols_lookup(s, other, NULL, 0, 0x7f12345a0000, false, &fr);
	CHECK(symbols_warning(s) == NULL);
	(void)unlink(path);
	symbols_free(s);
}

int main(void)
{
	if (!mkdtemp(dir)) {
		printf("Bail out! mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	RUN(test_lines_and_lookups);
	RUN(test_appends_and_partial_lines);
	RUN(test_overlaps_later_wins);
	RUN(test_malformed_lines_skipped);
	RUN(test_untrusted_files_refused);
	RUN(test_budget_caps_memory);
	RUN(test_replaced_file_read_anew);
	RUN(test_symbolizer_names_jit_code);
	strpool_free(&pool);
	{
		char cmd[128];

		(void)snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		(void)system(cmd);
	}
	return check_done();
}
