/* Runs a shell command as a child of the event loop, never blocking it.
 *
 * The child gets its own process group, closefrom(3) before exec, stdin from
 * /dev/null (or a pipe of given input) and stdout+stderr into a pipe whose
 * lines go to the application log under the given name. At the deadline it gets SIGTERM, then SIGKILL
 * after the grace period, both to its whole process group. Completion is the
 * exit of the child itself: a daemon it leaves behind may keep the pipe open
 * and is not waited for. */
#ifndef VIGIL_SCRIPT_H
#define VIGIL_SCRIPT_H

#include <stdbool.h>
#include <stddef.h>
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

/* Like script_run, but the child's stdin is a pipe that gets input (copied
 * here; input_len may be 0, then the child reads EOF at once). It is written
 * from the loop as the child reads, never blocking; what the child has not
 * read when it exits is dropped. If it closes its stdin early the write gets
 * EPIPE, which is ignored: the process must ignore SIGPIPE (vigild does).
 * input NULL: stdin is /dev/null, exactly script_run. */
struct script *script_run_input(const char *name, const char *command, char *const env[],
                                const void *input, size_t input_len, uint64_t timeout_ms,
                                script_done_cb done, void *arg);

/* SIGTERM now, SIGKILL after the grace period; done is still called once,
 * with cancelled set. s is invalid once done has been called. */
void script_cancel(struct script *s);

/* Logs how s ended at debug level only, for an owner that logs the
 * outcome in its own words. The deadline's SIGTERM/SIGKILL are still
 * logged: they are actions taken. */
void script_quiet(struct script *s);

/* Sends sig to the child's process group now (no deadline follows: for a
 * long-running child with its own way to stop). 0 or -1 (errno). */
int script_signal(struct script *s, int sig);

/* Forgets the child altogether: it is neither killed nor reaped by us
 * (at shutdown either). For a daemon meant to outlive vigild, which a
 * later vigild takes over. s is invalid afterwards. */
void script_disown(struct script *s);

/* Forgets done and arg: the child goes on under its deadline as before
 * and is reaped, but nothing is called when it ends. For an owner that is
 * going away while its script still runs. s is invalid afterwards. */
void script_detach(struct script *s);

/* Grace between SIGTERM and SIGKILL (default 2000 ms). */
void script_set_kill_grace(uint64_t ms);

/* Number of children still running (for shutdown). */
int script_running_count(void);

#endif
