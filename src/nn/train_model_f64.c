/* train_model_f64.c - the double-precision twin of the training graph (struct train_llama_f64),
 * for gradient checks: train_model.c compiled again with treal = double. */
#define TRAIN_F64
#include "nn/train_model.c"
