;; bad.wat: misbehaving methods, one per way a contract can fail (tests/contracts/test_wasm.py).
;; Each call must fail alone, with a receipt saying why, and use no more than its fuel budget.
(module
  (import "env" "state_get" (func $state_get (param i32 i32) (result i32)))
  (import "env" "state_set" (func $state_set (param i32 i32 i32 i32)))
  (import "env" "emit" (func $emit (param i32 i32 i32 i32 i32 i32)))
  (import "env" "return_data" (func $return_data (param i32 i32)))
  (import "env" "revert" (func $revert (param i32 i32)))

  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 1024))

  (data (i32.const 16) "k")       ;; 16 len 1
  (data (i32.const 17) "nope")    ;; 17 len 4
  (data (i32.const 21) "{oops")   ;; 21 len 5
  (data (i32.const 26) "Ping")    ;; 26 len 4
  (data (i32.const 30) "[]")      ;; 30 len 2
  (data (i32.const 32) "{}")      ;; 32 len 2

  (func (export "alloc") (param $n i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.add (local.get $p) (local.get $n)))
    (if (i32.gt_u (global.get $heap) (i32.const 65536)) (then unreachable))
    (local.get $p))

  ;; never ends: stopped by the fuel budget
  (func (export "loop") (param i32 i32) (result i32)
    (loop $l (br $l))
    (i32.const 0))

  (func (export "trap") (param i32 i32) (result i32)
    unreachable)

  ;; a load far beyond the 64 KiB memory
  (func (export "oob") (param i32 i32) (result i32)
    (i32.load (i32.const -16)))

  (func (export "div0") (param i32 i32) (result i32)
    (i32.div_u (i32.const 1) (i32.const 0)))

  ;; grows until refused, then gives up (as a C program does when malloc fails)
  (func (export "grow") (param i32 i32) (result i32)
    (loop $l
      (br_if $l (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))
    unreachable)

  ;; unbounded recursion: stack overflow
  (func $down (param $n i64) (result i64)
    (i64.add (call $down (i64.add (local.get $n) (i64.const 1))) (i64.const 1)))
  (func (export "recurse") (param i32 i32) (result i32)
    (i32.wrap_i64 (call $down (i64.const 0))))

  ;; a host call with a key pointer outside memory
  (func (export "badptr") (param i32 i32) (result i32)
    (drop (call $state_get (i32.const 0xffffff00) (i32.const 16)))
    (i32.const 0))

  ;; a 300-byte key (the limit is 256)
  (func (export "badkey") (param i32 i32) (result i32)
    (call $state_set (i32.const 0) (i32.const 300) (i32.const 17) (i32.const 4))
    (i32.const 0))

  ;; host calls forever: stopped by the fuel the host calls are charged
  (func (export "hostloop") (param i32 i32) (result i32)
    (loop $l
      (drop (call $state_get (i32.const 16) (i32.const 1)))
      (br $l))
    (i32.const 0))

  (func (export "revert") (param i32 i32) (result i32)
    (call $state_set (i32.const 16) (i32.const 1) (i32.const 17) (i32.const 4))
    (call $revert (i32.const 17) (i32.const 4))
    (i32.const 0))

  (func (export "status") (param i32 i32) (result i32)
    (call $state_set (i32.const 16) (i32.const 1) (i32.const 17) (i32.const 4))
    (i32.const 7))

  (func (export "badresult") (param i32 i32) (result i32)
    (call $return_data (i32.const 21) (i32.const 5))
    (i32.const 0))

  ;; more events than a transaction may carry
  (func (export "emitbomb") (param i32 i32) (result i32)
    (loop $l
      (call $emit (i32.const 26) (i32.const 4) (i32.const 30) (i32.const 2) (i32.const 32) (i32.const 2))
      (br $l))
    (i32.const 0))
)
