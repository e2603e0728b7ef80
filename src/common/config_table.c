/* The one table of configuration keys: name, type, bounds, default, help.
 * config.c validates files with it; config_help.c prints it. */
#include "common/config_table.h"

#include <limits.h>
#include <net/if.h>

#include "common/util.h"

const char *const when_names[] = { "prim", "second", "both", NULL };

const char *res_when_str(enum res_when w)
{
	if ((unsigned)w < ARRAY_SIZE(when_names) - 1)
		return when_names[w];
	return "?";
}

const struct sect_desc sects[S_COUNT] = {
	[S_CLUSTER] = { "cluster", false, 1, 1,
		"Required. What both nodes share: the cluster's name, the secret that "
		"authenticates heartbeats, and where vigild keeps its files.", false },
	[S_NODE] = { "node", true, CFG_MAX_NODES, CFG_MAX_NODES,
		"Exactly two: `[node NAME]`, NAME of 1-63 letters, digits, `-`, `_` or `.`. "
		"The first one in the file is the preferred node. Both files (one per "
		"machine) list both nodes; a machine finds its own section by its "
		"addresses (or `vigild --node NAME`).", false },
	[S_HEARTBEAT] = { "heartbeat", false, 0, 1,
		"Optional. Heartbeats are UDP datagrams sent on every network listed in "
		"`[node]` `address`; a peer is lost when none arrives for `timeout_ms`.", false },
	[S_VIP] = { "vip", false, 0, 1,
		"Optional. A virtual IPv4 address held by the PRIM node. When the section "
		"is present, `address` and `interface` are required.", false },
	[S_RESOURCE] = { "resource", true, 0, CFG_MAX_RESOURCES,
		"Up to 32: `[resource NAME]`, NAME as for nodes. Scripts that start and "
		"stop what the cluster protects. They start in file order, except that a "
		"resource with `after` starts after that resource; they stop in reverse.", false },
	[S_NOTIFY] = { "notify", false, 0, CFG_MAX_NOTIFY,
		"Optional, up to 8 in all: `[notify]` and `[notify NAME]`, NAME as for "
		"nodes. Each event (state change, failover, split brain, failed start...) "
		"runs every notify command once, with the event in the environment "
		"(`VIGIL_EVENT`, `VIGIL_NODE`, `VIGIL_FROM`, `VIGIL_TO`, `VIGIL_COLOR`, "
		"`VIGIL_REASON`, `VIGIL_CLUSTER`, `VIGIL_TIME`, `VIGIL_SEQ`) and as one "
		"line of JSON on stdin (keys `type`, `node`, `from`, `to`, `color`, "
		"`reason`, `cluster`, `time`, `seq`). A command gets the events one at a time, in "
		"order; while it runs, up to 256 wait and then the oldest are dropped "
		"(and logged). A command that fails or hangs delays nothing else. Every "
		"event is also logged as one line `EVENT {...}` (the same JSON), which "
		"reaches syslog and the journal.", true },
};

const char *const type_names[] = {
	[T_NAME] = "name", [T_PATH] = "path", [T_COMMAND] = "command", [T_UINT] = "integer",
	[T_PORT] = "port", [T_ADDRLIST] = "IPv4 list", [T_CIDR] = "IPv4/prefix",
	[T_IFNAME] = "interface", [T_ENUM] = "choice", [T_RESREF] = "resource",
};

const struct key keys[] = {
	{ S_CLUSTER, "name", T_NAME, 0, 0, NULL, true, CFG(cluster_name), 0, NULL,
	  "Name of the cluster, the same on both nodes." },
	{ S_CLUSTER, "secret_file", T_PATH, 0, PATH_MAX - 1, NULL, true, CFG(secret_file), 0, NULL,
	  "File holding the shared secret (16 to 1024 bytes; one trailing newline is "
	  "ignored), the same on both nodes. Keep it mode 0600: vigild warns if group "
	  "or others can read it." },
	{ S_CLUSTER, "state_dir", T_PATH, 0, PATH_MAX - 1, "/var/lib/vigil", false, CFG(state_dir), 0, NULL,
	  "Persistent state and the log files." },
	{ S_CLUSTER, "run_dir", T_PATH, 0, RUN_DIR_MAX, "/run/vigil", false, CFG(run_dir), 0, NULL,
	  "Runtime files; the control socket `vigild.sock` lives here." },
	{ S_CLUSTER, "log_max_bytes", T_UINT, 4096, 1073741824, "1048576", false, CFG(log_max_bytes), 0, NULL,
	  "Size at which each log file is rotated (one old copy is kept)." },

	{ S_NODE, "address", T_ADDRLIST, 1, CFG_MAX_NETS, NULL, true, NODE(addr), NODE(naddr), NULL,
	  "The node's IPv4 addresses, comma-separated, one per heartbeat network, in "
	  "the same network order on both nodes. Both nodes list the same number; "
	  "no address may appear twice." },

	{ S_HEARTBEAT, "port", T_PORT, 1, 65535, "8888", false, CFG(hb_port), 0, NULL,
	  "UDP port of the heartbeats, the same on both nodes." },
	{ S_HEARTBEAT, "interval_ms", T_UINT, 10, 60000, "1000", false, CFG(hb_interval_ms), 0, NULL,
	  "Time between two heartbeats on each network, in milliseconds." },
	{ S_HEARTBEAT, "timeout_ms", T_UINT, 30, 600000, "5000", false, CFG(hb_timeout_ms), 0, NULL,
	  "The peer is lost when no heartbeat arrived on any network for this long, "
	  "in milliseconds. At least 2 * `interval_ms`." },

	{ S_VIP, "address", T_CIDR, 1, 32, NULL, true, CFG(vip_addr), CFG(vip_prefix), NULL,
	  "The virtual address and its prefix length, like `10.0.0.100/24`. Not a "
	  "node address, nor the network or broadcast address of its prefix." },
	{ S_VIP, "interface", T_IFNAME, 0, 0, NULL, true, CFG(vip_interface), 0, NULL,
	  "Network interface that carries the virtual address." },
	{ S_VIP, "probe_ms", T_UINT, 0, 5000, "50", false, CFG(vip_probe_ms), 0, NULL,
	  "Before taking the address, listen this long for another machine "
	  "answering ARP for it (0: do not check), in milliseconds." },
	{ S_VIP, "garp_burst", T_UINT, 1, 20, "3", false, CFG(vip_garp_burst), 0, NULL,
	  "Gratuitous ARPs sent at once after taking the address." },
	{ S_VIP, "garp_repeats", T_UINT, 0, 100, "3", false, CFG(vip_garp_repeats), 0, NULL,
	  "Further gratuitous ARPs sent after the burst, `garp_interval_ms` apart." },
	{ S_VIP, "garp_interval_ms", T_UINT, 10, 60000, "1000", false, CFG(vip_garp_interval_ms), 0, NULL,
	  "Time between the repeated gratuitous ARPs, in milliseconds." },

	{ S_RESOURCE, "start", T_COMMAND, 0, 0, NULL, true, RES(start), 0, NULL,
	  "Command that starts the resource, run by `/bin/sh -c`; exit status 0 "
	  "means started. A `;` after a space starts a comment: put command "
	  "sequences in a script." },
	{ S_RESOURCE, "stop", T_COMMAND, 0, 0, NULL, true, RES(stop), 0, NULL,
	  "Command that stops the resource, run like `start`." },
	{ S_RESOURCE, "when", T_ENUM, 0, 0, "prim", false, RES(when), 0, when_names,
	  "Where the resource runs: on the PRIM node (`prim`), on the SECOND node "
	  "(`second`) or on both (`both`)." },
	{ S_RESOURCE, "after", T_RESREF, 0, 0, "none", false, RES(after), 0, NULL,
	  "Name of another resource that must be started before this one "
	  "(and stopped after it), or `none`." },
	{ S_RESOURCE, "timeout_ms", T_UINT, 10, 3600000, "30000", false, RES(timeout_ms), 0, NULL,
	  "How long `start` or `stop` may run before it is killed and counts as "
	  "failed, in milliseconds." },

	{ S_NOTIFY, "command", T_COMMAND, 0, 0, NULL, true, NOTIFY(command), 0, NULL,
	  "Command run for each event, by `/bin/sh -c`. Whether it exists is only "
	  "known when it runs: a failure (such as exit 127, not found) is logged." },
	{ S_NOTIFY, "timeout_ms", T_UINT, 100, 600000, "10000", false, NOTIFY(timeout_ms), 0, NULL,
	  "How long one run may take before it is killed (SIGTERM, then SIGKILL) "
	  "and the next event goes, in milliseconds." },
};

const size_t nkeys = ARRAY_SIZE(keys);
_Static_assert(ARRAY_SIZE(keys) <= NKEYS_MAX, "raise NKEYS_MAX");
