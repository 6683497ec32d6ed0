/* Code size and stack use of libtether_device.a for an ES256 mint (and a check).
 * Stack: the operation runs on its own painted stack (ucontext) and the deepest
 * byte it changed is the high-water mark, minus the same for an empty function.
 * Code size: this file is linked with --gc-sections four times (-DUSE=0 nothing,
 * 1 mint through an engine callback, 2 mint with the built-in signer, 3 that and a
 * check) and `size` compares the .text. Run measure.sh. */
#define _XOPEN_SOURCE 700
#include <stdio.h>
#include <string.h>
#include <ucontext.h>

#include "tether_device.h"

#ifndef USE
#define USE 2
#endif

#define STACK_SIZE (256 * 1024)
#define PAINT 0xa5

static unsigned char stack[STACK_SIZE];
static ucontext_t caller, callee;
#if USE >= 1
static char token[TETHER_JWT_ES256_MAX_LEN];
static int status;
#endif
#if USE >= 2
static const uint8_t scalar[32] = {7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
                                   7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7};
#endif

static void nothing(void) {}

#if USE == 1
/* A hardware engine's stand-in: answers a digest with a fixed DER signature. */
static int32_t engine(void *ctx, const uint8_t *digest, size_t digest_len, uint8_t *sig,
                      size_t sig_cap, size_t *sig_len) {
    static const uint8_t der[8] = {0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01};
    (void)ctx;
    (void)digest;
    if (digest_len != 32 || sig_cap < sizeof der) {
        return -1;
    }
    memcpy(sig, der, sizeof der);
    *sig_len = sizeof der;
    return 0;
}

static void mint(void) {
    tether_signer signer = {TETHER_ALG_ES256, TETHER_SIGN_INPUT_SHA256, TETHER_SIG_DER, engine, NULL};
    size_t len;
    status = tether_jwt_mint(&signer, "acme", 1790000000u, 1200, token, sizeof token, &len);
}
#elif USE >= 2
static void mint(void) {
    tether_p256_key key;
    tether_signer signer;
    size_t len;
    status = tether_p256_key_init(&key, scalar, sizeof scalar);
    if (status == TETHER_OK) {
        status = tether_p256_key_signer(&key, &signer);
    }
    if (status == TETHER_OK) {
        status = tether_jwt_mint(&signer, "acme", 1790000000u, 1200, token, sizeof token, &len);
    }
}
#endif

#if USE >= 3
static void check(void) {
    char text[TETHER_CHECK_TEXT_LEN];
    tether_check_options opts = {.project_id = "acme", .now = 1790000000, .now_known = true};
    status = tether_jwt_check(token, strlen(token), scalar, sizeof scalar, &opts, text, sizeof text, NULL);
}
#endif

/* Bytes of `stack` that `fn` touched. */
static size_t high_water(void (*fn)(void)) {
    memset(stack, PAINT, sizeof stack);
    getcontext(&callee);
    callee.uc_stack.ss_sp = stack;
    callee.uc_stack.ss_size = sizeof stack;
    callee.uc_link = &caller;
    makecontext(&callee, fn, 0);
    swapcontext(&caller, &callee);
    size_t i = 0;
    while (i < sizeof stack && stack[i] == PAINT) {
        i++;
    }
    return sizeof stack - i;
}

int main(void) {
    size_t base = high_water(nothing);
    printf("baseline %zu\n", base);
#if USE >= 1
    size_t m = high_water(mint);
    printf("mint %zu status %d token %zu\n", m - base, status, strlen(token));
    if (status != TETHER_OK) {
        return 1;
    }
#endif
#if USE >= 3
    size_t c = high_water(check);
    printf("check %zu status %d\n", c - base, status);
    if (status != TETHER_OK) {
        return 1;
    }
#endif
    return 0;
}
