/* The model as the library sees it inside: a list of layers (layers/layer.h)
 * planned from the description text, one allocation for all trainable
 * parameters with their gradients and Adam moments (so the optimizer is one
 * flat loop), one for the statistics (BatchNorm's moving mean and variance),
 * and one arena for every activation, planned for the largest batch the
 * caller reserved (no allocation per step). */
#ifndef FM_MODEL_H
#define FM_MODEL_H

#include "fmnist/fmnist.h"
#include "kernels/kernels.h"
#include "layers/layer.h"

/* Caps that keep every size well inside int/size_t arithmetic and bound what a
 * hostile description can make the library allocate. */
#define FM__MAX_LAYERS 256
#define FM__MAX_SAMPLE_LEN ((size_t)1 << 26) /* floats per sample, any layer */
#define FM__MAX_PARAMS ((size_t)1 << 28)     /* trainable + non-trainable */

/* Parses description text into m->layers (type, line, the values of its
 * keys) and m->input; shapes, names and offsets are planned afterwards. Messages read
 * "SOURCE:LINE: problem" with SOURCE = m->source. */
int fm__cfg_parse(fm_model *m, const char *text, fm_err *err);

/* Parses and plans a model without allocating its parameters, so a loader
 * can check a file really holds them before committing memory; then
 * fm__model_alloc_params allocates them, every tensor at its declared
 * initial value (Glorot-initialised ones at zero). fm_model_parse is the
 * two together. */
fm_model *fm__model_new(const char *text, const char *source, fm_err *err);
int fm__model_alloc_params(fm_model *m, fm_err *err);

struct fm_model {
    char *description; /* the text it was built from */
    char *source;      /* where that text came from, for messages */

    int n_layers;
    fm__layer *layers;
    fm__shape input;
    int classes;

    /* test-time augmentation (fm_model_tta; metadata fmnist.tta), which
     * fm__model_infer applies */
    fm_tta tta;
    /* the class names (fm_model_class_name; metadata fmnist.class_names):
     * classes pointers followed by the strings, one allocation */
    char **class_names;
    /* the training run's recipe (fm_train_recipe_text; metadata fmnist.recipe), or NULL */
    char *recipe;
    /* the training run's train/validation split (fm_model_training_split) */
    int has_split;
    uint64_t split_seed;
    double split_val;
    size_t split_limit;

    /* trainable parameters: one allocation, four views of n_params floats */
    size_t n_params;
    float *params, *grads, *adam_m, *adam_v;
    void *param_block; /* owns the four views */
    /* statistics: non-trainable tensors (BatchNorm moving mean/var) */
    size_t n_stats;
    float *stats;

    /* activations */
    int batch_cap;
    float *input_buf; /* (batch_cap, input) filled by the caller before forward */
    float *probs;     /* (batch_cap, classes) after forward/loss */
    float *dlogits;   /* (batch_cap, classes) */
    float *grad_a, *grad_b; /* ping-pong activation gradients, largest layer size each */
    float *work;      /* kernel scratch */
    size_t work_len;
    uint8_t *zero_labels; /* (batch_cap) zeros: softmax_xent wants labels even for probs only */
    float *tta_logits; /* (batch_cap, classes): the unmirrored pass's logits, for the TTA loss */
    void *arena;      /* owns everything above from input_buf on (aligned inside it) */

    const fm__kernels *k;       /* inference, and training unless k_train differs */
    const fm__kernels *k_train; /* training passes (forward with training != 0, backward):
                                   k, or a bf16 table (fm__model_set_train_kernels) */

    /* Per-layer timing for fm_bench_run, off (NULL) otherwise: when set, the
     * forward pass adds each layer's wall seconds to layer_seconds[2*i] and
     * the backward pass to layer_seconds[2*i + 1] (n_layers pairs, owned by
     * whoever set it). Costs two clock reads per layer and pass when on. */
    double *layer_seconds;
    /* The processes a training batch is split over (fm_train sets it for a
     * run across processes): BatchNorm's batch statistics span all their
     * shares. NULL: this process alone. */
    const fm__dist *dist;
    /* Calibration (model/quant.c), off (NULL) otherwise: when set, every
     * forward pass calls it with each layer's input (len floats) before the
     * layer runs. */
    void (*observe)(void *arg, int layer, const float *x, size_t len);
    void *observe_arg;

    /* int8 inference: the quantized layers' weights and scales
     * (model/quant.h), or NULL for a float model */
    struct fm__quant *quant;
};

/* The fm_tta of a name fm_tta_name gives ("none", "flip"): 0, or -1 for
 * any other string. */
int fm__tta_parse(const char *name, fm_tta *out);

/* fm_model_set_class_names with messages "WHAT: class K: problem". */
int fm__model_set_class_names(fm_model *m, const char *const *names, const char *what,
                              fm_err *err);
/* m's class names as a JSON array of strings (malloc'd; NULL when out of
 * memory), as the model file and the ONNX export record them. */
char *fm__model_class_names_json(const fm_model *m);

/* Plans and allocates activations for batches of up to `batch` images
 * (reallocating only when it grows: a caller must re-read m->input_buf,
 * m->probs, ... after a reserve, and after fm_model_predict, which reserves
 * FM__PREDICT_BATCH when the model has no reservation yet). */
#define FM__PREDICT_BATCH 100
int fm__model_reserve(fm_model *m, int batch, fm_err *err);
/* The table training passes run on (the workspace grows to fit it; the
 * activations are laid out again, so call it before a forward pass). */
int fm__model_set_train_kernels(fm_model *m, const fm__kernels *k, fm_err *err);

/* Runs the network on the first n rows of m->input_buf. training != 0 uses
 * batch statistics (and updates the moving ones) and dropout drawn from the
 * batch's streams (draws, which must then be non-NULL); otherwise moving
 * statistics and no dropout (draws unused). Fills m->probs (softmax) and
 * returns the logits (n, classes), or NULL when n is not within 1..batch_cap. */
const float *fm__model_forward(fm_model *m, int n, int training, const fm__draws *draws);

/* Precise BatchNorm's forward of batch k >= 1 of a re-estimation: as
 * training for BatchNorm (batch statistics), whose moving statistics become
 * the mean of the k batches' so far; no dropout. Returns as fm__model_forward. */
const float *fm__model_restat_forward(fm_model *m, int n, int k);

/* Mean cross-entropy of the last forward against labels (each < classes),
 * with label smoothing s in [0, 1] (kernels.h, softmax_xent; 0 is the plain
 * loss); with backward != 0 also back-propagates, accumulating (+=) into
 * m->grads. */
float fm__model_loss_backward(fm_model *m, const uint8_t *labels, int n, float smoothing,
                              int backward);
/* The same for this process's n images of a batch of n_total split over
 * processes: the gradients are of the whole batch's mean loss (the n
 * images' share of it), so their sum over the processes is the batch's
 * gradient. The loss returned is still the mean over the n. */
float fm__model_loss_backward_share(fm_model *m, const uint8_t *labels, int n, int n_total,
                                    float smoothing);

void fm__model_zero_grads(fm_model *m);

/* Tensors whose names start with this belong to their owner (the training
 * state in a checkpoint); fm_model_load ignores them. */
#define FM__MODEL_FOREIGN_PREFIX "train."

/* fm_model_save plus more tensors (names under FM__MODEL_FOREIGN_PREFIX) and
 * metadata written into the same file, atomically. */
struct fm__st_entry;
struct fm__st_kv;
int fm__model_save_with(const fm_model *m, const char *path, const struct fm__st_entry *extra,
                        size_t n_extra, const struct fm__st_kv *extra_meta, size_t n_extra_meta,
                        fm_err *err);

/* Reads the weights and statistics of an opened model file into m, whose
 * description must be the file's (else an error saying so). */
struct fm__st_file;
int fm__model_read_weights(fm_model *m, const struct fm__st_file *f, const char *path,
                           fm_err *err);

/* Copies of the trainable and non-trainable state (for best-weight restore). */
size_t fm__model_state_len(const fm_model *m); /* n_params + n_stats */
void fm__model_get_state(const fm_model *m, float *dst);
void fm__model_set_state(fm_model *m, const float *src);

#endif
