/* vigilctl: the cluster secret as a needle searched for in each line. */
#include "vigilctl_redact.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"
#include "common/util.h"

int redact_load(struct redact *r, const char *secret_file, char *note, size_t notelen)
{
	size_t len, best = 0, best_len = 0;
	char *buf;
	int err, rc = -1;

	if (!*secret_file) {
		snprintf(note, notelen, "skipped: no secret_file in the config");
		return -1;
	}
	if ((err = read_file(secret_file, CFG_SECRET_MAX + 1, &buf, &len)) < 0) {
		snprintf(note, notelen, "skipped: cannot read %s: %s", secret_file,
			 err == -EFBIG ? "larger than any valid secret" : strerror(-err));
		return -1;
	}
	/* As config.c reads it: one trailing newline is not part of it. */
	if (len && buf[len - 1] == '\n')
		len--;
	if (len < CFG_SECRET_MIN) {
		snprintf(note, notelen, "skipped: %s holds %zu bytes, fewer than any valid secret (%d)",
			 secret_file, len, CFG_SECRET_MIN);
		goto out;
	}
	/* Lines are what is redacted: search for the longest newline-free run
	 * of the secret; a line holding it cannot be left whole. */
	for (size_t i = 0; i < len;) {
		const char *nl = memchr(buf + i, '\n', len - i);
		size_t n = nl ? (size_t)(nl - (buf + i)) : len - i;

		if (n > best_len) {
			best = i;
			best_len = n;
		}
		i += n + 1;
	}
	if (!best_len || !(r->needle = malloc(best_len))) {
		snprintf(note, notelen, "skipped: %s", best_len ? "out of memory" : "the secret is only newlines");
		goto out;
	}
	memcpy(r->needle, buf + best, best_len);
	r->needle_len = best_len;
	rc = 0;
out:
	explicit_bzero(buf, len);
	free(buf);
	return rc;
}

bool redact_hit(struct redact *r, const char *line, size_t n)
{
	if (!r->needle || !memmem(line, n, r->needle, r->needle_len))
		return false;
	r->nredacted++;
	return true;
}

void redact_free(struct redact *r)
{
	if (r->needle) {
		explicit_bzero(r->needle, r->needle_len);
		free(r->needle);
	}
	r->needle = NULL;
	r->needle_len = 0;
}
