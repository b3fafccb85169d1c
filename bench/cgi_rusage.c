/*
 * LD_PRELOAD shim for the reference server's CGI (git http-backend), built by bench/run.
 *
 * fcgiwrap's workers ignore SIGCHLD, so the kernel reaps each CGI process on its own and its
 * CPU time never reaches the worker's cutime/cstime: /proc cannot account for it afterwards.
 * This shim makes http-backend report it itself: at exit it appends one line
 *   "<pid> <cpu seconds of itself + its waited-for children> <maxrss KiB self> <maxrss KiB children>"
 * to $BENCH_RUSAGE_FILE (one O_APPEND write, so concurrent requests do not interleave).
 * The constructor removes LD_PRELOAD and BENCH_RUSAGE_FILE from the environment, so the
 * children (upload-pack, pack-objects, receive-pack, ...) do not load it: their time is in the
 * parent's RUSAGE_CHILDREN once it has waited for them, which git always does.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static char out_path[4096];

__attribute__((constructor)) static void bench_rusage_init(void)
{
	const char *p = getenv("BENCH_RUSAGE_FILE");
	if (p && strlen(p) < sizeof(out_path))
		strcpy(out_path, p);
	unsetenv("LD_PRELOAD");
	unsetenv("BENCH_RUSAGE_FILE");
}

static double secs(struct timeval tv)
{
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

__attribute__((destructor)) static void bench_rusage_fini(void)
{
	struct rusage self, kids;
	char line[160];
	int fd, n;

	if (!out_path[0])
		return;
	if (getrusage(RUSAGE_SELF, &self) || getrusage(RUSAGE_CHILDREN, &kids))
		return;
	n = snprintf(line, sizeof(line), "%d %.6f %ld %ld\n", (int)getpid(),
		     secs(self.ru_utime) + secs(self.ru_stime) + secs(kids.ru_utime) + secs(kids.ru_stime),
		     self.ru_maxrss, kids.ru_maxrss);
	fd = open(out_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	if (write(fd, line, (size_t)n) < 0) {
		/* nothing sensible to do */
	}
	close(fd);
}
