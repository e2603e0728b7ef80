/* Internal to the pool master: master.c (links and events), master_reg.c
 * (the registry, through a worker) and master_status.c (status, log,
 * commands). */
#ifndef VIGIL_POOL_MASTER_INT_H
#define VIGIL_POOL_MASTER_INT_H

#include <stdint.h>

#include "pool/master.h"
#include "pool/msg.h"
#include "pool/pool_sm.h"
#include "pool/registry.h"
#include "pool/settings_scan.h"

#define MASTER_LOG_KEEP 1000

struct pool_conn;
struct pool_worker;
struct evconnlistener;
struct event;

/* One connection, before and after its hello. */
struct link {
	struct pool_master *m;
	struct pool_conn *conn;
	enum { L_NEW, L_REC, L_SPARE } kind;
	int idx;
	bool health_seen;
	enum pool_link fed;             /* recorder: the link status last fed */
	uint16_t copy_port;             /* recorder: where copies go */
	struct event *silence;          /* no message for this long: the connection is lost */
	struct link *prev, *next;
};

struct rec_x {
	struct pool_master *m;
	struct link *link;
	struct event *timer;            /* detect timer (POOL_A_ARM_RECORDER) */
	int64_t last_seen;              /* monotonic ms of its last message, 0: never */
	bool disks_failed, watchdog_failed;
	uint32_t cameras;
	uint64_t storage_used, storage_total;
	struct pool_file *files;      /* the settings cache, sorted by path */
	size_t nfiles, bytes;
	char settings_error[256];
	uint64_t copy_done, copy_total;
	uint32_t copy_files_done, copy_files_total;
	char saved_state[REG_STATE_MAX], saved_by[REG_NAME_MAX]; /* what the registry holds */
};

struct spare_x {
	struct pool_master *m;
	struct link *link;
	struct event *timer;
	int64_t last_seen;
	uint64_t cmd_id;                /* the command waiting for its result, 0: none */
	enum pool_msg_type cmd;
	int cmd_rec;
	char saved_state[REG_STATE_MAX], saved_by[REG_NAME_MAX];
};

struct pool_master {
	struct event_base *base;
	const struct config *cfg;
	char self[CFG_NAME_MAX];
	struct ssl_ctx_st *tls;
	struct notify *notify;
	struct pool_worker *worker;     /* owns the registry */
	struct reg *reg;                /* used by the worker thread only */
	bool active, loading;
	unsigned generation;            /* bumped at each deactivation: stale loads are dropped */
	struct pool *pool;
	struct rec_x rx[POOL_MAX_RECORDERS];
	struct spare_x sx[POOL_MAX_SPARES];
	struct link *links;
	struct evconnlistener *listener;
	uint64_t next_id;
	char saved_queue[POOL_MAX_RECORDERS * 8];
	struct reg_log_entry log[MASTER_LOG_KEEP]; /* ring, newest at log_head - 1 */
	int log_head, log_n;
};

/* master.c */
void master_step(struct pool_master *m, const struct pool_event *ev, struct pool_result *res);
int64_t master_now(void);
/* (Re)arms a detect timer: ms from now, or with since_heard from the
 * last message heard from it (at once if that is past). */
void master_arm(struct pool_master *m, bool spare, int idx, uint32_t ms, bool since_heard);

/* master_reg.c: every call posts to the worker and returns at once. */
int master_reg_start(struct pool_master *m);
void master_reg_stop(struct pool_master *m);
void master_reg_load(struct pool_master *m);
void master_reg_persist(struct pool_master *m);
void master_reg_put_recorder(struct pool_master *m, int r);
void master_reg_put_spare(struct pool_master *m, int s);
void master_reg_swap(struct pool_master *m, int r, int s);
void master_reg_log(struct pool_master *m, const struct reg_log_entry *e);
void master_reg_settings(struct pool_master *m, int r, const struct pool_file *f);
void master_reg_settings_del(struct pool_master *m, int r, const char *file);
/* Called by master_reg_load's done: the pool is filled, timers are
 * armed; now listen. */
void master_loaded(struct pool_master *m);
void master_log_keep(struct pool_master *m, const struct reg_log_entry *e);

/* settings cache (master_status.c) */
int master_cache_put(struct pool_master *m, int r, const struct pool_msg *msg, char *err, size_t errlen);
void master_cache_keep_only(struct pool_master *m, int r, const struct pool_msg *msg);
void master_cache_free(struct rec_x *x);

#endif
