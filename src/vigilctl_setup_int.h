/* The setup wizard's parts (vigilctl_setup*.c), shared between its files.
 *
 *   vigilctl_setup.c          commands, help, secondary and finish
 *   vigilctl_setup_primary.c  primary: node1 builds the cluster
 *   vigilctl_setup_agent.c    node2's setup agent (a detached vigilctl)
 *   vigilctl_setup_chan.c     the TLS channel, its messages, the security code
 *   vigilctl_setup_conf.c     addresses, the config text, staged files
 *   vigilctl_setup_proc.c     vigild and agent processes, /proc
 *   vigilctl_setup_remove.c   remove: vigild, mounts, VIP, files
 *
 * Functions return 0 or -1; on -1, err holds a sentence naming what was
 * wrong (the command prints it). */
#ifndef VIGIL_VIGILCTL_SETUP_INT_H
#define VIGIL_VIGILCTL_SETUP_INT_H

#include <jansson.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/config.h"

enum { SETUP_EXIT_OK = 0, SETUP_EXIT_FAIL = 1, SETUP_EXIT_USAGE = 2 };

#define SETUP_PORT 9454
#define SETUP_TIMEOUT_DEFAULT_S 3600
#define SETUP_TIMEOUT_MAX_S (7 * 86400)
#define SETUP_MAX_WRONG 5               /* wrong security codes before the agent gives up */
#define SETUP_IO_TIMEOUT_S 30           /* one message (or handshake) on the channel */
#define SETUP_CONNECT_TIMEOUT_S 10
#define SETUP_MSG_MAX (4u << 20)
#define SETUP_VIGILD_WAIT_MS 20000      /* a started vigild answers on its socket by then */
#define SETUP_STOP_WAIT_MS 15000        /* SIGTERM to SIGKILL */

/* The security code: 20 characters of base32 (A-Z, 2-7) shown in groups of
 * four. The first 12 come from the SHA-256 of the agent's public key (node1
 * checks the key it sees: it talks to node2, not to a man in the middle);
 * the last 8 are random (node1 proves it was told the code by sending it). */
#define SETUP_CODE_CHARS 20
#define SETUP_CODE_KEY_CHARS 12
#define SETUP_CODE_RAND_BYTES 5         /* 8 base32 characters */
#define SETUP_CODE_TEXT 25              /* "ABCD-EFGH-IJKL-MNOP-QRST" + NUL */

/* The files of a configured node, all in the directory of the config. */
#define SETUP_SECRET "secret"
#define SETUP_PASSWD "console.passwd"
#define SETUP_EXPORT "cacert-export.crt"
#define SETUP_STATE "setup"             /* the agent's state, mode 0700 */
#define SETUP_PACKAGE "package.json"    /* what node1 sent, in SETUP_STATE */
#define SETUP_AGENT_PID "agent.pid"
#define SETUP_AGENT_LOG "agent.log"
#define SETUP_AGENT_KEY "ca.key"        /* pki_make_ca's names for the throwaway pair */
#define SETUP_AGENT_CERT "cacert.crt"

enum setup_console { SETUP_CONSOLE_HTTPS, SETUP_CONSOLE_HTTP, SETUP_CONSOLE_BOTH };
const char *setup_console_str(enum setup_console c);       /* "https", "http", "both" */
int setup_console_parse(const char *s, enum setup_console *out);

struct setup_paths {
	char config[PATH_MAX];          /* absolute */
	char dir[PATH_MAX];             /* the config's directory */
	char secret[PATH_MAX];
	char passwd[PATH_MAX];
	char pki[PATH_MAX];
	char state[PATH_MAX];
	char export_ca[PATH_MAX];
};
int setup_paths_init(const char *config, struct setup_paths *p, char *err, size_t errlen);
/* dir/name into out; false (and err) if it does not fit. */
bool setup_join(char out[PATH_MAX], const char *dir, const char *name);

/* ---- vigilctl_setup_conf.c ---- */

#define SETUP_MAX_IFS 64

struct setup_if {
	char name[IF_NAMESIZE];
	struct in_addr addr;
	int prefix;
};

struct setup_ifs {
	struct setup_if v[SETUP_MAX_IFS];
	int n;
};

/* This machine's IPv4 addresses, loopback left out. */
int setup_local_ifs(struct setup_ifs *out, char *err, size_t errlen);
json_t *setup_ifs_json(const struct setup_ifs *ifs);
int setup_ifs_from_json(json_t *arr, struct setup_ifs *out, char *err, size_t errlen);
/* The entry holding addr, or NULL. */
const struct setup_if *setup_ifs_find(const struct setup_ifs *ifs, struct in_addr addr);
/* The first entry whose network (its own prefix, or prefix when >= 0)
 * holds addr and whose address is not addr itself, or NULL. */
const struct setup_if *setup_ifs_subnet(const struct setup_ifs *ifs, struct in_addr addr, int prefix);
bool setup_same_net(struct in_addr a, struct in_addr b, int prefix);

/* "A.B.C.D/P" (or "A.B.C.D", prefix -1) */
int setup_parse_cidr(const char *s, struct in_addr *addr, int *prefix, char *err, size_t errlen);
int setup_parse_ipv4(const char *s, struct in_addr *addr);
/* A comma-separated list of IPv4 addresses, 1..CFG_MAX_NETS. */
int setup_parse_addr_list(const char *what, const char *s, struct in_addr *out, int *n, char *err,
			  size_t errlen);
/* A cluster or node name: 1-63 of A-Z a-z 0-9 - _ . */
int setup_check_name(const char *what, const char *s, char *err, size_t errlen);

struct setup_cluster {
	char name[CFG_NAME_MAX];
	char node[2][CFG_NAME_MAX];
	int nnets;
	struct in_addr addr[2][CFG_MAX_NETS];
	struct in_addr vip;
	int vip_prefix;
	char vip_if[2][IF_NAMESIZE];
	enum setup_console console;
	char repl_dirs[1024];           /* "" or the comma-separated [replication] dirs */
	char aside_dir[PATH_MAX];       /* "" or [replication] aside_dir */
};

/* The config text of node self (0 or 1), malloc'd. */
char *setup_config_text(const struct setup_cluster *c, int self, const struct setup_paths *p);

/* The files being written: a private directory next to the config, put in
 * place by renames once everything is ready. */
struct setup_stage {
	char dir[PATH_MAX];
	bool installed[5];
};
int stage_open(struct setup_stage *s, const struct setup_paths *p, char *err, size_t errlen);
/* rel: a name in the stage, "pki/NAME" for the certificates. */
int stage_write(struct setup_stage *s, const char *rel, const void *buf, size_t len, mode_t mode, char *err,
		size_t errlen);
/* The stage's path of rel. */
bool stage_path(const struct setup_stage *s, const char *rel, char out[PATH_MAX]);
/* Checks that none of the targets exists. */
int setup_check_free(const struct setup_paths *p, char *err, size_t errlen);
/* Renames the stage's files into place (config last); undoes what it did
 * on failure. */
int stage_install(struct setup_stage *s, const struct setup_paths *p, char *err, size_t errlen);
/* Removes what stage_install put in place (a failed check after it). */
void stage_uninstall(struct setup_stage *s, const struct setup_paths *p);
/* Removes the stage directory and what is left in it. */
void stage_discard(struct setup_stage *s);
/* rm -r of a directory of ours (never follows links); 0 if it is gone. */
int setup_rm_tree(const char *path);

/* ---- vigilctl_setup_chan.c ---- */

struct ssl_st;
struct ssl_ctx_st;

struct setup_chan {
	int fd;
	struct ssl_st *ssl;
	struct ssl_ctx_st *ctx;
	char peer[INET_ADDRSTRLEN];
};

int setup_code_make(const unsigned char keyhash[32], const unsigned char rnd[SETUP_CODE_RAND_BYTES],
		    char out[SETUP_CODE_TEXT]);
/* Upper case, '-' and blanks dropped: out = the 20 characters. */
int setup_code_normalize(const char *in, char out[SETUP_CODE_CHARS + 1], char *err, size_t errlen);
/* Whether the code's first part is this key hash's. */
bool setup_code_fits_key(const char norm[SETUP_CODE_CHARS + 1], const unsigned char keyhash[32]);
/* Constant time: whether two normalized codes are the same. */
bool setup_code_equal(const char *a, const char *b);
/* SHA-256 of a certificate file's public key (DER SubjectPublicKeyInfo). */
int setup_cert_keyhash(const char *certfile, unsigned char out[32], char *err, size_t errlen);

void setup_chan_init(struct setup_chan *c);
void setup_chan_close(struct setup_chan *c);
/* Client: TCP connect with a timeout, TLS 1.3, the server's key hash into
 * keyhash (the certificate itself is not trusted: the code vouches). */
int setup_chan_connect(struct setup_chan *c, struct in_addr host, uint16_t port, unsigned char keyhash[32],
		       char *err, size_t errlen);
/* Server: a TLS context with this key and certificate. */
struct ssl_ctx_st *setup_chan_server_ctx(const char *keyfile, const char *certfile, char *err, size_t errlen);
int setup_chan_accept(struct setup_chan *c, struct ssl_ctx_st *ctx, int fd, char *err, size_t errlen);
/* One message: a 4-byte big-endian length and a JSON object. */
int setup_chan_send(struct setup_chan *c, json_t *msg, char *err, size_t errlen);
json_t *setup_chan_recv(struct setup_chan *c, char *err, size_t errlen);

/* ---- vigilctl_setup_agent.c ---- */

struct setup_agent_params {
	char code[SETUP_CODE_CHARS + 1];
	enum setup_console console;
	char hash[256];
	struct in_addr listen;
	uint16_t port;
	unsigned timeout_s;
};

/* Starts the detached agent; returns once it listens (or says why not). */
int setup_agent_spawn(const struct setup_paths *p, const struct setup_agent_params *a, pid_t *pid, char *err,
		      size_t errlen);
/* `vigilctl setup agent`: the agent itself (params on fd 3). */
int setup_agent_main(const struct setup_paths *p);

/* ---- vigilctl_setup_proc.c ---- */

/* The pid in the agent's pid file if that process is a live setup agent,
 * else 0. */
pid_t setup_agent_pid(const struct setup_paths *p);
/* Sleeps ms, through signals. */
void setup_nap(unsigned ms);
/* SIGTERM, then SIGKILL after wait_ms; 0 once it is gone. */
int setup_kill_wait(pid_t pid, unsigned wait_ms, const char *what);
/* Exists and is not a zombie. */
bool setup_proc_alive(pid_t pid);
/* In this process's mount and network namespaces. */
bool setup_proc_same_ns(pid_t pid);
/* /proc/PID/comm. */
int setup_proc_comm(pid_t pid, char *out, size_t outlen);
/* The vigild serving run_dir/vigild.sock (SO_PEERCRED), else 0. */
pid_t setup_vigild_sock_pid(const char *run_dir);
/* Processes named comm in this process's namespaces (config: only those
 * whose -c names it; NULL: any). At most max. */
int setup_find_procs(const char *comm, const char *config, pid_t *out, int max);
/* One request to the local vigild; its "result" or NULL and err. */
json_t *setup_vigild_call(const char *run_dir, json_t *req, char *err, size_t errlen);
/* vigild -c config (it detaches), then waits until it answers. */
int setup_start_vigild(const char *config, const char *run_dir, char *err, size_t errlen);

/* ---- vigilctl_setup.c ---- */

/* The config in place loads (secret and all) and makes this machine node;
 * else err says why. */
int setup_check_installed(const struct setup_paths *p, const char *node, char *err, size_t errlen);
/* The config's run_dir (malloc'd), or NULL. */
char *setup_run_dir(const char *config);

/* ---- commands ---- */

int setup_primary(const struct setup_paths *p, int argc, char **argv);
int setup_remove(const struct setup_paths *p, int argc, char **argv);

#endif
