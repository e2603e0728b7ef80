/* The pool's two tables: one recorder, one spare. Every (state, event)
 * cell is written out: a move, a stay with actions (KEEP), a decision the
 * pool makes (DECIDE), a refused command (REJ) or an event the state does
 * not act on, with why (IGN). tests/unit/test_pool_sm.c walks every cell;
 * docs/pool.md has them as tables. */
#include "pool/pool_sm.h"

#include <stddef.h>

struct rrow {
	unsigned char kind, next, decision, trigger, log_what, log_result;
	unsigned actions;
	const char *reason;
};

struct srow {
	unsigned char kind, next;
	signed char notify;
	unsigned actions;
	const char *reason;
};

/* An event the pool derives only in other states: if one lands here, the
 * links between recorders and spares disagree (the tests look for it). */
#define UNEXPECTED "not expected in this state (the pool's links disagree)"

#define R(k, st, d, t, w, res, act, why) { k, st, d, t, w, res, act, why }
#define GO(st, act, why) R(POOL_K_MOVE, st, POOL_D_NONE, POOL_T_NONE, POOL_LOG_NONE, 0, act, why)
#define GOL(st, act, w, res, why) R(POOL_K_MOVE, st, POOL_D_NONE, POOL_T_NONE, w, res, act, why)
#define KEEP(act, why) R(POOL_K_KEEP, 0, POOL_D_NONE, POOL_T_NONE, POOL_LOG_NONE, 0, act, why)
#define IGN(why) R(POOL_K_IGNORE, 0, POOL_D_NONE, POOL_T_NONE, POOL_LOG_NONE, 0, 0, why)
#define REJ(why) R(POOL_K_REFUSE, 0, POOL_D_NONE, POOL_T_NONE, POOL_LOG_NONE, 0, 0, why)
#define DEC(d, why) R(POOL_K_DECIDE, 0, d, POOL_T_NONE, POOL_LOG_NONE, 0, 0, why)
#define NEED(t, act, why) R(POOL_K_DECIDE, 0, POOL_D_NEED_SPARE, t, POOL_LOG_NONE, 0, act, why)
#define NEEDL(t, act, w, res, why) R(POOL_K_DECIDE, 0, POOL_D_NEED_SPARE, t, w, res, act, why)

/* Recorders with no spare working for them. */
#define NO_SPARE \
	[POOL_RE_SPARE_STARTED] = IGN(UNEXPECTED), [POOL_RE_SPARE_FAILED] = IGN(UNEXPECTED), \
	[POOL_RE_SPARE_STOPPED] = IGN(UNEXPECTED), [POOL_RE_SPARE_GONE] = IGN(UNEXPECTED), \
	[POOL_RE_SPARE_BACK] = IGN(UNEXPECTED), [POOL_RE_COPY_DONE] = IGN(UNEXPECTED), \
	[POOL_RE_COPY_FAILED] = IGN(UNEXPECTED), [POOL_RE_HELD] = IGN(UNEXPECTED)

#define SETTING(why_on, why_off) \
	[POOL_RE_ENABLE] = KEEP(0, why_on), [POOL_RE_DISABLE] = KEEP(0, why_off)
#define SETTING_SERVED SETTING("failover enabled", "failover disabled (from its next failure; the spare stays)")

#define NOT_FAILED_OVER [POOL_RE_CMD_FAILBACK] = REJ("not failed over")

static const struct rrow rec_table[POOL_R__COUNT][POOL_RE__COUNT] = {
	[POOL_R_OFFLINE] = {
		[POOL_RE_UP] = GO(POOL_R_OK, POOL_RA_RESUME, "connected and healthy"),
		[POOL_RE_LOST] = IGN("not connected"),
		[POOL_RE_DISK] = NEED(POOL_T_DISK, 0, "connected with all its recording disks failed"),
		[POOL_RE_WATCHDOG] = NEED(POOL_T_WATCHDOG, 0, "connected; its recording service cannot start"),
		[POOL_RE_TIMEOUT] = NEED(POOL_T_ABSENT, 0, "not connected since the master started, past the detect timeout"),
		[POOL_RE_CMD_FAILOVER] = DEC(POOL_D_MANUAL, "failover by command"),
		NOT_FAILED_OVER,
		[POOL_RE_CMD_COPY] = REJ("not connected: copy-back needs the recorder recording (OK)"),
		SETTING("failover enabled", "failover disabled"),
		NO_SPARE,
	},
	[POOL_R_OK] = {
		[POOL_RE_UP] = IGN("already connected and healthy"),
		[POOL_RE_LOST] = GO(POOL_R_LOST, POOL_RA_ARM, "connection lost: waiting for the detect timeout"),
		[POOL_RE_DISK] = NEED(POOL_T_DISK, 0, "all its recording disks failed"),
		[POOL_RE_WATCHDOG] = NEED(POOL_T_WATCHDOG, 0, "its recording service cannot start"),
		[POOL_RE_TIMEOUT] = IGN("connected: a stale timeout"),
		[POOL_RE_CMD_FAILOVER] = DEC(POOL_D_MANUAL, "failover by command"),
		NOT_FAILED_OVER,
		[POOL_RE_CMD_COPY] = DEC(POOL_D_COPY, "copy-back by command"),
		SETTING("failover enabled", "failover disabled"),
		NO_SPARE,
	},
	[POOL_R_LOST] = {
		[POOL_RE_UP] = GO(POOL_R_OK, POOL_RA_RESUME, "reconnected before the detect timeout: not failed over"),
		[POOL_RE_LOST] = IGN("already lost"),
		[POOL_RE_DISK] = NEED(POOL_T_DISK, 0, "reconnected with all its recording disks failed"),
		[POOL_RE_WATCHDOG] = NEED(POOL_T_WATCHDOG, 0, "reconnected; its recording service cannot start"),
		[POOL_RE_TIMEOUT] = NEED(POOL_T_LOST, 0, "connection lost past the detect timeout"),
		[POOL_RE_CMD_FAILOVER] = DEC(POOL_D_MANUAL, "failover by command, before the detect timeout"),
		NOT_FAILED_OVER,
		[POOL_RE_CMD_COPY] = REJ("not connected: copy-back needs the recorder recording (OK)"),
		SETTING("failover enabled", "failover disabled"),
		NO_SPARE,
	},
	[POOL_R_DOWN] = {
		[POOL_RE_UP] = GO(POOL_R_OK, POOL_RA_RESUME, "connected and healthy again"),
		[POOL_RE_LOST] = IGN("down, and failover is disabled for it"),
		[POOL_RE_DISK] = IGN("down, and failover is disabled for it"),
		[POOL_RE_WATCHDOG] = IGN("down, and failover is disabled for it"),
		[POOL_RE_TIMEOUT] = IGN("down, and failover is disabled for it"),
		[POOL_RE_CMD_FAILOVER] = REJ("failover is disabled for this recorder"),
		NOT_FAILED_OVER,
		[POOL_RE_CMD_COPY] = REJ("down: copy-back needs the recorder recording (OK)"),
		[POOL_RE_ENABLE] = NEED(POOL_T_NONE, 0, "failover enabled while down"),
		[POOL_RE_DISABLE] = IGN("failover is already disabled"),
		NO_SPARE,
	},
	[POOL_R_QUEUED] = {
		[POOL_RE_UP] = GO(POOL_R_OK, POOL_RA_RESUME, "healthy again while waiting for a spare: leaves the queue"),
		[POOL_RE_LOST] = IGN("waiting in the queue for a free spare"),
		[POOL_RE_DISK] = IGN("waiting in the queue for a free spare"),
		[POOL_RE_WATCHDOG] = IGN("waiting in the queue for a free spare"),
		[POOL_RE_TIMEOUT] = IGN("waiting in the queue for a free spare"),
		[POOL_RE_CMD_FAILOVER] = REJ("already waiting in the queue for a free spare"),
		NOT_FAILED_OVER,
		[POOL_RE_CMD_COPY] = REJ("waiting for a spare: copy-back needs the recorder recording (OK)"),
		[POOL_RE_ENABLE] = IGN("failover is already enabled"),
		[POOL_RE_DISABLE] = GO(POOL_R_DOWN, 0, "failover disabled: leaves the queue"),
		NO_SPARE,
	},
	[POOL_R_FAILING_OVER] = {
		[POOL_RE_UP] = KEEP(POOL_RA_MARK_BROKEN, "back while its spare starts: stands down until failback"),
		[POOL_RE_LOST] = IGN("its spare is starting"),
		[POOL_RE_DISK] = IGN("its spare is starting"),
		[POOL_RE_WATCHDOG] = IGN("its spare is starting"),
		[POOL_RE_TIMEOUT] = IGN("its spare is starting"),
		[POOL_RE_CMD_FAILOVER] = REJ("a failover is already under way"),
		[POOL_RE_CMD_FAILBACK] = REJ("its spare is still starting"),
		[POOL_RE_CMD_COPY] = REJ("failing over: copy-back runs after failback"),
		SETTING_SERVED,
		[POOL_RE_SPARE_STARTED] = GOL(POOL_R_FAILED_OVER, 0, POOL_LOG_FAILOVER, POOL_RES_DONE,
		                              "its spare records in its place"),
		[POOL_RE_SPARE_FAILED] = NEEDL(POOL_T_NONE, POOL_RA_KEEP_PLACE, POOL_LOG_FAILOVER, POOL_RES_FAILED,
		                               "the start on its spare failed: trying the next spare"),
		[POOL_RE_SPARE_GONE] = NEEDL(POOL_T_NONE, POOL_RA_KEEP_PLACE, POOL_LOG_FAILOVER, POOL_RES_FAILED,
		                             "its spare was lost while starting: trying the next spare"),
		[POOL_RE_SPARE_STOPPED] = IGN(UNEXPECTED),
		[POOL_RE_SPARE_BACK] = IGN(UNEXPECTED),
		[POOL_RE_COPY_DONE] = IGN(UNEXPECTED),
		[POOL_RE_COPY_FAILED] = IGN(UNEXPECTED),
		[POOL_RE_HELD] = IGN(UNEXPECTED),
	},
	[POOL_R_FAILED_OVER] = {
		[POOL_RE_UP] = DEC(POOL_D_RETURN, "back and healthy"),
		[POOL_RE_LOST] = IGN("failed over: its spare records in its place"),
		[POOL_RE_DISK] = IGN("failed over: its spare records in its place"),
		[POOL_RE_WATCHDOG] = IGN("failed over: its spare records in its place"),
		[POOL_RE_TIMEOUT] = IGN("failed over: a stale timeout"),
		[POOL_RE_CMD_FAILOVER] = REJ("already failed over"),
		[POOL_RE_CMD_FAILBACK] = REJ("not back: failback needs the recorder connected and healthy"),
		[POOL_RE_CMD_COPY] = REJ("failed over: copy-back runs after failback"),
		SETTING_SERVED,
		[POOL_RE_SPARE_STARTED] = IGN(UNEXPECTED),
		[POOL_RE_SPARE_FAILED] = IGN(UNEXPECTED),
		[POOL_RE_SPARE_STOPPED] = IGN(UNEXPECTED),
		[POOL_RE_SPARE_GONE] = NEED(POOL_T_SPARE_LOST, 0, "its spare was lost"),
		[POOL_RE_SPARE_BACK] = IGN("its spare is reachable again"),
		[POOL_RE_COPY_DONE] = IGN(UNEXPECTED),
		[POOL_RE_COPY_FAILED] = IGN(UNEXPECTED),
		[POOL_RE_HELD] = GO(POOL_R_BACK, 0, "connected and healthy, stood down by a manual failover: "
		                    "failback by command"),
	},
	[POOL_R_BACK] = {
		[POOL_RE_UP] = IGN("already back"),
		[POOL_RE_LOST] = GO(POOL_R_FAILED_OVER, 0, "connection lost again before failback"),
		[POOL_RE_DISK] = GO(POOL_R_FAILED_OVER, 0, "its recording disks failed again before failback"),
		[POOL_RE_WATCHDOG] = GO(POOL_R_FAILED_OVER, 0, "its recording service failed again before failback"),
		[POOL_RE_TIMEOUT] = IGN("failed over: a stale timeout"),
		[POOL_RE_CMD_FAILOVER] = REJ("already failed over"),
		[POOL_RE_CMD_FAILBACK] = DEC(POOL_D_GIVE_BACK, "failback by command"),
		[POOL_RE_CMD_COPY] = REJ("failed over: copy-back runs after failback"),
		SETTING_SERVED,
		[POOL_RE_SPARE_STARTED] = IGN(UNEXPECTED),
		[POOL_RE_SPARE_FAILED] = IGN(UNEXPECTED),
		[POOL_RE_SPARE_STOPPED] = IGN(UNEXPECTED),
		[POOL_RE_SPARE_GONE] = GOL(POOL_R_OK, POOL_RA_RESUME, POOL_LOG_FAILBACK, POOL_RES_DONE,
		                           "its spare was lost: it records again"),
		[POOL_RE_SPARE_BACK] = DEC(POOL_D_RETURN, "its spare is reachable again"),
		[POOL_RE_COPY_DONE] = IGN(UNEXPECTED),
		[POOL_RE_COPY_FAILED] = IGN(UNEXPECTED),
		[POOL_RE_HELD] = IGN(UNEXPECTED),
	},
	[POOL_R_FAILING_BACK] = {
		[POOL_RE_UP] = IGN("failing back: it records again once its spare has stopped"),
		[POOL_RE_LOST] = IGN("failing back: looked at again once its spare has stopped"),
		[POOL_RE_DISK] = IGN("failing back: looked at again once its spare has stopped"),
		[POOL_RE_WATCHDOG] = IGN("failing back: looked at again once its spare has stopped"),
		[POOL_RE_TIMEOUT] = IGN("failing back: a stale timeout"),
		[POOL_RE_CMD_FAILOVER] = REJ("failback under way"),
		[POOL_RE_CMD_FAILBACK] = IGN("failback already under way"),
		[POOL_RE_CMD_COPY] = REJ("failback under way: copy-back follows"),
		SETTING_SERVED,
		[POOL_RE_SPARE_STARTED] = IGN(UNEXPECTED),
		[POOL_RE_SPARE_FAILED] = IGN(UNEXPECTED),
		[POOL_RE_SPARE_STOPPED] = GOL(POOL_R_COPYING, POOL_RA_RESUME, POOL_LOG_FAILBACK, POOL_RES_DONE,
		                              "its spare stopped: it records again; copy-back starts"),
		[POOL_RE_SPARE_GONE] = GOL(POOL_R_OK, POOL_RA_RESUME, POOL_LOG_FAILBACK, POOL_RES_DONE,
		                           "its spare was lost while stopping: it records again; "
		                           "copy-back waits for the spare"),
		[POOL_RE_SPARE_BACK] = IGN(UNEXPECTED),
		[POOL_RE_COPY_DONE] = IGN(UNEXPECTED),
		[POOL_RE_COPY_FAILED] = IGN(UNEXPECTED),
		[POOL_RE_HELD] = IGN(UNEXPECTED),
	},
	[POOL_R_COPYING] = {
		[POOL_RE_UP] = IGN("already connected and healthy"),
		[POOL_RE_LOST] = GOL(POOL_R_LOST, POOL_RA_ARM | POOL_RA_ABORT_COPY, POOL_LOG_COPY, POOL_RES_PAUSED,
		                     "connection lost during copy-back (paused): waiting for the detect timeout"),
		[POOL_RE_DISK] = NEEDL(POOL_T_DISK, POOL_RA_ABORT_COPY, POOL_LOG_COPY, POOL_RES_PAUSED,
		                       "all its recording disks failed (copy-back paused)"),
		[POOL_RE_WATCHDOG] = NEEDL(POOL_T_WATCHDOG, POOL_RA_ABORT_COPY, POOL_LOG_COPY, POOL_RES_PAUSED,
		                           "its recording service cannot start (copy-back paused)"),
		[POOL_RE_TIMEOUT] = IGN("connected: a stale timeout"),
		[POOL_RE_CMD_FAILOVER] = REJ("copy-back running: wait for it to finish"),
		NOT_FAILED_OVER,
		[POOL_RE_CMD_COPY] = IGN("copy-back already running"),
		SETTING("failover enabled", "failover disabled"),
		[POOL_RE_SPARE_STARTED] = IGN(UNEXPECTED),
		[POOL_RE_SPARE_FAILED] = IGN(UNEXPECTED),
		[POOL_RE_SPARE_STOPPED] = IGN(UNEXPECTED),
		[POOL_RE_SPARE_GONE] = GOL(POOL_R_OK, 0, POOL_LOG_COPY, POOL_RES_PAUSED,
		                           "its spare was lost during copy-back: resumes when the spare is back"),
		[POOL_RE_SPARE_BACK] = IGN(UNEXPECTED),
		[POOL_RE_COPY_DONE] = GOL(POOL_R_OK, 0, POOL_LOG_COPY, POOL_RES_DONE, "copy-back done"),
		[POOL_RE_COPY_FAILED] = GOL(POOL_R_OK, POOL_RA_HOLD_COPY, POOL_LOG_COPY, POOL_RES_FAILED,
		                            "copy-back failed: retried by `pool copy` or when the recorder reconnects"),
		[POOL_RE_HELD] = IGN(UNEXPECTED),
	},
};

#define S(k, st, n, act, why) { k, st, n, act, why }
#define SGO(st, act, n, why) S(POOL_K_MOVE, st, n, act, why)
#define SKEEP(act, why) S(POOL_K_KEEP, 0, -1, act, why)
#define SIGN(why) S(POOL_K_IGNORE, 0, -1, 0, why)

#define CONNECTED_ALREADY \
	[POOL_SE_UP_IDLE] = SIGN("already connected (the driver reports lost before a new hello)"), \
	[POOL_SE_UP_RUNNING] = SIGN("already connected (the driver reports lost before a new hello)"), \
	[POOL_SE_UP_STALE] = SIGN("already connected (the driver reports lost before a new hello)")
#define NOT_LOST [POOL_SE_TIMEOUT] = SIGN("not lost: a stale timeout")
#define STALE_REPORTS(why) \
	[POOL_SE_STARTED] = SIGN(why), [POOL_SE_START_FAILED] = SIGN(why), [POOL_SE_STOPPED] = SIGN(why), \
	[POOL_SE_COPY_DONE] = SIGN(why), [POOL_SE_COPY_FAILED] = SIGN(why)
#define NO_ORDERS \
	[POOL_SE_ASSIGN] = SIGN(UNEXPECTED), [POOL_SE_RELEASE] = SIGN(UNEXPECTED), \
	[POOL_SE_COPY] = SIGN(UNEXPECTED), [POOL_SE_ABORT_COPY] = SIGN(UNEXPECTED), \
	[POOL_SE_SWAP] = SIGN(UNEXPECTED)

static const struct srow spare_table[POOL_S__COUNT][POOL_SE__COUNT] = {
	[POOL_S_OFFLINE] = {
		[POOL_SE_UP_IDLE] = SGO(POOL_S_FREE, 0, -1, "connected, idle"),
		[POOL_SE_UP_RUNNING] = SGO(POOL_S_FREE, POOL_SA_STOP, -1,
		                           "connected, recording for a recorder it does not serve: told to stop"),
		[POOL_SE_UP_STALE] = SGO(POOL_S_FREE, POOL_SA_STOP, -1,
		                         "connected, recording for a recorder it does not serve: told to stop"),
		[POOL_SE_LOST] = SIGN("not connected"),
		NOT_LOST,
		STALE_REPORTS("not connected: a stale report"),
		NO_ORDERS,
	},
	[POOL_S_FREE] = {
		CONNECTED_ALREADY,
		[POOL_SE_LOST] = SGO(POOL_S_OFFLINE, 0, -1, "connection lost"),
		NOT_LOST,
		STALE_REPORTS("nothing under way: a stale report"),
		[POOL_SE_ASSIGN] = SGO(POOL_S_STARTING, POOL_SA_START, -1, "starting in the recorder's place"),
		[POOL_SE_RELEASE] = SIGN(UNEXPECTED),
		[POOL_SE_COPY] = SGO(POOL_S_COPYING, POOL_SA_COPY, -1, "copy-back starts"),
		[POOL_SE_ABORT_COPY] = SIGN(UNEXPECTED),
		[POOL_SE_SWAP] = SIGN(UNEXPECTED),
	},
	[POOL_S_STARTING] = {
		CONNECTED_ALREADY,
		[POOL_SE_LOST] = SGO(POOL_S_OFFLINE, 0, POOL_RE_SPARE_GONE, "connection lost while starting"),
		NOT_LOST,
		[POOL_SE_STARTED] = SGO(POOL_S_SERVING, POOL_SA_OWE, POOL_RE_SPARE_STARTED,
		                        "started: records in the recorder's place"),
		[POOL_SE_START_FAILED] = SGO(POOL_S_FAILED, 0, POOL_RE_SPARE_FAILED,
		                             "start failed: not chosen again until it reconnects"),
		[POOL_SE_STOPPED] = SIGN("starting: a stale report"),
		[POOL_SE_COPY_DONE] = SIGN("starting: a stale report"),
		[POOL_SE_COPY_FAILED] = SIGN("starting: a stale report"),
		NO_ORDERS,
	},
	[POOL_S_SERVING] = {
		CONNECTED_ALREADY,
		[POOL_SE_LOST] = SGO(POOL_S_LOST, POOL_SA_ARM, -1,
		                     "connection lost while recording: waiting for the detect timeout"),
		NOT_LOST,
		[POOL_SE_STARTED] = SIGN("already recording: a stale report"),
		[POOL_SE_START_FAILED] = SIGN("already recording: a stale report"),
		[POOL_SE_STOPPED] = SGO(POOL_S_FREE, 0, POOL_RE_SPARE_GONE, "stopped recording on its own"),
		[POOL_SE_COPY_DONE] = SIGN("recording: a stale report"),
		[POOL_SE_COPY_FAILED] = SIGN("recording: a stale report"),
		[POOL_SE_ASSIGN] = SIGN(UNEXPECTED),
		[POOL_SE_RELEASE] = SGO(POOL_S_STOPPING, POOL_SA_STOP, -1, "stopping for the failback"),
		[POOL_SE_COPY] = SIGN(UNEXPECTED),
		[POOL_SE_ABORT_COPY] = SIGN(UNEXPECTED),
		[POOL_SE_SWAP] = SGO(POOL_S_FREE, 0, -1, "roles exchanged: the repaired recorder is this spare now"),
	},
	[POOL_S_LOST] = {
		[POOL_SE_UP_IDLE] = SGO(POOL_S_FREE, 0, POOL_RE_SPARE_GONE,
		                        "reconnected idle: it no longer records for the recorder"),
		[POOL_SE_UP_RUNNING] = SGO(POOL_S_SERVING, 0, POOL_RE_SPARE_BACK, "reconnected, still recording"),
		[POOL_SE_UP_STALE] = SGO(POOL_S_FREE, POOL_SA_STOP, POOL_RE_SPARE_GONE,
		                         "reconnected recording for another recorder: told to stop"),
		[POOL_SE_LOST] = SIGN("already lost"),
		[POOL_SE_TIMEOUT] = SGO(POOL_S_OFFLINE, 0, POOL_RE_SPARE_GONE, "lost past the detect timeout"),
		STALE_REPORTS("not connected: a stale report"),
		NO_ORDERS,
	},
	[POOL_S_STOPPING] = {
		CONNECTED_ALREADY,
		[POOL_SE_LOST] = SGO(POOL_S_OFFLINE, 0, POOL_RE_SPARE_GONE, "connection lost while stopping"),
		NOT_LOST,
		[POOL_SE_STARTED] = SIGN("stopping: a stale report"),
		[POOL_SE_START_FAILED] = SIGN("stopping: a stale report"),
		[POOL_SE_STOPPED] = SGO(POOL_S_COPYING, POOL_SA_COPY, POOL_RE_SPARE_STOPPED, "stopped; copy-back starts"),
		[POOL_SE_COPY_DONE] = SIGN("stopping: a stale report"),
		[POOL_SE_COPY_FAILED] = SIGN("stopping: a stale report"),
		NO_ORDERS,
	},
	[POOL_S_COPYING] = {
		CONNECTED_ALREADY,
		[POOL_SE_LOST] = SGO(POOL_S_OFFLINE, 0, POOL_RE_SPARE_GONE, "connection lost during copy-back"),
		NOT_LOST,
		[POOL_SE_STARTED] = SIGN("copying: a stale report"),
		[POOL_SE_START_FAILED] = SIGN("copying: a stale report"),
		[POOL_SE_STOPPED] = SIGN("copying: a stale report"),
		[POOL_SE_COPY_DONE] = SGO(POOL_S_FREE, POOL_SA_PAID, POOL_RE_COPY_DONE, "copy-back done"),
		[POOL_SE_COPY_FAILED] = SGO(POOL_S_FREE, 0, POOL_RE_COPY_FAILED, "copy-back failed"),
		[POOL_SE_ASSIGN] = SIGN(UNEXPECTED),
		[POOL_SE_RELEASE] = SIGN(UNEXPECTED),
		[POOL_SE_COPY] = SIGN(UNEXPECTED),
		[POOL_SE_ABORT_COPY] = SGO(POOL_S_FREE, POOL_SA_STOP_COPY, -1, "copy-back paused"),
		[POOL_SE_SWAP] = SIGN(UNEXPECTED),
	},
	[POOL_S_FAILED] = {
		[POOL_SE_UP_IDLE] = SIGN("already connected; chosen again once it reconnects"),
		[POOL_SE_UP_RUNNING] = SIGN("already connected; chosen again once it reconnects"),
		[POOL_SE_UP_STALE] = SIGN("already connected; chosen again once it reconnects"),
		[POOL_SE_LOST] = SGO(POOL_S_OFFLINE, 0, -1, "connection lost"),
		NOT_LOST,
		STALE_REPORTS("its start failed: a stale report"),
		NO_ORDERS,
	},
};

struct pool_rec_rule pool_rec_rule(enum pool_rec_state s, enum pool_rec_event e)
{
	struct pool_rec_rule r = { POOL_K_IGNORE, s, POOL_D_NONE, 0, POOL_T_NONE, POOL_LOG_NONE, 0,
	                           "invalid state or event" };
	const struct rrow *row;

	if ((unsigned)s >= POOL_R__COUNT || (unsigned)e >= POOL_RE__COUNT)
		return r;
	row = &rec_table[s][e];
	if (!row->reason)
		return r;
	r.kind = (enum pool_kind)row->kind;
	r.next = row->kind == POOL_K_MOVE ? (enum pool_rec_state)row->next : s;
	r.decision = (enum pool_decision)row->decision;
	r.actions = row->actions;
	r.trigger = (enum pool_trigger)row->trigger;
	r.log_what = (enum pool_log_what)row->log_what;
	r.log_result = (enum pool_log_result)row->log_result;
	r.reason = row->reason;
	return r;
}

struct pool_spare_rule pool_spare_rule(enum pool_spare_state s, enum pool_spare_event e)
{
	struct pool_spare_rule r = { POOL_K_IGNORE, s, 0, -1, "invalid state or event" };
	const struct srow *row;

	if ((unsigned)s >= POOL_S__COUNT || (unsigned)e >= POOL_SE__COUNT)
		return r;
	row = &spare_table[s][e];
	if (!row->reason)
		return r;
	r.kind = (enum pool_kind)row->kind;
	r.next = row->kind == POOL_K_MOVE ? (enum pool_spare_state)row->next : s;
	r.actions = row->actions;
	r.notify = row->notify;
	r.reason = row->reason;
	return r;
}
