/* QEMU TCG plugin: exact count of guest instructions executed between two
 * marker functions (the firmware's tf_mark_begin / tf_mark_end).
 *
 * Every translated instruction gets an inline "counter += 1" (no helper
 * call, so it stays fast); the translation blocks that start at a marker
 * address get a callback that snapshots the counter. One line per
 * begin/end pair is appended to the output file:
 *     <pair number> <instructions>
 * counting from the first instruction of tf_mark_begin to the first of
 * tf_mark_end. The firmware runs no interrupts, so the count is exact and
 * repeatable. Optional: "op=<addr>" marks a per-operator marker whose hits
 * are listed as "op <n> <instructions since begin>" lines.
 *
 * Arguments: begin=<hex addr>,end=<hex addr>,out=<file>[,op=<hex addr>] */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qemu_plugin_api.h"

QEMU_PLUGIN_EXPORT int qemu_plugin_version = TF_QEMU_PLUGIN_VERSION;

static uint64_t executed;          /* instructions so far (single vCPU) */
static uint64_t begin_addr, end_addr, op_addr;
static uint64_t begin_at, pairs, op_hits;
static int inside;
static FILE *out;

enum { MARK_BEGIN = 1, MARK_END, MARK_OP };

static void on_marker(unsigned int vcpu, void *udata)
{
    (void)vcpu;
    switch ((int)(uintptr_t)udata) {
    case MARK_BEGIN:
        begin_at = executed;
        inside = 1;
        op_hits = 0;
        break;
    case MARK_END:
        if (inside) {
            fprintf(out, "%" PRIu64 " %" PRIu64 "\n", ++pairs, executed - begin_at);
            fflush(out);          /* the host reads it as soon as the reply arrives */
        }
        inside = 0;
        break;
    case MARK_OP:
        if (inside)
            fprintf(out, "op %" PRIu64 " %" PRIu64 "\n", op_hits++, executed - begin_at);
        break;
    }
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    uint64_t pc = qemu_plugin_tb_vaddr(tb);
    int mark = pc == begin_addr ? MARK_BEGIN : pc == end_addr ? MARK_END
             : (op_addr && pc == op_addr) ? MARK_OP : 0;
    /* The marker callback is registered first, so it sees the count
     * before the block's own instructions. */
    if (mark)
        qemu_plugin_register_vcpu_tb_exec_cb(tb, on_marker, QEMU_PLUGIN_CB_NO_REGS,
                                             (void *)(uintptr_t)mark);
    size_t n = qemu_plugin_tb_n_insns(tb);
    for (size_t i = 0; i < n; i++)
        qemu_plugin_register_vcpu_insn_exec_inline(qemu_plugin_tb_get_insn(tb, i),
                                                   QEMU_PLUGIN_INLINE_ADD_U64, &executed, 1);
}

static void plugin_exit(qemu_plugin_id_t id, void *udata)
{
    (void)id;
    (void)udata;
    if (out) fclose(out);
}

static int parse_arg(const char *arg, const char *key, char **value)
{
    size_t n = strlen(key);
    if (strncmp(arg, key, n) || arg[n] != '=') return 0;
    *value = (char *)arg + n + 1;
    return 1;
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
                                           int argc, char **argv)
{
    (void)info;
    const char *path = NULL;
    char *v;
    for (int i = 0; i < argc; i++) {
        if (parse_arg(argv[i], "begin", &v)) begin_addr = strtoull(v, NULL, 0);
        else if (parse_arg(argv[i], "end", &v)) end_addr = strtoull(v, NULL, 0);
        else if (parse_arg(argv[i], "op", &v)) op_addr = strtoull(v, NULL, 0);
        else if (parse_arg(argv[i], "out", &v)) path = v;
        else {
            fprintf(stderr, "insncount: unknown argument %s\n", argv[i]);
            return -1;
        }
    }
    if (!begin_addr || !end_addr || !path) {
        fprintf(stderr, "insncount: needs begin=, end= and out=\n");
        return -1;
    }
    out = fopen(path, "a");
    if (!out) {
        perror(path);
        return -1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_atexit_cb(id, plugin_exit, NULL);
    return 0;
}
