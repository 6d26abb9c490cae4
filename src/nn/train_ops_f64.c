/* train_ops_f64.c - the double-precision twins of the training ops (*_f64), for gradient checks:
 * train_ops.c compiled again with treal = double. */
#define TRAIN_F64
#include "nn/train_ops.c"
