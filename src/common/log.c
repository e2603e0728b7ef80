#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "common/util.h"

#define LOG_LINE_MAX 2048
#define LOG_QUEUE_MAX 8192

static const char *const level_names[] = { "error", "warn", "info", "debug" };
static const char *const file_names[] = { "module", "module-verbose", "application", "commands" };

const char *log_level_str(enum log_level level)
{
	return (unsigned)level < ARRAY_SIZE(level_names) ? level_names[level] : "?";
}

const char *log_file_str(enum log_file file)
{
	return (unsigned)file < ARRAY_SIZE(file_names) ? file_names[file] : "?";
}

struct qline {
	enum log_file file;
	char *text;
};

static struct {
	char ident[32];
	bool foreground;
	enum log_level max_level;
	bool syslog_open;

	/* files, owned by the writer thread once started */
	bool files_open;
	char paths[LOGF_COUNT][4096];
	int fds[LOGF_COUNT];
	size_t sizes[LOGF_COUNT];
	size_t max_bytes;

	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t thread;
	struct qline queue[LOG_QUEUE_MAX];
	unsigned head, count, dropped;
	bool stop;
} L = {
	.ident = "vigil",
	.foreground = true,
	.max_level = LOG_LVL_INFO,
	.fds = { -1, -1, -1, -1 },
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.cond = PTHREAD_COND_INITIALIZER,
};

void log_init(const char *ident, bool foreground, enum log_level max_level)
{
	strlcpy_ok(L.ident, ident, sizeof(L.ident));
	L.foreground = foreground;
	L.max_level = max_level;
	if (!foreground && !L.syslog_open) {
		openlog(L.ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
		L.syslog_open = true;
	}
}

static int open_one(enum log_file f)
{
	struct stat st;

	L.fds[f] = open(L.paths[f], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (L.fds[f] < 0)
		return -1;
	L.sizes[f] = fstat(L.fds[f], &st) == 0 ? (size_t)st.st_size : 0;
	return 0;
}

/* Writer thread: only it touches fds/sizes after start. */
static void write_line(enum log_file f, const char *text)
{
	size_t n = strlen(text);

	if (L.fds[f] < 0)
		return;
	if (L.sizes[f] + n > L.max_bytes) {
		char old[4096 + 8];

		snprintf(old, sizeof(old), "%s.1", L.paths[f]);
		close(L.fds[f]);
		rename(L.paths[f], old);
		if (open_one(f) < 0)
			return;
	}
	while (n > 0) {
		ssize_t w = write(L.fds[f], text, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		text += w;
		n -= (size_t)w;
		L.sizes[f] += (size_t)w;
	}
}

static void *writer_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&L.lock);
	for (;;) {
		while (L.count == 0 && !L.stop)
			pthread_cond_wait(&L.cond, &L.lock);
		if (L.count == 0 && L.stop)
			break;
		struct qline q = L.queue[L.head];
		unsigned dropped = L.dropped;

		L.head = (L.head + 1) % LOG_QUEUE_MAX;
		L.count--;
		L.dropped = 0;
		pthread_mutex_unlock(&L.lock);
		if (dropped) {
			char msg[96];

			snprintf(msg, sizeof(msg), "[log] %u lines dropped: the log disk is too slow\n", dropped);
			write_line(LOGF_MODULE, msg);
			write_line(LOGF_MODULE_VERBOSE, msg);
		}
		write_line(q.file, q.text);
		free(q.text);
		pthread_mutex_lock(&L.lock);
	}
	pthread_mutex_unlock(&L.lock);
	return NULL;
}

int log_open_files(const char *dir, size_t max_bytes)
{
	int err;

	if (L.files_open)
		return 0;
	if ((err = mkdir_p(dir, 0750)) < 0) {
		log_error("cannot create log directory %s: %s", dir, strerror(-err));
		return -1;
	}
	L.max_bytes = max_bytes < 4096 ? 4096 : max_bytes;
	for (int f = 0; f < LOGF_COUNT; f++) {
		snprintf(L.paths[f], sizeof(L.paths[f]), "%s/%s.log", dir, file_names[f]);
		if (open_one(f) < 0) {
			log_error("cannot open log file %s: %s", L.paths[f], strerror(errno));
			for (int g = 0; g < f; g++) {
				close(L.fds[g]);
				L.fds[g] = -1;
			}
			return -1;
		}
	}
	L.stop = false;
	if ((err = pthread_create(&L.thread, NULL, writer_main, NULL)) != 0) {
		log_error("cannot start log writer thread: %s", strerror(err));
		for (int f = 0; f < LOGF_COUNT; f++) {
			close(L.fds[f]);
			L.fds[f] = -1;
		}
		return -1;
	}
	L.files_open = true;
	return 0;
}

void log_close_files(void)
{
	if (!L.files_open)
		return;
	pthread_mutex_lock(&L.lock);
	L.stop = true;
	pthread_cond_signal(&L.cond);
	pthread_mutex_unlock(&L.lock);
	pthread_join(L.thread, NULL);
	for (int f = 0; f < LOGF_COUNT; f++) {
		if (L.fds[f] >= 0)
			close(L.fds[f]);
		L.fds[f] = -1;
	}
	L.files_open = false;
}

const char *log_file_path(enum log_file file)
{
	if (!L.files_open || (unsigned)file >= LOGF_COUNT)
		return NULL;
	return L.paths[file];
}

static void enqueue(enum log_file f, const char *stamp, const char *text)
{
	char *line;

	if (!L.files_open)
		return;
	if (asprintf(&line, "%s %s\n", stamp, text) < 0)
		return;
	pthread_mutex_lock(&L.lock);
	if (L.count == LOG_QUEUE_MAX) {
		L.dropped++;
		free(line);
	} else {
		L.queue[(L.head + L.count) % LOG_QUEUE_MAX] = (struct qline){ f, line };
		L.count++;
		pthread_cond_signal(&L.cond);
	}
	pthread_mutex_unlock(&L.lock);
}

/* One event, one line: a newline inside a message would forge a second. */
static void flatten(char *text)
{
	for (char *p = text; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
}

static void stamp_now(char *buf, size_t len)
{
	format_wall(wall_ms(), buf, len);
}

void log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
	char text[LOG_LINE_MAX], line[LOG_LINE_MAX + 16], stamp[32];
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };

	vsnprintf(text, sizeof(text), fmt, ap);
	flatten(text);
	snprintf(line, sizeof(line), "%-5s %s", log_level_str(level), text);
	if (level <= L.max_level) {
		if (L.foreground) {
			stamp_now(stamp, sizeof(stamp));
			fprintf(stderr, "%s %s: %s\n", stamp, L.ident, line);
		} else {
			syslog(prio[level], "%s", line);
		}
	}
	if (L.files_open) {
		stamp_now(stamp, sizeof(stamp));
		if (level <= LOG_LVL_INFO)
			enqueue(LOGF_MODULE, stamp, line);
		enqueue(LOGF_MODULE_VERBOSE, stamp, line);
	}
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}

void log_app(const char *src, const char *line)
{
	char stamp[32], text[LOG_LINE_MAX];

	snprintf(text, sizeof(text), "%s: %s", src, line);
	flatten(text);
	if (L.files_open) {
		stamp_now(stamp, sizeof(stamp));
		enqueue(LOGF_APPLICATION, stamp, text);
	}
	log_msg(LOG_LVL_DEBUG, "[app] %s", text);
}

void log_command(const char *fmt, ...)
{
	char stamp[32], text[LOG_LINE_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	flatten(text);
	if (L.files_open) {
		stamp_now(stamp, sizeof(stamp));
		enqueue(LOGF_COMMANDS, stamp, text);
	}
	log_msg(LOG_LVL_INFO, "command: %s", text);
}
