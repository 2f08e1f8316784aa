/*
 * test_push_lookup.c — unit tests for the pushes to a store (push.h), part
 * of test_push (test_push.c): a name lookup that never gets an answer.
 *
 * A child process gets network and mount namespaces of its own (in a user
 * namespace, so no privileges are needed where the kernel allows those),
 * with only its loopback interface up, a UDP socket on 127.0.0.1:53
 * nobody reads, and a resolv.conf naming it mounted over
 * /etc/resolv.conf. No query leaves the child's namespace.
 */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/wait.h>

#include "check.h"
#include "push_test.h"

/* ------------------------------------------------------------------------ */
/* A name server that never answers                                         */
/* ------------------------------------------------------------------------ */

static bool write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	size_t n = strlen(text);
	bool ok = fd >= 0 && write(fd, text, n) == (ssize_t)n;

	if (fd >= 0)
		ok = close(fd) == 0 && ok;
	return ok;
}

/*
 * In the child: namespaces of its own, loopback up, a silent name server
 * on 127.0.0.1:53 (its socket returned) named by /etc/resolv.conf, whose
 * lookups each wait 10 s. -1 with the reason printed when the kernel or
 * the system refuses any of it.
 */
static int silent_resolver(const char *conf)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(53)};
	struct ifreq ifr = {0};
	char map[64];
	uid_t uid = getuid();
	gid_t gid = getgid();
	int fd;

	if (unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET) < 0) {
		printf("# unshare(user, mount, net): %s\n", strerror(errno));
		return -1;
	}
	(void)snprintf(map, sizeof(map), "0 %u 1\n", (unsigned)uid);
	if (!write_file("/proc/self/setgroups", "deny") ||
	    !write_file("/proc/self/uid_map", map)) {
		printf("# uid_map: %s\n", strerror(errno));
		return -1;
	}
	(void)snprintf(map, sizeof(map), "0 %u 1\n", (unsigned)gid);
	if (!write_file("/proc/self/gid_map", map)) {
		printf("# gid_map: %s\n", strerror(errno));
		return -1;
	}
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    !write_file(conf, "nameserver 127.0.0.1\n"
			      "options timeout:10 attempts:1\n") ||
	    mount(conf, "/etc/resolv.conf", NULL, MS_BIND, NULL) < 0) {
		printf("# resolv.conf of the test: %s\n", strerror(errno));
		return -1;
	}
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	(void)snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	if (fd < 0 || ioctl(fd, SIOCGIFFLAGS, &ifr) < 0) {
		printf("# loopback: %s\n", strerror(errno));
		return -1;
	}
	ifr.ifr_flags |= IFF_UP;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		printf("# the silent name server: %s\n", strerror(errno));
		return -1;
	}
	return fd;
}

/* Queries the silent name server received since the last call. */
static int queries(int fd)
{
	char buf[512];
	int n = 0;

	while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		n++;
	return n;
}

/* The child's part of test_lookup_does_not_block(): exits 0 when every
 * check held, 2 when the silent name server cannot be set up. */
static void lookup_child(const char *conf)
{
	uint64_t longest = 0, start, took;
	struct fake f = {0};
	struct push *p;
	char *err;
	int dns = silent_resolver(conf);

	if (dns < 0) {
		fflush(stdout);
		exit(2);
	}
	capture_start();
	T0 = mono_now();
	p = push_open("http://store.profshim.test:4040/", NULL);
	push_step(p, T0 + 0, fake_snapshot, &f);
	f.a = 1;
	/* The push at 1 s waits for the name until the connect timeout
	 * (5 s) ends it; every turn of the loop meanwhile, the one that ends
	 * the transfer too, returns at once. The made-up time stays at 1 s:
	 * no retry starts. */
	start = mono_now();
	while (mono_now() - start < 6 * SEC + SEC / 2) {
		uint64_t t = mono_now();

		push_step(p, T0 + SEC, fake_snapshot, &f);
		took = mono_now() - t;
		if (took > longest)
			longest = took;
		usleep(1000);
	}
	CHECK(queries(dns) > 0);
	/* The retry after 1 s; push_free() while its lookup still waits. */
	pump(p, 2 * SEC, &f, 100);
	CHECK(queries(dns) > 0);
	start = mono_now();
	push_free(p);
	took = mono_now() - start;
	err = capture_end();
	printf("# longest turn of the loop %.3f s, push_free() %.3f s\n",
	       (double)longest / 1e9, (double)took / 1e9);
	CHECK(longest < SEC / 2);
	CHECK(took < SEC / 2);
	CHECK_EQ(count_substr(err, " failed: "), 1);
	CHECK(strstr(err, "push to http://store.profshim.test:4040 failed: "
			  "Resolving timed out after 5") != NULL);
	log_free(err);
	close(dns);
	fflush(stdout);
	exit(check_test_failed ? 1 : 0);
}

/*
 * A name lookup that never gets an answer holds up neither the loop nor
 * push_free(): libcurl must leave its resolver thread to end on its own
 * when the connect timeout or push_free() ends the transfer. Run with no
 * other thread in the process (no store), as fork() wants.
 */
static void test_lookup_does_not_block(void)
{
	char conf[] = "/tmp/profshim-test-resolv.XXXXXX";
	int fd = mkstemp(conf), status = -1;
	pid_t pid, done = 0;

	CHECK(fd >= 0);
	if (fd < 0)
		return;
	close(fd);
	fflush(stdout);
	pid = fork();
	if (pid == 0)
		lookup_child(conf);
	CHECK(pid > 0);
	/* 30 s: ample for the child's 7 s, short of the suite's timeout. */
	for (int i = 0; pid > 0 && i < 3000 && done == 0; i++) {
		done = waitpid(pid, &status, WNOHANG);
		if (done == 0)
			usleep(10000);
	}
	if (pid > 0 && done == 0) {
		printf("# the child is still blocked after 30 s\n");
		kill(pid, SIGKILL);
		(void)waitpid(pid, &status, 0);
	}
	if (done == pid && WIFEXITED(status) && WEXITSTATUS(status) == 2)
		printf("# no namespaces for the silent name server: this test "
		       "cannot run here\n");
	CHECK(done == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
	unlink(conf);
}

/* Runs the tests of this file: see push_test.h. */
void push_lookup_tests(int *tests, int *failures)
{
	check_tests = *tests;
	RUN(test_lookup_does_not_block);
	*tests = check_tests;
	*failures += check_failures;
}
