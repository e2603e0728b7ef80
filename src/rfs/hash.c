/* Block hashes (contract in hash.h). */
#include "rfs/hash.h"

#include <openssl/evp.h>
#include <string.h>

#include "rfs/wire.h"

uint32_t rfs_hash_count(uint32_t want, uint32_t block)
{
	uint32_t n = want / block + (want % block != 0);

	return n ? n : 1;
}

int rfs_hash_blocks(const uint8_t *buf, size_t have, uint32_t want, uint32_t block, uint8_t *out)
{
	uint32_t n = rfs_hash_count(want, block);

	for (uint32_t i = 0; i < n; i++) {
		size_t start = (size_t)i * block, end = start + block;
		unsigned char md[EVP_MAX_MD_SIZE];
		unsigned int mdlen = 0;

		if (end > want)
			end = want;
		if (end > have)
			end = have;
		if (start > end)
			start = end;
		if (!EVP_Digest(buf + start, end - start, md, &mdlen, EVP_sha256(), NULL) ||
		    mdlen < WIRE_HASH_LEN)
			return -1;
		memcpy(out + (size_t)i * WIRE_HASH_LEN, md, WIRE_HASH_LEN);
	}
	return 0;
}
