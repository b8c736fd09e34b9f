/* fmnist: a convolutional-network trainer and classifier for Fashion-MNIST.
 *
 * The whole public API. Every function that can fail returns 0 on success and
 * -1 on failure, with a one-line message in the caller's fm_err (or returns
 * NULL for constructors). The library never exits or aborts on bad input.
 *
 * Every file is written atomically (a temporary file, synced, renamed over
 * the old one), so a failed write leaves the old file as it was, removes the
 * temporary one and says why ("No space left on device", "File too large",
 * "Permission denied"). A write past the file size limit (RLIMIT_FSIZE,
 * ulimit -f) raises SIGXFSZ, whose default action kills the process: callers
 * that may meet such a limit should ignore it (signal(SIGXFSZ, SIG_IGN)), as
 * the fmnist command does; the library leaves signal dispositions alone.
 */
#ifndef FMNIST_H
#define FMNIST_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The release, also CMake's project version (read from this line). */
#define FM_VERSION "0.1.0"

#define FM_IMAGE_ROWS 28
#define FM_IMAGE_COLS 28
#define FM_IMAGE_PIXELS (FM_IMAGE_ROWS * FM_IMAGE_COLS)
#define FM_NUM_CLASSES 10

/* Marks what the shared library exports: it is built with hidden visibility,
 * so everything else (the fm__ internals) stays inside it. */
#if defined(__GNUC__) || defined(__clang__)
#define FM_API __attribute__((visibility("default")))
#else
#define FM_API
#endif

/* ---- errors --------------------------------------------------------- */

/* Why the last call failed: one line, naming the file, the place and the problem. */
typedef struct fm_err {
    char msg[512];
} fm_err;

/* "T-shirt/top", "Trouser", ... indexed by label. */
FM_API extern const char *const fm_class_names[FM_NUM_CLASSES];

/* ---- random numbers ------------------------------------------------- */

/* xoshiro256** seeded through splitmix64. One generator is passed explicitly
 * to everything random (init, shuffling, augmentation, dropout); its state is
 * plain data so a training checkpoint can save and restore it. */
typedef struct fm_rng {
    uint64_t s[4];
} fm_rng;

FM_API void fm_rng_seed(fm_rng *rng, uint64_t seed);
FM_API uint64_t fm_rng_next(fm_rng *rng);
/* Uniform float in [0, 1) with 24 random bits. */
FM_API float fm_rng_uniform(fm_rng *rng);
/* Uniform integer in [0, n), unbiased; n > 0. */
FM_API uint32_t fm_rng_below(fm_rng *rng, uint32_t n);
/* Fisher-Yates shuffle of a[0..n). */
FM_API void fm_rng_shuffle_u32(fm_rng *rng, uint32_t *a, size_t n);

/* ---- data ----------------------------------------------------------- */

/* A set of 28x28 grey images kept as bytes (0..255) with labels 0..9. */
typedef struct fm_images {
    size_t count;
    uint8_t *pixels; /* count * FM_IMAGE_PIXELS, row-major per image */
    uint8_t *labels; /* count */
} fm_images;

typedef enum fm_data_format {
    FM_FORMAT_CSV, /* DATA/fashion-mnist_{train,test}.csv (Kaggle layout) */
    FM_FORMAT_IDX  /* {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] */
} fm_data_format;

typedef enum fm_data_set { FM_SET_TRAIN, FM_SET_TEST } fm_data_set;

/* Debian's dataset-fashion-mnist install folder. */
#define FM_DEBIAN_DATA_DIR "/usr/share/datasets/fashion-mnist"

/* Which layout a folder holds (CSV wins when both are present). */
FM_API int fm_data_detect(const char *dir, fm_data_format *format, fm_err *err);
/* The folder used when the user names none: "./DATA" if it holds the CSVs,
 * else the Debian folder if it exists; NULL (and a message saying how to get
 * the data) if neither does. */
FM_API const char *fm_data_default_dir(fm_err *err);
/* The files holding one set of a folder in a given layout: for CSV
 * `images` is the one file and `labels` is empty; for IDX each names the .gz
 * file when it exists, else the plain one. fm_data_find_files fails when a
 * file is missing or a path would not fit. */
#define FM_DATA_PATH_MAX 4096
typedef struct fm_data_files {
    char images[FM_DATA_PATH_MAX];
    char labels[FM_DATA_PATH_MAX];
} fm_data_files;
FM_API int fm_data_find_files(const char *dir, fm_data_format format, fm_data_set set,
                              fm_data_files *files, fm_err *err);
/* Loads one set from a folder in either layout, validating every byte. */
FM_API int fm_data_load(const char *dir, fm_data_set set, fm_images *out, fm_err *err);
/* Single-file loaders, for tools and tests. */
FM_API int fm_data_load_csv(const char *path, fm_images *out, fm_err *err);
FM_API int fm_data_load_idx(const char *images_path, const char *labels_path, fm_images *out,
                            fm_err *err);
/* Writes train and test sets into dir in the given layout (IDX: gzipped). */
FM_API int fm_data_write(const char *dir, fm_data_format format, const fm_images *train,
                         const fm_images *test, fm_err *err);
/* Allocates an empty set of count images; pixels and labels zeroed. */
FM_API int fm_images_alloc(fm_images *imgs, size_t count, fm_err *err);
FM_API void fm_images_free(fm_images *imgs);
/* Seeded split: a shuffled val_fraction of `all` goes to val, the rest to
 * train (both copies; `all` is untouched). Deterministic for a given seed. */
FM_API int fm_images_split(const fm_images *all, double val_fraction, uint64_t seed,
                           fm_images *train, fm_images *val, fm_err *err);

/* ---- pictures -------------------------------------------------------- */

/* fm_image_load's flags. */
#define FM_IMAGE_INVERT 1u /* 255 - v for every pixel: a dark garment on a light ground */

/* What fm_image_load found, for telling the user what became of a picture. */
typedef struct fm_image_info {
    int width, height;  /* the picture as stored; other than 28x28, it was resized */
    int colour;         /* a colour PNG (palette ones too): turned grey */
    size_t transparent; /* pixels not fully opaque, composited over the background */
} fm_image_info;

/* Reads a PNG or PGM picture (chosen by the file's first bytes, not its
 * name) into one 28x28 image as the network takes it, as `fmnist predict`
 * does:
 *   - PNG of any colour type and bit depth: palettes expanded, colour turned
 *     grey (0.2126 R + 0.7152 G + 0.0722 B), 16 bits reduced to 8, and pixels
 *     with alpha < 255 composited over the background (v a + g (255 - a)) /
 *     255: g black, or white with FM_IMAGE_INVERT (so that it ends black);
 *   - PGM, binary (P5) or ASCII (P2), any maximum value up to 65535, rescaled
 *     to 0..255;
 *   - then resized to 28x28 when it is not, stretching to fill (crop or pad
 *     beforehand to keep the aspect ratio): an area average along an axis
 *     that shrinks, bilinear interpolation along one that grows;
 *   - then, with FM_IMAGE_INVERT, 255 - v for every pixel.
 * Fashion-MNIST pictures are light garments on a black ground, centred and
 * filling the frame; a photo of a garment on white needs FM_IMAGE_INVERT.
 * info (when not NULL) says what was found. -1 and why ("PATH: problem")
 * for a file that is missing, empty, neither format, damaged, truncated,
 * larger than 16384 pixels a side, or for unknown flags. A library built
 * without libpng (FM_PNG=OFF) reads PGM only; a PNG fails with a line that
 * says so, as fm_image_save_png and the report do. */
FM_API int fm_image_load(const char *path, unsigned flags, uint8_t out[FM_IMAGE_PIXELS],
                         fm_image_info *info, fm_err *err);
/* Writes pixels (height rows of width, row-major) as an 8-bit grey PNG,
 * atomically. */
FM_API int fm_image_save_png(const char *path, const uint8_t *pixels, int width, int height,
                             fm_err *err);

/* ---- models --------------------------------------------------------- */

typedef struct fm_model fm_model;

/* Builds a network from model-description text (see README, "Model files").
 * source names the text in error messages ("configs/fashion-cnn.cfg"). The
 * text must be UTF-8, comments included ("SOURCE:LINE: column N: byte 0xNN
 * is not UTF-8"), so the files that carry it are valid JSON and protobuf. */
FM_API fm_model *fm_model_parse(const char *text, const char *source, fm_err *err);
FM_API fm_model *fm_model_load_cfg(const char *path, fm_err *err);
/* The built-in networks: "fashion-cnn" (the notebook's, configs/fashion-cnn.cfg)
 * and "fashion-cnn-bn" (BatchNorm after every conv, configs/fashion-cnn-bn.cfg).
 * fm_model_builtin gives a description's text (NULL: no such name),
 * fm_model_builtin_name the i-th name (NULL past the last), and
 * fm_model_load_named builds the network a name without '.' or '/' names,
 * else the model description file. */
FM_API const char *fm_model_builtin(const char *name);
FM_API const char *fm_model_builtin_name(int i);
FM_API fm_model *fm_model_load_named(const char *name_or_file, fm_err *err);
/* Loads a .safetensors model written by fm_model_save: description,
 * weights, BatchNorm statistics and test-time augmentation. */
FM_API fm_model *fm_model_load(const char *path, fm_err *err);
/* Writes weights, statistics and metadata atomically (temp file + rename). */
FM_API int fm_model_save(const fm_model *model, const char *path, fm_err *err);
FM_API void fm_model_free(fm_model *model);

/* The description text the model was built from. */
FM_API const char *fm_model_description(const fm_model *model);
/* What the network takes: one image is `channels` planes of `height` rows
 * of `width` pixels, row-major (1, 28, 28 for a Fashion-MNIST network).
 * Any of the pointers may be NULL. */
FM_API void fm_model_input_shape(const fm_model *model, int *channels, int *height, int *width);
/* The number of classes the network tells apart (10 for Fashion-MNIST). */
FM_API int fm_model_class_count(const fm_model *model);
/* The name of class k, 0 <= k < fm_model_class_count; NULL for any other k.
 * A model file records the names (metadata "fmnist.class_names", a JSON
 * array of strings) and fm_model_load keeps them; a model built from a
 * description has Fashion-MNIST's (fm_class_names) when it has 10 classes,
 * else "0", "1", ... */
FM_API const char *fm_model_class_name(const fm_model *model, int k);
/* Longest class name, in bytes. */
#define FM_CLASS_NAME_MAX 64
/* Renames the classes (names[0 .. fm_model_class_count)), for a network
 * trained on other pictures; fm_model_save records the names, the ONNX
 * export too. Each is 1 to FM_CLASS_NAME_MAX bytes of UTF-8 without control
 * characters (fm_model_load refuses a file holding others); -1, the names
 * unchanged, otherwise. */
FM_API int fm_model_set_class_names(fm_model *model, const char *const *names, fm_err *err);
/* The train/validation split of the training run behind the model, as
 * fm_train records it (from its params: seed, val_split, limit) in the model
 * and fm_model_save in the file: 0 and the values, or -1 when none is
 * recorded (never trained, or saved by an fmnist from before 0.1.0's split
 * metadata). fm_images_split with these values rebuilds the run's split. */
FM_API int fm_model_training_split(const fm_model *model, uint64_t *seed, double *val_split,
                                   size_t *limit);
/* Total parameters (trainable + non-trainable); *trainable gets the first part. */
FM_API size_t fm_model_param_count(const fm_model *model, size_t *trainable);
/* Keras-style table: layer, output shape, parameters, and the totals. */
FM_API void fm_model_summary(const fm_model *model, FILE *out);
/* Glorot-uniform kernels, zero biases, BatchNorm gamma 1 / beta 0 / mean 0 / var 1. */
FM_API void fm_model_init(fm_model *model, fm_rng *rng);

/* Test-time augmentation: what inference averages over. A model records it
 * (fm_model_save writes it into the file as metadata "fmnist.tta"; files
 * without that key are FM_TTA_NONE), and everything that runs the model
 * applies it alike: fm_model_predict, fm_model_evaluate, the trainer's
 * validation, the report and the ONNX export. */
typedef enum fm_tta {
    FM_TTA_NONE, /* the image as it is */
    FM_TTA_FLIP  /* the mean of the softmax probabilities of the image and of its
                    left-right mirror; the loss is the cross-entropy of that mean */
} fm_tta;

/* The model's test-time augmentation (FM_TTA_NONE for a new model). */
FM_API fm_tta fm_model_tta(const fm_model *model);
/* Sets it; -1 (the model unchanged) when tta is not an fm_tta value. */
FM_API int fm_model_set_tta(fm_model *model, fm_tta tta, fm_err *err);
/* "none", "flip" (the names the model file and recipes use), or NULL when
 * tta is not an fm_tta value. */
FM_API const char *fm_tta_name(fm_tta tta);

/* Class probabilities for images [start, start+n) of a set (inference mode,
 * with the model's test-time augmentation), probs gets n * FM_NUM_CLASSES
 * floats. Batches internally, in activation memory it keeps in the model
 * (for the next call): one call at a time per model. From several threads,
 * fm_model_classify_batch gives the same floats (see "Threads" below). */
FM_API int fm_model_predict(fm_model *model, const fm_images *imgs, size_t start, size_t n,
                            float *probs, fm_err *err);

/* Evaluation of a model on a set (inference mode, with the model's
 * test-time augmentation). */
typedef struct fm_eval_result {
    size_t count;
    double loss;     /* mean cross-entropy */
    double accuracy; /* fraction correct */
    uint32_t confusion[FM_NUM_CLASSES][FM_NUM_CLASSES]; /* [true][predicted] */
    double precision[FM_NUM_CLASSES], recall[FM_NUM_CLASSES];
    double class_accuracy[FM_NUM_CLASSES]; /* (TP + TN) / count, one-vs-rest */
} fm_eval_result;

FM_API int fm_model_evaluate(fm_model *model, const fm_images *imgs, fm_eval_result *out,
                             fm_err *err);

/* ---- int8 models ------------------------------------------------------ */

/* Post-training quantization: fm_model_quantize turns a trained float model
 * into an int8 one in place. Conv and dense layers get int8 weights with a
 * scale per output (7 bits: -63..63) and uint8 inputs with a scale and zero
 * point per layer, calibrated by running the float model (in inference
 * mode, with its test-time augmentation) over calibration images and
 * taking each layer's input range; a BatchNorm just before such a layer is
 * folded into the rounding of its input; they accumulate in int32. The
 * rest runs in float. Everything that runs a model runs an int8 one the same
 * way (predict, evaluate, classify, the report); fm_model_save writes it as
 * an int8 model file, which fm_model_load reads back. It cannot be trained
 * (fm_train refuses it); fm_model_export_onnx writes it as QDQ. Calibrate on
 * training images, never the test set.
 * Contexts (fm_ctx_new) made before quantizing keep running float. */
typedef struct fm_quantize_params {
    size_t calibration_images; /* 2000: how many, spread evenly over the set given */
} fm_quantize_params;

FM_API fm_quantize_params fm_quantize_default_params(void);
/* 0, or -1 and why (an int8 model already, a model that does not take
 * 28x28 images into 10 classes, an empty set, a layer too large to sum
 * exactly in int32, out of memory; the model unchanged then). */
FM_API int fm_model_quantize(fm_model *model, const fm_images *calibration,
                             const fm_quantize_params *params, fm_err *err);
/* "fp32", or "int8" for a quantized model. */
FM_API const char *fm_model_precision(const fm_model *model);

/* ---- classifying: the embedding API ------------------------------------ */

/* Threads. A model is read-only to every function that takes it as
 * `const fm_model *`: any number of threads may run those on one model at
 * once (fm_model_classify, fm_model_classify_batch each with its own
 * fm_ctx or none, fm_ctx_new, the queries, fm_model_save,
 * fm_model_export_onnx, fm_model_summary). Inference never writes the
 * weights; what it writes (activations) is in a context, one per call or
 * per thread. A function that takes `fm_model *` may change the model or
 * its own scratch memory (fm_model_predict, fm_model_evaluate, fm_train,
 * fm_model_init, fm_model_set_tta, fm_model_set_class_names, fm_bench_run,
 * fm_model_free): it needs the model to itself, with no other call on it
 * running. Each call's kernels run on OpenMP threads of the calling
 * thread's team (fm_set_threads); with several threads classifying at
 * once, a team of 1 each (OMP_NUM_THREADS=1) keeps the cores from being
 * oversubscribed. Apart from that setting, calls share no state but what
 * they are given (the kernel table is chosen once, race-free). */

/* An inference context: the activation memory for running one model on
 * batches of up to `batch` images. One thread uses it at a time; make one
 * per thread to classify from several. It serves the model it was made
 * for, as long as that lives, and follows its test-time augmentation as it
 * is at each call. NULL (and why) on a bad batch size or out of memory. */
typedef struct fm_ctx fm_ctx;
FM_API fm_ctx *fm_ctx_new(const fm_model *model, int batch, fm_err *err);
FM_API void fm_ctx_free(fm_ctx *ctx);

/* One 28x28 image: pixels row-major, 0 = black, 255 = white, light garment
 * on black ground, as in the data set (fm_image_load makes such from a
 * picture). Runs the model in inference mode with its own settings,
 * test-time augmentation included, exactly as fm_model_predict does, and
 * returns the most probable class (0-9, the lowest on a tie), with the
 * softmax probabilities in probs when that is not NULL; -1 (and why) for a
 * model that does not take 1x28x28 images into 10 classes, or when out of
 * memory. Uses a context of its own per call (an allocation): for many
 * images, fm_model_classify_batch with a context is faster. */
FM_API int fm_model_classify(const fm_model *model, const uint8_t pixels[FM_IMAGE_PIXELS],
                             float probs[FM_NUM_CLASSES], fm_err *err);

/* The element type of the images fm_model_classify_batch reads. */
typedef enum fm_pixel_type {
    FM_PIXELS_U8, /* uint8_t, 0..255: the pixels as in the data set */
    FM_PIXELS_F32 /* float: the network's input itself, pixel / 255 (0 = black,
                     1 = white), as the ONNX export takes it; finite values. A
                     byte v given as v / 255.0f gives FM_PIXELS_U8's results
                     to the bit */
} fm_pixel_type;

/* n images of the model's input shape (fm_model_input_shape: C planes of
 * H rows of W, one image after the other) of element type `type` at
 * `pixels`: probs (when not NULL) gets n * fm_model_class_count softmax
 * probabilities, image after image, and classes (when not NULL) the n most
 * probable classes, each bit for bit what fm_model_classify and
 * fm_model_predict give for that image. ctx: a context made for this model,
 * which sets the batch (n may exceed it), or NULL for one made for the call
 * (batches of up to 100). 0, or -1 and why (a context of another model, a
 * value that is not finite, out of memory). */
FM_API int fm_model_classify_batch(const fm_model *model, fm_ctx *ctx, const void *pixels,
                                   fm_pixel_type type, size_t n, float *probs, int *classes,
                                   fm_err *err);

/* ---- export --------------------------------------------------------- */

/* Writes the model as a standard ONNX file (opset 13) for inference in other
 * runtimes, atomically (temp file + rename). Input "input": float
 * (N, C, H, W) = (N, 1, 28, 28) for the default network, pixels divided by
 * 255; output "probabilities": (N, 10) softmax. Class names, the input
 * normalisation and the test-time augmentation are in the model's
 * metadata_props. With FM_TTA_FLIP the graph applies it as fmnist does: the
 * network runs on the input and on its left-right mirror, and
 * "probabilities" is the mean of the two softmax outputs (fm_model_set_tta
 * FM_TTA_NONE first for a graph without it). An int8 model (fm_model_quantize)
 * is written as QDQ: each quantized layer's input goes through
 * QuantizeLinear and DequantizeLinear with its scale and zero point, and its
 * int8 weights through a DequantizeLinear per output row (axis 0), the
 * arithmetic fmnist's int8 kernels do (up to float rounding: they sum the
 * integers exactly); metadata "precision" says "int8" ("fp32" otherwise). */
FM_API int fm_model_export_onnx(const fm_model *model, const char *path, fm_err *err);

/* ---- compute -------------------------------------------------------- */

/* Threads for every parallel op the calling thread runs (0 = all cores);
 * returns the number now in use (1 in a build without OpenMP). OpenMP keeps
 * the setting per thread: a thread started afterwards has OMP_NUM_THREADS's
 * (by default all cores) until it calls this. */
FM_API int fm_set_threads(int threads);
/* Name of the kernel table in use: "ref", "portable", "avx2" or "avx512". */
FM_API const char *fm_kernels_name(void);
/* Training precision (fm_train_params.precision, fm_bench_params.precision).
 * FP32: every op in fp32. BF16: the conv and dense products take bfloat16
 * factors (rounded to nearest even) and keep fp32 sums, as AVX512_BF16's
 * vdpbf16ps does, on that instruction where the CPU has it and the avx512
 * table runs, else on an exact emulation of it (the numerics of bf16, at
 * about fp32's direct-convolution speed). AUTO: BF16 on the instruction where
 * it exists, else FP32. Weights, gradients, the optimizer, evaluation and
 * saved models stay fp32 either way. */
enum { FM_PRECISION_FP32, FM_PRECISION_BF16, FM_PRECISION_AUTO };
/* "fp32", "bf16", "auto", or NULL for another value. */
FM_API const char *fm_precision_name(int precision);
/* The kernel table training at that precision runs on: fm_kernels_name()'s
 * for fp32, else "avx512-bf16" (the instruction) or "<table>-bf16emu" (the
 * emulation on that table); NULL when it cannot run (bf16 on the reference
 * table, which has no bf16 ops: FMNIST_KERNELS=ref). */
FM_API const char *fm_kernels_train_name(int precision);

/* ---- training ------------------------------------------------------- */

/* Trains with the Keras recipe of SPEC.md: Adam on softmax cross-entropy,
 * augmentation, EarlyStopping and ReduceLROnPlateau on val_loss,
 * ModelCheckpoint on val_accuracy. Each random draw has its own stream, named
 * by (`seed`, epoch, sample, purpose): the initialisation (when `init`), each
 * epoch's shuffle, and each training image's augmentation and dropout masks
 * (keyed by its index in `train`): the same seed and thread count give the
 * same weights bit for bit, and a run split over processes (fm_dist_init)
 * draws what one process draws.
 *
 * The run folder out_dir (created if missing) gets
 *   log.csv            epoch,loss,accuracy,val_loss,val_accuracy,learning_rate,seconds
 *                      (one row per epoch; learning_rate is the one the epoch used)
 *   best.safetensors   ModelCheckpoint: the weights of the best val_accuracy
 *   model.safetensors  at the end: the weights of the best val_loss (restored
 *                      into the model too, BatchNorm statistics included)
 *   run.json           the configuration and the results
 *   checkpoint.safetensors
 *                      while the run is unfinished: the whole training state
 *                      (weights, BatchNorm statistics, Adam moments and step,
 *                      learning rate, callback states with the early-stopping
 *                      snapshot, data order, position, epoch
 *                      log), rewritten atomically at the end of every epoch and
 *                      every checkpoint_steps steps, and removed when the run
 *                      ends; a run killed at any instant resumes from it and
 *                      ends with the same weights and log as one never stopped.
 * One process at a time writes there: fm_train holds an exclusive lock on
 * out_dir (flock on out_dir/.fmnist.lock, which names the holder's pid and
 * goes when it lets go; the kernel drops the lock of a killed process) for
 * the whole call, and refuses a folder another process holds, naming it.
 * fm_train_write_run and fm_report_write (writing into the run folder) lock
 * it the same way; a process holding it already (the fmnist command does,
 * from start to end) is not refused. */
enum { FM_OPTIMIZER_ADAM, FM_OPTIMIZER_ADAMW, FM_OPTIMIZER_SGD };
enum {
    FM_SCHEDULE_PLATEAU, /* ReduceLROnPlateau on val_loss, the notebook's */
    FM_SCHEDULE_CONSTANT,
    FM_SCHEDULE_COSINE,
    FM_SCHEDULE_LINEAR,
    FM_SCHEDULE_ONECYCLE /* torch.optim.lr_scheduler.OneCycleLR */
};

typedef struct fm_train_params {
    int epochs;          /* 100 (at most; EarlyStopping may end sooner) */
    int batch;           /* 64 */
    float lr;            /* 1e-3 */
    uint64_t seed;       /* 42 */
    int threads;         /* 0 = all cores */
    int init;            /* 1: fm_model_init from the seed first; 0: start from the model's weights */
    int augment;         /* 1: rotation, zoom, flip */
    int es_patience;     /* 15: EarlyStopping on val_loss; 0 = off */
    int lr_patience;     /* 8: ReduceLROnPlateau on val_loss (schedule FM_SCHEDULE_PLATEAU) */
    float lr_factor;     /* 0.5 */
    float min_lr;        /* 0 */
    int save_best;       /* 1: ModelCheckpoint, best.safetensors on val_accuracy */

    /* Beyond the notebook (fm_train_recipe_keys documents each). */
    int optimizer;          /* FM_OPTIMIZER_ADAM (Keras's), _ADAMW, _SGD */
    float weight_decay;     /* 0; AdamW decoupled, SGD coupled */
    int decay_biases_norms; /* 0: weight decay leaves out biases and BatchNorm's gamma, beta */
    float momentum;         /* SGD: 0.9 */
    int nesterov;           /* SGD: 0 */
    int schedule;           /* FM_SCHEDULE_PLATEAU (per epoch), or a per-step one */
    float warmup;           /* share of the run's steps warming up linearly: 0 */
    float warmup_start;     /* the warm-up's first rate, a factor of lr: 0 */
    float lr_floor;         /* cosine, linear: the last rate, a factor of lr: 0 */
    float onecycle_pct_start, onecycle_div_factor, onecycle_final_div_factor; /* 0.3, 25, 1e4 */
    float label_smoothing;  /* 0: the training loss only; val and test are plain */
    int flip;               /* 1: a left-right flip on its own (p 0.5); not with augment */
    int translate;          /* pad-and-crop: integer shifts up to N pixels each way; 0 */
    float erase_prob;       /* random erasing's probability per image: 0 */
    float erase_area_min, erase_area_max; /* share of the image: 0.02, 0.33 */
    float erase_aspect_min; /* aspect ratios in [min, 1/min]: 0.3 */
    int erase_random;       /* 0: erase to black; 1: to uniform noise */
    int ema;                /* 1: keep an exponential moving average of the weights and
                               BatchNorm statistics; validate and save it */
    float ema_decay;        /* 0.999 */
    int ema_warmup;         /* 1: decay min(ema_decay, (1 + t) / (10 + t)) at step t */
    int precise_bn;         /* K > 0: re-estimate BatchNorm statistics over K batches at the end */
    int tta;                /* an fm_tta: the model's test-time augmentation, from the
                               first validation on and in every model file saved */
    int precision;          /* FM_PRECISION_FP32, _BF16 or _AUTO (fm_kernels_train_name) */
    char model[256];        /* the network the recipe is for: "default" (the caller's
                               choice), a built-in network's name or a model
                               description file (fm_model_load_named). fm_train
                               records it; the CLI builds it when --model is not given */
    const char *out_dir; /* "models" */
    FILE *progress;      /* Keras-style lines per epoch; NULL = silent */

    /* Crash safety. */
    int resume;           /* 1: continue the unfinished run in out_dir (same model
                             description, data and recipe; epochs and threads may
                             differ, though other threads give other rounding) */
    int overwrite;        /* a fresh run (resume 0) into an out_dir holding a finished
                             run's models: 0 refuses; 1 replaces that run, removing
                             its model files, log.csv, run.json and report.html
                             first. An unfinished run (a checkpoint) is refused
                             either way */
    int checkpoint_steps; /* also checkpoint every N steps within an epoch; 0 = only
                             at the end of each epoch */
    /* When non-NULL and it becomes non-zero (a signal handler's flag): finish
     * the current step, write the checkpoint and return -1 with `interrupted`. */
    const volatile sig_atomic_t *interrupt;

    /* Where the data and model came from, recorded in run.json only. */
    const char *model_source; /* NULL: fm_model_description's source unknown */
    const char *recipe;       /* the recipe's name or file (NULL: none named) */
    const char *data_dir;
    const char *data_format; /* "csv" or "idx" */
    double val_split;        /* fraction held out for validation */
    size_t limit;            /* training images used before the split; 0 = all */
} fm_train_params;

FM_API fm_train_params fm_train_default_params(void);
/* 0 when fm_train accepts p's settings (each in range, and together: e.g.
 * val_split 0 only without what needs validation), else -1 and why. fm_train
 * checks them too; this tells before any data is loaded. */
FM_API int fm_train_params_check(const fm_train_params *p, fm_err *err);

/* ---- recipes ----------------------------------------------------------- */
/* A recipe sets the recipe fields of fm_train_params from text: one
 * "key = value" per line, '#' starts a comment, blank lines are fine; keys
 * left out keep their values. fm_train_recipe_keys lists the keys. */

/* Applies recipe text to *p; on a mistake returns -1 with
 * "SOURCE:LINE: problem" in err and leaves *p unchanged. */
FM_API int fm_train_recipe_apply(fm_train_params *p, const char *text, const char *source,
                                 fm_err *err);
/* Applies the built-in recipe of that name or else the recipe file, and sets
 * p->recipe to name_or_file (which must outlive p's use). */
FM_API int fm_train_recipe_load(fm_train_params *p, const char *name_or_file, fm_err *err);
/* The text of a built-in recipe ("notebook": the default parameters), or
 * NULL when there is none of that name. */
FM_API const char *fm_train_recipe_builtin(const char *name);
/* p's recipe as recipe text, every key in order (malloc'd; NULL when out of
 * memory): fm_train_recipe_apply of it gives the same fields. */
FM_API char *fm_train_recipe_text(const fm_train_params *p);
/* One line per key: name and meaning. */
FM_API void fm_train_recipe_keys(FILE *out);

typedef struct fm_train_result {
    size_t train_count, val_count;
    int threads; /* threads actually used */
    int epochs_run;
    int64_t images;     /* training images processed (forward and backward), resumes included */
    int best_epoch;     /* ModelCheckpoint: best val_accuracy (best.safetensors) */
    int restored_epoch; /* EarlyStopping: best val_loss (model.safetensors, the model) */
    int stopped_early;  /* EarlyStopping ended it before `epochs` */
    int diverged;       /* the loss became NaN or infinite; training stopped there */
    int interrupted;    /* *interrupt stopped it; the checkpoint holds the state */
    int resumed_epoch, resumed_step; /* where a resumed run took up (epochs finished,
                                        steps of the next epoch done) */
    int lr_reductions;
    float final_lr;
    double train_seconds;
    /* across processes (fm_dist_size() > 1): the steps this call ran and the
     * seconds spent in their reductions across the processes (the gradients,
     * the loss sums), BatchNorm's left out; 0 for one process */
    int64_t reduced_steps;
    double reduce_seconds;
    /* the last epoch run */
    double loss, accuracy, val_loss, val_accuracy;
    /* the checkpoint's and the restored epoch's */
    double best_val_accuracy, restored_val_loss, restored_val_accuracy;
} fm_train_result;

/* Trains `model` on `train`, validating on `val` after each epoch (val may
 * be empty when the recipe needs no validation: val_split 0), and leaves
 * the saved model in it (model.safetensors: the best-val_loss weights with
 * EarlyStopping, else the last weights or their moving average). Returns -1 on an I/O
 * error, bad parameters or divergence; on divergence the run folder still
 * holds everything up to the last good epoch and err says so. */
FM_API int fm_train(fm_model *model, const fm_images *train, const fm_images *val,
                    const fm_train_params *params, fm_train_result *result, fm_err *err);

/* What a run folder's checkpoint says about the run, for resuming it. */
typedef struct fm_train_resume_info {
    char model_source[1024]; /* where the run's description came from */
    char data_dir[1024];     /* the data folder the run used */
    char recipe[1024];       /* the run's recipe name or file ("" if not recorded) */
    int threads;             /* threads the run used */
    int epoch, step;         /* epochs finished, steps of the next epoch done */
} fm_train_resume_info;

/* Reads run_dir/checkpoint.safetensors: sets the recipe fields of *params
 * (epochs, batch, lr, seed, augment, callbacks' settings, val_split, limit;
 * params->recipe points into info->recipe),
 * out_dir = run_dir and resume = 1, leaving the other fields alone; fills
 * *info; and returns the model to resume (description and weights). The
 * caller loads and splits the data as the run did and calls fm_train, which
 * checks that model, data and recipe are the run's and refuses otherwise. */
FM_API fm_model *fm_train_resume_load(const char *run_dir, fm_train_params *params,
                                      fm_train_resume_info *info, fm_err *err);

/* ---- across processes (MPI) ---------------------------------------------
 * Data-parallel training under mpirun (README, "Across machines"). After
 * fm_dist_init in a process that mpirun started, the world is mpirun's N
 * processes and fm_train, fm_train_resume_load and fm_dist_evaluate are
 * collective: every process calls them with the same arguments (its own
 * copy of the data) and they split the work. fm_train splits each batch
 * over the processes and reduces gradients and BatchNorm's batch statistics,
 * so the training is one process's with the whole batch (up to the order
 * of float sums); process 0 alone prints progress and writes the run
 * folder. Without mpirun the world is this one process. */

/* Joins the processes mpirun (or another MPI launcher) started, when this
 * fmnist has MPI (fm_dist_has_mpi) and was started by one; otherwise does
 * nothing. -1 and why when a launcher started several processes and this
 * fmnist has no MPI (each would train alone), or MPI fails to start. */
FM_API int fm_dist_init(int *argc, char ***argv, fm_err *err);
FM_API int fm_dist_has_mpi(void);
/* This process's rank (0..size-1) and the number of processes: 0 and 1
 * outside mpirun. */
FM_API int fm_dist_rank(void);
FM_API int fm_dist_size(void);
/* Leaves the world (MPI_Finalize) after a run that ended normally. */
FM_API void fm_dist_finalize(void);
/* Stops every process of the world with exit status code (MPI_Abort), for
 * a process that must exit while the others may wait on it; does nothing
 * in a world of one. */
FM_API void fm_dist_abort(int code);
/* fm_model_evaluate split over the processes, each scoring its share of
 * imgs; every process gets the whole result. */
FM_API int fm_dist_evaluate(fm_model *model, const fm_images *imgs, fm_eval_result *out,
                            fm_err *err);

/* A hold on a run folder's lock (the one fm_train takes), for a program that
 * keeps the folder across several calls, as the fmnist command does from
 * start to end: fm_train, fm_train_write_run and fm_report_write, called
 * while it holds the folder, take the lock again without waiting on
 * themselves. With `created` non-NULL, dir is made first when missing
 * (mkdir -p) and *created says whether it was; with `created` NULL, dir must
 * exist. NULL and why when dir cannot be made or locked (a folder made is
 * removed again), or another process holds it: "DIR: in use by another
 * fmnist process (pid N); wait for it to end, or INSTEAD" (without the last
 * part when instead is NULL). */
typedef struct fm_run_lock fm_run_lock;
FM_API fm_run_lock *fm_run_lock_take(const char *dir, int *created, const char *instead,
                                     fm_err *err);
/* Lets go (unless the hold was nested in another of this process) and
 * frees the hold; NULL does nothing. */
FM_API void fm_run_lock_release(fm_run_lock *lock);

/* (Re)writes out_dir/run.json atomically. fm_train writes it with test NULL;
 * pass the test-set evaluation to add test_loss and test_accuracy. */
FM_API int fm_train_write_run(const fm_train_params *params, const fm_train_result *result,
                              const fm_eval_result *test, fm_err *err);

/* ---- benchmark ------------------------------------------------------ */

/* Training and inference speed of a network on synthetic data (uniform
 * random pixels and labels from a fixed seed; speed does not depend on the
 * values). A training step is the trainer's own (zero the gradients,
 * training-mode forward with dropout, softmax cross-entropy and backward,
 * one Adam step; no augmentation); an inference batch is the forward pass
 * that fm_model_predict and fm_model_evaluate run. Each is run `warmup`
 * times untimed, then `steps` times, each timed alone on a monotonic clock. */
typedef struct fm_bench_params {
    int threads;     /* 0 = all cores */
    int batch;       /* 64: training batch */
    int infer_batch; /* 500: inference batch (what evaluation uses) */
    int steps;       /* 30: timed training steps, and as many inference batches */
    int warmup;      /* 3: untimed ones before each */
    int layers;      /* 1: also time every layer's forward and backward */
    int int8;        /* 1: then quantize the trained network (fm_model_quantize, calibrated
                        on the synthetic images) and time its inference batches too */
    int precision;   /* FM_PRECISION_FP32: the training steps' products (inference is fp32) */
} fm_bench_params;

FM_API fm_bench_params fm_bench_default_params(void);

/* One layer's medians over the timed training steps (with params.layers). */
typedef struct fm_bench_layer {
    char name[32];     /* as in fm_model_summary: conv2d, batch_normalization, ... */
    double forward_s;  /* 0 for layers without work of their own (flatten) */
    double backward_s; /* 0 for those and for layers before the first with parameters */
} fm_bench_layer;

typedef struct fm_bench_result {
    int threads; /* threads actually used */
    const char *train_kernels; /* the table the training steps ran on (fm_kernels_train_name) */
    /* medians and fastest of the timed runs, seconds */
    double train_step_s, train_step_min_s;
    double infer_batch_s, infer_batch_min_s;
    double train_img_per_s; /* batch / train_step_s */
    double infer_img_per_s; /* infer_batch / infer_batch_s */
    double adam_s;          /* median of the Adam update alone (part of a step) */
    double infer_int8_batch_s, infer_int8_batch_min_s; /* with params.int8, else 0 */
    double infer_int8_img_per_s;
    int n_layers;           /* entries in layers: the model's layers, or 0 */
    fm_bench_layer *layers; /* owned: fm_bench_result_free */
} fm_bench_result;

/* Runs the benchmark on `model`, whose weights and BatchNorm statistics it
 * overwrites (fresh initialisation from a fixed seed, then training; with
 * params.int8 the model ends int8). Fails on bad parameters, on an int8
 * model (it cannot train), when out of memory, or if the loss stops being
 * finite. */
FM_API int fm_bench_run(fm_model *model, const fm_bench_params *params, fm_bench_result *result,
                        fm_err *err);
FM_API void fm_bench_result_free(fm_bench_result *result);

/* ---- reports -------------------------------------------------------- */

/* Writes one self-contained HTML page about the run folder run_dir (as
 * written by fm_train): learning curves from log.csv, configuration and
 * results from run.json, and, evaluating model.safetensors (else
 * best.safetensors) on the test set of data_dir (NULL: fm_data_default_dir),
 * the confusion matrix, per-class precision and recall, the most confident
 * mistakes and example images. out_path NULL means run_dir/report.html; the
 * file is written atomically. Writing into run_dir takes its lock (see
 * fm_train): refused while another process trains there. Fails when run_dir
 * or its log.csv is missing or
 * malformed, or a file present is unreadable. Parts that are merely absent
 * (no run.json, no model yet, no data found) are left out and said so in the
 * page; on success err->msg then lists them (empty when nothing was left out). */
FM_API int fm_report_write(const char *run_dir, const char *data_dir, const char *out_path,
                           fm_err *err);
/* fm_report_write with use_tta 0: the test evaluation runs without
 * test-time augmentation, whatever the model file records (fmnist report
 * --no-tta); use_tta 1 is fm_report_write. */
FM_API int fm_report_write_tta(const char *run_dir, const char *data_dir, const char *out_path,
                               int use_tta, fm_err *err);

/* ---- small tools the fmnist command uses ------------------------------- */

/* Writes s as a quoted JSON string, always valid UTF-8: a byte of s that
 * starts no well-formed sequence (a file name in Latin-1, say) is written as
 * \ufffd, the replacement character. Write errors are out's (ferror). */
FM_API void fm_json_write_string(FILE *out, const char *s);
/* 1 when a and b name the same existing file or folder (by device and
 * inode: "models", "./models/" and a link to it are one), else 0. */
FM_API int fm_same_file(const char *a, const char *b);

#ifdef __cplusplus
}
#endif
#endif
