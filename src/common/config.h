/* The configuration of a node: /etc/vigil/vigil.conf.
 *
 * One table (config.c) describes every key: section, name, type, bounds,
 * default and help. The same table validates the file, prints
 * `vigild --help-config` and generates docs/config.md. */
#ifndef VIGIL_CONFIG_H
#define VIGIL_CONFIG_H

#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define CFG_MAX_NODES 2
#define CFG_MAX_NETS 4
#define CFG_MAX_RESOURCES 32
#define CFG_MAX_NOTIFY 8
#define CFG_MAX_CHECKERS 32
#define CFG_NAME_MAX 64
#define CFG_SECRET_MIN 16
#define CFG_SECRET_MAX 1024
#define CFG_MAX_REPL_DIRS 16
#define CFG_MAX_REPL_EXCLUDE 32

enum res_when { WHEN_PRIM, WHEN_SECOND, WHEN_BOTH };
const char *res_when_str(enum res_when w);

/* [replication] mode: when a change returns to the application. */
enum repl_mode { REPL_SYNC, REPL_ASYNC };
const char *repl_mode_str(enum repl_mode m);      /* "sync", "async" */
/* [replication] cache: how the FUSE mount serves reads. */
enum repl_cache { REPL_CACHE_DIRECT, REPL_CACHE_PAGE };
const char *repl_cache_str(enum repl_cache c);    /* "direct", "page" */

struct cfg_node {
	char name[CFG_NAME_MAX];
	int naddr;                          /* one per heartbeat network */
	struct in_addr addr[CFG_MAX_NETS];
	int line;                           /* where [node NAME] starts */
};

struct cfg_resource {
	char name[CFG_NAME_MAX];
	char *start;                        /* shell command, run by /bin/sh -c */
	char *stop;
	enum res_when when;
	char after[CFG_NAME_MAX];           /* "" or the name of another resource */
	uint32_t timeout_ms;
	int line;
};

/* [notify] or [notify NAME]: a command told about every event. */
struct cfg_notify {
	char name[CFG_NAME_MAX];            /* "" for the unnamed [notify] */
	char *command;                      /* shell command, run by /bin/sh -c */
	uint32_t timeout_ms;
	int line;
};

enum chk_action { CHK_ACT_RESTART, CHK_ACT_FAILOVER, CHK_ACT_STOP, CHK_ACT_WAIT };
const char *chk_action_str(enum chk_action a);
/* The checker types in the order of enum checker_type (resource/checker.h):
 * "tcp", "http", "process", "custom", "interface", "ping", NULL. */
extern const char *const cfg_checker_type_names[];

/* [checker NAME]: raw keys; resource/checker.c validates the target for
 * the type (policy_validate in vigild). */
struct cfg_checker {
	char name[CFG_NAME_MAX];
	int type;                           /* enum checker_type (resource/checker.h) */
	char target[256];                   /* tcp: HOST:PORT; ping: IPv4 */
	char url[512];                      /* http */
	uint32_t expect_status;             /* http; default 200 */
	char process[256];                  /* process: a name ... */
	char pidfile[PATH_MAX];             /* ... or a pid file */
	char *command;                      /* custom */
	char interface[IF_NAMESIZE];        /* interface */
	uint32_t interval_ms, timeout_ms;
	enum res_when when;
	char resource[CFG_NAME_MAX];        /* "" or a [resource]: what restart restarts */
	int resource_line;
	enum chk_action on_failure;
	uint32_t maxloop;
	uint32_t loop_window_ms;
	int line;
};

/* [pool] role: none when the section is absent. */
enum pool_cfg_role { POOL_CFG_NONE, POOL_CFG_MASTER, POOL_CFG_RECORDER, POOL_CFG_SPARE };
const char *pool_cfg_role_str(enum pool_cfg_role r);       /* "none", "master", "recorder", "spare" */
enum pool_cfg_failback { POOL_CFG_FAILBACK_AUTO, POOL_CFG_FAILBACK_MANUAL };
const char *pool_cfg_failback_str(enum pool_cfg_failback f); /* "auto", "manual" */
enum pool_cfg_after { POOL_CFG_AFTER_FAILBACK, POOL_CFG_AFTER_SWAP };
const char *pool_cfg_after_str(enum pool_cfg_after a);     /* "failback", "swap" */

enum link_tls { LINK_TLS_AUTO, LINK_TLS_ON, LINK_TLS_OFF };
const char *link_tls_str(enum link_tls t);

struct config {
	char path[PATH_MAX];

	/* [cluster] */
	char cluster_name[CFG_NAME_MAX];
	char secret_file[PATH_MAX];
	char state_dir[PATH_MAX];
	char run_dir[PATH_MAX];
	uint32_t log_max_bytes;

	/* [node NAME], in file order; index 0 is the preferred node */
	struct cfg_node nodes[CFG_MAX_NODES];
	int nnodes;
	int nnets;                          /* = naddr of every node */

	/* [heartbeat] */
	uint16_t hb_port;
	uint32_t hb_interval_ms;
	uint32_t hb_timeout_ms;

	/* [vip], optional */
	bool vip_enabled;
	struct in_addr vip_addr;
	int vip_prefix;
	char vip_interface[IF_NAMESIZE];
	uint32_t vip_probe_ms;              /* ARP probe window before taking it */
	uint32_t vip_garp_burst;            /* gratuitous ARPs sent at once */
	uint32_t vip_garp_repeats;          /* then this many more ... */
	uint32_t vip_garp_interval_ms;      /* ... this far apart */

	/* [resource NAME], sorted so that each comes after its `after` */
	struct cfg_resource res[CFG_MAX_RESOURCES];
	int nres;

	/* [notify] and [notify NAME], in file order */
	struct cfg_notify notify[CFG_MAX_NOTIFY];
	int nnotify;

	/* [cluster] failover limit */
	enum link_tls link_tls;             /* the peer link: mutual TLS? */
	uint32_t max_failovers;             /* automatic failovers allowed ... */
	uint32_t failover_period_ms;        /* ... within this period */

	/* [checker NAME], in file order */
	struct cfg_checker checkers[CFG_MAX_CHECKERS];
	int nchecker;

	/* [witness], optional: a vigil-witness (address) or a ping witness */
	bool witness_enabled;               /* address = IPv4:PORT of a vigil-witness */
	struct sockaddr_in witness_addr;
	bool witness_ping_enabled;          /* ping = IPv4 */
	struct in_addr witness_ping;
	uint32_t witness_lease_ms;

	/* [console] */
	uint16_t console_http_port;          /* 0: off */
	uint16_t console_https_port;         /* 0: off */
	char console_password_file[PATH_MAX];

	/* [replication], optional: vigil-rfs replicates these directories */
	bool repl_enabled;                  /* the section is present */
	char repl_dirs[CFG_MAX_REPL_DIRS][PATH_MAX];  /* absolute, normalised: no trailing '/' */
	int nrepl_dirs;
	char repl_exclude[CFG_MAX_REPL_EXCLUDE][256];
	int nrepl_exclude;
	enum repl_mode repl_mode;
	enum repl_cache repl_cache;
	uint16_t repl_port;
	uint32_t repl_ack_timeout_ms;
	uint32_t repl_checkpoint_ms;
	uint32_t repl_connect_timeout_ms;
	char repl_aside_dir[PATH_MAX];      /* "" = state_dir/rfs (where the generations are) */

	/* [pool], optional: N+M failover of recording servers (docs/pool.md).
	 * A recorder or spare needs no [cluster] (its keys keep their
	 * defaults; name and secret_file are then optional) and has no
	 * [node]; a master is a mirror node and runs the pool while it runs
	 * the service (ALONE or PRIM). */
	enum pool_cfg_role pool_role;
	char pool_name[CFG_NAME_MAX];       /* recorder, spare: its name (= its certificate's CN) */
	bool pool_master_set;
	struct sockaddr_in pool_master;     /* recorder, spare */
	bool pool_listen_set;
	struct sockaddr_in pool_listen;     /* master */
	char pool_group[CFG_NAME_MAX];      /* recorder: primary group; spare: its group */
	char pool_secondary_group[CFG_NAME_MAX]; /* recorder, optional: "" */
	bool pool_failover;                 /* recorder: failover enabled */
	uint32_t pool_detect_timeout_ms;    /* master */
	uint32_t pool_heartbeat_ms;         /* master: what it tells agents */
	char pool_settings_dir[PATH_MAX];
	char pool_recordings_dir[PATH_MAX];
	char pool_registry_dir[PATH_MAX];   /* master: where pool.db lives */
	uint32_t pool_settings_max_bytes;   /* master: per recorder */
	enum pool_cfg_failback pool_failback;
	enum pool_cfg_after pool_after_failure;
	char *pool_start;                   /* recorder, spare: start recording */
	char *pool_stop;                    /* recorder, spare: stop recording */
	char *pool_check;                   /* recorder, optional: is the recording service up? */
	uint32_t pool_script_timeout_ms;
	uint16_t pool_copy_port;            /* recorder: where spares copy recordings home */

	/* loaded from secret_file */
	unsigned char secret[CFG_SECRET_MAX];
	size_t secret_len;
};

/* Loads and validates path into cfg (zeroed first). On error returns -1 and
 * writes "PATH:LINE: message" into err; cfg is then freed and unusable. */
int config_load(const char *path, struct config *cfg, char *err, size_t errlen);
void config_free(struct config *cfg);
/* CONFIG_NO_SECRET: do not read secret_file (for clients such as vigilctl,
 * which need only run_dir and may run without the right to read it), nor
 * check that the [replication] dirs exist (a client need not see them). */
#define CONFIG_NO_SECRET 1u
int config_load_flags(const char *path, struct config *cfg, unsigned flags, char *err, size_t errlen);

/* Index of the node whose name is name, or -1. */
int config_node_index(const struct config *cfg, const char *name);
/* Index of the node that owns one of this machine's addresses, or -1 (and
 * err says why: none, or more than one). */
int config_find_local_node(const struct config *cfg, char *err, size_t errlen);

/* The [pool] role is recorder or spare: vigild runs the pool agent only,
 * not a mirror node. */
bool config_pool_agent(const struct config *cfg);

/* Prints the key table as text (vigild --help-config) or markdown. */
void config_print_help(FILE *out, bool markdown);

#endif
