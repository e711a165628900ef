/* sha256.h - SHA-256 (FIPS 180-4) of a byte string, for stable short ids such as the
 * prompt_hash of a generated input. */
#ifndef FLUXLOOP_SHA256_H
#define FLUXLOOP_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_BYTES 32

typedef struct sha256_ctx {
  uint32_t h[8];
  uint64_t len;          /* bytes hashed so far */
  unsigned char block[64];
  size_t fill;           /* bytes waiting in block */
} sha256_ctx;

void sha256_init(sha256_ctx *c);
void sha256_update(sha256_ctx *c, const void *data, size_t n);
void sha256_final(sha256_ctx *c, unsigned char out[SHA256_BYTES]);

/* The digest of data as 64 lower-case hex digits and a NUL. */
void sha256_hex(const void *data, size_t n, char out[2 * SHA256_BYTES + 1]);

#endif
