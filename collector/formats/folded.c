/*
 * folded.c — see folded.h.
 */
#include "formats/folded.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "util/table.h"

/*
 * Append a frame's name as one folded field: ';' separates frames, so it
 * (and line breaks) become '_'. Spaces stay: demangled C++ names have them
 * ("std::vector<int, std::allocator<int> >::push_back"), and every reader
 * of the format (flamegraph.pl, inferno, speedscope, Pyroscope) takes the
 * count after the line's last space, as perf's stackcollapse leaves them.
 * Returns the new length, or 0 when the line would not fit.
 */
static size_t folded_put(char *line, size_t len, size_t cap, const char *name)
{
	if (len && len < cap)
		line[len++] = ';';
	for (; *name; name++) {
		if (len + 1 >= cap)
			return 0;
		line[len++] = *name == ';' || *name == '\n' || *name == '\r'
				      ? '_'
				      : *name;
	}
	return len;
}

int folded_write(const struct profile *p, FILE *out)
{
	/* Stacks that differ only in lines or addresses fold together. */
	struct intern lines = {0};
	uint64_t *counts = calloc(p->nstacks + 1, sizeof(*counts));
	size_t cap = 1 << 16;
	char *line = malloc(cap);
	int r = 0;

	if (!counts || !line) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < p->nstacks; i++) {
		const struct profile_stack *s = &p->stacks[i];
		size_t len = 0;
		int64_t id;

		if (!s->samples || !s->nframes)
			continue;
		for (uint32_t j = 0; j < s->nframes && (j == 0 || len); j++)
			len = folded_put(line, len, cap,
					 p->frames[s->frames[j]].function);
		if (!len)
			continue; /* deeper than a line can hold: left out */
		id = intern_put(&lines, line, len);
		if (id < 0) {
			r = (int)id;
			goto out;
		}
		counts[id] += s->samples;
	}
	for (size_t id = 0; id < lines.count; id++)
		(void)fprintf(out, "%s %" PRIu64 "\n",
			      (const char *)intern_get(&lines, (uint32_t)id, NULL),
			      counts[id]);
	if (ferror(out))
		r = -EIO;
out:
	intern_free(&lines);
	free(counts);
	free(line);
	return r;
}
