/*
 * fuzz_perfmap.c — libFuzzer target for the collector's perf map reader
 * (collector/symbols/perfmap.h), the parser of /tmp/perf-PID.map files that
 * any runtime of the profiled user writes.
 *
 *   clang-14 -g -O1 -fsanitize=fuzzer,address,undefined \
 *         -fno-sanitize-recover=undefined -D_GNU_SOURCE -Ishim -Icollector \
 *         collector/symbols/perfmap.c collector/symbols/strpool.c \
 *         collector/util/table.c test/fuzz/fuzz_perfmap.c -o fuzz_perfmap
 *   ./fuzz_perfmap test/fuzz/corpus_perfmap
 *
 * Input: the bytes a runtime appends to its map, in up to four parts split
 * at the byte 0xff (the map is read after each, as the collector reads one
 * that grows); the first byte, when the input is long enough, sets the
 * byte budget's size (so reads that run out are fuzzed too).
 *
 * Checked invariants, after every read:
 *   - the return value is the number of entries added, 0, or -ENOSPC;
 *   - the table is sorted by start, its ranges are non-empty, do not wrap
 *     and do not overlap, and every entry's name is non-empty, without '\n',
 *     and the one perfmap_find() gives for its first and last byte;
 *   - the read offset is within the file, at its start or just after a
 *     '\n', and never moves back;
 *   - the budget only shrinks, by no more than the bytes read.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_assert.h"
#include "symbols/perfmap.h"
#include "symbols/strpool.h"

#define PARTS_MAX 4

static char path[64];

static void check(const struct perfmap *m, int fd)
{
	off_t size = lseek(fd, 0, SEEK_END);

	ASSERT(size >= 0 && m->offset <= (uint64_t)size);
	if (m->offset > 0 && !m->skipping) {
		char c = 0;

		ASSERT(pread(fd, &c, 1, (off_t)m->offset - 1) == 1);
		ASSERT(c == '\n');
	}
	for (size_t i = 0; i < m->n; i++) {
		const struct perfmap_sym *e = &m->v[i];

		ASSERT(e->size > 0);
		ASSERT(e->start <= UINT64_MAX - e->size);
		ASSERT(e->name && e->name[0] && !strchr(e->name, '\n'));
		ASSERT(perfmap_find(m, e->start) == e);
		ASSERT(perfmap_find(m, e->start + e->size - 1) == e);
		if (i > 0)
			ASSERT(m->v[i - 1].start + m->v[i - 1].size <=
			       e->start);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct perfmap_budget b = {.bytes = 1 << 20, .entries = 1 << 16};
	struct strpool pool = {0};
	struct perfmap m;
	uint64_t last_offset = 0;
	size_t parts = 0;
	int fd;

	if (!path[0])
		(void)snprintf(path, sizeof(path), "/tmp/profshim-fuzz-%d.map",
			       (int)getpid());
	if (size > 8 && data[0] < 0x20) {
		b.bytes = (uint64_t)data[0] * 16;
		data++;
		size--;
	}
	(void)unlink(path);
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	ASSERT(fd >= 0);
	perfmap_init(&m, 1, (uint32_t)getuid());
	(void)snprintf(m.path, sizeof(m.path), "%s", path);

	while (size > 0 && parts++ < PARTS_MAX) {
		const uint8_t *cut = memchr(data, 0xff, size);
		size_t n = cut && parts < PARTS_MAX ? (size_t)(cut - data) : size;
		uint64_t before = b.bytes;
		int r;

		ASSERT(write(fd, data, n) == (ssize_t)n);
		data += n;
		size -= n;
		if (size > 0) {
			data++; /* the separator */
			size--;
		}
		r = perfmap_read(&m, &pool, &b);
		ASSERT(r >= 0 || r == -ENOSPC);
		ASSERT(b.bytes <= before &&
		       before - b.bytes <= (uint64_t)lseek(fd, 0, SEEK_END));
		ASSERT(m.offset >= last_offset);
		last_offset = m.offset;
		check(&m, fd);
	}
	close(fd);
	(void)unlink(path);
	perfmap_free(&m);
	strpool_free(&pool);
	return 0;
}
