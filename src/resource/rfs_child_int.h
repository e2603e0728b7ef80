/* Internal to rfs_child*.c: the child's state, shared by the main file
 * (spawn, supervise, roles) and rfs_child_aux.c (adoption, estimate). */
#ifndef VIGIL_RFS_CHILD_INT_H
#define VIGIL_RFS_CHILD_INT_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "resource/rfs_child.h"
#include "resource/script.h"

struct event;
struct event_base;

#define POLL_MS 100
#define POLL_FAST_MS 10                 /* a prim starting: mounted or holding soon */
#define RESPAWN_MIN_MS 500
#define RESPAWN_MAX_MS 10000
#define STOP_EXTRA_MS 10000             /* past the prim's own drain */
#define AUX_TIMEOUT_MS 10000
#define CMD_MAX 8192
#define OUTDATE_WAITERS 4
#define ESTIMATE_TIMEOUT_MS 300000

enum proc { PROC_NONE, PROC_SECOND, PROC_PRIM };

const char *rfsc_proc_str(enum proc p);

struct rfs_child {
	const struct config *cfg;
	int self;
	struct rfsc_hooks h;
	char exe[PATH_MAX];
	char state[PATH_MAX + 8];
	char status_path[PATH_MAX + 32];

	enum role want;
	enum proc proc;
	struct script *s;
	pid_t adopted;                  /* or a vigil-rfs left by an earlier vigild */
	int pidfd;
	struct event *pidfd_ev;
	bool stopping;                  /* we asked it to end */
	bool served;                    /* the prim reported its dirs mounted */
	char fail[1024];                /* a prim that ended before mounting: why */
	struct event *poll_ev, *stop_ev, *respawn_ev;
	uint64_t backoff_ms;

	struct script *aux;             /* outdate or forcestart */
	bool aux_outdate;               /* aux is an outdate */
	bool outdate_full;              /* ... that also asks a compare by hashes (sync full) */
	bool force;                     /* run forcestart before the next prim */
	bool outdate_pending;           /* mark once the second has stopped */
	struct {
		void (*done)(bool ok, void *arg);
		void *arg;
	} ow[OUTDATE_WAITERS];          /* peers waiting for the mark */
	int now;

	/* from the status file of the running child */
	bool st_valid, mounted, connected, uptodate, resyncing;
	uint64_t rs_total, rs_done, hold_id, hold_told, released;
	char error[SCRIPT_TAIL_MAX + 160];

	struct script *est;             /* estimate */
	void (*est_done)(uint64_t files, uint64_t bytes, bool full_copy, const char *err, void *arg);
	void *est_arg;

	bool data_ok;                   /* this copy may serve without the peer */
	char data_why[256];
};

int rfsc_add_arg(char *buf, size_t len, const char *word);
void rfsc_arm(struct event *ev, uint64_t ms);
/* The script's done callback of the child (also for an adopted one). */
void rfsc_on_exit(const struct script_result *r, void *arg);
/* rfs_child_aux.c */
void rfsc_adopt(struct rfs_child *c, struct event_base *base);
void rfsc_drop_adopted(struct rfs_child *c);

#endif
