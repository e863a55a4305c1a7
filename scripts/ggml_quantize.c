/* ggml_quantize: quantizes float32 rows with ggml's own quantizer (ggml_quantize_chunk,
 * no importance matrix: what llama-quantize writes without --imatrix), for the byte-level
 * fixtures of tests/quant.rs. Built and run by scripts/make_kquant_fixtures.py against
 * the ggml sources of the llama-cpp-python source package; only this program and its
 * output are committed.
 *
 *   ggml_quantize TYPE N_PER_ROW < rows.f32 > blocks.bin
 *
 * TYPE is a ggml type name known to ggml_type_name() (q4_K, q6_K, q5_0, ...).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ggml.h"

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s TYPE N_PER_ROW < f32 > blocks\n", argv[0]);
        return 2;
    }
    enum ggml_type type = GGML_TYPE_COUNT;
    for (int t = 0; t < GGML_TYPE_COUNT; t++) {
        const char *name = ggml_type_name((enum ggml_type)t);
        if (name && strcmp(name, argv[1]) == 0) {
            type = (enum ggml_type)t;
        }
    }
    if (type == GGML_TYPE_COUNT) {
        fprintf(stderr, "unknown ggml type %s\n", argv[1]);
        return 2;
    }
    long n_per_row = atol(argv[2]);
    size_t cap = 1 << 20, len = 0;
    float *x = malloc(cap * sizeof(float));
    size_t got;
    while ((got = fread(x + len, sizeof(float), cap - len, stdin)) > 0) {
        len += got;
        if (len == cap) {
            cap *= 2;
            x = realloc(x, cap * sizeof(float));
        }
    }
    if (n_per_row <= 0 || len % (size_t)n_per_row != 0) {
        fprintf(stderr, "%zu values do not make rows of %ld\n", len, n_per_row);
        return 2;
    }
    long nrows = (long)(len / (size_t)n_per_row);
    size_t row_size = ggml_row_size(type, n_per_row);
    void *out = malloc(row_size * (size_t)nrows);
    size_t bytes = ggml_quantize_chunk(type, x, out, 0, nrows, n_per_row, NULL);
    fwrite(out, 1, bytes, stdout);
    fprintf(stderr, "%s: %ld rows of %ld -> %zu bytes\n", argv[1], nrows, n_per_row, bytes);
    free(out);
    free(x);
    return 0;
}
