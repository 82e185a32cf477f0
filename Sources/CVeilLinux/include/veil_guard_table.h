#ifndef VEIL_GUARD_TABLE_H
#define VEIL_GUARD_TABLE_H

/* The warden's list of guarded pidfds (every container of a sandbox or pod), for the sentinel and
   the warden's fatal-signal handlers. It grows by whole pages taken with a raw mmap and is never
   shrunk, so it has no limit and needs neither malloc nor libc: the sentinel runs after it gave
   back libc's mappings, and the handlers run in signal context. One writer at a time; readers
   (a signal handler) may walk it while an entry is added: an entry counts only once stored. */

#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>

enum { VEIL_GUARD_CHUNK_BYTES = 4096 };

struct veil_guard_chunk {
    struct veil_guard_chunk *next;
    uint32_t used;
    int32_t fds[(VEIL_GUARD_CHUNK_BYTES - 16) / 4];
};

enum { VEIL_GUARD_CHUNK_FDS = (VEIL_GUARD_CHUNK_BYTES - 16) / 4 };

struct veil_guard_table {
    struct veil_guard_chunk *head;
    struct veil_guard_chunk *tail;
};

static inline __attribute__((always_inline)) long veil_guard_mmap_page(void) {
#if defined(__x86_64__)
    long result;
    register long r10 __asm__("r10") = MAP_PRIVATE | MAP_ANONYMOUS;
    register long r8 __asm__("r8") = -1;
    register long r9 __asm__("r9") = 0;
    __asm__ volatile("syscall" : "=a"(result)
                     : "a"((long)SYS_mmap), "D"(0L), "S"((long)VEIL_GUARD_CHUNK_BYTES), "d"((long)(PROT_READ | PROT_WRITE)),
                       "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return result;
#else
    void *page = mmap(0, VEIL_GUARD_CHUNK_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return page == MAP_FAILED ? -1 : (long)page;
#endif
}

/* Appends `fd`; 0, or -1 when no page could be mapped. A fresh page is zero-filled by the kernel. */
static inline __attribute__((always_inline)) int veil_guard_table_add(struct veil_guard_table *table, int32_t fd) {
    struct veil_guard_chunk *tail = table->tail;
    if (!tail || __atomic_load_n(&tail->used, __ATOMIC_RELAXED) == VEIL_GUARD_CHUNK_FDS) {
        long page = veil_guard_mmap_page();
        if (page < 0 && page > -4096) return -1;
        struct veil_guard_chunk *chunk = (struct veil_guard_chunk *)page;
        if (tail) __atomic_store_n(&tail->next, chunk, __ATOMIC_RELEASE);
        else __atomic_store_n(&table->head, chunk, __ATOMIC_RELEASE);
        table->tail = tail = chunk;
    }
    uint32_t slot = __atomic_load_n(&tail->used, __ATOMIC_RELAXED);
    tail->fds[slot] = fd;
    __atomic_store_n(&tail->used, slot + 1, __ATOMIC_RELEASE);
    return 0;
}

/* Runs `body` with `fd_name` bound to each stored fd, in the order added. */
#define VEIL_GUARD_TABLE_FOR_EACH(table, fd_name, body)                                                   \
    for (struct veil_guard_chunk *veil_chunk_ = __atomic_load_n(&(table)->head, __ATOMIC_ACQUIRE); veil_chunk_; \
         veil_chunk_ = __atomic_load_n(&veil_chunk_->next, __ATOMIC_ACQUIRE)) {                          \
        uint32_t veil_used_ = __atomic_load_n(&veil_chunk_->used, __ATOMIC_ACQUIRE);                     \
        for (uint32_t veil_i_ = 0; veil_i_ < veil_used_; veil_i_++) {                                    \
            int32_t fd_name = veil_chunk_->fds[veil_i_];                                                 \
            body                                                                                         \
        }                                                                                                \
    }

/* For tests: how many entries the table holds and their sum (each entry counted once, in order). */
static inline void veil_guard_table_census(struct veil_guard_table *table, uint64_t *count, int64_t *sum, uint32_t *chunks) {
    *count = 0; *sum = 0; *chunks = 0;
    for (struct veil_guard_chunk *chunk = table->head; chunk; chunk = chunk->next) (*chunks)++;
    VEIL_GUARD_TABLE_FOR_EACH(table, fd, { (*count)++; *sum += fd; })
}

#endif
