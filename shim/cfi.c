/*
 * cfi.c — see cfi.h. The reader (rd_*) checks every read against the
 * segment's bounds; CIE and FDE parsing and the CFA program interpreter
 * follow the DWARF 4 specification, section 6.4, and the LSB's .eh_frame
 * extensions.
 */
#include "cfi.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "modmap.h"
#include "snapshot.h"

/* DWARF register numbers on x86-64. */
enum { DW_RBP = 6, DW_RSP = 7, DW_RA = 16 };

/* Pointer encodings (DW_EH_PE_*): format in the low four bits, how to
 * apply it in the next three, indirection in the top bit. */
enum {
	PE_ABSPTR = 0x00, PE_ULEB128 = 0x01, PE_UDATA2 = 0x02,
	PE_UDATA4 = 0x03, PE_UDATA8 = 0x04, PE_SLEB128 = 0x09,
	PE_SDATA2 = 0x0a, PE_SDATA4 = 0x0b, PE_SDATA8 = 0x0c,
	PE_PCREL = 0x10, PE_DATAREL = 0x30, PE_INDIRECT = 0x80,
	PE_OMIT = 0xff,
};

/* ---- reading the tables, inside one loaded segment ---------------------- */

struct rd {
	uintptr_t p, lo, hi;
	bool bad;
};

static bool rd_at(struct rd *r, uintptr_t p)
{
	if (p < r->lo || p >= r->hi) {
		r->bad = true;
		return false;
	}
	r->p = p;
	return true;
}

static uint64_t rd_n(struct rd *r, unsigned n)
{
	uint64_t v = 0;

	if (r->bad || r->p < r->lo || r->hi - r->p < n) {
		r->bad = true;
		return 0;
	}
	memcpy(&v, (const void *)r->p, n); /* little-endian */
	r->p += n;
	return v;
}

static uint64_t rd_uleb(struct rd *r)
{
	uint64_t v = 0;

	for (unsigned shift = 0; shift < 64; shift += 7) {
		uint8_t b = (uint8_t)rd_n(r, 1);

		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return v;
	}
	r->bad = true;
	return 0;
}

static int64_t rd_sleb(struct rd *r)
{
	uint64_t v = 0;
	unsigned shift = 0;
	uint8_t b;

	do {
		if (shift >= 64) {
			r->bad = true;
			return 0;
		}
		b = (uint8_t)rd_n(r, 1);
		v |= (uint64_t)(b & 0x7f) << shift;
		shift += 7;
	} while (b & 0x80);
	if (shift < 64 && (b & 0x40))
		v |= ~0ull << shift;
	return (int64_t)v;
}

/*
 * An encoded pointer. `datarel` is the base for DW_EH_PE_datarel (the
 * .eh_frame_hdr address there; 0 where it has no meaning). Indirect
 * pointers are read over but refused: no field the walk needs uses them.
 */
static uintptr_t rd_ptr(struct rd *r, uint8_t enc, uintptr_t datarel)
{
	uintptr_t at = r->p;
	uint64_t v;

	switch (enc & 0x0f) {
	case PE_ABSPTR: v = rd_n(r, 8); break;
	case PE_ULEB128: v = rd_uleb(r); break;
	case PE_UDATA2: v = rd_n(r, 2); break;
	case PE_UDATA4: v = rd_n(r, 4); break;
	case PE_UDATA8: v = rd_n(r, 8); break;
	case PE_SLEB128: v = (uint64_t)rd_sleb(r); break;
	case PE_SDATA2: v = (uint64_t)(int64_t)(int16_t)rd_n(r, 2); break;
	case PE_SDATA4: v = (uint64_t)(int64_t)(int32_t)rd_n(r, 4); break;
	case PE_SDATA8: v = rd_n(r, 8); break;
	default: r->bad = true; return 0;
	}
	switch (enc & 0x70) {
	case 0: break;
	case PE_PCREL: v += at; break;
	case PE_DATAREL:
		if (!datarel)
			r->bad = true;
		v += datarel;
		break;
	default: r->bad = true; break;
	}
	if (enc & PE_INDIRECT)
		r->bad = true;
	return (uintptr_t)v;
}

/* ---- CIE, FDE and the CFA program -------------------------------------- */

struct cie {
	uint64_t code_align;
	int64_t data_align;
	uint8_t fde_enc;
	bool has_z;
	uintptr_t ins, ins_end; /* initial instructions */
};

/* Length of a CIE or FDE; sets *end to one past it. */
static bool rd_entry_len(struct rd *r, uintptr_t *end)
{
	uint64_t len = rd_n(r, 4);

	if (len == 0xffffffffu)
		len = rd_n(r, 8);
	if (r->bad || len == 0 || len > r->hi - r->p)
		return false;
	*end = r->p + len;
	return true;
}

static bool cie_parse(struct rd *r, uintptr_t at, struct cie *c)
{
	char aug[8];
	unsigned n = 0;
	uint8_t version;
	uintptr_t end, aug_end = 0;

	if (!rd_at(r, at) || !rd_entry_len(r, &end) || rd_n(r, 4) != 0)
		return false;
	version = (uint8_t)rd_n(r, 1);
	if (version != 1 && version != 3 && version != 4)
		return false;
	for (;;) {
		char ch = (char)rd_n(r, 1);

		if (r->bad || n == sizeof(aug))
			return false;
		aug[n++] = ch;
		if (!ch)
			break;
	}
	if (aug[0] && aug[0] != 'z')
		return false; /* "eh" and other old forms */
	if (version == 4)
		(void)rd_n(r, 2); /* address and segment selector sizes */
	c->code_align = rd_uleb(r);
	c->data_align = rd_sleb(r);
	if ((version == 1 ? rd_n(r, 1) : rd_uleb(r)) != DW_RA)
		return false;
	c->fde_enc = PE_ABSPTR;
	c->has_z = aug[0] == 'z';
	if (c->has_z) {
		uint64_t len = rd_uleb(r);

		if (r->bad || len > end - r->p)
			return false;
		aug_end = r->p + len;
		for (unsigned i = 1; aug[i]; i++) {
			uint8_t enc;

			if (aug[i] == 'R') {
				c->fde_enc = (uint8_t)rd_n(r, 1);
			} else if (aug[i] == 'P') {
				enc = (uint8_t)rd_n(r, 1);
				(void)rd_ptr(r, enc & 0x0f, 0);
			} else if (aug[i] == 'L') {
				(void)rd_n(r, 1);
			} else if (aug[i] != 'S' && aug[i] != 'B' &&
				   aug[i] != 'G') {
				break; /* unknown: its data ends at aug_end */
			}
		}
		r->p = aug_end;
	}
	c->ins = r->p;
	c->ins_end = end;
	return !r->bad && c->ins <= end;
}

enum how { HOW_SAME = 0, HOW_OFFSET, HOW_UNDEF, HOW_OTHER };

struct cfa_state {
	uint64_t cfa_reg;
	int64_t cfa_off;
	bool cfa_expr;
	uint8_t rbp_how, ra_how;
	int64_t rbp_off, ra_off;
};

#define CFA_STACK 8
#define CFA_MAX_OPS 4096

static void cfa_set(struct cfa_state *s, uint64_t reg, uint8_t how,
		    int64_t off)
{
	if (reg == DW_RBP) {
		s->rbp_how = how;
		s->rbp_off = off;
	} else if (reg == DW_RA) {
		s->ra_how = how;
		s->ra_off = off;
	}
}

static void cfa_restore(struct cfa_state *s, const struct cfa_state *init,
			uint64_t reg)
{
	if (reg == DW_RBP) {
		s->rbp_how = init->rbp_how;
		s->rbp_off = init->rbp_off;
	} else if (reg == DW_RA) {
		s->ra_how = init->ra_how;
		s->ra_off = init->ra_off;
	}
}

/*
 * The one CFA expression the walk evaluates: the linkers' for a .plt
 * section (GNU ld, gold and lld write the same bytes). A PLT entry is 16
 * bytes: jmp *GOT(%rip), then push $index and jmp to the first entry,
 * which pushes one more word. From the entry's push on, the CFA is 8 bytes
 * further from rsp:
 *
 *   DW_OP_breg7 (rsp) 8; DW_OP_breg16 (rip) 0; DW_OP_lit15; DW_OP_and;
 *   DW_OP_litK; DW_OP_ge; DW_OP_lit3; DW_OP_shl; DW_OP_plus
 *
 * that is rsp + 8 + ((rip & 15) >= K ? 8 : 0), K the offset of the push's
 * end (11; other values where entries start with endbr64). A sample
 * lands in a PLT stub whenever a program calls into a shared library, so
 * this one shape is worth knowing. `at`, `len` are the expression's bytes
 * (within the segment: the caller checked), `target` the code address.
 * On a match, sets the CFA rule in s and returns true.
 */
static bool cfa_plt(uintptr_t at, uint64_t len, uintptr_t target,
		    struct cfa_state *s)
{
	static const uint8_t plt[] = {0x77, 0x08, 0x80, 0x00, 0x3f, 0x1a,
				      0x30, 0x2a, 0x33, 0x24, 0x22};
	const uint8_t *e = (const uint8_t *)at;
	unsigned k;

	if (len != sizeof(plt))
		return false;
	for (unsigned i = 0; i < sizeof(plt); i++)
		if (i != 6 && e[i] != plt[i])
			return false;
	if ((e[6] & 0xf0) != 0x30)
		return false; /* DW_OP_lit0 ... DW_OP_lit15 */
	k = e[6] & 0x0f;
	s->cfa_reg = DW_RSP;
	s->cfa_off = 8 + ((target & 15) >= k ? 8 : 0);
	s->cfa_expr = false;
	return true;
}

/*
 * Run CFA instructions [r->p, end) until the row covering `target`, from
 * code address *loc. `init` is the CIE's row (NULL while running the CIE's
 * own instructions). Returns false on anything malformed or unknown.
 */
static bool cfa_run(struct rd *r, uintptr_t end, const struct cie *c,
		    uintptr_t target, uintptr_t *loc, struct cfa_state *s,
		    const struct cfa_state *init)
{
	struct cfa_state stack[CFA_STACK];
	unsigned depth = 0;

	for (unsigned ops = 0; r->p < end && !r->bad; ops++) {
		uint8_t op = (uint8_t)rd_n(r, 1);
		uint64_t reg, delta = 0;
		int64_t off;

		if (ops >= CFA_MAX_OPS)
			return false;
		switch (op & 0xc0) {
		case 0x40:
			delta = op & 0x3f;
			goto advance;
		case 0x80:
			cfa_set(s, op & 0x3f, HOW_OFFSET,
				(int64_t)rd_uleb(r) * c->data_align);
			continue;
		case 0xc0:
			if (!init)
				return false;
			cfa_restore(s, init, op & 0x3f);
			continue;
		}
		switch (op) {
		case 0x00: /* nop */
			continue;
		case 0x01: { /* set_loc */
			uintptr_t to = rd_ptr(r, c->fde_enc, 0);

			if (to > target)
				return !r->bad;
			*loc = to;
			continue;
		}
		case 0x02: delta = rd_n(r, 1); goto advance;
		case 0x03: delta = rd_n(r, 2); goto advance;
		case 0x04: delta = rd_n(r, 4); goto advance;
		case 0x05: /* offset_extended */
			reg = rd_uleb(r);
			cfa_set(s, reg, HOW_OFFSET,
				(int64_t)rd_uleb(r) * c->data_align);
			continue;
		case 0x06: /* restore_extended */
			reg = rd_uleb(r);
			if (!init)
				return false;
			cfa_restore(s, init, reg);
			continue;
		case 0x07: /* undefined */
			cfa_set(s, rd_uleb(r), HOW_UNDEF, 0);
			continue;
		case 0x08: /* same_value */
			cfa_set(s, rd_uleb(r), HOW_SAME, 0);
			continue;
		case 0x09: /* register */
			reg = rd_uleb(r);
			(void)rd_uleb(r);
			cfa_set(s, reg, HOW_OTHER, 0);
			continue;
		case 0x0a: /* remember_state */
			if (depth == CFA_STACK)
				return false;
			stack[depth++] = *s;
			continue;
		case 0x0b: /* restore_state, the CFA rule included: compilers
			    * bracket an early return's epilogue with these */
			if (depth == 0)
				return false;
			*s = stack[--depth];
			continue;
		case 0x0c: /* def_cfa */
			s->cfa_reg = rd_uleb(r);
			s->cfa_off = (int64_t)rd_uleb(r);
			s->cfa_expr = false;
			continue;
		case 0x0d: /* def_cfa_register */
			s->cfa_reg = rd_uleb(r);
			s->cfa_expr = false;
			continue;
		case 0x0e: /* def_cfa_offset */
			s->cfa_off = (int64_t)rd_uleb(r);
			continue;
		case 0x0f: /* def_cfa_expression */
			off = (int64_t)rd_uleb(r);
			if (r->bad || (uint64_t)off > end - r->p)
				return false;
			if (cfa_plt(r->p, (uint64_t)off, target, s)) {
				r->p += (uint64_t)off;
				continue;
			}
			r->p += (uint64_t)off;
			s->cfa_expr = true;
			continue;
		case 0x10: /* expression */
		case 0x16: /* val_expression */
			reg = rd_uleb(r);
			off = (int64_t)rd_uleb(r);
			if (r->bad || (uint64_t)off > end - r->p)
				return false;
			r->p += (uint64_t)off;
			cfa_set(s, reg, HOW_OTHER, 0);
			continue;
		case 0x11: /* offset_extended_sf */
			reg = rd_uleb(r);
			cfa_set(s, reg, HOW_OFFSET, rd_sleb(r) * c->data_align);
			continue;
		case 0x12: /* def_cfa_sf */
			s->cfa_reg = rd_uleb(r);
			s->cfa_off = rd_sleb(r) * c->data_align;
			s->cfa_expr = false;
			continue;
		case 0x13: /* def_cfa_offset_sf */
			s->cfa_off = rd_sleb(r) * c->data_align;
			continue;
		case 0x14: /* val_offset */
			reg = rd_uleb(r);
			(void)rd_uleb(r);
			cfa_set(s, reg, HOW_OTHER, 0);
			continue;
		case 0x15: /* val_offset_sf */
			reg = rd_uleb(r);
			(void)rd_sleb(r);
			cfa_set(s, reg, HOW_OTHER, 0);
			continue;
		case 0x2e: /* GNU_args_size */
			(void)rd_uleb(r);
			continue;
		case 0x2f: /* GNU_negative_offset_extended */
			reg = rd_uleb(r);
			cfa_set(s, reg, HOW_OFFSET,
				-(int64_t)rd_uleb(r) * c->data_align);
			continue;
		default:
			return false;
		}
advance:
		if (delta * c->code_align > target - *loc)
			return !r->bad; /* the next row starts past target */
		*loc += delta * c->code_align;
	}
	return !r->bad;
}

/* The FDE covering pc, found through .eh_frame_hdr's binary search table. */
static bool fde_find(const struct snapshot_tables *t, uintptr_t pc,
		     struct rd *r, uintptr_t *fde)
{
	uintptr_t hdr = t->eh_hdr, table;
	uint8_t ptr_enc, count_enc, table_enc;
	uint64_t count, lo = 0, hi;

	r->lo = t->seg_lo;
	r->hi = t->seg_hi;
	r->bad = false;
	if (!rd_at(r, hdr) || rd_n(r, 1) != 1)
		return false;
	ptr_enc = (uint8_t)rd_n(r, 1);
	count_enc = (uint8_t)rd_n(r, 1);
	table_enc = (uint8_t)rd_n(r, 1);
	if (r->bad || ptr_enc == PE_OMIT || count_enc == PE_OMIT ||
	    table_enc != (PE_DATAREL | PE_SDATA4))
		return false;
	(void)rd_ptr(r, ptr_enc, hdr);
	count = rd_ptr(r, count_enc, hdr);
	table = r->p;
	if (r->bad || count == 0 || count > (r->hi - table) / 8)
		return false;
	/* The last entry whose start is at or below pc. */
	hi = count;
	while (hi - lo > 1) {
		uint64_t mid = lo + (hi - lo) / 2;
		int32_t start;

		memcpy(&start, (const void *)(table + mid * 8), 4);
		if (hdr + (intptr_t)start <= pc)
			lo = mid;
		else
			hi = mid;
	}
	{
		int32_t start, off;

		memcpy(&start, (const void *)(table + lo * 8), 4);
		memcpy(&off, (const void *)(table + lo * 8 + 4), 4);
		if (hdr + (intptr_t)start > pc)
			return false;
		*fde = hdr + (intptr_t)off;
	}
	return true;
}

uint64_t cfi_rule(uintptr_t pc, bool *keep)
{
	struct snapshot_tables t;
	struct rd r;
	struct cie c;
	struct cfa_state s, init;
	uintptr_t fde, end, cie_field, begin, range, loc;
	uint64_t cie_off;

	*keep = false;
	if (snapshot_find(pc, &t) < 0)
		return RULE_NOINFO;
	*keep = true;
	if (!fde_find(&t, pc, &r, &fde))
		return RULE_NOINFO;
	if (!rd_at(&r, fde) || !rd_entry_len(&r, &end))
		return RULE_NOINFO;
	cie_field = r.p;
	cie_off = rd_n(&r, 4);
	if (r.bad || cie_off == 0 || cie_off > cie_field)
		return RULE_NOINFO;
	{
		struct rd rc = {.lo = r.lo, .hi = r.hi};

		if (!cie_parse(&rc, cie_field - cie_off, &c))
			return RULE_UNSUPPORTED;
		memset(&s, 0, sizeof(s));
		loc = 0;
		if (!cfa_run(&rc, c.ins_end, &c, UINTPTR_MAX, &loc, &s, NULL))
			return RULE_UNSUPPORTED;
	}
	begin = rd_ptr(&r, c.fde_enc, 0);
	range = rd_ptr(&r, c.fde_enc & 0x0f, 0);
	if (r.bad || pc < begin || pc - begin >= range)
		return RULE_NOINFO;
	if (c.has_z) {
		uint64_t len = rd_uleb(&r);

		if (r.bad || len > end - r.p)
			return RULE_UNSUPPORTED;
		r.p += len;
	}
	init = s;
	loc = begin;
	if (!cfa_run(&r, end, &c, pc, &loc, &s, &init))
		return RULE_UNSUPPORTED;
	if (s.ra_how == HOW_UNDEF)
		return rule_pack(RULE_OUTERMOST, false, 0, 0);
	if (s.cfa_expr || (s.cfa_reg != DW_RSP && s.cfa_reg != DW_RBP) ||
	    s.ra_how != HOW_OFFSET || s.ra_off != -8 ||
	    s.cfa_off < INT32_MIN || s.cfa_off > INT32_MAX)
		return RULE_UNSUPPORTED;
	if (s.rbp_how == HOW_OFFSET) {
		if (s.rbp_off < -(1 << 23) || s.rbp_off >= (1 << 23))
			return RULE_UNSUPPORTED;
	} else if (s.rbp_how != HOW_SAME) {
		return RULE_UNSUPPORTED;
	}
	return rule_pack(s.cfa_reg == DW_RSP ? RULE_CFA_RSP : RULE_CFA_RBP,
			 s.rbp_how == HOW_OFFSET, (int32_t)s.rbp_off,
			 (int32_t)s.cfa_off);
}
