/* vigilctl: reading a new console password (vigilctl password, setup
 * secondary). */
#ifndef VIGIL_VIGILCTL_PASSWORD_H
#define VIGIL_VIGILCTL_PASSWORD_H

#include <stddef.h>

/* Twice without echo on a terminal (prompt, then "Again: "), else one line
 * of stdin. -1 when the two differ or nothing was given: said on stderr
 * as "WHO: ...; nothing changed". out is NUL-terminated, newline cut. */
int read_new_password(const char *who, const char *prompt, char *out, size_t outlen);

#endif
