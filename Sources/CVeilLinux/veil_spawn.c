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
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/signalfd.h>
#include <termios.h>
#include <linux/capability.h>
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
#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#ifndef SYS_clone3
#define SYS_clone3 435
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
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

/* Reports errno, the step and (for namespace steps) the CLONE_NEW* type involved. */
static __attribute__((noreturn)) void fail_detail(int fd, int step, int detail) {
    int32_t body[3] = { errno, step, detail };
    send_msg(fd, VEIL_SYNC_CHILD_ERROR, body, sizeof body);
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

static void exit_on_signal(int sig) { _exit(128 + sig); }

int veil_exit_on_termination_signals(void) {
    static const int signals[] = {SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGALRM};
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = exit_on_signal;
    sigfillset(&sa.sa_mask);
    for (unsigned i = 0; i < sizeof signals / sizeof signals[0]; i++)
        if (sigaction(signals[i], &sa, NULL) < 0) return -errno;
    return 0;
}

int veil_sigmask_block_all(void) {
    sigset_t all;
    sigfillset(&all);
    return sigprocmask(SIG_BLOCK, &all, NULL) == 0 ? 0 : -errno;
}

/* The init: protect the binary, arrange fds, exec `veil init`. */
static __attribute__((noreturn)) void run_init(const struct veil_spawn_plan *plan) {
    int sync = plan->sync_fd;
    if (plan->protect_exe && plan->exe_fd < 0) {
        /* CVE-2019-5736: the container must never be able to write the runtime binary. In this
           private mount namespace the binary is reached only through a read-only bind mount,
           so /proc/<init>/exe opens read-only. Propagation is cut first so nothing reaches the host. */
        if (mount(NULL, "/", NULL, MS_SLAVE | MS_REC, NULL) < 0) fail(sync, VEIL_STEP_PROTECT_EXE);
        if (mount(plan->exe_path, plan->exe_path, NULL, MS_BIND, NULL) < 0) fail(sync, VEIL_STEP_PROTECT_EXE);
        if (mount(NULL, plan->exe_path, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL) < 0)
            fail(sync, VEIL_STEP_PROTECT_EXE);
    }
    int base = 3 + plan->preserve_fds;
    for (int i = 0; i < plan->extra_count; i++) {
        if (plan->extra_fds[i] < 0) continue;
        if (dup2(plan->extra_fds[i], base + i) < 0) fail(sync, VEIL_STEP_FDS);
    }
    for (int fd = 3; fd < base; fd++) {
        int flags = fcntl(fd, F_GETFD);
        if (flags >= 0) fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC);
    }
    /* CVE-2024-21626: none of the runtime's own descriptors may survive the exec. Marking them
       close-on-exec (instead of closing) keeps a memfd copy of the binary usable by execveat. */
    syscall(SYS_close_range, (unsigned int)(base + plan->extra_count), ~0U, 4 /* CLOSE_RANGE_CLOEXEC */);
    veil_reset_signals();
    if (plan->exe_fd >= 0)
        syscall(SYS_execveat, plan->exe_fd, "", plan->argv, plan->envp, AT_EMPTY_PATH);
    else
        execve(plan->exe_path, plan->argv, plan->envp);
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

pid_t veil_spawn_init(const struct veil_spawn_plan *plan) {
    pid_t stage1;
    if (plan->cgroup_v2_fd >= 0) {
        struct clone_args args;
        memset(&args, 0, sizeof args);
        args.flags = CLONE_INTO_CGROUP;
        args.exit_signal = SIGCHLD;
        args.cgroup = (uint64_t)plan->cgroup_v2_fd;
        stage1 = (pid_t)syscall(SYS_clone3, &args, sizeof args);
    } else {
        stage1 = (pid_t)syscall(SYS_clone, SIGCHLD, 0, NULL, NULL, 0);
    }
    if (stage1 < 0) return -errno;
    if (stage1 > 0) return stage1;

    /* Stage 1: a single-threaded copy of the runtime. It joins its cgroups itself, before any
       namespace exists, so the cgroup namespace is rooted there and no lock-heavy migration of
       another process is needed. */
    int sync = plan->sync_fd;
    for (int i = 0; i < plan->cgroup_tasks_count; i++) {
        if (write(plan->cgroup_tasks_fds[i], "0", 1) != 1) fail(sync, VEIL_STEP_CGROUP);
    }
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

int veil_openat2(int dirfd, const char *path, uint64_t flags, uint64_t mode, uint64_t resolve) {
    struct { uint64_t flags, mode, resolve; } how = { flags, mode, resolve };
    long r = syscall(SYS_openat2, dirfd, path, &how, sizeof how);
    return r < 0 ? -errno : (int)r;
}

int veil_pivot_root(const char *new_root, const char *put_old) {
    return syscall(SYS_pivot_root, new_root, put_old) < 0 ? -errno : 0;
}

int veil_close_range(unsigned int first, unsigned int last, unsigned int flags) {
    return syscall(SYS_close_range, first, last, flags) < 0 ? -errno : 0;
}

int veil_pidfd_open(pid_t pid, unsigned int flags) {
    long r = syscall(SYS_pidfd_open, pid, flags);
    return r < 0 ? -errno : (int)r;
}

int veil_pidfd_send_signal(int pidfd, int sig) {
    return syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) < 0 ? -errno : 0;
}

int veil_memfd_create(const char *name, unsigned int flags) {
    long r = syscall(SYS_memfd_create, name, flags);
    return r < 0 ? -errno : (int)r;
}

int veil_capset(uint32_t effective[2], uint32_t permitted[2], uint32_t inheritable[2]) {
    struct __user_cap_header_struct header = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data[2];
    for (int i = 0; i < 2; i++) {
        data[i].effective = effective[i];
        data[i].permitted = permitted[i];
        data[i].inheritable = inheritable[i];
    }
    return syscall(SYS_capset, &header, data) < 0 ? -errno : 0;
}

int veil_capget(uint32_t effective[2], uint32_t permitted[2], uint32_t inheritable[2]) {
    struct __user_cap_header_struct header = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data[2];
    if (syscall(SYS_capget, &header, data) < 0) return -errno;
    for (int i = 0; i < 2; i++) {
        effective[i] = data[i].effective;
        permitted[i] = data[i].permitted;
        inheritable[i] = data[i].inheritable;
    }
    return 0;
}

int veil_execveat_fd(int fd, char *const argv[], char *const envp[]) {
    syscall(SYS_execveat, fd, "", argv, envp, AT_EMPTY_PATH);
    return -errno;
}

int veil_send_fd(int sock, int fd, const char *data, size_t len) {
    char control[CMSG_SPACE(sizeof(int))];
    memset(control, 0, sizeof control);
    struct iovec iov = { (void *)data, len };
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
    return sendmsg(sock, &msg, MSG_NOSIGNAL) < 0 ? -errno : 0;
}

int veil_recv_fd(int sock, char *buf, size_t buflen) {
    char control[CMSG_SPACE(sizeof(int))];
    struct iovec iov = { buf, buflen };
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    if (recvmsg(sock, &msg, MSG_CMSG_CLOEXEC) < 0) return -errno;
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
    if (!cmsg || cmsg->cmsg_type != SCM_RIGHTS) return -EBADMSG;
    int fd;
    memcpy(&fd, CMSG_DATA(cmsg), sizeof(int));
    return fd;
}

int veil_ioctl_int(int fd, unsigned long request, int *value) {
    return ioctl(fd, request, value) < 0 ? -errno : 0;
}

int veil_namespace_owner(int fd) {
    int owner = ioctl(fd, 0xb701 /* NS_GET_USERNS */);
    return owner < 0 ? -errno : owner;
}

int veil_ioctl_ptr(int fd, unsigned long request, void *value) {
    return ioctl(fd, request, value) < 0 ? -errno : 0;
}

int veil_prctl(int option, unsigned long a2, unsigned long a3, unsigned long a4, unsigned long a5) {
    return prctl(option, a2, a3, a4, a5) < 0 ? -errno : 0;
}

int veil_setresuid(uid_t uid) { return setresuid(uid, uid, uid) < 0 ? -errno : 0; }
int veil_setresgid(gid_t gid) { return setresgid(gid, gid, gid) < 0 ? -errno : 0; }

int veil_pty_unlock(int master) {
    int unlock = 0, number = -1;
    if (ioctl(master, TIOCSPTLCK, &unlock) < 0) return -errno;
    if (ioctl(master, TIOCGPTN, &number) < 0) return -errno;
    return number;
}

int veil_set_ctty(int fd) { return ioctl(fd, TIOCSCTTY, 0) < 0 ? -errno : 0; }

int veil_dup_cloexec_above(int fd, int minimum) {
    int r = fcntl(fd, F_DUPFD_CLOEXEC, minimum);
    return r < 0 ? -errno : r;
}

int veil_set_cloexec(int fd, int on) {
    int flags = fcntl(fd, F_GETFD);
    if (flags < 0) return -errno;
    flags = on ? (flags | FD_CLOEXEC) : (flags & ~FD_CLOEXEC);
    return fcntl(fd, F_SETFD, flags) < 0 ? -errno : 0;
}

int veil_signalfd_all(void) {
    sigset_t all;
    sigfillset(&all);
    int fd = signalfd(-1, &all, SFD_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

int veil_termios_size(void) { return (int)sizeof(struct termios); }

int veil_make_raw(int fd, void *saved) {
    struct termios t;
    if (tcgetattr(fd, &t) < 0) return -errno;
    memcpy(saved, &t, sizeof t);
    cfmakeraw(&t);
    /* Keep output post-processing so the container's "\n" still reaches column 0 of our terminal. */
    t.c_oflag |= OPOST;
    return tcsetattr(fd, TCSANOW, &t) < 0 ? -errno : 0;
}

int veil_restore_termios(int fd, const void *saved) {
    return tcsetattr(fd, TCSANOW, (const struct termios *)saved) < 0 ? -errno : 0;
}

int veil_set_nonblocking(int fd) {
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0) return -errno;
    return fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0 ? -errno : 0;
}

int veil_signalfd_read(int fd) {
    struct signalfd_siginfo info;
    ssize_t n = read(fd, &info, sizeof info);
    if (n < 0) return -errno;
    if (n != sizeof info) return -EIO;
    return (int)info.ssi_signo;
}

int veil_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC) < 0 ? -errno : 0; }

int veil_readonly_exe_fd(const char *path) {
    int fd = (int)syscall(428 /* open_tree */, AT_FDCWD, path, 1 /* OPEN_TREE_CLONE */ | O_CLOEXEC);
    if (fd < 0) return -errno;
    struct { uint64_t attr_set, attr_clr, propagation, userns_fd; } attr = { 0x1 /* MOUNT_ATTR_RDONLY */, 0, 0, 0 };
    if (syscall(442 /* mount_setattr */, fd, "", AT_EMPTY_PATH, &attr, sizeof attr) < 0) {
        int saved = errno;
        close(fd);
        return -saved;
    }
    return fd;
}

int veil_setns(int fd, int type) { return setns(fd, type) < 0 ? -errno : 0; }
