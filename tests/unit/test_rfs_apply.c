/* The applier of the SECOND (src/rfs/apply.c): ops go through the wire
 * codec (encode, then decode) and are applied to a temp dir, whose tree is
 * then checked exactly. Runs as root (owners). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <ftw.h>
#include <cmocka.h>

#include "rfs/apply.h"
#include "rfs/exclude.h"
#include "rfs/wire.h"

#define ROOT_FID 1
#define T(n) (1700000000000000000LL + (int64_t)(n) * 1000000007LL)

struct env {
	char dir[PATH_MAX];             /* the copy */
	char out[PATH_MAX];             /* outside the copy, for the escape test */
	int rootfd;
	struct rfs_applier *a;
	uint64_t seq;
	int fds_before;
	char err[RFS_APPLY_ERR_LEN];
};

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1;   /* the DIR's own fd */
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st; (void)flag; (void)f;
	return remove(p);
}

static void rm_rf(const char *dir)
{
	if (dir[0])
		nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Encodes, decodes and applies op; seq is assigned when 0. */
static int apply(struct env *e, struct wire_op op)
{
	struct wire_op_iter it;
	struct wire_op dec;
	size_t size, len;
	uint8_t *buf;
	int r;

	if (op.seq == 0)
		op.seq = ++e->seq;
	else if (op.seq > e->seq)
		e->seq = op.seq;
	size = wire_op_size(&op);
	assert_true(size > 0);
	buf = malloc(size);
	assert_non_null(buf);
	assert_int_equal(wire_op_encode(&op, buf, size, &len), WIRE_OK);
	wire_op_iter_init(&it, buf, len, 1, 0);
	assert_int_equal(wire_op_next(&it, &dec), 1);
	e->err[0] = 0;
	r = rfs_apply(e->a, &dec, e->err, sizeof(e->err));
	free(buf);
	return r;
}

static void ok(struct env *e, struct wire_op op)
{
	if (apply(e, op) != 0)
		fail_msg("unexpected failure: %s", e->err);
}

/* Fails with a text holding each want; then resets and rebinds the root. */
static void bad(struct env *e, struct wire_op op, const char *want1, const char *want2)
{
	assert_int_equal(apply(e, op), -1);
	if (!strstr(e->err, want1) || (want2 && !strstr(e->err, want2)))
		fail_msg("error text '%s' lacks '%s' / '%s'", e->err, want1, want2 ? want2 : "");
	assert_true(rfs_applier_diverged(e->a, NULL, NULL));
	/* diverged: the next op is refused and names the first failure */
	assert_int_equal(apply(e, (struct wire_op){ .code = WIRE_OP_BIND, .fid = ROOT_FID }), -1);
	assert_non_null(strstr(e->err, "diverged"));
	rfs_applier_reset(e->a);
	assert_false(rfs_applier_diverged(e->a, NULL, NULL));
	assert_int_equal(rfs_applier_nfids(e->a), 0);
	e->seq = 0;
	ok(e, (struct wire_op){ .code = WIRE_OP_BIND, .fid = ROOT_FID });
}

static struct wire_op o_create(uint64_t fid, uint64_t parent, const char *name, uint32_t mode,
                               uint32_t uid, uint32_t gid, int64_t mtime, int64_t pmtime)
{
	return (struct wire_op){ .code = WIRE_OP_CREATE, .fid = fid, .arg = parent, .mode = mode,
	                         .uid = uid, .gid = gid, .mtime_ns = mtime, .pmtime_ns = pmtime,
	                         .name = name, .name_len = (uint16_t)strlen(name) };
}

static struct wire_op o_bind(uint64_t fid, uint64_t parent, const char *name)
{
	return (struct wire_op){ .code = WIRE_OP_BIND, .fid = fid, .arg = parent, .name = name,
	                         .name_len = (uint16_t)strlen(name) };
}

static struct wire_op o_write(uint64_t fid, uint64_t off, const void *data, size_t len)
{
	return (struct wire_op){ .code = WIRE_OP_WRITE, .fid = fid, .arg = off, .data = data,
	                         .data_len = (uint32_t)len };
}

static struct wire_op o_rename(uint64_t p, const char *n, uint64_t np, const char *nn, uint32_t fl)
{
	return (struct wire_op){ .code = WIRE_OP_RENAME, .fid = p, .arg = np, .rename_flags = fl,
	                         .pmtime_ns = T(50), .new_pmtime_ns = T(51), .name = n,
	                         .name_len = (uint16_t)strlen(n), .name2 = nn,
	                         .name2_len = (uint16_t)strlen(nn) };
}

static void path_of(const struct env *e, const char *rel, char *buf)
{
	assert_true(snprintf(buf, PATH_MAX, "%s/%s", e->dir, rel) < PATH_MAX);
}

static void lst(const struct env *e, const char *rel, struct stat *st)
{
	char p[PATH_MAX];

	path_of(e, rel, p);
	if (lstat(p, st) < 0)
		fail_msg("lstat %s: %s", p, strerror(errno));
}

static void assert_absent(const struct env *e, const char *rel)
{
	char p[PATH_MAX];
	struct stat st;

	path_of(e, rel, p);
	assert_int_equal(lstat(p, &st), -1);
	assert_int_equal(errno, ENOENT);
}

/* The whole file equals want[0..len). */
static void assert_content(const char *path, const void *want, size_t len)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW);
	struct stat st;
	char *buf;

	if (fd < 0)
		fail_msg("open %s: %s", path, strerror(errno));
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_size, len);
	buf = malloc(len + 1);
	assert_non_null(buf);
	assert_int_equal(pread(fd, buf, len + 1, 0), (ssize_t)len);
	assert_memory_equal(buf, want, len);
	free(buf);
	close(fd);
}

static void assert_rel_content(const struct env *e, const char *rel, const void *want, size_t len)
{
	char p[PATH_MAX];

	path_of(e, rel, p);
	assert_content(p, want, len);
}

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));

	assert_non_null(e);
	e->fds_before = count_fds();
	snprintf(e->dir, sizeof(e->dir), "/tmp/vigil-ut-apply-XXXXXX");
	snprintf(e->out, sizeof(e->out), "/tmp/vigil-ut-apply-out-XXXXXX");
	assert_non_null(mkdtemp(e->dir));
	assert_non_null(mkdtemp(e->out));
	e->rootfd = open(e->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	assert_true(e->rootfd >= 0);
	e->a = rfs_applier_new(e->rootfd, 0);
	assert_non_null(e->a);
	*state = e;
	ok(e, (struct wire_op){ .code = WIRE_OP_BIND, .fid = ROOT_FID });
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;

	rfs_applier_free(e->a);
	close(e->rootfd);
	rm_rf(e->dir);
	rm_rf(e->out);
	int after = count_fds();
	int before = e->fds_before;

	free(e);
	if (after != before) {
		fprintf(stderr, "fd leak: %d open before, %d after\n", before, after);
		return -1;
	}
	return 0;
}

static void test_sequence(void **state)
{
	struct env *e = *state;
	static char big[16384];
	char p[PATH_MAX], buf[64];
	struct stat st;

	memset(big, 'x', sizeof(big));
	ok(e, o_create(2, ROOT_FID, "d", S_IFDIR | 0750, 1000, 1001, T(1), T(2)));
	ok(e, o_create(3, 2, "f", S_IFREG | 04755, 1002, 1003, T(3), T(4)));
	ok(e, o_write(3, 0, "hello", 5));
	ok(e, o_write(3, 8192, big, 4096));
	ok(e, (struct wire_op){ .code = WIRE_OP_TRUNCATE, .fid = 3, .arg = 16384 });
	ok(e, (struct wire_op){ .code = WIRE_OP_FALLOCATE, .fid = 3, .arg = 8192, .len = 4096,
	                        .fl_mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE });
	ok(e, o_rename(2, "f", 2, "g", 0));
	ok(e, (struct wire_op){ .code = WIRE_OP_LINK, .fid = 3, .arg = ROOT_FID, .pmtime_ns = T(5),
	                        .name = "h", .name_len = 1 });
	ok(e, (struct wire_op){ .code = WIRE_OP_CREATE, .fid = 4, .arg = ROOT_FID, .mode = S_IFLNK | 0777,
	                        .uid = 1004, .gid = 1005, .mtime_ns = T(6), .pmtime_ns = T(7),
	                        .name = "s", .name_len = 1, .name2 = "d/g", .name2_len = 3 });
	ok(e, o_create(6, ROOT_FID, "fifo", S_IFIFO | 0620, 0, 0, T(8), T(9)));
	ok(e, (struct wire_op){ .code = WIRE_OP_UNLINK, .fid = ROOT_FID, .pmtime_ns = T(10),
	                        .name = "fifo", .name_len = 4 });
	ok(e, (struct wire_op){ .code = WIRE_OP_SETXATTR, .fid = 3, .name = "user.k", .name_len = 6,
	                        .data = (const uint8_t *)"v1", .data_len = 2 });
	ok(e, (struct wire_op){ .code = WIRE_OP_SETXATTR, .fid = 3, .name = "user.gone", .name_len = 9,
	                        .data = (const uint8_t *)"z", .data_len = 1 });
	ok(e, (struct wire_op){ .code = WIRE_OP_RMXATTR, .fid = 3, .name = "user.gone", .name_len = 9 });
	ok(e, o_create(5, 2, "copy", S_IFREG | 0644, 0, 0, T(11), T(12)));
	ok(e, (struct wire_op){ .code = WIRE_OP_COPY, .fid = 5, .arg = 2, .fid_in = 3, .off_in = 1,
	                        .len = 4 });
	ok(e, (struct wire_op){ .code = WIRE_OP_SETATTR, .fid = 5,
	                        .arg = WIRE_ATTR_MODE | WIRE_ATTR_UID | WIRE_ATTR_MTIME,
	                        .mode = 0600, .uid = 77, .mtime_ns = T(13) });
	ok(e, (struct wire_op){ .code = WIRE_OP_TIMES, .fid = 3, .arg = WIRE_ATTR_ATIME | WIRE_ATTR_MTIME,
	                        .atime_ns = T(14), .mtime_ns = T(15) });
	/* the dir's mtime last: entries above moved it */
	ok(e, (struct wire_op){ .code = WIRE_OP_TIMES, .fid = 2, .arg = WIRE_ATTR_MTIME, .mtime_ns = T(16) });
	assert_int_equal(rfs_applier_applied_seq(e->a), e->seq);

	lst(e, "d", &st);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0750);
	assert_int_equal(st.st_uid, 1000);
	assert_int_equal(st.st_gid, 1001);
	assert_int_equal(st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec, T(16));

	assert_absent(e, "d/f");
	lst(e, "d/g", &st);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 04755);    /* set after chown: kept */
	assert_int_equal(st.st_uid, 1002);
	assert_int_equal(st.st_gid, 1003);
	assert_int_equal(st.st_nlink, 2);
	assert_int_equal(st.st_size, 16384);
	assert_int_equal(st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec, T(15));
	assert_int_equal(st.st_atim.tv_sec * 1000000000LL + st.st_atim.tv_nsec, T(14));
	{
		static char want[16384];
		struct stat st2;

		memcpy(want, "hello", 5);
		assert_rel_content(e, "d/g", want, sizeof(want));
		lst(e, "h", &st2);
		assert_int_equal(st2.st_ino, st.st_ino);
	}
	path_of(e, "d/g", p);
	{
		int fd = open(p, O_RDONLY);

		assert_true(fd >= 0);
		/* the punched block is a hole: no data after the first block */
		assert_int_equal(lseek(fd, 4096, SEEK_DATA), -1);
		assert_int_equal(errno, ENXIO);
		close(fd);
	}
	assert_int_equal(getxattr(p, "user.k", buf, sizeof(buf)), 2);
	assert_memory_equal(buf, "v1", 2);
	assert_int_equal(getxattr(p, "user.gone", buf, sizeof(buf)), -1);
	assert_int_equal(errno, ENODATA);

	lst(e, "s", &st);
	assert_true(S_ISLNK(st.st_mode));
	assert_int_equal(st.st_uid, 1004);
	assert_int_equal(st.st_gid, 1005);
	assert_int_equal(st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec, T(6));
	path_of(e, "s", p);
	assert_int_equal(readlink(p, buf, sizeof(buf)), 3);
	assert_memory_equal(buf, "d/g", 3);

	assert_absent(e, "fifo");
	lst(e, ".", &st);
	assert_int_equal(st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec, T(10));

	lst(e, "d/copy", &st);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(st.st_uid, 77);
	assert_int_equal(st.st_gid, 0);
	assert_int_equal(st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec, T(13));
	assert_rel_content(e, "d/copy", "\0\0ello", 6);
}

static void test_rmdir(void **state)
{
	struct env *e = *state;

	ok(e, o_create(2, ROOT_FID, "d", S_IFDIR | 0755, 0, 0, T(1), T(2)));
	bad(e, (struct wire_op){ .code = WIRE_OP_UNLINK, .fid = ROOT_FID, .name = "d", .name_len = 1 },
	    "'d' in fid 1 (.)", "Is a directory");
	ok(e, (struct wire_op){ .code = WIRE_OP_UNLINK, .fid = ROOT_FID, .arg = WIRE_UNLINK_RMDIR,
	                        .name = "d", .name_len = 1 });
	assert_absent(e, "d");
}

/* A bound fid keeps its inode after the name is gone. */
static void test_write_unlinked(void **state)
{
	struct env *e = *state;
	char p[PATH_MAX], buf[16];
	int fd;

	ok(e, o_create(2, ROOT_FID, "f", S_IFREG | 0644, 0, 0, T(1), T(2)));
	path_of(e, "f", p);
	fd = open(p, O_RDONLY);
	assert_true(fd >= 0);
	ok(e, (struct wire_op){ .code = WIRE_OP_UNLINK, .fid = ROOT_FID, .name = "f", .name_len = 1 });
	assert_absent(e, "f");
	ok(e, o_write(2, 3, "abc", 3));
	ok(e, (struct wire_op){ .code = WIRE_OP_FSYNC, .fid = 2, .arg = 1 });
	assert_int_equal(pread(fd, buf, sizeof(buf), 0), 6);
	assert_memory_equal(buf, "\0\0\0abc", 6);
	close(fd);
	ok(e, (struct wire_op){ .code = WIRE_OP_UNBIND, .fid = 2 });
	assert_int_equal(rfs_applier_nfids(e->a), 1);
}

static void test_rename_over_and_exchange(void **state)
{
	struct env *e = *state;
	struct stat st;

	ok(e, o_create(2, ROOT_FID, "a", S_IFREG | 0644, 0, 0, T(1), T(2)));
	ok(e, o_write(2, 0, "AAAA", 4));
	ok(e, o_create(3, ROOT_FID, "b", S_IFREG | 0644, 0, 0, T(1), T(2)));
	ok(e, o_write(3, 0, "BB", 2));
	ok(e, o_create(4, ROOT_FID, "c", S_IFREG | 0644, 0, 0, T(1), T(2)));
	ok(e, o_write(4, 0, "C", 1));
	ok(e, o_create(5, ROOT_FID, "sub", S_IFDIR | 0755, 0, 0, T(1), T(2)));

	/* over an existing file: b's old inode stays bound to fid 3 */
	ok(e, o_rename(ROOT_FID, "a", ROOT_FID, "b", 0));
	assert_absent(e, "a");
	assert_rel_content(e, "b", "AAAA", 4);
	ok(e, o_write(3, 0, "xx", 2));          /* unlinked: nothing visible changes */
	assert_rel_content(e, "b", "AAAA", 4);
	lst(e, ".", &st);
	assert_int_equal(st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec, T(51));

	/* EXCHANGE across dirs; fids follow their inodes */
	ok(e, o_rename(ROOT_FID, "b", 5, "c", 0));
	ok(e, o_rename(ROOT_FID, "c", 5, "c", WIRE_RENAME_EXCHANGE));
	ok(e, o_write(2, 4, "!", 1));           /* fid 2 = the AAAA file, now at ./c */
	ok(e, o_write(4, 1, "c", 1));           /* fid 4 = the C file, now at sub/c */
	assert_rel_content(e, "c", "AAAA!", 5);
	assert_rel_content(e, "sub/c", "Cc", 2);
	lst(e, "sub", &st);
	assert_int_equal(st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec, T(51));

	/* NOREPLACE onto an existing name */
	bad(e, o_rename(ROOT_FID, "c", 5, "c", WIRE_RENAME_NOREPLACE),
	    "applying RENAME seq", "File exists");
	assert_rel_content(e, "c", "AAAA!", 5);
	assert_rel_content(e, "sub/c", "Cc", 2);
}

static void test_errors(void **state)
{
	struct env *e = *state;
	uint64_t seq;
	int err_no;

	bad(e, o_bind(2, ROOT_FID, "missing"), "applying BIND seq 2 fid 2 as 'missing' in fid 1 (.)",
	    "No such file or directory");

	ok(e, o_create(2, ROOT_FID, "x", S_IFREG | 0644, 0, 0, T(1), T(2)));
	assert_int_equal(apply(e, o_create(3, ROOT_FID, "x", S_IFDIR | 0755, 0, 0, T(1), T(2))), -1);
	assert_non_null(strstr(e->err, "File exists"));
	assert_true(rfs_applier_diverged(e->a, &seq, &err_no));
	assert_int_equal(seq, e->seq);
	assert_int_equal(err_no, EEXIST);
	rfs_applier_reset(e->a);
	e->seq = 0;
	ok(e, o_bind(ROOT_FID, 0, ""));

	ok(e, o_bind(2, ROOT_FID, "x"));
	ok(e, o_write(2, 0, "1", 1));
	bad(e, (struct wire_op){ .seq = e->seq, .code = WIRE_OP_WRITE, .fid = 2, .data = (const uint8_t *)"2",
	                         .data_len = 1 }, "seq not above the last applied", NULL);
	bad(e, o_write(99, 8192, "2", 1), "applying WRITE seq 2 fid 99 (not bound) @8192 len 1",
	    "fid not bound");
	bad(e, (struct wire_op){ .code = WIRE_OP_UNBIND, .fid = 42 }, "fid not bound", NULL);
	bad(e, o_create(3, 42, "y", S_IFREG | 0644, 0, 0, 0, 0), "fid not bound", NULL);
	ok(e, o_bind(2, ROOT_FID, "x"));
	bad(e, o_create(3, 2, "y", S_IFREG | 0644, 0, 0, 0, 0), "not a directory", NULL);
	bad(e, (struct wire_op){ .code = WIRE_OP_BIND, .dir = 1, .fid = 5 }, "op for dir 1", NULL);
	bad(e, (struct wire_op){ .code = WIRE_OP_COPY, .fid = 1, .fid_in = 1, .len = 1 },
	    "not a regular file", NULL);
	/* a short copy source is divergence, not silence */
	ok(e, o_bind(2, ROOT_FID, "x"));
	ok(e, o_create(3, ROOT_FID, "empty", S_IFREG | 0644, 0, 0, 0, 0));
	bad(e, (struct wire_op){ .code = WIRE_OP_COPY, .fid = 2, .arg = 10, .fid_in = 3, .len = 5 },
	    "source file ends", NULL);
	assert_rel_content(e, "x", "1", 1);
}

/* A symlink planted in the copy, pointing outside, is never followed. */
static void test_symlink_escape(void **state)
{
	struct env *e = *state;
	char p[PATH_MAX], victim[PATH_MAX], buf[16];
	struct stat before, after;
	int fd;

	assert_true(snprintf(victim, sizeof(victim), "%s/victim", e->out) < (int)sizeof(victim));
	fd = open(victim, O_CREAT | O_WRONLY, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "safe", 4), 4);
	close(fd);
	assert_int_equal(stat(victim, &before), 0);
	path_of(e, "evil", p);
	assert_int_equal(symlink(e->out, p), 0);
	path_of(e, "evilf", p);
	assert_int_equal(symlink(victim, p), 0);

	ok(e, o_bind(2, ROOT_FID, "evil"));
	ok(e, o_bind(3, ROOT_FID, "evilf"));
	bad(e, o_create(4, 2, "x", S_IFREG | 0644, 0, 0, 0, 0), "not a directory", NULL);
	ok(e, o_bind(2, ROOT_FID, "evil"));
	bad(e, o_bind(4, 2, "victim"), "not a directory", NULL);
	bad(e, o_create(4, ROOT_FID, "evilf", S_IFREG | 0644, 0, 0, 0, 0), "File exists", NULL);
	ok(e, o_bind(3, ROOT_FID, "evilf"));
	bad(e, o_write(3, 0, "PWNED", 5), "not a regular file", NULL);
	ok(e, o_bind(3, ROOT_FID, "evilf"));
	bad(e, (struct wire_op){ .code = WIRE_OP_TRUNCATE, .fid = 3 }, "not a regular file", NULL);
	ok(e, o_bind(3, ROOT_FID, "evilf"));
	bad(e, (struct wire_op){ .code = WIRE_OP_SETATTR, .fid = 3, .arg = WIRE_ATTR_MODE, .mode = 0777 },
	    "mode of a symlink", NULL);
	ok(e, o_bind(3, ROOT_FID, "evilf"));
	ok(e, (struct wire_op){ .code = WIRE_OP_SETATTR, .fid = 3, .arg = WIRE_ATTR_UID | WIRE_ATTR_MTIME,
	                        .uid = 4242, .mtime_ns = T(3) });
	/* trusted.* is allowed on symlinks: it lands on the link itself */
	ok(e, (struct wire_op){ .code = WIRE_OP_SETXATTR, .fid = 3, .name = "trusted.t", .name_len = 9,
	                        .data = (const uint8_t *)"v", .data_len = 1 });
	fd = open(victim, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, buf, sizeof(buf)), 4);
	assert_memory_equal(buf, "safe", 4);
	close(fd);
	assert_int_equal(stat(victim, &after), 0);
	assert_int_equal(after.st_uid, before.st_uid);
	assert_int_equal(after.st_mode, before.st_mode);
	assert_int_equal(after.st_mtim.tv_sec, before.st_mtim.tv_sec);
	assert_int_equal(after.st_mtim.tv_nsec, before.st_mtim.tv_nsec);
	assert_int_equal(getxattr(victim, "trusted.t", buf, sizeof(buf)), -1);
	path_of(e, "evilf", p);
	assert_int_equal(lgetxattr(p, "trusted.t", buf, sizeof(buf)), 1);
	assert_int_equal(lstat(p, &after), 0);
	assert_int_equal(after.st_uid, 4242);
	assert_int_equal(after.st_mtim.tv_sec * 1000000000LL + after.st_mtim.tv_nsec, T(3));
	/* nothing was created outside */
	assert_true(snprintf(p, sizeof(p), "%s/x", e->out) < (int)sizeof(p));
	assert_int_equal(access(p, F_OK), -1);
}

static void test_durable(void **state)
{
	struct env *e = *state;

	ok(e, o_create(2, ROOT_FID, "f", S_IFREG | 0644, 0, 0, T(1), T(2)));
	ok(e, o_write(2, 0, "a", 1));
	assert_int_equal(rfs_applier_durable_seq(e->a), 0);
	ok(e, (struct wire_op){ .code = WIRE_OP_FSYNC, .fid = 2 });
	assert_int_equal(rfs_applier_durable_seq(e->a), e->seq);
	ok(e, o_write(2, 1, "b", 1));
	assert_int_equal(rfs_applier_durable_seq(e->a), e->seq - 1);
	struct wire_op w = o_write(2, 2, "c", 1);

	w.flags = WIRE_OPF_DSYNC;
	ok(e, w);
	assert_int_equal(rfs_applier_durable_seq(e->a), e->seq);
	ok(e, (struct wire_op){ .code = WIRE_OP_FSYNCDIR, .fid = ROOT_FID });
	assert_int_equal(rfs_applier_durable_seq(e->a), e->seq);
	ok(e, o_write(2, 3, "d", 1));
	assert_int_equal(rfs_applier_ckpt_seq(e->a), 0);
	e->seq += 10;   /* seqs may skip (other dirs' ops) */
	ok(e, (struct wire_op){ .code = WIRE_OP_BARRIER, .arg = 7 });
	assert_int_equal(rfs_applier_durable_seq(e->a), e->seq);
	assert_int_equal(rfs_applier_ckpt_seq(e->a), e->seq);
	ok(e, o_write(2, 4, "e", 1));
	assert_int_equal(rfs_applier_checkpoint(e->a), 0);
	assert_int_equal(rfs_applier_ckpt_seq(e->a), e->seq);
	assert_int_equal(rfs_applier_durable_seq(e->a), e->seq);
	assert_rel_content(e, "f", "abcde", 5);
	bad(e, (struct wire_op){ .code = WIRE_OP_FSYNCDIR, .fid = 2 }, "FSYNCDIR of a non-directory", NULL);
	assert_int_equal(rfs_applier_durable_seq(e->a), 0);     /* reset */
}

/* More files than write fds: evicted ones reopen and stay correct. */
static void test_lru(void **state)
{
	struct env *e = *state;
	enum { N = RFS_APPLY_WFD_MAX + 60 };
	char name[32], want[32];
	uint64_t first = 100;

	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		ok(e, o_create(first + (uint64_t)i, ROOT_FID, name, S_IFREG | 0644, 0, 0, 0, 0));
		ok(e, o_write(first + (uint64_t)i, 0, name, strlen(name)));
		assert_true(rfs_applier_nwfds(e->a) <= RFS_APPLY_WFD_MAX);
	}
	assert_int_equal(rfs_applier_nwfds(e->a), RFS_APPLY_WFD_MAX);
	assert_int_equal(rfs_applier_nfids(e->a), N + 1);
	/* second pass in the same order: every one was evicted, reopens */
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		ok(e, o_write(first + (uint64_t)i, strlen(name), "+", 1));
	}
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		snprintf(want, sizeof(want), "f%d+", i);
		assert_rel_content(e, name, want, strlen(want));
	}
	assert_int_equal(rfs_applier_nwfds(e->a), RFS_APPLY_WFD_MAX);
	for (int i = 0; i < N; i++)
		ok(e, (struct wire_op){ .code = WIRE_OP_UNBIND, .fid = first + (uint64_t)i });
	assert_int_equal(rfs_applier_nwfds(e->a), 0);
	assert_int_equal(rfs_applier_nfids(e->a), 1);
}

/* The reintegration's walk (WIRE_OPF_RESYNC), merged into a copy that
 * already holds files: apply_merge.c. */

static struct wire_op o_rcreate(uint64_t fid, uint64_t parent, const char *name, uint32_t mode,
                                uint32_t uid, uint32_t gid, int64_t mtime, bool fresh)
{
	struct wire_op op = o_create(fid, parent, name, mode, uid, gid, mtime, 0);

	op.flags = WIRE_OPF_RESYNC | (fresh ? WIRE_OPF_FRESH : 0);
	return op;
}

static struct wire_op o_rlink(uint64_t fid, uint64_t parent, const char *name, int64_t pmtime)
{
	return (struct wire_op){ .code = WIRE_OP_LINK, .flags = WIRE_OPF_RESYNC, .fid = fid,
	                         .arg = parent, .pmtime_ns = pmtime, .name = name,
	                         .name_len = (uint16_t)strlen(name) };
}

/* The post-order SETATTR of a directory: ends its listing. */
static struct wire_op o_rdone(uint64_t fid, int64_t mtime)
{
	return (struct wire_op){ .code = WIRE_OP_SETATTR, .flags = WIRE_OPF_RESYNC, .fid = fid,
	                         .arg = WIRE_ATTR_MTIME, .mtime_ns = mtime };
}

/* Files planted in the copy, as SECOND had them before the walk. */
static void put_file(const struct env *e, const char *rel, const char *data)
{
	char p[PATH_MAX];
	int fd;

	path_of(e, rel, p);
	fd = open(p, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
	if (fd < 0)
		fail_msg("create %s: %s", p, strerror(errno));
	assert_int_equal(write(fd, data, strlen(data)), (ssize_t)strlen(data));
	close(fd);
}

static void put_dir(const struct env *e, const char *rel)
{
	char p[PATH_MAX];

	path_of(e, rel, p);
	if (mkdir(p, 0700) < 0)
		fail_msg("mkdir %s: %s", p, strerror(errno));
}

/* Holds the inode of rel, so that a new object cannot get its number. */
static int hold(const struct env *e, const char *rel)
{
	char p[PATH_MAX];
	int fd;

	path_of(e, rel, p);
	fd = open(p, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	assert_true(fd >= 0);
	return fd;
}

/* The held object was removed from the copy (no name left). */
static void assert_gone(int fd)
{
	struct stat st;

	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_nlink, 0);
	close(fd);
}

static int64_t mtime_of(const struct stat *st)
{
	return st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
}

/* Fails with a text holding want and the copy marked for a full one; then
 * the applier is reset for a new connection, which clears that mark. */
static void bad_full(struct env *e, struct wire_op op, const char *want)
{
	assert_false(rfs_applier_needs_full(e->a));
	assert_int_equal(apply(e, op), -1);
	if (!strstr(e->err, want) || !strstr(e->err, "applying CREATE seq"))
		fail_msg("error text '%s' lacks '%s'", e->err, want);
	assert_true(rfs_applier_diverged(e->a, NULL, NULL));
	assert_true(rfs_applier_needs_full(e->a));
	rfs_applier_reset(e->a);
	assert_false(rfs_applier_needs_full(e->a));
	assert_false(rfs_applier_diverged(e->a, NULL, NULL));
	e->seq = 0;
	ok(e, o_bind(ROOT_FID, 0, ""));
}

/* Without FRESH the object SECOND has is kept: same inode and data, with
 * the op's owner, mode and times, and none of its old xattrs. */
static void test_merge_keep(void **state)
{
	struct env *e = *state;
	struct stat before, st;
	char p[PATH_MAX], buf[16];

	put_file(e, "f", "old data");
	path_of(e, "f", p);
	assert_int_equal(setxattr(p, "user.x", "1", 1, 0), 0);
	assert_int_equal(setxattr(p, "trusted.y", "2", 1, 0), 0);
	lst(e, "f", &before);
	put_dir(e, "d");
	put_file(e, "d/inner", "in");
	path_of(e, "d", p);
	assert_int_equal(setxattr(p, "user.dx", "3", 1, 0), 0);
	path_of(e, "s", p);
	assert_int_equal(symlink("f", p), 0);
	path_of(e, "fifo", p);
	assert_int_equal(mkfifo(p, 0600), 0);

	ok(e, o_rcreate(2, ROOT_FID, "f", S_IFREG | 0640, 1000, 1001, T(1), false));
	lst(e, "f", &st);
	assert_int_equal(st.st_ino, before.st_ino);
	assert_int_equal(st.st_mode, S_IFREG | 0640);
	assert_int_equal(st.st_uid, 1000);
	assert_int_equal(st.st_gid, 1001);
	assert_int_equal(mtime_of(&st), T(1));
	assert_int_equal(st.st_atim.tv_sec * 1000000000LL + st.st_atim.tv_nsec, T(1));
	assert_rel_content(e, "f", "old data", 8);
	path_of(e, "f", p);
	assert_int_equal(getxattr(p, "user.x", buf, sizeof(buf)), -1);
	assert_int_equal(errno, ENODATA);
	assert_int_equal(getxattr(p, "trusted.y", buf, sizeof(buf)), -1);
	assert_int_equal(errno, ENODATA);
	/* the walk then sends PRIM's xattrs and changed ranges to that fid */
	ok(e, (struct wire_op){ .code = WIRE_OP_SETXATTR, .fid = 2, .name = "user.p", .name_len = 6,
	                        .data = (const uint8_t *)"P", .data_len = 1 });
	ok(e, (struct wire_op){ .code = WIRE_OP_WRITE, .flags = WIRE_OPF_RESYNC, .fid = 2,
	                        .data = (const uint8_t *)"NEW", .data_len = 3 });
	assert_rel_content(e, "f", "NEW data", 8);
	assert_int_equal(getxattr(p, "user.p", buf, sizeof(buf)), 1);

	ok(e, o_rcreate(3, ROOT_FID, "d", S_IFDIR | 0751, 7, 8, T(2), false));
	lst(e, "d", &st);
	assert_int_equal(st.st_mode, S_IFDIR | 0751);
	assert_int_equal(st.st_uid, 7);
	assert_rel_content(e, "d/inner", "in", 2);     /* not pruned yet */
	path_of(e, "d", p);
	assert_int_equal(getxattr(p, "user.dx", buf, sizeof(buf)), -1);
	assert_int_equal(errno, ENODATA);
	/* kept as a directory fid: names resolve in it */
	ok(e, o_rcreate(4, 3, "inner", S_IFREG | 0600, 0, 0, T(3), false));
	assert_rel_content(e, "d/inner", "in", 2);

	ok(e, (struct wire_op){ .code = WIRE_OP_CREATE, .flags = WIRE_OPF_RESYNC, .fid = 5,
	                        .arg = ROOT_FID, .mode = S_IFLNK | 0777, .uid = 9, .gid = 9,
	                        .mtime_ns = T(4), .name = "s", .name_len = 1, .name2 = "f",
	                        .name2_len = 1 });
	lst(e, "s", &st);
	assert_true(S_ISLNK(st.st_mode));
	assert_int_equal(st.st_uid, 9);
	assert_int_equal(mtime_of(&st), T(4));
	ok(e, o_rcreate(6, ROOT_FID, "fifo", S_IFIFO | 0644, 0, 0, T(5), false));
	lst(e, "fifo", &st);
	assert_int_equal(st.st_mode, S_IFIFO | 0644);
	assert_false(rfs_applier_needs_full(e->a));
	assert_int_equal(rfs_applier_nfids(e->a), 6);
}

/* Without FRESH, a name the copy lacks, or holds as another object, means
 * the copy is not what PRIM's record says: a full copy must follow. */
static void test_merge_unlike(void **state)
{
	struct env *e = *state;
	struct stat st;
	char p[PATH_MAX];

	bad_full(e, o_rcreate(2, ROOT_FID, "nope", S_IFREG | 0644, 0, 0, T(1), false), "lacks it");
	assert_absent(e, "nope");

	put_dir(e, "x");
	put_file(e, "x/keep", "k");
	bad_full(e, o_rcreate(2, ROOT_FID, "x", S_IFREG | 0644, 0, 0, T(1), false), "another type");
	lst(e, "x", &st);                       /* left alone */
	assert_true(S_ISDIR(st.st_mode));
	assert_rel_content(e, "x/keep", "k", 1);

	put_file(e, "r", "r");
	bad_full(e, o_rcreate(2, ROOT_FID, "r", S_IFDIR | 0755, 0, 0, T(1), false), "another type");
	assert_rel_content(e, "r", "r", 1);

	path_of(e, "s", p);
	assert_int_equal(symlink("old-target", p), 0);
	bad_full(e, (struct wire_op){ .code = WIRE_OP_CREATE, .flags = WIRE_OPF_RESYNC, .fid = 2,
	                              .arg = ROOT_FID, .mode = S_IFLNK | 0777, .name = "s",
	                              .name_len = 1, .name2 = "new-target", .name2_len = 10 },
	         "target differs");

	/* in a subdirectory too */
	ok(e, o_rcreate(3, ROOT_FID, "x", S_IFDIR | 0755, 0, 0, T(1), false));
	bad_full(e, o_rcreate(4, 3, "gone", S_IFREG | 0644, 0, 0, T(1), false), "lacks it");
}

/* FRESH: whatever holds the name is replaced by a new, empty object. */
static void test_merge_fresh(void **state)
{
	struct env *e = *state;
	struct stat st, old;
	int hf, ht, hu, hsub;
	char p[PATH_MAX], buf[16];

	put_file(e, "f", "old data");
	path_of(e, "f", p);
	assert_int_equal(setxattr(p, "user.x", "1", 1, 0), 0);
	put_dir(e, "t");
	put_file(e, "t/a", "a");
	put_dir(e, "t/sub");
	put_file(e, "t/sub/b", "b");
	put_dir(e, "u");
	put_file(e, "u/c", "c");
	hf = hold(e, "f");
	ht = hold(e, "t");
	hu = hold(e, "u");
	hsub = hold(e, "t/sub");
	assert_int_equal(fstat(hf, &old), 0);

	/* a file over a file */
	ok(e, o_rcreate(2, ROOT_FID, "f", S_IFREG | 0644, 1, 2, T(1), true));
	lst(e, "f", &st);
	assert_true(st.st_ino != old.st_ino);
	assert_int_equal(st.st_mode, S_IFREG | 0644);
	assert_int_equal(st.st_uid, 1);
	assert_int_equal(st.st_gid, 2);
	assert_int_equal(mtime_of(&st), T(1));
	assert_rel_content(e, "f", "", 0);
	assert_int_equal(getxattr(p, "user.x", buf, sizeof(buf)), -1);
	assert_gone(hf);
	ok(e, o_write(2, 0, "new", 3));         /* the fid is the new file */
	assert_rel_content(e, "f", "new", 3);

	/* a directory over a non-empty tree: new and empty */
	ok(e, o_rcreate(3, ROOT_FID, "t", S_IFDIR | 0755, 0, 0, T(2), true));
	lst(e, "t", &st);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0755);
	assert_absent(e, "t/a");
	assert_absent(e, "t/sub");
	assert_gone(ht);
	assert_gone(hsub);
	ok(e, o_rcreate(4, 3, "a", S_IFREG | 0600, 0, 0, T(3), true));
	assert_rel_content(e, "t/a", "", 0);

	/* a file over a tree */
	ok(e, o_rcreate(5, ROOT_FID, "u", S_IFREG | 0600, 0, 0, T(4), true));
	lst(e, "u", &st);
	assert_true(S_ISREG(st.st_mode));
	assert_rel_content(e, "u", "", 0);
	assert_gone(hu);

	/* a free name: simply made */
	ok(e, o_rcreate(6, ROOT_FID, "n", S_IFDIR | 0700, 0, 0, T(5), true));
	lst(e, "n", &st);
	assert_true(S_ISDIR(st.st_mode));
	assert_false(rfs_applier_needs_full(e->a));
}

static struct wire_op o_stash(uint64_t fid, const char *path)
{
	return (struct wire_op){ .code = WIRE_OP_STASH, .fid = fid, .name = path,
	                         .name_len = (uint16_t)strlen(path) };
}

/* Rename matching (apply_stash.c): STASH moves an old name's object aside,
 * CREATE with FRESH|ORIGIN takes it back under the new name; a miss makes
 * the object afresh; nothing is followed out of the copy. */
static void test_merge_origin(void **state)
{
	struct env *e = *state;
	struct stat st, was_f, was_d;
	char stash[PATH_MAX + 8], p[PATH_MAX];
	struct wire_op c;
	int hf;

	put_dir(e, "a");
	put_file(e, "a/f", "renamed file");
	path_of(e, "a/f", p);
	assert_int_equal(setxattr(p, "user.old", "1", 1, 0), 0);
	put_dir(e, "d");
	put_file(e, "d/g", "in a renamed dir");
	put_file(e, "two", "two links");
	path_of(e, "two", p);
	{
		char q[PATH_MAX];

		path_of(e, "two2", q);
		assert_int_equal(link(p, q), 0);
	}
	put_file(e, "target", "outside");
	path_of(e, "target", p);
	{
		char l[PATH_MAX];

		path_of(e, "lnk", l);
		assert_int_equal(symlink(e->out, l), 0);
	}
	{
		char o[PATH_MAX + 8];
		int fd;

		snprintf(o, sizeof(o), "%s/x", e->out);
		fd = open(o, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
		assert_true(fd >= 0);
		close(fd);
	}
	lst(e, "a/f", &was_f);
	lst(e, "d", &was_d);
	/* Without a stash, STASH does nothing. */
	ok(e, o_stash(10, "a/f"));
	lst(e, "a/f", &st);

	snprintf(stash, sizeof(stash), "%s/stash", e->out);
	assert_int_equal(rfs_applier_set_stash(e->a, stash), 0);
	ok(e, o_stash(10, "a/f"));
	ok(e, o_stash(11, "d"));
	ok(e, o_stash(12, "two"));              /* two links: stays */
	ok(e, o_stash(13, "lnk/x"));            /* through a symlink: not followed */
	ok(e, o_stash(14, "no/such"));          /* a miss is no error */
	assert_absent(e, "a/f");
	assert_absent(e, "d");
	lst(e, "two", &st);
	{
		char o[PATH_MAX + 8];

		snprintf(o, sizeof(o), "%s/x", e->out);
		assert_int_equal(lstat(o, &st), 0);
	}
	hf = hold(e, "a");

	/* The file under its new name, with the op's attributes, no old xattrs. */
	c = o_rcreate(10, ROOT_FID, "f2", S_IFREG | 0640, 3, 4, T(1), true);
	c.flags |= WIRE_OPF_ORIGIN;
	ok(e, c);
	lst(e, "f2", &st);
	assert_int_equal(st.st_ino, was_f.st_ino);
	assert_int_equal(st.st_mode, S_IFREG | 0640);
	assert_int_equal(st.st_uid, 3);
	assert_int_equal(mtime_of(&st), T(1));
	assert_rel_content(e, "f2", "renamed file", 12);
	path_of(e, "f2", p);
	{
		char buf[8];

		assert_int_equal(getxattr(p, "user.old", buf, sizeof(buf)), -1);
	}
	/* The directory, over whatever held the new name, with its content. */
	put_file(e, "d2", "in the way");
	c = o_rcreate(11, ROOT_FID, "d2", S_IFDIR | 0755, 0, 0, T(2), true);
	c.flags |= WIRE_OPF_ORIGIN;
	ok(e, c);
	lst(e, "d2", &st);
	assert_int_equal(st.st_ino, was_d.st_ino);
	assert_rel_content(e, "d2/g", "in a renamed dir", 16);
	/* A type that does not match, or nothing stashed: made afresh. */
	c = o_rcreate(12, ROOT_FID, "t2", S_IFREG | 0600, 0, 0, T(3), true);
	c.flags |= WIRE_OPF_ORIGIN;
	ok(e, c);
	assert_rel_content(e, "t2", "", 0);
	c = o_rcreate(10, ROOT_FID, "again", S_IFDIR | 0700, 0, 0, T(4), true);
	c.flags |= WIRE_OPF_ORIGIN;
	ok(e, c);                               /* fid 10 was taken already */
	lst(e, "again", &st);
	assert_true(S_ISDIR(st.st_mode));
	assert_false(rfs_applier_needs_full(e->a));
	close(hf);
	/* What nobody took goes when the stash is cleared; the stash stays. */
	ok(e, o_stash(15, "two2"));             /* "two" still links it: stays */
	put_file(e, "left", "left over");
	ok(e, o_stash(16, "left"));
	assert_absent(e, "left");
	rfs_applier_clear_stash(e->a);
	{
		char k[PATH_MAX + 40];

		snprintf(k, sizeof(k), "%s/%016x", stash, 16);
		assert_int_equal(lstat(k, &st), -1);
		assert_int_equal(lstat(stash, &st), 0);
	}
	assert_int_equal(rfs_applier_set_stash(e->a, NULL), 0);
}

/* LINK|RESYNC: a name that already is the inode stays, another object at
 * the name is replaced by the link. */
static void test_merge_link(void **state)
{
	struct env *e = *state;
	struct stat a, st;
	char p[PATH_MAX], q[PATH_MAX];
	int hc, hd;

	put_file(e, "a", "AAA");
	path_of(e, "a", p);
	path_of(e, "b", q);
	assert_int_equal(link(p, q), 0);
	put_file(e, "c", "other");
	put_dir(e, "d");
	put_file(e, "d/x", "x");
	hc = hold(e, "c");
	hd = hold(e, "d");

	ok(e, o_rcreate(2, ROOT_FID, "a", S_IFREG | 0644, 0, 0, T(1), false));
	lst(e, "a", &a);
	assert_int_equal(a.st_nlink, 2);

	ok(e, o_rlink(2, ROOT_FID, "b", T(7)));
	lst(e, "b", &st);
	assert_int_equal(st.st_ino, a.st_ino);
	assert_int_equal(st.st_nlink, 2);
	lst(e, ".", &st);
	assert_int_equal(mtime_of(&st), T(7));

	ok(e, o_rlink(2, ROOT_FID, "c", T(8)));
	lst(e, "c", &st);
	assert_int_equal(st.st_ino, a.st_ino);
	assert_int_equal(st.st_nlink, 3);
	assert_rel_content(e, "c", "AAA", 3);
	assert_gone(hc);

	ok(e, o_rlink(2, ROOT_FID, "d", T(9)));
	lst(e, "d", &st);
	assert_int_equal(st.st_ino, a.st_ino);
	assert_gone(hd);

	ok(e, o_rlink(2, ROOT_FID, "e", T(10)));
	lst(e, "e", &st);
	assert_int_equal(st.st_ino, a.st_ino);
	assert_int_equal(st.st_nlink, 5);
	assert_false(rfs_applier_needs_full(e->a));

	/* a listed link name is not pruned */
	ok(e, o_rdone(ROOT_FID, T(11)));
	lst(e, "b", &st);
	assert_int_equal(st.st_nlink, 5);
}

/* A directory's RESYNC SETATTR ends its listing: what was not listed goes,
 * except excluded names; its times are set after the removal. */
static void test_merge_prune(void **state)
{
	static const char *const ex[] = { "*.tmp" };
	struct env *e = *state;
	struct stat st;
	int hd;

	assert_int_equal(rfs_exclude_set(ex, 1), 0);
	put_file(e, "a", "a");
	put_dir(e, "b");
	put_file(e, "b/old", "o");
	put_file(e, "b/kept", "k");
	put_file(e, "c", "c");
	put_dir(e, "d");
	put_file(e, "d/x", "x");
	put_dir(e, "d/y");
	put_file(e, "d/y/z", "z");
	put_file(e, "keep.tmp", "t");
	put_dir(e, "dir.tmp");
	put_file(e, "dir.tmp/in", "i");
	put_dir(e, "e");
	put_file(e, "e/gone", "g");
	put_file(e, "b/old.tmp", "t");
	hd = hold(e, "d");

	ok(e, o_rcreate(2, ROOT_FID, "a", S_IFREG | 0644, 0, 0, T(1), false));
	ok(e, o_rcreate(3, ROOT_FID, "b", S_IFDIR | 0755, 0, 0, T(2), false));
	ok(e, o_rcreate(4, 3, "kept", S_IFREG | 0644, 0, 0, T(3), false));
	/* a plain SETATTR of a directory prunes nothing */
	ok(e, (struct wire_op){ .code = WIRE_OP_SETATTR, .fid = 3, .arg = WIRE_ATTR_MTIME,
	                        .mtime_ns = T(4) });
	assert_rel_content(e, "b/old", "o", 1);
	ok(e, o_rdone(3, T(5)));
	assert_absent(e, "b/old");
	assert_rel_content(e, "b/kept", "k", 1);
	assert_rel_content(e, "b/old.tmp", "t", 1);
	lst(e, "b", &st);
	assert_int_equal(mtime_of(&st), T(5));
	/* a listed directory that lists nothing: emptied */
	ok(e, o_rcreate(5, ROOT_FID, "e", S_IFDIR | 0755, 0, 0, T(6), false));
	ok(e, o_rdone(5, T(7)));
	assert_absent(e, "e/gone");
	lst(e, "e", &st);
	assert_int_equal(mtime_of(&st), T(7));

	ok(e, o_rdone(ROOT_FID, T(8)));
	assert_rel_content(e, "a", "a", 1);
	assert_rel_content(e, "b/kept", "k", 1);
	assert_absent(e, "c");
	assert_absent(e, "d");
	assert_gone(hd);
	assert_rel_content(e, "keep.tmp", "t", 1);
	assert_rel_content(e, "dir.tmp/in", "i", 1);
	lst(e, ".", &st);
	assert_int_equal(mtime_of(&st), T(8));
	assert_false(rfs_applier_needs_full(e->a));

	/* the listing ended with it: a new one starts empty */
	ok(e, o_rdone(ROOT_FID, T(9)));
	assert_absent(e, "a");
	assert_absent(e, "b");
	assert_absent(e, "e");
	assert_rel_content(e, "keep.tmp", "t", 1);

	/* a new connection drops the listings made so far */
	put_file(e, "p", "p");
	put_file(e, "q", "q");
	ok(e, o_rcreate(6, ROOT_FID, "p", S_IFREG | 0644, 0, 0, T(1), false));
	ok(e, o_rcreate(7, ROOT_FID, "q", S_IFREG | 0644, 0, 0, T(1), false));
	rfs_applier_reset(e->a);
	e->seq = 0;
	ok(e, o_bind(ROOT_FID, 0, ""));
	ok(e, o_rcreate(7, ROOT_FID, "q", S_IFREG | 0644, 0, 0, T(1), false));
	ok(e, o_rdone(ROOT_FID, T(10)));
	assert_absent(e, "p");
	assert_rel_content(e, "q", "q", 1);
	assert_int_equal(rfs_exclude_set(NULL, 0), 0);
}

/* CREATE with RESYNC|MAYBE: the name is in a directory whose history PRIM's
 * record may have lost, so SECOND keeps what matches and fixes the rest. */
static struct wire_op o_mcreate(uint64_t fid, uint64_t parent, const char *name, uint32_t mode,
                                int64_t mtime)
{
	struct wire_op op = o_create(fid, parent, name, mode, 3, 4, mtime, 0);

	op.flags = WIRE_OPF_RESYNC | WIRE_OPF_MAYBE;
	return op;
}

static struct wire_op o_mlink(uint64_t fid, uint64_t parent, const char *name, const char *target)
{
	struct wire_op op = o_mcreate(fid, parent, name, S_IFLNK | 0777, T(9));

	op.name2 = target;
	op.name2_len = (uint16_t)strlen(target);
	return op;
}

static void assert_target(const struct env *e, const char *rel, const char *want)
{
	char p[PATH_MAX], buf[PATH_MAX];
	ssize_t n;

	path_of(e, rel, p);
	n = readlink(p, buf, sizeof(buf) - 1);
	assert_true(n >= 0);
	buf[n] = 0;
	assert_string_equal(buf, want);
}

/* A name the copy lacks is simply made: no error, no full copy. */
static void test_merge_maybe_missing(void **state)
{
	struct env *e = *state;
	struct stat st;

	ok(e, o_mcreate(2, ROOT_FID, "f", S_IFREG | 0640, T(1)));
	lst(e, "f", &st);
	assert_int_equal(st.st_mode, S_IFREG | 0640);
	assert_int_equal(st.st_uid, 3);
	assert_int_equal(st.st_gid, 4);
	assert_int_equal(mtime_of(&st), T(1));
	assert_rel_content(e, "f", "", 0);
	ok(e, o_write(2, 0, "abc", 3));         /* the fid is the new file */
	assert_rel_content(e, "f", "abc", 3);

	ok(e, o_mcreate(3, ROOT_FID, "d", S_IFDIR | 0750, T(2)));
	lst(e, "d", &st);
	assert_int_equal(st.st_mode, S_IFDIR | 0750);
	ok(e, o_mcreate(4, 3, "in", S_IFREG | 0600, T(3)));
	assert_rel_content(e, "d/in", "", 0);

	ok(e, o_mlink(5, ROOT_FID, "s", "some/where"));
	assert_target(e, "s", "some/where");
	ok(e, o_mcreate(6, ROOT_FID, "p", S_IFIFO | 0600, T(4)));
	lst(e, "p", &st);
	assert_true(S_ISFIFO(st.st_mode));
	assert_false(rfs_applier_needs_full(e->a));
	assert_false(rfs_applier_diverged(e->a, NULL, NULL));
	assert_int_equal(rfs_applier_nfids(e->a), 6);
}

/* An object of the same type (a file with one link, a directory, a symlink
 * with the same target) is kept: same inode, data and content untouched,
 * the op's owner, mode and times. */
static void test_merge_maybe_keep(void **state)
{
	struct env *e = *state;
	struct stat bf, bd, bs, st;
	char p[PATH_MAX];

	put_file(e, "f", "old data");
	put_dir(e, "d");
	put_file(e, "d/inner", "in");
	path_of(e, "s", p);
	assert_int_equal(symlink("same", p), 0);
	lst(e, "f", &bf);
	lst(e, "d", &bd);
	lst(e, "s", &bs);

	ok(e, o_mcreate(2, ROOT_FID, "f", S_IFREG | 0604, T(1)));
	lst(e, "f", &st);
	assert_int_equal(st.st_ino, bf.st_ino);
	assert_int_equal(st.st_mode, S_IFREG | 0604);
	assert_int_equal(st.st_uid, 3);
	assert_int_equal(mtime_of(&st), T(1));
	assert_rel_content(e, "f", "old data", 8);

	ok(e, o_mcreate(3, ROOT_FID, "d", S_IFDIR | 0711, T(2)));
	lst(e, "d", &st);
	assert_int_equal(st.st_ino, bd.st_ino);
	assert_int_equal(st.st_mode, S_IFDIR | 0711);
	assert_rel_content(e, "d/inner", "in", 2);
	/* kept as a directory fid: names resolve in it, kept again */
	ok(e, o_mcreate(4, 3, "inner", S_IFREG | 0600, T(3)));
	assert_rel_content(e, "d/inner", "in", 2);

	ok(e, o_mlink(5, ROOT_FID, "s", "same"));
	lst(e, "s", &st);
	assert_int_equal(st.st_ino, bs.st_ino);
	assert_target(e, "s", "same");

	/* the listing still ends the usual way: the kept content was listed */
	ok(e, o_rdone(3, T(5)));
	assert_rel_content(e, "d/inner", "in", 2);
	assert_false(rfs_applier_needs_full(e->a));
	assert_int_equal(rfs_applier_nfids(e->a), 5);
}

/* A regular file with another name here: keeping it would keep data PRIM
 * never vouched for, truncating it would change the other name. Neither:
 * the copy needs a full one, and the file is left as it was. */
static void test_merge_maybe_links(void **state)
{
	struct env *e = *state;
	struct stat before, st;
	char p[PATH_MAX], q[PATH_MAX];

	put_file(e, "a", "shared");
	path_of(e, "a", p);
	path_of(e, "b", q);
	assert_int_equal(link(p, q), 0);
	lst(e, "a", &before);

	bad_full(e, o_mcreate(2, ROOT_FID, "a", S_IFREG | 0644, T(1)), "other links");
	lst(e, "a", &st);
	assert_int_equal(st.st_ino, before.st_ino);
	assert_int_equal(st.st_nlink, 2);
	assert_int_equal(st.st_mode, before.st_mode);
	assert_rel_content(e, "a", "shared", 6);
	assert_rel_content(e, "b", "shared", 6);

	/* the same name as another type is only a name: replaced, the other
	 * link keeps the data */
	ok(e, o_mcreate(2, ROOT_FID, "a", S_IFDIR | 0755, T(2)));
	lst(e, "a", &st);
	assert_true(S_ISDIR(st.st_mode));
	lst(e, "b", &st);
	assert_int_equal(st.st_ino, before.st_ino);
	assert_int_equal(st.st_nlink, 1);
	assert_rel_content(e, "b", "shared", 6);
	/* now it has one link: kept */
	ok(e, o_mcreate(3, ROOT_FID, "b", S_IFREG | 0644, T(3)));
	lst(e, "b", &st);
	assert_int_equal(st.st_ino, before.st_ino);
	assert_rel_content(e, "b", "shared", 6);
	assert_false(rfs_applier_needs_full(e->a));
}

/* Anything else at the name is replaced, without a full copy. */
static void test_merge_maybe_replace(void **state)
{
	struct env *e = *state;
	struct stat st, old;
	char p[PATH_MAX];
	int hd, hsub, hf, hs;

	put_dir(e, "d");
	put_file(e, "d/x", "x");
	put_dir(e, "d/sub");
	put_file(e, "d/sub/y", "y");
	put_file(e, "f", "file");
	path_of(e, "s", p);
	assert_int_equal(symlink("old-target", p), 0);
	hd = hold(e, "d");
	hsub = hold(e, "d/sub");
	hf = hold(e, "f");
	hs = hold(e, "s");
	assert_int_equal(fstat(hs, &old), 0);

	/* a tree where PRIM has a regular file */
	ok(e, o_mcreate(2, ROOT_FID, "d", S_IFREG | 0644, T(1)));
	lst(e, "d", &st);
	assert_int_equal(st.st_mode, S_IFREG | 0644);
	assert_int_equal(mtime_of(&st), T(1));
	assert_rel_content(e, "d", "", 0);
	assert_gone(hd);
	assert_gone(hsub);
	ok(e, o_write(2, 0, "new", 3));
	assert_rel_content(e, "d", "new", 3);

	/* a symlink with another target */
	ok(e, o_mlink(3, ROOT_FID, "s", "new-target"));
	assert_target(e, "s", "new-target");
	lst(e, "s", &st);
	assert_true(st.st_ino != old.st_ino);
	assert_gone(hs);

	/* a file where PRIM has a directory: new and empty */
	ok(e, o_mcreate(4, ROOT_FID, "f", S_IFDIR | 0700, T(2)));
	lst(e, "f", &st);
	assert_int_equal(st.st_mode, S_IFDIR | 0700);
	assert_gone(hf);
	ok(e, o_mcreate(5, 4, "in", S_IFREG | 0600, T(3)));
	assert_rel_content(e, "f/in", "", 0);

	/* a symlink where PRIM has a regular file */
	ok(e, o_mcreate(6, ROOT_FID, "s", S_IFREG | 0600, T(4)));
	lst(e, "s", &st);
	assert_true(S_ISREG(st.st_mode));
	assert_false(rfs_applier_needs_full(e->a));
	assert_false(rfs_applier_diverged(e->a, NULL, NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_sequence, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rmdir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_unlinked, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rename_over_and_exchange, setup, teardown),
		cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_symlink_escape, setup, teardown),
		cmocka_unit_test_setup_teardown(test_durable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lru, setup, teardown),
		cmocka_unit_test_setup_teardown(test_merge_keep, setup, teardown),
		cmocka_unit_test_setup_teardown(test_merge_unlike, setup, teardown),
		cmocka_unit_test_setup_teardown(test_merge_fresh, setup, teardown),
		cmocka_unit_test_setup_teardown(test_merge_link, setup, teardown),
		cmocka_unit_test_setup_teardown(test_merge_prune, setup, teardown),
		cmocka_unit_test_setup_teardown(test_merge_maybe_missing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_merge_maybe_keep, setup, teardown),
		cmocka_unit_test_setup_teardown(test_merge_maybe_links, setup, teardown),
		cmocka_unit_test_setup_teardown(test_merge_maybe_replace, setup, teardown),
		cmocka_unit_test_setup_teardown(test_merge_origin, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
