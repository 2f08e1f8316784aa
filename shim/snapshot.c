/*
 * snapshot.c — see snapshot.h.
 */
#include "snapshot.h"

#include <errno.h>
#include <link.h>
#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "libc.h"

#define SNAP_OBJECTS 256
#define SNAP_PHDRS 20

struct snap_obj {
	ElfW(Addr) addr;
	const char *name;
	ElfW(Half) phnum;
	ElfW(Phdr) phdr[SNAP_PHDRS];
	/* For snapshot_find(): where the code is, and its tables. */
	uintptr_t text_lo, text_hi;
	struct snapshot_tables tables;
};

struct snap {
	int n;
	/* The loader's counts of objects loaded and unloaded so far, when
	 * this snapshot was taken. */
	unsigned long long adds, subs;
	struct snap_obj obj[SNAP_OBJECTS];
};

/* Two buffers: a new snapshot is written into the one not in use, then
 * published; snap_cur is -1 while none is usable. */
static struct snap snap_buf[2];
static atomic_int snap_cur = -1;
static atomic_int snap_busy;
/* Threads changing what the snapshot describes (dlclose) or the snapshot
 * itself: while any is, the handler takes no sample. */
static atomic_int snap_changing;
/* Handlers reading the snapshot or objects' memory right now. */
static atomic_int snap_readers;
/* A lookup found no object for its address since snapshot_stale() last
 * looked (set by handlers, cleared by hooks). */
atomic_bool snapshot_missed_flag;

/*
 * A reader announces itself, then looks for a change; a changer announces
 * itself, then waits for readers. Both sides use sequentially consistent
 * operations, so at least one of them sees the other: either the reader
 * backs off, or the changer waits until the reader is done. Readers never
 * wait, so the changer's wait is bounded by one handler's work.
 */
bool snapshot_read_begin(void)
{
	atomic_fetch_add(&snap_readers, 1);
	if (atomic_load(&snap_changing) == 0)
		return true;
	atomic_fetch_sub(&snap_readers, 1);
	return false;
}

void snapshot_read_end(void)
{
	atomic_fetch_sub_explicit(&snap_readers, 1, memory_order_release);
}

/*
 * A reader is a signal handler a few microseconds from its end, so the wait
 * is short. It is bounded all the same (about a second of yields): a count
 * that never drops is a bug, and a hung dlclose would hang the server.
 */
#define CHANGE_WAIT_YIELDS 100000

void snapshot_change_begin(void)
{
	atomic_fetch_add(&snap_changing, 1);
	for (int i = 0; i < CHANGE_WAIT_YIELDS &&
			atomic_load(&snap_readers) != 0; i++)
		sched_yield();
}

void snapshot_fork_child(void)
{
	atomic_store(&snap_readers, 0);
	atomic_store(&snap_changing, 0);
	atomic_store(&snap_busy, 0);
}

void snapshot_change_end(void)
{
	atomic_fetch_sub_explicit(&snap_changing, 1, memory_order_acq_rel);
}

/*
 * Where an object's code is (the span of its executable segments) and
 * where its .eh_frame_hdr is, with the bounds of the loaded segment that
 * holds it: every read of the unwind tables must stay inside that segment.
 */
static void snap_tables(struct snap_obj *o)
{
	uintptr_t hdr = 0;

	o->text_lo = UINTPTR_MAX;
	o->text_hi = 0;
	memset(&o->tables, 0, sizeof(o->tables));
	for (int i = 0; i < o->phnum; i++) {
		const ElfW(Phdr) *ph = &o->phdr[i];
		uintptr_t lo = o->addr + ph->p_vaddr;

		if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X)) {
			if (lo < o->text_lo)
				o->text_lo = lo;
			if (lo + ph->p_memsz > o->text_hi)
				o->text_hi = lo + ph->p_memsz;
		} else if (ph->p_type == PT_GNU_EH_FRAME) {
			hdr = lo;
		}
	}
	if (!hdr)
		return;
	for (int i = 0; i < o->phnum; i++) {
		const ElfW(Phdr) *ph = &o->phdr[i];
		uintptr_t lo = o->addr + ph->p_vaddr;

		if (ph->p_type == PT_LOAD && (ph->p_flags & PF_R) &&
		    hdr >= lo && hdr < lo + ph->p_filesz) {
			o->tables.eh_hdr = hdr;
			o->tables.seg_lo = lo;
			o->tables.seg_hi = lo + ph->p_filesz;
		}
	}
}

static int snap_one(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct snap *s = arg;
	struct snap_obj *o;

	if (size >= offsetof(struct dl_phdr_info, dlpi_subs) +
			    sizeof(info->dlpi_subs)) {
		s->adds = info->dlpi_adds;
		s->subs = info->dlpi_subs;
	}
	if (s->n >= SNAP_OBJECTS)
		return 1;
	o = &s->obj[s->n++];
	o->addr = info->dlpi_addr;
	o->name = info->dlpi_name;
	o->phnum = info->dlpi_phnum < SNAP_PHDRS ? info->dlpi_phnum : SNAP_PHDRS;
	memcpy(o->phdr, info->dlpi_phdr, o->phnum * sizeof(ElfW(Phdr)));
	snap_tables(o);
	return 0;
}

void snapshot_take(void)
{
	int cur, next;

	if (atomic_exchange(&snap_busy, 1))
		return;
	snapshot_change_begin();
	cur = atomic_load(&snap_cur);
	next = cur == 0 ? 1 : 0;
	snap_buf[next].n = 0;
	snap_buf[next].adds = snap_buf[next].subs = 0;
	(void)libc_dl_iterate_phdr(snap_one, &snap_buf[next]);
	atomic_store_explicit(&snap_cur, next, memory_order_release);
	snapshot_change_end();
	atomic_store(&snap_busy, 0);
}

void snapshot_drop(void)
{
	atomic_store_explicit(&snap_cur, -1, memory_order_release);
}

int snapshot_find(uintptr_t pc, struct snapshot_tables *out)
{
	int cur = atomic_load_explicit(&snap_cur, memory_order_acquire);
	const struct snap *s;

	if (cur < 0)
		return -ENOENT;
	s = &snap_buf[cur];
	for (int i = 0; i < s->n; i++) {
		const struct snap_obj *o = &s->obj[i];

		if (pc >= o->text_lo && pc < o->text_hi) {
			if (!o->tables.eh_hdr)
				return -ENOENT;
			*out = o->tables;
			return 0;
		}
	}
	/* Store only on a change: JIT code misses at every sample. */
	if (!atomic_load_explicit(&snapshot_missed_flag, memory_order_relaxed))
		atomic_store_explicit(&snapshot_missed_flag, true,
				      memory_order_relaxed);
	return -ENOENT;
}

/* The loader's counts of loads and unloads, from the first object
 * dl_iterate_phdr reports (every object reports the same counts). */
struct snap_counts {
	unsigned long long adds, subs;
	bool known;
};

static int snap_count(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct snap_counts *c = arg;

	if (size >= offsetof(struct dl_phdr_info, dlpi_subs) +
			    sizeof(info->dlpi_subs)) {
		c->adds = info->dlpi_adds;
		c->subs = info->dlpi_subs;
		c->known = true;
	}
	return 1;
}

bool snapshot_stale(void)
{
	struct snap_counts now = {0};
	int cur;

	if (!atomic_exchange_explicit(&snapshot_missed_flag, false,
				      memory_order_relaxed))
		return false;
	cur = atomic_load_explicit(&snap_cur, memory_order_acquire);
	if (cur < 0)
		return true;
	(void)libc_dl_iterate_phdr(snap_count, &now);
	/* The current buffer's counts are read without the change protocol:
	 * a snapshot_take() that rewrites it meanwhile (two takes in a row
	 * from other threads) makes at worst a look that was not needed.
	 * Without the counts (a libc that does not give them), say stale:
	 * the caller limits how often it asks. */
	return !now.known || now.adds != snap_buf[cur].adds ||
	       now.subs != snap_buf[cur].subs;
}

int snapshot_iterate(int (*cb)(struct dl_phdr_info *, size_t, void *),
			    void *data)
{
	int cur = atomic_load_explicit(&snap_cur, memory_order_acquire);
	const struct snap *s;
	int r = 0;

	if (cur < 0)
		return -1;
	s = &snap_buf[cur];
	for (int i = 0; i < s->n && r == 0; i++) {
		struct dl_phdr_info info;

		memset(&info, 0, sizeof(info));
		info.dlpi_addr = s->obj[i].addr;
		info.dlpi_name = s->obj[i].name;
		info.dlpi_phdr = s->obj[i].phdr;
		info.dlpi_phnum = s->obj[i].phnum;
		r = cb(&info, sizeof(info), data);
	}
	return r;
}
