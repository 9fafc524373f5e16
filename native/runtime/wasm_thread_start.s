# wasi_thread_start(tid, start) for sparselite-threads.wasm (wasm/build.sh): the wasi-threads entry a
# host worker calls on its own instance. The instance's __stack_pointer starts at the main thread's
# stack, so it is set from the worker_t's first field (its stack top) before any C code runs.
	.text
	.globaltype	__stack_pointer, i32
	.functype	sl_wasm_thread_main (i32, i32) -> ()
	.globl	wasi_thread_start
	.export_name	wasi_thread_start, wasi_thread_start
	.type	wasi_thread_start,@function
wasi_thread_start:
	.functype	wasi_thread_start (i32, i32) -> ()
	local.get	1
	i32.load	0
	global.set	__stack_pointer
	local.get	0
	local.get	1
	call	sl_wasm_thread_main
	end_function
