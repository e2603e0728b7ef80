/* Copy-back of recordings (src/pool/copy.c, docs/pool-protocol.md
 * "Copy-back") over real mutual TLS on loopback: a recorder's copy server
 * on a temporary directory, the spare's copy_run in the test's thread,
 * certificates made by the cluster's PKI. Every file arrives whole and
 * identical; a `.vigil-part` is resumed, or dropped when its checksum
 * fails; a file already home is skipped, another one under its name is
 * never overwritten; the wrong recorder or a foreign certificate gets
 * nothing written. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "cluster/peerlink_tls.h"
#include "pki/pki.h"
#include "pool/conn.h"
#include "pool/copy.h"
#include "pool/names.h"
#include "testutil.h"

#define MIB (1024 * 1024)
#define PART ".vigil-part"

/* Certificates for the whole group: the pool's CA with rec1 and spare1,
 * and another CA with its own spare1. */
struct group {
	char root[PATH_MAX];
	SSL_CTX *rec1, *spare1;
	SSL_CTX *foreign;               /* another CA's spare1, trusting that CA */
	SSL_CTX *foreign_trusting;      /* another CA's spare1, trusting ours */
};

static struct group G;

struct fx {
	char dir[PATH_MAX];
	char src[PATH_MAX + 16], dst[PATH_MAX + 16];
	struct copy_server *srv;
	uint16_t port;
	struct copy_task task;
};

/* ---- files ---------------------------------------------------------------- */

static void mkdirs(const char *path)
{
	char p[PATH_MAX];

	FMT(p, sizeof(p), "%s", path);
	for (char *s = p + 1; (s = strchr(s, '/')); s++) {
		*s = '\0';
		assert_true(mkdir(p, 0755) == 0 || errno == EEXIST);
		*s = '/';
	}
	assert_true(mkdir(p, 0755) == 0 || errno == EEXIST);
}

/* Writes dir/rel (its directories made). */
static void put(const char *dir, const char *rel, const void *data, size_t len)
{
	char p[PATH_MAX * 2], d[PATH_MAX * 2];
	char *slash;
	int fd;

	FMT(p, sizeof(p), "%s/%s", dir, rel);
	FMT(d, sizeof(d), "%s", p);
	slash = strrchr(d, '/');
	*slash = '\0';
	mkdirs(d);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
}

static void put_str(const char *dir, const char *rel, const char *s)
{
	put(dir, rel, s, strlen(s));
}

/* dir/rel's content (NUL-terminated, *len its size), or NULL if missing. */
static char *slurp(const char *dir, const char *rel, size_t *len)
{
	char p[PATH_MAX * 2];
	struct stat st;
	char *buf;
	int fd;

	FMT(p, sizeof(p), "%s/%s", dir, rel);
	fd = open(p, O_RDONLY);
	if (fd < 0)
		return NULL;
	assert_int_equal(fstat(fd, &st), 0);
	buf = malloc((size_t)st.st_size + 1);
	assert_non_null(buf);
	assert_int_equal(read(fd, buf, (size_t)st.st_size), st.st_size);
	buf[st.st_size] = '\0';
	close(fd);
	*len = (size_t)st.st_size;
	return buf;
}

static bool exists(const char *dir, const char *rel)
{
	char p[PATH_MAX * 2];
	struct stat st;

	FMT(p, sizeof(p), "%s/%s", dir, rel);
	return lstat(p, &st) == 0;
}

/* dir/rel holds exactly data. */
static void assert_file(const char *dir, const char *rel, const void *data, size_t len)
{
	size_t n = 0;
	char *got = slurp(dir, rel, &n);

	if (!got)
		fail_msg("%s/%s is missing", dir, rel);
	assert_int_equal(n, len);
	assert_memory_equal(got, data, len);
	free(got);
}

/* Regular files under dir, and how many of them end in .vigil-part. */
static int nfiles, nparts;

static int count_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	size_t n = strlen(p);

	(void)st;
	(void)f;
	if (flag == FTW_F) {
		nfiles++;
		if (n > strlen(PART) && !strcmp(p + n - strlen(PART), PART))
			nparts++;
	}
	return 0;
}

static int count_files(const char *dir)
{
	nfiles = nparts = 0;
	assert_int_equal(nftw(dir, count_one, 16, FTW_PHYS), 0);
	return nfiles;
}

static int count_parts(const char *dir)
{
	count_files(dir);
	return nparts;
}

/* Reproducible "video": xorshift bytes. */
static unsigned char *prng_bytes(size_t len, uint32_t seed)
{
	unsigned char *b = malloc(len);
	uint32_t x = seed ? seed : 1;

	assert_non_null(b);
	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		b[i] = (unsigned char)x;
	}
	return b;
}

/* ---- certificates and the server ------------------------------------------ */

static SSL_CTX *make_ctx(const char *confdir, const char *name)
{
	char conf[PATH_MAX + 16], err[512] = "";
	SSL_CTX *ctx;

	FMT(conf, sizeof(conf), "%s/vigil.conf", confdir);
	ctx = tls_mutual_ctx(conf, name, NULL, "test", err, sizeof(err));
	if (!ctx)
		fail_msg("tls_mutual_ctx %s: %s", name, err);
	return ctx;
}

static void make_pki(const char *confdir, const char *cluster, const char *const *names, int n)
{
	char pki[PATH_MAX + 16], err[512] = "";
	const char *sans[] = { "127.0.0.1" };

	mkdirs(confdir);
	FMT(pki, sizeof(pki), "%s/pki", confdir);
	mkdirs(pki);
	if (pki_make_ca(pki, cluster, 30, err, sizeof(err)) < 0)
		fail_msg("pki_make_ca: %s", err);
	for (int i = 0; i < n; i++)
		if (pki_make_server(pki, names[i], sans, 1, 30, err, sizeof(err)) < 0)
			fail_msg("pki_make_server %s: %s", names[i], err);
}

static int group_setup(void **state)
{
	char other[PATH_MAX + 16], ca[PATH_MAX + 64];
	const char *ours[] = { "rec1", "spare1" }, *theirs[] = { "spare1" };

	(void)state;
	/* vigild ignores SIGPIPE: a write to a closed connection is an error,
	 * not the end of the process. */
	signal(SIGPIPE, SIG_IGN);
	assert_int_equal(tu_mkdtemp(G.root, "pool-copy"), 0);
	make_pki(G.root, "test", ours, 2);
	G.rec1 = make_ctx(G.root, "rec1");
	G.spare1 = make_ctx(G.root, "spare1");

	FMT(other, sizeof(other), "%s/other", G.root);
	make_pki(other, "other", theirs, 1);
	G.foreign = make_ctx(other, "spare1");
	/* The same foreign certificate, but trusting our CA too: the
	 * handshake gets as far as the recorder checking the spare. */
	G.foreign_trusting = make_ctx(other, "spare1");
	FMT(ca, sizeof(ca), "%s/pki/cacert.crt", G.root);
	assert_int_equal(SSL_CTX_load_verify_locations(G.foreign_trusting, ca, NULL), 1);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	peerlink_tls_ctx_free(G.rec1);
	peerlink_tls_ctx_free(G.spare1);
	peerlink_tls_ctx_free(G.foreign);
	peerlink_tls_ctx_free(G.foreign_trusting);
	tu_rm_rf(G.root);
	return 0;
}

/* A port nobody listens on now (the kernel's pick for a throw-away
 * socket). */
static uint16_t free_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_ANY) };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	close(fd);
	return ntohs(sa.sin_port);
}

static void start_server(struct fx *f)
{
	char err[256] = "";

	/* Another process may take the port in between: try a few. */
	for (int i = 0; i < 20 && !f->srv; i++) {
		f->port = free_port();
		f->srv = copy_server_start(G.rec1, f->port, f->dst, err, sizeof(err));
	}
	if (!f->srv)
		fail_msg("copy_server_start: %s", err);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(tu_mkdtemp(f->dir, "pool-copy"), 0);
	FMT(f->src, sizeof(f->src), "%s/src", f->dir);
	FMT(f->dst, sizeof(f->dst), "%s/dst", f->dir);
	mkdirs(f->src);
	mkdirs(f->dst);
	start_server(f);
	f->task.tls = G.spare1;
	FMT(f->task.address, sizeof(f->task.address), "127.0.0.1:%u", f->port);
	FMT(f->task.recorder, sizeof(f->task.recorder), "rec1");
	FMT(f->task.src, sizeof(f->task.src), "%s", f->src);
	f->task.remove_after = true;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	copy_server_stop(f->srv);
	tu_rm_rf(f->dir);
	free(f);
	return 0;
}

static void assert_ok(const struct copy_task *t)
{
	if (!t->ok)
		fail_msg("copy failed: %s", t->err);
	assert_int_equal(t->stats.files_done, t->stats.files_total);
	assert_true(t->stats.bytes_done == t->stats.bytes_total);
}

/* ---- the tests -------------------------------------------------------------- */

struct tree {
	const char *rel;
	unsigned char *data;
	size_t len;
};

/* Several files in subdirectories, an empty one and a 1 MiB one. */
static void make_tree(struct fx *f, struct tree t[5], uint64_t *total)
{
	static const char *small[] = { "top.txt", "cam2/x.txt", "cam2/sub/y.txt" };

	*total = 0;
	for (int i = 0; i < 3; i++) {
		t[i].rel = small[i];
		t[i].len = 100 + (size_t)i * 3000;
		t[i].data = prng_bytes(t[i].len, 7 + (uint32_t)i);
	}
	t[3].rel = "cam1/empty.dat";
	t[3].len = 0;
	t[3].data = malloc(1);
	t[4].rel = "cam1/2024/01/02/seg-0001.mkv";
	t[4].len = MIB + 123;
	t[4].data = prng_bytes(t[4].len, 42);
	for (int i = 0; i < 5; i++) {
		put(f->src, t[i].rel, t[i].data, t[i].len);
		*total += t[i].len;
	}
}

static void free_tree(struct tree t[5])
{
	for (int i = 0; i < 5; i++)
		free(t[i].data);
}

/* Every file arrives identical; with remove_after the spare's copies go. */
static void all_files_arrive_identical_and_are_removed(void **state)
{
	struct fx *f = *state;
	struct tree t[5];
	uint64_t total;

	make_tree(f, t, &total);
	copy_run(&f->task);
	assert_ok(&f->task);
	assert_int_equal(f->task.err[0], '\0');
	assert_int_equal(f->task.stats.files_total, 5);
	assert_true(f->task.stats.bytes_total == total);
	for (int i = 0; i < 5; i++) {
		assert_file(f->dst, t[i].rel, t[i].data, t[i].len);
		assert_false(exists(f->src, t[i].rel));
	}
	assert_int_equal(count_files(f->dst), 5);
	assert_int_equal(count_parts(f->dst), 0);
	assert_int_equal(count_files(f->src), 0);
	free_tree(t);
}

/* Without remove_after the spare keeps its files, unchanged. */
static void all_files_arrive_identical_and_are_kept(void **state)
{
	struct fx *f = *state;
	struct tree t[5];
	uint64_t total;

	make_tree(f, t, &total);
	f->task.remove_after = false;
	copy_run(&f->task);
	assert_ok(&f->task);
	assert_int_equal(f->task.stats.files_total, 5);
	assert_true(f->task.stats.bytes_total == total);
	for (int i = 0; i < 5; i++) {
		assert_file(f->dst, t[i].rel, t[i].data, t[i].len);
		assert_file(f->src, t[i].rel, t[i].data, t[i].len);
	}
	assert_int_equal(count_files(f->dst), 5);
	assert_int_equal(count_parts(f->dst), 0);

	/* Copied again: everything is there already, nothing fails. */
	copy_run(&f->task);
	assert_ok(&f->task);
	assert_int_equal(f->task.stats.files_done, 5);
	assert_int_equal(count_files(f->dst), 5);
	free_tree(t);
}

/* A .vigil-part from an interrupted copy holding the first half: the rest
 * is added, the whole checked, the part renamed into place. */
static void a_part_is_resumed(void **state)
{
	struct fx *f = *state;
	const char *rel = "cam1/seg.mkv";
	size_t len = MIB;
	unsigned char *data = prng_bytes(len, 99);

	put(f->src, rel, data, len);
	put_str(f->src, "a.txt", "first in path order");
	put(f->dst, "cam1/seg.mkv" PART, data, len / 2);

	copy_run(&f->task);
	assert_ok(&f->task);
	assert_int_equal(f->task.stats.files_total, 2);
	assert_file(f->dst, rel, data, len);
	assert_file(f->dst, "a.txt", "first in path order", 19);
	assert_int_equal(count_parts(f->dst), 0);
	assert_false(exists(f->src, rel));
	free(data);
}

/* A part whose bytes are not the file's: the recorder keeps them, adds the
 * rest, the checksum fails and the part is dropped; the copy fails naming
 * the file and nothing is put in place. The next copy starts afresh and
 * succeeds. (That the garbage is not overwritten also shows the part is
 * resumed, not rewritten.) */
static void a_wrong_part_fails_the_checksum_then_is_copied_afresh(void **state)
{
	struct fx *f = *state;
	const char *rel = "cam1/seg.mkv";
	size_t len = MIB;
	unsigned char *data = prng_bytes(len, 99), *garbage = prng_bytes(len / 2, 1234);

	put(f->src, rel, data, len);
	put_str(f->src, "a.txt", "first in path order");
	put(f->dst, "cam1/seg.mkv" PART, garbage, len / 2);

	copy_run(&f->task);
	assert_false(f->task.ok);
	assert_non_null(strstr(f->task.err, rel));
	assert_non_null(strstr(f->task.err, "checksum"));
	assert_false(exists(f->dst, rel));
	assert_false(exists(f->dst, "cam1/seg.mkv" PART));
	/* a.txt came first and is home (and gone from the spare); seg.mkv
	 * was not confirmed, so the spare keeps it. */
	assert_int_equal(f->task.stats.files_done, 1);
	assert_file(f->dst, "a.txt", "first in path order", 19);
	assert_false(exists(f->src, "a.txt"));
	assert_file(f->src, rel, data, len);

	copy_run(&f->task);
	assert_ok(&f->task);
	assert_int_equal(f->task.stats.files_total, 1);
	assert_file(f->dst, rel, data, len);
	assert_int_equal(count_parts(f->dst), 0);
	assert_false(exists(f->src, rel));
	free(data);
	free(garbage);
}

/* A part longer than the file cannot be the start of it: the recorder
 * starts over. */
static void a_part_longer_than_the_file_is_started_over(void **state)
{
	struct fx *f = *state;
	unsigned char *junk = prng_bytes(5000, 5);

	put_str(f->src, "d/f.bin", "the real content");
	put(f->dst, "d/f.bin" PART, junk, 5000);
	copy_run(&f->task);
	assert_ok(&f->task);
	assert_file(f->dst, "d/f.bin", "the real content", 16);
	assert_int_equal(count_parts(f->dst), 0);
	free(junk);
}

/* The same file already home: SKIP, counted as done, not written again. */
static void the_same_file_at_home_is_skipped(void **state)
{
	struct fx *f = *state;
	const char *rel = "cam1/seg.mkv";
	unsigned char *data = prng_bytes(70000, 3);
	struct timespec old[2] = { { 1000000000, 0 }, { 1000000000, 0 } };
	char p[PATH_MAX * 2];
	struct stat before, after;

	put(f->src, rel, data, 70000);
	put(f->dst, rel, data, 70000);
	FMT(p, sizeof(p), "%s/%s", f->dst, rel);
	assert_int_equal(utimensat(AT_FDCWD, p, old, 0), 0);
	assert_int_equal(stat(p, &before), 0);

	copy_run(&f->task);
	assert_ok(&f->task);
	assert_int_equal(f->task.stats.files_done, 1);
	assert_true(f->task.stats.bytes_done == 70000);
	assert_int_equal(stat(p, &after), 0);
	assert_int_equal(after.st_mtim.tv_sec, before.st_mtim.tv_sec);
	assert_int_equal(after.st_mtim.tv_nsec, before.st_mtim.tv_nsec);
	assert_int_equal(after.st_ino, before.st_ino);
	assert_file(f->dst, rel, data, 70000);
	assert_int_equal(count_files(f->dst), 1);
	/* Confirmed: the spare's copy goes. */
	assert_false(exists(f->src, rel));
	free(data);
}

/* Another file under the same name (same size, other bytes): refused, the
 * recorder's file untouched, the spare keeps its own. */
static void another_file_at_home_is_never_overwritten(void **state)
{
	struct fx *f = *state;
	const char *rel = "cam1/seg.mkv";

	put_str(f->src, rel, "spare's bytes");
	put_str(f->dst, rel, "home's bytes!");

	copy_run(&f->task);
	assert_false(f->task.ok);
	assert_non_null(strstr(f->task.err, "other content"));
	assert_non_null(strstr(f->task.err, rel));
	assert_int_equal(f->task.stats.files_done, 0);
	assert_file(f->dst, rel, "home's bytes!", 13);
	assert_int_equal(count_files(f->dst), 1);
	assert_file(f->src, rel, "spare's bytes", 13);
}

/* The server's certificate is rec1's, the spare was told rec2. */
static void the_wrong_recorder_gets_nothing(void **state)
{
	struct fx *f = *state;

	put_str(f->src, "cam1/seg.mkv", "bytes");
	FMT(f->task.recorder, sizeof(f->task.recorder), "rec2");
	copy_run(&f->task);
	assert_false(f->task.ok);
	assert_non_null(strstr(f->task.err, "not recorder rec2"));
	assert_non_null(strstr(f->task.err, "rec1"));
	assert_int_equal(f->task.stats.files_done, 0);
	assert_int_equal(tu_count_entries(f->dst), 0);
	assert_file(f->src, "cam1/seg.mkv", "bytes", 5);
}

/* A spare whose certificate is another CA's: no copy, nothing written,
 * whether it trusts that CA only (it refuses the recorder) or ours too
 * (the recorder refuses it). The server serves a good spare afterwards. */
static void a_foreign_certificate_gets_nothing(void **state)
{
	struct fx *f = *state;

	put_str(f->src, "cam1/seg.mkv", "bytes");
	f->task.tls = G.foreign;
	copy_run(&f->task);
	assert_false(f->task.ok);
	assert_int_equal(f->task.stats.files_done, 0);
	assert_int_equal(tu_count_entries(f->dst), 0);

	f->task.tls = G.foreign_trusting;
	copy_run(&f->task);
	assert_false(f->task.ok);
	assert_true(f->task.err[0] != '\0');
	assert_int_equal(f->task.stats.files_done, 0);
	assert_int_equal(tu_count_entries(f->dst), 0);
	assert_file(f->src, "cam1/seg.mkv", "bytes", 5);

	f->task.tls = G.spare1;
	copy_run(&f->task);
	assert_ok(&f->task);
	assert_file(f->dst, "cam1/seg.mkv", "bytes", 5);
}

/* Nothing to copy (an empty directory, or none): done, 0 files. */
static void nothing_to_copy(void **state)
{
	struct fx *f = *state;

	copy_run(&f->task);
	assert_ok(&f->task);
	assert_int_equal(f->task.stats.files_total, 0);
	assert_true(f->task.stats.bytes_total == 0);

	FMT(f->task.src, sizeof(f->task.src), "%s/missing", f->dir);
	copy_run(&f->task);
	assert_ok(&f->task);
	assert_int_equal(f->task.stats.files_total, 0);
	assert_int_equal(tu_count_entries(f->dst), 0);
}

/* Cancelled: stops at the first chunk, nothing put in place; the next copy
 * completes. */
static void a_cancelled_copy_resumes(void **state)
{
	struct fx *f = *state;
	unsigned char *data = prng_bytes(MIB, 77);

	put(f->src, "cam1/seg.mkv", data, MIB);
	f->task.cancel = 1;
	copy_run(&f->task);
	assert_false(f->task.ok);
	assert_non_null(strstr(f->task.err, "cancel"));
	assert_false(exists(f->dst, "cam1/seg.mkv"));
	assert_file(f->src, "cam1/seg.mkv", data, MIB);

	f->task.cancel = 0;
	copy_run(&f->task);
	assert_ok(&f->task);
	assert_file(f->dst, "cam1/seg.mkv", data, MIB);
	assert_int_equal(count_parts(f->dst), 0);
	free(data);
}

/* Speaks the protocol by hand: paths that leave recordings_dir, or name
 * a part, are refused and nothing is written anywhere. */
static void bad_paths_are_refused(void **state)
{
	struct fx *f = *state;
	static const char *bad[] = { "../escape.txt", "/etc/x", "a/../../escape2", "cam1/x" PART, "a//b" };
	char sum[65];

	pool_sha256_hex("hello", 5, sum);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(f->port),
		                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		char line[600], reply[600] = "";
		int fd = socket(AF_INET, SOCK_STREAM, 0), n;
		size_t got = 0;
		SSL *ssl;

		assert_true(fd >= 0);
		assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
		ssl = SSL_new(G.spare1);
		assert_non_null(ssl);
		SSL_set_fd(ssl, fd);
		assert_int_equal(SSL_connect(ssl), 1);
		n = snprintf(line, sizeof(line), "FILE 5 %s %s\nhello", sum, bad[i]);
		assert_int_equal(SSL_write(ssl, line, n), n);
		while (got < sizeof(reply) - 1 && !strchr(reply, '\n')) {
			size_t r = 0;

			if (SSL_read_ex(ssl, reply + got, sizeof(reply) - 1 - got, &r) != 1)
				break;
			got += r;
			reply[got] = '\0';
		}
		assert_true(!strncmp(reply, "ERR ", 4));
		SSL_shutdown(ssl);
		SSL_free(ssl);
		close(fd);
	}
	assert_int_equal(tu_count_entries(f->dst), 0);
	assert_int_equal(count_files(f->dir), 0);
}

/* copy_server_stop does not wait for anything while idle, before or after
 * a copy. */
static void stop_is_prompt(void **state)
{
	struct fx *f = *state;
	uint64_t t0;

	t0 = mono_ms();
	copy_server_stop(f->srv);
	f->srv = NULL;
	assert_true(mono_ms() - t0 < 2000);

	start_server(f);
	FMT(f->task.address, sizeof(f->task.address), "127.0.0.1:%u", f->port);
	put_str(f->src, "x", "y");
	copy_run(&f->task);
	assert_ok(&f->task);
	t0 = mono_ms();
	copy_server_stop(f->srv);
	f->srv = NULL;
	assert_true(mono_ms() - t0 < 2000);
}

/* ---- the pool link's reasons ------------------------------------------------ */

struct ended {
	int calls;
	char why[256];
};

static void link_closed(struct pool_conn *c, const char *why, void *arg)
{
	struct ended *e = arg;

	(void)c;
	e->calls++;
	snprintf(e->why, sizeof(e->why), "%s", why);
}

static bool has_ended(void *arg)
{
	return ((struct ended *)arg)->calls > 0;
}

/* An operator reads why an agent lost its master: a refused connect and a
 * peer that hangs up in the handshake are said in words, not as
 * libevent's raw SSL_ERROR_SYSCALL ("error:00000005:lib(0)::reason(5)"). */
static void the_link_says_why_in_words(void **state)
{
	struct event_base *base = event_base_new();
	const struct pool_conn_cbs cbs = { .closed = link_closed };
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(to);
	struct ended e = { 0 };
	int l, fd;

	(void)state;
	to.sin_port = htons(free_port());
	assert_non_null(pool_conn_connect(base, G.spare1, &to, &cbs, &e));
	assert_true(run_until(base, has_ended, &e, 5000));
	assert_int_equal(e.calls, 1);
	if (!strstr(e.why, "refused"))
		fail_msg("refused connect reported as: %s", e.why);

	/* a listener that accepts, then closes before any TLS: "Connection reset
	 * by peer" or "closed by the peer" */
	l = socket(AF_INET, SOCK_STREAM, 0);
	to.sin_port = 0;
	assert_int_equal(bind(l, (struct sockaddr *)&to, sizeof(to)), 0);
	assert_int_equal(getsockname(l, (struct sockaddr *)&to, &len), 0);
	assert_int_equal(listen(l, 4), 0);
	memset(&e, 0, sizeof(e));
	assert_non_null(pool_conn_connect(base, G.spare1, &to, &cbs, &e));
	run_for(base, 100);
	fd = accept(l, NULL, NULL);
	assert_true(fd >= 0);
	close(fd);
	assert_true(run_until(base, has_ended, &e, 5000));
	if (!strstr(e.why, "peer") || strstr(e.why, "lib(0)"))
		fail_msg("hang-up in the handshake reported as: %s", e.why);
	close(l);
	run_for(base, 50);              /* the connections' deferred frees */
	event_base_free(base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(all_files_arrive_identical_and_are_removed, setup, teardown),
		cmocka_unit_test_setup_teardown(all_files_arrive_identical_and_are_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(a_part_is_resumed, setup, teardown),
		cmocka_unit_test_setup_teardown(a_wrong_part_fails_the_checksum_then_is_copied_afresh, setup, teardown),
		cmocka_unit_test_setup_teardown(a_part_longer_than_the_file_is_started_over, setup, teardown),
		cmocka_unit_test_setup_teardown(the_same_file_at_home_is_skipped, setup, teardown),
		cmocka_unit_test_setup_teardown(another_file_at_home_is_never_overwritten, setup, teardown),
		cmocka_unit_test_setup_teardown(the_wrong_recorder_gets_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(a_foreign_certificate_gets_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(nothing_to_copy, setup, teardown),
		cmocka_unit_test_setup_teardown(a_cancelled_copy_resumes, setup, teardown),
		cmocka_unit_test_setup_teardown(bad_paths_are_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(stop_is_prompt, setup, teardown),
		cmocka_unit_test(the_link_says_why_in_words),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
