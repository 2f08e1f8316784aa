/*
 * ring_format.h — the layout of a profshim shared-memory segment.
 *
 * This is the one definition of the bytes the shim writes and the collector
 * reads. Both sides include it; nothing else describes the format.
 *
 * A segment is the file /dev/shm/profshim.<pid>.<n> (mode 0600), created by
 * the shim of one process image and mapped shared by the collector:
 *
 *   +---------------------------+ 0
 *   | struct ring_header        |  identity, settings, counters, offsets
 *   +---------------------------+ endpoints_off
 *   | struct ring_endpoint [N]  |  interned endpoint names (hash table)
 *   +---------------------------+ modules_off
 *   | struct ring_module [M]    |  module map: path, load base, build id
 *   +---------------------------+ data_off
 *   | data ring (2^k bytes)     |  variable-length records, 8-byte aligned
 *   +---------------------------+ total_size
 *
 * Data ring protocol (many producers, one consumer):
 *
 *   head  free-running byte counter; producers reserve [head, head+len) with a
 *         compare-and-swap that fails (and the record is dropped and counted)
 *         when head + len - tail > data_size. Producers never wait.
 *   tail  free-running byte counter owned by the consumer.
 *
 *   A record never wraps: when it does not fit before the end of the data
 *   area, the same reservation also covers the rest of the area, which the
 *   producer fills with one RING_REC_PAD record. When fewer than
 *   sizeof(struct ring_rec) bytes remain before the end, there is no room
 *   for a PAD header: both sides skip those bytes by that rule alone.
 *
 *   Barrier pairing:
 *     producer: CAS(head) ... write body ... store-release(rec.seq = pos ^ KEY)
 *     consumer: load-acquire(rec.seq) == tail ^ KEY ? read : not committed
 *     consumer: read body ... store-release(tail += len)
 *     producer: load-acquire(tail) before reserving, so it never overwrites
 *               bytes the consumer is still reading.
 *   rec.seq holds the record's own ring position, so a stale record from an
 *   earlier lap (seq == position - k * data_size) is never mistaken for a new
 *   one and the consumer never has to clear what it consumed.
 *
 * Everything in a segment is untrusted input to the collector: it checks the
 * magic, version, every size and offset, and every record length.
 */
#ifndef PROFSHIM_RING_FORMAT_H
#define PROFSHIM_RING_FORMAT_H

#include <stdint.h>

#define RING_MAGIC 0x314d494853464f52ULL /* "ROFSHIM1" in memory order */
#define RING_VERSION 2

#define RING_PATH_PREFIX "/dev/shm/profshim."
#define RING_SHM_PREFIX "/profshim." /* name given to shm_open() */

#define RING_ENDPOINT_NAME_MAX 120   /* bytes including the terminating NUL */
#define RING_MODULE_PATH_MAX 256     /* bytes including the terminating NUL */
#define RING_BUILD_ID_MAX 32
#define RING_MODULES_MAX 512
#define RING_EXE_MAX 256
#define RING_MAX_FRAMES 256          /* upper bound on PROFILING_MAX_DEPTH */
#define RING_ALIGN 8

/* Mixed into ring_rec.seq so that body bytes left over from an earlier lap
 * can never look like a committed record header. */
#define RING_SEQ_KEY 0x9e3779b97f4a7c15ULL

/* Endpoint index meaning "not inside any request" (continuous mode), also
 * used when not even OTHER could be interned. */
#define RING_ENDPOINT_NONE 0xffffffffu

enum ring_clock { RING_CLOCK_CPU = 0, RING_CLOCK_WALL = 1 };
enum ring_mode { RING_MODE_REQUEST = 0, RING_MODE_CONTINUOUS = 1 };

/*
 * How the process' CPU-clock samples are taken (ring_header.cpu_engine;
 * cpuclock.h). NONE until a thread sets one up (and always with the wall
 * clock); FAILED when none could be.
 */
enum ring_engine {
	RING_ENGINE_NONE = 0,
	RING_ENGINE_PERF = 1,      /* perf task-clock, kernel time included */
	RING_ENGINE_PERF_USER = 2, /* perf task-clock, user time only */
	RING_ENGINE_TIMER = 3,     /* POSIX CPU timer, bound to the tick */
	RING_ENGINE_FAILED = 4,
};

/*
 * Whether the process takes stack samples (ring_header.sig_state). UNKNOWN
 * in rings of shims before it.
 */
enum ring_sampling {
	RING_SAMPLING_UNKNOWN = 0,
	RING_SAMPLING_ON = 1,      /* the handler is installed on sig_signo */
	RING_SAMPLING_ASIDE = 2,   /* no samples in this process: sig_aside */
};

/* Why a process stood aside (ring_header.sig_aside). */
enum ring_aside {
	RING_ASIDE_NONE = 0,
	RING_ASIDE_NO_SIGNAL = 1,  /* the program holds every signal profshim
				      could sample with */
	RING_ASIDE_INIT = 2,       /* the handler could not be installed */
};

/*
 * Segment header. Fields above `head` are written once by the shim before the
 * segment is published (the file is created under a temporary name and
 * hard-linked to its final name), so the collector may read them without ordering.
 */
struct ring_header {
	uint64_t magic;
	uint32_t version;
	uint32_t header_size;        /* sizeof(struct ring_header) */
	uint64_t total_size;         /* bytes in the file */

	uint32_t pid;
	uint32_t ppid;
	uint64_t start_realtime_ns;  /* CLOCK_REALTIME at creation */
	uint64_t start_monotonic_ns; /* CLOCK_MONOTONIC at the same instant */
	char exe[RING_EXE_MAX];      /* /proc/self/exe at creation */

	/* Settings in force, so reports can state them. */
	double sample_rate;
	uint32_t hz;
	uint32_t manual_hz;
	uint32_t max_depth;
	uint32_t clock;              /* enum ring_clock */
	uint32_t mode;               /* enum ring_mode */
	uint32_t reserved0;

	uint64_t endpoints_off;      /* struct ring_endpoint[endpoints_cap] */
	uint32_t endpoints_cap;      /* power of two */
	uint32_t modules_cap;
	uint64_t modules_off;        /* struct ring_module[modules_cap] */
	uint64_t data_off;
	uint64_t data_size;          /* power of two */

	/* Mutable state below this line; accessed with atomics only. */
	uint64_t head;               /* producers: CAS */
	uint8_t pad0[56];
	uint64_t tail;               /* consumer: store-release */
	uint8_t pad1[56];

	uint32_t modules_count;      /* store-release after filling an entry */
	uint32_t exited;             /* set to 1 by the shim at normal exit */
	uint32_t endpoints_used;     /* distinct names interned, OTHER aside */
	uint32_t cpu_engine;         /* enum ring_engine; store-relaxed */

	/* Counters, fetch-and-add by the shim, read by the collector. */
	uint64_t dropped_samples;    /* ring full when writing a sample */
	uint64_t dropped_events;     /* ring full when writing any other record */
	uint64_t dropped_requests;   /* request records among dropped_events */
	uint64_t skipped_samples;    /* signal arrived where unwinding is unsafe */
	uint64_t untracked_conns;    /* connections beyond the shim's fd table */
	uint64_t overflow_endpoints; /* requests counted under OTHER */

	/* The CPU clock's state beside cpu_engine (zero in rings of shims
	 * before it; store-relaxed, read with cpu_engine). */
	uint32_t cpu_hz;             /* the rate it samples at, per CPU second */
	uint32_t cpu_error;          /* errno that refused perf_event_open */
	uint32_t tick_hz;            /* the kernel's tick rate */
	/* The signal samples are taken with (zero in rings of shims before
	 * it; store-relaxed, sig_state last with store-release). */
	uint32_t sig_signo;          /* the profiling signal, 0 when none */
	uint32_t sig_state;          /* enum ring_sampling */
	uint32_t sig_aside;          /* enum ring_aside, with SAMPLING_ASIDE */
	uint64_t sig_taken;          /* bit s-1: the program took signal s */
	uint64_t reserved[4];
};

/*
 * Interned endpoint names. A producer claims an empty slot with
 * CAS(state, EMPTY, BUSY), writes hash and name, then store-release
 * state = READY. Readers only trust READY slots. Two threads may intern the
 * same name in two slots; the collector aggregates by name, so that is
 * harmless.
 */
enum { RING_EP_EMPTY = 0, RING_EP_BUSY = 1, RING_EP_READY = 2 };

struct ring_endpoint {
	uint32_t state;
	uint32_t hash;
	char name[RING_ENDPOINT_NAME_MAX];
};

/*
 * Module map entry: one loaded ELF object. `bias` is what dl_iterate_phdr
 * reports as dlpi_addr (0 for a non-PIE executable); [lo, hi) is the range of
 * its PT_LOAD segments in the process' address space. path[0] == '\0' never
 * happens: the main executable is recorded under its real path.
 */
struct ring_module {
	uint64_t bias;
	uint64_t lo;
	uint64_t hi;
	uint32_t build_id_len;       /* 0 when the object has none */
	uint8_t build_id[RING_BUILD_ID_MAX];
	char path[RING_MODULE_PATH_MAX];
};

/* Record types in the data ring. */
enum ring_rec_type {
	RING_REC_PAD = 1,     /* filler up to the end of the data area */
	RING_REC_SAMPLE = 2,  /* struct ring_sample + encoded frames */
	RING_REC_REQUEST = 3, /* struct ring_request: a request completed */
};

/*
 * Every record starts with this header. `len` counts the whole record,
 * header included, and is a multiple of RING_ALIGN.
 */
struct ring_rec {
	uint64_t seq;   /* ring position of this record; store-release last */
	uint32_t len;
	uint16_t type;  /* enum ring_rec_type */
	uint16_t flags; /* per type */
};

/* Request flags, in ring_rec.flags of REQUEST records. */
#define RING_REQ_SAMPLED 0x1  /* its stacks were sampled */
#define RING_REQ_MANUAL 0x2   /* forced by ?profile=1 */
#define RING_REQ_TCP 0x4      /* a non-HTTP read-after-write turn */
#define RING_REQ_ABORTED 0x8  /* connection closed before a full response */

struct ring_request {
	struct ring_rec rec;
	uint64_t req_id;
	uint32_t tid;
	uint32_t endpoint;   /* index into the endpoint table */
	uint64_t start_ns;   /* CLOCK_MONOTONIC of the request's first byte */
	uint64_t duration_ns;
	uint32_t status;     /* HTTP status, 0 when none was seen */
	uint32_t samples;    /* samples the shim took for it */
};

/*
 * A stack sample of `nframes` addresses, leaf first: frames[0] is the
 * interrupted instruction, the others are return addresses.
 *
 * Consecutive samples of a thread mostly share their root-side frames, so
 * a sample stores only what differs from the thread's previous one. After
 * the fixed part come `nbytes` bytes encoding the first nframes - shared
 * addresses: the first as an unsigned LEB128 varint, each next one as the
 * zigzag-encoded signed difference from the previous address, also LEB128.
 * The last `shared` addresses are the last `shared` addresses of the
 * previous sample of the same thread in this ring, whose `serial` is this
 * one's minus 1 (modulo 2^16). A sample with shared == 0 stands alone; the
 * shim writes one at a thread's first sample, after a sample it could not
 * write (ring full), and at least every RING_KEYFRAME_EVERY samples, so a
 * reader that missed one recovers soon.
 */
#define RING_KEYFRAME_EVERY 64

struct ring_sample {
	struct ring_rec rec;
	uint64_t req_id;     /* 0 outside any request */
	uint32_t tid;
	uint32_t endpoint;   /* RING_ENDPOINT_NONE outside any request */
	uint64_t time_ns;    /* CLOCK_MONOTONIC */
	uint16_t nframes;
	uint16_t nbytes;
	uint16_t shared;     /* root-side frames taken from the previous */
	uint16_t serial;     /* the thread's sample counter, modulo 2^16 */
	/* uint8_t frames[nbytes]; */
};

#define RING_ALIGN_UP(n) (((n) + (RING_ALIGN - 1)) & ~(uint64_t)(RING_ALIGN - 1))

#endif /* PROFSHIM_RING_FORMAT_H */
