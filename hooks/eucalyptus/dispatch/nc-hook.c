/*
 * nc-hook: what `make install` puts into /etc/eucalyptus/nc-hooks/nchookd.
 *
 * The Eucalyptus NC runs every executable in nc-hooks as
 * HOOK EVENT EUCA_HOME [PARAM], synchronously, under its own lock and with
 * no timeout, for every event: euca-nc-pre-hyp-check on every hypervisor
 * access. This static program costs about an exec of /bin/true for the
 * events nchookd ignores (no Go runtime, no dynamic loader, no shell) and
 * hands euca-nc-pre-boot and euca-nc-pre-clean, unchanged, to the Go hook
 * (hooks/eucalyptus) at NCHOOKD_HOOK, fixed when it is built:
 *
 *   cc -static -O2 -DNCHOOKD_HOOK='"/usr/lib/nchookd/nchookd-euca-hook"' \
 *      -o nchookd nc-hook.c
 *
 * The path is compiled in, never read from the environment: the NC's
 * environment must not choose what runs for it.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#ifndef NCHOOKD_HOOK
#error "build with -DNCHOOKD_HOOK='\"/path/to/nchookd-euca-hook\"'"
#endif

static void say(const char *s) { (void)!write(2, s, strlen(s)); }

int main(int argc, char **argv)
{
	if (argc < 2)
		return 0;
	if (strcmp(argv[1], "euca-nc-pre-boot") != 0 && strcmp(argv[1], "euca-nc-pre-clean") != 0)
		return 0; /* an event nchookd ignores */
	argv[0] = NCHOOKD_HOOK;
	execv(NCHOOKD_HOOK, argv);
	int e = errno; /* before write(2) may change it */
	/* One line, as the Go hook would give; 126 as a shell's exec would,
	 * except for pre-clean: as the Go hook's fallback, nchookd's own
	 * trouble never keeps the NC from cleaning an instance. */
	say("nchookd hook: ");
	say(argv[1]);
	say(": cannot run " NCHOOKD_HOOK ": ");
	say(strerror(e));
	say(" (reinstall nchookd: make install)\n");
	return strcmp(argv[1], "euca-nc-pre-clean") == 0 ? 0 : 126;
}
