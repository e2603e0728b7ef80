/* vip: rtnetlink add/del/present, ARP probe and gratuitous ARP.
 *
 * Runs as root in a private network namespace (unshare) that dies with the
 * test: veth pair vt0 (ours) / vt1. vt1 lives in the namespace of a child
 * process (also unnamed, gone when the child exits) and holds PEER_ADDR, so
 * the kernel there answers our probes for it like another host would. */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <netinet/if_ether.h>
#include <netpacket/packet.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

#include "common/log.h"
#include "common/util.h"
#include "resource/vip.h"

#define OUR_IF "vt0"
#define PEER_IF "vt1"
#define PEER_ADDR "10.77.0.100"

static struct event_base *base;
static pid_t peer_pid = -1;
static int peer_pipe = -1; /* closing it makes the peer exit */
static uint8_t our_mac[ETH_ALEN], peer_mac[ETH_ALEN];

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[512];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int get_mac(const char *ifname, uint8_t mac[ETH_ALEN])
{
	struct ifreq ifr;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int ret;

	if (fd < 0)
		return -1;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	ret = ioctl(fd, SIOCGIFHWADDR, &ifr);
	close(fd);
	if (ret < 0)
		return -1;
	memcpy(mac, ifr.ifr_hwaddr.sa_data, ETH_ALEN);
	return 0;
}

/* The peer: its own network namespace holding vt1 with PEER_ADDR. */
static void peer_main(int rd, int wr)
{
	char c;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (unshare(CLONE_NEWNET) < 0)
		_exit(1);
	c = 'u';
	if (write(wr, &c, 1) != 1 || read(rd, &c, 1) != 1)
		_exit(1);
	c = (sh("ip link set lo up && ip link set " PEER_IF " up && "
	        "ip addr add " PEER_ADDR "/24 dev " PEER_IF) == 0) ? 'r' : 'f';
	if (write(wr, &c, 1) != 1)
		_exit(1);
	while (read(rd, &c, 1) > 0)
		;
	_exit(0);
}

static int start_peer(void)
{
	int down[2], up[2];
	char c = 0;

	if (pipe2(down, O_CLOEXEC) < 0 || pipe2(up, O_CLOEXEC) < 0)
		return -1;
	peer_pid = fork();
	if (peer_pid < 0)
		return -1;
	if (peer_pid == 0) {
		close(down[1]);
		close(up[0]);
		peer_main(down[0], up[1]);
	}
	close(down[0]);
	close(up[1]);
	peer_pipe = down[1];
	if (read(up[0], &c, 1) != 1 || c != 'u')
		goto fail;
	if (sh("ip link set " PEER_IF " netns %d", (int)peer_pid) != 0)
		goto fail;
	c = 'g';
	if (write(peer_pipe, &c, 1) != 1 || read(up[0], &c, 1) != 1 || c != 'r')
		goto fail;
	close(up[0]);
	return 0;
fail:
	close(up[0]);
	return -1;
}

static int group_setup(void **state)
{
	log_init("test_vip", true, LOG_LVL_DEBUG);
	if (unshare(CLONE_NEWNET) < 0) {
		fprintf(stderr, "unshare(CLONE_NEWNET): %s (needs root)\n", strerror(errno));
		return -1;
	}
	if (sh("ip link set lo up && ip link add " OUR_IF " type veth peer name " PEER_IF) != 0)
		return -1;
	if (get_mac(OUR_IF, our_mac) < 0 || get_mac(PEER_IF, peer_mac) < 0)
		return -1;
	if (start_peer() < 0)
		return -1;
	if (sh("ip link set " OUR_IF " up") != 0)
		return -1;
	base = event_base_new();
	return base ? 0 : -1;
}

static int group_teardown(void **state)
{
	if (peer_pipe >= 0)
		close(peer_pipe);
	if (peer_pid > 0) {
		int st;

		if (waitpid(peer_pid, &st, 0) < 0)
			kill(peer_pid, SIGKILL);
	}
	if (base)
		event_base_free(base);
	return 0;
}

static void timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	event_base_loopbreak(arg);
}

/* Runs the loop for at most ms (less if something breaks it). */
static void run_loop(uint32_t ms)
{
	struct event *t = evtimer_new(base, timeout_cb, base);
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	assert_non_null(t);
	evtimer_add(t, &tv);
	event_base_dispatch(base);
	event_free(t);
}

static struct vip_opts opts_for(const char *ifname, const char *addr, int prefix, uint32_t probe_ms)
{
	struct vip_opts o = {
		.ifname = ifname, .prefix = prefix, .probe_ms = probe_ms,
		.garp_burst = 1, .garp_repeats = 0, .garp_interval_ms = 100,
	};

	inet_pton(AF_INET, addr, &o.addr);
	return o;
}

static struct vip *new_vip(const char *ifname, const char *addr, int prefix, uint32_t probe_ms)
{
	struct vip_opts o = opts_for(ifname, addr, prefix, probe_ms);
	struct vip *v = vip_new(base, &o);

	assert_non_null(v);
	return v;
}

struct probe_rec {
	int calls;
	enum vip_probe_result r;
	uint8_t mac[ETH_ALEN];
	uint64_t at;
	struct vip *free_me; /* freed from inside the callback */
};

static void probe_cb(enum vip_probe_result r, const uint8_t mac[6], void *arg)
{
	struct probe_rec *p = arg;

	p->calls++;
	p->r = r;
	assert_non_null(mac);
	memcpy(p->mac, mac, ETH_ALEN);
	p->at = mono_ms();
	if (p->free_me)
		vip_free(p->free_me);
	event_base_loopbreak(base);
}

static void test_result_str(void **state)
{
	assert_string_equal(vip_probe_result_str(VIP_FREE), "free");
	assert_string_equal(vip_probe_result_str(VIP_IN_USE), "in use");
	assert_string_equal(vip_probe_result_str(VIP_PROBE_ERROR), "probe error");
	assert_string_equal(vip_probe_result_str((enum vip_probe_result)42), "?");
}

static void test_bad_opts(void **state)
{
	struct vip_opts o;

	assert_null(vip_new(base, NULL));
	o = opts_for(OUR_IF, "10.77.1.1", 24, 0);
	assert_null(vip_new(NULL, &o));
	o = opts_for(NULL, "10.77.1.1", 24, 0);
	assert_null(vip_new(base, &o));
	o = opts_for("", "10.77.1.1", 24, 0);
	assert_null(vip_new(base, &o));
	o = opts_for("averyveryverylongname0", "10.77.1.1", 24, 0);
	assert_null(vip_new(base, &o));
	o = opts_for("a/b", "10.77.1.1", 24, 0);
	assert_null(vip_new(base, &o));
	o = opts_for(OUR_IF, "10.77.1.1", 0, 0);
	assert_null(vip_new(base, &o));
	o = opts_for(OUR_IF, "10.77.1.1", 33, 0);
	assert_null(vip_new(base, &o));
	o = opts_for(OUR_IF, "0.0.0.0", 24, 0);
	assert_null(vip_new(base, &o));
	o = opts_for(OUR_IF, "255.255.255.255", 24, 0);
	assert_null(vip_new(base, &o));
	o = opts_for(OUR_IF, "224.0.0.5", 24, 0);
	assert_null(vip_new(base, &o));
	o = opts_for(OUR_IF, "127.0.0.2", 8, 0);
	assert_null(vip_new(base, &o));
	o = opts_for(OUR_IF, "10.77.1.1", 24, 0);
	o.garp_burst = 0;
	assert_null(vip_new(base, &o));
	vip_free(NULL);
}

static void test_describe(void **state)
{
	struct vip *v = new_vip(OUR_IF, "10.77.0.100", 24, 0);
	struct vip *w = new_vip("eth0", "192.168.1.7", 32, 0);

	assert_string_equal(vip_describe(v), "10.77.0.100/24 on vt0");
	assert_string_equal(vip_describe(w), "192.168.1.7/32 on eth0");
	vip_free(v);
	vip_free(w);
}

static bool ip_shows(const char *addr_prefix)
{
	return sh("ip -4 -o addr show dev " OUR_IF " | grep -q 'inet %s '", addr_prefix) == 0;
}

static void test_add_del(void **state)
{
	struct vip *v = new_vip(OUR_IF, "10.77.1.5", 24, 0);

	assert_int_equal(vip_present(v), 0);
	assert_int_equal(vip_add(v), 0);
	assert_int_equal(vip_present(v), 1);
	assert_true(ip_shows("10.77.1.5/24"));
	assert_int_equal(vip_add(v), 0);
	assert_int_equal(vip_present(v), 1);
	assert_int_equal(vip_del(v), 0);
	assert_int_equal(vip_present(v), 0);
	assert_false(ip_shows("10.77.1.5/24"));
	assert_int_equal(vip_del(v), 0);
	assert_int_equal(vip_present(v), 0);
	vip_free(v);
}

/* Same IP with another prefix configured by someone else: present (it is
 * ours), but our delete leaves their address alone. */
static void test_other_prefix(void **state)
{
	struct vip *v = new_vip(OUR_IF, "10.77.1.9", 24, 0);

	assert_int_equal(sh("ip addr add 10.77.1.9/32 dev " OUR_IF), 0);
	assert_int_equal(vip_present(v), 1);
	assert_int_equal(vip_del(v), 0);
	assert_true(ip_shows("10.77.1.9/32"));
	assert_int_equal(sh("ip addr del 10.77.1.9/32 dev " OUR_IF), 0);
	assert_int_equal(vip_present(v), 0);
	vip_free(v);
}

static void test_bad_ifname(void **state)
{
	struct vip *v = new_vip("nosuch0", "10.77.1.6", 24, 200);
	struct probe_rec p = { 0 };

	assert_int_equal(vip_present(v), -1);
	assert_int_equal(vip_add(v), -1);
	/* no interface, so no address on it */
	assert_int_equal(vip_del(v), 0);
	assert_int_equal(vip_probe(v, probe_cb, &p), -1);
	run_loop(300);
	assert_int_equal(p.calls, 0);
	vip_free(v);
}


static void test_probe_in_use(void **state)
{
	struct vip *v = new_vip(OUR_IF, PEER_ADDR, 24, 1000);
	struct probe_rec p = { 0 };
	uint64_t t0 = mono_ms();

	assert_int_equal(vip_probe(v, probe_cb, &p), 0);
	assert_int_equal(p.calls, 0);
	run_loop(3000);
	assert_int_equal(p.calls, 1);
	assert_int_equal(p.r, VIP_IN_USE);
	assert_memory_equal(p.mac, peer_mac, ETH_ALEN);
	/* The answer ends the probe; no need to sit out the window. */
	assert_true(p.at - t0 < 900);
	vip_free(v);
}

/* probe_ms 0: no probe, FREE from the loop even for an address in use. */
static void test_probe_zero(void **state)
{
	struct vip *v = new_vip(OUR_IF, PEER_ADDR, 24, 0);
	struct probe_rec p = { 0 };

	assert_int_equal(vip_probe(v, probe_cb, &p), 0);
	assert_int_equal(p.calls, 0);
	run_loop(1000);
	assert_int_equal(p.calls, 1);
	assert_int_equal(p.r, VIP_FREE);
	vip_free(v);
}

static void test_probe_ours(void **state)
{
	struct vip *v = new_vip(OUR_IF, "10.77.1.7", 24, 5000);
	struct probe_rec p = { 0 };
	uint64_t t0;

	assert_int_equal(vip_add(v), 0);
	t0 = mono_ms();
	assert_int_equal(vip_probe(v, probe_cb, &p), 0);
	assert_int_equal(p.calls, 0);
	run_loop(6000);
	assert_int_equal(p.calls, 1);
	assert_int_equal(p.r, VIP_FREE);
	assert_true(p.at - t0 < 1000);
	assert_int_equal(vip_del(v), 0);
	vip_free(v);
}

static void test_probe_cancel(void **state)
{
	struct vip *v = new_vip(OUR_IF, PEER_ADDR, 24, 300);
	struct probe_rec a = { 0 }, b = { 0 };

	assert_int_equal(vip_probe(v, probe_cb, &a), 0);
	vip_probe_cancel(v);
	run_loop(500);
	assert_int_equal(a.calls, 0);

	/* A new probe replaces a pending one; only the new one reports. */
	assert_int_equal(vip_probe(v, probe_cb, &a), 0);
	assert_int_equal(vip_probe(v, probe_cb, &b), 0);
	run_loop(2000);
	run_loop(100);
	assert_int_equal(a.calls, 0);
	assert_int_equal(b.calls, 1);
	assert_int_equal(b.r, VIP_IN_USE);
	vip_probe_cancel(v); /* nothing pending: harmless */
	vip_free(v);
}

/* The callback may free the vip (ASan checks nothing touches it after). */
static void test_free_in_cb(void **state)
{
	struct vip *v = new_vip(OUR_IF, PEER_ADDR, 24, 500);
	struct vip *w = new_vip(OUR_IF, "10.77.0.201", 24, 100);
	struct probe_rec p = { .free_me = v }, q = { .free_me = w };

	assert_int_equal(vip_probe(v, probe_cb, &p), 0);
	run_loop(2000);
	assert_int_equal(p.calls, 1);
	assert_int_equal(p.r, VIP_IN_USE);
	assert_int_equal(vip_probe(w, probe_cb, &q), 0);
	run_loop(2000);
	assert_int_equal(q.calls, 1);
	assert_int_equal(q.r, VIP_FREE);
}

/* Captures our own outgoing ARP for addr on vt0, by kind: probes (sender
 * 0.0.0.0), gratuitous requests and replies, anything else. */
struct capture {
	int fd;
	struct event *ev;
	uint32_t addr;
	int probes, requests, replies, other;
	uint64_t first, last;
};

static void capture_cb(evutil_socket_t fd, short what, void *arg)
{
	static const uint32_t any = 0;
	struct capture *c = arg;
	struct ether_arp a;
	struct sockaddr_ll from;
	socklen_t fl = sizeof(from);
	ssize_t n;

	while ((n = recvfrom(fd, &a, sizeof(a), MSG_DONTWAIT, (struct sockaddr *)&from, &fl)) >= 0) {
		fl = sizeof(from);
		if (n < (ssize_t)sizeof(a) || from.sll_pkttype != PACKET_OUTGOING ||
		    from.sll_protocol != htons(ETH_P_ARP) || memcmp(a.arp_tpa, &c->addr, 4) != 0)
			continue;
		if (memcmp(a.arp_sha, our_mac, ETH_ALEN) != 0)
			c->other++;
		else if (memcmp(a.arp_spa, &any, 4) == 0 && ntohs(a.arp_op) == ARPOP_REQUEST)
			c->probes++;
		else if (memcmp(a.arp_spa, &c->addr, 4) != 0)
			c->other++;
		else if (ntohs(a.arp_op) == ARPOP_REQUEST)
			c->requests++;
		else if (ntohs(a.arp_op) == ARPOP_REPLY)
			c->replies++;
		else
			c->other++;
		c->last = mono_ms();
		if (!c->first)
			c->first = c->last;
	}
}

static void capture_start(struct capture *c, const char *addr)
{
	struct sockaddr_ll sll;

	memset(c, 0, sizeof(*c));
	inet_pton(AF_INET, addr, &c->addr);
	/* Only ETH_P_ALL taps see outgoing frames. */
	c->fd = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, htons(ETH_P_ALL));
	assert_true(c->fd >= 0);
	memset(&sll, 0, sizeof(sll));
	sll.sll_family = AF_PACKET;
	sll.sll_protocol = htons(ETH_P_ALL);
	sll.sll_ifindex = (int)if_nametoindex(OUR_IF);
	assert_int_equal(bind(c->fd, (struct sockaddr *)&sll, sizeof(sll)), 0);
	c->ev = event_new(base, c->fd, EV_READ | EV_PERSIST, capture_cb, c);
	assert_non_null(c->ev);
	event_add(c->ev, NULL);
}

static void capture_stop(struct capture *c)
{
	capture_cb(c->fd, EV_READ, c);
	event_free(c->ev);
	close(c->fd);
}

static void test_garp(void **state)
{
	struct vip_opts o = opts_for(OUR_IF, "10.77.1.8", 24, 0);
	struct capture c;
	struct vip *v;
	uint64_t t0;

	o.garp_burst = 2;
	o.garp_repeats = 3;
	o.garp_interval_ms = 60;
	v = vip_new(base, &o);
	assert_non_null(v);
	capture_start(&c, "10.77.1.8");
	t0 = mono_ms();
	assert_int_equal(vip_add(v), 0);
	run_loop(500);
	capture_stop(&c);
	assert_int_equal(c.requests, 5);
	assert_int_equal(c.replies, 5);
	assert_int_equal(c.other, 0);
	assert_true(c.first - t0 < 50);
	/* three repeats, 60 ms apart */
	assert_true(c.last - t0 >= 170);
	assert_true(c.last - t0 < 450);
	assert_int_equal(vip_del(v), 0);
	vip_free(v);
}

static void test_del_stops_garp(void **state)
{
	struct vip_opts o = opts_for(OUR_IF, "10.77.1.10", 24, 0);
	struct capture c;
	struct vip *v;

	o.garp_burst = 1;
	o.garp_repeats = 5;
	o.garp_interval_ms = 80;
	v = vip_new(base, &o);
	assert_non_null(v);
	capture_start(&c, "10.77.1.10");
	assert_int_equal(vip_add(v), 0);
	assert_int_equal(vip_del(v), 0);
	run_loop(400);
	capture_stop(&c);
	assert_int_equal(c.requests, 1);
	assert_int_equal(c.replies, 1);
	assert_int_equal(vip_present(v), 0);
	vip_free(v);
}

/* Freed with announcements pending: no timer fires into freed memory. */
static void test_free_with_garp_pending(void **state)
{
	struct vip_opts o = opts_for(OUR_IF, "10.77.1.11", 24, 0);
	struct vip *v, *w;

	o.garp_repeats = 5;
	o.garp_interval_ms = 30;
	v = vip_new(base, &o);
	assert_non_null(v);
	assert_int_equal(vip_add(v), 0);
	vip_free(v);
	run_loop(200);
	w = vip_new(base, &o);
	assert_non_null(w);
	assert_int_equal(vip_present(w), 1);
	assert_int_equal(vip_del(w), 0);
	vip_free(w);
}

static void test_probe_free(void **state)
{
	struct vip *v = new_vip(OUR_IF, "10.77.0.200", 24, 400);
	struct probe_rec p = { 0 };
	struct capture c;
	uint64_t t0;

	capture_start(&c, "10.77.0.200");
	t0 = mono_ms();
	assert_int_equal(vip_probe(v, probe_cb, &p), 0);
	assert_int_equal(p.calls, 0);
	run_loop(2000);
	capture_stop(&c);
	assert_int_equal(p.calls, 1);
	assert_int_equal(p.r, VIP_FREE);
	assert_true(p.at - t0 >= 390);
	assert_true(p.at - t0 < 1500);
	/* RFC 5227 probes only, spread over the first half of the window */
	assert_int_equal(c.probes, 3);
	assert_int_equal(c.requests + c.replies + c.other, 0);
	assert_true(c.first - t0 < 50);
	assert_true(c.last - t0 >= 190);
	assert_true(c.last - t0 < 390);
	vip_free(v);
}

/* A probe made ahead: a vip_probe() during it joins it (one window, not
 * two); one soon after it takes its "free" result at once; an "in use"
 * result is never reused. */
static void test_probe_ahead(void **state)
{
	struct vip *v = new_vip(OUR_IF, "10.77.0.201", 24, 300);
	struct probe_rec p = { 0 };
	uint64_t t0 = mono_ms();

	/* Join: the answer comes when the ahead window ends. */
	assert_int_equal(vip_probe_ahead(v), 0);
	run_loop(100);
	assert_int_equal(vip_probe(v, probe_cb, &p), 0);
	run_loop(2000);
	assert_int_equal(p.calls, 1);
	assert_int_equal(p.r, VIP_FREE);
	assert_true(p.at - t0 >= 290);
	assert_true(p.at - t0 < 600);

	/* Reuse: the ahead probe finished; a probe within probe_ms + 100 ms
	 * answers from the loop at once. */
	memset(&p, 0, sizeof(p));
	assert_int_equal(vip_probe_ahead(v), 0);
	run_loop(350);
	t0 = mono_ms();
	assert_int_equal(vip_probe(v, probe_cb, &p), 0);
	assert_int_equal(p.calls, 0);
	run_loop(2000);
	assert_int_equal(p.calls, 1);
	assert_int_equal(p.r, VIP_FREE);
	assert_true(p.at - t0 < 100);

	/* Too old: probes again, a full window. */
	memset(&p, 0, sizeof(p));
	assert_int_equal(vip_probe_ahead(v), 0);
	run_loop(750);
	t0 = mono_ms();
	assert_int_equal(vip_probe(v, probe_cb, &p), 0);
	run_loop(2000);
	assert_int_equal(p.calls, 1);
	assert_true(p.at - t0 >= 290);
	vip_free(v);

	/* In use found ahead: the real probe sees it again, never "free". */
	v = new_vip(OUR_IF, PEER_ADDR, 24, 300);
	memset(&p, 0, sizeof(p));
	assert_int_equal(vip_probe_ahead(v), 0);
	run_loop(350);
	assert_int_equal(vip_probe(v, probe_cb, &p), 0);
	run_loop(2000);
	assert_int_equal(p.calls, 1);
	assert_int_equal(p.r, VIP_IN_USE);
	vip_free(v);
}

/* Interface down: the probe cannot be trusted, so it reports an error
 * (from the loop) rather than "free". */
static void test_probe_link_down(void **state)
{
	struct vip *v = new_vip(OUR_IF, "10.77.0.202", 24, 300);
	struct probe_rec p = { 0 };

	assert_int_equal(sh("ip link set " OUR_IF " down"), 0);
	assert_int_equal(vip_probe(v, probe_cb, &p), 0);
	assert_int_equal(p.calls, 0);
	run_loop(2000);
	assert_int_equal(sh("ip link set " OUR_IF " up"), 0);
	assert_int_equal(p.calls, 1);
	assert_int_equal(p.r, VIP_PROBE_ERROR);
	vip_free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_result_str),
		cmocka_unit_test(test_bad_opts),
		cmocka_unit_test(test_describe),
		cmocka_unit_test(test_add_del),
		cmocka_unit_test(test_other_prefix),
		cmocka_unit_test(test_bad_ifname),
		cmocka_unit_test(test_probe_free),
		cmocka_unit_test(test_probe_in_use),
		cmocka_unit_test(test_probe_zero),
		cmocka_unit_test(test_probe_ours),
		cmocka_unit_test(test_probe_cancel),
		cmocka_unit_test(test_free_in_cb),
		cmocka_unit_test(test_garp),
		cmocka_unit_test(test_del_stops_garp),
		cmocka_unit_test(test_free_with_garp_pending),
		cmocka_unit_test(test_probe_link_down),
		cmocka_unit_test(test_probe_ahead),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
