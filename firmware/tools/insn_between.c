/*
 * QEMU TCG plugin (plugin API version 1, as exported by Debian's qemu-system-arm 7.2, which ships no
 * plugins and no plugin header): counts the guest instructions executed between an entry of the
 * `begin` address and the next entry of the `end` address (harcore_perf_begin / harcore_perf_end).
 *   -plugin ./libinsn_between.so,begin=0x...,end=0x...  -d plugin -D log
 * Writes "insn_between seq=N insns=M" per pair and "insn_between total=T" at exit to the QEMU log.
 * Only the entry points used are declared here. Build: gcc -O2 -shared -fPIC -fvisibility=hidden.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef uint64_t qemu_plugin_id_t;
struct qemu_info_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
enum { CB_NO_REGS = 0 };
enum { INLINE_ADD_U64 = 0 };

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t, void (*)(qemu_plugin_id_t, struct qemu_plugin_tb *));
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t, void (*)(qemu_plugin_id_t, void *), void *);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *, size_t);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *);
void qemu_plugin_register_vcpu_insn_exec_inline(struct qemu_plugin_insn *, int op, void *ptr, uint64_t imm);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *, void (*)(unsigned int, void *), int flags,
                                            void *);
void qemu_plugin_outs(const char *);

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

static uint64_t g_total; /* every executed guest instruction */
static uint64_t g_begin = ~0ull, g_end = ~0ull, g_t0;
static unsigned g_seq;

static void at_begin(unsigned int vcpu, void *u) {
  (void)vcpu;
  (void)u;
  g_t0 = g_total;
}

static void at_end(unsigned int vcpu, void *u) {
  (void)vcpu;
  (void)u;
  char buf[96];
  /* the inline count already includes the end marker's first instruction */
  snprintf(buf, sizeof buf, "insn_between seq=%u insns=%llu\n", g_seq++, (unsigned long long)(g_total - g_t0 - 1));
  qemu_plugin_outs(buf);
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb) {
  (void)id;
  size_t n = qemu_plugin_tb_n_insns(tb);
  for (size_t i = 0; i < n; i++) {
    struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
    uint64_t va = qemu_plugin_insn_vaddr(insn) & ~1ull;
    /* per instruction, not per block: exact even when a block is left early */
    qemu_plugin_register_vcpu_insn_exec_inline(insn, INLINE_ADD_U64, &g_total, 1);
    if (va == g_begin) qemu_plugin_register_vcpu_insn_exec_cb(insn, at_begin, CB_NO_REGS, NULL);
    if (va == g_end) qemu_plugin_register_vcpu_insn_exec_cb(insn, at_end, CB_NO_REGS, NULL);
  }
}

static void at_exit_cb(qemu_plugin_id_t id, void *u) {
  (void)id;
  (void)u;
  char buf[64];
  snprintf(buf, sizeof buf, "insn_between total=%llu\n", (unsigned long long)g_total);
  qemu_plugin_outs(buf);
}

__attribute__((visibility("default"))) int qemu_plugin_install(qemu_plugin_id_t id, const struct qemu_info_t *info,
                                                               int argc, char **argv) {
  (void)info;
  for (int i = 0; i < argc; i++) {
    if (!strncmp(argv[i], "begin=", 6)) g_begin = strtoull(argv[i] + 6, NULL, 0) & ~1ull;
    else if (!strncmp(argv[i], "end=", 4)) g_end = strtoull(argv[i] + 4, NULL, 0) & ~1ull;
  }
  qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
  qemu_plugin_register_atexit_cb(id, at_exit_cb, NULL);
  return 0;
}
