/* The parser's state, shared by config.c (sections, keys, values) and
 * config_check.c (checks of the whole file). Internal to src/common. */
#ifndef VIGIL_CONFIG_INT_H
#define VIGIL_CONFIG_INT_H

#include <stdbool.h>
#include <stdio.h>

#include "common/config.h"
#include "common/config_table.h"

struct parse {
	struct config *cfg;
	const char *path;
	FILE *f;
	char *err;
	size_t errlen;
	bool failed;
	int line;                       /* lines read so far: inih's line number */

	int sect;                       /* enum sect of the current section, -1 before the first */
	int sect_line;
	void *base;                     /* what the current section's keys fill */
	int key_line[NKEYS_MAX];           /* where a key was set; reset for each named section */
	int sect_first[S_COUNT];        /* header line of the first section of each kind */
	int count[S_COUNT];

	bool cluster_checked;           /* [cluster]'s required keys (cfg_check_cluster_keys) */
	int secret_line;
	bool skip_secret;
	int vip_addr_line;
	int repl_dirs_line;
	int res_after_line[CFG_MAX_RESOURCES];   /* file order */
};

#define NAME_RULE "use 1 to 63 letters, digits, '-', '_' or '.'"

/* Records the first error as "PATH:LINE: message"; later ones are dropped. */
void cfg_fail(struct parse *p, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
bool cfg_valid_name(const char *s);
/* Index of key name in section s of the key table, or -1. */
int cfg_find_key(int s, const char *name);
int cfg_check_all(struct parse *p);
/* Once per file, when [cluster] was given and the file is a mirror node's
 * (no [pool] yet, or role = master): its required keys. */
int cfg_check_cluster_keys(struct parse *p);
/* At the end of [pool]: which role takes which key, and the sections read
 * before it. */
int cfg_close_pool(struct parse *p);
/* Section s (name: "" or its NAME) opening at line: refused once the file
 * is a pool recorder's or spare's. */
int cfg_pool_refuse_section(struct parse *p, int s, const char *name, int line);
/* Copies the absolute path in into out with no empty, trailing or repeated
 * '/' ("/" stays "/"). -1 if in has a "." or ".." component (out is then
 * still written) or out is too small (out is ""). */
int cfg_norm_path(const char *in, char *out, size_t outlen);
/* inner is outer or lies below it; both normalised. */
bool cfg_path_within(const char *inner, const char *outer);

#endif
