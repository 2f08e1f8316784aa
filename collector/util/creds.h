/*
 * creds.h — whose files the collector may read: its own privilege, and the
 * users a process runs as. What decides which rings `record` reads
 * (ingest/reader.h, struct reader_owners) and which `gc` removes.
 */
#ifndef PROFSHIM_CREDS_H
#define PROFSHIM_CREDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The uids /proc/<pid>/status lists: real, effective, saved, file system. */
#define CREDS_UIDS 4

/*
 * Whether this process may open other users' files for reading and
 * writing: CAP_DAC_OVERRIDE in its effective set (root has it, and so has
 * a service granted it). The collector writes each ring's tail, so
 * CAP_DAC_READ_SEARCH alone is not enough. Thread-safe.
 */
bool creds_privileged(void);

/*
 * The uids process pid runs as, from /proc/<pid>/status (a zombie still
 * has them). 0, or a negative errno (-ENOENT: no such process). Thread-safe.
 */
int creds_proc_uids(int pid, uint32_t ret_uids[CREDS_UIDS]);

/* The name of uid ("www-data"), or its number as text, into buf. */
void creds_user_name(uint32_t uid, char *buf, size_t len);

#endif
