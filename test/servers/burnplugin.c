/*
 * burnplugin — a shared library cpuserver loads with dlopen() while it
 * runs (its /load endpoint, or at start-up with --plugin-early), the way
 * Apache loads its modules and CPython its extension modules. Its one
 * function burns CPU, so a profile must name it, in this module, and walk
 * through it to cpuserver's own frames. Built like a distribution's
 * library: -O2, no frame pointers.
 */
#include <time.h>

static volatile unsigned long plugin_sink;

static double plugin_cpu_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

__attribute__((noinline)) void burn_plugin(double ms)
{
	double end = plugin_cpu_ms() + ms;
	unsigned long x = plugin_sink;

	while (plugin_cpu_ms() < end)
		for (int i = 0; i < 20000; i++)
			x = x * 2862933555777941757ul + (unsigned long)i;
	plugin_sink = x;
}
