// sparselite.mjs: run .slite models with sparselite.wasm from plain JavaScript (a page or Node).
//
//   import { loadRuntime } from "./sparselite.mjs";
//   const runtime = await loadRuntime();   // the build beside this file that the engine runs best
//   runtime.build;   // "wasm_relaxed_simd" (FMA) or "wasm_simd128"; runtime.isa: every ISA name it uses
//   const threaded = await loadRuntime(undefined, { numThreads: 4 });   // workers where the page allows
//   threaded.threads;   // how many threads models run on: 4, or 1 without cross-origin isolation
//   const model = runtime.load(sliteBytes);           // Uint8Array | ArrayBuffer; verified first
//   runtime.load(sliteBytes, { maxMemoryBytes: 2 ** 31 });   // the most loading may allocate (default 2 GiB)
//   runtime.load(sliteBytes, { fuse: 2 });   // fused blocks: true (where they pay), false, or band rows
//   runtime.load(sliteBytes, { numThreads: 2 });   // runs on at most runtime.threads (the default)
//   const [logits] = model.run([new Float32Array(3 * 224 * 224)]);   // or {name: Float32Array}
//   logits.data, logits.shape;
//   const ops = model.profile([x], 10);   // per op: {name, type, kernel, flops, denseFlops, ms, ...}
//   model.free();
//
// Tensors cross the boundary in bulk: inputs are copied into the model's arena with one
// typed-array set, outputs are copied out with one slice. Errors throw with the runtime's message.
// C structs are read by field name through sparselite_abi.mjs, generated from sparselite.h.
import { DTYPES, ISA_BITS, STATUS, STRUCTS } from "./sparselite_abi.mjs";

const ERRNO_BADF = 8;
const ERRNO_NOSYS = 52;
// Typed arrays per dtype; bool tensors are Uint8Arrays of 0 and 1 (any nonzero input byte reads as true).
const ARRAYS = {
  float32: Float32Array, int32: Int32Array, int64: BigInt64Array, uint16: Uint16Array, uint32: Uint32Array, bool: Uint8Array,
};
const TWO_32 = 2 ** 32;
// Little-endian readers per storage kind of sparselite_abi.mjs: [bytes, read].
const KINDS = {
  u32: [4, (view, at) => view.getUint32(at, true)],
  i32: [4, (view, at) => view.getInt32(at, true)],
  u64: [8, (view, at) => view.getUint32(at, true) + TWO_32 * view.getUint32(at + 4, true)], // exact below 2^53
  f64: [8, (view, at) => view.getFloat64(at, true)],
};

// The fields of C struct `name` at `ptr`, by field name (arrays as arrays).
function readStruct(memory, name, ptr) {
  const view = new DataView(memory.buffer);
  const fields = {};
  for (const [field, { offset, kind, count }] of Object.entries(STRUCTS[name].fields)) {
    const [bytes, read] = KINDS[kind];
    const values = Array.from({ length: count }, (_, i) => read(view, ptr + offset + i * bytes));
    fields[field] = count > 1 ? values : values[0];
  }
  return fields;
}

function statusName(status) {
  return Object.keys(STATUS).find((name) => STATUS[name] === status) ?? `status ${status}`;
}

// The module needs a clock and (for sl_model_load_file, unused here) files: a page has no
// file system, so every file call reports "bad descriptor" and there are no preopened dirs.
function wasiImports(memory) {
  const fail = () => ERRNO_BADF;
  return {
    clock_time_get(_id, _precision, out) {
      // Two 32-bit halves: no BigInt needed, and nanoseconds since page load stay below 2^53.
      const ns = Math.round(performance.now() * 1e6);
      const view = new DataView(memory().buffer);
      view.setUint32(out, ns % TWO_32, true);
      view.setUint32(out + 4, Math.floor(ns / TWO_32), true);
      return 0;
    },
    fd_close: fail, fd_fdstat_get: fail, fd_filestat_get: fail, fd_prestat_get: fail,
    fd_prestat_dir_name: fail, fd_read: fail, fd_seek: fail, fd_write: fail,
    path_open: () => ERRNO_NOSYS,
    proc_exit(code) { throw new Error(`sparselite.wasm called exit(${code})`); },
  };
}

// A module whose one function uses f32x4.relaxed_madd: it validates where relaxed SIMD is on
// (Chromium >= 114, Node >= 22, Node 20 with --experimental-wasm-relaxed-simd).
const RELAXED_SIMD_PROBE = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 19,
  1, 17, 0, 65, 0, 253, 17, 65, 0, 253, 17, 65, 0, 253, 17, 253, 133, 2, 11]);

export function relaxedSimdSupported() { return WebAssembly.validate(RELAXED_SIMD_PROBE); }

const isNode = typeof process !== "undefined" && process.versions?.node;

// Threads need a shared memory: in a page, cross-origin isolation (COOP/COEP headers).
export function threadsSupported() {
  return typeof SharedArrayBuffer !== "undefined" && (isNode || globalThis.crossOriginIsolated === true);
}

// The threads build's memory, as wasm/build.sh links it: 16 MiB at first, up to 4 GiB, in 64 KiB pages.
const THREADS_MEMORY = { initial: 256, maximum: 65536, shared: true };

// A worker of the threads build (Web Worker or Node worker_thread, from this source): it instantiates
// the module on the shared memory once, then for each {tid, arg} runs wasi_thread_start (the pool's
// worker loop, until that pool is freed) and marks its slot of `idle` free again. Its WASI imports
// throw: pool tasks never call libc or WASI (native/runtime/threadpool.c).
const WORKER_SOURCE = `
const node = typeof self === "undefined";
const port = node ? require("node:worker_threads").parentPort : self;
let instance, idle, slot;
const handle = ({ module, memory, flags, index, tid, arg }) => {
  if (module) {
    const trap = (what) => () => { throw new Error("a sparselite worker thread called " + what); };
    const wasi = new Proxy({}, { get: (_, name) => trap("WASI " + String(name)) });
    instance = new WebAssembly.Instance(module, { env: { memory }, wasi: { "thread-spawn": trap("thread-spawn") },
                                                  wasi_snapshot_preview1: wasi });
    idle = flags;
    slot = index;
    port.postMessage("ready");
    return;
  }
  instance.exports.wasi_thread_start(tid, arg);
  Atomics.store(idle, slot, 0);
};
if (node) port.on("message", handle); else port.onmessage = (event) => handle(event.data);
`;

async function startWorker(module, memory, flags, index) {
  let worker;
  if (isNode) {
    const { Worker } = await import("node:worker_threads");
    worker = new Worker(WORKER_SOURCE, { eval: true });
    worker.unref(); // idle workers must not keep Node running
  } else {
    const url = URL.createObjectURL(new Blob([WORKER_SOURCE], { type: "text/javascript" }));
    worker = new Worker(url);
    URL.revokeObjectURL(url);
  }
  await new Promise((resolve, reject) => {
    const done = (message) => (message === "ready" ? resolve() : reject(new Error(String(message))));
    if (isNode) {
      worker.once("message", done);
      worker.once("error", reject);
    } else {
      worker.onmessage = (event) => done(event.data);
      worker.onerror = (event) => reject(new Error(event.message));
    }
    worker.postMessage({ module, memory, flags, index });
  });
  return worker;
}

// wasi.thread-spawn for the threads build: hands `arg` (the pool's worker_t) to an idle worker. The
// workers were started and instantiated at load, because a page cannot start one while its thread
// is busy inside a run. A worker leaving a freed pool is idle a moment after; if none is, spawn
// fails (-1) and the pool keeps the threads it has.
function threadSpawner(workers, flags) {
  let nextTid = 1;
  return (arg) => {
    const deadline = performance.now() + 50;
    do {
      for (let i = 0; i < workers.length; i++) {
        if (Atomics.compareExchange(flags, i, 0, 1) === 0) {
          const tid = nextTid;
          nextTid = (nextTid % 0x1fffffff) + 1; // wasi-threads ids are positive and below 2^29
          workers[i].postMessage({ tid, arg });
          return tid;
        }
      }
    } while (performance.now() < deadline);
    return -1;
  };
}

// The bytes of source, or null when there is no such file (a page that deployed one build only).
async function wasmBytes(source) {
  if (source instanceof ArrayBuffer || ArrayBuffer.isView(source)) return source;
  if (isNode && !/^https?:/.test(String(source))) {
    const { readFile } = await import("node:fs/promises");
    try {
      return await readFile(source instanceof URL ? source : String(source));
    } catch (err) {
      if (err.code === "ENOENT") return null;
      throw err;
    }
  }
  const response = await fetch(source);
  if (response.status === 404) return null;
  if (!response.ok) throw new Error(`cannot fetch ${source}: HTTP ${response.status}`);
  return response.arrayBuffer();
}

// The names of the SL_ISA_* bits in `mask`, as kernels and profiles spell them: ["wasm_simd128"].
export function isaNames(mask) {
  return Object.keys(ISA_BITS).filter((name) => mask & ISA_BITS[name]);
}

// source: the SIMD128 build's URL or path (default: sparselite.wasm beside this file); where
// relaxedSimd (default: the engine validates a relaxed op), its twin sparselite-relaxed.wasm beside
// it is loaded instead if present. Bytes of any build load as they are.
// numThreads > 1: where relaxed SIMD and threads (threadsSupported) are on and sparselite-threads.wasm
// is beside, that build runs with numThreads - 1 workers started now; otherwise one thread.
export async function loadRuntime(source = new URL("./sparselite.wasm", import.meta.url),
  { relaxedSimd = relaxedSimdSupported(), numThreads = 1 } = {}) {
  if (!(Number.isInteger(numThreads) && numThreads >= 1 && numThreads <= 256))
    throw new Error(`numThreads must be an integer of 1..256, got ${numThreads}`);
  const named = !(source instanceof ArrayBuffer || ArrayBuffer.isView(source));
  const twin = async (suffix) => {
    const path = String(source).replace(/\.wasm$/, `${suffix}.wasm`);
    return path === String(source) ? null : wasmBytes(source instanceof URL ? new URL(path) : path);
  };
  let bytes = null;
  if (numThreads > 1 && relaxedSimd && threadsSupported() && named) bytes = await twin("-threads");
  if (bytes) return loadThreaded(bytes, numThreads);
  if (relaxedSimd && named) bytes = await twin("-relaxed");
  bytes ??= await wasmBytes(source);
  if (!bytes) throw new Error(`cannot load ${source}: no such file`);
  const module = await WebAssembly.compile(bytes);
  if (WebAssembly.Module.imports(module).some((i) => i.kind === "memory")) return loadThreaded(module, numThreads);
  let exports = null;
  const memory = () => exports.memory;
  const instance = await WebAssembly.instantiate(module, { wasi_snapshot_preview1: wasiImports(memory) });
  exports = instance.exports;
  exports._initialize();
  return new Runtime(exports, 1);
}

// The threads build (bytes or its module) with numThreads - 1 workers on one shared memory.
async function loadThreaded(bytes, numThreads) {
  const module = bytes instanceof WebAssembly.Module ? bytes : await WebAssembly.compile(bytes);
  const memory = new WebAssembly.Memory(THREADS_MEMORY);
  const flags = new Int32Array(new SharedArrayBuffer(4 * (numThreads - 1)));
  const workers = await Promise.all(Array.from({ length: numThreads - 1 }, (_, i) => startWorker(module, memory, flags, i)));
  const instance = await WebAssembly.instantiate(module, {
    env: { memory }, wasi: { "thread-spawn": threadSpawner(workers, flags) },
    wasi_snapshot_preview1: wasiImports(() => memory),
  });
  const exports = { ...instance.exports, memory };
  exports._initialize();
  return new Runtime(exports, numThreads, workers);
}

class Runtime {
  constructor(exports, threads, workers = []) {
    this.exports = exports;
    this.threads = threads; // the threads models run on at most (the caller's and the workers)
    this.workers = workers;
  }

  // Stops the threads build's workers (Node exits without this; a page may want them gone).
  terminate() {
    for (const worker of this.workers) worker.terminate();
    this.workers = [];
    this.threads = 1;
  }

  // The names of the SL_ISA_* bits the kernels may use, e.g. ["wasm_simd128", "wasm_relaxed_simd"].
  get isa() { return isaNames(this.exports.sl_cpu_isa()); }

  // The build running: "wasm_relaxed_simd" or "wasm_simd128".
  get build() { return this.isa.includes("wasm_relaxed_simd") ? "wasm_relaxed_simd" : "wasm_simd128"; }

  // bytes: Uint8Array | ArrayBuffer of a .slite file. maxMemoryBytes: the most memory loading may
  // allocate (the model's copy of the bytes, weights, arena, scratch); a model needing more throws
  // with both sizes. Omitted: the runtime's default, 2 GiB. numThreads: at most runtime.threads run.
  load(bytes, { maxMemoryBytes, fuse = true, numThreads = this.threads } = {}) {
    const e = this.exports;
    const data = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
    if (maxMemoryBytes !== undefined && !(Number.isInteger(maxMemoryBytes) && maxMemoryBytes >= 1))
      throw new Error(`maxMemoryBytes must be a positive integer, got ${maxMemoryBytes}`);
    if (!(typeof fuse === "boolean" || (Number.isInteger(fuse) && fuse >= 1 && fuse <= 65536)))
      throw new Error(`fuse must be true, false or a band height of 1..65536 rows, got ${fuse}`);
    if (!(Number.isInteger(numThreads) && numThreads >= 1 && numThreads <= 256))
      throw new Error(`numThreads must be an integer of 1..256, got ${numThreads}`);
    const handle = e.sl_model_new();
    if (!handle) throw new Error("out of memory creating a model");
    const fail = (message) => {
      e.sl_model_free(handle);
      throw new Error(message);
    };
    // size_t is 32 bits in wasm32: a larger limit means none.
    if (maxMemoryBytes !== undefined && e.sl_model_set_memory_limit(handle, Math.min(maxMemoryBytes, TWO_32 - 1)) !== 0)
      fail(this.string(e.sl_model_last_error(handle)));
    e.sl_model_set_fusion(handle, fuse === true ? -1 : fuse === false ? 0 : fuse);
    e.sl_model_set_num_threads(handle, Math.min(numThreads, this.threads)); // no more than the workers
    const buf = e.malloc(Math.max(data.length, 1));
    if (!buf) fail(`out of memory: cannot copy ${data.length} bytes into sparselite.wasm`);
    new Uint8Array(e.memory.buffer, buf, data.length).set(data);
    const status = e.sl_model_load_buffer(handle, buf, data.length, 1);
    e.free(buf);
    if (status !== 0) fail(this.string(e.sl_model_last_error(handle)) || statusName(status));
    return new Model(this, handle);
  }

  string(ptr) {
    const bytes = new Uint8Array(this.exports.memory.buffer, ptr);
    // A copy: TextDecoder refuses views of a shared memory (the threads build's).
    return new TextDecoder().decode(bytes.slice(0, bytes.indexOf(0)));
  }
}

class Model {
  constructor(runtime, handle) {
    this.runtime = runtime;
    this.handle = handle;
    this.inputs = this.specs("input", runtime.exports.sl_model_num_inputs(handle));
    this.outputs = this.specs("output", runtime.exports.sl_model_num_outputs(handle));
  }

  check(status) {
    if (status !== 0) throw new Error(this.runtime.string(this.runtime.exports.sl_model_last_error(this.handle)));
  }

  withScratch(bytes, fn) {
    const e = this.runtime.exports;
    const ptr = e.malloc(bytes);
    try { return fn(ptr); } finally { e.free(ptr); }
  }

  specs(kind, count) {
    const e = this.runtime.exports;
    return Array.from({ length: count }, (_, i) => this.withScratch(STRUCTS.sl_tensor_info_t.size, (ptr) => {
      this.check(e[`sl_model_${kind}_info`](this.handle, i, ptr));
      const info = readStruct(e.memory, "sl_tensor_info_t", ptr);
      return {
        name: this.runtime.string(info.name),
        dtype: DTYPES[info.dtype][0],
        shape: info.shape.slice(0, info.rank),
        maxShape: info.max_shape.slice(0, info.rank),
        dynamicAxes: Array.from({ length: info.rank }, (_, d) => d).filter((d) => (info.dynamic_axes >> d) & 1),
      };
    }));
  }

  // Gives an input with dynamic axes (a sequence length) a new shape, up to maxShape; the
  // shapes of inputs and outputs that share the dimension follow.
  resize(name, shape) {
    const index = this.inputs.findIndex((spec) => spec.name === name);
    if (index < 0) throw new Error(`unknown input '${name}'`);
    const e = this.runtime.exports;
    this.withScratch(4 * Math.max(shape.length, 1), (ptr) => {
      new Int32Array(e.memory.buffer, ptr, shape.length).set(shape);
      this.check(e.sl_model_resize_input(this.handle, index, shape.length, ptr));
    });
    this.inputs = this.specs("input", this.inputs.length);
    this.outputs = this.specs("output", this.outputs.length);
  }

  dataPointer(kind, index) {
    return this.withScratch(4, (slot) => {
      this.check(this.runtime.exports[`sl_model_${kind}_data`](this.handle, index, slot));
      return new DataView(this.runtime.exports.memory.buffer).getUint32(slot, true);
    });
  }

  // inputs: an array in input order, or {name: typed array}, of the current shapes (see resize).
  // Returns [{name, shape, data}] copies.
  run(inputs) {
    const list = Array.isArray(inputs) ? inputs : this.inputs.map((spec) => {
      if (!(spec.name in inputs)) throw new Error(`missing input '${spec.name}'`);
      return inputs[spec.name];
    });
    if (list.length !== this.inputs.length) throw new Error(`expected ${this.inputs.length} inputs, got ${list.length}`);
    const e = this.runtime.exports;
    this.inputs.forEach((spec, i) => {
      const count = spec.shape.reduce((a, b) => a * b, 1);
      const Typed = ARRAYS[spec.dtype];
      if (!(list[i] instanceof Typed)) throw new Error(`input '${spec.name}' must be a ${Typed.name}`);
      if (list[i].length !== count) throw new Error(`input '${spec.name}' needs ${count} values [${spec.shape}], got ${list[i].length}`);
      new Typed(e.memory.buffer, this.dataPointer("input", i), count).set(list[i]);
    });
    this.check(e.sl_model_run(this.handle));
    return this.outputs.map((spec, i) => {
      const count = spec.shape.reduce((a, b) => a * b, 1);
      const Typed = ARRAYS[spec.dtype];
      return { name: spec.name, shape: spec.shape, data: new Typed(e.memory.buffer, this.dataPointer("output", i), count).slice() };
    });
  }

  // Runs `runs` times after one warm-up and returns, per op in execution order, {name, type,
  // kernel (the microkernel chosen at load, "" for plain C ops), flops (on stored weights),
  // denseFlops (as if dense), ms (mean over the runs), groupSize (r; 0 when dense), weightBytes,
  // activationBytes, fusedInto (null, or the op whose fused block runs this one and has its time)}. The clock is performance.now(), which browsers coarsen (to 5-100 us).
  profile(inputs, runs = 10) {
    if (!Number.isInteger(runs) || runs < 1) throw new Error(`runs must be a positive integer, got ${runs}`);
    const e = this.runtime.exports;
    this.run(inputs);
    this.check(e.sl_model_set_profiling(this.handle, 1)); // resets the counters
    try {
      for (let i = 0; i < runs; i++) this.run(inputs);
      return this.withScratch(STRUCTS.sl_op_profile_t.size, (ptr) =>
        Array.from({ length: e.sl_model_num_ops(this.handle) }, (_, i) => {
          this.check(e.sl_model_op_profile(this.handle, i, ptr));
          const op = readStruct(e.memory, "sl_op_profile_t", ptr);
          return {
            name: this.runtime.string(op.name), type: this.runtime.string(op.type),
            kernel: this.runtime.string(op.kernel), flops: op.flops, denseFlops: op.dense_flops,
            ms: op.time_ns / Math.max(op.runs, 1) / 1e6, groupSize: op.group_size,
            weightBytes: op.weight_bytes, activationBytes: op.activation_bytes,
            fusedInto: op.fused_into < 0 ? null : op.fused_into,
          };
        }));
    } finally {
      this.check(e.sl_model_set_profiling(this.handle, 0));
    }
  }

  free() {
    if (this.handle) this.runtime.exports.sl_model_free(this.handle);
    this.handle = 0;
  }
}
