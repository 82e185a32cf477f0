#define _GNU_SOURCE
#include "veil_bpf.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <linux/bpf.h>

_Static_assert(sizeof(struct veil_bpf_insn) == sizeof(struct bpf_insn), "bpf_insn layout");

static int veil_bpf(int cmd, union bpf_attr *attr) {
    long rc;
    do {
        rc = syscall(SYS_bpf, cmd, attr, sizeof(*attr));
    } while (rc < 0 && errno == EINTR);
    return rc < 0 ? -errno : (int)rc;
}

int veil_bpf_load_device_program(const struct veil_bpf_insn *insns, uint32_t count,
                                 const char *license, char *log_buf, uint32_t log_size) {
    union bpf_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
    attr.insn_cnt = count;
    attr.insns = (uint64_t)(uintptr_t)insns;
    attr.license = (uint64_t)(uintptr_t)license;
    if (log_buf != NULL && log_size > 0) {
        attr.log_level = 1;
        attr.log_buf = (uint64_t)(uintptr_t)log_buf;
        attr.log_size = log_size;
        log_buf[0] = 0;
    }
    /* The kernel marks program fds close-on-exec itself. */
    return veil_bpf(BPF_PROG_LOAD, &attr);
}

int veil_bpf_attach_device_program(int cgroup_fd, int prog_fd, uint32_t flags) {
    union bpf_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.target_fd = (uint32_t)cgroup_fd;
    attr.attach_bpf_fd = (uint32_t)prog_fd;
    attr.attach_type = BPF_CGROUP_DEVICE;
    attr.attach_flags = flags;
    return veil_bpf(BPF_PROG_ATTACH, &attr);
}

int veil_bpf_detach_device_program(int cgroup_fd, int prog_fd) {
    union bpf_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.target_fd = (uint32_t)cgroup_fd;
    attr.attach_bpf_fd = (uint32_t)prog_fd;
    attr.attach_type = BPF_CGROUP_DEVICE;
    return veil_bpf(BPF_PROG_DETACH, &attr);
}

int veil_bpf_query_device_programs(int cgroup_fd, uint32_t *ids, uint32_t *count) {
    union bpf_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.query.target_fd = (uint32_t)cgroup_fd;
    attr.query.attach_type = BPF_CGROUP_DEVICE;
    attr.query.prog_ids = (uint64_t)(uintptr_t)ids;
    attr.query.prog_cnt = *count;
    int rc = veil_bpf(BPF_PROG_QUERY, &attr);
    *count = attr.query.prog_cnt;
    return rc;
}

int veil_bpf_prog_fd_by_id(uint32_t id) {
    union bpf_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.prog_id = id;
    return veil_bpf(BPF_PROG_GET_FD_BY_ID, &attr);
}

uint32_t veil_bpf_flag_allow_multi(void) {
    return BPF_F_ALLOW_MULTI;
}

int veil_eventfd_cloexec(unsigned int initval) {
    int fd = eventfd(initval, EFD_CLOEXEC);
    return fd < 0 ? -errno : fd;
}
