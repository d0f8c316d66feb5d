// SPDX-License-Identifier: GPL-2.0
/*
 * sharklib native tracer: follows one process tree and reports, through a BPF
 * ring buffer, what it executed, opened, renamed, linked, removed, truncated,
 * where it changed directory and what it connected to.
 *
 * Only BTF tracepoints (tp_btf) are used: this kernel refuses fentry/fexit/LSM
 * and has no kprobes, tp_btf needs no tracefs, and its links detach in ~0.1 ms
 * (a classic tracepoint link takes ~70 ms).  Syscalls are seen at sys_exit,
 * where the argument registers are still intact and the result is known, so
 * only successful operations are reported and one program serves them all.
 *
 * Paths are resolved in the kernel: the dentry of an opened fd, of a dirfd or
 * of the working directory is walked to the root (crossing mounts) inside
 * bpf_loop.  Components are written leaf first, each followed by '/'; user
 * space reverses them.  Relative names of path operations are sent raw with
 * the walked base they are relative to.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "GPL";

#define EV_FORK 1
#define EV_EXEC 2
#define EV_EXIT 3
#define EV_OPEN 4
#define EV_PATHOP 5
#define EV_CONNECT 6
#define EV_CHDIR 7

#define SCRATCH 16384
#define MASK (SCRATCH - 1)
#define STR_MAX 4096
#define PATH_BUDGET 4096
/* Deep enough that only PATH_BUDGET can stop a walk (one-character names take two
 * bytes each): a walk that stops anywhere but at the root is counted as cut, and a
 * cut path makes the command's record incomplete in user space (never a path with
 * its prefix silently lost, which once recorded /d/.../leaf.in 256 levels short). */
#define WALK_MAX_DEPTH (PATH_BUDGET / 2 + 8)

#define AT_FDCWD_ -100
#define O_PATH_ 010000000
#define O_TRUNC_ 01000

/* x86_64 syscall numbers */
#define NR_open 2
#define NR_connect 42
#define NR_truncate 76
#define NR_chdir 80
#define NR_fchdir 81
#define NR_rename 82
#define NR_rmdir 84
#define NR_creat 85
#define NR_link 86
#define NR_unlink 87
#define NR_symlink 88
#define NR_openat 257
#define NR_unlinkat 263
#define NR_renameat 264
#define NR_linkat 265
#define NR_symlinkat 266
#define NR_renameat2 316
#define NR_openat2 437

struct event {
	u32 type;
	u32 pid;      /* tgid of the process */
	u32 tid;
	s32 aux1;     /* parent tgid / exit code / f_mode / syscall nr */
	s32 aux2;     /* i_mode / old pid / dirfd */
	s32 ret;
	u64 ts;
	u16 len[4];   /* lengths of the strings that follow, in order */
};

struct scratch {
	struct event ev;
	char data[SCRATCH + 2 * STR_MAX + 512];
	/* the walk's write position lives in map memory, not on the stack, so the
	 * verifier treats it as an unknown scalar and bpf_loop's states converge */
	u32 cursor;
	u32 walk_start;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct scratch);
} scratch_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 << 20);
} events SEC(".maps");

/* tgids being traced */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, u32);
	__type(value, u8);
} traced SEC(".maps");

/* Opens already reported, per process: a program that opens the same file in the same
 * mode a million times costs one event.  The key carries a per-process generation that
 * changes at fork, exec and every rename/link/unlink/truncate, so a name that now means
 * another file is reported again.  Eviction only means reporting twice. */
struct seen_key {
	u32 tgid;
	u32 gen;
	u64 ino;
	u32 dev;
	u32 mode;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 131072);
	__type(key, struct seen_key);
	__type(value, u8);
} seen SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, u32);
	__type(value, u32);
} gens SEC(".maps");

static __always_inline void new_generation(u32 tgid)
{
	u32 g = bpf_get_prandom_u32();
	bpf_map_update_elem(&gens, &tgid, &g, BPF_ANY);
}

/* [0] = tgid whose forked children are traced (the tracer, until the root is started),
 * [1] = events lost because the ring buffer was full, [2] = paths cut short (walk did not
 * reach the root) */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, u32);
	__type(value, u64);
} control SEC(".maps");

static __always_inline void count(u32 idx)
{
	u64 *v = bpf_map_lookup_elem(&control, &idx);
	if (v)
		__sync_fetch_and_add(v, 1);
}

static __always_inline int is_traced(u32 tgid)
{
	return bpf_map_lookup_elem(&traced, &tgid) != NULL;
}

static __always_inline struct scratch *get_scratch(void)
{
	u32 zero = 0;
	return bpf_map_lookup_elem(&scratch_map, &zero);
}

static __always_inline void submit(struct scratch *s, u32 off)
{
	u32 size = sizeof(struct event) + (off & (SCRATCH * 2 - 1));
	if (size > sizeof(struct scratch))
		size = sizeof(struct scratch);
	if (bpf_ringbuf_output(&events, s, size & 0xffff, BPF_RB_NO_WAKEUP))
		count(1);
}

static __always_inline struct scratch *start(u32 type, u32 tgid)
{
	struct scratch *s = get_scratch();
	if (!s)
		return NULL;
	s->ev.type = type;
	s->ev.pid = tgid;
	s->ev.tid = (u32)bpf_get_current_pid_tgid();
	s->ev.aux1 = 0;
	s->ev.aux2 = 0;
	s->ev.ret = 0;
	s->ev.ts = bpf_ktime_get_ns();
	s->ev.len[0] = s->ev.len[1] = s->ev.len[2] = s->ev.len[3] = 0;
	return s;
}

/* ---- dentry walk ---- */

struct walk_ctx {
	struct dentry *dentry;
	struct vfsmount *vfsmnt;
	struct mount *mnt;
	u32 done; /* reached the root: the path is whole */
};

static long walk_step(u32 i, struct walk_ctx *c)
{
	struct scratch *s = get_scratch();
	if (!s)
		return 1;
	struct dentry *d = c->dentry;
	struct vfsmount *vm = c->vfsmnt;
	struct mount *m = c->mnt;
	struct dentry *mnt_root = BPF_CORE_READ(vm, mnt_root);
	if (d == mnt_root) {
		struct mount *parent = BPF_CORE_READ(m, mnt_parent);
		if (parent == m || !parent) {
			c->done = 1;
			return 1;
		}
		c->dentry = BPF_CORE_READ(m, mnt_mountpoint);
		c->mnt = parent;
		c->vfsmnt = &parent->mnt;
		return 0;
	}
	struct dentry *up = BPF_CORE_READ(d, d_parent);
	if (up == d) {
		c->done = 1;
		return 1;
	}
	u32 off = s->cursor;
	if (off - s->walk_start > PATH_BUDGET)
		return 1;
	const unsigned char *name = BPF_CORE_READ(d, d_name.name);
	long n = bpf_probe_read_kernel_str(&s->data[off & MASK], 256, name);
	if (n <= 0)
		return 1;
	off += n;
	s->data[(off - 1) & MASK] = '/';
	s->cursor = off;
	c->dentry = up;
	return 0;
}

/* Walk `p` into the scratch data at `off`; returns the new offset. */
static __always_inline u32 walk(struct path *p, u32 off)
{
	struct scratch *s = get_scratch();
	if (!s)
		return off;
	struct walk_ctx c = {};
	c.dentry = BPF_CORE_READ(p, dentry);
	c.vfsmnt = BPF_CORE_READ(p, mnt);
	c.mnt = container_of(c.vfsmnt, struct mount, mnt);
	s->cursor = off;
	s->walk_start = off;
	bpf_loop(WALK_MAX_DEPTH, walk_step, &c, 0);
	if (!c.done)
		count(2); /* over budget, unreadable name or too deep: the path is cut */
	return s->cursor;
}

static __always_inline struct file *fd_file(struct task_struct *task, long fd)
{
	struct file **arr = BPF_CORE_READ(task, files, fdt, fd);
	unsigned int max = BPF_CORE_READ(task, files, fdt, max_fds);
	struct file *f = NULL;
	if (fd < 0 || fd >= max)
		return NULL;
	bpf_probe_read_kernel(&f, sizeof(f), &arr[fd]);
	return f;
}

/* Append the base a relative `name` is resolved against: the cwd or dirfd. */
static __always_inline u32 put_base(struct scratch *s, int slot, long dirfd,
				     const char *name, u32 off)
{
	char first = 0;
	bpf_probe_read_user(&first, 1, name);
	if (first == '/')
		return off;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task_btf();
	u32 end;
	if (dirfd == AT_FDCWD_) {
		struct path pwd = BPF_CORE_READ(task, fs, pwd);
		end = walk(&pwd, off);
	} else {
		struct file *f = fd_file(task, dirfd);
		if (!f)
			return off;
		struct path fp = BPF_CORE_READ(f, f_path);
		end = walk(&fp, off);
	}
	s->ev.len[slot & 3] = (end - off) & 0xffff;
	return end;
}

static __always_inline u32 put_user_str(struct scratch *s, int slot, const char *str, u32 off)
{
	long n = bpf_probe_read_user_str(&s->data[off & MASK], STR_MAX, str);
	if (n <= 0)
		return off;
	s->ev.len[slot & 3] = (n - 1) & 0xffff;
	return off + n - 1;
}

/* ---- process tree ---- */

SEC("tp_btf/sched_process_fork")
int BPF_PROG(on_fork, struct task_struct *parent, struct task_struct *child)
{
	u32 ptgid = BPF_CORE_READ(parent, tgid);
	u32 ctgid = BPF_CORE_READ(child, tgid);
	u32 cpid = BPF_CORE_READ(child, pid);
	if (cpid != ctgid)
		return 0; /* a thread */
	u32 zero = 0;
	u64 *watch = bpf_map_lookup_elem(&control, &zero);
	if (!(watch && *watch == ptgid) && !is_traced(ptgid))
		return 0;
	u8 one = 1;
	bpf_map_update_elem(&traced, &ctgid, &one, BPF_ANY);
	new_generation(ctgid);
	struct scratch *s = start(EV_FORK, ctgid);
	if (!s)
		return 0;
	s->ev.aux1 = ptgid;
	submit(s, 0);
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	u32 tgid = BPF_CORE_READ(p, tgid);
	if (!is_traced(tgid))
		return 0;
	new_generation(tgid);
	struct scratch *s = start(EV_EXEC, tgid);
	if (!s)
		return 0;
	s->ev.aux2 = old_pid;
	u32 off = 0, end;
	/* [0] the file the kernel finally ran (the interpreter for a script) */
	struct path fp = BPF_CORE_READ(bprm, file, f_path);
	end = walk(&fp, off);
	s->ev.len[0] = (end - off) & 0xffff;
	off = end;
	/* [1] the file name as the caller passed it */
	const char *fname = BPF_CORE_READ(bprm, filename);
	long n = bpf_probe_read_kernel_str(&s->data[off & MASK], STR_MAX, fname);
	if (n > 0) {
		s->ev.len[1] = (n - 1) & 0xffff;
		off += n - 1;
	}
	/* [2] the working directory */
	struct path pwd = BPF_CORE_READ(p, fs, pwd);
	end = walk(&pwd, off);
	s->ev.len[2] = (end - off) & 0xffff;
	off = end;
	/* [3] argv, NUL separated, from the new image's stack */
	unsigned long a0 = BPF_CORE_READ(p, mm, arg_start);
	unsigned long a1 = BPF_CORE_READ(p, mm, arg_end);
	unsigned long alen = a1 - a0;
	if (alen > STR_MAX) {
		alen = STR_MAX;
		s->ev.ret = 1; /* argv cut short */
	}
	u32 asz = alen & (2 * STR_MAX - 1);
	if (asz && bpf_probe_read_user(&s->data[off & MASK], asz, (void *)a0) == 0) {
		s->ev.len[3] = asz & 0xffff;
		off += asz;
	}
	submit(s, off);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(on_exit, struct task_struct *p)
{
	u32 tgid = BPF_CORE_READ(p, tgid);
	/* The process ends with its last thread (signal->live reaches 0), not with
	 * its leader: an exec from another thread makes the old leader exit first. */
	if (BPF_CORE_READ(p, signal, live.counter) != 0 || !is_traced(tgid))
		return 0;
	struct scratch *s = start(EV_EXIT, tgid);
	if (!s)
		return 0;
	s->ev.aux1 = BPF_CORE_READ(p, exit_code);
	submit(s, 0);
	bpf_map_delete_elem(&traced, &tgid);
	bpf_map_delete_elem(&gens, &tgid);
	return 0;
}

/* ---- syscalls, at exit ---- */

/* O_TRUNC as the call asked it: the kernel drops it from the open file's f_flags */
static __always_inline u32 asked_trunc(long nr, struct pt_regs *regs)
{
	u64 flags = 0;
	switch (nr) {
	case NR_creat:
		return O_TRUNC_;
	case NR_open:
		flags = regs->si; break;
	case NR_openat:
		flags = regs->dx; break;
	case NR_openat2: /* struct open_how starts with its u64 flags */
		if (bpf_probe_read_user(&flags, sizeof flags, (void *)regs->si))
			flags = 0;
		break;
	}
	return flags & O_TRUNC_;
}

static __always_inline int on_open(long nr, struct pt_regs *regs, long ret)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task_btf();
	struct file *f = fd_file(task, ret);
	if (!f)
		return 0;
	/* an O_PATH descriptor names a file without reading or writing it */
	if (BPF_CORE_READ(f, f_flags) & O_PATH_)
		return 0;
	u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct seen_key k = {};
	k.tgid = tgid;
	u32 *g = bpf_map_lookup_elem(&gens, &tgid);
	k.gen = g ? *g : 0;
	k.ino = BPF_CORE_READ(f, f_inode, i_ino);
	k.dev = BPF_CORE_READ(f, f_inode, i_sb, s_dev);
	k.mode = BPF_CORE_READ(f, f_mode) & 3;
	if (bpf_map_lookup_elem(&seen, &k))
		return 0;
	u8 one = 1;
	bpf_map_update_elem(&seen, &k, &one, BPF_ANY);
	struct scratch *s = start(EV_OPEN, tgid);
	if (!s)
		return 0;
	s->ev.aux1 = BPF_CORE_READ(f, f_mode);
	s->ev.aux2 = BPF_CORE_READ(f, f_inode, i_mode);
	/* for an open, user space reads the file's flags (O_APPEND) here, not the descriptor,
	 * with O_TRUNC put back when the call asked for it (a write that keeps the old content) */
	s->ev.ret = BPF_CORE_READ(f, f_flags) | asked_trunc(nr, regs);
	struct path fp = BPF_CORE_READ(f, f_path);
	u32 end = walk(&fp, 0);
	s->ev.len[0] = end & 0xffff;
	submit(s, end);
	return 0;
}

static __always_inline int on_pathop(long nr, struct pt_regs *regs, long ret)
{
	u32 tgid = bpf_get_current_pid_tgid() >> 32;
	new_generation(tgid);
	struct scratch *s = start(EV_PATHOP, tgid);
	if (!s)
		return 0;
	s->ev.aux1 = nr;
	s->ev.ret = ret;
	long d1 = AT_FDCWD_, d2 = AT_FDCWD_;
	const char *n1 = NULL, *n2 = NULL;
	int raw1 = 0; /* first name is a symlink target: not resolved */
	switch (nr) {
	case NR_rename: case NR_link:
		n1 = (const char *)regs->di; n2 = (const char *)regs->si; break;
	case NR_renameat: case NR_renameat2: case NR_linkat:
		d1 = (int)regs->di; n1 = (const char *)regs->si; d2 = (int)regs->dx; n2 = (const char *)regs->r10; break;
	case NR_symlink:
		raw1 = 1; n1 = (const char *)regs->di; n2 = (const char *)regs->si; break;
	case NR_symlinkat:
		raw1 = 1; n1 = (const char *)regs->di; d2 = (int)regs->si; n2 = (const char *)regs->dx; break;
	case NR_unlink: case NR_rmdir: case NR_truncate:
		n1 = (const char *)regs->di; break;
	case NR_unlinkat:
		d1 = (int)regs->di; n1 = (const char *)regs->si; s->ev.aux2 = regs->dx; break;
	default:
		return 0;
	}
	u32 off = 0;
	if (!raw1)
		off = put_base(s, 0, d1, n1, off);
	off = put_user_str(s, 1, n1, off);
	if (n2) {
		off = put_base(s, 2, d2, n2, off);
		off = put_user_str(s, 3, n2, off);
	}
	submit(s, off);
	return 0;
}

static __always_inline int on_chdir(void)
{
	u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct scratch *s = start(EV_CHDIR, tgid);
	if (!s)
		return 0;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task_btf();
	struct path pwd = BPF_CORE_READ(task, fs, pwd);
	u32 end = walk(&pwd, 0);
	s->ev.len[0] = end & 0xffff;
	submit(s, end);
	return 0;
}

static __always_inline int on_connect(struct pt_regs *regs, long ret)
{
	u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct scratch *s = start(EV_CONNECT, tgid);
	if (!s)
		return 0;
	s->ev.ret = ret;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task_btf();
	struct file *f = fd_file(task, (int)regs->di);
	if (f) {
		struct socket *sock = (struct socket *)BPF_CORE_READ(f, private_data);
		s->ev.aux2 = BPF_CORE_READ(sock, type);
	}
	u32 len = regs->dx;
	if (len > 128)
		len = 128;
	asm volatile("%0 &= 0xff" : "+r"(len));
	if (len && bpf_probe_read_user(s->data, len, (void *)regs->si) == 0)
		s->ev.len[0] = len;
	submit(s, s->ev.len[0]);
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(on_sys_exit, struct pt_regs *regs, long ret)
{
	long nr = regs->orig_ax;
	switch (nr) {
	case NR_open: case NR_openat: case NR_openat2: case NR_creat:
	case NR_rename: case NR_renameat: case NR_renameat2:
	case NR_link: case NR_linkat: case NR_symlink: case NR_symlinkat:
	case NR_unlink: case NR_unlinkat: case NR_rmdir: case NR_truncate:
	case NR_chdir: case NR_fchdir: case NR_connect:
		break;
	default:
		return 0;
	}
	u32 tgid = bpf_get_current_pid_tgid() >> 32;
	if (!is_traced(tgid))
		return 0;
	switch (nr) {
	case NR_open: case NR_openat: case NR_openat2: case NR_creat:
		if (ret < 0)
			return 0;
		return on_open(nr, regs, ret);
	case NR_chdir: case NR_fchdir:
		if (ret < 0)
			return 0;
		return on_chdir();
	case NR_connect:
		if (ret < 0 && ret != -115 /* EINPROGRESS */)
			return 0;
		return on_connect(regs, ret);
	default:
		if (ret < 0)
			return 0;
		return on_pathop(nr, regs, ret);
	}
}
