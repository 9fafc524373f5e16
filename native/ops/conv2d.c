/* CONV2D: NCHW input, [OC][IC/groups][KH][KW] weights (dense or group-sparse),
 * optional bias, fused activation. Five paths: pointwise (1x1, unpadded; a stride
 * subsamples the input first) as spmm or gemm over pixels (ops/linear.c); depthwise
 * (ops/depthwise.c); 3x3 stride-1 layers where Winograd is expected to win
 * (ops/winograd.c); on maps larger than 8x8, one gemm over padded input planes
 * (ops/implicit_conv.c); on smaller maps, and where the planes' offsets would pass
 * 32 bits, gemm_nc (or gemm) over patches (im2col): gemm_nc's copied pixel-major from the
 * image or a zero-padded copy of it, gemm's gathered per pixel tile. */
#include <string.h>

#include "conv2d.h"
#include "depthwise.h"
#include "fused_block.h"
#include "implicit_conv.h"
#include "linear.h"
#include "winograd.h"

typedef enum { PATH_POINTWISE, PATH_DEPTHWISE, PATH_WINOGRAD, PATH_IMPLICIT, PATH_IM2COL } conv_path_t;

typedef struct {
  sl_conv2d_shape_t s;
  sl_activation_t act;
  sl_minmax_t mm;
  sl_activation_t post; /* what runs after the clamp, NONE when the clamp is act */
  uint32_t batch;
  conv_path_t path;
  sl_linear_t linear;                 /* pointwise */
  sl_depthwise_t depthwise;
  sl_implicit_conv_t implicit;
  sl_winograd_t winograd;
  const float* bias;
  const sl_ukernel_t* gemm;           /* im2col */
  const sl_ukernel_t* vunary;         /* runs act after the clamp when post */
  float* panels;                      /* per group, packed for gemm */
  size_t patch, tile, tiles;          /* im2col rows, pixels per tile, tiles per image */
  size_t panel_chunks;                /* im2col with gemm_nc: tasks per group, over output channels */
  bool patchify;                      /* ... undilated: patches copied pixel-major from the image, */
  uint32_t padded_h, padded_w;        /* or from a zero-padded copy of it, planes of these sides (0: none) */
  sl_fused_block_t* block;            /* the first op of a fused block runs the block */
  /* What runs fused with this op writes `out`, the last member's output (NULL: none fused); a
   * fused ADD (not a block's) reads `residual`. */
  const sl_tensor_t *out, *residual;
} conv_params_t;

/* A strided 1x1 conv's subsampled input: planes as far apart as the layer reads them (whole lines
 * where sl_linear_pad_planes asked for them, so no second copy pads them). */
static size_t subsampled_plane(const conv_params_t* p) {
  return p->linear.x_pad > 0 ? p->linear.x_pad : (size_t)p->s.out_h * p->s.out_w;
}

/* [OC][IC][1][1] weights as the [OC][IC] matrix they are: the same tensor, read as rank 2. */
static sl_tensor_t as_matrix(const sl_tensor_t* w) {
  sl_tensor_t matrix = *w;
  matrix.rank = 2;
  return matrix;
}

static sl_status_t prepare_im2col(sl_model_t* m, sl_node_t* n, conv_params_t* p, const sl_tensor_t* w,
                                  const float* bias) {
  const sl_conv2d_shape_t* s = &p->s;
  size_t ocg = s->out_c / s->groups, pixels = (size_t)s->out_h * s->out_w;
  p->patch = (size_t)(s->in_c / s->groups) * s->kernel_h * s->kernel_w; /* a weight row: below 2^31 */
  if (pixels <= SL_GEMM_NC_MAX_PIXELS) {
    /* Few pixels: all of them in one patch matrix, gathered once, which gemm_nc tasks over
     * ranges of output channels share, so the weights stream once. */
    p->gemm = sl_op_kernel(m, SL_FAMILY_gemm_nc, 0);
    p->tile = pixels;
  } else {
    /* A tile's patch matrix stays in L1/L2 while the gemm walks it. */
    p->gemm = sl_op_kernel(m, SL_FAMILY_gemm, 0);
    p->tile = p->gemm->pixels * 4;
  }
  size_t panel_bytes, panels_bytes, patch_bytes;
  if (!sl_gemm_pack_bytes(ocg, p->patch, p->gemm->rows, &panel_bytes) ||
      !sl_size_mul(panel_bytes, s->groups, &panels_bytes) || !sl_size_mul(p->patch, p->tile, &patch_bytes) ||
      !sl_size_mul(patch_bytes, sizeof(float), &patch_bytes))
    return sl_node_fail(m, n, "the packed weights or patch tiles of %zu x %zu do not fit in memory", ocg, p->patch);
  const float* dense;
  sl_status_t st = sl_dense_weights(m, n, w, &dense);
  if (st != SL_OK) return st;
  p->panels = sl_model_alloc(m, panels_bytes);
  if (p->panels == NULL) return SL_ERROR_OUT_OF_MEMORY;
  size_t panel_size = panel_bytes / sizeof(float);
  for (uint32_t g = 0; g < s->groups; g++)
    sl_gemm_pack(dense + g * ocg * p->patch, bias != NULL ? bias + g * ocg : NULL, ocg, p->patch, p->gemm->rows,
                 p->panels + g * panel_size);
  sl_release_dense_weights(m, w, dense);
  p->tiles = (pixels + p->tile - 1) / p->tile;
  if (p->gemm->family == SL_FAMILY_gemm_nc) {
    size_t panels = (ocg + p->gemm->rows - 1) / p->gemm->rows, want = 4 * sl_op_threads(m);
    p->panel_chunks = panels < want ? panels : want;
    /* every group's patches at once, pixel-major (pixel_major_patches): copied so (from a padded
     * copy of the image where windows reach past it), or gathered and then transposed */
    p->patchify = s->dilation_h == 1 && s->dilation_w == 1;
    uint64_t extent_h = (uint64_t)(s->out_h - 1) * s->stride_h + s->kernel_h;
    uint64_t extent_w = (uint64_t)(s->out_w - 1) * s->stride_w + s->kernel_w;
    size_t padded_bytes = 0;
    if (p->patchify && (s->pad_top != 0 || s->pad_left != 0 || extent_h > s->in_h || extent_w > s->in_w)) {
      /* A plane no larger than its channel's patches (not a few windows far apart in padding). The
       * bound, pixels * kh * kw, is below 2^38: a weight row holds kh * kw < 2^31. */
      uint64_t bound = (uint64_t)p->tile * s->kernel_h * s->kernel_w;
      p->patchify = extent_w <= bound && extent_h <= bound / extent_w && extent_h <= UINT32_MAX && extent_w <= UINT32_MAX;
      if (p->patchify) {
        p->padded_h = (uint32_t)extent_h;
        p->padded_w = (uint32_t)extent_w;
        if (!sl_size_mul((size_t)(extent_h * extent_w), (size_t)s->in_c * sizeof(float), &padded_bytes))
          return sl_node_fail(m, n, "the padded input of %u channels does not fit in memory", s->in_c);
      }
    }
    if (!sl_size_mul(patch_bytes, s->groups, &patch_bytes) ||
        !sl_size_mul(patch_bytes, p->patchify ? 1 : 2, &patch_bytes) ||
        !sl_size_add(patch_bytes, padded_bytes, &patch_bytes))
      return sl_node_fail(m, n, "the patches of %u groups do not fit in memory", s->groups);
    sl_reserve_scratch(m, n, patch_bytes, 0);
  } else {
    sl_reserve_scratch(m, n, 0, patch_bytes);
  }
  n->kernel = p->gemm->name;
  return SL_OK;
}

static sl_status_t prepare(sl_model_t* m, sl_node_t* n, sl_fb_t* fb) {
  conv_params_t* p = sl_node_params(m, n, sizeof(*p));
  if (p == NULL) return SL_ERROR_OUT_OF_MEMORY;
  const sl_fb_table_t* o = &n->options;
  int32_t sh = sl_conv2d_options_stride_h(fb, o), sw = sl_conv2d_options_stride_w(fb, o);
  int32_t dh = sl_conv2d_options_dilation_h(fb, o), dw = sl_conv2d_options_dilation_w(fb, o);
  int32_t pt = sl_conv2d_options_pad_top(fb, o), pl = sl_conv2d_options_pad_left(fb, o);
  int32_t pb = sl_conv2d_options_pad_bottom(fb, o), pr = sl_conv2d_options_pad_right(fb, o);
  int32_t groups = sl_conv2d_options_groups(fb, o);
  sl_status_t st = sl_parse_activation(m, n, sl_conv2d_options_activation(fb, o), sl_conv2d_options_act_min(fb, o),
                                       sl_conv2d_options_act_max(fb, o), &p->act);
  const int32_t steps[4] = {sh, sw, dh, dw}, pads[4] = {pt, pl, pb, pr};
  if (st == SL_OK) st = sl_expect_window(m, n, "strides and dilations", 1, 4, steps);
  if (st == SL_OK) st = sl_expect_window(m, n, "paddings", 0, 4, pads);
  if (st != SL_OK) return st;
  sl_tensor_t *x = sl_in(m, n, 0), *w = sl_in(m, n, 1), *b = n->num_inputs > 2 ? sl_in(m, n, 2) : NULL;
  sl_tensor_t* y = sl_out(m, n, 0);
  if ((st = sl_expect_f32(m, n, x, "input", 4)) != SL_OK) return st;
  if ((st = sl_expect_weights(m, n, w, 4)) != SL_OK) return st;
  if ((st = sl_expect_batch_only(m, n)) != SL_OK) return st;
  int32_t c = x->shape[1], oc = w->shape[0], kh = w->shape[2], kw = w->shape[3];
  if (groups < 1 || c % groups != 0 || oc % groups != 0 || w->shape[1] != c / groups)
    return sl_node_fail(m, n, "%d groups do not fit %d input and %d output channels (weights [%d,%d,%d,%d])",
                        groups, c, oc, oc, w->shape[1], kh, kw);
  if (b != NULL) {
    if ((st = sl_expect_f32(m, n, b, "bias", -1)) != SL_OK) return st;
    int32_t bshape[1] = {oc};
    if (!b->is_const) return sl_node_fail(m, n, "bias must be constant");
    if ((st = sl_expect_shape(m, n, b, "bias", 1, bshape)) != SL_OK) return st;
  }
  int64_t eh = (int64_t)dh * (kh - 1) + 1, ew = (int64_t)dw * (kw - 1) + 1;
  int64_t oh = ((int64_t)x->shape[2] + pt + pb - eh) / sh + 1;
  int64_t ow = ((int64_t)x->shape[3] + pl + pr - ew) / sw + 1;
  if ((int64_t)x->shape[2] + pt + pb < eh || (int64_t)x->shape[3] + pl + pr < ew)
    return sl_node_fail(m, n, "the %dx%d kernel is larger than the padded input", kh, kw);
  if (oh > INT32_MAX || ow > INT32_MAX) /* padding can push a side past what a tensor holds */
    return sl_node_fail(m, n, "the output would be %lldx%lld, over 2^31 - 1 per axis", (long long)oh, (long long)ow);
  int32_t yshape[4] = {x->shape[0], oc, (int32_t)oh, (int32_t)ow};
  if ((st = sl_expect_f32(m, n, y, "output", 4)) != SL_OK) return st;
  if ((st = sl_expect_shape(m, n, y, "output", 4, yshape)) != SL_OK) return st;

  sl_conv2d_shape_t s = {(uint32_t)c, (uint32_t)x->shape[2], (uint32_t)x->shape[3], (uint32_t)oc,
                         (uint32_t)oh, (uint32_t)ow, (uint32_t)kh, (uint32_t)kw, (uint32_t)sh,
                         (uint32_t)sw, (uint32_t)dh, (uint32_t)dw, (uint32_t)pt, (uint32_t)pl,
                         (uint32_t)groups};
  p->s = s;
  p->batch = (uint32_t)x->shape[0];
  p->post = sl_activation_split(&p->act, &p->mm);
  p->vunary = sl_op_kernel(m, SL_FAMILY_vunary, 0);
  p->bias = b != NULL ? sl_const_f32(b) : NULL;
  size_t pixels = (size_t)oh * ow;
  bool pointwise = kh == 1 && kw == 1 && pt + pl + pb + pr == 0 && groups == 1;
  bool depthwise = groups == c && oc == c && dh == 1 && dw == 1;
  if (pointwise) {
    p->path = PATH_POINTWISE;
    sl_tensor_t matrix = as_matrix(w);
    st = sl_linear_prepare(m, n, &p->linear, &matrix, p->bias, SL_LINEAR_CHANNEL_MAJOR, pixels, pixels, &p->act);
    if (st == SL_OK) sl_linear_pad_planes(m, n, &p->linear);
    n->flops *= p->batch;
    n->dense_flops *= p->batch;
    size_t subsampled; /* a strided 1x1 conv runs on its input's every stride-th pixel, copied first */
    if (st == SL_OK && (sh > 1 || sw > 1)) {
      if (!sl_size_mul((size_t)c, subsampled_plane(p), &subsampled) ||
          !sl_size_mul(subsampled, sizeof(float), &subsampled))
        return sl_node_fail(m, n, "the subsampled input (%d x %zu) does not fit in memory", c, pixels);
      /* before the layer's own copies (transposed or fp16 x), which follow at scratch_at */
      size_t at = (subsampled + 63) / 64 * 64, total;
      if (!sl_size_add(at, n->scratch_shared, &total))
        return sl_node_fail(m, n, "the subsampled input (%d x %zu) does not fit in memory", c, pixels);
      p->linear.scratch_at = at;
      sl_reserve_scratch(m, n, total, 0);
    }
    return st;
  }
  n->dense_flops = n->flops = 2.0 * oc * (c / groups) * kh * kw * (double)pixels * p->batch;
  if (depthwise) {
    p->path = PATH_DEPTHWISE;
    const float* weights;
    if ((st = sl_dense_weights(m, n, w, &weights)) != SL_OK) return st;
    st = sl_depthwise_prepare(m, n, &p->depthwise, &p->s, weights, p->bias, &p->act);
    sl_release_dense_weights(m, w, weights);
    return st;
  }
  uint32_t tile = sl_winograd_tile(&p->s, sl_op_winograd(m));
  if (tile != 0) {
    p->path = PATH_WINOGRAD;
    const float* weights;
    if ((st = sl_dense_weights(m, n, w, &weights)) != SL_OK) return st;
    st = sl_winograd_prepare(m, n, &p->winograd, &p->s, tile, weights, p->bias, &p->act);
    sl_release_dense_weights(m, w, weights);
    return st;
  }
  /* Groups that fill at most half of gemm_nc's channel tile (RegNet's 8-channel groups) waste less
   * on junk columns than on idle lanes: implicit at any size. */
  bool narrow_groups = groups > 1 && 2 * (size_t)(oc / groups) <= sl_op_kernel(m, SL_FAMILY_gemm_nc, 0)->rows;
  if ((pixels > SL_IMPLICIT_CONV_MIN_PIXELS || narrow_groups) && sl_implicit_conv_fits(&p->s)) {
    p->path = PATH_IMPLICIT;
    const float* weights;
    if ((st = sl_dense_weights(m, n, w, &weights)) != SL_OK) return st;
    st = sl_implicit_conv_prepare(m, n, &p->implicit, &p->s, weights, p->bias, &p->act);
    sl_release_dense_weights(m, w, weights);
    return st;
  }
  p->path = PATH_IM2COL;
  return prepare_im2col(m, n, p, w, p->bias);
}

static bool unstrided_pointwise(const conv_params_t* p) {
  return p->path == PATH_POINTWISE && p->s.stride_h == 1 && p->s.stride_w == 1;
}

sl_status_t sl_conv2d_fuse(sl_model_t* m, sl_fb_t* fb, uint32_t band_rows, sl_node_t* pre, sl_node_t* expand,
                           sl_node_t* dw, sl_node_t* project, sl_node_t* add, bool* fused) {
  *fused = false;
  conv_params_t *h = pre != NULL ? pre->params : NULL, *e = expand->params, *d = dw->params, *p = project->params;
  if (!unstrided_pointwise(e) || d->path != PATH_DEPTHWISE || !unstrided_pointwise(p)) return SL_OK;
  if (h != NULL && h->path != PATH_DEPTHWISE) return SL_OK;
  const sl_conv2d_shape_t* in = h != NULL ? &h->s : &e->s; /* the block's input */
  sl_activation_t add_act;
  if (add != NULL) {
    /* The residual is the block's input: same shape as the project's output, no broadcast. */
    if (p->s.out_c != in->in_c || p->s.out_h != in->in_h || p->s.out_w != in->in_w) return SL_OK;
    const sl_fb_table_t* o = &add->options;
    sl_status_t st = sl_parse_activation(m, add, sl_binary_options_activation(fb, o), sl_binary_options_act_min(fb, o),
                                         sl_binary_options_act_max(fb, o), &add_act);
    if (st != SL_OK) return st;
  }
  const sl_tensor_t *w = sl_in(m, dw, 1), *pre_w = pre != NULL ? sl_in(m, pre, 1) : NULL;
  const float *dw_weights, *pre_weights = NULL;
  sl_status_t st = sl_dense_weights(m, dw, w, &dw_weights);
  if (st != SL_OK) return st;
  if (pre != NULL && (st = sl_dense_weights(m, pre, pre_w, &pre_weights)) != SL_OK) {
    sl_release_dense_weights(m, w, dw_weights);
    return st;
  }
  sl_node_t* head = pre != NULL ? pre : expand;
  conv_params_t* hp = head->params;
  sl_fused_pre_t pre_half;
  if (h != NULL)
    pre_half = (sl_fused_pre_t){{h->s, pre_weights, h->bias, h->act}, expand,
                                {as_matrix(sl_in(m, expand, 1)), e->bias, e->act}};
  sl_fused_dw_t dw_half = {d->s, dw_weights, d->bias, d->act};
  sl_fused_project_t project_half = {as_matrix(sl_in(m, project, 1)), p->bias, p->act};
  st = sl_fused_block_prepare(m, head, dw, project, &e->linear, band_rows, in->in_h, in->in_w,
                              pre != NULL ? &pre_half : NULL, &dw_half, &project_half,
                              add != NULL ? &add_act : NULL, &hp->block);
  sl_release_dense_weights(m, w, dw_weights);
  if (pre != NULL) sl_release_dense_weights(m, pre_w, pre_weights);
  if (st != SL_OK || hp->block == NULL) return st;
  sl_linear_unpad_planes(&e->linear); /* the block runs it on the input's own planes */
  hp->out = sl_out(m, add != NULL ? add : project, 0);
  /* Members report the kernels the block runs (a band's shapes may pick others). */
  const sl_fused_block_t* b = hp->block;
  dw->kernel = b->in_place ? b->dwconv.k->name : b->kinds[0].dw.s2 != NULL ? b->kinds[0].dw.s2->name : b->kinds[0].dw.k->name;
  project->kernel = b->project.spmm != NULL ? b->project.spmm->name : b->project.gemm->name;
  if (pre != NULL) {
    pre->kernel = b->pre.k->name;
    expand->kernel = b->expand->spmm != NULL ? b->expand->spmm->name : b->expand->gemm->name;
  }
  *fused = true;
  return SL_OK;
}

static sl_epilogue_t* epilogue_of(conv_params_t* p) {
  if (p->block != NULL) return NULL;
  return p->path == PATH_POINTWISE ? &p->linear.epilogue : p->path == PATH_IMPLICIT ? &p->implicit.epilogue : NULL;
}

/* Whether float32 t has y's shape now and after any resize, but along axis `except` (-1: none):
 * the same maxima, following the same dynamic dims. */
static bool same_shape(const sl_tensor_t* t, const sl_tensor_t* y, int32_t except) {
  if (t->dtype != SL_DTYPE_FLOAT32 || t->rank != y->rank) return false;
  for (int32_t d = 0; d < t->rank; d++)
    if (d != except && (t->max_shape[d] != y->max_shape[d] || t->dynamic[d] != y->dynamic[d])) return false;
  return true;
}

sl_status_t sl_conv2d_fuse_add(sl_model_t* m, sl_fb_t* fb, sl_node_t* conv, sl_node_t* add, int residual,
                               const sl_node_t* pad, bool* fused, bool* in_place) {
  *fused = *in_place = false;
  conv_params_t* p = conv->params;
  sl_epilogue_t* e = epilogue_of(p);
  const sl_tensor_t *r = sl_in(m, add, residual), *y = sl_out(m, conv, 0), *out = sl_out(m, add, 0);
  if (e == NULL || sl_epilogue_on(e) || !same_shape(r, y, -1) || !same_shape(out, y, -1)) return SL_OK;
  size_t first = 0;
  if (pad != NULL) {
    r = sl_in(m, pad, 0);
    if (!sl_pad_channels_only(pad, &first) || !same_shape(r, y, 1) || r->dynamic[1]) return SL_OK;
  }
  const sl_fb_table_t* o = &add->options;
  sl_activation_t act;
  sl_status_t st = sl_parse_activation(m, add, sl_binary_options_activation(fb, o), sl_binary_options_act_min(fb, o),
                                       sl_binary_options_act_max(fb, o), &act);
  if (st != SL_OK) return st;
  sl_epilogue_add_channels(m, e, &act, first, (size_t)r->max_shape[1], (size_t)p->s.out_h * p->s.out_w);
  p->residual = r;
  p->out = out;
  *fused = true;
  const bool in_kernel = pad == NULL && p->path == PATH_POINTWISE && sl_linear_residual_in_kernel(&p->linear);
  /* The input is read at every pixel while other tasks write theirs: never the residual too. */
  *in_place = pad == NULL && p->path == PATH_POINTWISE && sl_in(m, conv, 0) != r &&
              (in_kernel || sl_linear_stage(m, conv, &p->linear));
  return SL_OK;
}

sl_status_t sl_conv2d_fuse_prelu(sl_model_t* m, sl_node_t* conv, sl_node_t* prelu, bool* fused) {
  *fused = false;
  conv_params_t* p = conv->params;
  sl_epilogue_t* e = epilogue_of(p);
  const sl_tensor_t *y = sl_out(m, conv, 0), *slopes = sl_in(m, prelu, 1), *out = sl_out(m, prelu, 0);
  if (e == NULL || e->slopes != NULL || !same_shape(out, y, -1) || sl_const_f32(slopes) == NULL || slopes->rank > 4)
    return SL_OK;
  /* Broadcast against [N, C, H, W]: one slope, or one per channel (shape [.., C, 1, 1]). */
  bool shared = slopes->num_elems == 1;
  if (!shared) {
    int32_t channel_axis = slopes->rank - 3;
    for (int32_t d = 0; d < slopes->rank; d++)
      if (slopes->shape[d] != (d == channel_axis ? y->shape[1] : 1)) return SL_OK;
  }
  sl_epilogue_prelu(m, e, sl_const_f32(slopes), !shared);
  p->out = out;
  *fused = true;
  return SL_OK;
}

bool sl_conv2d_halves_ok(const sl_node_t* conv, bool output) {
  const conv_params_t* p = conv->params;
  if (p->block != NULL || p->out != NULL) return false;
  if (unstrided_pointwise(p))
    return p->linear.k16 != NULL && p->linear.layout == SL_LINEAR_CHANNEL_MAJOR &&
           (!output || (p->linear.post.type == SL_ACT_NONE && !sl_epilogue_on(&p->linear.epilogue)));
  if (p->path == PATH_DEPTHWISE)
    return p->depthwise.k16 != NULL && p->depthwise.s2 == NULL && (!output || p->depthwise.post.type == SL_ACT_NONE);
  return false;
}

void sl_conv2d_use_halves(sl_node_t* conv, bool output) {
  conv_params_t* p = conv->params;
  bool* flag = p->path == PATH_POINTWISE ? (output ? &p->linear.half_out : &p->linear.half_in)
                                         : (output ? &p->depthwise.half_out : &p->depthwise.half_in);
  *flag = true;
}

static void post_activation(const conv_params_t* p, float* y, size_t n) {
  if (p->post.type != SL_ACT_NONE) p->vunary->fn.vunary(&p->post, y, y, n);
}

typedef struct {
  const sl_model_t* m;
  const sl_node_t* n;
  const conv_params_t* p;
  const float* x;
  float* y;
} job_t;

/* One row of the patch matrix: tap (ky, kx) of one input channel for output
 * pixels [p0, p0 + count), walked one output row segment at a time so the
 * bounds are tested per segment, not per pixel. */
static void gather_row(const sl_conv2d_shape_t* s, const float* plane, uint32_t ky, uint32_t kx, size_t p0,
                       size_t count, float* row) {
  int64_t sw = s->stride_w, x_off = (int64_t)kx * s->dilation_w - s->pad_left;
  /* Output columns whose input column is inside: [lo, hi). */
  int64_t lo = x_off >= 0 ? 0 : (-x_off + sw - 1) / sw;
  int64_t hi = (int64_t)s->in_w - x_off <= 0 ? 0 : ((int64_t)s->in_w - x_off + sw - 1) / sw;
  if (hi > s->out_w) hi = s->out_w;
  if (lo > hi) lo = hi;
  size_t oy = p0 / s->out_w, ox = p0 % s->out_w;
  for (size_t i = 0; i < count; oy++, ox = 0) {
    size_t end = ox + (count - i) < s->out_w ? ox + (count - i) : s->out_w; /* this output row's share */
    int64_t iy = (int64_t)oy * s->stride_h + (int64_t)ky * s->dilation_h - s->pad_top;
    if (iy < 0 || iy >= s->in_h) {
      memset(row + i, 0, (end - ox) * sizeof(float));
      i += end - ox;
      continue;
    }
    const float* in = plane + iy * s->in_w + x_off;
    for (; ox < end && (int64_t)ox < lo; ox++) row[i++] = 0.0f;
    size_t inside = (int64_t)end < hi ? end - ox : (size_t)(hi > (int64_t)ox ? hi - (int64_t)ox : 0);
    if (sw == 1) /* most convolutions: a copy, inline since the segments are short */
      for (size_t e = 0; e < inside; e++) row[i + e] = in[ox + e];
    else
      for (size_t e = 0; e < inside; e++) row[i + e] = in[(int64_t)(ox + e) * sw];
    i += inside;
    ox += inside;
    for (; ox < end; ox++) row[i++] = 0.0f;
  }
}

/* The patch rows of input channel ic (its kh * kw taps) for output pixels [p0, p0 + count). */
static void gather_channel(const conv_params_t* p, const float* plane, size_t ic, size_t p0, size_t count,
                           float* patches) {
  const sl_conv2d_shape_t* s = &p->s;
  float* row = patches + ic * s->kernel_h * s->kernel_w * p->tile;
  for (uint32_t ky = 0; ky < s->kernel_h; ky++)
    for (uint32_t kx = 0; kx < s->kernel_w; kx++, row += p->tile) gather_row(s, plane, ky, kx, p0, count, row);
}

/* Task = (image, group, pixel tile): gather the tile's patches, then gemm. */
static void im2col_task(void* ctx, size_t task, size_t thread) {
  const job_t* j = ctx;
  const conv_params_t* p = j->p;
  const sl_conv2d_shape_t* s = &p->s;
  size_t tile = task % p->tiles, g = task / p->tiles % s->groups, image = task / p->tiles / s->groups;
  size_t pixels = (size_t)s->out_h * s->out_w, icg = s->in_c / s->groups, ocg = s->out_c / s->groups;
  size_t p0 = tile * p->tile, count = pixels - p0 < p->tile ? pixels - p0 : p->tile;
  const float* x = j->x + (image * s->in_c + g * icg) * s->in_h * s->in_w;
  float* patches = sl_scratch_thread(j->m, j->n, thread);
  for (size_t ic = 0; ic < icg; ic++) gather_channel(p, x + ic * s->in_h * s->in_w, ic, p0, count, patches);
  size_t panel_size = sl_gemm_pack_size(ocg, p->patch, p->gemm->rows);
  float* y = j->y + (image * s->out_c + g * ocg) * pixels + p0;
  p->gemm->fn.gemm(count, ocg, p->patch, patches, p->tile, NULL, p->panels + g * panel_size, y, pixels,
                   &(sl_matrix_out_t){.mm = p->mm});
  for (size_t o = 0; o < ocg; o++) post_activation(p, y + o * pixels, count);
}

/* gemm_nc's im2col, one image: task = input channel, its rows of the shared patch matrix. */
static void gather_task(void* ctx, size_t ic, size_t thread) {
  (void)thread;
  const job_t* j = ctx;
  const conv_params_t* p = j->p;
  const sl_conv2d_shape_t* s = &p->s;
  gather_channel(p, j->x + ic * s->in_h * s->in_w, ic, 0, p->tile, sl_scratch_shared(j->m));
}

/* Group g's [pixels][patch] matrix for gemm_nc in the shared scratch: after the channel-major
 * gather of every group, unless the patches are copied pixel-major directly. */
static float* pixel_major_patches(const sl_model_t* m, const conv_params_t* p, uint32_t g) {
  return (float*)sl_scratch_shared(m) + ((p->patchify ? 0 : p->s.groups) + g) * p->patch * p->tile;
}

/* One pixel's patch: icg channels (`plane` apart) of the kh x kw window at `corner`, in order.
 * Inlined with constant windows for the usual sizes: the copy is the loop overhead otherwise. */
static inline __attribute__((always_inline)) void copy_patch(float* restrict row, const float* restrict corner,
                                                             size_t icg, size_t plane, size_t in_w, size_t kh,
                                                             size_t kw) {
  for (size_t ic = 0; ic < icg; ic++, corner += plane)
    for (size_t ky = 0; ky < kh; ky++)
      for (size_t kx = 0; kx < kw; kx++) *row++ = corner[ky * in_w + kx];
}

/* The padded planes behind the patches: channel c at c * padded_h * padded_w. */
static float* padded_planes(const sl_model_t* m, const conv_params_t* p) {
  return (float*)sl_scratch_shared(m) + (size_t)p->s.groups * p->patch * p->tile;
}

/* Task = input channel: its plane copied into the windows' extent, zeros where they pass the input
 * (implicit_conv.c's planes at stride 1: one phase). */
static void pad_task(void* ctx, size_t c, size_t thread) {
  (void)thread;
  const job_t* j = ctx;
  const conv_params_t* p = j->p;
  sl_conv2d_shape_t unit = p->s;
  unit.stride_h = unit.stride_w = 1;
  const size_t plane = (size_t)p->padded_h * p->padded_w;
  sl_conv2d_fill_planes(&unit, NULL, j->x + c * unit.in_h * unit.in_w, padded_planes(j->m, p) + c * plane, p->padded_w,
                        p->padded_h, plane);
}

/* gemm_nc's pixel-major patches of an undilated convolution (MediaPipe's 2x2 stride-2 layers and
 * heads, ResNet's 7x7 ones), straight from the image or its padded copy: each output pixel's row
 * is, per input channel of its group, the kernel_w floats of each of its kernel_h input rows. One
 * pass instead of a gather and a transpose, each reading one float at a time across cache lines.
 * Task = output row. */
static void patchify_task(void* ctx, size_t oy, size_t thread) {
  (void)thread;
  const job_t* j = ctx;
  const conv_params_t* p = j->p;
  const sl_conv2d_shape_t* s = &p->s;
  const bool padded = p->padded_w != 0;
  const size_t in_w = padded ? p->padded_w : s->in_w, plane = in_w * (padded ? p->padded_h : s->in_h);
  const size_t icg = s->in_c / s->groups, kh = s->kernel_h, kw = s->kernel_w;
  const float* x = padded ? padded_planes(j->m, p) : j->x;
  for (size_t ox = 0; ox < s->out_w; ox++) {
    const float* corner = x + oy * s->stride_h * in_w + ox * s->stride_w;
    for (uint32_t g = 0; g < s->groups; g++, corner += icg * plane) {
      float* row = pixel_major_patches(j->m, p, g) + (oy * s->out_w + ox) * p->patch;
      if (kh == 2 && kw == 2) copy_patch(row, corner, icg, plane, in_w, 2, 2);
      else if (kh == 3 && kw == 3) copy_patch(row, corner, icg, plane, in_w, 3, 3);
      else copy_patch(row, corner, icg, plane, in_w, kh, kw);
    }
  }
}

/* Task = (group, range of output channels) over every pixel of the image. */
static void nc_task(void* ctx, size_t task, size_t thread) {
  (void)thread;
  const job_t* j = ctx;
  const conv_params_t* p = j->p;
  const sl_conv2d_shape_t* s = &p->s;
  size_t g = task / p->panel_chunks, chunk = task % p->panel_chunks;
  size_t pixels = p->tile, ocg = s->out_c / s->groups, rows = p->gemm->rows;
  size_t panels = (ocg + rows - 1) / rows;
  size_t r0 = chunk * panels / p->panel_chunks * rows, r1 = (chunk + 1) * panels / p->panel_chunks * rows;
  if (r1 > ocg) r1 = ocg;
  const float* patches = pixel_major_patches(j->m, p, (uint32_t)g);
  const float* panel = p->panels + g * sl_gemm_pack_size(ocg, p->patch, rows) + r0 * (p->patch + 1);
  float* y = j->y + (g * ocg + r0) * pixels;
  p->gemm->fn.gemm_nc(pixels, r1 - r0, p->patch, patches, p->patch, 1, panel, y, 1, pixels, &p->mm);
  for (size_t o = r0; o < r1; o++) post_activation(p, y + (o - r0) * pixels, pixels);
}

/* Task = input channel: its every stride-th pixel, for a strided 1x1 conv. */
static void subsample_task(void* ctx, size_t ic, size_t thread) {
  (void)thread;
  const job_t* j = ctx;
  const sl_conv2d_shape_t* s = &j->p->s;
  const float* in = j->x + ic * s->in_h * s->in_w;
  float* out = j->y + ic * subsampled_plane(j->p);
  for (size_t oy = 0; oy < s->out_h; oy++) {
    const float* row = in + oy * s->stride_h * s->in_w;
    for (size_t ox = 0; ox < s->out_w; ox++) *out++ = row[ox * s->stride_w];
  }
}

static void run(const sl_model_t* m, const sl_node_t* n) {
  const conv_params_t* p = n->params;
  job_t j = {m, n, p, sl_in(m, n, 0)->data, (p->out != NULL ? p->out : sl_out(m, n, 0))->data};
  const float* r = p->residual != NULL ? p->residual->data : NULL;
  /* A residual's image: the output's, or fewer channels where a channel padding was folded. */
  size_t r_image = r != NULL ? p->residual->num_elems / p->batch : 0;
  const sl_conv2d_shape_t* s = &p->s;
  if (p->block != NULL) {
    sl_fused_block_run(m, n, p->block, j.x, j.y, p->batch);
    return;
  }
  switch (p->path) {
    case PATH_POINTWISE: {
      /* An image's bytes: halves in an fp16 chain. */
      size_t in_size = (size_t)s->in_c * s->in_h * s->in_w * (p->linear.half_in ? sizeof(sl_f16) : sizeof(float));
      size_t out_size = (size_t)s->out_c * s->out_h * s->out_w * (p->linear.half_out ? sizeof(sl_f16) : sizeof(float));
      bool strided = s->stride_h > 1 || s->stride_w > 1;
      for (uint32_t b = 0; b < p->batch; b++) {
        const float* x = (const float*)(const void*)((const char*)j.x + b * in_size);
        float* y = (float*)(void*)((char*)j.y + b * out_size);
        const float* residual = r != NULL ? r + b * r_image : NULL;
        if (!strided) {
          sl_linear_run(m, n, &p->linear, x, y, residual);
          continue;
        }
        job_t sub = {m, n, p, x, sl_scratch_shared(m)};
        sl_parallel_for(m, s->in_c, subsample_task, &sub);
        sl_linear_run_planes(m, n, &p->linear, sub.y, y, residual);
      }
      break;
    }
    case PATH_DEPTHWISE: sl_depthwise_run(m, n, &p->depthwise, j.x, j.y, p->batch); break;
    case PATH_WINOGRAD: sl_winograd_run(m, n, &p->winograd, j.x, j.y, p->batch); break;
    case PATH_IMPLICIT: sl_implicit_conv_run(m, n, &p->implicit, j.x, j.y, r, r_image, p->batch); break;
    case PATH_IM2COL:
      if (p->gemm->family == SL_FAMILY_gemm) {
        sl_parallel_for(m, (size_t)p->batch * s->groups * p->tiles, im2col_task, &j);
        break;
      }
      for (uint32_t b = 0; b < p->batch; b++) {
        job_t image = {m, n, p, j.x + (size_t)b * s->in_c * s->in_h * s->in_w,
                       j.y + (size_t)b * s->out_c * s->out_h * s->out_w};
        if (p->patchify) {
          if (p->padded_w != 0) sl_parallel_for(m, s->in_c, pad_task, &image);
          sl_parallel_for(m, s->out_h, patchify_task, &image);
        } else {
          sl_parallel_for(m, s->in_c, gather_task, &image);
          float* patches = sl_scratch_shared(m);
          size_t group_size = p->patch * p->tile;
          for (uint32_t g = 0; g < s->groups; g++) /* [patch][pixels] -> [pixels][patch] */
            sl_transpose_2d(m, patches + g * group_size, p->tile, pixel_major_patches(m, p, g), p->patch, p->patch,
                            p->tile);
        }
        sl_parallel_for(m, s->groups * p->panel_chunks, nc_task, &image);
      }
      break;
  }
}

/* A new batch (sl_expect_batch_only): every path runs image by image on what prepare planned. */
static sl_status_t resize(sl_model_t* m, sl_node_t* n, sl_fb_t* fb) {
  (void)fb;
  conv_params_t* p = n->params;
  uint32_t batch = (uint32_t)sl_in(m, n, 0)->shape[0];
  n->flops = n->flops / p->batch * batch;
  n->dense_flops = n->dense_flops / p->batch * batch;
  p->batch = batch;
  return SL_OK;
}

const sl_op_def_t sl_op_conv2d = {SL_OP_SCHEMA(CONV2D), 2, 3, prepare, run, resize};
