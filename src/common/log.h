/* One small logging API for every vigil program.
 *
 * Levels: error, warn, info, debug. In the foreground lines go to stderr;
 * otherwise to syslog (which the journal collects). Once a state directory is
 * known, vigild also keeps its own files there, bounded in size:
 *   module.log          short module log: error, warn, info (transitions)
 *   module-verbose.log  everything, debug included
 *   application.log     output of resource scripts, one line per line
 *   commands.log        every command: what, from where, result
 * File writes go through a writer thread so a slow disk never stalls the
 * caller (the heartbeat loop). */
#ifndef VIGIL_LOG_H
#define VIGIL_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

enum log_level { LOG_LVL_ERROR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

enum log_file { LOGF_MODULE, LOGF_MODULE_VERBOSE, LOGF_APPLICATION, LOGF_COMMANDS, LOGF_COUNT };

const char *log_level_str(enum log_level level);
const char *log_file_str(enum log_file file);

/* ident: program name; foreground: stderr instead of syslog;
 * max_level: most verbose level sent to stderr/syslog. */
void log_init(const char *ident, bool foreground, enum log_level max_level);
/* Opens the files under dir; each is rotated to NAME.1 past max_bytes.
 * Returns 0 or -1 (and logs why). */
int log_open_files(const char *dir, size_t max_bytes);
/* Flushes queued lines and stops the writer thread. */
void log_close_files(void);
/* Path of one of the files, for readers (vigilctl log). NULL if not open. */
const char *log_file_path(enum log_file file);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_vmsg(enum log_level level, const char *fmt, va_list ap);
/* A line of output from the resource or script named src. */
void log_app(const char *src, const char *line);
/* A line for the commands log. */
void log_command(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)

#endif
