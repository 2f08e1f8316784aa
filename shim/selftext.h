/*
 * selftext.h — where libprofshim.so's own code lies, so that the stacks a
 * server's profile shows never hold the shim's frames.
 *
 * A sample that lands while the thread is inside one of the shim's hooks
 * (send() called by the program runs the shim's send, which calls libc's)
 * walks through the hook's frames: hooks_slow_send between libc's send
 * and the program's caller. Those frames are the shim's, not the
 * program's; the time is the program's call. selftext_strip() removes
 * them from a walk's output, in the handler, before the sample is
 * written: the ring, and so every profile and report, never hold them.
 *
 * "Own code" is the executable segment of the object this file is linked
 * into (found through the linker's __ehdr_start): libprofshim.so in the
 * shim; a test program that links the shim's modules strips its own.
 */
#ifndef PROFSHIM_SELFTEXT_H
#define PROFSHIM_SELFTEXT_H

#include <stdint.h>

/*
 * The bounds [*lo, *hi) of the own object's executable segments; both 0
 * when they cannot be found. Async-signal-safe (reads only the object's
 * own program headers, mapped for as long as its code runs), lock-free.
 */
void selftext_bounds(uintptr_t *lo, uintptr_t *hi);

/*
 * Remove from pcs[0..n) (the interrupted pc first, then return addresses)
 * every frame in the own object's code, keeping the others in order, and
 * return how many are left. When the interrupted pc itself was the shim's
 * (the hook's own work), the new first frame is the program's return
 * address minus one: the call instruction, so that it is reported at the
 * program's call (its function and line), not at whatever follows it. A
 * walk made only of own frames is left as it is (it has nothing else to
 * show). Async-signal-safe, lock-free, bounded by n.
 */
int selftext_strip(uintptr_t *pcs, int n);

/*
 * While a hook waits on the program's behalf with another libc function
 * than the one the program called (a ppoll that resumes its poll or its
 * nanosleep, sigrestart.h), the frames above the shim's first one are
 * that other function's: replace them with the one frame `pc` (the
 * function the program called), so that the sample shows the program's
 * call. Returns the new count. Async-signal-safe, bounded by n.
 */
int selftext_show(uintptr_t *pcs, int n, uintptr_t pc);

#endif /* PROFSHIM_SELFTEXT_H */
