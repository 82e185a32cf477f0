/*
 * probe: the escape-surface probe, run as root INSIDE a container.
 *
 * One line per probe on stdout:   name<TAB>result<TAB>detail
 *
 * result is one of
 *   allowed      the call got past the kernel's permission checks (it may still have failed
 *                harmlessly afterwards on purpose: the detail then names the errno, e.g.
 *                "EINVAL after the permission check")
 *   E...         the errno name the call was refused with (EPERM, ENOSYS, EACCES, EROFS, ...)
 *   info         a fact, not a permission (uname, sysinfo, CapEff, uid_map): see the detail
 *   other words  for probes whose answer is not a permission: gained / not-gained (file
 *                capabilities), zeroed (kallsyms), empty (modules), none / leaked (fds),
 *                inside / outside (cwd), unreachable (no host namespace in sight)
 *
 * SAFETY. Every probe must stay harmless when it SUCCEEDS as real host root (e.g. under runc
 * with every capability). Where a call cannot be made harmless, it is given arguments that the
 * kernel rejects only AFTER its permission check (so EINVAL/ENOENT/ENOEXEC then means
 * "allowed"), or it is made in a forked child that exits at once:
 *   mount/umount2   a tmpfs on /mnt in the container's own mount namespace, unmounted again
 *   pivot_root      non-existent paths: may_mount() is checked before the lookup (ENOENT)
 *   unshare/setns   in forked children that exit right away
 *   keys            a key in the thread keyring (dies with the thread); request_key without
 *                   callout info never starts /sbin/request-key
 *   bpf, perf, uffd, io_uring   created and closed
 *   ptrace, process_vm_*        only our own forked child; writev writes back the same bytes
 *   kexec_load      an undefined flag and 1000 segments: EINVAL after the CAP_SYS_BOOT check
 *                   (never nr_segments == 0, which would UNLOAD a staged kernel)
 *   kexec_file_load an undefined flag bit (EINVAL after the check; never KEXEC_FILE_UNLOAD)
 *   init_module     a 64-byte image of junk (ENOEXEC); finit_module: a junk file
 *   delete_module   a module name that does not exist (ENOENT)
 *   reboot          an undefined command with the right magic: EINVAL after CAP_SYS_BOOT
 *                   (not even CAD_OFF, which would change the host's Ctrl-Alt-Del setting)
 *   swapon/swapoff  a zero-filled file in the scratch dir: no swap signature (EINVAL)
 *   clock_settime   an invalid timespec (EINVAL, reaching the kernel; the kernel validates the
 *                   time before checking CAP_SYS_TIME, so the permission is read from
 *                   CapEff + the user namespace instead of setting the host's clock)
 *   settimeofday    (NULL, NULL): only the CAP_SYS_TIME check, no effect
 *   adjtimex        ADJ_OFFSET|ADJ_TICK with an impossible tick: EINVAL after CAP_SYS_TIME
 *   acct            a path that does not exist (ENOENT after CAP_SYS_PACCT; never acct(NULL),
 *                   which would switch accounting off)
 *   quotactl        Q_SYNC of all filesystems (no privilege needed: is the call reachable?)
 *   mknod/open blk  opened O_RDONLY and closed, never read
 *   /proc/sys       kernel/hostname: the current value written back (UTS namespace);
 *                   kernel/printk_ratelimit: opened for writing and closed, nothing written
 *   sysrq-trigger, /sys/kernel/mm/transparent_hugepage/enabled: opened O_WRONLY, closed
 *   /proc/PID/exe   opened O_WRONLY without O_TRUNC and closed, nothing written
 *   open_by_handle_at  a read-only open of a directory; a few names are listed
 *   setxattr        security.capability on a copy of this binary in the scratch dir
 *
 * Build: gcc -static -O2 -o probe probe.c   (tests/security/run-probes does it)
 * Usage: probe [--only NAME[,NAME...]]       (--capcheck is the internal re-exec mode)
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <grp.h>
#include <linux/bpf.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/io_uring.h>
#include <linux/keyctl.h>
#include <linux/netlink.h>
#include <linux/perf_event.h>
#include <linux/reboot.h>
#include <net/ethernet.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/quota.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/swap.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/timex.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef SYS_lookup_dcookie
#define SYS_lookup_dcookie 212
#endif

static const char *only;          /* --only filter: comma-separated names */
static char scratch[256] = "";    /* private scratch dir for files the probes need */

/* ------------------------------------------------------------------ output */

static int wanted(const char *name) {
    if (!only) return 1;
    size_t n = strlen(name);
    for (const char *p = only; *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && strncmp(p, name, n) == 0) return 1;
        if (!end) break;
        p = end + 1;
    }
    return 0;
}

static const char *errname(int e) {
    switch (e) {
#define E(x) case x: return #x;
    E(EPERM) E(ENOENT) E(ESRCH) E(EINTR) E(EIO) E(ENXIO) E(E2BIG) E(ENOEXEC) E(EBADF) E(ECHILD)
    E(EAGAIN) E(ENOMEM) E(EACCES) E(EFAULT) E(ENOTBLK) E(EBUSY) E(EEXIST) E(EXDEV) E(ENODEV)
    E(ENOTDIR) E(EISDIR) E(EINVAL) E(ENFILE) E(EMFILE) E(ENOTTY) E(ETXTBSY) E(EFBIG) E(ENOSPC)
    E(ESPIPE) E(EROFS) E(EMLINK) E(EPIPE) E(EDOM) E(ERANGE) E(ENOSYS) E(ENOTEMPTY) E(ELOOP)
    E(ENOKEY) E(EKEYREJECTED) E(EKEYREVOKED) E(EKEYEXPIRED) E(ENODATA) E(EOPNOTSUPP)
    E(EAFNOSUPPORT) E(EPROTONOSUPPORT) E(ESOCKTNOSUPPORT) E(EPROTOTYPE)
    E(ESTALE) E(EBADMSG) E(EOVERFLOW) E(ECONNREFUSED) E(ENOTCONN) E(ENOPKG) E(EUSERS) E(EBADR)
#undef E
    default: return NULL;
    }
}

static const char *ename(int e) {
    static char buf[32];
    const char *n = errname(e);
    if (n) return n;
    snprintf(buf, sizeof buf, "E%d", e);
    return buf;
}

__attribute__((format(printf, 3, 4)))
static void line(const char *name, const char *result, const char *fmt, ...) {
    char detail[512] = "";
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(detail, sizeof detail, fmt, ap);
        va_end(ap);
    }
    for (char *p = detail; *p; p++)        /* one line per probe, three columns */
        if (*p == '\t' || *p == '\n' || *p == '\r') *p = ' ';
    printf("%s\t%s\t%s\n", name, result, detail);
    fflush(stdout);
}

/* A call's outcome: rc >= 0 is allowed; otherwise errno e is "allowed" when it is one of the
 * errnos the kernel can only return after the permission check passed (listed, 0-terminated). */
__attribute__((format(printf, 5, 6)))
static void outcome(const char *name, long rc, int e, const int *after, const char *fmt, ...) {
    char what[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (rc >= 0) { line(name, "allowed", "%s", what); return; }
    for (const int *a = after; a && *a; a++)
        if (*a == e) { line(name, "allowed", "%s: %s after the permission check", what, ename(e)); return; }
    line(name, ename(e), "%s", what);
}

/* ------------------------------------------------------------------ helpers */

/* Runs fn in a forked child and returns its result: >= 0 on success, -errno on failure. */
static long in_child(long (*fn)(void *), void *arg) {
    int pfd[2];
    if (pipe(pfd) < 0) return -errno;
    pid_t pid = fork();
    if (pid < 0) { int e = errno; close(pfd[0]); close(pfd[1]); return -e; }
    if (pid == 0) {
        close(pfd[0]);
        long r = fn(arg);
        if (write(pfd[1], &r, sizeof r) != sizeof r) _exit(2);
        _exit(0);
    }
    close(pfd[1]);
    long r = -ECHILD;
    if (read(pfd[0], &r, sizeof r) != sizeof r) r = -ECHILD;
    close(pfd[0]);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
    return r;
}

/* A child that waits to be killed; returns its pid. */
static pid_t sleeper(void) {
    pid_t pid = fork();
    if (pid == 0) {
        for (;;) pause();
    }
    return pid;
}

static void reap(pid_t pid) {
    if (pid <= 0) return;
    kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
}

static int read_file(const char *path, char *buf, size_t size) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    size_t got = 0;
    while (got + 1 < size) {
        ssize_t n = read(fd, buf + got, size - 1 - got);
        if (n < 0) { if (errno == EINTR) continue; int e = errno; close(fd); return -e; }
        if (n == 0) break;
        got += (size_t)n;
    }
    buf[got] = 0;
    close(fd);
    return (int)got;
}

/* The value of "Key:\t..." in /proc/self/status, or "" */
static void status_field(const char *key, char *out, size_t size) {
    char buf[8192];
    out[0] = 0;
    if (read_file("/proc/self/status", buf, sizeof buf) < 0) return;
    size_t klen = strlen(key);
    for (char *l = buf; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        if (strncmp(l, key, klen) == 0 && l[klen] == ':') {
            char *v = l + klen + 1;
            while (*v == ' ' || *v == '\t') v++;
            size_t n = strcspn(v, "\n");
            if (n >= size) n = size - 1;
            memcpy(out, v, n);
            out[n] = 0;
            return;
        }
    }
}

static uint64_t cap_eff(void) {
    char v[64];
    status_field("CapEff", v, sizeof v);
    return strtoull(v, NULL, 16);
}

/* True when our user namespace is the initial one (uid_map is the identity over all ids). */
static int initial_userns(void) {
    char buf[256];
    if (read_file("/proc/self/uid_map", buf, sizeof buf) < 0) return 0;
    unsigned long a, b, c;
    return sscanf(buf, "%lu %lu %lu", &a, &b, &c) == 3 && a == 0 && b == 0 && c == 4294967295UL
        && strchr(buf, '\n') == buf + strlen(buf) - 1;
}

static int make_scratch(void) {
    const char *bases[] = {"/tmp", "/dev/shm", "/run", "/var/tmp", "/", NULL};
    for (int i = 0; bases[i]; i++) {
        snprintf(scratch, sizeof scratch, "%s/veil-probe.XXXXXX", strcmp(bases[i], "/") ? bases[i] : "");
        if (mkdtemp(scratch)) { chmod(scratch, 0755); return 0; }
    }
    scratch[0] = 0;
    return -1;
}

static void remove_scratch(void) {
    if (!scratch[0]) return;
    DIR *d = opendir(scratch);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            char p[512];
            snprintf(p, sizeof p, "%s/%s", scratch, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(scratch);
}

/* A file in the scratch dir filled with `size` bytes of `byte`; returns its path or NULL. */
static const char *scratch_file(const char *name, int byte, size_t size, char *path, size_t psize) {
    if (!scratch[0]) return NULL;
    snprintf(path, psize, "%s/%s", scratch, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return NULL;
    char buf[4096];
    memset(buf, byte, sizeof buf);
    while (size > 0) {
        size_t n = size < sizeof buf ? size : sizeof buf;
        if (write(fd, buf, n) != (ssize_t)n) { close(fd); return NULL; }
        size -= n;
    }
    close(fd);
    return path;
}

/* ------------------------------------------------------------------ mounts */

static int mnt_mounted;

static char mnt_point[300] = "/mnt";

static void probe_mount(void) {
    /* /mnt, else (read-only rootfs without /mnt) a directory in the scratch dir */
    struct stat st;
    if (mkdir("/mnt", 0755) < 0 && (stat("/mnt", &st) < 0 || !S_ISDIR(st.st_mode)) && scratch[0]) {
        snprintf(mnt_point, sizeof mnt_point, "%s/mnt", scratch);
        mkdir(mnt_point, 0755);
    }
    long rc = mount("veil-probe", mnt_point, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=64k");
    int e = errno;
    mnt_mounted = rc == 0;
    outcome("mount", rc, e, NULL, "tmpfs on %s", mnt_point);
}

static void probe_umount2(void) {
    /* Our own tmpfs when the mount worked; else the same directory, where may_mount() comes
     * before the "not a mount point" check, so EINVAL means the permission was there. */
    long rc = umount2(mnt_point, 0);
    int e = errno;
    static const int after[] = {EINVAL, 0};
    outcome("umount2", rc, e, after, mnt_mounted ? "own tmpfs on %s" : "%s (nothing mounted)", mnt_point);
    if (strcmp(mnt_point, "/mnt")) rmdir(mnt_point);
}

static void probe_pivot_root(void) {
    long rc = syscall(SYS_pivot_root, "/veil-probe-none-new", "/veil-probe-none-old");
    int e = errno;
    static const int after[] = {ENOENT, 0};
    outcome("pivot_root", rc, e, after, "non-existent paths");
}

/* ------------------------------------------------------------------ namespaces */

static long do_unshare(void *arg) { return unshare((int)(intptr_t)arg) < 0 ? -errno : 0; }

static void probe_unshare(void) {
    static const struct { const char *name; int flag; } ns[] = {
        {"unshare_newns", CLONE_NEWNS}, {"unshare_newuser", CLONE_NEWUSER},
        {"unshare_newnet", CLONE_NEWNET}, {"unshare_newpid", CLONE_NEWPID},
        {"unshare_newuts", CLONE_NEWUTS}, {"unshare_newipc", CLONE_NEWIPC},
        {"unshare_newcgroup", CLONE_NEWCGROUP}, {"unshare_newtime", CLONE_NEWTIME},
    };
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
        if (!wanted(ns[i].name)) continue;
        long r = in_child(do_unshare, (void *)(intptr_t)ns[i].flag);
        outcome(ns[i].name, r, (int)-r, NULL, "in a forked child");
    }
}

static long do_setns_path(void *arg) {
    int fd = open((const char *)arg, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    return setns(fd, 0) < 0 ? -errno : 0;
}

static void probe_setns_pid1(void) {
    long r = in_child(do_setns_path, (void *)"/proc/1/ns/net");
    outcome("setns_pid1_net", r, (int)-r, NULL, "/proc/1/ns/net, in a forked child");
}

/* A namespace that is not ours: an inherited fd pointing at one, or a /proc/PID/ns link
 * whose inode differs from our own of the same type. */
static int foreign_ns(char *path, size_t size) {
    static const char *types[] = {"mnt", "net", "pid", "user", "uts", "ipc", "cgroup", NULL};
    char self[16][64];
    for (int i = 0; types[i]; i++) {
        char p[64];
        snprintf(p, sizeof p, "/proc/self/ns/%s", types[i]);
        ssize_t n = readlink(p, self[i], sizeof self[i] - 1);
        self[i][n > 0 ? n : 0] = 0;
    }
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            char p[64], t[128];
            snprintf(p, sizeof p, "/proc/self/fd/%s", e->d_name);
            ssize_t n = readlink(p, t, sizeof t - 1);
            if (n <= 0) continue;
            t[n] = 0;
            for (int i = 0; types[i]; i++)
                if (!strncmp(t, types[i], strlen(types[i])) && t[strlen(types[i])] == ':' && strcmp(t, self[i])) {
                    snprintf(path, size, "%s", p);
                    closedir(d);
                    return 1;
                }
        }
        closedir(d);
    }
    d = opendir("/proc");
    if (!d) return 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        for (int i = 0; types[i]; i++) {
            char p[64], t[128];
            snprintf(p, sizeof p, "/proc/%s/ns/%s", e->d_name, types[i]);
            ssize_t n = readlink(p, t, sizeof t - 1);
            if (n <= 0) continue;
            t[n] = 0;
            if (strcmp(t, self[i])) {
                snprintf(path, size, "%s", p);
                closedir(d);
                return 1;
            }
        }
    }
    closedir(d);
    return 0;
}

static void probe_setns_host(void) {
    char path[128];
    if (!foreign_ns(path, sizeof path)) {
        line("setns_host", "unreachable", "no namespace other than ours among fds and /proc/*/ns");
        return;
    }
    long r = in_child(do_setns_path, path);
    outcome("setns_host", r, (int)-r, NULL, path);
}

/* ------------------------------------------------------------------ keys */

static void probe_keys(void) {
    if (wanted("keyctl")) {
        long rc = syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0);
        int e = errno;
        outcome("keyctl", rc, e, NULL, "KEYCTL_GET_KEYRING_ID of the session keyring");
    }
    if (wanted("add_key")) {
        long rc = syscall(SYS_add_key, "user", "veil-probe", "x", 1, KEY_SPEC_THREAD_KEYRING);
        int e = errno;
        outcome("add_key", rc, e, NULL, "user key in the thread keyring");
    }
    if (wanted("request_key")) {
        long rc = syscall(SYS_request_key, "user", "veil-probe-absent", NULL, KEY_SPEC_THREAD_KEYRING);
        int e = errno;
        static const int after[] = {ENOKEY, 0};
        outcome("request_key", rc, e, after, "absent key, no callout");
    }
}

/* ------------------------------------------------------------------ bpf, perf, uffd, io_uring */

static void probe_bpf(void) {
    if (wanted("bpf_map_create")) {
        union bpf_attr a;
        memset(&a, 0, sizeof a);
        a.map_type = BPF_MAP_TYPE_ARRAY;
        a.key_size = 4;
        a.value_size = 4;
        a.max_entries = 1;
        long fd = syscall(SYS_bpf, BPF_MAP_CREATE, &a, sizeof a);
        int e = errno;
        outcome("bpf_map_create", fd, e, NULL, "1-entry array map");
        if (fd >= 0) close((int)fd);
    }
    if (wanted("bpf_prog_load")) {
        struct bpf_insn prog[] = {
            {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0},
            {.code = BPF_JMP | BPF_EXIT},
        };
        union bpf_attr a;
        memset(&a, 0, sizeof a);
        a.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
        a.insns = (uintptr_t)prog;
        a.insn_cnt = 2;
        a.license = (uintptr_t)"GPL";
        long fd = syscall(SYS_bpf, BPF_PROG_LOAD, &a, sizeof a);
        int e = errno;
        outcome("bpf_prog_load", fd, e, NULL, "socket filter returning 0");
        if (fd >= 0) close((int)fd);
    }
}

static void probe_perf(void) {
    struct perf_event_attr a;
    memset(&a, 0, sizeof a);
    a.size = sizeof a;
    a.type = PERF_TYPE_SOFTWARE;
    a.config = PERF_COUNT_SW_TASK_CLOCK;
    a.disabled = 1;
    a.exclude_kernel = 1;
    a.exclude_hv = 1;
    long fd = syscall(SYS_perf_event_open, &a, 0, -1, -1, 0);
    int e = errno;
    outcome("perf_event_open", fd, e, NULL, "software task clock, self, user only");
    if (fd >= 0) close((int)fd);
}

static void probe_userfaultfd(void) {
    long fd = syscall(SYS_userfaultfd, O_CLOEXEC);
    int e = errno;
    outcome("userfaultfd", fd, e, NULL, "kernel faults included");
    if (fd >= 0) close((int)fd);
}

static void probe_io_uring(void) {
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    long fd = syscall(SYS_io_uring_setup, 4, &p);
    int e = errno;
    outcome("io_uring_setup", fd, e, NULL, "4 entries");
    if (fd >= 0) close((int)fd);
}

/* ------------------------------------------------------------------ ptrace, process_vm */

static void probe_ptrace(void) {
    if (wanted("ptrace_attach")) {
        pid_t c = sleeper();
        long rc = ptrace(PTRACE_ATTACH, c, 0, 0);
        int e = errno;
        if (rc == 0) { waitpid(c, NULL, __WALL); ptrace(PTRACE_DETACH, c, 0, 0); }
        reap(c);
        outcome("ptrace_attach", rc, e, NULL, "own forked child");
    }
    if (wanted("ptrace_seize")) {
        pid_t c = sleeper();
        long rc = ptrace(PTRACE_SEIZE, c, 0, 0);
        int e = errno;
        if (rc == 0) ptrace(PTRACE_DETACH, c, 0, 0);
        reap(c);
        outcome("ptrace_seize", rc, e, NULL, "own forked child");
    }
    if (wanted("ptrace_traceme")) {
        int pfd[2];
        long r = -ECHILD;
        if (pipe(pfd) == 0) {
            pid_t c = fork();
            if (c == 0) {
                close(pfd[0]);
                long v = ptrace(PTRACE_TRACEME, 0, 0, 0) < 0 ? -errno : 0;
                if (write(pfd[1], &v, sizeof v) != sizeof v) _exit(2);
                _exit(0);
            }
            close(pfd[1]);
            if (read(pfd[0], &r, sizeof r) != sizeof r) r = -ECHILD;
            close(pfd[0]);
            reap(c);
        }
        outcome("ptrace_traceme", r, (int)-r, NULL, "in a forked child");
    }
}

static volatile char vm_buffer[64] = "veil-probe process_vm buffer";

static void probe_process_vm(void) {
    pid_t c = sleeper();   /* same address layout: vm_buffer is at the same address there */
    char local[64];
    struct iovec l = {local, sizeof local}, r = {(void *)vm_buffer, sizeof vm_buffer};
    if (wanted("process_vm_readv")) {
        long rc = process_vm_readv(c, &l, 1, &r, 1, 0);
        int e = errno;
        outcome("process_vm_readv", rc, e, NULL, rc >= 0 && !memcmp(local, (const void *)vm_buffer, 16)
                ? "own child: read its buffer" : "own child");
    }
    if (wanted("process_vm_writev")) {
        memcpy(local, (const void *)vm_buffer, sizeof local);   /* the same bytes go back */
        long rc = process_vm_writev(c, &l, 1, &r, 1, 0);
        int e = errno;
        outcome("process_vm_writev", rc, e, NULL, "own child, same bytes written back");
    }
    reap(c);
}

/* ------------------------------------------------------------------ kexec, modules */

static void probe_kexec(void) {
    if (wanted("kexec_load")) {
        /* 0x4000 is no KEXEC_* flag and 1000 > KEXEC_SEGMENT_MAX: both fail after CAP_SYS_BOOT. */
        long rc = syscall(SYS_kexec_load, 0UL, 1000UL, NULL, 0x4000UL);
        int e = errno;
        static const int after[] = {EINVAL, 0};
        outcome("kexec_load", rc, e, after, "undefined flag, 1000 segments");
    }
    if (wanted("kexec_file_load")) {
        long rc = syscall(SYS_kexec_file_load, -1, -1, 0UL, NULL, 0x40000000UL);
        int e = errno;
        static const int after[] = {EINVAL, 0};
        outcome("kexec_file_load", rc, e, after, "undefined flag bit");
    }
}

static void probe_modules(void) {
    if (wanted("init_module")) {
        static char junk[64];
        memset(junk, 'x', sizeof junk);
        long rc = syscall(SYS_init_module, junk, sizeof junk, "");
        int e = errno;
        static const int after[] = {ENOEXEC, EKEYREJECTED, EBADMSG, EINVAL, ENOKEY, 0};
        outcome("init_module", rc, e, after, "64 bytes of junk");
    }
    if (wanted("finit_module")) {
        char path[512];
        const char *p = scratch_file("junk.ko", 'x', 4096, path, sizeof path);
        if (!p) {
            line("finit_module", "info", "no writable scratch dir: not probed");
        } else {
            int fd = open(p, O_RDONLY | O_CLOEXEC);
            long rc = fd < 0 ? -1 : syscall(SYS_finit_module, fd, "", 0);
            int e = errno;
            if (fd >= 0) close(fd);
            unlink(p);
            static const int after[] = {ENOEXEC, EKEYREJECTED, EBADMSG, EINVAL, ENOKEY, 0};
            outcome("finit_module", rc, e, after, "a 4 KiB junk file");
        }
    }
    if (wanted("delete_module")) {
        long rc = syscall(SYS_delete_module, "veil_probe_absent", O_NONBLOCK);
        int e = errno;
        static const int after[] = {ENOENT, 0};
        outcome("delete_module", rc, e, after, "a module that does not exist");
    }
}

/* ------------------------------------------------------------------ shocker */

static void probe_open_by_handle(void) {
    struct { struct file_handle h; unsigned char bytes[128]; } fh;
    memset(&fh, 0, sizeof fh);
    fh.h.handle_bytes = sizeof fh.bytes;
    int mount_id;
    if (name_to_handle_at(AT_FDCWD, "/", &fh.h, &mount_id, 0) < 0) {
        line("open_by_handle_at", ename(errno), "name_to_handle_at(/) failed");
        return;
    }
    const char *what = "handle of / itself";
    if (fh.h.handle_type == 1 && fh.h.handle_bytes == 8) {   /* FILEID_INO32_GEN (ext2/3/4) */
        uint32_t ino = 2, gen = 0;
        memcpy(fh.h.f_handle, &ino, 4);
        memcpy(fh.h.f_handle + 4, &gen, 4);
        what = "inode 2 (root of the filesystem holding /)";
    }
    int mfd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int fd = open_by_handle_at(mfd, &fh.h, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int e = errno;
    if (mfd >= 0) close(mfd);
    if (fd < 0) { line("open_by_handle_at", ename(e), "%s", what); return; }
    /* Opened: name a few entries so the table shows whose root this is. */
    char names[200] = "";
    DIR *d = fdopendir(fd);
    if (d) {
        struct dirent *de;
        int n = 0;
        while ((de = readdir(d)) && n < 8) {
            if (de->d_name[0] == '.') continue;
            size_t used = strlen(names);
            snprintf(names + used, sizeof names - used, "%s%s", n ? "," : "", de->d_name);
            n++;
        }
        closedir(d);
    } else {
        close(fd);
    }
    line("open_by_handle_at", "allowed", "%s: %s", what, names);
}

/* ------------------------------------------------------------------ sockets */

static void try_socket(const char *name, int domain, int type, int proto, const char *what) {
    int fd = socket(domain, type | SOCK_CLOEXEC, proto);
    int e = errno;
    outcome(name, fd, e, NULL, "%s", what);
    if (fd >= 0) close(fd);
}

static void probe_sockets(void) {
    if (wanted("af_packet_raw")) try_socket("af_packet_raw", AF_PACKET, SOCK_RAW, htons(ETH_P_ALL), "AF_PACKET SOCK_RAW ETH_P_ALL");
    if (wanted("af_inet_raw_icmp")) try_socket("af_inet_raw_icmp", AF_INET, SOCK_RAW, IPPROTO_ICMP, "AF_INET SOCK_RAW ICMP");
    if (wanted("netlink_audit")) try_socket("netlink_audit", AF_NETLINK, SOCK_RAW, NETLINK_AUDIT, "AF_NETLINK NETLINK_AUDIT");
    if (wanted("netlink_route")) try_socket("netlink_route", AF_NETLINK, SOCK_RAW, NETLINK_ROUTE, "AF_NETLINK NETLINK_ROUTE");
}

/* ------------------------------------------------------------------ file capabilities */

struct vfs_cap_v2 { uint32_t magic_etc; struct { uint32_t permitted, inheritable; } data[2]; };

static int copy_file(const char *from, const char *to) {
    int in = open(from, O_RDONLY | O_CLOEXEC);
    if (in < 0) return -1;
    int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
    if (out < 0) { close(in); return -1; }
    char buf[65536];
    ssize_t n;
    int ok = 0;
    while ((n = read(in, buf, sizeof buf)) > 0)
        if (write(out, buf, (size_t)n) != n) { ok = -1; break; }
    if (n < 0) ok = -1;
    close(in);
    close(out);
    return ok;
}

/* Execs the copy (as nobody when we may switch, else as ourselves) in --capcheck mode and
 * reads back "uid capeff". Returns 0 and fills uid and eff, or -errno. */
static int exec_capcheck(const char *path, long *uid, uint64_t *eff) {
    int pfd[2];
    if (pipe(pfd) < 0) return -errno;
    pid_t c = fork();
    if (c < 0) { int e = errno; close(pfd[0]); close(pfd[1]); return -e; }
    if (c == 0) {
        close(pfd[0]);
        dup2(pfd[1], 1);
        /* A non-root user is who gains something from setcap; root can only gain what it lacks. */
        if (setgroups(0, NULL) == 0 && setgid(65534) == 0) { if (setuid(65534) != 0) {} }
        execl(path, path, "--capcheck", (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    char buf[128] = "";
    ssize_t n = read(pfd[0], buf, sizeof buf - 1);
    close(pfd[0]);
    int status = 0;
    while (waitpid(c, &status, 0) < 0 && errno == EINTR) {}
    if (n <= 0) return WIFEXITED(status) && WEXITSTATUS(status) == 127 ? -EACCES : -ENOEXEC;
    buf[n] = 0;
    unsigned long long e = 0;
    if (sscanf(buf, "%ld %llx", uid, &e) != 2) return -ENOEXEC;
    *eff = e;
    return 0;
}

static void probe_file_caps(void) {
    char copy[512];
    if (!scratch[0]) { line("setxattr_fcap", "info", "no writable scratch dir: not probed"); return; }
    snprintf(copy, sizeof copy, "%s/capcopy", scratch);
    if (copy_file("/proc/self/exe", copy) < 0) {
        line("setxattr_fcap", "info", "cannot copy /proc/self/exe: %s", ename(errno));
        return;
    }
    struct vfs_cap_v2 cap;
    memset(&cap, 0, sizeof cap);
    cap.magic_etc = 0x02000000 | 0x1;            /* VFS_CAP_REVISION_2 | VFS_CAP_FLAGS_EFFECTIVE */
    cap.data[0].permitted = 1u << CAP_NET_RAW;   /* setcap cap_net_raw+ep */
    long rc = setxattr(copy, "security.capability", &cap, sizeof cap, 0);
    int e = errno;
    if (wanted("setxattr_fcap")) outcome("setxattr_fcap", rc, e, NULL, "security.capability cap_net_raw+ep on a copy of this binary");
    if (wanted("fcap_exec")) {
        if (rc < 0) {
            line("fcap_exec", "not-gained", "no file capability was set");
        } else {
            uint64_t before = cap_eff();
            long uid = -1;
            uint64_t got = 0;
            int r = exec_capcheck(copy, &uid, &got);
            uint64_t raw = 1ULL << CAP_NET_RAW;
            /* As nobody the baseline is no capability at all; as root, what we hold now. */
            int gained = r == 0 && (got & raw) && (uid != 0 || !(before & raw));
            if (r < 0) line("fcap_exec", ename(-r), "re-exec of the copy failed");
            else line("fcap_exec", gained ? "gained" : "not-gained", "exec'd as uid %ld: CapEff %016" PRIx64 "%s",
                      uid, got, uid == 0 && (before & raw) ? " (cap_net_raw held already)" : "");
        }
    }
    unlink(copy);
}

/* ------------------------------------------------------------------ reboot, swap, time, acct, quota */

static void probe_reboot(void) {
    /* 0x7E57C0DE is no LINUX_REBOOT_CMD_*: EINVAL once CAP_SYS_BOOT has been checked. */
    long rc = syscall(SYS_reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2, 0x7E57C0DE, NULL);
    int e = errno;
    static const int after[] = {EINVAL, 0};
    outcome("reboot", rc, e, after, "undefined command");
}

static void probe_swap(void) {
    char path[512];
    const char *p = scratch_file("swapfile", 0, 65536, path, sizeof path);
    if (!p) { line("swapon", "info", "no writable scratch dir: not probed"); return; }
    static const int after[] = {EINVAL, ENOENT, 0};
    if (wanted("swapon")) {
        long rc = swapon(p, 0);
        int e = errno;
        if (rc == 0) swapoff(p);   /* cannot happen: there is no swap signature */
        outcome("swapon", rc, e, after, "zero-filled file, no swap signature");
    }
    if (wanted("swapoff")) {
        long rc = swapoff(p);
        int e = errno;
        outcome("swapoff", rc, e, after, "a file that is not swap");
    }
    unlink(p);
}

static void probe_time(void) {
    uint64_t eff = cap_eff();
    int can_set = initial_userns() && (eff & (1ULL << CAP_SYS_TIME));
    if (wanted("clock_settime")) {
        struct timespec bad = {0, 1000000000L};   /* invalid nsec: never sets anything */
        long rc = clock_settime(CLOCK_REALTIME, &bad);
        int e = errno;
        if (rc == 0) line("clock_settime", "allowed", "an invalid time was accepted?!");
        else if (e == EINVAL)
            line("clock_settime", can_set ? "allowed" : "EPERM",
                 "reaches the kernel; %s", can_set ? "CAP_SYS_TIME in the initial user namespace (not called with a valid time)"
                                                   : "inferred: no CAP_SYS_TIME in the initial user namespace");
        else line("clock_settime", ename(e), "invalid timespec");
    }
    if (wanted("settimeofday")) {
        long rc = syscall(SYS_settimeofday, NULL, NULL);   /* glibc would dereference NULL */
        int e = errno;
        outcome("settimeofday", rc, e, NULL, "(NULL, NULL): the permission check only");
    }
    if (wanted("adjtimex")) {
        struct timex t;
        memset(&t, 0, sizeof t);
        t.modes = ADJ_OFFSET | ADJ_TICK;
        t.offset = 0;
        t.tick = 1;   /* far below 900000/HZ: rejected after the CAP_SYS_TIME check */
        long rc = adjtimex(&t);
        int e = errno;
        static const int after[] = {EINVAL, 0};
        outcome("adjtimex", rc, e, after, "ADJ_OFFSET|ADJ_TICK with an impossible tick");
    }
}

static void probe_acct(void) {
    long rc = acct("/veil-probe-absent/acct");
    int e = errno;
    static const int after[] = {ENOENT, 0};
    outcome("acct", rc, e, after, "a path that does not exist");
}

static void probe_quotactl(void) {
    long rc = quotactl(QCMD(Q_SYNC, USRQUOTA), NULL, 0, NULL);
    int e = errno;
    outcome("quotactl", rc, e, NULL, "Q_SYNC of all filesystems (no privilege needed)");
}

static void probe_lookup_dcookie(void) {
    char buf[64];
    long rc = syscall(SYS_lookup_dcookie, 0ULL, buf, sizeof buf);
    int e = errno;
    static const int after[] = {EINVAL, ENOENT, 0};
    outcome("lookup_dcookie", rc, e, after, "cookie 0");
}

static void probe_vmsplice(void) {
    int p[2];
    if (pipe(p) < 0) { line("vmsplice", ename(errno), "pipe"); return; }
    char data[16] = "veil-probe";
    struct iovec v = {data, sizeof data};
    long rc = vmsplice(p[1], &v, 1, 0);
    int e = errno;
    outcome("vmsplice", rc, e, NULL, "16 bytes into a pipe");
    close(p[0]);
    close(p[1]);
}

/* ------------------------------------------------------------------ devices */

static void probe_devices(void) {
    char path[512];
    struct { const char *mk, *op; unsigned maj, min; } devs[2] = {
        {"mknod_blk_8_0", "open_blk_8_0", 8, 0}, {"mknod_rootdev", "open_rootdev", 0, 0}};
    struct stat st;
    int have_root = stat("/", &st) == 0 && major(st.st_dev) != 0;
    if (have_root) { devs[1].maj = major(st.st_dev); devs[1].min = minor(st.st_dev); }
    for (int i = 0; i < 2; i++) {
        if (!wanted(devs[i].mk) && !wanted(devs[i].op)) continue;
        if (i == 1 && !have_root) {
            line(devs[i].mk, "not-probed", "/ is not on a block device");
            line(devs[i].op, "not-probed", "/ is not on a block device");
            continue;
        }
        if (!scratch[0]) { line(devs[i].mk, "info", "no writable scratch dir: not probed"); continue; }
        snprintf(path, sizeof path, "%s/blk-%u-%u", scratch, devs[i].maj, devs[i].min);
        long rc = mknod(path, S_IFBLK | 0600, makedev(devs[i].maj, devs[i].min));
        int e = errno;
        char what[64];
        snprintf(what, sizeof what, "b %u %u", devs[i].maj, devs[i].min);
        if (wanted(devs[i].mk)) outcome(devs[i].mk, rc, e, NULL, "%s", what);
        if (wanted(devs[i].op)) {
            if (rc < 0) line(devs[i].op, "not-probed", "no node (%s)", what);
            else {
                int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);   /* never read */
                int oe = errno;
                static const int after[] = {ENXIO, ENODEV, 0};   /* the device cgroup let it through */
                strncat(what, " O_RDONLY, not read", sizeof what - strlen(what) - 1);
                outcome(devs[i].op, fd, oe, after, "%s", what);
                if (fd >= 0) close(fd);
            }
        }
        unlink(path);
    }
}

/* ------------------------------------------------------------------ /proc and /sys */

static void open_write_close(const char *name, const char *path) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    int e = errno;
    char what[160];
    snprintf(what, sizeof what, "%s O_WRONLY (closed at once, nothing written)", path);
    outcome(name, fd, e, NULL, "%s", what);
    if (fd >= 0) close(fd);
}

static void probe_proc_sys(void) {
    if (wanted("proc_sys_hostname")) {
        char cur[128];
        int n = read_file("/proc/sys/kernel/hostname", cur, sizeof cur);
        if (n < 0) { line("proc_sys_hostname", ename(-n), "read"); }
        else {
            int fd = open("/proc/sys/kernel/hostname", O_WRONLY | O_CLOEXEC);
            int e = errno;
            if (fd < 0) line("proc_sys_hostname", ename(e), "open O_WRONLY");
            else {
                ssize_t w = write(fd, cur, (size_t)n);   /* the same value back */
                e = errno;
                close(fd);
                outcome("proc_sys_hostname", w, e, NULL, "current value written back");
            }
        }
    }
    if (wanted("proc_sys_kernel")) open_write_close("proc_sys_kernel", "/proc/sys/kernel/printk_ratelimit");
    if (wanted("sysrq_trigger")) open_write_close("sysrq_trigger", "/proc/sysrq-trigger");
    if (wanted("sys_kernel_write")) open_write_close("sys_kernel_write", "/sys/kernel/mm/transparent_hugepage/enabled");
}

static void probe_kallsyms(void) {
    FILE *f = fopen("/proc/kallsyms", "re");
    if (!f) { line("kallsyms", ename(errno), "open"); return; }
    char buf[256];
    int lines = 0, nonzero = 0;
    while (lines < 200 && fgets(buf, sizeof buf, f)) {
        lines++;
        if (strtoull(buf, NULL, 16) != 0) nonzero++;
    }
    fclose(f);
    if (lines == 0) line("kallsyms", "empty", "no symbols");
    else if (nonzero) line("kallsyms", "allowed", "%d of the first %d addresses non-zero", nonzero, lines);
    else line("kallsyms", "zeroed", "first %d addresses all zero", lines);
}

static void probe_modules_file(void) {
    FILE *f = fopen("/proc/modules", "re");
    if (!f) { line("proc_modules", ename(errno), "open"); return; }
    char buf[512], first[64] = "";
    int n = 0;
    while (fgets(buf, sizeof buf, f)) {
        if (n++ == 0) sscanf(buf, "%63s", first);
    }
    fclose(f);
    if (n == 0) line("proc_modules", "empty", "readable, no modules listed");
    else line("proc_modules", "allowed", "%d modules, first %s", n, first);
}

/* ------------------------------------------------------------------ CVEs */

static void probe_cve_2019_5736(void) {
    if (wanted("cve_2019_5736_self_exe")) {
        int fd = open("/proc/self/exe", O_WRONLY | O_CLOEXEC);   /* no O_TRUNC, nothing written */
        int e = errno;
        outcome("cve_2019_5736_self_exe", fd, e, NULL, "/proc/self/exe O_WRONLY");
        if (fd >= 0) close(fd);
    }
    if (!wanted("cve_2019_5736_runtime_exe")) return;
    /* Any visible process whose executable is not this probe: a runtime helper would be one. */
    struct stat self;
    if (stat("/proc/self/exe", &self) < 0) { line("cve_2019_5736_runtime_exe", ename(errno), "stat /proc/self/exe"); return; }
    DIR *d = opendir("/proc");
    if (!d) { line("cve_2019_5736_runtime_exe", ename(errno), "opendir /proc"); return; }
    struct dirent *e;
    char found[600] = "";
    int refused = 0, opened = 0, last_err = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        char p[64], target[256];
        snprintf(p, sizeof p, "/proc/%s/exe", e->d_name);
        struct stat st;
        if (stat(p, &st) < 0) continue;
        if (st.st_dev == self.st_dev && st.st_ino == self.st_ino) continue;
        ssize_t n = readlink(p, target, sizeof target - 1);
        target[n > 0 ? n : 0] = 0;
        int fd = open(p, O_WRONLY | O_CLOEXEC);
        if (fd >= 0) { opened++; close(fd); } else { refused++; last_err = errno; }
        size_t used = strlen(found);
        snprintf(found + used, sizeof found - used, "%s%s=%s:%s", used ? " " : "", e->d_name, target,
                 fd >= 0 ? "writable" : ename(errno));
    }
    closedir(d);
    if (!opened && !refused) line("cve_2019_5736_runtime_exe", "unreachable", "no process with another executable visible");
    else if (opened) line("cve_2019_5736_runtime_exe", "allowed", "%s", found);
    else line("cve_2019_5736_runtime_exe", ename(last_err), "%s", found);
}

static void probe_cve_2024_21626(void) {
    if (wanted("cve_2024_21626_fds")) {
        DIR *d = opendir("/proc/self/fd");
        if (!d) { line("cve_2024_21626_fds", ename(errno), "opendir /proc/self/fd"); }
        else {
            char list[400] = "";
            int extra = 0;
            struct dirent *e;
            while ((e = readdir(d))) {
                if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
                int fd = atoi(e->d_name);
                if (fd <= 2 || fd == dirfd(d)) continue;
                char p[64], t[200];
                snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
                ssize_t n = readlink(p, t, sizeof t - 1);
                t[n > 0 ? n : 0] = 0;
                size_t used = strlen(list);
                snprintf(list + used, sizeof list - used, "%s%d->%s", extra ? " " : "", fd, t);
                extra++;
            }
            closedir(d);
            if (extra) line("cve_2024_21626_fds", "leaked", "%s", list);
            else line("cve_2024_21626_fds", "none", "only 0, 1, 2");
        }
    }
    if (wanted("cve_2024_21626_cwd")) {
        char cwd[512], link[512];
        ssize_t n = readlink("/proc/self/cwd", link, sizeof link - 1);
        link[n > 0 ? n : 0] = 0;
        /* getcwd fails with ENOENT (or says "(unreachable)") when the cwd is outside our root. */
        if (!getcwd(cwd, sizeof cwd)) line("cve_2024_21626_cwd", "outside", "getcwd: %s (link %s)", ename(errno), link);
        else if (strncmp(cwd, "(unreachable)", 13) == 0) line("cve_2024_21626_cwd", "outside", "%s", cwd);
        else line("cve_2024_21626_cwd", "inside", "%s", cwd);
    }
}

/* ------------------------------------------------------------------ identity */

static void probe_identity(void) {
    if (wanted("uname")) {
        struct utsname u;
        if (uname(&u) < 0) line("uname", ename(errno), "call failed");
        else line("uname", "info", "%s %s %s", u.sysname, u.release, u.version);
    }
    if (wanted("syslog")) {
        char buf[8192];
        long rc = syscall(SYS_syslog, 3 /* SYSLOG_ACTION_READ_ALL */, buf, (int)sizeof buf - 1);
        int e = errno;
        if (rc < 0) line("syslog", ename(e), "SYSLOG_ACTION_READ_ALL");
        else {
            buf[rc] = 0;
            buf[strcspn(buf, "\n")] = 0;
            buf[120] = 0;
            line("syslog", "allowed", "%s", rc ? buf : "(empty)");
        }
    }
    if (wanted("sysinfo")) {
        struct sysinfo s;
        if (sysinfo(&s) < 0) line("sysinfo", ename(errno), "call failed");
        else line("sysinfo", "info", "totalram=%lluMiB uptime=%lds procs=%u",
                  (unsigned long long)s.totalram * s.mem_unit >> 20, s.uptime, s.procs);
    }
    if (wanted("capeff")) {
        char v[64];
        status_field("CapEff", v, sizeof v);
        line("capeff", "info", "%s", v);
    }
    if (wanted("uid_map")) {
        char buf[512];
        int n = read_file("/proc/self/uid_map", buf, sizeof buf);
        if (n < 0) line("uid_map", ename(-n), "read failed");
        else {
            /* squeeze the columns' padding */
            char out[512];
            size_t o = 0;
            for (int i = 0; buf[i] && o + 2 < sizeof out; i++) {
                char c = buf[i] == '\n' ? ';' : buf[i];
                if (c == ' ' && (o == 0 || out[o - 1] == ' ' || out[o - 1] == ';')) continue;
                if (c == ';' && o && out[o - 1] == ' ') o--;
                out[o++] = c;
            }
            while (o && (out[o - 1] == ';' || out[o - 1] == ' ')) o--;
            out[o] = 0;
            line("uid_map", "info", "%s", out);
        }
    }
}

/* ------------------------------------------------------------------ main */

static void on_alarm(int sig) {
    (void)sig;
    static const char msg[] = "probe\ttimeout\tthe probe run took longer than 60 s\n";
    if (write(1, msg, sizeof msg - 1) < 0) {}
    _exit(3);
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "--capcheck")) {   /* re-exec'd copy: report CapEff */
        printf("%ld %016" PRIx64 "\n", (long)getuid(), cap_eff());
        return 0;
    }
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
        else { fprintf(stderr, "usage: probe [--only NAME[,NAME...]]\n"); return 2; }
    }
    /* PID 1 ignores signals without a handler: a real handler makes the alarm fire. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);
    alarm(60);
    make_scratch();

    if (wanted("mount")) probe_mount();
    if (wanted("umount2")) probe_umount2();
    if (wanted("pivot_root")) probe_pivot_root();
    probe_unshare();
    if (wanted("setns_pid1_net")) probe_setns_pid1();
    if (wanted("setns_host")) probe_setns_host();
    probe_keys();
    probe_bpf();
    if (wanted("perf_event_open")) probe_perf();
    if (wanted("userfaultfd")) probe_userfaultfd();
    if (wanted("io_uring_setup")) probe_io_uring();
    probe_ptrace();
    probe_process_vm();
    probe_kexec();
    probe_modules();
    if (wanted("open_by_handle_at")) probe_open_by_handle();
    probe_sockets();
    if (wanted("setxattr_fcap") || wanted("fcap_exec")) probe_file_caps();
    if (wanted("reboot")) probe_reboot();
    if (wanted("swapon") || wanted("swapoff")) probe_swap();
    probe_time();
    if (wanted("acct")) probe_acct();
    if (wanted("quotactl")) probe_quotactl();
    if (wanted("lookup_dcookie")) probe_lookup_dcookie();
    if (wanted("vmsplice")) probe_vmsplice();
    probe_devices();
    probe_proc_sys();
    if (wanted("kallsyms")) probe_kallsyms();
    if (wanted("proc_modules")) probe_modules_file();
    probe_cve_2019_5736();
    probe_cve_2024_21626();
    probe_identity();

    remove_scratch();
    return 0;
}
