/* Links the no_std staticlib into a C program, as firmware would. */
#include <stdint.h>
#include <stdio.h>
#include <stddef.h>
size_t tether_nostd_mint_len(uint64_t iat);
int main(void) {
    size_t n = tether_nostd_mint_len(1790000000u);
    printf("%zu\n", n);
    return n > 100 ? 0 : 1;
}
