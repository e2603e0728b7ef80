/* pool_step(): checks the input, records the facts an event carries, feeds
 * the recorder or spare, then dispatches free spares. And the registry:
 * init, add, find, new groups, restore after a master restart. */
#include "pool/pool_sm.h"

#include <stdio.h>
#include <string.h>

#include "pool/pool_int.h"

bool pool_role_allows(enum pool_role role, enum pool_event_type t)
{
	if ((unsigned)role >= POOL_ROLE__COUNT)
		return false;
	switch (t) {
	case POOL_E_FAILOVER: case POOL_E_FAILBACK: case POOL_E_COPY:
		return role == POOL_ROLE_ADMIN || role == POOL_ROLE_OPERATOR;
	case POOL_E_ENABLE: case POOL_E_DISABLE:
		return role == POOL_ROLE_ADMIN;
	default:
		return true;
	}
}

static bool is_command(enum pool_event_type t)
{
	return t == POOL_E_FAILOVER || t == POOL_E_FAILBACK || t == POOL_E_COPY || t == POOL_E_ENABLE ||
	       t == POOL_E_DISABLE;
}

static const char *bad_input(const struct pool *p, const struct pool_event *ev)
{
	if ((unsigned)ev->type >= POOL_E__COUNT)
		return "unknown event";
	if (ev->type < POOL_E_SPARE_UP) {
		if (ev->rec < 0 || ev->rec >= p->n_rec)
			return "unknown recorder";
		if (is_command(ev->type) && (unsigned)ev->role >= POOL_ROLE__COUNT)
			return "unknown role";
		return NULL;
	}
	if (ev->spare < 0 || ev->spare >= p->n_spare)
		return "unknown spare";
	if (ev->type == POOL_E_SPARE_UP && ev->rec != POOL_RUNS_NOTHING && ev->rec != POOL_RUNS_OTHER &&
	    (ev->rec < 0 || ev->rec >= p->n_rec))
		return "unknown recorder in the spare's hello";
	return NULL;
}

static const struct {
	enum pool_rec_event re;
	enum pool_link link; /* POOL_LINK__COUNT: no fact */
} rec_map[] = {
	[POOL_E_REC_UP] = { POOL_RE_UP, POOL_LINK_UP },
	[POOL_E_REC_LOST] = { POOL_RE_LOST, POOL_LINK_DOWN },
	[POOL_E_REC_DISK] = { POOL_RE_DISK, POOL_LINK_DISK },
	[POOL_E_REC_WATCHDOG] = { POOL_RE_WATCHDOG, POOL_LINK_WATCHDOG },
	[POOL_E_REC_TIMEOUT] = { POOL_RE_TIMEOUT, POOL_LINK__COUNT },
	[POOL_E_FAILOVER] = { POOL_RE_CMD_FAILOVER, POOL_LINK__COUNT },
	[POOL_E_FAILBACK] = { POOL_RE_CMD_FAILBACK, POOL_LINK__COUNT },
	[POOL_E_COPY] = { POOL_RE_CMD_COPY, POOL_LINK__COUNT },
	[POOL_E_ENABLE] = { POOL_RE_ENABLE, POOL_LINK__COUNT },
	[POOL_E_DISABLE] = { POOL_RE_DISABLE, POOL_LINK__COUNT },
};

static const enum pool_spare_event spare_map[] = {
	[POOL_E_SPARE_LOST - POOL_E_SPARE_UP] = POOL_SE_LOST,
	[POOL_E_SPARE_TIMEOUT - POOL_E_SPARE_UP] = POOL_SE_TIMEOUT,
	[POOL_E_SPARE_STARTED - POOL_E_SPARE_UP] = POOL_SE_STARTED,
	[POOL_E_SPARE_START_FAILED - POOL_E_SPARE_UP] = POOL_SE_START_FAILED,
	[POOL_E_SPARE_STOPPED - POOL_E_SPARE_UP] = POOL_SE_STOPPED,
	[POOL_E_COPY_DONE - POOL_E_SPARE_UP] = POOL_SE_COPY_DONE,
	[POOL_E_COPY_FAILED - POOL_E_SPARE_UP] = POOL_SE_COPY_FAILED,
};

static void step_recorder(struct pool_ctx *c, const struct pool_event *ev)
{
	struct pool_recorder *rec = &c->p->rec[ev->rec];
	enum pool_link link = rec_map[ev->type].link;

	if (is_command(ev->type) && !pool_role_allows(ev->role, ev->type)) {
		pool_say(c, "recorder %s: %s refused: role %s may not (%s)", rec->name, pool_event_str(ev->type),
		         pool_role_str(ev->role),
		         ev->type == POOL_E_ENABLE || ev->type == POOL_E_DISABLE ? "admin only" : "admin or operator");
		c->refused = true;
		return;
	}
	if (link != POOL_LINK__COUNT) {
		/* A new hello: a held copy-back may try again. */
		if (ev->type == POOL_E_REC_UP && rec->link == POOL_LINK_DOWN && rec->copy_held) {
			rec->copy_held = false;
			c->res->changed = true;
		}
		pool_set_link(c, ev->rec, link);
	}
	if (ev->type == POOL_E_ENABLE || ev->type == POOL_E_DISABLE) {
		bool on = ev->type == POOL_E_ENABLE;

		if (rec->failover != on)
			c->res->changed = true;
		rec->failover = on;
	}
	pool_feed_rec(c, ev->rec, rec_map[ev->type].re, -1);
}

static void step_spare(struct pool_ctx *c, const struct pool_event *ev)
{
	const struct pool_spare *sp = &c->p->spare[ev->spare];
	enum pool_spare_event e;

	if (ev->type == POOL_E_SPARE_UP) {
		if (ev->rec == POOL_RUNS_NOTHING)
			e = POOL_SE_UP_IDLE;
		else if (ev->rec >= 0 && ev->rec == sp->rec)
			e = POOL_SE_UP_RUNNING;
		else
			e = POOL_SE_UP_STALE;
	} else {
		e = spare_map[ev->type - POOL_E_SPARE_UP];
	}
	pool_feed_spare(c, ev->spare, e);
}

void pool_step(struct pool *p, const struct pool_event *ev, struct pool_result *res)
{
	struct pool_ctx c = { .p = p, .res = res };
	const char *bad;

	memset(res, 0, sizeof(*res));
	bad = ev ? bad_input(p, ev) : "no event";
	if (bad) {
		res->status = POOL_ERROR;
		snprintf(res->reason, sizeof(res->reason), "%s", bad);
		return;
	}
	if (ev->type < POOL_E_SPARE_UP)
		step_recorder(&c, ev);
	else
		step_spare(&c, ev);
	if (c.refused) {
		res->status = POOL_REFUSED;
		return;
	}
	pool_dispatch(&c);
	res->status = c.moved ? POOL_OK : POOL_IGNORED;
}

/* ---- the registry ------------------------------------------------------ */

bool pool_init(struct pool *p, enum pool_failback fb, enum pool_after af)
{
	if ((unsigned)fb >= POOL_FAILBACK__COUNT || (unsigned)af >= POOL_AFTER__COUNT)
		return false;
	memset(p, 0, sizeof(*p));
	p->failback = fb;
	p->after = af;
	return true;
}

bool pool_configure(struct pool *p, enum pool_failback fb, enum pool_after af)
{
	if ((unsigned)fb >= POOL_FAILBACK__COUNT || (unsigned)af >= POOL_AFTER__COUNT)
		return false;
	p->failback = fb;
	p->after = af;
	return true;
}

/* NULL when s is a usable name: not empty, fits, no control characters. */
static const char *bad_name(const char *s, const char *what_empty, const char *what_long)
{
	if (!s || !*s)
		return what_empty;
	if (strlen(s) >= POOL_NAME_MAX)
		return what_long;
	for (const unsigned char *c = (const unsigned char *)s; *c; c++)
		if (*c < 0x20 || *c == 0x7f)
			return "a name or group holds a control character";
	return NULL;
}

int pool_find_recorder(const struct pool *p, const char *name)
{
	for (int i = 0; name && i < p->n_rec; i++)
		if (strcmp(p->rec[i].name, name) == 0)
			return i;
	return -1;
}

int pool_find_spare(const struct pool *p, const char *name)
{
	for (int i = 0; name && i < p->n_spare; i++)
		if (strcmp(p->spare[i].name, name) == 0)
			return i;
	return -1;
}

static const char *check_rec_groups(const char *group, const char *secondary)
{
	const char *why = bad_name(group, "a recorder needs a failover group", "group name too long");

	if (why)
		return why;
	if (secondary && *secondary) {
		if ((why = bad_name(secondary, NULL, "secondary group name too long")))
			return why;
		if (strcmp(group, secondary) == 0)
			return "the secondary group is the primary group";
	}
	return NULL;
}

static bool fail(const char **why, const char *text)
{
	if (why)
		*why = text;
	return false;
}

int pool_add_recorder(struct pool *p, const char *name, const char *group, const char *secondary,
                      bool failover, const char **why)
{
	const char *bad = bad_name(name, "a recorder needs a name", "recorder name too long");
	struct pool_recorder *rec;

	if (!bad)
		bad = check_rec_groups(group, secondary);
	if (!bad && (pool_find_recorder(p, name) >= 0 || pool_find_spare(p, name) >= 0))
		bad = "the name is already in the pool";
	if (!bad && p->n_rec == POOL_MAX_RECORDERS)
		bad = "the pool is full (recorders)";
	if (bad) {
		fail(why, bad);
		return -1;
	}
	rec = &p->rec[p->n_rec];
	memset(rec, 0, sizeof(*rec));
	snprintf(rec->name, sizeof(rec->name), "%s", name);
	snprintf(rec->group, sizeof(rec->group), "%s", group);
	snprintf(rec->secondary, sizeof(rec->secondary), "%s", secondary ? secondary : "");
	rec->failover = failover;
	rec->state = POOL_R_OFFLINE;
	rec->link = POOL_LINK_DOWN;
	rec->spare = -1;
	return p->n_rec++;
}

int pool_add_spare(struct pool *p, const char *name, const char *group, const char **why)
{
	const char *bad = bad_name(name, "a spare needs a name", "spare name too long");
	struct pool_spare *sp;

	if (!bad)
		bad = bad_name(group, "a spare in no failover group is never used: give it a group",
		               "group name too long");
	if (!bad && (pool_find_recorder(p, name) >= 0 || pool_find_spare(p, name) >= 0))
		bad = "the name is already in the pool";
	if (!bad && p->n_spare == POOL_MAX_SPARES)
		bad = "the pool is full (spares)";
	if (bad) {
		fail(why, bad);
		return -1;
	}
	sp = &p->spare[p->n_spare];
	memset(sp, 0, sizeof(*sp));
	snprintf(sp->name, sizeof(sp->name), "%s", name);
	snprintf(sp->group, sizeof(sp->group), "%s", group);
	sp->state = POOL_S_OFFLINE;
	sp->rec = -1;
	return p->n_spare++;
}

bool pool_set_recorder_groups(struct pool *p, int r, const char *group, const char *secondary,
                              const char **why)
{
	const char *bad;

	if (r < 0 || r >= p->n_rec)
		return fail(why, "unknown recorder");
	switch (p->rec[r].state) {
	case POOL_R_OFFLINE: case POOL_R_OK: case POOL_R_LOST: case POOL_R_DOWN:
		break;
	default:
		return fail(why, "its groups change only while it is not part of a failover");
	}
	if ((bad = check_rec_groups(group, secondary)))
		return fail(why, bad);
	snprintf(p->rec[r].group, sizeof(p->rec[r].group), "%s", group);
	snprintf(p->rec[r].secondary, sizeof(p->rec[r].secondary), "%s", secondary ? secondary : "");
	return true;
}

bool pool_set_spare_group(struct pool *p, int s, const char *group, const char **why)
{
	const char *bad;

	if (s < 0 || s >= p->n_spare)
		return fail(why, "unknown spare");
	if (p->spare[s].state != POOL_S_OFFLINE)
		return fail(why, "a spare's group changes only while it is offline");
	if ((bad = bad_name(group, "a spare in no failover group is never used: give it a group",
	                    "group name too long")))
		return fail(why, bad);
	snprintf(p->spare[s].group, sizeof(p->spare[s].group), "%s", group);
	return true;
}

bool pool_restore_served(struct pool *p, int r, int s, enum pool_trigger t, const char **why)
{
	if (r < 0 || r >= p->n_rec)
		return fail(why, "unknown recorder");
	if (s < 0 || s >= p->n_spare)
		return fail(why, "unknown spare");
	if ((unsigned)t >= POOL_T__COUNT)
		return fail(why, "unknown trigger");
	if (p->rec[r].state != POOL_R_OFFLINE || p->rec[r].spare >= 0)
		return fail(why, "the recorder is not fresh (restore before any event)");
	if (p->spare[s].state != POOL_S_OFFLINE || p->spare[s].rec >= 0)
		return fail(why, "the spare is not fresh (restore before any event)");
	p->rec[r].state = POOL_R_FAILED_OVER;
	p->rec[r].trigger = t;
	p->rec[r].spare = s;
	p->spare[s].state = POOL_S_LOST;
	p->spare[s].rec = r;
	p->spare[s].owes[r / 64] |= (uint64_t)1 << (r % 64);
	return true;
}

bool pool_restore_owed(struct pool *p, int s, int r, const char **why)
{
	if (r < 0 || r >= p->n_rec)
		return fail(why, "unknown recorder");
	if (s < 0 || s >= p->n_spare)
		return fail(why, "unknown spare");
	p->spare[s].owes[r / 64] |= (uint64_t)1 << (r % 64);
	return true;
}
