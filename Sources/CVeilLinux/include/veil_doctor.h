#ifndef VEIL_DOCTOR_H
#define VEIL_DOCTOR_H

/* Probes for `veil doctor`: each makes one harmless call of a system call veil needs and returns
   0 when the call succeeded, else its errno (ENOSYS: the kernel, or a seccomp filter above us,
   does not offer it). Nothing is changed: every call is refused by its arguments or is a no-op. */

/* mount_setattr(-1, "", AT_EMPTY_PATH, {0}, sizeof): a no-op or EBADF. */
int veil_doctor_probe_mount_setattr(void);
/* open_tree(-1, "", AT_EMPTY_PATH): EBADF (an fd it returns anyway is closed). */
int veil_doctor_probe_open_tree(void);
/* pidfd_open(getpid(), 0): a pidfd, closed at once. */
int veil_doctor_probe_pidfd_open(void);
/* clone3(NULL, 0): EINVAL (an argument struct smaller than the first version). */
int veil_doctor_probe_clone3(void);
/* openat2(-1, "", NULL, 0): EINVAL (a struct open_how smaller than the first version). */
int veil_doctor_probe_openat2(void);
/* close_range(1, 0, 0): EINVAL (first above last). */
int veil_doctor_probe_close_range(void);

#endif
