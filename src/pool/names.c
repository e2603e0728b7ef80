#include "pool/names.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

bool pool_name_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > 63)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
		      *s == '-' || *s == '_' || *s == '.'))
			return false;
	return true;
}

bool pool_path_ok(const char *file)
{
	size_t n = file ? strlen(file) : 0;
	const char *p = file;

	if (n == 0 || n > POOL_PATH_MAX || file[0] == '/')
		return false;
	while (*p) {
		size_t c = strcspn(p, "/");

		if (c == 0 || (c == 1 && p[0] == '.') || (c == 2 && p[0] == '.' && p[1] == '.'))
			return false;
		for (size_t i = 0; i < c; i++)
			if ((unsigned char)p[i] < 0x20 || (unsigned char)p[i] >= 0x7f || p[i] == '\\')
				return false;
		p += c;
		if (*p == '/' && !*++p)
			return false;
	}
	return true;
}

bool pool_sha256_ok(const char *s)
{
	if (!s || strlen(s) != 64)
		return false;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return false;
	return true;
}

void pool_sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[32];
	unsigned int mdlen = 0;

	EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
	for (unsigned i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}
