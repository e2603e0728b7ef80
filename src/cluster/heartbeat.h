/* Heartbeats: one UDP socket per heartbeat network, bound to this node's
 * address on it, sending every interval_ms to the peer's address on the same
 * network, and at once when our state changes. The peer is lost only when
 * no valid heartbeat arrived on ANY network for timeout_ms. */
#ifndef VIGIL_HEARTBEAT_H
#define VIGIL_HEARTBEAT_H

#include <stdbool.h>
#include <stdint.h>

#include "common/config.h"
#include "common/proto.h"

struct event_base;
struct hb;

struct hb_callbacks {
	/* A valid, fresh heartbeat from the peer (first one after a loss too). */
	void (*peer)(void *arg, const struct hb_msg *m, int net);
	/* No valid heartbeat on any network for timeout_ms. */
	void (*lost)(void *arg);
	/* Optional: silence for timeout_ms - lead (hb_set_suspect_lead), so
	 * slow preparations for a takeover can start before the peer is lost. */
	void (*suspect)(void *arg);
	void *arg;
};

struct hb *hb_new(struct event_base *base, const struct config *cfg, int self,
                  uint64_t incarnation, const struct hb_callbacks *cb);
void hb_free(struct hb *h);

/* What our heartbeats say; a change sends one at once on every network. */
void hb_set_local(struct hb *h, uint8_t state, uint64_t term, uint32_t flags);

/* After a restart of ours: heartbeats of an older peer incarnation than the
 * last one we heard are replays, even before the first fresh one arrives. */
void hb_set_replay_floor(struct hb *h, uint64_t incarnation);

/* How long before the loss `suspect` fires; 0 = never. */
void hb_set_suspect_lead(struct hb *h, uint32_t lead_ms);

bool hb_peer_reachable(const struct hb *h);
/* Whether network net heard the peer within timeout_ms. */
bool hb_net_up(const struct hb *h, int net);
/* Counters for status and tests. */
uint64_t hb_rejected(const struct hb *h);

#endif
