/* What the pool accepts as a name, a settings path and a checksum: one
 * rule for the registry, the link and the agents. */
#ifndef VIGIL_POOL_NAMES_H
#define VIGIL_POOL_NAMES_H

#include <stdbool.h>
#include <stddef.h>

#define POOL_PATH_MAX 255

/* A recorder, spare or group name: 1 to 63 of A-Z a-z 0-9 - _ . */
bool pool_name_ok(const char *s);
/* A settings file's path: relative, at most POOL_PATH_MAX bytes, no empty,
 * "." or ".." part, printable ASCII without '\'. */
bool pool_path_ok(const char *file);
/* 64 lower-case hex digits. */
bool pool_sha256_ok(const char *s);
void pool_sha256_hex(const void *data, size_t len, char out[65]);

#endif
