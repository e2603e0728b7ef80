/* The node side of vigil-witness (docs/witness.md): asks for the lease on
 * the libevent loop and says whether this node holds it.
 *
 * One connect()ed, non-blocking UDP socket to cfg->witness_addr. While the
 * node wants something (HOLD or TAKE) it sends an acquire at once on a
 * change and then every lease_ms/6 (at least 20 ms). The client counts a
 * lease from when the granted request was SENT, not from when the answer
 * came: the witness starts the lease when it receives the request, later,
 * so the node always believes in its lease no longer than the witness does,
 * and the other node is granted only after this one stopped believing. */
#ifndef VIGIL_WITNESS_CLIENT_H
#define VIGIL_WITNESS_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include "common/config.h"

struct event_base;
struct wclient;

enum wc_want { WC_NONE, WC_HOLD, WC_TAKE };
const char *wc_want_str(enum wc_want w);

/* changed: called (from the loop, never inside a wclient_* call) whenever
 * wclient_granted() or wclient_refused() may have changed, including when
 * the lease runs out by the clock. NULL (and logs why) if cfg has no
 * witness address or the socket cannot be made. */
struct wclient *wclient_new(struct event_base *base, const struct config *cfg, int self,
                            uint64_t incarnation, void (*changed)(void *arg), void *arg);
void wclient_free(struct wclient *w);

/* NONE: send one release if we held it, then stop asking. HOLD: this node
 * runs the service and keeps the lease (primary=true, but only while the
 * lease is still valid: see docs/witness.md). TAKE: this node wants to take
 * over (primary=false). term: the term it runs under (HOLD) or would take
 * over with (TAKE). A change sends at once; then every lease_ms/6
 * (min 20 ms). A grant for a request sent before the lease last ran out (or
 * before a release) is ignored: it cannot revive a lease given up on. */
void wclient_want(struct wclient *w, enum wc_want want, uint64_t term);

/* Holds a lease now: the last grant's request was SENT at t and
 * now < t + lease_ms (conservative). */
bool wclient_granted(const struct wclient *w);
/* The last grant's request was sent less than lease_ms/3 ago (the witness
 * answers: not isolated). */
bool wclient_fresh(const struct wclient *w);
/* The last answer was a refusal (and no grant since). */
bool wclient_refused(const struct wclient *w);
/* The witness's newest term from the last answer (0 if none). */
uint64_t wclient_witness_term(const struct wclient *w);
/* One line for logs/status: "granted (term 4, 1200 ms left)",
 * "refused: held by node1 ...", "no answer from 10.0.0.3:4800 for 2400 ms",
 * "not asked". Valid until the next wclient_* call. */
const char *wclient_reason(const struct wclient *w);

#endif
