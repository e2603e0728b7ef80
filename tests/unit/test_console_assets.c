/* The web console's files embedded in vigild (src/console/assets.c and the
 * table scripts/embed-assets.py generates). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "console/assets.h"

static const struct {
	const char *path;
	const char *type;
} expected[] = {
	{ "/index.html", "text/html; charset=utf-8" },
	{ "/app.js", "text/javascript; charset=utf-8" },
	{ "/core.js", "text/javascript; charset=utf-8" },
	{ "/views.js", "text/javascript; charset=utf-8" },
	{ "/menu.js", "text/javascript; charset=utf-8" },
	{ "/app.css", "text/css; charset=utf-8" },
	{ "/favicon.svg", "image/svg+xml" },
	{ "/i18n/en.json", "application/json" },
	{ "/i18n/fr.json", "application/json" },
	{ "/i18n/ja.json", "application/json" },
};
#define NEXPECTED (sizeof(expected) / sizeof(expected[0]))

static size_t table_size(void)
{
	size_t n = 0;

	while (console_assets[n].path)
		n++;
	return n;
}

static void test_every_asset_found(void **state)
{
	(void)state;
	assert_int_equal(table_size(), NEXPECTED);
	for (size_t i = 0; i < NEXPECTED; i++) {
		const struct console_asset *a = console_asset_find(expected[i].path);

		assert_non_null(a);
		assert_string_equal(a->path, expected[i].path);
		assert_string_equal(a->type, expected[i].type);
		assert_true(a->len > 0);
		/* The generator puts a NUL past the end; len does not count it. */
		assert_int_equal(a->data[a->len], 0);
		assert_int_equal(strlen((const char *)a->data), a->len);
	}
	for (const struct console_asset *a = console_assets; a->path; a++)
		assert_ptr_equal(console_asset_find(a->path), a);
}

static void test_root_is_index(void **state)
{
	const struct console_asset *root = console_asset_find("/");
	const char *html;

	(void)state;
	assert_non_null(root);
	assert_ptr_equal(root, console_asset_find("/index.html"));
	html = (const char *)root->data;
	assert_non_null(strstr(html, "<!DOCTYPE html>"));
	/* Everything the page loads is served by vigild itself; app.js is an ES
	 * module that imports the other scripts. */
	assert_non_null(strstr(html, "<script type=\"module\" src=\"/app.js\">"));
	assert_non_null(strstr(html, "href=\"/app.css\""));
	assert_null(strstr(html, "http://"));
	assert_null(strstr(html, "https://"));
	for (const struct console_asset *a = console_assets; a->path; a++) {
		if (!strcmp(a->type, "text/javascript; charset=utf-8"))
			assert_null(strstr((const char *)a->data, "https://"));
	}
	assert_null(strstr((const char *)console_asset_find("/app.css")->data, "https://"));
}

static void test_unknown_paths(void **state)
{
	static const char *const bad[] = {
		"", "/nope", "/../x", "/../index.html", "/./index.html", "//index.html", "index.html",
		"/index.html/", "/INDEX.HTML", "/index.html?x=1", "/i18n", "/i18n/", "/i18n/de.json",
		"/i18n/../app.js", "/app.js\n", "/%2e%2e/x",
	};

	(void)state;
	assert_null(console_asset_find(NULL));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (console_asset_find(bad[i]))
			fail_msg("\"%s\" should find nothing", bad[i]);
	}
}

static json_t *load_strings(const char *lang)
{
	char path[64];
	const struct console_asset *a;
	json_error_t err;
	json_t *root, *strings;

	snprintf(path, sizeof(path), "/i18n/%s.json", lang);
	a = console_asset_find(path);
	assert_non_null(a);
	root = json_loadb((const char *)a->data, a->len, 0, &err);
	if (!root)
		fail_msg("%s: line %d: %s", path, err.line, err.text);
	assert_true(json_is_object(root));
	assert_string_equal(json_string_value(json_object_get(root, "lang")), lang);
	strings = json_object_get(root, "strings");
	assert_true(json_is_object(strings));
	json_incref(strings);
	json_decref(root);
	return strings;
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* The {name} placeholders of S, sorted and joined, so languages compare. */
static void placeholders(const char *s, char *out, size_t len)
{
	const char *p = s, *q;
	char names[16][32];
	int n = 0;

	while ((p = strchr(p, '{')) && (q = strchr(p, '}')) && n < 16) {
		snprintf(names[n++], sizeof(names[0]), "%.*s", (int)(q - p - 1), p + 1);
		p = q + 1;
	}
	qsort(names, (size_t)n, sizeof(names[0]), cmp_name);
	out[0] = '\0';
	for (int i = 0; i < n; i++) {
		strncat(out, names[i], len - strlen(out) - 1);
		strncat(out, ",", len - strlen(out) - 1);
	}
}

static void test_i18n_same_keys(void **state)
{
	static const char *const langs[] = { "fr", "ja" };
	json_t *en = load_strings("en");
	const char *key;
	json_t *v;

	(void)state;
	assert_true(json_object_size(en) > 50);
	json_object_foreach(en, key, v) {
		assert_true(json_is_string(v));
		assert_true(json_string_length(v) > 0);
	}
	for (size_t i = 0; i < sizeof(langs) / sizeof(langs[0]); i++) {
		json_t *tr = load_strings(langs[i]);
		size_t same = 0;

		json_object_foreach(en, key, v) {
			json_t *t = json_object_get(tr, key);
			char pe[256], pt[256];

			if (!json_is_string(t) || !json_string_length(t))
				fail_msg("%s.json: \"%s\" is missing or empty", langs[i], key);
			placeholders(json_string_value(v), pe, sizeof(pe));
			placeholders(json_string_value(t), pt, sizeof(pt));
			if (strcmp(pe, pt))
				fail_msg("%s.json: \"%s\" has placeholders {%s}, en.json {%s}", langs[i], key, pt, pe);
			same += !strcmp(json_string_value(v), json_string_value(t));
		}
		json_object_foreach(tr, key, v) {
			if (!json_object_get(en, key))
				fail_msg("%s.json: \"%s\" is not in en.json", langs[i], key);
		}
		/* A few words are the same in French ("Actions", "Version"), not the bulk. */
		if (same > 12)
			fail_msg("%s.json: %zu strings are left in English", langs[i], same);
		json_decref(tr);
	}
	json_decref(en);
}

static void test_i18n_samples(void **state)
{
	json_t *fr = load_strings("fr"), *ja = load_strings("ja"), *en = load_strings("en");

	(void)state;
	assert_string_equal(json_string_value(json_object_get(en, "view_monitoring")), "Monitoring");
	assert_string_equal(json_string_value(json_object_get(fr, "view_monitoring")), "Surveillance");
	assert_string_equal(json_string_value(json_object_get(ja, "view_monitoring")), "監視");
	assert_string_equal(json_string_value(json_object_get(fr, "view_control")), "Contrôle");
	assert_string_equal(json_string_value(json_object_get(ja, "view_control")), "制御");
	json_decref(fr);
	json_decref(ja);
	json_decref(en);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_asset_found),
		cmocka_unit_test(test_root_is_index),
		cmocka_unit_test(test_unknown_paths),
		cmocka_unit_test(test_i18n_same_keys),
		cmocka_unit_test(test_i18n_samples),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
