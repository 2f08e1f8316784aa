/*
 * folded.c — see folded.h.
 */
#include "folded.h"

#include <errno.h>
#include <inttypes.h>

/*
 * A frame's name as one folded field: ';' separates frames and the last
 * space separates the count, so both (and line breaks) become '_'.
 */
static void folded_name(const char *s, FILE *out)
{
	for (; *s; s++)
		(void)fputc(*s == ';' || *s == ' ' || *s == '\n' || *s == '\r'
				    ? '_'
				    : *s,
			    out);
}

int folded_write(const struct profile *p, FILE *out)
{
	for (size_t i = 0; i < p->nstacks; i++) {
		const struct profile_stack *s = &p->stacks[i];

		if (!s->samples || !s->nframes)
			continue;
		for (uint32_t j = 0; j < s->nframes; j++) {
			if (j)
				(void)fputc(';', out);
			folded_name(p->frames[s->frames[j]].function, out);
		}
		(void)fprintf(out, " %" PRIu64 "\n", s->samples);
	}
	return ferror(out) ? -EIO : 0;
}
