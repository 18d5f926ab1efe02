/* A lower bound for any single-pass profiler of bench/upload.py's file, in C.
 *
 *     gcc -O2 -march=native -o /tmp/scan_floor bench/scan_floor.c
 *     /tmp/scan_floor /tmp/portal-bench/ingest-1000000.csv          # numbers by strtod
 *     /tmp/scan_floor /tmp/portal-bench/ingest-1000000.csv --ints   # digits only, no real parse
 *
 * It reads the file into memory (not timed), then times, in CPU seconds, a pass that splits every
 * row into cells (quotes included) and per cell either parses a number, keeping min, max and sum
 * per column, or hashes the bytes (FNV-1a). That is strictly less than the platform's profile: no
 * missing-value tokens, datetimes, booleans, distinct counts, top values or histograms, and no
 * validation. The README compares the figure with the CPU that the upload target leaves for
 * profiling. Not part of the product; nothing builds or runs it.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_COLUMNS 64
#define MAX_CELL 4096

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE.csv [--ints]\n", argv[0]);
        return 2;
    }
    int ints_only = argc > 2 && strcmp(argv[2], "--ints") == 0;
    FILE *file = fopen(argv[1], "rb");
    if (!file) {
        perror(argv[1]);
        return 1;
    }
    fseek(file, 0, SEEK_END);
    long size = ftell(file);
    fseek(file, 0, SEEK_SET);
    char *data = malloc(size + 1);
    if (!data || fread(data, 1, size, file) != (size_t)size) {
        fprintf(stderr, "cannot read %s\n", argv[1]);
        return 1;
    }
    data[size] = 0;
    fclose(file);

    double low[MAX_COLUMNS], high[MAX_COLUMNS], sum[MAX_COLUMNS];
    uint64_t hashes[MAX_COLUMNS];
    for (int i = 0; i < MAX_COLUMNS; i++) {
        low[i] = 1e300, high[i] = -1e300, sum[i] = 0, hashes[i] = 0;
    }
    struct timespec started, ended;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &started);

    char *p = data, *end = data + size, cell[MAX_CELL];
    while (p < end && *p != '\n') p++; /* the header */
    p++;
    long rows = 0;
    while (p < end) {
        int column = 0;
        for (;;) {
            int length = 0;
            if (*p == '"') {
                for (p++; p < end && length < MAX_CELL - 1; p++) {
                    if (*p == '"' && p[1] == '"') cell[length++] = '"', p++;
                    else if (*p == '"') { p++; break; }
                    else cell[length++] = *p;
                }
            } else {
                while (p < end && *p != ',' && *p != '\n' && length < MAX_CELL - 1) cell[length++] = *p++;
            }
            cell[length] = 0;
            char *parsed = cell;
            double value = 0;
            if (ints_only) {
                while (*parsed >= '0' && *parsed <= '9') value = value * 10 + (*parsed++ - '0');
            } else if (length) {
                value = strtod(cell, &parsed);
            }
            if (length && parsed == cell + length) {
                if (value < low[column]) low[column] = value;
                if (value > high[column]) high[column] = value;
                sum[column] += value;
            } else {
                uint64_t hash = 1469598103934665603ULL;
                for (int i = 0; i < length; i++) hash = (hash ^ (unsigned char)cell[i]) * 1099511628211ULL;
                hashes[column] ^= hash;
            }
            if (p >= end || *p == '\n') { p++; break; }
            p++;
            if (++column == MAX_COLUMNS) column = MAX_COLUMNS - 1;
        }
        rows++;
    }
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ended);
    double seconds = (ended.tv_sec - started.tv_sec) + (ended.tv_nsec - started.tv_nsec) / 1e9;
    printf("%ld rows, %.1f MB: %.3f CPU seconds (%.0f MB/s), numbers by %s [check %.0f %llx]\n",
           rows, size / 1e6, seconds, size / seconds / 1e6, ints_only ? "digits only" : "strtod",
           sum[0], (unsigned long long)hashes[MAX_COLUMNS - 1] ^ hashes[9]);
    free(data);
    return 0;
}
