/* Marker functions around exactly one inference. The simulator's
 * instruction-count plugin (tinyfake/harness/plugin/) counts the instructions
 * executed from entering tf_mark_begin to entering tf_mark_end. */
#ifndef TF_MARKERS_H
#define TF_MARKERS_H
void tf_mark_begin(void);
void tf_mark_end(void);
/* Profiling builds only (build_firmware(profile_ops=True)): called at the
 * start of every operator through MODEL_OP_BEGIN. */
void tf_mark_op(void);
#endif
