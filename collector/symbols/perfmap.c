/*
 * perfmap.c — a runtime's /tmp/perf-PID.map, read as it grows (see
 * perfmap.h for the format and the rules of trust).
 */
#include "symbols/perfmap.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/table.h"

/* Bytes read from the file at a time; holds two of the longest lines. */
#define PERFMAP_CHUNK (64 * 1024)

void perfmap_init(struct perfmap *m, uint32_t pid, uint32_t uid)
{
	memset(m, 0, sizeof(*m));
	(void)snprintf(m->path, sizeof(m->path), "/tmp/perf-%u.map",
		       (unsigned)pid);
	m->pid = pid;
	m->uid = uid;
}

void perfmap_seal(struct perfmap *m)
{
	m->sealed = true;
}

void perfmap_free(struct perfmap *m)
{
	free(m->v);
	m->v = NULL;
	m->n = 0;
	m->cap = 0;
}

/*
 * Parse a hex number of at most 16 digits, with an optional "0x", at *p
 * (before end), followed by at least one space or tab, which are skipped.
 * Returns false for anything else.
 */
static bool perfmap_hex(const char **p, const char *end, uint64_t *ret)
{
	const char *s = *p;
	uint64_t v = 0;
	int digits = 0;

	if (end - s > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		s += 2;
	for (; s < end; s++, digits++) {
		int d;

		if (*s >= '0' && *s <= '9')
			d = *s - '0';
		else if (*s >= 'a' && *s <= 'f')
			d = *s - 'a' + 10;
		else if (*s >= 'A' && *s <= 'F')
			d = *s - 'A' + 10;
		else
			break;
		if (digits == 16)
			return false;
		v = v << 4 | (uint64_t)d;
	}
	if (digits == 0 || s == end || (*s != ' ' && *s != '\t'))
		return false;
	while (s < end && (*s == ' ' || *s == '\t'))
		s++;
	*p = s;
	*ret = v;
	return true;
}

/*
 * Parse one line (without its '\n') into *ret, interning its name. Returns
 * 1 for an entry, 0 for a malformed line, -ENOMEM.
 */
static int perfmap_parse(const char *line, size_t len, struct strpool *pool,
			 struct perfmap_sym *ret)
{
	const char *p = line, *end = line + len;
	uint64_t start, size;

	if (len && end[-1] == '\r')
		end--;
	if (memchr(line, '\0', len))
		return 0;
	if (!perfmap_hex(&p, end, &start) || !perfmap_hex(&p, end, &size))
		return 0;
	if (p == end || size == 0 || size > UINT32_MAX ||
	    start > UINT64_MAX - size)
		return 0;
	ret->start = start;
	ret->size = (uint32_t)size;
	if (strpool_intern(pool, p, (size_t)(end - p), &ret->name) < 0)
		return -ENOMEM;
	return 1;
}

/* qsort() order: by start, then by the order read. */
static int perfmap_sym_compare(const void *a, const void *b)
{
	const struct perfmap_sym *x = a, *y = b;

	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Append e to the sorted, non-overlapping out[0..*n), where every entry
 * starts at or before e: of two overlapping entries the later read stays. */
static void perfmap_keep(struct perfmap_sym *out, size_t *n,
			 const struct perfmap_sym *e)
{
	if (*n > 0) {
		const struct perfmap_sym *top = &out[*n - 1];

		/* Entries before top end at or before top starts, so only
		 * top can overlap e. */
		if (e->start - top->start < top->size) {
			if (e->seq < top->seq)
				return;
			(*n)--;
		}
	}
	out[(*n)++] = *e;
}

/*
 * Merge add[0..k) (in the order read, each newer than every entry of m)
 * into m's sorted table. Returns 0 or -ENOMEM, leaving m as it was.
 */
static int perfmap_merge(struct perfmap *m, struct perfmap_sym *add, size_t k)
{
	struct perfmap_sym *out;
	size_t i = 0, j = 0, n = 0;

	qsort(add, k, sizeof(*add), perfmap_sym_compare);
	out = malloc((m->n + k) * sizeof(*out));
	if (!out)
		return -ENOMEM;
	while (i < m->n || j < k) {
		if (j == k ||
		    (i < m->n && perfmap_sym_compare(&m->v[i], &add[j]) < 0))
			perfmap_keep(out, &n, &m->v[i++]);
		else
			perfmap_keep(out, &n, &add[j++]);
	}
	free(m->v);
	m->v = out;
	m->n = n;
	m->cap = m->n + k;
	return 0;
}

/*
 * Open m's file if it is one m may read: 0 with *ret_fd and *ret_st set, or
 * a negative errno (-EPERM for a file not trusted).
 */
static int perfmap_open(const struct perfmap *m, int *ret_fd,
			struct stat *ret_st)
{
	int fd = open(m->path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0)
		return errno == ELOOP ? -EPERM : -errno;
	if (fstat(fd, ret_st) < 0) {
		int r = -errno;

		(void)close(fd);
		return r;
	}
	if (!S_ISREG(ret_st->st_mode) || (ret_st->st_mode & S_IWOTH) ||
	    (ret_st->st_uid != 0 && ret_st->st_uid != m->uid)) {
		(void)close(fd);
		return -EPERM;
	}
	*ret_fd = fd;
	return 0;
}

int perfmap_read(struct perfmap *m, struct strpool *pool,
		 struct perfmap_budget *budget)
{
	struct perfmap_sym *add = NULL;
	size_t k = 0, kcap = 0, have = 0;
	struct stat st;
	char *buf = NULL;
	int fd = -1, r;

	if (m->sealed || m->capped)
		return 0;
	r = perfmap_open(m, &fd, &st);
	if (r < 0)
		return r == -ENOENT ? 0 : r;
	/* Another file in its place, or the same one cut short: its lines
	 * are new, and read from its start. */
	if ((m->ino && ((uint64_t)st.st_dev != m->dev ||
			(uint64_t)st.st_ino != m->ino)) ||
	    (uint64_t)st.st_size < m->offset) {
		m->offset = 0;
		m->skipping = false;
	}
	m->dev = (uint64_t)st.st_dev;
	m->ino = (uint64_t)st.st_ino;
	if ((uint64_t)st.st_size == m->offset) {
		r = 0;
		goto out;
	}
	buf = malloc(PERFMAP_CHUNK);
	if (!buf) {
		r = -ENOMEM;
		goto out;
	}

	for (;;) {
		ssize_t got = pread(fd, buf + have, PERFMAP_CHUNK - have,
				    (off_t)(m->offset + have));
		size_t used = 0;
		char *nl;

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			r = -errno;
			goto out;
		}
		if (got == 0)
			break; /* a partial last line waits for the next read */
		have += (size_t)got;
		while ((nl = memchr(buf + used, '\n', have - used)) != NULL) {
			size_t len = (size_t)(nl - (buf + used));
			struct perfmap_sym e;

			if (budget->bytes < len + 1) {
				r = -ENOSPC;
				goto out;
			}
			budget->bytes -= len + 1;
			r = m->skipping || len > PERFMAP_LINE_MAX
				    ? 0
				    : perfmap_parse(buf + used, len, pool, &e);
			if (r < 0)
				goto out;
			if (r == 0) {
				m->malformed++;
			} else if (budget->entries == 0) {
				r = -ENOSPC;
				goto out;
			} else {
				if (k == kcap && TABLE_GROW(add, kcap, 256) < 0) {
					r = -ENOMEM;
					goto out;
				}
				e.seq = ++m->seq;
				add[k++] = e;
				budget->entries--;
			}
			m->skipping = false;
			used += len + 1;
		}
		/* Only whole lines count as read. */
		m->offset += used;
		memmove(buf, buf + used, have - used);
		have -= used;
		if (have > PERFMAP_LINE_MAX) {
			/* No end in sight: drop what is here, skip the rest
			 * of the line. */
			if (budget->bytes < have) {
				r = -ENOSPC;
				goto out;
			}
			budget->bytes -= have;
			m->offset += have;
			have = 0;
			m->skipping = true;
		}
	}
	r = 0;

out:
	if (r == -ENOSPC)
		m->capped = true;
	if (k > 0) {
		int e = perfmap_merge(m, add, k);

		if (e < 0)
			r = e;
		else if (r == 0)
			r = (int)(k > INT32_MAX ? INT32_MAX : k);
	}
	free(add);
	free(buf);
	if (fd >= 0)
		(void)close(fd);
	return r;
}

const struct perfmap_sym *perfmap_find(const struct perfmap *m, uint64_t addr)
{
	size_t lo = 0, hi = m->n;

	/* The last entry starting at or below addr. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (m->v[mid].start <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0 || addr - m->v[lo - 1].start >= m->v[lo - 1].size)
		return NULL;
	return &m->v[lo - 1];
}
