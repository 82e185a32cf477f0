/* The only code that runs between clone and execve. It must stay async-signal-safe:
   raw system calls on memory prepared by the Swift parent, no malloc, no stdio, no locks. */
#define _GNU_SOURCE
#include "veil_spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <net/if.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <linux/sched.h>

/* Root of the user namespace we are in, by the raw system calls: glibc's setresuid/setresgid
   broadcast the change to every thread on its list (a signal and a lock), and after clone from
   a multi-threaded parent that list names the parent's threads, not ours. This child has one
   thread, which is all the raw calls change. */
static int become_namespace_root(void) {
    if (syscall(SYS_setresgid, 0, 0, 0) < 0) return -1;
    return syscall(SYS_setresuid, 0, 0, 0) < 0 ? -1 : 0;
}

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef SYS_clone3
#define SYS_clone3 435
#endif

static void write_all(int fd, const void *buf, size_t len) {
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            return;
        }
        p += n;
        len -= (size_t)n;
    }
}

static int read_all(int fd, void *buf, size_t len) {
    char *p = buf;
    while (len > 0) {
        ssize_t n = read(fd, p, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (n == 0) return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static void send_msg(int fd, uint32_t type, const void *payload, uint32_t len) {
    struct veil_sync_header h = { type, len };
    write_all(fd, &h, sizeof h);
    if (len) write_all(fd, payload, len);
}

/* Reports errno, the step and its detail (veil_sync.h) and ends this child. */
static __attribute__((noreturn)) void fail_detail(int fd, int step, int detail) {
    struct veil_child_error body = { errno, step, detail };
    send_msg(fd, VEIL_SYNC_CHILD_ERROR, &body, sizeof body);
    _exit(1);
}

static __attribute__((noreturn)) void fail(int fd, int step) { fail_detail(fd, step, 0); }

void veil_reset_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    for (int sig = 1; sig < 65; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP) continue;
        sigaction(sig, &sa, NULL);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

/* The init: arrange fds, exec `veil init` from the read-only detached mount of the binary. */
static __attribute__((noreturn)) void run_init(const struct veil_spawn_plan *plan) {
    int sync = plan->sync_fd;
    int base = 3 + plan->preserve_fds;
    for (int i = 0; i < plan->extra_count; i++) {
        if (plan->extra_fds[i] < 0) continue;
        if (dup2(plan->extra_fds[i], base + i) < 0) fail(sync, VEIL_STEP_FDS);
    }
    for (int fd = 3; fd < base; fd++) {
        int flags = fcntl(fd, F_GETFD);
        if (flags >= 0) fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC);
    }
    /* CVE-2024-21626: none of the runtime's own descriptors may survive the exec. */
    syscall(SYS_close_range, (unsigned int)(base + plan->extra_count), ~0U, 4 /* CLOSE_RANGE_CLOEXEC */);
    veil_reset_signals();
    syscall(SYS_execveat, plan->exe_fd, "", plan->argv, plan->envp, AT_EMPTY_PATH);
    fail(base, VEIL_STEP_EXEC);
}

/* `lo` up in the current network namespace (a new one starts with it down). */
static int loopback_up(void) {
    int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (sock < 0) return -1;
    struct ifreq request;
    memset(&request, 0, sizeof request);
    request.ifr_name[0] = 'l';
    request.ifr_name[1] = 'o';
    int result = ioctl(sock, SIOCGIFFLAGS, &request);
    if (result == 0) {
        request.ifr_flags |= IFF_UP;
        result = ioctl(sock, SIOCSIFFLAGS, &request);
    }
    int saved = errno;
    close(sock);
    errno = saved;
    return result;
}

/* Writes `value` in decimal to /proc/self/oom_score_adj (no stdio: async-signal-safe). */
static int write_oom_score_adj(int value) {
    char text[16];
    char *end = text + sizeof text, *p = end;
    unsigned int magnitude = value < 0 ? (unsigned int)(-(long)value) : (unsigned int)value;
    do { *--p = (char)('0' + magnitude % 10); magnitude /= 10; } while (magnitude && p > text + 1);
    if (value < 0) *--p = '-';
    int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t written = write(fd, p, (size_t)(end - p));
    int saved = errno;
    close(fd);
    errno = saved;
    return written == end - p ? 0 : -1;
}

/* Writes each "path\0value\0" pair; returns 0, or the 1-based index of the pair that failed. */
static int write_sysctls(const char *pairs, size_t length) {
    const char *cursor = pairs, *end = pairs + length;
    int index = 0;
    while (cursor < end) {
        const char *path = cursor;
        while (cursor < end && *cursor) cursor++;
        const char *value = ++cursor;
        while (cursor < end && *cursor) cursor++;
        size_t value_length = (size_t)(cursor - value);
        cursor++;
        index++;
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0) return index;
        ssize_t written = write(fd, value, value_length);
        int saved = errno;
        close(fd);
        errno = saved;
        if (written != (ssize_t)value_length) return index;
    }
    return 0;
}

/* A child of the runtime: cloned with `flags` into the plan's v2 cgroup when it names one
   (CLONE_INTO_CGROUP), else by a plain clone. Returns as fork does, or -errno. */
static pid_t clone_child(const struct veil_spawn_plan *plan, unsigned long flags) {
    pid_t child;
    if (plan->cgroup_v2_fd >= 0) {
        struct clone_args args;
        memset(&args, 0, sizeof args);
        args.flags = CLONE_INTO_CGROUP | flags;
        args.exit_signal = SIGCHLD;
        args.cgroup = (uint64_t)plan->cgroup_v2_fd;
        child = (pid_t)syscall(SYS_clone3, &args, sizeof args);
    } else {
        child = (pid_t)syscall(SYS_clone, flags | SIGCHLD, 0, NULL, NULL, 0);
    }
    return child < 0 ? -errno : child;
}

/* The child's first steps as host root: into its v1 cgroups (itself, by "0"), then
   process.oomScoreAdj. */
static void enter_cgroups(const struct veil_spawn_plan *plan, int sync) {
    for (int i = 0; i < plan->cgroup_tasks_count; i++) {
        if (write(plan->cgroup_tasks_fds[i], "0", 1) != 1) fail(sync, VEIL_STEP_CGROUP);
    }
    if (plan->set_oom_score_adj && write_oom_score_adj(plan->oom_score_adj) < 0) fail(sync, VEIL_STEP_OOM_SCORE);
}

/* The init cloned by the runtime itself (plan->direct): the clone makes its namespaces but the
   cgroup namespace, which the init makes once it joined its cgroups. */
static pid_t spawn_init_directly(const struct veil_spawn_plan *plan) {
    pid_t init = clone_child(plan, (unsigned long)(plan->unshare_flags & ~CLONE_NEWCGROUP));
    if (init != 0) return init;
    int sync = plan->sync_fd;
    enter_cgroups(plan, sync);
    if ((plan->unshare_flags & CLONE_NEWCGROUP) && unshare(CLONE_NEWCGROUP) < 0)
        fail_detail(sync, VEIL_STEP_UNSHARE, CLONE_NEWCGROUP);
    run_init(plan);
}

pid_t veil_spawn_init(const struct veil_spawn_plan *plan) {
    if (plan->direct) return spawn_init_directly(plan);
    pid_t stage1 = clone_child(plan, 0);
    if (stage1 != 0) return stage1;

    /* Stage 1: a single-threaded copy of the runtime. It joins its cgroups itself, before any
       namespace exists, so the cgroup namespace is rooted there and no lock-heavy migration of
       another process is needed. */
    int sync = plan->sync_fd;
    if (plan->await_scope) {
        send_msg(sync, VEIL_SYNC_SCOPE_WAIT, NULL, 0);
        struct veil_sync_header ack;
        if (read_all(sync, &ack, sizeof ack) < 0 || ack.type != VEIL_SYNC_ACK) {
            errno = ECANCELED;
            fail(sync, VEIL_STEP_SCOPE);
        }
    }
    enter_cgroups(plan, sync);
    int joined_user = 0, i = 0;
    /* Host root joins the other namespaces first (the user namespace comes last in the list). */
    for (; i < plan->join_count && plan->join_types[i] != CLONE_NEWUSER; i++) {
        if (setns(plan->join_fds[i], plan->join_types[i]) < 0) fail_detail(sync, VEIL_STEP_SETNS, plan->join_types[i]);
    }
    if (plan->pre_user_unshare_flags && unshare(plan->pre_user_unshare_flags) < 0)
        fail_detail(sync, VEIL_STEP_UNSHARE, plan->pre_user_unshare_flags);
    if (plan->bring_up_loopback && loopback_up() < 0) fail_detail(sync, VEIL_STEP_NETWORK, 0);
    if (plan->net_sysctls) {
        int failed = write_sysctls(plan->net_sysctls, plan->net_sysctls_len);
        if (failed) fail_detail(sync, VEIL_STEP_NETWORK, failed);
    }
    for (; i < plan->join_count; i++) {
        if (setns(plan->join_fds[i], plan->join_types[i]) < 0) fail_detail(sync, VEIL_STEP_SETNS, plan->join_types[i]);
        if (plan->join_types[i] == CLONE_NEWUSER) joined_user = 1;
    }
    if (joined_user) {
        /* Our host ids mean nothing in the joined namespace: become its root, or execve would
           drop the capabilities setns gave us. */
        if (become_namespace_root() < 0) fail(sync, VEIL_STEP_SETID);
        prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
    }
    if (plan->unshare_user && unshare(CLONE_NEWUSER) < 0) fail(sync, VEIL_STEP_UNSHARE_USER);

    if (plan->unshare_user) {
        /* The parent writes the id maps before any other namespace exists. */
        send_msg(sync, VEIL_SYNC_STAGE1_READY, NULL, 0);
        struct veil_sync_header ack;
        if (read_all(sync, &ack, sizeof ack) < 0 || ack.type != VEIL_SYNC_ACK) {
            errno = ECANCELED;
            fail(sync, VEIL_STEP_SYNC);
        }
        if (become_namespace_root() < 0) fail(sync, VEIL_STEP_SETID);
        /* Changing ids cleared "dumpable", which hands /proc/self to the host's root: we could
           no longer write our own timens_offsets. */
        prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
    }
    if (plan->unshare_flags && unshare(plan->unshare_flags) < 0) fail(sync, VEIL_STEP_UNSHARE);
    if ((plan->unshare_flags & CLONE_NEWTIME) && plan->timens_offsets) {
        int fd = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
        if (fd < 0) fail(sync, VEIL_STEP_TIMENS);
        if (write(fd, plan->timens_offsets, plan->timens_offsets_len) < 0) fail(sync, VEIL_STEP_TIMENS);
        close(fd);
    }
    /* CLONE_PARENT: the init becomes the runtime's child (so `run` can wait for it, and a
       subreaping shim inherits it when `create` exits); it is PID 1 of a new pid namespace. */
    pid_t init = (pid_t)syscall(SYS_clone, CLONE_PARENT | SIGCHLD, 0, NULL, NULL, 0);
    if (init < 0) fail(sync, VEIL_STEP_CLONE);
    if (init == 0) run_init(plan);
    int32_t pid32 = init;
    send_msg(sync, VEIL_SYNC_INIT_PID, &pid32, sizeof pid32);
    _exit(0);
}

pid_t veil_spawn_chrooted(const char *root, int executable, char *const argv[], int stdin_fd, int output_fd) {
    static char *const environment[] = { "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", NULL };
    pid_t pid = (pid_t)syscall(SYS_clone, SIGCHLD, 0, NULL, NULL, 0);
    if (pid < 0) return -errno;
    if (pid > 0) return pid;
    veil_reset_signals();
    if (dup2(stdin_fd, 0) < 0 || dup2(output_fd, 1) < 0 || dup2(output_fd, 2) < 0) _exit(126);
    if (chroot(root) != 0 || chdir("/") != 0) _exit(125);
    syscall(SYS_execveat, executable, "", argv, environment, AT_EMPTY_PATH);
    _exit(127);
}

pid_t veil_spawn_namespace_holder(int report_fd, const char *net_sysctls, size_t net_sysctls_len) {
    pid_t pid = (pid_t)syscall(SYS_clone, SIGCHLD, 0, NULL, NULL, 0);
    if (pid != 0) return pid < 0 ? -errno : pid;
    /* The network namespace first, as host root: its owner is the host's user namespace. */
    char status = 'n';
    if (unshare(CLONE_NEWNET) < 0 || loopback_up() < 0) goto report;
    status = 's';
    if (net_sysctls && write_sysctls(net_sysctls, net_sysctls_len) != 0) goto report;
    status = 'u';
    if (unshare(CLONE_NEWUSER) < 0) goto report;
    status = 'k';
report:
    if (write(report_fd, &status, 1) != 1 || status != 'k') _exit(1);
    for (;;) pause();
}
