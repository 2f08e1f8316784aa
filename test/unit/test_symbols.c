/*
 * test_symbols.c — symbols.c against the module map of this very process.
 *
 * The map is built the way the shim builds it: dl_iterate_phdr() gives each
 * object's bias and program headers, [lo, hi) spans its PT_LOAD segments,
 * the build id comes from its PT_NOTE segments, and the main executable is
 * recorded under its /proc/self/exe path. The executable must be PIE (the
 * default) so that a non-zero bias is exercised.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <dirent.h>
#include <errno.h>
#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <link.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
/* collector/ is not on the test's include path in meson.build. */
#include "symbols/symbols.h"

#define MAP_MAX 64

static struct ring_module map[MAP_MAX];
static size_t map_len;
static int map_exe_index = -1;
static const char *exe_name; /* basename of /proc/self/exe: "test_symbols" */
static int map_libc_index = -1;

/* ---- functions whose addresses the tests resolve ---- */

/* Neither inlined, cloned nor specialised, so the symbol is the function. */
#if defined(__clang__)
#define SYMTEST_NOINLINE __attribute__((noinline))
#else
#define SYMTEST_NOINLINE __attribute__((noipa))
#endif

int symtest_target(int x);
void symtest_record_return(void);

static volatile uintptr_t symtest_return_addr;
static volatile int symtest_sink;
static volatile int symtest_call_line;

/* Record the address this call returns to, inside its caller. */
SYMTEST_NOINLINE void symtest_record_return(void)
{
	symtest_return_addr = (uintptr_t)__builtin_return_address(0);
}

static const int symtest_target_first_line = __LINE__;
SYMTEST_NOINLINE int symtest_target(int x)
{
	int r = 0;

	for (int i = 0; i < x; i++)
		r += i * x + symtest_sink;
	symtest_record_return(); symtest_call_line = __LINE__;
	return r + 1;
}
static const int symtest_target_last_line = __LINE__;

/*
 * A function whose last instruction is a call, immediately followed by the
 * next function: the call's return address is the first byte of
 * symtest_after_tail, yet as a return address it belongs to
 * symtest_tail_caller. Never executed; written in assembly so the layout is
 * exact (a compiler would pad between functions).
 */
#if defined(__x86_64__) || defined(__aarch64__)
#define SYMTEST_HAVE_TAIL 1
void symtest_tail_caller(void);
void symtest_after_tail(void);
#if defined(__x86_64__)
__asm__("	.text\n"
	"	.p2align 4\n"
	"	.type symtest_tail_caller, @function\n"
	"symtest_tail_caller:\n"
	"	subq $8, %rsp\n"
	"	call symtest_after_tail\n"
	"	.size symtest_tail_caller, .-symtest_tail_caller\n"
	"	.type symtest_after_tail, @function\n"
	"symtest_after_tail:\n"
	"	ret\n"
	"	.size symtest_after_tail, .-symtest_after_tail\n");
#else
__asm__("	.text\n"
	"	.p2align 4\n"
	"	.type symtest_tail_caller, %function\n"
	"symtest_tail_caller:\n"
	"	stp x29, x30, [sp, #-16]!\n"
	"	bl symtest_after_tail\n"
	"	.size symtest_tail_caller, .-symtest_tail_caller\n"
	"	.type symtest_after_tail, %function\n"
	"symtest_after_tail:\n"
	"	ret\n"
	"	.size symtest_after_tail, .-symtest_after_tail\n");
#endif
#else
#define SYMTEST_HAVE_TAIL 0
#endif

/* ---- building the module map ---- */

/*
 * Copy the NT_GNU_BUILD_ID descriptor found in the notes at [p, p + size),
 * aligned to `align`, into m. Leaves m alone when there is none.
 */
static void map_read_build_id(struct ring_module *m, const unsigned char *p,
			      size_t size, size_t align)
{
	size_t pos = 0;

	if (align < 4)
		align = 4;
	while (pos + sizeof(ElfW(Nhdr)) <= size) {
		ElfW(Nhdr) nh;
		size_t name_off, desc_off;

		memcpy(&nh, p + pos, sizeof(nh));
		name_off = pos + sizeof(nh);
		desc_off = name_off + ((nh.n_namesz + align - 1) &
				       ~(align - 1));
		if (desc_off + nh.n_descsz > size)
			return;
		if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 &&
		    memcmp(p + name_off, "GNU", 4) == 0 &&
		    nh.n_descsz <= RING_BUILD_ID_MAX) {
			memcpy(m->build_id, p + desc_off, nh.n_descsz);
			m->build_id_len = nh.n_descsz;
			return;
		}
		pos = desc_off + ((nh.n_descsz + align - 1) & ~(align - 1));
	}
}

static int map_add(struct dl_phdr_info *info, size_t size, void *data)
{
	struct ring_module *m;
	uint64_t lo = UINT64_MAX, hi = 0;

	(void)size;
	(void)data;
	if (map_len == MAP_MAX)
		return 1;
	m = &map[map_len];
	memset(m, 0, sizeof(*m));

	if (map_len == 0) {
		/* The first object is the main executable; its name is "". */
		ssize_t n = readlink("/proc/self/exe", m->path,
				     sizeof(m->path) - 1);

		if (n <= 0)
			return 0;
		m->path[n] = '\0';
		map_exe_index = (int)map_len;
		exe_name = strrchr(m->path, '/') ? strrchr(m->path, '/') + 1
						 : m->path;
	} else if (info->dlpi_name && info->dlpi_name[0]) {
		strncpy(m->path, info->dlpi_name, sizeof(m->path) - 1);
	} else {
		return 0;
	}

	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];

		if (ph->p_type == PT_LOAD) {
			uint64_t start = info->dlpi_addr + ph->p_vaddr;
			uint64_t end = start + ph->p_memsz;

			if (start < lo)
				lo = start;
			if (end > hi)
				hi = end;
		} else if (ph->p_type == PT_NOTE && m->build_id_len == 0) {
			map_read_build_id(m, (const unsigned char *)
					  (info->dlpi_addr + ph->p_vaddr),
					  ph->p_memsz, ph->p_align);
		}
	}
	if (lo >= hi)
		return 0;
	m->bias = info->dlpi_addr;
	m->lo = lo;
	m->hi = hi;

	if (map_libc_index < 0 && strstr(m->path, "/libc.so"))
		map_libc_index = (int)map_len;
	map_len++;
	return 0;
}

static void map_build(void)
{
	dl_iterate_phdr(map_add, NULL);
	printf("# module map of this process (%zu objects):\n", map_len);
	for (size_t i = 0; i < map_len; i++)
		printf("#   %016" PRIx64 "-%016" PRIx64 " bias %" PRIx64
		       " build id %u bytes  %s\n", map[i].lo, map[i].hi,
		       map[i].bias, map[i].build_id_len, map[i].path);
}

/* True when our own executable carries DWARF line tables (built with -g). */
static bool exe_has_debug_line(void)
{
	bool found = false;
	Elf_Scn *scn = NULL;
	size_t shstrndx;
	Elf *elf;
	int fd;

	if (map_exe_index < 0)
		return false;
	elf_version(EV_CURRENT);
	fd = open(map[map_exe_index].path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	elf = elf_begin(fd, ELF_C_READ, NULL);
	if (elf && elf_getshdrstrndx(elf, &shstrndx) == 0) {
		while ((scn = elf_nextscn(elf, scn)) != NULL) {
			GElf_Shdr shdr;
			const char *name;

			if (!gelf_getshdr(scn, &shdr))
				continue;
			name = elf_strptr(elf, shstrndx, shdr.sh_name);
			if (name && strcmp(name, ".debug_line") == 0)
				found = true;
		}
	}
	elf_end(elf);
	close(fd);
	return found;
}

/* Count this process' open file descriptors, or -1 when unknown. */
static int fd_count(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* The address of libc's own definition of `name`, or 0. */
static uintptr_t libc_addr(const char *name)
{
	void *h = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
	void *sym;

	/* dlsym through libc's own handle skips sanitizer interceptors. */
	if (!h)
		return 0;
	sym = dlsym(h, name);
	dlclose(h);
	return (uintptr_t)sym;
}

/* ---- tests ---- */

static void test_map(void)
{
	CHECK(map_len >= 2);
	CHECK(map_exe_index == 0);
	CHECK(map_libc_index > 0);
	if (map_exe_index < 0)
		return;
	/* PIE: the executable is loaded at a non-zero bias. */
	CHECK(map[map_exe_index].bias != 0);
	CHECK(map[map_exe_index].build_id_len > 0);
	CHECK(map[map_exe_index].lo <= (uintptr_t)&symtest_target);
	CHECK((uintptr_t)&symtest_target < map[map_exe_index].hi);
}

static void test_own_function(void)
{
	struct symbols *s = symbols_new();
	struct symbols_frame fr, fr2;
	uintptr_t fn = (uintptr_t)&symtest_target;
	bool debug = exe_has_debug_line();

	CHECK(s != NULL);
	if (!s)
		return;

	symbols_lookup(s, 0, map, map_len, fn, false, &fr);
	CHECK(fr.known);
	CHECK_STR(fr.function, "symtest_target");
	CHECK_STR(fr.module, exe_name);
	CHECK_EQ(fr.offset, fn - map[map_exe_index].bias);
	if (debug) {
		CHECK(fr.file != NULL);
		CHECK(fr.file && ends_with(fr.file, "test_symbols.c"));
		CHECK(fr.line > symtest_target_first_line);
		CHECK(fr.line < symtest_target_last_line);
		printf("# symtest_target at %s:%d\n", fr.file ? fr.file : "?",
		       fr.line);
	} else {
		printf("# no .debug_line in the executable: "
		       "file:line not checked\n");
		CHECK(fr.file == NULL);
		CHECK_EQ(fr.line, 0);
	}

	/* The cache hands back the very same strings. */
	symbols_lookup(s, 0, map, map_len, fn, false, &fr2);
	CHECK(fr2.function == fr.function);
	CHECK(fr2.module == fr.module);
	CHECK(fr2.file == fr.file);
	CHECK_EQ(fr2.line, fr.line);

	/* An address inside the function: the return address of its call. */
	symtest_return_addr = 0;
	CHECK_EQ(symtest_target(3), 1 + 0 + 3 + 6);
	CHECK(symtest_return_addr > fn);
	symbols_lookup(s, 0, map, map_len, symtest_return_addr, false, &fr);
	CHECK(fr.known);
	CHECK_STR(fr.function, "symtest_target");
	CHECK(fr.function == fr2.function);
	symbols_lookup(s, 0, map, map_len, symtest_return_addr, true, &fr);
	CHECK(fr.known);
	CHECK_STR(fr.function, "symtest_target");
	CHECK_EQ(fr.offset, symtest_return_addr - 1 - map[map_exe_index].bias);
	if (debug) {
		/* The call site, addr - 1, is on the line of the call. */
		CHECK(fr.file && ends_with(fr.file, "test_symbols.c"));
		CHECK_EQ(fr.line, symtest_call_line);
	}
	symbols_free(s);
}

static void test_return_address_at_function_end(void)
{
#if SYMTEST_HAVE_TAIL
	struct symbols *s = symbols_new();
	struct symbols_frame fr;
	uintptr_t ret_addr = (uintptr_t)&symtest_after_tail;

	CHECK(s != NULL);
	if (!s)
		return;
	/* As a leaf address, it is the first byte of the next function... */
	symbols_lookup(s, 0, map, map_len, ret_addr, false, &fr);
	CHECK(fr.known);
	CHECK_STR(fr.function, "symtest_after_tail");
	/* ...as a return address, it belongs to the function that called. */
	symbols_lookup(s, 0, map, map_len, ret_addr, true, &fr);
	CHECK(fr.known);
	CHECK_STR(fr.function, "symtest_tail_caller");
	CHECK_STR(fr.module, exe_name);
	CHECK_EQ(fr.offset, ret_addr - 1 - map[map_exe_index].bias);
	symbols_free(s);
#else
	printf("# no tail-call fixture for this architecture\n");
#endif
}

/*
 * Debian's libc.so.6 has no .symtab: its local functions are named only in
 * the separate debug file libc6-dbg installs where every -dbgsym package
 * puts its files, /usr/lib/debug/.build-id/xx/yyyy.debug. Local functions
 * of libc taken from that file must come back by name from the default
 * search, with no directory given.
 */
static void test_libc_debug_file_by_build_id(void)
{
	const struct ring_module *libc;
	char path[256], hex[2 * RING_BUILD_ID_MAX + 1];
	struct symbols *s = symbols_new();
	int fd = -1, tried = 0, named = 0, libc_symtab = 0;
	Elf *elf = NULL, *own = NULL;
	Elf_Scn *scn = NULL;

	CHECK(s != NULL && map_libc_index >= 0);
	if (!s || map_libc_index < 0)
		goto out;
	libc = &map[map_libc_index];
	CHECK(libc->build_id_len > 0);
	for (uint32_t i = 0; i < libc->build_id_len; i++)
		(void)snprintf(hex + 2 * i, 3, "%02x", libc->build_id[i]);
	(void)snprintf(path, sizeof(path), "/usr/lib/debug/.build-id/%.2s/%s.debug",
		       hex, hex + 2);
	elf_version(EV_CURRENT);

	/* The library itself is stripped of its symbol table. */
	fd = open(libc->path, O_RDONLY | O_CLOEXEC);
	own = fd >= 0 ? elf_begin(fd, ELF_C_READ, NULL) : NULL;
	CHECK(own != NULL);
	while (own && (scn = elf_nextscn(own, scn)) != NULL) {
		GElf_Shdr sh;

		if (gelf_getshdr(scn, &sh) && sh.sh_type == SHT_SYMTAB)
			libc_symtab = 1;
	}
	CHECK(!libc_symtab);
	if (own)
		elf_end(own);
	if (fd >= 0)
		close(fd);

	/* libc6-dbg (scripts/setup.sh) installs it. */
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		printf("# %s: %s (is libc6-dbg installed?)\n", path,
		       strerror(errno));
		CHECK(fd >= 0);
		goto out;
	}
	elf = elf_begin(fd, ELF_C_READ, NULL);
	scn = NULL;
	while (elf && (scn = elf_nextscn(elf, scn)) != NULL && tried < 50) {
		Elf_Data *data;
		GElf_Shdr sh;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_SYMTAB ||
		    !sh.sh_entsize)
			continue;
		data = elf_getdata(scn, NULL);
		for (size_t i = 1; data && i < sh.sh_size / sh.sh_entsize &&
				   tried < 50; i++) {
			struct symbols_frame fr;
			const char *name;
			GElf_Sym sym;

			if (!gelf_getsym(data, (int)i, &sym) ||
			    GELF_ST_BIND(sym.st_info) != STB_LOCAL ||
			    GELF_ST_TYPE(sym.st_info) != STT_FUNC ||
			    sym.st_size < 32 || sym.st_shndx == SHN_UNDEF)
				continue;
			name = elf_strptr(elf, sh.sh_link, sym.st_name);
			if (!name || !name[0])
				continue;
			tried++;
			symbols_lookup(s, 0, map, map_len,
				       libc->bias + sym.st_value + sym.st_size / 2,
				       false, &fr);
			/* An alias of another name at the same code is as
			 * right; most locals have none. */
			if (fr.known && strcmp(fr.function, name) == 0 &&
			    strcmp(fr.module, "libc.so.6") == 0)
				named++;
		}
	}
	printf("# %d of %d local functions of libc named from %s\n", named,
	       tried, path);
	CHECK_EQ(tried, 50);
	CHECK(named >= 40);
	if (elf)
		elf_end(elf);
	close(fd);
out:
	symbols_free(s);
}

static void test_libc_function(void)
{
	struct symbols *s = symbols_new();
	struct symbols_frame fr, fr2;
	struct ring_module shifted[MAP_MAX];
	uintptr_t addr = libc_addr("getpid");
	const uint64_t delta = 0x100000000ULL;

	CHECK(s != NULL);
	CHECK(addr != 0);
	if (!s || !addr || map_libc_index < 0) {
		symbols_free(s);
		return;
	}
	symbols_lookup(s, 0, map, map_len, addr, false, &fr);
	CHECK(fr.known);
	CHECK(strstr(fr.function, "getpid") != NULL);
	CHECK(strncmp(fr.module, "libc", 4) == 0);
	CHECK_EQ(fr.offset, addr - map[map_libc_index].bias);
	printf("# getpid resolved to %s in %s (%s:%d)\n", fr.function,
	       fr.module, fr.file ? fr.file : "no source", fr.line);

	/*
	 * Another process mapping the same libc elsewhere shares the file:
	 * same strings, same offset.
	 */
	memcpy(shifted, map, map_len * sizeof(map[0]));
	shifted[map_libc_index].bias += delta;
	shifted[map_libc_index].lo += delta;
	shifted[map_libc_index].hi += delta;
	symbols_lookup(s, 0, shifted, map_len, addr + delta, false, &fr2);
	CHECK(fr2.known);
	CHECK(fr2.function == fr.function);
	CHECK(fr2.module == fr.module);
	CHECK(fr2.file == fr.file);
	CHECK_EQ(fr2.offset, fr.offset);
	symbols_free(s);
}

static void test_unknown_address(void)
{
	struct symbols *s = symbols_new();
	struct symbols_frame fr, fr2;

	CHECK(s != NULL);
	if (!s)
		return;
	symbols_lookup(s, 0, map, map_len, 0x10, false, &fr);
	CHECK(!fr.known);
	CHECK_STR(fr.module, "[unknown]");
	CHECK_STR(fr.function, "0x10");
	CHECK(fr.file == NULL);
	CHECK_EQ(fr.line, 0);
	CHECK_EQ(fr.offset, 0x10);

	/* A return address names its call site, addr - 1. */
	symbols_lookup(s, 0, map, map_len, 0x11, true, &fr2);
	CHECK_STR(fr2.module, "[unknown]");
	CHECK(fr2.function == fr.function);

	/* An empty map and address 0 as a return address are fine too. */
	symbols_lookup(s, 0, NULL, 0, 0, true, &fr);
	CHECK_STR(fr.module, "[unknown]");
	CHECK_STR(fr.function, "0x0");
	symbols_free(s);
}

static void test_build_id_mismatch(void)
{
	struct symbols *s = symbols_new();
	struct symbols_frame fr;
	struct ring_module altered[MAP_MAX];
	uintptr_t fn = (uintptr_t)&symtest_target;
	uint64_t off = fn - map[map_exe_index].bias;
	char expect[RING_MODULE_PATH_MAX + 32];

	CHECK(s != NULL);
	if (!s)
		return;
	memcpy(altered, map, map_len * sizeof(map[0]));
	altered[map_exe_index].build_id[0] ^= 0xff;

	snprintf(expect, sizeof(expect), "%s+0x%" PRIx64, exe_name, off);
	symbols_lookup(s, 0, altered, map_len, fn, false, &fr);
	CHECK(!fr.known);
	CHECK_STR(fr.function, expect);
	CHECK_STR(fr.module, exe_name);
	CHECK(fr.file == NULL);
	CHECK_EQ(fr.line, 0);
	CHECK_EQ(fr.offset, off);

	/* The file under its real build id is unaffected... */
	symbols_lookup(s, 0, map, map_len, fn, false, &fr);
	CHECK(fr.known);
	CHECK_STR(fr.function, "symtest_target");

	/* ...and so is a map entry without a build id. */
	altered[map_exe_index].build_id_len = 0;
	symbols_lookup(s, 0, altered, map_len, fn, false, &fr);
	CHECK(fr.known);
	CHECK_STR(fr.function, "symtest_target");
	symbols_free(s);
}

/* Write len bytes to a new temporary file; its path goes to path. */
static bool temp_file_write(char *path, const void *data, size_t len)
{
	int fd = mkstemp(path);
	bool ok;

	if (fd < 0)
		return false;
	ok = write(fd, data, len) == (ssize_t)len;
	close(fd);
	return ok;
}

static void test_unusable_files(void)
{
	static const char garbage[] = "\177ELF this is not really an ELF file";
	static const char *const paths[] = {
		"/nonexistent/profshim-test/libmissing.so.1",
		"/dev/null",
		"/",
	};
	char tmp_elf[] = "/tmp/test_symbols.badelf.XXXXXX";
	char tmp_text[] = "/tmp/test_symbols.text.XXXXXX";
	struct symbols *s = symbols_new();
	struct symbols_frame fr, fr2;
	struct ring_module bad[2];
	bool have_elf, have_text;

	CHECK(s != NULL);
	if (!s)
		return;
	have_elf = temp_file_write(tmp_elf, garbage, sizeof(garbage));
	have_text = temp_file_write(tmp_text, "hello\n", 6);
	CHECK(have_elf && have_text);

	for (size_t i = 0; i < 5; i++) {
		const char *path = i < 3    ? paths[i]
				   : i == 3 ? tmp_elf
					    : tmp_text;
		const char *base = strrchr(path, '/');
		char expect[RING_MODULE_PATH_MAX + 32];

		base = base && base[1] ? base + 1 : path;
		memset(bad, 0, sizeof(bad));
		bad[0].bias = 0x1000;
		bad[0].lo = 0x1000;
		bad[0].hi = 0x2000;
		bad[0].build_id_len = 20;
		memset(bad[0].build_id, 0xab, 20);
		strncpy(bad[0].path, path, sizeof(bad[0].path) - 1);
		/* The same file again, without build id, mapped elsewhere. */
		bad[1] = bad[0];
		bad[1].build_id_len = 0;
		bad[1].bias = bad[1].lo = 0x3000;
		bad[1].hi = 0x4000;

		snprintf(expect, sizeof(expect), "%s+0x234", base);
		symbols_lookup(s, 0, bad, 2, 0x1234, false, &fr);
		CHECK(!fr.known);
		CHECK_STR(fr.module, base);
		CHECK_STR(fr.function, expect);
		CHECK(fr.file == NULL);
		CHECK_EQ(fr.offset, 0x234);
		symbols_lookup(s, 0, bad, 2, 0x3234, false, &fr2);
		CHECK(!fr2.known);
		CHECK(fr2.function == fr.function);
		symbols_lookup(s, 0, bad, 2, 0x1234, false, &fr2);
		CHECK(fr2.function == fr.function);
	}
	if (have_elf)
		unlink(tmp_elf);
	if (have_text)
		unlink(tmp_text);
	symbols_free(s);
}

/*
 * Resolving in every module of the map and freeing the symbolizer leaves no
 * file descriptor behind.
 */
static void test_no_fd_leak(void)
{
	int before = fd_count(), during, after;
	struct symbols *s = symbols_new();
	struct symbols_frame fr;
	size_t nknown = 0;

	CHECK(s != NULL);
	if (!s)
		return;
	for (size_t i = 0; i < map_len; i++) {
		uint64_t span = map[i].hi - map[i].lo;

		for (uint64_t k = 0; k < 16; k++) {
			symbols_lookup(s, 0, map, map_len,
				       map[i].lo + span * k / 16, false, &fr);
			nknown += fr.known;
		}
	}
	during = fd_count();
	symbols_free(s);
	after = fd_count();
	printf("# %zu of %zu lookups known; open fds %d before, %d while "
	       "open, %d after\n", nknown, map_len * 16, before, during, after);
	CHECK(nknown > map_len);
	CHECK_EQ(after, before);
}

/* The map entry holding addr, or -1. */
static int map_find(uintptr_t addr)
{
	for (size_t i = 0; i < map_len; i++) {
		if (map[i].lo <= addr && addr < map[i].hi)
			return (int)i;
	}
	return -1;
}

/*
 * Many distinct files (symlinks to one library, each its own path and so
 * its own file to the symbolizer): only a bounded number stay open, so this
 * costs fewer descriptors than files even where each open file holds some,
 * and files closed to make room are reopened when a new offset in them is
 * looked up. libz is used because it is small and a dependency of libdw.
 */
static void test_many_files(void)
{
	enum { NFILES = 300, NREOPEN = 20 };
	char dir[] = "/tmp/test_symbols.many.XXXXXX";
	char path[sizeof(dir) + 32];
	const char *first[2] = { NULL, NULL };
	const char *names[2] = { "zlibVersion", "adler32" };
	uintptr_t addrs[2] = { 0, 0 };
	struct ring_module m;
	struct symbols_frame fr;
	struct timespec t0, t1;
	struct symbols *s;
	int made = 0, known = 0, same = 0, lookups = 0;
	int lib, before, during = -1;
	void *h = dlopen("libz.so.1", RTLD_LAZY | RTLD_NOLOAD);

	for (int k = 0; h && k < 2; k++)
		addrs[k] = (uintptr_t)dlsym(h, names[k]);
	if (h)
		dlclose(h);
	lib = map_find(addrs[0]);
	if (lib < 0 || map_find(addrs[1]) != lib) {
		printf("# libz.so.1 is not loaded: skipped\n");
		return;
	}
	CHECK(mkdtemp(dir) != NULL);
	for (int i = 0; i < NFILES; i++) {
		snprintf(path, sizeof(path), "%s/libz%03d.so", dir, i);
		made += symlink(map[lib].path, path) == 0;
	}
	CHECK_EQ(made, NFILES);

	before = fd_count();
	s = symbols_new();
	CHECK(s != NULL);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	/* The second pass looks up a new offset in files closed long ago. */
	for (int pass = 0; s && pass < 2; pass++) {
		for (int i = 0; i < (pass ? NREOPEN : NFILES); i++) {
			m = map[lib];
			snprintf(m.path, sizeof(m.path), "%s/libz%03d.so",
				 dir, i);
			symbols_lookup(s, 0, &m, 1, addrs[pass], false, &fr);
			lookups++;
			known += fr.known;
			if (!first[pass])
				first[pass] = fr.function;
			same += fr.function == first[pass];
		}
		if (pass == 0)
			during = fd_count();
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);

	CHECK_EQ(known, NFILES + NREOPEN);
	CHECK_EQ(same, NFILES + NREOPEN);
	CHECK(first[0] && strcmp(first[0], names[0]) == 0);
	CHECK(first[1] && strcmp(first[1], names[1]) == 0);
	CHECK(during - before < NFILES);
	printf("# %d uncached lookups in %d files: %.1f ms; open fds %d "
	       "before, %d with all files used\n", lookups, NFILES,
	       ((double)(t1.tv_sec - t0.tv_sec) * 1e3 +
		(double)(t1.tv_nsec - t0.tv_nsec) / 1e6), before, during);
	symbols_free(s);

	for (int i = 0; i < NFILES; i++) {
		snprintf(path, sizeof(path), "%s/libz%03d.so", dir, i);
		unlink(path);
	}
	rmdir(dir);
}

static void test_cached_rate(void)
{
	struct symbols *s = symbols_new();
	struct symbols_frame fr;
	struct timespec t0, t1;
	uintptr_t addrs[6];
	size_t naddrs = 0, nknown = 0;
	const long n = 1000000;
	double secs;

	CHECK(s != NULL);
	if (!s)
		return;
	addrs[naddrs++] = (uintptr_t)&symtest_target;
	addrs[naddrs++] = (uintptr_t)&symtest_record_return;
	addrs[naddrs++] = (uintptr_t)&test_cached_rate;
	addrs[naddrs++] = (uintptr_t)&map_add;
	addrs[naddrs++] = libc_addr("getpid");
	addrs[naddrs++] = 0x10;
	for (size_t i = 0; i < naddrs; i++)
		symbols_lookup(s, 0, map, map_len, addrs[i], i & 1, &fr);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (long i = 0; i < n; i++) {
		size_t k = (size_t)i % naddrs;

		symbols_lookup(s, 0, map, map_len, addrs[k], k & 1, &fr);
		nknown += fr.known;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) +
	       (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	CHECK(nknown > 0);
	printf("# %ld cached lookups over %zu addresses and %zu modules in "
	       "%.1f ms: %.2f M lookups/s\n", n, naddrs, map_len, secs * 1e3,
	       secs > 0 ? (double)n / secs / 1e6 : 0.0);
	symbols_free(s);
}

int main(void)
{
	map_build();
	if (map_exe_index < 0) {
		printf("Bail out! could not build the module map\n");
		return 1;
	}
	RUN(test_map);
	RUN(test_own_function);
	RUN(test_return_address_at_function_end);
	RUN(test_libc_function);
	RUN(test_libc_debug_file_by_build_id);
	RUN(test_unknown_address);
	RUN(test_build_id_mismatch);
	RUN(test_unusable_files);
	RUN(test_no_fd_leak);
	RUN(test_many_files);
	RUN(test_cached_rate);
	return check_done();
}
