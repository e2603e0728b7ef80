/* notify.c with real /bin/sh commands on a real event loop: every test runs
 * the loop in bounded slices, so a bug fails the test instead of hanging it. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "testutil.h"

#include "cluster/notify.h"
#include "common/config.h"
#include "common/log.h"
#include "resource/script.h"

static struct event_base *base;
static char dir[PATH_MAX];
static char rec[PATH_MAX];      /* the recording script */

/* One line per event: the environment, then stdin (without its newline). */
static const char rec_sh[] =
	"in=$(cat)\n"
	"printf '%s|%s|%s|%s|%s|%s|%s|%s|%s|%s\\n' \"$VIGIL_SEQ\" \"$VIGIL_EVENT\" \"$VIGIL_NODE\" "
	"\"$VIGIL_FROM\" \"$VIGIL_TO\" \"$VIGIL_COLOR\" \"$VIGIL_REASON\" \"$VIGIL_CLUSTER\" "
	"\"$VIGIL_TIME\" \"$in\" >> \"$1\"\n";

/* ---- helpers ---- */

struct cfgb {
	struct config cfg;
	char cmd[CFG_MAX_NOTIFY][1024];
};

static struct cfgb *cfg_new(void)
{
	struct cfgb *b = calloc(1, sizeof(*b));

	assert_non_null(b);
	strcpy(b->cfg.cluster_name, "vms");
	return b;
}

static void cfg_add(struct cfgb *b, const char *name, uint32_t timeout_ms, const char *fmt, ...)
{
	int i = b->cfg.nnotify++;
	va_list ap;

	assert_true(i < CFG_MAX_NOTIFY);
	va_start(ap, fmt);
	assert_true(vsnprintf(b->cmd[i], sizeof(b->cmd[i]), fmt, ap) < (int)sizeof(b->cmd[i]));
	va_end(ap);
	strcpy(b->cfg.notify[i].name, name);
	b->cfg.notify[i].command = b->cmd[i];
	b->cfg.notify[i].timeout_ms = timeout_ms;
}

static void path_in(char *buf, const char *name)
{
	FMT(buf, PATH_MAX, "%s/%s", dir, name);
}

static char *slurp(const char *path)
{
	char *buf = NULL;
	size_t len;

	if (read_file(path, 1 << 22, &buf, &len) < 0)
		return NULL;
	return buf;
}

static int count_lines(const char *path)
{
	char *buf = slurp(path);
	int n = 0;

	for (char *p = buf; p && *p; p++)
		n += *p == '\n';
	free(buf);
	return n;
}

struct lines_want {
	const char *path;
	int n;
};

static bool has_lines(void *arg)
{
	struct lines_want *w = arg;

	return count_lines(w->path) >= w->n;
}

static bool wait_lines(const char *path, int n, uint32_t ms)
{
	struct lines_want w = { path, n };

	return run_until(base, has_lines, &w, ms);
}

/* Line i (0-based) of path, without its newline, into buf. */
static void line_of(const char *path, int i, char *buf, size_t len)
{
	char *all = slurp(path), *p = all, *end;

	assert_non_null(all);
	for (int k = 0; k < i; k++) {
		p = strchr(p, '\n');
		assert_non_null(p);
		p++;
	}
	end = strchr(p, '\n');
	assert_non_null(end);
	assert_true((size_t)(end - p) < len);
	memcpy(buf, p, (size_t)(end - p));
	buf[end - p] = '\0';
	free(all);
}

static bool no_scripts(void *arg)
{
	(void)arg;
	return script_running_count() == 0;
}

static void logs_open(const char *name)
{
	char p[PATH_MAX];

	path_in(p, name);
	assert_int_equal(log_open_files(p, 1 << 22), 0);
}

/* Flushes and closes the log files; returns module.log's text. */
static char *logs_close(const char *name)
{
	char p[PATH_MAX];

	log_close_files();
	FMT(p, sizeof(p), "%s/%s/module.log", dir, name);
	return slurp(p);
}

static void send_ev(struct notify *n, const char *type, const char *from, const char *to,
                 const char *reason)
{
	struct notify_event ev = {
		.type = type, .node = "node1", .from = from, .to = to, .color = "green",
		.reason = reason, .time = "2026-11-23T20:41:07.123+01:00",
	};

	notify_event(n, &ev);
}

static void stats(struct notify *n, int i, struct notify_stats *st)
{
	assert_int_equal(notify_get_stats(n, i, st), 0);
}

/* ---- tests ---- */

static void t_order_env_stdin(void **state)
{
	struct cfgb *b = cfg_new();
	char out[PATH_MAX], raw[PATH_MAX], want[2048], got[2048], *all, *log;
	struct notify *n;
	struct notify_stats st;
	static const char *const states[][2] = {
		{ "STOP", "WAIT" }, { "WAIT", "SECOND" }, { "SECOND", "ALONE" }, { "ALONE", "PRIM" },
		{ "PRIM", "SECOND" },
	};

	path_in(out, "order.out");
	path_in(raw, "order.raw");
	cfg_add(b, "", 5000, "/bin/sh %s %s", rec, out);
	cfg_add(b, "raw", 5000, "cat >> %s", raw);
	logs_open("order-logs");
	n = notify_new(&b->cfg);
	assert_non_null(n);
	assert_int_equal(notify_count(n), 2);
	assert_string_equal(notify_label(n, 0), "notify sh");
	assert_string_equal(notify_label(n, 1), "notify raw");
	assert_null(notify_label(n, 2));

	for (int i = 0; i < 5; i++) {
		char reason[64];

		snprintf(reason, sizeof(reason), "step %d: peer lost", i + 1);
		send_ev(n, "transition", states[i][0], states[i][1], reason);
	}
	/* Queued, not started from inside notify_event. */
	assert_int_equal(script_running_count(), 0);
	assert_int_equal(notify_pending(n), 10);
	assert_true(wait_lines(out, 5, 10000));
	assert_true(run_until(base, no_scripts, NULL, 5000));

	all = slurp(raw);
	assert_non_null(all);
	for (int i = 0; i < 5; i++) {
		char json[1024];

		FMT(json, sizeof(json),
		    "{\"type\":\"transition\",\"node\":\"node1\",\"from\":\"%s\",\"to\":\"%s\","
		    "\"color\":\"green\",\"reason\":\"step %d: peer lost\",\"cluster\":\"vms\","
		    "\"time\":\"2026-11-23T20:41:07.123+01:00\",\"seq\":%d}",
		    states[i][0], states[i][1], i + 1, i + 1);
		FMT(want, sizeof(want), "%d|transition|node1|%s|%s|green|step %d: peer lost|vms|"
		    "2026-11-23T20:41:07.123+01:00|%s", i + 1, states[i][0], states[i][1], i + 1, json);
		line_of(out, i, got, sizeof(got));
		assert_string_equal(got, want);
		/* stdin, byte for byte: one JSON line each, in order */
		line_of(raw, i, got, sizeof(got));
		assert_string_equal(got, json);
	}
	assert_int_equal(count_lines(out), 5);
	assert_int_equal(count_lines(raw), 5);
	free(all);
	stats(n, 0, &st);
	assert_int_equal(st.delivered, 5);
	assert_int_equal(st.failed, 0);
	assert_int_equal(st.dropped, 0);
	assert_int_equal(st.queued, 0);
	assert_false(st.running);
	assert_int_equal(notify_pending(n), 0);
	notify_free(n);

	/* one greppable line per event in the module log */
	log = logs_close("order-logs");
	assert_non_null(log);
	assert_non_null(strstr(log, "info  EVENT {\"type\":\"transition\",\"node\":\"node1\","
	                            "\"from\":\"SECOND\",\"to\":\"ALONE\","));
	assert_non_null(strstr(log, "\"seq\":5}\n"));
	free(log);
	free(b);
}

static void t_defaults_and_cleaning(void **state)
{
	struct cfgb *b = cfg_new();
	char out[PATH_MAX], got[8192], reason[1200], bs[200], *log, *line;
	struct notify *n;
	json_t *j;
	json_error_t jerr;
	struct notify_event ev = { .type = "failover" };

	path_in(out, "clean.out");
	cfg_add(b, "", 5000, "cat >> %s", out);
	logs_open("clean-logs");
	n = notify_new(&b->cfg);
	assert_non_null(n);
	assert_string_equal(notify_label(n, 0), "notify cat");

	/* missing fields are "", cluster and time and seq are filled in */
	notify_event(n, &ev);
	/* explicit seq, then the counter follows it */
	ev.seq = 100;
	ev.reason = "caf\xc3\xa9 \xe2\x82\xac line1\nline2\t\x01\xff\xc3";
	ev.cluster = "other";
	notify_event(n, &ev);
	ev.seq = 0;
	/* worst case for the log line: everything long, everything escaped */
	memset(reason, '"', sizeof(reason) - 1);
	reason[sizeof(reason) - 1] = '\0';
	ev.reason = reason;
	ev.node = reason;
	memset(bs, '\\', sizeof(bs) - 1);
	bs[sizeof(bs) - 1] = '\0';
	ev.from = ev.to = ev.color = ev.time = ev.type = bs;
	notify_event(n, &ev);
	assert_true(wait_lines(out, 3, 10000));

	line_of(out, 0, got, sizeof(got));
	j = json_loads(got, 0, &jerr);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "type")), "failover");
	assert_string_equal(json_string_value(json_object_get(j, "node")), "");
	assert_string_equal(json_string_value(json_object_get(j, "reason")), "");
	assert_string_equal(json_string_value(json_object_get(j, "cluster")), "vms");
	assert_int_equal(json_integer_value(json_object_get(j, "seq")), 1);
	{
		/* local time with milliseconds and its offset: 2026-11-23T20:41:07.123+01:00 */
		const char *t = json_string_value(json_object_get(j, "time"));

		assert_int_equal(strlen(t), 29);
		assert_int_equal(t[10], 'T');
		assert_int_equal(t[19], '.');
		assert_true(t[23] == '+' || t[23] == '-');
		assert_int_equal(t[26], ':');
	}
	json_decref(j);

	line_of(out, 1, got, sizeof(got));
	j = json_loads(got, 0, &jerr);
	assert_non_null(j);
	/* valid UTF-8 kept, control characters and invalid bytes replaced */
	assert_string_equal(json_string_value(json_object_get(j, "reason")),
	                    "caf\xc3\xa9 \xe2\x82\xac line1?line2????");
	assert_string_equal(json_string_value(json_object_get(j, "cluster")), "other");
	assert_int_equal(json_integer_value(json_object_get(j, "seq")), 100);
	json_decref(j);

	line_of(out, 2, got, sizeof(got));
	j = json_loads(got, 0, &jerr);
	assert_non_null(j);
	assert_int_equal(json_integer_value(json_object_get(j, "seq")), 101);
	assert_int_equal(strlen(json_string_value(json_object_get(j, "reason"))), NOTIFY_REASON_MAX);
	assert_int_equal(strlen(json_string_value(json_object_get(j, "node"))), CFG_NAME_MAX - 1);
	json_decref(j);
	assert_true(run_until(base, no_scripts, NULL, 5000));
	notify_free(n);

	/* even the worst case is whole in the log: it parses */
	log = logs_close("clean-logs");
	assert_non_null(log);
	line = strstr(log, "EVENT {\"type\":\"\\\\");
	assert_non_null(line);
	*strchr(line, '\n') = '\0';
	j = json_loads(line + strlen("EVENT "), 0, &jerr);
	if (!j)
		fail_msg("EVENT line is not whole JSON: %s", jerr.text);
	assert_int_equal(json_integer_value(json_object_get(j, "seq")), 101);
	json_decref(j);
	free(log);
	free(b);
}

static void t_hang_does_not_delay(void **state)
{
	struct cfgb *b = cfg_new();
	char out[PATH_MAX], got[2048];
	struct notify *n;
	struct notify_stats st;
	uint64_t t0, done_ms;

	path_in(out, "hang.out");
	cfg_add(b, "hang", 300, "case $VIGIL_SEQ in 1) sleep 30;; esac; /bin/sh %s %s", rec, out);
	n = notify_new(&b->cfg);
	assert_non_null(n);

	t0 = mono_ms();
	send_ev(n, "transition", "SECOND", "ALONE", "first");
	run_for(base, 50);
	stats(n, 0, &st);
	assert_true(st.running);
	/* while it hangs, notify_event still returns at once */
	for (int i = 2; i <= 4; i++) {
		uint64_t us = mono_us();

		send_ev(n, "transition", "ALONE", "PRIM", "next");
		us = mono_us() - us;
		if (us >= 5000)
			fail_msg("notify_event took %llu us while a command hangs", (unsigned long long)us);
	}
	stats(n, 0, &st);
	assert_int_equal(st.queued, 3);
	assert_true(wait_lines(out, 3, 10000));
	done_ms = mono_ms() - t0;
	/* held up by the hang's timeout, and by nothing more than that */
	assert_true(done_ms >= 290);
	if (done_ms > 2000)
		fail_msg("events after a hang took %llu ms (timeout 300)", (unsigned long long)done_ms);
	for (int i = 0; i < 3; i++) {
		line_of(out, i, got, sizeof(got));
		assert_int_equal(atoi(got), i + 2);
	}
	assert_true(run_until(base, no_scripts, NULL, 5000));
	stats(n, 0, &st);
	assert_int_equal(st.failed, 1);
	assert_int_equal(st.delivered, 3);
	assert_int_equal(count_lines(out), 3);
	notify_free(n);
	free(b);
}

static void t_failures_logged(void **state)
{
	struct cfgb *b = cfg_new();
	char out[PATH_MAX], flaky[PATH_MAX], got[2048], *log;
	struct notify *n;
	struct notify_stats st;

	path_in(out, "fail.out");
	path_in(flaky, "flaky.out");
	cfg_add(b, "", 5000, "/nonexistent/vigil/on-event");
	cfg_add(b, "rec", 5000, "/bin/sh %s %s", rec, out);
	cfg_add(b, "flaky", 5000, "if [ $VIGIL_SEQ = 1 ]; then echo 'alarm server unreachable' >&2; "
	        "exit 3; fi; /bin/sh %s %s", rec, flaky);
	logs_open("fail-logs");
	n = notify_new(&b->cfg);
	assert_non_null(n);
	assert_string_equal(notify_label(n, 0), "notify on-event");

	for (int i = 0; i < 3; i++)
		send_ev(n, "start_failed", "PRIM", "PRIM", "web: start failed");
	assert_true(wait_lines(out, 3, 10000));
	assert_true(wait_lines(flaky, 2, 10000));
	assert_true(run_until(base, no_scripts, NULL, 5000));

	stats(n, 0, &st);
	assert_int_equal(st.failed, 3);         /* each event was tried */
	assert_int_equal(st.delivered, 0);
	stats(n, 1, &st);
	assert_int_equal(st.delivered, 3);
	stats(n, 2, &st);
	assert_int_equal(st.failed, 1);
	assert_int_equal(st.delivered, 2);
	line_of(flaky, 0, got, sizeof(got));
	assert_int_equal(atoi(got), 2);
	line_of(flaky, 1, got, sizeof(got));
	assert_int_equal(atoi(got), 3);
	notify_free(n);

	log = logs_close("fail-logs");
	assert_non_null(log);
	assert_non_null(strstr(log, "notify on-event: /nonexistent/vigil/on-event: not found (exit 127), "
	                            "for event start_failed seq 1\n"));
	assert_non_null(strstr(log, "notify on-event: /nonexistent/vigil/on-event: not found (exit 127), "
	                            "for event start_failed seq 3\n"));
	assert_non_null(strstr(log, "notify flaky: alarm server unreachable (exit 3), "
	                            "for event start_failed seq 1\n"));
	free(log);
	free(b);
}

static bool fast_done(void *arg)
{
	struct notify_stats st;

	return notify_get_stats(arg, 1, &st) == 0 && st.delivered == 4;
}

static void t_independent_and_free_while_running(void **state)
{
	struct cfgb *b = cfg_new();
	char out[PATH_MAX];
	struct notify *n;
	struct notify_stats st;
	uint64_t t0 = mono_ms();

	path_in(out, "indep.out");
	cfg_add(b, "slow", 3000, "sleep 30");
	cfg_add(b, "fast", 5000, "/bin/sh %s %s", rec, out);
	n = notify_new(&b->cfg);
	assert_non_null(n);
	for (int i = 0; i < 4; i++)
		send_ev(n, "transition", "SECOND", "ALONE", "x");
	/* the fast one does not wait for the slow one */
	assert_true(wait_lines(out, 4, 10000));
	/* its last run wrote the line; its exit may still be on the way */
	assert_true(run_until(base, fast_done, n, 5000));
	assert_true(mono_ms() - t0 < 2500);
	stats(n, 0, &st);
	assert_true(st.running);
	assert_int_equal(st.queued, 3);
	assert_int_equal(st.delivered + st.failed, 0);
	stats(n, 1, &st);
	assert_int_equal(st.delivered, 4);
	assert_int_equal(notify_pending(n), 4);

	/* freed while its command runs: the command ends at its timeout and
	 * nothing calls into the freed notifier (ASan would see it) */
	notify_free(n);
	assert_int_equal(script_running_count(), 1);
	assert_true(run_until(base, no_scripts, NULL, 8000));
	free(b);
}

static void t_overflow_drops_oldest(void **state)
{
	struct cfgb *b = cfg_new();
	char out[PATH_MAX], got[2048], *log;
	struct notify *n;
	struct notify_stats st;

	path_in(out, "over.out");
	cfg_add(b, "q", 400, "case $VIGIL_SEQ in 1) sleep 30;; esac; /bin/sh %s %s", rec, out);
	logs_open("over-logs");
	n = notify_new(&b->cfg);
	assert_non_null(n);
	notify_set_queue_max(n, 4);

	send_ev(n, "transition", "SECOND", "ALONE", "hangs");
	run_for(base, 50);
	stats(n, 0, &st);
	assert_true(st.running);
	for (int i = 2; i <= 10; i++)
		send_ev(n, "transition", "ALONE", "PRIM", "burst");
	stats(n, 0, &st);
	assert_int_equal(st.queued, 4);
	assert_int_equal(st.dropped, 5);        /* 2..6 */
	assert_true(wait_lines(out, 4, 10000));
	assert_true(run_until(base, no_scripts, NULL, 5000));
	for (int i = 0; i < 4; i++) {
		line_of(out, i, got, sizeof(got));
		assert_int_equal(atoi(got), 7 + i);
	}
	assert_int_equal(count_lines(out), 4);
	stats(n, 0, &st);
	assert_int_equal(st.delivered, 4);
	assert_int_equal(st.failed, 1);
	assert_int_equal(st.dropped, 5);
	notify_free(n);

	log = logs_close("over-logs");
	assert_non_null(log);
	assert_non_null(strstr(log, "notify q: 4 events waiting, dropped the oldest (transition seq 2); "
	                            "1 dropped so far\n"));
	assert_non_null(strstr(log, "dropped the oldest (transition seq 6); 5 dropped so far\n"));
	assert_null(strstr(log, "(transition seq 7)"));
	free(log);
	free(b);
}

static void t_without_commands(void **state)
{
	struct cfgb *b = cfg_new();
	struct notify *n;
	char *log;
	struct notify_event ev = { .type = "split_brain", .node = "node2" };

	logs_open("none-logs");
	/* NULL config: logging only */
	n = notify_new(NULL);
	assert_non_null(n);
	assert_int_equal(notify_count(n), 0);
	notify_event(n, &ev);
	assert_int_equal(notify_pending(n), 0);
	assert_int_equal(notify_get_stats(n, 0, &(struct notify_stats){ 0 }), -1);
	notify_free(n);

	/* a config without [notify] */
	n = notify_new(&b->cfg);
	assert_non_null(n);
	ev.type = "failover";
	notify_event(n, &ev);
	/* no type: refused, nothing queued */
	ev.type = NULL;
	notify_event(n, &ev);
	notify_event(NULL, &ev);
	notify_event(n, NULL);
	assert_int_equal(script_running_count(), 0);
	notify_free(n);
	notify_free(NULL);

	log = logs_close("none-logs");
	assert_non_null(log);
	assert_non_null(strstr(log, "EVENT {\"type\":\"split_brain\",\"node\":\"node2\",\"from\":\"\","
	                            "\"to\":\"\",\"color\":\"\",\"reason\":\"\",\"cluster\":\"\","));
	assert_non_null(strstr(log, "EVENT {\"type\":\"failover\",\"node\":\"node2\","));
	assert_non_null(strstr(log, "\"cluster\":\"vms\","));
	assert_non_null(strstr(log, "an event without a type"));
	free(log);
	free(b);
}

static void t_needs_script_init(void **state)
{
	struct cfgb *b = cfg_new();

	cfg_add(b, "", 1000, "true");
	script_shutdown();
	assert_null(notify_new(&b->cfg));
	assert_int_equal(script_init(base), 0);
	free(b);
}

/* ---- fixture ---- */

static int setup(void **state)
{
	FILE *f;

	/* As vigild does: a command that does not read its stdin is EPIPE. */
	signal(SIGPIPE, SIG_IGN);
	log_init("test_notify", true, LOG_LVL_ERROR);
	if (tu_mkdtemp(dir, "notify") < 0)
		return -1;
	if (snprintf(rec, sizeof(rec), "%s/rec.sh", dir) >= (int)sizeof(rec))
		return -1;
	f = fopen(rec, "w");
	if (!f || fputs(rec_sh, f) < 0 || fclose(f) != 0)
		return -1;
	base = event_base_new();
	if (!base || script_init(base) < 0)
		return -1;
	script_set_kill_grace(500);
	return 0;
}

/* A failed test may leave the log files open or its commands running:
 * the next one starts clean. */
static int test_teardown(void **state)
{
	log_close_files();
	script_shutdown();
	return script_init(base);
}

static int teardown(void **state)
{
	script_shutdown();
	event_base_free(base);
	tu_rm_rf(dir);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(t_order_env_stdin, test_teardown),
		cmocka_unit_test_teardown(t_defaults_and_cleaning, test_teardown),
		cmocka_unit_test_teardown(t_hang_does_not_delay, test_teardown),
		cmocka_unit_test_teardown(t_failures_logged, test_teardown),
		cmocka_unit_test_teardown(t_independent_and_free_while_running, test_teardown),
		cmocka_unit_test_teardown(t_overflow_drops_oldest, test_teardown),
		cmocka_unit_test_teardown(t_without_commands, test_teardown),
		cmocka_unit_test_teardown(t_needs_script_init, test_teardown),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
