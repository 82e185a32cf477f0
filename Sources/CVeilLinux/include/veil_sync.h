#ifndef VEIL_SYNC_H
#define VEIL_SYNC_H

#include <stdint.h>

/* The sync socket between the runtime and a container's first processes (stage 1, then
   `veil init`): the one definition of its messages, read by the C children and by Swift
   (VeilContainer's InitChannel). Every message is a header followed by `length` payload bytes. */
struct veil_sync_header {
    uint32_t type;
    uint32_t length;
};

enum {
    VEIL_SYNC_STAGE1_READY = 1,  /* stage 1 unshared the user namespace; runtime: id maps, then ACK or ABORT */
    VEIL_SYNC_INIT_PID = 2,      /* payload: int32 host pid of the container init */
    VEIL_SYNC_CHILD_ERROR = 3,   /* payload: struct veil_child_error */
    VEIL_SYNC_SCOPE_WAIT = 4,    /* stage 1 waits to be placed in its systemd scope; runtime: ACK or ABORT */
    VEIL_SYNC_INIT_MESSAGE = 10, /* payload: an InitMessage from `veil init` (its kind, a newline, its text) */
    VEIL_SYNC_ACK = 100,         /* runtime -> child: go on */
    VEIL_SYNC_ABORT = 101,       /* runtime -> child: give up */
    VEIL_SYNC_PLAN = 102,        /* runtime -> init: the JSON InitPlan, sent while stage 1 still works */
    VEIL_SYNC_PLAN_LATE = 103,   /* runtime -> init: the JSON InitPlan.Late, once the init exists */
};

/* What a child before execve was doing when it failed. */
enum veil_spawn_step {
    VEIL_STEP_SETNS = 1,
    VEIL_STEP_UNSHARE_USER = 2,
    VEIL_STEP_SYNC = 3,
    VEIL_STEP_SETID = 4,
    VEIL_STEP_UNSHARE = 5,
    VEIL_STEP_TIMENS = 6,
    VEIL_STEP_CLONE = 7,
    VEIL_STEP_FDS = 9,
    VEIL_STEP_EXEC = 10,
    VEIL_STEP_CGROUP = 11,
    VEIL_STEP_NETWORK = 12,
    VEIL_STEP_SCOPE = 13,
    VEIL_STEP_OOM_SCORE = 14,
};

/* The payload of VEIL_SYNC_CHILD_ERROR. `detail` is the CLONE_NEW* flag of a namespace step;
   for VEIL_STEP_NETWORK 0 means the loopback, else the 1-based index of the failed sysctl. */
struct veil_child_error {
    int32_t error;
    int32_t step;
    int32_t detail;
};

/* What the runtime tells the user a failed step was doing. */
static inline const char *veil_spawn_step_description(int32_t step) {
    switch (step) {
    case VEIL_STEP_SETNS: return "joining a namespace";
    case VEIL_STEP_UNSHARE_USER: return "creating the user namespace";
    case VEIL_STEP_SYNC: return "waiting for the runtime";
    case VEIL_STEP_SETID: return "becoming root in the user namespace";
    case VEIL_STEP_UNSHARE: return "creating namespaces";
    case VEIL_STEP_TIMENS: return "setting time offsets";
    case VEIL_STEP_CLONE: return "cloning the init";
    case VEIL_STEP_FDS: return "arranging fds";
    case VEIL_STEP_EXEC: return "executing veil init";
    case VEIL_STEP_CGROUP: return "joining its cgroups";
    case VEIL_STEP_NETWORK: return "setting up its network namespace";
    case VEIL_STEP_SCOPE: return "waiting for its systemd scope";
    case VEIL_STEP_OOM_SCORE: return "setting process.oomScoreAdj";
    default: return 0;
    }
}

#endif
