/* The pool link's messages (docs/pool-protocol.md): between the master and
 * each recorder or spare, one JSON object per frame. This file checks and
 * decodes them; nothing from the other end is used before it passes.
 *
 * A decoded message points into out->root (strings) and stays valid until
 * pool_msg_free(). Unknown fields are ignored (a newer peer may send more);
 * a known field of the wrong type or out of bounds, a missing required
 * field, an unknown type: the message is refused, err names the field. */
#ifndef VIGIL_POOL_MSG_H
#define VIGIL_POOL_MSG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define POOL_PROTO_VERSION 1
#define POOL_MSG_MAX (24u << 20)                /* a frame: the settings cache's limit plus base64 */
#define POOL_SETTINGS_FILE_MAX (16u << 20)      /* one settings file, decoded */
#define POOL_SETTINGS_FILES_MAX 4096

enum pool_msg_type {
	/* agent -> master */
	PM_HELLO,          /* who it is: name, role, groups; what it records now */
	PM_HEALTH,         /* a heartbeat with the recorder's health */
	PM_SETTINGS,       /* one settings file (opaque), with its SHA-256 */
	PM_SETTINGS_END,   /* the full list of its settings files: the rest are gone */
	PM_RESULT,         /* the answer to a command (by id) */
	PM_COPY_PROGRESS,  /* copy-back progress */
	/* master -> agent */
	PM_WELCOME,        /* hello accepted: heartbeat interval */
	PM_START,          /* spare: record in a recorder's place, with its settings */
	PM_STOP,           /* spare: stop recording for a recorder */
	PM_RESUME,         /* recorder: record again */
	PM_COPY,           /* spare: copy a recorder's recordings home */
	PM_ROLE,           /* after a swap: your new role, name and group */
	PM_ERROR,          /* refused; the connection closes */
	PM__COUNT
};
const char *pool_msg_type_str(enum pool_msg_type t);

enum pool_agent_role { PA_RECORDER, PA_SPARE, PA__COUNT };
const char *pool_agent_role_str(enum pool_agent_role r);

struct pool_settings_ref {
	const char *file;
	const char *sha256;                     /* 64 lower-case hex */
};

struct pool_msg {
	enum pool_msg_type type;
	json_t *root;
	uint64_t id;                            /* commands and results; 0 if none */
	union {
		struct {
			int version;
			const char *name;
			enum pool_agent_role role;
			const char *group;
			const char *secondary_group;    /* "" if none */
			bool failover;                  /* recorder: failover enabled */
			bool recording;                 /* recorder: records now */
			const char *serving;            /* spare: the recorder it records for, "" */
		} hello;
		struct {
			uint64_t seq;
			bool disks_failed;              /* every recording disk failed */
			bool watchdog_failed;           /* the recording service cannot start */
			uint32_t cameras;
			uint64_t storage_used, storage_total;
		} health;
		struct {
			const char *file;
			const char *sha256;
			unsigned char *data;            /* decoded base64, malloc'd, freed with the message */
			size_t len;
		} settings;
		struct {
			struct pool_settings_ref *files; /* malloc'd */
			size_t n;
		} settings_end;
		struct {
			bool ok;
			const char *error;              /* "" when ok */
		} result;
		struct {
			const char *recorder;
			uint64_t bytes_done, bytes_total;
			uint32_t files_done, files_total;
		} copy_progress;
		struct {
			uint32_t heartbeat_ms;
			uint32_t detect_timeout_ms;
		} welcome;
		struct {
			const char *recorder;           /* start, stop, copy */
			const char *address;            /* copy: where the recorder takes the files, "" otherwise */
		} cmd;
		struct {
			enum pool_agent_role role;
			const char *name;
			const char *group;
		} role;
		struct {
			const char *message;
		} error;
	} u;
};

/* Parses and checks one frame's JSON. 0, or -1 with err (out holds
 * nothing to free). */
int pool_msg_parse(const char *buf, size_t len, struct pool_msg *out, char *err, size_t errlen);
void pool_msg_free(struct pool_msg *m);

/* Builders: a new object ready to send, or NULL (bad argument: err says
 * which). The settings message base64-encodes data. */
json_t *pool_msg_hello(const char *name, enum pool_agent_role role, const char *group, const char *secondary,
                       bool failover, bool recording, const char *serving, char *err, size_t errlen);
json_t *pool_msg_health(uint64_t seq, bool disks_failed, bool watchdog_failed, uint32_t cameras,
                        uint64_t used, uint64_t total);
json_t *pool_msg_settings(const char *file, const void *data, size_t len, char *err, size_t errlen);
json_t *pool_msg_command(enum pool_msg_type type, uint64_t id, const char *recorder, const char *address,
                         char *err, size_t errlen);
json_t *pool_msg_result(uint64_t id, bool ok, const char *error);

#endif
