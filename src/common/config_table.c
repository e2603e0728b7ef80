/* The one table of configuration keys: name, type, bounds, default, help.
 * config.c validates files with it; config_help.c prints it. */
#include "common/config_table.h"

#include <limits.h>
#include <net/if.h>

#include "common/util.h"

const char *const when_names[] = { "prim", "second", "both", NULL };

const char *const action_names[] = { "restart", "failover", "stop", "wait", NULL };
const char *const cfg_checker_type_names[] = { "tcp", "http", "process", "custom", "interface", "ping", NULL };

const char *const repl_mode_names[] = { "sync", "async", NULL };
const char *const repl_cache_names[] = { "direct", "page", NULL };
const char *const link_tls_names[] = { "auto", "on", "off", NULL };
const char *const onoff_names[] = { "on", "off", NULL };

/* "none" is no [pool]; the role key's choices start after it. */
const char *const pool_role_names[] = { "none", "master", "recorder", "spare", NULL };
const char *const pool_failback_names[] = { "auto", "manual", NULL };
const char *const pool_after_names[] = { "failback", "swap", NULL };

/* names[v] of a NULL-ended list, or "?" when v is past its end. */
static const char *choice_str(const char *const *names, size_t n, unsigned v)
{
	return v < n - 1 ? names[v] : "?";
}

#define CHOICE_STR(names, v) choice_str(names, ARRAY_SIZE(names), (unsigned)(v))

const char *repl_mode_str(enum repl_mode m) { return CHOICE_STR(repl_mode_names, m); }
const char *repl_cache_str(enum repl_cache c) { return CHOICE_STR(repl_cache_names, c); }
const char *link_tls_str(enum link_tls t) { return CHOICE_STR(link_tls_names, t); }
const char *pool_cfg_role_str(enum pool_cfg_role r) { return CHOICE_STR(pool_role_names, r); }
const char *pool_cfg_failback_str(enum pool_cfg_failback f) { return CHOICE_STR(pool_failback_names, f); }
const char *pool_cfg_after_str(enum pool_cfg_after a) { return CHOICE_STR(pool_after_names, a); }
const char *chk_action_str(enum chk_action a) { return CHOICE_STR(action_names, a); }
const char *res_when_str(enum res_when w) { return CHOICE_STR(when_names, w); }

const struct sect_desc sects[S_COUNT] = {
	[S_CLUSTER] = { "cluster", false, 1, 1,
		"Required. What both nodes share: the cluster's name, the secret that "
		"authenticates heartbeats, and where vigild keeps its files. A pool "
		"recorder or spare may omit it, or `name` and `secret_file` ([pool]).", false },
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
	[S_REPLICATION] = { "replication", false, 0, 1,
		"Optional. vigil-rfs replicates `dirs` in real time from the PRIM node to "
		"the SECOND node: on the PRIM each directory is served through FUSE over "
		"its own path, and every change is applied locally and shipped in order "
		"to the SECOND. Each directory must exist, and none may be `/`, lie "
		"inside another, hold `state_dir` or `run_dir`, or lie inside "
		"`state_dir`. See docs/design/rfs.md.", false },
	[S_RESOURCE] = { "resource", true, 0, CFG_MAX_RESOURCES,
		"Up to 32: `[resource NAME]`, NAME as for nodes. Scripts that start and "
		"stop what the cluster protects. They start in file order, except that a "
		"resource with `after` starts after that resource; they stop in reverse.", false },
	[S_CHECKER] = { "checker", true, 0, CFG_MAX_CHECKERS,
		"Up to 32: `[checker NAME]`, NAME as for nodes. A periodic health check "
		"of what the cluster runs, and what to do when it fails. Checks never "
		"block vigild: each has a deadline (`timeout_ms`), and a check still "
		"pending then is a failure. A checker runs on a node whose state matches "
		"`when` (prim: ALONE or PRIM; second: SECOND), once its resources are "
		"started; `vigilctl checkers off` stops them all, `vigilctl errd suspend` "
		"lets them run and report without acting. Addresses are IP literals "
		"(resolving names could block). See docs/checkers.md.", false },
	[S_WITNESS] = { "witness", false, 0, 1,
		"Optional: split-brain protection. With `address`, a node that loses its "
		"peer runs the service alone only while it holds the lease of the "
		"vigil-witness at that address (the PRIM renews it all the time); "
		"otherwise it waits (WAIT, red). With `ping`, a node that loses its peer "
		"may run the service alone only if the address answers ICMP echo. "
		"Exactly one of `address` and `ping`. See docs/split-brain.md.", false },
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
	[S_CONSOLE] = { "console", false, 0, 1,
		"Optional. The web console and the HTTP(S) JSON API (docs/api.md), "
		"served by vigild on both nodes; either node answers for both. Log in "
		"as `admin` with the password set by `vigilctl password`. HTTPS uses "
		"the certificates made by `vigilctl pki` or custom ones dropped into "
		"the config directory (docs/pki.md).", false },
	[S_POOL] = { "pool", false, 0, 1,
		"Optional: N+M failover of recording servers (docs/pool.md). The "
		"`master` is a mirror node (this file has the usual [cluster] and two "
		"[node]) and runs the pool while it runs the service (ALONE or PRIM): "
		"it watches the recorders, keeps a copy of their settings, and when one "
		"fails it has a spare of the recorder's group record in its place. A "
		"`recorder` records cameras and reports to the master; a `spare` waits "
		"to record for a failed recorder. Each key below says which roles take "
		"it; a key given to another role is an error. A recorder or spare is "
		"not a mirror node: its file needs no [cluster] (if present, `name` and "
		"`secret_file` are optional; the other keys keep their meaning) and may "
		"not have [node], [heartbeat], [vip], [replication], [resource], "
		"[checker] or [witness]; [notify] and [console] are allowed.", false },
};

const char *const type_names[] = {
	[T_NAME] = "name", [T_PATH] = "path", [T_COMMAND] = "command", [T_UINT] = "integer",
	[T_PORT] = "port", [T_ADDRLIST] = "IPv4 list", [T_CIDR] = "IPv4/prefix",
	[T_IFNAME] = "interface", [T_ENUM] = "choice", [T_RESREF] = "resource",
	[T_STRING] = "text", [T_HOSTPORT] = "IPv4:port", [T_IPV4] = "IPv4", [T_NAMEREF] = "resource",
	[T_DIRLIST] = "path list", [T_GLOBLIST] = "glob list", [T_BOOL] = "choice",
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

	{ S_CLUSTER, "max_failovers", T_UINT, 1, 64, "2", false, CFG(max_failovers), 0, NULL,
	  "Automatic failovers allowed within `failover_period_ms`: takeovers after "
	  "the peer was lost and failovers asked for by a checker, counted on both "
	  "nodes together. Past it, a node that would take over waits (WAIT, red) "
	  "and a checker's failover is not carried out; both raise an alarm (log, "
	  "status, notify). Commands (swap, stop, stopstart) do not count." },
	{ S_CLUSTER, "link_tls", T_ENUM, 0, 0, "auto", false, CFG(link_tls), 0, link_tls_names,
	  "Mutual TLS on the command link between the two vigild, with the "
	  "certificates `vigilctl pki` made (CONFIG_DIR/pki: cacert.crt, NODE.crt, "
	  "NODE.key): each side must show a certificate of the cluster's CA named "
	  "after the node it is. `auto`: TLS when all three files exist, signed "
	  "frames alone (the secret) when none does; some but not all is an error. "
	  "`on`: vigild does not start without them. `off`: signed frames alone. "
	  "Both nodes must agree, or their link fails (and says why in the log)." },
	{ S_CLUSTER, "failover_period_ms", T_UINT, 1000, 2592000000u, "21600000", false,
	  CFG(failover_period_ms), 0, NULL,
	  "The period of `max_failovers`, in milliseconds (default 6 h)." },

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

	{ S_REPLICATION, "dirs", T_DIRLIST, 1, CFG_MAX_REPL_DIRS, NULL, true, CFG(repl_dirs), CFG(nrepl_dirs), NULL,
	  "The directories to replicate, comma-separated absolute paths, like "
	  "`/srv/vms/db, /srv/vms/conf`. The same on both nodes." },
	{ S_REPLICATION, "exclude", T_GLOBLIST, 1, CFG_MAX_REPL_EXCLUDE, NULL, false, CFG(repl_exclude),
	  CFG(nrepl_exclude), NULL,
	  "Files that are served but not replicated: comma-separated globs, like "
	  "`*.tmp`, matched against names (fnmatch; no `/`). Everything inside an "
	  "excluded directory is excluded too." },
	{ S_REPLICATION, "mode", T_ENUM, 0, 0, "sync", false, CFG(repl_mode), 0, repl_mode_names,
	  "`sync`: a change returns to the application only after the SECOND "
	  "received it; fsync, fdatasync and O_SYNC writes also wait until it is "
	  "durable on the SECOND. `async`: a change returns after the local apply." },
	{ S_REPLICATION, "port", T_PORT, 1, 65535, "5600", false, CFG(repl_port), 0, NULL,
	  "TCP port of the replication link, the same on both nodes; the SECOND "
	  "listens on its first node address." },
	{ S_REPLICATION, "cache", T_ENUM, 0, 0, "direct", false, CFG(repl_cache), 0, repl_cache_names,
	  "`direct`: FUSE direct I/O, the fast path for databases; `page`: the "
	  "kernel page cache serves reads, needed by programs that write through "
	  "a shared mmap (SQLite in WAL mode)." },
	{ S_REPLICATION, "ack_timeout_ms", T_UINT, 500, 600000, "5000", false, CFG(repl_ack_timeout_ms), 0, NULL,
	  "A SECOND silent for this long has lost the link, in milliseconds. The "
	  "PRIM then holds every change until the peer's copy is marked outdated "
	  "(or the peer is lost), and goes on alone." },
	{ S_REPLICATION, "checkpoint_ms", T_UINT, 10, 60000, "1000", false, CFG(repl_checkpoint_ms), 0, NULL,
	  "The SECOND makes what it applied durable at least this often, in "
	  "milliseconds." },
	{ S_REPLICATION, "connect_timeout_ms", T_UINT, 0, 600000, "10000", false, CFG(repl_connect_timeout_ms), 0,
	  NULL,
	  "How long a new PRIM waits at start for its SECOND before it goes on "
	  "alone, in milliseconds. A node taking over from a lost peer does not wait." },
	{ S_REPLICATION, "aside_dir", T_PATH, 0, PATH_MAX - 1, NULL, false, CFG(repl_aside_dir), 0, NULL,
	  "Where a SECOND moves its copy when it is not the PRIM's (after a split "
	  "brain, or on a first start) before it gets a full copy: "
	  "`aside-<UTC time>/<dir index>/`, never deleted by vigil. Must be on the "
	  "file system of `dirs` (entries are moved, not copied) and outside them. "
	  "It also holds `stash-<dir index>/`, where a reintegration puts the "
	  "objects the PRIM renamed until it moves them to their new names "
	  "(emptied when it ends). "
	  "Default: `[cluster] state_dir`/rfs, which also holds the generations "
	  "(kept there so that a full data disk cannot stop them being written)." },

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

	{ S_CHECKER, "type", T_ENUM, 0, 0, NULL, true, CHK(type), 0, cfg_checker_type_names,
	  "`tcp`: connect to `target`; `http`: GET `url`, expect `expect_status`; "
	  "`process`: a process named `process` (or whose pid is in `pidfile`) "
	  "exists; `custom`: `command` exits 0; `interface`: `interface` is up "
	  "with a carrier; `ping`: `target` answers ICMP echo." },
	{ S_CHECKER, "target", T_STRING, 0, 255, NULL, false, CHK(target), 0, NULL,
	  "tcp: `IPv4:PORT` or `[IPv6]:PORT`; ping: an IPv4 address." },
	{ S_CHECKER, "url", T_STRING, 0, 511, NULL, false, CHK(url), 0, NULL,
	  "http: `http://IPv4[:PORT]/path`." },
	{ S_CHECKER, "expect_status", T_UINT, 100, 599, "200", false, CHK(expect_status), 0, NULL,
	  "http: the status that means healthy." },
	{ S_CHECKER, "process", T_STRING, 0, 255, NULL, false, CHK(process), 0, NULL,
	  "process: the process name, as in /proc/PID/comm (at most 15 characters)." },
	{ S_CHECKER, "pidfile", T_PATH, 0, PATH_MAX - 1, NULL, false, CHK(pidfile), 0, NULL,
	  "process: a pid file; the process it names must exist (instead of `process`)." },
	{ S_CHECKER, "command", T_COMMAND, 0, 0, NULL, false, CHK(command), 0, NULL,
	  "custom: command run by `/bin/sh -c`; exit 0 means healthy. It gets "
	  "`VIGIL_CHECKER=NAME` in its environment." },
	{ S_CHECKER, "interface", T_IFNAME, 0, 0, NULL, false, CHK(interface), 0, NULL,
	  "interface: the network interface that must be up with a carrier." },
	{ S_CHECKER, "interval_ms", T_UINT, 10, 3600000, "5000", false, CHK(interval_ms), 0, NULL,
	  "Time from the start of one check to the start of the next, in milliseconds." },
	{ S_CHECKER, "timeout_ms", T_UINT, 10, 600000, "3000", false, CHK(timeout_ms), 0, NULL,
	  "A check that has not answered after this long failed (a hung service "
	  "counts as failed), in milliseconds." },
	{ S_CHECKER, "when", T_ENUM, 0, 0, "prim", false, CHK(when), 0, when_names,
	  "Where the checker runs: on the node running the service (`prim`: ALONE "
	  "or PRIM), on the SECOND (`second`) or on both (`both`)." },
	{ S_CHECKER, "resource", T_NAMEREF, 0, 0, "none", false, CHK(resource), 0, NULL,
	  "The [resource] that `restart` restarts (with the resources that start "
	  "after it), or `none`: all resources of the node's role." },
	{ S_CHECKER, "on_failure", T_ENUM, 0, 0, "restart", false, CHK(on_failure), 0, action_names,
	  "`restart`: restart `resource` here, at most `maxloop` times within "
	  "`loop_window_ms`, then fail over; `failover`: stop here so that the "
	  "peer takes over, then start again as SECOND; `stop`: stop this node "
	  "(the peer takes over; it stays stopped); `wait`: stop here, keep checking, "
	  "and start again once the check passes." },
	{ S_CHECKER, "maxloop", T_UINT, 0, 1000, "3", false, CHK(maxloop), 0, NULL,
	  "Local restarts allowed within `loop_window_ms` before `restart` fails over." },
	{ S_CHECKER, "loop_window_ms", T_UINT, 1000, 2592000000u, "86400000", false, CHK(loop_window_ms), 0, NULL,
	  "The window of `maxloop`, in milliseconds (default 24 h)." },

	{ S_WITNESS, "address", T_HOSTPORT, 0, 0, NULL, false, CFG(witness_addr), CFG(witness_enabled), NULL,
	  "`IPv4:PORT` of a vigil-witness (`vigil-witness -c FILE` on a third "
	  "machine, with the same secret)." },
	{ S_WITNESS, "ping", T_IPV4, 0, 0, NULL, false, CFG(witness_ping), CFG(witness_ping_enabled), NULL,
	  "An IPv4 address (a router, say) that a node must reach by ICMP echo to "
	  "run the service alone. Two nodes that both reach it both run it." },
	{ S_WITNESS, "lease_ms", T_UINT, 200, 600000, "15000", false, CFG(witness_lease_ms), 0, NULL,
	  "With `address`: how long a grant of the witness lasts. At least 2 * "
	  "[heartbeat] `timeout_ms`. A PRIM cut off from both its peer and the "
	  "witness stops the service before its lease ends; its peer takes over "
	  "only once the lease has ended, so a failover takes up to this long." },

	{ S_CONSOLE, "http_port", T_PORT, 0, 65535, "9010", false, CFG(console_http_port), 0, NULL,
	  "TCP port of the console and API over plain HTTP; 0 turns it off. "
	  "Passwords and session cookies cross the network in the clear on it: "
	  "turn it off where the network is not trusted." },
	{ S_CONSOLE, "https_port", T_PORT, 0, 65535, "9453", false, CFG(console_https_port), 0, NULL,
	  "TCP port of the console and API over HTTPS; 0 turns it off. Without a "
	  "server certificate (`vigilctl pki`) HTTPS stays off and vigild says so "
	  "in its log and status." },
	{ S_CONSOLE, "password_file", T_PATH, 0, PATH_MAX - 1, "/etc/vigil/console.passwd", false,
	  CFG(console_password_file), 0, NULL,
	  "File holding the argon2id hash of the `admin` password (never the "
	  "password itself), the same on both nodes: `vigilctl password` writes "
	  "it on both. Until it exists, every login is refused." },

	{ S_NOTIFY, "command", T_COMMAND, 0, 0, NULL, true, NOTIFY(command), 0, NULL,
	  "Command run for each event, by `/bin/sh -c`. Whether it exists is only "
	  "known when it runs: a failure (such as exit 127, not found) is logged." },
	{ S_NOTIFY, "timeout_ms", T_UINT, 100, 600000, "10000", false, NOTIFY(timeout_ms), 0, NULL,
	  "How long one run may take before it is killed (SIGTERM, then SIGKILL) "
	  "and the next event goes, in milliseconds." },
	{ S_POOL, "role", T_ENUM, POOL_CFG_MASTER, 0, NULL, true, CFG(pool_role), 0, pool_role_names + 1,
	  "`master`: runs the pool (a mirror node); `recorder`: a recording "
	  "server the pool protects; `spare`: records in a failed recorder's place." },
	{ S_POOL, "name", T_NAME, 0, 0, NULL, false, CFG(pool_name), 0, NULL,
	  "Recorder, spare (required): its name in the pool, the CN of its "
	  "certificate. Not for the master, which is named by its [node]." },
	{ S_POOL, "master", T_HOSTPORT, 0, 0, NULL, false, CFG(pool_master), CFG(pool_master_set), NULL,
	  "Recorder, spare (required): `IPv4:PORT` where the master listens "
	  "(its `listen`)." },
	{ S_POOL, "listen", T_HOSTPORT, 0, 0, NULL, false, CFG(pool_listen), CFG(pool_listen_set), NULL,
	  "Master (required): `IPv4:PORT` where the master takes the recorders' "
	  "and spares' connections." },
	{ S_POOL, "group", T_NAME, 0, 0, NULL, false, CFG(pool_group), 0, NULL,
	  "Recorder, spare (required): the group. A failed recorder gets a spare "
	  "of its group, else of its `secondary_group`." },
	{ S_POOL, "secondary_group", T_NAME, 0, 0, NULL, false, CFG(pool_secondary_group), 0, NULL,
	  "Recorder (optional): the group whose spares serve it when its own "
	  "group has none free. Not `group`." },
	{ S_POOL, "failover", T_BOOL, 0, 0, "on", false, CFG(pool_failover), 0, onoff_names,
	  "Recorder: whether a spare may take its place when it fails; with "
	  "`off` a failed recorder stays DOWN." },
	{ S_POOL, "detect_timeout_ms", T_UINT, 500, 3600000, "10000", false, CFG(pool_detect_timeout_ms), 0, NULL,
	  "Master: a recorder silent for this long has failed, in milliseconds. "
	  "The seed offers 10, 20, 30, 40 or 50 s or whole minutes; lower values "
	  "are allowed. At least 2 * `heartbeat_ms`." },
	{ S_POOL, "heartbeat_ms", T_UINT, 100, 60000, "1000", false, CFG(pool_heartbeat_ms), 0, NULL,
	  "Master: how often it tells recorders and spares to report, in "
	  "milliseconds." },
	{ S_POOL, "settings_dir", T_PATH, 0, PATH_MAX - 1, "/var/lib/vms/settings", false, CFG(pool_settings_dir), 0,
	  NULL,
	  "Recorder: the recording service's settings, schedules and masks, "
	  "uploaded to the master whenever they change. Spare: where it receives "
	  "the settings of the recorder it records for." },
	{ S_POOL, "recordings_dir", T_PATH, 0, PATH_MAX - 1, "/var/lib/vms/recordings", false,
	  CFG(pool_recordings_dir), 0, NULL,
	  "Recorder: where its recordings are, and where spares copy the ones "
	  "they made for it. Spare: records for recorder R in `recordings_dir`/R." },
	{ S_POOL, "registry_dir", T_PATH, 0, PATH_MAX - 1, NULL, false, CFG(pool_registry_dir), 0, NULL,
	  "Master: where the registry (pool.db) lives. Default: `[cluster] "
	  "state_dir`. Put it in a [replication] directory so that the SECOND "
	  "has the registry when it takes over." },
	{ S_POOL, "settings_max_bytes", T_UINT, 4096, 16777216, "16777216", false, CFG(pool_settings_max_bytes), 0,
	  NULL,
	  "Master: the settings cached for one recorder may not exceed this "
	  "size; a larger upload is refused." },
	{ S_POOL, "failback", T_ENUM, 0, 0, "auto", false, CFG(pool_failback), 0, pool_failback_names,
	  "Master: when a recorder that is back and healthy gets its cameras "
	  "back: `auto`: at once; `manual`: on `pool failback`." },
	{ S_POOL, "after_failure", T_ENUM, 0, 0, "failback", false, CFG(pool_after_failure), 0, pool_after_names,
	  "Master: what happens when a failed recorder is back: `failback`: the "
	  "spare stops and the recorder records again; `swap`: the two machines "
	  "exchange roles (the spare goes on as the recorder, the repaired "
	  "machine becomes a spare)." },
	{ S_POOL, "start", T_COMMAND, 0, 0, NULL, false, CFG(pool_start), 0, NULL,
	  "Recorder, spare (required), run by `/bin/sh -c`. Recorder: starts "
	  "its recording service (also when the master says resume). Spare: "
	  "starts recording in a recorder's place, with `VIGIL_POOL_RECORDER` "
	  "(its name), `VIGIL_POOL_SETTINGS` (the directory with its cached "
	  "settings) and `VIGIL_POOL_RECORDINGS` (where to record for it: "
	  "`recordings_dir`/RECORDER) in the environment." },
	{ S_POOL, "stop", T_COMMAND, 0, 0, NULL, false, CFG(pool_stop), 0, NULL,
	  "Recorder, spare (required): stops recording, run like `start` (a "
	  "spare's with the same environment)." },
	{ S_POOL, "check", T_COMMAND, 0, 0, NULL, false, CFG(pool_check), 0, NULL,
	  "Recorder (optional): exits 0 while the recording service runs. When "
	  "it fails vigild runs `start`, and when `start` fails too it reports "
	  "the watchdog failure to the master (a failover trigger)." },
	{ S_POOL, "script_timeout_ms", T_UINT, 1000, 600000, "60000", false, CFG(pool_script_timeout_ms), 0, NULL,
	  "Recorder, spare: how long `start`, `stop` or `check` may run before "
	  "it is killed and counts as failed, in milliseconds." },
	{ S_POOL, "copy_port", T_PORT, 1, 65535, "4811", false, CFG(pool_copy_port), 0, NULL,
	  "Recorder: TCP port where spares copy home the recordings they made "
	  "for it." },
};

const size_t nkeys = ARRAY_SIZE(keys);
_Static_assert(ARRAY_SIZE(keys) <= NKEYS_MAX, "raise NKEYS_MAX");
