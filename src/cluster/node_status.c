/* Status of a node as JSON (docs/control-protocol.md). */
#include <arpa/inet.h>
#include <stdio.h>

#include "cluster/heartbeat.h"
#include "cluster/node_int.h"
#include "common/util.h"
#include "resource/resources.h"

static json_t *state_json(json_t *o, enum sm_state s)
{
	enum sm_display d;
	enum sm_color c;

	sm_display(s, &d, &c);
	json_object_set_new(o, "state", json_string(sm_display_str(d)));
	json_object_set_new(o, "color", json_string(sm_color_str(c)));
	json_object_set_new(o, "internal_state", json_string(sm_state_str(s)));
	return o;
}

json_t *node_status_self(struct node *n)
{
	json_t *o = json_object(), *res = json_array(), *nets = json_array();
	char since[32], addr[INET_ADDRSTRLEN], paddr[INET_ADDRSTRLEN];

	json_object_set_new(o, "name", json_string(n->cfg->nodes[n->self].name));
	json_object_set_new(o, "local", json_true());
	json_object_set_new(o, "reachable", json_true());
	state_json(o, n->state);
	json_object_set_new(o, "reason", json_string(n->reason));
	format_wall(n->since_ms, since, sizeof(since));
	json_object_set_new(o, "since", json_string(since));
	json_object_set_new(o, "boot", json_string(boot_mode_str(n->boot)));
	json_object_set_new(o, "failover", json_boolean(n->failover));
	json_object_set_new(o, "term", json_integer((json_int_t)n->term));
	for (int i = 0; i < resmgr_count(n->res); i++) {
		json_array_append_new(res, json_pack("{s:s, s:s}", "name", resmgr_name(n->res, i),
		                                     "state", res_state_str(resmgr_state(n->res, i))));
	}
	json_object_set_new(o, "resources", res);
	if (n->cfg->vip_enabled) {
		char cidr[INET_ADDRSTRLEN + 4];

		inet_ntop(AF_INET, &n->cfg->vip_addr, addr, sizeof(addr));
		snprintf(cidr, sizeof(cidr), "%s/%d", addr, n->cfg->vip_prefix);
		json_object_set_new(o, "vip", json_pack("{s:s, s:s, s:b}", "address", cidr, "interface",
		                                        n->cfg->vip_interface, "held", resmgr_vip_held(n->res)));
	} else {
		json_object_set_new(o, "vip", json_null());
	}
	for (int i = 0; i < n->cfg->nnets; i++) {
		inet_ntop(AF_INET, &n->cfg->nodes[n->self].addr[i], addr, sizeof(addr));
		inet_ntop(AF_INET, &n->cfg->nodes[n->peer].addr[i], paddr, sizeof(paddr));
		json_array_append_new(nets, json_pack("{s:s, s:s, s:b}", "address", addr, "peer", paddr,
		                                      "up", n->hb ? hb_net_up(n->hb, i) : 0));
	}
	json_object_set_new(o, "networks", nets);
	node_rfs_status(n, o);
	guard_status(n, o);
	if (n->split_ms) {
		format_wall(n->split_ms, since, sizeof(since));
		json_object_set_new(o, "split_brain", json_string(since));
	}
	return o;
}

json_t *node_status_peer_view(struct node *n)
{
	json_t *o = json_object();
	bool reach = n->hb && hb_peer_reachable(n->hb);

	json_object_set_new(o, "name", json_string(n->cfg->nodes[n->peer].name));
	json_object_set_new(o, "local", json_false());
	json_object_set_new(o, "reachable", json_boolean(reach));
	if (n->peer_heard) {
		state_json(o, n->pv.state);
		json_object_set_new(o, "reason", json_string(reach ? "as its heartbeats say (its vigild did not answer)"
		                                                   : "last state heard; no heartbeat now"));
	} else {
		json_object_set_new(o, "state", json_string("STOP"));
		json_object_set_new(o, "color", json_string("red"));
		json_object_set_new(o, "reason", json_string("not heard since vigild started"));
	}
	json_object_set_new(o, "resources", json_array());
	/* Its copy cannot be asked about: say so in the contract's words. */
	json_object_set_new(o, "sync", json_string(n->cfg->repl_enabled ? "connection error"
	                                                                 : "not configured"));
	return o;
}

