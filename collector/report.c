/*
 * report.c — see report.h.
 */
#include "report.h"

#include <stdio.h>

int report_main(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "profshim-collector: report is not built yet\n");
	return 1;
}
