/* Old paths of renamed objects (contract in origin.h): open addressing on
 * (dir, ino), grown at half full. */
#include "rfs/origin.h"

#include <stdlib.h>
#include <string.h>

struct slot {
	uint64_t ino;
	uint8_t dir;
	char *path;                     /* NULL: empty */
};

struct origin_map {
	struct slot *s;
	size_t cap, n;
};

static size_t hash(uint8_t dir, uint64_t ino, size_t cap)
{
	uint64_t h = (ino ^ ((uint64_t)dir << 56)) * 0x9e3779b97f4a7c15ull;

	return (size_t)(h >> 20) & (cap - 1);
}

struct origin_map *origin_new(void)
{
	return calloc(1, sizeof(struct origin_map));
}

void origin_clear(struct origin_map *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->cap; i++)
		free(m->s[i].path);
	free(m->s);
	m->s = NULL;
	m->cap = m->n = 0;
}

void origin_free(struct origin_map *m)
{
	origin_clear(m);
	free(m);
}

static struct slot *find(const struct origin_map *m, uint8_t dir, uint64_t ino)
{
	if (!m->cap)
		return NULL;
	for (size_t i = hash(dir, ino, m->cap);; i = (i + 1) & (m->cap - 1)) {
		struct slot *s = &m->s[i];

		if (!s->path || (s->dir == dir && s->ino == ino))
			return s;
	}
}

static int grow(struct origin_map *m)
{
	size_t cap = m->cap ? m->cap * 2 : 256;
	struct slot *n = calloc(cap, sizeof(*n));

	if (!n)
		return -1;
	for (size_t i = 0; i < m->cap; i++) {
		size_t j;

		if (!m->s[i].path)
			continue;
		for (j = hash(m->s[i].dir, m->s[i].ino, cap); n[j].path; j = (j + 1) & (cap - 1))
			;
		n[j] = m->s[i];
	}
	free(m->s);
	m->s = n;
	m->cap = cap;
	return 0;
}

int origin_note(struct origin_map *m, uint8_t dir, uint64_t ino, const char *path)
{
	struct slot *s = find(m, dir, ino);

	if (s && s->path)
		return 0;
	if (m->n >= ORIGIN_MAX)
		return -1;
	if (2 * (m->n + 1) > m->cap) {
		if (grow(m) < 0)
			return -1;
		s = find(m, dir, ino);
	}
	if (!(s->path = strdup(path)))
		return -1;
	s->dir = dir;
	s->ino = ino;
	m->n++;
	return 1;
}

const char *origin_get(const struct origin_map *m, uint8_t dir, uint64_t ino)
{
	const struct slot *s = m ? find(m, dir, ino) : NULL;

	return s ? s->path : NULL;
}

size_t origin_count(const struct origin_map *m)
{
	return m ? m->n : 0;
}

static size_t depth(const char *p)
{
	size_t d = 0;

	for (; *p; p++)
		d += *p == '/';
	return d;
}

static int deeper_first(const void *a, const void *b)
{
	size_t da = depth(((const struct origin_entry *)a)->path);
	size_t db = depth(((const struct origin_entry *)b)->path);

	return da < db ? 1 : da > db ? -1 :
	       strcmp(((const struct origin_entry *)a)->path, ((const struct origin_entry *)b)->path);
}

int origin_list(const struct origin_map *m, struct origin_entry **out, size_t *n)
{
	struct origin_entry *l;
	size_t k = 0;

	*out = NULL;
	*n = 0;
	if (!m || !m->n)
		return 0;
	if (!(l = calloc(m->n, sizeof(*l))))
		return -1;
	for (size_t i = 0; i < m->cap; i++) {
		if (!m->s[i].path)
			continue;
		l[k] = (struct origin_entry){ .dir = m->s[i].dir, .ino = m->s[i].ino,
		                              .path = strdup(m->s[i].path) };
		if (!l[k++].path) {
			origin_list_free(l, k);
			return -1;
		}
	}
	qsort(l, k, sizeof(*l), deeper_first);
	*out = l;
	*n = k;
	return 0;
}

void origin_list_free(struct origin_entry *l, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(l[i].path);
	free(l);
}
