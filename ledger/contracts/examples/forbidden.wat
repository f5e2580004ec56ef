;; forbidden.wat: imports a function outside the host API (a WASI clock). validate_module
;; refuses it at upload: "import wasi_snapshot_preview1.clock_time_get is not in the host API".
(module
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "now") (param i32 i32) (result i32)
    (call $clock (i32.const 0) (i64.const 0) (i32.const 0)))
)
