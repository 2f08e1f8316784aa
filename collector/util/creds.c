/*
 * creds.c — see creds.h.
 */
#include "util/creds.h"

#include <errno.h>
#include <linux/capability.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

bool creds_privileged(void)
{
	struct __user_cap_header_struct hdr = {
		.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];

	memset(data, 0, sizeof(data));
	if (syscall(SYS_capget, &hdr, data) < 0)
		return geteuid() == 0;
	return data[CAP_TO_INDEX(CAP_DAC_OVERRIDE)].effective &
	       CAP_TO_MASK(CAP_DAC_OVERRIDE);
}

int creds_proc_uids(int pid, uint32_t ret_uids[CREDS_UIDS])
{
	char path[64], line[256];
	unsigned long u[CREDS_UIDS];
	FILE *f;
	int r = -ENODATA;

	(void)snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "Uid: %lu %lu %lu %lu", &u[0], &u[1], &u[2],
			   &u[3]) == CREDS_UIDS) {
			for (int i = 0; i < CREDS_UIDS; i++)
				ret_uids[i] = (uint32_t)u[i];
			r = 0;
			break;
		}
	}
	fclose(f);
	return r;
}

void creds_user_name(uint32_t uid, char *buf, size_t len)
{
	struct passwd pw, *found = NULL;
	char tmp[1024];

	if (getpwuid_r((uid_t)uid, &pw, tmp, sizeof(tmp), &found) == 0 && found)
		(void)snprintf(buf, len, "%s", found->pw_name);
	else
		(void)snprintf(buf, len, "uid %u", (unsigned)uid);
}
