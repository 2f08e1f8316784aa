/*
 * modmap.c — records loaded ELF objects into the ring's module map.
 */
#include "libc.h"
#include "modmap.h"
#include "snapshot.h"

#include <elf.h>
#include <errno.h>
#include <link.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

struct modmap_ctx {
	struct ring_header *h;
	struct ring_module *mods;
	uint32_t count;
	const char *exe;
	int full;
};

/* Copy the NT_GNU_BUILD_ID note of an object, if it has one. */
static void modmap_build_id(const struct dl_phdr_info *info,
			    struct ring_module *m)
{
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		const uint8_t *p, *end;

		if (ph->p_type != PT_NOTE)
			continue;
		p = (const uint8_t *)(info->dlpi_addr + ph->p_vaddr);
		end = p + ph->p_memsz;
		while (p + sizeof(ElfW(Nhdr)) <= end) {
			const ElfW(Nhdr) *n = (const ElfW(Nhdr) *)p;
			const uint8_t *name = p + sizeof(*n);
			const uint8_t *desc = name + ((n->n_namesz + 3) & ~3u);

			if (desc + n->n_descsz > end)
				break;
			if (n->n_type == NT_GNU_BUILD_ID && n->n_namesz == 4 &&
			    memcmp(name, "GNU", 4) == 0 && n->n_descsz > 0 &&
			    n->n_descsz <= RING_BUILD_ID_MAX) {
				memcpy(m->build_id, desc, n->n_descsz);
				m->build_id_len = n->n_descsz;
				return;
			}
			p = desc + ((n->n_descsz + 3) & ~3u);
		}
	}
}

static int modmap_known(const struct modmap_ctx *c, uint64_t bias,
			const char *path)
{
	for (uint32_t i = 0; i < c->count; i++)
		if (c->mods[i].bias == bias &&
		    strcmp(c->mods[i].path, path) == 0)
			return 1;
	return 0;
}

static int modmap_one(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct modmap_ctx *c = arg;
	const char *path = info->dlpi_name;
	uint64_t lo = UINT64_MAX, hi = 0;
	struct ring_module *m;

	if (!path || !path[0])
		path = c->exe;
	if (strncmp(path, "linux-vdso", 10) == 0 ||
	    strncmp(path, "linux-gate", 10) == 0)
		path = "[vdso]"; /* no file: the collector names it alone */
	else if (path[0] != '/')
		return 0;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];

		if (ph->p_type != PT_LOAD)
			continue;
		if (info->dlpi_addr + ph->p_vaddr < lo)
			lo = info->dlpi_addr + ph->p_vaddr;
		if (info->dlpi_addr + ph->p_vaddr + ph->p_memsz > hi)
			hi = info->dlpi_addr + ph->p_vaddr + ph->p_memsz;
	}
	if (hi <= lo || modmap_known(c, info->dlpi_addr, path))
		return 0;
	if (c->count >= c->h->modules_cap) {
		c->full = 1;
		return 1;
	}
	m = &c->mods[c->count];
	memset(m, 0, sizeof(*m));
	m->bias = info->dlpi_addr;
	m->lo = lo;
	m->hi = hi;
	(void)snprintf(m->path, sizeof(m->path), "%s", path);
	modmap_build_id(info, m);
	c->count++;
	atomic_store_explicit((_Atomic uint32_t *)&c->h->modules_count,
			      c->count, memory_order_release);
	return 0;
}

int modmap_scan(struct ring_header *h, const char *exe)
{
	struct modmap_ctx c = {
		.h = h,
		.mods = (struct ring_module *)((uint8_t *)h + h->modules_off),
		.exe = exe,
	};
	uint32_t before;

	c.count = before = h->modules_count;
	/* The live list of loaded objects (libc.h: never the hook, which
	 * answers calls from inside the shim from the snapshot, so a library
	 * dlopen'ed since the snapshot would never be found). This reads
	 * each object's notes: as a reader, so that no dlclose unmaps an
	 * object meanwhile. During one, look again at the next scan. */
	if (!snapshot_read_begin())
		return 0;
	(void)libc_dl_iterate_phdr(modmap_one, &c);
	snapshot_read_end();
	return c.full ? -ENOSPC : (int)(c.count - before);
}

int modmap_copy(struct ring_header *dst, const struct ring_header *src)
{
	const struct ring_module *from =
		(const struct ring_module *)((const uint8_t *)src + src->modules_off);
	struct ring_module *to =
		(struct ring_module *)((uint8_t *)dst + dst->modules_off);
	uint32_t n = atomic_load_explicit(
		(_Atomic uint32_t *)&src->modules_count, memory_order_acquire);

	if (n > dst->modules_cap)
		n = dst->modules_cap;
	memcpy(to, from, n * sizeof(*to));
	atomic_store_explicit((_Atomic uint32_t *)&dst->modules_count, n,
			      memory_order_release);
	return (int)n;
}
