/* vigilctl's text output: the status table and its details, action
 * results, log lines; --json prints the daemon's answer as is. */
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/config.h"
#include "common/util.h"
#include "vigilctl_print.h"

const char *str_or(json_t *o, const char *key, const char *dflt)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : dflt;
}

static const char *yes_no(json_t *v)
{
	return json_is_true(v) ? "yes" : json_is_false(v) ? "no" : "?";
}

/* "web=started db=stopped", or "-". */
static char *resources_text(json_t *node)
{
	json_t *res = json_object_get(node, "resources"), *r;
	char *buf = NULL;
	size_t len = 0, i;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	if (!json_is_array(res) || !json_array_size(res))
		fputs("-", f);
	json_array_foreach(res, i, r)
		fprintf(f, "%s%s=%s", i ? " " : "", str_or(r, "name", "?"), str_or(r, "state", "?"));
	fclose(f);
	return buf;
}

static const char *vip_text(json_t *node)
{
	json_t *vip = json_object_get(node, "vip");

	if (!json_is_object(vip))
		return "-";
	return json_is_true(json_object_get(vip, "held")) ? "held" : "not held";
}

/* Below the table: why each node is where it is, the switches that are
 * not at their default, alarms and checkers. */
static void print_details(json_t *nodes)
{
	json_t *n, *v;
	size_t i, k;

	json_array_foreach(nodes, i, n) {
		const char *name = str_or(n, "name", "?");
		json_t *fo = json_object_get(n, "failover"), *chk = json_object_get(n, "checkers");
		const char *errd = str_or(n, "errd", "active");

		printf("%s: %s\n", name, str_or(n, "reason", ""));
		if (json_is_false(fo) || json_is_false(chk) || strcmp(errd, "active"))
			printf("  switches: failover %s, checkers %s, errd %s\n", json_is_false(fo) ? "off" : "on",
			       json_is_false(chk) ? "off" : "on", errd);
		if (json_object_get(n, "split_brain"))
			printf("  split brain resolved at %s\n", str_or(n, "split_brain", "?"));
		json_array_foreach(json_object_get(n, "alarms"), k, v)
			printf("  ALARM %s: %s\n", str_or(v, "time", "?"), str_or(v, "message", "?"));
		json_array_foreach(json_object_get(n, "checkers_state"), k, v) {
			const char *reason = str_or(v, "reason", "");

			printf("  checker %s (%s): %s, %lld failure(s) in a row, %lld restart(s)%s%s\n",
			       str_or(v, "name", "?"), str_or(v, "type", "?"), str_or(v, "state", "?"),
			       (long long)json_integer_value(json_object_get(v, "failures")),
			       (long long)json_integer_value(json_object_get(v, "restarts")), *reason ? ": " : "", reason);
		}
		v = json_object_get(n, "witness");
		if (json_is_object(v))
			printf("  witness %s %s: %s\n", str_or(v, "mode", "?"), str_or(v, "address", "?"),
			       str_or(v, "state", "?"));
	}
}

/* vigild as a pool recorder or spare (src/pool/agent_ctl.c). */
static void print_agent_status(json_t *a)
{
	const char *role = str_or(a, "role", "?"), *serving = str_or(a, "serving", "");
	json_int_t used = json_integer_value(json_object_get(a, "storage_used"));
	json_int_t total = json_integer_value(json_object_get(a, "storage_total"));

	printf("pool %s %s (group %s", role, str_or(a, "name", "?"), str_or(a, "group", "?"));
	if (*str_or(a, "secondary_group", ""))
		printf(", secondary %s", str_or(a, "secondary_group", ""));
	printf(")\n");
	if (json_is_true(json_object_get(a, "connected")))
		printf("master     %s: connected\n", str_or(a, "master", "?"));
	else
		printf("master     %s: not connected%s%s\n", str_or(a, "master", "?"),
		       *str_or(a, "link", "") ? ": " : "", str_or(a, "link", ""));
	if (!strcmp(role, "spare"))
		printf("recording  %s\n", *serving ? serving : "no (free)");
	else
		printf("recording  %s\n", json_is_true(json_object_get(a, "stood_down")) ? "no (stood down by the master)" :
		       yes_no(json_object_get(a, "recording")));
	printf("health     disks %s, watchdog %s, %" JSON_INTEGER_FORMAT " cameras, storage %" JSON_INTEGER_FORMAT
	       " of %" JSON_INTEGER_FORMAT " MiB\n",
	       json_is_true(json_object_get(a, "disks_failed")) ? "FAILED" : "ok",
	       json_is_true(json_object_get(a, "watchdog_failed")) ? "FAILED" : "ok",
	       json_integer_value(json_object_get(a, "cameras")), used >> 20, total >> 20);
	if (json_is_true(json_object_get(a, "copying")))
		printf("copy-back  running\n");
}

void print_status(json_t *res)
{
	static const char *const head[] = { "NODE", "STATE", "COLOR", "REACHABLE", "RESOURCES", "VIP" };
	enum { NCOL = 6 };
	json_t *nodes = json_object_get(res, "nodes"), *n;
	size_t nn = json_array_size(nodes), i;
	char *cell[CFG_MAX_NODES + 2][NCOL];
	int w[NCOL] = { 0 };
	size_t rows = 0;

	if (json_is_object(json_object_get(res, "pool_agent"))) {
		print_agent_status(json_object_get(res, "pool_agent"));
		return;
	}
	printf("cluster %s\n", str_or(res, "cluster", "?"));
	for (int c = 0; c < NCOL; c++)
		cell[0][c] = strdup(head[c]);
	rows = 1;
	json_array_foreach(nodes, i, n) {
		const char *name = str_or(n, "name", "?");
		bool local = json_is_true(json_object_get(n, "local"));

		if (rows == ARRAY_SIZE(cell))
			break;
		if (asprintf(&cell[rows][0], "%s%s", name, local ? " (local)" : "") < 0)
			cell[rows][0] = NULL;
		cell[rows][1] = strdup(str_or(n, "state", "?"));
		cell[rows][2] = strdup(str_or(n, "color", "?"));
		cell[rows][3] = strdup(yes_no(json_object_get(n, "reachable")));
		cell[rows][4] = resources_text(n);
		cell[rows][5] = strdup(vip_text(n));
		rows++;
	}
	for (size_t r = 0; r < rows; r++)
		for (int c = 0; c < NCOL; c++) {
			if (!cell[r][c])
				cell[r][c] = strdup("?");
			if (cell[r][c] && (int)strlen(cell[r][c]) > w[c])
				w[c] = (int)strlen(cell[r][c]);
		}
	for (size_t r = 0; r < rows; r++) {
		for (int c = 0; c < NCOL; c++) {
			if (c == NCOL - 1)
				printf("%s\n", cell[r][c] ? cell[r][c] : "?");
			else
				printf("%-*s  ", w[c], cell[r][c] ? cell[r][c] : "?");
			free(cell[r][c]);
		}
	}
	if (nn == 0)
		printf("(no nodes)\n");
	print_details(nodes);
}

/* 0, or 1 if some node refused (--all). */
int print_action(json_t *res)
{
	json_t *results = json_object_get(res, "results"), *r;
	size_t i;
	int rc = 0;

	if (!json_is_array(results)) {
		printf("%s\n", str_or(res, "message", "done"));
		return 0;
	}
	json_array_foreach(results, i, r) {
		const char *node = str_or(r, "node", "?");

		if (json_is_true(json_object_get(r, "ok"))) {
			printf("%s\n", str_or(r, "message", "done"));
		} else {
			const char *err = str_or(r, "error", "refused");
			size_t nl = strlen(node);

			/* The daemon's errors usually name the node already. */
			if (!strncmp(err, node, nl) && err[nl] == ':')
				fprintf(stderr, "vigilctl: %s\n", err);
			else
				fprintf(stderr, "vigilctl: %s: %s\n", node, err);
			rc = 1;
		}
	}
	return rc;
}

void print_log(json_t *res)
{
	json_t *lines = json_object_get(res, "lines"), *l;
	size_t i;

	json_array_foreach(lines, i, l) {
		const char *s = json_string_value(l);

		if (s)
			printf("%s\n", s);
	}
}

void print_json(json_t *res)
{
	json_dumpf(res, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	fputc('\n', stdout);
}


/* pool status, queue and log, for people (--json gives the objects). */
void print_pool(const char *what, json_t *res)
{
	json_t *v;
	size_t i;

	if (!strcmp(what, "log")) {
		json_array_foreach(json_object_get(res, "log"), i, v) {
			time_t t = (time_t)(json_integer_value(json_object_get(v, "time_ms")) / 1000);
			char when[32];

			strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", localtime(&t));
			printf("%s  %-8s %-8s %-12s %-12s %-10s %s\n", when, str_or(v, "event", "?"),
			       str_or(v, "result", "?"), str_or(v, "recorder", "-"), *str_or(v, "spare", "") ?
			       str_or(v, "spare", "") : "-", str_or(v, "trigger", "-"), str_or(v, "detail", ""));
		}
		return;
	}
	if (!strcmp(what, "queue")) {
		json_array_foreach(json_object_get(res, "queue"), i, v)
			printf("%zu. %s\n", i + 1, json_string_value(v));
		if (!json_array_size(json_object_get(res, "queue")))
			printf("the queue is empty\n");
		return;
	}
	if (!json_is_true(json_object_get(res, "active"))) {
		printf("the pool master is not running on this node\n");
		return;
	}
	printf("failback %s, after failure %s, detect timeout %lld ms\n", str_or(res, "failback", "?"),
	       str_or(res, "after_failure", "?"), json_integer_value(json_object_get(res, "detect_timeout_ms")));
	printf("%-16s %-13s %-10s %-16s %s\n", "RECORDER", "STATE", "GROUP", "SERVED BY", "LINK");
	json_array_foreach(json_object_get(res, "recorders"), i, v)
		printf("%-16s %-13s %-10s %-16s %s\n", str_or(v, "name", "?"), str_or(v, "state", "?"),
		       str_or(v, "group", "?"), *str_or(v, "served_by", "") ? str_or(v, "served_by", "") : "-",
		       str_or(v, "link", "?"));
	printf("%-16s %-13s %-10s %s\n", "SPARE", "STATE", "GROUP", "SERVING");
	json_array_foreach(json_object_get(res, "spares"), i, v)
		printf("%-16s %-13s %-10s %s\n", str_or(v, "name", "?"), str_or(v, "state", "?"),
		       str_or(v, "group", "?"), *str_or(v, "serving", "") ? str_or(v, "serving", "") : "-");
	if (json_array_size(json_object_get(res, "queue"))) {
		printf("queue:");
		json_array_foreach(json_object_get(res, "queue"), i, v)
			printf(" %s", json_string_value(v));
		printf("\n");
	}
}
