/* Residency trimming for long-lived processes (see VeilLinux/Residency.swift). */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "veil_syscalls.h"

/* Reads all of `path` into a malloc'd, NUL-terminated buffer; NULL on failure. */
static char *read_whole(const char *path, size_t *size) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return NULL;
    size_t capacity = 64 * 1024, used = 0;
    char *buffer = malloc(capacity + 1);
    while (buffer) {
        if (used == capacity) {
            char *bigger = realloc(buffer, capacity * 2 + 1);
            if (!bigger) { free(buffer); buffer = NULL; break; }
            buffer = bigger;
            capacity *= 2;
        }
        ssize_t n = read(fd, buffer + used, capacity - used);
        if (n < 0) { free(buffer); buffer = NULL; break; }
        if (n == 0) break;
        used += (size_t)n;
    }
    close(fd);
    if (buffer) { buffer[used] = 0; *size = used; }
    return buffer;
}

/* The field `index` (0-based, space-separated) of the line [line, end): its start, or NULL. */
static const char *field(const char *line, const char *end, int index, const char **field_end) {
    const char *p = line;
    for (int i = 0; ; i++) {
        while (p < end && *p == ' ') p++;
        if (p >= end) return NULL;
        const char *start = p;
        while (p < end && *p != ' ') p++;
        if (i == index) { *field_end = p; return start; }
    }
}

int veil_trim_clean_file_mappings(void) {
    size_t size = 0;
    char *smaps = read_whole("/proc/self/smaps", &size);
    if (!smaps) return -1;
    int dropped = 0;
    unsigned long start = 0, end = 0;
    int candidate = 0;
    const char *limit = smaps + size;
    for (const char *line = smaps; line < limit; ) {
        const char *eol = memchr(line, '\n', (size_t)(limit - line));
        if (!eol) eol = limit;
        const char *first_end;
        const char *first = field(line, eol, 0, &first_end);
        if (first && first_end[-1] == ':') {
            /* A statistic of the current mapping: only "Anonymous: 0 kB" matters. */
            if (candidate && first_end - first == 10 && memcmp(first, "Anonymous:", 10) == 0) {
                const char *value_end;
                const char *value = field(first_end, eol, 0, &value_end);
                if (value && value_end - value == 1 && *value == '0'
                    && madvise((void *)start, end - start, MADV_DONTNEED) == 0) dropped++;
                candidate = 0;
            }
        } else if (first) {
            /* A mapping's header: "start-end perms offset dev inode path". */
            candidate = 0;
            const char *perms_end, *path_end;
            const char *perms = field(line, eol, 1, &perms_end);
            const char *path = field(line, eol, 5, &path_end);
            char *dash;
            if (perms && path && *path == '/' && *perms == 'r' && memchr(perms, 'w', (size_t)(perms_end - perms)) == NULL) {
                start = strtoul(first, &dash, 16);
                if (*dash == '-') {
                    end = strtoul(dash + 1, NULL, 16);
                    candidate = end > start;
                }
            }
        }
        line = eol + 1;
    }
    free(smaps);
    return dropped;
}
