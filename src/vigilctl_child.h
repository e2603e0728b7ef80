/* vigilctl: running a program to completion with a deadline. For the
 * command-line tool only: it waits in place, which the event loop of vigild
 * must never do. */
#ifndef VIGIL_VIGILCTL_CHILD_H
#define VIGIL_VIGILCTL_CHILD_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Whether name is an executable in the PATH children get. */
bool child_find_program(const char *name);

/* argv joined by spaces into buf, cut to fit. */
void child_join_argv(char *const argv[], char *buf, size_t len);

/* Runs argv in cwd (NULL: ours) with stdin /dev/null, stdout on out, stderr
 * on err, in its own process group, at most timeout_ms (then SIGTERM to the
 * group, SIGKILL 1 s later); *stop set (by a signal handler) ends the wait
 * early the same way. 0 if it exited 0; else -1 and why says what happened. */
int child_run(char *const argv[], const char *cwd, int out, int err, uint64_t timeout_ms,
	      const volatile sig_atomic_t *stop, char *why, size_t whylen);

/* child_run with stdout and stderr both into scratch, a new file removed at
 * once; *in then reads that output from its start. 0 if argv exited 0, 1 if
 * not (why says how); -1 if the output cannot be kept: why says why, *in is
 * NULL. */
int child_capture(char *const argv[], const char *scratch, uint64_t timeout_ms,
		  const volatile sig_atomic_t *stop, FILE **in, char *why, size_t whylen);

#endif
