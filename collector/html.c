/*
 * html.c — see html.h.
 */
#include "html.h"

#include <errno.h>

int html_write(const struct profile *p, FILE *out)
{
	(void)p;
	(void)out;
	return -ENOSYS;
}

int html_write_diff(const struct profile *before, const struct profile *after,
		    FILE *out)
{
	(void)before;
	(void)after;
	(void)out;
	return -ENOSYS;
}
