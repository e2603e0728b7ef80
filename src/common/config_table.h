/* The configuration key table, shared by the parser (config.c) and the
 * help and docs printer (config_help.c). Internal to src/common. */
#ifndef VIGIL_CONFIG_TABLE_H
#define VIGIL_CONFIG_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "common/config.h"

/* run_dir + "/vigild.sock" must fit in sockaddr_un.sun_path. */
#define SOCK_NAME "/vigild.sock"
#define RUN_DIR_MAX (sizeof(((struct sockaddr_un *)0)->sun_path) - sizeof(SOCK_NAME))

enum sect { S_CLUSTER, S_NODE, S_HEARTBEAT, S_VIP, S_REPLICATION, S_RESOURCE, S_CHECKER, S_WITNESS, S_NOTIFY,
	S_CONSOLE, S_POOL, S_COUNT };

struct sect_desc {
	const char *name;
	bool named;             /* [node NAME] rather than [heartbeat] */
	int min, max;           /* how many times it may appear */
	const char *help;
	bool name_optional;     /* [notify] and [notify NAME] both; named is false */
};

enum ktype { T_NAME, T_PATH, T_COMMAND, T_UINT, T_PORT, T_ADDRLIST, T_CIDR, T_IFNAME, T_ENUM, T_RESREF,
	T_STRING, T_HOSTPORT, T_IPV4, T_NAMEREF, T_DIRLIST, T_GLOBLIST, T_BOOL };

struct key {
	enum sect sect;
	const char *name;
	enum ktype type;
	uint32_t min, max;      /* T_UINT, T_PORT: value; T_PATH, T_STRING: max length;
	                         * T_ADDRLIST, T_DIRLIST, T_GLOBLIST: number of entries;
	                         * T_ENUM: min is the value of the first choice */
	const char *def;        /* parsed like a value from the file; NULL: none */
	bool required;          /* when its section is present ([cluster]: on a
	                         * mirror node, not a pool recorder or spare) */
	size_t off, off2;       /* into struct config, cfg_node, cfg_resource, cfg_checker or
	                         * cfg_notify; off2: T_CIDR prefix, T_ADDRLIST, T_DIRLIST
	                         * and T_GLOBLIST count (int),
	                         * T_HOSTPORT and T_IPV4 a bool set when given */
	const char *const *choices; /* T_ENUM; T_BOOL: onoff_names (on = true) */
	const char *help;
};

#define CFG(f) offsetof(struct config, f)
#define NODE(f) offsetof(struct cfg_node, f)
#define RES(f) offsetof(struct cfg_resource, f)
#define NOTIFY(f) offsetof(struct cfg_notify, f)
#define CHK(f) offsetof(struct cfg_checker, f)

extern const char *const when_names[];
extern const char *const action_names[];
extern const char *const repl_mode_names[];
extern const char *const repl_cache_names[];
extern const char *const link_tls_names[];
extern const char *const onoff_names[];
extern const char *const pool_role_names[];
extern const char *const pool_failback_names[];
extern const char *const pool_after_names[];
extern const struct sect_desc sects[S_COUNT];
extern const char *const type_names[];
extern const struct key keys[];
extern const size_t nkeys;
#define NKEYS nkeys
/* Upper bound on the number of keys, for arrays indexed by key. */
#define NKEYS_MAX 96

#endif
