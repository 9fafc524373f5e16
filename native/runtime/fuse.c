/* The fusion pass: after every op is prepared and before the arena is planned, chains of
 * consecutive ops whose intermediate tensors nothing else reads become one fused block, run by
 * the chain's first op. The chains: CONV2D 1x1 -> CONV2D depthwise -> CONV2D 1x1, after a CONV2D
 * depthwise or not (BlazeFace's double blocks; MobileNet/EfficientNet inverted residuals), then
 * optionally the ADD of the block's input; then any
 * other CONV2D -> ADD and/or PRELU (ResNet's bottlenecks, MediaPipe's residual blocks), those
 * run on each block of the convolution's output as it is computed, the ADD's input unpadded where
 * a PAD of zero channels made it. */
#include "../ops/conv2d.h"
#include "model.h"

static bool graph_output(const sl_model_t* m, int32_t t) {
  for (int32_t i = 0; i < m->num_outputs; i++)
    if (m->outputs[i] == t) return true;
  return false;
}

/* Whether tensor t is read by exactly one op and is no graph output. */
static bool private_tensor(const sl_model_t* m, const int32_t* readers, int32_t t) {
  return t >= 0 && readers[t] == 1 && !graph_output(m, t);
}

static bool reads(const sl_node_t* n, int32_t input, int32_t t) { return n->num_inputs > input && n->inputs[input] == t; }

/* Node `op` now runs inside node `head`, which writes op's output instead of its input `t`: t
 * needs no slot, and the output is live from head on, so it shares no bytes with what head reads. */
static int32_t absorb(sl_model_t* m, int32_t head, int32_t op, int32_t t) {
  m->nodes[op].fused_into = head;
  int32_t out = m->nodes[op].outputs[0];
  m->tensors[t].producer = -1;
  m->tensors[out].producer = head;
  return out;
}

/* Whether tensor t is computed before op `head` runs. */
static bool ready(const sl_model_t* m, int32_t t, int32_t head) { return m->tensors[t].producer < head; }

/* The PAD computing private tensor t, not fused yet, else NULL: an epilogue may add its input
 * instead (BlazeFace pads channels with zeros for a residual). */
static sl_node_t* pad_of(sl_model_t* m, const int32_t* readers, int32_t t) {
  int32_t producer = m->tensors[t].producer;
  if (producer < 0 || !private_tensor(m, readers, t)) return NULL;
  sl_node_t* pad = &m->nodes[producer];
  return pad->type == SL_OP_PAD && pad->fused_into < 0 ? pad : NULL;
}

/* The op reading private tensor t, if the convolution `head` may run it: it is not fused yet and
 * its other inputs are ready before head runs, or are PADs of inputs that are (two parallel
 * branches interleave their ops, so it need not be the next one). NULL otherwise. */
static sl_node_t* movable_reader(sl_model_t* m, const int32_t* readers, const int32_t* reader, int32_t head,
                                 int32_t t) {
  if (!private_tensor(m, readers, t)) return NULL;
  sl_node_t* op = &m->nodes[reader[t]];
  if (op->fused_into >= 0) return NULL;
  for (int32_t k = 0; k < op->num_inputs; k++) {
    int32_t in = op->inputs[k];
    if (in < 0 || in == t || ready(m, in, head)) continue;
    const sl_node_t* pad = pad_of(m, readers, in);
    if (pad == NULL || !ready(m, pad->inputs[0], head)) return NULL;
  }
  return op;
}

/* The block at node i: [depthwise (pre) ->] 1x1 -> depthwise -> 1x1 [-> ADD of the block's input],
 * consecutive; *members: how many ops after i it took (0: not fused). */
static sl_status_t fuse_chain(sl_model_t* m, sl_fb_t* fb, const int32_t* readers, int32_t i, bool pre,
                              int32_t* members) {
  *members = 0;
  int32_t first = i + (pre ? 1 : 0); /* the expand */
  if (first + 2 >= m->num_nodes) return SL_OK;
  sl_node_t *h = &m->nodes[i], *e = &m->nodes[first], *d = e + 1, *p = e + 2;
  sl_node_t* add = first + 3 < m->num_nodes ? e + 3 : NULL;
  if (h->type != SL_OP_CONV2D || e->type != SL_OP_CONV2D || d->type != SL_OP_CONV2D || p->type != SL_OP_CONV2D)
    return SL_OK;
  int32_t x = h->inputs[0], mid = e->outputs[0], dwo = d->outputs[0], po = p->outputs[0];
  if (pre && (!reads(e, 0, h->outputs[0]) || !private_tensor(m, readers, h->outputs[0]))) return SL_OK;
  if (!reads(d, 0, mid) || !private_tensor(m, readers, mid) || !reads(p, 0, dwo) || !private_tensor(m, readers, dwo))
    return SL_OK;
  if (add != NULL && !(add->type == SL_OP_ADD && private_tensor(m, readers, po) &&
                       ((reads(add, 0, po) && reads(add, 1, x)) || (reads(add, 0, x) && reads(add, 1, po)))))
    add = NULL;
  bool fused = false;
  sl_status_t st = sl_conv2d_fuse(m, fb, m->fuse > 0 ? (uint32_t)m->fuse : 0, pre ? h : NULL, e, d, p, add, &fused);
  if (!fused) return st;
  *members = (first - i) + (add != NULL ? 3 : 2);
  for (int32_t k = 1; k <= *members; k++) h[k].fused_into = i;
  /* The block reads its input until its last member; what it keeps inside needs no slot. */
  if (m->tensors[x].last_use < i + *members) m->tensors[x].last_use = i + *members;
  m->tensors[mid].producer = m->tensors[dwo].producer = -1;
  if (pre) m->tensors[h->outputs[0]].producer = -1;
  if (add != NULL) m->tensors[po].producer = -1;
  return st;
}

sl_status_t sl_fuse_blocks(sl_model_t* m, sl_fb_t* fb) {
  /* Per tensor: how many ops read it, and the last one that does. */
  int32_t* readers = sl_model_alloc(m, 3 * ((size_t)m->num_tensors + 1) * sizeof(int32_t));
  if (readers == NULL) return SL_ERROR_OUT_OF_MEMORY;
  int32_t* reader = readers + m->num_tensors + 1;
  int32_t* earlier_reader = reader + m->num_tensors + 1; /* the last reader before `reader`, or -1 */
  for (int32_t t = 0; t < m->num_tensors; t++) reader[t] = earlier_reader[t] = -1;
  for (int32_t i = 0; i < m->num_nodes; i++)
    for (int32_t k = 0; k < m->nodes[i].num_inputs; k++) {
      int32_t t = m->nodes[i].inputs[k];
      if (t < 0) continue;
      readers[t]++;
      if (reader[t] != i) earlier_reader[t] = reader[t];
      reader[t] = i;
    }
  sl_status_t st = SL_OK;
  for (int32_t i = 0; i + 2 < m->num_nodes && st == SL_OK; i++) {
    int32_t members = 0;
    st = fuse_chain(m, fb, readers, i, true, &members);
    if (st == SL_OK && members == 0) st = fuse_chain(m, fb, readers, i, false, &members);
    i += members;
  }
  for (int32_t i = 0; i < m->num_nodes && st == SL_OK; i++) {
    sl_node_t* conv = &m->nodes[i];
    if (conv->type != SL_OP_CONV2D || conv->fused_into >= 0) continue;
    int32_t y = conv->outputs[0]; /* what the convolution writes so far */
    sl_node_t* op = movable_reader(m, readers, reader, i, y);
    if (op != NULL && op->type == SL_OP_ADD) {
      int32_t residual = reads(op, 0, y) ? 1 : 0, r = op->inputs[residual];
      /* A residual that only zero-pads channels (BlazeFace) is added unpadded, the PAD skipped. */
      sl_node_t* pad = pad_of(m, readers, r);
      bool fused = false, in_place = false;
      if (reads(op, 1 - residual, y) && r != y && m->tensors[r].sparse == NULL) {
        if (pad != NULL && ready(m, pad->inputs[0], i))
          st = sl_conv2d_fuse_add(m, fb, conv, op, residual, pad, &fused, &in_place);
        if (st == SL_OK && !fused && ready(m, r, i)) {
          pad = NULL;
          st = sl_conv2d_fuse_add(m, fb, conv, op, residual, NULL, &fused, &in_place);
        }
      }
      if (fused) {
        y = absorb(m, i, (int32_t)(op - m->nodes), y);
        /* The sum may take the residual's bytes where nothing reads the residual from this op on
         * but the add (ResNet's bottlenecks: one buffer, read once, instead of two). */
        const sl_tensor_t* rt = &m->tensors[r];
        if (in_place && reader[r] == op - m->nodes && earlier_reader[r] < i && rt->producer >= 0 && !rt->is_input &&
            !graph_output(m, r))
          m->tensors[y].in_place_of = r;
        if (pad != NULL) {
          pad->fused_into = i; /* the padded copy is never made */
          m->tensors[r].producer = -1;
          sl_tensor_t* x = &m->tensors[pad->inputs[0]];
          if (x->last_use < i) x->last_use = i;
        }
      }
      op = fused ? movable_reader(m, readers, reader, i, y) : NULL;
    }
    if (st == SL_OK && op != NULL && op->type == SL_OP_PRELU && reads(op, 0, y) && !reads(op, 1, y)) {
      bool fused = false;
      st = sl_conv2d_fuse_prelu(m, conv, op, &fused);
      if (fused) absorb(m, i, (int32_t)(op - m->nodes), y);
    }
  }
  sl_model_release(m, readers);
  return st;
}

/* fp16 chains: a tensor one fp16 convolution writes and only fp16 convolutions read (as their input)
 * stays in halves, in its float slot: the producer skips widening it and the readers narrowing it,
 * which halves that tensor's traffic (MobileNetV2: expand -> depthwise -> project). Round trips
 * through floats are exact, so the results are those of the layers converting at their edges. */
sl_status_t sl_plan_halves(sl_model_t* m) {
  /* Per tensor: whether it may chain (its writer and every reader so far can), then how many read it. */
  int32_t* state = sl_model_alloc(m, 2 * ((size_t)m->num_tensors + 1) * sizeof(int32_t));
  if (state == NULL) return SL_ERROR_OUT_OF_MEMORY;
  int32_t *chains = state, *readers = state + m->num_tensors + 1;
  for (int32_t t = 0; t < m->num_tensors; t++) {
    int32_t producer = m->tensors[t].producer;
    chains[t] = producer >= 0 && !m->tensors[t].is_const && m->nodes[producer].type == SL_OP_CONV2D &&
                m->nodes[producer].outputs[0] == t && sl_conv2d_halves_ok(&m->nodes[producer], true);
  }
  for (int32_t i = 0; i < m->num_outputs; i++) chains[m->outputs[i]] = 0;
  for (int32_t i = 0; i < m->num_nodes; i++) {
    const sl_node_t* n = &m->nodes[i];
    for (int32_t k = 0; k < n->num_inputs; k++) {
      int32_t t = n->inputs[k];
      if (t < 0) continue;
      readers[t]++;
      if (k != 0 || n->type != SL_OP_CONV2D || !sl_conv2d_halves_ok(n, false)) chains[t] = 0;
    }
  }
  for (int32_t t = 0; t < m->num_tensors; t++) {
    if (!chains[t] || readers[t] == 0) continue;
    sl_node_t* producer = &m->nodes[m->tensors[t].producer];
    sl_conv2d_use_halves(producer, true);
    producer->activation_bytes -= m->tensors[t].num_bytes / 2; /* for profiles: what it no longer moves */
  }
  for (int32_t i = 0; i < m->num_nodes; i++) {
    sl_node_t* n = &m->nodes[i];
    int32_t t = n->num_inputs > 0 ? n->inputs[0] : -1;
    if (t < 0 || !chains[t] || readers[t] == 0) continue;
    sl_conv2d_use_halves(n, false);
    n->activation_bytes -= m->tensors[t].num_bytes / 2;
  }
  sl_model_release(m, state);
  return SL_OK;
}
