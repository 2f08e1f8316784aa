/*
 * test_ring_headers.c — unit tests for the shared-memory ring, part of
 * test_ring (test_ring.c): corrupt headers and segment files, chosen and
 * at random (the ring is untrusted input to the reader).
 */
#include <sys/stat.h>

#include "check.h"
#include "ring_test.h"

/* ------------------------------------------------------------------------ */
/* f. Corrupt headers                                                       */
/* ------------------------------------------------------------------------ */

static uint8_t *good_image;
static size_t good_size;
static char tmp_path[64];

/* Writes image[0..size) to a fresh private temp file. */
static void write_tmp(const uint8_t *image, size_t size, mode_t mode)
{
	int fd;

	(void)snprintf(tmp_path, sizeof(tmp_path), "/tmp/test_ring.XXXXXX");
	fd = mkstemp(tmp_path);
	if (fd < 0) {
		printf("Bail out! mkstemp: %s\n", strerror(errno));
		exit(1);
	}
	for (size_t off = 0; off < size;) {
		ssize_t n = write(fd, image + off, size - off);

		if (n <= 0) {
			printf("Bail out! write: %s\n", strerror(errno));
			exit(1);
		}
		off += (size_t)n;
	}
	if (fchmod(fd, mode) < 0) {
		printf("Bail out! fchmod: %s\n", strerror(errno));
		exit(1);
	}
	(void)close(fd);
}

/* reader_open on the temp file must fail with a one-line message. */
static int expect_open_fail(const char *what, const char *prefix,
			    const char *reason)
{
	struct reader *r = NULL;
	char err[256];
	int e;

	memset(err, 0, sizeof(err));
	e = reader_open(tmp_path, &r, err, sizeof(err));
	(void)unlink(tmp_path);
	if (e >= 0) {
		printf("# %s: reader_open accepted it\n", what);
		reader_close(r);
		return 1;
	}
	if (strncmp(err, prefix, strlen(prefix)) != 0 || strchr(err, '\n') ||
	    (reason && !strstr(err, reason))) {
		printf("# %s: %d \"%s\"\n", what, e, err);
		return 1;
	}
	return 0;
}

enum field {
	F_MAGIC, F_VERSION, F_HEADER_SIZE, F_TOTAL_SIZE, F_EP_OFF, F_EP_CAP,
	F_MOD_CAP, F_MOD_OFF, F_DATA_OFF, F_DATA_SIZE, F_MAX_DEPTH,
};

struct hdr_case {
	const char *what;
	enum field field;
	int64_t delta;   /* added to the good value */
	int set;         /* 1: value replaces it */
	uint64_t value;
	const char *reason;
};

static void set_field(struct ring_header *h, enum field fld, uint64_t v)
{
	switch (fld) {
	case F_MAGIC: h->magic = v; break;
	case F_VERSION: h->version = (uint32_t)v; break;
	case F_HEADER_SIZE: h->header_size = (uint32_t)v; break;
	case F_TOTAL_SIZE: h->total_size = v; break;
	case F_EP_OFF: h->endpoints_off = v; break;
	case F_EP_CAP: h->endpoints_cap = (uint32_t)v; break;
	case F_MOD_CAP: h->modules_cap = (uint32_t)v; break;
	case F_MOD_OFF: h->modules_off = v; break;
	case F_DATA_OFF: h->data_off = v; break;
	case F_DATA_SIZE: h->data_size = v; break;
	case F_MAX_DEPTH: h->max_depth = (uint32_t)v; break;
	}
}

static uint64_t get_field(const struct ring_header *h, enum field fld)
{
	switch (fld) {
	case F_MAGIC: return h->magic;
	case F_VERSION: return h->version;
	case F_HEADER_SIZE: return h->header_size;
	case F_TOTAL_SIZE: return h->total_size;
	case F_EP_OFF: return h->endpoints_off;
	case F_EP_CAP: return h->endpoints_cap;
	case F_MOD_CAP: return h->modules_cap;
	case F_MOD_OFF: return h->modules_off;
	case F_DATA_OFF: return h->data_off;
	case F_DATA_SIZE: return h->data_size;
	case F_MAX_DEPTH: return h->max_depth;
	}
	return 0;
}

static void test_corrupt_headers(void)
{
	const uint64_t total = good_size;
	const struct ring_header *g = (const struct ring_header *)good_image;
	const uint64_t ep_end =
		g->endpoints_off + (uint64_t)g->endpoints_cap *
					   sizeof(struct ring_endpoint);
	const uint64_t mod_end =
		g->modules_off + (uint64_t)g->modules_cap *
					 sizeof(struct ring_module);
	const struct hdr_case cases[] = {
		{"magic +1", F_MAGIC, 1, 0, 0, "bad magic"},
		{"magic 0", F_MAGIC, 0, 1, 0, "bad magic"},
		{"magic byte-swapped", F_MAGIC, 0, 1,
		 __builtin_bswap64(RING_MAGIC), "bad magic"},
		{"version 0", F_VERSION, 0, 1, 0, "version"},
		{"version next", F_VERSION, 0, 1, RING_VERSION + 1, "version"},
		{"version previous", F_VERSION, 0, 1, RING_VERSION - 1, "version"},
		{"version max", F_VERSION, 0, 1, UINT32_MAX, "version"},
		{"header_size -8", F_HEADER_SIZE, -8, 0, 0, "header size"},
		{"header_size +8", F_HEADER_SIZE, 8, 0, 0, "header size"},
		{"header_size 0", F_HEADER_SIZE, 0, 1, 0, "header size"},
		{"total_size +4096", F_TOTAL_SIZE, 4096, 0, 0, "size"},
		{"total_size -4096", F_TOTAL_SIZE, -4096, 0, 0, "size"},
		{"total_size -1", F_TOTAL_SIZE, -1, 0, 0, "size"},
		{"total_size 0", F_TOTAL_SIZE, 0, 1, 0, "size"},
		{"total_size max", F_TOTAL_SIZE, 0, 1, UINT64_MAX, "size"},
		{"data_size -8", F_DATA_SIZE, -8, 0, 0, "data size"},
		{"data_size +4096", F_DATA_SIZE, 4096, 0, 0, NULL},
		{"data_size x2", F_DATA_SIZE, 0, 1, 2 * g->data_size,
		 "data area out of bounds"},
		{"data_size 0", F_DATA_SIZE, 0, 1, 0, "data size"},
		{"data_size 2048", F_DATA_SIZE, 0, 1, 2048, "data size"},
		{"data_size 8", F_DATA_SIZE, 0, 1, 8, "data size"},
		{"data_size 2^63", F_DATA_SIZE, 0, 1, 1ull << 63, NULL},
		{"data_size 2^63+2^62", F_DATA_SIZE, 0, 1, 3ull << 62,
		 "data size"},
		{"endpoints_cap 0", F_EP_CAP, 0, 1, 0, "endpoint table"},
		{"endpoints_cap 3", F_EP_CAP, 0, 1, 3, "endpoint table"},
		{"endpoints_cap +1", F_EP_CAP, 1, 0, 0, "endpoint table"},
		{"endpoints_cap 2^21", F_EP_CAP, 0, 1, 1u << 21,
		 "endpoint table"},
		{"endpoints_cap 2^31", F_EP_CAP, 0, 1, 1u << 31,
		 "endpoint table"},
		{"endpoints_cap max", F_EP_CAP, 0, 1, UINT32_MAX,
		 "endpoint table"},
		{"endpoints_cap 2^20 (out of file)", F_EP_CAP, 0, 1, 1u << 20,
		 "out of bounds"},
		{"endpoints_cap x64 (overlaps modules)", F_EP_CAP, 0, 1,
		 (uint64_t)g->endpoints_cap * 64, "out of bounds"},
		{"endpoints_off 0", F_EP_OFF, 0, 1, 0, "endpoint table"},
		{"endpoints_off in header", F_EP_OFF, 0, 1,
		 sizeof(struct ring_header) - 8, "endpoint table"},
		{"endpoints_off total", F_EP_OFF, 0, 1, total,
		 "out of bounds"},
		{"endpoints_off max", F_EP_OFF, 0, 1, UINT64_MAX,
		 "out of bounds"},
		{"endpoints_off wraps", F_EP_OFF, 0, 1, UINT64_MAX - 4096,
		 "out of bounds"},
		{"endpoints_off past modules", F_EP_OFF, 0, 1, g->modules_off,
		 "out of bounds"},
		{"endpoints_off misaligned", F_EP_OFF, 4, 0, 0, "endpoint table"},
		{"modules_cap 513", F_MOD_CAP, 0, 1, RING_MODULES_MAX + 1,
		 "module map"},
		{"modules_cap max", F_MOD_CAP, 0, 1, UINT32_MAX, "module map"},
		{"modules_off 0", F_MOD_OFF, 0, 1, 0, "module map"},
		{"modules_off overlaps endpoints", F_MOD_OFF, 0, 1, ep_end - 8,
		 "module map"},
		{"modules_off = endpoints_off", F_MOD_OFF, 0, 1,
		 g->endpoints_off, "module map"},
		{"modules_off max", F_MOD_OFF, 0, 1, UINT64_MAX, "module map"},
		{"modules_off wraps", F_MOD_OFF, 0, 1, UINT64_MAX - 100,
		 "module map"},
		{"modules_off total", F_MOD_OFF, 0, 1, total, "module map"},
		{"modules_off misaligned", F_MOD_OFF, 4, 0, 0, NULL},
		{"data_off 0", F_DATA_OFF, 0, 1, 0, "data area"},
		{"data_off overlaps modules", F_DATA_OFF, 0, 1, mod_end - 8,
		 "data area"},
		{"data_off = modules_off", F_DATA_OFF, 0, 1, g->modules_off,
		 "data area"},
		{"data_off +8 (past the end)", F_DATA_OFF, 8, 0, 0,
		 "data area"},
		{"data_off +4", F_DATA_OFF, 4, 0, 0, "data area"},
		{"data_off max", F_DATA_OFF, 0, 1, UINT64_MAX, "data area"},
		{"data_off wraps", F_DATA_OFF, 0, 1,
		 (uint64_t)0 - g->data_size, "data area"},
		{"data_off total", F_DATA_OFF, 0, 1, total, "data area"},
		{"max_depth 0", F_MAX_DEPTH, 0, 1, 0, "max depth"},
		{"max_depth 257", F_MAX_DEPTH, 0, 1, RING_MAX_FRAMES + 1,
		 "max depth"},
		{"max_depth max", F_MAX_DEPTH, 0, 1, UINT32_MAX, "max depth"},
	};
	uint8_t *img = malloc(total + 2 * 4096);
	int bad = 0;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ring_header *h = (struct ring_header *)img;
		uint64_t v = cases[i].set ? cases[i].value
					  : get_field(g, cases[i].field) +
						    (uint64_t)cases[i].delta;

		memcpy(img, good_image, total);
		set_field(h, cases[i].field, v);
		write_tmp(img, total, 0600);
		bad += expect_open_fail(cases[i].what, "corrupt ring: ",
					cases[i].reason);
	}

	/*
	 * Misaligned module map that is otherwise in bounds (one entry fewer
	 * so that it still ends before the data area).
	 */
	memcpy(img, good_image, total);
	((struct ring_header *)img)->modules_off += 4;
	((struct ring_header *)img)->modules_cap -= 1;
	write_tmp(img, total, 0600);
	bad += expect_open_fail("modules_off misaligned, cap - 1",
				"corrupt ring: ", "module map");
	memcpy(img, good_image, total);
	((struct ring_header *)img)->endpoints_off += 1;
	write_tmp(img, total, 0600);
	bad += expect_open_fail("endpoints_off odd", "corrupt ring: ",
				"endpoint table");

	/* Whole-file cases. */
	write_tmp(good_image, 0, 0600);
	bad += expect_open_fail("empty file", "corrupt ring: ", "truncated");
	write_tmp(good_image, 100, 0600);
	bad += expect_open_fail("100 bytes", "corrupt ring: ", "truncated");
	write_tmp(good_image, sizeof(struct ring_header) - 1, 0600);
	bad += expect_open_fail("header minus one byte", "corrupt ring: ",
				"truncated");
	write_tmp(good_image, sizeof(struct ring_header), 0600);
	bad += expect_open_fail("header only", "corrupt ring: ", "size");
	write_tmp(good_image, total / 2, 0600);
	bad += expect_open_fail("half the file", "corrupt ring: ", "size");
	write_tmp(good_image, total - 8, 0600);
	bad += expect_open_fail("truncated by 8", "corrupt ring: ", "size");
	memcpy(img, good_image, total);
	memset(img + total, 0, 4096);
	write_tmp(img, total + 4096, 0600);
	bad += expect_open_fail("extended by a page", "corrupt ring: ", "size");
	/* Header made consistent with a truncated file: offsets fail. */
	memcpy(img, good_image, total);
	((struct ring_header *)img)->total_size = total - 4096;
	write_tmp(img, total - 4096, 0600);
	bad += expect_open_fail("consistent truncation", "corrupt ring: ",
				"data area");
	memcpy(img, good_image, total);
	((struct ring_header *)img)->total_size = sizeof(struct ring_header);
	write_tmp(img, sizeof(struct ring_header), 0600);
	bad += expect_open_fail("header-only ring", "corrupt ring: ", NULL);

	/* Permissions: group or other bits, in any combination. */
	{
		static const mode_t modes[] = {0640, 0604, 0660, 0606, 0666,
					       0644, 0601, 0610, 0602, 0620,
					       0700 | 0040, 0400 | 0004};

		for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
			char what[32];

			(void)snprintf(what, sizeof(what), "mode %03o",
				       (unsigned)modes[i]);
			write_tmp(good_image, total, modes[i]);
			bad += expect_open_fail(what, "not a private ring",
						NULL);
		}
	}
	/* Not a regular file, not there, a symlink. */
	{
		struct reader *r = NULL;
		char err[256];

		CHECK(reader_open("/tmp", &r, err, sizeof(err)) < 0);
		CHECK(reader_open("/nonexistent/profshim.1.0", &r, err,
				  sizeof(err)) == -ENOENT);
		CHECK(strchr(err, '\n') == NULL);
		write_tmp(good_image, total, 0600);
		{
			char link_path[80];

			(void)snprintf(link_path, sizeof(link_path), "%s.lnk",
				       tmp_path);
			CHECK_EQ(symlink(tmp_path, link_path), 0);
			CHECK(reader_open(link_path, &r, err, sizeof(err)) < 0);
			(void)unlink(link_path);
		}
		/* The good copy itself opens fine. */
		CHECK_EQ(reader_open(tmp_path, &r, err, sizeof(err)), 0);
		reader_close(r);
		(void)unlink(tmp_path);
		/* A tiny error buffer still gets a terminated message. */
		write_tmp(good_image, 10, 0600);
		memset(err, 'x', sizeof(err));
		CHECK(reader_open(tmp_path, &r, err, 8) < 0);
		CHECK(memchr(err, '\0', 8) != NULL);
		(void)unlink(tmp_path);
	}
	CHECK_EQ(bad, 0);
	free(img);
}

/* Random field values and byte flips: open either fails cleanly or works. */
static void test_corrupt_headers_random(void)
{
	const uint64_t total = good_size;
	uint8_t *img = malloc(total);
	int opened = 0, failed = 0, bad = 0;

	rng_state = 77;
	for (int iter = 0; iter < 400; iter++) {
		struct ring_header *h = (struct ring_header *)img;
		struct reader *r = NULL;
		struct sink s = {0};
		char err[256];
		int e, nflips = 1 + (int)(rng_next() % 4);

		memcpy(img, good_image, total);
		for (int k = 0; k < nflips; k++) {
			if (rng_next() & 1) {
				enum field fld = (enum field)(rng_next() % 11);
				uint64_t v = get_field(h, fld), x = rng_next();

				switch (x % 4) {
				case 0: v = x >> (x % 64); break;
				case 1: v += (x >> 8) % 17 - 8; break;
				case 2: v ^= 1ull << (x >> 8) % 64; break;
				default: v = (uint64_t)1 << ((x >> 8) % 64); break;
				}
				set_field(h, fld, v);
			} else {
				size_t off = rng_next() %
					     offsetof(struct ring_header, head);

				img[off] ^= (uint8_t)(1u << (rng_next() % 8));
			}
		}
		write_tmp(img, total, 0600);
		memset(err, 0, sizeof(err));
		e = reader_open(tmp_path, &r, err, sizeof(err));
		(void)unlink(tmp_path);
		if (e < 0) {
			failed++;
			if (strncmp(err, "corrupt ring: ", 14) != 0 ||
			    strchr(err, '\n'))
				bad++;
			continue;
		}
		opened++;
		/* The image holds 5 committed requests. */
		e = reader_drain(r, SIZE_MAX, sink_cb, &s);
		if ((e < 0 && e != -EBADMSG) || e > 5)
			bad++;
		{
			struct ring_module mods[4];

			(void)reader_modules(r, mods, 4);
		}
		reader_close(r);
		sink_free(&s);
	}
	CHECK_EQ(bad, 0);
	CHECK(failed > 0);
	printf("# random header corruption: %d rejected, %d accepted\n",
	       failed, opened);
	free(img);
}

/* Runs the tests of this file: see ring_test.h. */
void ring_header_tests(int *tests, int *failures)
{
	struct fixture f;
	int fd;

	/* A valid image to corrupt: some records and endpoints in it. */
	fx_setup(&f, 4096, 8, false);
	(void)ep_intern(f.h, "GET /a", 8);
	for (int i = 0; i < 5; i++)
		(void)put_request(f.h, (uint64_t)i, 0, 0, 0, 0, 0, 0, 0);
	fd = open(f.path, O_RDONLY | O_CLOEXEC);
	good_size = (size_t)f.h->total_size;
	good_image = malloc(good_size);
	if (fd < 0 || pread(fd, good_image, good_size, 0) != (ssize_t)good_size) {
		printf("Bail out! cannot read %s\n", f.path);
		exit(1);
	}
	(void)close(fd);
	fx_teardown(&f);

	check_tests = *tests;
	RUN(test_corrupt_headers);
	RUN(test_corrupt_headers_random);
	free(good_image);
	*tests = check_tests;
	*failures += check_failures;
}
