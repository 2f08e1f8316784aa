// cxxburn — cpuserver's plugin (see burnplugin.c) written in C++, built by
// test/integration/collector/test_names.py with g++: its CPU time goes to
// functions whose names demangle to what C++ names look like in the wild,
// with namespaces, an anonymous namespace, templates of templates, spaces,
// commas and angle brackets, so that every output of the collector must
// carry them intact:
//
//   (anonymous namespace)::Table<int, std::pair<int, long> >::churn  (leaf)
//   profshim_test::Burner<std::pair<int, long> >::spin               (caller)
#include <ctime>
#include <utility>

namespace {

volatile unsigned long sink;

double cpu_ms()
{
	timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

template <class K, class V> struct Table {
	__attribute__((noinline)) static unsigned long churn(double ms,
							     const V &seed)
	{
		double end = cpu_ms() + ms;
		unsigned long x = sink + (unsigned long)seed.first +
				  (unsigned long)seed.second;

		while (cpu_ms() < end)
			for (K i = 0; i < 20000; i++)
				x = x * 6364136223846793005ul +
				    (unsigned long)i;
		return x;
	}
};

} // namespace

namespace profshim_test {

template <class P> struct Burner {
	__attribute__((noinline)) static void spin(double ms)
	{
		P seed(1, 2L);

		sink = Table<int, P>::churn(ms, seed);
		__asm__ volatile("" ::: "memory");
	}
};

} // namespace profshim_test

extern "C" void burn_plugin(double ms)
{
	profshim_test::Burner<std::pair<int, long> >::spin(ms);
}
