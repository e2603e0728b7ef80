/* The virtual IP: an IPv4 address moved between nodes.
 *
 * Added and removed through rtnetlink (libmnl), announced with gratuitous
 * ARP (a burst, then a few repeats), and probed with ARP before it is taken
 * (RFC 5227 probes, sender 0.0.0.0): if another host answers, it is in use
 * and must not be taken. Everything is non-blocking on the event loop. */
#ifndef VIGIL_VIP_H
#define VIGIL_VIP_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

struct event_base;
struct vip;

struct vip_opts {
	const char *ifname;
	struct in_addr addr;
	int prefix;
	uint32_t probe_ms;         /* probe window; 0 = do not probe */
	uint32_t garp_burst;       /* announcements sent at once (>= 1) */
	uint32_t garp_repeats;     /* then this many more ... */
	uint32_t garp_interval_ms; /* ... this far apart */
};

enum vip_probe_result { VIP_FREE, VIP_IN_USE, VIP_PROBE_ERROR };
const char *vip_probe_result_str(enum vip_probe_result r);

/* mac: the answering host's hardware address when VIP_IN_USE. */
typedef void (*vip_probe_cb)(enum vip_probe_result r, const uint8_t mac[6], void *arg);

struct vip *vip_new(struct event_base *base, const struct vip_opts *opts);
void vip_free(struct vip *v);

/* "10.0.0.100/24 on eth0" */
const char *vip_describe(const struct vip *v);

/* 1 if the address is on the interface now, 0 if not, -1 on error. */
int vip_present(struct vip *v);

/* Sends ARP probes for the address and waits probe_ms for an answer; cb
 * is called once from the loop (never inside vip_probe). If the address is
 * already on our own interface, reports VIP_FREE at once (ours). A new probe
 * or vip_probe_cancel cancels a pending one without calling its cb. */
int vip_probe(struct vip *v, vip_probe_cb cb, void *arg);
void vip_probe_cancel(struct vip *v);

/* Probes now, for a vip_probe() expected soon (the peer is about to be
 * declared lost): that call then joins the probe in flight, or takes its
 * "free" result if it finished within the last probe_ms + 100 ms. An "in
 * use" result is never reused: vip_probe() probes again. No-op while a
 * probe runs. 0 or -1. */
int vip_probe_ahead(struct vip *v);

/* Adds the address (no error if present) and starts the announcements.
 * 0 or -1 (logged). */
int vip_add(struct vip *v);
/* Stops announcements and removes the address (no error if absent). */
int vip_del(struct vip *v);
/* Removes addr/prefix from ifname now, without a struct vip: for `vigilctl
 * setup remove` after a vigild that was killed. Blocks for up to a second
 * (rtnetlink). 1 removed, 0 not there (or no such interface), -1 with
 * errno. */
int vip_addr_del(const char *ifname, struct in_addr addr, int prefix);

#endif
