/* The pool master's core: N+M failover of recording servers (seed 004),
 * pure: no I/O, no clock, no globals, no allocation. docs/pool.md has the
 * rules in prose and the tables.
 *
 * A pool holds recorders and spares (each a machine, named by its vigild
 * node name), a FIFO queue of recorders waiting for a spare, and two
 * settings: failback = auto | manual (when a repaired recorder takes its
 * cameras back) and after_failure = failback | swap (what happens then).
 *
 * pool_step(pool, event) -> (actions, reason, status). The driver (the
 * master's loop, written later) turns connections, hellos, health reports,
 * timeouts, agent replies and user commands into events, and carries out
 * the actions in order. Each recorder and each spare has its own
 * table-driven state machine, (state, event) -> rule, written out cell by
 * cell in pool_table.c; pool_step() applies the rules and makes the few
 * choices that need the whole pool (which spare, the queue, failback or
 * swap), which are named decisions in the tables.
 *
 * Indices are stable: recorders and spares are never removed, so an index
 * the driver keeps stays valid (a swap exchanges the names of a recorder
 * slot and a spare slot, see below).
 *
 * after_failure = swap (the seed's "the failed server can be repaired and
 * replaced as a new failover server, while the failover server that took
 * its place can continue operating as an active server"): roles are
 * exchanged between the machines. When the recorder is back and healthy,
 * the machine that served it becomes the recorder (it keeps recording, in
 * the recorder slot, with the recorder's groups and failover setting) and
 * the repaired machine becomes a free spare of the recorder's primary group
 * (in the spare slot). The names of the two slots are exchanged; the
 * driver renames its registry rows and settings cache, and tells both
 * agents their new role (POOL_A_SWAP). */
#ifndef VIGIL_POOL_SM_H
#define VIGIL_POOL_SM_H

#include <stdbool.h>
#include <stdint.h>

#define POOL_NAME_MAX 64          /* bytes of a name or group, with the NUL */
#define POOL_MAX_RECORDERS 1024
#define POOL_MAX_SPARES 128
#define POOL_MAX_ACTIONS 32
#define POOL_REASON_MAX 1024

/* ---- the entities ------------------------------------------------------ */

enum pool_rec_state {
	POOL_R_OFFLINE,      /* not connected since the master started */
	POOL_R_OK,           /* connected, healthy, records its cameras */
	POOL_R_LOST,         /* connection lost; the driver times detect_timeout */
	POOL_R_DOWN,         /* failed, and failover is disabled for it */
	POOL_R_QUEUED,       /* needs a spare, none of its groups is free */
	POOL_R_FAILING_OVER, /* a spare is starting with its settings */
	POOL_R_FAILED_OVER,  /* a spare records in its place */
	POOL_R_BACK,         /* healthy again while served: waiting for failback */
	POOL_R_FAILING_BACK, /* its spare is stopping; it resumes after */
	POOL_R_COPYING,      /* records again; the spare's recordings are copied home */
	POOL_R__COUNT
};

enum pool_spare_state {
	POOL_S_OFFLINE,      /* not connected */
	POOL_S_FREE,         /* connected, idle: may be chosen */
	POOL_S_STARTING,     /* starting in a recorder's place */
	POOL_S_SERVING,      /* records in a recorder's place */
	POOL_S_LOST,         /* connection lost while serving; the driver times detect_timeout */
	POOL_S_STOPPING,     /* stopping for a failback */
	POOL_S_COPYING,      /* copying its recordings back to the recorder */
	POOL_S_FAILED,       /* a start failed: not chosen until it reconnects */
	POOL_S__COUNT
};

/* What the master knows of a recorder's connection and health: a fact,
 * recorded whatever the state (see docs/pool.md, "Facts and settling"). */
enum pool_link {
	POOL_LINK_DOWN,      /* not connected */
	POOL_LINK_UP,        /* connected and healthy */
	POOL_LINK_DISK,      /* connected; all recording disks failed */
	POOL_LINK_WATCHDOG,  /* connected; its recording service cannot start */
	POOL_LINK_HELD,      /* connected and healthy, stood down by a manual failover */
	POOL_LINK__COUNT
};

/* What started a failover (failover log, status). */
enum pool_trigger {
	POOL_T_NONE,
	POOL_T_LOST,         /* connection lost past detect_timeout */
	POOL_T_ABSENT,       /* not connected since the master started, past detect_timeout */
	POOL_T_DISK,         /* the recorder reported all recording disks failed */
	POOL_T_WATCHDOG,     /* its watchdog reported the recording service cannot start */
	POOL_T_MANUAL,       /* a user's command */
	POOL_T_SPARE_LOST,   /* the spare serving it was lost */
	POOL_T__COUNT
};

struct pool_recorder {
	char name[POOL_NAME_MAX];
	char group[POOL_NAME_MAX];      /* primary failover group, never empty */
	char secondary[POOL_NAME_MAX];  /* "" when none */
	bool failover;                  /* failover enabled */
	enum pool_rec_state state;
	enum pool_link link;
	int spare;                      /* the spare starting, serving, stopping or copying for it; -1 */
	enum pool_trigger trigger;      /* of its current or last failover */
	uint64_t seq;                   /* when it last needed a spare: the queue's order */
	bool copy_held;                 /* a copy-back failed: not retried until a command or a reconnect */
};

struct pool_spare {
	char name[POOL_NAME_MAX];
	char group[POOL_NAME_MAX];      /* never empty */
	enum pool_spare_state state;
	int rec;                        /* the recorder it starts, serves, stops or copies for; -1 */
	/* Recorders whose recordings it holds, not yet copied home (one bit
	 * per recorder index). Set when it has started for one, cleared when
	 * a copy-back to it is done (or by a swap). */
	uint64_t owes[POOL_MAX_RECORDERS / 64];
};

enum pool_failback { POOL_FAILBACK_AUTO, POOL_FAILBACK_MANUAL, POOL_FAILBACK__COUNT };
enum pool_after { POOL_AFTER_FAILBACK, POOL_AFTER_SWAP, POOL_AFTER__COUNT };

/* About 300 KiB: allocate it (calloc), then pool_init. */
struct pool {
	enum pool_failback failback;
	enum pool_after after;
	int n_rec, n_spare;
	struct pool_recorder rec[POOL_MAX_RECORDERS];
	struct pool_spare spare[POOL_MAX_SPARES];
	int queue[POOL_MAX_RECORDERS];  /* recorder indices, by seq: exactly the QUEUED ones */
	int n_queue;
	uint64_t seq;                   /* last seq given */
};

/* ---- events ------------------------------------------------------------ */

enum pool_role { POOL_ROLE_VIEWER, POOL_ROLE_OPERATOR, POOL_ROLE_ADMIN, POOL_ROLE__COUNT };

/* What the driver feeds. The driver sends ..._LOST before the UP of a new
 * connection when it still held an old one, so UP comes only after LOST or
 * at first. REC_UP is a hello that reports healthy, or a report that turns
 * healthy again; a hello that reports a failure is REC_DISK or
 * REC_WATCHDOG. */
enum pool_event_type {
	POOL_E_REC_UP,            /* rec: connected and healthy */
	POOL_E_REC_LOST,          /* rec: its connection closed */
	POOL_E_REC_DISK,          /* rec: connected, all recording disks failed */
	POOL_E_REC_WATCHDOG,      /* rec: connected, its recording service cannot start */
	POOL_E_REC_TIMEOUT,       /* rec: the timer of POOL_A_ARM_RECORDER fired */
	POOL_E_FAILOVER,          /* rec, role: `pool failover REC` (admin, operator) */
	POOL_E_FAILBACK,          /* rec, role: `pool failback REC` (admin, operator) */
	POOL_E_COPY,              /* rec, role: `pool copy REC` (admin, operator) */
	POOL_E_ENABLE,            /* rec, role: failover enabled for rec (admin) */
	POOL_E_DISABLE,           /* rec, role: failover disabled for rec (admin) */
	POOL_E_SPARE_UP,          /* spare: connected; rec: what it says it records for */
	POOL_E_SPARE_LOST,        /* spare: its connection closed */
	POOL_E_SPARE_TIMEOUT,     /* spare: the timer of POOL_A_ARM_SPARE fired */
	POOL_E_SPARE_STARTED,     /* spare: its start (POOL_A_START_SPARE) succeeded */
	POOL_E_SPARE_START_FAILED,/* spare: its start failed (it cleaned up) */
	POOL_E_SPARE_STOPPED,     /* spare: it stopped recording */
	POOL_E_COPY_DONE,         /* spare: its copy-back is complete and checked */
	POOL_E_COPY_FAILED,       /* spare: its copy-back gave up */
	POOL_E__COUNT
};

#define POOL_RUNS_NOTHING (-1)  /* SPARE_UP rec: idle */
#define POOL_RUNS_OTHER (-2)    /* SPARE_UP rec: records for a name not in the pool */

struct pool_event {
	enum pool_event_type type;
	int rec;             /* recorder events and commands; SPARE_UP: see above */
	int spare;           /* spare events */
	enum pool_role role; /* commands */
};

/* ---- actions ----------------------------------------------------------- */

/* What the driver carries out, in the order given. Orders for an agent
 * that is not connected are dropped: the states say what it must do when
 * it comes back, and the core tells it then. */
enum pool_action_type {
	POOL_A_ARM_RECORDER, /* rec: (re)arm its detect_timeout timer; fires REC_TIMEOUT */
	POOL_A_ARM_SPARE,    /* spare: (re)arm its detect_timeout timer; fires SPARE_TIMEOUT */
	POOL_A_START_SPARE,  /* spare, rec, trigger: push rec's cached settings, start recording */
	POOL_A_STOP_SPARE,   /* spare (rec, or -1 when it records for nothing it was given): stop */
	POOL_A_MARK_BROKEN,  /* rec: failed over: registry says broken; a connected agent stops recording */
	POOL_A_RESUME,       /* rec: record again (idempotent) */
	POOL_A_START_COPY,   /* spare, rec: copy its recordings for rec home (resumable) */
	POOL_A_STOP_COPY,    /* spare, rec: pause that copy (resumed later from where it was) */
	POOL_A_SWAP,         /* rec, spare: roles exchanged; names in the pool are the new ones */
	POOL_A_LOG,          /* what, result, rec, spare, trigger: a failover log entry */
	POOL_A_NOTIFY,       /* rec, from, to: tell clients and [notify] */
	POOL_A__COUNT
};

enum pool_log_what { POOL_LOG_NONE, POOL_LOG_FAILOVER, POOL_LOG_FAILBACK, POOL_LOG_COPY, POOL_LOG_SWAP,
	             POOL_LOG__COUNT };
enum pool_log_result {
	POOL_RES_STARTED, POOL_RES_QUEUED, POOL_RES_DONE, POOL_RES_FAILED,
	POOL_RES_SKIPPED,  /* failover disabled: not failed over */
	POOL_RES_PAUSED,   /* copy-back interrupted; it resumes later */
	POOL_RES__COUNT
};

struct pool_action {
	enum pool_action_type type;
	int rec;                       /* -1 when none */
	int spare;                     /* -1 when none */
	enum pool_trigger trigger;     /* START_SPARE, LOG */
	enum pool_log_what what;       /* LOG */
	enum pool_log_result result;   /* LOG */
	enum pool_rec_state from, to;  /* NOTIFY */
};

enum pool_status {
	POOL_OK,        /* applied (actions and state changes, if any, are in the result) */
	POOL_IGNORED,   /* nothing to do in this state; reason says why */
	POOL_REFUSED,   /* a command refused (role, state, no spare); nothing changed */
	POOL_ERROR,     /* bad input (index, event, role); nothing changed */
	POOL_STATUS__COUNT
};

struct pool_result {
	enum pool_status status;
	bool changed;                  /* a state, link, flag or the queue changed: persist */
	int n_actions;
	struct pool_action actions[POOL_MAX_ACTIONS];
	char reason[POOL_REASON_MAX];  /* "recorder rec1: OK -> FAILING_OVER (...)"; "; " between parts */
};

/* ---- the pool ---------------------------------------------------------- */

/* Empty pool with these settings; false (pool untouched) on a bad value. */
bool pool_init(struct pool *p, enum pool_failback fb, enum pool_after af);
/* New settings; they apply from the next event of each recorder. */
bool pool_configure(struct pool *p, enum pool_failback fb, enum pool_after af);

/* Registration (from a hello, or the registry at start). Names are unique
 * across recorders and spares; groups are required, a recorder's secondary
 * group is optional and differs from its primary. Returns the new index,
 * or -1 with *why set and nothing changed. New entries are OFFLINE. */
int pool_add_recorder(struct pool *p, const char *name, const char *group, const char *secondary,
                      bool failover, const char **why);
int pool_add_spare(struct pool *p, const char *name, const char *group, const char **why);
int pool_find_recorder(const struct pool *p, const char *name);
int pool_find_spare(const struct pool *p, const char *name);

/* New groups from a hello: the driver calls these before the UP event.
 * Only while the entry is not part of a failover (recorder OFFLINE, OK,
 * LOST or DOWN; spare OFFLINE). false with *why, nothing changed. */
bool pool_set_recorder_groups(struct pool *p, int r, const char *group, const char *secondary,
                              const char **why);
bool pool_set_spare_group(struct pool *p, int s, const char *group, const char **why);

/* Restoring the registry after a master restart, before any event: r was
 * failed over to s (FAILING_OVER, FAILED_OVER or BACK when saved): r is
 * FAILED_OVER, s LOST (the driver arms its timer, as for every OFFLINE
 * recorder: see docs/pool.md, "Master restart"). */
bool pool_restore_served(struct pool *p, int r, int s, enum pool_trigger t, const char **why);
/* s holds recordings of r not yet copied home. */
bool pool_restore_owed(struct pool *p, int s, int r, const char **why);

bool pool_owes(const struct pool *p, int s, int r);
/* The spare serving r as the status shows it ("served_by"), or -1. */
int pool_served_by(const struct pool *p, int r);

/* One event. Never aborts on input: a bad index, event or role is
 * POOL_ERROR and changes nothing. res is filled in full. */
void pool_step(struct pool *p, const struct pool_event *ev, struct pool_result *res);

/* Who may do what: failover, failback and copy need admin or operator;
 * enable and disable need admin. */
bool pool_role_allows(enum pool_role role, enum pool_event_type t);

/* ---- the tables (pool_table.c), for pool.c, the tests and the docs ---- */

/* Events of one recorder: the driver's, then those the pool derives from
 * its spare's events, then one the pool feeds to settle (docs/pool.md). */
enum pool_rec_event {
	POOL_RE_UP, POOL_RE_LOST, POOL_RE_DISK, POOL_RE_WATCHDOG, POOL_RE_TIMEOUT,
	POOL_RE_CMD_FAILOVER, POOL_RE_CMD_FAILBACK, POOL_RE_CMD_COPY, POOL_RE_ENABLE, POOL_RE_DISABLE,
	POOL_RE_SPARE_STARTED,  /* its spare started */
	POOL_RE_SPARE_FAILED,   /* its spare's start failed */
	POOL_RE_SPARE_STOPPED,  /* its spare stopped for the failback */
	POOL_RE_SPARE_GONE,     /* its spare no longer works for it (lost, restarted idle) */
	POOL_RE_SPARE_BACK,     /* its lost spare reconnected, still recording */
	POOL_RE_COPY_DONE, POOL_RE_COPY_FAILED,
	POOL_RE_HELD,           /* settling: failed over while connected, healthy and held */
	POOL_RE__COUNT
};

/* Events of one spare: the driver's, then the pool's orders. */
enum pool_spare_event {
	POOL_SE_UP_IDLE,        /* connected, records nothing */
	POOL_SE_UP_RUNNING,     /* connected, still records for the recorder it serves */
	POOL_SE_UP_STALE,       /* connected, records for a recorder it does not serve */
	POOL_SE_LOST, POOL_SE_TIMEOUT, POOL_SE_STARTED, POOL_SE_START_FAILED, POOL_SE_STOPPED,
	POOL_SE_COPY_DONE, POOL_SE_COPY_FAILED,
	POOL_SE_ASSIGN,         /* order: start for a recorder */
	POOL_SE_RELEASE,        /* order: stop (failback) */
	POOL_SE_COPY,           /* order: copy an owed recorder's recordings home */
	POOL_SE_ABORT_COPY,     /* order: pause the copy-back */
	POOL_SE_SWAP,           /* order: roles exchanged */
	POOL_SE__COUNT
};

enum pool_kind {
	POOL_K_MOVE,    /* to rule.next */
	POOL_K_KEEP,    /* stays, with actions or a recorded setting */
	POOL_K_IGNORE,  /* nothing happens */
	POOL_K_REFUSE,  /* a command refused */
	POOL_K_DECIDE,  /* the pool decides (rule.decision) */
	POOL_K__COUNT
};

/* Choices that need the whole pool (docs/pool.md, "Decisions"). */
enum pool_decision {
	POOL_D_NONE,
	POOL_D_NEED_SPARE, /* a free spare of its groups, else the queue; DOWN when disabled */
	POOL_D_MANUAL,     /* a free spare now, else refused */
	POOL_D_RETURN,     /* back while served: by failback and after_failure */
	POOL_D_GIVE_BACK,  /* failback command: failback or swap, or refused */
	POOL_D_COPY,       /* copy command: an owed copy-back, or refused */
	POOL_D__COUNT
};

enum pool_rec_act {
	POOL_RA_ARM = 1 << 0,         /* arm its detect timer */
	POOL_RA_RESUME = 1 << 1,      /* it records again */
	POOL_RA_MARK_BROKEN = 1 << 2, /* it must not record: a spare does */
	POOL_RA_ABORT_COPY = 1 << 3,  /* pause its running copy-back */
	POOL_RA_HOLD_COPY = 1 << 4,   /* no automatic retry of its copy-back */
	POOL_RA_KEEP_PLACE = 1 << 5,  /* NEED_SPARE: a retry keeps its place in the queue */
};
#define POOL_RA_ALL 0x3fu

enum pool_spare_act {
	POOL_SA_START = 1 << 0,       /* start for its recorder */
	POOL_SA_STOP = 1 << 1,        /* stop recording */
	POOL_SA_COPY = 1 << 2,        /* start the copy-back */
	POOL_SA_STOP_COPY = 1 << 3,   /* pause the copy-back */
	POOL_SA_ARM = 1 << 4,         /* arm its detect timer */
	POOL_SA_OWE = 1 << 5,         /* it now holds recordings of its recorder */
	POOL_SA_PAID = 1 << 6,        /* those recordings are home */
};
#define POOL_SA_ALL 0x7fu

struct pool_rec_rule {
	enum pool_kind kind;
	enum pool_rec_state next;      /* MOVE: the new state; otherwise the current one */
	enum pool_decision decision;   /* DECIDE */
	unsigned actions;              /* enum pool_rec_act bits */
	enum pool_trigger trigger;     /* NEED_SPARE: what triggers it; NONE keeps the current */
	enum pool_log_what log_what;   /* a log entry this cell writes, or NONE */
	enum pool_log_result log_result;
	const char *reason;
};

struct pool_spare_rule {
	enum pool_kind kind;           /* MOVE, KEEP or IGNORE */
	enum pool_spare_state next;
	unsigned actions;              /* enum pool_spare_act bits */
	int notify;                    /* enum pool_rec_event for its recorder, or -1 */
	const char *reason;
};

/* The cells; out of range: IGNORE with reason "invalid state or event". */
struct pool_rec_rule pool_rec_rule(enum pool_rec_state s, enum pool_rec_event e);
struct pool_spare_rule pool_spare_rule(enum pool_spare_state s, enum pool_spare_event e);

/* Names: every value has one, "?" out of range. The state names are the
 * ones `pool status` shows; the parse functions read the config and the
 * API (-1 when unknown). */
const char *pool_rec_state_str(enum pool_rec_state s);
const char *pool_spare_state_str(enum pool_spare_state s);
const char *pool_link_str(enum pool_link l);
const char *pool_trigger_str(enum pool_trigger t);
const char *pool_event_str(enum pool_event_type t);
const char *pool_rec_event_str(enum pool_rec_event e);
const char *pool_spare_event_str(enum pool_spare_event e);
const char *pool_action_str(enum pool_action_type a);
const char *pool_log_what_str(enum pool_log_what w);
const char *pool_log_result_str(enum pool_log_result r);
const char *pool_status_str(enum pool_status s);
const char *pool_role_str(enum pool_role r);
const char *pool_failback_str(enum pool_failback f);
const char *pool_after_str(enum pool_after a);
const char *pool_kind_str(enum pool_kind k);
const char *pool_decision_str(enum pool_decision d);
const char *pool_rec_act_str(enum pool_rec_act a);     /* one bit */
const char *pool_spare_act_str(enum pool_spare_act a); /* one bit */
int pool_role_parse(const char *s);
int pool_failback_parse(const char *s);
int pool_after_parse(const char *s);

#endif
