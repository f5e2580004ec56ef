;; probe.wat: every host function, one thin method each (tests and the ABI reference).
;;
;;   caller {}          -> the calling account (a JSON string)
;;   name   {}          -> this contract's name
;;   height {}, time {} -> the block height / time in ms
;;   put "k"            stores the args themselves (the JSON string "k") under contract key k
;;   get "k"            -> the value stored under k (JSON), or nothing (null) when absent
;;   del "k"            deletes key k
;;   emit [keys...]     emits event Ping with these keys and the same array as data
;;   sys {"type": t, "args": {...}}   calls system contract method t; -> its result
(module
  (import "env" "state_get" (func $state_get (param i32 i32) (result i32)))
  (import "env" "state_set" (func $state_set (param i32 i32 i32 i32)))
  (import "env" "state_del" (func $state_del (param i32 i32)))
  (import "env" "output_copy" (func $output_copy (param i32)))
  (import "env" "caller" (func $caller (result i32)))
  (import "env" "contract_name" (func $contract_name (result i32)))
  (import "env" "height" (func $height (result i64)))
  (import "env" "time_ms" (func $time_ms (result i64)))
  (import "env" "emit" (func $emit (param i32 i32 i32 i32 i32 i32)))
  (import "env" "call_system" (func $call_system (param i32 i32) (result i32)))
  (import "env" "return_data" (func $return_data (param i32 i32)))

  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 1024))

  (data (i32.const 16) "\22")     ;; 16 len 1
  (data (i32.const 17) "Ping")    ;; 17 len 4

  (func $alloc (export "alloc") (param $n i32) (result i32)
    (local $p i32) (local $top i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.and (i32.add (i32.add (local.get $p) (local.get $n)) (i32.const 7)) (i32.const -8)))
    (if (i32.lt_u (global.get $heap) (local.get $p)) (then unreachable))
    (local.set $top (i32.shl (memory.size) (i32.const 16)))
    (if (i32.gt_u (global.get $heap) (local.get $top))
      (then
        (if (i32.eq (memory.grow (i32.shr_u (i32.add (i32.sub (global.get $heap) (local.get $top)) (i32.const 65535))
                                            (i32.const 16)))
                    (i32.const -1))
          (then unreachable))))
    (local.get $p))

  ;; return the output buffer (n bytes) as a JSON string
  (func $return_quoted (param $n i32)
    (local $buf i32)
    (local.set $buf (call $alloc (i32.add (local.get $n) (i32.const 2))))
    (i32.store8 (local.get $buf) (i32.const 34))
    (call $output_copy (i32.add (local.get $buf) (i32.const 1)))
    (i32.store8 (i32.add (i32.add (local.get $buf) (local.get $n)) (i32.const 1)) (i32.const 34))
    (call $return_data (local.get $buf) (i32.add (local.get $n) (i32.const 2))))

  ;; return v in decimal (unsigned)
  (func $return_num (param $v i64)
    (local $end i32) (local $i i32)
    (local.set $end (i32.add (call $alloc (i32.const 24)) (i32.const 20)))
    (local.set $i (local.get $end))
    (loop $l
      (local.set $i (i32.sub (local.get $i) (i32.const 1)))
      (i64.store8 (local.get $i) (i64.add (i64.rem_u (local.get $v) (i64.const 10)) (i64.const 48)))
      (local.set $v (i64.div_u (local.get $v) (i64.const 10)))
      (br_if $l (i64.ne (local.get $v) (i64.const 0))))
    (call $return_data (local.get $i) (i32.sub (local.get $end) (local.get $i))))

  ;; return the output buffer (n bytes) as it is
  (func $return_output (param $n i32)
    (local $buf i32)
    (local.set $buf (call $alloc (local.get $n)))
    (call $output_copy (local.get $buf))
    (call $return_data (local.get $buf) (local.get $n)))

  (func (export "caller") (param i32 i32) (result i32)
    (call $return_quoted (call $caller))
    (i32.const 0))

  (func (export "name") (param i32 i32) (result i32)
    (call $return_quoted (call $contract_name))
    (i32.const 0))

  (func (export "height") (param i32 i32) (result i32)
    (call $return_num (call $height))
    (i32.const 0))

  (func (export "time") (param i32 i32) (result i32)
    (call $return_num (call $time_ms))
    (i32.const 0))

  ;; args "k": the key is the string's bytes (no escapes expected)
  (func (export "put") (param $p i32) (param $n i32) (result i32)
    (call $state_set (i32.add (local.get $p) (i32.const 1)) (i32.sub (local.get $n) (i32.const 2))
                     (local.get $p) (local.get $n))
    (i32.const 0))

  (func (export "get") (param $p i32) (param $n i32) (result i32)
    (local $m i32)
    (local.set $m (call $state_get (i32.add (local.get $p) (i32.const 1)) (i32.sub (local.get $n) (i32.const 2))))
    (if (i32.ge_s (local.get $m) (i32.const 0)) (then (call $return_output (local.get $m))))
    (i32.const 0))

  (func (export "del") (param $p i32) (param $n i32) (result i32)
    (call $state_del (i32.add (local.get $p) (i32.const 1)) (i32.sub (local.get $n) (i32.const 2)))
    (i32.const 0))

  (func (export "emit") (param $p i32) (param $n i32) (result i32)
    (call $emit (i32.const 17) (i32.const 4) (local.get $p) (local.get $n) (local.get $p) (local.get $n))
    (i32.const 0))

  (func (export "sys") (param $p i32) (param $n i32) (result i32)
    (call $return_output (call $call_system (local.get $p) (local.get $n)))
    (i32.const 0))
)
