#ifndef VEIL_BPF_H
#define VEIL_BPF_H

#include <stdint.h>

/* bpf(2) for cgroup v2 device control. glibc has no wrapper and Swift cannot call the
   variadic syscall(2), so the few commands veil needs live here. Every function returns
   a non-negative value on success and -errno on failure. */

/* One eBPF instruction, laid out as the kernel's struct bpf_insn (8 bytes). */
struct veil_bpf_insn {
    uint8_t code;
    uint8_t regs;   /* dst register in the low nibble, src register in the high nibble */
    int16_t off;
    int32_t imm;
};

/* BPF_PROG_LOAD of a BPF_PROG_TYPE_CGROUP_DEVICE program. Returns the program fd
   (close-on-exec). When log_buf is non-NULL the verifier's log (level 1) is written there. */
int veil_bpf_load_device_program(const struct veil_bpf_insn *insns, uint32_t count,
                                 const char *license, char *log_buf, uint32_t log_size);

/* BPF_PROG_ATTACH / BPF_PROG_DETACH with attach type BPF_CGROUP_DEVICE. */
int veil_bpf_attach_device_program(int cgroup_fd, int prog_fd, uint32_t flags);
int veil_bpf_detach_device_program(int cgroup_fd, int prog_fd);

/* BPF_PROG_QUERY for BPF_CGROUP_DEVICE: fills up to *count ids and sets *count to the
   number attached (-ENOSPC when ids was too small; *count then says how many there are). */
int veil_bpf_query_device_programs(int cgroup_fd, uint32_t *ids, uint32_t *count);

/* BPF_PROG_GET_FD_BY_ID. */
int veil_bpf_prog_fd_by_id(uint32_t id);

/* eventfd(2) with EFD_CLOEXEC (Swift's Glibc module does not export sys/eventfd.h);
   used for cgroup v1 OOM notifications. Returns the fd or -errno. */
int veil_eventfd_cloexec(unsigned int initval);

/* The flag values Swift needs without importing linux/bpf.h. */
uint32_t veil_bpf_flag_allow_multi(void);

#endif
