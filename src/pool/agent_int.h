/* Internal to the agent: agent.c (link, health, the recorder's service)
 * and agent_spare.c (a spare's orders, copy-back, a recorder's settings
 * upload). */
#ifndef VIGIL_POOL_AGENT_INT_H
#define VIGIL_POOL_AGENT_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "pool/agent.h"
#include "pool/msg.h"
#include "pool/settings_scan.h"
#include "resource/script.h"

struct pool_conn;
struct pool_worker;
struct copy_server;
struct copy_task;
struct event;

struct pool_agent {
	struct event_base *base;
	const struct config *cfg;
	struct ssl_ctx_st *tls;
	enum pool_agent_role role;
	char name[CFG_NAME_MAX], group[CFG_NAME_MAX], secondary[CFG_NAME_MAX];
	char as[CFG_NAME_MAX];          /* recorder: whose service it runs (itself, or after a swap the one it served) */
	char master[64];
	struct pool_conn *conn;
	bool welcomed;
	char last_why[256];
	struct event *tick, *reconnect;
	uint32_t heartbeat_ms;
	uint64_t seq;
	int64_t last_watchdog, last_scan;
	/* health */
	struct pool_worker *disk;
	int64_t probe_started;          /* 0: none running */
	bool disks_failed, watchdog_failed;
	uint32_t cameras;
	uint64_t storage_used, storage_total;
	/* the recorder's own service */
	bool booted;                    /* the boot start was decided: the watchdog may act */
	bool recording, stood_down, stood_down_at_start;
	struct script *busy;            /* start or stop running */
	struct script *checking;
	enum pool_msg_type cmd;
	uint64_t cmd_id;
	/* a recorder's settings upload */
	struct pool_worker *files;
	struct pool_sset sent;          /* what the master has ... */
	bool sent_valid;                /* ... once a scan was sent on this connection */
	bool scanning;
	unsigned scan_gen;              /* bumped on reconnect: a scan begun before is resent whole */
	/* a spare */
	char serving[CFG_NAME_MAX];     /* the recorder it records for, "" */
	char pending_for[CFG_NAME_MAX]; /* the settings received for a start */
	struct pool_file *pending;
	size_t npending;
	/* copy-back */
	struct copy_server *copy_server;
	struct pool_worker *copier;
	struct copy_task *copy_task;
	uint64_t copy_id;
};

int64_t agent_now(void);
void agent_send(struct pool_agent *a, json_t *msg);
void agent_result(struct pool_agent *a, uint64_t id, bool ok, const char *error);
struct script *agent_script(struct pool_agent *a, const char *what, const char *command, const char *rec,
                            script_done_cb done, void *arg);
void agent_dirs(const struct pool_agent *a, const char *rec, char *settings, size_t slen, char *recordings,
                size_t rlen);
void agent_set_role(struct pool_agent *a, enum pool_agent_role role, const char *group);
/* "exit 1: last line", "timed out after 30000 ms", ... */
void agent_script_why(const struct script_result *res, char *out, size_t len);

/* agent_spare.c */
#define AGENT_SERVING_FILE "pool-serving"
void agent_keep_serving(struct pool_agent *a);
void agent_load_serving(struct pool_agent *a);
void agent_spare_settings(struct pool_agent *a, const struct pool_msg *m);
void agent_spare_cmd(struct pool_agent *a, const struct pool_msg *m);
void agent_copy_progress(struct pool_agent *a);
void agent_settings_scan(struct pool_agent *a);
void agent_settings_reset(struct pool_agent *a);
void agent_settings_free(struct pool_agent *a);

#endif
