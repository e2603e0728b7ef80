/* The pool link's messages (src/pool/msg.c): what a builder makes parses
 * back to the same values; every malformed message is refused with an
 * error naming the field; a settings file's data must match its SHA-256
 * and stay under the limit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pool/msg.h"
#include "pool/names.h"

static char *dump(json_t *m)
{
	char *s;

	assert_non_null(m);
	s = json_dumps(m, JSON_COMPACT);
	json_decref(m);
	assert_non_null(s);
	return s;
}

static void parse_ok(const char *s, struct pool_msg *m)
{
	char err[512] = "";

	if (pool_msg_parse(s, strlen(s), m, err, sizeof(err)) != 0)
		fail_msg("refused %s: %s", s, err);
}

static void refused(const char *s, const char *why)
{
	struct pool_msg m;
	char err[512] = "";

	assert_int_equal(pool_msg_parse(s, strlen(s), &m, err, sizeof(err)), -1);
	if (!strstr(err, why))
		fail_msg("%s: error '%s' lacks '%s'", s, err, why);
	assert_int_equal(m.type, PM__COUNT);
	assert_null(m.root);
}

static void builders_round_trip(void **state)
{
	struct pool_msg m;
	char err[256], *s;
	(void)state;

	s = dump(pool_msg_hello("rec1", PA_RECORDER, "north", "south", true, false, "", err, sizeof(err)));
	parse_ok(s, &m);
	assert_int_equal(m.type, PM_HELLO);
	assert_string_equal(m.u.hello.name, "rec1");
	assert_int_equal(m.u.hello.role, PA_RECORDER);
	assert_string_equal(m.u.hello.group, "north");
	assert_string_equal(m.u.hello.secondary_group, "south");
	assert_true(m.u.hello.failover);
	assert_false(m.u.hello.recording);
	assert_int_equal(m.u.hello.version, POOL_PROTO_VERSION);
	pool_msg_free(&m);
	free(s);

	s = dump(pool_msg_hello("sp1", PA_SPARE, "north", "", false, false, "rec1", err, sizeof(err)));
	parse_ok(s, &m);
	assert_int_equal(m.u.hello.role, PA_SPARE);
	assert_string_equal(m.u.hello.serving, "rec1");
	pool_msg_free(&m);
	free(s);

	s = dump(pool_msg_health(42, true, false, 16, 1000, 5000));
	parse_ok(s, &m);
	assert_int_equal(m.type, PM_HEALTH);
	assert_int_equal(m.u.health.seq, 42);
	assert_true(m.u.health.disks_failed);
	assert_false(m.u.health.watchdog_failed);
	assert_int_equal(m.u.health.cameras, 16);
	assert_int_equal(m.u.health.storage_total, 5000);
	pool_msg_free(&m);
	free(s);

	/* Binary data of every length mod 3 survives base64 and the checksum. */
	for (size_t len = 0; len < 8; len++) {
		unsigned char data[8];

		for (size_t i = 0; i < len; i++)
			data[i] = (unsigned char)(0xf0 + i);
		s = dump(pool_msg_settings("masks/cam1.bin", data, len, err, sizeof(err)));
		parse_ok(s, &m);
		assert_int_equal(m.type, PM_SETTINGS);
		assert_string_equal(m.u.settings.file, "masks/cam1.bin");
		assert_int_equal(m.u.settings.len, len);
		assert_memory_equal(m.u.settings.data, data, len);
		pool_msg_free(&m);
		free(s);
	}

	s = dump(pool_msg_command(PM_COPY, 7, "rec1", "10.0.0.11:4811", err, sizeof(err)));
	parse_ok(s, &m);
	assert_int_equal(m.type, PM_COPY);
	assert_int_equal(m.id, 7);
	assert_string_equal(m.u.cmd.recorder, "rec1");
	assert_string_equal(m.u.cmd.address, "10.0.0.11:4811");
	pool_msg_free(&m);
	free(s);

	s = dump(pool_msg_command(PM_RESUME, 8, NULL, NULL, err, sizeof(err)));
	parse_ok(s, &m);
	assert_int_equal(m.type, PM_RESUME);
	assert_int_equal(m.id, 8);
	pool_msg_free(&m);
	free(s);

	s = dump(pool_msg_result(7, false, "disk full"));
	parse_ok(s, &m);
	assert_false(m.u.result.ok);
	assert_string_equal(m.u.result.error, "disk full");
	pool_msg_free(&m);
	free(s);

	/* Unknown fields are ignored: a newer agent may say more. */
	parse_ok("{\"type\":\"resume\",\"id\":3,\"since\":\"later\"}", &m);
	assert_int_equal(m.type, PM_RESUME);
	pool_msg_free(&m);
	parse_ok("{\"type\":\"settings_end\",\"files\":[{\"file\":\"a.xml\",\"sha256\":\""
	         "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"}]}", &m);
	assert_int_equal(m.u.settings_end.n, 1);
	assert_string_equal(m.u.settings_end.files[0].file, "a.xml");
	pool_msg_free(&m);
}

static void builders_refuse_bad_arguments(void **state)
{
	char err[256];
	char *big = calloc(1, POOL_SETTINGS_FILE_MAX + 1);
	(void)state;

	assert_non_null(big);
	assert_null(pool_msg_hello("a b", PA_RECORDER, "north", "", true, false, "", err, sizeof(err)));
	assert_null(pool_msg_hello("rec1", PA_RECORDER, "", "", true, false, "", err, sizeof(err)));
	assert_null(pool_msg_settings("../x", "a", 1, err, sizeof(err)));
	assert_null(pool_msg_settings("x", big, POOL_SETTINGS_FILE_MAX + 1, err, sizeof(err)));
	assert_non_null(strstr(err, "over the limit"));
	assert_null(pool_msg_command(PM_HELLO, 1, "rec1", NULL, err, sizeof(err)));
	assert_null(pool_msg_command(PM_START, 0, "rec1", NULL, err, sizeof(err)));
	assert_null(pool_msg_command(PM_COPY, 1, "rec1", "", err, sizeof(err)));
	free(big);
}

#define SHA_A "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void malformed_messages_are_refused_naming_the_field(void **state)
{
	(void)state;
	refused("{not json", "not valid JSON");
	refused("[1,2]", "not a JSON object");
	refused("{}", "\"type\" is missing");
	refused("{\"type\":5}", "\"type\" must be a string");
	refused("{\"type\":\"explode\"}", "unknown type 'explode'");
	refused("{\"type\":\"resume\",\"id\":1,\"id\":2}", "duplicate");
	refused("{\"type\":\"resume\"}", "a command needs \"id\"");
	refused("{\"type\":\"resume\",\"id\":-1}", "\"id\" must be an integer");
	refused("{\"type\":\"resume\",\"id\":\"1\"}", "\"id\" must be an integer");
	/* hello */
	refused("{\"type\":\"hello\",\"name\":\"rec1\",\"role\":\"recorder\",\"group\":\"north\"}",
	        "\"version\" is missing");
	refused("{\"type\":\"hello\",\"version\":2,\"name\":\"rec1\",\"role\":\"recorder\",\"group\":\"north\"}",
	        "protocol version 2");
	refused("{\"type\":\"hello\",\"version\":1,\"name\":\"../rec\",\"role\":\"recorder\",\"group\":\"n\"}",
	        "\"name\" '../rec' is not a name");
	refused("{\"type\":\"hello\",\"version\":1,\"name\":\"rec1\",\"role\":\"master\",\"group\":\"n\"}",
	        "'master' is neither recorder nor spare");
	refused("{\"type\":\"hello\",\"version\":1,\"name\":\"sp1\",\"role\":\"spare\"}",
	        "spare sp1 is in no group");
	refused("{\"type\":\"hello\",\"version\":1,\"name\":\"sp1\",\"role\":\"spare\",\"group\":\"\"}",
	        "spare sp1 is in no group");
	refused("{\"type\":\"hello\",\"version\":1,\"name\":\"r\",\"role\":\"recorder\",\"group\":\"n\","
	        "\"secondary_group\":\"n\"}", "its group already");
	refused("{\"type\":\"hello\",\"version\":1,\"name\":\"r\",\"role\":\"recorder\",\"group\":\"n\","
	        "\"failover\":\"yes\"}", "\"failover\" must be true or false");
	refused("{\"type\":\"hello\",\"version\":1,\"name\":\"r\",\"role\":\"recorder\",\"group\":\"n\","
	        "\"serving\":\"x\"}", "\"serving\" is for spares");
	refused("{\"type\":\"hello\",\"version\":1,\"name\":\"rec\\u0000x\",\"role\":\"recorder\",\"group\":\"n\"}",
	        "not valid JSON");
	/* health */
	refused("{\"type\":\"health\",\"seq\":1,\"disks_failed\":false}", "\"watchdog_failed\" is missing");
	refused("{\"type\":\"health\",\"seq\":1,\"disks_failed\":0,\"watchdog_failed\":false}",
	        "\"disks_failed\" must be true or false");
	refused("{\"type\":\"health\",\"seq\":1,\"disks_failed\":false,\"watchdog_failed\":false,\"cameras\":-3}",
	        "\"cameras\" must be an integer");
	/* settings */
	refused("{\"type\":\"settings\",\"file\":\"../../etc/shadow\",\"sha256\":\"" SHA_A "\",\"data\":\"\"}",
	        "is not a relative path");
	refused("{\"type\":\"settings\",\"file\":\"/etc/shadow\",\"sha256\":\"" SHA_A "\",\"data\":\"\"}",
	        "is not a relative path");
	refused("{\"type\":\"settings\",\"file\":\"a\",\"sha256\":\"ABC\",\"data\":\"\"}", "64 lower-case hex");
	refused("{\"type\":\"settings\",\"file\":\"a\",\"sha256\":\"" SHA_A "\",\"data\":\"abc\"}",
	        "not a multiple of 4");
	refused("{\"type\":\"settings\",\"file\":\"a\",\"sha256\":\"" SHA_A "\",\"data\":\"ab!=\"}", "not base64");
	refused("{\"type\":\"settings\",\"file\":\"a\",\"sha256\":\"" SHA_A "\",\"data\":\"YWJj\"}",
	        "does not match its \"sha256\"");
	refused("{\"type\":\"settings_end\",\"files\":{}}", "\"files\" must be an array");
	refused("{\"type\":\"settings_end\",\"files\":[{\"file\":\"a\",\"sha256\":\"" SHA_A "\"},"
	        "{\"file\":\"a\",\"sha256\":\"" SHA_A "\"}]}", "listed twice");
	refused("{\"type\":\"settings_end\",\"files\":[{\"file\":\"a/../b\",\"sha256\":\"" SHA_A "\"}]}",
	        "not a relative path");
	refused("{\"type\":\"settings_end\",\"files\":[3]}", "\"files\"[0] must be an object");
	/* results, progress, commands */
	refused("{\"type\":\"result\",\"id\":1,\"ok\":false}", "needs \"error\"");
	refused("{\"type\":\"copy_progress\",\"recorder\":\"r\",\"bytes_done\":5,\"bytes_total\":4,"
	        "\"files_done\":0,\"files_total\":0}", "done is more than total");
	refused("{\"type\":\"copy\",\"id\":1,\"recorder\":\"r\"}", "\"address\" is missing");
	refused("{\"type\":\"start\",\"id\":1}", "\"recorder\" is missing");
	refused("{\"type\":\"welcome\",\"heartbeat_ms\":1,\"detect_timeout_ms\":2000}", "at least 10");
	refused("{\"type\":\"role\",\"role\":\"spare\",\"name\":\"x\"}", "\"group\" is missing");
}

static void oversized_frames_and_settings_are_refused(void **state)
{
	struct pool_msg m;
	char err[256];
	size_t n = POOL_SETTINGS_FILE_MAX + 3;
	size_t b64len = (n + 2) / 3 * 4;
	char *s = malloc(b64len + 200);
	(void)state;

	assert_non_null(s);
	assert_int_equal(pool_msg_parse("{}", POOL_MSG_MAX + 1, &m, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "over the limit"));
	/* A settings file one byte... well, three over the limit: refused
	 * before it is decoded. */
	int off = snprintf(s, 200, "{\"type\":\"settings\",\"file\":\"big\",\"sha256\":\"" SHA_A "\",\"data\":\"");
	memset(s + off, 'A', b64len);
	strcpy(s + off + b64len, "\"}");
	assert_int_equal(pool_msg_parse(s, strlen(s), &m, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "over the limit of"));
	free(s);
}

static void names_and_strings(void **state)
{
	(void)state;
	assert_true(pool_name_ok("rec-1_a.b"));
	assert_false(pool_name_ok(""));
	assert_false(pool_name_ok("a/b"));
	assert_false(pool_name_ok("0123456789012345678901234567890123456789012345678901234567890123"));
	assert_true(pool_name_ok("012345678901234567890123456789012345678901234567890123456789012"));
	for (int t = 0; t < PM__COUNT; t++)
		assert_string_not_equal(pool_msg_type_str((enum pool_msg_type)t), "?");
	assert_string_equal(pool_msg_type_str(PM__COUNT), "?");
	assert_string_equal(pool_agent_role_str(PA_SPARE), "spare");
	assert_string_equal(pool_agent_role_str(PA__COUNT), "?");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(builders_round_trip),
		cmocka_unit_test(builders_refuse_bad_arguments),
		cmocka_unit_test(malformed_messages_are_refused_naming_the_field),
		cmocka_unit_test(oversized_frames_and_settings_are_refused),
		cmocka_unit_test(names_and_strings),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
