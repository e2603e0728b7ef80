#include "resource/vip.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <libmnl/libmnl.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <netinet/if_ether.h>
#include <netpacket/packet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"

/* The kernel answers rtnetlink at once; the bound only guards against a
 * wedged kernel so the loop can never hang on it. */
#define NL_TIMEOUT_MS 1000
/* Large enough for one message of an address dump. */
#define NL_DUMP_BUF 32768
/* RFC 5227 PROBE_NUM. */
#define PROBE_COUNT 3
/* Packets read per wakeup, so a flood of ARP cannot starve the loop. */
#define PROBE_READ_MAX 64

struct vip {
	struct event_base *base;
	struct vip_opts o;
	char ifname[IFNAMSIZ];
	char desc[64];

	/* probe: active while probe_cb is set */
	vip_probe_cb probe_cb;
	void *probe_arg;
	bool probe_known_free; /* ours already, or probe_ms == 0 */
	struct event *probe_timer;
	struct event *probe_rx;
	int probe_fd;
	int probe_ifindex;
	uint8_t probe_mac[ETH_ALEN];
	unsigned probe_sent;
	uint64_t probe_start;

	/* probe ahead: in flight for nobody yet, or its "free" result */
	bool ahead_running;
	uint64_t ahead_free_ms;     /* when an ahead probe found it free; 0 = none */

	/* announcements still to send after the burst */
	struct event *garp_timer;
	uint32_t garp_left;
};

static const uint8_t zero_mac[ETH_ALEN];

const char *vip_probe_result_str(enum vip_probe_result r)
{
	switch (r) {
	case VIP_FREE: return "free";
	case VIP_IN_USE: return "in use";
	case VIP_PROBE_ERROR: return "probe error";
	}
	return "?";
}

const char *vip_describe(const struct vip *v)
{
	return v->desc;
}

static void fmt_mac(const uint8_t mac[ETH_ALEN], char buf[18])
{
	snprintf(buf, 18, "%02x:%02x:%02x:%02x:%02x:%02x",
	         mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
}

/* ---- rtnetlink ---- */

static struct mnl_socket *nl_open(void)
{
	struct mnl_socket *nl;
	struct timeval tv;
	int err;

	nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
	if (!nl)
		return NULL;
	ms_to_timeval(NL_TIMEOUT_MS, &tv);
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0 ||
	    setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0) {
		err = errno;
		mnl_socket_close(nl);
		errno = err;
		return NULL;
	}
	return nl;
}

/* Sends one request and reads until its ACK or the end of its dump.
 * 0, or -1 with errno (the kernel's error, or ETIMEDOUT). */
static int nl_talk(struct nlmsghdr *nlh, mnl_cb_t cb, void *data)
{
	struct mnl_socket *nl;
	unsigned int portid, seq;
	uint64_t deadline;
	char *buf;
	int ret, err = 0;

	buf = malloc(NL_DUMP_BUF);
	if (!buf)
		return -1;
	nl = nl_open();
	if (!nl) {
		err = errno;
		goto out_buf;
	}
	portid = mnl_socket_get_portid(nl);
	seq = nlh->nlmsg_seq = (unsigned int)mono_ms();
	deadline = mono_ms() + NL_TIMEOUT_MS;
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) {
		err = errno;
		goto out;
	}
	for (;;) {
		ssize_t n = mnl_socket_recvfrom(nl, buf, NL_DUMP_BUF);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			err = (errno == EAGAIN || errno == EWOULDBLOCK) ? ETIMEDOUT : errno;
			break;
		}
		ret = mnl_cb_run(buf, (size_t)n, seq, portid, cb, data);
		if (ret < 0) {
			err = errno;
			break;
		}
		if (ret == MNL_CB_STOP)
			break;
		/* A dump that keeps coming must still end in bounded time. */
		if (mono_ms() > deadline) {
			err = ETIMEDOUT;
			break;
		}
	}
out:
	mnl_socket_close(nl);
out_buf:
	free(buf);
	errno = err;
	return err ? -1 : 0;
}

static struct nlmsghdr *addr_msg(char *req, uint16_t type, uint16_t flags, int ifindex, struct in_addr addr,
                                 int prefix)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(req);
	struct ifaddrmsg *ifa;
	uint32_t a = addr.s_addr;

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
	ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	ifa->ifa_family = AF_INET;
	ifa->ifa_prefixlen = (unsigned char)prefix;
	ifa->ifa_scope = RT_SCOPE_UNIVERSE;
	ifa->ifa_index = (unsigned int)ifindex;
	mnl_attr_put_u32(nlh, IFA_LOCAL, a);
	/* With the prefix, a delete matches exactly our address/prefix and
	 * never a same-IP address someone configured with another mask. */
	mnl_attr_put_u32(nlh, IFA_ADDRESS, a);
	if (type == RTM_NEWADDR && prefix <= 30) {
		uint32_t mask = htonl(~0u << (32 - prefix));

		mnl_attr_put_u32(nlh, IFA_BROADCAST, a | ~mask);
	}
	return nlh;
}

struct present_ctx {
	int ifindex;
	uint32_t addr;
	int found;
};

static int present_attr_cb(const struct nlattr *attr, void *data)
{
	const struct nlattr **tb = data;
	int type = mnl_attr_get_type(attr);

	if (mnl_attr_type_valid(attr, IFA_MAX) < 0)
		return MNL_CB_OK;
	if ((type == IFA_LOCAL || type == IFA_ADDRESS) &&
	    mnl_attr_validate(attr, MNL_TYPE_U32) < 0)
		return MNL_CB_OK;
	tb[type] = attr;
	return MNL_CB_OK;
}

static int present_cb(const struct nlmsghdr *nlh, void *data)
{
	struct present_ctx *c = data;
	const struct nlattr *tb[IFA_MAX + 1] = { 0 };
	const struct ifaddrmsg *ifa;
	const struct nlattr *a;

	if (nlh->nlmsg_type != RTM_NEWADDR || nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*ifa)))
		return MNL_CB_OK;
	ifa = mnl_nlmsg_get_payload(nlh);
	if (ifa->ifa_family != AF_INET || (int)ifa->ifa_index != c->ifindex)
		return MNL_CB_OK;
	mnl_attr_parse(nlh, sizeof(*ifa), present_attr_cb, tb);
	/* IFA_LOCAL is our end; IFA_ADDRESS differs only on point-to-point. */
	a = tb[IFA_LOCAL] ? tb[IFA_LOCAL] : tb[IFA_ADDRESS];
	if (a && mnl_attr_get_u32(a) == c->addr)
		c->found = 1;
	return MNL_CB_OK;
}

static int ifindex_of(const struct vip *v, const char *doing)
{
	unsigned int idx = if_nametoindex(v->ifname);

	if (!idx)
		log_error("vip %s: cannot %s: interface %s: %s", v->desc, doing, v->ifname,
		          errno == ENODEV ? "no such interface" : strerror(errno));
	return (int)idx;
}

/* Matches the address on the interface whatever its prefix length: for
 * "is it ours" that is what counts. */
int vip_present(struct vip *v)
{
	char req[256];
	struct nlmsghdr *nlh;
	struct rtgenmsg *g;
	struct present_ctx c = { .addr = v->o.addr.s_addr };
	int tries;

	c.ifindex = ifindex_of(v, "check address");
	if (!c.ifindex)
		return -1;
	/* A dump interrupted by a concurrent change is retried. */
	for (tries = 0; tries < 3; tries++) {
		nlh = mnl_nlmsg_put_header(req);
		nlh->nlmsg_type = RTM_GETADDR;
		nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
		g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
		g->rtgen_family = AF_INET;
		c.found = 0;
		if (nl_talk(nlh, present_cb, &c) == 0)
			return c.found;
		if (errno != EINTR)
			break;
	}
	log_error("vip %s: cannot list addresses: %s", v->desc, strerror(errno));
	return -1;
}

/* ---- ARP ---- */

static int arp_socket(uint16_t proto)
{
	return socket(AF_PACKET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, proto);
}

static int if_hwaddr(const struct vip *v, int fd, uint8_t mac[ETH_ALEN])
{
	struct ifreq ifr;

	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, v->ifname, strlen(v->ifname) + 1);
	if (ioctl(fd, SIOCGIFHWADDR, &ifr) < 0) {
		log_error("vip %s: cannot read hardware address of %s: %s", v->desc, v->ifname,
		          strerror(errno));
		return -1;
	}
	if (ifr.ifr_hwaddr.sa_family != ARPHRD_ETHER) {
		log_error("vip %s: %s is not an Ethernet interface (hardware type %d): no ARP",
		          v->desc, v->ifname, ifr.ifr_hwaddr.sa_family);
		errno = EAFNOSUPPORT;
		return -1;
	}
	memcpy(mac, ifr.ifr_hwaddr.sa_data, ETH_ALEN);
	return 0;
}

/* Broadcast ARP; the kernel builds the Ethernet header (SOCK_DGRAM). */
static int arp_send(int fd, int ifindex, uint16_t op, const uint8_t sha[ETH_ALEN], uint32_t spa,
                    const uint8_t tha[ETH_ALEN], uint32_t tpa)
{
	struct ether_arp a;
	struct sockaddr_ll to;

	memset(&a, 0, sizeof(a));
	a.arp_hrd = htons(ARPHRD_ETHER);
	a.arp_pro = htons(ETH_P_IP);
	a.arp_hln = ETH_ALEN;
	a.arp_pln = 4;
	a.arp_op = htons(op);
	memcpy(a.arp_sha, sha, ETH_ALEN);
	memcpy(a.arp_spa, &spa, 4);
	memcpy(a.arp_tha, tha, ETH_ALEN);
	memcpy(a.arp_tpa, &tpa, 4);

	memset(&to, 0, sizeof(to));
	to.sll_family = AF_PACKET;
	to.sll_protocol = htons(ETH_P_ARP);
	to.sll_ifindex = ifindex;
	to.sll_halen = ETH_ALEN;
	memset(to.sll_addr, 0xff, ETH_ALEN);
	if (sendto(fd, &a, sizeof(a), MSG_DONTWAIT, (struct sockaddr *)&to, sizeof(to)) !=
	    (ssize_t)sizeof(a))
		return -1;
	return 0;
}

/* ---- probe ---- */

static void probe_stop(struct vip *v)
{
	if (v->probe_rx) {
		event_free(v->probe_rx);
		v->probe_rx = NULL;
	}
	if (v->probe_fd >= 0) {
		close(v->probe_fd);
		v->probe_fd = -1;
	}
	evtimer_del(v->probe_timer);
	v->probe_cb = NULL;
	v->probe_arg = NULL;
	v->probe_known_free = false;
	v->ahead_running = false;
}

/* Last thing a caller does: cb may free v. */
static void probe_finish(struct vip *v, enum vip_probe_result r, const uint8_t *mac)
{
	vip_probe_cb cb = v->probe_cb;
	void *arg = v->probe_arg;
	uint8_t m[ETH_ALEN] = { 0 };
	char ms[18];

	if (mac)
		memcpy(m, mac, ETH_ALEN);
	if (r == VIP_IN_USE) {
		fmt_mac(m, ms);
		log_warn("vip %s: in use by %s", v->desc, ms);
	} else {
		log_debug("vip %s: probe: %s", v->desc, vip_probe_result_str(r));
	}
	probe_stop(v);
	cb(r, m, arg);
}

/* Someone else claims the address: any ARP, request or reply, sent from
 * it by another hardware address. */
static bool arp_conflict(const struct vip *v, const struct ether_arp *a, ssize_t n,
                         const struct sockaddr_ll *from)
{
	if (n < (ssize_t)sizeof(*a) || from->sll_pkttype == PACKET_OUTGOING ||
	    from->sll_ifindex != v->probe_ifindex)
		return false;
	if (ntohs(a->arp_hrd) != ARPHRD_ETHER || ntohs(a->arp_pro) != ETH_P_IP ||
	    a->arp_hln != ETH_ALEN || a->arp_pln != 4)
		return false;
	if (ntohs(a->arp_op) != ARPOP_REQUEST && ntohs(a->arp_op) != ARPOP_REPLY)
		return false;
	return memcmp(a->arp_spa, &v->o.addr.s_addr, 4) == 0 &&
	       memcmp(a->arp_sha, v->probe_mac, ETH_ALEN) != 0;
}

/* Reads what is queued; true if that ended the probe (v may be gone). */
static bool probe_read(struct vip *v)
{
	int i;

	for (i = 0; i < PROBE_READ_MAX; i++) {
		struct ether_arp a;
		struct sockaddr_ll from;
		socklen_t flen = sizeof(from);
		ssize_t n;

		memset(&from, 0, sizeof(from));
		n = recvfrom(v->probe_fd, &a, sizeof(a), 0, (struct sockaddr *)&from, &flen);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return false;
			/* e.g. ENETDOWN: the interface went down under us. */
			log_error("vip %s: probe: receive on %s: %s", v->desc, v->ifname,
			          strerror(errno));
			probe_finish(v, VIP_PROBE_ERROR, NULL);
			return true;
		}
		if (arp_conflict(v, &a, n, &from)) {
			probe_finish(v, VIP_IN_USE, a.arp_sha);
			return true;
		}
	}
	return false;
}

static void probe_rx_cb(evutil_socket_t fd, short what, void *arg)
{
	probe_read(arg);
}

/* Probes go out over the first half of the window (0, 1/4, 1/2) so late
 * answers to the last one still arrive inside it. */
static uint64_t probe_offset(const struct vip *v, unsigned i)
{
	return (uint64_t)v->o.probe_ms * i / (2 * (PROBE_COUNT - 1));
}

static void probe_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct vip *v = arg;
	uint64_t elapsed, next;
	struct timeval tv;

	if (v->probe_known_free) {
		probe_finish(v, VIP_FREE, NULL);
		return;
	}
	elapsed = mono_ms() - v->probe_start;
	while (v->probe_sent < PROBE_COUNT && elapsed >= probe_offset(v, v->probe_sent)) {
		/* RFC 5227 probe: sender IP 0 so no one's cache learns from it. */
		if (arp_send(v->probe_fd, v->probe_ifindex, ARPOP_REQUEST, v->probe_mac, 0,
		             zero_mac, v->o.addr.s_addr) < 0) {
			log_error("vip %s: probe: send on %s: %s", v->desc, v->ifname,
			          strerror(errno));
			probe_finish(v, VIP_PROBE_ERROR, NULL);
			return;
		}
		v->probe_sent++;
	}
	next = v->probe_sent < PROBE_COUNT ? probe_offset(v, v->probe_sent) : v->o.probe_ms;
	if (elapsed >= next) {
		/* An answer may be queued behind this timer in the same round. */
		if (probe_read(v))
			return;
		probe_finish(v, VIP_FREE, NULL);
		return;
	}
	ms_to_timeval(next - elapsed, &tv);
	evtimer_add(v->probe_timer, &tv);
}

void vip_probe_cancel(struct vip *v)
{
	probe_stop(v);
}

/* Setup failures (no such interface, no socket) return -1 and cb is not
 * called; failures once probing report VIP_PROBE_ERROR through cb. */
static int probe_start(struct vip *v, vip_probe_cb cb, void *arg);

static void ahead_done(enum vip_probe_result r, const uint8_t mac[6], void *arg)
{
	struct vip *v = arg;

	v->ahead_free_ms = r == VIP_FREE ? mono_ms() : 0;
}

int vip_probe_ahead(struct vip *v)
{
	if (v->probe_cb)
		return 0;
	v->ahead_free_ms = 0;
	if (probe_start(v, ahead_done, v) < 0)
		return -1;
	v->ahead_running = true;
	log_debug("vip %s: probing ahead", v->desc);
	return 0;
}

int vip_probe(struct vip *v, vip_probe_cb cb, void *arg)
{
	static const struct timeval now = { 0, 0 };

	if (!cb) {
		log_error("vip %s: probe without a callback", v->desc);
		return -1;
	}
	if (v->ahead_running) {
		/* Join the probe in flight: it reports to us when its window ends. */
		v->ahead_running = false;
		v->probe_cb = cb;
		v->probe_arg = arg;
		log_debug("vip %s: joining the probe started ahead", v->desc);
		return 0;
	}
	if (v->ahead_free_ms && mono_ms() - v->ahead_free_ms <= v->o.probe_ms + 100) {
		v->ahead_free_ms = 0;
		probe_stop(v);
		v->probe_known_free = true;
		if (evtimer_add(v->probe_timer, &now) < 0) {
			log_error("vip %s: probe: cannot arm timer", v->desc);
			probe_stop(v);
			return -1;
		}
		v->probe_cb = cb;
		v->probe_arg = arg;
		log_debug("vip %s: free, as the probe made ahead found", v->desc);
		return 0;
	}
	v->ahead_free_ms = 0;
	return probe_start(v, cb, arg);
}

static int probe_start(struct vip *v, vip_probe_cb cb, void *arg)
{
	static const struct timeval now = { 0, 0 };
	struct sockaddr_ll sll;
	int present = 0;

	probe_stop(v);
	if (v->o.probe_ms > 0) {
		present = vip_present(v);
		if (present < 0)
			return -1;
		if (present)
			log_debug("vip %s: already on %s: not probing", v->desc, v->ifname);
	}
	if (v->o.probe_ms == 0 || present) {
		v->probe_known_free = true;
		goto armed;
	}

	v->probe_ifindex = ifindex_of(v, "probe");
	if (!v->probe_ifindex)
		return -1;
	v->probe_fd = arp_socket(htons(ETH_P_ARP));
	if (v->probe_fd < 0) {
		log_error("vip %s: probe: ARP socket: %s", v->desc, strerror(errno));
		return -1;
	}
	memset(&sll, 0, sizeof(sll));
	sll.sll_family = AF_PACKET;
	sll.sll_protocol = htons(ETH_P_ARP);
	sll.sll_ifindex = v->probe_ifindex;
	if (bind(v->probe_fd, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
		log_error("vip %s: probe: bind to %s: %s", v->desc, v->ifname, strerror(errno));
		goto fail;
	}
	if (if_hwaddr(v, v->probe_fd, v->probe_mac) < 0)
		goto fail;
	v->probe_rx = event_new(v->base, v->probe_fd, EV_READ | EV_PERSIST, probe_rx_cb, v);
	if (!v->probe_rx || event_add(v->probe_rx, NULL) < 0) {
		log_error("vip %s: probe: cannot watch ARP socket", v->desc);
		goto fail;
	}
	v->probe_sent = 0;
	v->probe_start = mono_ms();
armed:
	/* The first step runs from the loop: cb never runs inside vip_probe. */
	if (evtimer_add(v->probe_timer, &now) < 0) {
		log_error("vip %s: probe: cannot arm timer", v->desc);
		goto fail;
	}
	v->probe_cb = cb;
	v->probe_arg = arg;
	return 0;
fail:
	probe_stop(v);
	return -1;
}

/* ---- announcements ---- */

/* Each announcement is a gratuitous request (RFC 5227 announcement) and a
 * gratuitous reply: some hosts and switches update only on one of them. */
static int announce(struct vip *v, uint32_t count)
{
	uint8_t mac[ETH_ALEN];
	uint32_t a = v->o.addr.s_addr, i;
	int ifindex, fd, ret = 0;

	ifindex = (int)if_nametoindex(v->ifname);
	if (!ifindex) {
		log_warn("vip %s: cannot announce: interface %s: %s", v->desc, v->ifname,
		         strerror(errno));
		return -1;
	}
	/* Protocol 0: send only, nothing queued for reading. */
	fd = arp_socket(0);
	if (fd < 0) {
		log_warn("vip %s: cannot announce: ARP socket: %s", v->desc, strerror(errno));
		return -1;
	}
	if (if_hwaddr(v, fd, mac) < 0) {
		close(fd);
		return -1;
	}
	for (i = 0; i < count && ret == 0; i++) {
		if (arp_send(fd, ifindex, ARPOP_REQUEST, mac, a, zero_mac, a) < 0 ||
		    arp_send(fd, ifindex, ARPOP_REPLY, mac, a, mac, a) < 0) {
			log_warn("vip %s: gratuitous ARP on %s: %s", v->desc, v->ifname,
			         strerror(errno));
			ret = -1;
		}
	}
	close(fd);
	return ret;
}

static void garp_arm(struct vip *v)
{
	struct timeval tv;

	ms_to_timeval(v->o.garp_interval_ms, &tv);
	if (evtimer_add(v->garp_timer, &tv) < 0)
		log_warn("vip %s: cannot arm announcement timer", v->desc);
}

static void garp_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct vip *v = arg;

	if (!v->garp_left)
		return;
	v->garp_left--;
	/* A failure is logged; the next repeat may find the link back. */
	announce(v, 1);
	if (v->garp_left)
		garp_arm(v);
}

static void garp_stop(struct vip *v)
{
	evtimer_del(v->garp_timer);
	v->garp_left = 0;
}

/* ---- add / del ---- */

int vip_add(struct vip *v)
{
	char req[256];
	struct nlmsghdr *nlh;
	int ifindex;

	garp_stop(v);
	ifindex = ifindex_of(v, "add address");
	if (!ifindex)
		return -1;
	nlh = addr_msg(req, RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE, ifindex, v->o.addr, v->o.prefix);
	if (nl_talk(nlh, NULL, NULL) < 0 && errno != EEXIST) {
		log_error("vip %s: cannot add address: %s", v->desc, strerror(errno));
		return -1;
	}
	log_info("vip %s: address added", v->desc);
	/* The address is up; failed announcements only delay the switchover. */
	announce(v, v->o.garp_burst);
	v->garp_left = v->o.garp_repeats;
	if (v->garp_left)
		garp_arm(v);
	return 0;
}

/* 1 removed, 0 it was not there, -1 with errno. */
static int addr_del(int ifindex, struct in_addr addr, int prefix)
{
	char req[256];

	if (nl_talk(addr_msg(req, RTM_DELADDR, 0, ifindex, addr, prefix), NULL, NULL) == 0)
		return 1;
	/* EADDRNOTAVAIL: not there; ENODEV: no IPv4 on the interface. */
	return errno == EADDRNOTAVAIL || errno == ENODEV ? 0 : -1;
}

int vip_del(struct vip *v)
{
	int ifindex;

	garp_stop(v);
	ifindex = (int)if_nametoindex(v->ifname);
	if (!ifindex) {
		if (errno == ENODEV) {
			log_info("vip %s: interface %s is gone, so is the address", v->desc, v->ifname);
			return 0;
		}
		log_error("vip %s: cannot remove address: interface %s: %s", v->desc, v->ifname,
		          strerror(errno));
		return -1;
	}
	switch (addr_del(ifindex, v->o.addr, v->o.prefix)) {
	case 0:
		log_debug("vip %s: address already absent", v->desc);
		return 0;
	case 1:
		log_info("vip %s: address removed", v->desc);
		return 0;
	default:
		log_error("vip %s: cannot remove address: %s", v->desc, strerror(errno));
		return -1;
	}
}

int vip_addr_del(const char *ifname, struct in_addr addr, int prefix)
{
	int ifindex = (int)if_nametoindex(ifname);

	if (!ifindex)
		return errno == ENODEV ? 0 : -1;
	return addr_del(ifindex, addr, prefix);
}

/* ---- life cycle ---- */

static int check_opts(const struct vip_opts *o)
{
	uint32_t h;

	if (!o->ifname || !o->ifname[0]) {
		log_error("vip: no interface given");
		return -1;
	}
	if (strlen(o->ifname) >= IFNAMSIZ || strchr(o->ifname, '/') || strchr(o->ifname, ' ')) {
		log_error("vip: interface name '%s' is not valid (at most %d characters, no '/' or space)",
		          o->ifname, IFNAMSIZ - 1);
		return -1;
	}
	if (o->prefix < 1 || o->prefix > 32) {
		log_error("vip: prefix length %d out of range 1..32", o->prefix);
		return -1;
	}
	h = ntohl(o->addr.s_addr);
	if (h == 0 || h == 0xffffffffu || (h >> 28) == 0xe || (h >> 24) == 127) {
		char a[INET_ADDRSTRLEN];

		inet_ntop(AF_INET, &o->addr, a, sizeof(a));
		log_error("vip: address %s cannot be a virtual IP (unspecified, broadcast, multicast or loopback)",
		          a);
		return -1;
	}
	if (o->garp_burst < 1) {
		log_error("vip: garp_burst must be at least 1");
		return -1;
	}
	return 0;
}

struct vip *vip_new(struct event_base *base, const struct vip_opts *opts)
{
	char a[INET_ADDRSTRLEN];
	struct vip *v;

	if (!base || !opts) {
		log_error("vip: no event base or options");
		return NULL;
	}
	if (check_opts(opts) < 0)
		return NULL;
	v = calloc(1, sizeof(*v));
	if (!v) {
		log_error("vip: out of memory");
		return NULL;
	}
	v->base = base;
	v->o = *opts;
	memcpy(v->ifname, opts->ifname, strlen(opts->ifname) + 1);
	v->o.ifname = v->ifname;
	v->probe_fd = -1;
	inet_ntop(AF_INET, &opts->addr, a, sizeof(a));
	snprintf(v->desc, sizeof(v->desc), "%s/%d on %s", a, opts->prefix, v->ifname);
	v->probe_timer = evtimer_new(base, probe_timer_cb, v);
	v->garp_timer = evtimer_new(base, garp_timer_cb, v);
	if (!v->probe_timer || !v->garp_timer) {
		log_error("vip %s: cannot create timers", v->desc);
		vip_free(v);
		return NULL;
	}
	return v;
}

/* Leaves the address as it is: whether it stays is the caller's call. */
void vip_free(struct vip *v)
{
	if (!v)
		return;
	if (v->probe_timer)
		probe_stop(v);
	if (v->garp_timer)
		garp_stop(v);
	if (v->probe_timer)
		event_free(v->probe_timer);
	if (v->garp_timer)
		event_free(v->garp_timer);
	free(v);
}
