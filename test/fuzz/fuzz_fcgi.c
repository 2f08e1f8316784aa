/*
 * fuzz_fcgi.c — libFuzzer target for the FastCGI delimiter (fcgi.h).
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Ishim \
 *         shim/fcgi.c shim/http_template.c test/fuzz/fuzz_fcgi.c \
 *         -o fuzz_fcgi
 *   ./fuzz_fcgi test/fuzz/corpus_fcgi
 *
 * Input: five control bytes, then the payload. The last two (a 16-bit
 * little-endian offset, modulo the payload's length plus one) cut the
 * payload into what the server reads (first) and what it writes (the
 * rest); the first three choose the sizes of the pieces they are fed in.
 * Every piece is copied into its own heap block of exactly its size, so
 * AddressSanitizer catches any read past it. The delimiter is driven as
 * shim/conn_fcgi.c drives it (test/unit/fcgi_feed.h), which checks every
 * call: at most what it was given consumed, one event a call, progress
 * unless an event or the end of the buffer, nothing consumed after an
 * error, endpoints of the form "METHOD path" with no '?', space or control
 * byte in the path, statuses 100-999.
 *
 * Also checked:
 *   - feeding in pieces gives exactly the log (events, names, statuses)
 *     that feeding each direction whole gives;
 *   - reads and writes interleaved, and writes with sendfile'd gaps, keep
 *     the per-call invariants;
 *   - a payload that is an origin-form path, sent as REQUEST_URI in
 *     FCGI_PARAMS records of the chosen sizes, is templated exactly like
 *     http_template_path() makes it, behind its method.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_assert.h"

#define FEED_CHECK(cond) ASSERT(cond)
#include "../unit/fcgi_feed.h"

#define CTL_BYTES 5

static struct sim sim;
static char log_whole[SIM_LOG];

/* Returns the size of piece number i: from the control bytes, or the rest. */
static size_t piece_size(const uint8_t *ctl, size_t i, size_t rest)
{
	uint8_t c = ctl[i % 3];

	if (c == 0xff || (size_t)c % 64 + 1 > rest)
		return rest;
	return (size_t)c % 64 + 1;
}

/* Returns a heap copy of s[0..n) of exactly n bytes (1 when n is 0). */
static char *exact_copy(const uint8_t *s, size_t n)
{
	char *d = malloc(n ? n : 1);

	ASSERT(d != NULL);
	if (n)
		memcpy(d, s, n);
	return d;
}

/* Feeds s[0..n) to one direction in pieces (whole when ctl is NULL). */
static void feed_dir(const uint8_t *ctl, bool out, const uint8_t *s, size_t n)
{
	size_t off = 0, piece = 0;

	while (off < n) {
		size_t k = ctl ? piece_size(ctl, piece++, n - off) : n - off;
		char *buf = exact_copy(s + off, k);
		bool ok = out ? sim_out(&sim, buf, k) : sim_in(&sim, buf, k);

		free(buf);
		off += k;
		if (!ok)
			return;
	}
}

/* Reads and writes alternate, piece by piece, with sendfile'd gaps in the
 * writes: only the per-call invariants hold. */
static void run_interleaved(const uint8_t *ctl, const uint8_t *in,
			    size_t nin, const uint8_t *out, size_t nout)
{
	size_t a = 0, b = 0, piece = 0;

	sim_init(&sim);
	while (a < nin || b < nout) {
		if (a < nin) {
			size_t k = piece_size(ctl, piece++, nin - a);
			char *buf = exact_copy(in + a, k);

			(void)sim_in(&sim, buf, k);
			free(buf);
			a += k;
		}
		if (b < nout) {
			size_t k = piece_size(ctl, piece++, nout - b);
			char *buf = exact_copy(out + b, k);

			(void)sim_out(&sim, buf, k);
			free(buf);
			b += k;
			if (ctl[piece % 3] & 0x80)
				(void)sim_out(&sim, NULL, ctl[piece % 3] & 0x7f);
		}
	}
}

/* Appends a FastCGI record header to b at *n. */
static void put_header(uint8_t *b, size_t *n, unsigned type, size_t len)
{
	const uint8_t h[8] = { 1, (uint8_t)type, 0, 1, (uint8_t)(len >> 8),
			       (uint8_t)len, 0, 0 };

	memcpy(b + *n, h, 8);
	*n += 8;
}

/* Appends a pair's length, in one byte or four. */
static void put_len(uint8_t *b, size_t *n, size_t len)
{
	if (len < 128) {
		b[(*n)++] = (uint8_t)len;
		return;
	}
	b[(*n)++] = (uint8_t)(len >> 24 | 0x80);
	b[(*n)++] = (uint8_t)(len >> 16);
	b[(*n)++] = (uint8_t)(len >> 8);
	b[(*n)++] = (uint8_t)len;
}

/*
 * When the payload is an origin-form path (no space, control byte or '?'),
 * checks that it gets the endpoint http_template_path() makes of it behind
 * "GET ", sent as REQUEST_URI in records of the size ctl[0] chooses.
 */
static void check_path_agreement(const uint8_t *ctl, const uint8_t *payload,
				 size_t len)
{
	/* Paths up to 4096 bytes (far past the HTTP_TARGET_MAX templated),
	 * in records of one byte at worst: 9 bytes a pair byte. */
	static uint8_t pairs[4096 + 64], in[9 * (4096 + 64) + 64];
	char want[HTTP_ENDPOINT_MAX];
	size_t np = 0, n = 0, per = (size_t)ctl[0] % 200 + 1;
	char *buf;

	if (len == 0 || payload[0] != '/' || len > 4096)
		return;
	for (size_t i = 0; i < len; i++)
		if (payload[i] <= ' ' || payload[i] == 0x7f ||
		    payload[i] == '?')
			return;
	put_len(pairs, &np, 14);
	put_len(pairs, &np, 3);
	memcpy(pairs + np, "REQUEST_METHODGET", 17);
	np += 17;
	put_len(pairs, &np, 11);
	put_len(pairs, &np, len);
	memcpy(pairs + np, "REQUEST_URI", 11);
	np += 11;
	memcpy(pairs + np, payload, len);
	np += len;

	put_header(in, &n, FCGI_BEGIN_REQUEST, 8);
	memcpy(in + n, "\0\1\0\0\0\0\0\0", 8);
	n += 8;
	for (size_t at = 0; at < np; at += per) {
		size_t k = np - at < per ? np - at : per;

		put_header(in, &n, FCGI_PARAMS, k);
		memcpy(in + n, pairs + at, k);
		n += k;
	}
	put_header(in, &n, FCGI_PARAMS, 0);

	sim_init(&sim);
	buf = exact_copy(in, n);
	ASSERT(sim_in(&sim, buf, n));
	free(buf);
	memcpy(want, "GET ", 4);
	http_template_path((const char *)payload, len, want + 4,
			   sizeof(want) - 4);
	ASSERT(strncmp(sim.log, "B1 N1=", 6) == 0);
	ASSERT(strcmp(sim.log + 6, want) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *ctl = data, *payload = data + CTL_BYTES;
	size_t len, cut;

	if (size < CTL_BYTES)
		return 0;
	len = size - CTL_BYTES;
	cut = ((size_t)ctl[3] | (size_t)ctl[4] << 8) % (len + 1);

	sim_init(&sim);
	feed_dir(NULL, false, payload, cut);
	feed_dir(NULL, true, payload + cut, len - cut);
	memcpy(log_whole, sim.log, sim.len + 1);

	sim_init(&sim);
	feed_dir(ctl, false, payload, cut);
	feed_dir(ctl, true, payload + cut, len - cut);
	ASSERT(strcmp(log_whole, sim.log) == 0);

	run_interleaved(ctl, payload, cut, payload + cut, len - cut);
	check_path_agreement(ctl, payload, len);
	return 0;
}
