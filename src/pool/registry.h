/* The pool master's registry: recorders, spares, their groups and states,
 * the failover queue, the failover log and the cached settings of each
 * recorder, in one SQLite file (STATE_DIR/pool.db). Kept in state_dir so a
 * mirror pair protecting the master replicates it with the rest.
 *
 * Every write is one transaction, durable when the call returns
 * (synchronous=FULL, rollback journal: no shared-memory WAL index, which
 * would not travel through vigil-rfs). The calls do disk I/O and may wait
 * for fsync: the master's event loop must make them from a worker, never
 * from the heartbeat path.
 *
 * Functions return 0 or -1; on -1, err names what was wrong (bad input
 * changes nothing). */
#ifndef VIGIL_POOL_REGISTRY_H
#define VIGIL_POOL_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pool/names.h"

#define REG_NAME_MAX 64                 /* names: 1-63 of A-Z a-z 0-9 - _ . */
#define REG_STATE_MAX 32
#define REG_SETTINGS_MAX_DEFAULT (16u << 20)
#define REG_SHA256_HEX 65

struct reg;

/* Opens (creating) path; the schema is made or checked (user_version). */
struct reg *reg_open(const char *path, char *err, size_t errlen);
void reg_close(struct reg *r);


struct reg_recorder {
	char name[REG_NAME_MAX];
	char group[REG_NAME_MAX];
	char secondary_group[REG_NAME_MAX];     /* "" if none */
	bool failover;                          /* failover enabled for it */
	char state[REG_STATE_MAX];              /* the pool state machine's *_str() */
	char served_by[REG_NAME_MAX];           /* "" unless a spare records for it */
};

struct reg_spare {
	char name[REG_NAME_MAX];
	char group[REG_NAME_MAX];
	char state[REG_STATE_MAX];
	char serving[REG_NAME_MAX];             /* "" unless it records for a recorder */
};

/* Adds or updates (group, secondary group, failover flag; the state is
 * kept). A recorder needs a group; a name may not be both a recorder and a
 * spare. */
int reg_recorder_put(struct reg *r, const struct reg_recorder *rec, char *err, size_t errlen);
/* 1 found, 0 unknown, -1 error. */
int reg_recorder_get(struct reg *r, const char *name, struct reg_recorder *out, char *err, size_t errlen);
int reg_recorder_set_state(struct reg *r, const char *name, const char *state, const char *served_by,
                           char *err, size_t errlen);
int reg_recorder_del(struct reg *r, const char *name, char *err, size_t errlen);

int reg_spare_put(struct reg *r, const struct reg_spare *sp, char *err, size_t errlen);
int reg_spare_get(struct reg *r, const char *name, struct reg_spare *out, char *err, size_t errlen);
int reg_spare_set_state(struct reg *r, const char *name, const char *state, const char *serving, char *err,
                        size_t errlen);
int reg_spare_del(struct reg *r, const char *name, char *err, size_t errlen);

/* By name. The callback returns 0 to go on, else the walk stops. */
typedef int (*reg_recorder_cb)(const struct reg_recorder *rec, void *arg);
typedef int (*reg_spare_cb)(const struct reg_spare *sp, void *arg);
int reg_recorders(struct reg *r, reg_recorder_cb cb, void *arg, char *err, size_t errlen);
int reg_spares(struct reg *r, reg_spare_cb cb, void *arg, char *err, size_t errlen);

/* The failover queue, in order: replaced as a whole (every name a known
 * recorder, none twice). */
int reg_queue_set(struct reg *r, const char *const *names, size_t n, char *err, size_t errlen);
/* Up to max names into out; the count, or -1. */
int reg_queue_get(struct reg *r, char (*out)[REG_NAME_MAX], size_t max, char *err, size_t errlen);

/* One failover-log entry. id is set by reg_log_add, and time_ms when it
 * is 0 (else it keeps when the event happened, not when it was saved). */
struct reg_log_entry {
	int64_t id;
	int64_t time_ms;                        /* wall clock, ms since the epoch */
	char recorder[REG_NAME_MAX];
	char spare[REG_NAME_MAX];               /* "" if none */
	char event[32];                         /* failover, failback, copy, queued, refused... */
	char trigger[32];                       /* timeout, disk, watchdog, manual... */
	char result[32];                        /* ok, failed, waiting... */
	char detail[256];
};
int reg_log_add(struct reg *r, struct reg_log_entry *e, char *err, size_t errlen);
/* The newest max entries, oldest first. */
typedef int (*reg_log_cb)(const struct reg_log_entry *e, void *arg);
int reg_log_list(struct reg *r, int max, reg_log_cb cb, void *arg, char *err, size_t errlen);

/* The settings cache: the latest version of each of a recorder's files
 * (opaque to vigil), with its SHA-256. file: a relative path under the
 * recorder's settings_dir, no "..". Over limit bytes: refused. An upload
 * equal to what is cached changes nothing (*changed false). */
int reg_settings_put(struct reg *r, const char *recorder, const char *file, const void *data, size_t len,
                     size_t limit, bool *changed, char *err, size_t errlen);
/* The recorder no longer has file: it is not cached any more (a file not
 * cached is no error). */
int reg_settings_del(struct reg *r, const char *recorder, const char *file, char *err, size_t errlen);
struct reg_settings_file {
	char file[POOL_PATH_MAX + 1];
	char sha256[REG_SHA256_HEX];
	int64_t version;                        /* 1, 2, ... per file */
	size_t len;
	const void *data;                       /* valid during the callback */
};
typedef int (*reg_settings_cb)(const struct reg_settings_file *f, void *arg);
int reg_settings(struct reg *r, const char *recorder, reg_settings_cb cb, void *arg, char *err, size_t errlen);

#endif
