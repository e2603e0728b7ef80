/* vigilctl: finding the lines that hold the cluster secret, so that no copy
 * of them leaves the node. */
#ifndef VIGIL_VIGILCTL_REDACT_H
#define VIGIL_VIGILCTL_REDACT_H

#include <stdbool.h>
#include <stddef.h>

/* What is written in place of such a line. */
#define REDACT_LINE "# [vigil snapshot: line removed, it contained the cluster secret]\n"

struct redact {
	/* The part of the secret searched for in each line; NULL: no check. */
	char *needle;
	size_t needle_len;
	unsigned nredacted;         /* lines found so far */
};

/* Reads secret_file ("" for none) into r, zeroed before. 0: lines are
 * checked from now on; -1: they cannot be, and note says why. */
int redact_load(struct redact *r, const char *secret_file, char *note, size_t notelen);

/* Whether the n bytes of line hold the secret; counts the ones that do. */
bool redact_hit(struct redact *r, const char *line, size_t n);

/* Wipes and frees the needle. */
void redact_free(struct redact *r);

#endif
