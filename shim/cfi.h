/*
 * cfi.h — the unwind rule of a code address, read from its object's
 * .eh_frame (DWARF call frame information), for the handler's stack walker
 * (unwind.c).
 *
 * The walker follows a frame only when its rule is one of the two shapes
 * that compiled C and C++ code uses almost everywhere on x86-64: the CFA is
 * rsp or rbp plus an offset, the return address sits just below the CFA,
 * and rbp is unchanged or saved at a fixed offset from the CFA. Anything
 * else is RULE_UNSUPPORTED, and the walk ends there.
 *
 * Async-signal-safe: no allocation, no locks, bounded work (CFA programs
 * are cut at CFA_MAX_OPS operations); every read of the tables stays inside
 * the loaded segment that holds them. Call only between
 * snapshot_read_begin() and snapshot_read_end().
 */
#ifndef PROFSHIM_CFI_H
#define PROFSHIM_CFI_H

#include <stdbool.h>
#include <stdint.h>

/*
 * A rule, packed into 64 bits for the cache:
 *   bits 0-2   kind (enum rule_kind)
 *   bit  3     rbp was saved at CFA + rbp_off
 *   bits 8-31  rbp_off, signed
 *   bits 32-63 cfa_off, signed
 */
enum rule_kind {
	RULE_EMPTY = 0,
	RULE_CFA_RSP,
	RULE_CFA_RBP,
	RULE_OUTERMOST,
	RULE_NOINFO,
	RULE_UNSUPPORTED,
};
#define RULE_RBP_SAVED 0x8u

static inline uint64_t rule_pack(enum rule_kind kind, bool rbp_saved,
			  int32_t rbp_off, int32_t cfa_off)
{
	return (uint64_t)kind | (rbp_saved ? RULE_RBP_SAVED : 0) |
	       ((uint64_t)((uint32_t)rbp_off & 0xffffffu) << 8) |
	       ((uint64_t)(uint32_t)cfa_off << 32);
}

static inline enum rule_kind rule_kind(uint64_t r)
{
	return (enum rule_kind)(r & 7);
}

static inline int32_t rule_rbp_off(uint64_t r)
{
	return (int32_t)((uint32_t)(r >> 8) << 8) >> 8;
}

static inline int32_t rule_cfa_off(uint64_t r)
{
	return (int32_t)(uint32_t)(r >> 32);
}

/*
 * The rule for code address pc, from the loader snapshot's tables of the
 * object that holds it. *keep says whether the rule may be cached: not
 * when pc is in no object the snapshot knows, since the object may just be
 * newer than the snapshot.
 */
uint64_t cfi_rule(uintptr_t pc, bool *keep);

#endif
