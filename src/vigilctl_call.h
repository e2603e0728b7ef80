/* One request to vigild over its control socket (docs/api.md): a JSON
 * line out, one JSON line back. vigilctl's commands and the setup wizard
 * both use it. */
#ifndef VIGIL_VIGILCTL_CALL_H
#define VIGIL_VIGILCTL_CALL_H

#include <jansson.h>
#include <stdbool.h>

/* vigilctl's exit statuses (vigilctl --help). */
enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2, EXIT_UNREACHABLE = 3, EXIT_WAIT_TIMEOUT = 4 };

#define VIGILCTL_REPLY_MAX (16u << 20)

struct conn_err {
	int code;                   /* exit status */
	char msg[1024];
	bool wait_sync;             /* refused until the SECOND's copy is up to date */
};

/* Sends req to the socket at path and returns the reply's "result" (a new
 * reference), or NULL with e filled: the daemon's error (exit 1) or why it
 * could not be asked. Each send and receive waits at most timeout_s. */
json_t *vigilctl_call(const char *path, json_t *req, int timeout_s, struct conn_err *e);

#endif
