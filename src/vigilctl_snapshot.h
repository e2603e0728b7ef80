/* vigilctl snapshot: one archive with what support needs from this node
 * (status, config, scripts, logs, node.json, system facts), never the
 * cluster secret. */
#ifndef VIGIL_VIGILCTL_SNAPSHOT_H
#define VIGIL_VIGILCTL_SNAPSHOT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/config.h"

enum snapshot_format { SNAP_FMT_TGZ, SNAP_FMT_ZIP };
const char *snapshot_format_str(enum snapshot_format f);

/* The format FILE's name asks for (.tar.gz, .tgz, .zip); -1 for any other. */
int snapshot_format_of(const char *file);

/* Returns the status answer (a new reference), or NULL with err filled. */
typedef json_t *(*snapshot_status_fn)(void *ctx, char *err, size_t errlen);

struct snapshot_args {
	const struct config *cfg;   /* loaded with CONFIG_NO_SECRET */
	const char *config_path;
	const char *output;         /* FILE; snapshot_format_of() >= 0 */
	bool json;                  /* print {"file","bytes"} */
	snapshot_status_fn status;
	void *status_ctx;
};

/* Writes the archive; prints the result or why not. 0 done, 1 failed. */
int snapshot_run(const struct snapshot_args *a);

#endif
