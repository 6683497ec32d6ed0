/* The DER-returning "hardware engine" of the second example and its signer callback. */
#include "der_engine.h"

tether_status der_engine_load(struct der_engine *engine, const uint8_t *key, size_t key_len) {
    engine->signatures = 0;
    return tether_p256_key_init(&engine->key, key, key_len);
}

/* One DER INTEGER from a 32-byte big-endian number: minimal, with a 0x00 sign byte
 * when the top bit is set, as X9.62 engines write it. Returns the bytes written. */
static size_t der_integer(const uint8_t v[32], uint8_t *out) {
    size_t skip = 0;
    while (skip < 31 && v[skip] == 0) {
        skip++;
    }
    size_t pad = (v[skip] & 0x80) ? 1 : 0;
    size_t len = 32 - skip + pad;
    out[0] = 0x02;
    out[1] = (uint8_t)len;
    out[2] = 0;
    for (size_t i = 0; i < 32 - skip; i++) {
        out[2 + pad + i] = v[skip + i];
    }
    return 2 + len;
}

/* The engine's "sign digest" operation: r||s from the key, then DER. */
static int32_t engine_sign(void *ctx, const uint8_t *digest, size_t digest_len, uint8_t *sig,
                           size_t sig_cap, size_t *sig_len) {
    struct der_engine *engine = ctx;
    uint8_t raw[TETHER_ES256_SIGNATURE_LEN];
    uint8_t body[TETHER_DER_SIGNATURE_MAX_LEN];
    if (digest_len != 32 || sig_cap < TETHER_DER_SIGNATURE_MAX_LEN) {
        return -1;
    }
    if (tether_p256_sign_digest(&engine->key, digest, digest_len, raw, sizeof raw) != TETHER_OK) {
        return -2;
    }
    size_t n = der_integer(raw, body);
    n += der_integer(raw + 32, body + n);
    sig[0] = 0x30;
    sig[1] = (uint8_t)n;
    for (size_t i = 0; i < n; i++) {
        sig[2 + i] = body[i];
    }
    *sig_len = 2 + n;
    engine->signatures++;
    return 0;
}

tether_signer der_engine_signer(struct der_engine *engine) {
    tether_signer signer = {
        .alg = TETHER_ALG_ES256,
        .input = TETHER_SIGN_INPUT_SHA256,
        .sig_format = TETHER_SIG_DER,
        .sign = engine_sign,
        .ctx = engine,
    };
    return signer;
}

tether_status der_engine_mint(struct der_engine *engine, const char *project, uint64_t now,
                              char token[TETHER_JWT_ES256_MAX_LEN]) {
    tether_signer signer = der_engine_signer(engine);
    size_t len = 0;
    return tether_jwt_mint(&signer, project, now, 20 * 60, token, TETHER_JWT_ES256_MAX_LEN, &len);
}
