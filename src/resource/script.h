/* Runs a shell command as a child of the event loop, never blocking it.
 *
 * The child gets its own process group, closefrom(3) before exec, stdin from
 * /dev/null and stdout+stderr into a pipe whose lines go to the application
 * log under the given name. At the deadline it gets SIGTERM, then SIGKILL
 * after the grace period, both to its whole process group. Completion is the
 * exit of the child itself: a daemon it leaves behind may keep the pipe open
 * and is not waited for. */
#ifndef VIGIL_SCRIPT_H
#define VIGIL_SCRIPT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct event_base;
struct script;

#define SCRIPT_TAIL_MAX 512

struct script_result {
	bool ok;             /* exited with status 0 */
	int exit_code;       /* valid when exited */
	int signal;          /* valid when killed by a signal, else 0 */
	bool timed_out;      /* the deadline passed and we killed it */
	bool cancelled;      /* script_cancel() was called */
	int spawn_errno;     /* fork/pipe failed: nothing ran */
	char tail[SCRIPT_TAIL_MAX]; /* last line(s) of its output, for the reason */
	uint64_t elapsed_ms;
};

typedef void (*script_done_cb)(const struct script_result *res, void *arg);

/* Installs the SIGCHLD handling on base. Call once before script_run. */
int script_init(struct event_base *base);
/* Removes it again, before base is freed: running children are killed
 * (SIGKILL to their groups) and reaped, their done is not called. */
void script_shutdown(void);
/* The base given to script_init (NULL before), for modules that run scripts
 * and need their own timers on the same loop. */
struct event_base *script_event_base(void);

/* Starts `/bin/sh -c command`. env: extra "KEY=VALUE" strings, NULL-ended,
 * may be NULL. done is called exactly once, from the loop, never from inside
 * script_run. Returns NULL (and logs why) only if nothing could be started;
 * done is then not called. */
struct script *script_run(const char *name, const char *command, char *const env[],
                          uint64_t timeout_ms, script_done_cb done, void *arg);

/* SIGTERM now, SIGKILL after the grace period; done is still called once,
 * with cancelled set. s is invalid once done has been called. */
void script_cancel(struct script *s);

/* Grace between SIGTERM and SIGKILL (default 2000 ms). */
void script_set_kill_grace(uint64_t ms);

/* Number of children still running (for shutdown). */
int script_running_count(void);

#endif
