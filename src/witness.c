/* vigil-witness: the tie-breaker on a third machine (docs/witness.md).
 *
 * One UDP socket; each valid request gets one signed answer from the grant
 * rules (cluster/witness_rules.c). State lives in memory only: after a
 * restart the rules give the lease only to nodes running the service until
 * any lease granted before could have run out. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <getopt.h>
#include <ini.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cluster/witness_proto.h"
#include "cluster/witness_rules.h"
#include "common/config.h"
#include "common/log.h"
#include "common/util.h"
#include "vigil_build.h"

#define DEFAULT_CONFIG "/etc/vigil/witness.conf"
#define LINE_MAX_LEN 1024
/* Identical log lines about requests: at most one per period. */
#define RL_PERIOD_MS 1000
#define RL_SLOTS 64
#define RL_KEY_MAX 400

/* ---- configuration ---- */

enum wkey_type { WK_ADDRPORT, WK_PATH };
enum { K_LISTEN, K_SECRET_FILE };       /* index in wkeys[] */

struct wconfig {
	char path[PATH_MAX];
	struct sockaddr_in listen;
	char listen_str[INET_ADDRSTRLEN + 8];
	char secret_file[PATH_MAX];
	unsigned char secret[CFG_SECRET_MAX];
	size_t secret_len;
};

struct wkey {
	const char *name;
	enum wkey_type type;
	const char *def;        /* NULL: required */
	const char *help;
};

static const struct wkey wkeys[] = {
	{ "listen", WK_ADDRPORT, NULL,
	  "IPv4 address and UDP port to answer on, e.g. 10.0.0.3:4800: the address the nodes' "
	  "[witness] address names (answers leave from it, so not 0.0.0.0)" },
	{ "secret_file", WK_PATH, NULL,
	  "the cluster's secret file, the same as the nodes' [cluster] secret_file: 16 to 1024 "
	  "bytes, one trailing newline ignored; keep it mode 600" },
};
#define NWKEYS ARRAY_SIZE(wkeys)

struct wparse {
	struct wconfig *cfg;
	FILE *f;
	char *err;
	size_t errlen;
	bool failed;
	int line;
	int sect_line;          /* [witness] header, 0 before it */
	int key_line[NWKEYS];
};

static void wfail(struct wparse *p, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void wfail(struct wparse *p, int line, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (p->failed)
		return;
	p->failed = true;
	n = snprintf(p->err, p->errlen, "%s:%d: ", p->cfg->path, line);
	if (n < 0 || (size_t)n >= p->errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
	va_end(ap);
}

static int set_listen(struct wparse *p, const struct wkey *k, const char *value)
{
	char buf[64];
	char *colon;
	uint64_t port;
	struct in_addr a;

	if (!strlcpy_ok(buf, value, sizeof(buf)) || !(colon = strrchr(buf, ':'))) {
		wfail(p, p->line, "%s: '%s' is not ADDRESS:PORT, like 10.0.0.3:4800", k->name, value);
		return -1;
	}
	*colon = '\0';
	if (inet_pton(AF_INET, buf, &a) != 1) {
		wfail(p, p->line, "%s: '%s' is not an IPv4 address", k->name, buf);
		return -1;
	}
	if (a.s_addr == htonl(INADDR_ANY) || a.s_addr == htonl(INADDR_BROADCAST) ||
	    IN_MULTICAST(ntohl(a.s_addr))) {
		/* The nodes' sockets are connect()ed: an answer from another
		 * source address than the one they asked would be dropped. */
		wfail(p, p->line, "%s: %s cannot be used: give the unicast address the nodes send to",
		      k->name, buf);
		return -1;
	}
	if (parse_u64(colon + 1, 1, 65535, &port) < 0) {
		wfail(p, p->line, "%s: port must be a whole number from 1 to 65535, got '%s'", k->name,
		      colon + 1);
		return -1;
	}
	p->cfg->listen = (struct sockaddr_in){ .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
	                                       .sin_addr = a };
	inet_ntop(AF_INET, &a, buf, INET_ADDRSTRLEN);
	snprintf(p->cfg->listen_str, sizeof(p->cfg->listen_str), "%.*s:%u", INET_ADDRSTRLEN, buf,
	         (unsigned)port);
	return 0;
}

static int set_value(struct wparse *p, const struct wkey *k, const char *value)
{
	switch (k->type) {
	case WK_ADDRPORT:
		return set_listen(p, k, value);
	case WK_PATH:
		if (value[0] != '/') {
			wfail(p, p->line, "%s: must be an absolute path, got '%s'", k->name, value);
			return -1;
		}
		if (!strlcpy_ok(p->cfg->secret_file, value, sizeof(p->cfg->secret_file))) {
			wfail(p, p->line, "%s: too long (max %d characters)", k->name, PATH_MAX - 1);
			return -1;
		}
		return 0;
	}
	wfail(p, p->line, "%s: unknown key type", k->name);
	return -1;
}

/* Section headers and syntax are checked here, line by line, so every
 * error names its line in our words (inih reports only the first). */
static int scan_line(struct wparse *p, char *s)
{
	char *end;

	if (!*s || *s == ';' || *s == '#')
		return 0;
	if (*s == '[') {
		end = strchr(s, ']');
		if (!end) {
			wfail(p, p->line, "section header without ']'");
			return -1;
		}
		{
			char *name = s + 1, *e = end;

			while (isspace((unsigned char)*name))
				name++;
			while (e > name && isspace((unsigned char)e[-1]))
				e--;
			if (e - name != 7 || strncmp(name, "witness", 7)) {
				wfail(p, p->line, "unknown section [%.*s]: this file has only [witness]",
				      (int)(e - name), name);
				return -1;
			}
		}
		for (end++; isspace((unsigned char)*end); end++)
			;
		if (*end && *end != ';' && *end != '#') {
			wfail(p, p->line, "unexpected text after the section header: '%s'", end);
			return -1;
		}
		if (p->sect_line) {
			wfail(p, p->line, "duplicate section [witness] (first at line %d)", p->sect_line);
			return -1;
		}
		p->sect_line = p->line;
		return 0;
	}
	if (!strchr(s, '=') && !strchr(s, ':')) {
		wfail(p, p->line, "expected 'key = value', '[witness]' or a comment");
		return -1;
	}
	if (!p->sect_line) {
		wfail(p, p->line, "key outside a section: start the file with [witness]");
		return -1;
	}
	return 0;
}

/* inih reader: one line per call, so p->line is the handler's line. */
static char *read_line(char *str, int num, void *stream)
{
	struct wparse *p = stream;
	size_t n = 0, cap = num > 0 ? (size_t)num - 1 : 0;
	bool any = false, nul = false, toolong = false;
	char *s;
	int c;

	if (p->failed)
		return NULL;
	while ((c = getc(p->f)) != EOF) {
		any = true;
		if (c == '\n')
			break;
		if (c == '\0')
			nul = true;
		if (n < cap)
			str[n++] = (char)c;
		else
			toolong = true;
	}
	if (ferror(p->f)) {
		wfail(p, p->line + 1, "read error: %s", strerror(errno));
		return NULL;
	}
	if (!any)
		return NULL;
	p->line++;
	if (n && str[n - 1] == '\r')
		n--;
	str[n] = '\0';
	if (toolong) {
		wfail(p, p->line, "line too long (max %zu characters)", cap);
		return NULL;
	}
	if (nul) {
		wfail(p, p->line, "line contains a NUL byte");
		return NULL;
	}
	/* No leading whitespace: inih would take an indented line for the
	 * continuation of the previous value. */
	for (s = str; isspace((unsigned char)*s); s++)
		;
	memmove(str, s, strlen(s) + 1);
	if (scan_line(p, str) < 0)
		return NULL;
	return str;
}

static int on_key(void *user, const char *section, const char *name, const char *value)
{
	struct wparse *p = user;

	(void)section;
	if (p->failed)
		return 0;
	for (size_t i = 0; i < NWKEYS; i++) {
		if (strcmp(wkeys[i].name, name))
			continue;
		if (p->key_line[i]) {
			wfail(p, p->line, "duplicate key '%s' (first at line %d)", name, p->key_line[i]);
			return 0;
		}
		p->key_line[i] = p->line;
		return set_value(p, &wkeys[i], value ? value : "") < 0 ? 0 : 1;
	}
	wfail(p, p->line, "unknown key '%s' in [witness] (known: listen, secret_file)", name);
	return 0;
}

/* Same rules as vigild's [cluster] secret_file. */
static int load_secret(struct wparse *p)
{
	struct wconfig *cfg = p->cfg;
	unsigned char buf[CFG_SECRET_MAX + 2];
	int line = p->key_line[K_SECRET_FILE];
	size_t len = 0;
	struct stat st;
	int fd, rc = -1;

	fd = open(cfg->secret_file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		wfail(p, line, "secret_file '%s': %s", cfg->secret_file, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0) {
		wfail(p, line, "secret_file '%s': %s", cfg->secret_file, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		wfail(p, line, "secret_file '%s': not a regular file", cfg->secret_file);
		goto out;
	}
	while (len < sizeof(buf)) {
		ssize_t r = read(fd, buf + len, sizeof(buf) - len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			wfail(p, line, "secret_file '%s': %s", cfg->secret_file, strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	if (len > 0 && buf[len - 1] == '\n')
		len--;
	if (len < CFG_SECRET_MIN || len > CFG_SECRET_MAX) {
		wfail(p, line, "secret_file '%s': must hold %d to %d bytes, holds %s%zu", cfg->secret_file,
		      CFG_SECRET_MIN, CFG_SECRET_MAX, len > CFG_SECRET_MAX ? "more than " : "",
		      len > CFG_SECRET_MAX ? (size_t)CFG_SECRET_MAX : len);
		goto out;
	}
	if (st.st_mode & (S_IRGRP | S_IROTH))
		log_warn("secret_file '%s' can be read by group or others (mode %04o): chmod 600 it",
		         cfg->secret_file, (unsigned)(st.st_mode & 07777));
	memcpy(cfg->secret, buf, len);
	cfg->secret_len = len;
	rc = 0;
out:
	explicit_bzero(buf, sizeof(buf));
	close(fd);
	return rc;
}

static int wconfig_load(const char *path, struct wconfig *cfg, char *err, size_t errlen)
{
	struct wparse p = { .cfg = cfg, .err = err, .errlen = errlen };
	int rc;

	memset(cfg, 0, sizeof(*cfg));
	err[0] = '\0';
	if (!strlcpy_ok(cfg->path, path, sizeof(cfg->path))) {
		snprintf(err, errlen, "%s: path too long", path);
		return -1;
	}
	p.f = fopen(path, "re");
	if (!p.f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	rc = ini_parse_stream(read_line, &p, on_key, &p);
	if (!p.failed && rc > 0)
		wfail(&p, rc, "syntax error");
	else if (!p.failed && rc < 0)
		wfail(&p, p.line, "cannot parse (inih error %d)", rc);
	fclose(p.f);
	if (!p.failed && !p.sect_line)
		wfail(&p, p.line ? p.line : 1, "missing section [witness]");
	for (size_t i = 0; i < NWKEYS && !p.failed; i++)
		if (!p.key_line[i] && !wkeys[i].def)
			wfail(&p, p.sect_line, "missing required key '%s' in [witness]", wkeys[i].name);
	if (!p.failed)
		load_secret(&p);
	if (p.failed) {
		explicit_bzero(cfg->secret, sizeof(cfg->secret));
		return -1;
	}
	return 0;
}

/* ---- log lines about requests, rate-limited ---- */

struct rl_slot {
	char key[RL_KEY_MAX];
	uint64_t last_ms;
	unsigned suppressed;
};

static struct rl_slot rl[RL_SLOTS];

/* Logs the line unless one with the same key was logged less than
 * RL_PERIOD_MS ago; the next one logged says how many were held back. */
static void rl_log(enum log_level level, const char *key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void rl_log(enum log_level level, const char *key, const char *fmt, ...)
{
	struct rl_slot *s = NULL, *oldest = &rl[0];
	uint64_t now = mono_ms();
	char line[512];
	va_list ap;

	for (int i = 0; i < RL_SLOTS && !s; i++) {
		if (rl[i].key[0] && !strcmp(rl[i].key, key))
			s = &rl[i];
		else if (rl[i].last_ms < oldest->last_ms)
			oldest = &rl[i];
	}
	if (s && now < s->last_ms + RL_PERIOD_MS) {
		s->suppressed++;
		return;
	}
	if (!s) {
		s = oldest;
		strlcpy_ok(s->key, key, sizeof(s->key));
		s->suppressed = 0;
	}
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (s->suppressed)
		log_msg(level, "%s (and %u more like it)", line, s->suppressed);
	else
		log_msg(level, "%s", line);
	s->suppressed = 0;
	s->last_ms = now;
}

/* ---- the daemon ---- */

struct witness {
	struct event_base *base;
	struct wconfig *cfg;
	struct wr_state *rules;
	int fd;
};

static void log_outcome(const struct witness *w, const struct wp_request *q, const struct wp_answer *a,
                        const struct wr_outcome *o, const char *from)
{
	char key[RL_KEY_MAX];

	if (o->expired_holder[0])
		log_info("cluster %s: the lease of %s (term %llu) expired %llu ms ago", q->cluster,
		         o->expired_holder, (unsigned long long)o->expired_term,
		         (unsigned long long)o->expired_ago_ms);
	switch (o->verdict) {
	case WR_GRANTED:
		if (o->was_holder)
			log_info("cluster %s: %s holds the lease under term %llu now (was %llu)", q->cluster,
			         q->node, (unsigned long long)q->term, (unsigned long long)o->prev_term);
		else
			log_info("cluster %s: %s holds the lease now (term %llu, %u ms, %s, from %s)",
			         q->cluster, q->node, (unsigned long long)q->term, q->lease_ms,
			         q->primary ? "runs the service" : "takes over", from);
		return;
	case WR_RENEWED:
		log_debug("cluster %s: %s renewed the lease (term %llu)", q->cluster, q->node,
		          (unsigned long long)q->term);
		return;
	case WR_RELEASED:
		log_info("cluster %s: %s released the lease (term %llu)", q->cluster, q->node,
		         (unsigned long long)q->term);
		return;
	case WR_RELEASE_NOT_HOLDER:
		snprintf(key, sizeof(key), "rel|%s|%s", q->cluster, q->node);
		rl_log(LOG_LVL_INFO, key, "cluster %s: release from %s (term %llu), which does not hold "
		       "the lease: nothing to do", q->cluster, q->node, (unsigned long long)q->term);
		return;
	case WR_OLD_INCARNATION:
	case WR_REPLAYED:
		snprintf(key, sizeof(key), "rep|%s|%s|%s|%d", from, q->cluster, q->node, (int)o->verdict);
		rl_log(LOG_LVL_WARN, key, "request from %s (cluster %s, node %s): %s; refused", from,
		       q->cluster, q->node, a->error);
		return;
	case WR_FULL:
		snprintf(key, sizeof(key), "full|%s|%s", q->cluster, q->node);
		rl_log(LOG_LVL_WARN, key, "cluster %s: refused %s: %s", q->cluster, q->node, a->error);
		return;
	default:
		/* Without the numbers that change at every request. */
		snprintf(key, sizeof(key), "ref|%s|%s|%d|%s", q->cluster, q->node, (int)o->verdict, a->holder);
		rl_log(LOG_LVL_INFO, key, "cluster %s: refused %s (term %llu, %s): %s", q->cluster, q->node,
		       (unsigned long long)q->term, q->primary ? "runs the service" : "takes over", a->error);
		return;
	}
}

static void handle(struct witness *w, const uint8_t *buf, size_t len, const struct sockaddr_in *sin)
{
	char from[INET_ADDRSTRLEN + 8], ip[INET_ADDRSTRLEN], cluster[WP_NAME_MAX], node[WP_NAME_MAX];
	char why[200], key[RL_KEY_MAX];
	unsigned char k[PROTO_KEY_LEN];
	struct wp_request q;
	struct wp_answer a;
	struct wr_outcome o;
	uint8_t out[WP_DATAGRAM_MAX];
	size_t olen;
	enum wp_error e;

	inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
	snprintf(from, sizeof(from), "%s:%u", ip, ntohs(sin->sin_port));
	if (len > WP_DATAGRAM_MAX) {
		snprintf(key, sizeof(key), "big|%s", ip);
		rl_log(LOG_LVL_WARN, key, "request from %s: too large (%zu bytes, at most %d); ignored",
		       from, len, WP_DATAGRAM_MAX);
		return;
	}
	e = wp_peek(buf, len, cluster, node);
	if (e != WP_OK) {
		snprintf(key, sizeof(key), "peek|%s|%d", ip, (int)e);
		rl_log(LOG_LVL_WARN, key, "request from %s: %s (%zu bytes); ignored", from,
		       wp_error_str(e), len);
		return;
	}
	wp_derive_key(w->cfg->secret, w->cfg->secret_len, cluster, k);
	e = wp_decode_request(buf, len, k, &q, why, sizeof(why));
	if (e != WP_OK) {
		snprintf(key, sizeof(key), "bad|%s|%s|%s|%s", ip, cluster, node, why);
		rl_log(LOG_LVL_WARN, key, "request from %s (cluster %s, node %s): %s; ignored", from,
		       cluster, node[0] ? node : "?", why);
		explicit_bzero(k, sizeof(k));
		return;
	}
	wr_judge(w->rules, &q, mono_ms(), &a, &o);
	log_outcome(w, &q, &a, &o, from);
	if (wp_encode_answer(&a, k, out, &olen) < 0)
		log_error("cluster %s: cannot encode the answer to %s", q.cluster, q.node);
	else if (sendto(w->fd, out, olen, MSG_DONTWAIT, (const struct sockaddr *)sin, sizeof(*sin)) < 0)
		log_debug("answer to %s: %s", from, strerror(errno));
	explicit_bzero(k, sizeof(k));
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
	struct witness *w = arg;

	for (int budget = 64; budget > 0; budget--) {
		uint8_t buf[WP_DATAGRAM_MAX + 1];
		struct sockaddr_in from;
		socklen_t flen = sizeof(from);
		/* MSG_TRUNC: the real length, to tell an oversized datagram. */
		ssize_t r = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC,
		                     (struct sockaddr *)&from, &flen);

		if (r < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			log_debug("recvfrom: %s", strerror(errno));
			continue;
		}
		if (flen != sizeof(from) || from.sin_family != AF_INET)
			continue;
		handle(w, buf, (size_t)r, &from);
	}
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct witness *w = arg;

	log_info("%s received; exiting (leases are not kept across restarts)", strsignal((int)sig));
	event_base_loopbreak(w->base);
}

static int open_socket(const struct wconfig *cfg)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		fprintf(stderr, "vigil-witness: socket: %s\n", strerror(errno));
		return -1;
	}
	if (bind(fd, (const struct sockaddr *)&cfg->listen, sizeof(cfg->listen)) < 0) {
		fprintf(stderr, "vigil-witness: cannot listen on %s ('listen' in %s): %s\n",
		        cfg->listen_str, cfg->path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static void usage(FILE *out)
{
	fprintf(out,
	        "usage: vigil-witness [-c FILE] [--foreground] [--verbose]\n"
	        "       vigil-witness --check-config [-c FILE]\n"
	        "\n"
	        "The vigil witness: grants one lease per cluster so that, after a network\n"
	        "split, only one node runs the service. See docs/witness.md.\n"
	        "\n"
	        "  -c, --config FILE   configuration file (default %s)\n"
	        "  -f, --foreground    stay in the foreground, log to stderr (default: detach,\n"
	        "                      log to syslog/journal)\n"
	        "  -v, --verbose       also log debug messages (every renewal)\n"
	        "      --check-config  validate the file and exit: 0 if valid, else 1 with\n"
	        "                      FILE:LINE: message\n"
	        "  -h, --help          this help\n"
	        "  -V, --version       print the version\n"
	        "\n"
	        "Configuration ([witness] section):\n",
	        DEFAULT_CONFIG);
	for (size_t i = 0; i < NWKEYS; i++) {
		char text[512];
		const char *p = text;

		snprintf(text, sizeof(text), "%s%s", wkeys[i].def ? "" : "(required) ", wkeys[i].help);
		fprintf(out, "  %-12s", wkeys[i].name);
		/* Words wrapped to 78 columns, under the first line's text. */
		while (*p) {
			int n = (int)strlen(p);

			if (n > 63) {
				n = 63;
				while (n > 0 && p[n] != ' ')
					n--;
				if (n == 0)
					n = 63;
			}
			fprintf(out, "%s%.*s\n", p == text ? " " : "               ", n, p);
			p += n;
			while (*p == ' ')
				p++;
		}
	}
	fprintf(out, "\nSignals: SIGTERM/SIGINT exit. Leases live in memory only.\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "check-config", no_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	static struct wconfig cfg;
	static struct wr_state rules;
	const char *path = DEFAULT_CONFIG;
	bool foreground = false, verbose = false, check = false;
	struct witness w = { .cfg = &cfg, .rules = &rules, .fd = -1 };
	struct event *rd = NULL, *sigs[2] = { NULL, NULL };
	char err[1024];
	int c, rc = 1;

	while ((c = getopt_long(argc, argv, "c:fvhV", opts, NULL)) != -1) {
		switch (c) {
		case 'c': path = optarg; break;
		case 'f': foreground = true; break;
		case 'v': verbose = true; break;
		case 'C': check = true; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("vigil-witness %s\n", VIGIL_VERSION); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "vigil-witness: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	log_init("vigil-witness", true, verbose ? LOG_LVL_DEBUG : LOG_LVL_INFO);
	if (wconfig_load(path, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	if (check) {
		printf("%s: ok (listen %s, secret %zu bytes)\n", path, cfg.listen_str, cfg.secret_len);
		rc = 0;
		goto out;
	}
	/* Bound before detaching, so that a wrong address fails on the terminal. */
	w.fd = open_socket(&cfg);
	if (w.fd < 0)
		goto out;
	if (!foreground && daemon(0, 0) < 0) {
		fprintf(stderr, "vigil-witness: cannot detach: %s\n", strerror(errno));
		goto out;
	}
	log_init("vigil-witness", foreground, verbose ? LOG_LVL_DEBUG : LOG_LVL_INFO);
	w.base = event_base_new();
	if (!w.base) {
		log_error("cannot set up the event loop");
		goto out;
	}
	wr_init(&rules, mono_ms());
	rd = event_new(w.base, w.fd, EV_READ | EV_PERSIST, on_read, &w);
	sigs[0] = evsignal_new(w.base, SIGTERM, on_signal, &w);
	sigs[1] = evsignal_new(w.base, SIGINT, on_signal, &w);
	if (!rd || !sigs[0] || !sigs[1] || event_add(rd, NULL) < 0 || event_add(sigs[0], NULL) < 0 ||
	    event_add(sigs[1], NULL) < 0) {
		log_error("cannot set up the event loop");
		goto out;
	}
	log_info("vigil-witness %s listening on %s (UDP); leases are in memory: until one lease "
	         "period has passed, only nodes running the service are granted", VIGIL_VERSION,
	         cfg.listen_str);
	event_base_dispatch(w.base);
	rc = 0;
out:
	if (rd)
		event_free(rd);
	for (int i = 0; i < 2; i++)
		if (sigs[i])
			event_free(sigs[i]);
	if (w.base)
		event_base_free(w.base);
	if (w.fd >= 0)
		close(w.fd);
	explicit_bzero(cfg.secret, sizeof(cfg.secret));
	return rc;
}
