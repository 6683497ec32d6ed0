/* The token side of the minimal device: freestanding C99, no heap, no clock. */
#ifndef DEVICE_TOKEN_H
#define DEVICE_TOKEN_H

#include "tether_device.h"

/* Mints an ES256 token for `project` at `now` (seconds since 1970, from SNTP or the
 * RTC), valid 20 minutes, signed with the private key in `key` (PKCS#8 or SEC1 PEM,
 * DER, or the raw 32-byte scalar). `token` holds TETHER_JWT_ES256_MAX_LEN bytes. */
tether_status device_token_mint(const uint8_t *key, size_t key_len, const char *project,
                                uint64_t now, char token[TETHER_JWT_ES256_MAX_LEN]);

/* Writes the public key to register (the exact IoT Core text) into `pem`, its
 * format name into `*format` and its fingerprint into `fingerprint`. */
tether_status device_token_public_key(const uint8_t *key, size_t key_len,
                                      char pem[TETHER_P256_PUBLIC_PEM_LEN], const char **format,
                                      char fingerprint[TETHER_FINGERPRINT_LEN]);

#endif
