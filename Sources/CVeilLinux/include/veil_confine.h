#ifndef VEIL_CONFINE_H
#define VEIL_CONFINE_H

/* The warden's confinement, run once at its start while it is still single-threaded (joining a
   user namespace requires that): drop the host's supplementary groups, join the sandbox's user
   namespace (`userns_fd`), become its root (host ids: the sandbox's range), keep only the
   capabilities it uses within that namespace (CAP_DAC_OVERRIDE and CAP_SYS_PTRACE to open
   /proc/<tid>/mem of any of the sandbox's processes, CAP_KILL for its dead man's switch), become
   non-dumpable and set no_new_privs (which its own seccomp filter then needs).
   Returns 0, or -errno with `*step` naming the step that failed. */
int veil_warden_confine(int userns_fd, const char **step);

#endif
