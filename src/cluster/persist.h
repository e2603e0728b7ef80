/* The node's persistent state (STATE_DIR/node.json), so that a restarted
 * vigild knows what it was doing. Saves happen on a writer thread with
 * latest-wins semantics: the loop never waits for the disk. */
#ifndef VIGIL_PERSIST_H
#define VIGIL_PERSIST_H

#include <stdbool.h>
#include <stdint.h>

#include "common/config.h"

enum boot_mode { BOOT_KEEP, BOOT_ON, BOOT_OFF };
const char *boot_mode_str(enum boot_mode b);
int boot_mode_parse(const char *s, enum boot_mode *out);

#define PERSIST_MAX_FAILOVERS 64

struct persist_data {
	char state[16];           /* sm_state_str() of the last state */
	bool admin_started;       /* last command was start (not stop) */
	enum boot_mode boot;
	bool failover_off;        /* vigilctl failover off */
	bool checkers_off;        /* vigilctl checkers off */
	bool errd_suspended;      /* vigilctl errd suspend */
	int nfailovers;           /* automatic failovers this node counted (wall ms), oldest first */
	uint64_t failovers[PERSIST_MAX_FAILOVERS];
	uint64_t term;
	uint64_t incarnation;
	uint64_t peer_incarnation; /* the latest heard: older ones are replays */
	char boot_id[40];         /* kernel boot the resources were started in */
	bool vip_held;
	int nrunning;
	char running[CFG_MAX_RESOURCES][CFG_NAME_MAX];
};

/* 0; -ENOENT if there is none yet; -EINVAL (logged) if it is unreadable. */
int persist_load(const char *path, struct persist_data *out);
/* Synchronous save: only at startup. 0 or -errno. */
int persist_save_now(const char *path, const struct persist_data *d);
/* Queues a save for the writer thread. */
void persist_save(const char *path, const struct persist_data *d);
/* Waits for queued saves, stops the thread. */
void persist_flush(void);

/* This kernel's boot id ("" if unknown). */
void persist_boot_id(char out[40]);

#endif
