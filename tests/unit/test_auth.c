/* The console's password rules, argon2id hashing, the worker thread's
 * answers, sessions with CSRF tokens and the throttling of failed logins
 * (src/api/auth.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>
#include <unistd.h>

#include "api/auth.h"
#include "testutil.h"

static char dir[PATH_MAX], pwfile[PATH_MAX];

static int setup(void **state)
{
	(void)state;
	if (tu_mkdtemp(dir, "auth") < 0)
		return -1;
	return snprintf(pwfile, sizeof(pwfile), "%s/console.passwd", dir) < (int)sizeof(pwfile) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	tu_rm_rf(dir);
	return 0;
}

static void test_password_rules(void **state)
{
	(void)state;
	assert_null(auth_password_rule("abcdef"));
	assert_null(auth_password_rule("A(b)*c_d-e.9"));
	assert_null(auth_password_rule("12345678901234567890123456789012"));
	assert_non_null(strstr(auth_password_rule("abcde"), "6 to 32"));
	assert_non_null(strstr(auth_password_rule("123456789012345678901234567890123"), "6 to 32"));
	assert_non_null(strstr(auth_password_rule(""), "6 to 32"));
	assert_non_null(strstr(auth_password_rule(NULL), "6 to 32"));
	assert_non_null(strstr(auth_password_rule("pass word"), "letters, digits"));
	assert_non_null(strstr(auth_password_rule("secret!"), "letters, digits"));
	assert_non_null(strstr(auth_password_rule("p\xc3\xa4sswort"), "letters, digits"));
	assert_non_null(strstr(auth_password_rule("abc/def"), "letters, digits"));
}

static void test_hash_and_verify(void **state)
{
	char h1[256], h2[256];

	(void)state;
	assert_int_equal(auth_hash_password("Vigil_2026", h1, sizeof(h1)), 0);
	assert_int_equal(auth_hash_password("Vigil_2026", h2, sizeof(h2)), 0);
	assert_null(auth_hash_check(h1));
	assert_string_not_equal(h1, h2); /* salted */
	assert_non_null(strstr(h1, "m=65536"));
	assert_int_equal(auth_verify_password(h1, "Vigil_2026"), 0);
	assert_int_equal(auth_verify_password(h2, "Vigil_2026"), 0);
	assert_int_equal(auth_verify_password(h1, "Vigil_2027"), -1);
	assert_int_equal(auth_verify_password(h1, ""), -1);
	assert_non_null(auth_hash_check("$argon2i$v=19$m=65536,t=3,p=1$c2FsdA$aGFzaA"));
	assert_non_null(auth_hash_check("plain text"));
	assert_non_null(auth_hash_check("$argon2id$v=19$m=1,t=1,p=1$a b"));
	assert_non_null(auth_hash_check(""));
}

struct got {
	int n;
	struct auth_login login;
	enum auth_result result;
};

static void on_login(const struct auth_login *res, void *arg)
{
	struct got *g = arg;

	g->n++;
	g->login = *res;
}

static void on_done(enum auth_result r, const char *why, void *arg)
{
	struct got *g = arg;

	(void)why;
	g->n++;
	g->result = r;
}

static bool answered(void *arg)
{
	return ((struct got *)arg)->n > 0;
}

static struct auth_login login(struct event_base *base, struct auth *a, const char *client, const char *user,
                               const char *pw)
{
	struct got g = { 0 };

	auth_login(a, client, user, pw, on_login, &g);
	assert_true(run_until(base, answered, &g, 20000));
	assert_int_equal(g.n, 1);
	return g.login;
}

static void test_sessions_and_throttling(void **state)
{
	struct event_base *base = event_base_new();
	struct auth *a;
	struct auth_login r;
	struct got g = { 0 };
	char csrf[AUTH_TOKEN_LEN + 1], sid[AUTH_TOKEN_LEN + 1], hash[256];
	int i;

	(void)state;
	unlink(pwfile);
	a = auth_new(base, pwfile);
	assert_non_null(a);

	/* No password yet: nobody gets in, and it says why. */
	r = login(base, a, "10.0.0.9", "admin", "whatever");
	assert_int_equal(r.result, AUTH_NO_PASSWORD);
	assert_non_null(strstr(r.why, "vigilctl password"));

	/* A password breaking the rules is refused before any work. */
	assert_int_equal(auth_set_password(a, "short", on_done, &g), -1);
	assert_int_equal(auth_set_password(a, "Vigil_2026", on_done, &g), 0);
	assert_int_equal(g.n, 0); /* never from inside the call */
	assert_true(run_until(base, answered, &g, 20000));
	assert_int_equal(g.result, AUTH_OK);
	assert_null(auth_hash_check(auth_last_hash(a)));
	snprintf(hash, sizeof(hash), "%s", auth_last_hash(a));

	r = login(base, a, "10.0.0.9", "admin", "Vigil_2026");
	assert_int_equal(r.result, AUTH_OK);
	assert_int_equal(strlen(r.sid), AUTH_TOKEN_LEN);
	assert_int_equal(strlen(r.csrf), AUTH_TOKEN_LEN);
	assert_string_not_equal(r.sid, r.csrf);
	memcpy(sid, r.sid, sizeof(sid));
	assert_true(auth_session(a, sid, csrf));
	assert_string_equal(csrf, r.csrf);
	assert_true(auth_csrf_ok(a, sid, csrf));
	assert_false(auth_csrf_ok(a, sid, NULL));
	csrf[0] = csrf[0] == 'a' ? 'b' : 'a';
	assert_false(auth_csrf_ok(a, sid, csrf));
	assert_false(auth_session(a, "0000", NULL));
	assert_false(auth_session(a, NULL, NULL));

	/* A wrong user name with the right password is a failure too. */
	assert_int_equal(login(base, a, "10.0.0.9", "root", "Vigil_2026").result, AUTH_BAD);

	/* Ten failures lock the address out, even for the right password;
	 * another address is not locked. */
	for (i = 0; i < 9; i++)
		assert_int_equal(login(base, a, "10.0.0.7", "admin", "nope-nope").result, AUTH_BAD);
	assert_int_equal(login(base, a, "10.0.0.7", "admin", "nope-nope").result, AUTH_BAD);
	r = login(base, a, "10.0.0.7", "admin", "Vigil_2026");
	assert_int_equal(r.result, AUTH_THROTTLED);
	assert_true(r.retry_after_s > 0 && r.retry_after_s <= 60);
	assert_int_equal(login(base, a, "10.0.0.8", "admin", "Vigil_2026").result, AUTH_OK);

	/* The file holds the hash, and a hash written as it is works. */
	{
		char *buf = NULL;
		size_t len = 0;

		assert_int_equal(read_file(pwfile, 4096, &buf, &len), 0);
		assert_non_null(strstr(buf, hash));
		assert_null(strstr(buf, "Vigil_2026"));
		free(buf);
	}
	g.n = 0;
	assert_int_equal(auth_set_hash(a, "not a hash", on_done, &g), -1);
	assert_int_equal(auth_set_hash(a, hash, on_done, &g), 0);
	assert_true(run_until(base, answered, &g, 20000));
	assert_int_equal(g.result, AUTH_OK);

	auth_logout(a, sid);
	assert_false(auth_session(a, sid, NULL));

	/* A login still under way when auth goes away: nothing is called,
	 * nothing leaks (ASan). */
	g.n = 0;
	auth_login(a, "10.0.0.9", "admin", "Vigil_2026", on_login, &g);
	auth_free(a);
	assert_int_equal(g.n, 0);
	event_base_free(base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_password_rules),
		cmocka_unit_test(test_hash_and_verify),
		cmocka_unit_test(test_sessions_and_throttling),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
