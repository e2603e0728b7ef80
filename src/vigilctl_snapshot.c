/* vigilctl snapshot. The content is gathered into a private 0700 directory
 * under /tmp, then archived by tar or zip into FILE.tmp-XXXXXX next to FILE
 * and renamed: a half-written archive never carries FILE's name, and the
 * temporary directory is removed whatever happens.
 *
 * Every line written into the snapshot goes through one function that
 * replaces a line holding the cluster secret (vigilctl_redact.c): the
 * secret then cannot leak through the config, a script, a log or a
 * process's arguments. Commands and the archiver run through
 * vigilctl_child.c. */
#include "vigilctl_snapshot.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "vigil_build.h"
#include "vigilctl_child.h"
#include "vigilctl_redact.h"

#define CHILD_TIMEOUT_MS 10000
/* tar and zip also get this much per 10 MiB gathered: logs may reach
 * log_max_bytes (up to 1 GiB) each, far more than 10 s of gzip. */
#define ARCHIVE_MS_PER_10MIB 1000
#define SCRIPT_MAX (1u << 20)
#define CONFIG_MAX (16u << 20)
#define NODE_JSON_MAX (1u << 20)
#define SCRIPTS_DEPTH_MAX 8
#define SCRIPTS_FILES_MAX 1000
#define ERRTEXT_MAX 2048

static volatile sig_atomic_t interrupted;

struct snap {
	const struct snapshot_args *a;
	char tmpdir[PATH_MAX];      /* "" until created */
	char top[PATH_MAX];
	char topname[NAME_MAX + 1];
	char node[CFG_NAME_MAX];
	char created[64];

	struct redact redact;
	char secret_note[PATH_MAX + 128];
	bool secret_id;             /* secret_file exists: never copy it */
	dev_t secret_dev;
	ino_t secret_ino;

	FILE *notes;                /* what could not be included */
	char *notes_buf;
	size_t notes_len;

	uint64_t bytes;             /* gathered, for the archiver's deadline */
	char fatal[ERRTEXT_MAX];    /* set: the snapshot cannot be made */
};

const char *snapshot_format_str(enum snapshot_format f)
{
	switch (f) {
	case SNAP_FMT_TGZ:
		return "tar.gz";
	case SNAP_FMT_ZIP:
		return "zip";
	}
	return "?";
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n > m && !strcmp(s + n - m, suffix);
}

int snapshot_format_of(const char *file)
{
	const char *base = strrchr(file, '/');

	base = base ? base + 1 : file;
	/* ".tar.gz" alone names no file. */
	if ((ends_with(base, ".tar.gz") && strlen(base) > 7) || (ends_with(base, ".tgz") && strlen(base) > 4))
		return SNAP_FMT_TGZ;
	if (ends_with(base, ".zip") && strlen(base) > 4)
		return SNAP_FMT_ZIP;
	return -1;
}

static void on_signal(int sig)
{
	interrupted = sig;
}

static void fatal(struct snap *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fatal(struct snap *s, const char *fmt, ...)
{
	va_list ap;

	if (s->fatal[0])
		return;
	va_start(ap, fmt);
	vsnprintf(s->fatal, sizeof(s->fatal), fmt, ap);
	va_end(ap);
}

static bool stop_now(struct snap *s)
{
	if (interrupted)
		fatal(s, "interrupted by signal %d", (int)interrupted);
	return s->fatal[0] != '\0';
}

/* ---- writing into the snapshot ---- */

static bool path_in(char *buf, size_t len, const char *dir, const char *rel)
{
	return snprintf(buf, len, "%s/%s", dir, rel) < (int)len;
}

static FILE *create_out(struct snap *s, const char *rel)
{
	char path[PATH_MAX], parent[PATH_MAX];
	FILE *f;
	int fd, err;

	if (!path_in(path, sizeof(path), s->top, rel)) {
		fatal(s, "path too long: %s/%s", s->top, rel);
		return NULL;
	}
	strlcpy_ok(parent, path, sizeof(parent));
	if ((err = mkdir_p(dirname(parent), 0700)) < 0) {
		fatal(s, "cannot create %s: %s", parent, strerror(-err));
		return NULL;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		fatal(s, "cannot create %s: %s", path, strerror(errno));
		return NULL;
	}
	if (!(f = fdopen(fd, "w"))) {
		fatal(s, "cannot write %s: %s", path, strerror(errno));
		close(fd);
	}
	return f;
}

static int close_out(struct snap *s, FILE *f, const char *rel)
{
	bool bad = ferror(f);

	if (fclose(f) != 0 || bad) {
		fatal(s, "cannot write %s/%s: %s", s->top, rel, bad ? "write error" : strerror(errno));
		return -1;
	}
	return 0;
}

/* The one way lines get into the snapshot. */
static void write_line(struct snap *s, FILE *out, const char *line, size_t n)
{
	if (redact_hit(&s->redact, line, n)) {
		fputs(REDACT_LINE, out);
		return;
	}
	fwrite(line, 1, n, out);
	s->bytes += n;
}

static void write_buf(struct snap *s, FILE *out, const char *buf, size_t len)
{
	while (len) {
		const char *nl = memchr(buf, '\n', len);
		size_t n = nl ? (size_t)(nl - buf) + 1 : len;

		write_line(s, out, buf, n);
		buf += n;
		len -= n;
	}
}

static int put_buf(struct snap *s, const char *rel, const char *buf, size_t len)
{
	FILE *f = create_out(s, rel);

	if (!f)
		return -1;
	write_buf(s, f, buf, len);
	return close_out(s, f, rel);
}

static int put_text(struct snap *s, const char *rel, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int put_text(struct snap *s, const char *rel, const char *fmt, ...)
{
	va_list ap;
	char *text;
	int n, rc;

	va_start(ap, fmt);
	n = vasprintf(&text, fmt, ap);
	va_end(ap);
	if (n < 0) {
		fatal(s, "out of memory");
		return -1;
	}
	rc = put_buf(s, rel, text, (size_t)n);
	free(text);
	return rc;
}

/* REL.error.txt saying why REL is not there; the snapshot goes on. */
static int put_error(struct snap *s, const char *rel, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int put_error(struct snap *s, const char *rel, const char *fmt, ...)
{
	char name[PATH_MAX], msg[ERRTEXT_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (s->notes)
		fprintf(s->notes, "  %s: %s\n", rel, msg);
	if (snprintf(name, sizeof(name), "%s.error.txt", rel) >= (int)sizeof(name)) {
		fatal(s, "path too long: %s.error.txt", rel);
		return -1;
	}
	return put_text(s, name, "%s\n", msg);
}

static void copy_stream(struct snap *s, FILE *in, FILE *out)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;

	while ((n = getline(&line, &cap, in)) > 0)
		write_line(s, out, line, (size_t)n);
	if (ferror(in))
		fprintf(out, "\n[vigil snapshot: read error here: %s]\n", strerror(errno));
	free(line);
}

static bool is_secret_file(const struct snap *s, const struct stat *st)
{
	return s->secret_id && st->st_dev == s->secret_dev && st->st_ino == s->secret_ino;
}

/* src into REL (or REL.error.txt). max: 0 for no limit. */
static int copy_file(struct snap *s, const char *src, const char *rel, uint64_t max, bool nofollow)
{
	struct stat st;
	FILE *in, *out;
	int fd, rc;

	/* O_NONBLOCK: a FIFO put in place of a file must not hang us. */
	fd = open(src, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC | (nofollow ? O_NOFOLLOW : 0));
	if (fd < 0)
		return put_error(s, rel, "cannot read %s: %s", src,
				 errno == ELOOP && nofollow ? "a symbolic link, not followed" : strerror(errno));
	if (fstat(fd, &st) < 0) {
		rc = put_error(s, rel, "cannot read %s: %s", src, strerror(errno));
		close(fd);
		return rc;
	}
	if (is_secret_file(s, &st) || !S_ISREG(st.st_mode) || (max && (uint64_t)st.st_size > max)) {
		if (is_secret_file(s, &st))
			rc = put_error(s, rel, "%s is the secret_file: never included", src);
		else if (!S_ISREG(st.st_mode))
			rc = put_error(s, rel, "%s is not a regular file", src);
		else
			rc = put_error(s, rel, "%s holds %lld bytes, more than the %llu taken", src,
				       (long long)st.st_size, (unsigned long long)max);
		close(fd);
		return rc;
	}
	if (!(in = fdopen(fd, "r"))) {
		rc = put_error(s, rel, "cannot read %s: %s", src, strerror(errno));
		close(fd);
		return rc;
	}
	if (!(out = create_out(s, rel))) {
		fclose(in);
		return -1;
	}
	copy_stream(s, in, out);
	fclose(in);
	return close_out(s, out, rel);
}

/* The output of argv into REL, or REL.error.txt (why, then the output). */
static int put_command(struct snap *s, const char *rel, char *const argv[])
{
	char raw[PATH_MAX], why[ERRTEXT_MAX], cmd[256], name[PATH_MAX];
	FILE *in, *out;
	int rc;
	bool ok;

	if (!path_in(raw, sizeof(raw), s->tmpdir, "command.out")) {
		fatal(s, "path too long: %s/command.out", s->tmpdir);
		return -1;
	}
	rc = child_capture(argv, raw, CHILD_TIMEOUT_MS, &interrupted, &in, why, sizeof(why));
	if (rc < 0) {
		fatal(s, "%s", why);
		return -1;
	}
	ok = rc == 0;
	child_join_argv(argv, cmd, sizeof(cmd));
	if (!ok) {
		if (s->notes)
			fprintf(s->notes, "  %s: %s\n", rel, why);
		snprintf(name, sizeof(name), "%s.error.txt", rel);
	}
	out = create_out(s, ok ? rel : name);
	if (!out) {
		fclose(in);
		return -1;
	}
	if (!ok) {
		char head[sizeof(cmd) + sizeof(why) + 32];
		int n = snprintf(head, sizeof(head), "%s: %s\noutput:\n", cmd, why);

		write_buf(s, out, head, (size_t)n < sizeof(head) ? (size_t)n : sizeof(head) - 1);
	}
	copy_stream(s, in, out);
	fclose(in);
	return close_out(s, out, ok ? rel : name);
}

/* ---- what goes in ---- */

static void load_secret(struct snap *s)
{
	const char *path = s->a->cfg->secret_file;
	struct stat st;

	if (*path && stat(path, &st) == 0) {
		s->secret_id = true;
		s->secret_dev = st.st_dev;
		s->secret_ino = st.st_ino;
	}
	redact_load(&s->redact, path, s->secret_note, sizeof(s->secret_note));
}

static void pick_node(struct snap *s, json_t *status)
{
	const struct config *cfg = s->a->cfg;
	char err[256], host[256] = "";
	const char *name = NULL;
	json_t *n;
	size_t i, k = 0;
	int idx = config_find_local_node(cfg, err, sizeof(err));

	if (idx >= 0)
		name = cfg->nodes[idx].name;
	json_array_foreach(json_object_get(status, "nodes"), i, n)
		if (!name && json_is_true(json_object_get(n, "local")))
			name = json_string_value(json_object_get(n, "name"));
	if (!name && gethostname(host, sizeof(host) - 1) == 0)
		name = host;
	/* It becomes part of a file name. */
	for (const char *p = name ? name : ""; *p && k + 1 < sizeof(s->node); p++)
		s->node[k++] = (strchr("._-", *p) || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
				(*p >= '0' && *p <= '9')) ? *p : '_';
	s->node[k] = '\0';
	if (!k || s->node[0] == '.' || s->node[0] == '-')
		snprintf(s->node, sizeof(s->node), "unknown");
}

static int put_status(struct snap *s, json_t *status, const char *why)
{
	char *text;
	int rc;

	if (!status)
		return put_text(s, "status-error.txt", "no status from vigild: %s\n", why);
	text = json_dumps(status, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (!text) {
		fatal(s, "out of memory");
		return -1;
	}
	rc = put_text(s, "status.json", "%s\n", text);
	free(text);
	return rc;
}

static int dotless(const struct dirent *d)
{
	return strcmp(d->d_name, ".") && strcmp(d->d_name, "..");
}

static int copy_tree(struct snap *s, const char *src, const char *rel, int depth, unsigned *count)
{
	struct dirent **list;
	int n, rc = 0;

	n = scandir(src, &list, dotless, alphasort);
	if (n < 0)
		return put_error(s, rel, "cannot list %s: %s", src, strerror(errno));
	for (int i = 0; i < n; i++) {
		char path[PATH_MAX], sub[PATH_MAX];
		struct stat st;

		if (rc < 0 || stop_now(s))
			rc = -1;
		else if (!path_in(path, sizeof(path), src, list[i]->d_name) ||
			 !path_in(sub, sizeof(sub), rel, list[i]->d_name))
			rc = put_error(s, rel, "%s/%s: path too long", src, list[i]->d_name);
		else if (++*count > SCRIPTS_FILES_MAX)
			rc = *count == SCRIPTS_FILES_MAX + 1 ?
			     put_error(s, rel, "more than %d files under it: the rest is left out",
				       SCRIPTS_FILES_MAX) : 0;
		else if (lstat(path, &st) < 0)
			rc = put_error(s, sub, "cannot read %s: %s", path, strerror(errno));
		else if (S_ISDIR(st.st_mode) && depth >= SCRIPTS_DEPTH_MAX)
			rc = put_error(s, sub, "%s: more than %d directories deep, left out", path,
				       SCRIPTS_DEPTH_MAX);
		else if (S_ISDIR(st.st_mode))
			rc = copy_tree(s, path, sub, depth + 1, count);
		else if (S_ISLNK(st.st_mode) && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
			rc = put_error(s, sub, "%s is a symbolic link to a directory, not followed", path);
		else
			rc = copy_file(s, path, sub, SCRIPT_MAX, false);
		free(list[i]);
	}
	free(list);
	return rc;
}

static int put_config(struct snap *s)
{
	const char *path = s->a->config_path;
	char dir[PATH_MAX], scripts[PATH_MAX];
	unsigned count = 0;
	struct stat st;

	if (copy_file(s, path, "config/vigil.conf", CONFIG_MAX, false) < 0)
		return -1;
	strlcpy_ok(dir, path, sizeof(dir));
	if (!path_in(scripts, sizeof(scripts), dirname(dir), "scripts"))
		return put_error(s, "config/scripts", "%s/scripts: path too long", dir);
	if (stat(scripts, &st) < 0)
		return errno == ENOENT ? 0 : put_error(s, "config/scripts", "cannot read %s: %s", scripts,
							 strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return put_error(s, "config/scripts", "%s is not a directory", scripts);
	return copy_tree(s, scripts, "config/scripts", 1, &count);
}

static int is_log_name(const struct dirent *d)
{
	return ends_with(d->d_name, ".log") || ends_with(d->d_name, ".log.1");
}

static int put_logs(struct snap *s)
{
	const char *dir = s->a->cfg->state_dir;
	struct dirent **list;
	int n, rc = 0;

	n = scandir(dir, &list, is_log_name, alphasort);
	if (n < 0)
		return put_error(s, "logs", "cannot list %s: %s", dir, strerror(errno));
	if (n == 0)
		rc = put_error(s, "logs", "no *.log or *.log.1 file in %s", dir);
	for (int i = 0; i < n; i++) {
		char path[PATH_MAX], rel[PATH_MAX];

		if (rc < 0 || stop_now(s))
			rc = -1;
		else if (!path_in(path, sizeof(path), dir, list[i]->d_name) ||
			 !path_in(rel, sizeof(rel), "logs", list[i]->d_name))
			rc = put_error(s, "logs", "%s/%s: path too long", dir, list[i]->d_name);
		else
			rc = copy_file(s, path, rel, 0, true);
		free(list[i]);
	}
	free(list);
	return rc;
}

static int put_state(struct snap *s)
{
	char path[PATH_MAX];

	if (!path_in(path, sizeof(path), s->a->cfg->state_dir, "node.json"))
		return put_error(s, "state/node.json", "%s/node.json: path too long", s->a->cfg->state_dir);
	return copy_file(s, path, "state/node.json", NODE_JSON_MAX, true);
}

static int put_system(struct snap *s)
{
	static char *const ps[] = { "ps", "-eo", "pid,ppid,user,lstart,etime,stat,args", NULL };
	static char *const addr[] = { "ip", "addr", NULL };
	static char *const route[] = { "ip", "route", NULL };
	struct utsname u;
	struct timespec now;
	struct tm lt, ut;
	char local[64], utc[64];

	if (put_command(s, "system/ps.txt", ps) < 0 || stop_now(s) ||
	    put_command(s, "system/ip-addr.txt", addr) < 0 || stop_now(s) ||
	    put_command(s, "system/ip-route.txt", route) < 0 || stop_now(s))
		return -1;
	if (uname(&u) < 0) {
		if (put_error(s, "system/uname.txt", "uname: %s", strerror(errno)) < 0)
			return -1;
	} else if (put_text(s, "system/uname.txt", "%s %s %s %s %s\n", u.sysname, u.nodename, u.release,
			    u.version, u.machine) < 0) {
		return -1;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	localtime_r(&now.tv_sec, &lt);
	gmtime_r(&now.tv_sec, &ut);
	strftime(local, sizeof(local), "%Y-%m-%d %H:%M:%S %z (%Z)", &lt);
	strftime(utc, sizeof(utc), "%Y-%m-%dT%H:%M:%SZ", &ut);
	return put_text(s, "system/date.txt", "local: %s\nutc: %s\nepoch: %lld\nmonotonic_ms: %llu\n", local,
			utc, (long long)now.tv_sec, (unsigned long long)mono_ms());
}

static int put_version(struct snap *s, json_t *status)
{
	const char *v = json_string_value(json_object_get(status, "version"));
	char *buf = NULL;
	size_t len = 0, i;
	FILE *f = open_memstream(&buf, &len);
	json_t *n;
	int rc;

	if (!f) {
		fatal(s, "out of memory");
		return -1;
	}
	fprintf(f, "vigilctl %s\n", VIGIL_VERSION);
	if (v)
		fprintf(f, "vigild %s\n", v);
	json_array_foreach(json_object_get(status, "nodes"), i, n) {
		const char *nv = json_string_value(json_object_get(n, "version"));

		if (nv)
			fprintf(f, "node %s: vigild %s\n", json_string_value(json_object_get(n, "name")) ?: "?", nv);
	}
	if (!v && !status)
		fputs("vigild: unknown (no status)\n", f);
	else if (!v)
		fputs("vigild: the status answer has no version\n", f);
	if (fclose(f) != 0) {
		free(buf);
		fatal(s, "out of memory");
		return -1;
	}
	rc = put_buf(s, "version.txt", buf, len);
	free(buf);
	return rc;
}

static int put_manifest(struct snap *s)
{
	const char *notes;

	if (s->notes && fflush(s->notes) != 0) {
		fatal(s, "out of memory");
		return -1;
	}
	notes = s->notes_len ? s->notes_buf : "  (none)\n";
	if (s->redact.needle)
		snprintf(s->secret_note, sizeof(s->secret_note), "done: %u line(s) removed", s->redact.nredacted);
	return put_text(s, "snapshot.txt",
			"vigil support snapshot\nnode: %s\ncreated: %s\nconfig: %s\nsecret check: %s\n"
			"not included:\n%s",
			s->node, s->created, s->a->config_path, s->secret_note, notes);
}

/* ---- archive ---- */

static int check_output(const char *output, char *err, size_t errlen)
{
	char dir[PATH_MAX];
	struct stat st;
	const char *d;

	if (!strlcpy_ok(dir, output, sizeof(dir))) {
		snprintf(err, errlen, "%s: path too long", output);
		return -1;
	}
	d = dirname(dir);
	if (stat(d, &st) < 0) {
		snprintf(err, errlen, "cannot write %s: directory %s: %s", output, d, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "cannot write %s: %s is not a directory", output, d);
		return -1;
	}
	if (access(d, W_OK | X_OK) < 0) {
		snprintf(err, errlen, "cannot write %s: directory %s is not writable: %s", output, d,
			 strerror(errno));
		return -1;
	}
	if (stat(output, &st) == 0 && S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "cannot write %s: it is a directory", output);
		return -1;
	}
	return 0;
}

/* The archive of s->topname as FILE; 0 and its size, or -1 (fatal set). */
static int make_archive(struct snap *s, enum snapshot_format fmt, uint64_t *size)
{
	char *const tar[] = { "tar", "--numeric-owner", "-czf", "-", s->topname, NULL };
	char *const zip[] = { "zip", "-q", "-r", "-X", "-", s->topname, NULL };
	const char *output = s->a->output;
	char tmp[PATH_MAX], errpath[PATH_MAX], why[512], dir[PATH_MAX];
	uint64_t timeout = CHILD_TIMEOUT_MS + s->bytes / (10u << 20) * ARCHIVE_MS_PER_10MIB;
	struct stat st;
	int fd, efd, dfd;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp-XXXXXX", output) >= (int)sizeof(tmp) ||
	    !path_in(errpath, sizeof(errpath), s->tmpdir, "archiver.err")) {
		fatal(s, "%s: path too long", output);
		return -1;
	}
	efd = open(errpath, O_RDWR | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (efd < 0) {
		fatal(s, "cannot create %s: %s", errpath, strerror(errno));
		return -1;
	}
	/* mkostemp: mode 0600 whatever the umask; the logs are in it. */
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		fatal(s, "cannot create %s: %s", tmp, strerror(errno));
		close(efd);
		return -1;
	}
	if (child_run(fmt == SNAP_FMT_ZIP ? zip : tar, s->tmpdir, fd, efd, timeout, &interrupted, why,
		      sizeof(why)) < 0) {
		char msg[512] = "";
		ssize_t n = pread(efd, msg, sizeof(msg) - 1, 0);

		msg[n > 0 ? n : 0] = '\0';
		msg[strcspn(msg, "\n")] = '\0';
		fatal(s, "%s%s%s", why, msg[0] ? ": " : "", msg);
		goto fail;
	}
	if (fsync(fd) < 0 || fstat(fd, &st) < 0) {
		fatal(s, "cannot write %s: %s", tmp, strerror(errno));
		goto fail;
	}
	if (rename(tmp, output) < 0) {
		fatal(s, "cannot rename %s to %s: %s", tmp, output, strerror(errno));
		goto fail;
	}
	close(fd);
	close(efd);
	strlcpy_ok(dir, output, sizeof(dir));
	if ((dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		fsync(dfd);
		close(dfd);
	}
	*size = (uint64_t)st.st_size;
	return 0;
fail:
	close(fd);
	close(efd);
	unlink(tmp);
	return -1;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	remove(path);
	return 0;
}

static void gather(struct snap *s)
{
	char why[ERRTEXT_MAX] = "";
	json_t *status;
	struct tm tm;
	time_t now = time(NULL);
	char stamp[32];

	status = s->a->status(s->a->status_ctx, why, sizeof(why));
	pick_node(s, status);
	localtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm);
	strftime(s->created, sizeof(s->created), "%Y-%m-%d %H:%M:%S %z", &tm);
	snprintf(s->topname, sizeof(s->topname), "vigil-snapshot-%s-%s", s->node, stamp);
	if (!path_in(s->top, sizeof(s->top), s->tmpdir, s->topname)) {
		fatal(s, "path too long: %s/%s", s->tmpdir, s->topname);
		goto out;
	}
	if (mkdir(s->top, 0700) < 0) {
		fatal(s, "cannot create %s: %s", s->top, strerror(errno));
		goto out;
	}
	load_secret(s);
	if (put_status(s, status, why) < 0 || stop_now(s) ||
	    put_config(s) < 0 || stop_now(s) ||
	    put_logs(s) < 0 || stop_now(s) ||
	    put_state(s) < 0 || stop_now(s) ||
	    put_system(s) < 0 || stop_now(s) ||
	    put_version(s, status) < 0 || stop_now(s))
		goto out;
	put_manifest(s);
out:
	json_decref(status);
}

int snapshot_run(const struct snapshot_args *a)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP };
	struct sigaction sa = { .sa_handler = on_signal }, old[ARRAY_SIZE(sigs)];
	struct snap s = { .a = a };
	int fmt = snapshot_format_of(a->output);
	char err[ERRTEXT_MAX];
	uint64_t size = 0;
	int rc = 1;

	if (fmt < 0) {
		fprintf(stderr, "vigilctl: snapshot: %s: the name must end in .tar.gz, .tgz or .zip\n", a->output);
		return 1;
	}
	if (fmt == SNAP_FMT_ZIP && !child_find_program("zip")) {
		fprintf(stderr, "vigilctl: snapshot: %s: writing a .zip needs the zip program, which is not "
			"installed: use .tar.gz, or install zip\n", a->output);
		return 1;
	}
	if (!child_find_program("tar") && fmt == SNAP_FMT_TGZ) {
		fprintf(stderr, "vigilctl: snapshot: %s: writing a .tar.gz needs tar, which is not installed\n",
			a->output);
		return 1;
	}
	if (check_output(a->output, err, sizeof(err)) < 0) {
		fprintf(stderr, "vigilctl: snapshot: %s\n", err);
		return 1;
	}

	interrupted = 0;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < ARRAY_SIZE(sigs); i++)
		sigaction(sigs[i], &sa, &old[i]);

	s.notes = open_memstream(&s.notes_buf, &s.notes_len);
	snprintf(s.tmpdir, sizeof(s.tmpdir), "/tmp/vigil-snapshot-XXXXXX");
	if (!s.notes) {
		fatal(&s, "out of memory");
		s.tmpdir[0] = '\0';
	} else if (!mkdtemp(s.tmpdir)) {
		fatal(&s, "cannot create a temporary directory in /tmp: %s", strerror(errno));
		s.tmpdir[0] = '\0';
	} else {
		gather(&s);
		if (!stop_now(&s) && make_archive(&s, (enum snapshot_format)fmt, &size) == 0)
			rc = 0;
	}
	if (s.tmpdir[0])
		nftw(s.tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);

	for (size_t i = 0; i < ARRAY_SIZE(sigs); i++)
		sigaction(sigs[i], &old[i], NULL);
	redact_free(&s.redact);
	if (s.notes)
		fclose(s.notes);
	free(s.notes_buf);

	if (rc) {
		fprintf(stderr, "vigilctl: snapshot: %s\n", s.fatal[0] ? s.fatal : "failed");
		return rc;
	}
	if (a->json) {
		json_t *j = json_pack("{s:s, s:I}", "file", a->output, "bytes", (json_int_t)size);

		json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		fputc('\n', stdout);
		json_decref(j);
	} else {
		printf("snapshot of %s written to %s (%llu bytes)\n", s.node, a->output, (unsigned long long)size);
	}
	return 0;
}
