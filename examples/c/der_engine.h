/* A stand-in for a hardware crypto engine that, like many (mbedTLS, secure
 * elements, the S5D9's SCE driver), signs a SHA-256 digest and returns DER.
 * Freestanding C99, no heap. */
#ifndef DER_ENGINE_H
#define DER_ENGINE_H

#include "tether_device.h"

/* The engine's key slot. A real engine keeps the key inside; this one holds it in RAM. */
struct der_engine {
    tether_p256_key key;
    unsigned signatures; /* how many signatures it made */
};

/* Loads the engine's key (PKCS#8/SEC1 PEM or DER, or the raw scalar). */
tether_status der_engine_load(struct der_engine *engine, const uint8_t *key, size_t key_len);

/* A signer for tether_jwt_mint: the library passes the SHA-256 digest, the engine
 * answers with a DER ECDSA-Sig-Value, and the library converts it to r||s. */
tether_signer der_engine_signer(struct der_engine *engine);

/* Mints a 20-minute ES256 token for `project` at `now` with the engine. */
tether_status der_engine_mint(struct der_engine *engine, const char *project, uint64_t now,
                              char token[TETHER_JWT_ES256_MAX_LEN]);

#endif
