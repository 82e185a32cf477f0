#define _GNU_SOURCE
#include "veil_sentinel.h"
#include "veil_guard_table.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The warden's own copy of the guarded pidfds, for its fatal-signal handlers. */
static struct veil_guard_table guarded;
static int sentinel_pipe = -1;
static int fork_error;

/* The sentinel runs on raw system calls, never libc: it gives back every mapping it inherited
   except its own code and stack, so it costs tens of KiB rather than a copy of the warden's
   page tables and the libraries' pages it would fault in. */
#if defined(__x86_64__)
#define SENTINEL_CODE __attribute__((noinline, no_stack_protector, no_builtin))
static inline long raw_call(long number, long a, long b, long c, long d) {
    long result;
    register long r10 __asm__("r10") = d;
    __asm__ volatile("syscall" : "=a"(result) : "a"(number), "D"(a), "S"(b), "d"(c), "r"(r10) : "rcx", "r11", "memory");
    return result;
}
#define SHED_MAPPINGS 1
#else
#define SENTINEL_CODE __attribute__((noinline))
static inline long raw_call(long number, long a, long b, long c, long d) {
    long result = syscall(number, a, b, c, d);
    return result < 0 ? -errno : result;
}
#define SHED_MAPPINGS 0  /* libc's syscall() is still needed */
#endif

static SENTINEL_CODE unsigned long parse_hex(const char **cursor, const char *end) {
    unsigned long value = 0;
    const char *p = *cursor;
    for (; p < end; p++) {
        char c = *p;
        if (c >= '0' && c <= '9') value = value * 16 + (unsigned long)(c - '0');
        else if (c >= 'a' && c <= 'f') value = value * 16 + (unsigned long)(c - 'a' + 10);
        else break;
    }
    *cursor = p;
    return value;
}

static void sentinel(int input) __attribute__((noreturn));

/* Unmaps every mapping but the ones holding this code, the stack and the thread's TLS block: the
   kernel itself writes there (glibc registered the thread's rseq area in it, and an unmapped one
   gets the process a SIGSEGV on its next preemption). */
static SENTINEL_CODE void shed_mappings(void) {
    char maps[8192];
    long length = 0;
    unsigned long tls = 0;
    if (raw_call(SYS_arch_prctl, 0x1003 /* ARCH_GET_FS */, (long)&tls, 0, 0) != 0) return;
    long fd = raw_call(SYS_openat, AT_FDCWD, (long)"/proc/self/maps", O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0) return;
    while (length < (long)sizeof maps) {
        long got = raw_call(SYS_read, fd, (long)(maps + length), (long)sizeof maps - length, 0);
        if (got <= 0) break;
        length += got;
    }
    raw_call(SYS_close, fd, 0, 0, 0);
    unsigned long code = (unsigned long)&sentinel;
    unsigned long stack = (unsigned long)&length;
    const char *cursor = maps, *end = maps + length;
    while (cursor < end) {
        const char *line_end = cursor;
        while (line_end < end && *line_end != '\n') line_end++;
        if (line_end == end) break;  /* a line cut by the buffer: keep it and what follows */
        unsigned long first = parse_hex(&cursor, line_end);
        unsigned long last = 0;
        if (cursor < line_end && *cursor == '-') { cursor++; last = parse_hex(&cursor, line_end); }
        int keep = (code >= first && code < last) || (stack >= first && stack < last) || (tls >= first && tls < last);
        if (last > first && !keep) raw_call(SYS_munmap, (long)first, (long)(last - first), 0, 0);
        cursor = line_end + 1;
    }
}

/* Joins the user namespace of `pid` (the sandbox's init, the first pid the warden sends, before it
   serves anything) as that namespace's root, keeping only CAP_KILL there: from then on a subverted
   warden cannot have the sentinel signal anything outside the sandbox. Runs after the mappings are
   shed, so the path is built on the stack (no string literal: .rodata is gone). 0 or -errno. */
static SENTINEL_CODE long confine_to_sandbox(int32_t pid) {
    char path[40];
    int n = 0;
    path[n++] = '/'; path[n++] = 'p'; path[n++] = 'r'; path[n++] = 'o'; path[n++] = 'c'; path[n++] = '/';
    char digits[12];
    int count = 0;
    uint32_t value = pid > 0 ? (uint32_t)pid : 0;
    do { digits[count++] = (char)('0' + value % 10); value /= 10; } while (value && count < 11);
    while (count) path[n++] = digits[--count];
    path[n++] = '/'; path[n++] = 'n'; path[n++] = 's'; path[n++] = '/';
    path[n++] = 'u'; path[n++] = 's'; path[n++] = 'e'; path[n++] = 'r'; path[n] = 0;
    long fd = raw_call(SYS_openat, AT_FDCWD, (long)path, O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0) return fd;
    long rc = raw_call(SYS_setgroups, 0, 0, 0, 0);
    if (rc == 0) rc = raw_call(SYS_setns, fd, 0x10000000 /* CLONE_NEWUSER */, 0, 0);
    raw_call(SYS_close, fd, 0, 0, 0);
    if (rc == 0) rc = raw_call(SYS_setresgid, 0, 0, 0, 0);
    if (rc == 0) rc = raw_call(SYS_setresuid, 0, 0, 0, 0);
    if (rc == 0) {
        /* Values the compiler cannot fold into a constant-pool load (in .rodata, gone by now). */
        uint32_t version = 0x20080522 /* _LINUX_CAPABILITY_VERSION_3 */, kill_only = 1u << 5 /* CAP_KILL */, zero = 0;
        __asm__ volatile("" : "+r"(version), "+r"(kill_only), "+r"(zero));
        uint32_t header[2];
        uint32_t data[6];
        header[0] = version; header[1] = zero;
        data[0] = kill_only; data[1] = kill_only; /* effective, permitted */
        data[2] = zero; data[3] = zero; data[4] = zero; data[5] = zero;
        rc = raw_call(SYS_capset, (long)header, (long)data, 0, 0);
    }
    if (rc == 0) rc = raw_call(SYS_prctl, PR_SET_DUMPABLE, 0, 0, 0);
    return rc;
}

static SENTINEL_CODE void sentinel(int input) {
    /* On the stack: the warden's data pages are gone once the mappings are shed. */
    struct veil_guard_table pidfds = { 0, 0 };
    int32_t pid;
    /* Keep nothing else of the warden's (the pipe's write end included): with the warden gone,
       the kernel must fail the mediated calls (ENOSYS) rather than leave them waiting on a
       listener we still hold. */
    long high = raw_call(SYS_fcntl, input, F_DUPFD_CLOEXEC, 1000, 0);
    if (high < 0) for (;;) raw_call(SYS_exit_group, 1, 0, 0, 0);
    raw_call(SYS_close_range, 3, 999, 0, 0);
    raw_call(SYS_close_range, 1001, ~0U, 0, 0);
    raw_call(SYS_prctl, PR_SET_NAME, (long)"veil-sentinel", 0, 0);  /* ps tells it from the warden by comm */
    if (SHED_MAPPINGS) shed_mappings();
    int first = 1, confined = 0;
    while (raw_call(SYS_read, high, (long)&pid, sizeof pid, 0) == (long)sizeof pid) {
        if (first) {
            first = 0;
            confined = confine_to_sandbox(pid) == 0;
        } else if (!confined) {
            continue;  /* still the host's root: guard the init only, take no orders that could reach the host */
        }
        long fd = raw_call(SYS_pidfd_open, pid, 0, 0, 0);
        /* No page left for the table: kill this one now rather than leave it unguarded. */
        if (fd >= 0 && veil_guard_table_add(&pidfds, (int32_t)fd) != 0) raw_call(SYS_pidfd_send_signal, fd, SIGKILL, 0, 0);
    }
    VEIL_GUARD_TABLE_FOR_EACH(&pidfds, fd, { raw_call(SYS_pidfd_send_signal, fd, SIGKILL, 0, 0); })
    for (;;) raw_call(SYS_exit_group, 0, 0, 0, 0);
}

/* Before any Swift code or thread: the priority runs it ahead of the Swift runtime's own
   constructors in this executable. A raw clone rather than fork(): fork's handlers would run
   libc code in the child. */
__attribute__((constructor(101))) static void fork_sentinel(void) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) { fork_error = errno; return; }
    long child = raw_call(SYS_clone, SIGCHLD, 0, 0, 0);
    if (child < 0) { fork_error = (int)-child; close(fds[0]); close(fds[1]); return; }
    if (child == 0) sentinel(fds[0]);
    close(fds[0]);
    sentinel_pipe = fds[1];
}

static void kill_guarded(int sig) {
    VEIL_GUARD_TABLE_FOR_EACH(&guarded, fd, { syscall(SYS_pidfd_send_signal, fd, SIGKILL, NULL, 0); })
    signal(sig, SIG_DFL);
    raise(sig);
}

int veil_sentinel_arm(void) {
    signal(SIGCHLD, SIG_IGN);  /* the sentinel reaps itself if it goes first */
    int signals[] = { SIGSEGV, SIGBUS, SIGILL, SIGTRAP, SIGABRT, SIGFPE, SIGSYS, SIGTERM, SIGINT, SIGHUP, SIGQUIT };
    for (unsigned i = 0; i < sizeof signals / sizeof signals[0]; i++) {
        struct sigaction action;
        memset(&action, 0, sizeof action);
        action.sa_handler = kill_guarded;
        sigfillset(&action.sa_mask);
        action.sa_flags = SA_RESETHAND;
        sigaction(signals[i], &action, NULL);
    }
    return -fork_error;
}

int veil_sentinel_guard(pid_t pid) {
    int32_t number = pid;
    if (sentinel_pipe >= 0 && write(sentinel_pipe, &number, sizeof number) != (ssize_t)sizeof number) return -errno;
    int fd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (fd < 0) return -errno;
    /* One writer at a time (the handlers only read). */
    static pthread_mutex_t writer = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&writer);
    int added = veil_guard_table_add(&guarded, fd);
    pthread_mutex_unlock(&writer);
    if (added != 0) { close(fd); return -ENOMEM; }  /* the sentinel still guards it */
    return 0;
}

