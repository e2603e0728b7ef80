#include "api/auth.h"

#include <argon2.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"

/* argon2id at RFC 9106's second recommended setting (64 MiB, 3 passes). */
#define ARGON_T 3
#define ARGON_M_KIB 65536
#define ARGON_P 1
#define ARGON_SALT 16
#define ARGON_HASH 32
#define HASH_MAX 256

#define PW_MIN 6
#define PW_MAX 32

#define SESSIONS_MAX 64
#define CLIENTS_MAX 128
#define QUEUE_MAX 8
/* A client address is locked out after FAILS_LOCK failures within
 * FAIL_WINDOW_MS; each lockout lasts twice the last one, up to LOCK_MAX_MS. */
#define FAIL_WINDOW_MS (5u * 60 * 1000)
#define FAILS_LOCK 10
#define LOCK_FIRST_MS (60u * 1000)
#define LOCK_MAX_MS (15u * 60 * 1000)
/* And everybody is, after this many failures in a minute from anywhere. */
#define GLOBAL_FAILS_MINUTE 60
#define GLOBAL_LOCK_MS (60u * 1000)

enum job_kind { JOB_VERIFY, JOB_HASH_WRITE, JOB_WRITE };

struct auth_pending {
	struct auth *a;
	struct auth_pending *next;
	enum job_kind kind;
	bool user_ok;
	char client[64];
	char pw[PW_MAX * 4 + 1];        /* long enough to hold a too-long one's prefix */
	size_t pwlen;
	char hash[HASH_MAX];
	/* results */
	enum auth_result result;
	char why[160];
	auth_login_cb login_cb;
	auth_done_cb done_cb;
	void *arg;
	bool cancelled;
};

struct session {
	char sid[AUTH_TOKEN_LEN + 1];
	char csrf[AUTH_TOKEN_LEN + 1];
	uint64_t created_ms, last_ms;
};

struct client_fails {
	char addr[64];
	unsigned fails;
	uint64_t first_ms, locked_until_ms, last_lock_ms, seen_ms;
};

struct auth {
	char path[4096];
	char last_hash[HASH_MAX];
	struct event *ev;
	int pipe_r, pipe_w;
	pthread_t thread;
	bool thread_ok;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct auth_pending *head, *tail;   /* jobs for the worker */
	int queued;                          /* jobs not yet answered */
	bool stopping;
	struct session sessions[SESSIONS_MAX];
	struct client_fails clients[CLIENTS_MAX];
	uint64_t global_first_ms, global_locked_until_ms;
	unsigned global_fails;
};

const char *auth_result_str(enum auth_result r)
{
	switch (r) {
	case AUTH_OK: return "ok";
	case AUTH_BAD: return "bad";
	case AUTH_THROTTLED: return "throttled";
	case AUTH_NO_PASSWORD: return "no-password";
	case AUTH_BUSY: return "busy";
	case AUTH_ERROR: return "error";
	}
	return "?";
}

const char *auth_password_rule(const char *pw)
{
	size_t n = pw ? strlen(pw) : 0;

	if (n < PW_MIN || n > PW_MAX)
		return "the password must be 6 to 32 characters long";
	for (size_t i = 0; i < n; i++) {
		char c = pw[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      strchr("()*_-.", c)))
			return "the password may hold only letters, digits and ( ) * _ - .";
	}
	return NULL;
}

const char *auth_hash_check(const char *hash)
{
	size_t n = hash ? strlen(hash) : 0;

	if (n == 0 || n >= HASH_MAX)
		return "not an argon2id hash (empty or too long)";
	if (strncmp(hash, "$argon2id$", 10))
		return "not an argon2id hash (it must start with $argon2id$)";
	for (size_t i = 0; i < n; i++)
		if (!((hash[i] >= 'a' && hash[i] <= 'z') || (hash[i] >= 'A' && hash[i] <= 'Z') ||
		      (hash[i] >= '0' && hash[i] <= '9') || strchr("$=,+/", hash[i])))
			return "not an argon2id hash (unexpected character)";
	return NULL;
}

int auth_hash_password(const char *pw, char *out, size_t outlen)
{
	uint8_t salt[ARGON_SALT];
	int r;

	if (random_bytes(salt, sizeof(salt)) < 0)
		return -1;
	r = argon2id_hash_encoded(ARGON_T, ARGON_M_KIB, ARGON_P, pw, strlen(pw), salt, sizeof(salt),
	                          ARGON_HASH, out, outlen);
	if (r != ARGON2_OK) {
		log_error("password: argon2id: %s", argon2_error_message(r));
		return -1;
	}
	return 0;
}

int auth_verify_password(const char *hash, const char *pw)
{
	return argon2id_verify(hash, pw, strlen(pw)) == ARGON2_OK ? 0 : -1;
}

static void tokenize(char out[AUTH_TOKEN_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	uint8_t b[AUTH_TOKEN_LEN / 2];

	/* Without randomness there is no safe session: cannot happen with a
	 * working kernel (getrandom). */
	if (random_bytes(b, sizeof(b)) < 0)
		abort();
	for (size_t i = 0; i < sizeof(b); i++) {
		out[2 * i] = hex[b[i] >> 4];
		out[2 * i + 1] = hex[b[i] & 15];
	}
	out[AUTH_TOKEN_LEN] = '\0';
}

/* ---- worker thread ---- */

static int read_hash(const char *path, char *out, size_t outlen, char *why, size_t whylen)
{
	char *buf = NULL;
	size_t len = 0;
	const char *bad;

	if (read_file(path, HASH_MAX, &buf, &len) < 0) {
		snprintf(why, whylen, "no password set (%.60s: %s): run vigilctl password", path, strerror(errno));
		free(buf);
		return -1;
	}
	while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		buf[--len] = '\0';
	bad = auth_hash_check(buf);
	if (bad) {
		snprintf(why, whylen, "%.60s: %s", path, bad);
		free(buf);
		return -1;
	}
	snprintf(out, outlen, "%s", buf);
	free(buf);
	return 0;
}

static void run_job(struct auth *a, struct auth_pending *p)
{
	char hash[HASH_MAX], line[HASH_MAX + 1];

	switch (p->kind) {
	case JOB_VERIFY:
		if (read_hash(a->path, hash, sizeof(hash), p->why, sizeof(p->why)) < 0) {
			p->result = AUTH_NO_PASSWORD;
			break;
		}
		/* Verified even for a wrong user name: the answer takes as long. */
		p->result = auth_verify_password(hash, p->pw) == 0 && p->user_ok ? AUTH_OK : AUTH_BAD;
		break;
	case JOB_HASH_WRITE:
		if (auth_hash_password(p->pw, p->hash, sizeof(p->hash)) < 0) {
			p->result = AUTH_ERROR;
			snprintf(p->why, sizeof(p->why), "the password could not be hashed");
			break;
		}
		/* fall through */
	case JOB_WRITE:
		snprintf(line, sizeof(line), "%s\n", p->hash);
		if (write_file_atomic(a->path, line, strlen(line), 0600) < 0) {
			p->result = AUTH_ERROR;
			snprintf(p->why, sizeof(p->why), "%.80s: %s", a->path, strerror(errno));
			break;
		}
		p->result = AUTH_OK;
		break;
	}
	OPENSSL_cleanse(p->pw, sizeof(p->pw));
}

static void *worker(void *arg)
{
	struct auth *a = arg;

	pthread_mutex_lock(&a->lock);
	for (;;) {
		struct auth_pending *p;

		while (!a->head && !a->stopping)
			pthread_cond_wait(&a->cond, &a->lock);
		if (a->stopping)
			break;
		p = a->head;
		a->head = p->next;
		if (!a->head)
			a->tail = NULL;
		pthread_mutex_unlock(&a->lock);
		run_job(a, p);
		/* A pointer is 8 bytes, under PIPE_BUF: the write is atomic. */
		while (write(a->pipe_w, &p, sizeof(p)) < 0 && errno == EINTR)
			;
		pthread_mutex_lock(&a->lock);
	}
	pthread_mutex_unlock(&a->lock);
	return NULL;
}

/* ---- throttling (loop only) ---- */

static struct client_fails *client_of(struct auth *a, const char *addr, bool create)
{
	struct client_fails *oldest = &a->clients[0];

	for (int i = 0; i < CLIENTS_MAX; i++) {
		if (a->clients[i].addr[0] && !strcmp(a->clients[i].addr, addr))
			return &a->clients[i];
		if (a->clients[i].seen_ms < oldest->seen_ms)
			oldest = &a->clients[i];
	}
	if (!create)
		return NULL;
	memset(oldest, 0, sizeof(*oldest));
	snprintf(oldest->addr, sizeof(oldest->addr), "%s", addr);
	return oldest;
}

static unsigned throttled_for(struct auth *a, const char *addr, uint64_t now)
{
	struct client_fails *c = client_of(a, addr, false);
	uint64_t until = a->global_locked_until_ms;

	if (c && c->locked_until_ms > until)
		until = c->locked_until_ms;
	return until > now ? (unsigned)((until - now + 999) / 1000) : 0;
}

static void note_failure(struct auth *a, const char *addr, uint64_t now)
{
	struct client_fails *c = client_of(a, addr, true);

	c->seen_ms = now;
	if (!c->fails || now - c->first_ms > FAIL_WINDOW_MS) {
		c->fails = 0;
		c->first_ms = now;
		if (now - c->locked_until_ms > FAIL_WINDOW_MS)
			c->last_lock_ms = 0;
	}
	if (++c->fails >= FAILS_LOCK) {
		uint64_t lock = c->last_lock_ms ? c->last_lock_ms * 2 : LOCK_FIRST_MS;

		if (lock > LOCK_MAX_MS)
			lock = LOCK_MAX_MS;
		c->last_lock_ms = lock;
		c->locked_until_ms = now + lock;
		c->fails = 0;
		log_warn("console: %u failed logins from %s: its logins are refused for %llu s", FAILS_LOCK, addr,
		         (unsigned long long)(lock / 1000));
	}
	if (!a->global_fails || now - a->global_first_ms > 60000) {
		a->global_fails = 0;
		a->global_first_ms = now;
	}
	if (++a->global_fails >= GLOBAL_FAILS_MINUTE) {
		a->global_locked_until_ms = now + GLOBAL_LOCK_MS;
		a->global_fails = 0;
		log_warn("console: %u failed logins within a minute: all logins are refused for %u s",
		         GLOBAL_FAILS_MINUTE, GLOBAL_LOCK_MS / 1000);
	}
}

static void note_success(struct auth *a, const char *addr)
{
	struct client_fails *c = client_of(a, addr, false);

	if (c)
		memset(c, 0, sizeof(*c));
}

/* ---- sessions (loop only) ---- */

static struct session *find_session(struct auth *a, const char *sid)
{
	uint64_t now = mono_ms();

	if (!sid || strlen(sid) != AUTH_TOKEN_LEN)
		return NULL;
	for (int i = 0; i < SESSIONS_MAX; i++) {
		struct session *s = &a->sessions[i];

		if (!s->sid[0] || CRYPTO_memcmp(s->sid, sid, AUTH_TOKEN_LEN))
			continue;
		if (now - s->last_ms > AUTH_IDLE_MS || now - s->created_ms > AUTH_MAX_AGE_MS) {
			memset(s, 0, sizeof(*s));
			return NULL;
		}
		return s;
	}
	return NULL;
}

static struct session *new_session(struct auth *a)
{
	struct session *s = &a->sessions[0];
	uint64_t now = mono_ms();

	for (int i = 0; i < SESSIONS_MAX; i++) {
		if (!a->sessions[i].sid[0]) {
			s = &a->sessions[i];
			break;
		}
		if (a->sessions[i].last_ms < s->last_ms)
			s = &a->sessions[i];
	}
	tokenize(s->sid);
	tokenize(s->csrf);
	s->created_ms = s->last_ms = now;
	return s;
}

bool auth_session(struct auth *a, const char *sid, char csrf_out[AUTH_TOKEN_LEN + 1])
{
	struct session *s = find_session(a, sid);

	if (!s)
		return false;
	s->last_ms = mono_ms();
	if (csrf_out)
		memcpy(csrf_out, s->csrf, AUTH_TOKEN_LEN + 1);
	return true;
}

bool auth_csrf_ok(struct auth *a, const char *sid, const char *token)
{
	struct session *s = find_session(a, sid);

	return s && token && strlen(token) == AUTH_TOKEN_LEN && !CRYPTO_memcmp(s->csrf, token, AUTH_TOKEN_LEN);
}

void auth_logout(struct auth *a, const char *sid)
{
	struct session *s = find_session(a, sid);

	if (s)
		memset(s, 0, sizeof(*s));
}

void auth_logout_all(struct auth *a)
{
	memset(a->sessions, 0, sizeof(a->sessions));
}

/* ---- answers (loop) ---- */

static void on_answer(evutil_socket_t fd, short what, void *arg)
{
	struct auth *a = arg;
	struct auth_pending *p;

	(void)what;
	while (read(fd, &p, sizeof(p)) == (ssize_t)sizeof(p)) {
		a->queued--;
		if (p->cancelled) {
			free(p);
			continue;
		}
		if (p->kind == JOB_VERIFY) {
			struct auth_login res = { .result = p->result };

			snprintf(res.why, sizeof(res.why), "%s", p->why);
			if (p->result == AUTH_OK) {
				struct session *s = new_session(a);

				note_success(a, p->client);
				memcpy(res.sid, s->sid, sizeof(res.sid));
				memcpy(res.csrf, s->csrf, sizeof(res.csrf));
			} else if (p->result == AUTH_BAD) {
				note_failure(a, p->client, mono_ms());
			} else {
				log_warn("console: login from %s refused: %s", p->client, p->why);
			}
			p->login_cb(&res, p->arg);
		} else {
			if (p->result == AUTH_OK)
				snprintf(a->last_hash, sizeof(a->last_hash), "%s", p->hash);
			p->done_cb(p->result, p->why, p->arg);
		}
		free(p);
	}
}

static void submit(struct auth *a, struct auth_pending *p)
{
	a->queued++;
	pthread_mutex_lock(&a->lock);
	if (a->tail)
		a->tail->next = p;
	else
		a->head = p;
	a->tail = p;
	pthread_cond_signal(&a->cond);
	pthread_mutex_unlock(&a->lock);
}

struct auth_pending *auth_login(struct auth *a, const char *client, const char *user, const char *pw,
                                auth_login_cb cb, void *arg)
{
	struct auth_pending *p;
	unsigned wait = throttled_for(a, client, mono_ms());

	if (wait || a->queued >= QUEUE_MAX || !a->thread_ok) {
		struct auth_login res = { .result = wait ? AUTH_THROTTLED : AUTH_BUSY, .retry_after_s = wait };

		snprintf(res.why, sizeof(res.why), "%s", wait ? "too many failed logins" : "too many logins under way");
		cb(&res, arg);
		return NULL;
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		struct auth_login res = { .result = AUTH_ERROR, .why = "out of memory" };

		cb(&res, arg);
		return NULL;
	}
	p->a = a;
	p->kind = JOB_VERIFY;
	p->user_ok = user && !strcmp(user, AUTH_USER);
	snprintf(p->client, sizeof(p->client), "%s", client);
	/* A password longer than the rules allow cannot match: a prefix is
	 * verified (same cost) rather than the whole, unbounded input. */
	snprintf(p->pw, sizeof(p->pw), "%s", pw ? pw : "");
	p->login_cb = cb;
	p->arg = arg;
	submit(a, p);
	return p;
}

void auth_login_cancel(struct auth_pending *p)
{
	if (p)
		p->cancelled = true;
}

static int submit_write(struct auth *a, enum job_kind kind, const char *pw, const char *hash,
                        auth_done_cb cb, void *arg)
{
	struct auth_pending *p;

	if (a->queued >= QUEUE_MAX || !a->thread_ok)
		return -1;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -1;
	p->a = a;
	p->kind = kind;
	if (pw)
		snprintf(p->pw, sizeof(p->pw), "%s", pw);
	if (hash)
		snprintf(p->hash, sizeof(p->hash), "%s", hash);
	p->done_cb = cb;
	p->arg = arg;
	submit(a, p);
	return 0;
}

int auth_set_password(struct auth *a, const char *pw, auth_done_cb cb, void *arg)
{
	if (auth_password_rule(pw))
		return -1;
	return submit_write(a, JOB_HASH_WRITE, pw, NULL, cb, arg);
}

int auth_set_hash(struct auth *a, const char *hash, auth_done_cb cb, void *arg)
{
	if (auth_hash_check(hash))
		return -1;
	return submit_write(a, JOB_WRITE, NULL, hash, cb, arg);
}

const char *auth_last_hash(struct auth *a)
{
	return a->last_hash;
}

struct auth *auth_new(struct event_base *base, const char *password_file)
{
	struct auth *a = calloc(1, sizeof(*a));
	int fds[2];

	if (!a)
		return NULL;
	snprintf(a->path, sizeof(a->path), "%s", password_file);
	a->pipe_r = a->pipe_w = -1;
	pthread_mutex_init(&a->lock, NULL);
	pthread_cond_init(&a->cond, NULL);
	if (pipe2(fds, O_CLOEXEC) < 0) {
		log_error("console: pipe: %s", strerror(errno));
		goto fail;
	}
	a->pipe_r = fds[0];
	a->pipe_w = fds[1];
	set_nonblock(a->pipe_r);
	a->ev = event_new(base, a->pipe_r, EV_READ | EV_PERSIST, on_answer, a);
	if (!a->ev || event_add(a->ev, NULL) < 0)
		goto fail;
	if (pthread_create(&a->thread, NULL, worker, a)) {
		log_error("console: cannot start the password worker thread");
		goto fail;
	}
	a->thread_ok = true;
	return a;
fail:
	auth_free(a);
	return NULL;
}

void auth_free(struct auth *a)
{
	struct auth_pending *p;

	if (!a)
		return;
	if (a->thread_ok) {
		pthread_mutex_lock(&a->lock);
		a->stopping = true;
		pthread_cond_signal(&a->cond);
		pthread_mutex_unlock(&a->lock);
		pthread_join(a->thread, NULL);
	}
	/* Jobs not started, then answers not yet read: their callers are
	 * going away with the loop, nobody is called. */
	while ((p = a->head)) {
		a->head = p->next;
		free(p);
	}
	if (a->pipe_r >= 0) {
		while (read(a->pipe_r, &p, sizeof(p)) == (ssize_t)sizeof(p))
			free(p);
	}
	if (a->ev)
		event_free(a->ev);
	if (a->pipe_r >= 0)
		close(a->pipe_r);
	if (a->pipe_w >= 0)
		close(a->pipe_w);
	pthread_mutex_destroy(&a->lock);
	pthread_cond_destroy(&a->cond);
	OPENSSL_cleanse(a->sessions, sizeof(a->sessions));
	free(a);
}
