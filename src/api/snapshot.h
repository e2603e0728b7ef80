/* A support snapshot of this node for the API: `vigilctl snapshot` run as
 * a child (deadline, never blocking the loop), its archive read back and
 * handed over base64-encoded, so that it can cross the peer link too. */
#ifndef VIGIL_API_SNAPSHOT_H
#define VIGIL_API_SNAPSHOT_H

#include <jansson.h>
#include <stddef.h>

struct config;

/* Largest archive handed over (its base64 must fit a peer-link frame). */
#define SNAPSHOT_MAX (10u << 20)

/* result: {"node", "name", "size", "data" (base64)} or NULL and err. */
typedef void (*snapshot_cb)(json_t *result, const char *err, void *arg);

/* 0, or -1 with cb not called (why in err). */
int snapshot_make(const struct config *cfg, const char *node, snapshot_cb cb, void *arg, char *err,
                  size_t errlen);

/* A dump: the same archive, kept on this node in state_dir/dumps as
 * dump_DATE_TIME.tar.gz (the newest DUMPS_KEPT stay); result:
 * {"node", "path", "size"}. */
#define DUMPS_KEPT 3
int snapshot_dump(const struct config *cfg, const char *node, snapshot_cb cb, void *arg, char *err,
                  size_t errlen);

#endif
