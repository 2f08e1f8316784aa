/*
 * hooks_cred.c — the interposers that keep a process's ring with the user
 * it serves as: setuid, seteuid, setreuid and setresuid.
 *
 * nginx, Apache and php-fpm start as root and their workers call setuid()
 * to serve as www-data. A ring made before the drop (continuous mode makes
 * it at start-up, and in each fork child) would stay root's, and one made
 * after it is www-data's: the collector's user would depend on the mode.
 * So the ring follows the effective uid: before a call that changes it,
 * the ring is given to the new uid while the process still may (proc.h,
 * proc_ring_follow); a call that fails gets the old owner back; after a
 * call that succeeds, a process that is root again takes its ring back.
 *
 * The real call is made exactly as asked (glibc's setuid in a threaded
 * process signals every thread to change its credentials: that is left to
 * it); its result and errno are returned unchanged. Not on the hot path.
 */
#include <errno.h>
#include <unistd.h>

#include "interposed.h"
#include "libc.h"
#include "proc.h"

/* After the real call: give back on failure, catch up on success (a
 * process that became root again, or a -1 argument kept the old euid). */
static int hooks_cred_done(int r, const struct proc_owner *undo)
{
	int saved = errno;
	struct proc_owner again;

	if (r < 0)
		proc_ring_undo(undo);
	else
		proc_ring_follow(geteuid(), &again);
	errno = saved;
	return r;
}

/* The effective uid a call asks for: `e`, or the current one for -1. */
static uid_t hooks_cred_euid(uid_t e)
{
	return e == (uid_t)-1 ? geteuid() : e;
}

HOOK int setuid(uid_t uid)
{
	struct proc_owner undo;

	LIBC_RESOLVE(setuid);
	if (!proc_on)
		return real_setuid(uid);
	proc_ring_follow(uid, &undo);
	return hooks_cred_done(real_setuid(uid), &undo);
}

HOOK int seteuid(uid_t euid)
{
	struct proc_owner undo;

	LIBC_RESOLVE(seteuid);
	if (!proc_on)
		return real_seteuid(euid);
	proc_ring_follow(hooks_cred_euid(euid), &undo);
	return hooks_cred_done(real_seteuid(euid), &undo);
}

HOOK int setreuid(uid_t ruid, uid_t euid)
{
	struct proc_owner undo;

	LIBC_RESOLVE(setreuid);
	if (!proc_on)
		return real_setreuid(ruid, euid);
	proc_ring_follow(hooks_cred_euid(euid), &undo);
	return hooks_cred_done(real_setreuid(ruid, euid), &undo);
}

HOOK int setresuid(uid_t ruid, uid_t euid, uid_t suid)
{
	struct proc_owner undo;

	LIBC_RESOLVE(setresuid);
	if (!proc_on)
		return real_setresuid(ruid, euid, suid);
	proc_ring_follow(hooks_cred_euid(euid), &undo);
	return hooks_cred_done(real_setresuid(ruid, euid, suid), &undo);
}
