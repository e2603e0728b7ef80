/* Who may use the console and the HTTP API: the `admin` password (an
 * argon2id hash in [console] password_file), sessions with their CSRF
 * tokens, and the throttling of failed logins.
 *
 * Hashing and verifying take a deliberate 50-100 ms and 64 MiB, and read or
 * write a file: they run on one worker thread, never on the event loop;
 * their answers come back through a pipe watched by the loop. */
#ifndef VIGIL_AUTH_H
#define VIGIL_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct auth;

#define AUTH_USER "admin"
#define AUTH_TOKEN_LEN 64                /* hex characters of a session id or CSRF token */
#define AUTH_IDLE_MS (30u * 60 * 1000)
#define AUTH_MAX_AGE_MS (12u * 3600 * 1000)

enum auth_result {
	AUTH_OK,
	AUTH_BAD,            /* wrong user or password */
	AUTH_THROTTLED,      /* too many failures: retry_after_s */
	AUTH_NO_PASSWORD,    /* no password set yet (or its file is unreadable) */
	AUTH_BUSY,           /* too many logins under way */
	AUTH_ERROR,          /* could not hash or write: see the log */
};
const char *auth_result_str(enum auth_result r);

struct auth_login {
	enum auth_result result;
	unsigned retry_after_s;
	char sid[AUTH_TOKEN_LEN + 1];
	char csrf[AUTH_TOKEN_LEN + 1];
	char why[160];
};

typedef void (*auth_login_cb)(const struct auth_login *res, void *arg);
typedef void (*auth_done_cb)(enum auth_result r, const char *why, void *arg);

struct auth *auth_new(struct event_base *base, const char *password_file);
void auth_free(struct auth *a);

/* NULL when pw follows the rules, else the rule it breaks (for a 400). */
const char *auth_password_rule(const char *pw);
/* NULL when hash looks like an argon2id encoded hash, else why not. */
const char *auth_hash_check(const char *hash);

/* Checks user and password off the loop; cb is called once, from the loop,
 * never from inside this call. The handle lets a caller whose client went
 * away forget the callback (auth_login_cancel); it is invalid after cb. */
struct auth_pending;
struct auth_pending *auth_login(struct auth *a, const char *client, const char *user, const char *pw,
                                auth_login_cb cb, void *arg);
void auth_login_cancel(struct auth_pending *p);

/* The session of sid if it lives (its idle time starts again), else NULL.
 * csrf_out: its CSRF token. */
bool auth_session(struct auth *a, const char *sid, char csrf_out[AUTH_TOKEN_LEN + 1]);
/* true when token is sid's CSRF token (constant time). */
bool auth_csrf_ok(struct auth *a, const char *sid, const char *token);
void auth_logout(struct auth *a, const char *sid);
/* Ends every session (after a password change). */
void auth_logout_all(struct auth *a);

/* New password: hashed and written to the file off the loop; cb gets the
 * result and, on AUTH_OK, the hash (for the peer) through auth_last_hash. */
int auth_set_password(struct auth *a, const char *pw, auth_done_cb cb, void *arg);
/* A hash made elsewhere (the peer's): written as it is. */
int auth_set_hash(struct auth *a, const char *hash, auth_done_cb cb, void *arg);
/* The hash most recently written by this process ("" if none). */
const char *auth_last_hash(struct auth *a);

/* Makes an argon2id encoded hash of pw (blocking; for vigilctl and tests).
 * 0 or -1. */
int auth_hash_password(const char *pw, char *out, size_t outlen);
int auth_verify_password(const char *hash, const char *pw);

#endif
