/*
 * dwfile.c — one ELF file in an offline Dwfl session (see dwfile.h).
 */
#include "symbols/dwfile.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gelf.h>

#include "util/table.h"

/* What a dwfile without callbacks of its own searches: the default path. */
static const Dwfl_Callbacks dwfile_default_callbacks = {
	.find_elf = dwfl_build_id_find_elf,
	.find_debuginfo = dwfl_standard_find_debuginfo,
	.section_address = dwfl_offline_section_address,
	.debuginfo_path = NULL,
};

void dwfile_callbacks(Dwfl_Callbacks *ret, char **debuginfo_path)
{
	*ret = (Dwfl_Callbacks){
		.find_elf = dwfl_build_id_find_elf,
		.find_debuginfo = dwfl_standard_find_debuginfo,
		.section_address = dwfl_offline_section_address,
		.debuginfo_path = debuginfo_path,
	};
}

int dwfile_open(struct dwfile *f)
{
	unsigned char magic[SELFMAG];
	const unsigned char *bits;
	GElf_Addr bid_vaddr, bias;
	GElf_Ehdr ehdr_mem, *ehdr;
	Dwfl_Module *mod;
	Dwfl *dwfl = NULL;
	struct stat st;
	Elf *elf;
	int fd, r, n;

	fd = open(f->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode) ||
	    pread(fd, magic, SELFMAG, 0) != SELFMAG ||
	    memcmp(magic, ELFMAG, SELFMAG) != 0) {
		r = -ENOEXEC;
		goto out;
	}

	dwfl = dwfl_begin(f->callbacks ? f->callbacks
					: &dwfile_default_callbacks);
	if (!dwfl) {
		r = -ENOMEM;
		goto out;
	}
	dwfl_report_begin(dwfl);
	/* On success the Dwfl owns fd; on failure it is still ours. */
	mod = dwfl_report_offline(dwfl, f->module, f->path, fd);
	if (!mod) {
		r = -ENOEXEC;
		goto out;
	}
	fd = -1;
	if (dwfl_report_end(dwfl, NULL, NULL) != 0) {
		r = -ENOEXEC;
		goto out;
	}

	/*
	 * Offline reporting places an ET_DYN file at an arbitrary base, so
	 * remember the bias between file addresses and Dwfl addresses.
	 */
	elf = dwfl_module_getelf(mod, &bias);
	if (!elf) {
		r = -ENOEXEC;
		goto out;
	}
	ehdr = gelf_getehdr(elf, &ehdr_mem);
	if (!ehdr || (ehdr->e_type != ET_EXEC && ehdr->e_type != ET_DYN)) {
		r = -ENOEXEC;
		goto out;
	}

	if (f->build_id_len > 0) {
		n = dwfl_module_build_id(mod, &bits, &bid_vaddr);
		if (n != (int)f->build_id_len ||
		    memcmp(bits, f->build_id, f->build_id_len) != 0) {
			r = -ESTALE;
			goto out;
		}
	}

	f->dwfl = dwfl;
	f->mod = mod;
	f->dwfl_bias = bias;
	symindex_build(&f->index, mod, ehdr);
	return 0;

out:
	if (dwfl)
		dwfl_end(dwfl);
	if (fd >= 0)
		close(fd);
	return r;
}

bool dwfile_error_is_transient(int r)
{
	return r == -EMFILE || r == -ENFILE || r == -ENOMEM || r == -EINTR ||
	       r == -EAGAIN;
}

void dwfile_close(struct dwfile *f)
{
	if (f->dwfl)
		dwfl_end(f->dwfl);
	f->dwfl = NULL;
	f->mod = NULL;
	symindex_free(&f->index);
	free(f->cu_ranges);
	f->cu_ranges = NULL;
	f->ncu_ranges = 0;
	f->cu_ranges_read = false;
}

/* qsort() order of compile unit ranges: by start address. */
static int cu_range_compare(const void *a, const void *b)
{
	const struct cu_range *x = a, *y = b;

	return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/*
 * Read the address ranges of every compile unit of f into f->cu_ranges,
 * sorted. Returns 0 (also when f has no DWARF, leaving the table empty) or
 * -ENOMEM, in which case the table is left empty and unread.
 */
static int dwfile_read_cu_ranges(struct dwfile *f)
{
	struct cu_range *t = NULL;
	size_t n = 0, cap = 0;
	Dwarf_Die *cu = NULL;
	Dwarf_Addr bias = 0;

	while ((cu = dwfl_module_nextcu(f->mod, cu, &bias)) != NULL) {
		Dwarf_Addr base, lo, hi;
		ptrdiff_t off = 0;

		while ((off = dwarf_ranges(cu, off, &base, &lo, &hi)) > 0) {
			if (lo >= hi)
				continue;
			if (n == cap && TABLE_GROW(t, cap, 64) < 0) {
				free(t);
				return -ENOMEM;
			}
			t[n++] = (struct cu_range){
				.lo = lo, .hi = hi, .cu = *cu,
			};
		}
	}
	if (n > 0)
		qsort(t, n, sizeof(*t), cu_range_compare);
	f->cu_ranges = t;
	f->ncu_ranges = n;
	f->cu_bias = bias;
	f->cu_ranges_read = true;
	return 0;
}

/*
 * The line table row for Dwfl address `a` found through f's compile unit
 * ranges, or NULL. Used when libdwfl's own lookup, which needs
 * .debug_aranges, found nothing.
 */
static Dwarf_Line *dwfile_find_line(struct dwfile *f, GElf_Addr a)
{
	size_t lo = 0, hi;
	Dwarf_Addr da;

	if (!f->cu_ranges_read && dwfile_read_cu_ranges(f) < 0)
		return NULL;
	if (f->ncu_ranges == 0 || a < f->cu_bias)
		return NULL;
	da = a - f->cu_bias;
	/* Find the last range starting at or below da. */
	hi = f->ncu_ranges;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (f->cu_ranges[mid].lo <= da)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0 || da >= f->cu_ranges[lo - 1].hi)
		return NULL;
	return dwarf_getsrc_die(&f->cu_ranges[lo - 1].cu, da);
}

const char *dwfile_source(struct dwfile *f, GElf_Addr a, int *ret_line)
{
	Dwfl_Line *line = dwfl_module_getsrc(f->mod, a);
	Dwarf_Addr line_addr;
	Dwarf_Line *dline;
	const char *src;

	*ret_line = 0;
	if (line)
		return dwfl_lineinfo(line, &line_addr, ret_line, NULL, NULL,
				     NULL);
	dline = dwfile_find_line(f, a);
	src = dline ? dwarf_linesrc(dline, NULL, NULL) : NULL;
	if (src && dwarf_lineno(dline, ret_line) != 0)
		src = NULL;
	return src;
}
