/* Token code of the minimal device: the library's built-in P-256 signer. */
#include "device_token.h"

tether_status device_token_mint(const uint8_t *key, size_t key_len, const char *project,
                                uint64_t now, char token[TETHER_JWT_ES256_MAX_LEN]) {
    tether_p256_key k;
    tether_signer signer;
    size_t len = 0;
    tether_status st = tether_p256_key_init(&k, key, key_len);
    if (st != TETHER_OK) {
        return st;
    }
    st = tether_p256_key_signer(&k, &signer);
    if (st == TETHER_OK) {
        st = tether_jwt_mint(&signer, project, now, 20 * 60, token, TETHER_JWT_ES256_MAX_LEN, &len);
    }
    /* The key struct holds the secret scalar: wipe it (volatile, so it is not elided). */
    for (size_t i = 0; i < sizeof k; i++) {
        ((volatile uint8_t *)&k)[i] = 0;
    }
    return st;
}

tether_status device_token_public_key(const uint8_t *key, size_t key_len,
                                      char pem[TETHER_P256_PUBLIC_PEM_LEN], const char **format,
                                      char fingerprint[TETHER_FINGERPRINT_LEN]) {
    size_t len = 0;
    tether_status st = tether_key_registration(key, key_len, pem, TETHER_P256_PUBLIC_PEM_LEN, &len, format);
    if (st != TETHER_OK) {
        return st;
    }
    return tether_key_fingerprint(key, key_len, fingerprint, TETHER_FINGERPRINT_LEN);
}
